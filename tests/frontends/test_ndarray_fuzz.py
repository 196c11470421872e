"""Every public NumPy name and every ndarray attribute, called on traced values of a few
shapes: the same value and gradient as NumPy (central differences), or a CircuitError; never
another exception (issue 25). ``walk()`` returns the counts the closing note reports.

An exception NumPy itself raises for a real array of the same shape (np.add(x) misses an
argument) is NumPy's answer, not a leak, and counts as "numpy's own error".
"""

from __future__ import annotations

import collections
import inspect
import warnings

import numpy as np

import circuitgrad as cg

SHAPES = [(), (3,), (2, 3)]
# Names with effects beyond their result (files, printing, global state) or that wait for
# input: not called.
EFFECTS = {"save", "savez", "savez_compressed", "savetxt", "load", "loadtxt", "genfromtxt",
           "fromfile", "fromregex", "memmap", "info", "show_config", "show_runtime", "test",
           "setbufsize", "seterr", "seterrcall", "set_printoptions", "printoptions",
           "get_printoptions", "source", "who", "lookfor", "tofile", "dump", "dumps",
           "setflags", "resize", "fill", "put", "itemset", "sort", "partition", "byteswap",
           "format_parser", "errstate", "testing", "recfromcsv", "recfromtxt",
           "set_string_function",
           "disp"}
# Names whose argument is not an array (a type code, raw bytes through the buffer protocol,
# which Python 3.11 gives a class no hook for): a traced value there is NumPy's TypeError.
NOT_ARRAYS = {"typename", "frombuffer", "fromstring",
              "empty_like"}  # (its entries are whatever the memory held: nothing to compare)


def numpy_names() -> list[tuple[str, object]]:
    out = []
    for name in sorted(dir(np)):
        if name.startswith("_") or name in EFFECTS or name in NOT_ARRAYS:
            continue
        obj = getattr(np, name)
        if callable(obj) and not inspect.ismodule(obj):
            out.append((name, obj))
    return out


def ndarray_names() -> list[str]:
    return [n for n in sorted(dir(np.ndarray)) if not n.startswith("_") and n not in EFFECTS]


def call_forms(name: str, fn) -> list:
    """The ways a name is called: f(x), and f(x, y) for two-argument ufuncs."""
    if isinstance(fn, np.ufunc) and fn.nin == 2:
        return [lambda f, x: f(x, x * 0.5 + 1.5)]
    return [lambda f, x: f(x)]


def attribute_forms(name: str) -> list:
    attr = getattr(np.ndarray, name)
    if callable(attr):
        return [lambda x: getattr(x, name)()]
    return [lambda x: getattr(x, name)]


def point(shape) -> np.ndarray:
    rng = np.random.default_rng(len(shape))
    return rng.uniform(0.2, 0.9, shape)


def outcome(f, shape) -> str:
    """'worked', 'refused' (a CircuitError), 'numpy' (NumPy's own error on a real array too)
    or 'leak: ...' (another exception, or a value or gradient that differs)."""
    x0 = point(shape)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            want = f(x0.copy())
            want_error = None
        except Exception as e:  # noqa: BLE001 - NumPy's own answer
            want, want_error = None, type(e)
        try:
            c = cg.trace(f, shapes={"x": shape})
            got = cg.to_numpy(c)(x0)
        except cg.CircuitError:
            return "refused"
        except Exception as e:  # noqa: BLE001 - what the test looks for
            if want_error is not None and isinstance(e, want_error):
                return "numpy"
            return f"leak: {type(e).__name__}: {str(e)[:120]}"
        if want_error is not None:
            return f"leak: traced, where NumPy raises {want_error.__name__}"
        want_raw = want
        try:
            want = np.asarray(want, dtype=np.float64)
        except (TypeError, ValueError):
            return f"leak: traced, where NumPy returns {type(want).__name__}"
        many = len(c.outputs) > 1 or isinstance(want_raw, (tuple, list))  # trace's outputs
        got = np.asarray((list(got) if len(c.outputs) > 1 else [got]) if many else got,
                         dtype=np.float64)
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-12, atol=0,
                                                      equal_nan=True):
            return f"leak: value {got.tolist()} vs NumPy's {want.tolist()}"
        if len(c.outputs) == 1 and c.input_shapes.get("x") is not None and "x" in c.inputs:
            try:
                total = cg.trace(lambda x: np.sum(f(x)), shapes={"x": shape})
                g = cg.to_numpy(cg.grad(total, wrt=["x"]))(x0)
            except cg.CircuitError:
                return "worked"  # the value traced; its gradient is refused by name
            dx = np.asarray(g[1])
            h = 1e-6
            fd = np.zeros(shape)
            for k in np.ndindex(shape or ()):
                e = np.zeros(shape)
                e[k] = h
                fd[k] = (np.sum(f(x0 + e)) - np.sum(f(x0 - e))) / (2 * h)
            if not np.allclose(dx, fd, rtol=1e-4, atol=1e-5, equal_nan=True):
                return f"leak: gradient {dx.tolist()} vs central differences {fd.tolist()}"
        return "worked"


def walk() -> tuple[collections.Counter, list[str]]:
    counts, leaks = collections.Counter(), []
    for name, fn in numpy_names():
        for form in call_forms(name, fn):
            for shape in SHAPES:
                r = outcome(lambda x, form=form, fn=fn: form(fn, x), shape)
                counts["numpy", r if not r.startswith("leak") else "leak"] += 1
                if r.startswith("leak"):
                    leaks.append(f"numpy.{name} {shape}: {r}")
    for name in ndarray_names():
        for form in attribute_forms(name):
            for shape in SHAPES:
                r = outcome(form, shape)
                counts["ndarray", r if not r.startswith("leak") else "leak"] += 1
                if r.startswith("leak"):
                    leaks.append(f"ndarray.{name} {shape}: {r}")
    return counts, leaks


def test_every_numpy_name_and_ndarray_attribute_works_or_is_refused():
    counts, leaks = walk()
    assert leaks == []
    assert counts["numpy", "worked"] > 50 and counts["ndarray", "worked"] > 10


if __name__ == "__main__":
    counts, leaks = walk()
    print(dict(counts))
    print("\n".join(leaks))
