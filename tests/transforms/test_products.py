"""contract_products: sums of broadcast products as einsums (circuitgrad/transforms/products.py),
the circuit to_numpy's code computes.

Checked: which sums are rewritten and which are not; the values against NumPy's product and
sum within the bound of a sum in two orders (2 γ_k Σ|a b|); a batch equal to its points bit
for bit; compiled and interpreted code alike; names, sections and guards carried; the GMM
gradient against to_fused and finite differences.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import circuitgrad as cg
from circuitgrad.transforms import products
from circuitgrad.transforms.products import contract_products

U = np.finfo(float).eps / 2


def ops(c):
    return [c.op(i) for i in range(len(c)) if c.op(i) not in ("input", "const")]


def two_orders_bound(terms, k):
    """|one order's sum - another's| <= 2 γ_k Σ|terms| (each within γ_k of the exact sum)."""
    gamma = k * U / (1 - k * U)
    return 2 * gamma * terms + 1e-300


def test_a_broadcast_product_summed_is_one_einsum_and_agrees_with_numpy():
    c = cg.parse("J = sum(A * x, axis=2)", shapes={"A": (1, 50, 30), "x": (40, 1, 30)})
    d = contract_products(c)
    assert ops(d) == ["reshape", "reshape", "einsum"]
    rng = np.random.default_rng(0)
    A, x = rng.normal(size=(1, 50, 30)), rng.normal(size=(40, 1, 30))
    got = cg.to_numpy(c)(A, x)
    want = np.sum(A * x, axis=2)
    assert got.shape == want.shape == (40, 50)
    assert np.all(np.abs(got - want) <= two_orders_bound(np.sum(np.abs(A * x), axis=2), 30))
    assert "einsum" in cg.to_numpy(c).source and " * " not in cg.to_numpy(c).source


@pytest.mark.parametrize("program, shapes", [
    ("J = sum(a * b, axis=1)", {"a": (100, 64), "b": (100, 64)}),  # dot products: same size
    ("J = sum(a * b, axis=1)", {"a": (10, 30), "b": (30,)}),  # too small
    ("J = sum(2.0 * b, axis=1)", {"b": (100, 64)}),  # a scalar constant
    ("p = a * b\nJ = sum(p, axis=2) + sum(p)", {"a": (1, 50, 30), "b": (40, 1, 30)}),  # read twice
])
def test_what_is_not_a_contraction_stays(program, shapes):
    c = cg.parse(program, shapes=shapes)
    assert contract_products(c) is c


def test_the_gmm_gradient_is_contracted_and_agrees_with_to_fused_and_differences():
    from benchmarks import gmm
    d, K = 3, 4
    at = gmm.point(d, K)
    fn = gmm.objective(np, lambda a, axis: cg.logsumexp(a, axis=axis), d, K)
    c = cg.trace(fn, shapes={k: v.shape for k, v in at.items()})
    g = cg.grad(c, wrt=list(gmm.WRT))
    rewritten = contract_products(g)
    assert ops(rewritten).count("einsum") == 3  # Qx, and the adjoints of L and of x - μ
    assert len(rewritten) < len(g) + 6
    f = cg.to_numpy(g)
    out, ref = f(**at), cg.to_fused(g)(**at)
    for a, b in zip(out, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9)
    # the gradient of the contracted code against central differences of its own value
    h = 1e-6
    for name, k in (("icf", (1, 4)), ("means", (2, 0))):
        up, down = {**at}, {**at}
        up[name], down[name] = at[name].copy(), at[name].copy()
        up[name][k] += h
        down[name][k] -= h
        fd = (f(**up)[0] - f(**down)[0]) / (2 * h)
        assert abs(fd - getattr(out, f"df_d{name}")[k]) <= 1e-5 * max(1.0, abs(fd))


def test_names_sections_and_guards_are_carried():
    c = cg.parse("J = sum(sum(A * x, axis=2) ** 2)", shapes={"A": (1, 50, 30), "x": (40, 1, 30)})
    g = cg.grad(c)
    source = cg.to_numpy(g).source
    assert "# backward" in source and "einsum" in source
    d = contract_products(g)
    assert d.meta["forward_count"] < len(d)
    assert [d.op(i) for i in range(d.meta["forward_count"])].count("einsum") == 1

    def f(A, x):
        s = np.sum(A * x, axis=2)
        return np.sum(s * s) if float(np.sum(s)) > -1e9 else np.sum(s)  # a traced branch
    rng = np.random.default_rng(1)
    A, x = rng.normal(size=(1, 50, 30)), rng.normal(size=(40, 1, 30))
    t = cg.trace(f, at={"A": A, "x": x})
    assert t.meta.get("guards") is not None
    assert contract_products(t).meta.get("guards") is t.meta["guards"]
    np.testing.assert_allclose(cg.to_numpy(t)(A, x), np.sum(np.sum(A * x, axis=2) ** 2),
                               rtol=1e-12)


shape_pairs = st.tuples(
    st.integers(1, 4), st.integers(1, 40), st.integers(1, 40), st.integers(1, 30),
    st.sampled_from(["ij", "jk", "ik"]), st.integers(0, 2), st.booleans())


@settings(max_examples=40, deadline=None)
@given(shape_pairs)
def test_random_broadcast_products_agree_and_a_batch_equals_its_points(case):
    """``sum(a * b)`` of random broadcast shapes (the product's axes i, j, k; each operand
    broadcasts along one), over a random axis or to an operand's shape (``sum_to``, through
    the gradient): within a sum's two-orders bound of NumPy's, and each point of a batch of 3
    bit for bit the point alone, in compiled and interpreted code."""
    batch, ni, nj, nk, pair, axis, use_grad = case
    sizes = {"i": ni, "j": nj, "k": nk}
    # a's letters and b's: each a pair of the three, the third broadcast
    la = pair
    lb = {"ij": "jk", "jk": "ik", "ik": "ij"}[pair]
    shape_a = tuple(sizes[x] if x in la else 1 for x in "ijk")
    shape_b = tuple(sizes[x] if x in lb else 1 for x in "ijk")
    program = "J = sum(sum(a * b, axis=%d) ** 2)" % axis if use_grad else \
        "J = sum(a * b, axis=%d)" % axis
    c = cg.parse(program, shapes={"a": shape_a, "b": shape_b})
    circuit = cg.grad(c) if use_grad else c
    rng = np.random.default_rng(ni * 1000 + nj * 10 + nk)
    a = rng.normal(size=(batch,) + shape_a)
    b = rng.normal(size=(batch,) + shape_b)
    assert contract_products(circuit, min_entries=1) is not circuit or ni * nj * nk == 1 \
        or max(math.prod(shape_a), math.prod(shape_b)) * products.GROWTH >= ni * nj * nk
    kept = products.MIN_ENTRIES
    products.MIN_ENTRIES = 1  # (to_numpy's: every size here contracted)
    try:
        fs = [cg.to_numpy(circuit, mode=mode) for mode in ("compile", "interpret")]
    finally:
        products.MIN_ENTRIES = kept
    for mode, f in zip(("compile", "interpret"), fs):
        whole = f(a, b)
        for p in range(batch):
            alone = f(a[p], b[p])
            for w, one in zip(whole if use_grad else [whole], alone if use_grad else [alone]):
                assert np.array_equal(w[p], one), (mode, p)
        if not use_grad:
            k = (ni, nj, nk)[axis]
            want = np.sum(a * b, axis=axis + 1)
            bound = two_orders_bound(np.sum(np.abs(a * b), axis=axis + 1), k)
            assert np.all(np.abs(whole - want) <= bound)
        else:
            s = np.sum(a * b, axis=axis + 1)
            np.testing.assert_allclose(whole.J, np.sum(s * s, axis=(1, 2)), rtol=1e-10,
                                       atol=1e-12)
            # ∂J/∂a = Σ over b's broadcast 2 s b: the adjoint through the same contraction
            grad_a = np.sum(2 * np.expand_dims(s, axis + 1) * b, axis=tuple(
                1 + n for n, x in enumerate("ijk") if x not in la), keepdims=True)
            np.testing.assert_allclose(whole.dJ_da, np.broadcast_to(grad_a, whole.dJ_da.shape),
                                       rtol=1e-9, atol=1e-9 * (1 + float(np.max(np.abs(grad_a)))))
