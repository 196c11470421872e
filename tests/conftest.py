import os
import sys

import pytest
from hypothesis import HealthCheck, settings

# tests/ and its folders (which mirror the package) on the path: the shared helpers (specs,
# strategies, tolerances, paths) and the test modules that others import from.
_HERE = os.path.dirname(os.path.abspath(__file__))
for _folder in ("", "primitives", "ir", "frontends", "transforms", "lower"):
    sys.path.insert(0, os.path.join(_HERE, _folder))

# Tolerances live in one place: see tests/tolerances.py.
settings.register_profile(
    "default", max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "150")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # CI (.ci/run sets CI=1) replays the same examples every run, so a landing is never
    # decided by a lucky draw; local runs keep exploring new examples.
    derandomize=bool(os.environ.get("CI")))
settings.load_profile("default")


@pytest.fixture(autouse=True, scope="session")
def size_bound_on_every_gradient():
    """The O(N) theorem as a hard bound, checked on every adjoint circuit any test builds:
    grad(c).size <= K * c.size, K from the primitive table (before simplification)."""
    import importlib

    module = importlib.import_module("circuitgrad.transforms.grad")

    real = module._grad

    def checked(c, wrt, output, fused=True):
        g = real(c, wrt, output, fused)
        tensor = any(c.shape(i) for i in range(len(c)))
        k = module.TENSOR_SIZE_FACTOR if tensor else module.SIZE_FACTOR
        size = module.bound_size(c)
        assert g.size <= k * size, f"adjoint size {g.size} > {k} x {size}"
        return g

    module._grad = checked
    yield
    module._grad = real
