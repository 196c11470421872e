"""The C forms of the primitives: what the tape evaluator and ``to_c`` are generated from.

Each scalar primitive's record carries ``c``, a C expression over its argument expressions
(``"sin({0})"``). Both C lowerings read it: :func:`tape_ops_header` writes the tape
evaluator's opcode switch (the committed file ``circuitgrad/lower/_tape_ops.h``, made by
``scripts/gen_tape.py``; a test checks that the committed file is what the current table
makes, so adding an op cannot leave the evaluator stale), and ``to_c`` writes one statement
per node with the same expressions.

The semantics are the NumPy lowering's (docs/semantics.md): IEEE float64, compiled with
``-ffp-contract=off`` (no fused multiply-add) and never ``-ffast-math``. Where NumPy's
ufunc is not one libm call, :data:`PRELUDE` holds a helper with NumPy's exact definition:
``maximum``/``minimum`` propagate NaN from either side and return the second argument at a
tie (so the sign of zero is NumPy's), ``logaddexp`` is NumPy's ``npy_logaddexp`` (and so
``sigmoid`` and ``softplus``, which are written with it), ``sign(nan) = nan``.

    >>> c_expression("sigmoid", ["r[3]"])
    'exp(-cg_logaddexp(0.0, -r[3]))'
    >>> c_literal(-0.0), c_literal(float("inf"))
    ('(-0.0)', 'INFINITY')
"""

from __future__ import annotations

import math
from typing import Sequence

from ..errors import CircuitError
from ..primitives import PRIMITIVES

PRELUDE = r"""#include <math.h>

/* NumPy's maximum and minimum: NaN from either side propagates; at a tie (also 0.0 and
   -0.0) the second argument is returned, as NumPy does. */
static inline double cg_maximum(double a, double b) { return (a > b || a != a) ? a : b; }
static inline double cg_minimum(double a, double b) { return (a < b || a != a) ? a : b; }

/* NumPy's sign: 0.0 at both zeros, NaN at NaN. */
static inline double cg_sign(double a) {
    return a > 0.0 ? 1.0 : a < 0.0 ? -1.0 : a == 0.0 ? 0.0 : a;
}

/* NumPy's npy_logaddexp: log(e^x + e^y) without overflow; x + log 2 at x == y (also for
   infinities of one sign), NaN where x - y is NaN. */
static inline double cg_logaddexp(double x, double y) {
    if (x == y) return x + 0.693147180559945309417232121458176568;
    double d = x - y;
    if (d > 0.0) return x + log1p(exp(-d));
    if (d <= 0.0) return y + log1p(exp(d));
    return d;
}

/* circuitgrad's pow, NumPy's power for a scalar exponent: sqrt at 0.5 (sqrt(-0.0) = -0.0,
   sqrt(-inf) = nan), a * a at 2 and 1 / a at -1; C's pow elsewhere. */
static inline double cg_pow(double a, double b) {
    return b == 0.5 ? sqrt(a) : b == 2.0 ? a * a : b == -1.0 ? 1.0 / a : pow(a, b);
}
"""
"""The C helpers the ``c`` forms call, shared by the tape evaluator and ``to_c``'s source."""

C_FLAGS = ("-Og", "-fno-fast-math", "-ffp-contract=off", "-fPIC")
"""Flags both C lowerings compile with. Not ``-fno-math-errno``: with it GCC rewrites
compositions of libm calls (``sin(atan(x))`` into ``x / sqrt(x*x + 1)``, ``cos(atan(x))``,
``sinh(atanh(x))`` ...), which changes their values, NaN into 1 among them."""


def c_ops() -> list[str]:
    """The primitives with a C form, in the table's order: the tape's opcodes are their
    positions in this list."""
    return [name for name, prim in PRIMITIVES.items() if prim.c is not None]


def c_expression(op: str, args: Sequence[str]) -> str:
    """The C expression of one node of primitive ``op`` over the argument expressions."""
    prim = PRIMITIVES.get(op)
    if prim is None or prim.c is None:
        raise CircuitError(f"{op}: this primitive has no C form")
    return prim.c.format(*args)


def c_literal(value: float) -> str:
    """A float64 constant as C source, exact (``repr`` round-trips), signed zeros kept."""
    value = float(value)
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "(-INFINITY)"
    text = repr(value)
    if "e" not in text and "." not in text:
        text += ".0"
    return f"({text})" if text.startswith("-") else text


def tape_ops_header() -> str:
    """The text of ``circuitgrad/lower/_tape_ops.h``: the helpers, the opcode names and the
    two switches (one point; a chunk of ``n`` points, lane by lane) of the tape evaluator,
    all generated from the table's ``c`` forms.

        >>> "case 0: /* add */" in tape_ops_header()
        True
    """
    ops = c_ops()
    lines = [
        "/* Generated from circuitgrad's primitive table by scripts/gen_tape.py: do not edit.",
        "   One case per primitive with a C form (the record's `c` field); the opcode is the",
        "   primitive's position in CG_OP_NAMES. */",
        "",
        PRELUDE.rstrip(),
        "",
        f"#define CG_OP_COUNT {len(ops)}",
        "static const char *const CG_OP_NAMES[CG_OP_COUNT] = {",
    ]
    lines += [f'    "{name}",' for name in ops]
    lines += ["};", ""]

    def switch(name: str, arg: str, out: str, loop: str) -> list[str]:
        body = [f"#define {name} \\", "    switch (op) { \\"]
        for code, op in enumerate(ops):
            arity = max(PRIMITIVES[op].arity, 1)
            expr = c_expression(op, [arg.format(k) for k in range(arity)])
            body.append(f"    case {code}: /* {op} */ {loop}{out} = {expr}; break; \\")
        body += ["    default: break; \\", "    }", ""]
        return body

    # One point: a[k] is the k-th argument's register; a chunk: lane l of each register.
    lines += switch("CG_POINT_SWITCH", "r[a{0}]", "r[o]", "")
    lines += switch("CG_CHUNK_SWITCH", "x{0}[l]", "y[l]", "for (l = 0; l < n; l++) ")
    # One point, threaded: each case jumps straight to the next instruction's case (GCC's and
    # clang's labels as values), so the branch predictor sees one indirect jump per op kind
    # instead of one shared jump: ~10% faster than the switch on the gradients of random
    # programs (measured side by side; -DCG_SWITCH_ONLY builds the switch, to compare).
    lines += ["#if defined(__GNUC__) && !defined(CG_SWITCH_ONLY)", "#define CG_THREADED 1",
              "static void", "cg_run_point_threaded(const int32_t *code, Py_ssize_t ninstr, "
              "double *r)", "{",
              "    static const void *const label[CG_OP_COUNT] = {"]
    lines += [f"        &&op_{code}," for code in range(len(ops))]
    lines += ["    };",
              "    const int32_t *ins = code, *end = code + 5 * ninstr;",
              "    if (ins == end) return;",
              "    goto *label[ins[0]];"]
    for code, op in enumerate(ops):
        arity = max(PRIMITIVES[op].arity, 1)
        expr = c_expression(op, [f"r[ins[{2 + k}]]" for k in range(arity)])
        lines.append(f"op_{code}: /* {op} */ r[ins[1]] = {expr}; ins += 5; "
                     f"if (ins == end) return; goto *label[ins[0]];")
    lines += ["}", "#endif"]
    return "\n".join(lines)
