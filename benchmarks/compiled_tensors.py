"""Compiled evaluation of tensor programs (issue 16): the notes' networks and the vectorized
Rosenbrock function through ``to_numpy``, ``to_tape`` and ``to_c``.

``to_tape`` and ``to_c`` scalarize a tensor circuit (one node per entry), while ``to_numpy``
runs one NumPy call per tensor node: the table shows where each pays off. For each workload:
the lowering of the gradient circuit (``to_c`` into an empty cache, so its compile counts),
∇ at one point and at 4,096 points (the points differ in ``x``), as ratios to ``to_numpy``
measured in the same run.

    python -m benchmarks --only compiled_tensors
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

import circuitgrad as cg

from .harness import fmt_ratio, fmt_time, median_time, table, timed

POINTS = 4096


def _rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def _networks() -> list[tuple[str, cg.Circuit]]:
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
    sys.path.insert(0, root)
    try:
        import multilayer
        import two_layer
    finally:
        sys.path.remove(root)
    shapes = {"W1": (two_layer.M, two_layer.D), "x": (two_layer.D,), "b1": (two_layer.M,),
              "w2": (two_layer.M,)}
    two = cg.parse(two_layer.PROGRAM, shapes=shapes)
    sizes = multilayer.SIZES
    shapes = {"x": (sizes[0],), "y": (sizes[-1],)}
    for k in range(1, len(sizes)):
        shapes[f"W{k}"], shapes[f"b{k}"] = (sizes[k], sizes[k - 1]), (sizes[k],)
    multi = cg.parse(multilayer.program(sizes), shapes=shapes)
    return [(f"two-layer network (D = {two_layer.D}, m = {two_layer.M})",
             cg.grad(two, wrt=[n for n in two.inputs if n not in ("x", "y")])),
            (f"multilayer network {'-'.join(map(str, sizes))}",
             cg.grad(multi, wrt=[n for n in multi.inputs if n not in ("x", "y")]))]


def workloads(quick: bool) -> list[tuple[str, cg.Circuit]]:
    sizes = (10, 100) if quick else (10, 100, 1000)
    return _networks() + [(f"vectorized Rosenbrock, n = {n}",
                           cg.grad(cg.trace(_rosen, shapes={"x": (n,)}))) for n in sizes]


def _values(g: cg.Circuit, batch: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    values = {}
    for name, shape in g.input_shapes.items():
        full = ((POINTS,) if batch and name == "x" else ()) + shape
        values[name] = rng.uniform(-1, 1, size=full) / np.sqrt(max(1, int(np.prod(shape))))
    return values


def run(quick: bool = False) -> str:
    """The table (markdown)."""
    os.environ["CIRCUITGRAD_CACHE"] = tempfile.mkdtemp(prefix="cg_bench_")
    rows = []
    for label, g in workloads(quick):
        point, batch = _values(g, False), _values(g, True)
        cells: dict[str, tuple[float, float, float]] = {}
        reference = None
        for lowering in (cg.to_numpy, cg.to_tape, cg.to_c):
            build, f = timed(lambda lowering=lowering: lowering(g))
            got = f(**point)
            if reference is None:
                reference = got
            else:
                for a, b in zip(got, reference):
                    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
            cells[lowering.__name__] = (build, median_time(lambda f=f: f(**point)),
                                        median_time(lambda f=f: f(**batch), budget=0.5))
        ref = cells["to_numpy"]

        def cell(name: str, k: int) -> str:
            value = cells[name][k]
            return fmt_time(value) + ("" if name == "to_numpy" else
                                      f" (×{fmt_ratio(value / ref[k])})")

        for name in cells:
            rows.append([label if name == "to_numpy" else "", name, f"{len(g):,}",
                         cell(name, 0), cell(name, 1), cell(name, 2)])
    return ("## Compiled evaluation of tensor programs (issue 16)\n\n"
            "The gradients of the notes' networks (`examples/two_layer.py`, "
            "`examples/multilayer.py`, ∇ with respect to the weights) and of the vectorized "
            "Rosenbrock function (`trace`d), lowered three ways; `to_tape` and `to_c` scalarize "
            "the circuit first. × = time / to_numpy's in the same run (< 1: faster). Values "
            "agree with to_numpy to 10⁻⁹ (checked).\n\n"
            + table(["workload", "lowering", "nodes (tensor circuit)", "lowering time",
                     "∇ at one point", f"∇ at {POINTS:,} points"], rows) + "\n")


if __name__ == "__main__":
    print(run(quick=True))
