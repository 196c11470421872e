"""Objectives as people write them in NumPy: the classic optimization test problems.

Written here from their published definitions (the Moré–Garbow–Hillstrom set, ACM TOMS 7
(1981); the "test functions for optimization" collected by Jamil & Yang (2013) and by the
Virtual Library of Simulation Experiments) in the idioms public NumPy code uses for them:
``np.sum`` over slices, ``len(x)``, ``x.size``, ``x.shape[0]``, ``np.pi``, ``np.e``,
``np.arange`` weights, Python loops over entries, ``x[0]``, ``x[1::2]``, ``np.concatenate`` of
padding, ``np.prod``, ``np.arctan``. Each takes one vector ``x``. ``AS_WRITTEN`` trace
unchanged; ``EDITED`` needed the edit their docstring names; ``REFUSED`` use something that
cannot be traced and must raise a clear CircuitError (never a wrong gradient).
"""

from __future__ import annotations

import numpy as np


def sphere(x):
    return np.sum(x**2)


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2.0) ** 2.0 + (1 - x[:-1]) ** 2.0, axis=0)


def rosenbrock_loop(x):
    f = 0
    for i in range(len(x) - 1):
        f += 100 * ((x[i + 1] - (x[i] ** 2)) ** 2) + ((1 - x[i]) ** 2)
    return f


def extended_rosenbrock(x):  # MGH 21
    f1 = 10 * (x[1::2] - x[::2] ** 2)
    f2 = 1 - x[::2]
    return np.sum(f1**2) + np.sum(f2**2)


def rastrigin(x, A=10):
    n = x.size
    return A * n + np.sum(x**2 - A * np.cos(2 * np.pi * x))


def ackley(x):
    n = len(x)
    return (-20 * np.exp(-0.2 * np.sqrt(np.sum(x**2) / n))
            - np.exp(np.sum(np.cos(2 * np.pi * x)) / n) + 20 + np.e)


def styblinski_tang(x):
    return np.sum(x**4 - 16 * x**2 + 5 * x) / 2


def zakharov(x):
    i = np.arange(1, x.shape[0] + 1)
    s = np.sum(0.5 * i * x)
    return np.sum(x**2) + s**2 + s**4


def dixon_price(x):
    i = np.arange(2, len(x) + 1)
    return (x[0] - 1) ** 2 + np.sum(i * (2 * x[1:] ** 2 - x[:-1]) ** 2)


def trid(x):
    return np.sum((x - 1) ** 2) - np.sum(x[1:] * x[:-1])


def levy(x):
    w = 1 + (x - 1) / 4
    term1 = np.sin(np.pi * w[0]) ** 2
    term3 = (w[-1] - 1) ** 2 * (1 + np.sin(2 * np.pi * w[-1]) ** 2)
    wi = w[:-1]
    middle = np.sum((wi - 1) ** 2 * (1 + 10 * np.sin(np.pi * wi + 1) ** 2))
    return term1 + middle + term3


def powell_singular(x):  # MGH 13, extended
    x1, x2, x3, x4 = x[0::4], x[1::4], x[2::4], x[3::4]
    return np.sum((x1 + 10 * x2) ** 2 + 5 * (x3 - x4) ** 2 + (x2 - 2 * x3) ** 4
                  + 10 * (x1 - x4) ** 4)


def trigonometric(x):  # MGH 26
    n = len(x)
    f = n - np.sum(np.cos(x)) + np.arange(1, n + 1) * (1 - np.cos(x)) - np.sin(x)
    return np.sum(f**2)


def variably_dimensioned(x):  # MGH 25
    j = np.arange(1, len(x) + 1)
    s = np.sum(j * (x - 1))
    return np.sum((x - 1) ** 2) + s**2 + s**4


def penalty_1(x):  # MGH 23
    return 1e-5 * np.sum((x - 1) ** 2) + (np.sum(x**2) - 0.25) ** 2


def broyden_tridiagonal(x):  # MGH 30
    xm = np.concatenate([[0.0], x[:-1]])
    xp = np.concatenate([x[1:], [0.0]])
    f = (3 - 2 * x) * x - xm - 2 * xp + 1
    return np.dot(f, f)


def discrete_boundary_value(x):  # MGH 28
    n = len(x)
    h = 1 / (n + 1)
    t = np.arange(1, n + 1) * h
    padded = np.concatenate([np.zeros(1), x, np.zeros(1)])
    f = 2 * x - padded[:-2] - padded[2:] + h**2 * (x + t + 1) ** 3 / 2
    return np.sum(f**2)


def wood(x):  # MGH 14, four variables
    return (100 * (x[0] ** 2 - x[1]) ** 2 + (x[0] - 1) ** 2 + (x[2] - 1) ** 2
            + 90 * (x[2] ** 2 - x[3]) ** 2
            + 10.1 * ((x[1] - 1) ** 2 + (x[3] - 1) ** 2) + 19.8 * (x[1] - 1) * (x[3] - 1))


def beale(x):
    x1, x2 = x
    return ((1.5 - x1 + x1 * x2) ** 2 + (2.25 - x1 + x1 * x2**2) ** 2
            + (2.625 - x1 + x1 * x2**3) ** 2)


def himmelblau(x):
    return np.square(x[0] ** 2 + x[1] - 11) + np.square(x[0] + x[1] ** 2 - 7)


def goldstein_price(x):
    x1, x2 = x[0], x[1]
    a = 1 + (x1 + x2 + 1) ** 2 * (19 - 14 * x1 + 3 * x1**2 - 14 * x2 + 6 * x1 * x2
                                  + 3 * x2**2)
    b = 30 + (2 * x1 - 3 * x2) ** 2 * (18 - 32 * x1 + 12 * x1**2 + 48 * x2 - 36 * x1 * x2
                                       + 27 * x2**2)
    return a * b


def michalewicz(x, m=10):
    i = np.arange(1, len(x) + 1)
    return -np.sum(np.sin(x) * np.sin(i * x**2 / np.pi) ** (2 * m))


def chained_norm(x):
    # a least-squares objective through the 2-norm of a residual vector
    r = np.diff(x) - 0.1 * np.cumsum(x)[:-1]
    return np.linalg.norm(r) ** 2


def sum_of_different_powers(x):
    return np.sum(np.abs(x) ** (np.arange(len(x)) + 2))


def rastrigin_asarray(x):
    """EDITED: ``x = np.asarray(x)`` removed (a traced value is already an array)."""
    A = 10
    return A * len(x) + np.sum(x**2 - A * np.cos(2 * np.pi * x))


def griewank(x):
    return 1 + np.sum(x**2) / 4000 - np.prod(np.cos(x / np.sqrt(np.arange(1, len(x) + 1))))


def helical_valley(x):  # MGH 7, for x[0] > 0 (the branch below cannot be traced)
    theta = np.arctan(x[1] / x[0]) / (2 * np.pi)
    r = np.sqrt(x[0] ** 2 + x[1] ** 2)
    return 100 * ((x[2] - 10 * theta) ** 2 + (r - 1) ** 2) + x[2] ** 2


def brown_almost_linear(x):  # MGH 27
    n = len(x)
    f = x + np.sum(x) - (n + 1)
    f = np.concatenate([f[:-1], [np.prod(x) - 1]])
    return np.sum(f**2)


def schwefel_2_22(x):
    return np.sum(np.abs(x)) + np.prod(np.abs(x))


def helical_valley_branch(x):  # MGH 7 as defined, with its branch
    """REFUSED: an ``if`` on a traced value (data-dependent control flow)."""
    if x[0] > 0:
        theta = np.arctan(x[1] / x[0]) / (2 * np.pi)
    else:
        theta = np.arctan(x[1] / x[0]) / (2 * np.pi) + 0.5
    return 100 * ((x[2] - 10 * theta) ** 2 + (np.sqrt(x[0] ** 2 + x[1] ** 2) - 1) ** 2) + x[2] ** 2


def sorted_sum(x):
    """np.sort: the values gathered by argsort's permutation, their adjoint scattered back."""
    return np.sum(np.sort(x)[:3] ** 2)


def schwefel_2_21(x):
    """A write into an array made for traced values (functionalized: frontends/writes.py)."""
    out = np.zeros_like(x)
    out[0] = x[0] ** 2
    return np.sum(out)


AS_WRITTEN = [sphere, rosenbrock, rosenbrock_loop, extended_rosenbrock, rastrigin, ackley,
              styblinski_tang, zakharov, dixon_price, trid, levy, powell_singular,
              trigonometric, variably_dimensioned, penalty_1, broyden_tridiagonal,
              discrete_boundary_value, wood, beale, himmelblau, goldstein_price, michalewicz,
              chained_norm, sum_of_different_powers, griewank, helical_valley,
              brown_almost_linear, schwefel_2_22, schwefel_2_21, sorted_sum]
EDITED = [rastrigin_asarray]
REFUSED = {helical_valley_branch: "no truth value"}
# The number of entries of x each one takes (two or four for the fixed-size ones).
SIZES = {wood: 4, beale: 2, himmelblau: 2, goldstein_price: 2, helical_valley: 3,
         helical_valley_branch: 3,
         powell_singular: 8, extended_rosenbrock: 8}
