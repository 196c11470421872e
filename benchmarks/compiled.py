"""Compiled evaluation (issue 16): ``to_tape`` and ``to_c`` against ``to_numpy`` and the peers
that compile (CasADi's SX virtual machine and its JIT, symengine's LLVM backend, JAX).

Workload: the gradients of the seeded random programs of :mod:`benchmarks.programs` (10² to
10⁵ ops over 8 inputs), each tool and size in a child process bounded by ``--timeout``:

* **build**: program → callable gradient, first call included (for circuitgrad: parse, grad,
  the lowering; ``to_c`` with an empty cache, so its compile is counted; "cached" is the
  second ``to_c`` of the same circuit, a load);
* **∇f at one point** and **at 4,096 points** (medians);
* the tape's build alone, per node, on gradient circuits up to about 10⁶ nodes;
* ``to_c``'s compile time per node (gcc -Og, functions of 500 nodes, 4 points per AVX2
  vector where the host has AVX2 and glibc's vector math).

    python -m benchmarks --only compiled
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from . import peers
from .harness import (
    fmt_n,
    fmt_ratio,
    fmt_time,
    measurement_timeout,
    median_time,
    plot_loglog,
    run_bounded,
    table,
    timed,
)
from .programs import random_program

POINTS = 4096
SIZES = [10**2, 10**3, 10**4, 10**5]
QUICK_SIZES = [10**2, 10**3]
BATCH_MAX = 10**4  # 4,096 points of the 10⁵-op gradient take minutes with to_numpy
TAPE_SIZES = [10**3, 10**4, 10**5, 330_000]  # ops; the last gradient has about 10⁶ nodes
QUICK_TAPE_SIZES = [10**3, 10**4]

TOOLS = ["to_numpy", "to_tape", "to_c", "to_c (plain C)", "casadi (SX VM)", "casadi (JIT)",
         "symengine-llvm", "jax"]


class Lowered(peers.Circuitgrad):
    """circuitgrad's parse → grad → lowering (``lowering`` names the function)."""

    lowering = "to_numpy"
    options: dict[str, Any] = {}

    def lower(self, c):
        return getattr(self.cg, self.lowering)(c, **self.options)

    def build_grad(self):
        cg = self.cg
        self.c = cg.parse(self.text, inputs=list(self.prog.inputs))
        self.g = cg.grad(self.c)
        self.gf = self.lower(self.g)
        return self.gf(*self.point)

    def build_f(self):
        self.f = self.lower(self.c)


class Tape(Lowered):
    lowering = "to_tape"


class C(Lowered):
    lowering = "to_c"


class CPlain(Lowered):
    """to_c without its vectors (``vectors=False``): the plain C path, one point at a time."""

    lowering = "to_c"
    options = {"vectors": False}


class CasadiJit(peers.Casadi):
    """CasADi's SX function compiled by its JIT (the "shell" compiler: the system cc)."""

    options = {"jit": True, "compiler": "shell", "jit_options": {"flags": ["-O1"]}}

    def build_grad(self):
        ca = self.ca
        os.chdir(tempfile.mkdtemp(prefix="cg_casadi_jit_"))  # its C files, not in the checkout
        self.xs = [ca.SX.sym(name) for name in self.prog.inputs]
        self.J = self.fn(*self.xs)
        G = ca.gradient(self.J, ca.vertcat(*self.xs))
        self.g = ca.Function("g", self.xs, [self.J, G], self.options)
        return self.g(*self.point)

    def build_f(self):
        self.f = self.ca.Function("f", self.xs, [self.J], self.options)


ADAPTERS = {"to_numpy": Lowered, "to_tape": Tape, "to_c": C, "to_c (plain C)": CPlain,
            "casadi (SX VM)": peers.Casadi,
            "casadi (JIT)": CasadiJit, "symengine-llvm": peers.SymengineLLVM, "jax": peers.Jax}
PACKAGES = {"casadi (SX VM)": "casadi", "casadi (JIT)": "casadi",
            "symengine-llvm": "symengine", "jax": "jax"}


def _interleaved(fns: dict[str, Any], budget: float, rounds: int = 3) -> dict[str, float]:
    """The best of ``rounds`` medians of each function, the functions taking turns, so that
    a change of the machine's load hits all of them alike."""
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, fn in fns.items():
            t = median_time(fn, budget=budget)
            best[name] = min(best.get(name, t), t)
    return best


def measure(emit, tool: str, n: int, batch: bool, cache: str) -> None:
    """Child: one tool on the gradient of the random program of ``n`` ops, and circuitgrad's
    lowerings of the same gradient in the same process, timed in turns with it (the ratios)."""
    import warnings
    warnings.filterwarnings("ignore")
    # to_c's build compiles into an empty cache; the side-by-side references of the other
    # children share one cache per run (the first child that needs a library compiles it).
    os.environ["CIRCUITGRAD_CACHE"] = (tempfile.mkdtemp(prefix="cg_bench_")
                                       if tool.startswith("to_c") else cache)
    prog = random_program(n, seed=0)
    point, points = prog.point(), prog.batch(POINTS)
    adapter = ADAPTERS[tool](prog, point, points)
    adapter.prepare()
    seconds, values = timed(adapter.build_grad)
    emit("build", seconds)
    emit("grad", peers._floats(values))
    import circuitgrad as cg
    if isinstance(adapter, Lowered):
        g = adapter.g
        emit("nodes", len(g))
        emit("lower", timed(lambda: adapter.lower(g))[0])  # to_c: now a load from the cache
    else:
        g = cg.grad(cg.parse(prog.text(), inputs=list(prog.inputs)))
    os.environ["CIRCUITGRAD_CACHE"] = cache
    refs = {"to_numpy": cg.to_numpy(g), "to_tape": cg.to_tape(g)}
    if n <= BATCH_MAX:  # to_c at 10⁵ ops does not compile within the bound
        refs["to_c"] = cg.to_c(g)
    refs.pop(tool, None)
    one = _interleaved({tool: adapter.grad1, **{k: (lambda f=f: f(*point))
                                                for k, f in refs.items()}}, budget=0.2)
    emit("g1", one.pop(tool))
    emit("ref_g1", one)
    if batch:
        adapter.build_f()  # CasADi maps f and ∇f together
        seconds, _ = timed(lambda: (adapter.build_batch(), adapter.gradB()))
        emit("batch_build", seconds)
        many = _interleaved({tool: adapter.gradB, **{k: (lambda f=f: f(*points))
                                                     for k, f in refs.items()}}, budget=0.3,
                            rounds=2)
        emit("gB", many.pop(tool))
        emit("ref_gB", many)


def tape_build(emit, n: int) -> None:
    """Child: the tape's build alone (best of 3) on the gradient of ``n`` random ops."""
    import circuitgrad as cg
    prog = random_program(n, seed=0)
    g = cg.grad(cg.parse(prog.text(), inputs=list(prog.inputs)))
    emit("nodes", len(g))
    best = min(timed(lambda: cg.to_tape(g))[0] for _ in range(3))
    emit("tape", best)
    f = cg.to_tape(g)
    emit("registers", f.registers)
    emit("eval", median_time(lambda: f(*prog.point())))


def _run_tools(sizes: list[int], timeout: float) -> dict[str, dict[int, dict]]:
    import importlib.util
    cache = tempfile.mkdtemp(prefix="cg_bench_")
    results: dict[str, dict[int, dict]] = {}
    for tool in TOOLS:
        results[tool] = {}
        package = PACKAGES.get(tool)
        missing = package is not None and importlib.util.find_spec(package) is None
        stopped = None
        for n in sizes:
            if missing or stopped:
                results[tool][n] = {"status": "missing" if missing else f"not run ({stopped})"}
                continue
            r = run_bounded("benchmarks.compiled:measure",
                            {"tool": tool, "n": n, "batch": n <= BATCH_MAX, "cache": cache},
                            timeout)
            v = dict(r.values)
            if r.timed_out:
                v["status"] = "timeout"
                if "g1" not in v:
                    stopped = f"timeout at {fmt_n(n)}"
            elif r.error:
                v["status"] = f"error: {r.error.replace('|', '/')[:80]}"
                if "build" not in v:
                    stopped = f"error at {fmt_n(n)}"
            results[tool][n] = v
            print(f"[compiled] {tool} {n}: {v.get('status', 'ok')} ({r.seconds:.1f} s)",
                  flush=True)
    return results


def _cell(r: dict[str, Any], key: str, ref: float | None) -> str:
    if key not in r:
        return r.get("status", "–")
    text = fmt_time(r[key])
    if ref:
        text += f" (×{fmt_ratio(r[key] / ref)})"
    return text


def _side(r: dict[str, Any], key: str, of: str) -> float | None:
    """The time of ``of`` measured in the same child as ``r``'s tool, or None."""
    return r.get(f"ref_{key}", {}).get(of)


def _agreement(r: dict[str, Any], ref: dict[str, Any]) -> str:
    if "grad" not in r or "grad" not in ref:
        return r.get("status", "–")
    return peers._agreement(r["grad"], ref["grad"])


def _goals(res: dict[str, dict[int, dict]], tape: dict[int, dict]) -> list[list[str]]:
    rows = []

    def get(tool: str, n: int, key: str) -> float | None:
        return res.get(tool, {}).get(n, {}).get(key)

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    n = 10**3
    for mine, peer, goal in (("to_tape", "casadi (SX VM)", 0.5), ("to_c", "symengine-llvm", 0.5)):
        a, b = _side(res[peer].get(n, {}), "g1", mine), get(peer, n, "g1")
        if a and b:
            rows.append([f"∇f at one point, 10³ ops: {mine} ≤ {goal}× {peer}",
                         f"{fmt_time(a)} vs {fmt_time(b)}: ×{fmt_ratio(a / b)}",
                         verdict(a / b <= goal)])
        else:
            rows.append([f"∇f at one point, 10³ ops: {mine} ≤ {goal}× {peer}",
                         "not measured", res.get(peer, {}).get(n, {}).get("status", "–")])
    for n in sorted(res["to_c"]):
        a, b = get("to_c", n, "gB"), _side(res["to_c"].get(n, {}), "gB", "to_numpy")
        if a and b:
            rows.append([f"∇f at {POINTS:,} points, {fmt_n(n)} ops: to_c ≤ 0.2× to_numpy",
                         f"×{fmt_ratio(a / b)}", verdict(a / b <= 0.2)])
    per_node = [(tape[n]["nodes"], tape[n]["tape"] / tape[n]["nodes"]) for n in sorted(tape)
                if "tape" in tape[n]]
    if per_node:
        worst = max(p for _, p in per_node)
        rows.append([f"to_tape build ≤ 0.5 µs/node flat to 10⁶ (largest: {per_node[-1][0]:,} "
                     f"nodes)", ", ".join(f"{1e6 * p:.2f}" for _, p in per_node) + " µs/node",
                     verdict(worst <= 0.5e-6 and per_node[-1][0] >= 900_000)])
    compile_rows = [(n, get("to_c", n, "build"), get("to_c", n, "nodes"))
                    for n in sorted(res["to_c"])]
    b3 = get("to_c", 10**3, "build")
    if b3:
        rows.append(["to_c build (compile included) ≤ 1 s at 10³ ops", fmt_time(b3),
                     verdict(b3 <= 1.0)])
    per = [f"{fmt_n(n)}: {1e6 * b / nodes:.0f}" for n, b, nodes in compile_rows if b and nodes]
    if per:
        rows.append(["to_c compile linear (µs per node, by ops)", ", ".join(per), ""])
    return rows


def run(quick: bool = False) -> str:
    """The tables and plots (markdown)."""
    timeout = max(measurement_timeout(quick), 120.0)
    sizes = QUICK_SIZES if quick else SIZES
    res = _run_tools(sizes, timeout)
    tape: dict[int, dict] = {}
    for n in QUICK_TAPE_SIZES if quick else TAPE_SIZES:
        r = run_bounded("benchmarks.compiled:tape_build", {"n": n}, max(timeout, 300.0))
        tape[n] = dict(r.values) if not (r.timed_out or r.error) else {
            "status": "timeout" if r.timed_out else f"error: {r.error}"}
        print(f"[compiled] tape build {n}: {tape[n].get('status', 'ok')}", flush=True)
    heads = ["tool"] + [f"N = {fmt_n(n)}" for n in sizes]
    ref = res["to_numpy"]

    def rows(key: str) -> list[list[str]]:
        if key == "build":
            return [[f"**{t}**" if t.startswith("to_") else t] +
                    [_cell(res[t].get(n, {}), key, ref.get(n, {}).get(key)) for n in sizes]
                    for t in TOOLS]
        # evaluation: × against the to_numpy timed in turns in the same process
        return [[f"**{t}**" if t.startswith("to_") else t] +
                [_cell(res[t].get(n, {}), key, None if t == "to_numpy" else
                       _side(res[t].get(n, {}), key, "to_numpy")) for n in sizes]
                for t in TOOLS]

    def side_rows(key: str) -> list[list[str]]:
        out_rows = []
        for t in TOOLS:
            if t.startswith("to_"):
                continue
            cells = [t]
            for n in sizes:
                r = res[t].get(n, {})
                if key not in r:
                    cells.append(r.get("status", "–"))
                    continue
                parts = [f"{fmt_ratio(_side(r, key, mine) / r[key])} ({mine})"
                         for mine in ("to_tape", "to_c") if _side(r, key, mine)]
                cells.append(", ".join(parts) or "–")
            out_rows.append(cells)
        return out_rows

    out = ["## Compiled evaluation: to_tape and to_c (issue 16)", "",
           "The gradient of the seeded random programs of N ops over 8 inputs "
           "(`benchmarks/programs.py`, as in the peers section). Each tool and size runs in "
           f"a child process bounded by {timeout:.0f} s. Times are medians; × is the ratio "
           "to `to_numpy`'s time in the same run (< 1: faster than to_numpy). Build = program "
           "→ callable gradient with its first call; `to_c` compiles into an empty cache "
           "(gcc -Og, functions of 500 nodes, 4 points per AVX2 vector where the host has "
           "it); CasADi's JIT uses its \"shell\" compiler "
           "(the system cc, -O1). The machine has 2 cores shared with other jobs: compare "
           "ratios, not absolute times; every evaluation ratio below is of times taken in "
           "turns in one process (best of 2-3 rounds of medians), so a change of load hits "
           "both sides alike."]
    out += ["", "#### Build: program → callable gradient, first call included", "",
            table(heads, rows("build"))]
    out += ["", "#### ∇f at one point (× = time / to_numpy's, timed in turns in the same "
            "process)", "", table(heads, rows("g1"))]
    out += ["", "#### ∇f at one point: circuitgrad's time / the peer's, timed in turns in the "
            "peer's process (< 1: circuitgrad faster)", "", table(heads, side_rows("g1"))]
    out += ["", f"#### ∇f at {POINTS:,} points, up to {fmt_n(BATCH_MAX)} ops (× = time / "
            "to_numpy's, timed in turns in the same process)", "", table(heads, rows("gB"))]
    out += ["", f"#### ∇f at {POINTS:,} points: circuitgrad's time / the peer's, in the "
            "peer's process", "", table(heads, side_rows("gB"))]
    lower_rows = []
    for t in ("to_numpy", "to_tape", "to_c", "to_c (plain C)"):
        cells = [t]
        for n in sizes:
            r = res[t].get(n, {})
            cells.append(f"{fmt_time(r['lower'])} ({r['nodes']:,} nodes)" if "lower" in r
                         else r.get("status", "–"))
        lower_rows.append(cells)
    out += ["", "#### The lowering alone, again on the same gradient circuit (to_c: a load "
            "from its cache)", "", table(heads, lower_rows)]
    out += ["", "#### Agreement with to_numpy at a random point (max relative difference of "
            "f and ∇f)", "",
            table(heads, [[t] + [_agreement(res[t].get(n, {}), ref.get(n, {})) for n in sizes]
                          for t in TOOLS if t != "to_numpy"])]
    tape_rows = [[fmt_n(n) if n in (10**3, 10**4, 10**5) else f"{n:,}",
                  f"{r['nodes']:,}" if "nodes" in r else "–",
                  fmt_time(r.get("tape")) if "tape" in r else r.get("status", "–"),
                  f"{1e6 * r['tape'] / r['nodes']:.3f}" if "tape" in r else "–",
                  f"{r['registers']:,}" if "registers" in r else "–",
                  fmt_time(r.get("eval")) if "eval" in r else "–",
                  f"{1e9 * r['eval'] / r['nodes']:.1f}" if "eval" in r else "–"]
                 for n, r in tape.items()]
    out += ["", "#### to_tape: build alone (best of 3) and one-point call, by size", "",
            table(["ops", "nodes", "build", "µs / node", "registers", "∇f at a point",
                   "ns / node"], tape_rows)]
    series = {t: ([n for n in sizes if "build" in res[t].get(n, {})],
                  [res[t][n]["build"] for n in sizes if "build" in res[t].get(n, {})])
              for t in TOOLS}
    img = plot_loglog("bench_compiled_build", "gradient of N random ops: build (first call "
                      "included)", "N ops", "seconds", series, note=f"timeout {timeout:.0f} s")
    if img:
        out += ["", f"![build time]({img})"]
    series = {t: ([n for n in sizes if "g1" in res[t].get(n, {})],
                  [res[t][n]["g1"] for n in sizes if "g1" in res[t].get(n, {})])
              for t in TOOLS}
    img = plot_loglog("bench_compiled_point", "gradient of N random ops: one call at one point",
                      "N ops", "seconds", series)
    if img:
        out += ["", f"![one point]({img})"]
    out += ["", "#### Against the goals of issue 16", "",
            table(["goal", "measured", "verdict"], _goals(res, tape))]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(run(quick=True))
