"""Run autograd's own test suite against circuitgrad (issue 25), and count what happens.

    python scripts/autograd_suite.py AUTOGRAD_TESTS_DIR [--namespace numpy|circuitgrad]

AUTOGRAD_TESTS_DIR is autograd's ``tests/`` folder (github.com/HIPS/autograd; not part of
this repository). The tests are copied to a temporary folder with ``import autograd.numpy as
np`` written ``import numpy as np`` (also ``autograd.numpy.random``, ``autograd.scipy``), and a
stand-in ``autograd`` package (with ``--namespace circuitgrad``, ``import circuitgrad.numpy as
np`` instead: the drop-in namespace of issue 26, nothing else rewritten) whose ``grad``, ``check_grads`` and ``combo_check`` trace the
function with circuitgrad: each gradient check compares circuitgrad's value with NumPy's and
its gradient (of a random projection of the output) with central differences of NumPy's
function. Each check counts as ok (equal), refused (a CircuitError), crash (another exception)
or wrong (a number that differs; "wrong complex" where an input is complex).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

SHIM = r'''
import collections, inspect, itertools, json, os, sys, warnings
import numpy as _np
import circuitgrad as cg

COUNTS = collections.Counter()
BY_FILE = collections.defaultdict(collections.Counter)
REASONS = collections.Counter()  # refusals by what they name (the NumPy function, the feature)
EXAMPLES = collections.defaultdict(list)


def _record(kind, fun, detail=""):
    COUNTS[kind] += 1
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").split("::")[0]
    BY_FILE[os.path.basename(test)][kind] += 1
    if kind == "refused":
        import re
        named = re.search(r"(?:numpy|scipy)[\w.]*\.\w+|ndarray\.\w+|\.\w+\(\)", detail)
        REASONS[named.group(0) if named else detail.split(" (at ")[0][:70]] += 1
    if len(EXAMPLES[kind]) < 12:
        EXAMPLES[kind].append(f"{getattr(fun, '__name__', fun)}: {detail}"[:200])


def _dump():
    with open(os.environ["CG_AUTOGRAD_COUNTS"], "w") as f:
        json.dump({"counts": COUNTS, "by_file": BY_FILE, "reasons": dict(REASONS.most_common(60)), "examples": EXAMPLES}, f, indent=1)


import atexit
atexit.register(_dump)


def _trace(fun, args, kwargs):
    names = [f"a{k}" for k in range(len(args))]
    numbers = (float, int, complex, _np.ndarray, _np.generic)
    arrays = [k for k, a in enumerate(args) if isinstance(a, numbers) and not isinstance(a, bool)]
    src = (f"def wrapped({', '.join(names)}):\n"
           f"    return fun({', '.join(names)}, **kwargs)\n")
    space = {"fun": fun, "kwargs": kwargs}
    exec(src, space)
    wrapped = space["wrapped"]
    shapes = {names[k]: _np.asarray(args[k]) for k in arrays}  # examples: their dtype counts
    for k, a in enumerate(args):
        if k not in arrays:
            raise cg.CircuitError(f"argument {k} is a {type(a).__name__}, not an array")
    return cg.trace(wrapped, shapes=shapes), names


def _complex(args):
    return any(_np.iscomplexobj(a) for a in args if not isinstance(a, (list, tuple, dict)))


def _numeric_grad(fun, args, kwargs, k, v):
    eps = 1e-6
    x = _np.asarray(args[k], dtype=float)
    g = _np.zeros(x.shape)
    for idx in _np.ndindex(x.shape):
        e = _np.zeros(x.shape); e[idx] = eps
        lo = list(args); hi = list(args)
        hi[k] = x + e if x.shape else float(x + e)
        lo[k] = x - e if x.shape else float(x - e)
        g[idx] = (_np.sum(_np.asarray(fun(*hi, **kwargs)) * v)
                  - _np.sum(_np.asarray(fun(*lo, **kwargs)) * v)) / (2 * eps)
    return g


def check_grads(fun, argnums=None, modes=None, order=2, **_):
    def check(*args, **kwargs):
        complex_in = _complex(args)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fun(*args, **kwargs)
        except Exception as e:
            _record("numpy's own error", fun, f"{type(e).__name__}: {e}")
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                c, names = _trace(fun, args, kwargs)
                want = _np.asarray(fun(*args, **kwargs))
                got = cg.to_numpy(c)(*args)
                got = _np.asarray(got if len(c.outputs) == 1 else list(got))
                if want.shape != got.shape or not _np.allclose(got, want, rtol=1e-6, atol=1e-8,
                                                                equal_nan=True):
                    _record("wrong complex" if complex_in else "wrong", fun,
                            f"value {got.ravel()[:3]} vs {want.ravel()[:3]}")
                    return
                v = _np.random.default_rng(0).normal(size=want.shape)
                which = range(len(args)) if argnums is None else (
                    [argnums] if isinstance(argnums, int) else argnums)
                wrt = [names[k] for k in which if k < len(names)]
                space = {"fun": fun, "kwargs": kwargs, "v": v, "np": _np}
                exec(f"def total({', '.join(names)}):\n"
                     f"    return np.sum(fun({', '.join(names)}, **kwargs) * v)\n", space)
                total = cg.trace(space["total"],
                                 shapes={n: _np.asarray(args[k]) for k, n in enumerate(names)})
                g = cg.to_numpy(cg.grad(total, wrt=[f"a{k}" for k in which]))(*args)
                for j, k in enumerate(which):
                    fd = _numeric_grad(fun, args, kwargs, k, v)
                    if not _np.allclose(_np.asarray(g[1 + j]), fd, rtol=1e-4, atol=1e-5,
                                        equal_nan=True):
                        _record("wrong complex" if complex_in else "wrong", fun,
                                f"gradient of argument {k}")
                        return
        except cg.CircuitError as e:
            _record("refused", fun, str(e)[:150])
            return
        except Exception as e:
            _record("crash", fun, f"{type(e).__name__}: {e}")
            return
        _record("ok", fun)
    return check


def _trace_call(fun, a, kwargs):
    return fun(*a, **kwargs)


def combo_check(fun, *args, **kwargs):
    def _combo_check(*arg_lists, **kw_lists):
        pairs = [[(k, x) for x in xs] for k, xs in kw_lists.items()]
        for _args in itertools.product(*arg_lists):
            for _kw in itertools.product(*pairs):
                check_grads(fun, *args, **kwargs)(*_args, **dict(_kw))
    return _combo_check


def scalar_close(a, b):
    return abs(a - b) < 1e-6 or abs(a - b) / abs(a + b) < 1e-6


def value_and_grad(fun, argnum=0):
    def vg(*args, **kwargs):
        c, names = _trace(fun, args, kwargs)
        out = cg.to_numpy(cg.grad(c, wrt=[names[argnum]]))(*args)
        return out[0], out[1]
    return vg


def grad(fun, argnum=0):
    def g(*args, **kwargs):
        c, names = _trace(fun, args, kwargs)
        out = cg.to_numpy(cg.grad(c, wrt=[names[argnum]]))(*args)
        return out[1]
    return g
'''


# autograd's own machinery (primitive, vspace, make_vjp ...) has no stand-in: a test that
# needs it fails on calling the stub, which counts as a test of autograd, not of circuitgrad.
STUBS = """
def __getattr__(name):
    def stub(*args, **kwargs):
        raise NotImplementedError(f"autograd.{name}: autograd's machinery, no circuitgrad stand-in")
    return stub
"""


def main() -> None:
    source = sys.argv[1]
    namespace = sys.argv[sys.argv.index("--namespace") + 1] if "--namespace" in sys.argv \
        else "numpy"
    if namespace not in ("numpy", "circuitgrad"):
        sys.exit("--namespace is numpy or circuitgrad")
    np_module = "numpy" if namespace == "numpy" else "circuitgrad.numpy"
    work = tempfile.mkdtemp(prefix="cg-autograd-")
    tests = os.path.join(work, "tests")
    shutil.copytree(source, tests)
    shim = os.path.join(work, "shim", "autograd")
    os.makedirs(shim)
    with open(os.path.join(shim, "__init__.py"), "w") as f:
        f.write(STUBS + "from builtins import isinstance, tuple, list, dict\n"
                "from .test_util import grad, check_grads, value_and_grad\nderiv = grad\n")
    for module in ("core", "tracer", "misc", "wrap_util", "extend", "util", "builtins"):
        with open(os.path.join(shim, module + ".py"), "w") as f:
            f.write(STUBS + ("from builtins import isinstance, list, tuple, dict\n"
                             if module == "builtins" else ""))
    with open(os.path.join(shim, "test_util.py"), "w") as f:
        f.write(SHIM)
    for name in os.listdir(tests):
        if name.endswith(".py"):
            path = os.path.join(tests, name)
            text = open(path).read()
            text = re.sub(r"import autograd\.numpy\.random as", "import numpy.random as", text)
            text = re.sub(r"import autograd\.numpy as", f"import {np_module} as", text)
            text = re.sub(r"import autograd\.scipy\.(\S+) as", r"import scipy.\1 as", text)
            text = re.sub(r"from autograd\.numpy", "from numpy", text)
            text = re.sub(r"from autograd\.scipy import", "from scipy import", text)
            open(path, "w").write(text)
    counts = os.path.join(work, "counts.json")
    env = dict(os.environ, CG_AUTOGRAD_COUNTS=counts,
               PYTHONPATH=os.pathsep.join([os.path.join(work, "shim"), os.getcwd()]))
    run = subprocess.run(check=False, args=[sys.executable, "-m", "pytest", "-q", "-p",
                                            "no:cacheprovider",
                          "--continue-on-collection-errors", tests], env=env, cwd=work,
                         capture_output=True, text=True)
    print(run.stdout[-3000:])
    data = json.load(open(counts))
    print(json.dumps(data, indent=1))
    kinds = sorted({k for c in data["by_file"].values() for k in c})
    print(f"\n| file | {' | '.join(kinds)} | ok % |\n|---|{'---|' * (len(kinds) + 1)}")
    for name, c in sorted(data["by_file"].items()) + [("all", data["counts"])]:
        total = sum(c.values())
        print(f"| {name} | {' | '.join(str(c.get(k, 0)) for k in kinds)} | "
              f"{100 * c.get('ok', 0) / max(total, 1):.0f} |")


if __name__ == "__main__":
    main()
