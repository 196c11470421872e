"""Loops (``scan`` nodes) on other array libraries (issue 30): the body's code bound to the
library's namespace, the steps stacked with its ops. Each library against NumPy with
test_arrays' helpers: array-api-strict bit for bit, PyTorch, JAX (also under ``jax.jit``) and
Dask within test_arrays' allowance."""

from __future__ import annotations

import numpy as np
import pytest

import circuitgrad as cg
from circuitgrad.primitives import loops
from test_arrays import LIBRARIES, allowance, assert_close, check_library, jax, on_library

torch = pytest.importorskip("torch")
jnp = jax.numpy

RNG = np.random.default_rng(30)
LIBRARY_NAMES = sorted(LIBRARIES)


def _forward(a):
    # ten steps of a vector carry, no xs, a closure
    final, _ = cg.scan(lambda s, _: (s * a + np.sin(s), None), np.array([0.3, -0.2]),
                       length=10)
    return final


def _with_xs(a, x):
    # a tensor sequence sliced per step, a y stacked per step, a constant carry part
    def step(carry, xt):
        s, _ = carry
        return (np.tanh(s * a + xt), 2.0), s * xt + a
    (s, k), ys = cg.scan(step, (np.ones(2), 0.0), xs=x)
    return s.sum() + k + (ys ** 2).sum()


def _scans(f):
    return [r for r in f.circuit.records() if r[1] == "scan"]


FORWARD = cg.trace(_forward)
WITH_XS = cg.trace(_with_xs, shapes={"a": (), "x": (4, 2)})
VALUES = {"a": np.float64(0.7), "x": RNG.uniform(-1, 1, (4, 2))}


@pytest.mark.parametrize("library", LIBRARY_NAMES)
def test_a_forward_scan_on_each_library_is_numpys(library):
    check_library(library, cg.to_numpy(FORWARD), {"a": np.float64(0.9)})


@pytest.mark.parametrize("library", LIBRARY_NAMES)
def test_a_scan_with_xs_and_ys_on_each_library_is_numpys(library):
    check_library(library, cg.to_numpy(WITH_XS), VALUES)


@pytest.mark.parametrize("library", LIBRARY_NAMES)
def test_a_scans_gradient_on_each_library_is_numpys(library):
    # grad: the forward loop saving its carries, then the reverse loop over the adjoint body
    f = cg.to_numpy(cg.grad(WITH_XS))
    assert "= scan0(" in f.source and "# scan0: 4 steps of body 0" in f.source
    check_library(library, f, VALUES)


@pytest.mark.parametrize("library", LIBRARY_NAMES)
def test_a_checkpointed_gradient_on_each_library_is_numpys(library):
    f = cg.to_numpy(cg.grad(WITH_XS, checkpoints=1))
    assert any(params.get("recompute") is not None for _, op, _, params, _ in _scans(f))
    check_library(library, f, VALUES)


def test_a_batch_on_torch_is_its_points():
    f = cg.to_numpy(cg.grad(WITH_XS))
    batch = {"a": RNG.uniform(0.2, 0.9, 5), "x": RNG.uniform(-1, 1, (5, 4, 2))}
    got = on_library("torch", f, batch)
    want = f(**batch)
    for g, w in zip(got, want):
        assert g.shape == np.shape(w)
        assert_close(g, w, ulps=allowance(f, "torch"))
    for p in range(5):
        point = f(a=batch["a"][p], x=batch["x"][p])
        for g, w in zip(got, point):
            assert_close(g[p], w, ulps=allowance(f, "torch"))


def test_jax_jit_of_a_scans_gradient():
    # each loop one lax.scan over the body's code on tracers
    f = cg.to_numpy(cg.grad(WITH_XS))
    jitted = jax.jit(lambda a, x: tuple(f(a, x)))
    got = jitted(jnp.asarray(VALUES["a"]), jnp.asarray(VALUES["x"]))
    for g, w in zip(got, f(**VALUES)):
        assert isinstance(g, jax.Array)
        assert_close(np.asarray(g), w, ulps=allowance(f, "jax"))


# -- JAX: a loop is one lax.scan, eager or under jax.jit -------------------------------------

def _decay(steps: int):
    # a vector carry, a closure, no xs: the shape of benchmarks/loops.py's RK4
    return cg.trace(lambda x, a: cg.scan(lambda s, _: (s + 0.01 * (np.sin(s) * a - s), None),
                                         x, length=steps)[0].sum(), shapes={"x": 3, "a": ()})


def _primitives(jaxpr) -> list[str]:
    """The primitives of a jaxpr's equations, those of the jaxprs inside them included."""
    found, pending = [], [jaxpr.jaxpr]
    while pending:
        j = pending.pop()
        for eqn in j.eqns:
            found.append(eqn.primitive.name)
            for v in eqn.params.values():
                for inner in v if isinstance(v, (tuple, list)) else [v]:
                    if hasattr(inner, "jaxpr"):  # a ClosedJaxpr
                        pending.append(inner.jaxpr)
                    elif hasattr(inner, "eqns"):
                        pending.append(inner)
    return found


@pytest.mark.parametrize("checkpoints", [None, 2])
def test_under_jax_jit_a_loop_is_one_lax_scan_whatever_its_trip_count(checkpoints):
    # 10 and 1000 steps give jaxprs of one size: each loop one scan (the forward loop, which
    # keeps its carries, and the reverse loop), its body traced once. A checkpointed
    # adjoint loop stays a Python loop (its schedule): it unrolls, said here.
    sizes = {}
    trips = (10, 1000) if checkpoints is None else (10, 40)
    for steps in trips:
        f = cg.to_numpy(cg.grad(_decay(steps), checkpoints=checkpoints))
        jaxpr = jax.make_jaxpr(lambda x, a: tuple(f(x, a)))(jnp.ones(3), jnp.asarray(0.5))
        found = _primitives(jaxpr)
        sizes[steps] = len(found)
        assert found.count("scan") == (2 if checkpoints is None else 1), found
    if checkpoints is None:
        assert sizes[10] == sizes[1000] < 150, sizes
    else:  # the forward loop is one lax.scan; the checkpointed adjoint loop unrolls
        assert sizes[40] > 3 * sizes[10], sizes


def _reverse(a, x):
    # a reverse loop with sequences, ys and a carry that starts constant
    def step(s, xt):
        return s * a + np.cos(xt), s * xt.sum()
    s, ys = cg.scan(step, np.zeros(2), xs=x, reverse=True)
    return s.sum() + (ys * ys).sum()


def _nested(a):
    def outer(s, _):
        inner, _ = cg.scan(lambda u, _: (u * a + 1.0, None), s, length=3)
        return inner, inner * 2.0
    s, ys = cg.scan(outer, np.array([0.5, 1.0]), length=2)
    return s.sum() + ys.sum()


JAX_CASES = {
    "forward": (FORWARD, {"a": np.float64(0.9)}),
    "xs_ys_grad": (cg.grad(WITH_XS), VALUES),
    "xs_ys_grad_batch": (cg.grad(WITH_XS), {"a": RNG.uniform(0.2, 0.9, 5),
                                             "x": RNG.uniform(-1, 1, (5, 4, 2))}),
    "reverse_grad": (cg.grad(cg.trace(_reverse, shapes={"a": (), "x": (3, 2)})),
                     {"a": np.float64(0.6), "x": RNG.uniform(-1, 1, (2, 3, 3, 2))}),
    "nested_grad": (cg.grad(cg.trace(_nested)), {"a": np.float64(0.3)}),
    "checkpointed": (cg.grad(WITH_XS, checkpoints=1), VALUES),
    "no_steps": (cg.grad(cg.trace(lambda a, x: cg.scan(lambda s, xt: (s * a + xt, s), a,
                                                       xs=x)[1].sum() + a,
                                  shapes={"a": (), "x": (0,)})),
                 {"a": np.float64(0.5), "x": np.zeros((0,))}),
}


@pytest.mark.parametrize("case", sorted(JAX_CASES))
def test_jax_jit_and_eager_jax_agree_with_numpy(case):
    # lax.scan under jit and eagerly (jit of the loop, made once): the batch axes in front
    # of the step axis of a sequence, reverse loops, saved carries, loops inside bodies,
    # constant initial carries, a loop of no steps
    c, values = JAX_CASES[case]
    f = cg.to_numpy(c)
    outs = (lambda o: list(o) if len(f.outputs) > 1 else [o])
    want = outs(f(**values))
    args = [jnp.asarray(values[n]) for n in f.inputs]
    eager = outs(f(*args))
    # (no_steps: the output df_dx of shape (0,) is a slice of the packed result, which under
    # jax.jit aborted the process in XLA's compiler while the packed concatenation had empty
    # operands: run in a child process, so that a regression fails this test, not the suite)
    jitted = outs(jax.jit(f)(*args)) if case != "no_steps" else eager
    if case == "no_steps":
        _jit_no_steps_in_a_child()
    ulps = allowance(f, "jax")
    for w, e, j in zip(want, eager, jitted):
        assert isinstance(e, jax.Array) and isinstance(j, jax.Array)
        assert np.shape(e) == np.shape(j) == np.shape(w)
        assert_close(np.asarray(e), w, ulps=ulps)
        assert_close(np.asarray(j), w, ulps=ulps)
        assert_close(np.asarray(j), np.asarray(e), ulps=ulps)


_NO_STEPS_CHILD = """
import numpy as np, jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
import circuitgrad as cg
c = cg.grad(cg.trace(lambda a, x: cg.scan(lambda s, xt: (s * a + xt, s), a, xs=x)[1].sum() + a,
                     shapes={"a": (), "x": (0,)}))
f = cg.to_numpy(c)
out = jax.jit(lambda a, x: tuple(f(a, x)))(jnp.asarray(0.5), jnp.zeros((0,)))
print([np.asarray(o).tolist() for o in out])
g = cg.to_numpy(cg.trace(lambda x, e: np.concatenate([x, e])[2:], shapes={"x": 2, "e": 0}))
print(np.asarray(jax.jit(g)(jnp.ones(2), jnp.zeros(0))).tolist())  # concatenate, not a loop
"""


def _jit_no_steps_in_a_child():
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", _NO_STEPS_CHILD], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-2:] == ["[0.5, 1.0, []]", "[]"]


def test_eager_jax_jits_each_loop_once(monkeypatch):
    monkeypatch.setattr(loops, "_JITTED", {})
    f = cg.to_numpy(cg.grad(WITH_XS))
    before = dict(loops._JITTED)
    args = (jnp.asarray(VALUES["a"]), jnp.asarray(VALUES["x"]))
    first = f(*args)
    made = [k for k in loops._JITTED if k not in before]
    assert len(made) == 2, made  # the forward loop keeping its carries, the reverse loop
    again = f(*args)
    assert [k for k in loops._JITTED if k not in before] == made
    assert all(bool((a == b).all()) for a, b in zip(first, again))


def test_a_loop_inside_a_body_on_torch():
    def nested(a):
        def outer(s, _):
            inner, _ = cg.scan(lambda u, _: (u * a + 1.0, None), s, length=3)
            return inner, inner * 2.0
        s, ys = cg.scan(outer, np.array([0.5, 1.0]), length=2)
        return s.sum() + ys.sum()
    check_library("torch", cg.to_numpy(cg.grad(cg.trace(nested))), {"a": np.float64(0.3)})


def test_the_body_compiles_once_per_namespace():
    f = cg.to_numpy(WITH_XS)
    [body] = [params["body"] for _, _, _, params, _ in _scans(f)]
    for _ in range(3):
        on_library("torch", f, VALUES)
    keys = [k for k in loops._BOUND if k[0] == body.digest and "torch" in k[1].__name__]
    assert len(keys) == 1, keys


def test_a_body_constant_does_not_leak_a_tracer_from_one_jit_into_the_next():
    # the body holds an array constant (W); the circuit around it holds none
    w = np.array([[0.5, 0.1], [0.2, 0.3]])
    c = cg.grad(cg.trace(lambda x: cg.scan(lambda s, xt: (np.tanh(w @ s + xt), None), x[0],
                                           xs=x)[0].sum(), shapes={"x": (3, 2)}))
    f = cg.to_numpy(c)
    x = RNG.uniform(-1, 1, (3, 2))
    want = f(x)
    for run in (jax.jit(lambda v: tuple(f(v))), jax.jit(lambda v: tuple(f(v))), f):
        for g, w_ in zip(run(jnp.asarray(x)), want):
            assert_close(np.asarray(g), w_, ulps=allowance(f, "jax"))


def test_a_loop_refuses_arrays_of_two_libraries_by_name():
    [(_, _, args, params, _)] = _scans(cg.to_numpy(WITH_XS))
    shapes = [WITH_XS.shape(a) for a in args]
    run = loops._scan_function(shapes, **params)
    values = [jnp.zeros(s) for s in shapes]
    values[0] = torch.zeros(shapes[0], dtype=torch.float64)
    with pytest.raises(cg.CircuitError, match="scan: the arguments are not arrays of one "
                                              "array library .*torch.Tensor"):
        run(*values)
    assert np.asarray(run(*[jnp.zeros(s) for s in shapes])).shape == (
        loops.packed_size(params["body"], params["length"], params["save"]),)


def test_the_bound_bodies_kept_are_bounded(monkeypatch):
    # a long process making many loops must not grow the cache of bound bodies without end
    monkeypatch.setattr(loops, "_BOUND", {})
    monkeypatch.setattr(loops, "_BOUND_LIMIT", 2)
    bodies = [loops.Body(cg.trace(lambda s, k=k: s * float(k)), carries=1, xs=0)
              for k in range(2, 6)]
    import array_api_compat.torch as xp
    for body in bodies:
        fn = loops._body_on(body, xp, "cpu")
        assert float(fn(torch.tensor(1.0, dtype=torch.float64))[0]) == float(
            body.function(1.0)[0])
    assert len(loops._BOUND) == 2
    assert [k[0] for k in loops._BOUND] == [b.digest for b in bodies[-2:]]
