"""Tracing at a point: branches on values take the point's branch and record guards.

While :func:`~circuitgrad.trace` runs a function with ``at=`` (and when
:func:`circuitgrad.function` or ``cg.grad`` of a function traces it), the trace knows the
inputs' values at that point: ``bool(v)``, ``int(v)``, ``float(v)`` and ``operator.index(v)``
of a traced value ``v`` evaluate ``v``'s node there (the nodes built so far, once each, by
the same compiled templates as :func:`~circuitgrad.to_numpy`), record a guard
(:mod:`circuitgrad.guards`) and give Python the number. So ``if``, ``while``, ``and``/``or``/
``not``, ``min``/``max`` and ``range(int(n))`` run as Python runs them at that point, and the
circuit is the branch taken there, valid where its guards hold.

    >>> import circuitgrad as cg
    >>> def f(x):
    ...     while x < 10.0:
    ...         x = x * 2.0
    ...     return x
    >>> c = cg.trace(f, at=3.0)
    >>> len(c.meta["guards"].kinds), cg.to_numpy(c)(3.0)
    (3, np.float64(12.0))
"""

from __future__ import annotations

import contextvars
import dis
import os
import sys
from typing import Any, Callable

import numpy as np

from ..builder import Builder
from ..errors import CircuitError
from ..guards import Guards, expected_text
from ..primitives import PRIMITIVES, compiled
from ..value import Value, user_line

_SYMBOLS = {"less": "<", "less_equal": "<=", "greater": ">", "greater_equal": ">=",
            "equal": "==", "not_equal": "!=", "logical_and": "and", "logical_or": "or"}


class Point:
    """A trace at a point: its builder, the inputs' values there, the nodes' values (computed
    on demand, in id order) and the guards recorded so far."""

    def __init__(self, builder: Builder, inputs: dict[int, np.ndarray]) -> None:
        self.builder = builder
        self.inputs = inputs
        self.values: dict[int, Any] = {}
        self.guards: list[tuple[int, str, float, str]] = []  # (node, kind, expected, text)

    def value(self, i: int) -> np.ndarray:
        """The value of node ``i`` at the point: the nodes it depends on computed once each
        (only those: a loop's body is traced into the same builder, and its own inputs have
        no value at the point), by an explicit stack, not recursion."""
        b, values = self.builder, self.values
        with np.errstate(all="ignore"):  # (the trace's values, as NumPy gives them)
            stack = [i]
            while stack:
                j = stack[-1]
                if j in values:
                    stack.pop()
                    continue
                op, args = b.ops[j], b.args[j]
                todo = [a for a in args if a not in values]
                if todo:
                    stack.extend(todo)
                    continue
                stack.pop()
                if op == "input":
                    if j not in self.inputs:
                        raise CircuitError("a branch on a value of an input the point does not "
                                           "give" + user_line())
                    v = self.inputs[j]
                elif op == "const":
                    v = b.params[j]
                else:
                    fn = compiled(op, b.params[j], [b.shapes[a] for a in args],
                                  [b.ops[a] != "const" for a in args])
                    v = fn(*[values[a] for a in args])
                values[j] = v
        return np.asarray(values[i], dtype=np.float64)

    def record(self, node: int, kind: str, expected: float, text: str) -> None:
        entry = (node, kind, float(expected), text)
        if not any(g[:3] == entry[:3] for g in self.guards):
            self.guards.append(entry)

    def finish(self, inputs: list[str]) -> Guards | None:
        """The guards as a :class:`~circuitgrad.guards.Guards` (None when there are none)."""
        if not self.guards:
            return None
        c = self.builder.finish([(f"g{k}", g[0]) for k, g in enumerate(self.guards)],
                                inputs=inputs)
        return Guards(c, tuple(g[1] for g in self.guards), tuple(g[2] for g in self.guards),
                      tuple(g[3] for g in self.guards))


POINT: contextvars.ContextVar[Point | None] = contextvars.ContextVar(
    "circuitgrad_point", default=None)
"""The trace at a point running now (None: no point, branches on values are refused)."""


def point_of(v: Value) -> Point | None:
    """The point ``v``'s trace runs at, if it is one."""
    p = POINT.get()
    return p if p is not None and p.builder is v.builder else None


_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}


def _text(b: Builder, i: int, depth: int = 3) -> str:
    """A short text of node ``i``, a few levels deep (bounded: no recursion on the circuit's
    depth): ``x > 1.0``, ``(x[0] * y) < 10.0``, ``sin(…)``."""
    op, args = b.ops[i], b.args[i]
    if op == "input":
        return b.params[i]
    if op == "const":
        return repr(float(b.params[i])) if not b.shapes[i] else "array"
    if i in b.names:
        return b.names[i]
    if depth == 0:
        return "…"

    def t(j: int) -> str:
        return _text(b, j, depth - 1)

    if op in _SYMBOLS and len(args) == 2:
        return f"{t(args[0])} {_SYMBOLS[op]} {t(args[1])}"
    if op == "logical_not":
        return f"not {t(args[0])}"
    if op in _INFIX and len(args) == 2:
        return f"({t(args[0])} {_INFIX[op]} {t(args[1])})"
    if op == "getitem" and len(args) == 1:
        return t(args[0]) + PRIMITIVES[op].display(b.params[i])
    return f"{op}({', '.join(t(a) for a in args)})"


def _one_entry(v: Value, what: str) -> None:
    if int(np.prod(v.shape)) != 1:
        why = ("the truth value of an array with more than one element is ambiguous; use "
               "np.any(x) or np.all(x), or cg.where" if what == "bool()" else
               "only arrays of one entry can be converted to Python scalars")
        raise CircuitError(f"{what} of a traced value of shape {v.shape}: NumPy refuses it "
                           f"too ({why})" + user_line())


def truth(v: Value) -> bool | None:
    """``bool(v)`` at the point (a guard recorded), or None outside a trace at a point."""
    p = point_of(v)
    if p is None:
        return None
    _one_entry(v, "bool()")
    taken = bool(p.value(v.id).reshape(-1)[0] != 0)
    p.record(v.id, "truth", 1.0 if taken else 0.0,
             f"bool({_text(v.builder, v.id)}) was {taken}{user_line()}")
    return taken


def integer(v: Value, what: str = "int()") -> int | None:
    """``int(v)`` at the point: the value truncated toward zero, guarded by equality of the
    truncated node to it (so the circuit is piecewise constant in ``v``, as int is)."""
    p = point_of(v)
    if p is None:
        return None
    _one_entry(v, what)
    x = float(p.value(v.id).reshape(-1)[0])
    if not np.isfinite(x):
        raise CircuitError(f"{what} of a traced value that is {x} at the trace point: Python "
                           f"refuses it too" + user_line())
    if what == "operator.index()" and x != int(x):
        raise CircuitError(f"a traced value used as an index or count ({what}) is {x} at the "
                           "trace point, not an integer: Python refuses a float index; write "
                           "int(x)" + user_line())
    b = v.builder
    trunc = b.apply("where", v >= 0.0, b.apply("floor", v), b.apply("ceil", v))
    k = int(x)
    p.record(trunc.id, "int", float(k),
             f"{what[:-2]}({_text(b, v.id)}) was {expected_text('int', k)}{user_line()}")
    return k


_MASKS = frozenset(_SYMBOLS) | {"logical_not"}


def number(v: Value) -> float | None:
    """``float(v)`` at the point, guarded by exact equality (the circuit holds the number:
    derivatives through it are refused); of a mask (``float(x >= 0)``, 1.0 or 0.0, which has
    no derivative) a truth guard."""
    p = point_of(v)
    if p is None or _writing_into_an_array():
        return None
    _one_entry(v, "float()")
    x = float(p.value(v.id).reshape(-1)[0])
    if v.builder.ops[v.id] in _MASKS:
        p.record(v.id, "truth", x, f"float({_text(v.builder, v.id)}) was {x}{user_line()}")
        return x
    p.record(v.id, "float", x,
             f"float({_text(v.builder, v.id)}) was {expected_text('float', x)}{user_line()}")
    return x


def _writing_into_an_array() -> bool:
    """NumPy converting a traced value to write it into an array (``out[i] = x``): that is
    refused as before (the trace's error names circuitgrad.numpy.zeros), not a number."""
    frame = sys._getframe(2)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here):
        frame = frame.f_back
    if frame is None:
        return False
    return frame.f_code.co_code[frame.f_lasti] == _STORE_SUBSCR


_STORE_SUBSCR = dis.opmap["STORE_SUBSCR"]


class _Hooks:
    """What :class:`~circuitgrad.value.Value` calls for ``bool``/``int``/``float``/``index``."""

    truth = staticmethod(truth)
    integer = staticmethod(integer)
    number = staticmethod(number)


Value.guards = _Hooks


# -- branches as where (cg.function(fn, where=True)) ----------------------------------------
# A conditional whose sides are pure expressions (no calls but NumPy's, circuitgrad's, math's
# and abs/min/max; no walrus, lambda, yield or await) is rewritten to select(c, lambda: a,
# lambda: b): on a traced one-entry condition with sides of one shape it builds where(c, a, b),
# the value of the side taken at every point; otherwise it is the branch, guarded.

_PURE_ROOTS = frozenset({"np", "numpy", "cg", "circuitgrad", "math"})
_PURE_BUILTINS = frozenset({"abs", "min", "max"})


def _pure(node: Any) -> bool:
    import ast

    for n in ast.walk(node):
        if isinstance(n, (ast.NamedExpr, ast.Lambda, ast.Yield, ast.YieldFrom, ast.Await,
                          ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return False
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Name):
                if f.id not in _PURE_BUILTINS:
                    return False
                continue
            while isinstance(f, ast.Attribute):
                f = f.value
            if not (isinstance(f, ast.Name) and f.id in _PURE_ROOTS):
                return False
    return True


def select(c: Any, a: Callable[[], Any], b: Callable[[], Any]) -> Any:
    """``a() if c else b()``, as ``where(c, a(), b())`` where that is the same value at every
    point: a traced one-entry condition, sides of one shape (numbers are of shape ``()``)."""
    if isinstance(c, Value) and c.builder.ops[c.id] != "const" and \
            int(np.prod(c.shape)) == 1:
        va, vb = a(), b()
        shapes = [v.shape if isinstance(v, Value) else np.shape(v) for v in (va, vb)]
        numeric = all(isinstance(v, (Value, int, float, np.number, np.ndarray)) and
                      not isinstance(v, bool) for v in (va, vb))
        if numeric and shapes[0] == shapes[1] and (
                not isinstance(va, Value) or va.builder is c.builder) and (
                not isinstance(vb, Value) or vb.builder is c.builder):
            cond = c.reshape(()) if c.shape else c
            return c.builder.apply("where", cond, va, vb)
        return va if c else vb
    return a() if c else b()


def with_where(fn: Callable[..., Any]) -> tuple[Callable[..., Any], int]:
    """``fn`` recompiled with its pure conditionals (``a if c else b``, and ``if c: v = a
    else: v = b``) as :func:`select`, and how many were rewritten."""
    import ast
    import inspect
    import textwrap

    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        raise CircuitError(f"function(where=True): the source of "
                           f"{getattr(fn, '__name__', fn)!r} is not available, so its "
                           "branches cannot be rewritten") from None
    tree = ast.parse(source)
    ast.increment_lineno(tree, fn.__code__.co_firstlineno - 1)  # (errors name fn's lines)
    name = getattr(fn, "__name__", "")
    if name == "<lambda>":
        found = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda)]
        if len(found) != 1:
            raise CircuitError("function(where=True): the lambda's line holds "
                               f"{len(found)} lambdas; define the function with def")
        target: Any = ast.Assign(targets=[ast.Name("__cg_fn", ast.Store())], value=found[0])
    else:
        found = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and
                 n.name == name]
        if len(found) != 1:
            raise CircuitError(f"function(where=True): no single definition of {name!r} in "
                               "its source")
        target = found[0]
        target.decorator_list = []
    count = 0

    def branch(c: Any, a: Any, b: Any) -> Any:
        nonlocal count
        count += 1
        return ast.Call(ast.Name("__cg_select", ast.Load()), [
            c, ast.Lambda(_no_args(), a), ast.Lambda(_no_args(), b)], [])

    class Rewrite(ast.NodeTransformer):
        def visit_IfExp(self, node: Any) -> Any:  # noqa: N802 - ast's name
            self.generic_visit(node)
            if all(_pure(n) for n in (node.test, node.body, node.orelse)):
                return branch(node.test, node.body, node.orelse)
            return node

        def visit_If(self, node: Any) -> Any:  # noqa: N802
            self.generic_visit(node)
            one = [s for s in (node.body, node.orelse) if len(s) == 1 and isinstance(
                s[0], ast.Assign) and len(s[0].targets) == 1 and isinstance(
                s[0].targets[0], ast.Name)]
            if len(one) == 2 and one[0][0].targets[0].id == one[1][0].targets[0].id and all(
                    _pure(n) for n in (node.test, one[0][0].value, one[1][0].value)):
                return ast.Assign([ast.Name(one[0][0].targets[0].id, ast.Store())],
                                  branch(node.test, one[0][0].value, one[1][0].value))
            return node

    target = ast.fix_missing_locations(Rewrite().visit(ast.Module([target], [])))
    space = dict(fn.__globals__)
    for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        space[var] = cell.cell_contents
    space["__cg_select"] = select
    exec(compile(target, getattr(fn.__code__, "co_filename", "<where>"), "exec"), space)  # noqa: S102
    new = space["__cg_fn" if name == "<lambda>" else name]
    new.__defaults__, new.__kwdefaults__ = fn.__defaults__, fn.__kwdefaults__
    return new, count


def _no_args() -> Any:
    import ast

    return ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[],
                         kwarg=None, defaults=[])
