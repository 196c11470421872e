"""Dense Jacobians in one batched call: one sweep circuit, the identity's rows as a batch.

:func:`~circuitgrad.jacobian` joins one sweep per entry into one circuit of
O(sweeps · c.size) nodes. :func:`jacobian_function` lowers the sweep *once*, with its seed as
an input (:func:`~circuitgrad.transforms.jacobian.jacobian_sweep`: the tangent ``x_dot`` of
forward mode, the cotangent ``f_bar`` of reverse mode), and calls it with the rows of the
identity as a batch of seeds (docs/semantics.md, "Batches": extra leading axes are a batch),
the point broadcast along them, as JAX's ``jacfwd`` and ``jacrev`` do with ``vmap``:

* forward: seeds ``e_k`` for the N = Σ_x prod(x.shape) entries of ``wrt``; seed k's output
  tangents are the columns ``∂f/∂x[k]``;
* reverse: seeds ``e_k`` for the N = Σ_f prod(f.shape) entries of the outputs; seed k's input
  adjoints are the rows ``∂f[k]/∂x``.

A batch of points (inputs with leading axes B) is a batch of N × B: the seeds along a new
first axis, the points along the next, then the axes moved to ``B + f.shape + x.shape``. The
result is that of ``to_numpy(cg.jacobian(c))``: the outputs, then ``df_dx`` per pair.

The values are those of the one-hot circuits where the sweep's operations are the same: a
seed's 1.0 and 0.0 multiply where the one-hot constants of :func:`~circuitgrad.jacobian`
are folded away, which is exact (``p·1 = p``, ``a + p·0 = a``) except for the sign of a zero
and at points where a partial is infinite or NaN: there an entry that the one-hot circuit
gives as 0 is ``0·inf = NaN`` here, as it is for JAX's ``jacfwd`` and ``jacrev``.

    >>> import numpy as np, circuitgrad as cg
    >>> c = cg.parse("f = sin(x) * y", shapes={"x": (2,)})
    >>> jf = cg.jacobian_function(c, lower=cg.to_numpy)
    >>> out = jf(x=[0.0, 1.0], y=2.0)
    >>> out.df_dx.tolist(), out.df_dy.tolist()
    ([[2.0, 0.0], [0.0, 1.0806046117362795]], [0.0, 0.8414709848078965])
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Sequence

import numpy as np

from ..circuit import Circuit, as_circuit
from ..errors import InputError
from ..primitives import special
from ..transforms.common import fresh
from ..transforms.jacobian import jacobian_sweep
from .c import to_c
from .calling import (_foreign, as_float64, assign_inputs, batch_axes, common_batch,
                      missing_inputs, outputs)
from .numpy import NumpyFunction

SEED_PRODUCTS_AT = 64
"""Seeds per point from which a NumPy (or fused) sweep multiplies a matrix by all of one
point's seed vectors in one ``matmul`` (:class:`_SeedProducts`), and a batch of points is
called point by point (docs/semantics.md, "Jacobians in one call")."""

SEED_GEMM_AT = 2**24
"""Multiply-adds (N · m · n) from which a dense product of the seeds is one gemm: below it
N matrix-vector products (OpenBLAS's gemm starts its threads for a 100 × 100 × 100 product,
and waking them took 15-30 ms on a loaded machine where the N gemvs take 0.1 ms). The choice
depends on the shapes only, so a point of a batch still runs what the point alone runs."""


class _SeedProducts:
    """The generated code's ``_sp`` for a sweep called on one point's N seeds: a product of a
    matrix without a seed axis and the seeds' vectors, ``_sp.matvec(A, x)`` with ``A`` of
    shape (m, n) and ``x`` of (N, n) (``vecmat``: ``x`` of (N, m)), is

    * where each seed's vector has at most one nonzero (the identity's rows times the
      partials of elementwise nodes: the first product a forward sweep meets from the inputs,
      a reverse sweep from the outputs) and ``A`` is finite: ``A``'s columns scaled, no sum
      at all, the one-term sums of every other order (a gemv's, a gemm's) bit for bit but
      for the sign of a zero;
    * else, from :data:`SEED_GEMM_AT` multiply-adds, the one matmul ``x @ A.T`` (``x @ A``),
      a BLAS gemm that reads ``A`` once, not N matrix-vector products that read it N times
      (the per-item ``np.matvec`` of a batch: 6-10× slower at N = 1000). A gemm sums in another order than a gemv: the entries agree
      with the one-hot circuits' within the bound of a sum (docs/semantics.md, "Jacobians
      in one call"), and the same point gives the same bits (the same gemm).

    Every other helper, and every other case, is ``_sp``'s own.

        >>> import numpy as np
        >>> A, x = np.arange(6.0).reshape(2, 3), np.eye(3) * 2.0
        >>> _SEED_PRODUCTS.matvec(A, x).tolist()  # row k: A @ (2 e_k), read off A
        [[0.0, 6.0], [2.0, 8.0], [4.0, 10.0]]
        >>> _SEED_PRODUCTS.matvec(A, x + 1.0).tolist()  # a dense x: a sum
        [[3.0, 18.0], [5.0, 20.0], [7.0, 22.0]]
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(special, name)

    @staticmethod
    def matvec(a: Any, x: Any) -> Any:
        if np.ndim(a) != 2 or np.ndim(x) != 2:
            return special.matvec(a, x)
        one = _one_per_row(a, x)
        if one is not None:  # entry (k, i): a[i, column k] · value k, by a's rows
            columns, values = one
            return (a * values if columns is None else a[:, columns] * values).T
        if x.shape[0] * a.size < SEED_GEMM_AT:
            return special.matvec(a, x)
        return np.matmul(x, np.matrix_transpose(a))

    @staticmethod
    def vecmat(x: Any, a: Any) -> Any:
        if np.ndim(a) != 2 or np.ndim(x) != 2:
            return special.vecmat(x, a)
        one = _one_per_row(a, x)
        if one is not None:  # entry (k, j): a[column k, j] · value k
            columns, values = one
            return (a if columns is None else a[columns]) * values[:, None]
        if x.shape[0] * a.size < SEED_GEMM_AT:
            return special.vecmat(x, a)
        return np.matmul(x, a)


def _one_per_row(a: np.ndarray, x: np.ndarray) -> tuple[np.ndarray | None, np.ndarray] | None:
    """(the column, the value) of each row of ``x`` where every row has at most one nonzero
    (an empty row: column 0, value 0.0) and ``a`` is finite (a sum meets ``0 · inf``, a
    scaled column would not); else None. The columns are None where row k's is k (a
    diagonal: no gather). A pass over ``x`` and ``a``: little beside a gemm."""
    rows = x.shape[0]
    if np.count_nonzero(x) > rows:
        return None
    nonzero = x != 0.0
    if rows and int(nonzero.sum(axis=1).max()) > 1 or not np.isfinite(a).all():
        return None
    columns = nonzero.argmax(axis=1)
    values = x[np.arange(rows), columns]
    if x.shape[1] == rows and np.array_equal(columns, np.arange(rows)):
        return None, values
    return columns, values


_SEED_PRODUCTS = _SeedProducts()


def _with_seed_products(sweep: Circuit, function: Any, seeds: int) -> Any:
    """A copy of a NumPy (or fused) sweep function whose code calls :class:`_SeedProducts`,
    where the sweep has a matrix-vector product and ``seeds`` ≥ :data:`SEED_PRODUCTS_AT`;
    else None. A copy: ``function`` itself keeps ``_sp`` (called on a batch of a user's
    points, the gemm would break "a point of a batch is the point alone")."""
    if seeds < SEED_PRODUCTS_AT or not isinstance(function, NumpyFunction):
        return None
    if not any(sweep.op(i) == "matmul" and sorted(len(sweep.shape(a)) for a in sweep.args(i))
               == [1, 2] for i in range(len(sweep))):
        return None
    if function._code is None:  # (interpreted: above COMPILE_LIMIT nodes) left as it is
        return None
    seeded = copy.copy(function)
    seeded._namespace = {**function._namespace, "_sp": _SEED_PRODUCTS}
    seeded._run = seeded._bind_code(seeded._namespace)
    seeded._bound = {}
    return seeded


class JacobianFunction:
    """The dense Jacobian of a circuit as one batched call of its sweep (``cg.jacobian_function``).

    Call it as ``to_numpy(cg.jacobian(c))``'s function: inputs by position or keyword, one
    point or a batch; it returns the same named tuple (the outputs, then ``df_dx`` per pair,
    of shape ``batch + f.shape + x.shape``).

    Attributes:
        sweep: the sweep circuit (:func:`~circuitgrad.transforms.jacobian.jacobian_sweep`).
        function: the sweep lowered (``lower(sweep)``).
        mode: ``"forward"`` or ``"reverse"``.
        seeds: the number of seeds per point (the batch the sweep is called on).
        outputs: the names of the results.
        seed_products: whether the sweep's matrix-vector products of the seeds are one
            matmul per point (:data:`SEED_PRODUCTS_AT`); then a batch of points is called
            point by point.
    """

    def __init__(self, c: Circuit, sweep: Circuit, function: Callable[..., Any]):
        info = sweep.meta["jacobian_sweep"]
        self.sweep, self.function, self.mode = sweep, function, info["mode"]
        self._inputs = tuple(c.inputs)
        self._wrt, self._outs = info["wrt"], info["jacobian_of"]
        self._seed_names, self._results = info["seeds"], info["results"]
        in_shapes = dict(zip(c.inputs, (c.shape(i) for i in c.input_ids)))
        out_shapes = dict(zip(c.outputs, (c.shape(i) for i in c.output_ids)))
        self._in_shapes, self._out_shapes = in_shapes, out_shapes
        seeded = self._wrt if self.mode == "forward" else self._outs
        shapes = in_shapes if self.mode == "forward" else out_shapes
        self._seed_shapes = [shapes[name] for name in seeded]
        self.seeds = sum(math.prod(s) for s in self._seed_shapes)
        taken = set(c.inputs) | set(self._outs)
        starts = _starts(seeded, shapes)
        # (f, x, the result's name, the first seed of the pair's block and its seeds)
        self._pairs = [(f, x, fresh(f"d{f}_d{x}", taken), starts[x if self.mode == "forward"
                                                                  else f],
                        math.prod(shapes[x if self.mode == "forward" else f]))
                       for f in self._outs for x in self._wrt]
        computed = self._outs if self.mode == "forward" else self._wrt
        self._result_of = dict(zip(computed, self._results))
        self._seed_arrays: dict[int, dict[str, np.ndarray]] = {}
        self.outputs = tuple(self._outs) + tuple(p[2] for p in self._pairs)
        self._Outputs = outputs(self.outputs)
        seeded = _with_seed_products(sweep, function, self.seeds)
        self.seed_products = seeded is not None
        self._sweep_call = function if seeded is None else seeded

    def __repr__(self) -> str:
        return (f"<JacobianFunction of {', '.join(self._outs)} by {', '.join(self._wrt)}: "
                f"{self.mode} mode, {self.seeds} seeds per point, lowered by "
                f"{type(self.function).__name__}>")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        values = assign_inputs("jacobian_function", self._inputs, args, kwargs)
        missing_inputs("jacobian_function", self._inputs, values)
        values = [as_float64(name, _as_numpy(name, v)) for name, v in zip(self._inputs, values)]
        batches = []
        for k, (name, v) in enumerate(zip(self._inputs, values)):
            axes = batch_axes(name, v.shape, self._in_shapes[name])
            if axes:
                batches.append((k, axes))
        batch = common_batch(self._inputs, batches)
        if self.seed_products and 0 not in batch:
            return self._point_by_point(values, batch)
        # the points along axis 1 of the call's batch (seeds, *batch): a point's own batch
        # axes are right-aligned with batch, after a 1 for the seeds
        call = self._seed_batch(len(batch))
        for name, v in zip(self._inputs, values):
            own = v.ndim - len(self._in_shapes[name])
            call[name] = v.reshape((1,) * (len(batch) + 1 - own) + v.shape) if own else v
        return self._results_of(dict(zip(self.sweep.outputs, self._sweep_call(**call))), batch)

    def _results_of(self, got: dict[str, Any], batch: tuple[int, ...]) -> Any:
        """The named tuple of results from the sweep's outputs on the seeds × ``batch``."""
        lead, k = (self.seeds,) + batch, len(batch)
        result = [np.array(_full(got[f], lead + self._out_shapes[f])[0]) for f in self._outs]
        forward = self.mode == "forward"
        for f, x, _, first, size in self._pairs:
            sx, sf = self._in_shapes[x], self._out_shapes[f]
            if forward:  # seed k of x: the column df/dx[k]
                block = _full(got[self._result_of[f]], lead + sf)[first:first + size]
                block = block.reshape(sx + batch + sf)  # [x entry, batch, f entry]
                order = (*range(len(sx), len(sx) + k + len(sf)), *range(len(sx)))
            else:  # seed k of f: the row df[k]/dx
                block = _full(got[self._result_of[x]], lead + sx)[first:first + size]
                block = block.reshape(sf + batch + sx)  # [f entry, batch, x entry]
                order = (*range(len(sf), len(sf) + k), *range(len(sf)),
                         *range(len(sf) + k, len(sf) + k + len(sx)))
            result.append(block.transpose(order).copy())
        # one point's scalars as numbers, as the lowerings give them
        return self._Outputs(*(r[()] if r.ndim == 0 else r for r in result))

    def _point_by_point(self, values: list[np.ndarray], batch: tuple[int, ...]) -> Any:
        """The call with seed products: one call of the sweep per point, on its N seeds, so
        that a point of a batch runs the very products the point alone runs (contiguous
        inputs both ways: a gemm's order may depend on the strides)."""
        shapes = [self._in_shapes[name] for name in self._inputs]
        if not batch:
            return self._call_point([np.array(v, order="C", copy=None) for v in values])
        full = [np.broadcast_to(v, batch + s) for v, s in zip(values, shapes)]
        points = [self._call_point([np.array(v[p], order="C") for v in full])
                  for p in np.ndindex(batch)]
        return self._Outputs(*(np.stack([np.asarray(point[k]) for point in points])
                               .reshape(batch + np.shape(points[0][k]))
                               for k in range(len(self.outputs))))

    def _call_point(self, values: list[np.ndarray]) -> Any:
        """One point's Jacobian: the sweep on its N seeds."""
        call = self._seed_batch(0)
        call.update(zip(self._inputs, values))
        return self._results_of(dict(zip(self.sweep.outputs, self._sweep_call(**call))), ())

    def _seed_batch(self, k: int) -> dict[str, np.ndarray]:
        """The seed inputs (the identity's rows, read-only) for a call whose points have
        ``k`` batch axes: the seeds along the first axis, ones for the points' axes."""
        seeds = self._seed_arrays.get(k)
        if seeds is None:
            eye, first, seeds = np.eye(self.seeds), 0, {}
            eye.flags.writeable = False
            for name, shape in zip(self._seed_names, self._seed_shapes):
                size = math.prod(shape)
                seeds[name] = eye[:, first:first + size].reshape((self.seeds,) + (1,) * k +
                                                                  shape)
                first += size
            self._seed_arrays[k] = seeds
        return dict(seeds)


def _as_numpy(name: str, value: Any) -> Any:
    """An input as NumPy's: the seeds and the results are NumPy arrays, so another library's
    array (torch, JAX, CuPy) is converted first, and then checked as a NumPy array is (an
    int64 tensor entry beyond 2**53 refused, not rounded), or refused by name where it cannot
    be converted (a torch tensor that requires grad, a GPU array, a jax.jit tracer)."""
    if not _foreign(value):
        return value
    try:
        return np.asarray(value)
    except Exception as e:  # (each library's own error: RuntimeError, TypeError ...)
        raise InputError(f"jacobian_function: input {name!r} is a {type(value).__name__} "
                         f"that NumPy cannot read ({type(e).__name__}: {e}); the Jacobian "
                         f"function computes with NumPy arrays (to_numpy(cg.jacobian(c)) "
                         f"runs on the array's own library)") from None


def _full(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A result of the lowering at the call's full shape (a result that does not depend on
    the seeds, or on the points, may come back with fewer axes)."""
    value = np.asarray(value)
    return value if value.shape == shape else np.broadcast_to(value, shape)


def _starts(names: Sequence[str], shapes: dict[str, tuple[int, ...]]) -> dict[str, int]:
    """The first seed of each name's entries (the seeds of the names in order)."""
    starts, first = {}, 0
    for name in names:
        starts[name] = first
        first += math.prod(shapes[name])
    return starts


def jacobian_function(c: Circuit, wrt: str | Sequence[str] | None = None,
                      outputs: str | Sequence[str] | None = None, mode: str = "auto",
                      lower: Callable[[Circuit], Any] = to_c,
                      simplify: bool = True) -> JacobianFunction:
    """The dense Jacobian as a function: one sweep circuit, called on a batch of seeds.

    Args:
        c: a circuit (any number of outputs, any shapes; or program text).
        wrt: the inputs, as :func:`~circuitgrad.jacobian` takes them (default: all).
        outputs: the outputs, likewise (default: all).
        mode: ``"forward"``, ``"reverse"`` or ``"auto"`` (fewer seeds, reverse on a tie).
        lower: the lowering of the sweep circuit (``cg.to_c``, ``cg.to_numpy``,
            ``cg.to_tape``, ``cg.to_fused``, or a ``functools.partial`` of one with options).
        simplify: simplify the sweep circuit (exact rules only).

    Returns:
        A :class:`JacobianFunction`: called like ``to_numpy(cg.jacobian(c, wrt, outputs))``,
        it returns the same named tuple: the outputs, then ``df_dx`` of shape
        ``batch + f.shape + x.shape`` for every output ``f`` and every ``x`` of ``wrt``. Each
        call is one call of the lowered sweep on a batch of N seeds × the points, N the
        entries of ``wrt`` (forward) or of the outputs (reverse), so memory is
        N × the sweep's values per point (the module docstring says how the values compare
        with :func:`~circuitgrad.jacobian`'s circuit). From :data:`SEED_PRODUCTS_AT` seeds,
        a NumPy or fused sweep with matrix-vector products is called once per point, its
        products of the N seed vectors one product of matrices (:class:`_SeedProducts`;
        docs/semantics.md, "Jacobians in one call").

    Raises:
        CircuitError: an unknown input, output or mode (as :func:`~circuitgrad.jacobian`).

    >>> import circuitgrad as cg
    >>> jf = cg.jacobian_function("f = x * y", lower=cg.to_numpy)
    >>> [float(v) for v in jf(x=2.0, y=3.0)]
    [6.0, 3.0, 2.0]
    """
    c = as_circuit(c, "jacobian_function")
    sweep = jacobian_sweep(c, wrt, outputs, mode, simplify)
    return JacobianFunction(c, sweep, lower(sweep))
