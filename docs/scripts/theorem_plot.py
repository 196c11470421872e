"""The O(N) theorem, measured: the size of the adjoint circuit against the size N of f's.

Builds seeded random straight-line programs of 10² … 10⁵ operations (the benchmarks' own
workload, ``benchmarks.programs.random_program``: every scalar function and ``+ - * / **``,
with fan-out) and the notes' networks (one neuron, two layers, several layers, of growing
width, scalarized so that N counts scalar operations, N ≈ 2·#parameters), differentiates each
with ``cg.grad`` and records ``c.size`` and ``g.size``. Writes the plot
``docs/img/theorem_size.png`` and prints the table that ``docs/theorem.md`` shows.

    python docs/scripts/theorem_plot.py            # the full run (about a minute)
    python docs/scripts/theorem_plot.py --max-n 1000 --out /tmp/theorem.png
    python docs/scripts/theorem_plot.py --data /tmp/rows.json   # measure once, re-plot after
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Iterator

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import circuitgrad as cg  # noqa: E402
from benchmarks.programs import random_program  # noqa: E402
from circuitgrad.transforms.grad import SIZE_FACTOR  # noqa: E402

SEEDS = (0, 1, 2)
RANDOM_SIZES = (100, 300, 1000, 3000, 10_000, 30_000, 100_000)


def network(widths: list[int]) -> cg.Circuit:
    """The notes' relu network with layer widths ``widths`` (input first, one output), as a
    tensor circuit: zₖ = Wₖ aₖ₋₁ + bₖ, aₖ = relu(zₖ), J = ½(h − y)²."""
    lines, a, shapes = [], "x", {"x": (widths[0],)}
    r = len(widths) - 1
    for k in range(1, r + 1):
        shapes[f"W{k}"] = (widths[k], widths[k - 1])
        shapes[f"b{k}"] = (widths[k],)
        lines.append(f"z{k} = W{k} @ {a} + b{k}")
        if k < r:
            lines.append(f"a{k} = relu(z{k})")
            a = f"a{k}"
    lines.append(f"J = 0.5 * sum(square(z{r} - y))")
    shapes["y"] = (widths[-1],)
    return cg.parse("\n".join(lines), shapes=shapes)


NETWORKS = {
    "one neuron": [[d, 1] for d in (10, 100, 1000, 10_000)],
    "two-layer": [[d, m, 1] for d, m in ((4, 8), (16, 32), (64, 64), (128, 256))],
    "multi-layer (4 layers)": [[w, w, w, w, 1] for w in (4, 16, 48, 96)],
}


def measure(max_n: int = 100_000) -> Iterator[tuple[str, int, int]]:
    """(kind, c.size, g.size) for every circuit of at most ``max_n`` operations."""
    for n in RANDOM_SIZES:
        if n > max_n:
            break
        for seed in SEEDS:
            p = random_program(n, seed=seed)
            c = cg.parse(p.text(), inputs=p.inputs)
            yield "random programs", c.size, cg.grad(c).size
    for kind, shapes in NETWORKS.items():
        for widths in shapes:
            tensor = network(widths)
            c = cg.scalarize(tensor)
            if c.size > max_n:
                break
            wrt = [n for n in c.inputs if not n.startswith(("x_", "y_"))]
            yield kind, c.size, cg.grad(c, wrt=wrt).size


def plot(rows: list[tuple[str, int, int]], path: str) -> None:
    """Two panels: g.size against N (log-log, with the bound K·N), and g.size / N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"random programs": ("o", "#2563eb"), "one neuron": ("s", "#16a34a"),
              "two-layer": ("^", "#ea580c"), "multi-layer (4 layers)": ("D", "#9333ea")}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=130)
    ns = [n for _, n, _ in rows]
    lo, hi = min(ns) / 1.5, max(ns) * 1.5
    left.plot([lo, hi], [SIZE_FACTOR * lo, SIZE_FACTOR * hi], "--", color="#dc2626",
              label=f"proven bound  g.size = {SIZE_FACTOR}·N")
    left.plot([lo, hi], [lo, hi], ":", color="#6b7280", label="g.size = N")
    for kind, (marker, colour) in styles.items():
        pts = [(n, g) for k, n, g in rows if k == kind]
        if pts:
            left.loglog(*zip(*pts), marker, color=colour, label=kind, alpha=0.8, ms=6)
            right.semilogx([n for n, _ in pts], [g / n for n, g in pts], marker, color=colour,
                           label=kind, alpha=0.8, ms=6)
    left.set_xlabel("N = c.size (operations of f)")
    left.set_ylabel("g.size (operations of the adjoint circuit)")
    left.set_title("Size of ∇f's circuit against N")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8, loc="upper left")
    right.axhline(SIZE_FACTOR, ls="--", color="#dc2626", label=f"K = {SIZE_FACTOR}")
    right.set_ylim(0, SIZE_FACTOR + 1)
    right.set_xlabel("N = c.size")
    right.set_ylabel("g.size / N")
    right.set_title("The ratio stays flat: O(N)")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0.84), ncol=3)
    fig.suptitle("The notes' theorem, measured: grad(c).size ≤ K · c.size", fontsize=12)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def table(rows: list[tuple[str, int, int]]) -> str:
    """The measurements as a Markdown table (random programs averaged over the seeds)."""
    groups: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for kind, n, g in rows:
        key = (kind, round(n, -2) if kind == "random programs" else n)
        groups.setdefault(key, []).append((n, g))
    out = ["| circuit | N = c.size | g.size | g.size / N |", "|---|---|---|---|"]
    for (kind, _), pts in groups.items():
        n = sum(p[0] for p in pts) / len(pts)
        g = sum(p[1] for p in pts) / len(pts)
        seeds = f" ({len(pts)} seeds, mean)" if len(pts) > 1 else ""
        out.append(f"| {kind}{seeds} | {n:,.0f} | {g:,.0f} | {g / n:.2f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> list[tuple[str, int, int]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-n", type=int, default=100_000)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "img", "theorem_size.png"))
    parser.add_argument("--data", metavar="JSON",
                        help="save the measurements here, or re-plot them if the file exists")
    args = parser.parse_args(argv)
    if args.data and os.path.exists(args.data):
        with open(args.data) as f:
            rows = [tuple(r) for r in json.load(f)]
    else:
        rows = list(measure(args.max_n))
        if args.data:
            with open(args.data, "w") as f:
                json.dump(rows, f)
    plot(rows, args.out)
    ratios = [g / n for _, n, g in rows]
    print(table(rows))
    print(f"\nratio g.size / N: {min(ratios):.2f} … {max(ratios):.2f}; proven bound "
          f"K = SIZE_FACTOR = {SIZE_FACTOR}")
    print(f"plot saved to {os.path.relpath(args.out)}")
    return rows


if __name__ == "__main__":
    main()
