"""The elementary functions, for traced Python functions: ``cg.sin(x)``, ``cg.relu(z)`` ...

Each one builds a node when given a circuit value and computes with NumPy (through the
primitive table's own code) when given plain numbers, so a traced function also runs on
numbers.

Every function here is one record of the table applied (its name is the record's, its
positional arguments the record's arguments, its keywords the record's ``params``); a function
that builds several records would be a *composition*, listed in :data:`COMPOSITIONS` with the
records it builds (none today). ``__all__`` is read from the functions defined here, and
``circuitgrad/__init__.py`` exports it as it is; tests/primitives/test_public_api.py checks both against
the table.

    >>> import circuitgrad as cg
    >>> float(cg.relu(-2.0)), float(cg.sigmoid(0.0))
    (0.0, 0.5)
    >>> cg.trace(lambda x: cg.sin(x) * cg.exp(x)).size
    3
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .value import Value
from .primitives import call, evaluate


def _apply(name: str, *args: Any, **params: Any) -> Any:
    if any(isinstance(a, Value) for a in args):
        return call(name, *args, **params)  # the rules' own way of building a node
    with np.errstate(all="ignore"):
        return evaluate(name, tuple(np.asarray(a, dtype=np.float64) for a in args), params)


def sin(x: Any) -> Any:
    """sin(x).

    >>> float(sin(0.0))
    0.0
    >>> import circuitgrad as cg
    >>> cg.trace(lambda x: cg.sin(x)).size
    1
    """
    return _apply("sin", x)


def cos(x: Any) -> Any:
    """cos(x).

    >>> float(cos(0.0))
    1.0
    """
    return _apply("cos", x)


def tanh(x: Any) -> Any:
    """tanh(x).

    >>> float(tanh(0.0))
    0.0
    """
    return _apply("tanh", x)


def exp(x: Any) -> Any:
    """e to the x.

    >>> float(exp(0.0))
    1.0
    """
    return _apply("exp", x)


def log(x: Any) -> Any:
    """Natural logarithm: log(0) = -inf, log of a negative number is nan.

    >>> float(log(1.0)), float(log(0.0))
    (0.0, -inf)
    """
    return _apply("log", x)


def sqrt(x: Any) -> Any:
    """Square root.

    >>> float(sqrt(9.0))
    3.0
    """
    return _apply("sqrt", x)


def square(x: Any) -> Any:
    """x².

    >>> float(square(-3.0))
    9.0
    """
    return _apply("square", x)


def abs(x: Any) -> Any:  # noqa: A001 - the name users expect
    """|x|, with derivative sign(x) (0 at 0).

    >>> float(abs(-2.5))
    2.5
    """
    return _apply("abs", x)


def relu(x: Any) -> Any:
    """max(x, 0), with derivative 1(x ≥ 0) as the notes write.

    >>> float(relu(-2.0)), float(relu(3.0))
    (0.0, 3.0)
    """
    return _apply("relu", x)


def sigmoid(x: Any) -> Any:
    """1 / (1 + e⁻ˣ), computed stably for every float.

    >>> float(sigmoid(0.0)), float(sigmoid(-1000.0))
    (0.5, 0.0)
    """
    return _apply("sigmoid", x)


def step(x: Any) -> Any:
    """1(x ≥ 0): relu's derivative.

    >>> float(step(0.0)), float(step(-0.5))
    (1.0, 0.0)
    """
    return _apply("step", x)


def sign(x: Any) -> Any:
    """-1, 0 or 1.

    >>> float(sign(-4.0)), float(sign(0.0))
    (-1.0, 0.0)
    """
    return _apply("sign", x)


def transpose(x: Any) -> Any:
    """The transpose of a matrix (a vector or scalar is its own transpose).

    >>> transpose([[1.0, 2.0]]).shape
    (2, 1)
    """
    return _apply("transpose", x)


def sum(x: Any, axis: int | None = None) -> Any:  # noqa: A001
    """The sum of all entries, or along ``axis``.

    >>> float(sum([[1.0, 2.0], [3.0, 4.0]])), sum([[1.0, 2.0], [3.0, 4.0]], axis=0).tolist()
    (10.0, [4.0, 6.0])
    """
    return _apply("sum", x, axis=axis) if axis is not None else _apply("sum", x)


def mean(x: Any, axis: int | None = None) -> Any:
    """The mean of all entries, or along ``axis``.

    >>> float(mean([1.0, 2.0, 6.0]))
    3.0
    """
    return _apply("mean", x, axis=axis) if axis is not None else _apply("mean", x)


def outer(a: Any, b: Any) -> Any:
    """The outer product of two vectors.

    >>> outer([1.0, 2.0], [3.0, 4.0, 5.0]).shape
    (2, 3)
    """
    return _apply("outer", a, b)


def _reduce(name: str, x: Any, axis: int | None) -> Any:
    return _apply(name, x, axis=axis) if axis is not None else _apply(name, x)


# -- the special functions ---------------------------------------------------------------------

def log1p(x: Any) -> Any:
    """log(1 + x), exact for tiny x; log1p(-1) = -inf.

    >>> float(log1p(1e-20)), float(log1p(-1.0))
    (1e-20, -inf)
    """
    return _apply("log1p", x)


def expm1(x: Any) -> Any:
    """eˣ - 1, exact for tiny x.

    >>> float(expm1(1e-20))
    1e-20
    """
    return _apply("expm1", x)


def softplus(x: Any) -> Any:
    """log(1 + eˣ), stable: softplus(1000) = 1000; its derivative is sigmoid(x).

    >>> float(softplus(1000.0)), float(softplus(-1000.0))
    (1000.0, 0.0)
    """
    return _apply("softplus", x)


def erf(x: Any) -> Any:
    """The error function, 2/√π ∫₀ˣ exp(-t²) dt.

    >>> float(erf(0.0)), f"{float(erf(1.0)):.6f}"
    (0.0, '0.842701')
    """
    return _apply("erf", x)


def erfc(x: Any) -> Any:
    """1 - erf(x), without the cancellation for large x.

    >>> float(erfc(10.0)) > 0
    True
    """
    return _apply("erfc", x)


def tan(x: Any) -> Any:
    """tan(x).

    >>> float(tan(0.0))
    0.0
    """
    return _apply("tan", x)


def asin(x: Any) -> Any:
    """arcsin(x), in [-π/2, π/2].

    >>> float(asin(1.0)) * 2
    3.141592653589793
    """
    return _apply("asin", x)


def acos(x: Any) -> Any:
    """arccos(x), in [0, π].

    >>> float(acos(-1.0))
    3.141592653589793
    """
    return _apply("acos", x)


def atan(x: Any) -> Any:
    """arctan(x), in (-π/2, π/2).

    >>> float(atan(1.0)) * 4
    3.141592653589793
    """
    return _apply("atan", x)


def atan2(y: Any, x: Any) -> Any:
    """The angle of the point (x, y), in (-π, π]: all four quadrants.

    >>> float(atan2(1.0, -1.0)), float(atan2(-1.0, -1.0))
    (2.356194490192345, -2.356194490192345)
    """
    return _apply("atan2", y, x)


def sinh(x: Any) -> Any:
    """sinh(x).

    >>> float(sinh(0.0))
    0.0
    """
    return _apply("sinh", x)


def cosh(x: Any) -> Any:
    """cosh(x).

    >>> float(cosh(0.0))
    1.0
    """
    return _apply("cosh", x)


def asinh(x: Any) -> Any:
    """arsinh(x).

    >>> float(asinh(0.0))
    0.0
    """
    return _apply("asinh", x)


def acosh(x: Any) -> Any:
    """arcosh(x), for x ≥ 1: acosh(1) = 0.

    >>> float(acosh(1.0))
    0.0
    """
    return _apply("acosh", x)


def atanh(x: Any) -> Any:
    """artanh(x), for -1 ≤ x ≤ 1: atanh(1) = inf.

    >>> float(atanh(0.0)), float(atanh(1.0))
    (0.0, inf)
    """
    return _apply("atanh", x)


def log2(x: Any) -> Any:
    """The base-2 logarithm.

    >>> float(log2(8.0))
    3.0
    """
    return _apply("log2", x)


def log10(x: Any) -> Any:
    """The base-10 logarithm.

    >>> float(log10(1000.0))
    3.0
    """
    return _apply("log10", x)


def exp2(x: Any) -> Any:
    """2 to the x.

    >>> float(exp2(3.0))
    8.0
    """
    return _apply("exp2", x)


def hypot(a: Any, b: Any) -> Any:
    """√(a² + b²) without overflow.

    >>> float(hypot(3 * 2.0**700, 4 * 2.0**700)) == 5 * 2.0**700  # about 5e210
    True
    """
    return _apply("hypot", a, b)


def floor(x: Any) -> Any:
    """The largest integer ≤ x (derivative 0).

    >>> float(floor(-1.5))
    -2.0
    """
    return _apply("floor", x)


def ceil(x: Any) -> Any:
    """The smallest integer ≥ x (derivative 0).

    >>> float(ceil(-1.5))
    -1.0
    """
    return _apply("ceil", x)


def round(x: Any) -> Any:  # noqa: A001
    """The nearest integer, halves to even as NumPy (derivative 0).

    >>> float(round(0.5)), float(round(1.5))
    (0.0, 2.0)
    """
    return _apply("round", x)


def maximum(a: Any, b: Any) -> Any:
    """The larger of a and b, elementwise (at a tie, each gets half the derivative).

    >>> float(maximum(1.0, 2.0))
    2.0
    """
    return _apply("maximum", a, b)


def minimum(a: Any, b: Any) -> Any:
    """The smaller of a and b, elementwise (at a tie, each gets half the derivative).

    >>> float(minimum(1.0, 2.0))
    1.0
    """
    return _apply("minimum", a, b)


def clip(x: Any, lo: Any, hi: Any) -> Any:
    """x limited to [lo, hi]: minimum(maximum(x, lo), hi); derivative 1 on [lo, hi].

    >>> clip([-2.0, 0.5, 3.0], 0.0, 1.0).tolist()
    [0.0, 0.5, 1.0]
    """
    return _apply("clip", x, lo, hi)


def where(cond: Any, a: Any, b: Any) -> Any:
    """``a`` where ``cond`` is nonzero (a mask such as ``x > 0``), else ``b``.

    >>> where([1.0, 0.0], [1.0, 2.0], [3.0, 4.0]).tolist()
    [1.0, 4.0]
    >>> import circuitgrad as cg
    >>> c = cg.trace(lambda x: cg.where(x > 0, x, 0.1 * x))
    >>> float(cg.to_numpy(c)(-2.0))
    -0.2
    """
    return _apply("where", cond, a, b)


def logaddexp(a: Any, b: Any) -> Any:
    """log(eᵃ + eᵇ) without overflow.

    >>> float(logaddexp(1000.0, 1000.0))
    1000.6931471805599
    """
    return _apply("logaddexp", a, b)



def remainder(a: Any, b: Any) -> Any:
    """a mod b with the divisor's sign, NumPy's remainder and Python's % (derivative 1 and -a // b).

    >>> float(remainder(-1.0, 3.0)), float(remainder(1.0, -3.0))
    (2.0, -2.0)
    """
    return _apply("remainder", a, b)


def floor_divide(a: Any, b: Any) -> Any:
    """⌊a / b⌋ as NumPy's floor_divide and Python's // compute it (derivative 0).

    >>> float(floor_divide(-7.0, 2.0))
    -4.0
    """
    return _apply("floor_divide", a, b)


def fmod(a: Any, b: Any) -> Any:
    """C's fmod: a - b·trunc(a / b), with the sign of a (derivative 1 and -trunc(a / b)).

    >>> float(fmod(-1.0, 3.0))
    -1.0
    """
    return _apply("fmod", a, b)


def fmax(a: Any, b: Any) -> Any:
    """The larger of a and b, ignoring NaN (NaN only where both are).

    >>> float(fmax(float('nan'), 1.0))
    1.0
    """
    return _apply("fmax", a, b)


def fmin(a: Any, b: Any) -> Any:
    """The smaller of a and b, ignoring NaN (NaN only where both are).

    >>> float(fmin(2.0, float('nan')))
    2.0
    """
    return _apply("fmin", a, b)


def logaddexp2(a: Any, b: Any) -> Any:
    """log₂(2ᵃ + 2ᵇ) without overflow.

    >>> float(logaddexp2(1000.0, 1000.0))
    1001.0
    """
    return _apply("logaddexp2", a, b)


def float_power(a: Any, b: Any) -> Any:
    """a to the b with C's pow everywhere, as NumPy's float_power (float_power(-0.0, 0.5) = 0.0).

    >>> float(float_power(-0.0, 0.5))
    0.0
    """
    return _apply("float_power", a, b)


def sinc(x: Any) -> Any:
    """NumPy's sinc, sin(πx)/(πx) with sinc(0) = 1; every derivative exact at 0.

    >>> float(sinc(0.0)), f"{float(sinc(0.5)):.12f}"
    (1.0, '0.636619772368')
    """
    return _apply("sinc", x)

# -- masks: 1.0 where the comparison holds, 0.0 elsewhere ---------------------------------------

def less(a: Any, b: Any) -> Any:
    """The mask a < b (also ``a < b`` on traced values).

    >>> less([1.0, 2.0], 2.0).tolist()
    [1.0, 0.0]
    """
    return _apply("less", a, b)


def less_equal(a: Any, b: Any) -> Any:
    """The mask a ≤ b.

    >>> less_equal([1.0, 2.0], 2.0).tolist()
    [1.0, 1.0]
    """
    return _apply("less_equal", a, b)


def greater(a: Any, b: Any) -> Any:
    """The mask a > b.

    >>> greater([1.0, 3.0], 2.0).tolist()
    [0.0, 1.0]
    """
    return _apply("greater", a, b)


def greater_equal(a: Any, b: Any) -> Any:
    """The mask a ≥ b.

    >>> greater_equal([1.0, 2.0], 2.0).tolist()
    [0.0, 1.0]
    """
    return _apply("greater_equal", a, b)


def equal(a: Any, b: Any) -> Any:
    """The mask a == b (0 where either is nan).

    >>> equal([1.0, 2.0], 2.0).tolist()
    [0.0, 1.0]
    """
    return _apply("equal", a, b)


def not_equal(a: Any, b: Any) -> Any:
    """The mask a != b (1 where either is nan).

    >>> not_equal([1.0, 2.0], 2.0).tolist()
    [1.0, 0.0]
    """
    return _apply("not_equal", a, b)


def logical_and(a: Any, b: Any) -> Any:
    """The mask "a and b", nonzero values being true (also ``a & b`` on traced values).

    >>> logical_and([1.0, 1.0], [0.0, 2.0]).tolist()
    [0.0, 1.0]
    """
    return _apply("logical_and", a, b)


def logical_or(a: Any, b: Any) -> Any:
    """The mask "a or b" (also ``a | b`` on traced values).

    >>> logical_or([0.0, 0.0], [0.0, 2.0]).tolist()
    [0.0, 1.0]
    """
    return _apply("logical_or", a, b)


def logical_not(a: Any) -> Any:
    """The mask "not a" (also ``~a`` on traced values).

    >>> logical_not([0.0, 3.0]).tolist()
    [1.0, 0.0]
    """
    return _apply("logical_not", a)


# -- reductions, each over all entries or along ``axis`` ----------------------------------------

def max(x: Any, axis: int | None = None) -> Any:  # noqa: A001
    """The largest entry, or along ``axis`` (ties share the derivative evenly).

    >>> float(max([1.0, 3.0, 2.0])), max([[1.0, 4.0], [3.0, 2.0]], axis=0).tolist()
    (3.0, [3.0, 4.0])
    """
    return _reduce("max", x, axis)


def min(x: Any, axis: int | None = None) -> Any:  # noqa: A001
    """The smallest entry, or along ``axis`` (ties share the derivative evenly).

    >>> float(min([1.0, 3.0, 2.0]))
    1.0
    """
    return _reduce("min", x, axis)


def prod(x: Any, axis: int | None = None) -> Any:
    """The product of the entries, or along ``axis``.

    >>> float(prod([2.0, 3.0, 4.0]))
    24.0
    """
    return _reduce("prod", x, axis)


def norm(x: Any, axis: int | None = None) -> Any:
    """The 2-norm (Frobenius for a matrix), or along ``axis``; no overflow at 1e200.

    >>> float(norm([3.0, 4.0])), float(norm([3 * 2.0**700, 4 * 2.0**700])) == 5 * 2.0**700
    (5.0, True)
    """
    return _reduce("norm", x, axis)


def logsumexp(x: Any, axis: int | None = None) -> Any:
    """log Σ exp(x), stable (shifted by the maximum), or along ``axis``.

    >>> float(logsumexp([1000.0, 1000.0]))
    1000.6931471805599
    """
    return _reduce("logsumexp", x, axis)


def softmax(x: Any, axis: int | None = None) -> Any:
    """exp(x) / Σ exp(x), stable, over all entries or along ``axis``.

    >>> softmax([1000.0, 1000.0]).tolist()
    [0.5, 0.5]
    """
    return _reduce("softmax", x, axis)


def log_softmax(x: Any, axis: int | None = None) -> Any:
    """x - logsumexp(x), stable, over all entries or along ``axis``: log-probabilities.

    >>> log_softmax([1000.0, 0.0]).tolist()
    [0.0, -1000.0]
    """
    return _reduce("log_softmax", x, axis)


# -- linear algebra (primitives/linalg.py): np.linalg's functions trace as they are; these are
# the ones SciPy has (its functions convert with np.asarray, so they cannot trace) and the
# records themselves.


def solve(a: Any, b: Any) -> Any:
    """A⁻¹ b (``np.linalg.solve``: a 1-D b is a vector, else matrices (..., n, k)).

    >>> solve([[2.0, 0.0], [0.0, 4.0]], [1.0, 1.0]).tolist()
    [0.5, 0.25]
    """
    return _apply("solve", a, b)


def inv(a: Any) -> Any:
    """A⁻¹ (nan where A is singular).

    >>> inv([[2.0, 0.0], [0.0, 4.0]]).tolist()
    [[0.5, 0.0], [0.0, 0.25]]
    """
    return _apply("inv", a)


def det(a: Any) -> Any:
    """det A.

    >>> 5 - 1e-14 < float(det([[2.0, 1.0], [1.0, 3.0]])) < 5 + 1e-14  # (LAPACK's LU: rounding)
    True
    """
    return _apply("det", a)


def cholesky(a: Any) -> Any:
    """The lower factor L of A = L Lᵀ (A's lower triangle read; nan where A is not positive
    definite).

    >>> cholesky([[4.0, 2.0], [2.0, 5.0]]).tolist()
    [[2.0, 0.0], [1.0, 2.0]]
    """
    return _apply("cholesky", a)


def solve_triangular(a: Any, b: Any, lower: bool = False) -> Any:
    """T⁻¹ b for the lower (or, by default as in SciPy, upper) triangle T of ``a``:
    ``scipy.linalg.solve_triangular``.

    >>> solve_triangular([[2.0, 0.0], [1.0, 1.0]], [2.0, 3.0], lower=True).tolist()
    [1.0, 2.0]
    """
    return _apply("solve_triangular", a, b, lower=int(bool(lower)))  # (an int: JSON saves it)


def cho_factor(a: Any, lower: bool = False) -> tuple[Any, bool]:
    """``scipy.linalg.cho_factor``: the factor (upper U with A = UᵀU, or lower L) and
    ``lower``; the other triangle holds zeros (SciPy leaves A's entries there).

    >>> c, low = cho_factor([[4.0, 2.0], [2.0, 5.0]])
    >>> c.tolist(), low
    ([[2.0, 1.0], [0.0, 2.0]], False)
    """
    factor = cholesky(a)
    return (factor if lower else _transposed(factor)), bool(lower)


def cho_solve(c_and_lower: tuple[Any, bool], b: Any) -> Any:
    """``scipy.linalg.cho_solve``: A⁻¹ b from ``cho_factor``'s (factor, lower), as two
    triangular solves.

    >>> cho_solve(cho_factor([[4.0, 2.0], [2.0, 5.0]]), [6.0, 7.0]).tolist()
    [1.0, 1.0]
    """
    c, lower = c_and_lower
    factor = c if lower else _transposed(c)  # L, with A = L Lᵀ
    return solve_triangular(_transposed(factor), solve_triangular(factor, b, lower=True),
                            lower=False)


def _transposed(x: Any) -> Any:
    if isinstance(x, Value):
        return x.T if len(x.shape) == 2 else x.swapaxes(-1, -2)
    return np.swapaxes(np.asarray(x, dtype=np.float64), -1, -2)


def eigvalsh(a: Any) -> Any:
    """The eigenvalues of the symmetric matrix A's lower triangle stands for, ascending.

    >>> eigvalsh([[2.0, 0.0], [1.0, 3.0]]).round(6).tolist()
    [1.381966, 3.618034]
    """
    return _apply("eigvalsh", a)


def svdvals(a: Any) -> Any:
    """The singular values of A, descending.

    >>> svdvals([[3.0, 0.0], [0.0, -4.0]]).tolist()
    [4.0, 3.0]
    """
    return _apply("svdvals", a)


def pinv(a: Any, rtol: float = 1e-15) -> Any:
    """A⁺, the pseudo-inverse, singular values below ``rtol`` times the largest cut off
    (``np.linalg.pinv``'s default).

    >>> pinv([[2.0, 0.0], [0.0, 0.0]]).tolist()
    [[0.5, 0.0], [0.0, 0.0]]
    """
    # NumPy's default cutoff is the record's own (no param: a circuit JSON can save)
    return _apply("pinv", a) if float(rtol) == 1e-15 else _apply("pinv", a, rtol=float(rtol))


COMPOSITIONS: dict[str, tuple[str, ...]] = {
    "cho_factor": ("cholesky", "transpose"),
    "cho_solve": ("solve_triangular", "transpose"),
}
"""The public functions that are not one record, with the records each builds."""

__all__ = [name for name, value in list(globals().items())
           if callable(value) and getattr(value, "__module__", None) == __name__
           and not name.startswith("_")]
