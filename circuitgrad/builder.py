"""The hash-consing builder: appends nodes with their shapes, shares common subexpressions,
applies the exact rewrites of :mod:`circuitgrad.circuit`'s invariants (and the sign identities of
:mod:`circuitgrad.primitives.signs`), and finishes into an immutable :class:`~circuitgrad.circuit.Circuit`.

    >>> b = Builder()
    >>> x = b.input("x")
    >>> (x * 1.0).id == x.id, (x * x).id == (x * x).id
    (True, True)
"""

from __future__ import annotations

import math
import struct
from itertools import compress
from typing import Any, Sequence

import numpy as np

from .circuit import Circuit, Shape
from .errors import CircuitError, ShapeError
from .primitives import PRIMITIVES, broadcast_shape, evaluate, signs
from .value import Value, user_line

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
        # The guards of a circuit traced at a point hold for what a pass builds on it
        # (circuitgrad/guards.py): finish carries them.
        self.guards = None if base is None else base.meta.get("guards")
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

    def scalar_inputs(self, names: Sequence[str]) -> list[int]:
        """New scalar inputs called ``names`` (none of them an input yet), made at once: their
        ids. (``scalarize`` names a loop's packed result so, a million scalars at a time.)

            >>> b = Builder()
            >>> b.scalar_inputs(["a", "b"]), b.input("b").id
            ([0, 1], 1)
        """
        if not self.inputs.keys().isdisjoint(names) or len(set(names)) != len(names):
            raise CircuitError("scalar_inputs: a name is given twice or is an input already")
        if type(self)._append is not Builder._append:  # (a builder that records each node)
            return [self.input(name).id for name in names]
        start = len(self.ops)
        ids = list(range(start, start + len(names)))
        self.inputs.update(zip(names, ids))
        self.ops.extend(["input"] * len(names))
        self.args.extend([()] * len(names))
        self.params.extend(names)
        self.shapes.extend([()] * len(names))
        return ids

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
        if self.guards is not None:
            meta.setdefault("guards", self.guards)
        for boundary in ("forward_count", "tangent_count"):  # first ids of a pass's nodes
            if boundary in meta:
                meta[boundary] = sum(live[: meta[boundary]])
        if "adjoint_of" in meta:
            meta["adjoint_of"] = {new_id[a]: new_id[f] for a, f in meta["adjoint_of"].items()
                                  if live[a] and live[f]}
        return Circuit(ops, new_args, params, shapes, names,
                       [(s, new_id[self.inputs[s]]) for s in order],
                       [(s, new_id[i]) for (s, _), i in zip(outputs, out_ids)], meta)
