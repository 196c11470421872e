"""A loop in the generated code (issue 30): each function binds its loops' runners to readable
names of its own namespace (``scan0``, ``scan1`` ...), with a comment naming the trip count and
the body, and nothing is kept process-wide: the runners go when the function goes."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import circuitgrad as cg
from circuitgrad.primitives import NAMESPACE, PRIMITIVES, loops
from circuitgrad.primitives import _COMPILED


def _decay(steps: int, rate: float = 0.01):
    return cg.trace(lambda x, a: cg.scan(lambda s, _: (s - rate * a * s, None), x,
                                         length=steps)[0].sum(), shapes={"x": 2, "a": ()})


def test_a_gradients_loops_are_named_runners_with_what_they_run():
    f = cg.to_numpy(cg.grad(_decay(100)))
    lines = f.source.splitlines()
    assert lines[2:6] == [
        "    v3 = 0.01 * a",  # (computed from closures only: once, outside the loop)
        "    # scan0: 100 steps of body 0 (2 nodes: 1 carry, 0 sequences, 1 closure), keeping the"
        " carry",
        "    #   before each step",
        "    v4 = scan0(x, v3)"]  # (one forward loop: the value reads the saving loop)
    assert not any(line.startswith("    # scan2:") for line in lines)
    [reverse] = [k for k, line in enumerate(lines) if line.startswith("    # scan1:")]
    assert lines[reverse].endswith("last step first") and "scan1(" in lines[reverse + 1]
    assert "_loops" not in f.source and "_loops" not in NAMESPACE
    assert all(len(line) <= 100 for line in lines)
    x = np.array([1.0, 2.0])
    out = f(x, 0.5)
    assert out.f == pytest.approx(3.0 * (1 - 0.005) ** 100, rel=1e-14)
    assert out.df_dx.tolist() == pytest.approx([(1 - 0.005) ** 100] * 2, rel=1e-14)


def test_a_runner_is_bound_in_its_function_and_goes_with_it():
    f = cg.to_numpy(_decay(7))
    runner = f._namespace["scan0"]
    assert callable(runner)
    assert cg.to_numpy(_decay(7))._namespace["scan0"] is not runner  # one per function
    gone = weakref.ref(runner)
    del f, runner
    gc.collect()
    assert gone() is None


def test_many_loops_leave_no_process_wide_registry():
    # a long process making loops of many trip counts: nothing module-level grows with them
    # (the body's compiled code is cached on the body; bound bodies are bounded: remember)
    sizes = {name: len(v) for name, v in vars(loops).items() if isinstance(v, dict)}
    compiled_scans = sum(1 for key in _COMPILED if key[0] == "scan")
    for steps in range(1, 40):
        for mode in ("compile", "interpret"):
            f = cg.to_numpy(_decay(steps), mode=mode)
            assert float(f(np.ones(2), 1.0)) == pytest.approx(2 * 0.99 ** steps, rel=1e-13)
    for name, v in vars(loops).items():
        if isinstance(v, dict):
            assert len(v) <= sizes.get(name, 0) + 1, name  # (STATS, RULES: fixed keys)
    assert sum(1 for key in _COMPILED if key[0] == "scan") == compiled_scans


def test_equal_loops_share_a_runner_and_other_ones_get_their_own():
    def two(x):
        a, _ = cg.scan(lambda s, _: (s * 0.5, None), x, length=3)
        b, _ = cg.scan(lambda s, _: (s * 0.5, None), x * 2.0, length=3)  # the same loop
        c, _ = cg.scan(lambda s, _: (s * 0.5, None), x, length=4)  # another trip count
        return a + b + c
    f = cg.to_numpy(cg.trace(two))
    calls = [line.split("= ")[1].split("(")[0] for line in f.source.splitlines()
             if "= scan" in line]
    assert calls == ["scan0", "scan0", "scan1"]
    assert f.source.count("# scan0:") == 1 and "# scan1: 4 steps of body 0\n" in f.source
    assert float(f(8.0)) == 1.0 + 2.0 + 0.5


def test_a_runner_never_takes_an_inputs_or_a_nodes_name():
    c = cg.trace(lambda scan0, scan1: cg.scan(lambda s, _: (s * scan0, None), scan1,
                                              length=3)[0])
    f = cg.to_numpy(c)
    assert "    v2 = scan2(scan1, scan0)" in f.source.splitlines()
    assert float(f(2.0, 1.5)) == 12.0


def test_a_loop_inside_a_body_is_a_runner_of_the_bodys_code():
    def nested(a):
        def outer(s, _):
            inner, _ = cg.scan(lambda u, _: (u * a + 1.0, None), s, length=3)
            return inner, inner * 2.0
        s, ys = cg.scan(outer, np.array([0.5, 1.0]), length=2)
        return s.sum() + ys.sum()
    c = cg.trace(nested)
    [(_, _, _, params, _)] = [r for r in c.records() if r[1] == "scan"]
    fn = params["body"].function
    assert "# scan0: 3 steps of body 0" in fn.source and "= scan0(a0, a1)" in fn.source
    assert set(fn.runners) == {"scan0"}

    def plain(a):
        s = np.array([0.5, 1.0])
        total = 0.0
        for _ in range(2):
            for _ in range(3):
                s = s * a + 1.0
            total = total + (2.0 * s).sum()
        return s.sum() + total
    assert float(cg.to_numpy(c)(0.3)) == pytest.approx(plain(0.3), rel=1e-14)


def test_the_template_without_a_runner_refuses_by_name():
    c = _decay(3)
    [(_, _, args, params, _)] = [r for r in c.records() if r[1] == "scan"]
    with pytest.raises(cg.CircuitError, match="scan: a loop's code calls its runner"):
        PRIMITIVES["scan"].code(["x", "a"], params, [c.shape(k) for k in args])


def test_to_fused_binds_the_runners_too():
    c = cg.grad(_decay(5))
    f = cg.to_fused(c)
    assert "scan0(" in f.source
    want = cg.to_numpy(c)(np.array([1.0, 2.0]), 0.5)
    assert all(np.array_equal(g, w) for g, w in zip(f(np.array([1.0, 2.0]), 0.5), want))
