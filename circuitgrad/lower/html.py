"""The browser viewer: a circuit of any size as one self-contained HTML file.

Contract:

* One file, no network at view time: the page holds the circuit as JSON and its JavaScript
  and CSS inline, read from the package's ``lower/assets`` folder (``viewer.js``, ours;
  ``svg-pan-zoom.min.js``, vendored from npm, BSD-2-Clause: see ``assets/README.md``).
* The page shows the group tree of :func:`~circuitgrad.lower.groups.groups` (parts, then
  the program's statements or traced lines, then ranges), every group collapsed, each with its
  node and operation counts; a click opens a group. Nodes have the static diagrams' colours
  and names (:func:`~circuitgrad.lower.dot.palette`, the diagram's captions), the adjoint node
  of a forward node is linked to it (selecting one shows the other), ``at=`` adds each node's
  value and δ on hover, and a side panel holds search (name, op, line, ``#id``), the path
  from an input to an output, and the size report.
* The Python side is linear in the circuit (no recursion on its depth); the page lays out
  only the open groups, so a 10⁵-node circuit opens in about a second.

    >>> import circuitgrad as cg
    >>> page = to_html(cg.parse("z = w*x + b\\nJ = sin(z)"))
    >>> page.startswith("<!DOCTYPE html>") and "svgPanZoom" in page
    True
"""

from __future__ import annotations

import json
import os
from importlib import resources
from typing import Any, Mapping

from ..circuit import Circuit, as_circuit, register_display
from ..errors import CircuitError
from .dot import _PARTS, MAX_NODES, _array, _Drawing, palette
from .groups import groups

_KIND_NAMES = ("input", "tangent_input", "const", "forward", "adjoint", "tangent", "output")


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def _text(value: Any) -> str:
    return " ".join(_array(value))


def viewer_data(c: Circuit, at: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON the page reads: columns of node records, the group tree, values and δ's.

    >>> import circuitgrad as cg
    >>> d = viewer_data(cg.parse("J = x*y"), at={"x": 2.0, "y": 3.0})
    >>> d["nodes"]["sym"], d["nodes"]["value"], d["nodes"]["delta"]
    (['x', 'y', '×'], ['2', '3', '6'], ['3', '2', '1'])
    """
    c = as_circuit(c, "to_html")
    n = len(c)
    drawing = _Drawing(c, at)
    t = groups(c)
    ops = sorted({c.op(i) for i in range(n)})
    op_index = {op: k for k, op in enumerate(ops)}
    kind_index = {k: j for j, k in enumerate(_KIND_NAMES)}
    sym, title, kind, op, shape, part = [], [], [], [], [], []
    args, starts = [], [0]
    for i in range(n):
        s, tt = drawing.caption(i)
        sym.append(s)
        title.append(tt or "")
        kind.append(kind_index[drawing.kind(i)])
        op.append(op_index[c.op(i)])
        shp = c.shape(i)
        shape.append(str(tuple(shp)) if shp else "")
        part.append(drawing.part(i))
        args.extend(c.args(i))
        starts.append(len(args))
    adjoint_of = c.meta.get("adjoint_of") or {}
    # The δ of a node: its adjoint node's value (a gradient circuit), or the node adjoints
    # at the point (a forward circuit with one scalar output, as the diagrams show).
    value = delta = None
    if drawing.values is not None:
        value = [_text(v) for v in drawing.values]
        delta = [""] * n
        if drawing.deltas is not None:
            delta = ["" if d is None else _text(d) for d in drawing.deltas]
        for a, f in adjoint_of.items():
            delta[f] = value[a]
    outputs = [[drawing.output_title(name)[0], i] for name, i in zip(c.outputs, c.output_ids)]
    # The largest statements (the groups with a key, below the parts).
    largest = sorted((g for g in range(1, len(t)) if t.key[g] is not None and t.parent[g]),
                     key=lambda g: (-t.count[g], g))[:10]
    return {
        "palette": palette(),
        "kinds": list(_KIND_NAMES),
        "parts": list(_PARTS),
        "ops": ops,
        "nodes": {"sym": sym, "title": title, "kind": kind, "op": op, "shape": shape,
                  "part": part, "args": args, "starts": starts, "group": t.group_of,
                  "value": value, "delta": delta},
        "groups": {"parent": t.parent, "label": t.label, "part": t.part,
                   "children": t.children, "members": t.members, "count": t.count,
                   "operations": t.operations},
        "adjoint_of": [[a, f] for a, f in sorted(adjoint_of.items())],
        "inputs": [[name, i] for name, i in zip(c.inputs, c.input_ids)],
        "outputs": outputs,
        "size": {"nodes": n, "operations": c.operations, "size": c.size,
                 "inputs": len(c.inputs), "outputs": len(c.outputs), "groups": len(t),
                 "largest": [[t.label[g], t.count[g], t.operations[g], g] for g in largest]},
    }


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
{css}
</style>
</head>
<body>
<div id="cg-app"></div>
<script type="application/json" id="cg-data">{data}</script>
<script>
{panzoom}
</script>
<script>
{viewer}
</script>
</body>
</html>
"""


def to_html(c: Circuit, at: Mapping[str, Any] | None = None,
            path: str | os.PathLike | None = None, title: str = "circuit") -> str:
    """The circuit in the browser viewer, as one self-contained HTML page.

    Args:
        c: the circuit (or program text); a gradient circuit shows its forward and adjoint
            parts, each node's adjoint linked to it.
        at: a point (input name → number or array): every node's value and δ on hover.
        path: where to write the page too (``.html``); None: only return it.
        title: the page's title.

    Returns:
        The page's HTML text.

    Raises:
        CircuitError: a bad point, or a file that cannot be written.

    >>> import circuitgrad as cg, os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "c.html")
    >>> "∂J/∂w" in to_html(cg.grad(cg.parse("J = w*x")), at={"w": 1, "x": 2}, path=p)
    True
    >>> os.path.exists(p)
    True
    """
    data = json.dumps(viewer_data(c, at), ensure_ascii=False, separators=(",", ":"))
    page = _PAGE.format(title=_escape(title), css=_asset("viewer.css"),
                        data=data.replace("</", "<\\/"),
                        panzoom=_asset("svg-pan-zoom.min.js"), viewer=_asset("viewer.js"))
    if path is not None:
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(page)
        except OSError as e:
            raise CircuitError(f"cannot write {os.fspath(path)}: {e.strerror or e}") from None
    return page


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def _notebook_html(c: Circuit) -> str:
    """A notebook's view of a circuit too big for a diagram: the viewer, in an iframe (its
    own page, so its script and styles stay apart from the notebook's)."""
    if len(c) <= MAX_NODES:
        raise CircuitError("small circuits show their diagram")
    import html

    page = to_html(c)
    return (f'<iframe srcdoc="{html.escape(page, quote=True)}" style="width:100%;height:640px;'
            'border:1px solid #cbd5e1" sandbox="allow-scripts"></iframe>')


register_display("html", _notebook_html)
