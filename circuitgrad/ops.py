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
from .primitives import call, evaluate


def _apply(name: str, *args: Any, **params: Any) -> Any:
    if any(isinstance(a, Value) for a in args):
        return call(name, *args, **params)  # the rules' own way of building a node
    with np.errstate(all="ignore"):
        return evaluate(name, tuple(np.asarray(a, dtype=np.float64) for a in args), params)


def sin(x: Any) -> Any:
    """sin(x).

    >>> float(sin(0.0))
    0.0
    >>> import circuitgrad as cg
    >>> cg.trace(lambda x: cg.sin(x)).size
    1
    """
    return _apply("sin", x)


def cos(x: Any) -> Any:
    """cos(x).

    >>> float(cos(0.0))
    1.0
    """
    return _apply("cos", x)


def tanh(x: Any) -> Any:
    """tanh(x).

    >>> float(tanh(0.0))
    0.0
    """
    return _apply("tanh", x)


def exp(x: Any) -> Any:
    """e to the x.

    >>> float(exp(0.0))
    1.0
    """
    return _apply("exp", x)


def log(x: Any) -> Any:
    """Natural logarithm: log(0) = -inf, log of a negative number is nan.

    >>> float(log(1.0)), float(log(0.0))
    (0.0, -inf)
    """
    return _apply("log", x)


def sqrt(x: Any) -> Any:
    """Square root.

    >>> float(sqrt(9.0))
    3.0
    """
    return _apply("sqrt", x)


def square(x: Any) -> Any:
    """x².

    >>> float(square(-3.0))
    9.0
    """
    return _apply("square", x)


def abs(x: Any) -> Any:  # noqa: A001 - the name users expect
    """|x|, with derivative sign(x) (0 at 0).

    >>> float(abs(-2.5))
    2.5
    """
    return _apply("abs", x)


def relu(x: Any) -> Any:
    """max(x, 0), with derivative 1(x ≥ 0) as the notes write.

    >>> float(relu(-2.0)), float(relu(3.0))
    (0.0, 3.0)
    """
    return _apply("relu", x)


def sigmoid(x: Any) -> Any:
    """1 / (1 + e⁻ˣ), computed stably for every float.

    >>> float(sigmoid(0.0)), float(sigmoid(-1000.0))
    (0.5, 0.0)
    """
    return _apply("sigmoid", x)


def step(x: Any) -> Any:
    """1(x ≥ 0): relu's derivative.

    >>> float(step(0.0)), float(step(-0.5))
    (1.0, 0.0)
    """
    return _apply("step", x)


def sign(x: Any) -> Any:
    """-1, 0 or 1.

    >>> float(sign(-4.0)), float(sign(0.0))
    (-1.0, 0.0)
    """
    return _apply("sign", x)


def transpose(x: Any) -> Any:
    """The transpose of a matrix (a vector or scalar is its own transpose).

    >>> transpose([[1.0, 2.0]]).shape
    (2, 1)
    """
    return _apply("transpose", x)


def sum(x: Any, axis: int | None = None) -> Any:  # noqa: A001
    """The sum of all entries, or along ``axis``.

    >>> float(sum([[1.0, 2.0], [3.0, 4.0]])), sum([[1.0, 2.0], [3.0, 4.0]], axis=0).tolist()
    (10.0, [4.0, 6.0])
    """
    return _apply("sum", x, axis=axis) if axis is not None else _apply("sum", x)


def mean(x: Any, axis: int | None = None) -> Any:
    """The mean of all entries, or along ``axis``.

    >>> float(mean([1.0, 2.0, 6.0]))
    3.0
    """
    return _apply("mean", x, axis=axis) if axis is not None else _apply("mean", x)


def outer(a: Any, b: Any) -> Any:
    """The outer product of two vectors.

    >>> outer([1.0, 2.0], [3.0, 4.0, 5.0]).shape
    (2, 3)
    """
    return _apply("outer", a, b)
