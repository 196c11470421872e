"""Transforms: plain functions from circuit to circuit."""

from .grad import grad
from .scalarize import scalarize

__all__ = ["grad", "scalarize"]
