"""The record every primitive is (:class:`Primitive`), and the helpers rules are written with.

The contract of the record's fields is the docstring of :mod:`circuitgrad.primitives`.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import ShapeError
from . import runtime, special
from .signs import scaled  # noqa: F401  (the rules build with it; its home is signs)

Shape = tuple[int, ...]

def _astype(x: Any, dtype: Any) -> Any:
    return x.astype(dtype)


# NumPy as the generated code calls it: the numpy module's own functions, but for ``astype``,
# the method (np.astype checks its argument in Python: 2.5 times the method's cost on a NumPy
# scalar, and a mask is a frequent node of gradients: relu′, |x|′).
NUMPY = types.ModuleType("numpy", "NumPy's functions, with the method as astype.")
NUMPY.__dict__.update({k: v for k, v in vars(np).items() if not k.startswith("__")})
NUMPY.astype = _astype  # type: ignore[attr-defined]

NAMESPACE: dict[str, Any] = {"xp": NUMPY, "_sp": special, "_cg": runtime}
"""The globals every template may use, bound to NumPy: the array namespace as ``xp`` (NumPy's
functions; templates call only functions of the array API standard on it), the functions the
standard lacks as ``_sp`` (:mod:`~circuitgrad.primitives.special`), the helpers of
:mod:`~circuitgrad.primitives.runtime` (joining points with their batch axes, the adjoints of
indexing) as ``_cg``. The generated code, the constant folding and the interpreter all evaluate
in it; :func:`circuitgrad.primitives.arrays.namespace` binds the same three names for another
array library (CuPy, torch, JAX, Dask ...)."""


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
    # not callable by bare name in a program: made by passes (sum_to), or reached through
    # NumPy's own spellings (x[1:], concatenate([a, b])) that carry the params
    internal: bool = False
    params: tuple[str, ...] = field(default=())  # the names of the node's params, if any
    numpy: tuple[str, ...] = field(default=())  # NumPy's names for it (ufuncs, functions)
    # Argument shapes that exercise every case of the rules without broadcasting: what the
    # rule-size measurements build (default: scalars).
    cases: tuple[tuple[Shape, ...], ...] = field(default=())
    variadic: bool = False  # takes ``arity`` or more arguments (concatenate, stack ...)
    # Params for the rule-size measurements, for ops whose params have no default.
    example: dict[str, Any] = field(default_factory=dict)
    label_of: Callable[..., str] | None = None  # the label from the params (x[1:] shows [1:])
    # Optional: the node as a Python callable made without compiling its template (for ops
    # whose params differ from node to node, such as indices), same semantics as the template.
    function: Callable[..., Callable[..., Any]] | None = None
    # Optional: the template's form that may overwrite its first argument (a write x[i] = v
    # into x itself, where the template copies x first). The NumPy lowering uses it where that
    # argument is an array the generated code made with this same op, read by nothing else,
    # so a run of writes into one array does not copy it at every write (as NumPy would not).
    in_place: Callable[..., str] | None = None
    # The C expression of one scalar node over the argument expressions ``{0}``, ``{1}``: what
    # the tape evaluator's opcode switch and ``to_c`` are generated from (libm and the
    # helpers of circuitgrad/lower/cforms.py). None: no C form (tensor ops are scalarized
    # first; an op left without one is refused by name).
    c: str | None = None
    # Why an elementwise op has no ``c`` (a stated refusal, what to_tape and to_c say): SciPy's
    # special functions that libm lacks or computes differently (gammaln, digamma, erfinv).
    c_refusal: str | None = None
    # A callable template that also takes ``batched``: which arguments vary from point to
    # point (a constant does not), for an op whose NumPy form depends on it (pow).
    template_batched: bool = False
    # Optional: the contributions ``bar · ∂out/∂argᵢ`` as nodes of the fused primitives of
    # fused.py (``tanh_vjp(bar, y)``: one node for square, sub and mul), bit for bit what the
    # unfused rule (``vjp``, else ``bar * partial``) computes: what grad builds by default.
    fused: Callable[..., tuple] | None = None
    # The scalar operations one node performs: 1, but for a fused node, which counts those it
    # fuses (tanh_vjp: 3), so that a size in operations can be reported beside the nodes.
    operations: int = 1
    # -- the back half: what the passes and the lowerings other than NumPy's read ------------
    # to_c's vectors (lower/cforms.py). ``libmvec``: the largest distance from to_numpy, in
    # ulps, of glibc's vector function of the same name (``_ZGVdN4v_sin``, ``_ZGVdN4vv_pow``),
    # measured by scripts/libmvec_ulps.py against NumPy's kernels with and without AVX-512
    # (the larger): one figure where its 2-, 4- and 8-lane variants (``_ZGVbN2``, ``_ZGVdN4``,
    # ``_ZGVeN8``) measured the same, else a dict by lanes ({8: 2, 4: 3, 2: 3}); None (or
    # None for a width): libmvec has none, it was not measured, or its special values or
    # exact cases (log10(1e7) = 7) differ from to_numpy's, so
    # the node runs its ``c`` form lane by lane. Used where ``c`` is that libm call (or where
    # ``c_vector`` calls it: ``CG_MVEC(vv_pow)`` names the variant of the width). ``c_vector``:
    # a vector form over ``cg_v`` vectors ``a0, a1 ...``
    # written for this ``c`` (the exceptions: helpers, comparisons, circuitgrad's own vector
    # math), with ``c_vector_ulps`` its measured distance from to_numpy (None: the same bits).
    libmvec: int | dict[int, int] | None = None
    c_vector: str | None = None
    c_vector_ulps: int | None = None
    # ``c_sincos``: for a node whose value is made of the sine or cosine of one operand, that
    # operand and the value's form over ``a0, a1 ...`` and ``S``, ``C`` (the operand's sine and
    # cosine), the same bits as ``c`` and ``c_vector`` with ``S`` for ``sin(a1)``: sin_vjp's
    # (1, "a0 * C"). ``to_c`` computes the sine and cosine of such an operand once, with one
    # range reduction (``cgv_sincos``), for every node that reads them (sin(x), the gradient's
    # cos_vjp(bar, x) = bar · sin(x) ...), in whichever part of the source they are.
    c_sincos: tuple[int, str] | None = None
    # The Jacobian sparsity rule (transforms/sparsity.py), by kind: "reduction",
    # "normalization", "cumsum", "indexing", "joining", "sum_to", "scatter_add", "put_add",
    # "outer", "matmul", "dense" (every entry on every entry, said on purpose). None: the
    # elementwise rule where ``shape`` is None, else refused by the tests.
    sparsity: str | None = None
    # The scalar expansion (transforms/scalarize.py): ``scalar(b, prim, args, params, shape)``
    # over object grids of node ids of Builder ``b`` (primitives/expand.py). None: elementwise
    # (one node per entry, with NumPy broadcasting). ``fold``: the binary op a reduction is a
    # left fold of (sum: add, norm: hypot).
    scalar: Callable[..., Any] | None = None
    fold: str | None = None
    # The builder's identities: a reduction of a scalar is the scalar itself
    # (``scalar_identity``); ``unchanged(of, **params)``: whether a shape op with these
    # params gives back its argument, of shape ``of`` (x[:, :], reshape to its own shape).
    scalar_identity: bool = False
    unchanged: Callable[..., bool] | None = None
    # The nodes the size bound K (transforms/bounds.py) counts one node of this op as: 1, but
    # for a linear-algebra node, the matrix operations it performs (solve: an LU factorization
    # and two triangular solves, 3; primitives/linalg.py).
    counts_as: int = 1

    def display(self, params: Mapping[str, Any] | None,
                shapes: Sequence[Shape] | None = None) -> str:
        """The label a diagram shows for a node with these params and argument shapes."""
        if self.label_of is None or not params:
            return self.label
        return self.label_of(shapes=None if shapes is None else tuple(shapes), **params)

    def code(self, args: Sequence[str], params: Mapping[str, Any], shapes: Sequence[Shape],
             batched: Sequence[bool] | None = None) -> str:
        """The NumPy expression of one node whose arguments are named ``args`` and have the
        point shapes ``shapes``; ``batched[k]`` says whether argument ``k`` may carry batch
        axes (default: all may; a constant never does).

            >>> from circuitgrad.primitives import PRIMITIVES
            >>> PRIMITIVES["add"].code(["b", "W"], {}, [(3,), (2, 3)])
            'b[..., None, :] + W'
            >>> PRIMITIVES["matmul"].code(["W", "x"], {}, [(2, 3), (3,)])
            '_sp.matvec(W, x)'
        """
        if self.shape is None and len(args) > 1:
            # Elementwise: align the point axes, so that batch axes in front broadcast.
            rank = max(len(s) for s in shapes)
            args = [align(a, len(s), rank) if len(s) < rank and (batched is None or batched[k])
                    else a for k, (a, s) in enumerate(zip(args, shapes))]
        if callable(self.template):
            if self.template_batched:
                params = {**params, "batched": tuple(batched or (True,) * len(args))}
            return self.template(*args, shapes=tuple(map(tuple, shapes)), **params)
        return self.template.format(*args, **{k: repr(v) for k, v in params.items()})


def align(arg: str, rank: int, to: int) -> str:
    """``arg``, of point rank ``rank``, with new point axes so that it has rank ``to``: the new
    axes go between its batch axes and its point axes (NumPy would put them in front).

        >>> align("b", 1, 2), align("s", 0, 2)
        ('b[..., None, :]', 's[..., None, None]')
    """
    return f"{arg}[..., {', '.join(['None'] * (to - rank) + [':'] * rank)}]"


def axes_text(axes: Sequence[int]) -> str:
    """An ``axis=`` argument: one axis as an integer, several as a tuple."""
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


def normalize_axis(op: str, shape: Shape, axis: int | None) -> int | None:
    if axis is None:
        return None
    if not -len(shape) <= axis < len(shape):
        raise ShapeError(f"{op}: axis {axis} is out of range for shape {tuple(shape)}")
    return axis % len(shape)




def sum_optional(a: Any, b: Any) -> Any:
    """``a + b`` where either may be None (no contribution)."""
    if a is None:
        return b
    return a if b is None else a + b


class Scatter:
    """A contribution of a ``vjp`` rule that adds ``bar`` into the part ``index`` of its
    argument (the adjoint of a read ``x[index]``). The adjoint pass gathers every such
    contribution to one node into a single ``scatter_add``: one accumulator, not a dense
    array of zeros per read."""

    __slots__ = ("bar", "index")

    def __init__(self, bar: Any, index: tuple):
        self.bar, self.index = bar, index
