"""The forward loops of a circuit made to keep their carries, for the adjoint pass.

The adjoint of a loop runs backwards over the body's adjoint, which needs the carry each step
was called with (:mod:`.loops`). :func:`saving_carries` sets ``save`` on every ``scan`` node
whose result is only read through ``getitem`` (as :func:`circuitgrad.scan` reads it), so its
packed result grows by the stacked carries at its end and every read keeps its meaning; node
ids, shapes of the other nodes and the meta are unchanged. :func:`circuitgrad.grad` calls it
first, so the forward part of a gradient runs each loop once. (A loop left unsaved still
differentiates: its rule builds a saving copy, which runs the loop a second time.)

    >>> import circuitgrad as cg
    >>> c = cg.trace(lambda x: cg.scan(lambda s, _: (s * x, None), 1.0, length=3)[0])
    >>> [c.params(i)["save"] for i in range(len(c)) if c.op(i) == "scan"]
    [False]
    >>> s = saving_carries(c)
    >>> [(s.params(i)["save"], s.shape(i)) for i in range(len(s)) if s.op(i) == "scan"]
    [(True, (4,))]
"""

from __future__ import annotations

from ..circuit import Circuit
from ..errors import CircuitError
from ..primitives import shape_of
from ..primitives.loops import LOOPS


def saving_carries(c: Circuit, checkpoints: int | None = None) -> Circuit:
    """``c`` with ``save`` set on its loops read only through ``getitem`` (see the module
    docstring); ``c`` itself where there is none to change. With ``checkpoints``, a loop of
    more steps than that is marked instead (param ``checkpoints``): its adjoint loop will
    recompute the carries from at most that many stored ones."""
    if checkpoints is not None and (isinstance(checkpoints, bool) or not isinstance(
            checkpoints, int) or checkpoints < 1):
        raise CircuitError(f"grad: checkpoints must be an integer >= 1 (the carries a loop's "
                           f"adjoint may store), got {checkpoints!r}", argument="checkpoints")
    cols = c.columns
    loops = {i for i, op in enumerate(cols.ops) if op in LOOPS and not cols.params[i].get("save")
             and cols.params[i].get("recompute") is None}
    if not loops:
        return c
    # Marking a loop for checkpoints keeps its shape, so every loop may be marked; saving
    # grows its packed result, so only a loop read through getitem alone may be saved.
    marked = {i for i in loops if checkpoints is not None
              and cols.params[i]["length"] > checkpoints}
    loops -= marked | set(c.output_ids)
    for i, op, args in zip(range(len(c)), cols.ops, cols.args):
        if op != "getitem":
            loops -= set(args)
    if not loops and not marked:
        return c
    params, shapes = list(cols.params), list(cols.shapes)
    for i in marked:
        params[i] = {**params[i], "checkpoints": checkpoints}
    for i in loops:
        params[i] = {**params[i], "save": True}
        shapes[i] = shape_of(cols.ops[i], tuple(shapes[a] for a in cols.args[i]), params[i])
    return Circuit(list(cols.ops), list(cols.args), params, shapes, dict(cols.names),
                   list(zip(c.inputs, c.input_ids)), list(zip(c.outputs, c.output_ids)),
                   dict(c.meta))
