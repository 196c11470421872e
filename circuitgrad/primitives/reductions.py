"""The reductions beyond ``sum`` and ``mean`` (tensor.py): ``max``, ``min``, ``prod``, ``norm``,
``logsumexp``, and the two normalizations ``softmax`` and ``log_softmax``. Each takes an
optional ``axis`` (one axis of the point; default: all of them), like ``sum``.

Stable forms (primitives/special.py): ``logsumexp``, ``softmax`` and ``log_softmax`` shift by
the maximum, so logits of ±1000 give finite values and gradients; ``norm`` scales by the
largest magnitude, so ``norm([3e200, 4e200]) = 5e200``.

Conventions: at a tie the derivative of ``max`` and ``min`` is split evenly among the tied
entries (as ``jax.numpy.max`` and ``torch.max`` without ``dim``); ``norm′ = x / norm`` is 0 at
the origin (PyTorch's choice; JAX gives nan); ``prod′`` is the product of the other entries,
``prod_others`` (an internal primitive: exclusive products, no division, so it is exact where
entries are 0, as in JAX and PyTorch). Its derivatives are ``prod_others`` again with one
direction more (``prod_others(x, v)``: the pairwise-exclusive products along v), so the Hessian
and every higher derivative are exact where entries are 0 too.
"""

from __future__ import annotations

from typing import Any, Callable

from . import expand
from ..errors import ShapeError
from .core import Primitive, Shape, call, normalize_axis
from .tensor import _reduce_shape, _reduce_template


def _special_template(fn: str) -> Callable[..., str]:
    # The functions of special.py take the point axes as a tuple of negative axes.
    def template(x: str, shapes: tuple[Shape, ...], axis: int | None = None) -> str:
        rank = len(shapes[0])
        axes = tuple(range(-rank, 0)) if axis is None else (axis - rank,)
        return f"_sp.{fn}({x}, {axes!r})"

    return template


def _same_shape(op: str) -> Callable[..., Shape]:
    def rule(x: Shape, axis: int | None = None) -> Shape:
        normalize_axis(op, x, axis)
        return tuple(x)

    return rule


def _expand(v: Any, x: Any, axis: int | None) -> Any:
    """A reduced value ``v`` back at the shape of ``x`` (a view; a scalar broadcasts itself)."""
    return v if axis is None else call("broadcast_to", v, shape=x.shape, axis=axis)


def _reduced(op: str, v: Any, axis: int | None) -> Any:
    return call(op, v) if axis is None else call(op, v, axis=axis)


# -- rules -------------------------------------------------------------------------------------

def _chooser_vjp(bar: Any, out: Any, x: Any, axis: int | None = None) -> tuple:
    # The entries equal to the max share the adjoint evenly (1/count each).
    hit = call("equal", x, _expand(out, x, axis))
    return (_expand(bar / _reduced("sum", hit, axis), x, axis) * hit,)


def _chooser_jvp(tangents: tuple, out: Any, x: Any, axis: int | None = None) -> Any:
    (t,) = tangents
    if t is None:
        return None
    hit = call("equal", x, _expand(out, x, axis))
    return _reduced("sum", t * hit, axis) / _reduced("sum", hit, axis)


def _others(x: Any, axis: int | None, *vs: Any) -> Any:
    return call("prod_others", x, *vs) if axis is None else call("prod_others", x, *vs,
                                                                   axis=axis)


def _prod_vjp(bar: Any, out: Any, x: Any, axis: int | None = None) -> tuple:
    # ∂prod/∂xᵢ = Π_{j≠i} xⱼ, exact also where entries are 0.
    return (_expand(bar, x, axis) * _others(x, axis),)


def _prod_jvp(tangents: tuple, out: Any, x: Any, axis: int | None = None) -> Any:
    (t,) = tangents
    return None if t is None else _reduced("sum", t * _others(x, axis), axis)


# prod_others(x, v₁ … vₘ) is D^{m+1}prod(x)[eₗ, v₁ … vₘ] at entry l: the derivative tensors of a
# product are symmetric and each is linear in every direction, so the adjoint of x is
# prod_others(x, bar, v₁ … vₘ) and that of vₐ is prod_others(x, bar, v₁ … vₘ without vₐ): one
# node per argument at every order, no division (exact where entries are 0).
def _others_vjp(bar: Any, out: Any, x: Any, *vs: Any, axis: int | None = None) -> tuple:
    return (_others(x, axis, bar, *vs),) + tuple(
        _others(x, axis, bar, *vs[:a], *vs[a + 1:]) for a in range(len(vs)))


def _others_jvp(tangents: tuple, out: Any, x: Any, *vs: Any, axis: int | None = None) -> Any:
    tx, tv = tangents[0], tangents[1:]
    terms = [] if tx is None else [_others(x, axis, tx, *vs)]
    terms += [_others(x, axis, *vs[:a], t, *vs[a + 1:]) for a, t in enumerate(tv)
              if t is not None]
    if not terms:
        return None
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _others_shape(x: Shape, *vs: Shape, axis: int | None = None) -> Shape:
    normalize_axis("prod_others", x, axis)
    for v in vs:
        if tuple(v) != tuple(x):
            raise ShapeError(f"prod_others: the directions have the shape {tuple(v)}, "
                             f"not the argument's {tuple(x)}")
    return tuple(x)


def _others_template(x: str, *vs: str, shapes: tuple[Shape, ...],
                     axis: int | None = None) -> str:
    rank = len(shapes[0])
    axes = tuple(range(-rank, 0)) if axis is None else (axis - rank,)
    return f"_sp.prod_others({', '.join((x, repr(axes)) + vs)})"


def _sympy_others(x: Any, *vs: Any, axis: int | None = None) -> Any:
    import sympy

    # one entry: the product of the others is 1, and its derivatives 0
    return sympy.Integer(0 if vs else 1)


def _safe(out: Any) -> Any:
    return call("where", call("equal", out, 0.0), 1.0, out)


def _norm_vjp(bar: Any, out: Any, x: Any, axis: int | None = None) -> tuple:
    return (_expand(bar / _safe(out), x, axis) * x,)


def _norm_jvp(tangents: tuple, out: Any, x: Any, axis: int | None = None) -> Any:
    (t,) = tangents
    return None if t is None else _reduced("sum", t * x, axis) / _safe(out)


def _logsumexp_vjp(bar: Any, out: Any, x: Any, axis: int | None = None) -> tuple:
    # logsumexp′ = softmax = exp(x - out), reusing the node.
    return (_expand(bar, x, axis) * call("exp", x - _expand(out, x, axis)),)


def _logsumexp_jvp(tangents: tuple, out: Any, x: Any, axis: int | None = None) -> Any:
    (t,) = tangents
    if t is None:
        return None
    return _reduced("sum", t * call("exp", x - _expand(out, x, axis)), axis)


def _softmax_vjp(bar: Any, out: Any, x: Any, axis: int | None = None) -> tuple:
    # y = softmax(x): x̄ = y ⊙ (ȳ - Σ ȳ ⊙ y).
    return (out * (bar - _expand(_reduced("sum", bar * out, axis), x, axis)),)


def _softmax_jvp(tangents: tuple, out: Any, x: Any, axis: int | None = None) -> Any:
    (t,) = tangents
    if t is None:
        return None
    return out * (t - _expand(_reduced("sum", t * out, axis), x, axis))


def _log_softmax_vjp(bar: Any, out: Any, x: Any, axis: int | None = None) -> tuple:
    # y = log_softmax(x): x̄ = ȳ - softmax(x) Σ ȳ, softmax = exp(y).
    return (bar - call("exp", out) * _expand(_reduced("sum", bar, axis), x, axis),)


def _log_softmax_jvp(tangents: tuple, out: Any, x: Any, axis: int | None = None) -> Any:
    (t,) = tangents
    if t is None:
        return None
    return t - _expand(_reduced("sum", t * call("exp", out), axis), x, axis)


def _sympy_scalar(build: Callable[..., Any]) -> Callable[..., Any]:
    # The sympy form of a reduction of one number (to_sympy takes scalar circuits only).
    def form(x: Any, axis: int | None = None) -> Any:
        import sympy

        return build(sympy, x)

    return form


_AXIS = {"params": ("axis",), "cases": (((2, 3),),)}

RECORDS: list[Primitive] = [
    Primitive("max", 1, _reduce_template("max"), "max", numpy=("max", "amax"),
              vjp=_chooser_vjp, jvp=_chooser_jvp, shape=_reduce_shape("max"),
              sympy=_sympy_scalar(lambda sp, x: x), **_AXIS,
              sparsity="reduction", scalar_identity=True, fold="maximum",
              scalar=expand.reduction),
    Primitive("min", 1, _reduce_template("min"), "min", numpy=("min", "amin"),
              vjp=_chooser_vjp, jvp=_chooser_jvp, shape=_reduce_shape("min"),
              sympy=_sympy_scalar(lambda sp, x: x), **_AXIS,
              sparsity="reduction", scalar_identity=True, fold="minimum",
              scalar=expand.reduction),
    Primitive("prod", 1, _reduce_template("prod"), "Π", numpy=("prod",),
              vjp=_prod_vjp, jvp=_prod_jvp, shape=_reduce_shape("prod"),
              sympy=_sympy_scalar(lambda sp, x: x), **_AXIS,
              sparsity="reduction", scalar_identity=True, fold="mul",
              scalar=expand.reduction),
    # The products of the other entries: the derivative of prod (made by the adjoint pass);
    # with directions v₁ … vₘ (more arguments), its derivatives (made by its own rules).
    Primitive("prod_others", 1, _others_template, "Π≠", variadic=True,
              vjp=_others_vjp, jvp=_others_jvp, shape=_others_shape,
              sympy=_sympy_others, internal=True, **_AXIS,
              sparsity="normalization",
              scalar=expand.prod_others, fold="mul"),
    Primitive("norm", 1, _special_template("norm"), "‖x‖", vjp=_norm_vjp, jvp=_norm_jvp,
              shape=_reduce_shape("norm"), sympy=_sympy_scalar(lambda sp, x: sp.Abs(x)),
              **_AXIS,
              sparsity="reduction", fold="hypot",
              scalar=expand.norm),
    Primitive("logsumexp", 1, _special_template("logsumexp"), "logΣexp",
              vjp=_logsumexp_vjp, jvp=_logsumexp_jvp, shape=_reduce_shape("logsumexp"),
              sympy=_sympy_scalar(lambda sp, x: x), **_AXIS,
              sparsity="reduction", scalar_identity=True, fold="logaddexp",
              scalar=expand.reduction),
    Primitive("softmax", 1, _special_template("softmax"), "softmax",
              vjp=_softmax_vjp, jvp=_softmax_jvp, shape=_same_shape("softmax"),
              sympy=_sympy_scalar(lambda sp, x: sp.Integer(1)), **_AXIS,
              sparsity="normalization",
              scalar=expand.softmax, fold="logaddexp"),
    Primitive("log_softmax", 1, _special_template("log_softmax"), "log softmax",
              vjp=_log_softmax_vjp, jvp=_log_softmax_jvp, shape=_same_shape("log_softmax"),
              sympy=_sympy_scalar(lambda sp, x: sp.Integer(0)), **_AXIS,
              sparsity="normalization",
              scalar=expand.softmax, fold="logaddexp"),
]
