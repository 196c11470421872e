"""A one-node-per-line listing of a circuit, for ``repr`` and error messages.

    >>> import circuitgrad as cg
    >>> print(listing(cg.parse("z = w*x\\nJ = sin(z)")))
    %0 = input w
    %1 = input x
    %2 = mul %0, %1  # z
    %3 = sin %2  # J
    outputs: J = %3
"""

from __future__ import annotations

from ..circuit import Circuit, register_display


def listing(c: Circuit, limit: int | None = None) -> str:
    """The nodes of ``c``, one per line (the first ``limit`` and the last few when longer)."""
    outputs = {}
    for name, i in zip(c.outputs, c.output_ids):
        outputs.setdefault(i, name)
    n = len(c)
    shown = range(n)
    skipped = 0
    if limit is not None and n > limit:
        shown = list(range(limit - 3)) + list(range(n - 3, n))
        skipped = n - limit
    lines = []
    for i in shown:
        if skipped and i == n - 3:
            lines.append(f"... {skipped} more nodes ...")
        op, params = c.op(i), c.params(i)
        if op in ("input", "const"):
            body = f"{op} {params if op == 'input' else _number(params)}"
        else:
            body = f"{op} " + ", ".join(f"%{a}" for a in c.args(i))
            if params:
                body += " " + " ".join(f"{k}={v!r}" for k, v in params.items())
        notes = []
        if c.shape(i):
            notes.append(str(c.shape(i)))
        name = c.name(i) or outputs.get(i)
        if name and op != "input":
            notes.append(name)
        lines.append(f"%{i} = {body}" + (f"  # {' '.join(notes)}" if notes else ""))
    lines.append("outputs: " + ", ".join(f"{o} = %{i}" for o, i in zip(c.outputs, c.output_ids)))
    return "\n".join(lines)


def _number(value) -> str:
    shape = getattr(value, "shape", ())
    return f"array{shape}" if shape else repr(float(value))


register_display("text", lambda c: listing(c, limit=20))
