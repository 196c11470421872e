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
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..circuit import LEAVES, Circuit
from ..errors import CircuitError
from ..primitives import PRIMITIVES
from ..transforms.scalarize import loop_sites, scalarize
from . import tape_sources
from .calling import (assign_inputs, batch_axes, check_input, common_batch, csr_hook,
                      missing_inputs, outputs)

try:
    from . import _tape
except ImportError:  # not built: to_tape says how to build it
    _tape = None


def checked_extension(module: Any, now: str | None) -> tuple[Any, str]:
    """The extension ``module`` where it was built from the sources whose hash is ``now``
    (:func:`~circuitgrad.lower.tape_sources.source_hash`; None: no sources to compare, an
    installed wheel), else None; and what is wrong where there is no extension to use."""
    if module is None:
        return None, "is not built"
    if now is not None and getattr(module, "SOURCE_HASH", "") != now:
        return None, ("was built from other sources than this checkout's "
                      f"({', '.join(tape_sources.SOURCES)} changed since: its numbers would be "
                      "the old code's)")
    return module, ""


_tape, EXTENSION_PROBLEM = checked_extension(_tape, tape_sources.source_hash())
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


def _addresses(arrays: Sequence[np.ndarray]) -> list[int]:
    """The address of each array's first entry (the extension's loop, else NumPy's)."""
    if _tape is not None and hasattr(_tape, "addresses"):
        return np.frombuffer(_tape.addresses(arrays), dtype=np.int64).tolist()
    return [a.__array_interface__["data"][0] for a in arrays]


def _strides(array: np.ndarray, ndim: int) -> tuple[int, ...]:
    """``array``'s strides as broadcast to ``ndim`` axes (NumPy's rule: new leading axes and
    axes of length 1 are read with a stride of 0), without making the view."""
    return (0,) * (ndim - array.ndim) + tuple(0 if n == 1 else st
                                              for n, st in zip(array.shape, array.strides))


def _point_step(shape: tuple[int, ...], strides: tuple[int, ...]) -> int | None:
    """The one step, in bytes, from a point to the next over batch axes of ``shape`` and
    ``strides`` (row-major order of the points), or None where no one step walks them (a
    broadcast axis before a long one, a transposed batch): axes of length 1 are skipped."""
    if len(shape) == 1:
        return strides[0] if shape[0] > 1 else 0
    step = None
    for n, stride in zip(reversed(shape), reversed(strides)):
        if n == 1:
            continue
        if step is None:
            step, span = stride, stride * n
        elif stride != span:
            return None
        else:
            span = stride * n
    return 0 if step is None else step


def _column_step(base: int, strides: tuple[int, ...], batch: tuple[int, ...],
                 shape: tuple[int, ...]) -> int | None:
    """The one step, in doubles, from point to point of an array at address ``base`` with
    ``strides`` (broadcast to ``batch + shape``), or None where its points are not one step
    apart or an address or a step is not a whole double (then that array alone is copied)."""
    nb = len(batch)
    step = _point_step(batch, strides[:nb])
    if step is None or step % 8 or base % 8:
        return None
    if any(st % 8 for n, st in zip(shape, strides[nb:]) if n > 1):
        return None
    return step >> 3


def _entry_offsets(shape: tuple[int, ...], strides: tuple[int, ...]) -> np.ndarray:
    """int64: the byte offset of each entry of one point of ``shape`` (row-major) from its
    first, under the point's ``strides`` (an array: a (300, 300) input is 90,000 columns).

        >>> _entry_offsets((2, 3), (24, 8)).tolist()
        [0, 8, 16, 24, 32, 40]
    """
    offsets = np.zeros(shape, dtype=np.int64)
    for axis, (n, st) in enumerate(zip(shape, strides)):
        index = [1] * len(shape)
        index[axis] = n
        offsets += (np.arange(n, dtype=np.int64) * st).reshape(index)
    return offsets.ravel()


def _columns(base: int, strides: tuple[int, ...], batch: tuple[int, ...],
             shape: tuple[int, ...]) -> tuple[np.ndarray, int] | None:
    """The columns of an array at address ``base`` with ``strides`` (broadcast to ``batch +
    shape``): each entry's address at the first point (int64, the entries row-major) and the
    one step from point to point, in doubles; or None (see :func:`_column_step`)."""
    step = _column_step(base, strides, batch, shape)
    if step is None:
        return None
    return base + _entry_offsets(shape, strides[len(batch):]), step


def _row_major_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The strides of one C-contiguous float64 point of ``shape`` as :func:`_strides` gives
    them (0 on axes of length 1): a point's entries in the order of the entry point's
    columns, so their offsets are ``8 * arange(size)``."""
    strides, span = [], 8
    for n in reversed(shape):
        strides.append(0 if n == 1 else span)
        span *= n
    return tuple(reversed(strides))


def _byte_range(base: int, shape: tuple[int, ...], strides: tuple[int, ...]) -> tuple[int, int]:
    """The bytes an array of float64 spans: [first, last + 8)."""
    lo = hi = base
    for n, st in zip(shape, strides):
        if st < 0:
            lo += st * (n - 1)
        else:
            hi += st * (n - 1)
    return lo, hi + 8


def _entries_apart(shape: tuple[int, ...], strides: tuple[int, ...]) -> bool:
    """Whether no two entries of a float64 array of ``shape`` and ``strides`` can share
    memory: its axes from the shortest stride up, each stride past the bytes the axes before
    span (a sufficient test; layouts that fail it are made by ``as_strided``)."""
    span = 8
    for st, n in sorted((abs(st), n) for n, st in zip(shape, strides) if n > 1):
        if st < span:
            return False
        span += st * (n - 1)
    return True


def _overlapping(arrays: list[np.ndarray], bases: list[int], written: int
                 ) -> tuple[int, int] | None:
    """Two of ``arrays`` (float64, at addresses ``bases``) that share memory, one of them
    among the first ``written`` (the outputs; inputs that share memory with each other are
    only read): their positions, the lower first, or None. Their byte ranges sorted, then
    NumPy's exact test only where two ranges meet."""
    ranges = sorted((*_byte_range(b, a.shape, a.strides), k)
                    for k, (a, b) in enumerate(zip(arrays, bases)) if a.size)
    live: list[tuple[int, int]] = []  # (end, position) of the ranges not yet passed
    for lo, hi, k in ranges:
        live = [(end, j) for end, j in live if end > lo]
        for _, j in live:
            if min(j, k) < written and np.shares_memory(arrays[j], arrays[k]):
                return min(j, k), max(j, k)
        live.append((hi, k))
    return None


def _outputs_arg(name: str, outputs: Sequence[str], out: Any) -> list[Any]:
    """``into``'s ``out``: one array per output, in the order of ``outputs`` (an array where
    there is one output, a sequence in their order, or a mapping by name)."""
    if isinstance(out, Mapping):
        unknown = [k for k in out if k not in outputs]
        if unknown:
            raise CircuitError(f"{name}.into: out names {unknown[0]!r}, which is not an output "
                               f"(the outputs: {', '.join(outputs)})")
        missing = [k for k in outputs if k not in out]
        if missing:
            raise CircuitError(f"{name}.into: out has no array for the output {missing[0]!r}")
        return [out[k] for k in outputs]
    if isinstance(out, np.ndarray) or not isinstance(out, (tuple, list)):
        out = (out,)
    if len(out) != len(outputs):
        raise CircuitError(f"{name}.into: out has {len(out)} array"
                           f"{'s' if len(out) != 1 else ''} for {len(outputs)} output"
                           f"{'s' if len(outputs) != 1 else ''} ({', '.join(outputs)})")
    return list(out)


def _column_layout(sizes: list[int]) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """For arrays of ``sizes`` entries side by side as columns: each column's array (int64),
    its byte offset in its array's point where the entries are row-major, and each array's
    columns ``[first, end)``.

        >>> owner, offsets, spans = _column_layout([1, 3])
        >>> owner.tolist(), offsets.tolist(), spans
        ([0, 1, 1, 1], [0, 0, 8, 16], [(0, 1), (1, 4)])
    """
    sizes_ = np.array(sizes, dtype=np.int64)
    ends = np.cumsum(sizes_)
    owner = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes_)
    offsets = 8 * (np.arange(int(ends[-1]) if len(sizes) else 0, dtype=np.int64)
                   - np.repeat(ends - sizes_, sizes_))
    return owner, offsets, [(int(e - n), int(e)) for n, e in zip(sizes_, ends)]


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
        # The columns of a batch (_batch): each column's input (output), its offset from the
        # input's first entry where a point's entries are row-major, and each input's columns
        self._in_owner, self._in_offsets, self._in_spans = _column_layout(program.in_sizes)
        self._out_owner, self._out_offsets, self._out_spans = _column_layout(program.out_sizes)
        self._in_row_major = [_row_major_strides(s) for s in self._input_shapes]
        self._out_row_major = [_row_major_strides(s) for s in self._output_shapes]
        self._block_offsets = 8 * np.arange(self._nout, dtype=np.int64)  # (npoints, nout)
        self._block_steps = np.full(self._nout, self._nout, dtype=np.int64)

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

    _columns_ready = False
    """Whether ``_evaluate_columns`` runs (else a batch is one (npoints, inputs) array)."""

    def _evaluate_columns(self, in_ptr: np.ndarray, in_step: np.ndarray, out_ptr: np.ndarray,
                          out_step: np.ndarray, npoints: int) -> None:
        """The batch of ``npoints`` points with input column ``k`` of point ``p`` at address
        ``in_ptr[k] + 8 * p * in_step[k]`` and output column ``k`` written at ``out_ptr[k]
        + 8 * p * out_step[k]`` (int64 arrays): no copy of the inputs or the outputs."""
        raise NotImplementedError

    def _batch(self, values: list[np.ndarray], batch: tuple[int, ...],
               outs: tuple[list[int], list[int]] | list[np.ndarray] | None = None
               ) -> list[np.ndarray]:
        """The outputs of a batch (``values`` float64, broadcasting to ``batch``): written
        into ``outs`` where given (checked by :meth:`_check_out`), else into one
        (npoints, outputs) array whose column blocks they are. Each input is read where it
        is (its columns' addresses and steps), but one whose points are not one step apart
        (a broadcast axis before a longer one, say) or not aligned: that one is copied."""
        npoints = math.prod(batch)
        if not self._columns_ready:  # one (npoints, inputs) array, the outputs copied out
            columns = [np.broadcast_to(v, batch + shape).reshape(npoints, math.prod(shape))
                       for v, shape in zip(values, self._input_shapes)]
            flat = np.ascontiguousarray(np.concatenate(columns, axis=1)) if columns else \
                np.zeros((npoints, 0))
            out = self._evaluate(flat, npoints)
            results = [out[:, a:b].reshape(batch + shape) for a, b, shape in self._out_slices]
            if outs is None:
                return results
            for o, r in zip(outs, results):
                np.copyto(o, r)
            return outs
        if outs is None:
            block = np.empty((npoints, self._nout))
            results = [block[:, a:b].reshape(batch + shape) for a, b, shape in self._out_slices]
            out_ptr = _addresses((block,))[0] + self._block_offsets
            out_step = self._block_steps
        else:
            results = outs
            out_ptr, out_step = self._out_columns(outs, batch)
        if npoints == 0:
            return results
        # Each input's address and step in Python (a few per call), its entries' columns
        # as arrays: a (300, 300) input is 90,000 columns, which as Python lists cost more
        # than a small batch's arithmetic.
        nd = len(batch)
        bases = _addresses(values)
        steps: list[int] = []
        copies = []
        offsets = self._in_offsets
        for k, (v, shape) in enumerate(zip(values, self._input_shapes)):
            strides = _strides(v, nd + len(shape))
            step = _column_step(bases[k], strides, batch, shape)
            if step is None:  # this input alone, copied (aligned, one step apart)
                v = np.array(np.broadcast_to(v, batch + shape), order="C")
                copies.append(v)
                bases[k] = _addresses((v,))[0]
                strides = _strides(v, nd + len(shape))
                step = _column_step(bases[k], strides, batch, shape)
            steps.append(step)
            if shape and strides[nd:] != self._in_row_major[k]:  # not its entries in order
                if offsets is self._in_offsets:
                    offsets = offsets.copy()
                first, end = self._in_spans[k]
                offsets[first:end] = _entry_offsets(shape, strides[nd:])
        if self._scalar_inputs:  # one column per input
            in_ptr, in_step = np.array(bases, dtype=np.int64), np.array(steps, dtype=np.int64)
        else:
            owner = self._in_owner
            in_ptr = np.array(bases, dtype=np.int64)[owner] + offsets
            in_step = np.array(steps, dtype=np.int64)[owner]
        self._evaluate_columns(in_ptr, in_step, out_ptr, out_step, npoints)
        del copies  # (held until the call returned)
        return results

    def _out_columns(self, outs: list[np.ndarray], batch: tuple[int, ...]
                     ) -> tuple[np.ndarray, np.ndarray]:
        """The output columns of checked ``into`` arrays: addresses and steps (int64)."""
        nd = len(batch)
        bases = _addresses(outs)
        steps: list[int] = []
        offsets = self._out_offsets
        for k, (o, shape) in enumerate(zip(outs, self._output_shapes)):
            strides = _strides(o, o.ndim)
            steps.append(_column_step(bases[k], strides, batch, shape))
            if shape and strides[nd:] != self._out_row_major[k]:
                if offsets is self._out_offsets:
                    offsets = offsets.copy()
                first, end = self._out_spans[k]
                offsets[first:end] = _entry_offsets(shape, strides[nd:])
        owner = self._out_owner
        return (np.array(bases, dtype=np.int64)[owner] + offsets,
                np.array(steps, dtype=np.int64)[owner])

    def _check_out(self, outs: list[Any], batch: tuple[int, ...],
                   values: list[np.ndarray]) -> None:
        """A :class:`CircuitError` naming the output whose ``into`` array is not a writable
        float64 NumPy array of the call's shape (the batch, then the output's shape) with
        its points one step apart, or that shares memory with an input or another output
        (the outputs are written while the inputs are read)."""
        where = f"{self._name}.into"
        for o, shape, name in zip(outs, self._output_shapes, self.outputs):
            want = batch + shape
            if not isinstance(o, np.ndarray):
                raise CircuitError(f"{where}: out for the output {name!r} is a "
                                   f"{type(o).__name__}, not a NumPy array")
            if o.dtype != np.float64:
                raise CircuitError(f"{where}: out for the output {name!r} is {o.dtype}, not "
                                   f"float64 (the values would be cast)")
            if o.shape != want:
                raise CircuitError(f"{where}: out for the output {name!r} has shape "
                                   f"{o.shape}; the call's batch {batch} and the output's "
                                   f"shape {shape} make {want}")
            if not o.flags.writeable:
                raise CircuitError(f"{where}: out for the output {name!r} is read-only")
            if any(n > 1 and st == 0 for n, st in zip(o.shape, o.strides)):
                raise CircuitError(f"{where}: out for the output {name!r} has a zero stride "
                                   f"(strides {o.strides}): entries would share memory")
            if not _entries_apart(o.shape, o.strides):
                raise CircuitError(f"{where}: out for the output {name!r} has strides "
                                   f"{o.strides}, under which its entries share memory (one "
                                   f"would be written over another)")
        bases = _addresses(outs)
        for o, shape, name, base in zip(outs, self._output_shapes, self.outputs, bases):
            if _column_step(base, o.strides, batch, shape) is None:
                raise CircuitError(f"{where}: out for the output {name!r} has strides "
                                   f"{o.strides}, whose batch axes are not one step from "
                                   f"point to point (or not whole float64s): give a "
                                   f"C-contiguous array, or a view whose batch axes are")
        # every input, 0-d ones too: a 0-d view of an out (``out[0, ...]``), read at every
        # point, would be read after the points before had written it
        pair = _overlapping(list(outs) + values, bases + _addresses(values), len(outs))
        if pair is not None:
            j, k = pair
            other = (f"the input {self.inputs[k - len(outs)]!r}" if k >= len(outs)
                     else f"the out for the output {self.outputs[k]!r}")
            raise CircuitError(f"{where}: out for the output {self.outputs[j]!r} shares "
                               f"memory with {other}: the outputs are written while the "
                               f"inputs are read; give separate arrays")

    def into(self, out: Any, /, *args: Any, **kwargs: Any) -> Any:
        """The outputs of the call ``f(*args, **kwargs)`` written into ``out`` and returned:
        the same values, bit for bit, with no array allocated for them. ``out`` comes first,
        positional only (an input named ``out`` is still a keyword, as in any call): an
        array (one output), a sequence in the order of ``outputs`` or a mapping by output
        name, each a writable float64 NumPy
        array of the call's shape (the batch's, then the output's), its points one step
        apart (C-contiguous, or a view such as ``block[:, 0]``), sharing no memory with the
        inputs or the other outputs; else a :class:`CircuitError` naming the output.

            >>> import circuitgrad as cg, numpy as np
            >>> f = cg.to_tape(cg.parse("s = x + y\\nd = x - y", outputs=["s", "d"]))
            >>> x, s, d = np.arange(4.0), np.empty(4), np.empty(4)
            >>> r = f.into((s, d), x, 1.0)
            >>> r.s is s, s.tolist(), d.tolist()
            (True, [1.0, 2.0, 3.0, 4.0], [-1.0, 0.0, 1.0, 2.0])
            >>> f.into((s, np.empty(3)), x, 1.0)
            Traceback (most recent call last):
            ...
            circuitgrad.errors.CircuitError: f.into: out for the output 'd' has shape (3,); the call's batch (4,) and the output's shape () make (4,)
        """
        if self._csr:
            raise CircuitError(f"{self._name}.into: the outputs include sparse matrices (CSR), "
                               f"which into does not write; lower with csr=False for dense "
                               f"arrays")
        outs = _outputs_arg(self._name, self.outputs, out)
        values, batch = self._bind(args, kwargs)
        self._check_out(outs, batch, values)
        results = self._batch(values, batch, outs)
        return results[0] if self._Outputs is None else self._Outputs._make(results)

    def map(self, chunks: Iterable[Any], reuse: bool = False) -> Iterator[Any]:
        """The outputs of each chunk of ``chunks``, one chunk at a time (an iterator): a job
        of any number of points in the memory of a chunk, where ``chunks`` makes them one at
        a time (a generator). A chunk is a tuple of arguments, a mapping of them by input
        name, or anything else as the one argument of a function of one input. With
        ``reuse=True`` every chunk's outputs are written into the arrays of the chunk before
        (a shorter chunk of a 1-D batch into their first points; a chunk of another shape,
        or one that shares memory with them, gets new ones): each yielded output is good
        until the next is asked for (copy what is kept). A chunk of one point (numbers) yields
        numbers, as the call does. The values are those of the call on each
        chunk, bit for bit, for any chunking (no reduction across points).

            >>> import circuitgrad as cg, numpy as np
            >>> f = cg.to_tape(cg.parse("y = x * x"))
            >>> chunks = (np.arange(k, k + 3.0) for k in range(0, 9, 3))
            >>> [float(y.sum()) for y in f.map(chunks, reuse=True)]
            [5.0, 50.0, 149.0]
        """
        if not isinstance(reuse, bool):
            raise CircuitError(f"{self._name}.map: reuse={reuse!r}: give True or False")
        if reuse and self._csr:
            raise CircuitError(f"{self._name}.map: the outputs include sparse matrices (CSR), "
                               f"which reuse=True does not write; lower with csr=False, or "
                               f"map without reuse")
        return self._map(iter(chunks), reuse)

    def _map(self, chunks: Iterator[Any], reuse: bool) -> Iterator[Any]:
        buffers: tuple[tuple[int, ...], list[np.ndarray]] | None = None
        for chunk in chunks:
            if isinstance(chunk, tuple):
                args, kwargs = chunk, {}
            elif isinstance(chunk, Mapping):
                args, kwargs = (), dict(chunk)
            else:
                args, kwargs = (chunk,), {}
            if not reuse:
                yield self(*args, **kwargs)
                continue
            values, batch = self._bind(args, kwargs)
            outs = None
            if buffers is not None:
                have, arrays = buffers
                if have == batch:
                    outs = arrays
                elif len(have) == len(batch) == 1 and batch[0] <= have[0]:
                    outs = [a[:batch[0]] for a in arrays]
                if outs is not None:
                    arrays = outs + values  # (0-d inputs too: see _check_out)
                    if _overlapping(arrays, _addresses(arrays), len(outs)):
                        outs = None  # (a chunk made of the outputs before: new arrays)
            if outs is None:
                outs = [np.empty(batch + shape) for shape in self._output_shapes]
                buffers = (batch, outs)
            results = self._batch(values, batch, outs)
            if not batch:  # one point: numbers, as the call gives them (not 0-d buffers)
                results = [r[()] if type(r) is np.ndarray and r.ndim == 0 else r
                           for r in results]
            yield results[0] if self._Outputs is None else self._Outputs._make(results)

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
            results = self._batch(values, batch)
        if self._csr:
            results = self._csr(results)
        if self._Outputs is None:
            return results[0]
        return self._Outputs._make(results)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self._name}({', '.join(self.inputs)}) -> "
                f"{', '.join(self.outputs)}>")
