"""The dense sweep of ``cg.jacobian_function`` where every row is full (issue 29): the fused
lowering's groups under the seed axis, the results handed back without copies, and
``NumpyFunction.call_bound``, the call without binding that the sweep is called through."""

import numpy as np
import pytest

import circuitgrad as cg
from circuitgrad.errors import CircuitError
from circuitgrad.lower.fused import _seed_varying, fusion_groups
from circuitgrad.transforms.jacobian import jacobian_sweep
from tolerances import COMPILED_RTOL

N = 1000  # below to_fused's MIN_ENTRIES per point: only the N seeds make a kernel worth it


def full_rows(n=N):
    """tanh(x sin(Σx) + cos x · exp(−x²)): diagonal plus rank one, no coloring compresses it."""
    return cg.parse("f = tanh(x * sin(sum(x)) + cos(x) * exp(-x * x))", shapes={"x": (n,)})


def at(n=N, batch=(), seed=0):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, batch + (n,))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_a_sweeps_seed_values_and_point_values_are_never_one_group(mode):
    sweep = jacobian_sweep(full_rows(), mode=mode)
    varying, seeds = _seed_varying(sweep)
    assert seeds == N
    groups, _ = fusion_groups(sweep)
    assert groups, "the seed-varying chain is a kernel: N seeds x 1000 entries per call"
    for group in groups:  # the point's tanh, exp and cos are not computed N times over
        assert len({varying[i] for i in group.members}) == 1, group
    assert any(varying[group.members[0]] for group in groups)
    # the varying chain is one kernel (forward: from the seed to f_dot, a dozen nodes)
    assert max(len(g.members) for g in groups if varying[g.members[0]]) >= 8


def test_a_plain_circuit_has_no_seed_axis():
    c = full_rows()
    assert _seed_varying(c) == ([False] * len(c), 1)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_the_fused_sweep_gives_the_jacobians_values(mode):
    c, x = full_rows(), at()
    fused = cg.jacobian_function(c, mode=mode, lower=cg.to_fused)
    assert fused.compression is None and fused.seeds == N
    assert fused.function.groups >= 1
    got = fused(x)
    want = cg.jacobian_function(c, mode=mode, lower=cg.to_numpy)(x)
    np.testing.assert_allclose(got.df_dx, want.df_dx, rtol=COMPILED_RTOL, atol=1e-15)
    np.testing.assert_allclose(got.f, want.f, rtol=COMPILED_RTOL, atol=1e-15)
    # to_c hands this sweep to to_fused: the same kernels, the same bits
    via_c = cg.jacobian_function(c, mode=mode, lower=cg.to_c)
    assert type(via_c.function).__name__ == "FusedFunction"
    np.testing.assert_array_equal(via_c(x).df_dx, got.df_dx)
    # against the rank-one-plus-diagonal formula: J = diag(t (s + e')) + t x cos(Σx) 1ᵀ
    s, u = np.sin(x.sum()), -x * x
    e = np.cos(x) * np.exp(u)
    t = 1.0 - np.tanh(x * s + e) ** 2
    formula = np.diag(t * (s + (-np.sin(x) * np.exp(u) - 2.0 * x * e))) \
        + (t * x * np.cos(x.sum()))[:, None]
    np.testing.assert_allclose(got.df_dx, formula, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_a_point_of_a_batch_is_the_point_alone(mode):
    c, xs = full_rows(), at(batch=(2,), seed=3)
    jf = cg.jacobian_function(c, mode=mode, lower=cg.to_fused)
    both = jf(xs)
    for p in range(2):
        alone = jf(xs[p].copy())
        np.testing.assert_array_equal(both.df_dx[p], alone.df_dx)
        np.testing.assert_array_equal(both.f[p], alone.f)


@pytest.mark.parametrize("lower", [cg.to_numpy, cg.to_fused])
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_results_are_the_callers_own(mode, lower):
    """The Jacobian's blocks may be views of the sweep's results (no copy): writing into one
    changes no other result, no input and no later call."""
    c, x = full_rows(200), at(200)
    jf = cg.jacobian_function(c, mode=mode, lower=lower)
    keep = x.copy()
    first = jf(x)
    want = first.df_dx.copy()
    assert first.df_dx.flags.writeable
    first.df_dx[...] = 7.0
    first.f[...] = 7.0
    np.testing.assert_array_equal(x, keep)
    again = jf(x)
    np.testing.assert_array_equal(again.df_dx, want)
    assert not np.shares_memory(again.df_dx, first.df_dx)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_outputs_of_one_node_do_not_share_their_blocks(mode):
    c = cg.parse("f = sin(x) * x + sum(x)\ng = f", shapes={"x": (40,)}, outputs=["f", "g"])
    jf = cg.jacobian_function(c, mode=mode, lower=cg.to_numpy, compress=False)
    out = jf(at(40))
    np.testing.assert_array_equal(out.df_dx, out.dg_dx)
    assert not np.shares_memory(out.df_dx, out.dg_dx)
    out.df_dx[...] = 0.0
    assert out.dg_dx.any()


def test_several_inputs_and_outputs_cut_from_one_result():
    c = cg.parse("f = sin(x) * y + sum(x * y)\ng = exp(y) * sum(x)",
                 shapes={"x": (30,), "y": (30,)}, outputs=["f", "g"])
    want = cg.to_numpy(cg.jacobian(c))
    v = {"x": at(30, seed=1), "y": at(30, seed=2)}
    for mode in ("forward", "reverse"):
        got = cg.jacobian_function(c, mode=mode, lower=cg.to_numpy, compress=False)(**v)
        for name, g, w in zip(got._fields, got, want(**v)):
            np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-15, err_msg=(mode, name))
        blocks = [got.df_dx, got.df_dy, got.dg_dx, got.dg_dy]
        for k, a in enumerate(blocks):
            for b in blocks[k + 1:]:
                if np.shares_memory(a, b):  # views of one result: disjoint blocks
                    a_before = b.copy()
                    a[...] = -1.0
                    np.testing.assert_array_equal(b, a_before)


# -- NumpyFunction.call_bound ---------------------------------------------------------------

def test_call_bound_gives_the_calls_values_without_the_broadcast():
    c = cg.parse("f = x * y\ng = y + 1\nh = sum(x)", shapes={"x": (3,)}, outputs=["f", "g", "h"])
    for lower in (cg.to_numpy, cg.to_fused):
        fn = lower(c)
        x, y = np.arange(6.0).reshape(2, 3), np.float64(2.0)
        got = fn.call_bound([x, y], (2,))
        want = fn(x, y)
        assert len(got) == 3
        for g, w in zip(got, want):
            np.testing.assert_array_equal(np.broadcast_to(g, np.shape(w)), w)
        assert np.shape(got[1]) == ()  # y + 1 does not vary along the batch: not broadcast


def test_call_bound_checks_the_guards():
    fn = cg.to_numpy(cg.trace(lambda x: x * 2.0 if x > 1.0 else -x, at=3.0))
    assert fn.call_bound([np.float64(4.0)]) == (8.0,)
    with pytest.raises(CircuitError, match="guard"):
        fn.call_bound([np.float64(0.5)])


def test_call_bound_names_an_output_of_the_wrong_shape_an_internal_error():
    fn = cg.to_numpy(cg.parse("f = x * 2", shapes={"x": (3,)}))
    fn._run = lambda x: np.zeros(4)  # (an internal bug: an output of another shape)
    with pytest.raises(CircuitError, match="internal error"):
        fn.call_bound([np.zeros(3)])


# -- the identity's rows as a strided view ---------------------------------------------------

def test_the_identity_view_is_the_identity():
    from circuitgrad.lower.jacobians import identity_view
    for n in (1, 2, 9, 1000):
        view = identity_view(n)
        np.testing.assert_array_equal(view, np.eye(n))
        assert not view.flags.writeable
        low, high = np.lib.array_utils.byte_bounds(view)
        assert high - low == (2 * n - 1) * 8  # (the 16 kB at n = 1000, not 8 MB)


PROGRAMS = {  # elementwise readers of the seeds, sums of them, and a product after them
    "full rows": ("f = tanh(x * sin(sum(x)) + cos(x) * exp(-x * x))", {"x": (64,)}, None),
    "two inputs": ("f = sin(x) * y + sum(x * y) * x\ng = exp(y) * sum(x)",
                   {"x": (16,), "y": (16,)}, None),
    "matrix": ("F = sin(A) * sum(A, axis=0) + A\nt = sum(A * A)", {"A": (8, 12)}, None),
    "product": ("f = W @ tanh(x) + x * sum(x)", {"x": (80,), "W": (80, 80)}, "x"),
}
# the sweeps whose seeds are the identity view (the others: test_..._keeps_the_identity_matrix)
VIEWED = [("full rows", "forward"), ("full rows", "reverse"), ("two inputs", "forward"),
          ("two inputs", "reverse"), ("matrix", "forward"), ("product", "forward")]


def program(name):
    text, shapes, wrt = PROGRAMS[name]
    outputs = [line.split(" = ")[0] for line in text.splitlines()]
    return cg.parse(text, shapes=shapes, outputs=outputs), wrt


@pytest.mark.parametrize("lower", [cg.to_numpy, cg.to_fused])
@pytest.mark.parametrize("name, mode", VIEWED)
def test_the_identity_view_gives_the_dense_seeds_bits(name, mode, lower, monkeypatch):
    """The sweep on the identity view and on ``np.eye`` (the same function): the same bits,
    NaNs and the signs of zeros included, at a point with inf, NaN and ±0."""
    from circuitgrad.lower import jacobians

    c, wrt = program(name)
    rng = np.random.default_rng(5)
    values = {x: rng.uniform(-2.0, 2.0, c.shape(i)) for x, i in zip(c.inputs, c.input_ids)}
    special = next(iter(values))
    values[special].reshape(-1)[:4] = [np.inf, np.nan, -0.0, 0.0]
    jf = cg.jacobian_function(c, wrt, mode=mode, lower=lower, compress=False)
    assert jf._identity_view
    views = jf(**values)
    monkeypatch.setattr(jacobians, "identity_view",
                        lambda n: np.eye(n).view())  # the dense matrix, for a new function
    eye = cg.jacobian_function(c, wrt, mode=mode, lower=lower, compress=False)
    assert eye._seed_batch("dense", 0)[jf._seed_names[0]].strides[0] > 0
    assert jf._seed_batch("dense", 0)[jf._seed_names[0]].strides[0] < 0
    got = eye(**values)
    for field, a, b in zip(got._fields, views, got):
        np.testing.assert_array_equal(a, b, err_msg=field)
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b), err_msg=field)


def test_a_seed_read_by_a_product_keeps_the_identity_matrix():
    """A seed that a matrix product reads (its sums' order may depend on the strides), a seed
    of short rows (blocks of a kernel that span the seed axis) or a scalar seed, and
    another lowering than NumPy's (a copy on every call): ``np.eye``."""
    c, _ = program("product")
    assert not cg.jacobian_function(c, mode="reverse", lower=cg.to_numpy)._identity_view
    assert not cg.jacobian_function(c, mode="forward", lower=cg.to_numpy)._identity_view  # W
    matrix, _ = program("matrix")  # reverse: the scalar t's seed
    assert not cg.jacobian_function(matrix, mode="reverse", lower=cg.to_numpy,
                                    compress=False)._identity_view
    short = cg.parse("f = sin(x) * sum(x)", shapes={"x": (40, 2)})
    assert not cg.jacobian_function(short, mode="forward", lower=cg.to_numpy,
                                    compress=False)._identity_view
    small = cg.parse("f = sin(x) * sum(x)", shapes={"x": (6,)})
    assert not cg.jacobian_function(small, mode="forward", lower=cg.to_tape)._identity_view


def _bits(values):
    return [np.asarray(v, dtype=np.float64).view(np.int64).tolist() for v in values]


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("lower", [cg.to_numpy, cg.to_fused, cg.to_c, cg.to_tape],
                         ids=["to_numpy", "to_fused", "to_c", "to_tape"])
def test_the_seeds_own_values_computed_once_give_the_sweeps_bits(mode, lower, monkeypatch):
    """Σẋ over the identity's rows (1.0 each) computed once per function, not per call: the
    same bits as the sweep computing it, at a point and on a batch, in every lowering."""
    from circuitgrad.lower import jacobians

    c, n = full_rows(64), 64
    monkeypatch.setattr(jacobians, "PRECOMPUTE_SEED_VALUES", False)
    plain = cg.jacobian_function(c, mode=mode, lower=lower)
    monkeypatch.setattr(jacobians, "PRECOMPUTE_SEED_VALUES", True)
    once = cg.jacobian_function(c, mode=mode, lower=lower)
    if mode == "forward":  # Σẋ: the seeds' sum, a number per seed
        assert once.sweep.inputs[-1] == "seeded0" and "seeded0" not in plain.sweep.inputs
    for x in (at(n), at(n, batch=(3,), seed=1), np.full(n, np.inf)):
        with np.errstate(all="ignore"):
            assert _bits(once(x)) == _bits(plain(x))


def test_compressed_seeds_keep_their_sums_in_the_sweep(monkeypatch):
    """Several ones a seed: sums of the seeds alone are not exact in any order, so a
    compressed function never takes them out of its sweep."""
    from circuitgrad.lower import jacobians

    def refuse(sweep):
        raise AssertionError("seed_values_apart on compressed seeds")

    monkeypatch.setattr(jacobians, "seed_values_apart", refuse)
    jf = cg.jacobian_function(cg.parse("f = sin(x) * exp(x)", shapes={"x": (40,)}),
                              lower=cg.to_numpy)
    assert jf.compression is not None
    with pytest.raises(AssertionError, match="compressed"):
        cg.jacobian_function(full_rows(40), lower=cg.to_numpy)  # dense: it is asked


def test_seed_values_apart_leaves_a_sweep_without_them_as_it_is():
    from circuitgrad.lower.jacobians import seed_values_apart

    sweep = jacobian_sweep(cg.parse("f = sin(x) * x", shapes={"x": (3,)}), mode="forward")
    assert seed_values_apart(sweep) == (sweep, None)


def test_to_c_weighs_the_scalars_over_the_seeds(monkeypatch):
    """The default lowering (to_c) of a sweep: scalar code for few seeds, to_fused's loops where
    N seeds × the sweep's scalars pass SEED_WORK_LIMIT (scalar code would compute the point's
    tanh, exp and cos once per seed); a partial with fused= decides for itself."""
    import functools

    from circuitgrad.lower import c as lower_c

    small, large = cg.jacobian_function(full_rows(5)), cg.jacobian_function(full_rows(100))
    assert isinstance(small.function, cg.CFunction)
    assert type(large.function).__name__ == "FusedFunction"
    assert "FusedFunction" in repr(large)
    forced = cg.jacobian_function(full_rows(100), lower=functools.partial(cg.to_c, fused=False))
    assert isinstance(forced.function, cg.CFunction)
    x = at(100)
    assert _bits(large(x)) == _bits(cg.jacobian_function(full_rows(100), lower=cg.to_fused)(x))
    for a, b in zip(large(x), forced(x)):
        np.testing.assert_allclose(a, b, rtol=COMPILED_RTOL, atol=1e-15)
    monkeypatch.setattr(lower_c, "SEED_WORK_LIMIT", 10**9)
    assert isinstance(cg.jacobian_function(full_rows(100)).function, cg.CFunction)


@pytest.mark.parametrize("lower", [cg.to_numpy, cg.to_c], ids=["to_numpy", "to_c"])
def test_a_traced_branch_keeps_its_guards_with_the_seeds_values_apart(lower):
    """The sweep with its seeds' values as inputs is still the traced branch's: where its
    guard fails the call is refused, not the branch's numbers given."""
    def f(x):
        s = np.sum(x)
        if s > 0.0:
            return np.tanh(x * np.sin(s))
        return np.cos(x) * s

    x0 = np.linspace(0.1, 1.0, 50)
    jf = cg.jacobian_function(cg.trace(f, at=x0), mode="forward", lower=lower)
    assert "seeded0" in jf.sweep.inputs and "guards" in jf.sweep.meta
    assert np.allclose(jf(x0)[0], f(x0))
    with pytest.raises(CircuitError):
        jf(-x0)
