"""Fused adjoint contributions: ``bar · f′(x)`` of an elementwise op as one node.

The adjoint rule of ``tanh`` is ``bar * (1 - y²)``: a ``square``, a ``sub`` and a ``mul``,
three nodes and three dispatches of the evaluator. Each record here is that whole
contribution as one node (PyTorch's ``tanh_backward``, ``sigmoid_backward`` and
``threshold_backward`` are the same idea): ``tanh_vjp(bar, y)`` over the incoming adjoint and
the forward value the rule reads (the output ``y`` where the rule reuses it, else the
argument ``x``). What grad builds by default (the ``fused`` rule of the op's record;
``grad(..., fused=False)`` builds the textbook form, δ = g ⊙ relu′(z)).

Bit for bit the unfused rule: every form of a record (the NumPy/array-API template, the C
form the tape and ``to_c`` run, the sympy form) does the same floating-point operations in
the same order as the nodes it replaces, so every lowering gives the same numbers, specials
included (``inf · 0 = nan``, ``relu′(0) = 1``, ``sign(0) = 0``). Every record is linear in its
first argument, ``bar`` (``(-bar)·p = -(bar·p)`` exactly), so a sign the adjoint sweep carries
passes through it (:data:`FUSED_VJPS`).

They are ``internal``: a program cannot call them by name (parse does not offer them); they
have their own derivative rules (grad of a gradient, Hessians, jvp through a gradient circuit:
``partials`` for forward mode, and a ``vjp`` that builds fused nodes again, so the adjoint of a
fused node costs at most 5 nodes and the size bound K stays what atan2 makes it; ``pow_vjp``,
∂(a**b)/∂a with its limit at a = 0, has three arguments, a ``vjp`` of 13 nodes (a node of
three arguments counts as two in the bound) and a ``jvp`` of 11, both exact on each side of 0),
and ``operations`` says how many scalar operations each one performs, so that sizes can be
reported in operations as well as nodes (fused nodes make fewer dispatches, not fewer flops).

The accumulations (``add_mul(a, u, v) = a + u·v``, ``sub_mul``, ``mul_sub``) are the same idea
for the chain rule's fan-out sums: a fresh product contribution added into an adjoint in one
node, with the product's and the sum's roundings (:data:`ACCUMULATIONS`).

    >>> from circuitgrad.primitives import evaluate
    >>> float(evaluate("tanh_vjp", (2.0, 0.5)))      # 2 · (1 - 0.5²)
    1.5
    >>> float(evaluate("relu_vjp", (float("inf"), -1.0)))  # inf · relu′(-1) = inf · 0
    nan
"""

from __future__ import annotations

from typing import Any

from .core import Primitive, call


def _sympy_relu_vjp(g: Any, x: Any) -> Any:
    import sympy

    return g * sympy.Heaviside(x, 1)


def _sympy_call(name: str) -> Any:
    def form(g: Any, x: Any) -> Any:
        import sympy

        return g * getattr(sympy, name)(x)

    form.__name__ = f"_sympy_{name}_vjp"
    return form


def _sympy_pow_vjp(s: Any, a: Any, b: Any) -> Any:
    import sympy

    return sympy.Piecewise((s * b / a, sympy.Ne(a, 0)), (s * b * a ** (b - 1), True))


# pow_vjp(s, a, b) is (s·b)/a away from a = 0, s·L(a, b) at a = 0, where L = b·a**(b-1) (its
# limit; 0 where b = 0). Its derivatives, branch by branch (at a = 0 the log term of
# d/db a**(b-1) is dropped, log(1) for log(0), as JAX and autograd do): ∂/∂s = pow_vjp(1, a, b);
# ∂/∂a = -out/a, and s·b·L(a, b - 1) = pow_vjp(s·b, a, b - 1) at 0; ∂/∂b = s/a, and
# s·a**(b-1) at 0. Each is exact at a = 0 (the Hessian of x**y there is its limit).


def _pow_vjp_vjp(bar: Any, out: Any, s: Any, a: Any, b: Any) -> tuple:
    e = b - 1.0
    u = bar * s
    return (call("pow_vjp", bar, a, b),
            call("where", a, -((bar * out) / a), call("pow_vjp", u * b, a, e)),
            call("where", a, u / a, u * (a ** e)))


def _pow_vjp_jvp(tangents: tuple, out: Any, s: Any, a: Any, b: Any) -> Any:
    # Away from 0: (ṡ·b + s·ḃ - out·ȧ)/a; at 0: a**(b-1)·(ṡ·b + s·ḃ) + pow_vjp(s·b·ȧ, a, b-1).
    ts, ta, tb = tangents
    e = b - 1.0
    w = None if ts is None else ts * b
    if tb is not None:
        w = s * tb if w is None else call("add_mul", w, s, tb)
    if ta is None:
        return None if w is None else call("where", a, w / a, (a ** e) * w)
    r = call("pow_vjp", (s * b) * ta, a, e)
    if w is None:
        return call("where", a, -(out * ta) / a, r)
    return call("where", a, call("sub_mul", w, out, ta) / a, call("add_mul", r, a ** e, w))


RECORDS: list[Primitive] = [
    # tanh′ = 1 - y², y = tanh(x): bar · (1 - square(y)).
    Primitive("tanh_vjp", 2, "{0} * (1.0 - xp.square({1}))", "tanh′·", internal=True,
              c="{0} * (1.0 - {1} * {1})", operations=3,
              partials=lambda out, g, y: (1.0 - call("square", y), -(2.0 * (g * y))),
              vjp=lambda bar, out, g, y: (call("tanh_vjp", bar, y),
                                          -(2.0 * ((bar * g) * y))),
              sympy=lambda g, y: g * (1 - y**2)),
    # σ′ = y(1 - y), y = σ(x): bar · (y · (1 - y)).
    Primitive("sigmoid_vjp", 2, "{0} * ({1} * (1.0 - {1}))", "σ′·", internal=True,
              c="{0} * ({1} * (1.0 - {1}))", operations=3,
              partials=lambda out, g, y: (y * (1.0 - y), g * (1.0 - 2.0 * y)),
              vjp=lambda bar, out, g, y: (call("sigmoid_vjp", bar, y),
                                          (bar * g) * (1.0 - 2.0 * y)),
              sympy=lambda g, y: g * (y * (1 - y))),
    # relu′(x) = step(x) = 1(x ≥ 0): bar · step(x), so relu′(0) = 1 and inf · 0 = nan as the
    # unfused product gives (not a select, which would give 0).
    Primitive("relu_vjp", 2, "{0} * xp.astype({1} >= 0.0, xp.float64)", "relu′·",
              internal=True, c="{0} * ({1} >= 0.0 ? 1.0 : 0.0)", operations=2,
              partials=lambda out, g, x: (call("step", x), None),
              vjp=lambda bar, out, g, x: (call("relu_vjp", bar, x), None),
              sympy=_sympy_relu_vjp,
              c_vector="a0 * CG_ONE_IF(a1 >= 0.0)"),
    # |x|′ = sign(x): bar · sign(x), 0 at x = 0.
    Primitive("abs_vjp", 2, "{0} * xp.sign({1})", "|x|′·", internal=True,
              c="{0} * cg_sign({1})", operations=2,
              partials=lambda out, g, x: (call("sign", x), None),
              vjp=lambda bar, out, g, x: (call("abs_vjp", bar, x), None),
              sympy=_sympy_call("sign"),
              c_vector="a0 * cgv_sign(w, a1)"),
    # (x²)′ = 2x: bar · (2 · x).
    Primitive("square_vjp", 2, "{0} * (2.0 * {1})", "(x²)′·", internal=True,
              c="{0} * (2.0 * {1})", operations=2,
              partials=lambda out, g, x: (2.0 * x, 2.0 * g),
              vjp=lambda bar, out, g, x: (call("square_vjp", bar, x), call("square_vjp", bar, g)),
              sympy=lambda g, x: g * (2 * x)),
    # sin′ = cos: bar · cos(x); its x-derivative -bar·sin(x) is -cos_vjp.
    Primitive("sin_vjp", 2, "{0} * xp.cos({1})", "sin′·", internal=True,
              c="{0} * cos({1})", operations=2,
              partials=lambda out, g, x: (call("cos", x), -call("cos_vjp", g, x)),
              vjp=lambda bar, out, g, x: (call("sin_vjp", bar, x), -call("cos_vjp", bar * g, x)),
              sympy=_sympy_call("cos"),
              c_vector="a0 * cgv_cos(w, a1)", c_sincos=(1, "a0 * C")),
    # cos′ = -sin: the node is bar · sin(x), the contribution with its sign carried (the
    # sweep subtracts it), as the unfused rule -(bar · sin(x)) is summed.
    Primitive("cos_vjp", 2, "{0} * xp.sin({1})", "−cos′·", internal=True,
              c="{0} * sin({1})", operations=2,
              partials=lambda out, g, x: (call("sin", x), call("sin_vjp", g, x)),
              vjp=lambda bar, out, g, x: (call("cos_vjp", bar, x), call("sin_vjp", bar * g, x)),
              sympy=_sympy_call("sin"),
              c_vector="a0 * cgv_sin(w, a1)", c_sincos=(1, "a0 * S")),
    # √′ = 1/(2y), y = √x: 0.5 · (bar / y), as sqrt's own vjp orders it.
    Primitive("sqrt_vjp", 2, "0.5 * ({0} / {1})", "√′·", internal=True,
              c="0.5 * ({0} / {1})", operations=2,
              partials=lambda out, g, y: (0.5 / y, -(out / y)),
              vjp=lambda bar, out, g, y: (call("sqrt_vjp", bar, y), -((bar * out) / y)),
              sympy=lambda g, y: g / (2 * y)),
]

# ∂(a**b)/∂a for a variable exponent, bar·b·a**(b-1): ((bar·out)·b)/a as the textbook rule
# computes it (bit for bit) where a ≠ 0, and its limit where a = 0, which the textbook's 0/0
# misses (0 at b = 2, 1 at b = 1, inf at b = 0.5, 0 at b = 0: JAX's and autograd's values);
# for b < 0 the textbook's ±inf at a = 0 (bar·out, out = a**b recomputed: exact at 0).
# s is where(a, bar·out, bar): bar·out away from 0 (shared with the exponent's contribution),
# bar at 0, where bar·out = 0 has lost it. Three arguments: the tape's instructions hold three.
RECORDS.append(
    Primitive("pow_vjp", 3, "_sp.pow_vjp({0}, {1}, {2})", "(xʸ)′·", internal=True,
              c="({1} != 0.0 ? {0} * {2} / {1} : {2} < 0.0 ? {0} * cg_pow({1}, {2}) * {2} / {1}"
                " : {0} * ({2} != 0.0 ? {2} * cg_pow({1}, {2} - 1.0) : 0.0))",
              operations=3, vjp=_pow_vjp_vjp, jvp=_pow_vjp_jvp, sympy=_sympy_pow_vjp))

FUSED_VJPS: frozenset[str] = frozenset(p.name for p in RECORDS)
"""The fused contributions: each is linear in its first argument (bar), so a carried sign
passes through it exactly."""

# Accumulations: a product contribution ``u·v`` (``bar * b`` of a ``mul`` node, most of all)
# summed into the adjoint it adds to, in one node: two roundings, the product's and the sum's,
# as the two nodes it replaces (not a fused multiply-add: the C lowerings compile with
# -ffp-contract=off), with the operands in their order, so the numbers are the same bit for
# bit. The chain rule's fan-out sums (one per use of a node beyond its first) are a sixth of
# an adjoint; most add a fresh product.
ACCUMULATIONS: list[Primitive] = [
    Primitive("add_mul", 3, "{0} + {1} * {2}", "+×", internal=True,
              c="{0} + {1} * {2}", operations=2,
              partials=lambda out, a, u, v: (1.0, v, u), sympy=lambda a, u, v: a + u * v),
    Primitive("sub_mul", 3, "{0} - {1} * {2}", "−×", internal=True,
              c="{0} - {1} * {2}", operations=2,
              partials=lambda out, a, u, v: (1.0, -v, -u), sympy=lambda a, u, v: a - u * v),
    # u·v − a: the product first, as the subtraction it replaces reads it.
    Primitive("mul_sub", 3, "{1} * {2} - {0}", "×−", internal=True,
              c="{1} * {2} - {0}", operations=2,
              partials=lambda out, a, u, v: (-1.0, v, u), sympy=lambda a, u, v: u * v - a),
]
RECORDS += ACCUMULATIONS

ACCUMULATE: dict[str, str] = {"add": "add_mul", "sub": "sub_mul", "rsub": "mul_sub"}
"""The accumulation that replaces ``old + u·v`` ("add"), ``old - u·v`` ("sub") and
``u·v - old`` ("rsub")."""
