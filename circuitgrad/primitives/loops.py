"""Loops as circuits: the ``scan`` primitive, whose body is a circuit held in its params.

A ``scan`` node runs a :class:`Body` ``length`` times. The body is an ordinary circuit with
its inputs in three groups, in order: the *carry* leaves (what one step hands the next), the
*x* leaves (one slice of the sequences ``xs`` per step) and the *closure* leaves (values from
outside the loop, the same at every step); its outputs are the new carry leaves, then the
*y* leaves (one per step, stacked). The node's arguments follow the same order: the initial
carry leaves, the sequences (a leading axis of ``length``), the closures.

The node's value is one vector, the *packed* result: the final carry leaves, then the stacked
y leaves (``(length,) + y shape``), then, where ``save``, the stacked carries the body was
called with (the carry before each step, what the adjoint reads), each leaf flattened, in
order (:func:`layout`). The front-end (:func:`circuitgrad.scan`) reads the leaves back out of
it with ``getitem`` and ``reshape``, so every pass sees one node of one array, and a loop's
circuit stays the size of its body, whatever its trip count.

The params are ``body`` (a :class:`Body`: frozen, hashed and compared by its content, so
equal bodies share one record and hash-consing merges equal loops), ``length``, ``reverse``
(steps ``length - 1`` down to 0: the adjoint's loop) and ``save``. Evaluation compiles the
body once into straight-line NumPy code (the templates of its nodes, as ``to_numpy`` writes
them) and calls it in a Python loop; batch axes in front of the points are carried through.
On arrays of another library (PyTorch, JAX, CuPy, Dask, array-api-strict) the same source is
bound to that library's namespace and the steps are stacked with its ops (``_Library``); on
JAX the loop is one ``lax.scan`` (``_Jax``: under ``jax.jit`` the body is traced once). The
generated code calls a loop through its *runner*, bound to a readable name (``scan0``) in
that function's own namespace (:class:`Runners`).
The derivative rules (the adjoint of a loop is a loop over the body's adjoint, its tangent a
loop over the body's tangent) live in :mod:`circuitgrad.transforms.loops`, which registers
them in :data:`RULES` (the rules build bodies with the passes, which sit above the table).

    >>> import circuitgrad as cg
    >>> c = cg.trace(lambda x: cg.scan(lambda s, _: (s * x, None), 1.0, length=3)[0])
    >>> [c.op(i) for i in range(len(c))]
    ['input', 'const', 'scan', 'getitem']
    >>> float(cg.to_numpy(c)(2.0))
    8.0
"""

from __future__ import annotations

import hashlib
import math
import struct
import textwrap
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import CircuitError, ShapeError
from .core import NAMESPACE, Primitive, Shape

LOOPS = frozenset({"scan"})
"""The loop primitives: their params hold a body circuit."""

MAX_NESTING = 64
"""The deepest loops may nest: a :class:`Body` holding loops whose bodies nest 63 deep is the
deepest one made (its :attr:`Body.depth` 64); a deeper one is refused when it is made. The
derivative passes build a loop's adjoint and tangent bodies by running themselves on its body
(and so on, inward), which Python's call stack holds a few frames a level of (docs/loops.md,
"Nesting")."""

SCAN_DEFAULTS: dict[str, Any] = {"reverse": False, "save": False, "recompute": None,
                                  "checkpoints": None}
"""The params a ``scan`` node may leave out (a node built by hand with ``body`` and ``length``
alone), as its shape rule, its NumPy function and its derivative rules default them: a loop
site (:func:`circuitgrad.transforms.scalarize.loop_sites`, what ``to_tape`` and ``to_c``
read) holds every one."""

RULES: dict[str, Callable[..., Any]] = {}
"""``"vjp"`` and ``"jvp"``: the derivative rules of ``scan``, registered by
:mod:`circuitgrad.transforms.loops`."""


def _size(shape: Shape) -> int:
    return math.prod(shape)


def _plain(value: Any) -> Any:
    """A hashable, printable stand-in of a node's params, for the content key."""
    if isinstance(value, Body):
        return ("body", value.digest)
    if isinstance(value, np.ndarray):
        return ("array", value.shape, value.dtype.str, value.tobytes().hex())
    if isinstance(value, float):
        return ("f", struct.pack("<d", value).hex())
    if isinstance(value, dict):
        return ("dict", tuple((k, _plain(v)) for k, v in sorted(value.items())))
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(_plain(v) for v in value))
    return value


class Body:
    """A loop's body: a circuit whose inputs are ``carries`` carry leaves, then ``xs`` x
    leaves, then the closures, and whose outputs are the new carry leaves (each of its carry
    input's shape), then the y leaves. Frozen; equal (and hashed) by content.

        >>> import circuitgrad as cg
        >>> body = Body(cg.trace(lambda s, x: (s * 2, s + x)), carries=1, xs=1)
        >>> body.closures, body.ys, body.size, body.depth
        (0, 1, 2, 1)

    ``depth`` is 1, plus the deepest depth of the bodies of the loops in it; a body deeper
    than :data:`MAX_NESTING` is refused.
    """

    __slots__ = ("circuit", "carries", "xs", "digest", "depth", "_function")

    def __init__(self, circuit: Any, carries: int, xs: int):
        n_in, n_out = len(circuit.inputs), len(circuit.outputs)
        if not (0 <= carries <= n_out and 0 <= xs and carries + xs <= n_in):
            raise CircuitError(f"scan: a body of {n_in} inputs and {n_out} outputs cannot "
                               f"have {carries} carries and {xs} sequences")
        ins = [circuit.shape(i) for i in circuit.input_ids]
        outs = [circuit.shape(i) for i in circuit.output_ids]
        for k in range(carries):
            if ins[k] != outs[k]:
                raise ShapeError(f"scan: the body's carry {circuit.outputs[k]!r} has shape "
                                 f"{outs[k]} after a step but {ins[k]} before it (a carry "
                                 "keeps its shape)")
        circuit.validate()  # (so a loop's node is valid where its body is: checked once, here)
        self.depth = 1 + max((p.depth for op, params in zip(circuit.columns.ops,
                                                             circuit.columns.params)
                              if op in LOOPS for p in (params["body"], params.get("recompute"))
                              if isinstance(p, Body)), default=0)
        if self.depth > MAX_NESTING:
            raise CircuitError(f"scan: loops nested {self.depth} levels deep (a loop in a "
                               f"body in a loop ...: this body, counted from the innermost), "
                               f"past the limit of {MAX_NESTING} levels (circuitgrad.primitives"
                               ".loops.MAX_NESTING, docs/loops.md): unroll the innermost loops "
                               "or fold levels into one body")
        self.circuit, self.carries, self.xs = circuit, carries, xs
        key = (carries, xs, tuple(ins), tuple(circuit.input_ids), tuple(circuit.output_ids),
               tuple((op, args, _plain(params) if op != "input" else None, shape)
                     for _, op, args, params, shape in circuit.records()))
        self.digest = hashlib.sha256(repr(key).encode()).hexdigest()
        self._function: Callable[..., tuple] | None = None

    @property
    def closures(self) -> int:
        """The number of closure inputs (values from outside the loop)."""
        return len(self.circuit.inputs) - self.carries - self.xs

    @property
    def ys(self) -> int:
        """The number of y outputs (stacked over the steps)."""
        return len(self.circuit.outputs) - self.carries

    @property
    def size(self) -> int:
        """The body circuit's size."""
        return self.circuit.size

    def shapes(self) -> tuple[list[Shape], list[Shape], list[Shape], list[Shape]]:
        """The point shapes of the carry, x, closure and y leaves."""
        c, k, m = self.circuit, self.carries, self.xs
        ins = [c.shape(i) for i in c.input_ids]
        outs = [c.shape(i) for i in c.output_ids]
        return ins[:k], ins[k:k + m], ins[k + m:], outs[k:]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Body) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __lt__(self, other: "Body") -> bool:  # (params keys sort: a stable order)
        return self.digest < other.digest

    def __repr__(self) -> str:
        return (f"<Body size={self.size} carries={self.carries} xs={self.xs} "
                f"closures={self.closures} ys={self.ys}>")

    def __reduce__(self):
        return (Body, (self.circuit, self.carries, self.xs))

    @property
    def function(self) -> Callable[..., tuple]:
        """The body as a NumPy function of its inputs returning the tuple of its outputs,
        compiled once from its nodes' templates (straight-line code, as ``to_numpy``)."""
        if self._function is None:
            self._function = _compile_body(self.circuit)
        return self._function


def _literal(value: float) -> str:
    if math.isnan(value):
        return "xp.nan"
    if math.isinf(value):
        return "xp.inf" if value > 0 else "(-xp.inf)"
    return f"({value!r})"


TABLE: dict[str, Primitive] = {}
"""The primitive table (:data:`circuitgrad.primitives.PRIMITIVES`, which holds this module's
record and binds itself here), whose templates a body's code is made from."""


def _compile_body(c: Any) -> Callable[..., tuple]:
    names: list[str] = [""] * len(c)
    constants: dict[str, Any] = {}
    runners = Runners()  # (a loop inside the body: names scan0 ..., no clash with a/v/_k)
    for k, i in enumerate(c.input_ids):
        names[i] = f"a{k}"
    lines = [f"def body({', '.join(names[i] for i in c.input_ids)}):"]
    for i, op, args, params, shape in c.records():
        if op == "input":
            continue
        if op == "const":
            if shape:
                names[i] = f"_k{i}"
                constants[names[i]] = params
            else:
                names[i] = _literal(float(params))
            continue
        names[i] = f"v{i}"
        arg_names, shapes = [names[a] for a in args], [c.shape(a) for a in args]
        if op in LOOPS:
            code = runners.call(arg_names, params, shapes)
            lines += [f"    # {text}" for text in runners.news()]
        else:
            code = TABLE[op].code(arg_names, params or {}, shapes,
                                  [c.op(a) != "const" for a in args])
        lines.append(f"    {names[i]} = {code}")
    lines.append(f"    return ({''.join(names[i] + ', ' for i in c.output_ids)})")
    # The code is made from the primitive table's templates; no user text is in it.
    source = "\n".join(lines)
    namespace: dict[str, Any] = {**NAMESPACE, **constants, **runners.namespace}
    exec(compile(source, "<circuitgrad scan body>", "exec"), namespace)  # noqa: S102
    namespace["body"].source = source
    namespace["body"].constants = constants
    namespace["body"].runners = runners.namespace
    return namespace["body"]


_BOUND: dict[tuple, Callable[..., tuple]] = {}
_BOUND_LIMIT = 256
"""The most entries each cache of bodies keeps (:func:`_body_on`'s bound bodies, the adjoint
and tangent bodies of :mod:`circuitgrad.transforms.loops`): the oldest are dropped and made
again when next needed, so a long process making many loops does not grow them without end."""


def remember(cache: dict, key: Any, value: Any) -> Any:
    """``cache[key] = value``, dropping the oldest entry where the cache holds
    :data:`_BOUND_LIMIT` already; returns ``value``.

        >>> cache = {}
        >>> [remember(cache, k, k * k) for k in range(300)][-1], len(cache), min(cache)
        (89401, 256, 44)
    """
    if key not in cache and len(cache) >= _BOUND_LIMIT:
        del cache[next(iter(cache))]
    cache[key] = value
    return value


def _body_on(body: Body, xp: Any, device: Any) -> Callable[..., tuple]:
    """The body's code (the source of :attr:`Body.function`) bound to array namespace ``xp``
    (:func:`circuitgrad.primitives.arrays.namespace`), its array constants moved to
    ``device``: compiled once per body, namespace and device. Without a device (values
    traced by ``jax.jit``) it is compiled for each loop call and not kept: its constants are
    made inside the trace, and a kept one would leak a tracer into the next trace."""
    from . import arrays

    key = (body.digest, xp, str(device))
    fn = _BOUND.get(key)
    if fn is None:
        numpy_fn = body.function
        namespace = {**NAMESPACE, **arrays.namespace(xp), **numpy_fn.runners}
        for name, value in numpy_fn.constants.items():
            namespace[name] = xp.asarray(value, device=device, copy=True)
        # The same source as the NumPy function's: made from the primitive table's templates.
        exec(compile(numpy_fn.source, "<circuitgrad scan body>", "exec"), namespace)  # noqa: S102
        fn = namespace["body"]
        if device is not None:
            remember(_BOUND, key, fn)
    return fn


def layout(body: Body, length: int, save: bool) -> list[tuple[int, Shape]]:
    """``(offset, shape)`` of each leaf of the packed result: the final carries, the stacked
    ys, and where ``save`` the stacked carries before each step.

        >>> import circuitgrad as cg
        >>> step = cg.trace(lambda s, x: (s * x, s), shapes={"s": 2, "x": 2})
        >>> body = Body(step, carries=1, xs=1)
        >>> layout(body, 3, save=True)
        [(0, (2,)), (2, (3, 2)), (8, (3, 2))]
    """
    carries, _, _, ys = body.shapes()
    shapes = list(carries) + [(length,) + s for s in ys]
    if save:
        shapes += [(length,) + s for s in carries]
    out, offset = [], 0
    for s in shapes:
        out.append((offset, s))
        offset += _size(s)
    return out


def leaf(b: Any, packed: Any, offset: int, shape: Shape) -> Any:
    """The leaf of ``shape`` at ``offset`` of a packed loop result (a ``getitem``, and a
    ``reshape`` for a leaf of two axes or more), built with builder ``b``."""
    node, size = packed, _size(shape)
    if not shape:
        return b.apply("getitem", node, index=(offset,))
    part = b.apply("getitem", node, index=((offset, offset + size, 1),))
    return part if len(shape) == 1 else b.apply("reshape", part, shape=shape)


def packed_size(body: Body, length: int, save: bool) -> int:
    """The length of the packed result."""
    return sum(_size(s) for _, s in layout(body, length, save))


def _scan_shape(*shapes: Shape, body: Body, length: int, reverse: bool = False,
                save: bool = False, recompute: Body | None = None,
                checkpoints: int | None = None) -> Shape:
    if not isinstance(body, Body):
        raise CircuitError(f"scan: the body must be a Body, got {type(body).__name__}")
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ShapeError(f"scan: the trip count must be an integer >= 0, got {length!r}")
    carries, xs, closures, _ = body.shapes()
    want = list(carries) + [(length,) + s for s in xs] + list(closures)
    if recompute is not None:  # (a checkpointed adjoint loop: the initial carries, not all)
        _check_checkpoints(checkpoints)
        want[body.carries:body.carries + recompute.carries] = recompute.shapes()[0]
    if len(shapes) != len(want):
        raise CircuitError(f"scan: the body takes {len(want)} arguments ({body.carries} carries, "
                           f"{body.xs} sequences, {body.closures} closures), got {len(shapes)}")
    for k, (have, need) in enumerate(zip(shapes, want)):
        if tuple(have) != need:
            part = ("carry" if k < body.carries else "sequence"
                    if k < body.carries + body.xs else "closure")
            raise ShapeError(f"scan: argument {k} (a {part}) has shape {tuple(have)}, the "
                             f"body takes {need}" + (f" ({length} steps)" if part == "sequence"
                                                      else ""))
    return (packed_size(body, length, save),)


def _check_checkpoints(checkpoints: Any) -> None:
    if isinstance(checkpoints, bool) or not isinstance(checkpoints, int) or checkpoints < 1:
        raise CircuitError(f"scan: checkpoints must be an integer >= 1, got {checkpoints!r}")


def _batch_of(value: Any, rank: int) -> tuple[int, ...]:
    shape = tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
    return shape[:len(shape) - rank]


def _stacked(values: list[Any], shape: Shape, length: int) -> Any:
    """Points of ``shape`` (with batch axes) stacked into points of ``(length,) + shape``."""
    if not values:
        return np.zeros((length,) + shape)
    batch = np.broadcast_shapes(*(_batch_of(v, len(shape)) for v in values))
    return np.stack([np.broadcast_to(v, batch + shape) for v in values], axis=-len(shape) - 1)


def _scan_function(shapes: Sequence[Shape], body: Body, length: int, reverse: bool = False,
                   save: bool = False, recompute: Body | None = None,
                   checkpoints: int | None = None) -> Callable[..., Any]:
    """The node as a NumPy function of its arguments (with batch axes) giving the packed
    result: the body's compiled code called ``length`` times in a Python loop; on arrays
    of another library, that library's loop (:meth:`_Library.scan`)."""
    if recompute is not None:
        return _checkpointed_function(body, length, reverse, recompute, checkpoints or 1)
    k, m = body.carries, body.xs
    carry_shapes, x_shapes, _, y_shapes = body.shapes()
    x_ranks = [len(s) for s in x_shapes]
    q = body.ys
    steps = range(length - 1, -1, -1) if reverse else range(length)

    def run(*values: Any) -> Any:
        lib = _Library.of(values)
        if lib is not None:
            return lib.scan(body, length, reverse, save, lib.values(values))
        values = _numpy_values(values)
        fn = body.function
        carry = list(values[:k])
        xs = values[k:k + m]
        closures = list(values[k + m:])
        ys: list[list[Any]] = [[None] * length for _ in range(q)]
        saved: list[list[Any]] = [[None] * length for _ in range(k)] if save else []
        for t in steps:
            if save:
                for j in range(k):
                    saved[j][t] = carry[j]
            out = fn(*carry, *[x[(..., t) + (slice(None),) * r] for x, r in zip(xs, x_ranks)],
                     *closures)
            carry = list(out[:k])
            for j in range(q):
                ys[j][t] = out[k + j]
        parts = [(_stacked(saved[j], carry_shapes[j], length), (length,) + carry_shapes[j])
                 for j in range(len(saved))]
        return _packed(carry, carry_shapes, ys, y_shapes, length, parts)

    return run


class _Library:
    """The array namespace ``xp`` (and ``device``) of a loop's arguments of another library
    than NumPy, and the loop's steps in its ops: a Python loop over the steps
    (:meth:`scan`), but for JAX, whose loop is one ``lax.scan`` (:class:`_Jax`)."""

    def __init__(self, xp: Any, device: Any):
        self.xp, self.device = xp, device

    @staticmethod
    def of(values: tuple) -> "_Library | None":
        """The library of ``values``' arrays; None where all are NumPy arrays or numbers."""
        foreign = [v for v in values if not isinstance(v, (np.ndarray, np.generic, float, int))]
        if not foreign:
            return None
        import array_api_compat

        try:
            xp = array_api_compat.array_namespace(*foreign)
        except TypeError:
            kinds = ", ".join(sorted({f"{type(v).__module__}.{type(v).__name__}"
                                      for v in foreign}))
            raise CircuitError(f"scan: the arguments are not arrays of one array library "
                               f"({kinds}); give them all as arrays of one library") from None
        from . import arrays

        try:
            device = arrays.device(foreign[0])
        except Exception:  # a traced value (jax.jit) has no device yet
            device = None
        if array_api_compat.is_jax_namespace(xp):
            return _Jax(xp, device)
        return _Library(xp, device)

    def values(self, values: Sequence[Any]) -> tuple:
        """The numbers and NumPy arrays among ``values`` as float64 arrays of the library."""
        xp = self.xp
        return tuple(xp.asarray(v, dtype=xp.float64, device=self.device)
                     if isinstance(v, (np.ndarray, np.generic, float, int)) else v
                     for v in values)

    arrays = values  # (a body's outputs: a constant output is a Python float)

    def body(self, body: Body) -> Callable[..., tuple]:
        return _body_on(body, self.xp, self.device)

    def scan(self, body: Body, length: int, reverse: bool, save: bool, values: tuple) -> Any:
        """The packed result of ``length`` steps of ``body`` from the arguments ``values``
        (arrays of the library): the body's code in a Python loop, each step's xs sliced with
        the library's indexing, the ys and saved carries stacked with ``xp.stack`` and the
        result joined with ``xp.concat`` (nothing written in place)."""
        fn = self.body(body)
        k, m, q = body.carries, body.xs, body.ys
        carry_shapes, x_shapes, _, y_shapes = body.shapes()
        carry = list(values[:k])
        xs = values[k:k + m]
        closures = values[k + m:]
        ys: list[list[Any]] = [[None] * length for _ in range(q)]
        saved: list[list[Any]] = [[None] * length for _ in range(k)] if save else []
        for t in (range(length - 1, -1, -1) if reverse else range(length)):
            for j in range(len(saved)):
                saved[j][t] = carry[j]
            out = self.arrays(fn(*carry, *[x[(..., t) + (slice(None),) * len(r)]
                                          for x, r in zip(xs, x_shapes)], *closures))
            carry = list(out[:k])
            for j in range(q):
                ys[j][t] = out[k + j]
        return self.packed(
            [(v, s) for v, s in zip(carry, carry_shapes)]
            + [(self.stacked(ys[j], y_shapes[j], length), (length,) + y_shapes[j])
               for j in range(q)]
            + [(self.stacked(saved[j], carry_shapes[j], length), (length,) + carry_shapes[j])
               for j in range(len(saved))])

    def stacked(self, values: list[Any], shape: Shape, length: int) -> Any:
        xp = self.xp
        if not values:
            return xp.zeros((length,) + shape, dtype=xp.float64, device=self.device)
        batch = np.broadcast_shapes(*(_batch_of(v, len(shape)) for v in values))
        return xp.stack([xp.broadcast_to(v, batch + shape) for v in values],
                        axis=-len(shape) - 1)

    def packed(self, parts: list[tuple[Any, Shape]]) -> Any:
        """The packed result of its ``(value, point shape)`` parts, in order: each flattened
        (with the batch axes of all of them), joined."""
        from . import arrays

        xp = self.xp
        if not parts:
            return xp.zeros(0, dtype=xp.float64, device=self.device)
        batch = np.broadcast_shapes(*(_batch_of(v, len(s)) for v, s in parts))
        reshape = arrays.namespace(xp)["_cg"].reshape  # (Dask's: block by block)
        # (empty parts left out: XLA's compiler aborts the process on a slice of a
        # concatenation's empty operand under jax.jit, the leaf read of a loop of no steps)
        flat = [reshape(xp.broadcast_to(v, batch + s), (_size(s),), len(s)) for v, s in parts
                if _size(s)]
        if not flat:
            return xp.zeros(batch + (0,), dtype=xp.float64, device=self.device)
        return xp.concat(flat, axis=-1)


_JITTED: dict[tuple, Callable[..., Any]] = {}
""":class:`_Jax`'s loops on concrete arrays, each ``jax.jit`` of its ``lax.scan``, by body,
trip count, direction, ``save`` and device (bounded by :func:`remember`)."""


class _Jax(_Library):
    """JAX's loop: one ``lax.scan`` over the body's code (JAX traces the body once, so a loop
    under ``jax.jit`` is one ``scan`` of its jaxpr, its compile time the body's, whatever the
    trip count). The carries keep one shape from step to step (``lax.scan``'s carry is of a
    fixed shape): each is broadcast to the batch axes of all the arguments. The step axis of
    a sequence, in front of its point axes and behind its batch axes, is moved to the front
    for ``lax.scan``, and the stacked ys and carries moved back. On concrete arrays the loop
    is ``jax.jit`` of it, made once per body, trip count, direction and device
    (:data:`_JITTED`): ``lax.scan`` called eagerly would trace and compile it at each call."""

    def scan(self, body: Body, length: int, reverse: bool, save: bool, values: tuple) -> Any:
        fn = self.body(body)  # (bound outside the jit: its constants are no tracers)
        if self.device is None:  # values traced by jax.jit (or inside another lax.scan)
            return self._scan(fn, body, length, reverse, save, values)
        import jax

        key = (body.digest, length, reverse, save, str(self.device))
        run = _JITTED.get(key)
        if run is None:
            run = remember(_JITTED, key, jax.jit(
                lambda *vs: self._scan(fn, body, length, reverse, save, vs)))
        return run(*values)

    def _scan(self, fn: Callable[..., tuple], body: Body, length: int, reverse: bool,
              save: bool, values: tuple) -> Any:
        from jax import lax

        xp = self.xp
        k, m = body.carries, body.xs
        carry_shapes, x_shapes, closure_shapes, y_shapes = body.shapes()
        closures = values[k + m:]
        ranks = ([len(s) for s in carry_shapes] + [len(s) + 1 for s in x_shapes]
                 + [len(s) for s in closure_shapes])
        batch = np.broadcast_shapes(*(_batch_of(v, r) for v, r in zip(values, ranks)))

        def carried(vs: Any) -> tuple:
            return tuple(xp.broadcast_to(v, batch + s) for v, s in zip(vs, carry_shapes))

        def step(carry: tuple, xs: tuple) -> tuple:
            out = self.arrays(fn(*carry, *xs, *closures))
            return carried(out[:k]), tuple(out[k:]) + (carry if save else ())

        xs = tuple(xp.moveaxis(x, -len(s) - 1, 0) for x, s in zip(values[k:k + m], x_shapes))
        carry, stacked = lax.scan(step, carried(values[:k]), xs, length=length,
                                  reverse=reverse)
        shapes = list(y_shapes) + (list(carry_shapes) if save else [])
        return self.packed(
            [(v, s) for v, s in zip(carry, carry_shapes)]
            + [(xp.moveaxis(v, 0, -len(s) - 1), (length,) + s)
               for v, s in zip(stacked, shapes)])


def _numpy_values(values: tuple) -> tuple:
    # (NumPy arrays and numbers only: others take the _Library path.) A scalar constant
    # comes as a Python float; the body's code may index it: x[..., None].
    return tuple(np.float64(v) if type(v) in (float, int) else v for v in values)


def _packed(carry: list, carry_shapes: list, ys: list, y_shapes: list, length: int,
            more: list) -> Any:
    """The packed result: the carries, the stacked ys, then ``more`` (value, shape) parts."""
    parts = [(v, s) for v, s in zip(carry, carry_shapes)]
    parts += [(_stacked(ys[j], y_shapes[j], length), (length,) + y_shapes[j])
              for j in range(len(ys))]
    parts += more
    if not parts:
        return np.zeros(0)
    batch = np.broadcast_shapes(*(_batch_of(v, len(s)) for v, s in parts))
    flat = [np.reshape(np.broadcast_to(v, batch + s), batch + (-1,)) for v, s in parts]
    return np.concatenate(flat, axis=-1)


STATS = {"forward_steps": 0, "adjoint_steps": 0, "most_checkpoints": 0}
"""What the checkpointed adjoint loops have done so far in this process (tests and benchmarks
read it): the forward steps they recomputed, their adjoint steps, and the most carries one of
them held at once (its checkpoints, the initial carry included)."""


def revolve_split(steps: int, free: int) -> int:
    """Where the binomial schedule (Griewank's *revolve*) puts the next checkpoint when
    ``steps`` steps are to be reversed from a stored carry with ``free`` more checkpoints:
    that many steps on. With ``c = free + 1`` checkpoints and ``r`` the least repetition
    number with ``β(c, r) = C(c + r, c) ≥ steps``, it is ``max(β(c, r − 2), steps − β(c − 1,
    r))``: the schedule then recomputes the fewest steps, ``r·steps − β(c + 1, r − 1)``
    (:func:`revolve_cost`).

        >>> revolve_split(10, 1), revolve_split(10, 2)
        (6, 4)
    """
    c = free + 1
    r = 0
    while math.comb(c + r, c) < steps:
        r += 1
    low = math.comb(c + r - 2, c) if r >= 2 else 1
    return max(1, low, steps - math.comb(c - 1 + r, c - 1))


def revolve_cost(steps: int, free: int) -> int:
    """The forward steps the binomial schedule recomputes to reverse ``steps`` steps from a
    stored carry with ``free`` more checkpoints (Griewank and Walther, *Algorithm 799:
    revolve*, 2000): ``r·steps − β(c + 1, r − 1)``, ``c = free + 1``, the least of any schedule.

        >>> revolve_cost(10, 1), revolve_cost(10, 2), revolve_cost(10, 9)
        (20, 15, 9)
    """
    if steps <= 1:
        return 0
    c = free + 1
    r = 0
    while math.comb(c + r, c) < steps:
        r += 1
    return r * steps - math.comb(c + r, c + 1)


def revolve(length: int, checkpoints: int, init: Any,
            advance: Callable[[Any, int, int], Any],
            adjoint_step: Callable[[int, Any], None]) -> None:
    """Reverse the steps ``0 .. length - 1`` of a loop by the binomial schedule from its
    initial carry ``init``, holding at most ``checkpoints`` carries beside it: an explicit
    stack of tasks (reverse steps ``[a, b)`` from the carry before step ``a``, with ``free``
    checkpoints left; the right part, done first, pushed last). ``advance(state, start,
    stop)`` gives the carry before step ``stop`` from ``state``, the one before ``start``;
    ``adjoint_step(p, state)`` runs the adjoint of step ``p`` from the carry before it, in
    the order ``length - 1`` down to 0. Counted in :data:`STATS`. (The schedule of
    ``_checkpointed_function`` and ``to_tape``; ``to_c`` writes it in C.)

        >>> done = []
        >>> revolve(4, 1, 0, lambda state, start, stop: state + stop - start,
        ...         lambda p, state: done.append((p, state)))
        >>> done  # (the carry before step p is p)
        [(3, 3), (2, 2), (1, 1), (0, 0)]
    """
    tasks = [(0, length, init, checkpoints)] if length else []
    while tasks:
        held = len({id(task[2]) for task in tasks})
        STATS["most_checkpoints"] = max(STATS["most_checkpoints"], held)
        a, b, state, free = tasks.pop()
        if b - a == 1:
            adjoint_step(a, state)
            STATS["adjoint_steps"] += 1
        elif free == 0:
            for p in range(b - 1, a - 1, -1):
                at = advance(state, a, p)
                STATS["forward_steps"] += p - a
                adjoint_step(p, at)
                STATS["adjoint_steps"] += 1
        else:
            middle = a + revolve_split(b - a, free)
            tasks.append((a, middle, state, free))
            tasks.append((middle, b, advance(state, a, middle), free - 1))
            STATS["forward_steps"] += middle - a


def _checkpointed_function(body: Body, length: int, reverse: bool, recompute: Body,
                           checkpoints: int) -> Callable[..., Any]:
    """A checkpointed adjoint loop: ``body`` (the adjoint body) over the steps of the forward
    loop ``recompute`` in reverse, the carries it needs recomputed from the initial carry
    (its arguments hold it where an adjoint loop holds the saved carries) and at most
    ``checkpoints`` stored ones, by the binomial schedule (:func:`revolve_split`)."""
    ka, k, m = body.carries, recompute.carries, recompute.xs
    xa = body.xs
    carry_shapes, x_shapes, _, y_shapes = body.shapes()
    ranks = [len(s) for s in x_shapes]
    # The forward order of the steps: the opposite of this loop's own.
    order = list(range(length)) if reverse else list(range(length - 1, -1, -1))

    def run(*values: Any) -> Any:
        lib = _Library.of(values)
        if lib is None:
            values = _numpy_values(values)
            forward, adjoint = recompute.function, body.function
        else:
            values = lib.values(values)
            forward, adjoint = lib.body(recompute), lib.body(body)
        carry = list(values[:ka])
        init = tuple(values[ka:ka + k])
        seqs = values[ka + k:ka + xa]  # the forward xs, the ys' adjoints ...
        closures = values[ka + xa:]
        ys: list[list[Any]] = [[None] * length for _ in range(body.ys)]

        def sliced(t: int) -> list:
            return [x[(..., t) + (slice(None),) * r] for x, r in zip(seqs, ranks[k:])]

        def advance(state: tuple, start: int, stop: int) -> tuple:
            for p in range(start, stop):
                state = tuple(forward(*state, *sliced(order[p])[:m], *closures)[:k])
                if lib is not None:
                    state = lib.arrays(state)
            return state

        def adjoint_step(p: int, state: tuple) -> None:
            t = order[p]
            out = adjoint(*carry, *state, *sliced(t), *closures)
            if lib is not None:
                out = lib.arrays(out)
            carry[:] = out[:ka]
            for j in range(body.ys):
                ys[j][t] = out[ka + j]

        revolve(length, checkpoints, init, advance, adjoint_step)
        if lib is not None:
            return lib.packed([(v, s) for v, s in zip(carry, carry_shapes[:ka])]
                              + [(lib.stacked(ys[j], y_shapes[j], length), (length,) + y_shapes[j])
                                 for j in range(body.ys)])
        return _packed(carry, carry_shapes[:ka], ys, y_shapes, length, [])

    return run


def _scan_template(*args: str, shapes: Sequence[Shape], body: Body, length: int,
                   reverse: bool = False, save: bool = False, recompute: Body | None = None,
                   checkpoints: int | None = None, runner: str | None = None) -> str:
    if runner is None:
        raise CircuitError("scan: a loop's code calls its runner by the name the lowering "
                           "bound it to in the generated function's namespace (loops.Runners)")
    return f"{runner}({', '.join(args)})"


class Runners:
    """The loops one generated function calls: each loop's runner (:func:`_scan_function`)
    bound to a readable name of that function's namespace, ``scan0``, ``scan1`` ..., the
    same loop (body, trip count, direction, argument shapes) one name. The names live in
    :attr:`namespace`, which the lowering adds to the function's globals, so they go when
    the function goes: nothing is kept process-wide but the bounded caches of bodies.
    ``taken``: names the code uses already (its inputs and nodes), which a runner avoids.

        >>> import circuitgrad as cg
        >>> c = cg.trace(lambda x: cg.scan(lambda s, _: (s * x, None), 1.0, length=3)[0])
        >>> [(_, _, args, params, _)] = [r for r in c.records() if r[1] == "scan"]
        >>> runners = Runners({"x"})
        >>> runners.call(["1.0", "x"], params, [c.shape(a) for a in args])
        'scan0(1.0, x)'
        >>> runners.describe("scan0")
        'scan0: 3 steps of body 0 (1 node: 1 carry, 0 sequences, 1 closure)'
        >>> float(runners.namespace["scan0"](1.0, 2.0)[0])
        8.0
    """

    def __init__(self, taken: set[str] | frozenset[str] = frozenset()):
        self.taken = taken
        self.namespace: dict[str, Callable[..., Any]] = {}
        self._names: dict[tuple, str] = {}
        self._about: dict[str, str] = {}
        self._bodies: dict[Body, int] = {}  # each distinct body's number, for the comments
        self._new: list[str] = []

    def call(self, args: Sequence[str], params: dict, shapes: Sequence[Shape]) -> str:
        """The code of a ``scan`` node with these params calling arguments ``args`` (of
        point shapes ``shapes``): its runner's call, the runner bound on first use."""
        shapes = tuple(tuple(s) for s in shapes)
        params = {k: v for k, v in params.items() if k != "runner"}
        key = (shapes, tuple(sorted(params.items(), key=lambda kv: kv[0])))
        name = self._names.get(key)
        if name is None:
            number = len(self._names)
            name = f"scan{number}"
            while name in self.taken or name in self.namespace:
                number += 1
                name = f"scan{number}"
            self._names[key] = name
            self.namespace[name] = _scan_function(shapes, **params)
            self._about[name] = self._description(name, **params)
            self._new.append(name)
        return TABLE["scan"].code(list(args), {**params, "runner": name}, shapes)

    def describe(self, name: str) -> str:
        """One line saying what runner ``name`` runs: its trip count and its body."""
        return self._about[name]

    def news(self) -> list[str]:
        """The descriptions of the runners bound since the last call, in lines of at most 90
        characters: the comment the code writes above a runner's first call."""
        new, self._new = self._new, []
        return [line for name in new
                for line in textwrap.wrap(self._about[name], 90, subsequent_indent="  ")]

    def _body(self, body: Body) -> str:
        if body in self._bodies:
            return f"body {self._bodies[body]}"
        number = self._bodies[body] = len(self._bodies)
        node = "node" if body.size == 1 else "nodes"
        return (f"body {number} ({body.size} {node}: {_count(body.carries, 'carry', 'carries')}, "
                f"{_count(body.xs, 'sequence', 'sequences')}, {_count(body.closures, 'closure', 'closures')})")

    def _description(self, name: str, body: Body, length: int, reverse: bool = False,
                     save: bool = False, recompute: Body | None = None,
                     checkpoints: int | None = None) -> str:
        text = f"{name}: {length} steps of {self._body(body)}"
        if recompute is not None:
            return (f"{text}, last step first, the carries of {self._body(recompute)} "
                    f"recomputed from {_count(checkpoints or 1, 'checkpoint', 'checkpoints')}")
        if reverse:
            text += ", last step first"
        if save:
            text += ", keeping the carry before each step"
        return text


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _scan_label(shapes: Any = None, body: Body | None = None, length: int = 0,
                reverse: bool = False, save: bool = False, recompute: Body | None = None,
                checkpoints: int | None = None) -> str:
    steps = f"{length} steps" + (", reversed" if reverse else "")
    if recompute is not None:
        steps += f", {checkpoints} checkpoints"
    return f"scan[{steps}; body {body.size if body is not None else '?'} nodes]"


def _rule(kind: str) -> Callable[..., Any]:
    def rule(*args: Any, **params: Any) -> Any:
        fn = RULES.get(kind)
        if fn is None:
            raise CircuitError(f"scan: the {kind} rule is not loaded (import "
                               "circuitgrad.transforms.loops)")
        return fn(*args, **params)

    rule.__name__ = f"scan_{kind}"
    return rule


def _refuse_scalar(b: Any, prim: Any, args: Any, params: Any, shape: Any) -> Any:
    raise CircuitError("scalarize: scan (a loop) has no scalar expansion; evaluate it with "
                       "cg.to_numpy, which runs the body in a loop, cg.to_c, which writes "
                       "the loop in C, or cg.to_tape (to_sympy refuses it too)")


RECORDS: list[Primitive] = [
    Primitive("scan", 1, _scan_template, "scan", params=("body", "length", "reverse", "save",
                                                          "recompute", "checkpoints"),
              shape=_scan_shape, vjp=_rule("vjp"), jvp=_rule("jvp"), label_of=_scan_label,
              internal=True, variadic=True, function=_scan_function,
              sparsity="dense", scalar=_refuse_scalar,
              c_refusal="a loop (scan) is lowered by its loop site (scalarize(c, "
                        "loops=True)), not as one C statement"),
]
