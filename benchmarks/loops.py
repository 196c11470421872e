"""Loops as circuits (issue 30): RK4 of a Lorenz-96 system, its gradient through the steps.

The model: n = 10 states, dxᵢ/dt = (xᵢ₊₁ − xᵢ₋₂)·xᵢ₋₁ − xᵢ + F (indices cyclic), integrated by
the classical Runge-Kutta method with h = 0.01 for T steps from x₀; the loss is ½‖x_T‖², and
the gradient is taken with respect to x₀ and F. Written once, over the array module ``xp``,
and built four ways:

- **scan**: ``cg.scan`` over the steps (one ``scan`` node; its gradient a reverse ``scan``
  over the step's adjoint), lowered with ``to_numpy``, with ``to_c`` (a C loop over each
  body, the body written once) and with ``to_tape`` (the body's tape run once per step);
- **unrolled**: a Python loop traced step by step (T copies of the step), ``to_numpy``
  (interpreted above 20 000 nodes) and, in a bounded child process, ``to_c``;
- **JAX**: ``jax.jit(jax.value_and_grad)`` of the same step under ``lax.scan``, float64.

Every tool's value and gradient are checked against the scan's before it is timed: the
unrolled circuit's to 1e-12 (they are the same operations), JAX's and C's to 1e-7 relative
(Lorenz-96 at F = 8 is chaotic: over 1000 steps the gradient grows to ~1e8 and differences of
rounding order, XLA's or libm's, grow with it).

A second table runs T = 100 000 steps (scan through ``to_c``, and JAX) at F = 0.5, where the
system settles to its fixed point instead of being chaotic, so the gradient stays finite.

    python -m benchmarks.loops            # T = 1000 (and 100 000)
    python -m benchmarks --only loops
"""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np

import circuitgrad as cg
from circuitgrad.transforms.loops import loop_size

from .harness import (fmt_ratio, fmt_time, median_time, measurement_timeout, peak_rss_kb,
                      run_bounded)

N_STATES, H, F0 = 10, 0.01, 8.0
STEPS, QUICK_STEPS, LONG_STEPS, LONG_F = 1000, 200, 100_000, 0.5
MATCHED_STEPS = 50
"""The trip count at which the unrolled gradient's scalar C (``fused=False``) still compiles in
seconds: the scan through to_c is compared with it there, the same operations."""


def shift(xp: Any, x: Any, k: int) -> Any:
    """``x`` rotated by ``k`` (``np.roll``), as a read at constant integer indices (one
    ``take``)."""
    return x[(np.arange(N_STATES) - k) % N_STATES]


def lorenz96(xp: Any, x: Any, forcing: Any) -> Any:
    return (shift(xp, x, -1) - shift(xp, x, 2)) * shift(xp, x, 1) - x + forcing


def rk4_step(xp: Any, x: Any, forcing: Any) -> Any:
    k1 = lorenz96(xp, x, forcing)
    k2 = lorenz96(xp, x + (H / 2) * k1, forcing)
    k3 = lorenz96(xp, x + (H / 2) * k2, forcing)
    k4 = lorenz96(xp, x + H * k3, forcing)
    return x + (H / 6) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def scan_loss(steps: int):
    def loss(x0, forcing):
        final, _ = cg.scan(lambda x, _: (rk4_step(np, x, forcing), None), x0, length=steps)
        return 0.5 * np.sum(final * final)

    return loss


def unrolled_loss(steps: int):
    def loss(x0, forcing):
        x = x0
        for _ in range(steps):
            x = rk4_step(np, x, forcing)
        return 0.5 * np.sum(x * x)

    return loss


SHAPES = {"x0": (N_STATES,), "forcing": ()}


def point(forcing: float = F0) -> dict[str, Any]:
    x0 = forcing * np.ones(N_STATES)
    x0[0] += 0.01  # off the fixed point x = F: chaotic at F = 8, so T stays modest
    return {"x0": x0, "forcing": forcing}


def build(make, steps: int) -> tuple[float, Any, cg.Circuit, cg.Circuit, Any]:
    """Seconds from nothing to the first value and gradient; the function, c, g, result."""
    t0 = time.perf_counter()
    c = cg.trace(make(steps), shapes=SHAPES)
    g = cg.grad(c)
    f = cg.to_numpy(g)
    result = f(**point())
    return time.perf_counter() - t0, f, c, g, result


def scan_c(steps: int, at: dict[str, Any]) -> tuple[float, float, Any, Any]:
    """The scan's gradient through ``to_c``: seconds to trace and grad, seconds to lower,
    compile and give the first value and gradient; the function and its result."""
    t0 = time.perf_counter()
    g = cg.grad(cg.trace(scan_loss(steps), shapes=SHAPES))
    t1 = time.perf_counter()
    f = cg.to_c(g)
    result = f(**at)
    return t1 - t0, time.perf_counter() - t1, f, result


def unrolled_c(emit, steps: int, fused: bool | None = None) -> None:
    """The unrolled gradient through ``to_c`` (run in a bounded child process; ``fused``:
    to_c's choice of scalar code or to_fused's loops, None: by size)."""
    t0 = time.perf_counter()
    g = cg.grad(cg.trace(unrolled_loss(steps), shapes=SHAPES))
    f = cg.to_c(g, fused=fused)
    result = f(**point())
    emit("build", time.perf_counter() - t0)
    emit("kind", type(f).__name__)
    emit("result", [np.asarray(r).tolist() for r in result])
    emit("eval", median_time(lambda: f(**point()), budget=1.0))


def jax_value_and_grad(steps: int, blocks: int | None = None):
    """JAX's value and gradient of the scan (with ``blocks``: a scan over that many
    ``jax.checkpoint``-ed blocks of ``steps / blocks`` steps each)."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def run(x, forcing, length):
        return jax.lax.scan(lambda x, _: (rk4_step(jnp, x, forcing), None), x,
                            length=length)[0]

    def loss(x0, forcing):
        if blocks is None:
            final = run(x0, forcing, steps)
        else:
            if steps % blocks:
                raise ValueError(f"{steps} steps are not {blocks} equal blocks")
            block = jax.checkpoint(lambda x, _: (run(x, forcing, steps // blocks), None))
            final = jax.lax.scan(block, x0, length=blocks)[0]
        return 0.5 * jnp.sum(final * final)

    f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))

    def call(x0, forcing):
        value, (gx, gf) = f(x0, forcing)
        return float(value), np.asarray(gx), float(gf)

    return call


def check(ours, theirs, rtol: float = 1e-9) -> None:
    for a, b in zip(ours, theirs):  # the same numbers, or the timing means nothing
        np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                                   rtol=rtol, atol=rtol)


def run(quick: bool = False) -> str:
    steps = QUICK_STEPS if quick else STEPS
    at = point()
    step = cg.trace(lambda x, forcing: rk4_step(np, x, forcing), shapes={"x": N_STATES,
                                                                           "forcing": ()})
    t_scan, f_scan, c_scan, g_scan, ours = build(scan_loss, steps)
    t_unr, f_unr, c_unr, g_unr, unrolled = build(unrolled_loss, steps)
    check(ours, unrolled, rtol=1e-12)
    e_scan = median_time(lambda: f_scan(**at), budget=1.0)
    e_unr = median_time(lambda: f_unr(**at), budget=1.0)
    t_grad, t_lower, f_c, in_c = scan_c(steps, at)
    check(ours, in_c, rtol=1e-12)  # (the same operations; libm's and NumPy's roundings)
    e_c = median_time(lambda: f_c(**at), budget=1.0)
    t0 = time.perf_counter()
    f_tape = cg.to_tape(cg.grad(cg.trace(scan_loss(steps), shapes=SHAPES)))
    check(ours, f_tape(**at), rtol=1e-12)
    t_tape = time.perf_counter() - t0
    e_tape = median_time(lambda: f_tape(**at), budget=1.0)
    rows = [("circuitgrad scan, to_numpy", t_scan, e_scan),
            ("circuitgrad scan, to_c", t_grad + t_lower, e_c),
            ("circuitgrad scan, to_tape", t_tape, e_tape),
            ("circuitgrad unrolled, to_numpy", t_unr, e_unr)]
    child = run_bounded("benchmarks.loops:unrolled_c", {"steps": steps},
                        timeout=max(measurement_timeout(quick), 120.0))
    if "result" in child.values:
        check(ours, child.values["result"], rtol=1e-7)
        kind = " (to_fused: above the scalar limit)" if child.values.get("kind") == \
            "FusedFunction" else ""
        rows.append((f"circuitgrad unrolled, to_c{kind}", child.values["build"],
                     child.values["eval"]))
    else:
        why = "timed out" if child.timed_out else child.error or "no result"
        rows.append((f"circuitgrad unrolled, to_c ({why})", child.values.get("build"), None))
    jax_f = jax_value_and_grad(steps)
    e_jax = None
    if jax_f is not None:
        t0 = time.perf_counter()
        theirs = jax_f(at["x0"], at["forcing"])
        t_jax = time.perf_counter() - t0
        check(ours, theirs, rtol=1e-7)  # (another order of roundings, amplified: below)
        e_jax = median_time(lambda: jax_f(at["x0"], at["forcing"]), budget=1.0)
        rows.append(("JAX jit(value_and_grad), lax.scan", t_jax, e_jax))
    sizes = ["| circuit | nodes (size) | with each body once |", "|---|---|---|",
             f"| one RK4 step | {step.size} | {step.size} |",
             f"| scan over {steps} steps | {c_scan.size} | {loop_size(c_scan)} |",
             f"| its gradient | {g_scan.size} | {loop_size(g_scan)} |",
             f"| unrolled, {steps} steps | {c_unr.size:,} | {c_unr.size:,} |",
             f"| its gradient | {g_unr.size:,} | {g_unr.size:,} |"]
    times = ["| gradient (value and ∇ wrt x₀, F) | build | evaluation | × scan |",
             "|---|---|---|---|"]
    for name, built, evaluated in rows:
        times.append(f"| {name} | {fmt_time(built) if built is not None else '—'} | "
                     f"{fmt_time(evaluated) if evaluated is not None else '—'} | "
                     f"{fmt_ratio(evaluated / e_scan) if evaluated is not None else '—'} |")
    head = (f"### Loops: RK4 of Lorenz-96 (n = {N_STATES}), {steps} steps, gradient through "
            "the steps\n\nSizes in nodes; *with each body once* adds the loop bodies' nodes "
            "(`transforms.loops.loop_size`). Build = trace → grad → lowering → first value and "
            "gradient; × scan = evaluation time / the scan's (above 1: slower than the scan). "
            "One thread; JAX float64.\n\n")
    note = (f"\nThe scan through to_c: trace and grad {fmt_time(t_grad)}, to_c (the C written, "
            f"compiled, loaded) and the first call {fmt_time(t_lower)}; evaluation "
            + (f"{fmt_ratio(e_c / e_jax)} JAX's" if e_jax else "") + ".\n")
    text = head + "\n".join(sizes) + "\n\n" + "\n".join(times) + "\n" + note
    text += "\n" + matched_run(quick)
    return text if quick else text + "\n" + long_run() + "\n" + checkpoint_run()


def matched_run(quick: bool, steps: int = MATCHED_STEPS) -> str:
    """The scan through to_c against the unrolled gradient's scalar C, ``steps`` steps."""
    at = point()
    t_grad, t_lower, f_c, ours = scan_c(steps, at)
    e_c = median_time(lambda: f_c(**at), budget=1.0)
    rows = [f"| circuitgrad scan, to_c | {fmt_time(t_grad + t_lower)} | {fmt_time(e_c)} | 1 |"]
    child = run_bounded("benchmarks.loops:unrolled_c", {"steps": steps, "fused": False},
                        timeout=max(measurement_timeout(quick), 300.0))
    if "result" in child.values:
        check(ours, child.values["result"], rtol=1e-12)
        e_u = child.values["eval"]
        rows.append(f"| circuitgrad unrolled, to_c (scalar code) | "
                    f"{fmt_time(child.values['build'])} | {fmt_time(e_u)} | "
                    f"{fmt_ratio(e_u / e_c)} |")
    else:
        why = "timed out" if child.timed_out else child.error or "no result"
        rows.append(f"| circuitgrad unrolled, to_c (scalar code; {why}) | — | — | — |")
    return (f"#### {steps} steps: the scan's C loop against the unrolled scalar C\n\n"
            "| gradient | build | evaluation | × scan to_c |\n|---|---|---|---|\n"
            + "\n".join(rows) + "\n")


def long_run(steps: int = LONG_STEPS) -> str:
    """The scan through to_c and JAX over ``steps`` steps at F = ``LONG_F``."""
    at = point(LONG_F)
    t_grad, t_lower, f_c, ours = scan_c(steps, at)
    e_c = median_time(lambda: f_c(**at), budget=1.0)
    rows = [f"| circuitgrad scan, to_c | {fmt_time(t_grad)} | {fmt_time(t_lower)} | "
            f"{fmt_time(e_c)} |"]
    jax_f = jax_value_and_grad(steps)
    if jax_f is not None:
        t0 = time.perf_counter()
        theirs = jax_f(at["x0"], at["forcing"])
        t_jax = time.perf_counter() - t0
        check(ours, theirs, rtol=1e-7)
        e_jax = median_time(lambda: jax_f(at["x0"], at["forcing"]), budget=1.0)
        rows.append(f"| JAX jit(value_and_grad), lax.scan | — | {fmt_time(t_jax)} | "
                    f"{fmt_time(e_jax)} |")
    return (f"#### {steps:,} steps at F = {LONG_F}\n\n| gradient | trace and grad | lowering "
            "and first call | evaluation |\n|---|---|---|---|\n" + "\n".join(rows) + "\n")


CHECKPOINTS = (20, "sqrt")
"""The checkpoints of the long run's checkpointed gradients: 20, and √T (316 at 10⁵ steps)."""
JAX_BLOCKS = 250
"""JAX's checkpointed gradient: ``lax.scan`` over 250 blocks of T / 250 steps, each block
``jax.checkpoint``-ed (its inner carries recomputed in the backward pass): two levels, about
√T carries each (250 and 400 at 10⁵ steps)."""


def _checkpoints(steps: int, checkpoints: Any) -> int | None:
    return int(round(steps ** 0.5)) if checkpoints == "sqrt" else checkpoints


def _peak_kb() -> int:
    return peak_rss_kb()  # not ru_maxrss: a child starts at its parent's peak there


def long_gradient(emit, steps: int, tool: str, checkpoints: Any = None) -> None:
    """One long-run gradient in a child process (so its peak memory is its own): ``tool``
    ``"c"`` (the scan through ``to_c``, stored carries or ``checkpoints``) or ``"jax"``
    (``lax.scan``, with ``checkpoints`` its blocks under ``jax.checkpoint``). Emits the peak
    RSS before building, after the first call and after the timed calls, the build and
    evaluation times and the result."""
    at = point(LONG_F)
    if tool == "jax":
        import jax  # noqa: F401  (imported before the first measure: its memory is the baseline)
    else:
        cg.to_c(cg.parse("f = x * y"), name="warm")(x=1.0, y=2.0)
    emit("rss_start", _peak_kb())
    t0 = time.perf_counter()
    if tool == "c":
        ck = _checkpoints(steps, checkpoints)
        f = cg.to_c(cg.grad(cg.trace(scan_loss(steps), shapes=SHAPES), checkpoints=ck))
        registers = f._program.nregs * 8 * 8  # (a chunk of 8 points: 8 bytes each)
        vectors = sum(int(n) for n in re.findall(r"CG_ALLOC\((\d+)\)", f.source))
        emit("working_bytes", registers + vectors * 8 * f.width)  # (the loops' scratch)
        call = lambda: f(**at)  # noqa: E731
    else:
        call = jax_value_and_grad(steps, blocks=checkpoints)
        call = (lambda fn: lambda: fn(at["x0"], at["forcing"]))(call)
    result = call()
    emit("build", time.perf_counter() - t0)
    emit("rss_first", _peak_kb())
    emit("result", [np.asarray(r).tolist() for r in result])
    emit("eval", median_time(call, budget=2.0))
    emit("rss_peak", _peak_kb())


def checkpoint_run(steps: int = LONG_STEPS, quick: bool = False, rounds: int = 3) -> str:
    """The long run's gradient with checkpoints: ``to_c``'s checkpointed adjoint loop (20 and
    √T checkpoints) against its stored carries and JAX's (stored, and checkpointed blocks),
    each in its own child process, the tools interleaved over ``rounds`` rounds (the best
    evaluation of each): time and peak memory."""
    runs = [("to_c, stored carries", "c", None)]
    runs += [(f"to_c, checkpoints={c}" + (f" ({_checkpoints(steps, c)})" if c == "sqrt" else ""),
              "c", c) for c in CHECKPOINTS]
    runs += [("JAX lax.scan, stored", "jax", None),
             (f"JAX lax.scan of {JAX_BLOCKS} jax.checkpoint blocks", "jax", JAX_BLOCKS)]
    got: dict[str, list[dict]] = {label: [] for label, _, _ in runs}
    failed: dict[str, str] = {}
    reference = None
    for _ in range(1 if quick else rounds):
        for label, tool, checkpoints in runs:
            if label in failed:
                continue
            child = run_bounded("benchmarks.loops:long_gradient",
                                {"steps": steps, "tool": tool, "checkpoints": checkpoints},
                                timeout=max(measurement_timeout(quick), 300.0))
            if "eval" not in child.values:
                failed[label] = "timed out" if child.timed_out else child.error or "no result"
                continue
            if reference is None:
                reference = child.values["result"]
            else:
                check(reference, child.values["result"], rtol=1e-7 if tool == "jax" else 1e-12)
            got[label].append(child.values)
    best = {label: min(v["eval"] for v in values) for label, values in got.items() if values}
    stored = best.get(runs[0][0])
    rows = []
    for label, _, _ in runs:
        if label in failed or label not in best:
            rows.append(f"| {label} ({failed.get(label, 'no result')}) | — | — | — | — | — |")
            continue
        values = got[label]
        peak = max(v["rss_peak"] - v["rss_start"] for v in values) / 1024
        work = (f"{values[0]['working_bytes'] / 1e6:.3g} MB" if "working_bytes" in values[0]
                else "—")
        rows.append(f"| {label} | {fmt_time(min(v['build'] for v in values))} | "
                    f"{fmt_time(best[label])} | "
                    f"{fmt_ratio(best[label] / stored) if stored else '—'} | {peak:.1f} MB | "
                    f"{work} |")
    return (f"#### {steps:,} steps at F = {LONG_F}: checkpointed gradients\n\n"
            "Each run in a child process of its own (one thread), the tools interleaved, best "
            f"of {1 if quick else rounds} rounds. Peak memory: the growth of the process's "
            "peak RSS from before the build (the library imported) to after the timed calls, "
            "the build's included (to_c's lowering of the stored carries; the C compiler runs "
            "in a process of its own). to_c's working memory: its registers and the loops' "
            "scratch for a chunk of 8 points.\n\n| gradient | build | evaluation | × to_c "
            "stored | peak memory | to_c working memory |\n|---|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")


if __name__ == "__main__":
    print(run())
