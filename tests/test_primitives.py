"""Every primitive: values against an independent NumPy reference, template = evaluation."""

import warnings

import numpy as np
import pytest

import circuitgrad as cg
from circuitgrad.circuit import LEAVES, Builder
from circuitgrad.primitives import PRIMITIVES, evaluate

rng = np.random.default_rng(0)
REALS = rng.uniform(-3, 3, 50)
POSITIVE = rng.uniform(0.1, 5, 50)

def _scatter_reference(a, b):
    z = np.zeros((4, 3))
    z[1:4, 0] += a
    z[0, :] += b
    return z


def _put_reference(v):
    z = np.zeros((4, 3))
    np.add.at(z, [0, 2, 2], v)
    return z


# name -> (reference, sample arguments): one spec per primitive, with its domain.
SPECS = {
    "add": (np.add, (REALS, REALS[::-1])),
    "sub": (np.subtract, (REALS, REALS[::-1])),
    "mul": (np.multiply, (REALS, REALS[::-1])),
    "div": (np.divide, (REALS, POSITIVE)),
    "pow": (np.power, (POSITIVE, REALS)),
    "neg": (np.negative, (REALS,)),
    "sin": (np.sin, (REALS,)),
    "cos": (np.cos, (REALS,)),
    "tanh": (np.tanh, (REALS,)),
    "exp": (np.exp, (REALS,)),
    "log": (np.log, (POSITIVE,)),
    "sqrt": (np.sqrt, (POSITIVE,)),
    "square": (lambda x: x * x, (REALS,)),
    "abs": (np.abs, (REALS,)),
    "relu": (lambda x: np.where(x > 0, x, 0.0), (REALS,)),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), (REALS,)),
    "step": (lambda x: (x >= 0).astype(float), (np.append(REALS, 0.0),)),
    "sign": (np.sign, (np.append(REALS, 0.0),)),
    "matmul": (np.matmul, (rng.normal(size=(3, 4)), rng.normal(size=(4, 2)))),
    "outer": (np.outer, (REALS[:3], REALS[:4])),
    "transpose": (np.transpose, (rng.normal(size=(3, 4)),)),
    "sum": (np.sum, (rng.normal(size=(3, 4)),)),
    "mean": (np.mean, (rng.normal(size=(3, 4)),)),
    "sum_to": (lambda x: x.sum(axis=0), (rng.normal(size=(3, 4)),), {"shape": (4,), "ndim": 2}),
    "broadcast_to": (lambda x: np.broadcast_to(x, (3, 4)), (REALS[:4],), {"shape": (3, 4)}),
    # indexing, joining, reshaping (the params are canonical: see primitives/shape_ops.py)
    "getitem": (lambda x: x[1:, 0], (rng.normal(size=(4, 3)),), {"index": ((1, 4, 1), 0)}),
    "scatter_add": (_scatter_reference, (REALS[:3], REALS[3:6]),
                    {"shape": (4, 3), "indices": (((1, 4, 1), 0), (0, (0, 3, 1)))}),
    "take": (lambda x: x[[0, 2, 2]], (rng.normal(size=(4, 3)),),
             {"indices": (0, 2, 2), "axis": 0}),
    "put_add": (_put_reference,
                (rng.normal(size=(3, 3)),), {"indices": (0, 2, 2), "axis": 0, "shape": (4, 3)}),
    "concatenate": (lambda a, b: np.concatenate([a, b], axis=0),
                    (rng.normal(size=(2, 3)), rng.normal(size=(1, 3))), {"axis": 0}),
    "stack": (lambda a, b: np.stack([a, b], axis=1), (REALS[:3], REALS[3:6]), {"axis": 1}),
    "reshape": (lambda x: x.reshape(3, 2), (rng.normal(size=(2, 3)),), {"shape": (3, 2)}),
    "permute_dims": (lambda x: np.transpose(x, (2, 0, 1)), (rng.normal(size=(2, 1, 3)),),
                     {"axes": (2, 0, 1)}),
    "cumsum": (lambda x: np.cumsum(x, axis=1), (rng.normal(size=(2, 4)),), {"axis": 1}),
}
OPS = [op for op in PRIMITIVES if op not in LEAVES]


def test_every_primitive_has_a_spec():
    assert sorted(SPECS) == sorted(OPS)


@pytest.mark.parametrize("op", OPS)
def test_evaluation_matches_reference(op):
    ref, args, *rest = SPECS[op]
    params = rest[0] if rest else {}
    np.testing.assert_allclose(evaluate(op, args, params), ref(*args), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("op", OPS)
def test_lowered_template_matches_evaluation(op):
    _, args, *rest = SPECS[op]
    params = rest[0] if rest else {}
    b = Builder()
    nodes = [b.input(f"a{k}", np.shape(a)) for k, a in enumerate(args)]
    out = b.apply(op, *nodes, **params)
    c = b.finish([("f", out)])
    for mode in ("compile", "interpret"):
        got = cg.to_numpy(c, mode=mode)(*args)
        np.testing.assert_array_equal(got, evaluate(op, args, params))


@pytest.mark.parametrize("op", OPS)
def test_every_primitive_has_label_and_rule(op):
    prim = PRIMITIVES[op]
    assert prim.label
    assert prim.partials is not None or prim.vjp is not None


def test_sigmoid_is_stable():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert evaluate("sigmoid", (-1000.0,)) == 0.0
        assert evaluate("sigmoid", (1000.0,)) == 1.0
        assert evaluate("sigmoid", (0.0,)) == 0.5
        x = np.array([-1e308, -745.0, -40.0, 40.0, 1e308])
        s = evaluate("sigmoid", (x,))
        assert np.all((s >= 0) & (s <= 1))


def test_relu_and_step_follow_the_notes_convention():
    assert evaluate("relu", (0.0,)) == 0.0
    assert evaluate("step", (0.0,)) == 1.0  # relu'(0) = 1(0 >= 0) = 1
    assert evaluate("step", (-1e-300,)) == 0.0


def test_ieee_semantics():
    with np.errstate(all="ignore"):
        assert evaluate("log", (0.0,)) == -np.inf
        assert np.isnan(evaluate("log", (-1.0,)))
        assert np.isnan(evaluate("sqrt", (-1.0,)))
        assert evaluate("div", (1.0, 0.0)) == np.inf
