"""Transforms: plain functions from circuit to circuit."""

from .grad import grad
from .jvp import hessian, hvp, jvp
from .scalarize import scalarize
from .simplify import simplify

__all__ = ["grad", "scalarize", "simplify", "jvp", "hvp", "hessian"]
