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

import contextvars
import gc
import math
import operator
import struct
import types
from contextlib import contextmanager
from itertools import compress
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np

from .errors import CircuitError, ShapeError
from .primitives import PRIMITIVES, broadcast_shape, evaluate, shape_of, signs

Shape = tuple[int, ...]
LEAVES = ("input", "const")
_REWRITTEN = frozenset({"neg", "transpose", "add", "sub", "mul", "div", "pow", "square", "abs"})
# Every rewrite looks at an argument that is one of these (a cheap test before trying).
_REWRITE_TRIGGERS = frozenset({"const", "neg", "transpose"})
# The records' identities: a reduction of a scalar is the scalar itself; a shape op whose
# params give its argument back (the record's ``unchanged``).
_REDUCTIONS = frozenset(op for op, prim in PRIMITIVES.items() if prim.scalar_identity)
_SHAPE_IDENTITIES = {op: prim.unchanged for op, prim in PRIMITIVES.items()
                     if prim.unchanged is not None}
# Folding broadcast_to would store a full array where a view costs nothing.
_NOT_FOLDED = frozenset({"broadcast_to"})


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
# who reads each); tests/test_circuit.py checks that the passes write no other.
META_KEYS = frozenset({
    "forward_count", "tangent_count", "adjoint_of", "delta_of", "gradient_of", "hessian_of",
    "hvp_of", "jacobian_of", "wrt", "tangent_inputs", "mode", "sweeps", "sparse", "coloring",
    "csr_outputs",
    "lines"})


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


class Value:
    """A node under construction: the handle that front-ends, rules and traced functions use.

    Python's operators build nodes (``+ - * / ** @``, unary ``-``, ``.T``); comparisons
    (``< <= > >= == !=``) and ``& | ~`` build masks (1.0 where true, 0.0 elsewhere), for
    ``cg.where``; NumPy ufuncs such as ``np.sin`` work too. A Value has no truth value:
    control flow that depends on data (``if x > 0:``) cannot be traced.

        >>> import circuitgrad as cg
        >>> cg.trace(lambda x, y: (x + 1) * y).size
        2
    """

    __slots__ = ("builder", "id")
    __array_priority__ = 1000

    def __init__(self, builder: "Builder", id: int):
        self.builder = builder
        self.id = id

    @property
    def shape(self) -> Shape:
        """The node's shape."""
        return self.builder.shapes[self.id]

    @property
    def op(self) -> str:
        """The node's primitive name."""
        return self.builder.ops[self.id]

    @property
    def constant(self) -> float | None:
        """The node's value if it is a scalar constant, else None."""
        b = self.builder
        if b.ops[self.id] == "const" and not b.shapes[self.id]:
            return float(b.params[self.id])
        return None

    @property
    def T(self) -> "Value":  # noqa: N802 - NumPy's name
        """The transpose (a view in the generated code)."""
        return self.builder.apply("transpose", self)

    def _binary(self, op: str, other: Any, swap: bool = False) -> "Value":
        # The hot path of rules and traced code: no generic argument packing.
        b = self.builder
        o = other.id if type(other) is Value and other.builder is b else b._arg_id(other)
        return Value(b, b.apply_id(op, (o, self.id) if swap else (self.id, o)))

    def __add__(self, other): return self._binary("add", other)
    def __radd__(self, other): return self._binary("add", other, True)
    def __sub__(self, other): return self._binary("sub", other)
    def __rsub__(self, other): return self._binary("sub", other, True)
    def __mul__(self, other): return self._binary("mul", other)
    def __rmul__(self, other): return self._binary("mul", other, True)
    def __truediv__(self, other): return self._binary("div", other)
    def __rtruediv__(self, other): return self._binary("div", other, True)
    def __pow__(self, other, modulo=None):
        if modulo is not None:
            raise _refused("pow(x, y, modulo)")
        return self._binary("pow", other)
    def __rpow__(self, other): return self._binary("pow", other, True)
    def __matmul__(self, other): return self._binary("matmul", other)
    def __rmatmul__(self, other): return self._binary("matmul", other, True)
    def __neg__(self): return Value(self.builder, self.builder.apply_id("neg", (self.id,)))
    def __pos__(self): return self
    def __abs__(self): return Value(self.builder, self.builder.apply_id("abs", (self.id,)))

    def sum(self, axis: Any = None, *args: Any, **kwargs: Any) -> "Value":
        """``x.sum()``, ``x.sum(axis=0)``, ``x.sum(keepdims=True)``: as :func:`numpy.sum`."""
        if args or kwargs or isinstance(axis, (tuple, list)) or not self.shape:
            return np.sum(self, axis, *args, **kwargs)
        return self.builder.apply("sum", self, axis=axis)

    def mean(self, axis: Any = None, *args: Any, **kwargs: Any) -> "Value":
        """``x.mean()``, ``x.mean(axis=0)``, ``x.mean(keepdims=True)``: as
        :func:`numpy.mean`."""
        if args or kwargs or isinstance(axis, (tuple, list)) or not self.shape:
            return np.mean(self, axis, *args, **kwargs)
        return self.builder.apply("mean", self, axis=axis)

    # -- the ndarray methods that are NumPy functions: the function's tracing (trace.py) ------
    def max(self, *args, **kwargs): return np.max(self, *args, **kwargs)
    def min(self, *args, **kwargs): return np.min(self, *args, **kwargs)
    def prod(self, *args, **kwargs): return np.prod(self, *args, **kwargs)
    def clip(self, *args, **kwargs): return np.clip(self, *args, **kwargs)
    def round(self, *args, **kwargs): return np.round(self, *args, **kwargs)
    def dot(self, *args, **kwargs): return np.dot(self, *args, **kwargs)
    def squeeze(self, *args, **kwargs): return np.squeeze(self, *args, **kwargs)

    def __round__(self, ndigits=None):
        return np.round(self) if ndigits is None else np.round(self, ndigits)

    def swapaxes(self, axis1: int, axis2: int) -> "Value":
        """The point with two axes exchanged (a permutation of its axes)."""
        axes = list(range(len(self.shape)))
        try:
            axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        except (IndexError, TypeError):
            raise ShapeError(f"swapaxes: axes {axis1!r}, {axis2!r} do not fit shape "
                             f"{self.shape}" + user_line()) from None
        return self.transpose(axes)

    def copy(self, *args: Any, **kwargs: Any) -> "Value":
        """The value itself: a traced value is never written, so a copy is the same node."""
        if args or kwargs:
            raise _refused("copy(order=...)")
        return self

    def astype(self, dtype: Any, *args: Any, **kwargs: Any) -> "Value":
        """``x.astype(np.float64)`` is ``x`` (every value is a float64); other types refuse."""
        try:
            same = np.dtype(dtype) == np.float64
        except TypeError:
            same = False
        if not same or args or kwargs:
            raise _refused(f"astype({getattr(dtype, '__name__', dtype)!s})",
                           "every value of a circuit is a float64; astype(np.float64) traces")
        return self

    @property
    def dtype(self) -> np.dtype:
        """float64: the one type of every value of a circuit."""
        return np.dtype(np.float64)

    @property
    def real(self) -> "Value":
        """The value itself (circuits compute with real numbers)."""
        return self

    conj = conjugate = copy

    # -- operators and methods that NumPy arrays have and a traced value refuses, by name ------
    def __mod__(self, other): raise _refused("%")
    __rmod__ = __imod__ = __mod__

    def __floordiv__(self, other): raise _refused("//")
    __rfloordiv__ = __ifloordiv__ = __floordiv__

    def __divmod__(self, other): raise _refused("divmod")
    __rdivmod__ = __divmod__

    def __lshift__(self, other): raise _refused("<<")
    __rlshift__ = __rshift__ = __rrshift__ = __lshift__

    def __xor__(self, other): raise _refused("^", "write (a | b) & ~(a & b) for masks")
    __rxor__ = __xor__

    def __dlpack__(self, *args, **kwargs): raise _refused("DLPack export (np.from_dlpack)")
    __dlpack_device__ = __dlpack__

    def __getattr__(self, name: str) -> Any:
        # Only for names ordinary lookup did not find: an ndarray attribute is refused by
        # name; NumPy's protocol probes (__array_interface__ ...) stay AttributeErrors.
        if not name.startswith("_") and hasattr(np.ndarray, name):
            raise _refused(f".{name}")
        raise AttributeError(f"'Value' object has no attribute {name!r}")

    @property
    def ndim(self) -> int:
        """The number of axes of one point."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """The number of entries of one point."""
        return math.prod(self.shape)

    # -- comparisons and logic build masks (1.0 where true, primitives/compare.py) ------------
    def __lt__(self, other): return self._binary("less", other)
    def __le__(self, other): return self._binary("less_equal", other)
    def __gt__(self, other): return self._binary("greater", other)
    def __ge__(self, other): return self._binary("greater_equal", other)
    def __eq__(self, other): return self._binary("equal", other)  # type: ignore[override]
    def __ne__(self, other): return self._binary("not_equal", other)  # type: ignore[override]
    def __and__(self, other): return self._binary("logical_and", other)
    def __rand__(self, other): return self._binary("logical_and", other, True)
    def __or__(self, other): return self._binary("logical_or", other)
    def __ror__(self, other): return self._binary("logical_or", other, True)
    def __invert__(self):
        return Value(self.builder, self.builder.apply_id("logical_not", (self.id,)))

    # A Value is still a dictionary key by identity, as before ``==`` built masks.
    __hash__ = object.__hash__

    # -- what a traced value is not: each of these is a clear error at the user's line --------
    def __bool__(self):
        raise CircuitError(
            "a traced value has no truth value: control flow that depends on data cannot be "
            "traced (write cg.where(x > 0, a, b) instead of if/else; a comparison of traced "
            "values is a mask, 1.0 where it holds)" + user_line())

    def _number(self, *_):
        raise CircuitError("a traced value has no number yet: it is a node of the circuit "
                           "(float(), int() and math.* functions need numbers; use cg.sin, "
                           "np.sin ... on traced values)" + user_line())

    __float__ = __int__ = __index__ = __complex__ = item = tolist = _number

    @property
    def imag(self):
        raise _refused(".imag", "circuits compute with real numbers: the imaginary part of "
                       "every value is 0")

    def __array__(self, *_, **__):
        raise CircuitError("a traced value cannot become a NumPy array (np.array, np.asarray "
                           "or a list mixing traced values): it already is an array of the "
                           "circuit, so drop np.asarray(x); join values with np.stack or "
                           "np.concatenate (docs/tracing.md)" + user_line())

    def __setitem__(self, index, value):
        raise CircuitError("a traced value cannot be changed in place (x[i] = ...): build the "
                           "new array instead, e.g. with np.concatenate (docs/tracing.md)"
                           + user_line())

    # -- indexing and reshaping, with NumPy's meaning (indices are constants) ---------------
    def __getitem__(self, index: Any) -> "Value":
        """``x[1:]``, ``x[i, j]``, ``x[:, 0]``, ``x[..., None]``, ``x[[0, 2, 5]]``."""
        from .primitives.shape_ops import normalize_index

        b, shape = self.builder, self.shape
        items = index if isinstance(index, tuple) else (index,)
        arrays = [k for k, e in enumerate(items) if isinstance(e, (list, np.ndarray))]
        for e in items:
            if isinstance(e, Value):
                raise CircuitError("an index must be a constant, not a traced value (the "
                                   "circuit's shape cannot depend on data)" + user_line())
        try:
            if arrays:
                return self._take(items, arrays)
            return b.apply("getitem", self, index=normalize_index(index, shape))
        except CircuitError as e:
            raise type(e)(str(e) + user_line()) from None

    def _take(self, items: tuple, arrays: list[int]) -> "Value":
        if any(e is Ellipsis for e in items):  # the axes '...' stands for, as ':'
            k = next(j for j, e in enumerate(items) if e is Ellipsis)
            fill = len(self.shape) - (len(items) - 1 - sum(1 for e in items if e is None))
            items = items[:k] + (slice(None),) * max(fill, 0) + items[k + 1:]
            arrays = [j for j, e in enumerate(items) if isinstance(e, (list, np.ndarray))]
        where = arrays[0]
        picks = np.asarray(items[where])
        if len(arrays) > 1 or picks.ndim != 1 or picks.dtype.kind not in "iu" or any(
                e is None for e in items):
            raise ShapeError("integer-array indexing takes one 1-D array of integers (and "
                             "no None); index in two steps otherwise")
        ints = [k for k, e in enumerate(items) if not isinstance(e, (slice, list, np.ndarray))]
        block = sorted(ints + [where])
        if block != list(range(block[0], block[-1] + 1)):
            # NumPy moves the axis of integers and an array with a slice between them to the
            # front: a different layout from the two steps below.
            raise ShapeError("an integer array and integers with a slice between them: "
                             "index in two steps")
        if where >= len(self.shape):
            raise ShapeError(f"index: too many indices for a point of shape {self.shape}")
        n = self.shape[where]
        if any(not -n <= int(k) < n for k in picks):
            raise ShapeError(f"index: indices {picks.tolist()} are out of range for axis "
                             f"{where} of length {n}")
        # The basic part first (integers drop their axes), then the array along its axis.
        basic = self[tuple(slice(None) if k == where else e for k, e in enumerate(items))]
        axis = where - sum(1 for k in ints if k < where)
        return self.builder.apply("take", basic, indices=tuple(int(k) % n for k in picks),
                                  axis=axis)

    def __len__(self) -> int:
        if not self.shape:
            raise CircuitError("len() of a traced scalar: it has no axes" + user_line())
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise CircuitError("a traced scalar cannot be iterated over" + user_line())
        return (self[k] for k in range(self.shape[0]))

    def reshape(self, *shape: Any) -> "Value":
        """``x.reshape(2, 3)``, ``x.reshape((2, -1))``: a point of the same entries."""
        if not shape:
            raise ShapeError("reshape() needs the new shape, e.g. x.reshape(2, 3)" + user_line())
        wanted = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return self.builder.apply("reshape", self, shape=_reshaped(self.shape, wanted))

    def ravel(self) -> "Value":
        """The point's entries as one vector (C order)."""
        return self.reshape(-1)

    flatten = ravel

    def transpose(self, *axes: Any) -> "Value":
        """``x.transpose()`` is ``x.T``; ``x.transpose(1, 0, 2)`` permutes the point's axes."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if not axes:
            return self.T
        return self.builder.apply("permute_dims", self, axes=_permutation(self.shape, axes))

    def cumsum(self, axis: int | None = None) -> "Value":
        """Running sums along ``axis`` (of the flattened point when None, as NumPy)."""
        x = self if axis is not None else self.ravel()
        return self.builder.apply("cumsum", x, axis=0 if axis is None else axis)

    def __repr__(self) -> str:
        return f"<Value node {self.id}: {self.op} shape={self.shape}>"

    # NumPy's dispatch protocols (NEP 13 and NEP 18): a NumPy function called on a traced
    # value either builds the nodes it stands for or raises. The tracing front-end installs
    # the dispatcher (circuitgrad.frontends.trace), so that the IR does not import it.
    numpy_dispatch: Any = None

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if Value.numpy_dispatch is None:
            raise CircuitError(f"numpy.{ufunc.__name__} cannot be applied to a traced value")
        return Value.numpy_dispatch.ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if Value.numpy_dispatch is None:
            raise CircuitError(f"numpy.{func.__name__} cannot be applied to a traced value")
        return Value.numpy_dispatch.function(func, args, kwargs)


def _refused(what: str, hint: str = "") -> CircuitError:
    """The error for an ndarray method or operator that a traced value does not have."""
    return CircuitError(f"{what} cannot be applied to a traced value: it is not in "
                        f"circuitgrad's primitive table ({hint or 'docs/tracing.md lists what '}"
                        f"{'' if hint else 'traces'})" + user_line())


def _reshaped(shape: Shape, wanted: Any) -> Shape:
    """NumPy's reshape target (one -1 inferred) for a point of ``shape``, or a ShapeError."""
    try:
        dims = [operator.index(n) for n in (wanted if isinstance(wanted, (tuple, list))
                                             else (wanted,))]
    except TypeError:
        raise ShapeError(f"reshape: the shape must be integers, got {wanted!r}") from None
    size = math.prod(shape)
    if dims.count(-1) > 1 or any(n < -1 for n in dims):
        raise ShapeError(f"reshape: invalid shape {tuple(dims)}")
    if -1 in dims:
        rest = math.prod(n for n in dims if n != -1)
        if rest == 0 or size % rest:
            raise ShapeError(f"reshape: a point of shape {shape} cannot become {tuple(dims)}")
        dims[dims.index(-1)] = size // rest
    if math.prod(dims) != size:
        raise ShapeError(f"reshape: a point of shape {shape} cannot become {tuple(dims)}")
    return tuple(dims)


def _permutation(shape: Shape, axes: Any) -> tuple[int, ...]:
    n = len(shape)
    try:
        axes = tuple(operator.index(a) for a in axes)
    except TypeError:
        raise ShapeError(f"transpose: axes must be integers, got {axes!r}") from None
    if sorted(a % n if -n <= a < n else a for a in axes) != list(range(n)):
        raise ShapeError(f"transpose: axes {list(axes)} are not a permutation of the {n} axes "
                         f"of shape {shape}")
    return tuple(a % n for a in axes)


_PROGRAM_TEXT = contextvars.ContextVar("circuitgrad_program_text", default=False)


@contextmanager
def in_program_text() -> Iterator[None]:
    """While a front-end builds from program text, errors name the text's line and column
    (the front-end's own), not a line of Python code: :func:`user_line` says nothing."""
    token = _PROGRAM_TEXT.set(True)
    try:
        yield
    finally:
        _PROGRAM_TEXT.reset(token)


def user_line(frames: Iterable[Any] | None = None) -> str:
    """`` (at FILE:LINE: code)`` for the innermost frame outside circuitgrad and NumPy: where
    in the user's code a traced value was misused ('' when there is no such frame).
    ``frames``: (frame, line) pairs from the innermost out (default: the calling stack)."""
    import linecache
    import os
    import sys

    if _PROGRAM_TEXT.get():
        return ""
    if frames is None:
        def stack() -> Iterator[tuple[Any, int]]:
            frame = sys._getframe(1)
            while frame is not None:
                yield frame, frame.f_lineno
                frame = frame.f_back
        frames = stack()
    here = os.path.dirname(os.path.abspath(__file__))
    numpy_dir = os.path.dirname(np.__file__)
    for frame, line in frames:
        name = frame.f_code.co_filename
        path = os.path.abspath(name)
        if not (path.startswith(here + os.sep) or path.startswith(numpy_dir + os.sep)
                or name.startswith("<frozen")):
            code = linecache.getline(name, line).strip()
            return f" (at {name}:{line}: {code})" if code else f" (at {name}:{line})"
    return ""


def traceback_line(tb: Any) -> str:
    """:func:`user_line` of the innermost user frame of a traceback."""
    frames = []
    while tb is not None:
        frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return user_line(reversed(frames))


def _const_key(value: Any) -> tuple:
    if isinstance(value, np.ndarray):
        return ("const", value.shape, value.tobytes())
    if math.isnan(value):
        return ("const", "nan")
    return ("const", struct.pack("<d", value))


def _params_key(params: dict[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


class Builder:
    """Appends hash-consed nodes; :meth:`finish` turns them into a :class:`Circuit`.

    Start from an existing circuit to extend it (its nodes keep their ids): that is how the
    adjoint pass shares the forward nodes.

        >>> b = Builder()
        >>> x = b.input("x")
        >>> (x * 1.0).id == x.id, (x + x).id == (x + x).id
        (True, True)
    """

    def __init__(self, base: Circuit | None = None):
        self.ops: list[str] = []
        self.args: list[tuple[int, ...]] = []
        self.params: list[Any] = []
        self.shapes: list[Shape] = []
        self.names: dict[int, str] = {}
        self.inputs: dict[str, int] = {}
        self._keys: dict[tuple, int] = {}
        self._folded: dict[tuple, int] = {}  # (op, constant ids, params) -> the folded constant
        self._named: set[str] | None = None  # the names given, made on first need
        if base is not None:
            self.ops, self.args = list(base._ops), list(base._args)
            self.params, self.shapes = list(base._params), list(base._shapes)
            self.names = dict(base._names)
            self.inputs = dict(zip(base._inputs, base._input_ids))
            for i in range(len(self.ops)):
                self._keys.setdefault(self._key(self.ops[i], self.args[i], self.params[i]), i)

    # -- leaves --------------------------------------------------------------------------
    def input(self, name: str, shape: Shape = ()) -> Value:
        """The input called ``name`` (created on first use)."""
        if name in self.inputs:
            return Value(self, self.inputs[name])
        shape = tuple(int(n) for n in shape)
        if any(n < 0 for n in shape):
            raise ShapeError(f"input {name!r}: negative length in shape {shape}")
        i = self._append("input", (), name, shape)
        self.inputs[name] = i
        return Value(self, i)

    def const(self, value: Any) -> Value:
        """The constant ``value`` (a number or an array of float64)."""
        return Value(self, self.const_id(value))

    def const_id(self, value: Any) -> int:
        if isinstance(value, np.ndarray) and value.dtype == object:
            raise CircuitError("a NumPy object array cannot be a constant of a circuit (does it "
                               "hold traced values? build them with circuit operations)"
                               + user_line())
        if isinstance(value, np.ndarray) and value.ndim > 0:
            value = np.array(value, dtype=np.float64)
            value.setflags(write=False)
            shape = value.shape
        else:
            value, shape = float(value), ()
        key = _const_key(value)
        hit = self._keys.get(key)
        if hit is not None:
            return hit
        i = self._append("const", (), value, shape)
        self._keys[key] = i
        return i

    # -- operations ----------------------------------------------------------------------
    def apply(self, op: str, *args: Any, **params: Any) -> Value:
        """Apply primitive ``op`` to ``args`` (Values, numbers or arrays); hash-consed."""
        return Value(self, self.apply_id(op, tuple(self._arg_id(a) for a in args), params))

    def apply_id(self, op: str, ids: tuple[int, ...], params: dict[str, Any] | None = None) -> int:
        """Like :meth:`apply`, on node ids; returns the id. This is the hot path of every
        front-end and pass, so it avoids NumPy for scalar shapes."""
        prim = PRIMITIVES.get(op)
        if prim is None or not prim.arity:
            raise CircuitError(f"unknown operation {op!r}")
        if len(ids) != prim.arity and not (prim.variadic and len(ids) > prim.arity):
            more = " or more" if prim.variadic else ""
            raise CircuitError(f"{op} takes {prim.arity}{more} argument(s), got {len(ids)}")
        if params:
            params = self._canonical_params(op, ids, params)
        shapes, ops = self.shapes, self.ops
        if op in _REDUCTIONS and not shapes[ids[0]]:
            return ids[0]  # the sum or mean of one number is that number, exactly
        keeps = _SHAPE_IDENTITIES.get(op)
        if keeps is not None and params and keeps(shapes[ids[0]], **params):
            return ids[0]  # x[:], x.reshape(x.shape), a permutation that moves nothing
        first = ops[ids[0]]
        second = ops[ids[1]] if len(ids) > 1 else first  # (unary: the same argument twice)
        if op in _REWRITTEN and (first in _REWRITE_TRIGGERS or second in _REWRITE_TRIGGERS
                                 or (op == "neg" and first == "mul")):
            rewritten = self._rewrite(op, ids)
            if rewritten is not None:
                return rewritten
        if prim.shape is None:
            shape = shapes[ids[0]]
            if len(ids) == 2 and shapes[ids[1]] != shape:
                shape = broadcast_shape(op, shape, shapes[ids[1]])
            elif len(ids) > 2:
                shape = broadcast_shape(op, *(shapes[a] for a in ids))
        else:
            shape = prim.shape(*(shapes[a] for a in ids), **(params or {}))
        if first == "const" and second == "const" and op not in _NOT_FOLDED and (
                len(ids) <= 2 or all(ops[a] == "const" for a in ids)):  # self.folds
            # Folded once per (op, constants, params): the adjoint sweeps of a dense Jacobian
            # ask for W.T of the same constant W once per sweep (8 MB copied and hashed each).
            fold_key = (op, ids, _params_key(params) if params else None)
            hit = self._folded.get(fold_key)
            if hit is None:
                with np.errstate(all="ignore"):
                    value = evaluate(op, tuple(self.params[a] for a in ids), params)
                hit = self._folded[fold_key] = self.const_id(value)
            return hit
        if prim.commutative and len(ids) == 2 and ids[0] > ids[1]:
            key_ids = (ids[1], ids[0])
        else:
            key_ids = ids
        key = (op, key_ids,
               _params_key(params) if params else None)
        hit = self._keys.get(key)
        if hit is not None:
            return hit
        i = self._append(op, ids, params or None, shape)
        self._keys[key] = i
        return i

    def folds(self, op: str, ids: Sequence[int]) -> bool:
        """Whether :meth:`apply_id` would fold ``op`` on these arguments into a constant
        (computing it now), e.g. for a reader of untrusted input to bound that cost first."""
        return op not in _NOT_FOLDED and all(self.ops[a] == "const" for a in ids)

    def _canonical_params(self, op: str, ids: tuple[int, ...],
                          params: dict[str, Any]) -> dict[str, Any] | None:
        params = {k: v for k, v in params.items() if v is not None}
        if "axis" in params and PRIMITIVES[op].params == ("axis",) and op != "stack":
            # (stack's axis counts the new axis: its shape rule checks it)
            # One spelling per axis, so that hash-consing and the adjoint rules see 0, not -2.
            shape = self.shapes[ids[0]]
            axis = params["axis"]
            if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
                raise CircuitError(f"{op}: axis must be an integer, got {axis!r}")
            if not -len(shape) <= axis < len(shape):
                raise ShapeError(f"{op}: axis {axis} is out of range for shape {shape}")
            params["axis"] = int(axis) % len(shape)
        return params or None

    def _is_const(self, i: int, value: float) -> bool:
        return self.ops[i] == "const" and self.params[i] is not None and \
            not self.shapes[i] and self.params[i] == value

    def _rewrite(self, op: str, ids: tuple[int, ...]) -> int | None:
        # Only rewrites that are exact in IEEE-754 arithmetic, bit for bit; those that move a
        # sign (-(-x) = x, a + (-b) = a - b, -(c·x) = (-c)·x ...) live in primitives/signs.py.
        ops, args = self.ops, self.args
        if op == "transpose":
            return args[ids[0]][0] if ops[ids[0]] == "transpose" else None  # (xᵀ)ᵀ = x
        if op == "pow":
            a, b = ids
            if self._is_const(b, 1.0) and self._keeps_shape(a, b):
                return a
            if self._is_const(b, 2.0) and self._keeps_shape(a, b):
                # x**2 is square(x), the correctly rounded x·x, in every circuit: a forward
                # circuit and the forward part of its adjoint show the same node.
                return self.apply_id("square", (a,))
            return None
        if op in ("mul", "div"):
            a, b = ids
            if op == "mul" and self._is_const(a, 1.0) and self._keeps_shape(b, a):
                return b
            if self._is_const(b, 1.0) and self._keeps_shape(a, b):
                return a
        return signs.rewrite(self, op, ids)

    def _is_scalar_const(self, i: int) -> bool:
        return self.ops[i] == "const" and not self.shapes[i]

    def _keeps_shape(self, kept: int, dropped: int) -> bool:
        # Dropping an operand is only exact when it does not broadcast the kept one.
        shapes = self.shapes
        return not shapes[dropped] or shapes[dropped] == shapes[kept]

    def _arg_id(self, a: Any) -> int:
        if type(a) is Value or isinstance(a, Value):
            if a.builder is not self:
                raise CircuitError("a value from another circuit was used in this one")
            return a.id
        if isinstance(a, (list, tuple)):  # NumPy's constants from lists: x - [3, 5, 2]
            try:
                a = np.asarray(a, dtype=np.float64)
            except (TypeError, ValueError):
                raise CircuitError(f"cannot use the list {a!r} in a circuit: a constant list "
                                   "holds numbers (build arrays of traced values with "
                                   "np.stack or np.concatenate)") from None
        if isinstance(a, bool) or not isinstance(a, (int, float, np.floating, np.integer,
                                                     np.ndarray)):
            raise CircuitError(f"cannot use {type(a).__name__} {a!r} in a circuit")
        return self.const_id(a)

    @staticmethod
    def _key(op: str, args: tuple[int, ...], params: Any) -> tuple:
        if op == "const":
            return _const_key(params)
        if op == "input":
            return ("input", params)
        if PRIMITIVES[op].commutative and args[0] > args[1]:
            args = (args[1], args[0])
        return (op, args, _params_key(params) if params else None)

    def _append(self, op: str, args: tuple[int, ...], params: Any, shape: Shape) -> int:
        self.ops.append(op)
        self.args.append(args)
        self.params.append(params)
        self.shapes.append(shape)
        return len(self.ops) - 1

    def name(self, value: Value | int, name: str) -> None:
        """Give a node a name (kept if it already has one). One name per node: a name that
        another node has gets a number (``x_bar_2``: the adjoint of ``x`` in a second
        adjoint pass)."""
        i = value.id if isinstance(value, Value) else value
        if i in self.names:
            return
        if self._named is None:
            self._named = set(self.names.values())
        wanted, k = name, 2
        while name in self._named:
            name, k = f"{wanted}_{k}", k + 1
        self.names[i] = name
        self._named.add(name)

    # -- the result ----------------------------------------------------------------------
    def finish(self, outputs: Sequence[tuple[str, Value | int]],
               inputs: Sequence[str] | None = None, meta: dict[str, Any] | None = None,
               ) -> Circuit:
        """The circuit of the nodes that reach ``outputs``, plus every input.

        ``inputs`` orders the inputs (default: creation order). ``meta`` entries
        ``forward_count``, ``tangent_count`` and ``adjoint_of`` are carried over to the new
        node ids.
        """
        out_ids = [o.id if isinstance(o, Value) else o for _, o in outputs]
        order = list(inputs) if inputs is not None else list(self.inputs)
        n = len(self.ops)
        live = bytearray(n)
        for i in out_ids:
            live[i] = 1
        for name in order:
            live[self.inputs[name]] = 1
        args = self.args
        for i in range(n - 1, -1, -1):
            if live[i]:
                for a in args[i]:
                    live[a] = 1
        if all(live):  # (nothing to drop: the records as they are, ids unchanged)
            new_id = list(range(n))
            ops, new_args = list(self.ops), list(args)
            params, shapes = list(self.params), list(self.shapes)
        else:
            # The nodes before the first dropped one keep their ids and records as they are
            # (a parse drops the one constant 2.0 of its first x**2, which became square(x)).
            first = live.find(0)
            new_id = list(range(first)) + [-1] * (n - first)
            rest = live[first:]
            for k, i in enumerate(compress(range(first, n), rest), first):
                new_id[i] = k
            ops = self.ops[:first] + list(compress(self.ops[first:], rest))
            new_args = args[:first] + [
                (new_id[a[0]], new_id[a[1]]) if len(a) == 2 else
                () if not a else (new_id[a[0]],) if len(a) == 1 else
                tuple(new_id[x] for x in a) for a in compress(args[first:], rest)]
            params = self.params[:first] + list(compress(self.params[first:], rest))
            shapes = self.shapes[:first] + list(compress(self.shapes[first:], rest))
        names = {new_id[i]: s for i, s in self.names.items() if live[i]}
        meta = dict(meta or {})
        for boundary in ("forward_count", "tangent_count"):  # first ids of a pass's nodes
            if boundary in meta:
                meta[boundary] = sum(live[: meta[boundary]])
        if "adjoint_of" in meta:
            meta["adjoint_of"] = {new_id[a]: new_id[f] for a, f in meta["adjoint_of"].items()
                                  if live[a] and live[f]}
        return Circuit(ops, new_args, params, shapes, names,
                       [(s, new_id[self.inputs[s]]) for s in order],
                       [(s, new_id[i]) for (s, _), i in zip(outputs, out_ids)], meta)
