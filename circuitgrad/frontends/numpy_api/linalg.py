"""The handlers of np.linalg and scipy.linalg: solve, inv, det, slogdet, cholesky, eigh, svd ...."""

from __future__ import annotations

from typing import Any, Callable

FUNCTIONS: dict[Any, Callable[..., Any]] = {}
