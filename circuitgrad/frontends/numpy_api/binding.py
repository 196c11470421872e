"""What every NumPy handler shares: NumPy's own signature binding the call, the axes, the
traced values among the arguments, and the refusal that names the NumPy function."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np

from ...builder import Builder
from ...errors import CircuitError, ShapeError
from ...primitives import PRIMITIVES
from ...value import Value, user_line

NO_VALUE = getattr(np, "_NoValue", None)

# What to write instead, for NumPy functions people reach for that do not trace yet.
INSTEAD = {
    "heaviside": "np.heaviside(x, h) traces for a constant h; a traced h does not",
}
SHAPE_FUNCTIONS = {"array", "asarray"}


def numpy_name(func: Any) -> str:
    module = getattr(func, "__module__", None) or "numpy"
    if not module.startswith("numpy"):
        module = "numpy"
    return f"{module}.{getattr(func, '__name__', func)}"


def refuse(name: str) -> CircuitError:
    short = name.rsplit(".", 1)[-1]
    if short in INSTEAD:
        hint = INSTEAD[short]
    elif short in SHAPE_FUNCTIONS:
        hint = "it is not supported yet"
    else:
        hint = "it is not in circuitgrad's primitive table"
    return CircuitError(f"{name} cannot be traced: {hint} (docs/tracing.md lists the NumPy "
                        "functions that trace)" + user_line())


def primitive_of(numpy_name: str) -> str | None:
    for name, prim in PRIMITIVES.items():
        if numpy_name in prim.numpy:
            return name
    return None


def builder_of(args: Any) -> Builder:
    for a in args:
        if isinstance(a, Value):
            return a.builder
    raise CircuitError("no traced value among the arguments" + user_line())


def bind(func: Any, args: tuple, kwargs: dict, allowed: dict[str, Any]) -> dict[str, Any]:
    """NumPy's own signature binds the call; every argument not in ``allowed`` (name → the
    values accepted) must be left at NumPy's default."""
    name = numpy_name(func)
    try:
        bound = inspect.signature(func).bind(*args, **kwargs)
    except (TypeError, ValueError) as e:
        raise CircuitError(f"{name}: {e}" + user_line()) from None
    params = inspect.signature(func).parameters
    out = {}
    for key, value in bound.arguments.items():
        if key in allowed:
            accepted = allowed[key]
            if accepted is not None and value not in accepted:
                raise CircuitError(f"{name}: {key}={value!r} cannot be traced (only "
                                   f"{', '.join(map(repr, accepted))})" + user_line())
            out[key] = value
        elif value is not params[key].default and value is not NO_VALUE and value is not None:
            raise CircuitError(f"{name}: the argument {key}= cannot be traced" + user_line())
    return out


def axes_of(name: str, axis: Any, ndim: int) -> list[int] | None:
    if axis is None:
        return None
    axes = list(axis) if isinstance(axis, (tuple, list)) else [axis]
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise CircuitError(f"{name}: axis must be an integer or a tuple of integers, got "
                               f"{axis!r}" + user_line())
    normalized = [int(a) % ndim if -ndim <= a < ndim else int(a) for a in axes]
    if len(set(normalized)) != len(normalized):  # NumPy's error (a set summed it once)
        raise ShapeError(f"{name}: duplicate value in axis={axis!r} for {ndim} axes"
                         + user_line())
    return sorted(normalized, reverse=True)


def with_kept_axes(x: Value, result: Value, axes: list[int] | None) -> Value:
    """``result`` (``x`` reduced over ``axes``, all when None) with the reduced axes kept."""
    kept = tuple(1 if axes is None or k in axes else n for k, n in enumerate(x.shape))
    return result.reshape(kept)


def warn_point_reduction(name: str, b: Builder) -> None:
    """Warn that a reduction of one number reduces nothing: a batch is many points (the
    batch semantics of docs/semantics.md), the surprise of ``np.sum(x**2)`` on [1, 2, 3]."""
    from ...value import _PROGRAM_TEXT

    if _PROGRAM_TEXT.get():
        return  # the parser and the CLI say this their own way
    scalars = [b.params[i] for i in b.inputs.values() if not b.shapes[i]]
    if not scalars:
        return  # every input declared: a reduction of one entry of one is no surprise
    named, example = ", ".join(repr(n) for n in scalars), scalars[0]
    warnings.warn(f"{name} of a 0-d traced value reduces one number: an input without a "
                  f"shapes= entry is one number (here: {named}), and called on [1, 2, 3] the "
                  f"circuit gives three results, one per point; to reduce a vector, declare "
                  f"it: shapes={{{example!r}: (3,)}}" + user_line(), stacklevel=2)


def traced(func: Any, x: Any) -> Value:
    if not isinstance(x, Value):
        raise refuse(numpy_name(func))
    return x


def operands_of(func: Any, arrays: Any) -> tuple[Builder, list[Any]]:
    """The values of a sequence argument (traced values, numbers, arrays, lists of numbers);
    one traced array stands for the sequence of its rows, as NumPy iterates it."""
    if isinstance(arrays, Value) and arrays.shape:
        arrays = [arrays[i] for i in range(arrays.shape[0])]
    if isinstance(arrays, Value) or not isinstance(arrays, (list, tuple)):
        raise CircuitError(f"{numpy_name(func)}: give a list or tuple of arrays"
                           + user_line())
    builder = builder_of([a for a in leaves(arrays) if isinstance(a, Value)][:1] or arrays)
    return builder, [as_value(builder, a) for a in arrays]


def leaves(items: Any) -> Any:
    """The entries of a (nested) list or tuple that are not lists or tuples, in order:
    ``list(leaves([1, [2, (3,)]]))`` is ``[1, 2, 3]`` (a stack of iterators, no recursion)."""
    stack = [iter(items)]
    while stack:
        for a in stack[-1]:
            if isinstance(a, (list, tuple)):
                stack.append(iter(a))
                break
            yield a
        else:
            stack.pop()


def as_value(builder: Builder, a: Any) -> Value:
    """A traced value, a constant, or a (nested) list holding traced values: ``[x[0], 1.0]``
    is NumPy's array of them, stacked. (It recurses once per level of list nesting, the
    rank of the array the list stands for: NumPy's arrays have at most 64 axes.)"""
    if isinstance(a, Value):
        if a.builder is not builder:
            raise CircuitError("a value from another circuit was used in this one" + user_line())
        return a
    if isinstance(a, (list, tuple)) and any(isinstance(v, Value) for v in leaves(a)):
        parts = [as_value(builder, v) for v in a]
        return builder.apply("stack", *parts, axis=0)
    return builder.const(np.asarray(a, dtype=np.float64))


def axis_of(func: Any, axis: Any, ndim: int) -> int:
    name = numpy_name(func)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise CircuitError(f"{name}: axis must be an integer, got {axis!r}" + user_line())
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{name}: axis {axis} is out of range for {ndim} axes" + user_line())
    return int(axis) % ndim


def at_least_rank(x: Value, rank: int) -> Value:
    # NumPy's layouts: a scalar is (1,), (1, 1), (1, 1, 1); a vector (1, n), (1, n, 1).
    s = x.shape
    if len(s) >= rank:
        return x
    if rank == 1:
        return x.reshape(1)
    if rank == 2:
        return x.reshape((1,) * (2 - len(s)) + s)
    return x.reshape({0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}[len(s)])
