"""The linear-algebra primitives, with the matrix adjoint rules of the notes' style: ∂J/∂A as a
matrix expression built from circuit nodes (so that ``hvp`` and ``hessian`` differentiate the
rules again, through these same records).

A matrix argument is the point's last two axes; leading point axes are a stack of matrices
(``np.linalg``'s broadcasting), and the values may carry batch axes in front of those. The rules
below write ``Ā`` for the adjoint of ``A``, ``X̄`` for the node's own adjoint (``bar``), ``ᵀ`` for
the transpose of the last two axes, ``∘`` for the entrywise product:

- ``solve(A, B)``: X = A⁻¹B ⇒ B̄ = A⁻ᵀX̄ (a solve with Aᵀ), Ā = −B̄Xᵀ; Ẋ = A⁻¹(Ḃ − ȦX). A 1-D
  ``B`` is a vector (NumPy 2's rule: only a 1-D b is one), else a stack of matrices (…, n, k).
- ``inv(A)``: Y = A⁻¹ ⇒ Ā = −YᵀȲYᵀ; Ẏ = −YȦY.
- ``det(A)``: d ⇒ Ā = d̄·d·A⁻ᵀ; ḋ = d·tr(A⁻¹Ȧ). At a singular A the rule's A⁻¹ is nan (the
  adjugate would be finite there): the caveat of docs/tracing.md.
- ``slogdet(A)`` (log|det A|): Ā = ȳ·A⁻ᵀ; ``slogdet_sign`` (its sign) has derivative 0.
- ``cholesky(A)``: L, reading A's lower triangle as LAPACK does. With Φ(X) the lower triangle of
  X with its diagonal halved (Murray 2016, "Differentiation of the Cholesky decomposition"):
  S = L⁻ᵀΦ(LᵀL̄)L⁻¹ and Ā = Φ(S + Sᵀ) (the symmetric adjoint folded into the triangle read);
  L̇ = LΦ(L⁻¹ȦₛL⁻ᵀ), Ȧₛ the symmetric matrix the lower triangle of Ȧ stands for.
- ``solve_triangular(A, B, lower)``: X = T⁻¹B, T the triangle of A read ⇒ B̄ = T⁻ᵀX̄,
  Ā = −tri(B̄Xᵀ); Ẋ = T⁻¹(Ḃ − tri(Ȧ)X).
- ``eigvalsh(A)``: λ, V the eigenvectors ⇒ Ā = fold(V diag(λ̄) Vᵀ); λ̇ᵢ = vᵢᵀȦₛvᵢ.
- ``eigh_vectors(A, upper=0)``: V ⇒ P = V(F∘(VᵀV̄))Vᵀ, Fᵢⱼ = 1/(λⱼ − λᵢ) off the diagonal (0 on it),
  Ā = Φ(P + Pᵀ); V̇ = V(F∘(VᵀȦₛV)). Infinite where two eigenvalues coincide (the vectors are not
  unique there): the caveat of docs/tracing.md.
- ``svdvals(A)``: s ⇒ Ā = U diag(s̄) Vᵀ; ṡ = diag(UᵀȦV), U, V the singular vectors (reduced);
  ``svd_u``, ``svd_vh`` (the vectors, as ``np.linalg.svd`` returns them, signs LAPACK's) have
  the rules of their records below (Townsend 2016), infinite at repeated singular values and
  where a singular value is 0.

``fold`` and Φ: ``eigh`` and ``cholesky`` read only the lower triangle of A (NumPy's default
UPLO='L'), so their adjoint is that of the function NumPy computes: a symmetric adjoint G folds
into Ā = tril(2G) − diag(G). JAX symmetrizes its input instead and returns G = (Ā + Āᵀ)/2.

None of them has a scalar form: ``scalarize`` (so ``to_tape`` and ``to_c``) refuses them by
name with the size, pointing to ``to_numpy``. ``counts_as`` is the number of matrix operations
each node counts as in the size bound K (transforms/bounds.py): LAPACK's steps (a solve: the LU
factorization and two triangular solves).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import CircuitError, ShapeError
from .core import Primitive, Shape, align, broadcast_shape, call


# ---------------------------------------------------------------------------------------------
# Shapes.


def _square(op: str, a: Shape) -> Shape:
    if len(a) < 2 or a[-1] != a[-2]:
        raise ShapeError(f"{op}: needs a square matrix (or a stack of them, shape (..., n, n)), "
                         f"got shape {tuple(a)}")
    return tuple(a)


def _matrix(op: str, a: Shape) -> Shape:
    if len(a) < 2:
        raise ShapeError(f"{op}: needs a matrix (or a stack of them, shape (..., m, n)), got "
                         f"shape {tuple(a)}")
    return tuple(a)


def _solve_shape(op: str) -> Any:
    def rule(a: Shape, b: Shape, **params: Any) -> Shape:
        n = _square(op, a)[-1]
        if len(b) == 1:
            if b[0] != n:
                raise ShapeError(f"{op}: b of shape {tuple(b)} does not fit A of shape "
                                 f"{tuple(a)} ({n} entries needed)")
            return tuple(a[:-1])
        if len(b) < 1 or b[-2] != n:
            raise ShapeError(f"{op}: b of shape {tuple(b)} does not fit A of shape {tuple(a)} "
                             f"(b must be a vector of {n} entries or matrices (..., {n}, k))")
        return broadcast_shape(op, tuple(a[:-2]), tuple(b[:-2])) + (n, b[-1])

    return rule


def _svd_shape(part: str) -> Any:
    def rule(a: Shape) -> Shape:
        m, n = _matrix("svd", a)[-2:]
        k = min(m, n)
        return tuple(a[:-2]) + {"s": (k,), "u": (m, k), "vh": (k, n)}[part]

    return rule


# ---------------------------------------------------------------------------------------------
# Templates. Leading point axes are aligned (``b[..., None, :, :]``) so that batch axes in front
# broadcast; a vector b is solved as a one-column matrix (a batch of vectors is not a matrix).


def _stacked(x: str, shape: Shape, core: int, lead: int) -> str:
    rank = len(shape)
    return x if rank - core >= lead else align(x, rank, lead + core)


def _solve_template(fn: str) -> Any:
    def template(a: str, b: str, shapes: tuple[Shape, ...], **params: Any) -> str:
        sa, sb = shapes
        extra = "".join(f", {v!r}" for v in params.values())
        if len(sb) == 1:
            column = _stacked(b, sb, 1, len(sa) - 2)
            return f"_sp.{fn}({a}, {column}[..., None]{extra})[..., 0]"
        lead = max(len(sa), len(sb)) - 2
        return f"_sp.{fn}({_stacked(a, sa, 2, lead)}, {_stacked(b, sb, 2, lead)}{extra})"

    return template


# ---------------------------------------------------------------------------------------------
# The matrix algebra the rules are written in: products and transposes of the last two axes,
# with leading axes broadcast (a 2-D matrix is NumPy's @ itself, one matmul node).


def _mT(x: Any) -> Any:  # noqa: N802 - NumPy's name for the matrix transpose
    n = len(x.shape)
    if n == 2:
        return x.T
    return call("permute_dims", x, axes=tuple(range(n - 2)) + (n - 1, n - 2))


def _mm(x: Any, y: Any) -> Any:
    """x @ y of stacks of matrices (…, n, m) and (…, m, k)."""
    if len(x.shape) == 2 and len(y.shape) == 2:
        return x @ y
    xs = x.reshape(tuple(x.shape) + (1,))
    ys = y.reshape(tuple(y.shape[:-2]) + (1,) + tuple(y.shape[-2:]))
    product = xs * ys
    return call("sum", product, axis=len(product.shape) - 2)


def _mv(x: Any, v: Any) -> Any:
    """x @ v of stacks of matrices (…, n, m) and vectors (…, m)."""
    if len(x.shape) == 2 and len(v.shape) == 1:
        return x @ v
    product = x * v.reshape(tuple(v.shape[:-1]) + (1, v.shape[-1]))
    return call("sum", product, axis=len(product.shape) - 1)


def _outer(u: Any, v: Any) -> Any:
    """The outer products u vᵀ of stacks of vectors."""
    if len(u.shape) == 1 and len(v.shape) == 1:
        return call("outer", u, v)
    return u.reshape(tuple(u.shape) + (1,)) * v.reshape(tuple(v.shape[:-1]) + (1, v.shape[-1]))


def _scaled(s: Any, m: Any) -> Any:
    """Each matrix of the stack m times its number of s (s has m's leading axes)."""
    return s * m if not s.shape else s.reshape(tuple(s.shape) + (1, 1)) * m


def _inner(x: Any, y: Any) -> Any:
    """Σᵢⱼ xᵢⱼ yᵢⱼ over the last two axes (tr(xᵀ y))."""
    product = x * y
    n = len(product.shape)
    if n == 2:
        return call("sum", product)
    return call("sum", call("sum", product, axis=n - 1), axis=n - 2)


def _solve_vector(op: str, a: Any, v: Any, **params: Any) -> Any:
    """A⁻¹v for a stack of vectors v (a 1-D v is a vector for solve; more axes are columns)."""
    if len(v.shape) == 1:
        return call(op, a, v, **params)
    column = call(op, a, v.reshape(tuple(v.shape) + (1,)), **params)
    return column.reshape(tuple(column.shape[:-1]))


def _mask(n: int, kind: str, scale: float = 1.0) -> np.ndarray:
    """Constant masks: ``phi`` the lower triangle with the diagonal halved (Murray's Φ),
    ``fold`` twice the strict lower triangle plus the diagonal, ``lower``/``upper`` triangles."""
    lower = np.tril(np.ones((n, n)))
    return scale * {"phi": lower - 0.5 * np.eye(n), "fold": 2.0 * lower - np.eye(n),
                    "lower": lower, "upper": lower.T, "strict": lower - np.eye(n),
                    "offdiag": 1.0 - np.eye(n)}[kind]


def _symmetric_tangent(t: Any) -> Any:
    """The symmetric matrix the lower triangle of the tangent t stands for."""
    n = t.shape[-1]
    return t * _mask(n, "lower") + _mT(t * _mask(n, "strict"))


# ---------------------------------------------------------------------------------------------
# The rules.


def _solve_vjp(bar: Any, out: Any, a: Any, b: Any) -> tuple:
    if len(b.shape) == 1:
        b_bar = _solve_vector("solve", _mT(a), bar)
        return -_outer(b_bar, out), b_bar
    b_bar = call("solve", _mT(a), bar)
    return -_mm(b_bar, _mT(out)), b_bar


def _solve_jvp(tangents: tuple, out: Any, a: Any, b: Any) -> Any:
    ta, tb = tangents
    vector = len(b.shape) == 1
    rhs = tb
    if ta is not None:
        moved = _mv(ta, out) if vector else _mm(ta, out)
        rhs = -moved if rhs is None else rhs - moved
    return _solve_vector("solve", a, rhs) if vector else call("solve", a, rhs)


def _inv_vjp(bar: Any, out: Any, a: Any) -> tuple:
    yt = _mT(out)
    return (-_mm(_mm(yt, bar), yt),)


def _inv_jvp(tangents: tuple, out: Any, a: Any) -> Any:
    (t,) = tangents
    return None if t is None else -_mm(_mm(out, t), out)


def _det_vjp(bar: Any, out: Any, a: Any) -> tuple:
    return (_scaled(bar * out, _mT(call("inv", a))),)


def _det_jvp(tangents: tuple, out: Any, a: Any) -> Any:
    (t,) = tangents
    return None if t is None else out * _inner(_mT(call("inv", a)), t)


def _slogdet_vjp(bar: Any, out: Any, a: Any) -> tuple:
    return (_scaled(bar, _mT(call("inv", a))),)


def _slogdet_jvp(tangents: tuple, out: Any, a: Any) -> Any:
    (t,) = tangents
    return None if t is None else _inner(_mT(call("inv", a)), t)


def _cholesky_vjp(bar: Any, out: Any, a: Any) -> tuple:
    # Murray's rule: S = L⁻ᵀ Φ(Lᵀ L̄) L⁻¹, Ā = Φ(S + Sᵀ); the second solve gives Sᵀ directly.
    phi = _mask(out.shape[-1], "phi")
    lt = _mT(out)
    x = call("solve_triangular", lt, _mm(lt, bar) * phi, lower=0)  # L⁻ᵀ P
    st = call("solve_triangular", lt, _mT(x), lower=0)  # L⁻ᵀ Pᵀ L⁻¹ = Sᵀ
    return ((_mT(st) + st) * phi,)


def _cholesky_jvp(tangents: tuple, out: Any, a: Any) -> Any:
    (t,) = tangents
    if t is None:
        return None
    x = call("solve_triangular", out, _symmetric_tangent(t), lower=1)  # L⁻¹ Ȧₛ
    y = call("solve_triangular", out, _mT(x), lower=1)  # L⁻¹ Ȧₛ L⁻ᵀ
    return _mm(out, y * _mask(out.shape[-1], "phi"))


def _triangular_vjp(bar: Any, out: Any, a: Any, b: Any, lower: bool = False) -> tuple:
    tri = _mask(a.shape[-1], "lower" if lower else "upper", -1.0)
    if len(b.shape) == 1:
        b_bar = _solve_vector("solve_triangular", _mT(a), bar, lower=int(not lower))
        return _outer(b_bar, out) * tri, b_bar
    b_bar = call("solve_triangular", _mT(a), bar, lower=int(not lower))
    return _mm(b_bar, _mT(out)) * tri, b_bar


def _triangular_jvp(tangents: tuple, out: Any, a: Any, b: Any, lower: bool = False) -> Any:
    ta, tb = tangents
    vector = len(b.shape) == 1
    rhs = tb
    if ta is not None:
        tri = ta * _mask(a.shape[-1], "lower" if lower else "upper")
        moved = _mv(tri, out) if vector else _mm(tri, out)
        rhs = -moved if rhs is None else rhs - moved
    if vector:
        return _solve_vector("solve_triangular", a, rhs, lower=lower)
    return call("solve_triangular", a, rhs, lower=lower)


def _gaps(w: Any) -> Any:
    """F of the eigenvector rules: Fᵢⱼ = 1/(wⱼ − wᵢ) off the diagonal, 0 on it."""
    n = w.shape[-1]
    gaps = w.reshape(tuple(w.shape[:-1]) + (1, n)) - w.reshape(tuple(w.shape) + (1,))
    return _mask(n, "offdiag") / (gaps + np.eye(n))


def _eigvalsh_vjp(bar: Any, out: Any, a: Any) -> tuple:
    v = call("eigh_vectors", a)
    return (_mm(v * bar.reshape(tuple(bar.shape[:-1]) + (1, bar.shape[-1])), _mT(v))
            * _mask(a.shape[-1], "fold"),)


def _eigvalsh_jvp(tangents: tuple, out: Any, a: Any) -> Any:
    (t,) = tangents
    if t is None:
        return None
    v = call("eigh_vectors", a)
    product = v * _mm(t * _mask(a.shape[-1], "fold"), v)
    return call("sum", product, axis=len(product.shape) - 2)


def _eigh_vectors_vjp(bar: Any, out: Any, a: Any, upper: int = 0) -> tuple:
    # upper: A's upper triangle read (NumPy's UPLO='U'), the lower one of Aᵀ: the same rule
    # for Aᵀ, transposed back.
    f = _gaps(call("eigvalsh", _mT(a) if upper else a))
    p = _mm(_mm(out, f * _mm(_mT(out), bar)), _mT(out))
    return ((p + _mT(p)) * _mask(a.shape[-1], "phi").T if upper else
            (p + _mT(p)) * _mask(a.shape[-1], "phi"),)


def _eigh_vectors_jvp(tangents: tuple, out: Any, a: Any, upper: int = 0) -> Any:
    (t,) = tangents
    if t is None:
        return None
    f = _gaps(call("eigvalsh", _mT(a) if upper else a))
    return _mm(out, f * _mm(_mm(_mT(out), _symmetric_tangent(_mT(t) if upper else t)), out))


def _eigh_vectors_template(a: str, shapes: tuple[Shape, ...], upper: int = 0) -> str:
    # NumPy's UPLO='U' is LAPACK's own reading of the upper triangle (its vectors' signs);
    # the standard has no UPLO: its helper solves for the transpose.
    return f"_sp.eigh_upper_vectors({a})" if upper else f"_sp.eigh_vectors({a})"


def _svdvals_vjp(bar: Any, out: Any, a: Any) -> tuple:
    u, vh = call("svd_u", a), call("svd_vh", a)
    return (_mm(u * bar.reshape(tuple(bar.shape[:-1]) + (1, bar.shape[-1])), vh),)


def _svdvals_jvp(tangents: tuple, out: Any, a: Any) -> Any:
    (t,) = tangents
    if t is None:
        return None
    u, vh = call("svd_u", a), call("svd_vh", a)
    product = u * _mm(t, _mT(vh))
    return call("sum", product, axis=len(product.shape) - 2)


def _svd_parts(a: Any) -> tuple:
    # s as a row (scaling columns: X S) and as a column (S X), and F of the vector rules:
    # Fᵢⱼ = 1/(sⱼ² − sᵢ²) off the diagonal, 0 on it (Townsend 2016, "Differentiating the SVD").
    s = call("svdvals", a)
    k = s.shape[-1]
    row = s.reshape(tuple(s.shape[:-1]) + (1, k))
    column = s.reshape(tuple(s.shape) + (1,))
    f = _mask(k, "offdiag") / (row * row - column * column + np.eye(k))
    return row, column, f


def _svd_u_vjp(bar: Any, out: Any, a: Any) -> tuple:
    # Ā = U (F∘(UᵀŪ − ŪᵀU)) S Vᵀ + (I − UUᵀ) Ū S⁻¹ Vᵀ (the last term where m > k).
    row, column, f = _svd_parts(a)
    vh = call("svd_vh", a)
    ut_bar = _mm(_mT(out), bar)
    a_bar = _mm(_mm(out, f * (ut_bar - _mT(ut_bar)) * row), vh)
    if a.shape[-2] > out.shape[-1]:
        a_bar = a_bar + _mm(bar - _mm(out, ut_bar), vh / column)
    return (a_bar,)


def _svd_vh_vjp(bar: Any, out: Any, a: Any) -> tuple:
    # With V̄ = V̄hᵀ: Ā = U S (F∘(VᵀV̄ − V̄ᵀV)) Vᵀ + U S⁻¹ V̄ᵀ (I − VVᵀ) (the last where n > k).
    row, column, f = _svd_parts(a)
    u = call("svd_u", a)
    vt_bar = _mm(out, _mT(bar))
    a_bar = _mm(_mm(u, column * (f * (vt_bar - _mT(vt_bar)))), out)
    if a.shape[-1] > out.shape[-2]:
        a_bar = a_bar + _mm(u / row, bar - _mm(_mT(vt_bar), out))
    return (a_bar,)


def _svd_u_jvp(tangents: tuple, out: Any, a: Any) -> Any:
    # U̇ = U (F∘(Ṡ S + S Ṡᵀ)) + (I − UUᵀ) Ȧ V S⁻¹, Ṡ = Uᵀ Ȧ V (JAX's svd_jvp_rule, real).
    (t,) = tangents
    if t is None:
        return None
    row, column, f = _svd_parts(a)
    av = _mm(t, _mT(call("svd_vh", a)))
    ds_s = _mm(_mT(out), av) * row
    du = _mm(out, f * (ds_s + _mT(ds_s)))
    if a.shape[-2] > out.shape[-1]:
        du = du + (av - _mm(out, _mm(_mT(out), av))) / row
    return du


def _svd_vh_jvp(tangents: tuple, out: Any, a: Any) -> Any:
    # V̇ = V (F∘(S Ṡ + Ṡᵀ S)) + (I − VVᵀ) Ȧᵀ U S⁻¹; the tangent of Vh is V̇ᵀ.
    (t,) = tangents
    if t is None:
        return None
    row, column, f = _svd_parts(a)
    v = _mT(out)
    atu = _mm(_mT(t), call("svd_u", a))
    s_ds = column * _mm(_mT(atu), v)
    dv = _mm(v, f * (s_ds + _mT(s_ds)))
    if a.shape[-1] > out.shape[-2]:
        dv = dv + (atu - _mm(v, _mm(out, atu))) / row
    return _mT(dv)


def _pinv_vjp(bar: Any, out: Any, a: Any, rtol: float = 1e-15) -> tuple:
    # Golub & Pereyra's derivative of Y = A⁺ (where A's rank is locally constant), transposed:
    # Ā = −YᵀȲYᵀ + (I − AY)ȲᵀYYᵀ + YᵀYȲᵀ(I − YA).
    m, n = a.shape[-2:]
    yt, bt = _mT(out), _mT(bar)
    first = -_mm(_mm(yt, bar), yt)
    second = _mm(_mm(np.eye(m) - _mm(a, out), bt), _mm(out, yt))
    third = _mm(_mm(_mm(yt, out), bt), np.eye(n) - _mm(out, a))
    return (first + second + third,)


def _pinv_jvp(tangents: tuple, out: Any, a: Any, rtol: float = 1e-15) -> Any:
    # Ẏ = −YȦY + YYᵀȦᵀ(I − AY) + (I − YA)ȦᵀYᵀY.
    (t,) = tangents
    if t is None:
        return None
    m, n = a.shape[-2:]
    yt, tt = _mT(out), _mT(t)
    first = -_mm(_mm(out, t), out)
    second = _mm(_mm(_mm(out, yt), tt), np.eye(m) - _mm(a, out))
    third = _mm(_mm(np.eye(n) - _mm(out, a), tt), _mm(yt, out))
    return first + second + third


def _qr_tall(op: str, a: Any) -> None:
    if a.shape[-2] < a.shape[-1]:
        raise CircuitError(f"{op}: the derivative of the QR factors of a wide matrix (shape "
                           f"{a.shape}, m < n) is not built (they are not unique there); "
                           "differentiate the QR of the transpose or use np.linalg.lstsq/pinv")


def _times_inverse_transpose(x: Any, r: Any) -> Any:
    """x R⁻ᵀ for the upper triangular R: (R⁻¹ xᵀ)ᵀ."""
    return _mT(call("solve_triangular", r, _mT(x), lower=0))


def _qr_q_vjp(bar: Any, out: Any, a: Any) -> tuple:
    # With M = QᵀQ̄: Ā = (Q tril(M − Mᵀ) + Q̄ − Q M) R⁻ᵀ (m ≥ n; TensorFlow's QrGrad).
    _qr_tall("qr", a)
    r = call("qr_r", a)
    m_ = _mm(_mT(out), bar)
    lower = _mask(m_.shape[-1], "lower")
    return (_times_inverse_transpose(_mm(out, (m_ - _mT(m_)) * lower - m_) + bar, r),)


def _qr_r_vjp(bar: Any, out: Any, a: Any) -> tuple:
    # With M = R R̄ᵀ: Ā = Q (R̄ + tril(M − Mᵀ) R⁻ᵀ).
    _qr_tall("qr", a)
    q = call("qr_q", a)
    m_ = _mm(out, _mT(bar))
    lower = _mask(m_.shape[-1], "lower")
    return (_mm(q, bar + _times_inverse_transpose((m_ - _mT(m_)) * lower, out)),)


def _qr_tangents(t: Any, a: Any) -> tuple:
    # JAX's qr_jvp_rule (real): C = Qᵀ Ȧ R⁻¹, Ω = tril(C, −1) − tril(C, −1)ᵀ;
    # Q̇ = Q(Ω − C) + ȦR⁻¹, Ṙ = (C − Ω) R.
    _qr_tall("qr", a)
    q, r = call("qr_q", a), call("qr_r", a)
    t_rinv = _mT(call("solve_triangular", _mT(r), _mT(t), lower=1))
    c = _mm(_mT(q), t_rinv)
    low = c * _mask(c.shape[-1], "strict")
    omega = low - _mT(low)
    return q, r, c, omega, t_rinv


def _qr_q_jvp(tangents: tuple, out: Any, a: Any) -> Any:
    (t,) = tangents
    if t is None:
        return None
    q, r, c, omega, t_rinv = _qr_tangents(t, a)
    return _mm(q, omega - c) + t_rinv


def _qr_r_jvp(tangents: tuple, out: Any, a: Any) -> Any:
    (t,) = tangents
    if t is None:
        return None
    q, r, c, omega, t_rinv = _qr_tangents(t, a)
    return _mm(c - omega, r)


def _pinv_template(a: str, shapes: tuple[Shape, ...], rtol: float = 1e-15) -> str:
    return f"_sp.pinv({a}, {float(rtol)!r})"  # (NumPy's default rcond: 1e-15)


def _pinv_shape(a: Shape, rtol: float = 1e-15) -> Shape:
    m, n = _matrix("pinv", a)[-2:]
    return tuple(a[:-2]) + (n, m)


def _qr_shape(part: str) -> Any:
    def rule(a: Shape) -> Shape:
        m, n = _matrix("qr", a)[-2:]
        k = min(m, n)
        return tuple(a[:-2]) + ((m, k) if part == "q" else (k, n))

    return rule


def _no_scalar_form(b: Any, prim: Primitive, args: list, params: dict, shape: Shape) -> Any:
    sizes = " and ".join(str(tuple(g.shape)) for g in args)
    raise CircuitError(f"{prim.name} of shape {sizes} has no scalar expansion: scalarize, "
                       "to_tape and to_c take no linear-algebra node; to_numpy (or the array "
                       "API path) runs it")


def _record(name: str, arity: int, template: Any, label: str, counts_as: int,
            **fields: Any) -> Primitive:
    """A linear-algebra record: dense Jacobian, no scalar form, its size-bound weight."""
    return Primitive(name, arity, template, label, sparsity="dense", scalar=_no_scalar_form,
                     counts_as=counts_as, **fields)


# ``counts_as``, the LAPACK steps of each node (what the size bound counts it as): solve and inv
# 3 (NumPy's gesv: getrf's LU, then two triangular solves, with I as B for inv); det, slogdet
# 2 (getrf, the diagonal's product); cholesky 2 (potrf: diagonal blocks, the panels' trsm);
# solve_triangular 1 (trsm); eigh 3 (syevd: sytrd's tridiagonal reduction, stedc, ormtr's
# back-transformation); svd 3 (gesdd: gebrd's bidiagonalization, bdsdc, the two ormbr);
# pinv 3 (an svd and its products); qr 2 (geqrf, orgqr forming Q).
#
# The factors np.linalg returns together (slogdet's sign, eigh's vectors, svd's and qr's
# factors) are records of their own, ``internal``: reached through NumPy's spelling, each
# computed by its own call (a node is one array).
RECORDS: list[Primitive] = [
    _record("solve", 2, _solve_template("solve"), "A⁻¹b", 3, numpy=("linalg.solve",),
            vjp=_solve_vjp, jvp=_solve_jvp, shape=_solve_shape("solve"),
            cases=(((3, 3), (3,)), ((3, 3), (3, 2)))),
    _record("inv", 1, "_sp.inv({0})", "A⁻¹", 3, numpy=("linalg.inv",),
            vjp=_inv_vjp, jvp=_inv_jvp, shape=lambda a: _square("inv", a), cases=(((3, 3),),)),
    _record("det", 1, "xp.linalg.det({0})", "det", 2, numpy=("linalg.det",),
            vjp=_det_vjp, jvp=_det_jvp, shape=lambda a: _square("det", a)[:-2],
            cases=(((3, 3),),)),
    _record("slogdet", 1, "xp.linalg.slogdet({0})[1]", "log|det|", 2,
            vjp=_slogdet_vjp, jvp=_slogdet_jvp, shape=lambda a: _square("slogdet", a)[:-2],
            cases=(((3, 3),),)),
    _record("slogdet_sign", 1, "xp.linalg.slogdet({0})[0]", "sign det", 2,
            vjp=lambda bar, out, a: (None,), jvp=lambda t, out, a: None, internal=True,
            shape=lambda a: _square("slogdet", a)[:-2], cases=(((3, 3),),)),
    _record("cholesky", 1, "_sp.cholesky({0})", "chol", 2, numpy=("linalg.cholesky",),
            vjp=_cholesky_vjp, jvp=_cholesky_jvp, shape=lambda a: _square("cholesky", a),
            cases=(((3, 3),),)),
    _record("solve_triangular", 2, _solve_template("solve_triangular"), "T⁻¹b", 1,
            params=("lower",), example={"lower": 1},
            vjp=_triangular_vjp, jvp=_triangular_jvp, shape=_solve_shape("solve_triangular"),
            cases=(((3, 3), (3,)), ((3, 3), (3, 2)))),
    _record("eigvalsh", 1, "_sp.eigvalsh({0})", "λ", 3, numpy=("linalg.eigvalsh",),
            vjp=_eigvalsh_vjp, jvp=_eigvalsh_jvp, shape=lambda a: _square("eigh", a)[:-1],
            cases=(((3, 3),),)),
    _record("eigh_vectors", 1, _eigh_vectors_template, "eigvecs", 3, params=("upper",),
            vjp=_eigh_vectors_vjp, jvp=_eigh_vectors_jvp, internal=True,
            shape=lambda a, upper=0: _square("eigh", a),
            cases=(((3, 3),),)),
    _record("svdvals", 1, "_sp.svdvals({0})", "σ", 3, numpy=("linalg.svdvals",),
            vjp=_svdvals_vjp, jvp=_svdvals_jvp, shape=_svd_shape("s"),
            cases=(((3, 2),), ((2, 3),))),
    _record("svd_u", 1, "_sp.svd_u({0})", "U", 3,
            vjp=_svd_u_vjp, jvp=_svd_u_jvp, internal=True, shape=_svd_shape("u"),
            cases=(((3, 2),), ((2, 3),))),
    _record("svd_vh", 1, "_sp.svd_vh({0})", "Vᴴ", 3,
            vjp=_svd_vh_vjp, jvp=_svd_vh_jvp, internal=True, shape=_svd_shape("vh"),
            cases=(((3, 2),), ((2, 3),))),
    _record("pinv", 1, _pinv_template, "A⁺", 3, numpy=("linalg.pinv",),
            params=("rtol",), example={"rtol": 1e-15},
            vjp=_pinv_vjp, jvp=_pinv_jvp, shape=_pinv_shape, cases=(((3, 2),), ((2, 3),))),
    _record("qr_q", 1, "xp.linalg.qr({0})[0]", "Q", 2,
            vjp=_qr_q_vjp, jvp=_qr_q_jvp, internal=True, shape=_qr_shape("q"), cases=(((3, 2),),)),
    _record("qr_r", 1, "xp.linalg.qr({0})[1]", "R", 2,
            vjp=_qr_r_vjp, jvp=_qr_r_jvp, internal=True, shape=_qr_shape("r"), cases=(((3, 2),),)),
]
"""The linear-algebra records (docs/design.md's table lists their rules)."""
