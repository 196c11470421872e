"""Indexing, slicing, joining and reshaping (NumPy's meaning), in trace and in parse: values
against NumPy, gradients against central differences and sympy (through scalarize), the
adjoint of many reads in O(n), errors with positions, and generated code that reads like the
program."""

from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pytest
import sympy

import circuitgrad as cg
from circuitgrad.transforms.grad import TENSOR_SIZE_FACTOR, bound_size
from test_batch import assert_points_agree, batch_of

RNG = np.random.default_rng(11)
X = RNG.uniform(0.3, 1.7, size=6)
M = RNG.uniform(0.3, 1.7, size=(3, 4))

# (the code as a user writes it, with x a vector of 6 and M a 3 x 4 matrix)
FORMS = [
    "x[2]", "x[-1]", "M[1, 2]", "x[1:]", "x[:-1]", "x[::2]", "x[::-1]", "M[:, 0]",
    "M[..., 1]", "x[None]", "M[:, None]", "x[[0, 2, 5]]", "M[:, [3, 0, 3]]", "M[1:, ::2]",
    "M[-2:, -1]", "x[1:4][::-1][0]",
]
NUMPY_FORMS = FORMS + [
    "np.concatenate([x, M.ravel()])", "np.stack([x[:4], M[0]], axis=1)", "np.hstack([x, x])",
    "np.vstack([M, x[:4]])", "M.reshape(2, 6)", "np.reshape(M, (4, -1))", "np.ravel(M)",
    "np.expand_dims(x, 0)", "np.squeeze(M[:, None])", "M.T", "np.transpose(M[None], (2, 0, 1))",
    "np.flip(M)", "np.flip(M, axis=1)", "np.cumsum(M, axis=0)", "np.cumsum(M)",
    "np.diff(x)", "np.diff(M, n=2, axis=1)", "np.take(M, [1, 1], axis=1)",
    "np.sum(M, axis=1, keepdims=True)", "np.mean(M, keepdims=True)", "x - [3.0, 5, 2, 1, 0, 4]",
    "M @ np.array([1.0, 2.0, 3.0, 4.0])", "np.dot(M, x[:4])", "np.outer(x[:2], M[0])",
    "np.linalg.norm(M, axis=0)", "[v * 2 for v in x][3]", "x.sum() * len(x)",
    "M.mean(axis=0)", "x.shape[0] * M.ndim * M.size * x",
]


def traced(form: str) -> cg.Circuit:
    def f(x, M):
        return np.sum(np.sin(eval(form)))  # noqa: S307 - the test's own forms

    return cg.trace(f, shapes={"x": (6,), "M": (3, 4)})


@pytest.mark.parametrize("form", NUMPY_FORMS)
def test_numpy_forms_trace_with_numpys_meaning(form):
    c = traced(form)
    want = float(np.sum(np.sin(eval(form, {"np": np, "x": X, "M": M}))))  # noqa: S307
    assert float(cg.to_numpy(c)(X, M)) == pytest.approx(want, rel=1e-14, abs=1e-14)
    assert cg.check_grad(c, {"x": X, "M": M}) < 1e-6
    g = cg.grad(c)
    g.validate()
    assert g.size <= TENSOR_SIZE_FACTOR * bound_size(c)
    values = batch_of(g, 3, (2,))
    assert_points_agree(g, values, (2,))  # batches: bit for bit point by point


@pytest.mark.parametrize("form", FORMS + [
    "concatenate([x, ravel(M)])", "stack([x[:4], M[0]], axis=1)", "reshape(M, (2, 6))",
    "flip(M, axis=1)", "cumsum(M, axis=0)", "diff(x)", "x - [3, 5, 2, 1, 0, 4]",
    "permute_dims(reshape(M, (1, 3, 4)), (2, 0, 1))", "expand_dims(x, 1)", "hstack([x, x])",
    "vstack([M, x[:4]])", "squeeze(M[:, None])", "len(x) * x", "M.ndim * M.size * x"])
def test_the_same_forms_parse_to_the_same_numbers(form):
    c = cg.parse(f"J = sum(sin({form}))", shapes={"x": (6,), "M": (3, 4)}, inputs=["x", "M"])
    numpy_form = re.sub(r"\b(concatenate|ravel|stack|reshape|flip|cumsum|diff|expand_dims|"
                        r"hstack|vstack|squeeze)\(", r"np.\1(", form)
    numpy_form = numpy_form.replace("permute_dims(", "np.transpose(")
    want = float(np.sum(np.sin(eval(numpy_form, {"np": np, "x": X, "M": M}))))  # noqa: S307
    assert float(cg.to_numpy(c)(X, M)) == pytest.approx(want, rel=1e-14, abs=1e-14)
    assert cg.check_grad(c, {"x": X, "M": M}) < 1e-6


def test_gradients_through_shape_ops_against_sympy():
    c = cg.parse("v = concatenate([x[1:] * x[:-1], cumsum(x, axis=0)])\n"
                 "J = sum(sin(v) * flip(v)) + sum(stack([x, x * x])[1, [0, 2, 2]])",
                 shapes={"x": (3,)})
    s = cg.scalarize(c)
    expr = cg.to_sympy(s)
    by_name = {str(sym): sym for sym in expr.free_symbols}
    symbols = [by_name[n] for n in s.inputs]
    point = dict(zip(s.inputs, [0.4, -1.1, 0.7]))
    g = cg.to_numpy(cg.grad(c))(np.array(list(point.values())))
    for k, sym in enumerate(symbols):
        want = float(sympy.diff(expr, sym).subs({symbols[j]: v for j, v in
                                                 enumerate(point.values())}))
        assert g.dJ_dx[k] == pytest.approx(want, rel=1e-12)


def test_hand_formula_of_rosenbrock():
    # ∂/∂x_k of Σ 100 (x_{i+1} − x_i²)² + (1 − x_i)²: the textbook gradient.
    def rosen(x):
        return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    x = RNG.uniform(-1, 2, size=7)
    want = np.zeros_like(x)
    want[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    want[1:] += 200 * (x[1:] - x[:-1] ** 2)
    g = cg.to_numpy(cg.grad(cg.trace(rosen, shapes={"x": (7,)})))(x)
    np.testing.assert_allclose(g.df_dx, want, rtol=1e-13)


def _loop(n: int) -> cg.Circuit:
    def f(x):
        return sum(cg.sin(x[i]) * x[i] for i in range(n))

    return cg.trace(f, shapes={"x": (n,)})


def _evaluation_bytes(c: cg.Circuit, n: int) -> int:
    g = cg.to_numpy(cg.grad(c), mode="interpret")
    x = np.linspace(0.1, 1.0, n)
    g(x)
    tracemalloc.start()
    g(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_a_loop_over_entries_has_a_linear_adjoint_in_nodes_and_bytes():
    small, large = 2_000, 8_000
    sizes, nbytes = [], []
    for n in (small, large):
        c = _loop(n)
        g = cg.grad(c, simplify=False)
        assert [g.op(i) for i in range(len(g))].count("scatter_add") == 1  # one accumulator
        sizes.append(g.size)
        nbytes.append(_evaluation_bytes(c, n))
    # Four times the entries: four times the nodes and the bytes (a dense adjoint per read
    # would be sixteen times), with room for constant overheads.
    assert sizes[1] / sizes[0] == pytest.approx(4.0, rel=0.01)
    assert nbytes[1] / nbytes[0] < 4.6, nbytes
    x = np.linspace(0.1, 1.0, small)
    got = cg.to_numpy(cg.grad(_loop(small)))(x).df_dx
    np.testing.assert_allclose(got, np.sin(x) + x * np.cos(x), rtol=1e-14)


def test_generated_code_reads_like_the_program():
    c = cg.parse("d = x[1:] - x[:-1]\nJ = sum(d * d) + x[0] + sum(concatenate([x, x[::-1]]))",
                 shapes={"x": (5,)})
    source = cg.to_numpy(cg.grad(c)).source
    assert "x[..., 1:]" in source and "x[..., :4]" in source and "_cg.flip(x, -1)" in source
    assert "x[..., 0]" in source
    assert "_cg.concatenate([x, " in source
    assert source.count("_cg.scatter_add(") == 1
    dot = cg.to_dot(c).source
    assert "[1:]" in dot and "[::-1]" in dot and "concat" in dot


@pytest.mark.parametrize("text, message, column", [
    ("J = sum(x[5])", r"index 5 is out of range for axis 0 of length 5", 9),
    ("J = sum(x[1, 2])", r"too many indices \(2\) for a point of shape \(5,\)", 9),
    ("J = sum(x[::0])", r"slice step cannot be zero", 9),
    ("J = sum(x[[0, 9]])", r"indices \[0, 9\] are out of range", 9),
    ("J = sum(reshape(x, (2, 2)))", r"cannot become \(2, 2\)", 9),
    ("J = sum(concatenate([x, [1, 2]], axis=1))", r"axis 1 is out of range", 9),
])
def test_shape_errors_name_the_position(text, message, column):
    with pytest.raises(cg.ShapeError, match=message) as info:
        cg.parse(text, shapes={"x": (5,)})
    assert (info.value.line, info.value.column) == (1, column)


def test_json_round_trip_of_shape_ops():
    c = cg.grad(cg.parse("J = sum(stack([x[1:], cumsum(x, axis=0)[:-1]]) * x[[0, 0, 1, 2]])",
                         shapes={"x": (5,)}))
    back = cg.from_json(cg.to_json(c))
    x = RNG.normal(size=5)
    for a, b in zip(cg.to_numpy(back)(x), cg.to_numpy(c)(x)):
        np.testing.assert_array_equal(a, b)
