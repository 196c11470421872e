"""scipy.optimize driven by generated code: gradients, Hessians and Jacobians as circuits.

Chained Rosenbrock, J(x) = Σᵢ 100 (xᵢ₊₁ − xᵢ²)² + (1 − xᵢ)², minimum at x = (1, ..., 1):
``cg.grad`` gives ``jac`` and ``cg.hessian`` the (n, n) matrix ``hess`` for Newton-CG and
trust-constr. A curve fit, r(p) = p₀ exp(−p₁ t) + p₂ − y: ``cg.jacobian`` gives the (m, 3)
matrix ``∂r/∂p`` for ``least_squares``. Each solution is checked against the known one.
"""

import numpy as np
from scipy import optimize

import circuitgrad as cg

ROSENBROCK = "J = sum(100 * square(x[1:] - square(x[:-1])) + square(1 - x[:-1]))"
RESIDUAL = "r = p[0] * exp(-p[1] * t) + p[2] - y"


def rosenbrock(n: int):
    """``(fun, jac, hess)`` of the chained Rosenbrock function of n variables, for scipy."""
    c = cg.parse(ROSENBROCK, shapes={"x": (n,)})
    value, gradient = cg.to_numpy(c), cg.to_numpy(cg.grad(c))
    hessian = cg.to_numpy(cg.hessian(c))
    return (lambda x: float(value(x=x)), lambda x: gradient(x=x).dJ_dx,
            lambda x: hessian(x=x).d2J_dx_dx)


def curve_fit(m: int):
    """``(fun, jac)`` of the residuals ``r(p)`` at m points, for ``least_squares``, and the
    parameters that fit the data exactly."""
    c = cg.parse(RESIDUAL, shapes={"p": (3,), "t": (m,), "y": (m,)})
    j = cg.to_numpy(cg.jacobian(c, wrt="p"))
    t = np.linspace(0.0, 3.0, m)
    best = np.array([2.0, 1.3, 0.5])
    y = best[0] * np.exp(-best[1] * t) + best[2]
    return (lambda p: j(p=p, t=t, y=y).r, lambda p: j(p=p, t=t, y=y).dr_dp), best


def main(n: int = 20) -> dict:
    fun, jac, hess = rosenbrock(n)
    start = np.zeros(n)
    results = {}
    for method in ("Newton-CG", "trust-constr"):
        options = {"xtol": 1e-12} if method == "Newton-CG" else {"gtol": 1e-12, "xtol": 1e-14}
        result = optimize.minimize(fun, start, jac=jac, hess=hess, method=method,
                                   options=options)
        error = float(np.max(np.abs(result.x - 1.0)))
        print(f"{method:>12}: n = {n}, {result.nit} iterations, max |x - 1| = {error:.1e}")
        assert error < 1e-6, (method, result.message)
        results[method] = result
    (residuals, jacobian), best = curve_fit(30)
    fit = optimize.least_squares(residuals, np.array([1.0, 1.0, 0.0]), jac=jacobian,
                                 xtol=1e-15, ftol=1e-15, gtol=1e-15)
    error = float(np.max(np.abs(fit.x - best)))
    print(f"least_squares: {fit.nfev} evaluations, max |p - p*| = {error:.1e}")
    assert error < 1e-6, fit.message
    results["least_squares"] = fit
    return results


if __name__ == "__main__":
    main()
