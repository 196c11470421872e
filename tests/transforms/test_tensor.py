"""Tensor circuits: shapes, the notes' matrix chain rules, broadcasting adjoints, scalarize."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import circuitgrad as cg
from circuitgrad.transforms.grad import TENSOR_SIZE_FACTOR
from strategies import tensor_programs
from tolerances import FD_ERROR, NOTES_RTOL

rng = np.random.default_rng(7)


def point_for(shapes, low=-1.5, high=1.5):
    return {k: rng.uniform(low, high, size=s) for k, s in shapes.items()}


def grads(c, point, **kw):
    g = cg.grad(c, **kw)
    return dict(zip(g.outputs, cg.to_numpy(g)(**point)))


CASES = [
    ("J = sum(W @ x + b)", {"W": (3, 4), "x": (4,), "b": (3,)}),
    ("J = sum(A @ B)", {"A": (2, 3), "B": (3, 4)}),
    ("J = sum(x @ W)", {"x": (4,), "W": (4, 3)}),
    ("J = x @ y", {"x": (4,), "y": (4,)}),
    ("J = sum(relu(X @ W.T + b) ** 2)", {"X": (5, 4), "W": (3, 4), "b": (3,)}),
    ("J = sum(transpose(M) @ M)", {"M": (2, 3)}),
    ("J = mean(sigmoid(A * B), 0) @ v", {"A": (5, 1), "B": (1, 3), "v": (3,)}),
    ("J = sum(s * M) + mean(M, axis=1) @ u", {"s": (), "M": (2, 3), "u": (2,)}),
    ("J = sum(sum(M, -1) * 2) + mean(tanh(M))", {"M": (2, 3)}),
    ("J = sum(outer(a, b) * M)", {"a": (2,), "b": (3,), "M": (2, 3)}),
    ("J = sum((X + d) * (X - d))", {"X": (4, 3), "d": (3,)}),
    ("J = sum(exp(C * R) / (1 + C))", {"C": (4, 1), "R": (1, 5)}),
]


@pytest.mark.parametrize("text, shapes", CASES)
def test_tensor_gradients_against_central_differences(text, shapes):
    c = cg.parse(text, shapes=shapes)
    point = point_for(shapes, 0.2, 1.5)
    got = grads(c, point)
    for name in c.inputs:
        assert np.shape(got[f"dJ_d{name}"]) == shapes[name]
    assert cg.check_grad(c, point) < FD_ERROR
    g = cg.grad(c)
    g.validate()
    assert g.size <= TENSOR_SIZE_FACTOR * c.size


@pytest.mark.parametrize("text, shapes", CASES)
def test_scalarize_agrees(text, shapes):
    c = cg.parse(text, shapes=shapes)
    point = point_for(shapes, 0.2, 1.5)
    s = cg.scalarize(c)
    flat = {}
    for name, value in point.items():
        for index in np.ndindex(np.shape(value)):
            flat[name + "".join(f"_{i}" for i in index)] = np.asarray(value)[index]
    assert float(cg.to_numpy(s)(**flat)) == pytest.approx(float(cg.to_numpy(c)(**point)),
                                                           rel=1e-12)
    # The gradient of the scalar view equals the tensor gradient, element by element.
    tensor = grads(c, point)
    scalar = grads(s, flat)
    for name in c.inputs:
        for index in np.ndindex(shapes[name]):
            element = name + "".join(f"_{i}" for i in index)
            assert scalar[f"dJ_d{element}"] == pytest.approx(
                np.asarray(tensor[f"dJ_d{name}"])[index], rel=1e-10, abs=1e-12)


def test_matrix_chain_rules_of_the_notes():
    # z = W u + b, J = f(z): ∂J/∂W = δ uᵀ, ∂J/∂u = Wᵀ δ, ∂J/∂b = δ with δ = ∂J/∂z.
    shapes = {"W": (3, 4), "u": (4,), "b": (3,), "y": (3,)}
    c = cg.parse("z = W @ u + b\nJ = 0.5 * sum(square(z - y))", shapes=shapes)
    p = point_for(shapes)
    got = grads(c, p)
    delta = p["W"] @ p["u"] + p["b"] - p["y"]
    np.testing.assert_allclose(got["dJ_dW"], np.outer(delta, p["u"]), rtol=NOTES_RTOL)
    np.testing.assert_allclose(got["dJ_du"], p["W"].T @ delta, rtol=NOTES_RTOL)
    np.testing.assert_allclose(got["dJ_db"], delta, rtol=NOTES_RTOL)


def test_elementwise_chain_rule_of_the_notes():
    # a = σ(z) elementwise: ∂J/∂z = ∂J/∂a ⊙ σ′(z).
    shapes = {"z": (5,), "w": (5,)}
    c = cg.parse("a = sigmoid(z)\nJ = a @ w", shapes=shapes)
    p = point_for(shapes)
    s = 1 / (1 + np.exp(-p["z"]))
    np.testing.assert_allclose(grads(c, p)["dJ_dz"], p["w"] * s * (1 - s), rtol=NOTES_RTOL)


def test_multilayer_delta_recursion_of_the_notes():
    # δ⁽ᵏ⁾ = (W⁽ᵏ⁺¹⁾ᵀ δ⁽ᵏ⁺¹⁾) ⊙ relu′(z⁽ᵏ⁾), ∂J/∂W⁽ᵏ⁾ = δ⁽ᵏ⁾ a⁽ᵏ⁻¹⁾ᵀ, ∂J/∂b⁽ᵏ⁾ = δ⁽ᵏ⁾.
    sizes = [4, 5, 3, 2]
    shapes = {"x": (4,), "y": (2,)}
    lines, a = [], "x"
    for k in range(1, 4):
        shapes[f"W{k}"], shapes[f"b{k}"] = (sizes[k], sizes[k - 1]), (sizes[k],)
        lines.append(f"z{k} = W{k} @ {a} + b{k}")
        if k < 3:
            lines.append(f"a{k} = relu(z{k})")
            a = f"a{k}"
    lines.append("J = 0.5 * sum(square(z3 - y))")
    c = cg.parse("\n".join(lines), shapes=shapes)
    p = point_for(shapes)
    got = grads(c, p)
    acts, zs = [p["x"]], []
    for k in range(1, 4):
        zs.append(p[f"W{k}"] @ acts[-1] + p[f"b{k}"])
        acts.append(np.maximum(zs[-1], 0))
    delta = zs[-1] - p["y"]
    for k in range(3, 0, -1):
        np.testing.assert_allclose(got[f"dJ_dW{k}"], np.outer(delta, acts[k - 1]),
                                   rtol=NOTES_RTOL)
        np.testing.assert_allclose(got[f"dJ_db{k}"], delta, rtol=NOTES_RTOL)
        if k > 1:
            delta = (p[f"W{k}"].T @ delta) * (zs[k - 2] >= 0)


@pytest.mark.parametrize("shapes, text", [
    ({"A": (4, 3), "d": (3,)}, "J = sum(A + d)"),
    ({"A": (4, 1), "B": (1, 5)}, "J = sum(A * B)"),
    ({"s": (), "A": (4, 3)}, "J = sum(s * A)"),
])
def test_broadcasting_adjoints_have_the_operand_shape(shapes, text):
    c = cg.parse(text, shapes=shapes)
    p = point_for(shapes)
    got = grads(c, p)
    for name, shape in shapes.items():
        assert np.shape(got[f"dJ_d{name}"]) == shape
    assert cg.check_grad(c, p) < FD_ERROR
    if "d" in shapes:
        np.testing.assert_array_equal(got["dJ_dd"], np.full(3, 4.0))
        np.testing.assert_array_equal(got["dJ_dA"], np.ones((4, 3)))
    if "B" in shapes:
        np.testing.assert_allclose(got["dJ_dA"], np.full((4, 1), p["B"].sum()))
        np.testing.assert_allclose(got["dJ_dB"], np.full((1, 5), p["A"].sum()))


def test_generated_code_does_not_build_arrays_of_ones():
    c = cg.parse("z1 = X @ W1.T + b1\na1 = relu(z1)\no = a1 @ W2.T + b2\n"
                 "J = 0.5 * mean(square(o - Y))",
                 shapes={"X": (8, 4), "W1": (5, 4), "b1": (5,), "W2": (2, 5), "b2": (2,),
                         "Y": (8, 2)})
    g = cg.grad(c, wrt=["W1", "b1", "W2", "b2"])
    source = cg.to_numpy(g).source
    assert "_k" not in source  # no array constants (ones, broadcast results)
    assert "broadcast_to" not in source and ".T.T" not in source
    assert "copy" not in source


@pytest.mark.parametrize("text, shapes, message, column", [
    ("J = W @ x", {"W": (3, 4), "x": (3,)}, r"matmul: shapes \(3, 4\) and \(3,\)", 5),
    ("J = sum(a + b)", {"a": (3,), "b": (4,)}, r"add: shapes \(3,\) and \(4,\)", 9),
    ("J = s @ x", {"x": (3,)}, r"matmul: operands must be vectors or matrices", 5),
    ("J = sum(M, 2)", {"M": (2, 3)}, "axis 2 is out of range for shape \\(2, 3\\)", 5),
    ("J = outer(M, x)", {"M": (2, 3), "x": (3,)}, "outer: operands must be vectors", 5),
])
def test_shape_errors_name_op_position_and_shapes(text, shapes, message, column):
    with pytest.raises(cg.ShapeError, match=message) as info:
        cg.parse(text, shapes=shapes)
    assert f"line 1, column {column}" in str(info.value)
    assert isinstance(info.value, cg.CircuitError)


def test_shapes_from_example_arrays_and_trace():
    W, x = np.ones((3, 4)), np.ones(4)
    c = cg.parse("sum(W @ x)", shapes={"W": W, "x": x})
    assert c.input_shapes == {"W": (3, 4), "x": (4,)}
    t = cg.trace(lambda W, x: cg.sum(cg.relu(W @ x)), shapes={"W": W, "x": (4,)})
    assert t.input_shapes == {"W": (3, 4), "x": (4,)}
    assert float(cg.to_numpy(t)(W, x)) == 12.0


def test_tensor_function_checks_input_shapes():
    f = cg.to_numpy(cg.parse("sum(W @ x)", shapes={"W": (3, 4), "x": (4,)}))
    with pytest.raises(cg.ShapeError, match=r"input 'x' has shape \(4,\) at one point; a value "
                       r"of shape \(5,\) is neither one point nor a batch"):
        f(np.ones((3, 4)), np.ones(5))
    with pytest.raises(cg.ShapeError, match=r"input 'W' has shape \(3, 4\) .* of shape \(4,\)"):
        f(np.ones(4), np.ones(4))
    with pytest.raises(cg.ShapeError, match=r"batch shapes do not broadcast together: W \(2,\), "
                       r"x \(3,\)"):
        f(np.ones((2, 3, 4)), np.ones((3, 4)))


def test_gradient_arrays_are_writable_and_exact_shape():
    c = cg.parse("J = sum(b) + 0 * sum(W)", shapes={"b": (3,), "W": (2, 2)})
    got = grads(c, {"b": np.ones(3), "W": np.ones((2, 2))})
    got["dJ_db"] += 1.0  # a caller may update gradients in place
    assert got["dJ_dW"].shape == (2, 2)


@given(st.sampled_from(CASES), st.integers(0, 2**32 - 1))
def test_random_points_scalarized_gradient_agrees(case, seed):
    text, shapes = case
    local = np.random.default_rng(seed)
    p = {k: local.uniform(0.2, 1.5, size=s) for k, s in shapes.items()}
    c = cg.parse(text, shapes=shapes)
    assert cg.check_grad(c, p) < FD_ERROR


@given(tensor_programs(), st.integers(0, 2**32 - 1))
def test_random_tensor_programs_against_central_differences(case, seed):
    text, shapes = case
    c = cg.parse(text, shapes=shapes, inputs=list(shapes))  # unused inputs too: zero gradients
    local = np.random.default_rng(seed)
    p = {k: local.uniform(-1.0, 1.0, size=s) for k, s in c.input_shapes.items()}
    assert cg.check_grad(c, p) < FD_ERROR
    got = grads(c, p)
    for name in c.inputs:
        assert np.shape(got[f"dJ_d{name}"]) == shapes[name]
    g = cg.grad(c)
    g.validate()
    assert g.size <= TENSOR_SIZE_FACTOR * c.size


@pytest.mark.parametrize("op", ["max", "min", "prod", "norm", "logsumexp", "softmax",
                                "log_softmax"])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_scalarize_expands_every_reduction(op, axis):
    same = op in ("softmax", "log_softmax")
    w_shape = (2, 3) if same else {None: (), 0: (3,), 1: (2,)}[axis]
    arg = "" if axis is None else f", axis={axis}"
    c = cg.parse(f"J = sum({op}(x{arg}) * w)", shapes={"x": (2, 3), "w": w_shape})
    s = cg.scalarize(c)
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(2, 3)), rng.normal(size=w_shape)
    values = {f"x_{i}_{j}": x[i, j] for i in range(2) for j in range(3)}
    values.update({"w" + "".join(f"_{k}" for k in idx): w[idx] for idx in np.ndindex(w_shape)})
    assert float(cg.to_numpy(s)(**values)) == pytest.approx(float(cg.to_numpy(c)(x=x, w=w)),
                                                           rel=1e-13)


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_scalarize_expands_the_gradient_of_prod(axis):
    arg = "" if axis is None else f", axis={axis}"
    c = cg.grad(cg.parse(f"J = sum(prod(x{arg}))", shapes={"x": (2, 3)}))
    s = cg.scalarize(c)
    x = np.array([[0.5, 0.0, 2.0], [1.5, -1.0, 3.0]])
    values = {f"x_{i}_{j}": x[i, j] for i in range(2) for j in range(3)}
    np.testing.assert_allclose(cg.to_numpy(s)(**values)[1:],
                               cg.to_numpy(c)(x=x).dJ_dx.ravel(), rtol=1e-15)


def test_scalarize_refuses_empty_tensors_by_node():
    c = cg.parse("J = sum(x*x)", shapes={"x": (0,)})
    with pytest.raises(cg.CircuitError,
                       match=r"scalarize: node %0 \(input\) has the empty shape \(0,\)"):
        cg.scalarize(c)
