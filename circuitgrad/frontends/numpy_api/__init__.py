"""NumPy's functions on traced values: what each one builds, or the refusal naming it.

NumPy calls :class:`~circuitgrad.value.Value`'s ``__array_ufunc__`` (NEP 13) and
``__array_function__`` (NEP 18), which land here. Each module of this package holds the
handlers of one family of NumPy functions and its ``FUNCTIONS`` table (NumPy's function →
``handler(func, args, kwargs)``); this module merges the tables and installs the dispatcher.
A handler binds the call with NumPy's own signature (:func:`.binding.bind`) and builds nodes of
the primitive table, or raises :class:`~circuitgrad.CircuitError` naming the NumPy function,
what to write instead, and the user's line.

    >>> import numpy as np, circuitgrad as cg
    >>> cg.trace(lambda x: np.sum(np.sin(x)), shapes={"x": (3,)}).size
    2
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ...errors import CircuitError
from ...value import Value, user_line
from . import basics, contractions, elementwise, linalg, shapes, sorting, writes
from .binding import builder_of, numpy_name, primitive_of, refuse

FUNCTIONS: dict[Any, Callable[..., Any]] = {}
"""Every NumPy function that traces, and its handler ``handler(func, args, kwargs)``."""
for _family in (basics, contractions, elementwise, linalg, shapes, sorting, writes):
    FUNCTIONS.update(_family.FUNCTIONS)


def numpy_function(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """NumPy's ``func`` applied to traced values (and constants), as ``trace`` builds it; the
    parser calls it for the functions a program writes with NumPy's arguments."""
    return _NumpyDispatch.function(func, tuple(args), dict(kwargs))


class _NumpyDispatch:
    """What a NumPy function called on traced values builds (installed on :class:`Value`)."""

    @staticmethod
    def ufunc(ufunc: Any, method: str, inputs: tuple, kwargs: dict) -> Any:
        name = _ufunc_name(ufunc)
        if method != "__call__":
            raise CircuitError(f"{name}.{method} cannot be traced (use np.sum, np.mean ... or "
                               "the ufunc itself)" + user_line())
        if kwargs:
            raise CircuitError(f"{name}: the argument(s) {', '.join(sorted(kwargs))}= cannot "
                               "be traced" + user_line())
        builder = builder_of(inputs)
        if ufunc is np.heaviside and len(inputs) == 2 and not isinstance(inputs[1], Value) \
                and np.ndim(inputs[1]) == 0:
            x, h = inputs[0], float(inputs[1])
            if h == 1.0:
                return builder.apply("step", x)  # relu's derivative, one node
            # heaviside(x, h) = 1 for x > 0, h at 0, 0 for x < 0 (nan at nan, as NumPy).
            at_zero = builder.apply("where", builder.apply("equal", x, 0.0), h,
                                    builder.apply("greater", x, 0.0))
            return builder.apply("where", builder.apply("not_equal", x, x), np.nan, at_zero)
        handler = FUNCTIONS.get(ufunc)  # a composition of records (deg2rad, reciprocal ...)
        if handler is not None:
            return _NumpyDispatch.function(ufunc, inputs, {})
        op = primitive_of(ufunc.__name__)
        if op is None:
            raise refuse(name)
        return builder.apply(op, *inputs)

    @staticmethod
    def function(func: Any, args: tuple, kwargs: dict) -> Any:
        handler = FUNCTIONS.get(func)
        if handler is None:
            raise refuse(numpy_name(func))
        try:
            return handler(func, args, kwargs)
        except CircuitError as e:
            if " (at " in str(e):
                raise
            name = numpy_name(func)
            text = str(e) if str(e).startswith(name) else f"{name}: {e}"
            raise type(e)(text + user_line()) from None


def _ufunc_name(ufunc: Any) -> str:
    """``numpy.sin``, or ``scipy.special.gammaln`` for SciPy's ufuncs (they dispatch alike)."""
    import sys

    short = ufunc.__name__
    if getattr(np, short, None) is ufunc:
        return f"numpy.{short}"
    special = sys.modules.get("scipy.special")
    if special is not None and getattr(special, short, None) is ufunc:
        return f"scipy.special.{short}"
    return f"numpy.{short}"


Value.numpy_dispatch = _NumpyDispatch()
