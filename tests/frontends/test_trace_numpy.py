"""NumPy calls inside ``trace``: each one builds what NumPy computes, or is a clear error that
names the NumPy function and the user's line. Never a different function."""

from __future__ import annotations

import math

import numpy as np
import pytest

import circuitgrad as cg

RNG = np.random.default_rng(7)


def agrees(fn, shapes, rtol=1e-14):
    """Trace ``fn``, then compare the circuit and its gradient with ``fn`` run by NumPy."""
    c = cg.trace(fn, shapes=shapes)
    point = {n: RNG.uniform(0.2, 1.5, size=s) for n, s in shapes.items()}
    np.testing.assert_allclose(cg.to_numpy(c)(**point), fn(**point), rtol=rtol)
    if c.output_shapes["f"] == ():
        assert cg.check_grad(c, point) < 1e-6
    return c


def test_reductions_dispatch_with_their_axes():
    c = agrees(lambda x: np.mean(x), {"x": (3,)})
    assert [c.op(i) for i in range(len(c))] == ["input", "mean"]
    agrees(lambda W: np.sum(W, axis=0) @ np.ones(3), {"W": (2, 3)})
    agrees(lambda W: np.mean(W, axis=-1).sum(), {"W": (2, 3)})
    agrees(lambda W: np.sum(W, axis=(0, 1)), {"W": (2, 3)})
    agrees(lambda W: np.mean(W, axis=(1, 0)), {"W": (2, 3)})
    agrees(lambda W: W.sum() + W.mean(axis=0).sum(), {"W": (2, 3)})
    agrees(lambda x: np.sum(x, keepdims=False), {"x": (3,)})


def test_norm_is_the_two_norm_not_elementwise():
    c = cg.trace(lambda x: np.linalg.norm(x), shapes={"x": (3,)})
    assert float(cg.to_numpy(c)(np.array([3.0, 4.0, 0.0]))) == 5.0
    agrees(lambda x: np.linalg.norm(x), {"x": (4,)})
    agrees(lambda W: np.linalg.norm(W), {"W": (2, 3)})
    agrees(lambda W: np.linalg.norm(W, "fro"), {"W": (2, 3)})
    agrees(lambda W: np.linalg.norm(W, axis=1).sum(), {"W": (2, 3)})
    agrees(lambda x: np.linalg.norm(x, ord=1), {"x": (3,)})  # every ord: test_linalg_rules.py
    with pytest.raises(cg.CircuitError, match=r"numpy.linalg.norm: ord='fro' is a matrix norm"):
        cg.trace(lambda x: np.linalg.norm(x, ord="fro"), shapes={"x": (3,)})


def test_products_and_transposes():
    agrees(lambda W, x: np.sum(np.dot(W, x)), {"W": (2, 3), "x": (3,)})
    agrees(lambda x, y: np.dot(x, y), {"x": (3,), "y": (3,)})
    agrees(lambda x: np.sum(np.dot(2.0, x)), {"x": (3,)})
    agrees(lambda W, x: np.sum(np.matmul(W, x)), {"W": (2, 3), "x": (3,)})
    agrees(lambda W: np.sum(np.transpose(W) @ np.ones(2)), {"W": (2, 3)})
    agrees(lambda x, y: np.sum(np.outer(x, y) ** 2), {"x": (2,), "y": (3,)})
    agrees(lambda x: np.sum(np.square(x) + np.exp(-x) * np.sin(x) / np.sqrt(x)), {"x": (3,)})
    agrees(lambda x: np.sum(np.abs(x - 1) + np.maximum(x - 1, 0)), {"x": (3,)})
    agrees(lambda T: np.sum(np.transpose(T, (1, 2, 0)) * np.arange(24.0).reshape(3, 4, 2)),
           {"T": (2, 3, 4)})
    with pytest.raises(cg.CircuitError, match=r"axes \[0, 0\] are not a permutation"):
        cg.trace(lambda W: np.transpose(W, (0, 0)), shapes={"W": (2, 3)})


def test_values_of_one_point_describe_themselves():
    c = cg.trace(lambda W: W.sum() * (W.ndim + W.size + W.shape[1]), shapes={"W": (2, 3)})
    assert float(cg.to_numpy(c)(np.ones((2, 3)))) == 6.0 * (2 + 6 + 3)
    agrees(lambda x: sum([x, 2 * x]) + abs(x - 1.0) + pow(x, 3), {"x": ()})


@pytest.mark.parametrize("fn, message", [
    (lambda x: np.unique(x), r"numpy.unique cannot be traced"),
    (lambda x: np.searchsorted(x, 0.5), r"numpy.searchsorted cannot be traced"),
    (lambda x: np.heaviside(x, x), r"numpy.heaviside cannot be traced: np.heaviside\(x, h\)"),
    (lambda x: np.add.reduce(x), r"numpy.add.reduce cannot be traced"),
    (lambda x: np.sin(x, out=np.zeros(3)), r"numpy.sin: the argument\(s\) out= cannot"),
    (lambda x: np.sum(x, keepdims=2), r"numpy.sum: keepdims=2 cannot be traced"),
    (lambda x: np.sum(x, dtype=np.float32), r"numpy.sum: the argument dtype= cannot"),
    (lambda x: np.cumsum(x, dtype=int), r"numpy.cumsum: the argument dtype= cannot"),
    (lambda x: np.nextafter(x, x), r"numpy.nextafter cannot be traced: it is not in"),
    (lambda x: np.where(x > 0), r"numpy.where\(condition\) \(the indices\) cannot be traced"),
    (lambda x: np.array([x, x]), r"cannot become a NumPy array"),
    (lambda x: np.asarray(x) * 2, r"cannot become a NumPy array"),
    (lambda x: np.sum([x, x]), r"cannot become a NumPy array"),
    (lambda x: float(x), r"has no number yet"),
    (lambda x: math.sin(x), r"has no number yet"),
    (lambda x: x if x > 0 else -x, r"no truth value: .* cg.where\(x > 0, a, b\)"),
    (lambda x: [v for v in x[0]], r"a traced scalar cannot be iterated over"),
    (lambda x: x[x], r"an index must be a constant, not a traced value"),
    (lambda x: x[5], r"index 5 is out of range for axis 0 of length 3"),
    (lambda x: x[0, 0], r"too many indices \(2\) for a point of shape \(3,\)"),
    (lambda x: x[[0, 7]], r"indices \[0, 7\] are out of range for axis 0"),
    (lambda x: np.concatenate([x, x.reshape(3, 1)]), r"numpy.concatenate: .*do not fit"),
    (lambda x: x.reshape(2, 2), r"a point of shape \(3,\) cannot become \(2, 2\)"),
    (lambda x: np.array([1.0, 2.0, 3.0], dtype=object) * 2, r"is a NumPy object array"),
])
def test_what_does_not_trace_is_a_clear_error_at_the_users_line(fn, message):
    with pytest.raises(cg.CircuitError, match=message) as info:
        cg.trace(fn, shapes={"x": (3,)})
    if "object array" not in message:
        # The user's own line, not a line inside circuitgrad or NumPy.
        assert "test_trace_numpy.py:" in str(info.value), str(info.value)


def test_if_on_a_traced_value_names_the_line():
    def f(x):
        if x > 0:  # the line the error names
            return x
        return -x

    with pytest.raises(cg.CircuitError, match=r"if x > 0:  # the line the error names"):
        cg.trace(f)


def test_docs_list_every_numpy_name_that_traces():
    with open("docs/tracing.md", encoding="utf-8") as f:
        text = f.read()
    for prim in cg.PRIMITIVES.values():
        for name in prim.numpy:
            assert f"np.{name}" in text or f"scipy.special.{name}" in text, name
    for name in ("np.linalg.norm", "np.dot", "np.heaviside(x, 1)"):
        assert name in text
    # and every NumPy function a handler traces (frontends/numpy_api's FUNCTIONS tables)
    from circuitgrad.frontends.numpy_api import FUNCTIONS
    from circuitgrad.frontends.numpy_api.binding import numpy_name

    missing = [numpy_name(f) for f in FUNCTIONS
               if numpy_name(f).replace("numpy.", "np.", 1) not in text]
    assert not missing, missing


def test_parameters_with_defaults_are_constants_unless_shaped():
    def rastrigin(x, A=10.0, *, scale=1.0):
        return scale * (A * len(x) + np.sum(x**2 - A * np.cos(2 * np.pi * x)))

    c = cg.trace(rastrigin, shapes={"x": (3,)})
    assert c.inputs == ("x",)
    x = np.array([0.5, -0.2, 1.0])
    assert float(cg.to_numpy(c)(x)) == pytest.approx(rastrigin(x), rel=1e-14)
    both = cg.trace(rastrigin, shapes={"x": (3,), "A": ()})
    assert both.inputs == ("x", "A")
    assert float(cg.to_numpy(cg.grad(both))(x, 10.0).df_dA) == pytest.approx(
        3 - np.sum(np.cos(2 * np.pi * x)), rel=1e-13)


def test_comparisons_of_traced_values_are_masks_and_where_selects():
    c = cg.trace(lambda x, y: np.where(x > y, x, y) + (x == y) * 10 + ((x < 0) & ~(y < 0)))
    f = cg.to_numpy(c)
    assert float(f(2.0, 1.0)) == 2.0 and float(f(1.0, 1.0)) == 11.0
    assert float(f(-1.0, 1.0)) == 2.0
    with pytest.raises(cg.CircuitError, match="no truth value"):
        cg.trace(lambda x: 1.0 if x > 0 else 0.0)
    # A traced value is still a dictionary key by identity.
    cg.trace(lambda x: {x: 1}[x] * x)


def test_the_new_numpy_functions_trace():
    import scipy.special

    def f(x, y):
        return (np.sum(np.log1p(np.abs(x)) + np.arctan2(y, x) + np.hypot(x, y))
                + np.max(x) + np.min(x, axis=0) + np.prod(np.clip(x, 0.1, 2.0))
                + np.sum(scipy.special.erf(x)) + np.linalg.norm(x) + np.sum(np.round(x))
                + np.sum(np.heaviside(x, 0.5)) + np.sum(np.clip(x, None, 0.0)))

    c = cg.trace(f, shapes={"x": (3,), "y": (3,)})
    x, y = np.array([0.5, -1.0, 0.0]), np.array([1.0, 2.0, -3.0])
    assert float(cg.to_numpy(c)(x, y)) == pytest.approx(float(f(x, y)), rel=1e-14)
    ops = {c.op(i) for i in range(len(c))}
    assert {"log1p", "atan2", "hypot", "max", "min", "prod", "clip", "erf", "norm", "round",
            "where", "minimum"} <= ops


def test_numpy_maximum_is_the_maximum_primitive_as_in_a_program():
    # One meaning for the same code: trace and parse both build maximum (tie derivative ½).
    traced = cg.trace(lambda x: np.maximum(x, 0.0))
    parsed = cg.parse("maximum(x, 0.0)")
    assert [traced.op(i) for i in range(len(traced))] == [parsed.op(i) for i in
                                                         range(len(parsed))]
    assert "maximum" in [traced.op(i) for i in range(len(traced))]
    at_tie = [float(cg.to_numpy(cg.grad(c))(0.0)[1]) for c in (traced, parsed)]
    assert at_tie == [0.5, 0.5]


def test_np_size_with_an_axis_is_a_number_of_the_point_shape():
    c = cg.trace(lambda x: x * np.size(x, 0) + np.size(x, -1) + np.size(x), shapes={"x": (2, 3)})
    np.testing.assert_array_equal(cg.to_numpy(c)(np.ones((2, 3))), np.full((2, 3), 11.0))
    with pytest.raises(cg.ShapeError, match="numpy.size: axis 2"):
        cg.trace(lambda x: x * np.size(x, 2), shapes={"x": (2, 3)})


def test_ndarray_methods_refuse_an_order_or_dtype_by_name():
    # x.reshape(..., order="F") takes the entries another way: it used to raise a raw
    # TypeError (an unexpected keyword), as did x.cumsum(dtype=...); order="C" traces.
    x = np.arange(6.0).reshape(2, 3)
    c = cg.trace(lambda x: x.reshape((3, 2), order="C") + x.ravel("C").reshape(3, 2)
                 + x.flatten(order="C").reshape(3, 2), shapes={"x": (2, 3)})
    np.testing.assert_array_equal(cg.to_numpy(c)(x), 3 * x.reshape(3, 2))
    for method in (lambda x: x.reshape((3, 2), order="F"), lambda x: x.ravel("F"),
                   lambda x: x.flatten(order="A")):
        with pytest.raises(cg.CircuitError, match=r"(reshape|ravel|flatten)\(order="):
            cg.trace(method, shapes={"x": (2, 3)})
    with pytest.raises(cg.CircuitError, match="numpy.cumsum: the argument dtype="):
        cg.trace(lambda x: x.cumsum(dtype=int), shapes={"x": (2, 3)})
    c = cg.trace(lambda x: x.cumsum(1), shapes={"x": (2, 3)})
    np.testing.assert_array_equal(cg.to_numpy(c)(x), x.cumsum(1))


def test_diff_checks_n_as_numpy():
    # np.diff(x, n=-1) is NumPy's ValueError; it traced as x unchanged (range(-1) is empty),
    # and n=1.5 raised a raw TypeError.
    x = np.array([1.0, 4.0, 9.0, 16.0])
    for n in (0, 2):
        c = cg.trace(lambda x, n=n: np.diff(x, n=n), shapes={"x": (4,)})
        np.testing.assert_array_equal(cg.to_numpy(c)(x), np.diff(x, n=n))
    for n in (-1, 1.5):
        with pytest.raises(cg.CircuitError, match="numpy.diff: n must be"):
            cg.trace(lambda x, n=n: np.diff(x, n=n), shapes={"x": (4,)})


def test_leaves_of_a_deeply_nested_list_does_not_recurse():
    from circuitgrad.frontends.numpy_api.binding import leaves

    deep: list = [7.0]
    for _ in range(5000):  # beyond Python's recursion limit
        deep = [deep, ()]
    assert list(leaves(deep)) == [7.0]
    assert list(leaves([1, [2, (3,), []], [[4]], 5])) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("reduction", [np.sum, np.mean, np.max, np.prod, np.var, np.std])
def test_a_duplicate_axis_is_refused_as_numpy(reduction):
    # axis=(0, -2) of a matrix names axis 0 twice: NumPy's ValueError; the axes were a set
    # and the reduction ran once, a number where NumPy has none.
    with pytest.raises(ValueError):
        reduction(np.zeros((2, 3)), axis=(0, -2))
    with pytest.raises(cg.ShapeError, match="duplicate value in axis"):
        cg.trace(lambda x: reduction(x, axis=(0, -2)), shapes={"x": (2, 3)})
    c = cg.trace(lambda x: reduction(x, axis=(0, -1)), shapes={"x": (2, 3)})
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(cg.to_numpy(c)(x), reduction(x, axis=(0, -1)), rtol=1e-15)


def test_atleast_nd_of_a_traced_value_and_a_number():
    # np.atleast_2d(x, 3.0): the number raised a raw AttributeError (no .shape)
    c = cg.trace(lambda x: np.atleast_2d(x, 3.0)[0] * np.atleast_2d(x, [3.0])[1],
                 shapes={"x": (3,)})
    x = np.arange(3.0)
    want = np.atleast_2d(x, 3.0)[0] * np.atleast_2d(x, [3.0])[1]
    np.testing.assert_array_equal(cg.to_numpy(c)(x), want)


def test_clip_refuses_both_spellings_of_a_bound():
    # np.clip(x, a_min=0, a_max=3, min=1) is NumPy's ValueError; min=1 was ignored
    with pytest.raises(ValueError):
        np.clip(np.zeros(3), a_min=0, a_max=3, min=1)
    with pytest.raises(cg.CircuitError, match="numpy.clip: give the bounds"):
        cg.trace(lambda x: np.clip(x, a_min=0, a_max=3, min=1), shapes={"x": (3,)})
    c = cg.trace(lambda x: np.clip(x, min=0.5, max=1.5), shapes={"x": (3,)})
    np.testing.assert_array_equal(cg.to_numpy(c)(np.arange(3.0)), [0.5, 1.0, 1.5])
