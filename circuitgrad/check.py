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
        CircuitError: the point lacks an input, an unknown ``wrt`` name or output; a value
            whose shape is not its input's (more axes: a batch of points, while this checks
            one point); ``f`` not finite at the point or at a difference step.

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
    point = {n: _value(c, n, point[n]) for n in c.inputs}
    f = to_numpy(c)
    k = c.outputs.index(out_name)

    def value(p: dict[str, Any], where: str = "at the point") -> float:
        with np.errstate(all="ignore"):
            result = f(**p)
        v = float(result if len(c.outputs) == 1 else result[k])
        if not np.isfinite(v):
            raise CircuitError(f"check_grad: {out_name} is not finite {where} ({out_name} = "
                               f"{v}): central differences need a finite value; pick another "
                               "point")
        return v

    value(point)
    with np.errstate(all="ignore"):
        g = to_numpy(grad(c, wrt=names, output=out_name))(**point)[1:]
    worst = 0.0
    for name, analytic in zip(names, g):
        x = point[name]
        analytic = np.broadcast_to(analytic, x.shape)
        for index in np.ndindex(x.shape):
            hi, lo = x.copy(), x.copy()
            hi[index] += eps
            lo[index] -= eps
            entry = f"{name}{list(index)}" if index else name
            d = (value({**point, name: hi}, f"at {entry} + eps") -
                 value({**point, name: lo}, f"at {entry} - eps")) / (2 * eps)
            a = float(analytic[index])
            err = abs(a - d) / max(1.0, abs(a), abs(d))
            if not np.isfinite(err):
                err = 0.0 if a == d else float("inf")
            worst = max(worst, err)
    return worst


def _value(c: Circuit, name: str, value: Any) -> np.ndarray:
    """The value of input ``name`` as a float64 array of the input's own shape."""
    try:
        v = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CircuitError(f"check_grad: the value of {name!r} is not a number or an array "
                           f"of numbers: {value!r}") from None
    shape = c.input_shapes[name]
    if v.shape != shape:
        what = "a scalar" if not shape else f"of shape {shape}"
        batch = (" (a batch of points: check_grad checks one point; check each point, or "
                 "declare the input's shape)") if v.ndim > len(shape) else ""
        raise CircuitError(f"check_grad: input {name!r} is {what}, got a value of shape "
                           f"{v.shape}{batch}")
    return v
