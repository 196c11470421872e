"""circuitgrad's benchmarks: ``python -m benchmarks`` (or ``make bench``).

Modules: ``scaling`` (circuitgrad alone: linear build, size of ∇f, cheap-gradient ratio),
``peers`` (against sympy, symengine, JAX, PyTorch, PyTensor, CasADi, autograd, NumPy), and any
other ``benchmarks/<name>.py`` that defines ``run(quick: bool = False) -> str``. Shared pieces:
``harness`` (bounded child processes, medians, tables, plots), ``programs`` (the workloads as
program text and as Python functions for every tool), ``report`` (the suite and its file).
"""
