"""Colorings of sparsity patterns, for compressed Jacobians and Hessians.

A sweep seeded with the sum of several one-hots gives the sum of their columns (forward) or
rows (reverse) of the Jacobian; the entries of that sum are told apart when the grouped
columns share no row. So the columns are colored so that no two of one color share a row:
:func:`column_coloring`, greedy on the column-intersection graph; rows likewise, on the
transposed pattern. One sweep per color.

A Hessian is symmetric, and that allows fewer colors (Gebremedhin, Manne, Pothen, "What color
is your Jacobian? Graph coloring for computing derivatives", SIAM Review 47, 2005): a *star
coloring* of the adjacency graph of the pattern (vertex ``i`` per variable, edge ``i - j`` per
nonzero ``H[i, j]``, ``i != j``) is a proper coloring in which every path on four vertices uses
at least three colors; equivalently, the vertices of any two colors induce a forest of stars.
Then each nonzero ``H[i, j]`` is read directly off one compressed product ``B = H S``: at the
center of the two-colored star holding the edge, say ``i``, the other vertex ``j`` is the only
neighbor of ``i`` with ``j``'s color, so ``B[i, color(j)] = H[i, j]``; a diagonal entry is
``B[i, color(i)]`` (a proper coloring). An arrowhead (a dense last row and column and the
diagonal) takes 2 colors where a column coloring takes n; a banded Hessian with half-bandwidth
``b`` takes ``2b + 1``, the band's star chromatic number (the fewest colors of any direct
recovery; tests/transforms/test_coloring.py checks it by exhaustive search for b = 1, 2; a one-off
search found the same for b = 3), which :func:`star_coloring` attains. (Substitution
methods on acyclic colorings get a band down to ``b + 1`` products, at the price of
recovering entries by solving triangular systems.)

    >>> import numpy as np, scipy.sparse
    >>> arrow = np.eye(5, dtype=bool); arrow[-1, :] = arrow[:, -1] = True
    >>> star_coloring(scipy.sparse.csr_array(arrow)).tolist()
    [1, 1, 1, 1, 0]
    >>> int(column_coloring(scipy.sparse.csr_array(arrow)).max()) + 1
    5
"""

from __future__ import annotations

from typing import Any

import numpy as np


def column_coloring(pattern: Any) -> np.ndarray:
    """Colors of the columns of a sparse pattern such that no two columns of one color have
    a nonzero in the same row: greedy, largest degree first (the order and the choice of
    ``networkx.greedy_color(strategy="largest_first")``), on the column-intersection graph
    ``PᵀP``. The graph stays a scipy matrix: a networkx graph of a 10⁵-column band costs
    seconds to build, the product milliseconds. O(nnz(PᵀP)).

    >>> import numpy as np, scipy.sparse
    >>> column_coloring(scipy.sparse.csr_array(np.eye(3) + np.eye(3, k=1))).tolist()
    [1, 0, 1]
    """
    import scipy.sparse

    p = scipy.sparse.csr_array(pattern, dtype=np.int64)
    return greedy_coloring(adjacency((p.T @ p).astype(bool)))


def greedy_coloring(graph: Any) -> np.ndarray:
    """A proper coloring of a symmetric adjacency matrix (no diagonal): vertices by degree,
    largest first (ties in index order), each taking the smallest color its colored neighbors
    leave free."""
    indptr, indices = graph.indptr, graph.indices
    n = graph.shape[0]
    color = [-1] * n
    for v in np.argsort(-np.diff(indptr), kind="stable").tolist():
        used = {color[w] for w in indices[indptr[v]:indptr[v + 1]].tolist()}
        c = 0
        while c in used:
            c += 1
        color[v] = c
    return np.array(color, dtype=np.int64)


def adjacency(pattern: Any) -> Any:
    """The adjacency graph of a square pattern as a symmetric CSR matrix without diagonal
    (``pattern | pattern.T``, so a structurally asymmetric superset is made symmetric)."""
    import scipy.sparse

    p = scipy.sparse.csr_array(pattern, dtype=bool)
    if p.shape[0] != p.shape[1]:
        raise ValueError(f"a symmetric pattern is square, got shape {p.shape}")
    a = (p + p.T).tocoo()
    off = a.row != a.col
    graph = scipy.sparse.csr_array((np.ones(int(off.sum()), dtype=bool),
                                    (a.row[off], a.col[off])), shape=p.shape)
    graph.sum_duplicates()
    graph.sort_indices()
    return graph


def star_coloring(pattern: Any) -> np.ndarray:
    """A greedy star coloring of the adjacency graph of a symmetric pattern (module docstring).

    Vertices are colored largest degree first, each with the smallest color that keeps the
    coloring a star coloring. Coloring ``v`` with ``c`` is forbidden when

    1. a neighbor ``w`` has color ``c`` (a proper coloring);
    2. an uncolored neighbor ``w`` has a colored neighbor ``x`` of color ``c``: whatever ``w``
       gets later, ``v - w - x`` would be two-colored around the vertex colored last;
    3. a colored neighbor ``w`` has a neighbor ``x`` of color ``c`` which has another
       neighbor ``y`` with ``w``'s color: ``v - w - x - y`` would be a two-colored path.

    Any two-colored path on four vertices would contradict rule 3 at its last colored vertex
    if that is an end, or rule 2 if it is inside. Rule 3 is kept cheap with per-vertex counts
    ``count[x][a]`` (neighbors of ``x`` with color ``a``) and sets ``bad[w]`` (the colors rule 3
    forbids next to ``w``), updated as vertices are colored: O(nnz · colors) set operations.

    >>> import numpy as np, scipy.sparse
    >>> band = scipy.sparse.csr_array(sum(np.eye(6, k=k) for k in (-1, 0, 1)))
    >>> star_coloring(band).tolist()  # 3 = 2b + 1 colors for half-bandwidth b = 1
    [2, 0, 1, 0, 2, 0]
    """
    graph = adjacency(pattern)
    n = graph.shape[0]
    indptr, indices = graph.indptr, graph.indices
    neighbors = [indices[indptr[v]:indptr[v + 1]].tolist() for v in range(n)]
    color = [-1] * n
    count: list[dict[int, int]] = [{} for _ in range(n)]
    bad: list[set[int]] = [set() for _ in range(n)]
    order = np.argsort(-np.diff(indptr), kind="stable").tolist()
    for v in order:
        forbidden: set[int] = set()
        for w in neighbors[v]:
            cw = color[w]
            if cw >= 0:
                forbidden.add(cw)   # rule 1
                forbidden |= bad[w]  # rule 3
            else:
                forbidden.update(count[w])  # rule 2: the colors around an uncolored w
        c = 0
        while c in forbidden:
            c += 1
        color[v] = c
        for x in neighbors[v]:
            k = count[x].get(c, 0) + 1
            count[x][c] = k
            if k >= 2 and color[x] >= 0:
                # x now has two neighbors of color c: the path (v or the other) - x - ...
                # needs x's color kept away from the neighbors of every c-colored w next to x.
                for w in (neighbors[x] if k == 2 else (v,)):
                    if color[w] == c:
                        bad[w].add(color[x])
        for a, k in count[v].items():
            if k >= 2:
                for w in neighbors[v]:
                    if color[w] == a:
                        bad[w].add(c)
    return np.array(color, dtype=np.int64)


def star_picks(pattern: Any, colors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each nonzero of a symmetric pattern is read in the compressed product
    ``B = H S`` (``S[:, k]``: the sum of the one-hots of color ``k``) of a star coloring:
    ``(row, color)`` per nonzero of ``pattern | pattern.T`` in CSR order, ``H[i, j] =
    B[row, color]``. Both ``H[i, j]`` and ``H[j, i]`` are read at the same place, so the
    result is exactly symmetric.

    Raises:
        ValueError: ``colors`` is not a star coloring of the pattern (no direct recovery).

    >>> import numpy as np, scipy.sparse
    >>> arrow = np.eye(3, dtype=bool); arrow[-1, :] = arrow[:, -1] = True
    >>> rows, picked = star_picks(scipy.sparse.csr_array(arrow), np.array([1, 1, 0]))
    >>> rows.tolist(), picked.tolist()
    ([0, 0, 1, 1, 0, 1, 2], [1, 0, 1, 0, 0, 0, 0])
    """
    import scipy.sparse

    graph = adjacency(pattern)
    n = graph.shape[0]
    colors = np.asarray(colors, dtype=np.int64)
    k = int(colors.max(initial=-1)) + 1
    one_hot = scipy.sparse.csr_array((np.ones(n), (np.arange(n), colors)), shape=(n, k))
    # around[i, a]: how many neighbors of i have color a
    around = (graph.astype(np.int64) @ one_hot.astype(np.int64)).tocsr()
    full = scipy.sparse.csr_array(pattern, dtype=bool)
    full = (full + full.T).tocsr()
    full.sort_indices()
    i = np.repeat(np.arange(n), np.diff(full.indptr))
    j = full.indices
    low, high = np.minimum(i, j), np.maximum(i, j)
    if (colors[i[i != j]] == colors[j[i != j]]).any():
        raise ValueError("not a proper coloring: two neighbors share a color")
    # H[low, high] is B[low, color(high)] when high is low's only neighbor of its color, else
    # B[high, color(low)]; a diagonal entry is B[i, color(i)].
    alone = _entries(around, low, colors[high]) == 1
    rows = np.where(alone | (i == j), low, high)
    picked = np.where(alone | (i == j), colors[high], colors[low])
    other = ~alone & (i != j)
    if not (_entries(around, high[other], colors[low[other]]) == 1).all():
        raise ValueError("not a star coloring: an entry is not alone in its color on "
                         "either side")
    return rows, picked


def _entries(matrix: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows[t], cols[t]]`` for every t, of a CSR matrix with sorted indices (zeros
    where nothing is stored), by binary search in the flattened keys."""
    matrix.sort_indices()
    width = matrix.shape[1]
    stored = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr)) * width \
        + matrix.indices
    wanted = np.asarray(rows, dtype=np.int64) * width + np.asarray(cols, dtype=np.int64)
    at = np.minimum(np.searchsorted(stored, wanted), max(len(stored) - 1, 0))
    if len(stored) == 0:
        return np.zeros(len(wanted), dtype=matrix.dtype)
    return np.where(stored[at] == wanted, matrix.data[at], 0)
