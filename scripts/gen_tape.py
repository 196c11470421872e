"""Write circuitgrad/lower/_tape_ops.h, the tape evaluator's opcode switch, from the primitive
table's ``c`` forms (``python scripts/gen_tape.py``; ``--check`` only compares). Rebuild the
extension afterwards: ``pip install -e .``. tests/test_tape.py fails while the committed file
differs from what the table makes."""

from __future__ import annotations

import pathlib
import sys

from circuitgrad.lower.cforms import tape_ops_header

HEADER = pathlib.Path(__file__).resolve().parent.parent / "circuitgrad" / "lower" / "_tape_ops.h"


def main(argv: list[str]) -> int:
    text = tape_ops_header() + "\n"
    if "--check" in argv:
        same = HEADER.exists() and HEADER.read_text() == text
        print(f"{HEADER}: {'up to date' if same else 'STALE: run python scripts/gen_tape.py'}")
        return 0 if same else 1
    HEADER.write_text(text)
    print(f"wrote {HEADER}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
