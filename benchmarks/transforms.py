"""Sizes and costs of the circuit → circuit transforms: grad (before and after simplify), jvp,
hvp, and the time simplify takes per node.

Workloads (from :mod:`benchmarks.programs`, the same as the other benchmarks): seeded random
straight-line programs of 10³ … 10⁵ operations, and the notes' networks written out in scalars
(one neuron, two layers). Ratios are sizes in operation nodes over ``c.size``.

``python -m benchmarks.transforms`` prints the tables; ``run(quick=True)`` uses small sizes.
"""

from __future__ import annotations

import time

import circuitgrad as cg
from circuitgrad.transforms.grad import SIZE_FACTOR
from circuitgrad.transforms.jvp import HVP_SIZE_FACTOR, JVP_SIZE_FACTOR

from .programs import one_neuron, random_program, two_layer


def random_text(n: int) -> str:
    """The seeded random program of ``n`` operations, as text."""
    p = random_program(n, seed=n)
    return p.text()

def _timed(fn, *args, **kw):
    t = time.perf_counter()
    result = fn(*args, **kw)
    return result, time.perf_counter() - t


def size_rows(workloads: list[tuple[str, str]]) -> list[dict]:
    """Per workload: c.size and the size ratios of every transform."""
    rows = []
    for name, text in workloads:
        c = cg.parse(text)
        raw = cg.grad(c, simplify=False)
        g = cg.simplify(raw)
        unsafe = cg.simplify(raw, unsafe=True)
        j = cg.jvp(c)
        h = cg.hvp(c)
        rows.append({"name": name, "size": c.size, "grad_raw": raw.size / c.size,
                     "grad": g.size / c.size, "grad_unsafe": unsafe.size / c.size,
                     "jvp": j.size / c.size, "hvp": h.size / c.size})
    return rows


def time_rows(sizes: list[int]) -> list[dict]:
    """Time of simplify per node of the raw adjoint circuit (best of 3), next to grad's."""
    rows = []
    for n in sizes:
        c = cg.parse(random_text(n))
        raw, t_grad = _timed(cg.grad, c, simplify=False)
        best = min(_timed(cg.simplify, raw)[1] for _ in range(3))
        rows.append({"n": n, "nodes": len(raw), "grad_us": 1e6 * t_grad / len(raw),
                     "simplify_us": 1e6 * best / len(raw)})
    return rows


def run(quick: bool = False) -> str:
    """The markdown tables (sizes 10³ … 10⁵; ``quick``: 10³ … 10⁴)."""
    sizes = [10**3, 10**4] if quick else [10**3, 10**4, 10**5]
    workloads = [(f"random program, {n} ops", random_text(n)) for n in sizes]
    workloads += [("one neuron, d = 4", one_neuron(4)), ("one neuron, d = 64", one_neuron(64)),
                  ("two-layer, 3 → 4", two_layer(3, 4)),
                  ("two-layer, 16 → 32", two_layer(16, 32))]
    rows = size_rows(workloads)
    out = ["## Transforms: sizes relative to the circuit", "",
           f"Bounds from the primitive table: grad ≤ {SIZE_FACTOR}·c.size, jvp ≤ "
           f"{JVP_SIZE_FACTOR}·c.size, hvp ≤ {HVP_SIZE_FACTOR}·c.size. *grad raw*: the adjoint "
           "pass alone; *grad*: simplified (exact rules, the default of `cg.grad`); *grad unsafe*:"
           " with `unsafe=True`; jvp and hvp are simplified.", "",
           "| workload | c.size | grad raw | grad | grad unsafe | jvp | hvp |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['name']} | {r['size']} | {r['grad_raw']:.3f} | {r['grad']:.3f} | "
                   f"{r['grad_unsafe']:.3f} | {r['jvp']:.3f} | {r['hvp']:.3f} |")
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("grad_raw", "grad", "grad_unsafe",
                                                            "jvp", "hvp")}
    out.append(f"| **mean** | | {mean['grad_raw']:.3f} | {mean['grad']:.3f} | "
               f"{mean['grad_unsafe']:.3f} | {mean['jvp']:.3f} | {mean['hvp']:.3f} |")
    out += ["", "## Transforms: time of simplify per node", "",
            "On the raw adjoint circuit of a random program (best of 3); linear cost shows as a "
            "flat column.", "",
            "| program ops | adjoint nodes | grad µs/node | simplify µs/node |",
            "|---:|---:|---:|---:|"]
    for r in time_rows(sizes):
        out.append(f"| {r['n']} | {r['nodes']} | {r['grad_us']:.2f} | {r['simplify_us']:.2f} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(run())
