"""to_c computes the sine and cosine of an operand once for every node that reads them (the
records' ``c_sincos``: sin, cos, sin_vjp, cos_vjp), across the parts of its source, with the
same bits as each node computing its own."""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_batch import same_bits

import circuitgrad as cg
from circuitgrad.lower import c as c_lowering
from circuitgrad.lower import cforms, isa
from circuitgrad.primitives import PRIMITIVES

WIDTHS = [w for w in (8, 4, 2) if w in isa.host_widths()] + [1]
# sin and cos of the inputs and of values, read again by the gradient's sin_vjp and cos_vjp
TEXT = ("a = sin(x) * cos(y) + cos(x * y)\nb = sin(a) + cos(a) * sin(x * y)\n"
        "J = a * b + sin(b) + cos(y) * x")


@pytest.fixture(autouse=True)
def compile_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CIRCUITGRAD_CACHE", str(tmp_path))


def _points():
    x = np.array([0.5, -2.0, 1e6, np.inf, -700.0, 3.0, np.nan, 1e-300, -0.0, 40.0, 2.5, 1e-9])
    y = np.array([1.5, 0.25, -3.0, 2.0, 1e7, -0.0, 1.0, 7.0, 0.5, -np.inf, 2.0, -4.0])
    return x, y


def test_the_records_say_which_operands_sine_and_cosine_they_read():
    readers = {op: p.c_sincos for op, p in PRIMITIVES.items() if p.c_sincos is not None}
    assert readers == {"sin": (0, "S"), "cos": (0, "C"), "sin_vjp": (1, "a0 * C"),
                       "cos_vjp": (1, "a0 * S")}
    for op in readers:  # the form is each node's own value at every width
        for width in (8, 4, 2, 1):
            assert cforms.sincos_form(op, width) == readers[op], (op, width)


@pytest.mark.parametrize("part_size", [3, 500])
@pytest.mark.parametrize("width", WIDTHS)
def test_one_sincos_per_operand_with_the_bits_of_each_node_its_own(width, part_size,
                                                                   monkeypatch):
    monkeypatch.setattr(c_lowering, "PART_SIZE", part_size)  # 3: shared across parts
    g = cg.grad(cg.parse(TEXT, inputs=["x", "y"]))
    shared = cg.to_c(g, width=width, threads=1)
    src = shared.source
    body = src[src.index("CG_PART f_part0"):]
    # no node computes its own sine or cosine: one cgv_sincos (or cgv_sin, cgv_cos) an operand
    assert not re.search(r"cgv_(sin|cos)_vjp\(w", body)
    calls = re.findall(r"cgv_(sincos|sin|cos)\(w, ([^,)]+)", body)
    assert len(calls) == len(set(c[1] for c in calls)) >= 5, calls
    if part_size == 3:
        assert "for a later part" in body
    monkeypatch.setattr(c_lowering, "_shared_sincos", lambda *a: {})
    own = cg.to_c(g, width=width, threads=1)
    assert "cgv_sincos(w" not in own.source[own.source.index("CG_PART f_part0"):]
    x, y = _points()
    with np.errstate(all="ignore"):
        a, b = shared(x, y), own(x, y)
        for u, v in zip(a, b):
            assert same_bits(u, v)
        for k in range(x.size):  # a point of the batch is the point alone
            for u, v in zip(a, shared(x[k], y[k])):
                assert same_bits(u[k], v), (k, x[k], y[k])


def test_the_later_parts_registers_are_reused_once_read(monkeypatch):
    monkeypatch.setattr(c_lowering, "PART_SIZE", 2)
    text = "\n".join(f"v{k} = sin(x * {k + 1.5}) * cos(x * {k + 1.5})" for k in range(12))
    g = cg.parse(text + "\nJ = " + " + ".join(f"v{k}" for k in range(12)), inputs=["x"])
    f = cg.to_c(g, threads=1)
    stored = re.findall(r"R\((\d+)\) = [sc]\d+;  /\* for a later part", f.source)
    program = int(re.search(r"(\d+) registers", f.source)[1])
    total = int(re.search(r"size = (\d+)L", f.source)[1])
    assert len(stored) >= 4 and total - program < len(stored)  # some reused
    x = np.linspace(-3.0, 3.0, 11)
    ref = cg.to_numpy(g)(x)
    for u, v in zip(f(x), ref):
        assert np.allclose(u, v, rtol=1e-13, atol=1e-13)
