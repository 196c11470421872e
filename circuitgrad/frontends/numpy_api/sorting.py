"""The handlers of the NumPy functions that sort: ``sort``, ``argsort``, ``partition``,
``argpartition``, ``argmax``, ``argmin`` and ``take_along_axis``.

``np.sort(x)`` is ``take_along_axis(x, argsort(x))`` (:mod:`circuitgrad.primitives.sorting`):
the stable permutation, computed when the circuit is evaluated, and the values gathered by it;
the adjoint scatters back by the same indices. A sorted lane is a partition for every ``kth``.
``argmax`` is the first entry of the stable order of ``-x``, or of the NaN mask's where the
lane has a NaN (NumPy's first maximum, or first NaN). Indices are float64 integers, and
``take_along_axis`` takes traced indices only where they are provably integers in range.

    >>> import numpy as np, circuitgrad as cg
    >>> cg.grad(lambda x: np.sort(x) @ np.array([1.0, 10.0, 100.0]))(np.array([2.0, 3.0, 1.0]))
    array([ 10., 100.,   1.])
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ...errors import CircuitError, ShapeError
from ...value import Value
from .binding import as_value, axis_of, bind, traced
from .shapes import constant, entry_numbers, numpy_checks, picked_from


def _sorted_axis(func: Any, args: tuple, kwargs: dict, extra: dict) -> tuple[Value, int, dict]:
    bound = bind(func, args, kwargs, {"a": None, "axis": None, "kind": None, "stable": None,
                                       **extra})
    x = traced(func, bound.pop("a"))
    for key in ("kth", "kind", "stable"):
        constant(func, bound.get(key), key)
    # NumPy's own checks of the arguments, on the entry numbers
    numpy_checks(func, lambda: func(entry_numbers(x.shape), **bound))
    axis = bound.get("axis", -1)
    if axis is None:
        x, axis = x.reshape(-1), 0
    return x, axis_of(func, axis, len(x.shape)), bound


def _argsort(func: Any, args: tuple, kwargs: dict) -> Any:
    x, axis, _ = _sorted_axis(func, args, kwargs, {})
    return x.builder.apply("argsort", x, axis=axis)


def _sort(func: Any, args: tuple, kwargs: dict) -> Any:
    x, axis, _ = _sorted_axis(func, args, kwargs, {})
    return x.builder.apply("take_along_axis", x, x.builder.apply("argsort", x, axis=axis),
                           axis=axis)


def _kth(func: Any, args: tuple, kwargs: dict) -> tuple[Value, int]:
    # A sorted lane is a partition for every kth (NumPy leaves the order of the others open).
    x, axis, _ = _sorted_axis(func, args, kwargs, {"kth": None})
    return x, axis


def _partition(func: Any, args: tuple, kwargs: dict) -> Any:
    x, axis = _kth(func, args, kwargs)
    return x.builder.apply("take_along_axis", x, x.builder.apply("argsort", x, axis=axis),
                           axis=axis)


def _argpartition(func: Any, args: tuple, kwargs: dict) -> Any:
    x, axis = _kth(func, args, kwargs)
    return x.builder.apply("argsort", x, axis=axis)


def _arg_extreme(largest: bool) -> Callable[..., Any]:
    def handler(func: Any, args: tuple, kwargs: dict) -> Any:
        # NumPy's index of the first maximum (minimum), or of the first NaN where the lane
        # has one: the first entry of the stable order of -x (x), or of the NaN mask's.
        bound = bind(func, args, kwargs, {"a": None, "axis": None, "keepdims": (False, True)})
        x, axis, keep = traced(func, bound["a"]), bound.get("axis"), bound.get("keepdims")
        out_shape = numpy_checks(func, lambda: func(entry_numbers(x.shape), axis=axis,
                                                    keepdims=bool(keep))).shape
        lane = x.reshape(-1) if axis is None else x
        ax = 0 if axis is None else axis_of(func, axis, len(x.shape))
        b = lane.builder
        first = (slice(None),) * ax + (0,)
        nan = b.apply("not_equal", lane, lane)
        best = b.apply("argsort", -lane if largest else lane, axis=ax)[first]
        first_nan = b.apply("argsort", 1.0 - nan, axis=ax)[first]
        out = b.apply("where", b.apply("max", nan, axis=ax), first_nan, best)
        return out.reshape(out_shape) if out.shape != out_shape else out

    return handler


_INDEX_OPS = ("getitem", "take", "reshape", "permute_dims", "broadcast_to", "concatenate",
              "stack")


def _index_bound(indices: Value) -> int | None:
    """The largest entry ``indices`` can have when it is made of integers only (argsort's
    entries and constant integers, rearranged), else None: a bound known while tracing."""
    b, todo, bound, seen = indices.builder, [indices.id], -1, set()
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        op = b.ops[i]
        if op == "argsort":
            bound = max(bound, b.shapes[b.args[i][0]][b.params[i]["axis"]] - 1)
        elif op == "const":
            value = np.asarray(b.params[i])
            if value.size and (np.any(value != np.floor(value)) or np.any(value < 0)):
                return None
            bound = max(bound, int(value.max(initial=-1)))
        elif op in _INDEX_OPS:
            todo.extend(b.args[i])
        elif op == "where":  # (argmax's) either branch, whatever the condition
            todo.extend(b.args[i][1:])
        else:
            return None
    return bound


def _take_along_axis(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"arr": None, "indices": None, "axis": None})
    arr, indices, axis = bound["arr"], bound["indices"], bound.get("axis", -1)
    if not isinstance(indices, Value):
        x = traced(func, arr)
        return picked_from(x, numpy_checks(func, lambda: np.take_along_axis(
            entry_numbers(x.shape), np.asarray(indices), axis=axis)))
    b = indices.builder
    x = as_value(b, arr)
    if axis is None:
        x, axis = x.reshape(-1), 0
    if len(x.shape) != len(indices.shape):
        raise ShapeError(f"numpy.take_along_axis: arr of shape {x.shape} and indices of shape "
                         f"{indices.shape} have different numbers of axes")
    axis = axis_of(func, axis, len(x.shape))
    top = _index_bound(indices)
    if top is None:
        raise CircuitError("numpy.take_along_axis: traced indices must come from np.argsort, "
                           "np.argpartition, np.argmax or np.argmin (parts of them, "
                           "rearranged), so that they are integers in range whatever the values")
    if top >= x.shape[axis]:
        raise ShapeError(f"numpy.take_along_axis: indices up to {top} are out of range for "
                         f"axis {axis} of length {x.shape[axis]}")
    rest = [k for k in range(len(x.shape)) if k != axis]
    try:
        common = np.broadcast_shapes(*(tuple(s[k] for k in rest)
                                       for s in (x.shape, indices.shape)))
    except ValueError:
        raise ShapeError(f"numpy.take_along_axis: shapes {x.shape} and {indices.shape} do not "
                         "broadcast (but along the axis)") from None

    def widened(v: Value) -> Value:
        shape = list(common)
        shape.insert(axis, v.shape[axis])
        shape = tuple(shape)
        return v if v.shape == shape else b.apply("broadcast_to", v, shape=shape)

    return b.apply("take_along_axis", widened(x), widened(indices), axis=axis)


FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.sort: _sort,
    np.argsort: _argsort,
    np.partition: _partition,
    np.argpartition: _argpartition,
    np.take_along_axis: _take_along_axis,
    np.argmax: _arg_extreme(largest=True),
    np.argmin: _arg_extreme(largest=False),
}
