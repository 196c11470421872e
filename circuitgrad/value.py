"""A traced value: a node of a circuit under construction, with NumPy's operators, methods and
dispatch protocols (``x + y``, ``x[1:]``, ``np.sin(x)``), and the user's line for errors.

    >>> from circuitgrad.builder import Builder
    >>> b = Builder()
    >>> x = b.input("x", (3,))
    >>> (x[1:] * 2.0).shape, x.sum().op
    ((2,), 'sum')
"""

from __future__ import annotations

import contextvars
import math
import operator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from .circuit import Shape
from .errors import CircuitError, ShapeError

if TYPE_CHECKING:
    from .builder import Builder


class Value:
    """A node under construction: the handle that front-ends, rules and traced functions use.

    Python's operators build nodes (``+ - * / ** @``, unary ``-``, ``.T``); comparisons
    (``< <= > >= == !=``) and ``& | ~`` build masks (1.0 where true, 0.0 elsewhere), for
    ``cg.where``; NumPy ufuncs such as ``np.sin`` work too. A Value has no truth value:
    control flow that depends on data (``if x > 0:``) cannot be traced, except at a point
    (``cg.trace(f, at=x0)``, ``cg.function(f)``), where it takes the point's branch, guarded.

        >>> import circuitgrad as cg
        >>> cg.trace(lambda x, y: (x + 1) * y).size
        2
    """

    # _base, _how, _views: NumPy's aliasing (frontends/writes.py): the Value this one views
    # and how, and the live views of this one.
    __slots__ = ("builder", "id", "_base", "_how", "_views", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, builder: "Builder", id: int):
        self.builder = builder
        self.id = id

    @property
    def shape(self) -> Shape:
        """The node's shape."""
        return self.builder.shapes[self.id]

    @property
    def op(self) -> str:
        """The node's primitive name."""
        return self.builder.ops[self.id]

    @property
    def constant(self) -> float | None:
        """The node's value if it is a scalar constant, else None."""
        b = self.builder
        if b.ops[self.id] == "const" and not b.shapes[self.id]:
            return float(b.params[self.id])
        return None

    @property
    def T(self) -> "Value":  # noqa: N802 - NumPy's name
        """The transpose (a view in the generated code, and a view of ``self``)."""
        return self._view(self.builder.apply("transpose", self), ("transpose",))

    def _binary(self, op: str, other: Any, swap: bool = False) -> "Value":
        # The hot path of rules and traced code: no generic argument packing.
        b = self.builder
        o = other.id if type(other) is Value and other.builder is b else b._arg_id(other)
        return Value(b, b.apply_id(op, (o, self.id) if swap else (self.id, o)))

    def __add__(self, other): return self._binary("add", other)
    def __radd__(self, other): return self._binary("add", other, True)
    def __sub__(self, other): return self._binary("sub", other)
    def __rsub__(self, other): return self._binary("sub", other, True)
    def __mul__(self, other): return self._binary("mul", other)
    def __rmul__(self, other): return self._binary("mul", other, True)
    def __truediv__(self, other): return self._binary("div", other)
    def __rtruediv__(self, other): return self._binary("div", other, True)
    def __pow__(self, other, modulo=None):
        if modulo is not None:
            raise _refused("pow(x, y, modulo)")
        return self._binary("pow", other)
    def __rpow__(self, other): return self._binary("pow", other, True)
    # % and // are NumPy's remainder and floor_divide (Python's conventions on floats: the
    # divisor's sign); divmod is the pair. A traced value is never changed in place, so
    # x %= y rebinds x to the new node, as for +=.
    def __mod__(self, other): return self._binary("remainder", other)
    def __rmod__(self, other): return self._binary("remainder", other, True)
    def __floordiv__(self, other): return self._binary("floor_divide", other)
    def __rfloordiv__(self, other): return self._binary("floor_divide", other, True)
    def __divmod__(self, other): return self // other, self % other
    def __rdivmod__(self, other): return other // self, other % self
    def __matmul__(self, other): return self._matmul(other, False)
    def __rmatmul__(self, other): return self._matmul(other, True)

    def _matmul(self, other: Any, swap: bool) -> "Value":
        # Stacks of matrices (more than two axes) are NumPy's matmul handler's (an einsum).
        if len(self.shape) > 2 or len(getattr(other, "shape", np.shape(other))) > 2:
            return np.matmul(other, self) if swap else np.matmul(self, other)
        return self._binary("matmul", other, swap)

    def __neg__(self): return Value(self.builder, self.builder.apply_id("neg", (self.id,)))
    def __pos__(self): return Value(self.builder, self.id)  # a copy, as NumPy's
    def __abs__(self): return Value(self.builder, self.builder.apply_id("abs", (self.id,)))

    def sum(self, axis: Any = None, *args: Any, **kwargs: Any) -> "Value":
        """``x.sum()``, ``x.sum(axis=0)``, ``x.sum(keepdims=True)``: as :func:`numpy.sum`."""
        if args or kwargs or isinstance(axis, (tuple, list)) or not self.shape:
            return np.sum(self, axis, *args, **kwargs)
        return self.builder.apply("sum", self, axis=axis)

    def mean(self, axis: Any = None, *args: Any, **kwargs: Any) -> "Value":
        """``x.mean()``, ``x.mean(axis=0)``, ``x.mean(keepdims=True)``: as
        :func:`numpy.mean`."""
        if args or kwargs or isinstance(axis, (tuple, list)) or not self.shape:
            return np.mean(self, axis, *args, **kwargs)
        return self.builder.apply("mean", self, axis=axis)

    # -- the ndarray methods that are NumPy functions: the function's tracing (trace.py) ------
    def max(self, *args, **kwargs): return np.max(self, *args, **kwargs)
    def min(self, *args, **kwargs): return np.min(self, *args, **kwargs)
    def prod(self, *args, **kwargs): return np.prod(self, *args, **kwargs)
    def clip(self, *args, **kwargs): return np.clip(self, *args, **kwargs)
    def round(self, *args, **kwargs): return np.round(self, *args, **kwargs)
    def dot(self, *args, **kwargs): return np.dot(self, *args, **kwargs)
    def squeeze(self, *args, **kwargs): return np.squeeze(self, *args, **kwargs)
    def std(self, *args, **kwargs): return np.std(self, *args, **kwargs)
    def var(self, *args, **kwargs): return np.var(self, *args, **kwargs)
    def cumprod(self, *args, **kwargs): return np.cumprod(self, *args, **kwargs)
    def argsort(self, *args, **kwargs): return np.argsort(self, *args, **kwargs)
    def argmax(self, *args, **kwargs): return np.argmax(self, *args, **kwargs)
    def argmin(self, *args, **kwargs): return np.argmin(self, *args, **kwargs)
    def repeat(self, *args, **kwargs): return np.repeat(self, *args, **kwargs)
    def diagonal(self, *args, **kwargs): return np.diagonal(self, *args, **kwargs)
    def trace(self, *args, **kwargs): return np.trace(self, *args, **kwargs)
    def take(self, *args, **kwargs): return np.take(self, *args, **kwargs)
    def compress(self, condition, *args, **kwargs):
        return np.compress(condition, self, *args, **kwargs)

    def sort(self, axis: int = -1, kind: Any = None, order: Any = None) -> None:
        """``x.sort()``: sorts ``x`` in place, as ``ndarray.sort`` (a write of ``np.sort(x)``
        into ``x``: every name bound to it, and every view of it, sees the sorted values)."""
        self[...] = np.sort(self, axis=axis, kind=kind, order=order)

    def __round__(self, ndigits=None):
        return np.round(self) if ndigits is None else np.round(self, ndigits)

    def swapaxes(self, axis1: int, axis2: int) -> "Value":
        """The point with two axes exchanged (a permutation of its axes)."""
        axes = list(range(len(self.shape)))
        try:
            axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        except (IndexError, TypeError):
            raise ShapeError(f"swapaxes: axes {axis1!r}, {axis2!r} do not fit shape "
                             f"{self.shape}" + user_line()) from None
        return self.transpose(axes)

    def copy(self, *args: Any, **kwargs: Any) -> "Value":
        """A copy: the same node, as another array (a write into one leaves the other)."""
        if args or kwargs:
            raise _refused("copy(order=...)")
        return Value(self.builder, self.id)

    def astype(self, dtype: Any, *args: Any, **kwargs: Any) -> "Value":
        """``x.astype(np.float64)`` is ``x`` (every value is a float64); other types refuse."""
        try:
            same = np.dtype(dtype) == np.float64
        except TypeError:
            same = False
        if not same and not args and not kwargs and self.builder.ops[self.id] == "const":
            return self.__array__().astype(dtype)
        if not same or args or kwargs:
            raise _refused(f"astype({getattr(dtype, '__name__', dtype)!s})",
                           "every value of a circuit is a float64; astype(np.float64) traces")
        return self.copy()

    @property
    def dtype(self) -> np.dtype:
        """float64: the one type of every value of a circuit."""
        return np.dtype(np.float64)

    @property
    def real(self) -> "Value":
        """The value itself, as a view (circuits compute with real numbers)."""
        return self[...]

    conj = conjugate = copy

    # -- operators and methods that NumPy arrays have and a traced value refuses, by name ------
    def __lshift__(self, other): raise _refused("<<")
    __rlshift__ = __rshift__ = __rrshift__ = __lshift__

    def __xor__(self, other): raise _refused("^", "write (a | b) & ~(a & b) for masks")
    __rxor__ = __xor__

    def __dlpack__(self, *args, **kwargs): raise _refused("DLPack export (np.from_dlpack)")
    __dlpack_device__ = __dlpack__

    def __getattr__(self, name: str) -> Any:
        # Only for names ordinary lookup did not find: an ndarray attribute is refused by
        # name; NumPy's protocol probes (__array_interface__ ...) stay AttributeErrors.
        if not name.startswith("_") and hasattr(np.ndarray, name):
            if self.builder.ops[self.id] == "const":  # a constant: NumPy's array's own
                return getattr(self.__array__(), name)
            raise _refused(f".{name}")
        raise AttributeError(f"'Value' object has no attribute {name!r}")

    @property
    def ndim(self) -> int:
        """The number of axes of one point."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """The number of entries of one point."""
        return math.prod(self.shape)

    # -- comparisons and logic build masks (1.0 where true, primitives/compare.py) ------------
    def __lt__(self, other): return self._binary("less", other)
    def __le__(self, other): return self._binary("less_equal", other)
    def __gt__(self, other): return self._binary("greater", other)
    def __ge__(self, other): return self._binary("greater_equal", other)
    def __eq__(self, other): return self._binary("equal", other)  # type: ignore[override]
    def __ne__(self, other): return self._binary("not_equal", other)  # type: ignore[override]
    def __and__(self, other): return self._binary("logical_and", other)
    def __rand__(self, other): return self._binary("logical_and", other, True)
    def __or__(self, other): return self._binary("logical_or", other)
    def __ror__(self, other): return self._binary("logical_or", other, True)
    def __invert__(self):
        return Value(self.builder, self.builder.apply_id("logical_not", (self.id,)))

    # A Value is still a dictionary key by identity, as before ``==`` built masks.
    __hash__ = object.__hash__

    # -- what a traced value is not: each of these is a clear error at the user's line --------
    # A trace at a point (cg.trace(fn, at=...), cg.function: frontends/guards.py) installs
    # ``guards``: there bool/int/float/index take the point's value and record a guard.
    guards: Any = None

    def __bool__(self):
        if self.builder.ops[self.id] == "const":  # a constant has its number, exactly
            return bool(self.__array__())
        taken = None if Value.guards is None else Value.guards.truth(self)
        if taken is not None:
            return taken
        raise CircuitError(
            "a traced value has no truth value: control flow that depends on data cannot be "
            "traced without a point (write cg.where(x > 0, a, b) instead of if/else, or trace "
            "at a point, cg.trace(f, at=x0) or cg.function(f), to take the branch the point "
            "takes, guarded: docs/tracing.md, \"Branches\"; a comparison of traced values is "
            "a mask, 1.0 where it holds)" + user_line())

    def _number(self, *_):
        raise CircuitError("a traced value has no number yet: it is a node of the circuit "
                           "(float(), int() and math.* functions need numbers; use cg.sin, "
                           "np.sin ... on traced values; int(x) and float(x) take the value "
                           "at a trace point, cg.trace(f, at=x0) or cg.function(f): "
                           "docs/tracing.md, \"Branches\")" + user_line())

    def _const(name: str, hook: str | None = None) -> Any:  # noqa: N805
        def number(self, *args):
            if self.builder.ops[self.id] == "const":  # a constant's number is its array's
                return getattr(self.__array__(), name)(*args)
            if hook is not None and Value.guards is not None:
                got = getattr(Value.guards, hook)(self, *(
                    ("operator.index()",) if name == "__index__" else ()))
                if got is not None:
                    return got
            return self._number()
        return number

    __float__ = _const("__float__", "number")
    __int__, __index__ = _const("__int__", "integer"), _const("__index__", "integer")
    __complex__, item, tolist = _const("__complex__"), _const("item"), _const("tolist")
    del _const

    @property
    def imag(self):
        raise _refused(".imag", "circuits compute with real numbers: the imaginary part of "
                       "every value is 0")

    def __array__(self, dtype=None, copy=None):
        if self.builder.ops[self.id] == "const":
            value = self.builder.params[self.id]
            return np.array(value, dtype=dtype)  # (a copy: the constant stays as it is)
        scipy_function = _scipy_caller()
        if scipy_function is not None:
            raise CircuitError(
                f"scipy.special.{scipy_function} cannot be traced (SciPy converts its argument "
                f"with np.asarray): write cg.{scipy_function}(x, axis=...), the same function "
                "as one record (docs/tracing.md, \"SciPy\")" + user_line())
        linalg_caller = _scipy_linalg_caller()
        if linalg_caller is not None:
            name, line = linalg_caller
            raise CircuitError(f"{name} cannot be traced (SciPy converts its arguments with "
                               "np.asarray): write cg.solve_triangular, cg.cho_factor, "
                               "cg.cho_solve or np.linalg's functions (docs/tracing.md, "
                               "\"Linear algebra\")" + line)
        raise CircuitError("a traced value cannot become a NumPy array (np.array, np.asarray, "
                           "a list mixing traced values, or a write out[i] = x into a NumPy "
                           "array): it already is an array of the circuit, so drop "
                           "np.asarray(x); join values with np.stack or np.concatenate; or "
                           "import circuitgrad.numpy as np, whose array, asarray and zeros "
                           "take traced values (docs/tracing.md)" + user_line())

    # -- writes, functionalized (frontends/writes.py): x[i] = v, x += v, x.fill(v) -----------
    writes: Any = None

    def __setitem__(self, index, value):
        if Value.writes is None:
            raise CircuitError("a traced value cannot be changed in place here" + user_line())
        Value.writes.setitem(self, index, value)

    def fill(self, value: Any) -> None:
        """``x.fill(v)``: every entry written with the number ``v``."""
        self[...] = value

    def _view(self, view: "Value", how: tuple, opaque: bool = False) -> "Value":
        return view if Value.writes is None else Value.writes.link(self, view, how, opaque)

    def _inplace(self, result: Any) -> "Value":
        return result if Value.writes is None else Value.writes.inplace(self, result)

    def __iadd__(self, other): return self._inplace(self + other)
    def __isub__(self, other): return self._inplace(self - other)
    def __imul__(self, other): return self._inplace(self * other)
    def __itruediv__(self, other): return self._inplace(self / other)
    def __ipow__(self, other): return self._inplace(self ** other)
    def __imatmul__(self, other): return self._inplace(self @ other)
    def __iand__(self, other): return self._inplace(self & other)
    def __ior__(self, other): return self._inplace(self | other)

    # -- indexing and reshaping, with NumPy's meaning (indices are constants) ---------------
    def __getitem__(self, index: Any) -> "Value":
        """``x[1:]``, ``x[i, j]``, ``x[:, 0]``, ``x[..., None]``, ``x[[0, 2, 5]]``."""
        from .primitives.shape_ops import normalize_index

        b, shape = self.builder, self.shape
        items = index if isinstance(index, tuple) else (index,)
        arrays = [k for k, e in enumerate(items) if isinstance(e, (list, np.ndarray))]
        for e in items:
            if isinstance(e, Value):
                raise CircuitError("an index must be a constant, not a traced value (the "
                                   "circuit's shape cannot depend on data)" + user_line())
        try:
            if any(isinstance(e, np.ndarray) and e.dtype == bool or isinstance(e, bool)
                   or isinstance(e, list) and any(isinstance(k, (bool, np.bool_)) for k in e)
                   for e in items):
                return self._gathered(index)
            if arrays:
                try:
                    return self._take(items, arrays)
                except ShapeError as e:  # two arrays, the other layouts: NumPy gathers them
                    if "two steps" not in str(e):
                        raise
                    return self._gathered(index)
            canonical = normalize_index(index, shape)
            view = b.apply("getitem", self, index=canonical)
            if len(items) == len(shape) and all(
                    isinstance(e, (int, np.integer)) and not isinstance(e, bool) for e in items):
                return view  # a number: NumPy's copy
            return self._view(view, ("getitem", canonical))
        except CircuitError as e:
            raise type(e)(str(e) + user_line()) from None

    def _gathered(self, index: Any) -> "Value":
        """An advanced index (boolean masks, several integer arrays) as NumPy resolves it on
        the entry numbers: one ``take`` of the flattened point (a copy, as NumPy's)."""
        ids = np.arange(self.size).reshape(self.shape)
        try:
            picked = ids[index]
        except (IndexError, TypeError, ValueError) as e:
            raise ShapeError(f"index: {e} (shape {self.shape})") from None
        b = self.builder
        if picked.size == 0:
            return b.const(np.zeros(picked.shape))
        flat = b.apply("reshape", self, shape=(self.size,))
        return b.apply("reshape", b.apply("take", flat, indices=tuple(picked.ravel().tolist()),
                                          axis=0), shape=picked.shape)

    def _take(self, items: tuple, arrays: list[int]) -> "Value":
        if any(e is Ellipsis for e in items):  # the axes '...' stands for, as ':'
            k = next(j for j, e in enumerate(items) if e is Ellipsis)
            fill = len(self.shape) - (len(items) - 1 - sum(1 for e in items if e is None))
            items = items[:k] + (slice(None),) * max(fill, 0) + items[k + 1:]
            arrays = [j for j, e in enumerate(items) if isinstance(e, (list, np.ndarray))]
        where = arrays[0]
        picks = np.asarray(items[where])
        if len(arrays) > 1 or picks.ndim != 1 or picks.dtype.kind not in "iu" or any(
                e is None for e in items):
            raise ShapeError("integer-array indexing takes one 1-D array of integers (and "
                             "no None); index in two steps otherwise")
        ints = [k for k, e in enumerate(items) if not isinstance(e, (slice, list, np.ndarray))]
        block = sorted(ints + [where])
        if block != list(range(block[0], block[-1] + 1)):
            # NumPy moves the axis of integers and an array with a slice between them to the
            # front: a different layout from the two steps below.
            raise ShapeError("an integer array and integers with a slice between them: "
                             "index in two steps")
        if where >= len(self.shape):
            raise ShapeError(f"index: too many indices for a point of shape {self.shape}")
        n = self.shape[where]
        if any(not -n <= int(k) < n for k in picks):
            raise ShapeError(f"index: indices {picks.tolist()} are out of range for axis "
                             f"{where} of length {n}")
        # The basic part first (integers drop their axes), then the array along its axis.
        basic = self[tuple(slice(None) if k == where else e for k, e in enumerate(items))]
        axis = where - sum(1 for k in ints if k < where)
        return self.builder.apply("take", basic, indices=tuple(int(k) % n for k in picks),
                                  axis=axis)

    def __len__(self) -> int:
        if not self.shape:
            raise CircuitError("len() of a traced scalar: it has no axes" + user_line())
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise CircuitError("a traced scalar cannot be iterated over" + user_line())
        return (self[k] for k in range(self.shape[0]))

    def reshape(self, *shape: Any, order: str = "C") -> "Value":
        """``x.reshape(2, 3)``, ``x.reshape((2, -1))``: a point of the same entries."""
        _c_order("reshape", order)
        if not shape:
            raise ShapeError("reshape() needs the new shape, e.g. x.reshape(2, 3)" + user_line())
        wanted = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        new = _reshaped(self.shape, wanted)
        # A view in NumPy whatever the layout: of a vector, or with axes of length 1 added or
        # dropped; else a view or a copy by the layout (a write through it is refused).
        always = len(self.shape) <= 1 or [n for n in new if n != 1] == [
            n for n in self.shape if n != 1]
        return self._view(self.builder.apply("reshape", self, shape=new), ("reshape", new),
                          opaque=not always)

    def ravel(self, order: str = "C") -> "Value":
        """The point's entries as one vector (C order)."""
        _c_order("ravel", order)
        return self.reshape(-1)

    def flatten(self, order: str = "C") -> "Value":
        """The point's entries as one vector (C order), a copy."""
        _c_order("flatten", order)
        return Value(self.builder, self.builder.apply_id("reshape", (self.id,),
                                                         {"shape": (self.size,)}))

    def transpose(self, *axes: Any) -> "Value":
        """``x.transpose()`` is ``x.T``; ``x.transpose(1, 0, 2)`` permutes the point's axes."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if not axes:
            return self.T
        axes = _permutation(self.shape, axes)
        return self._view(self.builder.apply("permute_dims", self, axes=axes),
                          ("permute_dims", axes))

    def cumsum(self, axis: int | None = None, *args: Any, **kwargs: Any) -> "Value":
        """Running sums along ``axis`` (of the flattened point when None, as NumPy)."""
        if args or kwargs:  # dtype=, out=: np.cumsum's tracing refuses them by name
            return np.cumsum(self, axis, *args, **kwargs)
        x = self if axis is not None else self.ravel()
        return self.builder.apply("cumsum", x, axis=0 if axis is None else axis)

    def __repr__(self) -> str:
        return f"<Value node {self.id}: {self.op} shape={self.shape}>"

    # NumPy's dispatch protocols (NEP 13 and NEP 18): a NumPy function called on a traced
    # value either builds the nodes it stands for or raises. The tracing front-end installs
    # the dispatcher (circuitgrad.frontends.trace), so that the IR does not import it.
    numpy_dispatch: Any = None

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if Value.numpy_dispatch is None:
            raise CircuitError(f"numpy.{ufunc.__name__} cannot be applied to a traced value")
        return Value.numpy_dispatch.ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if Value.numpy_dispatch is None:
            raise CircuitError(f"numpy.{func.__name__} cannot be applied to a traced value")
        return Value.numpy_dispatch.function(func, args, kwargs)

def _scipy_linalg_caller() -> tuple[str, str] | None:
    """The public scipy.linalg function (``scipy.linalg.solve_triangular``) converting a
    traced value with np.asarray, if one is (its outermost frame; a batching ``wrapper`` names
    what it wraps), and the user's line that called it."""
    import sys

    frame, found = sys._getframe(2), None
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("scipy."):
            name = frame.f_code.co_name
            wrapped = frame.f_locals.get("f") if name == "wrapper" else None
            name = getattr(wrapped, "__name__", name)
            module = getattr(wrapped, "__module__", None) or module
            public = ".".join(p for p in module.split(".") if not p.startswith("_"))
            if public.startswith("scipy.linalg") and not name.startswith("_"):
                found = (f"{public}.{name}", frame.f_back)
        frame = frame.f_back
    if found is None:
        return None

    def outside(frame: Any) -> Iterator[tuple[Any, int]]:
        while frame is not None:
            yield frame, frame.f_lineno
            frame = frame.f_back

    return found[0], user_line(outside(found[1]))


def _refused(what: str, hint: str = "") -> CircuitError:
    """The error for an ndarray method or operator that a traced value does not have."""
    return CircuitError(f"{what} cannot be applied to a traced value: it is not in "
                        f"circuitgrad's primitive table ({hint or 'docs/tracing.md lists what '}"
                        f"{'' if hint else 'traces'})" + user_line())

def _c_order(method: str, order: Any) -> None:
    """Refuses an ``order=`` other than C's: a circuit's entries are in C order, and
    ``x.reshape(..., order="F")`` takes them another way (a different number)."""
    if order != "C":
        raise _refused(f"{method}(order={order!r})", "a point's entries are in C order; "
                       "order='C' traces")


def _reshaped(shape: Shape, wanted: Any) -> Shape:
    """NumPy's reshape target (one -1 inferred) for a point of ``shape``, or a ShapeError."""
    try:
        dims = [operator.index(n) for n in (wanted if isinstance(wanted, (tuple, list))
                                             else (wanted,))]
    except TypeError:
        raise ShapeError(f"reshape: the shape must be integers, got {wanted!r}") from None
    size = math.prod(shape)
    if dims.count(-1) > 1 or any(n < -1 for n in dims):
        raise ShapeError(f"reshape: invalid shape {tuple(dims)}")
    if -1 in dims:
        rest = math.prod(n for n in dims if n != -1)
        if rest == 0 or size % rest:
            raise ShapeError(f"reshape: a point of shape {shape} cannot become {tuple(dims)}")
        dims[dims.index(-1)] = size // rest
    if math.prod(dims) != size:
        raise ShapeError(f"reshape: a point of shape {shape} cannot become {tuple(dims)}")
    return tuple(dims)

def _permutation(shape: Shape, axes: Any) -> tuple[int, ...]:
    n = len(shape)
    try:
        axes = tuple(operator.index(a) for a in axes)
    except TypeError:
        raise ShapeError(f"transpose: axes must be integers, got {axes!r}") from None
    if sorted(a % n if -n <= a < n else a for a in axes) != list(range(n)):
        raise ShapeError(f"transpose: axes {list(axes)} are not a permutation of the {n} axes "
                         f"of shape {shape}")
    return tuple(a % n for a in axes)

_PROGRAM_TEXT = contextvars.ContextVar("circuitgrad_program_text", default=False)

@contextmanager
def in_program_text() -> Iterator[None]:
    """While a front-end builds from program text, errors name the text's line and column
    (the front-end's own), not a line of Python code: :func:`user_line` says nothing."""
    token = _PROGRAM_TEXT.set(True)
    try:
        yield
    finally:
        _PROGRAM_TEXT.reset(token)

_SCIPY_EQUIVALENTS = ("logsumexp", "softmax", "log_softmax")


def _scipy_caller() -> str | None:
    """The SciPy function with a ``cg.`` equivalent (``logsumexp``, ``softmax``,
    ``log_softmax``) whose code is converting a traced value, if it is one."""
    import os
    import sys

    scipy = sys.modules.get("scipy")
    if scipy is None:
        return None
    root = os.path.dirname(os.path.abspath(scipy.__file__)) + os.sep
    frame = sys._getframe(2)
    while frame is not None:
        if os.path.abspath(frame.f_code.co_filename).startswith(root):
            if frame.f_code.co_name in _SCIPY_EQUIVALENTS:
                return frame.f_code.co_name
        frame = frame.f_back
    return None


def user_line(frames: Iterable[Any] | None = None) -> str:
    """`` (at FILE:LINE: code)`` for the innermost frame outside circuitgrad and NumPy: where
    in the user's code a traced value was misused ('' when there is no such frame).
    ``frames``: (frame, line) pairs from the innermost out (default: the calling stack)."""
    import linecache
    import os
    import sys

    if _PROGRAM_TEXT.get():
        return ""
    if frames is None:
        def stack() -> Iterator[tuple[Any, int]]:
            frame = sys._getframe(1)
            while frame is not None:
                yield frame, frame.f_lineno
                frame = frame.f_back
        frames = stack()
    here = os.path.dirname(os.path.abspath(__file__))
    numpy_dir = os.path.dirname(np.__file__)
    # SciPy's frames are never the user's line either (its special functions trace).
    scipy = sys.modules.get("scipy")
    scipy_dir = os.path.dirname(os.path.abspath(scipy.__file__)) if scipy else numpy_dir
    for frame, line in frames:
        name = frame.f_code.co_filename
        path = os.path.abspath(name)
        if not (path.startswith(here + os.sep) or path.startswith(numpy_dir + os.sep)
                or path.startswith(scipy_dir + os.sep) or name.startswith("<frozen")):
            code = linecache.getline(name, line).strip()
            return f" (at {name}:{line}: {code})" if code else f" (at {name}:{line})"
    return ""

def traceback_line(tb: Any) -> str:
    """:func:`user_line` of the innermost user frame of a traceback."""
    frames = []
    while tb is not None:
        frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return user_line(reversed(frames))
