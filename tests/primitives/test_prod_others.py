"""``prod`` with zeros: its derivatives at every order are ``prod_others(x, v₁ … vₘ)``, the
exclusive products along directions (no division), exact where entries are 0 (issue 25)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import circuitgrad as cg
from circuitgrad.primitives import evaluate

# One zero, two zeros, three zeros.
POINTS = [[2.0, 0.0, 3.0, -1.5], [0.0, 0.0, 3.0, -1.5], [0.0, 0.0, 0.0, 2.0]]


def derivative(point, order: int) -> np.ndarray:
    """The derivative tensor of prod at ``point``, by hand: the product of the entries other
    than the (distinct) indices, 0 where an index repeats."""
    n = len(point)
    out = np.zeros((n,) * order)
    for index in itertools.product(range(n), repeat=order):
        if len(set(index)) == order:
            out[index] = math.prod(point[k] for k in range(n) if k not in index)
    return out


def lowerings(c):
    fns = [cg.to_numpy(c), cg.to_tape(c)]
    try:
        fns.append(cg.to_c(c))
    except cg.CircuitError:  # no C compiler here
        pass
    return fns


@pytest.mark.parametrize("extra", ["", " + sum(x**2)"])
def test_the_derivatives_of_prod_with_zeros_are_exact_at_every_order(extra):
    c = cg.parse(f"J = prod(x){extra}", shapes={"x": (4,)})
    h = cg.hessian(c, layout="matrix")
    t = cg.jacobian(h, outputs=["d2J"])  # the third derivative
    square = 2.0 * np.eye(4) if extra else 0.0
    for point in POINTS:
        x = np.array(point)
        want = (derivative(point, 1) + (2.0 * x if extra else 0.0),
                derivative(point, 2) + square, derivative(point, 3))
        for f, ft in zip(lowerings(h), lowerings(t)):
            _, grad, hess = f(x)
            assert np.asarray(grad).tolist() == want[0].tolist(), type(f).__name__
            assert np.asarray(hess).tolist() == want[1].tolist(), type(f).__name__
            third = np.asarray(ft(x)[-1]).reshape(4, 4, 4)
            assert third.tolist() == want[2].tolist(), type(f).__name__


def test_prod_along_an_axis_and_a_batch_of_points():
    c = cg.parse("J = sum(prod(X, axis=1) ** 2)", shapes={"X": (2, 3)})
    h = cg.to_numpy(cg.hessian(c, layout="matrix"))
    X = np.array([[[2.0, 0.0, 3.0], [0.0, 0.0, 5.0]], [[1.0, 2.0, 0.0], [1.0, -1.0, 2.0]]])
    batch = np.asarray(h(X)[-1])
    for k in range(2):
        point = np.asarray(h(X[k])[-1])
        assert np.array_equal(batch[k], point)
        # d²(p²) = 2 ∇p ∇pᵀ + 2 p ∇²p, per row of X
        want = np.zeros((6, 6))
        for r in range(2):
            row = list(X[k, r])
            g, H = derivative(row, 1), derivative(row, 2)
            want[3 * r:3 * r + 3, 3 * r:3 * r + 3] = 2 * np.outer(g, g) + 2 * math.prod(row) * H
        assert np.allclose(point, want, rtol=1e-15, atol=0.0)


def test_prod_others_with_directions_against_its_definition():
    rng = np.random.default_rng(3)
    x = np.where(rng.random((3, 5)) < 0.3, 0.0, rng.normal(size=(3, 5)))
    v, w = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    for axis, lanes in ((1, [(r, None) for r in range(3)]), (None, [None])):
        got1 = evaluate("prod_others", (x, v), {"axis": axis} if axis is not None else None)
        got2 = evaluate("prod_others", (x, v, w), {"axis": axis} if axis is not None else None)
        for lane in lanes:
            xs, vs, ws = (a[lane[0]] if lane else a.ravel() for a in (x, v, w))
            n = len(xs)
            want1 = [sum(vs[i] * math.prod(xs[k] for k in range(n) if k not in (i, e))
                         for i in range(n) if i != e) for e in range(n)]
            want2 = [sum(vs[i] * ws[j] * math.prod(xs[k] for k in range(n) if k not in (i, j, e))
                         for i in range(n) for j in range(n) if len({i, j, e}) == 3)
                     for e in range(n)]
            g1, g2 = (np.ravel(g[lane[0]] if lane else g) for g in (got1, got2))
            assert np.allclose(g1, want1, rtol=1e-13, atol=1e-13)
            assert np.allclose(g2, want2, rtol=1e-13, atol=1e-13)


def test_prod_with_zeros_on_the_array_api_path():
    xs = pytest.importorskip("array_api_strict")
    c = cg.parse("J = prod(x) + sum(x**2)", shapes={"x": (4,)})
    h = cg.to_numpy(cg.hessian(c, layout="matrix"))
    point = POINTS[0]
    got = np.asarray(h(xs.asarray(point))[-1])
    assert got.tolist() == (derivative(point, 2) + 2.0 * np.eye(4)).tolist()


def test_prod_with_zeros_agrees_with_jax():
    jax = pytest.importorskip("jax", reason="JAX is not installed: no JAX column")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    c = cg.parse("J = prod(x) + sum(x**2)", shapes={"x": (4,)})
    h = cg.to_numpy(cg.hessian(c, layout="matrix"))
    f = lambda x: jnp.prod(x) + jnp.sum(x**2)  # noqa: E731
    for point in POINTS:
        x = np.array(point)
        _, grad, hess = h(x)
        assert np.array_equal(grad, np.asarray(jax.grad(f)(jnp.array(x))))
        assert np.array_equal(hess, np.asarray(jax.hessian(f)(jnp.array(x))))


def test_autograd_differs_deliberately_it_divides_by_the_entries():
    # docs/semantics.md, "Derivatives at special points": autograd's prod′ is prod(x)/x, NaN
    # where an entry is 0 (its Hessian NaN everywhere); circuitgrad's is exact.
    ag = pytest.importorskip("autograd", reason="autograd is not installed")
    import autograd.numpy as anp

    x = np.array(POINTS[0])
    with np.errstate(all="ignore"):
        assert np.isnan(ag.hessian(lambda v: anp.prod(v))(x)).all()
    h = cg.to_numpy(cg.hessian(cg.parse("J = prod(x)", shapes={"x": (4,)}), layout="matrix"))
    assert not np.isnan(np.asarray(h(x)[-1])).any()
