"""The tape evaluator's C extension (everything else is in pyproject.toml).

``pip install -e .`` compiles it with the system C compiler and the Python headers, which
scripts/setup.sh installs where they are missing. The flags keep NumPy's float64 semantics:
no fused multiply-add contraction, no fast-math (docs/compiled.md)."""

import importlib.util
import pathlib

from setuptools import Extension, setup

# the sources' hash compiled in (circuitgrad/lower/tape_sources.py, loaded by its path)
_spec = importlib.util.spec_from_file_location(
    "tape_sources", pathlib.Path(__file__).parent / "circuitgrad" / "lower" / "tape_sources.py")
_sources = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_sources)

setup(ext_modules=[Extension(
    "circuitgrad.lower._tape",
    sources=["circuitgrad/lower/_tape.c"],
    depends=["circuitgrad/lower/_tape_ops.h", "circuitgrad/lower/csrc/prelude.h"],
    # (no -fno-math-errno: GCC then rewrites sin(atan(x)) and the like; see lower/cforms.py)
    extra_compile_args=["-O2", "-fno-fast-math", "-ffp-contract=off", "-std=c99"],
    libraries=["m"],
    define_macros=[("CG_SOURCE_HASH", f'"{_sources.source_hash()}"')],
)])
