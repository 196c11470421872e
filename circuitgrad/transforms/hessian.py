"""Second derivatives as circuits: :func:`hvp` and :func:`hessian`, forward-over-reverse.

Second order is forward-over-reverse: :func:`hvp` is the forward sweep over the adjoint
circuit ``grad(c)``, seeded with the direction ``v``, so ``H·v`` costs
``O(c.size)`` (:data:`HVP_SIZE_FACTOR`); :func:`hessian` runs one such sweep per input entry,
seeded with a unit vector (a constant, so multiplications by 0 and 1 are never built), and
joins the sweeps' results with ``stack`` (:func:`assemble`, shared with
:func:`~circuitgrad.jacobian`).

    >>> import circuitgrad as cg
    >>> h = cg.hessian(cg.parse("J = x**2 * y"), layout="matrix")
    >>> cg.to_numpy(h)(x=3.0, y=2.0).d2J.tolist()
    [[4.0, 6.0], [6.0, 0.0]]
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..guards import refuse_cut_derivative
from ..circuit import Circuit, as_circuit, no_gc
from ..builder import Builder
from ..errors import CircuitError
from .common import assemble, derivative_meta, one_hot, pick_inputs, pick_output
from .common import fresh as _fresh
from .common import zero_node as _zero
from .grad import grad
from .simplify import simplify as simplify_circuit
from .sweeps import tangent_sweep


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
    refuse_cut_derivative(c, "hvp")
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
                          meta={**derivative_meta(g), "tangent_count": len(g),
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
    refuse_cut_derivative(c, "hessian")
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
                          meta={**derivative_meta(g), "tangent_count": len(g),
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
