"""MLP loss + gradient: circuitgrad's generated functions (``to_numpy``, ``to_fused``) vs
hand-written NumPy backprop.

The network of the tensor issue: relu layers, squared loss, batch 1024. The functions compute
the same loss and gradients (checked), and are timed alternately in the same process; peak
memory is measured with tracemalloc (which sees NumPy's allocations).

    python -m benchmarks.mlp
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

import circuitgrad as cg

SIZES = [(784, 256, 256, 1), (784, 512, 512, 10), (784, 1024, 1024, 10)]
BATCH = 1024


def mlp_program(layers: int) -> str:
    """The notes' multi-layer network, batched: rows of X are examples."""
    lines, a = [], "X"
    for k in range(1, layers + 1):
        z = f"z{k}"
        lines.append(f"{z} = {a} @ W{k}.T + b{k}")
        if k < layers:
            lines.append(f"a{k} = relu({z})")
            a = f"a{k}"
    lines.append(f"J = 0.5 * mean(square(z{layers} - Y))")
    return "\n".join(lines)


def hand_written(X, Y, W1, b1, W2, b2, W3, b3):
    """Backprop written out, as the notes derive it: δ⁽ᵏ⁾ = (δ⁽ᵏ⁺¹⁾ W⁽ᵏ⁺¹⁾) ⊙ relu′(z⁽ᵏ⁾)."""
    z1 = X @ W1.T + b1
    a1 = np.maximum(z1, 0.0)
    z2 = a1 @ W2.T + b2
    a2 = np.maximum(z2, 0.0)
    z3 = a2 @ W3.T + b3
    d = z3 - Y
    J = 0.5 * np.mean(d * d)
    d3 = d / d.size
    dW3 = d3.T @ a2
    db3 = d3.sum(axis=0)
    d2 = (d3 @ W3) * (z2 >= 0)
    dW2 = d2.T @ a1
    db2 = d2.sum(axis=0)
    d1 = (d2 @ W2) * (z1 >= 0)
    dW1 = d1.T @ X
    db1 = d1.sum(axis=0)
    return J, dW1, db1, dW2, db2, dW3, db3


def _torch(point):
    """The same loss and gradient with PyTorch autograd (CPU, float64), or None if missing."""
    try:
        import torch
    except ImportError:
        return None
    t = {k: torch.tensor(v, requires_grad=k not in ("X", "Y")) for k, v in point.items()}
    params = [t[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3")]

    def step(**_):
        a1 = torch.relu(t["X"] @ t["W1"].T + t["b1"])
        a2 = torch.relu(a1 @ t["W2"].T + t["b2"])
        J = 0.5 * torch.mean(torch.square(a2 @ t["W3"].T + t["b3"] - t["Y"]))
        grads = torch.autograd.grad(J, params)
        return (J.item(), *[g.numpy() for g in grads])

    return step


def _jax(point):
    """The same with jax.jit(jax.value_and_grad), or None if missing."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    names = ("W1", "b1", "W2", "b2", "W3", "b3")

    def loss(params, X, Y):
        W1, b1, W2, b2, W3, b3 = params
        a1 = jax.nn.relu(X @ W1.T + b1)
        a2 = jax.nn.relu(a1 @ W2.T + b2)
        return 0.5 * jnp.mean(jnp.square(a2 @ W3.T + b3 - Y))

    fn = jax.jit(jax.value_and_grad(loss))
    params = tuple(jnp.asarray(point[k]) for k in names)
    X, Y = jnp.asarray(point["X"]), jnp.asarray(point["Y"])

    def step(**_):
        J, grads = fn(params, X, Y)
        J.block_until_ready()
        return (float(J), *[np.asarray(g) for g in grads])

    return step


def _setup(sizes):
    d, h1, h2, k = sizes
    rng = np.random.default_rng(0)
    point = {
        "X": rng.normal(size=(BATCH, d)), "Y": rng.normal(size=(BATCH, k)),
        "W1": rng.normal(size=(h1, d)) / np.sqrt(d), "b1": rng.normal(size=h1) * 0.1,
        "W2": rng.normal(size=(h2, h1)) / np.sqrt(h1), "b2": rng.normal(size=h2) * 0.1,
        "W3": rng.normal(size=(k, h2)) / np.sqrt(h2), "b3": rng.normal(size=k) * 0.1,
    }
    shapes = {n: v.shape for n, v in point.items()}
    c = cg.parse(mlp_program(3), shapes=shapes)
    g = cg.grad(c, wrt=["W1", "b1", "W2", "b2", "W3", "b3"])
    return cg.to_numpy(g), cg.to_fused(g), point


def _time(fn, kwargs, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(**kwargs)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _peak(fn, kwargs):
    tracemalloc.start()
    fn(**kwargs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def run(quick: bool = False) -> str:
    """The comparison tables, in markdown."""
    rows = ["| layers | circuitgrad ms | hand-written ms | time ratio | to_fused ms | "
            "to_fused ratio | peak MB cg | peak MB hand | memory ratio |",
            "|---|---|---|---|---|---|---|---|---|"]
    peer_rows = ["| layers | circuitgrad ms | PyTorch ms (×) | JAX jit ms (×) |",
                 "|---|---|---|---|"]
    repeats = 5 if quick else 21
    for sizes in SIZES[:2] if quick else SIZES:
        f, fused, point = _setup(sizes)
        hand = hand_written(**point)
        for ours in (f(**point), fused(**point)):
            for a, b in zip(ours, hand):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        f(**point), fused(**point), hand_written(**point)  # warm up
        t_cg, t_fused, t_hand = [], [], []
        for _ in range(3):  # alternate, so drifts of a noisy machine hit all
            t_cg.append(_time(f, point, repeats // 3 + 1))
            t_fused.append(_time(fused, point, repeats // 3 + 1))
            t_hand.append(_time(hand_written, point, repeats // 3 + 1))
        t_cg_ms, t_hand_ms = 1e3 * min(t_cg), 1e3 * min(t_hand)
        t_fused_ms = 1e3 * min(t_fused)
        m_cg, m_hand = _peak(f, point) / 2**20, _peak(hand_written, point) / 2**20
        layers = "-".join(map(str, sizes))
        rows.append(f"| {layers} | {t_cg_ms:.1f} | {t_hand_ms:.1f} | "
                    f"{t_cg_ms / t_hand_ms:.2f} | {t_fused_ms:.1f} | "
                    f"{t_fused_ms / t_hand_ms:.2f} | {m_cg:.1f} | {m_hand:.1f} | "
                    f"{m_cg / m_hand:.2f} |")
        cells = []
        for make in (_torch, _jax):
            step = make(point)
            if step is None:
                cells.append("missing")
                continue
            for a, b in zip(step(), hand):  # the same numbers, or the timing means nothing
                np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-11)
            step()
            t = 1e3 * min(_time(step, {}, repeats // 3 + 1) for _ in range(3))
            cells.append(f"{t:.1f} (×{t / t_cg_ms:.2f})")
        peer_rows.append(f"| {layers} | {t_cg_ms:.1f} | {cells[0]} | {cells[1]} |")
    head = (f"### MLP loss + gradient, batch {BATCH} (best of 3 medians)\n\n"
            "Goal: time ratio ≤ 1.10, memory ratio ≤ 1.25 against hand-written NumPy "
            "backprop (issue 28: ≤ 1.0). circuitgrad: `to_numpy` (its memory: the peak "
            "columns); `to_fused`: its C loops for the bias adds, relus and their adjoints, "
            "NumPy's BLAS for the products.\n\n")
    peers = ("\n\nThe same network and numbers with PyTorch autograd (CPU, float64) and "
             "`jax.jit(jax.value_and_grad)` (float64); × = peer time / circuitgrad's.\n\n")
    return head + "\n".join(rows) + peers + "\n".join(peer_rows) + "\n"


if __name__ == "__main__":
    print(run())
