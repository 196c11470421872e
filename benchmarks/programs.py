"""Workloads as programs: one straight-line program, written out for every tool.

A :class:`Program` is a list of lines ``target = op(args)`` over scalar inputs. Its
:meth:`~Program.text` is what ``cg.parse`` reads; :meth:`~Program.python` is the same program
as a Python function whose elementary functions come from a namespace ``F`` (NumPy, JAX,
PyTorch, autograd, CasADi, sympy, symengine, PyTensor or circuitgrad's own), so every tool
computes the very same circuit, op for op. :data:`NAMESPACES` holds the translation of each
function for each tool (``relu``, ``sigmoid``, ``square`` where a tool lacks them).

Workloads:

* :func:`random_program` — a seeded random program of ``n`` operations over all of
  circuitgrad's scalar functions and ``+ - * / **``. Each value carries an interval that
  bounds it for inputs in [−1, 1]; an op is only drawn where its arguments lie in its domain
  and the result stays within ±100 (``log``/``sqrt`` of values ≥ 0.05, ``/`` by values away
  from 0, ``exp`` of values ≤ 4), so no tool meets NaN or overflow and all gradients can be
  compared. Every value is used: the first argument of each op is the oldest value not yet
  used (inputs first), the second a random one of the last 64 (fan-out), and the values
  still unused at the end are summed into the output. So the circuit has about ``n`` nodes.
* :func:`rosenbrock` — the extended Rosenbrock function in ``n`` variables (Moré, Garbow &
  Hillstrom): Σᵢ 100·(x₂ᵢ₊₁ − x₂ᵢ²)² + (1 − x₂ᵢ)², seven ops per pair plus the running sum.

    >>> p = random_program(6, seed=1, n_inputs=2)
    >>> len(p.lines) >= 6, p.inputs
    (True, ('x0', 'x1'))
    >>> import circuitgrad as cg
    >>> f = cg.to_numpy(cg.parse(rosenbrock(4).text(), inputs=rosenbrock(4).inputs))
    >>> float(f(1.0, 1.0, 1.0, 1.0)), float(f(0.0, 0.0, 0.0, 0.0))
    (0.0, 2.0)
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Callable

UNARY = ("sin", "cos", "tanh", "exp", "log", "sqrt", "square", "abs", "relu", "sigmoid")
BINARY = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
BOUND = 100.0


@dataclass(frozen=True)
class Line:
    """``target = op(args)``; an argument is a value's name or a float constant."""

    target: str
    op: str
    args: tuple[Any, ...]

    def expression(self, call: Callable[[str, str], str] | None = None) -> str:
        """The right-hand side in Python syntax (functions as ``call(name, arg)``)."""
        a = [repr(float(x)) if isinstance(x, float) else x for x in self.args]
        a = [f"({x})" if x.startswith("-") else x for x in a]
        if self.op in BINARY:
            return f"{a[0]} {BINARY[self.op]} {a[1]}"
        return call(self.op, a[0]) if call else f"{self.op}({a[0]})"


@dataclass(frozen=True)
class Program:
    """A straight-line program over scalar inputs; the last line is the output."""

    name: str
    inputs: tuple[str, ...]
    lines: tuple[Line, ...]

    @property
    def output(self) -> str:
        return self.lines[-1].target

    def text(self) -> str:
        """The program for ``cg.parse``: one ``vK = ...`` line per op."""
        return "\n".join(f"{ln.target} = {ln.expression()}" for ln in self.lines)

    def python(self, name: str = "f") -> str:
        """A Python function ``name(inputs...)`` using ``F.sin`` etc. for the functions."""
        body = [f"    {ln.target} = {ln.expression(lambda fn, x: f'F.{fn}({x})')}"
                for ln in self.lines]
        return "\n".join([f"def {name}({', '.join(self.inputs)}):", *body,
                          f"    return {self.output}"])

    def function(self, namespace: Any, name: str = "f") -> Callable[..., Any]:
        """The Python function of :meth:`python`, compiled against ``namespace``."""
        scope: dict[str, Any] = {"F": namespace}
        exec(compile(self.python(name), f"<{self.name}>", "exec"), scope)  # noqa: S102
        return scope[name]

    def point(self, seed: int = 1) -> list[float]:
        """A random point in the inputs' domain."""
        rng = random.Random(seed)
        lo, hi = (-1.0, 1.0) if self.name.startswith("random") else (-1.5, 1.5)
        return [rng.uniform(lo, hi) for _ in self.inputs]

    def batch(self, points: int = 4096, seed: int = 2) -> list[Any]:
        """``points`` random points: one NumPy array per input."""
        import numpy as np
        rng = np.random.default_rng(seed)
        lo, hi = (-1.0, 1.0) if self.name.startswith("random") else (-1.5, 1.5)
        return [rng.uniform(lo, hi, points) for _ in self.inputs]


# -- the random programs --------------------------------------------------------------------

def _unary_range(op: str, lo: float, hi: float) -> tuple[float, float] | None:
    """The image of [lo, hi] under ``op``, or None where ``op`` may leave its safe domain."""
    m = max(abs(lo), abs(hi))
    if op in ("sin", "cos"):
        return (-1.0, 1.0)
    if op == "tanh":
        return (math.tanh(lo), math.tanh(hi))
    if op == "sigmoid":
        return (1 / (1 + math.exp(-lo)), 1 / (1 + math.exp(-hi)))
    if op == "relu":
        return (max(lo, 0.0), max(hi, 0.0))
    if op == "abs":
        return (0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi)), m)
    if op == "square":
        return ((0.0 if lo <= 0 <= hi else min(lo * lo, hi * hi)), m * m) if m <= 10 else None
    if op == "exp":
        return (math.exp(lo), math.exp(hi)) if hi <= 4 else None
    if op == "log":
        return (math.log(lo), math.log(hi)) if lo >= 0.05 else None
    if op == "sqrt":
        return (math.sqrt(lo), math.sqrt(hi)) if lo >= 0.05 else None
    raise ValueError(op)


def _binary_range(op: str, a: tuple[float, float], b: tuple[float, float]
                  ) -> tuple[float, float] | None:
    if op == "add":
        r = (a[0] + b[0], a[1] + b[1])
    elif op == "sub":
        r = (a[0] - b[1], a[1] - b[0])
    elif op == "mul":
        c = [x * y for x in a for y in b]
        r = (min(c), max(c))
    elif op == "div":
        if not (b[0] >= 0.1 or b[1] <= -0.1):
            return None
        c = [x / y for x in a for y in b]
        r = (min(c), max(c))
    else:
        raise ValueError(op)
    return r if max(abs(r[0]), abs(r[1])) <= BOUND else None


def random_program(n: int, seed: int = 0, n_inputs: int = 8, window: int = 64) -> Program:
    """A seeded random straight-line program of ``n`` operations (see the module docstring).

    Args:
        n: the number of operations (a few more: the unused values summed at the end).
        seed: the random seed; the same seed gives the same text.
        n_inputs: scalar inputs ``x0 … x{n_inputs-1}``.
        window: the second argument of a binary op is one of the last ``window`` values.
    """
    rng = random.Random(seed)
    inputs = tuple(f"x{k}" for k in range(n_inputs))
    names: list[str] = list(inputs)
    index: dict[str, int] = {name: k for k, name in enumerate(names)}
    ranges: list[tuple[float, float]] = [(-1.0, 1.0)] * n_inputs
    unused: dict[int, None] = dict.fromkeys(range(n_inputs))  # ordered: oldest first
    # May the value be exactly ±0? (relu makes zeros; f(0) = 0 and products keep them.) The
    # kinks relu and abs are not applied to such values: their derivative at exactly 0 is a
    # convention (relu'(0) is 1 here, 0 in PyTorch, 1/2 in CasADi and autograd).
    zero: list[bool] = [False] * n_inputs
    lines: list[Line] = []

    def add(op: str, args: tuple[Any, ...], r: tuple[float, float], used: list[int]) -> None:
        for u in used:
            unused.pop(u, None)
        zb = [zero[index[a]] if isinstance(a, str) else a == 0 for a in args]
        if op in ("add", "sub"):
            z = all(zb)
        elif op in ("mul",):
            z = any(zb)
        elif op in ("div", "pow", "sin", "tanh", "square", "abs", "relu", "sqrt"):
            z = zb[0] or op == "relu"
        else:
            z = False
        target = f"v{len(lines)}"
        lines.append(Line(target, op, args))
        unused[len(names)] = None
        index[target] = len(names)
        names.append(target)
        ranges.append(r)
        zero.append(z)

    while len(lines) < n:
        first = next(iter(unused)) if unused else rng.randrange(len(names))
        ra = ranges[first]
        kind = rng.random()
        if kind < 0.5:
            second = rng.randrange(max(0, len(names) - window), len(names))
            op = rng.choice(("add", "sub", "mul", "mul", "div"))
            if second == first and op in ("sub", "div"):
                op = "mul"  # a - a and a / a would be constants
            a, b = (first, second) if rng.random() < 0.5 or op == "div" else (second, first)
            r = _binary_range(op, ranges[a], ranges[b])
            if r is not None:
                add(op, (names[a], names[b]), r, [a, b])
                continue
        elif kind < 0.6:
            c = round(rng.uniform(-2.0, 2.0), 3) or 0.5
            op = rng.choice(("add", "mul", "pow"))
            if op == "pow":
                e = float(rng.choice((2, 3)))
                m = max(abs(ra[0]), abs(ra[1]))
                if m ** e <= BOUND:
                    lo = 0.0 if (e == 2 and ra[0] <= 0 <= ra[1]) else min(ra[0] ** e, ra[1] ** e)
                    hi = m ** e if e == 2 else ra[1] ** e
                    add("pow", (names[first], e), (lo, hi), [first])
                    continue
            else:
                r = _binary_range(op, ra, (c, c))
                if r is not None:
                    add(op, (names[first], c) if rng.random() < 0.5 else (c, names[first]),
                        r, [first])
                    continue
        ops = list(UNARY)
        rng.shuffle(ops)
        for op in ops:
            if zero[first] and op in ("relu", "abs"):
                continue
            r = _unary_range(op, *ra)
            if r is not None:
                add(op, (names[first],), r, [first])
                break
    # Sum what is still unused, so that every value reaches the output.
    rest = [k for k in unused if k != len(names) - 1]
    for k in rest:
        last = len(names) - 1
        add("add", (names[last], names[k]), (0.0, 0.0), [last, k])
    return Program(f"random-{n}", inputs, tuple(lines))


def one_neuron(d: int) -> str:
    """The notes' one-neuron network J = ½(y − relu(wᵀx + b))² with ``d`` inputs, written out
    in scalars one operation a line (inputs w…, b, x…, y in order of first use)."""
    lines = [f"p{i} = w{i}*x{i}" for i in range(d)]
    acc = "p0"
    for i in range(1, d):
        lines.append(f"s{i} = {acc} + p{i}")
        acc = f"s{i}"
    lines += [f"z = {acc} + b", "a = relu(z)", "J = 0.5*(y - a)**2"]
    return "\n".join(lines)


def two_layer(d: int, m: int) -> str:
    """The notes' two-layer network (``d`` inputs, ``m`` relu units, one output), in scalars
    one operation a line."""
    lines = []
    for j in range(m):
        acc = None
        for i in range(d):
            lines.append(f"p{j}_{i} = W{j}_{i}*x{i}")
            if acc is None:
                acc = f"p{j}_{i}"
            else:
                lines.append(f"s{j}_{i} = {acc} + p{j}_{i}")
                acc = f"s{j}_{i}"
        lines += [f"z{j} = {acc} + b{j}", f"a{j} = relu(z{j})", f"q{j} = u{j}*a{j}"]
    acc = "q0"
    for j in range(1, m):
        lines.append(f"o{j} = {acc} + q{j}")
        acc = f"o{j}"
    lines += [f"o = {acc} + c", "J = 0.5*(o - y)**2"]
    return "\n".join(lines)


def rosenbrock(n: int) -> Program:
    """The extended Rosenbrock function in ``n`` variables (``n`` even) as a program."""
    if n % 2:
        raise ValueError("the extended Rosenbrock function needs an even n")
    inputs = tuple(f"x{k}" for k in range(n))
    lines: list[Line] = []
    total = None
    for i in range(n // 2):
        a, b = f"x{2 * i}", f"x{2 * i + 1}"
        lines += [Line(f"s{i}", "pow", (a, 2.0)), Line(f"d{i}", "sub", (b, f"s{i}")),
                  Line(f"e{i}", "pow", (f"d{i}", 2.0)), Line(f"p{i}", "mul", (100.0, f"e{i}")),
                  Line(f"u{i}", "sub", (1.0, a)), Line(f"q{i}", "pow", (f"u{i}", 2.0)),
                  Line(f"t{i}", "add", (f"p{i}", f"q{i}"))]
        if total is not None:
            lines.append(Line(f"J{i}", "add", (total, f"t{i}")))
            total = f"J{i}"
        else:
            total = f"t{i}"
    return Program(f"rosenbrock-{n}", inputs, tuple(lines))


def rosenbrock_numpy() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Hand-written NumPy: f(x) and (f, ∇f)(x) for ``x`` of shape (n,) or (n, points)."""
    import numpy as np

    def f(x: Any) -> Any:
        x1, x2 = x[0::2], x[1::2]
        return np.sum(100.0 * (x2 - x1 * x1) ** 2 + (1.0 - x1) ** 2, axis=0)

    def value_and_grad(x: Any) -> tuple[Any, Any]:
        x1, x2 = x[0::2], x[1::2]
        t = x2 - x1 * x1
        u = 1.0 - x1
        g = np.empty_like(x)
        g[0::2] = -400.0 * t * x1 - 2.0 * u
        g[1::2] = 200.0 * t
        return np.sum(100.0 * t * t + u * u, axis=0), g

    return f, value_and_grad


# -- one namespace of elementary functions per tool ------------------------------------------

class _Namespace:
    def __init__(self, **fns: Callable[..., Any]):
        self.__dict__.update(fns)


def _sigmoid_from(exp: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda x: 1 / (1 + exp(-x))


def namespace(tool: str) -> Any:
    """The functions ``F.sin … F.sigmoid`` for ``tool`` (imports the tool)."""
    if tool == "circuitgrad":
        import circuitgrad as cg
        return _Namespace(**{fn: getattr(cg, fn) for fn in UNARY})
    if tool in ("numpy", "autograd"):
        import numpy
        np = numpy
        if tool == "autograd":
            import autograd.numpy as np  # type: ignore[no-redef]
        return _Namespace(sin=np.sin, cos=np.cos, tanh=np.tanh, exp=np.exp, log=np.log,
                          sqrt=np.sqrt, square=np.square, abs=np.abs,
                          relu=lambda x: np.maximum(x, 0.0), sigmoid=_sigmoid_from(np.exp))
    if tool == "jax":
        import jax
        import jax.numpy as jnp
        return _Namespace(sin=jnp.sin, cos=jnp.cos, tanh=jnp.tanh, exp=jnp.exp, log=jnp.log,
                          sqrt=jnp.sqrt, square=jnp.square, abs=jnp.abs, relu=jax.nn.relu,
                          sigmoid=jax.nn.sigmoid)
    if tool == "torch":
        import torch
        return _Namespace(sin=torch.sin, cos=torch.cos, tanh=torch.tanh, exp=torch.exp,
                          log=torch.log, sqrt=torch.sqrt, square=torch.square, abs=torch.abs,
                          relu=torch.relu, sigmoid=torch.sigmoid)
    if tool == "pytensor":
        import pytensor.tensor as pt
        return _Namespace(sin=pt.sin, cos=pt.cos, tanh=pt.tanh, exp=pt.exp, log=pt.log,
                          sqrt=pt.sqrt, square=pt.sqr, abs=pt.abs,
                          relu=lambda x: pt.maximum(x, 0.0), sigmoid=pt.sigmoid)
    if tool == "casadi":
        import casadi as ca
        return _Namespace(sin=ca.sin, cos=ca.cos, tanh=ca.tanh, exp=ca.exp, log=ca.log,
                          sqrt=ca.sqrt, square=lambda x: x ** 2, abs=ca.fabs,
                          relu=lambda x: ca.fmax(x, 0), sigmoid=_sigmoid_from(ca.exp))
    if tool == "sympy":
        import sympy as sp
        return _Namespace(sin=sp.sin, cos=sp.cos, tanh=sp.tanh, exp=sp.exp, log=sp.log,
                          sqrt=sp.sqrt, square=lambda x: x ** 2, abs=sp.Abs,
                          relu=lambda x: sp.Max(x, 0), sigmoid=_sigmoid_from(sp.exp))
    if tool == "symengine":
        import symengine as se
        # symengine cannot differentiate Abs or Max: both as Piecewise, the same functions.
        return _Namespace(sin=se.sin, cos=se.cos, tanh=se.tanh, exp=se.exp, log=se.log,
                          sqrt=se.sqrt, square=lambda x: x ** 2,
                          abs=lambda x: se.Piecewise((x, x > 0), (-x, True)),
                          relu=lambda x: se.Piecewise((x, x > 0), (0, True)),
                          sigmoid=_sigmoid_from(se.exp))
    raise ValueError(f"no namespace for {tool!r}")
