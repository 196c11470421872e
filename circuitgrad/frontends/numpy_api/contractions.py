"""The handlers of einsum, tensordot, inner, vdot, kron, cross and N-D matmul/dot.

Each is NumPy's function, same shapes, same broadcasting, same errors (as ShapeError), built
of the ``einsum`` record (circuitgrad/primitives/contractions.py), whose subscripts are
normalized here: NumPy's ``...`` expanded to letters given the shapes, implicit outputs made
explicit (the ellipsis, then the letters used once, in ASCII order), a length-1 axis that
broadcasts dropped by a reshape, a letter twice in one operand (a diagonal, ``'ii->i'``) taken
first by indexing. ``optimize=`` is accepted and changes nothing: the circuit is the same
contraction, evaluated as the record says. ``cross`` is made of indexing and products, in
NumPy's order of operations (the same bits), for 2- and 3-vectors along any axes.

    >>> import numpy as np, circuitgrad as cg
    >>> c = cg.trace(lambda a, b: np.einsum("bij,bjk->bik", a, b),
    ...              shapes={"a": (2, 3, 4), "b": (2, 4, 5)})
    >>> [c.op(i) for i in c.output_ids], c.shape(c.output_ids[0])
    (['einsum'], (2, 3, 5))
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np

from ...errors import CircuitError, ShapeError
from ...primitives.contractions import LETTERS, join
from ...value import Value
from .binding import as_value, bind, builder_of

OPTIMIZE = (False, True, "greedy", "optimal")


def _shape(a: Any) -> tuple[int, ...]:
    return a.shape if isinstance(a, Value) else np.shape(a)


# -- einsum -----------------------------------------------------------------------------------


def _sublist(name: str, sub: Any) -> str:
    out = []
    for s in sub:
        if s is Ellipsis:
            out.append("...")
        elif isinstance(s, (int, np.integer)) and not isinstance(s, bool) and 0 <= s < 52:
            out.append(LETTERS[int(s)])
        else:
            raise CircuitError(f"{name}: a sublist holds integers in [0, 52) and Ellipsis, "
                               f"got {s!r}")
    return "".join(out)


def _einsum_handler(func: Any, args: tuple, kwargs: dict) -> Any:
    name = "numpy.einsum"
    for key, value in kwargs.items():
        if key == "optimize":
            if not (value in OPTIMIZE or (isinstance(value, (list, tuple)) and value
                                          and value[0] == "einsum_path")):
                raise CircuitError(f"{name}: optimize={value!r} is not one of NumPy's")
        elif key == "dtype" and value in (None, float, np.float64):
            continue
        elif not (key in ("out", "order", "casting") and value in (None, "K", "safe")):
            raise CircuitError(f"{name}: the argument {key}= cannot be traced")
    if not args:
        raise CircuitError(f"{name}: no operands")
    if isinstance(args[0], str):
        subscripts, operands = args[0], list(args[1:])
    else:  # einsum(op0, sublist0, op1, sublist1, ..., [sublistout])
        n = len(args) // 2
        operands = list(args[0:2 * n:2])
        subscripts = ",".join(_sublist(name, s) for s in args[1:2 * n:2])
        if len(args) % 2:
            subscripts += "->" + _sublist(name, args[-1])
    return einsum(name, subscripts, operands)


def einsum(name: str, subscripts: str, operands: list[Any]) -> Value:
    """NumPy's ``einsum(subscripts, *operands)`` as the einsum record, ``name`` in errors."""
    b = builder_of(operands)
    ops = [as_value(b, a) for a in operands]
    subscripts = subscripts.replace(" ", "")
    if not set(subscripts) <= set(LETTERS) | set(",.->"):
        raise CircuitError(f"{name}: subscripts {subscripts!r} hold a character that is not a "
                           "letter, ',', '...' or '->'")
    inputs, arrow, output = subscripts.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(ops):
        raise ShapeError(f"{name}: {len(terms)} operand subscripts in {subscripts!r} for "
                         f"{len(ops)} operands")
    if any(t.replace("...", "", 1).count(".") for t in terms + [output]):
        raise CircuitError(f"{name}: '.' only as the ellipsis '...' in {subscripts!r}")
    # the ellipsis: the same new letters for every operand, aligned from the right
    spare = [c for c in LETTERS if c not in subscripts]
    widths = []
    for t, x in zip(terms, ops):
        named = len(t.replace("...", ""))
        width = len(x.shape) - named if "..." in t else 0
        if width < 0 or ("..." not in t and named != len(x.shape)):
            raise ShapeError(f"{name}: subscripts {t!r} for an operand of shape {x.shape}")
        widths.append(width)
    if max(widths, default=0) > len(spare):
        raise ShapeError(f"{name}: {subscripts!r} leaves {len(spare)} letters for "
                         f"{max(widths)} axes of '...'")
    ellipsis = "".join(spare[:max(widths, default=0)])
    terms = [t.replace("...", ellipsis[len(ellipsis) - w:]) for t, w in zip(terms, widths)]
    if not arrow:
        counts = "".join(terms)
        output = ellipsis + "".join(sorted(c for c in set(counts) - set(ellipsis)
                                           if counts.count(c) == 1))
    elif "..." in output:
        output = output.replace("...", ellipsis)
    elif ellipsis:
        raise ShapeError(f"{name}: {subscripts!r}: the operands have '...' axes "
                         f"({len(ellipsis)}) and the output has no '...' to put them in")
    if len(set(output)) != len(output) or not set(output) <= set("".join(terms)):
        raise ShapeError(f"{name}: the output subscripts {output!r} of {subscripts!r} must be "
                         "distinct letters of the operands")
    # NumPy's broadcasting: a letter of length 1 where another operand has it longer (not
    # within one operand: a diagonal's two axes have one length)
    sizes: dict[str, int] = {}
    for t, x in zip(terms, ops):
        own: dict[str, int] = {}
        for c, n in zip(t, x.shape):
            if own.setdefault(c, n) != n:
                raise ShapeError(f"{name}: {subscripts!r}: the diagonal of letter {c!r} over "
                                 f"axes of lengths {own[c]} and {n} (shape {x.shape})")
            if n != 1 and sizes.get(c, 1) not in (1, n):
                raise ShapeError(f"{name}: {subscripts!r}: letter {c!r} has lengths "
                                 f"{sizes[c]} and {n} (shapes "
                                 f"{', '.join(str(o.shape) for o in ops)})")
            sizes[c] = max(sizes.get(c, 1), n)
    for k, (t, x) in enumerate(zip(terms, ops)):
        drop = [j for j, (c, n) in enumerate(zip(t, x.shape)) if n == 1 and sizes[c] > 1]
        if drop:
            ops[k] = x.reshape(tuple(n for j, n in enumerate(x.shape) if j not in drop))
            terms[k] = "".join(c for j, c in enumerate(t) if j not in drop)
        ops[k], terms[k] = _diagonals(name, ops[k], terms[k])
    return _contract(b, ops, terms, output)


def _diagonals(name: str, x: Value, term: str) -> tuple[Value, str]:
    """``x`` with each letter's diagonal taken, so that every letter is once in ``term``:
    the two axes moved last, joined, every (n + 1)-th entry (indexing: its adjoint a scatter)."""
    while len(set(term)) != len(term):
        c = next(c for c in term if term.count(c) > 1)
        p = term.index(c)
        q = term.index(c, p + 1)
        n, m = x.shape[p], x.shape[q]
        if n != m:
            raise ShapeError(f"{name}: the diagonal of letter {c!r} over axes of lengths {n} "
                             f"and {m} (shape {x.shape})")
        rest = [j for j in range(len(term)) if j not in (p, q)]
        if rest + [p, q] != list(range(len(term))):
            x = x.transpose(tuple(rest + [p, q]))
        x = x.reshape(tuple(x.shape[:-2]) + (n * n,))[..., ::n + 1]
        term = "".join(term[j] for j in rest) + c
    return x, term


def _contract(b: Any, ops: list[Value], terms: list[str], output: str) -> Value:
    if len(ops) == 1 and terms[0] == output:
        return ops[0]
    return b.apply("einsum", *ops, subscripts=join(terms, output))


# -- tensordot, inner, vdot, kron ---------------------------------------------------------------


def _axes_list(name: str, axes: Any, ndim: int) -> list[int]:
    items = list(axes) if isinstance(axes, (list, tuple, np.ndarray)) else [axes]
    out = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise CircuitError(f"{name}: axes must be integers, got {a!r}")
        if not -ndim <= a < ndim:
            raise ShapeError(f"{name}: axis {a} is out of range for {ndim} axes")
        out.append(int(a) % ndim)
    return out


def _tensordot(func: Any, args: tuple, kwargs: dict) -> Any:
    name = "numpy.tensordot"
    bound = bind(func, args, kwargs, {"a": None, "b": None, "axes": None})
    a, b, axes = bound["a"], bound["b"], bound.get("axes", 2)
    sa, sb = _shape(a), _shape(b)
    if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
        n = int(axes)
        if n < 0 or n > min(len(sa), len(sb)):
            raise ShapeError(f"{name}: axes={n} for shapes {sa} and {sb}")
        xa, xb = list(range(len(sa) - n, len(sa))), list(range(n))
    else:
        try:
            first, second = axes
        except (TypeError, ValueError):
            raise CircuitError(f"{name}: axes must be an integer or a pair of sequences, "
                               f"got {axes!r}") from None
        xa, xb = _axes_list(name, first, len(sa)), _axes_list(name, second, len(sb))
    if len(xa) != len(xb) or len(set(xa)) != len(xa) or len(set(xb)) != len(xb):
        raise ShapeError(f"{name}: the axes {xa} and {xb} must pair distinct axes")
    if any(sa[i] != sb[j] for i, j in zip(xa, xb)):
        raise ShapeError(f"{name}: shape-mismatch for sum: shapes {sa} and {sb} along axes "
                         f"{xa} and {xb}")
    ta = LETTERS[:len(sa)]
    fresh = iter(LETTERS[len(sa):])
    tb = "".join(ta[xa[xb.index(j)]] if j in xb else next(fresh) for j in range(len(sb)))
    out = "".join(c for i, c in enumerate(ta) if i not in xa) + \
        "".join(c for j, c in enumerate(tb) if j not in xb)
    return einsum(name, f"{ta},{tb}->{out}", [a, b])


def _inner(func: Any, args: tuple, kwargs: dict) -> Any:
    name = "numpy.inner"
    bound = bind(func, args, kwargs, {"a": None, "b": None})
    a, b = bound["a"], bound["b"]
    sa, sb = _shape(a), _shape(b)
    if not sa or not sb:
        return builder_of((a, b)).apply("mul", a, b)
    if sa[-1] != sb[-1]:
        raise ShapeError(f"{name}: shapes {sa} and {sb}: the last axes differ "
                         f"({sa[-1]} != {sb[-1]})")
    ta, tb = LETTERS[:len(sa)], LETTERS[len(sa):len(sa) + len(sb) - 1] + LETTERS[len(sa) - 1]
    return einsum(name, f"{ta},{tb}->{ta[:-1]}{tb[:-1]}", [a, b])


def _vdot(func: Any, args: tuple, kwargs: dict) -> Any:
    name = "numpy.vdot"
    bound = bind(func, args, kwargs, {"a": None, "b": None})
    builder = builder_of((bound["a"], bound["b"]))
    a, b = (as_value(builder, v).ravel() for v in (bound["a"], bound["b"]))
    if a.shape != b.shape:
        raise ShapeError(f"{name}: {a.shape[0]} and {b.shape[0]} entries do not pair")
    return einsum(name, "i,i->", [a, b])


def _kron(func: Any, args: tuple, kwargs: dict) -> Any:
    name = "numpy.kron"
    bound = bind(func, args, kwargs, {"a": None, "b": None})
    builder = builder_of((bound["a"], bound["b"]))
    a, b = (as_value(builder, v) for v in (bound["a"], bound["b"]))
    if not a.shape or not b.shape:
        return a * b
    n = max(len(a.shape), len(b.shape))
    a = a.reshape((1,) * (n - len(a.shape)) + a.shape)
    b = b.reshape((1,) * (n - len(b.shape)) + b.shape)
    ta, tb = LETTERS[:n], LETTERS[n:2 * n]
    out = einsum(name, f"{ta},{tb}->{''.join(x + y for x, y in zip(ta, tb))}", [a, b])
    return out.reshape(tuple(p * q for p, q in zip(a.shape, b.shape)))


# -- matmul, dot --------------------------------------------------------------------------------


def _matmul(func: Any, args: tuple, kwargs: dict) -> Any:
    name = "numpy.matmul"
    if kwargs or len(args) != 2:
        raise CircuitError(f"{name}: two operands, no keyword arguments, can be traced")
    return matmul(*args)


def matmul(a: Any, b: Any, name: str = "numpy.matmul") -> Any:
    """NumPy's ``a @ b``: matrices and vectors as the matmul record, stacks of them (batch
    axes in front, broadcast) as einsum."""
    sa, sb = _shape(a), _shape(b)
    if not sa or not sb:
        raise ShapeError(f"{name}: an operand of shape () (matmul takes no scalars; "
                         "multiply with *)")
    builder = builder_of((a, b))
    if len(sa) <= 2 and len(sb) <= 2:
        return builder.apply("matmul", a, b)
    if sa[-1] != sb[0 if len(sb) == 1 else -2]:
        raise ShapeError(f"{name}: shapes {sa} and {sb} do not fit: {sa[-1]} (last of left) "
                         f"!= {sb[0 if len(sb) == 1 else -2]} (of right)")
    left = "j" if len(sa) == 1 else "...ij"
    right = "j" if len(sb) == 1 else "...jk"
    out = "..." + ("i" if len(sa) > 1 else "") + ("k" if len(sb) > 1 else "")
    return einsum(name, f"{left},{right}->{out}", [a, b])


def _dot(func: Any, args: tuple, kwargs: dict) -> Any:
    name = "numpy.dot"
    bound = bind(func, args, kwargs, {"a": None, "b": None})
    a, b = bound["a"], bound["b"]
    sa, sb = _shape(a), _shape(b)
    builder = builder_of((a, b))
    if not sa or not sb:
        return builder.apply("mul", a, b)
    if len(sa) <= 2 and len(sb) <= 2:
        return builder.apply("matmul", a, b)
    j = 0 if len(sb) == 1 else len(sb) - 2  # the sum over a's last axis and b's j
    if sa[-1] != sb[j]:
        raise ShapeError(f"{name}: shapes {sa} and {sb} not aligned: {sa[-1]} (dim "
                         f"{len(sa) - 1}) != {sb[j]} (dim {j})")
    ta = LETTERS[:len(sa)]
    rest = iter(LETTERS[len(sa):])
    tb = "".join(ta[-1] if k == j else next(rest) for k in range(len(sb)))
    out = ta[:-1] + "".join(c for k, c in enumerate(tb) if k != j)
    return einsum(name, f"{ta},{tb}->{out}", [a, b])


def _gufunc(subscripts: str) -> Callable[..., Any]:
    # NumPy's vecdot, matvec, vecmat: gufuncs over the last axes, the others broadcast
    def handler(func: Any, args: tuple, kwargs: dict) -> Any:
        name = f"numpy.{func.__name__}"
        if kwargs or len(args) != 2:
            raise CircuitError(f"{name}: two operands, no keyword arguments, can be traced")
        return einsum(name, subscripts, list(args))

    return handler


def _einsum_path(func: Any, args: tuple, kwargs: dict) -> Any:
    # a plan from the shapes alone: NumPy's own, on zeros of the operands' shapes
    args = tuple(np.zeros(a.shape) if isinstance(a, Value) else a for a in args)
    return np.einsum_path(*args, **kwargs)


# -- cross ---------------------------------------------------------------------------------------


def _cross(func: Any, args: tuple, kwargs: dict) -> Any:
    name = "numpy.cross"
    bound = bind(func, args, kwargs, {"a": None, "b": None, "axisa": None, "axisb": None,
                                       "axisc": None, "axis": None})
    builder = builder_of((bound["a"], bound["b"]))
    a, b = (as_value(builder, v) for v in (bound["a"], bound["b"]))
    axisa, axisb, axisc = (bound.get(k, -1) for k in ("axisa", "axisb", "axisc"))
    if bound.get("axis") is not None:
        axisa = axisb = axisc = bound["axis"]
    if not a.shape or not b.shape:
        raise ShapeError(f"{name}: at least one array has zero dimension")
    a, b = _moved_last(name, a, axisa, "axisa"), _moved_last(name, b, axisb, "axisb")
    na, nb = a.shape[-1], b.shape[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ShapeError(f"{name}: incompatible dimensions for cross product (dimension must "
                         f"be 2 or 3; got {na} and {nb})")
    if na == 2 or nb == 2:
        warnings.warn("Arrays of 2-dimensional vectors are deprecated. Use arrays of "
                      "3-dimensional vectors instead. (deprecated in NumPy 2.0)",
                      DeprecationWarning, stacklevel=4)
    a0, a1, b0, b1 = a[..., 0], a[..., 1], b[..., 0], b[..., 1]
    if na == 2 and nb == 2:
        return a0 * b1 - a1 * b0  # a scalar per pair: axisc is not used, as in NumPy
    # NumPy's products in its order; a missing third component is 0, as NumPy writes it
    if na == 3 and nb == 3:
        a2, b2 = a[..., 2], b[..., 2]
        parts = [a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0]
    elif na == 2:
        b2 = b[..., 2]
        parts = [a1 * b2, -(a0 * b2), a0 * b1 - a1 * b0]
    else:
        a2 = a[..., 2]
        parts = [-(a2 * b1), a2 * b0, a0 * b1 - a1 * b0]
    shape = np.broadcast_shapes(a0.shape, b0.shape)
    parts = [p if p.shape == shape else builder.apply("broadcast_to", p, shape=shape)
             for p in parts]
    rank = len(shape) + 1
    if isinstance(axisc, bool) or not isinstance(axisc, (int, np.integer)) or \
            not -rank <= axisc < rank:
        raise ShapeError(f"{name}: axisc {axisc!r} is out of range for {rank} axes")
    return builder.apply("stack", *parts, axis=int(axisc) % rank)


def _moved_last(name: str, x: Value, axis: Any, key: str) -> Value:
    ndim = len(x.shape)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or \
            not -ndim <= axis < ndim:
        raise ShapeError(f"{name}: {key} {axis!r} is out of range for {ndim} axes")
    axis = int(axis) % ndim
    if axis == ndim - 1:
        return x
    return x.transpose(tuple(k for k in range(ndim) if k != axis) + (axis,))


FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.einsum: _einsum_handler,
    np.tensordot: _tensordot,
    np.inner: _inner,
    np.vdot: _vdot,
    np.kron: _kron,
    np.cross: _cross,
    np.einsum_path: _einsum_path,
    np.matmul: _matmul,
    np.vecdot: _gufunc("...i,...i->..."),
    np.matvec: _gufunc("...ij,...j->...i"),
    np.vecmat: _gufunc("...j,...jk->...k"),
    np.dot: _dot,  # N-D too (basics' handler took vectors and matrices)
}
