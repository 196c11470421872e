"""The sources the tape extension (``circuitgrad.lower._tape``) is compiled from, and their
hash: ``setup.py`` compiles the hash into the extension (``SOURCE_HASH``), and
:mod:`circuitgrad.lower.program` compares it with the sources beside the package where they
are (a checkout, an editable install), so an extension built from other sources (a ``git
pull`` that changed ``_tape_ops.h`` or ``csrc/prelude.h`` without a rebuild) is not used: its
numbers would be the old code's. No imports beyond the standard library: ``setup.py`` loads
this file by its path, before circuitgrad's dependencies exist.

    >>> len(source_hash())
    16
"""

from __future__ import annotations

import hashlib
import pathlib

SOURCES = ("_tape.c", "_tape_ops.h", "csrc/prelude.h")
HERE = pathlib.Path(__file__).resolve().parent


def source_hash(root: pathlib.Path = HERE) -> str | None:
    """The first 16 hex digits of the SHA-256 of the sources (in ``SOURCES``' order, under
    ``root``), or None where one of them is not there (an installed wheel)."""
    h = hashlib.sha256()
    for name in SOURCES:
        try:
            h.update((root / name).read_bytes())
        except OSError:
            return None
    return h.hexdigest()[:16]
