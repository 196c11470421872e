"""Hostile and huge input: parse fuzzing, nasty programs, huge circuits, user names in generated
code, pickling across processes, and the numerical semantics of docs/semantics.md."""

import multiprocessing
import os
import pickle
import sys
import importlib
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import circuitgrad as cg
from circuitgrad.builder import Builder
from strategies import programs

# Hostile text may hold literals too large for a float: parse warns (tested in test_parse).
pytestmark = pytest.mark.filterwarnings("ignore:.*too large for a float:RuntimeWarning")

# Examples per fuzzing target; raise it for a long run: CIRCUITGRAD_FUZZ=20000 pytest ...
FUZZ_EXAMPLES = int(os.environ.get("CIRCUITGRAD_FUZZ", "300"))


def parse_or_parse_error(text, **kw):
    """parse may succeed or raise ParseError; anything else fails the test."""
    try:
        with warnings.catch_warnings():  # 1e999: parse warns by design (test_parse checks it)
            warnings.filterwarnings("ignore", "line .* too large for a float", RuntimeWarning)
            c = cg.parse(text, **kw)
    except cg.ParseError as e:
        assert e.line is None or e.line >= 1
        return None
    c.validate()
    return c


# -- fuzzing parse ----------------------------------------------------------------------------
TOKENS = ["x", "y", "z", "sin", "exp", "log", "sum", "mean", "outer", "relu", "axis", "T", "(",
          ")", "[", "]", "+", "-", "*", "/", "**", "@", "//", "%", ".", ",", "=", ":", ":=",
          "\n", " ", "  ", "\t", "1", "0", "2.5", "1e999", "1j", "0x1f", "lambda", "__import__",
          "__class__", "'s'", "b''", "f'", "{", "}", "if", "else", "not", "and", "is", "#", "\\",
          ";", "\x00", "θ", "ﬁ", "\u2028", "\r", "\ufeff", "_", "match", "case", "None", "True",
          "...", "del", "import", "yield", "await", "print", "\ud800", "<", "<=", "==", "!=",
          "&", "|", "~", "or", "where", "pi", "e", "max", "logsumexp", "clip", "atan2"]

token_soup = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)

names = st.sampled_from(["x", "y", "z", "_", "match", "type", "θ", "np", "_np", "xp", "v1",
                         "sin"])
atoms = names | st.sampled_from(["0", "1", "2.5", "1e308", "1e-320", "10**400", "-0.0"])
UNARY = ["-{}", "+{}", "({})", "sin({})", "exp({})", "log({})", "sqrt({})", "relu({})",
         "sigmoid({})", "abs({})", "sum({})", "sum({}, axis=0)", "mean({}, axis=-1)", "{}.T",
         "transpose({})", "not {}", "~{}", "{}.real", "{}[0]", "lambda: {}", "f'{{{}}}'",
         "*{}", "({} := y)", "sin({}, y)", "foo({})"]
BINARY = ["{} + {}", "{} - {}", "{} * {}", "{} / {}", "{} ** {}", "{} @ {}", "outer({}, {})",
          "{} // {}", "{} < {}", "{} and {}", "{}, {}", "{}({})", "{} if {} else 1"]


def _unary(inner):
    return st.tuples(st.sampled_from(UNARY), inner).map(lambda t: t[0].format(t[1]))


def _binary(inner):
    return st.tuples(st.sampled_from(BINARY), inner, inner).map(
        lambda t: t[0].format(t[1], t[2]) if t[0].count("{}") == 2 else t[0].format(t[1]))


expressions = st.recursive(atoms, lambda inner: _unary(inner) | _binary(inner), max_leaves=12)


@st.composite
def programs_with_typos(draw):
    """Grammar-ish programs (assignments of random expressions), then a few random edits."""
    lines = [f"{draw(names)} = {draw(expressions)}" for _ in range(draw(st.integers(0, 3)))]
    lines.append(draw(expressions))
    text = "\n".join(lines)
    for _ in range(draw(st.integers(0, 3))):
        k = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["delete", "insert", "duplicate"]))
        if edit == "delete":
            text = text[:k] + text[k + 1:]
        elif edit == "insert":
            text = text[:k] + draw(st.sampled_from(TOKENS)) + text[k:]
        else:
            text = text[:k] + text[k:] + text[k:]
    return text


@settings(max_examples=FUZZ_EXAMPLES)
@given(st.text(max_size=80))
def test_random_text_raises_only_parse_errors(text):
    parse_or_parse_error(text)


@settings(max_examples=FUZZ_EXAMPLES)
@given(token_soup)
def test_token_soup_raises_only_parse_errors(text):
    parse_or_parse_error(text)


@settings(max_examples=FUZZ_EXAMPLES)
@given(programs_with_typos(), st.booleans())
def test_grammar_programs_with_typos_raise_only_parse_errors(text, tensors):
    c = parse_or_parse_error(text)
    if c is not None and not tensors:
        # What parses also lowers and runs (warnings of singular points aside).
        with np.errstate(all="ignore"):
            cg.to_numpy(c)(*[0.5] * len(c.inputs))
    if tensors:
        parse_or_parse_error(text, shapes={"x": (2, 3), "y": (3,)} if "y" in text else None)


# -- the nasty list ---------------------------------------------------------------------------
NASTY = [
    "__import__('os').system('echo hacked')",
    "().__class__.__bases__[0].__subclasses__()",
    "lambda: 1", "(lambda x: x)(1)", "f'{x}'", "f'{__import__(\"os\")}'", "(y := x)",
    "sin(*x)", "sin(**x)", "x.__dict__", "x.__class__", "b'abc' * x", "x\x00", "\x00",
    "((x", "x))", "sin(x", "[", "}", "x = (", '"""', "x\\", "open('/etc/passwd')",
    "exec('1')", "eval('1')", "globals()", "import os", "from os import system",
    "x[0]", "x is y", "x in y", "x if y", "yield x", "await x", "x; y",
    "del x", "global x", "x = y = z", "a, b = x, y", "x: int = 1", "x += 1",
    "def f(): return 1", "class A: pass", "for i in x: y", "while x: y", "with x: y",
    "try: x\nexcept: y", "assert x", "raise x", "match x:\n case 1: y",
    "x @ y", "sum(x, axis=99)", "sum(x, axis=10**100)", "mean(x, axis=x)",
    "\ufeffx", "x\u2028y", "x + \udcff", "1j * x", "None", "...", "True",
    "9" * 5000, "x" * 10**6 + " + (",
]


@pytest.mark.parametrize("text", NASTY, ids=lambda t: repr(t[:30]))
def test_nasty_programs_are_parse_errors(text):
    with pytest.raises(cg.ParseError):
        cg.parse(text)


@pytest.mark.parametrize("text", [
    "-" * 100_000 + "x", "+" * 100_000 + "x", "~" * 100_000 + "x", "not " * 50_000 + "x",
    "(" * 100_000 + "x" + ")" * 100_000, "sin(" * 100_000 + "x" + ")" * 100_000,
    "x" + "**x" * 100_000, "x" + ".T" * 100_000, "[" * 100_000, "(" * 100_000,
], ids=lambda t: repr(t[:12]))
def test_deep_nesting_is_a_parse_error(text):
    with pytest.raises(cg.ParseError):
        cg.parse(text)


def test_deep_nesting_error_names_its_line():
    lines = [f"v{i} = x + {i}" for i in range(5000)]
    for k in (3, 2500, 4999):
        bad = list(lines)
        bad[k] = f"v{k} = " + "-" * 100_000 + "x"
        with pytest.raises(cg.ParseError, match="too deeply nested") as info:
            cg.parse("\n".join(bad))
        assert info.value.line == k + 1
    bad = lines[:50] + ["w = (x +", "-" * 100_000 + "x)"] + lines[50:]
    with pytest.raises(cg.ParseError, match="too deeply nested") as info:
        cg.parse("\n".join(bad))
    assert info.value.line == 52


def test_long_names_and_long_lines_parse():
    name = "a" * 100_000
    c = cg.parse(f"{name} * 2 + sin({name})")
    assert c.inputs == (name,)
    assert float(cg.to_numpy(c)(1.0)) == 2 + np.sin(1.0)
    long_sum = " + ".join(f"x{i}" for i in range(2000))
    assert cg.parse(long_sum).size == 1999


def test_shape_errors_in_text_are_parse_errors_too():
    with pytest.raises(cg.ParseError) as info:
        cg.parse("z = x + 1\nW @ z", shapes={"W": (2, 3), "x": (4,)})
    assert isinstance(info.value, cg.ShapeError)
    assert (info.value.line, info.value.column) == (2, 1)


def test_parse_emits_no_warnings_on_odd_literals():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for text in ["'\\d'", "x is 1", "0x1for", "1if x"]:
            with pytest.raises(cg.ParseError):
                cg.parse(text)
        for text in ["1if x else y", "1and x", "1or x"]:  # valid: where, logical_and, or
            assert cg.parse(text).size == 1


def _depth():
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


# -- huge input -------------------------------------------------------------------------------
def _heavy_program(n):
    lines = ["v0 = x", "v1 = y", "v2 = x * y"]
    lines += [f"v{i} = sin(v{i-1}) * 0.25 + v{i-2} / (1.5 + v{i-3} * v{i-3}) - tanh(v{i-1}) "
              f"+ exp(-v{i-2})" for i in range(3, n)]
    return "\n".join(lines)


def test_parse_work_is_linear_in_the_text(monkeypatch):
    # Linear work, counted rather than timed (timings live in benchmarks/huge.py): Python's
    # parser sees each line O(1) times however the program is cut into chunks, and the
    # builder makes one node per operation.
    parse_module = importlib.import_module("circuitgrad.frontends.parse")

    seen = []
    real = parse_module.ast.parse

    def counting(source, *args, **kwargs):
        seen.append(source.count("\n") + 1)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(parse_module.ast, "parse", counting)
    for n in (500, 5000):
        seen.clear()
        c = cg.parse(_heavy_program(n))
        assert sum(seen) <= 2 * n, (n, sum(seen))
        assert c.size <= 11 * n
    # A statement across a chunk boundary makes the chunk grow, still O(1) parses a line.
    seen.clear()
    heavy = [f"u{i} = sin(x) * y - tanh(x) + exp(-y) * {i}.0" for i in range(1995)]
    lines = heavy + ["w = (x +"] + [f"  {i}.0 +" for i in range(1, 20)] + ["  1.0)"] + [
        f"t{i} = sin(w) * y - tanh(x) + exp(-y) * {i}.0" for i in range(3000)]
    cg.parse("\n".join(lines))
    assert len(seen) > 1 and sum(seen) <= 3 * len(lines), seen


def test_big_program_through_the_whole_pipeline_without_recursion():
    # parse -> grad -> to_numpy (interpreter: above COMPILE_LIMIT) -> evaluation, with a
    # recursion limit far below the circuit's depth (benchmarks/huge.py runs 10⁶ nodes).
    n = 7000
    text = "\n".join(["v0 = x"] + [f"v{i} = sin(v{i-1}) + 0.5 * v{i-1}" for i in range(1, n)])
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(_depth() + 150)
    try:
        c = cg.parse(text)
        g = cg.grad(c)
        J, dJ = cg.to_numpy(g)(0.3)
        d = cg.from_json(cg.to_json(g))
    finally:
        sys.setrecursionlimit(limit)
    assert c.size == 3 * (n - 1) > cg.lower.numpy.COMPILE_LIMIT
    value, want = 0.3, 1.0
    for _ in range(n - 1):
        want *= np.cos(value) + 0.5
        value = np.sin(value) + 0.5 * value
    assert J == value and dJ == pytest.approx(want, rel=1e-9)
    assert cg.to_numpy(d)(0.3) == (J, dJ)


@settings(max_examples=60)
@given(programs(max_ops=16, max_inputs=4))
def test_interpreter_agrees_with_compiled_code_on_random_programs(case):
    # Regression: registers of inputs first used late were reused before they were read.
    text, point, _ = case
    c = cg.parse(text)
    for circuit in (c, cg.grad(c)):
        args = [point[k] for k in circuit.inputs]
        a = cg.to_numpy(circuit, mode="compile")(*args)
        b = cg.to_numpy(circuit, mode="interpret")(*args)
        np.testing.assert_array_equal(a, b)


# -- user names in generated code -------------------------------------------------------------
HOSTILE_NAMES = ["match", "case", "type", "_", "print", "len", "range", "sum", "exp", "np",
                 "_np", "xp", "__import__", "__builtins__", "__name__", "__class__", "globals",
                 "exec", "eval", "f", "v1", "r0", "_k0", "_in0", "θ", "ﬁ", "𝑥", "x_bar",
                 "lambda", "def", "None", "True", "import", "a b", "1x", "x-y", ""]


@pytest.mark.parametrize("mode", ["compile", "interpret"])
def test_hostile_names_via_the_builder(mode):
    b = Builder()
    xs = [b.input(name) for name in HOSTILE_NAMES]
    total = xs[0]
    for k, x in enumerate(xs[1:], 1):
        total = total + cg.sin(x) * float(k)
    out = b.finish([("out", total), ("print", cg.exp(xs[0]))])
    f = cg.to_numpy(cg.grad(out, output="out"), mode=mode)
    point = {name: 0.1 * k for k, name in enumerate(HOSTILE_NAMES)}
    values = f(*point.values())
    want = sum(np.sin(0.1 * k) * k for k in range(1, len(HOSTILE_NAMES)))
    assert values[0] == pytest.approx(want, rel=1e-12)
    assert values[2] == pytest.approx(np.cos(0.1) * 1.0)
    # The generated code calls only the array namespace, under its alias, whatever the names are.
    source = cg.to_numpy(out, mode="compile").source
    calls = {line.split("= ", 1)[1].split("(")[0] for line in source.splitlines()[1:-1]
             if "(" in line}
    assert calls <= {"xp.sin", "xp.exp"}, calls


def test_hostile_names_via_parse():
    text = ("_np = match * 2\nexp = _np + case\nsin_ = sin(exp) * type + _\n"
            "print = sin_ + θ * ﬁ\n__builtins__ = print * __import__")
    c = cg.parse(text)
    assert c.inputs == ("match", "case", "type", "_", "θ", "fi", "__import__")
    for mode in ("compile", "interpret"):
        f = cg.to_numpy(cg.grad(c), mode=mode)
        J = f(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)[0]
        assert J == pytest.approx(((np.sin(4.0) * 3.0 + 4.0) + 5.0 * 6.0) * 7.0)


# -- pickling ---------------------------------------------------------------------------------
def _call(f_and_x):
    f, x = f_and_x
    return f(x, 2.0)


def test_generated_functions_pickle_across_processes():
    small = cg.to_numpy(cg.grad(cg.parse("J = sin(x) * y + exp(x) / y")))
    interpreted = cg.to_numpy(cg.parse("sin(x * y) + 0.5 * x"), mode="interpret")
    assert pickle.loads(pickle.dumps(interpreted))(0.3, 2.0) == interpreted(0.3, 2.0)
    jobs = [(small, 0.1), (small, 0.7), (interpreted, 0.3)]
    # spawn: a fresh interpreter that shares nothing with this one but the pickles.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        results = pool.map(_call, jobs)
    for (f, x), result in zip(jobs, results):
        np.testing.assert_array_equal(result, f(x, 2.0))


# -- numerical semantics (docs/semantics.md) --------------------------------------------------
def run(text, mode="compile", **point):
    return cg.to_numpy(cg.parse(text), mode=mode)(**point)


def grad_at(text, mode="compile", **point):
    return cg.to_numpy(cg.grad(cg.parse(text)), mode=mode)(**point)[1:]


@pytest.mark.parametrize("mode", ["compile", "interpret"])
def test_ieee_float64_semantics(mode):
    with np.errstate(all="ignore"):
        assert run("log(x)", mode, x=0.0) == -np.inf
        assert np.isnan(run("log(x)", mode, x=-1.0))
        assert np.isnan(run("sqrt(x)", mode, x=-1.0))
        assert run("1 / x", mode, x=0.0) == np.inf and run("1 / x", mode, x=-0.0) == -np.inf
        assert np.isnan(run("x / x", mode, x=0.0))
        assert np.isnan(run("sin(x) + 1", mode, x=np.nan))
        assert run("exp(x)", mode, x=1000.0) == np.inf
        assert run("x * 2", mode, x=np.inf) == np.inf
        assert np.isnan(run("x - x", mode, x=np.inf))
        assert run("x ** 0.5", mode, x=np.inf) == np.inf
        (d,) = grad_at("log(x)", mode, x=0.0)
        assert d == np.inf
    with pytest.warns(RuntimeWarning, match="overflow"):  # singular points warn, as NumPy does
        out = run("x * 1e300 * 1e300", mode, x=1.0)
    assert out == np.inf and type(out) is np.float64
    assert run("x", mode, x=np.array([1, 2], dtype=np.int32)).dtype == np.float64
    assert run("x * 0.1", mode, x=np.float32(3)) == 3 * 0.1  # float64, not float32


@pytest.mark.parametrize("mode", ["compile", "interpret"])
def test_stable_forms_do_not_warn(mode):
    xs = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(divide="raise", over="raise", invalid="raise"):
            s = run("sigmoid(x)", mode, x=xs)
            (ds,) = grad_at("sigmoid(x)", mode, x=xs)
            r = run("relu(x)", mode, x=0.0)
            (dr,) = grad_at("relu(x)", mode, x=np.array([-1.0, 0.0, 1.0]))
            (da,) = grad_at("abs(x)", mode, x=np.array([-2.0, 0.0, 2.0]))
            (dstep,) = grad_at("step(x) + sign(x)", mode, x=0.0)
    assert s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    assert ds[0] == 0.0 and ds[-1] == 0.0 and ds[2] == 0.25
    assert r == 0.0
    np.testing.assert_array_equal(dr, [0.0, 1.0, 1.0])  # relu'(0) = 1, the notes' convention
    np.testing.assert_array_equal(da, [-1.0, 0.0, 1.0])  # |x|'(0) = 0
    assert dstep == 0.0


def test_nan_and_inf_propagate_through_gradients():
    with np.errstate(all="ignore"):
        J, dx, dy = cg.to_numpy(cg.grad(cg.parse("J = x * y + sin(x)")))(np.nan, 2.0)
        assert np.isnan(J) and np.isnan(dx) and np.isnan(dy)
        J, dx, dy = cg.to_numpy(cg.grad(cg.parse("J = x * y")))(np.inf, 0.0)
        assert np.isnan(J) and dx == 0.0 and dy == np.inf
