"""Writes into traced values, functionalized, with NumPy's aliasing.

``x[index] = v`` (and ``x[index] += v``, ``x += v``, ``np.copyto(x, v)``, ``x.fill(v)``)
builds one ``setitem`` node (primitives/shape_ops.py) and rebinds ``x`` to it: the Value
object stays the same, its node changes, so every name bound to it sees the write, as in
NumPy. The index is resolved by NumPy itself, on the array of ``x``'s entry numbers, so every
index kind means what it means in NumPy (ints, slices, ``...``, ``None``, integer arrays, boolean
masks, repeated indices: the last write wins).

Views (docs/tracing.md): a Value made by basic indexing (``x[1:]``, ``x[0]`` of a matrix,
``x[::-1]``), ``x.T``, ``x.transpose(...)``, ``x.real`` or a reshape that NumPy always makes a
view (of a vector, or adding and dropping axes of length 1) remembers the value it views and
how. A write into a view writes into the array it views (its *root*), at the entries the view
shows; then every live view of that root is rebuilt from the new root. A reshape that NumPy
makes a view or a copy depending on the memory layout (``x.reshape(3, 2)`` of a matrix,
``x.ravel()``) is *opaque*: a write into it, or into its root while it is alive, is refused by
name, since either answer could be the wrong number.

    >>> import numpy as np, circuitgrad as cg
    >>> def f(x):
    ...     y = x[1:]
    ...     y[0] = 5.0          # writes x[1] too
    ...     x[2] *= 2.0
    ...     return x.sum() + y.sum()
    >>> float(cg.to_numpy(cg.trace(f, shapes={"x": (3,)}))(np.array([1.0, 2.0, 3.0])))
    23.0
"""

from __future__ import annotations

import math
import weakref
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import CircuitError, ShapeError
from ..value import Value, user_line


@lru_cache(maxsize=64)
def _entry_numbers(shape: tuple[int, ...]) -> np.ndarray:
    ids = np.arange(math.prod(shape), dtype=np.intp).reshape(shape)
    ids.setflags(write=False)
    return ids


def link(parent: Value, view: Value, how: tuple, opaque: bool = False) -> Value:
    """Record that ``view`` is a view of ``parent`` made by ``how`` (``("getitem", index)``,
    ``("transpose",)``, ``("permute_dims", axes)``, ``("reshape", shape)``)."""
    view._base, view._how = parent, (how, opaque)
    try:
        views = parent._views
    except AttributeError:
        views = parent._views = []
    if len(views) > 8:
        views[:] = [r for r in views if r() is not None]
    views.append(weakref.ref(view))
    return view


def _base(v: Value) -> Value | None:
    try:
        return v._base
    except AttributeError:
        return None


def _live_views(root: Value) -> list[Value]:
    """Every live view of ``root`` (views of views too), each after the one it views."""
    out: list[Value] = []
    todo = [root]
    while todo:
        v = todo.pop()
        try:
            refs = v._views
        except AttributeError:
            continue
        alive = [r for r in refs if r() is not None]
        refs[:] = alive
        for r in alive:
            w = r()
            if w is not None:
                out.append(w)
                todo.append(w)
    return out


def _positions(how: tuple, ids: np.ndarray) -> np.ndarray:
    kind = how[0]
    if kind == "getitem":
        return ids[tuple(slice(*e) if isinstance(e, tuple) else e for e in how[1])]
    if kind == "transpose":
        return ids.T
    if kind == "permute_dims":
        return np.transpose(ids, how[1])
    return ids.reshape(how[1])


def _rebuilt(parent: Value, how: tuple) -> int:
    b, kind = parent.builder, how[0]
    params = {"getitem": "index", "permute_dims": "axes", "reshape": "shape"}.get(kind)
    return b.apply_id(kind, (parent.id,), {params: how[1]} if params else None)


def _aliasing(what: str) -> CircuitError:
    return CircuitError(f"this write cannot be traced: {what}. NumPy makes such a reshape a "
                        "view or a copy depending on the memory layout, so the write could "
                        "change the other array or not; write into a copy "
                        "(x.reshape(...).copy(), x.flatten()) or into the array itself"
                        + user_line())


def setitem(target: Value, index: Any, value: Any) -> None:
    """``target[index] = value``: one ``setitem`` node into the root ``target`` views; the
    root and its live views are rebound to the new node."""
    from .numpy_api.binding import as_value

    b = target.builder
    items = index if isinstance(index, tuple) else (index,)
    if any(isinstance(e, Value) for e in items):
        raise CircuitError("a write x[index] = v with a traced index (or mask) cannot be "
                           "traced: which entries are written would depend on data; write "
                           "x = np.where(mask, v, x) for a mask" + user_line())
    chain, root = [], target
    while _base(root) is not None:
        chain.append(root)
        root = root._base
    views = _live_views(root)
    if any(v._how[1] for v in chain):
        raise _aliasing("it writes through a reshape of another array")
    opaque = [v for v in views if v._how[1]]
    if opaque:
        raise _aliasing(f"a reshape of this array (shape {opaque[0].shape}) is still alive")
    ids = _entry_numbers(tuple(root.shape))
    for v in reversed(chain):
        ids = _positions(v._how[0], ids)
    try:
        picked = np.asarray(ids[index])
    except (IndexError, TypeError, ValueError) as e:
        raise ShapeError(f"x[{_shown(index)}] = ...: {e} (x has shape {target.shape})"
                         + user_line()) from None
    try:
        v = as_value(b, value)
    except (TypeError, ValueError):
        raise CircuitError(f"x[...] = v: v ({type(value).__name__}) is not a number, an array "
                           "of numbers or a traced value" + user_line()) from None
    shape, place = tuple(v.shape), picked.shape
    while len(shape) > len(place) and shape[0] == 1:  # NumPy drops leading axes of length 1
        shape = shape[1:]
    if shape != tuple(v.shape):
        v = Value(b, b.apply_id("reshape", (v.id,), {"shape": shape}))
    try:
        fits = np.broadcast_shapes(shape, place) == place
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(f"x[{_shown(index)}] = v: v of shape {tuple(value_shape(value, v))} "
                         f"cannot be written into the part of shape {place} (as in NumPy: "
                         "could not broadcast)" + user_line())
    if picked.size == 0:
        return
    flat = picked.ravel()
    params: dict[str, Any] = {"place": place}
    if flat.size == 1 or bool(np.all(flat[1:] > flat[:-1])):
        params["positions"] = tuple(flat.tolist())
    else:  # repeated or unordered: each entry once, from the last write to it
        last = flat.size - 1 - np.unique(flat[::-1], return_index=True)[1]
        positions, sources = flat[last], last
        params["positions"] = tuple(positions.tolist())
        if not (len(sources) == flat.size and bool(np.all(sources == np.arange(flat.size)))):
            params["sources"] = tuple(int(s) for s in sources)
    root.id = b.apply_id("setitem", (root.id, v.id), params)
    for w in views:
        w.id = _rebuilt(w._base, w._how[0])


def value_shape(value: Any, v: Value) -> tuple[int, ...]:
    return tuple(v.shape) if isinstance(value, Value) else np.shape(value)


def _shown(index: Any) -> str:
    items = index if isinstance(index, tuple) else (index,)

    def one(e: Any) -> str:
        if isinstance(e, slice):
            return ":".join("" if p is None else str(p) for p in (e.start, e.stop, e.step)
                            ).rstrip(":") or ":"
        return "..." if e is Ellipsis else repr(e)

    return ", ".join(one(e) for e in items)


def inplace(x: Value, result: Any) -> Value:
    """``x op= y``: ``result`` (``x op y``) written into ``x``, which is returned; a traced
    number that views nothing is rebound instead, as Python's numbers are."""
    if not x.shape and _base(x) is None:
        return result
    setitem(x, Ellipsis, result)
    return x
