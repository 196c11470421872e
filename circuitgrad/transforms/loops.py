"""The derivative rules of loops: the adjoint of a loop is a loop over the body's adjoint, and
its tangent a loop over the body's tangent, each body built once by the passes themselves.

Reverse mode. A ``scan`` node with ``save`` keeps the carry ``c_t`` each step ``t`` was called
with (:mod:`.loop_carries` sets it before :func:`~circuitgrad.grad` sweeps). Its adjoint rule
splits the packed adjoint ``bar`` into the final carries' adjoints ``c̄_T``, the stacked ys'
``ȳ_t`` (and the saved carries' own ``s̄_t``, nonzero only in higher derivatives), and builds
one reverse ``scan`` whose body is the body's vector-Jacobian product: from ``c̄_{t+1}``,
``c_t``, ``x_t``, ``ȳ_t`` it gives ``c̄_t = ∂(c_{t+1}, y_t)/∂c_t ᵀ (c̄_{t+1}, ȳ_t) + s̄_t``,
``x̄_t`` (stacked) and adds the closures' adjoints into accumulators it carries. That body is
:func:`.grad.adjoint_sweep` on the body circuit seeded at its outputs, built once per body
(:func:`adjoint_body`), so a gradient's circuit is the size of the forward body plus its
adjoint, whatever the trip count.

Forward mode. The tangent rule builds one ``scan`` over :func:`~circuitgrad.jvp` of the body
(:func:`tangent_body`), carrying each carry leaf with its tangent, and reads the tangents of
the packed result out of it (one ``concatenate`` of at most three slices).

Sizes: :func:`loop_size` counts a circuit's nodes with each distinct body counted once (and
the bodies inside bodies), the size a loop's derivative bounds are stated for.

    >>> import circuitgrad as cg
    >>> c = cg.trace(lambda x: cg.scan(lambda s, _: (cg.sin(s) * x, None), 0.5, length=4)[0])
    >>> g = cg.grad(c)
    >>> [g.op(i) for i in range(len(g)) if g.op(i) == "scan"]
    ['scan', 'scan']
    >>> got = cg.to_numpy(g)(1.5)
    >>> s = 0.5
    >>> for _ in range(4): s = np.sin(s) * 1.5
    >>> bool(got[0] == s)
    True
"""

from __future__ import annotations


from typing import NamedTuple

import numpy as np

from ..builder import Builder
from ..circuit import Circuit
from ..errors import CircuitError
from ..primitives import PRIMITIVES
from ..primitives.loops import LOOPS, RULES, Body, layout, leaf, remember
from ..value import Value
from .common import active_nodes, fit_shape, fresh, zero_node
from .grad import adjoint_sweep
from .jvp import jvp
from .loop_carries import saving_carries
from .simplify import simplify

_ADJOINT_BODIES: dict[tuple[str, bool, tuple[int, ...] | None], Adjoint] = {}  # (bounded: primitives.loops.remember)
_TANGENT_BODIES: dict[str, Body] = {}


class Adjoint(NamedTuple):
    """A loop's adjoint body, and which of the loop's xs and closures have an adjoint (the
    others' is zero: no y, no accumulator)."""

    body: Body
    xs: tuple[int, ...]
    closures: tuple[int, ...]


def adjoint_body(body: Body, adjoint_of_saved: bool,
                 live_ys: tuple[int, ...] | None = None) -> Adjoint:
    """The body of a loop's adjoint loop (see the module docstring), built once per body.

    Its carries: the carries' adjoints, then an accumulator per closure that has an adjoint;
    its sequences: the saved carries ``c_t``, the xs, the adjoints of the ys in ``live_ys``
    (default: all; the others' is zero), and, where ``adjoint_of_saved``, the saved
    carries' adjoints; its closures: the body's; its ys: the adjoints of the xs that have one.
    """
    live_ys = tuple(range(body.ys)) if live_ys is None else tuple(live_ys)
    key = (body.digest, adjoint_of_saved, live_ys)
    hit = _ADJOINT_BODIES.get(key)
    if hit is not None:
        return hit
    c = saving_carries(body.circuit)  # (loops inside the body keep their carries too)
    k, m, r = body.carries, body.xs, body.closures
    carry_shapes, x_shapes, closure_shapes, y_shapes = body.shapes()
    b = Builder(c)
    taken = set(c.inputs)

    def new(name: str, shape: tuple[int, ...]) -> int:
        return b.input(fresh(name, taken), shape).id

    carry_bar = [new(f"{c.inputs[j]}_bar", s) for j, s in enumerate(carry_shapes)]
    y_bar = [new(f"{c.outputs[k + j]}_bar", y_shapes[j]) for j in live_ys]
    saved_bar = [new(f"{c.inputs[j]}_saved_bar", s) for j, s in enumerate(carry_shapes)
                 ] if adjoint_of_saved else []
    seeds: dict[int, int] = {}
    for out, bar in zip(list(c.output_ids[:k]) + [c.output_ids[k + j] for j in live_ys],
                        carry_bar + y_bar):
        seeds[out] = b.apply_id("add", (seeds[out], bar)) if out in seeds else bar
    bars, _ = adjoint_sweep(b, c, seeds, active_nodes(c, c.inputs))
    live_xs = tuple(j for j in range(m) if c.input_ids[k + j] in bars)
    live_closures = tuple(j for j in range(r) if c.input_ids[k + m + j] in bars)
    sums = [new(f"{c.inputs[k + m + j]}_bar_sum", closure_shapes[j]) for j in live_closures]

    def adjoint(j: int) -> int:
        i = c.input_ids[j]
        node = bars.get(i)
        return zero_node(b, c.shape(i)) if node is None else fit_shape(b, node, c.shape(i),
                                                                       exact=True)

    new_carry = [adjoint(j) for j in range(k)]
    if adjoint_of_saved:
        new_carry = [b.apply_id("add", (a, s)) for a, s in zip(new_carry, saved_bar)]
    new_sums = [b.apply_id("add", (s, adjoint(k + m + j))) for j, s in zip(live_closures, sums)]
    x_bars = [adjoint(k + j) for j in live_xs]
    names = {i: n for n, i in b.inputs.items()}
    order = ([names[i] for i in carry_bar + sums] + list(c.inputs[:k + m])
             + [names[i] for i in y_bar + saved_bar] + list(c.inputs[k + m:]))
    outputs = [(f"c{j}", v) for j, v in enumerate(new_carry + new_sums)]
    outputs += [(f"y{j}", v) for j, v in enumerate(x_bars)]
    inner = Body(simplify(b.finish(outputs, inputs=order)), carries=k + len(sums),
                 xs=k + m + len(y_bar) + len(saved_bar))
    return remember(_ADJOINT_BODIES, key, Adjoint(inner, live_xs, live_closures))


def _contributions(b: Builder, rev: Value, adjoint: Adjoint, k: int, m: int, r: int,
                   length: int) -> tuple:
    """The adjoints of a loop's arguments read out of its adjoint loop's packed result: the
    initial carries', the xs' and the closures' (None where zero)."""
    got = [leaf(b, rev, *p) for p in layout(adjoint.body, length, False)]
    sums, xs = got[k:k + len(adjoint.closures)], got[k + len(adjoint.closures):]
    x_bars: list = [None] * m
    for j, v in zip(adjoint.xs, xs):
        x_bars[j] = v
    closure_bars: list = [None] * r
    for j, v in zip(adjoint.closures, sums):
        closure_bars[j] = v
    return tuple(got[:k] + x_bars + closure_bars)


def _refuse_checkpointed(recompute: Body | None, what: str) -> None:
    if recompute is not None:
        raise CircuitError(f"scan: the {what} of a checkpointed adjoint loop is not built (a "
                           "gradient taken with checkpoints=); for higher derivatives take "
                           "grad without checkpoints")


def scan_vjp(bar: Value, out: Value, *args: Value, body: Body, length: int,
             reverse: bool = False, save: bool = False, recompute: Body | None = None,
             checkpoints: int | None = None) -> tuple:
    """The contributions of a ``scan`` node: one reverse ``scan`` over :func:`adjoint_body`
    (with ``checkpoints``, one that recomputes the carries from that many)."""
    _refuse_checkpointed(recompute, "adjoint")
    b = bar.builder
    k, m, r, q = body.carries, body.xs, body.closures, body.ys
    if checkpoints is not None and not save:
        return _checkpointed_vjp(bar, args, body, length, reverse, checkpoints)
    packed = out if save else b.apply("scan", *args, body=body, length=length,
                                      reverse=reverse, save=True)
    places = layout(body, length, True)
    saved = [leaf(b, packed, *places[k + q + j]) for j in range(k)]
    bars = _bar_leaves(b, bar, places[:k + q + (k if save else 0)])
    live_ys = tuple(j for j in range(q) if bars[k + j] is not None)
    of_saved = any(v is not None for v in bars[k + q:])
    bars = _zeros_for_none(b, bars[:k], places) + [bars[k + j] for j in live_ys] + (
        _zeros_for_none(b, bars[k + q:], places[k + q:]) if of_saved else [])
    adjoint = adjoint_body(body, of_saved, live_ys)
    sums = _zero_sums(b, body, adjoint)
    rev = b.apply("scan", *bars[:k], *sums, *saved, *args[k:k + m], *bars[k:], *args[k + m:],
                  body=adjoint.body, length=length, reverse=not reverse, save=False)
    return _contributions(b, rev, adjoint, k, m, r, length)


def _bar_leaves(b: Builder, bar: Value, places: list) -> list:
    """The adjoint of each leaf (``places``: its offset and shape) of a loop's packed result,
    whose adjoint is ``bar``; None where it is zero. Where ``bar`` is the ``scatter_add`` the
    sweep gathers the reads of parts into (``getitem``), a leaf no read touches is zero and a
    leaf one read takes whole has that read's adjoint: the saved carries' adjoints, zero but
    for higher derivatives, and those of ys no one reads are not built (nor the packed
    array of zeros around the others)."""
    node = bar.id
    if b.ops[node] != "scatter_add":
        return [leaf(b, bar, *p) for p in places]
    reads = list(zip(b.args[node], b.params[node]["indices"]))
    got: list = []
    for offset, shape in places:
        size = int(np.prod(shape))
        whole = (offset,) if not shape else ((offset, offset + size, 1),)
        touching = [(v, ix) for v, ix in reads if _touches(ix, offset, offset + size)]
        if not touching:
            got.append(None)
        elif len(touching) == 1 and touching[0][1] == whole:
            v = Value(b, touching[0][0])
            got.append(v if len(shape) <= 1 else b.apply("reshape", v, shape=shape))
        else:
            got.append(leaf(b, bar, offset, shape))
    return got


def _touches(index: tuple, lo: int, hi: int) -> bool:
    """Whether a ``getitem`` index into a vector may read an entry in ``[lo, hi)`` (True
    where its form is not one of a vector's: the caller then reads the leaf out of the sum)."""
    entries = [e for e in index if e is not None]
    if len(entries) != 1:
        return True
    e = entries[0]
    if isinstance(e, int) and not isinstance(e, bool):
        first, last = e, e
    elif isinstance(e, tuple) and len(e) == 3 and isinstance(e[0], int) and isinstance(e[2], int):
        start, stop, step = e
        if step > 0 and isinstance(stop, int):
            if stop <= start:
                return False
            first, last = start, stop - 1
        elif step < 0:
            first, last = (0 if stop is None else stop + 1), start
        else:
            return True
    else:
        return True
    return first < hi and last >= lo


def _zeros_for_none(b: Builder, bars: list, places: list) -> list:
    return [Value(b, zero_node(b, places[j][1])) if v is None else v for j, v in enumerate(bars)]


def _zero_sums(b: Builder, body: Body, adjoint: Adjoint) -> list:
    """The accumulators' start: zeros, for the closures that have an adjoint."""
    shapes = body.shapes()[2]
    return [b.const(np.zeros(shapes[j]) if shapes[j] else 0.0) for j in adjoint.closures]


def _checkpointed_vjp(bar: Value, args: tuple, body: Body, length: int, reverse: bool,
                      checkpoints: int) -> tuple:
    """One reverse ``scan`` over :func:`adjoint_body` that recomputes each carry from the
    initial one and at most ``checkpoints`` stored ones (the binomial schedule)."""
    b = bar.builder
    k, m, r, q = body.carries, body.xs, body.closures, body.ys
    places = layout(body, length, False)
    bars = _bar_leaves(b, bar, places)
    live_ys = tuple(j for j in range(q) if bars[k + j] is not None)
    bars = _zeros_for_none(b, bars[:k], places) + [bars[k + j] for j in live_ys]
    adjoint = adjoint_body(body, False, live_ys)
    sums = _zero_sums(b, body, adjoint)
    rev = b.apply("scan", *bars[:k], *sums, *args[:k], *args[k:k + m], *bars[k:],
                  *args[k + m:], body=adjoint.body, length=length, reverse=not reverse,
                  save=False, recompute=body, checkpoints=checkpoints)
    return _contributions(b, rev, adjoint, k, m, r, length)


def tangent_body(body: Body) -> Body:
    """The body of a loop's tangent loop, built once per body: :func:`~circuitgrad.jvp` of the
    body with its inputs ordered as a body's (each carry, x and closure leaf followed by the
    group's tangents) and its outputs (the new carries, their tangents, the ys, theirs)."""
    hit = _TANGENT_BODIES.get(body.digest)
    if hit is not None:
        return hit
    c = body.circuit
    k, m, n = body.carries, body.xs, len(c.inputs)
    taken = set(c.inputs) | set(c.outputs)
    j = jvp(c, tangents={x: fresh(f"{x}_dot", taken) for x in c.inputs})
    ins, outs = list(zip(j.inputs, j.input_ids)), list(zip(j.outputs, j.output_ids))
    groups = [(0, k), (k, k + m), (k + m, n)]
    order = [p for lo, hi in groups for p in ins[lo:hi] + ins[n + lo:n + hi]]
    no, kk = len(c.outputs), k
    results = outs[:kk] + outs[no:no + kk] + outs[kk:no] + outs[no + kk:]
    cols = j.columns
    tc = Circuit(list(cols.ops), list(cols.args), list(cols.params), list(cols.shapes),
                 dict(cols.names), order, results)
    return remember(_TANGENT_BODIES, body.digest, Body(tc, carries=2 * k, xs=2 * m))


def scan_jvp(tangents: tuple, out: Value, *args: Value, body: Body, length: int,
             reverse: bool = False, save: bool = False, recompute: Body | None = None,
             checkpoints: int | None = None) -> Value:
    """The tangent of a ``scan`` node's packed result: one ``scan`` over
    :func:`tangent_body` (the primal recomputed beside the tangents)."""
    _refuse_checkpointed(recompute, "tangent")
    b = out.builder
    k, m, q = body.carries, body.xs, body.ys
    ts = [Value(b, zero_node(b, a.shape)) if t is None else t for t, a in zip(tangents, args)]
    groups = [(0, k), (k, k + m), (k + m, len(args))]
    joined = [v for lo, hi in groups for v in list(args[lo:hi]) + ts[lo:hi]]
    inner = tangent_body(body)
    both = b.apply("scan", *joined, body=inner, length=length, reverse=reverse, save=save)
    places = layout(inner, length, save)
    ranges = [(k, 2 * k), (2 * k + q, 2 * k + 2 * q)] + ([(3 * k + 2 * q, 4 * k + 2 * q)]
                                                        if save else [])
    parts = []
    for lo, hi in ranges:
        if lo < hi:
            start = places[lo][0]
            stop = places[hi - 1][0] + int(np.prod(places[hi - 1][1]))
            if stop > start:
                parts.append(b.apply("getitem", both, index=((start, stop, 1),)))
    if not parts:
        return b.const(np.zeros(out.shape))
    return parts[0] if len(parts) == 1 else b.apply("concatenate", *parts, axis=0)


def loop_size(c: Circuit) -> int:
    """``c.size`` plus the size of every distinct loop body in it, each counted once (and
    the bodies inside bodies): the size of a circuit with loops, whatever their trip counts.

        >>> import circuitgrad as cg
        >>> c = cg.trace(lambda x: cg.scan(lambda s, _: (s * x + 1.0, None), x, length=9)[0])
        >>> c.size, loop_size(c)
        (2, 4)
    """
    total, seen, todo = c.size, set(), [c]
    while todo:
        cols = todo.pop().columns
        for op, params in zip(cols.ops, cols.params):
            if op in LOOPS and params["body"].digest not in seen:
                body = params["body"]
                seen.add(body.digest)
                total += body.size
                todo.append(body.circuit)
    return total


def _example() -> None:
    """The record's sample params (a one-node body ``s → 2s``, 3 steps), for the measurements
    and tests that build one node of every record."""
    b = Builder()
    s = b.input("s")
    PRIMITIVES["scan"].example.update(body=Body(b.finish([("s", s * 2.0)]), carries=1, xs=0),
                                      length=3)


RULES.update(vjp=scan_vjp, jvp=scan_jvp)
_example()

__all__ = ["Adjoint", "adjoint_body", "leaf", "loop_size", "scan_jvp", "scan_vjp", "tangent_body"]
