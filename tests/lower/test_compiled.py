"""The compiled lowerings, ``to_tape`` and ``to_c``, against ``to_numpy``.

Semantics are the NumPy lowering's: special values (±0, ±inf, nan) identical, finite values of
one primitive within 4 ulp (libm against NumPy's own loops), random programs through all three
at a point and on batches. Tensor circuits are scalarized (reductions add left to right where
NumPy adds pairwise), so they agree to rounding, which the tolerance says.
"""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import programs, tensor_circuits, tensor_programs
from test_batch import SPECIAL, same_bits
from specs import SPECS
from tolerances import COMPILED_RTOL, COMPILED_ULPS

import circuitgrad as cg
from circuitgrad.circuit import LEAVES
from circuitgrad.builder import Builder
from circuitgrad.errors import CircuitError, ShapeError
from circuitgrad.lower import c as c_lowering
from circuitgrad.lower import cforms, isa, tape
from circuitgrad.primitives import PRIMITIVES, linalg
from paths import ROOT

ROOT = ROOT


@pytest.fixture(autouse=True, scope="module")
def compile_cache(tmp_path_factory):
    """to_c's libraries go to a fresh cache directory, so that the tests compile."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CIRCUITGRAD_CACHE", str(tmp_path_factory.mktemp("cg_cache")))
    yield
    mp.undo()


def within_ulps(a, b, ulps: int = COMPILED_ULPS) -> bool:
    """Non-finite values and zeros bit for bit (NaN where NaN, the sign of zero and of inf);
    finite values within ``ulps`` units in the last place."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    exact = ~np.isfinite(b) | ~np.isfinite(a) | (a == 0) | (b == 0)
    if not same_bits(a[exact], b[exact]):
        return False
    scale = np.spacing(np.maximum(np.abs(a), np.abs(b)))
    return bool(np.all(np.abs(a - b)[~exact] <= ulps * scale[~exact]))


def close(a, b) -> bool:
    """Scalarized tensor values: special values alike, finite ones to rounding."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    finite = np.isfinite(a) & np.isfinite(b)
    if not same_bits(a[~finite], b[~finite]):
        return False
    return bool(np.allclose(a[finite], b[finite], rtol=COMPILED_RTOL, atol=COMPILED_RTOL))


def outputs_of(f, values, single: bool):
    out = f(**values)
    return (out,) if single else tuple(out)


# -- the generated evaluator is what the table makes ------------------------------------------

def test_the_committed_opcode_switch_is_what_the_table_makes():
    committed = (ROOT / "circuitgrad" / "lower" / "_tape_ops.h").read_text()
    assert committed == cforms.tape_ops_header() + "\n", \
        "stale: run python scripts/gen_tape.py and pip install -e ."
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_tape.py"), "--check"],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout


def test_the_built_evaluator_has_every_c_form():
    assert tape._tape is not None, "the extension is not built: pip install -e ."
    assert list(tape._tape.OPS) == cforms.c_ops()


OPS = [op for op in PRIMITIVES if op not in LEAVES]


def test_every_primitive_has_a_c_form_or_is_scalarized():
    # An op without a C form must be one that scalarize expands: each is run below.
    without = {op for op in OPS if PRIMITIVES[op].c is None}
    assert without and all(PRIMITIVES[op].shape is not None or PRIMITIVES[op].c_refusal
                           for op in without)


def test_an_op_with_a_stated_refusal_is_refused_by_name():
    c = cg.parse("J = gammaln(x) + 1")
    for lower in (cg.to_tape, cg.to_c):
        with pytest.raises(cg.CircuitError, match="gammaln.*no C form: libm's lgamma"):
            lower(c)


def _one_node(op):
    _, args, params = SPECS[op][:3]
    scalar = PRIMITIVES[op].c is not None
    b = Builder()
    # A scalar op's samples are a batch of scalar points; a tensor op's are one point.
    nodes = [b.input(f"a{k}", () if scalar else np.shape(a)) for k, a in enumerate(args)]
    return b.finish([("f", b.apply(op, *nodes, **params))]), args, scalar


LINALG = {p.name for p in linalg.RECORDS}  # no scalar expansion: refused by name


@pytest.mark.parametrize("op", [op for op in OPS if PRIMITIVES[op].c_refusal is None])
def test_every_primitive_agrees_with_numpy(op):
    c, args, scalar = _one_node(op)
    if op in LINALG:
        for lowering in (cg.to_tape, cg.to_c):
            with pytest.raises(cg.CircuitError, match=f"{op} .*no scalar expansion.*to_numpy"):
                lowering(c)
        return
    with np.errstate(all="ignore"):
        want = cg.to_numpy(c)(*args)
        for lowering in (cg.to_tape, cg.to_c):
            got = lowering(c)(*args)
            assert (within_ulps if scalar else close)(got, want), (lowering.__name__, got, want)


@pytest.fixture(params=["vectors", "plain C"])
def c_path(request, monkeypatch):
    """to_c's two paths: the vector path where this machine has it, and the plain C path
    (the guard off: no -mavx2), which every other machine compiles."""
    if request.param == "vectors":
        if isa.default_width() == 1:
            pytest.skip("no vectors with glibc's libmvec here: to_c compiles plain C")
    else:
        monkeypatch.setenv("CIRCUITGRAD_NO_VECTORS", "1")
    return request.param


@pytest.mark.parametrize("op", [op for op in OPS if PRIMITIVES[op].c is not None])
def test_every_scalar_primitive_at_special_values(op, c_path):
    arity = PRIMITIVES[op].arity
    grid = np.array(SPECIAL + (1.0, -1.0, 0.5, 2.0, -3.0, 1000.0, -1000.0))
    args = np.meshgrid(*[grid] * arity, indexing="ij")
    b = Builder()
    c = b.finish([("f", b.apply(op, *[b.input(f"a{k}") for k in range(arity)]))])
    rng = np.random.default_rng(7)
    spread = [rng.choice([-1.0, 1.0], 2001) * 10.0 ** rng.uniform(-30, 30, 2001)
              for _ in range(arity)]  # every lane of the vectors, odd counts, wide values
    # erfc's C form (libm's) is over 4 ulp from SciPy's from x ≈ 0.8 on (19 by x = 5, ~500 in
    # its tail): a known gap of the C form, for to_tape as for to_c, not of the vectors.
    with np.errstate(all="ignore"):
        for points in (args, spread) if op != "erfc" else (args,):
            want = cg.to_numpy(c)(*points)
            for f in (cg.to_tape(c), cg.to_c(c)):
                got = f(*points)
                assert within_ulps(got, want), (op, c_path, [
                    a[~np.isclose(got, want, equal_nan=True)] for a in points])


def test_the_conventions_of_the_issue():
    c = cg.grad(cg.parse("J = relu(x) + sigmoid(y) + log(z) + 1/w + maximum(x, y)"))
    point = {"x": 0.0, "y": 1000.0, "z": 0.0, "w": -0.0}
    with np.errstate(all="ignore"):
        want = cg.to_numpy(c)(**point)
        for f in (cg.to_tape(c), cg.to_c(c)):
            got = f(**point)
            assert same_bits(np.array(got), np.array(want))
            assert got.dJ_dx == 1.0  # relu′(0) = 1; maximum(0, 1000) does not depend on x
            assert got.dJ_dz == np.inf and got.dJ_dw == -np.inf  # log′(0), −1/(−0)²
    s = cg.parse("J = sigmoid(x)")
    for f in (cg.to_tape(s), cg.to_c(s)):
        assert f(x=-1000.0) == 0.0 and f(x=1000.0) == 1.0
        assert np.isnan(f(x=np.nan))
    m = cg.parse("J = maximum(x, y)")
    for f in (cg.to_tape(m), cg.to_c(m)):
        assert np.isnan(f(np.nan, 1.0)) and np.isnan(f(1.0, np.nan))
        assert np.signbit(f(0.0, -0.0)) and not np.signbit(f(-0.0, 0.0))  # NumPy's tie


# -- random programs: to_numpy, to_tape and to_c agree -----------------------------------------

def _points(c, seed, batch, special):
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in c.input_shapes.items():
        v = rng.uniform(-2, 2, size=batch + shape)
        if special and v.size:
            flat = v.reshape(-1)
            picks = rng.integers(0, flat.size, size=max(1, flat.size // 5))
            flat[picks] = rng.choice(SPECIAL, size=picks.size)
        values[name] = v
    return values


def _agree(c, seed, exact, special=True):
    check = within_ulps if exact else close
    single = len(c.outputs) == 1
    with np.errstate(all="ignore"):
        fn, ft, fc = cg.to_numpy(c), cg.to_tape(c), cg.to_c(c)
        for batch in ((), (37,), (2, 3)):
            values = _points(c, seed, batch, special and batch != ())
            want = outputs_of(fn, values, single)
            for f in (ft, fc):
                got = outputs_of(f, values, single)
                for name, g, w in zip(c.outputs, got, want):
                    assert np.shape(g) == np.shape(w), (name, batch)
                    assert check(g, w), (type(f).__name__, name, batch, g, w)


@settings(max_examples=25)
@given(programs(), st.integers(0, 2**31))
def test_random_scalar_programs_and_their_gradients(program, seed):
    text, _point, _values = program
    c = cg.parse(text)
    # One op's 4 ulp can grow along a chain of ops: compared to rounding, specials exactly.
    _agree(c, seed, exact=False)
    _agree(cg.grad(c), seed, exact=False)


@settings(max_examples=15)
@given(tensor_programs(), st.integers(0, 2**31))
def test_random_tensor_programs_and_their_gradients(program, seed):
    text, shapes = program
    c = cg.parse(text, shapes=shapes, inputs=list(shapes))  # unused inputs too
    # Finite points only: at ±inf, a scalarized softmax or logsumexp is a fold of logaddexp,
    # not NumPy's shifted kernel, and the two give different NaNs (docs/compiled.md).
    _agree(cg.grad(c), seed, exact=False, special=False)


@settings(max_examples=15)
@given(tensor_circuits(), st.integers(0, 2**31))
def test_random_tensor_circuits_with_array_constants(c, seed):
    _agree(c, seed, exact=False, special=False)


def test_a_batch_point_is_the_point_bit_for_bit(c_path):
    c = cg.grad(cg.parse("J = sum(softmax(W @ x)) * tanh(b)", shapes={"W": (2, 3), "x": (3,)}))
    rng = np.random.default_rng(1)
    W, x, b = rng.normal(size=(5, 2, 3)), rng.normal(size=3), rng.normal(size=(5,))
    for f in (cg.to_tape(c), cg.to_c(c)):
        out = f(W=W, x=x, b=b)
        for k in range(5):
            one = f(W=W[k], x=x, b=b[k])
            for a, p in zip(out, one):
                assert same_bits(a[k], p)
    # every vector function in every lane, with lanes out of their range (huge, inf, nan)
    s = cg.grad(cg.parse("J = sin(x) * cos(y) + exp(x) * tanh(y) + sigmoid(x * y) "
                         "+ log(y * y + 1) + x ** y + sqrt(abs(x)) + relu(x) * sign(y)"))
    x = np.array([0.5, -2.0, 1e6, np.inf, -700.0, 3.0, np.nan, 1e-300, -0.0, 40.0, 2.5])
    y = np.array([1.5, 0.25, -3.0, 2.0, 1e7, -0.0, 1.0, 7.0, 0.5, -np.inf, 2.0])
    with np.errstate(all="ignore"):
        for f in (cg.to_tape(s), cg.to_c(s)):
            out = f(x, y)
            for k in range(x.size):
                for a, p in zip(out, f(x[k], y[k])):
                    assert same_bits(a[k], p), (k, x[k], y[k])


@pytest.mark.parametrize("width", [8, 4, 2])
def test_the_vector_path_calls_glibcs_vector_math_where_the_host_has_it(width):
    if width not in isa.host_widths():
        pytest.skip(f"this host does not run {width} points per vector (no {isa.ISA[width]} "
                    f"with glibc's libmvec)")
    assert c_lowering.compile_flags(width=width)[4:-2] == isa.width_flags(width)
    c = cg.grad(cg.parse("J = tanh(x) * log(y) + sin(x) + relu(y)"))
    f = cg.to_c(c, width=width)
    assert f.width == width and f"#define CG_WIDTH {width}" in f.source
    table = cforms.libmvec_table(width)
    used = {op for op, (symbol, _, _) in table.items()
            if symbol.encode() + b"\0" in f.library.read_bytes()}  # its dynamic symbols
    assert used == {"tanh", "log"}  # libmvec's sin is 3 ulp from NumPy: circuitgrad's own
    assert all(table[op][2] <= cforms.VECTOR_ULPS for op in used)
    prefix = isa.LIBMVEC_PREFIX[width]
    assert f"cg_v {prefix}v_tanh(cg_v);" in f.source and f"{prefix}v_sin" not in f.source
    assert "return cg_vsin(a0); }" in f.source and "return cg_vcos(a0); }" in f.source
    point = {"x": 0.3, "y": 2.0}
    with np.errstate(all="ignore"):
        assert within_ulps(np.array(f(**point)), np.array(cg.to_numpy(c)(**point)))


def test_the_plain_c_path_is_another_library_without_vector_math(monkeypatch):
    c = cg.grad(cg.parse("J = tanh(x) * log(y) + x ** y"))
    monkeypatch.delenv("CIRCUITGRAD_NO_VECTORS", raising=False)
    vector = cg.to_c(c)
    monkeypatch.setenv("CIRCUITGRAD_NO_VECTORS", "1")
    assert c_lowering.compile_flags()[4:-2] == []
    plain = cg.to_c(c)
    assert plain.width == 1 and "#define CG_WIDTH 1" in plain.source
    assert b"_ZGV" not in plain.library.read_bytes()
    if c_lowering._host_has_vectors():
        assert plain.library != vector.library  # the width is part of the cache key
    monkeypatch.delenv("CIRCUITGRAD_NO_VECTORS")
    assert cg.to_c(c, vectors=False).library == plain.library  # the same as the variable
    assert cg.to_c(c, width=1).library == plain.library
    points = {"x": np.linspace(0.1, 3.0, 11), "y": np.linspace(0.5, 4.0, 11)}
    want = cg.to_numpy(c)(**points)
    for f in (plain, vector):
        for g, w in zip(f(**points), want):
            assert within_ulps(g, w)


def test_vectors_true_is_refused_where_the_host_has_none(monkeypatch):
    monkeypatch.setattr(isa, "host_widths", lambda: (1,))
    with pytest.raises(CircuitError, match="vectors=True needs an x86-64 host with AVX-512"):
        cg.to_c(cg.parse("J = x * 1.75"), vectors=True)
    with pytest.raises(CircuitError, match="width=8 needs an x86-64 host with avx512f"):
        cg.to_c(cg.parse("J = x * 1.75"), width=8)
    assert c_lowering.compile_flags()[4:-2] == []  # None: plain C there
    assert cg.to_c(cg.parse("J = x * 1.75")).width == 1


def test_a_register_file_larger_than_the_stack_buffer(c_path):
    # 300 inputs keep 300 registers: the chunk's registers are allocated, not on the stack.
    names = [f"x{k}" for k in range(300)]
    c = cg.parse("J = " + " + ".join(f"sin({n}) * {n}" for n in names), inputs=names)
    f = cg.to_c(c)
    assert f.source.count("CG_EACH LANE(") == 300  # f_eval_columns (f_eval: its wrapper)
    values = np.random.default_rng(3).normal(size=(300, 13))
    with np.errstate(all="ignore"):
        assert close(f(*values), cg.to_numpy(c)(*values))
        # f_eval (301 columns: their addresses allocated) gives the columns' bits
        assert np.array_equal(f._evaluate(np.ascontiguousarray(values.T), 13)[:, 0],
                              f(*values), equal_nan=True)


# (the functions with a vector form; the others run lane by lane with libm, as plain C does)
VECTOR_FUNCTIONS = [(op, width) for width in (8, 4, 2) for op in OPS
                    if PRIMITIVES[op].c is not None
                    and (op in cforms.libmvec_table(width) or op in cforms.VECTOR_MATH)
                    and cforms.vector_form(op, width) is not None]


@pytest.mark.parametrize("op, width", VECTOR_FUNCTIONS)
def test_the_vector_functions_used_are_within_vector_ulps_of_numpy(op, width):
    # The bound the vector functions were chosen by (cforms.VECTOR_ULPS, half the contract's),
    # on 40,000 points per function: typical, wide (sin's range reduction), and tiny to huge.
    form = cforms.vector_form(op, width)
    if width not in isa.host_widths():
        pytest.skip(f"this host does not run {width} points per vector")
    arity = PRIMITIVES[op].arity
    rng = np.random.default_rng(11)
    args = [np.concatenate([rng.uniform(-10, 10, 20000), rng.uniform(-1e6, 1e6, 10000),
                            rng.choice([-1.0, 1.0], 10000) * 10.0 ** rng.uniform(-300, 300, 10000)])
            for _ in range(arity)]
    b = Builder()
    c = b.finish([("f", b.apply(op, *[b.input(f"a{k}") for k in range(arity)]))])
    with np.errstate(all="ignore"):
        got, want = cg.to_c(c, width=width)(*args), cg.to_numpy(c)(*args)
        assert within_ulps(got, want, ulps=cforms.VECTOR_ULPS), (op, width, form)


def test_every_vector_form_was_written_for_the_tables_form():
    # A vector form is used only while the primitive's C form is the one it mirrors (else the
    # node runs lane by lane, correct but slower): a changed form must be mirrored again.
    stale = {op: (PRIMITIVES[op].c, scalar) for op, (scalar, _) in cforms.VECTOR_FORMS.items()
             if PRIMITIVES[op].c != scalar}
    assert not stale, stale
    assert all(cforms.vector_form(op) is not None for op in cforms.VECTOR_FORMS)


# -- the interface is to_numpy's --------------------------------------------------------------

def test_interface_positional_keyword_named_outputs_and_broadcast_batches():
    c = cg.grad(cg.parse("J = w*x + b"))
    for f in (cg.to_tape(c), cg.to_c(c)):
        assert f.inputs == ("w", "x", "b") and f.outputs == ("J", "dJ_dw", "dJ_dx", "dJ_db")
        out = f(2.0, x=3.0, b=1)
        assert out.J == 7.0 and out.dJ_dw == 3.0 and type(out.J) is np.float64
        grid = f(w=np.ones((4, 1)), x=np.arange(3.0), b=0.0)  # batch shapes (4, 1) and (3,)
        assert grid.J.shape == (4, 3) and grid.dJ_db.shape == (4, 3)
        with pytest.raises(TypeError, match="missing inputs"):
            f(w=1.0)
        with pytest.raises(TypeError, match="no input 'q'"):
            f(1.0, 2.0, 3.0, q=1.0)
        with pytest.raises(ShapeError, match="batch shapes do not broadcast"):
            f(w=np.ones(2), x=np.ones(3), b=0.0)
    t = cg.parse("y = W @ x", shapes={"W": (2, 3), "x": (3,)})
    for f in (cg.to_tape(t), cg.to_c(t)):
        with pytest.raises(ShapeError, match="input 'x' has shape"):
            f(np.ones((2, 3)), np.ones(4))
        y = f(np.ones((2, 3)), np.arange(3.0))
        assert y.shape == (2,) and y.tolist() == [3.0, 3.0]


def test_pickles_as_the_circuit():
    c = cg.parse("J = sin(x) * y")
    for f in (cg.to_tape(c), cg.to_c(c), cg.to_c(c, vectors=False)):
        g = pickle.loads(pickle.dumps(f))
        assert type(g) is type(f) and g(1.0, 2.0) == f(1.0, 2.0)
        assert getattr(g, "library", None) == getattr(f, "library", None)  # the same path


def test_a_long_chain_has_no_recursion_and_few_registers():
    b = Builder()
    v = b.input("x")
    for k in range(100_000):
        v = b.apply("sin", v) if k % 2 else b.apply("mul", v, 1.0001)
    f = cg.to_tape(b.finish([("f", v)]))
    assert f.registers <= 3
    x = 0.3
    for k in range(100_000):
        x = np.sin(x) if k % 2 else x * 1.0001
    assert within_ulps(f(0.3), x, ulps=64)


# -- to_c: source, cache, refusals --------------------------------------------------------------

def test_c_source_is_readable_split_and_self_contained():
    c = cg.grad(cg.parse("z = w*x + b\nJ = relu(z)"))
    source = cg.to_c(c).source
    assert "/* forward */" in source and "/* backward" in source
    assert "/* z */" in source and "/* J */" in source and "/* w_bar */" in source
    assert "#include <Python.h>" not in source and "#include <math.h>" in source
    big = cg.parse("\n".join(["a0 = x"] + [f"a{k} = sin(a{k - 1})" for k in range(1, 1200)]))
    parts = c_lowering.c_source(big).count("CG_PART f_part")
    assert parts == 3  # 1199 nodes in functions of 500


def test_c_second_build_is_a_load_from_the_cache(monkeypatch):
    c = cg.parse("J = exp(x) * cos(y) + 17.0")
    first = cg.to_c(c)

    def no_compiler(*args, **kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr(c_lowering.subprocess, "Popen", no_compiler)
    second = cg.to_c(c)
    assert second.library == first.library and second(1.0, 2.0) == first(1.0, 2.0)


def test_c_without_a_compiler_says_to_use_to_tape(monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler")
    monkeypatch.setattr(c_lowering.shutil, "which", lambda name: None)
    with pytest.raises(CircuitError, match="to_tape"):
        cg.to_c(cg.parse("J = x * 3.5 + 1.25"))


def test_c_compile_time_limit_kills_the_compiler(tmp_path, monkeypatch):
    monkeypatch.setenv("CIRCUITGRAD_CACHE", str(tmp_path))
    with pytest.raises(CircuitError, match="did not finish within"):
        cg.to_c(cg.parse("J = x * 2.75 - 0.5"), timeout=0.001)
    assert not list(tmp_path.glob("*.so"))


def test_c_rejects_a_name_that_is_not_a_c_identifier():
    with pytest.raises(CircuitError, match="not a C identifier"):
        cg.to_c(cg.parse("x + 1"), name="my-f")


def test_tape_without_the_extension_says_how_to_build_it(monkeypatch):
    monkeypatch.setattr(tape, "_tape", None)
    with pytest.raises(CircuitError, match=r"pip install -e \."):
        cg.to_tape(cg.parse("x + 1"))


def test_cli_eval_backends_print_the_same(capsys):
    from circuitgrad.cli import main

    for argv in (["sin(x)*y + relu(x) + log(y)", "--at", "x=0.5,y=2", "--grad"],
                 ["sum(W @ x)", "--shapes", "W=2x2,x=2", "--at", "W=[[1,2],[3,4]],x=[1,-1]",
                  "--grad"],
                 ["x / y", "--at", "x=[1,2,3],y=0"]):  # a batch of three points, x/0
        printed = []
        for backend in ("numpy", "tape", "c"):
            assert main(["eval", *argv, "--backend", backend]) == 0
            printed.append(capsys.readouterr().out)
        assert printed[0] == printed[1] == printed[2] and printed[0]
    with pytest.raises(SystemExit):
        main(["eval", "x", "--at", "x=1", "--backend", "fortran"])


def test_an_op_without_a_c_form_is_refused_by_name(monkeypatch):
    # A primitive registered at run time without a C form: the NumPy lowering runs it, the C
    # lowerings name it (scalarize leaves an elementwise op as it is).
    record = PRIMITIVES["sin"]
    import dataclasses
    monkeypatch.setitem(PRIMITIVES, "wobble", dataclasses.replace(record, name="wobble", c=None))
    b = Builder()
    c = b.finish([("f", b.apply("wobble", b.input("x")))])
    assert cg.to_numpy(c)(0.5) == np.sin(0.5)
    for lowering in (cg.to_tape, cg.to_c):
        with pytest.raises(CircuitError, match=r"node %1 \(wobble\) has no C form"):
            lowering(c)


def test_an_empty_tensor_is_refused_by_name():
    c = cg.parse("J = sum(v)", shapes={"v": (0,)})
    assert cg.to_numpy(c)(np.ones(0)) == 0.0
    for lowering in (cg.to_tape, cg.to_c):
        with pytest.raises(CircuitError, match=r"node %0 \(input\) has the empty shape \(0,\)"):
            lowering(c)


@pytest.mark.parametrize("lower", [cg.to_tape, cg.to_c])
def test_sparse_outputs_are_csr_as_in_to_numpy(lower):
    # A sparse Jacobian lowers to the same CSR matrix (one point) and the same nonzeros
    # (csr=False, batches) as to_numpy gives; a batch of CSR is refused the same way.
    c = cg.parse("r = x[1:] * x[:-1] + sin(x[1:])", shapes={"x": (6,)})
    j = cg.jacobian(c, sparse=True)
    x = np.linspace(-1.0, 2.0, 6)
    want = cg.to_numpy(j)(x=x).jacobian
    got = lower(j)(x=x).jacobian
    assert type(got) is type(want) and got.shape == want.shape == (5, 6)
    np.testing.assert_allclose(got.toarray(), want.toarray(), rtol=COMPILED_RTOL, atol=0)
    batch = np.stack([x, 2 * x, -x])
    np.testing.assert_allclose(lower(j, csr=False)(x=batch).jacobian,
                               cg.to_numpy(j, csr=False)(x=batch).jacobian,
                               rtol=COMPILED_RTOL, atol=0)
    with pytest.raises(ShapeError, match="CSR is 2-D"):
        lower(j)(x=batch)
    again = pickle.loads(pickle.dumps(lower(j, csr=False)))
    assert again(x=x).jacobian.shape == (want.nnz,)


@pytest.mark.parametrize("lower", [cg.to_tape, cg.to_c])
def test_one_point_arrays_take_the_fast_path_with_the_same_values(lower):
    # Arrays of the declared shapes skip the general binder: positional, keyword, a
    # non-contiguous view and a float32 array (general path) all give to_numpy's numbers.
    c = cg.parse("J = sum(100*(x[1:] - x[:-1]**2)**2 + (1 - x[:-1])**2) * s",
                 shapes={"x": (6,)})
    g = cg.grad(c)
    f, ref = lower(g), cg.to_numpy(g)
    wide = np.linspace(-1.0, 2.0, 12)
    for x in (wide[:6].copy(), wide[::2], wide[:6].astype(np.float32)):
        want = ref(x=np.asarray(x, dtype=np.float64), s=1.5)
        for got in (f(x, 1.5), f(x=x, s=1.5), f(s=1.5, x=x), f(x, np.float64(1.5))):
            assert got.dJ_dx.shape == (6,) and isinstance(got.dJ_ds, np.float64)
            np.testing.assert_allclose(got.dJ_dx, want.dJ_dx, rtol=COMPILED_RTOL, atol=0)
            np.testing.assert_allclose(got.J, want.J, rtol=COMPILED_RTOL, atol=0)
    with pytest.raises(ShapeError, match="'x' has shape"):
        f(wide[:5], 1.5)
    x = wide[:6].copy()
    f(x, 1.5).dJ_dx[:] = 0.0  # outputs are fresh arrays, not views of the inputs
    np.testing.assert_array_equal(x, wide[:6])


@pytest.mark.parametrize("lower", [cg.to_tape, cg.to_c], ids=["tape", "c"])
def test_numbers_in_numbers_out_take_the_extension_path_with_the_same_values(lower):
    # Scalar inputs and outputs: the extension reads the numbers and makes the outputs; what it
    # cannot read (a bool, a float32, a string, a huge int) goes to the binder, as in to_numpy.
    g = cg.grad(cg.parse("J = w*x + sin(b) / x"))
    f, ref = lower(g), cg.to_numpy(g)
    for args in ((2.0, 3, np.float64(0.5)), (-1.5, 1e-300, 7), (True, np.float32(2), 1.0)):
        got, want = f(*args), ref(*args)
        assert type(got) is type(want) and all(type(v) is np.float64 for v in got)
        batch = f(*(np.array([float(a)]) for a in args))
        for a, b, p in zip(got, want, batch):
            assert within_ulps(a, b) and same_bits(a, p[0])
    assert type(lower(cg.parse("J = sin(x)"))(1.0)) is np.float64
    with pytest.raises(TypeError, match="'w' is not a number"):
        f("a", 1.0, 1.0)
    with pytest.raises(OverflowError):
        f(10**400, 1.0, 1.0)
    many = cg.grad(cg.parse(" + ".join(f"sin(x{k})" for k in range(80))))  # past the stack
    values = np.linspace(0.1, 2.0, 80)
    for a, b in zip(lower(many)(*values), cg.to_numpy(many)(*values)):
        assert within_ulps(a, b)


def test_compositions_of_two_functions_keep_numpys_special_values(monkeypatch):
    # GCC folds sin(atan(x)) into x/sqrt(x*x + 1), which gives 1 at NaN, when libm need not set
    # errno (-fno-math-errno): every f(g(x)) of two scalar functions must keep to_numpy's NaN
    # and infinities (and its finite values to rounding, which f may amplify).
    from circuitgrad.primitives import FUNCTIONS, PRIMITIVES

    unary = sorted(name for name in FUNCTIONS if PRIMITIVES[name].arity == 1
                   and PRIMITIVES[name].c is not None and not PRIMITIVES[name].params)
    pairs = [(f, g) for f in unary for g in unary]
    names = [f"{f}_{g}" for f, g in pairs]
    # Each pair on its own input, so that g(x) has one use (GCC folds only then).
    text = "\n".join(f"{f}_{g} = {f}({g}(x{k}))" for k, (f, g) in enumerate(pairs))
    inputs = [f"x{k}" for k in range(len(pairs))]
    c = cg.parse(text, inputs=inputs, outputs=names)
    monkeypatch.setattr(c_lowering, "PART_SIZE", 10**6)  # one function: the compiler sees all
    x = np.concatenate([SPECIAL, np.random.default_rng(3).uniform(-2.0, 2.0, 40)])
    values = dict.fromkeys(inputs, x)
    with np.errstate(all="ignore"):
        want = cg.to_numpy(c)(**values)
        for lower in (cg.to_tape, cg.to_c):
            for name, g, w in zip(names, lower(c)(**values), want):
                finite = np.isfinite(w)
                assert np.array_equal(np.isnan(g), np.isnan(w)), (lower.__name__, name, x)
                assert np.array_equal(g[~finite & ~np.isnan(w)], w[~finite & ~np.isnan(w)]), \
                    (lower.__name__, name)
                np.testing.assert_allclose(g[finite], w[finite], rtol=1e-6, atol=1e-300,
                                           err_msg=f"{lower.__name__} {name}")


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_in_scalar_code_shifts_by_the_maximum(fn):
    # The scalar expansion was exp(x - logsumexp(x)): at large x the logsumexp's log n
    # rounded away and to_tape/to_c gave softmax([1e17, 1e17, 0, 1e17]) = [1, 1, 0, 1]
    # (a wrong number; found by the fused reviewer). Hand values: 1/3, log(1/3).
    c = cg.trace(lambda x: getattr(cg, fn)(x), shapes={"x": 4})
    want = (np.array([1, 1, 0, 1]) / 3.0 if fn == "softmax"
            else np.array([-np.log(3.0), -np.log(3.0), -1e17, -np.log(3.0)]))
    special = [[-np.inf] * 4, [np.inf, 0, 1, 2], [np.nan, 0, 1, 2], [-np.inf, 0, 1, 2],
               [-1e308, 0, 1e308, 5], [1e308, 1e308, 0, 1e308]]
    with np.errstate(all="ignore"):
        reference = cg.to_numpy(c)
        for lower in (cg.to_tape, cg.to_c):
            f = lower(c)
            np.testing.assert_allclose(f(np.array([1e17, 1e17, 0.0, 1e17])), want, rtol=1e-15)
            for x in special:  # NumPy's evaluation's special values (inf, NaN where it has
                # them), its finite entries within the compiled bound: NumPy's exp and log
                # are its SIMD loops, to_tape's and to_c's libm (ulps apart on AVX-512)
                np.testing.assert_allclose(f(np.array(x, float)), reference(np.array(x, float)),
                                           rtol=COMPILED_RTOL, atol=0)
