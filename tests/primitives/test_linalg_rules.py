"""The linear-algebra records (primitives/linalg.py) and np.linalg's handlers, three ways.

Every case is a scalar function of a matrix written with ``np.linalg`` (traced, and run as it
is on arrays); its gradient and Hessian are checked against central differences of NumPy's
(and SciPy's) own routines, against JAX's rules where JAX is importable, and, for a few, the
hand formulas of the notes. Stacks of matrices (leading axes, as NumPy broadcasts them) and
batches of points go through the same cases; the size bound K holds with a linear-algebra node
counted as its matrix operations; the compiled lowerings refuse the records by name.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import circuitgrad as cg
from hypothesis import given, settings
from hypothesis import strategies as st

from circuitgrad.primitives import linalg
from circuitgrad.transforms.bounds import (HVP_SIZE_FACTOR, JVP_SIZE_FACTOR, TENSOR_SIZE_FACTOR,
                                           bound_size)

rng = np.random.default_rng(26)
W = rng.normal(size=(4, 4))  # fixed weights: J = Σ W ∘ f(A) sees every entry of f(A)
w = rng.normal(size=4)
GENERAL = rng.normal(size=(3, 3)) + 3 * np.eye(3)  # well conditioned, det > 0
TALL = rng.normal(size=(4, 3)) + 2 * np.eye(4, 3)
WIDE = TALL.T.copy()
STACK = rng.normal(size=(2, 3, 3)) + 3 * np.eye(3)  # a stack of two matrices
B = rng.normal(size=(3, 2))


def mm(x, y):
    """x @ y of stacks of matrices, as products and a sum (matmul takes vectors and matrices)."""
    return (x[..., :, :, None] * y[..., None, :, :]).sum(-2)


def spd(xp, a):
    """A symmetric positive definite matrix from any square ``a`` (JAX's eigh and cholesky
    symmetrize their argument, NumPy's read its lower triangle: on this they agree)."""
    return mm(a, a.swapaxes(-1, -2)) + 3 * xp.eye(a.shape[-1])


def weighted(y):
    """Σ W ∘ y over a matrix, vector or number ``y`` (any leading axes)."""
    y2 = y if y.ndim >= 2 else y.reshape((1,) * (2 - y.ndim) + y.shape)
    return (W[: y2.shape[-2], : y2.shape[-1]] * y2).sum()


# name: (the function of (xp, A) with xp NumPy's or JAX's namespace, the point)
CASES = {
    "solve": (lambda xp, a: weighted(xp.linalg.solve(a, B)), GENERAL),
    "solve_vector": (lambda xp, a: weighted(xp.linalg.solve(a, B[:, 0])), GENERAL),
    "solve_stack": (lambda xp, a: weighted(xp.linalg.solve(a, B)), STACK),
    "solve_stack_vector": (lambda xp, a: weighted(xp.linalg.solve(a, B[:, 1])), STACK),
    "inv": (lambda xp, a: weighted(xp.linalg.inv(a)), GENERAL),
    "inv_stack": (lambda xp, a: weighted(xp.linalg.inv(a)), STACK),
    "det": (lambda xp, a: xp.linalg.det(a), GENERAL),
    "det_stack": (lambda xp, a: weighted(xp.linalg.det(a)), STACK),
    "slogdet": (lambda xp, a: xp.linalg.slogdet(-a)[1] * xp.linalg.slogdet(-a)[0], GENERAL),
    "cholesky": (lambda xp, a: weighted(xp.linalg.cholesky(spd(xp, a))), GENERAL),
    "cholesky_stack": (lambda xp, a: weighted(xp.linalg.cholesky(spd(xp, a))), STACK),
    "cholesky_upper": (lambda xp, a: weighted(xp.linalg.cholesky(spd(xp, a), upper=True)),
                       GENERAL),
    "eigvalsh": (lambda xp, a: weighted(xp.linalg.eigvalsh(spd(xp, a))), GENERAL),
    "eigh_vectors": (lambda xp, a: weighted(xp.linalg.eigh(spd(xp, a))[1] ** 2
                                            + xp.linalg.eigh(spd(xp, a))[0]), GENERAL),
    "eigh_stack": (lambda xp, a: weighted(xp.linalg.eigh(spd(xp, a))[1] ** 2), STACK),
    "eigh_upper": (lambda xp, a: weighted(xp.linalg.eigh(spd(xp, a), UPLO="U")[1] ** 2), STACK),
    "svdvals_tall": (lambda xp, a: weighted(xp.linalg.svd(a, compute_uv=False)), TALL),
    "svdvals_wide": (lambda xp, a: weighted(xp.linalg.svd(a, compute_uv=False)), WIDE),
    # the vectors up to sign: a product u_i v_iᵀ (and squares) does not depend on the signs
    "svd_vectors_tall": (lambda xp, a: _svd_products(xp, a), TALL),
    "svd_vectors_wide": (lambda xp, a: _svd_products(xp, a), WIDE),
    "svd_stack": (lambda xp, a: _svd_products(xp, a), STACK),
    "pinv_tall": (lambda xp, a: weighted(xp.linalg.pinv(a)), TALL),
    "pinv_wide": (lambda xp, a: weighted(xp.linalg.pinv(a)), WIDE),
    "qr": (lambda xp, a: weighted(xp.linalg.qr(a)[0]) + weighted(xp.linalg.qr(a)[1]), TALL),
    "qr_square": (lambda xp, a: weighted(xp.linalg.qr(a)[0] @ xp.linalg.qr(a)[1] ** 2),
                  GENERAL),
    "lstsq": (lambda xp, a: weighted(xp.linalg.lstsq(a, W[:, 0], rcond=None)[0]), TALL),
    "lstsq_matrix": (lambda xp, a: weighted(xp.linalg.lstsq(a, W[:, :2], rcond=None)[0]),
                     TALL),
    "matrix_power_3": (lambda xp, a: weighted(xp.linalg.matrix_power(a, 3)), GENERAL),
    "matrix_power_-2": (lambda xp, a: weighted(xp.linalg.matrix_power(a, -2)), GENERAL),
    "matrix_power_stack": (lambda xp, a: weighted(xp.linalg.matrix_power(a, 2)), STACK),
}
for _ord in (None, "fro", "nuc", 2, -2, 1, -1, np.inf, -np.inf):
    CASES[f"norm_matrix_{_ord}"] = ((lambda o: lambda xp, a: xp.linalg.norm(a, o))(_ord), TALL)
for _ord in (None, 2, 1, 3, 0.5, -1.5, np.inf, -np.inf):
    CASES[f"norm_vector_{_ord}"] = (
        (lambda o: lambda xp, a: xp.linalg.norm(a[:, 0] - 0.25, o))(_ord), TALL)
CASES["norm_axis"] = (lambda xp, a: weighted(xp.linalg.norm(STACK * a[:3], "nuc",
                                                           axis=(0, 2))), GENERAL)
CASES["norm_axis_inf"] = (lambda xp, a: weighted(xp.linalg.norm(STACK * a[:3], np.inf,
                                                               axis=(2, 0))), GENERAL)
for _ord in (None, "fro", "nuc", 2, -2, 1, -1, np.inf, -np.inf):
    CASES[f"cond_{_ord}"] = ((lambda o: lambda xp, a: xp.linalg.cond(a, o))(_ord), GENERAL)
CASES["multi_dot"] = (lambda xp, a: xp.linalg.multi_dot([a[0], a, a.T, a[:, 1]]), GENERAL)
CASES["matrix_transpose_outer"] = (
    lambda xp, a: weighted(xp.linalg.matrix_transpose(a) * xp.linalg.outer(a[0], a[:, 2])),
    GENERAL)
CASES["matrix_norm_api"] = (lambda xp, a: weighted(xp.linalg.matrix_norm(STACK * a[:3], ord="nuc"))
                            + xp.linalg.matrix_norm(a, ord=-1, keepdims=True).sum(), GENERAL)
CASES["vector_norm_api"] = (lambda xp, a: xp.linalg.vector_norm(a, ord=3)
                            + weighted(xp.linalg.vector_norm(a, axis=0, ord=np.inf,
                                                             keepdims=True)), TALL)
CASES["norm_keepdims"] = (lambda xp, a: weighted(xp.linalg.norm(a, 2, keepdims=True)), TALL)


def _svd_products(xp, a):
    u, s, vh = xp.linalg.svd(a, full_matrices=False)
    return weighted(mm(u * s[..., None, :], vh)) + weighted(u[..., :2] * vh[..., :2, 0][..., None, :]) \
        + weighted(u ** 2) + weighted(vh ** 2)


# SciPy's: ours written with cg.*, NumPy's reference with scipy.linalg, JAX's with jax.scipy.
SCIPY_CASES = {
    "solve_triangular_lower": (
        lambda a: weighted(cg.solve_triangular(a, B, lower=True)),
        lambda sl, a: weighted(sl.solve_triangular(a, B, lower=True)), GENERAL),
    "solve_triangular_upper_vector": (
        lambda a: weighted(cg.solve_triangular(a, B[:, 0])),
        lambda sl, a: weighted(sl.solve_triangular(a, B[:, 0])), GENERAL),
    "solve_triangular_stack": (
        lambda a: weighted(cg.solve_triangular(a, B, lower=True)),
        lambda sl, a: weighted(sl.solve_triangular(a, B, lower=True)), STACK),
    "cho_solve_stack": (
        lambda a: weighted(cg.cho_solve(cg.cho_factor(spd(np, a)), B)),
        lambda sl, a: weighted(sl.cho_solve(sl.cho_factor(spd(np, a)), B)), STACK),
    "cho_solve": (
        lambda a: weighted(cg.cho_solve(cg.cho_factor(a @ a.T + 3 * np.eye(3)), B)),
        lambda sl, a: weighted(sl.cho_solve(sl.cho_factor(a @ a.T + 3 * np.eye(3)), B)),
        GENERAL),
    "cho_solve_lower": (
        lambda a: weighted(cg.cho_solve(cg.cho_factor(a @ a.T + 3 * np.eye(3), lower=True),
                                        B[:, 1])),
        lambda sl, a: weighted(sl.cho_solve(sl.cho_factor(a @ a.T + 3 * np.eye(3),
                                                          lower=True), B[:, 1])), GENERAL),
}


def ours(name):
    if name in CASES:
        f = CASES[name][0]
        return lambda a: f(np, a)
    return SCIPY_CASES[name][0]


def reference(name):
    """NumPy's (or SciPy's) own routine: what central differences differentiate."""
    if name in CASES:
        f = CASES[name][0]
        return lambda a: f(np, a)
    f = SCIPY_CASES[name][1]
    return lambda a: f(scipy.linalg, a)


def point(name):
    return (CASES[name] if name in CASES else SCIPY_CASES[name])[-1]


ALL = list(CASES) + list(SCIPY_CASES)


def central(f, x, h=1e-5):
    """Central differences of f at x, entry by entry (f's value an array or a number)."""
    x = np.asarray(x, dtype=np.float64)
    first = np.asarray(f(x))
    out = np.zeros(first.shape + x.shape)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        out[(...,) + i] = (np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h)
    return out


def close(got, want, rtol):
    scale = max(1.0, float(np.max(np.abs(want))))
    return np.max(np.abs(np.asarray(got) - want)) <= rtol * scale


def circuit(name):
    a = point(name)
    return cg.trace(ours(name), shapes={"a": a.shape})


# -- the gradient against central differences of NumPy's own routines -----------------------

@pytest.mark.parametrize("name", ALL)
def test_gradient_against_central_differences_of_numpys_routines(name):
    a = point(name)
    got = cg.grad(ours(name))(a)
    assert np.isclose(float(ours(name)(a)), float(reference(name)(a)), rtol=1e-12)
    want = central(reference(name), a)
    assert close(got, want, 1e-7), (got, want)


# -- second order: the Hessian and hvp, against central differences of the gradient ----------

@pytest.mark.parametrize("name", ALL)
def test_hessian_and_hvp_against_central_differences_of_the_gradient(name):
    a = point(name)
    c = circuit(name)
    h = cg.to_numpy(cg.hessian(c, layout="matrix"))(a)[-1]
    want = central(lambda x: cg.grad(ours(name))(x).ravel(), a).reshape(a.size, a.size)
    assert close(h, want, 1e-6), np.max(np.abs(h - want))
    assert np.allclose(h, h.T, rtol=1e-9, atol=1e-9 * np.max(np.abs(h)))
    v = rng.normal(size=a.shape)
    hv = cg.to_numpy(cg.hvp(c))(a, v)[-1]
    assert np.allclose(hv.ravel(), h @ v.ravel(), rtol=1e-9, atol=1e-9)


# -- JAX's rules, where JAX is importable ----------------------------------------------------

@pytest.fixture(scope="module")
def jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def jax_function(jax, name):
    import jax.numpy as jnp
    import jax.scipy.linalg as jsl

    if name in CASES:
        f = CASES[name][0]
        return lambda a: f(jnp, a)
    f = SCIPY_CASES[name][1]
    return lambda a: f(jsl, a)


# one case per function (JAX compiles each: seconds apiece)
JAX_CASES = ["solve", "solve_stack", "inv", "det", "slogdet", "cholesky", "eigh_vectors",
             "svdvals_wide", "svd_vectors_tall", "pinv_wide", "qr", "lstsq", "matrix_power_-2",
             "norm_matrix_nuc", "solve_triangular_lower", "cho_solve"]


@pytest.mark.parametrize("name", JAX_CASES)
def test_gradient_and_hvp_against_jax(jax, name):
    a = point(name)
    fj = jax_function(jax, name)
    v = rng.normal(size=a.shape)
    value, gradient, hv = jax.jit(lambda a, v: (fj(a),) + jax.jvp(jax.grad(fj), (a,), (v,)))(
        a, v)
    assert np.isclose(float(value), float(ours(name)(a)), rtol=1e-12)
    assert close(cg.grad(ours(name))(a), np.asarray(gradient), 1e-10)
    assert close(cg.to_numpy(cg.hvp(circuit(name)))(a, v)[-1], np.asarray(hv), 1e-9)


@pytest.mark.parametrize("name", ["inv", "cholesky", "eigvalsh"])
def test_third_derivatives_against_jax(jax, name):
    """The rules differentiate again to any order: ∇(v · ∇(v · ∇J))."""
    v = W[:3, :3]
    fj = jax_function(jax, name)
    f = ours(name)
    got = cg.grad(lambda a: np.sum(cg.grad(lambda b: np.sum(cg.grad(f)(b) * v))(a) * v))(
        GENERAL)
    want = jax.jit(jax.grad(lambda a: (jax.grad(lambda b: (jax.grad(fj)(b) * v).sum())(a)
                                       * v).sum()))(GENERAL)
    assert close(got, np.asarray(want), 1e-9)


# -- the tangent rules on their own: jvp of matrix-valued outputs ----------------------------

MATRIX_VALUED = {
    "solve": lambda a: np.linalg.solve(a, B),
    "inv": lambda a: np.linalg.inv(a),
    "det": lambda a: np.linalg.det(a),
    "slogdet": lambda a: np.linalg.slogdet(a)[1],
    "cholesky": lambda a: np.linalg.cholesky(a @ a.T + 3 * np.eye(3)),
    "cholesky_lower_read": lambda a: np.linalg.cholesky(a + 3 * np.eye(3)),  # not symmetric
    "eigvalsh_lower_read": lambda a: np.linalg.eigvalsh(a),
    "eigh_vectors_lower_read": lambda a: np.linalg.eigh(a)[1],
    "eigvalsh_upper_read": lambda a: np.linalg.eigvalsh(a, UPLO="U"),
    "eigh_upper_read": lambda a: np.linalg.eigh(a, UPLO="U")[1],
    "eigh_upper_values": lambda a: np.linalg.eigh(a, UPLO="U")[0],
    "svdvals": lambda a: np.linalg.svd(a, compute_uv=False),
    "svd_u": lambda a: np.linalg.svd(a)[0],
    "svd_vh": lambda a: np.linalg.svd(a)[2],
    "pinv": lambda a: np.linalg.pinv(a),
    "qr_q": lambda a: np.linalg.qr(a)[0],
    "qr_r": lambda a: np.linalg.qr(a)[1],
    "solve_triangular": lambda a: cg.solve_triangular(a, B, lower=True),
}


@pytest.mark.parametrize("name", MATRIX_VALUED)
def test_tangents_against_central_differences(name):
    f = MATRIX_VALUED[name]
    a = GENERAL
    c = cg.trace(f, shapes={"a": a.shape})
    t = rng.normal(size=a.shape)
    got = cg.to_numpy(cg.jvp(c))(a, t)[-1]
    ref = (lambda x: scipy.linalg.solve_triangular(x, B, lower=True)) \
        if name == "solve_triangular" else f
    want = np.tensordot(central(ref, a), t, axes=2)
    assert close(got, want, 1e-7), (got, want)
    # and the adjoint rule is the tangent rule's transpose: <ȳ, J t> = <Jᵀȳ, t>
    bar = rng.normal(size=np.shape(got))
    g = cg.grad(lambda x: np.sum(bar * f(x)))(a)
    assert np.isclose(np.sum(bar * got), np.sum(g * t), rtol=1e-9)


# -- the hand formulas (the notes' ∂J/∂A as matrix expressions) ------------------------------

def test_hand_formulas():
    a = GENERAL
    ainv = np.linalg.inv(a)
    assert np.allclose(cg.grad(np.linalg.det)(a), np.linalg.det(a) * ainv.T, rtol=1e-12)
    assert np.allclose(cg.grad(lambda x: np.linalg.slogdet(x)[1])(a), ainv.T, rtol=1e-12)
    assert np.allclose(cg.grad(lambda x: np.sum(np.linalg.inv(x) * np.eye(3)))(a), -(ainv @ ainv).T,
                       rtol=1e-12)
    # ∂(wᵀA⁻¹b)/∂A = −A⁻ᵀw (A⁻¹b)ᵀ, ∂/∂b = A⁻ᵀw
    b = B[:, 0]
    gA, gb = cg.grad(lambda x, y: w[:3] @ np.linalg.solve(x, y), argnums=(0, 1))(a, b)
    assert np.allclose(gA, -np.outer(np.linalg.solve(a.T, w[:3]), np.linalg.solve(a, b)))
    assert np.allclose(gb, np.linalg.solve(a.T, w[:3]))
    # the nuclear norm's gradient is U Vᵀ, the spectral norm's u₁v₁ᵀ
    u, s, vh = np.linalg.svd(TALL, full_matrices=False)
    assert np.allclose(cg.grad(lambda x: np.linalg.norm(x, "nuc"))(TALL), u @ vh)
    assert np.allclose(cg.grad(lambda x: np.linalg.norm(x, 2))(TALL), np.outer(u[:, 0], vh[0]))
    # the eigenvalue λᵢ of a symmetric A: vᵢvᵢᵀ folded into the lower triangle read
    sym = spd(np, GENERAL)
    lam, v = np.linalg.eigh(sym)
    g = cg.grad(lambda x: np.linalg.eigvalsh(x)[2])(sym)
    full = np.outer(v[:, 2], v[:, 2])
    assert np.allclose(g, np.tril(2 * full) - np.diag(np.diag(full)))


# -- stacks, batches and the leading axes NumPy broadcasts -----------------------------------

def test_solve_broadcasts_leading_axes_as_numpy_does():
    f = lambda a, b: np.sum(np.linalg.solve(a, b) * W[:3, :2])  # noqa: E731
    b = rng.normal(size=(4, 1, 3, 2))
    c = cg.trace(f, shapes={"a": STACK.shape, "b": b.shape})
    assert np.isclose(cg.to_numpy(c)(STACK, b), f(STACK, b), rtol=1e-12)
    ga, gb = cg.to_numpy(cg.grad(c))(STACK, b)[1:]
    assert ga.shape == STACK.shape and gb.shape == b.shape
    assert close(ga, central(lambda x: f(x, b), STACK), 1e-7)
    assert close(gb, central(lambda y: f(STACK, y), b), 1e-7)


@pytest.mark.parametrize("name", ["solve", "solve_vector", "solve_stack", "det", "cholesky",
                                  "eigh_vectors", "svd_vectors_tall", "pinv_wide", "qr",
                                  "lstsq", "norm_matrix_nuc", "solve_triangular_lower",
                                  "cho_solve"])
def test_a_batch_of_points_is_each_point(name):
    a = point(name)
    batch = a + 0.05 * rng.normal(size=(3,) + a.shape)
    g = cg.to_numpy(cg.grad(circuit(name)))
    got = g(batch)
    for k in range(3):
        one = g(batch[k])
        for x, y in zip(got, one):
            assert np.allclose(np.asarray(x)[k], y, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["solve_stack", "cholesky", "eigh_vectors", "svd_vectors_wide",
                                  "pinv_tall", "qr", "lstsq", "norm_matrix_-2", "cho_solve"])
def test_the_array_api_path_computes_the_same(name):
    xs = pytest.importorskip("array_api_strict")
    a = point(name)
    g = cg.to_numpy(cg.grad(circuit(name)))
    for got, want in zip(g(xs.asarray(a)), g(a)):
        assert np.allclose(np.asarray(got._array), want, rtol=1e-10, atol=1e-13)


# -- random sizes (1 × 1 included) and matrices: hypothesis ----------------------------------

RANDOM = {
    "solve": lambda a: np.sum(np.linalg.solve(a, np.arange(1.0, len(a) + 1)) ** 2),
    "inv": lambda a: np.sum(np.linalg.inv(a) * np.arange(a.size).reshape(a.shape)),
    "det": lambda a: np.linalg.det(a),
    "slogdet": lambda a: np.linalg.slogdet(a)[1],
    "cholesky": lambda a: np.sum(np.linalg.cholesky(a @ a.T + np.eye(len(a))) ** 3),
    "eigvalsh": lambda a: np.sum(np.linalg.eigvalsh(a + a.T) ** 3),
    "eigh": lambda a: np.sum(np.linalg.eigh(a + a.T)[1][:, -1] ** 4),
    "svd": lambda a: np.sum(np.linalg.svd(a[:, :-1] if len(a) > 1 else a,
                                          full_matrices=False)[0] ** 4),
    "pinv": lambda a: np.sum(np.linalg.pinv(a) ** 2),
    "qr": lambda a: np.sum(np.linalg.qr(a)[1] ** 2) + np.sum(np.linalg.qr(a)[0][0]),
    "triangular": lambda a: np.sum(cg.solve_triangular(a, np.ones(len(a)), lower=True) ** 2),
    "nuc": lambda a: np.linalg.norm(a, "nuc"),
}


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(sorted(RANDOM)), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_random_sizes_against_central_differences(name, n, seed):
    r = np.random.default_rng(seed)
    a = r.normal(size=(n, n)) + (n + 1) * np.eye(n)  # diagonally dominant: well conditioned
    if name in ("eigh", "svd"):  # well separated eigenvalues and singular values
        a = a + np.diag(np.arange(n) * 2.0 * n)
    f = RANDOM[name]
    ref = (lambda x: np.sum(scipy.linalg.solve_triangular(x, np.ones(n), lower=True) ** 2)) \
        if name == "triangular" else f
    assert close(cg.grad(f)(a), central(ref, a), 1e-6)


def test_programs_call_the_records_by_name():
    c = cg.parse("J = sum(solve(A, b)) + slogdet(A) + sum(solve_triangular(A, b))",
                 shapes={"A": (3, 3), "b": (3,)})
    b = B[:, 0]
    f = lambda a, y: (np.sum(np.linalg.solve(a, y)) + np.linalg.slogdet(a)[1]  # noqa: E731
                      + np.sum(scipy.linalg.solve_triangular(a, y)))
    assert np.isclose(cg.to_numpy(c)(GENERAL, b), f(GENERAL, b), rtol=1e-13)
    ga = cg.to_numpy(cg.grad(c))(GENERAL, b).dJ_dA
    assert close(ga, central(lambda x: f(x, b), GENERAL), 1e-7)


# -- the size bound K, a linear-algebra node counted as its matrix operations ----------------

@pytest.mark.parametrize("name", ALL)
def test_the_size_bounds_hold(name):
    c = circuit(name)
    assert cg.grad(c).size <= TENSOR_SIZE_FACTOR * bound_size(c)
    assert cg.jvp(c).size <= JVP_SIZE_FACTOR * bound_size(c)
    assert cg.hvp(c).size <= HVP_SIZE_FACTOR * bound_size(c)


def test_the_weights_of_the_size_bound():
    weights = {p.name: p.counts_as for p in linalg.RECORDS}
    assert weights["solve"] == 3 and weights["solve_triangular"] == 1
    c = cg.trace(lambda a: np.sum(np.linalg.solve(a, B)), shapes={"a": (3, 3)})
    assert bound_size(c) == c.size + 2


# -- what is refused, by name ----------------------------------------------------------------

@pytest.mark.parametrize("lowering", [cg.to_tape, cg.to_c])
def test_the_compiled_lowerings_refuse_by_name(lowering):
    c = cg.trace(lambda a: np.linalg.det(a), shapes={"a": (3, 3)})
    with pytest.raises(cg.CircuitError, match=r"det of shape \(3, 3\) has no scalar expansion"
                       r".*to_numpy"):
        lowering(c)


def test_scalarize_refuses_with_the_size():
    c = cg.trace(lambda a, b: np.sum(np.linalg.solve(a, b)), shapes={"a": (3, 3), "b": (3,)})
    with pytest.raises(cg.CircuitError, match=r"solve of shape \(3, 3\) and \(3,\)"):
        cg.scalarize(c)


def test_scipy_linalg_is_refused_naming_the_cg_functions():
    with pytest.raises(cg.CircuitError, match=r"scipy\.linalg\.solve_triangular cannot be "
                       r"traced.*cg\.solve_triangular") as e:
        cg.trace(lambda a, b: scipy.linalg.solve_triangular(a, b), shapes={"a": (3, 3),
                                                                           "b": (3,)})
    assert __file__ in str(e.value)
    with pytest.raises(cg.CircuitError, match=r"scipy\.linalg\.cho_factor .*cg\.cho_factor"):
        cg.trace(lambda a: scipy.linalg.cho_factor(a)[0], shapes={"a": (3, 3)})


@pytest.mark.parametrize("fn, shape, message", [
    (lambda a: np.linalg.svd(a)[0], (4, 3), r"full_matrices=True of a non-square"),
    (lambda a: np.linalg.inv(a), (3, 4), r"square"),
    (lambda a: np.linalg.solve(a, np.ones(4)), (3, 3), r"does not fit"),
    (lambda a: np.linalg.norm(a, "fro", axis=0), (3, 3), r"ord='fro' is a matrix norm"),
    (lambda a: np.linalg.norm(a, 3), (3, 3), r"ord=3 is not a matrix norm"),
    (lambda a: np.linalg.matrix_power(a, 1.5), (3, 3), r"must be an integer"),
    (lambda a: np.linalg.eigh(a, UPLO="X")[0], (3, 3), r"UPLO='X' cannot be traced"),
])
def test_what_numpy_refuses_or_circuits_cannot_do_is_refused_by_name(fn, shape, message):
    with pytest.raises((cg.CircuitError, cg.ShapeError), match=message):
        cg.trace(fn, shapes={"a": shape})


def test_matrix_rank_is_numpys_count_with_derivative_zero():
    f = lambda a: np.linalg.matrix_rank(a)  # noqa: E731
    c = cg.trace(f, shapes={"a": (3, 3)})
    low = np.outer([1.0, 2.0, 3.0], [1.0, 0.5, 0.0])
    stack = np.stack([GENERAL, low, np.zeros((3, 3))])
    assert cg.to_numpy(c)(stack).tolist() == [f(m) for m in stack] == [3, 1, 0]
    assert np.all(cg.grad(lambda a: np.linalg.matrix_rank(a, tol=0.5) * 1.0)(GENERAL) == 0)


def test_lapacks_failures_are_nan_point_by_point():
    bad = np.full((3, 3), np.nan)
    stack = np.stack([GENERAL, bad, np.ones((3, 3))])
    for f in (lambda a: np.linalg.inv(a), lambda a: np.linalg.svdvals(a),
              lambda a: np.linalg.eigvalsh(a), lambda a: np.linalg.pinv(a),
              lambda a: np.linalg.eigh(a)[1], lambda a: np.linalg.svd(a)[0],
              lambda a: np.linalg.cholesky(a @ a.T)):
        got = cg.to_numpy(cg.trace(f, shapes={"a": (3, 3)}))(stack)
        assert np.allclose(got[0], f(GENERAL), rtol=1e-13, atol=1e-15)
        assert np.isnan(got[1]).any()  # (NumPy's cholesky: nan below the diagonal, 0 above)


def test_the_qr_derivative_of_a_wide_matrix_is_refused():
    c = cg.trace(lambda a: np.sum(np.linalg.qr(a)[1]), shapes={"a": (2, 3)})
    assert np.allclose(cg.to_numpy(c)(WIDE[:2, :3]), np.sum(np.linalg.qr(WIDE[:2, :3])[1]))
    with pytest.raises(cg.CircuitError, match=r"qr: the derivative of the QR factors of a wide"):
        cg.grad(c)


# -- the caveats docs/tracing.md states ------------------------------------------------------

def test_caveats_singular_and_degenerate_points_give_nan_or_inf_not_numbers():
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    assert np.all(np.isnan(cg.to_numpy(cg.trace(np.linalg.inv, shapes={"a": (2, 2)}))(singular)))
    g = cg.grad(np.linalg.det)(singular)  # the adjugate [[4, -2], [-2, 1]]: the rule's A⁻¹ is nan
    assert not np.all(np.isfinite(g))
    # eigenvectors at a repeated eigenvalue are not unique: their derivative is not finite
    g = cg.grad(lambda a: np.sum(W[:3, :3] * np.linalg.eigh(a)[1]))(np.eye(3))
    assert not np.all(np.isfinite(g))
    # ... while the eigenvalues' is (the sum of the repeated ones is smooth)
    assert np.allclose(cg.grad(lambda a: np.sum(np.linalg.eigvalsh(a)))(np.eye(3)), np.eye(3))
