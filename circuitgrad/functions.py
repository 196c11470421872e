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

import functools
import inspect
from typing import Any, Callable, Sequence

import numpy as np

from .builder import Builder
from .circuit import Circuit
from .errors import CircuitError
from .frontends import guards as _guards
from .frontends import pytree
from .frontends.trace import trace
from .lower import to_numpy
from .lower.calling import check_input
from .transforms import grad as _grad_circuit
from .transforms import hessian as _hessian_circuit
from .transforms import jacobian as _jacobian_circuit
from .guards import refuse_cut_derivative
from .value import Value

__all__ = ["grad", "jacobian", "hessian", "function"]


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
        leaves = _checked([v for part in flat for v in part], self.__name__)
        shapes = tuple(tuple(v.shape) if isinstance(v, Value) else np.shape(v) for v in leaves)
        key = (tuple(trees), shapes, nums)
        traced = [v for v in leaves if isinstance(v, Value)]
        point = _guards.point_of(traced[0]) if traced else None
        if traced and point is None:  # inside a trace without a point: no branches
            made = self.cache.get(key)
            if made is None:
                made = self.cache[key] = self._made(args, trees, nums)
            circuit, wrt_trees, out_tree = made
            return self._shaped(_inline(traced[0].builder, circuit, leaves), wrt_trees,
                                out_tree)
        at = [point.value(v.id) if isinstance(v, Value) else v for v in leaves] \
            if point is not None else leaves
        branches = self.cache.get(("at",) + key)
        if branches is None:
            def make(values: list) -> tuple[Circuit, Any]:
                parts, start = [], 0
                for part, tree in zip(flat, trees):
                    parts.append(pytree.unflatten(tree, values[start:start + len(part)]))
                    start += len(part)
                d, wrt_trees, out_tree = self._made(tuple(parts), trees, nums, at=True)
                return d, (wrt_trees, out_tree)
            branches = self.cache[("at",) + key] = _Branches(make, self.__name__)
        branch = branches.at_point(at)
        wrt_trees, out_tree = branch.extra
        if point is not None:  # the derivative of the branch at the trace's point, guarded
            results = _inline(point.builder, branch.circuit, leaves)
            _inline_guards(point, branch.circuit, leaves)
        else:
            results = list(branch.run_held(leaves))
        return self._shaped(results, wrt_trees, out_tree)

    def _made(self, args: tuple, trees: list, nums: tuple, at: bool = False) -> list:
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
        if at:  # traced at the point the arguments are: the branch they take, guarded
            c = trace(keep, at=dict(zip(names, args)))
            refuse_cut_derivative(c, self.__name__)
        else:
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
        return [d, (wrt_trees, [len(w) for w in wrt], len(c.outputs)), seen[-1]]

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


class _Branch:
    """One branch of a function traced at a point: its circuit (with its guards), the lowered
    callable (which checks them), and what the caller keeps with it."""

    def __init__(self, circuit: Circuit, extra: Any, name: str,
                 lower: Callable[..., Any] | None = None) -> None:
        self.circuit, self.extra = circuit, extra
        self.run = (lower or to_numpy)(circuit, name=name if name.isidentifier() else "f")
        self.guards = circuit.meta.get("guards")

    def holds(self, leaves: Sequence[Any]) -> np.ndarray:
        """Where the branch's guards hold (bool, the batch shape of ``leaves``)."""
        return np.asarray(self.run.guards_hold(*leaves))

    def run_held(self, leaves: Sequence[Any]) -> Any:
        """The branch's outputs at ``leaves``, where :meth:`holds` has just said that every
        guard holds (not computed twice)."""
        return self.run._call(tuple(leaves), {}, False)


class _Branches:
    """The branches of one function (per structure and shapes of its arguments), keyed by
    their decisions: a point runs the branch whose guards hold there; where none does, the
    function is traced at that point (``make(leaves) -> (circuit, extra)``)."""

    def __init__(self, make: Callable[[list], tuple[Circuit, Any]], name: str,
                 lower: Callable[..., Any] | None = None) -> None:
        self.make, self.name, self.lower = make, name, lower
        self.branches: dict[tuple, _Branch] = {}

    def _new(self, leaves: list) -> _Branch:
        circuit, extra = self.make(leaves)
        g = circuit.meta.get("guards")
        key = () if g is None else g.decisions
        branch = _Branch(circuit, extra, self.name, self.lower)
        if key in self.branches or not bool(np.all(branch.holds(leaves))):
            raise CircuitError(f"{self.name}: internal error: the branch traced at a point "
                               "does not hold there (its guards evaluate differently when "
                               "lowered); please report it")
        self.branches[key] = branch
        return branch

    def at_point(self, leaves: list) -> _Branch:
        """The branch that one point (``leaves`` of the point shapes) takes."""
        for branch in self.branches.values():
            if branch.guards is None or bool(np.all(branch.holds(leaves))):
                return branch
        return self._new(list(leaves))

    def on_batch(self, leaves: list, shapes: list[tuple], batch: tuple
                 ) -> tuple[list[tuple[_Branch, np.ndarray]], list[np.ndarray]]:
        """The points of a batch (``leaves`` with batch axes ``batch`` before the point
        ``shapes``) grouped by branch: ``(branch, mask over the flattened batch)`` pairs, and
        the leaves with the batch flattened to one axis."""
        n = int(np.prod(batch))
        if n == 0:
            raise CircuitError(f"{self.name}: an empty batch {batch}: no point to trace at")
        flat = [np.broadcast_to(np.asarray(v, dtype=np.float64), batch + s).reshape((n,) + s)
                for v, s in zip(leaves, shapes)]
        left = np.ones(n, dtype=bool)
        groups = []
        tried: set[int] = set()
        while left.any():
            todo = [b for b in self.branches.values() if id(b) not in tried]
            if not todo:
                k = int(np.argmax(left))
                todo = [self._new([v[k] for v in flat])]
            for branch in todo:
                tried.add(id(branch))
                idx = np.flatnonzero(left)
                with np.errstate(all="ignore"):  # (another branch's points may be outside)
                    hold = branch.holds([v[idx] for v in flat]).reshape(-1)
                mask = np.zeros(n, dtype=bool)
                mask[idx[hold]] = True
                if mask.any():
                    groups.append((branch, mask))
                    left &= ~mask
        return groups, flat


def function(fn: Callable[..., Any], *, shapes: dict[str, Any] | None = None,
             where: bool = False, lower: Callable[..., Any] | None = None) -> "Function":
    """``fn`` traced at the points it is called at: each branch it takes (``if``,
    ``while``, ``min``/``max``, ``int()`` of traced values) becomes a circuit with its guards,
    lowered with :func:`~circuitgrad.to_numpy`; a call runs the branch whose guards hold at
    its point and traces a new one where none does, so the result is always ``fn``'s.

    Args:
        fn: a function of numbers, arrays or containers of them (as :func:`trace` takes).
        shapes: the point shapes of array parameters, by name (others are numbers), so that
            a first call may be a batch; without it the first call gives them.
        where: rewrite ``fn``'s pure conditionals (``a if c else b``; ``if c: v = a else:
            v = b``, whose sides call nothing but NumPy's, circuitgrad's and math's
            functions and ``abs``/``min``/``max``) so that, on a traced one-entry condition
            with sides of one shape, they build ``where(c, a, b)``: one circuit for both
            sides, no guard (its value is the side taken at every point; its gradient too,
            except that an infinite or NaN derivative of the side not taken gives NaN, as
            ``where``'s does: docs/semantics.md). Other branches stay guarded. ``fn``'s
            source must be available.
        lower: the lowering of each branch (default :func:`~circuitgrad.to_numpy`; also
            :func:`~circuitgrad.to_tape`, :func:`~circuitgrad.to_c`, :func:`~circuitgrad.to_fused`,
            which check the guards before each call too).

    Returns:
        A :class:`Function`: call it with one point (the first call for a structure of
        arguments gives the point shapes) or a batch (extra leading axes on the arguments:
        the points are grouped by the branch they take, and each result is bit for bit the
        call at that point). ``cg.grad`` of it is the derivative of the branch taken.

    >>> import numpy as np, circuitgrad as cg
    >>> f = cg.function(lambda x: x * x if x > 0.0 else -x)
    >>> float(f(3.0)), float(f(-2.0)), f(np.array([1.0, -1.0, 2.0])).tolist()
    (9.0, 2.0, [1.0, 1.0, 4.0])
    >>> len(f.branches()), float(cg.grad(f)(3.0))
    (2, 6.0)
    """
    if not callable(fn):
        raise CircuitError(f"function needs a function, got {type(fn).__name__}")
    if shapes is not None and not isinstance(shapes, dict):
        raise CircuitError("function: shapes must be a dict of parameter names to shapes",
                           argument="shapes")
    if where:
        rewritten, count = _guards.with_where(fn)
        made = Function(rewritten, shapes, lower)
        made.rewritten = count
        return made
    return Function(fn, shapes, lower)


class Function:
    """A Python function traced per branch (:func:`function`). ``branches()`` lists the
    circuits traced so far; ``repr`` shows their guards."""

    def __init__(self, fn: Callable[..., Any], shapes: dict[str, Any] | None = None,
                 lower: Callable[..., Any] | None = None) -> None:
        functools.update_wrapper(self, fn)
        self.fn, self.shapes, self.lower = fn, shapes, lower
        self.rewritten = 0  # the conditionals rewritten as where (function(where=True))
        self.cache: dict[Any, tuple[list, _Branches]] = {}  # structure -> (shapes, branches)

    def __repr__(self) -> str:
        lines = [f"<circuitgrad function {getattr(self.fn, '__name__', 'f')}: "
                 f"{len(self.branches())} branches traced>"]
        for k, c in enumerate(self.branches()):
            g = c.meta.get("guards")
            lines.append(f"  branch {k}: size {c.size}, " + (
                "no guards" if g is None else
                "guards " + "; ".join(g.describe(i) for i in range(len(g.kinds)))))
        return "\n".join(lines)

    def branches(self) -> list[Circuit]:
        """The circuits traced so far, one per branch, each with its guards."""
        return [b.circuit for _, bs in self.cache.values() for b in bs.branches.values()]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise CircuitError(f"function {getattr(self.fn, '__name__', 'f')}: pass the "
                               f"arguments by position, got {', '.join(kwargs)}=")
        flat, trees = [], []
        for a in args:
            leaves, tree = pytree.flatten(a, "")
            flat += [v for _, v in leaves]
            trees.append(tree)
        if any(isinstance(v, Value) for v in flat):  # inside a trace: fn's own nodes
            return self.fn(*args)
        flat = _checked(flat, f"function {getattr(self.fn, '__name__', 'f')}")
        have = [np.shape(v) for v in flat]
        entry = self.cache.get(tuple(trees))
        if entry is None:
            names = _parameter_names(self.fn, len(args))
            call = _positional(self.fn, names)

            def make(values: list) -> tuple[Circuit, Any]:
                parts, start, seen = [], 0, []
                for tree in trees:
                    n = _leaf_count(tree)
                    parts.append(pytree.unflatten(tree, values[start:start + n]))
                    start += n

                def keep(*xs: Any) -> Any:
                    result = call(*xs)
                    seen.append(pytree.flatten(result, "")[1])
                    return result

                keep.__signature__ = inspect.signature(call)  # type: ignore[attr-defined]
                c = trace(keep, at=dict(zip(names, parts)))
                return c, seen[-1]

            points = have
            if self.shapes is not None:
                if any(t != pytree.LEAF for t in trees):
                    raise CircuitError("function: shapes= is for array parameters, not "
                                       "containers (call with one point first)")
                unknown = sorted(set(self.shapes) - set(names))
                if unknown:
                    raise CircuitError(f"function: shapes names {unknown}, which are not "
                                       f"parameters {names}", argument="shapes")
                points = [tuple(np.atleast_1d(self.shapes[n]).astype(int).tolist())
                          if n in self.shapes and self.shapes[n] != () else ()
                          for n in names]
            entry = self.cache[tuple(trees)] = (points, _Branches(
                make, getattr(self.fn, "__name__", "f"), self.lower))
        shapes, branches = entry
        batch = _batch_of(have, shapes, getattr(self.fn, "__name__", "f"))
        if batch is None:
            branch = branches.at_point(flat)
            return _result(branch, branch.run_held(flat))
        groups, points = branches.on_batch(flat, shapes, batch)
        first = groups[0][0]
        for branch, _ in groups[1:]:
            if branch.extra != first.extra or [branch.circuit.shape(i) for i in
                                               branch.circuit.output_ids] != [
                    first.circuit.shape(i) for i in first.circuit.output_ids]:
                raise CircuitError(f"function {getattr(self.fn, '__name__', 'f')}: the "
                                   "points of this batch take branches whose results differ "
                                   "in structure or shape; call it point by point")
        n = int(np.prod(batch))
        outs = [np.empty((n,) + first.circuit.shape(i)) for i in first.circuit.output_ids]
        for branch, mask in groups:
            got = branch.run_held([v[mask] for v in points])
            got = [got] if len(outs) == 1 else list(got)
            for o, g in zip(outs, got):
                o[mask] = g
        outs = [o.reshape(batch + o.shape[1:]) for o in outs]
        return pytree.unflatten(first.extra, outs) if len(outs) > 1 or \
            first.extra != pytree.LEAF else outs[0]


def _checked(leaves: list, name: str) -> list:
    """The arguments' leaves (traced values kept) checked as every lowering checks its inputs
    (lower/calling.py): never a cast that drops information, such as a complex part."""
    return [v if isinstance(v, Value) else check_input(f"{name}: argument leaf {k}", v)
            for k, v in enumerate(leaves)]


def _leaf_count(tree: Any) -> int:
    if tree[0] == "leaf":
        return 1
    return sum(_leaf_count(t) for t in tree[3])


def _batch_of(have: list, shapes: list, name: str) -> tuple | None:
    """The batch shape of arguments of shapes ``have`` for point shapes ``shapes`` (None: one
    point), or an error naming the argument that fits neither."""
    if have == shapes:
        return None
    batches = []
    for h, s in zip(have, shapes):
        if len(h) < len(s) or tuple(h[len(h) - len(s):]) != tuple(s):
            raise CircuitError(f"function {name}: an argument of shape {h} is neither a point "
                               f"of shape {s} (the shape of the first call) nor a batch of "
                               "them")
        batches.append(tuple(h[:len(h) - len(s)]))
    try:
        return tuple(np.broadcast_shapes(*batches))
    except ValueError:
        raise CircuitError(f"function {name}: the batch axes {batches} do not broadcast"
                           ) from None


def _result(branch: _Branch, out: Any) -> Any:
    """A branch's outputs in the structure the function returned."""
    if branch.extra == pytree.LEAF:
        return out
    return pytree.unflatten(branch.extra, list(out))


def _inline_guards(point: Any, c: Circuit, leaves: list) -> None:
    """The guards of ``c`` (a derivative traced at the point of an enclosing trace) built into
    that trace, as its own guards: the derivative inlined there holds only where they do."""
    g = c.meta.get("guards")
    if g is None:
        return
    nodes = _inline(point.builder, g.circuit, leaves)
    for node, kind, want, text in zip(nodes, g.kinds, g.expected, g.texts):
        point.record(node.id, kind, want, text)


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
