"""A matmul chain with elementwise layers (issue 28): the gradient through ``to_numpy``,
``to_c`` (which gives a tensor circuit this large ``to_fused``'s NumPy calls and fused C loops)
and JAX ``jit(value_and_grad)``, side by side in one run.

    J = sum(tanh(A @ sin(B @ X)) * Y),   A, B, X, Y of shape (n, n)

For each n: the build (trace → grad → lower → first value; for JAX: jit and the first call)
and the evaluation of value and gradient with respect to A and B, as ratios to JAX measured in
the same run (below 1: circuitgrad faster). The numbers are checked to agree first. The matmuls
are BLAS-bound: the run states OpenBLAS's thread count (set ``OPENBLAS_NUM_THREADS=1`` for the
one-thread figures).

    python -m benchmarks --only tensor_chain
"""

from __future__ import annotations

import importlib.util
import os
import time
from typing import Any, Callable

import numpy as np

import circuitgrad as cg

from .harness import fmt_ratio, fmt_time, median_time, plot_loglog

SIZES = [32, 100, 316, 1000]
QUICK_SIZES = [100, 316]
WRT = ("A", "B")


def chain(xp: Any) -> Callable[..., Any]:
    def J(A, B, X, Y):
        return xp.sum(xp.tanh(A @ xp.sin(B @ X)) * Y)
    return J


def point(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(n)
    return {k: rng.normal(size=(n, n)) / np.sqrt(n) for k in ("A", "B", "X", "Y")}


def circuitgrad_chain(n: int, lower: Callable[[cg.Circuit], Any]) -> Callable[[dict], tuple]:
    c = cg.trace(chain(np), shapes={k: (n, n) for k in ("A", "B", "X", "Y")})
    f = lower(cg.grad(c, wrt=list(WRT)))
    return lambda p: tuple(f(**p))


def jax_chain(n: int) -> Callable[[dict], tuple]:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    vg = jax.jit(jax.value_and_grad(chain(jnp), argnums=(0, 1)))

    def call(p):
        value, grads = vg(p["A"], p["B"], p["X"], p["Y"])
        value.block_until_ready()
        return (float(value), *(np.asarray(g) for g in grads))

    return call


def ratio(a: float, b: float | None) -> str:
    return fmt_ratio(a / b) if b else "—"


def _build(make: Callable[[], Any], at: dict) -> tuple[float, Any, tuple]:
    t0 = time.perf_counter()
    f = make()
    result = f(at)
    return time.perf_counter() - t0, f, result


def run(quick: bool = False) -> str:
    has_jax = importlib.util.find_spec("jax") is not None
    rows = ["| n | to_numpy build | to_c build | JAX build | to_numpy ∇ | to_c ∇ | JAX ∇ | "
            "to_numpy × JAX | to_c × JAX | to_c × to_numpy |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    sizes = QUICK_SIZES if quick else SIZES
    series: dict[str, tuple[list, list]] = {k: ([], []) for k in
                                            ("circuitgrad to_numpy", "circuitgrad to_c", "JAX jit")}
    for n in sizes:
        at = point(n)
        t_np, f_np, ours = _build(lambda: circuitgrad_chain(n, cg.to_numpy), at)
        t_c, f_c, fused = _build(lambda: circuitgrad_chain(n, cg.to_c), at)
        for a, b in zip(ours, fused):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        e_np = median_time(lambda: f_np(at), budget=1.0)
        e_c = median_time(lambda: f_c(at), budget=1.0)
        if has_jax:
            t_jax, f_jax, theirs = _build(lambda: jax_chain(n), at)
            for a, b in zip(ours, theirs):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
            e_jax = median_time(lambda: f_jax(at), budget=1.0)
        else:
            t_jax = e_jax = None
        rows.append(f"| {n} | {fmt_time(t_np)} | {fmt_time(t_c)} | {fmt_time(t_jax)} | "
                    f"{fmt_time(e_np)} | {fmt_time(e_c)} | {fmt_time(e_jax)} | "
                    f"{ratio(e_np, e_jax)} | {ratio(e_c, e_jax)} | {ratio(e_c, e_np)} |")
        for label, e in (("circuitgrad to_numpy", e_np), ("circuitgrad to_c", e_c),
                         ("JAX jit", e_jax)):
            series[label][0].append(n)
            series[label][1].append(e)
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset (OpenBLAS's default)")
    img = plot_loglog("bench_tensor_chain", "Gradient of sum(tanh(A @ sin(B @ X)) * Y)",
                      "n (matrices n × n)", "seconds per value and gradient", series,
                      note=f"OPENBLAS_NUM_THREADS={threads}")
    head = ("### A matmul chain with elementwise layers: gradient\n\n"
            "`J = sum(tanh(A @ sin(B @ X)) * Y)` with n × n matrices, ∇ with respect to A and B. "
            "circuitgrad: `trace` → `grad` → `to_numpy` or `to_c` (above its scalar limit `to_c` "
            "gives `to_fused`: NumPy's BLAS for the products, fused C loops for the elementwise "
            "runs of ≥ 1024 entries); JAX: `jit(value_and_grad)`, float64. Build = from nothing "
            f"to the first value and gradient. OPENBLAS_NUM_THREADS: {threads}.\n\n")
    plot = f"\n![evaluation time vs n]({img})\n" if img else ""
    return head + "\n".join(rows) + "\n" + plot


if __name__ == "__main__":
    print(run())
