"""Scalarize: a tensor circuit as the equivalent circuit of scalar operations.

The notes' theorem counts scalar operations: a layer z = W u + b with W of shape (m, d) is
m·d multiplications and m·d additions, N ≈ #parameters. ``scalarize`` expands each tensor
node into one node per element, so both views of the same network can be compared, drawn and
differentiated. Tensor input ``W`` of shape (2, 3) becomes scalar inputs ``W_0_0 … W_1_2``
(row-major); a tensor output ``f`` becomes outputs ``f_0, f_1 …``.

    >>> import circuitgrad as cg
    >>> c = cg.parse("J = sum(W @ x)", shapes={"W": (2, 3), "x": (3,)})
    >>> s = cg.scalarize(c)
    >>> s.inputs[:4], s.size
    (('W_0_0', 'W_0_1', 'W_0_2', 'W_1_0'), 11)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..guards import refuse_guarded
from ..circuit import Circuit, as_circuit, no_gc
from ..builder import Builder
from ..errors import CircuitError
from ..primitives import PRIMITIVES, expand
from ..primitives.loops import SCAN_DEFAULTS


def _element_name(name: str, index: tuple[int, ...]) -> str:
    return name + "".join(f"_{i}" for i in index)


def scalarize(c: Circuit, loops: bool = False) -> Circuit:
    """The equivalent circuit in which every node is a scalar.

    Args:
        c: a circuit whose nodes have concrete shapes.
        loops: keep each ``scan`` node as a *loop site* rather than refuse it (what ``to_c``
            and ``to_tape`` ask: they run the body in a loop): its packed result becomes scalar inputs named
            ``scanK_j`` after every input of ``c``, its arguments' scalars extra outputs
            ``scanK_arg_j`` after every output of ``c``, and ``meta["loops"]`` lists the
            sites (:func:`loop_sites`).

    Returns:
        A scalar circuit computing the same values (sums add left to right, so results agree
        with NumPy's pairwise sums up to rounding).

    >>> import circuitgrad as cg
    >>> scalarize(cg.parse("x @ y", shapes={"x": (2,), "y": (2,)})).inputs
    ('x_0', 'x_1', 'y_0', 'y_1')
    """
    c = as_circuit(c, "scalarize")
    empty = next((i for i in range(len(c)) if 0 in c.shape(i)), None)
    if empty is not None:
        # (a reduction of no entries would be a fold of nothing: refused, never guessed)
        raise CircuitError(f"scalarize: node %{empty} ({c.op(empty)}) has the empty shape "
                           f"{c.shape(empty)}, which has no entries to expand")
    refuse_guarded(c, "scalarize")  # (the guards take the tensor inputs)
    with no_gc():
        return _scalarize(c, loops)


def loop_sites(s: Circuit) -> list[dict[str, Any]]:
    """The loop sites of ``scalarize(c, loops=True)``, each a dict of the scan's ``params``,
    ``args`` (per argument of the scan node, the node ids of its scalars, row-major),
    ``result`` (the node ids of the scalar inputs that stand for its packed result, in order)
    and ``start`` (the first of them: every node before it may be an argument, every node
    after it may read the result). In the order of the scans.

        >>> import circuitgrad as cg
        >>> c = cg.trace(lambda x: cg.scan(lambda s, _: (s * x, None), x, length=3)[0])
        >>> s = scalarize(c, loops=True)
        >>> s.inputs, s.outputs
        (('x', 'scan0_0'), ('f', 'scan0_arg0', 'scan0_arg1'))
        >>> [(site["args"], site["result"], site["params"]["length"]) for site in loop_sites(s)]
        [([[0], [0]], [1], 3)]
    """
    sites = s.meta.get("loops", [])
    # (the loops' scalars are the last inputs and outputs, site after site, in order)
    inputs = list(s.input_ids[len(s.input_ids) - sum(site["result"] for site in sites):])
    outputs = list(s.output_ids[len(s.output_ids) - sum(sum(site["args"]) for site in sites):])
    found, at_in, at_out = [], 0, 0
    for site in sites:
        groups = []
        for size in site["args"]:
            groups.append(outputs[at_out:at_out + size])
            at_out += size
        result = inputs[at_in:at_in + site["result"]]
        at_in += site["result"]
        found.append({"params": site["params"], "args": groups, "result": result,
                      "start": result[0] if result else len(s)})
    return found


def scalar_size(c: Circuit) -> int:
    """About how many nodes ``scalarize(c)`` makes, counted from the shapes without expanding:
    a node of n entries is n scalars, a product ``matmul`` 2k - 1 per entry of its result
    (k the contracted length), a node that reads more entries than it makes (a reduction)
    one per entry read; a loop, its body's count (each distinct body once; reading its result
    out of its packed vector, none). ``to_c`` reads it to choose scalar code or fused loops.

    >>> import circuitgrad as cg
    >>> c = cg.parse("J = sum(W @ x)", shapes={"W": (2, 3), "x": (3,)})
    >>> scalar_size(c), cg.scalarize(c).size
    (12, 11)
    """
    total = 0
    bodies: set = set()
    # (the circuit, then each distinct body inside it or its bodies: a work list, no
    # recursion over loop nesting)
    todo = [as_circuit(c, "scalar_size")]
    while todo:
        c = todo.pop()
        loop_values: set[int] = set()
        for i in range(len(c)):
            op = c.op(i)
            if op in ("input", "const"):
                continue
            if op == "scan":  # (a C loop over its body: each distinct body counted once)
                body = c.params(i)["body"]
                if body not in bodies:
                    bodies.add(body)
                    todo.append(body.circuit)
                loop_values.add(i)
                continue
            if op in ("getitem", "reshape") and c.args(i)[0] in loop_values:
                loop_values.add(i)  # (a loop's result read out of its packed vector)
                continue
            out = int(np.prod(c.shape(i)))
            reads = [int(np.prod(c.shape(a))) for a in c.args(i) if a not in loop_values]
            if op == "matmul" and reads:
                k = c.shape(c.args(i)[0])[-1] if c.shape(c.args(i)[0]) else 1
                total += out * (2 * k - 1)
            else:
                total += max([out] + reads)
    return total


def _scalarize(c: Circuit, loops: bool = False) -> Circuit:
    b = Builder()
    sites: list[dict[str, Any]] = []
    loop_inputs: list[str] = []
    loop_outputs: list[tuple[str, int]] = []
    taken = set(c.inputs)
    values: list[Any] = [None] * len(c)
    input_names: list[str] = []

    def fresh(name: str) -> str:
        while name in taken:
            name += "_"
        taken.add(name)
        return name

    def fresh_names(names: list[str]) -> list[str]:
        if taken.isdisjoint(names) and len(set(names)) == len(names):
            taken.update(names)
            return names
        return [fresh(name) for name in names]

    for i, op, args, params, shape in c.records():
        if op == "input":
            grid = expand.grid(shape)
            for index in np.ndindex(shape):
                name = params if not shape else fresh(_element_name(params, index))
                grid[index] = b.input(name).id
                input_names.append(name)
            values[i] = grid
        elif op == "const":
            grid = expand.grid(shape)
            for index in np.ndindex(shape):
                grid[index] = b.const_id(float(np.asarray(params)[index]))
            values[i] = grid
        elif op == "scan" and loops:
            values[i] = _loop_site(b, i, [values[a] for a in args], params, shape,
                                   fresh_names, sites, loop_inputs, loop_outputs)
        else:
            values[i] = _expand(b, op, [values[a] for a in args], params or {}, shape)
    outputs = []
    for name, i in zip(c.outputs, c.output_ids):
        grid = values[i]
        if not grid.shape:
            outputs.append((name, int(grid[()])))
        else:
            for index in np.ndindex(grid.shape):
                outputs.append((fresh(_element_name(name, index)), int(grid[index])))
    if not sites:
        return b.finish(outputs, inputs=input_names)
    return b.finish(outputs + loop_outputs, inputs=input_names + loop_inputs,
                    meta={"loops": sites})


def _loop_site(b: Builder, i: int, args: list[np.ndarray], params: dict[str, Any],
               shape: tuple[int, ...], fresh: Any, sites: list, loop_inputs: list,
               loop_outputs: list) -> np.ndarray:
    """A scan node kept whole (``scalarize(..., loops=True)``): its packed result as fresh
    scalar inputs, its arguments' scalars as extra outputs, the site recorded by names."""
    k = len(sites)
    groups = []
    for grid in args:
        at = len(loop_outputs)
        names = fresh([f"scan{k}_arg{j}" for j in range(at, at + grid.size)])
        loop_outputs.extend(zip(names, map(int, grid.ravel().tolist())))
        groups.append(names)
    result = fresh([f"scan{k}_{j}" for j in range(shape[0])])
    grid = expand.grid(shape)
    grid[:] = b.scalar_inputs(result)
    loop_inputs.extend(result)
    sites.append({"params": {**SCAN_DEFAULTS, **params}, "args": [len(g) for g in groups],
                  "result": len(result)})
    return grid


def _expand(b: Builder, op: str, args: list[np.ndarray], params: dict[str, Any],
            shape: tuple[int, ...]) -> np.ndarray:
    """The grid of node ids of one node, by its record's ``scalar`` expansion (elementwise
    where it has none: primitives/expand.py)."""
    prim = PRIMITIVES[op]
    return (prim.scalar or expand.elementwise)(b, prim, args, params, shape)
