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
import os
import sys
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from ..builder import Builder
from ..value import Value, traceback_line, user_line
from ..errors import CircuitError, ShapeError
from ..primitives import PRIMITIVES


def trace(fn: Callable[..., Any] | None = None, *,
          shapes: dict[str, Any] | None = None, lines: bool = False) -> Any:
    """Trace ``fn`` into a :class:`Circuit`; the inputs are its positional parameters, in
    their order. A parameter with a default value (``def rastrigin(x, A=10)``) keeps its
    default, a constant of the circuit, unless ``shapes`` names it.

    Args:
        fn: a function of numbers built from ``+ - * / ** @``, ``.T`` and ``cg.sin``,
            ``cg.relu``, ... (NumPy functions such as ``np.sin``, ``np.sum``, indexing and
            ``np.concatenate`` work too: docs/tracing.md).
        shapes: input shapes, as tuples or example arrays; others are scalars.
        lines: record the line of ``fn`` (or of a function it calls) that built each node,
            ``meta["lines"]`` (``"model.py:12 in f"``), by which the viewer
            (:func:`~circuitgrad.to_html`) groups the nodes; it makes tracing about 1.5 times
            slower, so it is off by default.

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
        return lambda f: trace(f, shapes=shapes, lines=lines)
    if not callable(fn):
        raise CircuitError(f"trace needs a function, got {type(fn).__name__}")
    if shapes is not None and not isinstance(shapes, dict):
        raise CircuitError(f"trace: shapes must be a dict of input names to shapes, like "
                           f"shapes={{'x': (3,)}}, got a {type(shapes).__name__}: {shapes!r}",
                           argument="shapes")
    shapes = {n: _shape(n, spec) for n, spec in (shapes or {}).items()}
    names, defaults = [], {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_KEYWORD, p.KEYWORD_ONLY) and (
                p.kind == p.VAR_KEYWORD or p.default is not p.empty):
            continue  # not passed: keyword-only parameters keep their defaults
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            raise CircuitError(f"trace: parameter '{p.name}' is not positional "
                               "(*args and keyword-only parameters without a default cannot "
                               "be inputs)")
        if p.default is not p.empty and p.name not in shapes:
            defaults[p.name] = p.default
        else:
            names.append(p.name)
    every = names + list(defaults)
    unknown = sorted(set(shapes) - set(every))
    if unknown:
        raise CircuitError(f"trace: shapes given for {unknown}, which are not parameters of "
                           f"{getattr(fn, '__name__', 'fn')} {every}")
    b = _LineBuilder() if lines else Builder()
    inputs = {n: b.input(n, shapes.get(n, ())) for n in names}
    args = [inputs[p] if p in inputs else defaults[p]
            for p in inspect.signature(fn).parameters
            if p in inputs or p in defaults]
    try:
        result = fn(*args)
    except CircuitError as e:  # name the user's line, where the error does not yet
        if " (at " in str(e):
            raise
        raise type(e)(str(e) + traceback_line(e.__traceback__)) from None
    except (ValueError, TypeError) as e:
        # NumPy converting a traced value (out[i] = x: Value.__float__ raised) replaces the
        # error by its own "setting an array element with a sequence", keeping ours as cause.
        if not isinstance(e.__cause__, CircuitError):
            raise
        raise CircuitError("a traced value cannot be written into a NumPy array (out[i] = x): "
                           "the array holds numbers and x is a node of the circuit; build the "
                           "result from traced values instead (np.stack, np.concatenate, "
                           "cg.where: docs/tracing.md)" + traceback_line(e.__traceback__)
                           ) from None
    if isinstance(result, dict):
        outputs = list(result.items())
    elif isinstance(result, (tuple, list)):
        outputs = [(f"f{k}", r) for k, r in enumerate(result)]
    else:
        outputs = [("f", result)]
    if not outputs:
        raise CircuitError("trace: the function returned no outputs")
    out = [(str(name), _node(b, name, r)) for name, r in outputs]
    if isinstance(b, _LineBuilder):
        return b.finish(out, inputs=names, meta={"lines": b.kept_lines(out, names)})
    return b.finish(out, inputs=names)


_INTERNAL = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
             os.path.dirname(np.__file__) + os.sep)  # circuitgrad's and NumPy's files


class _LineBuilder(Builder):
    """A builder that records the user's line that built each node, ``"file.py:12 in f"``
    (``meta["lines"]``: the viewer, lower/html.py, groups the nodes by it)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str | None] = []
        self._seen: dict[tuple[Any, int], str] = {}
        self._internal: dict[Any, bool] = {}  # code object -> in circuitgrad or NumPy

    def _append(self, op: str, args: tuple[int, ...], params: Any, shape: Any) -> int:
        line = None
        if op != "input":  # the innermost frame outside circuitgrad and NumPy
            internal, frame = self._internal, sys._getframe(1)
            while frame is not None:
                code = frame.f_code
                inside = internal.get(code)
                if inside is None:
                    inside = internal[code] = code.co_filename.startswith(_INTERNAL)
                if not inside:
                    break
                frame = frame.f_back
            if frame is not None:
                key = (frame.f_code, frame.f_lineno)
                line = self._seen.get(key)
                if line is None:
                    line = self._seen[key] = (f"{os.path.basename(frame.f_code.co_filename)}:"
                                              f"{frame.f_lineno} in {frame.f_code.co_name}")
        self.lines.append(line)
        return super()._append(op, args, params, shape)

    def kept_lines(self, outputs: Sequence[tuple[str, int]], inputs: Sequence[str]) -> tuple:
        """The lines of the nodes that :meth:`Builder.finish` keeps (those that reach an
        output, and the inputs), in order."""
        live = bytearray(len(self.ops))
        for _, i in outputs:
            live[i] = 1
        for name in inputs:
            live[self.inputs[name]] = 1
        for i in range(len(self.ops) - 1, -1, -1):
            if live[i]:
                for a in self.args[i]:
                    live[a] = 1
        return tuple(line for line, keep in zip(self.lines, live) if keep)


def _shape(name: str, spec: Any) -> tuple[int, ...]:
    """The shape ``shapes=`` gives input ``name``: a tuple of integers, one integer (NumPy's
    ``3`` for ``(3,)``) or an example array; anything else is a ShapeError naming the input."""
    if isinstance(spec, np.ndarray):
        if spec.dtype.kind not in "fiub":
            raise ShapeError(f"trace: the example array for input {name!r} holds "
                             f"{spec.dtype} values: circuitgrad computes with real numbers",
                             argument="shapes")
        return spec.shape
    dims = (spec,) if isinstance(spec, (int, np.integer)) else spec
    if not isinstance(dims, (tuple, list)) or any(
            isinstance(n, bool) or not isinstance(n, (int, np.integer)) for n in dims):
        raise ShapeError(f"trace: the shape of input {name!r} must be a tuple of integers, "
                         f"like (3,), got {spec!r}", argument="shapes")
    return tuple(int(n) for n in dims)


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
_SHAPE_FUNCTIONS = {"repeat", "tile", "pad", "roll", "array", "asarray", "broadcast_to", "sort",
                    "argmax", "argmin"}


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
        hint = "it is not supported yet"
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


def _keepdims(x: Value, result: Value, axes: list[int] | None) -> Value:
    """``result`` (``x`` reduced over ``axes``, all when None) with the reduced axes kept."""
    kept = tuple(1 if axes is None or k in axes else n for k, n in enumerate(x.shape))
    return result.reshape(kept)


def _warn_point_reduction(name: str, b: Builder) -> None:
    """Warn that a reduction of one number reduces nothing: a batch is many points (the
    batch semantics of docs/semantics.md), the surprise of ``np.sum(x**2)`` on [1, 2, 3]."""
    from ..value import _PROGRAM_TEXT

    if _PROGRAM_TEXT.get():
        return  # the parser and the CLI say this their own way
    scalars = [b.params[i] for i in b.inputs.values() if not b.shapes[i]]
    if not scalars:
        return  # every input declared: a reduction of one entry of one is no surprise
    named, example = ", ".join(repr(n) for n in scalars), scalars[0]
    warnings.warn(f"{name} of a 0-d traced value reduces one number: an input without a "
                  f"shapes= entry is one number (here: {named}), and called on [1, 2, 3] the "
                  f"circuit gives three results, one per point; to reduce a vector, declare "
                  f"it: shapes={{{example!r}: (3,)}}" + user_line(), stacklevel=2)


def _reduce(op: str, func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"a": None, "axis": None, "keepdims": (False, True)})
    if bound.get("keepdims"):
        x = bound["a"]
        plain = _reduce(op, func, (x,), {"axis": bound.get("axis")})
        return _keepdims(x, plain, _axes(_numpy_name(func), bound.get("axis"), len(x.shape)))
    x = bound["a"]
    if not isinstance(x, Value):
        raise _refuse(_numpy_name(func))
    axes, b = _axes(_numpy_name(func), bound.get("axis"), len(x.shape)), x.builder
    if not x.shape:
        _warn_point_reduction(_numpy_name(func), b)
    if op in ("max", "min") and 0 in (x.shape if axes is None else
                                      [x.shape[a] for a in axes if a < len(x.shape)]):
        raise ShapeError(f"{_numpy_name(func)}: the {op} of an empty slice (shape {x.shape}"
                         f"{'' if axes is None else ', axis ' + str(bound.get('axis'))}) "
                         "has no value" + user_line())
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
                  {"x": None, "ord": (None, 2, "fro"), "axis": None, "keepdims": (False, True)})
    if bound.pop("keepdims", False):
        x = bound["x"]
        plain = _norm(func, (), bound)
        return _keepdims(x, plain, _axes("numpy.linalg.norm", bound.get("axis"), len(x.shape)))
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
    x, axes = _value(func, bound["a"]), bound.get("axes")
    return x.T if axes is None else x.transpose(tuple(axes))


def _value(func: Any, x: Any) -> Value:
    if not isinstance(x, Value):
        raise _refuse(_numpy_name(func))
    return x


def _operands(func: Any, arrays: Any) -> tuple[Builder, list[Any]]:
    """The values of a sequence argument (traced values, numbers, arrays, lists of numbers)."""
    if isinstance(arrays, Value) or not isinstance(arrays, (list, tuple)):
        raise CircuitError(f"{_numpy_name(func)}: give a list or tuple of arrays"
                           + user_line())
    builder = _builder([a for a in _leaves(arrays) if isinstance(a, Value)][:1] or arrays)
    return builder, [_as_value(builder, a) for a in arrays]


def _leaves(items: Any) -> Any:
    for a in items:
        if isinstance(a, (list, tuple)):
            yield from _leaves(a)
        else:
            yield a


def _as_value(builder: Builder, a: Any) -> Value:
    """A traced value, a constant, or a (nested) list holding traced values: ``[x[0], 1.0]``
    is NumPy's array of them, stacked."""
    if isinstance(a, Value):
        if a.builder is not builder:
            raise CircuitError("a value from another circuit was used in this one" + user_line())
        return a
    if isinstance(a, (list, tuple)) and any(isinstance(v, Value) for v in _leaves(a)):
        parts = [_as_value(builder, v) for v in a]
        return builder.apply("stack", *parts, axis=0)
    return builder.const(np.asarray(a, dtype=np.float64))


def _concatenate(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"arrays": None, "axis": None})
    builder, parts = _operands(func, bound["arrays"])
    axis = bound.get("axis", 0)
    if axis is None:
        return builder.apply("concatenate", *(p.ravel() for p in parts), axis=0)
    return builder.apply("concatenate", *parts, axis=_axis_of(func, axis, len(parts[0].shape)))


def _axis_of(func: Any, axis: Any, ndim: int) -> int:
    name = _numpy_name(func)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise CircuitError(f"{name}: axis must be an integer, got {axis!r}" + user_line())
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{name}: axis {axis} is out of range for {ndim} axes" + user_line())
    return int(axis) % ndim


def _stack(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"arrays": None, "axis": None})
    builder, parts = _operands(func, bound["arrays"])
    axis = _axis_of(func, bound.get("axis", 0), len(parts[0].shape) + 1)
    return builder.apply("stack", *parts, axis=axis)


def _at_least(rank: int) -> Callable[..., Any]:
    def handler(func: Any, args: tuple, kwargs: dict) -> Any:
        if kwargs:
            raise CircuitError(f"{_numpy_name(func)} takes no keyword arguments" + user_line())
        out = [_atleast(a, rank) for a in args]
        return out[0] if len(out) == 1 else tuple(out)

    return handler


def _atleast(x: Value, rank: int) -> Value:
    # NumPy's layouts: a scalar is (1,), (1, 1), (1, 1, 1); a vector (1, n), (1, n, 1).
    s = x.shape
    if len(s) >= rank:
        return x
    if rank == 1:
        return x.reshape(1)
    if rank == 2:
        return x.reshape((1,) * (2 - len(s)) + s)
    return x.reshape({0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}[len(s)])


def _hstack(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"tup": None})
    builder, parts = _operands(func, bound["tup"])
    parts = [_atleast(p, 1) for p in parts]
    axis = 0 if len(parts[0].shape) == 1 else 1
    return builder.apply("concatenate", *parts, axis=axis)


def _vstack(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"tup": None})
    builder, parts = _operands(func, bound["tup"])
    return builder.apply("concatenate", *(_atleast(p, 2) for p in parts), axis=0)


def _reshape(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"a": None, "shape": None, "newshape": None,
                                       "order": ("C",)})
    shape = bound.get("shape", bound.get("newshape"))
    return _value(func, bound["a"]).reshape(shape)


def _ravel(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"a": None, "order": ("C",)})
    return _value(func, bound["a"]).ravel()


def _expand_dims(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"a": None, "axis": None})
    x = _value(func, bound["a"])
    axes = bound["axis"] if isinstance(bound["axis"], (tuple, list)) else (bound["axis"],)
    ndim = len(x.shape) + len(axes)
    new = sorted(_axis_of(func, a, ndim) for a in axes)
    rest = iter(x.shape)
    return x.reshape(tuple(1 if k in new else next(rest) for k in range(ndim)))


def _squeeze(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"a": None, "axis": None})
    x = _value(func, bound["a"])
    axis = bound.get("axis")
    if axis is None:
        drop = {k for k, n in enumerate(x.shape) if n == 1}
    else:
        drop = {_axis_of(func, a, len(x.shape))
                for a in (axis if isinstance(axis, (tuple, list)) else (axis,))}
        if any(x.shape[k] != 1 for k in drop):
            raise CircuitError(f"numpy.squeeze: axis {axis} of shape {x.shape} does not have "
                               "length 1" + user_line())
    return x.reshape(tuple(n for k, n in enumerate(x.shape) if k not in drop))


def _flip(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"m": None, "axis": None})
    x = _value(func, bound["m"])
    axis = bound.get("axis")
    axes = range(len(x.shape)) if axis is None else [
        _axis_of(func, a, len(x.shape)) for a in (axis if isinstance(axis, (tuple, list))
                                                  else (axis,))]
    index = tuple(slice(None, None, -1) if k in axes else slice(None)
                  for k in range(len(x.shape)))
    return x[index]


def _cumsum(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"a": None, "axis": None})
    x = _value(func, bound["a"])
    axis = bound.get("axis")
    return x.cumsum(None if axis is None else _axis_of(func, axis, len(x.shape)))


def _diff(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"a": None, "n": None, "axis": None})
    x = _value(func, bound["a"])
    n, axis = bound.get("n", 1), _axis_of(func, bound.get("axis", -1), len(x.shape))
    for _ in range(n):
        lo = tuple(slice(None, -1) if k == axis else slice(None) for k in range(len(x.shape)))
        hi = tuple(slice(1, None) if k == axis else slice(None) for k in range(len(x.shape)))
        x = x[hi] - x[lo]
    return x


def _take(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = _bind(func, args, kwargs, {"a": None, "indices": None, "axis": None})
    x, axis = _value(func, bound["a"]), bound.get("axis")
    if axis is None:
        return x.ravel()[list(np.atleast_1d(bound["indices"]))]
    axis = _axis_of(func, axis, len(x.shape))
    return x[(slice(None),) * axis + (list(np.atleast_1d(bound["indices"])),)]


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
    np.concatenate: _concatenate,
    np.stack: _stack,
    np.hstack: _hstack,
    np.vstack: _vstack,
    np.atleast_1d: _at_least(1),
    np.atleast_2d: _at_least(2),
    np.atleast_3d: _at_least(3),
    np.reshape: _reshape,
    np.ravel: _ravel,
    np.expand_dims: _expand_dims,
    np.squeeze: _squeeze,
    np.flip: _flip,
    np.cumsum: _cumsum,
    np.diff: _diff,
    np.take: _take,
    np.zeros_like: lambda f, a, k: _like(f, a, k, 0.0),
    np.ones_like: lambda f, a, k: _like(f, a, k, 1.0),
    np.shape: lambda f, a, k: _bind(f, a, k, {"a": None})["a"].shape,
    np.ndim: lambda f, a, k: len(_bind(f, a, k, {"a": None})["a"].shape),
    np.size: lambda f, a, k: _value(f, _bind(f, a, k, {"a": None})["a"]).size,
}


def numpy_function(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """NumPy's ``func`` applied to traced values (and constants), as ``trace`` builds it; the
    parser calls it for the functions a program writes with NumPy's arguments."""
    return _NumpyDispatch.function(func, tuple(args), dict(kwargs))


def _like(func: Any, args: tuple, kwargs: dict, fill: float) -> Any:
    # A constant of one point's shape (a batch broadcasts it).
    x = _value(func, _bind(func, args, kwargs, {"a": None})["a"])
    return x.builder.const(np.full(x.shape, fill)) if x.shape else x.builder.const(fill)


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
        try:
            return handler(func, args, kwargs)
        except CircuitError as e:
            if " (at " in str(e):
                raise
            name = _numpy_name(func)
            text = str(e) if str(e).startswith(name) else f"{name}: {e}"
            raise type(e)(text + user_line()) from None


Value.numpy_dispatch = _NumpyDispatch()
