"""Writes into traced values (frontends/writes.py): random write sequences, traced and run by
NumPy itself on the same code, agree bit for bit; their gradients agree with central
differences; what cannot be traced exactly is refused by name."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import circuitgrad as cg
from circuitgrad.errors import CircuitError, ShapeError

SHAPES = [(5,), (3, 4), (2, 3, 2)]


def _basic_index(r: random.Random, shape: tuple, ints: bool) -> tuple:
    items: list = []
    for n in shape:
        kind = r.randrange(4 if ints else 3)
        if kind == 0:
            items.append(slice(None))
        elif kind == 1:
            step = r.choice([1, 1, 2, -1, -2])
            a, b = sorted(r.randrange(-n, n + 1) for _ in range(2))
            items.append(slice(b, a, step) if step < 0 and r.random() < 0.7 else
                         slice(a if r.random() < 0.7 else None, b, step))
        elif kind == 2:
            items.append(slice(r.randrange(n), None, r.choice([1, 2])))
        else:
            items.append(r.randrange(-n, n))
    if items and r.random() < 0.3:
        items = [Ellipsis] + items[r.randrange(len(items)):]
    if r.random() < 0.15:
        items.insert(r.randrange(len(items) + 1), None)
    return tuple(items)


def _write_index(r: random.Random, shape: tuple) -> object:
    kind = r.randrange(5)
    if kind <= 1 or not shape:
        return _basic_index(r, shape, ints=True) if shape else Ellipsis
    if kind == 2:  # an integer array along one axis, repeats and negatives included
        axis = r.randrange(len(shape))
        picks = [r.randrange(-shape[axis], shape[axis]) for _ in range(r.randrange(1, 5))]
        return (slice(None),) * axis + (picks,)
    if kind == 3:  # a boolean mask of the whole shape
        return np.array([r.random() < 0.5 for _ in range(int(np.prod(shape)))]).reshape(shape)
    return Ellipsis


def _run(x, seed: int, steps: int, xp=np):
    """The same Python on NumPy arrays and on traced values: views, writes, augmented and
    in-place writes, np.copyto; returns every array it made, flattened and joined."""
    r = random.Random(seed)
    source = x.flatten()
    arrays = [x]
    for _ in range(steps):
        t = arrays[r.randrange(len(arrays))]
        kind = r.randrange(6)
        if kind == 0 and t.ndim:  # a view
            how = r.randrange(4)
            if how == 0 or t.ndim < 2 and how != 3:
                view = t[_basic_index(r, t.shape, ints=r.random() < 0.5)]
            elif how == 1:
                view = t.T
            elif how == 2:
                axes = list(range(t.ndim))
                r.shuffle(axes)
                view = t.transpose(axes)
            else:
                view = t.reshape(t.shape + (1,)) if t.ndim > 1 else t.reshape(-1, 1)
            if np.ndim(view) and np.size(view):
                arrays.append(view)
            continue
        index = _write_index(r, t.shape) if kind < 4 else Ellipsis
        place = np.empty(t.shape)[index].shape
        which = r.randrange(4)
        if which == 0:
            v = r.uniform(-2, 2)
        elif which == 1:
            v = np.round(np.random.default_rng(seed).uniform(-2, 2, place), 3)
        elif which == 2:
            v = np.cos(source[r.randrange(source.size)]) * np.full(place, r.uniform(0.5, 2))
        else:  # the current state of another array (a read of what earlier writes made)
            other = arrays[r.randrange(len(arrays))]
            v = np.sin(other.sum()) + np.zeros(place)
        op = r.randrange(5)
        if kind == 5:
            np.copyto(t, v)
        elif op == 0 or kind == 4 and op == 1:
            t[index] = v
        elif kind == 4:
            t += v if op == 2 else 0.5
            t *= 1.5 if op == 3 else 1.0
        elif op == 1:
            t[index] += v
        elif op == 2:
            t[index] -= v
        elif op == 3:
            t[index] *= v
        else:
            t[index] /= 1.5 + np.abs(v) if which else 2.0
    return np.concatenate([a.flatten() for a in arrays])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SHAPES), st.integers(0, 10**6), st.integers(1, 8))
def test_random_write_sequences_agree_with_numpy_bit_for_bit(shape, seed, steps):
    x = np.random.default_rng(seed).uniform(-2, 2, shape)
    want = _run(x.copy(), seed, steps)
    c = cg.trace(lambda x: _run(x, seed, steps), shapes={"x": shape})
    got = cg.to_numpy(c)(x)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SHAPES), st.integers(0, 10**6), st.integers(1, 6))
def test_the_gradient_of_a_write_sequence_is_the_central_differences(shape, seed, steps):
    x = np.random.default_rng(seed).uniform(-2, 2, shape)
    w = np.random.default_rng(seed + 1).normal(size=_run(x.copy(), seed, steps).shape)
    c = cg.trace(lambda x: w @ _run(x, seed, steps), shapes={"x": shape})
    g = cg.to_numpy(cg.grad(c))(x)[1]
    d = np.random.default_rng(seed + 2).normal(size=shape)
    eps = 1e-6
    fd = (w @ _run(x + eps * d, seed, steps) - w @ _run(x - eps * d, seed, steps)) / (2 * eps)
    assert abs(np.sum(g * d) - fd) <= 1e-5 * (1 + abs(fd))


def test_the_issues_examples():
    def shifted(x):
        out = np.zeros_like(x)
        out[1:] = x[:-1] ** 2
        return out

    def accumulate(x):
        g = np.zeros_like(x)
        for i in range(len(x) - 1):
            g[i] += x[i] * x[i + 1]
            g[i + 1] -= x[i]
        return g

    x = np.array([1.0, -2.0, 3.0, 0.5])
    for f in (shifted, accumulate):
        c = cg.trace(f, shapes={"x": (4,)})
        np.testing.assert_array_equal(cg.to_numpy(c)(x), f(x.copy()))
        np.testing.assert_array_equal(cg.to_tape(c)(x), f(x.copy()))


def test_a_write_is_one_node_and_its_adjoint_a_few():
    def f(x):
        out = np.zeros_like(x)
        for i in range(len(x)):
            out[i] = x[i] * x[i]
        return out.sum()

    small = cg.trace(f, shapes={"x": (10,)})
    large = cg.trace(f, shapes={"x": (40,)})
    assert [small.op(i) for i in range(len(small))].count("setitem") == 10
    g_small, g_large = cg.grad(small), cg.grad(large)
    # O(1) nodes per write: the gradient grows linearly with the number of writes
    per_write = (g_large.size - g_small.size) / 30
    assert per_write <= 12, per_write
    x = np.linspace(-1, 1, 40)
    np.testing.assert_allclose(cg.to_numpy(g_large)(x)[1], 2 * x, rtol=1e-15)


def test_a_batch_of_points_is_each_point():
    def f(x, y):
        out = np.zeros((2, 3))
        out = out + 0.0 * x[0]  # a traced array
        out[0] = x
        out[1, ::2] = y
        out[:, 1] *= y
        return out

    c = cg.trace(f, shapes={"x": (3,), "y": ()})
    xs, ys = np.random.default_rng(0).normal(size=(5, 3)), np.arange(5.0)
    got = cg.to_numpy(c)(xs, ys)
    for k in range(5):
        np.testing.assert_array_equal(got[k], cg.to_numpy(c)(xs[k], ys[k]))


def test_the_other_lowerings_and_second_order():
    def f(x):
        y = x.copy()
        y[[0, 2, 0]] = x[1:] * x[:-1]
        y[y.shape[0] - 1] += np.sin(x[0])
        return (y ** 2).sum()

    c = cg.trace(f, shapes={"x": (4,)})
    x = np.array([0.3, -1.2, 2.0, 0.7])
    want = cg.to_numpy(c)(x)
    assert want == f(x.copy())
    for lower in (cg.to_tape, cg.to_c):
        np.testing.assert_allclose(lower(c)(x), want, rtol=1e-14)
    h = cg.to_numpy(cg.hessian(c))(x)[-1]
    eps = 1e-5
    g = cg.to_numpy(cg.grad(c))
    fd = np.array([(g(x + eps * e)[1] - g(x - eps * e)[1]) / (2 * eps) for e in np.eye(4)])
    np.testing.assert_allclose(h, fd, atol=1e-6)
    assert cg.jacobian_sparsity(c).shape == (1, 4)


def test_aliasing_that_numpy_resolves_by_memory_layout_is_refused():
    def through_reshape(x):
        m = x.reshape(2, 2)
        y = m.reshape(-1)
        y[0] = 1.0
        return m

    def base_with_a_live_reshape(x):
        m = x.reshape(2, 2)
        r = m.ravel()
        m[0, 0] = 5.0
        return r

    for f in (through_reshape, base_with_a_live_reshape):
        with pytest.raises(CircuitError, match="reshape") as e:
            cg.trace(f, shapes={"x": (4,)})
        assert "test_writes.py" in str(e.value)


def test_what_a_write_refuses():
    with pytest.raises(CircuitError, match="traced index"):
        cg.trace(lambda x, i: x.__setitem__(i, 1.0), shapes={"x": (3,)})

    def masked(x):
        x[x > 0] = 0.0
        return x

    with pytest.raises(CircuitError, match="np.where"):
        cg.trace(masked, shapes={"x": (3,)})

    def wrong_shape(x):
        x[1:] = np.ones(3)
        return x

    with pytest.raises(ShapeError, match="cannot be written"):
        cg.trace(wrong_shape, shapes={"x": (3,)})

    def out_of_range(x):
        x[5] = 1.0
        return x

    with pytest.raises(ShapeError, match="out of bounds"):
        cg.trace(out_of_range, shapes={"x": (3,)})


def test_copies_are_not_views():
    def f(x):
        a, b, c, d = x.copy(), +x, x.flatten(), x.astype(np.float64)
        for v in (a, b, c, d):
            v[0] = 9.0
        y = x.real
        y[1] = 7.0
        return np.concatenate([x, a, b, c, d])

    x = np.array([1.0, 2.0, 3.0])
    c = cg.trace(f, shapes={"x": (3,)})
    np.testing.assert_array_equal(cg.to_numpy(c)(x), f(x.copy()))


def test_a_traced_number_rebinds_as_pythons_numbers_do():
    def f(x, s):
        t = s
        s += 1.0
        x[0] += s
        return x, t, s

    got = cg.to_numpy(cg.trace(f, shapes={"x": (2,)}))(np.array([1.0, 2.0]), 3.0)
    assert got[0].tolist() == [5.0, 2.0] and float(got[1]) == 3.0 and float(got[2]) == 4.0


def test_a_write_into_an_array_numpy_keeps_in_fortran_order():
    # x.T * 1.0 is Fortran-ordered in NumPy; a write must land in it, not in a reshaped copy
    # (it once did: setitem wrote into flat = out.reshape(-1), a copy for such an `out`).
    def f(x):
        y = x.T * 1.0
        y[0] = 5.0
        y[1, ::2] += x[0, 0]
        return y

    c = cg.trace(f, shapes={"x": (3, 4)})
    x = np.arange(12.0).reshape(3, 4)
    want = f(x.copy())
    for arg in (x, np.asfortranarray(x)):
        np.testing.assert_array_equal(cg.to_numpy(c)(arg), want)
        np.testing.assert_array_equal(cg.to_numpy(c)(np.stack([arg, arg])), [want, want])
    g = cg.to_numpy(cg.grad(cg.trace(lambda x: (f(x) ** 2).sum(), shapes={"x": (3, 4)})))(x)
    y = f(x.copy())
    want_g = 2 * y.T                            # y = x.T where not written over ...
    want_g[:, 0] = 0.0                          # ... y[0] = 5 overwrote x[:, 0]
    want_g[0, 0] = 2 * (y[1, 0] + y[1, 2])      # x[0, 0] was added to y[1, 0] and y[1, 2]
    np.testing.assert_array_equal(g[1], want_g)


def test_copyto_where_writes_only_the_masked_entries():
    mask = np.array([True, False, True])

    def f(x):
        y = np.zeros_like(x)
        np.copyto(y, x * 2, where=mask)        # a NumPy mask
        np.copyto(y, 7.0, where=x > 0.5)       # a traced mask
        return y

    c = cg.trace(f, shapes={"x": (3,)})
    x = np.array([0.1, 0.9, 0.7])
    np.testing.assert_array_equal(cg.to_numpy(c)(x), f(x.copy()))
    g = cg.to_numpy(cg.grad(cg.trace(lambda x: f(x).sum(), shapes={"x": (3,)})))(x)[1]
    np.testing.assert_array_equal(g, [2.0, 0.0, 0.0])


def test_copyto_checks_casting_and_shapes_as_numpy():
    # casting= was bound and never looked at: np.copyto(y, ints, casting="no") is NumPy's
    # TypeError, and a casting NumPy does not know is its ValueError; now both are refused.
    def copy(casting, src=np.arange(3)):
        def f(x):
            y = np.zeros_like(x)
            np.copyto(y, src, casting=casting)
            return y * x
        return f

    x = np.array([0.1, 0.9, 0.7])
    c = cg.trace(copy("same_kind"), shapes={"x": (3,)})
    np.testing.assert_array_equal(cg.to_numpy(c)(x), copy("same_kind")(x.copy()))
    for casting in ("no", "bogus"):
        with pytest.raises(ShapeError, match="numpy.copyto"):
            cg.trace(copy(casting), shapes={"x": (3,)})
    with pytest.raises(ShapeError, match="numpy.copyto"):
        cg.trace(copy("same_kind", np.arange(2.0)), shapes={"x": (3,)})
    cg.trace(copy("no", np.arange(3.0)), shapes={"x": (3,)})  # float64 into float64

def test_a_run_of_writes_into_one_array_writes_in_place():
    # Each write's array is read by nothing but the next write: the generated code writes
    # into it (runtime.setitem_into) instead of copying it at every write, as NumPy would.
    def loop(x):
        out = np.zeros_like(x)
        for i in range(len(x)):
            out[i] = x[i] * x[i]
        return out

    c = cg.trace(loop, shapes={"x": (50,)})
    source = cg.to_numpy(c).source
    assert source.count("_cg.setitem_into(") == 49 and source.count("_cg.setitem(") == 1
    x = np.random.default_rng(0).normal(size=(3, 50))
    f = cg.to_numpy(c)
    np.testing.assert_array_equal(f(x), [loop(r.copy()) for r in x])
    np.testing.assert_array_equal(f(x[1]), loop(x[1].copy()))

    def kept(x):  # a value read twice, or an output, is never overwritten
        out = np.zeros_like(x)
        out[0] = x[0]
        before = out * 1.0
        out[1] = x[1]
        return out + before, before

    c = cg.trace(kept, shapes={"x": (3,)})
    assert "setitem_into" not in cg.to_numpy(c).source
    v = np.array([1.0, 2.0, 3.0])
    for got, want in zip(cg.to_numpy(c)(v), kept(v.copy())):
        np.testing.assert_array_equal(got, want)
    g = cg.grad(cg.trace(lambda x: np.sum(loop(x) ** 2), shapes={"x": (50,)}))
    np.testing.assert_allclose(cg.to_numpy(g)(x[0])[1], 4 * x[0] ** 3, rtol=1e-14)
