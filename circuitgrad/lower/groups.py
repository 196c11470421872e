"""The groups of a circuit's nodes, for drawings of any size (the viewer, collapsed diagrams).

Contract:

* A tree of groups over the nodes; group 0 is the root (the whole circuit). Its children are
  the parts that the passes built: forward (primal), adjoint, tangent (the node ranges that
  ``meta["forward_count"]`` and ``meta["tangent_count"]`` mark, as in :mod:`.dot`).
* In a part, the inputs form one group, and every other node belongs to a *statement*: the
  line that computes it. Where the front-end recorded lines (``meta["lines"]``: one
  ``"file:line in function"`` per node, or None) that is the node's line; else the node goes
  with the next named node (``z`` in ``z = w*x + b``: the nodes a parsed line builds come
  just before its named result). An adjoint node goes with the forward statement whose δ it
  computes (``meta["adjoint_of"]``), so the adjoint part mirrors the program's lines.
* No group has more than ``fan_out`` children: a part with more statements holds ranges of
  statements, a statement with more nodes holds ranges of nodes, level upon level.
* Built in linear time, with no recursion on the circuit's depth.

    >>> import circuitgrad as cg
    >>> t = groups(cg.grad(cg.parse("z = w*x + b\\nJ = sin(z)")))
    >>> [t.label[g] for g in t.children[0]]
    ['forward', 'adjoint']
    >>> [t.label[g] for g in t.children[t.children[0][0]]]
    ['inputs', 'z', 'J']
"""

from __future__ import annotations

from typing import Any

from ..circuit import LEAVES, Circuit

FAN_OUT = 48
PART_NAMES = ("forward", "adjoint", "tangent")


def part_bounds(c: Circuit) -> tuple[int, int]:
    """The first ids of the adjoint and tangent parts (``len(c)`` where a part is absent);
    a node shared by two passes belongs to the first that built it."""
    n = len(c)
    fc = c.meta.get("forward_count") if "adjoint_of" in c.meta else None
    tc = c.meta.get("tangent_count")
    return (fc if fc is not None else tc if tc is not None else n,
            tc if tc is not None else n)


class Groups:
    """The group tree: parallel lists indexed by group id (0 is the root).

    Attributes:
        parent: each group's parent (-1 for the root).
        label: its title (a part, ``inputs``, a statement, ``z1 … z48``, ``nodes 0–47``).
        part: 0, 1, 2 (forward, adjoint, tangent); -1 for the root.
        children: the child groups, in order.
        members: the nodes directly in the group (only a group without children has any).
        count: the nodes in the group, all levels down.
        operations: the operation nodes among them (inputs and constants not counted).
        group_of: each node's innermost group.
        key: the statement (or part) key of a statement group, else None; an adjoint
            statement's key is the forward statement's, so the two can be linked.
    """

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.label: list[str] = []
        self.part: list[int] = []
        self.children: list[list[int]] = []
        self.members: list[list[int]] = []
        self.count: list[int] = []
        self.operations: list[int] = []
        self.key: list[Any] = []
        self.group_of: list[int] = []

    def add(self, parent: int, label: str, part: int, key: Any = None) -> int:
        g = len(self.parent)
        self.parent.append(parent)
        self.label.append(label)
        self.part.append(part)
        self.children.append([])
        self.members.append([])
        self.count.append(0)
        self.operations.append(0)
        self.key.append(key)
        if parent >= 0:
            self.children[parent].append(g)
        return g

    def __len__(self) -> int:
        return len(self.parent)

    def ancestors(self, g: int) -> list[int]:
        """``g``'s ancestors, innermost first, ending at the root."""
        out = []
        while self.parent[g] >= 0:
            g = self.parent[g]
            out.append(g)
        return out


def _statements(c: Circuit, lo: int, hi: int, part: int, forward_key: list[Any],
                adjoint_of: dict[int, int], lines: Any) -> list[Any]:
    """The statement key of every node in ``range(lo, hi)`` (see the module docstring)."""
    names = c.names
    outs = {i: name for name, i in zip(c.outputs, c.output_ids)}
    keys: list[Any] = [None] * (hi - lo)
    pending: list[int] = []
    last: Any = None
    for i in range(lo, hi):
        op = c.op(i)
        if op == "input":
            keys[i - lo] = "inputs"
            continue
        if lines is not None and i < len(lines) and lines[i] is not None:
            keys[i - lo] = lines[i]
            continue
        pending.append(i)
        if i in adjoint_of and part > 0 and forward_key[adjoint_of[i]] not in (None, "inputs"):
            key: Any = forward_key[adjoint_of[i]]
        elif i in names:
            key = names[i]
        elif i in outs:
            key = outs[i]
        else:
            continue
        for p in pending:
            keys[p - lo] = key
        pending, last = [], key
    for p in pending:  # nodes after the last named one (constants, an unnamed output)
        keys[p - lo] = last if last is not None else "nodes"
    return keys


def _named(name: str, part: int, of: str) -> str:
    """A pass's name in the diagrams' scheme: ``x_bar`` → ``∂J/∂x``, ``x_dot`` → ``ẋ``."""
    if part == 2 and name.endswith("_dot"):
        inner = _named(name[:-4], 1, of)
        return inner + "\u0307" if len(inner) == 1 else f"({inner})˙"
    if part >= 1 and name.endswith("_bar"):
        return f"∂{of}/∂{name[:-4]}"
    return name


def _bucket(t: Groups, g: int, fan_out: int) -> None:
    """Give ``g`` at most ``fan_out`` children (or members), adding levels of ranges."""
    kids = t.children[g]
    span: dict[int, tuple[str, str]] = {}  # a range's first and last statement
    while len(kids) > fan_out:
        # Ranges of fan_out children while that leaves more than fan_out ranges, then an
        # even split into fan_out ranges.
        size = fan_out if len(kids) > fan_out * fan_out else -(-len(kids) // fan_out)
        new = []
        for k in range(0, len(kids), size):
            chunk = kids[k:k + size]
            ends = (span.get(chunk[0], (t.label[chunk[0]],))[0],
                    span.get(chunk[-1], (None, t.label[chunk[-1]]))[-1])
            label = f"{ends[0]} … {ends[1]}" if ends[0] != ends[1] else ends[0]
            b = len(t.parent)
            t.parent.append(g)
            t.label.append(label)
            t.part.append(t.part[g])
            t.children.append(chunk)
            t.members.append([])
            t.count.append(0)
            t.operations.append(0)
            t.key.append(None)
            for x in chunk:
                t.parent[x] = b
            span[b] = ends
            new.append(b)
        t.children[g] = kids = new
    nodes = t.members[g]
    if len(nodes) > fan_out:
        t.members[g] = []
        for k in range(0, len(nodes), fan_out):
            chunk = nodes[k:k + fan_out]
            t.members[t.add(g, f"nodes {chunk[0]}–{chunk[-1]}", t.part[g])] = chunk
        _bucket(t, g, fan_out)  # (once: g now has children and no members)


def groups(c: Circuit, fan_out: int = FAN_OUT) -> Groups:
    """The group tree of ``c`` (see the module docstring).

    Args:
        c: the circuit.
        fan_out: the most children (or nodes) a group holds directly.

    Returns:
        A :class:`Groups`.
    """
    n = len(c)
    first, second = part_bounds(c)
    adjoint_of = c.meta.get("adjoint_of") or {}
    lines = c.meta.get("lines")
    meta = c.meta
    of = meta.get("gradient_of") or meta.get("hvp_of") or meta.get("hessian_of") or "J"
    t = Groups()
    t.add(-1, "circuit", -1)
    t.group_of = [0] * n
    forward_key: list[Any] = [None] * n
    forward_keys: set = set()
    for part, (lo, hi) in enumerate(((0, first), (first, second), (second, n))):
        if lo >= hi:
            continue
        p = t.add(0, PART_NAMES[part], part, key=PART_NAMES[part])
        keys = _statements(c, lo, hi, part, forward_key, adjoint_of,
                           lines if part == 0 else None)
        by_key: dict[Any, int] = {}
        for i, key in zip(range(lo, hi), keys):
            if part == 0:
                forward_key[i] = key
            g = by_key.get(key)
            if g is None:
                # An adjoint statement is the δ of a forward one: "δ z".
                mirrored = part > 0 and key != "inputs" and key in forward_keys
                label = f"δ {key}" if mirrored else _named(str(key), part, of)
                g = by_key[key] = t.add(p, label, part, key=key)
            t.members[g].append(i)
        if part == 0:
            forward_keys = set(by_key)
    parts = list(t.children[0])
    for p in parts:
        for s in list(t.children[p]):
            _bucket(t, s, fan_out)
        _bucket(t, p, fan_out)
    # Counts, bottom up: a child's id is not always above its parent's (ranges are added
    # after the statements they hold), so walk a top-down order in reverse.
    order, stack = [], [0]
    while stack:
        g = stack.pop()
        order.append(g)
        stack.extend(t.children[g])
    for g in reversed(order):
        for i in t.members[g]:
            t.group_of[i] = g
        t.count[g] = len(t.members[g]) + sum(t.count[k] for k in t.children[g])
        t.operations[g] = (sum(1 for i in t.members[g] if c.op(i) not in LEAVES)
                           + sum(t.operations[k] for k in t.children[g]))
    return t

