"""The tape lowering: a circuit as flat instruction arrays, run by one compiled evaluator.

``to_tape(c)`` turns the circuit into an int32 array of instructions ``(opcode, out, a0, a1,
a2)`` over a file of float64 registers, reused by liveness (a value's register is free after
its last read), and runs it with the C extension ``circuitgrad.lower._tape``. The evaluator is
compiled once, when circuitgrad is installed, for every circuit: building a tape is a few
array operations and one pass of the register allocator (linear in the size, no compiler).
Its opcode switch is generated from the primitive table's ``c`` forms
(:mod:`~circuitgrad.lower.cforms`).

Tensor circuits are first expanded into scalar nodes (:func:`~circuitgrad.scalarize`:
elementwise ops per entry, reductions as folds left to right, indexing and reshaping as moves
of entries), so every primitive is covered, matmul included; sums then add left to right where
NumPy adds pairwise, so such values agree with ``to_numpy`` to rounding, not bit for bit.

The callable has ``to_numpy``'s interface (docs/semantics.md, "Batches"): inputs by position
or keyword, one point or a batch (extra leading axes, broadcast), outputs with the batch axes
in front, several outputs as a named tuple. A batch runs in chunks of ``LANES`` points, lane
by lane within each instruction, so memory is one chunk's register file.

    >>> import circuitgrad as cg
    >>> f = cg.to_tape(cg.grad(cg.parse("J = sin(x)*y + exp(x)")))
    >>> [float(v) for v in f(x=0.0, y=2.0)]
    [1.0, 3.0, 0.0]
    >>> f(x=[0.0, 1.0], y=2.0).dJ_dy.tolist()                  # a batch of two points
    [0.0, 0.8414709848078965]
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Sequence

import numpy as np

from ..circuit import LEAVES, Circuit, as_circuit, no_gc
from ..csr import csr_outputs
from ..errors import CircuitError
from ..primitives import PRIMITIVES
from ..transforms.scalarize import scalarize
from .numpy import _MISSING, assign_inputs, batch_axes, common_batch, outputs

try:
    from . import _tape
except ImportError:  # not built: to_tape says how to build it
    _tape = None

_NUMBERS = frozenset({float, int, np.float64})

BUILD_HINT = ("build it with `pip install -e .` in the circuitgrad checkout (`make test` does), "
              "which needs a C compiler and the Python headers (Debian/Ubuntu: apt-get install "
              "gcc python3-dev; scripts/setup.sh installs them)")


def _needs_scalarize(c: Circuit) -> bool:
    return any(c._shapes) or any(op not in LEAVES and PRIMITIVES[op].c is None
                                 for op in set(c._ops))


class ScalarProgram:
    """A circuit as scalar nodes with registers: what the tape runs and ``to_c`` writes.

    Attributes:
        circuit: the scalar circuit (the circuit itself when it has only scalar nodes with
            a C form, else its :func:`~circuitgrad.scalarize`).
        reg: the register of every node; ``nregs`` registers in all.
        last: the last node that reads each node (itself if none).
        ops: the ids of the operation nodes, in order; ``codes`` their positions in
            ``opcodes``, ``op_names`` their names.
        args: int32[N, 3], the arguments of each node (-1: none).
        in_ids, out_ids: the scalar circuit's input and output nodes, in the columns of the
            flat input and output arrays (each input and output of the original circuit is
            ``size`` consecutive columns, its entries in row-major order).
    """

    def __init__(self, c: Circuit, caller: str, opcodes: Sequence[str]):
        self.original = c
        self.opcodes = tuple(opcodes)
        tensors = any(c._shapes)  # (a scalar circuit, the common case: one C-level scan)
        empty = next((i for i, shape in enumerate(c._shapes) if 0 in shape), None) \
            if tensors else None
        if empty is not None:
            raise CircuitError(f"{caller}: node %{empty} ({c.op(empty)}) has the empty shape "
                               f"{c.shape(empty)}; the C lowerings take no empty tensors "
                               f"(to_numpy does)")
        s = scalarize(c) if tensors or _needs_scalarize(c) else c
        self.circuit = s
        n = len(s)
        ops = s._ops  # the node lists themselves: this pass is linear and array-based
        index = {name: k for k, name in enumerate(self.opcodes)}
        index.update({"input": -1, "const": -2})
        try:
            codes = np.fromiter(map(index.__getitem__, ops), dtype=np.int32, count=n)
        except KeyError as error:
            op = error.args[0]
            i = ops.index(op)
            if PRIMITIVES[op].c is None:
                raise CircuitError(f"{caller}: node %{i} ({op}) has no C form, and scalarize "
                                   f"did not expand it") from None
            raise CircuitError(f"{caller}: the tape evaluator has no opcode for {op!r} "
                               f"(node %{i}): it was built before that primitive had a C "
                               f"form; rebuild it ({BUILD_HINT})") from None
        args = _arguments(s._args, ops, caller)
        valid = args >= 0
        flat = args[valid]
        rows = np.nonzero(valid)[0].astype(np.int32)
        self.args = args
        leaf = codes < 0
        last = np.arange(n, dtype=np.int32)
        np.maximum.at(last, flat, rows)
        keep = leaf.copy()
        keep[list(s.output_ids)] = True
        reg = np.full(n, -1, dtype=np.int32)
        reg[leaf] = np.arange(int(leaf.sum()), dtype=np.int32)
        self.nregs = max(_allocate(args, last, reg, keep.view(np.uint8)), 1)
        self.last = last
        self.reg = reg
        self.ops = np.flatnonzero(~leaf)
        self.codes = codes[self.ops]
        self.in_ids = _input_columns(c, s)
        self.out_ids = list(s.output_ids)
        self.const_ids = np.flatnonzero(codes == -2).tolist()
        self.in_sizes = [math.prod(c.shape(i)) for i in c.input_ids]
        self.out_sizes = [math.prod(c.shape(i)) for i in c.output_ids]
        if len(self.out_ids) != sum(self.out_sizes):
            raise CircuitError(f"internal error: {caller} found {len(self.out_ids)} scalar "
                               f"outputs for {sum(self.out_sizes)} entries; please report it")

    @property
    def op_names(self) -> list[str]:
        return [self.opcodes[k] for k in self.codes.tolist()]


def _input_columns(c: Circuit, s: Circuit) -> list[int]:
    """The scalar input nodes of ``s`` in the order of ``c.inputs``, entries row-major."""
    if s is c:
        return list(c.input_ids)
    # scalarize names the entries of the inputs in the order of their nodes
    by_id = sorted(range(len(c.inputs)), key=lambda k: c.input_ids[k])
    sizes = [math.prod(c.shape(i)) for i in c.input_ids]
    if len(s.input_ids) != sum(sizes):
        raise CircuitError("internal error: scalarize changed the number of input entries; "
                           "please report it")
    blocks: dict[int, list[int]] = {}
    at = 0
    for k in by_id:
        blocks[k] = list(s.input_ids[at:at + sizes[k]])
        at += sizes[k]
    return [i for k in range(len(c.inputs)) for i in blocks[k]]


def _arguments(node_args: list, ops: list, caller: str) -> np.ndarray:
    """int32[N, 3]: each node's arguments, -1 where it has fewer than three."""
    n = len(node_args)
    if _tape is not None:
        try:
            return np.frombuffer(_tape.arguments(node_args), dtype=np.int32).reshape(n, 3)
        except ValueError:
            pass  # the message below names the node
    lens = np.fromiter(map(len, node_args), dtype=np.int64, count=n)
    if n and lens.max(initial=0) > 3:
        i = int(np.argmax(lens))
        raise CircuitError(f"{caller}: node %{i} ({ops[i]}) has {lens[i]} arguments; the "
                           f"C lowerings take at most 3")
    flat = np.fromiter(itertools.chain.from_iterable(node_args), dtype=np.int32,
                       count=int(lens.sum()))
    rows = np.repeat(np.arange(n, dtype=np.int32), lens)
    cols = np.arange(len(flat)) - np.repeat(np.cumsum(lens) - lens, lens)
    args = np.full((n, 3), -1, dtype=np.int32)
    args[rows, cols] = flat
    return args


def _allocate(args: np.ndarray, last: np.ndarray, reg: np.ndarray, keep: np.ndarray) -> int:
    """Registers for the operation nodes (``reg`` is -1 there), reusing those of values after
    their last read; returns the register count. The C extension's loop, or the same in
    Python where the extension is not built (``to_c`` does not need the extension)."""
    if _tape is not None:
        return _tape.allocate(args, last, reg, keep)
    count = int(reg.max(initial=-1)) + 1
    free: list[int] = []
    a, lst, kp, r = args.tolist(), last.tolist(), keep.tolist(), reg.tolist()
    for i in range(len(r)):
        if r[i] >= 0:
            continue
        for x in set(a[i]) - {-1}:
            if lst[x] == i and not kp[x]:
                free.append(r[x])
        if free:
            r[i] = free.pop()
        else:
            r[i], count = count, count + 1
    reg[:] = r
    return count


class CompiledFunction:
    """What ``to_tape`` and ``to_c`` return share: ``to_numpy``'s interface (inputs by
    position or keyword, points or batches, the same checks and messages) and its named-tuple
    outputs; a subclass runs ``_evaluate(inputs, npoints) -> outputs`` on flat float64
    arrays."""

    def _bind(self, args: tuple, kwargs: dict) -> tuple[list[Any], tuple[int, ...]]:
        """The inputs as float64 NumPy values in the order of ``inputs``, and the batch shape
        (``()`` for one point), with ``to_numpy``'s checks and messages."""
        values = assign_inputs(self._name, self.inputs, args, kwargs)
        missing = [self.inputs[k] for k, v in enumerate(values) if v is _MISSING]
        if missing:
            raise TypeError(f"{self._name}() is missing inputs {missing}")
        batches = []
        for k, v in enumerate(values):
            try:
                v = values[k] = np.asarray(v, dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"input {self.inputs[k]!r} is not a number or an array of "
                                f"numbers: {type(v).__name__}") from None
            have, want = v.shape, self._input_shapes[k]
            if have != want:
                batches.append((k, batch_axes(self.inputs[k], have, want)))
        return values, common_batch(self.inputs, batches)

    def __init__(self, c: Circuit, program: ScalarProgram, name: str = "f", csr: bool = True):
        self.circuit = c
        self._csr = csr_outputs(c) if csr else None  # sparse matrix outputs: csr.py
        self.inputs = c.inputs
        self.outputs = c.outputs
        self._name = name
        self._program = program
        self._input_shapes = [c.shape(i) for i in c.input_ids]
        self._output_shapes = [c.shape(i) for i in c.output_ids]
        self._Outputs = outputs(c.outputs) if len(c.outputs) > 1 else None
        self._scalar_inputs = all(not s for s in self._input_shapes)
        self._scalar_outputs = all(not s for s in self._output_shapes)
        self._point_ready = (_tape is not None and self._scalar_inputs and self._scalar_outputs
                             and not self._csr)
        self._nout = len(program.out_ids)
        self._out_slices = []
        at = 0
        for size, shape in zip(program.out_sizes, self._output_shapes):
            self._out_slices.append((at, at + size, shape))
            at += size

    def _one_point(self, args: tuple, kwargs: dict) -> np.ndarray | None:
        """The inputs as one flat float64 array where every input is given once, as a number
        (a scalar input) or as a float64 NumPy array of exactly its declared shape: one point,
        which the general binder would accept as it is; else None (the binder then checks,
        converts, broadcasts a batch or says what is wrong)."""
        if kwargs:
            if args or len(kwargs) != len(self.inputs):
                return None
            try:
                args = tuple(kwargs[name] for name in self.inputs)
            except KeyError:
                return None
        elif len(args) != len(self.inputs):
            return None
        if self._scalar_inputs:
            if not all(type(a) in _NUMBERS for a in args):
                return None
            return np.array(args, dtype=np.float64)
        for a, shape in zip(args, self._input_shapes):
            if type(a) is np.ndarray:
                if a.dtype != np.float64 or a.shape != shape:
                    return None
            elif shape or type(a) not in _NUMBERS:
                return None
        return np.concatenate([np.ravel(a) for a in args], dtype=np.float64)

    def _evaluate(self, inputs: np.ndarray, npoints: int) -> np.ndarray:
        raise NotImplementedError

    def _point(self, args: tuple) -> Any:
        """The outputs at one point of numbers ``args`` (scalar inputs and outputs only), or
        NotImplemented where an argument is not a float, an int or a NumPy float64."""
        return NotImplemented

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # The one-point call of optimizers and ODE solvers (numbers, or arrays of the declared
        # shapes) skips the general binder: most of a call's time on small circuits otherwise
        # (~9 of 10 µs for the gradient of a 10-variable Rosenbrock).
        if self._point_ready and not kwargs:
            # Numbers in, numbers out: the extension reads and makes them (no array).
            result = self._point(args)
            if result is not NotImplemented:
                return result
        flat = self._one_point(args, kwargs)
        if flat is not None and self._scalar_outputs:
            out = self._evaluate(flat, 1)[0]
            return out[0] if self._Outputs is None else self._Outputs._make(out)
        batch: tuple[int, ...] = ()
        if flat is None:
            values, batch = self._bind(args, kwargs)
            if not batch:
                flat = np.concatenate([np.ravel(v) for v in values], dtype=np.float64) \
                    if values else np.zeros(0)
        if not batch:
            out = self._evaluate(flat, 1)[0]
            results = [np.float64(out[a]) if not shape else out[a:b].reshape(shape)
                       for a, b, shape in self._out_slices]
        else:
            npoints = math.prod(batch)
            columns = [np.broadcast_to(v, batch + shape).reshape(npoints, math.prod(shape))
                       for v, shape in zip(values, self._input_shapes)]
            flat = np.ascontiguousarray(np.concatenate(columns, axis=1)) if columns else \
                np.zeros((npoints, 0))
            out = self._evaluate(flat, npoints)
            results = [out[:, a:b].reshape(batch + shape) for a, b, shape in self._out_slices]
        if self._csr:
            results = self._csr(results)
        if self._Outputs is None:
            return results[0]
        return self._Outputs._make(results)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self._name}({', '.join(self.inputs)}) -> "
                f"{', '.join(self.outputs)}>")


class TapeFunction(CompiledFunction):
    """A circuit lowered to a tape: call it as a :class:`~circuitgrad.NumpyFunction`.

    Attributes:
        circuit: the circuit it was made from.
        code: the instructions, int32[n, 5]: opcode, out, a0, a1, a2 (registers).
        registers: the size of the register file (the live width of the circuit).

    >>> import circuitgrad as cg
    >>> f = cg.to_tape(cg.parse("J = sum(v * v)", shapes={"v": (3,)}))
    >>> float(f([1.0, 2.0, 3.0])), f.registers
    (14.0, 6)
    """

    def __init__(self, c: Circuit, name: str = "f", csr: bool = True):
        if _tape is None:
            raise CircuitError(f"to_tape: the tape evaluator (the C extension "
                               f"circuitgrad.lower._tape) is not built; {BUILD_HINT}")
        program = ScalarProgram(c, "to_tape", _tape.OPS)
        super().__init__(c, program, name, csr)
        s = program.circuit
        ids = program.ops
        code = np.empty((len(ids), 5), dtype=np.int32)
        code[:, 0] = program.codes
        code[:, 1] = program.reg[ids]
        a = program.args[ids]
        code[:, 2:] = np.where(a >= 0, program.reg[np.maximum(a, 0)], 0)
        self.code = code
        self.registers = program.nregs
        self._const_regs = program.reg[program.const_ids].astype(np.int32)
        self._const_values = np.array([float(s.params(i)) for i in program.const_ids],
                                      dtype=np.float64)
        self._in_regs = program.reg[program.in_ids].astype(np.int32)
        self._out_regs = program.reg[program.out_ids].astype(np.int32)

    def _evaluate(self, inputs: np.ndarray, npoints: int) -> np.ndarray:
        out = np.empty((npoints, self._nout))
        _tape.run(self.code, self.registers, self._const_regs, self._const_values,
                  self._in_regs, inputs, self._out_regs, out, npoints)
        return out

    def _point(self, args: tuple) -> Any:
        return _tape.run_point(self.code, self.registers, self._const_regs, self._const_values,
                               self._in_regs, self._out_regs, args, np.float64, self._Outputs)

    def __reduce__(self):
        # Pickles as the circuit; the tape is built again where it is unpickled.
        return (to_tape, (self.circuit, self._name, self._csr is not None))


def to_tape(c: Circuit, name: str = "f", csr: bool = True) -> TapeFunction:
    """Lower a circuit to a tape run by the compiled evaluator (no per-circuit compile step).

    Args:
        c: the circuit (scalar or tensor; every primitive is covered).
        name: the function's name in messages.
        csr: the outputs of a sparse Jacobian or Hessian as ``scipy.sparse.csr_array`` (one
            point), as ``to_numpy`` returns them; ``False``: their nonzeros, ``batch + (nnz,)``.

    Returns:
        A :class:`TapeFunction`, called as ``to_numpy``'s callable is.

    Raises:
        CircuitError: the evaluator extension is not built (the message says how to build it).

    >>> import circuitgrad as cg
    >>> float(cg.to_tape(cg.parse("relu(x) + sigmoid(1000*x)"))(x=0.0))
    0.5
    """
    c = as_circuit(c, "to_tape")
    with no_gc():
        return TapeFunction(c, name, csr)
