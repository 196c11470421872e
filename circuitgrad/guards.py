"""Guards: the decisions a trace at a point took, as data of the circuit it made.

A function traced at a point (``cg.trace(fn, at=point)``, :func:`circuitgrad.function`) takes
the branch its values take there: each ``if``, ``while``, ``and``/``or``, ``min``/``max`` or
``int()`` of a traced value is a decision, recorded as a guard. A guard is a node of the
function's inputs and the value it must have for the circuit to be the function's:

* ``truth``: ``bool(node)`` was ``taken`` (the node is a condition, a mask ``x > 0`` or any
  value: its truth is ``node != 0``, as NumPy's);
* ``int``: ``int(x)`` was ``k`` (the node is ``x`` truncated toward zero, which must be ``k``);
* ``float``: ``float(x)`` was ``v`` (the node is ``x``, which must be ``v`` exactly; a NaN
  matches a NaN). The circuit then holds the number ``v`` where the function had ``x``, so its
  derivative through it is lost: derivatives of such a circuit are refused.

The guards of a circuit are ``c.meta["guards"]``, a :class:`Guards`: one small circuit whose
outputs ``g0, g1 ...`` are the guard nodes (the same inputs as the circuit), with the decision
of each. Every lowering checks them first (:func:`circuitgrad.to_numpy` raises where one
fails; :func:`circuitgrad.function` traces the other branch), diagrams and ``repr`` show them,
and passes that extend a circuit (``grad``, ``jvp``, ``hessian``, ``jacobian``) carry them.

    >>> import circuitgrad as cg
    >>> c = cg.trace(lambda x: x * 2.0 if x > 1.0 else -x, at=3.0)
    >>> print(c.meta["guards"])  # doctest: +ELLIPSIS
    g0: bool(x > 1.0) was True (at ...)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .circuit import Circuit
from .errors import CircuitError

KINDS = ("truth", "int", "float")


@dataclass(frozen=True)
class Guards:
    """The guards of a circuit traced at a point: ``circuit`` computes each guard node (output
    ``g<k>``); ``kinds[k]``, ``expected[k]`` say what it must be (``truth``: 1.0 for True, 0.0
    for False; ``int``, ``float``: the number); ``texts[k]`` says where the decision was taken
    (the condition and the user's line)."""

    circuit: Circuit
    kinds: tuple[str, ...]
    expected: tuple[float, ...]
    texts: tuple[str, ...]

    @property
    def decisions(self) -> tuple[tuple[str, float], ...]:
        """What was decided, guard by guard (a branch's key)."""
        return tuple(zip(self.kinds, self.expected))

    @functools.cached_property
    def _point_ndims(self) -> tuple[int, ...]:
        return tuple(len(self.circuit.shape(i)) for i in self.circuit.output_ids)

    @property
    def cuts_derivative(self) -> bool:
        """A ``float()`` guard replaced a value by its number: no derivative through it."""
        return "float" in self.kinds

    def holds(self, values: Sequence[Any]) -> np.ndarray:
        """Where every guard holds: ``values`` are the guard circuit's outputs (one per guard,
        each of batch shape + the guard node's one-entry point shape); a bool array of the
        batch shape (``()`` for one point)."""
        ok: Any = True
        for k, (kind, want) in enumerate(zip(self.kinds, self.expected)):
            v = np.asarray(values[k])
            point = self._point_ndims[k]
            if point:
                v = v.reshape(v.shape[:v.ndim - point])  # (a one-entry point: its entry)
            if kind == "truth":
                hold = (v != 0) == bool(want)
            elif np.isnan(want):
                hold = np.isnan(v)
            else:
                hold = v == want
            ok = ok & hold
        return np.asarray(ok, dtype=bool)

    def failed(self, values: Sequence[Any]) -> int | None:
        """The first guard that fails at some point of ``values`` (None: all hold)."""
        for k in range(len(self.kinds)):
            part = Guards(self.circuit, self.kinds[k:k + 1], self.expected[k:k + 1],
                          self.texts[k:k + 1])
            if not part.holds([values[k]]).all():
                return k
        return None

    def describe(self, k: int) -> str:
        """Guard ``k`` in words: ``g0: bool(x > 1.0) was True (at f.py:3: if x > 1.0:)``."""
        return f"g{k}: {self.texts[k]}"

    def __str__(self) -> str:
        return "\n".join(self.describe(k) for k in range(len(self.kinds)))

    def __repr__(self) -> str:
        return f"<Guards: {len(self.kinds)} decisions>"


def expected_text(kind: str, value: float) -> str:
    """What a guard's node must give, in words (``True``, ``3``, ``0.25``)."""
    if kind == "truth":
        return str(bool(value))
    if kind == "int":
        return str(int(value))
    return repr(float(value))


def refuse_cut_derivative(c: Circuit, what: str) -> None:
    """Raise for a derivative of a circuit in which ``float(x)`` made a value a number."""
    g = c.meta.get("guards")
    if g is not None and g.cuts_derivative:
        k = g.kinds.index("float")
        raise CircuitError(f"{what}: the trace replaced a traced value by its number "
                           f"({g.describe(k)}), so the derivative through it is lost; "
                           "compute with the value itself instead of float(x)")


def refuse_guarded(c: Circuit, what: str) -> None:
    """Raise for a lowering that does not check guards yet, given a circuit that has them."""
    g = c.meta.get("guards")
    if g is not None:
        raise CircuitError(f"{what}: the circuit was traced at a point and holds only where "
                           f"its {len(g.kinds)} guards do ({g.describe(0)} ...); {what} does "
                           "not check guards: use to_numpy or cg.function (docs/tracing.md, "
                           "\"Branches\")")
