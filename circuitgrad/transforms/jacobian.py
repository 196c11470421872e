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
(:func:`~circuitgrad.jacobian_sparsity`) is colored greedily, largest degree first, on the
column-intersection graph, or on the row-intersection graph for reverse mode
(:func:`~circuitgrad.transforms.coloring.column_coloring`); one sweep per
color, seeded with the sum of the one-hots of its columns (rows), gives every entry of the
color apart, since they share no row (column). A banded matrix takes as many sweeps as its
band is wide, whatever n. The nonzeros come out in CSR order as one vector output
``jacobian``, picked from the compressed sweeps with ``take``; the circuit's
``meta["csr_outputs"]`` keeps the pattern (:mod:`circuitgrad.csr`), so ``to_numpy`` returns a
``scipy.sparse.csr_array`` (``to_numpy(j, csr=False)``: the nonzeros; :func:`to_csr` makes
the matrix from them). Sparse Hessians (:func:`sparse_hessian`) use a star coloring of the
symmetric pattern instead (:mod:`~circuitgrad.transforms.coloring`): 2 sweeps for an
arrowhead, where columns need n.

Meta: ``jacobian_of`` (the outputs), ``wrt``, ``mode`` (the mode used) and ``sweeps``; the
derivative nodes start at ``forward_count`` (reverse) or ``tangent_count`` (forward); a sparse
Jacobian adds ``sparse``, ``coloring`` and ``csr_outputs``.

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

from ..guards import refuse_cut_derivative
from ..circuit import Circuit, as_circuit, no_gc
from ..builder import Builder
from ..csr import CSR_META, csr_layouts, csr_matrix
from ..errors import CircuitError
from .common import (
    active_nodes,
    assemble,
    fit_shape,
    one_hot,
    pick_inputs,
    pick_output,
    pick_outputs,
)
from .common import fresh as _fresh
from .grad import adjoint_sweep
from .loop_carries import saving_carries
from .simplify import simplify as simplify_circuit
from .sweeps import tangent_sweep

Shape = tuple[int, ...]
MODES = ("auto", "reverse", "forward")


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
            one sweep per color of a greedy coloring (largest degree first) of the
            pattern's columns (forward: columns that share no row) or rows (reverse); ``auto``
            takes the mode with fewer colors, and colors a second side only where it can
            win at a cost worth it (:func:`_auto_coloring`: a bundle-adjustment pattern is
            colored by columns only).

    Returns:
        A circuit with the inputs of ``c`` and outputs: the chosen outputs ``f ...``, then
        ``df_dx`` for every ``f`` and every ``x`` of ``wrt`` (row by row), of shape
        ``f.shape + x.shape``: entry ``[i, j]`` is ``∂f[i]/∂x[j]`` (``_`` is appended to a
        name that is taken). An output that does not depend on ``x`` gets exact zeros.
        With ``sparse``: the outputs, then ``jacobian``, the nonzeros of the (m, n) matrix
        of :func:`~circuitgrad.jacobian_sparsity` in CSR order, marked in
        ``meta["csr_outputs"]``: ``to_numpy`` returns it as a ``scipy.sparse.csr_array`` at
        one point (``to_numpy(..., csr=False)``: the nonzeros, for batches too).

    Raises:
        CircuitError: an unknown input, output or mode.

    >>> import circuitgrad as cg
    >>> c = cg.parse("f = x * y", shapes={"x": (2,)})
    >>> j = cg.to_numpy(cg.jacobian(c))(x=[1.0, 2.0], y=3.0)
    >>> j.df_dx.tolist(), j.df_dy.tolist()
    ([[3.0, 0.0], [0.0, 3.0]], [1.0, 2.0])
    """
    c = as_circuit(c, "jacobian")
    refuse_cut_derivative(c, "jacobian")
    wrt = pick_inputs(c, wrt)
    outs = pick_outputs(c, outputs)
    if mode not in MODES:
        raise CircuitError(f"mode must be one of {list(MODES)}, got {mode!r}", argument="mode")
    counts = sweep_counts(c, wrt, outs)
    if mode == "auto" and not sparse:
        mode = "reverse" if counts["reverse"] <= counts["forward"] else "forward"
    if mode == "reverse":  # (loops keep their carries: each forward loop runs once)
        c = saving_carries(c)
    with no_gc():
        b = Builder(c)
        ids = dict(zip(c.outputs, c.output_ids))
        result_outputs = [(f, ids[f]) for f in outs]
        taken = set(c.inputs) | set(outs)
        if sparse:
            data, meta = _sparse(b, c, wrt, outs, mode)
            name = _fresh("jacobian", taken)
            meta[CSR_META] = {name: meta.pop("layout")}
            result_outputs.append((name, data))
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


def _sparse(b: Builder, c: Circuit, wrt: Sequence[str], outs: Sequence[str], mode: str,
            symmetric: bool = False) -> tuple[int, dict[str, Any]]:
    """The nonzeros of the Jacobian (all ``outs`` by all ``wrt``, as :func:`jacobian_sparsity`
    lays it out) in CSR order, from one sweep per color of a coloring of its columns
    (forward) or rows (reverse): entries of one color share no row (column), so one sweep
    seeded with the sum of their one-hots gives each of them apart. ``symmetric``: the
    Jacobian is a Hessian (``c`` a gradient circuit); a star coloring of its pattern, forward
    sweeps, each entry read directly where :func:`~.coloring.star_picks` says.

    Returns the node of the nonzeros and the meta, whose ``csr_outputs`` layout (without the
    output's name) is under ``"layout"``."""
    from .coloring import column_coloring, star_coloring, star_picks
    from .sparsity import jacobian_sparsity

    pattern = jacobian_sparsity(c, wrt, outs)
    m, n = pattern.shape
    if symmetric:
        pattern = (pattern + pattern.T).tocsr()
        pattern.sort_indices()
        colors = star_coloring(pattern)
        mode, k = "forward", int(colors.max(initial=-1)) + 1
        rows, picked = star_picks(pattern, colors)
        picks = picked * m + rows
    else:
        # only the coloring(s) the mode needs: a coloring of a 10⁵-wide band is ~1 s
        if mode == "auto":
            mode, col_colors, row_colors = _auto_coloring(pattern, len(c))
        else:
            col_colors = column_coloring(pattern) if mode == "forward" else None
            row_colors = column_coloring(pattern.T) if mode == "reverse" else None
        rows = np.repeat(np.arange(m), np.diff(pattern.indptr))
        cols = pattern.indices
        if mode == "forward":  # entry (r, j) is row r of the sweep of column j's color
            colors, picks = col_colors, col_colors[cols] * m + rows
        else:  # entry (r, j) is column j of the sweep of row r's color
            colors, picks = row_colors, row_colors[rows] * n + cols
        k = int(colors.max(initial=-1)) + 1
    in_ids = dict(zip(c.inputs, c.input_ids))
    out_ids = dict(zip(c.outputs, c.output_ids))
    in_shapes = [c.shape(in_ids[x]) for x in wrt]
    out_shapes = [c.shape(out_ids[f]) for f in outs]
    active = active_nodes(c, wrt)
    compressed = []
    for color in range(k):
        chosen = colors == color
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
    nnz = len(pattern.indices)
    if nnz == 0 or k == 0:
        data = b.const_id(np.zeros(nnz))
    else:
        width = m if mode == "forward" else n
        table = b.apply_id("stack", tuple(compressed), {"axis": 0})
        table = b.apply_id("reshape", (table,), {"shape": (k * width,)})
        data = b.apply_id("take", (table,), {"indices": tuple(picks.tolist()), "axis": 0})
    # tolist, not int() per entry: 1.2·10⁶ nonzeros took 0.75 s so
    layout = {"shape": (m, n), "indptr": tuple(pattern.indptr.tolist()),
              "indices": tuple(pattern.indices.tolist())}
    meta = {"forward_count" if mode == "reverse" else "tangent_count": len(c),
            "mode": mode, "sweeps": k, "sparse": True,
            "coloring": "star" if symmetric else "columns" if mode == "forward" else "rows",
            "layout": layout}
    return data, meta


COLORING_WORK = 10**7
"""Work (entries of the intersection graph's product) a second coloring may always take in
``mode="auto"``; beyond it, only where the sweeps it can save are worth it (:func:`_auto_coloring`)."""


def _auto_coloring(pattern: Any, size: int) -> tuple[str, Any, Any]:
    """``mode="auto"``'s choice for a sparse Jacobian, counting the colorings' own cost.

    Coloring the columns (forward) builds ``PᵀP``, whose work is Σ (nonzeros of a row)²;
    the rows (reverse) ``PPᵀ``, Σ (nonzeros of a column)². Neither can take fewer colors
    than its largest line: a row's nonzeros are columns that must differ in color, so
    forward needs ≥ the most nonzeros of a row, reverse ≥ the most of a column. The cheaper
    coloring is made first; the other only if its bound is below the colors found and its
    work is at most :data:`COLORING_WORK` or 100 node-visits per sweep it could save (each
    sweep is ``size`` nodes). So a bundle-adjustment pattern, whose ~1,300 rows per camera
    make ``PPᵀ`` a clique per camera (27.7 s and 5 GB), is colored by columns only. Fewer
    sweeps win; reverse on a tie. Returns (mode, column colors or None, row colors or None).
    """
    from .coloring import column_coloring

    rows = np.diff(pattern.indptr)
    cols = np.bincount(pattern.indices, minlength=pattern.shape[1])
    work = {"forward": int(np.sum(rows.astype(np.int64) ** 2)),
            "reverse": int(np.sum(cols.astype(np.int64) ** 2))}
    bound = {"forward": int(rows.max(initial=0)), "reverse": int(cols.max(initial=0))}
    color = {"forward": lambda: column_coloring(pattern),
             "reverse": lambda: column_coloring(pattern.T)}
    first = "reverse" if work["reverse"] <= work["forward"] else "forward"
    other = "forward" if first == "reverse" else "reverse"
    found = {first: color[first]()}
    k_first = int(found[first].max(initial=-1)) + 1
    if bound[other] < k_first and work[other] <= max(
            COLORING_WORK, 100 * (k_first - bound[other]) * size):
        found[other] = color[other]()
    counts = {m: int(v.max(initial=-1)) + 1 for m, v in found.items()}
    mode = "reverse" if counts.get("reverse", math.inf) <= counts.get("forward", math.inf) \
        else "forward"
    return mode, found.get("forward"), found.get("reverse")


def sparse_hessian(c: Circuit, wrt: str | Sequence[str] | None = None,
                   output: str | None = None, simplify: bool = True) -> Circuit:
    """The Hessian of a scalar output as a sparse matrix (``cg.hessian(..., sparse=True)``):
    forward sweeps over the gradient circuit, one per color of a star coloring of the
    Hessian's pattern (:mod:`~circuitgrad.transforms.coloring`), every nonzero read directly
    off one sweep.

    Returns:
        A circuit with the inputs of ``c`` and outputs ``J``, the gradient ``dJ_dx ...`` (as
        :func:`~circuitgrad.grad`), and ``d2J``: the nonzeros of the (n, n) Hessian over the
        entries of ``wrt`` (as :func:`~circuitgrad.hessian_sparsity`, made symmetric), in CSR
        order; ``to_numpy`` returns it as a ``scipy.sparse.csr_array`` (``csr=False``: the
        values). ``meta["sweeps"]`` is the number of colors: 2 for an arrowhead, ``2b + 1``
        for a band of half-bandwidth ``b``, whatever n (a short band may take fewer).

    >>> import circuitgrad as cg
    >>> h = sparse_hessian(cg.parse("J = sum(x[:-1] ** 2 * x[-1])", shapes={"x": (4,)}))
    >>> h.outputs, h.meta["sweeps"]
    (('J', 'dJ_dx', 'd2J'), 2)
    >>> cg.to_numpy(h)(x=[1.0, 2.0, 3.0, 4.0]).d2J.toarray().tolist()
    [[8.0, 0.0, 0.0, 2.0], [0.0, 8.0, 0.0, 4.0], [0.0, 0.0, 8.0, 6.0], [2.0, 4.0, 6.0, 0.0]]
    """
    from .grad import grad

    c = as_circuit(c, "hessian")
    refuse_cut_derivative(c, "hessian")
    out_name, _ = pick_output(c, output)
    wrt = pick_inputs(c, wrt)
    g = grad(c, wrt=wrt, output=output)
    with no_gc():
        b = Builder(g)
        taken = set(g.inputs) | set(g.outputs)
        data, meta = _sparse(b, g, wrt, list(g.outputs[1:]), "forward", symmetric=True)
        name = _fresh(f"d2{out_name}", taken)
        layout = meta.pop("layout")
        meta.update({"hessian_of": out_name, "wrt": tuple(wrt), CSR_META: {name: layout}})
        meta.update({k: g.meta[k] for k in ("forward_count", "adjoint_of") if k in g.meta})
        result = b.finish(list(zip(g.outputs, g.output_ids)) + [(name, data)],
                          inputs=g.inputs, meta=meta)
    return simplify_circuit(result) if simplify else result


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


def to_csr(j: Circuit, data: Any, output: str | None = None) -> Any:
    """The ``scipy.sparse.csr_array`` of a sparse Jacobian (or Hessian) circuit's nonzeros
    ``data`` at one point, for values from ``to_numpy(j, csr=False)`` (``to_numpy(j)``
    returns the matrix itself).

    >>> import circuitgrad as cg
    >>> j = cg.jacobian(cg.parse("f = x * x", shapes={"x": (3,)}), sparse=True)
    >>> to_csr(j, cg.to_numpy(j, csr=False)(x=[1.0, 2.0, 3.0]).jacobian).toarray().tolist()
    [[2.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 6.0]]
    """
    layouts = csr_layouts(j)
    if not layouts:
        raise CircuitError("to_csr needs a circuit made by jacobian(..., sparse=True) or "
                           "hessian(..., sparse=True)")
    if output is None:
        output = next(iter(layouts))
    if output not in layouts:
        raise CircuitError(f"to_csr: output {output!r} is not sparse; sparse outputs: "
                           f"{list(layouts)}", argument="output")
    return csr_matrix(layouts[output], data, output)


def jacobian_sweep(c: Circuit, wrt: str | Sequence[str] | None = None,
                   outputs: str | Sequence[str] | None = None, mode: str = "auto",
                   simplify: bool = True) -> Circuit:
    """The one sweep of a Jacobian with its seeds as inputs: what
    :func:`~circuitgrad.jacobian_function` evaluates on the identity's rows as a batch.

    :func:`jacobian` builds one sweep per entry, each seeded with a one-hot constant; this
    circuit has the sweep once, seeded with new inputs, so evaluating it on a batch of seeds
    (the rows of the identity) gives every row (reverse) or column (forward) of the Jacobian
    in one batched call, from a circuit of O(c.size) nodes instead of O(sweeps · c.size).

    Args:
        c, wrt, outputs, mode: as :func:`jacobian` (``"auto"``: the mode with fewer seeds,
            reverse on a tie).
        simplify: simplify the result (exact rules only).

    Returns:
        A circuit with inputs ``c.inputs``, then the seeds: forward mode ``x_dot`` for each
        ``x`` of ``wrt`` (the tangent, of ``x``'s shape), reverse mode ``f_bar`` for each
        output ``f`` (the cotangent, of ``f``'s shape); and outputs the chosen outputs
        ``f ...``, then forward ``f_dot`` for each output (``Σ_x ∂f/∂x · x_dot``), reverse
        ``x_bar`` for each ``x`` of ``wrt`` (``Σ_f f_bar · ∂f/∂x``), exact zeros where there
        is no dependence (``_`` is appended to a name that is taken). ``meta["jacobian_sweep"]``
        holds ``mode``, ``wrt``, ``jacobian_of``, ``seeds`` and ``results`` (the names).

    >>> import circuitgrad as cg
    >>> s = jacobian_sweep(cg.parse("f = sin(x) * y", shapes={"x": (3,)}), mode="reverse")
    >>> s.inputs, s.outputs
    (('x', 'y', 'f_bar'), ('f', 'x_bar', 'y_bar'))
    """
    from .common import zero_node

    c = as_circuit(c, "jacobian_function")
    refuse_cut_derivative(c, "jacobian_function")
    wrt = pick_inputs(c, wrt)
    outs = pick_outputs(c, outputs)
    if mode not in MODES:
        raise CircuitError(f"mode must be one of {list(MODES)}, got {mode!r}", argument="mode")
    counts = sweep_counts(c, wrt, outs)
    if mode == "auto":
        mode = "reverse" if counts["reverse"] <= counts["forward"] else "forward"
    if mode == "reverse":  # (loops keep their carries: each forward loop runs once)
        c = saving_carries(c)
    in_ids = dict(zip(c.inputs, c.input_ids))
    out_ids = dict(zip(c.outputs, c.output_ids))
    taken = set(c.inputs) | set(outs)
    with no_gc():
        b = Builder(c)
        result_outputs = [(f, out_ids[f]) for f in outs]
        if mode == "forward":
            seeds = [_fresh(f"{x}_dot", taken) for x in wrt]
            tangent = tangent_sweep(b, c, {in_ids[x]: b.input(t, c.shape(in_ids[x])).id
                                           for x, t in zip(wrt, seeds)})
            results = []
            for f in outs:
                t = tangent.get(out_ids[f])
                results.append(_fresh(f"{f}_dot", taken))
                result_outputs.append((results[-1], zero_node(b, c.shape(out_ids[f]))
                                       if t is None else t))
            meta: dict[str, Any] = {"tangent_count": len(c)}
            meta.update({k: c.meta[k] for k in ("forward_count", "adjoint_of") if k in c.meta})
        else:
            seeds = [_fresh(f"{f}_bar", taken) for f in outs]
            # Outputs that name one node: their seeds add (f_bar·∂f + g_bar·∂g), none dropped.
            seed_ids: dict[int, int] = {}
            for f, s in zip(outs, seeds):
                o = out_ids[f]
                seed = b.input(s, c.shape(o)).id
                seed_ids[o] = seed if o not in seed_ids else b.apply_id("add",
                                                                        (seed_ids[o], seed))
            active = active_nodes(c, wrt)
            adjoint, adjoint_of = adjoint_sweep(
                b, c, {o: s for o, s in seed_ids.items() if active[o]}, active)
            results = []
            for x in wrt:
                bar, shape = adjoint.get(in_ids[x]), c.shape(in_ids[x])
                results.append(_fresh(f"{x}_bar", taken))
                result_outputs.append((results[-1], zero_node(b, shape) if bar is None else
                                       fit_shape(b, bar, shape, exact=True)))
            meta = {"forward_count": len(c), "adjoint_of": adjoint_of}
        meta["jacobian_sweep"] = {"mode": mode, "wrt": tuple(wrt), "jacobian_of": tuple(outs),
                                  "seeds": tuple(seeds), "results": tuple(results)}
        result = b.finish(result_outputs, inputs=list(c.inputs) + seeds, meta=meta)
    return simplify_circuit(result) if simplify else result
