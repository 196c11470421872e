import os
import sys

from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))

# Tolerances live in one place: see tests/tolerances.py.
settings.register_profile(
    "default", max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "150")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")
