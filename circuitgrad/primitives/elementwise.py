"""The elementwise primitives: arithmetic and the elementary functions of the notes.

Each record's comment states its convention where f is not differentiable or not finite
(gathered in docs/semantics.md).
"""

from __future__ import annotations

from typing import Any

from .core import Primitive, call


def _pow_partials(out: Any, a: Any, b: Any) -> tuple:
    c = b.constant
    if c is not None:
        # x**c for a constant c never goes through log(x): x**2 at x = -3 gives -6.
        return (c * a ** (c - 1.0) if c != 2.0 else 2.0 * a), None
    return b * a ** (b - 1.0), out * call("log", a)


def _pow_vjp(bar: Any, out: Any, a: Any, b: Any) -> tuple:
    if b.constant is not None:
        return tuple(None if p is None else bar * p for p in _pow_partials(out, a, b))
    # Non-constant exponent: both contributions share bar·out. At a = 0 this gives nan, as
    # the b-derivative out·log(a) does there anyway.
    t = bar * out
    return t * b / a, t * call("log", a)


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
              sympy=lambda a, b: a + b, commutative=True),
    Primitive("sub", 2, "{0} - {1}", "−",
              numpy=("subtract",), partials=lambda out, a, b: (1.0, -1.0),
              sympy=lambda a, b: a - b),
    Primitive("mul", 2, "{0} * {1}", "×", numpy=("multiply",), partials=lambda out, a, b: (b, a),
              sympy=lambda a, b: a * b, commutative=True),
    Primitive("div", 2, "{0} / {1}", "÷",
              numpy=("divide",), partials=lambda out, a, b: (1.0 / b, -(out / b)),
              # bar/b is shared by both contributions: 3 nodes instead of 5.
              vjp=lambda bar, out, a, b: ((t := bar / b), -(t * out)),
              sympy=lambda a, b: a / b),
    Primitive("pow", 2, "_np.power({0}, {1})", "^",
              numpy=("power",), partials=_pow_partials, vjp=_pow_vjp,
              sympy=lambda a, b: a**b),
    Primitive("neg", 1, "-{0}", "−",
              numpy=("negative",), partials=lambda out, x: (-1.0,), sympy=lambda x: -x),
    Primitive("sin", 1, "_np.sin({0})", "sin",
              numpy=("sin",), partials=lambda out, x: (call("cos", x),),
              sympy="sin"),
    Primitive("cos", 1, "_np.cos({0})", "cos",
              numpy=("cos",), partials=lambda out, x: (-call("sin", x),),
              sympy="cos"),
    Primitive("tanh", 1, "_np.tanh({0})", "tanh", numpy=("tanh",),
              partials=lambda out, x: (1.0 - call("square", out),), sympy="tanh"),
    # exp′ = exp: the rule reuses the forward node.
    Primitive("exp", 1, "_np.exp({0})", "exp",
              numpy=("exp",), partials=lambda out, x: (out,), sympy="exp"),
    # log′(x) = 1/x; log(0) = -inf and log′(0) = inf, as IEEE says.
    Primitive("log", 1, "_np.log({0})", "log", numpy=("log",), partials=lambda out, x: (1.0 / x,),
              vjp=lambda bar, out, x: (bar / x,), sympy="log"),
    Primitive("sqrt", 1, "_np.sqrt({0})", "√",
              numpy=("sqrt",), partials=lambda out, x: (0.5 / out,),
              vjp=lambda bar, out, x: (0.5 * (bar / out),), sympy="sqrt"),
    Primitive("square", 1, "_np.square({0})", "x²",
              numpy=("square",), partials=lambda out, x: (2.0 * x,),
              sympy=lambda x: x**2),
    # |x|′ = sign(x), so |x|′(0) = 0 by convention.
    Primitive("abs", 1, "_np.abs({0})", "|x|",
              numpy=("absolute",), partials=lambda out, x: (call("sign", x),),
              sympy="Abs"),
    # relu′(z) = 1(z ≥ 0), the notes' convention: relu′(0) = 1.
    Primitive("relu", 1, "_np.maximum({0}, 0.0)", "relu",
              partials=lambda out, x: (call("step", x),), sympy=_sympy_relu),
    # Stable for every float: sigmoid(-1000) = 0 and sigmoid(1000) = 1 with no overflow.
    # sigmoid′ = σ(1 − σ) reuses the forward node.
    Primitive("sigmoid", 1, "_np.exp(-_np.logaddexp(0.0, -{0}))", "σ",
              partials=lambda out, x: (out * (1.0 - out),), sympy=_sympy_sigmoid),
    # step(z) = 1(z ≥ 0), relu's derivative; its own derivative is 0 (None: never built).
    # A comparison, not np.heaviside (10x slower); step(nan) = 0.
    Primitive("step", 1, "({0} >= 0.0).astype(_np.float64)", "1(≥0)",
              partials=lambda out, x: (None,),
              sympy=_sympy_step),
    Primitive("sign", 1, "_np.sign({0})", "sign", numpy=("sign",), partials=lambda out, x: (None,),
              sympy="sign"),
]

