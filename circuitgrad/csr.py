"""Sparse matrix outputs: a circuit's ``meta["csr_outputs"]`` names outputs that hold the
nonzeros of a sparse matrix, and a lowering hands them back as ``scipy.sparse`` matrices.

A sparse Jacobian or Hessian circuit (``cg.jacobian(..., sparse=True)``,
``cg.hessian(..., sparse=True)``) computes only the structural nonzeros, as one vector output
in CSR order. The pattern is fixed when the circuit is built, so the circuit carries it:

    meta["csr_outputs"] = {name: {"shape": (m, n), "indptr": (...), "indices": (...)}}

and :func:`csr_matrix` (or the hook :func:`csr_outputs` that ``to_numpy`` applies to what the
generated code returns) makes the ``scipy.sparse.csr_array`` from the values of one point.
CSR is two-dimensional, so a batch of points has no CSR form: for a batch the hook raises a
``ShapeError`` that says to lower with ``csr=False``, which returns the compressed values
(``batch + (nnz,)``), as any other output.

    >>> import circuitgrad as cg
    >>> j = cg.jacobian(cg.parse("f = x * x", shapes={"x": (3,)}), sparse=True)
    >>> cg.to_numpy(j)(x=[1.0, 2.0, 3.0]).jacobian.toarray().tolist()
    [[2.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 6.0]]
    >>> cg.to_numpy(j, csr=False)(x=[1.0, 2.0, 3.0]).jacobian.tolist()
    [2.0, 4.0, 6.0]
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .circuit import Circuit
from .errors import CircuitError, ShapeError

CSR_META = "csr_outputs"


def csr_layouts(c: Circuit) -> dict[str, dict[str, Any]]:
    """``{output name: {"shape", "indptr", "indices"}}`` of the outputs ``c`` marks as the
    nonzeros of a sparse matrix (checked against the outputs' shapes)."""
    layouts = c.meta.get(CSR_META) or {}
    shapes = dict(zip(c.outputs, (c.shape(i) for i in c.output_ids)))
    for name, layout in layouts.items():
        nnz = len(layout["indices"])
        if shapes.get(name) != (nnz,):
            raise CircuitError(f"meta {CSR_META!r} marks output {name!r} as {nnz} sparse "
                               f"nonzeros, but the circuit's output has shape "
                               f"{shapes.get(name)}")
    return layouts


def csr_matrix(layout: dict[str, Any], values: Any, name: str = "output") -> Any:
    """The ``scipy.sparse.csr_array`` of one point's nonzeros ``values`` in ``layout``.

    >>> csr_matrix({"shape": (2, 2), "indptr": (0, 1, 2), "indices": (1, 0)}, [5.0, 7.0]).toarray()
    array([[0., 5.],
           [7., 0.]])
    """
    import scipy.sparse

    values = np.asarray(values, dtype=float)
    nnz = len(layout["indices"])
    if values.shape != (nnz,):
        raise ShapeError(f"output {name!r} is a sparse matrix: CSR is 2-D, so it takes the "
                         f"{nnz} nonzeros of one point, got values of shape {values.shape} "
                         f"(a batch of {values.shape[:-1]} points?); lower with csr=False "
                         f"(to_numpy, to_tape, to_c) for the compressed values, batch + (nnz,)")
    # Copies: each matrix owns its index arrays (eliminate_zeros() rewrites them in place).
    return scipy.sparse.csr_array((values, np.array(layout["indices"], dtype=np.int64),
                                   np.array(layout["indptr"], dtype=np.int64)),
                                  shape=tuple(layout["shape"]))


def csr_outputs(c: Circuit) -> Callable[[Sequence[Any]], list[Any]] | None:
    """The hook a lowering applies to the list of a call's outputs: the marked ones become
    ``scipy.sparse.csr_array`` matrices; None when ``c`` marks none."""
    layouts = csr_layouts(c)
    if not layouts:
        return None
    # the index arrays once, not per call (a tuple of 3·10⁵ ints takes ~10 ms to convert)
    marked = [(k, name, {"shape": layouts[name]["shape"],
                         "indices": np.asarray(layouts[name]["indices"], dtype=np.int64),
                         "indptr": np.asarray(layouts[name]["indptr"], dtype=np.int64)})
              for k, name in enumerate(c.outputs) if name in layouts]

    def hook(values: Sequence[Any]) -> list[Any]:
        out = list(values)
        for k, name, layout in marked:
            out[k] = csr_matrix(layout, out[k], name)
        return out

    return hook
