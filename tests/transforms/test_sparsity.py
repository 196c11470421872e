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


# -- every primitive has a rule, and each rule holds the Jacobian's nonzeros -------------------

def test_every_primitive_has_a_sparsity_rule():
    """Elementwise ops (no shape rule) share one rule; every other op needs its own, or to be
    declared dense on purpose: a new op cannot fall through to a pattern nobody chose."""
    from circuitgrad.circuit import LEAVES
    from circuitgrad.transforms import sparsity

    missing = [op for op, prim in cg.PRIMITIVES.items()
               if op not in LEAVES and prim.shape is not None
               and op not in sparsity.RULES and op not in sparsity.DENSE]
    assert missing == []
    assert not set(sparsity.RULES) - set(cg.PRIMITIVES)


# Cases beyond the table's own (which use each op's example params): axes, keepdims-like
# reductions, the adjoint pass's broadcast_to and sum_to, steps and negative indices.
EXTRA_CASES = [
    ("sum", ((2, 3),), {"axis": 0}), ("sum", ((2, 3, 2),), {"axis": 2}),
    ("max", ((2, 3),), {"axis": -1}), ("mean", ((3, 2),), {"axis": 1}),
    ("logsumexp", ((2, 3),), {"axis": 0}), ("norm", ((2, 3),), {"axis": 1}),
    ("prod", ((2, 3),), {"axis": 1}), ("softmax", ((2, 3),), {"axis": 0}),
    ("log_softmax", ((3, 2),), {"axis": -1}), ("prod_others", ((2, 3),), {"axis": 0}),
    ("cumsum", ((3, 4),), {"axis": 1}), ("cumsum", ((3, 2),), {"axis": 0}),
    ("broadcast_to", ((3,),), {"shape": (2, 3)}), ("broadcast_to", ((2,),), {"shape": (2, 3),
                                                                             "axis": 1}),
    ("sum_to", ((2, 3),), {"shape": (3,), "ndim": 2}),
    ("sum_to", ((2, 3),), {"shape": (2, 1), "ndim": 2}),
    ("sum_to", ((2, 3),), {"shape": (), "ndim": 2}),
    ("getitem", ((6,),), {"index": ((5, 0, -2),)}), ("getitem", ((3, 4),), {"index": ((0, 3, 2), 1)}),
    ("take", ((3, 4),), {"indices": (3, 0, 0), "axis": 1}),
    ("put_add", ((3, 3),), {"indices": (1, 1, 0), "axis": 1, "shape": (3, 4)}),
    ("concatenate", ((2, 3), (2, 1)), {"axis": 1}), ("stack", ((2,), (2,), (2,)), {"axis": 0}),
    ("outer", ((4,), (1,)), {}), ("transpose", ((3,),), {}),
]


def sample_circuits(op):
    """One-node circuits of ``op``: the table's shape cases and the extra ones."""
    from circuitgrad.builder import Builder
    from circuitgrad.primitives import shape_cases

    cases = [(shapes, cg.PRIMITIVES[op].example) for shapes in shape_cases(op)]
    cases += [(shapes, params) for name, shapes, params in EXTRA_CASES if name == op]
    for shapes, params in cases:
        if op in ("broadcast_to", "sum_to") and "shape" not in params:
            continue  # their table case has no target shape; the extra cases give one
        b = Builder()
        args = [b.input(f"a{k}", s) for k, s in enumerate(shapes)]
        yield shapes, params, b.finish([("f", b.apply(op, *args, **params))])


@pytest.mark.parametrize("op", sorted(op for op in cg.PRIMITIVES if op not in ("input", "const")))
def test_each_rule_holds_the_nonzeros_of_its_jacobian(op):
    """For every primitive, on each of its shape cases: the structural pattern of one node
    holds every nonzero of the node's Jacobian at random points inside the op's domain, and
    the ops whose Jacobian is a 0/1 selection (indexing, joining, reshaping) get exactly it."""
    low, high = (1.3, 1.9) if op == "acosh" else (0.15, 0.85)
    selections = {"getitem", "take", "reshape", "permute_dims", "transpose", "broadcast_to",
                  "stack", "concatenate", "sum_to", "put_add", "scatter_add", "cumsum", "sum"}
    checked = 0
    for shapes, params, c in sample_circuits(op):
        pattern = cg.jacobian_sparsity(c).toarray()
        for seed in range(3):
            rng = np.random.default_rng(seed)
            point = {x: rng.uniform(low, high, size=c.input_shapes[x]) for x in c.inputs}
            dense = dense_matrix(c, point)
            assert pattern.shape == dense.shape
            assert not (dense != 0)[~pattern].any(), (op, shapes, params)
            if op in selections:
                np.testing.assert_array_equal(pattern, dense != 0, err_msg=f"{shapes} {params}")
            checked += 1
    assert checked


# -- linear cost: an n = 10⁵ banded Jacobian -----------------------------------------------------

BANDED = "f = x[2:] * x[1:-1] - square(x[:-2]) + sin(x[1:-1])"  # row i: columns i, i+1, i+2


def test_a_banded_jacobian_costs_memory_linear_in_n_and_evaluates_at_100000():
    """Not timed: the pattern's working memory grows ~10x from n = 10⁴ to 10⁵ (it would be
    100x for bit sets as wide as n), the circuit has the same nodes and sweeps at every n, and
    the n = 10⁵ Jacobian is right."""
    import tracemalloc

    peaks, sizes = {}, {}
    cg.jacobian_sparsity(cg.parse(BANDED, shapes={"x": (10,)}))  # one-time imports and caches
    for n in (10**3, 10**4, 10**5):
        c = cg.parse(BANDED, shapes={"x": (n,)})
        tracemalloc.start()
        p = cg.jacobian_sparsity(c)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert p.nnz == 3 * (n - 2)
        j = cg.jacobian(c, sparse=True)
        assert j.meta["sweeps"] == 3  # the band's width, whatever n
        sizes[n] = len(j)
    assert len(set(sizes.values())) == 1, sizes  # vector nodes: the same circuit at every n
    assert peaks[10**5] < 15 * peaks[10**4], peaks
    assert peaks[10**4] < 15 * peaks[10**3], peaks
    x = np.random.default_rng(0).uniform(-1, 1, 10**5)
    got = cg.to_numpy(j)(x=x).jacobian
    assert got.shape == (10**5 - 2, 10**5) and got.nnz == 3 * (10**5 - 2)
    rows = np.arange(10**5 - 2)
    np.testing.assert_array_equal(got[rows, rows], -2 * x[:-2])
    np.testing.assert_array_equal(got[rows, rows + 1], x[2:] + np.cos(x[1:-1]))
    np.testing.assert_array_equal(got[rows, rows + 2], x[1:-1])


def test_a_constant_operand_keeps_the_other_operands_sets(monkeypatch):
    # x * 2 + 1 has x's sets: no union (a sort) per node for the constants, as sin(x) has
    # none (a 25,000-node chain of such lines spent a third of its pattern there)
    import circuitgrad.transforms.sparsity as sparsity

    c = cg.parse("f = sin(x * 2.0 + 1.0) * (x - 3.0)\ng = 2.0 * y + x", shapes={"x": (50,)},
                 outputs=["f", "g"])
    unions = []
    union = sparsity._union
    monkeypatch.setattr(sparsity, "_union", lambda *a: unions.append(a) or union(*a))
    sets = sparsity.dependency_sets(c, ["x", "y"])
    f = dict(zip(c.outputs, c.output_ids))["f"]
    assert np.array_equal(sets[f][0], np.arange(51)) and np.array_equal(sets[f][1], np.arange(50))
    assert len(unions) == 1  # g: y (one column) broadcast and united with x's
    pattern = cg.jacobian_sparsity(c, wrt=["x", "y"]).toarray()
    eye = np.eye(50, dtype=bool)
    assert np.array_equal(pattern[:50], np.hstack([eye, np.zeros((50, 1), dtype=bool)]))
    assert np.array_equal(pattern[50:], np.hstack([eye, np.ones((50, 1), dtype=bool)]))
