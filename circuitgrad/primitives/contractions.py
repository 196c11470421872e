"""The contractions beyond matmul (einsum, tensordot, kron, cross ...), with their adjoints as contractions."""

from __future__ import annotations

from .core import Primitive

RECORDS: list[Primitive] = []
