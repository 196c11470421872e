"""The sympy front-end and lowering: ``from_sympy`` and ``to_sympy``, a round trip.

Mapping (both ways): ``+ - * / **``, sin, cos, tan, tanh, sinh, cosh, their inverses (asin,
atan2 ...), exp, log, sqrt, erf, erfc, floor, ``ceiling``, ``Abs`` and ``sign`` are sympy's
own; ``maximum``/``minimum`` are ``Max``/``Min`` (any number of arguments, folded), and
``relu(x)`` is ``Max(0, x)``; ``sigmoid(x)`` is ``1/(1 + exp(-x))`` (recognized on the way
back, so the stable primitive is kept); ``step(x)`` is ``Heaviside(x, 1)``, and
``Heaviside(x, h)`` with any other value at 0 comes in as a ``where``; ``square(x)`` is
``x**2``. A mask is ``Piecewise((1, a < b), (0, True))`` and ``where(c, a, b)`` is
``Piecewise((a, c), (b, True))``; a ``Piecewise`` of any number of pieces comes in as nested
``where`` (nan where no condition holds, as sympy leaves it undefined). Relations (``<``,
``Eq`` ...) and ``And``/``Or``/``Not`` are masks. Numbers such as ``pi``, ``E`` and
``Rational(1, 3)`` are constants (the nearest float64).

``to_sympy`` gives back the user's own symbols for a circuit made by ``from_sympy`` (a round
trip returns the user's expression), and plain ``Symbol(name)`` otherwise, or real symbols
with ``real=True`` (then ``diff(Abs(x), x)`` is ``sign(x)``). Tensor circuits have no sympy
form (scalarize them first); ``round`` (halves to even) has none either.

    >>> import sympy, circuitgrad as cg
    >>> x, y = sympy.symbols("x y", positive=True)
    >>> c = cg.from_sympy(sympy.sin(x) * y)
    >>> c.inputs, cg.to_sympy(c), sympy.diff(cg.to_sympy(c), x)
    (('x', 'y'), y*sin(x), y*cos(x))
"""

from __future__ import annotations

import math
import weakref
from typing import Any, Sequence

from ..circuit import Circuit, as_circuit
from ..builder import Builder
from ..errors import CircuitError
from ..primitives import PRIMITIVES

class _LazySympy:
    """sympy, imported on first use: it takes a quarter of a second, and most uses of
    circuitgrad (the command line above all) never need it."""

    def __getattr__(self, name: str) -> Any:
        import sympy as module

        globals()["sympy"] = module
        return getattr(module, name)


sympy: Any = _LazySympy()

_BY_SYMPY_NAME = {p.sympy: p.name for p in PRIMITIVES.values() if isinstance(p.sympy, str)}
# The user's symbols of each circuit made by from_sympy, for to_sympy to give them back.
_SYMBOLS: "weakref.WeakKeyDictionary[Circuit, dict[str, Any]]" = weakref.WeakKeyDictionary()
_RELATIONS = {"StrictLessThan": "less", "LessThan": "less_equal", "StrictGreaterThan": "greater",
              "GreaterThan": "greater_equal", "Equality": "equal", "Unequality": "not_equal"}
_LOGIC = {"And": "logical_and", "Or": "logical_or"}


def from_sympy(expr: Any, inputs: Sequence[str] | None = None) -> Circuit:
    """Compile a sympy expression (or a tuple, list or dict of them) into a circuit.

    Args:
        expr: a sympy expression; a tuple/list gives outputs ``f0, f1 ...``, a dict names them.
        inputs: input names in order (default: the free symbols, sorted by name).

    Raises:
        CircuitError: a function with no primitive, a complex number, an unknown symbol.

    >>> import sympy
    >>> x = sympy.Symbol("x")
    >>> from_sympy({"s": 1 / (1 + sympy.exp(-x))}).op(1)  # recognized: the stable sigmoid
    'sigmoid'
    """
    if isinstance(expr, dict):
        items = [(str(k), sympy.sympify(v)) for k, v in expr.items()]
    elif isinstance(expr, (tuple, list)):
        items = [(f"f{k}", sympy.sympify(v)) for k, v in enumerate(expr)]
    else:
        items = [("f", sympy.sympify(expr))]
    free = sorted({str(s) for _, e in items for s in e.free_symbols})
    order = list(inputs) if inputs is not None else free
    unknown = sorted(set(free) - set(order))
    if unknown:
        raise CircuitError(f"from_sympy: symbols {unknown} are not among the inputs {order}")
    b = Builder()
    for name in order:
        b.input(name)
    memo: dict[Any, int] = {}
    outputs = [(name, _build(b, e, memo)) for name, e in items]
    c = b.finish(outputs, inputs=order)
    _SYMBOLS[c] = {str(s): s for _, e in items for s in e.free_symbols}
    return c


def _sigmoid_argument(e: Any) -> Any | None:
    """``x`` if ``e`` is ``1/(1 + exp(-x))``, else None."""
    if not (e.is_Pow and e.exp == -1 and e.base.is_Add and len(e.base.args) == 2):
        return None
    one, other = sorted(e.base.args, key=lambda a: 0 if a == 1 else 1)
    if one != 1 or not isinstance(other, sympy.exp):
        return None
    return -other.args[0]


def _build(b: Builder, root: Any, memo: dict[Any, int]) -> int:
    # Iterative post-order walk; each task is (expr, children-done?).
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        e, ready = stack.pop()
        if e in memo:
            continue
        if not ready:
            stack.append((e, True))
            stack.extend((c, False) for c in reversed(_children(e)) if c not in memo)
            continue
        memo[e] = _node(b, e, [memo[c] for c in _children(e)])
    return memo[root]


def _children(e: Any) -> list[Any]:
    if e.is_Atom or e.is_number:
        return []
    if isinstance(e, sympy.Piecewise):
        # (expr, cond) pairs, flattened; a condition True needs no node.
        return [part for pair in e.args for part in (pair.expr, pair.cond)
                if part is not sympy.true]
    if isinstance(e, sympy.Heaviside):
        return [e.args[0]]
    if isinstance(e, sympy.sinc):
        # sympy's sinc is sin(t)/t, NumPy's (circuitgrad's) sin(πx)/(πx): x = t/π, and
        # sinc(π·x), to_sympy's form, comes back as sinc(x) itself.
        return [e.args[0] / sympy.pi]
    s = _sigmoid_argument(e)
    if s is not None:
        return [s]
    if e.is_Pow:
        return [e.base] if e.exp.is_Number else [e.base, e.exp]
    if isinstance(e, sympy.Max) and len(e.args) == 2 and 0 in e.args:
        return [a for a in e.args if a != 0]  # relu
    if e.is_Mul:
        # Factors x**-1 are divisors: build x, then divide by it.
        return [f.base if _is_inverse(f) else f for f in e.args]
    return list(e.args)


def _is_inverse(e: Any) -> bool:
    return bool(e.is_Pow and e.exp == -1)


def _node(b: Builder, e: Any, args: list[int]) -> int:
    if e.is_Symbol:
        if str(e) not in b.inputs:
            raise CircuitError(f"from_sympy: symbol {e} is not an input")
        return b.inputs[str(e)]
    if e is sympy.zoo:
        return b.const_id(math.nan)  # complex infinity (1/0 in sympy) has no real value
    if e.is_number:
        if not e.is_real:
            raise CircuitError(f"from_sympy: {e} is not a real number")
        return b.const_id(float(e))
    if _sigmoid_argument(e) is not None:
        return b.apply_id("sigmoid", (args[0],))
    if e.is_Add:
        return _fold(b, "add", args)
    if e.is_Mul:
        numerator, denominator = [], []
        for factor, node in zip(e.args, args):
            (denominator if _is_inverse(factor) else numerator).append(node)
        top = _fold(b, "mul", numerator) if numerator else b.const_id(1.0)
        return b.apply_id("div", (top, _fold(b, "mul", denominator))) if denominator else top
    if e.is_Pow:
        if not e.exp.is_Number:
            return b.apply_id("pow", tuple(args))
        if e.exp == sympy.Rational(1, 2):
            return b.apply_id("sqrt", (args[0],))
        if e.exp == 2:
            return b.apply_id("square", (args[0],))
        if e.exp == -1:
            return b.apply_id("div", (b.const_id(1.0), args[0]))
        return b.apply_id("pow", (args[0], b.const_id(float(e.exp))))
    if isinstance(e, sympy.Max) and len(e.args) == 2 and 0 in e.args:
        return b.apply_id("relu", tuple(args))
    if isinstance(e, (sympy.Max, sympy.Min)):
        return _fold(b, "maximum" if isinstance(e, sympy.Max) else "minimum", args)
    if isinstance(e, sympy.Heaviside):
        return _heaviside(b, e, args[0])
    if isinstance(e, sympy.sinc):
        return b.apply_id("sinc", (args[0],))
    if isinstance(e, sympy.Piecewise):
        return _piecewise(b, e, args)
    name = _RELATIONS.get(type(e).__name__) or _LOGIC.get(type(e).__name__)
    if name is not None:
        return _fold(b, name, args)
    if isinstance(e, sympy.Not):
        return b.apply_id("logical_not", tuple(args))
    if isinstance(e, sympy.ITE):  # ITE(a, b, c): the mask b where a holds, else c
        return b.apply_id("where", tuple(args))
    name = _BY_SYMPY_NAME.get(type(e).__name__)
    if name is not None and len(args) == PRIMITIVES[name].arity:
        return b.apply_id(name, tuple(args))
    raise CircuitError(f"from_sympy: {type(e).__name__} (in {e}) has no circuitgrad primitive")


def _heaviside(b: Builder, e: Any, x: int) -> int:
    # Heaviside(x, h): 1 for x > 0, h at 0 (sympy's default h is 1/2), 0 for x < 0.
    h = e.args[1] if len(e.args) > 1 else sympy.Rational(1, 2)
    if not h.is_number or not h.is_real:
        raise CircuitError(f"from_sympy: {e}: the value at 0 must be a real number")
    if h == 1:
        return b.apply_id("step", (x,))
    zero = b.const_id(0.0)
    return b.apply_id("where", (b.apply_id("equal", (x, zero)), b.const_id(float(h)),
                                b.apply_id("greater", (x, zero))))


def _piecewise(b: Builder, e: Any, args: list[int]) -> int:
    # Nested where, from the last piece back: nan where no condition holds.
    nodes = iter(args)
    pieces = [(next(nodes), None if pair.cond is sympy.true else next(nodes)) for pair in e.args]
    result = b.const_id(math.nan)
    for value, cond in reversed(pieces):
        result = value if cond is None else b.apply_id("where", (cond, value, result))
    return result


def _fold(b: Builder, op: str, nodes: list[int]) -> int:
    result = nodes[0]
    for n in nodes[1:]:
        result = b.apply_id(op, (result, n))
    return result


def to_sympy(c: Circuit, real: bool = False) -> Any:
    """The sympy expression of each output: one expression, or a tuple for several outputs.

    Args:
        c: a scalar circuit.
        real: make the inputs real symbols (``Symbol(name, real=True)``). Ignored for a circuit
            made by :func:`from_sympy`, whose inputs are the user's own symbols.

    Raises:
        CircuitError: a tensor circuit, a primitive with no sympy form (``round``), or an
            expression sympy itself cannot build (its Piecewise can recurse without end).

    >>> import circuitgrad as cg, sympy
    >>> to_sympy(cg.parse("u = relu(x)\\nv = x**2", outputs=["u", "v"]))
    (Max(0, x), x**2)
    >>> sympy.diff(to_sympy(cg.parse("x**3")), sympy.Symbol("x"))
    3*x**2
    """
    c = as_circuit(c, "to_sympy")
    if any(c.shape(i) for i in range(len(c))):
        raise CircuitError("to_sympy works on scalar circuits; use scalarize() on a tensor "
                           "circuit first")
    own = _SYMBOLS.get(c, {})
    exprs: list[Any] = []
    for i, op, args, params, _shape in c.records():
        if op == "input":
            exprs.append(own.get(params) or sympy.Symbol(params, **({"real": True} if real
                                                                    else {})))
        elif op == "const":
            exprs.append(_number(params))
        else:
            rule = PRIMITIVES[op].sympy
            if rule is None:
                raise CircuitError(f"to_sympy: {op} has no sympy form")
            fn = getattr(sympy, rule) if isinstance(rule, str) else rule
            try:
                exprs.append(fn(*(exprs[a] for a in args)))
            except RecursionError:
                # sympy's own simplification can recurse without end (nested Piecewise).
                raise CircuitError(f"to_sympy: sympy recursed without end building node {i} "
                                   f"({op}); sympy cannot represent this circuit") from None
    out = tuple(exprs[i] for i in c.output_ids)
    return out[0] if len(out) == 1 else out


def _number(value: float) -> Any:
    if value != value:
        return sympy.nan
    if value in (float("inf"), float("-inf")):
        return sympy.oo if value > 0 else -sympy.oo
    if float(value).is_integer() and abs(value) < 2**53:
        return sympy.Integer(int(value))
    return sympy.Float(value)

