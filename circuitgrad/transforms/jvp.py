"""Forward mode and second derivatives, as circuits: :func:`jvp`, :func:`hvp`, :func:`hessian`.

Forward mode is the notes' forward sweep with one more number per node: walk the nodes in
ascending id (a topological order) and give each node a *tangent* ``v_dot``, the derivative of
``v`` along the input direction ``t``. A node's tangent is ``Σᵢ argᵢ_dot · ∂out/∂argᵢ``, with
the same local partials the adjoint pass uses (the table's ``partials``: ``None`` and the
numbers 1 and -1 cost no multiplication), or the table's ``jvp`` rule for the tensor-linear
ops (matmul, sum, transpose ...). Nodes that depend on no seeded input get no tangent, so
nothing is built for them. The sweep emits a constant number of nodes per node, so
``jvp(c).size <= JVP_SIZE_FACTOR * c.size`` (:func:`tangent_rule_size`, from the table).

Second order is forward-over-reverse: :func:`hvp` is the forward sweep over the adjoint
circuit ``grad(c)``, seeded with the direction ``v``, so ``H·v`` costs
``O(c.size)`` (:data:`HVP_SIZE_FACTOR`); :func:`hessian` runs one such sweep per input entry,
seeded with a unit vector (a constant, so multiplications by 0 and 1 are never built), and
joins the sweeps' results with ``stack`` (:func:`assemble`, shared with
:func:`~circuitgrad.jacobian`).

Meta: the tangent nodes are those from ``meta["tangent_count"]`` on (after the primal nodes
and, for :func:`hvp` and :func:`hessian`, the adjoint nodes from ``forward_count``), so the
lowerings can tell the three passes apart; ``tangent_inputs`` names the direction's inputs,
one per ``wrt`` input.

Results are ordinary circuits (simplified with :func:`~circuitgrad.simplify` by default):
they lower, render, and compose, e.g. ``grad(jvp(c), output="f_dot")``.

    >>> import circuitgrad as cg
    >>> c = cg.parse("f = x*y + sin(x)")
    >>> j = cg.jvp(c, tangents={"x": "tx", "y": "ty"})
    >>> j.inputs, j.outputs
    (('x', 'y', 'tx', 'ty'), ('f', 'f_dot'))
    >>> [float(v) for v in cg.to_numpy(j)(x=0.0, y=2.0, tx=1.0, ty=0.0)]
    [0.0, 3.0]
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..circuit import Builder, Circuit, as_circuit, no_gc
from ..errors import CircuitError
from .common import assemble, one_hot, pick_inputs, pick_names, pick_output
from .common import fresh as _fresh
from .common import zero_node as _zero
from .grad import grad
from .simplify import simplify as simplify_circuit
from .sweeps import tangent_sweep

# Old import paths: the size bounds live in .bounds and are computed on first use.
_BOUNDS = ("JVP_SIZE_FACTOR", "HVP_SIZE_FACTOR", "tangent_rule_size")


def __getattr__(name: str) -> Any:
    if name in _BOUNDS:
        from . import bounds

        return getattr(bounds, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _derivative_meta(c: Circuit) -> dict[str, Any]:
    # An adjoint circuit's forward part and adjoint nodes stay labelled for the lowerings.
    return {k: c.meta[k] for k in ("forward_count", "adjoint_of") if k in c.meta}


def jvp(c: Circuit, tangents: dict[str, str] | None = None, simplify: bool = True) -> Circuit:
    """The circuit computing ``c``'s outputs and their directional derivatives ``∇f·t``.

    Args:
        c: a circuit (any number of outputs, any shapes).
        tangents: ``{input name: tangent input name}``: the direction ``t``, given as new
            inputs of the same shapes. Default: every input ``x`` gets ``x_dot``. Inputs not
            named have tangent zero.
        simplify: simplify the result (exact rules only).

    Returns:
        A circuit with inputs ``c.inputs`` then the tangent names, and outputs ``c.outputs``
        then ``o_dot`` for each output ``o`` (the tangent, of ``o``'s shape; ``_`` is appended
        to a name that is taken). Its size is at most ``JVP_SIZE_FACTOR * c.size``.

    Raises:
        CircuitError: a key that is not an input, a tangent name that is taken.

    >>> import circuitgrad as cg
    >>> j = cg.jvp(cg.parse("f = x**3"))
    >>> j.inputs, j.outputs, float(cg.to_numpy(j)(x=2.0, x_dot=0.5)[1])
    (('x', 'x_dot'), ('f', 'f_dot'), 6.0)
    """
    c = as_circuit(c, "jvp")
    if tangents is None:
        tangents = {}
        taken = set(c.inputs) | set(c.outputs)
        for x in c.inputs:
            tangents[x] = _fresh(f"{x}_dot", taken)
    tangents = dict(tangents)
    pick_names(list(tangents), c.inputs, "tangents", "input")
    for x, t in tangents.items():
        if not isinstance(t, str) or not t or t in c.inputs:
            raise CircuitError(f"the tangent of {x!r} needs a new input name, got {t!r}")
    if len(set(tangents.values())) != len(tangents):
        raise CircuitError(f"two inputs have the same tangent name: {tangents}")
    with no_gc():
        b = Builder(c)
        ids = dict(zip(c.inputs, c.input_ids))
        seeds = {ids[x]: b.input(t, c.shape(ids[x])).id for x, t in tangents.items()}
        tangent = tangent_sweep(b, c, seeds)
        outputs = list(zip(c.outputs, c.output_ids))
        taken = set(c.inputs) | set(tangents.values()) | set(c.outputs)
        for name, i in zip(c.outputs, c.output_ids):
            t = tangent.get(i)
            outputs.append((_fresh(f"{name}_dot", taken),
                            _zero(b, c.shape(i)) if t is None else t))
        meta = {**_derivative_meta(c), "tangent_count": len(c), "wrt": tuple(tangents),
                "tangent_inputs": tuple(tangents.values())}
        result = b.finish(outputs, inputs=list(c.inputs) + list(tangents.values()), meta=meta)
    return simplify_circuit(result) if simplify else result


def hvp(c: Circuit, wrt: str | Sequence[str] | None = None, output: str | None = None,
        simplify: bool = True) -> Circuit:
    """The Hessian-vector product ``H·v`` as a circuit, forward-over-reverse, in O(c.size).

    Args:
        c: a circuit with a scalar output ``J``.
        wrt: the inputs ``x`` of the Hessian (default: all inputs, in order).
        output: which output, when the circuit has several.
        simplify: simplify the result (exact rules only).

    Returns:
        A circuit with inputs ``c.inputs`` then ``v_x`` for each ``x`` in ``wrt`` (the vector,
        of ``x``'s shape), and outputs ``J``, the gradient ``dJ_dx ...`` (as :func:`grad`),
        then ``Hv_x ...``: the entries of ``H·v`` for ``x``, i.e.
        ``Σ_y ∂²J/∂x∂y · v_y``, of ``x``'s shape. Its size is at most
        ``HVP_SIZE_FACTOR * c.size``.

    >>> import circuitgrad as cg
    >>> h = cg.hvp(cg.parse("J = x**2 * y"))
    >>> h.inputs, h.outputs
    (('x', 'y', 'v_x', 'v_y'), ('J', 'dJ_dx', 'dJ_dy', 'Hv_x', 'Hv_y'))
    >>> [float(v) for v in cg.to_numpy(h)(x=3.0, y=2.0, v_x=1.0, v_y=0.0)[3:]]
    [4.0, 6.0]
    """
    c = as_circuit(c, "hvp")
    wrt = pick_inputs(c, wrt)
    g = grad(c, wrt=wrt, output=output)
    with no_gc():
        b = Builder(g)
        ids = dict(zip(g.inputs, g.input_ids))
        taken = set(g.inputs) | set(g.outputs)
        directions = [_fresh(f"v_{x}", taken) for x in wrt]
        seeds = {ids[x]: b.input(v, g.shape(ids[x])).id for x, v in zip(wrt, directions)}
        tangent = tangent_sweep(b, g, seeds)
        outputs = list(zip(g.outputs, g.output_ids))
        for x, gid in zip(wrt, g.output_ids[1:]):
            t = tangent.get(gid)
            node = _zero(b, g.shape(gid)) if t is None else t
            outputs.append((_fresh(f"Hv_{x}", taken), node))
        result = b.finish(outputs, inputs=list(g.inputs) + directions,
                          meta={**_derivative_meta(g), "tangent_count": len(g),
                                "hvp_of": g.outputs[0], "wrt": tuple(wrt),
                                "tangent_inputs": tuple(directions)})
    return simplify_circuit(result) if simplify else result


def hessian(c: Circuit, wrt: str | Sequence[str] | None = None, output: str | None = None,
            simplify: bool = True, layout: str = "blocks", sparse: bool = False) -> Circuit:
    """The full Hessian of a scalar output as a circuit: one forward sweep per input entry.

    Args:
        c: a circuit with a scalar output ``J``.
        wrt: the inputs (default: all inputs, in order).
        output: which output, when the circuit has several.
        simplify: simplify the result (exact rules only).
        layout: ``"blocks"``: one array per pair of inputs; ``"matrix"``: one (n, n) matrix
            for the n entries of ``wrt`` (each input's entries in order, one input after the
            other): what ``scipy.optimize`` takes for many scalar inputs.
        sparse: compute only the structural nonzeros (:func:`~circuitgrad.hessian_sparsity`),
            one sweep per color of a star coloring of the pattern; outputs ``J``, the
            gradient and ``d2J``, the (n, n) matrix over the entries of ``wrt`` (as for
            ``layout="matrix"``, which is the only layout), that ``to_numpy`` returns as a
            ``scipy.sparse.csr_array`` (``circuitgrad.transforms.jacobian.sparse_hessian``).

    Returns:
        A circuit with the inputs of ``c`` and outputs ``J``, then for ``"blocks"`` the
        gradient ``dJ_dx ...`` (as :func:`grad`) and ``d2J_dx_dy`` for every pair ``x, y`` of
        ``wrt`` (row by row): ``∂²J/∂x∂y``, of shape ``x.shape + y.shape`` (a scalar for
        scalar inputs); for ``"matrix"`` the gradient ``dJ`` of shape (n,) and the Hessian
        ``d2J`` of shape (n, n). The blocks are joined with ``stack``; the size is
        O(n · c.size).

    Raises:
        CircuitError: an unknown input, output or layout, a non-scalar output.

    >>> import circuitgrad as cg
    >>> h = cg.hessian(cg.parse("J = x**2 * y"))
    >>> h.outputs
    ('J', 'dJ_dx', 'dJ_dy', 'd2J_dx_dx', 'd2J_dx_dy', 'd2J_dy_dx', 'd2J_dy_dy')
    >>> [float(v) for v in cg.to_numpy(h)(x=3.0, y=2.0)[3:]]
    [4.0, 6.0, 6.0, 0.0]
    >>> m = cg.hessian(cg.parse("J = x**2 * y"), layout="matrix")
    >>> m.outputs, cg.to_numpy(m)(x=3.0, y=2.0).d2J.tolist()
    (('J', 'dJ', 'd2J'), [[4.0, 6.0], [6.0, 0.0]])
    """
    c = as_circuit(c, "hessian")
    if sparse:
        from .jacobian import sparse_hessian

        return sparse_hessian(c, wrt=wrt, output=output, simplify=simplify)
    if layout not in ("blocks", "matrix"):
        raise CircuitError(f"layout must be 'blocks' or 'matrix', got {layout!r}",
                           argument="layout")
    out_name, _ = pick_output(c, output)
    wrt = pick_inputs(c, wrt)
    g = grad(c, wrt=wrt, output=output)
    with no_gc():
        b = Builder(g)
        ids = dict(zip(g.inputs, g.input_ids))
        gradient = dict(zip(wrt, g.output_ids[1:]))
        shape = {x: g.shape(ids[x]) for x in wrt}
        # parts[x, y][k]: ∂(dJ/dy)/∂x[k], from the sweep seeded with the unit vector e_k.
        parts: dict[tuple[str, str], list[int | None]] = {(x, y): [] for x in wrt for y in wrt}
        for x in wrt:
            for k in np.ndindex(shape[x]):
                tangent = tangent_sweep(b, g, {ids[x]: b.const_id(one_hot(shape[x], k))})
                for y in wrt:
                    parts[x, y].append(tangent.get(gradient[y]))
        taken = set(g.inputs) | {out_name}
        outputs = [(out_name, g.output_ids[0])]
        if layout == "blocks":
            outputs += list(zip(g.outputs[1:], g.output_ids[1:]))
            taken |= set(g.outputs)
            for x in wrt:
                for y in wrt:
                    node = assemble(b, parts[x, y], shape[x], shape[y], lead=True)
                    outputs.append((_fresh(f"d2{out_name}_d{x}_d{y}", taken), node))
        else:
            vector = _joined(b, [_flat(b, gradient[y], shape[y]) for y in wrt])
            rows = [_joined(b, [_flat(b, parts[x, y][k], shape[y]) for y in wrt])
                    for x in wrt for k in range(math.prod(shape[x]))]
            outputs.append((_fresh(f"d{out_name}", taken), vector))
            outputs.append((_fresh(f"d2{out_name}", taken), b.apply_id("stack", tuple(rows),
                                                                       {"axis": 0})))
        result = b.finish(outputs, inputs=g.inputs,
                          meta={**_derivative_meta(g), "tangent_count": len(g),
                                "hessian_of": out_name, "wrt": tuple(wrt)})
    return simplify_circuit(result) if simplify else result


def _flat(b: Builder, node: int | None, shape: tuple[int, ...]) -> int:
    """The entries of ``node`` (zeros for None) as a vector of ``prod(shape)`` entries."""
    n = math.prod(shape)
    if node is None:
        return b.const_id(np.zeros(n))
    return node if len(shape) == 1 else b.apply_id("reshape", (node,), {"shape": (n,)})


def _joined(b: Builder, vectors: list[int]) -> int:
    return vectors[0] if len(vectors) == 1 else b.apply_id("concatenate", tuple(vectors),
                                                           {"axis": 0})
