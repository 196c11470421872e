"""scipy.optimize driven by generated code: gradients, Hessians and Jacobians as circuits.

Chained Rosenbrock, J(x) = Σᵢ 100 (xᵢ₊₁ − xᵢ²)² + (1 − xᵢ)², minimum at x = (1, ..., 1):
``cg.grad`` gives ``jac`` and ``cg.hessian`` the (n, n) matrix ``hess`` for Newton-CG and
trust-constr. A curve fit, r(p) = p₀ exp(−p₁ t) + p₂ − y: ``cg.jacobian`` gives the (m, 3)
matrix ``∂r/∂p`` for ``least_squares``.

The discretized boundary-value problem u'' = (u + t + 1)³ / 2, u(0) = u(1) = 0 (Moré, Garbow
and Hillstrom's "discrete boundary value function") at n = 1000: Newton's method with the
sparse tridiagonal Jacobian, a ``scipy.sparse`` matrix from ``cg.jacobian(..., sparse=True)``
(3 sweeps at any n), solved by ``scipy.sparse.linalg.spsolve``.

Constrained problems: Hock-Schittkowski 71 (an inequality and an equality constraint, bounds)
with SLSQP and trust-constr; and a chained problem at n = 1000, min Σ xᵢ² (the end terms
halved) subject to xᵢ xᵢ₊₁ ≥ 1, whose n − 1 inequality constraints have a sparse Jacobian and
whose Lagrangian a sparse Hessian (its solution x = 1 satisfies the KKT conditions of a convex
problem, every multiplier 1). Each solution is checked against the known one.
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


def boundary_value(n: int):
    """``(fun, jac, sparsity)`` of the discrete boundary value function of n unknowns:
    rᵢ = 2xᵢ − xᵢ₋₁ − xᵢ₊₁ + h² (xᵢ + tᵢ + 1)³ / 2 with x₀ = xₙ₊₁ = 0; ``jac``
    returns a ``scipy.sparse.csr_array``."""
    h = 1.0 / (n + 1)
    t = np.arange(1, n + 1) * h
    zero = np.zeros(1)

    def residual(x):
        below = np.concatenate([zero, x[:-1]])
        above = np.concatenate([x[1:], zero])
        return 2 * x - below - above + h**2 / 2 * (x + t + 1) ** 3

    c = cg.trace(residual, shapes={"x": (n,)})
    f = cg.to_numpy(cg.jacobian(c, sparse=True))
    return (lambda x: f(x=x)[0], lambda x: f(x=x).jacobian, cg.jacobian_sparsity(c))


def newton(residual, jacobian, x, tol: float = 1e-14, most: int = 20):
    """Newton's method x ← x − J(x)⁻¹ r(x) with ``scipy.sparse.linalg.spsolve`` on the sparse
    Jacobian: ``(x, steps)``. (``least_squares``' sparse solver, LSMR, stalls near 10⁻⁶ on
    this problem, whose Jacobian's condition number grows like n².)"""
    from scipy.sparse.linalg import spsolve

    for step in range(most):
        r = residual(x)
        if np.max(np.abs(r)) < tol:
            return x, step
        x = x - spsolve(jacobian(x).tocsc(), r)
    return x, most


HS71 = "J = x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2]"
HS71_SOLUTION = np.array([1.0, 4.74299963, 3.82114998, 1.37940829])


def hs71():
    """``(fun, jac, hess, constraints, bounds, start)`` of Hock-Schittkowski problem 71:
    min x₀x₃(x₀ + x₁ + x₂) + x₂ subject to x₀x₁x₂x₃ ≥ 25, Σ xᵢ² = 40, 1 ≤ xᵢ ≤ 5, with the
    gradients, Hessians and constraint Jacobians from circuits."""
    shapes = {"x": (4,)}
    objective = cg.parse(HS71, shapes=shapes)
    value, gradient = cg.to_numpy(objective), cg.to_numpy(cg.grad(objective))
    hessian = cg.to_numpy(cg.hessian(objective))
    constraints = cg.parse("product = x[0] * x[1] * x[2] * x[3]\nsquares = sum(x * x)",
                           shapes=shapes, outputs=["product", "squares"])
    jacobian = cg.to_numpy(cg.jacobian(constraints))
    # the constraints' Hessians weighted by the multipliers v: the Hessian of v · c
    weighted = cg.parse("L = v[0] * x[0] * x[1] * x[2] * x[3] + v[1] * sum(x * x)",
                        shapes={"x": (4,), "v": (2,)}, inputs=["x", "v"])
    weighted_hessian = cg.to_numpy(cg.hessian(weighted, wrt="x"))

    def constraint(x):
        out = jacobian(x=x)
        return np.array([out.product, out.squares])

    def constraint_jacobian(x):
        out = jacobian(x=x)
        return np.vstack([out.dproduct_dx, out.dsquares_dx])

    return (lambda x: float(value(x=x)), lambda x: gradient(x=x).dJ_dx,
            lambda x: hessian(x=x).d2J_dx_dx, constraint, constraint_jacobian,
            lambda x, v: weighted_hessian(x=x, v=v).d2L_dx_dx)


def chained_constrained(n: int):
    """``(fun, jac, hess, constraint)`` of min x₁²/2 + x₂² + ... + xₙ₋₁² + xₙ²/2 subject to
    xᵢ xᵢ₊₁ ≥ 1 (convex on the positive branch; at x = 1 every constraint is active with
    multiplier 1, which the end weights ½ make so, and the KKT conditions hold): the constraint a
    ``NonlinearConstraint`` whose ``jac`` (n − 1 by n, two nonzeros a row) and ``hess`` (the
    Lagrangian's, tridiagonal) are ``scipy.sparse`` matrices from sparse circuits."""
    objective = cg.parse("J = sum(x * x) - (x[0] * x[0] + x[-1] * x[-1]) / 2",
                         shapes={"x": (n,)})
    h = cg.to_numpy(cg.hessian(objective, sparse=True))
    products = cg.parse("c = x[:-1] * x[1:]", shapes={"x": (n,)})
    j = cg.to_numpy(cg.jacobian(products, sparse=True))
    weighted = cg.parse("L = sum(v * x[:-1] * x[1:])", shapes={"x": (n,), "v": (n - 1,)},
                        inputs=["x", "v"])
    lagrangian = cg.to_numpy(cg.hessian(weighted, wrt="x", sparse=True))
    constraint = optimize.NonlinearConstraint(
        lambda x: j(x=x).c, 1.0, np.inf, jac=lambda x: j(x=x).jacobian,
        hess=lambda x, v: lagrangian(x=x, v=v).d2L)
    return (lambda x: float(h(x=x).J), lambda x: h(x=x).dJ_dx, lambda x: h(x=x).d2J,
            constraint)


def solve_hs71() -> dict:
    fun, jac, hess, constraint, constraint_jacobian, constraint_hessian = hs71()
    start, bounds = np.array([1.0, 5.0, 5.0, 1.0]), optimize.Bounds(1.0, 5.0)
    results = {}
    slsqp = [{"type": "ineq", "fun": lambda x: constraint(x)[0] - 25,
              "jac": lambda x: constraint_jacobian(x)[:1]},
             {"type": "eq", "fun": lambda x: constraint(x)[1] - 40,
              "jac": lambda x: constraint_jacobian(x)[1:]}]
    results["SLSQP"] = optimize.minimize(fun, start, jac=jac, bounds=bounds, constraints=slsqp,
                                         method="SLSQP", options={"ftol": 1e-10})
    nonlinear = optimize.NonlinearConstraint(constraint, [25.0, 40.0], [np.inf, 40.0],
                                             jac=constraint_jacobian, hess=constraint_hessian)
    results["trust-constr"] = optimize.minimize(
        fun, start, jac=jac, hess=hess, bounds=bounds, constraints=[nonlinear],
        method="trust-constr", options={"gtol": 1e-12, "xtol": 1e-14, "barrier_tol": 1e-12,
                                        "maxiter": 500})
    for method, result in results.items():
        error = float(np.max(np.abs(result.x - HS71_SOLUTION)))
        print(f"HS71 {method:>12}: {result.nit} iterations, f = {result.fun:.7f}, "
              f"max |x - x*| = {error:.1e}")
        assert error < 1e-6, (method, result.message)
    return results


def main(n: int = 20, n_sparse: int = 1000) -> dict:
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
    residual, sparse_jacobian, sparsity = boundary_value(n_sparse)
    x, steps = newton(residual, sparse_jacobian, np.zeros(n_sparse))
    worst = float(np.max(np.abs(residual(x))))
    print(f"boundary value problem: n = {n_sparse}, {steps} Newton steps (spsolve on the "
          f"CSR Jacobian, {sparsity.nnz} nonzeros), max |r| = {worst:.1e}")
    assert worst < 1e-14
    results["boundary_value"] = optimize.OptimizeResult(x=x, nit=steps, success=True)
    results.update({f"HS71 {k}": r for k, r in solve_hs71().items()})
    fun, jac, hess, constraint = chained_constrained(n_sparse)
    chained = optimize.minimize(fun, np.full(n_sparse, 2.0), jac=jac, hess=hess,
                                constraints=[constraint], method="trust-constr",
                                options={"gtol": 1e-12, "xtol": 1e-14, "barrier_tol": 1e-12,
                                         "maxiter": 1000})
    error = float(np.max(np.abs(chained.x - 1.0)))
    print(f"chained constraints: n = {n_sparse}, {chained.nit} iterations, "
          f"max |x - 1| = {error:.1e}")
    assert error < 1e-6, chained.message
    results["chained constraints"] = chained
    return results


if __name__ == "__main__":
    main()
