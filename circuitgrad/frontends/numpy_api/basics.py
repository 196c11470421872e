"""The handlers of the NumPy functions circuitgrad traced first: reductions, ``dot``,
``where``, ``clip``, joining, reshaping, flipping, ``cumsum``, ``diff``, ``take``, ``outer``."""

from __future__ import annotations

from typing import Any, Callable

import math

import numpy as np

from ...errors import CircuitError, ShapeError
from ...value import Value, user_line
from .binding import (as_value, at_least_rank, axes_of, axis_of, bind, builder_of, numpy_name,
                      operands_of, refuse, traced, warn_point_reduction, with_kept_axes)

def _reduce(op: str, func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "axis": None, "keepdims": (False, True)})
    if bound.get("keepdims"):
        x = bound["a"]
        plain = _reduce(op, func, (x,), {"axis": bound.get("axis")})
        return with_kept_axes(x, plain, axes_of(numpy_name(func), bound.get("axis"), len(x.shape)))
    x = bound["a"]
    if not isinstance(x, Value):
        raise refuse(numpy_name(func))
    axes, b = axes_of(numpy_name(func), bound.get("axis"), len(x.shape)), x.builder
    if not x.shape:
        warn_point_reduction(numpy_name(func), b)
    if op in ("max", "min") and 0 in (x.shape if axes is None else
                                      [x.shape[a] for a in axes if a < len(x.shape)]):
        raise ShapeError(f"{numpy_name(func)}: the {op} of an empty slice (shape {x.shape}"
                         f"{'' if axes is None else ', axis ' + str(bound.get('axis'))}) "
                         "has no value" + user_line())
    if axes is None:
        return b.apply(op, x)
    if len(axes) == 1:
        return b.apply(op, x, axis=axes[0])
    total, count = x, 1
    for a in axes:  # from the last axis down, so that the others keep their numbers
        total = b.apply("sum" if op == "mean" else op, total, axis=a)
        count *= x.shape[a]
    return total / float(count) if op == "mean" else total


def _where(func: Any, args: tuple, kwargs: dict) -> Any:
    if len(args) + len(kwargs) != 3:
        raise CircuitError("numpy.where(condition) (the indices) cannot be traced; "
                           "np.where(condition, a, b) does" + user_line())
    bound = bind(func, args, kwargs, {"condition": None, "x": None, "y": None})
    values = (bound["condition"], bound["x"], bound["y"])
    return builder_of(values).apply("where", *values)


def _clip(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "a_min": None, "a_max": None, "min": None,
                                       "max": None})
    x = bound["a"]
    if bound.keys() & {"a_min", "a_max"} and bound.keys() & {"min", "max"}:
        # NumPy's error (a_min was taken and min= ignored)
        raise CircuitError("numpy.clip: give the bounds as a_min/a_max or as min/max, not "
                           "both" + user_line())
    lo = bound.get("a_min", bound.get("min"))
    hi = bound.get("a_max", bound.get("max"))
    b = builder_of((x, lo, hi))
    if lo is None and hi is None:
        raise CircuitError("numpy.clip needs a bound" + user_line())
    if lo is None:
        return b.apply("minimum", x, hi)
    if hi is None:
        return b.apply("maximum", x, lo)
    return b.apply("clip", x, lo, hi)


def _round(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "decimals": (0,)})
    return builder_of((bound["a"],)).apply("round", bound["a"])


def _transpose(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "axes": None})
    x, axes = traced(func, bound["a"]), bound.get("axes")
    return x.T if axes is None else x.transpose(tuple(axes))


def _concatenate(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"arrays": None, "axis": None})
    builder, parts = operands_of(func, bound["arrays"])
    axis = bound.get("axis", 0)
    if axis is None:
        return builder.apply("concatenate", *(p.ravel() for p in parts), axis=0)
    return builder.apply("concatenate", *parts, axis=axis_of(func, axis, len(parts[0].shape)))


def _stack(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"arrays": None, "axis": None})
    builder, parts = operands_of(func, bound["arrays"])
    axis = axis_of(func, bound.get("axis", 0), len(parts[0].shape) + 1)
    return builder.apply("stack", *parts, axis=axis)


def _at_least(rank: int) -> Callable[..., Any]:
    def handler(func: Any, args: tuple, kwargs: dict) -> Any:
        if kwargs:
            raise CircuitError(f"{numpy_name(func)} takes no keyword arguments" + user_line())
        b = builder_of(args)  # (a number or an array among them: a constant of the circuit)
        out = [at_least_rank(as_value(b, a), rank) for a in args]
        return out[0] if len(out) == 1 else tuple(out)

    return handler


def _hstack(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"tup": None})
    builder, parts = operands_of(func, bound["tup"])
    parts = [at_least_rank(p, 1) for p in parts]
    axis = 0 if len(parts[0].shape) == 1 else 1
    return builder.apply("concatenate", *parts, axis=axis)


def _vstack(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"tup": None})
    builder, parts = operands_of(func, bound["tup"])
    return builder.apply("concatenate", *(at_least_rank(p, 2) for p in parts), axis=0)


def _reshape(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "shape": None, "newshape": None,
                                       "order": ("C",)})
    shape = bound.get("shape", bound.get("newshape"))
    return traced(func, bound["a"]).reshape(shape)


def _ravel(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "order": ("C",)})
    return traced(func, bound["a"]).ravel()


def _expand_dims(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "axis": None})
    x = traced(func, bound["a"])
    axes = bound["axis"] if isinstance(bound["axis"], (tuple, list)) else (bound["axis"],)
    ndim = len(x.shape) + len(axes)
    new = sorted(axis_of(func, a, ndim) for a in axes)
    rest = iter(x.shape)
    return x.reshape(tuple(1 if k in new else next(rest) for k in range(ndim)))


def _squeeze(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "axis": None})
    x = traced(func, bound["a"])
    axis = bound.get("axis")
    if axis is None:
        drop = {k for k, n in enumerate(x.shape) if n == 1}
    else:
        drop = {axis_of(func, a, len(x.shape))
                for a in (axis if isinstance(axis, (tuple, list)) else (axis,))}
        if any(x.shape[k] != 1 for k in drop):
            raise CircuitError(f"numpy.squeeze: axis {axis} of shape {x.shape} does not have "
                               "length 1" + user_line())
    return x.reshape(tuple(n for k, n in enumerate(x.shape) if k not in drop))


def _flip(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"m": None, "axis": None})
    x = traced(func, bound["m"])
    axis = bound.get("axis")
    axes = range(len(x.shape)) if axis is None else [
        axis_of(func, a, len(x.shape)) for a in (axis if isinstance(axis, (tuple, list))
                                                  else (axis,))]
    index = tuple(slice(None, None, -1) if k in axes else slice(None)
                  for k in range(len(x.shape)))
    return x[index]


def _cumsum(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "axis": None})
    x = traced(func, bound["a"])
    axis = bound.get("axis")
    return x.cumsum(None if axis is None else axis_of(func, axis, len(x.shape)))


def _diff(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "n": None, "axis": None})
    x = traced(func, bound["a"])
    n, axis = bound.get("n", 1), axis_of(func, bound.get("axis", -1), len(x.shape))
    # NumPy's checks of n (a negative n was the input unchanged, a float a raw TypeError)
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise CircuitError(f"numpy.diff: n must be a non-negative integer, got {n!r}"
                           + user_line())
    for _ in range(n):
        lo = tuple(slice(None, -1) if k == axis else slice(None) for k in range(len(x.shape)))
        hi = tuple(slice(1, None) if k == axis else slice(None) for k in range(len(x.shape)))
        x = x[hi] - x[lo]
    return x


def _outer(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "b": None})
    return builder_of((bound["a"], bound["b"])).apply("outer", bound["a"], bound["b"])


def _like(func: Any, args: tuple, kwargs: dict, fill: float) -> Any:
    # A constant of one point's shape (a batch broadcasts it).
    x = traced(func, bind(func, args, kwargs, {"a": None})["a"])
    return x.builder.const(np.full(x.shape, fill)) if x.shape else x.builder.const(fill)


def _size(func: Any, bound: dict) -> int:
    # np.size(x) or np.size(x, axis): a number of the point's shape, as NumPy's
    x, axis = traced(func, bound["a"]), bound.get("axis")
    if axis is None:
        return x.size
    shape = x.shape
    try:
        return shape[axis] if isinstance(axis, int) else math.prod(shape[a] for a in axis)
    except (IndexError, TypeError):
        raise ShapeError(f"numpy.size: axis {axis!r} is out of range for shape {shape}"
                         + user_line()) from None


FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.sum: lambda f, a, k: _reduce("sum", f, a, k),
    np.mean: lambda f, a, k: _reduce("mean", f, a, k),
    np.max: lambda f, a, k: _reduce("max", f, a, k),
    np.min: lambda f, a, k: _reduce("min", f, a, k),
    np.prod: lambda f, a, k: _reduce("prod", f, a, k),
    np.where: _where,
    np.amax: lambda f, a, k: _reduce("max", f, a, k),
    np.amin: lambda f, a, k: _reduce("min", f, a, k),
    np.around: _round,
    np.clip: _clip,
    np.round: _round,
    np.transpose: _transpose,
    np.outer: _outer,
    np.concatenate: _concatenate,
    np.stack: _stack,
    np.hstack: _hstack,
    np.vstack: _vstack,
    np.atleast_1d: _at_least(1),
    np.atleast_2d: _at_least(2),
    np.atleast_3d: _at_least(3),
    np.reshape: _reshape,
    np.ravel: _ravel,
    np.expand_dims: _expand_dims,
    np.squeeze: _squeeze,
    np.flip: _flip,
    np.cumsum: _cumsum,
    np.diff: _diff,
    np.zeros_like: lambda f, a, k: _like(f, a, k, 0.0),
    np.ones_like: lambda f, a, k: _like(f, a, k, 1.0),
    np.shape: lambda f, a, k: bind(f, a, k, {"a": None})["a"].shape,
    np.ndim: lambda f, a, k: len(bind(f, a, k, {"a": None})["a"].shape),
    np.size: lambda f, a, k: _size(f, bind(f, a, k, {"a": None, "axis": None})),
}
