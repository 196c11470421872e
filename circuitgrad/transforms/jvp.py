"""Forward mode as a circuit: :func:`jvp` (second order, hvp and hessian: :mod:`.hessian`).

Forward mode is the notes' forward sweep with one more number per node: walk the nodes in
ascending id (a topological order) and give each node a *tangent* ``v_dot``, the derivative of
``v`` along the input direction ``t``. A node's tangent is ``Σᵢ argᵢ_dot · ∂out/∂argᵢ``, with
the same local partials the adjoint pass uses (the table's ``partials``: ``None`` and the
numbers 1 and -1 cost no multiplication), or the table's ``jvp`` rule for the tensor-linear
ops (matmul, sum, transpose ...). Nodes that depend on no seeded input get no tangent, so
nothing is built for them. The sweep emits a constant number of nodes per node, so
``jvp(c).size <= JVP_SIZE_FACTOR * c.size`` (:func:`tangent_rule_size`, from the table).

Second order (:func:`hvp`, :func:`hessian`) is forward-over-reverse: :mod:`.hessian`.

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

from typing import Any

from ..guards import refuse_cut_derivative
from ..circuit import Circuit, as_circuit, no_gc
from ..builder import Builder
from ..errors import CircuitError
from .common import assemble, derivative_meta, one_hot, pick_names
from .common import fresh as _fresh
from .common import zero_node as _zero
from .hessian import hessian, hvp
from .simplify import simplify as simplify_circuit
from .sweeps import tangent_sweep

# hvp, hessian (from .hessian), assemble, one_hot (.common), tangent_sweep (.sweeps): their
# old import path.
__all__ = ["assemble", "hessian", "hvp", "jvp", "one_hot", "tangent_sweep"]

# Old import paths: the size bounds live in .bounds and are computed on first use.
_BOUNDS = ("JVP_SIZE_FACTOR", "HVP_SIZE_FACTOR", "tangent_rule_size")


def __getattr__(name: str) -> Any:
    if name in _BOUNDS:
        from . import bounds

        return getattr(bounds, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    refuse_cut_derivative(c, "jvp")
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
        meta = {**derivative_meta(c), "tangent_count": len(c), "wrt": tuple(tangents),
                "tangent_inputs": tuple(tangents.values())}
        result = b.finish(outputs, inputs=list(c.inputs) + list(tangents.values()), meta=meta)
    return simplify_circuit(result) if simplify else result
