"""NumPy vs a GPU array library, the same generated code: what scripts/gpu_check.sh prints.

Two tables, each timed side by side in one process (medians of alternating runs):

* the batched gradient of a 10³-op random program (benchmarks/programs.py) at 10⁴, 10⁶, 10⁷
  points: NumPy on the host vs the same ``cg.to_numpy`` function on device arrays;
* the MLP benchmark (benchmarks/mlp.py, 784-1024-1024-10, batch 1024 and 8192): circuitgrad's
  generated gradient on device arrays vs PyTorch autograd on the same GPU (and NumPy's).

``--xp numpy`` lets NumPy stand in for the GPU library (no GPU needed: how the script is tested);
``--quick`` uses small sizes. Not a ``python -m benchmarks`` module (it needs a GPU), so it
writes no section of docs/benchmarks.md: paste its output there by hand.

    python -m benchmarks.gpu --xp cupy
"""

from __future__ import annotations

import argparse
import importlib
import time
from typing import Any, Callable

import numpy as np

import circuitgrad as cg
from benchmarks import mlp
from benchmarks.programs import random_program

POINTS = (10**4, 10**6, 10**7)
MLP_BATCHES = (1024, 8192)
MLP_SIZES = (784, 1024, 1024, 10)


def _sync(xp: Any) -> Callable[[], None]:
    """A function that waits for the device (CuPy's stream; nothing for NumPy)."""
    if getattr(xp, "__name__", "") == "cupy":
        return lambda: xp.cuda.Stream.null.synchronize()
    return lambda: None


def _median(fn: Callable[[], Any], sync: Callable[[], None], repeats: int,
            warm: bool = True) -> float:
    if warm:  # compile, allocate, load kernels
        fn()
        sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def program_table(xp: Any, points: tuple[int, ...], repeats: int) -> str:
    p = random_program(1000, seed=0)
    f = cg.to_numpy(cg.grad(cg.parse(p.text(), inputs=p.inputs)))
    rng = np.random.default_rng(0)
    sync = _sync(xp)
    rows = ["| points | NumPy (s) | " + xp.__name__ + " (s) | NumPy / " + xp.__name__
            + " | max \\|difference\\| |", "|---:|---:|---:|---:|---:|"]
    for n in points:
        host = {name: rng.uniform(-1, 1, n) for name in p.inputs}
        device = {k: xp.asarray(v) for k, v in host.items()}
        got = f(**device)
        want = f(**host)
        err = max(float(np.max(np.abs(_host(xp, g) - w))) for g, w in zip(got, want))
        del got
        # NumPy at 10⁷ points takes about a minute a call: fewer repeats there (the result
        # above was its warm-up)
        reps = repeats if n <= 10**6 else 1
        t_np = _median(lambda: f(**host), lambda: None, reps, warm=False)  # noqa: F821 (run before the del)
        t_xp = _median(lambda: f(**device), sync, repeats)  # noqa: F821 (run before the del)
        rows.append(f"| {n:.0e} | {t_np:.3g} | {t_xp:.3g} | {t_np / t_xp:.1f} | {err:.1e} |")
        del host, device, want
    return "\n".join(rows)


def _host(xp: Any, value: Any) -> np.ndarray:
    return xp.asnumpy(value) if hasattr(xp, "asnumpy") else np.asarray(value)


def _torch_step(point: dict, device: str) -> Callable[[], Any] | None:
    try:
        import torch
    except ImportError:
        return None
    if device == "cuda" and not torch.cuda.is_available():
        return None
    t = {k: torch.tensor(v, device=device, requires_grad=k not in ("X", "Y"))
         for k, v in point.items()}
    params = [t[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3")]

    def step() -> Any:
        a1 = torch.relu(t["X"] @ t["W1"].T + t["b1"])
        a2 = torch.relu(a1 @ t["W2"].T + t["b2"])
        J = 0.5 * torch.mean(torch.square(a2 @ t["W3"].T + t["b3"] - t["Y"]))
        out = torch.autograd.grad(J, params)
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    return step


def mlp_table(xp: Any, batches: tuple[int, ...], sizes: tuple[int, ...], repeats: int,
              torch_device: str) -> str:
    d, h1, h2, k = sizes
    sync = _sync(xp)
    name = xp.__name__
    rows = [f"| batch | NumPy (s) | circuitgrad on {name} (s) | PyTorch {torch_device} (s) | "
            f"circuitgrad / PyTorch |", "|---:|---:|---:|---:|---:|"]
    for batch in batches:
        rng = np.random.default_rng(0)
        point = {
            "X": rng.normal(size=(batch, d)), "Y": rng.normal(size=(batch, k)),
            "W1": rng.normal(size=(h1, d)) / np.sqrt(d), "b1": rng.normal(size=h1) * 0.1,
            "W2": rng.normal(size=(h2, h1)) / np.sqrt(h1), "b2": rng.normal(size=h2) * 0.1,
            "W3": rng.normal(size=(k, h2)) / np.sqrt(h2), "b3": rng.normal(size=k) * 0.1,
        }
        c = cg.parse(mlp.mlp_program(3), shapes={n: v.shape for n, v in point.items()})
        f = cg.to_numpy(cg.grad(c, wrt=["W1", "b1", "W2", "b2", "W3", "b3"]))
        device = {n: xp.asarray(v) for n, v in point.items()}
        t_np = _median(lambda: f(**point), lambda: None, repeats)
        t_xp = _median(lambda: f(**device), sync, repeats)
        step = _torch_step(point, torch_device)
        t_torch = _median(step, lambda: None, repeats) if step else float("nan")
        rows.append(f"| {batch} | {t_np:.3g} | {t_xp:.3g} | {t_torch:.3g} | "
                    f"{t_xp / t_torch:.2f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xp", default="cupy", help="the array library (cupy; numpy to try)")
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    args = parser.parse_args(argv)
    xp = importlib.import_module(args.xp)
    points = (10**2, 10**3) if args.quick else POINTS
    batches = (64,) if args.quick else MLP_BATCHES
    sizes = (32, 16, 16, 4) if args.quick else MLP_SIZES
    repeats = 2 if args.quick else 5
    torch_device = "cuda" if args.xp == "cupy" else "cpu"
    text = (f"### The batched gradient of a 10³-op program: NumPy vs {args.xp}\n\n"
            f"{program_table(xp, points, repeats)}\n\n"
            f"### MLP {'-'.join(map(str, sizes))} loss + gradient: circuitgrad on {args.xp} "
            f"vs PyTorch ({torch_device})\n\n"
            f"{mlp_table(xp, batches, sizes, repeats, torch_device)}\n")
    print(text)
    return text


if __name__ == "__main__":
    main()
