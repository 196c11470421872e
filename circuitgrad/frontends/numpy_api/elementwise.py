"""The handlers of the elementwise and numeric NumPy functions that are compositions of records:
each builds exactly the operations NumPy's own code performs (in its order, so the values are
NumPy's up to the records' bounds), and its derivative is that of the composition.

* ufuncs that are arithmetic on one record: ``deg2rad``/``radians`` (``x·(π/180)``),
  ``rad2deg``/``degrees`` (``x·(180/π)``), ``reciprocal`` (``1/x``), ``positive`` (``x``),
  ``fabs`` (``abs``);
* statistics: ``var``/``std`` (``ddof``/``correction``, ``axis``, ``keepdims``, ``mean``:
  NumPy's ``_var``: the mean kept, the squared deviations summed, divided by
  ``max(n - ddof, 0)``), ``ptp`` (max − min), ``average`` (``weights``, ``returned``);
* ``nan_to_num`` (``where`` on NaN and ±inf), ``select`` (``where`` from the last condition
  back, as NumPy), ``polyval`` (Horner from ``0·x + p₀``, as NumPy), ``interp`` (one
  ``where`` per segment), ``gradient`` (NumPy's differences, ``edge_order`` 1 and 2, uniform
  or coordinate spacing), ``convolve``/``correlate`` (a constant band matrix times the traced
  operand; both traced: the sums of the outer product's anti-diagonals), ``cumprod`` (the
  products of the prefixes: exact where entries are 0, no division).

    >>> import numpy as np, circuitgrad as cg
    >>> c = cg.trace(lambda x: np.std(x, ddof=1), shapes={"x": (4,)})
    >>> x = np.array([1.0, 2.0, 4.0, 7.0])
    >>> bool(cg.to_numpy(c)(x) == np.std(x, ddof=1))
    True
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ...errors import CircuitError, ShapeError
from ...value import Value
from .binding import (as_value, axes_of, axis_of, bind, builder_of, numpy_name,
                      traced, warn_point_reduction, with_kept_axes)

# -- ufuncs that are arithmetic on one record ----------------------------------------------


def _unary(build: Callable[[Value], Any]) -> Callable[..., Any]:
    def handler(func: Any, args: tuple, kwargs: dict) -> Any:
        if len(args) != 1 or kwargs:
            raise CircuitError(f"numpy.{func.__name__} takes one array")
        return build(traced(func, args[0]))

    return handler


_DEG2RAD, _RAD2DEG = math.pi / 180.0, 180.0 / math.pi  # NumPy's npy_deg2rad, npy_rad2deg

UFUNCS: dict[Any, Callable[..., Any]] = {
    np.deg2rad: _unary(lambda x: x * _DEG2RAD),
    np.radians: _unary(lambda x: x * _DEG2RAD),
    np.rad2deg: _unary(lambda x: x * _RAD2DEG),
    np.degrees: _unary(lambda x: x * _RAD2DEG),
    np.reciprocal: _unary(lambda x: 1.0 / x),
    np.positive: _unary(lambda x: x),
    np.fabs: _unary(lambda x: x.builder.apply("abs", x)),
    # A real number is its own conjugate (a new array, as NumPy's ufunc makes one).
    np.conjugate: _unary(lambda x: x.copy()),
}
"""The ufuncs (NEP 13) that are a composition of records, by ufunc."""


# -- the complex-number functions, of real values -------------------------------------------


def _real(func: Any, args: tuple, kwargs: dict) -> Any:
    # np.real / np.real_if_close of a real array give the array itself (a view, or the same
    # object): the traced value, so writes through it are NumPy's.
    x = bind(func, args, kwargs, {"val": None, "a": None, "tol": None})
    x = x.get("val", x.get("a"))
    return traced(func, x) if func is np.real_if_close else traced(func, x).real


def _angle(func: Any, args: tuple, kwargs: dict) -> Any:
    # NumPy's angle of a real x is arctan2(0, x): 0, π for x < 0 and for -0.0, NaN for NaN
    bound = bind(func, args, kwargs, {"z": None, "deg": (False, True)})
    x = traced(func, bound["z"])
    angle = x.builder.apply("atan2", x.builder.const(0.0), x)
    return angle * _RAD2DEG if bound.get("deg") else angle


# -- reductions --------------------------------------------------------------------------------


def _sum(x: Value, axes: list[int] | None) -> Value:
    """The sum over ``axes`` (all when None), axes from the last down."""
    if axes is None:
        return x.builder.apply("sum", x)
    for a in axes:
        x = x.builder.apply("sum", x, axis=a)
    return x


def _count(x: Value, axes: list[int] | None) -> int:
    return math.prod(x.shape) if axes is None else math.prod(x.shape[a] for a in axes)


def _moments(func: Any, args: tuple, kwargs: dict) -> tuple[Value, list[int] | None, dict]:
    """The variance (its axes reduced, not kept), the axes, and the bound call."""
    bound = bind(func, args, kwargs, {"a": None, "axis": None, "ddof": None,
                                      "keepdims": (False, True), "mean": None,
                                      "correction": None})
    x = traced(func, bound["a"])
    name = numpy_name(func)
    axes = axes_of(name, bound.get("axis"), len(x.shape))
    if axes is not None and any(not 0 <= a < len(x.shape) for a in axes):
        raise ShapeError(f"{name}: axis {bound.get('axis')} is out of range for shape "
                         f"{x.shape}")
    if "ddof" in bound and "correction" in bound:
        raise CircuitError(f"{name}: ddof and correction are the same argument; give one")
    ddof = bound.get("ddof", bound.get("correction", 0))
    if isinstance(ddof, Value) or np.ndim(ddof) != 0:
        raise CircuitError(f"{name}: ddof must be a number, got {ddof!r}")
    if not x.shape:
        warn_point_reduction(name, x.builder)
    n = _count(x, axes)
    mean = bound.get("mean")
    if mean is None:  # NumPy's _var: the sum kept, divided by the count
        mean = with_kept_axes(x, _sum(x, axes) / float(n), axes) if x.shape else x / 1.0
    d = x - mean
    var = _sum(x.builder.apply("square", d), axes) / float(max(n - float(ddof), 0.0))
    return var, axes, bound


def _var(func: Any, args: tuple, kwargs: dict) -> Any:
    var, axes, bound = _moments(func, args, kwargs)
    return with_kept_axes(bound["a"], var, axes) if bound.get("keepdims") else var


def _std(func: Any, args: tuple, kwargs: dict) -> Any:
    var, axes, bound = _moments(func, args, kwargs)
    x, keep = bound["a"], bool(bound.get("keepdims"))
    ddof = bound.get("ddof", bound.get("correction", 0))
    if _count(x, axes) == 1 and ddof < 1 and bound.get("mean") is None:
        # One entry a slice: the deviation is 0 whatever x is, so std is the constant 0 (its
        # derivative 0, where sqrt′(0)·0 would be NaN).
        zero = var.builder.const(np.zeros(var.shape)) if var.shape else var.builder.const(0.0)
        return with_kept_axes(x, zero, axes) if keep else zero
    std = var.builder.apply("sqrt", var)
    return with_kept_axes(x, std, axes) if keep else std


def _ptp(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "axis": None, "keepdims": (False, True)})
    x = traced(func, bound["a"])
    rest = {"axis": bound["axis"]} if bound.get("axis") is not None else {}
    keep = {"keepdims": True} if bound.get("keepdims") else {}
    return np.max(x, **rest, **keep) - np.min(x, **rest, **keep)


def _average(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "axis": None, "weights": None,
                                      "returned": (False, True), "keepdims": (False, True)})
    a, weights, axis = bound["a"], bound.get("weights"), bound.get("axis")
    b = builder_of((a, weights))
    a = as_value(b, a)
    name = numpy_name(func)
    axes = axes_of(name, axis, len(a.shape))
    keep = bool(bound.get("keepdims"))
    if weights is None:
        avg = _sum(a, axes) / float(_count(a, axes))
        scl: Any = float(_count(a, axes))
    else:
        w = as_value(b, weights)
        if w.shape != a.shape:
            if axis is None or len(w.shape) != 1 or isinstance(axis, (tuple, list)):
                raise ShapeError(f"{name}: weights of shape {w.shape} do not fit a of shape "
                                 f"{a.shape} (1-D weights need an integer axis)")
            k = axis_of(func, axis, len(a.shape))
            if w.shape[0] != a.shape[k]:
                raise ShapeError(f"{name}: length {w.shape[0]} of weights differs from "
                                 f"axis {axis} of a, of length {a.shape[k]}")
            w = w.reshape(tuple(w.shape[0] if j == k else 1 for j in range(len(a.shape))))
            w = b.apply("broadcast_to", w, shape=a.shape) if w.shape != a.shape else w
        scl = _sum(w, axes)  # NumPy: np.multiply(a, w).sum(axis) / w.sum(axis)
        avg = _sum(a * w, axes) / scl
    if keep:
        avg = with_kept_axes(a, avg, axes)
        if isinstance(scl, Value):
            scl = with_kept_axes(a, scl, axes)
    if bound.get("returned"):
        if not isinstance(scl, Value):
            scl = b.const(np.full(avg.shape, scl)) if avg.shape else b.const(scl)
        return avg, scl
    return avg


def _cumprod(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "axis": None})
    x = traced(func, bound["a"])
    axis = bound.get("axis")
    if axis is None:
        x, axis = x.ravel(), 0
    axis = axis_of(func, axis, len(x.shape))
    n = x.shape[axis]
    # The k-th entry is the product of the first k + 1: n prod nodes, each exact where
    # entries are 0 (prod's rule, no division); O(n²) work, as the exact rule costs.
    parts = [x.builder.apply("prod", x[(slice(None),) * axis + (slice(0, k + 1),)], axis=axis)
             for k in range(n)]
    if not parts:
        return x
    return x.builder.apply("stack", *parts, axis=axis)


# -- elementwise selections --------------------------------------------------------------------


def _nan_to_num(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"x": None, "copy": (True, False), "nan": None,
                                      "posinf": None, "neginf": None})
    x = traced(func, bound["x"])
    big = float(np.finfo(np.float64).max)
    fills = {}
    for key, default in (("nan", 0.0), ("posinf", big), ("neginf", -big)):
        v = bound.get(key)
        if isinstance(v, Value) or np.ndim(v) != 0:
            raise CircuitError(f"numpy.nan_to_num: {key}= must be a number, got {v!r}")
        fills[key] = default if v is None else float(v)
    b = x.builder
    out = b.apply("where", b.apply("equal", x, -np.inf), fills["neginf"], x)
    out = b.apply("where", b.apply("equal", x, np.inf), fills["posinf"], out)
    return b.apply("where", b.apply("not_equal", x, x), fills["nan"], out)


def _select(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"condlist": None, "choicelist": None, "default": None})
    conds, choices = bound["condlist"], bound["choicelist"]
    if not isinstance(conds, (list, tuple)) or not isinstance(choices, (list, tuple)):
        raise CircuitError("numpy.select: condlist and choicelist must be lists")
    if len(conds) != len(choices):
        raise CircuitError("numpy.select: list of cases must be same length as list of "
                           "conditions")
    if not conds:
        raise CircuitError("numpy.select: select with an empty condition list is not "
                           "possible")
    b = builder_of(list(conds) + list(choices) + [bound.get("default", 0)])
    result: Any = bound.get("default", 0)
    # NumPy: the first condition that holds wins, so apply them from the last back.
    for c, v in zip(conds[::-1], choices[::-1]):
        c = as_value(b, c)
        result = b.apply("where", c, as_value(b, v), as_value(b, result))
    return result


def _polyval(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"p": None, "x": None})
    p, x = bound["p"], bound["x"]
    b = builder_of((p, x))
    if isinstance(p, Value):
        if len(p.shape) != 1:
            raise ShapeError(f"numpy.polyval: coefficients of shape {p.shape} (1-D needed)")
        coefficients: list[Any] = [p[k] for k in range(p.shape[0])]
    elif isinstance(p, (list, tuple)):
        coefficients = [c if isinstance(c, Value) else float(c) for c in p]
    else:
        coefficients = [float(c) for c in np.atleast_1d(np.asarray(p, dtype=np.float64))]
    x = as_value(b, x)
    y: Any = b.const(np.zeros(x.shape)) if x.shape else b.const(0.0)
    for c in coefficients:  # NumPy: y = zeros_like(x); y = y * x + pv for each pv
        y = y * x + (c if isinstance(c, Value) else float(c))
    return y


def _interp(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"x": None, "xp": None, "fp": None, "left": None,
                                      "right": None})
    x, xp, fp = bound["x"], bound["xp"], bound["fp"]
    if isinstance(xp, Value):
        raise CircuitError("numpy.interp: traced sample points xp cannot be traced (the "
                           "segment each x falls in would depend on them); give constants")
    xp = np.asarray(xp, dtype=np.float64)
    b = builder_of((x, fp))
    x = as_value(b, x)
    if xp.ndim != 1 or len(xp) == 0:
        raise ShapeError(f"numpy.interp: xp must be a non-empty 1-D sequence, got shape "
                         f"{xp.shape}")
    if not np.all(np.diff(xp) > 0) or not np.all(np.isfinite(xp)):
        raise CircuitError("numpy.interp: xp must be finite and strictly increasing to trace "
                           "(NumPy does not check it and gives meaningless values otherwise)")
    if isinstance(fp, Value):
        if fp.shape != xp.shape:
            raise ShapeError(f"numpy.interp: fp of shape {fp.shape} does not fit xp of shape "
                             f"{xp.shape}")
        f = [fp[k] for k in range(len(xp))]
    else:
        fv = np.asarray(fp, dtype=np.float64)
        if fv.shape != xp.shape:
            raise ShapeError("numpy.interp: fp and xp are not of the same length")
        f = [float(v) for v in fv]
    left = f[0] if bound.get("left") is None else bound["left"]
    right = f[-1] if bound.get("right") is None else bound["right"]
    # NumPy's arr_interp: slope·(x - xp[j]) + fp[j] on [xp[j], xp[j+1]) (fp[j] exactly at
    # x == xp[j]), fp[-1] at x == xp[-1], left below xp[0], right above xp[-1], NaN at NaN;
    # where that is NaN (infinite fp), slope·(x - xp[j+1]) + fp[j+1], then fp[j] if equal.
    finite = not any(isinstance(v, Value) for v in f) and all(map(math.isfinite, f))
    out: Any = as_value(b, left)
    for j in range(len(xp) - 1):
        lo, hi = float(xp[j]), float(xp[j + 1])
        slope = (f[j + 1] - f[j]) / (hi - lo)
        line = _line(b, slope, x, lo, f[j])
        if not finite:
            other = slope * (x - hi) + f[j + 1]
            other = b.apply("where", b.apply("logical_and", b.apply("not_equal", other, other),
                                             b.apply("equal", as_value(b, f[j]), f[j + 1])),
                            f[j], other)
            line = b.apply("where", b.apply("not_equal", line, line), other, line)
        out = b.apply("where", b.apply("greater_equal", x, lo), line, out)
    out = b.apply("where", b.apply("equal", x, float(xp[-1])), f[-1], out)
    out = b.apply("where", b.apply("greater", x, float(xp[-1])), right, out)
    return b.apply("where", b.apply("not_equal", x, x), x, out)


def _line(b: Any, slope: Any, x: Value, lo: float, at: Any) -> Value:
    """slope·(x - lo) + at, with the value ``at`` exactly at x == lo, its sign of zero too
    (NumPy returns fp[j] there): slope·(+0) is a zero of slope's sign, so a positive slope
    subtracts slope·(lo - x) instead. Its derivative is the slope, also at x == lo."""
    down = slope * (x - lo) + at
    up = at - slope * (lo - x)
    if not isinstance(slope, Value):
        return down if slope < 0 else up
    return b.apply("where", b.apply("less", slope, 0.0), down, up)


# -- differences and sums of products ----------------------------------------------------------


def _gradient(func: Any, args: tuple, kwargs: dict) -> Any:
    if not args:
        raise CircuitError("numpy.gradient needs the array f")
    f, varargs = traced(func, args[0]), args[1:]
    extra = set(kwargs) - {"axis", "edge_order"}
    if extra:
        raise CircuitError(f"numpy.gradient: the argument {sorted(extra)[0]}= cannot be traced")
    axis, edge_order = kwargs.get("axis"), kwargs.get("edge_order", 1)
    n_dims = len(f.shape)
    if edge_order not in (1, 2):
        raise CircuitError(f"numpy.gradient: edge_order={edge_order!r} cannot be traced (1 "
                           "and 2 do; NumPy supports no other)")
    if axis is None:
        axes = list(range(n_dims))
    else:
        axes = [axis_of(func, a, n_dims) for a in (axis if isinstance(axis, (tuple, list))
                                                   else (axis,))]
        if len(set(axes)) != len(axes):
            raise CircuitError("numpy.gradient: repeated axis")
    if not axes:
        raise ShapeError("numpy.gradient of a 0-d value: it has no axis to differentiate")
    if any(isinstance(v, Value) for v in varargs):
        raise CircuitError("numpy.gradient: traced spacings cannot be traced (give the "
                           "spacing or the coordinates as constants)")
    if not varargs:
        dx: list[Any] = [1.0] * len(axes)
    elif len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        dx = [float(varargs[0])] * len(axes)
    elif len(varargs) == len(axes):
        dx = []
        for k, d in enumerate(varargs):
            d = np.asarray(d, dtype=np.float64)
            if d.ndim == 0:
                dx.append(float(d))
                continue
            if d.ndim != 1:
                raise CircuitError("numpy.gradient: distances must be either scalars or 1d")
            if len(d) != f.shape[axes[k]]:
                raise CircuitError("numpy.gradient: when 1d, distances must match the length "
                                   "of the corresponding dimension")
            diff = np.diff(d)
            dx.append(float(diff[0]) if (diff == diff[0]).all() else diff)
    else:
        raise CircuitError("numpy.gradient: invalid number of spacing arguments")
    out = [_gradient_along(f, a, d, edge_order) for a, d in zip(axes, dx)]
    return out[0] if len(out) == 1 else tuple(out)


def _gradient_along(f: Value, axis: int, dx: Any, edge_order: int) -> Value:
    """NumPy's gradient along one axis: the same operations in the same order."""
    n = f.shape[axis]
    if n < edge_order + 1:
        raise ShapeError("numpy.gradient: shape of array too small to calculate a numerical "
                         "gradient, at least (edge_order + 1) elements are required")

    def part(s: slice) -> Value:
        return f[(slice(None),) * axis + (s,)]

    def along(v: np.ndarray) -> np.ndarray:
        return v.reshape(tuple(-1 if k == axis else 1 for k in range(len(f.shape))))

    uniform = np.ndim(dx) == 0
    pieces = []
    if n > 2:
        if uniform:
            inner = (part(slice(2, None)) - part(slice(None, -2))) / (2.0 * dx)
        else:
            dx1, dx2 = dx[:-1], dx[1:]
            a = along(-dx2 / (dx1 * (dx1 + dx2)))
            b = along((dx2 - dx1) / (dx1 * dx2))
            c = along(dx1 / (dx2 * (dx1 + dx2)))
            inner = a * part(slice(None, -2)) + b * part(slice(1, -1)) + c * part(slice(2, None))
    if edge_order == 1:
        first = (part(slice(1, 2)) - part(slice(0, 1))) / (dx if uniform else float(dx[0]))
        last = (part(slice(-1, None)) - part(slice(-2, -1))) / (dx if uniform else float(dx[-1]))
    else:
        if uniform:
            a0, b0, c0 = -1.5 / dx, 2.0 / dx, -0.5 / dx
            a1, b1, c1 = 0.5 / dx, -2.0 / dx, 1.5 / dx
        else:
            d1, d2 = float(dx[0]), float(dx[1])
            a0 = -(2.0 * d1 + d2) / (d1 * (d1 + d2))
            b0 = (d1 + d2) / (d1 * d2)
            c0 = -d1 / (d2 * (d1 + d2))
            d1, d2 = float(dx[-2]), float(dx[-1])
            a1 = d2 / (d1 * (d1 + d2))
            b1 = -(d2 + d1) / (d1 * d2)
            c1 = (2.0 * d2 + d1) / (d2 * (d1 + d2))
        first = a0 * part(slice(0, 1)) + b0 * part(slice(1, 2)) + c0 * part(slice(2, 3))
        last = a1 * part(slice(-3, -2)) + b1 * part(slice(-2, -1)) + c1 * part(slice(-1, None))
    pieces = [first] + ([inner] if n > 2 else []) + [last]
    return f.builder.apply("concatenate", *pieces, axis=axis)


def _vector(b: Any, v: Any, name: str, which: str) -> Any:
    v = v if isinstance(v, Value) else np.asarray(v, dtype=np.float64)
    if len(v.shape) != 1 or v.shape[0] == 0:
        raise ShapeError(f"{name}: {which} must be a non-empty 1-D array, got shape "
                         f"{tuple(v.shape)}")
    return v


def _full_correlation(b: Any, a: Any, v: Any) -> Value:
    """c[k] = Σᵢ a[i + k - (m - 1)]·v[i] for k = 0 … n + m - 2 (the full correlation)."""
    n, m = a.shape[0], v.shape[0]
    size = n + m - 1
    if not isinstance(v, Value):  # a traced: a constant band matrix times a
        band = np.zeros((size, n))
        for k in range(size):
            for i in range(m):
                j = i + k - (m - 1)
                if 0 <= j < n:
                    band[k, j] = v[i]
        return b.apply("matmul", b.const(band), a)
    if not isinstance(a, Value):
        band = np.zeros((size, m))
        for k in range(size):
            for i in range(m):
                j = i + k - (m - 1)
                if 0 <= j < n:
                    band[k, i] = a[j]
        return b.apply("matmul", b.const(band), v)
    # Both traced: the products a[j]·v[i] once (outer), summed along the diagonals.
    pick = np.zeros((size, n * m))
    for j in range(n):
        for i in range(m):
            pick[j - i + m - 1, j * m + i] = 1.0
    return b.apply("matmul", b.const(pick), b.apply("outer", a, v).reshape(n * m))


def _correlation(func: Any, a: Any, v: Any, mode: str, flip: bool) -> Value:
    name = numpy_name(func)
    if mode not in ("full", "same", "valid"):
        raise CircuitError(f"{name}: mode={mode!r} cannot be traced ('full', 'same' and "
                           "'valid' do)")
    b = builder_of((a, v))
    a, v = _vector(b, a, name, "a"), _vector(b, v, name, "v")
    if flip:  # convolve(a, v) = correlate(a, v[::-1])
        v = v[::-1]
    n, m = a.shape[0], v.shape[0]
    full = _full_correlation(b, a, v)
    if mode == "full":
        return full
    if mode == "same":  # NumPy's window of length max(n, m), centred as its loop centres it
        start = (m - 1) // 2 if n >= m else n // 2
        return full[start:start + max(n, m)]
    start = m - 1 if n >= m else n - 1  # 'valid': where the shorter lies inside the longer
    return full[start:start + max(n, m) - min(n, m) + 1]


def _correlate(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "v": None, "mode": None})
    return _correlation(func, bound["a"], bound["v"], bound.get("mode", "valid"), False)


def _convolve(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "v": None, "mode": None})
    a, v = bound["a"], bound["v"]
    length = [x.shape[0] if isinstance(x, Value) else len(np.atleast_1d(x)) for x in (a, v)]
    if length[1] > length[0]:  # NumPy: convolve swaps so that the longer one is a
        a, v = v, a
    return _correlation(func, a, v, bound.get("mode", "full"), True)


FUNCTIONS: dict[Any, Callable[..., Any]] = {
    **UFUNCS,
    np.var: _var,
    np.std: _std,
    np.ptp: _ptp,
    np.average: _average,
    np.cumprod: _cumprod,
    np.sinc: lambda f, a, k: traced(f, bind(f, a, k, {"x": None})["x"]).builder.apply(
        "sinc", bind(f, a, k, {"x": None})["x"]),
    np.nan_to_num: _nan_to_num,
    np.select: _select,
    np.polyval: _polyval,
    np.interp: _interp,
    np.gradient: _gradient,
    np.correlate: _correlate,
    np.convolve: _convolve,
    np.real: _real,
    np.real_if_close: _real,
    np.angle: _angle,
}
"""The NumPy functions (and ufuncs) of this family that trace, and their handlers."""

