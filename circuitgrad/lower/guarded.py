"""Compiled lowerings of circuits traced at a point: the guards checked first, on every call.

A circuit made by ``cg.trace(fn, at=point)`` is ``fn`` only where its guards hold
(circuitgrad/guards.py). ``to_numpy`` checks them itself; ``to_tape``, ``to_c`` and
``to_fused`` lower the circuit without them and wrap the result in a :class:`GuardedFunction`,
which computes the guards (their small circuit, through ``to_numpy``) before each call and
raises, naming the guard and the batch point, where one fails: never the other branch's number.

    >>> import circuitgrad as cg
    >>> f = cg.to_tape(cg.trace(lambda x: x * 2.0 if x > 1.0 else -x, at=3.0))
    >>> float(f(5.0))
    10.0
    >>> f(0.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    circuitgrad.errors.CircuitError: f(): guard g0: bool(x > 1.0) was True ... does not hold at this point...
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Callable

from ..circuit import Circuit
from .numpy import NumpyFunction


def without_guards(c: Circuit) -> Circuit:
    """The same circuit without its guards (what a compiled lowering compiles)."""
    bare = copy.copy(c)
    bare._meta = {k: v for k, v in c.meta.items() if k != "guards"}  # noqa: SLF001
    return bare


class GuardedFunction:
    """A lowered circuit whose guards are checked before every call; called as the lowered
    function is (points, batches, named outputs).

    Attributes:
        circuit: the circuit, guards included; ``lowered``: the function it wraps.
    """

    def __init__(self, circuit: Circuit, lowered: Any, name: str, rebuild: Callable[[], Any]):
        self.circuit = circuit
        self.lowered = lowered
        self.inputs, self.outputs = circuit.inputs, circuit.outputs
        # to_numpy's binding and guard check, without compiling the circuit itself (nor
        # contracting its products: the checker never runs it)
        self._checker = NumpyFunction(circuit, name, mode="interpret", contract=False)
        self._rebuild = rebuild
        signature = getattr(lowered, "__signature__", None)
        if signature is not None:
            self.__signature__ = signature

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(args, kwargs, True)

    def _call(self, args: tuple, kwargs: dict, check: bool) -> Any:
        # (check=False: the caller has just found that the guards hold, as cg.function's
        # branches do)
        if check:
            values, batch, _ = self._checker._bind(args, kwargs)  # noqa: SLF001
            self._checker._check_guards(values, batch)  # noqa: SLF001
        return self.lowered(*args, **kwargs)

    def guards_hold(self, *args: Any, **kwargs: Any) -> Any:
        """Where the guards hold (a bool array of the batch shape)."""
        return self._checker.guards_hold(*args, **kwargs)

    @property
    def source(self) -> str:
        """The guards' function (checked first) and the lowered function's source."""
        g = self.circuit.meta["guards"]
        checks = "\n".join(f"#   {g.describe(k)}" for k in range(len(g.kinds)))
        return (f"{self._checker._guard_run.source}\n\n# checked first, on every call: the "  # noqa: SLF001
                f"function below is the circuit where each guard is as traced\n{checks}\n\n"
                f"{getattr(self.lowered, 'source', repr(self.lowered))}")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.lowered, name)  # (c_source, groups, width ... of the lowering)

    def __reduce__(self):
        return (_rebuilt, (self._rebuild,))

    def __repr__(self) -> str:
        count = len(self.circuit.meta["guards"].kinds)
        return f"<guarded {self.lowered!r}: {count} guards checked first>"


def _rebuilt(rebuild: Callable[[], Any]) -> Any:
    return rebuild()


def guarded(c: Circuit, lower: Callable[..., Any], **kwargs: Any) -> GuardedFunction:
    """``lower(c, **kwargs)`` for a circuit with guards: the lowering of the circuit without
    them, wrapped so that they are checked first on every call."""
    return GuardedFunction(c, lower(without_guards(c), **kwargs), kwargs.get("name", "f"),
                           functools.partial(lower, c, **kwargs))
