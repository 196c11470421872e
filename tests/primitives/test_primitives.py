"""Every primitive: values against an independent NumPy reference, template = evaluation."""

import math
import warnings

import numpy as np
import pytest

import circuitgrad as cg
from circuitgrad.circuit import LEAVES
from circuitgrad.builder import Builder
from circuitgrad.primitives import PRIMITIVES, evaluate

from specs import SPECS  # one spec per primitive

OPS = [op for op in PRIMITIVES if op not in LEAVES]


def test_every_primitive_has_a_spec():
    assert sorted(SPECS) == sorted(OPS)


@pytest.mark.parametrize("op", OPS)
def test_evaluation_matches_reference(op):
    ref, args, params = SPECS[op][:3]
    np.testing.assert_allclose(evaluate(op, args, params), ref(*args), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("op", OPS)
def test_lowered_template_matches_evaluation(op):
    _, args, params = SPECS[op][:3]
    b = Builder()
    nodes = [b.input(f"a{k}", np.shape(a)) for k, a in enumerate(args)]
    out = b.apply(op, *nodes, **params)
    c = b.finish([("f", out)])
    for mode in ("compile", "interpret"):
        got = cg.to_numpy(c, mode=mode)(*args)
        np.testing.assert_array_equal(got, evaluate(op, args, params))


@pytest.mark.parametrize("op", OPS)
def test_every_primitive_has_label_and_rule(op):
    prim = PRIMITIVES[op]
    assert prim.label
    assert prim.partials is not None or prim.vjp is not None


def test_sigmoid_is_stable():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert evaluate("sigmoid", (-1000.0,)) == 0.0
        assert evaluate("sigmoid", (1000.0,)) == 1.0
        assert evaluate("sigmoid", (0.0,)) == 0.5
        x = np.array([-1e308, -745.0, -40.0, 40.0, 1e308])
        s = evaluate("sigmoid", (x,))
        assert np.all((s >= 0) & (s <= 1))


def test_relu_and_step_follow_the_notes_convention():
    assert evaluate("relu", (0.0,)) == 0.0
    assert evaluate("step", (0.0,)) == 1.0  # relu'(0) = 1(0 >= 0) = 1
    assert evaluate("step", (-1e-300,)) == 0.0


def test_ieee_semantics():
    with np.errstate(all="ignore"):
        assert evaluate("log", (0.0,)) == -np.inf
        assert np.isnan(evaluate("log", (-1.0,)))
        assert np.isnan(evaluate("sqrt", (-1.0,)))
        assert evaluate("div", (1.0, 0.0)) == np.inf


# -- hard points: overflow, underflow, ties, kinks, domain edges ------------------------------

def run(text, shapes=None, **point):
    """f and its gradient at ``point`` in both lowerings, with every NumPy floating-point
    event an error and warnings as errors: a stable form must not warn."""
    c = cg.parse(text, shapes=shapes)
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(divide="raise", over="raise", invalid="raise"):
            for mode in ("compile", "interpret"):
                results.append(cg.to_numpy(cg.grad(c), mode=mode)(**point))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    return results[0]


@pytest.mark.parametrize("x, value, slope", [(1000.0, 1000.0, 1.0), (-1000.0, 0.0, 0.0),
                                             (0.0, math.log(2), 0.5)])
def test_softplus_is_stable_and_its_derivative_is_sigmoid(x, value, slope):
    J, dx = run("J = softplus(x)", x=x)
    assert J == value and dx == slope


def test_the_issues_log_sum_exp_at_logits_of_1000():
    z = np.array([1000.0, 1000.0, 0.0])
    J, dz = run("J = logsumexp(z)", shapes={"z": (3,)}, z=z)
    assert J == 1000.0 + math.log(2)
    np.testing.assert_allclose(dz, [0.5, 0.5, 0.0], atol=1e-300)
    # the cross-entropy of class 2 through log_softmax: finite value and gradient
    J, dz = run("J = -sum(log_softmax(z) * y)", shapes={"z": (3,), "y": (3,)},
                z=z, y=np.array([0.0, 0.0, 1.0])).J, None
    assert J == pytest.approx(1000.0 + math.log(2), rel=1e-15)
    out = run("J = -sum(log_softmax(z) * y)", shapes={"z": (3,), "y": (3,)},
              z=z, y=np.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(out.dJ_dz, [0.5, 0.5, -1.0], atol=1e-300)
    s = run("J = sum(softmax(z) * y)", shapes={"z": (3,), "y": (3,)}, z=-z, y=np.ones(3))
    assert s.J == 1.0 and np.all(np.isfinite(s.dJ_dz))


def test_reductions_with_axis_are_stable_on_each_row():
    z = np.array([[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, -1000.0]])
    out = run("J = sum(logsumexp(z, axis=1) * w)", shapes={"z": (2, 3), "w": (2,)}, z=z,
              w=np.array([1.0, 2.0]))
    np.testing.assert_allclose(out.dJ_dz, [[1.0, 0.0, 0.0], [2 / 3, 2 / 3, 2 / 3]])
    soft = evaluate("softmax", (z,), {"axis": 1})
    np.testing.assert_allclose(soft, [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(evaluate("log_softmax", (z,), {"axis": 0})[:, 0],
                               [0.0, -2000.0])


def test_hypot_and_norm_neither_overflow_nor_underflow():
    J, da, db = run("J = hypot(a, b)", a=3e200, b=4e200)
    assert J == pytest.approx(5e200, rel=1e-15)
    assert (da, db) == (pytest.approx(0.6, rel=1e-15), pytest.approx(0.8, rel=1e-15))
    J, da, db = run("J = hypot(a, b)", a=3e-300, b=4e-300)
    assert J == pytest.approx(5e-300, rel=1e-15) and da == pytest.approx(0.6, rel=1e-15)
    out = run("J = norm(v)", shapes={"v": (2,)}, v=np.array([3e200, 4e200]))
    assert out.J == pytest.approx(5e200, rel=1e-15)
    np.testing.assert_allclose(out.dJ_dv, [0.6, 0.8], rtol=1e-15)


def test_norm_and_hypot_at_the_origin_have_gradient_zero():
    assert tuple(run("J = hypot(a, b)", a=0.0, b=0.0)) == (0.0, 0.0, 0.0)
    out = run("J = norm(v)", shapes={"v": (3,)}, v=np.zeros(3))
    assert out.J == 0.0 and out.dJ_dv.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("y, x", [(1.0, 2.0), (1.0, -2.0), (-1.0, -2.0), (-1.0, 2.0),
                                  (0.0, -1.0), (1e-300, 1.0), (3e200, -4e200)])
def test_atan2_in_all_four_quadrants(y, x):
    J, dy, dx = run("J = atan2(y, x)", y=y, x=x)
    assert J == math.atan2(y, x)
    h = math.hypot(x, y)
    # (x, -y) / h², written so that the reference neither overflows nor underflows
    assert dy == pytest.approx((x / h) / h, rel=1e-14, abs=0.0) or x == 0.0
    assert dx == pytest.approx(-(y / h) / h, rel=1e-14, abs=0.0) or y == 0.0
    assert (dy == 0.0) == (x == 0.0) and (dx == 0.0) == (y == 0.0)


def test_ties_split_the_derivative_evenly():
    assert tuple(run("J = maximum(a, b)", a=2.0, b=2.0))[1:] == (0.5, 0.5)
    assert tuple(run("J = minimum(a, b)", a=2.0, b=2.0))[1:] == (0.5, 0.5)
    assert tuple(run("J = maximum(a, b)", a=2.0, b=1.0))[1:] == (1.0, 0.0)
    assert tuple(run("J = maximum(x, x)", x=2.0))[1:] == (1.0,)  # ½ + ½
    out = run("J = max(v)", shapes={"v": (3,)}, v=np.array([1.0, 3.0, 3.0]))
    assert out.J == 3.0 and out.dJ_dv.tolist() == [0.0, 0.5, 0.5]
    out = run("J = sum(min(v, axis=0))", shapes={"v": (2, 2)},
              v=np.array([[1.0, 2.0], [1.0, 0.0]]))
    assert out.dJ_dv.tolist() == [[0.5, 0.0], [0.5, 1.0]]


@pytest.mark.parametrize("x, grads", [(-1.0, (0.0, 1.0, 0.0)), (0.0, (1.0, 0.0, 0.0)),
                                      (0.5, (1.0, 0.0, 0.0)), (1.0, (1.0, 0.0, 0.0)),
                                      (2.0, (0.0, 0.0, 1.0))])
def test_clip_passes_the_derivative_on_the_closed_interval(x, grads):
    J, *got = run("J = clip(x, lo, hi)", x=x, lo=0.0, hi=1.0)
    assert J == min(max(x, 0.0), 1.0) and tuple(got) == grads


@pytest.mark.parametrize("text, x, slope", [
    ("abs(x)", 0.0, 0.0), ("floor(x)", 2.0, 0.0), ("ceil(x)", -1.0, 0.0), ("round(x)", 0.5, 0.0),
    ("sign(x)", 0.0, 0.0), ("where(x > 0, x, -x)", 0.0, -1.0),  # the branch taken at 0
    ("where(x >= 0, x, -x)", 0.0, 1.0), ("(x > 0) * 3", 0.0, 0.0)])
def test_derivatives_at_kinks_and_jumps(text, x, slope):
    assert run(f"J = {text}", x=x)[1] == slope


def test_round_is_halves_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49999999999999994])
    assert evaluate("round", (x,)).tolist() == [0.0, 2.0, 2.0, -0.0, -2.0, 0.0]


def test_domain_edges_give_ieee_values_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            assert evaluate("log1p", (-1.0,)) == -np.inf
            assert evaluate("atanh", (1.0,)) == np.inf
            assert evaluate("atanh", (-1.0,)) == -np.inf
            assert evaluate("acosh", (1.0,)) == 0.0
            assert evaluate("logsumexp", (np.full(3, -np.inf),)) == -np.inf
            f = cg.to_numpy(cg.parse("J = log1p(x) + atanh(y) + acosh(z)"))
            assert f(x=-1.0, y=0.5, z=1.0) == -np.inf
            assert f(x=0.0, y=1.0, z=1.0) == np.inf


@pytest.mark.parametrize("op", ["log1p", "expm1", "sinh", "tan", "asin", "atan", "asinh",
                                "atanh", "erf", "softplus"])
def test_tiny_arguments_keep_their_precision(op):
    x = 1e-300
    value = float(evaluate(op, (x,)))
    want = {"erf": 2 / math.sqrt(math.pi) * x, "softplus": math.log(2)}.get(op, x)
    assert value == pytest.approx(want, rel=1e-15)
    slope = run(f"J = {op}(x)", x=x)[1]
    assert slope == pytest.approx({"erf": 2 / math.sqrt(math.pi), "softplus": 0.5}.get(op, 1.0),
                                  rel=1e-15)


SCALAR_POINTS = {
    "log1p": (0.5,), "expm1": (0.3,), "softplus": (0.7,), "erf": (0.4,), "erfc": (-0.4,),
    "tan": (0.3,), "asin": (0.3,), "acos": (-0.3,), "atan": (0.8,), "atan2": (-0.5, -0.7),
    "sinh": (0.5,), "cosh": (-0.5,), "asinh": (0.5,), "acosh": (1.5,), "atanh": (0.3,),
    "log2": (1.5,), "log10": (1.5,), "exp2": (0.5,), "hypot": (0.3, -0.4),
    "maximum": (0.3, 0.5), "minimum": (0.3, 0.5), "clip": (0.3, 0.0, 1.0),
    "logaddexp": (0.2, 0.9), "where": (1.0, 0.3, 0.9), "floor": (0.3,), "ceil": (0.3,),
    "round": (0.3,)}


@pytest.mark.parametrize("op", sorted(SCALAR_POINTS))
def test_new_elementwise_ops_against_central_differences_and_sympy(op):
    import sympy

    args = SCALAR_POINTS[op]
    names = "abc"[: len(args)]
    c = cg.parse(f"J = {op}({', '.join(names)})")
    point = dict(zip(names, args))
    assert cg.check_grad(c, point) < 1e-7
    if PRIMITIVES[op].sympy is None:
        return
    expr = cg.to_sympy(c)
    got = cg.to_numpy(cg.grad(c))(**point)
    symbols = {sympy.Symbol(n): v for n, v in point.items()}
    assert float(got[0]) == pytest.approx(float(expr.subs(symbols)), rel=1e-13)
    for n, g in zip(names, got[1:]):
        want = sympy.diff(expr, sympy.Symbol(n)).subs(symbols)
        if want.has(sympy.Derivative):  # floor, ceil: 0 almost everywhere
            continue
        assert float(g) == pytest.approx(float(want), rel=1e-12, abs=1e-15)


def test_prod_gradient_is_exact_where_entries_are_zero():
    out = run("J = prod(v) + sum(prod(W, axis=1) * u)", shapes={"v": (3,), "W": (2, 3), "u": (2,)},
              v=np.array([2.0, 0.0, 3.0]), W=np.array([[0.0, 0.0, 1.0], [1.0, 2.0, 0.0]]),
              u=np.array([1.0, 2.0]))
    assert out.dJ_dv.tolist() == [0.0, 6.0, 0.0]
    assert out.dJ_dW.tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 4.0]]
