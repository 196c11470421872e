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
from .circuit import Circuit, Value
from .errors import CircuitError, ParseError, ShapeError
from .frontends.json import from_json
from .frontends import from_sympy, parse, to_sympy, trace
from .lower.json import to_json
from .lower import NumpyFunction, render, to_dot, to_numpy
from .lower.html import to_html
from .lower.tape import TapeFunction, to_tape
from .lower.c import CFunction, to_c
from .ops import (abs, acos, acosh, asin, asinh, atan, atan2, atanh, ceil, clip, cos, cosh,
                  equal, erf, erfc, exp, exp2, expm1, floor, greater, greater_equal, hypot, less,
                  less_equal, log, log1p, log2, log10, log_softmax, logaddexp, logical_and,
                  logical_not, logical_or, logsumexp, max, maximum, mean, min, minimum, norm,
                  not_equal, outer, prod, relu, round, sigmoid, sign, sin, sinh, softmax,
                  softplus, sqrt, square, step, sum, tan, tanh, transpose, where)
from .primitives import PRIMITIVES
from .transforms import (grad, hessian, hessian_sparsity, hvp, jacobian, jacobian_sparsity, jvp,
                         scalarize, simplify)

__version__ = "0.1.0"

__all__ = [
    "Circuit", "Value", "CircuitError", "ParseError", "ShapeError", "PRIMITIVES",
    "parse", "trace", "from_sympy", "to_sympy", "to_numpy", "NumpyFunction", "grad",
    "to_dot", "render", "to_html",
    "check_grad", "scalarize", "simplify", "jvp", "hvp", "hessian", "jacobian", "jacobian_sparsity",
    "hessian_sparsity",
    "to_tape", "TapeFunction", "to_c", "CFunction",
    "to_json", "from_json",
    "abs", "cos", "exp", "log", "mean", "outer", "relu", "sigmoid", "sign", "sin", "sqrt",
    "square", "step", "sum", "tanh", "transpose",
    "log1p", "expm1", "softplus", "erf", "erfc", "tan", "asin", "acos", "atan", "atan2", "sinh",
    "cosh", "asinh", "acosh", "atanh", "log2", "log10", "exp2", "hypot", "floor", "ceil",
    "round", "maximum", "minimum", "clip", "where", "logaddexp",
    "less", "less_equal", "greater", "greater_equal", "equal", "not_equal", "logical_and",
    "logical_or", "logical_not",
    "max", "min", "prod", "norm", "logsumexp", "softmax", "log_softmax", "__version__",
]
