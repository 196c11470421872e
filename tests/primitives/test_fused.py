"""Fused adjoint contributions (primitives/fused.py): one node for ``bar · f′(x)``, bit for
bit the textbook rule in every lowering, with rules of their own for second derivatives."""

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from strategies import programs
from test_batch import SPECIAL, same_bits

import circuitgrad as cg
from circuitgrad.primitives import PRIMITIVES, evaluate
from circuitgrad.primitives.fused import FUSED_VJPS
from circuitgrad.transforms.grad import SIZE_FACTOR, rule_size

# The op, and its unfused contribution written with the table's own primitives: what the
# fused node must equal bit for bit (y the op's output where the rule reads it).
UNFUSED = {
    "tanh": ("tanh_vjp", "out", lambda bar, y: bar * (1.0 - cg.square(y))),
    "sigmoid": ("sigmoid_vjp", "out", lambda bar, y: bar * (y * (1.0 - y))),
    "relu": ("relu_vjp", "x", lambda bar, x: bar * cg.step(x)),
    "abs": ("abs_vjp", "x", lambda bar, x: bar * cg.sign(x)),
    "square": ("square_vjp", "x", lambda bar, x: bar * (2.0 * x)),
    "sin": ("sin_vjp", "x", lambda bar, x: bar * cg.cos(x)),
    "cos": ("cos_vjp", "x", lambda bar, x: bar * cg.sin(x)),
    "sqrt": ("sqrt_vjp", "out", lambda bar, y: 0.5 * (bar / y)),
}
# Values where the specials live: signed zeros, infinities, NaN, the smallest and largest.
EDGES = np.array(SPECIAL + (1.0, -1.0, 0.5, -2.5, 5e-324, 1.7e308, -40.0, 40.0))


def identical(a, b) -> bool:
    """Bit for bit, but for the sign of a NaN (IEEE leaves it unspecified, and the C compiler
    may turn ``nan * -1.0`` into ``-nan``: the project compares NaN as NaN, test_batch)."""
    return same_bits(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))


def same_bits_entries(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Entry by entry: the same bits, or both NaN."""
    return (a.view(np.int64) == b.view(np.int64)) | (np.isnan(a) & np.isnan(b))


def ops(c) -> set:
    return {c.op(i) for i in range(len(c))}


def lowerings(c):
    fns = [cg.to_numpy(c), cg.to_numpy(c, mode="interpret"), cg.to_tape(c)]
    try:
        fns.append(cg.to_c(c))
    except cg.CircuitError:  # no C compiler here: to_tape covers the C forms
        pass
    return fns


# The accumulations and the two nodes each one replaces.
ACCUMULATED = {
    "add_mul": lambda a, u, v: a + u * v,
    "sub_mul": lambda a, u, v: a - u * v,
    "mul_sub": lambda a, u, v: u * v - a,
}


def test_every_fused_op_is_in_the_table_as_an_internal_elementwise_primitive():
    assert FUSED_VJPS == {fused for fused, _, _ in UNFUSED.values()} | {"pow_vjp"}
    for name in FUSED_VJPS:
        prim = PRIMITIVES[name]
        assert prim.internal and prim.shape is None and prim.c and prim.sympy
        # pow_vjp's tangent is its own jvp rule (shared terms: smaller than Σ ṫᵢ·pᵢ)
        tangent = prim.jvp if name == "pow_vjp" else prim.partials
        assert tangent is not None and prim.vjp is not None and prim.operations >= 2
        assert name not in cg.primitives.FUNCTIONS
        with pytest.raises(cg.ParseError):
            cg.parse(f"J = {name}(x, y)")
    for op, (fused, _, _) in UNFUSED.items():
        assert PRIMITIVES[op].fused is not None
        assert rule_size(op) == (2 if op == "cos" else 1)  # cos: the node and its carried sign
        assert rule_size(op, fused=False) >= 2


@pytest.mark.parametrize("op", sorted(UNFUSED))
def test_the_fused_node_is_the_unfused_rule_bit_for_bit_at_special_values(op):
    fused, reads, unfused = UNFUSED[op]
    bar, x = np.meshgrid(EDGES, EDGES)
    with np.errstate(all="ignore"):
        y = evaluate(op, (x,)) if reads == "out" else x
        b = cg.circuit.Builder()
        g, v = b.input("g", ()), b.input("v", ())
        c = b.finish([("fused", b.apply(fused, g, v)), ("unfused", unfused(g, v))])
        for f in lowerings(c):
            got, want = f(g=bar, v=y)
            assert identical(got, want), (type(f).__name__, op)
        # NumPy's fused op against NumPy's unfused rule (to_c's vector sin, cos ... are within
        # 2 ulp of NumPy's, not equal: the last lowering's value is not the reference here)
        assert identical(evaluate(fused, (bar, y)), cg.to_numpy(c)(g=bar, v=y)[1])


@pytest.mark.parametrize("name", sorted(ACCUMULATED))
def test_an_accumulation_is_its_sum_and_product_bit_for_bit_at_special_values(name):
    prim = PRIMITIVES[name]
    assert prim.internal and prim.shape is None and prim.c and prim.operations == 2
    a, u, v = (g.ravel() for g in np.meshgrid(EDGES, EDGES, EDGES))
    b = cg.circuit.Builder()
    ai, ui, vi = b.input("a", ()), b.input("u", ()), b.input("v", ())
    c = b.finish([("fused", b.apply(name, ai, ui, vi)), ("two", ACCUMULATED[name](ai, ui, vi))])
    with np.errstate(all="ignore"):
        for f in lowerings(c):
            got, want = f(a=a, u=u, v=v)
            assert identical(got, want), (type(f).__name__, name)


def test_fan_out_sums_absorb_a_fresh_product():
    c = cg.parse("p = x*y\nq = x*w\nr = x*z\nJ = p*q - r")
    g, g0 = cg.grad(c), cg.grad(c, fused=False)
    assert {"add_mul", "sub_mul", "mul_sub"} & ops(g) and not {"add_mul", "sub_mul",
                                                              "mul_sub"} & ops(g0)
    assert g.size < g0.size
    x, y, w, z = (v.ravel() for v in np.meshgrid(EDGES[:8], EDGES[:8], EDGES[4:12], EDGES[:8]))
    with np.errstate(all="ignore"):
        for f, f0 in zip(lowerings(g), lowerings(g0)):
            for got, want in zip(f(x=x, y=y, w=w, z=z), f0(x=x, y=y, w=w, z=z)):
                assert identical(got, want), type(f).__name__


@pytest.mark.parametrize("op", sorted(UNFUSED))
def test_gradients_fused_and_unfused_agree_bit_for_bit_at_special_values(op):
    # w makes the adjoint reaching op a value, not the constant 1.
    c = cg.parse(f"J = w * {op}(x*w)")
    g, g0 = cg.grad(c), cg.grad(c, fused=False)
    assert UNFUSED[op][0] in ops(g) and UNFUSED[op][0] not in ops(g0)
    assert g.size < g0.size
    x, w = np.meshgrid(EDGES, EDGES)
    with np.errstate(all="ignore"):
        for f, f0 in zip(lowerings(g), lowerings(g0)):
            for got, want in zip(f(x=x, w=w), f0(x=x, w=w)):
                assert identical(got, want), (type(f).__name__, op)


@settings(max_examples=60)
@given(programs(max_ops=16), st.integers(0, 2**31))
# hypothesis's counterexample of 2026-12-08: -(1/v) took a neg where (-1)/v is free
@example(("v0 = abs(x0)\nv2 = acos(v0)\nv8 = (~(v0 < v2)) * v2\nv11 = acos(v8)",
          {"x0": 0.5}, {}), 0)
def test_random_programs_fused_and_unfused_gradients_are_bit_identical(program, seed):
    text, point, _ = program
    c = cg.parse(text)
    g, g0 = cg.grad(c), cg.grad(c, fused=False)
    assert g.size <= g0.size <= SIZE_FACTOR * c.size
    assert not (FUSED_VJPS | set(ACCUMULATED)) & ops(g0)
    rng = np.random.default_rng(seed)
    values = {}
    for name in c.inputs:  # the program's point, random points and special values
        v = np.concatenate([[point[name]], rng.uniform(-3, 3, 20), rng.choice(EDGES, 20)])
        values[name] = v
    with np.errstate(all="ignore"):
        for f, f0 in zip(lowerings(g), lowerings(g0)):
            for got, want in zip(f(**values), f0(**values)):
                # The one difference: pow_vjp's limit where the textbook's 0/0 at a zero base
                # of a variable exponent is NaN.
                got, want = np.broadcast_arrays(np.asarray(got, float), np.asarray(want, float))
                differ = ~same_bits_entries(got, want)
                assert not (differ & ~np.isnan(want)).any(), (type(f).__name__, text)
                assert not differ.any() or "pow_vjp" in ops(g), (type(f).__name__, text)


NETWORK = """z1 = w1*x + b1
a1 = tanh(z1)
z2 = w2*a1 + b2*x
a2 = sigmoid(z2)
z3 = w3*a2 - relu(z1*z2) + abs(z2) + sin(a1)*cos(z3_in) + sqrt(square(a2) + 1)
J = z3 * z3"""
POINT = dict(x=0.7, w1=-1.3, b1=0.2, w2=0.9, b2=-0.4, w3=1.1, z3_in=0.3)


def test_second_derivatives_through_fused_nodes_match_the_unfused_gradient():
    c = cg.parse(NETWORK)
    assert {"tanh_vjp", "sigmoid_vjp", "relu_vjp", "add_mul"} <= ops(cg.grad(c))
    names = list(c.inputs)
    point = [POINT[n] for n in names]
    # The Hessian (through fused nodes) against the Jacobian of the unfused gradient.
    h = cg.to_numpy(cg.hessian(c, layout="matrix"))(*point)
    g0 = cg.grad(c, fused=False)
    jac = cg.to_numpy(cg.jacobian(g0, outputs=list(g0.outputs[1:])))(*point)
    n = len(names)  # (the jacobian's outputs: the gradient's n values, then the n² pairs)
    want = np.array([[float(jac[n + k * n + m]) for m in range(n)] for k in range(n)])
    assert np.allclose(h[-1], want, rtol=1e-12, atol=1e-12)
    # hvp, and grad of grad, through the fused gradient against the unfused one.
    v = np.linspace(-1.0, 1.0, len(names))
    seeds = {f"{n}_dot": vk for n, vk in zip(names, v)}
    hv = cg.to_numpy(cg.hvp(c))(*point, *v)
    assert np.allclose(np.ravel(hv[-len(names):]), want @ v, rtol=1e-12, atol=1e-12)
    j = cg.to_numpy(cg.jvp(cg.grad(c)))(**POINT, **seeds)
    j0 = cg.to_numpy(cg.jvp(g0))(**POINT, **seeds)
    for a, b in zip(j, j0):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-12)
    for name in ("x", "w1"):
        one = cg.grad(c, wrt=name)
        gg = cg.to_numpy(cg.grad(one))(*point)
        gg0 = cg.to_numpy(cg.grad(cg.grad(c, wrt=name, fused=False), fused=False))(*point)
        for a, b in zip(gg, gg0):
            assert np.allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(FUSED_VJPS - {"pow_vjp"}))  # (pow_vjp: below)
def test_fused_rules_against_central_differences(name):
    c = cg.parse("J = w * v")  # a stand-in, rebuilt below with the fused node
    b = cg.circuit.Builder()
    g, v = b.input("g", ()), b.input("v", ())
    c = b.finish([("J", b.apply(name, g, v) * g)])
    assert cg.check_grad(c, {"g": 0.7, "v": 0.45}) < 1e-7
    h = cg.to_numpy(cg.hessian(c, layout="matrix"))(0.7, 0.45)[-1]
    hs = cg.to_numpy(cg.hessian(c, layout="matrix", simplify=False))(0.7, 0.45)[-1]
    assert np.allclose(h, hs) and np.allclose(h, h.T, rtol=1e-12)


def test_fused_nodes_have_sympy_forms_and_labels():
    import sympy

    g, v = sympy.symbols("g v")
    for op, (fused, _, unfused) in UNFUSED.items():
        b = cg.circuit.Builder()
        gi, vi = b.input("g", ()), b.input("v", ())
        c = b.finish([("a", b.apply(fused, gi, vi))])
        c0 = b.finish([("a", unfused(gi, vi))])
        assert sympy.simplify(cg.to_sympy(c) - cg.to_sympy(c0)) == 0, op
        assert PRIMITIVES[fused].label in cg.to_dot(c).source
    for name, two in ACCUMULATED.items():
        b = cg.circuit.Builder()
        a, u, v = b.input("a", ()), b.input("u", ()), b.input("v", ())
        c, c0 = (b.finish([("s", out)]) for out in (b.apply(name, a, u, v), two(a, u, v)))
        assert sympy.simplify(cg.to_sympy(c) - cg.to_sympy(c0)) == 0, name
        assert PRIMITIVES[name].label in cg.to_dot(c).source


def test_fused_false_keeps_the_textbook_form_of_the_notes():
    c = cg.parse("z = w*x + b\na = relu(z)\nJ = 0.5*(y - a)**2")
    textbook, fused = cg.grad(c, fused=False), cg.grad(c)
    assert "step" in ops(textbook) and "relu_vjp" not in ops(textbook)
    assert "relu_vjp" in ops(fused) and "step" not in ops(fused)
    assert fused.size == textbook.size - 2  # 2·d, 0.5·, -0.5·, step, × become 3 nodes


# -- pow_vjp: ∂(a**b)/∂a for a variable exponent, with its limit at a = 0 -----------------------

def _pow_circuits():
    b = cg.circuit.Builder()
    g, a, e = b.input("g", ()), b.input("a", ()), b.input("e", ())
    out = a ** e
    t = g * out
    fused = b.apply("pow_vjp", cg.where(a, t, g), a, e)
    return b.finish([("fused", fused), ("textbook", t * e / a)])


def test_pow_vjp_is_the_textbook_rule_away_from_zero_and_its_limit_at_zero():
    c = _pow_circuits()
    g, a, e = (v.ravel() for v in np.meshgrid(EDGES, EDGES, EDGES))
    with np.errstate(all="ignore"):
        limit = g * np.where(e != 0.0, e * np.power(a, e - 1.0), 0.0)
        for f in lowerings(c):
            got, want = (np.asarray(v) for v in f(g=g, a=a, e=e))
            # the textbook where a ≠ 0, and at a = 0 where it is ±inf (b < 0); else the limit
            textbook = (a != 0.0) | (e < 0.0)
            assert identical(got[textbook], want[textbook]), type(f).__name__
            assert identical(got[~textbook], limit[~textbook]), type(f).__name__
            assert np.isnan(want[~textbook & ~np.isnan(e)]).all()  # where the textbook is 0/0
    f = cg.to_numpy(c)
    # 0 at e = 2 and 3, 1 at e = 1, inf at e = 0.5, 0 at e = 0 (JAX's and autograd's values)
    assert [float(f(g=1.0, a=0.0, e=v)[0]) for v in (2.0, 3.0, 1.0, 0.5, 0.0)] == \
        [0.0, 0.0, 1.0, math.inf, 0.0]


def test_the_gradient_of_a_power_at_a_zero_base_is_its_limit_in_every_lowering():
    g = cg.grad(cg.parse("J = w * x ** y"))
    assert "pow_vjp" in ops(g) and "pow_vjp" not in ops(cg.grad(cg.parse("J = x ** y"),
                                                                   fused=False))
    x = np.array([0.0, -0.0, 0.0, 0.0, 0.0, 2.0])
    y = np.array([2.0, 2.0, 1.0, 0.5, 3.0, 0.7])
    with np.errstate(all="ignore"):
        for f in lowerings(g):
            dx = np.asarray(f(w=1.5, x=x, y=y).dJ_dx)
            assert dx[:5].tolist() == [0.0, 0.0, 1.5, math.inf, 0.0], type(f).__name__
            assert dx[5] == pytest.approx(1.5 * 0.7 * 2.0 ** -0.3, rel=1e-15)


def test_pow_vjp_rules_against_central_differences_and_the_hessian_at_zero():
    b = cg.circuit.Builder()
    s, a, e = b.input("s", ()), b.input("a", ()), b.input("e", ())
    c = b.finish([("J", b.apply("pow_vjp", s, a, e) * s)])
    point = {"s": 0.7, "a": 0.45, "e": 1.3}
    assert cg.check_grad(c, point) < 1e-7
    h = cg.to_numpy(cg.hessian(c, layout="matrix"))(0.7, 0.45, 1.3)[-1]
    assert np.allclose(h, h.T, rtol=1e-12)
    # The Hessian of x ** y at x = 0 (through pow_vjp's jvp), against the limits.
    hx = cg.to_numpy(cg.hessian(cg.parse("J = x ** y"), layout="matrix"))
    assert np.asarray(hx(0.0, 2.0)[-1]).tolist() == [[2.0, 0.0], [0.0, 0.0]]
    assert np.asarray(hx(0.0, 3.0)[-1]).tolist() == [[0.0, 0.0], [0.0, 0.0]]
    # and grad of grad (reverse over reverse, pow_vjp's vjp)
    gx = cg.to_numpy(cg.grad(cg.grad(cg.parse("J = x ** y"), wrt="x")))
    assert [float(v) for v in gx(0.0, 2.0)[1:]] == [2.0, 0.0]


def test_pow_vjp_has_a_sympy_form_and_a_label():
    import sympy

    b = cg.circuit.Builder()
    s, a, e = b.input("s", ()), b.input("a", ()), b.input("e", ())
    c = b.finish([("p", b.apply("pow_vjp", s, a, e))])
    form = cg.to_sympy(c)
    ss, aa, ee = sympy.symbols("s a e")
    assert sympy.simplify(form.subs(aa, 2) - ss * ee / 2) == 0
    assert sympy.simplify(form.subs(aa, 0) - ss * ee * sympy.Integer(0) ** (ee - 1)) == 0
    assert PRIMITIVES["pow_vjp"].label in cg.to_dot(c).source
