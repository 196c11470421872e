"""to_fused on the networks of issue 28 (benchmarks/tensor_nets.py, benchmarks/mlp.py), small:
the driver's lines for a network's gradient, the same numbers as to_numpy, a batch's points
bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_batch import same_bits
from test_compiled import close, compile_cache  # noqa: F401  (a fresh cache for the module)

import circuitgrad as cg
import circuitgrad.lower.fused as fused
from circuitgrad.lower.fused import matmul_transposed, to_fused

TANH_NET = """a1 = tanh(X @ W1.T + b1)
a2 = tanh(a1 @ W2.T + b2)
z = a2 @ W3.T + b3
J = -mean(sum(Y * log_softmax(z, axis=1), axis=1))"""
WRT = ["W1", "b1", "W2", "b2", "W3", "b3"]


def _net_point(rows=48, inputs=20, width=12, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return {"X": rng.normal(size=(rows, inputs)),
            "Y": np.eye(classes)[rng.integers(0, classes, size=rows)],
            "W1": rng.normal(size=(width, inputs)) / np.sqrt(inputs),
            "b1": rng.normal(size=width) * 0.1,
            "W2": rng.normal(size=(width, width)) / np.sqrt(width),
            "b2": rng.normal(size=width) * 0.1,
            "W3": rng.normal(size=(classes, width)) / np.sqrt(width),
            "b3": rng.normal(size=classes) * 0.1}


def _net_gradient(point):
    c = cg.parse(TANH_NET, shapes={k: v.shape for k, v in point.items()})
    return cg.grad(c, wrt=WRT)


def test_weight_adjoints_are_products_in_the_weights_layout():
    """Each weight's adjoint ``(aᵀ·δ)ᵀ`` is one product ``δᵀ·a`` (no product then a view of
    its transpose): C-contiguous like the weight, the same numbers as to_numpy's."""
    point = _net_point()
    g = _net_gradient(point)
    f = to_fused(g, min_entries=0)
    assert f.source.count("_matmul_transposed(") == 3, f.source
    got, want = f(**point), cg.to_numpy(g)(**point)
    for name in ("dJ_dW1", "dJ_dW2", "dJ_dW3"):
        assert getattr(got, name).flags.c_contiguous, name
    for name, a, b in zip(got._fields, got, want):
        assert np.shape(a) == np.shape(b), name
        assert close(a, b), (name, a, b)


def test_weight_adjoints_batch_is_its_points_bit_for_bit():
    point = _net_point(rows=16, inputs=6, width=5)
    g = _net_gradient(point)
    f = to_fused(g, min_entries=0)
    rng = np.random.default_rng(3)
    batch = {k: v + 0.01 * rng.normal(size=(3,) + v.shape) for k, v in point.items()}
    got, want = f(**batch), cg.to_numpy(g)(**batch)
    for name, a, b in zip(got._fields, got, want):
        assert close(a, b), name
    for k in range(3):
        one = f(**{n: v[k] for n, v in batch.items()})
        for name, a, p in zip(got._fields, got, one):
            assert same_bits(np.asarray(a)[k], p), (name, k)


def test_switched_off_the_product_and_its_transpose_stay(monkeypatch):
    point = _net_point()
    g = _net_gradient(point)
    monkeypatch.setattr(fused, "TRANSPOSED_PRODUCTS", False)
    f = to_fused(g, min_entries=0)
    assert "_matmul_transposed(" not in f.source
    got, want = f(**point), cg.to_numpy(g)(**point)
    assert not got.dJ_dW1.flags.c_contiguous  # (the view of the product's transpose)
    for name, a, b in zip(got._fields, got, want):
        assert close(a, b), name


@pytest.mark.parametrize("program, outputs", [
    ("P = A @ B\nJ = sum(P.T * C) + sum(P)", None),  # the product read by another node too
    ("P = A @ B\nQ = P.T", ["P", "Q"]),              # the product an output
])
def test_a_product_read_elsewhere_keeps_its_line(program, outputs):
    shapes = {"A": (5, 4), "B": (4, 3), "C": (3, 5)}
    c = cg.parse(program, outputs=outputs,
                 shapes={k: v for k, v in shapes.items() if k in program})
    f = to_fused(c, min_entries=0)
    assert "_matmul_transposed(" not in f.source, f.source
    rng = np.random.default_rng(1)
    values = {k: rng.normal(size=s) for k, s in c.input_shapes.items()}
    got, want = f(**values), cg.to_numpy(c)(**values)
    for a, b in zip(got if len(c.outputs) > 1 else (got,), want if len(c.outputs) > 1
                    else (want,)):
        assert close(a, b)


def test_a_transposed_product_alone_is_one_product():
    c = cg.parse("Q = (A.T @ B).T", shapes={"A": (6, 4), "B": (6, 3)})
    f = to_fused(c, min_entries=0)
    assert "_matmul_transposed(" in f.source, f.source
    rng = np.random.default_rng(2)
    A, B = rng.normal(size=(6, 4)), rng.normal(size=(6, 3))
    got = f(A=A, B=B)
    assert got.shape == (3, 4) and got.flags.c_contiguous
    assert close(got, (A.T @ B).T)


def test_matmul_transposed_of_other_values_is_the_transposed_product():
    a, b = [[1.0, 2.0], [3.0, 4.0]], [[5.0], [6.0]]
    assert matmul_transposed(a, b).tolist() == (np.array(a) @ np.array(b)).T.tolist()
    x, y = np.arange(12.0).reshape(2, 3, 2), np.arange(8.0).reshape(2, 2, 2)
    assert (matmul_transposed(x, y) == np.swapaxes(x @ y, -1, -2)).all()
