"""The linear-algebra primitives (solve, inv, det, slogdet, cholesky, eigh, svd ...), with the matrix adjoint rules of the notes' style: ∂J/∂A as a matrix expression."""

from __future__ import annotations

from .core import Primitive

RECORDS: list[Primitive] = []
