"""Draw the notes' networks, forward and adjoint, with values at a point (docs/img/*.png).

Run ``python examples/draw_notes.py`` (it needs the Graphviz ``dot`` program). Each forward
diagram shows every node's value and its adjoint δ = ∂J/∂node; each adjoint diagram shows the
forward pass and, below it, the adjoint pass flowing back to the gradients ∂J/∂θ.
"""

import os

import numpy as np

import circuitgrad as cg

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "img")

# The notes' one-neuron network, with d = 2 inputs written out as scalars.
ONE_NEURON = """
z = w1*x1 + w2*x2 + b
o = relu(z)
J = 0.5*(y - o)**2
"""
ONE_NEURON_AT = {"w1": 0.5, "x1": 2.0, "w2": -1.0, "x2": 0.5, "b": 0.25, "y": 2.0}
ONE_NEURON_WRT = ["w1", "w2", "b"]

# The notes' two-layer network, d = 2 inputs and m = 2 hidden relu units, as scalars.
TWO_LAYER = """
z1 = w11*x1 + w12*x2 + b1
z2 = w21*x1 + w22*x2 + b2
a1 = relu(z1)
a2 = relu(z2)
o = v1*a1 + v2*a2 + c
J = 0.5*(y - o)**2
"""
TWO_LAYER_AT = {"w11": 0.5, "x1": 1.0, "w12": -0.5, "x2": 2.0, "b1": 1.0, "w21": 1.0,
                "w22": 0.25, "b2": -0.5, "v1": 2.0, "v2": -1.0, "c": 0.5, "y": 1.0}
TWO_LAYER_WRT = ["w11", "w12", "b1", "w21", "w22", "b2", "v1", "v2", "c"]

# The same network vectorized, as the notes write it at the end: W is m × d.
TENSOR = """
z = W @ x + b
a = relu(z)
o = v @ a + c
J = 0.5*(y - o)**2
"""
TENSOR_SHAPES = {"W": (3, 2), "x": (2,), "b": (3,), "v": (3,)}
TENSOR_AT = {"W": np.array([[0.5, -1.0], [1.0, 0.25], [-0.5, 0.5]]), "x": np.array([1.0, 2.0]),
             "b": np.array([0.5, 0.0, -0.5]), "v": np.array([1.0, -1.0, 0.5]), "c": 0.5,
             "y": 1.0}
TENSOR_WRT = ["W", "b", "v", "c"]


def draw(name: str, program: str, at: dict, wrt: list, shapes: dict | None = None) -> None:
    c = cg.parse(program, shapes=shapes)
    for suffix, circuit in (("forward", c), ("adjoint", cg.grad(c, wrt=wrt))):
        path = os.path.join(OUT, f"{name}_{suffix}.png")
        cg.render(circuit, path, at=at)
        print("wrote", os.path.relpath(path))


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    draw("one_neuron", ONE_NEURON, ONE_NEURON_AT, ONE_NEURON_WRT)
    draw("two_layer", TWO_LAYER, TWO_LAYER_AT, TWO_LAYER_WRT)
    draw("two_layer_tensor", TENSOR, TENSOR_AT, TENSOR_WRT, TENSOR_SHAPES)


if __name__ == "__main__":
    main()
