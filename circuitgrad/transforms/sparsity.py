"""Jacobian sparsity patterns, from the circuit alone: :func:`jacobian_sparsity`.

Each entry of each node gets the set of input entries it depends on, as a Python ``int`` used
as a bit set (bit ``j``: column ``j`` of the Jacobian, the inputs' entries flattened and joined
in ``wrt`` order), walking the nodes in ascending id. A node's sets come from its arguments'
by the rule of its kind, applied with NumPy to object arrays of these ints:

* elementwise ops: the union of the (broadcast) arguments' sets, leaving out an argument whose
  partial the primitive table declares structurally zero (``step``, ``sign``, the masks, the
  condition of ``where``);
* reductions (``sum``, ``max`` ...): the union along the reduced axes; ``softmax``-like
  normalizations: the union along the axis, broadcast back; ``cumsum``: running unions;
* indexing, joining, reshaping, transposing: the same NumPy operation on the sets;
* ``matmul``, ``outer``: the unions of the products' terms;
* the adjoint pass's ``sum_to``, ``broadcast_to``, ``scatter_add`` and ``put_add``: the
  unions of what they sum, so that the pattern of a gradient circuit is the Hessian's;
* any other op: every entry depends on every entry of every argument, a safe superset.

So the pattern is structural: a superset of the nonzeros of the Jacobian at every point (an
exact zero that arises from values, as ``x - x``, is still in the pattern), and nothing is
evaluated.

    >>> import circuitgrad as cg
    >>> c = cg.parse("f = x[1:] * x[:-1]", shapes={"x": (4,)})
    >>> jacobian_sparsity(c).toarray().astype(int).tolist()
    [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
"""

from __future__ import annotations

import math
from functools import lru_cache, reduce
from typing import Any, Sequence

import numpy as np

from ..circuit import LEAVES, Circuit, as_circuit
from ..primitives import PRIMITIVES
from .grad import pick_inputs, sample_node
from .jacobian import pick_outputs

REDUCTIONS = ("sum", "mean", "max", "min", "prod", "norm", "logsumexp")
NORMALIZATIONS = ("softmax", "log_softmax", "prod_others")


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
    wrt = pick_inputs(c, wrt)
    outs = pick_outputs(c, outputs)
    sets = dependency_sets(c, wrt)
    ids = dict(zip(c.outputs, c.output_ids))
    rows = [int(s) for f in outs for s in np.ravel(sets[ids[f]])]
    n = sum(math.prod(c.input_shapes[x]) for x in wrt)
    indptr, indices = [0], []
    for bits in rows:
        while bits:  # the set bits, lowest first: O(nnz) per row, not O(n)
            low = bits & -bits
            indices.append(low.bit_length() - 1)
            bits ^= low
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=bool)
    return scipy.sparse.csr_array((data, np.array(indices, dtype=np.int64),
                                   np.array(indptr, dtype=np.int64)), shape=(len(rows), n))


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


def dependency_sets(c: Circuit, wrt: Sequence[str]) -> dict[int, np.ndarray]:
    """``{node: object array of the node's shape}``: the bit set of the input entries each
    entry depends on (bits numbered as :func:`jacobian_sparsity`'s columns)."""
    sets: dict[int, np.ndarray] = {}
    ids = dict(zip(c.inputs, c.input_ids))
    first = 0
    for x in wrt:
        shape = c.shape(ids[x])
        size = math.prod(shape)
        bits = np.empty(size, dtype=object)
        bits[:] = [1 << (first + j) for j in range(size)]
        sets[ids[x]] = bits.reshape(shape)
        first += size
    for i in range(len(c)):
        if i in sets:
            continue
        op = c.op(i)
        if op in LEAVES:
            sets[i] = _filled(c.shape(i), 0)
            continue
        args = [sets[a] for a in c.args(i)]
        result = np.asarray(_rule(op, c, i, args), dtype=object)  # a full reduction: an int
        sets[i] = np.broadcast_to(result, c.shape(i)) if np.shape(result) != c.shape(i) \
            else result
    return sets


def _filled(shape: tuple[int, ...], bits: int) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    out[...] = bits
    return out


def _union(a: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    if a.ndim == 0:
        return a
    if axis is None:
        axis = tuple(range(a.ndim))
    return np.bitwise_or.reduce(a, axis=axis, keepdims=keepdims)


def _everything(args: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    return _filled(shape, reduce(lambda s, a: s | int(_union(a)), args, 0))


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


def _rule(op: str, c: Circuit, i: int, args: list[np.ndarray]) -> np.ndarray:
    prim = PRIMITIVES[op]
    params = c.params(i) or {}
    shape = c.shape(i)
    if prim.shape is None:
        keep = _structural_args(op, len(args))
        used = [np.broadcast_to(a, shape) for a, k in zip(args, keep) if k]
        return reduce(np.bitwise_or, used) if used else _filled(shape, 0)
    x = args[0]
    axis = params.get("axis")
    if op in REDUCTIONS:
        return _union(x, axis)
    if op in NORMALIZATIONS:
        return np.broadcast_to(_union(x, axis, keepdims=True), x.shape)
    if op == "cumsum":
        return np.bitwise_or.accumulate(x, axis=axis)
    if op == "getitem":
        return x[_basic(params["index"])]
    if op == "take":
        return np.take(x, list(params["indices"]), axis=params["axis"])
    if op == "stack":
        return np.stack(args, axis=axis)
    if op == "concatenate":
        return np.concatenate(args, axis=axis)
    if op == "reshape":
        return np.reshape(x, params["shape"])
    if op == "permute_dims":
        return np.transpose(x, params["axes"])
    if op == "transpose":
        return x.T
    if op == "broadcast_to":
        return np.broadcast_to(x if axis is None else np.expand_dims(x, axis), shape)
    if op == "sum_to":
        lead = x.ndim - len(shape)
        y = _union(x, tuple(range(lead))) if lead else x
        ones = tuple(k for k, m in enumerate(shape) if m == 1)
        return _union(y, ones, keepdims=True) if ones and y.ndim else y
    if op == "scatter_add":
        out = _filled(shape, 0)
        for part, index in zip(args, params["indices"]):
            where = _basic(index)
            out[where] = out[where] | np.broadcast_to(part, np.shape(out[where]))
        return out
    if op == "put_add":
        out = _filled(shape, 0)
        front = (slice(None),) * params["axis"]
        for k, j in enumerate(params["indices"]):
            out[front + (j,)] = out[front + (j,)] | x[front + (k,)]
        return out
    if op == "outer":
        return np.bitwise_or.outer(x, args[1])
    if op == "matmul":
        a, b = args
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        out = _union(a2[:, :, None] | b2[None, :, :], axis=1)
        if a.ndim == 1:
            out = out[0]
        if b.ndim == 1:
            out = out[..., 0]
        return out
    return _everything(args, shape)
