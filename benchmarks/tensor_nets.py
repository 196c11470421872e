"""A tanh network with a softmax cross-entropy loss (issue 28): the gradient through
``to_numpy``, ``to_fused`` and JAX ``jit(value_and_grad)``, side by side in one run, and the
evaluation time against the width in a plot.

    a1 = tanh(X @ W1.T + b1), a2 = tanh(a1 @ W2.T + b2), z = a2 @ W3.T + b3,
    J = -mean(sum(Y * log_softmax(z, axis=1), axis=1))

with a batch of 1024 rows of 784 inputs, two hidden layers of the width, 10 classes (Y one-hot).
The products are BLAS's in every tool; the rest is the tanh layers, their adjoints
(1 − a²)·δ, and the log-softmax and its adjoint. The numbers are checked to agree first; the
times are the best of interleaved rounds (the machine is shared), as ratios to JAX. Each tool is
timed twice: in a child pinned to one CPU, and in a child on every CPU with each library's
default threads.

    python -m benchmarks --only tensor_nets
"""

from __future__ import annotations

import importlib.util
import time
from typing import Any, Callable

import numpy as np

import circuitgrad as cg

from .harness import (fmt_ratio, fmt_time, measurement_timeout, plot_loglog, run_bounded,
                      suite_cpus)

BATCH, INPUTS, CLASSES = 1024, 784, 10
WIDTHS = [64, 128, 256, 512, 1024]
QUICK_WIDTHS = [128, 512]
# (batch, inputs, widths, quick widths) of each table: MNIST-like rows (BLAS-bound: the first
# layer's products are most of the time) and narrow rows in a long batch, where the tanh
# layers, the log-softmax and their adjoints are (issue 28's "elementwise-bound" networks)
CONFIGS = {"BLAS-bound": (BATCH, INPUTS, WIDTHS, QUICK_WIDTHS),
           "elementwise-bound": (65536, 16, [16, 32, 64], [32])}
WRT = ("W1", "b1", "W2", "b2", "W3", "b3")
PROGRAM = """a1 = tanh(X @ W1.T + b1)
a2 = tanh(a1 @ W2.T + b2)
z = a2 @ W3.T + b3
J = -mean(sum(Y * log_softmax(z, axis=1), axis=1))"""


def point(width: int, batch: int = BATCH, inputs: int = INPUTS) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(width)
    return {"X": rng.normal(size=(batch, inputs)),
            "Y": np.eye(CLASSES)[rng.integers(0, CLASSES, size=batch)],
            "W1": rng.normal(size=(width, inputs)) / np.sqrt(inputs),
            "b1": rng.normal(size=width) * 0.1,
            "W2": rng.normal(size=(width, width)) / np.sqrt(width),
            "b2": rng.normal(size=width) * 0.1,
            "W3": rng.normal(size=(CLASSES, width)) / np.sqrt(width),
            "b3": rng.normal(size=CLASSES) * 0.1}


def circuitgrad_net(width: int, lower: Callable[..., Any], batch: int = BATCH,
                    inputs: int = INPUTS) -> Callable[[dict], tuple]:
    shapes = {k: v.shape for k, v in point(width, batch, inputs).items()}
    f = lower(cg.grad(cg.parse(PROGRAM, shapes=shapes), wrt=list(WRT)))
    return lambda p: tuple(f(**p))


def jax_net(width: int) -> Callable[[dict], tuple]:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    def loss(W1, b1, W2, b2, W3, b3, X, Y):
        a1 = jnp.tanh(X @ W1.T + b1)
        a2 = jnp.tanh(a1 @ W2.T + b2)
        z = a2 @ W3.T + b3
        return -jnp.mean(jnp.sum(Y * jax.nn.log_softmax(z, axis=1), axis=1))

    vg = jax.jit(jax.value_and_grad(loss, argnums=tuple(range(6))))

    def call(p):
        value, grads = vg(*(p[k] for k in WRT), p["X"], p["Y"])
        value.block_until_ready()
        return (float(value), *(np.asarray(g) for g in grads))

    return call


def _best(fn: Callable[[], Any], calls: int) -> float:
    best = float("inf")
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(emit: Callable[[str, Any], None], quick: bool) -> None:
    """Child: each width's best-of-rounds times (``"width tool"``) of to_numpy, to_fused and
    JAX, interleaved, after checking that they agree."""
    has_jax = importlib.util.find_spec("jax") is not None
    for config, (batch, inputs, widths, quick_widths) in CONFIGS.items():
        _measure(emit, quick, config, batch, inputs, quick_widths if quick else widths,
                 has_jax)


def _measure(emit: Callable[[str, Any], None], quick: bool, config: str, batch: int,
             inputs: int, widths: list[int], has_jax: bool) -> None:
    for width in widths:
        at = point(width, batch, inputs)
        tools = {"to_numpy": circuitgrad_net(width, cg.to_numpy, batch, inputs),
                 "to_fused": circuitgrad_net(width, cg.to_fused, batch, inputs)}
        if has_jax:
            tools["JAX"] = jax_net(width)
        results = {name: f(at) for name, f in tools.items()}
        for name, got in results.items():  # the same numbers, or the timing means nothing
            for a, b in zip(got, results["to_numpy"]):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=name)
        calls = 3 if width * batch >= 512 * 1024 else 10
        best = dict.fromkeys(tools, float("inf"))
        for _ in range(3 if quick else 7):  # interleaved: a drift of the machine hits all
            for name, f in tools.items():
                best[name] = min(best[name], _best(lambda: f(at), calls))
        for name, t in best.items():
            emit(f"{config} {width} {name}", t)


def run(quick: bool = False) -> str:
    timeout = max(measurement_timeout(quick), 300.0)
    cores = len(suite_cpus())
    runs = {"1 CPU": run_bounded("benchmarks.tensor_nets:measure", {"quick": quick}, timeout,
                                 cpus="one"),
            f"{cores} CPUs": run_bounded("benchmarks.tensor_nets:measure", {"quick": quick},
                                         timeout, cpus="all")}
    rows = ["| network | CPUs | width | to_numpy ∇ | to_fused ∇ | JAX ∇ | to_numpy × JAX | "
            "to_fused × JAX | to_fused × to_numpy |", "|---|---|---|---|---|---|---|---|---|"]
    series: dict[str, tuple[list, list]] = {}
    failed = []
    for label, r in runs.items():
        if r.timed_out or r.error:
            failed.append(f"{label}: " + ("timed out" if r.timed_out else f"error: {r.error}"))
        v = r.values
        for config, width in ((config, width) for config, (_, _, widths, quick_widths)
                              in CONFIGS.items() for width in (quick_widths if quick
                                                               else widths)):
            batch, inputs = CONFIGS[config][:2]
            t = {name: v.get(f"{config} {width} {name}")
                 for name in ("to_numpy", "to_fused", "JAX")}
            if t["to_fused"] is None:
                continue

            def ratio(a: float | None, b: float | None) -> str:
                return fmt_ratio(a / b) if a and b else "—"

            rows.append(f"| {config}: batch {batch}, {inputs} inputs | {label} | {width} | "
                        f"{fmt_time(t['to_numpy'])} | "
                        f"{fmt_time(t['to_fused'])} | "
                        f"{fmt_time(t['JAX']) if t['JAX'] else '—'} | "
                        f"{ratio(t['to_numpy'], t['JAX'])} | {ratio(t['to_fused'], t['JAX'])} | "
                        f"{ratio(t['to_fused'], t['to_numpy'])} |")
            for name in ("to_fused", "JAX") if label != "1 CPU" else t:
                if t[name] and config == "BLAS-bound":
                    tool = "JAX jit" if name == "JAX" else f"circuitgrad {name}"
                    xs, ys = series.setdefault(f"{tool}, {label}", ([], []))
                    xs.append(width)
                    ys.append(t[name])
    img = plot_loglog("bench_tensor_nets", "Gradient of a tanh network's softmax cross-entropy",
                      f"width (batch {BATCH}, {INPUTS} inputs, two hidden layers, "
                      f"{CLASSES} classes)", "seconds per value and gradient", series,
                      note=f"1 CPU: pinned; {cores} CPUs: the libraries' default threads")
    head = ("### A tanh network's softmax cross-entropy: gradient against the width\n\n"
            f"`{PROGRAM.splitlines()[0]}`, a second tanh layer, 10 logits, "
            "`J = -mean(sum(Y * log_softmax(z, axis=1), axis=1))`, ∇ with respect "
            "to the weights and biases: batch 1024 of 784 inputs (BLAS-bound: the first layer's "
            "products are most of the time; the plot), and batch 65536 of 16 inputs "
            "(elementwise-bound: the tanh layers, the log-softmax and their adjoints). circuitgrad: `parse` → `grad` → `to_numpy` or "
            "`to_fused` (NumPy's BLAS for the products, fused C loops for the tanh layers and "
            "their adjoints, one C pass per row for the log-softmax); JAX: "
            "`jit(value_and_grad)`, float64. Best of interleaved rounds; × = time / JAX's "
            "(below 1: circuitgrad faster). 1 CPU: a child process pinned to one CPU (every "
            "library's threads share it), OpenBLAS told one thread; "
            f"{cores} CPUs: a child on all of them, each library's default threads.\n\n")
    plot = f"\n![evaluation time vs width]({img})\n" if img else ""
    tail = "".join(f"\n**failed** — {f}\n" for f in failed)
    return head + "\n".join(rows) + "\n" + tail + plot


if __name__ == "__main__":
    print(run())
