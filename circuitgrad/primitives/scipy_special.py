"""SciPy's special functions that objectives call on traced values: ``scipy.special``'s ufuncs
reach ``__array_ufunc__`` by their ``__name__`` (the records' ``numpy`` names), so
``scipy.special.logit(x)`` traces as the ``logit`` record. ``expit`` is ``sigmoid``
(elementwise.py), ``erf`` and ``erfc`` are there too.

The NumPy column of each template is SciPy's own function (``_sp.logit`` is
``scipy.special.logit``: the traced function computes what SciPy computes); the other array
libraries take theirs (``jax.scipy.special``, ``torch.special``, ``cupyx.scipy.special``) or
the standard form (arrays.py). Derivatives: ``logit′ = 1/(x(1 − x))``; ``xlogy`` (0 where
x = 0, as SciPy) has the partials ``(log y, x/y)`` and ``xlog1py`` ``(log1p y, x/(1 + y))``,
JAX's; ``gammaln′ = digamma``, ``digamma′ = polygamma(1, ·)`` and
``polygamma(n, ·)′ = polygamma(n + 1, ·)`` (a family closed under differentiation: every order
is exact); ``erfinv′ = √π/2 · exp(erfinv²)``, reusing the node.

C forms: ``xlogy`` and ``xlog1py`` are SciPy's formulas over libm (the same bits); ``logit``
is SciPy's two-range formula, 2 ulp from SciPy's at most. ``gammaln``, ``digamma``,
``polygamma`` and ``erfinv`` have none, a refusal stated in the record (``c_refusal``):
libm's ``lgamma`` is hundreds of ulps from SciPy's ``gammaln`` near its zeros, and libm has
no digamma, polygamma or erfinv; ``to_tape`` and ``to_c`` refuse them by name, ``to_numpy``
runs them.

    >>> from circuitgrad.primitives import evaluate
    >>> float(evaluate("xlogy", (0.0, 0.0))), float(evaluate("logit", (0.5,)))
    (0.0, 0.0)
"""

from __future__ import annotations

import math
from typing import Any

from .core import Primitive, call

_HALF_SQRT_PI = math.sqrt(math.pi) / 2.0

_NO_LIBM = ("libm has no {0} (and circuitgrad no C form of SciPy's): to_numpy runs it, "
            "on NumPy or another array library")


def _sympy(build: Any) -> Any:
    def form(*args: Any, **params: Any) -> Any:
        import sympy

        return build(sympy, *args, **params)

    return form


def _polygamma_label(shapes: Any = None, n: int = 0) -> str:
    return f"ψ⁽{n}⁾"


RECORDS: list[Primitive] = [
    # logit(p) = log(p/(1 − p)), SciPy's: ±inf at 1 and 0, NaN outside [0, 1].
    Primitive("logit", 1, "_sp.logit({0})", "logit", numpy=("logit",),
              partials=lambda out, x: (1.0 / (x * (1.0 - x)),),
              vjp=lambda bar, out, x: (bar / (x * (1.0 - x)),),
              c="({0} < 0.3 || {0} > 0.65 ? log({0} / (1.0 - {0})) : "
                "log1p(2.0 * ({0} - 0.5)) - log1p(-2.0 * ({0} - 0.5)))",
              sympy=_sympy(lambda sp, x: sp.log(x / (1 - x)))),
    # xlogy(x, y) = x·log(y), 0 where x = 0 (and y is not NaN), SciPy's; ∂ = (log y, x/y).
    Primitive("xlogy", 2, "_sp.xlogy({0}, {1})", "x·log y", numpy=("xlogy",),
              partials=lambda out, x, y: (call("log", y), x / y),
              c="({0} == 0.0 && {1} == {1} ? 0.0 : {0} * log({1}))",
              sympy=_sympy(lambda sp, x, y: x * sp.log(y))),
    # xlog1py(x, y) = x·log1p(y), 0 where x = 0; ∂ = (log1p y, x/(1 + y)).
    Primitive("xlog1py", 2, "_sp.xlog1py({0}, {1})", "x·log1p y", numpy=("xlog1py",),
              partials=lambda out, x, y: (call("log1p", y), x / (1.0 + y)),
              c="({0} == 0.0 && {1} == {1} ? 0.0 : {0} * log1p({1}))",
              sympy=_sympy(lambda sp, x, y: x * sp.log(1 + y))),
    # gammaln(x) = log|Γ(x)|; gammaln′ = digamma.
    Primitive("gammaln", 1, "_sp.gammaln({0})", "logΓ", numpy=("gammaln",),
              partials=lambda out, x: (call("digamma", x),),
              c_refusal="libm's lgamma is hundreds of ulps from SciPy's gammaln near its zeros "
                        "(x = 1, 2 and the negative roots): to_numpy runs it, on NumPy or "
                        "another array library",
              sympy=_sympy(lambda sp, x: sp.loggamma(x))),
    # digamma = ψ = Γ′/Γ (scipy.special.psi); digamma′ = polygamma(1, ·).
    Primitive("digamma", 1, "_sp.digamma({0})", "ψ", numpy=("psi",),
              partials=lambda out, x: (call("polygamma", x, n=1),),
              c_refusal=_NO_LIBM.format("digamma"),
              sympy=_sympy(lambda sp, x: sp.polygamma(0, x))),
    # polygamma(n, x) = ψ⁽ⁿ⁾(x), the derivatives of digamma (made by the rules above).
    Primitive("polygamma", 1, lambda x, shapes, n: f"_sp.polygamma({n!r}, {x})", "ψ⁽ⁿ⁾",
              params=("n",), example={"n": 1}, internal=True, label_of=_polygamma_label,
              partials=lambda out, x, n: (call("polygamma", x, n=n + 1),),
              c_refusal=_NO_LIBM.format("polygamma"),
              sympy=_sympy(lambda sp, x, n: sp.polygamma(n, x))),
    # erfinv, the inverse of erf on (-1, 1): ±inf at ±1; erfinv′ = √π/2 · exp(erfinv²).
    Primitive("erfinv", 1, "_sp.erfinv({0})", "erf⁻¹", numpy=("erfinv",),
              partials=lambda out, x: (_HALF_SQRT_PI * call("exp", call("square", out)),),
              c_refusal=_NO_LIBM.format("erfinv"),
              sympy=_sympy(lambda sp, x: sp.erfinv(x))),
]
