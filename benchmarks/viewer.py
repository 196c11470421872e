"""The viewer and the static diagrams at size (issue 31).

* ``to_html`` of a chain program at 10³, 10⁴ and 10⁵ nodes with a point (values and δ's), and
  the page's load time in headless Chromium (Debian's ``chromium``, driven by Playwright):
  from navigation to the viewer's first drawing (``window.cgViewer.ready``), the median of
  three loads. The target: ≤ 2 s at 10⁵ nodes.
* ``render`` to SVG of the 500- and 2,000-node gradients of the random programs of
  benchmarks/programs.py, which draw the collapsed group view
  (``to_dot``'s default above ``MAX_NODES``), and, for scale, of the 500-node gradient drawn
  node by node (``collapse=False``), bounded by the timeout. The target: ≤ 5 s each.

    python benchmarks/viewer.py        # about a minute
    python benchmarks/viewer.py --screenshots   # docs/img/viewer_*.png (docs/viewer.md)
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import circuitgrad as cg
from circuitgrad.lower.dot import MAX_NODES

SIZES = {True: (1_000, 100_000), False: (1_000, 10_000, 100_000)}
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chain(lines: int) -> cg.Circuit:
    """The program of tests/lower/test_html.py: 4 nodes a line."""
    return cg.parse("\n".join(["v0 = sin(x)"] + [f"v{k} = sin(v{k - 1}) * x + {k}"
                                                 for k in range(1, lines)]))


def gradient(nodes: int) -> cg.Circuit:
    """The gradient of the benchmarks' random program (benchmarks/programs.py) with the
    fewest operations that gives at least ``nodes`` nodes."""
    from programs import random_program

    ops = int(nodes * 0.42)
    while True:
        g = cg.grad(cg.parse(random_program(ops).text()))
        if len(g) >= nodes:
            return g
        ops += max(1, (nodes - len(g)) // 3)


def load_times(paths: list[Path], repeats: int = 3) -> list[float]:
    """The median load time (s) of each page in headless Chromium."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    out = []
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(profile, executable_path=chromium,
                                                        headless=True, args=ARGS)
        for path in paths:
            times = []
            for _ in range(repeats):
                page = context.new_page()
                t0 = time.perf_counter()
                page.goto(path.as_uri())
                page.wait_for_function("window.cgViewer && window.cgViewer.ready",
                                       timeout=60_000)
                times.append(time.perf_counter() - t0)
                page.close()
            out.append(statistics.median(times))
        context.close()
    return out


def _render_full(nodes: int, path: str, timeout: float) -> str:
    """``render(..., collapse=False)`` in a child process, bounded by ``timeout``."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import viewer, "
            f"circuitgrad as cg; cg.render(viewer.gradient({nodes}), {path!r}, "
            "max_nodes=None, collapse=False)")
    t0 = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-c", code], check=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f}"
    return f"{time.perf_counter() - t0:.1f}"


def run(quick: bool = False) -> str:
    """The markdown of both tables."""
    lines = ["### The viewer and the static diagrams at size", "",
             "`to_html` of the chain program `v{k} = sin(v{k-1}) * x + k` (4 nodes a line) "
             "with a point; load: navigation to the viewer's first drawing in headless "
             "Chromium, median of 3 (target ≤ 2 s at 10⁵ nodes).", "",
             "| nodes | to_html s | page MB | load s |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as d:
        rows, paths = [], []
        for n in SIZES[quick]:
            c = chain(n // 4)
            path = Path(d) / f"c{n}.html"
            t0 = time.perf_counter()
            cg.to_html(c, at={"x": 0.75}, path=path)
            rows.append((len(c), time.perf_counter() - t0, path.stat().st_size / 1e6))
            paths.append(path)
        try:
            loads = [f"{t:.2f}" for t in load_times(paths)]
        except Exception as e:  # noqa: BLE001 - no browser: say so in the table
            loads = [f"({type(e).__name__})"] * len(paths)
        for (n, t, mb), load in zip(rows, loads):
            lines.append(f"| {n:,} | {t:.2f} | {mb:.1f} | {load} |")
        lines += ["", "`render` to SVG of the gradients of random programs (benchmarks/programs.py; "
                  "target ≤ 5 s each); above "
                  "`MAX_NODES` = 500 the collapsed group view is drawn.", "",
                  "| gradient nodes | view | render s |", "|---|---|---|"]
        for nodes in (500, 501, 2000):
            g = gradient(nodes)
            t0 = time.perf_counter()
            cg.render(g, os.path.join(d, f"g{nodes}.svg"))
            view = "collapsed groups" if len(g) > MAX_NODES else "every node"
            lines.append(f"| {len(g):,} | {view} | {time.perf_counter() - t0:.2f} |")
        timeout = 20.0 if quick else 60.0
        g = gradient(500)
        lines.append(f"| {len(g):,} | every node (`collapse=False`) | "
                     f"{_render_full(500, os.path.join(d, 'full.svg'), timeout)} |")
    return "\n".join(lines)


def screenshots(out: Path) -> list[Path]:
    """docs/img/viewer_collapsed.png and viewer_open.png: the gradient of the notes'
    two-layer network (8 inputs, 16 units, in scalars), collapsed, then with the unit
    ``a5 = relu(z5)`` selected (its group and its adjoint's open) and hovered."""
    import random

    from playwright.sync_api import sync_playwright
    from programs import two_layer

    g = cg.grad(cg.parse(two_layer(8, 16)))
    rng = random.Random(3)
    at = {name: round(rng.uniform(-1, 1), 2) for name in g.inputs}
    page_path = out / "viewer_example.html"
    cg.to_html(g, at=at, path=page_path, title="two-layer network: gradient")
    a5 = next(i for i, name in g.names.items() if name == "a5")
    shots = [out / "viewer_collapsed.png", out / "viewer_open.png"]
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            headless=True, args=ARGS, viewport={"width": 1400, "height": 820})
        page = context.new_page()
        page.goto(page_path.as_uri())
        page.wait_for_function("window.cgViewer && window.cgViewer.ready")
        page.screenshot(path=str(shots[0]))
        page.fill("#cg-search", "a5")
        page.click(f'#cg-hits button[data-go="{a5}"]')
        page.hover(f'[data-node="{a5}"]')
        page.wait_for_selector("#cg-tip", state="visible")
        page.screenshot(path=str(shots[1]))
        context.close()
    page_path.unlink()
    return shots


if __name__ == "__main__":
    if "--screenshots" in sys.argv:
        root = Path(__file__).resolve().parent.parent
        print(screenshots(root / "docs" / "img"))
    else:
        print(run(quick="--quick" in sys.argv))
