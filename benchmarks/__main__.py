"""``python -m benchmarks [--quick] [--only NAME ...] [--timeout S]``: run the suite.

Runs every ``benchmarks/*.py`` module that defines ``run(quick)``, prints the markdown and
writes ``docs/benchmarks.md`` and the plots ``docs/img/bench_*.png``. Exit status 1 if a
module failed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from .harness import choose_blas_kernels
from .report import discover, report_path, run_suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split(
        "\n\n")[1])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and short bounds (a few minutes)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help=f"run only this module (repeatable); modules: {discover()}")
    parser.add_argument("--timeout", type=float, metavar="S",
                        help="bound on each measurement (one tool at one size), seconds; "
                             "default 30 (quick) or 45")
    parser.add_argument("--module-timeout", type=float, metavar="S",
                        help="bound on each whole module, seconds; default 900 (quick) or 2400")
    args = parser.parse_args(argv)
    if args.timeout:
        os.environ["BENCH_TIMEOUT"] = str(args.timeout)
    only = [n for item in args.only or [] for n in item.split(",") if n]
    module_timeout = args.module_timeout or (900.0 if args.quick else 2400.0)
    command = "python -m benchmarks" + (" " + shlex.join(argv if argv is not None
                                                         else sys.argv[1:])).rstrip()
    print(f"[benchmarks] OpenBLAS kernels: {choose_blas_kernels()}")
    _, failures = run_suite(args.quick, only or None, module_timeout, command)
    print(f"[benchmarks] wrote {report_path()}")
    if failures:
        print("[benchmarks] failed: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
