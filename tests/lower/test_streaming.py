"""Batches without copies, ``into`` and ``map`` (issue 29, "Streaming and memory"): a batch of
``to_c`` and ``to_tape`` is read from the caller's arrays where they are (each input column
through an address and a step: ``NAME_eval_columns``, ``_tape.run_columns``) and written into
the caller's ``into`` arrays; ``map`` runs an iterable of chunks. Every path gives the plain
call's values bit for bit: strided, reversed, broadcast, unaligned and integer inputs, one
point, no point, any chunking and any thread count.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import circuitgrad as cg
from circuitgrad.errors import CircuitError

SCALAR = "J = sin(x) * y + exp(x / y) - x * x * z + sqrt(y * y + 1.0)"
TENSOR = "h = tanh(W @ v + b)\nJ = sum(h * h) + sum(v * b[0:3])"
TENSOR_SHAPES = {"W": (3, 3), "v": (3,), "b": (3,)}


def _scan_circuit():
    return cg.grad(cg.trace(lambda a: cg.scan(lambda s, _: (s * a + 1.0, None), a,
                                              length=6)[0]))


@pytest.fixture(scope="module")
def scalar_fns():
    c = cg.grad(cg.parse(SCALAR))
    return {"c": cg.to_c(c, name="stream_s"), "tape": cg.to_tape(c)}


@pytest.fixture(scope="module")
def tensor_fns():
    c = cg.grad(cg.parse(TENSOR, shapes=TENSOR_SHAPES))
    return {"c": cg.to_c(c, name="stream_t"), "tape": cg.to_tape(c)}


def _flat_path(f, *args, **kwargs):
    """The call through the one (npoints, inputs) array the batch path used before."""
    f._columns_ready, ready = False, f._columns_ready
    try:
        return f(*args, **kwargs)
    finally:
        f._columns_ready = ready


def _same(a, b):
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape and x.dtype == y.dtype == np.float64
        assert np.array_equal(x.view(np.int64), y.view(np.int64)), (x, y)


def _scalar_args(n=37, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 2.0, n), rng.uniform(0.5, 3.0, n), rng.uniform(-1, 1, n)


@pytest.mark.parametrize("kind", ["c", "tape"])
def test_batch_reads_in_place_same_bits(scalar_fns, kind):
    f = scalar_fns[kind]
    x, y, z = _scalar_args()
    assert f._columns_ready
    _same(f(x, y, z), _flat_path(f, x, y, z))
    big = np.random.default_rng(1).uniform(0.5, 2.0, (37, 5))
    strided = (x[::-1], big[:, 2], np.asfortranarray(big)[:, 3])  # reversed, columns
    _same(f(*strided), _flat_path(f, *strided))
    _same(f(x[::2], 1.5, z[::2]), _flat_path(f, x[::2], 1.5, z[::2]))  # a number broadcast
    x2, y2 = x[:36].reshape(6, 6), y[:36].reshape(6, 6).T  # a transposed 2-D batch
    _same(f(x2, y2, 0.25), _flat_path(f, x2, y2, 0.25))
    col, row = x[:5, None], y[None, :4]  # broadcast axes that make no one step: copied
    _same(f(col, row, z[:4]), _flat_path(f, col, row, z[:4]))
    ints = np.arange(1, 38)  # int64: converted (a copy), as before
    _same(f(ints, y, z), _flat_path(f, ints, y, z))
    raw = np.zeros(8 * 37 + 1, dtype=np.uint8)
    unaligned = raw[1:].view(np.float64)
    unaligned[:] = x
    assert not unaligned.flags.aligned
    _same(f(unaligned, y, z), f(x, y, z))


@pytest.mark.parametrize("kind", ["c", "tape"])
def test_batch_matches_points(scalar_fns, kind):
    f = scalar_fns[kind]
    x, y, z = _scalar_args(11)
    batch = f(x, y, z)
    for k in range(11):
        _same(tuple(np.asarray(b[k]) for b in batch), f(float(x[k]), float(y[k]), float(z[k])))
    _same(f(x[:1], y[:1], z[:1]), _flat_path(f, x[:1], y[:1], z[:1]))  # a batch of one
    empty = f(x[:0], y[:0], z[:0])
    assert all(e.shape == (0,) for e in empty)


@pytest.mark.parametrize("kind", ["c", "tape"])
def test_tensor_inputs_in_place(tensor_fns, kind):
    f = tensor_fns[kind]
    rng = np.random.default_rng(2)
    W, v, b = rng.normal(size=(9, 3, 3)), rng.normal(size=(9, 3)), rng.normal(size=3)
    _same(f(W, v, b), _flat_path(f, W, v, b))
    Wt = np.swapaxes(W, 1, 2)  # entries transposed: each column its own address
    _same(f(Wt, v[::-1], b), _flat_path(f, Wt, v[::-1], b))
    Wb = rng.normal(size=(3, 3))  # one matrix for every point (step 0)
    _same(f(Wb, v, b), _flat_path(f, Wb, v, b))
    outs = [np.empty((9,) + np.shape(r)[1:]) for r in f(W, v, b)]
    _same(f.into(outs, W, v, b), f(W, v, b))


@pytest.mark.parametrize("kind", ["c", "tape"])
def test_into_same_bits_and_returns_out(scalar_fns, kind):
    f = scalar_fns[kind]
    x, y, z = _scalar_args()
    want = f(x, y, z)
    outs = [np.full(37, np.nan) for _ in f.outputs]
    got = f.into(outs, x, y, z)
    assert all(g is o for g, o in zip(got, outs))
    _same(got, want)
    block = np.empty((37, len(f.outputs) + 2))  # columns of one array
    got = f.into([block[:, k + 1] for k in range(len(f.outputs))], x, y, z)
    _same(got, want)
    named = {name: np.empty(37) for name in reversed(f.outputs)}
    _same(f.into(named, x=x, y=y, z=z), want)
    points = [np.empty(()) for _ in f.outputs]  # one point: 0-d arrays
    _same(f.into(points, 0.5, 1.5, 0.25), f(0.5, 1.5, 0.25))


def test_into_one_output_takes_an_array():
    f = cg.to_tape(cg.parse("y = x * x + 1.0"))
    out = np.empty(5)
    assert f.into(out, np.arange(5.0)) is out
    assert out.tolist() == [1.0, 2.0, 5.0, 10.0, 17.0]


def test_into_an_input_named_out():
    f = cg.to_tape(cg.parse("y = out * 2.0"))
    buf = np.empty(3)
    assert f.into(buf, out=np.arange(3.0)).tolist() == [0.0, 2.0, 4.0]


@pytest.mark.parametrize("kind", ["c", "tape"])
def test_into_errors_name_the_output(scalar_fns, kind):
    f = scalar_fns[kind]
    x, y, z = _scalar_args(8)
    n = len(f.outputs)
    good = [np.empty(8) for _ in range(n)]
    name = f.outputs[1]

    def fails(outs, match, *args):
        with pytest.raises(CircuitError, match=match):
            f.into(outs, *(args or (x, y, z)))

    fails(good[:-1], rf"out has {n - 1} arrays for {n} outputs")
    fails(good + [np.empty(8)], rf"out has {n + 1} arrays for {n} outputs")
    bad = list(good)
    bad[1] = np.empty(7)
    fails(bad, rf"output '{name}' has shape \(7,\); the call's batch \(8,\)")
    bad[1] = np.empty(8, dtype=np.float32)
    fails(bad, rf"output '{name}' is float32, not float64")
    bad[1] = [0.0] * 8
    fails(bad, rf"output '{name}' is a list, not a NumPy array")
    bad[1] = np.empty(8)
    bad[1].flags.writeable = False
    fails(bad, rf"output '{name}' is read-only")
    bad[1] = np.lib.stride_tricks.as_strided(np.empty(1), (8,), (0,), writeable=True)
    fails(bad, rf"output '{name}' has a zero stride")
    bad[1] = np.lib.stride_tricks.as_strided(np.empty(9), (8,), (4,), writeable=True)
    fails(bad, rf"output '{name}' has strides \(4,\), under which its entries share memory")
    bad[1] = good[0][::1]
    fails(bad, rf"output '{f.outputs[0]}' shares memory with the out for the output '{name}'")
    bad[1] = x.copy()
    fails(bad, rf"output '{name}' shares memory with the input 'x'", bad[1], y, z)
    two_d = [np.empty((3, 4)).T for _ in range(n)]  # F order: the batch's points not one step
    fails(two_d, rf"output '{f.outputs[0]}' has strides \(8, 32\)",
          x[:4, None] * np.ones(3), 1.0, 1.0)
    with pytest.raises(CircuitError, match="out names 'nope', which is not an output"):
        f.into({"nope": good[0]}, x, y, z)
    with pytest.raises(CircuitError, match=f"out has no array for the output '{f.outputs[0]}'"):
        f.into({k: a for k, a in zip(f.outputs[1:], good)}, x, y, z)
    with pytest.raises(TypeError, match="missing inputs"):  # the binder's own checks
        f.into(good, x, y)


def test_into_refuses_sparse_outputs():
    c = cg.jacobian(cg.parse("y = x * x", shapes={"x": (4,)}), sparse=True)
    f = cg.to_tape(c)
    with pytest.raises(CircuitError, match="sparse matrices"):
        f.into([np.empty((4, 4))] * len(f.outputs), np.ones(4))
    with pytest.raises(CircuitError, match="sparse matrices"):
        f.map([np.ones(4)], reuse=True)


@pytest.mark.parametrize("kind", ["c", "tape"])
@pytest.mark.parametrize("size", [1, 7, 8, 13, 100])
@pytest.mark.parametrize("reuse", [False, True])
def test_map_any_chunking_same_bits(scalar_fns, kind, size, reuse):
    f = scalar_fns[kind]
    x, y, z = _scalar_args(100)
    want = f(x, y, z)
    chunks = ((x[k:k + size], y[k:k + size], z[k:k + size]) for k in range(0, 100, size))
    got = [tuple(np.copy(o) for o in out) for out in f.map(chunks, reuse=reuse)]
    _same(tuple(np.concatenate([g[i] for g in got]) for i in range(len(want))), want)


def test_map_reuses_buffers_and_takes_dicts_and_arrays(scalar_fns):
    f = scalar_fns["tape"]
    x, y, z = _scalar_args(25)
    chunks = [{"x": x[k:k + 10], "y": y[k:k + 10], "z": 0.5} for k in range(0, 25, 10)]
    outs = list(f.map(chunks, reuse=True))
    assert len(outs) == 3 and all(np.shares_memory(o.J, outs[0].J) for o in outs)
    assert outs[-1].J.shape == (5,)  # the short last chunk: the buffers' first points
    _same(outs[-1], f(x[20:], y[20:], 0.5))
    g = cg.to_tape(cg.parse("y = x * x"))
    assert [float(v.sum()) for v in g.map(iter([np.ones(3), np.full(2, 2.0), 3.0]))] == \
        [3.0, 8.0, 9.0]
    with pytest.raises(CircuitError, match="reuse=1"):
        g.map([np.ones(3)], reuse=1)
    with pytest.raises(TypeError):
        g.map(5)


def test_map_bad_chunk_says_why():
    f = cg.to_c(cg.parse("y = 0.5 * x + 1.0"), name="stream_feed")
    gen = f.map(iter([np.arange(16.0), None]), reuse=True)
    assert next(gen).tolist() == [0.5 * k + 1.0 for k in range(16)]
    with pytest.raises(CircuitError, match="input 'x' is not a number"):
        next(gen)


def test_map_reuse_overlapping_chunk_gets_new_buffers():
    f = cg.to_tape(cg.parse("y = x + 1.0"))
    holder = {}

    def chunks():
        yield np.zeros(4)
        yield holder["out"]  # the buffer just yielded: read and written at once otherwise

    gen = f.map(chunks(), reuse=True)
    holder["out"] = next(gen)
    second = next(gen)
    assert not np.shares_memory(second, holder["out"])
    assert second.tolist() == [2.0] * 4 and holder["out"].tolist() == [1.0] * 4


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_threads_same_bits_through_columns(threads):
    c = cg.grad(cg.parse(SCALAR))
    f = cg.to_c(c, name="stream_threads", threads=threads)
    n = 40_000  # past WORK_PER_THREAD per thread: the threaded entry splits the batch
    x, y, z = _scalar_args(n, seed=3)
    one = cg.to_c(c, name="stream_threads", threads=1)
    _same(f(x, y, z), one(x, y, z))
    outs = [np.empty(n) for _ in f.outputs]
    _same(f.into(outs, x[::-1], y, z), one(x[::-1], y, z))
    got = list(f.map(((x[k:k + 9999], y[k:k + 9999], z[k:k + 9999])
                      for k in range(0, n, 9999)), reuse=True))
    assert len(got) == 5
    _same(f.into(outs, x, y, z), _flat_path(one, x, y, z))


def test_columns_entry_point_start_and_steps():
    """NAME_eval_columns from C's side: any start, steps in doubles, a step of 0."""
    f = cg.to_c(cg.parse("s = x + 2.0 * y"), name="stream_abi", width=1)
    fn = f._lib.stream_abi_eval_columns
    fn.argtypes = (ctypes.c_void_p,) * 4 + (ctypes.c_long, ctypes.c_long)
    x = np.arange(20.0)
    y = np.array([100.0])
    out = np.full(10, -1.0)
    ins = (ctypes.c_void_p * 2)(x.ctypes.data, y.ctypes.data)
    in_step = (ctypes.c_long * 2)(2, 0)  # every other x, one y for every point
    outs = (ctypes.c_void_p * 1)(out.ctypes.data - 3 * 8)  # points 3..9 of out[p - 3]
    assert fn(ins, in_step, outs, (ctypes.c_long * 1)(1), 3, 7) == 0
    assert out.tolist() == [2 * p + 200.0 for p in range(3, 10)] + [-1.0] * 3
    header = f.source[:f.source.index("*/")]
    assert "stream_abi_eval_columns(const double *const *in" in header


def _joined(chunks, n):
    """The outputs of ``map``'s chunks (copied as they come) as the outputs of one call."""
    got = [tuple(np.copy(o) for o in (out if isinstance(out, tuple) else (out,)))
           for out in chunks]
    joined = tuple(np.concatenate([g[i] for g in got]) for i in range(n))
    return joined if n > 1 else joined[0]


def test_loops_through_columns_and_tape_fallback():
    c = _scan_circuit()
    a = np.linspace(0.1, 0.9, 21)
    for f in (cg.to_c(c, name="stream_scan"), cg.to_tape(c)):
        want = _flat_path(f, a)
        _same(f(a), want)
        _same(f(a[::-1]), _flat_path(f, a[::-1]))
        outs = [np.empty(21) for _ in f.outputs]
        _same(f.into(outs, a), want)
        _same(_joined(f.map((a[k:k + 4] for k in range(0, 21, 4)), reuse=True),
                      len(f.outputs)), want)
    assert not cg.to_tape(c)._columns_ready  # the tape runs loops on one flat array


@pytest.fixture(scope="module")
def threaded():
    return cg.to_c(cg.grad(cg.parse(SCALAR)), name="stream_any", threads=3)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_chunking_threads_and_strides_give_the_same_bits(threaded, scalar_fns, data):
    n = data.draw(st.integers(1, 300), label="points")
    step = data.draw(st.sampled_from([1, 2, -1, -3]), label="step")
    x, y, z = (a[::step] for a in _scalar_args(n * abs(step), seed=n))
    want = _flat_path(scalar_fns["c"], x, y, z)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=6), label="cuts"))
    bounds = [0] + cuts + [n]
    threaded.threads = data.draw(st.integers(1, 4), label="threads")
    reuse = data.draw(st.booleans(), label="reuse")
    chunks = [(x[a:b], y[a:b], z[a:b]) for a, b in zip(bounds, bounds[1:])]
    _same(_joined(threaded.map(iter(chunks), reuse=reuse), len(want)), want)
    outs = [np.empty(n) for _ in want]
    _same(threaded.into(outs, x, y, z), want)
    tape = scalar_fns["tape"]
    _same(_joined(tape.map(iter(chunks), reuse=reuse), len(want)),
          _flat_path(tape, x, y, z))


def test_to_c_without_the_extension_reads_columns_through_ctypes(monkeypatch):
    import circuitgrad.lower.c as c_module
    import circuitgrad.lower.program as program
    c = cg.grad(cg.parse("J = sin(x) * y + exp(x / y)"))
    x, y = np.linspace(0.1, 2, 1001), np.linspace(1, 3, 1001)[::-1]
    want = cg.to_c(c, name="stream_noext")(x, y)
    monkeypatch.setattr(program, "_tape", None)
    monkeypatch.setattr(c_module, "_tape", None)
    f = cg.to_c(c, name="stream_noext", threads=2)
    assert f._run_columns == f._call_columns  # ctypes, the same entry point
    _same(f(x, y), want)
    _same(f.into([np.empty(1001) for _ in f.outputs], x, y), want)


@pytest.mark.parametrize("kind", ["c", "tape"])
def test_into_and_map_take_inputs_that_share_memory(scalar_fns, kind):
    """Inputs are only read: two that share memory (one array given twice, overlapping views)
    are no reason to refuse ``into`` nor to drop ``map``'s reuse."""
    f = scalar_fns[kind]
    x, _, z = _scalar_args(20)
    want = f(x, x, z)
    _same(f.into([np.empty(20) for _ in f.outputs], x, x, z), want)
    wide = np.linspace(0.5, 2.0, 21)
    _same(f.into([np.empty(20) for _ in f.outputs], wide[1:], wide[:-1], z),
          f(wide[1:], wide[:-1], z))
    first, second = f.map([(x, x, z), (x, x, z)], reuse=True)
    assert np.shares_memory(first.J, second.J)  # the buffers reused
    _same(second, want)


@pytest.mark.parametrize("kind", ["c", "tape"])
def test_into_and_map_see_a_0d_view_of_an_out(kind):
    """A 0-d input is read at every point: a view of an out's entry (``out[0, ...]``) would
    be read after the first points had written it, another number than the call's."""
    f = cg.to_c(cg.parse("y = x + a"), name="stream_0d") if kind == "c" else \
        cg.to_tape(cg.parse("y = x + a"))
    x = np.arange(1.0, 101.0)
    out = np.full(100, 5.0)
    with pytest.raises(CircuitError, match="output 'y' shares memory with the input 'a'"):
        f.into(out, x, out[0, ...])
    assert (out == 5.0).all()

    def chunks(held):
        yield x, 5.0
        yield x, held[0][0, ...]  # the entry of the outputs just yielded

    held = []
    gen = f.map(chunks(held), reuse=True)
    held.append(next(gen))
    second = next(gen)
    assert not np.shares_memory(second, held[0])  # new buffers, not the ones read
    _same(second, f(x, 6.0))


@pytest.mark.parametrize("kind", ["c", "tape"])
def test_into_refuses_an_out_whose_entries_overlap(tensor_fns, kind):
    """An out whose entries share memory (as_strided) cannot hold the call's values: one
    would be written over another. Refused, where a zero stride alone was before."""
    f = tensor_fns[kind]
    rng = np.random.default_rng(4)
    W, v, b = rng.normal(size=(4, 3, 3)), rng.normal(size=(4, 3)), rng.normal(size=3)
    outs = [np.empty((4,) + np.shape(r)[1:]) for r in f(W, v, b)]
    k = next(k for k, o in enumerate(outs) if o.shape == (4, 3))
    outs[k] = np.lib.stride_tricks.as_strided(np.empty(10), (4, 3), (8, 8), writeable=True)
    with pytest.raises(CircuitError, match=rf"output '{f.outputs[k]}' has strides \(8, 8\), "
                                           "under which its entries share memory"):
        f.into(outs, W, v, b)
    outs[k] = np.empty((3, 4)).T  # entries apart, batch axis one step: taken
    _same(f.into(outs, W, v, b), f(W, v, b))


@pytest.mark.parametrize("kind", ["c", "tape"])
def test_map_reuse_gives_one_point_numbers_as_the_call(scalar_fns, kind):
    """A chunk of one point (numbers) yields numbers with or without reuse, as the call does:
    not 0-d buffers that the next chunk would overwrite."""
    f = scalar_fns[kind]
    points = [(0.5, 1.5, 2.0), (1.0, 2.0, -1.0)]
    for reuse in (False, True):
        got = list(f.map(points, reuse=reuse))
        for out, p in zip(got, points):
            want = f(*p)
            assert all(type(o) is type(w) is np.float64 for o, w in zip(out, want))
            _same(out, want)
    batch = list(f.map([(np.ones(3), 2.0, 0.5), points[0]], reuse=True))
    assert batch[0].J.shape == (3,) and type(batch[1].J) is np.float64
