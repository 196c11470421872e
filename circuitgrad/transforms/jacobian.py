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

Meta: ``jacobian_of`` (the outputs), ``wrt``, ``mode`` (the mode used) and ``sweeps``; the
derivative nodes start at ``forward_count`` (reverse) or ``tangent_count`` (forward).

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
from .grad import active_nodes, adjoint_sweep, fit_shape, pick_inputs
from .jvp import assemble, one_hot, tangent_sweep
from .simplify import simplify as simplify_circuit

Shape = tuple[int, ...]
MODES = ("auto", "reverse", "forward")


def pick_outputs(c: Circuit, outputs: str | Sequence[str] | None) -> list[str]:
    """The output names to differentiate (default: all outputs)."""
    if outputs is None:
        return list(c.outputs)
    names = [outputs] if isinstance(outputs, str) else list(outputs)
    for name in names:
        if name not in c.outputs:
            raise CircuitError(f"outputs names {name!r}, which is not an output; outputs are "
                               f"{list(c.outputs)}", argument="outputs")
    if len(set(names)) != len(names):
        raise CircuitError(f"outputs names an output twice: {names}", argument="outputs")
    return names


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
             simplify: bool = True) -> Circuit:
    """The Jacobian circuit: the outputs' values, then one array ``df_dx`` per pair.

    Args:
        c: a circuit (any number of outputs, any shapes).
        wrt: input names (default: all inputs, in order).
        outputs: output names (default: all outputs, in order).
        mode: ``"reverse"`` (one adjoint sweep per output entry), ``"forward"`` (one tangent
            sweep per input entry) or ``"auto"`` (fewer sweeps; reverse on a tie).
        simplify: simplify the result (exact rules only).

    Returns:
        A circuit with the inputs of ``c`` and outputs: the chosen outputs ``f ...``, then
        ``df_dx`` for every ``f`` and every ``x`` of ``wrt`` (row by row), of shape
        ``f.shape + x.shape``: entry ``[i, j]`` is ``∂f[i]/∂x[j]`` (``_`` is appended to a
        name that is taken). An output that does not depend on ``x`` gets exact zeros.

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
    if mode == "auto":
        mode = "reverse" if counts["reverse"] <= counts["forward"] else "forward"
    with no_gc():
        b = Builder(c)
        sweep = _reverse_blocks if mode == "reverse" else _forward_blocks
        blocks, meta = sweep(b, c, wrt, outs)
        ids = dict(zip(c.outputs, c.output_ids))
        result_outputs = [(f, ids[f]) for f in outs]
        taken = set(c.inputs) | set(outs)
        for f in outs:
            for x in wrt:
                result_outputs.append((_fresh(f"d{f}_d{x}", taken), blocks[f, x]))
        meta.update({"jacobian_of": tuple(outs), "wrt": tuple(wrt), "mode": mode,
                     "sweeps": counts[mode]})
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


def _fresh(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name
