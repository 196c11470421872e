"""circuitgrad.numpy: NumPy's names, plus what NumPy cannot dispatch (np.array of traced
values, arrays made to be written, r_ and c_), NumPy's own results where nothing is traced;
and containers (dicts, lists, tuples, named tuples) at a traced function's edges."""

from __future__ import annotations

from collections import namedtuple

import numpy as onp
import pytest

import circuitgrad as cg
import circuitgrad.numpy as np
from circuitgrad.errors import CircuitError


def test_every_numpy_name_is_numpys_own():
    for name in ("sin", "sum", "linalg", "pi", "float64", "newaxis", "concatenate", "einsum"):
        assert getattr(np, name) is getattr(onp, name)
    assert "zeros" in dir(np) and "sin" in dir(np)


def test_without_a_trace_the_results_are_numpys():
    assert type(np.zeros(3)) is onp.ndarray and np.zeros(3).tolist() == [0.0] * 3
    assert np.ones((2, 2), dtype=int).dtype == onp.dtype(int)
    assert np.full(2, 7).tolist() == [7, 7] and np.full(2, 7).dtype.kind == "i"
    assert np.array([1, 2]).dtype.kind == "i" and np.asarray([1.0]).tolist() == [1.0]
    assert np.r_[1, 2, 0:2].tolist() == [1, 2, 0, 1] and np.c_[[1, 2], [3, 4]].shape == (2, 2)
    assert np.zeros_like(onp.ones(2)).tolist() == [0.0, 0.0] and np.empty(2).shape == (2,)


def test_the_issues_spellings_trace_and_agree_with_numpy():
    def f(x):
        out = np.zeros(4)
        out[1:] = x[:-1] ** 2
        e = np.empty_like(out)
        e[:] = 1.0
        w = np.full((2, 2), 0.5)
        w[0, 1] = x[0]
        v = np.array([x[0], x[1] * 2.0, 3.0])
        m = np.array([[x[0], 1.0], [2.0, x[2]]])
        k = np.zeros(2, dtype=int)  # an index array: NumPy's
        k[1] = 3
        return np.concatenate([out, e, w.ravel(), v, m.ravel(), x[k], np.r_[x[:2], 5.0, 0:2],
                               np.c_[x[:2], x[2:]].ravel(), np.asarray(x)])

    x = onp.array([0.5, -1.0, 2.0, 3.0])
    c = cg.trace(f, shapes={"x": (4,)})
    want = f(x.copy())  # the same code on NumPy arrays: circuitgrad.numpy is NumPy there
    onp.testing.assert_array_equal(cg.to_numpy(c)(x), want)


def test_constants_have_their_numbers():
    def f(x):
        z = np.zeros(3)
        n = int(z[0]) + len(z.tolist()) + int(z.astype(int).sum())
        if z[1] == 0.0 and float(np.ones(2)[0]) == 1.0:
            n += 1
        return x * n

    assert float(cg.to_numpy(cg.trace(f))(2.0)) == 8.0


def test_what_it_refuses():
    with pytest.raises(CircuitError, match="float64"):
        cg.trace(lambda x: np.array([x, x], dtype=int))
    with pytest.raises(CircuitError, match="directive"):
        cg.trace(lambda x: np.r_["0,2", x, x], shapes={"x": (2,)})

    def into_numpy(x):
        out = onp.zeros(2)  # plain NumPy: it holds numbers
        out[0] = x
        return out

    with pytest.raises(CircuitError, match="circuitgrad.numpy.zeros"):
        cg.trace(into_numpy)


P = namedtuple("P", "w b")


def test_containers_as_inputs_and_outputs():
    def net(params, xs, p):
        h = np.tanh(params["W1"] @ xs[0] + params["b1"])
        return {"loss": np.sum(h ** 2) * p.w + p.b, "parts": (h[0], [xs[1]])}

    shapes = {"params": {"W1": (2, 3), "b1": 2}, "xs": [(3,), ()], "p": P((), ())}
    c = cg.trace(net, shapes=shapes)
    assert c.inputs == ("params.W1", "params.b1", "xs.0", "xs.1", "p.w", "p.b")
    assert c.outputs == ("loss", "parts.0", "parts.1.0")
    rng = onp.random.default_rng(0)
    W, b, x = rng.normal(size=(2, 3)), rng.normal(size=2), rng.normal(size=3)
    got = cg.to_numpy(c)(W, b, x, 4.0, 2.0, 1.0)
    want = net({"W1": W, "b1": b}, [x, 4.0], P(2.0, 1.0))
    assert got.loss == want["loss"] and got[1] == want["parts"][0] and got[2] == 4.0
    # example arrays in the structure, and a named tuple result
    c2 = cg.trace(lambda q: P(q["a"].sum(), q["a"][0]), shapes={"q": {"a": onp.zeros(3)}})
    assert c2.inputs == ("q.a",) and c2.outputs == ("w", "b")


def test_a_shape_is_not_a_container():
    c = cg.trace(lambda x, y: x.sum() + y.sum(), shapes={"x": (2, 3), "y": [4]})
    assert c.input_shapes == {"x": (2, 3), "y": (4,)}


def test_full_like_broadcasts_an_array_fill_value_as_numpy():
    # np.full_like(x, [1, 2, 3]) broadcasts the fill into x's shape; it used to raise a raw
    # TypeError (float() of a list).
    c = cg.trace(lambda x: onp.full_like(x, [1.0, 2.0, 3.0]) * x, shapes={"x": (2, 3)})
    x = onp.arange(6.0).reshape(2, 3)
    onp.testing.assert_array_equal(cg.to_numpy(c)(x), onp.full_like(x, [1.0, 2.0, 3.0]) * x)
    with pytest.raises(CircuitError, match="numpy.full_like"):
        cg.trace(lambda x: onp.full_like(x, [1.0, 2.0]) * x, shapes={"x": (2, 3)})


def test_array_of_traced_values_refuses_the_arguments_it_would_ignore():
    # np.array([x, y], ndmin=3) has three axes in NumPy: ndmin= (and order="F") were taken
    # and ignored, a result of another shape.
    c = cg.trace(lambda x: np.array([x[0], x[1]], copy=True, order="C") + np.asarray(x[:2]),
                 shapes={"x": (3,)})
    onp.testing.assert_array_equal(cg.to_numpy(c)(onp.arange(3.0)), [0.0, 2.0])
    for call in (lambda x: np.array([x[0], x[1]], ndmin=3), lambda x: np.asarray(x, order="F"),
                 lambda x: np.array([x[0]], None, True)):
        with pytest.raises(CircuitError, match=r"circuitgrad.numpy.(array|asarray) of traced"):
            cg.trace(call, shapes={"x": (3,)})
