"""The notes' multi-layer relu network and its δ recursion.

    a⁽ᵏ⁾ = relu(W⁽ᵏ⁾ a⁽ᵏ⁻¹⁾ + b⁽ᵏ⁾), a⁽⁰⁾ = x;  h = W⁽ʳ⁾ a⁽ʳ⁻¹⁾ + b⁽ʳ⁾;  J = ½‖h − y‖²
    δ⁽ʳ⁾ = h − y,  δ⁽ᵏ⁾ = (W⁽ᵏ⁺¹⁾ᵀ δ⁽ᵏ⁺¹⁾) ⊙ relu′(z⁽ᵏ⁾),
    ∂J/∂W⁽ᵏ⁾ = δ⁽ᵏ⁾ a⁽ᵏ⁻¹⁾ᵀ,  ∂J/∂b⁽ᵏ⁾ = δ⁽ᵏ⁾
"""

import numpy as np

import circuitgrad as cg

SIZES = [6, 8, 8, 5, 3]  # input, hidden ..., output


def program(sizes: list[int]) -> str:
    r = len(sizes) - 1
    lines, a = [], "x"
    for k in range(1, r + 1):
        lines.append(f"z{k} = W{k} @ {a} + b{k}")
        if k < r:
            lines.append(f"a{k} = relu(z{k})")
            a = f"a{k}"
    lines.append(f"J = 0.5 * sum(square(z{r} - y))")
    return "\n".join(lines)


def backprop(p: dict, sizes: list[int]) -> dict:
    """The notes' δ recursion, written out in NumPy."""
    r = len(sizes) - 1
    acts, zs = [p["x"]], []
    for k in range(1, r + 1):
        zs.append(p[f"W{k}"] @ acts[-1] + p[f"b{k}"])
        acts.append(np.maximum(zs[-1], 0) if k < r else zs[-1])
    delta = zs[-1] - p["y"]
    grads = {}
    for k in range(r, 0, -1):
        grads[f"W{k}"], grads[f"b{k}"] = np.outer(delta, acts[k - 1]), delta
        if k > 1:
            delta = (p[f"W{k}"].T @ delta) * (zs[k - 2] >= 0)
    return grads


def main() -> dict:
    r = len(SIZES) - 1
    shapes = {"x": (SIZES[0],), "y": (SIZES[-1],)}
    for k in range(1, r + 1):
        shapes[f"W{k}"], shapes[f"b{k}"] = (SIZES[k], SIZES[k - 1]), (SIZES[k],)
    c = cg.parse(program(SIZES), shapes=shapes)
    wrt = [n for n in c.inputs if n not in ("x", "y")]
    g = cg.grad(c, wrt=wrt)
    f = cg.to_numpy(g)
    print(f.source)

    rng = np.random.default_rng(3)
    p = {k: rng.normal(size=s) / np.sqrt(s[-1]) for k, s in shapes.items()}
    got = dict(zip(g.outputs, f(**p)))
    want = backprop(p, SIZES)
    for name in wrt:
        assert np.allclose(got[f"dJ_d{name}"], want[name]), name
    print(f"J = {got['J']:.6f}; all {len(wrt)} gradients agree with the δ recursion.")
    print(f"circuit: {c.size} tensor ops, adjoint {g.size} ({g.size / c.size:.2f}x); "
          f"scalarized: {cg.scalarize(c).size} scalar ops")
    return got


if __name__ == "__main__":
    main()
