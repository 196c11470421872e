"""THE primitive table: one record per operation, read by every pass and lowering.

A :class:`Primitive` holds everything about one operation:

``name``
    lowercase NumPy word (``add``, ``mul``, ``sin``, ``matmul``) used in the IR and in JSON.
``arity``
    number of arguments (leaves ``input`` and ``const`` have 0); with ``variadic``, the least
    number (the builder, passes and lowerings take any number of arguments).
``template``
    the NumPy code of one node: a format string over the argument names ``{0}``, ``{1}`` and
    the node's params (``{axis}``), or a function of the argument names, ``shapes=`` (their
    point shapes) and the params; ``xp`` is the array namespace (NumPy, or the inputs' array
    library), on which a template calls only functions of the array API standard, and ``_sp``
    the few functions the standard lacks (:mod:`~circuitgrad.primitives.special` for NumPy,
    :data:`~circuitgrad.primitives.arrays.HELPERS` for the others; :data:`NAMESPACE`). Evaluation
    (:func:`evaluate`, used for constant folding) is compiled from the same template, so the
    folded value and the generated code can never disagree.

    Templates follow the batch semantics (docs/semantics.md): a node's shape is the shape of
    *one point*, and its values may carry extra leading batch axes. So a template names
    point axes from the end (``axis=-1``, ``xp.matrix_transpose``, ``_sp.matvec``), never
    from the front, and the lowering aligns the point axes of an elementwise op's operands
    (``b[..., None, :]`` for a vector added to a matrix) before the array library broadcasts
    the batch axes in front.
``label``
    the symbol a diagram shows (+, ×, ÷, σ, Σ, @ ...).
``partials(out, *args, **params)``
    the local partial derivatives ∂out/∂argᵢ (the boxed factors of the notes' chain rule), one
    per argument: ``None`` for "no contribution" (so zeros are never built), a Python number
    (1 and -1 cost no multiplication), or a node built with the circuit's own operators. A
    rule may reuse ``out``, the node itself (exp′ = exp, sigmoid′ = σ(1 − σ)). Reverse mode
    adds ``bar * pᵢ`` into argᵢ's adjoint; forward mode sums ``tangentᵢ * pᵢ``.
``vjp(bar, out, *args, **params)``
    optional: the contributions ``bar · ∂out/∂argᵢ`` built directly, where that takes fewer
    nodes than ``bar * partial`` (division) or where the op is linear in a tensor sense
    (matmul, sum, transpose). Same conventions as ``partials``.
``fused(bar, out, *args, **params)``
    optional: the contributions of ``vjp``/``partials`` as nodes of the internal fused
    primitives (:mod:`~circuitgrad.primitives.fused`: ``tanh_vjp(bar, y)`` is
    ``bar * (1 - y²)`` as one node), bit for bit the same numbers; what
    :func:`~circuitgrad.grad` builds unless ``fused=False``. ``operations`` counts the scalar
    operations of a fused node (the nodes it stands for).
``jvp(tangents, out, *args, **params)``
    optional, for the ops that declare ``vjp`` without ``partials``: the tangent of the output
    from the arguments' tangents (``None`` where an argument has none).
``shape(*shapes, **params)``
    the output shape; raises :class:`~circuitgrad.errors.ShapeError`. Default: NumPy
    broadcasting of the arguments.
``sympy``
    the sympy function's name (used both ways) or a callable building the sympy expression.
``numpy``
    the NumPy ufuncs and functions that are this primitive (``absolute`` for ``abs``): what a
    traced function may call (:func:`~circuitgrad.trace`).

Broadcasting is handled once, generically, by the adjoint pass: a contribution may have any
shape that broadcasts with its argument's; a larger one is summed down with ``sum_to``, a
smaller one (a scalar adjoint of a ``sum``) is left to broadcast where it is used, so no
array of ones is ever built. Rules of non-elementwise ops see ``bar`` with the node's shape.

Conventions at points where f is not differentiable (documented where the rule is declared):
``relu′(z) = 1(z ≥ 0)`` as the notes write it, ``|x|′(0) = 0``, ``step′ = sign′ = 0``, floor,
ceil, round and masks 0 everywhere, ``maximum``/``minimum``/``max``/``min`` split evenly at
ties, ``clip′ = 1`` on the closed interval, ``where`` differentiates the branch taken, norms
have gradient 0 at the origin.
Numerical semantics are IEEE-754 float64 as NumPy computes them: ``log(0) = -inf``,
``log(-1) = nan``, ``sqrt`` and ``/`` give ``inf``/``nan`` where f itself is singular.
All of it, with the stable forms and the conventions, in one place: docs/semantics.md.

    >>> PRIMITIVES["mul"].label, PRIMITIVES["mul"].arity
    ('×', 2)
    >>> float(evaluate("sigmoid", (-1000.0,))), float(evaluate("sigmoid", (1000.0,)))
    (0.0, 1.0)
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from . import (compare, contractions, elementwise, fused, linalg, loops, reductions,
               scipy_special, shape_ops, sorting, tensor)
from .core import (NAMESPACE, Primitive, Scatter, Shape, align, broadcast_shape, call,
                   normalize_axis, sum_optional)

__all__ = ["NAMESPACE", "PRIMITIVES", "FUNCTIONS", "BINARY_OPERATORS", "Primitive", "Scatter",
           "Shape", "align", "broadcast_shape", "call", "compiled", "evaluate", "shape_cases",
           "shape_of",
           "normalize_axis", "sum_optional"]

# Leaves: an input (params: name) and a constant (params: value). They have no template.
_LEAVES: list[Primitive] = [
    Primitive("input", 0, "", "input"),
    Primitive("const", 0, "", "const"),
]

PRIMITIVES: dict[str, Primitive] = {
    p.name: p for p in _LEAVES + elementwise.RECORDS + compare.RECORDS + tensor.RECORDS
    + reductions.RECORDS + shape_ops.RECORDS + sorting.RECORDS + linalg.RECORDS
    + contractions.RECORDS + scipy_special.RECORDS + fused.RECORDS + loops.RECORDS}
"""Every primitive by name."""
loops.TABLE = PRIMITIVES  # (a loop's body is compiled from the table's templates)

class _Functions(Mapping[str, str]):
    """A live view of the table: every primitive a program may call by name, which is every
    operation that is not written as an operator (``+``, ``-x`` ...) and not ``internal``.
    A record added to :data:`PRIMITIVES`, even at run time, is callable at once."""

    def __getitem__(self, name: str) -> str:
        prim = PRIMITIVES.get(name)
        if prim is None or not _callable(prim):
            raise KeyError(name)
        return name

    def __iter__(self) -> Iterator[str]:
        return (name for name, prim in PRIMITIVES.items() if _callable(prim))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _callable(prim: Primitive) -> bool:
    return bool(prim.arity) and not prim.internal and prim.name not in _OPERATOR_PRIMITIVES


FUNCTIONS: Mapping[str, str] = _Functions()
"""The functions a program may call, by the name it calls them: what the parser accepts."""

BINARY_OPERATORS: dict[str, str] = {
    "Add": "add", "Sub": "sub", "Mult": "mul", "Div": "div", "Pow": "pow", "MatMult": "matmul",
}
"""Python's binary operators (``ast`` class names) and the primitive each one is."""

_OPERATOR_PRIMITIVES = frozenset(BINARY_OPERATORS.values()) | {"neg"}


def shape_cases(name: str) -> list[tuple[Shape, ...]]:
    """Argument shapes that exercise every case of primitive ``name`` without broadcasting
    (all of matmul's 1-D/2-D combinations): what rule-size measurements build. They are the
    record's ``cases``; scalars by default.

        >>> shape_cases("mul"), len(shape_cases("matmul"))
        ([((), ())], 4)
    """
    prim = PRIMITIVES[name]
    return list(prim.cases) or [((),) * prim.arity]


def shape_of(name: str, shapes: tuple[Shape, ...], params: dict[str, Any]) -> Shape:
    """The output shape of primitive ``name`` applied to arguments of ``shapes``."""
    prim = PRIMITIVES[name]
    if prim.shape is None:
        return broadcast_shape(name, *shapes)
    return prim.shape(*shapes, **params)


_COMPILED: dict[tuple, Callable[..., Any]] = {}


def compiled(name: str, params: Mapping[str, Any] | None, shapes: Sequence[Shape],
             batched: Sequence[bool] | None = None) -> Callable[..., Any]:
    """Primitive ``name`` on arguments of point shapes ``shapes`` as a NumPy function, compiled
    from the same template as the generated code (so constant folding, the interpreter and
    ``to_numpy`` agree bit for bit). ``batched`` as in :meth:`Primitive.code`.

        >>> compiled("sum", {}, [(3,)])(np.ones((2, 3))).tolist()  # a batch of two points
        [3.0, 3.0]
    """
    params = params or {}
    shapes = tuple(tuple(s) for s in shapes)
    batched = None if batched is None else tuple(batched)
    key = (name, tuple(sorted(params.items(), key=lambda kv: kv[0])), shapes, batched)
    fn = _COMPILED.get(key)
    if fn is None and PRIMITIVES[name].function is not None:
        fn = PRIMITIVES[name].function(shapes=shapes, **params)
        if len(_COMPILED) < 100_000 and name not in loops.LOOPS:  # (a loop's is cheap to make
            # and would hold its body: the runners live in the functions that call them)
            _COMPILED[key] = fn
    if fn is None:
        prim = PRIMITIVES[name]
        names = [f"a{i}" for i in range(len(shapes))]
        source = f"lambda {', '.join(names)}: {prim.code(names, params, shapes, batched)}"
        # The template is circuitgrad's own code, never user text.
        fn = eval(source, dict(NAMESPACE))  # noqa: S307
        _COMPILED[key] = fn
    return fn


def evaluate(name: str, values: tuple, params: Mapping[str, Any] | None = None) -> Any:
    """Evaluate primitive ``name`` at one point: ``values`` are NumPy values of the point
    shapes (no batch axes).

        >>> float(evaluate("add", (1.0, 2.0)))
        3.0
    """
    # NumPy scalars, not Python floats: 1/0 is inf (not ZeroDivisionError), (-8)**0.5 is nan.
    values = tuple(np.float64(v) if isinstance(v, (int, float)) else v for v in values)
    shapes = tuple(np.shape(v) for v in values)
    return compiled(name, params, shapes, (False,) * len(values))(*values)
