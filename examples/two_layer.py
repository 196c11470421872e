"""The notes' two-layer network with m hidden relu units, vectorized.

    z = W⁽¹⁾ x + b⁽¹⁾,  a = relu(z),  o = w⁽²⁾ᵀ a + b⁽²⁾,  J = ½(y − o)²

The notes' backprop: δ⁽²⁾ = o − y, δ⁽¹⁾ = δ⁽²⁾ w⁽²⁾ ⊙ relu′(z), ∂J/∂W⁽¹⁾ = δ⁽¹⁾ xᵀ,
∂J/∂b⁽¹⁾ = δ⁽¹⁾, ∂J/∂w⁽²⁾ = δ⁽²⁾ a, ∂J/∂b⁽²⁾ = δ⁽²⁾.
"""

import numpy as np

import circuitgrad as cg

D, M = 4, 5
PROGRAM = """
z = W1 @ x + b1
a = relu(z)
o = w2 @ a + b2
J = 0.5 * (y - o)**2
"""


def main() -> dict:
    shapes = {"W1": (M, D), "x": (D,), "b1": (M,), "w2": (M,)}
    c = cg.parse(PROGRAM, shapes=shapes)
    g = cg.grad(c, wrt=["W1", "b1", "w2", "b2"])
    f = cg.to_numpy(g)
    print(f.source)

    rng = np.random.default_rng(2)
    p = {k: rng.normal(size=s) for k, s in shapes.items()}
    p.update(b2=0.1, y=0.7)
    J, dW1, db1, dw2, db2 = f(**p)

    z = p["W1"] @ p["x"] + p["b1"]
    a = np.maximum(z, 0)
    o = p["w2"] @ a + p["b2"]
    delta2 = o - p["y"]
    delta1 = delta2 * p["w2"] * (z >= 0)
    assert np.allclose(dW1, np.outer(delta1, p["x"])) and np.allclose(db1, delta1)
    assert np.allclose(dw2, delta2 * a) and np.isclose(db2, delta2)
    print(f"J = {J:.6f}: ∂J/∂W1 = δ⁽¹⁾xᵀ, ∂J/∂w2 = δ⁽²⁾a ... agree with the notes.")
    return {"J": J, "dJ_dW1": dW1}


if __name__ == "__main__":
    main()
