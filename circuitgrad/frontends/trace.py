"""The tracing front-end: call a Python function on circuit values and record what it does.

NumPy functions called on traced values dispatch here through NumPy's protocols
(``__array_ufunc__``, NEP 13; ``__array_function__``, NEP 18): each one either becomes the
nodes it stands for (the primitive table's ``numpy`` names, plus ``np.dot``,
``np.linalg.norm`` ... below) or raises :class:`~circuitgrad.CircuitError` naming the NumPy
function, what to write instead, and the user's line. A traced value never ends up inside a
NumPy object array and is never turned into a number, so ``trace`` cannot build a function
other than the one the code computes. docs/tracing.md lists what traces.

    >>> import circuitgrad as cg
    >>> c = cg.trace(lambda x, y: cg.sin(x) * y)
    >>> c.inputs, c.outputs, c.size
    (('x', 'y'), ('f',), 2)

As a decorator::

    >>> @cg.trace
    ... def loss(w, b):
    ...     return 0.5 * (w * 2.0 + b - 1.0) ** 2
    >>> loss.inputs
    ('w', 'b')
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from ..circuit import Builder, Value, user_line
from ..errors import CircuitError
from ..primitives import PRIMITIVES


def trace(fn: Callable[..., Any] | None = None, *,
          shapes: dict[str, Any] | None = None) -> Any:
    """Trace ``fn`` into a :class:`Circuit`; the inputs are its positional parameters.

    Args:
        fn: a function of numbers built from ``+ - * / ** @``, ``.T`` and ``cg.sin``,
            ``cg.relu``, ... (NumPy ufuncs such as ``np.sin`` work too).
        shapes: input shapes, as tuples or example arrays; others are scalars.

    Returns:
        The circuit. ``fn`` may return one value (output ``f``), a tuple (``f0``, ``f1`` ...)
        or a dict of named outputs. Without ``fn``, a decorator.

    Raises:
        CircuitError: a parameter that is not positional, data-dependent control flow, a
            result that is not a number or value.

    >>> import circuitgrad as cg
    >>> c = trace(lambda w, x: cg.relu(w * x), shapes={"w": (3,)})
    >>> c.input_shapes
    {'w': (3,), 'x': ()}
    """
    if fn is None:
        return lambda f: trace(f, shapes=shapes)
    if not callable(fn):
        raise CircuitError(f"trace needs a function, got {type(fn).__name__}")
    names = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            raise CircuitError(f"trace: parameter '{p.name}' is not positional "
                               "(*args, **kwargs and keyword-only parameters cannot be inputs)")
        names.append(p.name)
    shapes = dict(shapes or {})
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise CircuitError(f"trace: shapes given for {unknown}, which are not parameters of "
                           f"{getattr(fn, '__name__', 'fn')} {names}")
    b = Builder()
    args = [b.input(n, _shape(shapes.get(n, ()))) for n in names]
    result = fn(*args)
    if isinstance(result, dict):
        outputs = list(result.items())
    elif isinstance(result, (tuple, list)):
        outputs = [(f"f{k}", r) for k, r in enumerate(result)]
    else:
        outputs = [("f", result)]
    if not outputs:
        raise CircuitError("trace: the function returned no outputs")
    return b.finish([(str(name), _node(b, name, r)) for name, r in outputs], inputs=names)


def _shape(spec: Any) -> tuple[int, ...]:
    if isinstance(spec, np.ndarray):
        return spec.shape
    return tuple(spec)


def _node(b: Builder, name: Any, result: Any) -> int:
    if isinstance(result, np.ndarray) and result.dtype == object:
        raise CircuitError(f"trace: output {name!r} is a NumPy object array (of traced values?): "
                           "return traced values, not arrays of them")
    if isinstance(result, Value):
        if result.builder is not b:
            raise CircuitError(f"trace: output {name!r} comes from another circuit")
        return result.id
    try:
        return b.const_id(result)
    except (TypeError, ValueError):
        raise CircuitError(f"trace: output {name!r} is {type(result).__name__}, not a number "
                           "or a traced value") from None


# -- NumPy's dispatch protocols ----------------------------------------------------------------

_NO_VALUE = getattr(np, "_NoValue", None)

# What to write instead, for NumPy functions people reach for that do not trace yet.
_INSTEAD = {
    "heaviside": "np.heaviside(x, h) traces for a constant h; a traced h does not",
}
_SHAPE_FUNCTIONS = {"atleast_1d", "atleast_2d", "atleast_3d", "repeat", "tile", "stack",
                    "concatenate", "hstack", "vstack", "reshape", "ravel", "expand_dims",
                    "squeeze", "flip", "take", "diff", "cumsum", "prod", "array", "asarray",
                    "broadcast_to"}


def _numpy_name(func: Any) -> str:
    module = getattr(func, "__module__", None) or "numpy"
    if not module.startswith("numpy"):
        module = "numpy"
    return f"{module}.{getattr(func, '__name__', func)}"


def _refuse(name: str) -> CircuitError:
    short = name.rsplit(".", 1)[-1]
    if short in _INSTEAD:
        hint = _INSTEAD[short]
    elif short in _SHAPE_FUNCTIONS:
        hint = "indexing, joining, reshaping and these reductions are not supported yet"
    else:
        hint = "it is not in circuitgrad's primitive table"
    return CircuitError(f"{name} cannot be traced: {hint} (docs/tracing.md lists the NumPy "
                        "functions that trace)" + user_line())


def _primitive_of(numpy_name: str) -> str | None:
    for name, prim in PRIMITIVES.items():
        if numpy_name in prim.numpy:
            return name
    return None


def _builder(args: Any) -> Builder:
    for a in args:
        if isinstance(a, Value):
            return a.builder
    raise CircuitError("no traced value among the arguments" + user_line())


def _bind(func: Any, args: tuple, kwargs: dict, allowed: dict[str, Any]) -> dict[str, Any]:
    """NumPy's own signature binds the call; every argument not in ``allowed`` (name → the
    values accepted) must be left at NumPy's default."""
    name = _numpy_name(func)
    try:
        bound = inspect.signature(func).bind(*args, **kwargs)
    except (TypeError, ValueError) as e:
        raise CircuitError(f"{name}: {e}" + user_line()) from None
    params = inspect.signature(func).parameters
    out = {}
    for key, value in bound.arguments.items():
        if key in allowed:
            accepted = allowed[key]
            if accepted is not None and value not in accepted:
                raise CircuitError(f"{name}: {key}={value!r} cannot be traced (only "
                                   f"{', '.join(map(repr, accepted))})" + user_line())
            out[key] = value
        elif value is not params[key].default and value is not _NO_VALUE and value is not None:
            raise CircuitError(f"{name}: the argument {key}= cannot be traced" + user_line())
    return out


def _axes(name: str, axis: Any, ndim: int) -> list[int] | None:
    if axis is None:
        return None
    axes = list(axis) if isinstance(axis, (tuple, list)) else [axis]
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise CircuitError(f"{name}: axis must be an integer or a tuple of integers, got "
                               f"{axis!r}" + user_line())
    return sorted({int(a) % ndim if -ndim <= a < ndim else a for a in axes}, reverse=True)


def _reduce(op: str, func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"a": None, "axis": None, "keepdims": (False,)})
    x = bound["a"]
    if not isinstance(x, Value):
        raise _refuse(_numpy_name(func))
    axes, b = _axes(_numpy_name(func), bound.get("axis"), len(x.shape)), x.builder
    if axes is None:
        return b.apply(op, x)
    if len(axes) == 1:
        return b.apply(op, x, axis=axes[0])
    total, count = x, 1
    for a in axes:  # from the last axis down, so that the others keep their numbers
        total = b.apply("sum" if op == "mean" else op, total, axis=a)
        count *= x.shape[a]
    return total / float(count) if op == "mean" else total


def _dot(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"a": None, "b": None})
    a, b = bound["a"], bound["b"]
    builder = _builder((a, b))
    shapes = [np.shape(v) if not isinstance(v, Value) else v.shape for v in (a, b)]
    if not shapes[0] or not shapes[1]:
        return builder.apply("mul", a, b)
    if len(shapes[0]) > 2 or len(shapes[1]) > 2:
        raise CircuitError(f"numpy.dot of shapes {shapes[0]} and {shapes[1]} cannot be traced "
                           "(only vectors and matrices)" + user_line())
    return builder.apply("matmul", a, b)


def _norm(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs,
                  {"x": None, "ord": (None, 2, "fro"), "axis": None, "keepdims": (False,)})
    x = bound["x"]
    if not isinstance(x, Value):
        raise _refuse(_numpy_name(func))
    ord_, axis = bound.get("ord"), bound.get("axis")
    ndim = len(x.shape) if axis is None else (1 if not isinstance(axis, (tuple, list))
                                              else len(axis))
    if (ord_ == 2 and ndim != 1) or (ord_ == "fro" and ndim != 2) or ndim > 2:
        raise CircuitError(f"numpy.linalg.norm(ord={ord_!r}) of {ndim} axes cannot be traced "
                           "(the 2-norm of vectors and the Frobenius norm of matrices do)"
                           + user_line())
    axes = _axes("numpy.linalg.norm", axis, len(x.shape))
    if axes is None or len(axes) == len(x.shape):
        return x.builder.apply("norm", x)  # scaled: no overflow at 1e200
    if len(axes) == 1:
        return x.builder.apply("norm", x, axis=axes[0])
    squares = x.builder.apply("square", x)  # the Frobenius norm over two of three axes
    for a in axes:
        squares = squares.builder.apply("sum", squares, axis=a)
    return squares.builder.apply("sqrt", squares)


def _where(func: Any, args: tuple, kwargs: dict) -> Any:
    if len(args) + len(kwargs) != 3:
        raise CircuitError("numpy.where(condition) (the indices) cannot be traced; "
                           "np.where(condition, a, b) does" + user_line())
    bound = _bind(func, args, kwargs, {"condition": None, "x": None, "y": None})
    values = (bound["condition"], bound["x"], bound["y"])
    return _builder(values).apply("where", *values)


def _clip(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"a": None, "a_min": None, "a_max": None, "min": None,
                                       "max": None})
    x = bound["a"]
    lo = bound.get("a_min", bound.get("min"))
    hi = bound.get("a_max", bound.get("max"))
    b = _builder((x, lo, hi))
    if lo is None and hi is None:
        raise CircuitError("numpy.clip needs a bound" + user_line())
    if lo is None:
        return b.apply("minimum", x, hi)
    if hi is None:
        return b.apply("maximum", x, lo)
    return b.apply("clip", x, lo, hi)


def _round(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"a": None, "decimals": (0,)})
    return _builder((bound["a"],)).apply("round", bound["a"])


def _transpose(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"a": None, "axes": None})
    x, axes = bound["a"], bound.get("axes")
    if axes is not None and tuple(axes) != tuple(reversed(range(len(x.shape)))):
        raise CircuitError(f"numpy.transpose with axes={axes!r} cannot be traced yet (only the "
                           "reversed order, x.T)" + user_line())
    return x.builder.apply("transpose", x)


def _outer(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"a": None, "b": None})
    return _builder((bound["a"], bound["b"])).apply("outer", bound["a"], bound["b"])


_FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.sum: lambda f, a, k: _reduce("sum", f, a, k),
    np.mean: lambda f, a, k: _reduce("mean", f, a, k),
    np.max: lambda f, a, k: _reduce("max", f, a, k),
    np.min: lambda f, a, k: _reduce("min", f, a, k),
    np.prod: lambda f, a, k: _reduce("prod", f, a, k),
    np.where: _where,
    np.amax: lambda f, a, k: _reduce("max", f, a, k),
    np.amin: lambda f, a, k: _reduce("min", f, a, k),
    np.around: _round,
    np.clip: _clip,
    np.round: _round,
    np.dot: _dot,
    np.linalg.norm: _norm,
    np.transpose: _transpose,
    np.outer: _outer,
}


class _NumpyDispatch:
    """What a NumPy function called on traced values builds (installed on :class:`Value`)."""

    @staticmethod
    def ufunc(ufunc: Any, method: str, inputs: tuple, kwargs: dict) -> Any:
        name = f"numpy.{ufunc.__name__}"
        if method != "__call__":
            raise CircuitError(f"{name}.{method} cannot be traced (use np.sum, np.mean ... or "
                               "the ufunc itself)" + user_line())
        if kwargs:
            raise CircuitError(f"{name}: the argument(s) {', '.join(sorted(kwargs))}= cannot "
                               "be traced" + user_line())
        builder = _builder(inputs)
        if ufunc is np.maximum and len(inputs) == 2:
            # maximum(x, 0) is relu's own template: the same numbers, relu′(0) = 1.
            for k in (0, 1):
                other = inputs[1 - k]
                if isinstance(inputs[k], Value) and not isinstance(other, Value) and \
                        np.ndim(other) == 0 and other == 0:
                    return builder.apply("relu", inputs[k])
        if ufunc is np.heaviside and len(inputs) == 2 and not isinstance(inputs[1], Value) \
                and np.ndim(inputs[1]) == 0:
            x, h = inputs[0], float(inputs[1])
            if h == 1.0:
                return builder.apply("step", x)  # relu's derivative, one node
            # heaviside(x, h) = 1 for x > 0, h at 0, 0 for x < 0 (nan at nan, as NumPy).
            at_zero = builder.apply("where", builder.apply("equal", x, 0.0), h,
                                    builder.apply("greater", x, 0.0))
            return builder.apply("where", builder.apply("not_equal", x, x), np.nan, at_zero)
        op = _primitive_of(ufunc.__name__)
        if op is None:
            raise _refuse(name)
        return builder.apply(op, *inputs)

    @staticmethod
    def function(func: Any, args: tuple, kwargs: dict) -> Any:
        handler = _FUNCTIONS.get(func)
        if handler is None:
            raise _refuse(_numpy_name(func))
        return handler(func, args, kwargs)


Value.numpy_dispatch = _NumpyDispatch()
