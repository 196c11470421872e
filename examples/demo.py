"""The main demo: the notes' one-neuron network, compiled, differentiated, lowered, checked.

Run it with ``make demo``.
"""

import os

import numpy as np

import circuitgrad as cg

PROGRAM = """
z = w1*x1 + w2*x2 + w3*x3 + b
o = relu(z)
J = 0.5*(y - o)**2
"""


def main() -> None:
    c = cg.parse(PROGRAM)
    print("The circuit of the one-neuron network (the notes' first example):")
    print(c)
    f = cg.to_numpy(c)
    print("\nGenerated NumPy code for J:\n")
    print(f.source)

    g = cg.grad(c)
    print(f"\nThe adjoint circuit computes J and its {len(g.outputs) - 1} partial derivatives "
          f"with {g.size} operations ({g.size / c.size:.2f} x the {c.size} of J):\n")
    df = cg.to_numpy(g)
    print(df.source)

    rng = np.random.default_rng(0)
    point = {name: float(v) for name, v in zip(c.inputs, rng.normal(size=len(c.inputs)))}
    point["b"] = 1.0  # keep the neuron active, so the gradient is not all zeros
    values = dict(zip(g.outputs, df(**point)))
    print("\nAt", {k: round(v, 3) for k, v in point.items()})
    for name, value in values.items():
        print(f"  {name:>6} = {value: .6f}")

    w = np.array([point["w1"], point["w2"], point["w3"]])
    x = np.array([point["x1"], point["x2"], point["x3"]])
    z = w @ x + point["b"]
    delta = (max(z, 0.0) - point["y"]) * (z >= 0)  # the notes: (o − y)·1(z ≥ 0)
    assert np.allclose([values[f"dJ_dw{i}"] for i in (1, 2, 3)], delta * x)
    assert np.isclose(values["dJ_db"], delta)
    print("\nMatches the notes' formula ∂J/∂wᵢ = (o − y)·1(z ≥ 0)·xᵢ, ∂J/∂b = (o − y)·1(z ≥ 0).")
    print(f"Max error against central differences: {cg.check_grad(c, point):.1e}")

    xs = np.linspace(-2, 2, 5)
    print("\nBatched over x1 =", xs, "\n  dJ/dw1 =", df(**{**point, "x1": xs})[1])

    os.makedirs("out", exist_ok=True)
    try:
        cg.render(c, "out/demo_forward.png", at=point)
        cg.render(g, "out/demo_adjoint.png", at=point)
        print("\nDiagrams (values and δ's at the point): out/demo_forward.png, "
              "out/demo_adjoint.png")
    except cg.CircuitError as e:  # Graphviz's dot is missing: say so, the rest still ran
        print(f"\nNo diagrams: {e}")


if __name__ == "__main__":
    main()
