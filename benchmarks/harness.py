"""What every benchmark shares: bounded child processes, medians, tables, plots, machine info.

Isolation. Each measurement that may run long (one tool at one size) runs in a child process
``python -m benchmarks.harness CALL`` with a wall-clock bound. The child reports results one
JSON line at a time into a file as soon as each is known, so a child killed at its bound still
hands back what it measured before (say the build time, when only the batch evaluation ran
over): :func:`run_bounded` returns those results and ``timed_out=True``.

Timing. :func:`median_time` repeats a call until about ``budget`` seconds are spent (3 to 50
repeats; one when a single call is slower than the budget) and returns the median. The
machine is shared and noisy, so reports compare tools by ratios measured in the same run.

    >>> median_time(lambda: None, budget=0.01) < 0.01
    True
    >>> fmt_time(0.0123), fmt_time(2.5e-6), fmt_ratio(1.234)
    ('12.3 ms', '2.5 µs', '1.23')
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
IMG = DOCS / "img"

# Every tool runs on one thread: circuitgrad and NumPy's elementwise code do, and the machine's
# cores are shared (PyTorch's two intra-op threads on a loaded 2-core machine ran 10x slower).
# The variables alone do not make JAX one thread: XLA 0.10 still ran jit(tanh(x @ y)) on ~1.7
# CPUs with them (wall 5.1 ms, CPU 8.7 ms), so a child on one CPU is also *pinned* to it
# (run_bounded's cpus="one"): every thread pool then shares that CPU.
SINGLE_THREAD = {
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}
BLAS_ENV = "CIRCUITGRAD_BENCH_BLAS"  # what choose_blas_kernels found (for the report's header)

# OpenBLAS's probe of its own kernels, run in a child (the suite's process must not load it
# before OPENBLAS_CORETYPE is set): the name of the kernels it chose for this CPU.
_CORENAME = """
import ctypes, glob, os, numpy
for lib in glob.glob(os.path.join(os.path.dirname(numpy.__file__), "..", "numpy.libs", "*openblas*")):
    dll = ctypes.CDLL(lib)
    for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
        f = getattr(dll, name, None)
        if f is not None:
            f.restype = ctypes.c_char_p
            print(f().decode())
            raise SystemExit
"""


def _openblas_core(env: dict[str, str]) -> str | None:
    try:
        out = subprocess.run([sys.executable, "-c", _CORENAME], env=env, capture_output=True,
                             text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def choose_blas_kernels() -> str:
    """OpenBLAS's AVX-512 kernels where its detection does not know the CPU: OpenBLAS 0.3.31
    (NumPy 2.4's) takes an AMD Zen 5 (family 26) with AVX-512 for a Haswell and runs its AVX2
    kernels, 52 GF/s at a 1000 x 1000 product on one thread against 83 with
    ``OPENBLAS_CORETYPE=SkylakeX`` (and JAX's 87): a comparison of BLAS-bound work with JAX
    would measure OpenBLAS's CPU table. So, before any NumPy is loaded, the suite sets
    ``OPENBLAS_CORETYPE=SkylakeX`` (inherited by every child) where the CPU has AVX-512 F, DQ,
    BW and VL and OpenBLAS chose Haswell; a user's own ``OPENBLAS_CORETYPE`` is kept. Returns
    the line for the report's header (also in ``$CIRCUITGRAD_BENCH_BLAS``)."""
    if "OPENBLAS_CORETYPE" in os.environ:
        note = f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} (set in the environment)"
    else:
        core = _openblas_core(dict(os.environ))
        note = f"{core} (OpenBLAS's choice)" if core else "? (OpenBLAS's name not found)"
        wanted = {"avx512f", "avx512dq", "avx512bw", "avx512vl"}
        if core == "Haswell" and wanted <= _cpu_flags():
            env = dict(os.environ, OPENBLAS_CORETYPE="SkylakeX")
            if _openblas_core(env) == "SkylakeX":
                os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
                note = ("SkylakeX: OPENBLAS_CORETYPE set by the suite (OpenBLAS took this "
                        "AVX-512 CPU for a Haswell, AVX2 kernels)")
    if "numpy" in sys.modules:
        note += "; NumPy was loaded before: this process keeps its kernels"
    os.environ[BLAS_ENV] = note
    return note


CPUS_ENV = "CIRCUITGRAD_BENCH_CPUS"  # the CPUs the suite started with (children may be pinned)
_PIN_ENV = "CIRCUITGRAD_BENCH_PIN"  # a child's CPUs: "one" or "all"


def suite_cpus() -> list[int]:
    """The CPUs the suite may use: those the first benchmark process could run on."""
    recorded = os.environ.get(CPUS_ENV)
    if recorded:
        return [int(c) for c in recorded.split(",")]
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def pin(cpus: str) -> None:
    """Run this process on one CPU (``"one"``: the suite's last) or on all the suite's CPUs
    (``"all"``); a no-op where the OS cannot (no ``sched_setaffinity``)."""
    chosen = suite_cpus()[-1:] if cpus == "one" else suite_cpus()
    try:
        os.sched_setaffinity(0, chosen)
    except (AttributeError, OSError):
        pass


def cpu_count() -> int:
    """The CPUs this process may run on now (1 in a pinned child)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1

# The default bound on one measurement (one tool at one size), seconds; `--timeout` sets it.
DEFAULT_TIMEOUT = {True: 30.0, False: 45.0}  # by quick


def measurement_timeout(quick: bool) -> float:
    """The bound on one measurement: ``BENCH_TIMEOUT`` (set by ``--timeout``) or the default."""
    value = os.environ.get("BENCH_TIMEOUT")
    return float(value) if value else DEFAULT_TIMEOUT[quick]


# -- timing -------------------------------------------------------------------------------

def median_time(fn: Callable[[], Any], budget: float = 0.3, min_repeats: int = 3,
                max_repeats: int = 50) -> float:
    """The median wall time of ``fn()`` over repeats filling about ``budget`` seconds."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    if first > budget:
        return first
    times = [first]
    spent = first
    while len(times) < max_repeats and (len(times) < min_repeats or spent < budget):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        times.append(dt)
        spent += dt
    # The first call may warm caches; drop it when there are enough others.
    return statistics.median(times[1:] if len(times) > 3 else times)


def best_times(calls: dict[str, Any], rounds: int = 5, budget: float = 4.0) -> dict[str, float]:
    """The best time of each call over interleaved rounds (each round calls every one once),
    at least two rounds, more while within ``budget`` seconds: on a shared machine a peer
    measured in a quiet moment is not compared with one measured in a busy one."""
    best = dict.fromkeys(calls, float("inf"))
    t_start = time.perf_counter()
    for r in range(rounds):
        for name, call in calls.items():
            t0 = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - t0)
        if r >= 1 and time.perf_counter() - t_start > budget:
            break
    return best


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


# -- bounded child processes --------------------------------------------------------------

@dataclass
class ChildResult:
    """What a child process reported, and how it ended."""

    values: dict[str, Any] = field(default_factory=dict)
    timed_out: bool = False
    error: str | None = None
    seconds: float = 0.0


def run_bounded(call: str, kwargs: dict[str, Any], timeout: float,
                show_output: bool = False, cpus: str | None = None) -> ChildResult:
    """Run ``module:function(emit, **kwargs)`` in a child process bounded by ``timeout``.

    The function reports with ``emit(key, value)``; each report is kept even if the child is
    killed later. A child that raises reports ``error`` (the last line of its traceback). The
    child's standard output is shown (progress lines) if ``show_output``, else dropped.
    ``cpus``: ``"one"`` pins the child to one CPU with :data:`SINGLE_THREAD` (every library's
    threads share it: its wall time is its CPU time); ``"all"`` gives it every CPU of the suite
    and the libraries' default threads (their variables of SINGLE_THREAD removed); None, the
    caller's CPUs with SINGLE_THREAD.
    """
    if cpus not in (None, "one", "all"):
        raise ValueError(f"run_bounded: cpus={cpus!r}: give 'one', 'all' or None")
    with tempfile.NamedTemporaryFile("w+", suffix=".jsonl", delete=False) as fh:
        path = fh.name
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env[CPUS_ENV] = ",".join(map(str, suite_cpus()))
    env.pop(_PIN_ENV, None)
    if cpus == "all":
        for key in SINGLE_THREAD:
            env.pop(key, None)
    else:
        env.update(SINGLE_THREAD)
    if cpus:
        env[_PIN_ENV] = cpus
    cmd = [sys.executable, "-m", "benchmarks.harness", call, path, json.dumps(kwargs)]
    result = ChildResult()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env,
                            stdout=None if show_output else subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            lines = [ln for ln in (stderr or "").strip().splitlines() if ln.strip()]
            result.error = lines[-1][:300] if lines else f"exit status {proc.returncode}"
    except subprocess.TimeoutExpired:
        result.timed_out = True
        try:
            os.killpg(proc.pid, 9)  # the child and anything it started (compilers)
        except ProcessLookupError:
            pass
        proc.communicate()
    result.seconds = time.perf_counter() - t0
    try:
        with open(path) as fh:
            for line in fh:
                if line.strip():
                    key, value = json.loads(line)
                    result.values[key] = value
    except (OSError, json.JSONDecodeError):
        pass
    finally:
        os.unlink(path)
    if "error" in result.values and result.error is None:
        result.error = result.values.pop("error")
    return result


def _child(call: str, path: str, kwargs_json: str) -> int:
    module_name, func_name = call.split(":")
    if os.environ.get(_PIN_ENV):
        pin(os.environ[_PIN_ENV])
    with open(path, "a") as out:
        def emit(key: str, value: Any) -> None:
            out.write(json.dumps([key, value]) + "\n")
            out.flush()

        fn = getattr(importlib.import_module(module_name), func_name)
        fn(emit, **json.loads(kwargs_json))
    return 0


def peak_rss_kb() -> int:
    """This process's peak resident set, KiB: ``VmHWM`` of /proc/self/status (its own memory
    map's high-water mark). Not ``ru_maxrss``: Linux carries that over ``execve`` from the
    parent, so a child of a large process (the suite's module runner) starts at the parent's
    peak and reports no growth (a child of a 312 MB parent: ru_maxrss 312 MB, VmHWM 11 MB)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# -- formatting ---------------------------------------------------------------------------

def fmt_time(seconds: float | None) -> str:
    """A duration with three significant digits and a unit."""
    if seconds is None:
        return "–"
    if seconds >= 1:
        return f"{seconds:.3g} s" if seconds < 100 else f"{seconds:.0f} s"
    for unit, scale in (("ms", 1e3), ("µs", 1e6), ("ns", 1e9)):
        v = seconds * scale
        if v >= 1 or unit == "ns":
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"
    return f"{seconds:.3g} s"


def fmt_ratio(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def fmt_n(n: int) -> str:
    """10³-style for powers of ten, else the number."""
    sup = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
    if n >= 10 and 10 ** (len(str(n)) - 1) == n:
        return "10" + str(len(str(n)) - 1).translate(sup)
    return f"{n:,}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(str(x) for x in row) + " |")
    return "\n".join(lines)


# -- plots --------------------------------------------------------------------------------

def plot_loglog(name: str, title: str, xlabel: str, ylabel: str,
                series: dict[str, tuple[Sequence[float], Sequence[float]]],
                note: str | None = None) -> str | None:
    """Write ``docs/img/<name>.png`` (log-log, one line per series); return its path
    relative to ``docs/`` for a markdown link, or None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    IMG.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8.5, 4.5), dpi=110)
    markers = "os^vD<>pP*hX"
    colors = plt.get_cmap("tab20").colors
    for k, (label, (xs, ys)) in enumerate(series.items()):
        pts = [(x, y) for x, y in zip(xs, ys) if y is not None and y > 0]
        if not pts:
            continue
        ax.loglog([p[0] for p in pts], [p[1] for p in pts], marker=markers[k % len(markers)],
                  color=colors[(2 * k) % 20 + (2 * k) // 20 % 2], label=label,
                  linewidth=2.4 if label.startswith("circuitgrad") else 1.2)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    if note:
        ax.text(0.01, 0.01, note, transform=ax.transAxes, fontsize=7, alpha=0.7)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(IMG / f"{name}.png")
    plt.close(fig)
    return f"img/{name}.png"


# -- the machine ----------------------------------------------------------------------------

LIBRARIES = ("circuitgrad", "numpy", "networkx", "sympy", "symengine", "jax", "jaxlib", "torch",
             "pytensor", "casadi", "autograd", "drjit", "matplotlib")


def library_versions() -> dict[str, str]:
    """Installed versions (without importing the heavy packages), "missing" otherwise."""
    from importlib import metadata
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name == "circuitgrad":
                sys.path.insert(0, str(ROOT))
                out[name] = importlib.import_module("circuitgrad").__version__ + " (source tree)"
            else:
                out[name] = "missing"
    return out


def machine_info() -> dict[str, str]:
    """CPU, cores, memory, OS, Python, date and git commit."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as fh:
            kb = int(fh.readline().split()[1])
            mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout
        commit += " (with uncommitted changes)" if dirty.strip() else ""
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    try:
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "CPUs the suite ran on": ", ".join(map(str, suite_cpus())),
        "memory": mem,
        "load average (1/5/15 min) at start": load,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "git commit": commit,
        "OpenBLAS kernels": os.environ.get(BLAS_ENV, "not checked"),
    }


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:4]))
