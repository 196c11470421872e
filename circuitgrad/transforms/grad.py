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
elementwise (the identities: :mod:`circuitgrad.primitives.signs`). So the sweep builds the
forms the exact rules of :mod:`.simplify` would make, and ``grad(simplify=True)`` rebuilds the
circuit only where a rule still matches.

Size bound. Let R be the most nodes any rule of the primitive table emits for one node
(:func:`.bounds.rule_size`, measured from the table, plus the ``sum_to`` that undoes broadcasting),
and S its sign cost (:func:`.bounds.sign_cost`): a carried sign costs no node where it is absorbed,
and one ``neg`` at most where it stops; it stops once per sign, and a node that passes one
sign to two arguments makes one sign more (S = 1), as does a node that stops it (S = 1).
Contributions cost at most (R + S)·N nodes; summing them costs one ``add`` per use beyond the
first, and since every operation except the output is used and the first operation uses a
leaf, that is at most N adds. So ``g.size <= (R + S + 2) * c.size``, with R + S the largest
over the table: :data:`.bounds.SIZE_FACTOR` (9: R = 7 for ``atan2``, accurate at 1e200 and 1e-300,
which passes its sign to one argument). Broadcasting adds one ``sum_to`` per operand:
:data:`.bounds.TENSOR_SIZE_FACTOR` (11).

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
(the binary nodes it stands for; :func:`.bounds.bound_size`), since its rule costs per argument.

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

from ..guards import refuse_cut_derivative
from ..circuit import Circuit, LEAVES, as_circuit, no_gc
from ..builder import Builder
from ..errors import CircuitError
from ..primitives import PRIMITIVES, Scatter
from ..primitives.signs import negate, takes_sign
from .loop_carries import saving_carries
from .common import active_nodes, fit_shape, pick_inputs, pick_names, pick_output, sample_node
from .simplify import first_rewrite
from .simplify import simplify as simplify_circuit
from .sweeps import contributions, signs_out

# pick_names, sample_node ...: their old import path (they live in .common).
__all__ = ["Adjoints", "active_nodes", "adjoint_sweep", "fit_shape", "grad", "pick_inputs",
           "pick_names", "pick_output", "sample_node"]

# Old import paths: the size bounds live in .bounds and are computed on first use.
_BOUNDS = ("SIZE_FACTOR", "TENSOR_SIZE_FACTOR", "rule_size", "sign_cost", "bound_size")


def __getattr__(name: str) -> Any:
    if name in _BOUNDS:
        from . import bounds

        return getattr(bounds, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def grad(c: Circuit, wrt: str | Sequence[str] | None = None,
         output: str | None = None, simplify: bool = True, fused: bool = True,
         checkpoints: int | None = None) -> Circuit:
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
        checkpoints: for loops (:func:`~circuitgrad.scan`) of more steps: store at most this
            many carries and recompute the others from them, by the binomial schedule
            (docs/loops.md); default: store every carry.

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
    refuse_cut_derivative(c, "grad")
    # Loops keep their carries (or checkpoints) for their adjoint loops: transforms/loops.py.
    c = saving_carries(c, checkpoints)
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
    ops, n = g.columns.ops, len(g)
    old_end = end = g.meta["forward_count"]
    while end < n and ops[end] in LEAVES:
        end += 1  # (the rewrite's boundary: the first derivative node)
    meta = dict(g.meta, forward_count=end,
                adjoint_of={a: f for a, f in g.meta["adjoint_of"].items() if a >= end > f})
    # Derivative names stay off leaves and forward nodes, as the rewrite carries them.
    names = {i: s for i, s in g.columns.names.items()
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

    The notes' loop: walk the nodes in reverse; a node's adjoint ``bar`` is complete when the
    walk reaches it; the record turns it into one contribution per argument, and each is
    summed into that argument's adjoint (:class:`Adjoints`, which also carries signs).

    >>> import circuitgrad as cg
    >>> c = cg.parse("f = x*y")
    >>> b = Builder(c)
    >>> bars, _ = adjoint_sweep(b, c, {c.output_ids[0]: b.const_id(1.0)},
    ...                         active_nodes(c, c.inputs))
    >>> [bars[i] for i in c.input_ids] == [c.input_ids[1], c.input_ids[0]]
    True
    """
    adjoints = Adjoints(b, c, seeds, fused)
    adjoint_of: dict[int, int] = {}
    cols, labels, n = c.columns, labels or {}, len(c)
    ops, shapes, names = cols.ops, cols.shapes, cols.names
    for i in range(max(seeds, default=-1), -1, -1):
        taken = adjoints.take(i, ops[i] in LEAVES)
        if taken is None:
            continue
        elementwise = PRIMITIVES[ops[i]].shape is None
        bar, flip = adjoints.settled(*taken, elementwise, shapes[i])
        args, before = cols.args[i], len(b.ops)
        need = [active[a] for a in args]
        bar, flip, made, signs = adjoints.contributions(c, i, bar, flip, need, before)
        if bar >= n and not flip:  # (a flagged bar is the adjoint negated: not named)
            adjoint_of.setdefault(bar, i)
            name = names.get(i) or labels.get(i)
            if name:
                b.name(bar, f"{name}_bar")
        for a, ok, part, sign in zip(args, need, made, signs):
            if part is not None and ok:
                adjoints.add(a, part, sign, before, shapes[i] if elementwise else None)
    return adjoints.finish(), adjoint_of


class Adjoints:
    """The adjoints a reverse sweep has summed so far, one node of ``b`` per node of ``c``.

    Signs are carried, not built (see the module docstring): where ``i in negated`` the
    adjoint of ``i`` is ``-(bar[i])``, and a ``neg`` is built only where the sign stops
    (:meth:`negative`). With ``fused``, a product ``u·v`` kept as an adjoint so far
    (``products``) may be absorbed by the next contribution into one ``add_mul``. Reads of
    parts of a node (``x[i]``, ``x[1:]``) wait in ``scattered`` as (value, index) pairs and
    become one ``scatter_add`` when the sweep reaches the node (:meth:`gather`).
    """

    def __init__(self, b: Builder, c: Circuit, seeds: dict[int, int], fused: bool) -> None:
        self.b, self.n, self.cols, self.fused = b, len(c), c.columns, fused
        self.shapes = self.cols.shapes
        self.bar: dict[int, int] = dict(seeds)
        self.negated: set[int] = set()
        self.products: set[int] = set()
        self.scattered: dict[int, list[tuple[int, tuple]]] = {}

    def take(self, i: int, leaf: bool) -> tuple[int, bool] | None:
        """Node ``i``'s adjoint and its sign flag, complete now that the sweep reaches it,
        taken out of the sums; None where it has none or is a leaf (whose adjoint stays)."""
        bar = self.gather(i) if i in self.scattered else self.bar.get(i)
        if bar is None or leaf:
            return None
        del self.bar[i]
        self.products.discard(bar)  # (now read as an adjoint: no longer a product to absorb)
        flip = i in self.negated
        if flip:
            self.negated.discard(i)
        return bar, flip

    def settled(self, bar: int, flip: bool, elementwise: bool,
                shape: tuple[int, ...]) -> tuple[int, bool]:
        """``(bar, flip)`` with the sign built where a rule cannot carry it (an op that is
        not elementwise, a broadcast adjoint) or a constant factor takes it for free; and
        the node's full shape for an op that is not elementwise (matmul & co.)."""
        b = self.b
        if flip and (not elementwise or b.shapes[bar] != shape
                     or bar >= self.n and takes_sign(b, bar)):
            bar, flip = self.negative(bar), False
        if not elementwise and b.shapes[bar] != shape:
            bar = fit_shape(b, bar, shape, exact=True)
        return bar, flip

    def contributions(self, c: Circuit, i: int, bar: int, flip: bool, need: list[int],
                      before: int) -> tuple[int, bool, list, Sequence[bool]]:
        """``(bar, flip, contributions, signs)`` of node ``i``: the record's contributions,
        each with a sign flag; where ``flip`` cannot pass through them, ``bar`` is negated
        first (the first try's nodes are dead)."""
        b, args, shapes = self.b, self.cols.args[i], self.shapes
        if self.cols.ops[i] == "sub" and b.shapes[bar] == shapes[args[0]] == shapes[args[1]]:
            return bar, flip, [bar, bar], (flip, not flip)  # a - b: bar and -bar
        made = contributions(b, c, i, bar, need, self.fused)
        if flip and signs_out(b, bar, before, made, need) is None:
            bar, flip = self.negative(bar), False
            made = contributions(b, c, i, bar, need, self.fused)
        return bar, flip, made, (flip,) * len(args)

    def add(self, a: int, part: Any, sign: bool, before: int,
            broadcast: tuple[int, ...] | None) -> None:
        """Sum the contribution ``part`` (negated where ``sign``; made since node ``before``,
        by an elementwise node of shape ``broadcast`` or another node) into ``a``'s adjoint:
        the chain rule's fan-out sum."""
        b, bops, shape = self.b, self.b.ops, self.shapes[a]
        if type(part) is Scatter:
            self.scattered.setdefault(a, []).append((part.bar.id, part.index))
            return
        if part >= before and bops[part] == "neg":
            part, sign = b.args[part][0], not sign  # -(q): carry q and the sign
        # (A sign passes through sum_to and broadcast_to: a sum of negated terms, in the
        # same order, is the sum negated.)
        if broadcast is not None and shape != broadcast:
            # The argument was broadcast: its adjoint sums the node's over the copies.
            part = fit_shape(b, fit_shape(b, part, broadcast, exact=True), shape)
        elif b.shapes[part] != shape:
            part = fit_shape(b, part, shape)
        old = self.bar.get(a)
        fresh = part >= before and bops[part] == "mul"
        if old is None:
            self.bar[a] = part
            if sign:
                self.negated.add(a)
            if self.fused and fresh:
                self.products.add(part)
        elif not (self.fused and old != part and (fresh or old in self.products)
                  and self.absorbed(a, old, part, sign, fresh)):
            self.bar[a] = self.summed(a, old, part, sign)

    def absorbed(self, a: int, old: int, part: int, sign: bool, fresh: bool) -> bool:
        """Sum a fresh product ``u·v`` (the new ``part`` where ``fresh``, else the adjoint
        so far) and the other term as one accumulation node with the same two roundings
        (``add_mul`` & co., primitives/fused.py); False where the shapes differ."""
        b = self.b
        prod, acc = (part, old) if fresh else (old, part)
        u, v = b.args[prod]
        if not b.shapes[acc] == b.shapes[prod] == b.shapes[u] == b.shapes[v]:
            return False
        self.products.discard(old)
        if (a in self.negated) == sign:
            op = "add_mul"  # old + part, either order exactly
        elif sign:  # old - part
            op = "sub_mul" if fresh else "mul_sub"
        else:  # part - old
            op = "mul_sub" if fresh else "sub_mul"
            self.negated.discard(a)
        self.bar[a] = b.apply_id(op, (acc, u, v))
        return True

    def summed(self, a: int, old: int, part: int, sign: bool) -> int:
        """The node for ``a``'s adjoint so far plus ``part`` (minus, where ``sign`` differs
        from ``a``'s flag): ``(-p) + (-q) = -(p + q)`` exactly, so a shared sign stays
        carried."""
        if (a in self.negated) == sign:
            return self.b.apply_id("add", (old, part))
        if sign:
            return self.b.apply_id("sub", (old, part))
        self.negated.discard(a)
        return self.b.apply_id("sub", (part, old))

    def negative(self, q: int) -> int:
        """The node ``-q``, with the sign in a constant where that is free (a node the sweep
        made: primitives/signs.py)."""
        return negate(self.b, q, self.n)

    def materialized(self, i: int) -> int | None:
        """Node ``i``'s adjoint with its carried sign built."""
        bar = self.bar.get(i)
        if bar is not None and i in self.negated:
            self.negated.discard(i)
            bar = self.bar[i] = self.negative(bar)
        return bar

    def gather(self, i: int) -> int | None:
        """Node ``i``'s adjoint with its reads of parts summed in: one ``scatter_add``."""
        parts = self.scattered.pop(i, None)
        if parts is None:
            return self.bar.get(i)
        into = self.b.apply_id("scatter_add", tuple(v for v, _ in parts),
                               {"shape": self.shapes[i], "indices": tuple(ix for _, ix in parts)})
        dense = self.materialized(i)
        self.bar[i] = into if dense is None else self.b.apply_id("add", (dense, into))
        return self.bar[i]

    def finish(self) -> dict[int, int]:
        """The adjoints, every carried sign built (the inputs' adjoints are the result)."""
        for i in list(self.negated):
            self.materialized(i)
        return self.bar
