"""Every primitive: values against an independent NumPy reference, template = evaluation."""

import math
import warnings

import numpy as np
import pytest

import circuitgrad as cg
from circuitgrad.circuit import LEAVES, Builder
from circuitgrad.primitives import PRIMITIVES, evaluate

rng = np.random.default_rng(0)
REALS = rng.uniform(-3, 3, 50)
POSITIVE = rng.uniform(0.1, 5, 50)
UNIT = rng.uniform(-0.95, 0.95, 50)
ABOVE_ONE = rng.uniform(1.05, 5, 50)
# Ties, kinks and jumps on purpose: halves for round, equal pairs for maximum.
STEPS = np.concatenate([REALS, [0.0, -0.0, 0.5, 1.5, -2.5, 2.0]])
TIED = np.round(REALS)
MATRIX = rng.normal(size=(3, 4))

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
    "log1p": (lambda x: np.log(1 + x), (POSITIVE - 0.05,)),
    "expm1": (lambda x: np.exp(x) - 1, (REALS,)),
    "softplus": (lambda x: np.log(1 + np.exp(x)), (REALS,)),
    "erf": (np.vectorize(math.erf), (REALS,)),
    "erfc": (np.vectorize(math.erfc), (REALS,)),
    "tan": (lambda x: np.sin(x) / np.cos(x), (UNIT,)),
    "asin": (np.vectorize(math.asin), (UNIT,)),
    "acos": (np.vectorize(math.acos), (UNIT,)),
    "atan": (np.vectorize(math.atan), (REALS,)),
    "atan2": (np.vectorize(math.atan2), (REALS, REALS[::-1])),
    "sinh": (lambda x: (np.exp(x) - np.exp(-x)) / 2, (REALS,)),
    "cosh": (lambda x: (np.exp(x) + np.exp(-x)) / 2, (REALS,)),
    "asinh": (np.vectorize(math.asinh), (REALS,)),
    "acosh": (np.vectorize(math.acosh), (ABOVE_ONE,)),
    "atanh": (np.vectorize(math.atanh), (UNIT,)),
    "log2": (lambda x: np.log(x) / np.log(2), (POSITIVE,)),
    "log10": (lambda x: np.log(x) / np.log(10), (POSITIVE,)),
    "exp2": (lambda x: 2.0**x, (REALS,)),
    "hypot": (lambda a, b: np.sqrt(a * a + b * b), (REALS, REALS[::-1])),
    "floor": (np.vectorize(math.floor), (STEPS,)),
    "ceil": (np.vectorize(math.ceil), (STEPS,)),
    "round": (np.vectorize(round), (STEPS,)),  # Python's round: halves to even, too
    "maximum": (np.vectorize(max), (TIED, TIED[::-1])),
    "minimum": (np.vectorize(min), (TIED, TIED[::-1])),
    "clip": (lambda x, lo, hi: np.vectorize(lambda a, l, h: min(max(a, l), h))(x, lo, hi),
             (REALS, np.full(50, -1.0), np.full(50, 1.5))),
    "logaddexp": (lambda a, b: np.log(np.exp(a) + np.exp(b)), (REALS, REALS[::-1])),
    "less": (lambda a, b: (a < b) * 1.0, (TIED, TIED[::-1])),
    "less_equal": (lambda a, b: (a <= b) * 1.0, (TIED, TIED[::-1])),
    "greater": (lambda a, b: (a > b) * 1.0, (TIED, TIED[::-1])),
    "greater_equal": (lambda a, b: (a >= b) * 1.0, (TIED, TIED[::-1])),
    "equal": (lambda a, b: (a == b) * 1.0, (TIED, TIED[::-1])),
    "not_equal": (lambda a, b: (a != b) * 1.0, (TIED, TIED[::-1])),
    "logical_and": (lambda a, b: np.array([float(bool(p) and bool(q)) for p, q in zip(a, b)]),
                    (TIED, TIED[::-1])),
    "logical_or": (lambda a, b: np.array([float(bool(p) or bool(q)) for p, q in zip(a, b)]),
                   (TIED, TIED[::-1])),
    "logical_not": (lambda a: np.array([float(not p) for p in a]), (TIED,)),
    "where": (lambda c, a, b: np.array([p if k else q for k, p, q in zip(c, a, b)]),
              (TIED, REALS, REALS[::-1])),
    "max": (np.max, (MATRIX,)),
    "min": (np.min, (MATRIX,)),
    "prod": (np.prod, (MATRIX,)),
    "norm": (lambda x: math.sqrt(sum(v * v for v in x.ravel())), (MATRIX,)),
    "logsumexp": (lambda x: np.log(np.sum(np.exp(x)), ), (MATRIX,)),
    "softmax": (lambda x: np.exp(x) / np.sum(np.exp(x)), (MATRIX,)),
    "log_softmax": (lambda x: x - np.log(np.sum(np.exp(x))), (MATRIX,)),
    "matmul": (np.matmul, (rng.normal(size=(3, 4)), rng.normal(size=(4, 2)))),
    "outer": (np.outer, (REALS[:3], REALS[:4])),
    "transpose": (np.transpose, (rng.normal(size=(3, 4)),)),
    "sum": (np.sum, (rng.normal(size=(3, 4)),)),
    "mean": (np.mean, (rng.normal(size=(3, 4)),)),
    "sum_to": (lambda x: x.sum(axis=0), (rng.normal(size=(3, 4)),), {"shape": (4,), "ndim": 2}),
    "broadcast_to": (lambda x: np.broadcast_to(x, (3, 4)), (REALS[:4],), {"shape": (3, 4)}),
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
