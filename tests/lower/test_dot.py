"""Diagrams: golden DOT text, what a diagram shows, values and adjoints, rendering with dot.

Refresh the golden files with ``CIRCUITGRAD_UPDATE_GOLDEN=1 pytest tests/lower/test_dot.py`` and
review the diff like code. The rendering tests need the Graphviz ``dot`` program and fail
(never skip) where it is missing: CI installs it.
"""

from __future__ import annotations

import os
import re
import time

import numpy as np
import pytest
from hypothesis import given

import circuitgrad as cg
from circuitgrad.lower.dot import node_adjoints, node_values
from circuitgrad.primitives import PRIMITIVES
from strategies import programs
from tolerances import NOTES_RTOL, SYMPY_RTOL
from paths import TESTS

GOLDEN = str(TESTS / "golden")
UPDATE = os.environ.get("CIRCUITGRAD_UPDATE_GOLDEN") == "1"

NEURON = """
z = w*x + b
o = relu(z)
J = 0.5*(y - o)**2
"""
NEURON_AT = {"w": 2.0, "x": 1.5, "b": 0.5, "y": 1.0}
TENSOR = "y = W @ x\nJ = sum(relu(y))"
SQUARE = "J = x**2 * y"
TENSOR_SHAPES = {"W": (2, 3), "x": (3,)}
TENSOR_AT = {"W": np.array([[1.0, -1.0, 0.5], [-2.0, 0.0, 1.0]]), "x": np.array([1.0, 2.0, 3.0])}


def neuron() -> cg.Circuit:
    return cg.parse(NEURON)


def tensor() -> cg.Circuit:
    return cg.parse(TENSOR, shapes=TENSOR_SHAPES)


GOLDEN_CASES = {
    "neuron_forward": lambda: cg.to_dot(neuron()),
    "neuron_adjoint": lambda: cg.to_dot(cg.grad(neuron(), wrt=["w", "b"])),
    "neuron_forward_at": lambda: cg.to_dot(neuron(), at=NEURON_AT),
    "neuron_adjoint_at": lambda: cg.to_dot(cg.grad(neuron(), wrt=["w", "b"]), at=NEURON_AT),
    "tensor_forward_at": lambda: cg.to_dot(tensor(), at=TENSOR_AT),
    "tensor_adjoint": lambda: cg.to_dot(cg.grad(tensor())),
    # The derivative circuits of second order: primal, adjoint and tangent parts.
    "square_jvp": lambda: cg.to_dot(cg.jvp(cg.parse(SQUARE))),
    "square_hvp": lambda: cg.to_dot(cg.hvp(cg.parse(SQUARE))),
    "square_hessian": lambda: cg.to_dot(cg.hessian(cg.parse(SQUARE))),
    "neuron_hvp": lambda: cg.to_dot(cg.hvp(neuron(), wrt=["w", "b"])),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_dot(name):
    source = GOLDEN_CASES[name]().source
    path = os.path.join(GOLDEN, f"{name}.dot")
    if UPDATE:
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(source)
    with open(path, encoding="utf-8") as f:
        expected = f.read()
    assert source == expected, (f"{name}.dot changed; if intended, refresh with "
                                "CIRCUITGRAD_UPDATE_GOLDEN=1 and review the diff")


def test_dot_is_byte_stable():
    # Same circuit built twice, in fresh objects: the same bytes.
    a = cg.to_dot(cg.grad(neuron()), at=NEURON_AT).source
    b = cg.to_dot(cg.grad(neuron()), at=NEURON_AT).source
    assert a == b
    assert "0x" not in a  # no memory addresses


def nodes(source: str) -> dict[str, str]:
    """DOT node name → its attribute text."""
    return {m.group(1): m.group(2) for m in
            re.finditer(r"^\s*(\w+) \[(label=.*)\]$", source, flags=re.MULTILINE)}


def edges(source: str) -> list[tuple[str, str, str]]:
    return re.findall(r"^\s*([\w:]+) -> ([\w:]+)(?: \[(.*)\])?$", source, flags=re.MULTILINE)


def test_inputs_constants_operations_outputs_are_distinct():
    d = nodes(cg.to_dot(neuron()).source)
    c = neuron()
    fills = {}
    for i, op in enumerate(c.op(k) for k in range(len(c))):
        name = f"n{i}" if op != "const" else next(k for k in d if k.startswith(f"n{i}_"))
        fills.setdefault(op if i != c.output_ids[0] else "output", set()).add(
            re.search(r'fillcolor="([^"]+)"', d[name]).group(1))
    colours = {kind: next(iter(f)) for kind, f in fills.items()}
    assert len({colours["input"], colours["const"], colours["add"], colours["output"]}) == 4
    assert "peripheries=2" in d[f"n{c.output_ids[0]}"]


@pytest.mark.parametrize("op", sorted(p for p in PRIMITIVES if p not in ("input", "const")))
def test_every_operation_shows_its_label(op):
    from circuitgrad.primitives import shape_cases

    prim = PRIMITIVES[op]
    b = cg.circuit.Builder()
    # The record's own sample arguments and params (what the rule-size measurements build).
    args = [b.input(f"a{k}", s) for k, s in enumerate(shape_cases(op)[0])]
    params = {"sum_to": {"shape": (3,), "ndim": 2}, "broadcast_to": {"shape": (2, 3)}}
    if op == "sum_to":
        args = [b.input("a", (2, 3))]
    elif op == "broadcast_to":
        args = [b.input("a", (3,))]
    out = b.apply(op, *args, **params.get(op, prim.example))
    source = cg.to_dot(b.finish([("f", out)])).source
    assert cg.to_dot(b.finish([("f", out)])).source == source
    shown = prim.display(b.params[out.id], [b.shapes[a.id] for a in args])
    label = shown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert label in source


@pytest.mark.parametrize("op", ["sub", "div", "pow", "matmul"])
def test_argument_order_of_non_commutative_ops_is_visible(op):
    shapes = {"a": (2,), "b": (2,)} if op == "matmul" else None
    symbol = {"sub": "-", "div": "/", "pow": "**", "matmul": "@"}[op]
    src = cg.to_dot(cg.parse(f"b {symbol} a", shapes=shapes)).source
    # Inputs in order of first use: b is n0, a is n1; b is the first argument.
    assert ("n0", "n2:a0:w") in [(t, h) for t, h, _ in edges(src)]
    assert ("n1", "n2:a1:w") in [(t, h) for t, h, _ in edges(src)]
    assert 'PORT="a0"' in src and 'PORT="a1"' in src


def test_commutative_ops_have_no_ports_and_repeated_arguments_have_two_edges():
    src = cg.to_dot(cg.parse("x*x")).source
    assert "PORT" not in src
    assert [(t, h) for t, h, _ in edges(src)] == [("n0", "n1"), ("n0", "n1")]


def test_named_intermediates_and_shapes_are_shown():
    src = cg.to_dot(cg.parse("z = W @ x\nJ = sum(sin(z))", shapes=TENSOR_SHAPES)).source
    assert "<B>z</B>" in src and "<B>J</B>" in src
    assert "(2, 3)" in src and "(3,)" in src and "(2,)" in src


def test_each_use_of_a_scalar_constant_is_drawn_next_to_it():
    src = cg.to_dot(cg.parse("2*x + 2*sin(x)")).source
    consts = [n for n in nodes(src) if re.fullmatch(r"n\d+_\d+", n)]
    assert len(consts) == 2


def test_adjoint_is_drawn_in_two_parts_with_gradient_titles():
    g = cg.grad(neuron(), wrt=["w", "b"])
    src = cg.to_dot(g).source
    assert "subgraph cluster_forward" in src and "subgraph cluster_adjoint" in src
    assert "∂J/∂w" in src and "∂J/∂b" in src and "∂J/∂z" in src
    forward = src[src.index("cluster_forward"):src.index("cluster_adjoint")]
    for i in range(g.meta["forward_count"]):
        if g.op(i) != "const":
            assert re.search(rf"^\s*n{i} \[", forward, flags=re.MULTILINE)
    # The adjoint pass flows back: its edges are laid out reversed.
    back = [e for e in edges(src) if "dir=back" in e[2]]
    assert back and all(t.startswith("out")
                        or int(re.match(r"n(\d+)", t).group(1)) >= g.meta["forward_count"]
                        for t, _, _ in back)


def test_gradient_that_is_a_forward_value_or_a_constant():
    # ∂(w·x + b)/∂w = x, ∂/∂b = 1: outputs that are a forward input and a constant.
    src = cg.to_dot(cg.grad(cg.parse("J = w*x + b")), at={"w": 2.0, "x": 3.0, "b": 1.0}).source
    assert "∂J/∂w" in src and "∂J/∂x" in src and "∂J/∂b" in src
    assert "<B>x</B> = 3" in src  # x referenced in the adjoint part, with its value


def test_values_and_adjoints_at_a_point():
    c = neuron()
    src = cg.to_dot(c, at=NEURON_AT).source
    # z = 3.5, o = 3.5, J = 3.125, δ_z = o − y = 2.5, ∂J/∂w = 2.5·1.5 = 3.75.
    for text in ("3.5", "3.125", "δ 2.5", "δ 3.75", "δ 5", "δ −2.5", "δ 1"):
        assert text in src, text
    # No δ on an adjoint circuit (its adjoint nodes are the δ's), nor on several outputs.
    assert "δ " not in cg.to_dot(cg.grad(c), at=NEURON_AT).source.replace("δ = ", "")
    two = cg.parse("a = x*y\nb = a + 1", outputs=["a", "b"])
    assert "δ" not in cg.to_dot(two, at={"x": 1.0, "y": 2.0}).source


def test_node_adjoints_agree_with_grad_on_the_notes_network():
    c = neuron()
    deltas = node_adjoints(c, NEURON_AT)
    g = cg.grad(c)
    grads = cg.to_numpy(g)(**NEURON_AT)[1:]
    for i, gi in zip(c.input_ids, grads):
        np.testing.assert_allclose(deltas[i], gi, rtol=NOTES_RTOL)
    z = NEURON_AT["w"] * NEURON_AT["x"] + NEURON_AT["b"]
    o = max(z, 0.0)
    names = {c.name(i): i for i in range(len(c)) if c.name(i)}
    np.testing.assert_allclose(deltas[names["o"]], o - NEURON_AT["y"], rtol=NOTES_RTOL)
    np.testing.assert_allclose(deltas[names["z"]], (o - NEURON_AT["y"]) * (z >= 0),
                               rtol=NOTES_RTOL)
    assert deltas[names["J"]] == 1.0


@given(programs(max_ops=8))
def test_node_adjoints_are_the_gradient_on_random_programs(case):
    text, point, _values = case
    c = cg.parse(text, inputs=sorted(point))
    deltas = node_adjoints(c, point)
    grads = cg.to_numpy(cg.grad(c))(**point)[1:]
    for i, gi in zip(c.input_ids, grads):
        np.testing.assert_allclose(deltas[i], gi, rtol=SYMPY_RTOL, atol=1e-12)


def test_tensor_values_and_adjoints():
    c = tensor()
    values = node_values(c, TENSOR_AT)
    np.testing.assert_allclose(values[2], TENSOR_AT["W"] @ TENSOR_AT["x"])
    deltas = node_adjoints(c, TENSOR_AT)
    y = TENSOR_AT["W"] @ TENSOR_AT["x"]
    np.testing.assert_allclose(deltas[0], np.outer(y >= 0, TENSOR_AT["x"]))
    src = cg.to_dot(c, at=TENSOR_AT).source
    assert "[1 2 3]" in src and "δ [1 1]" in src


@pytest.mark.parametrize("at, error", [
    ({"w": 1.0}, "missing inputs"),
    ({**NEURON_AT, "q": 1.0}, "not inputs"),
    ({**NEURON_AT, "w": "two"}, "not a number"),
    ({**NEURON_AT, "w": [1.0, 2.0]}, "shape"),
    ([1.0, 2.0], "must map"),
])
def test_bad_points(at, error):
    with pytest.raises(cg.CircuitError, match=error):
        cg.to_dot(neuron(), at=at)


def big(n: int) -> cg.Circuit:
    return cg.parse("\n".join(["v0 = sin(x)"] + [f"v{k} = v{k - 1} * x + {k}"
                                                  for k in range(1, n)]))


def test_too_big_says_how_big_and_how_to_draw_anyway():
    c = big(300)
    with pytest.raises(cg.CircuitError) as e:
        cg.to_dot(c, collapse=False)
    assert str(len(c)) in str(e.value) and "max_nodes=None" in str(e.value)
    assert "collapse=True" in str(e.value) and "to_html" in str(e.value)
    assert cg.to_dot(c, max_nodes=None).source.count("->") > 500
    assert cg.to_dot(c, max_nodes=len(c)).source
    with pytest.raises(cg.CircuitError):
        cg.to_dot(cg.parse("x*y"), max_nodes=2, collapse=False)


def test_above_max_nodes_the_groups_are_drawn():
    # The collapsed view: one box per group with its counts, every node in exactly one box.
    from circuitgrad.lower.dot import COLLAPSED_BOXES

    g = cg.grad(big(300))
    src = cg.to_dot(g).source
    assert src == cg.to_dot(g, collapse=True).source and "cluster_adjoint" in src
    boxes = re.findall(r"(\d+) nodes? · (\d+) ops?</FONT>>", src)
    assert 2 < len(boxes) <= COLLAPSED_BOXES
    assert sum(int(n) for n, _ in boxes) == len(g)
    assert sum(int(k) for _, k in boxes) == g.size
    assert "->" in src and "n0" not in src
    small = cg.to_dot(cg.parse("x*y"), collapse=True).source  # on request, for any size
    assert "2 nodes · 0 ops" in small and "1 node · 1 op" in small  # inputs, x*y
    with pytest.raises(cg.CircuitError, match="not inputs"):
        cg.to_dot(g, at={"nope": 1.0})  # the point is still checked


def test_render_of_big_gradients_draws_the_groups(tmp_path):
    # 500 and 2,000 nodes: the collapsed view, which Graphviz lays out in well under a
    # second (the full diagram of the 500-node one took 50 s; timings: benchmarks/viewer.py).
    for lines, nodes in ((101, 500), (401, 2000)):
        g = cg.grad(big(lines))
        assert len(g) >= nodes
        path = cg.render(g, tmp_path / f"g{lines}.svg")
        svg = (tmp_path / f"g{lines}.svg").read_text(encoding="utf-8")
        assert svg.lstrip().startswith("<?xml") and " nodes · " in svg, path
        assert svg.count("<g id=\"node") <= 100  # boxes, not the nodes


def test_not_a_circuit():
    assert cg.to_dot("x*y").source == cg.to_dot(cg.parse("x*y")).source  # text is parsed
    with pytest.raises(cg.CircuitError, match="to_dot takes a Circuit or program text"):
        cg.to_dot(42)


# -- rendering -----------------------------------------------------------------------------
def test_render_svg_png_pdf_with_dot(tmp_path):
    g = cg.grad(neuron())
    magic = {"svg": b"<svg", "png": b"\x89PNG", "pdf": b"%PDF"}
    for fmt, start in magic.items():
        path = tmp_path / f"adjoint.{fmt}"
        assert cg.render(g, path, at=NEURON_AT) == str(path)
        data = path.read_bytes()
        assert start in data[:400], fmt
    svg = (tmp_path / "adjoint.svg").read_text(encoding="utf-8")
    assert "∂J/∂w" in svg and "δ = ∂J/∂v" in svg


def test_render_dot_writes_the_source(tmp_path):
    path = tmp_path / "c.DOT"
    cg.render(neuron(), path)
    assert path.read_text(encoding="utf-8") == cg.to_dot(neuron()).source


def test_render_unknown_suffix(tmp_path):
    with pytest.raises(cg.CircuitError, match=r"\.svg, \.png, \.pdf, \.dot"):
        cg.render(neuron(), tmp_path / "c.jpeg")
    with pytest.raises(cg.CircuitError, match="suffix"):
        cg.render(neuron(), tmp_path / "c")


def test_circuit_shows_itself_in_jupyter():
    bundle = neuron()._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml")
    assert "text/plain" in bundle


def test_without_dot(tmp_path, monkeypatch):
    # No Graphviz program on the PATH: DOT still works, rendering says what to install.
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert "digraph" in cg.to_dot(neuron()).source
    cg.render(neuron(), tmp_path / "c.dot")
    assert (tmp_path / "c.dot").read_text(encoding="utf-8").startswith("digraph")
    for fmt in ("svg", "png", "pdf"):
        with pytest.raises(cg.CircuitError, match="apt-get install graphviz"):
            cg.render(neuron(), tmp_path / f"c.{fmt}")
        assert not (tmp_path / f"c.{fmt}").exists()
    bundle = neuron()._repr_mimebundle_()
    assert list(bundle) == ["text/plain"]


def test_far_uses_are_references_so_big_circuits_lay_out_fast(tmp_path):
    # x is used by every line: drawn once near its first users, as references further on,
    # so no edge crosses the page (long edges cost Graphviz time quadratic in the length).
    c = big(166)
    assert 450 < len(c) <= 500
    src = cg.to_dot(c).source
    x = c.input_ids[0]
    assert sum(1 for t, _, _ in edges(src) if t == f"n{x}") <= 4
    assert len([n for n in nodes(src) if n.startswith(f"n{x}_")]) > 150
    start = time.perf_counter()
    cg.render(c, tmp_path / "big.svg", at={"x": 0.5})
    assert time.perf_counter() - start < 60  # about a second when idle


# -- derivative circuits: three parts, one naming scheme ------------------------------------
def clusters(source: str) -> dict[str, set[str]]:
    """Cluster name → the DOT nodes declared inside it."""
    found, current = {}, None
    for line in source.splitlines():
        m = re.match(r"\s*subgraph (cluster_\w+)", line)
        if m:
            current = m.group(1)
            found[current] = set()
        elif current and line.strip() == "}":
            current = None
        elif current:
            n = re.match(r"\s*(\w+) \[", line)
            if n:
                found[current].add(n.group(1))
    return found


DERIVATIVES = {
    "jvp": lambda c: cg.jvp(c), "hvp": lambda c: cg.hvp(c), "hessian": lambda c: cg.hessian(c),
    "grad": lambda c: cg.grad(c),
}


@pytest.mark.parametrize("kind", sorted(DERIVATIVES))
@pytest.mark.parametrize("text", [SQUARE, NEURON, "J = sin(x)*y + exp(x*y)"])
def test_every_node_and_output_sits_in_its_part(kind, text):
    c = cg.parse(text)
    d = DERIVATIVES[kind](c)
    source = cg.to_dot(d).source
    parts = clusters(source)
    expected = {"jvp": {"cluster_forward", "cluster_tangent"},
                "grad": {"cluster_forward", "cluster_adjoint"}}.get(
                    kind, {"cluster_forward", "cluster_adjoint", "cluster_tangent"})
    assert set(parts) == expected
    inside = set().union(*parts.values())
    declared = set(nodes(source))
    assert declared == inside, f"drawn outside every cluster: {sorted(declared - inside)}"
    fc = d.meta.get("forward_count", d.meta.get("tangent_count"))
    for i in range(fc):  # the primal nodes are the forward circuit's
        if f"n{i}" in declared:
            assert f"n{i}" in parts["cluster_forward"]
    boxes = {f"out{k}" for k in range(len(d.outputs))} & declared
    if kind != "grad":
        assert boxes & parts["cluster_tangent"] or any(
            f"n{i}" in parts["cluster_tangent"] for i in d.output_ids)


@pytest.mark.parametrize("kind", sorted(DERIVATIVES))
def test_one_naming_scheme(kind):
    source = cg.to_dot(DERIVATIVES[kind](cg.parse(SQUARE))).source
    labels = " ".join(re.findall(r'label=<(.*?)>\s*(?:,|\])', source))
    for code_name in ("_bar", "dJ_d", "d2J", "Hv_"):
        assert code_name not in labels, code_name
    if kind == "hessian":
        assert "∂²J/∂x∂y" in source and "∂²J/∂x²" in source and "(∂J/∂x)˙" in source
    if kind == "hvp":
        assert "(∂J/∂x)˙" in source and "x\u0307" in source and "v_x" in source
    if kind == "jvp":
        assert "J\u0307" in source and "x\u0307" in source


def test_a_gradient_that_is_a_primal_value_is_not_titled_on_the_primal_node():
    # ∂J/∂y = x² is a node of the forward pass: that node keeps its forward look.
    d = cg.hessian(cg.parse(SQUARE))
    source = cg.to_dot(d).source
    square = [i for i in range(d.meta["forward_count"]) if d.op(i) == "square"][0]
    assert "dJ_dy" not in nodes(source)[f"n{square}"]
    assert "∂J/∂y" not in nodes(source)[f"n{square}"]


def test_the_same_node_reads_the_same_forward_and_in_the_adjoint():
    c = cg.parse("J = y**2")
    forward, adjoint = cg.to_dot(c).source, cg.to_dot(cg.grad(c)).source
    label = PRIMITIVES["square"].label
    assert label in nodes(forward)["n1"] and label in nodes(adjoint)["n1"]
    assert c.op(1) == cg.grad(c).op(1) == "square"


def test_node_adjoints_is_a_transform_and_the_drawing_reads_its_circuit():
    from circuitgrad.transforms.adjoints import node_adjoints as adjoint_circuit

    c = neuron()
    a = adjoint_circuit(c)
    assert isinstance(a, cg.Circuit) and a.inputs == c.inputs
    given = node_adjoints(c, NEURON_AT, adjoints=a)
    assert [None if v is None else float(v) for v in given] == \
        [None if v is None else float(v) for v in node_adjoints(c, NEURON_AT)]


def test_to_dot_draws_the_adjoint_circuit_it_is_handed():
    from circuitgrad.transforms.adjoints import node_adjoints as adjoint_circuit

    c = neuron()
    handed = cg.to_dot(c, at=NEURON_AT, adjoints=adjoint_circuit(c)).source
    assert handed == cg.to_dot(c, at=NEURON_AT).source
    assert "δ 1" in handed


def test_a_loop_body_is_drawn_once_as_a_cluster_with_its_trip_counts():
    def f(x, F):
        step = lambda c, _: (c * 0.5 + F, c.sum())  # noqa: E731
        a, _ = cg.scan(step, x, length=20)
        b, _ = cg.scan(step, a, length=3)  # the same body, another trip count
        return np.sum(b)

    c = cg.trace(f, shapes={"x": (3,), "F": ()})
    source = cg.to_dot(c).source
    assert source.count("subgraph cluster_body") == 1
    assert "loop body 0: 20 steps; 3 steps (1 carry, 0 sequences, 1 closure)" in source
    assert "label=carry" in source  # the carried edge, new carry -> carry input
    g = cg.to_dot(cg.grad(c)).source  # the adjoint loop's body, reversed
    assert "reversed" in g and g.count("subgraph cluster_body") >= 2
