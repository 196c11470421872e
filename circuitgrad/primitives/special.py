"""NumPy's column of the helper table (:data:`circuitgrad.primitives.arrays.HELPERS`): the
functions templates call as ``_sp`` because the array API standard lacks them, as NumPy computes
them. They are ``_sp`` in the generated code, the constant folding and the interpreter (one
namespace, :data:`NAMESPACE`, read by all three, so that they agree bit for bit); other array
libraries get theirs from the table.

Each function computes one node for a value of any batch shape: ``axis`` is a tuple of
negative (point) axes, counted from the end. ``erf``, ``erfc`` and the functions of
:mod:`~circuitgrad.primitives.scipy_special` (``logit``, ``gammaln`` ...) are scipy's, imported
on first use (``scipy.special`` takes half a second to import, and most programs never need
it). The reductions shift by the maximum (stable at logits of ±1000); ``norm`` scales by the
largest magnitude (no overflow at 1e200, no underflow at 1e-300).

    >>> import numpy as np
    >>> float(logsumexp(np.array([1000.0, 1000.0]), (-1,)))
    1000.6931471805599
    >>> float(norm(np.array([3.0, 4.0]) * 2.0**700, (-1,))) == 5 * 2.0**700  # about 5e210
    True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def __getattr__(name: str) -> Any:
    # erf, erfc: scipy's ufuncs, imported once, then module attributes like the others.
    if name in ("erf", "erfc", "logit", "xlogy", "xlog1py", "gammaln", "digamma", "erfinv"):
        import scipy.special

        fn = getattr(scipy.special, name)
        globals()[name] = fn
        return fn
    raise AttributeError(name)


# NumPy's own functions where the standard has none (gufuncs: the same bits for one point and
# for a batch of points).
exp2 = np.exp2
cbrt = np.cbrt
matvec = np.matvec
vecmat = np.vecmat


def sigmoid(x: Any) -> Any:
    """1 / (1 + e⁻ˣ) as SciPy's ``expit`` computes it, one exp of -|x| and one division:
    ``1 / (1 + e)`` for x ≥ 0, ``e / (1 + e)`` below (no overflow; subnormal results down to
    x ≈ -745 kept): at most 2 ulps from the exact value on 6,000 points of [-745, 40].

        >>> float(sigmoid(np.float64(0.0))), float(sigmoid(np.float64(-1000.0))), float(sigmoid(np.float64(-720.0))) > 0
        (0.5, 0.0, True)
    """
    e = np.exp(-np.abs(x))
    return np.where(x >= 0.0, 1.0, e) / (1.0 + e)


def pow(a: Any, b: Any) -> Any:
    """``a ** b`` with NumPy's rule for a scalar exponent wherever ``b`` is 0.5, 2 or -1 (sqrt,
    square, reciprocal: sqrt(-inf) = nan where C's pow gives inf), also where ``b`` is an array
    of exponents, for which ``np.power`` would take C's pow: a point of a batch is the point.

        >>> pow(np.array([-np.inf, 4.0]), np.array([0.5, 0.5]))
        array([nan,  2.])
    """
    with np.errstate(invalid="ignore"):
        out = np.power(a, b)
        if np.ndim(b) == 0:
            return out
        for e, fn in ((0.5, np.sqrt), (2.0, np.square), (-1.0, np.reciprocal)):
            at = b == e
            if at.any():
                out[np.broadcast_to(at, out.shape)] = fn(np.broadcast_to(a, out.shape)[
                    np.broadcast_to(at, out.shape)])
    return out


def pow_vjp(s: Any, a: Any, b: Any) -> Any:
    """The adjoint contribution of ``a ** b`` to ``a`` (primitives/fused.py): ``(s·b)/a``
    where ``a ≠ 0`` (``s = bar·out``, the textbook rule bit for bit), its limit
    ``s·b·a**(b-1)`` at ``a = 0`` (``s = bar``; 0 where ``b = 0``), where the textbook is 0/0;
    for ``b < 0`` the textbook's ±inf there (``out`` recomputed, exact at 0); no warnings,
    since the branch not taken may divide by 0.

        >>> float(pow_vjp(1.0, 0.0, 2.0)), float(pow_vjp(1.0, 0.0, 1.0))
        (0.0, 1.0)
    """
    s, a, b = (np.asarray(v, dtype=np.float64) for v in (s, a, b))
    with np.errstate(all="ignore"):
        limit = s * np.where(b != 0.0, b * pow(a, b - 1.0), 0.0)
        # b < 0: out = ±inf at a = 0, and the textbook's ±inf is the limit, its sign too
        textbook = s * pow(a, b) * b / a
        return np.where(a != 0.0, s * b / a, np.where(b < 0.0, textbook, limit))[()]


def polygamma(n: int, x: Any) -> Any:
    """ψ⁽ⁿ⁾(x), SciPy's (a Python function of its ufuncs), a NumPy scalar for a scalar."""
    import scipy.special

    return np.asarray(scipy.special.polygamma(n, x))[()]


def einsum(subscripts: str, *operands: Any) -> Any:
    """The einsum record's contraction in NumPy (:func:`contract`), a NumPy scalar for a
    scalar.

        >>> float(einsum("...i,...i->...", np.ones(3), np.ones(3)))
        3.0
    """
    return np.asarray(contract(np, subscripts, *operands))[()]


def contract(xp: Any, subscripts: str, *operands: Any) -> Any:
    """The einsum record's normalized subscripts (``'...ij,...jk->...ik'``: batch axes in
    front, each letter once per operand) in the array namespace ``xp``, one algorithm for
    every library: each operand's letters that no other operand and not the output has summed
    first (moved last, joined, ``sum`` along the last axis), then a left fold of pairwise
    contractions, each one ``matmul`` of the two operands' axes grouped as (shared kept,
    free, summed) @ (shared kept, summed, free). A point's result does not depend on the batch
    around it (the matmul of each point, the sum of each row), so a batch equals its points
    bit for bit, as ``@`` does.
    """
    inputs, output = subscripts.replace("...", "").split("->")
    terms = inputs.split(",")
    values = list(operands)
    for k, term in enumerate(terms):
        elsewhere = "".join(terms[:k] + terms[k + 1:]) + output
        alone = [c for c in term if c not in elsewhere]
        if alone:
            values[k], terms[k] = _summed(xp, values[k], term, alone)
    value, term = values[0], terms[0]
    for k in range(1, len(terms)):
        later = "".join(terms[k + 1:]) + output
        value, term = _pair(xp, value, term, values[k], terms[k], later)
    rank = len(xp.asarray(value).shape) - len(term) if hasattr(value, "shape") else 0
    if term != output:
        value = xp.permute_dims(value, tuple(range(rank)) + tuple(rank + term.index(c)
                                                                  for c in output))
    return value


def _point(x: Any, term: str) -> tuple[int, tuple[int, ...]]:
    shape = tuple(getattr(x, "shape", ()))
    return len(shape) - len(term), shape


def _grouped(xp: Any, x: Any, term: str, groups: list[str]) -> Any:
    # x's point axes in the order of the groups' letters, each group joined into one axis
    rank, shape = _point(x, term)
    order = "".join(groups)
    if order != term:
        x = xp.permute_dims(x, tuple(range(rank)) + tuple(rank + term.index(c) for c in order))
    size = dict(zip(term, shape[rank:]))
    return xp.reshape(x, shape[:rank] + tuple(math.prod(size[c] for c in g) for g in groups))


def _summed(xp: Any, x: Any, term: str, alone: list[str]) -> tuple[Any, str]:
    rank, shape = _point(x, term)
    kept = "".join(c for c in term if c not in alone)
    size = dict(zip(term, shape[rank:]))
    x = xp.sum(_grouped(xp, xp.asarray(x), term, [kept, "".join(alone)]), axis=-1)
    return xp.reshape(x, shape[:rank] + tuple(size[c] for c in kept)), kept


def _pair(xp: Any, a: Any, ta: str, b: Any, tb: str, later: str) -> tuple[Any, str]:
    shared = "".join(c for c in ta if c in tb and c in later)
    summed = "".join(c for c in ta if c in tb and c not in later)
    free_a = "".join(c for c in ta if c not in tb)
    free_b = "".join(c for c in tb if c not in ta)
    ra, sa = _point(a, ta)
    rb, sb = _point(b, tb)
    size = dict(zip(ta, sa[ra:])) | dict(zip(tb, sb[rb:]))
    left = _grouped(xp, xp.asarray(a), ta, [shared, free_a, summed])
    right = _grouped(xp, xp.asarray(b), tb, [shared, summed, free_b])
    product = left @ right
    batch = tuple(product.shape[:len(product.shape) - 3])
    term = shared + free_a + free_b
    return xp.reshape(product, batch + tuple(size[c] for c in term)), term


def where(c: Any, a: Any, b: Any) -> Any:
    """``a`` where ``c`` is not 0, else ``b``; a NumPy scalar (not a 0-d array) for scalars, as
    every other node computes them."""
    return np.where(c != 0.0, a, b)[()]


def _shift(x: Any, axis: tuple[int, ...]) -> Any:
    # The maximum along axis, kept; 0 where it is not finite (all -inf, or an inf), so that
    # x - shift is never inf - inf.
    m = np.max(x, axis=axis, keepdims=True)
    return np.where(np.isfinite(m), m, 0.0)


def logsumexp(x: Any, axis: tuple[int, ...]) -> Any:
    """log Σ exp(x) along ``axis``: m + log Σ exp(x - m), m the maximum."""
    m = _shift(x, axis)
    with np.errstate(divide="ignore"):  # all -inf: log 0 = -inf, the exact value
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return np.squeeze(out, axis=axis)[()]


def softmax(x: Any, axis: tuple[int, ...]) -> Any:
    """exp(x - m) / Σ exp(x - m) along ``axis``."""
    e = np.exp(x - _shift(x, axis))
    return (e / np.sum(e, axis=axis, keepdims=True))[()]


def log_softmax(x: Any, axis: tuple[int, ...]) -> Any:
    """x - logsumexp(x) along ``axis``: (x - m) - log Σ exp(x - m)."""
    z = x - _shift(x, axis)
    with np.errstate(divide="ignore"):
        return (z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True)))[()]


def norm(x: Any, axis: tuple[int, ...]) -> Any:
    """The 2-norm along ``axis``: s · sqrt(Σ (x/s)²), s = max |x| (1 where that is 0)."""
    a = np.abs(x)
    s = np.max(a, axis=axis, keepdims=True)
    s = np.where(s == 0.0, 1.0, s)
    with np.errstate(invalid="ignore"):  # an inf entry: inf/inf; the result is inf below
        scaled = np.sqrt(np.sum(np.square(a / s), axis=axis, keepdims=True)) * s
    scaled = np.where(np.isinf(s), np.inf, scaled)
    return np.squeeze(scaled, axis=axis)[()]


def prod_others(x: Any, axis: tuple[int, ...], *vs: Any) -> Any:
    """For each entry, the product of the other entries along ``axis`` (exclusive products
    from the left times those from the right: exact where entries are 0, no division); with
    directions ``vs = (v₁ … vₘ)``, the derivative of that along them: entry ``l`` is the sum,
    over distinct entries ``i₁ … iₘ`` other than ``l``, of ``v₁[i₁] ··· vₘ[iₘ]`` times the
    product of the entries other than ``l, i₁ … iₘ`` (:func:`exclusive_products`).

        >>> prod_others(np.array([2.0, 0.0, 3.0]), (-1,)).tolist()
        [0.0, 6.0, 0.0]
        >>> prod_others(np.array([2.0, 0.0, 3.0]), (-1,), np.ones(3)).tolist()  # Σ_{i≠l} Π_{≠l,i}
        [3.0, 5.0, 2.0]
    """
    if vs:
        x, *vs = np.broadcast_arrays(x, *vs)
    if not axis:
        return (np.zeros_like(x) if vs else np.ones_like(x))[()]
    k = len(axis)
    moved = [np.moveaxis(a, axis, tuple(range(-k, 0))) for a in (x, *vs)]
    flat = [a.reshape(a.shape[: a.ndim - k] + (-1,)) for a in moved]
    if vs:
        n = flat[0].shape[-1]
        ones, zeros = np.ones(flat[0].shape[:-1]), np.zeros(flat[0].shape[:-1])
        columns = exclusive_products([[a[..., j] for j in range(n)] for a in flat],
                                     lambda u, v: u * v, lambda u, v: u + v, ones)
        out = np.stack([zeros if c is None else c for c in columns], axis=-1)
    else:
        f = flat[0]
        ones = np.ones(f.shape[:-1] + (1,))
        left = np.concatenate([ones, np.cumprod(f[..., :-1], axis=-1)], axis=-1)
        right = np.concatenate([ones, np.cumprod(f[..., :0:-1], axis=-1)], axis=-1)[..., ::-1]
        out = left * right
    out = out.reshape(moved[0].shape)
    return np.moveaxis(out, tuple(range(-k, 0)), axis)[()]


def exclusive_products(lanes: list[list[Any]], mul: Any, add: Any, one: Any) -> list[Any]:
    """The entries of ``prod_others(x, v₁ … vₘ)`` along one lane: ``lanes`` holds the lane's
    entries of ``x`` and of each ``vₐ`` (n each), ``mul``, ``add`` and ``one`` the arithmetic
    (NumPy arrays, or nodes of a builder: the same algorithm for the template, the array
    API and the scalar expansion). Entry l is the coefficient of t₁···tₘ in
    Π_{k≠l} (x[k] + Σₐ tₐ·vₐ[k]): squarefree polynomials in t (a dict from a subset of the
    directions, as a bitmask, to its coefficient; None for zero), multiplied from the left and
    from the right, O(n·m·2ᵐ) products, no division (exact where entries are 0).

        >>> exclusive_products([[2.0, 0.0, 3.0], [1.0, 1.0, 1.0]], float.__mul__,
        ...                    float.__add__, 1.0)
        [3.0, 5.0, 2.0]
    """
    x, vs = lanes[0], lanes[1:]
    m, n = len(vs), len(x)
    full = (1 << m) - 1

    def times(poly: dict, k: int) -> dict:
        # poly · (x[k] + Σₐ tₐ vₐ[k]), the terms of more than m directions dropped
        new = {bits: mul(c, x[k]) for bits, c in poly.items()}
        for bits, c in poly.items():
            for a in range(m):
                if not bits >> a & 1:
                    term = mul(c, vs[a][k])
                    key = bits | 1 << a
                    new[key] = term if key not in new else add(new[key], term)
        return new

    left = [{0: one}]
    for k in range(n - 1):
        left.append(times(left[-1], k))
    right = [{0: one}]
    for k in range(n - 1, 0, -1):
        right.append(times(right[-1], k))
    right.reverse()
    out = []
    for lp, rp in zip(left, right):
        total = None
        for bits, c in lp.items():
            if full ^ bits in rp:
                term = mul(c, rp[full ^ bits])
                total = term if total is None else add(total, term)
        out.append(total)
    return out


def log1p(x: Any) -> Any:
    """log(1 + x); ``log1p(-1) = -inf`` with no warning (the edge of the domain)."""
    with np.errstate(divide="ignore"):
        return np.log1p(x)


def atanh(x: Any) -> Any:
    """artanh(x); ``atanh(±1) = ±inf`` with no warning (the edges of the domain)."""
    with np.errstate(divide="ignore"):
        return np.arctanh(x)



# NumPy's ufuncs the standard lacks (remainder and floor_divide are in it, fmod is not).
fmod = np.fmod
logaddexp2 = np.logaddexp2
float_power = np.float_power


def fmax(a: Any, b: Any) -> Any:
    """NumPy's fmax with one answer at a tie of zeros: ``a`` where ``a >= b`` or ``b`` is NaN,
    else ``b`` (np.fmax's own SIMD loop returns the other zero, its scalar loop this one, so its
    result would depend on the array's length: a point of a batch would not be the point).

        >>> float(fmax(-0.0, 0.0)), float(fmax(np.nan, 1.0)), float(fmax(1.0, np.nan))
        (-0.0, 1.0, 1.0)
    """
    return np.where((a >= b) | np.isnan(b), a, b)[()]


def fmin(a: Any, b: Any) -> Any:
    """NumPy's fmin, the first argument at a tie (as :func:`fmax`)."""
    return np.where((a <= b) | np.isnan(b), a, b)[()]


def sinc(x: Any) -> Any:
    """NumPy's sinc: sin(πx)/(πx) with 1e-20 in place of x = 0 (so sinc(0) = 1).

        >>> float(sinc(0.0)), float(sinc(0.5)) == 2 / np.pi
        (1.0, True)
    """
    y = np.pi * np.where(x == 0, 1.0e-20, x)
    return (np.sin(y) / y)[()]


def sinc_d(x: Any, n: Any) -> Any:
    """j_n(z)/z^n at z = πx (j_n the spherical Bessel function; n = 0 is sinc): smooth and
    even, so ``d/dx sinc_d(x, n) = -π²·x·sinc_d(x, n + 1)`` holds at 0 too. NaN unless n is an
    integer in [0, 64]. The same operations as ``cg_sinc_d`` of the C prelude.

        >>> float(sinc_d(0.0, 1.0)) == 1 / 3, float(sinc_d(0.0, 2.0)) == 1 / 15
        (True, True)
    """
    return sinc_derivative(np, x, n)


def sinc_derivative(xp: Any, x: Any, n: Any) -> Any:
    """:func:`sinc_d` in the array namespace ``xp`` (n a number, or an array of them)."""
    if xp is np:  # a Python float would raise ZeroDivisionError in the branch not taken
        x = np.asarray(x, dtype=np.float64)
    if np.ndim(n) == 0:
        return _sinc_d(xp, x, float(n))
    if xp is not np:  # (the orders' loop below runs in NumPy: it would convert x to NumPy's)
        from ..errors import CircuitError

        raise CircuitError("sinc_d: an array of orders n (one per entry) is evaluated in "
                           f"NumPy only, not in {getattr(xp, '__name__', xp)}; circuitgrad's "
                           "derivatives of sinc give a number n")
    x, n = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(n, np.float64))
    out = np.full(x.shape, np.nan)
    for m in np.unique(n[(n >= 0) & (n <= 64) & (n == np.floor(n))]):
        at = n == m
        out[at] = _sinc_d(np, x[at], float(m))
    return out[()]


def _sinc_d(xp: Any, x: Any, n: float) -> Any:
    if not (0.0 <= n <= 64.0 and n == math.floor(n)):
        return x * math.nan
    m = int(n)
    z = math.pi * x
    t: Any = 1.0
    for k in range(1, m + 1):
        t = t / float(2 * k + 1)
    total, w = t, -0.5 * z * z
    for k in range(1, 61):  # the power series Σ (−z²/2)^k / (k! (2n + 2k + 1)!!)
        t = t * (w / float(k * (2 * m + 2 * k + 1)))
        total = total + t
    with np.errstate(divide="ignore", invalid="ignore"):  # the branch not taken at z = 0
        s, c = xp.sin(z), xp.cos(z)
        j0, j1 = s / z, s / (z * z) - c / z  # the upward recurrence, stable for |z| > n
        for k in range(1, m):
            j0, j1 = j1, float(2 * k + 1) / z * j1 - j0
        p: Any = 1.0
        for _ in range(m):
            p = p * z
        far = j0 if m == 0 else j1 / p
    return xp.where(xp.abs(z) < n + 2.0, total, far)[()] if xp is np else xp.where(
        xp.abs(z) < n + 2.0, total, far)


# -- linear algebra (primitives/linalg.py): NumPy's LAPACK routines, nan where they fail ------

def _nan_where_singular(fn: Any, *args: Any) -> Any:
    # NumPy raises LinAlgError for a whole batch if one point is singular (or, for cholesky,
    # not positive definite): the points that fail are nan, as log(0) is -inf, not an error.
    try:
        return fn(*args)
    except np.linalg.LinAlgError:
        pass
    lead = np.broadcast_shapes(*(np.shape(a)[:-2] for a in args))
    arrays = [np.broadcast_to(a, lead + np.shape(a)[-2:]) for a in args]
    out = None
    for index in np.ndindex(lead):
        try:
            value = fn(*(a[index] for a in arrays))
        except np.linalg.LinAlgError:
            value = None
        if out is None and value is not None:
            out = np.full(lead + value.shape, np.nan)
        if value is not None:
            out[index] = value
    if out is None:  # every point failed: the shape of one from a regular stand-in
        stand_in = [np.broadcast_to(np.eye(a.shape[-2], a.shape[-1]), a.shape[-2:])
                    for a in arrays[:1]] + [a[(0,) * len(lead)] for a in arrays[1:]]
        out = np.full(lead + np.shape(fn(*stand_in)), np.nan)
    return out


def solve(a: Any, b: Any) -> Any:
    """A⁻¹ b for matrices ``b`` (..., n, k) (a vector is a one-column matrix)."""
    return _nan_where_singular(np.linalg.solve, a, b)


def inv(a: Any) -> Any:
    """A⁻¹, nan at singular points."""
    return _nan_where_singular(np.linalg.inv, a)


def cholesky(a: Any) -> Any:
    """The lower factor L of A = L Lᵀ (reading A's lower triangle), nan where A is not
    positive definite."""
    return _nan_where_singular(np.linalg.cholesky, a)


def eigvalsh(a: Any) -> Any:
    """The eigenvalues of the symmetric matrix A's lower triangle stands for (nan where LAPACK
    does not converge: a matrix holding nan or inf)."""
    return _nan_where_singular(np.linalg.eigvalsh, a)


def eigh_vectors(a: Any) -> Any:
    """Their eigenvectors, LAPACK's (signs included), nan where it does not converge."""
    return _nan_where_singular(lambda m: np.linalg.eigh(m)[1], a)


def eigh_upper_vectors(a: Any) -> Any:
    """The eigenvectors of the symmetric matrix A's upper triangle stands for: LAPACK's
    (``np.linalg.eigh(a, UPLO="U")``, its signs), nan where it does not converge."""
    return _nan_where_singular(lambda m: np.linalg.eigh(m, UPLO="U")[1], a)


def svdvals(a: Any) -> Any:
    """The singular values, descending (nan where the SVD does not converge)."""
    return _nan_where_singular(np.linalg.svdvals, a)


def svd_u(a: Any) -> Any:
    """U of the reduced SVD, LAPACK's (nan where it does not converge)."""
    return _nan_where_singular(lambda m: np.linalg.svd(m, full_matrices=False)[0], a)


def svd_vh(a: Any) -> Any:
    """Vᴴ of the reduced SVD, LAPACK's (nan where it does not converge)."""
    return _nan_where_singular(lambda m: np.linalg.svd(m, full_matrices=False)[2], a)


def pinv(a: Any, rtol: float = 1e-15) -> Any:
    """A⁺, singular values below ``rtol`` times the largest cut off (nan where the SVD does
    not converge)."""
    return _nan_where_singular(lambda m: np.linalg.pinv(m, rtol=rtol), a)


def solve_triangular(a: Any, b: Any, lower: bool = False) -> Any:
    """A⁻¹ b reading only A's lower (or upper) triangle: scipy.linalg's, batched."""
    import scipy.linalg

    def one(a: Any, b: Any) -> Any:
        return scipy.linalg.solve_triangular(a, b, lower=lower, check_finite=False)

    return _nan_where_singular(one, a, b)
