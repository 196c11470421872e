"""NumPy programs as people write them: vectorized Rosenbrock, and a Python loop over entries.

* Vectorized Rosenbrock ``np.sum(100 (x[1:] − x[:−1]²)² + (1 − x[:−1])²)`` at n = 10², 10⁴,
  10⁶ through ``trace → grad → to_numpy``, against ``jax.jit(jax.value_and_grad)`` and the
  gradient written by hand in NumPy: build (to the first value) and evaluation (medians), as
  ratios measured in the same run.
* The loop ``sum(sin(x[i]) * x[i] for i in range(n))``, n = 10³, 10⁴, 10⁵: build time per
  entry, adjoint nodes per entry and peak memory of one gradient evaluation, which must all
  stay flat (one ``scatter_add`` for all reads, not a dense array per read).

    python -m benchmarks.vectorized
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

import circuitgrad as cg

SIZES = (100, 10_000, 1_000_000)
LOOP_SIZES = (1_000, 10_000, 100_000)


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def rosen_value_and_grad(x):
    """The gradient written by hand, as a NumPy user would."""
    t = x[1:] - x[:-1] ** 2
    u = 1 - x[:-1]
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * t - 2.0 * u
    g[1:] += 200.0 * t
    return np.sum(100.0 * t**2 + u**2), g


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _jax(x):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def f(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    start = time.perf_counter()
    step = jax.jit(jax.value_and_grad(f))
    xj = jnp.asarray(x)
    J, g = step(xj)
    g.block_until_ready()
    build = time.perf_counter() - start
    return build, (lambda: step(xj)[1].block_until_ready()), np.asarray(g)


def rosenbrock_table(sizes) -> str:
    rows = ["| n | circuitgrad build ms | JAX build ms (×) | circuitgrad eval ms | "
            "hand-written ms (×) | JAX eval ms (×) |", "|---|---|---|---|---|---|"]
    for n in sizes:
        x = np.random.default_rng(0).uniform(-1, 2, size=n)
        start = time.perf_counter()
        f = cg.to_numpy(cg.grad(cg.trace(rosen, shapes={"x": (n,)})))
        out = f(x)
        build = time.perf_counter() - start
        J, g = rosen_value_and_grad(x)
        np.testing.assert_allclose(out.df_dx, g, rtol=1e-12, atol=1e-9)
        repeats = 200 if n <= 10_000 else 15
        ours = min(_median(lambda: f(x), repeats) for _ in range(3))
        hand = min(_median(lambda: rosen_value_and_grad(x), repeats) for _ in range(3))
        jax_cells = "missing", "missing"
        peer = _jax(x)
        if peer is not None:
            jbuild, jstep, jg = peer
            np.testing.assert_allclose(jg, g, rtol=1e-12, atol=1e-9)
            jeval = min(_median(jstep, repeats) for _ in range(3))
            jax_cells = (f"{1e3 * jbuild:.1f} (×{jbuild / build:.2f})",
                         f"{1e3 * jeval:.3f} (×{jeval / ours:.2f})")
        rows.append(f"| {n:,} | {1e3 * build:.1f} | {jax_cells[0]} | {1e3 * ours:.3f} | "
                    f"{1e3 * hand:.3f} (×{hand / ours:.2f}) | {jax_cells[1]} |")
    return "\n".join(rows)


def loop_table(sizes) -> str:
    rows = ["| n | build s | build µs / entry | adjoint nodes / entry | scatter_add nodes | "
            "gradient eval ms | peak MB of one evaluation |", "|---|---|---|---|---|---|---|"]
    for n in sizes:
        start = time.perf_counter()
        c = cg.trace(lambda x: sum(cg.sin(x[i]) * x[i] for i in range(n)), shapes={"x": (n,)})
        g = cg.grad(c)
        f = cg.to_numpy(g)
        x = np.linspace(0.1, 1.0, n)
        f(x)
        build = time.perf_counter() - start
        scatters = sum(1 for i in range(len(g)) if g.op(i) == "scatter_add")
        evaluation = _median(lambda: f(x), 5)
        tracemalloc.start()
        f(x)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append(f"| {n:,} | {build:.2f} | {1e6 * build / n:.1f} | {g.size / n:.2f} | "
                    f"{scatters} | {1e3 * evaluation:.1f} | {peak / 2**20:.1f} |")
    return "\n".join(rows)


def run(quick: bool = False) -> str:
    """The two tables, in markdown."""
    sizes = SIZES[:2] if quick else SIZES
    loops = LOOP_SIZES[:2] if quick else LOOP_SIZES
    return ("### Vectorized Rosenbrock: trace → grad → to_numpy\n\n"
            "Build = trace, grad, to_numpy and the first value (JAX: jit of value_and_grad "
            "and its first call); eval = one (value, gradient) call, best of 3 medians. "
            "× = that tool's time / circuitgrad's.\n\n" + rosenbrock_table(sizes) +
            "\n\n### A Python loop over the entries of a vector\n\n"
            "`sum(sin(x[i]) * x[i] for i in range(n))` traced: all reads of `x` add into one "
            "`scatter_add`, so nodes, build time and memory per entry stay flat.\n\n"
            + loop_table(loops) + "\n")


if __name__ == "__main__":
    print(run())
