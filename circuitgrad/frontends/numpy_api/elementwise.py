"""The handlers of the elementwise and numeric NumPy functions beyond the ufuncs that are one record (std/var, remainder, logaddexp2, sinc, polyval, interp ...)."""

from __future__ import annotations

from typing import Any, Callable

FUNCTIONS: dict[Any, Callable[..., Any]] = {}
