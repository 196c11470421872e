"""Checking a gradient against central differences.

    >>> import circuitgrad as cg
    >>> cg.check_grad(cg.parse("sin(x)*y"), {"x": 0.3, "y": 2.0}) < 1e-7
    True
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .circuit import Circuit, as_circuit
from .errors import CircuitError
from .lower.numpy import to_numpy
from .transforms.grad import grad, pick_inputs, pick_output


def check_grad(c: Circuit, point: dict[str, Any], wrt: str | Sequence[str] | None = None,
               eps: float = 1e-6, output: str | None = None) -> float:
    """The largest error of ``grad(c)`` against central differences at ``point``.

    Each gradient entry is compared with ``(f(x + eps·e) - f(x - eps·e)) / (2·eps)``; the
    error of an entry is ``|g - d| / max(1, |g|, |d|)`` (relative, absolute near zero).

    Args:
        c: the circuit.
        point: a value (a number or an array) for every input.
        wrt: the inputs to check (default: all).
        eps: the finite-difference step.
        output: which output, when there are several.

    Returns:
        The maximum error over all checked entries (0.0 when there are none).

    Raises:
        CircuitError: the point lacks an input, an unknown ``wrt`` name or output.

    >>> import circuitgrad as cg
    >>> c = cg.parse("J = 0.5*(y - relu(w*x + b))**2")
    >>> cg.check_grad(c, {"w": 2.0, "x": 1.5, "b": 0.5, "y": 1.0}) < 1e-6
    True
    """
    c = as_circuit(c, "check_grad")
    out_name, _ = pick_output(c, output)
    names = pick_inputs(c, wrt)
    missing = [n for n in c.inputs if n not in point]
    if missing:
        raise CircuitError(f"check_grad: the point has no value for inputs {missing}")
    point = {n: np.array(point[n], dtype=np.float64) for n in c.inputs}
    f = to_numpy(c)
    g = to_numpy(grad(c, wrt=names, output=out_name))(**point)[1:]
    k = c.outputs.index(out_name)

    def value(p: dict[str, Any]) -> float:
        result = f(**p)
        return float(result if len(c.outputs) == 1 else result[k])

    worst = 0.0
    for name, analytic in zip(names, g):
        x = point[name]
        analytic = np.broadcast_to(analytic, x.shape)
        for index in np.ndindex(x.shape):
            hi, lo = x.copy(), x.copy()
            hi[index] += eps
            lo[index] -= eps
            d = (value({**point, name: hi}) - value({**point, name: lo})) / (2 * eps)
            a = float(analytic[index])
            err = abs(a - d) / max(1.0, abs(a), abs(d))
            if not np.isfinite(err):
                err = 0.0 if a == d else float("inf")
            worst = max(worst, err)
    return worst
