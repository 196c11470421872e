"""to_fused: elementwise chains fused into C loops, sums accumulated in them, NumPy for the rest.

The same numbers as to_numpy within the compiled lowerings' contract (special values bit for
bit, finite values to rounding), sums in the loop's order within the bound n·ε·Σ|x|; a point of
a batch is the point alone, bit for bit.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from strategies import tensor_circuits, tensor_programs
from test_batch import batch_of, same_bits
from test_compiled import close, compile_cache  # noqa: F401  (a fresh cache for the module)

import circuitgrad as cg
from circuitgrad.lower.fused import fusion_groups, to_fused


def _outs(f, values, single):
    out = f(**values)
    return (out,) if single else tuple(out)


def _agree_and_batch(c, seed):
    """to_fused (every group a kernel) agrees with to_numpy at one point and on batches, and a
    batch's point k is the call at point k bit for bit; the kernels' generic loops give the
    bits of the loops the calls chose (fixed strides where the layout allows)."""
    single = len(c.outputs) == 1
    fused, plain = to_fused(c, min_entries=0), cg.to_numpy(c)
    generic = _generic_twin(fused)
    with np.errstate(all="ignore"):
        for batch in ((), (4,), (2, 3)):
            values = batch_of(c, seed, batch)
            got, want = _outs(fused, values, single), _outs(plain, values, single)
            for g, w in zip(got, _outs(generic, values, single)):
                assert same_bits(g, w)
            for name, g, w in zip(c.outputs, got, want):
                assert np.shape(g) == np.shape(w), (name, batch)
                assert close(g, w), (name, batch, g, w)
            for k in np.ndindex(batch):
                one = _outs(fused, {n: v[k] for n, v in values.items()}, single)
                for name, g, p in zip(c.outputs, got, one):
                    assert same_bits(np.asarray(g)[k], p), (name, k)


@settings(max_examples=20, deadline=None)
@given(tensor_programs(), st.integers(0, 2**31))
def test_random_tensor_programs_and_gradients(program, seed):
    text, shapes = program
    c = cg.parse(text, shapes=shapes, inputs=list(shapes))
    _agree_and_batch(c, seed)
    _agree_and_batch(cg.grad(c), seed)


@settings(max_examples=15, deadline=None)
@given(tensor_circuits(), st.integers(0, 2**31))
def test_random_tensor_circuits_with_array_constants(c, seed):
    _agree_and_batch(cg.grad(c), seed)


def test_a_chain_is_one_kernel_and_its_sum_is_accumulated_in_it():
    c = cg.grad(cg.parse("J = sum(exp(x) * y + x)", shapes={"x": (3,), "y": (3,)}))
    groups, schedule = fusion_groups(c, min_entries=0)
    assert len(groups) == 1 and [kind for kind, _ in schedule] == ["group"]
    assert [c.op(s) for s, _ in groups[0].sums] == ["sum"]
    f = to_fused(c, min_entries=0)
    assert "xp.sum" not in f.source and f.groups == 1
    assert "cg_k0" in f.c_source and repr(f).endswith("1 fused kernels>")


def test_small_groups_stay_numpy_calls():
    c = cg.parse("J = sum(exp(x) * y)", shapes={"x": (3,), "y": (3,)})
    assert to_fused(c).groups == 0  # 3 entries < MIN_ENTRIES
    big = cg.parse("J = sum(exp(x) * y + x)", shapes={"x": (2000,), "y": (2000,)})
    assert to_fused(big).groups == 1


def test_a_node_of_several_numpy_passes_alone_is_a_kernel():
    # sin's adjoint g * cos(x) alone: two NumPy passes and a temporary, one kernel's pass;
    # an op of one NumPy call (add, sin) alone stays that call
    c = cg.parse("J = sum(sin(x) * y)", shapes={"x": (40, 40), "y": (40, 40)})
    g = cg.grad(c, wrt=["x"])
    f = to_fused(g)
    assert "_run(" in f.source and "xp.cos" not in f.source
    assert to_fused(cg.parse("J = sin(x) + y", shapes={"x": (40, 40), "y": (40, 40)})).groups == 1
    assert to_fused(cg.parse("J = sin(x)", shapes={"x": (40, 40)})).groups == 0
    # a broadcast over short rows alone (x - mu for every point and component): NumPy calls
    # its inner loop once a row, a kernel runs the rows as vectors; batch points alone alike
    sub = cg.parse("J = x - mu", shapes={"x": (100, 1, 10), "mu": (1, 20, 10)})
    fs = to_fused(sub)
    assert fs.groups == 1
    assert to_fused(cg.parse("J = x - mu", shapes={"x": (100, 1, 70), "mu": (1, 20, 70)})
                    ).groups == 0
    rng = np.random.default_rng(5)
    xs, mus = rng.normal(size=(3, 100, 1, 10)), rng.normal(size=(1, 20, 10))
    got = fs(x=xs, mu=mus)
    assert same_bits(got, xs - mus)  # one subtraction: exact
    assert all(same_bits(got[k], fs(x=xs[k], mu=mus)) for k in range(3))
    rng = np.random.default_rng(4)
    values = {"x": rng.normal(size=(40, 40)), "y": rng.normal(size=(40, 40))}
    for got, want in zip(f(**values), cg.to_numpy(g)(**values)):
        assert close(got, want)


@pytest.mark.parametrize("text, shapes", [
    ("J = sum(W * x, axis=1)", {"W": (40, 30), "x": (30,)}),  # a matrix-vector product
    ("J = sum(W * x, axis=0)", {"W": (40, 30), "x": (40, 1)}),
    ("J = sum(u * v, axis=2)", {"u": (5, 4, 1, 6), "v": (4, 3, 6)}),  # stacked, broadcast
    ("J = sum(exp(u) * v, axis=0)", {"u": (8, 1), "v": (9,)}),  # an outer product's sum
    # GMM's L·(x − μ) at d = 2: 2 × 2 times 2 × 100, then copied into the output's layout
    ("J = sum(Q * c, axis=3)", {"Q": (1, 5, 2, 2), "c": (100, 5, 1, 2)}),
])
def test_a_sum_of_a_product_is_one_matmul(text, shapes):
    c = cg.parse(text, shapes=shapes)
    f, g = to_fused(c, min_entries=0), cg.to_numpy(c)
    assert "_contract(" in f.source and "xp.sum" not in f.source
    rng = np.random.default_rng(0)
    for batch in ((), (3,)):
        values = {n: rng.normal(size=batch + s) for n, s in shapes.items()}
        got, want = f(**values), g(**values)
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        for k in np.ndindex(batch):
            assert same_bits(np.asarray(got)[k], f(**{n: v[k] for n, v in values.items()}))
        # the same values in another memory layout (the batch axis innermost in memory):
        # BLAS is given contiguous operands, so the same calls and the same bits (not where
        # an operand's own axis is summed first: NumPy's sum adds in the layout's order)
        if batch and "exp(u)" not in text:
            strided = {n: np.moveaxis(np.ascontiguousarray(np.moveaxis(v, 0, -1)), -1, 0)
                       for n, v in values.items()}
            assert same_bits(np.asarray(f(**strided)), np.asarray(got))
    # a gradient's sum_to of a product (the adjoint of a broadcast): also a matmul
    scalar = cg.parse(f"{text}\nL = sum(tanh(J))", shapes=shapes)
    grad = cg.grad(scalar)
    values = {n: rng.normal(size=s) for n, s in shapes.items()}
    for got, want in zip(to_fused(grad, min_entries=0)(**values), cg.to_numpy(grad)(**values)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("text, shapes", [
    ("J = sum(A * B)", {"A": (6, 7), "B": (6, 7)}),  # a dot product of every entry
    ("J = sum(A * B, axis=0)", {"A": (60, 7), "B": (60, 7)}),  # stacked dot products
    ("J = sum(A * exp(B), axis=1)", {"A": (6, 1, 70), "B": (6, 1, 70)}),
])
def test_dot_products_are_summed_in_a_kernel(text, shapes):
    # operands that vary along the same axes: no matmul (its copies and a call per entry),
    # the product's sum accumulated in the kernel, within the bound of a reordered sum
    c = cg.parse(text, shapes=shapes)
    f, g = to_fused(c, min_entries=0), cg.to_numpy(c)
    assert "_contract(" not in f.source and "xp.sum" not in f.source and f.groups == 1
    rng = np.random.default_rng(1)
    for batch in ((), (3,)):
        values = {n: rng.normal(size=batch + s) for n, s in shapes.items()}
        got, want = f(**values), g(**values)
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        for k in np.ndindex(batch):
            assert same_bits(np.asarray(got)[k], f(**{n: v[k] for n, v in values.items()}))


def test_a_sum_along_an_axis_no_operand_has_counts_each_term_that_many_times():
    from circuitgrad.builder import Builder

    b = Builder()
    u, v = b.input("u", (4, 1, 5)), b.input("v", (5,))
    wide = [b.apply("broadcast_to", x, shape=(4, 3, 5)) for x in (u, v)]
    product = wide[0] * wide[1]
    c = b.finish([("J", b.apply("sum", product, axis=1)),
                  ("K", b.apply("sum_to", wide[1] * wide[1], shape=(3, 1), ndim=3))])
    f = to_fused(c, min_entries=0)
    assert f.source.count("_contract(") == 1  # K's operands vary alike: summed in a kernel
    rng = np.random.default_rng(2)
    values = {"u": rng.normal(size=(4, 1, 5)), "v": rng.normal(size=5)}
    for got, want in zip(f(**values), cg.to_numpy(c)(**values)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_views_whose_strides_are_not_whole_entries_are_read_right():
    # a structured array's float64 field (strides of 12 bytes) and an unaligned view: the
    # kernel's strides count entries, and 12 // 8 read the wrong entries before the copy
    c = cg.parse("J = exp(x) * y + x", shapes={"x": (5,), "y": (5,)})
    f, want = to_fused(c, min_entries=0), cg.to_numpy(c)
    records = np.zeros((3, 5), dtype=[("a", "f8"), ("b", "i4")])
    records["a"] = np.linspace(-1.0, 2.0, 15).reshape(3, 5)
    raw = np.zeros(5 * 8 + 1, np.uint8)[1:].view(np.float64)
    raw[:] = np.linspace(0.5, 1.5, 5)
    y = np.linspace(2.0, 3.0, 5)
    for x in (records["a"][1], records["a"], raw):
        assert x.strides[-1] % 8 or not x.flags.aligned
        np.testing.assert_array_equal(f(x=x, y=y), f(x=np.array(x), y=y))
        np.testing.assert_allclose(f(x=x, y=y), want(x=x, y=y), rtol=1e-14)


def test_sums_keep_signed_zeros_and_specials():
    c = cg.parse("J = sum(x * y, axis=1)\nK = sum(x * y)", outputs=["J", "K"],
                 shapes={"x": (2, 3), "y": (2, 3)})
    f, g = to_fused(c, min_entries=0), cg.to_numpy(c)
    x = np.array([[-0.0, -0.0, -0.0], [np.inf, 1.0, -np.inf]])
    y = np.ones((2, 3))
    with np.errstate(all="ignore"):
        got, want = f(x=x, y=y), g(x=x, y=y)
    assert same_bits(got.J, want.J) and same_bits(got.K, want.K)  # -0.0, nan; nan
    assert got.J[0] == 0 and not np.signbit(got.J[0])  # NumPy: -0.0s sum to +0.0


def test_a_long_sum_is_within_its_bound():
    n = 100_000
    c = cg.parse("J = sum(x * y)", shapes={"x": (n,), "y": (n,)})
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=n), rng.normal(size=n)
    got, want = to_fused(c)(x=x, y=y), np.sum(x * y)
    # sequential in the loop's order (NumPy sums pairwise): |error| <= n·ε·Σ|x·y| each
    assert abs(got - want) <= 2 * n * np.finfo(float).eps * np.sum(np.abs(x * y))


def test_strided_and_broadcast_operands():
    c = cg.grad(cg.parse("J = sum(tanh(W * b) * W)", shapes={"W": (40, 50), "b": (50,)}))
    f, g = to_fused(c, min_entries=0), cg.to_numpy(c)
    rng = np.random.default_rng(3)
    W = rng.normal(size=(50, 40)).T  # a transposed view: strides (8, 320)
    b = rng.normal(size=(3, 1, 50))[:, 0, ::-1]  # a batch, reversed: a negative stride
    for got, want in zip(f(W=W, b=b), g(W=W, b=b)):
        assert close(got, want)


def test_the_gmm_gradient_agrees_with_to_numpy():
    from benchmarks import gmm

    d, K = 3, 4
    at = gmm.point(d, K)
    fn = gmm.objective(np, lambda a, axis: cg.logsumexp(a, axis=axis), d, K)
    c = cg.grad(cg.trace(fn, shapes={k: v.shape for k, v in at.items()}), wrt=list(gmm.WRT))
    f = to_fused(c, min_entries=0)
    assert f.groups >= 5
    for got, want in zip(f(**at), cg.to_numpy(c)(**at)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_pickles_and_other_array_libraries_run_numpys_code():
    c = cg.parse("J = sum(exp(x) * x)", shapes={"x": (5,)})
    f = to_fused(c, min_entries=0)
    again = pickle.loads(pickle.dumps(f))
    x = np.linspace(-1, 1, 5)
    assert same_bits(again(x=x), f(x=x))
    torch = pytest.importorskip("torch")
    t = f(x=torch.tensor(x))
    assert isinstance(t, torch.Tensor) and np.isclose(float(t), float(f(x=x)))


def test_to_c_chooses_fused_loops_above_its_scalar_limit():
    from circuitgrad.lower.c import SCALAR_LIMIT
    from circuitgrad.transforms.scalarize import scalar_size

    def network(n):
        return cg.grad(cg.parse("J = sum(tanh(W @ x) * y)",
                                shapes={"W": (n, n), "x": (n,), "y": (n,)}))

    small, large = network(4), network(100)
    assert scalar_size(small) <= SCALAR_LIMIT < scalar_size(large)
    assert type(cg.to_c(small)).__name__ == "CFunction"
    f = cg.to_c(large)
    assert "FusedFunction" in repr(f)
    rng = np.random.default_rng(0)
    args = {"W": rng.normal(size=(100, 100)) / 10, "x": rng.normal(size=100),
            "y": rng.normal(size=100)}
    for got, want in zip(f(**args), cg.to_numpy(large)(**args)):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    assert type(cg.to_c(small, fused=True)).__name__ == "FusedFunction"
    # the estimate is the scalar circuit's size, within a few percent
    s = cg.scalarize(network(6))
    assert abs(scalar_size(network(6)) - s.size) <= 0.25 * s.size


def test_malloc_keeps_freed_arrays_for_the_next_call():
    # glibc's heap keeps freed arrays (no page faults on the next call's); set once, by
    # building a fused function, unless CIRCUITGRAD_MALLOC=system
    import ctypes
    import os

    from circuitgrad.lower import fused
    c = cg.parse("J = sum(exp(x) * y + x)", shapes={"x": (3000,), "y": (3000,)})
    cg.to_fused(c)
    assert fused._malloc_tuned  # decided on the first build
    try:
        glibc = bool(ctypes.CDLL(None).gnu_get_libc_version)
    except (OSError, AttributeError):
        glibc = False
    wanted = glibc and os.environ.get("CIRCUITGRAD_MALLOC", "") != "system"
    assert fused.tune_malloc() is wanted and fused._malloc_tuned == [wanted]


def _widths():
    from circuitgrad.lower import isa
    host = isa.default_width()
    return [w for w in (8, 4, 2) if w <= host] if host > 1 else [1]


@pytest.mark.parametrize("width", _widths())
def test_partial_vectors_of_short_rows_are_the_bits_of_full_ones(width, monkeypatch):
    # y of shape (3, 1) keeps the rows of x (3, n) apart: rows of n entries, the last vector
    # partly used (read and written under a mask); the same entries in one long row (full
    # vectors) and the sums added in the loop's order, float by float, give the same bits
    from circuitgrad.lower import cforms, isa
    monkeypatch.setattr(isa, "default_width", lambda: width)
    monkeypatch.setattr(cforms, "default_width", lambda: width)
    rng = np.random.default_rng(width)
    for n in (1, 2, 3, 5, 7, 9, 10, 17):
        x, y = rng.normal(size=(3, n)), rng.normal(size=(3, 1))
        c = cg.parse("E = exp(x) * y + x\nS0 = sum(E, axis=0)\nS1 = sum(E, axis=1)",
                     shapes={"x": (3, n), "y": (3, 1)}, outputs=["E", "S0", "S1"])
        f = to_fused(c, min_entries=0)
        assert f.groups == 1
        out = f(x=x, y=y)
        long = cg.parse("exp(x) * y + x", shapes={"x": (3 * n,), "y": (3 * n,)})
        P = to_fused(long, min_entries=0)(x=x.ravel(), y=np.repeat(y.ravel(), n)).reshape(3, n)
        assert same_bits(out.E, P)
        s0 = [0.0] * n
        for i in range(3):
            s0 = [a + float(b) for a, b in zip(s0, P[i])]
        s1 = []
        for i in range(3):
            row = -0.0
            for b in P[i]:
                row += float(b)
            s1.append(0.0 + row)
        assert same_bits(out.S0, np.array(s0)) and same_bits(out.S1, np.array(s1))


def test_a_kernels_plan_is_kept_by_shapes_and_strides():
    # the loop's strides are kept per call signature: the same shapes with other strides,
    # or another batch, get their own plan (and the right numbers)
    c = cg.parse("J = exp(x) * y + x", shapes={"x": (3000,), "y": (3000,)})
    f, g = to_fused(c), cg.to_numpy(c)
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=6000), rng.normal(size=3000)
    for args in ((x[:3000], y), (x[::2], y), (x[1::2], y[::-1]), (x.reshape(2, 3000), y),
                 (x[:3000], y)):
        assert same_bits(f(*args), np.asarray(f(*(np.ascontiguousarray(a) for a in args))))
        assert close(f(*args), g(*args))
    plans = f._namespace["_run"].keywords["plans"]
    assert len(plans) == 4  # the last call's plan was the first's


@pytest.mark.parametrize("width", _widths())
def test_blocks_of_short_rows_are_the_bits_of_rows(width, monkeypatch):
    # rows shorter than a vector run in blocks of rows (broadcast operands gathered, sums
    # added entry by entry): the same bits as one row at a time (where that sums entry by
    # entry too), in a batch as alone, and with an operand read backwards
    from circuitgrad.lower import cforms, fused, isa
    monkeypatch.setattr(isa, "default_width", lambda: width)
    monkeypatch.setattr(cforms, "default_width", lambda: width)
    short_row = fused.SHORT_ROW
    rng = np.random.default_rng(width)
    text = ("E = exp(x - m) * x\nS0 = sum(E, axis=0)\nS1 = sum(E, axis=1)\n"
            "S2 = sum(E, axis=2)\nS = sum(E)")
    for n, K, d in ((1000, 5, 2), (12, 7, 3), (7, 1, 1), (250, 3, 5)):
        shapes = {"x": (n, 1, d), "m": (1, K, d)}
        f = to_fused(cg.parse(text, shapes=shapes, outputs=["E", "S0", "S1", "S2", "S"]),
                     min_entries=0)
        assert f.groups == 1
        x, m = rng.normal(size=(3, n, 1, d)), rng.normal(size=(1, K, d))
        blocks = f(x=x[0], m=m)
        monkeypatch.setattr(fused, "SHORT_ROW", 0)  # one row at a time
        f._namespace["_run"].keywords["plans"].clear()
        rows = f(x=x[0], m=m)
        monkeypatch.setattr(fused, "SHORT_ROW", short_row)
        f._namespace["_run"].keywords["plans"].clear()
        # a sum over whole blocks adds entry by entry (one row at a time: a sum per row first)
        assert all(same_bits(a, b) for a, b in zip(blocks[:4], rows[:4]))
        total = 0.0
        for e in blocks.E.ravel():
            total += float(e)
        assert same_bits(blocks.S, np.float64(total)) and close(blocks.S, rows.S)
        assert all(close(a, b) for a, b in zip(blocks, cg.to_numpy(f.circuit)(x=x[0], m=m)))
        batch = f(x=x, m=m)
        for k in range(3):
            alone = f(x=x[k], m=m)
            assert all(same_bits(a[k], b) for a, b in zip(batch, alone))
        backwards = f(x=x[0][::-1], m=m[:, ::-1])
        copied = f(x=np.ascontiguousarray(x[0][::-1]), m=np.ascontiguousarray(m[:, ::-1]))
        assert all(same_bits(a, b) for a, b in zip(backwards, copied))


@pytest.mark.parametrize("width", _widths())
@pytest.mark.parametrize("op", ["logsumexp", "softmax", "log_softmax"])
def test_row_kernels_are_within_their_bound(op, width, monkeypatch):
    # logsumexp, softmax, log_softmax along the last axis: one C pass per row (a row per lane
    # for rows of at most 16 entries, else along the vectors), the sum of exp in another order
    # than NumPy's: within (n + 8)·ε of the scale; specials exactly; a batch its points
    from circuitgrad.lower import cforms, isa
    monkeypatch.setattr(isa, "default_width", lambda: width)
    monkeypatch.setattr(cforms, "default_width", lambda: width)
    rng = np.random.default_rng(7)
    eps = np.finfo(float).eps
    # (a row per lane up to CG_ROW_LANES = 16 entries: (2, 8), (9,), (13, 16); along the
    # vectors above: (4, 17), (3, 50))
    for shape in ((1000, 5), (3, 50), (9,), (2, 8), (13, 16), (4, 17)):
        c = cg.parse(f"J = {op}(x, axis={len(shape) - 1})", shapes={"x": shape})
        f, g = to_fused(c), cg.to_numpy(c)
        assert "_rows(" in f.source
        x = rng.normal(size=(3,) + shape) * 30
        got, want = f(x[0]), g(x[0])
        n = shape[-1]
        scale = want if op == "softmax" else 1 + np.abs(want)
        assert np.all(np.abs(got - want) <= (n + 8) * eps * scale)
        batch = f(x)
        assert all(same_bits(batch[k], f(x[k])) for k in range(3))
        assert same_bits(f(x[0][..., ::-1]), f(np.ascontiguousarray(x[0][..., ::-1])))
        # (the kernel's meta kept by the operand's shape: the point's and the batch's)
        assert set(f._namespace["_rows"].keywords["metas"]) == {shape, (3,) + shape}
    specials = np.array([[np.inf, 1.0, 2.0], [-np.inf, -np.inf, -np.inf], [np.nan, 1.0, 2.0],
                         [np.inf, -np.inf, 0.0], [1000.0, 1000.0, -1000.0], [-0.0, 0.0, -0.0]])
    for x in (specials, np.repeat(specials, 4, axis=1)):
        c = cg.parse(f"J = {op}(x, axis=1)", shapes={"x": x.shape})
        with np.errstate(all="ignore"):
            assert close(to_fused(c)(x), cg.to_numpy(c)(x))


def test_the_gmm_gradients_logsumexp_is_a_row_kernel():
    from benchmarks import gmm
    d, K = 2, 5
    at = gmm.point(d, K)
    fn = gmm.objective(np, lambda a, axis: cg.logsumexp(a, axis=axis), d, K)
    g = cg.grad(cg.trace(fn, shapes={k: v.shape for k, v in at.items()}), wrt=list(gmm.WRT))
    f = to_fused(g)
    assert f.source.count("_rows(0, ") == 2 and "_sp.logsumexp" not in f.source
    for a, b in zip(f(**at), cg.to_numpy(g)(**at)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_kernels_run_through_ctypes_without_the_extensions_call(monkeypatch):
    # the tape extension's kernel() passes the arrays' buffers; without it (an older build)
    # ctypes passes their addresses: the same numbers
    from circuitgrad.lower import fused
    c = cg.grad(cg.parse("J = sum(logsumexp(exp(x) * y + x, axis=1))",
                         shapes={"x": (300, 5), "y": (300, 5)}))
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(300, 5)), rng.normal(size=(2, 300, 5))
    with_extension = to_fused(c)(x, y)
    assert fused._tape is not None and hasattr(fused._tape, "kernel")
    monkeypatch.setattr(fused, "_tape", None)
    f = to_fused(c)
    assert all(same_bits(a, b) for a, b in zip(f(x, y), with_extension))
    assert all(same_bits(a, b) for a, b in zip(f(x, y[:, ::-1]), to_fused(c)(x, y[:, ::-1])))


def _driver(f) -> str:
    """A fused function's driver: its source less the comment block above it, which shows the
    values computed at build."""
    return "\n".join(line for line in f.source.splitlines() if not line.startswith("#"))


def test_values_of_no_input_are_computed_once_and_broadcasts_are_views():
    # the gradient's broadcast_to(0.5, (K,)) ... depend on no input: computed when the
    # function is built; a broadcast that only kernels read is its source with length-1 axes
    from benchmarks import gmm
    d, K = 2, 5
    at = gmm.point(d, K)
    fn = gmm.objective(np, lambda a, axis: cg.logsumexp(a, axis=axis), d, K)
    g = cg.grad(cg.trace(fn, shapes={k: v.shape for k, v in at.items()}), wrt=list(gmm.WRT))
    f, plain = to_fused(g), cg.to_numpy(g)
    assert "_cg.broadcast_to(0.5" in plain.source and "_cg.broadcast_to(0.5" not in _driver(f)
    assert "#   v54 = _cg.broadcast_to(0.5, (5,), 0)" in f.source.splitlines()  # (shown)
    assert "v30[..., None]" in f.source  # logsumexp's value broadcast over its row
    # (and where exact arithmetic reads a broadcast beside an operand of its shape)
    assert "_cg.broadcast_to(" not in _driver(f) and "v62 = v32[..., None]" in f.source
    assert "alphas - v62" in f.source
    for _ in range(2):
        for a, b in zip(f(**at), plain(**at)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)



def test_a_scatter_into_the_whole_array_is_one_addition():
    # the adjoint of x[:, None, :] (a place that is the whole array): 0.0 + the value
    # reshaped, as scatter_add's zeros plus it (-0.0 becomes +0.0), in a batch too
    c = cg.grad(cg.parse("J = sum(x[:, None, :] * y)", shapes={"x": (3, 4), "y": (3, 1, 4)}))
    f, g = to_fused(c, min_entries=0), cg.to_numpy(c)
    assert "_cover(" in f.source and "_cg.scatter_add(" in g.source
    y = np.array([[[-0.0, 1.0, np.inf, -2.0]], [[0.0, -0.0, 3.0, np.nan]], [[1.0] * 4]])
    x = np.ones((2, 3, 4))
    for got, want in zip(f(x=x, y=y), g(x=x, y=y)):
        assert same_bits(got, want)
    assert not np.signbit(f(x=x[0], y=y).dJ_dx[0, 0])



def test_a_kernel_of_more_than_64_arrays_runs():
    # a group reads any number of operands (70 inputs here); the extension's kernel() held 64
    # arrays on its stack and refused more with a ValueError: more now come from the heap
    n = 70
    c = cg.parse("J = " + " + ".join(f"sin(x{k}) * x{k}" for k in range(n)),
                 shapes={f"x{k}": (4,) for k in range(n)})
    f = to_fused(c, min_entries=0)
    assert f.groups == 1
    rng = np.random.default_rng(3)
    values = {f"x{k}": rng.normal(size=(2, 4)) for k in range(n)}
    got = f(**values)
    assert close(got, cg.to_numpy(c)(**values))
    assert same_bits(got[1], f(**{k: v[1] for k, v in values.items()}))


def test_the_extensions_kernel_refuses_wrong_arguments():
    # wrong calls raise (no crash): float64 arrays only, writeable results, nout in range
    from circuitgrad.lower import fused
    c = cg.parse("J = exp(x) * x", shapes={"x": (8,)})
    f = to_fused(c, min_entries=0)
    call = fused.kernel_entry(f._library.cg_kernel)
    meta = np.zeros(1, dtype=np.int64)
    x, y = np.ones(8), np.empty(8)
    before = f(x)
    read_only = np.empty(8)
    read_only.flags.writeable = False
    with pytest.raises(TypeError, match="float64"):
        call(0, meta, (x.astype(np.float32), y), 1)
    with pytest.raises(TypeError, match="float64"):
        call(0, meta, (x, y.astype(">f8")), 1)
    with pytest.raises(ValueError):
        call(0, meta, (x, read_only), 1)
    with pytest.raises(ValueError, match="nout"):
        call(0, meta, (x, y), 3)
    with pytest.raises(ValueError, match="nout"):
        call(0, meta, (x, y), -1)
    with pytest.raises(TypeError):
        call(0, np.zeros(1, dtype=np.int32), (x, y), 1)
    with pytest.raises(TypeError):
        call(0, meta, [x, y], 1)
    assert same_bits(f(x), before)  # still works after the refusals


def test_an_output_of_no_input_is_computed_on_each_call():
    # the values of no input are computed once, at build; an output of no input (here a
    # transpose: a view of what it reads) stays per call, so that writing into one call's
    # result cannot change the next call's (it did: y read 99.0 after z[...] = 99.0)
    from circuitgrad.builder import Builder
    b = Builder()
    x = b.input("x", (4, 3))
    e = b.apply("exp", b.apply("broadcast_to", b.const(0.5), shape=(4, 3)))
    c = b.finish([("y", x * e), ("z", b.apply("transpose", e))])
    f, plain = to_fused(c), cg.to_numpy(c)
    first = f(np.zeros((4, 3)))
    first.z[...] = 99.0
    for got, want in zip(f(np.ones((4, 3))), plain(np.ones((4, 3)))):
        assert same_bits(got, want)
    # an output that reads the values of no input beside an input's still gets them folded
    c = b.finish([("y", x * e)])
    assert "_cg.broadcast_to(" not in _driver(to_fused(c))
    assert same_bits(to_fused(c)(np.ones((4, 3))), plain(np.ones((4, 3))).y)


@pytest.mark.parametrize("text, shapes", [
    ("J = sum(Q * c, axis=3)", {"Q": (1, 5, 2, 2), "c": (100, 5, 1, 2)}),  # GMM's L·(x − μ)
    ("J = sum(Q * c, axis=3)", {"Q": (1, 3, 10, 10), "c": (7, 3, 1, 10)}),  # d = 10
    ("J = sum(g * Q, axis=2)", {"Q": (1, 3, 5, 7), "g": (9, 3, 5, 1)}),  # its adjoint g·Q
    ("J = sum(g * c, axis=0)", {"c": (900, 3, 1, 2), "g": (900, 3, 2, 1)}),  # 900 terms
    ("J = sum(g * c, axis=0)", {"c": (900, 3, 1, 10), "g": (900, 3, 10, 1)}),  # in one block
    ("J = sum(W * x, axis=1)", {"W": (5, 30), "x": (30,)}),  # a matrix-vector product
    ("J = sum(u * v, axis=3)", {"u": (5, 4, 1, 6), "v": (4, 3, 6)}),  # stacked, broadcast
])
def test_small_contractions_run_in_the_librarys_loop(text, shapes, monkeypatch):
    # few terms and columns: the library's loop, not BLAS (contract_small); the terms added
    # left to right for each entry, so a point of a batch and any memory layout give the same
    # bits, and the values are BLAS's within the rounding of a sum of products
    import circuitgrad.lower.fused as fused

    c = cg.parse(text, shapes=shapes)
    f, g = to_fused(c, min_entries=0), cg.to_numpy(c)
    monkeypatch.setattr(fused, "MM_COLUMNS", 0)
    blas = to_fused(c, min_entries=0, name="blas")
    assert "_mm0)" in f.source and "_mm" not in blas.source
    rng = np.random.default_rng(3)
    for batch in ((), (3,), (2, 1)):
        values = {n: rng.normal(size=batch + s) for n, s in shapes.items()}
        got = f(**values)
        assert np.shape(got) == np.shape(g(**values)) == np.shape(blas(**values))
        np.testing.assert_allclose(got, g(**values), rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(got, blas(**values), rtol=1e-13, atol=1e-13)
        for k in np.ndindex(batch):
            assert same_bits(np.asarray(got)[k], f(**{n: v[k] for n, v in values.items()}))
        if batch:  # the batch axis innermost in memory: the same bits
            strided = {n: np.moveaxis(np.ascontiguousarray(np.moveaxis(v, 0, -1)), -1, 0)
                       for n, v in values.items()}
            assert same_bits(np.asarray(f(**strided)), np.asarray(got))
        # the output's shape kept with the plan (final) where _carried only reshapes: the
        # same array as _carried's reshape of the loop's output
        plans = f._namespace["_mm0"].keywords["plans"]
        kept = dict(plans)
        for key, plan in kept.items():
            plans[key] = plan if plan is False else (*plan[:-1], None)
        assert same_bits(np.asarray(f(**values)), np.asarray(got))
        assert any(plan is not False and plan[-1] is not None for plan in kept.values())
        plans.update(kept)
    # special values: inf · 0 is NaN, a sum of -0.0 products is +0.0 (a sum starts at +0.0,
    # as NumPy's sum of the product)
    values = {n: np.full(s, -0.0) for n, s in shapes.items()}
    first = next(iter(shapes))
    values[first] = np.abs(values[first])
    assert same_bits(f(**values), g(**values))
    values[first] = np.full(shapes[first], np.inf)
    assert np.isnan(f(**values)).all()


def test_a_contraction_of_many_terms_or_columns_stays_blas():
    for text, shapes in [
            ("J = sum(Q * c, axis=3)", {"Q": (1, 3, 2, 33), "c": (70, 3, 1, 33)}),  # 33 terms
            ("J = sum(Q * c, axis=3)", {"Q": (1, 3, 40, 2), "c": (7, 3, 1, 2)}),  # 40 columns
            # more than a vector of columns, the right operand read as it is: BLAS's case
            ("J = sum(g * Q, axis=2)", {"Q": (1, 3, 5, 17), "g": (9, 3, 5, 1)}),
            # many terms and more rows than one block
            ("J = sum(g * c, axis=0)", {"c": (900, 3, 1, 10), "g": (900, 3, 24, 1)})]:
        c = cg.parse(text, shapes=shapes)
        f = to_fused(c, min_entries=0)
        assert "_contract(" in f.source and "_mm" not in f.source, text


def test_the_drivers_own_forms_give_the_bits_of_numpys_code(monkeypatch):
    # take with its indices made once, put_add as a bincount, a scatter_add whose places
    # cover the array as writes, concatenate and reshape without their batch steps, np.sum
    # as its reduce: the same bits as the NumPy lowering's lines, points and batches
    from benchmarks import gmm
    import circuitgrad.lower.fused as fused

    d, K = 3, 4
    at = gmm.point(d, K)
    fn = gmm.objective(np, lambda a, axis: cg.logsumexp(a, axis=axis), d, K)
    c = cg.grad(cg.trace(fn, shapes={k: v.shape for k, v in at.items()}), wrt=list(gmm.WRT))
    f = to_fused(c)
    for helper in ("_take(", "_put_add_last(", "_scatter_cover(", "_concat(", "_reshape(",
                   "_add_reduce(", "_cover_view("):
        assert helper in f.source, helper
    monkeypatch.setattr(fused, "DRIVER_FORMS", {})
    plain = to_fused(c, name="plain")
    assert "_put_add_last(" not in plain.source
    rng = np.random.default_rng(6)
    batch = {k: np.stack([v, v + 0.01 * rng.normal(size=v.shape)]) for k, v in at.items()}
    for values in (at, batch):
        for got, want in zip(f(**values), plain(**values)):
            assert same_bits(np.asarray(got), np.asarray(want))


def test_put_add_last_adds_in_the_order_of_add_at():
    from circuitgrad.lower.fused import put_add_last

    rng = np.random.default_rng(7)
    indices = np.array([0, 3, 0, 1, 0, 3, 2, 0], dtype=np.intp)
    for batch in ((), (3,), (2, 0)):
        value = rng.normal(size=batch + (4, 8)) * 10.0 ** rng.integers(-8, 8, size=8)
        value[..., 1] = -0.0
        want = np.zeros(batch + (4, 5))
        np.add.at(want, (..., indices), value)
        flats: dict = {}
        for _ in range(2):  # the flat indices made, then kept
            assert same_bits(put_add_last(value, (4, 5), indices, flats), want)


def test_a_scatter_add_that_covers_its_array_writes_each_place():
    from circuitgrad.lower.fused import _place, scatter_cover
    from circuitgrad.primitives import runtime

    places = [((0, 3, 1), (2, 4, 1)), ((0, 3, 1), (0, 2, 1))]
    values = [np.array([[-0.0, 1.0]] * 3), np.full((2, 3, 2), np.nan)]
    values[1][0] = -0.0
    index = tuple(_place(p) for p in places)
    want = runtime.scatter_add((3, 4), [(i, 2) for i in index], *values)
    assert same_bits(scatter_cover((3, 4), (index, (2, 2)), *values), want)


def test_a_covers_zeros_plus_value_in_place_or_as_a_view_where_nothing_else_reads_it():
    from circuitgrad.lower.fused import cover, cover_in_place, cover_view

    value = np.array([[-0.0, 1.0, np.nan, -np.inf], [0.0, -2.5, 3.0, -0.0]])
    want = cover(value.copy(), 2, (1, 2, 4))
    assert same_bits(cover_in_place(value.copy(), 2, (1, 2, 4)), want)
    assert same_bits(cover_in_place(value.copy()[0], 1, (4,)), cover(value[0], 1, (4,)))
    assert np.signbit(want[0, 0, 0]) == 0  # -0.0 + (+0.0) is +0.0
    summed = np.abs(value)  # (a sum the library starts at +0.0 is never -0.0)
    assert same_bits(cover_view(summed, 2, (1, 2, 4)), cover(summed, 2, (1, 2, 4)))
    assert same_bits(cover_in_place(np.float64(-0.0), 0, ()), cover(-0.0, 0, ()))


# ---- the build: a library per kernel, cached by its own source, compiled in parallel; and a
# first value without waiting for the compiler (wait=False)

def _gmm_gradient(d: int = 3, K: int = 4):
    from benchmarks import gmm
    at = gmm.point(d, K)
    fn = gmm.objective(np, lambda a, axis: cg.logsumexp(a, axis=axis), d, K)
    return cg.grad(cg.trace(fn, shapes={k: v.shape for k, v in at.items()}),
                   wrt=list(gmm.WRT)), at


def test_a_kernel_seen_in_another_circuit_is_a_cache_hit(tmp_path, monkeypatch):
    from circuitgrad.lower import cache, fused
    monkeypatch.setenv("CIRCUITGRAD_CACHE", str(tmp_path / "cache"))
    first = cg.grad(cg.parse("J = sum(exp(x) * y + x)", shapes={"x": (3000,), "y": (3000,)}))
    # the same chain under other names and shapes, and a chain of its own
    second = cg.grad(cg.parse("K = sum(exp(a) * b + a) + sum(sin(c) * c)",
                              shapes={"a": (40, 100), "b": (40, 100), "c": (2000,)}))
    sources = [{lib.source for lib in fused.kernel_libraries(c, *fused._plan(c))}
               for c in (first, second)]
    shared = sources[0] & sources[1]
    assert shared and sources[1] - sources[0]
    f = to_fused(first)
    assert cache.info()["libraries"] == len(sources[0]) == f.groups
    compiled = []
    real = fused.compile_library

    def counting(source, *args, **kwargs):
        compiled.append(source)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(fused, "compile_library", counting)
    g = to_fused(second)
    # every library is looked up, only the new ones are compiled into the cache
    assert sorted(compiled) == sorted(lib.source for lib in g._kernel_libraries)
    assert cache.info()["libraries"] == len(sources[0] | sources[1])
    values = {"a": np.linspace(-1, 1, 4000).reshape(40, 100), "b": np.full((40, 100), 0.5),
              "c": np.linspace(-3, 3, 2000)}
    for got, want in zip(g(**values), cg.to_numpy(second)(**values)):
        assert close(got, want)


def test_a_cached_build_reads_the_index_once_and_writes_it_once(tmp_path, monkeypatch):
    import json
    from circuitgrad.lower import cache
    monkeypatch.setenv("CIRCUITGRAD_CACHE", str(tmp_path / "cache"))
    c, at = _gmm_gradient()
    first = to_fused(c, min_entries=0)
    assert len(first._kernel_libraries) >= 6
    path = tmp_path / "cache" / "index.json"
    entries = json.loads(path.read_text())
    for e in entries.values():  # uses long ago: each library found records its use
        e["used"] -= 1000.0
    path.write_text(json.dumps(entries))
    calls = {"_read_index": [], "_write": []}
    for name, seen in calls.items():
        monkeypatch.setattr(cache, name, lambda *a, _f=getattr(cache, name), _s=seen, **k:
                            _s.append(a) or _f(*a, **k))
    again = to_fused(c, min_entries=0)
    # one read at the start, one (under the lock) before the one write of the uses
    assert len(calls["_read_index"]) == 2 and len(calls["_write"]) == 1
    assert all(e["used"] > entries[n]["used"] + 900
               for n, e in json.loads(path.read_text()).items())
    for got, want in zip(again(**at), first(**at)):
        assert same_bits(got, want)


def test_parallel_compilers_give_the_bits_of_one(tmp_path, monkeypatch):
    from circuitgrad.lower import fused
    c, at = _gmm_gradient()
    results = []
    for workers in (1, 3):
        monkeypatch.setenv("CIRCUITGRAD_CACHE", str(tmp_path / f"cache{workers}"))
        monkeypatch.setattr(fused, "compile_workers", lambda: workers)
        f = to_fused(c, min_entries=0)
        assert len(f._libraries) == len(f._kernel_libraries) >= 6
        results.append(tuple(f(**at)))
    for one, several in zip(*results):
        assert same_bits(one, several)


def _held_build(monkeypatch):
    """build_libraries made to wait for the returned event (the switch under the test's
    control)."""
    import threading
    from circuitgrad.lower import fused
    release, real = threading.Event(), fused.build_libraries

    def held(*args, **kwargs):
        assert release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(fused, "build_libraries", held)
    return release


def test_wait_false_gives_to_numpys_bits_then_to_fuseds(monkeypatch):
    c, at = _gmm_gradient()
    plain, compiled = cg.to_numpy(c)(**at), to_fused(c, min_entries=0)(**at)
    # (the two tiers differ here: a test that could not tell them apart would prove nothing)
    assert any(not same_bits(p, q) for p, q in zip(plain, compiled))
    release = _held_build(monkeypatch)
    f = to_fused(c, min_entries=0, wait=False)
    assert not f.compiled and "compiling" in repr(f) and not f.wait(0.01)
    for _ in range(2):
        for got, want in zip(f(**at), plain):
            assert same_bits(got, want)
    release.set()
    assert f.wait(60) and f.compiled and "compiling" not in repr(f)
    for got, want in zip(f(**at), compiled):
        assert same_bits(got, want)
    again = pickle.loads(pickle.dumps(f))  # (a wait=False function pickles as one)
    assert again.wait(60)
    for got, want in zip(again(**at), compiled):
        assert same_bits(got, want)


def test_a_call_racing_the_switch_sees_one_tier(monkeypatch):
    import threading
    c, at = _gmm_gradient()
    tiers = [tuple(cg.to_numpy(c)(**at)), tuple(to_fused(c, min_entries=0)(**at))]
    release = _held_build(monkeypatch)
    f = to_fused(c, min_entries=0, wait=False)
    seen, stop, failures = [], threading.Event(), []

    def calls():
        try:
            while not stop.is_set():
                seen.append(tuple(f(**at)))
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=calls) for _ in range(3)]
    for t in threads:
        t.start()
    release.set()
    assert f.wait(60)
    after = [tuple(f(**at)) for _ in range(3)]  # calls after the switch: the kernels'
    stop.set()
    for t in threads:
        t.join()
    assert not failures
    which = [[k for k, tier in enumerate(tiers) if all(map(same_bits, got, tier))]
             for got in seen]
    assert seen and all(len(w) == 1 for w in which)  # each call is one tier's, whole
    assert all(all(map(same_bits, got, tiers[1])) for got in after)


def test_a_background_build_compiles_once_the_first_call_has_returned(monkeypatch):
    import time
    from circuitgrad.lower import fused
    entered, real = [], fused.build_libraries

    def noting(*args, **kwargs):
        entered.append(time.monotonic())
        return real(*args, **kwargs)

    monkeypatch.setattr(fused, "build_libraries", noting)
    monkeypatch.setattr(fused, "FIRST_CALL_GRACE", 60.0)  # (no call: a minute's wait)
    c = cg.parse("J = sum(exp(x) * y + 0.25)", shapes={"x": (3000,), "y": (3000,)})
    f = to_fused(c, wait=False)
    time.sleep(0.2)
    assert not entered and not f.compiled  # not started: no call yet
    called = time.monotonic()
    assert float(f(x=np.zeros(3000), y=np.ones(3000))) == 3750.0
    assert f.wait(30) and len(entered) == 1 and entered[0] >= called
    monkeypatch.setattr(fused, "FIRST_CALL_GRACE", 0.05)  # none called: started anyway
    g = to_fused(c, wait=False)
    assert g.wait(30) and len(entered) == 2


def test_a_failed_background_build_raises_at_the_next_call_and_at_wait(monkeypatch):
    from circuitgrad.lower import fused
    c = cg.parse("J = sum(exp(x) * y)", shapes={"x": (3000,), "y": (3000,)})

    def broken(source, *args, **kwargs):
        raise cg.CircuitError("to_c: cc failed (exit 1): planted")

    monkeypatch.setattr(fused, "compile_library", broken)
    with pytest.raises(cg.CircuitError, match="planted"):
        to_fused(c)  # (waiting: raised by to_fused itself)
    f = to_fused(c, wait=False)
    with pytest.raises(cg.CircuitError, match="wait=False.*planted"):
        f.wait(60)
    assert not f.compiled and "build failed" in repr(f)
    with pytest.raises(cg.CircuitError, match="planted"):
        f(x=np.zeros(3000), y=np.ones(3000))


def test_a_process_exiting_while_the_compiler_runs_neither_waits_nor_writes(tmp_path):
    import subprocess
    import sys
    import time
    # a compiler that takes a minute; the process exits at once after its first value
    slow, pids = tmp_path / "slowcc", tmp_path / "pids"
    slow.write_text(f"#!/bin/sh\necho $$ >> {pids}\nsleep 60\nexec cc \"$@\"\n")
    slow.chmod(0o755)
    cache_dir = tmp_path / "cache"
    script = ("import numpy as np, circuitgrad as cg\n"
              "c = cg.parse('J = sum(exp(x) * y)', shapes={'x': (3000,), 'y': (3000,)})\n"
              "f = cg.to_fused(c, wait=False)\n"
              "print(float(f(x=np.zeros(3000), y=np.ones(3000))), f.compiled)\n")
    env = {**os.environ, "CC": str(slow), "CIRCUITGRAD_CACHE": str(cache_dir)}
    start = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, timeout=45)
        assert time.monotonic() - start < 45
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["3000.0", "False"]
        # no library was written, whole or in part
        assert not cache_dir.exists() or not [
            p for p in cache_dir.iterdir() if p.name.startswith(("cg_", ".tmp_"))]
    finally:
        for pid in pids.read_text().split() if pids.exists() else ():
            try:
                os.killpg(int(pid), 9)  # (the compiler runs in its own session)
            except ProcessLookupError:
                pass


def _generic_twin(f):
    """A copy of fused function ``f``'s driver whose kernels all run their generic loop
    (the entry's g = 1: each array's step and table read at run time, whatever the layout)."""
    import functools
    from circuitgrad.lower import fused
    twin = to_fused(f.circuit, min_entries=f._min_entries)
    for lib, library in zip(twin._kernel_libraries, twin._libraries):
        if lib.kind == "kernel":
            twin._namespace[f"_kernel{lib.index}"] = functools.partial(
                fused.kernel_entry(library.cg_kernel), 1)
    return twin


def _fixed_calls(f):
    """How many of the plans ``f``'s calls made run a kernel's fixed-stride loop: the meta's
    steps and tables (kernel_source's layout) those of ``fixed_layout`` (a table where it
    says TABLE)."""
    from circuitgrad.lower import fused
    groups, _ = fusion_groups(f.circuit, f._min_entries)
    layouts = {lib.index: fused.fixed_layout(f.circuit, groups[lib.index])
               for lib in f._kernel_libraries if lib.kind == "kernel"}
    kernels = {id(f._namespace[f"_kernel{g}"]): g for g in layouts}
    count = 0
    for key, (meta, _) in f._namespace["_run"].keywords["plans"].items():
        layout = layouts[kernels[id(key[0])]]
        if layout is None:
            continue
        n, nd = len(layout), int(meta[0])
        bs = meta[1 + nd + n * nd + 2:][:n]
        ht = meta[1 + nd + n * nd + 2 + n:][:n]
        count += all(ht[k] if s == fused.TABLE else bs[k] == s and not ht[k]
                     for k, s in enumerate(layout))
    return count


@pytest.mark.parametrize("text, shapes", [
    # a broadcast scalar, a row vector, a column (broadcast along the rows' axis), rows
    # of 13 entries (one full vector and a partial one at 8 lanes), a sum along the rows
    # (the row's sum in a register) and along the columns (accumulated entry by entry)
    ("E = exp(x) * y + sin(z) * x - w\nS1 = sum(E, axis=1)\nS0 = sum(tanh(E) * x, axis=0)",
     {"x": (6, 13), "y": (), "z": (13,), "w": (6, 1)}),
    ("E = tanh(x * y) + z\nS = sum(E * x)", {"x": (40,), "y": (), "z": (40,)}),
    ("E = log(1 + x * x) * cos(y)", {"x": (3, 1, 64), "y": (1, 5, 64)}),
    # short rows (3 entries) that no array broadcasts along: the rows merge into one
    ("E = exp(x) * y - x", {"x": (7, 3), "y": (7, 3)}),
    # short rows with broadcast operands: blocks, read through tables (the gradient's
    # sums through tables: the generic loop)
    ("E = exp(x) * y + z", {"x": (40, 5), "y": (40, 1), "z": (5,)}),
])
def test_the_fixed_stride_loops_give_the_generic_loops_bits(text, shapes):
    # each kernel's fixed-stride loop (contiguous and broadcast operands, steps as constants)
    # and its generic loop (steps read at run time) are the same operations: forced apart
    # through the entry, and through the layouts a call picks (a non-contiguous or
    # transposed input runs the generic loop), the same bits; the gradient's kernels too
    for primal, c in ((True, cg.parse(text, shapes=shapes, outputs=None)),
                      (False, cg.grad(cg.parse(text.rsplit("\n", 1)[0] + "\nL = sum(E * E)",
                                               shapes=shapes)))):
        f = to_fused(c, min_entries=0)
        assert f.groups >= 1
        generic = _generic_twin(f)
        rng = np.random.default_rng(7)
        for batch in ((), (3,)):
            values = {k: rng.normal(size=batch + s) for k, s in shapes.items()}
            got = _outs(f, values, len(c.outputs) == 1)
            for g, w in zip(got, _outs(generic, values, len(c.outputs) == 1)):
                assert same_bits(g, w)
            # every input a view with steps of 2 (its entries spread out) or reversed
            for strided in ({k: np.repeat(v, 2, axis=-1)[..., ::2] if v.ndim else v
                             for k, v in values.items()},
                            {k: v[..., ::-1].copy()[..., ::-1] if v.ndim else v
                             for k, v in values.items()}):
                for g, w in zip(got, _outs(f, strided, len(c.outputs) == 1)):
                    assert same_bits(g, w)
        if primal:  # (a gradient's sums along short rows run in blocks: the generic loop)
            assert _fixed_calls(f) >= 1  # the contiguous calls ran a fixed-stride loop
            assert _fixed_calls(generic) >= 1  # (its plans chose it; the entry overrode them)


def _table_flags(f, flag: int) -> int:
    """How many arrays of the plans ``f``'s calls made have table flag ``flag`` (HOISTED:
    gathered once, cg_hoist; WINDOWED: read by windows, CG_WINDOW)."""
    count = 0
    for key, (meta, _) in f._namespace["_run"].keywords["plans"].items():
        n_in, n = len(key[3:]) // 2, len(key[2])
        nd = int(meta[0])
        ht = meta[1 + nd + (n_in + n) * nd + 2 + (n_in + n):][:n_in + n]
        count += int(sum(h == flag for h in ht))
    return count


def test_operands_gathered_once_or_by_windows_give_the_bits_of_gathers(monkeypatch):
    # an operand read through its table that every block reads alike (a parameter of
    # (1, K, d) over the points' rows of d < 8) is gathered once per call and then read by
    # vector loads; one whose 8 lanes' offsets lie within 8 entries (x of (n, 1, d)) by a
    # masked load of that window and a permutation; a sum whose places in a vector lie
    # within 8 entries is added into that window by rounds (each place's terms in lane
    # order; the window not loaded where no other vector adds to it, its zeros taken as
    # +0.0): the same values and sums, so the same bits as a gather and an addition per
    # lane, in both loops (the generic twin), in a batch, with strided inputs (a window of
    # entries 2 apart) and reversed ones (a gather: offsets going down)
    from circuitgrad.lower import fused
    for c, at in (_gmm_gradient(2, 5), _gmm_gradient(3, 4),
                  (cg.grad(cg.parse("E = exp(x - m) * y\nL = sum(E * E)",
                                    shapes={"x": (40, 1, 3), "m": (1, 6, 3), "y": (6, 1)})),
                   None)):
        f = to_fused(c, min_entries=0)
        generic = _generic_twin(f)
        rng = np.random.default_rng(11)
        shapes = dict(zip(f.inputs, (c.shape(i) for i in c.input_ids)))
        values = at or {k: rng.normal(size=s) for k, s in shapes.items()}
        batched = {k: np.stack([v, v * 0.5 + 0.25]) for k, v in values.items()}
        strided = {k: np.repeat(v, 2, axis=-1)[..., ::2] for k, v in values.items()}
        backwards = {k: v[::-1] for k, v in values.items()}
        if at is not None:  # every kernel of the GMM gradient runs its fixed loop (its sums
            # through tables, the ones broadcast from a number too)
            default = to_fused(c)
            default(**values)
            assert _fixed_calls(default) == len(
                default._namespace["_run"].keywords["plans"]) == 6
        runs = {}
        fresh = fused._fresh_places
        for hoist, windows, loaded in ((True, True, False), (True, True, True),
                                       (False, True, False), (True, False, False),
                                       (False, False, False)):
            monkeypatch.setattr(fused, "HOIST", hoist)
            monkeypatch.setattr(fused, "WINDOWS", windows)
            # (loaded: every sum's window loaded, none taken for the zeros it starts from)
            monkeypatch.setattr(fused, "_fresh_places", (lambda *a: False) if loaded else fresh)
            for g in (f, generic):
                g._namespace["_run"].keywords["plans"].clear()
            runs[hoist, windows, loaded] = [list(_outs(g, v, False)) for g in (f, generic)
                                            for v in (values, batched, strided, backwards)]
            assert (_table_flags(f, fused.HOISTED) >= 1) == hoist
            assert (_table_flags(f, fused.WINDOWED) >= 1) == windows
            if at is not None:  # (the GMM gradient's sum along rows of 2: by windows)
                assert (_table_flags(f, fused.WSUMMED) >= 1) == windows
        for key in runs:
            for a, b in zip(runs[key], runs[False, False, False]):
                assert all(same_bits(x, y) for x, y in zip(a, b))
        plain = cg.to_numpy(c)(**values)
        assert all(close(x, y) for x, y in zip(runs[True, True, False][0], plain))
        for k in range(2):
            alone = _outs(f, {n: v[k] for n, v in batched.items()}, False)
            assert all(same_bits(x[k], y) for x, y in zip(runs[True, True, False][1], alone))


def test_a_sum_windows_mask_is_its_places_not_their_span():
    """A vector whose places have a gap (0 and 2): the window's mask covers 0 and 2 only, so
    the entry between is neither loaded nor stored (with FRESH it was set to +0.0)."""
    from circuitgrad.lower.fused import WSUM_LONGS, _fresh_places, _sum_windows
    v = _sum_windows(np.array([0, 2, 0, 2]))
    assert v.size == WSUM_LONGS and v[0] == 0 and v[1] == 0b101 and v[2] == 2
    assert _sum_windows(np.array([0, 0, 1, 1]))[1] == 0b11
    # fresh: no place counted by two vectors or blocks (rows of 2 summed) -- or it is
    assert _fresh_places([3], [4], np.array([0, 0, 1, 1, 2, 2, 3, 3]))
    assert not _fresh_places([3], [1], np.array([0, 0, 1, 1, 2, 2, 3, 3]))
    assert not _fresh_places([2], [0], np.array([0, 1]))
