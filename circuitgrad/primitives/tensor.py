"""The tensor primitives: products, transposes, reductions, and the two that undo and make
broadcasting in the adjoint pass (``sum_to``, ``broadcast_to``). Their adjoint and tangent rules
are the notes' matrix chain rules, declared directly (``vjp``, ``jvp``)."""

from __future__ import annotations

import math
from typing import Any, Callable

from ..errors import ShapeError
from . import expand
from .core import Primitive, Shape, axes_text, broadcast_shape, call, normalize_axis, sum_optional


# ---------------------------------------------------------------------------------------------
# Shape rules of the tensor ops.


def _matmul_shape(a: Shape, b: Shape) -> Shape:
    if len(a) not in (1, 2) or len(b) not in (1, 2):
        raise ShapeError(f"matmul: operands must be vectors or matrices, got shapes {a} and {b}")
    if a[-1] != b[0]:
        raise ShapeError(
            f"matmul: shapes {a} and {b} do not fit: {a[-1]} (last of left) != {b[0]} "
            "(first of right)"
        )
    return a[:-1] + b[1:]


def _reduce_shape(op: str) -> Callable[..., Shape]:
    def rule(x: Shape, axis: int | None = None) -> Shape:
        axis = normalize_axis(op, x, axis)
        return () if axis is None else x[:axis] + x[axis + 1 :]

    return rule


def _sum_to_shape(x: Shape, shape: Shape) -> Shape:
    if broadcast_shape("sum_to", x, shape) != tuple(x):
        raise ShapeError(f"sum_to: shape {x} cannot be summed down to {shape}")
    return tuple(shape)


def _broadcast_to_shape(x: Shape, shape: Shape, axis: int | None = None) -> Shape:
    expanded = x if axis is None else x[:axis] + (1,) + x[axis:]
    if broadcast_shape("broadcast_to", expanded, shape) != tuple(shape):
        raise ShapeError(f"broadcast_to: shape {x} cannot be broadcast to {shape}")
    return tuple(shape)


# ---------------------------------------------------------------------------------------------
# Templates that depend on params and on the point shapes of the arguments. Point axes are
# counted from the end, so that the same code runs on one point and on a batch of points.


def _reduce_template(fn: str) -> Callable[..., str]:
    def template(x: str, shapes: tuple[Shape, ...], axis: int | None = None) -> str:
        rank = len(shapes[0])
        if axis is None:
            # The reduction of a scalar point is the point itself (the builder drops it).
            return x if rank == 0 else f"xp.{fn}({x}, axis={axes_text(range(-rank, 0))})"
        return f"xp.{fn}({x}, axis={axis - rank})"

    return template


def _sum_to_template(x: str, shapes: tuple[Shape, ...], shape: Shape, ndim: int) -> str:
    # Sum the leading point axes that broadcasting added, and those where the target has
    # length 1; batch axes in front are left alone.
    rank, n = len(shapes[0]), len(shape)
    lead = tuple(range(-rank, -n))
    ones = tuple(k - n for k, m in enumerate(shape) if m == 1)
    if not ones:
        return f"xp.sum({x}, axis={axes_text(lead)})"
    summed = f"xp.sum({x}, axis={axes_text(lead + ones)}, keepdims=True)"
    return summed if not lead else f"{summed}[..., {', '.join(['0'] * len(lead) + [':'] * n)}]"


def _broadcast_to_template(x: str, shapes: tuple[Shape, ...], shape: Shape,
                           axis: int | None = None) -> str:
    # A read-only view of batch shape + shape (x may be a number: a constant is not folded).
    extra = "" if axis is None else f", {axis}"
    return f"_cg.broadcast_to({x}, {tuple(shape)!r}, {len(shapes[0])}{extra})"


def _matmul_template(a: str, b: str, shapes: tuple[Shape, ...]) -> str:
    # NumPy's @ takes a 1-D operand as a vector only without batch axes: name the case.
    na, nb = len(shapes[0]), len(shapes[1])
    if na == 2 and nb == 2:
        return f"{a} @ {b}"
    fn = {(2, 1): "_sp.matvec", (1, 2): "_sp.vecmat", (1, 1): "xp.vecdot"}[na, nb]
    return f"{fn}({a}, {b})"


def _transpose_template(x: str, shapes: tuple[Shape, ...]) -> str:
    # The point's axes reversed (NumPy's .T), the batch axes left in front.
    rank = len(shapes[0])
    if rank <= 1:
        return x
    if rank == 2:
        return f"xp.matrix_transpose({x})"
    return f"xp.moveaxis({x}, {tuple(range(-rank, 0))}, {tuple(range(-1, -rank - 1, -1))})"


def _outer_template(a: str, b: str, shapes: tuple[Shape, ...]) -> str:
    return f"{a}[..., :, None] * {b}[..., None, :]"


# ---------------------------------------------------------------------------------------------
# Adjoint and tangent rules of the tensor-linear ops (the notes' matrix chain rules).


def _matmul_vjp(bar: Any, out: Any, a: Any, b: Any) -> tuple:
    # The notes: z = W u  ⇒  ∂J/∂W = δ uᵀ and ∂J/∂u = Wᵀ δ; the other cases follow NumPy's
    # promotion of a 1-D operand to a row (left) or a column (right).
    na, nb = len(a.shape), len(b.shape)
    if na == 2 and nb == 2:
        return bar @ b.T, a.T @ bar
    if na == 2 and nb == 1:
        return call("outer", bar, b), a.T @ bar
    if na == 1 and nb == 2:
        return b @ bar, call("outer", a, bar)
    return bar * b, bar * a


def _matmul_jvp(tangents: tuple, out: Any, a: Any, b: Any) -> Any:
    ta, tb = tangents
    left = None if ta is None else ta @ b
    right = None if tb is None else a @ tb
    if left is None:
        return right
    return left if right is None else left + right


def _reduce_vjp(mean: bool) -> Callable[..., tuple]:
    def vjp(bar: Any, out: Any, x: Any, axis: int | None = None) -> tuple:
        if mean:
            count = math.prod(x.shape) if axis is None else x.shape[axis]
            bar = bar / float(count)
        if axis is None:
            return (bar,)  # a scalar: it broadcasts wherever it is used, never materialized
        return (call("broadcast_to", bar, shape=x.shape, axis=axis),)

    return vjp


def _linear_jvp(name: str) -> Callable[..., Any]:
    def jvp(tangents: tuple, out: Any, *args: Any, **params: Any) -> Any:
        (t,) = tangents
        return None if t is None else call(name, t, **params)

    return jvp


def _sum_to_vjp(bar: Any, out: Any, x: Any, shape: Shape, ndim: int) -> tuple:
    return (bar,)  # broadcasts back up to x's shape by itself


def _broadcast_to_vjp(bar: Any, out: Any, x: Any, shape: Shape, axis: int | None = None) -> tuple:
    # The adjoint pass sums a contribution down to the operand's shape (sum_to) by itself.
    return (bar if axis is None else call("sum", bar, axis=axis),)


# The sympy form of a tensor op is that of a scalar operand (sum(x) = x): to_sympy only takes
# scalar circuits; matmul and outer have none, as they never take scalars.
RECORDS: list[Primitive] = [
    Primitive("matmul", 2, _matmul_template, "@",
              numpy=("matmul",), vjp=_matmul_vjp, jvp=_matmul_jvp,
              shape=_matmul_shape,
              cases=(((2, 3), (3, 4)), ((2, 3), (3,)), ((3,), (3, 4)), ((3,), (3,))),
              sparsity="matmul",
              scalar=expand.matmul),
    Primitive("outer", 2, _outer_template, "⊗", numpy=("outer",),
              vjp=lambda bar, out, a, b: (bar @ b, a @ bar),
              jvp=lambda t, out, a, b: sum_optional(
                  None if t[0] is None else call("outer", t[0], b),
                  None if t[1] is None else call("outer", a, t[1])),
              shape=lambda a, b: _outer_shape(a, b), cases=(((2,), (3,)),),
              sparsity="outer",
              scalar=expand.outer),
    Primitive("transpose", 1, _transpose_template, "ᵀ",
              numpy=("transpose",), vjp=lambda bar, out, x: (bar.T,),
              jvp=_linear_jvp("transpose"), shape=lambda x: tuple(reversed(x)),
              sympy=lambda x: x, cases=(((2, 3),),),
              sparsity="indexing",
              scalar=expand.transpose),
    Primitive("sum", 1, _reduce_template("sum"), "Σ", numpy=("sum",), vjp=_reduce_vjp(mean=False),
              jvp=_linear_jvp("sum"), shape=_reduce_shape("sum"),
              sympy=lambda x, axis=None: x, params=("axis",), cases=(((2, 3),),),
              sparsity="reduction", scalar_identity=True, fold="add",
              scalar=expand.reduction),
    Primitive("mean", 1, _reduce_template("mean"), "mean",
              numpy=("mean",), vjp=_reduce_vjp(mean=True),
              jvp=_linear_jvp("mean"), shape=_reduce_shape("mean"),
              sympy=lambda x, axis=None: x, params=("axis",), cases=(((2, 3),),),
              sparsity="reduction", scalar_identity=True, fold="add",
              scalar=expand.mean),
    # The adjoint of broadcasting: sum a broadcast array back down to an operand's shape.
    Primitive("sum_to", 1, _sum_to_template, "Σ→", vjp=_sum_to_vjp,
              jvp=_linear_jvp("sum_to"), shape=lambda x, shape, ndim: _sum_to_shape(x, shape),
              sympy=lambda x, **p: x, params=("shape", "ndim"), internal=True,
              cases=(((2, 3),),),
              sparsity="sum_to",
              scalar=expand.sum_to),
    # A read-only view, never a copy: the adjoint of sum and mean.
    Primitive("broadcast_to", 1, _broadcast_to_template, "⇲", vjp=_broadcast_to_vjp,
              jvp=_linear_jvp("broadcast_to"), shape=_broadcast_to_shape,
              sympy=lambda x, **p: x, params=("shape", "axis"), internal=True,
              sparsity="indexing",
              scalar=expand.broadcast_to),
]


def _outer_shape(a: Shape, b: Shape) -> Shape:
    if len(a) != 1 or len(b) != 1:
        raise ShapeError(f"outer: operands must be vectors, got shapes {a} and {b}")
    return (a[0], b[0])



