"""Every example runs and checks itself (each asserts agreement with the notes' formulas)."""

import importlib.util
import os

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["one_neuron", "two_layer", "multilayer"])
def test_network_examples_agree_with_the_notes(name, capsys):
    result = load(name).main()
    out = capsys.readouterr().out
    assert "def f(" in out and "_bar" in out  # the generated gradient source is printed
    assert "J" in result


def test_train_mlp_loss_falls_and_plot_is_saved(tmp_path):
    png = tmp_path / "loss.png"
    losses = load("train_mlp").main(["--steps", "150", "--out", str(png)])
    assert losses[-1] < losses[0] / 10
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_runs(capsys):
    load("demo").main()
    assert "Matches the notes' formula" in capsys.readouterr().out


def test_optimize_example_converges(capsys):
    results = load("optimize").main()
    assert set(results) == {"Newton-CG", "trust-constr", "least_squares", "boundary_value",
                            "HS71 SLSQP", "HS71 trust-constr", "chained constraints"}
    assert all(r.success for r in results.values())
    assert "least_squares" in capsys.readouterr().out


def test_dask_gradient_example_matches_numpy_on_a_local_cluster(capsys):
    pytest.importorskip("distributed")
    example = load("dask_gradient")
    result = example.main(["--samples", "40000", "--chunk", "10000", "--quiet"])
    assert result["check"] < 1e-12 and result["peak_rss"] > 0
    # the mean gradient over all chunks against NumPy on all samples at once (small N)
    import numpy as np

    data = np.concatenate([example.samples((k,), 10000, seed=1) for k in range(4)])
    out = example.cg.to_numpy(example.cg.grad(example.cg.parse(
        example.PROGRAM, shapes=example.SHAPES), wrt=["W1", "b1", "w2", "b2"]))(
        x=data[:, :4], y=data[:, 4], **example.parameters())
    np.testing.assert_allclose(result["grads"][0], out.dJ_dW1.mean(axis=0), rtol=1e-12)
    assert "peak RSS" in capsys.readouterr().out
