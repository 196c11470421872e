"""The ``circuitgrad`` command line, run as a user runs it: in a subprocess.

Every error path is checked to print one line on standard error, with no traceback, and to
exit non-zero (1 for bad input, 2 for a bad command line).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys

import pytest

import circuitgrad as cg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEURON = "z = w*x + b\no = relu(z)\nJ = 0.5*(y - o)**2\n"


def run(*args: str, stdin: str | None = None, path: str | None = None,
        cwd: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", "circuitgrad", *args], input=stdin,
                          capture_output=True, text=True, encoding="utf-8", env=env,
                          cwd=cwd or ROOT, timeout=120)


def ok(*args: str, process: bool = True, **kw) -> str:
    r = (run if process else call)(*args, **kw)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return r.stdout


def call(*args: str, stdin: str | None = None, path: str | None = None
         ) -> subprocess.CompletedProcess:
    """Run ``main`` in this process (fast), as ``run`` does in a subprocess."""
    from circuitgrad.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin, os.environ.get("PATH")
    sys.stdin = io.StringIO(stdin or "")
    if path is not None:
        os.environ["PATH"] = path
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(list(args))
            except SystemExit as e:  # argparse's usage errors
                status = e.code
    finally:
        sys.stdin = saved[0]
        if saved[1] is not None:
            os.environ["PATH"] = saved[1]
    return subprocess.CompletedProcess(args, status, out.getvalue(), err.getvalue())


def fails(*args: str, status: int = 1, process: bool = False, **kw) -> str:
    """Run a command that must fail (in process, or in a subprocess); return its message."""
    r = (run if process else call)(*args, **kw)
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    if status == 1:
        assert len(lines) == 1, r.stderr
        assert lines[0].startswith("circuitgrad: error: ")
    return lines[-1]


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "neuron.txt"
    path.write_text(NEURON, encoding="utf-8")
    return str(path)


# -- what works ----------------------------------------------------------------------------
def test_version_and_help():
    assert ok("--version").strip() == f"circuitgrad {cg.__version__}"
    text = ok("--help")
    for word in ("eval", "grad", "draw", "info", "--shapes", "examples:"):
        assert word in text
    for command in ("eval", "grad", "draw", "info"):
        r = call(command, "--help")
        assert r.returncode == 0
        assert "EXPR" in r.stdout and "-f FILE" in r.stdout and "--shapes" in r.stdout


def test_eval_value_and_gradient():
    assert ok("eval", "x*y + 1", "--at", "x=2,y=3") == "f = 7.0\n"
    out = ok("eval", "sin(x)*y", "--at", "x=0", "--at", "y=2", "--grad")
    assert out == "f = 0.0\ndf_dx = 2.0\ndf_dy = 0.0\n"
    out = ok("eval", "sin(x)*y", "--at", "x=0,y=2", "--grad", "--wrt", "y", process=False)
    assert out == "f = 0.0\ndf_dy = 0.0\n"


def test_eval_a_program_file_and_stdin(program):
    out = ok("eval", "-f", program, "--at", "w=2,x=1.5,b=0.5,y=1", "--grad")
    assert out.splitlines() == ["J = 3.125", "dJ_dw = 3.75", "dJ_dx = 5.0", "dJ_db = 2.5",
                                "dJ_dy = -2.5"]
    assert ok("eval", "-", "--at", "x=3", stdin="x**2\n") == "f = 9.0\n"
    assert ok("eval", "z = x + 1; J = z*z", "--at", "x=1", process=False) == "J = 4.0\n"


def test_eval_tensors():
    out = ok("eval", "sum(W @ x)", "--shapes", "W=2x2,x=2", "--at", "W=[[1,2],[3,4]],x=[1,-1]",
             "--grad")
    assert out.splitlines() == ["f = -2.0", "df_dW = [[ 1., -1.],", "         [ 1., -1.]]",
                                "df_dx = [4., 6.]"]


def test_grad_prints_the_generated_source():
    out = ok("grad", NEURON, "--wrt", "w,b", process=False)
    assert out.startswith("def grad_J(w, x, b, y):")
    assert "# backward" in out and "z_bar" in out
    assert "return _Outputs(J=J, dJ_dw=w_bar, dJ_db=z_bar)" in out


def test_draw_dot_svg_png(tmp_path):
    assert ok("draw", "x*y").startswith("digraph circuit {")
    for name in ("c.svg", "c.png", "c.pdf", "c.dot"):
        path = tmp_path / name
        assert ok("draw", NEURON, "--grad", "--at", "w=2,x=1.5,b=0.5,y=1", "-o", str(path)) == ""
        assert path.stat().st_size > 100
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")
    assert "∂J/∂w" in (tmp_path / "c.svg").read_text(encoding="utf-8")
    dot = (tmp_path / "c.dot").read_text(encoding="utf-8")
    expected = cg.to_dot(cg.grad(cg.parse(NEURON)), at={"w": 2, "x": 1.5, "b": 0.5, "y": 1})
    assert dot == expected.source


def test_draw_dot_without_graphviz(tmp_path):
    # With no dot on the PATH, DOT output still works.
    assert ok("draw", "x*y", "-o", str(tmp_path / "c.dot"), path=str(tmp_path)) == ""
    assert (tmp_path / "c.dot").read_text(encoding="utf-8").startswith("digraph")


def test_info():
    out = ok("info", NEURON, process=False)
    assert out.splitlines() == [
        "inputs:  w, x, b, y  (positional order, by first use)",
        "outputs: J",
        f"size:    {cg.parse(NEURON).size} operations "
        f"({len(cg.parse(NEURON)) - cg.parse(NEURON).size} inputs and constants)",
        f"adjoint: {cg.grad(cg.parse(NEURON)).size} operations "
        f"(fused: {cg.grad(cg.parse(NEURON)).operations} scalar operations), "
        f"{cg.grad(cg.parse(NEURON)).size / cg.parse(NEURON).size:.2f} x the forward size "
        "(outputs J, dJ_dw, dJ_dx, dJ_db, dJ_dy)"]
    out = ok("info", "W @ x", "--shapes", "W=3x4,x=4", process=False)
    assert "W (3, 4), x (4,)" in out and "f (3,)" in out and "adjoint: none" in out


def test_main_in_process(capsys):
    from circuitgrad.cli import main

    assert main(["eval", "x+1", "--at", "x=1"]) == 0
    assert capsys.readouterr().out == "f = 2.0\n"
    assert main(["eval", "x+"]) == 1
    assert capsys.readouterr().err.startswith("circuitgrad: error: line 1")


# -- every error path ----------------------------------------------------------------------
# A subprocess per error path would take a minute on a small machine: these run `main` in
# process, and a sample of them runs in a subprocess too, as a user meets them.
@pytest.mark.parametrize("args, status, words", [
    (("frobnicate",), 2, "invalid choice"),
    (("eval", "x +* 2", "--at", "x=1"), 1, "line 1, column 4"),
    (("eval", "x*y", "--at", "x=1"), 1, "no value for ['y']"),
    (("info", "-f", "/no/such/file.txt"), 1, "cannot read"),
    (("grad", "W @ x", "--shapes", "W=2x2,x=2"), 1, "scalar output"),
    (("draw", "x", "-o", "c.gif"), 1, "suffix"),
])
def test_errors_in_a_subprocess(args, status, words):
    assert words in fails(*args, status=status, process=True)


def test_no_command_prints_usage():
    r = call()
    assert r.returncode == 2 and "usage:" in r.stderr


def test_argparse_errors():
    assert "invalid choice" in fails("frobnicate", status=2)
    assert "unrecognized arguments" in fails("eval", "x", "--bogus", status=2)
    assert "invalid int value" in fails("draw", "x", "--max-nodes", "many", status=2)


def test_parse_errors_name_line_and_column(program, tmp_path):
    msg = fails("eval", "x +* 2", "--at", "x=1")
    assert "line 1, column 4" in msg
    bad = tmp_path / "bad.txt"
    bad.write_text("z = w*x\nJ = foo(z)\n", encoding="utf-8")
    msg = fails("info", "-f", str(bad))
    assert msg.startswith(f"circuitgrad: error: {bad}: line 2, column 5: unknown function")
    msg = fails("info", "-", stdin="a = 1\na = 2\n")
    assert "<stdin>: line 2" in msg and "assigned twice" in msg
    assert "empty program" in fails("info", "")


def test_shape_errors():
    msg = fails("info", "W @ x", "--shapes", "W=2x3,x=2")
    assert "line 1, column 1" in msg and "matmul" in msg
    assert "not inputs" in fails("info", "x*2", "--shapes", "q=3")
    assert "lengths joined by 'x'" in fails("info", "x", "--shapes", "x=3y")
    assert "expected name=value" in fails("info", "x", "--shapes", "x")
    assert "twice" in fails("info", "x", "--shapes", "x=2,x=3")


def test_program_source_errors(tmp_path):
    assert "give an expression, -f FILE, or -" in fails("info")
    assert "not both" in fails("info", "x", "-f", "prog.txt")
    assert "cannot read" in fails("info", "-f", str(tmp_path / "missing.txt"))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe x")
    assert "not UTF-8" in fails("info", "-f", str(binary))


def test_point_errors():
    assert "no value for ['y']" in fails("eval", "x*y", "--at", "x=1")
    assert "not inputs" in fails("eval", "x", "--at", "x=1,q=2")
    assert "not a number" in fails("eval", "x", "--at", "x=abc")
    assert "not a number" in fails("eval", "x", "--at", "x=True")
    assert "not a number" in fails("eval", "x", "--at", "x=[1,'a']")
    assert "expected name=value" in fails("eval", "x", "--at", "x")
    assert "twice" in fails("eval", "x", "--at", "x=1,x=2")
    assert "shape" in fails("eval", "sum(v)", "--shapes", "v=3", "--at", "v=[1,2]")
    assert "shape" in fails("draw", "x*y", "--at", "x=[1,2],y=1")


def test_gradient_errors():
    assert "not an input" in fails("grad", "x*y", "--wrt", "q")
    assert "give input names" in fails("grad", "x*y", "--wrt", ",")
    assert fails("grad", "a = x*y\nb = a + 1", "--of", "nope") == (
        "circuitgrad: error: --of names 'nope', which the program does not assign (its "
        "output: b)")
    assert "scalar output" in fails("grad", "W @ x", "--shapes", "W=2x2,x=2")
    assert "scalar output" in fails("eval", "W @ x", "--shapes", "W=2x2,x=2", "--grad",
                                    "--at", "W=[[1,0],[0,1]],x=[1,1]")


def test_several_outputs_need_of():
    two = ("a = x*y\nb = a + 1", "--outputs", "a,b")
    assert "--of NAME" in fails("grad", *two)
    assert "outputs ['a', 'b']" in fails("eval", *two, "--grad", "--at", "x=1,y=2")
    assert call("grad", *two, "--of", "b").returncode == 0
    assert "adjoint: none" in call("info", *two).stdout


def test_draw_errors(tmp_path):
    msg = fails("draw", "\n".join(f"v{k} = sin(x) * {k}" for k in range(1, 10)) +
                "\nJ = " + " + ".join(f"v{k}" for k in range(1, 10)), "--max-nodes", "5")
    assert "nodes, more than --max-nodes 5" in msg and "--max-nodes 0" in msg
    assert "suffix" in fails("draw", "x", "-o", str(tmp_path / "c.gif"))
    msg = fails("draw", "x*y", "-o", str(tmp_path / "c.svg"), path=str(tmp_path))
    assert "apt-get install graphviz" in msg
    assert not (tmp_path / "c.svg").exists()
    msg = fails("draw", "x*y", "-o", str(tmp_path / "no" / "such" / "dir.dot"))
    assert "cannot write" in msg and "No such file" in msg


# -- issue 19: what a new user trips over --------------------------------------------------
def test_of_and_outputs_name_any_value():
    out = ok("eval", "a = x*y; b = x+y", "--at", "x=1,y=2", "--grad", "--of", "a",
             process=False)
    assert out.splitlines() == ["a = 2.0", "da_dx = 2.0", "da_dy = 1.0"]
    out = ok("eval", "a = x*y; b = x+y", "--outputs", "a,b", "--at", "x=1,y=2", process=False)
    assert out.splitlines() == ["a = 2.0", "b = 3.0"]
    out = ok("eval", "a = x*y; b = x+y", "--outputs", "a,b", "--at", "x=1,y=2", "--grad",
             "--of", "b", process=False)
    assert out.splitlines() == ["b = 3.0", "db_dx = 1.0", "db_dy = 1.0"]
    # standard input is read once, even when --of re-reads the program for another output
    assert "def grad_a(x, y):" in ok("grad", "-", "--of", "a", stdin="a = x*y\nb = a + 1\n",
                                     process=False)
    assert "adjoint: 1 operations" in ok("info", "a = x*y; b = x+y", "--of", "a",
                                         process=False)
    assert fails("eval", "a = x*y; b = x+y", "--outputs", "a,q", "--at", "x=1,y=2") == (
        "circuitgrad: error: --outputs names 'q', which is not assigned in the program")
    assert "--of names 'b', which is not among --outputs ['a']" in fails(
        "grad", "a = x*y; b = x+y", "--outputs", "a", "--of", "b")
    assert "give output names" in fails("info", "x", "--outputs", ",")


@pytest.mark.parametrize("text, printed", [
    ("nan", "nan"), ("inf", "inf"), ("-inf", "-inf"), ("+inf", "inf"), ("[1, nan]", "[ 1., nan]"),
])
def test_at_takes_nan_and_inf(text, printed):
    r = call("eval", "sum(x)", "--shapes", "x=2", "--at", f"x={text}") if "[" in text else \
        call("eval", "x", "--at", f"x={text}")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    expected = "f = nan\n" if "[" in text else f"f = {printed}\n"
    assert r.stdout == expected


def test_at_literal_too_large_is_infinite_and_says_so():
    for text in ("1e400", "-1e400", "1" + "0" * 400):
        r = call("eval", "x", "--at", f"x={text}")
        assert r.returncode == 0, r.stderr
        assert r.stdout == ("f = -inf\n" if text.startswith("-") else "f = inf\n")
        assert r.stderr == (f"note: --at x={text}: a number too large for a float is taken "
                            "as infinite\n")
    assert "not a number (such as 1.5, -2e3, nan, inf, -inf)" in fails(
        "eval", "x", "--at", "x=nano")
    assert "not a number" in fails("eval", "x", "--at", "x=-[1]")
    assert "of one shape" in fails("eval", "x", "--at", "x=[1,[2,3]]")


# Every error about an option names it as typed (--at, not "at"; --wrt, not "wrt").
@pytest.mark.parametrize("args, start", [
    (("grad", "x*y", "--wrt", "q"), "--wrt names 'q'"),
    (("grad", "x*y", "--wrt", "x,x"), "--wrt names an input twice"),
    (("draw", "x*y", "--at", "x=1"), "--at has no value for ['y']"),
    (("draw", "x*y", "--at", "x=1,y=2,q=3"), "--at names ['q']"),
    (("draw", "x*y", "--at", "x=[1,2],y=1"), "--at: input 'x' has shape ()"),
    (("info", "x*2", "--shapes", "q=3"), "--shapes name ['q']"),
    (("info", "a = x; b = x", "--outputs", "a,a"), "--outputs ['a', 'a'] name the same"),
    (("info", "a = x; b = x", "--outputs", "q"), "--outputs names 'q'"),
    (("eval", "x*y", "--at", "x=1"), "--at has no value for ['y']"),
])
def test_errors_name_options_as_typed(args, start):
    assert fails(*args).startswith(f"circuitgrad: error: {start}")


def test_batch_point_note():
    r = call("eval", "sin(v)", "--at", "v=[1, 2, 3]")
    assert r.returncode == 0
    assert r.stderr == ("note: v=[1, 2, 3] is a batch of 3 points (v is a scalar input); "
                        "declare --shapes v=3 to make it one vector\n")
    r = call("eval", "sum(v)", "--shapes", "v=2", "--at", "v=[[1,2],[3,4],[5,6]]")
    # (the numbers of a batch come with the batch semantics of the lowering: only the note)
    assert r.stderr.startswith("note: v=[[1,2],[3,4],[5,6]] is a batch of 3 points (v is an "
                               "input of shape (2,)); declare --shapes v=3x2 to make it one "
                               "array\n")
    r = call("eval", "x*y", "--at", "x=[1,2],y=3", "--grad")
    assert r.stderr.count("note: ") == 1 and "x=[1,2] is a batch of 2 points" in r.stderr
    assert call("eval", "sum(v)", "--shapes", "v=3", "--at", "v=[1,2,3]").stderr == ""


def test_program_literal_too_large_is_a_note():
    r = call("eval", "x + 1e400", "--at", "x=1")
    assert r.returncode == 0 and r.stdout == "f = inf\n"
    assert r.stderr == ("note: line 1, column 5: the literal 1e400 is too large for a float; "
                        "it is taken as inf\n")
