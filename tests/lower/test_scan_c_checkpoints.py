"""Checkpointed adjoint loops (``grad(c, checkpoints=s)``) in to_c and to_tape.

The reverse scan of a checkpointed gradient recomputes the carries from the initial one and
at most ``s`` stored ones, by the binomial schedule of ``primitives.loops`` (revolve): to_c
walks it in C with an explicit stack, to_tape in Python over the body tapes. The recomputed
carries are the stored ones bit for bit (the same body function), so the values are to_c's
non-checkpointed gradient bit for bit, at every width and thread count, and a batch is its
points; within COMPILED_RTOL of to_numpy's (docs/semantics.md). The counters say the schedule
is revolve's (``revolve_cost`` forward steps), and the memory is the checkpoints', not the
trip count's.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import circuitgrad as cg
from circuitgrad.primitives import loops

from strategies import programs
from tolerances import COMPILED_RTOL

from test_scan_c import WIDTHS  # noqa: E402  (and its step, through scanned below)


def scanned(s0, xs, w):
    import test_scan_c

    return test_scan_c.scanned(s0, xs, w)[0]


STEPS = 9
SHAPES = {"s0": 3, "xs": (STEPS, 3), "w": 3}
rng = np.random.default_rng(31)
POINT = {"s0": rng.normal(size=3), "xs": rng.normal(size=(STEPS, 3)), "w": rng.normal(size=3)}


def same_bits(a, b):
    a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(np.asarray(u).view(np.int64), np.asarray(v).view(np.int64))


def entries(result):
    return np.concatenate([np.ravel(p) for p in result])


def checkpointed(g):
    return [g.params(i) for i in range(len(g))
            if g.op(i) == "scan" and g.params(i).get("recompute") is not None]


@pytest.fixture(scope="module")
def circuit():
    return cg.trace(scanned, shapes=SHAPES)


@pytest.mark.parametrize("checkpoints", [1, 3])
@pytest.mark.parametrize("width", WIDTHS)
def test_the_checkpointed_gradient_is_the_stored_one_bit_for_bit(circuit, checkpoints, width):
    g = cg.grad(circuit, checkpoints=checkpoints)
    assert checkpointed(g)
    f = cg.to_c(g, width=width)
    assert "_revolve_split(stop - start" in f.source
    got = f(**POINT)
    same_bits(got, cg.to_c(cg.grad(circuit), width=width)(**POINT))
    np.testing.assert_allclose(entries(got), entries(cg.to_numpy(g)(**POINT)),
                               rtol=COMPILED_RTOL, atol=1e-14)
    if width == 1:
        same_bits(got, cg.to_tape(g)(**POINT))


def test_a_batch_is_its_points_at_every_width_and_thread_count(circuit):
    g = cg.grad(circuit, checkpoints=2)
    batch = {k: np.stack([v + 0.05 * j for j in range(13)]) for k, v in POINT.items()}
    for width in WIDTHS:
        f = cg.to_c(g, width=width, threads=1)
        got = f(**batch)
        stored = cg.to_c(cg.grad(circuit), width=width)(**batch)  # (libm's or libmvec's)
        same_bits(tuple(got), tuple(stored))
        for j in (0, 7, 12):
            same_bits(tuple(np.asarray(v)[j] for v in got),
                      tuple(f(**{k: v[j] for k, v in batch.items()})))
        f.threads, f._work = 3, 10**6  # (the batch split over three threads)
        same_bits(tuple(f(**batch)), tuple(got))
    same_bits(tuple(cg.to_tape(g)(**batch)), tuple(cg.to_c(g, width=1)(**batch)))


def test_the_schedule_is_revolve_counted_in_c_and_in_the_tape():
    for length, checkpoints in ((50, 1), (50, 3), (50, 49), (200, 5)):
        c = cg.trace(lambda a, n=length: cg.scan(lambda s, _: (s + a * np.sin(s), None), 0.1,
                                                 length=n)[0])
        g = cg.grad(c, checkpoints=checkpoints)
        stored = cg.to_c(cg.grad(c), width=1)(0.01)
        for width in (1, max(WIDTHS)):
            f = cg.to_c(g, width=width)
            before = f.loop_stats
            same_bits(tuple(f(np.full(3, 0.01))), tuple(np.full(3, v) for v in stored))
            after = f.loop_stats
            vectors = -(-3 // width)  # (each vector of points runs the schedule)
            assert after["forward_steps"] - before["forward_steps"] == \
                vectors * loops.revolve_cost(length, checkpoints)
            assert after["adjoint_steps"] - before["adjoint_steps"] == vectors * length
            assert after["most_checkpoints"] == min(checkpoints + 1, length)
        loops.STATS.update(forward_steps=0, adjoint_steps=0, most_checkpoints=0)
        same_bits(tuple(cg.to_tape(g)(0.01)), tuple(stored))
        assert loops.STATS["forward_steps"] == loops.revolve_cost(length, checkpoints)
        assert loops.STATS["adjoint_steps"] == length
        assert loops.STATS["most_checkpoints"] == min(checkpoints + 1, length)


def test_the_split_in_c_is_revolve_split():
    c = cg.trace(lambda a: cg.scan(lambda s, _: (s * a, None), a, length=5)[0])
    f = cg.to_c(cg.grad(c, checkpoints=2), width=1)
    split = getattr(f._lib, "f_revolve_split")
    split.argtypes, split.restype = (ctypes.c_long, ctypes.c_long), ctypes.c_long
    cases = [(steps, free) for steps in range(1, 130) for free in range(1, 14)]
    cases += [(10**6, 20), (10**6, 316), (10**6, 1), (10**5, 20), (2**31 - 1, 1),
              (2**31 - 1, 30), (2**31 - 1, 10**6), (1000, 10**5), (7, 10**9)]
    for steps, free in cases:
        assert split(steps, free) == loops.revolve_split(steps, free), (steps, free)


def test_a_long_loop_holds_its_checkpoints_not_its_steps():
    # 10⁵ and 10⁶ steps of a 10-vector carry, 20 checkpoints: the program's registers and
    # the loop's scratch do not grow with the trip count, and neither does the process's
    # peak memory (stored carries would be 10⁵ × 10 registers × 8 lanes: 64 MB; 640 MB)
    script = textwrap.dedent("""
        import resource, numpy as np, circuitgrad as cg
        from circuitgrad.primitives.loops import revolve_cost

        def gradient(steps):
            def loss(x0, k):
                x, _ = cg.scan(lambda x, _: (x + 1e-3 * (np.roll(x, 1) * k - x), None), x0,
                               length=steps)
                return 0.5 * np.sum(x * x)
            return cg.to_c(cg.grad(cg.trace(loss, shapes={"x0": 10, "k": ()}), checkpoints=20))

        f, short, huge = gradient(100_000), gradient(1000), gradient(1_000_000)
        x0 = np.linspace(0.1, 1.0, 10)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out, last = f(x0, 0.5), huge(x0, 0.5)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(f._program.nregs, short._program.nregs, huge._program.nregs, grown,
              f.loop_stats["forward_steps"], revolve_cost(100_000, 20),
              huge.loop_stats["forward_steps"], revolve_cost(1_000_000, 20),
              int(np.isfinite(out[1]).all() and np.isfinite(last[1]).all()))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    nregs, short_nregs, huge_nregs, grown_kb, forward, cost, huge_forward, huge_cost, finite = \
        map(int, done.stdout.split())
    assert nregs == short_nregs == huge_nregs < 200  # (1000 times the steps: the same program)
    assert grown_kb < 8 * 1024  # kB: far below the 64 MB the stored carries take at 10⁵
    assert forward == cost and huge_forward == huge_cost and finite


def test_a_checkpointed_gradient_of_nested_loops():
    def nested(a, xs):
        def outer(s, x):
            inner, ys = cg.scan(lambda u, _: (np.sin(u) * a + x * s, u * s), s, length=3)
            return inner + np.sum(ys), inner
        final, ys = cg.scan(outer, 0.2, xs=xs)
        return final + np.sum(ys * ys)

    c = cg.trace(nested, shapes={"xs": 6})
    p = {"a": 0.7, "xs": np.array([0.1, -0.3, 0.2, 0.05, 0.4, -0.1])}
    stored = cg.to_c(cg.grad(c), width=1)(**p)
    for checkpoints in (1, 2):  # (the outer loop checkpointed; its bodies run the inner loops)
        g = cg.grad(c, checkpoints=checkpoints)
        for width in (1, max(WIDTHS)):
            same_bits(cg.to_c(g, width=width)(**p), cg.to_c(cg.grad(c), width=width)(**p))
        same_bits(cg.to_tape(g)(**p), stored)
        np.testing.assert_allclose(entries(cg.to_c(g)(**p)), entries(cg.to_numpy(g)(**p)),
                                   rtol=COMPILED_RTOL, atol=1e-15)


@settings(max_examples=5, deadline=None)
@given(st.integers(2, 12), st.integers(1, 4), st.booleans(), st.floats(-1.0, 1.0))
def test_random_trip_counts_and_checkpoints_against_to_numpy(steps, checkpoints, reverse, a):
    def fn(x, a):
        final, ys = cg.scan(lambda s, x: (np.cos(s) * x - a, s * x), x, xs=x * np.arange(
            1.0, steps + 1.0), reverse=reverse)
        return final + np.sum(ys * ys)

    c = cg.trace(fn)
    g = cg.grad(c, checkpoints=checkpoints)
    got = cg.to_c(g, width=1)(x=0.3, a=a)
    same_bits(got, cg.to_c(cg.grad(c), width=1)(x=0.3, a=a))
    same_bits(got, cg.to_tape(g)(x=0.3, a=a))
    np.testing.assert_allclose(entries(got), entries(cg.to_numpy(g)(x=0.3, a=a)),
                               rtol=COMPILED_RTOL, atol=1e-15)


def test_hand_formula_and_central_differences():
    # s ← s·a ten times from 1: d(a¹⁰)/da = 10·a⁹, exactly 5120 at a = 2
    power = cg.trace(lambda a: cg.scan(lambda s, _: (s * a, None), 1.0, length=10)[0])
    assert [float(v) for v in cg.to_c(cg.grad(power, checkpoints=2))(2.0)] == [1024.0, 5120.0]
    c = cg.trace(scanned, shapes=SHAPES)
    forward, grad = cg.to_c(c, width=1), cg.to_c(cg.grad(c, checkpoints=2), width=1)
    got = grad(**POINT)
    for name, derivative in zip(c.inputs, got[1:]):
        h = 1e-6
        for index in np.ndindex(POINT[name].shape):
            up, down = dict(POINT), dict(POINT)
            up[name], down[name] = POINT[name].copy(), POINT[name].copy()
            up[name][index] += h
            down[name][index] -= h
            central = (forward(**up) - forward(**down)) / (2 * h)
            assert abs(central - derivative[index]) < 1e-6 * max(1.0, abs(central))


def _inline(c, **given):
    """The output of circuit ``c`` built from traced values (or numbers) for its inputs."""
    values = {}
    for i, op, args, params, _ in c.records():
        if op == "input":
            values[i] = given[params]
        elif op == "const":
            values[i] = params
        else:
            vs = [values[a] for a in args]
            b = next(v.builder for v in vs if isinstance(v, cg.Value))
            values[i] = b.apply(op, *vs, **(params or {}))
    return values[c.output_ids[0]]


@settings(max_examples=6, deadline=None)
@given(programs(max_ops=5), st.integers(2, 6), st.integers(1, 3))
def test_random_bodies_checkpointed_in_c_and_the_tape(program, steps, checkpoints):
    """A random program p(s, x_t, w) as the step s ← tanh(p), y_t = s·x_t: the checkpointed
    gradient through to_c is the stored one's bits, the tape's, and to_numpy's to rounding."""
    text, point, _ = program
    p = cg.parse(text)
    roles = {"x0": "s", "x1": "x", "x2": "w"}

    def step(s, x, w):
        out = _inline(p, **{n: {"s": s, "x": x, "w": w}[roles[n]] for n in p.inputs})
        new = np.tanh(out) if isinstance(out, cg.Value) else np.tanh(out) + 0.0 * s
        return new, s * x

    def looped(s0, xs, w):
        final, ys = cg.scan(lambda s, x: step(s, x, w), s0, xs=xs)
        return final + np.sum(ys)

    c = cg.trace(looped, shapes={"xs": (steps,)})
    at = {"s0": point.get("x0", 0.5), "xs": np.linspace(-0.5, 0.7, steps) + point.get("x1", 0.3),
          "w": point.get("x2", 0.8)}
    g = cg.grad(c, checkpoints=checkpoints)
    with np.errstate(all="ignore"):
        got = cg.to_c(g, width=1)(**at)
        same_bits(got, cg.to_c(cg.grad(c), width=1)(**at))
        same_bits(got, cg.to_tape(g)(**at))
        want = entries(cg.to_numpy(g)(**at))
    np.testing.assert_allclose(entries(got), want, rtol=COMPILED_RTOL, atol=1e-12,
                               equal_nan=True)


def test_a_checkpointed_loop_inside_a_body():
    # (grad checkpoints only the loops of the circuit it differentiates; a body that is itself
    # a checkpointed gradient puts the schedule inside a body's C function)
    from circuitgrad.builder import Builder
    from circuitgrad.primitives.loops import Body, layout, leaf

    inner = cg.trace(lambda a: cg.scan(lambda s, _: (s + a * np.sin(s), None), 0.1,
                                       length=7)[0])
    body = Body(cg.grad(inner, checkpoints=2), carries=1, xs=0)  # a → (f(a), f'(a))
    b = Builder()
    packed = b.apply("scan", b.input("x"), body=body, length=4, reverse=False, save=False)
    final, ys = (leaf(b, packed, *place) for place in layout(body, 4, False))
    c = b.finish([("final", final), ("ys", ys)])
    want = cg.to_numpy(c)(0.3)
    for width in (1, max(WIDTHS)):
        f = cg.to_c(c, width=width)
        assert "loop 1 of this body: 7 steps, reversed, 2 checkpoints" in f.source
        before = f.loop_stats["forward_steps"]
        got = f(0.3)
        assert f.loop_stats["forward_steps"] - before == 4 * loops.revolve_cost(7, 2)
        np.testing.assert_allclose(entries(got), entries(want), rtol=COMPILED_RTOL)
        if width == 1:
            same_bits(got, cg.to_tape(c)(0.3))


def test_a_checkpointed_loop_of_2_31_steps_is_refused_by_name():
    # (the C schedule's binomials are exact in 64 bits below 2**31 steps: past it, a refusal,
    # not a wrong split; the circuit holds no array of the trip count, so it is cheap to make)
    from circuitgrad.lower.c import c_source

    def fn(steps):
        return cg.trace(lambda a: cg.scan(lambda s, _: (s * a + 1.0, None), a,
                                          length=steps)[0])

    with pytest.raises(cg.CircuitError, match="2147483648 steps: at most 2"):
        c_source(cg.grad(fn(2**31), checkpoints=4), width=1)
    assert "tb[0] = 2147483647;" in c_source(cg.grad(fn(2**31 - 1), checkpoints=4), width=1)


def test_the_counters_add_up_over_threads():
    # (every thread's vectors run the schedule and add to the one library's counters, with
    # atomic adds: none is lost, and the values are the one thread's)
    c = cg.trace(lambda a: cg.scan(lambda s, _: (s + a * np.sin(s), None), 0.1, length=40)[0])
    g = cg.grad(c, checkpoints=3)
    points = np.linspace(0.0, 0.02, 48)  # (6 chunks of 8 points: 2 a thread)
    for width in (1, max(WIDTHS)):
        f = cg.to_c(g, width=width, threads=1)
        want = f(points)
        f.threads, f._work = 3, 10**6
        for _ in range(5):
            before = f.loop_stats
            same_bits(tuple(f(points)), tuple(want))
            after = f.loop_stats
            assert after["forward_steps"] - before["forward_steps"] == \
                48 // width * loops.revolve_cost(40, 3)
            assert after["adjoint_steps"] - before["adjoint_steps"] == 48 // width * 40


def test_a_checkpointed_loop_of_no_steps_built_by_hand():
    # (grad marks only loops of more steps than checkpoints; a node built by hand may have
    # none: to_c wrote the schedule's set-up reading scratch it had not allocated, and the
    # compile failed)
    from circuitgrad.builder import Builder

    c = cg.trace(lambda a: cg.scan(lambda s, _: (s * a, None), a, length=2)[0])
    g = cg.grad(c, checkpoints=1)
    (i,) = [i for i in range(len(g)) if g.op(i) == "scan" and g.params(i).get("recompute")]
    for length in (0, 1, 2):
        b = Builder()
        args = [b.input(f"u{j}", g.shape(a)) for j, a in enumerate(g.args(i))]
        h = b.finish([("f", b.apply("scan", *args, **{**g.params(i), "length": length}))])
        at = [0.5, 0.6, 0.7, 0.8]  # (the carries' adjoints, the accumulator, s0, a)
        want = cg.to_numpy(h)(*at)
        if length == 0:  # (no steps: the carries as they came)
            np.testing.assert_array_equal(want, at[:2])
        for width in (1, max(WIDTHS)):
            np.testing.assert_allclose(cg.to_c(h, width=width)(*at), want, rtol=COMPILED_RTOL)
        np.testing.assert_allclose(cg.to_tape(h)(*at), want, rtol=COMPILED_RTOL)
