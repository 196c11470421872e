"""Star colorings for sparse Hessians: circuitgrad.transforms.coloring.

Oracles: an independent check of the star property (the vertices of any two colors induce a
forest of stars, with networkx), an exhaustive search for the fewest colors of small bands,
the recovery from the compressed product ``H S`` against ``H`` bit for bit, and sparse
Hessian circuits against the dense ones.
"""

import itertools

import networkx as nx
import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

import circuitgrad as cg
from circuitgrad.transforms.coloring import column_coloring, star_coloring, star_picks
from strategies import tensor_programs


def band(n: int, b: int) -> scipy.sparse.csr_array:
    return scipy.sparse.csr_array(sum(np.eye(n, k=k, dtype=bool) for k in range(-b, b + 1))
                                  .astype(bool))


def arrowhead(n: int) -> scipy.sparse.csr_array:
    p = scipy.sparse.lil_array((n, n), dtype=bool)
    p.setdiag(True)
    p[n - 1, :] = True
    p[:, n - 1] = True
    return scipy.sparse.csr_array(p)


def is_star_coloring(pattern, colors) -> bool:
    """Proper, and every two colors induce a forest of stars (no two-colored 4-vertex path)."""
    coo = scipy.sparse.coo_array(pattern)
    graph = nx.Graph()
    graph.add_nodes_from(range(pattern.shape[0]))
    graph.add_edges_from((int(i), int(j)) for i, j in zip(coo.row, coo.col) if i != j)
    if any(colors[i] == colors[j] for i, j in graph.edges):
        return False
    for a, b in itertools.combinations(sorted(set(colors.tolist())), 2):
        two = graph.subgraph([v for v in graph if colors[v] in (a, b)])
        for part in nx.connected_components(two):
            star = two.subgraph(part)
            k = len(part)
            if k > 2 and sorted(d for _, d in star.degree) != [1] * (k - 1) + [k - 1]:
                return False
    return True


def fewest_star_colors(pattern, most: int) -> int:
    """The star chromatic number, by exhaustive search with vertices in order (small graphs)."""
    n = pattern.shape[0]
    for k in range(1, most + 1):
        colors = np.full(n, -1)

        def extend(v, k=k, colors=colors):
            if v == n:
                return True
            for c in range(k):
                colors[v] = c
                part = pattern[:v + 1, :v + 1]
                if is_star_coloring(part, colors[:v + 1]) and extend(v + 1):
                    return True
            colors[v] = -1
            return False

        if extend(0):
            return k
    return most + 1


@pytest.mark.parametrize("b", [1, 2, 3, 5])
def test_bands_take_2b_plus_1_colors_at_every_n(b):
    for n in (4 * b + 4, 60, 1000):
        colors = star_coloring(band(n, b))
        assert colors.max() + 1 == 2 * b + 1, n
        assert is_star_coloring(band(n, b), colors)
    short = band(2 * b + 3, b)  # a short band may take fewer, never more
    assert is_star_coloring(short, colors := star_coloring(short))
    assert colors.max() + 1 <= 2 * b + 1


@pytest.mark.parametrize("b", [1, 2])
def test_2b_plus_1_is_the_fewest_a_band_can_take(b):
    assert fewest_star_colors(band(9, b), 2 * b + 1) == 2 * b + 1


@pytest.mark.parametrize("n", [3, 10, 200, 3000])
def test_an_arrowhead_takes_two_colors_where_columns_take_n(n):
    colors = star_coloring(arrowhead(n))
    assert colors.max() + 1 == 2
    assert is_star_coloring(arrowhead(n), colors)
    if n <= 200:
        assert column_coloring(arrowhead(n)).max() + 1 == n


def symmetric_patterns():
    @st.composite
    def build(draw):
        n = draw(st.integers(1, 14))
        density = draw(st.floats(0.0, 0.6))
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        upper = np.triu(rng.random((n, n)) < density, 1)
        diagonal = rng.random(n) < 0.7
        return scipy.sparse.csr_array(upper | upper.T | np.diag(diagonal)), seed
    return build()


@given(symmetric_patterns())
@settings(max_examples=150, deadline=None)
def test_random_patterns_get_star_colorings_with_exact_recovery(case):
    pattern, seed = case
    colors = star_coloring(pattern)
    assert is_star_coloring(pattern, colors)
    # H with random values on the pattern; B = H S; each entry is read off B exactly
    rng = np.random.default_rng(seed)
    dense = pattern.toarray()
    upper = np.triu(rng.normal(size=dense.shape))
    h = np.where(dense, upper + np.triu(upper, 1).T, 0.0)
    k = colors.max(initial=-1) + 1
    seeds = np.zeros((len(colors), k))
    seeds[np.arange(len(colors)), colors] = 1.0
    compressed = h @ seeds
    rows, picked = star_picks(pattern, colors)
    coo = scipy.sparse.coo_array(pattern)  # CSR order: row by row, columns ascending
    order = np.lexsort((coo.col, coo.row))
    np.testing.assert_array_equal(compressed[rows, picked], h[coo.row[order], coo.col[order]])


def test_star_picks_refuse_a_coloring_that_is_not_a_star_coloring():
    path = band(4, 1)
    with pytest.raises(ValueError, match="not a proper coloring"):
        star_picks(path, np.array([0, 0, 1, 2]))
    with pytest.raises(ValueError, match="not a star coloring"):
        star_picks(path, np.array([0, 1, 0, 1]))  # the path 0-1-2-3 in two colors


def banded_objective(n: int, b: int) -> cg.Circuit:
    """A scalar function whose Hessian is a band of half-bandwidth b (and no narrower)."""
    terms = " + ".join(f"sum(sin(x[{k}:] * x[:-{k}]))" for k in range(1, b + 1))
    return cg.parse(f"J = sum(x ** 4) + {terms}", shapes={"x": (n,)})


@pytest.mark.parametrize("b", [1, 2, 4])
def test_sparse_hessians_of_bands_take_2b_plus_1_sweeps_and_equal_the_dense_ones(b):
    for n in (4 * b + 4, 40, 300):
        c = banded_objective(n, b)
        np.testing.assert_array_equal(cg.hessian_sparsity(c).toarray(),
                                      band(n, b).toarray())
        h = cg.hessian(c, sparse=True)
        assert h.meta["sweeps"] == 2 * b + 1 and h.meta["coloring"] == "star"
        x = np.random.default_rng(n).uniform(-1, 1, n)
        got = cg.to_numpy(h)(x=x).d2J
        if n <= 40:
            dense = cg.to_numpy(cg.hessian(c, layout="matrix"))(x=x).d2J
            np.testing.assert_allclose(got.toarray(), dense, rtol=1e-14, atol=1e-14)
        assert got.nnz == band(n, b).nnz


@pytest.mark.parametrize("n", [4, 30, 2000])
def test_a_sparse_arrowhead_hessian_takes_two_sweeps(n):
    c = cg.parse("J = sum(square(x[:-1]) * x[-1]) + sum(cos(x))", shapes={"x": (n,)})
    h = cg.hessian(c, sparse=True)
    assert h.meta["sweeps"] == 2
    x = np.linspace(-1.0, 2.0, n)
    got = cg.to_numpy(h)(x=x).d2J
    # by hand: H[i, i] = 2 x[-1] - cos x[i], H[i, -1] = 2 x[i], H[-1, -1] = -cos x[-1]
    want = np.diag(np.append(2 * x[-1] - np.cos(x[:-1]), -np.cos(x[-1])))
    want[:-1, -1] = want[-1, :-1] = 2 * x[:-1]
    np.testing.assert_allclose(got.toarray(), want, rtol=1e-15, atol=0)


@given(tensor_programs(max_ops=6), st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_random_sparse_hessians_equal_the_dense_ones(case, seed):
    text, shapes = case
    c = cg.parse(text, shapes=shapes, inputs=list(shapes))
    rng = np.random.default_rng(seed)
    point = {x: rng.uniform(0.2, 0.8, size=s) for x, s in shapes.items()}
    dense = cg.to_numpy(cg.hessian(c, layout="matrix"))(**point).d2J
    h = cg.hessian(c, sparse=True)
    got = cg.to_numpy(h)(**point).d2J.toarray()
    scale = max(1.0, float(np.max(np.abs(dense), initial=0.0)))
    np.testing.assert_allclose(got, dense, rtol=0, atol=1e-13 * scale)
    assert h.meta["sweeps"] <= max(1, dense.shape[0])


@given(st.integers(1, 12), st.integers(1, 12), st.floats(0.0, 0.7), st.integers(0, 2**32 - 1))
@settings(max_examples=100, deadline=None)
def test_column_coloring_is_networkx_greedy_largest_first_on_the_intersection_graph(
        m, n, density, seed):
    pattern = scipy.sparse.csr_array(np.random.default_rng(seed).random((m, n)) < density)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    for r in range(m):
        line = pattern.indices[pattern.indptr[r]:pattern.indptr[r + 1]].tolist()
        graph.add_edges_from(itertools.combinations(line, 2))
    want = nx.greedy_color(graph, strategy="largest_first")
    got = column_coloring(pattern)
    assert got.tolist() == [want[j] for j in range(n)]
    dense = pattern.toarray()
    for color in set(got.tolist()):  # no two columns of one color share a row
        assert dense[:, got == color].sum(axis=1).max(initial=0) <= 1


def _bundle_adjustment(cams: int, points: int, observations: int, seed: int = 0):
    # Each observation's two residuals read one camera's 9 parameters and one point's 3: the
    # pattern of a bundle-adjustment Jacobian (a dense clique of rows per camera).
    rng = np.random.default_rng(seed)
    cam, pt = rng.integers(0, cams, observations), rng.integers(0, points, observations)
    rows, cols = [], []
    for o in range(observations):
        for r in (2 * o, 2 * o + 1):
            rows += [r] * 12
            cols += [cam[o] * 9 + k for k in range(9)] + [cams * 9 + pt[o] * 3 + k
                                                          for k in range(3)]
    p = scipy.sparse.csr_array((np.ones(len(rows), bool), (rows, cols)),
                               shape=(2 * observations, cams * 9 + points * 3))
    p.sum_duplicates()
    p.sort_indices()
    return p


def test_auto_mode_does_not_color_the_side_that_cannot_win(monkeypatch):
    import importlib

    jac = importlib.import_module("circuitgrad.transforms.jacobian")
    coloring = importlib.import_module("circuitgrad.transforms.coloring")
    calls = []
    real = coloring.column_coloring
    monkeypatch.setattr(coloring, "column_coloring",
                        lambda p: calls.append(p.shape) or real(p))
    ba = _bundle_adjustment(cams=20, points=2000, observations=8000)
    mode, by_columns, by_rows = jac._auto_coloring(ba, size=100)
    # reverse needs at least the ~800 rows a camera column has; forward found 12 colors
    assert mode == "forward" and by_rows is None and int(by_columns.max()) + 1 == 12
    assert calls == [ba.shape]  # the rows' (800-row cliques) were never colored
    # where both can win, both are colored and the fewer sweeps taken (reverse on a tie)
    calls.clear()
    wide = scipy.sparse.csr_array(np.ones((3, 200), bool))
    assert jac._auto_coloring(wide, 10)[0] == "reverse"
    assert jac._auto_coloring(scipy.sparse.csr_array(wide.T), 10)[0] == "forward"
    assert len(calls) == 2  # each time the other side's bound (200) was above 3 colors
    # below the work limit the fewest sweeps of the two colorings, as coloring both gives
    rng = np.random.default_rng(0)
    for _ in range(30):
        p = scipy.sparse.csr_array(rng.random((rng.integers(2, 40), rng.integers(2, 40)))
                                   < rng.uniform(0.02, 0.5))
        mode, by_columns, by_rows = jac._auto_coloring(p, 10)
        fewest = min(int(real(p).max(initial=-1)), int(real(p.T).max(initial=-1))) + 1
        used = by_columns if mode == "forward" else by_rows
        assert int(used.max(initial=-1)) + 1 == fewest


def test_a_sparse_jacobian_of_a_bundle_adjustment_like_residual_is_the_dense_one():
    rng = np.random.default_rng(3)
    cams, points, obs = 4, 30, 120
    cam, pt = rng.integers(0, cams, obs), rng.integers(0, points, obs)

    def residual(c, p):  # c: (cams, 9), p: (points, 3); a made-up smooth projection
        x = p[pt] * c[cam, :3] + c[cam, 3:6]
        u = x[:, :2] / (1.0 + x[:, 2:3] ** 2) * c[cam, 6:7] + c[cam, 7:9] * 0.1
        return u.reshape(-1)

    f = cg.trace(residual, shapes={"c": (cams, 9), "p": (points, 3)})
    at = {"c": rng.normal(size=(cams, 9)), "p": rng.normal(size=(points, 3))}
    sparse = cg.jacobian(f, sparse=True)
    assert sparse.meta["mode"] == "forward"
    got = cg.to_numpy(sparse)(**at)[-1].toarray()
    dense = cg.to_numpy(cg.jacobian(f))(**at)
    want = np.hstack([dense[1].reshape(2 * obs, -1), dense[2].reshape(2 * obs, -1)])
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)
