"""The JSON lowering: a circuit saved as text (schema version 1, documented in docs/json.md).

The document is one JSON object; ``nodes`` lists the circuit's node records in topological
order, one per line, so a saved circuit reads (and diffs) like the listing of ``repr``::

    {"format": "circuitgrad.circuit", "version": 1,
     "inputs": ["x"],
     "outputs": [["f", 1]],
     "nodes": [
      {"op": "input", "input": "x"},
      {"op": "sin", "args": [0]}
     ]}

Numbers are written exactly (``repr`` of a float64 round-trips); the non-finite constants,
which JSON has no numbers for, are the strings ``"nan"``, ``"inf"`` and ``"-inf"``. An array
constant is its elements in row-major order plus its ``shape``. Read it back with
:func:`circuitgrad.from_json`, which checks everything and rebuilds the circuit through the
builder.

    >>> import circuitgrad as cg
    >>> print(to_json(cg.parse("sin(x)")))
    {"format": "circuitgrad.circuit", "version": 1,
     "inputs": ["x"],
     "outputs": [["f", 1]],
     "nodes": [
      {"op": "input", "input": "x"},
      {"op": "sin", "args": [0]}
     ]}
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from ..guards import refuse_guarded
from ..circuit import Circuit, as_circuit
from ..errors import CircuitError

FORMAT = "circuitgrad.circuit"
"""The ``format`` field of every saved circuit."""

VERSION = 1
"""The schema version :func:`to_json` writes (and :func:`~circuitgrad.from_json` reads)."""

_SCALARS = (str, int, float, bool, type(None))


def number(value: float) -> float | str:
    """A float64 as JSON: the number itself, or ``"nan"``, ``"inf"``, ``"-inf"``.

        >>> number(0.5), number(float("-inf"))
        (0.5, '-inf')
    """
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _param(i: int, key: str, value: Any) -> Any:
    def saved(v: Any, depth: int) -> Any:
        if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
            return int(v)
        if v is None and depth > 0:  # inside an index: a new axis, an open slice end
            return None
        if isinstance(v, (tuple, list)) and depth < 4:
            return [saved(e, depth + 1) for e in v]
        raise CircuitError(f"node {i}: param {key}={value!r} cannot be saved (integers, "
                           "and tuples of integers and None, can)")

    return saved(value, 0)


def _meta(meta: dict[str, Any]) -> dict[str, Any]:
    saved: dict[str, Any] = {}
    for key, value in meta.items():
        if key == "adjoint_of":
            saved[key] = sorted([int(a), int(f)] for a, f in value.items())
        elif key == "csr_outputs":  # the patterns of sparse matrix outputs (circuitgrad.csr)
            saved[key] = {name: {"shape": [int(n) for n in layout["shape"]],
                                 "indptr": [int(k) for k in layout["indptr"]],
                                 "indices": [int(k) for k in layout["indices"]]}
                          for name, layout in value.items()}
        elif isinstance(value, tuple) and all(isinstance(v, _SCALARS) for v in value):
            saved[key] = list(value)
        elif isinstance(value, _SCALARS) and not (isinstance(value, float)
                                                  and not math.isfinite(value)):
            saved[key] = value
        else:
            raise CircuitError(f"meta entry {key!r} = {value!r} cannot be saved: only "
                               "'adjoint_of', 'csr_outputs', scalars and tuples of scalars can")
    return saved


def to_json(c: Circuit, path: str | os.PathLike | None = None) -> str:
    """Save a circuit as JSON text (schema version 1, see docs/json.md).

    Args:
        c: the circuit (or program text, parsed).
        path: a file to write the document to as well (UTF-8), e.g. ``"net.json"``.

    Returns:
        The JSON document: one node record per line, numbers written exactly.

    Raises:
        CircuitError: ``c`` is not a circuit, holds params or meta entries that the schema
            cannot represent, or ``path`` cannot be written.

    >>> import circuitgrad as cg
    >>> c = cg.parse("z = w*x + b")
    >>> cg.from_json(to_json(c)).outputs
    ('z',)
    """
    c = as_circuit(c, "to_json")
    refuse_guarded(c, "to_json")
    bodies: list[dict] = []  # the loops' bodies, inner ones first (a body names earlier ones)
    numbered: dict[Any, int] = {}
    nodes = _records(c, bodies, numbered)
    head = {"format": FORMAT, "version": VERSION}
    parts: dict[str, Any] = {"inputs": list(c.inputs),
                             "outputs": [[name, i] for name, i in zip(c.outputs, c.output_ids)]}
    if c.meta:
        parts["meta"] = _meta(c.meta)
    if bodies:
        parts["bodies"] = bodies
    try:
        text = _document(head, parts, nodes, ensure_ascii=False)
    except UnicodeEncodeError:  # a name with a lone surrogate: escape everything
        text = _document(head, parts, nodes, ensure_ascii=True)
    if path is not None:
        if not isinstance(path, (str, os.PathLike)):
            raise CircuitError(f"to_json: path must be a str or os.PathLike, got "
                               f"{type(path).__name__}", argument="path")
        try:
            with open(os.fspath(path), "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
        except OSError as e:
            raise CircuitError(f"to_json: cannot write {os.fspath(path)!r}: "
                               f"{e.strerror or e}") from None
    return text


def _records(c: Circuit, bodies: list[dict], numbered: dict[Any, int]) -> list[dict]:
    """The node records of ``c``; a loop's body (and its checkpointed recomputation) is
    appended to ``bodies`` once, before the first node that names it by its index there.
    The bodies are saved without recursion: a body's own loops were numbered when its
    circuit was (the pending stack below)."""
    from ..primitives.loops import Body

    def number_body(body: Any) -> int:
        # The bodies ``body`` needs, inner first, by an explicit stack.
        stack = [(body, False)]
        while stack:
            b, ready = stack.pop()
            if b in numbered:
                continue
            inner = [p for _, op, _, params, _ in b.circuit.records() if op == "scan"
                     for p in (params["body"], params.get("recompute")) if isinstance(p, Body)]
            if not ready:
                stack.append((b, True))
                stack.extend((p, False) for p in inner if p not in numbered)
                continue
            numbered[b] = len(bodies)
            bodies.append({"carries": b.carries, "xs": b.xs,
                           "inputs": list(b.circuit.inputs),
                           "outputs": [[n, i] for n, i in zip(b.circuit.outputs,
                                                                b.circuit.output_ids)],
                           "nodes": _node_records(b.circuit, numbered)})
        return numbered[body]

    for _, op, _, params, _ in c.records():
        if op == "scan":
            for key in ("body", "recompute"):
                if isinstance(params.get(key), Body):
                    number_body(params[key])
    return _node_records(c, numbered)


def _node_records(c: Circuit, numbered: dict[Any, int]) -> list[dict]:
    from ..primitives.loops import Body

    nodes = []
    for i, op, args, params, shape in c.records():
        record: dict[str, Any] = {"op": op}
        if op == "input":
            record["input"] = params
        elif op == "const":
            if isinstance(params, np.ndarray):
                record["value"] = [number(v) for v in params.ravel().tolist()]
            else:
                record["value"] = number(params)
        else:
            record["args"] = list(args)
            if params:
                record["params"] = {
                    k: numbered[v] if isinstance(v, Body) else int(v) if isinstance(v, bool)
                    else _param(i, k, v) for k, v in params.items() if v is not None}
        if shape:
            record["shape"] = list(shape)
        name = c.name(i)
        if name is not None:
            record["name"] = name
        nodes.append(record)
    return nodes


def _document(head: dict, parts: dict, nodes: list[dict], ensure_ascii: bool) -> str:
    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=ensure_ascii, allow_nan=False)

    lines = [dump(head)[:-1] + ","]
    lines += [f" {dump(k)}: {dump(v)}," for k, v in parts.items() if k != "bodies"]
    if "bodies" in parts:  # each body as the document is: its nodes one per line
        shown = []
        for body in parts["bodies"]:
            head_fields = ", ".join(f"{dump(k)}: {dump(v)}" for k, v in body.items()
                                    if k != "nodes")
            rows = ",\n".join(f"    {dump(node)}" for node in body["nodes"])
            shown.append(f"  {{{head_fields}, \"nodes\": [\n{rows}\n  ]}}")
        lines.append(' "bodies": [\n' + ",\n".join(shown) + "\n ],")
    body = ",\n".join(f"  {dump(node)}" for node in nodes)
    lines.append(' "nodes": [\n' + body + "\n ]}")
    text = "\n".join(lines)
    if not ensure_ascii:
        text.encode("utf-8")
    return text
