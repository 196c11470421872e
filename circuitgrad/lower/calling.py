"""The calling layer the lowerings share: binding a call's arguments to the circuit's inputs.

``to_numpy``, ``to_tape`` and ``to_c`` take their inputs the same way (docs/semantics.md,
"Batches"): by position or keyword (:func:`assign_inputs`), each one point of its declared
shape or a batch (extra leading axes, :func:`batch_axes`, broadcast together by
:func:`common_batch`), several outputs as a named tuple (:func:`outputs`), and sparse
Jacobian or Hessian outputs through the CSR hook (:func:`csr_hook`).

Every input is checked here, once for every lowering (:func:`check_input`): real floating or
integer numbers, NumPy arrays and array-API arrays of those are taken (booleans too: they are
exactly 0.0 and 1.0, as NumPy converts them). Never a cast that drops information: ``None``,
strings, bytes, object arrays, string arrays, complex values (until complex is a feature),
floats wider than float64 (``longdouble``) and integers beyond float64's range are an
:class:`InputError` (a :class:`~circuitgrad.CircuitError`, and a ``TypeError``, or an
``OverflowError`` for a number out of range, as Python raises for those) naming the input and
its type. Integers are taken where they are float64 numbers exactly (all up to 2**53 in
magnitude, and the larger ones with few enough bits); one that would round is an
:class:`InputRangeError` naming it, as a float64 wider than the input's precision would be.

    >>> check_input("x", 2)
    2
    >>> check_input("x", 1 + 2j)
    Traceback (most recent call last):
    ...
    circuitgrad.errors.InputError: input 'x': complex values are not supported (circuitgrad computes in float64; the imaginary part would be dropped)
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Sequence

import numpy as np

from ..circuit import Circuit
from ..csr import csr_outputs
from ..errors import InputError, InputRangeError, ShapeError

_MISSING = object()  # an input not given (yet)
MISSING = _MISSING


_REASONS = {
    "c": "are not supported (circuitgrad computes in float64; the imaginary part would be "
         "dropped)",
    "f": "are not supported (circuitgrad computes in float64; the extra precision would be "
         "dropped)",
    "O": "are not supported (give numbers or an array of real numbers)",
    "M": "are not supported (give real numbers)",
    "m": "are not supported (give real numbers)",
    "V": "are not supported (give real numbers)",
}


def _check_dtype(name: str, dtype: np.dtype, what: str) -> None:
    """Raises where values of a NumPy dtype cannot be float64 without losing information."""
    kind = dtype.kind
    if kind in "biu" or (kind == "f" and dtype.itemsize <= 8):
        return
    if kind in "US":
        raise InputError(f"input {name!r} is not a number or an array of numbers: {dtype} "
                         f"{what} ({'strings' if kind == 'U' else 'bytes'} are not numbers)")
    reason = _REASONS.get(kind, "are not supported (give real numbers)")
    raise InputError(f"input {name!r}: {dtype} {what} {reason}")


def check_input(name: str, value: Any) -> Any:
    """``value`` as a NumPy value circuitgrad can compute with, or an :class:`InputError`
    naming input ``name`` and the value's type (see the module docstring). NumPy arrays keep
    their dtype (the lowering converts them to float64); numbers and lists become arrays or
    stay numbers; arrays of another array-API library are checked by dtype and returned as
    they are."""
    t = type(value)
    if t is float or t is np.float64:
        return value
    if t is int or t is bool:
        try:
            exact = float(value) == value
        except OverflowError:
            raise InputRangeError(f"input {name!r}: the int {_short(value)} is beyond float64's "
                                  f"range (circuitgrad computes in float64)") from None
        if not exact:
            raise InputRangeError(f"input {name!r}: the int {_short(value)} is not a float64 "
                                  f"(beyond 2**53 integers round); give float({name}) if the "
                                  f"rounding is meant")
        return value
    if isinstance(value, np.ma.MaskedArray) and np.ma.getmask(value) is not np.ma.nomask \
            and np.ma.getmask(value).any():
        # (its entries under the mask hold numbers: computing on them would drop the mask)
        raise InputError(f"input {name!r} is a masked array with masked entries: circuitgrad "
                         f"computes on every entry; give {name}.filled(value), or "
                         f"np.ma.getdata({name}) if the masked entries' numbers are meant")
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        _check_dtype(name, value.dtype,
                     "values" if isinstance(value, np.generic) else "arrays")
        _check_exact_ints(name, value)
        return value
    if value is None:
        raise InputError(f"input {name!r} is not a number or an array of numbers: None")
    if isinstance(value, complex):
        raise InputError(f"input {name!r}: complex values {_REASONS['c']}")
    if isinstance(value, (str, bytes, bytearray)):
        raise InputError(f"input {name!r} is not a number or an array of numbers: "
                         f"{type(value).__name__}")
    if _foreign(value):
        _check_foreign(name, value)
        return value
    if isinstance(value, (int, float)):  # subclasses (enum.IntEnum ...)
        return check_input(name, float(value) if isinstance(value, float) else int(value))
    try:
        array = np.asarray(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"input {name!r} is not a number or an array of numbers: "
                         f"{type(value).__name__}") from None
    if array.dtype.kind == "O":
        raise InputError(f"input {name!r} is not a number or an array of numbers: "
                         f"{type(value).__name__} (of objects, such as None, mixed types, "
                         f"ragged lists or integers beyond float64's range)")
    _check_dtype(name, array.dtype, "values")
    _check_exact_ints(name, array)
    return array


_EXACT = 2**53  # every integer up to it in magnitude is a float64


def _check_exact_ints(name: str, value: Any) -> None:
    """An :class:`InputRangeError` where an integer entry would round on its way to float64
    (int64 and uint64 beyond 2**53): a different number, not the one given. Only the entries
    beyond 2**53 are looked at one by one (none, for the integers people pass)."""
    dtype = value.dtype
    if dtype.kind not in "iu" or dtype.itemsize < 8 or value.size == 0:
        return
    big = (value > _EXACT) | (value < -_EXACT) if dtype.kind == "i" else value > _EXACT
    if not np.any(big):
        return
    for v in np.asarray(value)[np.asarray(big)].tolist():
        if float(v) != v:
            raise InputRangeError(f"input {name!r}: the {dtype} entry {v} is not a float64 "
                                  f"(beyond 2**53 integers round); convert to float64 first "
                                  f"if the rounding is meant")


def _short(value: int) -> str:
    text = str(value) if value.bit_length() < 200 else f"of {len(str(abs(value)))} digits"
    return text


def _check_foreign(name: str, value: Any) -> None:
    import array_api_compat

    xp = array_api_compat.array_namespace(value)
    dtype = value.dtype
    try:
        real = xp.isdtype(dtype, ("real floating", "integral", "bool"))
        complex_ = xp.isdtype(dtype, "complex floating")
    except Exception:  # a library without isdtype: its dtype's name
        text = str(dtype)
        complex_ = "complex" in text
        real = not complex_ and any(k in text for k in ("float", "int", "bool"))
    if complex_:
        raise InputError(f"input {name!r}: {dtype} arrays {_REASONS['c']}")
    if not real:
        raise InputError(f"input {name!r}: {dtype} arrays are not supported (give real "
                         f"numbers)")
    _check_exact_foreign_ints(name, xp, value)


def _check_exact_foreign_ints(name: str, xp: Any, value: Any) -> None:
    """:func:`_check_exact_ints` for another library's 64-bit integers: an entry that does not
    come back from float64 unchanged is refused (a different number, not the one given)."""
    try:
        wide = xp.isdtype(value.dtype, "integral") and xp.iinfo(value.dtype).bits >= 64
    except Exception:  # (a library without isdtype/iinfo: its dtype's name)
        wide = str(value.dtype).endswith("int64")
    if not wide:
        return
    back = xp.astype(xp.astype(value, xp.float64), value.dtype)
    if bool(xp.any(back != value)):
        raise InputRangeError(f"input {name!r}: a {value.dtype} entry is beyond 2**53 and not a "
                              f"float64 (it would round); convert to float64 first if the "
                              f"rounding is meant")


def _foreign(value: Any) -> bool:
    """Whether ``value`` is an array of an array-API library other than NumPy (CuPy, torch,
    JAX, Dask ...): the generated code then runs on that library's namespace."""
    if isinstance(value, (np.ndarray, np.generic, int, float, list, tuple)):
        return False
    import array_api_compat

    return bool(array_api_compat.is_array_api_obj(value))


def as_float64(name: str, value: Any) -> np.ndarray:
    """A checked NumPy input (:func:`check_input`) as a float64 array."""
    return np.asarray(check_input(name, value), dtype=np.float64)


def batch_axes(name: str, have: tuple[int, ...], want: tuple[int, ...]) -> tuple[int, ...]:
    """The batch axes of a value of shape ``have`` given for input ``name`` of point shape
    ``want`` (its leading axes), or a ShapeError when its last axes are not ``want``.

        >>> batch_axes("x", (5, 3), (3,))
        (5,)
    """
    point = len(have) - len(want)
    if point < 0 or tuple(have[point:]) != tuple(want):
        raise ShapeError(f"input {name!r} has shape {want} at one point; a value of shape "
                         f"{have} is neither one point nor a batch of points (a batch's last "
                         f"axes are {want})")
    return tuple(have[:point])


def common_batch(inputs: Sequence[str], batches: list[tuple[int, tuple[int, ...]]]
                 ) -> tuple[int, ...]:
    """The batch shape of a call: the inputs' batch axes ``(input index, axes)`` broadcast
    together, or a ShapeError naming them all."""
    if not batches:
        return ()
    if len(batches) == 1:
        return batches[0][1]
    try:
        return tuple(np.broadcast_shapes(*(s for _, s in batches)))
    except ValueError:
        listed = ", ".join(f"{inputs[k]} {s}" for k, s in batches)
        raise ShapeError(f"the inputs' batch shapes do not broadcast together: "
                         f"{listed}") from None


def assign_inputs(name: str, inputs: Sequence[str], args: tuple, kwargs: dict) -> list[Any]:
    """The values of a call's inputs in the order of ``inputs``, from positional and keyword
    arguments, with Python's messages for too many, unknown or repeated ones; inputs not given
    are ``MISSING`` (see :func:`missing_inputs`).

        >>> assign_inputs("f", ("x", "y"), (1.0,), {"y": 2.0})
        [1.0, 2.0]
    """
    n = len(inputs)
    if len(args) > n:
        raise TypeError(f"{name}() takes {n} inputs {list(inputs)}, got {len(args)}")
    values: list[Any] = list(args) + [_MISSING] * (n - len(args))
    if kwargs:
        index = {input_name: k for k, input_name in enumerate(inputs)}
        for key, v in kwargs.items():
            k = index.get(key)
            if k is None:
                raise TypeError(f"{name}() has no input {key!r}; inputs: {list(inputs)}")
            if values[k] is not _MISSING:
                raise TypeError(f"{name}() got input {key!r} twice")
            values[k] = v
    return values


def missing_inputs(name: str, inputs: Sequence[str], values: list[Any]) -> None:
    """A TypeError naming the inputs :func:`assign_inputs` left ``MISSING``, if any."""
    missing = [inputs[k] for k, v in enumerate(values) if v is _MISSING]
    if missing:
        raise TypeError(f"{name}() is missing inputs {missing}")


_OUTPUT_TYPES: dict[tuple[str, ...], type] = {}


def outputs(names: tuple[str, ...]) -> type:
    """The named-tuple type of a generated function's outputs called ``names`` (made once per
    set of names; it pickles by its names, so results can cross processes).

        >>> Outputs = outputs(("J", "dJ_dx"))
        >>> out = Outputs(1.0, 2.0)
        >>> out.dJ_dx, out[0], tuple(out)
        (2.0, 1.0, (1.0, 2.0))
    """
    names = tuple(names)
    cls = _OUTPUT_TYPES.get(names)
    if cls is None:
        base = collections.namedtuple("Outputs", names, rename=True)  # type: ignore[misc]
        cls = type("Outputs", (base,), {"__slots__": (), "__module__": __name__,
                                        "__reduce__": lambda self: (_rebuild, (names,
                                                                               tuple(self)))})
        _OUTPUT_TYPES[names] = cls
    return cls


def _rebuild(names: tuple[str, ...], values: tuple) -> tuple:
    return outputs(names)._make(values)


def csr_hook(c: Circuit, csr: bool) -> Callable[[list[Any]], list[Any]] | None:
    """The CSR output hook of a lowering: the outputs of a sparse Jacobian or Hessian as
    ``scipy.sparse.csr_array`` (:mod:`circuitgrad.csr`), or None (``csr=False`` or none)."""
    return csr_outputs(c) if csr else None
