"""Generated source, held to golden files: the NumPy code of ``to_numpy`` and the C code of
``to_c`` (``c_source``, what ``to_c`` compiles), byte for byte, like the DOT files of
test_dot.py. A refactor of a pass or a lowering that changes a character of the generated code
fails here and must say why.

Refresh the files with ``CIRCUITGRAD_UPDATE_GOLDEN=1 pytest tests/lower/test_golden_source.py`` and
review the diff like code.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import circuitgrad as cg
from circuitgrad.lower.c import c_source
from paths import TESTS

GOLDEN = str(TESTS / "golden")
UPDATE = os.environ.get("CIRCUITGRAD_UPDATE_GOLDEN") == "1"

NEURON = "z = w*x + b\no = relu(z)\nJ = 0.5*(y - o)**2"
TWO_LAYER = """
z1 = W1 @ x + b1
a1 = relu(z1)
z2 = W2 @ a1 + b2
J = 0.5 * sum(square(z2 - y))
"""
TWO_LAYER_SHAPES = {"W1": (3, 2), "x": (2,), "b1": (3,), "W2": (2, 3), "b2": (2,), "y": (2,)}
MIX = "J = sin(x) * y + exp(x / y) - log1p(x * x) + tanh(y) ** 3 + sigmoid(x - y)"
LOOP = """
s = x * 1.0
for i in range(50):
    s = s * r + sin(s) * 0.1
J = sum(s * s)
"""


def slow_decay() -> cg.Circuit:
    """A loop of 12 steps whose gradient with 2 checkpoints is a checkpointed adjoint loop."""
    return cg.trace(lambda a: cg.scan(lambda s, _: (s + a * np.sin(s), None), 0.1,
                                      length=12)[0])


def nested_loops() -> cg.Circuit:
    """A loop whose body runs a loop (its gradient: nested reverse loops)."""
    def outer(s, x):
        inner, ys = cg.scan(lambda u, _: (np.sin(u) * x + s, u * s), s, length=3)
        return inner + np.sum(ys), None

    return cg.trace(lambda xs: cg.scan(outer, 0.2, xs=xs)[0], shapes={"xs": 4})


def neuron() -> cg.Circuit:
    return cg.parse(NEURON)


def two_layer() -> cg.Circuit:
    return cg.parse(TWO_LAYER, shapes=TWO_LAYER_SHAPES)


CASES = {
    # The NumPy lowering: forward, the adjoint (fused and textbook), tensors, second order.
    "neuron_grad.py": lambda: cg.to_numpy(cg.grad(neuron()), mode="compile").source,
    "neuron_grad_unfused.py": lambda: cg.to_numpy(cg.grad(neuron(), fused=False),
                                                 mode="compile").source,
    "two_layer_grad.py": lambda: cg.to_numpy(cg.grad(two_layer(), wrt=["W1", "b1", "W2", "b2"]),
                                             mode="compile").source,
    "mix_hessian.py": lambda: cg.to_numpy(cg.hessian(cg.parse(MIX)), mode="compile").source,
    # A loop and its gradient: the runners scan0 ... bound in the function's namespace.
    "loop_grad.py": lambda: cg.to_numpy(cg.grad(cg.parse(LOOP, shapes={"x": (3,)})),
                                        mode="compile").source,
    # The C lowering: a scalar gradient, a scalarized tensor gradient, a Hessian.
    # (at 4 points per vector, the AVX2 source: the same text on every machine)
    "neuron_grad.c": lambda: c_source(cg.grad(neuron()), width=4),
    "two_layer_grad.c": lambda: c_source(cg.grad(two_layer(), wrt=["W2", "b2"]), width=4),
    "mix_hessian.c": lambda: c_source(cg.hessian(cg.parse(MIX)), width=4),
    # Loops: a checkpointed adjoint loop (the schedule walked in C), loops inside a body.
    "scan_grad_checkpointed.c": lambda: c_source(cg.grad(slow_decay(), checkpoints=2), width=4),
    "scan_nested_grad.c": lambda: c_source(cg.grad(nested_loops()), width=4),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_source_matches_its_golden_file(name):
    text = CASES[name]()
    path = os.path.join(GOLDEN, name)
    if UPDATE or not os.path.exists(path):
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        if not UPDATE:
            pytest.fail(f"{name}: no golden file; wrote it, review and commit it")
    with open(path, encoding="utf-8", newline="") as f:
        want = f.read()
    assert text == want, f"{name}: the generated source changed (diff it against {path})"


def test_generated_source_is_byte_stable_across_builds():
    # Two builds of the same circuit in one process give the same text (no ids, no set order).
    for name in ("two_layer_grad.py", "mix_hessian.c"):
        assert CASES[name]() == CASES[name]()
