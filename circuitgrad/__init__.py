"""circuitgrad: expressions → differentiable circuits → gradient circuits → NumPy and diagrams.

    >>> import circuitgrad as cg
    >>> c = cg.parse("sin(x)*y + exp(x)")
    >>> g = cg.grad(c)
    >>> J, dJ_dx, dJ_dy = cg.to_numpy(g)(x=0.0, y=2.0)
    >>> float(J), float(dJ_dx), float(dJ_dy)
    (1.0, 3.0, 0.0)

Layout: ``frontends/`` (parse, trace, sympy) → ``circuit`` (the IR) and ``primitives`` (the
table) → ``transforms/`` (grad ...) → ``lower/`` (numpy, text ...).
"""

from .check import check_grad
from .circuit import Circuit
from .value import Value
from .errors import CacheError, CircuitError, InputError, InputRangeError, ParseError, ShapeError
from .frontends.json import from_json
from .frontends import from_sympy, parse, to_sympy, trace
from .frontends.loops import fori_loop, scan
from .lower.json import to_json
from .lower import NumpyFunction, render, to_dot, to_numpy
from .lower.html import to_html
from .lower.tape import TapeFunction, to_tape
from .lower.c import CFunction, to_c
from .lower.fused import FusedFunction, to_fused
from . import ops as _ops
from .ops import *  # noqa: F403 - the table's functions, ops.__all__ (checked against it)
from .primitives import PRIMITIVES
from .transforms import hessian_sparsity, hvp, jacobian_sparsity, jvp, scalarize, simplify
from .functions import Function, function, grad, hessian, jacobian  # (and Python functions)
from .lower.jacobians import jacobian_function

__version__ = "0.1.0"

__all__ = [
    "Circuit", "Value", "CircuitError", "ParseError", "ShapeError", "InputError",
    "InputRangeError", "CacheError", "PRIMITIVES",
    "parse", "trace", "scan", "fori_loop", "from_sympy", "to_sympy", "to_numpy", "NumpyFunction",
    "grad",
    "to_dot", "render", "to_html",
    "check_grad", "scalarize", "simplify", "jvp", "hvp", "hessian", "jacobian", "function", "Function",
    "jacobian_sparsity", "jacobian_function",
    "hessian_sparsity",
    "to_tape", "TapeFunction", "to_c", "CFunction", "to_fused", "FusedFunction",
    "to_json", "from_json",
    *_ops.__all__, "__version__",
]
