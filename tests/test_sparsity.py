"""Sparsity patterns of Jacobians: cg.jacobian_sparsity, from the circuit alone.

Oracles: the nonzeros of the dense Jacobian at random points (the pattern holds every one of
them, and on programs without cancellations exactly them), and the hand-known patterns of
banded problems.
"""

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

import circuitgrad as cg
from strategies import tensor_programs
from test_jacobian import evaluate, vector_valued


def dense_matrix(c, point, wrt=None):
    """The Jacobian of all outputs as one (m, n) matrix, from cg.jacobian."""
    wrt = list(c.inputs) if wrt is None else wrt
    got = evaluate(cg.jacobian(c, wrt=wrt), point)
    rows = []
    for f in c.outputs:
        m = int(np.prod(c.output_shapes[f]))
        rows.append(np.hstack([np.reshape(got[f"d{f}_d{x}"], (m, -1)) for x in wrt]))
    return np.vstack(rows)


def test_banded_patterns_of_a_residual_and_of_a_hessian():
    c = cg.parse("r = x[1:] - square(x[:-1])", shapes={"x": (5,)})
    p = cg.jacobian_sparsity(c)
    assert isinstance(p, scipy.sparse.csr_array) and p.dtype == bool and p.shape == (4, 5)
    np.testing.assert_array_equal(p.toarray(), np.eye(4, 5, dtype=bool) | np.eye(4, 5, 1,
                                                                              dtype=bool))
    rosen = cg.parse("J = sum(100 * square(x[1:] - square(x[:-1])) + square(1 - x[:-1]))",
                     shapes={"x": (6,)})
    h = cg.jacobian_sparsity(cg.grad(rosen), outputs="dJ_dx")  # the Hessian's pattern
    band = sum(np.eye(6, k=k, dtype=bool) for k in (-1, 0, 1)).astype(bool)
    np.testing.assert_array_equal(h.toarray(), band)


def test_masks_and_conditions_carry_no_dependency():
    c = cg.parse("f = where(x > 0, y, 2 * y) + step(x)", shapes={"x": (3,), "y": (3,)})
    p = cg.jacobian_sparsity(c).toarray()
    np.testing.assert_array_equal(p[:, :3], np.zeros((3, 3), bool))  # on x: none
    np.testing.assert_array_equal(p[:, 3:], np.eye(3, dtype=bool))


def test_matmul_reductions_and_layout():
    c = cg.parse("f = W @ x\ng = sum(x) * s", shapes={"W": (2, 3), "x": (3,)},
                 outputs=["f", "g"], inputs=["W", "x", "s"])
    p = cg.jacobian_sparsity(c).toarray()
    assert p.shape == (3, 6 + 3 + 1)
    np.testing.assert_array_equal(p[0, :6], [1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(p[1, :6], [0, 0, 0, 1, 1, 1])
    assert p[:2, 6:9].all() and not p[:2, 9].any()
    np.testing.assert_array_equal(p[2], [0] * 6 + [1] * 4)
    only = cg.jacobian_sparsity(c, wrt="s", outputs="g").toarray()
    assert only.tolist() == [[True]]
    with pytest.raises(cg.CircuitError, match="not an output"):
        cg.jacobian_sparsity(c, outputs="h")


@given(tensor_programs(max_ops=6), st.integers(0, 2**32 - 1))
@settings(max_examples=40)
def test_the_pattern_holds_every_nonzero_of_the_jacobian(case, seed):
    text, shapes = case  # the summed program too: its gradient's pattern is the Hessian's
    c = cg.parse(vector_valued(text), shapes=shapes, inputs=list(shapes))
    rng = np.random.default_rng(seed)
    point = {x: rng.uniform(0.2, 0.8, size=s) for x, s in shapes.items()}
    pattern = cg.jacobian_sparsity(c).toarray()
    dense = dense_matrix(c, point)
    assert pattern.shape == dense.shape
    assert not (dense != 0)[~pattern].any()
    # the gradient circuit's pattern holds the Hessian's nonzeros too
    scalar = cg.parse(text, shapes=shapes, inputs=list(shapes))
    g = cg.grad(scalar)
    outs = list(g.outputs[1:])
    hessian = cg.jacobian_sparsity(g, outputs=outs).toarray()
    h = cg.hessian(scalar, layout="matrix")
    assert not (evaluate(h, point)["d2J"] != 0)[~hessian].any()


def test_hessian_sparsity_and_the_sparse_hessian():
    # an arrowhead: every entry meets the last one, and only it
    c = cg.parse("J = sum(square(x[:-1]) * x[-1]) + sum(sin(x))", shapes={"x": (6,)})
    p = cg.hessian_sparsity(c).toarray()
    want = np.eye(6, dtype=bool)
    want[-1, :] = want[:, -1] = True
    np.testing.assert_array_equal(p, want)
    assert (p == p.T).all()
    h = cg.hessian(c, sparse=True)
    assert h.outputs == ("J", "dJ_dx", "d2J") and h.meta["sweeps"] == 2  # star coloring
    x = np.linspace(0.2, 1.4, 6)
    got = cg.to_numpy(h)(x)
    dense = cg.to_numpy(cg.hessian(c, layout="matrix"))(x)
    assert isinstance(got.d2J, scipy.sparse.csr_array)
    np.testing.assert_allclose(got.d2J.toarray(), dense.d2J, rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(got.dJ_dx, dense.dJ)
    assert float(got.J) == float(dense.J)
    # a banded Hessian (Rosenbrock, half-bandwidth 1): 2b + 1 = 3 sweeps, whatever n
    for n in (10, 200):
        rosen = cg.parse("J = sum(100 * square(x[1:] - square(x[:-1])) + square(1 - x[:-1]))",
                         shapes={"x": (n,)})
        hs = cg.hessian(rosen, sparse=True)
        assert hs.meta["sweeps"] == 3
        x = np.linspace(-1, 1.5, n)
        got = cg.to_numpy(hs)(x).d2J.toarray()
        np.testing.assert_allclose(got, cg.to_numpy(cg.hessian(rosen, layout="matrix"))(x).d2J,
                                   rtol=1e-12, atol=1e-9)
        np.testing.assert_array_equal(got, got.T)  # each pair read at one place
