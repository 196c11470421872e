"""The NumPy lowering: source, calling conventions, batches, hostile names, pickling."""

import pickle

import numpy as np
import pytest

import circuitgrad as cg


def test_source_is_readable_and_names_come_from_the_program():
    f = cg.to_numpy(cg.parse("z = w*x + b\na = relu(z)\nJ = 0.5*(a - y)**2"))
    assert f.source.splitlines() == [
        "def f(w, x, b, y):",
        "    v2 = w * x",
        "    z = v2 + b",
        "    a = xp.maximum(z, 0.0)",
        "    v8 = a - y",
        "    v9 = xp.square(v8)",
        "    J = 0.5 * v9",
        "    return J",
    ]


def test_positional_keyword_and_batch_calls():
    f = cg.to_numpy(cg.parse("sin(x)*y + exp(x)"))
    expected = np.sin(1.0) * 2.0 + np.exp(1.0)
    assert f(x=1.0, y=2.0) == expected
    assert f(1.0, 2.0) == expected
    xs = np.linspace(0, 1, 10**6)
    np.testing.assert_array_equal(f(x=xs, y=2.0), np.sin(xs) * 2.0 + np.exp(xs))
    assert f(1, 2) == expected  # integers are converted to float64


def test_outputs_that_ignore_the_batch_are_broadcast():
    f = cg.to_numpy(cg.parse("u = 2*x\nv = 3.0 + 0*y", outputs=["u", "v"]))
    u, v = f(x=np.arange(3.0), y=1.0)
    assert u.shape == v.shape == (3,)


def test_calling_errors():
    f = cg.to_numpy(cg.parse("x*y"))
    with pytest.raises(TypeError, match="missing inputs \\['y'\\]"):
        f(1.0)
    with pytest.raises(TypeError, match="no input 'z'"):
        f(1.0, 2.0, z=3.0)
    with pytest.raises(TypeError, match="twice"):
        f(1.0, x=2.0)
    with pytest.raises(TypeError, match="takes 2 inputs"):
        f(1.0, 2.0, 3.0)
    with pytest.raises(TypeError, match="not a number"):
        f("a", 2.0)


@pytest.mark.parametrize("name", ["np", "_np", "xp", "__import__", "exp", "sin", "v1", "f", "match",
                                  "print", "_k0", "r0", "θ", "ﬁ"])
def test_hostile_input_names(name):
    b = cg.circuit.Builder()
    x = b.input(name)
    y = b.input("other")
    c = b.finish([("out", cg.sin(x) * y + cg.exp(x))])
    f = cg.to_numpy(c)
    assert f(**{name: 0.5, "other": 2.0}) == np.sin(0.5) * 2.0 + np.exp(0.5)
    assert f(0.5, 2.0) == np.sin(0.5) * 2.0 + np.exp(0.5)


def test_parsed_np_and_import_names_evaluate():
    f = cg.to_numpy(cg.parse("np * __import__ + exp"))
    assert f(np=2.0, __import__=3.0, exp=1.0) == 7.0


def test_constants_print_exactly():
    f = cg.to_numpy(cg.parse("x * 0.1 + 1e300 * 1e300 - x * -2.5"))
    assert "xp.inf" in f.source and "x * (-2.5)" in f.source
    assert f(1.0) == 0.1 + np.inf + 2.5


def test_interpreter_and_compiled_code_agree_bit_for_bit():
    text = "\n".join(["v0 = x*y"] + [f"v{i} = sin(v{i-1}) * y + v{i-1} / (1.5 + x*x)"
                                     for i in range(1, 200)])
    c = cg.grad(cg.parse(text))
    xs, ys = np.linspace(-1, 1, 7), np.linspace(0.5, 2, 7)
    a = cg.to_numpy(c, mode="compile")(xs, ys)
    b = cg.to_numpy(c, mode="interpret")(xs, ys)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_large_circuits_use_registers():
    text = "\n".join(["v0 = x"] + [f"v{i} = sin(v{i-1})" for i in range(1, 3000)])
    f = cg.to_numpy(cg.parse(text), mode="compile")
    assert "r1 = xp.sin(x)" in f.source
    assert len({line.split(" = ")[0] for line in f.source.splitlines()[1:-1]}) < 5


def test_generated_functions_pickle():
    f = cg.to_numpy(cg.grad(cg.parse("sin(x)*y")))
    g = pickle.loads(pickle.dumps(f))
    assert g(0.3, 2.0) == f(0.3, 2.0)
    assert g.source == f.source


def test_constant_outputs_have_the_same_type_as_the_others():
    out = cg.to_numpy(cg.grad(cg.parse("J = 2*x", inputs=["x", "y"])))(1.0, 5.0)
    assert all(type(v) is np.float64 for v in out)


def test_derivative_code_has_a_section_per_pass_and_one_name_per_node():
    c = cg.parse("J = x*x*y")
    source = cg.to_numpy(cg.hvp(c)).source.splitlines()
    heads = [line.strip() for line in source if line.strip().startswith("# ")]
    assert [h.split(":")[0] for h in heads] == ["# forward", "# backward", "# tangent"]
    tangent = next(k for k, line in enumerate(source) if line.strip().startswith("# tangent"))
    first_dot = next(k for k, line in enumerate(source) if line.startswith("    x_bar_dot = "))
    backward = next(k for k, line in enumerate(source) if line.strip().startswith("# backward"))
    assert backward < tangent < first_dot
    gg = cg.grad(cg.grad(c), output="dJ_dx")
    names = [gg.name(i) for i in range(len(gg)) if gg.name(i)]
    assert len(names) == len(set(names)) and "x_bar_2" in names
    code = cg.to_numpy(gg).source
    assert code.count("    x_bar = ") == 1 and "x_bar_2 = " in code


def test_long_index_lists_are_globals_not_literals():
    # A take of 10⁴ indices as a literal made Python's compile take seconds (a bundle-
    # adjustment Jacobian: 3.3 s of 9 s building); as a global the same list, no compile.
    picks = np.random.default_rng(0).integers(0, 50, 10_000)
    c = cg.trace(lambda x: np.sum(x[picks] ** 2), shapes={"x": (50,)})
    f = cg.to_numpy(cg.grad(c))
    assert "_ix0" in f.source and len(f.source) < 2_000
    x = np.linspace(-1, 1, 50)
    out = f(x)
    assert out[0] == np.sum(x[picks] ** 2)
    np.testing.assert_allclose(out[1], 2 * x * np.bincount(picks, minlength=50), rtol=1e-13)
    np.testing.assert_array_equal(cg.to_numpy(c, mode="interpret")(x), out[0])
    # held as read-only intp arrays: NumPy converted a list of 1.2·10⁶ indices on every call
    # (~50 ms of a bundle-adjustment Jacobian's evaluation)
    lists = [v for k, v in f._namespace.items() if k.startswith("_ix")]
    assert lists and all(isinstance(v, np.ndarray) and v.dtype == np.intp
                         and not v.flags.writeable for v in lists)
    np.testing.assert_array_equal(f._namespace["_ix0"], picks)


def test_long_index_lists_bind_to_other_array_libraries():
    # the hoisted intp arrays go to another library's take and put_add as Python ints
    torch = pytest.importorskip("torch")
    picks = np.random.default_rng(1).integers(0, 50, 1_000)
    c = cg.trace(lambda x: np.sum(x[picks] ** 2), shapes={"x": (50,)})
    f = cg.to_numpy(cg.grad(c))
    x = np.linspace(-1, 1, 50)
    want, got = f(x), f(torch.tensor(x))
    np.testing.assert_allclose(got[0].numpy(), want[0], rtol=1e-13)
    np.testing.assert_allclose(got[1].numpy(), want[1], rtol=1e-13)
