"""NumPy's numeric functions on traced values (issue 26): the records remainder, floor_divide,
fmod, fmax, fmin, logaddexp2 and the compositions of frontends/numpy_api/elementwise.py.
Values against NumPy (special values, batches, every lowering), derivatives against central
differences, sympy and hand formulas, and the refusals."""

import itertools
import math
import warnings

import numpy as np
import pytest

import circuitgrad as cg
from circuitgrad.errors import CircuitError, ShapeError

SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, 2.0, -3.5, 7.0, 1e-300, 1e300,
           5e-324, 0.1, 1e16]
X, Y = (np.array(v) for v in zip(*itertools.product(SPECIAL, SPECIAL)))
rng = np.random.default_rng(26)
M = rng.normal(size=(3, 4))
V = rng.normal(size=5)


def same_bits(got, want):
    """Equal with the sign of zero, NaN where NaN."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    nan = np.isnan(want)
    return got.shape == want.shape and bool(np.all(nan == np.isnan(got)) and np.all(
        (got == want)[~nan]) and np.all((np.signbit(got) == np.signbit(want))[~nan]))


def lowerings(c):
    return [cg.to_numpy(c), cg.to_tape(c), cg.to_c(c)]


def traced(f, *args):
    names = [f"a{k}" for k in range(len(args))]
    fn = eval(f"lambda {', '.join(names)}: f({', '.join(names)})", {"f": f})  # noqa: S307
    return cg.trace(fn, shapes={n: np.shape(a) for n, a in zip(names, args)})


def summed(f, *args):
    """sum(sin(f(...))): a scalar of every entry, for central differences."""
    return traced(lambda *a: np.sum(np.sin(f(*a))), *args)


def value(f, *args):
    return cg.to_numpy(traced(f, *args))(*args)


# -- the division ufuncs: % // divmod, remainder, mod, fmod, floor_divide ----------------------

@pytest.mark.parametrize("spelling, numpy", [
    (lambda x, y: x % y, np.remainder), (np.mod, np.remainder), (np.remainder, np.remainder),
    (lambda x, y: x // y, np.floor_divide), (np.floor_divide, np.floor_divide),
    (np.fmod, np.fmod)])
def test_division_ufuncs_are_numpys_bit_for_bit_at_special_values_in_every_lowering(
        spelling, numpy):
    c = cg.trace(spelling)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = numpy(X, Y)
        for f in lowerings(c):
            assert same_bits(f(X, Y), want)  # a batch
        for k in range(0, len(X), 37):  # and its points one by one
            assert same_bits(cg.to_numpy(c)(X[k], Y[k]), want[k])


def test_operators_take_numbers_and_arrays_on_either_side():
    x = np.array([-7.5, -1.0, 0.0, 2.5, 9.0])
    y = np.array([2.0, -3.0, 4.0, -0.75, 2.5])
    assert same_bits(value(lambda a: 5.0 % a, y), 5.0 % y)
    assert same_bits(value(lambda a: a // 2.0, x), x // 2.0)
    assert same_bits(value(lambda a: np.array([3.0, 1, 2, 3, 4]) // a, y), np.array(
        [3.0, 1, 2, 3, 4]) // y)
    q, r = cg.to_numpy(traced(lambda a, b: divmod(a, b), x, y))(x, y)
    assert same_bits(q, x // y) and same_bits(r, x % y)
    q, r = cg.to_numpy(traced(lambda b: divmod(7.0, b), y))(y)
    assert same_bits(q, 7.0 // y) and same_bits(r, 7.0 % y)


def test_remainder_and_fmod_derivatives_are_the_pieces_slopes():
    x = np.array([-7.3, -1.2, 0.4, 2.6, 9.1])
    y = np.array([2.0, -3.0, 0.7, -0.75, 2.5])
    for f, quotient in ((np.remainder, np.floor(x / y)), (np.fmod, np.trunc(x / y))):
        g = cg.to_numpy(cg.grad(traced(lambda a, b, f=f: np.sum(f(a, b)), x, y)))(x, y)
        np.testing.assert_array_equal(g.df_da0, np.ones(5))
        np.testing.assert_array_equal(g.df_da1, -quotient)
        assert cg.check_grad(summed(f, x, y), {"a0": x, "a1": y}) < 1e-6
    g = cg.to_numpy(cg.grad(traced(lambda a, b: np.sum(a // b * a), x, y)))(x, y)
    np.testing.assert_array_equal(g.df_da0, x // y)  # floor_divide's derivative is 0
    np.testing.assert_array_equal(g.df_da1, np.zeros(5))


def test_remainder_at_a_jump_takes_the_right_hand_piece_and_sympy_agrees():
    c = cg.trace(lambda x, y: x % y)
    g = cg.to_numpy(cg.grad(c))(6.0, 3.0)  # 6 % 3 = 0, the start of the piece ⌊6/3⌋ = 2
    assert (float(g.df_dx), float(g.df_dy)) == (1.0, -2.0)
    import sympy

    x, y = sympy.symbols("x y")
    expr = cg.to_sympy(c)
    point = {x: 7.3, y: 2.1}
    assert float(expr.subs(point)) == pytest.approx(7.3 % 2.1, rel=1e-14)
    # sympy's Mod and floor have no derivative: the hand formula -⌊x/y⌋ instead
    assert float(cg.to_numpy(cg.grad(c))(7.3, 2.1).df_dy) == -3.0
    h = cg.to_numpy(cg.grad(cg.trace(lambda x, y: np.fmod(x, y))))(-7.3, 2.1)
    assert float(h.df_dy) == 3.0  # -trunc(-7.3 / 2.1)


def test_gradients_of_the_division_ufuncs_run_compiled():
    c = cg.grad(cg.trace(lambda x, y: np.sum(x % y + np.fmod(x, y) * (x // y)),
                         shapes={"x": (40,), "y": (40,)}))
    x, y = rng.uniform(-5, 5, 40), rng.uniform(0.5, 3, 40)
    want = cg.to_numpy(c)(x, y)
    for f in lowerings(c)[1:]:
        for a, b in zip(f(x, y), want):
            np.testing.assert_allclose(a, b, rtol=1e-12)


# -- std and var -------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [{}, {"axis": 0}, {"axis": -1, "ddof": 1},
                                    {"axis": (0, 1), "keepdims": True}, {"ddof": 2},
                                    {"axis": 1, "keepdims": True, "correction": 1}])
def test_std_and_var_are_numpys(kwargs):
    for name in ("std", "var"):
        f = getattr(np, name)
        np.testing.assert_allclose(value(lambda x, f=f: f(x, **kwargs), M), f(M, **kwargs),
                                   rtol=1e-13)
        method = value(lambda x, name=name: getattr(x, name)(**kwargs), M)
        np.testing.assert_allclose(method, f(M, **kwargs), rtol=1e-13)
        assert cg.check_grad(summed(lambda x, f=f: f(x, **kwargs), M), {"a0": M}) < 1e-6


def test_std_gradient_is_the_hand_formula_and_batches_are_points():
    x = rng.normal(size=6)
    for ddof in (0, 1):
        g = cg.to_numpy(cg.grad(traced(lambda a, d=ddof: np.std(a, ddof=d), x)))(x).df_da0
        want = (x - x.mean()) / ((6 - ddof) * np.std(x, ddof=ddof))
        np.testing.assert_allclose(g, want, rtol=1e-12)
    c = traced(lambda a: np.var(a, axis=-1, ddof=1), M)
    batch = rng.normal(size=(7, 3, 4))
    out = cg.to_numpy(c)(batch)
    for k in range(7):
        np.testing.assert_array_equal(out[k], cg.to_numpy(c)(batch[k]))
    np.testing.assert_allclose(out, np.var(batch, axis=-1, ddof=1), rtol=1e-13)


def test_std_with_a_given_mean_and_too_many_degrees_of_freedom():
    mean = M.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(value(lambda x: np.std(x, axis=1, mean=mean), M),
                               np.std(M, axis=1, mean=mean), rtol=1e-13)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isinf(value(lambda x: np.var(x, ddof=12), M))  # NumPy's inf (÷ 0)
        # at a constant vector std′ is 0/0: NaN, as NumPy-based JAX gives too
        g = cg.to_numpy(cg.grad(traced(lambda a: np.std(a), np.ones(3))))(np.ones(3))
    assert np.isnan(g.df_da0).all()


# -- logaddexp2, logaddexp, fmax, fmin --------------------------------------------------------

def test_logaddexp2_and_fmax_fmin_are_numpys_at_special_values():
    for op in (np.logaddexp2, np.logaddexp):
        with np.errstate(all="ignore"):
            want = op(X, Y)
        for f in lowerings(cg.trace(op)):
            got = f(X, Y)
            assert same_bits(np.where(np.isfinite(want), want, got), want)
            np.testing.assert_allclose(got, want, rtol=4e-16)
    for op in (np.fmax, np.fmin):
        want = op(X, Y)
        zeros = (X == 0) & (Y == 0)  # np.fmax's own SIMD loop returns either zero there
        for f in lowerings(cg.trace(op)):
            got = f(X, Y)
            assert same_bits(got[~zeros], want[~zeros])
            assert same_bits(got[zeros], X[zeros])  # circuitgrad: the first, everywhere


def test_logaddexp2_derivative_is_two_to_the_difference():
    c = cg.trace(lambda a, b: np.logaddexp2(a, b))
    g = cg.to_numpy(cg.grad(c))(1000.0, 999.0)
    assert float(g.df_da) == pytest.approx(2 / 3, rel=1e-15)
    assert float(g.df_db) == pytest.approx(1 / 3, rel=1e-15)
    import sympy

    a, b = sympy.symbols("a b")
    expr = cg.to_sympy(c)
    for sym, got in ((a, "df_da"), (b, "df_db")):
        want = float(sympy.diff(expr, sym).subs({a: 0.3, b: -1.2}))
        assert float(getattr(cg.to_numpy(cg.grad(c))(0.3, -1.2), got)) == pytest.approx(
            want, rel=1e-13)


def test_fmax_fmin_derivative_goes_to_the_argument_returned():
    c = cg.grad(cg.trace(lambda a, b: np.sum(np.fmax(a, b) + 3 * np.fmin(a, b)),
                         shapes={"a": (5,), "b": (5,)}))
    a = np.array([1.0, np.nan, 2.0, 5.0, np.nan])
    b = np.array([np.nan, 1.0, 2.0, -1.0, np.nan])
    g = cg.to_numpy(c)(a, b)
    np.testing.assert_array_equal(g.df_da[:4], [4.0, 0.0, 2.0, 1.0])
    np.testing.assert_array_equal(g.df_db[:4], [0.0, 4.0, 2.0, 3.0])


# -- arithmetic ufuncs and the ones that were already records ---------------------------------

@pytest.mark.parametrize("ufunc", [np.deg2rad, np.rad2deg, np.radians, np.degrees,
                                   np.reciprocal, np.fabs, np.positive])
def test_arithmetic_ufuncs_are_numpys_bit_for_bit(ufunc):
    x = np.concatenate([M.ravel(), [0.0, -0.0, np.inf, -np.inf, np.nan, 1e308, 5e-324]])
    with np.errstate(all="ignore"):
        assert same_bits(value(ufunc, x), ufunc(x))
    assert cg.check_grad(summed(ufunc, M + 2.0), {"a0": M + 2.0}) < 1e-6


@pytest.mark.parametrize("ufunc", [np.absolute, np.sign, np.expm1, np.log1p, np.log2,
                                   np.log10, np.exp2, np.square, np.sqrt, np.negative,
                                   np.hypot, np.arctan2, np.power, np.true_divide, np.maximum,
                                   np.minimum, np.logaddexp])
def test_the_other_ufuncs_of_the_list_trace(ufunc):
    args = (np.abs(M) + 0.5,) * ufunc.nin if ufunc.nin == 1 else (np.abs(M) + 0.5, M[::-1])
    np.testing.assert_allclose(value(ufunc, *args), ufunc(*args), rtol=1e-14)


def test_float_power_is_cs_pow_everywhere_and_differs_from_power_where_numpy_does():
    with np.errstate(all="ignore"):
        want = np.float_power(X, Y)
        for f in lowerings(cg.trace(np.float_power)):
            got = f(X, Y)
            assert same_bits(np.where(np.isfinite(want), want, got), want)
            np.testing.assert_allclose(got, want, rtol=4e-16)
        # power's sqrt at 0.5 gives -0.0 and NaN; C's pow gives 0.0 and inf
        x = np.array([-0.0, -np.inf])
        assert same_bits(value(lambda a: np.float_power(a, 0.5), x), [0.0, np.inf])
        assert same_bits(value(lambda a: np.power(a, 0.5), x), [-0.0, np.nan])
    g = cg.to_numpy(cg.grad(cg.trace(lambda a, b: np.float_power(a, b))))(2.0, 3.0)
    assert (float(g.df_da), float(g.df_db)) == (12.0, pytest.approx(8 * math.log(2), rel=1e-15))
    assert float(cg.to_numpy(cg.grad(cg.trace(lambda a: np.float_power(a, 3.0))))(2.0).df_da) == 12


def test_sinc_is_numpys_and_exact_at_its_removable_singularity():
    x = np.concatenate([V * 3, [0.0, -0.0, 1e-300, 1e-9, 1.0, -2.0, 1e6, np.inf, np.nan]])
    with np.errstate(invalid="ignore"):
        for f in lowerings(cg.trace(np.sinc)):
            assert same_bits(f(x), np.sinc(x))
    c = cg.trace(lambda x: np.sinc(x))
    h = cg.to_numpy(cg.hessian(c))(0.0)
    assert (float(h.f), float(h.df_dx)) == (1.0, 0.0)
    assert float(h.d2f_dx_dx) == pytest.approx(-math.pi**2 / 3, rel=1e-15)
    import sympy

    t = sympy.Symbol("t")
    exact = sympy.sin(sympy.pi * t) / (sympy.pi * t)
    for point in (1e-7, 0.3, 1.7, -4.2, 31.5):
        g = cg.to_numpy(cg.hessian(c))(point)
        at = {t: sympy.Float(point, 40)}  # 40 digits: the formulas cancel near 0
        assert float(g.df_dx) == pytest.approx(float(sympy.diff(exact, t).evalf(40, subs=at)),
                                               rel=1e-13)
        assert float(g.d2f_dx_dx) == pytest.approx(float(sympy.diff(exact, t, 2).evalf(
            40, subs=at)), rel=1e-12)
    assert cg.check_grad(summed(np.sinc, V), {"a0": V}) < 1e-6


def test_nan_to_num_with_its_arguments():
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 2.5])
    assert same_bits(value(np.nan_to_num, x), np.nan_to_num(x))
    f = lambda a: np.nan_to_num(a, nan=-1.0, posinf=7.0, neginf=-9.0)  # noqa: E731
    assert same_bits(value(f, x), f(x))
    g = cg.to_numpy(cg.grad(traced(lambda a: np.sum(np.nan_to_num(a) * 2.0), x)))(x)
    np.testing.assert_array_equal(g.df_da0, [0.0, 0.0, 0.0, 2.0, 2.0])  # 0 where replaced


# -- selections and polynomials ---------------------------------------------------------------

def test_select_polyval_ptp_average():
    f = lambda x: np.select([x > 0.5, x < -0.5], [x, x * x], default=-1.0)  # noqa: E731
    np.testing.assert_array_equal(value(f, M), f(M))
    for p in ([1.0, -2.0, 3.0], np.array([0.5, 0.0, -1.0, 2.0])):
        np.testing.assert_array_equal(value(lambda x, p=p: np.polyval(p, x), M), np.polyval(p, M))
    np.testing.assert_array_equal(value(np.polyval, V, M), np.polyval(V, M))
    with np.errstate(invalid="ignore"):  # NumPy's Horner starts from 0·x: NaN at inf
        assert np.isnan(value(lambda x: np.polyval([1.0, 2.0], x), np.inf))
    g = cg.to_numpy(cg.grad(traced(lambda x: np.polyval([1.0, -2.0, 3.0, 1.0], x), 0.7)))(0.7)
    assert float(g.df_da0) == pytest.approx(3 * 0.49 - 4 * 0.7 + 3, rel=1e-14)
    np.testing.assert_array_equal(value(lambda x: np.ptp(x, axis=1), M), np.ptp(M, axis=1))
    w = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(value(lambda x: np.average(x, axis=1, weights=w), M),
                               np.average(M, axis=1, weights=w), rtol=1e-14)
    got = cg.to_numpy(traced(lambda x, v: np.average(x, weights=v, returned=True), M, M * M))(
        M, M * M)
    for a, b in zip(got, np.average(M, weights=M * M, returned=True)):
        np.testing.assert_allclose(a, b, rtol=1e-14)
    assert cg.check_grad(summed(lambda x, v: np.average(x, axis=0, weights=v), M, M * M),
                         {"a0": M, "a1": M * M}) < 1e-6


def test_cumprod_is_exact_with_zeros():
    x = np.array([2.0, 0.0, 3.0, 0.0, 5.0])
    c = traced(lambda a: np.cumprod(a), x)
    np.testing.assert_array_equal(cg.to_numpy(c)(x), np.cumprod(x))
    jac = cg.to_numpy(cg.jacobian(c))(x)
    jac = np.asarray(getattr(jac, jac._fields[-1]))
    # ∂(x₀···xᵢ)/∂xⱼ = the product of the others of the prefix, j ≤ i: no 0/0 anywhere
    want = np.array([[np.prod(np.delete(x[:i + 1], j)) if j <= i else 0.0 for j in range(5)]
                     for i in range(5)])
    np.testing.assert_array_equal(jac, want)
    np.testing.assert_array_equal(value(lambda a: np.cumprod(a, axis=0), M), np.cumprod(M, 0))
    np.testing.assert_array_equal(value(lambda a: a.cumprod(), M), M.cumprod())


# -- interp, gradient, convolve, correlate -----------------------------------------------------

XP, FP = [-1.0, 0.0, 0.5, 2.0], [1.0, 3.0, -1.0, 0.0]


def test_interp_is_numpys_at_breakpoints_outside_and_at_nan():
    x = np.array([-5.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.9, 2.0, 3.0, np.nan, np.inf, -np.inf])
    np.testing.assert_array_equal(value(lambda a: np.interp(a, XP, FP), x), np.interp(x, XP, FP))
    f = lambda a: np.interp(a, XP, FP, left=-7.0, right=9.0)  # noqa: E731
    np.testing.assert_array_equal(value(f, x), f(x))
    g = cg.to_numpy(cg.grad(traced(lambda a: np.sum(np.interp(a, XP, FP)), x[:9])))(x[:9])
    # the slope of the segment [xp[j], xp[j+1]) each x lies in; 0 outside
    np.testing.assert_array_equal(g.df_da0, [0.0, 2.0, 2.0, -8.0, -8.0, 2 / 3, 2 / 3, 0.0, 0.0])
    fp = np.array(FP)
    np.testing.assert_array_equal(value(lambda a, v: np.interp(a, XP, v), x, fp),
                                  np.interp(x, XP, fp))
    assert cg.check_grad(summed(lambda a, v: np.interp(a, XP, v), x[2:7] + 0.01, fp),
                         {"a0": x[2:7] + 0.01, "a1": fp}) < 1e-6


@pytest.mark.parametrize("edge_order", [1, 2])
def test_gradient_is_numpys(edge_order):
    coords = np.array([0.0, 0.3, 1.0, 1.1])
    cases = [(lambda f: np.gradient(f, edge_order=edge_order), M),
             (lambda f: np.gradient(f, 0.5, axis=1, edge_order=edge_order), M),
             (lambda f: np.gradient(f, 2.0, coords, edge_order=edge_order), M),
             (lambda f: np.gradient(f, coords, axis=-1, edge_order=edge_order), M),
             (lambda f: np.gradient(f, edge_order=edge_order), V),
             (lambda f: np.gradient(f, np.arange(3.0), edge_order=edge_order), V[:3])]
    for f, x in cases:
        got, want = value(f, x), f(x)
        for a, b in zip(got if isinstance(want, tuple) else [got],
                        want if isinstance(want, tuple) else [want]):
            np.testing.assert_array_equal(a, b)
        first = (lambda a, f=f: f(a)[0]) if isinstance(want, tuple) else f
        assert cg.check_grad(summed(first, x), {"a0": x}) < 1e-6


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_convolve_and_correlate_are_numpys_with_either_operand_traced(mode):
    for n, m in ((5, 3), (3, 5), (4, 4), (1, 3)):
        a, v = rng.normal(size=n), rng.normal(size=m)
        for op in (np.convolve, np.correlate):
            want = op(a, v, mode)
            for got in (value(lambda x, op=op: op(x, v, mode), a),
                        value(lambda y, op=op: op(a, y, mode), v),
                        cg.to_numpy(traced(lambda x, y, op=op: op(x, y, mode), a, v))(a, v)):
                np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
            assert cg.check_grad(summed(lambda x, y, op=op: op(x, y, mode), a, v),
                                 {"a0": a, "a1": v}) < 1e-6


# -- refusals: by name, at the user's line ------------------------------------------------------

@pytest.mark.parametrize("f, match", [
    (lambda x: np.interp(0.5, x, [1.0, 2.0, 3.0]), "traced sample points xp"),
    (lambda x: np.interp(x, [0.0, 0.0, 1.0], [1.0, 2.0, 3.0]), "strictly increasing"),
    (lambda x: np.gradient(x, edge_order=3), "edge_order=3"),
    (lambda x: np.gradient(x, x), "traced spacings"),
    (lambda x: np.convolve(x, [1.0, 2.0], mode="circular"), "mode='circular'"),
    (lambda x: np.nan_to_num(x, nan=x[0]), "nan= must be a number"),
    (lambda x: np.std(x, where=x > 0), "where="),
    (lambda x: np.var(x, ddof=x[0]), "ddof must be a number"),
    (lambda x: np.var(x, ddof=1, correction=1), "the same argument"),
    (lambda x: np.select([x > 0], [x, x]), "same length"),
])
def test_what_does_not_trace_is_refused_by_name_at_the_users_line(f, match):
    with pytest.raises(CircuitError, match=match) as e:
        cg.trace(f, shapes={"x": (3,)})
    assert "test_numeric_functions.py" in str(e.value)


def test_shape_errors_name_the_function():
    with pytest.raises(ShapeError, match="numpy.average: length 2 of weights"):
        cg.trace(lambda x: np.average(x, axis=1, weights=[1.0, 2.0]), shapes={"x": (3, 4)})
    with pytest.raises(ShapeError, match="too small"):
        cg.trace(lambda x: np.gradient(x, edge_order=2), shapes={"x": (2,)})
    assert math.isclose(value(lambda x: np.gradient(x)[0], np.array([1.0, 4.0])), 3.0)


def test_programs_write_the_same_operators_and_functions():
    c = cg.parse("J = x % y + fmod(x, y) * (x // y) + logaddexp2(x, y) + fmax(x, y)")
    t = cg.trace(lambda x, y: x % y + np.fmod(x, y) * (x // y) + np.logaddexp2(x, y)
                 + np.fmax(x, y))
    assert [c.op(i) for i in range(len(c))] == [t.op(i) for i in range(len(t))]
    assert float(cg.to_numpy(c)(-7.0, 2.0)) == (-7.0 % 2.0 + math.fmod(-7.0, 2.0) * (-7.0 // 2.0)
                                               + np.logaddexp2(-7.0, 2.0) + 2.0)


def test_the_complex_number_functions_of_real_values_are_numpys():
    x = np.array([1.5, -2.0, -0.0, 0.0, np.nan, -np.inf])
    for f in (np.real, np.conjugate, np.real_if_close, np.angle,
              lambda v: np.angle(v, deg=True)):
        c = cg.trace(lambda v: f(v), shapes={"v": (6,)})
        np.testing.assert_array_equal(cg.to_numpy(c)(x), f(x))

    def write_through_real(v):
        np.real(v)[0] = 7.0  # np.real of a real array is a view of it
        return v

    c = cg.trace(write_through_real, shapes={"v": (6,)})
    np.testing.assert_array_equal(cg.to_numpy(c)(x.copy()), write_through_real(x.copy()))
    g = cg.trace(lambda v: np.sum(np.conj(v) ** 2 + np.angle(v)), shapes={"v": (3,)})
    np.testing.assert_array_equal(cg.to_numpy(cg.grad(g))(np.array([1.0, -2.0, 3.0]))[1],
                                  [2.0, -4.0, 6.0])
    with pytest.raises(cg.CircuitError, match="imag"):
        cg.trace(lambda v: np.imag(v), shapes={"v": (3,)})
