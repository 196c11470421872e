"""A bundle-adjustment Jacobian (issue 29): the sparse Jacobian of the reprojection residuals of
a generated problem (cameras, points, observations; the BAL camera model: Rodrigues rotation,
translation, focal length, two radial distortion terms), with default options.

circuitgrad: ``trace`` → ``jacobian(sparse=True)`` → ``to_numpy`` (a ``scipy.sparse.csr_array``
per call); JAX: ``jit(vmap(jacfwd))`` of one observation's residual with respect to its camera
and its point (the 2×9 and 2×3 blocks, the layout a BA solver assembles); CasADi (where
installed): ``jacobian`` of the vectorized expression, sparse. The numbers are checked to agree
first. Build = from nothing to the first Jacobian; peak = tracemalloc's peak during the build.

    python -m benchmarks --only bundle
"""

from __future__ import annotations

import importlib.util
import time
import tracemalloc
from typing import Any

import numpy as np

import circuitgrad as cg

from .harness import fmt_ratio, fmt_time, median_time

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


def circuitgrad_jacobian(data: dict) -> tuple[Any, Any]:
    cam, pt, observed = data["cam"], data["pt"], data["observed"]

    def residuals(cameras, points):
        return project(np, cameras[cam], points[pt], observed).reshape(-1)

    c = cg.trace(residuals, shapes={"cameras": data["cameras"].shape,
                                    "points": data["points"].shape})
    f = cg.to_numpy(cg.jacobian(c, sparse=True))

    def call():
        return f(data["cameras"], data["points"])[-1]

    return call, c


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


def _build(make: Any) -> tuple[float, int, Any, Any]:
    tracemalloc.start()
    t0 = time.perf_counter()
    call = make()
    result = call()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak, call, result


def run(quick: bool = False) -> str:
    has_jax = importlib.util.find_spec("jax") is not None
    rows = ["| cameras | points | residuals | nonzeros | circuitgrad build (peak) | "
            "JAX build | circuitgrad J | JAX J | J × JAX |", "|---|---|---|---|---|---|---|---|---|"]
    for cams, points, obs in QUICK_SIZES if quick else SIZES:
        data = problem(cams, points, obs)
        t_cg, peak, call_cg, ours = _build(lambda: circuitgrad_jacobian(data)[0])
        e_cg = median_time(call_cg, budget=1.0)
        cells = ["—", "—", "—"]
        if has_jax:
            t_jax, _, call_jax, (dc, dX) = _build(lambda: jax_jacobian(data))
            theirs = assemble(data, dc, dX, ours.shape)
            diff = abs(ours - theirs).max()
            assert diff <= 1e-9 * max(1.0, abs(theirs).max()), diff
            e_jax = median_time(call_jax, budget=1.0)
            cells = [fmt_time(t_jax), fmt_time(e_jax), fmt_ratio(e_cg / e_jax)]
        rows.append(f"| {cams} | {points:,} | {2 * obs:,} | {ours.nnz:,} | {fmt_time(t_cg)} "
                    f"({peak / 2**20:.0f} MB) | {cells[0]} | {fmt_time(e_cg)} | {cells[1]} | "
                    f"{cells[2]} |")
    head = ("### A bundle-adjustment Jacobian (sparse, default options)\n\n"
            "Generated cameras, points and observations, the BAL camera model. circuitgrad: "
            "`jacobian(sparse=True)` with `mode=\"auto\"` (it colors the columns: 12 sweeps), "
            "`to_numpy` giving a CSR matrix; JAX: `jit(vmap(jacfwd))` of one observation's "
            "residual (its 2×9 and 2×3 blocks, not assembled). Same numbers checked. "
            "× = circuitgrad / JAX.\n\n")
    return head + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(run())
