"""The gradient of the notes' two-layer network's mean loss over N samples, on a Dask cluster.

    z = W⁽¹⁾ x + b⁽¹⁾,  a = relu(z),  o = w⁽²⁾ᵀ a + b⁽²⁾,  J = ½(y − o)²,  loss = mean over samples

The samples are made lazily, chunk by chunk, on the workers (they never exist in memory at
once); the generated gradient runs on each chunk as Dask arrays (circuitgrad takes the namespace
from its inputs: nothing in circuitgrad changes), and the mean over the batch is Dask's own
reduction, a tree of partial sums. The example starts a ``dask.distributed.LocalCluster``;
``--scheduler tcp://host:8786`` runs it on a real cluster instead. It checks the gradient
against an in-memory NumPy run on the first chunk, and prints the peak memory (RSS) of the
client and the workers.

    .venv/bin/python examples/dask_gradient.py --samples 1000000
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

import numpy as np

import circuitgrad as cg

D, M = 4, 5  # as examples/two_layer.py
PROGRAM = """
z = W1 @ x + b1
a = relu(z)
o = w2 @ a + b2
J = 0.5 * (y - o)**2
"""
SHAPES = {"W1": (M, D), "x": (D,), "b1": (M,), "w2": (M,)}
TEACHER = np.linspace(-1.0, 1.0, D)  # y = TEACHER · x + noise


def samples(block_id: tuple[int, ...], chunk: int, seed: int) -> np.ndarray:
    """Chunk ``block_id[0]`` of the samples (x, y) as rows [x₁ … x_D, y], made from its own
    seed: the same numbers wherever and whenever the chunk is made."""
    rng = np.random.default_rng((seed, block_id[0]))
    x = rng.normal(size=(chunk, D))
    y = x @ TEACHER + 0.1 * rng.normal(size=chunk)
    return np.concatenate([x, y[:, None]], axis=1)


def lazy_samples(n: int, chunk: int, seed: int):
    """All n samples as a lazy Dask array of shape (n, D + 1), chunked along the samples."""
    import dask.array as da

    chunks = ((chunk,) * (n // chunk) + ((n % chunk,) if n % chunk else ()), (D + 1,))
    return da.map_blocks(lambda block_id=None: samples(block_id, chunk, seed)[
        : chunks[0][block_id[0]]], chunks=chunks, dtype=np.float64)


def parameters(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"W1": rng.normal(size=(M, D)), "b1": rng.normal(size=M),
            "w2": rng.normal(size=M), "b2": np.float64(rng.normal())}


class PeakRSS:
    """The peak of (this process's RSS + every worker's RSS), sampled every 0.2 s."""

    def __init__(self, client):
        import psutil

        self.client, self.peak, self._stop = client, 0, threading.Event()
        self._me = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _info(self) -> dict:
        try:  # every worker (newer distributed lists only some by default)
            return self.client.scheduler_info(n_workers=-1)["workers"]
        except TypeError:
            return self.client.scheduler_info()["workers"]

    def _workers(self) -> int:
        return sum(int(w.get("metrics", {}).get("memory", 0)) for w in self._info().values())

    def _run(self) -> None:
        while not self._stop.is_set():
            local = self._me.memory_info().rss
            self.peak = max(self.peak, local if self.inprocess else local + self._workers())
            time.sleep(0.2)

    def __enter__(self):
        # in-process workers (processes=False) are part of this process's RSS already
        self.inprocess = all(address.startswith("inproc") for address in self._info())
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=float, default=1e6, help="N (default 1e6)")
    parser.add_argument("--chunk", type=int, default=250_000, help="samples per chunk")
    parser.add_argument("--scheduler", default=None,
                        help="address of a running scheduler (default: start a LocalCluster)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    n, chunk = int(args.samples), min(args.chunk, int(args.samples))

    import dask.array as da
    from dask.distributed import Client, LocalCluster, progress

    f = cg.to_numpy(cg.grad(cg.parse(PROGRAM, shapes=SHAPES), wrt=["W1", "b1", "w2", "b2"]))
    p = parameters()
    if args.scheduler:
        cluster, client = None, Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=False,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        data = lazy_samples(n, chunk, seed=1)
        start = time.perf_counter()
        with PeakRSS(client) as rss:
            out = f(x=data[:, :D], y=data[:, D], **p)  # lazy Dask arrays, batch = samples
            # the mean over the samples: Dask's reductions, partial sums combined in a tree
            means = [da.mean(out.J, axis=0)] + [da.mean(g, axis=0) for g in out[1:]]
            futures = client.compute(means)
            if not args.quiet:
                progress(futures)
                print(file=sys.stderr)
            loss, *grads = client.gather(futures)
        seconds = time.perf_counter() - start
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

    # The in-memory NumPy check on the first chunk, against Dask on the same chunk.
    first = samples((0,), chunk, seed=1)
    with_numpy = f(x=first[:, :D], y=first[:, D], **p)
    sliced = f(x=da.from_array(first[:, :D], chunks=(chunk // 4 or 1, D)),
               y=da.from_array(first[:, D], chunks=chunk // 4 or 1), **p)
    check = float(np.max(np.abs(da.mean(sliced.dJ_dW1, axis=0).compute()
                                - with_numpy.dJ_dW1.mean(axis=0))))
    names = ["dJ_dW1", "dJ_db1", "dJ_dw2", "dJ_db2"]
    print(f"samples {n:.0e} in {len(data.chunks[0])} chunks of {chunk}: {seconds:.1f} s, "
          f"peak RSS {rss.peak / 2**20:.0f} MiB (client + workers)")
    print(f"mean loss {float(loss):.6f}")
    for name, g in zip(names, grads):
        print(f"mean {name} = {np.array2string(np.asarray(g), precision=5)}")
    print(f"first chunk, Dask vs in-memory NumPy: max |difference| of mean dJ_dW1 = {check:.1e}")
    assert check < 1e-12, check
    return {"loss": float(loss), "grads": grads, "peak_rss": rss.peak, "seconds": seconds,
            "check": check}


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
