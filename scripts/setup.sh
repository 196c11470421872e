#!/usr/bin/env bash
# One-time set-up, run by `make demo` / `make test`: a virtual environment with circuitgrad
# (its tape evaluator compiled) and, with EXTRAS=test, its test tools (torch, JAX, Dask ...), the
# Graphviz `dot` program (Debian package `graphviz`), a C compiler and the Python headers where
# missing (`gcc`, `python3-dev`), and for the tests the Chromium browser that tests/lower/test_html.py
# drives with Playwright (Debian's `chromium`; Playwright's own browser download is not used:
# `playwright install` needs the network).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
# The extras to install: empty for the demo (circuitgrad and its dependencies only), `test` for
# `make test`.
EXTRAS=${EXTRAS:-}

# Debian packages, installed with apt-get when run as root or with sudo; else a hint.
apt_install() {  # apt_install WHAT PACKAGE...
  local what=$1; shift
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing $what with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing $what with sudo apt-get"
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    return 1
  fi
}

if ! command -v dot >/dev/null 2>&1; then
  apt_install "Graphviz (dot)" graphviz || echo "setup: Graphviz 'dot' is missing; install it" \
    "(Debian/Ubuntu: apt-get install graphviz, macOS: brew install graphviz) to render diagrams" >&2
fi

# The tape evaluator is a C extension built by `pip install -e .`: a C compiler and the
# Python headers (to_c compiles circuits with the same compiler).
if ! command -v cc >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1; then
  apt_install "a C compiler (gcc)" gcc libc6-dev || echo "setup: no C compiler; install gcc" \
    "(Debian/Ubuntu: apt-get install gcc) to build the tape evaluator" >&2
fi
if ! "$PYTHON" -c 'import os, sysconfig, sys
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
  apt_install "the Python headers" python3-dev || echo "setup: the Python headers are" \
    "missing; install them (Debian/Ubuntu: apt-get install python3-dev)" >&2
fi

# The viewer's browser tests (tests/lower/test_html.py) run Debian's chromium through Playwright.
if [[ ",$EXTRAS," == *",test,"* ]] && ! command -v chromium >/dev/null 2>&1 && ! [ -x /usr/bin/chromium ]; then
  apt_install "the Chromium browser (for the viewer's tests)" chromium || echo "setup: no" \
    "chromium; install it (Debian/Ubuntu: apt-get install chromium) to run tests/lower/test_html.py" >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
if [ -n "$EXTRAS" ]; then
  "$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]"
else
  "$VENV/bin/python" -m pip install -q -e .
fi
