"""Loops in traced functions: :func:`scan` and :func:`fori_loop`, JAX's signatures, whose body
is traced once into a circuit of its own and held by one ``scan`` node
(:mod:`circuitgrad.primitives.loops`).

The body is called once, on placeholders for the carry and for one slice of ``xs``. What it
computes from them is the body circuit; every value from outside the loop that it uses (a
traced value it closes over, or one it computes from such values only) is a *closure*: an
argument of the ``scan`` node, computed once, outside the loop. Constants stay in the body.
The carry is any container of arrays (tuples, lists, dicts, named tuples: the pytrees of
:mod:`.pytree`), of fixed structure and shapes: a body that changes either is refused.

    >>> import circuitgrad as cg
    >>> def cumulative(x):
    ...     total, partial_sums = cg.scan(lambda s, xi: (s + xi, s + xi), 0.0, xs=x)
    ...     return total, partial_sums
    >>> c = cg.trace(cumulative, shapes={"x": (4,)})
    >>> [o.tolist() for o in cg.to_numpy(c)(np.array([1.0, 2.0, 3.0, 4.0]))]
    [10.0, [1.0, 3.0, 6.0, 10.0]]
    >>> float(cg.scan(lambda s, _: (s * 2.0, None), 1.0, length=10)[0])  # numbers: evaluated
    1024.0
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..builder import Builder
from ..errors import CircuitError, ShapeError
from ..primitives.loops import Body, layout, leaf
from ..value import Value
from . import pytree
from .trace import TRACING


def _builder_of(leaves: list[Any]) -> tuple[Builder, bool]:
    """The builder the loop is built in (the traced values' or the trace's), and whether it
    is a fresh one for a loop on numbers only (evaluated at once)."""
    found = {id(v.builder): v.builder for v in leaves if isinstance(v, Value)}
    if len(found) > 1:
        raise CircuitError("scan: the carry and xs hold values of different circuits")
    if found:
        return next(iter(found.values())), False
    tracing = TRACING.get()
    return (tracing, False) if tracing is not None else (Builder(), True)


def _node(b: Builder, what: str, v: Any) -> int:
    if isinstance(v, Value):
        if v.builder is not b:
            raise CircuitError(f"scan: {what} is a value of another circuit")
        return v.id
    if v is None or isinstance(v, (str, bool)) or (isinstance(v, np.ndarray)
                                                   and v.dtype == object):
        raise CircuitError(f"scan: {what} is {type(v).__name__} {v!r}, not a number, array "
                           "or traced value")
    return b.const_id(np.asarray(v, dtype=np.float64) if np.ndim(v) else float(v))


def scan(body: Callable[[Any, Any], tuple[Any, Any]], init: Any, xs: Any = None,
         length: int | None = None, reverse: bool = False) -> tuple[Any, Any]:
    """``lax.scan``: ``carry = init``; for each slice ``x`` of ``xs`` (leading axis),
    ``carry, y = body(carry, x)``; return the final carry and the ys stacked.

    Args:
        body: ``body(carry, x) -> (carry, y)``; ``y`` may be None (no ys). Traced once.
        init: the first carry: a number, array or traced value, or a container of them.
        xs: the sequences, each with a leading axis of ``length`` (a container of them, or
            None: ``body`` gets ``x = None``).
        length: the trip count (needed without ``xs``; else their leading axis).
        reverse: run the steps from the last to the first (the ys keep their places).

    Returns:
        ``(final carry, ys)``: traced values in a traced function; numbers otherwise.

    Raises:
        CircuitError: a body that returns no pair, or a carry of another structure.
        ShapeError: a carry that changes shape, sequences of different lengths.

    >>> import circuitgrad as cg
    >>> c = cg.trace(lambda a: cg.scan(lambda s, _: (s * a, None), 1.0, length=5)[0])
    >>> float(cg.to_numpy(c)(2.0)), c.size
    (32.0, 2)
    """
    carry_leaves, carry_tree = pytree.flatten(init, "carry")
    x_leaves, x_tree = pytree.flatten(xs, "x") if xs is not None else ([], None)
    b, evaluate = _builder_of([v for _, v in carry_leaves + x_leaves])
    init_ids = [_node(b, f"the initial carry {n!r}", v) for n, v in carry_leaves]
    x_ids = [_node(b, f"the sequence {n!r}", v) for n, v in x_leaves]
    lengths = {b.shapes[i][0] if b.shapes[i] else None for i in x_ids}
    if None in lengths:
        raise ShapeError("scan: a sequence of xs is a scalar; each needs a leading axis")
    if length is not None:
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
            raise CircuitError(f"scan: length must be an integer >= 0, got {length!r}")
        lengths.add(int(length))
    if len(lengths) != 1:
        raise ShapeError(f"scan: the sequences and length disagree on the trip count: "
                         f"{sorted(lengths) if lengths else 'no xs and no length'}")
    steps = lengths.pop()
    if not init_ids and not x_ids:
        raise CircuitError("scan: a loop needs a carry or xs")
    # The body, traced once on placeholders in the same builder (so that it may use any value
    # of the trace: a closure), then copied into a circuit of its own.
    start = len(b.ops)
    tag = f"%scan{start}"
    holders = [b.input(f"{tag}.{n}", b.shapes[i]) for (n, _), i in zip(carry_leaves, init_ids)]
    x_holders = [b.input(f"{tag}.{n}", b.shapes[i][1:]) for (n, _), i in zip(x_leaves, x_ids)]
    try:
        result = body(pytree.unflatten(carry_tree, holders),
                      None if xs is None else pytree.unflatten(x_tree, x_holders))
    finally:
        for v in holders + x_holders:
            del b.inputs[b.params[v.id]]
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise CircuitError(f"scan: the body must return a pair (carry, y), got "
                           f"{type(result).__name__}")
    new_leaves, new_tree = pytree.flatten(result[0], "carry")
    if new_tree != carry_tree:
        raise CircuitError(f"scan: the body returns a carry of another structure than init "
                           f"({[n for n, _ in new_leaves]} for {[n for n, _ in carry_leaves]})")
    y_leaves, y_tree = pytree.flatten(result[1], "y") if result[1] is not None else ([], None)
    outs = [_node(b, f"the new carry {n!r}", v) for n, v in new_leaves]
    for (n, _), i, o in zip(carry_leaves, init_ids, outs):
        if b.shapes[o] != b.shapes[i]:
            raise ShapeError(f"scan: the carry {n!r} has shape {b.shapes[i]} at the start but "
                             f"{b.shapes[o]} after a step (a carry keeps its shape; broadcast "
                             "the initial value to the shape it takes)")
    outs += [_node(b, f"the output {n!r}", v) for n, v in y_leaves]
    inputs = [v.id for v in holders + x_holders]
    circuit, closures = _body_circuit(b, start, inputs, outs,
                                      [n for n, _ in carry_leaves + x_leaves])
    loop = Body(circuit, carries=len(init_ids), xs=len(x_ids))
    packed = Value(b, b.apply_id("scan", tuple(init_ids + x_ids + closures),
                                 {"body": loop, "length": steps, "reverse": bool(reverse),
                                  "save": False}))
    places = layout(loop, steps, save=False)
    got = [leaf(b, packed, *p) for p in places]
    if evaluate:
        got = [np.float64(b.params[v.id]) if not v.shape else np.array(b.params[v.id])
               for v in got]
    k = len(init_ids)
    final = pytree.unflatten(carry_tree, got[:k])
    return final, (None if y_tree is None else pytree.unflatten(y_tree, got[k:]))


def _body_circuit(b: Builder, start: int, inputs: list[int], outs: list[int],
                  names: list[str]) -> tuple[Any, list[int]]:
    """The nodes of ``b`` from ``start`` on that depend on the placeholders ``inputs`` and
    reach ``outs``, as a circuit whose inputs are the placeholders then the closures (the
    other values they read, by id), and the closures."""
    ops, args, params, shapes = b.ops, b.args, b.params, b.shapes
    holder = set(inputs)
    varies = bytearray(len(ops) - start)  # depends on a placeholder
    for i in range(start, len(ops)):
        varies[i - start] = i in holder or any(a >= start and varies[a - start] for a in args[i])
    needed, closures, todo = set(), set(), list(outs)
    while todo:
        i = todo.pop()
        if i in needed or i in closures:
            continue
        if i >= start and varies[i - start]:
            needed.add(i)
            if i not in holder:
                todo.extend(args[i])
        elif ops[i] == "const":
            needed.add(i)
        else:
            closures.add(i)
    order = sorted(closures)
    inner = Builder()
    new: dict[int, int] = {}
    for i, n in zip(inputs, names):
        new[i] = inner.input(n, shapes[i]).id
    for j, i in enumerate(order):
        new[i] = inner.input(f"closure.{j}", shapes[i]).id
    for i in sorted(needed - holder):
        if ops[i] == "const":
            new[i] = inner.const_id(params[i])
        else:
            new[i] = inner.apply_id(ops[i], tuple(new[a] for a in args[i]), params[i])
    circuit = inner.finish([(f"out.{j}", new[o]) for j, o in enumerate(outs)],
                           inputs=list(inner.inputs))
    return circuit, order


def fori_loop(lower: int, upper: int, body: Callable[[Any, Any], Any], init: Any) -> Any:
    """``lax.fori_loop``: ``carry = init``; for ``i`` from ``lower`` to ``upper - 1``,
    ``carry = body(i, carry)``; return the carry. ``i`` is a traced number (the loop is one
    ``scan`` over the constants ``lower … upper - 1``), so ``body`` may compute with it but not
    branch on it or index with it.

    >>> import circuitgrad as cg
    >>> c = cg.trace(lambda x: cg.fori_loop(0, 4, lambda i, s: s * x + i, 0.0))
    >>> float(cg.to_numpy(c)(2.0))  # ((0·2 + 0)·2 + 1)·2 + 2)·2 + 3
    11.0
    """
    for name, v in (("lower", lower), ("upper", upper)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise CircuitError(f"fori_loop: {name} must be a Python integer (the trip count is "
                               f"part of the circuit), got {type(v).__name__} {v!r}")
    if upper <= lower:
        return init
    steps = step_numbers(int(lower), int(upper), "fori_loop")
    return scan(lambda carry, i: (body(i, carry), None), init, xs=steps)[0]


def step_numbers(lower: int, upper: int, what: str) -> np.ndarray:
    """The steps' numbers ``lower … upper - 1`` (the sequence a counted loop scans over), or
    a CircuitError naming the trip count where they do not fit in memory.

    >>> step_numbers(2, 5, "fori_loop")
    array([2., 3., 4.])
    """
    try:
        return np.arange(lower, upper, dtype=np.float64)
    except MemoryError:
        raise CircuitError(f"{what}: {upper - lower} steps are too many: the loop scans over "
                           "their numbers, an array of that length, which does not fit in "
                           "memory") from None


__all__ = ["fori_loop", "scan"]
