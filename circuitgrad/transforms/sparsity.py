"""Jacobian sparsity patterns, from the circuit alone: :func:`jacobian_sparsity`.

Each entry of each node gets the set of input entries it depends on (column ``j`` of the
Jacobian: the inputs' entries flattened and joined in ``wrt`` order), walking the nodes in
ascending id. A node's sets are kept as one CSR-like pair ``(indptr, indices)`` of NumPy
arrays, and every rule is one of two array operations on them: *gather* (entry ``e`` of the
result has the set of entry ``of[e]`` of an argument) and *union* (entries get the union of
the sets of several entries, by one sort). Where the entries come from is found by applying
the op's own NumPy indexing, joining or broadcasting to the arrays of entry numbers
(``_ids``), so each rule is a few lines:

* elementwise ops: the union of the (broadcast) arguments' sets, leaving out an argument whose
  partial the primitive table declares structurally zero (``step``, ``sign``, the masks, the
  condition of ``where``);
* reductions (``sum``, ``max`` ...): the union along the reduced axes; ``softmax``-like
  normalizations: the union along the axis, broadcast back; ``cumsum``: running unions;
* indexing, joining, reshaping, transposing: a gather;
* ``matmul``, ``outer``, ``einsum``: the unions of the products' terms;
* the adjoint pass's ``sum_to``, ``broadcast_to``, ``scatter_add`` and ``put_add``: the
  unions of what they sum, so that the pattern of a gradient circuit is the Hessian's;
* an op whose record names no ``sparsity`` kind (:data:`KINDS`): every entry depends on every entry of every
  argument, a safe superset (a test fails until a new op is given a rule).

Time and memory are linear in the sizes of the patterns (plus a sort per union), so a banded
Jacobian of 10⁵ variables costs O(n). The pattern is structural: a superset of the nonzeros of
the Jacobian at every point (an exact zero that arises from values, as ``x - x``, is still in
the pattern), and nothing is evaluated.

    >>> import circuitgrad as cg
    >>> c = cg.parse("f = x[1:] * x[:-1]", shapes={"x": (4,)})
    >>> jacobian_sparsity(c).toarray().astype(int).tolist()
    [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
"""

from __future__ import annotations

import contextvars
import math
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from ..circuit import LEAVES, Circuit, as_circuit
from ..guards import refuse_cut_derivative
from ..primitives import PRIMITIVES
from .common import pick_inputs, pick_outputs, sample_node

REDUCTIONS = tuple(op for op, prim in PRIMITIVES.items() if prim.sparsity == "reduction")
NORMALIZATIONS = tuple(op for op, prim in PRIMITIVES.items()
                       if prim.sparsity == "normalization")


def jacobian_sparsity(c: Circuit, wrt: str | Sequence[str] | None = None,
                      outputs: str | Sequence[str] | None = None) -> Any:
    """The structural sparsity pattern of the Jacobian, as a boolean ``scipy.sparse`` matrix.

    Args:
        c: a circuit.
        wrt: input names (default: all inputs, in order).
        outputs: output names (default: all outputs, in order).

    Returns:
        A ``scipy.sparse.csr_array`` of booleans, of shape (m, n): row ``i`` is the i-th entry
        of the outputs (each flattened in C order, one output after the other), column ``j``
        the j-th entry of the ``wrt`` inputs likewise; ``True`` where the output entry can
        depend on the input entry (module docstring). Computed without evaluating anything.

    Raises:
        CircuitError: an unknown input or output name.

    >>> import circuitgrad as cg
    >>> jacobian_sparsity(cg.parse("f = x * y + 1"), wrt="x").toarray().tolist()
    [[True]]
    """
    import scipy.sparse

    c = as_circuit(c, "jacobian_sparsity")
    refuse_cut_derivative(c, "jacobian_sparsity")  # (float(x) hid a dependence)
    wrt = pick_inputs(c, wrt)
    outs = pick_outputs(c, outputs)
    sets = dependency_sets(c, wrt)
    ids = dict(zip(c.outputs, c.output_ids))
    indptr, indices = _stacked([sets[ids[f]] for f in outs])
    n = sum(math.prod(c.input_shapes[x]) for x in wrt)
    return scipy.sparse.csr_array((np.ones(len(indices), dtype=bool), indices, indptr),
                                  shape=(len(indptr) - 1, n))


def hessian_sparsity(c: Circuit, wrt: str | Sequence[str] | None = None,
                     output: str | None = None) -> Any:
    """The structural sparsity pattern of the Hessian of a scalar output: the Jacobian
    pattern of its gradient (the adjoint circuit's nodes carry their own rules), a symmetric
    boolean ``scipy.sparse`` matrix of shape (n, n) over the entries of ``wrt``.

    >>> import circuitgrad as cg
    >>> c = cg.parse("J = sum(x[1:] * x[:-1])", shapes={"x": (4,)})
    >>> hessian_sparsity(c).toarray().astype(int).tolist()
    [[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]]
    """
    from .grad import grad

    c = as_circuit(c, "hessian_sparsity")
    wrt = pick_inputs(c, wrt)
    g = grad(c, wrt=wrt, output=output, simplify=False)
    return jacobian_sparsity(g, wrt=wrt, outputs=list(g.outputs[1:]))


def bounded_jacobian_sparsity(c: Circuit, wrt: Sequence[str], outputs: Sequence[str],
                              limit: int, total: int | None = None) -> Any:
    """:func:`jacobian_sparsity`, or None as soon as one node's sets would hold more than
    ``limit`` input entries in all (counted before a union drops its repeats), or the walk's
    gathers and unions together more than ``total``: a cap on the pattern's own time and
    memory for a caller that only wants a sparse pattern, such as
    :func:`~circuitgrad.jacobian_function`'s compressed seeds (a dense ``W @ x`` of n = 1000
    stops at the product, before sorting its 10⁶ pairs; ``total`` stops a deep stack of
    narrower dense layers, each under ``limit``).

    >>> import circuitgrad as cg
    >>> c = cg.parse("f = sum(x) * x", shapes={"x": (4,)})
    >>> bounded_jacobian_sparsity(c, ["x"], ["f"], limit=10) is None  # 20 pairs, then 16
    True
    >>> int(bounded_jacobian_sparsity(c, ["x"], ["f"], limit=20).nnz)
    16
    >>> bounded_jacobian_sparsity(c, ["x"], ["f"], limit=20, total=30) is None
    True
    """
    token = _LIMIT.set(_Budget(limit, math.inf if total is None else total))
    try:
        return jacobian_sparsity(c, wrt, outputs)
    except _TooLarge:
        return None
    finally:
        _LIMIT.reset(token)


class _TooLarge(Exception):
    """Raised inside :func:`dependency_sets` when the sets pass :data:`_LIMIT`'s caps."""


class _Budget:
    """The caps of one :func:`bounded_jacobian_sparsity`: entries per gather or union
    (``node``), and those the walk has ``left`` in all."""

    __slots__ = ("node", "left")

    def __init__(self, node: int, left: float):
        self.node, self.left = node, left


_LIMIT: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("sparsity_limit",
                                                                        default=None)


def _check(entries: int) -> None:
    budget = _LIMIT.get()
    if budget is not None:
        budget.left -= entries
        if entries > budget.node or budget.left < 0:
            raise _TooLarge


Sets = tuple  # (indptr, indices): row e holds the columns indices[indptr[e]:indptr[e + 1]]
_NO_COLUMNS = np.zeros(0, dtype=np.int64)


def dependency_sets(c: Circuit, wrt: Sequence[str]) -> dict[int, Sets]:
    """``{node: (indptr, indices)}``: for each entry ``e`` of the node (C order), the sorted
    input entries it depends on, ``indices[indptr[e]:indptr[e + 1]]`` (numbered as
    :func:`jacobian_sparsity`'s columns). Memory and time are linear in the patterns' sizes;
    each node's sets are dropped after the last node that reads them (outputs are kept)."""
    n = sum(math.prod(c.input_shapes[x]) for x in wrt)
    sets: dict[int, Sets] = {}
    ids = dict(zip(c.inputs, c.input_ids))
    first = 0
    for x in wrt:
        size = math.prod(c.shape(ids[x]))
        sets[ids[x]] = (np.arange(size + 1, dtype=np.int64),
                        np.arange(first, first + size, dtype=np.int64))
        first += size
    last_use = {}
    for i in range(len(c)):
        for a in c.args(i):
            last_use[a] = i
    keep = set(c.output_ids)
    for i in range(len(c)):
        if i not in sets:
            op = c.op(i)
            if op in LEAVES:
                sets[i] = _no_sets(math.prod(c.shape(i)))
            else:
                args = c.args(i)
                sets[i] = _rule(op)(
                    op, [sets[a] for a in args], [c.shape(a) for a in args], c.shape(i),
                    c.params(i) or {}, max(n, 1))
        for a in set(c.args(i)):
            if last_use[a] == i and a not in keep:
                del sets[a]
    return sets


def _rule(op: str) -> Any:
    """The sparsity rule of ``op``, read from its record (its ``sparsity`` kind, else the
    elementwise rule for an elementwise op, else a safe superset)."""
    prim = PRIMITIVES[op]
    if prim.sparsity is not None:
        return KINDS[prim.sparsity]
    return _elementwise if prim.shape is None else _everything


# -- the two operations every rule is made of ------------------------------------------------

def _no_sets(size: int) -> Sets:
    return np.zeros(size + 1, dtype=np.int64), _NO_COLUMNS


def _ids(shape: tuple[int, ...]) -> np.ndarray:
    """The entry numbers of an array of ``shape`` (C order), shaped like it: NumPy's indexing,
    joining and broadcasting applied to them say where each entry of the result comes from."""
    return np.arange(math.prod(shape), dtype=np.int64).reshape(shape)


def _gather(sets: Sets, rows: np.ndarray) -> Sets:
    """The sets of the entries ``rows`` (flattened), in that order."""
    indptr, indices = sets
    rows = np.ravel(rows)
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    out = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    _check(int(out[-1]))
    where = np.arange(out[-1], dtype=np.int64) - np.repeat(out[:-1] - starts, lengths)
    return out, indices[where]


def _union(size: int, parts: Sequence[tuple[Sets, np.ndarray, np.ndarray]], n: int) -> Sets:
    """Sets of ``size`` entries: entry ``to[t]`` gets the set of entry ``of[t]`` of ``sets``,
    for every ``(sets, of, to)`` of ``parts`` and every t, united (one sort of the pairs)."""
    keys = []
    for sets, of, to in parts:
        if not len(sets[1]):  # (no entry has a column: a constant's 10⁶ entries cost ms)
            continue
        indptr, indices = _gather(sets, of)
        keys.append(np.repeat(np.ravel(to), np.diff(indptr)) * n + indices)
    _check(sum(len(k) for k in keys))
    # Each part's keys are usually sorted already (entries in order, each set sorted): then
    # the stable sort (timsort) merges the runs in linear time, where the default sorts
    # afresh (1.8 s of a bundle-adjustment pattern's 2.7 s). The same integers either way.
    runs = all(len(k) < 2 or bool(np.all(k[1:] >= k[:-1])) for k in keys)
    joined = (np.sort(np.concatenate(keys), kind="stable" if runs else None) if keys
              else _NO_COLUMNS)
    if len(joined) > 1:  # np.unique, by a sort: its hashing path is ~10x slower here
        joined = joined[np.concatenate(([True], joined[1:] != joined[:-1]))]
    rows = joined // n
    indptr = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=size), out=indptr[1:])
    return indptr, joined - rows * n


def _all(size: int) -> np.ndarray:
    return np.arange(size, dtype=np.int64)


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    return tuple(a % ndim for a in ((axis,) if isinstance(axis, int) else axis))


def _grouped(shape: tuple[int, ...], axis: Any) -> np.ndarray:
    """For each entry of an array of ``shape``, the entry of its reduction over ``axis``
    (keepdims or not: the same C-order numbers)."""
    axes = _axes(axis, len(shape))
    kept = tuple(1 if k in axes else m for k, m in enumerate(shape))
    return np.broadcast_to(_ids(kept), shape)


# -- the rules, by kind ------------------------------------------------------------------------

def _elementwise(op, args, shapes, shape, params, n):
    """The union of the (broadcast) arguments' sets, leaving out an argument whose partial
    the table declares structurally zero."""
    # (an argument without columns, a constant's, adds nothing: x * 2 keeps x's sets)
    used = [(a, s) for a, s, k in zip(args, shapes, _structural_args(op, len(args)))
            if k and len(a[1])]
    if not used:
        return _no_sets(math.prod(shape))
    if all(s == shape for _, s in used) and all(a is used[0][0] or (
            np.array_equal(a[0], used[0][0][0]) and np.array_equal(a[1], used[0][0][1]))
            for a, _ in used):
        return used[0][0]  # sin(x), x * x, and x * y where both read the same entries
    if not shape:  # scalars (most nodes of a scalar circuit): Python sets beat array calls
        union = sorted(set().union(*(a[1].tolist() for a, _ in used)))
        return np.array([0, len(union)], dtype=np.int64), np.array(union, dtype=np.int64)
    size = math.prod(shape)
    return _union(size, [(a, np.broadcast_to(_ids(s), shape), _all(size)) for a, s in used], n)


def _reduction(op, args, shapes, shape, params, n):
    (x,), (sx,) = args, shapes
    return _union(math.prod(shape), [(x, _all(math.prod(sx)), _grouped(sx, params.get("axis")))],
                  n)


def _normalization(op, args, shapes, shape, params, n):
    # (prod_others with directions: every argument has the first one's shape)
    sx = shapes[0]
    group = _grouped(sx, params.get("axis"))
    reduced = _union(int(group.max(initial=-1)) + 1,
                     [(a, _all(math.prod(sx)), group) for a in args], n)
    return _gather(reduced, group)


def _cumsum(op, args, shapes, shape, params, n):
    (x,), (sx,) = args, shapes
    axis = params.get("axis")
    ids = _ids(sx).reshape(-1) if axis is None else np.moveaxis(_ids(sx), axis, -1)
    length = ids.shape[-1]
    # entry p along the axis gets the sets of entries 0..p: the pairs (p - q, p) for every q
    parts = [(x, ids[..., :length - q], ids[..., q:]) for q in range(length)]
    return _union(math.prod(shape), parts, n)


def _indexing(op, args, shapes, shape, params, n):
    ids = _ids(shapes[0])
    if op == "getitem":
        rows = ids[_basic(params["index"])]
    elif op == "take":
        rows = np.take(ids, list(params["indices"]), axis=params["axis"])
    elif op == "reshape":
        return args[0]  # C order is kept
    elif op == "permute_dims":
        rows = np.transpose(ids, params["axes"])
    elif op == "transpose":
        rows = ids.T
    else:  # broadcast_to
        axis = params.get("axis")
        rows = np.broadcast_to(ids if axis is None else np.expand_dims(ids, axis), shape)
    return _gather(args[0], rows)


def _joining(op, args, shapes, shape, params, n):
    offsets = np.cumsum([0] + [math.prod(s) for s in shapes])
    stacked = _stacked(args)
    ids = [_ids(s) + o for s, o in zip(shapes, offsets)]
    join = np.stack if op == "stack" else np.concatenate
    return _gather(stacked, join(ids, axis=params.get("axis", 0)))


def _stacked(args: Sequence[Sets]) -> Sets:
    """The sets of several nodes, one after the other."""
    indptrs, ends = [np.zeros(1, dtype=np.int64)], 0
    for indptr, _ in args:
        indptrs.append(indptr[1:] + ends)
        ends += indptr[-1]
    return np.concatenate(indptrs), np.concatenate([indices for _, indices in args])


def _sum_to(op, args, shapes, shape, params, n):
    (x,), (sx,) = args, shapes
    return _union(math.prod(shape), [(x, _all(math.prod(sx)), np.broadcast_to(_ids(shape), sx))],
                  n)


def _scatter_add(op, args, shapes, shape, params, n):
    out = _ids(shape)
    parts = []
    for part, sp, index in zip(args, shapes, params["indices"]):
        to = out[_basic(index)]
        parts.append((part, np.broadcast_to(_ids(sp), np.shape(to)), to))
    return _union(math.prod(shape), parts, n)


def _put_add(op, args, shapes, shape, params, n):
    (x,), (sx,) = args, shapes
    to = np.take(_ids(shape), list(params["indices"]), axis=params["axis"])
    return _union(math.prod(shape), [(x, _ids(sx), to)], n)


def _setitem(op, args, shapes, shape, params, n):
    # a written entry gets the set of the entry of v written there, the others x's own
    (x, v), (_, sv), size = args, shapes, math.prod(shape)
    place, sources = tuple(params["place"]), params.get("sources")
    positions = np.asarray(params["positions"], dtype=np.int64)
    of_v = np.broadcast_to(_ids(sv).reshape((1,) * (len(place) - len(sv)) + tuple(sv)),
                           place).reshape(-1)
    of_v = np.broadcast_to(of_v if sources is None else of_v[list(sources)], positions.shape)
    kept = np.ones(size, dtype=bool)
    kept[positions] = False
    rest = np.flatnonzero(kept)
    return _union(size, [(x, rest, rest), (v, of_v, positions)], n)


def _outer(op, args, shapes, shape, params, n):
    (sx, sy), size = shapes, math.prod(shape)
    of_x = np.broadcast_to(_ids(sx).reshape(sx + (1,) * len(sy)), shape)
    return _union(size, [(args[0], of_x, _all(size)),
                         (args[1], np.broadcast_to(_ids(sy), shape), _all(size))], n)


def _matmul(op, args, shapes, shape, params, n):
    # out[i, j] = Σ_k a[i, k] b[k, j]: a's row i united, b's column j united
    (a, b), (sa, sb), size = args, shapes, math.prod(shape)
    rows = _union(math.prod(sa[:-1]), [(a, _all(math.prod(sa)), _grouped(sa, -1))], n)
    cols = _union(math.prod(sb[1:]), [(b, _all(math.prod(sb)), _grouped(sb, 0))], n)
    of_a = np.broadcast_to(_ids(sa[:-1]).reshape(sa[:-1] + (1,) * (len(sb) - 1)), shape)
    return _union(size, [(rows, of_a, _all(size)),
                         (cols, np.broadcast_to(_ids(sb[1:]), shape), _all(size))], n)


def _einsum(op, args, shapes, shape, params, n):
    # out[o] = Σ Π_k operand_k[s_k]: each operand's entries united over its letters that are
    # not in the output, then each output entry takes the set of its operand's entry
    from ..primitives.contractions import parse

    inputs, output = parse(params["subscripts"])
    parts = []
    for a, letters, s in zip(args, inputs, shapes):
        kept = tuple(m if c in output else 1 for c, m in zip(letters, s))
        united = _union(math.prod(kept), [(a, _all(math.prod(s)),
                                           np.broadcast_to(_ids(kept), s))], n)
        kept_letters = [c for c in letters if c in output]
        order = sorted(kept_letters, key=output.index)
        grid = np.transpose(_ids(tuple(m for c, m in zip(letters, s) if c in output)),
                            [kept_letters.index(c) for c in order])
        of = np.broadcast_to(grid.reshape(tuple(shape[k] if c in letters else 1
                                                for k, c in enumerate(output))), shape)
        parts.append((united, of, _all(math.prod(shape))))
    return _union(math.prod(shape), parts, n)


def _everything(op, args, shapes, shape, params, n):
    """Every entry on every entry of every argument: a safe superset for an op without a
    rule of its own."""
    one = _union(1, [(a, _all(math.prod(s)), np.zeros(math.prod(s), dtype=np.int64))
                     for a, s in zip(args, shapes)], n)
    return _gather(one, np.zeros(math.prod(shape), dtype=np.int64))


KINDS: dict[str, Any] = {
    "reduction": _reduction, "normalization": _normalization, "cumsum": _cumsum,
    "indexing": _indexing, "joining": _joining, "sum_to": _sum_to,
    "scatter_add": _scatter_add, "put_add": _put_add, "setitem": _setitem, "outer": _outer,
    "matmul": _matmul, "einsum": _einsum,
    "dense": _everything,
}
"""The sparsity rules by kind: a record names its kind in its ``sparsity`` field."""

RULES: dict[str, Any] = {op: KINDS[prim.sparsity] for op, prim in PRIMITIVES.items()
                         if prim.sparsity is not None and prim.sparsity != "dense"}
"""The sparsity rule of every op that is not elementwise, from the records' ``sparsity``
(the elementwise ops, ``shape=None`` in the table, share :func:`_elementwise`); an op with
neither gets :func:`_everything`, a safe superset, and tests/transforms/test_sparsity.py fails until its
record names a kind."""

DENSE: frozenset[str] = frozenset(op for op, prim in PRIMITIVES.items()
                                  if prim.sparsity == "dense")
"""Ops whose every output entry may depend on every input entry, said on purpose (their
records' ``sparsity="dense"``)."""


@lru_cache(maxsize=None)
def _structural_args(op: str, arity: int) -> tuple[bool, ...]:
    """Which arguments of an elementwise op have a partial that is not structurally zero,
    from the table's rule (``None``: no contribution)."""
    prim = PRIMITIVES[op]
    if prim.partials is None:
        return (True,) * arity
    b, args, out = sample_node(op, ((),) * arity)
    params = b.params[out.id] or {}
    return tuple(p is not None for p in prim.partials(out, *args, **params))


def _basic(index: tuple) -> tuple:
    """NumPy's index of a canonical ``getitem`` index (slices as (start, stop, step))."""
    return tuple(slice(*e) if isinstance(e, tuple) else e for e in index)
