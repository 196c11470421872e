"""Huge circuits: a program of 10⁴, 10⁵ and 10⁶ operations through the whole pipeline.

parse → grad → to_numpy → evaluation (and the JSON round trip of the adjoint circuit), each
size in a child process of its own so that peak memories are separate. The program is a chain
with fan-out, four operations a line::

    v{i} = sin(v{i-1}) * y + 0.5 * v{i-2}

Time is wall-clock per stage. Memory is the child's peak resident set (``VmHWM``) above
its resident set after the imports, divided by the nodes of the adjoint circuit (which holds
the forward circuit): it stays flat as the size grows when memory is linear. Above
``COMPILE_LIMIT`` nodes ``to_numpy`` returns the interpreter, so its cost stays linear too.

    python benchmarks/huge.py          # 10⁴, 10⁵, 10⁶ operations (about 2 minutes)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

try:
    from .harness import peak_rss_kb
except ImportError:  # run as a script: its own child processes are `python huge.py KIND OPS`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.harness import peak_rss_kb

ROOT = Path(__file__).resolve().parent.parent
SIZES = {True: (10**4, 10**5), False: (10**4, 10**5, 10**6)}  # by quick
PARSE_LINES = {True: (10**3, 10**4), False: (10**3, 10**4, 10**5)}
OPS_PER_LINE = 4


def program(ops: int) -> str:
    """A straight-line program of about ``ops`` operations (four a line).

        >>> import circuitgrad as cg
        >>> cg.parse(program(40)).size  # 0.5 * x is shared by the first two lines
        39
    """
    lines = ["v0 = x", "v1 = sin(x) * y + 0.5 * x"]
    lines += [f"v{i} = sin(v{i - 1}) * y + 0.5 * v{i - 2}"
              for i in range(2, ops // OPS_PER_LINE + 1)]
    return "\n".join(lines)


def long_lines(lines: int) -> str:
    """A program of ``lines`` lines of about 100 characters (10⁵ lines: a 10 MB text)."""
    out = ["v0 = x", "v1 = y", "v2 = x * y"]
    out += [f"v{i} = sin(v{i-1}) * 0.25 + v{i-2} / (1.5 + v{i-3} * v{i-3}) - tanh(v{i-1}) "
            f"+ exp(-v{i-2}) * y" for i in range(3, lines)]
    return "\n".join(out)


def measure_parse(lines: int) -> dict:
    """Parse ``long_lines(lines)`` in this process: time and size."""
    import circuitgrad as cg

    text = long_lines(lines)
    t0 = time.perf_counter()
    c = cg.parse(text)
    seconds = time.perf_counter() - t0
    return {"lines": lines, "mb": len(text) / 1e6, "s": seconds, "size": c.size}


def _rss_mb() -> float:
    return peak_rss_kb() / 1024.0  # VmHWM: ru_maxrss starts at the parent's peak


def measure(ops: int) -> dict:
    """Run the pipeline on ``program(ops)`` in this process; times (s) and peaks (MiB)."""
    import numpy as np

    import circuitgrad as cg

    result: dict = {"ops": ops, "base_mb": _rss_mb()}
    text = program(ops)
    result["text_mb"] = len(text) / 2**20

    def stage(name, fn):
        t0 = time.perf_counter()
        value = fn()
        result[f"{name}_s"] = time.perf_counter() - t0
        result[f"{name}_peak_mb"] = _rss_mb()
        return value

    c = stage("parse", lambda: cg.parse(text))  # noqa: F821 (run before the del)
    del text
    g = stage("grad", lambda: cg.grad(c))
    f = stage("to_numpy", lambda: cg.to_numpy(g))
    values = stage("evaluate", lambda: f(0.3, 0.9))
    result.update(size=c.size, nodes=len(g), grad_size=g.size,
                  finite=bool(np.all(np.isfinite(values))), mode=type(f._run).__name__)
    saved = stage("to_json", lambda: cg.to_json(g))
    result["json_mb"] = len(saved) / 2**20
    back = stage("from_json", lambda: cg.from_json(saved))
    result["round_trip_equal"] = bool(cg.to_numpy(back)(0.3, 0.9) == values)
    return result


def _child(ops: int, timeout: float, kind: str = "--child") -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        done = subprocess.run([sys.executable, __file__, kind, str(ops)], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ops": ops, "error": f"over {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"ops": ops, "error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(lines[-1])


def _row(r: dict) -> list[str]:
    if "error" in r:
        return [f"{r['ops']:,}", r["error"]] + [""] * 10
    pipeline = sum(r[f"{s}_s"] for s in ("parse", "grad", "to_numpy", "evaluate"))
    peak = r["evaluate_peak_mb"] - r["base_mb"]
    peak_json = r["from_json_peak_mb"] - r["base_mb"]
    per_node = peak * 2**20 / r["nodes"]
    return [f"{r['ops']:,}", f"{r['nodes']:,}", f"{r['text_mb']:.1f}"]\
        + [f"{r[f'{s}_s']:.2f}" for s in ("parse", "grad", "to_numpy", "evaluate")]\
        + [f"{pipeline:.1f}", f"{peak:.0f}", f"{per_node:.0f}",
           f"{r['to_json_s']:.1f} / {r['from_json_s']:.1f}", f"{peak_json:.0f}"]


HEADERS = ["ops", "adjoint nodes", "text MB", "parse s", "grad s", "to_numpy s", "eval s",
           "pipeline s", "peak MB", "bytes/node", "to/from_json s", "peak w/ JSON MB"]


def run(quick: bool = False) -> str:
    """The markdown table of the pipeline at each size (10⁴, 10⁵, and 10⁶ unless quick)."""
    rows = [_row(_child(ops, timeout=300 if quick else 1800)) for ops in SIZES[quick]]
    lines = ["### Huge circuits: parse → grad → to_numpy → evaluation", "",
             "Program `v{i} = sin(v{i-1}) * y + 0.5 * v{i-2}` (four operations a line), one "
             "child process per size. Peak MB: the child's peak resident memory above its "
             "resident memory after the imports; bytes/node: that peak over the nodes of the "
             "adjoint circuit (flat = linear memory). The JSON round trip of the adjoint "
             "circuit runs after the pipeline.", "",
             "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", "Parse time of long programs (lines of about 100 characters): linear when "
              "µs/line stays flat.", "", "| lines | text MB | ops | parse s | µs/line |",
              "|---|---|---|---|---|"]
    for n in PARSE_LINES[quick]:
        r = _child(n, timeout=300 if quick else 900, kind="--parse-child")
        if "error" in r:
            lines.append(f"| {n:,} | {r['error']} | | | |")
        else:
            lines.append(f"| {n:,} | {r['mb']:.1f} | {r['size']:,} | {r['s']:.2f} | "
                         f"{r['s'] / n * 1e6:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(measure(int(sys.argv[2]))))
    elif len(sys.argv) == 3 and sys.argv[1] == "--parse-child":
        print(json.dumps(measure_parse(int(sys.argv[2]))))
    else:
        print(run(quick="--quick" in sys.argv))
