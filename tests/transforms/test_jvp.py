"""Forward mode and second derivatives: jvp, hvp, hessian.

Oracles: the dot-product identity ⟨t, grad f⟩ = jvp(t), central differences of ``grad``, and
sympy's ``hessian``; the size bounds follow from the primitive table.
"""

import numpy as np
import pytest
import sympy
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import circuitgrad as cg
from circuitgrad.transforms.grad import SIZE_FACTOR
from circuitgrad.transforms.jvp import HVP_SIZE_FACTOR, JVP_SIZE_FACTOR, tangent_rule_size
from strategies import programs
from tolerances import FD_ERROR, SYMPY_RTOL

DOT_RTOL = 1e-10  # ⟨t, grad⟩ vs jvp(t): the same partials summed in another order


def directions(names, seed):
    rng = np.random.default_rng(seed)
    return {name: float(rng.normal()) for name in names}


def close(a, b, rtol):
    return abs(a - b) <= rtol * max(1.0, abs(a), abs(b))


# -- jvp -------------------------------------------------------------------------------------

@given(programs(), st.integers(0, 2**16))
def test_dot_product_identity(case, seed):
    text, point, _ = case
    c = cg.parse(text)
    point = {k: point[k] for k in c.inputs}
    t = directions(c.inputs, seed)
    j = cg.jvp(c, tangents={x: f"t_{x}" for x in c.inputs})
    j.validate()
    assert j.inputs == c.inputs + tuple(f"t_{x}" for x in c.inputs)
    f, f_dot = cg.to_numpy(j)(**point, **{f"t_{x}": v for x, v in t.items()})
    J, *gradient = cg.to_numpy(cg.grad(c))(**point)
    assert f == J
    want = sum(g * t[x] for x, g in zip(c.inputs, gradient))
    assert close(float(f_dot), float(want), DOT_RTOL)
    assert j.size <= JVP_SIZE_FACTOR * c.size


@given(programs())
def test_jvp_against_central_differences(case):
    text, point, _ = case
    c = cg.parse(text)
    point = {k: point[k] for k in c.inputs}
    t = directions(c.inputs, 7)
    f = cg.to_numpy(c)
    eps = 1e-6
    hi = f(**{x: v + eps * t[x] for x, v in point.items()})
    lo = f(**{x: v - eps * t[x] for x, v in point.items()})
    fd = (hi - lo) / (2 * eps)
    f_dot = cg.to_numpy(cg.jvp(c))(**point, **{f"{x}_dot": t[x] for x in c.inputs})[1]
    assert close(float(f_dot), float(fd), FD_ERROR)


def test_jvp_names_and_partial_tangents():
    c = cg.parse("u = x*y\nv = sin(x) + y", outputs=["u", "v"])
    j = cg.jvp(c, tangents={"y": "dy"})
    assert j.inputs == ("x", "y", "dy") and j.outputs == ("u", "v", "u_dot", "v_dot")
    u, v, u_dot, v_dot = cg.to_numpy(j)(x=2.0, y=3.0, dy=1.0)
    assert (u_dot, v_dot) == (2.0, 1.0)
    j = cg.jvp(cg.parse("f = 2*x", inputs=["x", "y"]), tangents={"y": "ty"})
    assert cg.to_numpy(j)(1.0, 5.0, 1.0)[1] == 0.0  # no dependence: an exact zero
    with pytest.raises(cg.CircuitError, match="not an input"):
        cg.jvp(c, tangents={"z": "tz"})
    with pytest.raises(cg.CircuitError, match="new input name"):
        cg.jvp(c, tangents={"x": "y"})


def test_jvp_of_a_tensor_circuit():
    shapes = {"W": (2, 3), "x": (3,), "b": (2,)}
    c = cg.parse("z = W @ x + b\na = tanh(z)\nJ = sum(a * a) + mean(x) * b", shapes=shapes)
    assert c.output_shapes == {"J": (2,)}
    rng = np.random.default_rng(0)
    point = {k: rng.normal(size=s) for k, s in shapes.items()}
    t = {k: rng.normal(size=s) for k, s in shapes.items()}
    j = cg.jvp(c)
    j.validate()
    assert j.output_shapes == {"J": (2,), "J_dot": (2,)}
    got = cg.to_numpy(j)(**point, **{f"{k}_dot": v for k, v in t.items()})[1]
    f, eps = cg.to_numpy(c), 1e-6
    fd = (f(**{k: point[k] + eps * t[k] for k in shapes})
          - f(**{k: point[k] - eps * t[k] for k in shapes})) / (2 * eps)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)


def test_jvp_composes_with_grad_lowering_and_diagrams():
    c = cg.parse("f = x*sin(y) + exp(x*y)")
    j = cg.jvp(c)
    h = cg.grad(j, output="f_dot", wrt=["x", "y"])
    # d/dx of ∇f·t is row x of the Hessian applied to t.
    x, y = sympy.symbols("x y", real=True)
    expr = x * sympy.sin(y) + sympy.exp(x * y)
    H = sympy.hessian(expr, (x, y)).subs({x: 0.3, y: -0.8})
    t = np.array([0.5, 2.0])
    got = cg.to_numpy(h)(x=0.3, y=-0.8, x_dot=0.5, y_dot=2.0)
    np.testing.assert_allclose(got[1:], np.array(H, dtype=float) @ t, rtol=1e-12)
    assert "f_dot" in cg.to_numpy(j).source
    for circuit in (j, h, cg.hvp(c), cg.hessian(c)):
        assert "digraph" in str(cg.to_dot(circuit))
        back = cg.from_json(cg.to_json(circuit))
        assert (back.outputs, back.size) == (circuit.outputs, circuit.size)


# -- hvp ---------------------------------------------------------------------------------------

@given(programs(), st.integers(0, 2**16))
def test_hvp_against_central_differences_of_grad(case, seed):
    text, point, _ = case
    c = cg.parse(text)
    point = {k: point[k] for k in c.inputs}
    v = directions(c.inputs, seed)
    h = cg.hvp(c)
    h.validate()
    assert h.size <= HVP_SIZE_FACTOR * c.size
    got = cg.to_numpy(h)(**point, **{f"v_{x}": v[x] for x in c.inputs})
    n = len(c.inputs)
    g = cg.to_numpy(cg.grad(c))
    eps = 1e-6
    hi = g(**{x: p + eps * v[x] for x, p in point.items()})[1:]
    lo = g(**{x: p - eps * v[x] for x, p in point.items()})[1:]
    for k in range(n):
        fd = (hi[k] - lo[k]) / (2 * eps)
        assert close(float(got[1 + n + k]), float(fd), 1e-4), (k, got, fd)
    np.testing.assert_array_equal(got[1:1 + n], g(**point)[1:])


@given(programs(max_ops=30))
@settings(max_examples=40)
def test_hvp_size_is_a_constant_times_the_circuit(case):
    c = cg.parse(case[0])
    assert cg.hvp(c).size <= HVP_SIZE_FACTOR * c.size
    assert cg.jvp(c).size <= JVP_SIZE_FACTOR * c.size


def test_size_factors_follow_from_the_table():
    assert tangent_rule_size("add") == 1 and tangent_rule_size("mul") == 3
    assert JVP_SIZE_FACTOR == max(  # a linear-algebra node counts as its matrix operations
        -(-(1 + tangent_rule_size(op) + (max(p.arity - 1, 0) if p.shape is None else 0))
          // p.counts_as)
        for op, p in cg.PRIMITIVES.items() if op not in ("input", "const"))
    # pow_vjp (the limit of ∂(x**y)/∂x at x = 0, a node of three arguments): 1 + 11 + 2; its
    # tangent is exact on both sides of x = 0 (atan2 and clip, before it: 1 + 9 + 1, 1 + 8 + 2).
    assert (JVP_SIZE_FACTOR, HVP_SIZE_FACTOR) == (14, 126)
    assert HVP_SIZE_FACTOR == JVP_SIZE_FACTOR * SIZE_FACTOR


def test_hvp_size_grows_linearly_on_a_long_chain():
    sizes = []
    for n in (100, 1000):
        text = "\n".join(["v0 = x*y"] + [f"v{k} = sin(v{k-1})*x + v{k-1}*v{k-1}"
                                          for k in range(1, n)])
        c = cg.parse(text)
        sizes.append(cg.hvp(c).size / c.size)
    assert sizes[1] <= sizes[0] * 1.05 and sizes[1] <= HVP_SIZE_FACTOR


def test_hvp_names():
    h = cg.hvp(cg.parse("J = x*y*z"), wrt=["x", "z"])
    assert h.inputs == ("x", "y", "z", "v_x", "v_z")
    assert h.outputs == ("J", "dJ_dx", "dJ_dz", "Hv_x", "Hv_z")
    # H restricted to (x, z) at (x, y, z) = (1, 2, 3) is [[0, y], [y, 0]].
    assert cg.to_numpy(h)(1.0, 2.0, 3.0, 1.0, 10.0)[3:] == (20.0, 2.0)


# -- hessian -----------------------------------------------------------------------------------

@given(programs(max_ops=6))
@settings(max_examples=25)
def test_hessian_against_sympy(case):
    text, point, _ = case
    assume(all(f"{name}(" not in text for name in ("floor", "ceil", "round")))  # see test_grad
    c = cg.parse(text)
    point = {k: point[k] for k in c.inputs}
    h = cg.hessian(c)
    h.validate()
    got = dict(zip(h.outputs, cg.to_numpy(h)(**point)))
    symbols = [sympy.Symbol(x, real=True) for x in c.inputs]
    H = sympy.hessian(cg.to_sympy(c, real=True), symbols)
    at = dict(zip(symbols, point.values()))
    out = c.outputs[0]
    for i, x in enumerate(c.inputs):
        for k, y in enumerate(c.inputs):
            try:
                want = float(H[i, k].subs(at).evalf(30))
                tol = SYMPY_RTOL * 100
            except RecursionError:
                # sympy's evalf can recurse without end on nested derivatives of sign/step:
                # the oracle is then central differences of the gradient.
                want, tol = _central_hessian_entry(c, point, x, y), 1e-5
            assert float(got[f"d2{out}_d{x}_d{y}"]) == pytest.approx(want, rel=tol, abs=tol)


def _central_hessian_entry(c, point, x, y, eps=1e-6):
    g = cg.to_numpy(cg.grad(c))
    k = 1 + c.inputs.index(x)
    hi, lo = dict(point), dict(point)
    hi[y] += eps
    lo[y] -= eps
    return (float(g(**hi)[k]) - float(g(**lo)[k])) / (2 * eps)


def test_hessian_of_a_tensor_circuit_has_shape_x_plus_y():
    shapes = {"W": (2, 3), "x": (3,)}
    c = cg.parse("z = W @ x\na = tanh(z)\nJ = sum(a * a) + sum(x * x * x)", shapes=shapes)
    h = cg.hessian(c)
    h.validate()
    assert h.output_shapes["d2J_dW_dx"] == (2, 3, 3)
    assert h.output_shapes["d2J_dW_dW"] == (2, 3, 2, 3)
    rng = np.random.default_rng(3)
    point = {k: rng.normal(size=s) for k, s in shapes.items()}
    got = dict(zip(h.outputs, cg.to_numpy(h)(**point)))
    g = cg.to_numpy(cg.grad(c))
    eps = 1e-6
    for x in shapes:
        for index in np.ndindex(shapes[x]):
            hi, lo = dict(point), dict(point)
            hi[x], lo[x] = point[x].copy(), point[x].copy()
            hi[x][index] += eps
            lo[x][index] -= eps
            for y, gh, gl in zip(c.inputs, g(**hi)[1:], g(**lo)[1:]):
                np.testing.assert_allclose(got[f"d2J_d{x}_d{y}"][index], (gh - gl) / (2 * eps),
                                           rtol=1e-5, atol=1e-7)


def test_hessian_names_zero_blocks_and_symmetry():
    c = cg.parse("J = sin(x)*y + y**3", inputs=["x", "y", "u"])
    h = cg.hessian(c)
    assert h.outputs[:4] == ("J", "dJ_dx", "dJ_dy", "dJ_du")
    values = dict(zip(h.outputs, cg.to_numpy(h)(0.4, 1.5, 9.0)))
    assert values["d2J_du_du"] == 0.0 and values["d2J_dx_du"] == 0.0
    assert values["d2J_dx_dy"] == values["d2J_dy_dx"] == pytest.approx(np.cos(0.4))
    assert values["d2J_dy_dy"] == pytest.approx(6 * 1.5)


def test_hessian_matrix_layout_is_one_matrix_for_fifty_scalar_inputs():
    names = [f"x{i}" for i in range(50)]
    text = "J = " + " + ".join(f"{a} * sin({b})" for a, b in zip(names, names[1:] + names[:1]))
    c = cg.parse(text, inputs=names)
    blocks, matrix = cg.hessian(c), cg.hessian(c, layout="matrix")
    assert len(blocks.outputs) == 1 + 50 + 50 * 50  # the blocks of scalars are entries
    assert matrix.outputs == ("J", "dJ", "d2J")
    assert matrix.output_shapes == {"J": (), "dJ": (50,), "d2J": (50, 50)}
    point = dict(zip(names, np.random.default_rng(4).normal(size=50)))
    got = cg.to_numpy(matrix)(**point)
    entries = dict(zip(blocks.outputs, cg.to_numpy(blocks)(**point)))
    want = np.array([[entries[f"d2J_d{x}_d{y}"] for y in names] for x in names])
    np.testing.assert_array_equal(got.d2J, want)
    np.testing.assert_array_equal(got.dJ, [entries[f"dJ_d{x}"] for x in names])
    np.testing.assert_array_equal(got.d2J, got.d2J.T)


def test_hessian_matrix_layout_flattens_tensor_inputs_in_order():
    shapes = {"W": (2, 3), "x": (3,)}
    c = cg.parse("J = sum(tanh(W @ x)) * s + s**3", shapes=shapes, inputs=["W", "s", "x"])
    m = cg.hessian(c, layout="matrix")
    assert m.output_shapes["d2J"] == (10, 10)
    rng = np.random.default_rng(8)
    point = {"W": rng.normal(size=(2, 3)), "s": 0.7, "x": rng.normal(size=3)}
    got = cg.to_numpy(m)(**point)
    blocks = dict(zip(cg.hessian(c).outputs, cg.to_numpy(cg.hessian(c))(**point)))
    order = [("W", 6), ("s", 1), ("x", 3)]
    want = np.block([[np.reshape(blocks[f"d2J_d{x}_d{y}"], (m_, n_)) for y, n_ in order]
                     for x, m_ in order])
    np.testing.assert_array_equal(got.d2J, want)
    np.testing.assert_array_equal(got.dJ, np.concatenate(
        [np.ravel(blocks[f"dJ_d{x}"]) for x, _ in order]))
    from test_batch import assert_points_agree, batch_of
    assert_points_agree(m, batch_of(m, 2, (3,)), (3,))
    with pytest.raises(cg.CircuitError, match="layout must be"):
        cg.hessian(c, layout="entries")


def test_hessian_joins_its_sweeps_with_stack_not_one_hot_products():
    c = cg.parse("J = sum(exp(x) * x)", shapes={"x": (40,)})
    h = cg.hessian(c, wrt="x")
    ops = [h.op(i) for i in range(len(h))]
    assert ops.count("stack") == 1
    assert h.size < 40 * 8  # a few nodes per sweep, no (40, 40) product per entry
