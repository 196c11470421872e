"""Derivatives at special points: every primitive's edge points in one table (value, first and
second derivative), compared against JAX and autograd where they are installed.

Each difference from a peer is deliberate and a row of docs/semantics.md ("Derivatives where f
is not differentiable", "Derivatives at special points"): ``DELIBERATE`` below lists them, and a
test fails on any other difference (and on a listed one that no longer occurs).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import circuitgrad as cg

inf, nan = math.inf, math.nan

# (program, peer's name of the function, the special points): one or two arguments x, y.
EDGES: list[tuple[str, str, list[tuple[float, ...]]]] = [
    ("sin(x)", "sin", [(0.0,), (-0.0,)]),
    ("cos(x)", "cos", [(0.0,)]),
    ("tanh(x)", "tanh", [(0.0,), (1000.0,), (-1000.0,)]),
    ("exp(x)", "exp", [(0.0,), (-1000.0,)]),
    ("log(x)", "log", [(0.0,), (1.0,)]),
    ("sqrt(x)", "sqrt", [(0.0,), (1.0,)]),
    ("square(x)", "square", [(0.0,)]),
    ("abs(x)", "abs", [(0.0,), (1.0,)]),
    ("relu(x)", "relu", [(0.0,), (1.0,), (-1.0,)]),
    ("sigmoid(x)", "sigmoid", [(0.0,), (1000.0,), (-1000.0,)]),
    ("softplus(x)", "softplus", [(0.0,), (1000.0,), (-1000.0,)]),
    ("log1p(x)", "log1p", [(-1.0,), (0.0,)]),
    ("expm1(x)", "expm1", [(0.0,)]),
    ("erf(x)", "erf", [(0.0,)]),
    ("erfc(x)", "erfc", [(0.0,), (10.0,)]),
    ("tan(x)", "tan", [(0.0,)]),
    ("asin(x)", "arcsin", [(0.0,), (1.0,), (-1.0,)]),
    ("acos(x)", "arccos", [(0.0,), (1.0,)]),
    ("atan(x)", "arctan", [(0.0,)]),
    ("sinh(x)", "sinh", [(0.0,)]),
    ("cosh(x)", "cosh", [(0.0,)]),
    ("asinh(x)", "arcsinh", [(0.0,)]),
    ("acosh(x)", "arccosh", [(1.0,)]),
    ("atanh(x)", "arctanh", [(0.0,), (1.0,)]),
    ("log2(x)", "log2", [(0.0,), (1.0,)]),
    ("log10(x)", "log10", [(0.0,), (1.0,)]),
    ("exp2(x)", "exp2", [(0.0,)]),
    ("floor(x)", "floor", [(0.5,), (1.0,)]),
    ("ceil(x)", "ceil", [(0.5,), (1.0,)]),
    ("sign(x)", "sign", [(0.0,)]),
    ("x ** y", "power", [(0.0, 2.0), (0.0, 0.5), (0.0, 3.0), (2.0, 0.0), (1.0, 0.0)]),
    ("x ** 2", "square", [(0.0,)]),
    ("x ** 0.5", "sqrt", [(0.0,)]),
    ("hypot(x, y)", "hypot", [(0.0, 0.0), (3.0, 4.0)]),
    ("atan2(x, y)", "arctan2", [(0.0, 0.0), (0.0, 1.0)]),
    ("maximum(x, y)", "maximum", [(1.0, 1.0), (0.0, 1.0)]),
    ("minimum(x, y)", "minimum", [(1.0, 1.0)]),
    ("logaddexp(x, y)", "logaddexp", [(1000.0, 1000.0), (0.0, 0.0)]),
]

# (program, point, order) -> why circuitgrad differs from the peer (docs/semantics.md rows).
# order 0 is the value, 1 the gradient, 2 the Hessian. "*" for every peer, else the peer.
DELIBERATE: dict[tuple[str, tuple, int, str], str] = {
    ("abs(x)", (0.0,), 1, "jax"): "abs′(0) = sign(0) = 0, the middle subgradient (JAX: 1)",
    ("relu(x)", (0.0,), 1, "*"): "relu′(0) = 1, the notes' 1(z ≥ 0) (JAX 0, autograd ½)",
    ("atanh(x)", (1.0,), 2, "jax"): "atanh″(1) = inf, the IEEE quotient (JAX: nan)",
    ("hypot(x, y)", (0.0, 0.0), 1, "*"): "hypot′(0, 0) = 0, the middle subgradient",
    ("hypot(x, y)", (0.0, 0.0), 2, "*"): "hypot″ at the origin: the rule a/hypot with "
                                          "hypot replaced by 1 (no limit exists)",
    ("tanh(x)", (1000.0,), 2, "autograd"): "tanh″ from 1 − tanh², exact 0 (autograd: nan)",
    ("tanh(x)", (-1000.0,), 2, "autograd"): "the same",
    ("sigmoid(x)", (-1000.0,), 1, "autograd"): "σ(1 − σ), exact 0 (autograd's 1/(1+e^-x): nan)",
    ("sigmoid(x)", (-1000.0,), 2, "autograd"): "the same",
    ("x ** y", (2.0, 0.0), 2, "autograd"): "autograd's Hessian is not symmetric there "
                                            "(2.0 and 0.5); 0.5 = x^(y-1)(1 + y log x) is right",
    ("x ** y", (0.0, 0.5), 2, "*"): "the Hessian where ∂/∂x is inf: ∂²/∂y² = 0, the limit of "
                                     "x^y·log²x, one mixed entry inf (x^(y-1) at 0), the rest "
                                     "NaN (inf·0); the peers: NaN in every entry",
}


def ours(program: str, point: tuple[float, ...]) -> list[np.ndarray]:
    c = cg.parse(f"J = {program}")
    names = ["x", "y"][: len(point)]
    h = cg.hessian(c, wrt=[n for n in names if n in c.inputs])
    values = dict(zip(names, point))
    out = cg.to_numpy(h)(**{n: values[n] for n in h.inputs})
    k = len([n for n in names if n in c.inputs])
    flat = list(out)
    return [np.array(flat[0]), np.array(flat[1:1 + k]), np.array(flat[1 + k:]).reshape(k, k)]


def jax_peer():
    jax = pytest.importorskip("jax", reason="JAX is not installed: no JAX column")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    fns = {"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "softplus": jax.nn.softplus,
           "erf": jax.scipy.special.erf, "erfc": jax.scipy.special.erfc}

    def run(name: str, program: str, point: tuple[float, ...]) -> list[np.ndarray]:
        fn = fns.get(name) or getattr(jnp, name)
        if program == "x ** 2":
            f = lambda v: v[0] ** 2.0
        elif program == "x ** 0.5":
            f = lambda v: v[0] ** 0.5
        else:
            f = lambda v: fn(*v)
        v = jnp.array(point, dtype=jnp.float64)
        return [np.array(f(v)), np.array(jax.grad(f)(v)), np.array(jax.hessian(f)(v))]

    return run


def autograd_peer():
    ag = pytest.importorskip("autograd", reason="autograd is not installed: no autograd column")
    import autograd.numpy as anp
    import autograd.scipy.special as asp

    fns = {"relu": lambda x: anp.maximum(x, 0.0), "sigmoid": lambda x: 1 / (1 + anp.exp(-x)),
           "softplus": lambda x: anp.logaddexp(0.0, x), "erf": asp.erf, "erfc": asp.erfc}

    def run(name: str, program: str, point: tuple[float, ...]) -> list[np.ndarray]:
        fn = fns.get(name) or getattr(anp, name)
        if program == "x ** 2":
            f = lambda v: v[0] ** 2.0
        elif program == "x ** 0.5":
            f = lambda v: v[0] ** 0.5
        else:
            f = lambda v: fn(*[v[k] for k in range(len(point))])
        v = np.array(point, dtype=np.float64)
        return [np.array(f(v)), np.array(ag.grad(f)(v)), np.array(ag.hessian(f)(v))]

    return run


def same(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    both_nan = np.isnan(a) & np.isnan(b)
    close = np.isclose(a, b, rtol=1e-12, atol=0.0) | (a == b)
    return bool(np.all(both_nan | close))


def differences(peer_name: str, peer) -> dict[tuple, str]:
    found = {}
    for program, name, points in EDGES:
        for point in points:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mine = ours(program, point)
                try:
                    theirs = peer(name, program, point)
                except Exception as e:  # noqa: BLE001 - a peer's own failure is its column
                    found[(program, point, -1, peer_name)] = f"{peer_name} failed: {e}"
                    continue
            for order, (a, b) in enumerate(zip(mine, theirs)):
                if not same(a, b):
                    found[(program, point, order, peer_name)] = (
                        f"circuitgrad {a.tolist()} vs {peer_name} {np.asarray(b).tolist()}")
    return found


@pytest.mark.parametrize("peer_name", ["jax", "autograd"])
def test_edge_points_agree_with_peers_except_the_deliberate_differences(peer_name):
    peer = jax_peer() if peer_name == "jax" else autograd_peer()
    found = differences(peer_name, peer)
    listed = {k: v for k, v in DELIBERATE.items() if k[3] in (peer_name, "*")}
    unexplained = {k: v for k, v in found.items()
                   if k not in DELIBERATE and (k[0], k[1], k[2], "*") not in DELIBERATE}
    assert unexplained == {}
    gone = [k for k in listed if (k[0], k[1], k[2], peer_name) not in found]
    assert gone == []


def test_the_exponent_derivative_of_zero_to_a_power_is_its_limit_in_every_lowering():
    g = cg.grad(cg.parse("J = x ** y"))
    x = np.array([0.0, -0.0, 0.0, 2.0, 1e-300, np.nan])
    y = np.array([0.7, 3.0, 2.0, 0.7, 400.0, 1.0])
    with np.errstate(all="ignore"):
        for lower in (cg.to_numpy, cg.to_tape, cg.to_c):
            dy = np.asarray(lower(g)(x=x, y=y).dJ_dy)
            assert dy[:3].tolist() == [0.0, 0.0, 0.0] and not np.signbit(dy[0]), lower.__name__
            assert dy[3] == pytest.approx(2.0 ** 0.7 * math.log(2.0), rel=1e-15)
            assert dy[4] == 0.0 and np.isnan(dy[5]), lower.__name__


def test_sinc_d_with_an_array_of_orders_refuses_another_library_by_name():
    # The per-order loop runs in NumPy: another library's x would come back as NumPy's array
    # (or fail unnamed on a GPU), so it is refused; NumPy's own result is the per-entry one.
    xps = pytest.importorskip("array_api_strict")
    from circuitgrad.primitives.special import sinc_derivative

    x, n = np.array([0.0, 0.5, 1.5]), np.array([1.0, 2.0, 1.0])
    want = [float(sinc_derivative(np, v, m)) for v, m in zip(x, n)]
    assert sinc_derivative(np, x, n).tolist() == want
    assert float(sinc_derivative(xps, xps.asarray(0.0), 1.0)) == 1 / 3
    with pytest.raises(cg.CircuitError, match=r"sinc_d: an array of orders n .* NumPy only"):
        sinc_derivative(xps, xps.asarray(x), n)


@pytest.mark.parametrize("lower", [cg.to_numpy, cg.to_tape, cg.to_c])
def test_sigmoid_is_scipys_expit_within_2_ulps_of_the_exact_value(lower):
    """sigmoid is SciPy's expit (exp(-|x|), then 1/(1 + e) or e/(1 + e)): within 2 ulps of
    the exact value wherever that is a normal number (exp(-logaddexp(0, -x)) was 32 ulps off
    near x = -700), the subnormal results below x = -709 kept, and the extremes exact."""
    mpmath = pytest.importorskip("mpmath")
    special = pytest.importorskip("scipy.special")
    mpmath.mp.prec = 120
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-40, 40, 1500), rng.uniform(-745, 40, 1500)])
    exact = np.array([float(1 / (1 + mpmath.exp(-mpmath.mpf(float(v))))) for v in x])
    got = lower(cg.parse("J = sigmoid(x)"))(x)
    normal = exact >= np.finfo(np.float64).tiny
    ulps = np.abs(got - exact)[normal] / np.spacing(exact[normal])
    # 2.0 measured (NumPy's AVX-512 exp, 3,000 points); the contract's bound for sigmoid, 4,
    # asserted: NumPy's exp kernels differ by CPU
    assert ulps.max() <= 4
    assert np.allclose(got[normal], special.expit(x)[normal], rtol=4 * 2.0**-52, atol=0)
    edges = lower(cg.parse("J = sigmoid(x)"))(np.array([-1000.0, -720.0, 0.0, -0.0, 1000.0]))
    assert edges.tolist()[0] == 0.0 and 0.0 < edges[1] < 1e-300 and \
        edges.tolist()[2:] == [0.5, 0.5, 1.0]
