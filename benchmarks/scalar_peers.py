"""Compiled scalar circuits against the peers that compile them (issue 29): Dr.Jit, CasADi,
symengine.

Workload: ∇f of the seeded random program of 10³ ops over 16 inputs
(:func:`benchmarks.programs.random_program`, as ``benchmarks/simd.py``), written in each tool's
own ops by :meth:`~benchmarks.programs.Program.function`:

* **batches** (4,096 and 10⁶ points): ``to_c`` on one thread and on every core of the process
  against **Dr.Jit**'s LLVM backend (``drjit.llvm.ad.Float64``: the program traced on the
  arrays, the gradient by ``dr.backward``, the whole as one ``dr.freeze`` function, so a call
  replays its compiled kernels without tracing), with ``dr.set_thread_count(1)`` and every
  core. Dr.Jit's inputs are made Dr.Jit arrays once, before the timing, and its outputs are
  evaluated (``dr.eval``, ``dr.sync_thread``) but not converted to NumPy; circuitgrad's take
  NumPy in and give NumPy out. ``to_tape`` at 4,096 points for reference.
* **one point** (10², 3·10² and 10³ ops): ``to_c`` (widest vectors and ``vectors=False``),
  ``to_tape``, CasADi's SX virtual machine (``casadi.Function``), symengine's
  ``Lambdify(..., cse=True, backend="llvm")``; Dr.Jit's frozen function at one point is timed
  in the 4,096-point child beside ``to_c`` (symengine's LLVM is LLVM 14: loaded first, Dr.Jit
  finds it and stops its backend, so the two never share a process).

Every ratio is of times taken in turns in one child process (best of rounds of medians).
Dr.Jit needs libLLVM: ``$DRJIT_LIBLLVM_PATH``, else the first of
``/usr/lib/x86_64-linux-gnu/libLLVM-*.so`` and ``/usr/lib/llvm-*/lib/libLLVM*.so``; without it
(or without the package) the table says "Dr.Jit: not available (reason)". Its ``relu`` is
``dr.select(x > 0, x, 0)``: ``dr.maximum`` on Float64 crashes LLVM 15's instruction selection
("Cannot select: fmaximum"), and no value of the program is 0 where relu meets it. Its
``sigmoid`` is ``1 / (1 + exp(-x))``, one exp and a division, as circuitgrad's (SciPy's
``expit``: ``exp(-|x|)``, a select and a division, which keeps the subnormal results below
x = -709 that Dr.Jit's form overflows to 0). Its sin, cos, exp, log and tanh are its own
polynomials, not within 2 ulp of NumPy's.

    python -m benchmarks --only scalar_peers
    python -m benchmarks.scalar_peers          # the quick tables, printed
"""

from __future__ import annotations

import glob
import os
import re
import sys
import tempfile
from typing import Any, Callable

from .harness import (fmt_n, fmt_ratio, fmt_time, median_time, run_bounded, suite_cpus,
                      table, timed)
from .programs import _Namespace, namespace, random_program

OPS = 1000
INPUTS = 16
BATCHES = [4096, 10**6]
POINT_OPS = [100, 300, 1000]
SYMENGINE_BOUND = {True: 30.0, False: 120.0}  # by quick: symengine's build, seconds


def _gradient(ops: int):
    import circuitgrad as cg
    prog = random_program(ops, seed=0, n_inputs=INPUTS)
    return prog, cg.grad(cg.parse(prog.text(), inputs=list(prog.inputs)))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _best(fns: dict[str, Callable[[], Any]], rounds: int, budget: float) -> dict[str, float]:
    """The best of ``rounds`` medians of each function, taking turns."""
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, fn in fns.items():
            t = median_time(fn, budget=budget, min_repeats=1 if best.get(name, 0) > 0.5 else 3)
            best[name] = min(best.get(name, t), t)
    return best


def _max_rel(a: Any, b: Any) -> float:
    """max |a - b| / max(|b|, 1) over every output and point (f and each ∂f/∂x)."""
    import numpy as np
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)) /
                            np.maximum(np.abs(np.asarray(y)), 1.0))) for x, y in zip(a, b))


# -- Dr.Jit -----------------------------------------------------------------------------------

def libllvm() -> str | None:
    """The libLLVM Dr.Jit's LLVM backend is to load, or None."""
    if os.environ.get("DRJIT_LIBLLVM_PATH"):
        return os.environ["DRJIT_LIBLLVM_PATH"]
    found = []  # (major version, path); Dr.Jit needs LLVM 15 or newer
    for path in glob.glob("/usr/lib/x86_64-linux-gnu/libLLVM-*.so") + glob.glob(
            "/usr/lib/llvm-*/lib/libLLVM-*.so"):
        m = re.search(r"libLLVM-(\d+)", path)
        if m and int(m.group(1)) >= 15:
            found.append((int(m.group(1)), path))
    return max(found)[1] if found else None


def _loaded_llvm() -> str | None:
    """Another LLVM already in this process (symengine's, or a libLLVM mapped), or None."""
    if "symengine.lib.symengine_wrapper" in sys.modules:
        return "symengine's"
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                if "libLLVM" in line:
                    return line.split()[-1]
    except OSError:
        pass
    return None


class DrJit:
    """The program on Dr.Jit's LLVM AD arrays, its gradient by ``dr.backward``, frozen."""

    def __init__(self, prog):
        path = libllvm()
        if path is None:
            raise RuntimeError("no libLLVM 15 or newer found (set DRJIT_LIBLLVM_PATH)")
        os.environ["DRJIT_LIBLLVM_PATH"] = path
        other = _loaded_llvm()
        if other and os.path.realpath(other) != os.path.realpath(path):  # symengine's LLVM backend: Dr.Jit would find its version and crash
            raise RuntimeError(f"another LLVM is loaded in this process ({other})")
        import drjit as dr
        from drjit.llvm.ad import Float64
        self.dr, self.F = dr, Float64
        if not hasattr(dr, "freeze"):
            raise RuntimeError(f"drjit {dr.__version__} has no dr.freeze")
        fn = prog.function(_Namespace(
            sin=dr.sin, cos=dr.cos, tanh=dr.tanh, exp=dr.exp, log=dr.log, sqrt=dr.sqrt,
            square=dr.square, abs=dr.abs, relu=lambda x: dr.select(x > 0, x, 0.0),
            sigmoid=lambda x: 1 / (1 + dr.exp(-x))))

        def grad(*xs):
            xs = [Float64(x) for x in xs]
            dr.enable_grad(xs)
            y = fn(*xs)
            dr.backward(y)
            return y, *(dr.grad(x) for x in xs)

        self.frozen = dr.freeze(grad)
        self.version = dr.__version__
        self.llvm = path

    def arrays(self, values: list[Any]) -> list[Any]:
        import numpy as np
        return [self.F(np.atleast_1d(np.asarray(v, dtype=np.float64))) for v in values]

    def call(self, xs: list[Any], threads: int) -> Any:
        dr = self.dr
        dr.set_thread_count(threads)
        out = self.frozen(*xs)
        dr.eval(out)
        dr.sync_thread()
        return out


def _drjit(emit, prog) -> DrJit | None:
    try:
        return DrJit(prog)
    except Exception as e:  # the package, libLLVM or the backend
        emit("drjit_error", f"{type(e).__name__}: {str(e).splitlines()[0][:160]}")
        return None


# -- the children -------------------------------------------------------------------------------

def measure_batch(emit, points: int, cache: str) -> None:
    """Child: ∇f at ``points`` points: to_c and Dr.Jit, one thread and every core."""
    os.environ["CIRCUITGRAD_CACHE"] = cache

    import circuitgrad as cg
    prog, g = _gradient(OPS)
    batch = prog.batch(points)
    cores = _cores()
    emit("cores", cores)
    emit("nodes", len(g))
    seconds, f1 = timed(lambda: cg.to_c(g, threads=1))
    emit("to_c build", seconds)
    fn = cg.to_c(g, threads=cores)
    ref = f1(*batch)
    fns: dict[str, Callable[[], Any]] = {"to_c 1": lambda: f1(*batch),
                                         f"to_c {cores}": lambda: fn(*batch)}
    if points <= 10**4:
        tape = cg.to_tape(g)
        fns["to_tape"] = lambda: tape(*batch)
    dj = _drjit(emit, prog)
    if dj is not None:
        emit("drjit", f"{dj.version} (LLVM backend, {os.path.basename(dj.llvm)})")
        xs = dj.arrays(batch)
        seconds, out = timed(lambda: dj.call(xs, cores))
        emit("drjit first call", seconds)  # trace, backward, compile
        emit("drjit agreement", _max_rel([o.numpy() for o in out], ref))
        fns["drjit 1"] = lambda: dj.call(xs, 1)
        fns[f"drjit {cores}"] = lambda: dj.call(xs, cores)
        if points <= 10**4:  # and at one point, beside to_c (not beside symengine's LLVM)
            point = prog.point()
            p1 = dj.arrays(point)
            dj.call(p1, 1)
            fns["drjit point"] = lambda: dj.call(p1, 1)
            fns["to_c point"] = lambda: fn(*point)
    for name, t in _best(fns, 2 if points > 10**5 else 3, budget=0.3).items():
        emit(name, t)
    for name in (f"to_c {cores}", f"drjit {cores}"):  # did the threads run?
        if name in fns:
            emit(f"cpu/wall {name}", _cpu_per_wall(fns[name]))


def _cpu_per_wall(fn: Callable[[], Any]) -> float:
    """The process's CPU seconds per wall second over calls of ``fn`` (about 1 s)."""
    import time
    t0, c0, calls = time.perf_counter(), time.process_time(), 0
    while calls < 1 or time.perf_counter() - t0 < 1.0:
        fn()
        calls += 1
    return (time.process_time() - c0) / (time.perf_counter() - t0)


def measure_point(emit, ops: int, cache: str, symengine: bool) -> None:
    """Child: ∇f at one point: to_c, to_tape, CasADi's VM, symengine-LLVM, Dr.Jit."""
    os.environ["CIRCUITGRAD_CACHE"] = cache
    import warnings
    warnings.filterwarnings("ignore")
    import numpy as np

    import circuitgrad as cg
    prog, g = _gradient(ops)
    point = prog.point()
    emit("nodes", len(g))
    fc, fplain, tape = cg.to_c(g), cg.to_c(g, vectors=False), cg.to_tape(g)
    ref = [np.float64(v) for v in cg.to_numpy(g)(*point)]
    fns: dict[str, Callable[[], Any]] = {
        "to_c": lambda: fc(*point), "to_c plain": lambda: fplain(*point),
        "to_tape": lambda: tape(*point)}
    agree: dict[str, float] = {}
    if symengine:
        import symengine as se
        syms = list(se.symbols(list(prog.inputs)))
        J = prog.function(namespace("symengine"))(*syms)
        seconds, sl = timed(lambda: se.Lambdify(syms, [J, *(J.diff(s) for s in syms)],
                                                cse=True, backend="llvm"))
        emit("symengine build", seconds)
        row = np.array(point)
        fns["symengine-llvm"] = lambda: sl(row)
        agree["symengine-llvm"] = _max_rel(np.asarray(sl(row)).ravel(), ref)
    try:
        import casadi as ca
        xs = [ca.SX.sym(name) for name in prog.inputs]
        J = prog.function(namespace("casadi"))(*xs)
        cf = ca.Function("g", xs, [J, ca.gradient(J, ca.vertcat(*xs))])
        fns["casadi"] = lambda: cf(*point)
        out = cf(*point)
        agree["casadi"] = _max_rel([float(out[0])] + list(np.asarray(out[1]).ravel()), ref)
    except ImportError as e:
        emit("casadi_error", str(e))
    emit("agreement", agree)
    for name, t in _best(fns, 3, budget=0.2).items():
        emit(name, t)


# -- the report ---------------------------------------------------------------------------------

def _status(r) -> str:
    return "timeout" if r.timed_out else f"error: {(r.error or '')[:80]}"


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def run(quick: bool = False) -> str:
    """The tables (markdown)."""
    cache = tempfile.mkdtemp(prefix="cg_peers29_")
    batches = [4096] if quick else BATCHES
    point_ops = [100, OPS] if quick else POINT_OPS
    out = ["## Compiled scalar circuits against Dr.Jit, CasADi and symengine (issue 29)", "",
           f"∇f of the random program of {OPS:,} ops over {INPUTS} inputs "
           "(`benchmarks/programs.py`, seed 0), each tool on the same program in its own ops. "
           "Every ratio is of times taken in turns in one child process (best of rounds of "
           "medians); the machine may be shared with other jobs: compare the ratios, not the "
           "times. Dr.Jit: LLVM backend, `dr.freeze`d gradient (`dr.backward`), inputs "
           "already Dr.Jit arrays, outputs evaluated but not converted to NumPy.", ""]
    goals: list[list[str]] = []
    notes: list[str] = []
    # batches
    rows, scaling, drjit_note = [], [], None
    for points in batches:
        r = run_bounded("benchmarks.scalar_peers:measure_batch",
                        {"points": points, "cache": cache}, 900.0, cpus="all")
        v = r.values
        print(f"[scalar_peers] {points} points: "
              f"{'ok' if not (r.timed_out or r.error) else _status(r)} ({r.seconds:.1f} s)",
              flush=True)
        cores = v.get("cores", 1)
        if "drjit_error" in v:
            drjit_note = f"Dr.Jit: not available ({v['drjit_error']})"
        elif "drjit" in v:
            drjit_note = (f"Dr.Jit {v['drjit']}: first call (trace, backward, compile) "
                          f"{fmt_time(v.get('drjit first call'))}; its ∇f within "
                          f"{v.get('drjit agreement', float('nan')):.1e} of to_c's "
                          "(max |Δ| / max(|value|, 1))")
        if r.error and "to_c 1" not in v:
            rows.append([f"{points:,}", _status(r)] + [""] * 6)
            continue

        def cell(key: str) -> str:
            return fmt_time(v[key]) if key in v else (v.get("drjit_error") and "n/a" or "–")

        def ratio(a: str, b: str) -> float | None:
            return v[a] / v[b] if a in v and b in v else None

        r1, rn = ratio("to_c 1", "drjit 1"), ratio(f"to_c {cores}", f"drjit {cores}")
        rows.append([f"{points:,}", cell("to_c 1"), cell("drjit 1"), fmt_ratio(r1),
                     cell(f"to_c {cores}"), cell(f"drjit {cores}"), fmt_ratio(rn),
                     cell("to_tape")])
        for goal, x, who in ((f"∇f at {points:,} points: to_c 1 thread ≤ 1.0× Dr.Jit 1 "
                              "thread", r1, ""),
                             (f"∇f at {points:,} points: to_c {cores} threads ≤ 1.0× Dr.Jit "
                              f"{cores} threads", rn, "")):
            goals.append([goal, f"×{fmt_ratio(x)}" if x else "not measured",
                          _verdict(x <= 1.0) if x else (drjit_note or "–")])
        for tool, key in (("to_c", "to_c"), ("Dr.Jit", "drjit")):
            s = ratio(f"{key} 1", f"{key} {cores}")
            if s:
                cpu = v.get(f"cpu/wall {key} {cores}")
                scaling.append([f"{points:,}", tool, str(cores), f"{s:.2f}",
                                f"{s / cores:.2f}", f"{cpu:.2f}" if cpu else "–"])
        if "drjit point" in v:
            notes.append(f"one point, {fmt_n(OPS)} ops (timed in the {points:,}-point child): "
                         f"to_c {fmt_time(v['to_c point'])}, Dr.Jit "
                         f"{fmt_time(v['drjit point'])} (to_c / Dr.Jit "
                         f"×{fmt_ratio(v['to_c point'] / v['drjit point'])})")
        if points == max(batches) and ratio("to_c 1", f"to_c {cores}"):
            s = ratio("to_c 1", f"to_c {cores}")
            goals.append([f"thread scaling at {points:,} points ≥ 0.8 × linear",
                          f"{cores} threads: ×{s:.2f} ({s / cores:.2f} of linear)",
                          _verdict(s / cores >= 0.8)])
    cores_label = f"{len(suite_cpus())} threads"
    out += ["#### ∇f at a batch: to_c against Dr.Jit", "",
            table(["points", "to_c 1 thread", "Dr.Jit 1 thread", "to_c / Dr.Jit",
                   f"to_c {cores_label}", f"Dr.Jit {cores_label}", "to_c / Dr.Jit",
                   "to_tape"], rows), ""]
    if drjit_note:
        out += [drjit_note, ""]
    out += ["#### Thread scaling (same runs)", "",
            table(["points", "tool", "threads", "speed-up", "of linear",
                   "CPU s per wall s at that count"], scaling), "",
            "(CPU per wall second near 1 at 2 threads: the second thread did not run, or the "
            "machine's other jobs took its core; `uptime`'s load is in the report's header.)",
            ""]
    # one point
    heads = ["ops", "nodes", "to_c", "to_c plain", "to_tape", "CasADi VM", "symengine-LLVM",
             "to_tape / CasADi", "to_c / symengine", "to_c plain / symengine"]
    rows = []
    for ops in point_ops:
        r = run_bounded("benchmarks.scalar_peers:measure_point",
                        {"ops": ops, "cache": cache, "symengine": True},
                        SYMENGINE_BOUND[quick] + 60.0)
        se_note = None
        if r.timed_out or r.error:
            se_note = (f"did not build in {SYMENGINE_BOUND[quick] + 60:.0f} s" if r.timed_out
                       and "symengine build" not in r.values else _status(r))
            r = run_bounded("benchmarks.scalar_peers:measure_point",
                            {"ops": ops, "cache": cache, "symengine": False}, 600.0)
        v = r.values
        print(f"[scalar_peers] one point, {ops} ops: "
              f"{'ok' if not (r.timed_out or r.error) else _status(r)} ({r.seconds:.1f} s)",
              flush=True)

        def get(key: str) -> str:
            return fmt_time(v[key]) if key in v else "–"

        tc = v["to_tape"] / v["casadi"] if "to_tape" in v and "casadi" in v else None
        cs = v["to_c"] / v["symengine-llvm"] if "to_c" in v and "symengine-llvm" in v else None
        ps = (v["to_c plain"] / v["symengine-llvm"] if "to_c plain" in v
              and "symengine-llvm" in v else None)
        rows.append([fmt_n(ops), f"{v['nodes']:,}" if "nodes" in v else "–", get("to_c"),
                     get("to_c plain"), get("to_tape"), get("casadi"),
                     get("symengine-llvm") if se_note is None else se_note,
                     fmt_ratio(tc), fmt_ratio(cs), fmt_ratio(ps)])
        if "symengine build" in v:
            notes.append(f"symengine's build at {fmt_n(ops)} ops: "
                         f"{fmt_time(v['symengine build'])}")
        if v.get("agreement"):
            notes.append(f"agreement with to_numpy at {fmt_n(ops)} ops (max |Δ| / "
                         "max(|value|, 1)): " + ", ".join(
                             f"{k} {x:.1e}" for k, x in v["agreement"].items()))
        if ops == OPS:
            goals.append([f"one point, {fmt_n(ops)} ops: to_tape ≤ 0.5× CasADi VM",
                          f"×{fmt_ratio(tc)}" if tc else "not measured",
                          _verdict(tc <= 0.5) if tc else "–"])
            goals.append([f"one point, {fmt_n(ops)} ops: to_c ≤ 0.5× symengine-LLVM",
                          f"×{fmt_ratio(cs)} (plain C ×{fmt_ratio(ps)})" if cs else
                          f"not measured: symengine-LLVM {se_note}",
                          _verdict(cs <= 0.5) if cs else "–"])
    out += ["#### ∇f at one point", "", table(heads, rows), ""]
    out += [f"* {n}" for n in notes] + [""]
    out += ["#### Against the goals of issue 29", "",
            table(["goal", "measured", "verdict"], goals), ""]
    return "\n".join(out)


if __name__ == "__main__":
    import sys
    print(run(quick="--full" not in sys.argv))
