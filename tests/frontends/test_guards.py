"""Branches on values, traced at a point with guards (circuitgrad/frontends/guards.py,
circuitgrad/guards.py, cg.function): random branchy programs against plain Python at many
points, one at a time and as batches; gradients against central differences away from the
guards' boundaries; refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import circuitgrad as cg

# -- random branchy programs ----------------------------------------------------------------
# A program is Python source of f(x, y) whose decisions go through _d (bool) and _i (int), so
# that a plain run records the branch it took: central differences are compared only where
# x ± h take the same branch as x.

_LEAVES = ("x", "y", "v", "0.5", "1.5", "-0.75")


@st.composite
def _expr(draw, depth=2, smooth=False):
    if depth == 0 or draw(st.booleans()):
        return draw(st.sampled_from(_LEAVES))
    a, b = draw(_expr(depth - 1, smooth)), draw(_expr(depth - 1, smooth))
    forms = ["({} + {})", "({} - {})", "({} * {})", "np.sin({})", "min({}, {})",
             "max({}, {})", "(0.5 * {} + np.cos({}))"]
    if smooth:  # min and max as Python computes them, their decision recorded
        forms = [f.replace("min(", "_min(").replace("max(", "_max(") for f in forms]
    else:
        forms.append("abs({})")
    if draw(st.integers(0, 4)) == 0:  # a conditional expression
        return f"({a} if {draw(_condition(0))} else {b})"
    form = draw(st.sampled_from(forms))
    return form.format(a, b) if form.count("{}") == 2 else form.format(a)


@st.composite
def _condition(draw, depth=1):
    a, b = draw(_expr(1)), draw(_expr(1))
    c = f"_d({a} {draw(st.sampled_from(['<', '>', '<=', '>=']))} {b})"
    if depth and draw(st.integers(0, 3)) == 0:
        other = draw(_condition(0))
        c = f"({c} {draw(st.sampled_from(['and', 'or']))} {other})"
    elif draw(st.integers(0, 5)) == 0:
        c = f"(not {c})"
    return c


@st.composite
def _block(draw, indent, depth, smooth):
    lines, pad = [], "    " * indent
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["assign", "assign", "if", "while", "range"]
                                    if depth else ["assign"]))
        if kind == "assign":
            lines.append(f"{pad}v = {draw(_expr(2, smooth))}")
        elif kind == "if":
            lines.append(f"{pad}if {draw(_condition())}:")
            lines += draw(_block(indent + 1, depth - 1, smooth))
            if draw(st.booleans()):
                lines.append(f"{pad}else:")
                lines += draw(_block(indent + 1, depth - 1, smooth))
        elif kind == "while":  # a count that depends on the values (at most 4 rounds)
            lines.append(f"{pad}k = 0")
            lines.append(f"{pad}while k < 4 and _d(v < {draw(st.sampled_from(['x', 'y', '1.0']))}"
                         "):")
            lines.append(f"{pad}    v = v + 0.25 + 0.5 * np.sin(v) ** 2")
            lines.append(f"{pad}    k += 1")
        else:  # range of int() of a value
            lines.append(f"{pad}for _ in range(_i(2.0 * x) % 3):")
            lines.append(f"{pad}    v = v * np.cos(y) + 0.125")
    return lines


@st.composite
def programs(draw, smooth=False):
    body = draw(_block(1, 2, smooth))
    return "\n".join(["def f(x, y):", "    v = x * y"] + body + [
        f"    return {draw(st.sampled_from(['v', 'v * x + y', 'np.exp(np.sin(v))']))}"])


def _compile(source: str):
    """``f`` of the source, and a plain run that also gives the decisions it took."""
    taken: list = []

    def _d(c):
        b = bool(c)
        taken.append(b)
        return b

    def _i(c):
        k = int(c)
        taken.append(k)
        return k

    space = {"np": np, "_d": _d, "_i": _i,
             "_min": lambda a, b: b if _d(b < a) else a,  # (builtins.min's own order)
             "_max": lambda a, b: b if _d(b > a) else a}
    exec(source, space)  # noqa: S102 - the test's own generated program
    f = space["f"]

    def plain(x, y):
        taken.clear()
        with np.errstate(all="ignore"):
            out = f(np.float64(x), np.float64(y))
        return np.float64(out), list(taken)

    return f, plain


_POINTS = st.lists(st.tuples(st.floats(-2.5, 2.5), st.floats(-2.5, 2.5)), min_size=6,
                   max_size=10)
_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@_SETTINGS
@given(programs(), _POINTS)
def test_random_branchy_programs_give_python_s_values_point_and_batch(source, points):
    f, plain = _compile(source)
    F = cg.function(f)
    singles = []
    for x, y in points:
        want, _ = plain(x, y)
        got = F(x, y)
        singles.append(got)
        assert np.isclose(got, want, rtol=1e-12, atol=1e-12, equal_nan=True), source
    xs, ys = np.array(points).T
    batch = F(xs, ys)
    # Point k of the batch is bit for bit the call at point k.
    assert np.array_equal(batch.view(np.int64), np.array(singles).view(np.int64)), source
    # A fresh function on the batch first (every branch traced from the batch) agrees too.
    G = cg.function(f)
    G(xs[0], ys[0])
    assert np.array_equal(G(xs, ys).view(np.int64), batch.view(np.int64)), source


@_SETTINGS
@given(programs(smooth=True), _POINTS)
def test_gradients_of_random_branchy_programs_are_central_differences(source, points):
    f, plain = _compile(source)
    grad = cg.grad(f, argnums=(0, 1))
    h, checked = 1e-6, 0
    for x, y in points:
        _, here = plain(x, y)
        diffs = []
        for dx, dy in ((h, 0.0), (0.0, h)):
            up, at_up = plain(x + dx, y + dy)
            down, at_down = plain(x - dx, y - dy)
            if at_up != here or at_down != here:
                break  # near a guard's boundary: the branch changes within h
            diffs.append((up - down) / (2 * h))
        else:
            gx, gy = grad(x, y)
            scale = 1.0 + max(abs(d) for d in diffs)
            assert abs(gx - diffs[0]) <= 1e-5 * scale, source
            assert abs(gy - diffs[1]) <= 1e-5 * scale, source
            checked += 1
    _CHECKED.append(checked)


_CHECKED: list[int] = []  # points whose gradient was compared, per program


def test_most_random_points_lie_away_from_boundaries():
    # (runs after the gradient test: its comparisons were made, not all skipped)
    if _CHECKED:
        assert sum(_CHECKED) >= 2 * len(_CHECKED), _CHECKED


# -- what the guards are and where they show --------------------------------------------


def _branchy(x, y):
    if x > y:
        r = x * y
    else:
        r = x - y
    while r < 10.0:
        r = r + abs(r) + 1.0
    return r + min(x, y) + int(x)


def test_a_trace_at_a_point_records_each_decision_as_a_guard():
    c = cg.trace(_branchy, at=(3.0, 2.0))
    g = c.meta["guards"]
    assert g.kinds == ("truth", "truth", "truth", "truth", "int")
    assert g.expected == (1.0, 1.0, 0.0, 1.0, 3.0)
    assert "x > y" in g.texts[0] and "if x > y:" in g.texts[0]
    assert cg.to_numpy(c)(3.0, 2.0) == _branchy(3.0, 2.0) == 18.0
    assert "guards (checked first" in repr(c) and "int(x) was 3" in repr(c)


def test_the_generated_source_computes_the_guards_first():
    f = cg.to_numpy(cg.trace(lambda x: x * 2.0 if x > 1.0 else -x, at=3.0))
    source = f.source
    assert source.index("def f_guards(x):") < source.index("def f(x):")
    assert "g0 = xp.astype(x > 1.0, xp.float64)" in source
    assert "bool(x > 1.0) was True" in source


def test_the_lowered_circuit_refuses_a_point_of_another_branch():
    f = cg.to_numpy(cg.trace(lambda x: x * 2.0 if x > 1.0 else -x, at=3.0))
    assert f(np.array([2.0, 5.0])).tolist() == [4.0, 10.0]
    assert f.guards_hold(np.array([0.0, 2.0])).tolist() == [False, True]
    with pytest.raises(cg.CircuitError, match="does not hold at this point"):
        f(0.0)
    with pytest.raises(cg.CircuitError, match=r"point \(1,\) of the batch"):
        f(np.array([2.0, 0.0]))


@pytest.mark.parametrize("lower", ["to_json", "scalarize"])
def test_passes_that_would_drop_guards_refuse_them(lower):
    c = cg.trace(lambda x: x if x > 0.0 else -x, at=1.0)
    with pytest.raises(cg.CircuitError, match="guards"):
        getattr(cg, lower)(c)


@pytest.mark.parametrize("lower", ["to_tape", "to_c", "to_fused"])
def test_compiled_lowerings_check_the_guards_first(lower):
    import pickle

    c = cg.trace(_branchy, at=(3.0, 2.0))
    f, want = getattr(cg, lower)(c), cg.to_numpy(c)
    assert "guards checked first" in repr(f) and "def f_guards" in f.source
    x, y = np.array([3.0, 3.5, 3.9]), np.array([2.0, 2.0, 1.5])  # the traced branch
    np.testing.assert_allclose(f(x, y), want(x, y), rtol=1e-14)
    with pytest.raises(cg.CircuitError, match=r"does not hold at point \(1,\) of the batch"):
        f(np.array([3.0, -1.0]), np.array([2.0, 2.0]))
    assert f.guards_hold(np.array([3.0, -1.0]), 2.0).tolist() == want.guards_hold(
        np.array([3.0, -1.0]), 2.0).tolist()
    g = pickle.loads(pickle.dumps(f))
    assert float(g(3.0, 2.0)) == float(f(3.0, 2.0))
    d = getattr(cg, lower)(cg.grad(c))
    for a, b in zip(d(3.0, 2.0), cg.to_numpy(cg.grad(c))(3.0, 2.0)):
        assert a == pytest.approx(b, rel=1e-14)


def test_passes_that_extend_a_circuit_keep_its_guards():
    c = cg.trace(_branchy, at=(3.0, 2.0))
    for d in (cg.grad(c), cg.jvp(c), cg.hessian(c), cg.jacobian(c), cg.simplify(c)):
        assert d.meta["guards"] is c.meta["guards"]
    with pytest.raises(cg.CircuitError, match="does not hold"):
        cg.to_numpy(cg.grad(c))(1.0, 2.0)


def test_function_traces_one_circuit_per_branch_and_names_them():
    f = cg.function(lambda x: x * x if x > 0.0 else -x)
    assert (f(3.0), f(-2.0), f(5.0)) == (9.0, 2.0, 25.0)
    assert len(f.branches()) == 2
    assert "2 branches traced" in repr(f) and "was False" in repr(f)


def test_a_batch_is_grouped_by_branch_and_scattered_back():
    f = cg.function(_branchy)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-3, 3, (2, 50))
    f(x[0], y[0])
    got = f(x, y)
    assert got.tolist() == [_branchy(np.float64(a), np.float64(b)) for a, b in zip(x, y)]
    grid = f(x[:, None], y[None, :5])  # batch axes broadcast
    assert grid.shape == (50, 5) and grid[7, 3] == f(x[7], y[3])


def test_containers_and_differently_shaped_branches():
    f = cg.function(lambda p: {"a": p["w"] * 2 if p["w"] > 0 else p["b"], "b": p["b"]})
    assert f({"w": 1.0, "b": 3.0}) == {"a": 2.0, "b": 3.0}
    assert f({"w": np.array([1.0, -1.0]), "b": np.array([3.0, 4.0])})["a"].tolist() == [2, 4]
    g = cg.function(lambda x: x[:1] if x[0] > 0 else x)
    assert g(np.array([1.0, 2.0])).tolist() == [1.0]
    assert g(np.array([-1.0, 2.0])).tolist() == [-1.0, 2.0]
    with pytest.raises(cg.CircuitError, match="differ in structure or shape"):
        g(np.array([[1.0, 2.0], [-1.0, 2.0]]))


def test_the_gradient_is_the_branch_taken_one_sided_at_a_boundary():
    def f(x):
        return x * x if x > 0.0 else 3.0 * x

    assert cg.grad(f)(2.0) == 4.0 and cg.grad(f)(-2.0) == 3.0
    assert cg.grad(f)(0.0) == 3.0  # x > 0 is False at 0: the side taken is 3x
    F = cg.function(f)
    assert cg.grad(F)(2.0) == 4.0 and cg.hessian(F)(2.0) == 2.0


def test_derivatives_of_derivatives_carry_the_inner_guards():
    def g(x):
        s = 0.0
        for _ in range(int(x[0])):
            s = s + x[1] ** 2
        return s if x[1] > 0 else -s

    outer = cg.grad(lambda x: cg.grad(g)(x) @ np.ones(2))
    assert outer(np.array([3.5, 2.0])).tolist() == [0.0, 6.0]
    assert outer(np.array([2.5, -2.0])).tolist() == [0.0, -4.0]
    assert cg.jacobian(lambda x: x * 2 if x[0] > 0 else x ** 2)(
        np.array([-1.0, 2.0])).tolist() == [[-2.0, 0.0], [0.0, 4.0]]


def test_int_is_piecewise_constant_and_float_cuts_the_derivative():
    f = cg.function(lambda x: x * int(x))
    assert (f(2.5), f(-2.5), f(0.5)) == (5.0, 5.0, 0.0)
    assert cg.grad(f)(2.5) == 2.0
    assert cg.function(lambda x: x + float(x))(2.0) == 4.0
    with pytest.raises(cg.CircuitError, match="derivative through it is lost"):
        cg.grad(lambda x: x * float(x))(2.0)
    with pytest.raises(cg.CircuitError, match="derivative through it is lost"):
        cg.grad(cg.trace(lambda x: x * float(x), at=2.0))


def test_float_guards_refuse_the_other_derivative_passes_too():
    # float(x[1]) makes x[1] a number: the pattern would miss J[0, 1] and the adjoints the
    # x[0] * d/dx[1] term, silently; both refuse instead (as grad, jvp, hessian do).
    from circuitgrad.transforms.adjoints import node_adjoints

    c = cg.trace(lambda x: x[0] * float(x[1]), at=np.array([3.0, 2.0]))
    with pytest.raises(cg.CircuitError, match="jacobian_sparsity: .*derivative through it"):
        cg.jacobian_sparsity(c)
    with pytest.raises(cg.CircuitError, match="node_adjoints: .*derivative through it"):
        node_adjoints(c)



def test_node_adjoints_of_a_branch_keep_its_guards():
    # node_adjoints rebuilds the circuit in a fresh builder: without the guards, its
    # lowering would give this branch's adjoints where the function takes the other one.
    from circuitgrad.transforms.adjoints import node_adjoints

    c = cg.trace(lambda x: x * x if x > 1.0 else -x, at=3.0)
    d = node_adjoints(c)
    assert d.meta["guards"] is c.meta["guards"]
    assert float(cg.to_numpy(d)(x=3.0)[1]) == 6.0
    with pytest.raises(cg.CircuitError, match="guard g0"):
        cg.to_numpy(d)(x=-3.0)


def test_refusals_name_what_python_and_numpy_refuse():
    with pytest.raises(cg.CircuitError, match="is nan at the trace point"):
        cg.trace(lambda x: x * int(x), at=math.nan)
    with pytest.raises(cg.CircuitError, match="ambiguous"):
        cg.trace(lambda x: x if x > 0 else -x, at=np.ones(2))
    with pytest.raises(cg.CircuitError, match="not an integer"):
        cg.trace(lambda x: [1.0, 2.0, 3.0][x], at=1.5)
    assert cg.trace(lambda x: np.arange(3.0)[x] * x, at=1.0).meta["guards"].kinds == ("int",)
    with pytest.raises(cg.CircuitError, match="without a point"):
        cg.trace(lambda x: x if x > 0 else -x)
    with pytest.raises(cg.CircuitError, match="not both"):
        cg.trace(lambda x: x, at=1.0, shapes={"x": ()})


def test_short_circuit_logic_records_only_what_python_evaluated():
    def f(x, y):
        return x if (x > 0 and y > 0) or not x < -1 else y

    c = cg.trace(f, at=(-2.0, 1.0))
    assert len(c.meta["guards"].kinds) == 2  # x > 0 False: y > 0 never evaluated
    F = cg.function(f)
    for p in [(-2.0, 1.0), (1.0, 1.0), (1.0, -1.0), (-0.5, 3.0)]:
        assert F(*p) == f(*p)


def test_float_of_a_mask_is_a_truth_guard_and_writes_into_numpy_arrays_still_refuse():
    c = cg.trace(lambda x: float(x[0] >= 0) * x[1], at=np.array([1.0, 3.0]))
    assert c.meta["guards"].kinds == ("truth",)
    assert cg.grad(lambda x: float(x[0] >= 0) * x[1])(np.array([1.0, 3.0])).tolist() == [0, 1]

    def write(x):
        g = np.zeros(2)
        g[0] = x[0] * 2.0
        return g.sum()

    with pytest.raises(cg.CircuitError, match=r"written into a NumPy array \(out\[i\] = x\)"):
        cg.trace(write, at=np.ones(2))


def test_shapes_let_a_first_call_be_a_batch_and_diagrams_show_the_guards():
    F = cg.function(lambda x, y: x @ x * y if x[0] > y else y, shapes={"x": (2,)})
    got = F(np.array([[1.0, 2.0], [-1.0, 2.0]]), 0.5)
    assert got.tolist() == [2.5, 0.5]
    dot = cg.to_dot(F.branches()[0]).source
    assert "guards, checked first" in dot and "bool(x[0] > y)" in dot


def _smooth_branches(x, y):
    r = x * y if x > y else x - y
    if r > 0.5:
        s = np.sin(r)
    else:
        s = r * r
    return s + (x if y < 0.0 else y)


def test_where_option_turns_pure_branches_into_one_circuit():
    F = cg.function(_smooth_branches, where=True)
    assert F.rewritten == 3
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-2, 2, (2, 30))
    want = [_smooth_branches(np.float64(a), np.float64(b)) for a, b in zip(x, y)]
    assert [F(a, b) for a, b in zip(x, y)] == want
    assert len(F.branches()) == 1 and F.branches()[0].meta.get("guards") is None
    assert F(x, y).tolist() == want
    assert cg.grad(F, argnums=(0, 1))(2.0, 1.0) == (1.0 * np.cos(2.0), 2.0 * np.cos(2.0) + 1)


def test_where_option_keeps_impure_or_reshaping_branches_guarded():
    calls = []

    def f(x):
        a = x if x[0] > 0 else 0.0  # sides of different shapes: the branch, guarded
        b = x * 2 if calls.append(1) is None and x[1] > 0 else x  # a call: not rewritten
        return a + b

    F = cg.function(f, where=True, shapes={"x": (2,)})
    assert F.rewritten == 1
    assert F(np.array([1.0, 2.0])).tolist() == [3.0, 6.0]
    assert F.branches()[0].meta["guards"].kinds == ("truth", "truth")
    with pytest.raises(cg.CircuitError, match="not available"):
        cg.function(eval("lambda x: x"), where=True)


@_SETTINGS
@given(programs(), _POINTS)
def test_random_programs_with_branches_as_where_give_python_s_values(source, points):
    import linecache

    source = source.replace("_d(", "(").replace("_i(", "int(")
    filename = f"<guards-where-{next(_SOURCES)}>"
    lines = [line + "\n" for line in source.splitlines()]
    linecache.cache[filename] = (len(source), None, lines, filename)  # (inspect.getsource)
    space = {"np": np}
    exec(compile(source, filename, "exec"), space)  # noqa: S102 - the test's own program
    f = space["f"]
    F = cg.function(f, where=True)
    _REWRITTEN.append(F.rewritten)
    singles = []
    for x, y in points:
        with np.errstate(all="ignore"):
            want = f(np.float64(x), np.float64(y))
        got = F(x, y)
        singles.append(got)
        assert np.isclose(got, want, rtol=1e-12, atol=1e-12, equal_nan=True), source
    xs, ys = np.array(points).T
    assert np.array_equal(F(xs, ys).view(np.int64), np.array(singles).view(np.int64)), source


_SOURCES = iter(range(10**9))
_REWRITTEN: list[int] = []  # conditionals rewritten as where, per program


def test_some_random_branches_became_where():
    # (runs after the where test: its programs had branches rewritten, not only guarded)
    if _REWRITTEN:
        assert sum(_REWRITTEN) > 0, _REWRITTEN


def test_a_function_can_lower_its_branches_with_a_compiled_lowering():
    f = cg.function(_branchy, lower=cg.to_c)
    assert float(f(3.0, 2.0)) == _branchy(3.0, 2.0)  # (the first call gives the point shapes)
    x, y = np.array([3.0, 3.5, -1.0, 0.5]), np.array([2.0, 2.0, 2.0, 0.1])
    got = f(x, y)
    want = [_branchy(a, b) for a, b in zip(x, y)]
    np.testing.assert_allclose(got, want, rtol=1e-14)
    assert len(f.branches()) >= 2
    assert all("guards checked first" in repr(b.run) for _, bs in f.cache.values()
               for b in bs.branches.values())


def test_a_branch_after_a_loop_is_guarded():
    # cg.scan traces its body into the same builder: the guard's value is computed from the
    # nodes it depends on only, not from the body's own inputs (which have no value there)
    def f(x):
        c, _ = cg.scan(lambda c, _: (c * 0.9 + 1.0, c), x, length=5)
        return c if np.sum(c) > 0 else -c

    at = np.array([1.0, 2.0])
    g = cg.trace(f, at=at)
    for lower in (cg.to_numpy, cg.to_c):
        np.testing.assert_allclose(lower(g)(at), f(at), rtol=1e-14)
        with pytest.raises(cg.CircuitError, match="does not hold"):
            lower(g)(-10 * at)
