"""Every node's adjoint as a circuit: δ = ∂J/∂v for each node v of a circuit with one output.

The adjoint pass (:func:`~circuitgrad.grad`) gives the adjoints of the inputs. To get a node's
δ, the node ``v`` is given a perturbation input ``e`` (``v + e``), so that ``∂J/∂e = ∂J/∂v``;
one adjoint pass then gives every node's δ, with the same rules that build the gradient, and
the perturbations are set to zero (constants) in the result. Diagrams read this circuit to
show each node's δ beside its value, like the value/grad boxes of small autograd demos.

    >>> import circuitgrad as cg
    >>> d = node_adjoints(cg.parse("z = w*x\\nJ = z*z"))
    >>> d.inputs, d.meta["delta_of"]
    (('w', 'x'), (0, 1, 2, 3))
"""

from __future__ import annotations

import numpy as np

from ..circuit import Circuit, as_circuit, no_gc
from ..builder import Builder
from ..errors import CircuitError
from ..guards import refuse_cut_derivative
from .grad import grad


def node_adjoints(c: Circuit) -> Circuit:
    """The circuit computing the output J and the adjoint δ = ∂J/∂v of every node v of ``c``.

    Args:
        c: a circuit with one scalar output.

    Returns:
        A circuit with the inputs of ``c`` and outputs ``J`` then one δ per input and
        operation node; ``meta["delta_of"]`` lists, in output order, the node of ``c`` each δ
        belongs to (constants have none).

    Raises:
        CircuitError: a circuit without exactly one scalar output.

    >>> import circuitgrad as cg
    >>> d = node_adjoints(cg.parse("J = sin(x)"))
    >>> [float(v) for v in cg.to_numpy(d)(x=0.0)]
    [0.0, 1.0, 1.0]
    """
    c = as_circuit(c, "node_adjoints")
    if len(c.outputs) != 1 or c.shape(c.output_ids[0]) != ():
        raise CircuitError("node adjoints need a circuit with one scalar output")
    refuse_cut_derivative(c, "node_adjoints")  # (the rebuilt circuit drops the guards)
    with no_gc():
        b = Builder()
        new = [0] * len(c)
        perturbations: list[tuple[int, str]] = []
        for i, op, args, params, shape in c.records():
            if op == "input":
                new[i] = b.input(params, shape).id
            elif op == "const":
                new[i] = b.const_id(params)
            else:
                v = b.apply_id(op, tuple(new[a] for a in args), params)
                name = f"\0e{i}"  # no parsed or traced input can have this name
                new[i] = b.apply_id("add", (v, b.input(name, shape).id))
                perturbations.append((i, name))
        wrt = list(c.inputs) + [name for _, name in perturbations]
        g = grad(b.finish([("J", new[c.output_ids[0]])], inputs=wrt), wrt=wrt)
        # The perturbations are zero: rebuild with constants in their place.
        zero = {name for _, name in perturbations}
        z = Builder()
        ids = [0] * len(g)
        for i, op, args, params, shape in g.records():
            if op == "input":
                ids[i] = (z.const_id(np.zeros(shape) if shape else 0.0) if params in zero
                          else z.input(params, shape).id)
            elif op == "const":
                ids[i] = z.const_id(params)
            else:
                ids[i] = z.apply_id(op, tuple(ids[a] for a in args), params)
        nodes = list(c.input_ids) + [i for i, _ in perturbations]
        outputs = [("J", ids[g.output_ids[0]])]
        outputs += [(f"delta_{i}", ids[j]) for i, j in zip(nodes, g.output_ids[1:])]
        meta = {"delta_of": tuple(nodes)}
        if c.meta.get("guards") is not None:  # (a branch: its adjoints hold where it does)
            meta["guards"] = c.meta["guards"]
        return z.finish(outputs, inputs=c.inputs, meta=meta)
