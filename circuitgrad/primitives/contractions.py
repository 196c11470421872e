"""The contractions beyond matmul: ONE record, ``einsum``, whose adjoints and tangents are
einsums again. NumPy's ``einsum``, ``tensordot``, ``inner``, ``vdot``, ``kron``, N-D ``matmul``
and ``dot`` trace to it (circuitgrad/frontends/numpy_api/contractions.py).

The record's one param, ``subscripts``, is NumPy's sublist form (a tuple of letter labels per
operand, then the output's: ``'ij,jk->ik'`` is ``((8, 9), (9, 10), (8, 10))``, integers as
every param of a circuit, so JSON saves it), normalized when the node is traced: explicit
(never implicit), letters only (NumPy's ``...`` is expanded to letters given
the shapes), each letter at most once per operand (a diagonal, ``'ii->i'``, is taken before
the node, by indexing: its adjoint is indexing's scatter), every letter of one size in every
operand (NumPy's broadcasting of a length-1 axis is a reshape before the node). So::

    out[o] = Σ over the letters not in the output of  Π_k  operand_k[s_k]

and the adjoint of operand k is the einsum of the others and ``bar`` giving s_k's letters
(the notes' matrix chain rule: ∂(A@B)/∂A = Ḡ Bᵀ is ``'ik,jk->ij'``), broadcast along the
letters of s_k found nowhere else (``'ij->i'``: ∂/∂x = bar broadcast along j); the tangent is
the sum of the einsums with one operand replaced by its tangent.

NumPy evaluates it with ``np.einsum(..., optimize=True)`` (the pairwise order NumPy picks,
BLAS where it applies): a sum in another order than a left fold, agreeing with the exact sum
to rounding as ``@`` does (docs/semantics.md); ``scalarize`` (to_tape, to_c) adds the
products left to right in C order of the summed letters.

    >>> from circuitgrad.primitives import shape_of
    >>> shape_of("einsum", ((2, 3), (3, 4)), {"subscripts": join(["ij", "jk"], "ik")})
    (2, 4)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import CircuitError, ShapeError
from . import expand
from .core import Primitive, Shape, call, sum_optional

SCALAR_LIMIT = 1_000_000
"""The most scalar products one einsum node may expand to in :func:`~circuitgrad.scalarize`
(to_tape, to_c, to_sympy): above it the expansion is refused, naming the node's size and
to_numpy, which runs it as one call."""


LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""NumPy's subscript letters: label k of the param is LETTERS[k] (its sublist form)."""

Subscripts = tuple[tuple[int, ...], ...]


def parse(subscripts: Subscripts) -> tuple[list[str], str]:
    """The operands' letters and the output's of the param (a label list per operand, then
    the output's: NumPy's sublist form, integers as a circuit's params are).

        >>> parse(((0, 1), (1, 2), (0, 2)))
        (['ab', 'bc'], 'ac')
    """
    if not (isinstance(subscripts, tuple) and len(subscripts) >= 2 and all(
            isinstance(t, tuple) and all(type(k) is int and 0 <= k < 52 for k in t)
            for t in subscripts)):
        raise ShapeError(f"einsum: subscripts {subscripts!r} must be label tuples (integers "
                         "in [0, 52)), one per operand and the output's last")
    letters = ["".join(LETTERS[k] for k in t) for t in subscripts]
    return letters[:-1], letters[-1]


def join(inputs: list[str], output: str) -> Subscripts:
    """The param of the operands' letters and the output's (``parse``'s inverse).

        >>> join(["ij", "jk"], "ik")
        ((8, 9), (9, 10), (8, 10))
    """
    return tuple(tuple(LETTERS.index(c) for c in t) for t in inputs + [output])


def text(subscripts: Subscripts) -> str:
    """NumPy's string of the param: ``'ij,jk->ik'``."""
    inputs, output = parse(subscripts)
    return ",".join(inputs) + "->" + output


def sizes_of(inputs: list[str], shapes: tuple[Shape, ...]) -> dict[str, int]:
    """The length of each letter, checked: one length per letter (a ShapeError if not)."""
    sizes: dict[str, int] = {}
    for letters, shape in zip(inputs, shapes):
        for letter, n in zip(letters, shape):
            if sizes.setdefault(letter, n) != n:
                raise ShapeError(f"einsum '{','.join(inputs)}': letter {letter!r} has lengths "
                                 f"{sizes[letter]} and {n} in shapes "
                                 f"{' and '.join(str(tuple(s)) for s in shapes)}")
    return sizes


def _shape(*shapes: Shape, subscripts: Subscripts) -> Shape:
    inputs, output = parse(subscripts)
    subscripts = text(subscripts)
    if len(inputs) != len(shapes):
        raise ShapeError(f"einsum '{subscripts}': {len(inputs)} operand subscripts for "
                         f"{len(shapes)} operands")
    for letters, shape in zip(inputs, shapes):
        if len(letters) != len(shape):
            raise ShapeError(f"einsum '{subscripts}': subscripts {letters!r} for an operand of "
                             f"shape {tuple(shape)}")
        if len(set(letters)) != len(letters):
            raise ShapeError(f"einsum '{subscripts}': a letter twice in {letters!r} (the "
                             "record takes diagonals already taken)")
    if len(set(output)) != len(output) or not set(output) <= set("".join(inputs)):
        raise ShapeError(f"einsum '{subscripts}': the output letters {output!r} must be "
                         "distinct letters of the operands")
    sizes = sizes_of(inputs, shapes)
    return tuple(sizes[letter] for letter in output)


def _template(*args: str, shapes: tuple[Shape, ...], subscripts: Subscripts) -> str:
    # Batch axes in front of every operand and of the output: NumPy's ellipsis.
    inputs, output = parse(subscripts)
    batched = ",".join("..." + s for s in inputs) + "->..." + output
    return f"_sp.einsum({batched!r}, {', '.join(args)})"


def _label(subscripts: Subscripts, shapes: Any = None) -> str:
    return text(subscripts)


def contract(operands: list[Any], inputs: list[str], output: str) -> Any:
    """The einsum node of ``operands`` (letters ``inputs``) giving ``output``; the operand
    itself where there is one and nothing is summed or moved."""
    if len(operands) == 1 and inputs[0] == output:
        return operands[0]
    return call("einsum", *operands, subscripts=join(inputs, output))


def _vjp(bar: Any, out: Any, *args: Any, subscripts: Subscripts) -> tuple:
    inputs, output = parse(subscripts)
    sizes = sizes_of(inputs, tuple(a.shape for a in args))
    contributions = []
    for k, letters in enumerate(inputs):
        others = [inputs[j] for j in range(len(args)) if j != k] + [output]
        found = set("".join(others))
        kept = "".join(letter for letter in letters if letter in found)
        operands = [args[j] for j in range(len(args)) if j != k] + [bar]
        part = contract(operands, others, kept)
        if kept != letters:  # the letters only operand k has: bar is constant along them
            ones = tuple(sizes[letter] if letter in found else 1 for letter in letters)
            part = call("broadcast_to", call("reshape", part, shape=ones),
                        shape=tuple(sizes[letter] for letter in letters))
        contributions.append(part)
    return tuple(contributions)


def _jvp(tangents: tuple, out: Any, *args: Any, subscripts: Subscripts) -> Any:
    inputs, output = parse(subscripts)
    total = None
    for k, t in enumerate(tangents):
        if t is not None:
            operands = list(args[:k]) + [t] + list(args[k + 1:])
            total = sum_optional(total, contract(operands, inputs, output))
    return total


def _scalar(b: Any, prim: Any, args: list[expand.Grid], params: dict,
            shape: tuple) -> expand.Grid:
    """Each output entry the left fold (add) of its products (left folds of mul, operands in
    order), the summed letters in C order."""
    inputs, output = parse(params["subscripts"])
    sizes = sizes_of(inputs, tuple(a.shape for a in args))
    summed = [letter for letter in dict.fromkeys("".join(inputs)) if letter not in output]
    count = math.prod(shape) * math.prod(sizes[s] for s in summed)  # the terms of the sums
    if count > SCALAR_LIMIT:
        raise CircuitError(f"einsum '{text(params['subscripts'])}' of shapes "
                           f"{', '.join(str(a.shape) for a in args)} expands to {count} scalar "
                           f"products, more than scalarize's {SCALAR_LIMIT} (to_tape and to_c "
                           "expand it; to_numpy runs it as one call)")
    out = expand.grid(shape)
    ranges = [range(sizes[s]) for s in summed]
    for index in np.ndindex(shape):
        at = dict(zip(output, index))
        terms = []
        for rest in np.ndindex(*(len(r) for r in ranges)) if summed else [()]:
            at.update(zip(summed, rest))
            factors = [int(g[tuple(at[letter] for letter in s)]) for g, s in zip(args, inputs)]
            terms.append(expand.fold(b, "mul", factors))
        out[index] = expand.fold(b, "add", terms)
    return out


RECORDS: list[Primitive] = [
    # NumPy's einsum of normalized subscripts (the module docstring); internal: programs
    # write np.einsum, tensordot, inner, vdot, kron, @ and dot, whose handlers make it.
    Primitive("einsum", 1, _template, "einsum", variadic=True, params=("subscripts",),
              numpy=("einsum",), internal=True, shape=_shape, vjp=_vjp, jvp=_jvp,
              label_of=_label,
              cases=(((2, 3), (3, 4)),),
              example={"subscripts": ((8, 9), (9, 10), (8, 10))},
              sparsity="einsum", scalar=_scalar),
]
