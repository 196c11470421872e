"""The benchmark harness's choice of OpenBLAS kernels (benchmarks/harness.py)."""

import pytest

from benchmarks import harness

AVX512 = {"avx512f", "avx512dq", "avx512bw", "avx512vl", "sse2"}


@pytest.fixture
def env(monkeypatch):
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.delenv(harness.BLAS_ENV, raising=False)
    monkeypatch.setattr(harness, "_cpu_flags", lambda: AVX512)
    return monkeypatch


def test_an_avx512_cpu_taken_for_a_haswell_gets_skylakex_kernels(env):
    seen = []

    def core(e):
        seen.append(e.get("OPENBLAS_CORETYPE"))
        return e.get("OPENBLAS_CORETYPE") or "Haswell"

    env.setattr(harness, "_openblas_core", core)
    note = harness.choose_blas_kernels()
    assert seen == [None, "SkylakeX"]  # OpenBLAS's own choice, then the override checked
    assert harness.os.environ["OPENBLAS_CORETYPE"] == "SkylakeX"
    assert note.startswith("SkylakeX") and harness.machine_info()["OpenBLAS kernels"] == note


def test_the_users_coretype_and_other_cpus_are_kept(env):
    env.setattr(harness, "_openblas_core", lambda e: "Haswell")
    env.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert "set in the environment" in harness.choose_blas_kernels()
    assert harness.os.environ["OPENBLAS_CORETYPE"] == "Haswell"
    env.delenv("OPENBLAS_CORETYPE")
    env.setattr(harness, "_cpu_flags", lambda: {"avx2", "sse2"})  # no AVX-512: Haswell's right
    assert harness.choose_blas_kernels().startswith("Haswell (OpenBLAS's choice)")
    assert "OPENBLAS_CORETYPE" not in harness.os.environ


def test_the_probe_names_this_machines_kernels():
    core = harness._openblas_core(dict(harness.os.environ))
    assert core is None or (core.isidentifier() and core[0].isupper())
