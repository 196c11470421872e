"""ADBench's Python objectives, traced as written (issue 27: public code with writes, branches,
containers): the bundle-adjustment residual of ``tools/Autograd/Autograd_ba.py`` (``out =
np.empty(3); out[0] = ...``, ``reproj_err[i] = ...``, ``if sqtheta != 0.:``, a tuple result) and
the Gaussian mixture of ``tools/Autograd/gmm_objective.py`` (``np.asarray`` of lists of traced
values, Python loops, SciPy's ``multigammaln`` of numbers).

    python scripts/adbench_suite.py ADBENCH_CHECKOUT

ADBench's code is read from the checkout, not copied here. The one rewrite is the import line:
``import autograd.numpy as np`` becomes ``import circuitgrad.numpy as np`` (and plain NumPy for
the reference values); autograd's own machinery (``@primitive``, ``defgrad``, the timing
script at the end) is cut, as it is not the objective. Each objective is traced with
``cg.function`` (so a branch on a value is taken at the point and guarded), its values compared
with NumPy's running the same code, and the gradient of a random weighting of its outputs with
central differences. Prints a table; exit status 1 if anything is wrong.
"""

from __future__ import annotations

import os
import re
import sys
import types

import numpy as np

import circuitgrad as cg

BA = "tools/Autograd/Autograd_ba.py"
GMM = "tools/Autograd/gmm_objective.py"


def load(path: str, numpy_module: str) -> types.ModuleType:
    """The objective's module: its source with the numpy import pointed at ``numpy_module``,
    without autograd's machinery and the benchmark driver."""
    text = open(path, encoding="utf-8-sig").read()
    text = text.split("########## derivative extras")[0]  # BA: the Jacobian driver follows
    text = re.sub(r"^import autograd\.numpy as np$", f"import {numpy_module} as np", text,
                  flags=re.M)
    text = "\n".join(line for line in text.splitlines()
                     if not re.match(r"\s*(from autograd|import autograd|@primitive|"
                                     r"cross\.defgrad|sys\.path\.append|from python_common)",
                                     line))
    module = types.ModuleType(os.path.basename(path)[:-3])
    exec(compile(text, path, "exec"), module.__dict__)  # noqa: S102 - the user's own checkout
    return module


def central(f, args: list, k: int, eps: float = 1e-6) -> np.ndarray:
    x = np.asarray(args[k], dtype=float)
    g = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        e = np.zeros(x.shape)
        e[idx] = eps
        hi, lo = list(args), list(args)
        hi[k], lo[k] = x + e, x - e
        g[idx] = (f(*hi) - f(*lo)) / (2 * eps)
    return g


def check(name: str, traced_fn, numpy_fn, args: list, rows: list) -> bool:
    want = numpy_fn(*args)
    leaves = [np.asarray(w, dtype=float) for w in (want if isinstance(want, tuple) else (want,))]
    vs = [np.random.default_rng(1).normal(size=w.shape) for w in leaves]

    def weighted(f):
        def total(*a):
            out = f(*a)
            out = out if isinstance(out, tuple) else (out,)
            return sum(np.sum(o * v) for o, v in zip(out, vs))
        return total

    try:
        f = cg.function(traced_fn)
        got = f(*args)
        got = got if isinstance(got, tuple) else (got,)
        same = all(np.allclose(g, w, rtol=1e-12, atol=1e-12) for g, w in zip(got, leaves))
        grads = cg.grad(weighted(traced_fn), argnums=tuple(range(len(args))))(*args)
        err = max(float(np.max(np.abs(g - central(weighted(numpy_fn), args, k)) /
                                (1 + np.abs(g))))
                  for k, g in enumerate(grads))
        ok = same and err < 1e-5
        guards = sum(len(c.meta["guards"].kinds) for c in f.branches() if c.meta.get("guards"))
        rows.append(f"| {name} | traced | {'same' if same else 'DIFFERENT'} | {err:.1e} | "
                    f"{guards} |")
        return ok
    except cg.CircuitError as e:
        rows.append(f"| {name} | refused: {str(e).splitlines()[0][:90]} | | | |")
        return True


def main() -> int:
    if len(sys.argv) < 2 or not os.path.isdir(sys.argv[1]):
        sys.exit(__doc__.strip().splitlines()[0] + "\n\nusage: " + next(
            x.strip() for x in __doc__.splitlines() if x.strip().startswith("python scripts/")))
    root = sys.argv[1]
    rows = ["| objective | trace | values vs NumPy | gradient vs central differences (max "
            "rel.) | guards |", "|---|---|---|---|---|"]
    ok = True
    rng = np.random.default_rng(0)
    ba_cg, ba_np = load(os.path.join(root, BA), "circuitgrad.numpy"), load(
        os.path.join(root, BA), "numpy")
    cams, points, obs_n = 3, 6, 10
    cam = np.hstack([rng.normal(0, 0.2, (cams, 3)), rng.normal(0, 1, (cams, 3)),
                     rng.uniform(1, 2, (cams, 1)), rng.normal(0, 0.1, (cams, 2)),
                     rng.normal(0, 0.01, (cams, 2))])
    X = rng.normal(0, 1, (points, 3)) + np.array([0.0, 0.0, 5.0])
    w = rng.uniform(0.5, 1.5, obs_n)
    obs = np.stack([rng.integers(0, cams, obs_n), rng.integers(0, points, obs_n)], axis=1)
    feats = rng.normal(0, 1, (obs_n, 2))
    ok &= check("ADBench BA (Autograd_ba.py ba_objective)",
                lambda c, x, v: ba_cg.ba_objective(c, x, v, obs, feats),
                lambda c, x, v: ba_np.ba_objective(c, x, v, obs, feats), [cam, X, w], rows)
    gmm_cg, gmm_np = load(os.path.join(root, GMM), "circuitgrad.numpy"), load(
        os.path.join(root, GMM), "numpy")
    d, k, n = 2, 3, 4
    alphas, means = rng.normal(size=k), rng.normal(size=(k, d))
    icf = rng.normal(0, 0.3, (k, d + d * (d - 1) // 2))
    x = rng.normal(size=(n, d))
    ok &= check("ADBench GMM (gmm_objective.py)",
                lambda a, m, q: gmm_cg.gmm_objective(a, m, q, x, 1.0, 0),
                lambda a, m, q: gmm_np.gmm_objective(a, m, q, x, 1.0, 0),
                [alphas, means, icf], rows)
    print("\n".join(rows))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
