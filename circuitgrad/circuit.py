"""The circuit IR: an immutable DAG of primitive operations, and the hash-consing builder.

Invariants (checked by :meth:`Circuit.validate`):

* Nodes are integers ``0 … n-1`` in creation order and a node's arguments have smaller ids, so
  ascending id is a topological order: every pass is a plain loop, forward or reversed, with
  no recursion and no sorting.
* Each node has an ``op`` (a key of :data:`~circuitgrad.primitives.PRIMITIVES`), an ordered
  ``args`` tuple (with multiplicity: ``x*x`` is ``(x, x)``), ``params`` (the input's name, the
  constant's value, or a dict such as ``{"axis": 0}``) and a ``shape`` (``()`` for scalars).
* Construction is hash-consed: the same op on the same arguments and params is one node.
  Commutative ops sort their key; constants are keyed by their bits (``0.0`` and ``-0.0``
  differ, NaN equals NaN).
* The builder rewrites only what is exact in IEEE arithmetic, so every front-end and pass gets
  it for free: constant folding, ``sum(x) → x`` and ``mean(x) → x`` for a scalar ``x``,
  ``x*1 → x``, ``x/1 → x``, ``x**1 → x``, ``x**2 → x²``
  (``square``, correctly rounded, where NumPy's scalar power may be one ulp off), ``x*-1 → -x``,
  ``-(-x) → x``, ``(xᵀ)ᵀ → x``, ``a + (-b) → a - b``, ``a - (-b) → a + b``, ``(-a)·(-b) → a·b``,
  ``(-x)² → x²``, ``|-x| → |x|``, ``c·(-x) → (-c)·x`` and ``(-x)/c → x/(-c)`` for a scalar
  constant ``c``.
* :meth:`Builder.finish` keeps the nodes that reach an output, and every input even if unused.

The node records live in flat lists (fast to walk); :attr:`Circuit.graph` materializes the
``networkx.DiGraph`` on first access, with one edge per (argument, node) pair whose ``pos``
attribute lists the argument positions (``(0, 1)`` for ``x*x``).

    >>> import circuitgrad as cg
    >>> c = cg.parse("sin(x)*sin(x)")
    >>> c.size, [c.op(i) for i in range(len(c))]
    (2, ['input', 'sin', 'mul'])
"""

from __future__ import annotations

import gc
import types
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

from .errors import CircuitError
from .primitives import PRIMITIVES, shape_of

Shape = tuple[int, ...]

LEAVES = ("input", "const")

@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a pass builds millions of small objects.

    Node records never form reference cycles, and the collector's full sweeps grow with the
    number of live objects, which made passes over 10⁶ nodes 2-3x slower per node.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

# How a circuit shows itself: the lowerings register here ("text": lower/text.py's listing,
# "svg": lower/dot.py's diagram, "html": lower/html.py's viewer), so the IR imports no lowering.
_DISPLAY: dict[str, Callable[["Circuit"], str]] = {}

def register_display(kind: str, show: Callable[["Circuit"], str]) -> None:
    """Let ``repr`` (``kind="text"``) or notebooks (``"svg"``, ``"html"``) show circuits
    with ``show``."""
    _DISPLAY[kind] = show

# The front-end that reads program text registers itself here (circuit.py imports no
# front-end: the dependency points from the front-ends to the IR).
_text_reader: Callable[[str], "Circuit"] | None = None

def register_text_reader(reader: Callable[[str], "Circuit"]) -> None:
    """Let :func:`as_circuit` read program text with ``reader`` (``parse`` registers itself)."""
    global _text_reader
    _text_reader = reader

def as_circuit(c: Any, caller: str) -> "Circuit":
    """``c`` if it is a circuit, the parsed circuit if it is program text, else an error.

    Every public transform and lowering calls this first, so each says what it takes.

    Args:
        c: a :class:`Circuit`, or program text such as ``"x*2"``.
        caller: the public function's name, for the error.

    Raises:
        CircuitError: ``c`` is neither; it says how to make a circuit.

    >>> import circuitgrad as cg
    >>> as_circuit("x*2", "grad").inputs
    ('x',)
    >>> as_circuit(3, "grad")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    circuitgrad.errors.CircuitError: grad takes a Circuit or program text, got int 3: ...
    """
    if isinstance(c, Circuit):
        return c
    if isinstance(c, str) and _text_reader is not None:
        return _text_reader(c)
    what = type(c).__name__
    shown = repr(c)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    hint = 'build a circuit with cg.parse("...") (text) or cg.trace(f) (a Python function)'
    if callable(c):
        hint = "trace a Python function into a circuit with cg.trace(f) first"
    raise CircuitError(f"{caller} takes a Circuit or program text, got {what} {shown}: {hint}")

class Columns(NamedTuple):
    """A circuit's node records as read-only columns (:attr:`Circuit.columns`)."""

    ops: tuple[str, ...]
    args: tuple[tuple[int, ...], ...]
    params: tuple[Any, ...]
    shapes: tuple[Shape, ...]
    names: Mapping[int, str]

# Every key a pass writes into Circuit.meta (docs/design.md, "Circuit.meta", says who writes and
# who reads each); tests/ir/test_circuit.py checks that the passes write no other.
META_KEYS = frozenset({
    "forward_count", "tangent_count", "adjoint_of", "delta_of", "gradient_of", "hessian_of",
    "hvp_of", "jacobian_of", "wrt", "tangent_inputs", "mode", "sweeps", "sparse", "coloring",
    "csr_outputs",
    "lines", "guards"})

class Circuit:
    """An immutable circuit: inputs, operation nodes, named outputs.

    Build one with a front-end (:func:`~circuitgrad.parse`, :func:`~circuitgrad.trace`,
    :func:`~circuitgrad.from_sympy`) or a pass; passes return new circuits.

        >>> import circuitgrad as cg
        >>> c = cg.parse("z = w*x + b\\nJ = relu(z)")
        >>> c.inputs, c.outputs, c.size
        (('w', 'x', 'b'), ('J',), 3)
    """

    __slots__ = ("_ops", "_args", "_params", "_shapes", "_names", "_inputs", "_input_ids",
                 "_outputs", "_output_ids", "_meta", "_graph", "_size", "_columns", "__weakref__")

    def __init__(self, ops: list[str], args: list[tuple[int, ...]], params: list[Any],
                 shapes: list[Shape], names: dict[int, str], inputs: Sequence[tuple[str, int]],
                 outputs: Sequence[tuple[str, int]], meta: dict[str, Any] | None = None):
        self._ops, self._args, self._params, self._shapes = ops, args, params, shapes
        self._names = names
        self._inputs = tuple(name for name, _ in inputs)
        self._input_ids = tuple(i for _, i in inputs)
        self._outputs = tuple(name for name, _ in outputs)
        self._output_ids = tuple(i for _, i in outputs)
        self._meta = meta or {}
        self._graph = None
        self._columns: Columns | None = None
        self._size = sum(1 for op in ops if op not in LEAVES)

    # -- the public view -----------------------------------------------------------------
    @property
    def inputs(self) -> tuple[str, ...]:
        """Input names, in order (the positional order of generated functions)."""
        return self._inputs

    @property
    def outputs(self) -> tuple[str, ...]:
        """Output names, in order."""
        return self._outputs

    @property
    def input_ids(self) -> tuple[int, ...]:
        """The node of each input, in the order of :attr:`inputs`."""
        return self._input_ids

    @property
    def output_ids(self) -> tuple[int, ...]:
        """The node of each output, in the order of :attr:`outputs`."""
        return self._output_ids

    @property
    def size(self) -> int:
        """Number of operation nodes (inputs and constants are not counted)."""
        return self._size

    @property
    def operations(self) -> int:
        """Number of scalar operations the nodes stand for: :attr:`size`, but a fused node
        (``tanh_vjp``: square, sub and mul) counts each operation it performs.

            >>> import circuitgrad as cg
            >>> g = cg.grad(cg.parse("J = tanh(x) * y"))
            >>> g.size, g.operations
            (3, 5)
        """
        return sum(PRIMITIVES[op].operations for op in self._ops if op not in LEAVES)

    @property
    def input_shapes(self) -> dict[str, Shape]:
        """Each input's shape (``()`` for a scalar)."""
        return {n: self._shapes[i] for n, i in zip(self._inputs, self._input_ids)}

    @property
    def output_shapes(self) -> dict[str, Shape]:
        """Each output's shape."""
        return {n: self._shapes[i] for n, i in zip(self._outputs, self._output_ids)}

    @property
    def meta(self) -> dict[str, Any]:
        """What a pass recorded about the circuit, e.g. ``forward_count`` and ``adjoint_of``
        for an adjoint circuit (read by the lowerings to name and draw adjoint nodes). Every
        key, who writes it and who reads it: docs/design.md, "Circuit.meta"; :data:`META_KEYS`."""
        return self._meta

    def __len__(self) -> int:
        """Number of nodes, leaves included."""
        return len(self._ops)

    def op(self, i: int) -> str:
        """The primitive name of node ``i``."""
        return self._ops[i]

    def args(self, i: int) -> tuple[int, ...]:
        """The ordered arguments of node ``i``."""
        return self._args[i]

    def params(self, i: int) -> Any:
        """Node ``i``'s params: an input's name, a constant's value, or a dict (or None)."""
        return self._params[i]

    def shape(self, i: int) -> Shape:
        """The shape of node ``i``."""
        return self._shapes[i]

    def name(self, i: int) -> str | None:
        """The name a program gave node ``i`` (``z`` in ``z = w*x + b``), if any."""
        return self._names.get(i)

    @property
    def names(self) -> dict[int, str]:
        """Names given to nodes by the program (and ``_bar`` names from the adjoint pass)."""
        return dict(self._names)

    def records(self) -> Iterable[tuple[int, str, tuple[int, ...], Any, Shape]]:
        """``(id, op, args, params, shape)`` for every node, in topological order."""
        return zip(range(len(self._ops)), self._ops, self._args, self._params, self._shapes)

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        # The cached views (graph, columns) are rebuilt on first use, never pickled.
        return None, {k: getattr(self, k) for k in self.__slots__
                      if k not in ("_graph", "_columns", "__weakref__")}

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        for k, v in state[1].items():
            object.__setattr__(self, k, v)
        self._graph = self._columns = None

    @property
    def columns(self) -> "Columns":
        """The node records as read-only columns, what a pass loops over: ``ops``, ``args``,
        ``params``, ``shapes`` (tuples indexed by node id) and ``names`` (node -> name).
        Made once per circuit (a circuit never changes).

            >>> import circuitgrad as cg
            >>> cols = cg.parse("J = sin(x) * x").columns
            >>> cols.ops, cols.args[2], dict(cols.names)
            (('input', 'sin', 'mul'), (1, 0), {2: 'J'})
        """
        if self._columns is None:
            self._columns = Columns(tuple(self._ops), tuple(self._args), tuple(self._params),
                                    tuple(self._shapes), types.MappingProxyType(self._names))
        return self._columns

    @property
    def graph(self):
        """The circuit as a ``networkx.DiGraph`` (built on first access, then cached).

        Node attributes: ``op``, ``params``, ``shape``, ``name``; edge attribute ``pos``: the
        argument positions the source fills in the target.
        """
        if self._graph is None:
            import networkx as nx

            g = nx.DiGraph()
            for i, op, args, params, shape in self.records():
                g.add_node(i, op=op, params=params, shape=shape, name=self._names.get(i))
                for pos, a in enumerate(args):
                    if g.has_edge(a, i):
                        g.edges[a, i]["pos"] += (pos,)
                    else:
                        g.add_edge(a, i, pos=(pos,))
            g.graph["inputs"] = self._inputs
            g.graph["outputs"] = dict(zip(self._outputs, self._output_ids))
            self._graph = g
        return self._graph

    def validate(self) -> None:
        """Check the invariants; raise :class:`CircuitError` naming the first broken one."""
        n = len(self._ops)
        if not (len(self._args) == len(self._params) == len(self._shapes) == n):
            raise CircuitError("node records have different lengths")
        for i, op, args, params, shape in self.records():
            prim = PRIMITIVES.get(op)
            if prim is None:
                raise CircuitError(f"node {i}: unknown op {op!r}")
            if len(args) != prim.arity and not (prim.variadic and len(args) > prim.arity):
                raise CircuitError(f"node {i}: {op} takes {prim.arity} arguments, has {len(args)}")
            if any(not 0 <= a < i for a in args):
                raise CircuitError(f"node {i}: argument ids {args} are not earlier nodes")
            if op not in LEAVES:
                kw = params or {}
                if shape_of(op, tuple(self._shapes[a] for a in args), kw) != shape:
                    raise CircuitError(f"node {i}: recorded shape {shape} is not inferred")
        for name, i in zip(self._inputs, self._input_ids):
            if self._ops[i] != "input" or self._params[i] != name:
                raise CircuitError(f"input {name!r} is not an input node")
        if len(set(self._inputs)) != len(self._inputs):
            raise CircuitError("duplicate input names")
        if len(set(self._outputs)) != len(self._outputs):
            raise CircuitError("duplicate output names")
        if any(not 0 <= i < n for i in self._output_ids):
            raise CircuitError("an output names a node that does not exist")
        if self._graph is not None:
            g = self._graph
            edges = sum(len(set(a)) for a in self._args)
            if g.number_of_nodes() != n or g.number_of_edges() != edges:
                raise CircuitError("graph and node records disagree")

    def __repr__(self) -> str:
        """The inputs in their positional order, the outputs, and (where the text lowering
        is loaded, as ``import circuitgrad`` does) the first nodes."""
        head = (f"<Circuit inputs={list(self._inputs)} outputs={list(self._outputs)} "
                f"size={self._size}>")
        if len(self._inputs) > 1:  # positional calls take this order, not the user's
            head += (f"\npositional order: f({', '.join(self._inputs)}) (inputs in order of "
                     "first use; call with keywords to be explicit)")
        guards = self._meta.get("guards")
        if guards is not None:  # the branch this circuit is, traced at a point
            head += "\nguards (checked first; the circuit holds where all do):\n" + "\n".join(
                "  " + guards.describe(k) for k in range(len(guards.kinds)))
        text = _DISPLAY.get("text")
        return head if text is None else head + "\n" + text(self)

    def _svg(self) -> tuple[str | None, str]:
        """The diagram as SVG text, or None and why it is not drawn."""
        draw = _DISPLAY.get("svg")
        if draw is None:
            return None, "not drawn: the diagram lowering is not loaded"
        try:
            return draw(self), ""
        except CircuitError as e:
            return None, f"not drawn: {e}"
        except Exception as e:  # noqa: BLE001 - a notebook display must never raise
            return None, f"not drawn: {type(e).__name__}: {e}"

    def _repr_svg_(self) -> str | None:
        """The diagram, for front-ends that ask for SVG only (None: not drawn)."""
        return self._svg()[0]

    def _repr_html_(self) -> str | None:
        """The browser viewer (lower/html.py) of a circuit too big for a diagram, else None."""
        show = _DISPLAY.get("html")
        if show is None:
            return None
        try:
            return show(self)
        except Exception:  # noqa: BLE001 - a notebook display must never raise
            return None

    def _repr_mimebundle_(self, include=None, exclude=None):
        """Jupyter shows a circuit as its diagram (SVG); one too big for a diagram as the
        browser viewer (HTML); where neither is drawn the text says why, and how to draw it
        anyway."""
        svg, why = self._svg()
        if svg is None:
            page = self._repr_html_()
            text = repr(self) + "\n(" + why + ")"
            return {"text/plain": text} if page is None else {"text/html": page,
                                                              "text/plain": text}
        return {"image/svg+xml": svg, "text/plain": repr(self)}


# Builder and Value live in builder.py and value.py (one noun a file); their old import path
# stays, resolved on first use so that circuit.py imports neither (no import circle).
_MOVED = {"Builder": "builder", "Value": "value", "user_line": "value",
          "traceback_line": "value", "in_program_text": "value"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"circuitgrad.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
