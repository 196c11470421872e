"""hypothesis strategies: random straight-line programs with a point inside every op's domain.

A program is built line by line while its values are computed at the point, so each op is
drawn only where it is defined, smooth and well-conditioned there (log of a positive number,
relu away from its kink, exp of a moderate number ...). Lines reuse earlier values, so
programs have fan-out and squares like ``x*x``.
"""

from __future__ import annotations

import math

import numpy as np

from hypothesis import strategies as st

from specs import SPECS

# The functions random programs draw, with where they may (smooth, well-conditioned; the
# piecewise constant ones away from their jumps), from the one spec per primitive (specs.py):
# name(a) and name(a, b).
UNARY = {name: (s.point, s.domain) for name, s in SPECS.items()
         if s.point is not None and len(s.samples) == 1}
# The division ufuncs (floor_divide, remainder, fmod) are piecewise constant or linear with
# jumps sympy cannot differentiate through (floor, Mod): tests/primitives/test_numeric_functions.py
# checks them against hand formulas instead.
JUMPS = ("floor_divide", "remainder", "fmod")
FUNCTIONS2 = {name: (s.point, s.domain) for name, s in SPECS.items()
              if s.point is not None and len(s.samples) == 2 and name not in JUMPS}
COMPARISONS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
               ">=": lambda a, b: a >= b}
BINARY = {
    "+": (lambda a, b: a + b, lambda a, b: True),
    "-": (lambda a, b: a - b, lambda a, b: True),
    "*": (lambda a, b: a * b, lambda a, b: True),
    "/": (lambda a, b: a / b, lambda a, b: abs(b) > 0.2),
    "**": (lambda a, b: a**b, lambda a, b: 0.3 < a < 5 and abs(b) < 3),
}
POWERS = (2, 3, 0.5, -1)


@st.composite
def programs(draw, max_ops: int = 12, max_inputs: int = 3):
    """(text, point, values): a program, a point in its domain, and every line's value."""
    n_inputs = draw(st.integers(1, max_inputs))
    names = [f"x{i}" for i in range(n_inputs)]
    point = {n: draw(st.floats(-2, 2).filter(lambda v: abs(v) > 0.1)) for n in names}
    values = dict(point)
    # Lines that depend on a mask or a selection: sympy rewrites products and quotients of its
    # Piecewise eagerly (into zoo and nan pieces), so they are kept out of divisors, powers and
    # conditions.
    piecewise: set[str] = set()
    lines = []
    for k in range(draw(st.integers(1, max_ops))):
        pool = sorted(values)
        a = draw(st.sampled_from(pool))
        b = draw(st.sampled_from(pool))
        kind = draw(st.sampled_from(["unary", "binary", "power", "constant", "function2",
                                     "select", "mask", "clip"]))
        va, vb = values[a], values[b]
        tainted = a in piecewise or b in piecewise
        expr, value = None, None
        if kind == "unary":
            name = draw(st.sampled_from(sorted(UNARY)))
            fn, ok = UNARY[name]
            if ok(va):
                expr, value = (f"-{a}" if name == "neg" else f"{name}({a})"), fn(va)
        elif kind == "binary":
            op = draw(st.sampled_from(sorted(BINARY)))
            fn, ok = BINARY[op]
            if ok(va, vb) and not (tainted and op in ("/", "**")):
                expr, value = f"{a} {op} {b}", fn(va, vb)
        elif kind == "power":
            p = draw(st.sampled_from(POWERS))
            if (p > 0 or abs(va) > 0.2) and (float(p).is_integer() or va > 0.2) and \
                    not tainted:
                expr, value = f"{a} ** {p}", va**p
        elif kind == "function2":
            name = draw(st.sampled_from(sorted(FUNCTIONS2)))
            fn, ok = FUNCTIONS2[name]
            if ok(va, vb):
                expr, value = f"{name}({a}, {b})", fn(va, vb)
        elif kind == "select" and abs(va - vb) > 1e-2 and not tainted:
            # where(...) and a if c else b, the branches differentiable functions
            op = draw(st.sampled_from(sorted(COMPARISONS)))
            test = COMPARISONS[op](va, vb)
            if draw(st.booleans()):
                expr = f"where({a} {op} {b}, sin({a}), {b} * {a})"
            else:
                expr = f"(sin({a}) if {a} {op} {b} else {b} * {a})"
            value = math.sin(va) if test else vb * va
        elif kind == "mask" and abs(va - vb) > 1e-2 and abs(va) > 1e-2 and not tainted:
            # masks as 0/1 values, with logic
            op = draw(st.sampled_from(sorted(COMPARISONS)))
            logic = draw(st.sampled_from(["", "&", "|", "~"]))
            m = COMPARISONS[op](va, vb)
            if logic == "&":
                expr, m = f"(({a} {op} {b}) & ({a} > 0)) * {b}", m and va > 0
            elif logic == "|":
                expr, m = f"(({a} {op} {b}) | ({a} < 0)) * {b}", m or va < 0
            elif logic == "~":
                expr, m = f"(~({a} {op} {b})) * {b}", not m
            else:
                expr = f"({a} {op} {b}) * {b}"
            value = float(m) * vb
        elif kind == "clip" and abs(abs(va) - 1.0) > 1e-2:
            expr, value = f"clip({a}, -1.0, 1.0)", min(max(va, -1.0), 1.0)
        else:
            c = draw(st.sampled_from([0.5, 2.0, -1.5, 3.0, "pi", "e"]))
            cv = {"pi": math.pi, "e": math.e}.get(c, c)
            expr, value = f"{c} * {a} + {b}", cv * va + vb
        if expr is None or not math.isfinite(value) or abs(value) > 1e3:
            expr, value = f"sin({a})", math.sin(va)
        target = f"v{k}"
        if tainted or kind in ("select", "mask"):
            piecewise.add(target)
        lines.append(f"{target} = {expr}")
        values[target] = value
    return "\n".join(lines), point, values


TENSOR_SHAPES = ((), (3,), (2, 3), (3, 2), (2, 1), (1, 3), (2, 1, 3))
SMOOTH = ("sin", "cos", "tanh", "sigmoid", "square", "softplus", "erf", "atan", "asinh")
# Reductions (with or without an axis) and the normalizations (same shape as the operand).
REDUCTIONS = ("sum", "mean", "max", "min", "prod", "norm", "logsumexp")
NORMALIZATIONS = ("softmax", "log_softmax")


@st.composite
def tensor_programs(draw, max_ops: int = 8):
    """(text, shapes): a random tensor program whose output J is a scalar.

    Values come from smooth functions only (no kinks, no domains), so central differences
    apply everywhere; ops are drawn only where their operand shapes fit: elementwise ops with
    NumPy broadcasting, ``@`` of fitting vectors and matrices, ``.T``, ``sum``/``mean`` with or
    without an axis.
    """
    n_inputs = draw(st.integers(1, 3))
    shapes = {f"t{i}": draw(st.sampled_from(TENSOR_SHAPES)) for i in range(n_inputs)}
    known = dict(shapes)
    lines = []
    for k in range(draw(st.integers(1, max_ops))):
        a = draw(st.sampled_from(sorted(known)))
        b = draw(st.sampled_from(sorted(known)))
        sa, sb = known[a], known[b]
        kind = draw(st.sampled_from(["unary", "binary", "matmul", "transpose", "reduce",
                                     "index", "join", "reshape", "normalize"]))
        expr, shape = f"sin({a})", sa
        if kind == "unary":
            expr = f"{draw(st.sampled_from(SMOOTH))}({a})"
        elif kind == "binary":
            try:
                shape = tuple(np.broadcast_shapes(sa, sb))
                expr = f"{a} {draw(st.sampled_from(['+', '-', '*']))} {b}"
            except ValueError:
                pass
        elif kind == "matmul" and 1 <= len(sa) <= 2 and 1 <= len(sb) <= 2 and sa[-1] == sb[0]:
            expr, shape = f"{a} @ {b}", sa[:-1] + sb[1:]
        elif kind == "transpose":
            expr, shape = f"{a}.T", tuple(reversed(sa))
        elif kind == "reduce" and sa:
            fn = draw(st.sampled_from(REDUCTIONS))
            axis = draw(st.sampled_from([None] + list(range(-len(sa), len(sa)))))
            if axis is None:
                expr, shape = f"{fn}({a})", ()
            else:
                # max(x, k) / min(x, k) of a tensor is ambiguous in a program (an error
                # naming both readings): the axis by keyword there.
                expr = (f"{fn}({a}, axis={axis})" if fn in ("max", "min")
                        else f"{fn}({a}, {axis})")
                shape = sa[: axis % len(sa)] + sa[axis % len(sa) + 1:]
        elif kind in ("index", "join", "reshape") and sa:
            expr, shape = draw(shape_expressions(a, sa, b, sb))
        elif kind == "normalize" and sa:
            fn = draw(st.sampled_from(NORMALIZATIONS))
            axis = draw(st.sampled_from([None] + list(range(-len(sa), len(sa)))))
            expr = f"{fn}({a})" if axis is None else f"{fn}({a}, axis={axis})"
        lines.append(f"v{k} = {expr}")
        known[f"v{k}"] = shape
    # Every line reaches J, so every op is differentiated.
    lines.append("J = " + " + ".join(f"sum(v{k})" for k in range(len(lines))))
    return "\n".join(lines), shapes


INDICES = ("[0]", "[-1]", "[1:]", "[:-1]", "[::2]", "[::-1]", "[..., 0]", "[:, 0]",
           "[None]", "[:, None]", "[[0, 0]]", "[..., [0, -1, 0]]", "[0, 0]")


@st.composite
def shape_expressions(draw, a: str, sa: tuple, b: str, sb: tuple):
    """(text, shape) of an indexing, joining or reshaping expression over ``a`` (and ``b``),
    as a program writes it; NumPy on zeros of the same shapes says the result's shape."""
    za, zb = np.zeros(sa), np.zeros(sb)
    options = []
    for ix in INDICES:
        try:
            out = eval(f"za{ix}")  # noqa: S307 - our own index texts on our own zeros
        except IndexError:
            continue
        if np.ndim(out) and out.size:
            options.append((f"{a}{ix}", np.shape(out)))
    n = len(sa)
    for axis in range(n):
        if len(sb) == n and all(x == y for k, (x, y) in enumerate(zip(sa, sb)) if k != axis):
            options.append((f"concatenate([{a}, {b}], axis={axis})",
                            np.concatenate([za, zb], axis=axis).shape))
    if sa == sb:
        axis = draw(st.integers(0, n))
        options.append((f"stack([{a}, {b}], axis={axis})", np.stack([za, zb], axis).shape))
    options += [(f"reshape({a}, {tuple(reversed(sa))})", tuple(reversed(sa))),
                (f"ravel({a})", (za.size,)), (f"cumsum({a}, axis={n - 1})", sa),
                (f"flip({a})", sa), (f"{a} - {np.arange(sa[-1], dtype=float).tolist()}", sa)]
    if n >= 2:
        axes = tuple(reversed(range(n)))[1:] + (n - 1,)
        options.append((f"permute_dims({a}, {axes})", np.transpose(za, axes).shape))
    return draw(st.sampled_from(options))


@st.composite
def einsum_subscripts(draw, sa: tuple, sb: tuple) -> str:
    """Explicit einsum subscripts for operands of shapes ``sa`` and ``sb``: each axis a new
    letter or one of an earlier axis of the same length (a contraction, or a diagonal when
    both are in one operand), the output some of the letters in some order."""
    sizes: dict[str, int] = {}
    terms = []
    for shape in (sa, sb):
        term = ""
        for n in shape:
            same = [c for c, m in sizes.items() if m == n]
            c = draw(st.sampled_from(same + [None])) if same else None
            if c is None:
                c = "abcdefgh"[len(sizes)]
                sizes[c] = n
            term += c
        terms.append(term)
    letters = sorted(set("".join(terms)))
    output = draw(st.permutations(letters))[:draw(st.integers(0, len(letters)))]
    return ",".join(terms) + "->" + "".join(output)


@st.composite
def tensor_circuits(draw, max_ops: int = 10):
    """A random tensor circuit built through the operators, with array constants.

    Like :func:`tensor_programs`, but some operands are NumPy array constants (``x * K``,
    ``K @ x``), which programs cannot write: the case that register allocation must keep
    alive until their last read; and ``np.einsum`` of random subscripts (contractions,
    diagonals, outer products, transposes), which programs cannot write either.
    """
    import circuitgrad as cg
    from circuitgrad.builder import Builder

    b = Builder()
    n_inputs = draw(st.integers(1, 3))
    values = [b.input(f"t{i}", draw(st.sampled_from(TENSOR_SHAPES))) for i in range(n_inputs)]
    made = []
    for _ in range(draw(st.integers(1, max_ops))):
        a = draw(st.sampled_from(values))
        other = draw(st.sampled_from(values))
        kind = draw(st.sampled_from(["unary", "binary", "matmul", "transpose", "reduce",
                                     "const", "const", "einsum"]))
        v = None
        if kind == "unary":
            v = getattr(cg, draw(st.sampled_from(SMOOTH)))(a)
        elif kind == "binary":
            try:
                np.broadcast_shapes(a.shape, other.shape)
                v = draw(st.sampled_from([a + other, a - other, a * other]))
            except ValueError:
                pass
        elif kind == "matmul" and 1 <= len(a.shape) <= 2 and 1 <= len(other.shape) <= 2 \
                and a.shape[-1] == other.shape[0]:
            v = a @ other
        elif kind == "transpose":
            v = a.T
        elif kind == "einsum":
            v = np.einsum(draw(einsum_subscripts(a.shape, other.shape)), a, other)
        elif kind == "reduce" and a.shape:
            fn = getattr(cg, draw(st.sampled_from(REDUCTIONS + NORMALIZATIONS)))
            v = fn(a, axis=draw(st.sampled_from([None] + list(range(len(a.shape))))))
        elif kind == "const":
            shape = draw(st.sampled_from(TENSOR_SHAPES[1:]))
            seed = draw(st.integers(0, 2**16))
            K = np.random.default_rng(seed).uniform(-2, 2, size=shape)
            if len(shape) == 2 and a.shape and shape[1] == a.shape[0] and len(a.shape) <= 2:
                v = K @ a
            else:
                try:
                    np.broadcast_shapes(a.shape, shape)
                    v = a * K if seed % 2 else K - a
                except ValueError:
                    pass
        if v is None:
            v = cg.sin(a)
        values.append(v)
        made.append(v)
    J = made[0].sum() if made[0].shape else made[0]
    for v in made[1:]:
        J = J + (v.sum() if v.shape else v)
    return b.finish([("J", J)], inputs=[f"t{i}" for i in range(n_inputs)])


@st.composite
def vector_programs(draw, max_ops: int = 6):
    """(circuit, point): a random tensor program whose last value (not summed) is a
    vector-valued output, every drawn input kept, and a point inside (0.2, 0.8)."""
    import circuitgrad as cg

    text, shapes = draw(tensor_programs(max_ops=max_ops))
    c = cg.parse("\n".join(text.splitlines()[:-1]), shapes=shapes, inputs=list(shapes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return c, {x: rng.uniform(0.2, 0.8, size=s) for x, s in shapes.items()}
