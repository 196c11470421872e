"""Sums of broadcast products as contractions: ``sum(a[:, None] * b[None], axis)`` is an
``einsum`` of ``a`` and ``b``, and computing it so never makes the product's array.

Programs write contractions as broadcasts (the Gaussian-mixture objective's ``L[None] *
x[:, :, None, :]`` summed over the last axis, an (n, K, d, d) array made to be reduced to (n,
K, d)), and the adjoint pass makes more of them (the adjoint of that sum broadcasts ``bar`` to
(n, K, d, d) and multiplies it by each operand). NumPy runs each such node as written: one
array of the product's size per node, filled and read once. :func:`contract_products`
rewrites each sum (or ``sum_to``) of a product that nothing else reads into the ``einsum``
record of the arrays the product broadcasts, which ``to_numpy`` evaluates as one ``matmul``
per point (:func:`circuitgrad.primitives.special.contract`): at GMM d = 10, K = 50 the
gradient's ``to_numpy`` call went from 49 to 6 ms, and its first call (the first touch of the
products' memory) from 228 to 22 ms.

The einsum's sums run in another order than ``xp.sum`` of the product (a matmul's), within
the rounding of a sum of products (docs/semantics.md, "einsum"); a batch still equals its
points bit for bit (the einsum's matmul of each point).

    >>> import circuitgrad as cg
    >>> c = cg.parse("J = sum(A * x, axis=2)", shapes={"A": (1, 50, 30), "x": (40, 1, 30)})
    >>> [c.op(i) for i in range(len(c)) if c.op(i) not in ("input", "const")]
    ['mul', 'sum']
    >>> d = contract_products(c)  # the (40, 50, 30) product never made
    >>> print(cg.to_numpy(d).source)
    def f(A, x):
        v2 = _cg.reshape(A, (50, 30), 3)
        v3 = _cg.reshape(x, (40, 30), 3)
        J = _sp.einsum('...bc,...ac->...ab', v2, v3)
        del v2, v3
        return J
"""

from __future__ import annotations

import math

from ..builder import Builder
from ..circuit import LEAVES, Circuit, no_gc
from ..primitives.contractions import join

LETTERS = "abcdefghijklmnopqrstuvwxyz"
SUMS = ("sum", "sum_to")

GROWTH = 1.5
"""A product is contracted where it has more than ``GROWTH`` times the entries of each array it
broadcasts: a stack of dot products (``sum(a * b, axis)`` of equal shapes, the product no
bigger than its operands) stays NumPy's multiply and sum, which beat a matmul per point. At
GMM d = 2 (a product twice its larger operand) the contraction took 0.53 ms where the
product and its sum took 1.10."""

MIN_ENTRIES = 4096
"""Products of fewer entries stay as they are (a matmul call costs more than a small array)."""


def operand(c: Circuit, a: int, letters: str, shape: tuple[int, ...]) -> tuple[int, str]:
    """The node a contraction reads for its operand ``a`` (of a product of ``shape``, whose
    axes are ``letters``) and that node's letters, ``.`` for a length-1 axis that broadcasts:
    through a ``broadcast_to`` to the array it broadcasts (a view whose copy would be the
    product's size).

        >>> import circuitgrad as cg
        >>> c = cg.parse("J = sum(W * x, axis=1)", shapes={"W": (40, 30), "x": (30,)})
        >>> m = c.args(c.output_ids[0])[0]
        >>> [operand(c, a, "ab", c.shape(m))[1] for a in c.args(m)]
        ['ab', 'b']
    """
    r = len(shape)
    if c.op(a) == "broadcast_to":
        source, axis = c.args(a)[0], (c.params(a) or {}).get("axis")
        inner = c.shape(source)
        n = len(inner) + (axis is not None)  # the source's rank with the new axis
        picked = []
        for j, size in enumerate(inner):
            k = r - n + (j if axis is None or j < axis else j + 1)
            picked.append(letters[k] if size == shape[k] else ".")
        return source, "".join(picked)
    sa = c.shape(a)
    return a, "".join(letters[r - len(sa) + j] if n == shape[r - len(sa) + j] else "."
                      for j, n in enumerate(sa))


def contraction_spec(c: Circuit, s: int) -> tuple[str, str, str, tuple[int, ...], int]:
    """How sum node ``s`` of a product ``a * b`` is one matmul (letters as in ``einsum``): one
    letter per point axis of the product, ``.`` for an operand's length-1 axis that broadcasts;
    for each axis of the output's point its letter (``.``: a length-1 axis the sum keeps); the
    output's point shape; and the number of times each term is summed (the product of the
    summed axes along which neither operand varies).

        >>> import circuitgrad as cg
        >>> c = cg.parse("J = sum(W * x, axis=1)", shapes={"W": (40, 30), "x": (30,)})
        >>> contraction_spec(c, c.output_ids[0])
        ('ab', 'b', 'a', (40,), 1)
    """
    m = c.args(s)[0]
    shape, params = c.shape(m), c.params(s) or {}
    r = len(shape)
    letters = LETTERS[:r]
    if c.op(s) == "sum_to":
        point = tuple(params["shape"])
        lead = r - len(point)
        lo = "".join(letters[lead + j] if n == shape[lead + j] and n != 1 else "."
                     for j, n in enumerate(point))
    elif params.get("axis") is None:
        point, lo = (), ""
    else:
        axis = params["axis"] % r  # (a negative axis counts from the end)
        point = tuple(c.shape(s))
        lo = "".join(x if shape[k] != 1 else "." for k, x in enumerate(letters) if k != axis)
    (_, la), (_, lb) = (operand(c, a, letters, shape) for a in c.args(m))
    repeats = math.prod(shape[k] for k, x in enumerate(letters)
                        if x not in lo and x not in la and x not in lb)
    return la, lb, lo, point, repeats


def _contracted(c: Circuit, growth: float, min_entries: int) -> dict[int, int]:
    """The sum nodes to rewrite, each with its product: a ``mul`` that nothing else reads,
    of two arrays (no scalar constant), bigger than ``growth`` times each array it broadcasts,
    whose sum every term of which is one product of the arrays (no ``repeats``)."""
    ops, args, params, _shapes, _ = c.columns
    candidates = {i: args[i][0] for i, op in enumerate(ops)
                  if op in SUMS and ops[args[i][0]] == "mul"}
    if not candidates:  # (most circuits: one pass over the ops)
        return {}
    products = set(candidates.values())
    readers = dict.fromkeys(products, 0)
    for ids in args:
        for a in set(ids):
            if a in readers:
                readers[a] += 1
    for i in c.output_ids:
        if i in readers:
            readers[i] += 1
    found: dict[int, int] = {}
    for i, m in candidates.items():
        op = ops[i]
        if readers[m] != 1:
            continue
        shape = c.shape(m)
        size = math.prod(shape)
        if size < min_entries or len(shape) > len(LETTERS) or (
                op == "sum" and isinstance((params[i] or {}).get("axis"), tuple)):
            continue
        sources = [operand(c, a, LETTERS[:len(shape)], shape) for a in c.args(m)]
        if any(not c.shape(a) and c.op(a) == "const" for a in c.args(m)):
            continue
        if any(size <= growth * math.prod(c.shape(a)) for a, _ in sources):
            continue
        la, lb, lo, _point, repeats = contraction_spec(c, i)
        if repeats != 1 or not set(lo) - {"."} <= set(la + lb) - {"."}:
            continue
        found[i] = m
    return found


def contract_products(c: Circuit, growth: float | None = None,
                      min_entries: int | None = None) -> Circuit:
    """``c`` with each sum of a broadcast product (the module's docstring) an ``einsum`` of the
    arrays the product broadcasts, their length-1 axes reshaped away; ``c`` itself where there
    is none (``growth``, ``min_entries``: :data:`GROWTH` and :data:`MIN_ENTRIES` unless
    given). The other nodes are rebuilt as they are (their names, the sections of a
    derivative circuit and the guards carried).

        >>> import circuitgrad as cg
        >>> import numpy as np
        >>> c = cg.parse("J = sum(x * y)", shapes={"x": (100, 1), "y": (1, 100)})
        >>> d = contract_products(c)
        >>> [d.op(i) for i in range(len(d)) if d.op(i) not in ("input", "const")]
        ['reshape', 'reshape', 'einsum']
        >>> float(cg.to_numpy(d)(np.ones((100, 1)), np.full((1, 100), 2.0)))
        20000.0
    """
    found = _contracted(c, GROWTH if growth is None else growth,
                        MIN_ENTRIES if min_entries is None else min_entries)
    if not found:
        return c
    products = set(found.values())
    with no_gc():
        b = Builder()
        b.guards = c.meta.get("guards")
        new = [0] * len(c)
        ops, args, params, shapes, _ = c.columns
        bounds = {k: c.meta[k] for k in ("forward_count", "tangent_count")
                  if c.meta.get(k) is not None}
        ends: dict[str, int] = {}
        for i in range(len(c)):
            for k, at in bounds.items():
                if i == at:
                    ends[k] = len(b.ops)
            op = ops[i]
            if op == "input":
                new[i] = b.input(params[i], shapes[i]).id
            elif op == "const":
                new[i] = b.const_id(params[i])
            elif i in products:
                continue  # (read by its sum alone, which does not read it now)
            elif i in found:
                new[i] = _einsum_of(b, c, i, new)
            else:
                new[i] = b.apply_id(op, tuple(new[a] for a in args[i]), params[i])
        meta = dict(c.meta)
        for k in bounds:
            end = ends.get(k, len(b.ops))
            while end < len(b.ops) and b.ops[end] in LEAVES:
                end += 1  # (the first node of the pass marks its start, as simplify's)
            meta[k] = end
        if "adjoint_of" in meta:
            meta["adjoint_of"] = {new[a]: new[f] for a, f in meta["adjoint_of"].items()
                                  if a not in products and f not in products}
        forward_end = meta.get("forward_count", len(b.ops))
        for i, name in sorted(c.columns.names.items()):
            if i in products or b.ops[new[i]] in LEAVES:
                continue
            if i >= c.meta.get("forward_count", len(c)) and new[i] < forward_end:
                continue  # (a derivative's name is not given to a forward node)
            b.name(new[i], name)
        return b.finish(list(zip(c.outputs, (new[i] for i in c.output_ids))),
                        inputs=c.inputs, meta=meta)


def _einsum_of(b: Builder, c: Circuit, s: int, new: list[int]) -> int:
    """Sum node ``s`` of its product as ``einsum`` (in builder ``b``, whose ids of ``c``'s nodes
    are ``new``): each operand's source without its length-1 broadcasting axes, the einsum of
    the letters, then the sum's point shape (its kept length-1 axes) back by a reshape."""
    m = c.args(s)[0]
    shape = c.shape(m)
    la, lb, lo, point, _ = contraction_spec(c, s)
    operands, terms = [], []
    for a, letters in zip((operand(c, x, LETTERS[:len(shape)], shape)[0] for x in c.args(m)),
                          (la, lb)):
        kept = letters.replace(".", "")
        source = new[a]
        if kept != letters:
            source = b.apply_id("reshape", (source,), {
                "shape": tuple(n for n, x in zip(c.shape(a), letters) if x != ".")})
        operands.append(source)
        terms.append(kept)
    out = lo.replace(".", "")
    value = b.apply_id("einsum", tuple(operands), {"subscripts": join(terms, out)})
    if out != lo:
        value = b.apply_id("reshape", (value,), {"shape": point})
    return value
