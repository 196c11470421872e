"""Permutations that depend on the values: ``argsort`` and the gathers by its indices.

``argsort(x, axis)`` gives a lane's stable sorting permutation as float64 integers (every value
of a circuit is a float64); it has no derivative. ``take_along_axis(x, indices, axis)`` gathers
``x`` along ``axis`` at indices computed when the circuit is evaluated (argsort's, or parts of
them: the front-end checks that they are integers in range whatever the values); its adjoint is
``put_along_axis_add``, which adds each value into its index, and whose adjoint is the gather.
So ``np.sort(x)`` is ``take_along_axis(x, argsort(x))`` and its gradient the scatter of the
adjoint by the same permutation.

No scalar form: a circuit of scalar operations cannot choose an entry by a value, so scalarize
(and ``to_tape``, ``to_c``) refuse these three by name, and ``c_refusal`` says why.

    >>> import numpy as np
    >>> from circuitgrad.primitives import evaluate
    >>> evaluate("argsort", (np.array([3.0, 1.0, 2.0, 1.0]),), {"axis": 0}).tolist()
    [1.0, 3.0, 2.0, 0.0]
"""

from __future__ import annotations

from typing import Any

from ..errors import CircuitError, ShapeError
from .core import Primitive, Shape, call, normalize_axis


_BY_VALUE = ("a permutation that depends on the values has no circuit of scalar operations "
             "(to_numpy and the array API evaluate it)")


def _no_scalar_form(op: str) -> Any:
    def refuse(b: Any, prim: Any, args: Any, params: dict, shape: tuple) -> Any:
        raise CircuitError(f"{op}: {_BY_VALUE}, so scalarize, to_tape and to_c refuse it")

    return refuse


def _argsort_shape(x: Shape, axis: int) -> Shape:
    if not x or normalize_axis("argsort", x, axis) is None:
        raise ShapeError(f"argsort: needs an axis of a point with axes, got shape {x}")
    return tuple(x)


def _argsort_template(x: str, shapes: tuple[Shape, ...], axis: int) -> str:
    return f"xp.astype(xp.argsort({x}, axis={axis - len(shapes[0])}, stable=True), xp.float64)"


def _along_shape(op: str, x: Shape, indices: Shape, axis: int) -> None:
    if not x or len(x) != len(indices) or not 0 <= axis < len(x) or any(
            a != b for k, (a, b) in enumerate(zip(x, indices)) if k != axis):
        raise ShapeError(f"{op}: indices of shape {indices} do not fit shape {x} along axis "
                         f"{axis} (the same rank, the same lengths but along the axis)")


def _take_along_shape(x: Shape, indices: Shape, axis: int) -> Shape:
    _along_shape("take_along_axis", x, indices, axis)
    return tuple(indices)


def _take_along_template(x: str, i: str, shapes: tuple[Shape, ...], axis: int) -> str:
    rank = len(shapes[0])
    return f"_cg.take_along_axis({x}, {i}, {axis - rank}, {rank})"


def _put_along_shape(v: Shape, indices: Shape, axis: int, shape: Shape) -> Shape:
    if tuple(v) != tuple(indices):
        raise ShapeError(f"put_along_axis_add: values of shape {v} and indices of shape "
                         f"{indices} differ")
    _along_shape("put_along_axis_add", tuple(shape), indices, axis)
    return tuple(shape)


def _put_along_template(v: str, i: str, shapes: tuple[Shape, ...], axis: int,
                        shape: Shape) -> str:
    return f"_cg.put_along_axis_add({v}, {i}, {tuple(shape)!r}, {axis - len(shape)})"


def _take_along_vjp(bar: Any, out: Any, x: Any, indices: Any, axis: int) -> tuple:
    return call("put_along_axis_add", bar, indices, axis=axis, shape=x.shape), None


def _take_along_jvp(tangents: tuple, out: Any, x: Any, indices: Any, axis: int) -> Any:
    t = tangents[0]
    return None if t is None else call("take_along_axis", t, indices, axis=axis)


def _put_along_vjp(bar: Any, out: Any, v: Any, indices: Any, axis: int, shape: Shape) -> tuple:
    return call("take_along_axis", bar, indices, axis=axis), None


def _put_along_jvp(tangents: tuple, out: Any, v: Any, indices: Any, axis: int,
                   shape: Shape) -> Any:
    t = tangents[0]
    return None if t is None else call("put_along_axis_add", t, indices, axis=axis,
                                       shape=shape)


RECORDS: list[Primitive] = [
    # The stable sorting permutation along ``axis``, as float64 integers; no derivative.
    Primitive("argsort", 1, _argsort_template, "argsort", params=("axis",),
              shape=_argsort_shape, internal=True,
              vjp=lambda bar, out, x, axis: (None,),
              jvp=lambda tangents, out, x, axis: None,
              cases=(((4,),),), example={"axis": 0}, sparsity="dense",
              scalar=_no_scalar_form("argsort"), c_refusal=_BY_VALUE),
    # x's entries at indices computed at evaluation (argsort's), along ``axis``.
    Primitive("take_along_axis", 2, _take_along_template, "take_along",
              params=("axis",), shape=_take_along_shape, internal=True,
              vjp=_take_along_vjp, jvp=_take_along_jvp,
              cases=(((4,), (4,)),), example={"axis": 0}, sparsity="dense",
              scalar=_no_scalar_form("take_along_axis"), c_refusal=_BY_VALUE),
    # Zeros of ``shape`` with each value added at its index along ``axis``: the gather's adjoint.
    Primitive("put_along_axis_add", 2, _put_along_template, "take_along⁺",
              params=("axis", "shape"), shape=_put_along_shape, internal=True,
              vjp=_put_along_vjp, jvp=_put_along_jvp,
              cases=(((4,), (4,)),), example={"axis": 0, "shape": (4,)}, sparsity="dense",
              scalar=_no_scalar_form("put_along_axis_add"), c_refusal=_BY_VALUE),
]
