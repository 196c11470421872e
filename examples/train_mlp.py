"""Train a multilayer relu network by plain gradient descent with circuitgrad's gradient.

The data set is synthetic (a smooth function of 2 inputs plus noise, generated here). The only
derivative code is what circuitgrad generates. The loss curve is saved as a PNG.

    python examples/train_mlp.py [--steps 400] [--out docs/img/train_mlp_loss.png]
"""

import argparse

import numpy as np

import circuitgrad as cg

PROGRAM = """
z1 = X @ W1.T + b1
a1 = relu(z1)
z2 = a1 @ W2.T + b2
a2 = relu(z2)
h = a2 @ W3.T + b3
J = 0.5 * mean(square(h - Y))
"""


def data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.uniform(-2, 2, size=(n, 2))
    Y = (np.sin(X[:, :1] * 1.5) * np.cos(X[:, 1:]) + 0.05 * rng.normal(size=(n, 1)))
    return X, Y


def train(steps: int = 400, lr: float = 0.05, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    X, Y = data(256, rng)
    sizes = [2, 32, 32, 1]
    params = {}
    for k in range(1, 4):
        fan_in = sizes[k - 1]
        params[f"W{k}"] = rng.normal(size=(sizes[k], fan_in)) * np.sqrt(2 / fan_in)
        params[f"b{k}"] = np.zeros(sizes[k])
    shapes = {"X": X.shape, "Y": Y.shape, **{k: v.shape for k, v in params.items()}}
    c = cg.parse(PROGRAM, shapes=shapes)
    wrt = list(params)
    step = cg.to_numpy(cg.grad(c, wrt=wrt))
    losses = []
    for _ in range(steps):
        J, *grads = step(X=X, Y=Y, **params)
        losses.append(float(J))
        for name, dp in zip(wrt, grads):
            params[name] -= lr * dp
    return losses


def plot(losses: list[float], path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install circuitgrad[plot]): no plot")
        return False
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.semilogy(losses, color="#3060c0")
    ax.set_xlabel("gradient descent step")
    ax.set_ylabel("loss J (log scale)")
    ax.set_title("2-32-32-1 relu network, gradient from circuitgrad")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> list[float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--out", default="docs/img/train_mlp_loss.png")
    args = parser.parse_args(argv)
    losses = train(args.steps)
    print(f"loss: {losses[0]:.4f} at step 0 -> {losses[-1]:.4f} at step {len(losses) - 1}")
    if plot(losses, args.out):
        print(f"loss curve saved to {args.out}")
    return losses


if __name__ == "__main__":
    main()
