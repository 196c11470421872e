"""The per-node steps of the two sweeps, below the passes that run them.

:func:`tangent_sweep` is the forward sweep (:mod:`.jvp`); :func:`contributions` is one node's
step of the reverse sweep (``bar · ∂node/∂argᵢ`` from the primitive table), and
:func:`signs_out` says whether a sign carried on ``bar`` passes through those contributions
(:mod:`.grad`). The size bounds (:mod:`.bounds`) measure both on one-node circuits.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..circuit import Circuit, LEAVES
from ..builder import Builder
from ..value import Value
from ..primitives import PRIMITIVES, Scatter
from ..primitives.signs import passes_signs, scaled


def tangent_sweep(b: Builder, c: Circuit, seeds: dict[int, int]) -> dict[int, int]:
    """The tangent node of every node of ``c`` that depends on a seeded node.

    Args:
        b: a builder extending ``c`` (``Builder(c)``: the same node ids), where tangents are
            built.
        c: the circuit.
        seeds: the tangent of some nodes (usually inputs), as nodes of ``b``.

    Returns:
        ``{node of c: its tangent node in b}``; a node missing has tangent zero.

    >>> import circuitgrad as cg
    >>> c = cg.parse("f = x*x")
    >>> b = Builder(c)
    >>> t = tangent_sweep(b, c, {c.input_ids[0]: b.const_id(1.0)})
    >>> b.ops[t[c.output_ids[0]]], b.args[t[c.output_ids[0]]] == (c.input_ids[0],) * 2
    ('add', True)
    """
    tangent = dict(seeds)
    cols = c.columns
    ops, all_args, all_params, shapes, names = cols
    for i in range(min(seeds, default=len(c)), len(c)):
        op = ops[i]
        if op in LEAVES:
            continue
        args = all_args[i]
        ts = [tangent.get(a) for a in args]
        if all(t is None for t in ts):
            continue
        prim = PRIMITIVES[op]
        params = all_params[i] or {}
        values = [Value(b, a) for a in args]
        if prim.partials is None:
            result = prim.jvp(tuple(None if t is None else Value(b, t) for t in ts),
                              Value(b, i), *values, **params)
            total = None if result is None else result.id
        else:
            total = None
            for t, p in zip(ts, prim.partials(Value(b, i), *values, **params)):
                if t is None or p is None:
                    continue
                term = _times(b, t, p)
                total = term if total is None else b.apply_id("add", (total, term))
        if total is None:
            continue
        if b.shapes[total] != shapes[i]:
            # An argument broadcast by the node: its tangent is broadcast too.
            total = b.apply_id("broadcast_to", (total,), {"shape": shapes[i]})
        tangent[i] = total
        name = names.get(i)
        if name and total >= len(c):
            b.name(total, f"{name}_dot")
    return tangent


def _times(b: Builder, t: int, p: Any) -> int:
    """``t · p`` for a partial ``p`` that is a node or a number (1 and -1 cost nothing)."""
    if isinstance(p, Value):
        return b.apply_id("mul", (t, p.id))
    if p == 1.0:
        return t
    if p == -1.0:
        return b.apply_id("neg", (t,))
    return b.apply_id("mul", (t, b.const_id(float(p))))


def contributions(b: Builder, c: Circuit, i: int, bar: int, need: list[int],
                   fused: bool = True) -> list:
    """``bar · ∂node/∂argᵢ`` for each argument of node ``i``, as node ids (None: no
    contribution; a :class:`Scatter` for a read of a part). With ``fused``, an op's
    ``fused`` rule is built where the table has one (one node for ``bar * f′(x)``).

    Arguments that are not ``need``-ed get no multiplication; a ``vjp`` rule builds all its
    contributions, and those not needed are dropped when the circuit is finished. ``add``
    and ``mul`` without broadcasting (most nodes) take a short path that builds what their
    rules build.
    """
    cols = c.columns
    op, args = cols.ops[i], cols.args[i]
    if op == "add" or op == "mul":
        # (A neg operand takes the long path: scaled moves its sign out of the product.)
        shape, ops = cols.shapes[i], cols.ops
        if b.shapes[bar] == shape and all(b.shapes[a] == shape and ops[a] != "neg"
                                          for a in args):
            if op == "add":
                return [bar, bar]
            return [b.apply_id("mul", (bar, args[1])) if need[0] else None,
                    b.apply_id("mul", (bar, args[0])) if need[1] else None]
    prim = PRIMITIVES[op]
    params = cols.params[i] or {}
    arg_values = [Value(b, a) for a in args]
    out, bar_v = Value(b, i), Value(b, bar)
    made = None
    if fused and prim.fused is not None:
        if b.ops[bar] == "const" and not b.shapes[bar] and b.params[bar] == 1.0:
            # bar = 1 (the output's own node): 1·p is p, so the textbook rule is the
            # derivative alone; it is kept where that is one node (step(x), not 1.0·step(x)).
            before = len(b.ops)
            made = unfused(prim, bar_v, out, arg_values, params, need)
            if len(b.ops) - before > 1:
                made = None  # (its nodes are dead)
        if made is None:
            made = prim.fused(bar_v, out, *arg_values, **params)
    else:
        made = unfused(prim, bar_v, out, arg_values, params, need)
    return [x if x is None or type(x) is Scatter else x.id for x in made]


def unfused(prim: Any, bar: Value, out: Value, args: list[Value], params: dict,
             need: Sequence[int]) -> tuple:
    """The contributions of the table's ``vjp``, else ``bar * partial``."""
    if prim.vjp is not None:
        return prim.vjp(bar, out, *args, **params)
    return tuple(None if p is None or not ok else scaled(bar, p)
                 for p, ok in zip(prim.partials(out, *args, **params), need))


def signs_out(b: Builder, bar: int, before: int, contributions: Sequence,
               need: Sequence[int]) -> int | None:
    """How many contributions made from ``bar`` carry the sign on when the adjoint is
    ``-bar`` (at most two: one sign in, two out, is one ``neg`` more at worst); None where
    the sign cannot pass. It passes where every contribution is ``bar`` times or over other
    values (the nodes made since ``before`` only multiply, divide or negate ``bar``): those
    of ``-bar`` are then theirs negated, bit for bit. A contribution that is a new ``neg``
    drops its sign instead."""
    through = {bar}
    ops, args = b.ops, b.args
    for j in range(before, len(ops)):
        ids = args[j]
        uses = [a in through for a in ids]
        if not any(uses):
            continue
        if not passes_signs(ops[j], uses):
            return None  # (-u)·p = -(u·p), (-u)/p = -(u/p), f(-bar, x) = -f(bar, x)
        through.add(j)
    signed = 0
    for x, ok in zip(contributions, need):
        if x is None or not ok:
            continue
        if type(x) is Scatter or x not in through:
            return None
        if not (x >= before and ops[x] == "neg"):
            signed += 1
    return signed if signed <= 2 else None
