"""The ``circuitgrad`` command line: evaluate, differentiate, draw and measure a program.

::

    circuitgrad eval  EXPR --at x=1,y=2 [--grad] [--backend numpy|tape|c]  # value (and gradient)
    circuitgrad grad  EXPR [--wrt x,y]             # the generated gradient source
    circuitgrad draw  EXPR [--grad] [--at ...] -o out.svg
    circuitgrad view  EXPR [--grad] [--at ...] -o out.html  # the browser viewer, any size
    circuitgrad info  EXPR                         # inputs, outputs, size, adjoint size
    circuitgrad cache info|clear                   # to_c's compiled-code cache

EXPR is an expression or program text, ``-f FILE`` reads a program file and ``-`` standard
input; ``--shapes W=3x4,x=4`` declares tensor inputs. Bad input prints one line to standard
error (with the line and column of a parse error) and exits with status 1; a bad command line
exits with status 2, as ``argparse`` does.

    >>> main(["eval", "x*y", "--at", "x=2,y=3"])
    f = 6.0
    0
"""

from __future__ import annotations

import argparse
import ast
import math
import re
import sys
import warnings
from typing import Any, Sequence

import numpy as np

from . import __version__
from .circuit import Circuit
from .errors import CircuitError, in_words_of
from .frontends.parse import parse
from .lower.dot import MAX_NODES, render, to_dot
from .lower import cache
from .lower.c import to_c
from .lower.numpy import to_numpy
from .lower.tape import to_tape
from .transforms.grad import grad

_EPILOG = """\
examples:
  circuitgrad eval "sin(x)*y" --at x=0.5,y=2 --grad
  circuitgrad grad -f net.txt --wrt w,b
  circuitgrad draw "z = w*x + b; J = relu(z)" --grad --at w=2,x=1,b=-1 -o adjoint.png
  circuitgrad info "W @ x" --shapes W=3x4,x=4
  echo "x**2" | circuitgrad eval - --at x=3

A program is Python syntax: lines 'name = expression' (or separated by ';'), the last one is
the output. Operators + - * / ** @, comparisons, 'a if c else b', .T, indexing x[1:], x[:, 0].
"""


def _epilog() -> str:
    """The examples, then every function a program may call (read from the primitive table)."""
    import textwrap

    from .frontends.parse import NUMPY_CALLS
    from .primitives import FUNCTIONS

    names = " ".join(sorted(set(FUNCTIONS) | set(NUMPY_CALLS)))
    return _EPILOG + "\n".join(textwrap.wrap("Functions: " + names, 94)) + "\n"


class UsageError(CircuitError):
    """A bad option value (a point, a shape, a file)."""


# -- option values -------------------------------------------------------------------------
def _split(text: str) -> list[str]:
    """Split ``a=1,b=[1,2]`` at the commas outside brackets."""
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:k])
            start = k + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _pairs(items: Sequence[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        for part in _split(item):
            name, eq, value = part.partition("=")
            if not eq or not name.strip():
                raise UsageError(f"{option}: expected name=value, got {part!r}")
            pairs.append((name.strip(), value.strip()))
    return pairs


_SPECIAL = {"nan": math.nan, "inf": math.inf}  # NumPy's spellings (-inf is -(inf))


def _number_literal(text: str, name: str) -> Any:
    """A number or nested list of numbers, as Python writes them plus ``nan``, ``inf`` and
    ``-inf``; a literal too large for a float is the infinity it rounds to (as in programs)."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        tree = None

    def value(node: ast.AST) -> Any:
        if isinstance(node, (ast.List, ast.Tuple)):
            return [value(e) for e in node.elts]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = value(node.operand)
            if isinstance(v, list):
                raise ValueError
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.Name) and node.id in _SPECIAL:
            return _SPECIAL[node.id]
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            try:
                return float(node.value)
            except OverflowError:  # an integer literal beyond the largest float
                return math.inf
        raise ValueError

    try:
        if tree is None:
            raise ValueError
        return value(tree)
    except (ValueError, RecursionError):
        raise UsageError(f"--at: the value of {name!r} is not a number (such as 1.5, -2e3, "
                         f"nan, inf, -inf) or a list of numbers: {text!r}") from None


def _overflows(text: str) -> bool:
    """Whether a literal in ``text`` is finite as written but too large for a float."""
    return any(math.isinf(float(t)) for t in re.findall(r"(?<![\w.])(?:\d+\.?\d*|\.\d+)"
                                                         r"(?:[eE][-+]?\d+)?", text))


def parse_point(items: Sequence[str]) -> dict[str, Any]:
    """``["x=1,y=2", "v=[1,2]"]`` → ``{"x": 1.0, "y": 2.0, "v": array([1., 2.])}``.

    ``nan``, ``inf`` and ``-inf`` are numbers; a literal too large for a float (``1e400``) is
    infinite, and a note on standard error says so.

    >>> parse_point(["x=1,v=[1, 2]", "y=-inf"])
    {'x': 1.0, 'v': array([1., 2.]), 'y': -inf}
    """
    point: dict[str, Any] = {}
    for name, text in _pairs(items, "--at"):
        if name in point:
            raise UsageError(f"--at gives {name!r} twice")
        value = _number_literal(text, name)
        try:
            array = np.array(value, dtype=np.float64)
        except (ValueError, TypeError, MemoryError):  # ragged lists
            raise UsageError(f"--at: the value of {name!r} is not a number or a list of "
                             f"numbers of one shape: {text!r}") from None
        if _overflows(text):
            print(f"note: --at {name}={text}: a number too large for a float is taken as "
                  "infinite", file=sys.stderr)
        point[name] = float(array) if array.ndim == 0 else array
    return point


def parse_shapes(items: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """``["W=3x4,x=4,c="]`` → ``{"W": (3, 4), "x": (4,), "c": ()}``.

    >>> parse_shapes(["W=3x4,x=4"])
    {'W': (3, 4), 'x': (4,)}
    """
    shapes: dict[str, tuple[int, ...]] = {}
    for name, text in _pairs(items, "--shapes"):
        if name in shapes:
            raise UsageError(f"--shapes gives {name!r} twice")
        text = text.strip("()").replace(" ", "")
        dims = [d for d in text.replace("×", "x").replace("*", "x").split("x")] if text else []
        if not all(d.isdigit() for d in dims):
            raise UsageError(f"--shapes: the shape of {name!r} must be lengths joined by 'x', "
                             f"such as 3x4 or 4, got {text!r}")
        shapes[name] = tuple(int(d) for d in dims)
    return shapes


def _names(text: str | None, option: str = "--wrt") -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        what = "input" if option == "--wrt" else "output"
        raise UsageError(f"{option}: give {what} names, such as {option} x,y")
    return names


# The library's parameters as the command line spells them, for its error messages.
_OPTIONS = {"wrt": "--wrt", "output": "--of", "outputs": "--outputs", "at": "--at",
            "shapes": "--shapes"}


# -- reading the program -------------------------------------------------------------------
def read_program(args: argparse.Namespace) -> tuple[str, str | None]:
    """The program text and the file it came from (None for an expression or stdin)."""
    if args.file is not None and args.expr is not None:
        raise UsageError("give either an expression or -f FILE, not both")
    if args.file is not None:
        try:
            with open(args.file, encoding="utf-8") as f:
                return f.read(), args.file
        except OSError as e:
            raise UsageError(f"cannot read {args.file}: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise UsageError(f"cannot read {args.file}: it is not UTF-8 text") from None
    if args.expr is None:
        raise UsageError("give an expression, -f FILE, or - to read standard input")
    if args.expr == "-":
        return sys.stdin.read(), "<stdin>"
    return args.expr, None


def load(args: argparse.Namespace, outputs: Sequence[str] | None = None) -> Circuit:
    """The circuit of the program the arguments name, with the outputs ``--outputs`` names
    (or ``outputs``; default: the last line)."""
    if getattr(args, "text", None) is None:  # standard input can be read only once
        args.text, args.source = read_program(args)
    text, source = args.text, args.source
    shapes = parse_shapes(args.shapes) if args.shapes else None
    if outputs is None:
        outputs = _names(getattr(args, "outputs", None), "--outputs")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            c = parse(text, shapes=shapes, outputs=outputs)
        for w in caught:  # a literal too large for a float, say: a note, as for --at
            where = f"{source}: " if source is not None else ""
            print(f"note: {where}{w.message}", file=sys.stderr)
        return c
    except CircuitError as e:
        if source is not None and getattr(e, "line", None) is not None:
            raise type(e)(f"{source}: {e}") from None
        raise


def _gradient(c: Circuit, args: argparse.Namespace) -> Circuit:
    """The adjoint circuit of the output ``--of`` names: any named value of the program (the
    program's output by default)."""
    output = getattr(args, "of", None)
    if output is None and len(c.outputs) > 1:
        raise UsageError(f"the program has {len(c.outputs)} outputs {list(c.outputs)}: say "
                         "which one to differentiate with --of NAME")
    if output is not None and output not in c.outputs:
        if getattr(args, "outputs", None) is not None:
            raise UsageError(f"--of names {output!r}, which is not among --outputs "
                             f"{list(c.outputs)}")
        try:
            c = load(args, outputs=[output])
        except CircuitError as e:
            if e.argument != "outputs":
                raise
            raise UsageError(f"--of names {output!r}, which the program does not assign "
                             f"(its output: {', '.join(c.outputs)})") from None
    return grad(c, wrt=_names(getattr(args, "wrt", None)), output=output,
                fused=not getattr(args, "unfused", False))


def _check_point(c: Circuit, point: dict[str, Any]) -> None:
    missing = [n for n in c.inputs if n not in point]
    unknown = [n for n in point if n not in c.inputs]
    if missing:
        raise UsageError(f"--at has no value for {missing} (inputs: {list(c.inputs)})")
    if unknown:
        raise UsageError(f"--at names {unknown}, which are not inputs (inputs: "
                         f"{list(c.inputs)})")


def _batch_notes(c: Circuit, point: dict[str, Any], texts: dict[str, str]) -> None:
    """A value with more axes than its input's declared shape is a batch of points: say so."""
    for name, shape in c.input_shapes.items():
        value = np.shape(point[name])
        extra = len(value) - len(shape)
        if extra <= 0:
            continue
        batch = value[:extra]
        count = int(np.prod(batch))
        what = "a scalar input" if not shape else f"an input of shape {shape}"
        declare = "x".join(str(n) for n in value)
        print(f"note: {name}={texts[name]} is a batch of {count} points"
              + (f" (batch shape {batch})" if extra > 1 else "")
              + f" ({name} is {what}); declare --shapes {name}={declare} to make it one "
              + ("vector" if len(value) == 1 else "array"), file=sys.stderr)


def _format(name: str, value: Any) -> str:
    a = np.asarray(value)
    if a.ndim == 0:
        return f"{name} = {float(a)!r}"
    prefix = f"{name} = "
    return prefix + np.array2string(a, separator=", ", max_line_width=100, prefix=prefix)


# -- the commands --------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    c = load(args)
    point = parse_point(args.at or [])
    target = _gradient(c, args) if args.grad else c
    _check_point(target, point)
    _batch_notes(target, point, dict(_pairs(args.at or [], "--at")))
    lower = {"numpy": to_numpy, "tape": to_tape, "c": to_c}[args.backend]
    with np.errstate(all="ignore"):
        result = lower(target)(**point)
    values = result if len(target.outputs) > 1 else (result,)
    for name, value in zip(target.outputs, values):
        print(_format(name, value))
    return 0


def cmd_grad(args: argparse.Namespace) -> int:
    g = _gradient(load(args), args)
    name = f"grad_{g.meta['gradient_of']}"
    print(to_numpy(g, name=name if name.isidentifier() else "grad").source)
    return 0


def cmd_draw(args: argparse.Namespace) -> int:
    c = load(args)
    if args.grad:
        c = _gradient(c, args)
    limit = args.max_nodes if args.max_nodes > 0 else None
    if limit is not None and len(c) > limit:
        raise UsageError(f"the circuit has {len(c)} nodes, more than --max-nodes {limit}: "
                         "Graphviz would take long and the diagram would be unreadable; draw "
                         "it anyway with --max-nodes 0 (no limit)")
    point = parse_point(args.at) if args.at else None
    if point is not None:
        _check_point(c, point)
    if args.output is None:
        sys.stdout.write(to_dot(c, at=point, max_nodes=None).source)
    else:
        render(c, args.output, at=point, max_nodes=None)
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    from .lower.html import to_html

    c = load(args)
    if args.grad:
        c = _gradient(c, args)
    point = parse_point(args.at) if args.at else None
    if point is not None:
        _check_point(c, point)
    to_html(c, at=point, path=args.output)
    print(f"wrote {args.output} ({len(c)} nodes): open it in a browser")
    if args.open:
        import pathlib
        import webbrowser

        webbrowser.open(pathlib.Path(args.output).resolve().as_uri())
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    c = load(args)

    def described(names: Sequence[str], shapes: dict[str, tuple[int, ...]]) -> str:
        return ", ".join(n + (f" {shapes[n]}" if shapes[n] else "") for n in names) or "-"

    order = "  (positional order, by first use)" if len(c.inputs) > 1 else ""
    print(f"inputs:  {described(c.inputs, c.input_shapes)}{order}")
    print(f"outputs: {described(c.outputs, c.output_shapes)}")
    leaves = len(c) - c.size
    print(f"size:    {c.size} operations ({leaves} inputs and constants)")
    try:
        g = _gradient(c, args)
    except CircuitError as e:
        print(f"adjoint: none ({e})")
        return 0
    ratio = g.size / c.size if c.size else float("nan")
    fused = f" (fused: {g.operations} scalar operations)" if g.operations != g.size else ""
    print(f"adjoint: {g.size} operations{fused}, {ratio:.2f} x the forward size "
          f"(outputs {', '.join(g.outputs)})")
    return 0


def _megabytes(size: int) -> str:
    return f"{size} bytes ({size / 2**20:.1f} MiB)"


def cmd_cache(args: argparse.Namespace) -> int:
    if args.action == "clear":
        print(f"removed {cache.clear()} libraries from {cache.cache_dir()}")
        return 0
    state = cache.info()
    print(f"directory: {state['directory']}  ($CIRCUITGRAD_CACHE)")
    print(f"libraries: {state['libraries']}, {_megabytes(state['size'])}")
    print(f"bound:     {_megabytes(state['max'])}  ($CIRCUITGRAD_CACHE_MAX; least recently used "
          "evicted)")
    return 0


# -- the parser ----------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="circuitgrad", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Turn expressions into differentiable circuits, build their gradients as "
                    "circuits, and lower them to NumPy code and Graphviz diagrams.",
        epilog=_epilog())
    parser.add_argument("--version", action="version", version=f"circuitgrad {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=help, description=help, epilog=_epilog(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("expr", nargs="?", metavar="EXPR",
                       help="an expression or program ('z = w*x + b; J = relu(z)'), or - to "
                            "read standard input")
        p.add_argument("-f", "--file", metavar="FILE", help="read the program from FILE")
        p.add_argument("--shapes", action="append", metavar="NAME=SHAPE,...",
                       help="shapes of tensor inputs, e.g. W=3x4,x=4 (others are scalars)")
        p.add_argument("--outputs", metavar="NAMES",
                       help="the outputs: names the program assigns, e.g. a,b (default: "
                            "the last line)")
        return p

    def gradient_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--wrt", metavar="NAMES",
                       help="differentiate with respect to these inputs (default: all), e.g. "
                            "w,b")
        p.add_argument("--of", metavar="NAME",
                       help="the value to differentiate: any name the program assigns "
                            "(default: the output)")
        p.add_argument("--unfused", action="store_true",
                       help="the textbook adjoint: each local partial a node of its own "
                            "(relu′(z) = step(z), then the product), not one fused node per "
                            "bar·f′(x) (the same numbers, bit for bit)")

    p = command("eval", "evaluate the program (and its gradient) at a point")
    p.add_argument("--at", action="append", metavar="NAME=VALUE,...",
                   help="the point, e.g. x=1,y=2 or v=[1,2,3]")
    p.add_argument("--grad", action="store_true", help="also print the gradient")
    gradient_options(p)
    p.add_argument("--backend", choices=("numpy", "tape", "c"), default="numpy",
                   help="the lowering that evaluates: numpy (default), tape (the compiled "
                        "evaluator, no compile step) or c (C compiled with the system "
                        "compiler, cached); the same values (docs/compiled.md)")
    p.set_defaults(run=cmd_eval)

    p = command("grad", "print the generated NumPy source of the gradient")
    gradient_options(p)
    p.set_defaults(run=cmd_grad)

    p = command("draw", "draw the circuit (or its adjoint) with Graphviz")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="the file to write: .svg, .png, .pdf or .dot (default: DOT on "
                        "standard output)")
    p.add_argument("--grad", action="store_true",
                   help="draw the adjoint circuit: the forward pass and the adjoints flowing "
                        "back")
    p.add_argument("--at", action="append", metavar="NAME=VALUE,...",
                   help="show every node's value (and adjoint δ) at this point")
    p.add_argument("--max-nodes", type=int, default=MAX_NODES, metavar="N",
                   help=f"refuse circuits of more than N nodes (default {MAX_NODES}; 0: no "
                        "limit)")
    gradient_options(p)
    p.set_defaults(run=cmd_draw)

    p = command("view", "explore the circuit (or its adjoint) in a browser, any size")
    p.add_argument("-o", "--output", metavar="FILE", default="circuit.html",
                   help="the page to write (default: circuit.html)")
    p.add_argument("--grad", action="store_true",
                   help="view the adjoint circuit: the forward part, the adjoint part and "
                        "the link between each node and its adjoint")
    p.add_argument("--at", action="append", metavar="NAME=VALUE,...",
                   help="show every node's value (and adjoint δ) at this point, on hover")
    p.add_argument("--open", action="store_true", help="open the page in the web browser")
    gradient_options(p)
    p.set_defaults(run=cmd_view)

    p = command("info", "print inputs, outputs, size and the adjoint's size")
    gradient_options(p)
    p.set_defaults(run=cmd_info)

    p = commands.add_parser("cache", help="show or clear to_c's compiled-code cache",
                            description="show or clear to_c's compiled-code cache "
                                        "(docs/compiled.md, 'The cache')")
    p.add_argument("action", choices=("info", "clear"),
                   help="info: where it is, its libraries' size and bound; clear: remove them")
    p.set_defaults(run=cmd_cache)
    return parser


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 bad input, 2 bad usage).

    >>> main(["info", "sin(x)*y"])
    inputs:  x, y  (positional order, by first use)
    outputs: f
    size:    2 operations (2 inputs and constants)
    adjoint: 3 operations (fused: 4 scalar operations), 1.50 x the forward size (outputs f, df_dx, df_dy)
    0
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args)
    except CircuitError as e:  # ParseError names the line and column
        print(f"circuitgrad: error: {_one_line(in_words_of(e, _OPTIONS))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    except Exception as e:  # noqa: BLE001 - a command line prints one line, never a traceback
        print(f"circuitgrad: internal error: {type(e).__name__}: {_one_line(str(e))} "
              "(please report it)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    raise SystemExit(main())
