"""The NumPy lowering: a circuit becomes readable Python source and a fast callable.

One assignment per node, in topological order, from each primitive's template; names from
the program (``z``, ``a``), adjoints as ``z_bar``, others ``v12``. The array namespace is
the global ``xp`` (the helpers the array API standard lacks ``_sp``, joins and scatters
``_cg``), and user names that could clash with them (or are not plain identifiers) are
renamed, so an input called ``xp``, ``np``, ``exp`` or ``__import__`` is just a variable.

Array libraries: inputs that are NumPy arrays or numbers run the code bound to NumPy (the fast
path); inputs of another array-API library (CuPy, torch, JAX, Dask ...) run the same code bound
to that library's namespace (:func:`circuitgrad.primitives.arrays.namespace`), taken from the
inputs by ``array_api_compat``, and give arrays of that library (docs/gpu_and_clusters.md).

Batches: a circuit's shapes are those of one point; extra leading axes on the inputs are
batch axes, and every node acts on each point's own axes (docs/semantics.md). The generated
code says so: reductions count axes from the end (``axis=-1``), a vector added to a matrix is
aligned as ``b[..., None, :]``, ``W @ x`` of a matrix and a vector is ``_sp.matvec(W, x)``.
Several outputs come back as an :func:`outputs` tuple whose fields are the output names.

Large circuits: CPython compiles generated code at ~10 µs a line, which dominates the build of
circuits of 10⁵ nodes and more. Above ``COMPILE_LIMIT`` nodes the callable therefore runs the
same node list through a small interpreter (the same template-compiled NumPy functions, so
the same bits); ``.source`` is still the equivalent program. Above ``READABLE_LIMIT`` nodes,
values are kept in reused registers ``r0, r1 ...`` so that memory follows the live width of
the circuit, not its size.

    >>> import circuitgrad as cg
    >>> f = cg.to_numpy(cg.parse("sin(x)*y + exp(x)"))
    >>> print(f.source)
    def f(x, y):
        v1 = xp.sin(x)
        v3 = v1 * y
        v4 = xp.exp(x)
        f = v3 + v4
        return f
    >>> round(float(f(x=0.0, y=2.0)), 6)
    1.0
"""

from __future__ import annotations

import functools
import inspect
import keyword
import math
import re
import unicodedata
from typing import Any, Callable, Sequence

import numpy as np

from ..circuit import LEAVES, Circuit, as_circuit, no_gc
from ..errors import CircuitError
from ..primitives import NAMESPACE, PRIMITIVES, arrays, compiled
from ..primitives.loops import LOOPS, Runners
from ..transforms.products import contract_products
from .program import allocate
from .calling import (  # noqa: F401  (assign_inputs ... stay importable from here)
    _MISSING, _foreign, _rebuild, assign_inputs, batch_axes, check_input, common_batch,
    csr_hook, missing_inputs, outputs)

READABLE_LIMIT = 2000
COMPILE_LIMIT = 20000
_GLOBALS = frozenset(NAMESPACE)
_HOIST_AT = 400  # characters of a node's code from which its long integer lists are hoisted
_LONG_LIST = re.compile(r"\[-?\d+(?:, -?\d+){63,}\]")  # 64 integers or more


def _usable(name: str) -> bool:
    """A user's name can be a local of the generated code as it is."""
    return (name.isidentifier() and not keyword.iskeyword(name)
            and unicodedata.normalize("NFKC", name) == name and name not in _GLOBALS
            and not name.startswith(("_k", "_ix")))


def _literal(value: float) -> str:
    if math.isnan(value):
        return "xp.nan"
    if math.isinf(value):
        return "xp.inf" if value > 0 else "(-xp.inf)"
    text = repr(float(value))
    return f"({text})" if text.startswith("-") else text


def _registers(c: Circuit) -> list[int]:
    """A register per node, reusing registers of values no longer needed (live width), by
    the lowerings' one allocator (:func:`circuitgrad.lower.program.allocate`).

    Leaves that hold values before the first node runs (inputs, array constants) get
    registers of their own first, so that no earlier node can overwrite them before their
    last read; an array constant's register is reused after that read. Scalar constants are
    literals in the code: no register (-1).
    """
    n = len(c)
    last = list(range(n))
    node_args = [c.args(i) for i in range(n)]
    for i, args in enumerate(node_args):
        for a in args:
            last[a] = i
    keep = [False] * n
    for i in (*c.output_ids, *c.input_ids):
        keep[i] = True
    reg = [-1] * n
    count = 0
    for i in c.input_ids:
        reg[i], count = count, count + 1
    for i in range(n):
        if c.op(i) == "const":
            if c.shape(i):
                reg[i], count = count, count + 1
            else:
                reg[i], keep[i] = -2, True
    allocate(node_args, last, reg, keep)
    return [-1 if r == -2 else r for r in reg]


def node_code(c: Circuit, i: int, names: list[str]) -> str:
    """The NumPy expression of node ``i`` whose arguments are called ``names``: the table's
    template for the arguments' point shapes (constants carry no batch axes)."""
    args = c.args(i)
    return PRIMITIVES[c.op(i)].code(names, c.params(i) or {}, [c.shape(a) for a in args],
                                    [c.op(a) != "const" for a in args])


class _Names:
    """The name of every node in the generated code."""

    def __init__(self, c: Circuit, registers: bool):
        self.c = c
        self.used: set[str] = set(_GLOBALS)
        self.names: list[str | None] = [None] * len(c)
        self.params: list[str] = []
        for k, (name, i) in enumerate(zip(c.inputs, c.input_ids)):
            local = name if _usable(name) and name not in self.used else f"_in{k}"
            self.used.add(local)
            self.names[i] = local
            self.params.append(local)
        self.constants: dict[str, np.ndarray] = {}
        self.lists: dict[str, np.ndarray] = {}
        # The loops' runners, scan0 ..., bound in this function's namespace (never a node's
        # or an input's name: they are taken first).
        self.runners = Runners(self.used)
        self._readers: list[int] | None = None
        reg = _registers(c) if registers else None
        output_names: dict[int, str] = {}
        for name, i in zip(c.outputs, c.output_ids):
            output_names.setdefault(i, name)
        for i, op, _args, params, shape in c.records():
            if op == "input":
                continue
            if op == "const":
                if shape:
                    self.names[i] = f"_k{len(self.constants)}"
                    self.constants[self.names[i]] = params
                else:
                    self.names[i] = _literal(params)
            elif reg is not None:
                self.names[i] = f"r{reg[i]}"
            else:
                self.names[i] = self.fresh(c.name(i) or output_names.get(i), i)

    def code(self, i: int) -> str:
        """Node ``i``'s expression, its long integer lists (a ``take`` of 10⁵ indices, the
        positions of a write) hoisted into globals ``_ix0 ...``: Python's compile of a
        literal that long takes seconds, a global costs nothing. The same list either way."""
        c = self.c
        if c.op(i) in LOOPS:
            return self.runners.call([self.names[a] for a in c.args(i)], c.params(i),
                                     [c.shape(a) for a in c.args(i)])
        code = self._in_place(i) or node_code(c, i, [self.names[a] for a in c.args(i)])
        if len(code) < _HOIST_AT:
            return code
        # a parameter's own list found by its text: no regex over, and no parse of, 10⁶ numbers
        for value in (self.c.params(i) or {}).values():
            if isinstance(value, tuple) and len(value) >= 64:
                array = np.asarray(value)
                text = repr(list(value))
                if array.ndim == 1 and array.dtype.kind == "i" and text in code:
                    code = code.replace(text, self._hoisted(array))
        return _LONG_LIST.sub(self._hoist, code)

    def _in_place(self, i: int) -> str | None:
        """The record's ``in_place`` form of node ``i`` where its first argument is the
        result of the same op (an array this code made) that no other node reads and no
        output is: then nothing can see the overwrite."""
        c = self.c
        prim = PRIMITIVES[c.op(i)]
        args = c.args(i)
        if prim.in_place is None or not args or c.op(args[0]) != c.op(i):
            return None
        if self._readers is None:
            self._readers = [0] * len(c)
            for k in range(len(c)):
                for a in c.args(k):
                    self._readers[a] += 1
            for k in c.output_ids:
                self._readers[k] += 1
        if self._readers[args[0]] != 1:
            return None
        shapes = [c.shape(a) for a in args]
        return prim.in_place(*[self.names[a] for a in args], shapes=shapes,
                             **(c.params(i) or {}))

    def _hoist(self, match: re.Match) -> str:
        return self._hoisted(np.array([int(v) for v in match.group(0)[1:-1].split(",")]))

    def _hoisted(self, values: np.ndarray) -> str:
        # a read-only intp array: NumPy converts a list of 10⁶ indices on every call (50 ms
        # of a bundle-adjustment Jacobian's 12-sweep evaluation), an array not at all
        name = f"_ix{len(self.lists)}"
        hoisted = np.array(values, dtype=np.intp)
        hoisted.flags.writeable = False
        self.lists[name] = hoisted
        return name

    def fresh(self, wanted: str | None, i: int) -> str:
        base = wanted if wanted and _usable(wanted) else f"v{i}"
        name, k = base, 1
        while name in self.used:
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        return name


def _dead_after(c: Circuit) -> dict[int, list[int]]:
    """For tensor circuits: the arrays that die at each node (freed with ``del``, so the peak
    memory of the generated code is that of the live values, like hand-written backprop)."""
    last: dict[int, int] = {}
    for i in range(len(c)):
        for a in c.args(i):
            last[a] = i
    keep = set(c.output_ids)
    dead: dict[int, list[int]] = {}
    for a, i in sorted(last.items()):
        if a not in keep and c.op(a) not in LEAVES and c.shape(a):
            dead.setdefault(i, []).append(a)
    return dead


def numpy_source(c: Circuit, name: str = "f") -> tuple[str, dict[str, Any], list[str]]:
    """The generated source of ``c``, its globals, and the parameter names."""
    big = len(c) > READABLE_LIMIT
    names = _Names(c, registers=big)
    # The sections of a derivative circuit, by the first node id of each pass's part.
    sections = []
    if c.meta.get("forward_count") is not None:
        sections.append((c.meta["forward_count"],
                         "    # backward: adjoints v_bar = ∂J/∂v (the notes' δ), last node first"))
    if c.meta.get("tangent_count") is not None:
        sections.append((c.meta["tangent_count"],
                         "    # tangent: v_dot = the derivative of v along the direction"))
    sections.sort()
    lines = [f"def {name}({', '.join(names.params)}):"]
    if sections:
        lines.append("    # forward: the values of the nodes")
    dead = _dead_after(c) if not big and any(c.shape(i) for i in range(len(c))) else {}
    for i, op, args, _params, _shape in c.records():
        if op in LEAVES:
            continue
        while sections and i >= sections[0][0]:
            lines.append(sections.pop(0)[1])  # the first node of a part opens its section
        code = names.code(i)
        lines += [f"    # {text}" for text in names.runners.news()]  # (a loop's first call)
        lines.append(f"    {names.names[i]} = {code}")
        if i in dead:
            lines.append(f"    del {', '.join(names.names[a] for a in dead[i])}")
    returned = [names.names[i] for i in c.output_ids]
    namespace: dict[str, Any] = {**NAMESPACE, **names.constants, **names.lists,
                                 **names.runners.namespace}
    if len(returned) == 1:
        lines.append(f"    return {returned[0]}")
    else:
        # Each returned value named by its output: ∂J/∂b may be the node z_bar.
        Outputs = outputs(c.outputs)
        namespace["_Outputs"] = Outputs
        fields = [f"{field}={value}" for field, value in zip(Outputs._fields, returned)]
        line = f"    return _Outputs({', '.join(fields)})"
        if len(line) <= 100:
            lines.append(line)
        else:  # one output a line
            lines += ["    return _Outputs("] + [f"        {f}," for f in fields] + ["    )"]
    return "\n".join(lines), namespace, names.params


def _broadcast_shape(have: tuple[int, ...], want: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape ``have`` and ``want`` broadcast to, None where they do not."""
    try:
        return np.broadcast_shapes(have, want)
    except ValueError:
        return None


class NumpyFunction:
    """A circuit lowered to NumPy: call it with inputs by position or keyword.

    Each input is one point of its declared shape, or a batch of points: an array whose last
    axes are the declared shape and whose leading axes are batch axes (inputs with different
    batch shapes broadcast). Outputs carry the batch axes in front of their own shape. One
    output comes back as it is; several as a named tuple (``out.J``, ``out.dJ_dw``) that
    unpacks and indexes like a tuple. Inputs that are arrays of another array-API library
    (CuPy, torch, JAX, Dask ...) give arrays of that library, computed by the same code
    (numbers and NumPy arrays among them are moved there); ``jax.jit`` of the function works.

    Attributes:
        source: the generated Python source.
        inputs, outputs: names, as in the circuit.
        circuit: the circuit it was made from.

    >>> import numpy as np, circuitgrad as cg
    >>> f = cg.to_numpy(cg.parse("x * y"))
    >>> f(np.array([1.0, 2.0]), 3.0)
    array([3., 6.])
    >>> g = cg.to_numpy(cg.grad(cg.parse("J = sum(v * v)", shapes={"v": (3,)})))
    >>> out = g(v=np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]]))  # two points
    >>> out.J.tolist(), out.dJ_dv.shape
    ([14.0, 1.0], (2, 3))
    """

    def __init__(self, circuit: Circuit, name: str = "f", mode: str = "auto", csr: bool = True,
                 contract: bool = True):
        # contract=False: the circuit's own nodes, no einsum for a sum of a product (a guard's
        # circuit recomputes the trace's values, which float() guards hold bit for bit)
        self._contract = contract
        self._contracted: Circuit | None = None  # (what the code computes: _evaluated)
        if mode not in ("auto", "compile", "interpret"):
            raise CircuitError(f"to_numpy: mode must be 'auto', 'compile' or 'interpret', "
                               f"got {mode!r}")
        self.circuit = circuit
        self.inputs = circuit.inputs
        self.outputs = circuit.outputs
        self._name = name
        self._mode = mode
        self._csr = csr_hook(circuit, csr)  # sparse matrix outputs: csr.py
        self._input_shapes = [circuit.shape(i) for i in circuit.input_ids]
        self._output_shapes = [circuit.shape(i) for i in circuit.output_ids]
        self._Outputs = outputs(circuit.outputs) if len(circuit.outputs) > 1 else None
        # A circuit traced at a point holds where its guards do (circuitgrad/guards.py):
        # they are computed and checked first, on every call.
        self._guards = circuit.meta.get("guards")
        if self._guards is not None:
            self._guard_run = NumpyFunction(self._guards.circuit, f"{name}_guards",
                                            contract=False)
            self._guard_index = [self.inputs.index(n) for n in self._guards.circuit.inputs]
        self._source: str | None = None
        self._code: Any = None
        self._namespace: dict[str, Any] = {}
        # The same code bound to other array libraries, by (namespace, device).
        self._bound: dict[tuple[Any, Any], Callable[..., Any]] = {}
        if mode == "compile" or (mode == "auto" and len(circuit) <= COMPILE_LIMIT):
            self._compile()
            self._run: Callable[..., Any] = self._bind_code(self._namespace)
        else:
            self._run = _Interpreter(self._evaluated())
        self.__signature__ = inspect.Signature(
            [inspect.Parameter(n if n.isidentifier() and not keyword.iskeyword(n) else f"_{k}",
                               inspect.Parameter.POSITIONAL_OR_KEYWORD)
             for k, n in enumerate(self.inputs)])

    def _evaluated(self) -> Circuit:
        """The circuit the code computes: ``self.circuit`` with its sums of broadcast products
        as einsums (:func:`~circuitgrad.transforms.products.contract_products`: the products'
        arrays never made), made once."""
        if self._contracted is None:
            self._contracted = contract_products(self.circuit) if self._contract \
                else self.circuit
        return self._contracted

    def _compile(self) -> None:
        source, self._namespace, _ = numpy_source(self._evaluated(), self._name)
        self._source = source
        # The source is generated from the primitive table; user names only appear as
        # checked identifiers (see _usable), never as code.
        self._code = compile(source, f"<circuitgrad {self._name}>", "exec")

    def _bind_code(self, namespace: dict[str, Any]) -> Callable[..., Any]:
        exec(self._code, namespace)  # noqa: S102
        return namespace[self._name]

    def _on(self, xp: Any, device: Any) -> Callable[..., Any]:
        """The generated function bound to array namespace ``xp``: its ``xp``, ``_sp``,
        ``_cg`` (:func:`circuitgrad.primitives.arrays.namespace`) and the array constants
        moved to ``device``. Circuits above COMPILE_LIMIT nodes compile here, once. Without a
        device (values traced by ``jax.jit``) it is bound for this call only and not kept: its
        constants are made inside the trace, and a kept one would leak a tracer into the next
        trace (the second ``jax.jit`` of the function failed so)."""
        key = (xp, device)
        run = self._bound.get(key)
        if run is None:
            if self._code is None:
                self._compile()
            namespace = {**self._namespace, **arrays.namespace(xp)}
            for k, v in namespace.items():
                if k.startswith("_k"):  # a copy: the circuit's constants are read-only
                    namespace[k] = xp.asarray(v, device=device, copy=True)
            run = self._bind_code(namespace)
            if device is not None:
                self._bound[key] = run
        return run

    @property
    def source(self) -> str:
        """The generated Python source (made on first access for interpreted circuits); a
        circuit with guards shows their function first."""
        if self._source is None:
            self._source = numpy_source(self._evaluated(), self._name)[0]
        if self._guards is None:
            return self._source
        g = self._guards
        checks = "\n".join(f"#   {g.describe(k)}" for k in range(len(g.kinds)))
        return (f"{self._guard_run.source}\n\n# checked first, on every call: {self._name} is "
                f"the function where each {self._name}_guards output is as traced\n"
                f"{checks}\n{self._source}")

    def guards_hold(self, *args: Any, **kwargs: Any) -> Any:
        """Where the circuit's guards hold (a bool array of the batch shape; True where the
        circuit has none)."""
        values, batch, _ = self._bind(args, kwargs)
        if self._guards is None:
            return np.ones(batch, dtype=bool)
        return self._guards_at(values, batch)

    def _guards_at(self, values: list[Any], batch: tuple[int, ...]) -> np.ndarray:
        args = [values[k] for k in self._guard_index]
        if all(isinstance(v, (np.ndarray, np.float64)) for v in args):
            out = self._guard_run._run(*args)  # (bound already: the generated code itself)
        else:
            out = self._guard_run(*args)
        holds = self._guards.holds([out] if len(self._guards.kinds) == 1 else list(out))
        return holds if holds.shape == batch else np.broadcast_to(holds, batch)

    def _check_guards(self, values: list[Any], batch: tuple[int, ...]) -> None:
        holds = self._guards_at(values, batch)
        if holds.all():
            return
        out = self._guard_run(*[values[k] for k in self._guard_index])
        k = self._guards.failed([out] if len(self._guards.kinds) == 1 else list(out))
        where = "this point" if not batch else (
            f"point {tuple(int(i) for i in np.unravel_index(int(np.argmin(holds)), batch))} "
            "of the batch")
        raise CircuitError(
            f"{self._name}(): guard {self._guards.describe(k if k is not None else 0)} does "
            f"not hold at {where}: the circuit is the branch its trace took, and the "
            "function takes another here; cg.function(f) traces the branch of every point "
            "(docs/tracing.md, \"Branches\")")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(args, kwargs, True)

    def _call(self, args: tuple, kwargs: dict, check: bool) -> Any:
        """The call; ``check=False`` only where the caller has just found that the guards
        hold at these inputs (cg.function's branches)."""
        values, batch, foreign = self._bind(args, kwargs)
        if check and self._guards is not None:
            self._check_guards(values, batch)
        if foreign:
            return self._call_on(values, batch, foreign)
        result = self._run(*values)
        if self._Outputs is None:
            one = self._fit(result, self._output_shapes[0], batch)
            return self._csr([one])[0] if self._csr else one
        fitted = [self._fit(o, s, batch) for o, s in zip(result, self._output_shapes)]
        if self._csr:
            fitted = self._csr(fitted)
        elif all(f is o for f, o in zip(fitted, result)) and type(result) is self._Outputs:
            return result
        return self._Outputs._make(fitted)

    def call_bound(self, values: Sequence[Any], batch: tuple[int, ...] = ()) -> tuple[Any, ...]:
        """The call without binding: for a caller that has already made the inputs what
        ``__call__`` makes them, and calls often enough that those checks count (a Jacobian
        function's sweep: a fifth of a small call).

        ``values`` are in the order of ``inputs``, each a float64 NumPy array (or
        ``np.float64``) whose shape broadcasts to ``batch + its declared shape``; they are
        not converted or checked. The guards are checked, as by ``__call__``. The outputs
        come back as a tuple in the order of ``outputs``, each broadcasting to ``batch + its
        shape`` but not broadcast: an output that does not vary along an axis may come back
        without it, a read-only view or a number (``__call__`` gives each its full shape,
        writable). An output whose shape does not broadcast so is an internal error
        (CircuitError), not NumPy's ValueError. Sparse (CSR) outputs are made as
        ``__call__`` makes them.

            >>> import numpy as np, circuitgrad as cg
            >>> f = cg.to_numpy(cg.parse("f = x * y\\ng = y + 1", outputs=["f", "g"]))
            >>> f.call_bound([np.array([1.0, 2.0]), np.float64(3.0)], (2,))
            (array([3., 6.]), np.float64(4.0))
        """
        if self._guards is not None:
            self._check_guards(list(values), batch)
        result = self._run(*values)
        result = [result] if self._Outputs is None else list(result)
        if self._csr:
            return tuple(self._csr([self._fit(o, s, batch)
                                    for o, s in zip(result, self._output_shapes)]))
        for o, s in zip(result, self._output_shapes):
            have, want = np.shape(o), batch + s
            if have != want and _broadcast_shape(have, want) != want:
                raise CircuitError(f"internal error: an output of shape {have} where the "
                                   f"batch semantics give {want}; please report it")
        return tuple(np.float64(o) if type(o) is float else o for o in result)

    def _call_on(self, values: list[Any], batch: tuple[int, ...], foreign: list[int]) -> Any:
        """The call on inputs of another array library: its namespace from the inputs, the
        other inputs (numbers, NumPy arrays) moved there, the results arrays of that library."""
        import array_api_compat

        try:
            xp = array_api_compat.array_namespace(*(values[k] for k in foreign))
        except TypeError:
            kinds = ", ".join(f"{self.inputs[k]}: {type(values[k]).__module__}."
                              f"{type(values[k]).__name__}" for k in foreign)
            raise CircuitError(f"{self._name}(): the inputs are arrays of different libraries "
                               f"({kinds}); give them all as arrays of one library") from None
        first = values[foreign[0]]
        try:
            device = arrays.device(first)
        except Exception:  # a traced value (jax.jit) has no device yet
            device = None
        for k, v in enumerate(values):
            if k not in foreign:
                values[k] = xp.asarray(v, dtype=xp.float64, device=device)
            elif v.dtype != xp.float64:
                v = values[k] = xp.astype(v, xp.float64)
                if v.dtype != xp.float64:
                    raise CircuitError(
                        f"input {self.inputs[k]!r}: {arrays.library(xp)} gives {v.dtype} "
                        f"for float64 (circuitgrad computes in float64; for JAX, enable "
                        f"jax_enable_x64)")
        result = self._on(xp, device)(*values)
        fit = functools.partial(self._fit_on, xp, device, tuple(batch))  # not a torch.Size
        if self._Outputs is None:
            return fit(result, self._output_shapes[0])
        return self._Outputs._make([fit(o, s) for o, s in zip(result, self._output_shapes)])

    @staticmethod
    def _fit_on(xp: Any, device: Any, batch: tuple[int, ...], value: Any,
                shape: tuple[int, ...]) -> Any:
        """:meth:`_fit` for another array library: an array of that library on ``device``."""
        want = batch + shape
        if not hasattr(value, "shape"):  # a constant output: a number in the code
            value = xp.asarray(value, dtype=xp.float64, device=device)
        if tuple(value.shape) != want:
            value = xp.asarray(xp.broadcast_to(value, want), copy=True)
        return value

    @staticmethod
    def _fit(value: Any, shape: tuple[int, ...], batch: tuple[int, ...]) -> Any:
        """``value`` with exactly the batch axes and its shape, as an array the caller may
        write to (an output can be a broadcast view, a constant, or independent of the batch)."""
        want = batch + shape if batch else shape
        have = np.shape(value)
        if have != want:
            try:
                return np.broadcast_to(value, want).copy()
            except ValueError:
                raise CircuitError(f"internal error: an output of shape {have} where the "
                                   f"batch semantics give {want}; please report it") from None
        if type(value) is float:  # a constant output is a Python float in the code
            return np.float64(value)
        if isinstance(value, np.ndarray) and not value.flags.writeable:
            return value.copy()
        return value

    def _bind(self, args: tuple, kwargs: dict) -> tuple[list[Any], tuple[int, ...], list[int]]:
        values = assign_inputs(self._name, self.inputs, args, kwargs)
        batches = []
        foreign: list[int] = []  # the inputs that are arrays of another library
        for k, v in enumerate(values):
            if type(v) is float:
                # NumPy semantics for scalars too: 1/0 is inf, not ZeroDivisionError.
                values[k] = v = np.float64(v)
            elif not (type(v) is np.float64 or (type(v) is np.ndarray
                                                 and v.dtype == np.float64)):
                # (a subclass too: np.matrix's * is a matrix product, a masked array's mask
                # would ride along; np.asarray below makes it the plain array of its numbers)
                if v is _MISSING:
                    missing_inputs(self._name, self.inputs, values)
                v = check_input(self.inputs[k], v)  # a number, or an array of real numbers
                if _foreign(v):
                    foreign.append(k)
                else:
                    v = np.asarray(v, dtype=np.float64)
                    if v.ndim == 0:
                        v = np.float64(v)
                    values[k] = v
            have, want = np.shape(v), self._input_shapes[k]
            if have != want:
                batches.append((k, batch_axes(self.inputs[k], have, want)))
        return values, common_batch(self.inputs, batches), foreign

    def __reduce__(self):
        # Pickles as the circuit; the code is generated again where it is unpickled.
        return (NumpyFunction, (self.circuit, self._name, self._mode, self._csr is not None))

    def __repr__(self) -> str:
        return (f"<NumpyFunction {self._name}({', '.join(self.inputs)}) -> "
                f"{', '.join(self.outputs)}>")


class _Interpreter:
    """Runs a circuit node by node with the template-compiled NumPy functions (the code of
    :func:`node_code`), values in registers reused by liveness."""

    def __init__(self, c: Circuit):
        reg = _registers(c)
        self.size = max(reg, default=-1) + 1
        self.inputs = [reg[i] for i in c.input_ids]
        self.consts = [(reg[i], c.params(i)) for i in range(len(c))
                       if c.op(i) == "const" and c.shape(i)]
        scalar_const = {i: c.params(i) for i in range(len(c))
                        if c.op(i) == "const" and not c.shape(i)}
        # Scalar constants are bound into the step, so they need no register.
        program = []
        for i, op, args, params, _shape in c.records():
            if op in LEAVES:
                continue
            fn = compiled(op, params or {}, [c.shape(a) for a in args],
                          [c.op(a) != "const" for a in args])
            refs = tuple((True, scalar_const[a]) if a in scalar_const else (False, reg[a])
                         for a in args)
            program.append((fn, refs, reg[i]))
        self.program = program
        self.outputs = [(False, reg[i]) if i not in scalar_const else (True, scalar_const[i])
                        for i in c.output_ids]
        self.names = c.outputs

    def __call__(self, *values: Any) -> Any:
        r: list[Any] = [None] * self.size
        for k, v in zip(self.inputs, values):
            r[k] = v
        for k, v in self.consts:
            r[k] = v
        for fn, refs, out in self.program:
            if len(refs) == 1:
                (c0, a0), = refs
                r[out] = fn(a0 if c0 else r[a0])
            elif len(refs) == 2:
                (c0, a0), (c1, a1) = refs
                r[out] = fn(a0 if c0 else r[a0], a1 if c1 else r[a1])
            else:
                r[out] = fn(*[a if const else r[a] for const, a in refs])
        outs = tuple(v if const else r[v] for const, v in self.outputs)
        return outs[0] if len(outs) == 1 else outs


def to_numpy(c: Circuit, name: str = "f", mode: str = "auto", csr: bool = True) -> NumpyFunction:
    """Lower a circuit to a NumPy callable; ``.source`` shows the generated code.

    Args:
        c: the circuit.
        name: the function's name in the source.
        mode: ``"compile"`` (generated code), ``"interpret"`` (walk the node list; no compile
            cost, for huge circuits), or ``"auto"`` (compile up to COMPILE_LIMIT nodes).
        csr: return the outputs of a sparse Jacobian or Hessian as ``scipy.sparse.csr_array``
            matrices (one point at a time); ``False``: their compressed nonzeros, of shape
            ``batch + (nnz,)`` (:mod:`circuitgrad.csr`).

    Returns:
        A :class:`NumpyFunction`; call it as ``f(x=1.0, y=2.0)``, ``f(1.0, 2.0)`` or with
        arrays of points.

    >>> import circuitgrad as cg
    >>> f = cg.to_numpy(cg.parse("x*y"))
    >>> float(f(2.0, y=3.0))
    6.0
    """
    c = as_circuit(c, "to_numpy")
    with no_gc():
        return NumpyFunction(c, name, mode, csr)
