"""Loops as circuits (issue 30): cg.scan / cg.fori_loop, one ``scan`` node holding the body.

Values against Python loops; gradients against the unrolled circuit's (bit for bit: the
reverse loop runs the same adjoint nodes in the same order) and central differences; batch
axes against points; the circuit's size independent of the trip count; refusals by name.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import circuitgrad as cg
from circuitgrad.errors import CircuitError, ShapeError
from circuitgrad.primitives.loops import Body
from circuitgrad.transforms.bounds import TENSOR_SIZE_FACTOR
from circuitgrad.transforms.loops import loop_size
from strategies import programs
from tolerances import FD_ERROR

RNG = np.random.default_rng(30)


def rnn(w, u, xs, steps):
    """A small recurrent net: the same step as a scan and as a Python loop (``steps`` None)."""

    def step(carry, x):
        h, total = carry
        h = np.tanh(w * h + u * x)
        return (h, total + np.sum(h * h)), cg.sigmoid(h) * 2.0

    init = (np.zeros(3), 0.0)
    if steps is None:
        (h, total), ys = cg.scan(step, init, xs=xs)
    else:
        carry, ys = init, []
        for t in range(steps):
            carry, y = step(carry, xs[t])
            ys.append(y)
        (h, total), ys = carry, np.stack(ys)
    return total + np.sum(ys * ys) + np.sum(np.sin(h))


SHAPES = {"w": (3,), "u": (3,), "xs": (6, 3)}


@pytest.fixture(scope="module")
def pair():
    looped = cg.trace(lambda w, u, xs: rnn(w, u, xs, None), shapes=SHAPES)
    unrolled = cg.trace(lambda w, u, xs: rnn(w, u, xs, 6), shapes=SHAPES)
    return looped, unrolled


def point():
    return {"w": RNG.normal(size=3), "u": RNG.normal(size=3), "xs": RNG.normal(size=(6, 3))}


def test_a_loop_is_one_node_whose_body_is_a_circuit(pair):
    looped, _ = pair
    looped.validate()
    scans = [i for i in range(len(looped)) if looped.op(i) == "scan"]
    assert len(scans) == 1
    params = looped.params(scans[0])
    body = params["body"]
    assert isinstance(body, Body) and params["length"] == 6
    assert (body.carries, body.xs, body.closures, body.ys) == (2, 1, 2, 1)
    text = repr(looped)
    assert "length=6" in text and f"size={body.size}" in text
    assert "scan[6 steps; body" in PRIMITIVES_label(looped, scans[0])


def PRIMITIVES_label(c, i):
    return cg.PRIMITIVES["scan"].display(c.params(i), [c.shape(a) for a in c.args(i)])


def test_values_agree_with_the_python_loop_bit_for_bit(pair):
    looped, unrolled = pair
    p = point()
    for mode in ("compile", "interpret"):
        assert cg.to_numpy(looped, mode=mode)(**p) == cg.to_numpy(unrolled)(**p)


def test_gradients_agree_with_the_unrolled_circuit_bit_for_bit(pair):
    looped, unrolled = pair
    g, gu = cg.grad(looped), cg.grad(unrolled)
    g.validate()
    p = point()
    for a, b in zip(cg.to_numpy(g)(**p), cg.to_numpy(gu)(**p)):
        np.testing.assert_array_equal(a, b)
    assert cg.check_grad(looped, p) < FD_ERROR
    # the gradient holds the forward loop (saving its carries) and one reverse loop
    scans = [g.params(i) for i in range(len(g)) if g.op(i) == "scan"]
    assert [(s["reverse"], s["save"]) for s in scans] == [(False, True), (True, False)]


def test_the_gradient_loop_is_o_of_the_body(pair):
    looped, _ = pair
    g = cg.grad(looped)
    # counted with each body once: within the tensor bound of the circuit with its body once
    assert loop_size(g) <= TENSOR_SIZE_FACTOR * loop_size(looped)


def test_batch_axes_are_points(pair):
    looped, _ = pair
    f = cg.to_numpy(cg.grad(looped))
    ps = [point() for _ in range(4)]
    batch = f(**{k: np.stack([p[k] for p in ps]) for k in SHAPES})
    for n, p in enumerate(ps):
        for got, want in zip(batch, f(**p)):
            np.testing.assert_array_equal(got[n], want)


def test_jvp_and_hvp_agree_with_the_unrolled_circuit(pair):
    looped, unrolled = pair
    p = point()
    t = {f"{k}_dot": RNG.normal(size=SHAPES[k]) for k in SHAPES}
    for a, b in zip(cg.to_numpy(cg.jvp(looped))(**p, **t), cg.to_numpy(cg.jvp(unrolled))(**p, **t)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    v = {f"v_{k}": RNG.normal(size=SHAPES[k]) for k in SHAPES}
    for a, b in zip(cg.to_numpy(cg.hvp(looped))(**p, **v), cg.to_numpy(cg.hvp(unrolled))(**p, **v)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    h, hu = cg.hessian(looped, wrt="w"), cg.hessian(unrolled, wrt="w")
    np.testing.assert_allclose(cg.to_numpy(h)(**p)[-1], cg.to_numpy(hu)(**p)[-1], rtol=1e-12,
                               atol=1e-13)


def test_second_order_reverse_grad_of_grad():
    c = cg.trace(lambda a: cg.scan(lambda s, _: (np.sin(s) * a + 0.1, None), 0.3, length=5)[0])
    g = cg.grad(c)
    gg = cg.grad(g, output="df_da")

    def f(a):
        s = 0.3
        for _ in range(5):
            s = np.sin(s) * a + 0.1
        return s

    eps, a = 1e-4, 0.9
    second = (f(a + eps) - 2 * f(a) + f(a - eps)) / eps**2
    assert abs(cg.to_numpy(gg)(a)[-1] - second) < 1e-5


def test_reverse_scan_and_closures_of_closures():
    def f(x, k):
        scale = k * 2.0  # computed outside the body: a closure
        total, ys = cg.scan(lambda s, xi: (s * scale + xi, s), 1.0, xs=x, reverse=True)
        return total + np.sum(ys * k)

    c = cg.trace(f, shapes={"x": 4})
    x, k = RNG.normal(size=4), 0.7

    s, ys = 1.0, np.zeros(4)
    for t in (3, 2, 1, 0):
        ys[t] = s
        s = s * (k * 2.0) + x[t]
    assert cg.to_numpy(c)(x, k) == s + np.sum(ys * k)
    assert cg.check_grad(c, {"x": x, "k": k}) < FD_ERROR


def test_loops_inside_loops():
    def looped(a, xs):
        def outer(s, x):
            inner, ys = cg.scan(lambda u, _: (np.sin(u) * a + x * s, u * s), s, length=3)
            return inner + np.sum(ys), inner
        final, ys = cg.scan(outer, 0.2, xs=xs)
        return final + np.sum(ys * ys)

    def unrolled(a, xs):
        s, outs = 0.2, []
        for t in range(4):
            u, ys = s, []
            for _ in range(3):
                ys.append(u * s)
                u = np.sin(u) * a + xs[t] * s
            s = u + np.sum(np.stack(ys))
            outs.append(u)
        return s + np.sum(np.stack(outs) ** 2)

    c, u = cg.trace(looped, shapes={"xs": 4}), cg.trace(unrolled, shapes={"xs": 4})
    p = {"a": 0.7, "xs": np.array([0.1, -0.3, 0.2, 0.05])}
    assert cg.to_numpy(c)(**p) == cg.to_numpy(u)(**p)
    for checkpoints in (None, 1):
        g = cg.grad(c, checkpoints=checkpoints)
        for a, b in zip(cg.to_numpy(g)(**p), cg.to_numpy(cg.grad(u))(**p)):
            np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)
    assert cg.check_grad(c, p) < FD_ERROR
    assert loop_size(cg.grad(c)) < cg.grad(u).size


def test_fori_loop():
    c = cg.trace(lambda x: cg.fori_loop(2, 6, lambda i, s: s * x + i * i, 0.5))
    s = 0.5
    for i in range(2, 6):
        s = s * 1.5 + i * i
    assert cg.to_numpy(c)(1.5) == s
    assert cg.check_grad(c, {"x": 1.5}) < FD_ERROR
    assert cg.fori_loop(3, 3, lambda i, s: s + 1.0, 2.0) == 2.0


def test_on_numbers_scan_evaluates():
    final, ys = cg.scan(lambda s, x: (s + x, s * x), 1.0, xs=np.arange(4.0))
    assert final == 7.0 and ys.tolist() == [0.0, 1.0, 4.0, 12.0]


def test_a_long_loop_stays_small():
    def long(a, steps):
        return cg.scan(lambda s, _: (s + a * np.sin(s), None), 0.1, length=steps)[0]

    c = cg.trace(lambda a: long(a, 100_000))
    g = cg.grad(c)
    assert c.size == 2 and g.size < 20 and loop_size(g) < 40
    assert loop_size(g) == loop_size(cg.grad(cg.trace(lambda a: long(a, 7))))
    assert np.isfinite(cg.to_numpy(c)(1e-6))  # (10⁵ calls of the body: about a second)
    # against the same recurrence and its derivative by hand (1000 steps)
    a, s, ds = 0.01, 0.1, 0.0
    for _ in range(1000):
        s, ds = s + a * np.sin(s), ds + np.sin(s) + a * np.cos(s) * ds
    got = cg.to_numpy(cg.grad(cg.trace(lambda a: long(a, 1000))))(a)
    assert got[0] == s
    np.testing.assert_allclose(got[1], ds, rtol=1e-12)


def test_equal_bodies_share_one_record_and_loops_merge():
    def f(x):
        a = cg.scan(lambda s, _: (np.sin(s) * x, None), 1.0, length=3)[0]
        b = cg.scan(lambda s, _: (np.sin(s) * x, None), 1.0, length=3)[0]
        return a + b

    c = cg.trace(f)
    assert sum(c.op(i) == "scan" for i in range(len(c))) == 1
    one = cg.trace(lambda x: cg.scan(lambda s, _: (np.sin(s) * x, None), 2.0, length=9)[0])
    bodies = {c.params(i)["body"] for i in range(len(c)) if c.op(i) == "scan"}
    bodies |= {one.params(i)["body"] for i in range(len(one)) if one.op(i) == "scan"}
    assert len(bodies) == 1


def test_a_carry_that_changes_shape_is_refused():
    with pytest.raises(ShapeError, match=r"scan: the carry 'carry' has shape \(\) at the start "
                                         r"but \(3,\) after a step"):
        cg.trace(lambda x: cg.scan(lambda s, _: (s * x, None), 0.0, length=2)[0],
                 shapes={"x": 3})
    with pytest.raises(CircuitError, match="another structure"):
        cg.trace(lambda x: cg.scan(lambda s, _: ((s, s), None), x, length=2)[0])
    with pytest.raises(ShapeError, match="disagree on the trip count"):
        cg.trace(lambda x, y: cg.scan(lambda s, xy: (s, None), 0.0, xs=(x, y))[0],
                 shapes={"x": 3, "y": 4})
    with pytest.raises(CircuitError, match="must return a pair"):
        cg.trace(lambda x: cg.scan(lambda s, _: s, x, length=2)[0])


def test_the_other_lowerings_refuse_by_name(pair):
    looped, _ = pair
    for lower in (cg.scalarize,):  # (to_c and to_tape run loops: tests/lower/test_scan_c.py)
        with pytest.raises(CircuitError, match="scan.*to_numpy"):
            lower(looped)
    with pytest.raises(CircuitError, match="scalarize"):  # (whose refusal names scan)
        cg.to_sympy(looped)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 5), st.floats(-1.5, 1.5), st.booleans())
def test_random_trip_counts_against_python_loops(steps, a, reverse):
    xs = np.linspace(-1.0, 1.0, steps).reshape(steps, 1) * np.ones((1, 2))

    def body(c, x):
        return np.cos(c) * a + x, np.sum(c) * x

    c = cg.trace(lambda w, xs: cg.scan(body, w, xs=xs, reverse=reverse),
                 shapes={"w": 2, "xs": (steps, 2)})
    got = cg.to_numpy(c)(np.array([0.3, -0.2]), xs)
    carry, ys = np.array([0.3, -0.2]), [None] * steps
    for t in (reversed(range(steps)) if reverse else range(steps)):
        carry, ys[t] = body(carry, xs[t])
    np.testing.assert_array_equal(got[0], carry)
    np.testing.assert_array_equal(got[1], np.array(ys).reshape(steps, 2))
    if steps:
        loss = cg.trace(lambda w, xs: np.sum(cg.scan(body, w, xs=xs, reverse=reverse)[1]),
                        shapes={"w": 2, "xs": (steps, 2)})
        assert cg.check_grad(loss, {"w": np.array([0.3, -0.2]), "xs": xs}) < FD_ERROR


@pytest.mark.parametrize("steps", [1, 50])
def test_the_grad_size_bound_with_bodies_counted_once(steps):
    bodies = [lambda s, a: np.sin(s) * a, lambda s, a: np.tanh(s * a + s * s) / (1.0 + a * a),
              lambda s, a: np.exp(-s) * np.log1p(a * a) - s]
    for body in bodies:
        c = cg.trace(lambda a: cg.scan(lambda s, _: (body(s, a), None), 0.2, length=steps)[0])
        assert loop_size(cg.grad(c)) <= TENSOR_SIZE_FACTOR * loop_size(c)
    # xs the body ignores and closures it reads once: their adjoints cost nothing per leaf
    def many(a, xs):
        ws = [a * k for k in range(1, 9)]
        return cg.scan(lambda s, x: (s * ws[0] + sum(ws[1:]) * s, None), a,
                       xs=(xs, xs * 2.0, xs * 3.0))[0]

    c = cg.trace(many, shapes={"xs": steps})
    g = cg.grad(c)
    assert loop_size(g) <= TENSOR_SIZE_FACTOR * loop_size(c)
    assert cg.check_grad(c, {"a": 0.3, "xs": np.linspace(0, 1, steps)}) < FD_ERROR


def inline(c, **given):
    """The output of circuit ``c`` built from traced values (or numbers) for its inputs."""
    values = {}
    for i, op, args, params, _ in c.records():
        if op == "input":
            values[i] = given[params]
        elif op == "const":
            values[i] = params
        else:
            values[i] = cg.Value(*_node(values, op, args, params))
    return values[c.output_ids[0]]


def _node(values, op, args, params):
    vs = [values[a] for a in args]
    b = next(v.builder for v in vs if isinstance(v, cg.Value))
    return b, b.apply(op, *vs, **(params or {})).id


@settings(max_examples=25, deadline=None)
@given(programs(max_ops=6), st.integers(1, 4), st.booleans())
def test_random_bodies_against_their_unrolled_loops(program, steps, checkpointed):
    """A random program p(x0, x1, x2) as the step s ← tanh(p(s, x_t, w)), y_t = s·x_t: the
    loop's values are the unrolled loop's bit for bit, its gradient (stored or checkpointed)
    theirs to rounding (a closure's adjoint sums per step, then over the steps)."""
    text, point, _ = program
    p = cg.parse(text)
    names = {"x0": "s", "x1": "x", "x2": "w"}

    def step(s, x, w):
        given = {n: {"s": s, "x": x, "w": w}[names[n]] for n in p.inputs}
        out = inline(p, **given)
        new = np.tanh(out) if isinstance(out, cg.Value) else np.tanh(out) + 0.0 * s
        return new, s * x

    def looped(s0, xs, w):
        final, ys = cg.scan(lambda s, x: step(s, x, w), s0, xs=xs)
        return final + np.sum(ys)

    def unrolled(s0, xs, w):
        s, total = s0, 0.0
        for t in range(steps):
            s, y = step(s, xs[t], w)
            total = total + y
        return s + total

    shapes = {"xs": (steps,)}
    c, u = cg.trace(looped, shapes=shapes), cg.trace(unrolled, shapes=shapes)
    at = {"s0": point.get("x0", 0.5), "xs": np.linspace(-0.5, 0.7, steps) + point.get("x1", 0.3),
          "w": point.get("x2", 0.8)}
    with np.errstate(all="ignore"):
        got, want = cg.to_numpy(c)(**at), cg.to_numpy(u)(**at)
        np.testing.assert_array_equal(got, want)
        g = cg.grad(c, checkpoints=1 if checkpointed else None)
        for a, b in zip(cg.to_numpy(g)(**at), cg.to_numpy(cg.grad(u))(**at)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# -- checkpointing: grad(c, checkpoints=s), the binomial schedule ------------------------------

def fewest_recomputations(steps, free):
    """The fewest forward steps any schedule recomputes to reverse ``steps`` steps from a stored
    carry with ``free`` more checkpoints: a dynamic program over the first split (an oracle
    independent of revolve's closed form)."""
    table = {}
    for s in range(free + 1):
        for t in range(steps + 1):
            if t <= 1:
                table[t, s] = 0
            elif s == 0:
                table[t, s] = t * (t - 1) // 2
            else:
                table[t, s] = min(m + table[t - m, s - 1] + table[m, s] for m in range(1, t))
    return table[steps, free]


def test_revolve_is_the_fewest_recomputations():
    from circuitgrad.primitives.loops import revolve_cost

    for steps in range(1, 40):
        for free in range(1, 5):
            assert revolve_cost(steps, free) == fewest_recomputations(steps, free), (steps, free)


@pytest.mark.parametrize("checkpoints", [1, 2, 3, 6])
def test_checkpointed_gradients_recompute_as_revolve_predicts(pair, checkpoints):
    from circuitgrad.primitives import loops

    looped, _ = pair
    steps = 6
    g = cg.grad(looped, checkpoints=checkpoints)
    g.validate()
    scans = [g.params(i) for i in range(len(g)) if g.op(i) == "scan"]
    p = point()
    loops.STATS.update(forward_steps=0, adjoint_steps=0, most_checkpoints=0)
    got = cg.to_numpy(g)(**p)
    for a, b in zip(got, cg.to_numpy(cg.grad(looped))(**p)):
        np.testing.assert_array_equal(a, b)  # the same numbers, recomputed
    if checkpoints >= steps:  # every carry fits: stored, as without checkpoints
        assert [s["save"] for s in scans] == [True, False] and loops.STATS["adjoint_steps"] == 0
        return
    assert scans[1]["recompute"] == scans[0]["body"] and scans[1]["checkpoints"] == checkpoints
    assert loops.STATS["forward_steps"] == loops.revolve_cost(steps, checkpoints)
    assert loops.STATS["adjoint_steps"] == steps
    assert loops.STATS["most_checkpoints"] <= checkpoints + 1  # (the initial carry, and s)


def test_checkpointed_long_loop_and_its_refusals():
    from circuitgrad.primitives import loops

    steps = 500
    c = cg.trace(lambda a: cg.scan(lambda s, _: (s + a * np.sin(s), None), 0.1,
                                   length=steps)[0])
    g = cg.grad(c, checkpoints=4)
    loops.STATS.update(forward_steps=0, adjoint_steps=0, most_checkpoints=0)
    got = cg.to_numpy(g)(0.01)
    want = cg.to_numpy(cg.grad(c))(0.01)
    assert got[0] == want[0] and got[1] == want[1]
    # each step recomputed at most r = 7 times (C(5 + 7, 5) >= 500): 5 carries held, not 500
    assert loops.STATS["forward_steps"] == loops.revolve_cost(steps, 4) <= 7 * steps
    assert loops.STATS["most_checkpoints"] == 5
    with pytest.raises(CircuitError, match="checkpointed adjoint loop"):
        cg.jvp(g)
    with pytest.raises(CircuitError, match="checkpoints must be an integer >= 1"):
        cg.grad(c, checkpoints=0)
    batch = cg.to_numpy(g)(np.array([0.01, 0.02]))
    assert batch[1][0] == got[1] and batch[1][1] == cg.to_numpy(g)(0.02)[1]


def test_checkpoints_apply_to_a_loop_whose_carry_is_read_directly():
    # (without ys, cg.scan's result is the carry itself, read by other ops than getitem: the
    # loop could not be saved in place, and grad(checkpoints=) once ignored it silently)
    def f(x):
        c, _ = cg.scan(lambda c, _: (c * 0.999 + np.sin(c) * 0.001, None), x, length=50)
        return np.sum(c * c)

    c = cg.trace(f, shapes={"x": (4,)})
    g = cg.grad(c, checkpoints=3)
    assert any(g.params(i).get("recompute") is not None
               for i in range(len(g)) if g.op(i) == "scan")
    x = np.linspace(0.1, 1.0, 4)
    for a, b in zip(cg.to_numpy(g)(x), cg.to_numpy(cg.grad(c))(x)):
        np.testing.assert_array_equal(a, b)


def test_fori_loop_of_more_steps_than_memory_holds_is_refused_by_name():
    with pytest.raises(cg.CircuitError, match="fori_loop: 1000000000000 steps are too many"):
        cg.trace(lambda x: cg.fori_loop(0, 10**12, lambda i, s: s * x, 1.0))


def test_the_adjoint_and_tangent_bodies_kept_are_bounded(monkeypatch):
    # keyed by body digest: a long process making many loops must not grow them without end
    from circuitgrad.primitives import loops as table
    from circuitgrad.transforms import loops as rules

    monkeypatch.setattr(table, "_BOUND_LIMIT", 2)
    monkeypatch.setattr(rules, "_ADJOINT_BODIES", {})
    monkeypatch.setattr(rules, "_TANGENT_BODIES", {})
    for k in range(2, 6):
        c = cg.trace(lambda x, k=k: cg.scan(lambda s, _: (s * x + float(k), None), x,
                                            length=3)[0])
        g, t = cg.to_numpy(cg.grad(c))(0.5), cg.to_numpy(cg.jvp(c))(0.5, 1.0)
        s, ds = 0.5, 1.0
        for _ in range(3):
            s, ds = s * 0.5 + k, ds * 0.5 + s
        assert abs(float(g[1]) - ds) < 1e-12 and abs(float(t[1]) - ds) < 1e-12
    assert len(rules._ADJOINT_BODIES) == 2 and len(rules._TANGENT_BODIES) == 2


def test_scalar_size_counts_nested_bodies_without_recursion():
    # each distinct body once, the nested ones too (a work list, no recursion on nesting)
    from circuitgrad.transforms.scalarize import scalar_size

    def f(x):
        inner = lambda s, _: (s * x + 1.0, None)  # noqa: E731
        middle = lambda s, _: (cg.scan(inner, s, length=2)[0], None)  # noqa: E731
        return cg.scan(middle, x, length=3)[0] + cg.scan(inner, x, length=4)[0]

    c = cg.trace(f)
    # s·x + 1 in the nested loop and in the second (their bodies' digests differ: the second
    # body's 1.0 was made before its mul, in the outer builder), then the add
    assert scalar_size(c) == 2 + 2 + 1
