"""Batches in bounded memory (issue 29, "Streaming and memory"): the peak of a 10⁶-point call
against its inputs + outputs, and a generator of chunks in flat memory.

Workload: ∇f of the seeded random program over 16 inputs (:func:`benchmarks.programs.
random_program`, as ``benchmarks/simd.py``; 17 outputs), ``to_c`` on one thread.

* **peak at 10⁶ points** (10³ ops), each path in a child of its own: the extra memory a call
  takes above its inputs, by ``tracemalloc`` (NumPy reports its arrays to it) and by
  ``ru_maxrss``, against the outputs' bytes. ``flat``: the batch as one (npoints, inputs) array
  (what every call did before: a copy of the inputs), ``columns``: the call as it is now (each
  input read where it is), ``into``: into preallocated outputs.
* **time**, the two batch paths taken in turns in one child (best of rounds), 10² ops: at
  10⁶ points (the copy's cost) and at 64 points (the call's overhead in Python).
* **a large tensor input at few points**, the same two paths in turns: ∇ of ``J = sum(W*W)``,
  ``W`` (300, 300), at 4 points, ``to_tape``: 90,000 input and 90,001 output columns, whose
  addresses the columns path computes per call (as Python lists they had made it ×1.4 the
  flat path's time).
* **a generator** of 10⁷ points (quick: 10⁶) in chunks of 10⁵, through ``f.map(chunks,
  reuse=True)``, 10² ops: the peak above one chunk's inputs and outputs (flat: bounded by a
  chunk, whatever the number of points), the rate, and the rate at 10³ ops extrapolated to
  10⁹ points.

    python -m benchmarks --only streaming
    python -m benchmarks.streaming            # the quick tables, printed
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
import tracemalloc
from typing import Any

from .harness import best_times, fmt_time, run_bounded, table
from .programs import random_program

INPUTS = 16
PEAK_POINTS = 10**6
CHUNK = 10**5
MB = 2.0**20


def _function(ops: int, cache: str):
    os.environ["CIRCUITGRAD_CACHE"] = cache
    import circuitgrad as cg
    prog = random_program(ops, seed=0, n_inputs=INPUTS)
    g = cg.grad(cg.parse(prog.text(), inputs=list(prog.inputs)))
    return prog, cg.to_c(g, threads=1)


def _rss() -> float:
    """The process's peak resident memory so far, bytes (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0


def peak(emit, path: str, ops: int, points: int, cache: str) -> None:
    """Child: one call of ∇f at ``points`` points through ``path`` (flat, columns, into)."""
    import numpy as np
    prog, f = _function(ops, cache)
    f(*prog.batch(64))  # (loads what the first call loads)
    batch = prog.batch(points)
    outs = [np.empty(points) for _ in f.outputs] if path == "into" else None
    if path == "flat":
        f._columns_ready = False  # the batch path before issue 29's streaming: one flat copy
    in_bytes = sum(a.nbytes for a in batch)
    out_bytes = 8.0 * points * len(f.outputs)
    emit("inputs_mb", in_bytes / MB)
    emit("outputs_mb", out_bytes / MB)
    emit("held_before_mb", (in_bytes + (out_bytes if outs is not None else 0)) / MB)
    rss0 = _rss()
    tracemalloc.start()
    t0 = time.perf_counter()
    result = f.into(outs, *batch) if outs is not None else f(*batch)
    seconds = time.perf_counter() - t0
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    emit("seconds", seconds)
    emit("traced_mb", top / MB)  # above the inputs (and, for into, the outputs made before)
    emit("rss_growth_mb", (_rss() - rss0) / MB)
    emit("check", float(np.asarray(result[0]).sum()))


def timing(emit, ops: int, cache: str) -> None:
    """Child: the flat and columns paths in turns, at 10⁶ and at 64 points."""
    prog, f = _function(ops, cache)
    for points in (PEAK_POINTS, 64):
        batch = prog.batch(points)

        def flat(batch=batch):
            f._columns_ready = False
            try:
                return f(*batch)
            finally:
                f._columns_ready = True

        times = best_times({"flat": flat, "columns": lambda batch=batch: f(*batch)},
                           rounds=3 if points > 10**5 else 2000,
                           budget=20.0 if points > 10**5 else 2.0)
        for name, t in times.items():
            emit(f"{name} {points}", t)


def tensor_timing(emit, cache: str, side: int = 300, points: int = 4) -> None:
    """Child: the flat and columns paths in turns for a large tensor input at few points."""
    os.environ["CIRCUITGRAD_CACHE"] = cache
    import numpy as np
    import circuitgrad as cg
    f = cg.to_tape(cg.grad(cg.parse("J = sum(W*W)", shapes={"W": (side, side)})))
    W = np.random.default_rng(0).random((points, side, side))

    def flat():
        f._columns_ready = False
        try:
            return f(W)
        finally:
            f._columns_ready = True

    times = best_times({"flat": flat, "columns": lambda: f(W)}, rounds=15, budget=10.0)
    for name, t in times.items():
        emit(name, t)


def stream(emit, ops: int, points: int, cache: str) -> None:
    """Child: a generator of ``points`` points in chunks of ``CHUNK`` through ``f.map``."""
    prog, f = _function(ops, cache)
    f(*prog.batch(64))

    def chunks():
        for k in range(0, points, CHUNK):
            yield tuple(prog.batch(min(CHUNK, points - k), seed=k))

    rss0 = _rss()
    tracemalloc.start()
    total, t0 = 0.0, time.perf_counter()
    marks = []
    for k, out in enumerate(f.map(chunks(), reuse=True)):
        total += float(out[0].sum())
        if k in (0, points // CHUNK // 2, points // CHUNK - 1):
            marks.append(tracemalloc.get_traced_memory()[0] / MB)
    seconds = time.perf_counter() - t0
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    emit("seconds", seconds)
    emit("rate", points / seconds)
    emit("traced_mb", top / MB)
    emit("held_mb_first_mid_last", marks)
    emit("chunk_mb", 8.0 * CHUNK * (INPUTS + len(f.outputs)) / MB)
    emit("rss_growth_mb", (_rss() - rss0) / MB)
    emit("check", total)


def _failed(r) -> dict[str, Any]:
    return {"status": "timed out" if r.timed_out else f"error: {r.error}"}


def run(quick: bool = False) -> str:
    """The tables (markdown)."""
    cache = tempfile.mkdtemp(prefix="cg_stream_")
    out = ["## Batches in bounded memory (issue 29)", "",
           f"∇f of the random program over {INPUTS} inputs (17 outputs), `to_c`, one thread. "
           "Peaks by `tracemalloc` (NumPy's arrays) and by `ru_maxrss`, each path in a child "
           "of its own; times taken in turns in one child (best of rounds).", ""]
    ops_peak = 100 if quick else 1000
    rows = []
    for path in ("flat", "columns", "into"):
        r = run_bounded("benchmarks.streaming:peak", {"path": path, "ops": ops_peak,
                                                       "points": PEAK_POINTS, "cache": cache},
                        900.0)
        v = dict(r.values) if not (r.timed_out or r.error) else _failed(r)
        print(f"[streaming] peak {path}: {v}", flush=True)
        if "status" in v:
            rows.append([path, v["status"], "", "", "", ""])
            continue
        rows.append([path, f"{v['inputs_mb']:.0f} + {v['outputs_mb']:.0f}",
                     f"{v['traced_mb']:.0f}", f"{v['rss_growth_mb']:.0f}",
                     f"{(v['held_before_mb'] + v['traced_mb']) / (v['inputs_mb'] + v['outputs_mb']):.2f}",
                     fmt_time(v["seconds"])])
    out += [f"#### One call at {PEAK_POINTS:,} points, {ops_peak:,} ops", "",
            table(["path", "inputs + outputs, MiB", "allocated in the call, MiB (tracemalloc)",
                   "RSS growth, MiB", "peak / (inputs + outputs)", "time"], rows), ""]
    r = run_bounded("benchmarks.streaming:timing", {"ops": 100, "cache": cache}, 900.0)
    v = dict(r.values) if not (r.timed_out or r.error) else _failed(r)
    print(f"[streaming] timing: {v}", flush=True)
    if "status" not in v:
        out += ["#### The two batch paths in turns, 10² ops", "",
                table(["points", "flat (a copy of the inputs)", "columns (in place)",
                       "columns / flat"],
                      [[f"{n:,}", fmt_time(v[f"flat {n}"]), fmt_time(v[f"columns {n}"]),
                        f"{v[f'columns {n}'] / v[f'flat {n}']:.2f}"] for n in (PEAK_POINTS, 64)]),
                ""]
    r = run_bounded("benchmarks.streaming:tensor_timing", {"cache": cache}, 900.0)
    v = dict(r.values) if not (r.timed_out or r.error) else _failed(r)
    print(f"[streaming] tensor timing: {v}", flush=True)
    if "status" not in v:
        out += ["#### A large tensor input at few points: ∇ sum(W*W), W (300, 300), 4 points, "
                "`to_tape`", "",
                table(["flat (a copy of the inputs)", "columns (in place)", "columns / flat"],
                      [[fmt_time(v["flat"]), fmt_time(v["columns"]),
                        f"{v['columns'] / v['flat']:.2f}"]]), ""]
    points = 10**6 if quick else 10**7
    r = run_bounded("benchmarks.streaming:stream", {"ops": 100, "points": points,
                                                     "cache": cache}, 900.0)
    v = dict(r.values) if not (r.timed_out or r.error) else _failed(r)
    print(f"[streaming] stream: {v}", flush=True)
    if "status" not in v:
        out += [f"#### A generator of {points:,} points in chunks of {CHUNK:,}, "
                "`f.map(chunks, reuse=True)`, 10² ops", "",
                f"* {fmt_time(v['seconds'])}, {v['rate'] / 1e6:.2f}·10⁶ points/s; the most "
                f"allocated at once {v['traced_mb']:.0f} MiB (one chunk's inputs and outputs: "
                f"{v['chunk_mb']:.0f} MiB); held after the first, middle and last chunk: "
                + ", ".join(f"{m:.0f}" for m in v["held_mb_first_mid_last"])
                + f" MiB; RSS growth {v['rss_growth_mb']:.0f} MiB.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(run(quick=True))
