"""Inputs are checked at the call, the same way in every lowering (lower/calling.py).

Every lowering (to_numpy compiled and interpreted, to_tape, to_c) and the array-API path
(torch, JAX where installed) refuses each bad kind of input with a CircuitError naming the
input, and never a cast that drops information; the good kinds give to_numpy's values."""

from __future__ import annotations

import numpy as np
import pytest

import circuitgrad as cg
from circuitgrad.lower.calling import InputError, InputRangeError

LOWERINGS = {
    "numpy": cg.to_numpy,
    "numpy-interpret": lambda c: cg.to_numpy(c, mode="interpret"),
    "tape": cg.to_tape,
    "c": cg.to_c,
}

BAD = {
    "None": (None, "None"),
    "str": ("1.5", "str"),
    "bytes": (b"1.5", "bytes"),
    "complex": (1 + 2j, "complex values are not supported"),
    "numpy complex": (np.complex128(1 + 2j), "complex128 values are not supported"),
    "complex array": (np.array([1 + 2j, 3 - 1j]), "complex128 arrays are not supported"),
    "string array": (np.array(["1.5"]), "strings are not numbers"),
    "bytes array": (np.array([b"1.5"]), "bytes are not numbers"),
    "object array": (np.array([1.0, None], dtype=object), "object arrays"),
    "list with None": ([1.0, None], "object"),
    "list with a string": ([1.0, "a"], "strings are not numbers"),
    "huge int": (10**400, "beyond float64's range"),
    # integers that would round on their way to float64: a different number, so refused
    "inexact int": (2**53 + 1, "is not a float64"),
    "inexact negative int": (-(2**53) - 1, "is not a float64"),
    "inexact int64 array": (np.array([1, 2**53 + 1]), "is not a float64"),
    "inexact uint64": (np.uint64(2**64 - 1), "is not a float64"),
    "inexact list": ([3, 2**62 + 1], "is not a float64"),
    "longdouble": (np.longdouble(1) / 3, "extra precision would be dropped"),
    "datetime": (np.array(["2020-01-01"], dtype="datetime64[D]"), "not supported"),
    # a masked array's masked entries hold numbers: computing on them would drop the mask
    "masked array": (np.ma.array([1.0, 2.0, 3.0], mask=[0, 1, 0]), "masked entries"),
    "masked constant": (np.ma.masked, "masked entries"),
}


@pytest.fixture(scope="module")
def functions():
    g = cg.grad(cg.parse("J = w*x + sin(w)"))
    return {name: lower(g) for name, lower in LOWERINGS.items()}


@pytest.mark.parametrize("bad", list(BAD), ids=list(BAD))
@pytest.mark.parametrize("lowering", list(LOWERINGS))
def test_a_bad_input_is_refused_by_name(functions, lowering, bad):
    f = functions[lowering]
    value, words = BAD[bad]
    for call in (lambda: f(value, 2.0), lambda: f(w=value, x=2.0), lambda: f(2.0, x=value)):
        with pytest.raises(cg.CircuitError, match=r"input '[wx]'") as info:
            call()
        assert words in str(info.value)
        assert isinstance(info.value, TypeError)  # what a bad argument is in Python
    if bad == "huge int":
        with pytest.raises(InputRangeError):
            f(value, 2.0)
        with pytest.raises(OverflowError):  # as float(10**400) raises
            f(value, 2.0)


@pytest.mark.parametrize("lowering", list(LOWERINGS))
def test_a_masked_array_with_nothing_masked_is_its_data(functions, lowering):
    f, want = functions[lowering], functions["numpy"](np.array([1.0, 2.0]), 2.0)
    for value in (np.ma.array([1.0, 2.0]), np.ma.array([1.0, 2.0], mask=[0, 0])):
        got = f(value, 2.0)
        assert all(np.array_equal(np.asarray(g), np.asarray(w)) for g, w in zip(got, want))


@pytest.mark.parametrize("lowering", list(LOWERINGS))
def test_an_ndarray_subclass_is_the_array_of_its_numbers(lowering):
    # np.matrix's * is a matrix product: to_numpy computed x * y of two matrices as x @ y
    f = LOWERINGS[lowering](cg.trace(lambda x, y: x * y + x, shapes={"x": (2, 2), "y": (2, 2)}))
    m = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    got = f(m, m)
    assert type(got) is np.ndarray
    assert np.array_equal(got, np.asarray(m) * np.asarray(m) + np.asarray(m))


@pytest.mark.parametrize("lowering", list(LOWERINGS))
def test_good_inputs_give_the_same_values(functions, lowering):
    f, ref = functions[lowering], functions["numpy"]
    want = ref(0.5, 2.0)
    for args in ((0.5, 2), (np.float32(0.5), np.int64(2)), (np.array(0.5), np.array(2.0)),
                 (0.5, True), (np.float16(0.5), np.uint8(2)), (0.5, 2**53)):
        got = f(*args)
        assert np.allclose(np.array(got, dtype=float), np.array(ref(*args), dtype=float),
                           rtol=1e-15, atol=0)
    batch = f([0.5, 0.5], np.array([2, 2], dtype=np.int32))
    assert np.allclose(np.array([b[0] for b in batch]), np.array(want, dtype=float))


@pytest.mark.parametrize("lowering", list(LOWERINGS))
def test_integers_that_are_float64_numbers_are_taken_as_they_are(functions, lowering):
    # Beyond 2**53 an integer with few enough bits is still a float64 exactly (2**60, 3·2**55).
    f, want = functions[lowering], functions["numpy"]
    for big in (2**53, -(2**53), 2**60, 3 * 2**55, np.int64(2**62)):
        got = f(big, 2.0)
        assert [float(v) for v in got] == [float(v) for v in want(float(big), 2.0)]


@pytest.mark.parametrize("lowering", list(LOWERINGS))
def test_bad_inputs_of_a_tensor_circuit(lowering):
    f = LOWERINGS[lowering](cg.grad(cg.parse("J = sum(v * v)", shapes={"v": (2,)})))
    assert float(f(np.array([1.0, 2.0]))[0]) == 5.0
    for value, words in ((np.array([1 + 2j, 3 - 1j]), "complex128 arrays"),
                         (np.array(["1", "2"]), "strings"), (None, "None"),
                         (np.array([1.0, None], dtype=object), "object")):
        with pytest.raises(InputError, match=f"input 'v'.*{words}"):
            f(value)


def test_the_fast_one_point_path_refuses_what_the_binder_refuses():
    # to_tape's and to_c's one-point path reads floats, ints and float64 in C: a huge int,
    # a bool, a complex or anything else goes to the checking binder.
    for lower in (cg.to_tape, cg.to_c):
        f = lower(cg.grad(cg.parse("J = sin(x)")))
        assert f(True) == f(1.0)
        for value in (10**400, -(10**400), 1j, None):
            with pytest.raises(InputError, match="input 'x'"):
                f(value)


@pytest.mark.parametrize("library", ["torch", "jax"])
def test_array_api_inputs_are_checked_by_dtype(library):
    lib = pytest.importorskip(library)
    f = cg.to_numpy(cg.parse("J = sum(v * v)", shapes={"v": (2,)}))
    if library == "torch":
        good, bad = lib.tensor([1.0, 2.0], dtype=lib.float64), lib.tensor([1 + 2j, 3 - 1j])
        boolean = lib.tensor([True, False])
    else:
        import jax.numpy as jnp

        lib.config.update("jax_enable_x64", True)
        good, bad = jnp.asarray([1.0, 2.0]), jnp.asarray([1 + 2j, 3 - 1j])
        boolean = jnp.asarray([True, False])
    assert float(f(good)) == 5.0
    assert float(f(boolean)) == 1.0  # booleans are 0 and 1, exactly
    with pytest.raises(InputError, match="input .v.: .*complex.* arrays are not supported"):
        f(bad)


def test_one_register_allocator_in_c_and_in_python():
    # The extension's allocate and program.allocate (to_numpy's, and to_c's where the
    # extension is not built) give the same registers.
    import circuitgrad.lower.program as program

    c = cg.grad(cg.parse("z = w*x + y\nJ = sin(z) * z + exp(w * y) / (1 + x*x)"))
    p = program.ScalarProgram(c, "test", program.EXTENSION.OPS)
    n = len(p.circuit)
    leaf = np.array([op in ("input", "const") for op in p.circuit._ops])
    keep = leaf.copy()
    keep[list(p.circuit.output_ids)] = True
    start = np.full(n, -1, dtype=np.int32)
    start[leaf] = np.arange(int(leaf.sum()), dtype=np.int32)
    in_c = start.copy()
    count_c = program.EXTENSION.allocate(p.args, p.last, in_c, keep.view(np.uint8))
    in_python = start.tolist()
    count_python = program.allocate(p.args.tolist(), p.last.tolist(), in_python, keep.tolist())
    assert (count_c, in_c.tolist()) == (count_python, in_python)
    assert in_c.tolist() == p.reg.tolist()


def test_the_c_sources_are_package_data():
    from circuitgrad.lower import cforms

    for name in ("prelude.h", "vector_prelude.h", "vector_math.h"):
        assert cforms.c_text(name).strip()
    assert cforms.PRELUDE == cforms.c_text("prelude.h")
    assert cforms.VECTOR_MATH_C.strip() == cforms.c_text("vector_math.h").strip()


def test_integers_of_other_libraries_that_would_round_are_refused():
    # (the same rule as NumPy's int64 arrays: the dtype alone said nothing about 2**53 + 1)
    torch = pytest.importorskip("torch")
    f = cg.to_numpy(cg.parse("f = 2*x"))
    assert f(torch.tensor([3, 4])).tolist() == [6.0, 8.0]
    assert f(torch.tensor([2**62])).tolist() == [2.0**63]  # exactly a float64: taken
    with pytest.raises(cg.InputRangeError, match="beyond 2\\*\\*53"):
        f(torch.tensor([1, 2**53 + 1]))
