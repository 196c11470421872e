"""The handlers of NumPy's functions that write into an array (``np.copyto``) or make one to
be written (``np.full_like``; ``circuitgrad.numpy.empty_like`` gives zeros): writes are functional (frontends/writes.py)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ...errors import CircuitError
from ...value import Value, user_line
from .binding import bind, builder_of, leaves
from .shapes import numpy_checks


def _copyto(func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs, {"dst": None, "src": None, "casting": None,
                                       "where": None})
    dst = bound["dst"]
    if not isinstance(dst, Value):
        raise CircuitError("numpy.copyto of a traced value into a NumPy array cannot be "
                           "traced: the array holds numbers; make it with "
                           "circuitgrad.numpy.zeros (or np.zeros_like of a traced value)"
                           + user_line())
    where = bound.get("where", True)
    if not any(isinstance(v, Value) for v in leaves([bound["src"], where])):
        # NumPy's own checks of casting= and the shapes (a traced src is a float64, which
        # every casting accepts into dst's float64)
        numpy_checks(func, lambda: np.copyto(np.zeros(dst.shape), bound["src"], where=where,
                                             casting=bound.get("casting", "same_kind")))
    if where is True:
        dst[...] = bound["src"]
    else:  # the entries where the mask is False keep dst's values (NumPy's rule)
        dst[...] = np.where(where, bound["src"], dst)


def _like(func: Any, args: tuple, kwargs: dict, fill: Any) -> Any:
    # A constant of one point's shape (a batch broadcasts it).
    bound = bind(func, args, kwargs, {"a": None, "prototype": None, "fill_value": None,
                                      "dtype": None, "shape": None})
    x = bound["a"] if "a" in bound else bound["prototype"]
    value = bound.get("fill_value", fill)
    if isinstance(value, Value) or bound.get("dtype") not in (None, float, np.float64):
        raise CircuitError(f"{func.__name__}: a traced fill value or another dtype cannot "
                           "be traced" + user_line())
    shape = bound.get("shape", x.shape if isinstance(x, Value) else np.shape(x))
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    b = builder_of((x,))
    # NumPy broadcasts an array fill value into the shape (np.full's own check of it)
    filled = numpy_checks(func, lambda: np.full(shape, np.asarray(value, dtype=np.float64)))
    return b.const(filled) if shape else b.const(float(filled))


FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.copyto: _copyto,
    np.full_like: lambda f, a, k: _like(f, a, k, None),
}
