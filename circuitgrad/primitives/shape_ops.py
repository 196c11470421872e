"""Indexing, joining and reshaping: NumPy's shape operations as primitives.

``getitem`` is basic indexing (``x[1:]``, ``x[:, 0]``, ``x[..., None]``) with constant indices,
canonical in its ``index`` param: one entry per axis of the point, plus ``None`` for each new
axis. An entry is an int ``k ≥ 0`` (picks one entry; the axis goes), ``None`` (a new axis of
length 1), or a slice ``(start, stop, step)`` of ints with ``0 ≤ start``, where ``stop`` is
None only for a negative step that runs past the front. :func:`normalize_index` makes the
canonical index from any NumPy basic index, or raises a ShapeError naming the position.

The adjoint of a read is a :class:`~circuitgrad.primitives.core.Scatter`: the adjoint pass
gathers every read of one node into ONE ``scatter_add`` (an array of zeros, each read's
adjoint added into its place), so that ``sum(f(x[i]) for i in range(n))`` costs O(n) nodes and
O(n) memory and time to evaluate, not a dense array per read. Integer-array indexing
(``x[[0, 2, 5]]``) is ``take``; its adjoint, ``put_add``, adds repeated indices up.

These records are ``internal`` for the parser's generic call path: programs and traced code
reach them through NumPy's own spellings (``x[1:]``, ``concatenate([a, b])``,
``reshape(x, (2, 3))``; the front-ends' tables), which carry their params.

Joining and reshaping are linear too; each declares its adjoint (``vjp``) and tangent
(``jvp``) directly. Their templates count point axes from the end and broadcast batch axes
(``_cg``: :mod:`circuitgrad.primitives.runtime`).
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable, Sequence

from ..errors import ShapeError
from . import expand
from .core import Primitive, Scatter, Shape, axes_text, broadcast_shape, call, normalize_axis

Index = tuple[Any, ...]


# -- indices -------------------------------------------------------------------------------

def _entry(op: str, k: Any, what: str) -> int:
    try:
        return operator.index(k)
    except TypeError:
        raise ShapeError(f"{op}: {what} must be an integer constant, got {k!r}") from None


def normalize_index(index: Any, shape: Shape, op: str = "index") -> Index:
    """The canonical ``getitem`` index of NumPy's basic index ``index`` into a point of
    ``shape`` (ints, slices, ``None``, ``...``), or a ShapeError naming what is out of range.

        >>> normalize_index((slice(1, None), 0), (4, 3))
        ((1, 4, 1), 0)
        >>> normalize_index((Ellipsis, None), (2,))
        ((0, 2, 1), None)
        >>> normalize_index(slice(None, None, -1), (3,))
        ((2, None, -1),)
    """
    items = list(index) if isinstance(index, tuple) else [index]
    if sum(1 for e in items if e is Ellipsis) > 1:
        raise ShapeError(f"{op}: an index can have only one '...'")
    used = sum(1 for e in items if e is not None and e is not Ellipsis)
    if used > len(shape):
        raise ShapeError(f"{op}: too many indices ({used}) for a point of shape {shape}")
    if Ellipsis in items:
        k = items.index(Ellipsis)
        items[k:k + 1] = [slice(None)] * (len(shape) - used)
    else:
        items += [slice(None)] * (len(shape) - used)
    out: list[Any] = []
    axis = 0
    for e in items:
        if e is None:
            out.append(None)
            continue
        n = shape[axis]
        if isinstance(e, slice):
            step = 1 if e.step is None else _entry(op, e.step, "a slice step")
            if step == 0:
                raise ShapeError(f"{op}: slice step cannot be zero (axis {axis})")
            start = None if e.start is None else _entry(op, e.start, "a slice bound")
            stop = None if e.stop is None else _entry(op, e.stop, "a slice bound")
            start, stop, step = slice(start, stop, step).indices(n)
            out.append((start, None if stop < 0 else stop, step))
        else:
            if isinstance(e, bool):
                raise ShapeError(f"{op}: a boolean index is not supported (axis {axis})")
            k = _entry(op, e, "an index")
            if not -n <= k < n:
                raise ShapeError(f"{op}: index {k} is out of range for axis {axis} of length "
                                 f"{n} (shape {shape})")
            out.append(k % n)
        axis += 1
    return tuple(out)


def _slice_length(start: int, stop: int | None, step: int) -> int:
    stop = -1 if stop is None else stop
    return max(0, -(-(stop - start) // step)) if step > 0 else max(0, -(-(start - stop) // -step))


def _getitem_shape(x: Shape, index: Index) -> Shape:
    out: list[int] = []
    axis = 0
    for e in index:
        if e is None:
            out.append(1)
            continue
        if axis >= len(x):
            raise ShapeError(f"getitem: index {index} has more entries than shape {x}")
        n = x[axis]
        if isinstance(e, tuple) and len(e) == 3:
            start, stop, step = e
            ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, step))
            if not ints or step == 0 or not 0 <= start <= n or not (
                    stop is None and step < 0 or isinstance(stop, int) and 0 <= stop <= n):
                raise ShapeError(f"getitem: slice {e} does not fit axis {axis} of length {n}")
            out.append(_slice_length(start, stop, step))
        elif isinstance(e, int) and not isinstance(e, bool) and 0 <= e < n:
            pass
        else:
            raise ShapeError(f"getitem: entry {e!r} does not fit axis {axis} of length {n}")
        axis += 1
    if axis != len(x):
        raise ShapeError(f"getitem: index {index} does not name every axis of shape {x}")
    return tuple(out)


def index_text(index: Index, shape: Shape | None = None) -> str:
    """NumPy's spelling of a canonical index into a point of ``shape`` (when known, a slice
    to the end is written open): ``1:, 0, None``.

        >>> index_text(((1, 4, 1), 0, None, (2, None, -1)), (4, 3, 5))
        '1:, 0, None, 2::-1'
    """
    parts = []
    axis = 0
    for e in index:
        if e is None:
            parts.append("None")
            continue
        n = None if shape is None else shape[axis]
        axis += 1
        if isinstance(e, int):
            parts.append(repr(e))
            continue
        start, stop, step = e
        end = stop is None or (step > 0 and stop == n)
        open_start = start == 0 if step > 0 else n is not None and start == n - 1
        text = ("" if open_start else str(start)) + ":" + ("" if end else str(stop))
        parts.append(text + ("" if step == 1 else f":{step}"))
    return ", ".join(parts)


def _full(index: Index, shape: Shape) -> bool:
    return all(isinstance(e, tuple) and e == (0, n, 1) for e, n in zip(index, shape)) and \
        len(index) == len(shape)


def _getitem_template(x: str, shapes: tuple[Shape, ...], index: Index) -> str:
    if not index:
        return x
    if not any(isinstance(e, tuple) and e[2] < 0 for e in index):
        return f"{x}[..., {index_text(index, shapes[0])}]"
    # A negative step as the forward slice, flipped (the standard's spelling; torch refuses
    # negative steps): in NumPy a C-ordered copy (runtime.flip: its SIMD kernels skip 1-D
    # reversed arrays, so a point and its batch would differ in the last bit).
    forward, flips, out = [], [], 0
    for e in index:
        if isinstance(e, tuple) and e[2] < 0:
            m = _slice_length(*e)
            start, _stop, step = e
            e = (start + step * (m - 1), start + 1, -step) if m else (0, 0, 1)
            flips.append(out)
        forward.append(e)
        out += not isinstance(e, int)
    axes = tuple(a - out for a in flips)
    forward = tuple(forward)
    flipped = x if _full(forward, shapes[0]) else f"{x}[..., {index_text(forward, shapes[0])}]"
    return f"_cg.flip({flipped}, {axes_text(axes)})"


def _scatter_add_template(*args: Any, shapes: tuple[Shape, ...], shape: Shape,
                          indices: tuple[Index, ...]) -> str:
    places = ", ".join(f"(_cg.s_[..., {index_text(ix, shape)}], {len(_getitem_shape(shape, ix))})"
                       for ix in indices)
    return f"_cg.scatter_add({tuple(shape)!r}, [{places}], {', '.join(args)})"


def _scatter_add_shape(*shapes: Shape, shape: Shape, indices: tuple[Index, ...]) -> Shape:
    if len(indices) != len(shapes):
        raise ShapeError(f"scatter_add: {len(shapes)} values for {len(indices)} places")
    for s, ix in zip(shapes, indices):
        if _getitem_shape(tuple(shape), ix) != tuple(s):
            raise ShapeError(f"scatter_add: a value of shape {s} does not fit place {ix}")
    return tuple(shape)


def _scatter_add_vjp(bar: Any, out: Any, *args: Any, shape: Shape,
                     indices: tuple[Index, ...]) -> tuple:
    return tuple(call("getitem", bar, index=ix) for ix in indices)


def _scatter_add_jvp(tangents: tuple, out: Any, *args: Any, shape: Shape,
                     indices: tuple[Index, ...]) -> Any:
    given = [(t, ix) for t, ix in zip(tangents, indices) if t is not None]
    if not given:
        return None
    return call("scatter_add", *(t for t, _ in given), shape=shape,
                indices=tuple(ix for _, ix in given))


# -- take: integer-array indexing along one axis ------------------------------------------

def _take_shape(x: Shape, indices: tuple[int, ...], axis: int) -> Shape:
    axis = normalize_axis("take", x, axis)
    # min and max, not a loop in Python: a gather of 10⁵ rows checks 10⁵ indices per node
    if axis is None or not indices or min(indices) < 0 or max(indices) >= x[axis]:
        raise ShapeError(f"take: indices {list(indices)} do not fit axis {axis} of shape {x}")
    return x[:axis] + (len(indices),) + x[axis + 1:]


def _take_template(x: str, shapes: tuple[Shape, ...], indices: tuple[int, ...],
                   axis: int) -> str:
    return f"_cg.take({x}, {list(indices)!r}, axis={axis - len(shapes[0])})"


def _put_add_shape(x: Shape, indices: tuple[int, ...], axis: int, shape: Shape) -> Shape:
    if _take_shape(tuple(shape), indices, axis) != tuple(x):
        raise ShapeError(f"put_add: a value of shape {x} does not fit {shape} at {indices}")
    return tuple(shape)


def _put_add_template(x: str, shapes: tuple[Shape, ...], indices: tuple[int, ...],
                      axis: int, shape: Shape) -> str:
    return f"_cg.put_add({x}, {tuple(shape)!r}, {axis - len(shape)}, {list(indices)!r})"


# -- setitem: a write x[index] = v, as a new array ----------------------------------------
# The index is resolved when the write is traced (NumPy indexes an array of entry numbers:
# every index kind, with NumPy's meaning): ``positions``, the entries of x written (flat, C
# order, ascending, each once), and ``sources``, the entry of v broadcast to ``place`` (the
# shape of the part written) each one gets; None: v's entries in order (or one entry, for all).

def _setitem_shape(x: Shape, v: Shape, positions: tuple[int, ...], place: Shape,
                   sources: tuple[int, ...] | None = None) -> Shape:
    size, count = math.prod(x), math.prod(place)
    try:
        fits = broadcast_shape("setitem", v, place) == tuple(place)
    except ShapeError:
        fits = False
    ok = bool(positions) and all(0 <= p < size for p in positions) and (
        count in (1, len(positions)) if sources is None else
        len(sources) == len(positions) and all(0 <= s < count for s in sources))
    if not fits or not ok:
        raise ShapeError(f"setitem: a value of shape {v} does not fit the part {place} "
                         f"written into shape {x}")
    return tuple(x)


def _setitem_code(fn: str) -> Callable[..., str]:
    def template(x: str, v: str, shapes: tuple[Shape, ...], positions: tuple[int, ...],
                 place: Shape, sources: tuple[int, ...] | None = None) -> str:
        src = "None" if sources is None else repr(list(sources))
        return (f"_cg.{fn}({x}, {v}, {tuple(shapes[0])!r}, {len(shapes[1])}, "
                f"{list(positions)!r}, {src}, {tuple(place)!r})")
    return template


# A copy of x with the write (the template), or the write into x itself (in_place: runtime's
# setitem_into, where the NumPy lowering knows x is its own array that nothing else reads).
_setitem_template, _setitem_in_place = _setitem_code("setitem"), _setitem_code("setitem_into")


def _setitem_function(shapes: tuple[Shape, ...], positions: tuple[int, ...], place: Shape,
                      sources: tuple[int, ...] | None = None) -> Any:
    import numpy as np

    from . import runtime

    at = np.asarray(positions, dtype=np.intp)
    src = None if sources is None else np.asarray(sources, dtype=np.intp)
    shape, rank, place = tuple(shapes[0]), len(shapes[1]), tuple(place)
    return lambda x, v: runtime.setitem(x, v, shape, rank, at, src, place)


def _setitem_vjp(bar: Any, out: Any, x: Any, v: Any, positions: tuple[int, ...],
                 place: Shape, sources: tuple[int, ...] | None = None) -> tuple:
    # The written entries' adjoints go to v (an entry written over by a later one of the same
    # write gets none), the others' to the old x: O(1) nodes per write.
    x_bar = call("setitem", bar, 0.0, positions=positions, place=())
    picked = call("take", call("reshape", bar, shape=(math.prod(x.shape),)),
                  indices=positions, axis=0)
    count = math.prod(place)
    if sources is None and count == len(positions):
        v_bar = call("reshape", picked, shape=tuple(place))
    elif sources is None:  # one entry of v written everywhere
        v_bar = call("reshape", call("sum", picked), shape=tuple(place))
    else:
        v_bar = call("reshape", call("put_add", picked, indices=sources, axis=0,
                                     shape=(count,)), shape=tuple(place))
    return x_bar, v_bar


def _setitem_jvp(tangents: tuple, out: Any, x: Any, v: Any, positions: tuple[int, ...],
                 place: Shape, sources: tuple[int, ...] | None = None) -> Any:
    tx, tv = tangents
    if tx is None and tv is None:
        return None
    if tv is None:
        return call("setitem", tx, 0.0, positions=positions, place=())
    if tx is None:
        tx = _zeros_like(tv, x.shape)
    return call("setitem", tx, tv, positions=positions, sources=sources, place=place)


def _setitem_label(positions: tuple[int, ...], place: Shape, sources: Any = None,
                   shapes: tuple[Shape, ...] | None = None) -> str:
    shown = ", ".join(map(str, positions[:4])) + (", ..." if len(positions) > 4 else "")
    return f"[{shown}]="


# -- joining --------------------------------------------------------------------------------

def _concatenate_shape(*shapes: Shape, axis: int) -> Shape:
    first = shapes[0]
    if not first:
        raise ShapeError("concatenate: scalars cannot be joined (stack them)")
    if not 0 <= axis < len(first):
        raise ShapeError(f"concatenate: axis {axis} is out of range for shape {first}")
    for s in shapes[1:]:
        if len(s) != len(first) or any(a != b for k, (a, b) in enumerate(zip(s, first))
                                        if k != axis):
            listed = ", ".join(map(str, shapes))
            raise ShapeError(f"concatenate: shapes {listed} do not fit along axis {axis}")
    return first[:axis] + (sum(s[axis] for s in shapes),) + first[axis + 1:]


def _concatenate_vjp(bar: Any, out: Any, *args: Any, axis: int) -> tuple:
    parts, start = [], 0
    for a in args:
        n = a.shape[axis]
        index = tuple((0, m, 1) if k != axis else (start, start + n, 1)
                      for k, m in enumerate(out.shape))
        parts.append(call("getitem", bar, index=index))
        start += n
    return tuple(parts)


def _zeros_like(t: Any, shape: Shape) -> Any:
    import numpy as np

    return t.builder.const(np.zeros(shape)) if shape else t.builder.const(0.0)


def _joined_jvp(name: str) -> Any:
    def jvp(tangents: tuple, out: Any, *args: Any, axis: int) -> Any:
        given = next((t for t in tangents if t is not None), None)
        if given is None:
            return None
        parts = [t if t is not None else _zeros_like(given, a.shape)
                 for t, a in zip(tangents, args)]
        return call(name, *parts, axis=axis)

    return jvp


def _stack_shape(*shapes: Shape, axis: int) -> Shape:
    first = shapes[0]
    if any(s != first for s in shapes):
        raise ShapeError(f"stack: shapes {', '.join(map(str, shapes))} differ")
    if not 0 <= axis <= len(first):
        raise ShapeError(f"stack: axis {axis} is out of range for points of shape {first}")
    return first[:axis] + (len(shapes),) + first[axis:]


def _stack_vjp(bar: Any, out: Any, *args: Any, axis: int) -> tuple:
    return tuple(call("getitem", bar, index=tuple(
        k if j == axis else (0, m, 1) for j, m in enumerate(out.shape)))
        for k in range(len(args)))


def _joined_template(fn: str, grow: int) -> Any:
    def template(*args: str, shapes: tuple[Shape, ...], axis: int) -> str:
        rank = len(shapes[0])
        return f"_cg.{fn}([{', '.join(args)}], {axis - rank - grow}, {rank})"

    return template


# -- reshaping -------------------------------------------------------------------------------

def _reshape_shape(x: Shape, shape: Shape) -> Shape:
    if math.prod(x) != math.prod(shape) or any(n < 0 for n in shape):
        raise ShapeError(f"reshape: a point of shape {x} cannot become shape {tuple(shape)}")
    return tuple(shape)


def _reshape_template(x: str, shapes: tuple[Shape, ...], shape: Shape) -> str:
    rank = len(shapes[0])
    return f"_cg.reshape({x}, {tuple(shape)!r}, {rank})"


def _permute_shape(x: Shape, axes: tuple[int, ...]) -> Shape:
    if sorted(axes) != list(range(len(x))):
        raise ShapeError(f"permute_dims: axes {list(axes)} are not a permutation of the axes "
                         f"of shape {x}")
    return tuple(x[a] for a in axes)


def _permute_template(x: str, shapes: tuple[Shape, ...], axes: tuple[int, ...]) -> str:
    rank = len(axes)
    source = tuple(a - rank for a in axes)
    return f"xp.moveaxis({x}, {source}, {tuple(range(-rank, 0))})"


def _inverse(axes: Sequence[int]) -> tuple[int, ...]:
    inv = [0] * len(axes)
    for j, a in enumerate(axes):
        inv[a] = j
    return tuple(inv)


def _cumsum_vjp(bar: Any, out: Any, x: Any, axis: int) -> tuple:
    # The adjoint of a running sum is the running sum from the other end.
    flip = tuple((n - 1, None, -1) if k == axis else (0, n, 1) for k, n in enumerate(x.shape))
    return (call("getitem", call("cumsum", call("getitem", bar, index=flip), axis=axis),
                 index=flip),)


def _linear(name: str) -> Any:
    def jvp(tangents: tuple, out: Any, *args: Any, **params: Any) -> Any:
        (t,) = tangents
        return None if t is None else call(name, t, **params)

    return jvp


def _cumsum_template(x: str, shapes: tuple[Shape, ...], axis: int) -> str:
    return f"xp.cumulative_sum({x}, axis={axis - len(shapes[0])})"


def _getitem_function(shapes: tuple[Shape, ...], index: Index) -> Any:
    # x[..., index] without compiling a template per index: the same indexing (and, as the
    # template, a copy where a step is negative: runtime.flip's reason).
    get = operator.itemgetter((Ellipsis,) + tuple(
        slice(*e) if isinstance(e, tuple) else e for e in index))
    if any(isinstance(e, tuple) and e[2] < 0 for e in index):
        return lambda x: get(x).copy(order="C")
    return get


def _scatter_add_function(shapes: tuple[Shape, ...], shape: Shape,
                          indices: tuple[Index, ...]) -> Any:
    # The template's call without compiling it: one place per read, 10⁵ reads and more.
    from . import runtime

    places = [((Ellipsis,) + tuple(slice(*e) if isinstance(e, tuple) else e for e in ix),
               len(_getitem_shape(tuple(shape), ix))) for ix in indices]
    return lambda *values: runtime.scatter_add(tuple(shape), places, *values)


def _getitem_label(index: Index, shapes: tuple[Shape, ...] | None = None) -> str:
    return f"[{index_text(index, None if shapes is None else shapes[0])}]"



# The builder's identities (the record's ``unchanged``): these params give the argument back.
def _getitem_unchanged(of: Shape, index: tuple) -> bool:
    return len(index) == len(of) and all(e == (0, n, 1) for e, n in zip(index, of))


def _reshape_unchanged(of: Shape, shape: Shape) -> bool:
    return tuple(shape) == tuple(of)


def _permute_unchanged(of: Shape, axes: tuple) -> bool:
    return tuple(axes) == tuple(range(len(of)))


RECORDS: list[Primitive] = [
    # x[index], a view. Its adjoint is gathered with the node's other reads (Scatter).
    Primitive("getitem", 1, _getitem_template, "[ ]", params=("index",),
              shape=_getitem_shape, vjp=lambda bar, out, x, index: (Scatter(bar, index),),
              jvp=_linear("getitem"), label_of=_getitem_label, internal=True,
              function=_getitem_function,
              cases=(((4, 3),),), example={"index": ((1, 4, 1), 0)},
              sparsity="indexing", unchanged=_getitem_unchanged,
              scalar=expand.getitem),
    # Zeros of ``shape`` with each argument added at its place: the adjoint of the reads.
    Primitive("scatter_add", 1, _scatter_add_template, "[ ]+=", params=("shape", "indices"),
              shape=_scatter_add_shape, vjp=_scatter_add_vjp, jvp=_scatter_add_jvp,
              function=_scatter_add_function,
              variadic=True, internal=True, cases=(((3,), (3,)),),
              example={"shape": (4, 3), "indices": (((1, 4, 1), 0), (0, (0, 3, 1)))},
              sparsity="scatter_add",
              scalar=expand.scatter_add),
    Primitive("take", 1, _take_template, "take", params=("indices", "axis"),
              shape=_take_shape, numpy=("take",),
              vjp=lambda bar, out, x, indices, axis: (
                  call("put_add", bar, indices=indices, axis=axis, shape=x.shape),),
              jvp=_linear("take"), internal=True, cases=(((4, 3),),),
              example={"indices": (0, 2, 2), "axis": 0},
              sparsity="indexing",
              scalar=expand.take),
    Primitive("put_add", 1, _put_add_template, "take⁺", params=("indices", "axis", "shape"),
              shape=_put_add_shape,
              vjp=lambda bar, out, x, indices, axis, shape: (
                  call("take", bar, indices=indices, axis=axis),),
              jvp=_linear("put_add"), internal=True, cases=(((3, 3),),),
              example={"indices": (0, 2, 2), "axis": 0, "shape": (4, 3)},
              sparsity="put_add",
              scalar=expand.put_add),
    # x with some entries written (x[index] = v, functional): trace.py's writes.
    Primitive("setitem", 2, _setitem_template, "[ ]=", params=("positions", "sources", "place"),
              shape=_setitem_shape, vjp=_setitem_vjp, jvp=_setitem_jvp,
              function=_setitem_function, label_of=_setitem_label, internal=True,
              in_place=_setitem_in_place,
              cases=(((4, 3), (3,)),), example={"positions": (1, 4, 7), "place": (3,)},
              sparsity="setitem", scalar=expand.setitem),
    Primitive("concatenate", 1, _joined_template("concatenate", 0), "concat",
              params=("axis",), shape=_concatenate_shape, vjp=_concatenate_vjp,
              jvp=_joined_jvp("concatenate"), variadic=True, numpy=("concatenate",),
              internal=True,
              cases=(((2, 3), (1, 3)),), example={"axis": 0},
              sparsity="joining",
              scalar=expand.concatenate),
    Primitive("stack", 1, _joined_template("stack", 1), "stack", params=("axis",),
              shape=_stack_shape, vjp=_stack_vjp, jvp=_joined_jvp("stack"), variadic=True,
              internal=True,
              numpy=("stack",), cases=(((3,), (3,)),), example={"axis": 0},
              sparsity="joining",
              scalar=expand.stack),
    Primitive("reshape", 1, _reshape_template, "reshape", params=("shape",),
              shape=_reshape_shape, numpy=("reshape",), internal=True,
              vjp=lambda bar, out, x, shape: (call("reshape", bar, shape=x.shape),),
              jvp=_linear("reshape"), cases=(((2, 3),),), example={"shape": (3, 2)},
              sparsity="indexing", unchanged=_reshape_unchanged,
              scalar=expand.reshape),
    Primitive("permute_dims", 1, _permute_template, "ᵀ", params=("axes",),
              shape=_permute_shape, internal=True,
              vjp=lambda bar, out, x, axes: (call("permute_dims", bar, axes=_inverse(axes)),),
              jvp=_linear("permute_dims"), cases=(((2, 1, 3),),),
              example={"axes": (2, 0, 1)},
              sparsity="indexing", unchanged=_permute_unchanged,
              scalar=expand.permute_dims),
    Primitive("cumsum", 1, _cumsum_template, "cumsum", params=("axis",),
              shape=lambda x, axis: _cumsum_shape(x, axis), numpy=("cumsum",), internal=True,
              vjp=_cumsum_vjp, jvp=_linear("cumsum"), cases=(((4,),),), example={"axis": 0},
              sparsity="cumsum",
              scalar=expand.cumsum),
]


def _cumsum_shape(x: Shape, axis: int) -> Shape:
    if normalize_axis("cumsum", x, axis) is None or not x:
        raise ShapeError(f"cumsum: needs an axis of a point with axes, got shape {x}")
    return tuple(x)
