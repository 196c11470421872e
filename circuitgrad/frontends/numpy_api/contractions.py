"""The handlers of einsum, tensordot, inner, vdot, kron, cross and N-D matmul/dot."""

from __future__ import annotations

from typing import Any, Callable

FUNCTIONS: dict[Any, Callable[..., Any]] = {}
