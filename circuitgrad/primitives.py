"""THE primitive table: one record per operation, read by every pass and lowering.

A :class:`Primitive` holds everything about one operation:

``name``
    lowercase NumPy word (``add``, ``mul``, ``sin``, ``matmul``) used in the IR and in JSON.
``arity``
    number of arguments (leaves ``input`` and ``const`` have 0).
``template``
    the NumPy code of one node: a format string over the argument names ``{0}``, ``{1}`` and
    the node's params (``{axis}``), or a function of the argument names, ``shapes=`` (their
    point shapes) and the params; ``_np`` is NumPy under a private alias. Evaluation
    (:func:`evaluate`, used for constant folding) is compiled from the same template, so the
    folded value and the generated code can never disagree.

    Templates follow the batch semantics (docs/semantics.md): a node's shape is the shape of
    *one point*, and its values may carry extra leading batch axes. So a template names
    point axes from the end (``axis=-1``, ``x.mT``, ``_np.matvec``), never from the front,
    and the lowering aligns the point axes of an elementwise op's operands (``b[..., None, :]``
    for a vector added to a matrix) before NumPy broadcasts the batch axes in front.
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
``relu′(z) = 1(z ≥ 0)`` as the notes write it, ``|x|′(0) = 0``, ``step′ = sign′ = 0``.
Numerical semantics are IEEE-754 float64 as NumPy computes them: ``log(0) = -inf``,
``log(-1) = nan``, ``sqrt`` and ``/`` give ``inf``/``nan`` where f itself is singular.
All of it, with the stable forms and the conventions, in one place: docs/semantics.md.

    >>> PRIMITIVES["mul"].label, PRIMITIVES["mul"].arity
    ('×', 2)
    >>> float(evaluate("sigmoid", (-1000.0,))), float(evaluate("sigmoid", (1000.0,)))
    (0.0, 1.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from .errors import ShapeError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Primitive:
    """Everything about one operation. See the module docstring for the rule contract."""

    name: str
    arity: int
    template: str | Callable[..., str]
    label: str
    partials: Callable[..., tuple] | None = None
    vjp: Callable[..., tuple] | None = None
    jvp: Callable[..., Any] | None = None
    shape: Callable[..., Shape] | None = None
    sympy: str | Callable[..., Any] | None = None
    commutative: bool = False
    internal: bool = False  # made by passes only (sum_to, broadcast_to): programs can't call it
    params: tuple[str, ...] = field(default=())  # the names of the node's params, if any
    numpy: tuple[str, ...] = field(default=())  # NumPy's names for it (ufuncs, functions)

    def code(self, args: Sequence[str], params: Mapping[str, Any], shapes: Sequence[Shape],
             batched: Sequence[bool] | None = None) -> str:
        """The NumPy expression of one node whose arguments are named ``args`` and have the
        point shapes ``shapes``; ``batched[k]`` says whether argument ``k`` may carry batch
        axes (default: all may; a constant never does).

            >>> PRIMITIVES["add"].code(["b", "W"], {}, [(3,), (2, 3)])
            'b[..., None, :] + W'
            >>> PRIMITIVES["matmul"].code(["W", "x"], {}, [(2, 3), (3,)])
            '_np.matvec(W, x)'
        """
        if self.shape is None and len(args) > 1:
            # Elementwise: align the point axes, so that batch axes in front broadcast.
            rank = max(len(s) for s in shapes)
            args = [align(a, len(s), rank) if len(s) < rank and (batched is None or batched[k])
                    else a for k, (a, s) in enumerate(zip(args, shapes))]
        if callable(self.template):
            return self.template(*args, shapes=tuple(map(tuple, shapes)), **params)
        return self.template.format(*args, **{k: repr(v) for k, v in params.items()})


def align(arg: str, rank: int, to: int) -> str:
    """``arg``, of point rank ``rank``, with new point axes so that it has rank ``to``: the new
    axes go between its batch axes and its point axes (NumPy would put them in front).

        >>> align("b", 1, 2), align("s", 0, 2)
        ('b[..., None, :]', 's[..., None, None]')
    """
    return f"{arg}[..., {', '.join(['None'] * (to - rank) + [':'] * rank)}]"


def _axes(axes: Sequence[int]) -> str:
    return str(axes[0]) if len(axes) == 1 else repr(tuple(axes))


# ---------------------------------------------------------------------------------------------
# Helpers the rules use: build a node with the circuit's own operators.


def call(name: str, *args: Any, **params: Any) -> Any:
    """Apply primitive ``name`` to ``args``; at least one argument must be a circuit node."""
    for a in args:
        builder = getattr(a, "builder", None)
        if builder is not None:
            return builder.apply(name, *args, **params)
    raise TypeError(f"{name}: no circuit node among the arguments")


def broadcast_shape(op: str, *shapes: Shape) -> Shape:
    """NumPy broadcasting of ``shapes``, or a ShapeError naming ``op`` and the shapes."""
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        listed = " and ".join(str(tuple(s)) for s in shapes)
        raise ShapeError(f"{op}: shapes {listed} do not broadcast together") from None


def _normalize_axis(op: str, shape: Shape, axis: int | None) -> int | None:
    if axis is None:
        return None
    if not -len(shape) <= axis < len(shape):
        raise ShapeError(f"{op}: axis {axis} is out of range for shape {tuple(shape)}")
    return axis % len(shape)


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
        axis = _normalize_axis(op, x, axis)
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
            return x if rank == 0 else f"_np.{fn}({x}, axis={_axes(range(-rank, 0))})"
        return f"_np.{fn}({x}, axis={axis - rank})"

    return template


def _sum_to_template(x: str, shapes: tuple[Shape, ...], shape: Shape, ndim: int) -> str:
    # Sum the leading point axes that broadcasting added, and those where the target has
    # length 1; batch axes in front are left alone.
    rank, n = len(shapes[0]), len(shape)
    lead = tuple(range(-rank, -n))
    ones = tuple(k - n for k, m in enumerate(shape) if m == 1)
    if not ones:
        return f"_np.sum({x}, axis={_axes(lead)})"
    summed = f"_np.sum({x}, axis={_axes(lead + ones)}, keepdims=True)"
    return summed if not lead else f"{summed}[..., {', '.join(['0'] * len(lead) + [':'] * n)}]"


def _broadcast_to_template(x: str, shapes: tuple[Shape, ...], shape: Shape,
                           axis: int | None = None) -> str:
    # A read-only view of batch shape + shape; the batch shape is x's shape less its point axes.
    rank, n = len(shapes[0]), len(shape)
    batch = f"_np.shape({x})" if rank == 0 else f"_np.shape({x})[:-{rank}]"
    if axis is not None:
        x = f"_np.expand_dims({x}, {axis - n})"
    elif rank < n:
        x = f"_np.expand_dims({x}, {_axes(range(-n, -rank))})"
    return f"_np.broadcast_to({x}, {batch} + {tuple(shape)!r})"


def _matmul_template(a: str, b: str, shapes: tuple[Shape, ...]) -> str:
    # NumPy's @ takes a 1-D operand as a vector only without batch axes: name the case.
    na, nb = len(shapes[0]), len(shapes[1])
    if na == 2 and nb == 2:
        return f"{a} @ {b}"
    fn = {(2, 1): "matvec", (1, 2): "vecmat", (1, 1): "vecdot"}[na, nb]
    return f"_np.{fn}({a}, {b})"


def _transpose_template(x: str, shapes: tuple[Shape, ...]) -> str:
    return f"{x}.mT" if len(shapes[0]) == 2 else x


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


def _pow_partials(out: Any, a: Any, b: Any) -> tuple:
    c = b.constant
    if c is not None:
        # x**c for a constant c never goes through log(x): x**2 at x = -3 gives -6.
        return (c * a ** (c - 1.0) if c != 2.0 else 2.0 * a), None
    return b * a ** (b - 1.0), out * call("log", a)


def _pow_vjp(bar: Any, out: Any, a: Any, b: Any) -> tuple:
    if b.constant is not None:
        return tuple(None if p is None else bar * p for p in _pow_partials(out, a, b))
    # Non-constant exponent: both contributions share bar·out. At a = 0 this gives nan, as
    # the b-derivative out·log(a) does there anyway.
    t = bar * out
    return t * b / a, t * call("log", a)


def _sympy_sigmoid(x: Any) -> Any:
    import sympy

    return 1 / (1 + sympy.exp(-x))


def _sympy_relu(x: Any) -> Any:
    import sympy

    return sympy.Max(0, x)


def _sympy_step(x: Any) -> Any:
    import sympy

    return sympy.Heaviside(x, 1)


_ELEMENTWISE: list[Primitive] = [
    Primitive("add", 2, "{0} + {1}", "+", numpy=("add",), partials=lambda out, a, b: (1.0, 1.0),
              sympy=lambda a, b: a + b, commutative=True),
    Primitive("sub", 2, "{0} - {1}", "−", numpy=("subtract",), partials=lambda out, a, b: (1.0, -1.0),
              sympy=lambda a, b: a - b),
    Primitive("mul", 2, "{0} * {1}", "×", numpy=("multiply",), partials=lambda out, a, b: (b, a),
              sympy=lambda a, b: a * b, commutative=True),
    Primitive("div", 2, "{0} / {1}", "÷", numpy=("divide",), partials=lambda out, a, b: (1.0 / b, -(out / b)),
              # bar/b is shared by both contributions: 3 nodes instead of 5.
              vjp=lambda bar, out, a, b: ((t := bar / b), -(t * out)),
              sympy=lambda a, b: a / b),
    Primitive("pow", 2, "_np.power({0}, {1})", "^", numpy=("power",), partials=_pow_partials, vjp=_pow_vjp,
              sympy=lambda a, b: a**b),
    Primitive("neg", 1, "-{0}", "−", numpy=("negative",), partials=lambda out, x: (-1.0,), sympy=lambda x: -x),
    Primitive("sin", 1, "_np.sin({0})", "sin", numpy=("sin",), partials=lambda out, x: (call("cos", x),),
              sympy="sin"),
    Primitive("cos", 1, "_np.cos({0})", "cos", numpy=("cos",), partials=lambda out, x: (-call("sin", x),),
              sympy="cos"),
    Primitive("tanh", 1, "_np.tanh({0})", "tanh", numpy=("tanh",),
              partials=lambda out, x: (1.0 - call("square", out),), sympy="tanh"),
    # exp′ = exp: the rule reuses the forward node.
    Primitive("exp", 1, "_np.exp({0})", "exp", numpy=("exp",), partials=lambda out, x: (out,), sympy="exp"),
    # log′(x) = 1/x; log(0) = -inf and log′(0) = inf, as IEEE says.
    Primitive("log", 1, "_np.log({0})", "log", numpy=("log",), partials=lambda out, x: (1.0 / x,),
              vjp=lambda bar, out, x: (bar / x,), sympy="log"),
    Primitive("sqrt", 1, "_np.sqrt({0})", "√", numpy=("sqrt",), partials=lambda out, x: (0.5 / out,),
              vjp=lambda bar, out, x: (0.5 * (bar / out),), sympy="sqrt"),
    Primitive("square", 1, "_np.square({0})", "x²", numpy=("square",), partials=lambda out, x: (2.0 * x,),
              sympy=lambda x: x**2),
    # |x|′ = sign(x), so |x|′(0) = 0 by convention.
    Primitive("abs", 1, "_np.abs({0})", "|x|", numpy=("absolute",), partials=lambda out, x: (call("sign", x),),
              sympy="Abs"),
    # relu′(z) = 1(z ≥ 0), the notes' convention: relu′(0) = 1.
    Primitive("relu", 1, "_np.maximum({0}, 0.0)", "relu",
              partials=lambda out, x: (call("step", x),), sympy=_sympy_relu),
    # Stable for every float: sigmoid(-1000) = 0 and sigmoid(1000) = 1 with no overflow.
    # sigmoid′ = σ(1 − σ) reuses the forward node.
    Primitive("sigmoid", 1, "_np.exp(-_np.logaddexp(0.0, -{0}))", "σ",
              partials=lambda out, x: (out * (1.0 - out),), sympy=_sympy_sigmoid),
    # step(z) = 1(z ≥ 0), relu's derivative; its own derivative is 0 (None: never built).
    # A comparison, not np.heaviside (10x slower); step(nan) = 0.
    Primitive("step", 1, "({0} >= 0.0).astype(_np.float64)", "1(≥0)",
              partials=lambda out, x: (None,),
              sympy=_sympy_step),
    Primitive("sign", 1, "_np.sign({0})", "sign", numpy=("sign",), partials=lambda out, x: (None,),
              sympy="sign"),
]

# The sympy form of a tensor op is that of a scalar operand (sum(x) = x): to_sympy only takes
# scalar circuits; matmul and outer have none, as they never take scalars.
_TENSOR: list[Primitive] = [
    Primitive("matmul", 2, _matmul_template, "@", numpy=("matmul",), vjp=_matmul_vjp, jvp=_matmul_jvp,
              shape=_matmul_shape),
    Primitive("outer", 2, _outer_template, "⊗", numpy=("outer",),
              vjp=lambda bar, out, a, b: (bar @ b, a @ bar),
              jvp=lambda t, out, a, b: _sum_optional(
                  None if t[0] is None else call("outer", t[0], b),
                  None if t[1] is None else call("outer", a, t[1])),
              shape=lambda a, b: _outer_shape(a, b)),
    Primitive("transpose", 1, _transpose_template, "ᵀ", numpy=("transpose",), vjp=lambda bar, out, x: (bar.T,),
              jvp=_linear_jvp("transpose"), shape=lambda x: tuple(reversed(x)),
              sympy=lambda x: x),
    Primitive("sum", 1, _reduce_template("sum"), "Σ", numpy=("sum",), vjp=_reduce_vjp(mean=False),
              jvp=_linear_jvp("sum"), shape=_reduce_shape("sum"),
              sympy=lambda x, axis=None: x, params=("axis",)),
    Primitive("mean", 1, _reduce_template("mean"), "mean", numpy=("mean",), vjp=_reduce_vjp(mean=True),
              jvp=_linear_jvp("mean"), shape=_reduce_shape("mean"),
              sympy=lambda x, axis=None: x, params=("axis",)),
    # The adjoint of broadcasting: sum a broadcast array back down to an operand's shape.
    Primitive("sum_to", 1, _sum_to_template, "Σ→", vjp=_sum_to_vjp,
              jvp=_linear_jvp("sum_to"), shape=lambda x, shape, ndim: _sum_to_shape(x, shape),
              sympy=lambda x, **p: x, params=("shape", "ndim"), internal=True),
    # A read-only view, never a copy: the adjoint of sum and mean.
    Primitive("broadcast_to", 1, _broadcast_to_template, "⇲", vjp=_broadcast_to_vjp,
              jvp=_linear_jvp("broadcast_to"), shape=_broadcast_to_shape,
              sympy=lambda x, **p: x, params=("shape", "axis"), internal=True),
]


def _outer_shape(a: Shape, b: Shape) -> Shape:
    if len(a) != 1 or len(b) != 1:
        raise ShapeError(f"outer: operands must be vectors, got shapes {a} and {b}")
    return (a[0], b[0])


def _sum_optional(a: Any, b: Any) -> Any:
    if a is None:
        return b
    return a if b is None else a + b


# Leaves: an input (params: name) and a constant (params: value). They have no template.
_LEAVES: list[Primitive] = [
    Primitive("input", 0, "", "input"),
    Primitive("const", 0, "", "const"),
]

PRIMITIVES: dict[str, Primitive] = {p.name: p for p in _LEAVES + _ELEMENTWISE + _TENSOR}
"""Every primitive by name."""

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
    (all of matmul's 1-D/2-D combinations): what rule-size measurements build.

        >>> shape_cases("mul"), len(shape_cases("matmul"))
        ([((), ())], 4)
    """
    if name == "matmul":
        return [((2, 3), (3, 4)), ((2, 3), (3,)), ((3,), (3, 4)), ((3,), (3,))]
    if name == "outer":
        return [((2,), (3,))]
    if name in ("sum", "mean", "transpose"):
        return [((2, 3),)]
    if name == "sum_to":
        return [((2, 3),)]
    return [((),) * PRIMITIVES[name].arity]


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
    if fn is None:
        prim = PRIMITIVES[name]
        names = [f"a{i}" for i in range(prim.arity)]
        source = f"lambda {', '.join(names)}: {prim.code(names, params, shapes, batched)}"
        # The template is circuitgrad's own code, never user text.
        fn = eval(source, {"_np": np})  # noqa: S307
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
