"""The elementwise primitives: arithmetic, the elementary functions of the notes, and the
special functions real objectives use (log1p, softplus, erf, atan2, hypot, maximum, clip ...).

Each record's comment states its convention where f is not differentiable or not finite
(gathered in docs/semantics.md). The masks (comparisons) and ``where`` are in compare.py.
"""

from __future__ import annotations

import math
from typing import Any

from .core import Primitive, call, scaled

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_LN2, _LN10 = math.log(2.0), math.log(10.0)


def _sympy(name: str, build: Any) -> Any:
    """A sympy form built with sympy's functions (imported on first use)."""
    def form(*args: Any) -> Any:
        import sympy

        return build(sympy, *args)

    form.__name__ = f"_sympy_{name}"
    return form


def _safe(out: Any) -> Any:
    # out, with 1 where out is 0: x/|x|-style partials are then 0 at the origin, not 0/0.
    return call("where", call("equal", out, 0.0), 1.0, out)


def _split(a: Any, b: Any, wins: str) -> Any:
    # ∂max(a, b)/∂a: 1 where a wins, 0 where b wins, ½ at a tie (split evenly, as JAX and
    # PyTorch do); exactly representable, so no rounding.
    return call("where", call("equal", a, b), 0.5, call(wins, a, b))


def _chosen(out: Any, a: Any, b: Any) -> Any:
    # ∂fmax(a, b)/∂a: 1 where a is returned, ½ at a tie (exact: no rounding).
    return call("where", call("equal", a, b), 0.5, call("equal", out, a))


_PI2 = -math.pi**2  # sinc's rule: d/dx j_n(πx)/(πx)ⁿ = -π²·x·j_(n+1)(πx)/(πx)ⁿ⁺¹


def _float_power_partials(out: Any, a: Any, b: Any) -> tuple:
    c = b.constant
    if c is not None:
        return c * call("float_power", a, c - 1.0), None
    return b * call("float_power", a, b - 1.0), out * _log_base(out, a)


def _float_power_vjp(bar: Any, out: Any, a: Any, b: Any) -> tuple:
    # As pow's: a constant exponent scales bar by c·a^(c-1); a variable one shares bar·out
    # (NaN at a = 0 for the base, as pow's: docs/semantics.md).
    if b.constant is not None:
        return scaled(bar, _float_power_partials(out, a, b)[0]), None
    t = bar * out
    return t * b / a, t * _log_base(out, a)


def _atan2_vjp(bar: Any, out: Any, y: Any, x: Any) -> tuple:
    # ∂atan2(y, x) = (x, -y) / (x² + y²) = (x/h, -y/h) / h, h = hypot(y, x): neither x² + y²
    # nor 1/h² is formed, so nothing overflows or underflows at 1e200 or 1e-300 (7 nodes).
    h = call("hypot", y, x)
    t = bar / h
    return t * (x / h), -(t * (y / h))


def _atan2_partials(out: Any, y: Any, x: Any) -> tuple:
    h = call("hypot", y, x)
    return (x / h) / h, -((y / h) / h)


def _hypot_vjp(bar: Any, out: Any, a: Any, b: Any) -> tuple:
    t = bar / _safe(out)
    return t * a, t * b


def _pow_partials(out: Any, a: Any, b: Any) -> tuple:
    c = b.constant
    if c is not None:
        # x**c for a constant c never goes through log(x): x**2 at x = -3 gives -6.
        return (c * a ** (c - 1.0) if c != 2.0 else 2.0 * a), None
    return b * a ** (b - 1.0), out * _log_base(out, a)


def _log_base(out: Any, a: Any) -> Any:
    # log(a) for ∂(a**b)/∂b = out·log(a), with log(1) = 0 where out = 0: the limit 0 of
    # d/db 0**b for b > 0 (JAX's, autograd's), not 0·(-inf) = nan; elsewhere where out = 0
    # (an underflow) out·log(a) is 0 anyway, except a < 0, where it gives 0, not nan.
    return call("log", call("where", out, a, 1.0))  # out as the condition: one node


def _pow_template(a: str, b: str, shapes: tuple, batched: tuple) -> str:
    # NumPy's own power for a scalar constant exponent (its sqrt, x*x and 1/x rule applies);
    # the helper for an array of exponents (a variable, an array constant), which applies the
    # rule entry by entry where NumPy's power would take C's pow.
    return f"xp.pow({a}, {b})" if not batched[1] and not shapes[1] else f"_sp.pow({a}, {b})"


def _pow_vjp(bar: Any, out: Any, a: Any, b: Any) -> tuple:
    if b.constant is not None:
        return tuple(None if p is None else scaled(bar, p) for p in _pow_partials(out, a, b))
    # Non-constant exponent: both contributions share bar·out. The textbook form: at a = 0
    # the a-contribution is 0·b/0 = nan (pow_vjp, the fused rule, is its limit there); the
    # b-contribution is its limit 0 where out = 0 (_log_base).
    t = bar * out
    return t * b / a, t * _log_base(out, a)


def _pow_fused(bar: Any, out: Any, a: Any, b: Any) -> tuple:
    if b.constant is not None:
        return _pow_vjp(bar, out, a, b)
    # The a-contribution as one node, pow_vjp(s, a, b): (s·b)/a with s = bar·out where a ≠ 0
    # (the textbook's numbers), its limit bar·b·a**(b-1) where a = 0 (s = bar there).
    t = bar * out
    return call("pow_vjp", call("where", a, t, bar), a, b), t * _log_base(out, a)


def _sympy_sigmoid(x: Any) -> Any:
    import sympy

    return 1 / (1 + sympy.exp(-x))


def _sympy_relu(x: Any) -> Any:
    import sympy

    return sympy.Max(0, x)


def _sympy_step(x: Any) -> Any:
    import sympy

    return sympy.Heaviside(x, 1)


RECORDS: list[Primitive] = [
    Primitive("add", 2, "{0} + {1}", "+", numpy=("add",), partials=lambda out, a, b: (1.0, 1.0),
              c="{0} + {1}",
              sympy=lambda a, b: a + b, commutative=True),
    Primitive("sub", 2, "{0} - {1}", "−",
              numpy=("subtract",), partials=lambda out, a, b: (1.0, -1.0),
              c="{0} - {1}",
              sympy=lambda a, b: a - b),
    Primitive("mul", 2, "{0} * {1}", "×", numpy=("multiply",), partials=lambda out, a, b: (b, a),
              c="{0} * {1}",
              sympy=lambda a, b: a * b, commutative=True),
    Primitive("div", 2, "{0} / {1}", "÷",
              numpy=("divide",), partials=lambda out, a, b: (1.0 / b, -(out / b)),
              # bar/b is shared by both contributions: 3 nodes instead of 5.
              vjp=lambda bar, out, a, b: ((t := bar / b), -(t * out)),
              c="{0} / {1}",
              sympy=lambda a, b: a / b),
    # One rule for every exponent, constant or not, one point or many: pow(x, 0.5) is sqrt(x),
    # pow(x, 2) is x*x and pow(x, -1) is 1/x, which is what NumPy's power computes for a
    # scalar exponent (sqrt(-0.0) = -0.0 and sqrt(-inf) = nan, where C's pow gives 0.0 and inf).
    Primitive("pow", 2, _pow_template, "^", template_batched=True,
              numpy=("power",), partials=_pow_partials, vjp=_pow_vjp, fused=_pow_fused,
              c="cg_pow({0}, {1})",
              sympy=lambda a, b: a**b,
              libmvec=1, c_vector="cg_select(a1 == 0.5, cg_vsqrt(a0), "
              "cg_select(a1 == 2.0, a0 * a0, cg_select(a1 == -1.0, 1.0 / a0, "
              "CG_MVEC(vv_pow)(a0, a1))))"),
    Primitive("neg", 1, "-{0}", "−",
              c="-{0}",
              numpy=("negative",), partials=lambda out, x: (-1.0,), sympy=lambda x: -x),
    Primitive("sin", 1, "xp.sin({0})", "sin",
              numpy=("sin",), partials=lambda out, x: (call("cos", x),),
              fused=lambda bar, out, x: (call("sin_vjp", bar, x),),
              c="sin({0})",
              sympy="sin",
              libmvec=3, c_vector="cg_vsin(a0)", c_vector_ulps=1, c_sincos=(0, "S")),
    Primitive("cos", 1, "xp.cos({0})", "cos",
              numpy=("cos",), partials=lambda out, x: (-call("sin", x),),
              fused=lambda bar, out, x: (-call("cos_vjp", bar, x),),
              c="cos({0})",
              sympy="cos",
              libmvec={8: 3, 4: 3, 2: 4}, c_vector="cg_vcos(a0)", c_vector_ulps=1,
              c_sincos=(0, "C")),
    Primitive("tanh", 1, "xp.tanh({0})", "tanh", numpy=("tanh",),
              c="tanh({0})",
              partials=lambda out, x: (1.0 - call("square", out),), sympy="tanh",
              fused=lambda bar, out, x: (call("tanh_vjp", bar, out),),
              libmvec={8: 0, 4: 2, 2: 2}),
    # exp′ = exp: the rule reuses the forward node.
    Primitive("exp", 1, "xp.exp({0})", "exp",
              c="exp({0})",
              numpy=("exp",), partials=lambda out, x: (out,), sympy="exp",
              libmvec=3, c_vector="cg_vexp(a0)", c_vector_ulps=1),
    # log′(x) = 1/x; log(0) = -inf and log′(0) = inf, as IEEE says.
    Primitive("log", 1, "xp.log({0})", "log", numpy=("log",), partials=lambda out, x: (1.0 / x,),
              c="log({0})",
              vjp=lambda bar, out, x: (bar / x,), sympy="log",
              libmvec=2),
    Primitive("sqrt", 1, "xp.sqrt({0})", "√",
              numpy=("sqrt",), partials=lambda out, x: (0.5 / out,),
              c="sqrt({0})",
              vjp=lambda bar, out, x: (0.5 * (bar / out),), sympy="sqrt",
              fused=lambda bar, out, x: (call("sqrt_vjp", bar, out),),
              c_vector="cg_vsqrt(a0)"),
    Primitive("square", 1, "xp.square({0})", "x²",
              numpy=("square",), partials=lambda out, x: (2.0 * x,),
              fused=lambda bar, out, x: (call("square_vjp", bar, x),),
              c="{0} * {0}",
              sympy=lambda x: x**2),
    # |x|′ = sign(x), so |x|′(0) = 0 by convention.
    Primitive("abs", 1, "xp.abs({0})", "|x|",
              numpy=("absolute",), partials=lambda out, x: (call("sign", x),),
              fused=lambda bar, out, x: (call("abs_vjp", bar, x),),
              c="fabs({0})",
              sympy="Abs",
              c_vector="(cg_v)((cg_m)a0 & ~(cg_m)CG_C(-0.0))"),
    # relu′(z) = 1(z ≥ 0), the notes' convention: relu′(0) = 1.
    Primitive("relu", 1, "xp.maximum({0}, 0.0)", "relu",
              c="cg_maximum({0}, 0.0)",
              partials=lambda out, x: (call("step", x),), sympy=_sympy_relu,
              fused=lambda bar, out, x: (call("relu_vjp", bar, x),),
              c_vector="cg_vmaximum(a0, CG_C(0.0))"),
    # sigmoid is scipy.special.expit (this record, by its ufunc's name) as SciPy computes it:
    # e = exp(-|x|), then 1/(1 + e) for x ≥ 0 and e/(1 + e) below: one exp, no overflow
    # (sigmoid(∓1000) = 0, 1; subnormal results kept), within 2 ulps of the exact value
    # (exp(-logaddexp(0, -x)) was up to 32 off near x = -700: logaddexp's rounding, in e^x).
    # sigmoid′ = σ(1 − σ) reuses the forward node.
    Primitive("sigmoid", 1, "_sp.sigmoid({0})", "σ", numpy=("expit",),
              c="cg_sigmoid({0})",
              partials=lambda out, x: (out * (1.0 - out),), sympy=_sympy_sigmoid,
              fused=lambda bar, out, x: (call("sigmoid_vjp", bar, out),),
              # cg_vsigmoid (vector_math.h): cg_sigmoid's operations on vectors, at -O2
              c_vector="cg_vsigmoid(a0)"),
    # step(z) = 1(z ≥ 0), relu's derivative; its own derivative is 0 (None: never built).
    # A comparison, not np.heaviside (10x slower); step(nan) = 0.
    Primitive("step", 1, "xp.astype({0} >= 0.0, xp.float64)", "1(≥0)",
              partials=lambda out, x: (None,),
              c="({0} >= 0.0 ? 1.0 : 0.0)",
              sympy=_sympy_step,
              c_vector="CG_ONE_IF(a0 >= 0.0)"),
    Primitive("sign", 1, "xp.sign({0})", "sign", numpy=("sign",), partials=lambda out, x: (None,),
              c="cg_sign({0})",
              sympy="sign",
              c_vector="cg_select(a0 > 0.0, CG_C(1.0), cg_select(a0 < 0.0, CG_C(-1.0), "
              "cg_select(a0 == 0.0, CG_C(0.0), a0)))"),
    # -- the special functions of real objectives ---------------------------------------------
    # log1p(x) = log(1 + x), exact for tiny x; log1p(-1) = -inf with no warning (the edge).
    Primitive("log1p", 1, "_sp.log1p({0})", "log1p", numpy=("log1p",),
              partials=lambda out, x: (1.0 / (1.0 + x),),
              vjp=lambda bar, out, x: (bar / (1.0 + x),),
              c="log1p({0})",
              sympy=_sympy("log1p", lambda sp, x: sp.log(1 + x)),
              libmvec=2),
    # expm1′ = exp = expm1 + 1, reusing the node.
    Primitive("expm1", 1, "xp.expm1({0})", "expm1", numpy=("expm1",),
              partials=lambda out, x: (out + 1.0,),
              c="expm1({0})",
              sympy=_sympy("expm1", lambda sp, x: sp.exp(x) - 1),
              libmvec={8: 2, 4: 3, 2: 3}),
    # softplus(x) = log(1 + eˣ) = logaddexp(0, x): softplus(1000) = 1000, softplus(-1000) = 0,
    # no overflow; softplus′ = sigmoid (0 and 1 at ∓1000).
    Primitive("softplus", 1, "xp.logaddexp(0.0, {0})", "softplus",
              partials=lambda out, x: (call("sigmoid", x),),
              c="cg_logaddexp(0.0, {0})",
              sympy=_sympy("softplus", lambda sp, x: sp.log(1 + sp.exp(x))),
              c_vector="cg_vlogaddexp(w, CG_C(0.0), a0)"),
    # erf′(x) = 2/√π · exp(-x²); erfc = 1 - erf without the cancellation (erfc(10) = 2e-45).
    Primitive("erf", 1, "_sp.erf({0})", "erf", numpy=("erf",),
              partials=lambda out, x: (_TWO_OVER_SQRT_PI * call("exp", -call("square", x)),),
              c="erf({0})",
              sympy="erf",
              libmvec=3),
    Primitive("erfc", 1, "_sp.erfc({0})", "erfc", numpy=("erfc",),
              partials=lambda out, x: (-_TWO_OVER_SQRT_PI * call("exp", -call("square", x)),),
              c="erfc({0})",
              sympy="erfc",
              libmvec=515),
    # tan′ = 1 + tan², reusing the node.
    Primitive("tan", 1, "xp.tan({0})", "tan", numpy=("tan",),
              c="tan({0})",
              partials=lambda out, x: (1.0 + call("square", out),), sympy="tan",
              libmvec={8: 4, 4: 3, 2: 3}),
    # asin′ = 1/√(1 - x²), acos′ = -1/√(1 - x²): ±inf at ±1 (IEEE division), nan outside.
    Primitive("asin", 1, "xp.asin({0})", "asin", numpy=("arcsin",),
              partials=lambda out, x: (1.0 / call("sqrt", 1.0 - call("square", x)),),
              vjp=lambda bar, out, x: (bar / call("sqrt", 1.0 - call("square", x)),),
              c="asin({0})",
              sympy="asin",
              libmvec=3),
    Primitive("acos", 1, "xp.acos({0})", "acos", numpy=("arccos",),
              partials=lambda out, x: (-(1.0 / call("sqrt", 1.0 - call("square", x))),),
              vjp=lambda bar, out, x: (-(bar / call("sqrt", 1.0 - call("square", x))),),
              c="acos({0})",
              sympy="acos",
              libmvec=2),
    Primitive("atan", 1, "xp.atan({0})", "atan", numpy=("arctan",),
              partials=lambda out, x: (1.0 / (1.0 + call("square", x)),),
              c="atan({0})",
              vjp=lambda bar, out, x: (bar / (1.0 + call("square", x)),), sympy="atan",
              libmvec=3),
    # atan2(y, x): the angle of the point (x, y), in (-π, π], all four quadrants; its partials
    # (x, -y)/(x² + y²) are nan at the origin (0/0), where the angle jumps.
    Primitive("atan2", 2, "xp.atan2({0}, {1})", "atan2", numpy=("arctan2",),
              c="atan2({0}, {1})",
              partials=_atan2_partials, vjp=_atan2_vjp, sympy="atan2",
              libmvec={8: 3, 4: 3, 2: 2}),
    Primitive("sinh", 1, "xp.sinh({0})", "sinh", numpy=("sinh",),
              c="sinh({0})",
              partials=lambda out, x: (call("cosh", x),), sympy="sinh",
              libmvec=3),
    Primitive("cosh", 1, "xp.cosh({0})", "cosh", numpy=("cosh",),
              c="cosh({0})",
              partials=lambda out, x: (call("sinh", x),), sympy="cosh",
              libmvec=2),
    Primitive("asinh", 1, "xp.asinh({0})", "asinh", numpy=("arcsinh",),
              partials=lambda out, x: (1.0 / call("sqrt", call("square", x) + 1.0),),
              vjp=lambda bar, out, x: (bar / call("sqrt", call("square", x) + 1.0),),
              c="asinh({0})",
              sympy="asinh",
              libmvec={8: 2, 4: 3, 2: 3}),
    # acosh(1) = 0; acosh′ = 1/√((x - 1)(x + 1)) (accurate near 1), inf at 1.
    Primitive("acosh", 1, "xp.acosh({0})", "acosh", numpy=("arccosh",),
              partials=lambda out, x: (1.0 / call("sqrt", (x - 1.0) * (x + 1.0)),),
              vjp=lambda bar, out, x: (bar / call("sqrt", (x - 1.0) * (x + 1.0)),),
              c="acosh({0})",
              sympy="acosh",
              libmvec={8: 2, 4: 3, 2: 3}),
    # atanh(±1) = ±inf with no warning; atanh′ = 1/((1 - x)(1 + x)).
    Primitive("atanh", 1, "_sp.atanh({0})", "atanh", numpy=("arctanh",),
              partials=lambda out, x: (1.0 / ((1.0 - x) * (1.0 + x)),),
              c="atanh({0})",
              vjp=lambda bar, out, x: (bar / ((1.0 - x) * (1.0 + x)),), sympy="atanh",
              libmvec={8: 2, 4: 3, 2: 3}),
    Primitive("log2", 1, "xp.log2({0})", "log₂", numpy=("log2",),
              partials=lambda out, x: (1.0 / (x * _LN2),),
              vjp=lambda bar, out, x: (bar / (x * _LN2),),
              c="log2({0})",
              sympy=_sympy("log2", lambda sp, x: sp.log(x, 2)),
              libmvec=2),
    Primitive("log10", 1, "xp.log10({0})", "log₁₀", numpy=("log10",),
              partials=lambda out, x: (1.0 / (x * _LN10),),
              vjp=lambda bar, out, x: (bar / (x * _LN10),),
              c="log10({0})",
              sympy=_sympy("log10", lambda sp, x: sp.log(x, 10)),
              # (the 2-lane function gives the 4-lane one's bits; both are 1 ulp off at exact
              # cases: log10(1e7) = 7.000000000000001)
              libmvec=3),
    Primitive("exp2", 1, "_sp.exp2({0})", "2ˣ", numpy=("exp2",),
              c="exp2({0})",
              partials=lambda out, x: (out * _LN2,), sympy=_sympy("exp2", lambda sp, x: 2**x),
              libmvec={8: 1, 4: 2, 2: 2}),
    # hypot(a, b) = √(a² + b²) without overflow (hypot(3e200, 4e200) = 5e200); its partials
    # (a, b)/hypot are 0 at the origin (the middle of the subgradients; PyTorch's choice for
    # norms, JAX gives nan there).
    Primitive("hypot", 2, "xp.hypot({0}, {1})", "hypot", numpy=("hypot",),
              partials=lambda out, a, b: (a / _safe(out), b / _safe(out)), vjp=_hypot_vjp,
              c="hypot({0}, {1})",
              sympy=_sympy("hypot", lambda sp, a, b: sp.sqrt(a**2 + b**2)),
              libmvec={8: 1, 4: 1, 2: 2}),
    # floor, ceil, round: piecewise constant, derivative 0 everywhere, also at the jumps (as
    # JAX and PyTorch). round is NumPy's: halves to even (round(0.5) = 0, round(1.5) = 2).
    Primitive("floor", 1, "xp.floor({0})", "⌊x⌋", numpy=("floor",),
              c="floor({0})",
              partials=lambda out, x: (None,), sympy="floor",
              c_vector="cg_vround(a0, 0x9)"),
    Primitive("ceil", 1, "xp.ceil({0})", "⌈x⌉", numpy=("ceil",),
              c="ceil({0})",
              partials=lambda out, x: (None,), sympy="ceiling",
              c_vector="cg_vround(a0, 0xA)"),
    Primitive("round", 1, "xp.round({0})", "round", numpy=("rint",),
              c="rint({0})",
              partials=lambda out, x: (None,),
              c_vector="cg_vround(a0, 0x4)"),
    # maximum, minimum: at a tie the derivative is split evenly, ½ to each argument (as
    # jax.numpy.maximum and torch.maximum), so maximum(x, x)′ = 1; NaN propagates.
    Primitive("maximum", 2, "xp.maximum({0}, {1})", "max", numpy=("maximum",),
              partials=lambda out, a, b: ((p := _split(a, b, "greater")), 1.0 - p),
              c="cg_maximum({0}, {1})",
              sympy="Max",
              c_vector="cg_vmaximum(a0, a1)"),
    Primitive("minimum", 2, "xp.minimum({0}, {1})", "min", numpy=("minimum",),
              partials=lambda out, a, b: ((p := _split(a, b, "less")), 1.0 - p),
              c="cg_minimum({0}, {1})",
              sympy="Min",
              c_vector="cg_vminimum(a0, a1)"),
    # clip(x, lo, hi) = minimum(maximum(x, lo), hi): ∂/∂x = 1 on the closed interval
    # lo ≤ x ≤ hi (also at its ends, as torch.clamp), ∂/∂lo = 1(x < lo), ∂/∂hi = 1(x > hi).
    Primitive("clip", 3, "xp.minimum(xp.maximum({0}, {1}), {2})", "clip",
              partials=lambda out, x, lo, hi: (call("equal", out, x), call("less", x, lo),
                                               call("greater", x, hi)),
              c="cg_minimum(cg_maximum({0}, {1}), {2})",
              sympy=_sympy("clip", lambda sp, x, lo, hi: sp.Min(sp.Max(x, lo), hi)),
              c_vector="cg_vminimum(cg_vmaximum(a0, a1), a2)"),
    # logaddexp(a, b) = log(eᵃ + eᵇ) without overflow; ∂/∂a = exp(a - out), reusing the node.
    Primitive("logaddexp", 2, "xp.logaddexp({0}, {1})", "logaddexp", numpy=("logaddexp",),
              partials=lambda out, a, b: (call("exp", a - out), call("exp", b - out)),
              c="cg_logaddexp({0}, {1})",
              sympy=_sympy("logaddexp", lambda sp, a, b: sp.log(sp.exp(a) + sp.exp(b))),
              c_vector="cg_vlogaddexp(w, a0, a1)"),
    # cbrt′(x) = 1/(3·cbrt(x)²), from the node itself; at x = 0 it is inf, the limit.
    # libmvec's cbrt is 4 ulp from NumPy's baseline cbrt at every width (2·10⁷ inputs, specials
    # identical; 2 from NumPy's AVX-512 one at 8 lanes): over VECTOR_ULPS, so to_c runs it lane
    # by lane.
    Primitive("cbrt", 1, "_sp.cbrt({0})", "∛", numpy=("cbrt",), c="cbrt({0})", libmvec=4,
              partials=lambda out, x: (1.0 / (3.0 * call("square", out)),),
              vjp=lambda bar, out, x: (bar / (3.0 * call("square", out)),),
              sympy=_sympy("cbrt", lambda sp, x: sp.sign(x) * sp.Abs(x) ** sp.Rational(1, 3))),
    # -- NumPy's division and rounding ufuncs, fmax/fmin, logaddexp2 (issue 26) ----------------
    # remainder(a, b) = a - b·⌊a/b⌋ with the divisor's sign (Python's %, NumPy's npy_divmod:
    # remainder(-1, 3) = 2, remainder(1, -inf) = -inf, a zero has b's sign); NaN where b = 0
    # or a = ±inf. ∂/∂a = 1 and ∂/∂b = -floor_divide(a, b): the derivative of the piece a lies
    # on, also at the jumps (a multiple of b), where the right-hand piece is taken.
    Primitive("remainder", 2, "xp.remainder({0}, {1})", "mod", numpy=("remainder",),
              partials=lambda out, a, b: (1.0, -call("floor_divide", a, b)),
              c="cg_remainder({0}, {1})",
              sympy=_sympy("remainder", lambda sp, a, b: sp.Mod(a, b))),
    # floor_divide(a, b) = ⌊a/b⌋ as NumPy's npy_divmod computes it ((a - fmod(a, b))/b, moved
    # and snapped to an integer, so that a = b·floor_divide + remainder as closely as can be);
    # a/b where b = 0 (±inf, NaN at 0/0). Piecewise constant: derivative 0, also at the jumps.
    Primitive("floor_divide", 2, "xp.floor_divide({0}, {1})", "//", numpy=("floor_divide",),
              partials=lambda out, a, b: (None, None),
              c="cg_floor_divide({0}, {1})",
              sympy=_sympy("floor_divide", lambda sp, a, b: sp.floor(a / b))),
    # fmod(a, b) = a - b·trunc(a/b), C's fmod: the sign of a (fmod(-1, 3) = -1). ∂/∂a = 1,
    # ∂/∂b = -trunc(a/b), the integer (a - out)/b (rounded: exact where a - out is not).
    Primitive("fmod", 2, "_sp.fmod({0}, {1})", "fmod", numpy=("fmod",),
              partials=lambda out, a, b: (1.0, -call("round", (a - out) / b)),
              c="fmod({0}, {1})",
              sympy=_sympy("fmod", lambda sp, a, b: sp.sign(a) * sp.Mod(sp.Abs(a), sp.Abs(b)))),
    # fmax, fmin: NumPy's NaN-ignoring maximum and minimum (NaN only where both are NaN; the
    # first argument at a tie). The derivative goes to the argument returned (out == a), and
    # is split evenly at a tie, as maximum's; where one argument is NaN, the other gets 1.
    Primitive("fmax", 2, "_sp.fmax({0}, {1})", "fmax", numpy=("fmax",),
              partials=lambda out, a, b: ((p := _chosen(out, a, b)), 1.0 - p),
              c="cg_fmax({0}, {1})",
              sympy="Max"),
    Primitive("fmin", 2, "_sp.fmin({0}, {1})", "fmin", numpy=("fmin",),
              partials=lambda out, a, b: ((p := _chosen(out, a, b)), 1.0 - p),
              c="cg_fmin({0}, {1})",
              sympy="Min"),
    # logaddexp2(a, b) = log2(2ᵃ + 2ᵇ) without overflow (NumPy's npy_logaddexp2: a + 1 at a
    # tie); ∂/∂a = 2^(a - out), reusing the node, as logaddexp's.
    Primitive("logaddexp2", 2, "_sp.logaddexp2({0}, {1})", "logaddexp2", numpy=("logaddexp2",),
              partials=lambda out, a, b: (call("exp2", a - out), call("exp2", b - out)),
              c="cg_logaddexp2({0}, {1})",
              sympy=_sympy("logaddexp2", lambda sp, a, b: sp.log(2**a + 2**b, 2))),
    # float_power(a, b) = C's pow everywhere (NumPy's float_power: float_power(-0.0, 0.5) = 0.0
    # where power's sqrt gives -0.0); the partials are pow's, with float_power itself.
    Primitive("float_power", 2, "_sp.float_power({0}, {1})", "^", numpy=("float_power",),
              partials=_float_power_partials, vjp=_float_power_vjp,
              c="pow({0}, {1})",
              sympy=lambda a, b: a**b),
    # sinc(x) = sin(πx)/(πx), NumPy's (1 at 0). sinc′(x) = -π²·x·sinc_d(x, 1), and sinc_d's own
    # derivative the same with n + 1: each factor smooth, so every derivative at 0 is exact
    # (sinc′(0) = 0, sinc″(0) = -π²/3) and none is a 0/0.
    Primitive("sinc", 1, "_sp.sinc({0})", "sinc",
              partials=lambda out, x: (_PI2 * (x * call("sinc_d", x, 1.0)),),
              c="cg_sinc({0})",
              sympy=_sympy("sinc", lambda sp, x: sp.sinc(sp.pi * x))),
    # sinc_d(x, n) = j_n(πx)/(πx)ⁿ (spherical Bessel j_n; n a constant integer in [0, 64], else
    # NaN): internal, made by sinc's rule and its own.
    Primitive("sinc_d", 2, "_sp.sinc_d({0}, {1})", "sinc⁽ⁿ⁾", internal=True,
              partials=lambda out, x, n: (_PI2 * (x * call("sinc_d", x, n + 1.0)), None),
              c="cg_sinc_d({0}, {1})",
              sympy=_sympy("sinc_d", lambda sp, x, n: sp.jn(int(n), sp.pi * x)
                           / (sp.pi * x) ** int(n))),
]

