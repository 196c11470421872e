"""The size bounds K of the derivative passes, measured from the primitive table on first use.

``grad(c).size <= SIZE_FACTOR * bound_size(c)`` for circuits without broadcasting,
``TENSOR_SIZE_FACTOR`` where elementwise ops broadcast (the proof: :mod:`.grad`'s docstring);
``jvp(c).size <= JVP_SIZE_FACTOR * c.size`` and ``hvp`` within ``HVP_SIZE_FACTOR``
(:mod:`.jvp`). Each K differentiates one sample node per op and shape case, so the constants
are computed when first read (module ``__getattr__``), not at ``import circuitgrad``.

    >>> from circuitgrad.transforms import bounds
    >>> bounds.SIZE_FACTOR, bounds.TENSOR_SIZE_FACTOR
    (9, 11)
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ..circuit import Circuit, LEAVES
from ..builder import Builder
from ..primitives import PRIMITIVES, Scatter, shape_cases
from .common import sample_node
from .sweeps import contributions, signs_out, tangent_sweep


def sign_cost(op: str, fused: bool = True) -> int:
    """The most ``neg`` nodes a carried sign may add at a node of ``op`` (see
    :func:`.grad.adjoint_sweep`): 1 where its rule does not pass the sign on (it builds ``-bar``
    first) or passes it to two arguments (two signs for one), else 0; ``fused`` as in
    :func:`.grad.grad`.

        >>> sign_cost("sin"), sign_cost("mul"), sign_cost("div")
        (0, 1, 0)
    """
    prim = PRIMITIVES[op]
    if op in LEAVES:
        return 0
    if prim.shape is not None:
        return 1  # a sign is built before every op that is not elementwise
    worst = 0
    for shapes in shape_cases(op):
        b, args, out = sample_node(op, shapes)
        b.input("bar", out.shape)
        c = b.finish([("f", out)], inputs=[f"a{k}" for k in range(len(args))] + ["bar"])
        extended = Builder(c)
        before, bar, need = len(extended.ops), c.input_ids[-1], [1] * len(args)
        made = contributions(extended, c, c.output_ids[0], bar, need, fused)
        signed = signs_out(extended, bar, before, made, need)
        worst = max(worst, 1 if signed is None or signed > 1 else 0)
    return worst


def rule_size(op: str, fused: bool = True) -> int:
    """The most nodes the adjoint rule of ``op`` emits for one node (all arguments active,
    operands of the largest broadcast-free shapes; add 1 per argument for ``sum_to``): the
    ``fused`` rule where the table has one and ``fused``, as :func:`.grad.grad` builds it.

        >>> rule_size("tanh"), rule_size("tanh", fused=False)
        (1, 3)
    """
    prim = PRIMITIVES[op]
    if op in ("sum_to", "broadcast_to"):
        return 1
    worst = 0
    for shapes in shape_cases(op):
        b, args, out = sample_node(op, shapes)
        bar = b.input("bar", out.shape)
        before = len(b.ops)
        params = b.params[out.id] or {}
        if fused and prim.fused is not None:
            contribs = prim.fused(bar, out, *args, **params)
        elif prim.vjp is not None:
            contribs = prim.vjp(bar, out, *args, **params)
        else:
            contribs = tuple(None if p is None else bar * p
                             for p in prim.partials(out, *args, **params))
        # A Scatter costs its share of one scatter_add: at most one node.
        scattered = sum(1 for x in contribs if type(x) is Scatter)
        live = {x.id for x in contribs if x is not None and type(x) is not Scatter}
        # Count the nodes the contributions actually use (dead intermediates are dropped).
        stack, seen = list(live), set()
        while stack:
            j = stack.pop()
            if j in seen or j < before or b.ops[j] in LEAVES:
                continue
            seen.add(j)
            stack.extend(b.args[j])
        worst = max(worst, len(seen) + scattered)
    return worst


def bound_size(c: Circuit) -> int:
    """The size the bound ``grad(c).size <= K * bound_size(c)`` is stated for: ``c.size``,
    with a node of k > 2 arguments counted as k - 1 nodes (concatenate, stack ...), and a
    linear-algebra node as the matrix operations it performs (its record's ``counts_as``: a
    solve as 3).

        >>> import circuitgrad as cg
        >>> bound_size(cg.parse("x*y + 1"))
        2
    """
    extra = 0
    for i in range(len(c)):
        k = len(c.args(i))
        if k > 2:
            extra += k - 2
        weight = PRIMITIVES[c.op(i)].counts_as
        if weight > 1:
            extra += weight - 1
    return c.size + extra


def tangent_rule_size(op: str) -> int:
    """The most nodes the tangent rule of ``op`` emits for one node, every argument with a
    tangent (operands of the same shape; a broadcast operand costs one ``broadcast_to`` more).

    >>> tangent_rule_size("mul"), tangent_rule_size("add")
    (3, 1)
    """
    if op in ("sum_to", "broadcast_to", "transpose"):
        return 1
    worst = 0
    for shapes in shape_cases(op):
        b, _, out = sample_node(op, shapes)
        c = b.finish([("f", out)], inputs=[f"a{k}" for k in range(len(shapes))])
        b = Builder(c)
        seeds = {i: b.input(f"t{k}", c.shape(i)).id for k, i in enumerate(c.input_ids)}
        t = tangent_sweep(b, c, seeds).get(c.output_ids[0])
        if t is not None:
            tc = b.finish([("f", c.output_ids[0]), ("t", t)], inputs=list(b.inputs))
            worst = max(worst, tc.size - c.size)
    return worst


@cache
def _size_factor(broadcasting: bool) -> int:
    rules = []
    for op, prim in PRIMITIVES.items():
        if op in LEAVES:
            continue
        # An elementwise op may need one sum_to per argument to undo broadcasting; another
        # op one broadcast_to view of its adjoint (a scalar adjoint of a sum, say).
        undo = (prim.arity if prim.shape is None else 1) if broadcasting else 0
        # The bound holds for both forms of the rules (grad's fused=True and False).
        cost = max(rule_size(op, fused) + sign_cost(op, fused)
                   for fused in (True, False)) + undo + 2
        # A node of k > 2 arguments counts as k - 1 nodes (bound_size): K of them pay for it.
        nodes = max(1, (len(prim.cases[0]) if prim.cases else prim.arity) - 1)
        rules.append(-(-cost // (nodes * prim.counts_as)))
    return max(rules)


@cache
def _jvp_size_factor() -> int:
    # The node itself, its rule, and a broadcast_to per operand beyond the first where an
    # elementwise op broadcasts (one for a binary op, two for clip and where).
    # A linear-algebra node counts as its matrix operations (``counts_as``), as in bound_size.
    return max(-(-(1 + tangent_rule_size(op) + (max(prim.arity - 1, 0) if prim.shape is None
                                                 else 0)) // prim.counts_as)
               for op, prim in PRIMITIVES.items() if op not in LEAVES)


_CONSTANTS = {
    # K in ``grad(c).size <= K * c.size`` for circuits without broadcasting (every scalar
    # circuit), derived from the primitive table (see grad's module docstring).
    "SIZE_FACTOR": lambda: _size_factor(False),
    # K for tensor circuits whose elementwise ops broadcast (one ``sum_to`` per operand).
    "TENSOR_SIZE_FACTOR": lambda: _size_factor(True),
    # K in ``jvp(c).size <= K * c.size``: the node itself plus its tangent rule.
    "JVP_SIZE_FACTOR": _jvp_size_factor,
    # K in ``hvp(c).size <= K * c.size``: a forward sweep over the adjoint circuit.
    "HVP_SIZE_FACTOR": lambda: _jvp_size_factor() * _size_factor(False),
}


def __getattr__(name: str) -> Any:
    if name in _CONSTANTS:
        value = _CONSTANTS[name]()
        globals()[name] = value  # (read once: later reads are plain attributes)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
