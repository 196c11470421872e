"""The tracing front-end: call a Python function on circuit values and record what it does.

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

from ..circuit import Builder, Value
from ..errors import CircuitError


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
    if isinstance(result, Value):
        if result.builder is not b:
            raise CircuitError(f"trace: output {name!r} comes from another circuit")
        return result.id
    try:
        return b.const_id(result)
    except (TypeError, ValueError):
        raise CircuitError(f"trace: output {name!r} is {type(result).__name__}, not a number "
                           "or a traced value") from None
