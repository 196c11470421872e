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

Where the Jacobian is structurally sparse, the sweep takes compressed seeds instead of the
identity's N rows (:class:`SeedCompression`; :func:`jacobian_function` states the cost
model): one seed per color of a coloring of the sparsity pattern (the sum of its columns'
one-hots forward, of its rows' reverse) and a seed of zeros, K + 1 in all: 2 for an
elementwise map, 3 for a band of width 2, whatever N. A compressed sweep's entry is computed
from the seed's entries in its structural set only, where the color has exactly one
(the pattern holds every entry the sweep reads), so it is the dense sweep's entry bit for
bit; a structural zero is the dense sweep's too, the zero seed's value in its row (forward)
or column (reverse): ``±0``, or NaN where the dense sweep's ``0 · NaN`` meets it. So the
result is the dense sweep's, NaN for NaN, but for the sign of a zero that a sum makes
(a BLAS kernel or a reduction's SIMD loop gives ``−0.0`` at some batch rows and ``+0.0`` at
others: the dense sweep's own signs differ from seed to seed there) and, where the seeds
meet a matrix product, the order of its sums: from :data:`SEED_PRODUCTS_AT` seeds the
product is one gemm (or scaled columns), below it matrix-vector products, so N and K + 1
seeds may sum in other orders (within a sum's bound, as below). A point where a
compressed value is inf or NaN is swept on its N seeds all the same (a safeguard: the tests
find the compressed values equal there too).

    >>> import numpy as np, circuitgrad as cg
    >>> c = cg.parse("f = sin(x) * y", shapes={"x": (2,)})
    >>> jf = cg.jacobian_function(c, lower=cg.to_numpy)
    >>> out = jf(x=[0.0, 1.0], y=2.0)
    >>> out.df_dx.tolist(), out.df_dy.tolist()
    ([[2.0, 0.0], [0.0, 1.0806046117362795]], [0.0, 0.8414709848078965])
"""

from __future__ import annotations

import collections
import copy
import math
import time
from typing import Any, Callable, Sequence

import numpy as np

from ..builder import Builder
from ..circuit import LEAVES, Circuit, as_circuit
from ..errors import InputError
from ..primitives import PRIMITIVES, special
from ..transforms.common import fresh
from ..transforms.jacobian import COLORING_WORK, jacobian_sweep
from .c import to_c
from .calling import (_foreign, as_float64, assign_inputs, batch_axes, common_batch,
                      missing_inputs, outputs)
from .numpy import NumpyFunction, to_numpy

SEED_PRODUCTS_AT = 64
"""Seeds per point from which a NumPy (or fused) sweep multiplies a matrix by all of one
point's seed vectors in one ``matmul`` (:class:`_SeedProducts`), and a batch of points is
called point by point (docs/semantics.md, "Jacobians in one call")."""

SEED_GEMM_AT = 2**24
"""Multiply-adds (N · m · n) from which a dense product of the seeds is one gemm: below it
N matrix-vector products (OpenBLAS's gemm starts its threads for a 100 × 100 × 100 product,
and waking them took 15-30 ms on a loaded machine where the N gemvs take 0.1 ms). The choice
depends on the shapes only, so a point of a batch still runs what the point alone runs."""


COMPRESS_FROM = 16
"""Seeds (N) from which :func:`jacobian_function` looks for compressed seeds in the circuit's
sparsity pattern (:class:`SeedCompression`); below, the sweep's per-call cost is most of it."""

COMPRESS_SHARE = 0.5
"""The compressed seeds are swept where they are at most this share of the N seeds
(K + 1 ≤ COMPRESS_SHARE · N): below it the sweep's cost, proportional to the seeds, at least
halves, and the scatter into the dense matrix (one pass over its m·n entries, as the dense
sweep's own assembly) does not eat that."""

PATTERN_SHARE = 0.25
"""The set entries that :func:`seed_compression`'s pattern may gather and unite in all
(``total`` of :func:`~circuitgrad.transforms.sparsity.bounded_jacobian_sparsity`), as a
share of the dense sweep's entries (N × the entries of the circuit's nodes), or m·n / 2
where that is more. An entry of the pattern costs tens of ns (a sort's), one of the sweep
one to tens, so a structure that turns out dense (a stack of narrow dense layers, each
under the one-node cap) gives up at about a dense call's cost, not one per layer."""


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


class SeedCompression:
    """The compressed seeds of a :class:`JacobianFunction`: one seed per color of a coloring
    of the Jacobian's structural pattern, and a seed of zeros.

    Forward mode colors the columns (``wrt``'s entries) so that no two of one color share a
    row, reverse mode the rows (the outputs' entries) so that no two share a column
    (:func:`~circuitgrad.transforms.coloring.column_coloring`, as ``jacobian(sparse=True)``).
    Seed ``k < K`` is the sum of the one-hots of color ``k``: its sweep gives every nonzero of
    its columns (rows) apart. Seed ``K`` is zeros: its sweep gives what the dense sweep gives
    at a structural zero of each row (forward) or column (reverse), ``±0`` at a point where
    the sweep's values are finite (module docstring).

    Attributes:
        pattern: the structural pattern, a boolean ``scipy.sparse.csr_array`` of shape (m, n)
            (:func:`~circuitgrad.jacobian_sparsity`'s layout).
        colors: the color of each column (forward) or row (reverse).
        count: K, the number of colors.
        seeds: the (K + 1, N) seed matrix, read-only.
        seconds: the time the pattern and the coloring took (once, at build).

        >>> import circuitgrad as cg
        >>> jf = cg.jacobian_function(cg.parse("f = sin(x) * exp(x)", shapes={"x": (40,)}),
        ...                           lower=cg.to_numpy)
        >>> jf.compression.count, jf.seeds, jf.dense_seeds
        (1, 2, 40)
    """

    def __init__(self, pattern: Any, colors: np.ndarray, mode: str, seconds: float):
        self.pattern, self.colors, self.seconds = pattern, colors, seconds
        self.count = int(colors.max(initial=-1)) + 1
        seeds = np.zeros((self.count + 1, len(colors)))
        seeds[colors, np.arange(len(colors))] = 1.0
        seeds.flags.writeable = False
        self.seeds = seeds
        m = pattern.shape[0]
        self.rows = np.repeat(np.arange(m), np.diff(pattern.indptr))
        self.cols = pattern.indices.astype(np.intp)
        # the compressed sweep that holds each nonzero: its column's color (forward) or its
        # row's (reverse)
        picks = colors[self.cols] if mode == "forward" else colors[self.rows]
        # flat places: of each nonzero in the (m, n) matrix, and in the (K + 1, width)
        # compressed results (width m forward, n reverse) where it is read
        width = m if mode == "forward" else pattern.shape[1]
        self.places = self.rows * pattern.shape[1] + self.cols
        self.sources = picks * width + (self.rows if mode == "forward" else self.cols)

    def __repr__(self) -> str:
        m, n = self.pattern.shape
        return (f"<SeedCompression: {self.count} colors + a zero seed for {len(self.colors)} "
                f"seeds, {self.pattern.nnz} of {m} × {n} entries, {self.seconds * 1e3:.1f} ms>")


def seed_compression(c: Circuit, wrt: Sequence[str], outs: Sequence[str], mode: str
                     ) -> SeedCompression | None:
    """The compressed seeds of the dense Jacobian of ``c``, or None where the dense sweep's
    N seeds stay (the cost model of :func:`jacobian_function`): N below
    :data:`COMPRESS_FROM`; a pattern that would pass m·n / 2 entries in one node, counted
    before a union drops repeats
    (:func:`~circuitgrad.transforms.sparsity.bounded_jacobian_sparsity`: a cap on the
    pattern's own cost, exact for an output node, which past it is over half dense, so that
    K ≥ N / 2: forward needs at least nnz / m colors, reverse nnz / n; an intermediate node
    past it, as a reduction of 10⁶ entries that each read one column, is left dense although
    its result may not be); a pattern whose pairs in all pass :data:`PATTERN_SHARE` of the
    dense sweep's entries; a line that forces too many colors (forward needs ≥ a row's
    nonzeros, reverse ≥ a column's); a coloring whose work, Σ (nonzeros of a row)² forward,
    of a column reverse, is above :data:`~circuitgrad.transforms.jacobian.COLORING_WORK`
    (10⁷); or K + 1 > :data:`COMPRESS_SHARE` · N.

        >>> import circuitgrad as cg
        >>> c = cg.parse("f = x[1:] * x[:-1]", shapes={"x": (40,)})
        >>> seed_compression(c, ["x"], ["f"], "forward").count  # a band of width 2
        2
        >>> seed_compression(cg.parse("f = sum(x) * x", shapes={"x": (40,)}),
        ...                  ["x"], ["f"], "forward") is None  # every row is full
        True
    """
    from ..transforms.coloring import column_coloring
    from ..transforms.sparsity import bounded_jacobian_sparsity

    in_shapes, out_shapes = c.input_shapes, c.output_shapes
    m = sum(math.prod(out_shapes[f]) for f in outs)
    n = sum(math.prod(in_shapes[x]) for x in wrt)
    seeds = n if mode == "forward" else m
    if seeds < COMPRESS_FROM:
        return None
    start = time.perf_counter()
    work = sum(math.prod(s) for _, op, _, _, s in c.records() if op not in LEAVES)
    pattern = bounded_jacobian_sparsity(c, wrt, outs, limit=m * n // 2,
                                        total=max(m * n // 2, int(PATTERN_SHARE * seeds * work)))
    if pattern is None:
        return None
    pattern.sort_indices()
    rows = np.diff(pattern.indptr)
    cols = np.bincount(pattern.indices, minlength=n)
    lines = rows if mode == "forward" else cols  # a line's nonzeros all differ in color
    if int(lines.max(initial=0)) + 1 > COMPRESS_SHARE * seeds:
        return None
    if int(np.sum(lines.astype(np.int64) ** 2)) > COLORING_WORK:
        return None
    colors = column_coloring(pattern if mode == "forward" else pattern.T)
    compression = SeedCompression(pattern, colors, mode, time.perf_counter() - start)
    return compression if compression.count + 1 <= COMPRESS_SHARE * seeds else None


PRECOMPUTE_SEED_VALUES = True
"""Whether a dense sweep's values of the seeds alone (:func:`seed_values_apart`) are computed
once per :class:`JacobianFunction` (False: in every call, by the sweep)."""


def seed_values_apart(sweep: Circuit) -> tuple[Circuit, Circuit | None]:
    """A Jacobian sweep's nodes that depend on its seeds alone, computed once: the sweep with
    each such node that the rest reads (and that is smaller than a seed: a sum of a seed's
    entries, a product of a constant vector with it) made an input, and the circuit from the
    seeds to those nodes; ``(sweep, None)`` where there are none.

    On the identity's rows these values are exact in any order and lowering: a sweep is linear
    in its seeds, and a sum or product of a row of the identity has one nonzero term (the
    sum of a row, ``Σ ẋ``, is 1.0), so the numbers are the sweep's own (but for the sign of a
    zero that a sum makes); the dense full-row Jacobian at n = 1000 summed its 10⁶ seed
    entries on every call (0.18 of 0.68 ms). Compressed seeds (several ones a row) keep their
    sums in the sweep: :func:`jacobian_function` applies this to dense sweeps only.

        >>> import circuitgrad as cg
        >>> from circuitgrad.transforms.jacobian import jacobian_sweep
        >>> sweep = jacobian_sweep(cg.parse("f = x * sum(x)", shapes={"x": (3,)}), mode="forward")
        >>> rest, seeded = seed_values_apart(sweep)
        >>> rest.inputs[-1:], seeded.inputs, seeded.outputs
        (('seeded0',), ('x_dot',), ('seeded0',))
    """
    info = sweep.meta["jacobian_sweep"]
    names = dict(zip(sweep.input_ids, sweep.inputs))
    seeds = {i for i, name in names.items() if name in set(info["seeds"])}
    if not seeds:
        return sweep, None
    smallest = min(math.prod(sweep.shape(i)) for i in seeds)
    only = bytearray(len(sweep))  # 1: a seed or made of seeds (and constants) alone
    cut = set()  # the seed-only nodes read by the rest (or outputs), smaller than a seed
    for i, op, args, _params, shape in sweep.records():
        if i in seeds:
            only[i] = 1
        elif op not in LEAVES and any(only[a] for a in args) and all(
                only[a] or sweep.op(a) == "const" for a in args):
            only[i] = 1
        elif op not in LEAVES:
            cut.update(a for a in args if only[a] and a not in seeds)
    cut.update(o for o in sweep.output_ids if only[o] and o not in seeds)
    cut = sorted(a for a in cut if math.prod(sweep.shape(a)) < smallest)
    if not cut:
        return sweep, None
    taken = set(sweep.inputs) | set(sweep.outputs)
    new_names = {a: fresh(f"seeded{k}", taken) for k, a in enumerate(cut)}
    # The rest: the sweep's own records (its ids, so finish carries the guards and maps the
    # sections and adjoint_of), each cut node an input in its own place (order kept); the
    # seed-only nodes only the cut read are then dropped.
    b = Builder(sweep)
    for a, name in new_names.items():
        b.ops[a], b.args[a], b.params[a] = "input", (), name
        b.inputs[name] = a
        b.names.pop(a, None)
    meta = {k: v for k, v in sweep.meta.items() if k not in ("lines", "loops", "delta_of")}
    meta["jacobian_sweep"] = {**info, "precomputed": tuple(new_names.values())}
    rest = b.finish([(name, o) for name, o in zip(sweep.outputs, sweep.output_ids)],
                    inputs=list(sweep.inputs) + list(new_names.values()), meta=meta)
    # The seeds' values: the cut nodes from the seeds (no point input: no guard to check)
    b = Builder(sweep)
    b.guards = None
    seeded = b.finish([(name, a) for a, name in new_names.items()],
                      inputs=[names[i] for i in sorted(seeds)])
    return rest, seeded


IDENTITY_VIEW_ROW = 8
"""The shortest last axis of a seed input that :func:`identity_view`'s rows are given to (a
fused kernel runs shorter rows in blocks that span the seed axis, which the view walks
backwards: there the identity stays a matrix)."""


def identity_view(n: int) -> np.ndarray:
    """The n × n identity as a read-only strided view of 2n − 1 numbers: row k is the
    window that starts k places before the one 1.0 (strides −8 and 8 bytes), so a sweep's
    seeds take 16 kB of memory that stays in cache, not n² · 8 bytes (8 MB at n = 1000,
    read by every pass that reads the seed). The same values as ``np.eye(n)``.

        >>> identity_view(3).tolist(), identity_view(3).strides
        ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], (-8, 8))
    """
    line = np.zeros(2 * n - 1)
    line[n - 1] = 1.0
    view = np.lib.stride_tricks.as_strided(line[n - 1:], shape=(n, n),
                                           strides=(-line.itemsize, line.itemsize))
    view.flags.writeable = False
    return view


def _reads_identity_view(sweep: Circuit, function: Any, shapes: list[tuple[int, ...]]) -> bool:
    """Whether the dense seeds are passed as :func:`identity_view` (else ``np.eye``): for a
    NumPy (or fused) function, whose every operation on a seed is elementwise or a sum, and
    whose seeds' rows are at least :data:`IDENTITY_VIEW_ROW` long. The values are the
    identity's; an elementwise node gives the same bits whatever its operands' strides, and
    NumPy writes its result in C order (a fresh array, as with ``np.eye``); a sum of a seed's
    entries, 0.0s and one 1.0, is exact in any order. Another lowering (``to_c``, the tape)
    copies an input that is not contiguous, on every call: it keeps ``np.eye``'s."""
    if not isinstance(function, NumpyFunction) or not shapes or any(
            not s or s[-1] < IDENTITY_VIEW_ROW for s in shapes):
        return False
    names = set(sweep.meta["jacobian_sweep"]["seeds"])
    seeds = {i for name, i in zip(sweep.inputs, sweep.input_ids) if name in names}
    for i, op, args, _params, _shape in sweep.records():
        if seeds.intersection(args) and not (op == "sum" or PRIMITIVES[op].shape is None
                                             and op not in LEAVES):
            return False
    return True


def _direct(function: Any) -> Callable[..., Any]:
    """The sweep function called by keyword with its batch (the seeds', then the points'):
    for a NumPy (or fused) function, :meth:`~circuitgrad.NumpyFunction.call_bound` (the inputs
    are already checked, broadcast and float64; the checks of its ``__call__`` were a fifth
    of a small compressed call), else ``function`` itself."""
    if not isinstance(function, NumpyFunction):
        return lambda batch, **values: function(**values)
    names = tuple(function.inputs)
    return lambda batch, **values: function.call_bound([values[name] for name in names], batch)


class JacobianFunction:
    """The dense Jacobian of a circuit as one batched call of its sweep (``cg.jacobian_function``).

    Call it as ``to_numpy(cg.jacobian(c))``'s function: inputs by position or keyword, one
    point or a batch; it returns the same named tuple (the outputs, then ``df_dx`` per pair,
    of shape ``batch + f.shape + x.shape``).

    Attributes:
        sweep: the sweep circuit (:func:`~circuitgrad.transforms.jacobian.jacobian_sweep`);
            for dense seeds, with its values of the seeds alone as inputs
            (:func:`seed_values_apart`: ``seeded0`` ...), computed once.
        function: the sweep lowered (``lower(sweep)``).
        mode: ``"forward"`` or ``"reverse"``.
        seeds: the number of seeds per point (the batch the sweep is called on): K + 1 with
            compressed seeds, else N.
        dense_seeds: N, the identity's rows (the entries of ``wrt`` forward, of the outputs
            reverse).
        compression: the :class:`SeedCompression`, or None where the N seeds are swept.
        outputs: the names of the results.
        seed_products: whether the sweep's matrix-vector products of the seeds are one
            matmul per point (:data:`SEED_PRODUCTS_AT`); then a batch of points is called
            point by point.
    """

    def __init__(self, c: Circuit, sweep: Circuit, function: Callable[..., Any],
                 compress: bool = True, seed_values: Circuit | None = None,
                 compression: "SeedCompression | None | bool" = True):
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
        self.dense_seeds = sum(math.prod(s) for s in self._seed_shapes)
        taken = set(c.inputs) | set(self._outs)
        starts = _starts(seeded, shapes)
        # (f, x, the result's name, the first seed of the pair's block and its seeds)
        self._pairs = [(f, x, fresh(f"d{f}_d{x}", taken), starts[x if self.mode == "forward"
                                                                  else f],
                        math.prod(shapes[x if self.mode == "forward" else f]))
                       for f in self._outs for x in self._wrt]
        computed = self._outs if self.mode == "forward" else self._wrt
        self._result_of = dict(zip(computed, self._results))
        self._seed_arrays: dict[tuple[str, int], dict[str, np.ndarray]] = {}
        self.outputs = tuple(self._outs) + tuple(p[2] for p in self._pairs)
        self._Outputs = outputs(self.outputs)
        seeded = _with_seed_products(sweep, function, self.dense_seeds)
        self._dense_products = seeded is not None
        self._identity_view = _reads_identity_view(sweep, function, self._seed_shapes)
        self._dense_call = _direct(function if seeded is None else seeded)
        # (compression=True: found here; None or one found already: jacobian_function's)
        self.compression = (compression if compression is not True else
                            seed_compression(c, self._wrt, self._outs, self.mode)
                            if compress else None)
        # the seeds' own values (seed_values_apart), computed once on the dense seeds
        self._seeded = to_numpy(seed_values) if seed_values is not None else None
        if self.compression is None:
            self.seeds = self.dense_seeds
            self.seed_products, self._sweep_call = self._dense_products, self._dense_call
        else:
            self.seeds = self.compression.count + 1
            seeded = _with_seed_products(sweep, function, self.seeds)
            self.seed_products = seeded is not None
            self._sweep_call = _direct(function if seeded is None else seeded)
            self._row_starts = _starts(self._outs, out_shapes)
            self._col_starts = _starts(self._wrt, in_shapes)

    def __repr__(self) -> str:
        seeds = (f"{self.seeds} compressed seeds of {self.dense_seeds}" if self.compression
                 else f"{self.seeds} seeds")
        return (f"<JacobianFunction of {', '.join(self._outs)} by {', '.join(self._wrt)}: "
                f"{self.mode} mode, {seeds} per point, lowered by "
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
        if self.compression is not None:
            return self._compressed(values, batch)
        return self._dense(values, batch)

    def _dense(self, values: list[np.ndarray], batch: tuple[int, ...]) -> Any:
        """The call on the identity's N rows."""
        if self._dense_products and 0 not in batch:
            return self._point_by_point(values, batch, self._dense_point)
        got = self._sweep_on("dense", self._dense_call, values, batch)
        return self._results_of(got, batch)

    def _dense_point(self, values: list[np.ndarray]) -> Any:
        """One point's Jacobian from the sweep on its N seeds (seed products)."""
        return self._results_of(self._sweep_on("dense", self._dense_call, values, ()), ())

    def _sweep_on(self, seeds: str, call: Any, values: list[np.ndarray],
                  batch: tuple[int, ...]) -> dict[str, Any]:
        """The sweep's outputs by name, called on the seeds (``"dense"`` or
        ``"compressed"``) × the points, the points along axis 1 of the call's batch (seeds,
        *batch): a point's own batch axes are right-aligned with batch, after a 1 for the
        seeds."""
        inputs = self._seed_batch(seeds, len(batch))
        for name, v in zip(self._inputs, values):
            own = v.ndim - len(self._in_shapes[name])
            inputs[name] = v.reshape((1,) * (len(batch) + 1 - own) + v.shape) if own else v
        count = self.dense_seeds if seeds == "dense" else self.compression.count + 1
        return dict(zip(self.sweep.outputs, call((count,) + batch, **inputs)))

    def _results_of(self, got: dict[str, Any], batch: tuple[int, ...]) -> Any:
        """The named tuple of results from the sweep's outputs on the N seeds × ``batch``."""
        lead, k = (self.dense_seeds,) + batch, len(batch)
        result = [np.array(_full(got[f], lead + self._out_shapes[f])[0]) for f in self._outs]
        forward = self.mode == "forward"
        fresh = _fresh(got, lead, self._in_shapes if not forward else self._out_shapes,
                       self._result_of)
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
            # a view of a result the call made for this Jacobian alone (its pairs' blocks do
            # not overlap), else a copy: forward mode's matrix is then the transpose of the
            # seeds' rows (Fortran order), not copied (1.2-2 ms of a 4-7 ms call at n = 1000)
            name = self._result_of[f if forward else x]
            view = block.transpose(order)
            result.append(view if name in fresh else view.copy())
        # one point's scalars as numbers, as the lowerings give them
        return self._Outputs(*(r[()] if r.ndim == 0 else r for r in result))

    def _compressed(self, values: list[np.ndarray], batch: tuple[int, ...]) -> Any:
        """The call on the K + 1 compressed seeds; the points where a compressed value is
        inf or NaN (or the zero seed's is not zero) are swept on their N seeds instead."""
        if self.seed_products and 0 not in batch:
            return self._point_by_point(values, batch, self._compressed_point)
        got = self._sweep_on("compressed", self._sweep_call, values, batch)
        result, finite = self._compressed_results_of(got, batch)
        if not batch:
            return result if finite else self._dense(values, ())
        if finite.all():
            return result
        result = [np.array(r) for r in result]  # (own memory: the points are written in)
        # those points as one batch of the dense sweep (a point of a batch is the point
        # alone), not one call each: 7x compress=False's time where all 5000 points of
        # n = 16 had an inf
        bad = ~finite
        dense = self._dense([np.broadcast_to(v, batch + self._in_shapes[name])[bad]
                             for v, name in zip(values, self._inputs)], (int(bad.sum()),))
        for r, d in zip(result, dense):
            r[bad] = d
        return self._Outputs(*result)

    def _compressed_point(self, values: list[np.ndarray]) -> Any:
        """One point's Jacobian from the sweep on its K + 1 seeds (seed products)."""
        got = self._sweep_on("compressed", self._sweep_call, values, ())
        result, finite = self._compressed_results_of(got, ())
        return result if finite else self._dense(values, ())

    def _compressed_results_of(self, got: dict[str, Any], batch: tuple[int, ...]
                               ) -> tuple[Any, Any]:
        """(the named tuple of results, whether each point's compressed values are usable)
        from the sweep's outputs on the K + 1 seeds × ``batch``: the dense (m, n) matrix of
        each point is the zero seed's value broadcast along its rows (forward) or columns
        (reverse), then every structural nonzero read off its color's sweep; the pairs'
        blocks are cut from it."""
        comp, forward = self.compression, self.mode == "forward"
        lead = (comp.count + 1,) + batch
        result = [np.array(_full(got[f], lead + self._out_shapes[f])[0]) for f in self._outs]
        names, shapes = ((self._outs, self._out_shapes) if forward
                         else (self._wrt, self._in_shapes))
        flat = [_full(got[self._result_of[name]], lead + shapes[name]).reshape(
                    lead + (math.prod(shapes[name]),)) for name in names]
        flat = flat[0] if len(flat) == 1 else np.concatenate(flat, axis=-1)
        if batch:
            flat = np.moveaxis(flat, 0, -2)  # [*batch, seed, entry]
        zero = flat[..., -1, :]
        if batch:
            finite = np.isfinite(flat).all(axis=(-2, -1)) & ~zero.any(axis=-1)
        else:
            finite = bool(np.isfinite(flat).all()) and not zero.any()
        m, n = comp.pattern.shape
        if np.ascontiguousarray(zero).view(np.int64).any():  # not all +0.0: −0.0 or NaN
            matrix = np.array(np.broadcast_to(zero[..., :, None] if forward else
                                              zero[..., None, :], batch + (m, n)), order="C")
        else:
            matrix = np.zeros(batch + (m, n))
        points = math.prod(batch)  # the nonzeros by their flat places in one call
        view = matrix.reshape(points, m * n)  # (C order: a view, written through)
        view[:, comp.places] = flat.reshape(points, flat.shape[-2] * flat.shape[-1])[
            :, comp.sources]
        for f, x, _, _, _ in self._pairs:
            sx, sf = self._in_shapes[x], self._out_shapes[f]
            r, k = self._row_starts[f], self._col_starts[x]
            block = matrix[..., r:r + math.prod(sf), k:k + math.prod(sx)]
            result.append(np.ascontiguousarray(block).reshape(batch + sf + sx))
        # one point's scalars as numbers, as the lowerings give them
        return self._Outputs(*(r[()] if r.ndim == 0 else r for r in result)), finite

    def _point_by_point(self, values: list[np.ndarray], batch: tuple[int, ...],
                        point: Callable[[list[np.ndarray]], Any]) -> Any:
        """The call with seed products: one call of the sweep per point, on its seeds, so
        that a point of a batch runs the very products the point alone runs (contiguous
        inputs both ways: a gemm's order may depend on the strides)."""
        shapes = [self._in_shapes[name] for name in self._inputs]
        if not batch:
            return point([np.array(v, order="C", copy=None) for v in values])
        full = [np.broadcast_to(v, batch + s) for v, s in zip(values, shapes)]
        points = [point([np.array(v[p], order="C") for v in full]) for p in np.ndindex(batch)]
        return self._Outputs(*(np.stack([np.asarray(q[k]) for q in points])
                               .reshape(batch + np.shape(points[0][k]))
                               for k in range(len(self.outputs))))

    def _seed_batch(self, seeds: str, k: int) -> dict[str, np.ndarray]:
        """The seed inputs (the identity's rows or the compressed seeds, read-only) for a
        call whose points have ``k`` batch axes: the seeds along the first axis, ones for
        the points' axes."""
        arrays = self._seed_arrays.get((seeds, k))
        if arrays is None:
            if seeds == "dense" and self._identity_view:
                matrix = identity_view(self.dense_seeds)
            elif seeds == "dense":
                matrix = np.eye(self.dense_seeds)
                matrix.flags.writeable = False
            else:
                matrix = self.compression.seeds
            first, arrays = 0, {}
            for name, shape in zip(self._seed_names, self._seed_shapes):
                size = math.prod(shape)
                arrays[name] = matrix[:, first:first + size].reshape(
                    (len(matrix),) + (1,) * k + shape)
                first += size
            if seeds == "dense" and self._seeded is not None:
                values = self._seeded(**{name: arrays[name] for name in self._seeded.inputs})
                values = (values,) if len(self._seeded.outputs) == 1 else values
                for name, v in zip(self._seeded.outputs, values):
                    v = np.asarray(v, dtype=np.float64)
                    v.flags.writeable = False
                    arrays[name] = v
            self._seed_arrays[seeds, k] = arrays
        return dict(arrays)


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


def _fresh(got: dict[str, Any], lead: tuple[int, ...], shapes: dict[str, tuple[int, ...]],
           result_of: dict[str, str]) -> set[str]:
    """The sweep's results (by name) that are arrays the call made and gave back once: of the
    call's full shape (so they vary with the seeds: no constant the function keeps), owning
    their memory and writable (no input, no view of one, no read-only broadcast), and no other
    output the same array. The Jacobian's blocks may be views of those."""
    ids = collections.Counter(id(v) for v in got.values())
    fresh = set()
    for name, result in result_of.items():
        value = got[result]
        if type(value) is np.ndarray and value.shape == lead + shapes[name] \
                and value.flags.owndata and value.flags.writeable and ids[id(value)] == 1:
            fresh.add(result)
    return fresh


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
                      simplify: bool = True, compress: bool = True) -> JacobianFunction:
    """The dense Jacobian as a function: one sweep circuit, called on a batch of seeds.

    Args:
        c: a circuit (any number of outputs, any shapes; or program text).
        wrt: the inputs, as :func:`~circuitgrad.jacobian` takes them (default: all).
        outputs: the outputs, likewise (default: all).
        mode: ``"forward"``, ``"reverse"`` or ``"auto"`` (fewer seeds, reverse on a tie).
        lower: the lowering of the sweep circuit (``cg.to_c``, ``cg.to_numpy``,
            ``cg.to_tape``, ``cg.to_fused``, or a ``functools.partial`` of one with options).
            ``cg.to_c`` weighs a sweep's scalars over its N seeds
            (:data:`~circuitgrad.lower.c.SEED_WORK_LIMIT`).
        simplify: simplify the sweep circuit (exact rules only).
        compress: sweep compressed seeds where the circuit's sparsity pattern allows far
            fewer than N (below); False: always the identity's N rows.

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

    Compressed seeds (``compress``): a sweep's cost is proportional to its seeds, and where
    the Jacobian is structurally sparse (an elementwise map's diagonal, a band, blocks) a
    coloring of its pattern needs K + 1 seeds instead of N (:class:`SeedCompression`: one
    per color, and zeros). The pattern and the coloring are found once, here
    (:func:`seed_compression`, ``jf.compression.seconds``: 2-3 ms for a diagonal or a band
    of n = 1000, and once per process the import of ``scipy.sparse``), and kept only where
    ``K + 1 ≤ N / 2`` (:data:`COMPRESS_SHARE`); their cost is capped so that a dense
    structure gives up early and keeps the N seeds (2-4 ms for ``tanh(W sin x)``, n = 1000):
    the pattern stops once a node's sets would pass m·n / 2 entries, or all its sets
    together :data:`PATTERN_SHARE` of the dense sweep's entries, and no coloring is
    tried whose lower bound (a row's nonzeros forward, a column's reverse) is above N / 2 −
    1 or whose work passes 10⁷. Each call then sweeps K + 1 seeds and scatters the nonzeros
    into the dense matrix; its other entries are the zero seed's (what the dense sweep gives
    at a structural zero: ``±0``, or NaN where ``0 · inf`` meets it). The values are the
    dense sweep's at every point, bit for bit but for the sign of a zero that a sum makes
    and, where the sweep multiplies a matrix by the seeds, the order of those sums (N seeds
    may take a gemm where K + 1 take matrix-vector products: :data:`SEED_PRODUCTS_AT`)
    (docs/semantics.md, "Jacobians in one call"): at a point where a compressed value is inf
    or NaN, that point is swept on its N seeds, a safeguard for ``0 · inf`` met off the
    pattern.

    Raises:
        CircuitError: an unknown input, output or mode (as :func:`~circuitgrad.jacobian`).

    >>> import circuitgrad as cg
    >>> jf = cg.jacobian_function("f = x * y", lower=cg.to_numpy)
    >>> [float(v) for v in jf(x=2.0, y=3.0)]
    [6.0, 3.0, 2.0]
    """
    c = as_circuit(c, "jacobian_function")
    sweep = jacobian_sweep(c, wrt, outputs, mode, simplify)
    info = sweep.meta["jacobian_sweep"]
    compression = (seed_compression(c, info["wrt"], info["jacobian_of"], info["mode"])
                   if compress else None)
    seeded = None
    if compression is None and PRECOMPUTE_SEED_VALUES:
        sweep, seeded = seed_values_apart(sweep)
    return JacobianFunction(c, sweep, lower(sweep), compress, seeded, compression)
