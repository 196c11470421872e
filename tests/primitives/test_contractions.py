"""The einsum record and NumPy's contractions traced to it (einsum, tensordot, inner, vdot, kron,
cross, N-D matmul and dot): values against NumPy in every lowering, gradients three ways
(central differences, sympy through scalarize, the notes' closed forms), random subscripts,
Hessian-vector products, batches bit for bit, and the refusals."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import circuitgrad as cg
from circuitgrad.primitives import PRIMITIVES, arrays
from circuitgrad.primitives.contractions import join
from tolerances import COMPILED_RTOL, FD_ERROR, NOTES_RTOL, SYMPY_RTOL

rng = np.random.default_rng(26)

# (NumPy function of the operands, their shapes): every handler, its cases and broadcasting
CASES = [
    (lambda a, b: np.einsum("ij,jk->ik", a, b), [(2, 3), (3, 4)]),
    (lambda a, b: np.einsum("ij,jk", a, b), [(2, 3), (3, 4)]),
    (lambda a, b: np.einsum("...ij,...jk", a, b), [(5, 2, 3), (1, 3, 4)]),
    (lambda a, b: np.einsum("...ij,...jk->...ik", a, b), [(2, 1, 2, 3), (4, 3, 2)]),
    (lambda a: np.einsum("ii->i", a), [(3, 3)]),
    (lambda a: np.einsum("ii", a), [(3, 3)]),
    (lambda a: np.einsum("iji->j", a), [(3, 2, 3)]),
    (lambda a: np.einsum("iii->", a), [(2, 2, 2)]),
    (lambda a: np.einsum("...ii->...i", a), [(2, 3, 3)]),
    (lambda a: np.einsum("ij->", a), [(2, 3)]),
    (lambda a: np.einsum("ij->ji", a), [(2, 3)]),
    (lambda a, b: np.einsum("i,i", a, b), [(3,), (1,)]),
    (lambda a, b: np.einsum("ij,ij->ij", a, b), [(1, 3), (2, 3)]),
    (lambda a, b: np.einsum("i,j->ij", a, b), [(2,), (3,)]),
    (lambda a, b: np.einsum(",i->i", a, b), [(), (3,)]),
    (lambda a, b: np.einsum("ij,jk,kl->il", a, b, a.T), [(2, 3), (3, 3)]),
    (lambda a, b: np.einsum(a, [0, 1], b, [1, 2], [0, 2]), [(2, 3), (3, 4)]),
    (lambda a, b: np.einsum(a, [Ellipsis, 1], b, [1]), [(2, 3), (3,)]),
    (lambda a, b: np.einsum("bij,bjk->bik", a, b, optimize=True), [(2, 2, 3), (2, 3, 2)]),
    (lambda a, b: np.tensordot(a, b), [(2, 3, 4), (3, 4, 5)]),
    (lambda a, b: np.tensordot(a, b, axes=0), [(2,), (3,)]),
    (lambda a, b: np.tensordot(a, b, axes=1), [(2, 3), (3, 2)]),
    (lambda a, b: np.tensordot(a, b, axes=([0, 2], [2, 0])), [(2, 3, 4), (4, 5, 2)]),
    (lambda a, b: np.tensordot(a, b, axes=(1, -1)), [(2, 3), (4, 3)]),
    (lambda a, b: np.inner(a, b), [(2, 3), (4, 3)]),
    (lambda a, b: np.inner(a, b), [(3,), (3,)]),
    (lambda a, b: np.inner(a, b), [(), (3,)]),
    (lambda a, b: np.vdot(a, b), [(2, 3), (3, 2)]),
    (lambda a, b: np.kron(a, b), [(2, 3), (4,)]),
    (lambda a, b: np.kron(a, b), [(2,), (2, 2)]),
    (lambda a, b: np.kron(a, b), [(2, 1, 2), (3, 2)]),
    (lambda a, b: a @ b, [(2, 3, 4), (4,)]),
    (lambda a, b: a @ b, [(4,), (2, 4, 5)]),
    (lambda a, b: a @ b, [(2, 3, 4), (4, 2)]),
    (lambda a, b: np.matmul(a, b), [(3, 1, 2, 4), (5, 4, 2)]),
    (lambda a, b: np.dot(a, b), [(2, 3, 4), (5, 4, 2)]),
    (lambda a, b: np.dot(a, b), [(2, 3, 4), (4,)]),
    (lambda a, b: np.dot(a, b), [(4,), (2, 4, 3)]),
    (lambda a, b: a.dot(b), [(3, 2), (2, 2, 3)]),
    (lambda a, b: np.vecdot(a, b), [(2, 1, 3), (4, 3)]),
    (lambda a, b: np.matvec(a, b), [(2, 4, 3), (3,)]),
    (lambda a, b: np.vecmat(a, b), [(2, 1, 4), (5, 4, 3)]),
    (lambda a, b: np.cross(a, b), [(4, 3), (3,)]),
    (lambda a, b: np.cross(a, b, axisa=0, axisc=0), [(3, 4), (4, 3)]),
    (lambda a, b: np.cross(a, b, axisb=0, axisc=1), [(2, 1, 3), (3, 1, 4)]),
    (lambda a, b: np.cross(a, b, axis=0), [(3, 2), (3, 2)]),
    (lambda a, b: np.cross(a, b), [(2,), (2,)]),
    (lambda a, b: np.cross(a, b), [(4, 2), (3,)]),
    (lambda a, b: np.cross(a, b, axisa=0), [(3, 4), (2,)]),
    (lambda a, b: np.cross(a, b, axisa=0, axisb=1), [(2, 4), (4, 2)]),
]


def _trace(f, shapes):
    names = "abc"[:len(shapes)]
    return cg.trace(f, shapes=dict(zip(names, shapes))), names


def _scalar_objective(f, n):
    # J = Σ sin(f): a gradient that depends on every output entry differently
    if n == 1:
        return lambda a: np.sum(np.sin(f(a)))
    return lambda a, b: np.sum(np.sin(f(a, b)))


def _first(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.filterwarnings("ignore:Arrays of 2-dimensional vectors:DeprecationWarning")
@pytest.mark.parametrize("k", range(len(CASES)))
def test_values_and_gradients_against_numpy_in_every_lowering(k):
    f, shapes = CASES[k]
    xs = [rng.normal(size=s) for s in shapes]
    want = f(*xs)  # (NumPy's DeprecationWarning for cross of 2-vectors: also traced's)
    c, names = _trace(f, shapes)
    J = _scalar_objective(f, len(shapes))
    cj, _ = _trace(J, shapes)
    got = _first(cg.to_numpy(c)(*xs))
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=NOTES_RTOL, atol=1e-13)
    assert cg.check_grad(cj, dict(zip(names, xs))) < FD_ERROR
    # to_tape takes the scalar expansion; the array API path the same template
    np.testing.assert_allclose(_first(cg.to_tape(cj)(*xs)), J(*xs), rtol=COMPILED_RTOL)
    import array_api_strict as xps

    g = cg.to_numpy(cg.grad(cj))
    strict = g(*(xps.asarray(x) for x in xs))
    for u, v in zip(strict, g(*xs)):
        np.testing.assert_allclose(np.asarray(u), v, rtol=1e-12, atol=1e-13)


def test_cross_is_numpys_bit_for_bit():
    for a_shape, b_shape, kw in [((5, 3), (5, 3), {}), ((3, 5), (5, 3), {"axisa": 0}),
                                 ((4, 3), (3,), {"axisc": 0}), ((5, 2), (5, 3), {})]:
        a, b = rng.normal(size=a_shape), rng.normal(size=b_shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            want = np.cross(a, b, **kw)
            c = cg.trace(lambda a, b: np.cross(a, b, **kw), shapes={"a": a_shape, "b": b_shape})
        assert np.array_equal(_first(cg.to_numpy(c)(a, b)), want)


def test_cross_of_2_vectors_warns_as_numpy():
    with pytest.warns(DeprecationWarning, match="2-dimensional vectors"):
        cg.trace(lambda a, b: np.cross(a, b), shapes={"a": (2,), "b": (2,)})


def test_the_notes_matrix_chain_rule_for_stacks():
    # J = Σ C ⊙ (A @ B) for stacks of matrices: ∂J/∂A = C Bᵀ, ∂J/∂B = Aᵀ C, matrix by matrix
    A, B, C = rng.normal(size=(4, 2, 3)), rng.normal(size=(4, 3, 5)), rng.normal(size=(4, 2, 5))
    c = cg.trace(lambda A, B, C: np.sum(C * (A @ B)),
                 shapes={"A": A.shape, "B": B.shape, "C": C.shape})
    out = cg.to_numpy(cg.grad(c, wrt=["A", "B"]))(A, B, C)
    np.testing.assert_allclose(out.df_dA, C @ np.swapaxes(B, -1, -2), rtol=NOTES_RTOL)
    np.testing.assert_allclose(out.df_dB, np.swapaxes(A, -1, -2) @ C, rtol=NOTES_RTOL)


def test_closed_forms_of_diagonals_and_sums():
    x = rng.normal(size=(3, 3))
    # ∂ trace(X)/∂X = I, ∂ Σ_i diag(X)_i² / ∂X = 2 diag(diag X): the diagonal's scatter
    out = cg.to_numpy(cg.grad(cg.trace(lambda x: np.einsum("ii", x), shapes={"x": (3, 3)})))(x)
    assert np.array_equal(out.df_dx, np.eye(3))
    c = cg.trace(lambda x: np.sum(np.einsum("ii->i", x) ** 2), shapes={"x": (3, 3)})
    np.testing.assert_allclose(cg.to_numpy(cg.grad(c))(x).df_dx, 2 * np.diag(np.diag(x)),
                               rtol=NOTES_RTOL)
    # 'ij->i' weighted by w: ∂/∂x = w broadcast along j (no einsum for it: the letter j is
    # only x's)
    w = rng.normal(size=3)
    c = cg.trace(lambda x, w: np.sum(w * np.einsum("ij->i", x)), shapes={"x": (3, 4), "w": (3,)})
    g = cg.grad(c, wrt="x")
    assert np.array_equal(cg.to_numpy(g)(rng.normal(size=(3, 4)), w).df_dx,
                          np.broadcast_to(w[:, None], (3, 4)))
    # vdot: ∂/∂a = b; kron's adjoint takes each block back
    a, b = rng.normal(size=(2, 2)), rng.normal(size=(2, 3))
    c = cg.trace(lambda a, b: np.sum(np.kron(a, b) * np.kron(np.ones((2, 2)), b)),
                 shapes={"a": (2, 2), "b": (2, 3)})
    np.testing.assert_allclose(cg.to_numpy(cg.grad(c, wrt="a"))(a, b).df_da,
                               np.full((2, 2), np.sum(b * b)), rtol=NOTES_RTOL)


def test_gradients_against_sympy_through_scalarize():
    import sympy

    c = cg.trace(lambda a, b: np.sum(np.sin(np.einsum("ij,jk,k->i", a, b, b[0]))),
                 shapes={"a": (2, 2), "b": (2, 2)})
    s = cg.scalarize(c)
    expr = cg.to_sympy(s)
    point = {name: float(v) for name, v in zip(s.inputs, rng.normal(size=len(s.inputs)))}
    symbols = {sympy.Symbol(n): v for n, v in point.items()}
    got = cg.to_numpy(cg.grad(s))(**point)
    assert float(got[0]) == pytest.approx(float(expr.subs(symbols)), rel=SYMPY_RTOL)
    for name, value in zip(s.inputs, got[1:]):
        want = float(sympy.diff(expr, sympy.Symbol(name)).subs(symbols))
        assert float(value) == pytest.approx(want, rel=SYMPY_RTOL, abs=1e-14)
    # the tensor circuit's gradient is the scalar circuit's
    a, b = (np.array([point[f"{n}_{i}_{j}"] for i in range(2) for j in range(2)]).reshape(2, 2)
            for n in "ab")
    tensor = cg.to_numpy(cg.grad(c))(a, b)
    np.testing.assert_allclose(tensor.df_da.ravel(), got[1:5], rtol=COMPILED_RTOL)


def test_hvp_through_einsum_against_differences_of_the_gradient():
    shapes = {"a": (2, 3), "b": (3, 2)}
    c = cg.trace(lambda a, b: np.sum(np.einsum("ij,jk,ki->i", a, b, a @ b)),
                 shapes=shapes)
    h = cg.to_numpy(cg.hvp(c))
    g = cg.to_numpy(cg.grad(c))
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(3, 2))
    va, vb = rng.normal(size=(2, 3)), rng.normal(size=(3, 2))
    out = h(a, b, va, vb)
    eps = 1e-6
    plus, minus = g(a + eps * va, b + eps * vb), g(a - eps * va, b - eps * vb)
    np.testing.assert_allclose(out.Hv_a, (plus.df_da - minus.df_da) / (2 * eps), rtol=1e-6,
                               atol=1e-8)
    np.testing.assert_allclose(out.Hv_b, (plus.df_db - minus.df_db) / (2 * eps), rtol=1e-6,
                               atol=1e-8)


def test_a_batch_equals_its_points_bit_for_bit():
    c = cg.trace(lambda a, b: np.einsum("ij,jk,k->i", a, b, b[0]) + np.tensordot(a, b, 1)[:, 0],
                 shapes={"a": (3, 4), "b": (4, 2)})
    f = cg.to_numpy(cg.grad(cg.trace(lambda a, b: np.sum(np.sin(
        np.einsum("ij,jk,k->i", a, b, b[0]))), shapes={"a": (3, 4), "b": (4, 2)})))
    A, B = rng.normal(size=(5, 3, 4)), rng.normal(size=(4, 2))
    batch = cg.to_numpy(c)(A, B)
    grads = f(A, B)
    for k in range(5):
        assert np.array_equal(batch[k], cg.to_numpy(c)(A[k], B))
        point = f(A[k], B)
        assert np.array_equal(grads.df_da[k], point.df_da)
        assert np.array_equal(grads.df_db[k], point.df_db)


def test_sparsity_of_einsum_is_the_jacobians_structure():
    c = cg.trace(lambda a, b: np.einsum("ij,jk->ik", a, b) + np.einsum("ii->i", a)[:, None],
                 shapes={"a": (3, 3), "b": (3, 2)})
    pattern = cg.jacobian_sparsity(c).toarray()
    dense = cg.to_numpy(cg.jacobian(c))(rng.normal(size=(3, 3)), rng.normal(size=(3, 2)))
    jac = np.concatenate([np.reshape(dense[1], (6, 9)), np.reshape(dense[2], (6, 6))], axis=1)
    assert np.array_equal(pattern, jac != 0)


@st.composite
def _contractions(draw):
    sizes = dict(zip("abcd", draw(st.lists(st.integers(1, 3), min_size=4, max_size=4))))
    n = draw(st.integers(1, 3))
    terms = [draw(st.lists(st.sampled_from("abcd"), max_size=3)) for _ in range(n)]
    used = sorted(set("".join("".join(t) for t in terms)))
    output = draw(st.permutations(used)) if used else []
    output = output[:draw(st.integers(0, len(output)))]
    subscripts = ",".join("".join(t) for t in terms) + "->" + "".join(output)
    # now and then an axis of length 1: NumPy broadcasts it (or refuses, in a diagonal)
    ones = draw(st.lists(st.booleans(), min_size=12, max_size=12))
    shapes = [tuple(1 if ones[3 * k + j] and draw(st.booleans()) else sizes[c]
                    for j, c in enumerate(t)) for k, t in enumerate(terms)]
    if draw(st.booleans()):  # NumPy's ellipsis in front of the first operand's letters
        head = draw(st.sampled_from([(), (2,), (1, 3), (2, 1)]))
        inputs, out = subscripts.split("->")
        subscripts = "..." + inputs + "->..." + out
        shapes[0] = head + shapes[0]
    return subscripts, shapes


@pytest.mark.filterwarnings("ignore:numpy.sum of a 0-d traced value:UserWarning")
@settings(max_examples=60, deadline=None)
@given(_contractions())
def test_random_subscripts_value_gradient_and_tangent(case):
    subscripts, shapes = case
    xs = [rng.normal(size=s) for s in shapes]
    names = "xyz"[:len(xs)]
    args = ", ".join(names)
    f = eval(f"lambda {args}: np.einsum({subscripts!r}, {args})")  # noqa: S307
    try:
        f(*xs)
    except ValueError:  # NumPy refuses these shapes: so does the trace, by name
        with pytest.raises(cg.ShapeError, match="numpy.einsum"):
            cg.trace(f, shapes=dict(zip(names, shapes)))
        return
    c = cg.trace(f, shapes=dict(zip(names, shapes)))
    np.testing.assert_allclose(_first(cg.to_numpy(c)(*xs)), np.einsum(subscripts, *xs),
                               rtol=1e-12, atol=1e-13)
    J = eval(f"lambda {args}: np.sum(np.sin(np.einsum({subscripts!r}, {args})))")  # noqa: S307
    cj = cg.trace(J, shapes=dict(zip(names, shapes)))
    assert cg.check_grad(cj, dict(zip(names, xs))) < FD_ERROR
    # the dot-product identity ties the adjoint to the tangent: ⟨t, ∇J⟩ = J̇
    ts = [rng.normal(size=s) for s in shapes]
    grads = cg.to_numpy(cg.grad(cj))(*xs)[1:]
    tangent = cg.to_numpy(cg.jvp(cj))(*xs, *ts)[1]
    assert sum(np.sum(t * g) for t, g in zip(ts, grads)) == pytest.approx(float(tangent),
                                                                         rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(_first(cg.to_tape(cj)(*xs)), J(*xs), rtol=COMPILED_RTOL)


@pytest.mark.parametrize("call, match", [
    (lambda a, b: np.einsum("ij,jk->ik", a, a), "letter 'j' has lengths"),
    (lambda a, b: np.einsum("ij->ii", a), "distinct letters"),
    (lambda a, b: np.einsum("ij->k", a), "distinct letters"),
    (lambda a, b: np.einsum("...j->j", b), "no '...'"),
    (lambda a, b: np.einsum("ijk", a), "subscripts 'ijk' for an operand of shape"),
    (lambda a, b: np.einsum("ij,j", a), "2 operand subscripts"),
    (lambda a, b: np.einsum("i$", a), "not a letter"),
    (lambda a, b: np.einsum("ij", a, dtype=np.float32), "dtype= cannot be traced"),
    (lambda a, b: np.einsum("ij", a, optimize="fast"), "optimize='fast'"),
    (lambda a, b: np.tensordot(a, b, axes=([0], [0])), "shape-mismatch"),
    (lambda a, b: np.inner(a, b), "the last axes differ"),
    (lambda a, b: np.dot(b, a), "not aligned"),
    (lambda a, b: b @ a, "do not fit"),
    (lambda a, b: np.cross(a, a), "dimension must be 2 or 3"),
    (lambda a, b: np.vdot(a, b), "do not pair"),
])
def test_refusals_name_the_numpy_function_and_the_shapes(call, match):
    with pytest.raises(cg.CircuitError, match=match):
        cg.trace(call, shapes={"a": (2, 4), "b": (3, 2, 5)})


def test_json_round_trip_keeps_the_subscripts():
    c = cg.trace(lambda a, b: np.einsum("ij,jk->ik", a, b), shapes={"a": (2, 3), "b": (3, 4)})
    d = cg.from_json(cg.to_json(c))
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(3, 4))
    assert np.array_equal(cg.to_numpy(d)(a, b), cg.to_numpy(c)(a, b))
    assert "ij,jk-&gt;ik" in cg.to_dot(c).source  # the label: NumPy's string


def test_einsum_path_plans_from_the_shapes():
    def f(a, b):
        path, _ = np.einsum_path("ij,jk->ik", a, b, optimize="greedy")
        return np.einsum("ij,jk->ik", a, b, optimize=path)

    c = cg.trace(f, shapes={"a": (2, 3), "b": (3, 4)})
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(3, 4))
    np.testing.assert_allclose(cg.to_numpy(c)(a, b), a @ b, rtol=NOTES_RTOL)


def test_scalarize_refuses_a_huge_einsum_naming_to_numpy():
    c = cg.trace(lambda a, b: np.einsum("ij,jk->ik", a, b), shapes={"a": (200, 200),
                                                                     "b": (200, 200)})
    with pytest.raises(cg.CircuitError, match=r"einsum 'ij,jk->ik' .* to_numpy runs it"):
        cg.scalarize(c)
    with pytest.raises(cg.CircuitError, match=r"8000000 scalar products, more than"):
        cg.to_tape(c)


def test_the_record_takes_only_normalized_subscripts():
    shape = PRIMITIVES["einsum"].shape
    assert shape((2, 3), (3, 4), subscripts=join(["ij", "jk"], "ik")) == (2, 4)
    for shapes, subscripts, match in [
            (((3, 3),), "ii->i", "a letter twice"), (((2, 3), (3, 4)), "ij,jk->ii", "distinct"),
            (((2, 3), (3, 4)), "ij,jk->ikl", "distinct"),
            (((2, 3), (3,)), "ij->i", "1 operand subscripts for 2"),
            (((2, 3), (4,)), "ij,j->i", "letter 'j' has lengths")]:
        inputs, output = subscripts.split("->")
        with pytest.raises(cg.ShapeError, match=match):
            shape(*shapes, subscripts=join(inputs.split(","), output))
    with pytest.raises(cg.ShapeError, match="label tuples"):
        shape((2,), subscripts=((0,), (52,)))


def test_the_standard_helper_is_the_numpy_algorithm():
    import array_api_strict as xps

    a, b = rng.normal(size=(4, 2, 3)), rng.normal(size=(3, 5))
    got = arrays.helper("einsum", xps)("...ij,...jk->...ik", xps.asarray(a), xps.asarray(b))
    np.testing.assert_allclose(np.asarray(got), a @ b, rtol=1e-13)


def test_programs_write_stacked_matmul_as_traced_functions_do():
    c = cg.parse("J = sum(sin(A @ B))", shapes={"A": (2, 3, 4), "B": (4, 5)})
    assert "einsum" in c.columns.ops
    A, B = rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 5))
    assert float(cg.to_numpy(c)(A, B)) == pytest.approx(float(np.sum(np.sin(A @ B))), rel=1e-13)
    assert cg.check_grad(c, {"A": A, "B": B}) < FD_ERROR
    with pytest.raises(cg.ParseError, match="line 1, column 9: numpy.matmul: shapes"):
        cg.parse("J = sum(A @ B)", shapes={"A": (2, 3, 4), "B": (3, 5)})
