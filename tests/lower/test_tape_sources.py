"""The tape extension is used only where it was built from the sources beside it
(circuitgrad/lower/tape_sources.py): an extension built before a change to _tape.c,
_tape_ops.h or csrc/prelude.h would give the old code's numbers (session 12 found one in a
checkout, 6 ulps off in sigmoid), so it is refused by name, with how to rebuild it."""

from __future__ import annotations

import shutil
import types

import pytest

import circuitgrad as cg
from circuitgrad.lower import program, tape, tape_sources


def test_the_built_extension_is_of_these_sources():
    assert program.EXTENSION is not None, program.EXTENSION_PROBLEM
    assert program.EXTENSION.SOURCE_HASH == tape_sources.source_hash()


def test_the_hash_follows_every_source(tmp_path):
    for name in tape_sources.SOURCES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tape_sources.HERE / name, tmp_path / name)
    before = tape_sources.source_hash(tmp_path)
    assert before == tape_sources.source_hash()
    for name in tape_sources.SOURCES:
        with open(tmp_path / name, "a") as f:
            f.write("\n/* changed */\n")
        after = tape_sources.source_hash(tmp_path)
        assert after != before, name
        before = after
    (tmp_path / tape_sources.SOURCES[-1]).unlink()
    assert tape_sources.source_hash(tmp_path) is None  # (a wheel: nothing to compare)


def test_an_extension_of_other_sources_is_refused_by_name(monkeypatch):
    stale = types.SimpleNamespace(SOURCE_HASH="0" * 16, OPS=())
    module, problem = program.checked_extension(stale, tape_sources.source_hash())
    assert module is None and "other sources" in problem and "_tape_ops.h" in problem
    assert program.checked_extension(stale, None) == (stale, "")  # no sources beside it
    assert program.checked_extension(None, "x")[1] == "is not built"
    monkeypatch.setattr(tape, "_tape", None)
    monkeypatch.setattr(tape, "EXTENSION_PROBLEM", problem)
    with pytest.raises(cg.CircuitError, match="built from other sources.*pip install -e"):
        cg.to_tape(cg.parse("x * y"))
