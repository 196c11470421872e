"""Derivatives of Python functions, as JAX users write them: ``cg.grad(f)`` is a function.

``grad``, ``jacobian`` and ``hessian`` given a :class:`~circuitgrad.Circuit` (or program text)
are the transforms (:mod:`circuitgrad.transforms`), unchanged. Given a Python function they
return a function that

* called with numbers or arrays (or containers of them: dicts, lists, tuples, named tuples)
  traces ``f`` once per structure and shapes of its arguments, differentiates the circuit,
  lowers it with :func:`~circuitgrad.to_numpy` (all cached) and returns the derivative in the
  structure of the argument it is taken with respect to;
* called on traced values (inside a function that is being traced: another ``grad``, a loss
  with a gradient penalty) builds the derivative's nodes into that trace: the derivative's
  circuit is inlined node by node, in order (no recursion), so derivatives compose to any
  order, ``cg.grad(lambda x: cg.grad(f)(x) @ v)``.

    >>> import numpy as np, circuitgrad as cg
    >>> f = lambda x: np.sum(x ** 3)
    >>> cg.grad(f)(np.array([1.0, 2.0])).tolist()
    [3.0, 12.0]
    >>> cg.grad(lambda x: cg.grad(f)(x) @ np.ones(2))(np.array([1.0, 2.0])).tolist()
    [6.0, 12.0]
    >>> cg.grad(lambda p: p["w"] * p["b"])({"w": 2.0, "b": 3.0})
    {'w': np.float64(3.0), 'b': np.float64(2.0)}
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import numpy as np

from .builder import Builder
from .circuit import Circuit
from .errors import CircuitError
from .frontends import pytree
from .frontends.trace import trace
from .lower import to_numpy
from .transforms import grad as _grad_circuit
from .transforms import hessian as _hessian_circuit
from .transforms import jacobian as _jacobian_circuit
from .value import Value

__all__ = ["grad", "jacobian", "hessian"]


def _is_circuit(f: Any) -> bool:
    return isinstance(f, (Circuit, str)) or not callable(f)


def grad(f: Any, wrt: str | Sequence[str] | None = None, output: str | None = None,
         simplify: bool = True, fused: bool = True, *, argnums: int | Sequence[int] = 0,
         checkpoints: int | None = None) -> Any:
    """The gradient: of a circuit, the adjoint circuit (:func:`circuitgrad.transforms.grad`,
    with ``wrt``, ``output``, ``simplify``, ``fused``, ``checkpoints``); of a Python function of
    a scalar result, a function giving its gradient with respect to argument ``argnums`` (a tuple of
    them: a tuple of gradients), in that argument's structure.

    >>> import circuitgrad as cg
    >>> float(cg.grad(lambda x, y: x * y ** 2, argnums=1)(3.0, 2.0))
    12.0
    """
    if _is_circuit(f):
        return _grad_circuit(f, wrt, output, simplify, fused, checkpoints)
    if checkpoints is not None:
        raise CircuitError("grad: checkpoints= applies to a circuit's loops; trace the "
                           "function first (cg.grad(cg.trace(f), checkpoints=...))",
                           argument="checkpoints")
    return _Derivative(f, "grad", argnums)


def jacobian(f: Any, wrt: str | Sequence[str] | None = None,
             outputs: str | Sequence[str] | None = None, mode: str = "auto",
             simplify: bool = True, sparse: bool = False, *,
             argnums: int | Sequence[int] = 0) -> Any:
    """The Jacobian: of a circuit, :func:`circuitgrad.transforms.jacobian`; of a Python
    function, a function giving, for each leaf of the result, the array of shape
    ``out.shape + x.shape`` for each leaf ``x`` of argument ``argnums``, in the structures of
    the result and of the argument (as JAX's ``jacrev``).

    >>> import numpy as np, circuitgrad as cg
    >>> cg.jacobian(lambda x: x[:2] * x[1:])(np.array([1.0, 2.0, 3.0])).tolist()
    [[2.0, 1.0, 0.0], [0.0, 3.0, 2.0]]
    """
    if _is_circuit(f):
        return _jacobian_circuit(f, wrt, outputs, mode, simplify, sparse)
    return _Derivative(f, "jacobian", argnums)


def hessian(f: Any, wrt: str | Sequence[str] | None = None, output: str | None = None,
            simplify: bool = True, layout: str = "blocks", sparse: bool = False, *,
            argnums: int | Sequence[int] = 0) -> Any:
    """The Hessian: of a circuit, :func:`circuitgrad.transforms.hessian`; of a Python function
    of a scalar result, a function giving the blocks ``∂²f/∂x∂y`` (shape ``x.shape +
    y.shape``) for the leaves of argument ``argnums``, nested in its structure.

    >>> import numpy as np, circuitgrad as cg
    >>> cg.hessian(lambda x: x[0] ** 2 * x[1])(np.array([3.0, 2.0])).tolist()
    [[4.0, 6.0], [6.0, 0.0]]
    """
    if _is_circuit(f):
        return _hessian_circuit(f, wrt, output, simplify, layout, sparse)
    return _Derivative(f, "hessian", argnums)


class _Derivative:
    """A derivative of a Python function: traced, differentiated and lowered per structure
    and shapes of its arguments (cached), or inlined into the trace its arguments come from."""

    def __init__(self, f: Callable[..., Any], kind: str, argnums: int | Sequence[int]) -> None:
        self.f, self.kind = f, kind
        self.argnums = argnums
        self.several = not isinstance(argnums, int)
        self.cache: dict[Any, Any] = {}
        self.__name__ = f"{kind}({getattr(f, '__name__', 'f')})"
        self.__doc__ = f"The {kind} of {getattr(f, '__name__', 'a function')}."

    def __repr__(self) -> str:
        return f"<circuitgrad {self.__name__}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise CircuitError(f"{self.__name__}: pass the arguments by position (the "
                               f"derivative's inputs), got {', '.join(kwargs)}=")
        nums = tuple(self.argnums) if self.several else (self.argnums,)
        if any(not isinstance(k, int) or not -len(args) <= k < len(args) for k in nums):
            raise CircuitError(f"{self.__name__}: argnums {self.argnums!r} does not name one "
                               f"of the {len(args)} arguments")
        nums = tuple(k % len(args) for k in nums)
        flat, trees = [], []
        for a in args:
            leaves, tree = pytree.flatten(a, "")
            flat.append([v for _, v in leaves])
            trees.append(tree)
        leaves = [v for part in flat for v in part]
        shapes = tuple(tuple(v.shape) if isinstance(v, Value) else np.shape(v) for v in leaves)
        key = (tuple(trees), shapes, nums)
        made = self.cache.get(key)
        if made is None:
            made = self.cache[key] = self._made(args, trees, nums)
        circuit, wrt_trees, out_tree, run = made
        traced = [v for v in leaves if isinstance(v, Value)]
        if traced:
            results = _inline(traced[0].builder, circuit, leaves)
        else:
            if run is None:
                run = made[3] = to_numpy(circuit)
            results = list(run(*leaves))
        return self._shaped(results, wrt_trees, out_tree)

    def _made(self, args: tuple, trees: list, nums: tuple) -> list:
        names = _parameter_names(self.f, len(args))
        shapes, wrt, wrt_trees = {}, [], []
        for k, (a, tree) in enumerate(zip(args, trees)):
            spec = pytree.unflatten(tree, [
                tuple(v.shape) if isinstance(v, Value) else np.shape(v)
                for _, v in pytree.flatten(a, "")[0]])
            shapes[names[k]] = spec
        call, seen = _positional(self.f, names), []

        def keep(*xs: Any) -> Any:  # (the result's structure, for the jacobian's)
            result = call(*xs)
            seen.append(pytree.flatten(result, "")[1])
            return result

        keep.__signature__ = inspect.signature(call)  # type: ignore[attr-defined]
        c = trace(keep, shapes=shapes)
        for k in nums:
            leaves = pytree.flatten(shapes[names[k]], names[k], is_leaf=pytree.is_shape)[0]
            wrt.append([n for n, _ in leaves])
            wrt_trees.append(trees[k])
        every = [n for part in wrt for n in part]
        if self.kind == "grad":
            d = _grad_circuit(c, wrt=every)
        elif self.kind == "hessian":
            d = _hessian_circuit(c, wrt=every)
        else:
            d = _jacobian_circuit(c, wrt=every)
        return [d, (wrt_trees, [len(w) for w in wrt], len(c.outputs)), seen[-1], None]

    def _shaped(self, results: list, wrt_info: Any, out_tree: Any) -> Any:
        trees, counts, n_out = wrt_info
        n = sum(counts)

        def per_argument(values: list) -> Any:  # the leaves of the wrt arguments, split
            parts, start = [], 0
            for tree, m in zip(trees, counts):
                parts.append(pytree.unflatten(tree, values[start:start + m]))
                start += m
            return tuple(parts) if self.several else parts[0]

        if self.kind == "grad":
            return per_argument(results[1:1 + n])
        if self.kind == "hessian":
            blocks = results[1 + n:]
            return per_argument([per_argument(blocks[r * n:(r + 1) * n]) for r in range(n)])
        blocks = results[n_out:]
        rows = [per_argument(blocks[r * n:(r + 1) * n]) for r in range(n_out)]
        return pytree.unflatten(out_tree, rows)


def _parameter_names(f: Callable[..., Any], count: int) -> list[str]:
    try:
        params = [p for p in inspect.signature(f).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params[:count]]
    names += [f"x{k}" for k in range(len(names), count)]
    return names if len(set(names)) == len(names) else [f"x{k}" for k in range(count)]


def _positional(f: Callable[..., Any], names: list[str]) -> Callable[..., Any]:
    """``f`` as a function of exactly these positional parameters (what ``trace`` takes)."""
    space: dict[str, Any] = {"__cg_f": f}
    exec(f"def call({', '.join(names)}):\n    return __cg_f({', '.join(names)})", space)
    call = space["call"]
    call.__name__ = getattr(f, "__name__", "f")
    return call


def _inline(b: Builder, c: Circuit, leaves: list) -> list[Value]:
    """The outputs of ``c`` built into ``b``, its inputs (in order) given by ``leaves``
    (traced values of ``b`` or numbers), node by node in id order."""
    given = {}
    for name, v in zip(c.inputs, leaves):
        if isinstance(v, Value) and v.builder is not b:
            raise CircuitError("a derivative's arguments come from two different traces")
        given[name] = v.id if isinstance(v, Value) else b._arg_id(v)
    new = [0] * len(c)
    for i, op, args, params, shape in c.records():
        if op == "input":
            new[i] = given[params]
        elif op == "const":
            new[i] = b.const_id(params)
        else:
            new[i] = b.apply_id(op, tuple(new[a] for a in args), params)
    return [Value(b, new[o]) for o in c.output_ids]
