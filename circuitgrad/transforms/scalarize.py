"""Scalarize: a tensor circuit as the equivalent circuit of scalar operations.

The notes' theorem counts scalar operations: a layer z = W u + b with W of shape (m, d) is
m·d multiplications and m·d additions, N ≈ #parameters. ``scalarize`` expands each tensor
node into one node per element, so both views of the same network can be compared, drawn and
differentiated. Tensor input ``W`` of shape (2, 3) becomes scalar inputs ``W_0_0 … W_1_2``
(row-major); a tensor output ``f`` becomes outputs ``f_0, f_1 …``.

    >>> import circuitgrad as cg
    >>> c = cg.parse("J = sum(W @ x)", shapes={"W": (2, 3), "x": (3,)})
    >>> s = cg.scalarize(c)
    >>> s.inputs[:4], s.size
    (('W_0_0', 'W_0_1', 'W_0_2', 'W_1_0'), 11)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..circuit import Builder, Circuit, as_circuit, no_gc
from ..errors import CircuitError


def _element_name(name: str, index: tuple[int, ...]) -> str:
    return name + "".join(f"_{i}" for i in index)


def _fold(b: Builder, op: str, ids: list[int]) -> int:
    result = ids[0]
    for i in ids[1:]:
        result = b.apply_id(op, (result, i))
    return result


# A reduction as a fold of a binary op (the norm as hypot; a single entry as it is, abs for
# the norm), left to right: the same values as NumPy's up to rounding.
_FOLDS = {"sum": "add", "mean": "add", "max": "maximum", "min": "minimum", "prod": "mul",
          "logsumexp": "logaddexp", "norm": "hypot"}


def _grid(shape: tuple[int, ...]) -> np.ndarray:
    return np.empty(shape, dtype=object)


def scalarize(c: Circuit) -> Circuit:
    """The equivalent circuit in which every node is a scalar.

    Args:
        c: a circuit whose nodes have concrete shapes.

    Returns:
        A scalar circuit computing the same values (sums add left to right, so results agree
        with NumPy's pairwise sums up to rounding).

    >>> import circuitgrad as cg
    >>> scalarize(cg.parse("x @ y", shapes={"x": (2,), "y": (2,)})).inputs
    ('x_0', 'x_1', 'y_0', 'y_1')
    """
    c = as_circuit(c, "scalarize")
    empty = next((i for i in range(len(c)) if 0 in c.shape(i)), None)
    if empty is not None:
        # (a reduction of no entries would be a fold of nothing: refused, never guessed)
        raise CircuitError(f"scalarize: node %{empty} ({c.op(empty)}) has the empty shape "
                           f"{c.shape(empty)}, which has no entries to expand")
    with no_gc():
        return _scalarize(c)


def _scalarize(c: Circuit) -> Circuit:
    b = Builder()
    taken = set(c.inputs)
    values: list[Any] = [None] * len(c)
    input_names: list[str] = []

    def fresh(name: str) -> str:
        while name in taken:
            name += "_"
        taken.add(name)
        return name

    for i, op, args, params, shape in c.records():
        if op == "input":
            grid = _grid(shape)
            for index in np.ndindex(shape):
                name = params if not shape else fresh(_element_name(params, index))
                grid[index] = b.input(name).id
                input_names.append(name)
            values[i] = grid
        elif op == "const":
            grid = _grid(shape)
            for index in np.ndindex(shape):
                grid[index] = b.const_id(float(np.asarray(params)[index]))
            values[i] = grid
        else:
            values[i] = _expand(b, op, [values[a] for a in args], params or {}, shape)
    outputs = []
    for name, i in zip(c.outputs, c.output_ids):
        grid = values[i]
        if not grid.shape:
            outputs.append((name, int(grid[()])))
        else:
            for index in np.ndindex(grid.shape):
                outputs.append((fresh(_element_name(name, index)), int(grid[index])))
    return b.finish(outputs, inputs=input_names)


def _expand(b: Builder, op: str, args: list[np.ndarray], params: dict[str, Any],
            shape: tuple[int, ...]) -> np.ndarray:
    out = _grid(shape)
    if op == "matmul":
        x, y = args
        x2 = x.reshape(1, -1) if x.ndim == 1 else x
        y2 = y.reshape(-1, 1) if y.ndim == 1 else y
        full = _grid((x2.shape[0], y2.shape[1]))
        for i, j in np.ndindex(full.shape):
            terms = [b.apply_id("mul", (x2[i, t], y2[t, j])) for t in range(x2.shape[1])]
            full[i, j] = _fold(b, "add", terms)
        return full.reshape(shape)
    if op == "outer":
        x, y = args
        for i, j in np.ndindex(shape):
            out[i, j] = b.apply_id("mul", (x[i], y[j]))
        return out
    if op == "transpose":
        return args[0].T.copy()
    if op in _FOLDS:
        (x,) = args
        axis = params.get("axis")
        moved = x.reshape(1, -1) if axis is None else np.moveaxis(x, axis, -1)
        count = moved.shape[-1]
        moved = moved.reshape(shape + (count,)) if axis is not None else moved.reshape(count)
        for index in np.ndindex(shape):
            entries = [int(e) for e in moved[index]]
            if op == "norm" and count == 1:
                total = b.apply_id("abs", (entries[0],))
            else:
                total = _fold(b, _FOLDS[op], entries)
            out[index] = b.apply_id("div", (total, b.const_id(float(count)))) \
                if op == "mean" else total
        return out
    if op == "prod_others":
        def others(entries: list[int]) -> list[int]:
            return [_fold(b, "mul", entries[:k] + entries[k + 1:]) if len(entries) > 1
                    else b.const_id(1.0) for k in range(len(entries))]

        return _per_lane(args[0], params.get("axis"), shape, others)
    if op in ("softmax", "log_softmax"):
        # exp(x - logsumexp(x)) and x - logsumexp(x), along the axis (or all entries).
        def normalized(entries: list[int]) -> list[int]:
            lse = _fold(b, "logaddexp", entries)
            z = [b.apply_id("sub", (e, lse)) for e in entries]
            return [b.apply_id("exp", (v,)) for v in z] if op == "softmax" else z

        return _per_lane(args[0], params.get("axis"), shape, normalized)
    if op == "sum_to":
        (x,) = args
        lead = x.ndim - len(shape)
        for index in np.ndindex(shape):
            # Every leading element, and every element along the target's length-1 axes.
            group = x[(slice(None),) * lead + tuple(
                slice(None) if n == 1 else slice(i, i + 1) for i, n in zip(index, shape))]
            out[index] = _fold(b, "add", list(group.ravel()))
        return out
    if op in _SHAPE_OPS:
        return _SHAPE_OPS[op](b, args, params).reshape(shape)
    if op == "broadcast_to":
        (x,) = args
        axis = params.get("axis")
        expanded = x if axis is None else np.expand_dims(x, axis)
        return np.broadcast_to(expanded, shape).copy()
    grids = np.broadcast_arrays(*args)  # elementwise, with NumPy broadcasting
    for index in np.ndindex(shape):
        out[index] = b.apply_id(op, tuple(int(g[index]) for g in grids), params or None)
    return out



def _per_lane(x: np.ndarray, axis: int | None, shape: tuple[int, ...],
              lane: Any) -> np.ndarray:
    """The grid of ``lane(entries)`` for each lane of ``x`` along ``axis`` (all entries as one
    lane when None): softmax, the products of the others, running sums."""
    moved = x.reshape(1, -1) if axis is None else np.moveaxis(x, axis, -1)
    result = _grid(moved.shape)
    for index in np.ndindex(moved.shape[:-1]):
        for k, v in enumerate(lane([int(e) for e in moved[index]])):
            result[index + (k,)] = v
    return result.reshape(shape) if axis is None else np.moveaxis(result, -1, axis)


def _numpy_index(index: tuple) -> tuple:
    return tuple(slice(*e) if isinstance(e, tuple) else e for e in index)


def _added(b: Builder, shape: tuple[int, ...], places: list[tuple[Any, np.ndarray]]) -> np.ndarray:
    """Zeros of ``shape`` with each value grid added at its place, in order (as NumPy adds)."""
    out = np.full(shape, b.const_id(0.0), dtype=object)
    for where, value in places:
        grid = np.array(out[where], dtype=object)
        value = np.asarray(value, dtype=object)
        for k in np.ndindex(grid.shape):
            grid[k] = b.apply_id("add", (int(grid[k]), int(value[k])))
        out[where] = grid[()] if grid.ndim == 0 else grid
    return out


def _cumsum(b: Builder, x: np.ndarray, axis: int) -> np.ndarray:
    def running(entries: list[int]) -> list[int]:
        sums = entries[:1]
        for e in entries[1:]:
            sums.append(b.apply_id("add", (sums[-1], e)))
        return sums

    return _per_lane(x, axis, x.shape, running)


def _put_places(indices: tuple, axis: int, ndim: int, value: np.ndarray) -> list:
    where: list[Any] = [slice(None)] * ndim
    places = []
    for k, at in enumerate(indices):  # one index at a time: repeated indices add up
        where[axis] = at
        pick: list[Any] = [slice(None)] * ndim
        pick[axis] = k
        places.append((tuple(where), value[tuple(pick)]))
    return places


# Indexing, joining and reshaping move node ids around: NumPy does it on the object grids.
_SHAPE_OPS: dict[str, Any] = {
    "getitem": lambda b, a, p: np.asarray(a[0][_numpy_index(p["index"])], dtype=object),
    "take": lambda b, a, p: np.take(a[0], list(p["indices"]), axis=p["axis"]),
    "concatenate": lambda b, a, p: np.concatenate(a, axis=p["axis"]),
    "stack": lambda b, a, p: np.stack(a, axis=p["axis"]),
    "reshape": lambda b, a, p: a[0].reshape(p["shape"]),
    "permute_dims": lambda b, a, p: np.transpose(a[0], p["axes"]),
    "cumsum": lambda b, a, p: _cumsum(b, a[0], p["axis"]),
    "scatter_add": lambda b, a, p: _added(b, tuple(p["shape"]), [
        (_numpy_index(ix), v) for ix, v in zip(p["indices"], a)]),
    "put_add": lambda b, a, p: _added(b, tuple(p["shape"]), _put_places(
        p["indices"], p["axis"], len(p["shape"]), a[0])),
}
