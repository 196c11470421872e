"""Jacobians as circuits: one array ``∂f/∂x`` of shape ``f.shape + x.shape`` per pair.

:func:`jacobian` builds the derivative of every chosen output ``f`` with respect to every
chosen input ``x`` from the two sweeps the library already has:

* reverse mode: one adjoint sweep (:func:`~circuitgrad.transforms.grad.adjoint_sweep`) per
  *output entry* ``f[k]``, seeded with the one-hot constant ``e_k``: its input adjoints are
  the rows ``∂f[k]/∂x`` of every input at once;
* forward mode: one tangent sweep (:func:`~circuitgrad.transforms.jvp.tangent_sweep`) per
  *input entry* ``x[k]``, seeded with ``e_k``: its output tangents are the columns
  ``∂f/∂x[k]`` of every output at once.

So reverse mode costs ``Σ_f prod(f.shape)`` sweeps and forward mode ``Σ_x prod(x.shape)``;
``mode="auto"`` takes the one with fewer sweeps (reverse on a tie). The rows (columns) are
joined with the ``stack`` primitive and brought to their shape with ``reshape``, so the result
is an ordinary circuit of primitives: it lowers, batches (``f(batch)[k] == f(point k)``),
renders and composes like any other. Each sweep is O(c.size), so the Jacobian is
O(sweeps · c.size).

Sparse Jacobians (``sparse=True``): the structural pattern
(:func:`~circuitgrad.jacobian_sparsity`) is colored greedily (``networkx.greedy_color`` on the
column-intersection graph, or on the row-intersection graph for reverse mode); one sweep per
color, seeded with the sum of the one-hots of its columns (rows), gives every entry of the
color apart, since they share no row (column). A banded matrix takes as many sweeps as its
band is wide, whatever n. The nonzeros come out in CSR order as one vector
``jacobian_data``, picked from the compressed sweeps with ``take``; :func:`to_csr` makes the
``scipy.sparse.csr_array`` from it and the pattern kept in ``meta``.

Meta: ``jacobian_of`` (the outputs), ``wrt``, ``mode`` (the mode used) and ``sweeps``; the
derivative nodes start at ``forward_count`` (reverse) or ``tangent_count`` (forward); a sparse
Jacobian adds ``sparse``, ``indptr``, ``indices`` and ``jacobian_shape``.

    >>> import circuitgrad as cg
    >>> c = cg.parse("f = W @ x", shapes={"W": (2, 3), "x": (3,)})
    >>> j = cg.jacobian(c, wrt="x")
    >>> j.outputs, j.output_shapes["df_dx"]
    (('f', 'df_dx'), (2, 3))
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..circuit import Builder, Circuit, as_circuit, no_gc
from ..errors import CircuitError
from .grad import active_nodes, adjoint_sweep, fit_shape, pick_inputs, pick_names
from .jvp import assemble, one_hot, tangent_sweep
from .simplify import simplify as simplify_circuit

Shape = tuple[int, ...]
MODES = ("auto", "reverse", "forward")


def pick_outputs(c: Circuit, outputs: str | Sequence[str] | None) -> list[str]:
    """The output names to differentiate (default: all outputs)."""
    return pick_names(outputs, c.outputs, "outputs", "output")


def sweep_counts(c: Circuit, wrt: Sequence[str], outputs: Sequence[str]) -> dict[str, int]:
    """The number of sweeps each mode needs: ``{"reverse": Σ_f prod(f.shape),
    "forward": Σ_x prod(x.shape)}``.

    >>> import circuitgrad as cg
    >>> sweep_counts(cg.parse("f = sum(x)", shapes={"x": (4,)}), ["x"], ["f"])
    {'reverse': 1, 'forward': 4}
    """
    return {"reverse": sum(math.prod(c.output_shapes[f]) for f in outputs),
            "forward": sum(math.prod(c.input_shapes[x]) for x in wrt)}


def jacobian(c: Circuit, wrt: str | Sequence[str] | None = None,
             outputs: str | Sequence[str] | None = None, mode: str = "auto",
             simplify: bool = True, sparse: bool = False) -> Circuit:
    """The Jacobian circuit: the outputs' values, then one array ``df_dx`` per pair.

    Args:
        c: a circuit (any number of outputs, any shapes).
        wrt: input names (default: all inputs, in order).
        outputs: output names (default: all outputs, in order).
        mode: ``"reverse"`` (one adjoint sweep per output entry), ``"forward"`` (one tangent
            sweep per input entry) or ``"auto"`` (fewer sweeps; reverse on a tie).
        simplify: simplify the result (exact rules only).
        sparse: compute only the structural nonzeros (:func:`~circuitgrad.jacobian_sparsity`),
            one sweep per color of a greedy coloring (``networkx.greedy_color``) of the
            pattern's columns (forward: columns that share no row) or rows (reverse); ``auto``
            takes the mode with fewer colors.

    Returns:
        A circuit with the inputs of ``c`` and outputs: the chosen outputs ``f ...``, then
        ``df_dx`` for every ``f`` and every ``x`` of ``wrt`` (row by row), of shape
        ``f.shape + x.shape``: entry ``[i, j]`` is ``∂f[i]/∂x[j]`` (``_`` is appended to a
        name that is taken). An output that does not depend on ``x`` gets exact zeros.
        With ``sparse``: the outputs, then ``jacobian_data``, the nonzeros of the (m, n)
        matrix of :func:`~circuitgrad.jacobian_sparsity` in CSR order, whose ``indptr`` and
        ``indices`` are in ``meta``; :func:`to_csr` makes the ``scipy.sparse.csr_array``.

    Raises:
        CircuitError: an unknown input, output or mode.

    >>> import circuitgrad as cg
    >>> c = cg.parse("f = x * y", shapes={"x": (2,)})
    >>> j = cg.to_numpy(cg.jacobian(c))(x=[1.0, 2.0], y=3.0)
    >>> j.df_dx.tolist(), j.df_dy.tolist()
    ([[3.0, 0.0], [0.0, 3.0]], [1.0, 2.0])
    """
    c = as_circuit(c, "jacobian")
    wrt = pick_inputs(c, wrt)
    outs = pick_outputs(c, outputs)
    if mode not in MODES:
        raise CircuitError(f"mode must be one of {list(MODES)}, got {mode!r}", argument="mode")
    counts = sweep_counts(c, wrt, outs)
    if mode == "auto" and not sparse:
        mode = "reverse" if counts["reverse"] <= counts["forward"] else "forward"
    with no_gc():
        b = Builder(c)
        ids = dict(zip(c.outputs, c.output_ids))
        result_outputs = [(f, ids[f]) for f in outs]
        taken = set(c.inputs) | set(outs)
        if sparse:
            data, meta = _sparse(b, c, wrt, outs, mode)
            result_outputs.append((_fresh("jacobian_data", taken), data))
        else:
            sweep = _reverse_blocks if mode == "reverse" else _forward_blocks
            blocks, meta = sweep(b, c, wrt, outs)
            for f in outs:
                for x in wrt:
                    result_outputs.append((_fresh(f"d{f}_d{x}", taken), blocks[f, x]))
            meta.update({"mode": mode, "sweeps": counts[mode]})
        meta.update({"jacobian_of": tuple(outs), "wrt": tuple(wrt)})
        result = b.finish(result_outputs, inputs=c.inputs, meta=meta)
    return simplify_circuit(result) if simplify else result


def _reverse_blocks(b: Builder, c: Circuit, wrt: Sequence[str],
                    outs: Sequence[str]) -> tuple[dict[tuple[str, str], int], dict[str, Any]]:
    """The blocks from one adjoint sweep per output entry, seeded with its one-hot."""
    active = active_nodes(c, wrt)
    in_ids = dict(zip(c.inputs, c.input_ids))
    out_ids = dict(zip(c.outputs, c.output_ids))
    adjoint_of: dict[int, int] = {}
    blocks = {}
    for f in outs:
        o, shape_f = out_ids[f], c.shape(out_ids[f])
        rows: dict[str, list[int | None]] = {x: [] for x in wrt}
        for k in np.ndindex(shape_f):
            adjoint: dict[int, int] = {}
            if active[o]:
                adjoint, of = adjoint_sweep(b, c, {o: b.const_id(one_hot(shape_f, k))}, active,
                                            {o: f})
                for a, i in of.items():
                    adjoint_of.setdefault(a, i)
            for x in wrt:
                bar = adjoint.get(in_ids[x])
                rows[x].append(None if bar is None else
                               fit_shape(b, bar, c.shape(in_ids[x]), exact=True))
        for x in wrt:
            blocks[f, x] = assemble(b, rows[x], shape_f, c.shape(in_ids[x]), lead=True)
    return blocks, {"forward_count": len(c), "adjoint_of": adjoint_of}


def _forward_blocks(b: Builder, c: Circuit, wrt: Sequence[str],
                    outs: Sequence[str]) -> tuple[dict[tuple[str, str], int], dict[str, Any]]:
    """The blocks from one tangent sweep per input entry, seeded with its one-hot."""
    in_ids = dict(zip(c.inputs, c.input_ids))
    out_ids = dict(zip(c.outputs, c.output_ids))
    blocks = {}
    for x in wrt:
        shape_x = c.shape(in_ids[x])
        columns: dict[str, list[int | None]] = {f: [] for f in outs}
        for k in np.ndindex(shape_x):
            tangent = tangent_sweep(b, c, {in_ids[x]: b.const_id(one_hot(shape_x, k))})
            for f in outs:
                columns[f].append(tangent.get(out_ids[f]))
        for f in outs:
            blocks[f, x] = assemble(b, columns[f], shape_x, c.shape(out_ids[f]), lead=False)
    meta = {k: c.meta[k] for k in ("forward_count", "adjoint_of") if k in c.meta}
    return blocks, {**meta, "tangent_count": len(c)}


def _sparse(b: Builder, c: Circuit, wrt: Sequence[str], outs: Sequence[str],
            mode: str) -> tuple[int, dict[str, Any]]:
    """The nonzeros of the Jacobian (all ``outs`` by all ``wrt``, as :func:`jacobian_sparsity`
    lays it out) in CSR order, from one sweep per color of a coloring of its columns
    (forward) or rows (reverse): entries of one color share no row (column), so one sweep
    seeded with the sum of their one-hots gives each of them apart."""
    import networkx as nx

    from .sparsity import jacobian_sparsity

    pattern = jacobian_sparsity(c, wrt, outs)
    m, n = pattern.shape
    rows = np.repeat(np.arange(m), np.diff(pattern.indptr))
    cols = pattern.indices

    def coloring(by_line: list[np.ndarray], count: int) -> list[int]:
        # Entries that share a line (a row, for a coloring of columns) need different colors.
        graph = nx.Graph()
        graph.add_nodes_from(range(count))
        for line in by_line:
            graph.add_edges_from((int(a), int(z)) for k, a in enumerate(line) for z in line[k + 1:])
        colors = nx.greedy_color(graph, strategy="largest_first")
        return [colors[j] for j in range(count)]

    by_row = [cols[pattern.indptr[r]:pattern.indptr[r + 1]] for r in range(m)]
    by_column = pattern.tocsc()
    by_col = [by_column.indices[by_column.indptr[j]:by_column.indptr[j + 1]] for j in range(n)]
    col_colors, row_colors = coloring(by_row, n), coloring(by_col, m)
    k_forward, k_reverse = max(col_colors, default=-1) + 1, max(row_colors, default=-1) + 1
    if mode == "auto":
        mode = "reverse" if k_reverse <= k_forward else "forward"
    in_ids = dict(zip(c.inputs, c.input_ids))
    out_ids = dict(zip(c.outputs, c.output_ids))
    in_shapes = [c.shape(in_ids[x]) for x in wrt]
    out_shapes = [c.shape(out_ids[f]) for f in outs]
    if mode == "forward":
        colors, k, line, width = col_colors, k_forward, rows, m
        entry_color = [col_colors[j] for j in cols]
    else:
        colors, k, line, width = row_colors, k_reverse, cols, n
        entry_color = [row_colors[r] for r in rows]
    active = active_nodes(c, wrt)
    compressed = []
    for color in range(k):
        chosen = np.array([h == color for h in colors])
        if mode == "forward":
            seeds = _seeds(b, [in_ids[x] for x in wrt], in_shapes, chosen)
            tangent = tangent_sweep(b, c, seeds)
            found = [tangent.get(out_ids[f]) for f in outs]
            compressed.append(_flat_join(b, found, out_shapes))
        else:
            seeds = _seeds(b, [out_ids[f] for f in outs], out_shapes, chosen)
            seeds = {o: s for o, s in seeds.items() if active[o]}
            adjoint, _ = adjoint_sweep(b, c, seeds, active)
            found = [adjoint.get(in_ids[x]) for x in wrt]
            found = [None if a is None else fit_shape(b, a, s, exact=True)
                     for a, s in zip(found, in_shapes)]
            compressed.append(_flat_join(b, found, in_shapes))
    if len(cols) == 0 or k == 0:
        data = b.const_id(np.zeros(len(cols)))
    else:
        table = b.apply_id("stack", tuple(compressed), {"axis": 0})
        table = b.apply_id("reshape", (table,), {"shape": (k * width,)})
        picks = tuple(int(h * width + p) for h, p in zip(entry_color, line))
        data = b.apply_id("take", (table,), {"indices": picks, "axis": 0})
    meta = {"forward_count" if mode == "reverse" else "tangent_count": len(c),
            "mode": mode, "sweeps": k, "sparse": True,
            "indptr": tuple(int(v) for v in pattern.indptr),
            "indices": tuple(int(v) for v in pattern.indices), "jacobian_shape": (m, n)}
    return data, meta


def _seeds(b: Builder, ids: Sequence[int], shapes: Sequence[Shape],
           chosen: np.ndarray) -> dict[int, int]:
    """The seed of each node: ones at its entries that ``chosen`` (all nodes' entries
    flattened and joined) marks; nodes with none are left out."""
    seeds, first = {}, 0
    for i, shape in zip(ids, shapes):
        size = math.prod(shape)
        mask = chosen[first:first + size]
        first += size
        if mask.any():
            seeds[i] = b.const_id(mask.reshape(shape).astype(float) if shape else 1.0)
    return seeds


def _flat_join(b: Builder, nodes: Sequence[int | None], shapes: Sequence[Shape]) -> int:
    """The entries of ``nodes`` (zeros for None) flattened and joined into one vector."""
    parts = []
    for node, shape in zip(nodes, shapes):
        size = math.prod(shape)
        if node is None:
            parts.append(b.const_id(np.zeros(size)))
        else:
            parts.append(node if len(shape) == 1 else
                         b.apply_id("reshape", (node,), {"shape": (size,)}))
    return parts[0] if len(parts) == 1 else b.apply_id("concatenate", tuple(parts),
                                                       {"axis": 0})


def to_csr(j: Circuit, data: Any) -> Any:
    """The ``scipy.sparse.csr_array`` of a sparse Jacobian circuit's ``jacobian_data`` output
    at one point.

    >>> import circuitgrad as cg
    >>> j = cg.jacobian(cg.parse("f = x * x", shapes={"x": (3,)}), sparse=True)
    >>> to_csr(j, cg.to_numpy(j)(x=[1.0, 2.0, 3.0]).jacobian_data).toarray().tolist()
    [[2.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 6.0]]
    """
    import scipy.sparse

    if not j.meta.get("sparse"):
        raise CircuitError("to_csr needs a circuit made by jacobian(..., sparse=True)")
    data = np.asarray(data, dtype=float)
    if data.shape != (len(j.meta["indices"]),):
        raise CircuitError(f"to_csr takes the data of one point, of shape "
                           f"({len(j.meta['indices'])},); got shape {data.shape}")
    return scipy.sparse.csr_array((data, np.array(j.meta["indices"], dtype=np.int64),
                                   np.array(j.meta["indptr"], dtype=np.int64)),
                                  shape=tuple(j.meta["jacobian_shape"]))


def _fresh(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name
