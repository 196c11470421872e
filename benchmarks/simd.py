"""Compiled scalar circuits at the hardware's speed (issue 29): to_c's vector width and threads.

Workload: ∇f of the seeded random program of 10³ ops over 16 inputs
(:func:`benchmarks.programs.random_program`), at 4,096 and 10⁶ points. Each child process
(one per batch size and peer, bounded by ``--timeout``) times the peer and circuitgrad's
lowerings in turns (best of rounds of medians), so that every ratio is of times taken side by
side in one process:

* ``to_c before``: ``width=4, threads=1``, what ``to_c`` did before issue 29 (4 doubles per
  AVX2 vector, one thread); ``to_c w8 1 thread``: the host's widest vectors, one thread;
  ``to_c``: the defaults (widest vectors, every core of the process's affinity);
* ``to_numpy``, ``to_tape``; JAX ``jit(vmap(value_and_grad))``; Dr.Jit 1.x (LLVM backend, one
  thread and all threads, the gradient function frozen with ``dr.freeze``) where importable
  (``pip install drjit``; its LLVM backend needs LLVM's shared library, found through
  ``$DRJIT_LIBLLVM_PATH``); CasADi and symengine where importable.

Also: ``to_c``'s compile (an empty cache) and its speed at 4,096 points by optimization level;
thread scaling at 10⁶ points; the one-point call of the same gradient.

    python -m benchmarks --only simd
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from typing import Any, Callable

from .harness import fmt_ratio, fmt_time, median_time, run_bounded, table, timed
from .programs import _Namespace, random_program

OPS = 1000
INPUTS = 16
BATCHES = [4096, 10**6]
OPTS = ["-O0", "-Og", "-O1", "-O2"]
PEERS = ["to_numpy", "to_tape", "jax", "drjit (1 thread)", "drjit (all threads)", "casadi",
         "symengine-llvm"]
PACKAGES = {"jax": "jax", "drjit (1 thread)": "drjit", "drjit (all threads)": "drjit",
            "casadi": "casadi", "symengine-llvm": "symengine"}
MINE = ["to_c before (width 4, 1 thread)", "to_c w8 1 thread", "to_c"]


def _program():
    return random_program(OPS, seed=0, n_inputs=INPUTS)


def _best(fns: dict[str, Callable[[], Any]], rounds: int, budget: float) -> dict[str, float]:
    """The best of ``rounds`` medians of each function, taking turns (a change of the
    machine's load hits all alike); a function slower than 1 s is timed once a round."""
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, fn in fns.items():
            if best.get(name, 0.0) > 1.0:
                t = timed(fn)[0]
            else:
                t = median_time(fn, budget=budget, min_repeats=1 if best.get(name, 0) > 0.2
                                else 3)
            best[name] = min(best.get(name, t), t)
    return best


def _drjit(prog, batch, threads: int | None):
    """Dr.Jit's ∇f of the program over the batch, frozen: a function of Float arrays."""
    import drjit as dr
    from drjit.llvm.ad import Float

    if threads is not None:
        dr.set_thread_count(threads)
    F = _Namespace(sin=dr.sin, cos=dr.cos, tanh=dr.tanh, exp=dr.exp, log=dr.log, sqrt=dr.sqrt,
                   square=dr.square, abs=dr.abs, relu=lambda x: dr.maximum(x, 0.0),
                   sigmoid=lambda x: 1 / (1 + dr.exp(-x)))
    fn = prog.function(F)

    @dr.freeze
    def value_and_grad(*xs):
        xs = [Float(x) for x in xs]
        for x in xs:
            dr.enable_grad(x)
        y = fn(*xs)
        dr.backward(y)
        return y, [dr.grad(x) for x in xs]

    xs = [Float(v) for v in batch]

    def run():
        y, grads = value_and_grad(*xs)
        dr.eval(y, grads)
        dr.sync_thread()
        return y, grads
    return run


def measure(emit, points: int, peer: str, cache: str) -> None:
    """Child: ``peer`` and circuitgrad's to_c (before/after) on ∇f at ``points`` points."""
    import warnings
    warnings.filterwarnings("ignore")
    os.environ["CIRCUITGRAD_CACHE"] = cache
    import circuitgrad as cg
    prog = _program()
    batch = prog.batch(points)
    g = cg.grad(cg.parse(prog.text(), inputs=list(prog.inputs)))
    fns: dict[str, Callable[[], Any]] = {
        MINE[0]: (lambda f=cg.to_c(g, width=4, threads=1): f(*batch)),
        MINE[1]: (lambda f=cg.to_c(g, threads=1): f(*batch)),
        MINE[2]: (lambda f=cg.to_c(g): f(*batch)),
    }
    emit("width", cg.to_c(g).width)
    emit("threads", cg.to_c(g).threads)
    if peer in ("to_numpy", "to_tape"):
        f = getattr(cg, peer)(g)
        fns[peer] = lambda: f(*batch)
    elif peer == "jax":
        import jax
        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_platforms", "cpu")
        from .programs import namespace
        fn = prog.function(namespace("jax"))
        vg = jax.jit(jax.vmap(jax.value_and_grad(fn, argnums=tuple(range(INPUTS)))))
        xs = [jax.numpy.asarray(v) for v in batch]
        emit("peer_build", timed(lambda: jax.block_until_ready(vg(*xs)))[0])
        fns[peer] = lambda: jax.block_until_ready(vg(*xs))
    elif peer.startswith("drjit"):
        run = _drjit(prog, batch, 1 if "1 thread" in peer else None)
        emit("peer_build", timed(run)[0])
        fns[peer] = run
    else:
        raise ValueError(f"{peer}: not adapted for batches here")
    rounds = 2 if points > 10**5 else 3
    for name, t in _best(fns, rounds, budget=0.3).items():
        emit(name, t)


def compile_times(emit, cache_root: str, ops: int) -> None:
    """Child: to_c's compile (an empty cache each) and its ∇f at 4,096 points by -O level."""
    import circuitgrad as cg
    prog = random_program(ops, seed=0, n_inputs=INPUTS)
    g = cg.grad(cg.parse(prog.text(), inputs=list(prog.inputs)))
    batch = prog.batch(4096)
    emit("nodes", len(g))
    fns = {}
    for opt in OPTS:
        os.environ["CIRCUITGRAD_CACHE"] = tempfile.mkdtemp(prefix="cg_simd_", dir=cache_root)
        seconds, f = timed(lambda: cg.to_c(g, opt=opt, threads=1))
        emit(f"compile {opt}", seconds)
        fns[opt] = lambda f=f: f(*batch)
    if ops <= 10**3:
        for name, t in _best(fns, 3, budget=0.3).items():
            emit(f"eval {name}", t)


def scaling(emit, cache: str) -> None:
    """Child: to_c's ∇f at 10⁶ points on 1, 2, ... threads (the process's cores)."""
    os.environ["CIRCUITGRAD_CACHE"] = cache
    import circuitgrad as cg
    prog = _program()
    batch = prog.batch(10**6)
    g = cg.grad(cg.parse(prog.text(), inputs=list(prog.inputs)))
    cores = len(os.sched_getaffinity(0))
    emit("cores", cores)
    fns = {str(n): (lambda f=cg.to_c(g, threads=n): f(*batch)) for n in range(1, cores + 1)}
    for name, t in _best(fns, 2, budget=0.3).items():
        emit(name, t)
    t0, c0 = time.perf_counter(), time.process_time()
    fns[str(cores)]()
    emit("cpu/wall", (time.process_time() - c0) / (time.perf_counter() - t0))


def one_point(emit, cache: str) -> None:
    """Child: the one-point call of ∇f (10³ ops) and of a 16-input sum's gradient (the call
    alone: binding, the entry point, 17 outputs)."""
    os.environ["CIRCUITGRAD_CACHE"] = cache
    import numpy as np

    import circuitgrad as cg
    prog = _program()
    point = prog.point()
    g = cg.grad(cg.parse(prog.text(), inputs=list(prog.inputs)))
    tiny = cg.grad(cg.parse("J = " + " + ".join(prog.inputs), inputs=list(prog.inputs)))
    arr = [np.float64(v) for v in point]
    fns = {"to_c": cg.to_c(g), "to_c width 1": cg.to_c(g, width=1), "to_tape": cg.to_tape(g),
           "to_c (sum)": cg.to_c(tiny), "to_tape (sum)": cg.to_tape(tiny),
           "to_numpy": cg.to_numpy(g)}
    calls = {k: (lambda f=f: f(*point)) for k, f in fns.items()}
    calls["to_c, np.float64 arguments"] = lambda f=fns["to_c"]: f(*arr)
    calls["to_c, keywords"] = lambda f=fns["to_c"], kw=dict(zip(prog.inputs, point)): f(**kw)
    for name, t in _best(calls, 3, budget=0.2).items():
        emit(name, t)


def run(quick: bool = False) -> str:
    """The tables (markdown)."""
    timeout = 600.0
    cache = tempfile.mkdtemp(prefix="cg_simd_")
    batches = [4096] if quick else BATCHES
    res: dict[tuple[int, str], dict] = {}
    for points in batches:
        for peer in PEERS:
            package = PACKAGES.get(peer)
            if package and importlib.util.find_spec(package) is None:
                res[points, peer] = {"status": "not installed"}
                continue
            if peer in ("casadi", "symengine-llvm"):
                res[points, peer] = {"status": "installed; not adapted here"}
                continue
            r = run_bounded("benchmarks.simd:measure",
                            {"points": points, "peer": peer, "cache": cache}, timeout)
            v = dict(r.values)
            if r.timed_out or r.error:
                v["status"] = "timeout" if r.timed_out else f"error: {r.error[:80]}"
            res[points, peer] = v
            print(f"[simd] {peer} at {points}: {v.get('status', 'ok')} ({r.seconds:.1f} s)",
                  flush=True)
    any_v = next((v for v in res.values() if "width" in v), {})
    out = ["## to_c at the hardware's speed: vector width and threads (issue 29)", "",
           f"∇f of the random program of {OPS:,} ops over {INPUTS} inputs "
           f"(`benchmarks/programs.py`, seed 0). to_c here: {any_v.get('width', '?')} points "
           f"per vector, {any_v.get('threads', '?')} threads by default. Each row's peer and "
           "the three to_c variants are timed in turns in one child process (best of rounds "
           "of medians); the ratios are to the to_c variants of that same process. The "
           "machine's 2 cores are shared with other jobs: compare ratios, not times.", ""]
    for points in batches:
        rows = []
        for peer in PEERS:
            v = res[points, peer]
            if peer not in v:
                rows.append([peer, v.get("status", "–"), "", "", ""])
                continue
            rows.append([peer, fmt_time(v[peer])] + [
                f"{fmt_time(v[m])} (×{fmt_ratio(v[m] / v[peer])})" for m in MINE])
        out += [f"#### ∇f at {points:,} points: the peer, and to_c in the same process "
                "(× = to_c's time / the peer's)", "",
                table(["peer", "peer's time", *MINE], rows), ""]
    # compile times and -O levels
    comp = {}
    for ops in ([10**3] if quick else [10**3, 10**4]):
        r = run_bounded("benchmarks.simd:compile_times", {"cache_root": cache, "ops": ops},
                        timeout)
        comp[ops] = dict(r.values) if not (r.timed_out or r.error) else {
            "status": "timeout" if r.timed_out else f"error: {r.error[:80]}"}
    rows = []
    for opt in OPTS:
        row = [opt]
        for ops, v in comp.items():
            row.append(fmt_time(v.get(f"compile {opt}")) if f"compile {opt}" in v
                       else v.get("status", "–"))
        e = comp.get(10**3, {})
        base = e.get("eval -Og")
        row.append(f"{fmt_time(e[f'eval {opt}'])} (×{fmt_ratio(e[f'eval {opt}'] / base)})"
                   if f"eval {opt}" in e and base else "–")
        rows.append(row)
    heads = ["opt"] + [f"compile, {ops:,} ops ({comp[ops].get('nodes', '?'):,} nodes)"
                       if isinstance(comp[ops].get('nodes'), int) else f"compile, {ops:,} ops"
                       for ops in comp] + ["∇f at 4,096 points, 10³ ops, 1 thread (× -Og)"]
    out += ["#### to_c's compile (empty cache) and speed by optimization level", "",
            table(heads, rows), ""]
    if not quick:
        r = run_bounded("benchmarks.simd:scaling", {"cache": cache}, timeout)
        v = dict(r.values)
        cores = v.get("cores", 0)
        if "1" in v:
            rows = [[n, fmt_time(v[str(n)]), f"{v['1'] / v[str(n)]:.2f}",
                     f"{v['1'] / v[str(n)] / n:.2f}"] for n in range(1, cores + 1)
                    if str(n) in v]
            out += ["#### Thread scaling, ∇f at 10⁶ points (to_c, default width)", "",
                    table(["threads", "time", "speed-up", "of linear"], rows), "",
                    f"cpu/wall at {cores} threads: {v.get('cpu/wall', 0):.2f}", ""]
    r = run_bounded("benchmarks.simd:one_point", {"cache": cache}, timeout)
    v = dict(r.values)
    out += ["#### One point, ∇f of 10³ ops (and of a 16-input sum: the call alone)", "",
            table(["call", "time"], [[k, fmt_time(t)] for k, t in v.items()]), ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(run(quick=True))
