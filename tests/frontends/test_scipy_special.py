"""SciPy on traced values (issue 26): its special ufuncs trace as records; its Python-level
``logsumexp``, ``softmax`` and ``log_softmax`` are refused naming the ``cg.`` equivalent."""

from __future__ import annotations

import math

import numpy as np
import pytest

import circuitgrad as cg

sp = pytest.importorskip("scipy.special")

X = np.array([0.15, 0.4, 0.55, 0.9])
Y = np.array([0.3, 1.7, 0.0, 2.5])
# (SciPy's function of x, the record it traces as)
UFUNCS = {
    "expit": (lambda x: sp.expit(x), "sigmoid"),
    "logit": (lambda x: sp.logit(x), "logit"),
    "xlogy": (lambda x: sp.xlogy(x, x + 0.5), "xlogy"),
    "xlog1py": (lambda x: sp.xlog1py(x, x - 0.1), "xlog1py"),
    "gammaln": (lambda x: sp.gammaln(3 * x), "gammaln"),
    "digamma": (lambda x: sp.digamma(3 * x), "digamma"),
    "erf": (lambda x: sp.erf(x), "erf"),
    "erfc": (lambda x: sp.erfc(x), "erfc"),
    "erfinv": (lambda x: sp.erfinv(x - 0.1), "erfinv"),
}


@pytest.mark.parametrize("name", sorted(UFUNCS))
def test_a_scipy_ufunc_traces_as_its_record_with_scipys_values_and_exact_gradients(name):
    f, record = UFUNCS[name]
    c = cg.trace(lambda x: np.sum(f(x) * f(x)), shapes={"x": (4,)})
    assert record in {c.op(i) for i in range(len(c))}
    got = float(cg.to_numpy(c)(X))
    want = float(np.sum(f(X) * f(X)))
    if name == "expit":  # circuitgrad's stable sigmoid, a few ulp from SciPy's expit
        assert got == pytest.approx(want, rel=1e-15)
    else:
        assert got == want
    assert cg.check_grad(c, {"x": X}) < 1e-7
    # second order through the derivative records (digamma → polygamma(1) → polygamma(2))
    h = cg.to_numpy(cg.hessian(c, layout="matrix"))(X)[-1]
    eps = 1e-5
    g = cg.to_numpy(cg.grad(c))
    fd = np.array([(g(X + eps * e)[1] - g(X - eps * e)[1]) / (2 * eps) for e in np.eye(4)])
    assert np.allclose(h, fd, rtol=1e-6, atol=1e-6)


def test_the_derivatives_against_sympy_and_closed_forms():
    import sympy

    t = sympy.Symbol("t")
    forms = {"logit(t)": sympy.log(t / (1 - t)), "xlogy(t, t + 1)": t * sympy.log(t + 1),
             "xlog1py(t, t)": t * sympy.log(1 + t), "gammaln(t)": sympy.loggamma(t),
             "digamma(t)": sympy.polygamma(0, t), "erfinv(t)": sympy.erfinv(t)}
    for program, form in forms.items():
        c = cg.parse(f"J = {program}")
        g = cg.to_numpy(cg.grad(c))
        h = cg.to_numpy(cg.hessian(c))
        for v in (0.3, 0.62):
            want1 = float(sympy.diff(form, t).subs(t, v).evalf(30))
            want2 = float(sympy.diff(form, t, 2).subs(t, v).evalf(30))
            assert float(g(v)[1]) == pytest.approx(want1, rel=1e-13), program
            assert float(h(v)[-1]) == pytest.approx(want2, rel=1e-12), program
    # closed forms: logit′ = 1/(p(1 − p)), erfinv′ = √π/2·exp(erfinv²), xlogy at x = 0
    g = cg.to_numpy(cg.grad(cg.parse("J = logit(p)")))
    assert float(g(0.25)[1]) == pytest.approx(1 / (0.25 * 0.75), rel=1e-15)
    g = cg.to_numpy(cg.grad(cg.parse("J = erfinv(y)")))
    assert float(g(0.5)[1]) == pytest.approx(
        math.sqrt(math.pi) / 2 * math.exp(sp.erfinv(0.5) ** 2), rel=1e-15)
    g = cg.grad(cg.parse("J = xlogy(x, y)"))
    out = cg.to_numpy(g)(x=np.array([0.0, 0.0]), y=np.array([2.0, 0.0]))
    assert np.asarray(out[0]).tolist() == [0.0, 0.0]  # SciPy's 0 where x = 0
    assert np.asarray(out.dJ_dy).tolist()[0] == 0.0 and out.dJ_dx[0] == math.log(2.0)


def test_xlogy_logit_run_in_every_lowering_and_the_others_are_refused_by_name():
    c = cg.trace(lambda x, y: sp.xlogy(x, y) + sp.xlog1py(y, x) + sp.logit(x / 4))
    g = cg.grad(c)
    x, y = np.array([0.0, 0.7, 2.0, 3.9]), np.array([0.5, 0.0, 3.0, np.nan])
    with np.errstate(all="ignore"):
        want = cg.to_numpy(g)(x, y)
        for lower in (cg.to_tape, cg.to_c):
            for a, b in zip(lower(g)(x, y), want):
                assert np.allclose(a, b, rtol=1e-15, atol=0.0, equal_nan=True), lower.__name__
    c = cg.trace(lambda x: sp.gammaln(x) + sp.erfinv(x / 4))
    for lower in (cg.to_tape, cg.to_c):
        with pytest.raises(cg.CircuitError, match="no C form"):
            lower(c)


@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
def test_scipys_python_functions_are_refused_naming_the_cg_equivalent(name):
    fn = getattr(sp, name)
    with pytest.raises(cg.CircuitError, match=rf"scipy\.special\.{name} .*cg\.{name}\(x") as e:
        cg.trace(lambda x: fn(x), shapes={"x": (3,)})
    assert __file__ in str(e.value)  # the user's line, not SciPy's


def test_the_cg_equivalents_compute_what_scipy_does():
    x = np.array([1000.0, 999.0, -3.0])
    for name in ("logsumexp", "softmax", "log_softmax"):
        c = cg.trace(lambda v: getattr(cg, name)(v), shapes={"v": (3,)})
        assert np.allclose(cg.to_numpy(c)(x), getattr(sp, name)(x), rtol=1e-15)


def test_another_scipy_ufunc_is_refused_by_its_scipy_name():
    with pytest.raises(cg.CircuitError, match=r"scipy\.special\.gamma cannot be traced"):
        cg.trace(lambda x: sp.gamma(x))
    with pytest.raises(cg.CircuitError, match=r"scipy\.special\.xlogy\.reduce"):
        cg.trace(lambda x: sp.xlogy.reduce(x), shapes={"x": (3,)})


def test_the_array_api_path():
    xs = pytest.importorskip("array_api_strict")
    c = cg.trace(lambda x, y: sp.xlogy(x, y) + sp.logit(x / 4))
    f = cg.to_numpy(cg.grad(c))
    got = f(xs.asarray([0.0, 0.7]), xs.asarray([0.5, 2.0]))
    want = f(np.array([0.0, 0.7]), np.array([0.5, 2.0]))
    for a, b in zip(got, want):
        assert np.allclose(np.asarray(a._array), b, rtol=1e-15)
    g = cg.to_numpy(cg.trace(lambda x: sp.gammaln(x)))
    with pytest.raises(cg.CircuitError, match="gammaln"):
        g(xs.asarray([0.5, 2.0]))
