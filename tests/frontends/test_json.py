"""Saved circuits: to_json / from_json round trips, and from_json on untrusted text."""

import json
import math
import os
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import circuitgrad as cg
from circuitgrad.builder import Builder
from circuitgrad.frontends import json as reader
from circuitgrad.lower import json as writer
from strategies import programs

# Examples per fuzzing target; raise it for a long run: CIRCUITGRAD_FUZZ=20000 pytest ...
FUZZ_EXAMPLES = int(os.environ.get("CIRCUITGRAD_FUZZ", "300"))


def round_trip(c):
    text = cg.to_json(c)
    d = cg.from_json(text)
    d.validate()
    assert cg.to_json(d) == text  # the saved text is a fixed point
    return d


def assert_same_circuit(c, d):
    assert (d.inputs, d.outputs, d.size, len(d)) == (c.inputs, c.outputs, c.size, len(c))
    assert d.input_shapes == c.input_shapes and d.output_shapes == c.output_shapes
    assert d.names == c.names and d.meta == c.meta
    assert cg.to_numpy(d).source == cg.to_numpy(c).source


def outputs(c, point):
    values = cg.to_numpy(c)(**point)
    return values if len(c.outputs) > 1 else (values,)


def assert_same_values(c, d, point):
    for u, v in zip(outputs(c, point), outputs(d, point)):
        np.testing.assert_array_equal(u, v)


# -- round trips ------------------------------------------------------------------------------
@settings(max_examples=60)
@given(programs())
def test_round_trip_of_random_programs_and_their_gradients(case):
    text, point, _ = case
    c = cg.parse(text)
    for circuit in (c, cg.grad(c)):
        d = round_trip(circuit)
        assert_same_circuit(circuit, d)
        assert_same_values(circuit, d, {k: point[k] for k in circuit.inputs})


def test_round_trip_keeps_special_constants_bit_for_bit():
    b = Builder()
    x = b.input("x")
    values = [0.1, -0.0, 0.0, 5e-324, 1.7976931348623157e308, math.inf, -math.inf, math.nan]
    outs = [(f"o{k}", x * v) for k, v in enumerate(values)]
    arr = np.array([[1.5, -0.0, np.nan], [np.inf, -np.inf, 1e-300]])
    outs.append(("arr", x * arr))
    c = b.finish(outs)
    d = round_trip(c)
    assert_same_circuit(c, d)
    with np.errstate(all="ignore"):
        for u, v in zip(cg.to_numpy(c)(x=2.0), cg.to_numpy(d)(x=2.0)):
            assert np.asarray(u).tobytes() == np.asarray(v).tobytes()
    saved = json.loads(cg.to_json(c))
    values_saved = [n["value"] for n in saved["nodes"] if n["op"] == "const"]
    assert "nan" in values_saved and "-inf" in values_saved and -0.0 in values_saved


def test_round_trip_of_tensor_circuits_and_their_gradients():
    shapes = {"W": (3, 4), "u": (4,), "b": (3,), "y": (3,), "X": (5, 4)}
    text = ("z = W @ u + b\na = sigmoid(z)\nh = mean(X @ W.T, axis=0)\n"
            "J = 0.5 * sum(square(a - y)) + sum(h * b) + sum(outer(u, b))")
    c = cg.parse(text, shapes=shapes)
    rng = np.random.default_rng(0)
    point = {k: rng.normal(size=s) for k, s in shapes.items()}
    for circuit in (c, cg.grad(c)):
        d = round_trip(circuit)
        assert_same_circuit(circuit, d)
        assert_same_values(circuit, d, point)
    ops = {n["op"] for n in json.loads(cg.to_json(cg.grad(c)))["nodes"]}
    assert {"matmul", "transpose", "mean", "outer", "sum"} <= ops


def test_round_trip_of_grad_of_grad_and_hostile_names():
    b = Builder()
    x, y = b.input("x"), b.input("match")
    z = b.input("θ y\n\"quoted\"")
    c = b.finish([("out", cg.sin(x) * y + z * x * x)])
    g = cg.grad(cg.grad(c, wrt="x"), output="dout_dx")
    d = round_trip(g)
    assert_same_circuit(g, d)
    assert_same_values(g, d, {"x": 0.3, "match": 2.0, "θ y\n\"quoted\"": -1.0})


def test_documented_schema_example():
    text = writer.to_json(cg.parse("z = w*x + b\nJ = sin(z)"))
    doc = json.loads(text)
    assert doc["format"] == writer.FORMAT == reader.FORMAT
    assert doc["version"] == writer.VERSION and writer.VERSION in reader.VERSIONS
    assert doc["inputs"] == ["w", "x", "b"] and doc["outputs"] == [["J", 5]]
    assert doc["nodes"][4] == {"op": "add", "args": [2, 3], "name": "z"}
    assert len(text.splitlines()) == 5 + len(doc["nodes"])  # one node a line


def test_bytes_are_read_as_utf8():
    c = cg.parse("θ * 2")
    assert cg.from_json(cg.to_json(c).encode("utf-8")).inputs == ("θ",)


def test_large_circuit_round_trip_is_linear_and_iterative():
    n = 30_000
    b = Builder()
    v = b.input("x")
    for _ in range(n):
        v = cg.sin(v) + 0.5 * v
    c = b.finish([("J", v)])
    d = round_trip(c)
    assert len(d) == len(c)
    assert cg.to_numpy(d)(0.3) == cg.to_numpy(c)(0.3)


# -- untrusted text ---------------------------------------------------------------------------
def document(nodes, inputs=("x",), outputs=(("f", 1),), **extra):
    doc = {"format": "circuitgrad.circuit", "version": 1,
           "inputs": list(inputs) if isinstance(inputs, tuple) else inputs,
           "outputs": [list(o) for o in outputs] if isinstance(outputs, tuple) else outputs,
           "nodes": nodes}
    doc.update(extra)
    return json.dumps(doc)


X = {"op": "input", "input": "x"}
SIN = {"op": "sin", "args": [0]}


@pytest.mark.parametrize("text, message", [
    (b"", "invalid JSON at line 1, column 1"),  # (bytes: a str not starting with { is a path)
    ("{", "invalid JSON"),
    (b"[1, 2]", "is a JSON object"),
    ("[1, 2]", "cannot read '\\[1, 2\\]'.*starts with '{'"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ('{"a": ' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
    ('{"format": "x"}', "'format' must be"),
    (document([X, SIN]).replace('"version": 1', '"version": 2'), "unsupported version 2"),
    (document([X, SIN]).replace('"version": 1', '"version": true'), "unsupported version"),
    (document([X, SIN], junk=1), "unknown field 'junk'"),
    (document([X, SIN]).replace('"inputs": ["x"], ', ""), "missing field 'inputs'"),
    (document({"0": X}), "'nodes' must be a list"),
    (document([X, {"op": "sinq", "args": [0]}]), "node 1: unknown op 'sinq'"),
    (document([X, {"op": "__import__", "args": [0]}]), "node 1: unknown op"),
    (document([X, {"op": 3, "args": [0]}]), "node 1: 'op' must be"),
    (document([X, {"op": "sin", "args": [0, 0]}]), r"node 1: sin takes 1 argument\(s\), got 2"),
    (document([X, {"op": "add", "args": [0]}]), "node 1: add takes 2"),
    (document([X, {"op": "sin", "args": [1]}]), "node 1: argument 1 names itself"),
    (document([X, {"op": "sin", "args": [2]}, SIN]), "node 1: argument 2 names a later node"),
    (document([X, {"op": "sin", "args": [-1]}]), "node 1: argument -1 names no node"),
    (document([X, {"op": "sin", "args": ["0"]}]), "node 1: argument '0' is not a node index"),
    (document([X, {"op": "sin", "args": [True]}]), "node 1: argument True is not a node"),
    (document([X, {"op": "sin", "args": [0.0]}]), "node 1: argument 0.0 is not a node"),
    (document([X, {"op": "sin"}]), "node 1: 'args' must be a list"),
    (document([X, {"op": "sin", "args": [0], "code": "x"}]), "node 1: unknown field 'code'"),
    (document([X, X, SIN]), "node 1: duplicate input name 'x'"),
    (document([{"op": "input", "input": 7}, SIN]), "node 0: 'input' must be a string"),
    (document([X, SIN], inputs=["x", "y"]), "'inputs' .* must list each input node"),
    (document([X, SIN], inputs=[]), "must list each input node"),
    (document([X, SIN], inputs="x"), "'inputs' must be a list"),
    (document([X, SIN], outputs=[["f", 1], ["f", 0]]), "output 1: duplicate output name"),
    (document([X, SIN], outputs=[["f", 2]]), r"output 0: 2 is not a node index \(0..1\)"),
    (document([X, SIN], outputs=[["f"]]), "output 0: must be a \\[name, node\\] pair"),
    (document([X, SIN], outputs={"f": 1}), "'outputs' must be a list"),
    (document([X, {"op": "const", "value": "abc"}, {"op": "add", "args": [0, 1]}],
              outputs=[["f", 2]]), "node 1: constant 'abc' is not a number"),
    (document([X, {"op": "const", "value": None}]), "node 1: constant None is not a number"),
    (document([X, {"op": "const", "value": [1.0, 2.0]}]), "node 1: an array constant needs"),
    (document([X, {"op": "const"}]), "node 1: a constant needs a 'value'"),
    (document([X, {"op": "const", "value": [1.0], "shape": [2]}]), "needs 2 elements, got 1"),
    (document([X, {"op": "const", "value": 1e308}]).replace("1e+308", "1e999"),
     "too large for a float64"),
    (document([X, {"op": "const", "value": 1}]).replace('"value": 1', '"value": ' + "9" * 400),
     "too large for a float64"),
    (document([X, {"op": "const", "value": 1}]).replace('"value": 1', '"value": ' + "9" * 5000),
     "unreadable JSON"),
    (document([X, {"op": "const", "value": 1}]).replace('"value": 1', '"value": NaN'),
     "NaN is not JSON"),
    (document([{"op": "input", "input": "x", "shape": [-1]}, SIN]), "node 0: shape must be"),
    (document([{"op": "input", "input": "x", "shape": [2**70]}, SIN]), "node 0: shape must be"),
    (document([{"op": "input", "input": "x", "shape": [2**30] * 3}, SIN]), "more than"),
    (document([{"op": "input", "input": "x", "shape": [1] * 40}, SIN]), "40 dimensions"),
    (document([{"op": "input", "input": "x", "shape": "3"}, SIN]), "shape must be a list"),
    (document([X, {"op": "sin", "args": [0], "shape": [3]}]),
     r"node 1: recorded shape \(3,\) is not the inferred shape \(\)"),
    (document([{"op": "input", "input": "x", "shape": [2, 3, 4]},
               {"op": "matmul", "args": [0, 0]}]), "node 1: matmul: operands must be"),
    (document([{"op": "input", "input": "x", "shape": [3]},
               {"op": "sum", "args": [0], "params": {"axis": 5}}]), "node 1: sum: axis 5"),
    (document([{"op": "input", "input": "x", "shape": [3]},
               {"op": "sum", "args": [0], "params": {"axis": "0"}}]), "must be an integer"),
    (document([{"op": "input", "input": "x", "shape": [3]},
               {"op": "sum", "args": [0], "params": {"axis": 10**30}}]), "must be an integer"),
    (document([{"op": "input", "input": "x", "shape": [3]},
               {"op": "sum", "args": [0], "params": {"keepdims": 1}}]), "unknown param"),
    (document([X, {"op": "sin", "args": [0], "params": {"axis": 0}}]), "sin takes no params"),
    (document([{"op": "input", "input": "x", "shape": [2, 3]},
               {"op": "sum_to", "args": [0], "params": {"shape": [3], "ndim": 7}}]),
     "ndim=7 is not the argument's ndim 2"),
    (document([{"op": "input", "input": "x", "shape": [3]},
               {"op": "broadcast_to", "args": [0], "params": {"shape": [3, 4], "axis": 5}}]),
     "axis=5 is out of range"),
    (document([{"op": "input", "input": "x", "shape": [3]},
               {"op": "broadcast_to", "args": [0], "params": {"shape": [2]}}]),
     "node 1: broadcast_to"),
    (document([X, {"op": "const", "value": [1.0] * 5000, "shape": [5000]},
               {"op": "outer", "args": [1, 1]}]), "node 2: folding outer on constants"),
    (document([X, SIN], meta={"forward_count": 99}), "meta 'forward_count'"),
    (document([X, SIN], meta={"adjoint_of": [[1, 9]]}), "meta 'adjoint_of'"),
    (document([X, SIN], meta={"x": {"y": 1}}), "meta 'x': unsupported value"),
    ('{"format": "circuitgrad.circuit", "format": "x"}', "key 'format' twice"),
    ("\ud800", "cannot read"),
])
def test_bad_documents_raise_circuit_errors_naming_the_problem(text, message):
    with pytest.raises(cg.CircuitError, match=message):
        cg.from_json(text)


def test_shape_mismatch_is_a_shape_error():
    text = document([{"op": "input", "input": "x", "shape": [3]},
                     {"op": "input", "input": "y", "shape": [4]},
                     {"op": "add", "args": [0, 1]}], inputs=["x", "y"], outputs=[["f", 2]])
    with pytest.raises(cg.ShapeError, match="node 2: add: shapes"):
        cg.from_json(text)


def test_non_text_is_refused():
    for value in (None, 3, {"format": 1}, b"\xff\xfe"):
        with pytest.raises(cg.CircuitError):
            cg.from_json(value)


def test_nothing_is_evaluated_or_generated_from_names():
    # A name is data: it reaches neither the builder's code nor the generated source as code.
    evil = "__import__('os').system('echo hacked')"
    text = document([{"op": "input", "input": evil}, {"op": "sin", "args": [0], "name": evil}],
                    inputs=[evil], outputs=[[evil, 1]])
    c = cg.from_json(text)
    f = cg.to_numpy(c)
    assert "system" not in f.source and float(f(0.5)) == np.sin(0.5)


# -- fuzzing: random JSON, and valid documents with one field mutated -------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=20)


def only_circuit_errors(text):
    try:
        c = cg.from_json(text)
    except cg.CircuitError:
        return None
    c.validate()
    return c


@settings(max_examples=FUZZ_EXAMPLES)
@given(json_values)
def test_random_json_raises_only_circuit_errors(value):
    only_circuit_errors(json.dumps(value))


@settings(max_examples=FUZZ_EXAMPLES)
@given(st.text(max_size=80))
def test_random_text_raises_only_circuit_errors(text):
    only_circuit_errors(text)


BASE = json.loads(cg.to_json(cg.grad(cg.parse(
    "z = W @ u + b\nJ = sum(sigmoid(z) * 2.5) + mean(W, axis=1) @ b",
    shapes={"W": (3, 4), "u": (4,), "b": (3,)}))))


def paths(value, prefix=()):
    """Every path into a JSON value (lists by index, objects by key)."""
    yield prefix
    if isinstance(value, list):
        for k, v in enumerate(value):
            yield from paths(v, prefix + (k,))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, prefix + (k,))


BASE_PATHS = [p for p in paths(BASE) if p]
MUTANTS = (st.none() | st.booleans() | st.integers(-3, 40) | st.integers()
           | st.floats() | st.sampled_from(["nan", "inf", "x", "add", "input", "const", ""])
           | st.lists(st.integers(-2, 40), max_size=3) | st.builds(dict) | st.builds(list))


@settings(max_examples=FUZZ_EXAMPLES)
@given(st.lists(st.tuples(st.sampled_from(BASE_PATHS), MUTANTS), min_size=1, max_size=3),
       st.booleans())
def test_mutated_documents_raise_only_circuit_errors(mutations, delete):
    doc = json.loads(json.dumps(BASE))
    for path, value in mutations:
        target = doc
        try:
            for key in path[:-1]:
                target = target[key]
            if delete and isinstance(target, dict):
                del target[path[-1]]
            else:
                target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    only_circuit_errors(json.dumps(doc))


# -- files: to_json(c, path) and from_json(path) --------------------------------------------
def test_to_json_and_from_json_take_paths(tmp_path):
    import pathlib

    c = cg.grad(cg.parse("J = sin(x) * y"))
    text = cg.to_json(c, tmp_path / "g.json")  # a pathlib.Path
    assert (tmp_path / "g.json").read_text(encoding="utf-8") == text == cg.to_json(c)
    assert cg.to_json(c, str(tmp_path / "h.json")) == text  # a str path
    for source in (tmp_path / "g.json", str(tmp_path / "h.json"), "  \n" + text, text.encode()):
        assert cg.to_json(cg.from_json(source)) == text
    # A Path is always a path, even one whose name starts with "{".
    odd = pathlib.Path(tmp_path / "{odd}.json")
    odd.write_text(text, encoding="utf-8")
    assert cg.from_json(odd).outputs == c.outputs


def test_json_path_errors(tmp_path):
    with pytest.raises(cg.CircuitError, match="cannot read .*missing.json.*No such file.*starts "
                                              "with '{'"):
        cg.from_json(str(tmp_path / "missing.json"))
    with pytest.raises(cg.CircuitError, match="cannot read") as e:
        cg.from_json(tmp_path / "missing.json")
    assert "starts with" not in str(e.value)  # a Path is never text
    with pytest.raises(cg.CircuitError, match="cannot write"):
        cg.to_json(cg.parse("x"), tmp_path / "no" / "dir" / "c.json")
    with pytest.raises(cg.CircuitError, match="path must be a str or os.PathLike"):
        cg.to_json(cg.parse("x"), 3)
    (tmp_path / "bad.json").write_bytes(b"\xff{")
    with pytest.raises(cg.CircuitError, match="not UTF-8"):
        cg.from_json(tmp_path / "bad.json")


def test_derivative_meta_survives_a_round_trip():
    for d in (cg.hvp(cg.parse("J = x**2 * y")), cg.jvp(cg.parse("J = sin(x)*y")),
              cg.hessian(cg.parse("J = x**3 + x*y"))):
        back = cg.from_json(cg.to_json(d))
        assert back.meta == d.meta and "tangent_count" in back.meta
        assert cg.to_dot(back).source == cg.to_dot(d).source


def test_round_trip_of_every_new_op_and_its_gradient():
    c = cg.parse("""
s = log1p(a) + expm1(a) + softplus(a) + erf(a) + erfc(a) + tan(a) + asin(a) + acos(a)
t = atan(a) + atan2(a, b) + sinh(a) + cosh(a) + asinh(a) + acosh(b) + atanh(a) + log2(b)
u = log10(b) + exp2(a) + hypot(a, b) + floor(a) + ceil(a) + round(a) + maximum(a, b)
v = minimum(a, b) + clip(a, -0.1, 0.1) + where(a > b, a, b) + logaddexp(a, b) + (a <= b)
w = (a >= b) + (a == b) + (a != b) + ((a < b) & (b > 0)) + ((a < b) | ~(b > 0)) + pi
r = max(z) + min(z, axis=0) @ q + prod(z) + norm(z, axis=1) @ p + logsumexp(z)
J = s + t + u + v + w + r + sum(softmax(z, axis=1) * z) + sum(log_softmax(z) * z)
""", shapes={"z": (2, 3), "q": (3,), "p": (2,)})
    point = {"a": 0.3, "b": 1.4, "z": np.arange(1.0, 7.0).reshape(2, 3) / 7, "q": np.ones(3),
             "p": np.ones(2)}
    for circuit in (c, cg.grad(c)):
        d = round_trip(circuit)
        assert_same_circuit(circuit, d)
        assert_same_values(circuit, d, point)


def test_sparse_jacobian_round_trip_keeps_its_csr_pattern():
    c = cg.parse("r = x[1:] * x[:-1] + sin(x[1:])", shapes={"x": (5,)})
    j = cg.jacobian(c, sparse=True)
    back = cg.from_json(cg.to_json(j))
    assert back.meta["csr_outputs"] == j.meta["csr_outputs"]
    x = np.linspace(-1.0, 1.0, 5)
    want, got = cg.to_numpy(j)(x=x).jacobian, cg.to_numpy(back)(x=x).jacobian
    assert got.shape == (4, 5)
    np.testing.assert_array_equal(got.toarray(), want.toarray())


@pytest.mark.parametrize("layout, message", [
    ({"shape": [4, 5], "indptr": [0, 2, 4, 6], "indices": [0, 1, 1, 2, 2, 3, 3, 4]},
     "indptr is not the row starts"),
    ({"shape": [4, 5], "indptr": [0, 2, 4, 6, 8], "indices": [1, 0, 1, 2, 2, 3, 3, 4]},
     "row 0: column indices must be increasing"),
    ({"shape": [4, 5], "indptr": [0, 2, 4, 6, 8], "indices": [0, 1, 1, 2, 2, 3, 3, 5]},
     "row 3: column indices must be increasing and < 5"),
    ({"shape": [4, 5], "indptr": [0, 2, 4, 6, 8]}, "must be {shape, indptr, indices}"),
])
def test_a_bad_csr_pattern_is_refused_by_name(layout, message):
    j = cg.jacobian(cg.parse("r = x[1:] * x[:-1]", shapes={"x": (5,)}), sparse=True)
    doc = json.loads(cg.to_json(j))
    doc["meta"]["csr_outputs"]["jacobian"] = layout
    with pytest.raises(cg.CircuitError, match=re.escape(message)):
        cg.from_json(json.dumps(doc))


def _loops():
    def f(x, F):
        def inner(c, _):  # a loop inside the body
            return c * 0.5 + F, c.sum()

        def body(c, _):
            d, ys = cg.scan(inner, c, length=2)
            return d + 0.01 * (F - c * c), ys.sum()

        c, ys = cg.scan(body, x, length=20)
        back, _ = cg.scan(lambda s, y: (s * 0.9 + y, s), np.sum(c), xs=ys, reverse=True)
        return back + np.sum(c)

    return cg.trace(f, shapes={"x": (3,), "F": ()})


def test_loops_round_trip_with_their_bodies_saved_once():
    c = _loops()
    x = np.array([0.1, 0.2, 0.3])
    for circ in (c, cg.grad(c), cg.grad(c, checkpoints=3), cg.jvp(c)):
        text = cg.to_json(circ)
        back = cg.from_json(text)
        assert back.size == circ.size and cg.to_json(back) == text
        args = (x, 2.0) + ((x, 1.0) if len(circ.inputs) > 2 else ())
        got, want = cg.to_numpy(back)(*args), cg.to_numpy(circ)(*args)
        for a, b in zip(got if isinstance(got, tuple) else (got,),
                        want if isinstance(want, tuple) else (want,)):
            np.testing.assert_array_equal(a, b)
    doc = json.loads(cg.to_json(c))
    # the inner loop's body first; each body once, however many loops name it
    assert len(doc["bodies"]) == 3
    assert [n["params"]["body"] for n in doc["nodes"] if n["op"] == "scan"] == [1, 2]


@pytest.mark.parametrize("change, message", [
    (lambda d: d["nodes"][2]["params"].update(body=7), "index of an earlier body"),
    (lambda d: d["bodies"][0].update(carries=5), "body 0"),
    (lambda d: d["bodies"][0].pop("xs"), "'xs' is missing"),
    (lambda d: d["bodies"][1]["nodes"][2]["params"].update(body=1), "earlier body"),
    (lambda d: d["nodes"][2]["params"].update(reverse=2), "must be 0 or 1"),
    (lambda d: d.update(bodies={}), "'bodies' must be a list"),
])
def test_bad_loop_bodies_are_refused_by_name(change, message):
    doc = json.loads(cg.to_json(_loops()))
    change(doc)
    with pytest.raises(cg.CircuitError, match=message):
        cg.from_json(json.dumps(doc))


def test_a_loop_on_constants_is_folded_only_within_the_fold_limit():
    # A loop's packed result is small whatever its trip count: folding it must be bounded by
    # the steps it runs, or an untrusted text with length 10**12 hangs the reader.
    c = cg.trace(lambda a: cg.scan(lambda s, _: (s * a, None), 1.0, length=5)[0])
    doc = json.loads(cg.to_json(c))
    doc["nodes"][0], doc["inputs"] = {"op": "const", "value": 0.5}, []
    assert float(cg.to_numpy(cg.from_json(json.dumps(doc)))()) == 0.5 ** 5
    doc["nodes"][2]["params"]["length"] = 10**12
    with pytest.raises(cg.CircuitError, match="folding scan on constants"):
        cg.from_json(json.dumps(doc))
