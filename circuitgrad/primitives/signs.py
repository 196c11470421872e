"""Sign identities: the one home of the rules that move a sign, all exact in IEEE-754 float64.

Negation flips one bit, so it commutes with every correctly rounded product and quotient:

* a sign passes through a product or quotient: ``(-u)·p = -(u·p)``, ``(-u)/p = -(u/p)``,
  ``u/(-p) = -(u/p)``, through every fused contribution of :mod:`.fused`, which is linear
  in its first argument: ``f(-bar, x) = -f(bar, x)`` (:func:`passes_sign`), and through a
  select of two signed values: ``where(c, -a, -b) = -where(c, a, b)`` (:func:`passes_signs`);
* two signs cancel: ``-(-x) = x``, ``(-a)·(-b) = a·b``; ``x·(-1) = -x``;
* a scalar constant takes a sign for free: ``-(c·x) = (-c)·x``, ``(-x)/c = x/(-c)``
  (:func:`takes_sign`, :func:`negate`);
* an even function drops it: ``(-x)² = x²``, ``|-x| = |x|``;
* an add or a sub absorbs it: ``a + (-b) = a - b``, ``a - (-b) = a + b``.

Who reads them: the builder (``Builder._rewrite`` calls :func:`rewrite` on every node it
makes), the rules of the primitive table (:func:`scaled` puts a negative partial's sign
outside the product), the adjoint sweep (:func:`passes_sign`, :func:`takes_sign`,
:func:`negate`: it carries a sign on an adjoint instead of building a ``neg``), and
:mod:`circuitgrad.transforms.simplify` (:data:`RULES`, the same identities as patterns).

The functions take a builder (``ops``, ``args``, ``params``, ``shapes`` columns, ``apply_id``,
``const_id``) and node ids; this module imports nothing, so every floor may read it.

    >>> from circuitgrad.builder import Builder
    >>> b = Builder()
    >>> x = b.input("x")
    >>> b.ops[(-(2.0 * x)).id], float(b.params[b.args[(-(2.0 * x)).id][0]])
    ('mul', -2.0)
"""

from __future__ import annotations

from typing import Any

# Fused contributions are named <op>_vjp (primitives/fused.py: FUSED_VJPS; a test checks that
# the names and the set agree), and each is linear in its first argument.
_FUSED_SUFFIX = "_vjp"

# Ops through which a sign on an argument passes to the result, by argument position.
_THROUGH = {"mul": (0, 1), "div": (0,), "neg": (0,)}


def is_fused_vjp(op: str) -> bool:
    """Whether ``op`` is a fused contribution ``bar · f′(x)`` (linear in ``bar``)."""
    return op.endswith(_FUSED_SUFFIX)


def passes_sign(op: str, position: int) -> bool:
    """Whether ``op`` with ``-u`` at argument ``position`` is ``-op(u)`` exactly (the other
    arguments kept): a product, the numerator of a quotient, a neg, a fused contribution's
    ``bar``. (``u/(-p)`` is exact too, but a carried sign stays in the numerator.)

        >>> passes_sign("mul", 1), passes_sign("div", 1), passes_sign("tanh_vjp", 0)
        (True, False, True)
    """
    if is_fused_vjp(op):
        return position == 0
    return position in _THROUGH.get(op, ())


def passes_signs(op: str, uses: list[bool]) -> bool:
    """Whether ``op`` with ``-u`` at every argument marked in ``uses`` (each the same signed
    adjoint, or made from it) is ``-op(...)`` exactly: :func:`passes_sign` for one argument,
    and ``where(c, -a, -b) = -where(c, a, b)`` for both branches of a select.

        >>> passes_signs("where", [False, True, True]), passes_signs("where", [False, True, False])
        (True, False)
    """
    marked = tuple(k for k, used in enumerate(uses) if used)
    if len(marked) == 1:
        return passes_sign(op, marked[0])
    return _TOGETHER.get(op) == marked


# Ops through which a sign on several arguments at once passes: a select of two negated values.
_TOGETHER = {"where": (1, 2)}


def scaled(bar: Any, p: Any) -> Any:
    """The contribution ``bar * p``, with a negative partial's sign outside the product,
    -(bar·q), so that the adjoint pass sums it by a subtraction and the sign costs no node
    (what every ``bar * partial`` of the table is built as: ``grad`` and the ``vjp`` rules)."""
    if getattr(p, "op", None) == "neg":
        return -(bar * type(p)(p.builder, p.builder.args[p.id][0]))
    return bar * p


def takes_sign(b: Any, q: int) -> bool:
    """Whether ``-q`` costs no node: ``q`` is a product or quotient with a constant factor,
    or a fused contribution of a constant (the constant takes the sign)."""
    op, args = b.ops[q], b.args[q]
    return (op in ("mul", "div") and any(b.ops[a] == "const" for a in args)
            or is_fused_vjp(op) and b.ops[args[0]] == "const")


def negate(b: Any, q: int, start: int = 0) -> int:
    """The node ``-q``; where ``q >= start`` (a node the caller made: the adjoint sweep
    passes the size of the forward circuit) has a scalar constant factor of its own shape's
    operand, the sign goes into the constant instead of a ``neg``."""
    ops, args, shapes = b.ops, b.args, b.shapes
    if q >= start and ops[q] in ("mul", "div"):
        u, v = args[q]
        # -(u·c) = u·(-c) and -(u/c) = u/(-c)
        if ops[v] == "const" and not shapes[v] and shapes[u] == shapes[q]:
            return b.apply_id(ops[q], (u, b.const_id(-b.params[v])))
        # -(c·v) = (-c)·v and -(c/v) = (-c)/v (what takes_sign promises of a constant factor)
        if ops[u] == "const" and not shapes[u] and shapes[v] == shapes[q]:
            return b.apply_id(ops[q], (b.const_id(-b.params[u]), v))
    elif q >= start and is_fused_vjp(ops[q]):
        # f(-c, x) = -f(c, x) (pow_vjp: f(-c, a, b) = -f(c, a, b))
        u, *rest = args[q]
        if ops[u] == "const" and not shapes[u] and any(shapes[v] == shapes[q] for v in rest):
            return b.apply_id(ops[q], (b.const_id(-b.params[u]), *rest))
    return b.apply_id("neg", (q,))


def rewrite(b: Any, op: str, ids: tuple[int, ...]) -> int | None:
    """The builder's sign identities for a node ``op(*ids)``: the node it is, or None.
    (Called after the builder's other identities of ``op``, ``x·1 = x`` first.)"""
    ops, args = b.ops, b.args
    if op == "neg":
        x = ids[0]
        if ops[x] == "neg":
            return args[x][0]  # -(-x) = x
        if ops[x] == "mul":
            # -(c·x) = (-c)·x: the sign goes into a scalar constant (x·c likewise).
            u, v = args[x]
            if _is_scalar_const(b, v):
                u, v = v, u
            if _is_scalar_const(b, u):
                return b.apply_id("mul", (b.const_id(-b.params[u]), v))
        return None
    if op in ("square", "abs"):
        # (-x)² = x² and |-x| = |x|
        return b.apply_id(op, (args[ids[0]][0],)) if ops[ids[0]] == "neg" else None
    if op not in ("add", "sub", "mul", "div"):
        return None
    u, v = ids
    if op == "add":
        if ops[v] == "neg":
            return b.apply_id("sub", (u, args[v][0]))
        if ops[u] == "neg":
            return b.apply_id("sub", (v, args[u][0]))
    elif op == "sub":
        if ops[v] == "neg":
            return b.apply_id("add", (u, args[v][0]))
    else:  # mul, div
        if op == "mul" and _is_const(b, u, -1.0) and _keeps_shape(b, v, u):
            return b.apply_id("neg", (v,))
        if op == "mul" and _is_const(b, v, -1.0) and _keeps_shape(b, u, v):
            return b.apply_id("neg", (u,))
        if ops[u] == "neg" and ops[v] == "neg":
            return b.apply_id(op, (args[u][0], args[v][0]))  # (-a)(-b) = ab exactly
        # c·(-x) = (-c)·x and (-x)/c = x/(-c): the sign goes into a scalar constant.
        if op == "mul" and ops[v] == "neg" and _is_scalar_const(b, u):
            return b.apply_id("mul", (b.const_id(-b.params[u]), args[v][0]))
        if ops[u] == "neg" and _is_scalar_const(b, v):
            return b.apply_id(op, (args[u][0], b.const_id(-b.params[v])))
    return None


def _is_scalar_const(b: Any, i: int) -> bool:
    return b.ops[i] == "const" and not b.shapes[i]


def _is_const(b: Any, i: int, value: float) -> bool:
    return b.ops[i] == "const" and b.params[i] is not None and not b.shapes[i] and \
        b.params[i] == value


def _keeps_shape(b: Any, kept: int, dropped: int) -> bool:
    # Dropping an operand is only exact when it does not broadcast the kept one.
    return not b.shapes[dropped] or b.shapes[dropped] == b.shapes[kept]


# The same identities as patterns of transforms/simplify.py's rules (name, pattern,
# replacement, then optionally when and single_use): "c", "d" match constants, "x", "y" nodes.
RULES: tuple[tuple, ...] = (
    ("-0.0 - x → -x", ("sub", -0.0, "x"), ("neg", "x")),
    ("c·(-x) → (-c)·x", ("mul", "c", ("neg", "x")), ("mul", ("neg", "c"), "x")),
    ("-(c·x) → (-c)·x", ("neg", ("mul", "c", "x")), ("mul", ("neg", "c"), "x")),
    ("(-x)/c → x/(-c)", ("div", ("neg", "x"), "c"), ("div", "x", ("neg", "c"))),
    ("square(-x) → square(x)", ("square", ("neg", "x")), ("square", "x")),
    ("|-x| → |x|", ("abs", ("neg", "x")), ("abs", "x")),
    # A sign moves down to the add or sub that absorbs it (a + (-b) = a - b, in the builder),
    # when the neg has no other use: as many nodes, and one fewer once absorbed.
    ("(-x)·y → -(x·y)", ("mul", ("neg", "x"), "y"), ("neg", ("mul", "x", "y")), None, 0),
    ("(-x)/y → -(x/y)", ("div", ("neg", "x"), "y"), ("neg", ("div", "x", "y")), None, 0),
    ("x/(-y) → -(x/y)", ("div", "x", ("neg", "y")), ("neg", ("div", "x", "y")), None, 1),
)
