"""``CFunction.write``: the generated ``.c`` and ``.h`` called from a C program (issue 29): a
``main`` compiled against them with the system compiler prints what the Python call returns,
bit for bit, through both entry points (``NAME_eval`` and ``NAME_eval_threads``)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

import circuitgrad as cg
from circuitgrad.errors import CircuitError
from circuitgrad.lower import c as c_lowering

MAIN = r"""
#include <stdio.h>
#include "STEM.h"

int main(void)
{
    static const double in[NPOINTS][NAME_NIN] = {POINTS};
    static double out[NPOINTS][NAME_NOUT], again[NPOINTS][NAME_NOUT];
    long p;
    int k;
    if (NAME_eval(&in[0][0], &out[0][0], NPOINTS)) return 1;
    if (NAME_eval_threads(&in[0][0], &again[0][0], NPOINTS, 3)) return 1;
    for (p = 0; p < NPOINTS; p++)
        for (k = 0; k < NAME_NOUT; k++) {
            if (out[p][k] != again[p][k] && out[p][k] == out[p][k]) return 2;
            printf("%.17g\n", out[p][k]);
        }
    printf("first x column %d, first dJ_dW column %d\n", NAME_IN_x, NAME_OUT_dJ_dW);
    return 0;
}
"""


@pytest.fixture(autouse=True, scope="module")
def compile_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("CIRCUITGRAD_CACHE", str(tmp_path_factory.mktemp("cg_cache")))
    yield
    mp.undo()


def compiler():
    try:
        return c_lowering._compiler()
    except CircuitError:
        pytest.skip("no C compiler")


@pytest.mark.parametrize("width, rows, cols", [(None, 2, 3), (1, 2, 3), (None, 12, 12)])
def test_a_c_program_calls_the_written_source(tmp_path, width, rows, cols):
    # (12, 12): 157 input and 158 output columns, past COLUMNS_ON_STACK: NAME_eval's
    # columns' addresses on the heap
    cc = compiler()
    c = cg.grad(cg.parse("J = sum(tanh(W @ x) * s) + exp(s)",
                         shapes={"W": (rows, cols), "x": (cols,)}))
    f = cg.to_c(c, name="net", width=width, fused=False)
    nw = rows * cols
    nin = nw + cols + 1
    assert (nin + nin + 1 > c_lowering.COLUMNS_ON_STACK) == (rows == 12)
    assert ("malloc(sizeof *in_col" in f.source) == (rows == 12)
    source, header = f.write(tmp_path / "net")
    assert (source, header) == (tmp_path / "net.c", tmp_path / "net.h")
    assert source.read_text() == f.source
    text = header.read_text()
    assert f"#define net_NIN {nin}" in text and f"#define net_NOUT {nin + 1}" in text
    assert f"{nw}..{nw + cols - 1}  x, shape ({cols},), row-major" in text
    assert "net_eval_threads" in text
    rng = np.random.default_rng(0)
    points = rng.normal(size=(11, nin))  # 11 points: a chunk of 8 and a partial one
    points[3, nin - 1] = np.inf  # s = inf: special values through C as well
    literal = ", ".join("{" + ", ".join(repr(float(v)).replace("inf", "INFINITY")
                                        for v in row) + "}" for row in points)
    main = (MAIN.replace("STEM", "net").replace("NAME", "net")
            .replace("NPOINTS", str(len(points))).replace("POINTS", literal))
    (tmp_path / "main.c").write_text("#include <math.h>\n" + main)
    flags = [flag for flag in c_lowering.compile_flags(width=f.width) if flag != "-shared"]
    assert any(flag in text for flag in flags)  # the header names the build's flags
    built = subprocess.run([cc, *flags, "-o", str(tmp_path / "main"), str(tmp_path / "main.c"),
                            str(source), "-lm"], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    ran = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran
    *values, last = ran.stdout.splitlines()
    assert last == f"first x column {nw}, first dJ_dW column 1"
    got = np.array([float(v) for v in values]).reshape(len(points), nin + 1)
    out = f(W=points[:, :nw].reshape(-1, rows, cols), x=points[:, nw:nw + cols],
            s=points[:, nin - 1])
    want = np.concatenate([np.reshape(v, (len(points), -1)) for v in out], axis=1)
    np.testing.assert_array_equal(got, want)  # %.17g round-trips: the same bits
    assert np.isnan(got[3]).any() or np.isinf(got[3]).any()
    # the Python call's row-major path (NAME_eval) against its columns' path
    flat = np.ascontiguousarray(points)
    np.testing.assert_array_equal(f._evaluate(flat, len(points)), want)


def test_the_header_stands_alone(tmp_path):
    cc = compiler()
    f = cg.to_c(cg.parse("f = x * y"), name="mul")
    _, header = f.write(tmp_path / "lib")
    assert "-c lib.c" in header.read_text()
    (tmp_path / "use.c").write_text('#include "lib.h"\n#include "lib.h"\n'
                                    "int use(double *in, double *out) "
                                    "{ return mul_eval(in, out, mul_NIN + mul_NOUT); }\n")
    built = subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-fsyntax-only",
                            str(tmp_path / "use.c")], capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
