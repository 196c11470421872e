"""The elementary functions, for traced Python functions: ``cg.sin(x)``, ``cg.relu(z)`` ...

Each one builds a node when given a circuit value and computes with NumPy (through the
primitive table's own code) when given plain numbers, so a traced function also runs on
numbers.

    >>> import circuitgrad as cg
    >>> float(cg.relu(-2.0)), float(cg.sigmoid(0.0))
    (0.0, 0.5)
    >>> cg.trace(lambda x: cg.sin(x) * cg.exp(x)).size
    3
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .circuit import Value
from .primitives import evaluate


def _apply(name: str, *args: Any, **params: Any) -> Any:
    for a in args:
        if isinstance(a, Value):
            return a.builder.apply(name, *args, **params)
    with np.errstate(all="ignore"):
        return evaluate(name, tuple(np.asarray(a, dtype=np.float64) for a in args), params)


def sin(x: Any) -> Any:
    """sin(x)."""
    return _apply("sin", x)


def cos(x: Any) -> Any:
    """cos(x)."""
    return _apply("cos", x)


def tanh(x: Any) -> Any:
    """tanh(x)."""
    return _apply("tanh", x)


def exp(x: Any) -> Any:
    """e to the x."""
    return _apply("exp", x)


def log(x: Any) -> Any:
    """Natural logarithm: log(0) = -inf, log of a negative number is nan."""
    return _apply("log", x)


def sqrt(x: Any) -> Any:
    """Square root."""
    return _apply("sqrt", x)


def square(x: Any) -> Any:
    """x²."""
    return _apply("square", x)


def abs(x: Any) -> Any:  # noqa: A001 - the name users expect
    """|x|, with derivative sign(x) (0 at 0)."""
    return _apply("abs", x)


def relu(x: Any) -> Any:
    """max(x, 0), with derivative 1(x ≥ 0) as the notes write."""
    return _apply("relu", x)


def sigmoid(x: Any) -> Any:
    """1 / (1 + e⁻ˣ), computed stably for every float."""
    return _apply("sigmoid", x)


def step(x: Any) -> Any:
    """1(x ≥ 0): relu's derivative."""
    return _apply("step", x)


def sign(x: Any) -> Any:
    """-1, 0 or 1."""
    return _apply("sign", x)


def transpose(x: Any) -> Any:
    """The transpose of a matrix (a vector or scalar is its own transpose)."""
    return _apply("transpose", x)


def sum(x: Any, axis: int | None = None) -> Any:  # noqa: A001
    """The sum of all entries, or along ``axis``."""
    return _apply("sum", x, axis=axis) if axis is not None else _apply("sum", x)


def mean(x: Any, axis: int | None = None) -> Any:
    """The mean of all entries, or along ``axis``."""
    return _apply("mean", x, axis=axis) if axis is not None else _apply("mean", x)


def outer(a: Any, b: Any) -> Any:
    """The outer product of two vectors."""
    return _apply("outer", a, b)
