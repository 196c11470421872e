"""Lowerings: functions from a circuit to text, a callable or a diagram."""

from .dot import render, to_dot
from .html import to_html
from .json import to_json
from .numpy import NumpyFunction, to_numpy
from .tape import TapeFunction, to_tape
from .c import CFunction, to_c
from .fused import FusedFunction, to_fused
from .text import listing

__all__ = ["to_json", "NumpyFunction", "to_numpy", "listing", "to_dot", "render", "to_html", "TapeFunction", "to_tape", "CFunction", "to_c",
           "FusedFunction", "to_fused"]
