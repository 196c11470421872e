"""Gaussian-mixture objective and its gradient (the ADBench GMM of Srajer, Habib and Wolf,
"A benchmark of selected algorithmic differentiation tools on some problems in computer vision
and machine learning", 2018): circuitgrad's ``to_numpy`` against ``jax.jit(jax.value_and_grad)``.

The objective, from its published definition: for n points x in R^d and K components with
weights α, means μ and inverse-covariance factors Q = L·diag(exp q) (q the log-diagonal, L
strictly lower triangular, both packed in ``icf``),

    Σᵢ logsumexpₖ(αₖ + Σ qₖ − ½‖Qₖ(xᵢ − μₖ)‖²) − n·logsumexp(α) + log Wishart prior(Q; γ, m),

up to the constant −n·d/2·log 2π. Both tools trace the same NumPy-style code (written once,
over the module ``xp``); the benchmark checks they give the same value and gradient, then times
the build (trace → first value and gradient) and the evaluation.

    python -m benchmarks --only gmm
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import math
import os
import tempfile
import time
from typing import Any, Callable

import numpy as np

import circuitgrad as cg

from .harness import (fmt_ratio, fmt_time, measurement_timeout, median_time, plot_loglog,
                      run_bounded, suite_cpus)

N = 1000
SIZES = [(2, 5), (2, 50), (10, 5), (10, 50)]  # (d, K)
QUICK_SIZES = [(2, 5), (10, 5)]
GAMMA, WISHART_M = 1.0, 0


def lower_triangle_index(d: int) -> np.ndarray:
    """For each (row, column) of a d×d matrix, the position in [0, icf's strict lower part]
    that holds its entry: 0 (a zero put in front) above and on the diagonal."""
    index = np.zeros((d, d), dtype=np.int64)
    k = 1
    for j in range(d):  # ADBench packs the strict lower part column by column
        for i in range(j + 1, d):
            index[i, j] = k
            k += 1
    return index


def broadcast_product(xp: Any) -> Callable[..., Any]:
    """``Lₖ (xᵢ − μₖ)`` for every i, k as a broadcast product and a sum: (n, K, d, d) scalars."""
    return lambda L, centered: xp.sum(L[None, :, :, :] * centered[:, :, None, :], axis=3)


def einsum_product(xp: Any) -> Callable[..., Any]:
    """The same as one contraction, as a JAX user writes it."""
    return lambda L, centered: xp.einsum("kij,nkj->nki", L, centered)


def objective(xp: Any, logsumexp: Callable[..., Any], d: int, K: int,
              product: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """The GMM objective over the array module ``xp`` (NumPy for circuitgrad's trace,
    jax.numpy for JAX), with that tool's stable ``logsumexp(a, axis)`` and ``product(L, x)``
    (default: the broadcast product)."""
    product = product or broadcast_product(xp)
    index = lower_triangle_index(d)
    p, n_w = d, d + WISHART_M + 1
    log_gamma = math.log(math.pi) * p * (p - 1) / 4 + sum(
        math.lgamma(0.5 * n_w + (1 - j) / 2) for j in range(1, p + 1))
    C = n_w * p * (math.log(GAMMA) - 0.5 * math.log(2)) - log_gamma
    constant = -N * d * 0.5 * math.log(2 * math.pi)

    def gmm(alphas, means, icf, x):
        q = icf[:, :d]                                            # (K, d) log-diagonal
        sum_qs = xp.sum(q, axis=1)                                # (K,)
        packed = xp.concatenate([xp.zeros_like(icf[:, :1]), icf[:, d:]], axis=1)
        L = xp.reshape(packed[:, index.ravel()], (K, d, d))       # strictly lower
        centered = x[:, None, :] - means[None, :, :]              # (n, K, d)
        Qx = xp.exp(q)[None, :, :] * centered + product(L, centered)
        inner = alphas[None, :] + sum_qs[None, :] - 0.5 * xp.sum(Qx * Qx, axis=2)  # (n, K)
        fit = xp.sum(logsumexp(inner, 1)) - N * logsumexp(alphas, 0)
        prior = xp.sum(0.5 * GAMMA ** 2 * (xp.sum(xp.exp(2.0 * q), axis=1)
                                           + xp.sum(icf[:, d:] ** 2, axis=1))
                       - WISHART_M * sum_qs) - K * C
        return constant + fit + prior

    return gmm


def point(d: int, K: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"alphas": rng.normal(size=K), "means": rng.uniform(size=(K, d)),
            "icf": rng.normal(size=(K, d + d * (d - 1) // 2)) * 0.3,
            "x": rng.normal(size=(N, d))}


WRT = ("alphas", "means", "icf")


def circuitgrad_gmm(d: int, K: int, lower: Callable[..., Any] = cg.to_numpy
                    ) -> Callable[[dict], tuple]:
    """trace → grad → ``lower``; the callable returns (value, gradients in WRT's order)."""
    at = point(d, K)
    fn = objective(np, lambda a, axis: cg.logsumexp(a, axis=axis), d, K)
    c = cg.trace(fn, shapes={k: v.shape for k, v in at.items()})
    f = lower(cg.grad(c, wrt=list(WRT)))

    def call(p: dict) -> tuple:
        return tuple(f(**p))

    call.function = f  # (to_fused's: ``wait()`` for its kernels)
    return call


def jax_gmm(d: int, K: int, einsum: bool = True) -> Callable[[dict], tuple] | None:
    try:
        import jax
        import jax.numpy as jnp
        from jax.scipy.special import logsumexp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    fn = objective(jnp, lambda a, axis: logsumexp(a, axis=axis), d, K,
                   einsum_product(jnp) if einsum else None)
    vg = jax.jit(jax.value_and_grad(fn, argnums=(0, 1, 2)))

    def call(p):
        value, grads = vg(p["alphas"], p["means"], p["icf"], p["x"])
        value.block_until_ready()
        return (float(value), *(np.asarray(g) for g in grads))

    return call


def fused_gmm(d: int, K: int, wait: bool = True) -> Callable[[dict], tuple]:
    """trace → grad → ``to_fused(wait=wait)``: with ``wait=False`` it returns before the
    compiler has run, and the first values are ``to_numpy``'s code's."""
    return circuitgrad_gmm(d, K, functools.partial(cg.to_fused, wait=wait))


def unwaited_fused_gmm(d: int, K: int) -> Callable[[dict], tuple]:
    return fused_gmm(d, K, wait=False)


@contextlib.contextmanager
def empty_cache() -> Any:
    """``$CIRCUITGRAD_CACHE`` set to a fresh empty directory inside the block."""
    saved = os.environ.get("CIRCUITGRAD_CACHE")
    with tempfile.TemporaryDirectory() as empty:
        os.environ["CIRCUITGRAD_CACHE"] = empty
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("CIRCUITGRAD_CACHE")
            else:
                os.environ["CIRCUITGRAD_CACHE"] = saved


def warm_up_jax() -> None:
    """JAX's start-up (its backend, the first compile of anything) outside the builds timed:
    they are then its compile and first call of each size's gradient alone."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return
    jax.config.update("jax_enable_x64", True)
    jax.jit(jax.value_and_grad(lambda x: jnp.sum(jnp.exp(x))))(jnp.ones(3))[0].block_until_ready()


def _build(make: Callable[[int, int], Any], d: int, K: int) -> tuple[float, Any, tuple]:
    """Seconds from nothing to the first value and gradient, the callable, its result."""
    at = point(d, K)
    t0 = time.perf_counter()
    f = make(d, K)
    result = f(at)
    return time.perf_counter() - t0, f, result


def measure(emit: Callable[[str, Any], None], quick: bool, builds: bool) -> None:
    """Child: each size's best-of-rounds times (``"d,K tool"``) of to_numpy (with ``builds``),
    to_fused and JAX, interleaved, after checking that they agree; with ``builds`` also the
    build times (``"d,K build tool"``)."""
    has_jax = importlib.util.find_spec("jax") is not None
    if builds:
        warm_up_jax()
        with empty_cache():  # (the C compiler's and the loader's first runs, untimed)
            _build(fused_gmm, 2, 2)
    for d, K in QUICK_SIZES if quick else SIZES:
        at = point(d, K)
        key = f"{d},{K}"
        first = None
        if builds:  # (first of this size: no build before it has made arrays of its shapes)
            with empty_cache():  # wait=False: the first value before the compiler has run
                t, f, first = _build(unwaited_fused_gmm, d, K)
                emit(f"{key} build to_fused nowait", t)
                f.function.wait()  # (its compilers done before the next build is timed)
        t_cg, f_cg, ours = _build(circuitgrad_gmm, d, K)
        for a, b in zip(ours, first or ()):  # (to_numpy's code, or the kernels if done)
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
        if builds:  # to_fused from nothing: its C compiled into an empty cache, then cached
            with empty_cache():
                emit(f"{key} build to_fused cold", _build(fused_gmm, d, K)[0])
                emit(f"{key} build to_fused cached", _build(fused_gmm, d, K)[0])
        f_fused = fused_gmm(d, K)
        for a, b in zip(ours, f_fused(at)):  # the same numbers within the contract
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
        tools = {"to_fused": f_fused}
        if builds:
            tools["to_numpy"] = f_cg
            emit(f"{key} build circuitgrad", t_cg)
        if has_jax:
            t_jax, f_jax, theirs = _build(jax_gmm, d, K)
            for a, b in zip(ours, theirs):  # the same numbers, or the timing means nothing
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
            tools["JAX"] = f_jax
            if builds:
                emit(f"{key} build JAX", t_jax)
        # interleaved rounds, the best median of each: a drift of the machine hits all three
        best = dict.fromkeys(tools, float("inf"))
        for _ in range(3 if quick else 5):
            for name, f in tools.items():
                best[name] = min(best[name], median_time(lambda: f(at), budget=0.2))
        for name, t in best.items():
            emit(f"{key} {name}", t)


def run(quick: bool = False) -> str:
    timeout = max(measurement_timeout(quick), 300.0)
    one = run_bounded("benchmarks.gmm:measure", {"quick": quick, "builds": True}, timeout,
                      cpus="one")
    every = run_bounded("benchmarks.gmm:measure", {"quick": quick, "builds": False}, timeout,
                        cpus="all")
    cores = len(suite_cpus())
    rows = ["| d | K | scalars | JAX build | to_numpy build (×) | to_fused build, empty cache, "
            "wait=False (×) | wait=True (×) | cached (×) | to_numpy ∇ | to_fused ∇ | JAX ∇ | "
            f"to_numpy × | to_fused × | {cores} CPUs: to_fused ∇ | JAX ∇ | to_fused × |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    series: dict[str, tuple[list, list]] = {k: ([], []) for k in (
        "circuitgrad to_numpy, 1 CPU", "circuitgrad to_fused, 1 CPU", "JAX jit, 1 CPU",
        f"circuitgrad to_fused, {cores} CPUs", f"JAX jit, {cores} CPUs")}
    failed = [f"{what}: {_status(r)}" for what, r in (("one CPU", one), ("all CPUs", every))
              if r.timed_out or r.error]
    for d, K in QUICK_SIZES if quick else SIZES:
        key, scalars = f"{d},{K}", N * K * d * d
        v, w = one.values, every.values

        def cell(values: dict, name: str) -> str:
            return fmt_time(values[name]) if name in values else "—"

        def ratio(values: dict, a: str, b: str) -> str:
            return fmt_ratio(values[a] / values[b]) if a in values and b in values else "—"

        builds = [f"{cell(v, f'{key} build {tool}')} "
                  f"({ratio(v, f'{key} build {tool}', f'{key} build JAX')})"
                  for tool in ("circuitgrad", "to_fused nowait", "to_fused cold",
                               "to_fused cached")]
        rows.append(f"| {d} | {K} | {scalars:,} | {cell(v, f'{key} build JAX')} | "
                    f"{' | '.join(builds)} | "
                    f"{cell(v, f'{key} to_numpy')} | {cell(v, f'{key} to_fused')} | "
                    f"{cell(v, f'{key} JAX')} | {ratio(v, f'{key} to_numpy', f'{key} JAX')} | "
                    f"{ratio(v, f'{key} to_fused', f'{key} JAX')} | "
                    f"{cell(w, f'{key} to_fused')} | {cell(w, f'{key} JAX')} | "
                    f"{ratio(w, f'{key} to_fused', f'{key} JAX')} |")
        for label, (values, name) in zip(series, ((v, "to_numpy"), (v, "to_fused"), (v, "JAX"),
                                                  (w, "to_fused"), (w, "JAX"))):
            if f"{key} {name}" in values:
                series[label][0].append(scalars)
                series[label][1].append(values[f"{key} {name}"])
    head = (f"### Gaussian-mixture objective + gradient (ADBench GMM, n = {N})\n\n"
            "circuitgrad: `trace` → `grad` → `to_numpy` (and `to_fused`); JAX: "
            "`jit(value_and_grad)`, float64, with `einsum` for Q·x (its fastest form here; "
            "circuitgrad's trace uses the broadcast product). Left: every tool in a child "
            "process **pinned to one CPU** (its threads share it: XLA's flags alone still let "
            "it use ~1.7 CPUs), OpenBLAS told one thread. Right: a child on all "
            f"{cores} CPUs, each library's default threads. Build = trace → first value and "
            "gradient, measured in the same child as JAX's `jit(value_and_grad)` compile and "
            "first call (JAX's start-up before, untimed); to_fused's into a fresh empty cache "
            "each: `wait=False` (the first value from to_numpy's code while the compilers run "
            "in the background), `wait=True` (compiled, then the "
            "first value), then cached (the same build again, its libraries found in the "
            "cache); × = circuitgrad / JAX (below 1: circuitgrad faster). Scalars: "
            "the largest intermediate, n·K·d². Times: the best of interleaved rounds "
            "(medians).\n\n")
    img = plot_loglog("bench_gmm", f"GMM objective and gradient (n = {N})",
                      "n·K·d² (the largest intermediate; d = 2, 10 and K = 5, 50)",
                      "seconds per value and gradient", series,
                      note=f"1 CPU: pinned; {cores} CPUs: the libraries' default threads")
    plot = f"\n![evaluation time vs size]({img})\n" if img else ""
    tail = "".join(f"\n**failed** — {f}\n" for f in failed)
    return head + "\n".join(rows) + "\n" + tail + plot


def _status(r: Any) -> str:
    return "timed out" if r.timed_out else f"error: {r.error}"


if __name__ == "__main__":
    print(run())
