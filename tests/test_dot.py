"""Diagrams: golden DOT text, what a diagram shows, values and adjoints, rendering with dot.

Refresh the golden files with ``CIRCUITGRAD_UPDATE_GOLDEN=1 pytest tests/test_dot.py`` and
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

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")
UPDATE = os.environ.get("CIRCUITGRAD_UPDATE_GOLDEN") == "1"

NEURON = """
z = w*x + b
o = relu(z)
J = 0.5*(y - o)**2
"""
NEURON_AT = {"w": 2.0, "x": 1.5, "b": 0.5, "y": 1.0}
TENSOR = "y = W @ x\nJ = sum(relu(y))"
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
    prim = PRIMITIVES[op]
    b = cg.circuit.Builder()
    if op in ("matmul",):
        args = [b.input("a", (2, 3)), b.input("b", (3,))]
    elif op in ("outer",):
        args = [b.input("a", (2,)), b.input("b", (3,))]
    elif op == "transpose" or prim.params == ("axis",):
        args = [b.input("a", (2, 3))]
    elif op == "sum_to":
        args = [b.input("a", (2, 3))]
    elif op == "broadcast_to":
        args = [b.input("a", (3,))]
    else:
        args = [b.input(n) for n in "abc"[: prim.arity]]
    params = {"sum_to": {"shape": (3,), "ndim": 2}, "broadcast_to": {"shape": (2, 3)}}
    out = b.apply(op, *args, **params.get(op, {}))
    source = cg.to_dot(b.finish([("f", out)])).source
    assert cg.to_dot(b.finish([("f", out)])).source == source
    label = prim.label.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
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
        cg.to_dot(c)
    assert str(len(c)) in str(e.value) and "max_nodes=None" in str(e.value)
    assert cg.to_dot(c, max_nodes=None).source.count("->") > 500
    assert cg.to_dot(c, max_nodes=len(c)).source
    with pytest.raises(cg.CircuitError):
        cg.to_dot(cg.parse("x*y"), max_nodes=2)


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
