"""The numeric contract across lowerings (docs/semantics.md, "One contract on every CPU").

Within one lowering a batch equals its points bit for bit (tests/lower/test_batch.py). Across
lowerings special values agree exactly and finite values within ``OP_ULPS[op]`` units in the
last place, tested per primitive on random and edge inputs; the same check runs again in a
subprocess with NumPy's wider SIMD kernels turned off (``NPY_DISABLE_CPU_FEATURES``) where the
CPU has them, so that both kinds of CPU are exercised on this one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from tolerances import OP_ULPS

import circuitgrad as cg
from circuitgrad.builder import Builder
from circuitgrad.primitives import PRIMITIVES
from paths import ROOT, TESTS

ELEMENTWISE = [op for op, p in PRIMITIVES.items()
               if p.shape is None and p.arity in (1, 2) and op not in ("input", "const")
               and not op.endswith("_vjp") and p.c is not None]  # (else refused by name)
EDGES = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, 2.0, 3.0, 1e-300,
                  -1e-300, 1e300, 5e-324, 709.8, -745.0])


def test_every_elementwise_primitive_has_a_bound():
    assert sorted(ELEMENTWISE) == sorted(OP_ULPS)


def one_circuit() -> tuple[cg.Circuit, list[str]]:
    """Every elementwise primitive of x (and y), one output each: one compile per lowering."""
    b = Builder()
    x, y = b.input("x"), b.input("y")
    outs = [(op, b.apply(op, x) if PRIMITIVES[op].arity == 1 else b.apply(op, x, y))
            for op in ELEMENTWISE]
    return b.finish(outs), [op for op, _ in outs]


def points(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    grid_x, grid_y = (a.ravel() for a in np.meshgrid(EDGES, EDGES))
    x = np.concatenate([rng.normal(0, 3, 300), rng.uniform(-1, 1, 100), 10 ** rng.uniform(
        -300, 300, 100) * rng.choice([-1, 1], 100), grid_x])
    y = np.concatenate([rng.normal(0, 3, 300), rng.uniform(-1, 1, 100), rng.normal(0, 3, 100),
                        grid_y])
    return x, y


def violations() -> list[str]:
    """Each (lowering, op) whose results break the contract against to_numpy's."""
    c, ops = one_circuit()
    x, y = points()
    found = []
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = cg.to_numpy(c)(x=x, y=y)
        for lower in (cg.to_tape, cg.to_c):
            for op, a, w in zip(ops, lower(c)(x=x, y=y), want):
                a, w = np.asarray(a, dtype=np.float64), np.asarray(w, dtype=np.float64)
                special = ~np.isfinite(a) | ~np.isfinite(w) | (a == 0) | (w == 0)
                nan = np.isnan(a)
                same = (nan == np.isnan(w)) & (nan | ((a == w) & (np.signbit(a) == np.signbit(w))))
                finite = ~special
                ulps = np.abs(a[finite] - w[finite]) / np.spacing(
                    np.maximum(np.abs(a[finite]), np.abs(w[finite])))
                if not same[special].all():
                    found.append(f"{lower.__name__} {op}: special values differ at "
                                 f"x={x[special & ~same][:3]}, y={y[special & ~same][:3]}")
                if ulps.size and ulps.max() > OP_ULPS[op]:
                    found.append(f"{lower.__name__} {op}: {ulps.max():g} ulps > {OP_ULPS[op]}")
    return found


def test_every_lowering_keeps_each_primitive_within_its_bound():
    assert violations() == []


def wide_simd_features() -> list[str]:
    """NumPy's dispatch targets beyond its baseline that this CPU has (AVX-512 on x86)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # NumPy < 2
        return []
    return [f for f in __cpu_dispatch__ if __cpu_features__.get(f)
            and (f.startswith("AVX512") or f == "X86_V4")]


@pytest.mark.skipif(not wide_simd_features(), reason="this CPU has no wider SIMD kernels of "
                    "NumPy to turn off: the check above already ran the narrow ones")
def test_the_contract_holds_with_numpys_wide_simd_turned_off():
    env = dict(os.environ, NPY_DISABLE_CPU_FEATURES=" ".join(wide_simd_features()))
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join([here, str(TESTS), str(ROOT),
                                         env.get("PYTHONPATH", "")])
    code = ("import test_numeric_contract as t;"
            "from numpy._core._multiarray_umath import __cpu_features__ as f;"
            f"print([k for k in {wide_simd_features()!r} if f.get(k)], t.violations())")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=False,
                         text=True, timeout=300, cwd=here)
    assert run.returncode == 0, run.stderr[-2000:]
    # NumPy ran its narrower kernels there (none of the features left on), and the contract held.
    assert run.stdout.strip() == "[] []", run.stdout
