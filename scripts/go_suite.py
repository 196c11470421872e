"""SciPy's global-optimization benchmark functions traced with circuitgrad: a public suite of
Python objectives (many with ``if``, ``int()`` or loops on values) counted by outcome.

The functions live in SciPy's repository (``benchmarks/benchmarks/go_benchmark_functions``,
not in its wheels); give a checkout or a git directory of it. Each function is loaded as
written (``--namespace circuitgrad`` rewrites its ``numpy`` imports to ``circuitgrad.numpy``,
issue 26's rewrite), evaluated at points drawn inside its bounds, and traced two ways:

* ``plain``: ``cg.trace(fun, shapes={"x": (N,)})`` with no point (branches on values refused);
* ``guarded``: ``cg.function(fun)``: traced at each point, the branch taken there, guarded;
  the points one by one and as one batch.

Each function counts as ``ok`` (NumPy's value at every point, bit for bit or within 1e-12
relative), ``refused`` (a CircuitError: the reason's first words are tallied), ``wrong``
(another value: never acceptable), ``crash`` (another exception), ``numpy`` (the function
raises in plain NumPy too) or ``random`` (it draws random numbers at each call, so two calls
differ: a trace holds one draw, as constants). Gradients of the guarded traces are compared with central
differences (informational: a point near a kink or a boundary may disagree).

    python scripts/go_suite.py /work/.mirror/scipy+scipy/repo [--namespace circuitgrad]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib
import inspect
import os
import re
import subprocess
import sys
import tempfile
import warnings

import numpy as np

import circuitgrad as cg

FOLDER = "benchmarks/benchmarks/go_benchmark_functions"


def _read(source: str, name: str) -> str:
    path = os.path.join(source, FOLDER, name)
    if os.path.exists(path):
        with open(path) as f:
            return f.read()
    return subprocess.run(["git", "--git-dir", source, "show", f"HEAD:{FOLDER}/{name}"],
                          check=True, capture_output=True, text=True).stdout


def load(source: str, namespace: str) -> list[type]:
    """The benchmark classes, from a package written to a temporary folder."""
    if os.path.isdir(os.path.join(source, FOLDER)):
        names = sorted(os.listdir(os.path.join(source, FOLDER)))
    else:
        names = subprocess.run(["git", "--git-dir", source, "ls-tree", "--name-only",
                                f"HEAD:{FOLDER}"], check=True, capture_output=True,
                               text=True).stdout.split()
    folder = tempfile.mkdtemp(prefix="go_suite_")
    package = os.path.join(folder, "gofuncs")
    os.makedirs(package)
    with open(os.path.join(package, "__init__.py"), "w") as f:
        f.write("")
    modules = []
    for name in names:
        if not (name.startswith("go_funcs_") or name == "go_benchmark.py"):
            continue
        text = _read(source, name)
        text = text.replace("from ..common import safe_import",
                            "from contextlib import nullcontext as safe_import")
        if namespace == "circuitgrad":
            text = re.sub(r"^import numpy as np$", "import circuitgrad.numpy as np", text,
                          flags=re.M)
            text = re.sub(r"^from numpy import", "from circuitgrad.numpy import", text,
                          flags=re.M)
        with open(os.path.join(package, name), "w") as f:
            f.write(text)
        if name.startswith("go_funcs_"):
            modules.append(name[:-3])
    sys.path.insert(0, folder)
    base = importlib.import_module("gofuncs.go_benchmark").Benchmark
    classes = []
    for m in modules:
        module = importlib.import_module(f"gofuncs.{m}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, base) and cls is not base and cls.__module__ == module.__name__:
                classes.append(cls)
    return classes


def _same(got: np.ndarray, want: np.ndarray) -> bool:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    return got.shape == want.shape and bool(np.all(
        (got == want) | (np.isnan(got) & np.isnan(want))
        | np.isclose(got, want, rtol=1e-12, atol=1e-300)))


def _reason(e: Exception) -> str:
    text = str(e)
    for key, short in [("no truth value", "if on a traced value"),
                       ("has no number yet", "int()/float() of a traced value"),
                       ("guard", "guard")]:
        if key in text:
            return short
    return text.split(":")[0][:60] if ":" in text[:60] else text[:60]


def run(classes: list[type], points: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    tallies = {"plain": collections.Counter(), "guarded": collections.Counter()}
    reasons = {"plain": collections.Counter(), "guarded": collections.Counter()}
    wrong, gradients, guarded_names, details = [], collections.Counter(), [], []
    names = collections.defaultdict(list)
    for cls in classes:
        try:
            bench = cls()
        except TypeError:
            bench = cls(2)
        n = bench.N
        lo, hi = np.array(bench.bounds, dtype=float).T
        xs = lo + (hi - lo) * rng.uniform(size=(points, n))

        def fun(x, bench=bench):
            return bench.fun(x)

        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                want = [np.float64(bench.fun(x.copy())) for x in xs]
        except Exception:
            tallies["plain"]["numpy"] += 1
            tallies["guarded"]["numpy"] += 1
            continue
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            again = [np.float64(bench.fun(x.copy())) for x in xs]
        if not all(_same(a, w) for a, w in zip(again, want)):
            # (random numbers drawn at each call: a trace holds one draw as constants)
            tallies["plain"]["random"] += 1
            tallies["guarded"]["random"] += 1
            continue
        for how in ("plain", "guarded"):
            try:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if how == "plain":
                        f = cg.to_numpy(cg.trace(fun, shapes={"x": (n,)}))
                        got = [f(x) for x in xs]
                        batch = f(xs)
                    else:
                        f = cg.function(fun)
                        got = [f(x) for x in xs]
                        batch = f(xs)
            except cg.CircuitError as e:
                tallies[how]["refused"] += 1
                reasons[how][_reason(e)] += 1
                names[(how, _reason(e))].append(cls.__name__)
                continue
            except Exception as e:  # noqa: BLE001 - counted, shown
                tallies[how]["crash"] += 1
                reasons[how][f"crash: {type(e).__name__}: {str(e)[:50]}"] += 1
                continue
            if not (all(_same(g, w) for g, w in zip(got, want)) and _same(batch, want)):
                tallies[how]["wrong"] += 1
                wrong.append((how, cls.__name__))
                continue
            tallies[how]["ok"] += 1
            if how == "guarded":
                if any(c.meta.get("guards") is not None for c in f.branches()):
                    guarded_names.append(cls.__name__)
                outcome = _gradient_check(fun, xs[0])
                gradients[outcome] += 1
                if outcome != "agrees":
                    details.append(f"{cls.__name__}: {outcome}")
    return {"tallies": tallies, "reasons": reasons, "wrong": wrong,
            "gradients": gradients, "guarded": guarded_names, "details": details,
            "names": names}


def _gradient_check(fun, x: np.ndarray) -> str:
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = np.asarray(cg.grad(fun)(x), dtype=float)
            h = 1e-6 * np.maximum(1.0, np.abs(x))
            fd = np.array([(fun(x + h[k] * e) - fun(x - h[k] * e)) / (2 * h[k])
                           for k, e in enumerate(np.eye(len(x)))], dtype=float)
    except cg.CircuitError as e:
        return f"refused: {_reason(e)}"
    except Exception as e:  # noqa: BLE001
        return f"crash: {type(e).__name__}"
    ok = np.allclose(g, fd, rtol=1e-4, atol=1e-6 * (1 + np.abs(fd).max()))
    return "agrees" if ok else "differs (a kink, a boundary or a steep point within h?)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scipy", help="a SciPy checkout or git directory")
    parser.add_argument("--namespace", choices=["numpy", "circuitgrad"], default="numpy")
    parser.add_argument("--points", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    classes = load(args.scipy, args.namespace)
    result = run(classes, args.points, args.seed)
    print(f"{len(classes)} benchmark functions ({args.namespace} namespace), "
          f"{args.points} points each")
    for how in ("plain", "guarded"):
        print(f"\n{how}: " + ", ".join(f"{k} {v}" for k, v in
                                         sorted(result["tallies"][how].items())))
        for reason, count in result["reasons"][how].most_common():
            print(f"    {count:4d}  {reason}: {', '.join(result['names'][(how, reason)])}")
    print(f"\nwrong: {result['wrong'] or 'none'}")
    print(f"traced with guards (branches on values): {len(result['guarded'])}: "
          f"{', '.join(result['guarded'])}")
    print("gradients of the guarded traces vs central differences at one point: " +
          ", ".join(f"{k} {v}" for k, v in result["gradients"].most_common()))
    for line in result["details"]:
        print(f"    {line}")


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        main()
