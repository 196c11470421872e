"""The one-point call of ``to_c`` and ``to_tape`` (issue 29): numbers in, numbers out through
the extension, by position or keyword, the same bits as the general path, and everything the
binder refuses still refused by name."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from test_batch import same_bits

import circuitgrad as cg
from circuitgrad.errors import InputError, InputRangeError, ShapeError
from circuitgrad.lower.program import EXTENSION

LOWER = [cg.to_tape, cg.to_c, lambda c: cg.to_c(c, vectors=False)]
IDS = ["tape", "c", "c-plain"]


@pytest.fixture(autouse=True, scope="module")
def compile_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("CIRCUITGRAD_CACHE", str(tmp_path_factory.mktemp("cg_cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def gradient():
    return cg.grad(cg.parse("J = w*tanh(x) + log(b) / x + exp(-w*b)"))


def general(f, *args, **kwargs):
    """The same call through the general binder (the fast path switched off)."""
    f._point_ready = False
    try:
        return f(*args, **kwargs)
    finally:
        f._point_ready = True


@pytest.mark.parametrize("lower", LOWER, ids=IDS)
def test_the_fast_path_gives_the_general_paths_bits(lower, gradient):
    f = lower(gradient)
    assert f._point_ready
    rng = np.random.default_rng(0)
    for w, x, b in rng.uniform(0.2, 2.0, (20, 3)):
        want = general(f, w, x, b)
        batch = f(np.array([w]), np.array([x]), np.array([b]))
        for got in (f(w, x, b), f(np.float64(w), x, b), f(w=w, x=x, b=b), f(b=b, x=x, w=w)):
            assert type(got) is type(want) and got._fields == want._fields
            for a, c, p in zip(got, want, batch):
                assert type(a) is np.float64 and same_bits(a, c) and same_bits(a, p[0])


def test_outputs_made_by_the_extension_are_ordinary_float64_scalars(gradient):
    out = cg.to_tape(gradient)(1.5, 0.5, 2.0)
    v = out.dJ_dx
    assert type(v) is np.float64 and isinstance(v, float)
    assert float(v) == float(np.float64(float(v))) and v + 1.0 == float(v) + 1.0
    assert repr(v) == repr(np.float64(float(v))) and pickle.loads(pickle.dumps(v)) == v
    assert np.asarray(v).dtype == np.float64 and np.array([v, v]).dtype == np.float64


def test_a_scalar_type_without_floats_layout_is_called_as_before(gradient):
    # A float subclass with a __dict__ is not made by tp_alloc: the type is called.
    class Tagged(float):
        pass

    f = cg.to_c(gradient)
    out = EXTENSION.call_point(f._address, (1.5, 0.5, 2.0), 3, f._nout, Tagged,
                               f._Outputs)
    want = f(1.5, 0.5, 2.0)
    assert all(type(a) is Tagged and same_bits(np.float64(a), b) for a, b in zip(out, want))
    one = cg.to_c(cg.parse("J = sin(x)"))
    assert type(EXTENSION.call_point(one._address, (1.0,), 1, 1, Tagged, None)) is Tagged


@pytest.mark.parametrize("lower", LOWER, ids=IDS)
def test_too_few_or_too_many_numbers_are_refused_not_read_past(lower):
    # (to_c's extension call took the count from the arguments: f(1.0) of x + y read y from
    # past the end of its inputs and gave a number)
    f = lower(cg.parse("J = x + y"))
    with pytest.raises(TypeError, match="missing inputs \\['y'\\]"):
        f(1.0)
    with pytest.raises(TypeError, match="takes 2 inputs"):
        f(1.0, 2.0, 3.0)
    with pytest.raises(TypeError, match="missing inputs"):
        f()
    assert f(1.0, 2.0) == 3.0 and f(y=2.0, x=1.0) == 3.0


@pytest.mark.parametrize("lower", LOWER, ids=IDS)
def test_what_the_binder_refuses_is_still_refused_by_name(lower, gradient):
    f = lower(gradient)
    with pytest.raises(InputRangeError, match="input 'x'.*2\\*\\*53"):
        f(1.0, 2**53 + 1, 1.0)
    with pytest.raises(InputRangeError, match="input 'b'.*int64"):
        f(1.0, 1.0, np.int64(2**53 + 1))
    with pytest.raises(InputRangeError, match="input 'x'"):
        f(w=1.0, x=2**53 + 1, b=1.0)
    with pytest.raises(InputError, match="input 'w': complex"):
        f(1 + 2j, 1.0, 1.0)
    with pytest.raises(InputError, match="input 'w': complex128"):
        f(np.complex128(1.0), 1.0, 1.0)
    with pytest.raises(InputError, match="input 'x': float128|input 'x': longdouble"):
        f(1.0, np.longdouble(1.0), 1.0)
    with pytest.raises(TypeError, match="'b' is not a number"):
        f(b="1", x=1.0, w=1.0)
    with pytest.raises(TypeError, match="missing inputs \\['b'\\]"):
        f(w=1.0, x=1.0)
    with pytest.raises(TypeError, match="no input 'y'"):
        f(w=1.0, x=1.0, y=1.0)
    with pytest.raises(TypeError, match="'w' twice"):
        f(1.0, 1.0, w=1.0)
    with pytest.raises(TypeError, match="takes 3 inputs"):
        f(1.0, 1.0, 1.0, 1.0)
    # exact integers and other real types go the general way, with to_numpy's numbers
    ref = cg.to_numpy(gradient)
    for args in ((1, 2, 3), (np.float32(0.5), 2.0, np.int64(2**53)), (True, 1.5, 2.0)):
        for a, b in zip(f(*args), ref(*args)):
            assert abs(a - b) <= 1e-12 * max(1.0, abs(b))


@pytest.fixture(scope="module")
def tensor_gradient():
    g = cg.grad(cg.parse("J = (sum(100*(x[1:] - x[:-1]**2)**2 + (1 - x[:-1])**2) + "
                         "sum(m * m)) * s", shapes={"x": (6,), "m": (2, 3)}))
    assert g.inputs == ("x", "m", "s")
    return g


@pytest.mark.parametrize("lower", LOWER[:2], ids=IDS[:2])
def test_arrays_of_the_declared_shapes_give_the_general_paths_bits(lower, tensor_gradient):
    f = lower(tensor_gradient)
    rng = np.random.default_rng(1)
    x, m = rng.uniform(-1, 1, 6), rng.uniform(-1, 1, (2, 3))
    flat = np.empty(f._nin)
    assert EXTENSION.point_arguments((x, m, 1.5), f._shape_tuple, flat, np.ndarray, np.float64)
    np.testing.assert_array_equal(flat, np.concatenate([x, m.ravel(), [1.5]]))
    want = general(f, x, m, 1.5)
    wide = np.zeros(12)
    wide[::2] = x
    for args, kwargs in (((x, m, 1.5), {}), ((x, m, np.float64(1.5)), {}), ((x, m, 3 // 2 + 0.5),
                         {}), ((), {"s": 1.5, "m": m, "x": x}), ((wide[::2], m, 1.5), {}),
                         ((x.astype(">f8"), m, 1.5), {}), ((x, np.asfortranarray(m), 1.5), {})):
        got = f(*args, **kwargs)
        for a, b in zip(got, want):
            assert np.shape(a) == np.shape(b) and np.all(same_bits(a, b))
    out = f(x, m, 1.5)
    out.dJ_dx[:] = 0.0  # fresh arrays, not views of the inputs or of each other
    assert np.all(x != 0.0) and np.all(f(x, m, 1.5).dJ_dx == want.dJ_dx)


@pytest.mark.parametrize("lower", LOWER[:2], ids=IDS[:2])
def test_arrays_the_fast_path_does_not_take_are_still_checked_by_name(lower, tensor_gradient):
    f = lower(tensor_gradient)
    x, m = np.linspace(-1, 1, 6), np.ones((2, 3))
    flat = np.empty(f._nin)
    for args in ((x[:5], m, 1.5), (x, m.T, 1.5), (x.astype(np.float32), m, 1.5),
                 (x.astype(np.int64), m, 1.5), (x, m, np.array(1.5)), (x, m, "1.5"),
                 (x, m), (x, m, 1.5, 1.0), (x.reshape(1, 6), m, 1.5),
                 (memoryview(x), m, 1.5)):
        assert not EXTENSION.point_arguments(args, f._shape_tuple, flat, np.ndarray, np.float64)
    with pytest.raises(ShapeError, match="'x' has shape \\(6,\\)"):
        f(x[:5], m, 1.5)
    with pytest.raises(ShapeError, match="'m' has shape \\(2, 3\\)"):
        f(x, m.T, 1.5)
    with pytest.raises(InputRangeError, match="input 'x'.*int64"):
        f(np.array([2**53 + 1, 0, 0, 0, 0, 0]), m, 1.5)
    with pytest.raises(InputError, match="input 'm': complex128"):
        f(x, m.astype(complex), 1.5)
    with pytest.raises(InputError, match="input 'x'"):
        f(x.astype(np.longdouble), m, 1.5)
    with pytest.raises(TypeError, match="missing inputs \\['s'\\]"):
        f(x, m)
    batch = f(np.stack([x, x]), m, 1.5)  # a batch is not one point: the general path
    assert batch.dJ_dx.shape == (2, 6)
    assert np.all(same_bits(batch.dJ_dx[1], f(x, m, 1.5).dJ_dx))


@pytest.mark.parametrize("lower", LOWER[:2], ids=IDS[:2])
def test_the_one_point_paths_keep_their_arguments_reference_counts(lower, gradient,
                                                                    tensor_gradient):
    # Every path through the extension (taken, NotImplemented, refused by the binder) must
    # leave its arguments' reference counts as they were: a leak or a double DECREF in C
    # shows here after a thousand calls.
    import sys
    f, t = lower(gradient), lower(tensor_gradient)
    w, b, big, x64 = 1.25, 2.5, 2**53 + 1, np.float64(0.75)
    x, m = np.linspace(0.5, 1.5, 6), np.ones((2, 3))
    objects = (w, b, big, x64, x, m)
    before = [sys.getrefcount(o) for o in objects]
    for _ in range(1000):
        f(w, x64, b)
        f(w=w, x=x64, b=b)
        f(True, x64, b)
        t(x, m, b)
        t(x=x, m=m, s=w)
        t(x[::-1], m, b)
        with pytest.raises(InputRangeError):
            f(w, big, b)
        with pytest.raises(TypeError):
            f(w, x64)
    assert [sys.getrefcount(o) for o in objects] == before
