"""The one-point call of ``to_c`` and ``to_tape`` (issue 29): numbers in, numbers out through
the extension, by position or keyword, the same bits as the general path, and everything the
binder refuses still refused by name."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from test_batch import same_bits

import circuitgrad as cg
from circuitgrad.errors import InputError, InputRangeError
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
