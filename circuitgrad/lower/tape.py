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

A loop (``scan``) is a loop site of the program (``scalarize(c, loops=True)``): its results
are inputs of the tape and its arguments outputs; the tape runs once per loop and once more,
and the loop runs its body's own tape once per step over all the points of the call (a loop
inside the body is a loop of that tape; a checkpointed adjoint loop runs the binomial schedule
over its forward and adjoint bodies' tapes).

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

import math
from typing import Any

import numpy as np

from ..circuit import Circuit, as_circuit, no_gc
from ..errors import CircuitError
from ..primitives.loops import revolve
from .guarded import guarded
from .program import (  # noqa: F401  (the names that lived here stay importable)
    BUILD_HINT, EXTENSION, EXTENSION_PROBLEM, CompiledFunction, ScalarProgram, _allocate, _arguments,
    _input_columns, _needs_scalarize)

_tape = EXTENSION  # (a test sets it to None: to_tape then says how to build it)


class TapeFunction(CompiledFunction):
    """A circuit lowered to a tape: call it as a :class:`~circuitgrad.NumpyFunction`.

    Attributes:
        circuit: the circuit it was made from.
        code: the instructions, int32[n, 5]: opcode, out, a0, a1, a2 (registers).
        registers: the size of the register file (the live width of the circuit).

    A batch is read where it is (no copy of float64 inputs, ``_tape.run_columns``);
    :meth:`~circuitgrad.lower.program.CompiledFunction.into` writes the outputs into arrays
    given, :meth:`~circuitgrad.lower.program.CompiledFunction.map` runs an iterable of chunks
    (docs/compiled.md, "Streaming").

    >>> import circuitgrad as cg
    >>> f = cg.to_tape(cg.parse("J = sum(v * v)", shapes={"v": (3,)}))
    >>> float(f([1.0, 2.0, 3.0])), f.registers
    (14.0, 6)
    """

    def __init__(self, c: Circuit, name: str = "f", csr: bool = True):
        if _tape is None:
            raise CircuitError(f"to_tape: the tape evaluator (the C extension "
                               f"circuitgrad.lower._tape) {EXTENSION_PROBLEM or 'is not built'}"
                               f"; {BUILD_HINT}")
        program = ScalarProgram(c, "to_tape", _tape.OPS, loops=True)
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
        self._loops = [_Loop(site, name) for site in program.loops]
        # a batch read and written in place (_evaluate_columns); loops: one flat array
        self._columns_ready = not self._loops and hasattr(_tape, "run_columns")
        if self._loops:
            # The tape runs once per loop and once more (the loops' results are inputs of
            # the program, their arguments outputs): run k gives loop k's arguments, which
            # read only the inputs and the results of the loops before it.
            self._point_ready = False
            results = [i for site in program.loops for i in site["result"]]
            args = [i for site in program.loops for group in site["args"] for i in group]
            self._in_regs = program.reg[list(program.in_ids) + results].astype(np.int32)
            self._out_regs = program.reg[list(program.out_ids) + args].astype(np.int32)

    def _run(self, inputs: np.ndarray, npoints: int, nout: int) -> np.ndarray:
        out = np.empty((npoints, nout))
        _tape.run(self.code, self.registers, self._const_regs, self._const_values,
                  self._in_regs, inputs, self._out_regs, out, npoints)
        return out

    def _evaluate(self, inputs: np.ndarray, npoints: int) -> np.ndarray:
        if self._loops:
            return self._evaluate_loops(inputs, npoints)
        out = np.empty((npoints, self._nout))
        _tape.run(self.code, self.registers, self._const_regs, self._const_values,
                  self._in_regs, inputs, self._out_regs, out, npoints)
        return out

    def _evaluate_loops(self, inputs: np.ndarray, npoints: int) -> np.ndarray:
        nin = inputs.shape[1] if inputs.ndim == 2 else len(self._program.in_ids)
        inputs = np.reshape(inputs, (npoints, nin))
        full = np.zeros((npoints, len(self._in_regs)))
        full[:, :nin] = inputs
        at_in, at_out = nin, self._nout
        for loop in self._loops:
            out = self._run(np.ascontiguousarray(full), npoints, len(self._out_regs))
            args = out[:, at_out:at_out + loop.nargs]
            full[:, at_in:at_in + loop.nresult] = loop(args, npoints)
            at_in, at_out = at_in + loop.nresult, at_out + loop.nargs
        return self._run(np.ascontiguousarray(full), npoints, len(self._out_regs))[:, :self._nout]

    def _evaluate_columns(self, in_ptr: np.ndarray, in_step: np.ndarray, out_ptr: np.ndarray,
                          out_step: np.ndarray, npoints: int) -> None:
        _tape.run_columns(self.code, self.registers, self._const_regs, self._const_values,
                          self._in_regs, in_ptr, in_step, self._out_regs, out_ptr, out_step,
                          npoints)

    def _point(self, args: tuple) -> Any:
        return _tape.run_point(self.code, self.registers, self._const_regs, self._const_values,
                               self._in_regs, self._out_regs, args, np.float64, self._Outputs)

    def __reduce__(self):
        # Pickles as the circuit; the tape is built again where it is unpickled.
        return (to_tape, (self.circuit, self._name, self._csr is not None))


class _Loop:
    """A loop site of a tape: its body as a tape, run once per step over all points (a
    checkpointed adjoint loop: its forward body's tape too, by the binomial schedule)."""

    def __init__(self, site: dict[str, Any], name: str):
        prm = site["params"]
        self.body, self.length = prm["body"], prm["length"]
        self.reverse, self.save = prm["reverse"], prm["save"]
        self.run_body = TapeFunction(self.body.circuit, f"{name} (a loop's body)")
        self.recompute, self.checkpoints = prm.get("recompute"), prm.get("checkpoints")
        if self.recompute is not None:
            self.run_forward = TapeFunction(self.recompute.circuit,
                                            f"{name} (a checkpointed loop's forward body)")
        self.sizes = [len(group) for group in site["args"]]
        self.nargs, self.nresult = sum(self.sizes), len(site["result"])

    def __call__(self, args: np.ndarray, npoints: int) -> np.ndarray:
        """The packed results (float64[npoints, result]) from the arguments' scalars."""
        body, length = self.body, self.length
        k, m = body.carries, body.xs
        cuts = np.cumsum([0] + self.sizes)
        parts = [args[:, a:b] for a, b in zip(cuts[:-1], cuts[1:])]
        if self.recompute is not None:
            return self._checkpointed(parts, npoints)
        carry = np.concatenate(parts[:k], axis=1) if k else np.zeros((npoints, 0))
        xs = [p.reshape(npoints, length, -1) for p in parts[k:k + m]]
        closures = parts[k + m:]
        ncarry = carry.shape[1]
        ysize = [math.prod(s) for s in body.shapes()[3]]
        ys = np.empty((npoints, length, sum(ysize)))
        saved = np.empty((npoints, length, ncarry)) if self.save else None
        for t in (range(length - 1, -1, -1) if self.reverse else range(length)):
            if saved is not None:
                saved[:, t] = carry
            step = np.ascontiguousarray(np.concatenate(
                [carry] + [x[:, t] for x in xs] + closures, axis=1))
            out = self.run_body._evaluate(step, npoints)
            carry, ys[:, t] = out[:, :ncarry], out[:, ncarry:]
        packed = [carry]
        cuts = np.cumsum([0] + ysize)
        packed += [ys[:, :, a:b].reshape(npoints, -1) for a, b in zip(cuts[:-1], cuts[1:])]
        if saved is not None:
            sizes = np.cumsum([0] + [math.prod(s) for s in body.shapes()[0]])
            packed += [saved[:, :, a:b].reshape(npoints, -1)
                       for a, b in zip(sizes[:-1], sizes[1:])]
        return np.concatenate(packed, axis=1)


    def _checkpointed(self, parts: list[np.ndarray], npoints: int) -> np.ndarray:
        """A checkpointed adjoint loop over all points at once: the schedule of
        ``primitives.loops._checkpointed_function`` (an explicit stack of tasks, at most
        ``checkpoints`` carries stored beside the initial one: ``primitives.loops.revolve``)."""
        body, forward, length = self.body, self.recompute, self.length
        ka, k, m, xa = body.carries, forward.carries, forward.xs, body.xs
        carry = _joined(parts[:ka], npoints)
        init = _joined(parts[ka:ka + k], npoints)
        seqs = [p.reshape(npoints, length, -1) for p in parts[ka + k:ka + xa]]
        closures = parts[ka + xa:]
        nca, K = carry.shape[1], init.shape[1]
        ysize = [math.prod(s) for s in body.shapes()[3]]
        ys = np.empty((npoints, length, sum(ysize)))
        order = range(length) if self.reverse else range(length - 1, -1, -1)

        def advance(state: np.ndarray, start: int, stop: int) -> np.ndarray:
            for p in range(start, stop):
                t = order[p]
                step = _joined([state] + [x[:, t] for x in seqs[:m]] + closures, npoints)
                state = self.run_forward._evaluate(np.ascontiguousarray(step), npoints)[:, :K]
            return state

        def adjoint_step(p: int, state: np.ndarray) -> None:
            nonlocal carry
            t = order[p]
            step = _joined([carry, state] + [x[:, t] for x in seqs] + closures, npoints)
            out = self.run_body._evaluate(np.ascontiguousarray(step), npoints)
            carry, ys[:, t] = out[:, :nca], out[:, nca:]

        revolve(length, self.checkpoints, init, advance, adjoint_step)
        packed = [carry]
        cuts = np.cumsum([0] + ysize)
        packed += [ys[:, :, a:b].reshape(npoints, -1) for a, b in zip(cuts[:-1], cuts[1:])]
        return np.concatenate(packed, axis=1)


def _joined(parts: list[np.ndarray], npoints: int) -> np.ndarray:
    """The columns of ``parts`` side by side (float64[npoints, 0] for none)."""
    return np.concatenate(parts, axis=1) if parts else np.zeros((npoints, 0))


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
    if c.meta.get("guards") is not None:  # checked first, on every call
        return guarded(c, to_tape, name=name, csr=csr)
    with no_gc():
        return TapeFunction(c, name, csr)
