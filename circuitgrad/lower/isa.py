"""The vector widths ``to_c`` (and ``to_fused``'s kernels) compile for on this machine.

A width is the points per vector register: 8 (AVX-512: 8 doubles), 4 (AVX2), 2 (SSE4.1) on
x86-64 hosts with glibc's vector math (libmvec, which ``-lm`` brings), else 1 (plain C: any
compiler, any CPU). A width needs the CPU features with which glibc picks the libmvec variant
whose distance from ``to_numpy`` the records hold (:data:`NEEDS`: glibc's ifuncs run, e.g., the
8-lane functions' AVX2 fallback on a CPU with AVX512F but not AVX512DQ). :func:`default_width` is the widest this host runs, unless
``$CIRCUITGRAD_NO_VECTORS`` (1) or ``$CIRCUITGRAD_VECTOR_WIDTH`` says otherwise; the width's
flags (:func:`width_flags`) and :func:`isa_tag` (the ISA, the C library and its version) are
part of the compile cache's key, so a library built for one CPU is never loaded on another.
Values are within docs/semantics.md's contract at every width, and bit-identical for one
width whatever the batch and the thread count.

    >>> width_flags(4), width_flags(1)
    (['-mavx2', '-mfma'], [])
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
from pathlib import Path

from ..errors import CircuitError

ISA = {8: "avx512f", 4: "avx2", 2: "sse4.1", 1: "plain"}
"""The instruction set of each width (x86-64)."""

NEEDS = {8: ("avx512f", "avx512dq"), 4: ("avx2", "fma"), 2: ("sse4_1",), 1: ()}
"""The CPU features (as /proc/cpuinfo's flags name them) a width needs: its instructions, and
those glibc 2.36's libmvec dispatches its measured variant on (``_ZGVeN8v_*``: the ``skx``
code with AVX512DQ; ``_ZGVdN4v_*``: AVX2 with FMA; ``_ZGVbN2v_*``: SSE4.1)."""

FMA_WIDTHS = frozenset({8, 4})
"""The widths whose own vector math (``cg_vexp``, ``cg_vsin``, ``cg_vcos``: vector_math.h's
``CG_FMA``) rounds its polynomials' multiply-adds once: AVX-512F and FMA3 (``-mfma``) have
fused multiply-add, SSE4.1 (2 lanes) has not, so there each is rounded twice. The widths of
one kind run the same operations (the same bits); across kinds the values are within the
contract (docs/semantics.md: 8, 4 and 2 lanes are lowerings of their own). The circuit's own
arithmetic is never fused (``-ffp-contract=off``)."""

LIBMVEC_PREFIX = {8: "_ZGVeN8", 4: "_ZGVdN4", 2: "_ZGVbN2"}
"""The prefix of glibc's vector function names at each width (the x86-64 vector ABI)."""

_FLAGS = {8: ["-mavx512f"], 4: ["-mavx2", "-mfma"], 2: ["-msse4.1"], 1: []}


@functools.lru_cache(maxsize=None)
def host_widths() -> tuple[int, ...]:
    """The widths this machine runs, widest first (1, plain C, always)."""
    if platform.machine().lower() not in ("x86_64", "amd64") or \
            platform.libc_ver()[0] != "glibc":
        return (1,)
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), "").split()
        ctypes.CDLL("libmvec.so.1")
    except OSError:
        return (1,)
    return tuple(w for w in (8, 4, 2) if all(need in flags for need in NEEDS[w])) + (1,)


def default_width() -> int:
    """The width ``to_c`` compiles for: the host's widest, 1 where ``$CIRCUITGRAD_NO_VECTORS``
    is set, or ``$CIRCUITGRAD_VECTOR_WIDTH`` (one the host runs)."""
    if os.environ.get("CIRCUITGRAD_NO_VECTORS"):
        return 1
    asked = os.environ.get("CIRCUITGRAD_VECTOR_WIDTH")
    if asked:
        return check_width(int(asked))
    return host_widths()[0]


def check_width(width: int) -> int:
    """``width`` where this host runs it, else a :class:`~circuitgrad.CircuitError`."""
    if width not in ISA:
        raise CircuitError(f"to_c: width={width!r}: the widths are 8, 4, 2 and 1 (plain C)")
    if width not in host_widths():
        raise CircuitError(f"to_c: width={width} needs an x86-64 host with "
                           f"{' and '.join(NEEDS[width])} and "
                           f"glibc's vector math (libmvec); this one runs widths "
                           f"{', '.join(map(str, host_widths()))}: use width=None")
    return width


def width_flags(width: int) -> list[str]:
    """The compiler flags of a width (its ISA; the source's ``CG_WIDTH`` says the rest)."""
    return list(_FLAGS[width])


def isa_tag(width: int) -> str:
    """What a library of this width depends on besides its source and flags: the machine,
    the ISA and the C library with its version (libmvec's values are glibc's)."""
    libc, version = platform.libc_ver()
    return f"{platform.machine()} {'+'.join(NEEDS[width]) or ISA[width]} {libc} {version}"
