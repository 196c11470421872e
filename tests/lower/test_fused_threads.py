"""to_fused's threads: a kernel's loop cut along an outer axis every sum's output moves along,
one part a thread (``cg_parts``), gives the same bits for any thread count, on points and
batches, where a part is a single row (PART_ENTRIES = 1) and where nothing can be cut (every
outer axis summed over)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from strategies import tensor_programs
from test_batch import batch_of, same_bits
from test_compiled import compile_cache  # noqa: F401  (a fresh cache for the module)

import circuitgrad as cg
from circuitgrad.lower import fused


@pytest.fixture
def tiny_parts(monkeypatch):
    """Every loop cut into as many parts as threads (a part may be one row)."""
    monkeypatch.setattr(fused, "PART_ENTRIES", 1)


def _outs(f, values, single):
    out = f(**values)
    return (out,) if single else tuple(out)


def _same_for_any_threads(c, seed):
    single = len(c.outputs) == 1
    fs = [fused.to_fused(c, min_entries=0, threads=t) for t in (1, 2, 3, 7)]
    with np.errstate(all="ignore"):
        for batch in ((), (4,), (2, 3)):
            values = batch_of(c, seed, batch)
            want = _outs(fs[0], values, single)
            for f in fs[1:]:
                for name, g, w in zip(c.outputs, _outs(f, values, single), want):
                    assert same_bits(g, w), (name, batch, f.threads)


@settings(max_examples=15, deadline=None)
@given(tensor_programs(), st.integers(0, 2**31))
def test_random_tensor_programs_and_gradients_have_the_same_bits_for_any_thread_count(
        program, seed):
    text, shapes = program
    c = cg.parse(text, shapes=shapes, inputs=list(shapes))
    old = fused.PART_ENTRIES
    fused.PART_ENTRIES = 1  # (hypothesis runs the body many times: not a fixture)
    try:
        _same_for_any_threads(c, seed)
        _same_for_any_threads(cg.grad(c), seed)
    finally:
        fused.PART_ENTRIES = old


@pytest.mark.parametrize("program, shapes", [
    # rows summed: the rows' axis is cut
    ("J = sum(exp(x) * y + sin(x), axis=1)", {"x": (64, 300), "y": (64, 300)}),
    # the columns' sums: every row adds into every entry, so the columns' axis is cut
    ("J = sum(exp(x) * y, axis=0)", {"x": (64, 300), "y": (300,)}),
    # a total: no axis every sum moves along; one part
    ("J = sum(exp(x) * y)", {"x": (64, 300), "y": (64, 300)}),
    # their gradient: sums to the operands' shapes (along the rows, along the columns)
    ("J = sum(sum(exp(x) * y, axis=1) ** 2)", {"x": (64, 300), "y": (300,)}),
    # a sum to a broadcast operand's shape in the gradient (sum_to along the rows)
    ("J = sum(tanh(x * w + b) ** 2)", {"x": (64, 30, 20), "w": (30, 20), "b": (20,)}),
])
def test_kernels_cut_or_not_give_the_same_bits(program, shapes, tiny_parts):
    c = cg.parse(program, shapes=shapes)
    scalar = c.shape(c.output_ids[0]) == ()
    for circuit in (c, cg.grad(c)) if scalar else (c,):
        _same_for_any_threads(circuit, 3)


def test_threads_is_checked_and_shown():
    c = cg.parse("J = sum(exp(x))", shapes={"x": (3000,)})
    assert fused.to_fused(c, threads=3).threads == 3
    assert fused.to_fused(c).threads == fused.compile_workers()
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(cg.CircuitError, match="threads must be a positive integer"):
            fused.to_fused(c, threads=bad)


def test_a_large_loop_is_cut_at_the_default_part_size():
    """2000 x 1000 entries: the rows' sums cut into parts of at least PART_ENTRIES; the same
    bits as one thread, and each row's sum NumPy's within a sum's bound."""
    c = cg.parse("J = sum(exp(x) * y, axis=1)", shapes={"x": (2000, 1000), "y": (2000, 1000)})
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2000, 1000)) * 0.1, rng.normal(size=(2000, 1000))
    one, two = fused.to_fused(c, threads=1)(x, y), fused.to_fused(c, threads=2)(x, y)
    assert same_bits(one, two)
    terms = np.abs(np.exp(x) * y)
    assert np.all(np.abs(one - np.sum(np.exp(x) * y, axis=1))
                  <= 2 * 1000 * np.finfo(float).eps * np.sum(terms, axis=1) + 1e-300)


def test_the_gmm_gradient_with_its_small_contractions_cut_has_the_same_bits(monkeypatch):
    """The GMM gradient (its small contractions, L·(x − μ) and their adjoints, the library's
    loops: ``cg_mm_parts``) with every loop and contraction cut as far as it goes."""
    from benchmarks import gmm
    monkeypatch.setattr(fused, "PART_ENTRIES", 1)
    monkeypatch.setattr(fused, "PART_PRODUCTS", 1)
    d, K = 3, 4
    at = gmm.point(d, K)
    fn = gmm.objective(np, lambda a, axis: cg.logsumexp(a, axis=axis), d, K)
    c = cg.grad(cg.trace(fn, shapes={k: v.shape for k, v in at.items()}), wrt=list(gmm.WRT))
    fs = [fused.to_fused(c, threads=t) for t in (1, 2, 5)]
    assert "_mm0" in fs[0].source  # (a small contraction there to cut)
    want = fs[0](**at)
    for f in fs[1:]:
        for g, w in zip(f(**at), want):
            assert same_bits(g, w)
