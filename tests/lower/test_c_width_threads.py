"""to_c's vector width and threads (issue 29): the widest vectors the host runs, batches split
over threads, and the semantics contract at every width and thread count.

Within one library (one width) a point of a batch is the point alone, bit for bit, whatever
the batch's length, the point's place in it and the threads; across widths the values are
within the contract (docs/semantics.md), and bit for bit where the widths run the same vector
code (arithmetic at every width; circuitgrad's own exp, sin and cos among the widths whose
kernels fuse multiply-adds, isa.FMA_WIDTHS, and among the others: not libmvec's, whose
functions differ by width).
"""

from __future__ import annotations

import pickle
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from test_batch import SPECIAL, same_bits
from test_compiled import close, within_ulps
from tolerances import COMPILED_ULPS

import circuitgrad as cg
from circuitgrad.errors import CircuitError
from circuitgrad.lower import c as c_lowering
from circuitgrad.lower import cforms, isa


@pytest.fixture(autouse=True, scope="module")
def compile_cache(tmp_path_factory):
    """to_c's libraries go to a fresh cache directory, so that the tests compile."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CIRCUITGRAD_CACHE", str(tmp_path_factory.mktemp("cg_cache")))
    mp.delenv("CIRCUITGRAD_NO_VECTORS", raising=False)
    mp.delenv("CIRCUITGRAD_VECTOR_WIDTH", raising=False)
    mp.delenv("CIRCUITGRAD_THREADS", raising=False)
    yield
    mp.undo()


WIDTHS = [w for w in (8, 4, 2, 1) if w in isa.host_widths()]

# Every kind of helper: libmvec's (tanh, log, asinh, expm1, sinh), circuitgrad's own (sin, cos,
# exp), vector forms (sqrt, pow, floor, relu, maximum, logaddexp), lane by lane (erf, cbrt).
WIDE = ("J = tanh(x) * log(y) + sin(x) * cos(y) + exp(-x * x) + sqrt(y) + x ** y + "
        "floor(3 * x) + relu(x - y) + maximum(x, y) + asinh(x) + expm1(x / 4) + sinh(y / 3) + "
        "logaddexp(x, y) + erf(x) + cbrt(y)")
# Only arithmetic, selects, sqrt, rounding and circuitgrad's own exp, sin and cos: the same
# vector operations at the widths of one kind (isa.FMA_WIDTHS or not).
SAME_CODE = ("J = sin(x) * cos(y) + exp(-x * x) + sqrt(y) + floor(3 * x) + relu(x - y) + "
             "maximum(x, y) * abs(y - 1) / (1 + x * x)")


def _points(n: int = 2003, seed: int = 29):
    rng = np.random.default_rng(seed)
    special = np.resize(np.array(SPECIAL), 11)
    x = np.concatenate([rng.uniform(-3, 3, n - 11), special])
    y = np.concatenate([rng.uniform(0.1, 5, n - 11), special[::-1]])
    return x, y


def _host_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(next((line for line in text.splitlines() if line.startswith("flags")),
                    "").split())


# -- the width: the host's widest, chosen at compile time, part of the cache key --------------

def test_the_default_width_is_the_widest_the_host_runs():
    flags = _host_flags()
    if not isa.host_widths()[0] > 1:
        pytest.skip("no x86-64 glibc libmvec here: plain C")
    want = next(w for w in (8, 4, 2) if all(f in flags for f in isa.NEEDS[w]))
    assert isa.default_width() == isa.host_widths()[0] == want
    f = cg.to_c(cg.parse("J = tanh(x) * y"))
    assert f.width == want and f"#define CG_WIDTH {want}  /* points per vector */" in f.source
    assert isa.width_flags(want)[0] in c_lowering.compile_flags()
    symbol = cforms.libmvec_table(want)["tanh"][0]
    assert symbol.startswith(isa.LIBMVEC_PREFIX[want])
    assert symbol.encode() + b"\0" in f.library.read_bytes()  # glibc's variant of the width


def test_the_width_is_asked_by_argument_or_variable_and_refused_where_not_run(monkeypatch):
    c = cg.parse("J = x * 1.75")
    monkeypatch.setenv("CIRCUITGRAD_VECTOR_WIDTH", str(WIDTHS[-1]))
    assert isa.default_width() == WIDTHS[-1] and cg.to_c(c).width == WIDTHS[-1]
    monkeypatch.setenv("CIRCUITGRAD_NO_VECTORS", "1")
    assert isa.default_width() == 1
    monkeypatch.delenv("CIRCUITGRAD_NO_VECTORS")
    monkeypatch.delenv("CIRCUITGRAD_VECTOR_WIDTH")
    with pytest.raises(CircuitError, match="width=3: the widths are 8, 4, 2 and 1"):
        cg.to_c(c, width=3)
    with pytest.raises(CircuitError, match="vectors=False is plain C"):
        cg.to_c(c, vectors=False, width=WIDTHS[0] if WIDTHS[0] > 1 else 8)
    monkeypatch.setattr(isa, "host_widths", lambda: (4, 2, 1))
    with pytest.raises(CircuitError, match="width=8 needs an x86-64 host with avx512f and "
                       "avx512dq"):
        cg.to_c(c, width=8)
    assert isa.default_width() == 4


def test_the_cache_key_holds_the_width_and_the_isa(monkeypatch):
    c = cg.parse("J = tanh(x) * 3.25 + y")
    f = cg.to_c(c)
    assert cg.to_c(c).library == f.library  # a load
    libraries = {w: cg.to_c(c, width=w).library for w in WIDTHS}
    assert len(set(libraries.values())) == len(WIDTHS)  # one library per width
    monkeypatch.setattr(isa, "isa_tag", lambda width: "another cpu")
    g = cg.to_c(c)
    assert g.library != f.library and g.source == f.source  # same source, another ISA


# -- every width: the contract, and a point of a batch is the point alone ----------------------

@pytest.mark.parametrize("width", WIDTHS)
def test_every_width_keeps_the_contract_and_a_batch_point_is_the_point_alone(width):
    c = cg.grad(cg.parse(WIDE))
    x, y = _points()
    f = cg.to_c(c, width=width, threads=1)
    with np.errstate(all="ignore"):
        want = cg.to_numpy(c)(x, y)
        got = f(x, y)
        for g, w in zip(got, want):
            assert close(g, w), width
        # each place in a vector and in a chunk (8 points), the tails of every length
        for k in [*range(17), len(x) - 12, len(x) - 1]:
            for a, p in zip(got, f(x[k], y[k])):
                assert same_bits(a[k], p), (width, k)
        for n in range(1, 18):
            for a, b in zip(f(x[-n:], y[-n:]), got):
                assert same_bits(a, b[-n:]), (width, n)


def test_the_widths_agree_within_the_contract_and_bit_for_bit_where_the_code_is_the_same():
    x, y = _points()
    with np.errstate(all="ignore"):
        wide = [cg.to_c(cg.parse(WIDE), width=w)(x, y) for w in WIDTHS]
        for v in wide[1:]:
            assert within_ulps(v, wide[0], ulps=4 * COMPILED_ULPS)
        c = cg.grad(cg.parse(SAME_CODE))
        same = {w: cg.to_c(c, width=w)(x, y) for w in WIDTHS if w > 1}
        want = cg.to_numpy(c)(x, y)
        for w, values in same.items():
            # the first width of its kind: 8 and 4 fuse their kernels' multiply-adds, 2 not
            first = next(v for v in same if (v in isa.FMA_WIDTHS) == (w in isa.FMA_WIDTHS))
            assert all(same_bits(a, b) for a, b in zip(values, same[first])), w
            assert all(within_ulps(a, b, ulps=4 * COMPILED_ULPS)
                       for a, b in zip(values, same[WIDTHS[0]])), w
            # a gradient's sums cancel: against to_numpy, a relative tolerance (semantics.md)
            assert all(close(a, b) for a, b in zip(values, want)), w
        # no libmvec function in it at any width: the same vector code
        assert not any("_ZGV" in (cforms.vector_form(op, w) or "")
                       for op in ("sin", "cos", "exp", "sqrt", "floor", "relu", "maximum")
                       for w in same)


def test_plain_c_and_every_width_give_the_same_bits_on_arithmetic():
    c = cg.grad(cg.parse("J = (x * y - 3) / (1 + x * x) + sqrt(y) * floor(x) + "
                         "relu(y - x) + minimum(x, y) ** 2"))
    x, y = _points()
    with np.errstate(all="ignore"):
        values = [cg.to_c(c, width=w)(x, y) for w in WIDTHS]
        want = cg.to_numpy(c)(x, y)
    for v in values:
        assert all(same_bits(a, b) for a, b in zip(v, want))


def test_exact_cases_are_exact_at_every_width():
    # log10(1e7) = 7 and its kind: glibc's log10 (every width) gives 7.000000000000001 there;
    # the vector functions used must keep these exact. Compared with the exact answers (each
    # a float64), not with to_numpy's: NumPy's own SIMD kernels differ by CPU (AVX-512).
    powers = np.arange(0, 23), np.arange(-1074, 1024), np.arange(-1074.0, 1024.0)
    cases = {"log10": 10.0 ** powers[0], "log2": 2.0 ** powers[1], "exp2": powers[2],
             "sqrt": np.arange(0.0, 4097.0) ** 2}
    exact = {"log10": powers[0].astype(float), "log2": powers[1].astype(float),
             "exp2": 2.0 ** powers[2], "sqrt": np.arange(0.0, 4097.0)}
    # (not cbrt of cubes: libm's cbrt, the C form at every width, is 1 ulp off at 230 of the
    # cubes of -300 … 300, where NumPy's is exact: a gap of the C form, to_tape's too)
    text = "\n".join(f"{op}_ = {op}({op})" for op in cases)
    c = cg.parse(text, inputs=list(cases), outputs=[f"{op}_" for op in cases])
    n = max(len(x) for x in cases.values())
    args = {op: np.resize(x, n) for op, x in cases.items()}
    want = [np.resize(exact[op], n) for op in cases]
    for w in WIDTHS:
        for op, got, expected in zip(cases, cg.to_c(c, width=w)(**args), want):
            assert same_bits(got, expected), (op, w, cforms.vector_form(op, w))


# -- threads: bit for bit for any count, the GIL released -------------------------------------

@pytest.mark.parametrize("width", sorted({WIDTHS[0], WIDTHS[-1]}))
def test_any_thread_count_gives_the_same_bits(width, monkeypatch):
    monkeypatch.setattr(c_lowering, "WORK_PER_THREAD", 1)  # a thread for every few points
    c = cg.grad(cg.parse(WIDE))
    x, y = _points(5001)
    f = cg.to_c(c, width=width, threads=1)
    with np.errstate(all="ignore"):
        one = f(x, y)
        for threads in (2, 3, 7, 64, 200):
            f.threads = threads
            for a, b in zip(f(x, y), one):
                assert same_bits(a, b), threads
            for n in (1, 8, 9, 17, 100):  # batches shorter than the threads' slices
                for a, b in zip(f(x[:n], y[:n]), one):
                    assert same_bits(a, b[:n]), (threads, n)


def test_the_thread_count_default_and_its_refusals(monkeypatch):
    c = cg.parse("J = sin(x) * y")
    f = cg.to_c(c)
    assert f.threads == c_lowering.default_threads() >= 1
    monkeypatch.setenv("CIRCUITGRAD_THREADS", "3")
    assert c_lowering.default_threads() == 3 and cg.to_c(c).threads == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("CIRCUITGRAD_THREADS", bad)
        with pytest.raises(CircuitError, match="CIRCUITGRAD_THREADS=.*at least 1"):
            cg.to_c(c)
    monkeypatch.delenv("CIRCUITGRAD_THREADS")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(CircuitError, match="threads=.*at least 1"):
            cg.to_c(c, threads=bad)
        with pytest.raises(CircuitError, match="threads=.*at least 1"):
            f.threads = bad


def test_a_small_batch_stays_on_one_thread_a_large_one_is_split(monkeypatch):
    calls = []
    c = cg.grad(cg.parse(WIDE))
    f = cg.to_c(c, threads=4)
    real = f._run_columns  # a batch's call (NAME_eval_columns_threads), its thread count last
    f._run_columns = lambda *a: calls.append(a[-1]) or real(*a)
    x, y = _points(20000)
    f(x[:3], y[:3])
    assert calls == [1]  # a few points: one thread, no thread started
    f(x, y)
    assert calls == [1, 4]


def test_the_threads_entry_point_runs_from_c_as_documented():
    c = cg.grad(cg.parse("J = sin(x) * y"))
    f = cg.to_c(c, threads=2)
    assert "int f_eval_threads(const double *in, double *out, long npoints, int threads)" \
        in f.source
    x = np.linspace(-2, 2, 4099)
    inputs = np.ascontiguousarray(np.stack([x, x[::-1]], axis=1))
    out = np.empty((4099, 3))
    assert f._fn_threads(inputs.ctypes.data, out.ctypes.data, 4099, 4) == 0
    want = f(x, x[::-1])
    assert all(same_bits(out[:, k], want[k]) for k in range(3))


@pytest.mark.parametrize("threads", [1, 2])
def test_the_gil_is_released_while_a_batch_runs(threads):
    # While one Python thread runs a long batch, another runs Python: with the GIL held for the
    # call, the second would stop for all of it (its longest pause ≈ the call).
    c = cg.grad(cg.parse(WIDE))
    f = cg.to_c(c, threads=threads)
    x, y = _points(200_000)
    with np.errstate(all="ignore"):
        f(x[:1000], y[:1000])
        span = []

        def call():
            t0 = time.perf_counter()
            f(x, y)
            span.append((t0, time.perf_counter()))

        worker = threading.Thread(target=call)
        ticks = []
        worker.start()
        while worker.is_alive():
            ticks.append(time.perf_counter())
        worker.join()
    (t0, t1), = span
    inside = [t for t in ticks if t0 <= t <= t1]
    assert t1 - t0 > 0.02, "the batch is too short to tell"
    gaps = np.diff([t0, *inside, t1])
    assert gaps.max() < 0.5 * (t1 - t0), (gaps.max(), t1 - t0)


def test_a_pickle_asks_the_width_and_threads_again():
    c = cg.parse("J = tanh(x) * y")
    f = cg.to_c(c)
    g = pickle.loads(pickle.dumps(f))
    assert (g.width, g.threads, g.library) == (f.width, f.threads, f.library)
    f.threads = 3
    h = cg.to_c(c, width=WIDTHS[-1])
    assert pickle.loads(pickle.dumps(f)).threads == 3
    assert pickle.loads(pickle.dumps(h)).width == WIDTHS[-1]


# -- circuitgrad's own kernels: the cube, the sigmoid, the reduction's rounds ------------------

def _ulps_apart(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in ulps of finite values (0 where both are the same special value)."""
    ia, ib = a.view(np.int64), b.view(np.int64)
    oa = np.where(ia < 0, np.int64(-2**63) - ia, ia)
    ob = np.where(ib < 0, np.int64(-2**63) - ib, ib)
    return np.where(np.isnan(a) & np.isnan(b), 0, np.abs(oa - ob))


def test_pow_of_three_is_the_compensated_cube_within_one_ulp_and_specials_exact():
    c = cg.parse("J = x ** 3.0")
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-10, 10, 20000),
                        rng.choice([-1.0, 1.0], 20000) * 10.0 ** rng.uniform(-323, 308, 20000),
                        np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324,
                                  2.0**-300, np.nextafter(2.0**-300, 0), 2.0**300,
                                  np.nextafter(2.0**300, np.inf), -2.0**300,
                                  5.643803094122362e102, -5.643803094122362e102, 1e103])])
    with np.errstate(all="ignore"):
        want = cg.to_numpy(c)(x)
    for width in WIDTHS:
        f = cg.to_c(c, width=width, threads=1)
        assert width == 1 or "cgv_cube(w, " in f.source
        with np.errstate(all="ignore"):
            got = f(x)
        assert np.array_equal(np.isnan(got), np.isnan(want))
        special = ~np.isfinite(want) | (want == 0)
        assert np.array_equal(got[special], want[special], equal_nan=True)
        assert np.array_equal(np.signbit(got[special]), np.signbit(want[special]))
        assert _ulps_apart(got, want)[~special].max() <= 1, width
        for k in (0, 1, 20001, len(x) - 1):  # a point of the batch is the point alone
            assert same_bits(f(x[k]), got[k])


def test_the_vector_sigmoid_is_the_composite_bit_for_bit_at_every_width():
    """cg_vsigmoid does what the source's operations of its formula (SciPy's expit's) do."""
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.uniform(-40, 40, 20000), rng.uniform(-800, 800, 4000),
                        np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -745.2, 709.9])])
    composite = "e = exp(-abs(x))\nJ = where(x >= 0.0, 1.0, e) / (1.0 + e)"  # cg_sigmoid's
    for width in [w for w in WIDTHS if w > 1]:
        f = cg.to_c(cg.parse("J = sigmoid(x)"), width=width, threads=1)
        g = cg.to_c(cg.parse(composite), width=width, threads=1)
        assert "cg_vsigmoid(a0)" in f.source
        with np.errstate(all="ignore"):
            assert same_bits(f(x), g(x)), width


def test_sine_and_cosine_near_multiples_of_half_pi_keep_the_contract():
    """Where the reduction's first round cancels, the second and third run (lane by lane)."""
    base = np.arange(1, 40001, dtype=np.float64) * (np.pi / 2)
    x = np.concatenate([base, np.nextafter(base, 0), np.nextafter(base, np.inf), -base])
    for op in ("sin", "cos"):
        c = cg.parse(f"J = {op}(x)")
        want = cg.to_numpy(c)(x)
        for width in [w for w in WIDTHS if w > 1]:
            assert _ulps_apart(cg.to_c(c, width=width, threads=1)(x), want).max() <= 2, \
                (op, width)


def test_exp_every_row_of_its_table_the_same_bits_per_kind_of_width_within_one_ulp_of_libm():
    """cg_vexp (16 rows: a permute at 8 lanes, loads at 4 and 2) is the same function at the
    widths of one kind (fused multiply-adds at 8 and 4, isa.FMA_WIDTHS; none at 2), within 1
    ulp of the C library's exp (Python's math.exp) at every width, specials libm's."""
    import math
    rng = np.random.default_rng(5)
    rows = np.arange(-16 * 40, 16 * 40) * (math.log(2) / 16)  # each row, k of both signs
    x = np.concatenate([rng.uniform(-708, 708, 30000), rng.uniform(-1, 1, 30000), rows,
                        np.nextafter(rows, np.inf), np.nextafter(rows, -np.inf),
                        rows + math.log(2) / 32, rows - math.log(2) / 32,  # between rows
                        np.array([0.0, -0.0, 708.0, -708.0, 709.7, -745.0, -745.2, 710.0,
                                  1e-300, -1e-300, np.inf, -np.inf, np.nan])])
    with np.errstate(all="ignore"):
        want = np.array([math.exp(v) if v < 709.78 else v * math.inf for v in x])
    runs = {}
    for width in [w for w in WIDTHS if w > 1]:
        f = cg.to_c(cg.parse("J = exp(x)"), width=width, threads=1)
        assert "cg_vexp(a0)" in f.source
        with np.errstate(all="ignore"):
            runs[width] = f(x)
        first = max(w for w in runs if (w in isa.FMA_WIDTHS) == (width in isa.FMA_WIDTHS))
        assert same_bits(runs[width], runs[first]), width
        special = ~np.isfinite(want) | (want == 0)
        assert same_bits(runs[width][special], want[special])
        assert _ulps_apart(runs[width], want)[~special].max() <= 1, width


@pytest.mark.parametrize("width", sorted({WIDTHS[0], WIDTHS[-1]}))
def test_whole_chunks_of_contiguous_columns_are_copied_the_others_read_lane_by_lane(width):
    """A whole chunk (LANES points) of a column of step 1 is one copy into (out of) the
    registers; strided, broadcast and partial chunks are read point by point: the same bits."""
    c = cg.grad(cg.parse("J = sin(x) * y + exp(-x * z) + z * z * y"))
    f = cg.to_c(c, width=width, threads=1)
    assert "if (CG_WHOLE) CG_COPY(CG_LANES(" in f.source
    rng = np.random.default_rng(6)
    for n in (1, 7, 8, 9, 16, 23, 64):
        x, wide = rng.uniform(-3, 3, n), rng.uniform(-3, 3, (n, 3))
        y = wide[:, 1]  # a column of step 3
        got = f(x, y, 0.75)  # z: one value for every point (step 0)
        copies = f(x.copy(), y.copy(), np.full(n, 0.75))
        outs = [np.full((n, 2), np.nan)[:, 0] for _ in got]  # written with step 2
        f.into(outs, x, y, 0.75)
        for k in range(n):
            alone = f(x[k], y[k], 0.75)
            for a, b, o, p in zip(got, copies, outs, alone):
                assert same_bits(a[k], p) and same_bits(b[k], p) and same_bits(o[k], p)


def _edges(op: str) -> np.ndarray:
    """The kernels' edges: exp's rows and range ends, the sine's and cosine's multiples of
    pi/2, the reduction's end (786432), 2^-27 and the cosine's branches at 0.3 and 0.78125."""
    rng = np.random.default_rng(7)
    if op == "exp":
        rows = np.arange(-2000, 2000) * (np.log(2) / 16)
        return np.concatenate([rng.uniform(707, 708, 1000), -rng.uniform(707, 708, 1000),
                               rng.uniform(-1e-3, 1e-3, 1000), rng.uniform(-30, 30, 2000),
                               rows + rng.uniform(-1e-9, 1e-9, rows.size),
                               np.ldexp(rng.uniform(-1, 1, 500), rng.integers(-1074, -20, 500))])
    near = np.arange(1, 3000) * (np.pi / 2)
    tiny = np.ldexp(rng.uniform(0.5, 1, 500), -27)
    return np.concatenate([near + rng.uniform(-1e-6, 1e-6, near.size), -near,
                           rng.uniform(786000, 786432, 1000), tiny, -tiny, rng.uniform(-1, 1, 2000),
                           np.ldexp(rng.uniform(-1, 1, 300), rng.integers(-1074, -27, 300)),
                           np.nextafter([0.3, 0.78125], 0), np.nextafter([0.3, 0.78125], 1)])


@pytest.mark.parametrize("op", ["exp", "sin", "cos"])
def test_own_exp_sin_cos_within_one_ulp_of_the_exact_value_at_every_width(op):
    """cg_vexp, cg_vsin, cg_vcos (their polynomials' multiply-adds fused at isa.FMA_WIDTHS,
    rounded twice at 2 lanes): within 1 ulp of mpmath's value on their edges at every width
    (exp 0.53, sin 0.68, cos 0.73 measured), the specials to_numpy's."""
    mpmath = pytest.importorskip("mpmath")
    x = _edges(op)
    with mpmath.workprec(200):
        exact = [getattr(mpmath, op)(mpmath.mpf(float(v))) for v in x]
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 708.0, -708.0,
                        709.9, -745.2, 786432.0, np.nextafter(786432.0, np.inf), 1e300])
    c = cg.parse(f"J = {op}(x)")
    with np.errstate(all="ignore"):
        want = cg.to_numpy(c)(special)
    for width in [w for w in WIDTHS if w > 1]:
        f = cg.to_c(c, width=width, threads=1)
        assert f"cg_v{op}(a0)" in f.source
        got = f(x)
        ulps = [float(abs(mpmath.mpf(float(g)) - e)) / np.spacing(abs(float(e)))
                for g, e in zip(got, exact)]
        assert max(ulps) <= 1.0, (op, width, x[int(np.argmax(ulps))])
        with np.errstate(all="ignore"):
            assert within_ulps(f(special), want, ulps=2), width
