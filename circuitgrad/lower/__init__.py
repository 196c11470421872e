"""Lowerings: functions from a circuit to text or a callable."""

from .numpy import NumpyFunction, to_numpy
from .text import listing

__all__ = ["NumpyFunction", "to_numpy", "listing"]
