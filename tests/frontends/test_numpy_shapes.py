"""NumPy's shape and array functions on traced values (frontends/numpy_api/shapes.py): NumPy's
values bit for bit, on random shapes and arguments (every axis, negative ones too); gradients
against central differences; the array API path; to_tape expanding the rearrangements and
refusing the value-dependent permutations (sort) by name; errors naming the NumPy function."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import circuitgrad as cg
import circuitgrad.numpy as cnp

xps = pytest.importorskip("array_api_strict")
pytestmark = pytest.mark.filterwarnings("ignore:`row_stack` alias is deprecated")


def _outputs(result):
    return list(result) if isinstance(result, (list, tuple)) else [result]


def _trace(fn, shapes):
    named = {1: lambda a0: fn(a0), 2: lambda a0, a1: fn(a0, a1),
             3: lambda a0, a1, a2: fn(a0, a1, a2)}[len(shapes)]
    return cg.trace(named, shapes={f"a{k}": s for k, s in enumerate(shapes)})


def _points(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s) for s in shapes]


def _same(got, want):
    got, want = _outputs(got), _outputs(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g, w = np.asarray(g, dtype=np.float64), np.asarray(w, dtype=np.float64)
        assert g.shape == w.shape, (g.shape, w.shape)
        assert np.array_equal(g, w, equal_nan=True), (g, w)


def agrees(fn, *shapes, seed=0):
    """The traced ``fn`` gives NumPy's values, point by point and on a batch of points."""
    xs = _points(shapes, seed)
    f = cg.to_numpy(_trace(fn, shapes))
    _same(f(*xs), fn(*xs))
    batch = [np.stack([x, 2.0 * x + 1.0]) for x in xs]
    got = _outputs(f(*batch))
    for k in range(2):
        _same([g[k] for g in got], fn(*[b[k] for b in batch]))
    return f


def _objective(fn, xs):
    """A scalar of ``fn``'s outputs with fixed weights, for gradients."""
    weights = [np.random.default_rng(7).normal(size=np.shape(o)) for o in _outputs(fn(*xs))]

    def scalar(*args):
        return sum(np.sum(w * o) for w, o in zip(weights, _outputs(fn(*args))))

    return scalar


def gradient_is_right(fn, *shapes, seed=1):
    xs = _points(shapes, seed)
    scalar = _objective(fn, xs)
    g = cg.to_numpy(cg.grad(_trace(scalar, shapes)))
    got = _outputs(g(*xs))[1:]
    for k, x in enumerate(xs):
        fd = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            hi, lo = [v.copy() for v in xs], [v.copy() for v in xs]
            hi[k][i] += 1e-6
            lo[k][i] -= 1e-6
            fd[i] = (scalar(*hi) - scalar(*lo)) / 2e-6
        np.testing.assert_allclose(got[k], fd, rtol=1e-6, atol=1e-6)
    return g, xs


# One case per function and argument form: (fn, point shapes).
REARRANGING = [
    (lambda x: np.repeat(x, 2), [(3,)]),
    (lambda x: np.repeat(x, [1, 0, 2], axis=-1), [(2, 3)]),
    (lambda x: np.repeat(x, 3, axis=None), [(2, 2)]),
    (lambda x: np.tile(x, (2, 1, 2)), [(2, 3)]),
    (lambda x: np.tile(x, 3), [()]),
    (lambda x: np.roll(x, (1, -2), axis=(0, -1)), [(3, 4)]),
    (lambda x: np.roll(x, 5), [(2, 3)]),
    (lambda x: np.pad(x, ((1, 2), (0, 3)), constant_values=((1, 2), (3, 4))), [(2, 3)]),
    (lambda x: np.pad(x, 2), [(3,)]),
    (lambda x: np.pad(x, 1, mode="edge"), [(2, 3)]),
    (lambda x: np.pad(x, 5, mode="reflect"), [(2, 3)]),
    (lambda x: np.pad(x, (3, 1), mode="symmetric"), [(2, 3)]),
    (lambda x: np.pad(x, (2, 7), mode="wrap"), [(2, 3)]),
    (lambda x: np.take(x, [[0, 2], [1, 1]]), [(3, 2)]),
    (lambda x: np.take(x, 1, axis=-1), [(3, 2)]),
    (lambda x: np.take(x, [5, -7], axis=0, mode="wrap"), [(3, 2)]),
    (lambda x: np.compress([True, False, True], x, axis=1), [(2, 3)]),
    (lambda x: np.compress([False, True], x, axis=-2), [(2, 3)]),
    (lambda x: np.extract(np.arange(6).reshape(2, 3) % 2 == 0, x), [(2, 3)]),
    (lambda x: np.resize(x, (3, 5)), [(2, 3)]),
    (lambda x: np.delete(x, [0, 2], axis=-1), [(2, 4)]),
    (lambda x: np.diag(x, 1), [(3,)]),
    (lambda x: np.diag(x, -1), [(3, 4)]),
    (lambda x: np.diagflat(x, -2), [(2, 2)]),
    (lambda x: np.diagonal(x, 1, axis1=-1, axis2=0), [(3, 2, 4)]),
    (lambda x: np.trace(x), [(3, 3)]),
    (lambda x: np.trace(x, -1, axis1=2, axis2=0), [(3, 2, 4)]),
    (lambda x: np.tril(x, 1) + 2.0 * np.triu(x, -1), [(3, 4)]),
    (lambda x: np.tril(x), [(2, 3, 3)]),
    (lambda x: np.triu(x, 1), [(3,)]),
]
VIEWS = [
    (lambda x: np.split(x, 3, axis=1), [(2, 6)]),
    (lambda x: np.split(x, [1, 4], axis=-1), [(2, 6)]),
    (lambda x: np.array_split(x, 4, axis=-1), [(2, 6)]),
    (lambda x: np.array_split(x, 3), [(7,)]),
    (lambda x: np.hsplit(x, [1, 4]), [(2, 6)]),
    (lambda x: np.hsplit(x, 2), [(4,)]),
    (lambda x: np.vsplit(x, 2), [(4, 3)]),
    (lambda x: np.dsplit(x, [1]), [(2, 2, 3)]),
    (lambda x: np.unstack(x, axis=-1), [(2, 3)]),
    (lambda x: np.moveaxis(x, 0, -1), [(2, 3, 4)]),
    (lambda x: np.moveaxis(x, (0, -1), (-1, 1)), [(2, 3, 4)]),
    (lambda x: np.swapaxes(x, 0, -1), [(2, 3, 4)]),
    (lambda x: np.rollaxis(x, 2, 1), [(2, 3, 4)]),
    (lambda x: np.rollaxis(x, -3), [(2, 3, 4)]),
    (lambda x: np.matrix_transpose(x), [(2, 3, 4)]),
    (lambda x: np.flipud(x) * np.fliplr(x), [(3, 3)]),
    (lambda x: np.flipud(x), [(4,)]),
    (lambda x: np.rot90(x), [(2, 3)]),
    (lambda x: np.rot90(x, 2), [(2, 3)]),
    (lambda x: np.rot90(x, -1, axes=(2, 0)), [(2, 3, 4)]),
    (lambda x: np.rot90(x, 3, axes=(1, 2)), [(2, 3, 4)]),
]
JOINING = [
    (lambda x, y: np.column_stack([x, y, [1.0, 2.0, 3.0]]), [(3, 2), (3,)]),
    (lambda x: np.column_stack([x, 2.0 * x]), [(3,)]),
    (lambda x, y: np.dstack([x, y]), [(3, 2), (3, 2)]),
    (lambda x: np.dstack([x, 1.0 + x]), [(3,)]),
    (lambda x, y: np.append(x, y), [(3, 2), (2,)]),
    (lambda x: np.append(x, [[1.0, 2.0]], axis=0), [(3, 2)]),
    (lambda x, y: np.append(x, y, axis=-1), [(3, 2), (3, 1)]),
    (lambda x: np.append([1.0, 2.0], x), [(2, 2)]),
    (lambda x: np.row_stack([x, x]), [(3,)]),
    (lambda x: np.column_stack(x) + np.dstack(x)[0], [(3, 3)]),
    (lambda x, y: np.broadcast_arrays(x, y, 1.0), [(3, 1), (2,)]),
    (lambda x: np.broadcast_to(x, (2, 4, 3)), [(3,)]),
    (lambda x, y: np.meshgrid(x, y), [(3,), (2,)]),
    (lambda x, y: np.meshgrid(x, y, indexing="ij", sparse=True), [(3,), (2, 2)]),
    (lambda x, y, z: np.meshgrid(x, y, z), [(3,), (2,), (4,)]),
    (lambda x, y: np.linspace(x, y, 5), [(), ()]),
    (lambda x, y: np.linspace(x, y, 4, endpoint=False), [(), ()]),
    (lambda x, y: np.linspace(x, y, 4, axis=-1), [(2,), (3, 1)]),
    (lambda x, y: np.linspace(x, y, 3, axis=1, retstep=True), [(2,), (2,)]),
    (lambda x: np.linspace(0.0, x, 1), [()]),
    (lambda x: np.linspace(x, 2.0, 6), [(2,)]),
    (lambda x: np.insert(x, 1, [10.0, 20.0], axis=-1), [(2, 3)]),
    (lambda x: np.insert(x, [0, 2, 2], x[0]), [(2, 3)]),
    (lambda x, y: np.insert(x, slice(0, 2), y, axis=0), [(3, 2), (2,)]),
    (lambda x: np.block([[x, np.ones((2, 1))], [np.zeros(3)]]), [(2, 2)]),
    (lambda x, y: np.block([x, 2.0, y]), [(2,), (3,)]),
]
SORTING = [
    (lambda x: np.sort(x), [(5,)]),
    (lambda x: np.sort(x, axis=0), [(5, 3)]),
    (lambda x: np.sort(x, axis=None), [(2, 3)]),
    (lambda x: np.sort(x, axis=-2, kind="stable"), [(2, 4, 3)]),
    (lambda x: np.partition(x, 2, axis=0), [(5, 3)]),
    (lambda x: np.take_along_axis(x, np.argsort(x, axis=1)[:, ::-1], axis=1), [(4, 3)]),
    (lambda x: np.take_along_axis(x, np.argsort(x)[..., :2], axis=-1), [(3, 4)]),
    (lambda x, y: np.take_along_axis(y, np.argsort(x), axis=-1), [(4,), (4,)]),
    (lambda x: np.take_along_axis(x, np.argmax(x, axis=-1, keepdims=True), axis=-1), [(3, 4)]),
    (lambda x: x[0] * np.argmin(x, axis=0) + np.argmax(x), [(3, 4)]),
    (lambda x: x * np.argsort(x, axis=0), [(4, 2)]),
    (lambda x: np.take_along_axis(x, np.array([[0, 2], [1, 1]]), axis=1), [(2, 3)]),
]
CASES = REARRANGING + VIEWS + JOINING + SORTING


@pytest.mark.parametrize("k", range(len(CASES)))
def test_values_are_numpys(k):
    fn, shapes = CASES[k]
    agrees(fn, *shapes)


@pytest.mark.parametrize("k", range(len(CASES)))
def test_gradients_against_central_differences(k):
    fn, shapes = CASES[k]
    gradient_is_right(fn, *shapes)


@pytest.mark.parametrize("k", range(len(CASES)))
def test_the_array_api_path_gives_numpys_values(k):
    fn, shapes = CASES[k]
    xs = _points(shapes, 3)
    scalar = _objective(fn, xs)
    for c in (_trace(fn, shapes), cg.grad(_trace(scalar, shapes))):
        f = cg.to_numpy(c)
        got = _outputs(f(*[xps.asarray(x) for x in xs]))
        want = _outputs(f(*xs))
        for g, w in zip(got, want):
            np.testing.assert_allclose(np.asarray(g._array if hasattr(g, "_array") else g), w,
                                       rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("k", range(len(REARRANGING + VIEWS + JOINING)))
def test_to_tape_expands_the_rearrangements(k):
    fn, shapes = (REARRANGING + VIEWS + JOINING)[k]
    xs = _points(shapes, 4)
    c = cg.grad(_trace(_objective(fn, xs), shapes))
    for got, want in zip(_outputs(cg.to_tape(c)(*xs)), _outputs(cg.to_numpy(c)(*xs))):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k", range(len(SORTING) - 1))
def test_to_tape_and_to_c_refuse_sorting_by_name(k):
    fn, shapes = SORTING[k]
    c = _trace(fn, shapes)
    for lower in (cg.to_tape, cg.to_c, cg.scalarize):
        with pytest.raises(cg.CircuitError, match="argsort: a permutation that depends on "):
            lower(c)


# -- random shapes and arguments ---------------------------------------------------------------

SHAPES = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


def _axis(data, shape):
    return data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")


@settings(max_examples=25, deadline=None)
@given(shape=SHAPES, data=st.data())
def test_random_repeat_tile_roll(shape, data):
    axis = _axis(data, shape)
    reps = data.draw(st.lists(st.integers(0, 3), min_size=shape[axis], max_size=shape[axis]))
    if sum(reps):
        agrees(lambda x: np.repeat(x, reps, axis=axis), shape)
    tiles = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=4).map(tuple))
    agrees(lambda x: np.tile(x, tiles), shape)
    shift = data.draw(st.integers(-7, 7))
    agrees(lambda x: np.roll(x, shift, axis=axis), shape)
    agrees(lambda x: np.roll(x, shift), shape)


@settings(max_examples=25, deadline=None)
@given(shape=SHAPES, data=st.data())
def test_random_pad(shape, data):
    mode = data.draw(st.sampled_from(["constant", "edge", "reflect", "symmetric", "wrap"]))
    widths = tuple(data.draw(st.tuples(st.integers(0, 5), st.integers(0, 5))) for _ in shape)
    if mode == "reflect" and any(n == 1 for n, w in zip(shape, widths) if any(w)):
        return  # NumPy's reflect of one entry is that entry, tested with the others
    kwargs = {"constant_values": data.draw(st.floats(-3, 3))} if mode == "constant" else {}
    agrees(lambda x: np.pad(x, widths, mode=mode, **kwargs), shape)


@settings(max_examples=25, deadline=None)
@given(shape=SHAPES, data=st.data())
def test_random_sort_and_axes(shape, data):
    axis = _axis(data, shape)
    ties = data.draw(st.booleans())
    fn_sort = (lambda x: np.sort(np.round(x) if ties else x, axis=axis))
    agrees(fn_sort, shape)
    kth = data.draw(st.integers(-shape[axis], shape[axis] - 1))
    xs = _points([shape], 5)
    got = cg.to_numpy(_trace(lambda x: np.partition(x, kth, axis=axis), [shape]))(*xs)
    want = np.partition(xs[0], kth, axis=axis)
    # NumPy defines the kth entry and which side the others are on: a sorted lane is one
    np.testing.assert_array_equal(np.take(got, [kth], axis=axis), np.take(want, [kth], axis=axis))
    np.testing.assert_array_equal(np.sort(got, axis=axis), np.sort(want, axis=axis))
    dest = _axis(data, shape)
    agrees(lambda x: np.moveaxis(x, axis, dest), shape)
    agrees(lambda x: np.swapaxes(x, axis, dest), shape)
    if len(shape) >= 2:
        other = (axis + 1) % len(shape)
        k, offset = data.draw(st.integers(-5, 5)), data.draw(st.integers(-2, 2))
        agrees(lambda x: np.rot90(x, k, axes=(axis, other)), shape)
        agrees(lambda x: np.diagonal(x, offset, axis, other), shape)


@settings(max_examples=20, deadline=None)
@given(shape=SHAPES, data=st.data())
def test_random_splits(shape, data):
    axis = _axis(data, shape)
    cuts = sorted(data.draw(st.lists(st.integers(0, shape[axis] + 1), max_size=3)))
    agrees(lambda x: np.split(x, cuts, axis=axis), shape)
    sections = data.draw(st.integers(1, 5))
    agrees(lambda x: np.array_split(x, sections, axis=axis), shape)


@pytest.mark.parametrize("library", ["torch", "dask.array"])
def test_sorting_on_other_array_libraries(library):
    lib = pytest.importorskip(library)
    to = lib.asarray if library == "torch" else (lambda v: lib.from_array(v, chunks=(2, 3, 4)))

    def f(x):
        top = np.take_along_axis(x, np.argmax(x, axis=0, keepdims=True), axis=0)
        return np.sum(np.sort(x, axis=-1)[..., ::-1] * np.arange(4.0)) + np.sum(top ** 2)

    g = cg.to_numpy(cg.grad(cg.trace(f, shapes={"x": (3, 4)})))
    x = np.random.default_rng(0).normal(size=(5, 3, 4))
    got = g(to(x))
    for a, b in zip(got, g(x)):
        a = a.numpy() if library == "torch" else np.asarray(a.compute())
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 3), max_size=2).map(tuple), data=st.data())
def test_random_linspace(shape, data):
    num = data.draw(st.integers(0, 7))
    endpoint = data.draw(st.booleans())
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    scale = data.draw(st.sampled_from([1.0, 1e-310, 5e-324, 1e300]))
    f = cg.to_numpy(cg.trace(lambda a, b: np.linspace(a, b, num, endpoint=endpoint, axis=axis,
                                                      retstep=True), shapes={"a": shape, "b": ()}))
    a, b = _points([shape, ()], data.draw(st.integers(0, 9)))
    a, b = a * scale, b * scale
    got, want = f(a, b), np.linspace(a, b, num, endpoint=endpoint, axis=axis, retstep=True)
    _same(got[0], want[0])
    _same(got[1], want[1])


def test_sort_gradient_follows_the_permutation():
    x = np.array([3.0, 1.0, 2.0, 1.0])
    w = np.array([1.0, 10.0, 100.0, 1000.0])
    g = cg.grad(lambda v: np.sum(np.sort(v) * w))(x)
    # sorted: x[1], x[3] (the tie in its stable order), x[2], x[0]
    assert g.tolist() == [1000.0, 1.0, 100.0, 10.0]
    h = cg.hessian(lambda v: np.sum(np.sort(v) ** 3 * w))(x)
    np.testing.assert_allclose(h, np.diag(6.0 * x * np.array([1000.0, 1.0, 100.0, 10.0])))


def test_argsort_is_the_stable_order_as_float64_and_has_no_gradient():
    x = np.array([[2.0, -0.0, 0.0, np.nan, -1.0]])
    f = cg.to_numpy(cg.trace(lambda v: np.argsort(v), shapes={"v": x.shape}))
    got = f(x)
    assert got.dtype == np.float64
    assert got.tolist() == np.argsort(x, kind="stable").tolist() == [[4.0, 1.0, 2.0, 0.0, 3.0]]
    g = cg.grad(lambda v: np.sum(np.argsort(v) * v))(x[0, [0, 4]])
    assert g.tolist() == [1.0, 0.0]  # argsort's entries are constants to the derivative


def test_argmax_and_argmin_are_numpys_at_ties_nan_and_inf():
    x = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 2.0, -1.0, -1.0],
                  [np.inf, -np.inf, np.inf, 1.0], [-0.0, 0.0, 0.0, -0.0]])
    for name in ("argmax", "argmin"):
        fn = getattr(np, name)
        for kwargs in ({}, {"axis": 0}, {"axis": -1, "keepdims": True}, {"keepdims": True}):
            c = cg.trace(lambda v: fn(v, **kwargs), shapes={"v": x.shape})
            _same(cg.to_numpy(c)(x), fn(x, **kwargs))
            _same(cg.to_numpy(c)(x[::-1]), fn(x[::-1], **kwargs))


def test_writes_through_views_reach_the_base():
    def f(x):
        left, right = np.split(x, 2)
        left[0] = 10.0
        moved = np.moveaxis(x.reshape(2, 2), 0, 1)
        moved[1, 0] = 20.0  # x[1]
        return x + right.sum()

    c = cg.trace(f, shapes={"x": 4})
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert cg.to_numpy(c)(x).tolist() == [17.0, 27.0, 10.0, 11.0]


def test_linspace_takes_numpys_denormal_branch():
    # NumPy multiplies by the step, or (a step of 0 anywhere) divides first: both traced
    start, stop = np.array([0.0, 0.0]), np.array([5e-324, 3.0])
    f = cg.to_numpy(cg.trace(lambda a, b: np.linspace(a, b, 7), shapes={"a": 2, "b": 2}))
    _same(f(start, stop), np.linspace(start, stop, 7))
    _same(f(np.zeros(2), np.array([1.0, 3.0])), np.linspace(np.zeros(2), [1.0, 3.0], 7))


def test_cnp_r_and_c_with_traced_values():
    f = cg.to_numpy(cg.trace(lambda x: cnp.c_[x, 2.0 * x] + cnp.r_[x, 1.0][:3, None],
                             shapes={"x": 3}))
    x = np.array([1.0, 2.0, 3.0])
    _same(f(x), np.c_[x, 2.0 * x] + np.r_[x, 1.0][:3, None])


@pytest.mark.parametrize("fn, message", [
    (lambda x: np.repeat(x, [1, 2], axis=0), r"numpy\.repeat: .*"),
    (lambda x: np.repeat(x, x), r"numpy\.repeat: repeats must be a constant"),
    (lambda x: np.tile(x, x), r"numpy\.tile: reps must be a constant"),
    (lambda x: np.roll(x, 1, axis=2), r"numpy\.roll: axis 2 is out of bounds"),
    (lambda x: np.pad(x, 1, mode="mean"), r"numpy\.pad: mode='mean' cannot be traced"),
    (lambda x: np.pad(x, 1, mode="reflect", reflect_type="odd"), r"numpy\.pad: reflect_type"),
    (lambda x: np.pad(x, 1, constant_values=x[0]), r"numpy\.pad: constant_values must be a"),
    (lambda x: np.pad(x, -1), r"numpy\.pad: .*negative"),
    (lambda x: np.split(x, 2), r"numpy\.split: array split does not result in an equal"),
    (lambda x: np.vsplit(x, 3), r"numpy\.vsplit: vsplit only works on arrays of 2"),
    (lambda x: np.moveaxis(x, 0, 3), r"numpy\.moveaxis: .*destination.*out of bounds"),
    (lambda x: np.swapaxes(x, 0, -4), r"numpy\.swapaxes: .*out of bounds"),
    (lambda x: np.rot90(x, axes=(0, 0)), r"numpy\.rot90: Axes must be different"),
    (lambda x: np.fliplr(x), r"numpy\.fliplr: Input must be >= 2-d"),
    (lambda x: np.diag(x.reshape(1, 1, 3)), r"numpy\.diag: Input must be 1- or 2-d"),
    (lambda x: np.trace(x), r"numpy\.trace: .*"),
    (lambda x: np.sort(x, axis=1), r"numpy\.sort: axis 1 is out of bounds"),
    (lambda x: np.sort(x, order="a"), r"numpy\.sort: the argument order= cannot be traced"),
    (lambda x: np.partition(x, 3), r"numpy\.partition: kth\(=3\) out of bounds"),
    (lambda x: np.take_along_axis(x, np.argsort(x) / 2, axis=0),
     r"numpy\.take_along_axis: traced indices must come from np\.argsort"),
    (lambda x: np.take_along_axis(x[:2], np.argsort(x), axis=0),
     r"numpy\.take_along_axis: indices up to 2 are out of range for axis 0 of length 2"),
    (lambda x: np.take(x, np.argsort(x)), r"numpy\.take: indices must be a constant"),
    (lambda x: np.compress(x > 0, x), r"numpy\.compress: condition .* must be a constant"),
    (lambda x: np.linspace(x, 1.0, -1), r"numpy\.linspace: Number of samples, -1, must be"),
    (lambda x: np.linspace(x, 1.0, 3, dtype=int), r"numpy\.linspace: dtype=<class 'int'>"),
    (lambda x: np.broadcast_to(x, (2,)), r"numpy\.broadcast_to: .*broadcast"),
    (lambda x: np.meshgrid(x, indexing="yx"), r"numpy\.meshgrid: only indexing="),
    (lambda x: np.argmax(x, axis=1), r"numpy\.argmax: axis 1 is out of bounds"),
    (lambda x: np.insert(x, 7, 1.0), r"numpy\.insert: index 7 is out of bounds"),
    (lambda x: np.insert(x, x[0], 1.0), r"numpy\.insert: obj \(where the values go\) must be"),
])
def test_bad_arguments_are_errors_naming_the_numpy_function(fn, message):
    with pytest.raises(cg.CircuitError, match=message) as info:
        cg.trace(fn, shapes={"x": 3})
    assert "test_numpy_shapes.py" in str(info.value)  # the user's line


def test_the_ndarray_methods_of_these_functions_trace():
    x = np.array([[3.0, 1.0, 2.0], [0.5, -1.0, 4.0], [2.0, 2.0, -3.0]])
    methods = {
        "argsort": lambda v: v.argsort(axis=0) * 1.0,
        "argmin": lambda v: v.argmin(axis=1) * 1.0,
        "repeat": lambda v: v.repeat(2, axis=1),
        "diagonal": lambda v: v.diagonal(1),
        "trace": lambda v: v.trace(),
        "take": lambda v: v.take([0, 2, 2], axis=1),
        "compress": lambda v: v.compress([True, False, True], axis=0),
    }
    for name, f in methods.items():
        c = cg.trace(f, shapes={"v": (3, 3)})
        np.testing.assert_array_equal(cg.to_numpy(c)(x), f(x.copy()), err_msg=name)

    def sorted_in_place(v):
        row = v[0]      # a view: sees the sort, as in NumPy
        v.sort(axis=1)
        return row * 10.0 + v

    c = cg.trace(sorted_in_place, shapes={"v": (3, 3)})
    np.testing.assert_array_equal(cg.to_numpy(c)(x), sorted_in_place(x.copy()))


def test_joining_functions_take_one_array_as_the_sequence_of_its_rows():
    x = np.arange(12.0).reshape(3, 4)
    for f in (np.vstack, np.hstack, np.concatenate, np.stack, np.column_stack, np.dstack,
              lambda v: np.stack(v, axis=1)):
        c = cg.trace(lambda v: f(v), shapes={"v": (3, 4)})
        np.testing.assert_array_equal(cg.to_numpy(c)(x), f(x))
    with pytest.raises(cg.CircuitError, match="cannot be iterated"):
        cg.trace(lambda v: np.vstack(v), shapes={"v": ()})
