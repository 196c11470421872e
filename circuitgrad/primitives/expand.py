"""The scalar expansions of the tensor primitives: what :func:`circuitgrad.scalarize` reads.

A record's ``scalar`` field is ``scalar(b, prim, args, params, shape)``: it gets the Builder
``b`` of the scalar circuit, the record itself, the arguments as NumPy object grids of node ids
of ``b`` (one id per entry), the node's params and its output shape, and returns the output's
grid, built with ``b.apply_id`` and ``b.const_id`` only. A reduction is a left fold of its
record's ``fold`` (sum: add, norm: hypot): the same values as NumPy's up to rounding. Indexing,
joining and reshaping move ids around: NumPy does it on the grids. A record without ``scalar``
is elementwise (one node per entry, with NumPy broadcasting).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import special

Grid = np.ndarray


def grid(shape: tuple[int, ...]) -> Grid:
    """An empty object grid of ``shape``."""
    return np.empty(shape, dtype=object)


def fold(b: Any, op: str, ids: list[int]) -> int:
    """``ids`` combined by the binary op ``op``, left to right."""
    result = ids[0]
    for i in ids[1:]:
        result = b.apply_id(op, (result, i))
    return result


def elementwise(b: Any, prim: Any, args: list[Grid], params: dict, shape: tuple) -> Grid:
    """One node per entry, the arguments broadcast as NumPy does."""
    out = grid(shape)
    grids = np.broadcast_arrays(*args)
    for index in np.ndindex(shape):
        out[index] = b.apply_id(prim.name, tuple(int(g[index]) for g in grids), params or None)
    return out


def matmul(b: Any, prim: Any, args: list[Grid], params: dict, shape: tuple) -> Grid:
    x, y = args
    x2 = x.reshape(1, -1) if x.ndim == 1 else x
    y2 = y.reshape(-1, 1) if y.ndim == 1 else y
    full = grid((x2.shape[0], y2.shape[1]))
    for i, j in np.ndindex(full.shape):
        terms = [b.apply_id("mul", (x2[i, t], y2[t, j])) for t in range(x2.shape[1])]
        full[i, j] = fold(b, "add", terms)
    return full.reshape(shape)


def outer(b: Any, prim: Any, args: list[Grid], params: dict, shape: tuple) -> Grid:
    x, y = args
    out = grid(shape)
    for i, j in np.ndindex(shape):
        out[i, j] = b.apply_id("mul", (x[i], y[j]))
    return out


def transpose(b: Any, prim: Any, args: list[Grid], params: dict, shape: tuple) -> Grid:
    return args[0].T.copy()


def _reduce(b: Any, prim: Any, x: Grid, axis: Any, shape: tuple, total: Any) -> Grid:
    out = grid(shape)
    moved = x.reshape(1, -1) if axis is None else np.moveaxis(x, axis, -1)
    count = moved.shape[-1]
    moved = moved.reshape(shape + (count,)) if axis is not None else moved.reshape(count)
    for index in np.ndindex(shape):
        out[index] = total([int(e) for e in moved[index]])
    return out


def reduction(b: Any, prim: Any, args: list[Grid], params: dict, shape: tuple) -> Grid:
    """A left fold of the record's ``fold`` along the axis (or over all entries)."""
    return _reduce(b, prim, args[0], params.get("axis"), shape,
                   lambda entries: fold(b, prim.fold, entries))


def mean(b: Any, prim: Any, args: list[Grid], params: dict, shape: tuple) -> Grid:
    """The fold divided by the number of entries."""
    def total(entries: list[int]) -> int:
        return b.apply_id("div", (fold(b, prim.fold, entries), b.const_id(float(len(entries)))))

    return _reduce(b, prim, args[0], params.get("axis"), shape, total)


def norm(b: Any, prim: Any, args: list[Grid], params: dict, shape: tuple) -> Grid:
    """The fold (hypot), or ``abs`` of a single entry."""
    def total(entries: list[int]) -> int:
        if len(entries) == 1:
            return b.apply_id("abs", (entries[0],))
        return fold(b, prim.fold, entries)

    return _reduce(b, prim, args[0], params.get("axis"), shape, total)


def per_lane(x: Grid, axis: int | None, shape: tuple[int, ...], lane: Any) -> Grid:
    """The grid of ``lane(entries)`` for each lane of ``x`` along ``axis`` (all entries as one
    lane when None): softmax, the products of the others, running sums."""
    moved = x.reshape(1, -1) if axis is None else np.moveaxis(x, axis, -1)
    result = grid(moved.shape)
    for index in np.ndindex(moved.shape[:-1]):
        for k, v in enumerate(lane([int(e) for e in moved[index]])):
            result[index + (k,)] = v
    return result.reshape(shape) if axis is None else np.moveaxis(result, -1, axis)


def prod_others(b: Any, prim: Any, args: list[Grid], params: dict, shape: tuple) -> Grid:
    """The products of the other entries (a fold each); with directions (more arguments),
    their derivative along them, :func:`~.special.exclusive_products` in nodes."""
    def others(entries: list[int]) -> list[int]:
        return [fold(b, prim.fold, entries[:k] + entries[k + 1:]) if len(entries) > 1
                else b.const_id(1.0) for k in range(len(entries))]

    if len(args) == 1:
        return per_lane(args[0], params.get("axis"), shape, others)
    axis = params.get("axis")
    moved = [x.reshape(1, -1) if axis is None else np.moveaxis(x, axis, -1)
             for x in np.broadcast_arrays(*args)]
    result = grid(moved[0].shape)
    mul = lambda u, v: b.apply_id("mul", (u, v))  # noqa: E731
    add = lambda u, v: b.apply_id("add", (u, v))  # noqa: E731
    for index in np.ndindex(moved[0].shape[:-1]):
        lanes = [[int(e) for e in m[index]] for m in moved]
        for k, v in enumerate(special.exclusive_products(lanes, mul, add, b.const_id(1.0))):
            result[index + (k,)] = b.const_id(0.0) if v is None else v
    return result.reshape(shape) if axis is None else np.moveaxis(result, -1, axis)


def softmax(b: Any, prim: Any, args: list[Grid], params: dict, shape: tuple) -> Grid:
    """exp(x - s) / Σ exp(x - s) (``log_softmax``: (x - s) - log Σ exp(x - s)) along the
    axis, s the maximum (0 where it is not finite), as the NumPy evaluation
    (:func:`.special.softmax`). Not exp(x - logsumexp(x)): at large x the logsumexp's log n
    rounds away (softmax([1e17, 1e17]) would be [1, 1])."""
    def normalized(entries: list[int]) -> list[int]:
        m = fold(b, "maximum", entries)
        finite = b.apply_id("less", (b.apply_id("abs", (m,)), b.const_id(float("inf"))))
        shift = b.apply_id("where", (finite, m, b.const_id(0.0)))
        z = [b.apply_id("sub", (e, shift)) for e in entries]
        exps = [b.apply_id("exp", (v,)) for v in z]
        total = fold(b, "add", exps)
        if prim.name == "softmax":
            return [b.apply_id("div", (e, total)) for e in exps]
        log_total = b.apply_id("log", (total,))
        return [b.apply_id("sub", (v, log_total)) for v in z]

    return per_lane(args[0], params.get("axis"), shape, normalized)


def sum_to(b: Any, prim: Any, args: list[Grid], params: dict, shape: tuple) -> Grid:
    (x,) = args
    out = grid(shape)
    lead = x.ndim - len(shape)
    for index in np.ndindex(shape):
        # Every leading element, and every element along the target's length-1 axes.
        group = x[(slice(None),) * lead + tuple(
            slice(None) if n == 1 else slice(i, i + 1) for i, n in zip(index, shape))]
        out[index] = fold(b, "add", list(group.ravel()))
    return out


def broadcast_to(b: Any, prim: Any, args: list[Grid], params: dict, shape: tuple) -> Grid:
    (x,) = args
    axis = params.get("axis")
    expanded = x if axis is None else np.expand_dims(x, axis)
    return np.broadcast_to(expanded, shape).copy()


def numpy_index(index: tuple) -> tuple:
    """NumPy's index of a canonical ``getitem`` index (slices as (start, stop, step))."""
    return tuple(slice(*e) if isinstance(e, tuple) else e for e in index)


def moved(how: Any) -> Any:
    """The expansion of a shape op that moves ids: ``how(args, params)`` on the grids,
    reshaped to the node's shape."""
    def expand(b: Any, prim: Any, args: list[Grid], params: dict, shape: tuple) -> Grid:
        return np.asarray(how(args, params), dtype=object).reshape(shape)

    return expand


def added(b: Any, shape: tuple[int, ...], places: list[tuple[Any, Grid]]) -> Grid:
    """Zeros of ``shape`` with each value grid added at its place, in order (as NumPy adds)."""
    out = np.full(shape, b.const_id(0.0), dtype=object)
    for where, value in places:
        part = np.array(out[where], dtype=object)
        value = np.asarray(value, dtype=object)
        for k in np.ndindex(part.shape):
            part[k] = b.apply_id("add", (int(part[k]), int(value[k])))
        out[where] = part[()] if part.ndim == 0 else part
    return out


def cumsum(b: Any, prim: Any, args: list[Grid], params: dict, shape: tuple) -> Grid:
    def running(entries: list[int]) -> list[int]:
        sums = entries[:1]
        for e in entries[1:]:
            sums.append(b.apply_id("add", (sums[-1], e)))
        return sums

    x = args[0]
    return per_lane(x, params["axis"], x.shape, running).reshape(shape)


def scatter_add(b: Any, prim: Any, args: list[Grid], params: dict, shape: tuple) -> Grid:
    return added(b, tuple(params["shape"]), [
        (numpy_index(ix), v) for ix, v in zip(params["indices"], args)]).reshape(shape)


def put_add(b: Any, prim: Any, args: list[Grid], params: dict, shape: tuple) -> Grid:
    axis, ndim, value = params["axis"], len(params["shape"]), args[0]
    where: list[Any] = [slice(None)] * ndim
    places = []
    for k, at in enumerate(params["indices"]):  # one index at a time: repeated indices add up
        where[axis] = at
        pick: list[Any] = [slice(None)] * ndim
        pick[axis] = k
        places.append((tuple(where), value[tuple(pick)]))
    return added(b, tuple(params["shape"]), places).reshape(shape)


getitem = moved(lambda a, p: a[0][numpy_index(p["index"])])
take = moved(lambda a, p: np.take(a[0], list(p["indices"]), axis=p["axis"]))
concatenate = moved(lambda a, p: np.concatenate(a, axis=p["axis"]))
stack = moved(lambda a, p: np.stack(a, axis=p["axis"]))
reshape = moved(lambda a, p: a[0].reshape(p["shape"]))
permute_dims = moved(lambda a, p: np.transpose(a[0], p["axes"]))


def setitem(b: Any, prim: Any, args: list[Grid], params: dict, shape: tuple) -> Grid:
    """The ids of ``x`` with the written entries' replaced by those of ``v``."""
    x, v = args
    place, sources = tuple(params["place"]), params.get("sources")
    out = np.array(x, dtype=object).reshape(-1)
    v = np.asarray(v, dtype=object)
    values = np.broadcast_to(v.reshape((1,) * (len(place) - v.ndim) + v.shape),
                             place).reshape(-1)
    if sources is not None:
        values = values[list(sources)]
    out[list(params["positions"])] = values
    return out.reshape(shape)
