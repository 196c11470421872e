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
fdlibm's, in vector operations of any width, their polynomials with fused multiply-add at 8
and 4 lanes, with libm's scalar function for the lanes out of their range); the others run lane by lane with libm's scalar function. Measured by
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
The flags are chosen in Python (:func:`compile_flags`: the width's, ``-mavx512f``, ``-mavx2
-mfma`` or ``-msse4.1``, only where the host runs it; ``$CIRCUITGRAD_NO_VECTORS=1`` compiles the plain
C path) and, with the width and the ISA (:func:`~circuitgrad.lower.isa.isa_tag`), are part of
the cache key.

A loop (``scan``) is a loop site of the scalar program (``scalarize(c, loops=True)``): each
distinct body is written once, as ``static void NAME_bodyK(int w, const cg_v *a, cg_v *o)``
(its statements over the vectors of its inputs and outputs), and each loop as a function
``NAME_loopJ`` run between the parts, after its arguments and before what reads its result: a
C ``for`` over the steps that reads the x slices from their registers, calls the body, and
writes the ys and saved carries into the registers of its packed result. A loop inside a
body is a C ``for`` inside that body's function (``NAME_bodyK(w, a, o, x, ix)``: its loops'
registers and scratch given by its caller); a checkpointed adjoint loop walks the binomial
schedule with an explicit stack of tasks, ``checkpoints + 1`` carries in scratch
(:class:`_LoopWriter`). The values are the unrolled circuit's, bit for bit (docs/loops.md).

The entry points are

    ``int NAME_eval(const double *in, double *out, long npoints)``
    ``int NAME_eval_threads(const double *in, double *out, long npoints, int threads)``

with ``in`` float64[npoints, inputs] and ``out`` float64[npoints, outputs] (row-major, tensor
inputs and outputs as their entries in row-major order; they return 0, or 1 where the register
file could not be allocated). The second splits the batch over up to ``threads`` POSIX threads,
each a whole number of chunks (whole vectors), with no reduction across points: the values
are the same bits for any thread count. Next to them, the same loop over the chunks without
the row-major arrays (what ``CFunction`` calls for a batch, so that it copies no input and
writes the outputs where they are returned or into the caller's ``into`` buffers):

    ``int NAME_eval_columns(const double *const *in, const long *in_step,
    double *const *out, const long *out_step, long start, long npoints)``
    ``int NAME_eval_columns_threads(..., long start, long npoints, int threads)``

column ``k`` of the inputs (outputs) of point ``p`` at ``in[k][p * in_step[k]]``
(``out[k][p * out_step[k]]``), steps in doubles (0: one value for every point), for the points
``start`` to ``start + npoints - 1``. It is the one loop over the chunks: ``NAME_eval`` and
``NAME_eval_threads`` call it with the row-major arrays' columns (column ``k`` of ``in`` at
``in + k``, a row of ``inputs`` doubles from one point to the next; their addresses on the
stack up to ``COLUMNS_ON_STACK`` columns, else allocated). ``CFunction`` calls it for a
batch, the GIL released, over one thread per ``WORK_PER_THREAD`` scalar operations. The source needs only
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
import functools
import hashlib
import math
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from ..circuit import Circuit, as_circuit, no_gc
from ..primitives.loops import Body, layout, revolve_cost
from ..errors import CircuitError
from ..transforms.scalarize import scalar_size
from . import isa
from .cache import cache_dir, load_library  # noqa: F401 - cache_dir: public
from .isa import default_width
from .cforms import (C_FLAGS, PRELUDE, c_literal, c_ops, c_vector_expression, c_vector_helpers,
                     sincos_form)
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
SEED_WORK_LIMIT = 32768
"""The most scalars over its seeds (N, the entries of its seed inputs, × ``scalar_size``) a
Jacobian sweep (``meta["jacobian_sweep"]``, as ``jacobian_function`` calls it on N seeds) may
take in ``to_c``'s scalar code: that code computes every node once per seed, the point's
``tanh``, ``exp`` and ``cos`` too, where ``to_fused`` computes a node that does not vary with
the seeds once per point (``tanh(x sin(Σx) + cos x · exp(−x²))`` at n = 100: 120 µs in scalar
C, 44 µs fused, 61 µs ``to_numpy``; at n = 40, 24,000 scalars over the seeds, even). N counts
the identity's rows for compressed seeds too: one sweep circuit, one choice, its bits."""


def _seeds(c: Circuit) -> int:
    """N for a Jacobian sweep (the entries of its seed inputs), else 1."""
    info = c.meta.get("jacobian_sweep")
    if not info:
        return 1
    seeds = set(info["seeds"])
    return max(1, sum(math.prod(c.shape(i)) for name, i in zip(c.inputs, c.input_ids)
                      if name in seeds))


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
    # The sine and cosine of one operand (sin(x), cos(x), the gradient's sin_vjp(bar, x) =
    # bar * cos(x) ...: the records' c_sincos) are computed once, by the first node that reads
    # them, with one range reduction; a later part reads them from registers past the
    # program's (extra[(x, "S")]: the register of x's sine).
    shared = _shared_sincos(ids, kinds, args, part_of, operand, width)
    extra: dict[tuple[int, str], int] = {}
    taken: list[tuple[int, int]] = []  # (the last part reading it, register), soonest first
    nregs = p.nregs
    for x, (first, parts_of, needs) in shared.items():  # in the order of their first nodes
        for which in needs:
            later = [q for q in parts_of[which] if q > part_of[first]]
            if not later:
                continue
            taken.sort()
            if taken and taken[0][0] < part_of[first]:  # no longer read: reused
                extra[(x, which)] = taken.pop(0)[1]
            else:
                extra[(x, which)], nregs = nregs, nregs + 1
            taken.append((max(later), extra[(x, which)]))
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
        form = sincos_form(kinds[k], width)
        x = args[i][form[0]] if form else None
        if x in shared:
            first, _, needs = shared[x]
            if first == i:  # the first node reading them: both (or the one needed)
                if len(needs) == 2:
                    body.append(f"cg_v s{x}, c{x};  /* the sine and cosine of v{x}: one call */")
                    body.append(f"cgv_sincos(w, {names[form[0]]}, &s{x}, &c{x});")
                else:
                    which = needs[0]
                    body.append(f"const cg_v {which.lower()}{x} = "
                                f"cgv_{'sin' if which == 'S' else 'cos'}(w, {names[form[0]]});")
                for which in needs:
                    if (x, which) in extra:
                        body.append(f"R({extra[(x, which)]}) = {which.lower()}{x};"
                                    "  /* for a later part */")
            here = part_of[i] == part_of[first]
            values = {w_: f"{w_.lower()}{x}" if here else f"R({extra[(x, w_)]})" for w_ in "SC"
                      if (x, w_) in extra or here}
            args_of = [f"CG_C({n})" if lit else n for n, lit in zip(names, literal)]
            expr = re.sub(r"\b(a\d|S|C)\b", lambda m: values[m[0]] if m[0] in "SC" else
                          args_of[int(m[0][1:])], form[1])
            body.append(f"const cg_v v{i} = {expr};{note}")
        else:
            body.append(f"const cg_v v{i} = {c_vector_expression(kinds[k], names, literal)};"
                        f"{note}")
        if i in outputs or part_of.get(last[i], -1) != part_of[i]:
            body.append(f"R({reg[i]}) = v{i};")  # read by a later part, or an output
        if k + 1 < len(ids) and part_of[ids[k + 1]] != part_of[i]:
            parts.append(body)
            body = []
    if body or not parts:
        parts.append(body)
    loop_code, loop_ops, failing = _loop_functions(name, p) if p.loops else ([], [], set())
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
        "   or 1 where the registers could not be allocated. And without the row-major arrays:",
        f"   int {name}_eval_columns(const double *const *in, const long *in_step, double *const "
        "*out,",
        "   const long *out_step, long start, long npoints) and _columns_threads(..., int "
        "threads):",
        "   column k of point p at in[k][p * in_step[k]] and out[k][p * out_step[k]]; they "
        "return 0,",
        "   or 1 where the registers could not be allocated. Compile without -ffast-math and",
        "   with -ffp-contract=off: the values are then those of circuitgrad's NumPy lowering.",
        *_width_note(width),
        "   -pthread for the threads (-DCG_NO_THREADS: none; the values are the same bits for",
        "   any thread count). */",
        "#include <stdlib.h>",
        PRELUDE.rstrip(),
        "",
        c_vector_helpers(p.op_names + loop_ops + (["sincos"] if shared else []), width),
        "",
        f"#define LANES {LANES}  /* points per chunk */",
        "#define CG_G (LANES / CG_W)  /* vectors per chunk */",
        "#define R(k) q[(k) * CG_G]  /* register k of the vector at q */",
        "#define CG_EACH for (l = 0; l < n * CG_W; l++)  /* each lane of the chunk's vectors */",
        "#define CG_POINT (p0 + (l < m ? l : m - 1))  /* its point (the last again if unused) */",
        "/* A whole chunk of a column of step 1 is one copy to (from) a register's lanes, which",
        "   lie in order: lane by lane, the stores stall the vector loads that follow. */",
        "#define CG_WHOLE (m == LANES && s == 1)",
        "#define CG_LANES(k) ((double *)r + (k) * LANES)  /* register k's lanes, in order */",
        "#if defined(__GNUC__)",
        "#define CG_COPY(to, from) __builtin_memcpy((to), (from), sizeof(double) * LANES)",
        "#else",
        "#define CG_COPY(to, from) for (l = 0; l < LANES; l++) (to)[l] = (from)[l]",
        "#endif",
        "#if defined(__GNUC__)",
        "#define CG_PART static __attribute__((noinline)) void  /* one function per part */",
        "#else",
        "#define CG_PART static void",
        "#endif",
        *(["#define CG_LOOP static int  /* a loop: 0, or 1 where its scratch could not be "
           "allocated */"] if p.loops else []),
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
    lines += _columns_entry(name, p, nregs, parts, loop_at, failing, operand, input_names,
                            output_names)
    lines += ["", _THREADS.replace("NAME", name)]
    lines += _row_major_entries(name, nin, nout)
    return "\n".join(lines)


COLUMNS_ON_STACK = 256
"""The most columns (inputs + outputs) whose addresses ``NAME_eval`` keeps on the stack (4
KiB of addresses and steps); past it they are allocated (a tensor input of 10⁵ entries)."""


def _row_major_entries(name: str, nin: int, nout: int) -> list[str]:
    """``NAME_eval`` and ``NAME_eval_threads``: the row-major arrays as columns, column ``k``
    of ``in`` at ``in + k`` and ``nin`` doubles from one point to the next (of ``out``: ``out
    + k``, ``nout``), through ``NAME_eval_columns`` (``_threads``): one loop over the chunks
    for both ABIs, the same bits."""
    head = [f"/* {name}_eval and {name}_eval_threads: in is one row of {nin} doubles per point and out",
            f"   one of {nout}: column j of in is read at in + j, one row further for each next point",
            "   (of out: out + j), by the columns' loop. */",
            f"static int {name}_eval_rows(const double *in, double *out, long npoints, int threads)",
            "{"]
    fill = [f"    for (k = 0; k < {nin}; k++) {{ in_col[k] = in + k; step[k] = {nin}; }}",
            f"    for (k = 0; k < {nout}; k++) {{ out_col[k] = out + k; step[{nin} + k] = {nout}; }}"]
    call = (f"threads <= 1 ? {name}_eval_columns(in_col, step, out_col, step + {nin}, 0, npoints)"
            f"\n                        : {name}_eval_columns_threads(in_col, step, out_col, "
            f"step + {nin}, 0, npoints, threads)")
    if nin + nout <= COLUMNS_ON_STACK:  # (initialized, not filled by a loop: the one-point
        # call's few instructions a column, nearly what reading a row cost before)
        body = [*_initialized(f"    const double *in_col[{max(nin, 1)}] = ",
                              [f"in + {k}" for k in range(nin)] or ["0"]),
                *_initialized(f"    double *out_col[{max(nout, 1)}] = ",
                              [f"out + {k}" for k in range(nout)] or ["0"]),
                *_initialized(f"    static const long step[{max(nin + nout, 1)}] = ",
                              [str(nin)] * nin + [str(nout)] * nout or ["0"],
                              "  /* in_step, then out_step */"),
                f"    return {call};"]
    else:  # (a large tensor input: its columns' addresses are allocated, not on the stack)
        body = [f"    const double **in_col = malloc(sizeof *in_col * {nin});",
                f"    double **out_col = malloc(sizeof *out_col * {nout});",
                f"    long *step = malloc(sizeof *step * {nin + nout}), k;  /* in_step, then out_step */",
                "    int status = 1;",
                "    if (in_col && out_col && step) {",
                *["    " + line for line in fill],
                f"        status = {call.replace(chr(10) + ' ' * 24, chr(10) + ' ' * 30)};",
                "    }",
                "    free(in_col);",
                "    free(out_col);",
                "    free(step);",
                "    return status;"]
    return head + body + [
        "}",
        "",
        f"int {name}_eval(const double *in, double *out, long npoints)",
        "{",
        f"    return {name}_eval_rows(in, out, npoints, 1);",
        "}",
        "",
        f"int {name}_eval_threads(const double *in, double *out, long npoints, int threads)",
        "{",
        f"    return {name}_eval_rows(in, out, npoints, threads);",
        "}",
        ""]


def _initialized(head: str, items: list[str], note: str = "") -> list[str]:
    """``head {items};note`` as C lines of at most 96 characters, the items wrapped under
    the first.

        >>> _initialized("    int a[3] = ", ["1", "2", "3"])
        ['    int a[3] = {1, 2, 3};']
    """
    lines, line = [], head + "{"
    for k, item in enumerate(items):
        text = item + ("};" if k == len(items) - 1 else ",")
        if len(line) + 1 + len(text) > 96 and not line.endswith("{"):
            lines.append(line)
            line = " " * (len(head) + 1) + text
        else:
            line += ("" if line.endswith("{") else " ") + text
    return lines + [line + note]


def _columns_entry(name: str, p: ScalarProgram, nregs: int, parts: list, loop_at: list[int],
                   failing: set[int], operand: dict[int, str], input_names: list[str],
                   output_names: list[str]) -> list[str]:
    """``NAME_eval_columns``: ``NAME_eval``'s loop over the chunks, but each input column
    read through its own pointer and step and each output column written through its own
    (points ``start`` to ``start + npoints - 1``): a batch straight from the caller's arrays,
    with no (npoints, inputs) copy, its outputs straight into the caller's. ``nregs``: the
    register file's size (the program's registers and the shared sines and cosines')."""
    reg = p.reg.tolist()
    lines = [
        f"int {name}_eval_columns(const double *const *in, const long *in_step,",
        "                    double *const *out, const long *out_step, long start, long npoints)",
        "{",
        "    cg_v small[1024 / CG_W];  /* the registers of a chunk, if they fit */",
        f"    long p0, end = start + npoints, size = {nregs}L * CG_G;",
        "    cg_v *r = size <= 1024 / CG_W ? small : CG_ALLOC(size);",
        "    int l, m, n, last;",
        "    if (!r) return 1;",
        "    for (p0 = start; p0 < end; p0 += LANES) {",
        "        m = end - p0 < LANES ? (int)(end - p0) : LANES;  /* points */",
        "        n = (m + CG_W - 1) / CG_W;  /* vectors */",
        "        last = m - (n - 1) * CG_W;  /* lanes in use in the last vector */",
    ]
    for k, i in enumerate(p.in_ids):
        lines.append(f"        {{ const double *x = in[{k}]; long s = in_step[{k}]; "
                     f"if (CG_WHOLE) CG_COPY(CG_LANES({reg[i]}), x + p0); "
                     f"else CG_EACH LANE({reg[i]}) = x[CG_POINT * s]; }}  /* {input_names[k]} */")
    for k in range(len(parts) + 1):
        lines += [f"        if ({name}_loop{j}(r, n, last)) {{ if (r != small) free(r); "
                  "return 1; }" if j in failing else f"        {name}_loop{j}(r, n, last);"
                  for j, at in enumerate(loop_at) if at == k and p.loops[j]["result"]]
        if k < len(parts):
            lines.append(f"        {name}_part{k}(r, n, last);")
    for k, i in enumerate(p.out_ids):
        value = operand.get(i, f"LANE({reg[i]})")
        whole = "" if i in operand else f"if (CG_WHOLE) CG_COPY(y, CG_LANES({reg[i]})); else "
        lines.append(f"        {{ double *y = out[{k}] + p0 * out_step[{k}]; long s = out_step[{k}]; "
                     f"{whole}for (l = 0; l < m; l++) y[l * s] = {value}; }}  /* {output_names[k]} */")
    lines += ["    }", "    CG_SCALAR_CODE();", "    if (r != small) free(r);", "    return 0;",
              "}"]
    return lines


def _shared_sincos(ids: list[int], kinds: list[str], args: list[list[int]],
                   part_of: dict[int, int], operand: dict[int, str], width: int) -> dict:
    """The operands whose sine or cosine two or more nodes read (their records' c_sincos,
    where sharing keeps each node's bits: :func:`~circuitgrad.lower.cforms.sincos_form`):
    operand -> (the first such node, {"S" or "C": the parts reading it}, what is read)."""
    readers: dict[int, list[int]] = {}
    for k, i in enumerate(ids):
        form = sincos_form(kinds[k], width)
        if form and args[i][form[0]] >= 0 and args[i][form[0]] not in operand:
            readers.setdefault(args[i][form[0]], []).append(k)
    shared = {}
    for x, ks in readers.items():
        if len(ks) < 2:
            continue
        parts_of: dict[str, list[int]] = {"S": [], "C": []}
        for k in ks:
            for which in set(re.findall(r"\b[SC]\b", sincos_form(kinds[k], width)[1])):
                parts_of[which].append(part_of[ids[k]])
        shared[x] = (ids[ks[0]], parts_of, [w for w in "SC" if parts_of[w]])
    return shared


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


def _site_bodies(params: dict[str, Any]) -> list[Body]:
    """The bodies a loop site calls: its body, and a checkpointed loop's forward body."""
    recompute = params.get("recompute")
    return [params["body"]] + ([recompute] if recompute is not None else [])


def _levels(params: dict[str, Any]) -> int:
    """The carries a checkpointed loop holds at once (its schedule's levels): the initial
    one and at most ``checkpoints`` more, and never more than its steps."""
    return min(params["checkpoints"] + 1, params["length"])


class _LoopWriter:
    """The C of a program's loop sites (``to_c``): each distinct body written once, as a
    function (inner bodies first), and each site as the code that runs it for one vector
    over the registers of the program it belongs to: the top level's (``R(k)``) or a
    body's (``x[k]``: a body with loops keeps its loops' arguments and results in the
    scratch its caller gives it).

    A body without loops is ``NAME_bodyK(w, a, o)``; one with loops
    ``NAME_bodyK(w, a, o, x, ix)``, ``x`` its registers and its loops' scratch (``cg_v``),
    ``ix`` their integers. A checkpointed adjoint loop (params ``recompute``,
    ``checkpoints``) holds its checkpoints in scratch: ``_levels`` carries of the forward
    body and two longs per level for its explicit stack of tasks."""

    def __init__(self, name: str):
        self.name = name
        self.lines: list[str] = []
        self.ops: list[str] = []
        self.tables = 0
        self.bodies: dict[str, tuple[int, bool, tuple[int, int]]] = {}
        """digest -> (number, has loops, scratch: cg_v and longs a call needs)."""
        self.checkpointed = False

    def at(self, regs: list[int], index: str) -> str:
        """The register of entry ``index`` of ``regs``: ``base + index`` for a run, else a
        static table (written before the code that reads it)."""
        if not regs:
            return "0"
        if regs[-1] - regs[0] == len(regs) - 1 and (
                len(regs) < 3 or bool(np.all(np.diff(regs) == 1))):
            return f"{regs[0]} + {index}" if regs[0] else index
        table = f"{self.name}_reg{self.tables}"
        self.tables += 1
        self.lines.append(f"static const int {table}[{len(regs)}] = "
                          f"{{{', '.join(map(str, regs))}}};")
        return f"{table}[{index}]"

    def write_bodies(self, params: dict[str, Any]) -> None:
        """Write the functions of the bodies a site calls, and of the bodies inside them,
        each once, inner ones first (a work list: no recursion over the nesting)."""
        todo = list(_site_bodies(params))
        programs: dict[str, ScalarProgram] = {}
        while todo:
            body = todo[-1]
            if body.digest in self.bodies:
                todo.pop()
                continue
            if body.digest not in programs:
                programs[body.digest] = ScalarProgram(body.circuit, "to_c", c_ops(), loops=True)
            bp = programs[body.digest]
            inner = [b for site in bp.loops for b in _site_bodies(site["params"])
                     if b.digest not in self.bodies]
            if inner:
                todo.extend(inner)
                continue
            todo.pop()
            self._body_function(body, bp)

    def call(self, body: Body, a: str, o: str, x: str, ix: str) -> str:
        number, loops, _ = self.bodies[body.digest]
        return (f"{self.name}_body{number}(w, {a}, {o}, {x}, {ix})" if loops else
                f"{self.name}_body{number}(w, {a}, {o})")

    def scratch(self, params: dict[str, Any]) -> tuple[int, int]:
        """The ``cg_v`` and longs a site needs: its bodies' scratch, and a checkpointed
        loop's checkpoints and stack."""
        need = [self.bodies[b.digest][2] for b in _site_bodies(params)]
        v, i = max(n[0] for n in need), max(n[1] for n in need)
        if params.get("recompute") is not None and params["length"]:
            levels = _levels(params)
            v += levels * _size_of(params["recompute"].shapes()[0])
            i += 2 * levels
        return v, i

    def _body_function(self, body: Body, bp: ScalarProgram) -> None:
        """A loop body as a C function: its statements over the vectors of its inputs ``a``
        (carries, x slices, closures, entries row-major) to those of its outputs ``o``; the
        same statements ``to_c`` writes for the body's nodes in an unrolled circuit, and its
        loops' code between them."""
        name, number = self.name, len(self.bodies)
        b, args = bp.circuit, bp.args.tolist()
        reg = bp.reg.tolist()
        operand = {i: f"a[{k}]" for k, i in enumerate(bp.in_ids)}
        operand.update({i: c_literal(b._params[i]) for i in bp.const_ids})
        kinds = bp.op_names
        constants = set(bp.const_ids)
        self.ops += kinds
        sites = bp.loops
        if not sites:
            code = [f"static void {name}_body{number}(int w, const cg_v *restrict a, "
                    "cg_v *restrict o)", "{", "    (void)w;"]
            stored: set[int] = set()
            scratch = (0, 0)
        else:
            code = [f"static void {name}_body{number}(int w, const cg_v *restrict a, "
                    "cg_v *restrict o, cg_v *restrict x, long *restrict ix)", "{",
                    "    (void)w; (void)ix;",
                    f"    /* x[0 .. {bp.nregs}): the registers of this body's loops' arguments "
                    "and results */"]
            for site in sites:
                for i in site["result"]:
                    operand[i] = f"x[{reg[i]}]"
            stored = {i for site in sites for group in site["args"] for i in group}
            for k, i in enumerate(bp.in_ids):
                if i in stored:
                    code.append(f"    x[{reg[i]}] = a[{k}];  /* read by a loop */")
            need = [self.scratch(site["params"]) for site in sites]
            scratch = (bp.nregs + max(n[0] for n in need), max(n[1] for n in need))
        starts = [site["start"] for site in sites]
        at_site = 0

        def loop_here(j: int) -> None:
            site = sites[j]
            decls, lines = self.site_code(site, bp, lambda e: f"x[{e}]", f"x + {bp.nregs}",
                                          "ix", "la", "lo")
            code.append(f"    {{  /* loop {j} of this body: {_what(site['params'])} */")
            code.extend("        " + line for line in decls + lines)
            code.append("    }")

        for k, i in enumerate(bp.ops.tolist()):
            while at_site < len(sites) and starts[at_site] < i:
                loop_here(at_site)
                at_site += 1
            names = [operand.get(a, f"v{a}") for a in args[i] if a >= 0]
            literal = [a in constants for a in args[i] if a >= 0]
            code.append(f"    const cg_v v{i} = {c_vector_expression(kinds[k], names, literal)};")
            if i in stored:
                code.append(f"    x[{reg[i]}] = v{i};  /* read by a loop */")
        while at_site < len(sites):
            loop_here(at_site)
            at_site += 1
        for k, i in enumerate(bp.out_ids):
            value = operand.get(i, f"v{i}")
            code.append(f"    o[{k}] = {f'CG_C({value})' if i in constants else value};")
        self.lines.extend(code + ["}", ""])
        self.bodies[body.digest] = (number, bool(sites), scratch)

    def site_code(self, site: dict[str, Any], p: ScalarProgram, R: Any, x: str, ix: str,
                  a: str = "a", o: str = "o") -> tuple[list[str], list[str]]:
        """The declarations and the code of one loop site for one vector (``w`` its lanes
        in use): ``R(k)`` a register of the program ``p`` the site belongs to, ``x`` and
        ``ix`` the site's scratch, ``a`` and ``o`` the names of its body's inputs and
        outputs."""
        prm = site["params"]
        if prm.get("recompute") is not None:
            return self._checkpointed_code(site, p, R, x, ix, a, o)
        reg, ops, params = p.reg.tolist(), p.circuit._ops, p.circuit._params
        body, length, reverse, save = prm["body"], prm["length"], prm["reverse"], prm["save"]
        k, m = body.carries, body.xs
        carry_shapes, x_shapes, closure_shapes, y_shapes = body.shapes()
        size = [_size_of([s]) for s in carry_shapes + x_shapes + closure_shapes]
        ysize = [_size_of([y]) for y in y_shapes]
        cols = np.cumsum([0] + size).tolist()  # each leaf's first column of the body's input
        ncarry = cols[k]
        nout = ncarry + sum(ysize)
        ycols = (ncarry + np.cumsum([0] + ysize)).tolist()
        args = [[reg[i] for i in group] for group in site["args"]]
        result = [reg[i] for i in site["result"]]
        offsets = [offset for offset, _ in layout(body, length, save)]
        decls = ["long s, t, e;",
                 f"cg_v {a}[{max(cols[-1], 1)}], {o}[{max(nout, 1)}];  /* the body's inputs, "
                 "outputs */"]
        code = []
        for i in sorted({i for group in site["args"] for i in group if ops[i] == "const"}):
            code.append(f"{R(reg[i])} = CG_C({c_literal(params[i])});  /* a constant "
                        "argument */")
        for leaf in list(range(k)) + list(range(k + m, len(size))):
            code.append(f"for (e = 0; e < {size[leaf]}; e++) {a}[{cols[leaf]} + e] = "
                        f"{R(self.at(args[leaf], 'e'))};  /* "
                        f"{'carry' if leaf < k else 'closure'} "
                        f"{leaf if leaf < k else leaf - k - m} */")
        step = f"{length - 1} - s" if reverse else "s"
        code += [f"for (s = 0; s < {length}; s++) {{  /* each step */", f"    t = {step};"]
        if save:
            for leaf in range(k):
                first = offsets[k + len(ysize) + leaf]
                regs = result[first:first + length * size[leaf]]
                code.append(f"    for (e = 0; e < {size[leaf]}; e++) "
                            f"{R(self.at(regs, f't * {size[leaf]} + e'))} = {a}[{cols[leaf]} "
                            f"+ e];  /* saved carry {leaf} */")
        for j in range(m):
            leaf = k + j
            code.append(f"    for (e = 0; e < {size[leaf]}; e++) {a}[{cols[leaf]} + e] = "
                        f"{R(self.at(args[leaf], f't * {size[leaf]} + e'))};  /* x {j} */")
        code.append(f"    {self.call(body, a, o, x, ix)};")
        if ncarry:
            code.append(f"    for (e = 0; e < {ncarry}; e++) {a}[e] = {o}[e];")
        for y, n_y in enumerate(ysize):
            first = offsets[k + y]
            code.append(f"    for (e = 0; e < {n_y}; e++) "
                        f"{R(self.at(result[first:first + length * n_y], f't * {n_y} + e'))} = "
                        f"{o}[{ycols[y]} + e];  /* y {y} */")
        code.append("}")
        if ncarry:
            code.append(f"for (e = 0; e < {ncarry}; e++) {R(self.at(result[:ncarry], 'e'))} = "
                        f"{a}[e];  /* the final carries */")
        return decls, code

    def _checkpointed_code(self, site: dict[str, Any], p: ScalarProgram, R: Any, x: str,
                           ix: str, a: str, o: str) -> tuple[list[str], list[str]]:
        """A checkpointed adjoint loop for one vector: the binomial schedule of
        ``_checkpointed_function`` (primitives/loops.py) with an explicit stack of tasks
        (steps ``[ta[d], tb[d])`` to reverse from the carry of level ``d``, which has
        ``checkpoints - d`` free checkpoints left: the tasks' levels are 0, 1 ... top, so
        level ``d`` holds its carry in checkpoint ``d``), the forward body advancing a copy
        of a checkpoint, the adjoint body stepping back."""
        self.checkpointed = True
        name = self.name
        reg, ops, params = p.reg.tolist(), p.circuit._ops, p.circuit._params
        prm = site["params"]
        body, forward = prm["body"], prm["recompute"]
        length, reverse, most = prm["length"], prm["reverse"], prm["checkpoints"]
        ka, k, m, xa, r = body.carries, forward.carries, forward.xs, body.xs, body.closures
        if forward.closures != r or xa < k + m:
            raise CircuitError("internal error: to_c found a checkpointed adjoint loop whose "
                               "bodies do not match; please report it")
        if length >= 2 ** 31:
            raise CircuitError(f"to_c: a checkpointed loop of {length} steps: at most 2**31 - 1 "
                               "(cg.to_numpy runs it)")
        carry_shapes, x_shapes, closure_shapes, y_shapes = body.shapes()
        size = [_size_of([s]) for s in carry_shapes + x_shapes + closure_shapes]
        cols = np.cumsum([0] + size).tolist()
        f_carries, f_xs, f_closures, f_ys = forward.shapes()
        fsize = [_size_of([s]) for s in f_carries + f_xs + f_closures]
        fcols = np.cumsum([0] + fsize).tolist()
        ysize = [_size_of([y]) for y in y_shapes]
        nca = cols[ka]  # the adjoint's carry scalars
        K = fcols[k]  # the forward carry's scalars: one checkpoint
        nout = nca + sum(ysize)
        fnout = K + sum(_size_of([y]) for y in f_ys)
        ycols = (nca + np.cumsum([0] + ysize)).tolist()
        args = [[reg[i] for i in group] for group in site["args"]]
        result = [reg[i] for i in site["result"]]
        offsets = [offset for offset, _ in layout(body, length, False)]
        levels = _levels(prm) if length else 0
        fa, fo = f"f{a}", f"f{o}"
        inner_x, inner_ix = f"{x} + {levels * K}", f"{ix} + {2 * levels}"

        def step(v: str) -> str:  # forward step number v as the loop's t
            return v if reverse else f"{length - 1} - {v}"

        # (no steps: no schedule, and no scratch, so neither x nor ix is there to read)
        decls = ["long s, t, e, start, stop, mid = 0, p, d, top, split;",
                 "long fsteps, asteps, held;  /* what the schedule did */"] if length else [
                 "long e;"]
        decls += [f"cg_v {a}[{max(cols[-1], 1)}], {o}[{max(nout, 1)}];  /* the adjoint body's "
                  "inputs, outputs */",
                  f"cg_v {fa}[{max(fcols[-1], 1)}], {fo}[{max(fnout, 1)}];  /* the forward "
                  "body's */"]
        decls += ["cg_v *cp;", "long *ta, *tb;"] if length else []
        code = [f"cp = {x};  /* checkpoint d: cp[d * {K} ...], {levels} of them */",
                f"ta = {ix}; tb = {ix} + {levels};  /* the tasks' steps */",
                "fsteps = asteps = held = 0;"] if length else []
        for i in sorted({i for group in site["args"] for i in group if ops[i] == "const"}):
            code.append(f"{R(reg[i])} = CG_C({c_literal(params[i])});  /* a constant "
                        "argument */")
        for leaf in range(ka):
            code.append(f"for (e = 0; e < {size[leaf]}; e++) {a}[{cols[leaf]} + e] = "
                        f"{R(self.at(args[leaf], 'e'))};  /* carry {leaf} */")
        for j in range(r):
            leaf = ka + xa + j
            code.append(f"for (e = 0; e < {size[leaf]}; e++) {a}[{cols[leaf]} + e] = "
                        f"{fa}[{fcols[k + m + j]} + e] = {R(self.at(args[leaf], 'e'))};  "
                        f"/* closure {j} */")
        if length:
            for j in range(k):
                code.append(f"for (e = 0; e < {fsize[j]}; e++) cp[{fcols[j]} + e] = "
                            f"{R(self.at(args[ka + j], 'e'))};  /* the initial carry {j}: "
                            "checkpoint 0 */")
            code += [f"ta[0] = 0; tb[0] = {length}; top = 0;",
                     "while (top >= 0) {  /* each task: reverse steps [start, stop) from "
                     "checkpoint d */",
                     "    start = ta[top]; stop = tb[top]; d = top--;",
                     "    if (d + 1 > held) held = d + 1;",
                     f"    split = stop - start > 1 && d < {most};  /* a free checkpoint: store one "
                     "on the way */",
                     "    if (split) {",
                     f"        mid = start + {name}_revolve_split(stop - start, {most} - d);",
                     "        tb[d] = mid; ta[d + 1] = mid; tb[d + 1] = stop; top = d + 1;"
                     "  /* [start, mid) after [mid, stop) */",
                     "    }",
                     "    for (p = split ? mid : stop - 1; p >= start; p--) {  /* each step back, "
                     "last first (a split: one advance) */",
                     f"        for (e = 0; e < {K}; e++) {fa}[e] = cp[d * {K} + e];",
                     "        for (s = start; s < p; s++) {  /* advance to step p */",
                     f"            t = {step('s')};"]
            for j in range(m):
                leaf = k + j
                code.append(f"            for (e = 0; e < {fsize[leaf]}; e++) "
                            f"{fa}[{fcols[leaf]} + e] = "
                            f"{R(self.at(args[ka + k + j], f't * {fsize[leaf]} + e'))};  "
                            f"/* x {j} */")
            code += [f"            {self.call(forward, fa, fo, inner_x, inner_ix)};",
                     f"            for (e = 0; e < {K}; e++) {fa}[e] = {fo}[e];" if K else
                     "            ;",
                     "        }",
                     "        fsteps += p - start;",
                     "        if (split) {  /* the carry before step mid: checkpoint d + 1 */",
                     f"            for (e = 0; e < {K}; e++) cp[(d + 1) * {K} + e] = {fa}[e];",
                     "            break;",
                     "        }",
                     f"        t = {step('p')};  /* the adjoint of step p */",
                     f"        for (e = 0; e < {K}; e++) {a}[{cols[ka]} + e] = {fa}[e];"]
            for leaf in range(ka + k, ka + xa):
                code.append(f"        for (e = 0; e < {size[leaf]}; e++) {a}[{cols[leaf]} + e] "
                            f"= {R(self.at(args[leaf], f't * {size[leaf]} + e'))};  /* x "
                            f"{leaf - ka} */")
            code.append(f"        {self.call(body, a, o, inner_x, inner_ix)};")
            if nca:
                code.append(f"        for (e = 0; e < {nca}; e++) {a}[e] = {o}[e];")
            for y, n_y in enumerate(ysize):
                first = offsets[ka + y]
                code.append(f"        for (e = 0; e < {n_y}; e++) "
                            f"{R(self.at(result[first:first + length * n_y], f't * {n_y} + e'))}"
                            f" = {o}[{ycols[y]} + e];  /* y {y} */")
            code += ["        asteps++;", "    }", "}",
                     f"{name}_count(fsteps, asteps, held);"]
        if nca:
            code.append(f"for (e = 0; e < {nca}; e++) {R(self.at(result[:nca], 'e'))} = "
                        f"{a}[e];  /* the final carries */")
        return decls, code


def _loop_work(site: dict[str, Any]) -> int:
    """About the scalar operations a loop site runs per point (for the threads' split): its
    body's each step, and a checkpointed loop's recomputed forward steps."""
    prm = site["params"]
    work = prm["length"] * prm["body"].size
    if prm.get("recompute") is not None:
        work += revolve_cost(prm["length"], prm["checkpoints"]) * prm["recompute"].size
    return work


def _size_of(shapes: list) -> int:
    return int(sum(np.prod(s) for s in shapes))


def _what(params: dict[str, Any]) -> str:
    what = f"{params['length']} steps" + (", reversed" if params["reverse"] else "")
    if params.get("recompute") is not None:
        what += f", {params['checkpoints']} checkpoints"
    return what


def _loop_functions(name: str, p: ScalarProgram) -> tuple[list[str], list[str], set[int]]:
    """The C of ``p``'s loop sites: each distinct body once (:class:`_LoopWriter`), and
    each site a function ``NAME_loopJ`` that runs it over the registers of the chunk, each
    vector in turn, with the scratch its loops need (0, or 1 where it could not be
    allocated); the ops the bodies use; and the sites whose function can fail."""
    writer = _LoopWriter(name)
    functions: list[str] = []
    failing: set[int] = set()
    for j, site in enumerate(p.loops):
        prm = site["params"]
        writer.write_bodies(prm)
        nv, ni = writer.scratch(prm)
        decls, code = writer.site_code(site, p, lambda e: f"R({e})", "x", "ix")
        lines = [f"CG_LOOP {name}_loop{j}(cg_v *restrict r, int n, int last)", "{",
                 "    int g, w;"]
        lines += ["    " + line for line in decls]
        if nv or ni:
            failing.add(j)
            lines += [f"    cg_v *x = CG_ALLOC({max(nv, 1)});  /* the loop's scratch */",
                      f"    long *ix = malloc(sizeof(long) * {max(ni, 1)});",
                      "    if (!x || !ix) { free(x); free(ix); return 1; }"]
        lines += ["    for (g = 0; g < n; g++) {  /* each vector of the chunk */",
                  "        cg_v *restrict q = r + g;",
                  "        w = g < n - 1 ? CG_W : last;  /* its lanes in use */"]
        lines += ["        " + line for line in code]
        lines += ["    }"]
        if nv or ni:
            lines.append("    free(x); free(ix);")
        lines += ["    return 0;", "}", ""]
        functions += lines
    head = []
    if writer.checkpointed:
        head = [_REVOLVE.replace("NAME", name)]
    return head + writer.lines + functions, writer.ops, failing


# The binomial schedule's split, as primitives.loops.revolve_split, in integers: r the least
# with C(c + r, c) >= steps; every binomial here is at most C(c + r, c) < 2 * steps * (c + r),
# c at most steps (more checkpoints than steps split as steps do: at 1), so for fewer than
# 2**31 steps nothing overflows 64 bits. The counters are what to_c's loop_stats reads.
_REVOLVE = """\
static unsigned long long NAME_beta(long n, long k)
{   /* C(n, k) for a small k: step by step, each C(n - k + i, i) exact */
    unsigned long long b = 1;
    long i;
    for (i = 1; i <= k; i++) b = b * (unsigned long long)(n - k + i) / (unsigned long long)i;
    return b;
}
long NAME_revolve_split(long steps, long spare)
{   /* how many steps on the binomial schedule stores the next checkpoint, reversing `steps`
       steps from a stored carry with `spare` more checkpoints (revolve_split) */
    long c = spare + 1, r = 0, low, split;
    unsigned long long beta = 1, other;  /* beta = C(c + r, c) */
    if (c > steps) c = steps;
    while (beta < (unsigned long long)steps) {
        r++;
        beta = beta * (unsigned long long)(c + r) / (unsigned long long)r;
    }
    low = r >= 2 ? (long)NAME_beta(c + r - 2, r - 2) : 1;
    other = NAME_beta(c - 1 + r, r);
    split = other < (unsigned long long)steps ? steps - (long)other : 0;
    if (split < low) split = low;
    return split < 1 ? 1 : split;
}
long NAME_checkpoint_stats[3];  /* forward steps recomputed, adjoint steps, most carries held */
static void NAME_count(long forward, long adjoint, long held)
{   /* (once per vector and loop: every vector runs the schedule) */
#if defined(__GNUC__)
    long old = __atomic_load_n(&NAME_checkpoint_stats[2], __ATOMIC_RELAXED);
    __atomic_fetch_add(&NAME_checkpoint_stats[0], forward, __ATOMIC_RELAXED);
    __atomic_fetch_add(&NAME_checkpoint_stats[1], adjoint, __ATOMIC_RELAXED);
    while (held > old && !__atomic_compare_exchange_n(&NAME_checkpoint_stats[2], &old, held, 1,
                                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
#else
    NAME_checkpoint_stats[0] += forward;
    NAME_checkpoint_stats[1] += adjoint;
    if (held > NAME_checkpoint_stats[2]) NAME_checkpoint_stats[2] = held;
#endif
}
"""


def _width_note(width: int) -> list[str]:
    """The header's lines on the vector path of ``width`` points per vector."""
    if width == 1:
        return ["   Plain C, one point at a time (CG_WIDTH 1); link with -lm."]
    return [f"   With {' '.join(isa.width_flags(width))} on x86-64 glibc it runs {width} points per "
            "vector (link", "   with -lm, which brings glibc's vector math); else plain C."]

# The threaded entry point: the batch in one slice per thread (at most 64), each a whole
# number of chunks (LANES points: whole vectors) but the last, run by NAME_eval_columns; the
# caller's thread runs the first slice (and any whose thread could not be started). A point is
# computed in its lane alone, with no reduction across points, so the values are the same bits
# for any thread count. (NAME_eval_threads is this over the row-major arrays' columns.)
_THREADS = """\
/* NAME_eval_columns over up to `threads` threads: one slice of whole chunks per thread. */
#if !defined(CG_NO_THREADS)
#include <pthread.h>
typedef struct {
    const double *const *in; const long *in_step; double *const *out; const long *out_step;
    long start, npoints; int status;
} NAME_column_slice;
static void *NAME_run_column_slice(void *arg)
{
    NAME_column_slice *s = arg;
    s->status = NAME_eval_columns(s->in, s->in_step, s->out, s->out_step, s->start, s->npoints);
    return NULL;
}
#endif
int NAME_eval_columns_threads(const double *const *in, const long *in_step, double *const *out,
                              const long *out_step, long start, long npoints, int threads)
{
#if !defined(CG_NO_THREADS)
    NAME_column_slice slice[64];
    pthread_t id[64];
    long chunks = (npoints + LANES - 1) / LANES, per, t;
    unsigned long long started = 0;  /* the slices run by a thread of their own */
    int status = 0;
    if (threads > 64) threads = 64;
    if (threads > chunks) threads = (int)chunks;
    if (threads <= 1) return NAME_eval_columns(in, in_step, out, out_step, start, npoints);
    per = (chunks + threads - 1) / threads * LANES;  /* points per slice: threads * per >= npoints */
    for (t = 0; t < threads && t * per < npoints; t++) {
        slice[t].in = in; slice[t].in_step = in_step;
        slice[t].out = out; slice[t].out_step = out_step;
        slice[t].start = start + t * per;
        slice[t].npoints = npoints - t * per < per ? npoints - t * per : per;
        slice[t].status = 0;
        if (t > 0 && pthread_create(&id[t], NULL, NAME_run_column_slice, &slice[t])) {
            NAME_run_column_slice(&slice[t]);
            continue;  /* no thread: this one runs it */
        }
        if (t > 0) started |= 1ULL << t;
    }
    NAME_run_column_slice(&slice[0]);
    while (--t >= 0) {
        if (started >> t & 1) pthread_join(id[t], NULL);
        status |= slice[t].status;
    }
    return status;
#else
    (void)threads;
    return NAME_eval_columns(in, in_step, out, out_step, start, npoints);
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
    ``-mavx512f`` for 8 points per vector, ``-mavx2 -mfma`` for 4, ``-msse4.1`` for 2, none for 1."""
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
            ``NAME_eval_threads``, and ``NAME_eval_columns`` and ``NAME_eval_columns_threads``
            that read and write each column through a pointer and a step).
        library: the path of the compiled shared library (in the cache).
        circuit: the circuit it was made from.
        width: points per vector (8, 4, 2; 1: plain C).
        threads: the most threads a batch is split over (settable; the values are the same
            bits for any count).
        loop_stats: what its checkpointed adjoint loops have done (forward steps recomputed,
            adjoint steps, most carries held), for each vector of points.

    A batch is read where it is (no copy of float64 inputs: ``NAME_eval_columns``);
    :meth:`~circuitgrad.lower.program.CompiledFunction.into` writes the outputs into arrays
    given, :meth:`~circuitgrad.lower.program.CompiledFunction.map` runs an iterable of chunks
    (docs/compiled.md, "Streaming"), both over ``threads`` threads as a call is.
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
        columns = getattr(lib, f"{name}_eval_columns_threads")
        columns.argtypes = (ctypes.c_void_p,) * 4 + (ctypes.c_long, ctypes.c_long, ctypes.c_int)
        columns.restype = ctypes.c_int
        self._fn_columns = columns
        self._columns_address = ctypes.cast(columns, ctypes.c_void_p).value
        self._columns_ready = True
        # (in_ptr, in_step, out_ptr, out_step, npoints, threads): NAME_eval_columns_threads
        # through the tape extension (the GIL released), else ctypes
        self._run_columns = self._call_columns if _tape is None or not hasattr(
            _tape, "call_columns") else functools.partial(_tape.call_columns,
                                                          self._columns_address)
        self._work = max(len(program.ops) + sum(map(_loop_work, program.loops)), 1)
        self._stats = None
        if "_checkpoint_stats[3]" in self.source:
            self._stats = (ctypes.c_long * 3).in_dll(lib, f"{name}_checkpoint_stats")

    @property
    def loop_stats(self) -> dict[str, int]:
        """What the checkpointed adjoint loops of this library have done since it was
        loaded, as :data:`circuitgrad.primitives.loops.STATS` counts them for ``to_numpy``,
        but for each vector (every vector of points runs the schedule: a call of one point
        is one vector, of ``n`` points ``ceil(n / width)``) and shared by the functions of
        one source: the forward steps recomputed, the adjoint steps, and the most carries
        one schedule held at once. All zero without checkpointed loops.

            >>> import circuitgrad as cg, numpy as np
            >>> c = cg.trace(lambda a: cg.scan(lambda s, _: (s * a + 1.0, None), a,
            ...                                length=10)[0])
            >>> f = cg.to_c(cg.grad(c, checkpoints=2), width=1, name="stats_doc")
            >>> before = f.loop_stats["forward_steps"]
            >>> _ = f(0.5)
            >>> f.loop_stats["forward_steps"] - before  # revolve_cost(10, 2)
            15
        """
        if self._stats is None:
            return {"forward_steps": 0, "adjoint_steps": 0, "most_checkpoints": 0}
        forward, adjoint, most = self._stats
        return {"forward_steps": forward, "adjoint_steps": adjoint, "most_checkpoints": most}

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

    def _evaluate_columns(self, in_ptr: np.ndarray, in_step: np.ndarray, out_ptr: np.ndarray,
                          out_step: np.ndarray, npoints: int) -> None:
        # NAME_eval_columns_threads: the caller's thread alone below WORK_PER_THREAD a thread
        threads = max(1, min(self.threads, npoints * self._work // WORK_PER_THREAD))
        self._run_columns(in_ptr, in_step, out_ptr, out_step, npoints, threads)

    def _call_columns(self, in_ptr: np.ndarray, in_step: np.ndarray, out_ptr: np.ndarray,
                      out_step: np.ndarray, npoints: int, threads: int) -> None:
        # (ctypes releases the GIL too)
        status = self._fn_columns(in_ptr.ctypes.data, in_step.ctypes.data, out_ptr.ctypes.data,
                                  out_step.ctypes.data, 0, npoints, threads)
        if status:
            raise MemoryError("to_c: the compiled circuit could not allocate its registers")

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
            >>> [line for line in h.read_text().splitlines() if line.startswith("int")][:2]
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
             f"   int {name}_eval_columns(const double *const *in, const long *in_step,",
             "       double *const *out, const long *out_step, long start, long npoints);",
             f"   int {name}_eval_columns_threads(..., long start, long npoints, int threads);",
             "",
             "   The same values with no row-major copy: column k of the inputs (outputs) of "
             "point p is",
             "   in[k][p * in_step[k]] (out[k][p * out_step[k]]), steps in doubles (0: one "
             "value for",
             "   every point), for the points start .. start + npoints - 1.",
             "",
             "   Build the .c with these flags (no -ffast-math; -ffp-contract=off keeps the "
             "values",
             "   within circuitgrad's contract with its NumPy lowering), and link with -lm; the"
             " width's flag",
             "   (-mavx512f, -mavx2 -mfma, -msse4.1) needs a CPU that runs it (without it the source "
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
              f"int {name}_eval_columns(const double *const *in, const long *in_step, "
              "double *const *out,",
              "    const long *out_step, long start, long npoints);",
              f"int {name}_eval_columns_threads(const double *const *in, const long *in_step, "
              "double *const *out,",
              "    const long *out_step, long start, long npoints, int threads);",
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
            minutes, or, for a Jacobian sweep, its scalars over its N seeds exceed
            :data:`SEED_WORK_LIMIT`. ``repr`` says which it is.

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
        size = scalar_size(c) if tensor else 0  # (a loop: its body's size, once)
        fused = tensor and (size > SCALAR_LIMIT or _seeds(c) * size > SEED_WORK_LIMIT)
    if fused:
        return TENSOR_LOWERING[0](c, name, timeout=timeout, csr=csr)
    with no_gc():
        return CFunction(c, name, opt, timeout, csr, vectors, width, threads)
