"""circuitgrad alone, as N grows: linear build, the size of ∇f, the cheap-gradient ratio.

Issues 2 and 3 ask for three things, measured here on the seeded random programs of
:mod:`benchmarks.programs` (each size in a bounded child process):

1. Build time per op: ``parse`` and ``to_numpy`` of the function (10³…10⁵ ops), then
   ``grad`` and ``to_numpy`` of the gradient (10³…10⁶ ops; 10⁶ in full mode only). Linear cost
   means a flat time per op.
2. ``g.size / c.size``: random programs 10³…10⁶ and the notes' scalarized networks (the
   one-neuron net J = ½(y − relu(wᵀx + b))² and a two-layer net with m hidden units). Goal
   ≤ 2.5 on average; the bound proven in ``transforms/grad.py`` is ``SIZE_FACTOR``.
3. Evaluation time of ∇f (with f: the adjoint circuit's first output) against f alone, at one
   point and at a batch of 4096 points, in both lowerings (generated code, ``"compile"``, and
   the node interpreter, ``"interpret"``; ``"auto"`` picks compile up to ``COMPILE_LIMIT``
   nodes). The cheap-gradient principle says the ratio is a small constant (≤ 4).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from .harness import (fmt_n, fmt_ratio, fmt_time, measurement_timeout, median_time,
                      plot_loglog, run_bounded, table)

POINTS = 4096


def _import_cg():
    import circuitgrad as cg
    return cg


def measure_build(emit: Callable[[str, Any], None], n: int, seed: int = 0,
                  evaluate: bool = True) -> None:
    """Child: time parse, to_numpy(c), grad, to_numpy(g) of a random program of ``n`` ops;
    then (``evaluate``) f and ∇f at one point and at a batch, in both lowerings."""
    cg = _import_cg()
    from circuitgrad.lower import numpy as lowering

    from .programs import random_program
    p = random_program(n, seed=seed)
    text = p.text()
    inputs = list(p.inputs)
    t0 = time.perf_counter()
    c = cg.parse(text, inputs=inputs)
    emit("parse", time.perf_counter() - t0)
    emit("c_size", c.size)
    t0 = time.perf_counter()
    f = cg.to_numpy(c)
    emit("to_numpy_f", time.perf_counter() - t0)
    emit("mode_f", "compile" if len(c) <= lowering.COMPILE_LIMIT else "interpret")
    t0 = time.perf_counter()
    g = cg.grad(c)
    emit("grad", time.perf_counter() - t0)
    emit("g_size", g.size)
    t0 = time.perf_counter()
    fg = cg.to_numpy(g)
    emit("to_numpy_g", time.perf_counter() - t0)
    emit("mode_g", "compile" if len(g) <= lowering.COMPILE_LIMIT else "interpret")
    t0 = time.perf_counter()
    fg(*p.point())
    emit("first_call_g", time.perf_counter() - t0)
    if not evaluate:
        return
    point = [float(v) for v in p.point()]
    batch = p.batch(POINTS)
    del f, fg
    for mode in ("compile", "interpret"):
        f = cg.to_numpy(c, mode=mode)
        fg = cg.to_numpy(g, mode=mode)
        emit(f"{mode}_f1", median_time(lambda: f(*point)))  # noqa: F821 (run before the del)
        emit(f"{mode}_g1", median_time(lambda: fg(*point)))  # noqa: F821 (run before the del)
        emit(f"{mode}_fB", median_time(lambda: f(*batch), budget=1.0))  # noqa: F821 (run before the del)
        emit(f"{mode}_gB", median_time(lambda: fg(*batch), budget=1.0))  # noqa: F821 (run before the del)
        del f, fg


def net_programs() -> list[tuple[str, str]]:
    """The notes' networks, scalarized: (label, program text)."""
    from .programs import one_neuron, two_layer
    return ([(f"one neuron, d = {d}", one_neuron(d)) for d in (10, 100, 1000)]
            + [(f"two-layer, d = {d}, m = {m}", two_layer(d, m))
               for d, m in ((10, 16), (100, 64), (784, 32))])


def measure_nets(emit: Callable[[str, Any], None]) -> None:
    """Child: g.size / c.size for the notes' scalarized networks (all inputs active)."""
    cg = _import_cg()
    from circuitgrad.transforms.grad import SIZE_FACTOR, TENSOR_SIZE_FACTOR
    emit("SIZE_FACTOR", SIZE_FACTOR)
    emit("TENSOR_SIZE_FACTOR", TENSOR_SIZE_FACTOR)
    for label, text in net_programs():
        c = cg.parse(text)
        g = cg.grad(c)
        emit(label, [c.size, g.size])


def run(quick: bool = False) -> str:
    """The scaling report (markdown)."""
    timeout = measurement_timeout(quick)
    sizes = [10**3, 10**4, 10**5] if quick else [10**3, 10**4, 10**5, 10**6]
    eval_max = 10**4 if quick else 10**5
    results: dict[int, Any] = {}
    notes: list[str] = []
    for n in sizes:
        bound = max(timeout, 900.0 if n >= 10**6 else 300.0 if n >= 10**5 else timeout)
        r = run_bounded("benchmarks.scaling:measure_build",
                        {"n": n, "evaluate": n <= eval_max}, bound)
        results[n] = r
        if r.timed_out:
            notes.append(f"N = {fmt_n(n)}: timeout after {bound:.0f} s")
        if r.error:
            notes.append(f"N = {fmt_n(n)}: error: {r.error}")
    nets = run_bounded("benchmarks.scaling:measure_nets", {}, max(timeout, 300.0))

    out = ["## Scaling of circuitgrad (issues 2 and 3)", "",
           "Seeded random straight-line programs (`benchmarks/programs.py`, 8 inputs, all "
           "scalar functions and `+ - * / **`), text → `cg.parse` → `cg.grad` → `cg.to_numpy`. "
           "Time per op = time / N. Linear cost shows as a flat time per op."]
    if quick:
        out.append(f"\nQuick mode: 10⁶ ops not run; evaluation only up to {fmt_n(eval_max)}.")
    # 1. build time per op
    rows = []
    for n in [10**3, 10**4, 10**5, 10**6]:
        r = results.get(n)
        if r is None:
            rows.append([fmt_n(n)] + ["not run (quick)"] + [""] * 7)
            continue
        v = r.values

        def per_op(key: str, v: dict = v, n: int = n) -> str:
            if key not in v:
                return "timeout" if r.timed_out else "–"
            return fmt_time(v[key] / n)
        both = (v["parse"] + v["to_numpy_f"]) if "to_numpy_f" in v else None
        build = (sum(v[k] for k in ("parse", "grad", "to_numpy_g", "first_call_g"))
                 if "first_call_g" in v else None)
        rows.append([fmt_n(n), per_op("parse"), per_op("to_numpy_f") + f" ({v.get('mode_f', '')})",
                     fmt_time(both / n) if both else "–", per_op("grad"),
                     per_op("to_numpy_g") + f" ({v.get('mode_g', '')})",
                     per_op("first_call_g"),
                     fmt_time(build / n) if build else "–", fmt_time(build) if build else
                     ("timeout" if r.timed_out else "–")])
    out += ["", "### Build time per op", "",
            table(["N ops", "parse", "to_numpy(c)", "parse + to_numpy(c)", "grad",
                   "to_numpy(g)", "first call of g", "text → callable ∇f, per op",
                   "text → callable ∇f, total"], rows)]
    series = {}
    for key, label in (("parse", "parse"), ("to_numpy_f", "to_numpy(c)"), ("grad", "grad"),
                       ("to_numpy_g", "to_numpy(g)")):
        xs = [n for n in results if key in results[n].values]
        series[label] = (xs, [results[n].values[key] / n for n in xs])
    xs = [n for n in results if "first_call_g" in results[n].values]
    series["circuitgrad text → ∇f (total)"] = (xs, [sum(results[n].values[k] for k in (
        "parse", "grad", "to_numpy_g", "first_call_g")) / n for n in xs])
    img = plot_loglog("bench_scaling_build", "circuitgrad build time per op (flat = linear)",
                      "N ops", "seconds per op", series)
    if img:
        out += ["", f"![build time per op]({img})"]
    # 2. sizes
    rows = []
    ratios = []
    for n, r in results.items():
        v = r.values
        if "g_size" in v:
            ratios.append(v["g_size"] / v["c_size"])
            rows.append([f"random, N = {fmt_n(n)}", v["c_size"], v["g_size"],
                         fmt_ratio(v["g_size"] / v["c_size"])])
    for label, value in nets.values.items():
        if label in ("SIZE_FACTOR", "TENSOR_SIZE_FACTOR"):
            continue
        cs, gs = value
        rows.append([label, cs, gs, fmt_ratio(gs / cs)])
    out += ["", "### Size of the gradient circuit", "",
            f"Proven bound (primitive table): g.size ≤ {nets.values.get('SIZE_FACTOR', '?')} · "
            f"c.size for scalar circuits ({nets.values.get('TENSOR_SIZE_FACTOR', '?')} · c.size "
            "with broadcasting). Goal: ≤ 2.5 on average; CasADi's ratio on the same programs "
            "is in the `build` section."]
    if ratios:
        out.append(f"Mean ratio on the random programs: **{sum(ratios) / len(ratios):.2f}**.")
    out += ["", table(["circuit", "c.size", "g.size", "g.size / c.size"], rows)]
    if nets.error or nets.timed_out:
        notes.append(f"networks: {'timeout' if nets.timed_out else nets.error}")
    # 3. evaluation
    rows = []
    for n, r in results.items():
        v = r.values
        for mode in ("compile", "interpret"):
            if f"{mode}_f1" not in v:
                continue
            f1, g1 = v[f"{mode}_f1"], v.get(f"{mode}_g1")
            fb, gb = v.get(f"{mode}_fB"), v.get(f"{mode}_gB")
            rows.append([fmt_n(n), mode, fmt_time(f1), fmt_time(g1),
                         f"**{fmt_ratio(g1 / f1)}**" if g1 else "–", fmt_time(fb), fmt_time(gb),
                         f"**{fmt_ratio(gb / fb)}**" if gb and fb else "–"])
        if "compile_f1" not in v and "interpret_f1" not in v:
            why = "timeout" if r.timed_out else f"not run (evaluation capped at {fmt_n(eval_max)})"
            rows.append([fmt_n(n), why, "", "", "", "", "", ""])
    out += ["", "### Evaluation: ∇f (value and gradient) against f alone", "",
            f"Median wall time; batch = {POINTS} points per input (arrays). "
            "Goal (cheap-gradient principle): ratio ≤ 4. `to_numpy` mode \"auto\" compiles "
            "circuits up to COMPILE_LIMIT nodes and interprets larger ones.", "",
            table(["N ops", "lowering", "f, 1 point", "∇f, 1 point", "ratio",
                   f"f, {POINTS} points", f"∇f, {POINTS} points", "ratio"], rows)]
    if notes:
        out += ["", "Notes: " + "; ".join(notes) + "."]
    return "\n".join(out)
