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

import contextvars
import inspect
import os
import sys
from typing import Any, Callable, Sequence

import numpy as np

from ..builder import Builder
from ..value import Value, traceback_line
from ..errors import CircuitError, ShapeError
from ..lower.calling import check_input
from . import guards, pytree


def trace(fn: Callable[..., Any] | None = None, *,
          shapes: dict[str, Any] | None = None, lines: bool = False, at: Any = None) -> Any:
    """Trace ``fn`` into a :class:`Circuit`; the inputs are its positional parameters, in
    their order. A parameter with a default value (``def rastrigin(x, A=10)``) keeps its
    default, a constant of the circuit, unless ``shapes`` names it.

    Args:
        fn: a function of numbers built from ``+ - * / ** @``, ``.T`` and ``cg.sin``,
            ``cg.relu``, ... (NumPy functions such as ``np.sin``, ``np.sum``, indexing and
            ``np.concatenate`` work too: docs/tracing.md).
        shapes: input shapes, as tuples or example arrays; others are scalars. A parameter
            that is a container (dict, list, tuple, named tuple of arrays) gets the structure
            of its shapes, ``{"params": {"W1": (2, 3), "b1": 2}}``: one input per leaf,
            named by its path (``params.W1``).
        lines: record the line of ``fn`` (or of a function it calls) that built each node,
            ``meta["lines"]`` (``"model.py:12 in f"``), by which the viewer
            (:func:`~circuitgrad.to_html`) groups the nodes; it makes tracing about 1.5 times
            slower, so it is off by default.
        at: a point to trace at: the arguments' values (a dict by parameter name, a tuple of
            the positional arguments, or the one argument of a one-parameter function; numbers,
            arrays or containers of them), which also give the inputs' shapes. ``if``,
            ``while``, ``and``/``or``, ``min``/``max``, ``int()`` and ``float()`` of traced
            values then take the branch the point takes, each decision recorded as a guard
            (``meta["guards"]``, checked first by every lowering: docs/tracing.md,
            "Branches"; :func:`circuitgrad.function` re-traces where one fails).

    Returns:
        The circuit. ``fn`` may return one value (output ``f``), a tuple (``f0``, ``f1`` ...)
        or a dict (or named tuple) of named outputs, containers nested in them named by
        their paths (``f0.W1``). Without ``fn``, a decorator.

    Raises:
        CircuitError: a parameter that is not positional, data-dependent control flow, a
            result that is not a number or value.

    >>> import circuitgrad as cg
    >>> c = trace(lambda w, x: cg.relu(w * x), shapes={"w": (3,)})
    >>> c.input_shapes
    {'w': (3,), 'x': ()}
    """
    if fn is None:
        return lambda f: trace(f, shapes=shapes, lines=lines, at=at)
    if not callable(fn):
        raise CircuitError(f"trace needs a function, got {type(fn).__name__}")
    if shapes is not None and not isinstance(shapes, dict):
        raise CircuitError(f"trace: shapes must be a dict of input names to shapes, like "
                           f"shapes={{'x': (3,)}}, got a {type(shapes).__name__}: {shapes!r}",
                           argument="shapes")
    point_values: dict[str, np.ndarray] | None = None
    if at is not None:
        if shapes:
            raise CircuitError("trace: give at= (whose values give the shapes) or shapes=, "
                               "not both", argument="shapes")
        shapes, point_values = _point(fn, at)
    trees, shapes = _input_trees(shapes or {})
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
    inputs, leaf_names = {}, []
    for n in names:  # a container of arrays: one input per leaf, named by its keys
        if n in trees:
            tree, leaves = trees[n]
            inputs[n] = pytree.unflatten(tree, [b.input(ln, s) for ln, s in leaves])
            leaf_names += [ln for ln, _ in leaves]
        else:
            inputs[n] = b.input(n, shapes.get(n, ()))
            leaf_names.append(n)
    args = [inputs[p] if p in inputs else defaults[p]
            for p in inspect.signature(fn).parameters
            if p in inputs or p in defaults]
    token = TRACING.set(b)
    point = None
    if point_values is not None:
        point = guards.Point(b, {b.inputs[n]: v for n, v in point_values.items()})
    point_token = guards.POINT.set(point)
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
                           "cg.where, or make the array with circuitgrad.numpy.zeros: "
                           "docs/tracing.md)" + traceback_line(e.__traceback__)) from None
    finally:
        guards.POINT.reset(point_token)
        TRACING.reset(token)
    outputs = output_leaves(result)
    if not outputs:
        raise CircuitError("trace: the function returned no outputs")
    out = [(str(name), _node(b, name, r)) for name, r in outputs]
    meta: dict[str, Any] = {}
    guarded = point.finish(leaf_names) if point is not None else None
    if guarded is not None:
        meta["guards"] = guarded
    if isinstance(b, _LineBuilder):
        meta["lines"] = b.kept_lines(out, leaf_names)
    return b.finish(out, inputs=leaf_names, meta=meta or None)


def _point(fn: Callable[..., Any], at: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``at=`` as ``shapes=`` (example arrays) and the values of the inputs by name."""
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if isinstance(at, dict):
        given = dict(at)
    elif isinstance(at, tuple) and not hasattr(type(at), "_fields"):
        given = {p.name: v for p, v in zip(params, at)}
        if len(at) > len(params):
            raise CircuitError(f"trace: at= gives {len(at)} arguments; "
                               f"{getattr(fn, '__name__', 'fn')} takes {len(params)}",
                               argument="at")
    elif len([p for p in params if p.default is p.empty]) == 1 or len(params) == 1:
        given = {params[0].name: at}
    else:
        raise CircuitError("trace: at= for a function of several parameters is a dict by "
                           "name or a tuple of the arguments", argument="at")
    names = {p.name for p in params}
    unknown = sorted(set(given) - names)
    if unknown:
        raise CircuitError(f"trace: at= gives {unknown}, which are not parameters of "
                           f"{getattr(fn, '__name__', 'fn')}", argument="at")
    missing = [p.name for p in params if p.name not in given and p.default is p.empty]
    if missing:
        raise CircuitError(f"trace: at= gives no value for parameter(s) {missing}",
                           argument="at")
    shapes, values = {}, {}
    for n, v in given.items():
        leaves, tree = pytree.flatten(v, n)
        arrays = []
        for leaf_name, leaf in leaves:
            if isinstance(leaf, Value):
                raise CircuitError("trace: at= must hold numbers or arrays, not traced values",
                                   argument="at")
            try:  # (the lowerings' check: no cast that drops information, a complex part)
                a = np.asarray(check_input(leaf_name, leaf), dtype=np.float64)
            except (TypeError, ValueError) as e:
                raise CircuitError(f"trace: at= gives {leaf_name!r} as "
                                   f"{type(leaf).__name__}, not a number or array of real "
                                   f"numbers ({e})", argument="at") from None
            arrays.append(a)
            values[leaf_name] = a
        shapes[n] = arrays[0] if tree == pytree.LEAF else pytree.unflatten(tree, arrays)
    return shapes, values


TRACING: contextvars.ContextVar[Builder | None] = contextvars.ContextVar(
    "circuitgrad_tracing", default=None)
"""The builder of the function :func:`trace` is calling now (None outside a trace): where
``circuitgrad.numpy.zeros(n)`` makes an array that traced values can be written into."""


def _input_trees(shapes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``shapes=`` with its structures (a dict, list or tuple of shapes or example arrays:
    ``{"params": {"W1": (3, 4), "b1": 3}}``) flattened: ``({param: (tree, [(leaf name,
    shape)])}, {param or leaf name: shape})``."""
    trees, flat = {}, {}
    for n, spec in shapes.items():
        if isinstance(spec, np.ndarray) or not pytree.is_container(spec) or \
                pytree.is_shape(spec):
            flat[n] = _shape(n, spec)
            continue
        leaves, tree = pytree.flatten(
            spec, n, is_leaf=lambda s: isinstance(s, np.ndarray) or pytree.is_shape(s))
        trees[n] = (tree, [(ln, _shape(ln, s)) for ln, s in leaves])
        flat[n] = ()
    return trees, flat


def output_leaves(result: Any) -> list[tuple[str, Any]]:
    """A traced function's result as named outputs: one value ``f``; a tuple or list ``f0,
    f1 ...``; a dict or named tuple by its keys; containers inside by their paths
    (``f0.W1``)."""
    if isinstance(result, dict):
        parts = [(str(k), r) for k, r in result.items()]
    elif isinstance(result, tuple) and hasattr(type(result), "_fields"):
        parts = list(zip(type(result)._fields, result))
    elif isinstance(result, (tuple, list)):
        parts = [(f"f{k}", r) for k, r in enumerate(result)]
    else:
        return [("f", result)]
    out: list[tuple[str, Any]] = []
    for name, r in parts:
        out += pytree.flatten(r, name)[0]
    return out


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


from . import numpy_api  # noqa: E402,F401  (installs the dispatcher on Value)
from . import writes as _writes  # noqa: E402  (installs the writes on Value)

Value.writes = _writes
