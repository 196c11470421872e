"""Public objectives traced with one vector input, gradients against central differences
(tests/objectives.py says where they come from and which needed an edit)."""

from __future__ import annotations

import numpy as np
import pytest

import circuitgrad as cg
from objectives import AS_WRITTEN, EDITED, REFUSED, SIZES


def _point(fn, seed=0):
    n = SIZES.get(fn, 6)
    return np.random.default_rng(seed).uniform(0.2, 1.3, size=n)


@pytest.mark.parametrize("fn", AS_WRITTEN + EDITED, ids=lambda f: f.__name__)
def test_objective_traces_and_its_gradient_is_right(fn):
    x = _point(fn)
    c = cg.trace(fn, shapes={"x": x.shape})
    got = cg.to_numpy(cg.grad(c))(x)
    assert float(got.f) == pytest.approx(float(fn(x)), rel=1e-13, abs=1e-13)
    # central differences, per entry, scaled by the function's size
    eps = 1e-6
    for k in range(x.size):
        hi, lo = x.copy(), x.copy()
        hi[k] += eps
        lo[k] -= eps
        d = (fn(hi) - fn(lo)) / (2 * eps)
        assert got.df_dx[k] == pytest.approx(d, rel=1e-5, abs=1e-5 * max(1.0, abs(fn(x))))
    # and a batch of points, each what it is alone
    X = np.stack([_point(fn, s) for s in range(3)])
    batch = cg.to_numpy(cg.grad(c))(X)
    for k in range(3):
        np.testing.assert_array_equal(batch.df_dx[k], cg.to_numpy(cg.grad(c))(X[k]).df_dx)


@pytest.mark.parametrize("fn", list(REFUSED), ids=lambda f: f.__name__)
def test_what_does_not_trace_yet_is_refused_by_name(fn):
    with pytest.raises(cg.CircuitError, match=REFUSED[fn].replace(".", r"\.")):
        cg.trace(fn, shapes={"x": _point(fn).shape})
