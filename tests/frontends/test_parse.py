"""The text front-end: programs, names, and every ParseError with its position."""

import ast
import importlib
import math
import warnings

import numpy as np
import pytest

import circuitgrad as cg


def test_program_with_named_intermediates():
    c = cg.parse("z = w*x + b\na = relu(z)\nJ = 0.5*(a - y)**2\n")
    assert c.inputs == ("w", "x", "b", "y")
    assert c.outputs == ("J",)
    assert {c.name(i) for i in range(len(c))} >= {"z", "a", "J"}


def test_bare_expression_output_is_f():
    assert cg.parse("sin(x)*y + exp(x)").outputs == ("f",)
    assert cg.parse("f + 1").outputs == ("f_",)  # an input named f keeps its name


def test_inputs_and_outputs_arguments():
    c = cg.parse("u = x*y\nv = x+y", inputs=["y", "x", "z"], outputs=["u", "v"])
    assert c.inputs == ("y", "x", "z")
    assert c.outputs == ("u", "v")


def test_names_that_look_like_functions_or_modules():
    c = cg.parse("np * exp + θ + sin(exp)")
    assert c.inputs == ("np", "exp", "θ")
    assert float(cg.to_numpy(c)(np=2.0, exp=3.0, θ=1.0)) == pytest.approx(7.0 + 0.1411200080598672)


def test_comments_blank_lines_and_continuations():
    c = cg.parse("# a comment\n\nz = (x +\n     y)  # trailing\nJ = z * \\\n  2\n")
    assert float(cg.to_numpy(c)(1.0, 2.0)) == 6.0


@pytest.mark.parametrize(
    "text, message, line, column",
    [
        ("", "empty program", 1, 1),
        ("   \n# only a comment\n", "empty program", 1, 1),
        ("foo(x)", "unknown function 'foo'", 1, 1),
        ("y = 1 + sinq(x)", "unknown function 'sinq'", 1, 9),
        ("sin(x, y)", r"sin\(\) takes 1 argument, got 2", 1, 1),
        ("x + sin()", r"sin\(\) takes 1 argument, got 0", 1, 5),
        ("np.sin(x)", "attribute access", 1, 1),
        ("x.real", r"attribute access '.real'", 1, 1),
        ("x[0]", r"too many indices \(1\) for a point of shape \(\)", 1, 1),
        ("x[y]", "an index must be made of integer constants", 1, 3),
        ("x[1.5]", "an index must be made of integer constants", 1, 3),
        ("[x, 2]", "a list is only supported as a constant of numbers", 1, 1),
        ("lambda x: x", "lambda", 1, 1),
        ("[x for x in y]", "comprehension", 1, 1),
        ("'abc'", "strings", 1, 1),
        ("x is y", "operator 'is' is not supported", 1, 1),
        ("y = 2 * (x in z)", "operator 'in' is not supported", 1, 10),
        ("sin(x=1)", "keyword argument 'x'", 1, 5),
        ("x << y", "operator '<<'", 1, 1),
        ("x ^ y", r"use \*\* for powers", 1, 1),
        ("z = y\ny = 2", "'y' is used on line 1 before it is assigned", 2, 1),
        ("z = x\nz = 2*x", "'z' is assigned twice", 2, 1),
        ("x = 1", "cannot assign to input 'x'", 1, 1),
        ("a = 1\nb", "unknown name 'b'", 2, 1),
        ("x +", "invalid syntax", 1, 4),
        ("sin(x", "invalid syntax", 1, 4),
        ("x += 1", "augmented assignment", 1, 1),
        ("import os", "an import", 1, 1),
        ("a, b = x, y", "only 'name = expression'", 1, 1),
        ("x\ny = 2", "bare expression is only allowed as the last line", 1, 1),
        ("1j * x", "complex numbers", 1, 1),
        ("True * x", "booleans", 1, 1),
        ("  θ + sin(θ, θ)", r"sin\(\) takes 1 argument", 1, 7),
        ("f'{x}'", "f-string", 1, 1),
        ("(y := x)", "walrus", 1, 2),
        ("sin(*x)", "starred", 1, 5),
    ],
)
def test_parse_errors_name_the_problem_and_where(text, message, line, column):
    inputs = ["x"] if text in ("a = 1\nb", "x = 1") else None
    with pytest.raises(cg.ParseError, match=message) as info:
        cg.parse(text, inputs=inputs)
    assert (info.value.line, info.value.column) == (line, column), str(info.value)
    assert isinstance(info.value, cg.CircuitError)


def test_error_column_counts_characters_not_bytes():
    with pytest.raises(cg.ParseError) as info:
        cg.parse("θθθ + foo(x)")
    assert info.value.column == 7


def test_unknown_output_and_bad_shapes():
    with pytest.raises(cg.ParseError, match="outputs names 'q', which is not assigned"):
        cg.parse("z = x", outputs=["q"])
    with pytest.raises(cg.ParseError, match="not inputs"):
        cg.parse("x + 1", shapes={"y": (2,)})


def test_text_is_never_evaluated():
    for text in ["__import__('os').system('echo hacked')", "().__class__", "open('x')"]:
        with pytest.raises(cg.ParseError):
            cg.parse(text)


def test_deep_nesting_is_a_parse_error():
    with pytest.raises(cg.ParseError, match="nested"):
        cg.parse("(" * 1000 + "x" + ")" * 1000)
    with pytest.raises(cg.ParseError):
        cg.parse("-" * 100000 + "x")


def test_long_program_spans_parse_chunks():
    lines = ["v0 = x"] + [f"v{i} = v{i - 1} + (x *\n  {i}.0)" for i in range(1, 3000)]
    c = cg.parse("\n".join(lines))
    assert c.size == 2 * 2999 - 1  # x * 1.0 is x
    with pytest.raises(cg.ParseError) as info:
        cg.parse("\n".join(lines) + "\nw = sin(")
    assert info.value.line == 1 + 2 * 2999 + 1


def test_inputs_listed_twice():
    with pytest.raises(cg.ParseError, match="inputs name 'x' twice"):
        cg.parse("x + y", inputs=["x", "x", "y"])


# -- literals too large for a float: inf, said with the line and column --------------------
@pytest.mark.parametrize("text, where, literal", [
    ("y = 2*x\nJ = y + 1e400", "line 2, column 9", "1e400"),  # the fast path (no syntax tree)
    ("J = sin(x) + 1e400*x", "line 1, column 14", "1e400"),  # the syntax tree
    ("J = x + 1" + "0" * 400, "line 1, column 9", "1" + "0" * 26 + "..."),  # an integer
])
def test_overflowing_literal_is_inf_with_a_warning(text, where, literal):
    with pytest.warns(RuntimeWarning) as record:
        c = cg.parse(text)
    (w,) = record
    assert str(w.message) == f"{where}: the literal {literal} is too large for a float; it is " \
                             "taken as inf"
    consts = [c.params(i) for i in range(len(c)) if c.op(i) == "const"]
    assert consts == [float("inf")] or 2.0 in consts and float("inf") in consts


def test_finite_literals_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cg.parse("J = 1e308*x + 1e-400")


# -- long flat chains on one line: no recursion limit, linear work, exact positions -------
def test_a_sum_of_a_hundred_thousand_terms_on_one_line(monkeypatch):
    parse_module = importlib.import_module("circuitgrad.frontends.parse")

    parsed = []
    real_parse = ast.parse
    monkeypatch.setattr(parse_module.ast, "parse",
                        lambda text, *a, **k: parsed.append(len(text)) or real_parse(
                            text, *a, **k))
    n = 100_000  # Python's own parser overflows near 3000 terms
    text = "J = " + " + ".join(f"t{k}" for k in range(n))
    c = cg.parse(text)
    assert c.size == n - 1 and c.inputs[:3] == ("t0", "t1", "t2") and len(c.inputs) == n
    # The work: the line is handed to Python's parser once (as one flat tuple), not per term.
    assert len(parsed) == 1 and parsed[0] <= len(text) + 2
    f = cg.to_numpy(c, mode="interpret")
    assert float(f(*range(n))) == float(sum(range(n)))


CHAINS = [
    "J = a - b - c*d/e + f" + " + 0.5*g - h/2" * 150,
    "J = x*y*z" + " * x / y" * 150 + " - z",
    "J = -a + " + " + ".join(f"sin(t{k})**2 * -b" for k in range(200)),
    "y = 2*a\nJ = y + " + " - ".join(f"(a + t{k})*y" for k in range(200)) + "  # a comment",
]


@pytest.mark.parametrize("text", CHAINS)
def test_long_chains_build_what_the_syntax_tree_builds(text, monkeypatch):
    parse_module = importlib.import_module("circuitgrad.frontends.parse")

    chained = cg.parse(text)
    monkeypatch.setattr(parse_module, "CHAIN_OPERATORS", 10**9)  # the ast path only
    assert cg.to_json(chained) == cg.to_json(cg.parse(text))


BROKEN_CHAINS = [
    ("J = θ + " + " + ".join(f"t{k}" for k in range(300)) + " + foo(x)", {}),
    ("J = a + " + " + ".join(f"t{k}" for k in range(300)) + " + q", {"inputs": None}),
    ("J = a + " + " + ".join(f"a*t{k}" for k in range(300)) + " + v @ a", {"shapes": {"v": (2,)}}),
    ("J = a + " + " + ".join(f"t{k}" for k in range(300)) + " + (b is c)", {}),
    ("J = a + " + " + ".join(f"t{k}" for k in range(300)) + " + * b", {}),
    ("a + " + " + ".join(f"t{k}" for k in range(300)) + "\nJ = a", {}),
    ("J = a + " + " + ".join(f"t{k}" for k in range(300)) + "\nJ = a", {}),
]


@pytest.mark.parametrize("text, kw", BROKEN_CHAINS)
def test_errors_inside_long_chains_name_the_same_place(text, kw, monkeypatch):
    parse_module = importlib.import_module("circuitgrad.frontends.parse")

    if "inputs" in kw:
        kw = {"inputs": ["a"] + [f"t{k}" for k in range(300)]}
    with pytest.raises(cg.ParseError) as chained:
        cg.parse(text, **kw)
    monkeypatch.setattr(parse_module, "CHAIN_OPERATORS", 10**9)
    with pytest.raises(cg.ParseError) as tree:
        cg.parse(text, **kw)
    assert str(chained.value) == str(tree.value)
    assert chained.value.line is not None and chained.value.column is not None
    if "foo" in text:
        assert chained.value.column == text.index("foo") + 1


# -- one rule for names: an input is never assigned ----------------------------------------
@pytest.mark.parametrize("text, line, column", [
    ("x = 2*x", 1, 1),                        # the fast path
    ("x = sin(x) + 2*x", 1, 1),               # the syntax tree
    ("y = 2*x; x = y + 1", 1, 10),            # used on an earlier line
    ("y = 2*x\nx = y + 1", 2, 1),
    ("x = " + " + ".join(["x"] * 300), 1, 1),  # a long chain
])
def test_an_input_is_never_assigned(text, line, column):
    with pytest.raises(cg.ParseError, match="so it is an input, and an input is never "
                                             "assigned") as e:
        cg.parse(text)
    assert (e.value.line, e.value.column) == (line, column)


def test_assignment_after_its_own_uses_elsewhere_still_works():
    c = cg.parse("x2 = 2*x\nJ = x2 + x")
    assert c.inputs == ("x",) and float(cg.to_numpy(c)(x=3.0)) == 9.0


def test_overflow_warning_points_at_the_callers_line():
    with pytest.warns(RuntimeWarning) as record:
        cg.parse("J = x + 1e400")
    assert record[0].filename == __file__


# -- comparisons, conditions, logic and named constants ---------------------------------------

def value(text, **point):
    return float(cg.to_numpy(cg.parse(text))(**point))


@pytest.mark.parametrize("text, point, want", [
    ("where(x > 0, x, 0.1 * x)", {"x": -2.0}, -0.2),
    ("x if x > 0 else 0.1 * x", {"x": -2.0}, -0.2),
    ("x if x > 0 else 0.1 * x", {"x": 3.0}, 3.0),
    ("(x < y) + (x <= y) + (x > y) + (x >= y) + (x == y) + (x != y)", {"x": 1.0, "y": 1.0}, 3.0),
    ("0 < x < 1", {"x": 0.5}, 1.0), ("0 < x < 1", {"x": 1.5}, 0.0),
    ("(x > 0) & (y > 0)", {"x": 1.0, "y": -1.0}, 0.0),
    ("(x > 0) | (y > 0)", {"x": 1.0, "y": -1.0}, 1.0),
    ("~(x > 0)", {"x": 1.0}, 0.0), ("not x", {"x": 0.0}, 1.0),
    ("x > 0 and y > 0 or x < -5", {"x": -6.0, "y": 1.0}, 1.0),
    ("2 * pi + e - inf", {}, -math.inf),
])
def test_comparisons_conditions_and_logic_are_masks(text, point, want):
    assert value(text, **point) == want


def test_named_constants_are_constants_unless_declared():
    c = cg.parse("J = pi * x + e")
    assert c.inputs == ("x",)
    assert float(cg.to_numpy(c)(x=1.0)) == math.pi + math.e
    d = cg.parse("J = pi * x", inputs=["pi", "x"])
    assert d.inputs == ("pi", "x") and float(cg.to_numpy(d)(pi=2.0, x=3.0)) == 6.0
    assigned = cg.parse("e = 2 * x\nJ = e + 1")  # an assignment shadows the constant
    assert float(cg.to_numpy(assigned)(x=1.0)) == 3.0


def test_the_issues_functions_all_parse():
    c = cg.parse("J = logsumexp(z) - sum(softmax(z) * log_softmax(z)) + max(z) + norm(z)",
                 shapes={"z": (3,)})
    assert float(cg.to_numpy(c)(np.array([1000.0, 0.0, -1000.0]))) == pytest.approx(
        2000.0 + 1000.0 * math.sqrt(2), rel=1e-15)
    for name in ("maximum", "where", "clip", "log1p", "expm1", "softplus", "erf", "atan2",
                 "atan", "sinh", "cosh", "tan", "hypot", "log2"):
        assert name in cg.primitives.FUNCTIONS


def test_max_of_two_values_says_to_use_maximum():
    with pytest.raises(cg.ParseError, match=r"column 8: .* maximum\(a, b\)"):
        cg.parse("max(a, b)")
    with pytest.raises(cg.ParseError, match=r"minimum\(a, b\), nested"):
        cg.parse("min(a, b, c)")


def test_a_long_chain_with_a_comparison_keeps_the_precedence():
    terms = " + ".join(f"t{k}" for k in range(300))
    c = cg.parse(f"J = {terms} < 10")
    point = {f"t{k}": 0.01 for k in range(300)}
    assert c.op(c.output_ids[0]) == "less" and float(cg.to_numpy(c)(**point)) == 1.0


def test_fast_path_takes_negative_constants_in_parentheses():
    # `v = x * (-0.5)` is the commonest line that used to leave the fast path; it must build
    # what the tree walk builds (the same line inside brackets goes through ast).
    from circuitgrad.frontends.parse import _SIMPLE, _simple_names_ok

    for line in ("y = x * (-0.5)", "y = (-2.0) + x", "y = x / ( - 1e-3 )", "y = sin((-0.0))",
                 "y = x ** (-1.5)"):
        match = _SIMPLE.fullmatch(line)
        assert match is not None and _simple_names_ok(match), line
        fast = cg.parse(line + "\nJ = y + x")
        tree = cg.parse(line.replace("= ", "= (", 1) + ")\nJ = y + x")
        assert list(fast.records()) == list(tree.records()), line
    c = cg.parse("y = (-0.0) * x")
    assert [repr(c.params(i)) for i in range(len(c)) if c.op(i) == "const"] == ["-0.0"]
    with pytest.raises(cg.ParseError, match="leading zeros"):
        cg.parse("y = x * (-017)")


LOOP = """
s = x * 1.0
t = 0.0
for i in range(2, 12):
    d = s * 0.9 + i
    s = d + a
    t = t + sum(s * s)
J = t + sum(s)
"""


def _loop_reference(x, a):
    s, t = x * 1.0, 0.0
    for i in range(2, 12):
        d = s * 0.9 + i
        s = d + a
        t = t + np.sum(s * s)
    return t + np.sum(s)


def test_a_for_loop_over_range_is_one_scan_node_with_carried_names():
    c = cg.parse(LOOP, shapes={"x": (3,)})
    assert [c.op(i) for i in range(len(c))].count("scan") == 1 and c.inputs == ("x", "a")
    x, a = np.array([0.1, 0.2, 0.3]), 0.5
    assert float(cg.to_numpy(c)(x=x, a=a)) == _loop_reference(x, a)
    g = cg.to_numpy(cg.grad(c))(x=x, a=a)
    eps = 1e-6
    fd = (_loop_reference(x, a + eps) - _loop_reference(x, a - eps)) / (2 * eps)
    assert float(g.dJ_da) == pytest.approx(fd, rel=1e-6)
    unrolled = cg.trace(_loop_reference, shapes={"x": (3,), "a": ()})
    np.testing.assert_allclose(g.dJ_dx, cg.to_numpy(cg.grad(unrolled))(x, a).df_dx, rtol=1e-13)
    assert float(cg.to_c(c)(x=x, a=a)) == pytest.approx(_loop_reference(x, a), rel=1e-14)


@pytest.mark.parametrize("text, message", [
    ("for i in range(3):\n    s = s + i\nJ = s", "carries nothing"),
    ("s = 1.0\nfor i in range(n):\n    s = s + i\nJ = s", "integer literals"),
    ("s = 1.0\nfor i in range(3, 3):\n    s = s + i\nJ = s", "runs no step"),
    ("s = 1.0\nfor i in range(3):\n    if s:\n        s = 1\nJ = s", "an if statement in a loop"),
    ("s = 1.0\nfor i in range(3):\n    s = s + 1\nJ = i", "index of the loop on line 2"),
    ("s = 1.0\nfor i in range(3):\n    d = s * 2\n    s = d\nJ = d", "carried by none"),
    ("s = 1.0\nfor i in range(3):\n    x = x + s\n    s = x\nJ = s", "input, and an input is "
     "never assigned"),
    ("s = 0.0\nfor i in range(3):\n    s = s + x\nJ = s", "keeps its shape"),
    ("s = 1.0\nfor i in range(3):\n    s = s + 1\nelse:\n    s = 0\nJ = s", "without else"),
])
def test_loops_in_programs_refuse_what_they_cannot_be(text, message):
    with pytest.raises(cg.CircuitError, match=message):
        cg.parse(text, shapes={"x": (2,)} if "x" in text else None)


def test_a_loop_of_more_steps_than_memory_holds_is_refused_by_name():
    # the loop scans over its steps' numbers: an array of 10**12 is a MemoryError otherwise
    with pytest.raises(cg.ParseError, match=r"line 2.*1000000000000 steps are too many"):
        cg.parse("s = x\nfor i in range(1000000000000):\n    s = s * 0.5\nJ = s")
