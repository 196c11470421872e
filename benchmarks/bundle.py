"""A bundle-adjustment Jacobian (issue 29): the sparse Jacobian of the reprojection residuals of
a generated problem (cameras, points, observations; the BAL camera model: Rodrigues rotation,
translation, focal length, two radial distortion terms), with default options.

circuitgrad: ``trace`` → ``jacobian(sparse=True)`` → ``to_numpy`` (no compiler) and ``to_c``
(tensor circuits this size go to ``to_fused``: NumPy's calls and fused C loops, compiled into
an empty cache, so the build includes the C compiler), a ``scipy.sparse.csr_array`` per
call; JAX: ``jit(vmap(jacfwd))`` of one observation's residual with respect to its camera
and its point (the 2×9 and 2×3 blocks, the layout a BA solver assembles); CasADi (where
installed, else "not installed"): ``jacobian`` of the vectorized SX expression (columns of
the gathered cameras and points), a ``Function``, its sparse matrix. The numbers are checked
to agree first. Build = from nothing to the first Jacobian (imports and one-time caches made
first, on a tiny problem); peak = tracemalloc's peak during another circuitgrad NumPy build
(not the one timed: tracemalloc slows it ~9×). Evaluation: the best of interleaved rounds,
every tool in each round.

    python -m benchmarks --only bundle
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
import tracemalloc
from typing import Any

import numpy as np

import circuitgrad as cg

from .harness import best_times, fmt_ratio, fmt_time

SIZES = [(20, 2_000, 10_000), (50, 10_000, 50_000)]  # cameras, points, observations
QUICK_SIZES = [(20, 2_000, 10_000)]


def problem(cams: int, points: int, observations: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    cameras = np.hstack([rng.normal(0, 0.1, (cams, 3)), rng.normal(0, 1, (cams, 2)),
                         rng.normal(-5, 0.5, (cams, 1)), rng.uniform(400, 600, (cams, 1)),
                         rng.normal(0, 0.01, (cams, 2))])
    return {"cameras": cameras, "points": rng.normal(0, 1, (points, 3)),
            "cam": rng.integers(0, cams, observations),
            "pt": rng.integers(0, points, observations),
            "observed": rng.normal(0, 50, (observations, 2))}


def project(xp: Any, c: Any, X: Any, observed: Any) -> Any:
    """BAL's residual, rows of observations: c (…, 9) cameras, X (…, 3) points."""
    w = c[..., 0:3]
    theta = xp.sqrt(xp.sum(w * w, axis=-1, keepdims=True) + 1e-30)
    k = w / theta
    kx, ky, kz = k[..., 0:1], k[..., 1:2], k[..., 2:3]
    x, y, z = X[..., 0:1], X[..., 1:2], X[..., 2:3]
    cross = xp.concatenate([ky * z - kz * y, kz * x - kx * z, kx * y - ky * x], axis=-1)
    dot = xp.sum(k * X, axis=-1, keepdims=True)
    P = X * xp.cos(theta) + cross * xp.sin(theta) + k * dot * (1.0 - xp.cos(theta))
    P = P + c[..., 3:6]
    p = -P[..., 0:2] / P[..., 2:3]
    r2 = xp.sum(p * p, axis=-1, keepdims=True)
    distortion = 1.0 + c[..., 7:8] * r2 + c[..., 8:9] * r2 * r2
    return c[..., 6:7] * distortion * p - observed


def circuitgrad_jacobian(data: dict, lower: Any = cg.to_numpy) -> tuple[Any, Any]:
    cam, pt, observed = data["cam"], data["pt"], data["observed"]

    def residuals(cameras, points):
        return project(np, cameras[cam], points[pt], observed).reshape(-1)

    c = cg.trace(residuals, shapes={"cameras": data["cameras"].shape,
                                    "points": data["points"].shape})
    f = lower(cg.jacobian(c, sparse=True))

    def call():
        return f(data["cameras"], data["points"])[-1]

    return call, c


def compiled_jacobian(data: dict) -> Any:
    """circuitgrad with ``to_c``, its C compiled into an empty cache (a build from nothing)."""
    before = os.environ.get("CIRCUITGRAD_CACHE")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["CIRCUITGRAD_CACHE"] = cache
        try:
            return circuitgrad_jacobian(data, cg.to_c)[0]
        finally:
            if before is None:
                del os.environ["CIRCUITGRAD_CACHE"]
            else:
                os.environ["CIRCUITGRAD_CACHE"] = before


def casadi_jacobian(data: dict) -> Any:
    """CasADi's sparse Jacobian of the residuals as one SX expression: the gathered cameras'
    and points' columns, the same arithmetic as :func:`project`, by column."""
    import casadi as ca

    cams, points = data["cameras"].shape[0], data["points"].shape[0]
    cs, ps = ca.SX.sym("c", cams, 9), ca.SX.sym("p", points, 3)
    C, X = cs[data["cam"].tolist(), :], ps[data["pt"].tolist(), :]
    observed = ca.DM(data["observed"])
    w = [C[:, i] for i in range(3)]
    theta = ca.sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2] + 1e-30)
    k = [wi / theta for wi in w]
    x = [X[:, i] for i in range(3)]
    cross = [k[1] * x[2] - k[2] * x[1], k[2] * x[0] - k[0] * x[2], k[0] * x[1] - k[1] * x[0]]
    dot = k[0] * x[0] + k[1] * x[1] + k[2] * x[2]
    cos, sin = ca.cos(theta), ca.sin(theta)
    P = [x[i] * cos + cross[i] * sin + k[i] * dot * (1.0 - cos) + C[:, 3 + i] for i in range(3)]
    p = [-P[0] / P[2], -P[1] / P[2]]
    r2 = p[0] * p[0] + p[1] * p[1]
    distortion = 1.0 + C[:, 7] * r2 + C[:, 8] * r2 * r2
    r = ca.horzcat(*(C[:, 6] * distortion * p[i] - observed[:, i] for i in range(2)))
    # (obs, 2) by rows, as residuals(...).reshape(-1); the variables as cameras' then points'
    z = ca.vertcat(ca.reshape(cs.T, -1, 1), ca.reshape(ps.T, -1, 1))
    fn = ca.Function("J", [cs, ps], [ca.jacobian(ca.reshape(r.T, -1, 1), z)])

    def call():
        return fn(data["cameras"], data["points"]).sparse()

    return call


def jax_jacobian(data: dict) -> Any:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    one = jax.jacfwd(lambda c, X, o: project(jnp, c, X, o), argnums=(0, 1))
    blocks = jax.jit(jax.vmap(one))

    def call():
        dc, dX = blocks(data["cameras"][data["cam"]], data["points"][data["pt"]],
                        data["observed"])
        dc.block_until_ready()
        return np.asarray(dc), np.asarray(dX)

    return call


def assemble(data: dict, dc: np.ndarray, dX: np.ndarray, shape: tuple) -> Any:
    """JAX's blocks as the (2·obs, 9·cams + 3·points) matrix, to check the numbers."""
    import scipy.sparse

    obs, cams = len(data["cam"]), len(data["cameras"])
    rows = np.repeat(np.arange(2 * obs), 12)
    cols = np.concatenate([data["cam"][:, None] * 9 + np.arange(9),
                           cams * 9 + data["pt"][:, None] * 3 + np.arange(3)], axis=1)
    cols = np.repeat(cols, 2, axis=0).reshape(-1)
    values = np.concatenate([dc.reshape(obs, 2, 9), dX.reshape(obs, 2, 3)], axis=2)
    return scipy.sparse.csr_array((values.reshape(-1), (rows, cols)), shape=shape)


def _build(make: Any) -> tuple[float, Any, Any]:
    """(seconds, the call, its first result) of a build from nothing to the first result."""
    t0 = time.perf_counter()
    call = make()
    result = call()
    return time.perf_counter() - t0, call, result


def _peak(make: Any) -> int:
    """tracemalloc's peak of another build, apart: tracemalloc slows Python's allocations
    (the 100,000-residual build took 35 s under it, 4 s without), so it is not timed."""
    tracemalloc.start()
    make()()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def run(quick: bool = False) -> str:
    has_jax = importlib.util.find_spec("jax") is not None
    has_casadi = importlib.util.find_spec("casadi") is not None
    rows = ["| cameras | points | residuals | nonzeros | circuitgrad build: to_numpy (peak) | "
            "to_c (C compile) | JAX build | CasADi build | circuitgrad J: to_numpy | to_c | "
            "JAX J | CasADi J | to_c ÷ JAX | to_c build ÷ CasADi |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    tiny = problem(2, 10, 20)  # imports and one-time caches, outside the timings
    circuitgrad_jacobian(tiny)[0](), compiled_jacobian(tiny)()
    if has_jax:
        jax_jacobian(tiny)()
    if has_casadi:
        casadi_jacobian(tiny)()
    for cams, points, obs in QUICK_SIZES if quick else SIZES:
        data = problem(cams, points, obs)
        t_cg, call_cg, ours = _build(lambda: circuitgrad_jacobian(data)[0])
        peak = _peak(lambda: circuitgrad_jacobian(data)[0])
        t_c, call_c, compiled = _build(lambda: compiled_jacobian(data))
        scale = max(1.0, abs(ours).max())
        assert abs(compiled - ours).max() <= 1e-9 * scale
        calls = {"numpy": call_cg, "c": call_c}
        builds = {"numpy": t_cg, "c": t_c}
        if has_jax:
            builds["jax"], calls["jax"], (dc, dX) = _build(lambda: jax_jacobian(data))
            theirs = assemble(data, dc, dX, ours.shape)
            assert abs(ours - theirs).max() <= 1e-9 * scale
        if has_casadi:
            builds["casadi"], calls["casadi"], theirs = _build(lambda: casadi_jacobian(data))
            assert abs(ours - theirs.tocsr()).max() <= 1e-9 * scale
        e = best_times(calls)
        missing = {"jax": "not installed", "casadi": "not installed"}
        b = {k: fmt_time(builds[k]) if k in builds else missing[k] for k in ("jax", "casadi")}
        j = {k: fmt_time(e[k]) if k in e else missing[k] for k in ("jax", "casadi")}
        rows.append(f"| {cams} | {points:,} | {2 * obs:,} | {ours.nnz:,} | {fmt_time(t_cg)} "
                    f"({peak / 2**20:.0f} MB) | {fmt_time(t_c)} | {b['jax']} | {b['casadi']} | "
                    f"{fmt_time(e['numpy'])} | {fmt_time(e['c'])} | {j['jax']} | "
                    f"{j['casadi']} | "
                    f"{fmt_ratio(e['c'] / e['jax']) if 'jax' in e else '—'} | "
                    f"{fmt_ratio(t_c / builds['casadi']) if 'casadi' in builds else '—'} |")
    head = ("### A bundle-adjustment Jacobian (sparse, default options)\n\n"
            "Generated cameras, points and observations, the BAL camera model. circuitgrad: "
            "`jacobian(sparse=True)` with `mode=\"auto\"` (it colors the columns: 12 sweeps), "
            "lowered by `to_numpy` (no compiler) or `to_c` (here `to_fused`'s NumPy calls and "
            "fused C loops, compiled into an empty cache), a CSR matrix per call; JAX: "
            "`jit(vmap(jacfwd))` of one observation's residual (its 2×9 and 2×3 blocks, not "
            "assembled); CasADi: the SX `jacobian` of the vectorized residuals, a `Function`, "
            "its sparse matrix. Same numbers checked. Build: from nothing to the first "
            "matrix; J: best of interleaved rounds.\n\n")
    return head + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(run())
