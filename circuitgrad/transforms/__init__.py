"""Transforms: plain functions from circuit to circuit."""

from .adjoints import node_adjoints
from .grad import grad
from .jacobian import jacobian
from .jvp import hessian, hvp, jvp
from . import loops as _loops  # noqa: F401  (registers the loops' derivative rules)
from .scalarize import scalarize
from .simplify import simplify
from .sparsity import hessian_sparsity, jacobian_sparsity

__all__ = ["node_adjoints", "grad", "scalarize", "simplify", "jvp", "hvp", "hessian",
           "jacobian", "jacobian_sparsity", "hessian_sparsity"]
