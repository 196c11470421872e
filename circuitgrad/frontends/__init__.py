"""Front-ends: text (``parse``), sympy (``from_sympy``), Python functions (``trace``)."""

from .json import from_json
from .parse import parse
from .sympy import from_sympy, to_sympy
from .trace import trace

__all__ = ["from_json", "parse", "from_sympy", "to_sympy", "trace"]
