"""to_c at the hardware's speed (issue 29): its vector width and its threads.

Workload: ∇f of the seeded random program of 10³ ops over 16 inputs
(:func:`benchmarks.programs.random_program`), at 4,096 and 10⁶ points. Each child process
(one per batch size, bounded by the timeout) compiles ``to_c`` at width 4 (AVX2: what it ran
before issue 29) and at the host's widest (8 with AVX-512), each on 1 thread and on every core
of the process's affinity, and times them in turns (best of rounds of medians), so that every
ratio is of times taken side by side in one process; ``to_tape`` is the reference at 4,096.

Also: the compile (an empty cache; wall time and the compiler's CPU time, which the machine's
other load inflates less) and the speed at 4,096 points by optimization level, at 10³ and 10⁴
ops (linear in the program); thread scaling at 10⁶ points; the one-point call by width.

    python -m benchmarks --only simd
    python -m benchmarks.simd            # the quick tables, printed
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from typing import Any, Callable

from .harness import (fmt_ratio, fmt_time, median_time, run_bounded, suite_cpus, table,
                      timed)
from .programs import random_program

OPS = 1000
INPUTS = 16
BATCHES = [4096, 10**6]
OPTS = ["-O0", "-Og", "-O1", "-O2"]


def _gradient(ops: int = OPS):
    import circuitgrad as cg
    prog = random_program(ops, seed=0, n_inputs=INPUTS)
    return prog, cg.grad(cg.parse(prog.text(), inputs=list(prog.inputs)))


def _variants() -> dict[str, dict[str, int]]:
    """The to_c variants timed: width 4 and the widest, 1 thread and every core."""
    from circuitgrad.lower import isa
    widths = sorted({w for w in (4, isa.default_width()) if w in isa.host_widths()})
    cores = len(suite_cpus())  # the parent may be pinned to one; its children get them all
    return {f"width {w}, {t} thread{'s' if t > 1 else ''}": {"width": w, "threads": t}
            for w in widths for t in sorted({1, cores})}


def _best(fns: dict[str, Callable[[], Any]], rounds: int, budget: float) -> dict[str, float]:
    """The best of ``rounds`` medians of each function, taking turns (a change of the
    machine's load hits all alike)."""
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, fn in fns.items():
            t = median_time(fn, budget=budget, min_repeats=1 if best.get(name, 0) > 0.5 else 3)
            best[name] = min(best.get(name, t), t)
    return best


def measure(emit, points: int, cache: str) -> None:
    """Child: the to_c variants (and to_tape at small batches) on ∇f at ``points`` points."""
    os.environ["CIRCUITGRAD_CACHE"] = cache
    import circuitgrad as cg
    prog, g = _gradient()
    batch = prog.batch(points)
    emit("nodes", len(g))
    fns: dict[str, Callable[[], Any]] = {}
    for name, kw in _variants().items():
        f = cg.to_c(g, **kw)
        fns[name] = lambda f=f: f(*batch)
    if points <= 10**4:
        tape = cg.to_tape(g)
        fns["to_tape"] = lambda: tape(*batch)
    for name, t in _best(fns, 2 if points > 10**5 else 3, budget=0.3).items():
        emit(name, t)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def compile_times(emit, cache_root: str, ops: int) -> None:
    """Child: to_c's compile (an empty cache each) and its ∇f at 4,096 points by -O level,
    at the host's widest vectors, one thread."""
    import circuitgrad as cg
    prog, g = _gradient(ops)
    batch = prog.batch(4096)
    emit("nodes", len(g))
    fns = {}
    for opt in OPTS:
        os.environ["CIRCUITGRAD_CACHE"] = tempfile.mkdtemp(prefix="cg_simd_", dir=cache_root)
        cpu = _children_cpu()
        seconds, f = timed(lambda: cg.to_c(g, opt=opt, threads=1))
        emit(f"compile {opt}", seconds)
        emit(f"compiler cpu {opt}", _children_cpu() - cpu)
        fns[opt] = lambda f=f: f(*batch)
    if ops <= 10**3:
        for name, t in _best(fns, 3, budget=0.3).items():
            emit(f"eval {name}", t)


def scaling(emit, cache: str) -> None:
    """Child: to_c's ∇f at 10⁶ points on 1, 2, ... threads (the process's cores)."""
    os.environ["CIRCUITGRAD_CACHE"] = cache
    import circuitgrad as cg
    prog, g = _gradient()
    batch = prog.batch(10**6)
    cores = len(os.sched_getaffinity(0))
    emit("cores", cores)
    fns = {str(n): (lambda f=cg.to_c(g, threads=n): f(*batch)) for n in range(1, cores + 1)}
    for name, t in _best(fns, 2, budget=0.3).items():
        emit(name, t)
    t0, c0 = time.perf_counter(), time.process_time()
    fns[str(cores)]()
    emit("cpu/wall", (time.process_time() - c0) / (time.perf_counter() - t0))


def one_point(emit, cache: str) -> None:
    """Child: the one-point call of ∇f at each width (a point fills one lane of a vector)."""
    os.environ["CIRCUITGRAD_CACHE"] = cache
    import circuitgrad as cg
    from circuitgrad.lower import isa
    prog, g = _gradient()
    point = prog.point()
    calls = {f"to_c width {w}": (lambda f=cg.to_c(g, width=w): f(*point))
             for w in isa.host_widths()}
    tape = cg.to_tape(g)
    calls["to_tape"] = lambda: tape(*point)
    for name, t in _best(calls, 3, budget=0.2).items():
        emit(name, t)


def _failed(r) -> dict:
    return {"status": "timeout" if r.timed_out else f"error: {(r.error or '')[:80]}"}


def run(quick: bool = False) -> str:
    """The tables (markdown)."""
    timeout = 600.0
    cache = tempfile.mkdtemp(prefix="cg_simd_")
    batches = [4096] if quick else BATCHES
    names = list(_variants())
    out = ["## to_c at the hardware's speed: vector width and threads (issue 29)", "",
           f"∇f of the random program of {OPS:,} ops over {INPUTS} inputs "
           "(`benchmarks/programs.py`, seed 0). Each batch size's variants are timed in turns "
           "in one child process (best of rounds of medians); the machine may be shared with "
           "other jobs: compare the ratios, not the times.", ""]
    rows, ratios = [], []
    for points in batches:
        r = run_bounded("benchmarks.simd:measure", {"points": points, "cache": cache}, timeout,
                        cpus="all")
        v = dict(r.values) if not (r.timed_out or r.error) else _failed(r)
        print(f"[simd] {points} points: {v.get('status', 'ok')} ({r.seconds:.1f} s)", flush=True)
        if "status" in v:
            rows.append([f"{points:,}", v["status"]] + [""] * (len(names) + 1))
            continue
        rows.append([f"{points:,}", f"{v['nodes']:,}"]
                    + [fmt_time(v[n]) for n in names]
                    + [fmt_time(v["to_tape"]) if "to_tape" in v else "–"])
        widths = sorted({int(n.split()[1].rstrip(",")) for n in names})
        threads = sorted({int(n.split()[2]) for n in names})
        if len(widths) > 1:
            for t in threads:
                a, b = (f"width {w}, {t} thread{'s' if t > 1 else ''}" for w in widths)
                print(f"[simd] {points} points, {t} thread(s): width {widths[-1]} / width "
                      f"{widths[0]} = {fmt_ratio(v[b] / v[a])}")
                ratios.append(f"* {points:,} points, {t} thread(s): width {widths[-1]} is "
                           f"×{fmt_ratio(v[a] / v[b])} the speed of width {widths[0]}")
        if len(threads) > 1:
            for w in widths:
                a, b = (f"width {w}, {t} thread{'s' if t > 1 else ''}" for t in threads)
                print(f"[simd] {points} points, width {w}: {threads[-1]} threads / 1 = "
                      f"{fmt_ratio(v[b] / v[a])}")
                ratios.append(f"* {points:,} points, width {w}: {threads[-1]} threads are "
                           f"×{fmt_ratio(v[a] / v[b])} the speed of 1")
    out += ["#### ∇f by width and threads", "",
            table(["points", "nodes", *names, "to_tape"], rows), "", *ratios, ""]
    # compile times and -O levels
    comp = {}
    for ops in ([10**3] if quick else [10**3, 10**4]):
        r = run_bounded("benchmarks.simd:compile_times", {"cache_root": cache, "ops": ops},
                        timeout)
        comp[ops] = dict(r.values) if not (r.timed_out or r.error) else _failed(r)
    rows = []
    for opt in OPTS:
        row = [opt]
        for ops, v in comp.items():
            row.append(f"{fmt_time(v[f'compile {opt}'])} ({fmt_time(v[f'compiler cpu {opt}'])})"
                       if f"compile {opt}" in v else v.get("status", "–"))
        e = comp.get(10**3, {})
        base = e.get("eval -Og")
        row.append(f"{fmt_time(e[f'eval {opt}'])} (×{fmt_ratio(e[f'eval {opt}'] / base)})"
                   if f"eval {opt}" in e and base else "–")
        rows.append(row)
    heads = ["opt"] + [f"compile, {ops:,} ops ({v['nodes']:,} nodes): wall (compiler CPU)"
                       if "nodes" in v else f"compile, {ops:,} ops" for ops, v in comp.items()]
    heads.append("∇f at 4,096 points, 10³ ops, 1 thread (× -Og)")
    out += ["#### to_c's compile (empty cache) and speed by optimization level, widest vectors",
            "", table(heads, rows), ""]
    if not quick:
        r = run_bounded("benchmarks.simd:scaling", {"cache": cache}, timeout, cpus="all")
        v = dict(r.values)
        cores = v.get("cores", 0)
        if "1" in v:
            rows = [[n, fmt_time(v[str(n)]), f"{v['1'] / v[str(n)]:.2f}",
                     f"{v['1'] / v[str(n)] / n:.2f}"] for n in range(1, cores + 1)
                    if str(n) in v]
            out += ["#### Thread scaling, ∇f at 10⁶ points (to_c, widest vectors)", "",
                    table(["threads", "time", "speed-up", "of linear"], rows), "",
                    f"cpu/wall at {cores} threads: {v.get('cpu/wall', 0):.2f}", ""]
    r = run_bounded("benchmarks.simd:one_point", {"cache": cache}, timeout)
    v = dict(r.values)
    out += ["#### One point, ∇f of 10³ ops, by width", "",
            table(["call", "time"], [[k, fmt_time(t)] for k, t in v.items()]), ""]
    return "\n".join(out)


if __name__ == "__main__":
    import sys
    print(run(quick="--full" not in sys.argv))
