"""One batch semantics (docs/semantics.md): a circuit's shapes are those of one point, extra
leading axes of the inputs are batch axes, and every lowering computes, for each point of a
batch, bit for bit what it computes at that point alone.

Also the register interpreter against the compiled code on circuits with array constants, and
the named-tuple outputs.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import circuitgrad as cg
from circuitgrad.lower import numpy as lowering
from strategies import programs, tensor_circuits, tensor_programs
from tolerances import COMPILED_ULPS

SPECIAL = (0.0, -0.0, np.inf, -np.inf, np.nan, 1e-300, -1e300)


def same_bits(a, b) -> bool:
    """Equal as IEEE values: the same numbers, NaN where NaN, the same sign of zero."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    nan = np.isnan(a)
    return bool(np.array_equal(nan, np.isnan(b)) and np.array_equal(a[~nan], b[~nan])
                and np.array_equal(np.signbit(a[~nan]), np.signbit(b[~nan])))


def same_specials_and_ulps(a, b, ulps: int = COMPILED_ULPS) -> bool:
    """The compiled lowerings' contract: non-finite values and zeros bit for bit, finite ones
    within ``ulps`` units in the last place."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    exact = ~np.isfinite(a) | ~np.isfinite(b) | (a == 0) | (b == 0)
    if a.shape != b.shape or not same_bits(a[exact], b[exact]):
        return False
    finite = ~exact
    return bool(np.all(np.abs(a[finite] - b[finite])
                       <= ulps * np.spacing(np.maximum(np.abs(a[finite]), np.abs(b[finite])))))


def batch_of(c: cg.Circuit, seed: int, batch: tuple[int, ...] = (5,), special: bool = False,
             unbatched: frozenset = frozenset()) -> dict[str, np.ndarray]:
    """Values for every input: ``batch`` + its shape (or one point, for names in
    ``unbatched``), random around 0.5, with special values mixed in if asked."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in c.input_shapes.items():
        full = shape if name in unbatched else batch + shape
        v = rng.uniform(-2, 2, size=full)
        if special and v.size:
            flat = v.reshape(-1)
            picks = rng.integers(0, flat.size, size=max(1, flat.size // 4))
            flat[picks] = rng.choice(SPECIAL, size=picks.size)
        values[name] = v
    return values


def assert_points_agree(c: cg.Circuit, values: dict[str, np.ndarray], batch: tuple[int, ...],
                        unbatched: frozenset = frozenset()) -> None:
    """``f(batch)[k] == f(point k)`` bit for bit, for every output and every k, in both the
    compiled and the interpreted lowering (which also agree with each other)."""
    results = {}
    with np.errstate(all="ignore"):
        for mode in ("compile", "interpret"):
            f = cg.to_numpy(c, mode=mode)
            out = f(**values)
            outs = out if len(c.outputs) > 1 else (out,)
            for name, o in zip(c.outputs, outs):
                assert np.shape(o) == batch + c.output_shapes[name], (mode, name)
            for k in np.ndindex(batch):
                point = {n: (v if n in unbatched else v[k]) for n, v in values.items()}
                one = f(**point)
                ones = one if len(c.outputs) > 1 else (one,)
                for name, o, p in zip(c.outputs, outs, ones):
                    assert same_bits(o[k], p), (mode, name, k, o[k], p)
            results[mode] = outs
    for name, a, b in zip(c.outputs, results["compile"], results["interpret"]):
        assert same_bits(a, b), ("compiled and interpreted differ", name)


# -- the cases of the issue ------------------------------------------------------------------

def test_a_reduction_over_a_scalar_point_does_not_reduce_the_batch():
    c = cg.parse("J = mean(square(w*x + b - y))")
    f = cg.to_numpy(cg.grad(c, wrt=["w", "b"]))
    x = np.array([0.0, 1, 2, 3])
    out = f(w=2.0, x=x, b=1.0, y=np.zeros(4))
    np.testing.assert_array_equal(out.J, (2 * x + 1) ** 2)
    np.testing.assert_array_equal(out.dJ_dw, 2 * (2 * x + 1) * x)
    np.testing.assert_array_equal(out.dJ_db, 2 * (2 * x + 1))
    assert cg.to_numpy(cg.parse("sum(v*v)"))(v=np.array([1.0, 2, 3])).tolist() == [1, 4, 9]


def test_a_batch_of_vectors_reduces_each_point():
    c = cg.parse("J = sum(x*y)", shapes={"x": (3,), "y": (3,)})
    x = np.arange(12.0).reshape(4, 3)
    got = cg.to_numpy(c)(x=x, y=np.ones(3))
    assert got.shape == (4,) and got.tolist() == x.sum(axis=1).tolist()
    t = cg.parse("J = sum(x.T * y)", shapes={"x": (2, 3), "y": (3, 2)})
    X = np.arange(24.0).reshape(4, 2, 3)
    Y = np.ones((4, 3, 2))
    got = cg.to_numpy(t)(X, Y)
    assert got.tolist() == [float(np.sum(X[k].T * Y[k])) for k in range(4)]


def test_tensor_circuit_batches_and_broadcast_batches():
    c = cg.parse("z = W @ x + b\nJ = 0.5 * sum(square(relu(z) - y))",
                 shapes={"W": (2, 3), "x": (3,), "b": (2,), "y": (2,)})
    g = cg.to_numpy(cg.grad(c))
    rng = np.random.default_rng(0)
    W, b, y = rng.normal(size=(2, 3)), rng.normal(size=2), rng.normal(size=2)
    X = rng.normal(size=(7, 3))  # x declared (3,) given (7, 3): seven points
    out = g(W=W, x=X, b=b, y=y)
    assert out.dJ_dW.shape == (7, 2, 3) and out.J.shape == (7,)
    for k in range(7):
        one = g(W=W, x=X[k], b=b, y=y)
        for a, p in zip(out, one):
            assert same_bits(a[k], p)
    # batch shapes broadcast: W over 4 points, x over 7, as a (4, 1) by (7,) grid
    Ws = rng.normal(size=(4, 1, 2, 3))
    grid = g(W=Ws, x=X, b=b, y=y)
    assert grid.J.shape == (4, 7) and grid.dJ_dx.shape == (4, 7, 3)
    assert same_bits(grid.dJ_dx[2, 5], g(W=Ws[2, 0], x=X[5], b=b, y=y).dJ_dx)


def test_outputs_independent_of_the_batch_carry_it_too():
    g = cg.to_numpy(cg.grad(cg.parse("J = 3*w + sum(v)", shapes={"v": (2,)})))
    out = g(w=np.array([1.0, 2.0, 3.0]), v=np.ones(2))
    assert out.dJ_dw.shape == (3,) and out.dJ_dv.shape == (3, 2)
    out.dJ_dv[0, 0] = 5.0  # writable, not a view of a constant
    assert g(w=1.0, v=np.ones(2)).dJ_dv.tolist() == [1.0, 1.0]


def test_a_value_that_is_neither_a_point_nor_a_batch_is_a_shape_error():
    f = cg.to_numpy(cg.parse("sum(W @ x)", shapes={"W": (3, 4), "x": (4,)}))
    with pytest.raises(cg.ShapeError, match="input 'x' has shape \\(4,\\) at one point"):
        f(np.ones((3, 4)), np.ones((4, 3)))
    with pytest.raises(cg.ShapeError, match="batch shapes do not broadcast"):
        f(np.ones((2, 3, 4)), np.ones((5, 4)))


# -- the property, on random programs --------------------------------------------------------

@given(programs(max_ops=10), st.integers(0, 2**32 - 1), st.booleans())
@settings(max_examples=60)
def test_random_scalar_programs_batch_equals_point_by_point(case, seed, special):
    text, _, _ = case
    c = cg.parse(text)
    for circuit in (c, cg.grad(c)):
        values = batch_of(circuit, seed, (2, 3), special=special)
        assert_points_agree(circuit, values, (2, 3))


@given(tensor_programs(), st.integers(0, 2**32 - 1), st.booleans())
@settings(max_examples=60)
def test_random_tensor_programs_batch_equals_point_by_point(case, seed, special):
    text, shapes = case
    c = cg.parse(text, shapes=shapes, inputs=list(shapes))
    # Sometimes the first input is one point and the others a batch (batch shapes broadcast).
    unbatched = frozenset(c.inputs[:1]) if seed % 3 == 0 and len(c.inputs) > 1 else frozenset()
    for circuit in (c, cg.grad(c)):
        values = batch_of(circuit, seed, (3,), special=special, unbatched=unbatched)
        assert_points_agree(circuit, values, (3,), unbatched)


@given(tensor_circuits(), st.integers(0, 2**32 - 1))
@settings(max_examples=60)
def test_random_tensor_circuits_with_array_constants(c, seed):
    for circuit in (c, cg.grad(c)):
        values = batch_of(circuit, seed, (2,))
        assert_points_agree(circuit, values, (2,))


def test_a_variable_exponent_has_one_rule_at_a_point_and_in_a_batch():
    # np.power takes sqrt, x*x and 1/x for a scalar exponent 0.5, 2, -1 but C's pow for an
    # array of them (sqrt(-inf) = nan, pow(-inf, 0.5) = inf): circuitgrad's pow is one rule.
    base = np.array(SPECIAL + (-3.0, 2.5, 7.0))
    x, y = (a.ravel() for a in np.meshgrid(base, [0.5, 2.0, -1.0, 3.0, 0.7, 0.0]))
    c = cg.parse("J = x ** y + sin(x ** 0.5)")
    for circuit in (c, cg.grad(c)):
        assert_points_agree(circuit, {"x": x, "y": y}, x.shape)
        with np.errstate(all="ignore"):
            want = cg.to_numpy(circuit)(x=x, y=y)
            for lower in (cg.to_tape, cg.to_c):
                got = lower(circuit)(x=x, y=y)
                for name, a, b in zip(circuit.outputs, got, want):
                    # Across lowerings the contract is special values bit for bit and finite
                    # ones within the ulp bound (docs/semantics.md): to_c's vector pow and sin
                    # are 1 ulp from NumPy's, and so is NumPy's own AVX-512 power from the C
                    # library's pow that to_tape calls (this test asserted bit for bit there,
                    # which holds only on a CPU without AVX-512).
                    assert same_specials_and_ulps(a, b), (lower.__name__, name)
    # An array constant of exponents: the rule entry by entry, as the scalarized C sees it.
    k = cg.trace(lambda x: x ** np.array([0.5, 2.0, -1.0, 0.7]), shapes={"x": (4,)})
    xs = np.array([[-np.inf, -0.0, 3.0, 2.0], [-0.0, -np.inf, -0.0, np.nan]])
    with np.errstate(all="ignore"):
        want = cg.to_numpy(k)(xs)
        assert np.isnan(want[0, 0]) and np.signbit(want[1, 0])
        assert same_specials_and_ulps(cg.to_tape(k)(xs), want)  # NumPy's SIMD pow: 1 ulp
        assert same_specials_and_ulps(cg.to_c(k)(xs), want)  # libmvec's pow at 0.7: 1 ulp
        assert np.isnan(cg.to_numpy(c)(x=np.array([-np.inf]), y=np.array([0.5]))[0])
        assert np.signbit(cg.to_numpy(c)(x=np.array([-0.0]), y=np.array([0.5]))[0])


def test_jvp_and_hessian_circuits_follow_the_batch_semantics():
    c = cg.parse("z = W @ x\nJ = sum(tanh(z) * z)", shapes={"W": (2, 3), "x": (3,)})
    for circuit in (cg.jvp(c), cg.hessian(c), cg.hvp(c)):
        values = batch_of(circuit, 1, (3,))
        assert_points_agree(circuit, values, (3,))


# -- the interpreter ---------------------------------------------------------------------------

def test_interpreter_keeps_array_constants_until_their_last_read():
    b = cg.circuit.Builder()
    x = b.input("x", (3,))
    K = np.array([1.0, 2.0, 3.0])
    v = x
    for k in range(6):
        v = cg.sin(v) * x  # registers are freed and reused here ...
    J = (v * K).sum()  # ... before the constant, created last, is read
    c = b.finish([("J", J)])
    point = {"x": np.array([0.3, -0.2, 0.9])}
    compiled = cg.to_numpy(c, mode="compile")(**point)
    assert same_bits(cg.to_numpy(c, mode="interpret")(**point), compiled)


def test_above_the_compile_limit_array_constants_give_the_compiled_numbers():
    rng = np.random.default_rng(5)
    b = cg.circuit.Builder()
    x = b.input("x", (4,))
    W = b.input("W", (4, 4))
    v, terms = x, []
    while len(b.ops) < lowering.COMPILE_LIMIT + 100:
        K = rng.uniform(-1, 1, size=4)
        v = cg.tanh(W @ v + K) * np.array([1.0, 0.5, -0.5, 1.0])
        terms.append(v)
    J = terms[0].sum()
    for t in terms[1:]:
        J = J + (t * K).sum()
    c = b.finish([("J", J)])
    assert len(c) > lowering.COMPILE_LIMIT
    point = {"x": rng.normal(size=4), "W": rng.normal(size=(4, 4)) * 0.5}
    default = cg.to_numpy(c)  # interpreted, by the size
    assert isinstance(default._run, lowering._Interpreter)
    assert same_bits(default(**point), cg.to_numpy(c, mode="compile")(**point))
    X = rng.normal(size=(3, 4))  # and a batch
    assert same_bits(default(x=X, W=point["W"]), cg.to_numpy(c, mode="compile")(X, point["W"]))


# -- outputs -----------------------------------------------------------------------------------

def test_outputs_are_a_named_tuple_that_pickles():
    g = cg.to_numpy(cg.grad(cg.parse("z = w*x + b\nJ = relu(z)")))
    out = g(w=2.0, x=1.5, b=0.5)
    assert out._fields == ("J", "dJ_dw", "dJ_dx", "dJ_db")
    assert out.dJ_db == out[3] == 1.0
    J, dw, dx, db = out
    assert (J, dw) == (3.5, 1.5)
    back = pickle.loads(pickle.dumps(out))
    assert back == out and back.dJ_dx == 2.0
    assert "return _Outputs(J=J, dJ_dw=w_bar, dJ_dx=x_bar, dJ_db=z_bar)" in g.source
    interpreted = cg.to_numpy(cg.grad(cg.parse("z = w*x + b\nJ = relu(z)")), mode="interpret")
    assert interpreted(w=2.0, x=1.5, b=0.5) == out
    assert type(interpreted(w=2.0, x=1.5, b=0.5)).__name__ == "Outputs"


def test_output_names_that_are_not_identifiers_still_index():
    b = cg.circuit.Builder()
    x = b.input("x")
    c = b.finish([("f-1", cg.sin(x)), ("class", x * 2.0)])
    out = cg.to_numpy(c)(0.0)
    assert tuple(out) == (0.0, 0.0) and out[1] == 0.0


def test_the_command_line_evaluates_a_batch_point_by_point(capsys):
    from circuitgrad.cli import main

    assert main(["eval", "sum(v*v)", "--at", "v=[1,2,3]"]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == "f = [1., 4., 9.]"
    assert "batch of 3 points" in out.err
    assert main(["eval", "J = sum(v*v)", "--shapes", "v=3", "--at", "v=[1,2,3]"]) == 0
    assert capsys.readouterr().out.strip() == "J = 14.0"


@pytest.mark.parametrize("op", ["asinh", "exp", "expm1", "log1p", "cbrt", "atan", "tan", "log"])
def test_a_reversed_vector_has_the_bits_of_its_batch(op):
    # NumPy's SIMD kernels (AVX-512 where the CPU has it) skip a 1-D array of negative stride
    # but take a reversed 2-D one: without a copy a point and its batch differed in the last
    # bit (asinh: 651 of 3,000 entries on an AVX-512 machine).
    c = cg.parse(f"f = {op}(x[::-1]) + {op}(flip(x))", shapes={"x": (1000,)})
    values = {"x": np.random.default_rng(1).uniform(0.1, 3.0, (3, 1000))}
    assert_points_agree(c, values, (3,))
    assert_points_agree(cg.grad(cg.parse(f"J = sum({op}(x[::-2]))", shapes={"x": (999,)})),
                        {"x": values["x"][:, :999]}, (3,))
