"""The handlers of ``np.linalg``: ``solve``, ``inv``, ``det``, ``slogdet``, ``cholesky``,
``eigh``/``eigvalsh``, ``svd``/``svdvals``, ``norm`` with every ``ord`` NumPy takes (and
``matrix_norm``, ``vector_norm``), ``matrix_power``, ``pinv``, ``qr``, ``lstsq``, ``cond``,
``matrix_rank``, ``multi_dot``, ``matrix_transpose``, ``outer``. The records and
their matrix adjoint rules are in :mod:`circuitgrad.primitives.linalg`.

SciPy's functions convert their arguments with ``np.asarray`` before anything could dispatch
(they never reach ``__array_function__``), so a traced value refuses there, naming the traced
equivalents: ``cg.solve_triangular``, ``cg.cho_factor``, ``cg.cho_solve`` and these.

    >>> import numpy as np, circuitgrad as cg
    >>> c = cg.trace(lambda A, b: np.sum(np.linalg.solve(A, b)), shapes={"A": (2, 2), "b": (2,)})
    >>> float(cg.to_numpy(c)(A=[[2.0, 0.0], [0.0, 4.0]], b=[1.0, 1.0]))
    0.75
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any, Callable

import numpy as np

from ...errors import CircuitError, ShapeError
from ...value import Value, user_line
from .binding import (NO_VALUE, as_value, axes_of, bind, builder_of, numpy_name, traced,
                      with_kept_axes)

SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
QRResult = namedtuple("QRResult", ["Q", "R"])
LstsqResult = namedtuple("LstsqResult", ["x", "residuals", "rank", "s"])


def _real(func: Any, *values: Any) -> tuple:
    """The arguments as circuit values (constants converted); complex ones refused."""
    builder = builder_of(values)
    out = []
    for v in values:
        if not isinstance(v, Value) and np.iscomplexobj(v):
            raise CircuitError(f"{numpy_name(func)}: complex arguments cannot be traced "
                               "(circuits are real)" + user_line())
        out.append(as_value(builder, v))
    return tuple(out)


def _mT(x: Value) -> Value:  # noqa: N802 - NumPy's name
    n = len(x.shape)
    if n < 2:
        return x
    return x.T if n == 2 else x.swapaxes(-1, -2)


def _square(func: Any, a: Value) -> Value:
    if len(a.shape) < 2 or a.shape[-1] != a.shape[-2]:
        raise ShapeError(f"{numpy_name(func)}: needs square matrices (..., n, n), got shape "
                         f"{a.shape}" + user_line())
    return a


def _solve(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "b": None})
    a, b = _real(func, bound["a"], bound["b"])
    return a.builder.apply("solve", a, b)


def _unary(op: str, name: str = "a") -> Callable[..., Any]:
    def handler(func: Any, args: tuple, kwargs: dict) -> Any:
        (a,) = _real(func, bind(func, args, kwargs, {name: None})[name])
        return a.builder.apply(op, a)

    return handler


def _slogdet(func: Any, args: tuple, kwargs: dict) -> Any:
    (a,) = _real(func, bind(func, args, kwargs, {"a": None})["a"])
    b = a.builder
    return SlogdetResult(b.apply("slogdet_sign", a), b.apply("slogdet", a))


def _cholesky(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "upper": (False, True)})
    (a,) = _real(func, bound["a"])
    if bound.get("upper"):  # LAPACK's U of A's upper triangle: Lᵀ of Aᵀ's lower one
        return _mT(a.builder.apply("cholesky", _mT(a)))
    return a.builder.apply("cholesky", a)


def _eigh(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "UPLO": ("L", "U")})
    (a,) = _real(func, bound["a"])
    b = a.builder
    if bound.get("UPLO") == "U":  # LAPACK's vectors of the upper triangle (their signs)
        return EighResult(b.apply("eigvalsh", _mT(_square(func, a))),
                          b.apply("eigh_vectors", a, upper=1))
    return EighResult(b.apply("eigvalsh", a), b.apply("eigh_vectors", a))


def _eigvalsh(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "UPLO": ("L", "U")})
    (a,) = _real(func, bound["a"])
    # The upper triangle of A is the lower one of Aᵀ: the same symmetric matrix.
    return a.builder.apply("eigvalsh", _mT(_square(func, a)) if bound.get("UPLO") == "U"
                           else a)


def _svd(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "full_matrices": (True, False),
                                       "compute_uv": (True, False), "hermitian": (False,)})
    (a,) = _real(func, bound["a"])
    b = a.builder
    if not bound.get("compute_uv", True):
        return b.apply("svdvals", a)
    if len(a.shape) >= 2 and bound.get("full_matrices", True) and a.shape[-1] != a.shape[-2]:
        raise CircuitError(f"numpy.linalg.svd: full_matrices=True of a non-square matrix "
                           f"(shape {a.shape}) cannot be traced (the extra columns of U or "
                           "rows of Vh are not unique); pass full_matrices=False" + user_line())
    return SVDResult(b.apply("svd_u", a), b.apply("svdvals", a), b.apply("svd_vh", a))


def _pinv_rtol(func: Any, a: Value, rcond: Any, rtol: Any) -> float:
    # NumPy's defaults: rcond=1e-15, or max(m, n)·eps where rtol=None is given.
    if rcond is not None and rtol is not NO_VALUE:
        raise CircuitError(f"{numpy_name(func)}: rcond and rtol cannot both be set" + user_line())
    value = rcond if rcond is not None else (1e-15 if rtol is NO_VALUE else rtol)
    if value is None:
        value = max(a.shape[-2:]) * np.finfo(np.float64).eps
    if isinstance(value, Value) or np.ndim(value) != 0:
        raise CircuitError(f"{numpy_name(func)}: rcond/rtol must be a number (not an array or "
                           "a traced value)" + user_line())
    return float(value)


def _pinv(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "rcond": None, "hermitian": (False,),
                                       "rtol": None})
    (a,) = _real(func, bound["a"])
    rtol = _pinv_rtol(func, a, bound.get("rcond"), bound.get("rtol", NO_VALUE))
    # NumPy's default cutoff is the record's own (no param: a circuit JSON can save)
    return a.builder.apply("pinv", a) if rtol == 1e-15 else a.builder.apply("pinv", a, rtol=rtol)


def _lstsq(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "b": None, "rcond": None})
    a, rhs = _real(func, bound["a"], bound["b"])
    if len(a.shape) != 2 or len(rhs.shape) not in (1, 2) or rhs.shape[0] != a.shape[0]:
        raise ShapeError(f"numpy.linalg.lstsq: needs a matrix (m, n) and b of shape (m,) or "
                         f"(m, k), got shapes {a.shape} and {rhs.shape}" + user_line())
    m, n = a.shape
    rcond = bound.get("rcond")
    if isinstance(rcond, Value) or (rcond is not None and np.ndim(rcond) != 0):
        raise CircuitError("numpy.linalg.lstsq: rcond must be a number" + user_line())
    # NumPy's: None is eps·max(m, n), a negative rcond eps itself
    eps = float(np.finfo(np.float64).eps)
    rtol = eps * max(m, n) if rcond is None else (eps if rcond < 0 else float(rcond))
    b = a.builder
    x = b.apply("pinv", a, rtol=rtol) @ rhs
    s = b.apply("svdvals", a)
    rank = b.apply("sum", b.apply("greater", s, s[0] * rtol))
    if m > n:  # NumPy's residuals of a full-rank A (empty where A is rank-deficient)
        r = a @ x - rhs
        residuals = b.apply("sum", r * r, axis=0) if len(r.shape) == 2 else \
            b.apply("sum", r * r).reshape(1)
    else:
        residuals = np.empty((0,))
    return LstsqResult(x, residuals, rank, s)


def _qr(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "mode": ("reduced", "r")})
    (a,) = _real(func, bound["a"])
    b = a.builder
    if bound.get("mode") == "r":
        return b.apply("qr_r", a)
    return QRResult(b.apply("qr_q", a), b.apply("qr_r", a))


def _matrix_power(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"a": None, "n": None})
    (a,) = _real(func, bound["a"])
    n = bound["n"]
    if isinstance(n, (bool, Value)) or not isinstance(n, (int, np.integer)):
        raise CircuitError(f"numpy.linalg.matrix_power: the exponent must be an integer, got "
                           f"{n!r}" + user_line())
    _square(func, a)
    b = a.builder
    if n == 0:
        return b.const(np.broadcast_to(np.eye(a.shape[-1]), a.shape).copy())
    base = b.apply("inv", a) if n < 0 else a
    result, n = None, abs(int(n))
    while n:  # binary powering: the matmuls NumPy's matrix_power does
        if n & 1:
            result = base if result is None else _matmul(result, base)
        n >>= 1
        if n:
            base = _matmul(base, base)
    return result


def _matmul(x: Value, y: Value) -> Value:
    from ...primitives.linalg import _mm

    return _mm(x, y)


# -- norms: every ord of numpy.linalg.norm ----------------------------------------------------

def _vector_norm(func: Any, x: Value, ord_: Any, axis: int | None) -> Value:
    b = x.builder
    kw = {} if axis is None else {"axis": axis}
    if ord_ is None or ord_ == 2:
        return b.apply("norm", x, **kw)  # scaled: no overflow at 1e200
    if isinstance(ord_, str):
        raise CircuitError(f"{numpy_name(func)}: ord={ord_!r} is a matrix norm; a vector has "
                           "ord None, inf, -inf, 0 or a number" + user_line())
    p = float(ord_)
    if p == np.inf:
        return b.apply("max", abs(x), **kw)
    if p == -np.inf:
        return b.apply("min", abs(x), **kw)
    if p == 0:
        return b.apply("sum", b.apply("not_equal", x, 0.0), **kw)  # a count: derivative 0
    if p == 1:
        return b.apply("sum", abs(x), **kw)
    return b.apply("sum", abs(x) ** p, **kw) ** (1.0 / p)


def _matrix_norm(func: Any, x: Value, ord_: Any, axes: tuple[int, int]) -> Value:
    b = x.builder
    row, col = axes
    if ord_ in (None, "fro"):
        if len(x.shape) == 2:
            return b.apply("norm", x)
        return b.apply("sqrt", b.apply("sum", b.apply("sum", x * x, axis=max(axes)),
                                       axis=min(axes)))
    if ord_ in ("nuc", 2, -2):
        rest = [k for k in range(len(x.shape)) if k not in axes]
        s = b.apply("svdvals", x.transpose(tuple(rest) + (row, col)))
        last = len(s.shape) - 1
        op = {"nuc": "sum", 2: "max", -2: "min"}[ord_]
        return b.apply(op, s, axis=last)
    if ord_ in (1, -1, np.inf, -np.inf):
        op = "max" if ord_ > 0 else "min"
        summed, other = (row, col) if ord_ in (1, -1) else (col, row)
        sums = b.apply("sum", abs(x), axis=summed)
        return b.apply(op, sums, axis=other - 1 if other > summed else other)
    raise CircuitError(f"{numpy_name(func)}: ord={ord_!r} is not a matrix norm (None, 'fro', "
                       "'nuc', 1, -1, 2, -2, inf, -inf)" + user_line())


def _norm(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"x": None, "ord": None, "axis": None,
                                       "keepdims": (False, True)})
    x = traced(func, bound["x"])
    ord_, axis = bound.get("ord"), bound.get("axis")
    ndim = len(x.shape)
    if axis is None:
        if ord_ is None:
            result = x.builder.apply("norm", x)  # the 2-norm of every entry
            axes: list[int] | None = None
        elif ndim == 1:
            result, axes = _vector_norm(func, x, ord_, None), None
        elif ndim == 2:
            result, axes = _matrix_norm(func, x, ord_, (0, 1)), None
        else:
            raise CircuitError(f"{numpy_name(func)}: ord={ord_!r} needs a vector or a matrix "
                               f"(or axis=), got shape {x.shape}" + user_line())
    else:
        axes = axes_of(numpy_name(func), axis, ndim)
        if any(not 0 <= k < ndim for k in axes):
            raise ShapeError(f"{numpy_name(func)}: axis {axis} is out of range for shape "
                             f"{x.shape}" + user_line())
        pair = tuple(int(k) % ndim for k in (axis if isinstance(axis, (tuple, list))
                                               else (axis,)))
        if len(pair) == 1:
            result = _vector_norm(func, x, ord_, pair[0])
        elif len(pair) == 2 and pair[0] != pair[1]:
            result = _matrix_norm(func, x, ord_, pair)
        else:
            raise CircuitError(f"{numpy_name(func)}: axis={axis!r} must be one axis or two "
                               "different ones" + user_line())
    return with_kept_axes(x, result, axes) if bound.get("keepdims") else result


def _matrix_norm_api(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"x": None, "keepdims": (False, True), "ord": None})
    x = traced(func, bound["x"])
    return _norm(np.linalg.norm, (x,), {"ord": bound.get("ord", "fro"), "axis": (-2, -1),
                                        "keepdims": bound.get("keepdims", False)})


def _vector_norm_api(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"x": None, "axis": None, "keepdims": (False, True),
                                       "ord": None})
    x = traced(func, bound["x"])
    axis, ord_ = bound.get("axis"), bound.get("ord", 2)
    if isinstance(axis, (tuple, list)) and len(axis) != 1 or axis is None and len(x.shape) != 1:
        flat = x.ravel() if axis is None else None
        if flat is None:
            raise CircuitError("numpy.linalg.vector_norm: several axes cannot be traced; "
                               "reshape them into one" + user_line())
        result = _vector_norm(func, flat, ord_, None)
        return result.reshape((1,) * len(x.shape)) if bound.get("keepdims") else result
    return _norm(np.linalg.norm, (x,), {"ord": ord_, "axis": axis,
                                        "keepdims": bound.get("keepdims", False)})


def _cond(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"x": None, "p": None})
    (x,) = _real(func, bound["x"])
    p = bound.get("p")
    _square(func, x) if p not in (None, 2, -2) else _matrix(func, x)
    b = x.builder
    if p in (None, 2, -2):
        s = b.apply("svdvals", x)
        last = len(s.shape) - 1
        top, bottom = b.apply("max", s, axis=last), b.apply("min", s, axis=last)
        return top / bottom if p != -2 else bottom / top  # inf where A is singular, as NumPy
    norm = np.linalg.norm
    both = (_norm(norm, (x,), {"ord": p, "axis": (-2, -1)})
            * _norm(norm, (b.apply("inv", x),), {"ord": p, "axis": (-2, -1)}))
    # NumPy's inf where A is singular (inv's nan), unless A itself holds a nan
    singular = b.apply("logical_and", b.apply("not_equal", both, both),
                       b.apply("equal", b.apply("sum", x), b.apply("sum", x)))
    return b.apply("where", singular, b.const(np.inf), both)


def _matrix(func: Any, a: Value) -> Value:
    if len(a.shape) < 2:
        raise ShapeError(f"{numpy_name(func)}: needs matrices (..., m, n), got shape {a.shape}"
                         + user_line())
    return a


def _matrix_rank(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"A": None, "tol": None, "hermitian": (False,),
                                       "rtol": None})
    (a,) = _real(func, bound["A"])
    _matrix(func, a)  # (NumPy's rank of a vector or a number is not a rank of matrices)
    tol, rtol = bound.get("tol"), bound.get("rtol")
    if any(isinstance(t, Value) or (t is not None and np.ndim(t) != 0) for t in (tol, rtol)):
        raise CircuitError(f"{numpy_name(func)}: tol and rtol must be numbers" + user_line())
    if tol is not None and rtol is not None:
        raise CircuitError(f"{numpy_name(func)}: tol and rtol cannot both be set" + user_line())
    b = a.builder
    s = b.apply("svdvals", a)
    last = len(s.shape) - 1
    if tol is None:
        scale = max(a.shape[-2:]) * np.finfo(np.float64).eps if rtol is None else float(rtol)
        cutoff = b.apply("max", s, axis=last) * scale
        cutoff = cutoff.reshape(tuple(cutoff.shape) + (1,))
    else:
        cutoff = float(tol)
    return b.apply("sum", b.apply("greater", s, cutoff), axis=last)  # a count: derivative 0


def _multi_dot(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"arrays": None})
    arrays = list(bound["arrays"])
    values = _real(func, *arrays)
    if len(values) < 2 or any(len(v.shape) != 2 for v in values[1:-1]) \
            or any(len(v.shape) not in (1, 2) for v in (values[0], values[-1])):
        raise ShapeError(f"{numpy_name(func)}: needs two or more arrays, 2-D but for a 1-D "
                         f"first or last, got shapes {[v.shape for v in values]}" + user_line())
    result = values[0]
    for v in values[1:]:  # left to right (NumPy picks the cheapest order: the same to rounding)
        result = result @ v
    return result


def _matrix_transpose(func: Any, args: tuple, kwargs: dict) -> Any:
    (x,) = _real(func, bind(func, args, kwargs, {"x": None})["x"])
    return _mT(_matrix(func, x))


def _linalg_outer(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"x1": None, "x2": None})
    a, c = _real(func, bound["x1"], bound["x2"])
    if len(a.shape) != 1 or len(c.shape) != 1:
        raise ShapeError(f"{numpy_name(func)}: needs two vectors, got shapes {a.shape} and "
                         f"{c.shape}" + user_line())
    return a.builder.apply("outer", a, c)


FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.linalg.solve: _solve,
    np.linalg.inv: _unary("inv"),
    np.linalg.det: _unary("det"),
    np.linalg.slogdet: _slogdet,
    np.linalg.cholesky: _cholesky,
    np.linalg.eigh: _eigh,
    np.linalg.eigvalsh: _eigvalsh,
    np.linalg.svd: _svd,
    np.linalg.svdvals: _unary("svdvals", "x"),
    np.linalg.norm: _norm,
    np.linalg.matrix_norm: _matrix_norm_api,
    np.linalg.vector_norm: _vector_norm_api,
    np.linalg.matrix_power: _matrix_power,
    np.linalg.pinv: _pinv,
    np.linalg.lstsq: _lstsq,
    np.linalg.qr: _qr,
    np.linalg.cond: _cond,
    np.linalg.matrix_rank: _matrix_rank,
    np.linalg.multi_dot: _multi_dot,
    np.linalg.matrix_transpose: _matrix_transpose,
    np.linalg.outer: _linalg_outer,
}
