"""Helpers every derivative pass shares: picking inputs and outputs by name, the active
nodes, fitting a contribution to a shape, seeds and the assembly of sweeps' results, and the
one-node circuits the size bounds are measured on. The floor below grad, jvp, jacobian and
sparsity: it imports none of them.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..circuit import Circuit
from ..builder import Builder
from ..value import Value
from ..errors import CircuitError
from ..primitives import PRIMITIVES


def pick_output(c: Circuit, output: str | None) -> tuple[str, int]:
    """The (name, node) of the output to differentiate; an error lists the choices.

    Without ``output``: the only output; or, for an adjoint circuit whose outputs are the
    value ``J`` and ONE gradient ``dJ_dx`` (``grad(c, wrt="x")``), the gradient, so that
    ``grad(grad(c))`` differentiates ``dJ_dx`` again. Any other circuit with several outputs
    is an error listing them.

        >>> import circuitgrad as cg
        >>> pick_output(cg.grad(cg.parse("J = x**3")), None)[0]
        'dJ_dx'
    """
    if output is None:
        if (len(c.outputs) == 2 and c.meta.get("gradient_of") == c.outputs[0]
                and len(c.meta.get("wrt", ())) == 1):
            return c.outputs[1], c.output_ids[1]
        if len(c.outputs) != 1:
            raise CircuitError(f"output: the circuit has {len(c.outputs)} outputs "
                               f"{list(c.outputs)}: say which one to differentiate",
                               argument="output")
        return c.outputs[0], c.output_ids[0]
    if output not in c.outputs:
        raise CircuitError(f"output names {output!r}, which is not an output; outputs are "
                           f"{list(c.outputs)}", argument="output")
    return output, c.output_ids[c.outputs.index(output)]


def pick_names(given: str | Sequence[str] | None, available: Sequence[str], argument: str,
               kind: str) -> list[str]:
    """The names ``given`` for ``argument`` (default: all ``available``), each one of them
    and none twice; ``kind`` is what they are ("input", "output") for the error."""
    if given is None:
        return list(available)
    names = [given] if isinstance(given, str) else list(given)
    known = set(available)  # (node_adjoints asks for 10^5 names: a tuple's `in` is quadratic)
    for name in names:
        if name not in known:
            raise CircuitError(f"{argument} names {name!r}, which is not an {kind}; {kind}s "
                               f"are {list(available)}", argument=argument)
    if len(set(names)) != len(names):
        raise CircuitError(f"{argument} names an {kind} twice: {names}", argument=argument)
    return names


def pick_inputs(c: Circuit, wrt: str | Sequence[str] | None) -> list[str]:
    """The input names to differentiate with respect to (default: all inputs)."""
    return pick_names(wrt, c.inputs, "wrt", "input")


def pick_outputs(c: Circuit, outputs: str | Sequence[str] | None) -> list[str]:
    """The output names to differentiate (default: all outputs)."""
    return pick_names(outputs, c.outputs, "outputs", "output")


def active_nodes(c: Circuit, wrt: Sequence[str]) -> bytearray:
    """Flags the nodes that depend on an input in ``wrt`` (only they carry derivatives)."""
    active = bytearray(len(c))
    ids = dict(zip(c.inputs, c.input_ids))
    for name in wrt:
        active[ids[name]] = 1
    for i in range(len(c)):
        if not active[i] and any(active[a] for a in c.args(i)):
            active[i] = 1
    return active


def fit_shape(b: Builder, value: int, shape: tuple[int, ...], exact: bool = False) -> int:
    """Sum a contribution with a broadcast shape back down to ``shape``.

    A smaller contribution (a scalar adjoint of a ``sum``, say) stands for its broadcast to
    ``shape`` and is kept as it is, unless ``exact``: then it becomes a ``broadcast_to`` view.
    """
    have = b.shapes[value]
    if have == shape:
        return value
    if tuple(np.broadcast_shapes(have, shape)) == shape:
        return b.apply_id("broadcast_to", (value,), {"shape": shape}) if exact else value
    return b.apply_id("sum_to", (value,), {"shape": shape, "ndim": len(have)})


def sample_node(op: str, shapes: tuple) -> tuple[Builder, list[Value], Value]:
    """A builder holding one ``op`` node on fresh inputs ``a0, a1 ...`` of ``shapes`` (with
    the record's ``example`` params): what the rule-size measurements of the adjoint and
    tangent passes differentiate."""
    b = Builder()
    args = [b.input(f"a{k}", s) for k, s in enumerate(shapes)]
    return b, args, b.apply(op, *args, **PRIMITIVES[op].example)


def one_hot(shape: tuple[int, ...], k: tuple[int, ...]) -> Any:
    """The constant ``e_k`` of ``shape`` that seeds a sweep (the number 1 for a scalar).

    >>> one_hot((3,), (1,)).tolist(), one_hot((), ())
    ([0.0, 1.0, 0.0], 1.0)
    """
    if not shape:
        return 1.0
    e = np.zeros(shape)
    e[k] = 1.0
    return e


def assemble(b: Builder, parts: Sequence[int | None], index_shape: tuple[int, ...],
             part_shape: tuple[int, ...], lead: bool) -> int:
    """The array whose entry ``k`` (``k`` over ``index_shape``, in ``np.ndindex`` order) is
    the node ``parts[k]`` of shape ``part_shape`` (``None``: zeros): of shape
    ``index_shape + part_shape`` if ``lead``, else ``part_shape + index_shape``. One ``stack``
    and at most one ``reshape``.

        >>> b = Builder()
        >>> x, y = b.input("x", (2,)), b.input("y", (2,))
        >>> b.shapes[assemble(b, [x.id, y.id, None], (3,), (2,), lead=False)]
        (2, 3)
    """
    full = index_shape + part_shape if lead else part_shape + index_shape
    if all(p is None for p in parts):
        return zero_node(b, full)
    zero = zero_node(b, part_shape) if any(p is None for p in parts) else None
    nodes = tuple(zero if p is None else p for p in parts)
    if not index_shape:
        return nodes[0]
    node = b.apply_id("stack", nodes, {"axis": 0 if lead else len(part_shape)})
    if len(index_shape) > 1:
        node = b.apply_id("reshape", (node,), {"shape": full})
    return node


def zero_node(b: Builder, shape: tuple[int, ...]) -> int:
    return b.const_id(np.zeros(shape) if shape else 0.0)


def fresh(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def derivative_meta(c: Circuit) -> dict[str, Any]:
    # An adjoint circuit's forward part and adjoint nodes stay labelled for the lowerings.
    return {k: c.meta[k] for k in ("forward_count", "adjoint_of") if k in c.meta}
