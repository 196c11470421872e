"""Simplification passes: a pass never changes what a circuit computes.

The exact passes are checked bit for bit (sign of zero, inf and nan included) on batches of
points that contain the IEEE special values; the unsafe rules are checked where their
assumptions hold, and shown to differ where they do not.
"""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import circuitgrad as cg
from circuitgrad.builder import Builder
from circuitgrad.transforms.simplify import (CONST_VARIABLES, EXACT_RULES, UNSAFE_RULES,
                                             _rewrite, eliminate_dead_nodes, merge_common,
                                             rewrite_exact, rewrite_unsafe)
from strategies import programs

SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.0, -3.5, 0.5, 1e-310, -1e-310, 1e300, -1e300, 1.5e154,
           math.inf, -math.inf, math.nan, 0.3, -0.7]
EXACT_PASSES = [merge_common, eliminate_dead_nodes, rewrite_exact, cg.simplify]


def batch(names, seed=0, extra=()):
    """A batch of points: every special value for every input, plus random ones."""
    rng = np.random.default_rng(seed)
    n = 3 * len(SPECIAL)
    values = {}
    for k, name in enumerate(names):
        column = np.array(SPECIAL * 3)
        rng.shuffle(column)
        values[name] = np.concatenate([column, rng.normal(size=8) * 3, list(extra)])
    return values, n


def evaluate(c, point):
    with np.errstate(all="ignore"):
        out = cg.to_numpy(c)(**point)
    return out if len(c.outputs) > 1 else (out,)


def assert_same_bits(a, b):
    """Equal bit for bit, up to NaN payloads: same values, same signs of zero, same nans."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    a, b = np.broadcast_arrays(a, b)
    nan = np.isnan(a)
    assert np.array_equal(nan, np.isnan(b)), (a, b)
    assert np.array_equal(a.view(np.int64)[~nan], b.view(np.int64)[~nan]), (a, b)


def assert_same_circuit_values(c, s, seed=0):
    assert s.inputs == c.inputs and s.outputs == c.outputs
    assert s.output_shapes == c.output_shapes
    point, _ = batch(c.inputs, seed)
    for x, y in zip(evaluate(c, point), evaluate(s, point)):
        assert_same_bits(x, y)


# -- random circuits with the constants the rules look for -------------------------------

CONSTANTS = [0.0, -0.0, 1.0, -1.0, 2.0, 4.0, 0.5, -2.0, 3.0, math.inf, math.nan]
UNARY = ["neg", "sin", "exp", "log", "sqrt", "square", "abs", "tanh", "relu", "sigmoid"]
BINARY = ["add", "sub", "mul", "div", "pow"]


@st.composite
def circuits(draw, max_ops=14):
    """A random circuit over 1-2 inputs that often meets the rules' constants and shapes."""
    b = Builder()
    nodes = [b.input(f"x{k}") for k in range(draw(st.integers(1, 2)))]
    for _ in range(draw(st.integers(1, max_ops))):
        kind = draw(st.sampled_from(["unary", "binary", "const"]))
        a = draw(st.sampled_from(nodes))
        if kind == "unary":
            nodes.append(b.apply(draw(st.sampled_from(UNARY)), a))
        else:
            other = (b.const(draw(st.sampled_from(CONSTANTS))) if kind == "const"
                     else draw(st.sampled_from(nodes)))
            pair = (a, other) if draw(st.booleans()) else (other, a)
            nodes.append(b.apply(draw(st.sampled_from(BINARY)), *pair))
    outs = [("f", nodes[-1])]
    if len(nodes) > 2 and draw(st.booleans()):
        outs.append(("g", draw(st.sampled_from(nodes[:-1]))))
    return b.finish(outs)


@given(circuits())
def test_exact_passes_keep_every_bit(c):
    for p in EXACT_PASSES:
        s = p(c)
        s.validate()
        assert s.size <= c.size
        assert_same_circuit_values(c, s)


@given(programs())
def test_exact_passes_keep_every_bit_on_programs_and_gradients(case):
    text, _, _ = case
    c = cg.parse(text)
    for circuit in (c, cg.grad(c, simplify=False), cg.jvp(c, simplify=False)):
        s = cg.simplify(circuit)
        s.validate()
        assert s.size <= circuit.size
        assert_same_circuit_values(circuit, s)


@given(programs())
def test_one_sweep_reaches_the_fixed_point(case):
    # Exactly, for the rules that do not count uses; the sign rules count the uses a node
    # had before the sweep, so a second round may still move a sign (and only shrink).
    c = cg.parse(case[0])
    for circuit in (cg.grad(c, simplify=False), cg.hvp(c, simplify=False)):
        for rules in (EXACT_RULES, EXACT_RULES + UNSAFE_RULES):
            local = [r for r in rules if r.single_use is None]
            once = _rewrite(circuit, local)
            twice = _rewrite(once, local)
            assert (len(twice), twice.size) == (len(once), once.size)
            once = _rewrite(circuit, rules)
            assert _rewrite(once, rules).size <= once.size
        assert cg.simplify(circuit, rounds=3).size <= rewrite_exact(circuit).size


@given(programs(max_ops=8))
@settings(max_examples=60)
def test_unsafe_passes_keep_values_inside_the_domain(case):
    text, point, values = case
    # Inside the domain of the rules too: sqrt(x²) → x holds for x ≥ 0 only.
    assume(("sqrt(" not in text and "** 0.5" not in text)
           or all(v >= 0 for v in values.values()))
    c = cg.parse(text)
    for circuit in (c, cg.grad(c, simplify=False)):
        s = cg.simplify(circuit, unsafe=True)
        s.validate()
        assert s.size <= circuit.size
        p = {k: point[k] for k in circuit.inputs}
        for x, y in zip(evaluate(circuit, p), evaluate(s, p)):
            assert float(y) == pytest.approx(float(x), rel=1e-9, abs=1e-9)


# -- the rule tables, one rule at a time -----------------------------------------------------

class PatternBuilder(Builder):
    """A builder without its own exact rewrites: it builds a pattern as it is written, also
    the patterns the builder itself rewrites (c·(-x), square(-x) ...)."""

    def _rewrite(self, op, ids):
        return None


def rule_circuit(rule, consts):
    """The circuit of a rule's pattern: variables x, y as inputs, c, d as ``consts``."""
    b = PatternBuilder()
    stack = [(rule.pattern, None)]
    built = {}
    env = {}
    # Build the pattern bottom-up: the pattern is a small tree, so an explicit post-order.
    order = []
    while stack:
        node, parent = stack.pop()
        order.append(node)
        if isinstance(node, tuple):
            stack.extend((s, node) for s in node[1:])
    for node in reversed(order):
        if isinstance(node, tuple):
            built[id(node)] = b.apply(node[0], *(leaf(b, env, consts, s, built)
                                                 for s in node[1:]))
    return b.finish([("f", built[id(rule.pattern)])], inputs=sorted(n for n in env
                                                                     if n not in consts))


def leaf(b, env, consts, p, built):
    if isinstance(p, tuple):
        return built[id(p)]
    if isinstance(p, float):
        return b.const(p)
    if p not in env:
        env[p] = b.const(consts[p]) if p in CONST_VARIABLES else b.input(p)
    return env[p]


def rewritten(c, s):
    """The pass changed the circuit: fewer nodes, or other ops."""
    return s.size < c.size or list(map(s.op, range(len(s)))) != list(map(c.op, range(len(c))))


def rule_constants(rule, unsafe=False):
    if unsafe:
        return {"c": 3.0, "d": 0.7}  # not powers of two: no exact rule applies
    for c in (2.0, 4.0, -2.0, 3.0, 0.5, -1.5):
        for d in (4.0, 2.0, -8.0, 0.25, 3.0):
            if rule.when is None or rule.when(c=c, d=d):
                return {"c": c, "d": d}
    raise AssertionError(f"no constants satisfy {rule.name}")


@pytest.mark.parametrize("rule", EXACT_RULES, ids=lambda r: r.name)
def test_every_exact_rule_fires_and_is_exact(rule):
    c = rule_circuit(rule, rule_constants(rule))
    s = rewrite_exact(c)
    s.validate()
    assert rewritten(c, s)
    point, _ = batch(c.inputs)
    assert_same_bits(evaluate(c, point)[0], evaluate(s, point)[0])


@pytest.mark.parametrize("rule", UNSAFE_RULES, ids=lambda r: r.name)
def test_every_unsafe_rule_fires_and_holds_inside_its_domain(rule):
    c = rule_circuit(rule, rule_constants(rule, unsafe=True))
    s = rewrite_unsafe(c)
    s.validate()
    assert rewritten(c, s)
    assert not rewritten(c, rewrite_exact(c))  # never applied by default
    point = {name: np.array([0.3, 1.7, 2.5]) for name in c.inputs}
    np.testing.assert_allclose(evaluate(s, point)[0], evaluate(c, point)[0], rtol=1e-12)


@pytest.mark.parametrize("text, where, unsafe_value", [
    ("1/(x + 0.0)", -0.0, -math.inf),       # the sign of zero
    ("x - x", math.inf, 0.0),                # inf - inf = nan
    ("x*0.0", math.nan, 0.0),
    ("exp(log(x))", -1.0, -1.0),             # log(-1) = nan
    ("sqrt(x**2)", -3.0, -3.0),
    ("0.5*(2.0*x)", 1e308, 1e308),           # 2x overflows
])
def test_unsafe_rules_change_results_where_documented(text, where, unsafe_value):
    c = cg.parse(text)
    f, f_unsafe = cg.to_numpy(cg.simplify(c)), cg.to_numpy(cg.simplify(c, unsafe=True))
    with np.errstate(all="ignore"):
        exact, unsafe = f(x=where), f_unsafe(x=where)
        assert_same_bits(exact, cg.to_numpy(c)(x=where))
    assert_same_bits(unsafe, unsafe_value)
    assert not (np.array_equal(exact, unsafe, equal_nan=True)
                and np.signbit(exact) == np.signbit(unsafe))


def test_power_of_two_reassociation_is_exact_but_not_others():
    assert cg.simplify(cg.parse("4.0*(2.0*x)")).size == 1
    assert cg.simplify(cg.parse("-4.0*(2.0*x)")).size == 1
    assert cg.simplify(cg.parse("0.5*(2.0*x)")).size == 2
    assert cg.simplify(cg.parse("3.0*(2.0*x)")).size == 2


def test_square_rewrite_is_exact_for_batches_and_correctly_rounded_for_scalars():
    c = cg.parse("x**2")
    s = cg.simplify(c)
    assert [s.op(i) for i in range(len(s))] == ["input", "square"]
    x = np.random.default_rng(1).normal(size=10**4) * 1e10
    assert_same_bits(cg.to_numpy(c)(x), cg.to_numpy(s)(x))
    for v in x[:500]:
        got = float(cg.to_numpy(s)(float(v)))
        assert got == float(v) * float(v)  # Python's float product is correctly rounded


# -- circuits, meta, names -------------------------------------------------------------------

def test_pipeline_of_passes_and_dead_nodes():
    c = cg.parse("a = sin(x)\nb = cos(y)\nJ = a*1.0 + (-0.0)", outputs=["J"])
    assert c.inputs == ("x", "y")
    s = cg.simplify(c, passes=[eliminate_dead_nodes, rewrite_exact])
    assert s.inputs == ("x", "y") and s.size == 1
    assert cg.simplify(c, passes=[]) is c


def test_merge_common_merges_what_a_rewrite_made_equal():
    # x - 0.0 is x, so both sines are one node after the rewrite.
    c = cg.parse("J = sin(x - 0.0) * sin(x)")
    assert c.size == 4
    s = cg.simplify(c)
    assert s.size == 2 and {s.op(i) for i in range(len(s))} == {"input", "sin", "mul"}


def test_grad_is_simplified_and_keeps_its_meta():
    c = cg.parse("z = w*x + b - 0.0\na = sin(z)\nJ = 0.5*(a - y)**2")
    raw, g = cg.grad(c, simplify=False), cg.grad(c)
    assert g.size == raw.size - 1  # z - 0.0 is z
    fc = g.meta["forward_count"]
    assert g.op(fc) not in ("input", "const")
    assert all(a >= fc > f for a, f in g.meta["adjoint_of"].items())
    assert {g.name(a) for a in g.meta["adjoint_of"]} >= {"a_bar", "z_bar"}
    source = cg.to_numpy(g).source
    assert "# backward" in source and "z_bar" in source
    point = {"w": 0.3, "x": -1.2, "b": 0.4, "y": 2.0}
    np.testing.assert_allclose(cg.to_numpy(g)(**point), cg.to_numpy(raw)(**point), rtol=1e-15)


def test_tensor_circuits_simplify_and_keep_shapes():
    c = cg.parse("z = W @ x - 0.0\nJ = sum(z ** 2) + sum(x ** 0)",
                 shapes={"W": (2, 3), "x": (3,)})
    s = cg.simplify(c)
    s.validate()
    assert "pow" not in {s.op(i) for i in range(len(s))}
    rng = np.random.default_rng(0)
    point = {"W": rng.normal(size=(2, 3)), "x": rng.normal(size=3)}
    assert_same_bits(cg.to_numpy(c)(**point), cg.to_numpy(s)(**point))
    g = cg.grad(c)
    assert g.output_shapes == {"J": (), "dJ_dW": (2, 3), "dJ_dx": (3,)}


def test_deep_chain_is_simplified_without_recursion():
    b = Builder()
    v = b.input("x")
    for _ in range(20_000):
        v = (v - 0.0) * 0.999
    c = b.finish([("f", v)])
    s = cg.simplify(c)
    assert s.size == 20_000
    assert_same_bits(cg.to_numpy(c)(0.7), cg.to_numpy(s)(0.7))
