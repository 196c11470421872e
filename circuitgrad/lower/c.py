"""The C lowering: a circuit as readable, self-contained C, compiled and cached on disk.

``to_c(c)`` writes one statement per node from the table's ``c`` forms
(:mod:`~circuitgrad.lower.cforms`), with the program's names in comments and the
``/* forward */`` and ``/* backward */`` sections of a derivative circuit, over a register
file reused by liveness (the tape's registers). The statements are split into functions of
``PART_SIZE`` nodes, each node a local constant of its function and a value read by a later
function also stored in its register, so the compiler's time stays linear in the size of the circuit
(one function of 10⁵ statements takes minutes and gigabytes at -O1).

Each function runs its statements for each vector of a chunk of up to ``LANES`` points,
register k of vector g at ``r[k * CG_G + g]``: one loop per function, not per statement, and
straight-line bodies the compiler keeps in registers. The registers are ``cg_v``: GCC's vector
of ``width`` doubles, one point per lane, where the compiler targets the width's instructions
and the C library is glibc: 8 with AVX-512, 4 with AVX2, 2 with SSE4.1 (:mod:`.isa` picks the
host's widest at compile time; ``width=`` asks another); elsewhere ``double``, one point (plain
C, the same statements). The functions of libm have vector versions within
:data:`~circuitgrad.lower.cforms.VECTOR_ULPS` = 2 ulp of ``to_numpy`` (and identical special
values) where glibc's vector math of that width (libmvec: ``_ZGVeN8v_tanh``, ``_ZGVdN4v_tanh``
...) is that close, or circuitgrad's own (``cg_vexp``: glibc's exp, ``cg_vsin``, ``cg_vcos``:
fdlibm's, in vector operations of any width, with libm's scalar function for the lanes out of
their range); the others run lane by lane with libm's scalar function. Measured by
``scripts/libmvec_ulps.py``, 10⁷ inputs each, glibc 2.36, at 4 points per vector (the other
widths: the records' ``libmvec`` and docs/compiled.md):

=========================  ======================================================
ulps from ``to_numpy``     functions
=========================  ======================================================
1, used                    exp, sin, cos (circuitgrad's own); pow, hypot (libmvec)
2, used                    acos, cosh, tanh, exp2, log, log2, log1p (libmvec)
3-4, lane by lane          libmvec's tan, asin, atan, sinh, asinh, acosh, atanh,
                           expm1, log10, erf, atan2, cbrt (and its exp, sin, cos)
515, lane by lane          libmvec's erfc (libm's erfc is as far from SciPy's)
=========================  ======================================================

Arithmetic, comparisons, selects, ``sqrt``, ``abs``, rounding and ``maximum``/``minimum`` are
vector operations with the scalar C forms' exact values; ``logaddexp`` (and ``sigmoid``,
``softplus``) the scalar form's operations on vectors, with the vector exp and log1p
(:data:`~circuitgrad.lower.cforms.VECTOR_FORMS`). Every call runs the same code: a one-point
call fills one lane, so a point of a batch is the point alone, bit for bit, at every width.
The flags are chosen in Python (:func:`compile_flags`: the width's, ``-mavx512f``, ``-mavx2``
or ``-msse4.1``, only where the host runs it; ``$CIRCUITGRAD_NO_VECTORS=1`` compiles the plain
C path) and, with the width and the ISA (:func:`~circuitgrad.lower.isa.isa_tag`), are part of
the cache key.

A loop (``scan``) is a loop site of the scalar program (``scalarize(c, loops=True)``): each
distinct body is written once, as ``static void NAME_bodyK(int w, const cg_v *a, cg_v *o)``
(its statements over the vectors of its inputs and outputs), and each loop as a function
``NAME_loopJ`` run between the parts, after its arguments and before what reads its result: a
C ``for`` over the steps that reads the x slices from their registers, calls the body, and
writes the ys and saved carries into the registers of its packed result. The values are the
unrolled circuit's, bit for bit (docs/loops.md).

The entry points are

    ``int NAME_eval(const double *in, double *out, long npoints)``
    ``int NAME_eval_threads(const double *in, double *out, long npoints, int threads)``

with ``in`` float64[npoints, inputs] and ``out`` float64[npoints, outputs] (row-major, tensor
inputs and outputs as their entries in row-major order; they return 0, or 1 where the register
file could not be allocated). The second splits the batch over up to ``threads`` POSIX threads,
each a whole number of chunks (whole vectors), with no reduction across points: the values
are the same bits for any thread count. ``CFunction`` calls it where a batch has at least
``WORK_PER_THREAD`` scalar operations per thread, the GIL released. The source needs only
``<math.h>``, ``<stdlib.h>`` and ``<pthread.h>``, so it can be shipped and built anywhere.

The library is compiled with the system compiler (``$CC``, else ``cc``, ``gcc`` or ``clang``)
in its own process group with a time limit, and cached under ``$CIRCUITGRAD_CACHE`` (default
``~/.cache/circuitgrad``) by a hash of the source, the compiler and its flags: a second build
of the same circuit is a load, of a library verified first (a private directory, an index
of SHA-256 hashes, a size bound: ``circuitgrad.lower.cache``). It is loaded with ``ctypes`` and called through the tape
extension's ``call`` (a ctypes call with two arrays costs ~5 µs on this machine, the
extension's a fraction of one; ctypes is the fallback where the extension is not built).

    >>> import circuitgrad as cg
    >>> f = cg.to_c(cg.grad(cg.parse("z = w*x\\nJ = relu(z)")))
    >>> [float(v) for v in f(w=2.0, x=1.5)]
    [3.0, 1.5, 2.0]
    >>> print(f.source[f.source.index("CG_PART f_part0"):].split("}")[0].rstrip())
    CG_PART f_part0(cg_v *restrict r, int n, int last)
    {
        int g, w;
        for (g = 0; g < n; g++) {  /* each vector of the chunk */
            cg_v *restrict q = r + g;
            w = g < n - 1 ? CG_W : last;  /* its lanes in use */
            /* forward */
            const cg_v v2 = R(0) * R(1);  /* z */
            const cg_v v3 = cgv_relu(w, v2);  /* J */
            R(3) = v3;
            /* backward: adjoints v_bar = dJ/dv, last node first */
            const cg_v v4 = cgv_step(w, v2);  /* z_bar */
            const cg_v v5 = v4 * R(1);  /* w_bar */
            R(4) = v5;
            const cg_v v6 = v4 * R(0);  /* x_bar */
            R(2) = v6;
    >>> print(f.source[f.source.index("cgv_step(int"):].split("\\n")[0])
    cgv_step(int w, cg_v a0) { (void)w; return CG_ONE_IF(a0 >= 0.0); }
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from ..circuit import Circuit, as_circuit, no_gc
from ..primitives.loops import LOOPS, layout
from ..errors import CircuitError
from ..transforms.scalarize import scalar_size
from . import isa
from .cache import cache_dir, load_library  # noqa: F401 - cache_dir: public
from .isa import default_width
from .cforms import C_FLAGS, PRELUDE, c_literal, c_ops, c_vector_expression, c_vector_helpers
from .program import EXTENSION as _tape
from .program import CompiledFunction, ScalarProgram
from .guarded import guarded

PART_SIZE = 500
LANES = 8
OPT = "-Og"
COMPILE_TIMEOUT = 300.0
SCALAR_LIMIT = 4096
"""The most scalars (``scalarize``'s size, estimated by ``scalar_size``) a tensor circuit may
expand to for ``to_c``'s scalar code: its compile grows ~0.3-0.4 ms per scalar (-Og), so 4096
is about 1.5 s; above it ``to_c`` gives ``to_fused``'s loops, which compile per group of
elementwise nodes (well under a second) and call BLAS for products."""
TENSOR_LOWERING: list[Any] = [None]
"""The lowering ``to_c`` hands a tensor circuit above :data:`SCALAR_LIMIT`: lower/fused.py
puts ``to_fused`` here when it is imported (it builds on this module's compiler, so this
module cannot import it)."""


def _comment(text: str) -> str:
    return text.replace("*/", "* /")


def c_source(c: Circuit, name: str = "f", program: ScalarProgram | None = None,
             width: int | None = None) -> str:
    """The C source of ``c`` (see the module docstring) for ``width`` points per vector (None:
    the host's widest, :func:`~circuitgrad.lower.isa.default_width`; 1: plain C); ``name``
    prefixes its functions."""
    width = default_width() if width is None else width
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise CircuitError(f"to_c: the name {name!r} is not a C identifier")
    p = program or ScalarProgram(c, "to_c", c_ops(), loops=True)
    s, reg = p.circuit, p.reg.tolist()
    args, params = p.args.tolist(), s._params
    operand = {}  # constants are written as literals, inputs and values as their registers
    for i in p.const_ids:
        operand[i] = c_literal(params[i])
    out_names: dict[int, str] = {}
    for out_name, i in zip(s.outputs, s.output_ids):
        out_names.setdefault(i, out_name)
    sections = {}
    if s is c and c.meta.get("forward_count") is not None:
        sections[c.meta["forward_count"]] = "/* backward: adjoints v_bar = dJ/dv, last node first */"
    if s is c and c.meta.get("tangent_count") is not None:
        sections[c.meta["tangent_count"]] = "/* tangent: v_dot, the derivative along the direction */"
    ids = p.ops.tolist()
    last = p.last.tolist()
    # Parts of PART_SIZE statements, a loop site closing one: each loop runs between the
    # parts, after the nodes of its arguments and before those that read its result.
    part_of, loop_at = _parts(ids, [site["start"] for site in p.loops])
    outputs = set(s.output_ids)
    parts: list[list[str]] = []
    body: list[str] = ["/* forward */"] if sections else []
    kinds = p.op_names
    # sin and cos of one operand in one part are one call (their gradients make such pairs):
    # the first of the two computes both, with one range reduction.
    partner: dict[int, int] = {}
    unpaired: dict[tuple, int] = {}
    for k, i in enumerate(ids):
        if kinds[k] in ("sin", "cos"):
            other = unpaired.pop((args[i][0], part_of[i], "cos" if kinds[k] == "sin" else "sin"),
                                 None)
            if other is None:
                unpaired.setdefault((args[i][0], part_of[i], kinds[k]), i)
            else:
                partner[other], partner[i] = i, other
    for k, i in enumerate(ids):
        for start in sorted(x for x in sections if x <= i):
            body.append(sections.pop(start))
        # An argument of this part is a local; one from another part (or an input) is read
        # from its register.
        names = [operand.get(a) or (f"v{a}" if part_of.get(a) == part_of[i] else
                                    f"R({reg[a]})") for a in args[i] if a >= 0]
        literal = [a in operand for a in args[i] if a >= 0]
        label = s.name(i) or out_names.get(i)
        note = f"  /* {_comment(label)} */" if label else ""
        if i not in partner:
            body.append(f"const cg_v v{i} = {c_vector_expression(kinds[k], names, literal)};"
                        f"{note}")
        elif partner[i] > i:  # the first of a pair: both values
            j = partner[i]
            sin, cos = (i, j) if kinds[k] == "sin" else (j, i)
            label_j = s.name(j) or out_names.get(j)
            note = f"  /* {_comment(label or f'v{i}')}, {_comment(label_j or f'v{j}')} */" \
                if label or label_j else ""
            body.append(f"cg_v v{sin}, v{cos};  /* sin and cos of one operand: one call */")
            body.append(f"cgv_sincos(w, {names[0]}, &v{sin}, &v{cos});{note}")
        if i in outputs or part_of.get(last[i], -1) != part_of[i]:
            body.append(f"R({reg[i]}) = v{i};")  # read by a later part, or an output
        if k + 1 < len(ids) and part_of[ids[k + 1]] != part_of[i]:
            parts.append(body)
            body = []
    if body or not parts:
        parts.append(body)
    loop_code, loop_ops = _loop_functions(name, p, reg, params) if p.loops else ([], [])
    nin, nout = len(p.in_ids), len(p.out_ids)
    input_names = [_comment(n) for n in _entry_names(c, "inputs")]
    output_names = [_comment(n) for n in _entry_names(c, "outputs")]
    lines = [
        f"/* {name}({', '.join(_comment(n) for n in c.inputs)}) -> "
        f"{', '.join(_comment(n) for n in c.outputs)}",
        f"   generated by circuitgrad's to_c from a circuit of {len(c)} nodes"
        f" ({len(ids)} scalar operations, {p.nregs} registers"
        + (f", {len(p.loops)} loops" if p.loops else "") + ").",
        f"   Entry points: int {name}_eval(const double *in, double *out, long npoints);",
        f"   int {name}_eval_threads(const double *in, double *out, long npoints, int threads);",
        f"   in: double[npoints][{nin}], out: double[npoints][{nout}], row-major; they return 0,",
        "   or 1 where the registers could not be allocated. Compile without -ffast-math and",
        "   with -ffp-contract=off: the values are then those of circuitgrad's NumPy lowering.",
        *_width_note(width),
        "   -pthread for the threads (-DCG_NO_THREADS: none; the values are the same bits for",
        "   any thread count). */",
        "#include <stdlib.h>",
        PRELUDE.rstrip(),
        "",
        c_vector_helpers(p.op_names + loop_ops + (["sincos"] if partner else []), width),
        "",
        f"#define LANES {LANES}  /* points per chunk */",
        "#define CG_G (LANES / CG_W)  /* vectors per chunk */",
        "#define R(k) q[(k) * CG_G]  /* register k of the vector at q */",
        "#define CG_EACH for (l = 0; l < n * CG_W; l++)  /* each lane of the chunk's vectors */",
        "#define CG_POINT (p0 + (l < m ? l : m - 1))  /* its point (the last again if unused) */",
        "#if defined(__GNUC__)",
        "#define CG_PART static __attribute__((noinline)) void  /* one function per part */",
        "#else",
        "#define CG_PART static void",
        "#endif",
        "",
    ]
    for k, part in enumerate(parts):
        lines += [f"CG_PART {name}_part{k}(cg_v *restrict r, int n, int last)", "{",
                  "    int g, w;",
                  "    for (g = 0; g < n; g++) {  /* each vector of the chunk */",
                  "        cg_v *restrict q = r + g;",
                  "        w = g < n - 1 ? CG_W : last;  /* its lanes in use */"]
        lines += ["        " + line for line in part]
        lines += ["    }", "}", ""]
    lines += loop_code
    lines += [
        f"int {name}_eval(const double *in, double *out, long npoints)",
        "{",
        "    cg_v small[1024 / CG_W];  /* the registers of a chunk, if they fit */",
        f"    long p0, size = {p.nregs}L * CG_G;",
        "    cg_v *r = size <= 1024 / CG_W ? small : CG_ALLOC(size);",
        "    int l, m, n, last;",
        "    if (!r) return 1;",
        "    for (p0 = 0; p0 < npoints; p0 += LANES) {",
        "        m = npoints - p0 < LANES ? (int)(npoints - p0) : LANES;  /* points */",
        "        n = (m + CG_W - 1) / CG_W;  /* vectors */",
        "        last = m - (n - 1) * CG_W;  /* lanes in use in the last vector */",
    ]
    for k, i in enumerate(p.in_ids):
        lines.append(f"        CG_EACH LANE({reg[i]}) = in[CG_POINT * {nin} + {k}];"
                     f"  /* {input_names[k]} */")
    for k in range(len(parts) + 1):
        lines += [f"        {name}_loop{j}(r, n, last);" for j, at in enumerate(loop_at)
                  if at == k and p.loops[j]["result"]]
        if k < len(parts):
            lines.append(f"        {name}_part{k}(r, n, last);")
    for k, i in enumerate(p.out_ids):
        value = operand.get(i, f"LANE({reg[i]})")
        lines.append(f"        for (l = 0; l < m; l++) out[(p0 + l) * {nout} + {k}] = {value};"
                     f"  /* {output_names[k]} */")
    lines += ["    }", "    CG_SCALAR_CODE();", "    if (r != small) free(r);", "    return 0;",
              "}", "", _THREADS.replace("NAME_NIN", str(nin))
              .replace("NAME_NOUT", str(nout)).replace("NAME", name)]
    return "\n".join(lines)


def _parts(ids: list[int], starts: list[int]) -> tuple[dict[int, int], list[int]]:
    """The part of each operation (``PART_SIZE`` to a part, a new part after each loop site
    of ``starts``) and, for each site, the number of parts before it."""
    part_of: dict[int, int] = {}
    loop_at = [0] * len(starts)
    part, count, site = 0, 0, 0
    for i in ids:
        while site < len(starts) and starts[site] < i:
            if count:
                part, count = part + 1, 0
            loop_at[site] = part
            site += 1
        if count == PART_SIZE:
            part, count = part + 1, 0
        part_of[i] = part
        count += 1
    for rest in range(site, len(starts)):
        loop_at[rest] = part + 1 if count else part
    return part_of, loop_at


def _loop_functions(name: str, p: ScalarProgram, reg: list[int],
                    params: list[Any]) -> tuple[list[str], list[str]]:
    """The C of ``p``'s loop sites: each distinct body once, as a function of its inputs'
    vectors ``a`` giving its outputs' ``o``, and each site a function that runs it ``length``
    times over the registers of the chunk (the carries in ``a``, the xs read and the ys and
    saved carries written at their registers); and the ops the bodies use."""
    lines: list[str] = []
    bodies: dict[str, tuple[int, ScalarProgram]] = {}
    ops: list[str] = []
    tables = 0

    def at(regs: list[int], index: str) -> str:
        """The register of entry ``index`` of ``regs``: ``base + index`` for a run."""
        nonlocal tables
        if not regs:
            return "0"
        if regs[-1] - regs[0] == len(regs) - 1 and (
                len(regs) < 3 or bool(np.all(np.diff(regs) == 1))):
            return f"{regs[0]} + {index}" if regs[0] else index
        table = f"{name}_reg{tables}"
        tables += 1
        lines.append(f"static const int {table}[{len(regs)}] = {{{', '.join(map(str, regs))}}};")
        return f"{table}[{index}]"

    for j, site in enumerate(p.loops):
        prm = site["params"]
        body, length, reverse, save = prm["body"], prm["length"], prm["reverse"], prm["save"]
        if body.digest not in bodies:
            bodies[body.digest] = (len(bodies), _body_function(name, len(bodies), body, lines,
                                                               ops))
        number, bp = bodies[body.digest]
        k, m = body.carries, body.xs
        carry_shapes, x_shapes, closure_shapes, y_shapes = body.shapes()
        size = [int(np.prod(x)) for x in carry_shapes + x_shapes + closure_shapes]
        ysize = [int(np.prod(y)) for y in y_shapes]
        cols = np.cumsum([0] + size).tolist()  # each leaf's first column of the body's input
        ncarry = cols[k]
        nout = ncarry + sum(ysize)
        ycols = (ncarry + np.cumsum([0] + ysize)).tolist()
        args = [[reg[i] for i in group] for group in site["args"]]
        result = [reg[i] for i in site["result"]]
        offsets = [offset for offset, _ in layout(body, length, save)]
        code = [f"CG_PART {name}_loop{j}(cg_v *restrict r, int n, int last)", "{",
                "    int g, w;", "    long s, t, e;",
                f"    cg_v a[{max(cols[-1], 1)}], o[{max(nout, 1)}];  /* the body's inputs, "
                "outputs */",
                "    for (g = 0; g < n; g++) {  /* each vector of the chunk */",
                "        cg_v *restrict q = r + g;",
                "        w = g < n - 1 ? CG_W : last;  /* its lanes in use */"]
        constants = sorted({i for group in site["args"] for i in group
                            if p.circuit._ops[i] == "const"})
        for i in constants:  # (a constant's register is its own, written here only)
            code.append(f"        R({reg[i]}) = CG_C({c_literal(params[i])});  /* a constant "
                        "argument */")
        for leaf in list(range(k)) + list(range(k + m, len(size))):
            code.append(f"        for (e = 0; e < {size[leaf]}; e++) a[{cols[leaf]} + e] = "
                        f"R({at(args[leaf], 'e')});  /* {'carry' if leaf < k else 'closure'} "
                        f"{leaf if leaf < k else leaf - k - m} */")
        step = f"{length - 1} - s" if reverse else "s"
        code += [f"        for (s = 0; s < {length}; s++) {{  /* each step */",
                 f"            t = {step};"]
        if save:
            for leaf in range(k):
                first = offsets[k + len(ysize) + leaf]
                code.append(f"            for (e = 0; e < {size[leaf]}; e++) "
                            f"R({at(result[first:first + length * size[leaf]], f't * {size[leaf]} + e')})"
                            f" = a[{cols[leaf]} + e];  /* saved carry {leaf} */")
        for x in range(m):
            leaf = k + x
            code.append(f"            for (e = 0; e < {size[leaf]}; e++) a[{cols[leaf]} + e] = "
                        f"R({at(args[leaf], f't * {size[leaf]} + e')});  /* x {x} */")
        code.append(f"            {name}_body{number}(w, a, o);")
        if ncarry:
            code.append(f"            for (e = 0; e < {ncarry}; e++) a[e] = o[e];")
        for y, n_y in enumerate(ysize):
            first = offsets[k + y]
            code.append(f"            for (e = 0; e < {n_y}; e++) "
                        f"R({at(result[first:first + length * n_y], f't * {n_y} + e')}) = "
                        f"o[{ycols[y]} + e];  /* y {y} */")
        code.append("        }")
        if ncarry:
            code.append(f"        for (e = 0; e < {ncarry}; e++) R({at(result[:ncarry], 'e')}) = "
                        "a[e];  /* the final carries */")
        code += ["    }", "}", ""]
        lines += code
    return lines, ops


def _body_function(name: str, number: int, body: Any, lines: list[str],
                   ops: list[str]) -> ScalarProgram:
    """A loop body as ``NAME_bodyK(w, a, o)``: its statements over the vectors of its inputs
    ``a`` (carries, x slices, closures, entries row-major) to those of its outputs ``o``; the
    same statements ``to_c`` writes for the body's nodes in an unrolled circuit."""
    if any(op in LOOPS for op in body.circuit.columns.ops):
        raise CircuitError("to_c: a scan inside a scan's body is not written as C yet: use "
                           "cg.to_numpy")
    bp = ScalarProgram(body.circuit, "to_c", c_ops())
    b, args = bp.circuit, bp.args.tolist()
    operand = {i: f"a[{k}]" for k, i in enumerate(bp.in_ids)}
    operand.update({i: c_literal(b._params[i]) for i in bp.const_ids})
    kinds = bp.op_names
    constants = set(bp.const_ids)
    ops += kinds
    code = [f"static void {name}_body{number}(int w, const cg_v *restrict a, cg_v *restrict o)",
            "{", "    (void)w;"]
    for k, i in enumerate(bp.ops.tolist()):
        names = [operand.get(x, f"v{x}") for x in args[i] if x >= 0]
        literal = [x in constants for x in args[i] if x >= 0]
        code.append(f"    const cg_v v{i} = {c_vector_expression(kinds[k], names, literal)};")
    for k, i in enumerate(bp.out_ids):
        value = operand.get(i, f"v{i}")
        code.append(f"    o[{k}] = {f'CG_C({value})' if i in constants else value};")
    lines.extend(code + ["}", ""])
    return bp


def _width_note(width: int) -> list[str]:
    """The header's lines on the vector path of ``width`` points per vector."""
    if width == 1:
        return ["   Plain C, one point at a time (CG_WIDTH 1); link with -lm."]
    return [f"   With {' '.join(isa.width_flags(width))} on x86-64 glibc it runs {width} points per "
            "vector (link", "   with -lm, which brings glibc's vector math); else plain C."]

# The threaded entry point: the batch in one slice per thread (at most 64), each a whole
# number of chunks (LANES points: whole vectors) but the last, run by NAME_eval; the caller's
# thread runs the first slice (and any whose thread could not be started). A point is computed
# in its lane alone, with no reduction across points, so the values are the same bits for any
# thread count.
_THREADS = """\
#if !defined(CG_NO_THREADS)
#include <pthread.h>
typedef struct { const double *in; double *out; long npoints; int status; } NAME_slice;
static void *NAME_run_slice(void *arg)
{
    NAME_slice *s = arg;
    s->status = NAME_eval(s->in, s->out, s->npoints);
    return NULL;
}
#endif
int NAME_eval_threads(const double *in, double *out, long npoints, int threads)
{
#if !defined(CG_NO_THREADS)
    NAME_slice slice[64];
    pthread_t id[64];
    long chunks = (npoints + LANES - 1) / LANES, per, t;
    unsigned long long started = 0;  /* the slices run by a thread of their own */
    int status = 0;
    if (threads > 64) threads = 64;
    if (threads > chunks) threads = (int)chunks;
    if (threads <= 1) return NAME_eval(in, out, npoints);
    per = (chunks + threads - 1) / threads * LANES;  /* points per slice: threads * per >= npoints */
    for (t = 0; t < threads && t * per < npoints; t++) {
        slice[t].in = in + t * per * NAME_NIN;
        slice[t].out = out + t * per * NAME_NOUT;
        slice[t].npoints = npoints - t * per < per ? npoints - t * per : per;
        slice[t].status = 0;
        if (t > 0 && pthread_create(&id[t], NULL, NAME_run_slice, &slice[t])) {
            slice[t].status = NAME_eval(slice[t].in, slice[t].out, slice[t].npoints);
            continue;  /* no thread: this one runs it */
        }
        if (t > 0) started |= 1ULL << t;
    }
    NAME_run_slice(&slice[0]);
    while (--t >= 0) {
        if (started >> t & 1) pthread_join(id[t], NULL);
        status |= slice[t].status;
    }
    return status;
#else
    (void)threads;
    return NAME_eval(in, out, npoints);
#endif
}
"""


def _entry_names(c: Circuit, which: str) -> list[str]:
    """The names of the flat columns: ``x`` for a scalar, ``W[0][1]`` for an entry."""
    names = c.inputs if which == "inputs" else c.outputs
    ids = c.input_ids if which == "inputs" else c.output_ids
    columns = []
    for name, i in zip(names, ids):
        shape = c.shape(i)
        if not shape:
            columns.append(name)
        else:
            columns += [name + "".join(f"[{k}]" for k in index) for index in np.ndindex(shape)]
    return columns


def _compiler() -> str:
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if candidate and shutil.which(candidate):
            return candidate
    raise CircuitError("to_c: no C compiler found (set $CC, or install one: apt-get install "
                       "gcc); cg.to_tape(c) runs the same circuit with no compiler")


def _host_has_vectors() -> bool:
    """Whether this machine runs a vector path (x86-64, glibc's libmvec): widths above 1."""
    return isa.host_widths()[0] > 1


def _width(vectors: bool | None, width: int | None) -> int:
    """The width asked by ``to_c``'s ``vectors`` and ``width`` (see :func:`to_c`)."""
    if width is not None:
        if vectors is False and width != 1:
            raise CircuitError(f"to_c: vectors=False is plain C (width 1), not width={width}")
        return isa.check_width(width)
    if vectors is None:
        return isa.default_width()
    if not vectors:
        return 1
    if not _host_has_vectors():
        raise CircuitError("to_c: vectors=True needs an x86-64 host with AVX-512, AVX2 or "
                           "SSE4.1 and glibc's vector math (libmvec); this one has not: use "
                           "vectors=None")
    return isa.default_width() if isa.default_width() > 1 else isa.host_widths()[0]


def vector_flags(vectors: bool | None = None, width: int | None = None) -> list[str]:
    """The flags that turn on the source's vector path at the width asked (see :func:`to_c`):
    ``-mavx512f`` for 8 points per vector, ``-mavx2`` for 4, ``-msse4.1`` for 2, none for 1."""
    return isa.width_flags(_width(vectors, width))


def compile_flags(opt: str = OPT, vectors: bool | None = None,
                  width: int | None = None) -> list[str]:
    """The compiler's flags for ``to_c``'s libraries on this machine (part of the cache key)."""
    return [opt, *[f for f in C_FLAGS if not f.startswith("-O")],
            *vector_flags(vectors, width), "-pthread", "-shared"]


def compile_library(source: str, opt: str = OPT, timeout: float = COMPILE_TIMEOUT,
                    vectors: bool | None = None,
                    width: int | None = None) -> tuple[Path, ctypes.CDLL]:
    """The shared library of ``source`` and its path, compiled (in its own process group,
    killed after ``timeout`` seconds) or found in the cache by the hash of source, compiler,
    flags and the ISA (:func:`~circuitgrad.lower.isa.isa_tag`), and verified before it is
    loaded (``circuitgrad.lower.cache``)."""
    cc = _compiler()
    w = _width(vectors, width)
    flags = compile_flags(opt, width=w)
    key = hashlib.sha256("\0".join([source, cc, *flags, isa.isa_tag(w)]).encode()
                         ).hexdigest()[:32]

    def build(built: Path) -> None:
        src = built.with_suffix(".c")
        src.write_text(source)
        proc = subprocess.Popen([cc, *flags, "-o", str(built), str(src), "-lm"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, text=True)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise CircuitError(f"to_c: {cc} did not finish within {timeout:g} s; use "
                               f"cg.to_tape(c) (no compile step), or to_c(..., opt='-O0'), "
                               f"or a longer timeout=") from None
        if proc.returncode:
            tail = "\n".join(err.strip().splitlines()[-8:])
            raise CircuitError(f"to_c: {cc} failed (exit {proc.returncode}):\n{tail}")

    return load_library(key, build)


WORK_PER_THREAD = 200_000
"""Scalar operations (points × operations) a thread gets at least: ~0.25 ms of work at 8 points
per vector here (1.25 ns per point and operation), where a thread's start and join cost 18 µs
at best (pthread_create and pthread_join, best of 2,000)."""


def default_threads() -> int:
    """The threads a batch is split over by default: ``$CIRCUITGRAD_THREADS``, else the
    cores this process may run on (its affinity), else ``os.cpu_count()``."""
    asked = os.environ.get("CIRCUITGRAD_THREADS")
    if asked:
        if not asked.strip().isdigit() or int(asked) < 1:
            raise CircuitError(f"to_c: $CIRCUITGRAD_THREADS={asked!r}: give a count of at "
                               "least 1")
        return int(asked)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class CFunction(CompiledFunction):
    """A circuit compiled to C: call it as a :class:`~circuitgrad.NumpyFunction`.

    Attributes:
        source: the C source (self-contained; the entry points are ``NAME_eval`` and
            ``NAME_eval_threads``).
        library: the path of the compiled shared library (in the cache).
        circuit: the circuit it was made from.
        width: points per vector (8, 4, 2; 1: plain C).
        threads: the most threads a batch is split over (settable; the values are the same
            bits for any count).
    """

    def __init__(self, c: Circuit, name: str = "f", opt: str = OPT,
                 timeout: float = COMPILE_TIMEOUT, csr: bool = True,
                 vectors: bool | None = None, width: int | None = None,
                 threads: int | None = None):
        program = ScalarProgram(c, "to_c", c_ops(), loops=True)
        super().__init__(c, program, name, csr)
        self._asked = (vectors, width)  # what a pickle asks again on the host that loads it
        self.width = _width(vectors, width)
        self.threads = default_threads() if threads is None else threads
        self._threads_asked = threads  # None: the cores of the process that calls
        self._opt, self._timeout = opt, timeout
        self.source = c_source(c, name, program, self.width)
        self.library, lib = compile_library(self.source, opt, timeout, width=self.width)
        fn = getattr(lib, f"{name}_eval")
        fn.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long)
        fn.restype = ctypes.c_int
        mt = getattr(lib, f"{name}_eval_threads")
        mt.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, ctypes.c_int)
        mt.restype = ctypes.c_int
        self._lib, self._fn, self._fn_threads = lib, fn, mt
        self._address = ctypes.cast(fn, ctypes.c_void_p).value
        self._work = max(len(program.ops) + sum(
            site["params"]["length"] * site["params"]["body"].size for site in program.loops), 1)

    @property
    def threads(self) -> int:
        """The most threads a batch is split over (settable; the same bits for any count)."""
        return self._threads

    @threads.setter
    def threads(self, count: int) -> None:
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise CircuitError(f"to_c: threads={count!r}: give a count of at least 1 (None at "
                               "to_c: the cores of this process)")
        self._threads = self._threads_asked = int(count)

    def _evaluate(self, inputs: np.ndarray, npoints: int) -> np.ndarray:
        out = np.empty((npoints, self._nout))
        threads = min(self.threads, npoints * self._work // WORK_PER_THREAD)
        if threads > 1:  # ctypes releases the GIL; its ~5 µs is nothing beside the batch
            status = self._fn_threads(inputs.ctypes.data, out.ctypes.data, npoints, threads)
        elif _tape is not None:  # the tape extension's call: a fraction of ctypes' overhead
            _tape.call(self._address, inputs, out, npoints)
            status = 0
        else:
            status = self._fn(inputs.ctypes.data, out.ctypes.data, npoints)
        if status:
            raise MemoryError("to_c: the compiled circuit could not allocate its registers")
        return out

    def _point(self, args: tuple) -> Any:
        return _tape.call_point(self._address, args, self._nin, self._nout, np.float64,
                                self._Outputs)

    def __reduce__(self):
        # Pickles as the circuit and the arguments asked (width=None: the widest of the host
        # that unpickles it); unpickling finds the library in the cache (or rebuilds it).
        return (_rebuild, (self.circuit, self._name, self._opt, self._timeout,
                           self._csr is not None, *self._asked, self._threads_asked))

    def write(self, stem: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``stem.c`` (the source, self-contained) and ``stem.h`` (the entry points'
        prototypes, the columns of ``in`` and ``out`` and the flags, in its comment) for a C
        program that embeds the function (docs/compiled.md, "Calling it from C").
        Returns the two paths.

            >>> import circuitgrad as cg, tempfile, pathlib
            >>> f = cg.to_c(cg.parse("f = x * y"), name="mul")
            >>> c, h = f.write(pathlib.Path(tempfile.mkdtemp()) / "mul")
            >>> [line for line in h.read_text().splitlines() if line.startswith("int")]
            ['int mul_eval(const double *in, double *out, long npoints);', \
'int mul_eval_threads(const double *in, double *out, long npoints, int threads);']
        """
        stem = Path(stem)
        source, header = stem.with_name(stem.name + ".c"), stem.with_name(stem.name + ".h")
        source.write_text(self.source)
        header.write_text(c_header(self.circuit, self._name, self.width, self._opt,
                                   source.name))
        return source, header


def c_header(c: Circuit, name: str, width: int, opt: str = OPT, source: str = "") -> str:
    """The header of ``to_c``'s source for ``c`` (:meth:`CFunction.write`): the ABI in its
    comment, ``NAME_NIN``, ``NAME_NOUT``, ``NAME_IN_x`` / ``NAME_OUT_f`` (the first column of
    each input and output named by a C identifier) and the two prototypes; ``source``: the
    file the build line names (default ``NAME.c``)."""
    flags = [f for f in compile_flags(opt, width=width) if f != "-shared"]
    lines = [f"/* {name}: {_comment(', '.join(c.inputs))} -> {_comment(', '.join(c.outputs))},"
             f" compiled by circuitgrad's to_c ({width} points per vector).",
             "",
             f"   int {name}_eval(const double *in, double *out, long npoints);",
             f"   int {name}_eval_threads(const double *in, double *out, long npoints, "
             "int threads);",
             "",
             f"   in is double[npoints][{name}_NIN], out double[npoints][{name}_NOUT], row-major:"
             " one row per point,",
             "   the inputs' (outputs') entries one after the other in the order below, a tensor's"
             " entries",
             "   in row-major (C) order. Both return 0, or 1 where the registers could not be "
             "allocated.",
             f"   {name}_eval_threads splits the points over at most `threads` POSIX threads "
             "(at most 64;",
             "   1 or fewer: the caller's thread alone); the values are the same bits for any "
             "count. Both",
             "   are reentrant: every call allocates its own registers (on the stack where "
             "they fit).",
             "",
             "   Build the .c with these flags (no -ffast-math; -ffp-contract=off keeps the "
             "values",
             "   within circuitgrad's contract with its NumPy lowering), and link with -lm; the"
             " width's flag",
             "   (-mavx512f, -mavx2, -msse4.1) needs a CPU that runs it (without it the source "
             "is plain C,",
             "   the same statements), -DCG_NO_THREADS builds it without POSIX threads:",
             f"       cc {' '.join(flags)} -c {source or name + '.c'}",
             ""]
    defines = []
    for which, names, ids in (("in", c.inputs, c.input_ids), ("out", c.outputs, c.output_ids)):
        lines.append(f"   columns of {which}:")
        first = 0
        for label, i in zip(names, ids):
            shape = c.shape(i)
            size = int(np.prod(shape))
            span = f"{first}" if size == 1 else f"{first}..{first + size - 1}"
            lines.append(f"     {span:>12}  {_comment(label)}"
                         + (f", shape {shape}, row-major" if shape else ""))
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", label):
                defines.append(f"#define {name}_{which.upper()}_{label} {first}")
            first += size
    guard = f"CIRCUITGRAD_{name.upper()}_H"
    lines += ["*/", f"#ifndef {guard}", f"#define {guard}", "",
              f"#define {name}_NIN {len(_entry_names(c, 'inputs'))}",
              f"#define {name}_NOUT {len(_entry_names(c, 'outputs'))}",
              f"#define {name}_WIDTH {width}  /* points per vector it was made for */",
              *defines, "", "#ifdef __cplusplus", 'extern "C" {', "#endif",
              f"int {name}_eval(const double *in, double *out, long npoints);",
              f"int {name}_eval_threads(const double *in, double *out, long npoints, "
              "int threads);",
              "#ifdef __cplusplus", "}", "#endif", f"#endif  /* {guard} */", ""]
    return "\n".join(lines)


def _rebuild(c, name, opt, timeout, csr, vectors, width, threads):
    return to_c(c, name, opt, timeout, csr, vectors, width=width, threads=threads, fused=False)


def to_c(c: Circuit, name: str = "f", opt: str = OPT,
         timeout: float = COMPILE_TIMEOUT, csr: bool = True,
         vectors: bool | None = None, width: int | None = None,
         threads: int | None = None, fused: bool | None = None) -> Any:
    """Lower a circuit to C, compile it (or load it from the cache) and return a callable.

    Args:
        c: the circuit (scalar or tensor; tensor nodes are expanded with ``scalarize``; a
            loop, ``scan``, is a C loop over its body, the body written once).
        name: the prefix of the C functions (a C identifier).
        opt: the optimization flag (default ``-Og``: docs/compiled.md measures the others).
        timeout: seconds the compiler may take; it is killed after that.
        csr: sparse Jacobian or Hessian outputs as ``scipy.sparse.csr_array``, as ``to_tape``.
        vectors: ``False``: plain C (width 1); ``True``: vectors, refused where the host has
            none; ``None``: as ``width``.
        width: points per vector: 8 (AVX-512), 4 (AVX2), 2 (SSE4.1), 1 (plain C); None: the
            widest the host runs (``$CIRCUITGRAD_VECTOR_WIDTH``, ``$CIRCUITGRAD_NO_VECTORS``
            override it). Values are within the same contract at every width.
        threads: the most threads a batch is split over (None: ``$CIRCUITGRAD_THREADS``, else
            the cores this process may use); a batch gets a thread per
            ``WORK_PER_THREAD`` scalar operations. The values are the same bits for any count.
        fused: a tensor circuit as ``to_fused``'s NumPy calls and fused C loops (``True``) or
            expanded to scalar code (``False``); ``None`` chooses by size: fused where
            ``scalar_size(c)`` exceeds :data:`SCALAR_LIMIT` (4096), so a compile never runs for
            minutes. ``repr`` says which it is.

    Returns:
        A :class:`CFunction` with ``.source``, called as ``to_numpy``'s callable is (or, for a
        tensor circuit above the limit, a :class:`~circuitgrad.lower.fused.FusedFunction`).

    Raises:
        CircuitError: no C compiler (use ``to_tape``), a compile error or the time limit;
            a width the host does not run; a cache that is not private or a library not the
            one its index recorded (``CacheError``, docs/compiled.md "The cache").

    >>> import circuitgrad as cg
    >>> float(cg.to_c(cg.parse("log(x) + 1/y"))(x=0.0, y=2.0))
    -inf
    """
    c = as_circuit(c, "to_c")
    if c.meta.get("guards") is not None:  # checked first, on every call
        return guarded(c, to_c, name=name, opt=opt, timeout=timeout, csr=csr, vectors=vectors,
                       width=width, threads=threads, fused=fused)
    if fused is None:
        tensor = any(c.shape(i) for i in range(len(c)))
        fused = tensor and scalar_size(c) > SCALAR_LIMIT  # (a loop: its body's size, once)
    if fused:
        return TENSOR_LOWERING[0](c, name, timeout=timeout, csr=csr)
    with no_gc():
        return CFunction(c, name, opt, timeout, csr, vectors, width, threads)
