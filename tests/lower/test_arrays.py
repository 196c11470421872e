"""The generated code on other array libraries (issue 17): one source, the namespace taken from
the inputs. array-api-strict (the standard's own strict implementation over NumPy) proves that
nothing NumPy-only slipped into the templates and agrees with NumPy exactly; PyTorch CPU
tensors, JAX arrays (also under ``jax.jit``) and Dask arrays (chunked along the batch axes, and
on a ``dask.distributed`` cluster) agree within ARRAY_ULPS. CuPy runs where a GPU is present.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import circuitgrad as cg
from circuitgrad.errors import CircuitError
from circuitgrad.primitives import NAMESPACE, PRIMITIVES, arrays, runtime, special
from strategies import FUNCTIONS2, UNARY, programs, tensor_programs
from test_batch import batch_of, same_bits
from tolerances import ARRAY_ULPS
from paths import ROOT

array_api_strict = pytest.importorskip("array_api_strict")
torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
da = pytest.importorskip("dask.array")
jax.config.update("jax_enable_x64", True)  # circuitgrad computes in float64
jnp = jax.numpy

EXAMPLES = ROOT / "examples"
STANDARD_ONLY = ("erf", "erfc")  # helpers the standard column refuses (no stable form)


def _has_gpu() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    import cupy

    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver, no device
        return False


GPU = _has_gpu()

def _dask(v, rank: int):
    # chunks of two along the batch axes, a point in one chunk (a sum over a chunked point
    # axis is Dask's tree of partial sums: right, but not NumPy's bits)
    v = np.asarray(v)
    return da.from_array(v, chunks=(2,) * (v.ndim - rank) + v.shape[v.ndim - rank:])


# Each library: (numpy value, its point rank) -> its array, and its array -> numpy.
LIBRARIES = {
    "strict": (lambda v, r: array_api_strict.asarray(v), lambda a: np.asarray(a._array)),
    "torch": (lambda v, r: torch.asarray(np.asarray(v)), lambda a: a.numpy()),
    "jax": (lambda v, r: jnp.asarray(v), np.asarray),
    "dask": (_dask, lambda a: np.asarray(a.compute())),
}
if GPU:
    import cupy

    LIBRARIES["cupy"] = (lambda v, r: cupy.asarray(v), cupy.asnumpy)


def assert_close(got, want, ulps: int = ARRAY_ULPS) -> None:
    """Within ``ulps`` units in the last place of the larger magnitude (or of 1 at values
    below 1: an absolute floor, since a difference of rounding is relative to the operands,
    not to a result that cancels to near 0); NaN where NaN, infinities equal."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    nan = np.isnan(want)
    assert np.array_equal(nan, np.isnan(got)), (got, want)
    inf = np.isinf(want)
    assert np.array_equal(got[inf], want[inf]), (got, want)
    finite = ~nan & ~inf
    scale = np.maximum(np.maximum(np.abs(got[finite]), np.abs(want[finite])), 1.0)
    err = np.abs(got[finite] - want[finite])
    assert np.all(err <= ulps * np.spacing(scale)), (got, want, (err / np.spacing(scale)).max())


def on_library(name: str, f, values: dict) -> list[np.ndarray]:
    """``f`` called with every input as an array of library ``name``; the outputs as NumPy
    arrays, after checking that they came back as arrays of that library."""
    to, back = LIBRARIES[name]
    shapes = f.circuit.input_shapes
    out = f(**{k: to(v, len(shapes[k])) for k, v in values.items()})
    outs = list(out) if len(f.outputs) > 1 else [out]
    kind = type(to(np.zeros(2), 0))
    for o in outs:
        assert isinstance(o, kind), (name, type(o))
    return [back(o) for o in outs]


def uses(f, names) -> bool:
    return any(re.search(rf"\b_sp\.{n}\(", f.source) for n in names)


# Where a library computes exactly NumPy's bits: array-api-strict runs NumPy's own functions,
# except for these spellings (a helper's standard form: other arithmetic). (Dask too runs NumPy
# per block, but its matmul, vecdot and transposes of blocks sum in other orders.)
NOT_NUMPY_BITS = {"strict": ("_sp.matvec(", "_sp.vecmat(", "_sp.exp2(", "_sp.cbrt(",
                             "_sp.logaddexp2(", "_sp.float_power(",
                             # SciPy's logit, xlogy, xlog1py against their standard forms
                             "_sp.logit(", "_sp.xlogy(", "_sp.xlog1py(")}


# A library's own elementary function further from NumPy's (libm's) than ARRAY_ULPS: a bound
# just above the worst measured over 10⁵ points of the domain, so a regression past it fails.
KNOWN_ULPS = {("jax", "log1p"): 72,  # XLA's log1p: 63.5 ulp at x ≈ -0.414 (√2/2 - 1)
              ("jax", "atanh"): 40,  # XLA's atanh (by log1p): 32 ulp at x ≈ 0.414
              ("jax", "xlog1py"): 72,  # x·log1p(y) with XLA's log1p
              # Not measured (no GPU here): CUDA's documented maxima plus libm's 1 ulp
              ("cupy", "erfc"): 6, ("cupy", "asinh"): 4, ("cupy", "acosh"): 4}


def allowance(f, library: str) -> int:
    """The ulps a whole program may differ by: per op, ARRAY_ULPS or the library's known
    worse bound for an op the program has (each library's elementary functions round on their
    own, and the differences propagate), times the most terms one sum adds (the largest point
    axis: a sum in another order rounds otherwise)."""
    c = f.circuit
    ops = [c.op(i) for i in range(len(c)) if c.op(i) not in ("input", "const")]
    per_op = max([ARRAY_ULPS] + [KNOWN_ULPS.get((library, op), 0) for op in ops])
    terms = max([1] + [n for s in c.input_shapes.values() for n in s])
    return per_op * max(1, len(ops)) * terms


def check_library(name: str, f, values: dict) -> None:
    with np.errstate(all="ignore"):
        want = f(**values)
    wants = list(want) if len(f.outputs) > 1 else [want]
    if name == "strict" and uses(f, STANDARD_ONLY):
        with pytest.raises(CircuitError, match="the array API standard has no erf"):
            on_library(name, f, values)
        return
    with np.errstate(all="ignore"):  # Dask computes with NumPy (log of the negative points)
        got = on_library(name, f, values)
    exact = name in NOT_NUMPY_BITS and not any(s in f.source for s in NOT_NUMPY_BITS[name])
    ulps = allowance(f, name)
    spreads = None if exact else nudged_spread(f, values, wants, per_op_ulps(f, name))
    for k, (out_name, g, w) in enumerate(zip(f.outputs, got, wants)):
        if exact:
            assert same_bits(g, w), (name, out_name, g, w)
            continue
        # An entry as far from NumPy's as NumPy's own moves when each function's result
        # moves by a library's ulps is within the contract too: an ill-conditioned step
        # (acos near 1 after a pow 1 ulp apart) magnifies any last-bit difference.
        g = np.array(np.asarray(g, dtype=np.float64))
        w = np.asarray(w, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            inside = np.isfinite(g) & np.isfinite(w) & (np.abs(g - w) <= spreads[k])
        g[inside] = w[inside]
        assert_close(g, w, ulps=ulps)


def per_op_ulps(f, library: str) -> int:
    ops = [f.circuit.op(i) for i in range(len(f.circuit))]
    return max([ARRAY_ULPS] + [KNOWN_ULPS.get((library, op), 0) for op in ops])


class _Nudged:
    """A namespace whose functions return NumPy's result moved ``ulps`` ulps (up or down):
    what a library whose elementary functions round otherwise may give at each step."""

    def __init__(self, ns, ulps: float):
        self._ns, self._ulps = ns, ulps

    def __getattr__(self, name: str):
        attr = getattr(self._ns, name)
        if not callable(attr) or isinstance(attr, type):
            return attr

        def nudged(*args, **kwargs):
            out = attr(*args, **kwargs)
            if isinstance(out, (np.ndarray, np.floating)) and out.dtype == np.float64:
                with np.errstate(all="ignore"):
                    return out + self._ulps * np.spacing(out)
            return out
        return nudged


def nudged_spread(f, values: dict, wants: list, ulps: int) -> list:
    """For each output entry, how far NumPy's own result moves when every function call of
    the generated code (``xp.*``, ``_sp.*``: the libraries' own elementary functions; the
    operators are IEEE's, exact everywhere) moves its result by ``ulps`` ulps, down or up."""
    spreads = [np.zeros(np.shape(w)) for w in wants]
    if getattr(f, "_code", None) is None:  # (interpreted: no generated code to nudge)
        return spreads
    for sign in (-1.0, 1.0):
        space = dict(f._namespace)
        space["xp"] = _Nudged(space["xp"], sign * ulps)
        space["_sp"] = _Nudged(space["_sp"], sign * ulps)
        exec(f._code, space)  # noqa: S102 - the generated code, in a nudged namespace
        with np.errstate(all="ignore"):
            out = space[f._name](*[np.asarray(values[k], dtype=np.float64)
                                   for k in f.inputs])
        outs = list(out) if len(f.outputs) > 1 else [out]
        for k, (o, w) in enumerate(zip(outs, wants)):
            with np.errstate(invalid="ignore"):
                d = np.abs(np.asarray(o, dtype=np.float64) - np.asarray(w, dtype=np.float64))
            spreads[k] = np.fmax(spreads[k], np.where(np.isfinite(d), d, 0.0))
    return spreads


@pytest.mark.parametrize("library", sorted(LIBRARIES))
@pytest.mark.parametrize("name", sorted(UNARY) + sorted(FUNCTIONS2))
def test_each_elementwise_primitive_is_within_4_ulp_of_numpy(library, name):
    # One op on 200 points of its domain: the libraries' own elementary functions.
    ok = UNARY[name][1] if name in UNARY else FUNCTIONS2[name][1]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if name in UNARY:
        points = [a for a in rng.uniform(-3, 3, 600) if ok(a)][:200]
        c = cg.parse("-x" if name == "neg" else f"{name}(x)")
        values = {"x": np.array(points)}
    else:
        pairs = [(a, b) for a, b in rng.uniform(-3, 3, (600, 2)) if ok(a, b)][:200]
        c = cg.parse(f"{name}(x, y)")
        values = {"x": np.array([a for a, _ in pairs]), "y": np.array([b for _, b in pairs])}
    f = cg.to_numpy(c)
    want = f(**values)
    if library == "strict" and uses(f, STANDARD_ONLY):
        with pytest.raises(CircuitError, match="the array API standard has no erf"):
            on_library(library, f, values)
        return
    (got,) = on_library(library, f, values)
    assert_close(got, want, ulps=KNOWN_ULPS.get((library, name), ARRAY_ULPS))
    if library in NOT_NUMPY_BITS and not any(s in f.source for s in NOT_NUMPY_BITS[library]):
        assert same_bits(got, want)


SETTINGS = settings(max_examples=15, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("library", sorted(LIBRARIES))
@SETTINGS
@given(program=programs(max_ops=10))
def test_random_programs_and_their_gradients_agree_with_numpy(library, program):
    text, point, _ = program
    c = cg.parse(text)
    f = cg.to_numpy(cg.grad(c, wrt=list(c.inputs)))
    check_library(library, f, batch_of(c, seed=len(text), batch=(5,)))


@pytest.mark.parametrize("library", sorted(LIBRARIES))
@SETTINGS
@given(program=tensor_programs(max_ops=6))
def test_random_tensor_programs_and_their_gradients_agree_with_numpy(library, program):
    text, shapes = program
    c = cg.parse(text, shapes=shapes, inputs=list(shapes))
    f = cg.to_numpy(cg.grad(c))
    check_library(library, f, batch_of(c, seed=len(text), batch=(4,)))


def _example(name: str):
    sys.path.insert(0, str(EXAMPLES))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(EXAMPLES))


def _two_layer():
    two = _example("two_layer")
    shapes = {"W1": (two.M, two.D), "x": (two.D,), "b1": (two.M,), "w2": (two.M,)}
    c = cg.parse(two.PROGRAM, shapes=shapes)
    return cg.grad(c, wrt=["W1", "b1", "w2", "b2"])


def _multilayer():
    ml = _example("multilayer")
    shapes = {"x": (ml.SIZES[0],), "y": (ml.SIZES[-1],)}
    for k in range(1, len(ml.SIZES)):
        shapes[f"W{k}"], shapes[f"b{k}"] = (ml.SIZES[k], ml.SIZES[k - 1]), (ml.SIZES[k],)
    return cg.grad(cg.parse(ml.program(ml.SIZES), shapes=shapes))


@pytest.mark.parametrize("library", sorted(LIBRARIES))
@pytest.mark.parametrize("network", [_two_layer, _multilayer], ids=["two_layer", "multilayer"])
def test_the_notes_networks_agree_with_numpy(library, network):
    g = network()
    f = cg.to_numpy(g)
    rng = np.random.default_rng(7)
    # a batch of 6 samples (x, y batched), parameters shared
    values = {n: rng.normal(size=((6,) if n in ("x", "y") else ()) + s)
              for n, s in g.input_shapes.items()}
    check_library(library, f, values)


def test_jax_jit_of_a_generated_gradient_agrees_with_numpy():
    g = _multilayer()
    f = cg.to_numpy(g)
    rng = np.random.default_rng(3)
    values = {n: rng.normal(size=((8,) if n in ("x", "y") else ()) + s)
              for n, s in g.input_shapes.items()}
    jitted = jax.jit(f)
    got = jitted(**{k: jnp.asarray(v) for k, v in values.items()})
    assert type(got).__name__ == "Outputs" and isinstance(got.J, jax.Array)
    for g_, w in zip(got, f(**values)):
        assert_close(np.asarray(g_), w, ulps=allowance(f, "jax"))
    # traced once, then called again with new values: the same function of the inputs
    values["x"] = values["x"] * 2.0
    again = jitted(**{k: jnp.asarray(v) for k, v in values.items()})
    assert_close(np.asarray(again.dJ_dW1), f(**values).dJ_dW1, ulps=allowance(f, "jax"))


def test_tracing_never_asks_a_tracer_for_its_device(monkeypatch):
    # JAX builds the error of tracer.device from the whole trace so far: asked at every
    # take and scatter of a gradient, it made jax.jit's trace quadratic in the circuit
    # (an unrolled loop of 30 RK4 steps: minutes). arrays.device says None at once.
    asked = []
    ask = jax.core.Tracer.device

    def device(self):
        asked.append(type(self).__name__)
        return ask.fget(self)
    monkeypatch.setattr(jax.core.Tracer, "device", property(device))
    x = np.arange(4.0)
    c = cg.grad(cg.trace(lambda v: (v[[1, 2, 3, 0]] * v[[3, 0, 1, 2]]).sum(),
                         shapes={"v": (4,)}))
    assert {"take", "put_add"} & {c.op(i) for i in range(len(c))}
    f = cg.to_numpy(c)
    got = jax.jit(f)(jnp.asarray(x))
    assert asked == []
    assert_close(np.asarray(got.df_dv), f(x).df_dv, ulps=allowance(f, "jax"))
    assert arrays.device(np.ones(2)) == "cpu"


def test_a_function_with_array_constants_jits_twice():
    # Its constants, moved to JAX inside the first trace, were kept: the second jax.jit of
    # the same function then met the first trace's tracers (UnexpectedTracerError).
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    f = cg.to_numpy(cg.trace(lambda x: np.tanh(W @ x).sum(), shapes={"x": (2,)}))
    x = jnp.array([0.1, 0.2])
    want = f(np.array([0.1, 0.2]))
    assert float(jax.jit(f)(x)) == pytest.approx(want, rel=1e-14)
    assert float(jax.jit(lambda x: f(x) * 2.0)(x)) == pytest.approx(2.0 * want, rel=1e-14)
    assert float(f(x)) == pytest.approx(want, rel=1e-14)


def test_dask_inputs_give_lazy_arrays_and_the_mean_gradient_reduces_in_a_tree():
    g = _two_layer()
    f = cg.to_numpy(g)
    rng = np.random.default_rng(5)
    n = 1000
    params = {n_: rng.normal(size=s) for n_, s in g.input_shapes.items() if n_ not in ("x", "y")}
    x, y = rng.normal(size=(n, 4)), rng.normal(size=n)
    out = f(x=da.from_array(x, chunks=(100, 4)), y=da.from_array(y, chunks=100), **params)
    assert isinstance(out.dJ_dW1, da.Array) and out.dJ_dW1.chunks[0] == (100,) * 10
    mean = da.mean(out.dJ_dW1, axis=0)
    # dask's own reduction: partial sums per chunk, combined in a tree (no single step reads
    # all ten chunks' results at once beyond its split_every)
    layers = mean.__dask_graph__().layers
    assert any("mean-partial" in k or "mean_chunk" in k for k in layers), list(layers)
    want = f(x=x, y=y, **params).dJ_dW1.mean(axis=0)
    assert_close(mean.compute(), want, ulps=64)  # a tree's sum order is not NumPy's pairwise


def test_dask_on_a_distributed_local_cluster():
    distributed = pytest.importorskip("distributed")
    g = _two_layer()
    f = cg.to_numpy(g)
    rng = np.random.default_rng(6)
    params = {n_: rng.normal(size=s) for n_, s in g.input_shapes.items() if n_ not in ("x", "y")}
    x, y = rng.normal(size=(200, 4)), rng.normal(size=200)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        out = f(x=da.from_array(x, chunks=(50, 4)), y=da.from_array(y, chunks=50), **params)
        got = client.compute(out.dJ_dW1).result()
        total = client.compute(da.sum(out.J)).result()
    want = f(x=x, y=y, **params)
    assert same_bits(got, want.dJ_dW1)
    assert_close(total, want.J.sum(), ulps=64)


@pytest.mark.skipif(not GPU, reason="CuPy tests need CuPy and an NVIDIA GPU; none here "
                                    "(scripts/gpu_check.sh installs CuPy and runs them)")
def test_cupy_arrays_stay_on_the_gpu():
    import cupy

    g = _two_layer()
    f = cg.to_numpy(g)
    rng = np.random.default_rng(8)
    values = {n: rng.normal(size=((16,) if n in ("x", "y") else ()) + s)
              for n, s in g.input_shapes.items()}
    out = f(**{k: cupy.asarray(v) for k, v in values.items()})
    assert all(isinstance(o, cupy.ndarray) for o in out)
    for o, w in zip(out, f(**values)):
        assert_close(cupy.asnumpy(o), w)


# -- binding and refusals ----------------------------------------------------------------------

def test_numbers_and_numpy_arrays_join_the_library_of_the_other_inputs():
    f = cg.to_numpy(cg.parse("J = sum(W @ x) * s", shapes={"W": (2, 3), "x": (3,)}))
    W = np.arange(6.0).reshape(2, 3)
    got = f(W=W, x=torch.ones(4, 3), s=2.0)  # four points, W and s one point each
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    assert got.tolist() == [30.0] * 4
    # float32 and integer tensors compute in float64, as NumPy inputs do
    assert f(W=torch.asarray(W, dtype=torch.float32), x=torch.ones(3, dtype=torch.int64),
             s=2).dtype == torch.float64


def test_inputs_of_two_libraries_are_refused_by_name():
    f = cg.to_numpy(cg.parse("x * y"))
    with pytest.raises(CircuitError, match=r"different libraries \(x: torch.Tensor, y: jax"):
        f(x=torch.ones(2), y=jnp.ones(2))


def test_jax_without_float64_is_refused_not_computed_in_float32():
    f = cg.to_numpy(cg.parse("sin(x)"))
    with jax.enable_x64(False):
        x = jnp.ones(3)  # float32: JAX cannot make float64 arrays here
        with pytest.warns(UserWarning), \
                pytest.raises(CircuitError, match="'x': jax gives float32 .* jax_enable_x64"):
            f(x=x)
    assert f(x=jnp.ones(3)).dtype == jnp.float64


def test_a_wrong_point_shape_is_a_shape_error_on_any_library():
    f = cg.to_numpy(cg.parse("J = sum(v)", shapes={"v": (3,)}))
    with pytest.raises(cg.ShapeError, match="input 'v' has shape"):
        f(v=torch.ones(4, 2))


def test_constant_outputs_and_array_constants_live_on_the_inputs_library():
    c = cg.parse("J = x * 0.0 + 2.0\nK = sum(x * y)", shapes={"y": (3,)})
    f = cg.to_numpy(cg.grad(c, output="K"))
    out = f(x=torch.ones(5), y=torch.ones(3))
    assert all(isinstance(o, torch.Tensor) for o in out), [type(o) for o in out]
    assert out.dK_dy.shape == (5, 3)


def test_the_interpreted_lowering_compiles_for_another_library():
    c = cg.parse("J = sin(x) * y + exp(x)")
    f = cg.to_numpy(cg.grad(c), mode="interpret")
    x = np.linspace(-1, 1, 4)
    got = f(x=torch.asarray(x), y=2.0)
    assert isinstance(got.J, torch.Tensor)
    assert_close(got.dJ_dx.numpy(), f(x=x, y=2.0).dJ_dx)


# -- the helper table --------------------------------------------------------------------------

def _template_calls(prefix: str) -> set[str]:
    """Every ``prefix.NAME`` the templates of the table can emit, over their cases."""
    from circuitgrad.primitives import shape_cases

    found = set()
    for name, prim in PRIMITIVES.items():
        if prim.arity == 0:
            continue
        if isinstance(prim.template, str):
            found |= set(re.findall(rf"{prefix}\.(\w+)", prim.template))
            continue
        for shapes in shape_cases(name):
            try:
                text = prim.code([f"a{k}" for k in range(len(shapes))], prim.example, shapes)
            except Exception:  # a template whose params the example does not give
                continue
            found |= set(re.findall(rf"{prefix}\.(\w+)", text))
    return found


def test_every_helper_a_template_calls_is_in_the_table_for_every_library():
    sp = _template_calls("_sp")
    assert sp and sp <= set(arrays.HELPERS), sp - set(arrays.HELPERS)
    assert {"matvec", "logsumexp", "erf", "exp2"} <= sp
    for name, row in arrays.HELPERS.items():
        # NumPy's column is special.py, which the NumPy namespace binds as _sp
        assert row["numpy"] == f"special.{name}" and callable(getattr(special, name)), name
        assert "standard" in row and set(row) <= set(arrays.LIBRARIES), name
    cg_names = _template_calls("_cg") - {"s_"}
    assert cg_names <= set(arrays.RUNTIME), cg_names - set(arrays.RUNTIME)
    for name in arrays.RUNTIME:
        assert callable(getattr(runtime, name)), name
    assert NAMESPACE["_sp"] is special and NAMESPACE["_cg"] is runtime


def test_no_template_calls_numpy_outside_the_standard():
    # NumPy is bound as xp, so a NumPy-only function would still run on NumPy: the strict
    # namespace has only the standard's names, and every xp.NAME must be one of them.
    xp = set(_template_calls("xp"))
    missing = {n for n in xp if not hasattr(array_api_strict, n)}
    assert xp and not missing, missing


def test_the_strict_namespace_refuses_erf_by_name():
    f = cg.to_numpy(cg.parse("erf(x)"))
    with pytest.raises(CircuitError, match="no erf of standard"):
        f(x=array_api_strict.asarray([0.5]))


# -- the page docs/gpu_and_clusters.md ---------------------------------------------------------

PAGE = ROOT / "docs" / "gpu_and_clusters.md"


def test_the_page_lists_every_helper_and_its_examples_run():
    import doctest

    from test_docs import pycon_blocks

    text = PAGE.read_text(encoding="utf-8")
    table = [line for line in text.splitlines() if line.startswith("| `")]
    for name in arrays.HELPERS:
        assert any(f"`{name}`" in line for line in table), f"the page's table lacks {name}"
    blocks = pycon_blocks(text)
    assert blocks
    for line, code in blocks:
        test = doctest.DocTestParser().get_doctest(code, {}, PAGE.name, str(PAGE), line)
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
        runner.run(test)
        assert not runner.failures, f"{PAGE.name}:{line}: a block's output differs"


# -- scripts/gpu_check.sh, as far as a machine without a GPU can run it ------------------------

def test_gpu_check_script_parses_and_its_tables_run_with_numpy_standing_in():
    import subprocess

    root = ROOT
    subprocess.run(["bash", "-n", str(root / "scripts" / "gpu_check.sh")], check=True)
    from benchmarks import gpu

    text = gpu.main(["--xp", "numpy", "--quick"])
    rows = [line for line in text.splitlines() if line.startswith("| 1e+")]
    assert len(rows) == 2 and all(line.endswith("| 0.0e+00 |") for line in rows), rows
    assert "| 64 |" in text


def test_jax_flushes_subnormals_as_the_page_says():
    """gpu_and_clusters.md: XLA on CPU flushes subnormals to zero. If a JAX release stops
    doing so, the page's sentence is wrong: this fails and says so."""
    f = cg.to_numpy(cg.parse("J = sigmoid(x)"))
    assert float(f(np.float64(-720.0))) > 0.0  # NumPy's: the subnormal kept
    assert float(f(jax.numpy.asarray(-720.0))) == 0.0, "JAX kept a subnormal: fix the page"
    assert "flushes subnormal numbers to zero" in PAGE.read_text(encoding="utf-8")
