"""Comparisons and logic as masks, and ``where``.

Every value in circuitgrad is a float64, so a comparison is a *mask*: 1.0 where it holds, 0.0
where it does not (also where an operand is NaN, except for ``not_equal``, as in IEEE). Masks
are ordinary values: they multiply, add, and select in ``where``. The logical operations read
any nonzero value as true (NumPy's truth of a float). A mask is piecewise constant, so its
derivative is 0 everywhere, also where it jumps: the rules return ``None`` and no node is
built.

``where(cond, a, b)`` is ``a`` where ``cond`` is nonzero, else ``b``; its derivative goes to
the branch taken (``where(cond, bar, 0)`` and ``where(cond, 0, bar)``), never to ``cond``.
The branch not taken is still computed: ``where(x > 0, log(x), 0)`` has the gradient 0 for
``x < 0``, but ``0 · log′(0) = nan`` at ``x = 0`` (as in JAX and PyTorch; put the guard inside
too, ``log(where(x > 0, x, 1))``).
"""

from __future__ import annotations

from typing import Any

from .core import Primitive, call


def _mask(symbol: str) -> str:
    return f"xp.astype({{0}} {symbol} {{1}}, xp.float64)"


def _sympy_mask(relation: str) -> Any:
    def form(a: Any, b: Any) -> Any:
        import sympy

        return sympy.Piecewise((1, getattr(sympy, relation)(a, b)), (0, True))

    form.__name__ = f"_sympy_{relation}"
    return form


def truth(e: Any) -> Any:
    """The sympy condition "``e`` is nonzero" (the condition itself for a mask's form)."""
    import sympy

    if isinstance(e, sympy.Piecewise) and len(e.args) == 2 and e.args[0].expr == 1 and \
            e.args[1].expr == 0 and e.args[1].cond == sympy.true:
        return e.args[0].cond
    return sympy.Ne(e, 0)


def _sympy_logic(name: str) -> Any:
    def form(*args: Any) -> Any:
        import sympy

        conds = [truth(a) for a in args]
        cond = {"and": sympy.And, "or": sympy.Or, "not": sympy.Not}[name](*conds)
        return sympy.Piecewise((1, cond), (0, True))

    form.__name__ = f"_sympy_logical_{name}"
    return form


def _sympy_where(c: Any, a: Any, b: Any) -> Any:
    import sympy

    if isinstance(b, sympy.Piecewise):  # where(c, a, where(d, b, e)): one Piecewise
        return sympy.Piecewise((a, truth(c)), *b.args)
    return sympy.Piecewise((a, truth(c)), (b, True))


def _none(out: Any, *args: Any) -> tuple:
    return (None,) * len(args)


def _where_vjp(bar: Any, out: Any, c: Any, a: Any, b: Any) -> tuple:
    return None, call("where", c, bar, 0.0), call("where", c, 0.0, bar)


def _where_jvp(tangents: tuple, out: Any, c: Any, a: Any, b: Any) -> Any:
    _, ta, tb = tangents
    if ta is None and tb is None:
        return None
    return call("where", c, 0.0 if ta is None else ta, 0.0 if tb is None else tb)


def _compare(name: str, symbol: str, label: str, relation: str) -> Primitive:
    return Primitive(name, 2, _mask(symbol), label, numpy=(name,), partials=_none,
                     c=f"({{0}} {symbol} {{1}} ? 1.0 : 0.0)", c_vector=f"CG_ONE_IF(a0 {symbol} a1)",
                     sympy=_sympy_mask(relation))


RECORDS: list[Primitive] = [
    _compare("less", "<", "<", "Lt"),
    _compare("less_equal", "<=", "≤", "Le"),
    _compare("greater", ">", ">", "Gt"),
    _compare("greater_equal", ">=", "≥", "Ge"),
    _compare("equal", "==", "=", "Eq"),
    _compare("not_equal", "!=", "≠", "Ne"),
    Primitive("logical_and", 2, "xp.astype(({0} != 0.0) & ({1} != 0.0), xp.float64)", "and",
              c="({0} != 0.0 && {1} != 0.0 ? 1.0 : 0.0)",
              numpy=("logical_and",), partials=_none, sympy=_sympy_logic("and"),
              c_vector="CG_ONE_IF((a0 != 0.0) & (a1 != 0.0))"),
    Primitive("logical_or", 2, "xp.astype(({0} != 0.0) | ({1} != 0.0), xp.float64)", "or",
              c="({0} != 0.0 || {1} != 0.0 ? 1.0 : 0.0)",
              numpy=("logical_or",), partials=_none, sympy=_sympy_logic("or"),
              c_vector="CG_ONE_IF((a0 != 0.0) | (a1 != 0.0))"),
    Primitive("logical_not", 1, "xp.astype({0} == 0.0, xp.float64)", "not",
              c="({0} == 0.0 ? 1.0 : 0.0)",
              numpy=("logical_not",), partials=_none, sympy=_sympy_logic("not"),
              c_vector="CG_ONE_IF(a0 == 0.0)"),
    # where(cond, a, b): [()] makes a point's result a NumPy scalar, like every other op's.
    Primitive("where", 3, "_sp.where({0}, {1}, {2})", "where",
              c="({0} != 0.0 ? {1} : {2})",
              vjp=_where_vjp, jvp=_where_jvp, sympy=_sympy_where,
              c_vector="cg_select(a0 != 0.0, a1, a2)"),
]
