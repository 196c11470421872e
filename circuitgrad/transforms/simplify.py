"""Simplification passes: plain functions ``Circuit -> Circuit`` that read the primitive table.

A *pass* takes a circuit and returns a new one computing the same outputs from the same
inputs (same names, order and shapes). :func:`simplify` runs a pipeline (a list of passes).
Every pass is one forward loop over the node records (ids are topological), so it is linear
in the size of the circuit and never recurses over its depth.

The passes:

* :func:`merge_common`: rebuild the circuit through the hash-consing
  :class:`~circuitgrad.circuit.Builder`. The builder merges common subexpressions, folds every
  node whose arguments are all constants (with the table's own NumPy code, so the folded value
  is the value the node had), and applies its exact rewrites (``x*1``, ``x/1``, ``x**1``,
  ``-(-x)``, ``a + (-b) → a - b`` ...). So this one pass is both *constant folding* and
  *re-hash-consing*; every other rewriting pass gets them too, since it rebuilds the same way.
* :func:`eliminate_dead_nodes`: drop the nodes that reach no output (inputs are kept).
* :func:`rewrite_exact`: the identities of :data:`EXACT_RULES`, matched on the rebuilt nodes.
* :func:`rewrite_unsafe`: :data:`EXACT_RULES` and :data:`UNSAFE_RULES`.

Exactness. "Exact" means bit for bit in IEEE-754 float64 as NumPy computes, for *every* input,
inf, nan and both zeros included (NaN payloads aside). That is why ``x + 0.0 → x`` is *not*
exact: at ``x = -0.0`` it gives ``+0.0``, and ``1/(x + 0.0)`` is then ``+inf``, not ``-inf``.
The exact forms are ``x + (-0.0) → x``, ``x - 0.0 → x`` and ``-0.0 - x → -x``; ``x + 0.0 → x``
is an unsafe rule. ``x ** 2 → square(x)`` is no rule here: the builder makes it for every
circuit (NumPy's array power does the same bit for bit, while its *scalar* power calls C
``pow``, one ulp off the correctly rounded ``x·x`` at about one point in 10⁴), so a forward
circuit and the forward part of its adjoint show the same node.

Unsafe rules (``unsafe=True`` only) are identities of real numbers that change results for
inf or nan (``x*0 → 0``, ``x - x → 0``, ``x/x → 1``), for the sign of zero (``x + 0 → x``),
for negative or out-of-domain inputs (``sqrt(x²) → x``, ``exp(log x) → x``), or by rounding
and overflow (``log(exp x) → x``, ``0.5*(2*x) → x``). Use them where inputs are finite and
inside every op's domain.

Meta. A pass keeps the circuit's ``meta``: ``forward_count``, ``tangent_count`` and
``adjoint_of`` (the node ids a derivative circuit records for the lowerings) are remapped to
the new ids; an adjoint node
merged into a forward node stops being an adjoint. Names given by the program carry over.

Rules. A :class:`Rule` is a pattern, a replacement and an optional guard. Patterns are nested
tuples ``(op, arg, ...)`` whose leaves are variables or numbers: ``"x"``, ``"y"`` match any
node (the same variable twice: the same node), ``"c"``, ``"d"`` match a scalar constant, and a
number matches a scalar constant with the same bits (``-0.0`` is not ``0.0``). Commutative ops
(the table's ``commutative``) match both argument orders. A replacement is a variable, a
number, or a tuple built with the same rules and the builder (so ``("mul", ("mul", "c", "d"),
"x")`` folds ``c·d``). A replacement of another shape than the node is broadcast to it, or the
rule does not apply.

    >>> import circuitgrad as cg
    >>> c = cg.parse("y = (x - 0.0) ** 3\\nJ = -0.0 - y")
    >>> [c.op(i) for i in range(len(c)) if c.op(i) not in ("input", "const")]
    ['sub', 'pow', 'sub']
    >>> s = cg.simplify(c)
    >>> [s.op(i) for i in range(len(s)) if s.op(i) not in ("input", "const")]
    ['pow', 'neg']
    >>> c = cg.parse("exp(log(x)) - x")
    >>> cg.simplify(c).size, cg.simplify(c, unsafe=True).size
    (3, 0)
"""

from __future__ import annotations

import math
import struct
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from ..circuit import Circuit, LEAVES, as_circuit, no_gc
from ..builder import Builder
from ..primitives import PRIMITIVES, shape_of, signs

Pass = Callable[[Circuit], Circuit]

NODE_VARIABLES = frozenset({"x", "y"})
CONST_VARIABLES = frozenset({"c", "d"})
_NO_RULE: tuple = (frozenset(), False)
_MAX_NESTING = 8  # a replacement's nodes are simplified too, at most this many levels deep


class Rule(NamedTuple):
    """One rewrite: ``pattern → replacement`` where ``when(**constants)`` holds and, if
    ``single_use`` is a position, the node matched there has no other use."""

    name: str
    pattern: tuple
    replacement: Any
    when: Callable[..., bool] | None = None
    single_use: int | None = None


def _power_of_two_at_least_one(**consts: float) -> bool:
    # c·(d·x) = (c·d)·x bit for bit when |c|, |d| are powers of two ≥ 1: each product only
    # shifts the exponent up, so both forms round (overflow to ±inf) at the same points.
    for v in consts.values():
        m, e = math.frexp(abs(v))
        if m != 0.5 or e < 1:
            return False
    return math.isfinite(math.prod(consts.values()))


EXACT_RULES: tuple[Rule, ...] = (
    Rule("x + (-0.0) → x", ("add", "x", -0.0), "x"),
    Rule("x - 0.0 → x", ("sub", "x", 0.0), "x"),
    Rule("x ** 0 → 1 (IEEE pow: even at nan)", ("pow", "x", 0.0), 1.0),
    Rule("c·(d·x) → (c·d)·x, |c|, |d| powers of two ≥ 1", ("mul", "c", ("mul", "d", "x")),
         ("mul", ("mul", "c", "d"), "x"), _power_of_two_at_least_one),
    # The sign identities (-(c·x) → (-c)·x, |-x| → |x| ...): primitives/signs.py.
    *(Rule(*r) for r in signs.RULES),
)
"""Identities exact in IEEE-754 float64 for every input (see the module docstring)."""

UNSAFE_RULES: tuple[Rule, ...] = (
    Rule("x + 0 → x (sign of zero)", ("add", "x", 0.0), "x"),
    Rule("x - (-0.0) → x (sign of zero)", ("sub", "x", -0.0), "x"),
    Rule("0 - x → -x (sign of zero)", ("sub", 0.0, "x"), ("neg", "x")),
    Rule("x·0 → 0 (inf, nan)", ("mul", "x", 0.0), 0.0),
    Rule("0/x → 0 (x = 0, nan)", ("div", 0.0, "x"), 0.0),
    Rule("x - x → 0 (inf, nan)", ("sub", "x", "x"), 0.0),
    Rule("x/x → 1 (0, inf, nan)", ("div", "x", "x"), 1.0),
    Rule("exp(log x) → x (x < 0)", ("exp", ("log", "x")), "x"),
    Rule("log(exp x) → x (overflow)", ("log", ("exp", "x")), "x"),
    Rule("sqrt(x²) → x (x < 0)", ("sqrt", ("square", "x")), "x"),
    Rule("sqrt(x)² → x (x < 0)", ("square", ("sqrt", "x")), "x"),
    Rule("x ** 0.5 → sqrt(x) (-0, -inf)", ("pow", "x", 0.5), ("sqrt", "x")),
    Rule("-(x - y) → y - x (sign of zero)", ("neg", ("sub", "x", "y")), ("sub", "y", "x")),
    Rule("c·(d·x) → (c·d)·x (rounding, overflow)", ("mul", "c", ("mul", "d", "x")),
         ("mul", ("mul", "c", "d"), "x")),
    Rule("(c·x)/d → (c/d)·x (rounding, overflow)", ("div", ("mul", "c", "x"), "d"),
         ("mul", ("div", "c", "d"), "x")),
    Rule("c·x + d·x → (c + d)·x (rounding)", ("add", ("mul", "c", "x"), ("mul", "d", "x")),
         ("mul", ("add", "c", "d"), "x")),
    Rule("x + x → 2·x", ("add", "x", "x"), ("mul", 2.0, "x")),
)
"""Identities of real numbers that change results at inf, nan, -0 or outside a domain, or by
rounding; used only with ``unsafe=True``."""


# ---------------------------------------------------------------------------------------------
# The rewriting engine: one forward loop, each node rebuilt through the builder.


def _bits(v: float) -> bytes:
    return struct.pack("<d", v)


class _Rewriter:
    """Builds nodes in a :class:`Builder`, trying ``rules`` on each one first."""

    def __init__(self, b: Builder, rules: Sequence[Rule]):
        self.b = b
        # Per op: (rule, the op each argument must have or None), a cheap first filter.
        self.by_op: dict[str, list[tuple[Rule, tuple]]] = {}
        for rule in rules:
            need = tuple(None if p in NODE_VARIABLES else "const" if isinstance(p, (str, float))
                         else p[0] for p in rule.pattern[1:])
            self.by_op.setdefault(rule.pattern[0], []).append((rule, need))
        # Per op: the argument ops some rule needs (None: a rule needs none), and whether a
        # rule repeats a variable (x - x): most nodes are passed on after this one test.
        self.prefilter: dict[str, tuple[frozenset | None, bool]] = {}
        for op, entries in self.by_op.items():
            needed = {n for _, need in entries for n in need if n is not None}
            repeated = any(len(set(r.pattern[1:])) < len(r.pattern) - 1 for r, _ in entries)
            free = any(all(n is None for n in need) and len(set(r.pattern[1:])) == len(need)
                       for r, need in entries)
            self.prefilter[op] = (None if free else frozenset(needed), repeated)
        self.fired = 0
        # Uses of the rebuilt nodes, an upper bound: the uses each old node had, and one per
        # node a replacement refers to. A node not counted has unknown uses.
        self.uses: dict[int, int] = {}
        self.matched: tuple[int, ...] = ()

    def emit(self, op: str, args: tuple[int, ...], params: Any, nesting: int = 0) -> int:
        rules = self.by_op.get(op)
        if rules and nesting < _MAX_NESTING:
            ops = self.b.ops
            needed, repeated = self.prefilter[op]
            arg_ops = [ops[a] for a in args]
            if needed is not None and not (any(o in needed for o in arg_ops) or (
                    repeated and len(args) == 2 and args[0] == args[1])):
                return self.apply(op, args, params, nesting)
            swap = PRIMITIVES[op].commutative
            for rule, need in rules:
                if not (all(n is None or n == o for n, o in zip(need, arg_ops)) or (
                        swap and all(n is None or n == o for n, o in zip(need, arg_ops[::-1])))):
                    continue
                env = self._match_node(rule.pattern, op, args, params)
                if env is None or (rule.when is not None and not rule.when(**{
                        k: self.b.params[v] for k, v in env.items() if k in CONST_VARIABLES})):
                    continue
                if rule.single_use is not None and self.uses.get(
                        self.matched[rule.single_use], 0) != 1:
                    continue
                new = self._fit(self.build(rule.replacement, env, nesting + 1), op, args,
                                params)
                if new is not None:
                    self.fired += 1
                    return new
        return self.apply(op, args, params, nesting)

    def apply(self, op: str, args: tuple[int, ...], params: Any, nesting: int = 0) -> int:
        """The builder's node; a new node the builder rewrote into another op (a + (-b) is
        built as a - b) gets the rules of its op too."""
        b = self.b
        count = len(b.ops)
        i = b.apply_id(op, args, params)
        if i >= count and b.ops[i] != op and b.ops[i] in self.by_op:
            return self.emit(b.ops[i], b.args[i], b.params[i], nesting + 1)
        return i

    def build(self, template: Any, env: dict[str, int], nesting: int) -> int:
        """The node of a replacement (recursion over the template's few levels only)."""
        if isinstance(template, str):
            node = env[template]
            self.uses[node] = self.uses.get(node, 0) + 1  # a new use of a matched node
            return node
        if isinstance(template, (int, float)):
            return self.b.const_id(float(template))
        op, *subs = template
        return self.emit(op, tuple(self.build(s, env, nesting) for s in subs), None, nesting)

    def _fit(self, new: int, op: str, args: tuple[int, ...], params: Any) -> int | None:
        b = self.b
        shape = shape_of(op, tuple(b.shapes[a] for a in args), params or {})
        have = b.shapes[new]
        if have == shape:
            return new
        if tuple(np.broadcast_shapes(have, shape)) == shape:
            return b.apply_id("broadcast_to", (new,), {"shape": shape})
        return None

    # -- matching (recursion over the pattern's few levels, never over the circuit) --------
    def _match_node(self, pattern: tuple, op: str, args: tuple[int, ...],
                    params: Any) -> dict[str, int] | None:
        if params or len(pattern) - 1 != len(args):
            return None
        env = self._match_args(pattern[1:], args, {})
        if env is None and PRIMITIVES[op].commutative and args[0] != args[1]:
            args = args[::-1]
            env = self._match_args(pattern[1:], args, {})
        self.matched = args  # the arguments in the order the pattern matched them
        return env

    def _match_args(self, patterns: Sequence[Any], args: Sequence[int],
                    env: dict[str, int]) -> dict[str, int] | None:
        for p, a in zip(patterns, args):
            env = self._match(p, a, env)
            if env is None:
                return None
        return env

    def _match(self, p: Any, i: int, env: dict[str, int]) -> dict[str, int] | None:
        b = self.b
        if isinstance(p, str):
            if p in env:
                return env if env[p] == i else None
            if p in CONST_VARIABLES and not (b.ops[i] == "const" and not b.shapes[i]):
                return None
            return {**env, p: i}
        if isinstance(p, float):
            ok = b.ops[i] == "const" and not b.shapes[i] and _bits(b.params[i]) == _bits(p)
            return env if ok else None
        if b.ops[i] != p[0]:
            return None
        sub = self._match_node(p, p[0], b.args[i], b.params[i])
        if sub is None:
            return None
        for k, v in sub.items():
            if env.get(k, v) != v:
                return None
        return {**env, **sub}


class _Records(NamedTuple):
    """A circuit's node records under the names of a builder's (what matching reads)."""

    ops: list
    args: list
    params: list
    shapes: list


def first_rewrite(c: Circuit, rules: Sequence[Rule] = EXACT_RULES,
                  start: int = 0) -> tuple[int, str] | None:
    """The first node of ``c`` (from node ``start`` on) where one of ``rules`` matches, and
    the rule's name; None where no rule matches, so that rewriting with them would only
    rebuild ``c``.

    A look at every node without building any (much cheaper than a rewrite): ``grad`` asks
    it before it simplifies the adjoint circuit it built with the rules' forms already.

    >>> import circuitgrad as cg
    >>> first_rewrite(cg.parse("J = sin(x) * y")) is None
    True
    >>> first_rewrite(cg.parse("J = sin(x - 0.0) * y"))
    (2, 'x - 0.0 → x')
    """
    ops, args, params, shapes, _ = c.columns
    rw = _Rewriter(_Records(ops, args, params, shapes), rules)  # type: ignore[arg-type]
    uses = [0] * len(ops)
    for ids in args:
        for a in ids:
            uses[a] += 1
    for i in c.output_ids:
        uses[i] += 1
    by_op, prefilter = rw.by_op, rw.prefilter
    for i in range(start, len(ops)):
        entries = by_op.get(ops[i])
        if entries is None or params[i]:
            continue
        op, ids = ops[i], args[i]
        needed, repeated = prefilter[op]
        first = ops[ids[0]]
        second = ops[ids[1]] if len(ids) > 1 else first
        if needed is not None and first not in needed and second not in needed and not (
                repeated and len(ids) == 2 and ids[0] == ids[1]):
            continue
        swap = PRIMITIVES[op].commutative
        for rule, need in entries:
            n0 = need[0]
            n1 = need[1] if len(need) > 1 else None
            if len(need) > 2 or not (
                    (n0 is None or n0 == first) and (n1 is None or n1 == second) or swap and (
                        (n0 is None or n0 == second) and (n1 is None or n1 == first))):
                if len(need) <= 2:
                    continue
            env = rw._match_node(rule.pattern, op, ids, params[i])
            if env is None or (rule.when is not None and not rule.when(**{
                    k: params[v] for k, v in env.items() if k in CONST_VARIABLES})):
                continue
            if rule.single_use is not None and uses[rw.matched[rule.single_use]] != 1:
                continue
            return i, rule.name
    return None


def _rewrite(c: Circuit, rules: Sequence[Rule]) -> Circuit:
    """Rebuild ``c`` node by node through a builder, trying ``rules`` on every node."""
    with no_gc():
        b = Builder()
        rw = _Rewriter(b, rules)
        new = [0] * len(c)
        forward_count = c.meta.get("forward_count")
        forward_end = None
        tangent_count = c.meta.get("tangent_count")
        tangent_end = None
        ops, args, params, shapes, _ = c.columns
        old_uses = [0] * len(c)
        for ids in args:
            for a in ids:
                old_uses[a] += 1
        for i in c.output_ids:
            old_uses[i] += 1
        uses = rw.uses
        new_ops, apply_id, prefilter, by_op = b.ops, b.apply_id, rw.prefilter, rw.by_op
        for i in range(len(c)):
            if i == forward_count:
                forward_end = len(new_ops)
            if i == tangent_count:
                tangent_end = len(new_ops)
            op = ops[i]
            if op == "input":
                new[i] = b.input(params[i], shapes[i]).id
            elif op == "const":
                new[i] = b.const_id(params[i])
            else:
                ids = args[i]
                ids = (new[ids[0]], new[ids[1]]) if len(ids) == 2 else (
                    (new[ids[0]],) if len(ids) == 1 else tuple(new[a] for a in ids))
                needed, repeated = prefilter.get(op, _NO_RULE)
                # The hot path: no rule can match this node, so the builder alone rebuilds it.
                if needed is not None and not (new_ops[ids[0]] in needed or (len(ids) >= 2 and (
                        new_ops[ids[1]] in needed or (repeated and ids[0] == ids[1])))):
                    count = len(new_ops)
                    j = apply_id(op, ids, params[i])
                    if j >= count and new_ops[j] != op and new_ops[j] in by_op:
                        j = rw.emit(new_ops[j], b.args[j], b.params[j], 1)
                    new[i] = j
                else:
                    new[i] = rw.emit(op, ids, params[i])
            if old_uses[i]:
                uses[new[i]] = uses.get(new[i], 0) + old_uses[i]
        meta = dict(c.meta)
        if tangent_count is not None:
            if tangent_end is None:
                tangent_end = len(b.ops)
            while tangent_end < len(b.ops) and b.ops[tangent_end] == "const":
                tangent_end += 1  # (the tangent inputs of jvp stay with the tangent pass)
            meta["tangent_count"] = tangent_end
        if forward_count is not None:
            if forward_end is None:
                forward_end = len(b.ops)
            # The first derivative node marks the boundary (constants may land before it).
            while forward_end < len(b.ops) and b.ops[forward_end] in LEAVES:
                forward_end += 1
            meta["forward_count"] = forward_end
            _carry_names(b, c, new, forward_count, forward_end)
            if "adjoint_of" in meta:
                adjoint_of: dict[int, int] = {}
                for a, f in meta["adjoint_of"].items():
                    if new[a] >= forward_end and new[f] < forward_end:
                        adjoint_of.setdefault(new[a], new[f])
                meta["adjoint_of"] = adjoint_of
        else:
            _carry_names(b, c, new, len(c), len(b.ops))
        return b.finish(list(zip(c.outputs, (new[i] for i in c.output_ids))),
                        inputs=c.inputs, meta=meta)


def _carry_names(b: Builder, c: Circuit, new: list[int], old_end: int, new_end: int) -> None:
    """Program names move to the rebuilt nodes; a derivative node's name (``z_bar``) is not
    given to a forward node or a leaf it was merged into."""
    for i, name in sorted(c.columns.names.items()):
        j = new[i]
        if b.ops[j] in LEAVES or (i >= old_end and j < new_end):
            continue
        b.name(j, name)


# ---------------------------------------------------------------------------------------------
# The passes.


def merge_common(c: Circuit) -> Circuit:
    """Rebuild ``c`` through the hash-consing builder: common subexpressions merged, constants
    folded, the builder's exact rewrites applied, dead nodes dropped.

    >>> from circuitgrad.builder import Builder
    >>> b = Builder()
    >>> x = b.input("x")
    >>> c = b.finish([("f", x * 2.0)])
    >>> merge_common(c).size
    1
    """
    return _rewrite(c, ())


def eliminate_dead_nodes(c: Circuit) -> Circuit:
    """Drop the nodes that reach no output; every input is kept, even an unused one.

    >>> import circuitgrad as cg
    >>> c = cg.parse("a = sin(x)\\nb = cos(x)\\nJ = a*y", outputs=["J"])
    >>> eliminate_dead_nodes(c).size, eliminate_dead_nodes(c).inputs
    (2, ('x', 'y'))
    """
    b = Builder(c)
    return b.finish(list(zip(c.outputs, c.output_ids)), inputs=c.inputs, meta=c.meta)


def rewrite_exact(c: Circuit) -> Circuit:
    """Apply :data:`EXACT_RULES` (and the builder's folding and merging): bit for bit.

    >>> import circuitgrad as cg
    >>> rewrite_exact(cg.parse("4.0*(2.0*x)")).size
    1
    """
    return _rewrite(c, EXACT_RULES)


def rewrite_unsafe(c: Circuit) -> Circuit:
    """Apply :data:`EXACT_RULES` and :data:`UNSAFE_RULES`: exact only for finite inputs inside
    each op's domain, up to rounding.

    >>> import circuitgrad as cg
    >>> rewrite_unsafe(cg.parse("0.5*(2.0*x) + x*0.0")).size
    0
    """
    return _rewrite(c, EXACT_RULES + UNSAFE_RULES)


EXACT_PASSES: tuple[Pass, ...] = (rewrite_exact,)
"""The default pipeline: the exact rules, with merging, folding and dead-node elimination
(every rewrite rebuilds through the builder and drops dead nodes)."""

UNSAFE_PASSES: tuple[Pass, ...] = (rewrite_unsafe,)
"""The pipeline of ``simplify(c, unsafe=True)``."""


def simplify(c: Circuit, passes: Sequence[Pass] | None = None, unsafe: bool = False,
             rounds: int = 1) -> Circuit:
    """Run a pipeline of passes, in order.

    The rewriting passes reach their fixed point in one sweep (they rewrite bottom-up, and the
    nodes of a replacement are rewritten too), except that the sign rules judge "no other use"
    by the uses a node had before the sweep; so one round is the default, and ``rounds``
    repeats the pipeline while it shrinks the circuit (a second round may move a few more
    signs).

    Args:
        c: the circuit.
        passes: the pipeline, a list of functions ``Circuit -> Circuit``; default
            :data:`EXACT_PASSES`, or :data:`UNSAFE_PASSES` with ``unsafe=True``.
        unsafe: also use :data:`UNSAFE_RULES`, which change results at inf, nan, -0, outside
            a domain or by rounding (see the module docstring). Ignored when ``passes`` is
            given.
        rounds: the most times the pipeline runs (it stops when the circuit stops shrinking).

    Returns:
        A circuit with the same inputs and outputs (names, order, shapes) and the same values,
        bit for bit unless ``unsafe``.

    >>> import circuitgrad as cg
    >>> c = cg.parse("J = (x*1.0 + (-0.0)) ** 2")
    >>> c.size, simplify(c).size
    (2, 1)
    """
    c = as_circuit(c, "simplify")
    if passes is None:
        passes = UNSAFE_PASSES if unsafe else EXACT_PASSES
    for _ in range(rounds):
        before = (len(c), c.size)
        for p in passes:
            c = p(c)
        if (len(c), c.size) == before:
            break
    return c
