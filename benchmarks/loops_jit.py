"""``jax.jit`` of ``to_numpy(grad(c))`` for benchmarks/loops.py's RK4 Lorenz-96 loop: the first
call (the trace, then XLA's compile) and a call after, by trip count; eager JAX beside it. Each
loop is one ``lax.scan`` on JAX (docs/loops.md, "Evaluation"); ``--python-loop`` runs JAX's
loops as the Python loop instead (unrolled by the trace: minutes at 100 steps).

    python -m benchmarks.loops_jit 10 100 1000
    python -m benchmarks.loops_jit --python-loop 10 30

Not part of ``python -m benchmarks`` (it needs JAX, and the unrolled case takes minutes).
"""

from __future__ import annotations

import sys
import time

import numpy as np

import circuitgrad as cg

from .loops import F0, N_STATES, scan_loss


def measure(steps: int) -> str:
    import jax
    import jax.numpy as jnp

    c = cg.trace(scan_loss(steps), shapes={"x0": N_STATES, "forcing": ()})
    f = cg.to_numpy(cg.grad(c))
    x0 = np.sin(np.arange(N_STATES)) + 0.5
    want = f(x0, F0)
    jitted = jax.jit(lambda x, forcing: tuple(f(x, forcing)))
    x, forcing = jnp.asarray(x0), jnp.asarray(F0)
    start = time.perf_counter()
    lowered = jitted.lower(x, forcing)
    traced = time.perf_counter() - start
    compiled = lowered.compile()
    first = time.perf_counter() - start
    got = compiled(x, forcing)

    def best(call, rounds: int) -> float:
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            jax.block_until_ready(call())
            times.append(time.perf_counter() - t)
        return min(times)

    call = best(lambda: compiled(x, forcing), 30)
    eager = f(x, forcing)
    eager_call = best(lambda: f(x, forcing), 5)
    numpy_call = best(lambda: f(x0, F0), 3)
    err = max(float(np.max(np.abs(np.asarray(g) - w) / np.abs(w)))
              for out in (got, eager) for g, w in zip(out, want))
    return (f"| {steps} | {first:.2f} s (trace {traced:.2f} s) | {call * 1e3:.3f} ms "
            f"| {eager_call * 1e3:.1f} ms | {numpy_call * 1e3:.1f} ms | {err:.1e} |")


def main(argv: list[str]) -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    if argv and argv[0] == "--python-loop":
        from circuitgrad.primitives import loops

        loops._Jax.scan = loops._Library.scan  # type: ignore[method-assign]
        argv = argv[1:]
    print("| steps | jit: first call | a call | eager JAX a call | NumPy a call "
          "| largest relative difference from NumPy |")
    print("|---|---|---|---|---|---|")
    for steps in map(int, argv or ["100", "1000"]):
        print(measure(steps), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
