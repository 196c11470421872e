"""Loops in to_c: a ``scan`` written as a C loop over its body, the body emitted once.

docs/semantics.md's contract for a loop: to_c of a scan circuit is to_c of the unrolled
circuit bit for bit (the body's scalar statements, in the same order, each step), within
COMPILED_RTOL of to_numpy; a batch is its points bit for bit; the gradient (a reverse scan of
the body's adjoint) is the unrolled gradient's to_c bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import circuitgrad as cg
from circuitgrad.lower.isa import host_widths

from tolerances import COMPILED_RTOL

WIDTHS = sorted(set(host_widths()) | {1})


def step(s, x, w):
    """A step with a tensor carry, a sequence, a closure, a y and a transcendental."""
    t = np.tanh(s * w + x) + 0.5 * s[::-1]
    return t, np.sum(t * s)


def scanned(s0, xs, w):
    final, ys = cg.scan(lambda s, x: step(s, x, w), s0, xs)
    return np.sum(final * final) + np.sum(ys), ys


def unrolled(s0, xs, w):
    s, ys = s0, []
    for t in range(xs.shape[0]):
        s, y = step(s, xs[t], w)
        ys.append(y)
    return np.sum(s * s) + sum(ys[1:], ys[0]), np.stack(ys)


SHAPES = {"s0": 3, "xs": (5, 3), "w": 3}
rng = np.random.default_rng(30)
POINT = {"s0": rng.normal(size=3), "xs": rng.normal(size=(5, 3)), "w": rng.normal(size=3)}


def unroll(c):
    """``c`` with each ``scan`` node replaced by its body's nodes, once per step (the packed
    result a ``concatenate`` of the leaves, flattened): the circuit to_c must match."""
    from circuitgrad.builder import Builder
    from circuitgrad.primitives.loops import layout

    b = Builder()
    ids = [None] * len(c)

    def flat(i):
        size = int(np.prod(b.shapes[i]))
        return i if b.shapes[i] == (size,) else b.apply_id("reshape", (i,), {"shape": (size,)})

    def take(i, t, shape):  # entry t of the leading axis, of shape ``shape``
        size = int(np.prod(shape))
        part = b.apply_id("getitem", (flat(i),), {"index": ((t * size, (t + 1) * size, 1),)})
        return part if len(shape) == 1 else (
            b.apply_id("getitem", (part,), {"index": (0,)}) if not shape else
            b.apply_id("reshape", (part,), {"shape": shape}))

    for i, op, args, params, shape in c.records():
        if op == "input":
            ids[i] = b.input(params, shape).id
        elif op == "const":
            ids[i] = b.const_id(params)
        elif op != "scan":
            ids[i] = b.apply_id(op, tuple(ids[a] for a in args), params)
        else:
            body, length = params["body"], params["length"]
            k, m = body.carries, body.xs
            _, x_shapes, _, y_shapes = body.shapes()
            bc = body.circuit
            carry = [ids[a] for a in args[:k]]
            ys = [[None] * length for _ in y_shapes]
            saved = [[None] * length for _ in range(k)]
            steps = range(length - 1, -1, -1) if params["reverse"] else range(length)
            for t in steps:
                for j in range(k):
                    saved[j][t] = carry[j]
                inner = carry + [take(ids[a], t, s) for a, s in zip(args[k:k + m], x_shapes)]
                inner += [ids[a] for a in args[k + m:]]
                local = [None] * len(bc)
                for n, (j, bop, bargs, bparams, _) in enumerate(bc.records()):
                    if bop == "input":
                        local[j] = inner[bc.input_ids.index(j)]
                    elif bop == "const":
                        local[j] = b.const_id(bparams)
                    else:
                        local[j] = b.apply_id(bop, tuple(local[a] for a in bargs), bparams)
                out = [local[j] for j in bc.output_ids]
                carry = out[:k]
                for j in range(len(y_shapes)):
                    ys[j][t] = out[k + j]
            parts = [flat(x) for x in carry] + [flat(y) for leaf in ys for y in leaf]
            if params["save"]:
                parts += [flat(x) for leaf in saved for x in leaf]
            parts = [b.apply_id("reshape", (x,), {"shape": (1,)}) if not b.shapes[x] else x
                     for x in parts]
            assert sum(int(np.prod(b.shapes[x])) for x in parts) == shape[0]
            assert len(layout(body, length, params["save"])) > 0
            ids[i] = parts[0] if len(parts) == 1 else b.apply_id("concatenate", tuple(parts),
                                                                 {"axis": 0})
    return b.finish(list(zip(c.outputs, [ids[i] for i in c.output_ids])), inputs=c.inputs)


def entries(result):
    """Every number of a result (one output or a tuple of them), flat."""
    parts = result if isinstance(result, tuple) else (result,)
    return np.concatenate([np.ravel(p) for p in parts])


def same_bits(a, b):
    if not isinstance(a, tuple):
        a, b = (a,), (b,)
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(np.asarray(u).view(np.int64), np.asarray(v).view(np.int64))


@pytest.fixture(scope="module")
def circuits():
    return cg.trace(scanned, shapes=SHAPES), cg.trace(unrolled, shapes=SHAPES)


def test_one_body_function_and_a_loop(circuits):
    f = cg.to_c(circuits[0], width=1)
    assert f.source.count("static void f_body0(") == 1 and "f_body1" not in f.source
    assert "for (s = 0; s < 5; s++)" in f.source
    ops = len(f._program.ops)
    assert ops < 40  # the body once, not five times (unrolled: ~5 × 20)


@pytest.mark.parametrize("width", WIDTHS)
def test_forward_is_the_unrolled_circuit_bit_for_bit(circuits, width):
    c, u = circuits
    got = cg.to_c(c, width=width)(**POINT)
    same_bits(got, cg.to_c(u, width=width)(**POINT))
    same_bits(got, cg.to_c(unroll(c), width=width)(**POINT))
    for a, b in zip(got, cg.to_numpy(c)(**POINT)):
        np.testing.assert_allclose(a, b, rtol=COMPILED_RTOL, atol=0)


@pytest.mark.parametrize("width", WIDTHS)
def test_gradient_is_the_unrolled_gradient_bit_for_bit(circuits, width):
    c, u = circuits
    g, gu = cg.grad(c, output=c.outputs[0]), cg.grad(u, output=u.outputs[0])
    assert "scan" in set(g.columns.ops)
    got = cg.to_c(g, width=width)(**POINT)
    # (the scan's gradient is the unrolled gradient but for the order of some adjoint sums:
    # to_c writes the gradient circuit's own operations, loops unrolled, bit for bit)
    same_bits(got, cg.to_c(unroll(g), width=width)(**POINT))
    for a, b in zip(got, cg.to_c(gu, width=width)(**POINT)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    for a, b in zip(got, cg.to_numpy(g)(**POINT)):
        np.testing.assert_allclose(a, b, rtol=COMPILED_RTOL, atol=1e-14)


def test_a_batch_is_its_points(circuits):
    c = circuits[0]
    f = cg.to_c(cg.grad(c, output=c.outputs[0]))
    batch = {k: np.stack([v + 0.1 * j for j in range(11)]) for k, v in POINT.items()}
    got = f(**batch)
    for j in range(11):
        one = f(**{k: v[j] for k, v in batch.items()})
        same_bits(tuple(np.asarray(a)[j] for a in got), tuple(one))


def test_reverse_scalar_loop_with_constant_carry():
    def fn(x):
        final, ys = cg.scan(lambda s, _: (np.sin(s) * x + 1.0, s * s), 0.5, length=7,
                            reverse=True)
        return final + np.sum(ys)

    def fn_unrolled(x):
        s, total = 0.5, []
        for _ in range(7):
            total.append(s * s)
            s = np.sin(s) * x + 1.0
        return s + sum(total[::-1][1:], total[::-1][0])

    c, u = cg.trace(fn), cg.trace(fn_unrolled)
    for a, b in ((c, u), (cg.grad(c), unroll(cg.grad(c)))):
        same_bits(cg.to_c(a, width=1)(x=1.3), cg.to_c(b, width=1)(x=1.3))
        np.testing.assert_allclose(np.ravel(cg.to_c(a)(x=1.3)), np.ravel(cg.to_numpy(a)(x=1.3)),
                                   rtol=COMPILED_RTOL)


def test_two_loops_in_sequence():
    def fn(x):
        a, _ = cg.scan(lambda s, _: (s * x + 1.0, None), x, length=4)
        b, _ = cg.scan(lambda s, _: (s * x + 1.0, None), a * 2.0, length=3)
        return a + b

    c = cg.trace(fn)
    f = cg.to_c(c)
    bodies = {c.params(i)["body"] for i in range(len(c)) if c.op(i) == "scan"}
    assert f.source.count("static void f_body") == len(bodies) and "f_loop1" in f.source
    assert float(f(x=0.7)) == pytest.approx(float(cg.to_numpy(c)(x=0.7)), rel=1e-15)
    g = cg.grad(c)
    np.testing.assert_allclose(np.ravel(cg.to_c(g)(x=0.7)), np.ravel(cg.to_numpy(g)(x=0.7)),
                               rtol=COMPILED_RTOL)


def nested_loops(a, xs):
    """A loop whose body runs a loop (closures of both levels, an inner y, an outer y)."""
    def outer(s, x):
        inner, ys = cg.scan(lambda u, _: (np.sin(u) * a + x * s, u * s), s, length=3)
        return inner + np.sum(ys), inner * x
    final, ys = cg.scan(outer, 0.2, xs=xs)
    return final + np.sum(ys * ys)


def nested_unrolled(a, xs):
    s, outs = 0.2, []
    for t in range(4):
        u, ys = s, []
        for _ in range(3):
            ys.append(u * s)
            u = np.sin(u) * a + xs[t] * s
        s = u + np.sum(np.stack(ys))
        outs.append(u * xs[t])
    return s + np.sum(np.stack(outs) ** 2)


NESTED_POINT = {"a": 0.7, "xs": np.array([0.1, -0.3, 0.2, 0.05])}


@pytest.mark.parametrize("width", WIDTHS)
def test_a_loop_inside_a_loop_is_a_c_loop_inside_the_body_function(width):
    c = cg.trace(nested_loops, shapes={"xs": 4})
    g = cg.grad(c)
    scans = [g.params(i) for i in range(len(g)) if g.op(i) == "scan"]
    assert any("scan" in set(s["body"].circuit.columns.ops) for s in scans)  # (nested reverse)
    for circuit in (c, g):
        f = cg.to_c(circuit, width=width)
        bodies = f.source.count("static void f_body")
        assert bodies >= 2 and "loop 0 of this body" in f.source
        got = f(**NESTED_POINT)
        # the same statements as the circuit with every loop unrolled, inner ones included
        flat = unroll(unroll(unroll(circuit)))
        assert "scan" not in set(flat.columns.ops)
        same_bits(got, cg.to_c(flat, width=width)(**NESTED_POINT))
        np.testing.assert_allclose(entries(got), entries(cg.to_numpy(circuit)(**NESTED_POINT)),
                                   rtol=COMPILED_RTOL, atol=1e-15)
        if width == 1:
            same_bits(got, cg.to_tape(circuit)(**NESTED_POINT))
    u = cg.trace(nested_unrolled, shapes={"xs": 4})
    np.testing.assert_allclose(entries(cg.to_c(g, width=width)(**NESTED_POINT)),
                               entries(cg.to_numpy(cg.grad(u))(**NESTED_POINT)),
                               rtol=1e-13, atol=1e-15)


def test_a_nested_loop_batch_is_its_points_and_threads_give_the_same_bits():
    c = cg.trace(nested_loops, shapes={"xs": 4})
    f = cg.to_c(cg.grad(c), threads=2)
    batch = {"a": np.linspace(0.1, 0.9, 11), "xs": NESTED_POINT["xs"] + np.linspace(
        -0.1, 0.1, 11)[:, None]}
    got = f(**batch)
    for j in range(11):
        same_bits(tuple(np.asarray(v)[j] for v in got),
                  tuple(f(**{k: v[j] for k, v in batch.items()})))
    f._work = 10**6  # (a batch split over two threads)
    same_bits(tuple(got), tuple(f(**batch)))


def test_to_tape_runs_the_body_tape_per_step(circuits):
    c = circuits[0]
    for circuit in (c, cg.grad(c, output=c.outputs[0])):
        f = cg.to_tape(circuit)
        got = f(**POINT)
        same_bits(got, cg.to_tape(unroll(circuit))(**POINT))
        same_bits(got, cg.to_c(circuit, width=1)(**POINT))
        batch = {k: np.stack([v, v + 0.5, v - 0.25]) for k, v in POINT.items()}
        many = f(**batch)
        for j in range(3):
            same_bits(tuple(np.asarray(a)[j] for a in many), f(**{k: v[j] for k, v in
                                                                  batch.items()}))


def test_to_tape_runs_a_loop_inside_a_loop():
    def nested(x):
        inner = lambda s, _: (cg.scan(lambda t, _: (t * x + 0.5, None), s, length=2)[0], None)  # noqa: E731
        return cg.scan(inner, x, length=3)[0]

    c = cg.trace(nested)
    for circuit in (c, cg.grad(c), cg.grad(c, checkpoints=1)):
        np.testing.assert_allclose(np.ravel(cg.to_tape(circuit)(x=0.7)),
                                   np.ravel(cg.to_numpy(circuit)(x=0.7)), rtol=1e-15)
        same_bits(cg.to_tape(circuit)(x=0.7), cg.to_c(circuit, width=1)(x=0.7))


def test_threads_give_the_same_bits():
    c = cg.trace(lambda x: cg.scan(lambda s, _: (np.sin(s) * x + 0.25, None), x,
                                   length=3000)[0])
    f = cg.to_c(cg.grad(c), threads=2)
    xs = np.linspace(-1.0, 1.0, 37)
    assert len(xs) * f._work >= 2 * 200_000  # (a batch split over two threads)
    both = f(x=xs)
    f.threads = 1
    same_bits(tuple(both), tuple(f(x=xs)))


@settings(max_examples=6, deadline=None)
@given(st.integers(1, 4), st.floats(-1.5, 1.5), st.booleans())
def test_random_trip_counts_against_to_numpy(steps, a, reverse):
    # (a is an input: the compiled libraries depend on the trip count and direction only)
    def fn(x, a):
        final, ys = cg.scan(lambda s, _: (np.cos(s) * x - a, s * x), x, length=steps,
                            reverse=reverse)
        return final + np.sum(ys)

    c = cg.trace(fn)
    for circuit in (c, cg.grad(c)):
        got = cg.to_c(circuit, width=1)(x=0.3, a=a)
        want = cg.to_numpy(circuit)(x=0.3, a=a)
        np.testing.assert_allclose(np.ravel(got), np.ravel(want), rtol=COMPILED_RTOL,
                                   atol=1e-15)
        same_bits(cg.to_c(unroll(circuit), width=1)(x=0.3, a=a), got)


def test_a_pickle_rebuilds_the_loop(circuits):
    import pickle

    f = cg.to_c(circuits[0])
    same_bits(pickle.loads(pickle.dumps(f))(**POINT), f(**POINT))


def test_tuple_carries_no_carry_and_sequences_read_through_tables():
    def fn(v, w):
        xs = np.sin(v) * w
        (a, b), ys = cg.scan(lambda c, x: ((c[0] * x + c[1], c[1] - x), (x * c[0], np.exp(x))),
                             (w[0], w[1]), xs[::-1])  # (the slice: registers out of order)
        _, zs = cg.scan(lambda c, x: ((), x * 2.0 + 1.0), (), v[::-1])
        return a + b + np.sum(ys[0]) + np.sum(ys[1] * v) + np.sum(zs * w)

    c = cg.trace(fn, shapes={"v": 6, "w": 6})
    at = {"v": np.linspace(0.1, 0.9, 6), "w": np.linspace(-1.0, 0.5, 6)}
    assert "static const int f_reg" in cg.to_c(c).source
    for circuit in (c, cg.grad(c)):
        got = cg.to_c(circuit)(**at)
        same_bits(got, cg.to_c(unroll(circuit))(**at))
        same_bits(cg.to_tape(circuit)(**at), cg.to_c(circuit, width=1)(**at))
        np.testing.assert_allclose(entries(got), entries(cg.to_numpy(circuit)(**at)),
                                   rtol=COMPILED_RTOL, atol=1e-15)


def test_to_c_counts_a_loop_as_its_body_once():
    from circuitgrad.transforms.scalarize import scalar_size

    small = cg.trace(lambda x: np.sum(cg.scan(lambda s, _: (np.sin(s) * x, None), x, length=2000)[0]),
                     shapes={"x": 4})
    g = cg.grad(small)
    assert scalar_size(g) < 200  # (not the 2000 steps' saved carries)
    assert type(cg.to_c(g)).__name__ == "CFunction"
    big = cg.trace(lambda w, x: cg.scan(lambda s, _: (np.tanh(w @ s), None), x, length=3)[0],
                   shapes={"w": (70, 70), "x": 70})
    f = cg.to_c(big)  # (a body of ~10 000 scalars: to_fused's loops, the body in NumPy)
    assert type(f).__name__ == "FusedFunction"
    at = {"w": np.eye(70) * 0.5, "x": np.linspace(-1.0, 1.0, 70)}
    np.testing.assert_allclose(f(**at), cg.to_numpy(big)(**at), rtol=1e-13)


def test_a_scan_built_by_hand_without_its_optional_params():
    # (a scan node made with body= and length= alone: its shape rule, its NumPy function and
    # its rules default reverse, save, recompute, checkpoints; to_tape and to_c read them off
    # the loop site, which holds every one: they did raise KeyError 'reverse')
    from circuitgrad.builder import Builder
    from circuitgrad.primitives.loops import Body

    body = Body(cg.trace(lambda s, x: (s * 2.0 + x, s + x)), carries=1, xs=1)
    b = Builder()
    packed = b.apply("scan", b.input("s0"), b.input("xs", (3,)), body=body, length=3)
    c = b.finish([("f", b.apply("sum", packed))])
    scan = next(i for i in range(len(c)) if c.op(i) == "scan")
    assert "reverse" not in c.params(scan) and "save" not in c.params(scan)
    xs = np.array([0.5, -1.0, 2.0])
    # s: 1 -> 2.5 -> 4 -> 10; ys 1.5, 1.5, 6; f = 10 + 9
    assert cg.to_numpy(c)(1.0, xs) == 19.0
    g = cg.grad(c)
    want = cg.to_numpy(g)(1.0, xs)
    # df/ds_t = 2 df/ds_(t+1) + 1 (the y), df/ds_3 = 1: 1, 3, 7, 15; df/dx_t = 1 + df/ds_(t+1)
    np.testing.assert_array_equal(want.df_ds0, 15.0)
    np.testing.assert_array_equal(want.df_dxs, [8.0, 4.0, 2.0])
    for lower in (cg.to_tape, cg.to_c):
        assert lower(c)(1.0, xs) == 19.0
        got = lower(g)(1.0, xs)
        for name in g.outputs:
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
