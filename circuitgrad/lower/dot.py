"""Graphviz diagrams of circuits and of their adjoints.

Contract of the DOT text (golden tests hold it byte for byte):

* One DOT node per circuit node, named ``n<id>``; a scalar constant is drawn once per use,
  next to its user, as ``n<id>_<user>``; outputs that need their own box are ``out<k>``.
* Nodes, then edges, in ascending id; attributes in a fixed order. No value depends on
  dictionary order, memory addresses or the Graphviz version.
* Look: inputs are blue boxes, constants small grey boxes, operations show their symbol from
  the primitive table (``PRIMITIVES[op].label``), outputs are green and double-bordered.
  The arguments of a non-commutative operation enter numbered ports (1 = first argument).
  Named intermediates (``z`` in ``z = w*x + b``) show their name, tensors their shape.
* A derivative circuit is drawn in one cluster per pass, the notes' three parts: the forward
  (primal) pass left to right; below it the adjoint pass (δ, from :func:`~circuitgrad.grad`)
  in orange, flowing back right to left (its edges are laid out reversed); below that the
  tangent pass (dot, from :func:`~circuitgrad.jvp`, :func:`~circuitgrad.hvp`,
  :func:`~circuitgrad.hessian`) in violet, flowing forward. The parts are the node ranges
  that ``meta["forward_count"]`` and ``meta["tangent_count"]`` mark; a later pass reads an
  earlier pass's value through a dashed reference next to its user, and every output box
  sits in its own part's cluster.
* One naming scheme: a primal value is titled by its name ``z``; its adjoint ``z_bar`` is
  ``∂J/∂z`` (gradient outputs ``∂J/∂w``); a tangent ``z_dot`` is ``ż`` and the tangent of an
  adjoint ``(∂J/∂z)˙`` (so ``H·v`` for ``x`` is ``(∂J/∂x)˙``); a Hessian entry ``∂²J/∂x∂y``;
  a direction input shows the tangent it is (``ẋ``) beside its input name (``v_x``).
* ``at=point`` evaluates every node there and shows its value; on a forward circuit with one
  scalar output it also shows each node's adjoint δ = ∂J/∂node, the values of the circuit
  :func:`~circuitgrad.transforms.adjoints.node_adjoints` builds (see :func:`node_adjoints`),
  like the value/grad boxes of small autograd demos.

    >>> import circuitgrad as cg
    >>> d = to_dot(cg.parse("J = w*x + b"))
    >>> print(d.source.splitlines()[0])
    digraph circuit {
"""

from __future__ import annotations

import html
import math
import os
from typing import Any, Mapping

import numpy as np

from ..circuit import LEAVES, Circuit, as_circuit, register_display
from ..errors import CircuitError, ShapeError
from ..primitives import PRIMITIVES, compiled

MAX_NODES = 500
FORMATS = ("svg", "png", "pdf", "dot")
FONT = "DejaVu Sans"

# Colours (fill, line): forward in blue/slate, adjoint in orange, outputs in green. One source
# for the static diagrams and the browser viewer (lower/html.py reads :func:`palette`).
_INPUT = ("#dbeafe", "#2563eb")
_CONST = ("#f3f4f6", "#9ca3af")
_FORWARD = ("#ffffff", "#475569")
_ADJOINT = ("#ffedd5", "#ea580c")
_TANGENT = ("#ede9fe", "#7c3aed")
_TANGENT_INPUT = ("#ede9fe", "#7c3aed")
_OUTPUT = ("#dcfce7", "#16a34a")
_DELTA_COLOUR = "#c2410c"
_MUTED = "#6b7280"
_REFERENCE = "#94a3b8"
_PART_FILL = ("#f8fafc", "#fffaf5", "#faf8ff")  # the forward, adjoint, tangent clusters
_REACH = 3  # a use this many levels deeper than the first is drawn as a reference


def _number(value: float) -> str:
    """A scalar for a diagram: 4 significant digits and a real minus sign."""
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    text = f"{v:.4g}"
    if text == "-0":
        text = "0"
    return text.replace("-", "−")


def _array(value: Any) -> list[str]:
    """A value as one or more short lines (a matrix is a line per row, abbreviated)."""
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        return [_number(a)]

    def row(v: np.ndarray) -> str:
        items = [_number(x) for x in v[:3]]
        if v.size > 4:
            items = [_number(x) for x in v[:2]] + ["…", _number(v[-1])]
        elif v.size == 4:
            items = [_number(x) for x in v]
        return "[" + " ".join(items) + "]"

    if a.ndim == 1:
        return [row(a)]
    flat = a.reshape(a.shape[0], -1)
    rows = [row(r) for r in flat[:3]]
    if a.shape[0] > 3:
        rows[2:] = ["⋮", row(flat[-1])]
    return rows


def _shape_text(shape: tuple[int, ...]) -> str:
    return str(tuple(shape))


def _h(text: str) -> str:
    return html.escape(text, quote=True)


PRIMAL, ADJOINT, TANGENT = 0, 1, 2
_PARTS = ("forward", "adjoint", "tangent")
_KINDS = {"input": _INPUT, "tangent_input": _TANGENT_INPUT, "const": _CONST,
          "forward": _FORWARD, "adjoint": _ADJOINT, "tangent": _TANGENT, "output": _OUTPUT}


def palette() -> dict[str, Any]:
    """The diagrams' colours, one source for :func:`to_dot` and the browser viewer: each node
    kind's (fill, line), the δ colour, muted text, references and the parts' background.

    >>> palette()["adjoint"]
    ('#ffedd5', '#ea580c')
    """
    return {**_KINDS, "delta": _DELTA_COLOUR, "muted": _MUTED, "reference": _REFERENCE,
            "parts": _PART_FILL}


def dotted(title: str) -> str:
    """The tangent of the value titled ``title``: ``x`` → ``ẋ``, ``∂J/∂x`` → ``(∂J/∂x)˙``.

    >>> dotted("z") == "z" + chr(0x307), dotted("w1"), dotted("∂J/∂x")
    (True, '(w1)˙', '(∂J/∂x)˙')
    """
    return title + "\u0307" if len(title) == 1 else f"({title})˙"


def _output_titles(c: Circuit) -> dict[str, tuple[str, int]]:
    """The display name and part of each derivative output, in the one scheme of the
    diagrams: gradients ``∂J/∂w`` (adjoint), tangents ``J̇`` and ``(∂J/∂x)˙`` (tangent),
    second derivatives ``∂²J/∂x∂y`` (tangent). Outputs not listed are primal values."""
    meta, outs = c.meta, c.outputs
    wrt = meta.get("wrt")
    of = meta.get("gradient_of") or meta.get("hvp_of") or meta.get("hessian_of")
    titles: dict[str, tuple[str, int]] = {}
    if wrt is None:
        return titles
    if of is not None and len(outs) >= len(wrt) + 1:
        for out, w in zip(outs[1:], wrt):
            titles[out] = (f"∂{of}/∂{w}", ADJOINT)
        rest = outs[len(wrt) + 1:]
        if "hvp_of" in meta:
            for out, w in zip(rest, wrt):
                titles[out] = (dotted(f"∂{of}/∂{w}"), TANGENT)
        elif "hessian_of" in meta:
            pairs = [(x, y) for x in wrt for y in wrt]
            for out, (x, y) in zip(rest, pairs):
                titles[out] = (f"∂²{of}/∂{x}∂{y}" if x != y else f"∂²{of}/∂{x}²", TANGENT)
    elif "tangent_inputs" in meta and len(outs) % 2 == 0:
        half = len(outs) // 2
        for primal, out in zip(outs[:half], outs[half:]):
            titles[out] = (dotted(primal), TANGENT)
    return titles


def _check_point(c: Circuit, at: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(at, Mapping):
        raise CircuitError(f"at must map input names to values, got {type(at).__name__}",
                           argument="at")
    unknown = [k for k in at if k not in c.inputs]
    if unknown:
        raise CircuitError(f"at names {unknown}, which are not inputs; inputs are "
                           f"{list(c.inputs)}", argument="at")
    missing = [k for k in c.inputs if k not in at]
    if missing:
        raise CircuitError(f"at is missing inputs {missing}", argument="at")
    point = {}
    shapes = c.input_shapes
    for name in c.inputs:
        try:
            v = np.asarray(at[name], dtype=np.float64)
        except (TypeError, ValueError):
            raise CircuitError(f"at: the value of {name!r} is not a number or an array of "
                               f"numbers: {at[name]!r}", argument="at") from None
        if v.shape != shapes[name]:
            raise ShapeError(f"at: input {name!r} has shape {shapes[name]}, got a value of "
                             f"shape {v.shape}", argument="at")
        point[name] = v if v.ndim else np.float64(v)
    return point


def node_values(c: Circuit, at: Mapping[str, Any]) -> list[Any]:
    """The value of every node of ``c`` at the point ``at`` (a dict input name → value).

    >>> import circuitgrad as cg
    >>> [float(v) for v in node_values(cg.parse("x*y + 1"), {"x": 2.0, "y": 3.0})]
    [2.0, 3.0, 6.0, 1.0, 7.0]
    """
    point = _check_point(c, at)
    values: list[Any] = [None] * len(c)
    with np.errstate(all="ignore"):
        for i, op, args, params, _shape in c.records():
            if op == "input":
                values[i] = point[params]
            elif op == "const":
                values[i] = params if isinstance(params, np.ndarray) else np.float64(params)
            else:
                values[i] = compiled(op, params, [c.shape(a) for a in args],
                                     [False] * len(args))(*(values[a] for a in args))
    return values


def node_adjoints(c: Circuit, at: Mapping[str, Any],
                  adjoints: Circuit | None = None) -> list[Any]:
    """The adjoint δ = ∂J/∂v of every node ``v`` of a circuit with one scalar output J, at
    the point ``at``: the values of the circuit ``adjoints``
    (:func:`~circuitgrad.transforms.adjoints.node_adjoints` of ``c``, built when not given).
    Constants get ``None``.

    >>> import circuitgrad as cg
    >>> c = cg.parse("z = w*x\\nJ = z*z")
    >>> [float(d) for d in node_adjoints(c, {"w": 1.0, "x": 3.0})]
    [18.0, 6.0, 6.0, 1.0]
    """
    if adjoints is None:
        from ..transforms.adjoints import node_adjoints as adjoint_circuit

        adjoints = adjoint_circuit(c)
    values = node_values(adjoints, at)
    deltas: list[Any] = [None] * len(c)
    for i, j in zip(adjoints.meta["delta_of"], adjoints.output_ids[1:]):
        deltas[i] = values[j]
    return deltas


class _Drawing:
    """The state of one drawing: the circuit, its parts, values, and the DOT statements."""

    def __init__(self, c: Circuit, at: Mapping[str, Any] | None,
                 adjoints: Circuit | None = None):
        self.c = c
        n = len(c)
        fc = c.meta.get("forward_count") if "adjoint_of" in c.meta else None
        tc = c.meta.get("tangent_count")
        # Nodes [0, bounds[0]) are the primal (forward) pass, then the adjoint pass, then
        # the tangent pass; a node shared by two passes belongs to the first that built it.
        self.bounds = (fc if fc is not None else tc if tc is not None else n,
                       tc if tc is not None else n)
        self.adjoint = fc is not None or tc is not None  # drawn in clusters
        self.tangent_names = dict(zip(c.meta.get("tangent_inputs", ()),
                                      c.meta.get("wrt", ())))
        self.values = node_values(c, at) if at is not None else None
        self.deltas = None
        if at is not None and not self.adjoint and len(c.outputs) == 1 \
                and c.shape(c.output_ids[0]) == ():
            self.deltas = node_adjoints(c, at, adjoints)
        self.output_titles = _output_titles(c) if self.adjoint else {}
        self.out_names: dict[int, list[str]] = {}
        for name, i in zip(c.outputs, c.output_ids):
            self.out_names.setdefault(i, []).append(self.output_title(name)[0])
        # The depth of each node (longest path from a leaf) and the least depth of its users:
        # an edge from a value to a much deeper user would cross the page (and cost Graphviz
        # time quadratic in the circuit's length), so such a use is drawn as a reference.
        self.depth = [0] * len(c)
        self.first_use = [len(c)] * len(c)
        for i in range(len(c)):
            args = c.args(i)
            if args:
                self.depth[i] = 1 + max(self.depth[a] for a in args)
                for a in args:
                    self.first_use[a] = min(self.first_use[a], self.depth[i])
        self.referenced = {a for i in range(len(c)) for a in c.args(i)
                           if self.copied(a, i) and not self.shared_const(a)}
        self.referenced |= {i for name, i in zip(c.outputs, c.output_ids)
                            if self.output_title(name)[1] > self.part(i)}

    def part(self, i: int) -> int:
        """PRIMAL, ADJOINT or TANGENT: the pass that built node ``i``."""
        return PRIMAL if i < self.bounds[0] else ADJOINT if i < self.bounds[1] else TANGENT

    def in_adjoint(self, i: int) -> bool:
        return self.part(i) == ADJOINT

    def output_title(self, name: str) -> tuple[str, int]:
        """An output's display name and the part its box belongs to."""
        return self.output_titles.get(name, (name, PRIMAL))

    def named(self, name: str, part: int) -> str:
        """A program or pass name in the diagrams' scheme: ``z_bar`` → ``∂J/∂z`` (adjoint),
        ``z_dot`` → ``ż`` and ``z_bar_dot`` → ``(∂J/∂z)˙`` (tangent)."""
        if part == TANGENT and name.endswith("_dot"):
            return dotted(self.named(name[:-4], ADJOINT))
        if part >= ADJOINT and name.endswith("_bar"):
            return f"∂{self.of}/∂{name[:-4]}"
        return name

    @property
    def of(self) -> str:
        meta = self.c.meta
        return meta.get("gradient_of") or meta.get("hvp_of") or meta.get("hessian_of") or "J"

    def title(self, i: int) -> str | None:
        """The name shown on node ``i``: a program name, ``∂J/∂z`` for ``z_bar``."""
        name = self.c.name(i)
        if name is None:
            # A value referenced elsewhere needs a name: the generated code's (to_numpy).
            return f"v{i}" if i in self.referenced and self.c.op(i) != "input" else None
        return self.named(name, self.part(i))

    def boxed_output(self, i: int) -> bool:
        """Whether node ``i`` itself is drawn as its output (no separate output box)."""
        names = self.out_names.get(i)
        if not names or len(names) != 1 or self.c.op(i) in LEAVES:
            return False
        (name,) = [o for o, j in zip(self.c.outputs, self.c.output_ids) if j == i]
        if self.output_title(name)[1] != self.part(i):  # e.g. ∂J/∂y = x², a primal node
            return False
        return self.title(i) in (None, names[0])

    def shared_const(self, i: int) -> bool:
        """Scalar constants are drawn once per use, except when they are outputs."""
        return self.c.op(i) == "const" and not self.c.shape(i) and i not in self.out_names

    # -- labels --------------------------------------------------------------------------
    def rows(self, i: int) -> list[str]:
        """The value and δ rows of node ``i`` (HTML table rows)."""
        rows = []
        if self.values is not None:
            for line in _array(self.values[i]):
                rows.append(f'<TR><TD COLSPAN="2">{_h(line)}</TD></TR>')
        if self.deltas is not None and self.deltas[i] is not None:
            lines = _array(self.deltas[i])
            for k, line in enumerate(lines):
                text = ("δ " if k == 0 else "") + line
                rows.append(f'<TR><TD COLSPAN="2"><FONT COLOR="{_DELTA_COLOUR}">'
                            f'{_h(text)}</FONT></TD></TR>')
        return rows

    def kind(self, i: int) -> str:
        """Node ``i``'s key in :func:`palette`: input, tangent_input, const, forward,
        adjoint, tangent or output (an output drawn on its own node)."""
        op = self.c.op(i)
        if op == "input":
            return "tangent_input" if self.c.params(i) in self.tangent_names else "input"
        if op == "const":
            return "const"
        if self.boxed_output(i):
            return "output"
        return _PARTS[self.part(i)]

    def caption(self, i: int) -> tuple[str, str | None]:
        """The symbol (the table's label, an input's name, a constant's number) and the
        title (``z``, ``∂J/∂z``) shown on node ``i``, as plain text."""
        c, op = self.c, self.c.op(i)
        if op == "input":
            name = c.params(i)
            if name in self.tangent_names:
                return dotted(self.tangent_names[name]), name
            return name, None
        if op == "const":
            return ("const" if c.shape(i) else _number(c.params(i))), None
        symbol = PRIMITIVES[op].display(c.params(i), [c.shape(a) for a in c.args(i)])
        title = self.title(i)
        if title is None and self.boxed_output(i):
            title = self.out_names[i][0]
        return symbol, title

    def node(self, i: int) -> tuple[str, list[tuple[str, str]]]:
        """The label and attributes of node ``i``."""
        c, op = self.c, self.c.op(i)
        shape = c.shape(i)
        output = self.boxed_output(i)
        fill, line = _KINDS[self.kind(i)]
        symbol, title = self.caption(i)
        if op == "input":
            head = f"<B>{_h(symbol)}</B>"
            if title is not None:  # the direction: the inputs' tangents
                head = (f"<B>{_h(symbol)}</B>  <FONT COLOR=\"{_MUTED}\" POINT-SIZE=\"10\">"
                        f"{_h(title)}</FONT>")
        elif op == "const":
            head = f'<FONT COLOR="{_MUTED}">const</FONT>' if shape else _h(symbol)
        else:
            head = _h(symbol) if title is None else f"{_h(symbol)}  <B>{_h(title)}</B>"
        rows = []
        if shape:
            rows.append(f'<TR><TD COLSPAN="2"><FONT COLOR="{_MUTED}" POINT-SIZE="10">'
                        f'{_shape_text(shape)}</FONT></TD></TR>')
        if op != "const" or shape:
            rows += self.rows(i)
        ports = self.ports(i)
        simple = not rows and not ports
        attrs: list[tuple[str, str]] = []
        if simple and op not in LEAVES:
            label = f"<{head}>"
            plain_symbol = self.title(i) is None and not output
            circle = plain_symbol and len(PRIMITIVES[op].label) <= 2
            attrs.append(("shape", "circle" if circle else "box"))
            attrs.append(("style", "filled" if circle else "rounded,filled"))
        elif simple:
            label = f"<{head}>"
            attrs.append(("shape", "box"))
            attrs.append(("style", "rounded,filled"))
        else:
            label = self.table(head, rows, ports, "e" if self.in_adjoint(i) else "w")
            attrs.append(("shape", "box"))
            attrs.append(("style", "rounded,filled"))
            attrs.append(("margin", "0.04"))
        attrs.append(("fillcolor", fill))
        attrs.append(("color", line))
        if output:
            attrs.append(("peripheries", "2"))
        if op == "const":
            attrs.append(("fontsize", "10"))
            attrs.append(("fontcolor", "#374151"))
            if not (rows or ports):
                attrs.append(("height", "0.25"))
                attrs.append(("width", "0.3"))
        return label, attrs

    def ports(self, i: int) -> int:
        """Number of numbered argument ports of node ``i`` (0: edges enter the node)."""
        prim = PRIMITIVES[self.c.op(i)]
        if prim.variadic:  # concatenate, stack: the arguments in their order
            return len(self.c.args(i)) if len(self.c.args(i)) > 1 else 0
        return prim.arity if prim.arity > 1 and not prim.commutative else 0

    @staticmethod
    def table(head: str, rows: list[str], ports: int, side: str) -> str:
        body = f'<TR><TD COLSPAN="2">{head}</TD></TR>' + "".join(rows)
        inner = f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0">{body}</TABLE>'
        if not ports:
            return f"<{inner}>"
        cells = "".join(f'<TR><TD PORT="a{k}"><FONT COLOR="{_MUTED}" POINT-SIZE="9">{k + 1}'
                        f"</FONT></TD></TR>" for k in range(ports))
        left = f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0">{cells}</TABLE>'
        # Arguments enter from the side they come from: the left in the forward pass, the
        # right in the adjoint pass (drawn flowing back).
        cells = [f"<TD>{left}</TD>", f"<TD>{inner}</TD>"]
        if side == "e":
            cells.reverse()
        return (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">'
                f"<TR>{''.join(cells)}</TR></TABLE>>")

    # -- the graph -----------------------------------------------------------------------
    def copied(self, a: int, user: int) -> bool:
        """Whether argument ``a`` of ``user`` is drawn as a copy next to it: a scalar
        constant, or a reference (dashed, named) to a forward value that the adjoint pass
        reads (so that it reads like the notes' δ · x) or that a much deeper node uses. Edges
        across the page would be unreadable, and cost Graphviz time quadratic in the length
        of the circuit."""
        if self.shared_const(a):
            return True
        if not self.reference(a):
            return False
        if self.adjoint and self.part(user) > self.part(a):  # a later pass reads the value
            return True
        return self.depth[user] > self.first_use[a] + _REACH

    def reference(self, a: int) -> bool:
        """Whether forward node ``a`` can be drawn as a reference (every value but an array
        constant, which has no name to show)."""
        return self.c.op(a) != "const"

    def dot_name(self, i: int, user: int | str | None = None) -> str:
        if user is not None and (isinstance(user, str) or self.copied(i, user)):
            return f"n{i}_{user}"
        return f"n{i}"

    def reference_node(self, a: int) -> tuple[str, list[tuple[str, str]]]:
        """A forward value as the adjoint pass reads it: its name (and value), dashed."""
        name = self.c.params(a) if self.c.op(a) == "input" else self.title(a)
        text = f"<B>{_h(name)}</B>"
        if self.values is not None and not self.c.shape(a):
            text += f" = {_h(_number(self.values[a]))}"
        fill, line = (("#eff6ff", _INPUT[1]), ("#fff7ed", _ADJOINT[1]),
                      ("#f5f3ff", _TANGENT[1]))[self.part(a)]
        return f"<{text}>", [("shape", "box"), ("style", "rounded,dashed,filled"),
                             ("fillcolor", fill), ("color", line), ("fontsize", "10"),
                             ("height", "0.25")]

    def statements(self, part: range) -> list[tuple[str, str, list[tuple[str, str]]]]:
        """(DOT name, label, attributes) of the nodes with ids in ``part``, then the copies
        of constants and references drawn next to their users."""
        out = []
        for i in part:
            if self.shared_const(i):
                continue
            label, attrs = self.node(i)
            out.append((self.dot_name(i), label, attrs))
        for i in part:
            if self.c.op(i) in LEAVES:
                continue
            seen = set()
            for a in self.c.args(i):
                if self.copied(a, i) and a not in seen:
                    seen.add(a)
                    label, attrs = (self.node(a) if self.shared_const(a)
                                    else self.reference_node(a))
                    out.append((self.dot_name(a, i), label, attrs))
        return out

    def edges(self) -> list[tuple[str, str, list[tuple[str, str]]]]:
        """(tail, head, attributes) of every argument edge, in ascending order of the user."""
        out = []
        for i in range(len(self.c)):
            ports = self.ports(i)
            for k, a in enumerate(self.c.args(i)):
                tail = self.dot_name(a, i)
                side = "e" if self.in_adjoint(i) else "w"
                head = f"n{i}" + (f":a{k}:{side}" if ports else "")
                attrs: list[tuple[str, str]] = []
                if self.adjoint and self.part(i) == TANGENT:
                    # The tangent pass flows forward, like the primal pass it follows.
                    copied = self.copied(a, i) or self.part(a) < TANGENT
                    attrs.append(("color", _REFERENCE if copied else _TANGENT[1]))
                elif not self.adjoint or not self.in_adjoint(i):
                    attrs.append(("color", _FORWARD[1]))
                elif self.in_adjoint(a) or self.copied(a, i):
                    # The adjoint pass flows back: lay the edge out reversed (right to left).
                    tail, head = head, tail
                    colour = _ADJOINT[1] if self.in_adjoint(a) else _REFERENCE
                    attrs += [("dir", "back"), ("color", colour)]
                else:
                    attrs += [("color", _REFERENCE), ("style", "dashed"), ("weight", "0")]
                out.append((tail, head, attrs))
        return out


    def output_label(self, title: str, i: int) -> str:
        """An output box drawn apart from its node (∂J/∂b is the node ∂J/∂z): its name, and
        its value when there is one, so the box does not look empty."""
        lines = _array(self.values[i]) if self.values is not None else []
        return "<" + "<BR/>".join([f"<B>{_h(title)}</B>"] + [_h(x) for x in lines]) + ">"

    def outputs(self) -> tuple[list[tuple[str, str, list[tuple[str, str]], int]],
                               list[tuple[str, str, list[tuple[str, str]]]]]:
        """The output boxes (name, label, attributes, part) and their edges, for the outputs
        not drawn on their node itself. A box sits in its own part's cluster; a value built
        by an earlier pass (∂(w·x)/∂w = x, a primal node) is referenced there."""
        nodes, edges = [], []
        box = [("shape", "box"), ("style", "rounded,filled"), ("fillcolor", _OUTPUT[0]),
               ("color", _OUTPUT[1]), ("peripheries", "2")]
        for k, (name, i) in enumerate(zip(self.c.outputs, self.c.output_ids)):
            if self.boxed_output(i):
                continue
            title, part = self.output_title(name)
            source = f"n{i}"
            if part > self.part(i) and self.reference(i):
                source = self.dot_name(i, f"out{k}")
                nodes.append((source, *self.reference_node(i), part))
            nodes.append((f"out{k}", self.output_label(title, i), box, part))
            if part == ADJOINT:  # at the left end of the adjoint pass, which flows back
                edges.append((f"out{k}", source, [("dir", "back"), ("color", _OUTPUT[1])]))
            else:
                edges.append((source, f"out{k}", [("color", _OUTPUT[1])]))
        return nodes, edges


def _tangent_title(c: Circuit) -> str:
    """The tangent cluster's title: what the dot means in this circuit."""
    if "hessian_of" in c.meta:
        return "tangent pass: v̇ = ∂v/∂x, one sweep per input entry x (forward over the adjoint)"
    if "hvp_of" in c.meta:
        return "tangent pass: v̇ = ∂v along the direction v (forward over the adjoint)"
    return "tangent pass: v̇ = ∂v along the direction (the tangent inputs)"


def _check(c: Circuit, max_nodes: int | None) -> None:
    if max_nodes is not None and len(c) > max_nodes:
        raise CircuitError(
            f"the circuit has {len(c)} nodes (size {c.size}), more than max_nodes={max_nodes}: "
            "Graphviz would take long to lay it out and the diagram would be unreadable. Draw "
            f"it anyway with max_nodes=None (or max_nodes={len(c)}), draw its groups with "
            "collapse=True, or explore it node by node with cg.to_html")


def counts_text(nodes: int, operations: int) -> str:
    """A group's counts as the diagrams and the viewer show them.

    >>> counts_text(1, 0), counts_text(12, 7)
    ('1 node · 0 ops', '12 nodes · 7 ops')
    """
    return (f"{nodes} node{'' if nodes == 1 else 's'} · "
            f"{operations} op{'' if operations == 1 else 's'}")


COLLAPSED_BOXES = 100  # the most group boxes a collapsed diagram draws


def _collapsed(c: Circuit) -> "graphviz.Digraph":  # noqa: F821
    """The collapsed group view: the parts' groups, opened largest first while the diagram
    stays within :data:`COLLAPSED_BOXES` boxes; one edge per pair of boxes in a part (its
    count when more than one argument edge runs between them). The reads of a later pass
    from an earlier one are not drawn (the cluster's title says so): they join every group
    to every other and hide the flow."""
    import graphviz

    from .groups import groups

    t = groups(c)
    shown = list(t.children[0])
    while True:  # open the largest group whose children still fit
        room = COLLAPSED_BOXES - len(shown)
        best = max((g for g in shown if t.children[g] and len(t.children[g]) - 1 <= room),
                   key=lambda g: (t.count[g], -g), default=None)
        if best is None:
            break
        k = shown.index(best)
        shown[k:k + 1] = t.children[best]
    box = {}
    for k, g in enumerate(shown):  # each node's box: a work list down each shown group
        stack = [g]
        while stack:
            h = stack.pop()
            for i in t.members[h]:
                box[i] = k
            stack.extend(t.children[h])
    d = graphviz.Digraph("circuit")
    # Counts are xlabels (placed after the layout: a label is a node of its own to rank),
    # and one pass of crossing reduction: a second one costs seconds and changes little.
    d.attr("graph", rankdir="LR", fontname=FONT, nodesep="0.25", ranksep="0.45",
           bgcolor="white", pad="0.2", mclimit="0.1", nslimit="2", remincross="false")
    d.attr("node", fontname=FONT, fontsize="12", shape="box", style="rounded,filled",
           margin="0.1,0.05", penwidth="1.6")
    d.attr("edge", fontname=FONT, arrowsize="0.6", penwidth="1.1", fontsize="9",
           fontcolor=_MUTED)
    of = c.meta.get("gradient_of") or c.meta.get("hvp_of") or c.meta.get("hessian_of") or "J"
    titles = ("forward pass: values", f"adjoint pass: δ = ∂{of}/∂v, flowing back",
              _tangent_title(c))
    for p in t.children[0]:
        part = t.part[p]
        with d.subgraph(name=f"cluster_{_PARTS[part]}") as s:
            reads = "; its reads of the forward values not drawn" if part else ""
            s.attr(label=f"{titles[part]} ({t.count[p]} nodes, {t.operations[p]} operations"
                         f" in collapsed groups{reads})", labeljust="l", style="rounded,filled",
                   color="#cbd5e1", fillcolor=_PART_FILL[part], fontcolor=_MUTED,
                   fontsize="11")
            for k, g in enumerate(shown):
                if t.part[g] != part:
                    continue
                fill, line = _INPUT if t.label[g] == "inputs" else _KINDS[_PARTS[part]]
                label = (f"<<B>{_h(t.label[g])}</B><BR/><FONT COLOR=\"{_MUTED}\" "
                         f"POINT-SIZE=\"10\">{counts_text(t.count[g], t.operations[g])}"
                         "</FONT>>")
                s.node(f"g{k}", label, _attributes=[("fillcolor", fill), ("color", line)])
    counts: dict[tuple[int, int], int] = {}
    for i in range(len(c)):
        for a in c.args(i):
            pair = (box[a], box[i])
            if pair[0] != pair[1]:
                counts[pair] = counts.get(pair, 0) + 1
    for (a, b), count in sorted(counts.items()):
        if t.part[shown[a]] != t.part[shown[b]]:  # a later pass reads an earlier one's value
            continue
        tail, head = f"g{a}", f"g{b}"
        attrs = [("color", _KINDS[_PARTS[t.part[shown[b]]]][1])]
        if t.part[shown[b]] == ADJOINT:  # flowing back, laid out right to left
            tail, head = head, tail
            attrs.append(("dir", "back"))
        if count > 1:
            attrs += [("xlabel", str(count)), ("penwidth", f"{min(4.0, 1 + math.log2(count)):.1f}")]
        d.edge(tail, head, _attributes=attrs)
    # The adjoint part under the forward part: its last group (the inputs' gradients) one
    # step right of the first forward group, as the full diagram anchors it.
    last = [k for k, g in enumerate(shown) if t.part[g] == ADJOINT]
    if last and t.part[shown[0]] == PRIMAL:
        d.edge("g0", f"g{last[-1]}", _attributes=[("style", "invis")])
    return d


def to_dot(c: Circuit, at: Mapping[str, Any] | None = None,
           max_nodes: int | None = MAX_NODES,
           adjoints: Circuit | None = None,
           collapse: bool | None = None) -> "graphviz.Digraph":  # noqa: F821
    """The diagram of a circuit (or of an adjoint circuit) as a ``graphviz.Digraph``.

    Args:
        c: the circuit; an adjoint circuit from :func:`~circuitgrad.grad` is drawn as the
            forward pass and, below it, the adjoint pass flowing back.
        at: a point (input name → number or array): every node shows its value there, and on
            a forward circuit with one scalar output also its adjoint δ = ∂J/∂node.
        max_nodes: the most nodes drawn one by one (``None``: no limit); a bigger circuit
            is drawn as its groups (``collapse``).
        adjoints: with ``at`` on a forward circuit, the circuit of its node adjoints
            (:func:`~circuitgrad.transforms.adjoints.node_adjoints`); built when not given.
        collapse: ``True`` draws the collapsed group view: one box per group of
            :func:`~circuitgrad.lower.groups.groups` (the program's lines, in the forward,
            adjoint and tangent parts) with its node and operation counts, and one edge per
            pair of groups; Graphviz lays it out in well under a second at any size (``at``
            is not shown). ``False`` draws every node (more than ``max_nodes`` raises).
            ``None`` (default): collapsed above ``max_nodes`` nodes. :func:`to_html` shows
            any circuit node by node.

    Returns:
        A ``graphviz.Digraph``; ``.source`` is the DOT text, ``.pipe(format="svg")`` renders
        it (that needs the Graphviz ``dot`` program; the DOT text does not).

    Raises:
        CircuitError: more than ``max_nodes`` nodes with ``collapse=False``, or a bad point.

    >>> import circuitgrad as cg
    >>> d = to_dot(cg.parse("J = sin(x)"), at={"x": 0.0})
    >>> 'n1' in d.source and "δ 1" in d.source
    True
    >>> "1 node · 1 op" in to_dot(cg.parse("J = sin(x)"), collapse=True).source
    True
    """
    import graphviz

    c = as_circuit(c, "to_dot")
    if collapse is None:
        collapse = max_nodes is not None and len(c) > max_nodes
    if collapse:
        if at is not None:
            _check_point(c, at)
        return _collapsed(c)
    _check(c, max_nodes)
    drawing = _Drawing(c, at, adjoints)
    d = graphviz.Digraph("circuit")
    d.attr("graph", rankdir="LR", fontname=FONT, nodesep="0.25", ranksep="0.35",
           bgcolor="white", pad="0.2", ordering="in")
    d.attr("node", fontname=FONT, fontsize="12", height="0.4", width="0.4", margin="0.06,0.03",
           penwidth="1.2")
    d.attr("edge", fontname=FONT, arrowsize="0.6", penwidth="1.1")
    n = len(c)
    out_nodes, out_edges = drawing.outputs()
    if drawing.adjoint:
        first, second = drawing.bounds
        for part, key, title, ids, colour in (
                (PRIMAL, "forward", "forward pass: values", range(first), _PART_FILL[0]),
                (ADJOINT, "adjoint", f"adjoint pass: δ = ∂{drawing.of}/∂v, flowing back",
                 range(first, second), _PART_FILL[1]),
                (TANGENT, "tangent", _tangent_title(c), range(second, n), _PART_FILL[2])):
            boxes = [(m, label, a) for m, label, a, p in out_nodes if p == part]
            if not ids and not boxes:
                continue
            with d.subgraph(name=f"cluster_{key}") as s:
                s.attr(label=title, labeljust="l", style="rounded,filled", color="#cbd5e1",
                       fillcolor=colour, fontcolor=_MUTED, fontsize="11")
                for name, label, attrs in drawing.statements(ids) + boxes:
                    s.node(name, label, _attributes=attrs)
    else:
        for name, label, attrs in drawing.statements(range(n)):
            d.node(name, label, _attributes=attrs)
        for name, label, attrs, _ in out_nodes:
            d.node(name, label, _attributes=attrs)
    for tail, head, attrs in drawing.edges() + out_edges:
        d.edge(tail, head, _attributes=attrs)
    _draw_bodies(d, c)
    guards = c.meta.get("guards")
    if guards is not None:  # the branch this circuit is: its guards, checked first
        text = "\\l".join(["guards, checked first (the circuit holds where all do):"] + [
            guards.describe(k).replace("\\", "\\\\").replace('"', '\\"')
            for k in range(len(guards.kinds))]) + "\\l"
        d.node("guards", text, _attributes=[("shape", "note"), ("fontsize", "10"),
                                            ("style", "filled"), ("fillcolor", "#fef3c7")])
    if drawing.adjoint and len(c.outputs) > 1 and c.inputs:
        # Anchor the adjoint pass under the forward pass: its first gradient one step right
        # of the first input (the two parts share no edge: the adjoint reads references).
        k, i = 1, c.output_ids[1]
        first = f"n{i}" if drawing.boxed_output(i) else f"out{k}"
        d.edge(f"n{c.input_ids[0]}", first, _attributes=[("style", "invis")])
        tangents = [k for k, name in enumerate(c.outputs)
                    if drawing.output_title(name)[1] == TANGENT]
        if tangents and k not in tangents:
            # ... and the tangent pass under the adjoint pass, the same way.
            k = tangents[0]
            i = c.output_ids[k]
            last = f"n{i}" if drawing.boxed_output(i) else f"out{k}"
            d.edge(first, last, _attributes=[("style", "invis")])
    return d


def _draw_bodies(d: Any, c: Circuit) -> None:
    """Each distinct loop body once, as a cluster beside the circuit: its nodes and edges,
    its carried edges (a new carry back to its input, dashed), titled with its trip counts;
    a dotted edge from every ``scan`` node to the body it runs. Bodies inside bodies too,
    found with an explicit stack (no recursion)."""
    from ..primitives.loops import Body

    def scans(circuit: Circuit) -> list[tuple[int, Any]]:
        return [(i, params) for i, op, _, params, _ in circuit.records() if op == "scan"]

    numbered: dict[Any, int] = {}
    steps: dict[int, list[str]] = {}
    pending = [("", i, params) for i, params in scans(c)]
    drawn: list[Body] = []
    while pending:
        owner, i, params = pending.pop(0)
        for key in ("body", "recompute"):
            body = params.get(key)
            if not isinstance(body, Body):
                continue
            if body not in numbered:
                numbered[body] = len(numbered)
                drawn.append(body)
                pending += [(f"b{numbered[body]}_", j, p) for j, p in scans(body.circuit)]
            k = numbered[body]
            how = f"{params['length']} steps" + (", reversed" if params.get("reverse") else "")
            if key == "recompute":
                how += ", recomputing"
            steps.setdefault(k, []).append(how)
            d.edge(f"{owner or 'n'}{i}", f"b{k}_{body.circuit.output_ids[0]}",
                   _attributes=[("style", "dotted"), ("color", _REFERENCE), ("arrowhead", "none"),
                                ("constraint", "false")])
    for body in drawn:
        k, bc = numbered[body], body.circuit
        with d.subgraph(name=f"cluster_body{k}") as s:
            counts = ", ".join(f"{n} {word}{'s' * (n != 1)}" for n, word in (
                (body.carries, "carry"), (body.xs, "sequence"), (body.closures, "closure")))
            counts = counts.replace("carrys", "carries")
            s.attr(label=f"loop body {k}: {'; '.join(sorted(set(steps[k])))} ({counts})",
                   labeljust="l", style="rounded,dashed", color="#94a3b8",
                   fontcolor=_MUTED, fontsize="11")
            for i, op, args, params, shape in bc.records():
                if op == "input":
                    label, (fill, line) = params, _INPUT
                elif op == "const":
                    label, (fill, line) = ("const" if shape else _number(params)), _CONST
                else:
                    label = PRIMITIVES[op].display(params, [bc.shape(a) for a in args])
                    fill, line = _FORWARD
                if shape:
                    label += f" {_shape_text(shape)}"
                s.node(f"b{k}_{i}", label, _attributes=[
                    ("shape", "box" if op in LEAVES else "ellipse"), ("style", "filled"),
                    ("fillcolor", fill), ("color", line)])
                for a in args:
                    s.edge(f"b{k}_{a}", f"b{k}_{i}")
            for j in range(body.carries):  # the new carry is the next step's carry input
                s.edge(f"b{k}_{bc.output_ids[j]}", f"b{k}_{bc.input_ids[j]}", _attributes=[
                    ("style", "dashed"), ("color", "#2563eb"), ("label", "carry"),
                    ("fontsize", "9"), ("constraint", "false")])


def render(c: Circuit, path: str | os.PathLike, at: Mapping[str, Any] | None = None,
           max_nodes: int | None = MAX_NODES, collapse: bool | None = None) -> str:
    """Draw a circuit to a file; the format comes from the suffix: svg, png, pdf or dot.

    Args:
        c: the circuit (see :func:`to_dot`).
        path: the file to write; ``.dot`` writes the DOT text and needs no Graphviz.
        at: a point whose values (and adjoints) to show, as in :func:`to_dot`.
        max_nodes: as in :func:`to_dot`.
        collapse: as in :func:`to_dot`: by default a circuit of more than ``max_nodes``
            nodes is drawn as its groups, so rendering finishes in seconds at any size.

    Returns:
        The path written.

    Raises:
        CircuitError: an unknown suffix, a circuit too big, a file that cannot be written,
            or (for svg, png, pdf) no Graphviz ``dot`` program installed.

    >>> import circuitgrad as cg, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "c.dot")
    >>> render(cg.parse("x*y"), path) == path
    True
    """
    import graphviz

    c = as_circuit(c, "render")
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    if fmt not in FORMATS:
        raise CircuitError(f"cannot tell the format of {path!r}: its suffix must be one of "
                           f"{', '.join('.' + f for f in FORMATS)}")
    d = to_dot(c, at=at, max_nodes=max_nodes, collapse=collapse)
    if fmt == "dot":
        data = d.source.encode("utf-8")
    else:
        try:
            data = d.pipe(format=fmt)
        except graphviz.ExecutableNotFound:
            raise CircuitError(
                f"rendering {fmt} needs the Graphviz 'dot' program, which is not installed: "
                "install Graphviz (Debian/Ubuntu: apt-get install graphviz, macOS: brew install "
                "graphviz), or write a .dot file") from None
        except graphviz.CalledProcessError as e:
            raise CircuitError(f"Graphviz failed to render {path!r}: {e}") from None
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise CircuitError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def _notebook_svg(c: Circuit) -> str:
    """A notebook's picture of ``c``: the diagram as SVG, up to :data:`MAX_NODES` nodes."""
    if len(c) > MAX_NODES:
        raise CircuitError(
            f"{len(c)} nodes, more than circuitgrad.lower.dot.MAX_NODES = {MAX_NODES}; draw it "
            "anyway with cg.render(c, 'circuit.svg', max_nodes=None), or in the notebook "
            "with cg.to_dot(c, max_nodes=None)")
    import graphviz

    try:
        return to_dot(c).pipe(format="svg").decode()
    except graphviz.ExecutableNotFound:
        raise CircuitError("the Graphviz 'dot' program is not installed (apt-get install "
                           "graphviz, brew install graphviz)") from None


register_display("svg", _notebook_svg)
