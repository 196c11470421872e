"""``cg.jacobian_function`` with compressed seeds: one seed per color of the sparsity pattern's
coloring and a zero seed, against the N seeds of the identity (``compress=False``) bit for
bit, and against ``cg.jacobian``'s circuit (issue 29)."""

import contextlib
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from specs import SPECS
from strategies import tensor_circuits, tensor_programs

import circuitgrad as cg
import circuitgrad.lower.jacobians as jacobians_module
from circuitgrad.builder import Builder
from circuitgrad.lower.jacobians import COMPRESS_FROM, seed_compression
from circuitgrad.primitives import PRIMITIVES
from circuitgrad.transforms.sparsity import bounded_jacobian_sparsity
from tolerances import COMPILED_RTOL

SPECIAL = (np.inf, -np.inf, np.nan, 0.0, -0.0, 1e308)


def same_bits(got, want, signs=True):
    """The same values, NaN where NaN, and (``signs``) the same signs, of zeros and NaNs too."""
    assert got._fields == want._fields
    for name, g, w in zip(want._fields, got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, (name, g.shape, w.shape)
        np.testing.assert_array_equal(g, w, err_msg=name)  # (NaN == NaN here)
        if signs:
            np.testing.assert_array_equal(np.signbit(g), np.signbit(w), err_msg=name)


SUMS = frozenset(op for op, prim in PRIMITIVES.items() if prim.sparsity in (
    "reduction", "normalization", "cumsum", "sum_to", "scatter_add", "put_add", "matmul",
    "einsum"))


def summed_zeros_keep_signs(jf):
    """Whether the sweep's zeros have the same sign whatever the seed's place in the batch:
    not where a sum makes them (a matrix product's BLAS kernel, a reduction's SIMD loop,
    differ between batch rows: ``t0 @ cos(t0)``'s and the Hessian of ``sum(norm(t0, -2))``'s
    dense sweeps themselves give −0.0 at some seeds of an unread input and +0.0 at others,
    on the same values)."""
    return not any(jf.sweep.op(i) in SUMS for i in range(len(jf.sweep)))


def pair(c, mode, lower=cg.to_numpy):
    """(compressed, dense) Jacobian functions of ``c``."""
    return (cg.jacobian_function(c, mode=mode, lower=lower),
            cg.jacobian_function(c, mode=mode, lower=lower, compress=False))


def without_safeguard(jf, values):
    """The compressed sweep's results at one point as they are, also where a value is inf or
    NaN (where ``jf`` itself sweeps the point's N seeds instead)."""
    args = [np.asarray(values[name], dtype=float) for name in jf._inputs]
    got = jf._sweep_on("compressed", jf._sweep_call, args, ())
    return jf._compressed_results_of(got, ())[0]


@contextlib.contextmanager
def small_n_compressed():
    """Compressed seeds from N = 1 (by default from 16: the hypothesis programs are small)."""
    old = jacobians_module.COMPRESS_FROM
    jacobians_module.COMPRESS_FROM = 1
    try:
        yield
    finally:
        jacobians_module.COMPRESS_FROM = old


N = 200
ELEMENTWISE = "f = sin(x) * exp(x)"


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_an_elementwise_map_takes_two_seeds_not_n(mode):
    c = cg.parse(ELEMENTWISE, shapes={"x": (N,)})
    jf, dense = pair(c, mode)
    assert jf.compression.count == 1 and jf.seeds == 2 and jf.dense_seeds == N
    assert dense.compression is None and dense.seeds == N
    assert "2 compressed seeds of 200" in repr(jf)
    x = np.random.default_rng(0).uniform(-2, 2, N)
    got = jf(x)
    same_bits(got, dense(x))
    same_bits(got, cg.to_numpy(cg.jacobian(c, mode=mode))(x))  # the one-hot circuit's too
    np.testing.assert_array_equal(got.df_dx, np.diag(np.cos(x) * np.exp(x) + np.sin(x) * np.exp(x)))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_several_inputs_and_outputs_a_band_and_a_dense_column(mode):
    # f: a band of x; g: y times x (its column of y is full); h: y alone; a block on A
    text = "f = x[1:] * x[:-1] - cos(x[1:])\ng = y * x\nh = exp(y) * 2\nF = tanh(A) * x"
    c = cg.parse(text, shapes={"x": (30,), "A": (4, 30)}, outputs=["f", "g", "h", "F"])
    jf, dense = pair(c, mode)
    assert jf.compression is not None and jf.seeds <= jf.dense_seeds / 2
    rng = np.random.default_rng(1)
    x = dict(x=rng.normal(size=30), y=0.7, A=rng.normal(size=(4, 30)))
    got = jf(**x)
    assert got._fields == ("f", "g", "h", "F", "df_dx", "df_dy", "df_dA", "dg_dx", "dg_dy",
                           "dg_dA", "dh_dx", "dh_dy", "dh_dA", "dF_dx", "dF_dy", "dF_dA")
    same_bits(got, dense(**x))
    want = cg.to_numpy(cg.jacobian(c, mode=mode))(**x)
    for name, a, b in zip(want._fields, got, want):
        np.testing.assert_allclose(a, b, rtol=1e-15, atol=0, err_msg=name)
    # and in C (to_c: its scalar code, or fused), the same bits as C's dense sweep
    jc, dc = pair(c, mode, cg.to_c)
    assert jc.compression is not None
    same_bits(jc(**x), dc(**x))
    for a, b in zip(jc(**x), want):
        np.testing.assert_allclose(a, b, rtol=COMPILED_RTOL, atol=1e-15)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_dense_structure_keeps_the_n_seeds(mode):
    text = "f = tanh(W @ sin(x))"
    c = cg.parse(text, shapes={"W": (40, 40), "x": (40,)})
    jf = cg.jacobian_function(c, wrt="x", mode=mode, lower=cg.to_numpy)
    assert jf.compression is None and jf.seeds == jf.dense_seeds == 40
    full = cg.parse("f = sum(x) * x", shapes={"x": (40,)})  # every row and column full
    assert cg.jacobian_function(full, mode=mode, lower=cg.to_numpy).compression is None
    few = cg.parse(ELEMENTWISE, shapes={"x": (COMPRESS_FROM - 1,)})
    assert cg.jacobian_function(few, mode=mode, lower=cg.to_numpy).compression is None


def test_a_dense_pattern_gives_up_before_the_product_is_sorted():
    c = cg.parse("f = tanh(W @ x)", shapes={"W": (300, 300), "x": (300,)})
    assert bounded_jacobian_sparsity(c, ["x"], ["f"], limit=300 * 300 // 2) is None
    assert bounded_jacobian_sparsity(c, ["x"], ["f"], limit=300 * 300).nnz == 300 * 300
    assert seed_compression(c, ["x"], ["f"], "forward") is None
    # the limit is only checked while the pattern is made: an unbounded call is unaffected
    assert cg.jacobian_sparsity(c, wrt="x").nnz == 300 * 300


def test_the_coloring_is_kept_on_the_function():
    c = cg.parse("f = x[1:] * x[:-1]", shapes={"x": (50,)})
    jf = cg.jacobian_function(c, mode="forward", lower=cg.to_numpy)
    comp = jf.compression
    assert comp.count == 2 and comp.seeds.shape == (3, 50) and not comp.seeds[-1].any()
    assert comp.pattern.nnz == 98 and 0 < comp.seconds < 1
    assert np.array_equal(comp.seeds[:-1].sum(axis=0), np.ones(50))  # each column once
    with pytest.raises(ValueError):
        comp.seeds[0, 0] = 2.0  # read-only
    x = np.linspace(-1, 1, 50)
    jf(x), jf(x)
    assert jf.compression is comp


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_signed_zeros_off_the_pattern_are_the_dense_sweeps(mode):
    # f = -2 x: the dense sweep's entries off the diagonal are -0.0 (−2 · 0), the zero seed's
    c = cg.parse("f = -2 * x", shapes={"x": (20,)})
    jf, dense = pair(c, mode)
    assert jf.compression is not None
    got = jf(np.ones(20))
    assert np.signbit(got.df_dx[0, 1]) and got.df_dx[0, 1] == 0.0
    same_bits(got, dense(np.ones(20)))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_infinities_and_nans_give_the_dense_sweeps_nans(mode):
    # sin(x) exp(x) at x = inf: ∂f/∂x = NaN there, and the dense sweep's 0 · NaN fills that
    # row (forward) or column (reverse) with NaN, as JAX's jacfwd and jacrev and the one-hot
    # circuit do; the sparse Jacobian (the nonzeros only) has the NaN on the diagonal alone
    c = cg.parse(ELEMENTWISE, shapes={"x": (20,)})
    jf, dense = pair(c, mode)
    x = np.linspace(-1, 1, 20)
    x[3], x[7], x[11] = np.inf, np.nan, -np.inf
    with np.errstate(all="ignore"):
        got = jf(x)
        same_bits(got, dense(x))
        same_bits(without_safeguard(jf, {"x": x}), dense(x))  # the zero seed alone too
        same_bits(got, cg.to_numpy(cg.jacobian(c, mode=mode))(x))
        sparse = cg.to_numpy(cg.jacobian(c, mode=mode, sparse=True))(x).jacobian.toarray()
    for k in (3, 7, 11):  # (sin(±inf) is NaN)
        assert np.isnan(got.df_dx[k] if mode == "forward" else got.df_dx[:, k]).all()
        assert np.isnan(sparse[k, k]) and not np.isnan(np.delete(sparse[k], k)).any()
    finite = np.delete(np.delete(got.df_dx, [3, 7, 11], 0), [3, 7, 11], 1)
    assert np.isfinite(finite).all() and np.count_nonzero(finite) == 17


def test_a_point_with_nan_is_swept_densely_and_the_batch_is_its_points(monkeypatch):
    c = cg.parse("f = x[1:] * x[:-1] + exp(x[1:])", shapes={"x": (30,)})
    jf, dense = pair(c, "forward")
    assert jf.compression is not None
    points = np.random.default_rng(2).normal(size=(2, 3, 30))
    points[0, 1, 4] = np.nan
    points[1, 2, 0] = np.inf
    swept = []
    original = jf._dense
    monkeypatch.setattr(jf, "_dense", lambda v, b: swept.append(b) or original(v, b))
    with np.errstate(all="ignore"):
        got = jf(points)
        assert swept == [(2,)]  # the two points, in one dense call (each as alone: below)
        same_bits(got, dense(points))
        for p in np.ndindex(2, 3):
            alone = jf(points[p])
            for a, b in zip(alone, got):
                np.testing.assert_array_equal(a, b[p])
                np.testing.assert_array_equal(np.signbit(a), np.signbit(b[p]))
    assert got.df_dx.shape == (2, 3, 29, 30)
    assert jf(np.zeros((0, 30))).df_dx.shape == (0, 29, 30)


def test_batches_broadcast_as_the_dense_sweep():
    c = cg.parse("f = tanh(A) * x\ng = sin(x) * y", shapes={"x": (20,), "A": (3, 20)},
                 outputs=["f", "g"])
    for mode in ("forward", "reverse"):
        jf, dense = pair(c, mode)
        assert jf.compression is not None
        rng = np.random.default_rng(3)
        x = dict(x=rng.normal(size=(2, 1, 20)), A=rng.normal(size=(3, 20)), y=rng.normal(size=4))
        same_bits(jf(**x), dense(**x))


# -- every elementwise primitive: the compressed sweep is the dense one at special points ------

def _elementwise_circuits():
    cases = []
    for op, prim in PRIMITIVES.items():
        if prim.shape is not None or op not in SPECS:
            continue
        samples = [np.asarray(a, dtype=float) for a in SPECS[op].samples]
        if any(a.ndim > 1 for a in samples):
            continue
        cases.append(op)
    return cases


@pytest.mark.parametrize("op", _elementwise_circuits())
def test_every_elementwise_primitive_at_infinities_nans_and_zeros(op):
    spec = SPECS[op]
    samples = [np.asarray(a, dtype=float) for a in spec.samples]
    n = max(max(a.size for a in samples), COMPRESS_FROM)
    args = [np.resize(a, n) for a in samples]
    b = Builder()
    xs = [b.input(f"x{k}", (n,)) for k in range(len(args))]
    c = b.finish([("f", b.apply_id(op, tuple(x.id for x in xs), spec.params or None))],
                 inputs=[f"x{k}" for k in range(len(args))])
    for mode in ("forward", "reverse"):
        jf, dense = pair(c, mode)
        assert jf.compression is not None and jf.compression.count <= len(args), op
        for trial in range(4):
            values = [a.copy() for a in args]
            for k, v in enumerate(values[:] if trial else []):
                v[(3 * trial + k) % n] = SPECIAL[(trial + k) % 6]
                v[(7 * trial + 2 * k + 1) % n] = SPECIAL[(trial + k + 2) % 6]
            point = {f"x{k}": v for k, v in enumerate(values)}
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                want = dense(**point)
                same_bits(jf(**point), want)
                same_bits(without_safeguard(jf, point), want)


# -- random programs ------------------------------------------------------------------------------

def _with_specials(values, rng):
    for v in values.values():
        if np.ndim(v) and rng.random() < 0.7:
            v.reshape(-1)[rng.integers(v.size)] = SPECIAL[rng.integers(len(SPECIAL))]
    return values


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tensor_programs(max_ops=6), st.sampled_from(["forward", "reverse"]),
       st.integers(0, 2**32 - 1), st.booleans(), st.booleans())
def test_random_programs_compressed_equal_dense_bit_for_bit(program, mode, seed, hessian,
                                                            special):
    # every line an output (a Jacobian of several tensor outputs, sparse where the lines are
    # elementwise or index), or the gradient of their sum (a Hessian's structure)
    text, shapes = program
    lines = text.splitlines()[:-1]
    if hessian:
        c = cg.grad(cg.parse(text, shapes=shapes, inputs=list(shapes)))
    else:
        c = cg.parse("\n".join(lines), shapes=shapes, inputs=list(shapes),
                     outputs=[line.split(" = ")[0] for line in lines])
    with small_n_compressed():
        jf, dense = pair(c, mode)
    rng = np.random.default_rng(seed)
    point = {x: rng.uniform(-1.5, 1.5, size=s) for x, s in shapes.items()}
    if special:
        point = _with_specials(point, rng)
    signs = summed_zeros_keep_signs(jf)
    with np.errstate(all="ignore"):
        want = dense(**point)
        same_bits(jf(**point), want, signs)
        if jf.compression is not None:
            same_bits(without_safeguard(jf, point), want, signs)
        if not special:
            circuit = cg.to_numpy(cg.jacobian(c, mode=mode))(**point)
            for name, a, b in zip(want._fields, jf(**point), circuit):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, err_msg=name)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tensor_circuits(max_ops=6), st.sampled_from(["forward", "reverse"]),
       st.integers(0, 2**32 - 1), st.booleans())
def test_random_circuits_with_constants_and_einsum_in_c(c, mode, seed, special):
    g = cg.grad(c)
    with small_n_compressed():
        jf, dense = pair(g, mode, cg.to_c)
    rng = np.random.default_rng(seed)
    point = {x: rng.uniform(-1.5, 1.5, size=g.input_shapes[x]) for x in g.inputs}
    if special:
        point = _with_specials(point, rng)
    with np.errstate(all="ignore"):
        same_bits(jf(**point), dense(**point), summed_zeros_keep_signs(jf))


def test_strategies_reach_compressed_seeds():
    # the hypothesis tests above are not vacuous: small programs do get compressed seeds
    with small_n_compressed():
        c = cg.parse("v0 = sin(t0)\nv1 = t0[1:] * 2", shapes={"t0": (2, 3)},
                     outputs=["v0", "v1"])
        assert cg.jacobian_function(c, mode="forward", lower=cg.to_numpy).compression.count == 1


def test_compressed_seeds_with_seed_products():
    # by W and x forward: W's block is sparse (row i of f reads row i of W), 80 colors and
    # the zero seed of 1640 seeds; from 64 seeds the products are one matmul per point
    c = cg.parse("f = tanh(W @ x)", shapes={"W": (40, 40), "x": (40,)})
    jf, dense = pair(c, "forward")
    assert jf.seeds == 81 and jf.dense_seeds == 1640 and jf.seed_products
    rng = np.random.default_rng(4)
    point = dict(W=rng.normal(size=(40, 40)) / 7, x=rng.normal(size=40))
    got, want = jf(**point), dense(**point)
    for name, a, b in zip(want._fields, got, want):  # (products: sums in other orders)
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15, err_msg=name)
    np.testing.assert_array_equal(got.df_dW[3, 4], 0.0)  # another row of W: a structural zero
    batch = dict(W=point["W"], x=point["x"] + rng.normal(size=(2, 40)) * 0.1)
    both = jf(**batch)
    for k in range(2):
        for a, b in zip(jf(W=point["W"], x=batch["x"][k]), both):
            np.testing.assert_array_equal(a, b[k])


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_two_outputs_of_one_node_each_keep_their_entries(mode):
    # reverse: f_bar and g_bar add at the node; f's row i and g's row i share their columns,
    # so they take two colors, and each is read off its own sweep
    # (by y too, every row reads y: reverse keeps its 40 seeds, forward takes 2 colors)
    c = cg.parse("f = sin(x) * y\ng = f", shapes={"x": (20,)}, outputs=["f", "g"])
    both = cg.jacobian_function(c, mode=mode, lower=cg.to_numpy)
    assert (both.compression is None) == (mode == "reverse")
    jf = cg.jacobian_function(c, wrt="x", mode=mode, lower=cg.to_numpy)
    dense = cg.jacobian_function(c, wrt="x", mode=mode, lower=cg.to_numpy, compress=False)
    assert jf.compression.count == (2 if mode == "reverse" else 1)
    x = np.linspace(-1, 1, 20)
    got = jf(x=x, y=2.0)
    same_bits(got, dense(x=x, y=2.0))
    np.testing.assert_array_equal(got.df_dx, np.diag(np.cos(x) * 2.0))
    np.testing.assert_array_equal(got.dg_dx, got.df_dx)
    same_bits(both(x=x, y=2.0), cg.jacobian_function(c, mode=mode, lower=cg.to_numpy,
                                                      compress=False)(x=x, y=2.0))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_a_deep_stack_of_narrow_dense_layers_gives_up_in_its_first_layers(mode, monkeypatch):
    # each layer's sets (40 × 200 pairs) stay under the one-node cap (m·n / 2 = 10⁴), so only
    # the walk's total stops the pattern: before it, all 10 layers were united (a second at
    # n = 2000, h = 400, 5-8 times the function's build), to find the Jacobian dense
    import circuitgrad.transforms.sparsity as sparsity

    rng = np.random.default_rng(5)
    layers = [rng.normal(size=(40, 200))] + [rng.normal(size=(40, 40)) for _ in range(8)] + [
        rng.normal(size=(100, 40))]

    def mlp(x):
        for W in layers:
            x = np.tanh(W @ x + 0.1)
        return x

    c = cg.trace(mlp, shapes={"x": (200,)})
    rules = []
    rule = sparsity._rule
    monkeypatch.setattr(sparsity, "_rule", lambda op: rules.append(op) or rule(op))
    assert seed_compression(c, ["x"], ["f"], mode) is None
    walked = len(rules)
    rules.clear()
    assert cg.jacobian_sparsity(c, wrt="x").nnz == 100 * 200  # (dense: nothing lost)
    assert rules.count("matmul") == 10 and walked <= len(rules) / 3, (walked, len(rules))


@pytest.mark.parametrize("lower", [cg.to_numpy, cg.to_c])
def test_points_with_infinities_in_a_batch_are_one_dense_call(lower):
    # every point has an inf: the safeguard sweeps them densely, as one batch (one call per
    # point was 7x compress=False's time at n = 16); the values are the dense sweep's, each
    # point's as alone, in any batch shape
    c = cg.parse(ELEMENTWISE + "\ng = x[1:] * y", shapes={"x": (20,)}, outputs=["f", "g"])
    jf, dense = pair(c, "forward", lower)
    assert jf.compression is not None
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 3, 20))
    x[:, 1:, 4] = np.inf  # 4 of the 6 points
    y = rng.normal(size=(3,))
    with np.errstate(all="ignore"):
        got = jf(x=x, y=y)
        same_bits(got, dense(x=x, y=y))
        for p in np.ndindex(2, 3):
            same_bits(type(got)(*(r[p] for r in got)), jf(x=x[p], y=y[p[1]]))
    assert got.dg_dy.shape == (2, 3, 19) and np.isnan(got.df_dx[0, 1, 4]).all()
