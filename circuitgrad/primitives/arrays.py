"""The array libraries the generated code runs on, and the ONE table of helpers for the steps
the array API standard lacks.

Templates call the standard's functions on ``xp`` (``xp.sin``, ``xp.pow``, ``xp.vecdot``,
``xp.matrix_transpose``); what the standard has no function for they call as ``_sp.NAME``
(``erf``, ``logsumexp``, ``matvec`` ...), and the joins and scatters as ``_cg.NAME``.
:func:`namespace` binds the three names for one library: NumPy gets :data:`NAMESPACE` (NumPy
itself, :mod:`~circuitgrad.primitives.special`, :mod:`~circuitgrad.primitives.runtime`: the
fast path, unchanged); any other library its namespace from ``array_api_compat`` and, for each
helper, its column of :data:`HELPERS`: the library's own function where it has one, else the
``standard`` column, written here in the standard's own ops (the stable forms: the maximum
shifted out of ``logsumexp``, the largest magnitude scaled out of ``norm``), else a refusal
naming the helper and the library.

    >>> import array_api_strict as xps
    >>> ns = namespace(xps)
    >>> ns["xp"] is xps, float(ns["_sp"].logsumexp(xps.asarray([1000.0, 1000.0]), (-1,)))
    (True, 1000.6931471805599)
"""

from __future__ import annotations

import functools
import importlib
import math
import types
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import CircuitError
from . import special
from .core import NAMESPACE

LIBRARIES = ("numpy", "cupy", "torch", "jax", "dask", "standard")
"""The columns of :data:`HELPERS`; ``standard`` serves every other library (array-api-strict,
ndonnx ...) and every library's missing cells."""


# -- the standard column: the helpers in the standard's own ops ------------------------------

def _exp2(xp: Any, x: Any) -> Any:
    return xp.pow(2.0, x)


def _cbrt(xp: Any, x: Any) -> Any:
    # |x|^(1/3) with x's sign, then a Newton step (1/3 is inexact: pow alone errs ~60 ulp at
    # 1e300): within 1 ulp of NumPy's; ±0, ±inf and nan are themselves.
    special = (x == 0.0) | xp.isinf(x) | xp.isnan(x)
    y = xp.where(special, 1.0, xp.sign(x) * xp.pow(xp.abs(x), 1.0 / 3.0))
    return xp.where(special, x, y - (y - x / (y * y)) / 3.0)


def _pow(xp: Any, a: Any, b: Any) -> Any:
    # NumPy's rule for a scalar exponent (sqrt at 0.5, square at 2, reciprocal at -1) at every
    # entry, as circuitgrad's pow is everywhere.
    return xp.where(b == 0.5, xp.sqrt(a), xp.where(b == 2.0, xp.square(a), xp.where(
        b == -1.0, 1.0 / a, xp.pow(a, b))))


def _pow_vjp(xp: Any, s: Any, a: Any, b: Any) -> Any:
    # (s·b)/a where a ≠ 0, the limit s·b·a**(b-1) at a = 0 (as special.pow_vjp).
    limit = s * _where(xp, b, b * _pow(xp, a, b - 1.0), xp.zeros_like(b))
    zero = xp.where(b < 0.0, s * _pow(xp, a, b) * b / a, limit)
    return xp.where(a != 0.0, s * b / a, zero)


def _logit(xp: Any, x: Any) -> Any:
    # SciPy's two ranges: log(x/(1 - x)), and log1p(s) - log1p(-s), s = 2(x - 0.5), near 1/2.
    s = 2.0 * (x - 0.5)
    return xp.where((x < 0.3) | (x > 0.65), xp.log(x / (1.0 - x)), xp.log1p(s) - xp.log1p(-s))


def _xlogy(xp: Any, x: Any, y: Any) -> Any:
    return xp.where((x == 0.0) & (y == y), xp.zeros_like(x * y), x * xp.log(y))


def _xlog1py(xp: Any, x: Any, y: Any) -> Any:
    return xp.where((x == 0.0) & (y == y), xp.zeros_like(x * y), x * xp.log1p(y))


def _sigmoid(xp: Any, x: Any) -> Any:
    e = xp.exp(-xp.abs(x))  # special.sigmoid's operations, in the standard's
    return xp.where(x >= 0.0, xp.ones_like(e), e) / (1.0 + e)


def _log1p(xp: Any, x: Any) -> Any:
    return xp.log1p(x)


def _atanh(xp: Any, x: Any) -> Any:
    return xp.atanh(x)


def _fmod(xp: Any, a: Any, b: Any) -> Any:
    # C's fmod: the remainder of the magnitudes (exact, as fmod is), with a's sign (-0 kept).
    return xp.copysign(xp.remainder(xp.abs(a), xp.abs(b)), a)


def _fmax(xp: Any, a: Any, b: Any) -> Any:
    # NumPy's fmax: a where a >= b or b is NaN (so NaN only where both are), else b.
    return xp.where((a >= b) | xp.isnan(b), a, b)


def _fmin(xp: Any, a: Any, b: Any) -> Any:
    return xp.where((a <= b) | xp.isnan(b), a, b)


def _logaddexp2(xp: Any, a: Any, b: Any) -> Any:
    # NumPy's npy_logaddexp2: a + 1 at a tie, else the larger + log2(1 + 2^-|a - b|).
    d = a - b
    lo = xp.log1p(xp.pow(2.0, -xp.abs(d))) * 1.4426950408889634
    return xp.where(a == b, a + 1.0, xp.where(d > 0.0, a + lo, xp.where(d <= 0.0, b + lo, d)))


def _float_power(xp: Any, a: Any, b: Any) -> Any:
    return xp.pow(a, b)


def _sinc(xp: Any, x: Any) -> Any:
    y = 3.141592653589793 * xp.where(x == 0.0, 1e-20, x)
    return xp.sin(y) / y


def _sinc_d(xp: Any, x: Any, n: Any) -> Any:
    from .special import sinc_derivative

    return sinc_derivative(xp, x, n)


def _matvec(xp: Any, a: Any, b: Any) -> Any:
    # A vector as a one-column matrix, so that batch axes in front of both broadcast.
    return (a @ b[..., None])[..., 0]


def _vecmat(xp: Any, a: Any, b: Any) -> Any:
    return (a[..., None, :] @ b)[..., 0, :]


def _einsum(xp: Any, subscripts: str, *operands: Any) -> Any:
    return special.contract(xp, subscripts, *operands)


def _dask_gufunc(name: str, signature: str) -> Callable[..., Any]:
    # NumPy's gufunc on each block of a Dask array; a point's axes are joined into one chunk
    # first if the caller split them (points are small; batch axes keep their chunks).
    def apply(xp: Any, *args: Any) -> Any:
        import dask.array

        return dask.array.apply_gufunc(getattr(np, name), signature, *args,
                                       allow_rechunk=True, output_dtypes=np.float64)

    return apply


def _where(xp: Any, c: Any, a: Any, b: Any) -> Any:
    if not hasattr(a, "shape") and not hasattr(b, "shape"):
        # two numbers (a derivative's 0/1 factors): float64 on c's device, not the library's
        # default dtype (torch: float32)
        a = xp.asarray(a, dtype=xp.float64, device=device(c))
    return xp.where(c != 0.0, a, b)


def _shift(xp: Any, x: Any, axis: tuple[int, ...]) -> Any:
    # The maximum along axis, kept; 0 where it is not finite (as special._shift).
    m = xp.max(x, axis=axis, keepdims=True)
    return xp.where(xp.isfinite(m), m, 0.0)


def _logsumexp(xp: Any, x: Any, axis: tuple[int, ...]) -> Any:
    m = _shift(xp, x, axis)
    out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    return xp.squeeze(out, axis=axis)


def _softmax(xp: Any, x: Any, axis: tuple[int, ...]) -> Any:
    e = xp.exp(x - _shift(xp, x, axis))
    return e / xp.sum(e, axis=axis, keepdims=True)


def _log_softmax(xp: Any, x: Any, axis: tuple[int, ...]) -> Any:
    z = x - _shift(xp, x, axis)
    return z - xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True))


def _norm(xp: Any, x: Any, axis: tuple[int, ...]) -> Any:
    a = xp.abs(x)
    s = xp.max(a, axis=axis, keepdims=True)
    s = xp.where(s == 0.0, 1.0, s)
    scaled = xp.sqrt(xp.sum(xp.square(a / s), axis=axis, keepdims=True)) * s
    return xp.squeeze(xp.where(xp.isinf(s), xp.inf, scaled), axis=axis)


def _prod_others(xp: Any, x: Any, axis: tuple[int, ...], *vs: Any) -> Any:
    # Exclusive products from the left times those from the right (as special.prod_others);
    # with directions vs, special.exclusive_products in the library's ops.
    if vs:
        x, *vs = xp.broadcast_arrays(x, *vs)
    if not axis:
        return xp.zeros_like(x) if vs else xp.ones_like(x)
    k = len(axis)
    moved = [xp.moveaxis(a, axis, tuple(range(-k, 0))) for a in (x, *vs)]
    lead = tuple(moved[0].shape[:moved[0].ndim - k])
    flat = [xp.reshape(a, lead + (-1,)) for a in moved]
    if vs:
        n = flat[0].shape[-1]
        ones = xp.ones(lead, dtype=x.dtype, device=device(x))
        columns = special.exclusive_products([[a[..., j] for j in range(n)] for a in flat],
                                             lambda u, v: u * v, lambda u, v: u + v, ones)
        out = xp.stack([xp.zeros_like(ones) if c is None else c for c in columns], axis=-1)
        out = xp.reshape(out, moved[0].shape)
    else:
        flat = flat[0]
        ones = xp.ones(lead + (1,), dtype=x.dtype, device=device(x))
        left = xp.concat([ones, xp.cumulative_prod(flat[..., :-1], axis=-1)], axis=-1)
        right = xp.concat([ones, xp.cumulative_prod(xp.flip(flat[..., 1:], axis=-1), axis=-1)],
                          axis=-1)
        out = xp.reshape(left * xp.flip(right, axis=-1), moved[0].shape)
    return xp.moveaxis(out, tuple(range(-k, 0)), axis)


def _linalg(name: str) -> Callable[..., Any]:
    def apply(xp: Any, *args: Any) -> Any:
        return getattr(xp.linalg, name)(*args)

    return apply


def _eigh_upper_vectors(xp: Any, a: Any) -> Any:
    # The upper triangle of A is the lower one of Aᵀ (the vectors' signs the library's).
    return xp.linalg.eigh(xp.matrix_transpose(a))[1]


def _eigh_vectors(xp: Any, a: Any) -> Any:
    return xp.linalg.eigh(a)[1]


def _svd_u(xp: Any, a: Any) -> Any:
    return xp.linalg.svd(a, full_matrices=False)[0]


def _svd_vh(xp: Any, a: Any) -> Any:
    return xp.linalg.svd(a, full_matrices=False)[2]


def _pinv(xp: Any, a: Any, rtol: float = 1e-15) -> Any:
    return xp.linalg.pinv(a, rtol=rtol)


def _solve_triangular(xp: Any, a: Any, b: Any, lower: bool = False) -> Any:
    # The triangle A is read from, solved as a general matrix (the standard has no
    # triangular solve).
    return xp.linalg.solve(xp.tril(a) if lower else xp.triu(a), b)


# -- the standard runtime (_cg): joins, takes and scatters with batch axes --------------------

def device(x: Any) -> Any:
    """The device of array ``x`` (``array_api_compat.device``); None for a value JAX is
    tracing (``jax.jit``, ``lax.scan``), which has none. Asked of a tracer, JAX builds its
    error message from the whole trace so far: a call per node made tracing quadratic in the
    circuit's size (an unrolled loop of 30 RK4 steps took minutes to trace).

        >>> device(np.ones(2))
        'cpu'
    """
    import sys

    jax = sys.modules.get("jax")
    if jax is not None and isinstance(x, jax.core.Tracer):
        return None
    import array_api_compat

    return array_api_compat.device(x)


def _shape(xp: Any, x: Any) -> tuple[int, ...]:
    return tuple(getattr(x, "shape", ()))


def _arrays(xp: Any, values: Sequence[Any]) -> list[Any]:
    # Python numbers (scalar constants of the code) as arrays on the others' device.
    like = next(v for v in values if hasattr(v, "shape"))
    return [v if hasattr(v, "shape") else xp.asarray(v, dtype=xp.float64, device=device(like))
            for v in values]


def _batched(xp: Any, values: Sequence[Any], rank: int) -> list[Any]:
    arrays = _arrays(xp, values)
    batch = np.broadcast_shapes(*(tuple(a.shape)[:a.ndim - rank] for a in arrays))
    return [a if tuple(a.shape)[:a.ndim - rank] == batch else
            xp.broadcast_to(a, batch + tuple(a.shape)[a.ndim - rank:]) for a in arrays]


def _broadcast_to(xp: Any, x: Any, shape: tuple[int, ...], rank: int,
                  axis: int | None = None) -> Any:
    if not hasattr(x, "shape"):  # a number: a constant is not folded into an array
        x = xp.asarray(x, dtype=xp.float64)
    n = len(shape)
    batch = tuple(x.shape)[:x.ndim - rank]
    if axis is not None:
        x = x[(Ellipsis, None) + (slice(None),) * (n - 1 - axis)]
    elif rank < n:
        x = x[(Ellipsis,) + (None,) * (n - rank) + (slice(None),) * rank]
    return xp.broadcast_to(x, batch + tuple(shape))


def _reshape(xp: Any, x: Any, shape: tuple[int, ...], rank: int) -> Any:
    batch = tuple(x.shape)[:x.ndim - rank]
    if _is("dask", xp) and rank:
        # Block by block, each point in one chunk: Dask cannot reshape every chunking of the
        # batch axes together with the point axes, and needs not to.
        x = x.rechunk({a: -1 for a in range(x.ndim - rank, x.ndim)})
        return x.map_blocks(lambda b: b.reshape(b.shape[:b.ndim - rank] + tuple(shape)),
                            chunks=x.chunks[:x.ndim - rank] + tuple((n,) for n in shape),
                            dtype=x.dtype, new_axis=None if len(shape) <= rank else
                            list(range(x.ndim, x.ndim - rank + len(shape))),
                            drop_axis=None if len(shape) >= rank else
                            list(range(x.ndim - rank + len(shape), x.ndim)))
    return xp.reshape(x, batch + tuple(shape))


def _concatenate(xp: Any, values: Sequence[Any], axis: int, rank: int) -> Any:
    values = _batched(xp, values, rank)
    # Empty operands left out (the same result): XLA's compiler aborts the process on a slice
    # of a concatenation's empty operand under jax.jit.
    kept = [v for v in values if v.shape[axis] != 0]
    return xp.concat(kept if kept else values[:1], axis=axis)


def _stack(xp: Any, values: Sequence[Any], axis: int, rank: int) -> Any:
    return xp.stack(_batched(xp, values, rank), axis=axis)


def _flip(xp: Any, x: Any, axis: Any) -> Any:
    return xp.flip(x, axis=axis)


def _take(xp: Any, x: Any, indices: Sequence[int], axis: int) -> Any:
    # (the NumPy lowering hoists a long list into an intp array: as Python ints here)
    indices = indices.tolist() if isinstance(indices, np.ndarray) else list(indices)
    return xp.take(x, xp.asarray(indices, device=device(x)), axis=axis)


def _standard_place(index: tuple, value: Any, shape: tuple[int, ...], xp: Any) -> tuple:
    """A place ``(..., entries)`` and its value as the standard indexes (and torch): no new
    axes (``None``; the value's axis of length 1 is dropped) and no negative steps (the slice
    runs forward, the value is flipped)."""
    entries = list(index[1:])
    axis, out_axis = len(shape), value.ndim  # from the end: the point's and the value's axes
    squeeze, flip = [], []
    for k in range(len(entries) - 1, -1, -1):
        e = entries[k]
        if e is None:
            out_axis -= 1
            squeeze.append(out_axis - value.ndim)
            continue
        axis -= 1
        if isinstance(e, slice):
            out_axis -= 1
            start, stop, step = e.indices(shape[axis])
            if step < 0:
                m = len(range(start, stop, step))
                entries[k] = slice(start + step * (m - 1), start + 1, -step) if m else e
                flip.append(out_axis - value.ndim)
    for a in flip:
        value = xp.flip(value, axis=a)
    if squeeze:
        value = xp.squeeze(value, axis=tuple(squeeze))
    return (Ellipsis,) + tuple(e for e in entries if e is not None), value


def _add_at(xp: Any, out: Any, index: tuple, value: Any) -> Any:
    # out[index] += value, as a new array where arrays are immutable (JAX).
    if _is("jax", xp):
        return out.at[index].add(value)
    out[index] = out[index] + value
    return out


def _scatter_add(xp: Any, shape: tuple[int, ...], places: Sequence[tuple[Any, int]],
                 *values: Any) -> Any:
    values = _arrays(xp, values)
    batch = np.broadcast_shapes(*(tuple(v.shape)[:v.ndim - r]
                                  for (_, r), v in zip(places, values)))
    out = xp.zeros(tuple(batch) + tuple(shape), dtype=xp.float64, device=device(values[0]))
    for (index, _), v in zip(places, values):
        out = _add_at(xp, out, *_standard_place(index, v, tuple(shape), xp))
    return out


def _put_add(xp: Any, value: Any, shape: tuple[int, ...], axis: int,
             indices: Sequence[int]) -> Any:
    batch = tuple(value.shape)[:value.ndim - len(shape)]
    out = xp.zeros(batch + tuple(shape), dtype=xp.float64, device=device(value))
    rest = (slice(None),) * (-axis - 1)
    for j, k in enumerate(indices):  # in index order, as np.add.at adds repeated indices
        out = _add_at(xp, out, (Ellipsis, k) + rest, value[(Ellipsis, j) + rest])
    return out


def _setitem(xp: Any, x: Any, v: Any, shape: tuple[int, ...], rank: int,
             positions: Sequence[int], sources: Sequence[int] | None,
             place: tuple[int, ...]) -> Any:
    # In standard ops: one gather from x's entries followed by v's (no writes, for JAX too).
    x, v = _arrays(xp, (x, v))
    bx, bv = tuple(x.shape)[:x.ndim - len(shape)], tuple(v.shape)[:v.ndim - rank]
    batch = tuple(np.broadcast_shapes(bx, bv))
    size, count = math.prod(shape), math.prod(place)
    point = tuple(v.shape)[v.ndim - rank:]
    v = xp.reshape(v, bv + (1,) * (len(batch) - len(bv)) + (1,) * (len(place) - rank) + point)
    v = xp.reshape(xp.broadcast_to(v, batch + tuple(place)), batch + (count,))
    x = xp.reshape(xp.broadcast_to(x, batch + tuple(shape)), batch + (size,))
    pick = np.arange(size)
    pick[list(positions)] = size + (np.zeros(len(positions), dtype=int) if sources is None
                                    and count == 1 else np.arange(count) if sources is None
                                    else np.asarray(sources))
    both = xp.concat([x, v], axis=-1)
    out = xp.take(both, xp.asarray(pick.tolist(), device=device(both)), axis=-1)
    return xp.reshape(out, batch + tuple(shape))


def _take_along_axis(xp: Any, x: Any, indices: Any, axis: int, rank: int) -> Any:
    x, indices = _batched(xp, (x, indices), rank)
    indices = xp.astype(indices, xp.int64)
    if hasattr(xp, "take_along_axis"):
        return xp.take_along_axis(x, indices, axis=axis)
    return _put_along_axis_add(xp, x, indices, tuple(indices.shape)[indices.ndim - rank:],
                               axis, gather=True)


def _put_along_axis_add(xp: Any, value: Any, indices: Any, shape: tuple[int, ...], axis: int,
                        gather: bool = False) -> Any:
    # In standard ops, no writes: along the axis (moved last), entry m of the result is the
    # sum of the values whose index is m (a where, not a product: a nan adds only where it
    # goes). ``gather``: the transposed sum, entry j is value[index j].
    value, indices = _batched(xp, (value, indices), len(shape))
    v, i = xp.moveaxis(value, axis, -1), xp.moveaxis(xp.astype(indices, xp.int64), axis, -1)
    m = shape[axis] if not gather else v.shape[-1]
    ks = xp.arange(m, dtype=xp.int64, device=device(v))
    if gather:
        picked = xp.where(i[..., :, None] == ks, v[..., None, :], 0.0)
    else:
        picked = xp.where(i[..., None, :] == ks[:, None], v[..., None, :], 0.0)
    return xp.moveaxis(xp.sum(picked, axis=-1), -1, axis)


def _scipy_special(name: str, standard: Callable[..., Any] | None = None) -> dict[str, Any]:
    # A HELPERS row for one of SciPy's special functions: each library's own module of them.
    return {"numpy": f"special.{name}", "cupy": f"cupyx.scipy.special:{name}",
            "torch": f"torch.special:{name}", "jax": f"jax.scipy.special:{name}",
            "dask": f"scipy.special:{name}", "standard": standard}


def _numpy_ufunc(name: str, standard: Callable[..., Any]) -> dict[str, Any]:
    # A HELPERS row for a NumPy ufunc beyond the standard that each library also names.
    return {"numpy": f"special.{name}", "cupy": f"cupy:{name}", "torch": f"torch:{name}",
            "jax": f"jax.numpy:{name}", "dask": f"dask.array:{name}", "standard": standard}


# -- THE table --------------------------------------------------------------------------------

HELPERS: dict[str, dict[str, Any]] = {
    # The standard has no exp2: 2**x, or the library's own.
    "exp2": {"numpy": "special.exp2", "cupy": "cupy:exp2", "torch": "torch:exp2",
             "jax": "jax.numpy:exp2", "dask": "dask.array:exp2", "standard": _exp2},
    # The standard has no cbrt: a signed power and a Newton step, or the library's own.
    "cbrt": {"numpy": "special.cbrt", "cupy": "cupy:cbrt", "jax": "jax.numpy:cbrt",
             "dask": "dask.array:cbrt", "standard": _cbrt},
    # No stable form of erf in the standard's ops: the library's own, else a refusal.
    "erf": {"numpy": "special.erf", "cupy": "cupyx.scipy.special:erf",
            "torch": "torch.special:erf", "jax": "jax.scipy.special:erf",
            "dask": "scipy.special:erf", "standard": None},
    "erfc": {"numpy": "special.erfc", "cupy": "cupyx.scipy.special:erfc",
             "torch": "torch.special:erfc", "jax": "jax.scipy.special:erfc",
             "dask": "scipy.special:erfc", "standard": None},
    # SciPy's special functions (primitives/scipy_special.py): the library's own; logit,
    # xlogy and xlog1py also in standard ops.
    # sigmoid: SciPy's expit's two branches, one exp and one division, in every library (their
    # own sigmoids are 1 / (1 + exp(-x)), which overflows to 0 below x ≈ -709).
    "sigmoid": {"numpy": "special.sigmoid", "standard": _sigmoid},
    "logit": _scipy_special("logit", _logit),
    "xlogy": _scipy_special("xlogy", _xlogy),
    "xlog1py": _scipy_special("xlog1py", _xlog1py),
    "gammaln": _scipy_special("gammaln"),
    "digamma": _scipy_special("digamma"),
    "polygamma": _scipy_special("polygamma"),
    "erfinv": _scipy_special("erfinv"),
    # A variable exponent: one rule at 0.5, 2 and -1 for every library and batch.
    "pow": {"numpy": "special.pow", "standard": _pow},
    "pow_vjp": {"numpy": "special.pow_vjp", "standard": _pow_vjp},
    # Standard functions that NumPy's column wraps to silence its warnings at the domain's edge.
    "log1p": {"numpy": "special.log1p", "standard": _log1p},
    "atanh": {"numpy": "special.atanh", "standard": _atanh},
    # Matrix-vector products of points with batch axes: NumPy's gufuncs (Dask applies them
    # block by block: NumPy's bits), else a vector as a one-column matrix.
    "matvec": {"numpy": "special.matvec", "dask": _dask_gufunc("matvec", "(m,n),(n)->(m)"),
               "standard": _matvec},
    "vecmat": {"numpy": "special.vecmat", "dask": _dask_gufunc("vecmat", "(n),(n,m)->(m)"),
               "standard": _vecmat},
    # The einsum record's contractions: one algorithm of sums and matmuls for every library
    # (a batch equals its points bit for bit), not the libraries' own einsum.
    "einsum": {"numpy": "special.einsum", "standard": _einsum},
    # The standard's where; NumPy's column makes a NumPy scalar of a 0-d result.
    "where": {"numpy": "special.where", "standard": _where},
    # NumPy's ufuncs beyond the standard: C's fmod, the NaN-ignoring fmax/fmin, logaddexp2.
    "fmod": _numpy_ufunc("fmod", _fmod),
    "fmax": _numpy_ufunc("fmax", _fmax),
    "fmin": _numpy_ufunc("fmin", _fmin),
    "logaddexp2": _numpy_ufunc("logaddexp2", _logaddexp2),
    # C's pow at every entry; NumPy's sinc and its derivatives (circuitgrad's, in xp's ops).
    "float_power": {"numpy": "special.float_power", "cupy": "cupy:float_power",
                    "standard": _float_power},
    "sinc": {"numpy": "special.sinc", "standard": _sinc},
    "sinc_d": {"numpy": "special.sinc_d", "standard": _sinc_d},
    # The reductions with stable forms in standard ops.
    "logsumexp": {"numpy": "special.logsumexp", "standard": _logsumexp},
    "softmax": {"numpy": "special.softmax", "standard": _softmax},
    "log_softmax": {"numpy": "special.log_softmax", "standard": _log_softmax},
    "norm": {"numpy": "special.norm", "standard": _norm},
    "prod_others": {"numpy": "special.prod_others", "standard": _prod_others},
    # Linear algebra (primitives/linalg.py): the standard's linalg extension; NumPy's column
    # gives nan at the points where LAPACK fails (a singular matrix) instead of raising.
    "solve": {"numpy": "special.solve", "standard": _linalg("solve")},
    "inv": {"numpy": "special.inv", "standard": _linalg("inv")},
    "cholesky": {"numpy": "special.cholesky", "standard": _linalg("cholesky")},
    "solve_triangular": {"numpy": "special.solve_triangular", "standard": _solve_triangular},
    "eigvalsh": {"numpy": "special.eigvalsh", "standard": _linalg("eigvalsh")},
    "eigh_vectors": {"numpy": "special.eigh_vectors", "standard": _eigh_vectors},
    "eigh_upper_vectors": {"numpy": "special.eigh_upper_vectors",
                           "standard": _eigh_upper_vectors},
    "svdvals": {"numpy": "special.svdvals", "standard": _linalg("svdvals")},
    "svd_u": {"numpy": "special.svd_u", "standard": _svd_u},
    "svd_vh": {"numpy": "special.svd_vh", "standard": _svd_vh},
    "pinv": {"numpy": "special.pinv", "standard": _pinv},
}
"""``_sp.NAME`` for each library: ``"module:function"`` (the library's own, imported on first
use), a function of ``xp`` written in standard ops (the ``standard`` column), or None (no way:
calling it raises a CircuitError). A missing cell means ``standard``; NumPy's column names the
functions of :mod:`~circuitgrad.primitives.special`."""

RUNTIME: dict[str, Callable[..., Any]] = {
    "shape": _shape, "take": _take, "broadcast_to": _broadcast_to, "reshape": _reshape,
    "concatenate": _concatenate, "stack": _stack,
    "scatter_add": _scatter_add, "put_add": _put_add, "setitem": _setitem, "flip": _flip,
    "setitem_into": _setitem,  # (arrays of other libraries are never written in place)
    "take_along_axis": _take_along_axis, "put_along_axis_add": _put_along_axis_add,
}
"""``_cg.NAME`` for every library but NumPy (whose ``_cg`` is
:mod:`~circuitgrad.primitives.runtime`), in standard ops."""


def library(xp: Any) -> str:
    """The column of :data:`HELPERS` that namespace ``xp`` reads.

        >>> import numpy, array_api_strict
        >>> library(numpy), library(array_api_strict)
        ('numpy', 'standard')
    """
    for name in LIBRARIES[:-1]:
        if _is(name, xp):
            return name
    return "standard"


def _is(name: str, xp: Any) -> bool:
    import array_api_compat

    return bool(getattr(array_api_compat, f"is_{name}_namespace")(xp))


def _refusal(helper: str, lib: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise CircuitError(f"{helper}: the array API standard has no {helper} and circuitgrad "
                           f"knows no {helper} of {lib} (circuitgrad.primitives.arrays.HELPERS)")

    return refuse


def helper(name: str, xp: Any) -> Callable[..., Any]:
    """``_sp.name`` for the library of namespace ``xp``: its cell of :data:`HELPERS`.

        >>> import array_api_strict as xps
        >>> float(helper("exp2", xps)(xps.asarray(3.0)))
        8.0
    """
    lib = library(xp)
    row = HELPERS[name]
    cell = row.get(lib, row["standard"])
    if lib == "numpy":
        return getattr(NAMESPACE["_sp"], name)
    if cell is None:
        return _refusal(name, lib)
    if isinstance(cell, str):
        module, attr = cell.split(":")
        return getattr(importlib.import_module(module), attr)
    return functools.partial(cell, xp)


_NAMESPACES: dict[Any, dict[str, Any]] = {}


def namespace(xp: Any) -> dict[str, Any]:
    """The globals ``xp``, ``_sp``, ``_cg`` of the generated code for array namespace ``xp``
    (made once per namespace): :data:`NAMESPACE` for NumPy.
    """
    if xp is np or xp is NAMESPACE["xp"]:
        return NAMESPACE
    ns = _NAMESPACES.get(xp)
    if ns is None:
        sp = types.SimpleNamespace(**{name: helper(name, xp) for name in HELPERS})
        cg = types.SimpleNamespace(s_=np.s_, **{name: functools.partial(fn, xp)
                                                for name, fn in RUNTIME.items()})
        ns = _NAMESPACES[xp] = {"xp": xp, "_sp": sp, "_cg": cg}
    return ns
