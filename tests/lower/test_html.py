"""The browser viewer (lower/html.py): its data, and the page in a real headless Chromium.

The browser tests drive Debian's ``chromium`` (installed by scripts/setup.sh) with Playwright
for Python, at 10, 10³ and 10⁵ nodes: the page loads with no console error, a group opens on
a click, search finds a node, hover shows its value and δ at the point. They are skipped only
where no chromium is installed. Load times are measured in benchmarks/viewer.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

import circuitgrad as cg
from circuitgrad.cli import main
from circuitgrad.lower.dot import _array, node_adjoints, node_values
from circuitgrad.lower.groups import FAN_OUT, groups
from circuitgrad.lower.html import viewer_data

CHROMIUM = os.environ.get("CIRCUITGRAD_CHROMIUM") or shutil.which("chromium") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chain(lines: int) -> cg.Circuit:
    """A program of ``lines`` lines, 4 nodes each (sin, mul, a constant, add)."""
    return cg.parse("\n".join(["v0 = sin(x)"] + [f"v{k} = sin(v{k - 1}) * x + {k}"
                                                 for k in range(1, lines)]))


def text(value) -> str:
    return " ".join(_array(value))


# -- the data, without a browser -------------------------------------------------------------
def test_groups_cover_every_node_once_and_stay_small():
    g = cg.grad(chain(300))
    t = groups(g)
    seen = [i for members in t.members for i in members]
    assert sorted(seen) == list(range(len(g)))
    assert all(len(ch) <= FAN_OUT and len(m) <= FAN_OUT for ch, m in zip(t.children, t.members))
    assert all(not (ch and m) for ch, m in zip(t.children, t.members))
    assert t.count[0] == len(g) and t.operations[0] == g.size
    for k in range(1, len(t)):
        assert t.count[k] == len(t.members[k]) + sum(t.count[c] for c in t.children[k])
        assert all(t.part[c] == t.part[k] for c in t.children[k])
    assert [t.label[p] for p in t.children[0]] == ["forward", "adjoint"]


def test_statements_are_the_program_lines_and_the_adjoint_mirrors_them():
    c = cg.parse("z = w*x + b\nJ = sin(z)*z")
    t = groups(cg.grad(c))
    forward, adjoint = t.children[0]
    assert [t.label[g] for g in t.children[forward]] == ["inputs", "z", "J"]
    assert "δ z" in [t.label[g] for g in t.children[adjoint]]
    labels = [t.label[g] for g in t.children[adjoint]]
    assert "∂J/∂w" in labels and "∂J/∂x" in labels  # the diagrams' names, not w_bar


def test_recorded_lines_group_the_nodes():
    # A front-end that records each node's line (meta["lines"]) groups by those lines.
    from circuitgrad.builder import Builder

    b = Builder()
    x = b.input("x")
    y = b.apply("sin", x) * x
    c = b.finish([("f", y)], meta={"lines": (None, "f.py:3 in f", "f.py:4 in f")})
    t = groups(c)
    (forward,) = t.children[0]
    assert [(t.label[g], t.members[g]) for g in t.children[forward]] == [
        ("inputs", [0]), ("f.py:3 in f", [1]), ("f.py:4 in f", [2])]


def test_traced_lines_group_the_nodes_of_a_loop():
    import numpy as np

    def f(x, y):
        z = np.sin(x) * y
        for _ in range(100):
            z = z * x + np.cos(z)  # one line: 300 nodes
        return z

    c = cg.trace(f, lines=True)
    assert "lines" not in cg.trace(f).meta  # off by default (it costs time)
    assert len(c.meta["lines"]) == len(c)
    t = groups(c)
    (forward,) = t.children[0]
    first = f.__code__.co_firstlineno
    labels = [t.label[g] for g in t.children[forward]]
    assert labels == ["inputs", f"test_html.py:{first + 1} in f", f"test_html.py:{first + 3} in f"]
    loop = t.children[forward][2]
    assert t.count[loop] == 300 and len(t.children[loop]) <= FAN_OUT


def test_a_deep_circuit_needs_no_recursion():
    c = chain(25_000)  # 10^5 nodes, each depending on the one before
    t = groups(c)
    assert t.count[0] == len(c) >= 99_990
    depth = max(len(t.ancestors(g)) for g in range(len(t)))
    assert depth <= 5


def test_data_holds_values_deltas_and_the_adjoint_links():
    c = cg.parse("z = w*x + b\nJ = sin(z)*z")
    at = {"w": 0.5, "x": 2.0, "b": -0.25}
    d = viewer_data(c, at=at)
    values, deltas = node_values(c, at), node_adjoints(c, at)
    assert d["nodes"]["value"] == [text(v) for v in values]
    assert d["nodes"]["delta"] == ["" if v is None else text(v) for v in deltas]
    g = cg.grad(c)
    d = viewer_data(g, at=at)
    assert d["adjoint_of"] == [[a, f] for a, f in sorted(g.meta["adjoint_of"].items())]
    # The δ of a forward node of a gradient circuit is its adjoint node's value.
    gv = node_values(g, at)
    for a, f in g.meta["adjoint_of"].items():
        assert d["nodes"]["delta"][f] == text(gv[a])
    assert d["palette"]["adjoint"] == ("#ffedd5", "#ea580c") or \
        d["palette"]["adjoint"] == ["#ffedd5", "#ea580c"]
    assert "∂J/∂w" in d["nodes"]["title"]
    json.dumps(d)


def test_page_is_self_contained(tmp_path):
    page = cg.to_html(chain(5), path=tmp_path / "c.html")
    assert (tmp_path / "c.html").read_text(encoding="utf-8") == page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no network
    assert "<script src" not in page and "<link" not in page
    assert "</script>" not in page.split('id="cg-data">')[1].split("</script>")[0]
    with pytest.raises(cg.CircuitError, match="cannot write"):
        cg.to_html(chain(2), path=tmp_path / "no" / "such" / "dir.html")


def test_view_command_writes_the_page(tmp_path, capsys):
    out = tmp_path / "v.html"
    assert main(["view", "z = w*x + b; J = relu(z)", "--grad", "--at", "w=1,x=2,b=-0.5",
                 "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    assert "cg-data" in page and "∂J/∂w" in page


# -- the page in Chromium ---------------------------------------------------------------
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium browser installed (Debian: apt-get install chromium; "
    "scripts/setup.sh installs it)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            headless=True, args=ARGS, viewport={"width": 1280, "height": 800})
        yield context
        context.close()


def open_page(browser, path):
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_function("window.cgViewer && window.cgViewer.ready", timeout=20_000)
    return page, errors


# (lines of the chain program, the node searched for): 10, 10^3 and 10^5 nodes.
SIZES = {10: (3, "v2"), 1_000: (250, "v123"), 100_000: (25_000, "v12345")}


@needs_chromium
@pytest.mark.parametrize("nodes", sorted(SIZES))
def test_page_in_chromium(browser, tmp_path, nodes):
    lines, name = SIZES[nodes]
    c = chain(lines)
    assert nodes * 0.9 <= len(c) <= nodes * 1.1
    at = {"x": 0.75}
    path = tmp_path / "c.html"
    cg.to_html(c, at=at, path=path)
    page, errors = open_page(browser, path)
    try:
        assert errors == []
        # A group opens on a click: its box goes, its children or nodes come.
        t = groups(c)
        shown = [int(b.get_attribute("data-group")) for b in page.locator("[data-group]").all()]
        assert shown and all(t.parent[g] in t.children[0] for g in shown)  # collapsed
        g = max(shown, key=lambda k: t.count[k])
        before = page.evaluate("cgViewer.items()")
        page.click(f'[data-group="{g}"]')
        page.wait_for_selector(f'[data-group="{g}"]', state="detached")
        inside = [f'[data-group="{k}"]' for k in t.children[g]] + \
            [f'[data-node="{k}"]' for k in t.members[g]]
        assert all(page.locator(sel).count() == 1 for sel in inside)
        assert page.evaluate("cgViewer.items()") == before - 1 + len(inside)
        # Search finds the node by name; choosing it opens its groups and selects it.
        i = next(k for k, v in c.names.items() if v == name)
        page.fill("#cg-search", name)
        hit = page.locator(f'#cg-hits button[data-go="{i}"]')
        hit.wait_for()
        assert name in hit.inner_text()
        hit.click()
        node = page.locator(f'[data-node="{i}"]')
        node.wait_for()
        assert "selected" in node.get_attribute("class")
        # Hover shows the node's value and δ at the point, as Python computes them.
        node.hover()
        tip = page.locator("#cg-tip")
        tip.wait_for(state="visible")
        shown = tip.inner_text()
        assert f"value {text(node_values(c, at)[i])}" in shown
        assert f"δ {text(node_adjoints(c, at)[i])}" in shown
        assert errors == []
    finally:
        page.close()


@needs_chromium
def test_adjoint_link_and_path_in_chromium(browser, tmp_path):
    c = cg.parse("z = w*x + b\nJ = sin(z)*z")
    g = cg.grad(c)
    path = tmp_path / "g.html"
    cg.to_html(g, at={"w": 0.5, "x": 2.0, "b": -0.25}, path=path)
    page, errors = open_page(browser, path)
    try:
        z = next(k for k, v in g.names.items() if v == "z")
        z_bar = next(a for a, f in g.meta["adjoint_of"].items() if f == z)
        page.evaluate(f"cgViewer.select({z})")
        partner = page.locator(f'[data-node="{z_bar}"]')
        partner.wait_for()
        assert "partner" in partner.get_attribute("class")  # select one, see the other
        assert "its adjoint" in page.inner_text("#cg-sel")
        page.select_option("#cg-from", str(g.input_ids[0]))
        page.select_option("#cg-to", str(g.output_ids[0]))
        page.click("#cg-path")
        assert page.locator(".onpath").count() >= 2
        assert "nodes on the paths" in page.inner_text("#cg-sel")
        size = page.inner_text("#cg-size")
        assert f"{len(g)}" in size and "adjoint part" in size
        assert errors == []
    finally:
        page.close()
