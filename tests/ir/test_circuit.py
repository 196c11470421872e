"""The IR: hash-consing, exact rewrites, the networkx view, validation, DCE, huge chains."""

import numpy as np
import pytest

import circuitgrad as cg
from circuitgrad.builder import Builder


def ops(c):
    return [c.op(i) for i in range(len(c))]


def test_common_subexpressions_are_shared():
    c = cg.parse("sin(x)*sin(x)")
    assert ops(c).count("sin") == 1
    mul = ops(c).index("mul")
    assert c.args(mul) == (1, 1)
    assert c.graph.edges[1, mul]["pos"] == (0, 1)  # x*x keeps both argument positions


def test_commutative_ops_share_but_others_keep_order():
    c = cg.parse("a = x*y\nb = y*x\nc = x - y\nd = y - x\nJ = a + b + c + d")
    assert ops(c).count("mul") == 1
    assert ops(c).count("sub") == 2
    sub = [i for i in range(len(c)) if c.op(i) == "sub"]
    assert {c.args(i) for i in sub} == {(0, 1), (1, 0)}
    g = c.graph
    for i in sub:
        x, y = c.args(i)
        assert g.edges[x, i]["pos"] == (0,) and g.edges[y, i]["pos"] == (1,)


def test_constants_are_keyed_by_bits():
    b = Builder()
    assert b.const_id(0.0) != b.const_id(-0.0)
    assert b.const_id(float("nan")) == b.const_id(float("nan"))
    assert b.const_id(2) == b.const_id(2.0)


def test_inputs_are_kept_even_if_unused():
    c = cg.parse("J = 2*x", inputs=["x", "unused"])
    assert c.inputs == ("x", "unused")
    assert c.size == 1


def test_exact_rewrites():
    assert cg.parse("x*1").size == 0
    assert cg.parse("x/1").size == 0
    assert cg.parse("x**1").size == 0
    assert ops(cg.parse("-(-x)")) == ["input"]
    assert ops(cg.parse("a + -b")) == ["input", "input", "sub"]
    assert ops(cg.parse("a - -b")) == ["input", "input", "add"]
    assert cg.parse("2*3 + x").size == 1  # folded constant
    # x + 0 is not exact for x = -0.0, so the builder keeps it.
    assert cg.parse("x + 0").size == 1


def test_dead_nodes_are_dropped():
    c = cg.parse("u = sin(x)\nJ = 2*x")
    assert ops(c) == ["input", "const", "mul"]


def test_graph_and_validate():
    c = cg.parse("z = w*x + b\nJ = relu(z)")
    c.validate()
    g = c.graph
    assert g.number_of_nodes() == len(c)
    assert g.nodes[c.output_ids[0]]["op"] == "relu"
    assert g.graph["inputs"] == ("w", "x", "b")
    import networkx as nx

    assert list(nx.topological_sort(g))[:1] == [0]


def test_repr_lists_nodes():
    text = repr(cg.parse("z = w*x\nJ = sin(z)"))
    assert "mul %0, %1  # z" in text and "outputs: J = %3" in text


def test_values_from_two_circuits_do_not_mix():
    a, b = Builder(), Builder()
    with pytest.raises(cg.CircuitError, match="another circuit"):
        a.input("x") + b.input("y")


def test_traced_value_has_no_truth_value():
    with pytest.raises(cg.CircuitError, match="control flow"):
        cg.trace(lambda x: x if x > 0 else -x)


def test_million_node_chain_builds_lowers_and_evaluates():
    b = Builder()
    x = b.input("x")
    v = x
    for _ in range(10**6):
        v = b.apply_id("sin", (v.id if hasattr(v, "id") else v,))
    c = b.finish([("f", v)])
    assert c.size == 10**6
    f = cg.to_numpy(c)
    expected = 0.5
    for _ in range(10**6):
        expected = np.sin(expected)
    assert f(0.5) == expected


# -- every entry point says what it takes (one helper: circuit.as_circuit) -----------------
ENTRY_POINTS = {
    "grad": lambda c: cg.grad(c), "jvp": lambda c: cg.jvp(c), "hvp": lambda c: cg.hvp(c),
    "hessian": lambda c: cg.hessian(c), "simplify": lambda c: cg.simplify(c),
    "scalarize": lambda c: cg.scalarize(c), "to_numpy": lambda c: cg.to_numpy(c),
    "to_dot": lambda c: cg.to_dot(c), "to_sympy": lambda c: cg.to_sympy(c),
    "to_json": lambda c: cg.to_json(c), "check_grad": lambda c: cg.check_grad(c, {"x": 1.0}),
    "render": lambda c: cg.render(c, "never-written.dot"),
}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_entry_points_take_text_or_say_what_they_take(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    call = ENTRY_POINTS[name]
    from_text, from_circuit = call("x*2"), call(cg.parse("x*2"))
    if isinstance(from_text, cg.Circuit):
        assert cg.to_json(from_text) == cg.to_json(from_circuit)
    wrongs = [(3, "cg.parse"), (b"x*2", "cg.parse"), (lambda x: x, "cg.trace")]
    if name in ("grad", "hessian", "jacobian"):  # these take Python functions too (issue 27)
        wrongs = wrongs[:2]
    for wrong, hint in wrongs:
        with pytest.raises(cg.CircuitError) as e:
            call(wrong)
        message = str(e.value)
        assert f"{name} takes a Circuit or program text" in message and hint in message


# -- input order, display, and which way the dependencies point -----------------------------
def test_repr_shows_the_positional_order():
    c = cg.parse("J = x1*y0 + x0")  # order of first use, not alphabetical
    assert c.inputs == ("x1", "y0", "x0")
    assert repr(c).splitlines()[1].startswith("positional order: f(x1, y0, x0) (inputs in "
                                              "order of first use")


def test_trace_keeps_the_parameter_order():
    def f(y, x, unused):
        return x - y  # used in another order than declared

    c = cg.trace(f)
    assert c.inputs == ("y", "x", "unused")
    assert float(cg.to_numpy(c)(1.0, 5.0, 0.0)) == 4.0
    assert "positional order: f(y, x, unused)" in repr(c)


def test_notebook_display_svg_and_too_big_fallback():
    c = cg.parse("z = w*x + b\nJ = relu(z)")
    svg = c._repr_svg_()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert c._repr_mimebundle_()["image/svg+xml"] == svg
    big = cg.parse("J = " + " + ".join(f"sin(t{k})" for k in range(300)))
    assert big._repr_svg_() is None
    bundle = big._repr_mimebundle_()
    assert list(bundle) == ["text/html", "text/plain"]  # the viewer (lower/html.py)
    assert bundle["text/html"].startswith("<iframe srcdoc=") and "cg-data" in bundle["text/html"]
    assert c._repr_html_() is None  # a small circuit: its diagram
    assert bundle["text/plain"].endswith(
        f"(not drawn: {len(big)} nodes, more than circuitgrad.lower.dot.MAX_NODES = 500; draw "
        "it anyway with cg.render(c, 'circuit.svg', max_nodes=None), or in the notebook with "
        "cg.to_dot(c, max_nodes=None))")


def _imports(path):
    import ast

    tree = ast.parse(open(path, encoding="utf-8").read())
    for node in ast.walk(tree):  # function-level imports count too
        if isinstance(node, ast.ImportFrom):
            yield "." * node.level + (node.module or "")
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def test_dependencies_point_one_way():
    import glob
    import os

    root = os.path.dirname(cg.__file__)
    table = [os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "primitives", "*.py"))]
    for name in ["circuit.py"] + table:
        above = ("lower", "frontends", "transforms") + (("circuit",) if name in table else ())
        bad = [m for m in _imports(os.path.join(root, name))
               if m.lstrip(".").split(".")[0] in above]
        assert bad == [], f"{name} imports {bad}"
    for path in glob.glob(os.path.join(root, "transforms", "*.py")):
        bad = [m for m in _imports(path) if m.lstrip(".").split(".")[0] == "lower"
               or "lower" in m.split(".")]
        assert bad == [], f"{path} imports a lowering: {bad}"


def test_primitives_of_three_and_of_any_number_of_arguments(monkeypatch):
    from circuitgrad.builder import Builder
    from circuitgrad.primitives import PRIMITIVES, Primitive

    monkeypatch.setitem(PRIMITIVES, "fma", Primitive(
        "fma", 3, "{0} * {1} + {2}", "fma", partials=lambda out, a, b, c: (b, a, 1.0)))
    monkeypatch.setitem(PRIMITIVES, "total", Primitive(
        "total", 1, lambda *args, shapes: " + ".join(args), "Σ", variadic=True,
        partials=lambda out, *args: (1.0,) * len(args)))
    b = Builder()
    x, y, z = b.input("x"), b.input("y", (2,)), b.input("z")
    v = b.apply("fma", x, y, z)
    J = b.apply("sum", b.apply("total", x, y, z, v))
    assert b.apply("fma", 1.0, 2.0, 3.0).constant == 5.0  # folded
    with pytest.raises(cg.CircuitError, match="fma takes 3 argument"):
        b.apply("fma", x, y)
    with pytest.raises(cg.CircuitError, match="total takes 1 or more argument"):
        b.apply_id("total", ())
    c = b.finish([("J", J)])
    c.validate()
    g = cg.grad(c)
    point = dict(x=2.0, y=np.array([1.0, -1.0]), z=0.5)
    for mode in ("compile", "interpret"):
        assert float(cg.to_numpy(c, mode=mode)(**point)) == 2 * (2.0 + 0.5) + 0.0 + 2 * 0.5
        out = cg.to_numpy(g, mode=mode)(**point)
        assert float(out.dJ_dx) == 2 + 0.0  # two terms of 1, plus y summed (1 - 1)
        assert out.dJ_dy.tolist() == [1 + 2.0, 1 + 2.0] and float(out.dJ_dz) == 4.0
    assert cg.check_grad(c, point) < 1e-8


def test_x_squared_is_one_node_in_every_circuit():
    c = cg.parse("J = x**2 + square(x) + x**2.0")
    assert [c.op(i) for i in range(len(c))] == ["input", "square", "add", "add"]
    g = cg.grad(cg.parse("J = y**2"))
    assert g.op(1) == "square"  # the forward part of the adjoint is the forward circuit
    v = cg.parse("J = sum(v**2)", shapes={"v": (3,)})
    assert "square" in [v.op(i) for i in range(len(v))]
    m = cg.parse("J = sum(x**c)", shapes={"c": (2,)})  # a tensor exponent is not the number 2
    assert "square" not in [m.op(i) for i in range(len(m))]


def test_builder_moves_signs_into_constants_and_drops_them_under_even_functions():
    # Exact in IEEE arithmetic: (-x)² = x², |-x| = |x|, c·(-x) = (-c)·x, (-x)/c = x/(-c).
    b = Builder()
    x = b.input("x")
    n = -x
    assert (n * 2.0).id == (x * -2.0).id and (2.0 * n).id == (x * -2.0).id
    assert (n / 4.0).id == (x / -4.0).id
    assert b.apply("square", n).id == b.apply("square", x).id
    assert b.apply("abs", n).id == b.apply("abs", x).id
    c = b.finish([("f", (n * 2.0) + b.apply("square", n))])
    assert "neg" not in [c.op(i) for i in range(len(c))]
    point = np.array([-0.0, 0.0, 1.5, -3.0, 1e300, -np.inf, np.nan])
    with np.errstate(all="ignore"):
        got, want = cg.to_numpy(c)(point), (-point) * 2.0 + np.square(-point)
    numbers = ~np.isnan(want)  # (the sign of a NaN is no part of IEEE exactness here)
    assert np.isnan(got).tolist() == np.isnan(want).tolist()
    assert got[numbers].tobytes() == want[numbers].tobytes()


def test_the_passes_write_only_the_documented_meta_keys():
    # docs/design.md's table of Circuit.meta lists every key (META_KEYS): each pass's circuit
    # is checked against it, so a new key must be documented where its readers look.
    from circuitgrad.circuit import META_KEYS
    from circuitgrad.transforms.adjoints import node_adjoints

    c = cg.parse("z = w*x + b\nJ = relu(z) + x*x")
    v = cg.parse("y = x * x", shapes={"x": (3,)})
    made = [cg.grad(c), cg.grad(c, simplify=False), cg.jvp(c), cg.hvp(c), cg.hessian(c),
            cg.jacobian(v), cg.jacobian(v, sparse=True), cg.hessian(c, sparse=True),
            cg.simplify(cg.grad(c)), node_adjoints(c),
            cg.trace(lambda x: x * 2.0, lines=True)]
    seen = set()
    for circuit in made:
        seen |= set(circuit.meta)
    assert seen <= META_KEYS, sorted(seen - META_KEYS)
    assert {"forward_count", "adjoint_of", "tangent_count", "wrt"} <= seen


def test_columns_are_the_records_read_only():
    c = cg.grad(cg.parse("z = w*x + b\nJ = relu(z)"))
    cols = c.columns
    assert list(zip(range(len(c)), *cols[:4])) == list(c.records())
    assert cols is c.columns  # made once
    with pytest.raises(TypeError):
        cols.names[0] = "w2"
    with pytest.raises(TypeError):
        cols.ops[0] = "const"  # type: ignore[index]
