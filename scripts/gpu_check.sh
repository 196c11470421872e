#!/usr/bin/env bash
# One command on a machine with an NVIDIA GPU (issue 17): install CuPy into the project's
# virtual environment, run the CuPy tests, print the NumPy-vs-CuPy tables (benchmarks/gpu.py).
#   scripts/gpu_check.sh            # VENV=.venv by default; set up first if it is missing
#   XP=numpy scripts/gpu_check.sh   # the same steps with NumPy standing in (no GPU needed)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
XP=${XP:-cupy}
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
  VENV="$VENV" scripts/setup.sh
fi

if [ "$XP" = cupy ]; then
  if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_check: no NVIDIA GPU here (nvidia-smi finds none); XP=numpy runs the steps on NumPy" >&2
    exit 1
  fi
  nvidia-smi -L
  # CuPy's wheel for the driver's CUDA major version (12 or 13; 12 as the fallback)
  cuda=$(nvidia-smi | sed -n 's/.*CUDA Version: \([0-9]*\).*/\1/p' | head -n1)
  case "${cuda:-12}" in
    13) wheel=cupy-cuda13x ;;
    *) wheel=cupy-cuda12x ;;
  esac
  if ! "$PY" -c "import cupy" >/dev/null 2>&1; then
    echo "gpu_check: installing $wheel"
    "$PY" -m pip install -q "$wheel"
  fi
  "$PY" -c "import cupy; print('CuPy', cupy.__version__, 'on', cupy.cuda.runtime.getDeviceCount(), 'GPU(s)')"
  # every test of tests/lower/test_arrays.py on CuPy (they exist only where a GPU is), then the
  # tables even if a test failed; the exit status is the tests'
  status=0
  "$PY" -m pytest -q -rs tests/lower/test_arrays.py -k cupy -p no:cacheprovider || status=$?
  "$PY" -m benchmarks.gpu --xp cupy
  exit "$status"
else
  "$PY" -m pytest -q -rs tests/lower/test_arrays.py -k "cupy or networks" -p no:cacheprovider
  "$PY" -m benchmarks.gpu --xp "$XP" --quick
fi
