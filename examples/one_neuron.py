"""The notes' one-neuron network: J = ½(y − relu(wᵀx + b))², vectorized.

Compiles the loss, prints the generated gradient code, and checks it against the notes'
formulas ∂J/∂w = (o − y)·1(z ≥ 0)·x and ∂J/∂b = (o − y)·1(z ≥ 0).
"""

import numpy as np

import circuitgrad as cg

D = 3
PROGRAM = """
z = w @ x + b
o = relu(z)
J = 0.5 * (y - o)**2
"""


def main() -> dict:
    c = cg.parse(PROGRAM, shapes={"w": (D,), "x": (D,)})
    g = cg.grad(c, wrt=["w", "b"])
    f = cg.to_numpy(g)
    print(f.source)

    rng = np.random.default_rng(1)
    w, x = rng.normal(size=D), rng.normal(size=D)
    b, y = 0.5, -0.3
    J, dJ_dw, dJ_db = f(w=w, x=x, b=b, y=y)

    z = w @ x + b  # the notes, written out
    o = max(z, 0.0)
    delta = (o - y) * (1.0 if z >= 0 else 0.0)
    assert np.allclose(dJ_dw, delta * x) and np.isclose(dJ_db, delta)
    print(f"J = {J:.6f}; dJ/dw = {dJ_dw}; dJ/db = {dJ_db:.6f}: the notes' formulas agree.")
    return {"J": J, "dJ_dw": dJ_dw, "dJ_db": dJ_db}


if __name__ == "__main__":
    main()
