"""The C forms of the primitives: what the tape evaluator and ``to_c`` are generated from.

Each scalar primitive's record carries ``c``, a C expression over its argument expressions
(``"sin({0})"``). Both C lowerings read it: :func:`tape_ops_header` writes the tape
evaluator's opcode switch (the committed file ``circuitgrad/lower/_tape_ops.h``, made by
``scripts/gen_tape.py``; a test checks that the committed file is what the current table
makes, so adding an op cannot leave the evaluator stale), and ``to_c`` writes one statement
per node with the same expressions.

The semantics are the NumPy lowering's (docs/semantics.md): IEEE float64, compiled with
``-ffp-contract=off`` (no fused multiply-add in the circuit's arithmetic; only the vector
exp, sin and cos fuse their polynomials' steps, at 8 and 4 lanes: ``isa.FMA_WIDTHS``) and never
``-ffast-math``. Where NumPy's
ufunc is not one libm call, :data:`PRELUDE` holds a helper with NumPy's exact definition:
``maximum``/``minimum`` propagate NaN from either side and return the second argument at a
tie (so the sign of zero is NumPy's), ``logaddexp`` is NumPy's ``npy_logaddexp`` (and so
``softplus``, written with it), ``sigmoid`` SciPy's ``expit``, ``sign(nan) = nan``.

``to_c`` also writes each non-arithmetic node as a helper ``cgv_OP`` over ``cg_v`` registers
(:func:`c_vector_helpers`): 8, 4 or 2 points per vector (AVX-512, AVX2, SSE4.1: the width
of :mod:`~circuitgrad.lower.isa`), with a vector form of the same values
(:data:`VECTOR_FORMS`), glibc's vector math (:data:`LIBMVEC`) or circuitgrad's own
(:data:`VECTOR_MATH`) where measured within :data:`VECTOR_ULPS` of ``to_numpy``, else the C
form lane by lane; and the C form itself in the plain C path.

    >>> c_expression("sigmoid", ["r[3]"])
    'cg_sigmoid(r[3])'
    >>> c_literal(-0.0), c_literal(float("inf"))
    ('(-0.0)', 'INFINITY')
"""

from __future__ import annotations

import functools
import importlib.resources
import math
import re
from typing import Any, Callable, Sequence

from ..errors import CircuitError
from ..primitives import PRIMITIVES
from .isa import LIBMVEC_PREFIX, default_width


def c_text(name: str) -> str:
    """The text of the C file ``name`` shipped in ``circuitgrad/lower/csrc/`` (package data):
    the C that does not depend on the table lives there, not in Python strings.

        >>> c_text("prelude.h").startswith("#include <math.h>")
        True
    """
    return importlib.resources.files(__package__).joinpath("csrc", name).read_text("utf-8")


PRELUDE = c_text("prelude.h")
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


# -- to_c's vectors: 8, 4 or 2 points per register (AVX-512, AVX2, SSE4.1) --------------------

def libmvec_ulps(op: str, width: int = 4) -> int | None:
    """The measured distance from ``to_numpy`` of glibc's vector ``op`` at ``width`` points
    per vector (the record's ``libmvec``: one figure for every width, or a dict by width where
    they differ); None where it was not measured, libmvec has none, or it is not to be used
    (its special values or exact cases differ from to_numpy's)."""
    ulps = PRIMITIVES[op].libmvec
    return ulps.get(width) if isinstance(ulps, dict) else ulps


def _libmvec_symbol(op: str, width: int = 4) -> str:
    """glibc's name of the vector function (``width`` lanes) of libm's function ``op``."""
    return f"{LIBMVEC_PREFIX[width]}{'v' * PRIMITIVES[op].arity}_{op}"


def libmvec_table(width: int = 4) -> dict[str, tuple[str, int, int]]:
    """glibc's vector functions at ``width`` points per vector for circuitgrad's primitives,
    with their measured distance from ``to_numpy``: op -> (symbol, arity, ulps)."""
    return {op: (_libmvec_symbol(op, width), prim.arity, libmvec_ulps(op, width))
            for op, prim in PRIMITIVES.items() if libmvec_ulps(op, width) is not None}


LIBMVEC = libmvec_table(4)
"""glibc's vector math functions (libmvec's AVX2 variants, 4 lanes) for circuitgrad's
primitives, with their measured distance from ``to_numpy`` (op -> (symbol, arity, ulps)):
a view of the records' ``libmvec`` field, measured by scripts/libmvec_ulps.py on 10⁷ inputs
each, twice (typical arguments, up to ±10⁶, magnitudes from subnormals to 10³⁰⁸ of both
signs, ±0, ±inf, nan), glibc 2.36 on AMD EPYC; every special value identical to to_numpy's
except erfc's (as libm's erfc, which is far from SciPy's in its tail). The AVX-512 (8 lanes,
``_ZGVeN8``) and SSE4.1 (2 lanes, ``_ZGVbN2``) variants: :func:`libmvec_table`."""

VECTOR_MATH = {op: (prim.c_vector.split("(")[0], prim.c_vector_ulps)
               for op, prim in PRIMITIVES.items()
               if prim.c_vector is not None and prim.c_vector_ulps is not None}
"""circuitgrad's own vector functions (:data:`VECTOR_MATH_C`: glibc's exp and fdlibm's sin
and cos in vector operations) for the libmvec functions too far from ``to_numpy``: op -> (C
function, the largest distance from ``to_numpy`` in ulps, measured as :data:`LIBMVEC` is); a
view of the records' ``c_vector`` with a measured ``c_vector_ulps``."""

VECTOR_MATH_C = "\n" + c_text("vector_math.h").rstrip("\n")

VECTOR_ULPS = 2
"""``to_c`` calls libmvec for a function only where it was measured within this many ulps of
``to_numpy`` (the contract allows 4 per primitive: this leaves half for the margin); the others
run lane by lane with libm's scalar function (what the plain C path calls)."""

# The C forms that are valid C for GCC's vector types as they are: arithmetic only.
_ARITHMETIC = re.compile(r"[\s{}0-9.+\-*/()]*")

VECTOR_FORMS = {op: (prim.c, prim.c_vector) for op, prim in PRIMITIVES.items()
                if prim.c_vector is not None and prim.c_vector_ulps is None}
"""The vector forms over vectors a0, a1, a2 with the same bits as the C form (op -> (the
record's ``c``, its ``c_vector``)): a view of the records, which hold each beside the scalar
form it was written for."""

# The helpers of the vector forms, in the order they are written, with the ops they call.
_VECTOR_HELPERS = {
    "cg_vmaximum": ((), "/* cg_maximum, lane by lane: NaN from either side, b at a tie */\n"
                        "static inline cg_v cg_vmaximum(cg_v a, cg_v b) "
                        "{ return cg_select((a > b) | (a != a), a, b); }"),
    "cg_vminimum": ((), "static inline cg_v cg_vminimum(cg_v a, cg_v b) "
                        "{ return cg_select((a < b) | (a != a), a, b); }"),
    "cg_vlogaddexp": (("exp", "log1p"), """\
/* cg_logaddexp, lane by lane: exp(-|d|) is exp(-d) where d > 0, exp(d) where d <= 0 */
static inline cg_v cg_vlogaddexp(int w, cg_v x, cg_v y) {
    cg_v d = x - y, t = cgv_log1p(w, cgv_exp(w, -cg_vabs(d)));
    return cg_select(x == y, x + 0.693147180559945309417232121458176568,
                     cg_select(d > 0.0, x + t, cg_select(d <= 0.0, y + t, d)));
}"""),
}

VECTOR_PRELUDE = "\n" + c_text("vector_prelude.h").rstrip("\n")


def is_arithmetic(op: str) -> bool:
    """Whether the C form of ``op`` is arithmetic only, valid C for vectors as it is."""
    return bool(_ARITHMETIC.fullmatch(PRIMITIVES[op].c or "x"))


def _by_record(form: Callable[[str, int], Any]) -> Callable[[str, int], Any]:
    """``form(op, width)`` remembered while ``op``'s record is the same object: a form is a
    function of the record and the width, asked for by every node of a kind (to_c of 10³ ops
    asked 5,500 times: 0.2 s of a 0.3 s source); a record replaced (a test's monkeypatch)
    is asked again."""
    seen: dict[tuple[str, int], tuple[Any, Any]] = {}

    def remembered(op: str, width: int = 4) -> Any:
        record = PRIMITIVES[op]
        hit = seen.get((op, width))
        if hit is None or hit[0] is not record:
            hit = seen[(op, width)] = (record, form(op, width))
        return hit[1]

    return functools.wraps(form)(remembered)


@_by_record
def vector_form(op: str, width: int = 4) -> str | None:
    """The vector form of ``op``'s helper at ``width`` points per vector, read from its
    record: of glibc's vector function (where ``c`` is that libm call) and the record's
    ``c_vector`` (its ``CG_MVEC(vv_pow)`` naming libmvec's function of the width), the closer
    to ``to_numpy`` within :data:`VECTOR_ULPS`; else None (lane by lane)."""
    prim = PRIMITIVES[op]
    found = []
    call = f"{op}(" + ", ".join(f"{{{k}}}" for k in range(prim.arity)) + ")"
    table = libmvec_table(width) if width in LIBMVEC_PREFIX else {}
    if prim.c == call and op in table:  # libm's function: glibc's vector one
        args = ", ".join(f"a{k}" for k in range(prim.arity))
        found.append((table[op][2], f"{table[op][0]}({args})"))
    if prim.c_vector is not None:
        # the libmvec functions the form calls (CG_MVEC(vv_pow): _ZGVdN4vv_pow at width 4)
        # count with their own distance at this width; unmeasured ones rule the form out
        called = [libmvec_ulps(name.split("_", 1)[1], width) if width in LIBMVEC_PREFIX
                  else None for name in re.findall(r"CG_MVEC\((\w+)\)", prim.c_vector)]
        if None not in called:
            form = re.sub(r"CG_MVEC\((\w+)\)", lambda m: LIBMVEC_PREFIX[width] + m[1],
                          prim.c_vector)
            found.append((max([prim.c_vector_ulps or 0, *called]), form))
    found = sorted(f for f in found if f[0] <= VECTOR_ULPS)
    return found[0][1] if found else None


@_by_record
def sincos_form(op: str, width: int = 4) -> tuple[int, str] | None:
    """The record's ``c_sincos`` of ``op`` (its operand, its form over ``a0, a1 ...`` and the
    operand's sine ``S`` and cosine ``C``) where that form is the node's own value at ``width``
    points per vector and in the plain C path (``S`` for ``cgv_sin``, ``sin``), so that one
    ``cgv_sincos`` of the operand may serve every node reading them; else None.

        >>> sincos_form("cos_vjp", 8), sincos_form("sin", 8), sincos_form("exp", 8)
        ((1, 'a0 * S'), (0, 'S'), None)
    """
    share = PRIMITIVES[op].c_sincos
    if share is None:
        return None
    k, form = share
    args = [f"a{j}" for j in range(max(PRIMITIVES[op].arity, 1))]

    def made(sin: str, cos: str) -> str:
        return re.sub(r"\b[SC]\b", lambda m: (sin if m[0] == "S" else cos).format(args[k]), form)

    own = f"cgv_{op}({', '.join(['w', *args])})"
    vector = made("cgv_sin(w, {0})", "cgv_cos(w, {0})") in (own, vector_form(op, width))
    plain = made("sin({0})", "cos({0})") in (own, c_expression(op, args))
    return share if plain and (vector or width == 1) else None


LITERAL_POWERS = {"3.0": "cgv_cube"}
"""``pow`` with a literal exponent that has a helper of its own (exponent as C text -> the
helper, written where ``pow`` is): the vector form ``cg_vcube`` of ``vector_prelude.h``
(x·x·x with both products' rounding errors carried: within 0.5 ulp of the cube, measured by
``scripts/libmvec_ulps.py``), ``cg_pow(x, 3.0)`` in the plain C path. The exponents 0.5, 2
and -1 are the pow form's own selects (NumPy's sqrt, x*x, 1/x)."""


def c_vector_expression(op: str, args: Sequence[str], literal: Sequence[bool]) -> str:
    """The expression of one node in ``to_c``'s source, over registers of type ``cg_v``
    (vectors, or doubles in the plain C path): the C form itself where it is arithmetic, else
    the node's helper ``cgv_OP(w, ...)``; constants (``literal``) are broadcast where needed.

        >>> c_vector_expression("mul", ["R(0)", "2.0"], [False, True])
        'R(0) * 2.0'
        >>> c_vector_expression("pow", ["v3", "2.5"], [False, True])
        'cgv_pow(w, v3, CG_C(2.5))'
        >>> c_vector_expression("pow", ["v3", "3.0"], [False, True])
        'cgv_cube(w, v3)'
    """
    if is_arithmetic(op):
        if all(literal):  # constants only: a vector all the same
            args = [f"CG_C({a})" for a in args]
        return c_expression(op, args)
    if op == "pow" and not literal[0] and literal[1] and args[1] in LITERAL_POWERS:
        return f"{LITERAL_POWERS[args[1]]}(w, {args[0]})"
    args = [f"CG_C({a})" if lit else a for a, lit in zip(args, literal)]
    return f"cgv_{op}({', '.join(['w', *args])})"


def c_vector_helpers(ops: Sequence[str], width: int | None = None) -> str:
    """The C of ``to_c``'s vector path at ``width`` points per vector (None: the host's,
    :func:`~circuitgrad.lower.isa.default_width`; 1: plain C only) and its plain C path, with
    a helper ``cgv_OP`` for each op of ``ops`` that is not arithmetic (and for those they
    call): libmvec's function of the width, a vector form, or the C form lane by lane (the
    ``w`` lanes in use; the others copy lane 0), and the C form itself in the plain C path.

        >>> print(c_vector_helpers(["sin"], 4).rsplit("#define CG_W 1", 1)[1].splitlines()[-2])
        static inline cg_v cgv_sin(int w, cg_v a0) { (void)w; return sin(a0); }
    """
    width = default_width() if width is None else width
    sincos = "sincos" in ops  # sin and cos of one operand: cgv_sincos, one reduction
    ops = [op for op in ops if op != "sincos"] + (["sin", "cos"] if sincos else [])
    wanted = [op for op in dict.fromkeys(ops) if not is_arithmetic(op)]
    forms = {op: vector_form(op, width) for op in wanted}
    helpers = [name for name in _VECTOR_HELPERS
               if any(re.search(rf"\b{name}\(", form or "") for form in forms.values())]
    # the ops the helpers call come first (they call no helper), then the helpers
    first = [op for name in helpers for op in _VECTOR_HELPERS[name][0]]
    first += [op for form in forms.values() for op in re.findall(r"\bcgv_(\w+)\(", form or "")
              if op in PRIMITIVES]  # the helpers a vector form calls
    order = list(dict.fromkeys(first + wanted))
    forms.update({op: vector_form(op, width) for op in first})
    vector, plain = [f"#define CG_WIDTH {width}  /* points per vector */", VECTOR_PRELUDE], []
    table = libmvec_table(width) if width in LIBMVEC_PREFIX else {}
    for op in order:
        if op in table and table[op][0] in (forms[op] or ""):
            symbol, arity, ulps = table[op]
            vector.append(f"cg_v {symbol}({', '.join(['cg_v'] * arity)});"
                          f"  /* libmvec's {op}: {ulps} ulp from to_numpy */")
    if any(re.search(r"\bcg_v(exp|sin|cos|sigmoid)\(", form or "") for form in forms.values()):
        vector.append(VECTOR_MATH_C)
    for k, op in enumerate(order):
        if k == len(set(first)):
            vector += [_VECTOR_HELPERS[name][1] for name in helpers]
        arity = max(PRIMITIVES[op].arity, 1)
        params = ", ".join(["int w", *[f"cg_v a{j}" for j in range(arity)]])
        form = forms[op]
        if form is None:
            each = c_expression(op, [f"x{j}.d[l]" for j in range(arity)])
            unions = ", ".join(f"x{j} = {{a{j}}}" for j in range(arity))
            vector.append(f"static inline cg_v cgv_{op}({params}) {{  /* lane by lane */\n"
                          f"    cg_lanes {unions}, y;\n    int l;\n    CG_SCALAR_CODE();\n"
                          f"    for (l = 0; l < w; l++) y.d[l] = {each};\n"
                          f"    for (; l < CG_W; l++) y.d[l] = y.d[0];\n    return y.v;\n}}")
        else:
            uses_w = "w" in re.findall(r"\w+", form)
            vector.append(f"static inline cg_v cgv_{op}({params}) "
                          f"{{ {'' if uses_w else '(void)w; '}return {form}; }}")
        plain.append(f"static inline cg_v cgv_{op}({params}) {{ (void)w; return "
                     f"{c_expression(op, [f'a{j}' for j in range(arity)])}; }}")
    if len(order) == len(set(first)):
        vector += [_VECTOR_HELPERS[name][1] for name in helpers]
    if "pow" in order:  # pow(x, 3.0): its own helper (LITERAL_POWERS)
        vector.append("static inline cg_v cgv_cube(int w, cg_v a0) "
                      "{ (void)w; return cg_vcube(a0); }")
        plain.append("static inline cg_v cgv_cube(int w, cg_v a0) "
                     f"{{ (void)w; return {c_expression('pow', ['a0', '3.0'])}; }}")
    if sincos:
        head = "static inline void cgv_sincos(int w, cg_v a0, cg_v *s, cg_v *c) {"
        both = "*s = cgv_sin(w, a0); *c = cgv_cos(w, a0); }"
        own = forms["sin"] == "cg_vsin(a0)" and forms["cos"] == "cg_vcos(a0)"
        vector.append(f"{head} {'(void)w; cg_vsincos_both(a0, s, c); }' if own else both}")
        plain.append(f"{head} {both}")
    if width == 1:  # plain C: the vector path's guard is never true
        vector = vector[:2]
    lines = vector + ["#else", "#define CG_W 1", "typedef double cg_v;", "#define CG_C(x) (x)",
                      "#define LANE(k) r[(k) * LANES + l]  /* register k, lane l of the chunk */",
                      "#define CG_ALLOC(size) malloc(sizeof(cg_v) * (size))",
                      "#define CG_SCALAR_CODE()"] + plain + ["#endif"]
    return "\n".join(lines)
