"""The docs can't rot: their code runs, their CLI transcripts match, the API page is complete.

* Every ```` ```pycon ```` block of the pages below runs as a doctest, page by page, in order,
  in a fresh namespace, from the repository root (like the README's doctest).
* Every ```` ```console ```` block of ``docs/cli.md`` whose first line is ``$ circuitgrad ...``
  is run through ``circuitgrad.cli.main`` and its output compared (``...`` matches anything).
* ``docs/api.md`` has a ``:::`` entry for every name in ``circuitgrad.__all__``.
* The theorem page's script runs (at small sizes) and the bound it states is the table's.

The site itself is built by ``make docs`` (``mkdocs build --strict``: broken links and
references fail it).
"""

from __future__ import annotations

import contextlib
import doctest
import importlib
import io
import os
import re
import shlex
import sys

import pytest

import circuitgrad as cg
from circuitgrad import primitives

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DOCS = os.path.join(ROOT, "docs")
# The pages whose code blocks are tested here (others' pages are tested where they are made).
PAGES = ["index.md", "tutorial.md", "design.md", "theorem.md", "examples.md", "cli.md",
         "tracing.md", "semantics.md", "compiled.md", "loops.md"]
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def read(page: str) -> str:
    with open(os.path.join(DOCS, page), encoding="utf-8") as f:
        return f.read()


def pycon_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every ```pycon block."""
    return [(text[: m.start()].count("\n") + 2, m.group(1))
            for m in re.finditer(r"^```pycon\n(.*?)^```", text, re.S | re.M)]


@pytest.fixture
def isolated(monkeypatch):
    """Run from the repository root; undo what a page does to sys.path, sys.modules and the
    primitive table (the design page registers a primitive to show how)."""
    monkeypatch.chdir(ROOT)
    path, modules = list(sys.path), set(sys.modules)
    table = dict(primitives.PRIMITIVES)  # FUNCTIONS is a live view of this table
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:  # the examples a page imported, e.g. multilayer
        where = getattr(sys.modules[name], "__file__", None) or ""
        if where.startswith((os.path.join(ROOT, "examples"), os.path.join(ROOT, "docs"))):
            del sys.modules[name]
    primitives.PRIMITIVES.clear()
    primitives.PRIMITIVES.update(table)


@pytest.mark.parametrize("page", PAGES)
def test_code_blocks_run(page, isolated):
    text = read(page)
    blocks = pycon_blocks(text)
    if not blocks:
        pytest.skip(f"{page} has no pycon blocks")
    # One doctest over the page's blocks, in order, sharing one namespace; each example keeps
    # its line number in the page, so a failure names the page's own line.
    test = doctest.DocTestParser().get_doctest(
        _renumbered(blocks), {"__name__": f"docs_{page[:-3]}"}, f"docs/{page}",
        os.path.join(DOCS, page), 0)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    out = io.StringIO()
    runner.run(test, out=out.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"docs/{page}: {result.failed} failing example(s)\n" + out.getvalue()


def _renumbered(blocks: list[tuple[int, str]]) -> str:
    """The blocks joined so that each example keeps its line number in the page."""
    text, line = "", 1
    for start, code in blocks:
        text += "\n" * (start - line) + code
        line = start + code.count("\n")
    return text


def console_blocks(text: str) -> list[tuple[list[str], str]]:
    """(argv, expected output) of every ```console block starting with ``$ circuitgrad``."""
    out = []
    for m in re.finditer(r"^```console\n\$ circuitgrad(.*?)\n(.*?)^```", text, re.S | re.M):
        out.append((shlex.split(m.group(1)), m.group(2)))
    return out


CLI_BLOCKS = console_blocks(read("cli.md"))


@pytest.mark.parametrize("argv, expected", CLI_BLOCKS,
                         ids=[" ".join(a)[:40] for a, _ in CLI_BLOCKS])
def test_cli_transcripts(argv, expected, monkeypatch, tmp_path):
    from circuitgrad.cli import main

    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps help to the terminal's width
    monkeypatch.chdir(tmp_path)  # `draw -o FILE` writes here
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main(argv)
        except SystemExit:  # --help
            pass
    got = out.getvalue()
    checker = doctest.OutputChecker()
    assert checker.check_output(expected, got, FLAGS), (
        f"docs/cli.md: `circuitgrad {' '.join(argv)}` now prints:\n{got}")


def test_cli_page_shows_every_command():
    commands = {argv[0] for argv, _ in CLI_BLOCKS}
    assert {"--help", "eval", "grad", "draw", "info"} <= commands


def test_api_page_documents_every_public_name():
    entries = re.findall(r"^::: ([\w.]+)$", read("api.md"), re.M)
    documented = {}
    for path in entries:
        module, _, name = path.rpartition(".")
        documented[name] = getattr(importlib.import_module(module), name)
    missing = sorted(set(cg.__all__) - set(documented))
    assert not missing, f"docs/api.md lacks `::: ...` entries for {missing}"
    for name in cg.__all__:
        assert documented[name] is getattr(cg, name), f"docs/api.md: {name} is another object"


def test_design_page_lists_every_primitive():
    table = read("design.md").split("The primitives today:")[1].split("\n\n")[1]
    listed = set(re.findall(r"^\| ([^|]*)\|", table, re.M)[1:])
    names = {n for cell in listed for n in re.findall(r"`(\w+)`", cell)}
    missing = sorted(set(primitives.PRIMITIVES) - names)
    assert not missing, f"docs/design.md: the primitive table lacks {missing}"


def test_every_public_name_has_a_docstring():
    import inspect

    lacking = [n for n in cg.__all__ if not isinstance(getattr(cg, n), (str, dict))
               and not inspect.getdoc(getattr(cg, n))]
    assert not lacking, f"public names without a docstring: {lacking}"


def test_theorem_script_runs_and_the_page_states_the_bound(tmp_path):
    sys.path.insert(0, os.path.join(DOCS, "scripts"))
    try:
        import theorem_plot
    finally:
        sys.path.pop(0)
    from circuitgrad.transforms.grad import SIZE_FACTOR

    rows = list(theorem_plot.measure(max_n=300))
    assert {kind for kind, _, _ in rows} >= {"random programs", "one neuron", "two-layer"}
    assert all(g <= SIZE_FACTOR * n for _, n, g in rows)
    png = tmp_path / "theorem.png"
    pytest.importorskip("matplotlib")
    theorem_plot.plot(rows, str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"K = {SIZE_FACTOR}" in read("theorem.md")


def test_pages_link_only_existing_images():
    for page in os.listdir(DOCS):
        if page.endswith(".md") and page in PAGES + ["api.md"]:
            for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", read(page)):
                assert os.path.exists(os.path.join(DOCS, image)), f"docs/{page}: {image}"
