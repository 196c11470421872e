"""The handlers of the NumPy functions that rearrange entries (repeat, tile, roll, pad, split, diag, tril, sort ...)."""

from __future__ import annotations

from typing import Any, Callable

FUNCTIONS: dict[Any, Callable[..., Any]] = {}
