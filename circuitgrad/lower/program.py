"""Program building shared by the C lowerings, ``to_tape`` and ``to_c``.

:class:`ScalarProgram` is a circuit as scalar nodes over a register file reused by liveness
(:func:`allocate`, the one register allocator of the lowerings: ``to_numpy``'s registers for
large circuits come from it too), which the tape evaluator runs and ``to_c`` writes as C.
:class:`CompiledFunction` is what their callables share: :mod:`~circuitgrad.lower.calling`'s
binding and checks, the one-point fast path through the extension, and flat float64 arrays
in and out of ``_evaluate``. ``EXTENSION`` is the C extension ``circuitgrad.lower._tape``
(None where it is not built: ``to_tape`` then says how to build it, ``to_c`` runs without it).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Sequence

import numpy as np

from ..circuit import LEAVES, Circuit
from ..errors import CircuitError
from ..primitives import PRIMITIVES
from ..transforms.scalarize import loop_sites, scalarize
from .calling import (assign_inputs, batch_axes, check_input, common_batch, csr_hook,
                      missing_inputs, outputs)

try:
    from . import _tape
except ImportError:  # not built: to_tape says how to build it
    _tape = None

EXTENSION = _tape

_NUMBERS = frozenset({float, int, np.float64})


def _plain_number(a: Any) -> bool:
    """A float, a NumPy float64 or an int that is a float64 exactly (|a| <= 2**53): what the
    one-point path converts as it is; anything else goes to the checking binder."""
    t = type(a)
    return t in _NUMBERS and (t is not int or -9007199254740992 <= a <= 9007199254740992)

BUILD_HINT = ("build it with `pip install -e .` in the circuitgrad checkout (`make test` does), "
              "which needs a C compiler and the Python headers (Debian/Ubuntu: apt-get install "
              "gcc python3-dev; scripts/setup.sh installs them)")


def _needs_scalarize(c: Circuit) -> bool:
    return any(c.columns.shapes) or any(op not in LEAVES and PRIMITIVES[op].c is None
                                 for op in set(c.columns.ops))


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

    def __init__(self, c: Circuit, caller: str, opcodes: Sequence[str], loops: bool = False):
        self.original = c
        self.opcodes = tuple(opcodes)
        tensors = any(c.columns.shapes)  # (a scalar circuit, the common case: one C-level scan)
        empty = next((i for i, shape in enumerate(c.columns.shapes) if 0 in shape), None) \
            if tensors else None
        if empty is not None:
            raise CircuitError(f"{caller}: node %{empty} ({c.op(empty)}) has the empty shape "
                               f"{c.shape(empty)}; the C lowerings take no empty tensors "
                               f"(to_numpy does)")
        s = scalarize(c, loops) if tensors or _needs_scalarize(c) else c
        self.circuit = s
        self.loops = loop_sites(s) if s is not c else []
        """The loop sites (``scalarize(c, loops=True)``): ``to_c`` writes each as a C loop
        over its body; their results are leaves of ``circuit``, their arguments kept alive."""
        n = len(s)
        ops = s._ops  # the node lists themselves: this pass is linear and array-based
        index = {name: k for k, name in enumerate(self.opcodes)}
        index.update({"input": -1, "const": -2})
        try:
            codes = np.fromiter(map(index.__getitem__, ops), dtype=np.int32, count=n)
        except KeyError as error:
            op = error.args[0]
            i = ops.index(op)
            if PRIMITIVES[op].c_refusal is not None:
                raise CircuitError(f"{caller}: node %{i} ({op}) has no C form: "
                                   f"{PRIMITIVES[op].c_refusal}") from None
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
        n_in = sum(map(len, (site["result"] for site in self.loops)))
        n_out = sum(len(group) for site in self.loops for group in site["args"])
        self.in_ids = _input_columns(c, s, list(s.input_ids[:len(s.input_ids) - n_in]))
        self.out_ids = list(s.output_ids[:len(s.output_ids) - n_out])
        self.const_ids = np.flatnonzero(codes == -2).tolist()
        self.in_sizes = [math.prod(c.shape(i)) for i in c.input_ids]
        self.out_sizes = [math.prod(c.shape(i)) for i in c.output_ids]
        if len(self.out_ids) != sum(self.out_sizes):
            raise CircuitError(f"internal error: {caller} found {len(self.out_ids)} scalar "
                               f"outputs for {sum(self.out_sizes)} entries; please report it")

    @property
    def op_names(self) -> list[str]:
        return [self.opcodes[k] for k in self.codes.tolist()]


def _input_columns(c: Circuit, s: Circuit, input_ids: list[int]) -> list[int]:
    """The scalar input nodes of ``s`` (``input_ids``: those that stand for ``c``'s inputs)
    in the order of ``c.inputs``, entries row-major."""
    if s is c:
        return list(c.input_ids)
    # scalarize names the entries of the inputs in the order of their nodes
    by_id = sorted(range(len(c.inputs)), key=lambda k: c.input_ids[k])
    sizes = [math.prod(c.shape(i)) for i in c.input_ids]
    if len(input_ids) != sum(sizes):
        raise CircuitError("internal error: scalarize changed the number of input entries; "
                           "please report it")
    blocks: dict[int, list[int]] = {}
    at = 0
    for k in by_id:
        blocks[k] = list(input_ids[at:at + sizes[k]])
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


def allocate(node_args: Sequence[Sequence[int]], last: Sequence[int], reg: list[int],
             keep: Sequence[bool]) -> int:
    """Registers by liveness, the one allocator of the lowerings: each node whose ``reg`` is
    -1 gets a register, the last one freed if any (a value's register is free after its last
    read, ``last[x]``, unless ``keep[x]``), else a new one; nodes with ``reg`` set (leaves:
    their own registers; -2: none, such as a scalar constant written as a literal) are left
    as they are. An operation's dying arguments, in their order, give their registers back
    before it takes one, so it may write over an argument. Returns the register count; the C
    extension's ``allocate`` runs the same loop on int32 arrays (:func:`_allocate`).

        >>> reg = [0, 1, -1, -1]  # two inputs, x*y, then (x*y)+x
        >>> allocate([(), (), (0, 1), (2, 0)], [3, 2, 3, 3], reg, [True, True, False, True])
        3
        >>> reg
        [0, 1, 2, 2]
    """
    count = max(reg, default=-1) + 1
    free: list[int] = []
    for i, args in enumerate(node_args):
        if reg[i] != -1:
            continue
        for k, x in enumerate(args):
            if x >= 0 and x not in args[:k] and last[x] == i and not keep[x] and reg[x] >= 0:
                free.append(reg[x])
        if free:
            reg[i] = free.pop()
        else:
            reg[i], count = count, count + 1
    return count


def _allocate(args: np.ndarray, last: np.ndarray, reg: np.ndarray, keep: np.ndarray) -> int:
    """:func:`allocate` on the int32 arrays of a :class:`ScalarProgram` (``args`` [N, 3], -1:
    none): the C extension's loop, or :func:`allocate` where it is not built (``to_c`` does
    not need the extension)."""
    if _tape is not None:
        return _tape.allocate(args, last, reg, keep)
    r = reg.tolist()
    count = allocate(args.tolist(), last.tolist(), r, keep.tolist())
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
        missing_inputs(self._name, self.inputs, values)
        batches = []
        for k, v in enumerate(values):
            # a number or an array of real numbers (calling.check_input), then float64
            v = values[k] = np.asarray(check_input(self.inputs[k], v), dtype=np.float64)
            have, want = v.shape, self._input_shapes[k]
            if have != want:
                batches.append((k, batch_axes(self.inputs[k], have, want)))
        return values, common_batch(self.inputs, batches)

    def __init__(self, c: Circuit, program: ScalarProgram, name: str = "f", csr: bool = True):
        self.circuit = c
        self._csr = csr_hook(c, csr)  # sparse matrix outputs: csr.py
        self.inputs = c.inputs
        self.outputs = c.outputs
        self._name = name
        self._program = program
        self._input_shapes = [c.shape(i) for i in c.input_ids]
        self._shape_tuple = tuple(tuple(int(n) for n in s) for s in self._input_shapes)
        self._output_shapes = [c.shape(i) for i in c.output_ids]
        self._Outputs = outputs(c.outputs) if len(c.outputs) > 1 else None
        self._scalar_inputs = all(not s for s in self._input_shapes)
        self._scalar_outputs = all(not s for s in self._output_shapes)
        self._nin = len(program.in_ids)  # the entry point's columns of inputs
        self._nout = len(program.out_ids)
        self._point_ready = (_tape is not None and self._scalar_inputs and self._scalar_outputs
                             and not self._csr and self._nin == len(self.inputs))
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
            args = self._keyword_point(args, kwargs)
            if args is None:
                return None
        elif len(args) != len(self.inputs):
            return None
        if self._scalar_inputs:
            if not all(_plain_number(a) for a in args):
                return None
            return np.array(args, dtype=np.float64)
        if _tape is not None:  # the same test in C, and the copy: no array per input
            flat = np.empty(self._nin)
            return flat if _tape.point_arguments(tuple(args), self._shape_tuple, flat,
                                                 np.ndarray, np.float64) else None
        for a, shape in zip(args, self._input_shapes):
            if type(a) is np.ndarray:
                if a.dtype != np.float64 or a.shape != shape:
                    return None
            elif shape or not _plain_number(a):
                return None
        return np.concatenate([np.ravel(a) for a in args], dtype=np.float64)

    def _keyword_point(self, args: tuple, kwargs: dict) -> tuple | None:
        """The arguments in the order of ``inputs`` where every input is given by keyword
        and nothing else is; else None (the binder then says what is wrong)."""
        if args or len(kwargs) != len(self.inputs):
            return None
        try:
            return tuple([kwargs[name] for name in self.inputs])
        except KeyError:
            return None

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
        if self._point_ready:
            # Numbers in, numbers out: the extension reads and makes them (no array). Inputs
            # by keyword are put in order first (any other call goes to the binder below).
            if kwargs:
                ordered = self._keyword_point(args, kwargs)
                result = NotImplemented if ordered is None else self._point(ordered)
            else:
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
