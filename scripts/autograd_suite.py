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


def _flatten(obj):
    """The leaves of a container (dicts by sorted key, lists, tuples) and a function that
    rebuilds it from new leaves: the stand-in traces every leaf as its own input."""
    if isinstance(obj, dict):
        keys = sorted(obj)
        parts = [_flatten(obj[k]) for k in keys]
        kind = type(obj)
        def build(leaves, parts=parts, keys=keys, kind=kind):
            out, at = {}, 0
            for k, (ls, b) in zip(keys, parts):
                out[k] = b(leaves[at:at + len(ls)])
                at += len(ls)
            return kind(out) if kind is not dict else out
        return [l for ls, _ in parts for l in ls], build
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        parts = [_flatten(o) for o in obj]
        kind = type(obj)
        def build(leaves, parts=parts, kind=kind):
            out, at = [], 0
            for ls, b in parts:
                out.append(b(leaves[at:at + len(ls)]))
                at += len(ls)
            return kind(out)
        return [l for ls, _ in parts for l in ls], build
    return [obj], lambda leaves: leaves[0]


def _leaf_ok(a):
    numbers = (float, int, complex, _np.ndarray, _np.generic)
    return isinstance(a, numbers) and not isinstance(a, bool)


def _flat_function(fun, args, kwargs, reduce=None, which=None):
    """fun as a function of its arguments' leaves a0, a1 ... (Python source: the names are
    the circuit's inputs), its result's leaves as a tuple (or reduce(result))."""
    # Leaves that are not numbers (strings such as einsum's subscripts, None, ..., bools)
    # are constants of the call, as autograd treats them; the others are inputs.
    flat, builders, owner = [], [], []
    for k, a in enumerate(args):
        leaves, build = _flatten(a)
        # an argument autograd does not differentiate (not in argnums) is a constant, as
        # there: split's indices, an axis given as a list
        fixed = {i: leaf for i, leaf in enumerate(leaves)
                 if not _leaf_ok(leaf) or (which is not None and k not in which)}
        traced = [leaf for i, leaf in enumerate(leaves) if i not in fixed]
        builders.append((len(flat), len(traced), build, fixed, len(leaves)))
        owner += [k] * len(traced)
        flat += traced
    names = [f"a{j}" for j in range(len(flat))]

    def merged(given, fixed, total):
        it = iter(given)
        return [fixed[i] if i in fixed else next(it) for i in range(total)]

    def call(*leaves):
        rebuilt = [b(merged(leaves[at:at + n], fixed, total))
                   for at, n, b, fixed, total in builders]
        out = fun(*rebuilt, **kwargs)
        if reduce is not None:
            return reduce(out)
        leaves_out, _ = _flatten(out)
        return tuple(leaves_out) if len(leaves_out) != 1 else leaves_out[0]

    space = {"call": call}
    exec(f"def wrapped({', '.join(names)}):\n    return call({', '.join(names)})\n", space)
    return space["wrapped"], names, flat, owner


def _trace(fun, args, kwargs, reduce=None, which=None):
    wrapped, names, flat, owner = _flat_function(fun, args, kwargs, reduce, which)
    shapes = {n: _np.asarray(a) for n, a in zip(names, flat)}  # examples: their dtype counts
    return cg.trace(wrapped, shapes=shapes), names, flat, owner


def _complex(args):
    return any(_np.iscomplexobj(a) for a in args if not isinstance(a, (list, tuple, dict)))


def _out_leaves(out):
    return [_np.asarray(l, dtype=float) for l in _flatten(out)[0]]


def _numeric_grad(fun, args, kwargs, flat, j, vs, which=None):
    # central differences of sum(leaf * v) along leaf j of the flattened arguments
    eps = 1e-6
    x = _np.asarray(flat[j], dtype=float)
    g = _np.zeros(x.shape)
    wrapped, _, _, _ = _flat_function(fun, args, kwargs, which=which)
    for idx in _np.ndindex(x.shape):
        e = _np.zeros(x.shape); e[idx] = eps
        hi, lo = list(flat), list(flat)
        hi[j] = x + e if x.shape else float(x + e)
        lo[j] = x - e if x.shape else float(x - e)
        total = 0.0
        for side, sign in ((hi, 1), (lo, -1)):
            outs = _out_leaves(_rebuilt_call(wrapped, side))
            total += sign * sum(_np.sum(o * v) for o, v in zip(outs, vs))
        g[idx] = total / (2 * eps)
    return g


def _rebuilt_call(wrapped, flat):
    out = wrapped(*flat)
    return list(out) if isinstance(out, tuple) else out


def check_grads(fun, argnums=None, modes=None, order=2, argnum=None, **_):
    argnums = argnum if argnums is None else argnums
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
                which = range(len(args)) if argnums is None else (
                    [argnums] if isinstance(argnums, int) else argnums)
                which = set(which)
                c, names, flat, owner = _trace(fun, args, kwargs, which=which)
                wants = _out_leaves(fun(*args, **kwargs))
                got = cg.to_numpy(c)(*flat)
                gots = [_np.asarray(g) for g in (got if len(c.outputs) > 1 else (got,))]
                if len(gots) != len(wants) or any(
                        w.shape != g.shape or not _np.allclose(g, w, rtol=1e-6, atol=1e-8,
                                                               equal_nan=True)
                        for w, g in zip(wants, gots)):
                    _record("wrong complex" if complex_in else "wrong", fun,
                            f"value {gots[0].ravel()[:3]} vs {wants[0].ravel()[:3]}")
                    return
                rng = _np.random.default_rng(0)
                vs = [rng.normal(size=w.shape) for w in wants]
                wrt = [n for n, k in zip(names, owner) if k in which]
                if not wrt:
                    _record("ok", fun)
                    return

                def reduce(out):
                    leaves, _ = _flatten(out)
                    return sum(_np.sum(l * v) for l, v in zip(leaves, vs))

                total, _, _, _ = _trace(fun, args, kwargs, reduce, which)
                g = cg.to_numpy(cg.grad(total, wrt=wrt))(*flat)
                for i, name in enumerate(wrt):
                    fd = _numeric_grad(fun, args, kwargs, flat, names.index(name), vs, which)
                    if not _np.allclose(_np.asarray(g[1 + i]), fd, rtol=1e-4, atol=1e-5,
                                        equal_nan=True):
                        _record("wrong complex" if complex_in else "wrong", fun,
                                f"gradient of leaf {name}")
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
        return fun(*args, **kwargs), cg.grad(lambda *a: fun(*a, **kwargs), argnums=argnum)(*args)
    return vg


def grad(fun, argnum=0):
    # autograd's grad(fun, argnum) is cg.grad of the function (containers included)
    def g(*args, **kwargs):
        return cg.grad(lambda *a: fun(*a, **kwargs), argnums=argnum)(*args)
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
    if len(sys.argv) < 2 or not os.path.isdir(sys.argv[1]):
        sys.exit(__doc__.strip().splitlines()[0] + "\n\nusage: " + next(
            x.strip() for x in __doc__.splitlines() if x.strip().startswith("python scripts/")))
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
