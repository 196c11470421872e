"""The forward loops of a circuit made to keep their carries, for the adjoint pass.

The adjoint of a loop runs backwards over the body's adjoint, which needs the carry each step
was called with (:mod:`.loops`). :func:`saving_carries` sets ``save`` on every ``scan`` node,
in place, so its packed result grows by the stacked carries at its end (:func:`~circuitgrad.
primitives.loops.layout`: the final carries and the ys keep their offsets). A ``getitem``
reading the loop keeps its meaning (its index is absolute); every other reader, and an output,
is given one new ``getitem`` right after the loop, the unsaved result's prefix of the saved
one. So the forward loop runs **once**, for the value and for the adjoint alike; node ids after
a loop so read shift by one (and the meta that names nodes with them). :func:`circuitgrad.grad`
calls it first. (A loop left unsaved, by a pass that sweeps without it, still differentiates:
its rule builds a saving copy, which runs the loop a second time.)

    >>> import circuitgrad as cg
    >>> c = cg.trace(lambda x: cg.scan(lambda s, _: (s * x, None), 1.0, length=3)[0])
    >>> [c.params(i)["save"] for i in range(len(c)) if c.op(i) == "scan"]
    [False]
    >>> s = saving_carries(c)
    >>> [(s.params(i)["save"], s.shape(i)) for i in range(len(s)) if s.op(i) == "scan"]
    [(True, (4,))]

A loop read directly (here by ``sum``: one carry, no ys, so ``cg.scan``'s carry is the packed
result itself) is saved too, its reader given the prefix:

    >>> import numpy as np
    >>> d = cg.trace(lambda x: np.sum(cg.scan(lambda s, _: (s * 2.0, None), x, length=3)[0]),
    ...              shapes={"x": 2})
    >>> [d.op(i) for i in range(len(d))]
    ['input', 'scan', 'sum']
    >>> s = saving_carries(d)
    >>> [(s.op(i), s.shape(i)) for i in range(len(s))]
    [('input', (2,)), ('scan', (8,)), ('getitem', (2,)), ('sum', ())]
"""

from __future__ import annotations

from typing import Any

from ..circuit import Circuit
from ..errors import CircuitError
from ..primitives import shape_of
from ..primitives.loops import LOOPS


def saving_carries(c: Circuit, checkpoints: int | None = None) -> Circuit:
    """``c`` with ``save`` set on its loops (see the module docstring); ``c`` itself where
    there is none to change. With ``checkpoints``, a loop of more steps than that is marked
    instead (param ``checkpoints``, its shape unchanged): its adjoint loop will recompute the
    carries from at most that many stored ones."""
    if checkpoints is not None and (isinstance(checkpoints, bool) or not isinstance(
            checkpoints, int) or checkpoints < 1):
        raise CircuitError(f"grad: checkpoints must be an integer >= 1 (the carries a loop's "
                           f"adjoint may store), got {checkpoints!r}", argument="checkpoints")
    cols = c.columns
    loops = {i for i, op in enumerate(cols.ops) if op in LOOPS and not cols.params[i].get("save")
             and cols.params[i].get("recompute") is None}
    if not loops:
        return c
    marked = {i for i in loops if checkpoints is not None
              and cols.params[i]["length"] > checkpoints}
    saved = loops - marked
    # The saved loops read by anything but getitem (or an output): they get a prefix view.
    viewed = saved & set(c.output_ids)
    for op, args in zip(cols.ops, cols.args):
        if op != "getitem":
            viewed.update(a for a in args if a in saved)
    ops, args, params, shapes = list(cols.ops), list(cols.args), list(cols.params), \
        list(cols.shapes)
    for i in marked:
        params[i] = {**params[i], "checkpoints": checkpoints}
    for i in saved:
        params[i] = {**params[i], "save": True}
        # (its arguments keep their shapes: a loop that reads a loop reads its view)
        shapes[i] = shape_of(ops[i], tuple(cols.shapes[a] for a in args[i]), params[i])
    if not viewed:
        return Circuit(ops, args, params, shapes, dict(cols.names),
                       list(zip(c.inputs, c.input_ids)), list(zip(c.outputs, c.output_ids)),
                       dict(c.meta))
    return _with_views(c, ops, args, params, shapes, viewed)


def _with_views(c: Circuit, ops: list, args: list, params: list, shapes: list,
                viewed: set[int]) -> Circuit:
    """The circuit of columns ``ops ... shapes`` (``c``'s, its loops saved) with a ``getitem``
    of the old packed result right after each loop in ``viewed``, read by the loop's readers
    other than getitem and by the outputs; ids renumbered, the meta's node ids with them."""
    old = c.columns
    new_id: list[int] = []      # old id -> its new id
    view_id: dict[int, int] = {}  # a viewed loop's old id -> its view's new id
    out_ops, out_args, out_params, out_shapes = [], [], [], []
    names: dict[int, str] = {}
    for i, op in enumerate(ops):
        if op == "getitem":
            node_args = tuple(new_id[a] for a in args[i])
        else:
            node_args = tuple(view_id.get(a, new_id[a]) for a in args[i])
        new_id.append(len(out_ops))
        out_ops.append(op)
        out_args.append(node_args)
        out_params.append(params[i])
        out_shapes.append(shapes[i])
        name = old.names.get(i)
        if i in viewed:
            size = old.shapes[i][0]
            view_id[i] = len(out_ops)
            out_ops.append("getitem")
            out_args.append((new_id[i],))
            out_params.append({"index": ((0, size, 1),)})
            out_shapes.append(old.shapes[i])
            if name is not None:  # (the name is the value's: the view's)
                names[view_id[i]] = name
        elif name is not None:
            names[new_id[i]] = name
    inputs = [(n, new_id[i]) for n, i in zip(c.inputs, c.input_ids)]
    outputs = [(n, view_id.get(i, new_id[i])) for n, i in zip(c.outputs, c.output_ids)]
    return Circuit(out_ops, out_args, out_params, out_shapes, names, inputs, outputs,
                   _renumbered_meta(c, new_id, view_id, len(out_ops)))


def _renumbered_meta(c: Circuit, new_id: list[int], view_id: dict[int, int],
                     size: int) -> dict[str, Any]:
    """``c.meta`` with its node ids (and node counts) renumbered by ``new_id``; a view takes
    its loop's line."""
    meta = dict(c.meta)
    for key in ("forward_count", "tangent_count"):
        count = meta.get(key)
        if isinstance(count, int):  # (the new id of the first node at or past the count)
            meta[key] = size if count >= len(new_id) else new_id[count]
    if isinstance(meta.get("adjoint_of"), dict):
        meta["adjoint_of"] = {new_id[a]: new_id[f] for a, f in meta["adjoint_of"].items()}
    if meta.get("delta_of") is not None:
        meta["delta_of"] = tuple(new_id[i] for i in meta["delta_of"])
    lines = meta.get("lines")
    if isinstance(lines, dict):
        meta["lines"] = {new_id[i]: line for i, line in lines.items()}
        meta["lines"].update({v: lines[i] for i, v in view_id.items() if i in lines})
    elif lines is not None and len(lines) == len(new_id):
        out: list[Any] = []
        for i, line in enumerate(lines):
            out.append(line)
            if i in view_id:
                out.append(line)
        meta["lines"] = tuple(out)
    return meta
