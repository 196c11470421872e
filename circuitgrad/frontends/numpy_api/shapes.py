"""The handlers of the NumPy functions that rearrange entries: repeat, tile, roll, pad, the
splits and joins, the axis moves, flips and rotations, diagonals and triangles, ``insert``
and ``block``, ``linspace`` with traced end points, broadcasting and ``meshgrid``.

Most of them are NumPy's own function applied to the *entry numbers* of the point
(``np.arange(x.size).reshape(x.shape)``): what NumPy returns says which entry of ``x`` lands
where, with every argument form and every error NumPy has, and the circuit is one ``take`` of
the flattened point (a copy, as NumPy's; its adjoint adds repeated entries up). Functions whose
result NumPy makes a view (``moveaxis``, ``flipud``, ``rot90``, the splits ...) build the
views instead (``permute_dims``, ``getitem``), so that writes through them reach the base.
Sorting is in :mod:`.sorting`.

    >>> import numpy as np, circuitgrad as cg
    >>> c = cg.trace(lambda x: np.pad(np.repeat(x, 2), 1, mode="reflect"), shapes={"x": 2})
    >>> cg.to_numpy(c)(np.array([1.0, 2.0])).tolist()
    [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable

import numpy as np

from ...errors import CircuitError, ShapeError
from ...value import Value
from .binding import (as_value, at_least_rank, axis_of, bind, builder_of, leaves, numpy_name,
                      operands_of, traced)


# -- NumPy's function on the entry numbers -----------------------------------------------------

def entry_numbers(shape: tuple[int, ...]) -> np.ndarray:
    """The entries' numbers in C order, as an array of ``shape``: what NumPy's function is
    applied to, so that its result says which entry lands where.

        >>> np.roll(entry_numbers((2, 2)), 1).tolist()
        [[3, 0], [1, 2]]
    """
    return np.arange(math.prod(shape), dtype=np.intp).reshape(shape)


def numpy_checks(func: Any, compute: Callable[[], Any]) -> Any:
    """``compute()`` (NumPy's function on entry numbers), its errors as ShapeErrors naming
    ``func``."""
    try:
        return compute()
    except (ValueError, TypeError, IndexError) as e:
        raise ShapeError(f"{numpy_name(func)}: {e}") from None


def constant(func: Any, value: Any, what: str) -> Any:
    if isinstance(value, Value) or isinstance(value, (list, tuple)) and any(
            isinstance(v, Value) for v in leaves(value)):
        raise CircuitError(f"{numpy_name(func)}: {what} must be a constant, not a traced value "
                           "(the circuit's shape cannot depend on data)")
    return value


def picked_from(x: Value, picked: np.ndarray, extra: np.ndarray | None = None) -> Value:
    """The array whose entries are ``x``'s entries numbered ``picked`` (entry numbers from
    ``x.size`` on pick ``extra``'s, constants): one ``take`` of the flattened point."""
    b, picked = x.builder, np.asarray(picked)
    if extra is None and picked.shape == x.shape and np.array_equal(picked, entry_numbers(x.shape)):
        return Value(b, x.id)  # NumPy's copy of the same entries
    extras = [] if extra is None else [b.const(np.asarray(extra, dtype=np.float64).ravel())]
    return _from(b, [x, *extras], picked)


def _from(b: Any, sources: list[Value], picked: np.ndarray) -> Value:
    """The array whose entries are those numbered ``picked`` of the sources' entries, joined
    flat in order: one ``take`` of their concatenation."""
    picked = np.asarray(picked)
    if picked.size == 0:
        return b.const(np.zeros(picked.shape))
    flats = [b.apply("reshape", v, shape=(v.size,)) for v in sources if v.size]
    flat = flats[0] if len(flats) == 1 else b.apply("concatenate", *flats, axis=0)
    order = tuple(int(k) for k in picked.ravel())
    if order != tuple(range(flat.shape[0])):
        flat = b.apply("take", flat, indices=order, axis=0)
    return b.apply("reshape", flat, shape=picked.shape)


def _rearranged(name: str, **allowed: Any) -> Callable[..., Any]:
    """The handler of a NumPy function of one array (its first parameter) that copies
    entries: NumPy's function applied to the entry numbers, every other argument a constant."""

    def handler(func: Any, args: tuple, kwargs: dict) -> Any:
        bound = bind(func, args, kwargs, {k: None for k in allowed} | {name: None})
        x = traced(func, bound.pop(name))
        for key, value in bound.items():
            constant(func, value, key)
        return picked_from(x, numpy_checks(func, lambda: func(entry_numbers(x.shape), **bound)))

    return handler


def _extended(x: Value, padded: np.ndarray, values: np.ndarray) -> Value:
    """``x``'s entries where ``padded`` (NumPy's function on the entry numbers, with -1 for a
    new entry) has an entry number, else ``values``' (NumPy's function on the constants)."""
    new = padded < 0
    picked = np.where(new, x.size + np.cumsum(new.ravel()).reshape(padded.shape) - 1, padded)
    return picked_from(x, picked, values[new])


# -- repeat, tile, roll, pad, take, compress ---------------------------------------------------

_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def _pad(func: Any, args: tuple, kwargs: dict) -> Any:
    names = ("array", "pad_width", "mode")
    given = dict(zip(names, args))
    if len(args) > 3 or set(given) & set(kwargs):
        raise CircuitError("numpy.pad takes array, pad_width, mode and keyword arguments")
    options = {**given, **kwargs}
    x = traced(func, options.pop("array", None))
    pad_width = constant(func, options.pop("pad_width", None), "pad_width")
    mode = options.pop("mode", "constant")
    if not isinstance(mode, str) or mode not in _PAD_MODES:
        raise CircuitError(f"numpy.pad: mode={mode!r} cannot be traced (the modes that trace: "
                           f"{', '.join(_PAD_MODES)})")
    if options.get("reflect_type", "even") != "even":
        raise CircuitError("numpy.pad: reflect_type='odd' cannot be traced (it computes new "
                           "values; 'even', the default, traces)")
    for key, value in options.items():
        constant(func, value, key)
    ids = entry_numbers(x.shape)
    if mode != "constant":
        return picked_from(x, numpy_checks(func, lambda: np.pad(ids, pad_width, mode, **options)))
    values = numpy_checks(func, lambda: np.pad(np.zeros(x.shape), pad_width, mode, **options))
    padded = np.pad(ids, pad_width, mode, constant_values=-1)
    return _extended(x, padded, values)


def _take(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "indices": None, "axis": None,
                                       "mode": ("raise", "wrap", "clip")})
    x = traced(func, bound.pop("a"))
    constant(func, bound["indices"], "indices")
    return picked_from(x, numpy_checks(func, lambda: np.take(entry_numbers(x.shape), **bound)))


def _compress(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"condition": None, "a": None, "arr": None, "axis": None})
    x = traced(func, bound.pop("a", bound.pop("arr", None)))
    constant(func, bound["condition"], "condition (which entries are kept)")
    condition = bound.pop("condition")
    return picked_from(x, numpy_checks(func, lambda: func(condition, entry_numbers(x.shape),
                                                          **bound)))


def _insert(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"arr": None, "obj": None, "values": None, "axis": None})
    b = builder_of((bound["arr"], bound["values"]))
    x, v = as_value(b, bound["arr"]), as_value(b, bound["values"])
    obj = constant(func, bound["obj"], "obj (where the values go)")
    # NumPy places (and broadcasts) the values' entry numbers as it would the values
    numbers = x.size + entry_numbers(v.shape)
    picked = numpy_checks(func, lambda: np.insert(entry_numbers(x.shape), obj, numbers,
                                                  axis=bound.get("axis")))
    return _from(b, [x, v], picked)


def _block(func: Any, args: tuple, kwargs: dict) -> Any:
    arrays = bind(func, args, kwargs, {"arrays": None})["arrays"]
    b = builder_of([a for a in leaves([arrays]) if isinstance(a, Value)][:1])
    sources: list[Value] = []

    def numbered(item: Any) -> Any:  # the same nesting, each block its entry numbers
        if isinstance(item, (list, tuple)):
            return type(item)(numbered(e) for e in item)
        v = as_value(b, item)
        start = sum(s.size for s in sources)
        sources.append(v)
        return start + entry_numbers(v.shape)

    picked = numpy_checks(func, lambda: np.block(numbered(arrays)))
    return _from(b, sources, picked)


# -- the splits: views of parts along one axis ---------------------------------------------------

def _split(axis_rule: Callable[[int, Any], int]) -> Callable[..., Any]:
    def handler(func: Any, args: tuple, kwargs: dict) -> Any:
        bound = bind(func, args, kwargs, {"ary": None, "indices_or_sections": None,
                                           "axis": None})
        x = traced(func, bound.pop("ary"))
        constant(func, bound["indices_or_sections"], "indices_or_sections")
        pieces = numpy_checks(func, lambda: func(entry_numbers(x.shape), **bound))
        axis = axis_rule(len(x.shape), bound.get("axis", 0))
        out, start = [], 0
        for piece in pieces:
            n = piece.shape[axis]
            out.append(x[(slice(None),) * axis + (slice(start, start + n),)])
            start += n
        return out

    return handler


def _unstack(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"x": None, "axis": None})
    x = traced(func, bound["x"])
    numpy_checks(func, lambda: np.unstack(entry_numbers(x.shape), axis=bound.get("axis", 0)))
    axis = axis_of(func, bound.get("axis", 0), len(x.shape))
    return tuple(x[(slice(None),) * axis + (k,)] for k in range(x.shape[axis]))


# -- joins ---------------------------------------------------------------------------------------

def _rows(tup: Any) -> Any:
    # NumPy's joins take any sequence: an array is the sequence of its rows.
    return list(tup) if isinstance(tup, Value) and tup.shape else tup


def _column_stack(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"tup": None})
    builder, parts = operands_of(func, _rows(bound["tup"]))
    columns = [p.reshape(p.size, 1) if len(p.shape) < 2 else p for p in parts]
    numpy_checks(func, lambda: np.column_stack([np.zeros(p.shape) for p in columns]))
    return builder.apply("concatenate", *columns, axis=1)


def _dstack(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"tup": None})
    builder, parts = operands_of(func, _rows(bound["tup"]))
    parts = [at_least_rank(p, 3) for p in parts]
    numpy_checks(func, lambda: np.concatenate([np.zeros(p.shape) for p in parts], axis=2))
    return builder.apply("concatenate", *parts, axis=2)


def _append(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"arr": None, "values": None, "axis": None})
    builder = builder_of((bound["arr"], bound["values"]))
    a, v = as_value(builder, bound["arr"]), as_value(builder, bound["values"])
    axis = bound.get("axis")
    if axis is None:
        a, v, axis = a.reshape(-1), v.reshape(-1), 0
    shape = numpy_checks(func, lambda: np.append(np.zeros(a.shape), np.zeros(v.shape),
                                                 axis=axis)).shape
    if math.prod(shape) == 0:
        return builder.const(np.zeros(shape))
    if a.size == 0 or v.size == 0:  # the other one's entries, as a copy
        return Value(builder, (v if a.size == 0 else a).id)
    return builder.apply("concatenate", a, v, axis=axis_of(func, axis, len(a.shape)))


# -- moving axes: views --------------------------------------------------------------------------

def _permutation(func: Any, x: Value, call: Callable[[np.ndarray], np.ndarray]) -> list[int]:
    """The axes ``call`` (NumPy's function) puts where: applied to an array (of no memory)
    whose axes have the distinct lengths 1, 2, 3 ..."""
    marked = np.broadcast_to(np.empty(()), tuple(range(1, len(x.shape) + 1)))
    return [n - 1 for n in numpy_checks(func, lambda: call(marked)).shape]


def _moved(names: tuple[str, ...]) -> Callable[..., Any]:
    def handler(func: Any, args: tuple, kwargs: dict) -> Any:
        bound = bind(func, args, kwargs, {k: None for k in names})
        x = traced(func, bound.pop(names[0]))
        axes = _permutation(func, x, lambda m: func(m, **bound))
        return x.transpose(axes) if axes else x[...]

    return handler


def _flipud(func: Any, args: tuple, kwargs: dict) -> Any:
    x = traced(func, bind(func, args, kwargs, {"m": None})["m"])
    numpy_checks(func, lambda: func(entry_numbers(x.shape)))
    return x[::-1, ...]


def _fliplr(func: Any, args: tuple, kwargs: dict) -> Any:
    x = traced(func, bind(func, args, kwargs, {"m": None})["m"])
    numpy_checks(func, lambda: func(entry_numbers(x.shape)))
    return x[:, ::-1]


def _rot90(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"m": None, "k": None, "axes": None})
    m, k, axes = traced(func, bound["m"]), bound.get("k", 1), tuple(bound.get("axes", (0, 1)))
    numpy_checks(func, lambda: np.rot90(entry_numbers(m.shape), k, axes))
    # NumPy's own steps (a view of flips and a transpose).
    k = operator.index(k) % 4
    if k == 0:
        return m[:]
    if k == 2:
        return np.flip(np.flip(m, axes[0]), axes[1])
    order = list(range(len(m.shape)))
    order[axes[0]], order[axes[1]] = order[axes[1]], order[axes[0]]
    if k == 1:
        return np.transpose(np.flip(m, axes[1]), order)
    return np.flip(np.transpose(m, order), axes[1])


# -- diagonals and triangles ---------------------------------------------------------------------

def _diag(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"v": None, "k": None})
    x, k = traced(func, bound["v"]), constant(func, bound.get("k", 0), "k")
    if len(x.shape) != 1 and func is not np.diagflat:
        return picked_from(x, numpy_checks(func, lambda: func(entry_numbers(x.shape), k)))
    # NumPy's zeros are -1: the entry after x's, a zero
    padded = numpy_checks(func, lambda: func(entry_numbers(x.shape) + 1, k)) - 1
    return _extended(x, padded, np.zeros(padded.shape))


def _trace(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "offset": None, "axis1": None, "axis2": None})
    x = traced(func, bound.pop("a"))
    d = picked_from(x, numpy_checks(func, lambda: np.diagonal(entry_numbers(x.shape), **bound)))
    return d.builder.apply("sum", d, axis=len(d.shape) - 1)


def _triangle(lower: bool) -> Callable[..., Any]:
    def handler(func: Any, args: tuple, kwargs: dict) -> Any:
        bound = bind(func, args, kwargs, {"m": None, "k": None})
        x, k = traced(func, bound["m"]), constant(func, bound.get("k", 0), "k")
        numpy_checks(func, lambda: func(entry_numbers(x.shape), k))
        # NumPy's where(tri(..., k), m, 0) (triu: where(tri(..., k - 1), 0, m)).
        mask = np.tri(*x.shape[-2:], k=k if lower else k - 1)
        kept = mask if lower else 1.0 - mask
        return x.builder.apply("where", x.builder.const(kept), x, 0.0)

    return handler


# -- linspace with traced end points -------------------------------------------------------------

def _linspace(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"start": None, "stop": None, "num": None,
                                       "endpoint": None, "retstep": None, "axis": None,
                                       "dtype": (None, float, np.float64)})
    start, stop = bound["start"], bound["stop"]
    num = numpy_checks(func, lambda: operator.index(constant(func, bound.get("num", 50), "num")))
    endpoint, retstep = bound.get("endpoint", True), bound.get("retstep", False)
    b = builder_of((start, stop))
    start, stop = as_value(b, start), as_value(b, stop)
    numpy_checks(func, lambda: np.linspace(np.zeros(start.shape), np.zeros(stop.shape), num,
                                           axis=bound.get("axis", 0)))
    # NumPy's steps, as its source writes them (numpy/_core/function_base.py).
    div = (num - 1) if endpoint else num
    delta = stop - start
    y = np.arange(0, num, dtype=np.float64).reshape((-1,) + (1,) * len(delta.shape))
    if div > 0:
        step = delta / float(div)
        zero = b.apply("equal", step, 0.0)
        if zero.shape:
            zero = b.apply("max", zero)
        # y/div·delta where any step is 0 (denormals, gh-5437), else y·step
        out = b.apply("where", zero, b.const(y / div) * delta, b.const(y) * step)
    else:
        step = b.const(np.nan)
        out = b.const(y) * delta
    out = out + start
    if endpoint and num > 1:
        last = b.apply("broadcast_to", stop, shape=out.shape[1:]) if stop.shape != out.shape[1:] \
            else stop
        head = out[:-1]
        out = b.apply("concatenate", head, last.reshape((1,) + last.shape), axis=0)
    axis = bound.get("axis", 0)
    if axis != 0:
        out = np.moveaxis(out, 0, axis)
    return (out, step) if retstep else out


# -- broadcasting and grids ----------------------------------------------------------------------

def _broadcast(b: Any, v: Value, shape: tuple[int, ...]) -> Value:
    if v.shape == tuple(shape):
        return v
    if math.prod(shape) == 0:
        return b.const(np.zeros(shape))
    return b.apply("broadcast_to", v, shape=tuple(shape))


def _broadcast_to(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"array": None, "shape": None})
    x = traced(func, bound["array"])
    shape = constant(func, bound["shape"], "shape")
    marked = np.broadcast_to(np.empty(()), x.shape)  # no memory
    out = numpy_checks(func, lambda: np.broadcast_to(marked, shape))
    return _broadcast(x.builder, x, out.shape)


def _broadcast_arrays(func: Any, args: tuple, kwargs: dict) -> Any:
    if kwargs:
        raise CircuitError("numpy.broadcast_arrays: keyword arguments cannot be traced")
    b = builder_of(args)
    values = [as_value(b, a) for a in args]
    shape = numpy_checks(func, lambda: np.broadcast_shapes(*(v.shape for v in values)))
    return tuple(_broadcast(b, v, shape) for v in values)


def _meshgrid(func: Any, args: tuple, kwargs: dict) -> Any:
    options = dict(kwargs)
    indexing = options.pop("indexing", "xy")
    sparse, _copy = options.pop("sparse", False), options.pop("copy", True)
    if options or indexing not in ("xy", "ij"):
        raise CircuitError("numpy.meshgrid: only indexing='xy' or 'ij', sparse= and copy= "
                           "trace")
    b = builder_of(args)
    ndim = len(args)
    s0 = (1,) * ndim
    # NumPy's steps: each input flattened along its own axis, the first two swapped for 'xy'.
    out = [as_value(b, x).reshape(s0[:i] + (-1,) + s0[i + 1:]) for i, x in enumerate(args)]
    if indexing == "xy" and ndim > 1:
        out[0] = out[0].reshape((1, -1) + s0[2:])
        out[1] = out[1].reshape((-1, 1) + s0[2:])
    if not sparse:
        shape = np.broadcast_shapes(*(v.shape for v in out))
        out = [_broadcast(b, v, shape) for v in out]
    return tuple(Value(b, v.id) for v in out)


def _matrix_transpose(func: Any, args: tuple, kwargs: dict) -> Any:
    x = traced(func, bind(func, args, kwargs, {"x": None})["x"])
    numpy_checks(func, lambda: np.matrix_transpose(entry_numbers(x.shape)))
    return x.swapaxes(-1, -2)


FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.repeat: _rearranged("a", repeats=None, axis=None),
    np.tile: _rearranged("A", reps=None),
    np.roll: _rearranged("a", shift=None, axis=None),
    np.resize: _rearranged("a", new_shape=None),
    np.delete: _rearranged("arr", obj=None, axis=None),
    np.diagonal: _rearranged("a", offset=None, axis1=None, axis2=None),
    np.diagflat: _diag,
    np.pad: _pad,
    np.take: _take,
    np.compress: _compress,
    np.extract: _compress,
    np.split: _split(lambda ndim, axis: axis_of(np.split, axis, ndim)),
    np.array_split: _split(lambda ndim, axis: axis_of(np.array_split, axis, ndim)),
    np.hsplit: _split(lambda ndim, axis: 1 if ndim > 1 else 0),
    np.vsplit: _split(lambda ndim, axis: 0),
    np.dsplit: _split(lambda ndim, axis: 2),
    np.unstack: _unstack,
    np.column_stack: _column_stack,
    np.dstack: _dstack,
    np.append: _append,
    np.moveaxis: _moved(("a", "source", "destination")),
    np.swapaxes: _moved(("a", "axis1", "axis2")),
    np.rollaxis: _moved(("a", "axis", "start")),
    np.matrix_transpose: _matrix_transpose,
    np.flipud: _flipud,
    np.fliplr: _fliplr,
    np.rot90: _rot90,
    np.diag: _diag,
    np.trace: _trace,
    np.tril: _triangle(lower=True),
    np.triu: _triangle(lower=False),
    np.insert: _insert,
    np.block: _block,
    np.linspace: _linspace,
    np.broadcast_to: _broadcast_to,
    np.broadcast_arrays: _broadcast_arrays,
    np.meshgrid: _meshgrid,
}
