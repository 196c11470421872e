"""Loops keep their carries in place for the adjoint (transforms/loop_carries.py), and loops
nest at most MAX_NESTING levels (issue 30).

A gradient runs each forward loop once: the value reads the saved loop's leaves, whatever
reads the loop (getitem, sum, reshape, another loop, an output, a loop inside a body). Counted
two ways: the scan nodes of the gradient circuit, and the calls of each body when it runs.
Each case is checked against the unrolled circuit's gradient and central differences.
"""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import circuitgrad as cg
from circuitgrad.builder import Builder
from circuitgrad.circuit import Circuit
from circuitgrad.errors import CircuitError
from circuitgrad.primitives import loops
from circuitgrad.primitives.loops import MAX_NESTING, Body
from circuitgrad.transforms.jacobian import jacobian_sweep
from circuitgrad.transforms.loop_carries import saving_carries
from tolerances import FD_ERROR


@pytest.fixture
def calls(monkeypatch):
    """``calls[digest]``: how many times each body ran (one call a step), counted by
    wrapping :attr:`Body.function`, which every loop reads when it runs."""
    counted = Counter()
    plain = Body.function

    def function(self):
        fn = plain.fget(self)

        def call(*args):
            counted[self.digest] += 1
            return fn(*args)

        return call

    monkeypatch.setattr(Body, "function", property(function))
    return counted


def scans(c):
    return [c.params(i) for i in range(len(c)) if c.op(i) == "scan"]


def direct_readers(c):
    """The ops that read a loop's packed result other than through getitem (or outputs)."""
    loops_ = {i for i in range(len(c)) if c.op(i) == "scan"}
    got = {c.op(i) for i in range(len(c)) if c.op(i) != "getitem"
           and set(c.args(i)) & loops_}
    return got | ({"output"} if set(c.output_ids) & loops_ else set())


def step(s, a):
    return np.sin(s) * a + 0.1 * s


# (looped, unrolled, shapes, point, the direct readers the looped circuit has)
CASES = {
    "getitem": (lambda a, x: np.sum(cg.scan(lambda s, _: (step(s, a), s * s), x, length=7)[1]),
                lambda a, x: sum(np.sum(s * s) for s in _states(a, x, 7)[:-1]),
                {"x": 3}, set()),
    "sum": (lambda a, x: np.sum(cg.scan(lambda s, _: (step(s, a), None), x, length=7)[0]),
            lambda a, x: np.sum(_states(a, x, 7)[-1]), {"x": 3}, {"sum"}),
    "reshape": (lambda a, x: np.sum(cg.scan(lambda s, _: (step(s, a), None), x, length=7)[0]
                                    * np.arange(6.0).reshape(2, 3)),
                lambda a, x: np.sum(_states(a, x, 7)[-1] * np.arange(6.0).reshape(2, 3)),
                {"x": (2, 3)}, {"reshape"}),
    "another loop": (
        lambda a, x: np.sum(cg.scan(lambda s, _: (s * a + 0.5, None),
                                    cg.scan(lambda s, _: (step(s, a), None), x, length=7)[0],
                                    length=4)[0]),
        lambda a, x: np.sum(_affine(_states(a, x, 7)[-1], a, 4)), {"x": 3}, {"scan", "sum"}),
    "read twice": (
        lambda a, x: (lambda s: np.sum(s) * s[0])(
            cg.scan(lambda s, _: (step(s, a), None), x, length=7)[0]),
        lambda a, x: (lambda s: np.sum(s) * s[0])(_states(a, x, 7)[-1]), {"x": 3}, {"sum"}),
}


def _states(a, x, n):
    s, out = x, [x]
    for _ in range(n):
        s = step(s, a)
        out.append(s)
    return out


def _affine(s, a, n):
    for _ in range(n):
        s = s * a + 0.5
    return s


def _point(shapes):
    rng = np.random.default_rng(7)
    return {"a": 0.8, **{k: rng.uniform(0.1, 0.9, size=s) for k, s in shapes.items()}}


@pytest.mark.parametrize("case", list(CASES))
def test_the_gradient_runs_each_forward_loop_once(case, calls):
    looped, unrolled, shapes, readers = CASES[case]
    c = cg.trace(looped, shapes=shapes)
    assert direct_readers(c) == readers  # (the case reads its loop the way it says)
    g = cg.grad(c)
    g.validate()
    forward = [s for s in scans(g) if not s["reverse"]]
    assert len(forward) == len(scans(c)) and all(s["save"] for s in forward)
    assert len(scans(g)) == 2 * len(scans(c))  # one reverse loop each
    p = _point(shapes)
    got = cg.to_numpy(g)(**p)
    for s in scans(c):  # each body ran once a step: the forward loop, once
        assert calls[s["body"].digest] == s["length"]
    u = cg.trace(unrolled, shapes=shapes)
    for a, b in zip(got, cg.to_numpy(cg.grad(u))(**p)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert cg.check_grad(c, p) < FD_ERROR


def test_saving_keeps_every_value_and_output():
    # the loop is the circuit's output itself (one carry, no ys: the packed result is it)
    c = cg.trace(lambda a, x: cg.scan(lambda s, _: (step(s, a), None), x, length=5)[0],
                 shapes={"x": 3})
    assert direct_readers(c) == {"output"}
    s = saving_carries(c)
    s.validate()
    assert [p["save"] for p in scans(s)] == [True] and s.output_shapes == c.output_shapes
    p = _point({"x": 3})
    np.testing.assert_array_equal(cg.to_numpy(s)(**p), cg.to_numpy(c)(**p))
    assert saving_carries(s) is s  # (nothing left to save)


def test_the_reverse_jacobian_of_a_loop_output_runs_it_once(calls):
    c = cg.trace(lambda a, x: cg.scan(lambda s, _: (step(s, a), None), x, length=5)[0],
                 shapes={"x": 3})
    u = cg.trace(lambda a, x: _states(a, x, 5)[-1], shapes={"x": 3})
    p = _point({"x": 3})
    j = cg.jacobian(c, mode="reverse")
    forward = [s for s in scans(j) if not s["reverse"]]
    assert len(forward) == 1 and forward[0]["save"]
    got = cg.to_numpy(j)(**p)
    assert calls[scans(c)[0]["body"].digest] == 5
    want = cg.to_numpy(cg.jacobian(u, mode="reverse"))(**p)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    sweep = jacobian_sweep(c, mode="reverse")  # (jacobian_function's: the seeds a batch)
    assert [(s["reverse"], s["save"]) for s in scans(sweep)] == [(False, True), (True, False)]
    calls.clear()
    got = cg.jacobian_function(c, mode="reverse", lower=cg.to_numpy)(**p)
    assert calls[scans(c)[0]["body"].digest] == 5  # (one loop over the batch of 3 seeds)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_checkpointed_runs_the_loop_once_plus_revolves_recomputation(calls):
    c = cg.trace(lambda a, x: np.sum(cg.scan(lambda s, _: (step(s, a), None), x,
                                             length=12)[0]), shapes={"x": 3})
    g = cg.grad(c, checkpoints=2)
    assert [(s["reverse"], s["save"]) for s in scans(g)] == [(False, False), (True, False)]
    p = _point({"x": 3})
    got = cg.to_numpy(g)(**p)
    assert calls[scans(c)[0]["body"].digest] == 12 + loops.revolve_cost(12, 2)
    for a, b in zip(got, cg.to_numpy(cg.grad(c))(**p)):
        np.testing.assert_array_equal(a, b)


def test_a_loop_read_directly_inside_a_body(calls):
    def looped(a, x0, xs):
        def outer(s, x):
            inner = cg.scan(lambda u, _: (np.sin(u) * a + x * s, None), s, length=3)[0]
            return inner * 0.5, None  # (one carry, no ys: `inner` is the packed result)
        return np.sum(cg.scan(outer, x0, xs=xs)[0])

    def unrolled(a, x0, xs):
        s = x0
        for t in range(4):
            u = s
            for _ in range(3):
                u = np.sin(u) * a + xs[t] * s
            s = u * 0.5
        return np.sum(s)

    shapes = {"x0": 2, "xs": 4}
    c, u = cg.trace(looped, shapes=shapes), cg.trace(unrolled, shapes=shapes)
    outer = scans(c)[0]["body"]
    inner = next(p["body"] for p in scans(outer.circuit))
    assert direct_readers(outer.circuit) == {"mul"}
    p = {"a": 0.7, "x0": np.array([0.2, -0.4]), "xs": np.array([0.1, -0.3, 0.2, 0.05])}
    g = cg.grad(c)
    got = cg.to_numpy(g)(**p)
    # the inner loop runs 3 steps in each of the 4 outer steps, and again in each adjoint
    # step (the outer loop keeps only its own carries): not a third time
    assert calls[inner.digest] == 2 * 4 * 3 and calls[outer.digest] == 4
    for a, b in zip(got, cg.to_numpy(cg.grad(u))(**p)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert cg.check_grad(c, p) < FD_ERROR


def test_second_derivatives_of_a_loop_read_directly():
    c = cg.trace(lambda a, x: np.sum(cg.scan(lambda s, _: (step(s, a), None), x,
                                             length=5)[0]), shapes={"x": 2})
    u = cg.trace(lambda a, x: np.sum(_states(a, x, 5)[-1]), shapes={"x": 2})
    p = _point({"x": 2})
    gg, ggu = cg.grad(cg.grad(c), output="df_da"), cg.grad(cg.grad(u), output="df_da")
    for a, b in zip(cg.to_numpy(gg)(**p), cg.to_numpy(ggu)(**p)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    h, hu = cg.hessian(c), cg.hessian(u)
    for a, b in zip(cg.to_numpy(h)(**p), cg.to_numpy(hu)(**p)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert cg.check_grad(cg.grad(c), p, output="df_da") < FD_ERROR


def test_saving_renumbers_the_meta():
    c = cg.trace(lambda a, x: np.sum(cg.scan(lambda s, _: (step(s, a), None), x,
                                             length=3)[0]), shapes={"x": 2}, lines=True)
    s = saving_carries(c)
    assert len(s) == len(c) + 1 and len(s.meta["lines"]) == len(s)
    view = next(i for i in range(len(s)) if s.op(i) == "getitem")
    assert s.meta["lines"][view] == s.meta["lines"][view - 1]  # (the loop's line)
    j = cg.jvp(c)  # (the primal loop, read by sum, before the tangent nodes)
    s = saving_carries(j)
    assert s.meta["tangent_count"] == j.meta["tangent_count"] + 1
    assert s.op(s.meta["tangent_count"] - 1) == "sum"  # (the last primal node still)
    loop = next(i for i in range(len(c)) if c.op(i) == "scan")
    marked = Circuit(*[list(col) for col in c.columns[:4]], dict(c.names),
                     list(zip(c.inputs, c.input_ids)), list(zip(c.outputs, c.output_ids)),
                     {"forward_count": len(c), "adjoint_of": {len(c) - 1: loop}})
    s = saving_carries(marked)
    assert s.meta == {"forward_count": len(c) + 1, "adjoint_of": {len(c): loop}}


# -- nesting: at most MAX_NESTING levels --------------------------------------------------------

def nested(depth, limit=None):
    """A loop ``depth`` levels deep (built level by level, no recursion): the innermost body
    is ``s -> sin(s)·a + 0.1·s``, each level above runs the one below once, and the circuit
    runs the whole twice: ``f(x) = g(g(x))``, g the innermost step."""
    b = Builder()
    s, a = b.input("s"), b.input("a")
    body = Body(b.finish([("s", step(s, a))]), carries=1, xs=0)
    for _ in range(depth - 1):
        b = Builder()
        s, a = b.input("s"), b.input("a")
        packed = b.apply("scan", s, a, body=body, length=1, reverse=False, save=False)
        body = Body(b.finish([("s", b.apply("getitem", packed, index=(0,)))]), carries=1, xs=0)
    b = Builder()
    x, a = b.input("x"), b.input("a")
    packed = b.apply("scan", x, a, body=body, length=2, reverse=False, save=False)
    return b.finish([("f", b.apply("getitem", packed, index=(0,)))])


def test_loops_nest_max_nesting_levels_and_differentiate():
    assert MAX_NESTING == 64
    c = nested(MAX_NESTING)
    assert scans(c)[0]["body"].depth == MAX_NESTING
    x, a = 0.3, 0.8
    g1 = step(x, a)
    dg = lambda s: np.cos(s) * a + 0.1  # noqa: E731
    f, df_dx = step(g1, a), dg(g1) * dg(x)
    df_da = np.sin(g1) + dg(g1) * np.sin(x)
    got = cg.to_numpy(cg.grad(c))(x=x, a=a)
    np.testing.assert_allclose([got.f, got.df_dx, got.df_da], [f, df_dx, df_da], rtol=1e-14)
    t = cg.to_numpy(cg.jvp(c))(x=x, a=a, x_dot=1.0, a_dot=0.0)
    np.testing.assert_allclose(t[-1], df_dx, rtol=1e-14)
    assert cg.to_dot(c).source.count("cluster_body") == MAX_NESTING


def test_deeper_loops_are_refused_by_name():
    with pytest.raises(CircuitError, match=r"loops nested 65 levels deep.*limit of 64 levels "
                                           r".*MAX_NESTING"):
        nested(MAX_NESTING + 1)

    def make(d):  # 300 levels traced: refused when the 65th is made, not a RecursionError
        if d == 1:
            return lambda s, _: (np.sin(s) * 0.9, None)
        inner = make(d - 1)
        return lambda s, _: (cg.scan(inner, s, length=1)[0], None)

    with pytest.raises(CircuitError, match="MAX_NESTING"):
        cg.trace(lambda x: cg.scan(make(300), x, length=2)[0])


def test_from_json_refuses_a_document_nested_too_deep(monkeypatch):
    monkeypatch.setattr(loops, "MAX_NESTING", 300)
    text = cg.to_json(nested(300))  # (written without recursion)
    monkeypatch.setattr(loops, "MAX_NESTING", 64)
    with pytest.raises(CircuitError, match="body 64: scan: loops nested 65 levels deep"):
        cg.from_json(text)
    shallow = cg.from_json(cg.to_json(nested(MAX_NESTING)))
    assert float(cg.to_numpy(shallow)(x=0.3, a=0.8)) == float(
        cg.to_numpy(nested(MAX_NESTING))(x=0.3, a=0.8))


def test_scalar_inputs_are_made_at_once_and_refuse_a_name_taken():
    # (scalarize names a loop's packed result with them: a million saved carries at once)
    b = Builder()
    x = b.input("x")
    assert b.scalar_inputs(["a", "b"]) == [1, 2] and b.input("a").id == 1
    assert (x + b.input("b")).id == 3
    for names in (["x"], ["c", "c"]):
        with pytest.raises(CircuitError, match="scalar_inputs: a name is given twice"):
            b.scalar_inputs(names)
    assert b.finish([("f", 3)]).inputs == ("x", "a", "b")


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([(), (3,), (2, 2)]), st.booleans(), st.integers(1, 5),
       st.sampled_from([None, 1, 2]), st.sampled_from(["sum", "square", "loop"]))
def test_random_loops_and_readers_run_once_and_match_the_unrolled_gradient(
        shape, with_ys, steps, checkpoints, reader):
    """A loop of a random carry shape, with or without ys, read by a random op, its gradient
    stored or checkpointed: the body's calls are the loop's steps (and revolve's), and the
    gradient is the unrolled one's."""
    def body(s, a):
        return step(s, a), (s * a if with_ys else None)

    def total(v):
        return np.sum(v) if shape else v * 1.0

    def read(final, ys, a):
        out = {"sum": total, "square": lambda v: total(v * v),
               "loop": lambda v: total(cg.scan(lambda u, _: (u * a + 0.5, None), v,
                                               length=2)[0]) if isinstance(v, cg.Value)
               else total(_affine(v, a, 2))}[reader](final)
        return out if ys is None else out + np.sum(ys)

    def looped(a, x):
        final, ys = cg.scan(lambda s, _: body(s, a), x, length=steps)
        return read(final, ys, a)

    def unrolled(a, x):
        states = _states(a, x, steps)
        ys = np.stack([s * a for s in states[:-1]]) if with_ys else None
        return read(states[-1], ys, a)

    shapes = {"x": shape}
    c, u = cg.trace(looped, shapes=shapes), cg.trace(unrolled, shapes=shapes)
    p = _point(shapes)
    counted = Counter()
    plain = Body.function

    def function(self):
        fn = plain.fget(self)

        def call(*args):
            counted[self.digest] += 1
            return fn(*args)

        return call

    Body.function = property(function)
    try:
        got = cg.to_numpy(cg.grad(c, checkpoints=checkpoints))(**p)
    finally:
        Body.function = plain
    first = scans(c)[0]
    marked = checkpoints is not None and steps > checkpoints
    assert counted[first["body"].digest] == steps + (
        loops.revolve_cost(steps, checkpoints) if marked else 0)
    for a, b in zip(got, cg.to_numpy(cg.grad(u))(**p)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
