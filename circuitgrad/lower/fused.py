"""Tensor circuits compiled: chains of elementwise nodes fused into one C loop each.

``to_numpy`` runs one NumPy call per node: each elementwise node reads its operands from
memory and writes a whole new array, so a chain ``exp(q) * (x - mu) + b`` makes three passes
over memory and three temporaries. ``to_fused(c)`` keeps NumPy (and its BLAS) for the nodes
that are not elementwise (``@``, reductions, indexing, reshapes) and fuses each run of
elementwise nodes of one shape into a C function over the broadcast iteration space: one pass,
the intermediate values in registers, only the values used outside the group written out.

The plan (:func:`fusion_groups`) walks the nodes in the circuit's order. An elementwise node
with a C form (the table's ``c``) joins the open group of its shape; a node that reads a
member of an open group closes that group first (its kernel runs then), so groups run in an
order consistent with the circuit and never wait on one another. A group of one node stays a
NumPy call. Each kernel takes the broadcast shape (batch axes in front, as every lowering
does) and each operand's strides, so batches of points, broadcasting operands and constants
all run the same code, point by point the same operations as one point alone.

A sum of a product is one ``matmul`` (:func:`contract`), on views and written in place when it
has one row, one contracted and one column letter; a small one (a vector of columns, or a
transposed right operand; few terms or rows: :func:`small_contraction`) in the library's own
loop (:func:`mm_kernel_source`), where BLAS's blocking for large matrices costs more than the
products; one whose operands vary along the same axes (dot products) is accumulated in a
kernel instead. Rows shorter than a vector run in blocks of
rows (:func:`_blocked`: broadcast operands gathered). ``logsumexp``, ``softmax`` and
``log_softmax`` along the last axis are row kernels (:func:`row_kernel_source`). The values
that depend on no input are computed once, when the function is built; a broadcast that only
kernels read is passed as its source. Where the time went, and why these choices:
docs/compiled.md, "Tensor circuits: to_fused".

Numbers: the kernels evaluate the table's C forms, the statements ``to_c`` and the tape run,
so a fused value equals ``to_c``'s bit for bit and ``to_numpy``'s within the per-operation
bound of docs/semantics.md (NumPy's SIMD ``exp``/``log``/``sin`` differ from libm's in the
last bits); no reduction is reordered. A small contraction adds its terms left to right from
+0.0 (a fused multiply-add a term on AVX-512, as BLAS rounds), within the bound of a sum of
products of BLAS's and ``to_numpy``'s.

    >>> import numpy as np, circuitgrad as cg
    >>> c = cg.parse("J = sum(exp(x) * y + x)", shapes={"x": (4,), "y": (4,)})
    >>> f = cg.to_fused(cg.grad(c), min_entries=0)  # a kernel even for 4 entries
    >>> f.groups
    1
    >>> out = f(x=np.zeros(4), y=np.ones(4))
    >>> float(out.J), out.dJ_dx.tolist()
    (4.0, [2.0, 2.0, 2.0, 2.0])
"""

from __future__ import annotations

import collections
import ctypes
import functools
import math
import os
import re
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .guarded import guarded
from ..circuit import LEAVES, Circuit, as_circuit, no_gc
from ..errors import CircuitError, ShapeError
from ..primitives import NAMESPACE, PRIMITIVES, align, evaluate, runtime
from ..primitives.shape_ops import index_text
from .c import COMPILE_TIMEOUT, TENSOR_LOWERING, compile_library
from . import cache, cforms
from .cforms import PRELUDE, c_literal, c_vector_expression, c_vector_helpers
from ..transforms.products import contraction_spec, operand
from .numpy import NumpyFunction, _Names, outputs
from .program import EXTENSION as _tape

MAX_RANK = 64  # NumPy's limit on axes, batch axes included: the kernel's odometer holds as many
SUMS = ("sum", "sum_to")  # the reductions a kernel accumulates
# correctly rounded: NumPy's loops give the same bits whatever the operands' strides
EXACT_ARITHMETIC = ("add", "sub", "mul", "div")
# A kernel call costs ~10 µs in Python (shapes, strides, pointers) where NumPy's call on a small
# array costs ~1 µs: groups whose points have fewer entries stay NumPy calls. Decided by the
# point shape, never by the batch, so that a point of a batch runs the code it runs alone.
MIN_ENTRIES = 1024
SHORT_ROWS = 64  # a node alone broadcasting over rows shorter than this is a kernel
SHORT_ROW = 8  # a kernel's rows shorter than this (a vector at AVX-512) run in blocks (_blocked)
BLOCK = 256  # the most entries of such a block
# A block's operand read through its table whose entries are the same in every block (it
# varies along no outer axis): its table flag in the kernel's meta, and whether plans use it.
# The kernel gathers its block once per call, then reads it with vector loads, not a gather
# per vector (GMM d = 2, K = 5: exp(q) of (1, 5, 2) in the kernels of the rows of 2).
HOISTED = 2
HOIST = True
# An operand whose offsets in each vector of 8 lanes of a block lie within 8 entries (x of
# (n, 1, d) in blocks of (., K, d)): read by a masked load of that window and a permutation
# (CG_WINDOW), not a gather: its table flag, and whether plans use it.
WINDOWED = 3
WINDOWS = True
# A sum's table flag where its places in each vector lie within 8 entries, each place's terms
# in at most WSUM_ROUNDS lanes (a sum along rows of 2 over blocks: (n, K, 2) -> (n, K)):
# added by rounds into the loaded window (CG_WSACC), not entry by entry.
WSUMMED = 4
WSUM_ROUNDS = 4
WINDOW_LONGS = 10  # an operand's window a vector: its first offset, mask, 8 places
WSUM_LONGS = 3 + 9 * WSUM_ROUNDS  # a sum's: first offset, mask, rounds, then each round's 9
FRESH = 256  # a sum's window (CG_WSACC) that no other vector of the call adds to: not loaded


@dataclass
class Group:
    """Elementwise nodes of one shape computed by one kernel."""

    shape: tuple[int, ...]
    members: list[int] = field(default_factory=list)
    operands: list[int] = field(default_factory=list)  # nodes read from outside, in order
    results: list[int] = field(default_factory=list)  # members read outside or outputs
    # sums of a member computed in the kernel, (sum node, member): the member itself need not
    # be written out when nothing else reads it
    sums: list[tuple[int, int]] = field(default_factory=list)


@functools.lru_cache(maxsize=None)
def _fusable_op(op: str) -> bool:
    """Elementwise, with a C form, and float64-valued in NumPy (not a comparison's bools)."""
    prim = PRIMITIVES[op]
    if prim.shape is not None or prim.c is None or prim.params or op in LEAVES:
        return False
    return np.asarray(evaluate(op, (0.5,) * prim.arity)).dtype == np.float64


def fusion_groups(c: Circuit, min_entries: int = MIN_ENTRIES
                  ) -> tuple[list[Group], list[tuple[str, int]]]:
    """The fused groups of ``c`` and the schedule: ``("node", i)`` for a node NumPy computes,
    ``("group", g)`` where group ``g``'s kernel runs, in an order the values allow.

        >>> import circuitgrad as cg
        >>> c = cg.parse("J = sum(exp(x) * y + x)", shapes={"x": (3,), "y": (3,)})
        >>> groups, schedule = fusion_groups(c, min_entries=0)  # the sum is in the kernel
        >>> [len(g.members) for g in groups], [kind for kind, _ in schedule]
        ([3], ['group'])
    """
    group_of = [-1] * len(c)
    groups: list[Group] = []
    # open groups by (shape, whether the members vary with a sweep's seeds: _seed_varying)
    open_by_shape: dict[tuple[tuple[int, ...], bool], int] = {}
    schedule: list[tuple[str, int]] = []
    varying, seeds = _seed_varying(c)
    key_of: list[tuple[tuple[int, ...], bool]] = []

    def key(i: int) -> tuple[tuple[int, ...], bool]:
        return c.shape(i), varying[i]

    def close(g: int) -> None:
        del open_by_shape[key_of[g]]
        schedule.append(("group", g))

    def fusable_node(i: int) -> bool:  # (a node that varies with the seeds runs N times)
        return _fusable(c, i, -(-min_entries // seeds) if varying[i] else min_entries)

    # sum(a * b) (a sum or sum_to of a product read by nothing else): one matmul of a and b,
    # BLAS's (the product of the broadcast shape is never made). Scheduled as ("contract", s).
    n_readers = [0] * len(c)
    for i, op, args, _params, _shape in c.records():
        for a in set(args):
            n_readers[a] += 1
    outputs_set = set(c.output_ids)
    contracted: dict[int, int] = {}
    for i, op, args, _params, _shape in c.records():
        m = args[0] if op in SUMS else -1
        if m >= 0 and c.op(m) == "mul" and n_readers[m] == 1 and m not in outputs_set \
                and not any(_literal_const(c, a) for a in c.args(m)) \
                and math.prod(c.shape(m)) >= max(min_entries, 1) and len(c.shape(m)) <= 26 \
                and not _dot_products(c, m):
            contracted[i] = m
    products = set(contracted.values())

    # List scheduling (Kahn's order) that takes a ready elementwise node before any other:
    # NumPy's nodes wait until no elementwise node can run, so a chain is not cut by a sum
    # that could as well run after it.
    waiting = [0] * len(c)
    readers: list[list[int]] = [[] for _ in range(len(c))]
    fuse, other = collections.deque(), collections.deque()
    for i, op, args, _params, shape in c.records():
        if op in LEAVES:
            continue
        for a in set(args):
            if c.op(a) not in LEAVES:
                waiting[i] += 1
                readers[a].append(i)
        if not waiting[i]:
            (fuse if fusable_node(i) and i not in products else other).append(i)
    while fuse or other:
        i = fuse.popleft() if fuse else other.popleft()
        fusable, shape = fusable_node(i) and i not in products, c.shape(i)
        reads = c.args(contracted[i]) if i in contracted else c.args(i)
        for a in reads:  # a value read from another open group: that group runs first
            g = group_of[a]
            if g >= 0 and open_by_shape.get(key_of[g]) == g and not (
                    fusable and key_of[g] == key(i)):
                close(g)
        if fusable:
            g = open_by_shape.get(key(i))
            if g is None:
                g = open_by_shape[key(i)] = len(groups)
                groups.append(Group(shape))
                key_of.append(key(i))
            groups[g].members.append(i)
            group_of[i] = g
        elif i in contracted:
            schedule.append(("contract", i))
        elif i not in products:
            schedule.append(("node", i))
        for r in readers[i]:
            waiting[r] -= 1
            if not waiting[r]:
                (fuse if fusable_node(r) and r not in products else other).append(r)
    for g in sorted(open_by_shape.values()):
        schedule.append(("group", g))
    # A sum of a member: accumulated by the kernel as it goes (no array of the member's shape
    # written and read back), in the order of the loop, the reduced axes innermost-last.
    fused_sums = set()
    for kind, i in schedule:
        if kind == "node" and c.op(i) in SUMS and group_of[c.args(i)[0]] >= 0:
            g = group_of[c.args(i)[0]]
            groups[g].sums.append((i, c.args(i)[0]))
            fused_sums.add(i)
    schedule = [(kind, k) for kind, k in schedule if not (kind == "node" and k in fused_sums)]
    # A group of one node without a sum is one NumPy call, as in to_numpy: no kernel; unless
    # the node's NumPy code is several passes (an adjoint's g * cos(x): one pass in a kernel,
    # 0.87 -> 0.31 ms at 316 x 316) or it broadcasts over short rows (_short_broadcast).
    singles = {g for g, group in enumerate(groups) if len(group.members) == 1 and not group.sums
               and PRIMITIVES[c.op(group.members[0])].operations <= 1
               and not _short_broadcast(c, group.members[0])}
    for g in singles:
        group_of[groups[g].members[0]] = -1
    schedule = [("node", groups[k].members[0]) if kind == "group" and k in singles
                else (kind, k) for kind, k in schedule]
    renumber = {g: k for k, g in enumerate(g for g in range(len(groups)) if g not in singles)}
    groups = [group for g, group in enumerate(groups) if g not in singles]
    schedule = [(kind, renumber[k]) if kind == "group" else (kind, k) for kind, k in schedule]
    group_of = [renumber.get(g, -1) for g in group_of]
    used_outside: set[int] = set(outputs_set)
    for i, op, args, _params, _shape in c.records():
        if i in fused_sums:
            continue
        for a in args:
            if group_of[a] >= 0 and group_of[a] != group_of[i]:
                used_outside.add(a)
    for g, group in enumerate(groups):
        seen: set[int] = set()
        members = set(group.members)
        for i in group.members:
            for a in c.args(i):
                if a not in members and a not in seen and not _literal_const(c, a):
                    seen.add(a)
                    group.operands.append(a)
        group.results = [i for i in group.members if i in used_outside]
    return groups, schedule


def _seed_varying(c: Circuit) -> tuple[list[bool], int]:
    """(whether each node depends on a seed input, N) for a Jacobian sweep circuit
    (``meta["jacobian_sweep"]``: :func:`~circuitgrad.jacobian_function` calls it on N seeds
    along a leading axis, N the entries of its seed inputs); else (all False, 1).

    A node that does not depend on the seeds has one value per point, a node that does has N:
    the two kinds are never one group, else the kernel computes the point's values (the
    ``tanh``, ``exp`` and ``cos`` of the map) N times over the seeds' broadcast shape
    (``tanh(x sin(Σx) + cos x · exp(−x²))`` at n = 1000: 70 ms where NumPy took 47). And a
    node that varies runs over N × its point's entries, which is what ``min_entries``
    weighs. Both depend on the circuit only, never on a call's batch.

        >>> import circuitgrad as cg
        >>> from circuitgrad.transforms.jacobian import jacobian_sweep
        >>> sweep = jacobian_sweep(cg.parse("f = sin(x) * x", shapes={"x": (3,)}), mode="forward")
        >>> varying, seeds = _seed_varying(sweep)
        >>> seeds, [sweep.op(i) for i in range(len(sweep)) if varying[i]][:1]
        (3, ['input'])
    """
    info = c.meta.get("jacobian_sweep")
    if not info:
        return [False] * len(c), 1
    inputs = dict(zip(c.inputs, c.input_ids))
    seed_ids = {inputs[name] for name in info["seeds"] if name in inputs}
    # (the seeds' own values computed once, jacobians.seed_values_apart: they vary too)
    given = seed_ids | {inputs[name] for name in info.get("precomputed", ()) if name in inputs}
    varying = [False] * len(c)
    for i, _op, args, _params, _shape in c.records():
        varying[i] = i in given or any(varying[a] for a in args)
    return varying, max(1, sum(math.prod(c.shape(i)) for i in seed_ids))


def _short_broadcast(c: Circuit, i: int) -> bool:
    """Node ``i`` broadcasts an operand over rows shorter than ``SHORT_ROWS`` entries: NumPy's
    loop calls its inner loop once a row (~15 ns each), a kernel runs the rows as vectors
    (GMM d = 10, K = 50: x − μ over (1000, 50, 10), 0.77 -> 0.35 ms)."""
    shape = c.shape(i)
    return bool(shape) and shape[-1] < SHORT_ROWS and any(
        c.shape(a) != shape and not _literal_const(c, a) for a in c.args(i))


def _dot_products(c: Circuit, m: int) -> bool:
    """Product ``m``'s operands vary along the same axes (a matmul of neither rows nor
    columns: a stack of dot products): its sum is better accumulated in a kernel, which reads
    each operand once, than a matmul's copies and calls per entry (GMM d = 10, K = 50: 1.1 ms
    as a matmul, the sum of ‖Qx‖² and the adjoint of the means)."""
    shape = c.shape(m)
    letters = "abcdefghijklmnopqrstuvwxyz"[:len(shape)]
    la, lb = (set(operand(c, a, letters, shape)[1]) - {"."} for a in c.args(m))
    return la == lb


def _fusable(c: Circuit, i: int, min_entries: int) -> bool:
    shape = c.shape(i)
    return _fusable_op(c.op(i)) and len(shape) <= MAX_RANK and math.prod(shape) >= min_entries


def _literal_const(c: Circuit, i: int) -> bool:
    return c.op(i) == "const" and not c.shape(i)


KERNEL_MACROS = r"""
#include <string.h>
#define CG_HOISTED @HOISTED@  /* an operand's table flag: gathered once per call (HOISTED) */
#define CG_WINDOWED @WINDOWED@  /* its offsets in windows of a vector (CG_WINDOW; WINDOWED) */
#define CG_WSUMMED @WSUMMED@  /* a sum's: its places in windows of a vector (CG_WSACC; WSUMMED) */
#define CG_WINDOW_LONGS @WINDOW_LONGS@  /* a window of an operand (WINDOW_LONGS) */
#define CG_WSUM_LONGS @WSUM_LONGS@  /* a window of a sum (WSUM_LONGS: WSUM_ROUNDS rounds) */
#define CG_FRESH @FRESH@  /* in a sum window's mask: no other vector of the call adds to it */
/* the longs of an array's table in the meta: its offsets, then a window's per vector (as
   _kernel_plan lays them out: table_longs) */
#define CG_TABLE(h, inner) ((inner) + 8 + ((h) == CG_WINDOWED ? CG_WINDOW_LONGS * \
    (((inner) + 7) / 8) : (h) == CG_WSUMMED ? CG_WSUM_LONGS * (((inner) + 7) / 8) : 0))
#if CG_W > 1
/* The first w lanes of a contiguous vector at p + j, read or written under a mask (no lane
   past the row touched; the unused lanes read lane 0's value): the last, partial vector of a
   row, one instruction where GCC's AVX-512 or AVX2 builtins exist, else lane by lane. */
#if !defined(__clang__) && CG_W == 8
#define CG_MASK(w) ((unsigned char)((1u << (w)) - 1))
#define CG_LOADW(p, j, w) __builtin_ia32_loadupd512_mask((p) + (j), CG_C((p)[j]), CG_MASK(w))
#define CG_STOREW(q, j, w, v) __builtin_ia32_storeupd512_mask((q) + (j), (v), CG_MASK(w))
typedef long long cg_i __attribute__((vector_size(64)));  /* the offsets of a gather */
#define CG_GATHER(a, p, t, j, w) do { cg_i i_; memcpy(&i_, (t) + (j), sizeof(cg_i)); \
    (a) = __builtin_ia32_gatherdiv8df(CG_C((p)[(t)[j]]), (p), i_, CG_MASK(w), 8); } while (0)
/* The vector at j of an operand whose 8 offsets there lie in a window of at most 8 entries
   (CG_WINDOWED: v holds for each vector the window's first offset, its lanes' mask, each
   lane's place in it): one masked load of the window and a permutation, not a gather (the
   same values; no entry outside the window read). */
#define CG_WINDOW(a, p, t, v, j, w) do { const long *v_ = (v) + CG_WINDOW_LONGS * ((j) / 8); \
    cg_i i_; \
    cg_v x_; memcpy(&i_, v_ + 2, sizeof(cg_i)); \
    x_ = __builtin_ia32_loadupd512_mask((p) + v_[0], CG_C(0.0), (unsigned char)v_[1]); \
    (a) = __builtin_ia32_permvardf512_mask(x_, i_, x_, (unsigned char)-1); } while (0)
/* A sum's vector x at j added to its entries in a window of at most 8 (CG_WSUMMED: v holds
   for each vector the window's first offset, its mask, the rounds, then for each round the
   lanes it adds at each place and the places' mask): the window loaded, the k-th term of
   each place added in round k (a place's terms in lane order, as CG_SACC adds them one by
   one: the same sums), stored back. Where no other vector of the call adds to its places
   (CG_FRESH in the mask: a sum along rows within the block) they hold the +0.0 the sum
   starts from: not loaded (a load after the last vector's masked store waited for it). */
#define CG_WSACC(q, t, v, j, w, x) do { const long *v_ = (v) + CG_WSUM_LONGS * ((j) / 8); \
    cg_i i_; long m_; cg_v s_ = v_[1] & CG_FRESH ? CG_C(0.0) : \
    __builtin_ia32_loadupd512_mask((q) + v_[0], CG_C(0.0), (unsigned char)v_[1]); \
    for (m_ = 0; m_ < v_[2]; m_++) { memcpy(&i_, v_ + 3 + 9 * m_, sizeof(cg_i)); \
        s_ = __builtin_ia32_addpd512_mask(s_, __builtin_ia32_permvardf512_mask((x), i_, (x), \
            (unsigned char)-1), s_, (unsigned char)v_[11 + 9 * m_], 4); } \
    __builtin_ia32_storeupd512_mask((q) + v_[0], s_, (unsigned char)v_[1]); } while (0)
#elif !defined(__clang__) && CG_W == 4
#define CG_MASK(w) ((cg_m){0, 1, 2, 3} < (cg_m){(w), (w), (w), (w)})
#define CG_LOADW(p, j, w) cg_select(CG_MASK(w), __builtin_ia32_maskloadpd256( \
    (const cg_v *)((p) + (j)), CG_MASK(w)), CG_C((p)[j]))
#define CG_STOREW(q, j, w, v) __builtin_ia32_maskstorepd256((cg_v *)((q) + (j)), CG_MASK(w), (v))
typedef long long cg_i __attribute__((vector_size(32)));
#define CG_GATHER(a, p, t, j, w) do { cg_i i_; memcpy(&i_, (t) + (j), sizeof(cg_i)); \
    (a) = __builtin_ia32_gatherdiv4df(CG_C((p)[(t)[j]]), (p), i_, (cg_v)CG_MASK(w), 8); \
    } while (0)
#else
static inline cg_v cg_loadw(const double *p, int w) {
    cg_lanes u;
    int l;
    for (l = 0; l < CG_W; l++) u.d[l] = p[l < w ? l : 0];
    return u.v;
}
#define CG_LOADW(p, j, w) cg_loadw((p) + (j), (w))
#define CG_STOREW(q, j, w, v) do { cg_lanes u_ = {v}; int l_; for (l_ = 0; l_ < (w); l_++) \
    (q)[(j) + l_] = u_.d[l_]; } while (0)
#define CG_GATHER(a, p, t, j, w) do { cg_lanes u_; int l_; for (l_ = 0; l_ < CG_W; l_++) \
    u_.d[l_] = (p)[(t)[(j) + (l_ < (w) ? l_ : 0)]]; (a) = u_.v; } while (0)
#endif
/* Operand k at index j of the innermost axis, lanes j .. j + w - 1 (unused lanes: lane 0's). */
/* The rare cases, lane by lane (an axis read or written with a step: a transposed view;
   a block's uneven outputs), are functions called from the loop, not code inlined into it
   for every operand: the same operations, a fraction of the code for the compiler (GMM
   d = 10's kernels: see docs/compiled.md, "Building to_fused's kernels"). */
#if defined(__GNUC__)
#define CG_OUTLINE static __attribute__((noinline))
#else
#define CG_OUTLINE static
#endif
CG_OUTLINE cg_v cg_load_step(const double *p, long s, long j, int w) {
    cg_lanes u; int l;
    for (l = 0; l < CG_W; l++) u.d[l] = p[(j + (l < w ? l : 0)) * s];
    return u.v;
}
CG_OUTLINE void cg_store_step(double *q, long s, long j, int w, cg_v v) {
    cg_lanes u = {v}; int l;
    for (l = 0; l < w; l++) q[(j + l) * s] = u.d[l];
}
CG_OUTLINE void cg_acc_step(double *q, long s, long j, int w, cg_v v) {
    cg_lanes u = {v}; int l;
    for (l = 0; l < w; l++) q[(j + l) * s] += u.d[l];
}
CG_OUTLINE void cg_sacc(double *q, const long *t, long j, int w, cg_v v) {
    cg_lanes u = {v}; int l;
    for (l = 0; l < w; l++) q[t[j + l]] += u.d[l];
}
CG_OUTLINE void cg_scatter(double *q, const long *t, long j, int w, cg_v v) {
    cg_lanes u = {v}; int l;
    for (l = 0; l < w; l++) q[t[j + l]] = u.d[l];
}
#endif
/* An operand read through its table that is the same in every block (it varies along none of
   the outer axes: a parameter broadcast over the points, GMM's exp(q) of (1, K, d)): its n
   entries of a block gathered once into the next n doubles at *next, then read along them
   (a vector load each, not a gather each: the same values). */
static const double *cg_hoist(double **next, const double *p, const long *t, long n) {
    double *h = *next;
    long j;
    for (j = 0; j < n; j++) h[j] = p[t[j]];
    *next += n;
    return h;
}
#if CG_W > 1
#define CG_LOAD(a, p, s, j, w) do { if ((s) == 1) { if ((w) == CG_W) memcpy(&(a), (p) + (j), \
    sizeof(cg_v)); else (a) = CG_LOADW(p, j, w); } \
    else if ((s) == 0) (a) = CG_C((p)[0]); else (a) = cg_load_step(p, s, j, w); } while (0)
#define CG_STORE(q, s, j, w, v) do { if ((s) == 1 && (w) == CG_W) memcpy((q) + (j), &(v), \
    sizeof(cg_v)); else if ((s) == 1) CG_STOREW(q, j, w, v); else cg_store_step(q, s, j, w, v); \
    } while (0)
/* A sum along a strided axis: each entry its own running sum (lane by lane the same); the
   last, partial vector of a row lane by lane (a masked load of what the last row's masked
   store wrote waited for it; scalars are forwarded). */
#define CG_ACC(q, s, j, w, v) do { if ((s) == 1 && (w) == CG_W) { cg_v t_; \
    memcpy(&t_, (q) + (j), sizeof(cg_v)); t_ += (v); memcpy((q) + (j), &t_, sizeof(cg_v)); } \
    else if ((s) == 1) { cg_lanes u_ = {v}; int l_; for (l_ = 0; l_ < (w); l_++) \
        (q)[(j) + l_] += u_.d[l_]; } else cg_acc_step(q, s, j, w, v); } while (0)
/* A sum along the innermost axis: the row's running sum in a register, lanes in order. */
#define CG_ROW(r, w, v) do { cg_lanes u_ = {v}; int l_; for (l_ = 0; l_ < (w); l_++) \
    (r) += u_.d[l_]; } while (0)
/* Lane 0 of v at q[j]. */
#define CG_STOREW1(q, j, v) do { cg_lanes u_ = {v}; (q)[j] = u_.d[0]; } while (0)
/* A block of short rows (CG_GATHER above: the lanes at the offsets of table t, unused lanes
   lane 0's): a sum added entry by entry in lane order, a value stored entry by entry. */
#define CG_SACC(q, t, j, w, v) cg_sacc(q, t, j, w, v)
#define CG_SCATTER(q, t, j, w, v) cg_scatter(q, t, j, w, v)
#else
#define CG_LOAD(a, p, s, j, w) ((a) = (p)[(j) * (s)])
#define CG_STORE(q, s, j, w, v) ((q)[(j) * (s)] = (v))
#define CG_ACC(q, s, j, w, v) ((q)[(j) * (s)] += (v))
#define CG_ROW(r, w, v) ((r) += (v))
#define CG_GATHER(a, p, t, j, w) ((a) = (p)[(t)[j]])
#define CG_STOREW1(q, j, v) ((q)[j] = (v))
#define CG_SACC(q, t, j, w, v) ((q)[(t)[j]] += (v))
#define CG_SCATTER(q, t, j, w, v) ((q)[(t)[j]] = (v))
#endif
#ifndef CG_WINDOW  /* (widths without it: the gather through the offsets, the same values) */
#define CG_WINDOW(a, p, t, v, j, w) CG_GATHER(a, p, t, j, w)
#define CG_WSACC(q, t, v, j, w, x) CG_SACC(q, t, j, w, x)
#endif
/* A kernel's loop split over POSIX threads (cg_parts): the outermost outer axis along which
   every sum's output moves (so each output entry is made by one part alone, its terms in the
   same order: the same bits for any thread count) is cut into one range a thread, the meta's
   copy of each part with that axis's length, each array's pointer at the range's start. The
   caller's thread runs the first part (and any whose thread could not be started). */
#if !defined(CG_NO_THREADS)
#include <pthread.h>
#endif
typedef void (*cg_loop)(const long *meta, double *const *ptr);
static int cg_threads = 1;  /* cg_set_threads: at most 64 */
static long cg_part_entries = 1L << 17;  /* the fewest entries of the loop a part is given */
void cg_set_threads(int threads, long entries) {
    cg_threads = threads < 1 ? 1 : threads > 64 ? 64 : threads;
    cg_part_entries = entries < 1 ? 1 : entries;
}
typedef struct { cg_loop f; const long *meta; double *const *ptr; } cg_part;
static void *cg_run_part(void *arg) { cg_part *p = arg; p->f(p->meta, p->ptr); return NULL; }
/* f over `parts` ranges of axis `split` (the meta's layout of both loops: nd, the shape, then
   each of the n arrays' strides along the axes), each on a copy of the meta's first `len`
   longs with the range's length, each array's pointer at the range's start. */
static void cg_run_parts(cg_loop f, const long *meta, double *const *ptr, int n, long len,
                         long split, long parts) {
#if !defined(CG_NO_THREADS)
    const long nd = meta[0], size = meta[1 + split], *st = meta + 1 + nd;
    long per = (size + parts - 1) / parts, t, k;
    long *metas = malloc(sizeof(long) * len * parts);
    double **ptrs = malloc(sizeof(double *) * n * parts);
    cg_part part[64];
    pthread_t id[64];
    unsigned long long started = 0;
    if (!metas || !ptrs) { free(metas); free(ptrs); f(meta, ptr); return; }
    for (t = 0; t < parts && t * per < size; t++) {
        long a = t * per, b = a + per < size ? a + per : size;
        long *m = metas + t * len;
        double **p = ptrs + t * n;
        memcpy(m, meta, sizeof(long) * len);
        m[1 + split] = b - a;
        for (k = 0; k < n; k++) p[k] = ptr[k] + a * st[k * nd + split];
        part[t].f = f; part[t].meta = m; part[t].ptr = p;
        if (t > 0 && pthread_create(&id[t], NULL, cg_run_part, &part[t])) {
            cg_run_part(&part[t]);  /* no thread: this one runs it */
            continue;
        }
        if (t > 0) started |= 1ULL << t;
    }
    cg_run_part(&part[0]);
    while (--t > 0) if (started >> t & 1) pthread_join(id[t], NULL);
    free(metas);
    free(ptrs);
#else
    (void)n; (void)len; (void)split; (void)parts;
    f(meta, ptr);
#endif
}
/* A small contraction's loop over its leading axes (cg_mm_parts; meta: nd, the shape, a's,
   b's and the output's strides, 5 more): every output matrix its own, so the first leading
   axis of two or more is cut, parts of at least cg_part_products multiply-adds (the caller's
   m x kn x n at each leading index; set by cg_set_part_products). */
static long cg_part_products = 1L << 20;
void cg_set_part_products(long products) { cg_part_products = products < 1 ? 1 : products; }
static __attribute__((unused)) void cg_mm_parts(cg_loop f, const long *meta,
                                                double *const *ptr, long products) {
    const long nd = meta[0], *shape = meta + 1, *so = shape + 3 * nd;  /* the output's strides */
    long total = products, d, split = -1, parts = cg_threads;
    for (d = 0; d < nd; d++) total *= shape[d];
    if (parts > total / cg_part_products) parts = total / cg_part_products;
    /* (the output's stride along it not 0: each part its own output matrices) */
    for (d = 0; parts > 1 && d < nd && split < 0; d++)
        if (shape[d] >= 2 && so[d] != 0) split = d;
    if (split < 0) { f(meta, ptr); return; }
    cg_run_parts(f, meta, ptr, 3, 1 + 4 * nd + 5, split,
                 parts < shape[split] ? parts : shape[split]);
}
/* A kernel's loop (cg_parts; meta: nd, the shape, the n arrays' strides, the block, the
   tables): cut along its outermost outer axis along which every sum's output moves. */
static __attribute__((unused)) void cg_parts(cg_loop f, const long *meta, double *const *ptr,
                                             int n, const unsigned char *sum) {
    const long nd = meta[0], *shape = meta + 1, *st = shape + nd, *blk = st + n * nd;
    const long nb = blk[0], inner = blk[1], *ht = blk + 2 + n;
    long total = 1, d, split = -1, k, len, parts = cg_threads;
    for (d = 0; d < nd; d++) total *= shape[d];
    if (parts > total / cg_part_entries) parts = total / cg_part_entries;
    for (d = 0; parts > 1 && d < nd - nb && split < 0; d++) {
        if (shape[d] < 2) continue;
        for (k = 0; k < n && (!sum[k] || st[k * nd + d] != 0); k++) {}
        if (k == n) split = d;
    }
    if (split < 0) { f(meta, ptr); return; }
    len = 1 + nd + n * nd + 2 + 2 * n;  /* the header, then the tables (CG_TABLE) */
    for (k = 0; k < n; k++) if (ht[k]) len += CG_TABLE(ht[k], inner);
    cg_run_parts(f, meta, ptr, n, len, split, parts < shape[split] ? parts : shape[split]);
}
"""
# (the table flags and lengths the C reads, from the constants the plans lay out: one place)
for _name in ("HOISTED", "WINDOWED", "WSUMMED", "WINDOW_LONGS", "WSUM_LONGS", "FRESH"):
    KERNEL_MACROS = KERNEL_MACROS.replace(f"@{_name}@", str(globals()[_name]))


def kernel_source(c: Circuit, g: int, group: Group) -> str:
    """The C function of one group: an odometer over the outer axes, and over the innermost
    axis ``CG_W`` entries at a time in the vector registers of ``to_c`` (the same helpers and
    vector math), the last vector of a row partly used; an entry is computed by the same
    operations wherever it falls, so a point of a batch is the point alone, bit for bit.

    Two loops of the same operations: ``cg_k{g}_any`` reads each array's step and table at
    run time (any strides, blocks, gathers), ``cg_k{g}_fixed`` the layout the circuit's shapes
    give along the point's last axis (:func:`fixed_layout`: each operand contiguous along it
    or broadcast, each result contiguous or a row sum; in blocks, tables) with those steps
    as constants: no branch per operand in the loop. ``cg_k{g}`` checks the steps once per
    call and runs the one that applies (the same bits: the fixed loop is the other with its
    branches decided). Both are flattened (the node helpers' vector math inlined into each:
    with two loops GCC otherwise calls ``cg_vsin`` out of line, 7 % slower).

        >>> import circuitgrad as cg
        >>> c = cg.parse("J = exp(x) * y", shapes={"x": (3000,), "y": ()})
        >>> groups, _ = fusion_groups(c)
        >>> code = kernel_source(c, 0, groups[0])
        >>> [line for line in code.splitlines() if "if (" in line and "_fixed(" in line]
        ['    if (bs[0] == 1 && !ht[0] && bs[1] == 0 && !ht[1] && bs[2] == 1 && !ht[2]) cg_k0_fixed(meta, ptr);']
    """
    n_in = len(group.operands)
    # the members' values named by their place in the group, not by their nodes: the same
    # kernel in another circuit is the same text (one library in the cache for both)
    local = {i: f"t{n}" for n, i in enumerate(group.members)}
    stores = [(local[i], False) for i in group.results] + [(local[m], True)
                                                           for _, m in group.sums]
    n_out = len(stores)
    where = {a: k for k, a in enumerate(group.operands)}
    arithmetic: list[str] = []
    names: dict[int, str] = {}
    for i in group.members:
        arg_names, literal = [], []
        for a in c.args(i):
            if a in names:
                arg_names.append(names[a])
            elif a in where:
                arg_names.append(f"a{where[a]}")
            else:
                arg_names.append(c_literal(float(c.params(a))))
            literal.append(a not in names and a not in where)
        names[i] = local[i]
        arithmetic.append(f"const cg_v {local[i]} = "
                          f"{c_vector_expression(c.op(i), arg_names, literal)};")
    sums = [k for k, (_, accumulate) in enumerate(stores) if accumulate]
    # the generic loop: each array's step (0, 1, other) and table read at run time
    loads = [f"cg_v a{k}; if (!hi{k}) CG_LOAD(a{k}, p{k}, si{k}, j, w); "
             f"else if (hi{k} == CG_WINDOWED) CG_WINDOW(a{k}, p{k}, ti{k}, ti{k} + inner + 8, "
             f"j, w); else CG_GATHER(a{k}, p{k}, ti{k}, j, w);" for k in range(n_in)]
    writes = []
    for k, (value, accumulate) in enumerate(stores):
        if accumulate:
            writes.append(f"if (ho{k} == CG_WSUMMED) CG_WSACC(q{k}, to{k}, to{k} + inner + 8, "
                          f"j, w, {value}); else if (ho{k}) CG_SACC(q{k}, to{k}, j, w, {value}); "
                          f"else if (so{k}) CG_ACC(q{k}, so{k}, j, w, {value}); "
                          f"else CG_ROW(row{k}, w, {value});")
        else:
            writes.append(f"if (!ho{k}) CG_STORE(q{k}, so{k}, j, w, {value}); "
                          f"else CG_SCATTER(q{k}, to{k}, j, w, {value});")
    steps = [f"    long oi{k} = 0; const long hh{k} = ht[{k}] == CG_HOISTED && hbuf, "
             f"si{k} = hh{k} ? 1 : bs[{k}], hi{k} = hh{k} ? 0 : ht[{k}]; "
             f"const long *ti{k} = tab; const double *in{k} = hh{k} ? "
             f"cg_hoist(&hnext, in[{k}], tab, inner) : in[{k}]; "
             f"if (ht[{k}]) tab += CG_TABLE(ht[{k}], inner);" for k in range(n_in)]
    steps += [f"    long oo{k} = 0; const long so{k} = bs[{n_in + k}], "
              f"ho{k} = ht[{n_in + k}]; const long *to{k} = tab; "
              f"if (ho{k}) tab += CG_TABLE(ho{k}, inner);"
              for k in range(n_out)]
    inner = ["        for (j = 0; j < inner; j += CG_W) {",
             "            const int w = inner - j < CG_W ? (int)(inner - j) : CG_W;"
             "  /* lanes in use */",
             *[f"            {x}" for x in loads + arithmetic + writes],
             "        }"]
    after = [f"        if (!so{k} && !ho{k}) q{k}[0] += row{k};" for k in sums]
    code = [_kernel_loop(f"cg_k{g}_any", n_in, n_out, steps, sums, inner, after)]
    layout = fixed_layout(c, group)
    if layout is not None:
        # the same statements with the steps the check below found: the branches decided
        fixed_loads = [f"cg_v a{k}; if (hh{k}) CG_LOAD(a{k}, p{k}, 1, j, w); "
                       f"else if (hw{k}) CG_WINDOW(a{k}, p{k}, ti{k}, ti{k} + inner + 8, j, w); "
                       f"else CG_GATHER(a{k}, p{k}, ti{k}, j, w);" if s == TABLE else
                       f"cg_v a{k}; CG_LOAD(a{k}, p{k}, {s}, j, w);" if s else
                       f"const cg_v a{k} = CG_C(p{k}[0]);"
                       for k, s in enumerate(layout[:n_in])]
        fixed_writes = []
        for k, (value, accumulate) in enumerate(stores):
            s = layout[n_in + k]
            fixed_writes.append(
                (f"if (ho{k} == CG_WSUMMED) CG_WSACC(q{k}, to{k}, to{k} + inner + 8, j, w, "
                 f"{value}); else CG_SACC(q{k}, to{k}, j, w, {value});" if accumulate else
                 f"CG_SCATTER(q{k}, to{k}, j, w, {value});") if s == TABLE else
                f"CG_ROW(row{k}, w, {value});" if accumulate and not s else
                f"CG_ACC(q{k}, 1, j, w, {value});" if accumulate else
                f"CG_STORE(q{k}, 1, j, w, {value});")
        statements = fixed_loads + arithmetic + fixed_writes
        # (the tables in the generic loop's order: the operands', then the results')
        fixed_steps = [f"    long oi{k} = 0;" + (
            f" const long *ti{k} = tab, hh{k} = ht[{k}] == CG_HOISTED && hbuf, "
            f"hw{k} = ht[{k}] == CG_WINDOWED; const double "
            f"*in{k} = hh{k} ? cg_hoist(&hnext, in[{k}], tab, inner) : in[{k}]; "
            f"tab += CG_TABLE(ht[{k}], inner);" if layout[k] == TABLE
            else f" const double *in{k} = in[{k}];")
                       for k in range(n_in)] + [
            f"    long oo{k} = 0;" + (f" const long *to{k} = tab, ho{k} = ht[{n_in + k}]; "
                                      f"tab += CG_TABLE(ho{k}, inner);"
                                      if layout[n_in + k] == TABLE else "")
            for k in range(n_out)]
        # (one loop, w lanes as in the generic one: a loop of the full vectors and a tail
        # beside it ran no faster here, 13 % fewer instructions, a third copy to compile)
        fixed_inner = ["        for (j = 0; j < inner; j += CG_W) {",
                       "            const int w = inner - j < CG_W ? (int)(inner - j) : CG_W;",
                       *[f"            {x}" for x in statements],
                       "        }"]
        fixed_after = [f"        q{k}[0] += row{k};" for k in sums if not layout[n_in + k]]
        code.append(_kernel_loop(f"cg_k{g}_fixed", n_in, n_out, fixed_steps,
                                 [k for k in sums if not layout[n_in + k]], fixed_inner,
                                 fixed_after))
        check = " && ".join(f"ht[{k}]" if s == TABLE else f"bs[{k}] == {s} && !ht[{k}]"
                            for k, s in enumerate(layout))
        code.append("\n".join([
            f"static void cg_k{g}(const long *meta, double *const *ptr) {{",
            f"    const long nd = meta[0], *bs = meta + 1 + nd + {n_in + n_out} * nd + 2, "
            f"*ht = bs + {n_in + n_out};",
            f"    if ({check}) cg_k{g}_fixed(meta, ptr);",
            f"    else cg_k{g}_any(meta, ptr);",
            "}"]))
    else:
        code.append(f"static void cg_k{g}(const long *meta, double *const *ptr) {{\n"
                    f"    cg_k{g}_any(meta, ptr);\n}}")
    return "\n\n".join(code)


def _kernel_loop(name: str, n_in: int, n_out: int, steps: list[str], sums: list[int],
                 inner: list[str], after: list[str]) -> str:
    """One loop function of a kernel (:func:`kernel_source`): the meta's reading, ``steps``
    (each array's offset, and where the loop reads them its step and table), the odometer
    over the outer axes around the ``inner`` loop, ``after`` at the end of each row."""
    # (flatten: the vector math of the node helpers inlined into each loop, as it was into
    # the one loop there was; the noinline lane-by-lane helpers stay calls)
    lines = ["#if defined(__GNUC__)", "__attribute__((flatten))", "#endif",
             f"static void {name}(const long *meta, double *const *ptr) {{",
             f"    const long nd = meta[0], *shape = meta + 1, *sti = shape + nd, "
             f"*sto = sti + {n_in} * nd;",
             "    /* the block: its axes (the last nb), its entries, each array's stride along",
             "       it, whether the array has a table (its offset at each entry), the tables */",
             f"    const long *blk = sto + {n_out} * nd, nb = blk[0], inner = blk[1], "
             f"*bs = blk + 2, *ht = bs + {n_in + n_out}, *tab = ht + {n_in + n_out};",
             "    const double *const *in = (const double *const *)ptr;",
             f"    double *const *out = ptr + {n_in};",
             f"    long outer = 1, idx[{MAX_RANK}], j, o, d;",
             "    (void)bs; (void)ht; (void)tab;",
             "    for (d = 0; d < nd - nb; d++) { outer *= shape[d]; idx[d] = 0; }",
             "    /* the operands gathered once (cg_hoist); without the memory, gathered each",
             "       block */",
             f"    long nh = 0; for (d = 0; d < {n_in}; d++) nh += ht[d] == CG_HOISTED;",
             "    double *hbuf = nh ? (double *)malloc(sizeof(double) * nh * inner) : NULL, "
             "*hnext = hbuf;",
             "    (void)hnext;",
             *steps]
    lines.append("    for (o = 0; o < outer; o++) {")
    lines += [f"        const double *p{k} = in{k} + oi{k};" for k in range(n_in)]
    lines += [f"        double *q{k} = out[{k}] + oo{k};" for k in range(n_out)]
    lines += [f"        double row{k} = -0.0;  /* -0.0 + x is x, signed zeros too */"
              for k in sums]
    lines += inner + after
    lines.append("        for (d = nd - nb - 1; d >= 0; d--) {  /* the next outer index */")
    lines.append("            idx[d]++;")
    lines += [f"            oi{k} += sti[{k} * nd + d];" for k in range(n_in)]
    lines += [f"            oo{k} += sto[{k} * nd + d];" for k in range(n_out)]
    lines.append("            if (idx[d] < shape[d]) break;")
    lines += [f"            oi{k} -= sti[{k} * nd + d] * shape[d];" for k in range(n_in)]
    lines += [f"            oo{k} -= sto[{k} * nd + d] * shape[d];" for k in range(n_out)]
    lines.append("            idx[d] = 0;")
    lines.append("        }")
    lines.append("    }")
    lines.append("    free(hbuf);")
    lines.append("}")
    return "\n".join(lines)


def fixed_layout(c: Circuit, group: Group) -> list[int] | None:
    """Each array's step along the kernel's innermost axis in the layout the circuit's
    shapes give (the operands in order, then the results): 1 for an operand that varies
    along the point's last axis (contiguous there, as NumPy makes arrays) or a result that
    is written along it, 0 for an operand the kernel broadcasts along it (a length-1 or
    missing axis, a number) or a sum along it (the row's sum in a register). Rows shorter
    than ``SHORT_ROW`` run in blocks (:func:`_blocked`): there an array of the whole point
    steps by 1, one of no axes by 0, any other through its table of offsets (``TABLE``),
    a sum too (its row in a register where it has no axis of the point; through its table,
    by windows where they fit, ``CG_WSACC``: with them the fixed loop ran faster than the
    generic one, GMM d = 2, K = 50: 43 against 54 µs, without them slower, 147 -> 197).
    None where the loop's innermost axis is not the point's last (a point of no axes or a
    last axis of length 1): the generic loop only.

        >>> import circuitgrad as cg
        >>> c = cg.parse("J = sum(exp(x) * y + x)", shapes={"x": (3000,), "y": ()})
        >>> groups, _ = fusion_groups(c)
        >>> fixed_layout(c, groups[0])  # x contiguous, y broadcast, J the rows' sums
        [1, 0, 0]
    """
    point = group.shape
    if not point or point[-1] == 1:
        return None
    short = point[-1] < SHORT_ROW
    steps = []
    for a in group.operands:
        shape = c.shape(a)
        if c.op(a) == "broadcast_to":  # (the driver passes its source: _broadcast_view)
            x = c.args(a)[0]
            root = x  # (a broadcast of a broadcast of a number: every stride 0, GMM's ones)
            while c.op(root) == "broadcast_to":
                root = c.args(root)[0]
            axis = (c.params(a) or {}).get("axis")
            shape = () if _literal_const(c, root) else c.shape(x) if axis is None else (
                c.shape(x)[:axis] + (1,) + c.shape(x)[axis:])
        if not short:
            steps.append(int(bool(shape) and shape[-1] != 1))
        else:  # (in a block: the whole point, none of it, or a table)
            full = (1,) * (len(point) - len(shape)) + tuple(shape) == tuple(point)
            steps.append(1 if full else 0 if all(n == 1 for n in shape) else TABLE)
    # (short rows of arrays of the whole point merge into long rows, unless a sum along the
    # last axis keeps them apart)
    merged = short and all(s == 1 for s in steps)
    steps += [1] * len(group.results)
    for s, _ in group.sums:
        kept, _ = _reduced_view(c, s, point)
        if short and not (merged and kept[-1] != 1):
            # through its table (a total sum too: _blocked adds it entry by entry, in the
            # loop's order); a guess, which the call checks
            steps.append(TABLE)
            continue
        steps.append(int(kept[-1] != 1))
    return steps


TABLE = 2  # fixed_layout's step of an array read or written through its table


ROW_OPS = ("logsumexp", "softmax", "log_softmax")  # along the last axis: one C pass per row


def row_op(c: Circuit, i: int) -> bool:
    """Node ``i`` is a ``logsumexp``, ``softmax`` or ``log_softmax`` along its operand's last
    axis: a row kernel (:func:`row_kernel_source`) computes it."""
    if c.op(i) not in ROW_OPS:
        return False
    shape, axis = c.shape(c.args(i)[0]), (c.params(i) or {}).get("axis")
    return bool(shape) and all(shape) and (axis == len(shape) - 1 or axis is None and
                                           len(shape) == 1)


ROW_KERNELS_C = r"""
#if CG_W > 1
static inline double cg_hmax(cg_v v) { cg_lanes u = {v}; double m = u.d[0]; int l;
    for (l = 1; l < CG_W; l++) m = cg_maximum(m, u.d[l]); return m; }
static inline double cg_hsum(cg_v v) { cg_lanes u = {v}; double s = u.d[0]; int l;
    for (l = 1; l < CG_W; l++) s += u.d[l]; return s; }
static inline cg_v cg_keep(cg_v v, int w) { cg_lanes u = {v}; int l;  /* lanes >= w: 0 */
    for (l = w; l < CG_W; l++) u.d[l] = 0.0; return u.v; }
#else
#define cg_hmax(v) (v)
#define cg_hsum(v) (v)
#define cg_keep(v, w) (v)
#endif
/* The shift of a row: its maximum where finite, else 0 (so x - shift is never inf - inf). */
#define CG_SHIFT(m) cgv_where(w, cgv_equal(w, (m) - (m), CG_C(0.0)), (m), CG_C(0.0))
/* logsumexp (op 0), softmax (1), log_softmax (2) along rows of n entries: a row per lane
   where rows are shorter than a vector or at most CG_ROW_LANES long (its entries gathered),
   else each row along the vectors; the sum of exp(x - shift) in the order of its entries (lanes: their own sums,
   added in lane order). The same operations for a row wherever it falls. */
/* Rows of at most CG_ROW_LANES entries: a row per lane (its entries gathered, one exp per
   entry and one log per 8 rows), where along the vectors each row took two exps, a horizontal
   sum and a one-lane log for rows of 10 (the gradient of log_softmax over (65536, 10): 8.3 ->
   4.2 ms; at 16 entries 7.4 -> 6.9; at 24 slower, 9.7 -> 10-11). */
#define CG_ROW_LANES 16
static void cg_rows_run(int op, const double *x, double *y, long rows, long n) {
    long r, k, t[8];
    int w, l;
    if (n < CG_W || (CG_W > 1 && n <= CG_ROW_LANES)) {
        for (r = 0; r < rows; r += CG_W) {
            const double *p = x + r * n;
            cg_v m, a, e, s, v, xs[CG_ROW_LANES];  /* the rows' entries, gathered once */
            w = rows - r < CG_W ? (int)(rows - r) : CG_W;  /* rows in use */
            for (l = 0; l < 8; l++) t[l] = (l < w ? l : 0) * n;
            for (k = 0; k < n; k++) CG_GATHER(xs[k], p + k, t, 0, w);
            m = xs[0];
            for (k = 1; k < n; k++) m = cgv_maximum(w, m, xs[k]);
            m = CG_SHIFT(m);
            s = CG_C(0.0);
            for (k = 0; k < n; k++) {
                e = cgv_exp(w, xs[k] - m);
                s = k ? s + e : e;
                if (op == 1) xs[k] = e;  /* softmax: exp(x - shift), divided below */
            }
            if (op == 0) { v = cgv_log(w, s) + m; CG_STORE(y, 1, r, w, v); continue; }
            if (op == 2) s = cgv_log(w, s);
            for (k = 0; k < n; k++) {
                a = xs[k];
                v = op == 1 ? a / s : (a - m) - s;
                CG_SCATTER(y + r * n + k, t, 0, w, v);
            }
        }
        return;
    }
    for (r = 0; r < rows; r++) {
        const double *p = x + r * n;
        double *q = y + r * n;
        cg_v m, a, e, s, v;
        double sh;
        w = CG_W;
        CG_LOAD(m, p, 1, 0, CG_W);
        for (k = CG_W; k < n; k += CG_W) {
            w = n - k < CG_W ? (int)(n - k) : CG_W;  /* (unused lanes: lane 0's entry) */
            CG_LOAD(a, p, 1, k, w);
            m = cgv_maximum(CG_W, m, a);
        }
        w = 1;
        sh = cg_hmax(m);
        m = CG_SHIFT(CG_C(sh));
        s = CG_C(0.0);
        for (k = 0; k < n; k += CG_W) {
            w = n - k < CG_W ? (int)(n - k) : CG_W;
            CG_LOAD(a, p, 1, k, w);
            e = cgv_exp(w, a - m);
            if (w < CG_W) e = cg_keep(e, w);
            s = k ? s + e : e;
            if (op == 1) CG_STORE(q, 1, k, w, e);  /* softmax: exp(x - shift), divided below */
        }
        w = 1;
        s = CG_C(cg_hsum(s));
        if (op == 0) { v = cgv_log(1, s) + m; CG_STOREW1(y, r, v); continue; }
        if (op == 2) s = cgv_log(1, s);
        for (k = 0; k < n; k += CG_W) {
            w = n - k < CG_W ? (int)(n - k) : CG_W;
            if (op == 1) { CG_LOAD(a, q, 1, k, w); v = a / s; }
            else { CG_LOAD(a, p, 1, k, w); v = (a - m) - s; }
            CG_STORE(q, 1, k, w, v);
        }
    }
}
"""


def row_kernel_source() -> str:
    """The C of the row kernels (``logsumexp``, ``softmax``, ``log_softmax`` along the last
    axis), entry ``cg_rows(op, x, y, rows, n)``: in ``to_numpy`` each is 6 NumPy passes over
    its operand (the maximum, x - m, exp, the sum, the log, the shift back), and a reduction
    along short rows costs ~15 ns a row in NumPy's loops (GMM d = 2, K = 5: the logsumexp over
    1000 rows of 5 entries took 97 µs)."""
    return ROW_KERNELS_C.strip() + (
        "\n\nvoid cg_rows(int op, const long *meta, double *const *ptr) {\n"
        "    cg_rows_run(op, ptr[0], ptr[1], meta[0], meta[1]);\n}")


def run_rows(kernel: Any, op: int, x: Any, metas: dict | None = None) -> Any:
    """A row kernel (``op``: 0 ``logsumexp``, 1 ``softmax``, 2 ``log_softmax``) over the last
    axis of ``x`` (its rows: every other axis, batch axes included). ``metas`` (a function's
    own dict): the kernel's meta by ``x``'s shape, kept."""
    x = x if type(x) is np.ndarray and x.dtype is _FLOAT64 and x.flags.c_contiguous and \
        x.flags.aligned else np.ascontiguousarray(x, dtype=np.float64)
    shape = x.shape
    meta = metas.get(shape) if metas is not None else None
    if meta is None:
        n = shape[-1]
        meta = np.array([x.size // n, n], dtype=np.int64)
        if metas is not None and len(metas) < 256:
            metas[shape] = meta
    y = np.empty(shape[:-1] if op == 0 else shape)
    kernel(op, meta, (x, y), 1)
    return y[()] if not y.ndim else y


def _reduced_view(c: Circuit, s: int, point: tuple[int, ...]) -> tuple[tuple, tuple]:
    """For sum node ``s`` of a member of point shape ``point``: the shape of its output's
    point with the summed axes kept as 1 (how the output broadcasts over the loop), and the
    output's point shape."""
    params, rank = c.params(s) or {}, len(point)
    if c.op(s) == "sum_to":
        target = tuple(params["shape"])
        return (1,) * (rank - len(target)) + target, target
    axis = params.get("axis")
    if axis is None:
        return (1,) * rank, ()
    return point[:axis] + (1,) + point[axis + 1:], point[:axis] + point[axis + 1:]


def _coalesced(shape: tuple, strides: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """The loop's axes with length-1 axes dropped and neighbours merged where every array
    steps through both as through one (fewer, longer rows for the kernel's inner loop)."""
    dims = [d for d, n in enumerate(shape) if n != 1]
    out_shape: list[int] = []
    out_strides: list[list[int]] = [[] for _ in strides]
    for d in dims:
        if out_shape and all(s[-1] == st[d] * shape[d] for s, st in zip(out_strides, strides)):
            out_shape[-1] *= shape[d]
            for s, st in zip(out_strides, strides):
                s[-1] = st[d]
            continue
        out_shape.append(shape[d])
        for s, st in zip(out_strides, strides):
            s.append(st[d])
    return out_shape, out_strides


def _strides(a: np.ndarray, shape: tuple) -> list[int]:
    """``a``'s strides in entries as it broadcasts to ``shape`` (0 along broadcast axes)."""
    lead = len(shape) - a.ndim
    return [0] * lead + [0 if n == 1 and m != 1 else s // 8
                         for n, m, s in zip(a.shape, shape[lead:], a.strides)]


def run_kernel(kernel: Any, operands: tuple, point: tuple[int, ...], results: tuple,
               plans: dict | None = None) -> Any:
    """Call a group's kernel on its operands (arrays or numbers, broadcast with the group's
    point shape ``point``): ``results`` says for each result ``None`` (a member: a new array
    of the broadcast shape) or ``(kept, shape)`` (a sum: its point ``shape``, ``kept`` the
    point with the summed axes as 1). One array, or a tuple. ``plans`` (a function's own
    dict) keeps the loop's shape and strides by the operands' shapes and strides: a call
    like an earlier one allocates its results and passes their addresses, nothing more."""
    # (a float64 view whose strides are not whole entries, a field of a structured array:
    # copied, as the kernel's strides count entries; and an unaligned one)
    arrays = operands
    for a in operands:
        if type(a) is not np.ndarray or a.dtype is not _FLOAT64 or not a.flags.aligned:
            arrays = [a if type(a) is np.ndarray and a.dtype is _FLOAT64 and a.flags.aligned
                      else np.array(a, dtype=np.float64) for a in operands]
            break
    key = (kernel, point, results, *[a.shape for a in arrays], *[a.strides for a in arrays])
    plan = plans.get(key) if plans is not None else None
    if plan is None:
        plan = _kernel_plan(arrays, point, results)
        if plans is not None:
            if len(plans) >= 256:  # (a function called on many batch shapes)
                plans.clear()
            plans[key] = plan
    meta, allocations = plan
    outs = [np.empty(shape) if empty else np.zeros(shape) for empty, shape in allocations]
    kernel(meta, (*arrays, *outs), len(outs))
    if len(outs) == 1:
        return outs[0] if outs[0].ndim else outs[0][()]  # a number, as NumPy's sums give
    return tuple([o if o.ndim else o[()] for o in outs])


_FLOAT64 = np.dtype(np.float64)


def _kernel_plan(arrays: list[np.ndarray], point: tuple[int, ...], results: tuple
                 ) -> tuple[np.ndarray, list[tuple[bool, tuple]]]:
    """The kernel's meta (the loop's merged axes and each array's strides along them) and, for
    each result, whether it starts empty (else zeros: a sum) and its shape."""
    shape = np.broadcast(*arrays, np.empty(point)).shape if len(arrays) < 31 else \
        np.broadcast_shapes(*(a.shape for a in arrays), point)
    batch = shape[:len(shape) - len(point)]
    strides = [_strides(a, shape) for a in arrays]
    allocations = []
    for spec in results:
        if spec is None:
            strides.append([s // 8 for s in np.empty(shape).strides])
            allocations.append((True, shape))
        else:
            kept, reduced = spec
            o = np.zeros(batch + reduced)  # +0.0, as NumPy starts a sum (-0.0s sum to +0.0)
            strides.append(_strides(o.reshape(batch + kept), shape))
            allocations.append((False, batch + reduced))
    dims, strides = _coalesced(shape, strides)
    dims, strides, nb, block, steps, tables = _blocked(
        dims, strides, [False] * len(arrays) + [not empty for empty, _ in allocations])
    if len(dims) > MAX_RANK:  # (NumPy makes no array of more axes; the odometer holds this many)
        raise ShapeError(f"to_fused: {len(dims)} axes in a kernel's loop, more than {MAX_RANK}")
    outer = len(dims) - nb
    # an operand through its table that every block reads alike: gathered once (cg_hoist)
    flags = [0 if t is None else HOISTED if HOIST and k < len(arrays) and not any(
        strides[k][:outer]) else 1 for k, t in enumerate(tables)]
    for k, t in enumerate(tables):  # an operand's vectors each read from a window: CG_WINDOW
        window = _windows(t[:block]) if flags[k] == 1 and WINDOWS and k < len(arrays) else None
        if window is not None:
            flags[k], tables[k] = WINDOWED, np.concatenate([t, window])
        # a sum's places in each vector within 8 entries: CG_WSACC
        window = _sum_windows(t[:block]) if flags[k] == 1 and WINDOWS and k >= len(arrays) \
            and not allocations[k - len(arrays)][0] else None
        if window is not None:
            if _fresh_places(dims[:outer], strides[k][:outer], t[:block]):
                window.reshape(-1, WSUM_LONGS)[:, 1] |= FRESH
            flags[k], tables[k] = WSUMMED, np.concatenate([t, window])
    meta = np.array([len(dims), *dims, *(s for st in strides for s in st), nb, block, *steps,
                     *flags,
                     *(x for t in tables if t is not None for x in t)], dtype=np.int64)
    return meta, allocations


def _blocked(dims: list[int], strides: list[list[int]], sums: list[bool]) -> tuple:
    """The kernel's innermost loop: the last axis, or, where its rows are shorter than
    ``SHORT_ROW``, a block of the last axes of up to ``BLOCK`` entries (the next axis split
    by a divisor of its length to fill it), run as one row of vectors: an array that steps
    through the block evenly is read with its step, any other through its table of offsets
    (a gather; GMM d = 2: rows of 2 entries, 2 of a vector's 8 lanes used). The loop's order,
    and so each sum's order of terms, is the same; a sum whose output steps unevenly (or not
    at all) in a block is added entry by entry, in that order.

    Returns the axes, the strides, the block's axes and entries, each array's step, and each
    array's table (None where it steps evenly).

        >>> dims, strides, nb, block, steps, tables = _blocked([1000, 2], [[2, 1], [0, 1]],
        ...                                                    [False, False])
        >>> dims, nb, block, steps, [t is None for t in tables]  # rows of 2: blocks of 125
        ([8, 125, 2], 2, 250, [1, 0], [True, False])
    """
    n = len(strides)
    if not dims:
        return dims, strides, 0, 1, [0] * n, [None] * n
    nb, block = 1, dims[-1]
    if block < SHORT_ROW:
        while nb < len(dims) and block * dims[-nb - 1] <= BLOCK:
            nb += 1
            block *= dims[-nb]
        if nb < len(dims):  # part of the next axis: its length's largest divisor that fits
            size = dims[-nb - 1]
            part = max(k for k in range(1, BLOCK // block + 1) if size % k == 0)
            if part > 1:
                cut = len(dims) - nb - 1
                dims = dims[:cut] + [size // part, part] + dims[cut + 1:]
                strides = [st[:cut] + [st[cut] * part, st[cut]] + st[cut + 1:] for st in strides]
                nb += 1
                block *= part
    if nb == 1:
        return dims, strides, 1, block, [st[-1] for st in strides], [None] * n
    at = np.indices(dims[-nb:]).reshape(nb, -1)  # each entry's index along the block's axes
    steps, tables = [], []
    for st, is_sum in zip(strides, sums):
        offsets = np.asarray(st[-nb:], dtype=np.int64) @ at
        step = int(offsets[1] - offsets[0])
        even = (step or not is_sum) and np.array_equal(offsets, step * np.arange(block))
        steps.append(step if even else 0)
        # (padded: a gather's vector of offsets is read whole, its unused lanes masked)
        tables.append(None if even else np.concatenate([offsets, np.zeros(8, np.int64)]))
    return dims, strides, nb, block, steps, tables


def _windows(offsets: np.ndarray) -> np.ndarray | None:
    """For each vector of 8 of a block's ``offsets`` (the last partial): its window's first
    offset, the mask of the window's entries, each lane's place in it (unused lanes lane
    0's), 10 numbers a vector; None where a vector's offsets span more than 8 entries.

        >>> _windows(np.array([0, 1, 0, 1, 2, 3, 2, 3, 4, 5])).reshape(2, 10).tolist()
        [[0, 15, 0, 1, 0, 1, 2, 3, 2, 3], [4, 3, 0, 1, 0, 0, 0, 0, 0, 0]]
    """
    n = len(offsets)
    lanes = np.concatenate([offsets, np.repeat(offsets[(n - 1) // 8 * 8], -n % 8)])
    lanes = lanes.reshape(-1, 8)
    first, span = lanes.min(axis=1), lanes.max(axis=1) - lanes.min(axis=1) + 1
    if (span > 8).any():
        return None
    return np.column_stack([first, (1 << span) - 1, lanes - first[:, None]]).astype(
        np.int64).ravel()




def _fresh_places(dims: list[int], strides: list[int], offsets: np.ndarray) -> bool:
    """Whether each place of a sum (its ``offsets`` in a block, its ``strides`` along the outer
    axes ``dims``) gets its terms from one vector of one block only: its window then holds the
    +0.0 its zeros start from when that vector adds to it (:func:`_sum_windows`).

        >>> _fresh_places([3], [4], np.array([0, 0, 1, 1, 2, 2, 3, 3]))  # rows of 2 summed
        True
        >>> _fresh_places([3], [0], np.array([0, 0, 1, 1, 2, 2, 3, 3]))  # and over the blocks
        False
    """
    n = math.prod(dims)
    if n * len(offsets) > 1 << 22:  # (too many to check: loaded, as any other)
        return False
    outer = (np.indices(dims).reshape(len(dims), -1).T @ np.asarray(strides, dtype=np.int64)
             if dims else np.zeros(1, dtype=np.int64))
    # each vector's distinct places, then every (outer index, vector) place counted: fresh
    # where none is counted twice (a count, linear: np.unique's sort took ~0.3-2.5 s at 2^22)
    distinct = np.concatenate([np.unique(offsets[j:j + 8]) for j in range(0, len(offsets), 8)])
    places = (outer[:, None] + distinct[None, :]).ravel()
    return bool(np.bincount(places).max() <= 1) if places.size else True


def _sum_windows(offsets: np.ndarray) -> np.ndarray | None:
    """For each vector of 8 of a sum's ``offsets`` in a block (the last partial; its lanes
    past the block add nothing): the window's first offset and mask, the rounds, then for
    each of ``WSUM_ROUNDS`` rounds the lane whose term each place of the window adds in it
    and the mask of the places that add one (a place's k-th lane in round k), WSUM_LONGS a
    vector (the window's mask: its places); None where a vector's places span more than 8 entries or a place has more
    terms than rounds.

        >>> v = _sum_windows(np.array([0, 0, 1, 1, 2]))  # a sum along rows of 2
        >>> v[:3].tolist(), v[3:12].tolist(), v[12:21].tolist()
        ([0, 7, 2], [0, 2, 4, 0, 0, 0, 0, 0, 7], [1, 3, 0, 0, 0, 0, 0, 0, 3])
    """
    out = []
    for j in range(0, len(offsets), 8):
        lanes = offsets[j:j + 8]
        first = int(lanes.min())
        span = int(lanes.max()) - first + 1
        if span > 8:
            return None
        rounds = [[0] * 8 + [0] for _ in range(WSUM_ROUNDS)]
        seen = [0] * 8
        for lane, place in enumerate(int(x) - first for x in lanes):
            if seen[place] == WSUM_ROUNDS:
                return None
            rounds[seen[place]][place] = lane
            rounds[seen[place]][8] |= 1 << place
            seen[place] += 1
        # the mask of the places themselves (every place adds in round 0): an entry between
        # two places that no lane adds to is neither loaded nor stored (with FRESH it would be
        # overwritten with +0.0; under threads, written back by a part that does not own it)
        out += [first, rounds[0][8], max(seen), *(x for r in rounds for x in r)]
    return np.array(out, dtype=np.int64)


def contract(a: Any, b: Any, la: str, lb: str, lo: str, point: tuple[int, ...],
             repeats: int = 1, kernel: Any = None) -> Any:
    """``sum(a * b)`` over the letters not in ``lo`` (see :func:`contraction_spec`) as one
    ``matmul``: the letters of both operands and the output stack, those of both only are
    contracted, the others are the rows and columns. The points' batch axes stay stacking axes
    of the matmul, so a point of a batch runs the product a point alone runs. ``kernel``
    (a small contraction, :func:`small_contraction`): the library's loop instead of BLAS
    (:func:`contract_small`)."""
    a = a if type(a) is np.ndarray and a.dtype is _FLOAT64 else np.asarray(a, dtype=np.float64)
    b = b if type(b) is np.ndarray and b.dtype is _FLOAT64 else np.asarray(b, dtype=np.float64)
    if kernel is not None:
        return kernel(a, b, la, lb, lo, point, repeats)
    wanted = lo
    (ones_a, alone_a, la), (ones_b, alone_b, lb), lo, (stack, inner, rows, cols) = \
        _contraction_letters(la, lb, lo)
    if not alone_a and not alone_b and len(rows) <= 1 and len(cols) <= 1 and len(inner) <= 1:
        # the common case, its axes kept by the letters and ranks (~12 -> ~5 µs of Python)
        if ones_a:
            a = a.squeeze(ones_a)
        if ones_b:
            b = b.squeeze(ones_b)
        long = (a.shape[a.ndim - len(la) + la.index(rows[0])] if rows else 0,
                b.shape[b.ndim - len(lb) + lb.index(cols[0])] if cols else 0)
        R, nb = _matmul_views(a, b, *_views_plan(la, lb, lo, "".join(stack), "".join(rows),
                                                  "".join(inner), "".join(cols), a.ndim,
                                                  b.ndim, *long))
        return _carried(R, nb, repeats, lo, wanted, point)
    if ones_a:
        a = np.squeeze(a, axis=ones_a)
    if ones_b:
        b = np.squeeze(b, axis=ones_b)
    # a letter of one operand alone that the output drops: summed in that operand first
    if alone_a:
        a = np.sum(a, axis=alone_a)
    if alone_b:
        b = np.sum(b, axis=alone_b)
    sizes = {**dict(zip(la, a.shape[a.ndim - len(la):])),
             **dict(zip(lb, b.shape[b.ndim - len(lb):]))}

    def arranged(x: np.ndarray, lx: str, order: list[str], two: tuple[int, int]) -> np.ndarray:
        nb = x.ndim - len(lx)
        x = np.transpose(x, tuple(range(nb)) + tuple(nb + lx.index(ch) for ch in order))
        return np.reshape(x, x.shape[:nb] + tuple(sizes[ch] for ch in stack) + two)

    if len(rows) <= 1 and len(cols) <= 1 and len(inner) <= 1:
        R = _matmul_in_place(a, la, b, lb, lo, stack, rows, inner, cols, sizes)
        nb = R.ndim - len(lo)
    else:
        m_size = math.prod(sizes[ch] for ch in rows)
        n_size = math.prod(sizes[ch] for ch in cols)
        k_size = math.prod(sizes[ch] for ch in inner)
        A = arranged(a, la, stack + rows + inner, (m_size, k_size))
        B = arranged(b, lb, stack + inner + cols, (k_size, n_size))
        R = A @ B  # (..., stack, rows, cols)
        R = np.reshape(R, R.shape[:-2] + tuple(sizes[ch] for ch in rows + cols))
        now = stack + rows + cols
        nb = R.ndim - len(now)
        order = tuple(range(nb)) + tuple(nb + now.index(ch) for ch in lo)
        if order != tuple(range(R.ndim)):  # contiguous, for the kernels' vectors that read it
            R = np.ascontiguousarray(np.transpose(R, order))
    return _carried(R, nb, repeats, lo, wanted, point)


def _carried(R: np.ndarray, nb: int, repeats: int, lo: str, wanted: str,
             point: tuple[int, ...]) -> np.ndarray:
    """A contraction's matmul ``R`` (``nb`` batch axes, then ``lo``'s) as the sum node's value:
    each term ``repeats`` times, the kept and the constant axes of the point put back."""
    if repeats != 1:  # each term summed that many times: a product's sum along a constant axis
        R = R * float(repeats)
    carried = tuple(n if ch in lo else 1 for ch, n in zip(wanted, point))
    R = R.reshape(R.shape[:nb] + carried)
    if carried != tuple(point):  # an axis along which neither operand varies: the same sums
        R = np.array(np.broadcast_to(R, R.shape[:nb] + tuple(point)))
    return R


SHORT_COLUMNS = 8  # a matmul of fewer columns, and many rows, runs transposed (_views_plan)
# A contraction whose contracted and column letters are at most this long runs in the
# library's own loop (:func:`mm_kernel_source`), not BLAS: NumPy's matmul of 5 stacked
# 1000 × 10 times 10 × 10 took 71 µs (81 within the GMM gradient at d = 10, K = 5) and of
# 1000 × 2 times 2 × 2, 26 µs; BLAS's blocking is for larger matrices.
MM_INNER = 32
MM_COLUMNS = 32
MM_COPY = 1 << 16  # the most entries of a right operand copied for contiguous columns
MM_VECTOR = 8  # columns of one vector (AVX-512): the loop, whatever the layout
# the output's vectors computed together, rows × vectors of a row: their sums independent,
# in registers (AVX-512 has 32: these, a row of b's vectors and a's entry)
MM_REGISTERS = 12
# with more terms than MM_INNER, every row in one block (b read once): up to this many vectors
MM_REGISTERS_LONG = 20

MM_C = r"""
/* Contraction {j}: o[r, c] = sum over k of a[r, k] * b[k, c] ({m} x {kn} times {kn} x {n})
   for each index of the leading axes (batch and stacking axes: an odometer), the terms added
   to +0.0 left to right, k = 0, 1, ..., for every entry wherever it falls (a point of a batch
   is the point alone, bit for bit); each step one fused multiply-add on AVX-512 (as BLAS:
   one rounding; 63 against 73 µs for GMM d = 10's L·(x − μ)), a product and a sum at other
   widths; RB rows at a time, CG_W columns a vector (b's columns contiguous: the driver
   copies it where they are not). */
#ifndef CG_FMA  /* a * b + c rounded once where the vector ISA has it (as BLAS), else twice */
#if CG_W == 8 && defined(__AVX512F__) && !defined(__clang__)
#define CG_FMA(a, b, c) __builtin_ia32_vfmaddpd512_mask((a), (b), (c), (unsigned char)-1, 4)
#elif CG_W == 8 && defined(__AVX512F__)
#define CG_FMA(a, b, c) ((cg_v)__builtin_ia32_vfmaddpd512_mask((a), (b), (c), (unsigned char)-1, 4))
#else
#define CG_FMA(a, b, c) ((a) * (b) + (c))
#endif
#endif
#ifndef CG_UNROLL  /* the loops over the registers' rows and vectors, unrolled (acc in registers) */
#if defined(__clang__)
#define CG_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define CG_UNROLL _Pragma("GCC unroll 32")
#else
#define CG_UNROLL
#endif
#endif
static void cg_mm{j}(const long *meta, double *const *ptr) {{
    enum {{ M = {m}, KN = {kn}, N = {n}, NCH = (N + CG_W - 1) / CG_W,
           RBMAX = {registers} / NCH > 0 ? {registers} / NCH : 1, RB = M < RBMAX ? M : RBMAX }};
    const long nd = meta[0], *shape = meta + 1, *sa = shape + nd, *sb = sa + nd,
        *so = sb + nd, *st = so + nd;
    const long am = st[0], ak = st[1], bk = st[2], om = st[3], on = st[4];
    const double *a0 = ptr[0], *b0 = ptr[1];
    double *o0 = ptr[2];
    long idx[{max_rank}], outer = 1, oa = 0, ob = 0, oo = 0, o, d, r, k;
    int i, h, w;
    for (d = 0; d < nd; d++) {{ outer *= shape[d]; idx[d] = 0; }}
    for (o = 0; o < outer; o++) {{
        const double *a = a0 + oa, *b = b0 + ob;
        double *q = o0 + oo;
        for (r = 0; r < M; r += RB) {{
            const int rows = M - r < RB ? (int)(M - r) : RB;
            cg_v acc[RB][NCH];
            CG_UNROLL for (i = 0; i < RB; i++) CG_UNROLL for (h = 0; h < NCH; h++)
                acc[i][h] = CG_C(0.0);  /* +0.0, as NumPy starts a sum (-0.0s sum to +0.0) */
            for (k = 0; k < KN; k++) {{
                cg_v bv[NCH], av[RB];
                CG_UNROLL for (h = 0; h < NCH; h++) {{  /* (a row's last vector: masked) */
                    w = N - h * CG_W < CG_W ? (int)(N - h * CG_W) : CG_W;
                    CG_LOAD(bv[h], b + k * bk, 1, h * CG_W, w);
                }}
                CG_UNROLL for (i = 0; i < RB; i++)
                    av[i] = CG_C(a[(r + (i < rows ? i : 0)) * am + k * ak]);
                CG_UNROLL for (i = 0; i < RB; i++) CG_UNROLL for (h = 0; h < NCH; h++)
                    acc[i][h] = CG_FMA(av[i], bv[h], acc[i][h]);
            }}
            CG_UNROLL for (i = 0; i < RB; i++) CG_UNROLL for (h = 0; h < NCH; h++) {{
                if (i >= rows) continue;
                w = N - h * CG_W < CG_W ? (int)(N - h * CG_W) : CG_W;
                CG_STORE(q + (r + i) * om, on, h * CG_W, w, acc[i][h]);
            }}
        }}
        for (d = nd - 1; d >= 0; d--) {{  /* the next leading index */
            idx[d]++;
            oa += sa[d]; ob += sb[d]; oo += so[d];
            if (idx[d] < shape[d]) break;
            oa -= sa[d] * shape[d]; ob -= sb[d] * shape[d]; oo -= so[d] * shape[d];
            idx[d] = 0;
        }}
    }}
}}
"""


def mm_kernel_source(j: int, m: int, kn: int, n: int) -> str:
    """The C of small contraction ``j``: an ``m`` × ``kn`` times ``kn`` × ``n`` product for
    each leading index (see ``MM_C``); entry ``cg_mm(j, meta, ptr)``."""
    registers = MM_REGISTERS_LONG if kn > MM_INNER else MM_REGISTERS
    return MM_C.format(j=j, m=m, kn=kn, n=n, registers=registers,
                       max_rank=MAX_RANK).strip()


def _block_rows(n: int, registers: int = MM_REGISTERS) -> int:
    """The rows of ``n`` columns a small contraction computes at once with 8-lane vectors."""
    return max(registers // -(-n // 8), 1)


def small_contraction(la: str, lb: str, lo: str, shape: tuple[int, ...],
                      shape_a: tuple[int, ...] | None = None,
                      shape_b: tuple[int, ...] | None = None) -> tuple[int, int, int] | None:
    """The matrix sizes (rows, contracted, columns) of the contraction of a product of point
    shape ``shape`` with letters ``la``, ``lb``, ``lo`` (:func:`contraction_spec`; operands
    of point shapes ``shape_a``, ``shape_b``) where the library's loop computes it, else None
    (BLAS): one letter (or none) of each kind, no letter of one operand alone, at most
    ``MM_COLUMNS`` columns; more than ``MM_INNER`` terms only where every row fits one block
    (``MM_REGISTERS_LONG``: b read once); else the columns one vector (``MM_VECTOR``) or the
    right operand transposed (BLAS's case that loses). The columns are the output's last
    letter where it is a row or column letter (as :func:`_views_plan` turns the product), so
    the stores are along the output's rows. Measured (one CPU, GMM gradient, 1000 points):
    d = 2, all three (L·(x − μ) 20.9 -> 14.7 µs, its adjoints 16.1 -> 14.4 and 15.3 ->
    12.3); d = 10, L·(x − μ), L transposed (83 -> 54 µs; ḡ·L stays BLAS: 45.5 against 54 in
    the loop), and the adjoint of L, 1000 terms of 10 × 10 (46 -> 38 µs, K = 50: 384 -> 311)."""
    (_, alone_a, _), (_, alone_b, _), squeezed, (stack, inner, rows, cols) = \
        _contraction_letters(la, lb, lo)
    if alone_a or alone_b or len(rows) > 1 or len(cols) > 1 or len(inner) > 1:
        return None
    if rows and (not cols or squeezed[-1] == rows[0]):
        rows, cols = cols, rows
    size = dict(zip("abcdefghijklmnopqrstuvwxyz", shape))
    m, kn, n = (size[x[0]] if x else 1 for x in (rows, inner, cols))
    if not (m and kn and n) or n > MM_COLUMNS:
        return None
    if kn > MM_INNER:  # many terms: every row in one block, b read once
        return (m, kn, n) if m <= _block_rows(n, MM_REGISTERS_LONG) else None
    if n > MM_VECTOR and shape_a is not None and shape_b is not None:
        # the plan on arrays of the points' shapes (their pages never touched): a right
        # operand read as it is goes to BLAS
        plan = _small_plan(np.empty(shape_a), np.empty(shape_b), la, lb, lo, (m, kn, n))
        if plan is False or plan[5] is None:
            return None
    return m, kn, n


def contract_small(kernel: Any, sizes: tuple[int, int, int], a: np.ndarray, b: np.ndarray,
                   la: str, lb: str, lo: str, point: tuple[int, ...], repeats: int = 1,
                   plans: dict | None = None) -> Any:
    """:func:`contract` by small contraction ``kernel`` (:func:`mm_kernel_source`, its matrix
    ``sizes``): the operands made C-contiguous (so the strides follow from the shapes, and a
    point of a batch runs the loop a point alone runs), the right one copied where its
    columns are not contiguous, the loop's meta planned once per pair of shapes (``plans``:
    the function's own dict)."""
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    if not b.flags.c_contiguous:
        b = np.ascontiguousarray(b)
    key = (a.shape, b.shape)
    plan = plans.get(key) if plans is not None else None
    if plan is None:
        plan = _small_plan(a, b, la, lb, lo, sizes)
        if plan is not False:
            _, shape, nb, kept, _, _ = plan
            carried = tuple(n if ch in kept else 1 for ch, n in zip(lo, point))
            # the shape :func:`_carried` gives the output where it only reshapes it (kept
            # with the plan: ~1 us of Python a call), else None
            plan = (*plan, shape[:nb] + carried if repeats == 1 and carried == tuple(point)
                    else None)
        if plans is not None:
            if len(plans) >= 256:  # (a function called on many batch shapes)
                plans.clear()
            plans[key] = plan
    if plan is False:  # (a right operand to copy, too large: BLAS)
        return contract(a, b, la, lb, lo, point, repeats)
    meta, shape, nb, kept, swap, copy, final = plan
    if swap:
        a, b = b, a
    if copy is not None:  # b's matrices with their columns contiguous
        ones, axes, index = copy
        b = np.ascontiguousarray((b.squeeze(ones) if ones else b).transpose(axes)[index])
    R = np.empty(shape)
    kernel(meta, (a, b, R), 1)
    if final is not None:
        return R if final == shape else R.reshape(final)
    return _carried(R, nb, repeats, kept, lo, point)


def _small_plan(a: np.ndarray, b: np.ndarray, la: str, lb: str, lo: str,
                sizes: tuple[int, int, int]) -> tuple | bool:
    """The meta of a small contraction's loop on ``a`` and ``b`` (C-contiguous): the leading
    axes (batch, stack) and each array's strides along them, then the strides of a's rows and
    terms, b's terms, the output's rows and columns (entries); the output's shape, its batch rank and its letters; whether a and b swap (the
    columns a's); how b is copied (None: read as it is). False where b's columns are not
    contiguous and it is too large to copy (``MM_COPY``). The views are
    :func:`_views_plan`'s, without its copy."""
    (ones_a, _, la_), (ones_b, _, lb_), lo_, (stack, inner, rows, cols) = \
        _contraction_letters(la, lb, lo)
    if ones_a:
        a = a.squeeze(ones_a)
    if ones_b:
        b = b.squeeze(ones_b)
    swap, axes_a, index_a, axes_b, index_b, at, nba, nbb, out_axes, index_out = _views_plan(
        la_, lb_, lo_, "".join(stack), "".join(rows), "".join(inner), "".join(cols),
        a.ndim, b.ndim)
    if swap:
        a, b, ones_a, ones_b = b, a, ones_b, ones_a
    A, B = a.transpose(axes_a)[index_a], b.transpose(axes_b)[index_b]
    copy = None
    if B.shape[-1] > 1 and B.strides[-1] != 8:
        if B.size > MM_COPY:
            return False
        copy = (ones_b, axes_b, index_b)
        B = np.ascontiguousarray(B)
    batch = np.broadcast_shapes(a.shape[:nba], b.shape[:nbb])
    shapes = (a.shape, b.shape)
    shape = batch + tuple([shapes[w][k] for w, k in at])
    out = np.empty(shape).transpose(out_axes)[index_out]
    if (A.shape[-2], A.shape[-1], B.shape[-1]) != tuple(sizes) or B.shape[-2] != sizes[1]:
        raise ShapeError(f"to_fused: a contraction of {A.shape[-2:]} times {B.shape[-2:]} "
                         f"matrices, compiled for {sizes} (rows, terms, columns)")
    lead = out.shape[:-2]

    def strides(x: np.ndarray) -> list[int]:  # along the leading axes, 0 where broadcast
        n = x.ndim - 2
        pad = len(lead) - n
        return [0] * pad + [0 if size == 1 and full != 1 else s // 8
                            for size, full, s in zip(x.shape[:n], lead[pad:], x.strides[:n])]

    matrix = [A.strides[-2], A.strides[-1], B.strides[-2], out.strides[-2], out.strides[-1]]
    meta = np.array([len(lead), *lead, *strides(A), *strides(B), *strides(out),
                     *(s // 8 for s in matrix)], dtype=np.int64)
    return meta, shape, len(batch), lo_, swap, copy


@functools.lru_cache(maxsize=4096)
def _views_plan(la: str, lb: str, lo: str, stack: str, rows: str, inner: str, cols: str,
                nd_a: int, nd_b: int, n_rows: int = 0, n_cols: int = 0) -> tuple:
    """What :func:`_matmul_in_place` does by the letters and the operands' ranks: whether the
    operands swap (the output's last axis the columns', for BLAS), each operand's axes and
    the index that adds a missing row or column axis, where each output letter's size is
    (operand, axis), the batch ranks, and the output view's axes and index (None: the
    product is made in its own layout and copied into the output's, the axes of that copy
    instead). Where that swap leaves fewer than ``SHORT_COLUMNS`` columns, many rows
    (``n_rows``, ``n_cols``: the sizes before it) and a transposed right operand, the other
    way round: NumPy's 5 calls of 1000 × 2 times a transposed 2 × 2 took 32 µs, of 2 × 2 times
    2 × 1000 and the copy 17 µs (GMM d = 2, K = 5: Q·(x − μ); K = 50: 266 and 137 µs)."""
    swap = bool(rows) and (not cols or lo[-1] == rows[0])
    short, many = (n_rows, n_cols) if swap else (n_cols, n_rows)
    right, columns = (la, rows) if swap else (lb, cols)  # the right operand, its columns
    copy = bool(rows and cols and inner) and short < SHORT_COLUMNS and \
        many >= 8 * SHORT_COLUMNS and right.index(inner) > right.index(columns)
    if copy:
        swap = not swap
    if swap:
        la, lb, rows, cols, nd_a, nd_b = lb, la, cols, rows, nd_b, nd_a

    def axes(nd: int, lx: str, order: str) -> tuple[int, ...]:
        nb = nd - len(lx)
        return tuple(range(nb)) + tuple(nb + lx.index(ch) for ch in order)

    def index(first: str, second: str) -> tuple:
        if not first:
            return (Ellipsis, None, slice(None)) if second else (Ellipsis, None, None)
        return (Ellipsis,) if second else (Ellipsis, None)

    sizes = tuple((0, nd_a - len(la) + la.index(ch)) if ch in la else
                  (1, nd_b - len(lb) + lb.index(ch)) for ch in lo)
    nba, nbb = nd_a - len(la), nd_b - len(lb)
    nb = max(nba, nbb)
    order = stack + rows + cols
    out_axes = tuple(range(nb)) + tuple(nb + lo.index(ch) for ch in order)
    if copy:  # the product (batch, stack, rows, columns) in the output's order
        out_axes = tuple(range(nb)) + tuple(nb + order.index(ch) for ch in lo)
        return (swap, axes(nd_a, la, stack + rows + inner), index(rows, inner),
                axes(nd_b, lb, stack + inner + cols), index(inner, cols), sizes, nba, nbb,
                out_axes, None)
    return (swap, axes(nd_a, la, stack + rows + inner), index(rows, inner),
            axes(nd_b, lb, stack + inner + cols), index(inner, cols), sizes, nba, nbb,
            out_axes, index(rows, cols))


def _matmul_views(a: np.ndarray, b: np.ndarray, swap: bool, axes_a: tuple, index_a: tuple,
                  axes_b: tuple, index_b: tuple, sizes: tuple, nba: int, nbb: int,
                  out_axes: tuple, index_out: tuple) -> tuple[np.ndarray, int]:
    """:func:`_matmul_in_place` with its plan (:func:`_views_plan`): the same calls."""
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    if not b.flags.c_contiguous:
        b = np.ascontiguousarray(b)
    if swap:
        a, b = b, a
    if index_out is None:  # the product in its own layout, copied into the output's
        R = np.matmul(a.transpose(axes_a)[index_a], b.transpose(axes_b)[index_b])
        return np.ascontiguousarray(R.transpose(out_axes)), max(nba, nbb)
    ba, bb = a.shape[:nba], b.shape[:nbb]
    batch = ba if ba == bb or not bb else bb if not ba else np.broadcast_shapes(ba, bb)
    shapes = (a.shape, b.shape)
    R = np.empty(batch + tuple([shapes[w][k] for w, k in sizes]))
    np.matmul(a.transpose(axes_a)[index_a], b.transpose(axes_b)[index_b],
              out=R.transpose(out_axes)[index_out])
    return R, len(batch)


@functools.lru_cache(maxsize=4096)
def _contraction_letters(la: str, lb: str, lo: str) -> tuple:
    """What :func:`contract` does by the letters alone (kept: ~15 µs of Python a call): for
    each operand its length-1 axes to squeeze, the axes of its own it sums first and its
    letters then; the output's letters that remain; the stacking, contracted, row and column
    letters."""

    def squeezed(letters: str) -> tuple[tuple[int, ...], str]:
        rank = len(letters)
        return (tuple(k - rank for k, ch in enumerate(letters) if ch == "."),
                letters.replace(".", ""))

    (ones_a, la), (ones_b, lb) = squeezed(la), squeezed(lb)
    lo = "".join(ch for ch in lo if ch != "." and (ch in la or ch in lb))
    alone = []
    for lx, ly in ((la, lb), (lb, la)):
        ks = [k for k, ch in enumerate(lx) if ch not in ly and ch not in lo]
        alone.append((tuple(k - len(lx) for k in ks),
                      "".join(ch for k, ch in enumerate(lx) if k not in ks)))
    (alone_a, la), (alone_b, lb) = alone
    stack = [ch for ch in la if ch in lb and ch in lo]
    inner = [ch for ch in la if ch in lb and ch not in lo]
    rows = [ch for ch in la if ch not in lb]
    cols = [ch for ch in lb if ch not in la]
    return (ones_a, alone_a, la), (ones_b, alone_b, lb), lo, (stack, inner, rows, cols)


def _matmul_in_place(a: np.ndarray, la: str, b: np.ndarray, lb: str, lo: str, stack: list,
                     rows: list, inner: list, cols: list, sizes: dict) -> np.ndarray:
    """The matmul of a contraction of at most one row, inner and column letter, on views:
    the operands' axes transposed (not copied: BLAS reads a matrix of any row stride) and the
    product written through ``out=`` into the result's layout (batch axes, then ``lo``), where
    a copy of each operand and of the product cost 3 passes over memory (GMM d = 10, K = 50:
    1.4 ms for the Q·(x − μ) of 50 10×10 matrices). The operands are made C-contiguous first,
    so the matrices' strides follow from the point's shape: a point of a batch and the point
    alone make the same BLAS calls."""
    a, b = (np.asarray(x) for x in (a, b))  # (a number: np.ascontiguousarray makes it 1-d)
    a, b = (x if x.flags.c_contiguous else np.ascontiguousarray(x) for x in (a, b))
    if rows and (not cols or lo[-1] == rows[0]):  # the output's last axis the columns' (BLAS)
        a, la, rows, b, lb, cols = b, lb, cols, a, la, rows

    def view(x: np.ndarray, lx: str, first: list, second: list) -> np.ndarray:
        nb = x.ndim - len(lx)
        x = np.transpose(x, tuple(range(nb)) + tuple(nb + lx.index(ch)
                                                     for ch in stack + first + second))
        return matrices(x, first, second)

    def matrices(x: np.ndarray, first: list, second: list) -> np.ndarray:
        """``x`` with a length-1 axis for a missing row (or column) letter: views."""
        if not first:
            return x[..., None, :] if second else x[..., None, None]
        return x if second else x[..., None]

    A, B = view(a, la, rows, inner), view(b, lb, inner, cols)
    ba, bb = A.shape[:A.ndim - len(stack) - 2], B.shape[:B.ndim - len(stack) - 2]
    batch = ba if ba == bb or not bb else bb if not ba else np.broadcast_shapes(ba, bb)
    nb = len(batch)
    R = np.empty(batch + tuple(sizes[ch] for ch in lo))
    order = stack + rows + cols
    out = matrices(np.transpose(R, tuple(range(nb)) + tuple(nb + lo.index(ch) for ch in order)),
                   rows, cols)
    np.matmul(A, B, out=out)
    return R


TRANSPOSED_PRODUCTS = True


def _transposed_product(c: Circuit, k: int, readers: dict[int, set[int]],
                        kept: set[int]) -> bool:
    """Node ``k`` is the transpose of a product of matrices (points of rank 2) that nothing
    else reads and that is not kept (an output, a value computed once): the adjoint of a
    weight, ``(Xᵀ·δ)ᵀ``, which :func:`matmul_transposed` computes as ``δᵀ·X``
    (``TRANSPOSED_PRODUCTS``: off, the product and a view of its transpose)."""
    if not TRANSPOSED_PRODUCTS or c.op(k) != "transpose" or len(c.shape(k)) != 2:
        return False
    m = c.args(k)[0]
    return c.op(m) == "matmul" and readers[m] == {k} and m not in kept and all(
        len(c.shape(x)) == 2 for x in c.args(m))


def matmul_transposed(a: Any, b: Any) -> Any:
    """``matrix_transpose(a @ b)`` as ``bᵀ @ aᵀ`` (views of both): each entry the same
    products (``x·y = y·x``) summed by BLAS, and the result C-contiguous, where the transpose
    of the product is a strided view. A weight's adjoint ``(Xᵀ·δ)ᵀ`` of a batch of 1024 rows
    of 784 inputs and 64 units: 3.2-3.4 ms for ``δᵀ·X``, 3.5-4.3 ms for ``Xᵀ·δ``, and the
    output in the weight's own layout (docs/compiled.md, "The tanh networks").

        >>> a, b = np.arange(6.0).reshape(3, 2), np.arange(12.0).reshape(3, 4)
        >>> bool((matmul_transposed(a.T, b) == (a.T @ b).T).all())
        True
    """
    if type(a) is np.ndarray and type(b) is np.ndarray and a.ndim >= 2 and b.ndim >= 2:
        return np.matmul(np.swapaxes(b, -1, -2), np.swapaxes(a, -1, -2))
    return np.swapaxes(np.matmul(a, b), -1, -2)


def fused_source(c: Circuit, name: str = "f", min_entries: int = MIN_ENTRIES,
                 fold: bool = True) -> tuple[str, str, list[Group], _Names, bool, str,
                                             list[tuple[int, int, int]]]:
    """The Python driver (NumPy calls and kernel calls, in schedule order), the C source of
    the kernels, the groups, the names of the nodes in the driver, whether it calls row
    kernels, (``fold``) the lines of the values that depend on no input (the gradient's
    ``broadcast_to(0.5, (K,))`` ...), run once when the function is built, and the matrix
    sizes of the small contractions the library computes (:func:`small_contraction`)."""
    groups, schedule = fusion_groups(c, min_entries)
    names = _Names(c, registers=False)
    outputs_set = set(c.output_ids)
    first_readers: dict[int, list[int]] = collections.defaultdict(list)
    readers: dict[int, set[int]] = collections.defaultdict(set)
    for i, _op, args, _params, _shape in c.records():
        if args:
            first_readers[args[0]].append(i)
        for a in args:
            readers[a].add(i)
    group_of = {i: g for g, group in enumerate(groups) for i in group.members}
    contracted = {m for kind, k in schedule if kind == "contract" for m in c.args(k)}

    def _reads_broadcast_view(c: Circuit, r: int, b: int) -> bool:
        """Reader ``r`` of broadcast ``b`` gives the same values from ``b``'s source with
        length-1 axes: a kernel (it broadcasts), a product a matmul reads through ``b``, or
        an exact arithmetic node of ``b``'s shape whose other operand has that shape."""
        if r in group_of or r in contracted:
            return True
        return c.op(r) in EXACT_ARITHMETIC and c.shape(r) == c.shape(b) and any(
            o != b and c.shape(o) == c.shape(r) and c.op(o) != "broadcast_to"
            for o in c.args(r))

    # an output of no input may be a view of the values it reads (a transpose, a reshape):
    # those are computed on each call, else a write into the output would change later calls
    no_input: set[int] = set()
    for i, op, args, _params, _shape in c.records():
        if op == "const" or args and all(a in no_input for a in args):
            no_input.add(i)
    per_call, seen = [i for i in c.output_ids if i in no_input], set()
    while per_call:
        i = per_call.pop()
        if i not in seen:
            seen.add(i)
            per_call.extend(c.args(i))
    folded_never = outputs_set | seen
    folded: set[int] = set()
    body: list[tuple[str, int, str, list[int]]] = []  # (kind, node or group, line, reads)
    prelude: list[str] = []
    rows = False
    small: list[tuple[int, int, int]] = []  # the small contractions' sizes (mm_kernel_source)
    # nodes whose values are never -0.0: sums the library adds from +0.0 (a kernel's sums,
    # the small contractions')
    no_negative_zero = {s for group in groups for s, _ in group.sums}
    # nodes whose values are arrays the driver made, views of nothing else: a kernel's
    # results, a contraction's
    made_here = no_negative_zero | {i for group in groups for i in group.results} | {
        k for kind, k in schedule if kind == "contract"}
    for kind, k in schedule:
        if kind == "node" and fold and k not in folded_never and c.args(k) and all(
                a in folded or c.op(a) == "const" for a in c.args(k)) and not any(
                names._in_place(r) is not None for r in first_readers[k]):
            folded.add(k)  # a constant: computed once (nothing writes it in place)
            prelude.append(f"{names.names[k]} = {names.code(k)}")
            names.runners.news()  # (a loop of constants: run once, its comment not shown)
            continue
        if kind == "node" and row_op(c, k):
            rows = True
            x = names.names[c.args(k)[0]]
            body.append((kind, k, f"    {names.names[k]} = _rows({ROW_OPS.index(c.op(k))}, {x})",
                         [c.args(k)[0]]))
            continue
        if kind == "node" and c.op(k) == "broadcast_to" and k not in outputs_set and all(
                _reads_broadcast_view(c, r, k) for r in readers[k]):
            view, source = _broadcast_view(c, k, names)
            body.append((kind, k, f"    {names.names[k]} = {view}", [source]))
            continue
        if kind == "node" and _covering_scatter(c, k):
            v = c.args(k)[0]
            # a value that is never -0.0 (a sum the library made from +0.0) read by nothing
            # else: 0.0 + value is value, and a reshape of it (a view) is the scatter (11 µs
            # at GMM d = 10, K = 5; nothing else reads the array the view shares)
            alone = len(readers[v]) == 1 and v not in outputs_set
            # else an array the driver made (a contraction's, a kernel's) that nothing else
            # reads: 0.0 added in place (no new array: 10.7 -> 7 µs at d = 10, K = 5)
            cover_by = "_cover_view" if alone and v in no_negative_zero else \
                "_cover_in_place" if alone and v in made_here else "_cover"
            body.append((kind, k, f"    {names.names[k]} = {cover_by}({names.names[v]}, "
                         f"{len(c.shape(v))}, {tuple(c.shape(k))!r})", [v]))
            continue
        if kind == "node" and _transposed_product(c, k, readers, folded_never | folded):
            a, b = c.args(c.args(k)[0])  # (the product's line: read by nothing now, dropped)
            body.append((kind, k, f"    {names.names[k]} = _matmul_transposed("
                         f"{names.names[a]}, {names.names[b]})", [a, b]))
            continue
        if kind == "node" and c.op(k) in DRIVER_FORMS:
            line = DRIVER_FORMS[c.op(k)](c, k, names)
            if line is not None:
                body.append((kind, k, f"    {names.names[k]} = {line}", list(c.args(k))))
                continue
        if kind == "node" and c.op(k) == "sum":
            # np.sum's Python wrappers (~1.2 µs of a 2 µs call on K entries): its ufunc's
            # reduce, the same loop
            code = names.code(k)
            match = re.fullmatch(r"xp\.sum\((\w+), axis=(-\d+)\)", code)
            texts = names.runners.news()
            if match and not texts:
                body.append((kind, k, f"    {names.names[k]} = _add_reduce({match[1]}, "
                             f"{match[2]})", list(c.args(k))))
                continue
            comments = "".join(f"    # {text}\n" for text in texts)
            body.append((kind, k, f"{comments}    {names.names[k]} = {code}", list(c.args(k))))
            continue
        if kind == "node":
            code = names.code(k)
            # (a loop's first call: the comment saying what its runner runs)
            comments = "".join(f"    # {text}\n" for text in names.runners.news())
            body.append((kind, k, f"{comments}    {names.names[k]} = {code}", list(c.args(k))))
            continue
        if kind == "contract":
            m = c.args(k)[0]
            letters = "abcdefghijklmnopqrstuvwxyz"[:len(c.shape(m))]
            (a, _), (b, _) = (operand(c, x, letters, c.shape(m)) for x in c.args(m))
            la, lb, lo, point, repeats = contraction_spec(c, k)
            sizes = small_contraction(la, lb, lo, c.shape(m), c.shape(a), c.shape(b))
            if sizes is not None:  # the library's loop (_mm{j}: contract_small)
                small.append(sizes)
                no_negative_zero.add(k)
            body.append((kind, k, f"    {names.names[k]} = _contract({names.names[a]}, "
                         f"{names.names[b]}, {la!r}, {lb!r}, {lo!r}, {point!r}"
                         f"{', ' + str(repeats) if repeats > 1 or sizes else ''}"
                         f"{f', _mm{len(small) - 1}' if sizes else ''})", [a, b]))
            continue
        group = groups[k]
        rank = len(group.shape)
        operands, reads = [], []
        for a in group.operands:
            # a broadcast's source, its new axes of length 1 (the kernel broadcasts them), not
            # the broadcast: np.broadcast_to costs ~10 µs a call
            arg, read = _broadcast_view(c, a, names) if c.op(a) == "broadcast_to" and \
                a not in folded else (names.names[a], a)
            reads.append(read)
            r = len(c.shape(a))
            # batch axes in front of the point axes, as Primitive.code aligns them
            operands.append(align(arg, r, rank) if r < rank and c.op(read) != "const"
                            else arg)
        specs = [None] * len(group.results) + [
            _reduced_view(c, s, group.shape) for s, _ in group.sums]
        targets = ", ".join([names.names[i] for i in group.results]
                            + [names.names[s] for s, _ in group.sums])
        tail = "," if len(group.operands) == 1 else ""
        body.append((kind, k, f"    {targets} = _run(_kernel{k}, ({', '.join(operands)}{tail}), "
                     f"{group.shape!r}, {tuple(specs)!r})", reads))
    # the lines whose values nothing reads (a broadcast only kernels and matmuls read): none
    needed = set(c.output_ids)
    kept = []
    for kind, k, line, reads in reversed(body):
        if kind == "node" and k not in needed:
            continue
        kept.append(line)
        needed.update(reads)
    lines = [f"def {name}({', '.join(names.params)}):", *reversed(kept)]
    returned = [names.names[i] for i in c.output_ids]
    if len(returned) == 1:
        lines.append(f"    return {returned[0]}")
    else:
        fields = ", ".join(f"{f}={v}" for f, v in zip(outputs(c.outputs)._fields, returned))
        lines.append(f"    return _Outputs({fields})")
    ops = sorted({c.op(i) for group in groups for i in group.members})
    if rows:
        ops = sorted({*ops, "exp", "log", "maximum", "where", "equal"})
    kernels = [kernel_source(c, g, group) for g, group in enumerate(groups)]
    if rows:
        kernels.append(row_kernel_source())
    entry = ["void cg_kernel(int g, const long *meta, double *const *ptr) {", "    switch (g) {"]
    entry += [f"    case {g}: cg_k{g}(meta, ptr); break;" for g in range(len(groups))]
    entry += ["    }", "}"]
    if small:
        kernels += [mm_kernel_source(j, *sizes) for j, sizes in enumerate(small)]
        entry += ["", "void cg_mm(int j, const long *meta, double *const *ptr) {",
                  "    switch (j) {", *[f"    case {j}: cg_mm{j}(meta, ptr); break;"
                                        for j in range(len(small))], "    }", "}"]
    source = "\n\n".join(["#include <stdlib.h>", PRELUDE.rstrip(), c_vector_helpers(ops),
                           KERNEL_MACROS.strip(), *kernels, "\n".join(entry)])
    return ("\n".join(lines), source + "\n", groups, names, rows, "\n".join(prelude),
            small)


@dataclass(frozen=True)
class KernelLibrary:
    """One shared library of a fused function: a group's kernel (``kind`` ``"kernel"``,
    entry ``cg_kernel``), the row kernels (``"rows"``, ``cg_rows``) or a small contraction
    (``"mm"``, ``cg_mm``); ``index`` is the group's or the contraction's number."""

    kind: str
    index: int
    source: str

    @property
    def entry(self) -> str:
        return {"kernel": "cg_kernel", "rows": "cg_rows", "mm": "cg_mm"}[self.kind]


def kernel_libraries(c: Circuit, groups: list[Group], rows: bool,
                     small: list[tuple[int, int, int]]) -> list[KernelLibrary]:
    """The C of each library of a fused function (:func:`fused_source`'s plan), one library
    per kernel, each self-contained (the prelude, the vector helpers of its own operations,
    the macros) and named as if it were the only one (``cg_k0``, ``cg_mm0``): a kernel seen
    before, in this circuit or any other, is the same source, found in the cache by it; the
    libraries compile in parallel (:func:`build_libraries`).

        >>> import circuitgrad as cg
        >>> c = cg.parse("J = sum(exp(x) * y + x)", shapes={"x": (3000,), "y": (3000,)})
        >>> [(lib.kind, lib.index) for lib in kernel_libraries(c, *_plan(c))]
        [('kernel', 0)]
    """
    def library(kind: str, index: int, ops: set[str], code: str, entry: str) -> KernelLibrary:
        return KernelLibrary(kind, index, "\n\n".join(
            [_library_head(tuple(sorted(ops)), cforms.default_width()), code, entry]) + "\n")

    libraries = [library("kernel", g, {c.op(i) for i in group.members},
                         kernel_source(c, 0, group),
                         # (g = 1: the generic loop whatever the layout, for the tests
                         # that both loops give the same bits)
                         _threaded_entry(group))
                 for g, group in enumerate(groups)]
    if rows:
        libraries.append(library("rows", 0, {"exp", "log", "maximum", "where", "equal"},
                                 row_kernel_source(), ""))
    libraries += [library("mm", j, set(), mm_kernel_source(0, *sizes),
                          "void cg_mm(int j, const long *meta, double *const *ptr) {\n"
                          f"    (void)j;\n    cg_mm_parts(cg_mm0, meta, ptr, "
                          f"{math.prod(sizes)}L);\n}}")
                  for j, sizes in enumerate(small)]
    return libraries


def _threaded_entry(group: Group) -> str:
    """A kernel library's entry ``cg_kernel``: the kernel's loop through ``cg_parts`` (its
    threads; ``g = 1``: the generic loop whatever the layout, for the tests that both loops
    give the same bits), told which arrays are sums (results accumulated across the loop)."""
    n_in, n_results, n_sums = len(group.operands), len(group.results), len(group.sums)
    flags = ", ".join(["0"] * (n_in + n_results) + ["1"] * n_sums)
    n = n_in + n_results + n_sums
    return (f"static const unsigned char cg_k0_sums[{n}] = {{{flags}}};\n"
            "void cg_kernel(int g, const long *meta, double *const *ptr) {\n"
            f"    cg_parts(g == 1 ? cg_k0_any : cg_k0, meta, ptr, {n}, cg_k0_sums);\n}}")


@functools.lru_cache(maxsize=256)
def _library_head(ops: tuple[str, ...], width: int) -> str:
    """What every library of kernels over ``ops`` starts with (the prelude, the vector
    helpers at ``width``, the macros): made once per set of operations (~1 ms each)."""
    return "\n\n".join(["#include <stdlib.h>", PRELUDE.rstrip(),
                         c_vector_helpers(list(ops), width), KERNEL_MACROS.strip()])


def _plan(c: Circuit, min_entries: int = MIN_ENTRIES) -> tuple:
    """(groups, rows, small) of :func:`fused_source`: the plan the libraries are made for."""
    _, _, groups, _, rows, _, small = fused_source(c, min_entries=min_entries)
    return groups, rows, small


PART_ENTRIES = 1 << 17
"""The fewest entries of a kernel's loop one thread is given (``cg_parts``): starting and
joining a thread costs ~20-40 µs, a loop of 2^17 entries ~100-300 µs."""


PART_PRODUCTS = 1 << 20
"""The fewest multiply-adds of a small contraction (``cg_mm_parts``) one thread is given (GMM
d = 10, K = 50: its two contractions of 5·10⁶ each, 0.85 -> 0.55 and 0.45 -> 0.30 ms on 2
threads, best of 30 in one process)."""


def compile_workers() -> int:
    """How many compilers run at once: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


FIRST_CALL_GRACE, FIRST_CALL_WAIT = 0.5, 10.0
"""Seconds a ``wait=False`` build waits for a first call to start, and then for it to return,
before it starts the compilers anyway (a function no one calls at once gets its kernels
``FIRST_CALL_GRACE`` later than it could, of a compile of ~1-4 s)."""


def build_libraries(libraries: list[KernelLibrary], opt: str, timeout: float,
                    workers: int | None = None) -> list[ctypes.CDLL]:
    """Each library compiled or found in the cache (``compile_library``: keyed by its own
    source, the compiler, the flags and the ISA), up to ``workers`` compilers at once
    (default :func:`compile_workers`), in the order given; the first error raised after
    every compiler has finished. The threads are daemons: a process that exits while they
    wait for a compiler does not wait with them (the cache writes a library only whole: a
    temporary name, then a rename). The libraries found in the cache share one read of its
    index and one write of their uses (``cache.batched``)."""
    loaded: list[Any] = [None] * len(libraries)
    errors: list[tuple[int, BaseException]] = []
    todo = collections.deque(range(len(libraries)))

    def work() -> None:
        while True:
            try:
                k = todo.popleft()
            except IndexError:
                return
            try:
                loaded[k] = compile_library(libraries[k].source, opt, timeout)[1]
            except BaseException as e:  # (raised in the caller's thread, below)
                errors.append((k, e))

    # this thread works too: the others start while it finds the first libraries
    threads = [threading.Thread(target=work, name=f"circuitgrad-cc-{t}", daemon=True)
               for t in range(min(workers or compile_workers(), len(libraries)) - 1)]
    with cache.batched():
        for t in threads:
            t.start()
        work()
        for t in threads:
            t.join()
    if errors:
        raise min(errors, key=lambda e: e[0])[1]
    return loaded


def _covering_scatter(c: Circuit, k: int) -> bool:
    """Node ``k`` is a ``scatter_add`` of one value into a place that is the whole array, its
    entries in order (the index new axes and whole slices only: the adjoint of ``x[:, None]``):
    zeros with the value added there are ``0.0 + value`` reshaped (:func:`cover`)."""
    if c.op(k) != "scatter_add" or len(c.args(k)) != 1:
        return False
    (index,) = (c.params(k) or {})["indices"]
    shape = tuple(c.shape(k))
    text = index_text(index, shape)
    return math.prod(c.shape(c.args(k)[0])) == math.prod(shape) and all(
        part.strip() in (":", "None") for part in text.split(","))


def cover(value: Any, rank: int, shape: tuple[int, ...]) -> np.ndarray:
    """``0.0 + value`` as points of ``shape`` (``value``'s points have ``rank`` axes, the same
    entries in the same order): ``scatter_add``'s zeros plus the value, in one pass (-0.0
    entries become +0.0 as there)."""
    value = np.asarray(value)
    return np.add(0.0, np.reshape(value, value.shape[:value.ndim - rank] + shape))


def _place(index: tuple) -> tuple:
    """A canonical index (``None``, ints, ``(start, stop, step)``) as NumPy's, after ``...``."""
    return (Ellipsis,) + tuple(slice(*e) if isinstance(e, tuple) else e for e in index)


def _take_form(c: Circuit, k: int, names: _Names) -> str | None:
    """``take`` with its indices an array made once (NumPy converts a list on every call:
    5 µs for the 100 of GMM d = 10's lower triangle)."""
    params = c.params(k) or {}
    x, rank = c.args(k)[0], len(c.shape(c.args(k)[0]))
    axis = params["axis"] - rank if params["axis"] >= 0 else params["axis"]
    return f"_take({names.names[x]}, {names._hoisted(np.array(params['indices']))}, {axis})"


def _put_add_form(c: Circuit, k: int, names: _Names) -> str | None:
    """``put_add`` along the last axis as one ``bincount`` (:func:`put_add_last`)."""
    params = c.params(k) or {}
    shape, indices = tuple(params["shape"]), params["indices"]
    if not shape or params["axis"] not in (len(shape) - 1, -1) or not indices or any(
            not 0 <= i < shape[-1] for i in indices):
        return None
    x = names.names[c.args(k)[0]]
    names.constants[f"_flat{k}"] = {}
    return f"_put_add_last({x}, {shape!r}, {names._hoisted(np.array(indices))}, _flat{k})"


def put_add_last(value: Any, shape: tuple[int, ...], indices: np.ndarray,
                 flats: dict | None = None) -> np.ndarray:
    """``put_add(value, shape, -1, indices)`` (zeros of ``shape`` with ``value``'s entries
    added at ``indices`` along the last axis) as one ``np.bincount``: each place's terms
    added to +0.0 in the order of the entries, as ``np.add.at`` adds them, so the same bits
    (GMM d = 10: the adjoint of the lower triangle, 13.7 -> 3 µs). ``flats``: the flat
    indices by the number of rows, kept.

        >>> put_add_last(np.array([[1.0, 2.0, 3.0]]), (1, 2), np.array([1, 0, 1]))
        array([[2., 4.]])
    """
    value = np.asarray(value, dtype=np.float64)
    n, m = shape[-1], len(indices)
    rows = value.size // m
    flat = flats.get(rows) if flats is not None else None
    if flat is None:
        flat = (np.arange(rows)[:, None] * n + indices).ravel() if rows != 1 else indices
        if flats is not None and len(flats) < 64:
            flats[rows] = flat
    out = np.bincount(flat, weights=value.ravel(), minlength=rows * n)
    return out.reshape(value.shape[:value.ndim - len(shape)] + shape)


def _scatter_add_form(c: Circuit, k: int, names: _Names) -> str | None:
    """A ``scatter_add`` of several values whose places (basic indices) cover the array once
    each: :func:`scatter_cover`, its places made once."""
    params = c.params(k) or {}
    shape, indices = tuple(params["shape"]), params["indices"]
    if len(indices) < 2 or any(isinstance(e, (list, np.ndarray)) for ix in indices
                               for e in ix):
        return None
    count = np.zeros(shape, dtype=np.int64)
    ranks = []
    try:
        for ix in indices:
            if np.ndim(count[_place(ix)]) == 0:  # (one entry: NumPy gives a number, no view)
                return None
            count[_place(ix)] += 1
            ranks.append(count[_place(ix)].ndim)
    except (IndexError, TypeError, ValueError):
        return None
    if not (count == 1).all():
        return None
    name = f"_places{k}"
    names.constants[name] = (tuple(_place(ix) for ix in indices), tuple(ranks))
    values = ", ".join(names.names[a] for a in c.args(k))
    return f"_scatter_cover({shape!r}, {name}, {values})"


def scatter_cover(shape: tuple[int, ...], places: tuple[tuple, tuple], *values: Any
                  ) -> np.ndarray:
    """``scatter_add`` where the ``places`` (``...`` then basic indices; with the rank of
    each region) cover the point ``shape`` once each: each value written as ``0.0 + value``
    into its place of an empty array, no zeros and no reads of them (GMM: the gradient of
    ``icf``, 8.3 -> 3 µs)."""
    places, ranks = places
    arrays = [v if type(v) is np.ndarray else np.asarray(v, dtype=np.float64) for v in values]
    batch = arrays[0].shape[:arrays[0].ndim - ranks[0]]
    for a, r in zip(arrays, ranks):
        if a.shape[:a.ndim - r] != batch:
            batch = np.broadcast_shapes(*(a.shape[:a.ndim - r] for a, r in zip(arrays, ranks)))
            break
    out = np.empty(tuple(batch) + shape)
    for place, a in zip(places, arrays):
        np.add(0.0, a, out=out[place])
    return out


def concat(values: list, axis: int, rank: int) -> Any:
    """``_cg.concatenate`` (points of ``rank`` axes along ``axis``), without its batch
    broadcasting where no value has batch axes (4.8 -> 1.5 µs)."""
    if all(type(v) is np.ndarray and v.ndim == rank for v in values):
        return np.concatenate(values, axis=axis)
    return runtime.concatenate(values, axis, rank)


def reshape(x: Any, shape: tuple[int, ...], rank: int) -> Any:
    """``_cg.reshape`` (points of ``rank`` axes to ``shape``) by the array's own method."""
    if type(x) is np.ndarray:
        return x.reshape((x.shape if rank == 0 else x.shape[:x.ndim - rank]) + shape)
    return runtime.reshape(x, shape, rank)


def _reshape_form(c: Circuit, k: int, names: _Names) -> str | None:
    x = c.args(k)[0]
    shape = tuple((c.params(k) or {})["shape"])
    return f"_reshape({names.names[x]}, {shape!r}, {len(c.shape(x))})"


def _concatenate_form(c: Circuit, k: int, names: _Names) -> str | None:
    rank, axis = len(c.shape(k)), (c.params(k) or {})["axis"]
    values = ", ".join(names.names[a] for a in c.args(k))
    return f"_concat([{values}], {axis - rank if axis >= 0 else axis}, {rank})"


# The nodes whose driver line is a helper of fused's (same values, fewer Python steps), by op
DRIVER_FORMS = {"take": _take_form, "put_add": _put_add_form, "scatter_add": _scatter_add_form,
                "reshape": _reshape_form, "concatenate": _concatenate_form}


def cover_in_place(value: np.ndarray, rank: int, shape: tuple[int, ...]) -> Any:
    """:func:`cover` of an array nothing else reads: ``0.0 + value`` written over it."""
    value = value.reshape(value.shape[:value.ndim - rank] + shape)
    if type(value) is not np.ndarray or not value.flags.writeable or not value.ndim:
        return cover(value, 0, ())
    return np.add(0.0, value, out=value)


def cover_view(value: Any, rank: int, shape: tuple[int, ...]) -> Any:
    """:func:`cover` of a value that is never -0.0 (``0.0 + value`` is ``value``): a reshape,
    a view where NumPy can make one."""
    return value.reshape(value.shape[:value.ndim - rank] + shape)


def _broadcast_view(c: Circuit, b: int, names: _Names) -> tuple[str, int]:
    """The source of broadcast node ``b`` with the new point axes as length-1 axes (a view
    that a kernel broadcasts), and the source node; a number as it is."""
    x = c.args(b)[0]
    if _literal_const(c, x):
        return names.names[x], x
    n, rank, axis = len(c.shape(b)), len(c.shape(x)), (c.params(b) or {}).get("axis")
    new = ["None"] + [":"] * (n - 1 - axis) if axis is not None else \
        ["None"] * (n - rank) + [":"] * rank
    return f"{names.names[x]}[..., {', '.join(new)}]", x


# glibc's malloc hands an array of more than its (adaptive) threshold back to the system when
# it is freed, and the next array of that size faults in every page again: ~0.25 ms per MiB,
# most of to_fused's time on the GMM gradient (d = 10, K = 50: 23 ms, 8 ms without). Arrays up
# to MALLOC_MMAP_THRESHOLD come from the heap instead, and the heap keeps up to
# MALLOC_TRIM_THRESHOLD of freed memory for the next call. Set once per process, when a fused
# function is first built; CIRCUITGRAD_MALLOC=system leaves malloc as it is.
MALLOC_MMAP_THRESHOLD = 32 << 20  # glibc's own largest adaptive threshold on 64-bit hosts
MALLOC_TRIM_THRESHOLD = 256 << 20
_malloc_tuned: list[bool] = []


def tune_malloc() -> bool:
    """Keep freed arrays in glibc's heap for the next call (see ``MALLOC_MMAP_THRESHOLD``);
    once per process. True where it was set (glibc, and ``$CIRCUITGRAD_MALLOC`` not
    ``system``)."""
    if not _malloc_tuned:
        done = False
        if os.environ.get("CIRCUITGRAD_MALLOC", "") != "system":
            try:
                libc = ctypes.CDLL(None)
                mallopt = libc.mallopt  # glibc's (musl and macOS have none)
                libc.gnu_get_libc_version  # noqa: B018 (glibc, whose parameters these are)
            except (OSError, AttributeError):
                mallopt = None
            if mallopt is not None:
                mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
                # M_MMAP_THRESHOLD = -3, M_TRIM_THRESHOLD = -1 (malloc.h)
                done = bool(mallopt(-3, MALLOC_MMAP_THRESHOLD)) and bool(
                    mallopt(-1, MALLOC_TRIM_THRESHOLD))
        _malloc_tuned.append(done)
    return _malloc_tuned[0]


def kernel_entry(function: Any) -> Any:
    """``call(g, meta, arrays, nout)``: a library's entry point ``void f(int g, const long
    *meta, double *const *ptr)`` on ``meta`` (int64) and the arrays' data (the last ``nout``
    written): the tape extension's ``kernel`` (a buffer per array), else through ctypes
    (~10 µs a call more here: ``.ctypes.data`` of each array, a pointer array)."""
    address = ctypes.cast(function, ctypes.c_void_p).value
    if _tape is not None and hasattr(_tape, "kernel"):
        return functools.partial(_tape.kernel, address)
    function.restype = None
    function.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]

    def call(g: int, meta: np.ndarray, arrays: tuple, nout: int) -> None:
        function(g, meta.ctypes.data, (ctypes.c_void_p * len(arrays))(
            *[a.ctypes.data for a in arrays]))

    return call


class FusedFunction(NumpyFunction):
    """A tensor circuit with its elementwise chains fused into C kernels: called as a
    :class:`~circuitgrad.NumpyFunction` (points, batches, named outputs).

    Attributes:
        source: the Python driver; ``c_source``: the kernels' C (one library each, in
            order); ``groups``: how many kernels; ``compiled``: whether calls run the
            kernels (False while a ``wait=False`` build is under way: they run ``to_numpy``'s
            code).
    """

    def __init__(self, circuit: Circuit, name: str = "f", opt: str = "-O2",
                 timeout: float = COMPILE_TIMEOUT, csr: bool = True,
                 min_entries: int = MIN_ENTRIES, wait: bool = True, threads: int | None = None):
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise CircuitError(f"to_fused: threads must be a positive integer or None, got "
                               f"{threads!r}")
        self.threads = compile_workers() if threads is None else min(threads, 64)
        self._opt, self._timeout, self._min_entries = opt, timeout, min_entries
        self._wait = wait
        self._libraries: list[ctypes.CDLL] = []
        self._build_error: BaseException | None = None
        self._built = threading.Event()
        super().__init__(circuit, name, "compile", csr)
        if self._pending:  # (the plain tier until the thread below switches _run)
            self._first_call = (threading.Event(), threading.Event())  # (started, returned)
            self._fused_run, self._run = self._run, self._plain_first(
                self._plain_function()._run, *self._first_call)
            self._builder = threading.Thread(target=self._build_in_background,
                                             name=f"circuitgrad-build-{name}", daemon=True)
            self._builder.start()
        else:
            self._built.set()

    def _compile(self) -> None:
        tune_malloc()
        source, _, groups, names, rows, prelude, small = fused_source(
            self.circuit, self._name, self._min_entries)
        self.groups = len(groups)
        self._kernel_libraries = kernel_libraries(self.circuit, groups, rows, small)
        self._small = small
        self.c_source = "\n".join(f"/* library {n + 1} of {len(self._kernel_libraries)}: "
                                  f"{lib.kind} {lib.index} */\n{lib.source}"
                                  for n, lib in enumerate(self._kernel_libraries))
        namespace = {**NAMESPACE, **names.constants, **names.lists, **names.runners.namespace,
                     "_contract": contract, "_cover": cover, "_cover_view": cover_view,
                     "_cover_in_place": cover_in_place,
                     "_add_reduce": np.add.reduce, "_take": np.take,
                     "_put_add_last": put_add_last, "_scatter_cover": scatter_cover,
                     "_concat": concat, "_reshape": reshape,
                     "_matmul_transposed": matmul_transposed,
                     "_run": functools.partial(run_kernel, plans={})}
        if len(self.circuit.outputs) > 1:
            namespace["_Outputs"] = outputs(self.circuit.outputs)
        self._namespace = namespace
        self._pending = bool(self._kernel_libraries) and not self._wait
        if self._kernel_libraries and self._wait:
            self._attach(build_libraries(self._kernel_libraries, self._opt, self._timeout))
        if prelude:
            try:  # the values that depend on no input, once
                with warnings.catch_warnings(record=True) as warned:
                    warnings.simplefilter("always")
                    exec(compile(prelude, f"<circuitgrad fused {self._name} constants>", "exec"),
                         namespace)
            except Exception:  # (a refusal: raised by the calls, as to_numpy raises it)
                warned = [True]
            if warned:  # (a warning too: each call warns, as to_numpy's)
                source = fused_source(self.circuit, self._name, self._min_entries, fold=False)[0]
                prelude = ""
        # (.source shows the values computed at build, which the driver reads by name)
        self._source = source if not prelude else "\n".join(
            ["# computed once, when the function was built (they depend on no input):"]
            + [f"#   {line}" for line in prelude.splitlines()] + [source])
        self._code = compile(source, f"<circuitgrad fused {self._name}>", "exec")

    def _attach(self, libraries: list[ctypes.CDLL]) -> None:
        """The loaded libraries' entry points into the driver's namespace (``_kernel{g}``,
        ``_rows``, ``_mm{j}``)."""
        namespace = self._namespace
        for lib, library in zip(self._kernel_libraries, libraries):
            library.cg_set_threads.argtypes = [ctypes.c_int, ctypes.c_long]
            library.cg_set_threads(self.threads, PART_ENTRIES)  # (each library's own copy)
            library.cg_set_part_products.argtypes = [ctypes.c_long]
            library.cg_set_part_products(PART_PRODUCTS)
            if lib.kind == "kernel":
                namespace[f"_kernel{lib.index}"] = functools.partial(
                    kernel_entry(library.cg_kernel), 0)
            elif lib.kind == "rows":
                namespace["_rows"] = functools.partial(run_rows, kernel_entry(library.cg_rows),
                                                       metas={})
            else:
                namespace[f"_mm{lib.index}"] = functools.partial(
                    contract_small, functools.partial(kernel_entry(library.cg_mm), 0),
                    self._small[lib.index], plans={})
        self._libraries = libraries  # kept alive with the function
        self._library = libraries[0]  # (the first: kernel 0's where there are kernels)

    @staticmethod
    def _plain_first(run: Any, started: threading.Event, returned: threading.Event) -> Any:
        """``to_numpy``'s driver ``run``, the events set when a call of it has started and
        when one has returned."""
        def plain(*values: Any) -> Any:
            started.set()
            try:
                return run(*values)
            finally:
                returned.set()

        return plain

    def _build_in_background(self) -> None:
        """A ``wait=False`` build: the libraries compiled, attached, then the driver switched
        in by one assignment (a call reads ``_run`` once: the plain driver or the fused one,
        never a mix); an error is kept for the next call and :meth:`wait`. The compilers
        start once the first call has returned (at most ``FIRST_CALL_WAIT`` seconds after
        it started), or ``FIRST_CALL_GRACE`` seconds after the build where none has started:
        that call, the value the caller is waiting for, has the CPUs to itself."""
        started, returned = self._first_call
        if started.wait(FIRST_CALL_GRACE):
            returned.wait(FIRST_CALL_WAIT)
        try:
            self._attach(build_libraries(self._kernel_libraries, self._opt, self._timeout))
            self._run = self._fused_run
        except BaseException as e:
            self._build_error = e
            self._run = self._failed
        finally:
            self._built.set()

    def _failed(self, *values: Any) -> Any:
        raise CircuitError(f"to_fused: building {self._name}'s kernels (wait=False) failed: "
                           f"{self._build_error}") from self._build_error

    @property
    def compiled(self) -> bool:
        """Whether calls run the compiled kernels now (False while a ``wait=False`` build is
        under way, or where it failed)."""
        return self._built.is_set() and self._build_error is None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the kernels of a ``wait=False`` build are loaded (at most ``timeout``
        seconds); whether they are. Raises the build's error where it failed (as every call
        then does). A function built with ``wait=True`` returns True at once.

            >>> import circuitgrad as cg
            >>> c = cg.parse("J = sum(exp(x) * y)", shapes={"x": (3000,), "y": (3000,)})
            >>> f = cg.to_fused(c, wait=False)
            >>> f.wait()
            True
        """
        if self._built.wait(timeout) and self._build_error is not None:
            self._failed()
        return self.compiled

    def _plain_function(self) -> NumpyFunction:
        plain = getattr(self, "_plain", None)
        if plain is None:
            plain = self._plain = NumpyFunction(self.circuit, self._name)
        return plain

    def _call_on(self, values: list[Any], batch: tuple[int, ...], foreign: list[int]) -> Any:
        # Arrays of another library: the plain NumPy lowering's code, bound to that library.
        return self._plain_function()._call_on(values, batch, foreign)

    def __reduce__(self):
        return (to_fused, (self.circuit, self._name, self._opt, self._timeout,
                           self._csr is not None, self._min_entries, self._wait, self.threads))

    def __repr__(self) -> str:
        state = "" if self.compiled else (
            ", build failed" if self._built.is_set() else ", compiling (to_numpy's code until then)")
        return (f"<FusedFunction {self._name}({', '.join(self.inputs)}): {len(self.circuit)} "
                f"nodes, {self.groups} fused kernels{state}>")


def to_fused(c: Circuit, name: str = "f", opt: str = "-O2", timeout: float = COMPILE_TIMEOUT,
             csr: bool = True, min_entries: int = MIN_ENTRIES,
             wait: bool = True, threads: int | None = None) -> FusedFunction:
    """Lower a tensor circuit to NumPy calls and fused C loops (see the module's docstring).

    Each kernel is its own library, found in the cache by its own source (a kernel built
    for another circuit is not compiled again); those not found compile in parallel, one
    compiler per CPU.

    Args:
        c: the circuit.
        name: the name of the generated function.
        opt: the C compiler's optimization flag for the kernels.
        timeout: seconds the compiler may take (for each library).
        csr: sparse Jacobian or Hessian outputs as ``scipy.sparse.csr_array``.
        min_entries: the least entries of a point of a group's shape for a kernel (smaller
            groups stay NumPy calls: a kernel call costs ~10 µs, NumPy's on a small array ~1).
        wait: False returns before the compiler has run: until the kernels are loaded (in
            a background thread, whose compilers start once the first call has returned:
            ``FIRST_CALL_GRACE``), calls run ``to_numpy``'s code and give ``to_numpy``'s bits;
            then the fused code (within docs/semantics.md's bound of them: sums in another
            order). ``f.compiled`` says which; ``f.wait()`` blocks until the kernels are
            loaded. A failed build raises at every later call and at ``f.wait()``.
        threads: the POSIX threads a kernel's loop is split over (default: the CPUs this
            process may run on; at most 64), each part at least ``PART_ENTRIES`` entries of the loop, cut
            along an outer axis that every sum's output moves along: the same bits for any
            count (``f.threads`` says it).

        >>> import circuitgrad as cg
        >>> c = cg.parse("J = sum(exp(x) * y)", shapes={"x": (3000,), "y": (3000,)})
        >>> f = cg.to_fused(c, wait=False)  # at once: to_numpy's code until the kernels load
        >>> float(f(x=np.zeros(3000), y=np.ones(3000)))
        3000.0
    """
    c = as_circuit(c, "to_fused")
    if c.meta.get("guards") is not None:  # checked first, on every call
        return guarded(c, to_fused, name=name, opt=opt, timeout=timeout, csr=csr,
                       min_entries=min_entries, wait=wait, threads=threads)
    with no_gc():
        return FusedFunction(c, name, opt, timeout, csr, min_entries, wait, threads)


TENSOR_LOWERING[0] = to_fused  # to_c's choice for large tensor circuits (lower/c.py)
