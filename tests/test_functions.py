"""cg.grad, cg.jacobian, cg.hessian of Python functions (circuitgrad/functions.py): numbers in,
derivatives out, in the arguments' structures; inside traces, to any order; circuits as before."""

from __future__ import annotations

import numpy as np
import pytest

import circuitgrad as cg
from circuitgrad.errors import CircuitError


def rosenbrock(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def fd_grad(f, x, eps=1e-6):
    return np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)])


def test_the_gradient_of_a_function_called_with_numbers():
    x = np.array([0.3, -1.2, 0.8, 1.5])
    g = cg.grad(rosenbrock)
    np.testing.assert_allclose(g(x), fd_grad(rosenbrock, x), rtol=1e-6)
    assert len(g.cache) == 1
    g(x + 1.0)
    assert len(g.cache) == 1  # traced once per shapes
    g(np.ones(3))
    assert len(g.cache) == 2


def test_argnums_and_containers():
    def loss(params, x):
        h = np.tanh(params["W"] @ x + params["b"])
        return np.sum(h ** 2) + params["s"][0] * params["s"][1]

    rng = np.random.default_rng(1)
    params = {"W": rng.normal(size=(2, 3)), "b": rng.normal(size=2), "s": (2.0, 3.0)}
    x = rng.normal(size=3)
    g = cg.grad(loss)(params, x)
    assert set(g) == {"W", "b", "s"} and g["W"].shape == (2, 3) and isinstance(g["s"], tuple)
    assert g["s"] == (3.0, 2.0)
    flat = lambda w: loss({**params, "W": w.reshape(2, 3)}, x)  # noqa: E731
    np.testing.assert_allclose(g["W"].ravel(), fd_grad(flat, params["W"].ravel()), rtol=1e-6)
    gp, gx = cg.grad(loss, argnums=(0, 1))(params, x)
    np.testing.assert_allclose(gx, fd_grad(lambda v: loss(params, v), x), rtol=1e-6)
    np.testing.assert_array_equal(gp["b"], g["b"])


def test_higher_order_by_composition():
    x, v = np.array([0.3, -1.2, 0.8]), np.array([1.0, 0.5, -2.0])
    hv = cg.grad(lambda y: cg.grad(rosenbrock)(y) @ v)(x)
    h = cg.hessian(rosenbrock)(x)
    np.testing.assert_allclose(hv, h @ v, rtol=1e-12)
    np.testing.assert_allclose(h, cg.to_numpy(cg.hessian(cg.trace(
        rosenbrock, shapes={"x": (3,)})))(x)[-1], rtol=1e-12)
    third = cg.grad(cg.grad(cg.grad(lambda s: s ** 4)))
    assert float(third(2.0)) == 48.0
    # a gradient penalty: a loss that calls a gradient, differentiated again
    pen = lambda w: rosenbrock(w) + np.sum(cg.grad(rosenbrock)(w) ** 2)  # noqa: E731
    gp = cg.grad(pen)(x)
    np.testing.assert_allclose(gp, fd_grad(pen, x), rtol=1e-5)


def test_the_jacobian_and_hessian_in_structures():
    f = lambda x: {"a": x[:2] * x[1:], "b": np.sum(x)}  # noqa: E731
    j = cg.jacobian(f)(np.array([1.0, 2.0, 3.0]))
    assert j["a"].tolist() == [[2.0, 1.0, 0.0], [0.0, 3.0, 2.0]]
    assert j["b"].tolist() == [1.0, 1.0, 1.0]
    h = cg.hessian(lambda p: p["u"] ** 2 * p["v"])({"u": 3.0, "v": 2.0})
    assert h == {"u": {"u": 4.0, "v": 6.0}, "v": {"u": 6.0, "v": 0.0}}


def test_inside_a_trace_it_builds_nodes_and_stays_a_circuit():
    c = cg.trace(lambda x: cg.grad(rosenbrock)(x), shapes={"x": (3,)})
    x = np.array([0.3, -1.2, 0.8])
    np.testing.assert_allclose(cg.to_tape(c)(x), cg.grad(rosenbrock)(x), rtol=1e-12)


def test_circuits_and_text_as_before():
    c = cg.parse("J = x**2 * y")
    assert cg.grad(c).outputs == ("J", "dJ_dx", "dJ_dy")
    assert cg.grad("x*2").outputs == cg.grad(cg.parse("x*2")).outputs
    assert cg.hessian(c, layout="matrix").outputs == ("J", "dJ", "d2J")
    assert cg.jacobian(c, wrt="x").outputs == ("J", "dJ_dx")
    with pytest.raises(CircuitError, match="Circuit or program text"):
        cg.grad(3)


def test_what_it_refuses():
    with pytest.raises(CircuitError, match="scalar"):
        cg.grad(lambda x: x * 2)(np.ones(2))
    with pytest.raises(CircuitError, match="argnums"):
        cg.grad(rosenbrock, argnums=2)(np.ones(2))
    with pytest.raises(CircuitError, match="by position"):
        cg.grad(rosenbrock)(x=np.ones(2))


def test_containers_that_cannot_be_flattened_are_refused_by_name():
    # pytree recurses on container nesting: a cycle (or a nesting past Python's recursion
    # limit) is a CircuitError, not a raw RecursionError.
    looped: list = [1.0]
    looped.append(looped)
    with pytest.raises(CircuitError, match="nested too deep"):
        cg.function(lambda x: x)(looped)
    with pytest.raises(CircuitError, match="nested too deep"):
        cg.grad(lambda x: x[0])(looped)


def test_complex_arguments_are_refused_not_cast():
    # The arguments were cast with np.asarray(v, dtype=float64): only a ComplexWarning, and
    # the imaginary part was dropped. They are checked as every lowering checks its inputs.
    z = np.array([1 + 2j, 3.0])
    f = cg.function(lambda x: x * 2.0)
    with pytest.raises(CircuitError, match="imaginary part would be dropped"):
        f(z)
    assert f(np.ones(2)).tolist() == [2.0, 2.0]
    with pytest.raises(CircuitError, match="imaginary part would be dropped"):
        f(np.stack([z, z]))
    with pytest.raises(CircuitError, match="imaginary part would be dropped"):
        cg.grad(lambda x: (x * x).sum())(z)
    with pytest.raises(CircuitError, match="at= gives 'x'.*imaginary part would be dropped"):
        cg.trace(lambda x: x * 2.0, at=z)
