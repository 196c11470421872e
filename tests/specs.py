"""One spec per primitive, read by every per-op test: the primitive tests (values against an
independent NumPy reference at sample arguments inside the domain), the compiled lowerings' tests,
and the hypothesis strategies (``point``: a reference at one point of Python floats, and
``domain``: where a random program may draw the op, smooth and well-conditioned there).

Adding a primitive adds one ``spec(...)`` line here (tests/primitives/test_primitives.py checks that every
record has one).
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import numpy as np
import scipy.linalg


class Spec(NamedTuple):
    reference: Callable[..., Any]  # NumPy reference over the whole sample arrays
    samples: tuple  # sample arguments, inside the op's domain
    params: dict  # the node's params
    point: Callable[..., float] | None  # reference at one point (Python floats), for programs
    domain: Callable[..., bool] | None  # where random programs may draw it


def spec(reference: Callable[..., Any], samples: tuple, params: dict | None = None, *,
         point: Callable[..., float] | None = None,
         domain: Callable[..., bool] | None = None) -> Spec:
    return Spec(reference, samples, params or {}, point, domain)


rng = np.random.default_rng(0)
REALS = rng.uniform(-3, 3, 50)
POSITIVE = rng.uniform(0.1, 5, 50)
UNIT = rng.uniform(-0.95, 0.95, 50)
ABOVE_ONE = rng.uniform(1.05, 5, 50)
# Ties, kinks and jumps on purpose: halves for round, equal pairs for maximum.
STEPS = np.concatenate([REALS, [0.0, -0.0, 0.5, 1.5, -2.5, 2.0]])
TIED = np.round(REALS)
MATRIX = rng.normal(size=(3, 4))
# Well-conditioned matrices for linear algebra: general (det > 0), positive definite, tall.
GENERAL = rng.normal(size=(3, 3)) + 3 * np.eye(3)
SPD = MATRIX[:, :3] @ MATRIX[:, :3].T + 3 * np.eye(3)
TALL = rng.normal(size=(4, 3)) + np.eye(4, 3)

# Ties and NaN on either side and both (fmax, fmin ignore NaN).
WITH_NAN = (np.append(TIED, [np.nan, 1.0, np.nan]), np.append(TIED[::-1], [1.0, np.nan, np.nan]))


def _spherical(x, n):
    from scipy.special import spherical_jn

    return spherical_jn(n.astype(int), np.pi * x) / (np.pi * x) ** n


def _fmax(a, b):
    return a if b != b or a >= b else b


_ORDER = np.array([[2.0, 0.0, 1.0, 3.0, 3.0], [3.0, 1.0, 0.0, 2.0, 1.0],
                   [0.0, 1.0, 2.0, 3.0, 0.0]])


def _put_along_reference(v, i):
    z = np.zeros((3, 5))
    for r in range(3):
        np.add.at(z[r], i[r].astype(int), v[r])
    return z


def _scatter_reference(a, b):
    z = np.zeros((4, 3))
    z[1:4, 0] += a
    z[0, :] += b
    return z


def _put_reference(v):
    z = np.zeros((4, 3))
    np.add.at(z, [0, 2, 2], v)
    return z


def _setitem_reference(x, v):
    z = np.array(x).reshape(-1)
    z[[1, 4, 7]] = v
    return z.reshape(x.shape)


def _digamma(x: float) -> float:
    # ψ(x) by the recurrence ψ(x) = ψ(x + 1) - 1/x up to x ≥ 30, then the asymptotic series
    total = 0.0
    while x < 30.0:
        total -= 1.0 / x
        x += 1.0
    inv2 = 1.0 / (x * x)
    series = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    return total + math.log(x) - 0.5 / x - series


def _trigamma(x: float) -> float:
    # ψ′(x) by ψ′(x) = ψ′(x + 1) + 1/x² up to x ≥ 30, then the asymptotic series
    total = 0.0
    while x < 30.0:
        total += 1.0 / (x * x)
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    return total + inv + 0.5 * inv2 + inv * inv2 * (
        1 / 6 - inv2 * (1 / 30 - inv2 * (1 / 42 - inv2 * (1 / 30 - inv2 * 5 / 66))))


def _erfinv(y: float) -> float:
    # the root of erf(x) = y by bisection, then Newton (math.erf is correctly rounded enough)
    lo, hi = -6.0, 6.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if math.erf(mid) < y else (lo, mid)
    x = 0.5 * (lo + hi)
    return x - (math.erf(x) - y) / (2 / math.sqrt(math.pi) * math.exp(-x * x))


def _scan_body():
    import circuitgrad as cg
    from circuitgrad.primitives.loops import Body

    step = cg.trace(lambda s, x, w: (np.sin(s) * w + x, s * s), shapes={"s": 3, "x": 3, "w": 3})
    return Body(step, carries=1, xs=1)


def _scan_reference(s, xs, w):
    ys = []
    for x in xs:
        ys.append(s * s)
        s = np.sin(s) * w + x
    return np.concatenate([s, np.ravel(ys)])


# name -> spec: one per primitive.
SPECS = {
    "add": spec(np.add, (REALS, REALS[::-1])),
    "sub": spec(np.subtract, (REALS, REALS[::-1])),
    "mul": spec(np.multiply, (REALS, REALS[::-1])),
    "div": spec(np.divide, (REALS, POSITIVE)),
    "pow": spec(np.power, (POSITIVE, REALS)),
    "neg": spec(np.negative, (REALS,),
                point=lambda a: -a, domain=lambda a: True),
    "sin": spec(np.sin, (REALS,),
                point=math.sin, domain=lambda a: True),
    "cos": spec(np.cos, (REALS,),
                point=math.cos, domain=lambda a: True),
    "tanh": spec(np.tanh, (REALS,),
                 point=math.tanh, domain=lambda a: True),
    "exp": spec(np.exp, (REALS,),
                point=math.exp, domain=lambda a: a < 4),
    "log": spec(np.log, (POSITIVE,),
                point=math.log, domain=lambda a: a > 0.2),
    "sqrt": spec(np.sqrt, (POSITIVE,),
                 point=math.sqrt, domain=lambda a: a > 0.2),
    "square": spec(lambda x: x * x, (REALS,),
                   point=lambda a: a * a, domain=lambda a: True),
    "abs": spec(np.abs, (REALS,),
                point=abs, domain=lambda a: abs(a) > 1e-2),
    "relu": spec(lambda x: np.where(x > 0, x, 0.0), (REALS,),
                 point=lambda a: max(a, 0.0), domain=lambda a: abs(a) > 1e-2),
    "sigmoid": spec(lambda x: 1 / (1 + np.exp(-x)), (REALS,),
                    point=lambda a: 1 / (1 + math.exp(-a)), domain=lambda a: True),
    "step": spec(lambda x: (x >= 0).astype(float), (np.append(REALS, 0.0),),
                 point=lambda a: 1.0 if a >= 0 else 0.0, domain=lambda a: abs(a) > 1e-2),
    "sign": spec(np.sign, (np.append(REALS, 0.0),),
                 point=lambda a: (a > 0) - (a < 0), domain=lambda a: abs(a) > 1e-2),
    "log1p": spec(lambda x: np.log(1 + x), (POSITIVE - 0.05,),
                  point=math.log1p, domain=lambda a: a > -0.8),
    "expm1": spec(lambda x: np.exp(x) - 1, (REALS,),
                  point=math.expm1, domain=lambda a: a < 4),
    "softplus": spec(lambda x: np.log(1 + np.exp(x)), (REALS,),
                     point=lambda a: max(a, 0.0) + math.log1p(math.exp(-abs(a))), domain=lambda a: True),
    "erf": spec(np.vectorize(math.erf), (REALS,),
                point=math.erf, domain=lambda a: True),
    "erfc": spec(np.vectorize(math.erfc), (REALS,),
                 point=math.erfc, domain=lambda a: True),
    # SciPy's special functions (primitives/scipy_special.py), against math and closed forms
    "logit": spec(lambda p: np.log(p / (1 - p)), (rng.uniform(0.02, 0.98, 50),),
                  point=lambda a: math.log(a / (1 - a)), domain=lambda a: 0.05 < a < 0.95),
    "xlogy": spec(lambda x, y: np.array([0.0 if a == 0 else a * math.log(b) for a, b in zip(x, y)]),
                  (np.append(REALS, 0.0), np.append(POSITIVE, 0.0)),
                  point=lambda a, b: a * math.log(b), domain=lambda a, b: b > 0.2),
    "xlog1py": spec(lambda x, y: np.array([0.0 if a == 0 else a * math.log1p(b)
                                           for a, b in zip(x, y)]), (np.append(REALS, 0.0),
                                                   np.append(POSITIVE - 0.05, -1.0)),
                    point=lambda a, b: a * math.log1p(b), domain=lambda a, b: b > -0.8),
    "gammaln": spec(np.vectorize(math.lgamma), (POSITIVE * 4,)),
    "digamma": spec(np.vectorize(_digamma), (POSITIVE,)),
    "polygamma": spec(np.vectorize(_trigamma), (POSITIVE,), {"n": 1}),
    "erfinv": spec(lambda y: np.array([_erfinv(v) for v in y]), (UNIT,)),
    "tan": spec(lambda x: np.sin(x) / np.cos(x), (UNIT,),
                point=math.tan, domain=lambda a: abs(a) < 1.2),
    "asin": spec(np.vectorize(math.asin), (UNIT,),
                 point=math.asin, domain=lambda a: abs(a) < 0.9),
    "acos": spec(np.vectorize(math.acos), (UNIT,),
                 point=math.acos, domain=lambda a: abs(a) < 0.9),
    "atan": spec(np.vectorize(math.atan), (REALS,),
                 point=math.atan, domain=lambda a: True),
    "atan2": spec(np.vectorize(math.atan2), (REALS, REALS[::-1]),
                  point=math.atan2, domain=lambda a, b: math.hypot(a, b) > 0.2),
    "sinh": spec(lambda x: (np.exp(x) - np.exp(-x)) / 2, (REALS,),
                 point=math.sinh, domain=lambda a: abs(a) < 4),
    "cosh": spec(lambda x: (np.exp(x) + np.exp(-x)) / 2, (REALS,),
                 point=math.cosh, domain=lambda a: abs(a) < 4),
    "asinh": spec(np.vectorize(math.asinh), (REALS,),
                  point=math.asinh, domain=lambda a: True),
    "acosh": spec(np.vectorize(math.acosh), (ABOVE_ONE,),
                  point=math.acosh, domain=lambda a: a > 1.2),
    "atanh": spec(np.vectorize(math.atanh), (UNIT,),
                  point=math.atanh, domain=lambda a: abs(a) < 0.9),
    "log2": spec(lambda x: np.log(x) / np.log(2), (POSITIVE,),
                 point=math.log2, domain=lambda a: a > 0.2),
    "log10": spec(lambda x: np.log(x) / np.log(10), (POSITIVE,),
                  point=math.log10, domain=lambda a: a > 0.2),
    "exp2": spec(lambda x: 2.0**x, (REALS,),
                 point=lambda a: 2.0**a, domain=lambda a: a < 5),
    "cbrt": spec(lambda x: np.sign(x) * np.abs(x) ** (1 / 3), (np.append(REALS, [0.0, -8.0]),),
                 point=lambda a: a ** (1 / 3), domain=lambda a: a > 0.2),
    "hypot": spec(lambda a, b: np.sqrt(a * a + b * b), (REALS, REALS[::-1]),
                  point=math.hypot, domain=lambda a, b: math.hypot(a, b) > 0.2),
    "floor": spec(np.vectorize(math.floor), (STEPS,),
                  point=math.floor, domain=lambda a: abs(a - round(a)) > 1e-2),
    "ceil": spec(np.vectorize(math.ceil), (STEPS,),
                 point=math.ceil, domain=lambda a: abs(a - round(a)) > 1e-2),
    "round": spec(np.vectorize(round), (STEPS,),
                  point=round, domain=lambda a: abs(a - math.floor(a) - 0.5) > 1e-2),  # Python's round: halves to even, too
    "maximum": spec(np.vectorize(max), (TIED, TIED[::-1]),
                    point=max, domain=lambda a, b: abs(a - b) > 1e-2),
    "minimum": spec(np.vectorize(min), (TIED, TIED[::-1]),
                    point=min, domain=lambda a, b: abs(a - b) > 1e-2),
    "clip": spec(lambda x, lo, hi: np.vectorize(lambda a, low, high: min(max(a, low), high))(x, lo, hi),
             (REALS, np.full(50, -1.0), np.full(50, 1.5))),
    "logaddexp": spec(lambda a, b: np.log(np.exp(a) + np.exp(b)), (REALS, REALS[::-1]),
                      point=lambda a, b: max(a, b) + math.log1p(math.exp(-abs(a - b))), domain=lambda a, b: True),
    # NumPy's division ufuncs, fmax/fmin, logaddexp2 (issue 26): Python's % and // are
    # NumPy's remainder and floor_divide on floats; programs draw them away from the jumps.
    "remainder": spec(np.vectorize(lambda a, b: a % b), (REALS * 3, POSITIVE),
                      point=lambda a, b: a % b,
                      domain=lambda a, b: b > 0.2 and 0.02 < (a % b) / b < 0.98),
    "floor_divide": spec(np.vectorize(lambda a, b: a // b), (REALS * 3, -POSITIVE),
                         point=lambda a, b: a // b,
                         domain=lambda a, b: abs(b) > 0.2 and 0.02 < (a % b) / b < 0.98),
    "fmod": spec(np.vectorize(math.fmod), (REALS * 3, POSITIVE[::-1]),
                 point=math.fmod,
                 domain=lambda a, b: b > 0.2 and 0.02 < abs(math.fmod(a, b)) / b < 0.98),
    "fmax": spec(np.vectorize(lambda a, b: _fmax(float(a), float(b))), WITH_NAN,
                 point=max, domain=lambda a, b: abs(a - b) > 1e-2),
    "fmin": spec(np.vectorize(lambda a, b: -_fmax(-float(a), -float(b))), WITH_NAN,
                 point=min, domain=lambda a, b: abs(a - b) > 1e-2),
    "logaddexp2": spec(lambda a, b: np.log2(2.0**a + 2.0**b), (REALS, REALS[::-1]),
                       point=lambda a, b: max(a, b) + math.log2(1 + 2.0 ** -abs(a - b)),
                       domain=lambda a, b: True),
    "float_power": spec(np.vectorize(lambda a, b: float(a) ** float(b)), (POSITIVE, REALS),
                        point=lambda a, b: a**b, domain=lambda a, b: a > 0.2 and abs(b) < 3),
    "sinc": spec(lambda x: np.array([math.sin(math.pi * v) / (math.pi * v) if v else 1.0
                                     for v in x]), (np.append(REALS, [0.0, 1.0, -2.0]),),
                 point=lambda a: math.sin(math.pi * a) / (math.pi * a) if a else 1.0,
                 domain=lambda a: abs(a) < 4),
    # j_n(πx)/(πx)ⁿ, against scipy's spherical Bessel function (n = 2 here)
    "sinc_d": spec(lambda x, n: _spherical(x, n), (REALS + 0.01, np.full(50, 2.0))),
    "less": spec(lambda a, b: (a < b) * 1.0, (TIED, TIED[::-1])),
    "less_equal": spec(lambda a, b: (a <= b) * 1.0, (TIED, TIED[::-1])),
    "greater": spec(lambda a, b: (a > b) * 1.0, (TIED, TIED[::-1])),
    "greater_equal": spec(lambda a, b: (a >= b) * 1.0, (TIED, TIED[::-1])),
    "equal": spec(lambda a, b: (a == b) * 1.0, (TIED, TIED[::-1])),
    "not_equal": spec(lambda a, b: (a != b) * 1.0, (TIED, TIED[::-1])),
    "logical_and": spec(lambda a, b: np.array([float(bool(p) and bool(q)) for p, q in zip(a, b)]),
                    (TIED, TIED[::-1])),
    "logical_or": spec(lambda a, b: np.array([float(bool(p) or bool(q)) for p, q in zip(a, b)]),
                   (TIED, TIED[::-1])),
    "logical_not": spec(lambda a: np.array([float(not p) for p in a]), (TIED,)),
    "where": spec(lambda c, a, b: np.array([p if k else q for k, p, q in zip(c, a, b)]),
              (TIED, REALS, REALS[::-1])),
    "max": spec(np.max, (MATRIX,)),
    "min": spec(np.min, (MATRIX,)),
    "prod": spec(np.prod, (MATRIX,)),
    "prod_others": spec(lambda x: np.array([[np.prod(np.delete(x.ravel(), 4 * i + j))
                                         for j in range(4)] for i in range(3)]),
                    (np.where(MATRIX > 1.0, 0.0, MATRIX),)),
    "norm": spec(lambda x: math.sqrt(sum(v * v for v in x.ravel())), (MATRIX,)),
    "logsumexp": spec(lambda x: np.log(np.sum(np.exp(x)), ), (MATRIX,)),
    "softmax": spec(lambda x: np.exp(x) / np.sum(np.exp(x)), (MATRIX,)),
    "log_softmax": spec(lambda x: x - np.log(np.sum(np.exp(x))), (MATRIX,)),
    "matmul": spec(np.matmul, (rng.normal(size=(3, 4)), rng.normal(size=(4, 2)))),
    "outer": spec(np.outer, (REALS[:3], REALS[:4])),
    "einsum": spec(lambda a, b, v: np.einsum("ij,jk,k->i", a, b, v),
                   (rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), REALS[:2]),
                   {"subscripts": ((8, 9), (9, 10), (10,), (8,))}),
    "transpose": spec(np.transpose, (rng.normal(size=(3, 4)),)),
    "sum": spec(np.sum, (rng.normal(size=(3, 4)),)),
    "mean": spec(np.mean, (rng.normal(size=(3, 4)),)),
    "sum_to": spec(lambda x: x.sum(axis=0), (rng.normal(size=(3, 4)),), {"shape": (4,), "ndim": 2}),
    "broadcast_to": spec(lambda x: np.broadcast_to(x, (3, 4)), (REALS[:4],), {"shape": (3, 4)}),
    # indexing, joining, reshaping (the params are canonical: see primitives/shape_ops.py)
    "getitem": spec(lambda x: x[1:, 0], (rng.normal(size=(4, 3)),), {"index": ((1, 4, 1), 0)}),
    "scatter_add": spec(_scatter_reference, (REALS[:3], REALS[3:6]),
                    {"shape": (4, 3), "indices": (((1, 4, 1), 0), (0, (0, 3, 1)))}),
    "take": spec(lambda x: x[[0, 2, 2]], (rng.normal(size=(4, 3)),),
             {"indices": (0, 2, 2), "axis": 0}),
    "put_add": spec(_put_reference,
                (rng.normal(size=(3, 3)),), {"indices": (0, 2, 2), "axis": 0, "shape": (4, 3)}),
    "setitem": spec(_setitem_reference, (rng.normal(size=(4, 3)), REALS[:3]),
                    {"positions": (1, 4, 7), "place": (3,)}),
    "concatenate": spec(lambda a, b: np.concatenate([a, b], axis=0),
                    (rng.normal(size=(2, 3)), rng.normal(size=(1, 3))), {"axis": 0}),
    "stack": spec(lambda a, b: np.stack([a, b], axis=1), (REALS[:3], REALS[3:6]), {"axis": 1}),
    "reshape": spec(lambda x: x.reshape(3, 2), (rng.normal(size=(2, 3)),), {"shape": (3, 2)}),
    "permute_dims": spec(lambda x: np.transpose(x, (2, 0, 1)), (rng.normal(size=(2, 1, 3)),),
                     {"axes": (2, 0, 1)}),
    "cumsum": spec(lambda x: np.cumsum(x, axis=1), (rng.normal(size=(2, 4)),), {"axis": 1}),
    # sorting: the stable permutation (float64 integers), the gathers by computed indices
    "argsort": spec(lambda x: np.argsort(x, axis=0, kind="stable").astype(float),
                    (np.round(rng.normal(size=(5, 3))),), {"axis": 0}),
    "take_along_axis": spec(lambda x, i: np.take_along_axis(x, i.astype(int), axis=1),
                            (rng.normal(size=(3, 4)), _ORDER[:, ::-1]), {"axis": 1}),
    "put_along_axis_add": spec(_put_along_reference, (rng.normal(size=(3, 4)), _ORDER[:, :4]),
                               {"axis": 1, "shape": (3, 5)}),
    # linear algebra (primitives/linalg.py), against other routines than the template's
    "solve": spec(lambda a, b: np.linalg.inv(a) @ b, (GENERAL, REALS[:3])),
    "inv": spec(lambda a: np.linalg.solve(a, np.eye(3)), (GENERAL,)),
    "det": spec(lambda a: np.prod(np.linalg.eigvals(a)).real, (GENERAL,)),
    "slogdet": spec(lambda a: np.log(abs(np.prod(np.linalg.eigvals(a)).real)), (GENERAL,)),
    "slogdet_sign": spec(lambda a: np.sign(np.prod(np.linalg.eigvals(a)).real), (-GENERAL,)),
    "cholesky": spec(lambda a: scipy.linalg.cholesky(a, lower=True), (SPD,)),
    "solve_triangular": spec(lambda a, b: np.linalg.solve(np.triu(a), b), (GENERAL, REALS[:3]),
                             {"lower": 0}),
    "eigvalsh": spec(lambda a: np.sort(np.linalg.eigvals(a).real), (SPD,)),
    "eigh_vectors": spec(lambda a: scipy.linalg.eigh(a, driver="evd")[1], (SPD,)),
    "svdvals": spec(lambda a: np.sqrt(np.linalg.eigvalsh(a.T @ a))[::-1], (TALL,)),
    "svd_u": spec(lambda a: np.linalg.svd(a)[0][:, :3], (TALL,)),
    "svd_vh": spec(lambda a: np.linalg.svd(a)[2], (TALL,)),
    "pinv": spec(lambda a: np.linalg.solve(a.T @ a, a.T), (TALL,), {"rtol": 1e-15}),
    "qr_q": spec(lambda a: scipy.linalg.qr(a, mode="economic")[0], (TALL,)),
    "qr_r": spec(lambda a: scipy.linalg.qr(a, mode="economic")[1], (TALL,)),
    # the fused adjoint contributions (fused.py): bar · f′, over (bar, y or x)
    "tanh_vjp": spec(lambda g, y: g * (1 - y * y), (REALS, UNIT)),
    "sigmoid_vjp": spec(lambda g, y: g * (y * (1 - y)), (REALS, POSITIVE / 5)),
    "relu_vjp": spec(lambda g, x: g * (x >= 0), (STEPS[::-1], STEPS)),
    "abs_vjp": spec(lambda g, x: g * np.sign(x), (STEPS[::-1], STEPS)),
    "square_vjp": spec(lambda g, x: g * 2 * x, (REALS, REALS[::-1])),
    "sin_vjp": spec(lambda g, x: g * np.cos(x), (REALS, REALS[::-1])),
    "cos_vjp": spec(lambda g, x: g * np.sin(x), (REALS, REALS[::-1])),
    "sqrt_vjp": spec(lambda g, y: g / (2 * y), (REALS, POSITIVE)),
    # ∂(a**b)/∂a over (s, a, b): (s·b)/a, and the limit s·b·a**(b-1) at the zeros of a
    "pow_vjp": spec(lambda s, a, b: np.array([g * e / x if x else g * e * 0.0 ** (e - 1)
                                              for g, x, e in zip(s, a, b)]),
                    (REALS, np.where(np.abs(REALS) < 0.7, 0.0, REALS), POSITIVE + 1.0)),
    # accumulations of a product into an adjoint (fused.py)
    "add_mul": spec(lambda a, u, v: a + u * v, (REALS, REALS[::-1], POSITIVE)),
    "sub_mul": spec(lambda a, u, v: a - u * v, (REALS, REALS[::-1], POSITIVE)),
    "mul_sub": spec(lambda a, u, v: u * v - a, (REALS, REALS[::-1], POSITIVE)),
    # a loop (primitives/loops.py): s ← sin(s)·w + x over 4 steps, ys s², packed
    "scan": spec(_scan_reference, (REALS[:3], MATRIX.T, REALS[3:6]),
                 {"body": _scan_body(), "length": 4}),
}
