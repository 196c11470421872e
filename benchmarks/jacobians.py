"""Jacobians and Hessians as matrices: dense against JAX and CasADi, sparse against CasADi.

* Dense: the Jacobian of f(x) = tanh(W sin x), f: Rⁿ → Rᵐ with a fixed random W, for n, m ∈
  {10, 100, 1000}, by ``cg.jacobian`` (mode "auto": min(m, n) sweeps) against
  ``jax.jit(jax.jacrev(f))``, ``jax.jit(jax.jacfwd(f))`` and CasADi's ``jacobian`` of the MX
  expression. Build = everything up to the first matrix; eval = one matrix, median.
* Sparse: the tridiagonal Jacobian of the discrete boundary value function, the
  tridiagonal Hessian of the chained Rosenbrock function and an arrowhead Hessian (a dense
  last row and column) at n = 10³, 10⁴, 10⁵, by
  ``cg.jacobian(..., sparse=True)`` and ``cg.hessian(..., sparse=True)`` (scipy CSR out)
  against CasADi's ``jacobian`` and ``hessian`` of the SX expression (its CSC out): colors
  (= sweeps), build and evaluation time. The values are checked against each other.

Every ratio is that tool's time / circuitgrad's, measured in the same run. Peers that are not
installed are reported as "missing".

    python -m benchmarks --only jacobians
"""

from __future__ import annotations

import time

import numpy as np

import circuitgrad as cg

from .harness import (best_times, fmt_n, fmt_ratio, fmt_time, median_time, plot_loglog,
                      table)

DENSE_SIZES = (10, 100, 1000)
SPARSE_SIZES = (1_000, 10_000, 100_000)


def _weights(m: int, n: int) -> np.ndarray:
    return np.random.default_rng(m * 7919 + n).normal(size=(m, n)) / np.sqrt(n)


def _first(fn):
    """(seconds, value) of building and the first call."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


# -- dense -------------------------------------------------------------------------------------

def _circuitgrad_dense(W, x):
    def build():
        c = cg.trace(lambda v: np.tanh(W @ np.sin(v)), shapes={"v": (W.shape[1],)})
        j = cg.jacobian(c)
        f = cg.to_numpy(j)
        return f, j.meta["sweeps"], f(x)[1]

    seconds, (f, sweeps, matrix) = _first(build)
    return seconds, (lambda: f(x)), matrix, sweeps


def _jax_dense(W, x, mode):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def build():
        Wj = jnp.asarray(W)
        transform = jax.jacrev if mode == "jacrev" else jax.jacfwd
        step = jax.jit(transform(lambda v: jnp.tanh(Wj @ jnp.sin(v))))
        xj = jnp.asarray(x)
        return step, xj, np.asarray(step(xj).block_until_ready())

    seconds, (step, xj, matrix) = _first(build)
    return seconds, (lambda: step(xj).block_until_ready()), matrix


def _casadi_dense(W, x):
    try:
        import casadi as ca
    except ImportError:
        return None

    def build():
        v = ca.MX.sym("v", W.shape[1])
        f = ca.tanh(ca.mtimes(ca.DM(W), ca.sin(v)))
        fn = ca.Function("J", [v], [ca.jacobian(f, v)])
        return fn, np.asarray(fn(x))

    seconds, (fn, matrix) = _first(build)
    return seconds, (lambda: fn(x)), matrix


def dense_table(sizes) -> tuple[str, dict]:
    rows, timings = [], {}
    W, x = _weights(3, 3), np.ones(3)  # imports and one-time caches, outside the timings
    _circuitgrad_dense(W, x), _jax_dense(W, x, "jacrev"), _casadi_dense(W, x)
    for n in sizes:
        for m in sizes:
            W = _weights(m, n)
            x = np.random.default_rng(n).uniform(-1, 1, n)
            build, call, want, sweeps = _circuitgrad_dense(W, x)
            ours = median_time(call, budget=0.5)
            row = [fmt_n(n), fmt_n(m), sweeps, fmt_time(build), fmt_time(ours)]
            timings[n, m] = {"circuitgrad": ours}
            for name, peer in (("jacrev", lambda: _jax_dense(W, x, "jacrev")),
                               ("jacfwd", lambda: _jax_dense(W, x, "jacfwd")),
                               ("casadi", lambda: _casadi_dense(W, x))):
                got = peer()
                if got is None:
                    row += ["missing", "missing"]
                    continue
                pbuild, pcall, matrix = got
                np.testing.assert_allclose(matrix, want, rtol=1e-10, atol=1e-12)
                theirs = median_time(pcall, budget=0.5)
                timings[n, m][name] = theirs
                row += [f"{fmt_time(pbuild)} (×{fmt_ratio(pbuild / build)})",
                        f"{fmt_time(theirs)} (×{fmt_ratio(theirs / ours)})"]
            rows.append(row)
    headers = ["n", "m", "sweeps", "circuitgrad build", "circuitgrad eval",
               "JAX jacrev build (×)", "JAX jacrev eval (×)", "JAX jacfwd build (×)",
               "JAX jacfwd eval (×)", "CasADi build (×)", "CasADi eval (×)"]
    return table(headers, rows), timings


# -- dense, in one batched call (issue 29) ------------------------------------------------------

def _matvec_map(n: int, xp=np):
    W = _weights(n, n)
    Wx = W if xp is np else xp.asarray(W)
    return lambda v: xp.tanh(Wx @ xp.sin(v))


def _two_layer_map(n: int, xp=np):
    """Two products: the second meets dense seed vectors (a gemm), where the first meets the
    identity's rows times cos x (forward) or the last 1 − f² (reverse)."""
    W1 = _weights(n, n)
    W2 = W1[::-1].copy()  # another matrix of the same law
    if xp is not np:
        W1, W2 = xp.asarray(W1), xp.asarray(W2)
    return lambda v: xp.tanh(W2 @ xp.tanh(W1 @ xp.sin(v)))


def _elementwise_map(n: int, xp=np):
    return lambda v: xp.tanh(v * xp.sin(xp.sum(v)) + xp.cos(v) * xp.exp(-v ** 2))


def _diagonal_map(n: int, xp=np):
    """No product and no reduction: a diagonal Jacobian, 2 compressed seeds (one color and
    the zero seed) where the identity has n."""
    return lambda v: xp.sin(v) * xp.exp(v)


BATCHED_MAPS = {"tanh(W sin x)": _matvec_map,
                "tanh(W₂ tanh(W₁ sin x))": _two_layer_map,
                "tanh(x sin(Σx) + cos x · exp(−x²))": _elementwise_map,
                "sin x · exp x": _diagonal_map}


def batched_table(sizes) -> tuple[str, dict]:
    """``cg.jacobian_function`` (one sweep circuit, the identity's rows as a batch of seeds)
    lowered by ``to_numpy`` and ``to_c``, against ``to_numpy(cg.jacobian(c))`` (one sweep
    per entry in one circuit) and JAX's jitted ``jacrev`` and ``jacfwd``, f: Rⁿ → Rⁿ."""
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
    except ImportError:
        jax = None
    rows, timings = [], {}
    for label, make in BATCHED_MAPS.items():
        for n in sizes:
            x = np.random.default_rng(n).uniform(-1, 1, n)
            c = cg.trace(make(n), shapes={"v": (n,)})
            old_build, old = _first(lambda: cg.to_numpy(cg.jacobian(c)))
            want = old(x)[1]
            calls = {"circuit": lambda: old(x)}
            builds = {"circuit": old_build}
            seeds = {}
            for lower in (cg.to_numpy, cg.to_c):
                for mode in ("reverse", "forward"):
                    key = f"{lower.__name__} {mode}"
                    builds[key], jf = _first(lambda: cg.jacobian_function(c, mode=mode,
                                                                          lower=lower))
                    np.testing.assert_allclose(jf(x)[1], want, rtol=1e-10, atol=1e-12)
                    calls[key] = lambda jf=jf: jf(x)
                    builds[key + " kind"] = type(jf.function).__name__
                    seeds[mode] = jf.seeds
                    if lower is cg.to_numpy and jf.compression is not None:
                        # the same sweep on the identity's n rows, side by side
                        dense = cg.jacobian_function(c, mode=mode, lower=lower,
                                                     compress=False)
                        np.testing.assert_array_equal(dense(x)[1], jf(x)[1])
                        calls[key + " dense"] = lambda dense=dense: dense(x)
            for name in ("jacrev", "jacfwd"):
                if jax is None:
                    continue
                step = jax.jit(getattr(jax, name)(make(n, jnp)))
                xj = jnp.asarray(x)
                np.testing.assert_allclose(np.asarray(step(xj)), want, rtol=1e-10, atol=1e-12)
                calls[name] = lambda step=step, xj=xj: step(xj).block_until_ready()
            times = best_times(calls)  # interleaved: every call in each round
            timings[label, n] = times
            best = min(times[k] for k in times if k.startswith("to_")
                       and not k.endswith(" dense"))
            row = [label, fmt_n(n), f"{seeds['reverse']}, {seeds['forward']}",
                   fmt_time(times["circuit"])]
            for key in ("to_numpy reverse", "to_numpy forward", "to_c reverse", "to_c forward"):
                kind = "" if builds[key + " kind"] in ("NumpyFunction", "CFunction") else " (fused)"
                dense = (f"; n seeds {fmt_time(times[key + ' dense'])}"
                         if key + " dense" in times else "")
                row.append(f"{fmt_time(times[key])}{kind} (×{fmt_ratio(times['circuit'] / times[key])}"
                           f"{dense})")
            for name in ("jacrev", "jacfwd"):
                row.append(f"{fmt_time(times[name])} (×{fmt_ratio(times[name] / best)})"
                           if name in times else "missing")
            rows.append(row)
    headers = ["f", "n", "seeds rev, fwd", "jacobian circuit eval",
               "batched to_numpy rev (× circuit)",
               "batched to_numpy fwd (×)", "batched to_c rev (×)", "batched to_c fwd (×)",
               "JAX jacrev (× best batched)", "JAX jacfwd (× best batched)"]
    return table(headers, rows), timings


# -- sparse ------------------------------------------------------------------------------------

def boundary_residual(n: int, xp=np):
    """The discrete boundary value function, in NumPy (for the trace) or CasADi."""
    h = 1.0 / (n + 1)
    t = np.arange(1, n + 1) * h

    if xp is not np:
        t = xp.DM(t)

    def residual(x):
        zero = np.zeros(1) if xp is np else xp.DM.zeros(1)
        join = np.concatenate if xp is np else (lambda parts: xp.vertcat(*parts))
        below, above = join([zero, x[:-1]]), join([x[1:], zero])
        return 2 * x - below - above + h**2 / 2 * (x + t + 1) ** 3

    return residual


ARROWHEAD = "J = sum(square(x[:-1]) * x[-1]) + sum(cos(x))"  # a dense last row and column


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def _circuitgrad_sparse(kind: str, n: int, x: np.ndarray):
    def build():
        if kind == "jacobian":
            c = cg.trace(boundary_residual(n), shapes={"x": (n,)})
            s = cg.jacobian(c, sparse=True)
            name = "jacobian"
        else:
            c = (cg.trace(rosenbrock, shapes={"x": (n,)}) if kind == "hessian" else
                 cg.parse(ARROWHEAD, shapes={"x": (n,)}))
            s = cg.hessian(c, sparse=True)
            name = s.outputs[-1]
        f = cg.to_numpy(s)
        return f, name, s.meta["sweeps"], getattr(f(x=x), name)

    seconds, (f, name, sweeps, matrix) = _first(build)
    return seconds, (lambda: getattr(f(x=x), name)), matrix, sweeps


def _casadi_sparse(kind: str, n: int, x: np.ndarray):
    try:
        import casadi as ca
    except ImportError:
        return None

    def build():
        v = ca.SX.sym("x", n)
        if kind == "jacobian":
            f = boundary_residual(n, ca)(v)
            matrix = ca.jacobian(f, v)
            colors = ca.jacobian_sparsity(f, v).uni_coloring().size2()
        else:
            f = (ca.sum1(100 * (v[1:] - v[:-1] ** 2) ** 2 + (1 - v[:-1]) ** 2)
                 if kind == "hessian" else ca.sum1(v[:-1] ** 2 * v[-1]) + ca.sum1(ca.cos(v)))
            matrix, _ = ca.hessian(f, v)
            colors = matrix.sparsity().star_coloring().size2()
        fn = ca.Function("d", [v], [matrix])
        return fn, colors, fn(x).sparse()

    seconds, (fn, colors, matrix) = _first(build)
    return seconds, (lambda: fn(x)), matrix, colors


def sparse_table(sizes) -> tuple[str, dict]:
    rows, timings = [], {}
    for kind in ("jacobian", "hessian", "arrowhead"):  # imports and one-time caches, outside the timings
        _circuitgrad_sparse(kind, 10, np.ones(10)), _casadi_sparse(kind, 10, np.ones(10))
    for kind, problem in (("jacobian", "boundary value Jacobian"),
                          ("hessian", "Rosenbrock Hessian"), ("arrowhead", "arrowhead Hessian")):
        for n in sizes:
            x = np.random.default_rng(n).uniform(-1, 1, n)
            build, call, want, sweeps = _circuitgrad_sparse(kind, n, x)
            ours = median_time(call, budget=0.5)
            timings[kind, n] = {"circuitgrad": (build, ours)}
            row = [problem, fmt_n(n), want.nnz, sweeps, fmt_time(build), fmt_time(ours)]
            got = _casadi_sparse(kind, n, x)
            if got is None:
                row += ["missing"] * 3
            else:
                pbuild, pcall, matrix, colors = got
                diff = abs(matrix - want.tocsc())
                assert diff.max() <= 1e-9 * max(1.0, abs(want).max()), (kind, n)
                theirs = median_time(pcall, budget=0.5)
                timings[kind, n]["casadi"] = (pbuild, theirs)
                row += [colors, f"{fmt_time(pbuild)} (×{fmt_ratio(pbuild / build)})",
                        f"{fmt_time(theirs)} (×{fmt_ratio(theirs / ours)})"]
            rows.append(row)
    headers = ["problem", "n", "nonzeros", "circuitgrad sweeps", "circuitgrad build",
               "circuitgrad eval", "CasADi colors", "CasADi build (×)", "CasADi eval (×)"]
    return table(headers, rows), timings


def sparse_plot(sizes, timings) -> str | None:
    series = {}
    for kind, label in (("jacobian", "Jacobian"), ("hessian", "Hessian"),
                        ("arrowhead", "arrowhead")):
        for tool in ("circuitgrad", "casadi"):
            for k, what in ((0, "build"), (1, "eval")):
                ys = [timings[kind, n][tool][k] if tool in timings[kind, n] else None
                      for n in sizes]
                series[f"{tool} {label} {what}"] = (list(sizes), ys)
    return plot_loglog("bench_jacobians", "Sparse Jacobian and Hessians (banded, arrowhead): "
                       "build and evaluation time", "n", "seconds", series,
                       note="tridiagonal: 3 sweeps, arrowhead: 2, at every n; same run")


def run(quick: bool = False) -> str:
    """The dense and sparse tables and the plot, in markdown."""
    dense_sizes = DENSE_SIZES[:2] if quick else DENSE_SIZES
    sparse_sizes = SPARSE_SIZES[:2] if quick else SPARSE_SIZES
    dense, _ = dense_table(dense_sizes)
    batched, _ = batched_table(dense_sizes)
    sparse, timings = sparse_table(sparse_sizes)
    image = sparse_plot(sparse_sizes, timings)
    picture = f"\n\n![sparse Jacobian and Hessian times]({image})" if image else ""
    return ("## Jacobians and Hessians as matrices (issue 15)\n\n"
            "### Dense Jacobians: f(x) = tanh(W sin x), f: Rⁿ → Rᵐ\n\n"
            "circuitgrad: `trace → jacobian → to_numpy`, one sweep per entry of the smaller "
            "side (reverse for m ≤ n); JAX: `jit(jacrev)` and `jit(jacfwd)` (one batched "
            "sweep each); CasADi: `Function` of the MX `jacobian`. Build = up to the first "
            "matrix; eval = one matrix (median). × = that tool's time / circuitgrad's.\n\n"
            + dense +
            "\n\n### Dense Jacobians in one batched call: `cg.jacobian_function`, f: Rⁿ → Rⁿ\n\n"
            "One sweep circuit with its seed as an input (`jacobian_sweep`), called once on the "
            "identity's n rows as a batch of seeds (issue 29), lowered by `to_numpy` or `to_c` "
            "(scalar C code, or `to_fused` above its size limit: \"(fused)\"); against "
            "`to_numpy(cg.jacobian(c))`, one sweep per entry in one circuit (× = its time / "
            "the batched call's), and JAX's `jit(jacrev)`, `jit(jacfwd)` (× = JAX's time / "
            "the best batched call's). Seeds = per point, reverse and forward: n, or K + 1 "
            "compressed seeds where the sparsity pattern's coloring allows (K colors and a "
            "zero seed; \"n seeds\" = the same NumPy sweep with `compress=False`). Eval "
            "only: the best of interleaved rounds, the same run.\n\n"
            + batched +
            "\n\n### Sparse Jacobians and Hessians: banded and arrowhead\n\n"
            "The discrete boundary value function's Jacobian (tridiagonal) by "
            "`jacobian(sparse=True)`; the chained Rosenbrock Hessian (tridiagonal) and the "
            f"Hessian of the arrowhead `{ARROWHEAD}` (a column coloring would take n sweeps) "
            "by `hessian(sparse=True)` (star coloring); each returned as a `scipy.sparse` CSR "
            "matrix, against CasADi's SX `jacobian` / `hessian` (CSC out). Sweeps = colors "
            "of the coloring (CasADi's `uni_coloring` / `star_coloring` of the same pattern). "
            "Build = trace, pattern, coloring, sweeps, lowering and the first matrix.\n\n"
            + sparse + picture + "\n")


if __name__ == "__main__":
    print(run(quick=True))
