"""Transforms: plain functions from circuit to circuit."""

from .grad import grad

__all__ = ["grad"]
