"""NumPy for code that is traced: ``import circuitgrad.numpy as np``, as with autograd.numpy
and jax.numpy.

Every NumPy name is NumPy's own (``np.sin``, ``np.linalg.norm``, ``np.pi``): NumPy's functions
reach traced values through NumPy's dispatch protocols anyway. This module adds only what
NumPy cannot dispatch, because no argument is a traced value yet or NumPy converts first:

* ``np.array`` and ``np.asarray`` of traced values, or of (nested) lists holding them: the
  values stacked (``np.array([x, y])``); ``np.asarray(x)`` of a traced value is ``x`` itself
  and ``np.array(x)`` a copy, as in NumPy;
* ``np.zeros``, ``np.ones``, ``np.empty``, ``np.full`` (and their ``_like`` forms of NumPy
  arrays), float64, while a function is traced: a constant of the circuit that traced values
  can be written into (``out = np.zeros(n); out[i] = x[i] ** 2``); outside a trace, or with
  another dtype, or of shape ``()``, NumPy's array itself;
* ``np.r_`` and ``np.c_`` with traced values: the values joined (vectors, numbers and
  ``start:stop:step`` ranges for ``r_``; columns for ``c_``); NumPy's own without them.

    >>> import circuitgrad as cg
    >>> import circuitgrad.numpy as cnp
    >>> def f(x):
    ...     out = cnp.zeros(3)
    ...     out[1:] = x[:-1] ** 2
    ...     return cnp.array([out.sum(), x[2]])
    >>> cg.to_numpy(cg.trace(f, shapes={"x": (3,)}))(cnp.asarray([1.0, 2.0, 3.0])).tolist()
    [5.0, 3.0]
"""

from __future__ import annotations

from typing import Any

import numpy as _np

from .errors import CircuitError
from .frontends.numpy_api.binding import as_value, leaves
from .frontends.trace import TRACING
from .value import Value, user_line



def __getattr__(name: str) -> Any:
    # Every other name is NumPy's own.
    return getattr(_np, name)


def __dir__() -> list[str]:
    return sorted(set(dir(_np)) | set(globals()))


def _traced(obj: Any) -> Value | None:
    """The first traced value in ``obj`` (a value, or nested lists and tuples)."""
    if isinstance(obj, Value):
        return obj
    if isinstance(obj, (list, tuple)):
        return next((v for v in leaves(obj) if isinstance(v, Value)), None)
    return None


def _float_dtype(dtype: Any, name: str) -> None:
    if dtype is not None and _np.dtype(dtype) != _np.float64:
        raise CircuitError(f"circuitgrad.numpy.{name} of traced values with dtype={dtype!r}: "
                           "every value of a circuit is a float64" + user_line())


def _no_other_arguments(name: str, args: tuple, kwargs: dict) -> None:
    """Refuses the arguments of ``np.array``/``np.asarray`` that would change the traced
    result (``ndmin=2`` adds axes, ``order="F"`` another layout); copy= and C order trace."""
    other = {k: v for k, v in kwargs.items()
             if not (k == "copy" or k == "order" and v in (None, "K", "A", "C")
                     or k == "ndmin" and v == 0 or k == "like" and v is None)}
    if args or other:
        what = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in other.items()])
        raise CircuitError(f"circuitgrad.numpy.{name} of traced values with {what} cannot be "
                           "traced (only dtype=float64, copy= and order='C')" + user_line())


def array(obj: Any, dtype: Any = None, *args: Any, **kwargs: Any) -> Any:
    """NumPy's ``array``; of traced values (or lists holding them), the values stacked (a new
    array: a copy)."""
    v = _traced(obj)
    if v is None:
        return _np.array(obj, dtype, *args, **kwargs)
    _float_dtype(dtype, "array")
    _no_other_arguments("array", args, kwargs)
    out = as_value(v.builder, obj)
    return Value(out.builder, out.id) if out is obj else out


def asarray(obj: Any, dtype: Any = None, *args: Any, **kwargs: Any) -> Any:
    """NumPy's ``asarray``; a traced value itself, lists holding traced values stacked."""
    v = _traced(obj)
    if v is None:
        return _np.asarray(obj, dtype, *args, **kwargs)
    _float_dtype(dtype, "asarray")
    _no_other_arguments("asarray", args, kwargs)
    return as_value(v.builder, obj)


asanyarray = ascontiguousarray = asarray


def _writable(result: Any) -> Any:
    """NumPy's new array ``result``, as a constant of the circuit while tracing (float64, not
    0-d), so that traced values can be written into it; else ``result`` itself."""
    b = TRACING.get()
    if b is None or not isinstance(result, _np.ndarray) or result.dtype != _np.float64 or \
            not result.ndim:
        return result
    return b.const(result)


def zeros(*args: Any, **kwargs: Any) -> Any:
    """NumPy's ``zeros``; while tracing (float64, not 0-d), an array traced values can be
    written into (a constant of the circuit)."""
    return _writable(_np.zeros(*args, **kwargs))


def ones(*args: Any, **kwargs: Any) -> Any:
    """NumPy's ``ones``; while tracing, as :func:`zeros`."""
    return _writable(_np.ones(*args, **kwargs))


def empty(*args: Any, **kwargs: Any) -> Any:
    """NumPy's ``empty``; while tracing, as :func:`zeros`, of zeros (NumPy's entries are
    whatever it finds: zeros are some)."""
    return _writable(_np.zeros(*args, **kwargs) if TRACING.get() is not None
                     else _np.empty(*args, **kwargs))


def full(shape: Any, fill_value: Any, *args: Any, **kwargs: Any) -> Any:
    """NumPy's ``full``; while tracing, as :func:`zeros`; a traced ``fill_value`` is broadcast
    to ``shape``."""
    if isinstance(fill_value, Value):
        if args or kwargs:
            raise CircuitError("circuitgrad.numpy.full with a traced fill value takes the "
                               "shape only" + user_line())
        dims = (shape,) if isinstance(shape, (int, _np.integer)) else tuple(shape)
        if not dims:
            return fill_value.copy()
        return fill_value.builder.apply("broadcast_to", fill_value, shape=dims)
    return _writable(_np.full(shape, fill_value, *args, **kwargs))


def _like(name: str) -> Any:
    numpy_like = getattr(_np, f"{name}_like")

    def like(a: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(a, Value):  # (NumPy's dispatch: a constant of the point's shape)
            return (_np.zeros_like if name == "empty" else numpy_like)(a, *args, **kwargs)
        if name == "empty" and TRACING.get() is not None:
            return _writable(_np.zeros_like(a, *args, **kwargs))
        return _writable(numpy_like(a, *args, **kwargs))

    like.__name__ = f"{name}_like"
    like.__doc__ = (f"NumPy's ``{name}_like``; of a NumPy array while tracing, as "
                    ":func:`zeros`.")
    return like


zeros_like, ones_like, empty_like = _like("zeros"), _like("ones"), _like("empty")


def full_like(a: Any, fill_value: Any, *args: Any, **kwargs: Any) -> Any:
    """NumPy's ``full_like``; of a NumPy array while tracing, as :func:`full`."""
    if isinstance(a, Value) or isinstance(fill_value, Value):
        if args or kwargs:
            raise CircuitError("circuitgrad.numpy.full_like with traced values takes the "
                               "array and the fill value only" + user_line())
        return full(_np.shape(a) if not isinstance(a, Value) else a.shape, fill_value)
    return _writable(_np.full_like(a, fill_value, *args, **kwargs))


class _Joiner:
    """``r_`` and ``c_``: NumPy's own, unless an item is a traced value."""

    def __init__(self, numpy_form: Any, columns: bool) -> None:
        self.numpy_form, self.columns = numpy_form, columns

    def __getitem__(self, key: Any) -> Any:
        items = key if isinstance(key, tuple) else (key,)
        v = next((e for e in items if isinstance(e, Value)), None)
        if v is None:
            return self.numpy_form[key]
        b = v.builder
        parts = []
        for e in items:
            if isinstance(e, str):
                raise CircuitError(f"np.{'c_' if self.columns else 'r_'}[...] with a directive "
                                   f"string {e!r} and traced values cannot be traced: join "
                                   "with np.concatenate or np.stack" + user_line())
            if isinstance(e, slice):
                e = _np.r_[e]
            e = e if isinstance(e, Value) else b.const(_np.asarray(e, dtype=_np.float64))
            if self.columns:
                if len(e.shape) > 2:
                    raise CircuitError("np.c_[...] of arrays of more than two axes cannot be "
                                       "traced" + user_line())
                parts.append(e.reshape(-1, 1) if len(e.shape) < 2 else e)
            else:
                if len(e.shape) > 1:
                    raise CircuitError("np.r_[...] of arrays of more than one axis with traced "
                                       "values cannot be traced: use np.concatenate"
                                       + user_line())
                parts.append(e.reshape(1) if not e.shape else e)
        return _np.concatenate(parts, axis=1 if self.columns else 0)


r_ = _Joiner(_np.r_, columns=False)
c_ = _Joiner(_np.c_, columns=True)
