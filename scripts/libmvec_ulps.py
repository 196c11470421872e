"""How far glibc's vector math (libmvec, at each vector width) and circuitgrad's own vector
exp, sin and cos are from circuitgrad's NumPy lowering.

``to_c`` calls a 4-lane function (libmvec's ``_ZGVdN4v_tanh`` ..., or ``cg_vsin`` ... of
``cforms.VECTOR_MATH_C``) only where this script finds it within ``cforms.VECTOR_ULPS`` = 2 ulp
of ``to_numpy`` with identical special values; the table it prints is the one in
``circuitgrad/lower/cforms.py`` (``LIBMVEC``, ``VECTOR_MATH``). For each function it compares
the vector function's value (and libm's scalar one, the last column) with ``to_numpy``'s on
random inputs (``--n`` of them: typical arguments, up to ±10⁶, magnitudes spread
log-uniformly from subnormals to 10³⁰⁸ of both signs, and the special values ±0, ±inf, nan)
and prints the largest difference in units in the last place (of the larger magnitude) and
the count of special values (non-finite or zero, on either side) that differ.

    python scripts/libmvec_ulps.py --n 10000000
    python scripts/libmvec_ulps.py --n 10000000 --width 8   # AVX-512: _ZGVeN8v_tanh ...
    python scripts/libmvec_ulps.py --n 1000000 --width 8 --against 4  # the same bits as 4's?
    python scripts/libmvec_ulps.py --only exp sin --width 8  # only these functions
    NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL" python scripts/libmvec_ulps.py --width 8

NumPy's own functions differ with the CPU (its AVX-512 kernels are not its baseline ones), so
the records hold the larger distance of runs with and without them (the last line).

``--width`` picks the variants (8: AVX-512F ``_ZGVeN8``, 4: AVX2 ``_ZGVdN4``, 2: SSE
``_ZGVbN2``); a record's ``libmvec`` holds one figure where every width measured the same,
else a dict by width (``circuitgrad/primitives/core.py``). ``--against W`` adds a column: the
inputs where the function differs in any bit from its variant at width W (0: the same values,
so widths share their measured distance).
"""

from __future__ import annotations

import argparse
import ctypes
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import circuitgrad as cg  # noqa: E402
from circuitgrad.builder import Builder  # noqa: E402
from circuitgrad.lower.cforms import VECTOR_MATH, VECTOR_MATH_C, VECTOR_PRELUDE  # noqa: E402
from circuitgrad.lower.isa import LIBMVEC_PREFIX, width_flags  # noqa: E402


def candidates(width: int) -> dict[str, tuple[str, int]]:
    """Every libmvec function of a width that is a primitive of circuitgrad, and circuitgrad's
    own vector functions (cforms.VECTOR_MATH) as "op (own)": name -> (symbol, arity)."""
    prefix = LIBMVEC_PREFIX[width]
    found = {op: (f"{prefix}v_{op}", 1) for op in (
        "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh",
        "atanh", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "erf", "erfc",
        "cbrt")}
    found.update({op: (f"{prefix}vv_{op}", 2) for op in ("pow", "atan2", "hypot")})
    found.update({f"{op} (own)": (function, 1) for op, (function, _) in VECTOR_MATH.items()})
    return found


CANDIDATES = candidates(4)

# Typical arguments of each function (its domain, or where it is not flat).
TYPICAL = {"asin": (-1, 1), "acos": (-1, 1), "atanh": (-1, 1), "acosh": (1, 50),
           "log": (0, 50), "log2": (0, 50), "log10": (0, 50), "log1p": (-1, 50),
           "exp": (-745, 710), "exp2": (-1075, 1024), "expm1": (-40, 710),
           "sinh": (-710, 710), "cosh": (-710, 710), "tanh": (-20, 20),
           "erf": (-6, 6), "erfc": (-6, 27), "pow": (0, 10)}


# Exact cases, whose true value is a double (log10(1e7) = 7): counted with the special values,
# which must be the same bits as to_numpy's.
EXACT = {"log10": 10.0 ** np.arange(0, 23), "log2": 2.0 ** np.arange(-1074, 1024),
         "exp2": np.arange(-1074.0, 1024.0), "cbrt": np.arange(-2.0**17, 2.0**17) ** 3}


def inputs(rng: np.random.Generator, n: int, op: str) -> np.ndarray:
    lo, hi = TYPICAL.get(op, (-10, 10))
    k = n // 10
    typical = rng.uniform(lo, hi, size=n - 6 * k)
    near = rng.uniform(-1.5, 1.5, size=k)
    wide = rng.uniform(-1e6, 1e6, size=k)  # sin's and cos's range reductions
    spread = rng.choice([-1.0, 1.0], size=2 * k) * 10.0 ** rng.uniform(-323, 308, size=2 * k)
    ints = rng.integers(-64, 64, size=k).astype(np.float64)  # pow's integer exponents
    special = np.resize(np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324,
                                  2.2250738585072014e-308, 1.7976931348623157e308,
                                  -1.7976931348623157e308, 1.0, -1.0, 0.5,
                                  *EXACT.get(op, [])]), k)
    x = np.concatenate([typical, near, wide, spread, ints, special])
    rng.shuffle(x)
    return x


def build(tmp: Path, width: int = 4) -> ctypes.CDLL:
    decls, funcs = [], []
    for name, (symbol, arity) in candidates(width).items():
        op = name.split()[0]
        params = ", ".join(["cg_v"] * arity)
        if not name.endswith("(own)"):
            decls.append(f"cg_v {symbol}({params});")
        loads = ", ".join(f"*(const cg_vu *)(a{k} + i)" for k in range(arity))
        tag = name.replace(" (own)", "_own")
        funcs.append(f"void run_{tag}(const double *a0, const double *a1, double *y, long n)"
                     f" {{ for (long i = 0; i < n; i += {width}) *(cg_vu *)(y + i) = "
                     f"{symbol}({loads}); }}")
        scalar = ", ".join(f"a{k}[i]" for k in range(arity))
        funcs.append(f"void libm_{tag}(const double *a0, const double *a1, double *y, long n)"
                     f" {{ for (long i = 0; i < n; i++) y[i] = {op}({scalar}); }}")
    src = tmp / f"mvec{width}.c"
    src.write_text(f"#define CG_WIDTH {width}\n#include <math.h>\n#include <stdlib.h>\n"
                   + VECTOR_PRELUDE + "\n" + VECTOR_MATH_C + "\n#endif\n"
                   f"typedef double cg_vu __attribute__((vector_size({8 * width}), "
                   "aligned(8)));\n"
                   + "\n".join(decls + funcs) + "\n")
    lib = tmp / f"mvec{width}.so"
    subprocess.run(["cc", "-Og", *width_flags(width), "-ffp-contract=off", "-fno-math-errno",
                    "-fPIC", "-shared", "-o", str(lib), str(src), "-lm"], check=True)
    return ctypes.CDLL(str(lib))


def reference(op: str, args: list[np.ndarray]) -> np.ndarray:
    b = Builder()
    c = b.finish([("f", b.apply(op, *[b.input(f"a{k}") for k in range(len(args))]))])
    with np.errstate(all="ignore"):
        return np.asarray(cg.to_numpy(c)(*args), dtype=np.float64)


def ordinal(x: np.ndarray) -> np.ndarray:
    """Doubles as integers in the same order (adjacent doubles differ by 1)."""
    i = x.view(np.int64)
    return np.where(i < 0, np.int64(-2**63) - i, i)


def compare(got: np.ndarray, want: np.ndarray, x: np.ndarray, op: str
            ) -> tuple[int, float, int]:
    """The largest distance in ulps of the finite nonzero values, an argument index where it
    is, and the count of special values (non-finite or zero on either side, or an exact case
    of :data:`EXACT`, such as log10(1e7) = 7) that differ."""
    exact = np.isin(x, EXACT[op]) if op in EXACT else np.zeros(x.shape, bool)
    special = ~np.isfinite(got) | ~np.isfinite(want) | (got == 0) | (want == 0) | exact
    nan_g, nan_w = np.isnan(got), np.isnan(want)
    bad = special & ~(nan_g & nan_w) & ((nan_g != nan_w) | (got != want)
                                        | (np.signbit(got) != np.signbit(want)))
    ulps = np.where(special, 0, np.abs(ordinal(got) - ordinal(want)))
    worst = int(np.argmax(ulps))
    return int(ulps[worst]), worst, int(bad.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10**7, help="inputs per function")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=4, choices=sorted(LIBMVEC_PREFIX),
                        help="points per vector (the variants measured)")
    parser.add_argument("--against", type=int, choices=sorted(LIBMVEC_PREFIX),
                        help="also count the inputs where the values differ from this width's")
    parser.add_argument("--only", nargs="+", metavar="OP",
                        help="only these functions (e.g. exp: libmvec's and circuitgrad's own)")
    opts = parser.parse_args()
    n = opts.n - opts.n % 40
    rng = np.random.default_rng(opts.seed)
    with tempfile.TemporaryDirectory() as tmp:
        lib = build(Path(tmp), opts.width)
        other = build(Path(tmp), opts.against) if opts.against else None
        extra = f" differs from width {opts.against}'s at |" if other else ""
        print("| function | libmvec symbol | max ulp vs to_numpy | at | specials that differ "
              f"| libm's max ulp vs to_numpy |{extra}")
        print("|---|---|---|---|---|---|" + ("---|" if other else ""))
        for name, (symbol, arity) in candidates(opts.width).items():
            if opts.only and name.split()[0] not in opts.only:
                continue
            op, tag = name.split()[0], name.replace(" (own)", "_own")
            args = [inputs(rng, n, op) for _ in range(arity)]
            if op == "pow":  # to_numpy's (and to_c's) pow takes sqrt, x*x, 1/x there
                args[1][np.isin(args[1], (0.5, 2.0, -1.0))] = 3.0
            a0 = np.ascontiguousarray(args[0])
            a1 = np.ascontiguousarray(args[1] if arity > 1 else args[0])
            y, z = np.empty(n), np.empty(n)
            runs = [(lib, "run_", y), (lib, "libm_", z)]
            if other is not None:
                u = np.empty(n)
                runs.append((other, "run_", u))
            for library, prefix, out in runs:
                getattr(library, prefix + tag)(ctypes.c_void_p(a0.ctypes.data),
                                              ctypes.c_void_p(a1.ctypes.data),
                                              ctypes.c_void_p(out.ctypes.data), ctypes.c_long(n))
            want = reference(op, args)
            ulps, at, bad = compare(y, want, args[0], op)
            libm_ulps, _, libm_bad = compare(z, want, args[0], op)
            where = ", ".join(f"{a[at]:.17g}" for a in args)
            differ = f" {int((y.view(np.int64) != u.view(np.int64)).sum())} |" \
                if other is not None else ""
            print(f"| {name} | {symbol} | {ulps} | {where} | {bad} | {libm_ulps}"
                  f"{f' ({libm_bad} specials differ)' if libm_bad else ''} |{differ}",
                  flush=True)


if __name__ == "__main__":
    main()
