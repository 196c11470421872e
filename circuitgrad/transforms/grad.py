"""The adjoint pass: ∇f as a second circuit of size O(N), built in one reverse sweep.

This is the notes' theorem made executable. Walk the nodes from the output back to the
inputs; each node's adjoint ``v_bar = ∂J/∂v`` (the notes' δ) is complete when the walk reaches
it, because every use of ``v`` has a larger id. The node's rule from the primitive table turns
``v_bar`` into one contribution per argument, and contributions to the same argument are
summed (fan-out: the chain rule's Σⱼ ∂J/∂gⱼ · ∂gⱼ/∂θᵢ). The forward nodes are shared, not
recomputed; the builder drops ``* 1`` and ``+ 0`` and merges common subexpressions.

Signs are carried, not built: a contribution ``-(q)`` (``a - b``, ``cos′ = -sin``, ``a/b``)
is kept as ``q`` with a flag and summed by a subtraction, and a flagged adjoint passes its sign
on through a rule that only multiplies or divides ``bar`` (``(-u)·p = -(u·p)``, exact in IEEE
arithmetic), or into a constant (``-(c·u) = (-c)·u``); a ``neg`` is built only where a sign
reaches an input, a rule that is not linear in ``bar`` (``where``), or an op that is not
elementwise. So the sweep builds the forms the exact rules of :mod:`.simplify` would make, and
``grad(simplify=True)`` rebuilds the circuit only where a rule still matches.

Size bound. Let R be the most nodes any rule of the primitive table emits for one node
(:func:`rule_size`, measured from the table, plus the ``sum_to`` that undoes broadcasting),
and S its sign cost (:func:`sign_cost`): a carried sign costs no node where it is absorbed,
and one ``neg`` at most where it stops; it stops once per sign, and a node that passes one
sign to two arguments makes one sign more (S = 1), as does a node that stops it (S = 1).
Contributions cost at most (R + S)·N nodes; summing them costs one ``add`` per use beyond the
first, and since every operation except the output is used and the first operation uses a
leaf, that is at most N adds. So ``g.size <= (R + S + 2) * c.size``, with R + S the largest
over the table: :data:`SIZE_FACTOR` (9: R = 7 for ``atan2``, accurate at 1e200 and 1e-300,
which passes its sign to one argument). Broadcasting adds one ``sum_to`` per operand:
:data:`TENSOR_SIZE_FACTOR` (11).

Fused nodes (the default, ``fused=True``): a rule ``bar · f′(x)`` of an elementwise op is one
node of :mod:`circuitgrad.primitives.fused` (``tanh_vjp(bar, y)``), and a fan-out sum that adds a
fresh product ``u·v`` is one ``add_mul(old, u, v)`` (or ``sub_mul``, ``mul_sub``): each replaces
nodes the bound counts, computing the same numbers, so the bound holds for both forms (K is the
largest over the fused and the textbook rules).

Reads of parts of a node (``x[i]``, ``x[1:]``: ``getitem``) contribute a Scatter; all of a
node's reads add into one ``scatter_add``, so each read costs at most one node (its share of
that node, counted in its rule size) and no dense array of its own: a loop over the n entries
of a vector has an adjoint of O(n) nodes that evaluates in O(n). A node with a variable
number of arguments (``concatenate``, ``stack``) counts as ``k - 1`` nodes for k arguments
(the binary nodes it stands for; :func:`bound_size`), since its rule costs per argument.

    >>> import circuitgrad as cg
    >>> g = cg.grad(cg.parse("J = w*x + b"))
    >>> g.outputs
    ('J', 'dJ_dw', 'dJ_dx', 'dJ_db')
    >>> [float(v) for v in cg.to_numpy(g)(w=2.0, x=3.0, b=1.0)]
    [7.0, 3.0, 2.0, 1.0]
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..circuit import LEAVES, Builder, Circuit, Value, as_circuit, no_gc
from ..errors import CircuitError
from ..primitives import PRIMITIVES, Scatter, shape_cases
from ..primitives.core import scaled
from ..primitives.fused import FUSED_VJPS
from .simplify import first_rewrite
from .simplify import simplify as simplify_circuit


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


def grad(c: Circuit, wrt: str | Sequence[str] | None = None,
         output: str | None = None, simplify: bool = True, fused: bool = True) -> Circuit:
    """The adjoint circuit: the value of the output, then its gradient per ``wrt`` input.

    Args:
        c: a circuit with a scalar output.
        wrt: input names (default: all inputs, in order).
        output: which output, when the circuit has several (default: the only one; for an
            adjoint circuit of one input, its gradient: :func:`pick_output`).
        simplify: simplify the result with :func:`~circuitgrad.simplify` (exact rules only;
            the sweep already builds their forms, so the circuit is rebuilt only where a rule
            still matches).
        fused: build the contribution ``bar · f′(x)`` of an elementwise op as one fused node
            where the table has one (``tanh_vjp(bar, y)`` for ``bar * (1 - y²)``, ``relu_vjp``,
            ``sin_vjp`` ...: :mod:`~circuitgrad.primitives.fused`), bit for bit the same numbers
            in fewer nodes, and sum a fresh product into an adjoint with one ``add_mul``
            (``old + u·v``, same roundings) where the chain rule's fan-out adds it;
            ``False`` builds the textbook form, ``δ = g ⊙ relu′(z)`` with ``relu′(z)`` a node
            of its own and one ``add`` per extra use (for diagrams that teach the rule).

    Returns:
        A circuit with outputs ``J, dJ_dw1, dJ_db ...`` (``J`` the output's name); it shares
        the forward nodes, and each gradient has its input's shape (an exact zero for an input
        the output does not depend on).

    Raises:
        CircuitError: an unknown ``wrt`` name or output, a non-scalar output.

    >>> import circuitgrad as cg
    >>> g = cg.grad(cg.parse("x**2"))
    >>> float(cg.to_numpy(g)(x=-3.0)[1])
    -6.0
    """
    c = as_circuit(c, "grad")
    with no_gc():
        # The forward part first (a third of the nodes). Where no rule matches in it, none
        # matches it in the adjoint circuit either (it only gains uses).
        forward_done = not simplify or first_rewrite(c) is None
        if not forward_done:
            c = simplify_circuit(c)
        g = _grad(c, wrt, output, fused)
        return _simplified(g, g.meta["forward_count"] if forward_done else 0) if simplify \
            else g


def _simplified(g: Circuit, start: int) -> Circuit:
    """``simplify(g)`` for an adjoint circuit, without rebuilding it where no exact rule
    matches: the sweep builds the forms the rules would make (signs carried into
    subtractions), and the builder has merged and folded every node, so the rebuild would
    give the same nodes back; only the meta is settled the way the rewrite settles it.
    Nodes before ``start`` are known not to match."""
    if first_rewrite(g, start=start) is not None:
        return simplify_circuit(g)
    ops, n = g._ops, len(g._ops)
    old_end = end = g.meta["forward_count"]
    while end < n and ops[end] in LEAVES:
        end += 1  # (the rewrite's boundary: the first derivative node)
    meta = dict(g.meta, forward_count=end,
                adjoint_of={a: f for a, f in g.meta["adjoint_of"].items() if a >= end > f})
    # Derivative names stay off leaves and forward nodes, as the rewrite carries them.
    names = {i: s for i, s in g._names.items()
             if ops[i] not in LEAVES and not (i >= old_end and i < end)}
    return Circuit(g._ops, g._args, g._params, g._shapes, names,
                   list(zip(g.inputs, g.input_ids)), list(zip(g.outputs, g.output_ids)), meta)


def _grad(c: Circuit, wrt: str | Sequence[str] | None, output: str | None,
          fused: bool = True) -> Circuit:
    out_name, out_id = pick_output(c, output)
    if c.shape(out_id) != ():
        raise CircuitError(f"grad needs a scalar output; {out_name!r} has shape "
                           f"{c.shape(out_id)} (sum or mean it first)")
    wrt = pick_inputs(c, wrt)
    active = active_nodes(c, wrt)
    b = Builder(c)
    seeds = {out_id: b.const_id(1.0)} if active[out_id] else {}
    adjoint, adjoint_of = adjoint_sweep(b, c, seeds, active, {out_id: out_name}, fused=fused)
    outputs: list[tuple[str, int]] = [(out_name, out_id)]
    taken = set(c.inputs) | {out_name}
    ids = dict(zip(c.inputs, c.input_ids))
    for name in wrt:
        node = adjoint.get(ids[name])
        shape = c.shape(ids[name])
        if node is None:
            node = b.const_id(np.zeros(shape) if shape else 0.0)
        else:
            node = fit_shape(b, node, shape, exact=True)
        if node >= len(c) and b.ops[node] not in LEAVES:
            adjoint_of.setdefault(node, ids[name])
            b.name(node, f"{name}_bar")
        gname = f"d{out_name}_d{name}"
        while gname in taken:
            gname += "_"
        taken.add(gname)
        outputs.append((gname, node))
    return b.finish(outputs, inputs=c.inputs,
                    meta={"forward_count": len(c), "adjoint_of": adjoint_of,
                          "gradient_of": out_name, "wrt": tuple(wrt)})


def adjoint_sweep(b: Builder, c: Circuit, seeds: dict[int, int], active: bytearray,
                  labels: dict[int, str] | None = None,
                  fused: bool = True) -> tuple[dict[int, int], dict[int, int]]:
    """The reverse sweep: the adjoint of every input of ``c`` that ``seeds`` reach.

    Args:
        b: a builder extending ``c`` (``Builder(c)``: the same node ids), where adjoints are
            built.
        c: the circuit.
        seeds: the adjoint of some nodes (usually an output: the constant 1, or a one-hot
            array for one entry of a tensor output), as nodes of ``b``.
        active: the nodes that carry derivatives (:func:`active_nodes`).
        labels: names for the adjoints of unnamed nodes (``{output id: "J"}`` gives
            ``J_bar``).
        fused: build the table's ``fused`` rules where an op has one (see :func:`grad`).

    Returns:
        ``({input node: its adjoint node in b}, adjoint_of)``: a missing input has adjoint
        zero; ``adjoint_of`` maps adjoint nodes to the nodes they are the adjoint of.

    Signs are carried, not built (see the module docstring): a contribution ``-(q)`` is
    kept as ``q`` with a flag, and a ``neg`` is built only where a sign stops.

    >>> import circuitgrad as cg
    >>> c = cg.parse("f = x*y")
    >>> b = Builder(c)
    >>> bars, _ = adjoint_sweep(b, c, {c.output_ids[0]: b.const_id(1.0)},
    ...                         active_nodes(c, c.inputs))
    >>> [bars[i] for i in c.input_ids] == [c.input_ids[1], c.input_ids[0]]
    True
    """
    adjoint: dict[int, int] = dict(seeds)
    negated: set[int] = set()  # nodes whose adjoint is -(adjoint[i])
    adjoint_of: dict[int, int] = {}
    labels = labels or {}
    n, names, shapes, ops, bops = len(c), c._names, c._shapes, c._ops, b.ops
    apply_id = b.apply_id
    # Reads of parts of a node (x[i], x[1:]) add into one scatter_add per node, made when the
    # sweep reaches the node: (value, index) pairs until then.
    scattered: dict[int, list[tuple[int, tuple]]] = {}
    # Products u·v built as a node's first contribution to an argument and kept as its adjoint
    # so far: the next contribution may absorb them into one accumulation node (fused).
    products: set[int] = set()

    def negative(q: int) -> int:
        # -(c·u) = (-c)·u and -(u/c) = u/(-c) exactly: the sign goes into the constant.
        if q >= n and bops[q] in ("mul", "div"):
            u, v = b.args[q]
            if bops[v] == "const" and not b.shapes[v] and b.shapes[u] == b.shapes[q]:
                return apply_id(bops[q], (u, b.const_id(-b.params[v])))
            if bops[q] == "mul" and bops[u] == "const" and not b.shapes[u] and (
                    b.shapes[v] == b.shapes[q]):
                return apply_id("mul", (b.const_id(-b.params[u]), v))
        elif q >= n and bops[q] in FUSED_VJPS:
            # A fused contribution is linear in its first argument: f(-c, x) = -f(c, x).
            u, v = b.args[q]
            if bops[u] == "const" and not b.shapes[u] and b.shapes[v] == b.shapes[q]:
                return apply_id(bops[q], (b.const_id(-b.params[u]), v))
        return apply_id("neg", (q,))

    def materialized(i: int) -> int | None:
        bar = adjoint.get(i)
        if bar is not None and i in negated:
            negated.discard(i)
            bar = adjoint[i] = negative(bar)
        return bar

    def gathered(i: int) -> int | None:
        parts = scattered.pop(i, None)
        if parts is None:
            return adjoint.get(i)
        into = apply_id("scatter_add", tuple(v for v, _ in parts),
                        {"shape": shapes[i], "indices": tuple(ix for _, ix in parts)})
        dense = materialized(i)
        adjoint[i] = into if dense is None else apply_id("add", (dense, into))
        return adjoint[i]

    for i in range(max(seeds, default=-1), -1, -1):
        bar = gathered(i) if i in scattered else adjoint.get(i)  # (no call on the hot path)
        if bar is None or ops[i] in LEAVES:
            continue
        del adjoint[i]
        products.discard(bar)  # (now read as an adjoint: no longer a product to absorb)
        flip = i in negated
        prim = PRIMITIVES[ops[i]]
        elementwise = prim.shape is None
        if flip:
            negated.discard(i)
            if not elementwise or b.shapes[bar] != shapes[i]:
                bar, flip = negative(bar), False
            elif bar >= n and (bops[bar] in ("mul", "div") and any(
                    bops[a] == "const" for a in b.args[bar]) or bops[bar] in FUSED_VJPS
                    and bops[b.args[bar][0]] == "const"):
                bar, flip = negative(bar), False  # a constant takes the sign for free
        if b.shapes[bar] != shapes[i] and not elementwise:
            bar = fit_shape(b, bar, shapes[i], exact=True)  # matmul & co. need the full shape
        args = c._args[i]
        need = [active[a] for a in args]
        before = len(bops)
        if ops[i] == "sub" and b.shapes[bar] == shapes[args[0]] == shapes[args[1]]:
            contributions, signs = [bar, bar], (flip, not flip)  # a - b: bar and -bar
        else:
            contributions = _contributions(b, c, i, bar, need, fused)
            if flip and _signs_out(b, bar, before, contributions, need) is None:
                bar, flip = negative(bar), False  # (the first try's nodes are dead)
                contributions = _contributions(b, c, i, bar, need, fused)
            signs = (flip,) * len(args)
        if bar >= n and not flip:  # (a flagged bar is the adjoint negated: not named)
            adjoint_of.setdefault(bar, i)
            name = names.get(i) or labels.get(i)
            if name:
                b.name(bar, f"{name}_bar")
        for a, ok, cid, sign in zip(args, need, contributions, signs):
            if cid is None or not ok:
                continue
            if type(cid) is Scatter:
                scattered.setdefault(a, []).append((cid.bar.id, cid.index))
                continue
            if cid >= before and bops[cid] == "neg":
                cid, sign = b.args[cid][0], not sign  # -(q): carry q and the sign
            # (A sign passes through sum_to and broadcast_to: a sum of negated terms, in the
            # same order, is the sum negated.)
            if elementwise and shapes[a] != shapes[i]:
                # The argument was broadcast: its adjoint sums the node's over the copies.
                cid = fit_shape(b, fit_shape(b, cid, shapes[i], exact=True), shapes[a])
            elif b.shapes[cid] != shapes[a]:
                cid = fit_shape(b, cid, shapes[a])
            old = adjoint.get(a)
            if old is None:
                adjoint[a] = cid
                if sign:
                    negated.add(a)
                if fused and cid >= before and bops[cid] == "mul":
                    products.add(cid)
                continue
            if fused and old != cid and (cid >= before and bops[cid] == "mul" or old in products):
                # A fresh product u·v summed with the adjoint: one accumulation node with
                # the same two roundings (add_mul & co., primitives/fused.py); the product
                # is then dead. Either the new contribution or the adjoint so far may be it.
                if cid >= before and bops[cid] == "mul":
                    prod, acc, first = cid, old, False
                else:
                    prod, acc, first = old, cid, True
                u, v = b.args[prod]
                shape = b.shapes[prod]
                if b.shapes[acc] == shape == b.shapes[u] == b.shapes[v]:
                    products.discard(old)
                    if (a in negated) == sign:  # old + cid (a sum: either order, exactly)
                        adjoint[a] = apply_id("add_mul", (acc, u, v))
                    elif sign:  # old - cid
                        adjoint[a] = apply_id("mul_sub" if first else "sub_mul", (acc, u, v))
                    else:  # cid - old
                        adjoint[a] = apply_id("sub_mul" if first else "mul_sub", (acc, u, v))
                        negated.discard(a)
                    continue
            if (a in negated) == sign:
                adjoint[a] = apply_id("add", (old, cid))  # (-p) + (-q) = -(p + q) exactly
            elif sign:
                adjoint[a] = apply_id("sub", (old, cid))
            else:
                adjoint[a] = apply_id("sub", (cid, old))
                negated.discard(a)
    for i in list(negated):
        materialized(i)
    return adjoint, adjoint_of


# Ops through which a negated bar passes as a sign: (-u)·p = -(u·p), (-u)/p = -(u/p); and
# the fused contributions, through their first argument (FUSED_VJPS).
_SIGN_THROUGH = frozenset({"mul", "div", "neg"})


def _signs_out(b: Builder, bar: int, before: int, contributions: Sequence,
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
        if sum(uses) != 1:
            return None
        if ops[j] in FUSED_VJPS:
            if not uses[0]:  # linear in its first argument only
                return None
        elif ops[j] not in _SIGN_THROUGH or (ops[j] == "div" and uses[1]):
            return None
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


def sign_cost(op: str, fused: bool = True) -> int:
    """The most ``neg`` nodes a carried sign may add at a node of ``op`` (see
    :func:`adjoint_sweep`): 1 where its rule does not pass the sign on (it builds ``-bar``
    first) or passes it to two arguments (two signs for one), else 0; ``fused`` as in
    :func:`grad`.

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
        made = _contributions(extended, c, c.output_ids[0], bar, need, fused)
        signed = _signs_out(extended, bar, before, made, need)
        worst = max(worst, 1 if signed is None or signed > 1 else 0)
    return worst


def _contributions(b: Builder, c: Circuit, i: int, bar: int, need: list[int],
                   fused: bool = True) -> list:
    """``bar · ∂node/∂argᵢ`` for each argument of node ``i``, as node ids (None: no
    contribution; a :class:`Scatter` for a read of a part). With ``fused``, an op's
    ``fused`` rule is built where the table has one (one node for ``bar * f′(x)``).

    Arguments that are not ``need``-ed get no multiplication; a ``vjp`` rule builds all its
    contributions, and those not needed are dropped when the circuit is finished. ``add``
    and ``mul`` without broadcasting (most nodes) take a short path that builds what their
    rules build.
    """
    op, args = c._ops[i], c._args[i]
    if op == "add" or op == "mul":
        # (A neg operand takes the long path: scaled moves its sign out of the product.)
        shape, ops = c._shapes[i], c._ops
        if b.shapes[bar] == shape and all(b.shapes[a] == shape and ops[a] != "neg"
                                          for a in args):
            if op == "add":
                return [bar, bar]
            return [b.apply_id("mul", (bar, args[1])) if need[0] else None,
                    b.apply_id("mul", (bar, args[0])) if need[1] else None]
    prim = PRIMITIVES[op]
    params = c._params[i] or {}
    arg_values = [Value(b, a) for a in args]
    out, bar_v = Value(b, i), Value(b, bar)
    made = None
    if fused and prim.fused is not None:
        if b.ops[bar] == "const" and not b.shapes[bar] and b.params[bar] == 1.0:
            # bar = 1 (the output's own node): 1·p is p, so the textbook rule is the
            # derivative alone; it is kept where that is one node (step(x), not 1.0·step(x)).
            before = len(b.ops)
            made = _unfused(prim, bar_v, out, arg_values, params, need)
            if len(b.ops) - before > 1:
                made = None  # (its nodes are dead)
        if made is None:
            made = prim.fused(bar_v, out, *arg_values, **params)
    else:
        made = _unfused(prim, bar_v, out, arg_values, params, need)
    return [x if x is None or type(x) is Scatter else x.id for x in made]


def _unfused(prim: Any, bar: Value, out: Value, args: list[Value], params: dict,
             need: Sequence[int]) -> tuple:
    """The contributions of the table's ``vjp``, else ``bar * partial``."""
    if prim.vjp is not None:
        return prim.vjp(bar, out, *args, **params)
    return tuple(None if p is None or not ok else scaled(bar, p)
                 for p, ok in zip(prim.partials(out, *args, **params), need))


def sample_node(op: str, shapes: tuple) -> tuple[Builder, list[Value], Value]:
    """A builder holding one ``op`` node on fresh inputs ``a0, a1 ...`` of ``shapes`` (with
    the record's ``example`` params): what the rule-size measurements of the adjoint and
    tangent passes differentiate."""
    b = Builder()
    args = [b.input(f"a{k}", s) for k, s in enumerate(shapes)]
    return b, args, b.apply(op, *args, **PRIMITIVES[op].example)


def rule_size(op: str, fused: bool = True) -> int:
    """The most nodes the adjoint rule of ``op`` emits for one node (all arguments active,
    operands of the largest broadcast-free shapes; add 1 per argument for ``sum_to``): the
    ``fused`` rule where the table has one and ``fused``, as :func:`grad` builds it.

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
        rules.append(-(-cost // nodes))
    return max(rules)


SIZE_FACTOR = _size_factor(broadcasting=False)
"""K in ``grad(c).size <= K * c.size`` for circuits without broadcasting (every scalar
circuit), derived from the primitive table (see the module docstring)."""

TENSOR_SIZE_FACTOR = _size_factor(broadcasting=True)
"""K for tensor circuits whose elementwise ops broadcast (one ``sum_to`` per operand)."""


def bound_size(c: Circuit) -> int:
    """The size the bound ``grad(c).size <= K * bound_size(c)`` is stated for: ``c.size``,
    with a node of k > 2 arguments counted as k - 1 nodes (concatenate, stack ...).

        >>> import circuitgrad as cg
        >>> bound_size(cg.parse("x*y + 1"))
        2
    """
    extra = 0
    for i in range(len(c)):
        k = len(c.args(i))
        if k > 2:
            extra += k - 2
    return c.size + extra
