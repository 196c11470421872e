"""``cg.jacobian_function``: the dense Jacobian as one sweep circuit called on a batch of seeds,
against ``cg.jacobian``'s circuit of one sweep per entry (issue 29)."""

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import tensor_circuits

import circuitgrad as cg
from circuitgrad.transforms.jacobian import jacobian_sweep
from tolerances import COMPILED_RTOL, FD_ERROR

# elementwise programs: the seeds' 1.0 and 0.0 give the one-hot circuits' values bit for bit
ELEMENTWISE = {
    "scalars": ("f = x*y + exp(x)\ng = x / y\nh = sin(x)", {}),
    "tensors": ("f = sin(x) * y + x * x\ng = tanh(A) * x\nh = exp(y) * 2", {"x": (3,), "A": (2, 3)}),
}
# with products and reductions, whose sums may run in another order in a batch
REDUCING = {
    "mixed": ("f = tanh(W @ x) * y\ng = sum(x * x) + y\nh = x[0] * W", {"x": (3,), "W": (2, 3)}),
    "matrix": ("F = A @ A + s\nt = sum(A, axis=0) * s", {"A": (2, 2)}),
}
PROGRAMS = {**ELEMENTWISE, **REDUCING}


def point(c, batch=(), seed=0):
    rng = np.random.default_rng(seed)
    return {x: rng.uniform(0.5, 1.5, batch + c.shape(i)) for x, i in zip(c.inputs, c.input_ids)}


def circuit(name):
    text, shapes = PROGRAMS[name]
    outputs = [line.split(" = ")[0] for line in text.splitlines()]
    c = cg.parse(text, shapes=shapes, outputs=outputs)
    assert len(c.outputs) == len(outputs) > 1
    return c


def same(got, want, exact, rtol=1e-12):
    assert got._fields == want._fields
    for name, g, w in zip(want._fields, got, want):
        assert np.shape(g) == np.shape(w), (name, np.shape(g), np.shape(w))
        if exact:
            np.testing.assert_array_equal(g, w, err_msg=name)
        else:
            np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol, err_msg=name)


@pytest.mark.parametrize("mode", ["reverse", "forward", "auto"])
@pytest.mark.parametrize("name", list(PROGRAMS))
def test_equals_the_jacobian_circuit_in_numpy(name, mode):
    c = circuit(name)
    jf = cg.jacobian_function(c, mode=mode, lower=cg.to_numpy)
    j = cg.jacobian(c, mode=mode)
    assert jf.mode == j.meta["mode"] and jf.outputs == j.outputs
    assert jf.seeds == j.meta["sweeps"]
    x = point(c)
    same(jf(**x), cg.to_numpy(j)(**x), exact=name in ELEMENTWISE)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
@pytest.mark.parametrize("name", ["scalars", "tensors", "mixed"])
def test_equals_the_jacobian_circuit_in_c(name, mode):
    c = circuit(name)
    jf = cg.jacobian_function(c, mode=mode)  # to_c
    assert isinstance(jf.function, cg.CFunction)
    x = point(c, (5,))
    want = cg.to_c(cg.jacobian(c, mode=mode))(**x)
    same(jf(**x), want, exact=name in ELEMENTWISE)  # the same C operations: the same bits
    same(jf(**x), cg.to_numpy(cg.jacobian(c, mode=mode))(**x), exact=False, rtol=COMPILED_RTOL)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_batches_of_points_broadcast_as_the_jacobian_circuit(mode):
    c = circuit("mixed")
    j = cg.to_numpy(cg.jacobian(c, mode=mode))
    jf = cg.jacobian_function(c, mode=mode, lower=cg.to_numpy)
    rng = np.random.default_rng(1)
    cases = [  # x, W, y: batches (4,), (2, 5) broadcast from (2, 1) and (5,), one input batched
        dict(x=rng.normal(size=(4, 3)), W=rng.normal(size=(4, 2, 3)), y=rng.normal(size=4)),
        dict(x=rng.normal(size=(2, 1, 3)), W=rng.normal(size=(2, 3)), y=rng.normal(size=5)),
        dict(x=rng.normal(size=3), W=rng.normal(size=(2, 3)), y=rng.normal(size=(3,))),
    ]
    for x in cases:
        got, want = jf(**x), j(**x)
        same(got, want, exact=False)
    assert got.df_dx.shape == (3, 2, 3) and got.dh_dW.shape == (3, 2, 3, 2, 3)
    # a point of the batch is the point alone
    one = jf(x=cases[1]["x"][1, 0], W=cases[1]["W"], y=cases[1]["y"][3])
    batch = jf(**cases[1])
    for a, b in zip(one, batch):
        np.testing.assert_array_equal(a, np.asarray(b)[1, 3])


def test_against_central_differences():
    c = circuit("mixed")
    x = point(c)
    got = cg.jacobian_function(c, wrt="x", outputs=["f", "g"], lower=cg.to_numpy)(**x)
    assert got._fields == ("f", "g", "df_dx", "dg_dx")
    f = cg.to_numpy(c)
    eps = 1e-6
    for k in range(3):
        up, down = dict(x), dict(x)
        up["x"] = x["x"] + eps * np.eye(3)[k]
        down["x"] = x["x"] - eps * np.eye(3)[k]
        for name, d in (("f", got.df_dx), ("g", got.dg_dx)):
            diff = (getattr(f(**up), name) - getattr(f(**down), name)) / (2 * eps)
            np.testing.assert_allclose(d[..., k], diff, atol=FD_ERROR)


def test_subsets_and_an_output_that_does_not_depend():
    c = cg.parse("f = x * 2\ng = y * y", shapes={"x": (2,)}, outputs=["f", "g"])
    for mode in ("reverse", "forward"):
        got = cg.jacobian_function(c, wrt="x", mode=mode, lower=cg.to_numpy)(x=[1.0, 2.0], y=3.0)
        assert got._fields == ("f", "g", "df_dx", "dg_dx")
        assert got.df_dx.tolist() == [[2.0, 0.0], [0.0, 2.0]]
        assert got.dg_dx.tolist() == [0.0, 0.0] and got.g == 9.0


def test_two_outputs_of_one_node_each_keep_their_rows():
    # f and g name the same node: the reverse sweep's seeds f_bar and g_bar add there (a seed
    # kept per node dropped f_bar, and df_dx came out 0.0)
    c = cg.parse("f = sin(x) * y\ng = f", shapes={"x": (2,)}, outputs=["f", "g"])
    assert c.output_ids[0] == c.output_ids[1]
    x, y = np.array([0.5, -1.0]), 2.0
    want = np.diag(np.cos(x) * y)
    for mode in ("reverse", "forward"):
        got = cg.jacobian_function(c, wrt="x", mode=mode, lower=cg.to_numpy)(x=x, y=y)
        np.testing.assert_allclose(got.df_dx, want, rtol=1e-15)
        np.testing.assert_allclose(got.dg_dx, want, rtol=1e-15)
    s = jacobian_sweep(c, wrt="x", mode="reverse")
    both = cg.to_numpy(s)(x=x, y=y, f_bar=[1.0, 0.0], g_bar=[0.0, 1.0]).x_bar
    np.testing.assert_allclose(both, np.cos(x) * y, rtol=1e-15)


def test_other_lowerings_and_repr():
    c = circuit("tensors")
    x = point(c, (3,))
    want = cg.to_numpy(cg.jacobian(c))(**x)
    for lower in (cg.to_tape, functools.partial(cg.to_c, width=1)):
        same(cg.jacobian_function(c, lower=lower)(**x), want, exact=False, rtol=COMPILED_RTOL)
    assert "reverse mode" in repr(cg.jacobian_function(c, lower=cg.to_numpy))


def test_the_sweep_circuit_is_one_sweep():
    c = cg.parse("f = tanh(W @ x)", shapes={"W": (30, 30), "x": (30,)})
    s = jacobian_sweep(c, wrt="x", mode="forward")
    assert s.inputs == ("W", "x", "x_dot") and s.outputs == ("f", "f_dot")
    assert len(s) < 3 * len(c)
    assert len(cg.jacobian(c, wrt="x", mode="forward")) > 30 * len(c) / 2


def test_refusals():
    c = circuit("scalars")
    with pytest.raises(cg.CircuitError, match="mode"):
        cg.jacobian_function(c, mode="sideways", lower=cg.to_numpy)
    with pytest.raises(cg.CircuitError):
        cg.jacobian_function(c, wrt="z", lower=cg.to_numpy)
    jf = cg.jacobian_function(c, lower=cg.to_numpy)
    with pytest.raises(TypeError, match="missing"):
        jf(x=1.0)
    with pytest.raises(cg.ShapeError):
        jf(x=np.ones(3), y=np.ones(2))


def test_arrays_of_other_libraries_are_checked_as_numpy_arrays():
    # converted to NumPy first, then checked as NumPy arrays are: a torch int64 entry beyond
    # 2**53 was rounded silently, and a tensor that requires grad gave torch's RuntimeError
    torch = pytest.importorskip("torch")
    jf = cg.jacobian_function("f = x * y", lower=cg.to_numpy)
    out = jf(x=torch.tensor([2.0, 0.5]), y=3.0)
    np.testing.assert_array_equal(out.f, [6.0, 1.5])
    np.testing.assert_array_equal(out.df_dy, [2.0, 0.5])
    with pytest.raises(cg.CircuitError, match="'x'.*int64.*2\\*\\*53"):
        jf(x=torch.tensor(2**53 + 1, dtype=torch.int64), y=1.0)
    with pytest.raises(cg.CircuitError, match="jacobian_function: input 'x' is a Tensor"):
        jf(x=torch.tensor(2.0, requires_grad=True), y=1.0)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tensor_circuits(max_ops=6), st.sampled_from(["reverse", "forward"]),
       st.sampled_from([(), (2,)]))
def test_random_tensor_circuits_second_derivatives(c, mode, batch):
    # the Jacobian of the gradient circuit: several tensor outputs by several tensor inputs
    g = cg.grad(c)
    x = point(g, batch, seed=3)
    with np.errstate(all="ignore"):
        want = cg.to_numpy(cg.jacobian(g, mode=mode))(**x)
        got = cg.jacobian_function(g, mode=mode, lower=cg.to_numpy)(**x)
    assert got._fields == want._fields
    for name, a, b in zip(want._fields, got, want):
        assert np.shape(a) == np.shape(b), name
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, err_msg=name)


# -- seed products: N >= SEED_PRODUCTS_AT seeds, a matrix times all of one point's seeds ----------

import circuitgrad.lower.jacobians as jacobians_module  # noqa: E402
from circuitgrad.lower.jacobians import SEED_PRODUCTS_AT  # noqa: E402


@pytest.fixture
def gemm(monkeypatch):
    """Every dense product of the seeds as a gemm (by default only from 2**24 multiply-adds:
    these tests' products are smaller)."""
    monkeypatch.setattr(jacobians_module, "SEED_GEMM_AT", 0)

U = 2.0**-53  # the unit roundoff of float64


def two_layers(n, m, k=40):
    """f = tanh(W2 @ tanh(W1 @ x)): the first product meets one-nonzero seed vectors (exact),
    the second a dense one (a gemm, within a sum's bound)."""
    c = cg.parse("f = tanh(W2 @ tanh(W1 @ x))", shapes={"W1": (k, n), "W2": (m, k), "x": (n,)})
    rng = np.random.default_rng(n * 31 + m)
    return c, dict(W1=rng.normal(size=(k, n)) / np.sqrt(n), W2=rng.normal(size=(m, k)) / np.sqrt(k),
                   x=rng.uniform(-1, 1, n))


def sum_bound(x, W1, W2):
    """The bound on the entries of df/dx computed with the second product's sum in any two
    orders: 2 γ_k (|W2| |diag(1 - h²) W1|), γ_k = k u / (1 - k u), times |1 - f²| ≤ 1."""
    h = np.tanh(W1 @ x)
    k = W1.shape[0]
    gamma = k * U / (1 - k * U)
    return 2 * gamma * (np.abs(W2) @ np.abs((1 - h**2)[:, None] * W1)) + 1e-300


@pytest.mark.parametrize("mode, n, m", [("forward", 70, 30), ("reverse", 30, 70)])
def test_seed_products_agree_with_the_one_hot_circuit_within_a_sums_bound(mode, n, m, gemm):
    c, x = two_layers(n, m)
    jf = cg.jacobian_function(c, wrt="x", mode=mode, lower=cg.to_numpy)
    assert jf.seeds == 70 >= SEED_PRODUCTS_AT and jf.seed_products
    got = jf(**x).df_dx
    want = cg.to_numpy(cg.jacobian(c, wrt="x", mode=mode))(**x).df_dx
    assert got.shape == want.shape == (m, n)
    assert np.all(np.abs(got - want) <= sum_bound(**x))
    assert np.any(got != want)  # the gemm sums in another order than the circuit's gemvs
    # and the numbers are the derivative: central differences
    f, eps = cg.to_numpy(c), 1e-6
    for j in range(0, n, 7):
        up, down = dict(x), dict(x)
        up["x"], down["x"] = x["x"] + eps * np.eye(n)[j], x["x"] - eps * np.eye(n)[j]
        np.testing.assert_allclose(got[:, j], (f(**up) - f(**down)) / (2 * eps), atol=FD_ERROR)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_seed_products_of_one_nonzero_per_seed_are_the_one_hot_circuits_bits(mode):
    # tanh(W sin x): the only product meets the identity's rows times cos(x) (forward) or
    # times 1 - f² (reverse): A's columns scaled, exactly the one-term sums of the circuit
    n = 80
    W = np.random.default_rng(2).normal(size=(n, n))
    c = cg.trace(lambda v: np.tanh(W @ np.sin(v)), shapes={"v": (n,)})
    x = np.random.default_rng(3).uniform(-1, 1, n)
    jf = cg.jacobian_function(c, mode=mode, lower=cg.to_numpy)
    assert jf.seed_products
    np.testing.assert_array_equal(jf(x).df_dv, cg.to_numpy(cg.jacobian(c, mode=mode))(x).df_dv)


@pytest.mark.parametrize("mode, n, m", [("forward", 70, 30), ("reverse", 30, 70)])
@pytest.mark.parametrize("products", ["gemm", "gemv"])
def test_seed_products_a_point_of_a_batch_is_the_point_alone(mode, n, m, products, monkeypatch):
    if products == "gemm":
        monkeypatch.setattr(jacobians_module, "SEED_GEMM_AT", 0)
    c, x = two_layers(n, m)
    jf = cg.jacobian_function(c, wrt="x", mode=mode)  # to_c: fused above its size limit
    assert jf.seed_products
    rng = np.random.default_rng(5)
    batch = dict(W1=x["W1"] + rng.normal(size=(2, 1) + x["W1"].shape) * 0.1, W2=x["W2"],
                 x=rng.uniform(-1, 1, (3, n)))
    got = jf(**batch)
    assert got.df_dx.shape == (2, 3, m, n) and got.f.shape == (2, 3, m)
    for p in np.ndindex(2, 3):
        one = jf(W1=batch["W1"][p[0], 0], W2=x["W2"], x=batch["x"][p[1]])
        for a, b in zip(one, got):
            np.testing.assert_array_equal(a, b[p])
    want = cg.to_numpy(cg.jacobian(c, wrt="x", mode=mode))(**batch)
    same(got, want, exact=False, rtol=1e-12)
    # an empty batch: the batched call, the shapes of the Jacobian circuit's
    empty = jf(W1=x["W1"], W2=x["W2"], x=np.zeros((0, n)))
    assert empty.df_dx.shape == (0, m, n)


def test_seed_products_an_infinite_matrix_entry_sums_as_the_circuit_does(gemm):
    # 0 · inf = NaN in every sum over inf's column: A's columns scaled would not see it, so an
    # A that is not finite takes the gemm, and the NaNs are where the one-hot circuit has them
    n = 64
    c = cg.parse("f = W @ sin(x)", shapes={"W": (3, n), "x": (n,)})
    W = np.ones((3, n))
    W[1, 5] = np.inf
    x = np.full(n, 0.5)
    jf = cg.jacobian_function(c, wrt="x", mode="forward", lower=cg.to_numpy)
    assert jf.seed_products
    with np.errstate(invalid="ignore"):
        got = jf(W=W, x=x).df_dx
        want = cg.to_numpy(cg.jacobian(c, wrt="x", mode="forward"))(W=W, x=x).df_dx
    assert np.isnan(got[1]).sum() == n - 1 and got[1, 5] == np.inf
    np.testing.assert_array_equal(got, want)


def test_seed_products_only_where_they_apply():
    small, _ = two_layers(SEED_PRODUCTS_AT - 1, 3)
    assert not cg.jacobian_function(small, wrt="x", mode="forward",
                                    lower=cg.to_numpy).seed_products  # too few seeds
    big, x = two_layers(70, 30)
    assert not cg.jacobian_function(big, wrt="x", mode="forward",
                                    lower=cg.to_tape).seed_products  # not NumPy's code
    elementwise = cg.parse("f = sin(x) * x", shapes={"x": (70,)})
    assert not cg.jacobian_function(elementwise, lower=cg.to_numpy).seed_products  # no product


def test_seed_products_leave_the_lowered_sweep_as_it_was(gemm):
    # jf.function is the sweep lowered: called on a batch of a user's points it must keep
    # "a point of a batch is the point alone" (its own gemvs), whatever jf calls inside
    c, x = two_layers(70, 30)
    jf = cg.jacobian_function(c, wrt="x", mode="forward", lower=cg.to_numpy)
    assert jf.seed_products
    seeds = np.random.default_rng(7).normal(size=(5, 70))
    batch = jf.function(W1=x["W1"], W2=x["W2"], x=x["x"], x_dot=seeds)
    for k in range(5):
        one = jf.function(W1=x["W1"], W2=x["W2"], x=x["x"], x_dot=seeds[k])
        np.testing.assert_array_equal(batch.f_dot[k], one.f_dot)
