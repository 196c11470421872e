"""Jacobians as circuits: cg.jacobian in reverse, forward and auto mode.

Oracles: hand formulas (J of ``W @ x``), sympy's ``jacobian`` on scalar circuits, central
differences on random vector-valued tensor programs; the modes against each other; batches
point by point; and the number of sweeps each mode makes.
"""

import importlib
import math
import re

import numpy as np
import pytest
import scipy.sparse
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import circuitgrad as cg
from strategies import programs, tensor_programs, vector_programs
from test_batch import assert_points_agree, batch_of
from tolerances import NOTES_RTOL, SYMPY_RTOL

# The module, not the function circuitgrad.transforms re-exports under the same name.
jacobian_module = importlib.import_module("circuitgrad.transforms.jacobian")

MODES_RTOL = 1e-14  # forward vs reverse: the same partials, multiplied in another order
FD_RTOL = 1e-6      # central differences with eps 1e-6 on smooth programs


def evaluate(j: cg.Circuit, point: dict) -> dict:
    out = cg.to_numpy(j)(**point)
    return dict(zip(j.outputs, out if len(j.outputs) > 1 else (out,)))


def central_jacobian(c: cg.Circuit, point: dict, f: str, x: str, eps: float = 1e-6):
    """∂f/∂x by central differences, of shape f.shape + x.shape."""
    fn = cg.to_numpy(c)
    k = c.outputs.index(f)

    def at(p):
        out = fn(**p)
        return np.asarray(out[k] if len(c.outputs) > 1 else out)

    shape_x = c.input_shapes[x]
    result = np.zeros(c.output_shapes[f] + shape_x)
    for index in np.ndindex(shape_x):
        hi, lo = dict(point), dict(point)
        hi[x], lo[x] = np.array(point[x], dtype=float), np.array(point[x], dtype=float)
        hi[x][index] += eps
        lo[x][index] -= eps
        result[(...,) + index] = (at(hi) - at(lo)) / (2 * eps)
    return result


# -- hand formulas ---------------------------------------------------------------------------

def test_jacobian_of_a_matrix_vector_product_is_the_matrix_and_the_right_tensor():
    c = cg.parse("f = W @ x", shapes={"W": (2, 3), "x": (3,)})
    W, x = np.arange(6.0).reshape(2, 3) - 2, np.array([0.5, -1.0, 2.0])
    for mode in ("reverse", "forward", "auto"):
        j = cg.jacobian(c, mode=mode)
        j.validate()
        assert j.outputs == ("f", "df_dW", "df_dx")
        assert j.output_shapes == {"f": (2,), "df_dW": (2, 2, 3), "df_dx": (2, 3)}
        got = evaluate(j, {"W": W, "x": x})
        np.testing.assert_array_equal(got["df_dx"], W)
        # ∂f[i]/∂W[k, l] = δ_ik x_l
        np.testing.assert_array_equal(got["df_dW"], np.einsum("ik,l->ikl", np.eye(2), x))


def test_shapes_for_scalar_outputs_and_inputs():
    c = cg.parse("f = sum(x * x) * y\ng = x * y", shapes={"x": (3,)}, outputs=["f", "g"])
    j = cg.jacobian(c)
    assert j.outputs == ("f", "g", "df_dx", "df_dy", "dg_dx", "dg_dy")
    assert j.output_shapes == {"f": (), "g": (3,), "df_dx": (3,), "df_dy": (),
                               "dg_dx": (3, 3), "dg_dy": (3,)}
    x, y = np.array([1.0, 2.0, 3.0]), 0.5
    got = evaluate(j, {"x": x, "y": y})
    np.testing.assert_allclose(got["df_dx"], 2 * x * y, rtol=NOTES_RTOL)
    assert float(got["df_dy"]) == pytest.approx(14.0, rel=NOTES_RTOL)
    np.testing.assert_array_equal(got["dg_dx"], y * np.eye(3))
    np.testing.assert_array_equal(got["dg_dy"], x)


def test_a_matrix_output_and_a_matrix_input_give_a_rank_four_array():
    c = cg.parse("F = tanh(A) * B", shapes={"A": (2, 3), "B": (2, 3)})
    A = np.random.default_rng(1).normal(size=(2, 3))
    B = np.random.default_rng(2).normal(size=(2, 3))
    for mode in ("reverse", "forward"):
        got = evaluate(cg.jacobian(c, wrt="A", mode=mode), {"A": A, "B": B})
        want = np.einsum("ik,jl->ijkl", np.eye(2), np.eye(3)) * (B / np.cosh(A) ** 2)[
            :, :, None, None]
        np.testing.assert_allclose(got["dF_dA"], want, rtol=NOTES_RTOL, atol=1e-15)


def test_unused_inputs_give_exact_zeros_and_names_stay_unique():
    c = cg.parse("f = x * 2", shapes={"x": (2,)}, inputs=["x", "u"])
    for mode in ("reverse", "forward"):
        got = evaluate(cg.jacobian(c, mode=mode), {"x": np.ones(2), "u": 3.0})
        np.testing.assert_array_equal(got["df_du"], np.zeros(2))
        np.testing.assert_array_equal(got["df_dx"], 2 * np.eye(2))
    taken = cg.parse("df_dx = x * y\nf = df_dx + 1", outputs=["f", "df_dx"])
    assert cg.jacobian(taken, wrt="x").outputs == ("f", "df_dx", "df_dx_", "ddf_dx_dx")


def test_errors_name_the_problem():
    c = cg.parse("f = x * y")
    with pytest.raises(cg.CircuitError, match="mode must be one of"):
        cg.jacobian(c, mode="sideways")
    with pytest.raises(cg.CircuitError, match="'g', which is not an output"):
        cg.jacobian(c, outputs=["g"])
    with pytest.raises(cg.CircuitError, match="'z', which is not an input"):
        cg.jacobian(c, wrt="z")
    with pytest.raises(cg.CircuitError, match="twice"):
        cg.jacobian(c, outputs=["f", "f"])


# -- sympy -----------------------------------------------------------------------------------

@given(programs(max_ops=6), programs(max_ops=6))
@settings(max_examples=25)
def test_against_sympy_jacobian_on_scalar_circuits(first, second):
    text_f, point_f, _ = first
    text_g, point_g, _ = second
    # g's names apart from f's, so that each program is evaluated at its own point
    text_g = re.sub(r"\b([xv])(\d+)", r"\1g\2", text_g)
    point_g = {re.sub(r"^x", "xg", k): v for k, v in point_g.items()}
    for text in (text_f, text_g):
        if any(f"{name}(" in text for name in ("floor", "ceil", "round")):
            return  # sympy differentiates these as distributions (see test_grad)
    f, g = cg.parse(text_f), cg.parse(text_g)
    names = sorted(set(f.inputs) | set(g.inputs))
    point = {**point_g, **point_f}
    point = {k: point[k] for k in names}
    symbols = [sympy.Symbol(x, real=True) for x in names]
    exprs = sympy.Matrix([cg.to_sympy(f, real=True), cg.to_sympy(g, real=True)])
    want = exprs.jacobian(symbols).subs(dict(zip(symbols, point.values())))
    # The pair through from_sympy, and f as parsed (its own inputs) directly.
    got = evaluate(cg.jacobian(cg.from_sympy({"f": exprs[0], "g": exprs[1]}, inputs=names)),
                   point)
    direct = evaluate(cg.jacobian(f), {x: point[x] for x in f.inputs})
    for x in f.inputs:
        got[f"direct_{x}"] = direct[f"d{f.outputs[0]}_d{x}"]
        assert float(got[f"direct_{x}"]) == pytest.approx(float(got[f"df_d{x}"]),
                                                          rel=1e-12, abs=1e-12)
    for row, out in enumerate(("f", "g")):
        for col, x in enumerate(names):
            value = complex(want[row, col].evalf(30))
            if not math.isfinite(abs(value)) or value.imag:
                continue
            assert float(got[f"d{out}_d{x}"]) == pytest.approx(
                value.real, rel=SYMPY_RTOL * 100, abs=SYMPY_RTOL * 100)


# -- random vector-valued programs -----------------------------------------------------------

def vector_valued(text: str) -> str:
    """The program without its summing line ``J = ...``: its last value is the output."""
    return "\n".join(text.splitlines()[:-1])


@given(vector_programs())
@settings(max_examples=40)
def test_random_vector_programs_modes_agree_and_match_central_differences(case):
    c, point = case
    results = {}
    for mode in ("reverse", "forward", "auto"):
        j = cg.jacobian(c, mode=mode)
        j.validate()
        results[mode] = evaluate(j, point)
    f = c.outputs[0]
    for x in c.inputs:
        name = f"d{f}_d{x}"
        reverse, forward = results["reverse"][name], results["forward"][name]
        assert reverse.shape == c.output_shapes[f] + c.input_shapes[x]
        scale = max(1.0, float(np.max(np.abs(reverse), initial=0.0)))
        np.testing.assert_allclose(forward, reverse, rtol=0, atol=MODES_RTOL * scale)
        np.testing.assert_array_equal(results["auto"][name], results[
            "reverse" if math.prod(c.output_shapes[f]) <= sum(
                math.prod(s) for s in c.input_shapes.values()) else "forward"][name])
        np.testing.assert_allclose(reverse, central_jacobian(c, point, f, x),
                                   rtol=FD_RTOL, atol=FD_RTOL * scale)


@given(tensor_programs(max_ops=5), st.integers(0, 2**32 - 1))
@settings(max_examples=25)
def test_random_jacobian_circuits_follow_the_batch_semantics(case, seed):
    text, shapes = case
    c = cg.parse(vector_valued(text), shapes=shapes, inputs=list(shapes))
    for mode in ("reverse", "forward"):
        j = cg.jacobian(c, mode=mode)
        assert_points_agree(j, batch_of(j, seed, (3,)), (3,))


# -- front-ends ------------------------------------------------------------------------------

def test_every_front_end_gives_the_same_jacobian():
    x, y = sympy.symbols("x y", real=True)
    made = {
        "parse": cg.parse("f0 = x * sin(y)\nf1 = exp(x) * y", outputs=["f0", "f1"]),
        "sympy": cg.from_sympy([x * sympy.sin(y), sympy.exp(x) * y]),
        "trace": cg.trace(lambda x, y: (x * cg.sin(y), cg.exp(x) * y)),
    }
    want = np.array([[np.sin(-0.5), 0.3 * np.cos(-0.5)], [np.exp(0.3) * -0.5, np.exp(0.3)]])
    for how, c in made.items():
        got = evaluate(cg.jacobian(c), {"x": 0.3, "y": -0.5})
        f0, f1 = c.outputs
        have = np.array([[got[f"d{f}_d{v}"] for v in ("x", "y")] for f in (f0, f1)], float)
        np.testing.assert_allclose(have, want, rtol=NOTES_RTOL, err_msg=how)
    traced = cg.trace(lambda v: cg.tanh(v[1:] * v[:-1]), shapes={"v": (4,)})
    got = evaluate(cg.jacobian(traced), {"v": np.array([0.1, 0.2, 0.3, 0.4])})
    assert got[f"d{traced.outputs[0]}_dv"].shape == (3, 4)


# -- sweeps ----------------------------------------------------------------------------------

@pytest.mark.parametrize("out_shape, in_shape", [((), (5,)), ((4,), (3,)), ((2, 3), (2, 2)),
                                                 ((3,), ())])
def test_reverse_makes_one_sweep_per_output_entry_forward_one_per_input_entry(
        monkeypatch, out_shape, in_shape):
    calls = {"adjoint": 0, "tangent": 0}

    def counting(kind, real):
        def sweep(*args, **kwargs):
            calls[kind] += 1
            return real(*args, **kwargs)
        return sweep

    monkeypatch.setattr(jacobian_module, "adjoint_sweep",
                        counting("adjoint", jacobian_module.adjoint_sweep))
    monkeypatch.setattr(jacobian_module, "tangent_sweep",
                        counting("tangent", jacobian_module.tangent_sweep))
    W = np.random.default_rng(0).normal(size=out_shape + in_shape)
    b = cg.circuit.Builder()
    x = b.input("x", in_shape)
    if in_shape:
        axes = tuple(range(-len(in_shape), 0))
        out = cg.sum(cg.sin(x) * b.const(W), axis=axes[0]) if len(in_shape) == 1 else \
            cg.sum(cg.sum(cg.sin(x) * b.const(W), axis=-1), axis=-1)
    else:
        out = cg.sin(x) * b.const(W)
    c = b.finish([("f", out)])
    assert c.output_shapes["f"] == out_shape
    n_out, n_in = math.prod(out_shape), math.prod(in_shape)
    results = {}
    for mode in ("reverse", "forward", "auto"):
        calls.update(adjoint=0, tangent=0)
        j = cg.jacobian(c, mode=mode)
        used = j.meta["mode"]
        assert used == mode if mode != "auto" else used == (
            "reverse" if n_out <= n_in else "forward")
        assert calls == ({"adjoint": n_out, "tangent": 0} if used == "reverse"
                         else {"adjoint": 0, "tangent": n_in})
        assert j.meta["sweeps"] == (n_out if used == "reverse" else n_in)
        results[mode] = evaluate(j, {"x": np.full(in_shape, 0.3)})["df_dx"]
    np.testing.assert_allclose(results["forward"], results["reverse"], rtol=MODES_RTOL)
    np.testing.assert_allclose(results["reverse"], np.cos(0.3) * W, rtol=NOTES_RTOL)


# -- solvers ---------------------------------------------------------------------------------

def chained_rosenbrock(n):
    """scipy's fun, jac and hess from a traced chained Rosenbrock of n variables."""
    c = cg.trace(lambda x: np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2),
                 shapes={"x": (n,)})
    value, gradient, hessian = (cg.to_numpy(c), cg.to_numpy(cg.grad(c)),
                                cg.to_numpy(cg.hessian(c)))
    out = c.outputs[0]
    return (lambda x: float(value(x=x)), lambda x: gradient(x=x)[1],
            lambda x: getattr(hessian(x=x), f"d2{out}_dx_dx"))


def test_rosenbrock_gradient_and_hessian_are_scipys():
    from scipy import optimize

    fun, jac, hess = chained_rosenbrock(7)
    x = np.random.default_rng(5).normal(size=7)
    assert fun(x) == pytest.approx(optimize.rosen(x), rel=NOTES_RTOL)
    np.testing.assert_allclose(jac(x), optimize.rosen_der(x), rtol=NOTES_RTOL)
    np.testing.assert_allclose(hess(x), optimize.rosen_hess(x), rtol=NOTES_RTOL, atol=1e-12)


@pytest.mark.parametrize("method", ["Newton-CG", "trust-constr"])
def test_newton_methods_solve_a_100_variable_rosenbrock(method):
    from scipy import optimize

    fun, jac, hess = chained_rosenbrock(100)
    options = {"xtol": 1e-12} if method == "Newton-CG" else {"gtol": 1e-12, "xtol": 1e-14}
    result = optimize.minimize(fun, np.zeros(100), jac=jac, hess=hess, method=method,
                               options=options)
    assert hess(result.x).shape == (100, 100)
    np.testing.assert_allclose(result.x, np.ones(100), rtol=0, atol=1e-6)


def test_least_squares_with_the_jacobian_fits_a_curve_exactly():
    from scipy import optimize

    c = cg.parse("r = a * exp(-k * t) + sin(w * t) * p[0] + p[1] - y",
                 shapes={"t": (25,), "y": (25,), "p": (2,)})
    j = cg.to_numpy(cg.jacobian(c, wrt=["a", "k", "w", "p"], outputs="r"))
    t = np.linspace(0.0, 2.0, 25)
    best = {"a": 1.5, "k": 0.8, "w": 2.0, "p": np.array([0.3, -0.2])}
    y = best["a"] * np.exp(-best["k"] * t) + np.sin(best["w"] * t) * 0.3 - 0.2

    def split(q):
        return {"a": q[0], "k": q[1], "w": q[2], "p": q[3:], "t": t, "y": y}

    def jacobian(q):
        out = j(**split(q))
        return np.column_stack([out.dr_da, out.dr_dk, out.dr_dw, out.dr_dp])

    fit = optimize.least_squares(lambda q: j(**split(q)).r, np.array([1.0, 1.0, 1.8, 0, 0]),
                                 jac=jacobian, xtol=1e-15, ftol=1e-15, gtol=1e-15)
    np.testing.assert_allclose(fit.x, [1.5, 0.8, 2.0, 0.3, -0.2], rtol=0, atol=1e-6)
    assert jacobian(fit.x).shape == (25, 5)


# -- sparse Jacobians --------------------------------------------------------------------------

to_csr = jacobian_module.to_csr


def test_a_banded_jacobian_takes_as_many_sweeps_as_colors():
    rosen = cg.parse("J = sum(100 * square(x[1:] - square(x[:-1])) + square(1 - x[:-1]))",
                     shapes={"x": (30,)})
    g = cg.grad(rosen)
    point = {"x": np.random.default_rng(3).normal(size=30)}
    dense = evaluate(cg.hessian(rosen), point)["d2J_dx_dx"]
    for mode in ("forward", "reverse", "auto"):
        j = cg.jacobian(g, outputs="dJ_dx", mode=mode, sparse=True)
        j.validate()
        assert j.meta["sweeps"] == 3  # a tridiagonal matrix: three colors, not 30 sweeps
        assert j.outputs == ("dJ_dx", "jacobian")
        got = evaluate(j, point)["jacobian"]
        assert isinstance(got, scipy.sparse.csr_array) and got.shape == (30, 30)
        assert got.nnz == 30 + 2 * 29
        np.testing.assert_allclose(got.toarray(), dense, rtol=MODES_RTOL, atol=0)


@pytest.mark.parametrize("lower, upper", [(0, 1), (1, 1), (2, 0), (2, 3)])
def test_banded_jacobians_take_the_band_width_in_sweeps_at_every_n(lower, upper):
    """Row i depends on columns i .. i + lower + upper: w = lower + upper + 1 nonzeros in a
    row (and a column), so no coloring can take fewer than w sweeps, and this one takes w."""
    width = lower + upper + 1
    for n in (2 * width + 2, 40, 2000):  # at least width rows
        terms = [f"{k + lower + 2} * square(x[{lower + k}:{n - upper + k}])"
                 for k in range(-lower, upper + 1)]
        c = cg.parse("f = " + " + ".join(terms), shapes={"x": (n,)})
        x = np.random.default_rng(n).uniform(-1, 1, n)
        for mode in ("forward", "reverse", "auto"):
            j = cg.jacobian(c, mode=mode, sparse=True)
            assert j.meta["sweeps"] == width, (n, mode)
            got = cg.to_numpy(j)(x=x).jacobian
            assert got.nnz == width * (n - lower - upper)
        if n <= 40:
            dense = evaluate(cg.jacobian(c), {"x": x})["df_dx"]
            np.testing.assert_allclose(got.toarray(), dense, rtol=1e-15, atol=0)


def assert_compressed_points_agree(j: cg.Circuit, batch: tuple[int, ...], seed: int) -> None:
    """With csr=False a sparse circuit batches like any other (its nonzeros get the batch
    axes); with CSR output, a batch is a ShapeError (CSR is 2-D) and each point is the CSR
    of that point's nonzeros."""
    values = batch_of(j, seed, batch)
    for mode in ("compile", "interpret"):
        compressed = cg.to_numpy(j, mode=mode, csr=False)
        matrices = cg.to_numpy(j, mode=mode)
        out = compressed(**values).jacobian
        assert out.shape == batch + (len(j.meta["csr_outputs"]["jacobian"]["indices"]),)
        with pytest.raises(cg.ShapeError, match="CSR is 2-D"):
            matrices(**values)
        for k in np.ndindex(batch):
            point = {n: v[k] for n, v in values.items()}
            np.testing.assert_array_equal(compressed(**point).jacobian, out[k])
            np.testing.assert_array_equal(matrices(**point).jacobian.data, out[k])


@given(vector_programs())
@settings(max_examples=30)
def test_random_sparse_jacobians_equal_the_dense_ones(case):
    c, point = case
    dense = evaluate(cg.jacobian(c, mode="reverse"), point)
    f = c.outputs[0]
    want = np.hstack([np.reshape(dense[f"d{f}_d{x}"], (math.prod(c.output_shapes[f]), -1))
                      for x in c.inputs])
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    for mode in ("forward", "reverse"):
        j = cg.jacobian(c, mode=mode, sparse=True)
        got = evaluate(j, point)["jacobian"]
        assert isinstance(got, scipy.sparse.csr_array)
        np.testing.assert_allclose(got.toarray(), want, rtol=0, atol=MODES_RTOL * scale)
        # the compressed values are the CSR's, and to_csr makes the same matrix of them
        data = evaluate_compressed(j, point)["jacobian"]
        np.testing.assert_array_equal(to_csr(j, data).toarray(), got.toarray())
        assert j.meta["sweeps"] <= want.shape[1 if mode == "forward" else 0]
    assert_compressed_points_agree(j, (2,), 7)


def evaluate_compressed(j: cg.Circuit, point: dict) -> dict:
    return cg.to_numpy(j, csr=False)(**point)._asdict()


def test_least_squares_with_a_sparse_jacobian_solves_a_200_variable_rosenbrock():
    from scipy import optimize

    c = cg.parse("r = concatenate([10 * (x[1:] - square(x[:-1])), 1 - x[:-1]])",
                 shapes={"x": (200,)})
    j = cg.jacobian(c, sparse=True)
    f = cg.to_numpy(j)
    assert j.meta["sweeps"] <= 3
    pattern = cg.jacobian_sparsity(c)
    fit = optimize.least_squares(lambda x: f(x=x).r, np.zeros(200), jac=lambda x: f(x=x).jacobian,
                                 jac_sparsity=pattern, xtol=1e-15, ftol=1e-15, gtol=1e-15)
    np.testing.assert_allclose(fit.x, np.ones(200), rtol=0, atol=1e-6)
    nnz = len(j.meta["csr_outputs"]["jacobian"]["indices"])
    with pytest.raises(cg.ShapeError, match="one point"):
        to_csr(j, np.zeros((2, nnz)))
    with pytest.raises(cg.CircuitError, match="sparse=True"):
        to_csr(cg.jacobian(c), np.zeros(3))
    with pytest.raises(cg.CircuitError, match="not sparse"):
        to_csr(j, np.zeros(nnz), output="r")
    with pytest.raises(cg.ShapeError, match="CSR is 2-D"):
        f(x=np.zeros((3, 200)))


def test_trust_constr_with_sparse_constraint_jacobians_solves_a_chained_problem():
    """n = 1000 inequality constraints' Jacobian and Lagrangian Hessian as scipy.sparse
    matrices from sparse circuits: the KKT point x = 1 with every multiplier 1."""
    from scipy import optimize
    from test_examples import load

    example = load("optimize")
    n = 1000
    fun, jac, hess, constraint = example.chained_constrained(n)
    x = np.random.default_rng(2).uniform(0.5, 2.0, n)
    j = constraint.jac(x)
    assert isinstance(j, scipy.sparse.csr_array) and j.shape == (n - 1, n) and j.nnz == 2 * (n - 1)
    np.testing.assert_array_equal(j.diagonal(), x[1:])
    np.testing.assert_array_equal(j.diagonal(1), x[:-1])
    v = np.random.default_rng(3).uniform(0.0, 1.0, n - 1)
    h = constraint.hess(x, v)  # Σ vᵢ ∇²(xᵢ xᵢ₊₁): v on the off-diagonals
    np.testing.assert_array_equal(h.diagonal(1), v)
    assert h.nnz == 2 * (n - 1)
    result = optimize.minimize(fun, np.full(n, 2.0), jac=jac, hess=hess,
                               constraints=[constraint], method="trust-constr",
                               options={"gtol": 1e-12, "xtol": 1e-14, "barrier_tol": 1e-12})
    assert result.success and result.constr_violation < 1e-10
    np.testing.assert_allclose(result.x, np.ones(n), rtol=0, atol=1e-6)
    # scipy's multipliers of lower bounds are ≤ 0
    # (the estimates drift along the chain by ~n times the error in x)
    np.testing.assert_allclose(-result.v[0], np.ones(n - 1), rtol=0, atol=1e-3)


def test_hock_schittkowski_71_with_slsqp_and_trust_constr():
    from test_examples import load

    example = load("optimize")
    results = example.solve_hs71()
    for method, result in results.items():
        assert result.success, method
        assert result.fun == pytest.approx(17.0140173, abs=1e-6)
        np.testing.assert_allclose(result.x, example.HS71_SOLUTION, rtol=0, atol=1e-6)


@given(tensor_programs(max_ops=6))
@settings(max_examples=40)
def test_jacobian_size_is_o_of_sweeps_times_the_circuit(case):
    from circuitgrad.transforms.grad import TENSOR_SIZE_FACTOR, bound_size
    from circuitgrad.transforms.jvp import JVP_SIZE_FACTOR

    text, shapes = case
    c = cg.parse(vector_valued(text), shapes=shapes, inputs=list(shapes))
    pairs = len(c.outputs) * len(c.inputs)
    for mode, per_sweep in (("reverse", TENSOR_SIZE_FACTOR * bound_size(c) + len(c.inputs)),
                            ("forward", JVP_SIZE_FACTOR * c.size)):
        j = cg.jacobian(c, mode=mode, simplify=False)
        # each sweep, plus a stack and a reshape per block
        assert j.size <= c.size + j.meta["sweeps"] * per_sweep + 2 * pairs, mode


def test_each_csr_matrix_owns_its_arrays():
    """Editing one returned matrix in place (eliminate_zeros rewrites indices and indptr)
    leaves the next call's matrix alone."""
    c = cg.parse("f = x * x", shapes={"x": (4,)})
    f = cg.to_numpy(cg.jacobian(c, sparse=True))
    first = f(x=[0.0, 1.0, 0.0, 2.0]).jacobian
    first.eliminate_zeros()
    assert first.nnz == 2
    again = f(x=[1.0, 1.0, 1.0, 1.0]).jacobian
    assert again.nnz == 4
    np.testing.assert_array_equal(again.toarray(), 2 * np.eye(4))
