"""Where things are, for tests in any folder of tests/: the repository and tests/ itself."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
