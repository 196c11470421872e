"""The text front-end: expressions and straight-line programs in Python syntax.

The text is parsed with :mod:`ast` and walked against a whitelist; it is never evaluated.
Every rejection is a :class:`~circuitgrad.errors.ParseError` with line and column (1-based).
The walk is iterative (an explicit stack), so deep expressions cannot overflow the stack, and
long programs are parsed in chunks of lines (linear time, memory of one chunk's syntax tree).

    >>> import circuitgrad as cg
    >>> c = cg.parse('''
    ... z = w*x + b
    ... a = relu(z)
    ... J = 0.5*(a - y)**2
    ... ''')
    >>> c.inputs, c.outputs
    (('w', 'x', 'b', 'y'), ('J',))
"""

from __future__ import annotations

import ast
import io
import keyword
import math
import re
import tokenize
import warnings
from typing import Any, Iterator, Sequence

import numpy as np

from ..circuit import Circuit, no_gc, register_text_reader
from ..builder import Builder
from ..value import Value, in_program_text
from ..errors import CircuitError, ParseError, located
from ..primitives import BINARY_OPERATORS, FUNCTIONS, PRIMITIVES

CHUNK_LINES = 2000
# A line with this many operator characters may be a long flat chain (t0 + t1 + ... + t9999):
# Python's parser nests a BinOp per operator and overflows near 3000, so such a line is split
# at its top-level + - * / @ and rebuilt here (see _Program.chain): linear in the line.
CHAIN_OPERATORS = 256
CHAIN = "chain"  # the _blocks marker of such a line

# Friendly names for the syntax a program may not use.
_UNSUPPORTED = {
    "Lambda": "a lambda", "ListComp": "a comprehension", "SetComp": "a comprehension",
    "DictComp": "a comprehension", "GeneratorExp": "a generator expression",
    "Subscript": "a subscript", "Slice": "a slice", "JoinedStr": "an f-string",
    "FormattedValue": "an f-string", "NamedExpr": "the walrus operator ':='",
    "Starred": "a starred argument", "Tuple": "a tuple", "List": "a list", "Dict": "a dict",
    "Set": "a set", "Await": "await", "Yield": "yield", "YieldFrom": "yield",
}
_STATEMENTS = {
    "AugAssign": "an augmented assignment (it reassigns a name)",
    "AnnAssign": "an annotated assignment", "Import": "an import", "ImportFrom": "an import",
    "FunctionDef": "a function definition", "ClassDef": "a class definition",
    "If": "an if statement", "For": "a loop", "While": "a loop", "With": "a with statement",
    "Return": "return", "Delete": "del", "Global": "global", "Nonlocal": "nonlocal",
    "Pass": "pass", "Raise": "raise", "Try": "try", "Assert": "assert",
    "AsyncFunctionDef": "a function definition", "Match": "a match statement",
}
# Comparisons (ast class names) and the mask primitive each one is (primitives/compare.py).
_COMPARISONS = {"Lt": "less", "LtE": "less_equal", "Gt": "greater", "GtE": "greater_equal",
                "Eq": "equal", "NotEq": "not_equal"}
_LOGIC = {"And": "logical_and", "Or": "logical_or", "BitAnd": "logical_and",
          "BitOr": "logical_or",
          # % and //: NumPy's remainder and floor_divide, as on traced values
          "Mod": "remainder", "FloorDiv": "floor_divide"}
# Names that are numbers unless ``inputs=`` declares them (or the program assigns them).
CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf}
# Words that end a flat chain of + - * / @: what binds more loosely than they do.
_LOOSER = frozenset({"<", ">", "<=", ">=", "==", "!=", "&", "|", "^", "<<", ">>", "if", "else",
                     "and", "or", "not", "in", "is", "lambda"})


def _takes_axis(name: str) -> bool:
    return PRIMITIVES[name].params == ("axis",)


def _syntax_trees(lines: list[str], margin: int = 0, first: int = 0,
                  stop: int | None = None) -> Iterator[tuple[ast.Module, int]]:
    """Parse ``lines`` a chunk at a time; yield each chunk's tree and its first line's index.

    A chunk boundary is a statement boundary only if the chunk parses: otherwise the chunk
    grows (doubling) until it does or until it holds the rest of the text, where a real
    syntax error is reported. Each line is so parsed O(1) times on average. A chunk that
    overflows Python's own parser (RecursionError, MemoryError: an expression nested too
    deeply) is halved until the overflowing line is found, so the error names that line.
    """
    start, n = first, len(lines) if stop is None else stop
    size = CHUNK_LINES
    deep = 0  # when > 0: the chunk of ``deep`` lines from ``start`` overflows the parser
    while start < n:
        end = min(n, start + size)
        try:
            with warnings.catch_warnings():
                # "1if x" or "\d" warn while parsing: the user's text is not our code.
                warnings.simplefilter("ignore", SyntaxWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                tree = ast.parse("\n".join(lines[start:end]), mode="exec")
        except SyntaxError as e:
            if end < n and not (deep and size + 1 >= deep):
                # The chunk may end inside a statement: take more lines (short of an overflow).
                size = min(size * 2, deep - 1) if deep else size * 2
                continue
            if end < n:  # every shorter chunk is cut short, and one more line overflows
                raise _too_deep(start + deep) from None
            line = (e.lineno or 1) + start
            col = (e.offset or 1) + margin
            msg = e.msg
            if "nested" in msg:
                msg += ": split the expression into several assignments"
            raise ParseError(f"invalid syntax: {msg}", line, col) from None
        except (RecursionError, MemoryError):
            if end - start > 1:
                deep, size = end - start, (end - start) // 2
                continue
            raise _too_deep(start + 1) from None
        except ValueError as e:  # e.g. characters UTF-8 cannot encode (lone surrogates)
            raise ParseError(f"invalid text: {e}", start + 1, 1) from None
        yield tree, start
        if deep:  # the overflow lies in the lines after this chunk: keep halving towards it
            deep -= end - start
            size = max(1, deep // 2)
        else:
            size = CHUNK_LINES
        start = end



def _too_deep(line: int) -> ParseError:
    return ParseError("expression too deeply nested for Python's parser: split it into "
                      "several assignments", line, 1)


# The fast path: an ASCII line ``name = a op b``, ``name = f(a)`` or ``name = a`` whose operands
# are names or plain decimal numbers, optionally followed by a comment. Anything else (and any
# line inside brackets or after a backslash) goes through ``ast``; so do the keywords.
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_NUMBER = r"(?:\d{1,15}(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,3})?"
# A negative constant in parentheses, (-0.5), as programs write it next to an operator.
_OPERAND = rf"{_NAME}|{_NUMBER}|\([ \t]*-[ \t]*{_NUMBER}[ \t]*\)"
_SIMPLE = re.compile(
    rf"(?P<target>{_NAME})[ \t]*=[ \t]*(?P<value>"
    rf"(?P<a>{_OPERAND})(?:[ \t]*(?P<op>\*\*|[-+*/@])[ \t]*(?P<b>{_OPERAND}))?"
    rf"|(?P<fn>{_NAME})\([ \t]*(?P<x>{_OPERAND})[ \t]*\))[ \t]*(?:#.*)?")
_BAD_INTEGER = re.compile(r"0+[1-9]\d*")  # 017 is a syntax error in Python 3: let ast say so
_SIMPLE_OPERATORS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow", "@": "matmul"}


def _blocks(lines: list[str], text: str) -> Iterator[tuple[int, int, re.Match | None]]:
    """Split the program into simple lines (with their match) and runs of other lines.

    A run ends only where a simple line starts at bracket depth 0, so every run is whole
    statements. Text with quotes (strings are rejected anyway) is one run: the brackets of
    a string must not fool the depth count.
    """
    if "'" in text or '"' in text:
        yield 0, len(lines), None
        return
    depth, continued, run = 0, False, None
    for i, line in enumerate(lines):
        match = None
        block = line[:1].isspace()  # a line of a block (a loop's): parsed with its header
        if not depth and not continued and not block:
            match = _SIMPLE.fullmatch(line)
            if match is not None and not _simple_names_ok(match):
                match = None
        chain = (match is None and not depth and not continued and not block
                 and sum(map(line.count, "+-*/@")) >= CHAIN_OPERATORS)
        if match is not None or chain:
            if run is not None:
                yield run, i, None
                run = None
            yield i, i + 1, match if match is not None else CHAIN
            continue
        if run is None:
            run = i
        code = line.split("#", 1)[0]
        depth = max(0, depth + code.count("(") + code.count("[") + code.count("{")
                    - code.count(")") - code.count("]") - code.count("}"))
        continued = code.rstrip().endswith("\\")
    if run is not None:
        yield run, len(lines), None


_LINE_END = (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT,
             tokenize.DEDENT)


def _top_level_operators(rhs: str) -> tuple[list[tuple[int, str]], int] | None:
    """The binary ``+ - * / @`` outside brackets in ``rhs`` (character index, operator), and
    where the code ends (before a comment); None if ``rhs`` does not tokenize."""
    operators: list[tuple[int, str]] = []
    depth, operand_before, end = 0, False, len(rhs)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(rhs).readline):
            kind, string, (row, col) = tok.type, tok.string, tok.start
            if row != 1 and kind not in _LINE_END:
                return None
            if kind == tokenize.COMMENT:
                end = col
                break
            if depth == 0 and string in _LOOSER and kind in (tokenize.OP, tokenize.NAME):
                return None  # a comparison or logic at the top: not a flat chain
            if kind == tokenize.OP:
                if string in "([{":
                    depth += 1
                elif string in ")]}":
                    depth -= 1
                elif depth == 0 and operand_before and string in ("+", "-", "*", "/", "@"):
                    operators.append((col, string))
                operand_before = string in ")]}"
            elif kind in (tokenize.NAME, tokenize.NUMBER):
                operand_before = not keyword.iskeyword(string)
            elif kind not in _LINE_END:
                operand_before = False
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    return operators, end


def _simple_names_ok(match: re.Match) -> bool:
    iskeyword = keyword.iskeyword
    for name in match.group("target", "a", "b", "x"):
        if not name:
            continue
        if name[0] == "(":
            name = name.strip("()- \t")
        if iskeyword(name) or (name[0] == "0" and _BAD_INTEGER.fullmatch(name)):
            return False
    fn = match["fn"]
    return fn is None or (fn in FUNCTIONS and PRIMITIVES[fn].arity == 1)


def _char_column(lines: list[str], line: int, offset: int) -> int:
    """1-based character column of a 0-based ``offset`` in UTF-8 bytes (as ``ast`` gives)."""
    if not 1 <= line <= len(lines):
        return offset + 1
    return len(lines[line - 1].encode("utf-8")[:offset].decode("utf-8", "replace")) + 1


class _Program:
    """The state of one parse: names assigned so far, inputs met, the builder."""

    def __init__(self, lines: list[str], inputs: Sequence[str] | None,
                 shapes: dict[str, Any] | None, margin: int = 0):
        self.lines = lines
        self.margin = margin
        self.builder = Builder()
        self.assigned: dict[str, tuple[int, int]] = {}  # name -> (node id, line)
        self.declared = list(inputs) if inputs is not None else None
        # A set beside the list: membership is tested for every name of every line.
        self.declared_set = set(self.declared) if self.declared is not None else None
        self.shapes = {k: tuple(v) for k, v in (shapes or {}).items()}
        self.first_use: dict[str, int] = {}  # free name -> line of its first use
        self.offset = 0  # index of the current chunk's first line
        self.columns: dict[int, Any] = {}  # line -> byte-to-character map (() when ASCII)
        self.overflows: list[str] = []  # warnings about literals, raised by parse
        # In a loop's body: the carried names (inputs of the body that it may assign once).
        self.carried: set[str] = set()
        # Names a loop's body assigned that do not outlive it: name -> the loop's line.
        self.loop_locals: dict[str, tuple[str, int]] = {}
        if self.declared is not None:
            for name in self.declared:
                if not isinstance(name, str) or not name.isidentifier():
                    raise ParseError(f"input name {name!r} is not an identifier")
                if name in self.builder.inputs:
                    raise ParseError(f"inputs name {name!r} twice: {self.declared}")
                self.builder.input(name, self.shapes.get(name, ()))

    def where(self, node: ast.AST) -> tuple[int, int]:
        line = node.lineno + self.offset
        return line, self.column(line, node.col_offset) + self.margin

    def column(self, line: int, offset: int) -> int:
        """``_char_column``, in O(1) per call: a long line must not cost its length per name."""
        chars = self.columns.get(line)
        if chars is None:
            text = self.lines[line - 1] if 1 <= line <= len(self.lines) else ""
            if text.isascii():
                chars = ()
            else:  # chars[k]: the characters before byte k
                chars = [0]
                for count, ch in enumerate(text, 1):
                    chars.extend([count] * len(ch.encode("utf-8", "surrogatepass")))
            self.columns[line] = chars
        if not chars or offset >= len(chars):
            return _char_column(self.lines, line, offset) if chars else offset + 1
        return chars[offset] + 1

    def fail(self, node: ast.AST, message: str) -> ParseError:
        return ParseError(message, *self.where(node))

    # -- statements ----------------------------------------------------------------------
    def statement(self, stmt: ast.stmt, last: bool) -> tuple[str | None, int] | None:
        """Build one statement; return (target name or None, node) for the output candidate."""
        kind = type(stmt).__name__
        if isinstance(stmt, ast.Assign):
            if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
                raise self.fail(stmt, "only 'name = expression' assignments are supported")
            target = stmt.targets[0].id
            line, col = self.where(stmt)
            node = self.expression(stmt.value)  # first: a use on the right counts (x = 2*x)
            self.check_target(target, line, col)
            return self.assign(target, node, line)
        if isinstance(stmt, ast.Expr):
            if not last:
                raise self.fail(stmt, "a bare expression is only allowed as the last line "
                                      "(it is the output); assign it to a name")
            return None, self.expression(stmt.value)
        if isinstance(stmt, ast.For) and not self.carried:
            return self.loop(stmt)
        raise self.fail(stmt, f"{_STATEMENTS.get(kind, kind)} is not supported: a program is "
                              "assignments 'name = expression'")

    def loop(self, stmt: ast.For) -> tuple[str | None, int]:
        """``for i in range(n):`` over assignments: one ``scan`` node whose body is the block,
        built once (docs/loops.md). A name assigned before the loop and in its block is
        *carried* (its value after a step is the next step's); ``i`` is the step's number;
        the names the block reads from outside are the body's closures. After the loop a
        carried name is its value after the last step; a name only the block assigns is
        refused after it."""
        from ..primitives.loops import Body, layout, leaf
        from .loops import step_numbers

        steps = self.loop_range(stmt)
        index = stmt.target.id if isinstance(stmt.target, ast.Name) else None
        if index is None or stmt.orelse or not stmt.body:
            raise self.fail(stmt, "a loop is 'for i in range(n):' over assignments, without "
                                  "else")
        line, _ = self.where(stmt)
        targets: list[str] = []
        for inner in stmt.body:
            if not (isinstance(inner, ast.Assign) and len(inner.targets) == 1
                    and isinstance(inner.targets[0], ast.Name)):
                kind = type(inner).__name__
                raise self.fail(inner, f"{_STATEMENTS.get(kind, 'this statement')} in a loop: "
                                       "a loop's block is assignments 'name = expression'")
            if inner.targets[0].id not in targets:
                targets.append(inner.targets[0].id)
        if index in targets or index in self.assigned:
            raise self.fail(stmt, f"the loop's index '{index}' must be a new name, not "
                                  "assigned")
        carried = [t for t in targets if t in self.assigned]
        for t in targets:
            if t not in carried and (t in self.first_use or (
                    self.declared_set is not None and t in self.declared_set)):
                raise self.fail(stmt, f"'{t}' is an input, and an input is never assigned: "
                                      f"assign its start value to a name before the loop "
                                      f"({t}0 = {t}) and carry that")
        if not carried:
            raise self.fail(stmt, "the loop carries nothing: assign a name before the loop "
                                  "and update it in the block (s = 0.0; for i in range(n): "
                                  "s = s + ...)")
        b = self.builder
        # The body's closures (names it reads from outside) have their shapes out there.
        outside = {**self.shapes, **{n: b.shapes[i] for n, i in b.inputs.items()},
                   **{n: b.shapes[i] for n, (i, _) in self.assigned.items()}}
        body = _Program(self.lines, None, outside, self.margin)
        body.offset = self.offset
        body.carried = set(carried)
        for name in carried:
            body.builder.input(name, b.shapes[self.assigned[name][0]])
        body.builder.input(index, ())
        for inner in stmt.body:
            body.statement(inner, False)
        free = [n for n in body.builder.inputs if n not in body.carried and n != index]
        outputs = [(f"{n}.next", body.assigned[n][0] if n in body.assigned
                    else body.builder.inputs[n]) for n in carried]
        circuit = body.builder.finish(outputs, inputs=carried + [index] + free)
        try:
            made = Body(circuit, carries=len(carried), xs=1)
        except CircuitError as e:  # a carried name whose shape a step changes
            raise located(type(e)(f"{e} (a carried name keeps its shape from step to step: a "
                                  "Python loop would broadcast it, a circuit's loop cannot)"),
                          line, 1) from None
        closures = [self.lookup(n, line, 1) for n in free]  # (outside: an input, or assigned)
        try:
            numbers = b.const_id(step_numbers(steps[0], steps[1], f"the loop 'for {index} "
                                              f"in range({steps[0]}, {steps[1]})'"))
        except CircuitError as e:
            raise located(e, line, 1) from None
        try:
            packed = b.apply_id("scan", tuple(self.assigned[n][0] for n in carried)
                                + (numbers,) + tuple(closures),
                                {"body": made, "length": steps[1] - steps[0],
                                 "reverse": False, "save": False})
        except CircuitError as e:
            raise located(e, line, 1) from None
        places = layout(made, steps[1] - steps[0], save=False)[:len(carried)]
        for name, (offset, shape) in zip(carried, places):
            node = leaf(b, Value(b, packed), offset, shape).id
            self.assign(name, node, line)
        for t in targets:
            if t not in carried:
                self.loop_locals[t] = ("local", line)
        self.loop_locals[index] = ("index", line)
        return carried[-1], self.assigned[carried[-1]][0]

    def loop_range(self, stmt: ast.For) -> tuple[int, int]:
        it = stmt.iter
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name)
                and it.func.id == "range" and not it.keywords and 1 <= len(it.args) <= 2):
            raise self.fail(it, "a loop runs over range(n) or range(a, b), with integer "
                                "literals")
        bounds = []
        for a in it.args:
            value = _literal(a) if isinstance(a, (ast.Constant, ast.UnaryOp)) else None
            if not isinstance(value, int) or isinstance(value, bool):
                raise self.fail(a, "range's bounds must be integer literals (the trip count "
                                   "is part of the circuit)")
            bounds.append(value)
        start, stop = (0, bounds[0]) if len(bounds) == 1 else bounds
        if stop <= start:
            raise self.fail(it, f"range({start}, {stop}) runs no step")
        return start, stop

    def check_target(self, target: str, line: int, col: int) -> None:
        """The rules of straight-line programs, checked once the right-hand side is built: a
        name is assigned at most once, and a name used before it is assigned (even on the
        right of its own assignment, ``x = 2*x``) is an input, which is never assigned."""
        if target in self.carried and target not in self.assigned:
            return  # a loop's carried name: its new value, once per step
        if target in self.assigned:
            raise ParseError(f"'{target}' is assigned twice (first on line "
                             f"{self.assigned[target][1]}); use a new name", line, col)
        if self.declared_set is not None and target in self.declared_set:
            raise ParseError(f"cannot assign to input '{target}'", line, col)
        if target in self.first_use:
            raise ParseError(f"'{target}' is used on line {self.first_use[target]} before it "
                             "is assigned here, so it is an input, and an input is never "
                             "assigned: use a new name", line, col)

    def assign(self, target: str, node: int, line: int) -> tuple[str, int]:
        self.builder.name(node, target)
        self.assigned[target] = (node, line)
        return target, node

    def simple(self, match: re.Match, line: int) -> tuple[str, int]:
        """A line of the form ``name = a op b``, ``name = f(a)`` or ``name = a`` (the fast path:
        no syntax tree; the same checks and nodes as the tree walk)."""
        target = match["target"]
        col = self.margin + 1
        try:
            if match["op"]:
                a, b = self.operand(match, "a", line), self.operand(match, "b", line)
                node = self.builder.apply_id(_SIMPLE_OPERATORS[match["op"]], (a, b))
            elif match["fn"]:
                node = self.builder.apply_id(match["fn"], (self.operand(match, "x", line),))
            else:
                node = self.operand(match, "a", line)
        except CircuitError as e:
            raise located(e, line, self.margin + match.start("value") + 1) from None
        self.check_target(target, line, col)
        return self.assign(target, node, line)

    def operand(self, match: re.Match, group: str, line: int) -> int:
        text = match[group]
        if text[0] == "(":  # (-0.5)
            number = text.strip("()- \t")
            value = -float(number)
            if math.isinf(value):  # (named as Python's tree names it: the literal -1e400)
                self.overflow("-" + number, line,
                              self.margin + match.start(group) + text.index("-") + 1)
            return self.builder.const_id(value)
        if text[0].isdigit() or text[0] == ".":
            value = float(text)
            if math.isinf(value):
                self.overflow(text, line, self.margin + match.start(group) + 1)
            return self.builder.const_id(value)
        return self.lookup(text, line, self.margin + match.start(group) + 1)

    # -- long flat chains (one line, top-level + - * / @ between operands) -----------------
    def chain(self, text: str, line: int, last: bool) -> tuple[str | None, int] | None:
        """A line ``[name =] e0 op e1 op ... en`` with many top-level operators, built without
        Python's recursive parser: the operators become commas (same columns), the operands
        are parsed as one flat tuple, and the chain is folded here with the two precedence
        levels (``* / @`` over ``+ -``), left to right, as Python would. None: not such a
        line (it goes through ``ast`` as usual)."""
        m = re.match(rf"(?P<target>{_NAME})[ \t]*=(?!=)", text)
        start = m.end() if m else 0
        split = _top_level_operators(text[start:])
        if split is None:
            return None
        operators, end = split
        if len(operators) < 2:
            return None
        rhs = list(text[start:start + end])
        for k, _ in operators:
            rhs[k] = ","
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SyntaxWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                tree = ast.parse("(" + "".join(rhs) + ")", mode="eval").body
        except (SyntaxError, RecursionError, MemoryError, ValueError):
            return None  # the ast path reports it, with Python's own message
        if not isinstance(tree, ast.Tuple) or len(tree.elts) != len(operators) + 1 or \
                any(isinstance(e, ast.Starred) for e in tree.elts):
            return None
        shift = len(text[:start].encode("utf-8")) - 1  # bytes before the operands, less "("
        for node in ast.walk(tree):
            if hasattr(node, "col_offset"):
                node.lineno = node.end_lineno = 1
                node.col_offset += shift
                node.end_col_offset += shift
        self.offset = line - 1
        target = m["target"] if m else None
        if target is None and not last:
            raise ParseError("a bare expression is only allowed as the last line (it is the "
                             "output); assign it to a name", line, self.margin + 1)
        elts = tree.elts
        total = None  # the sum so far, and the operator that joins the next term to it
        joiner = None
        term, term_at = self.expression(elts[0]), elts[0]
        for (_, op), elt in zip(operators, elts[1:]):
            # Nodes are built in the order of the syntax tree's post-order walk.
            if op in "*/@":
                term = self.combine(op, term, self.expression(elt), term_at)
                continue
            total = term if total is None else self.combine(joiner, total, term, elts[0])
            joiner, term, term_at = op, self.expression(elt), elt
        total = term if total is None else self.combine(joiner, total, term, elts[0])
        if target is None:
            return None, total
        self.check_target(target, line, self.margin + 1)
        return self.assign(target, total, line)

    def combine(self, op: str, a: int, b: int, left: ast.AST) -> int:
        """``a op b``, an error located where Python puts the BinOp: its left operand."""
        try:
            return self.builder.apply_id(_SIMPLE_OPERATORS[op], (a, b))
        except CircuitError as e:
            raise located(e, *self.where(left)) from None

    # -- expressions (iterative post-order walk) -----------------------------------------
    def expression(self, root: ast.expr) -> int:
        values: list[int] = []
        stack: list[tuple[ast.AST, bool]] = [(root, False)]
        while stack:
            node, ready = stack.pop()
            if not ready:
                children = self.children(node)
                stack.append((node, True))
                stack.extend((c, False) for c in reversed(children))
                continue
            count = len(self.children(node))
            args = values[len(values) - count:] if count else []
            del values[len(values) - count:]
            try:
                values.append(self.build(node, args))
            except CircuitError as e:
                raise located(e, *self.where(node)) from None
        (result,) = values
        return result

    def children(self, node: ast.AST) -> list[ast.AST]:
        if isinstance(node, ast.BinOp):
            return [node.left, node.right]
        if isinstance(node, ast.UnaryOp):
            return [] if _literal(node) is not _NOT_LITERAL else [node.operand]
        if isinstance(node, ast.Call):
            if _numpy_call(node) is not None:
                return _call_leaves(node)
            return self.call_args(node)
        if isinstance(node, ast.Attribute):
            return [node.value]
        if isinstance(node, ast.Subscript):
            return [node.value]
        if isinstance(node, ast.Compare):
            return [node.left, *node.comparators]
        if isinstance(node, ast.IfExp):
            return [node.test, node.body, node.orelse]  # a if test else b: where(test, a, b)
        if isinstance(node, ast.BoolOp):
            return list(node.values)
        return []

    def call_args(self, node: ast.Call) -> list[ast.AST]:
        func = node.func
        if isinstance(func, ast.Attribute):
            raise self.fail(func, f"attribute access '.{func.attr}()' is not supported: "
                                  "call functions by their bare name, e.g. sin(x), sum(x), "
                                  "reshape(x, (2, 3))")
        if not isinstance(func, ast.Name):
            raise self.fail(node, "only named functions can be called, e.g. sin(x)")
        name = func.id
        if name not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            raise self.fail(func, f"unknown function '{name}' (known: {known})")
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.fail(a, "starred arguments are not supported")
        prim = PRIMITIVES[FUNCTIONS[name]]
        extra = 1 if _takes_axis(name) else 0
        allowed = {"axis"} if extra else set()
        for kw in node.keywords:
            if kw.arg not in allowed:
                what = "**keywords" if kw.arg is None else f"keyword argument '{kw.arg}'"
                raise self.fail(kw if kw.arg else node, f"{name}() takes no {what}")
        n = len(node.args) + len(node.keywords)
        if not prim.arity <= n <= prim.arity + extra:
            takes = f"{prim.arity}" + (f" or {prim.arity + extra}" if extra else "")
            plural = "s" if prim.arity + extra != 1 else ""
            hint = ""
            if name in ("max", "min") and n > 2:
                hint = f" (the {name} of several values is {name}imum(a, b), nested)"
            raise self.fail(node, f"{name}() takes {takes} argument{plural}, got {n}{hint}")
        return list(node.args[: prim.arity])

    def axis(self, node: ast.Call) -> int | None:
        given = node.args[1:] + [kw.value for kw in node.keywords]
        name = node.func.id  # type: ignore[attr-defined]
        if not given:
            return None
        (expr,) = given
        sign = 1
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
            sign, expr = -1, expr.operand
        if (isinstance(expr, ast.Constant) and isinstance(expr.value, int)
                and not isinstance(expr.value, bool)):
            return sign * expr.value
        hint = ""
        if name in ("max", "min") and node.args[1:]:
            hint = f" ({name}(x) reduces x; the {name} of two values is {name}imum(a, b))"
        raise self.fail(expr, f"axis must be an integer literal{hint}")

    def build(self, node: ast.AST, args: list[int]) -> int:
        b = self.builder
        if isinstance(node, ast.BinOp):
            op = BINARY_OPERATORS.get(type(node.op).__name__)
            if op is None:
                symbol = {"FloorDiv": "//", "Mod": "%", "LShift": "<<", "RShift": ">>",
                          "BitOr": "|", "BitXor": "^", "BitAnd": "&"}.get(
                              type(node.op).__name__, type(node.op).__name__)
                logic = _LOGIC.get(type(node.op).__name__)
                if logic is not None:  # a & b, a | b: masks
                    return b.apply_id(logic, tuple(args))
                hint = " (use ** for powers)" if symbol == "^" else ""
                raise self.fail(node, f"operator '{symbol}' is not supported{hint}")
            if op == "matmul" and any(len(b.shapes[a]) > 2 for a in args):
                # stacks of matrices: NumPy's matmul, as a traced function's @ (an einsum)
                from .numpy_api import numpy_function

                with in_program_text():
                    return numpy_function(np.matmul, [Value(b, a) for a in args], {}).id
            return b.apply_id(op, tuple(args))
        if isinstance(node, ast.UnaryOp):
            if not args:  # -2: a negative constant
                return self.constant(node, _literal(node))
            if isinstance(node.op, ast.USub):
                return b.apply_id("neg", tuple(args))
            if isinstance(node.op, ast.UAdd):
                return args[0]
            return b.apply_id("logical_not", tuple(args))  # not x, ~x: a mask
        if isinstance(node, ast.Call) and _numpy_call(node) is not None:
            return self.numpy_call(node, args)
        if isinstance(node, ast.Subscript):
            return self.subscript(node, args[0])
        if isinstance(node, (ast.List, ast.Tuple)):
            value = _literal(node)
            if value is _NOT_LITERAL or isinstance(node, ast.Tuple):
                what = "a list" if isinstance(node, ast.List) else "a tuple"
                raise self.fail(node, f"{what} is only supported as a constant of numbers "
                                      "([3, 5, 2]) or as the arrays of concatenate([a, b])")
            return self.constant(node, value)
        if isinstance(node, ast.Compare):
            # a < b < c is (a < b) and (b < c), as in Python (b is built once).
            masks = []
            for k, op_node in enumerate(node.ops):
                mask = _COMPARISONS.get(type(op_node).__name__)
                if mask is None:
                    word = {"Is": "is", "IsNot": "is not", "In": "in", "NotIn": "not in"}
                    raise self.fail(node, f"operator '{word[type(op_node).__name__]}' is not "
                                          "supported (comparisons: < <= > >= == !=)")
                masks.append(b.apply_id(mask, (args[k], args[k + 1])))
            return self.fold("logical_and", masks)
        if isinstance(node, ast.IfExp):
            return b.apply_id("where", tuple(args))
        if isinstance(node, ast.BoolOp):
            return self.fold(_LOGIC[type(node.op).__name__], args)
        if isinstance(node, ast.Call):
            name = node.func.id  # type: ignore[attr-defined]
            params = {}
            if _takes_axis(name):
                axis = self.axis(node)
                if axis is not None:
                    params["axis"] = axis
                if name in ("max", "min") and node.args[1:] and b.shapes[args[0]]:
                    # max(x, 0) of a tensor: Python's max of two values, or NumPy's reduction
                    # over axis 0? Both are plausible, so neither is guessed.
                    k = ast.unparse(node.args[1])
                    x = ast.unparse(node.args[0])
                    raise self.fail(node, f"{name}({x}, {k}) of a tensor {x} is ambiguous: "
                                    f"write {name}imum({x}, {k}) for the elementwise {name}, "
                                    f"or {name}({x}, axis={k}) for the {name} over axis {k}")
            return b.apply_id(FUNCTIONS[name], tuple(args), params)
        if isinstance(node, ast.Attribute):
            if node.attr == "T":
                return b.apply_id("transpose", tuple(args))
            if node.attr in ("ndim", "size"):
                value = Value(b, args[0])
                return b.const_id(float(getattr(value, node.attr)))
            raise self.fail(node, f"attribute access '.{node.attr}' is not supported "
                                  "(only '.T', '.ndim' and '.size')")
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                what = {str: "strings", bytes: "bytes", complex: "complex numbers",
                        bool: "booleans"}.get(type(value), repr(value))
                raise self.fail(node, f"{what} are not supported: only real numbers")
            try:
                number = float(value)
            except OverflowError:  # an integer literal beyond the largest float
                number = math.inf
            if math.isinf(number):  # a literal can only be infinite by overflowing
                self.overflow(self.literal_text(node), *self.where(node))
            return b.const_id(number)
        kind = type(node).__name__
        raise self.fail(node, f"{_UNSUPPORTED.get(kind, kind)} is not supported here")

    def constant(self, node: ast.AST, value: Any) -> int:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (ValueError, OverflowError):
            raise self.fail(node, "a constant list must be numbers in a rectangular "
                                  "layout, such as [[1, 2], [3, 4]]") from None
        if np.isinf(array).any():  # a literal can only be infinite by overflowing
            self.overflow(self.literal_text(node), *self.where(node))
        if isinstance(array, np.ndarray) and array.ndim == 0:
            array = float(array)
        return self.builder.const_id(array)

    def subscript(self, node: ast.Subscript, x: int) -> int:
        """``x[1:]``, ``x[i, j]``, ``x[:, 0]``, ``x[..., None]``, ``x[[0, 2, 5]]``: NumPy's
        meaning, with constant indices."""
        index = _index(node.slice)
        if index is _NOT_LITERAL:
            raise self.fail(node.slice, "an index must be made of integer constants, slices "
                                        "of them, None, '...' or a list of integers")
        with in_program_text():
            return Value(self.builder, x)[index].id

    def numpy_call(self, node: ast.Call, args: list[int]) -> int:
        """A call whose arguments are arrays, lists of arrays and integer constants: the same
        handler as NumPy's function called on traced values (frontends/trace.py)."""
        from .numpy_api import numpy_function

        name = node.func.id  # type: ignore[attr-defined]
        leaves = iter(Value(self.builder, a) for a in args)

        def value(arg: ast.AST) -> Any:
            literal = _literal(arg)
            if literal is not _NOT_LITERAL:
                return literal
            if isinstance(arg, (ast.List, ast.Tuple)):
                return [value(e) for e in arg.elts]
            return next(leaves)

        for kw in node.keywords:
            if kw.arg is None:
                raise self.fail(node, f"{name}() takes no **keywords")
        positional = [value(a) for a in node.args]
        keywords = {kw.arg: value(kw.value) for kw in node.keywords}
        if name == "len":
            if len(positional) != 1 or keywords or not isinstance(positional[0], Value):
                raise self.fail(node, "len() takes one array")
            return self.builder.const_id(float(len(positional[0])))
        with in_program_text():
            result = numpy_function(NUMPY_CALLS[name], positional, keywords)
        if not isinstance(result, Value):
            raise self.fail(node, f"{name}() gives {result!r} here, not an array")
        return result.id

    def overflow(self, text: str, line: int, col: int) -> None:
        """Note a literal too large for a float (parse warns once it is done)."""
        self.overflows.append(f"line {line}, column {col}: the literal {text} is too large "
                              "for a float; it is taken as inf")

    def fold(self, op: str, ids: list[int]) -> int:
        result = ids[0]
        for i in ids[1:]:
            result = self.builder.apply_id(op, (result, i))
        return result

    def literal_text(self, node: ast.AST) -> str:
        line = node.lineno + self.offset
        if node.end_lineno != node.lineno or not 1 <= line <= len(self.lines):
            return "a number"
        code = self.lines[line - 1].encode("utf-8")
        text = code[node.col_offset:node.end_col_offset].decode("utf-8", "replace")
        return text if len(text) <= 30 else text[:27] + "..."

    def name(self, node: ast.Name) -> int:
        return self.lookup(node.id, *self.where(node))

    def lookup(self, name: str, line: int, col: int) -> int:
        """The node a name stands for: assigned before, or an input."""
        hit = self.assigned.get(name)
        if hit is not None:
            return hit[0]
        if name in self.loop_locals:
            what, where = self.loop_locals[name]
            raise ParseError(f"'{name}' is the index of the loop on line {where}: it has no "
                             "value after the loop" if what == "index" else
                             f"'{name}' is assigned in the loop on line {where} but carried by "
                             "none (it has no value before the loop): assign it before the "
                             "loop to carry it", line, col)
        declared = self.declared_set is not None and name in self.declared_set
        if name in CONSTANTS and not declared:
            return self.builder.const_id(CONSTANTS[name])
        if self.declared_set is not None and not declared:
            raise ParseError(f"unknown name '{name}': it is neither assigned before nor "
                             f"among the inputs {self.declared}", line, col)
        self.first_use.setdefault(name, line)
        return self.builder.input(name, self.shapes.get(name, ())).id


# Functions a program calls with NumPy's own arguments (lists of arrays, shapes, axes): the
# handlers of the tracing front-end build them, so a program and a traced function mean the
# same. (Their primitives are internal: the generic call path above cannot carry params.)
NUMPY_CALLS: dict[str, Any] = {
    "concatenate": np.concatenate, "stack": np.stack, "hstack": np.hstack,
    "vstack": np.vstack, "reshape": np.reshape, "ravel": np.ravel, "flip": np.flip,
    "expand_dims": np.expand_dims, "squeeze": np.squeeze, "cumsum": np.cumsum,
    "diff": np.diff, "dot": np.dot, "permute_dims": np.transpose,
    "atleast_1d": np.atleast_1d, "atleast_2d": np.atleast_2d, "len": len,
}


def _numpy_call(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name) and func.id in NUMPY_CALLS:
        return func.id
    return None


_NOT_LITERAL = object()


def _literal(node: ast.AST) -> Any:
    """The Python value of an integer, number, None or '...' constant, a negated one, or a
    list or tuple of them; ``_NOT_LITERAL`` otherwise."""
    if isinstance(node, ast.Constant):
        v = node.value
        if v is None or v is Ellipsis or (isinstance(v, (int, float))
                                          and not isinstance(v, bool)):
            return v
        return _NOT_LITERAL
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _literal(node.operand)
        if isinstance(v, (int, float)):
            return -v if isinstance(node.op, ast.USub) else v
        return _NOT_LITERAL
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(e) for e in node.elts]
        if any(v is _NOT_LITERAL for v in items) or not items:
            return _NOT_LITERAL
        return items if isinstance(node, ast.List) else tuple(items)
    return _NOT_LITERAL


def _call_leaves(node: ast.Call) -> list[ast.AST]:
    """The argument expressions of a NumPy-form call, in order (inside lists too)."""
    leaves: list[ast.AST] = []

    def walk(arg: ast.AST) -> None:
        if _literal(arg) is not _NOT_LITERAL:
            return
        if isinstance(arg, (ast.List, ast.Tuple)):
            for e in arg.elts:
                walk(e)
        else:
            leaves.append(arg)

    for a in node.args:
        if isinstance(a, ast.Starred):
            raise ParseError("starred arguments are not supported", a.lineno, a.col_offset + 1)
        walk(a)
    for kw in node.keywords:
        walk(kw.value)
    return leaves


def _index(node: ast.AST) -> Any:
    """A subscript's constant index as Python values (slices, ints, None, '...', a list of
    integers), or ``_NOT_LITERAL``."""
    if isinstance(node, ast.Slice):
        parts = [None if p is None else _literal(p) for p in (node.lower, node.upper, node.step)]
        if any(p is _NOT_LITERAL or isinstance(p, float) for p in parts):
            return _NOT_LITERAL
        return slice(*parts)
    if isinstance(node, ast.Tuple):
        items = [_index(e) for e in node.elts]
        return _NOT_LITERAL if any(i is _NOT_LITERAL for i in items) else tuple(items)
    value = _literal(node)
    if isinstance(value, float) or (isinstance(value, list) and any(
            not isinstance(v, int) for v in value)) or isinstance(value, tuple):
        return _NOT_LITERAL
    return value


def parse(text: str, inputs: Sequence[str] | None = None,
          outputs: Sequence[str] | None = None,
          shapes: dict[str, Sequence[int]] | None = None) -> Circuit:
    """Compile an expression or a straight-line program into a :class:`Circuit`.

    Args:
        text: one expression (``"sin(x)*y + exp(x)"``) or lines ``name = expression``;
            the last line may be a bare expression. Python syntax, parsed, never evaluated.
        inputs: the input names in order. Default: the free names in order of first use.
        outputs: names to output. Default: the last line (``f`` if it is a bare expression).
        shapes: the shape of tensor inputs, e.g. ``{"W": (3, 4), "x": (4,)}``, or example
            arrays; other inputs are scalars.

    The rule of names (a straight-line program, as in the notes): every name is either an
    *input* or *assigned*, never both. A name used before it is assigned is an input, so
    assigning it afterwards is an error, and so is ``x = 2*x`` (the right-hand side uses the
    input ``x``) and assigning a name given in ``inputs``; a name is assigned at most once.
    Write ``x2 = 2*x`` instead.

    A number literal too large for a float (``1e400``, or a 400-digit integer) is the
    infinity it rounds to, as in NumPy; a ``RuntimeWarning`` names its line and column.
    ``pi``, ``e`` and ``inf`` are those numbers unless ``inputs`` names them.

    A loop ``for i in range(n):`` over a block of assignments is one ``scan`` node: a name
    assigned before the loop and in the block is carried from step to step (docs/loops.md,
    "In programs").

    Comparisons (``x > 0``, ``0 < x < 1``, ``==``) are masks, 1.0 where they hold and 0.0
    elsewhere; ``&``, ``|``, ``~`` and ``and``, ``or``, ``not`` combine them, and
    ``a if c else b`` is ``where(c, a, b)``. Every function of the primitive table may be
    called by name (``logsumexp(z, axis=0)``, ``atan2(y, x)``, ``clip(x, 0, 1)`` ...).

    Returns:
        The circuit, with common subexpressions shared.

    Raises:
        ParseError: bad syntax, an unknown function or name, a reassignment ... with the
            line and column.
        ShapeError: operands whose shapes do not fit, with the line and column.

    >>> parse("sin(x)*y + exp(x)").size
    4
    >>> c = parse("x if x > 0 else 0.01 * x")
    >>> c.op(c.output_ids[0]), parse("pi * r**2").inputs
    ('where', ('r',))
    """
    if not isinstance(text, str):
        raise ParseError(f"expected program text (str), got {type(text).__name__}")
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise ParseError("the text contains a NUL character", line,
                         nul - (text.rfind("\n", 0, nul) + 1) + 1)
    if shapes is not None:
        shapes = _check_shapes(shapes)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    margin = _margin(lines)
    if margin:
        # An indented block (a triple-quoted string in Python code) is read as if dedented;
        # columns still count from the original line start.
        lines = [line[margin:] if line.strip() else "" for line in lines]
    program = _Program(lines, inputs, shapes, margin)
    last: tuple[str | None, int] | None = None
    with no_gc(), np.errstate(all="ignore"):
        for start, stop, match in _blocks(lines, text):
            if match == CHAIN:
                chained = program.chain(lines[start], start + 1,
                                        all(not s.strip() or s.lstrip().startswith("#")
                                            for s in lines[start + 1:]))
                if chained is not None:
                    last = chained
                    continue
            elif match is not None:
                last = program.simple(match, start + 1)
                continue
            for tree, offset in _syntax_trees(lines, margin, start, stop):
                program.offset = offset
                body = tree.body
                for k, stmt in enumerate(body):
                    # Only a bare expression cares whether it is the program's last line.
                    is_last = (k == len(body) - 1 and isinstance(stmt, ast.Expr)
                               and _only_blank(lines, offset, stmt))
                    last = program.statement(stmt, is_last)
    if last is None:
        raise ParseError("empty program: write an expression such as 'sin(x) * y'", 1, 1)
    for message in program.overflows:
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return _finish(program, last, outputs, shapes)


register_text_reader(parse)


def _margin(lines: list[str]) -> int:
    """The indentation common to every non-blank line."""
    indents = [line[: len(line) - len(line.lstrip(" \t"))] for line in lines if line.strip()]
    if not indents:
        return 0
    first = indents[0]
    size = min(len(i) for i in indents)
    while size and any(i[:size] != first[:size] for i in indents):
        size -= 1
    return size


def _only_blank(lines: list[str], offset: int, stmt: ast.stmt) -> bool:
    end = (stmt.end_lineno or stmt.lineno) + offset
    for k in range(end, len(lines)):
        s = lines[k].strip()
        if s and not s.startswith("#"):
            return False
    return True


def _check_shapes(shapes: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    checked = {}
    for name, shape in dict(shapes).items():
        if isinstance(shape, np.ndarray):  # an example array gives its shape
            shape = shape.shape
        try:
            dims = tuple(shape)
        except TypeError:
            dims = (shape,) if not isinstance(shape, bool) else ("bad",)
        if any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0
               for n in dims):
            raise ParseError(f"shape of {name!r} must be a tuple of lengths >= 0, got {shape!r}")
        checked[name] = tuple(int(n) for n in dims)
    return checked


def _finish(program: _Program, last: tuple[str | None, int], outputs: Sequence[str] | None,
            shapes: dict[str, tuple[int, ...]] | None) -> Circuit:
    b = program.builder
    if shapes:
        unknown = sorted(set(shapes) - set(b.inputs))
        if unknown:
            raise _argument_error("shapes", f"shapes name {unknown}, which are not inputs "
                                  f"(inputs: {list(b.inputs)})")
    if outputs is None:
        name, node = last
        if name is None:
            name = "f"
            while name in b.inputs or name in program.assigned:
                name += "_"
        out = [(name, node)]
    else:
        out = []
        for name in outputs:
            if name in program.assigned:
                out.append((name, program.assigned[name][0]))
            elif name in b.inputs:
                out.append((name, b.inputs[name]))
            else:
                raise _argument_error("outputs", f"outputs names '{name}', which is not "
                                      "assigned in the program")
        if len(set(outputs)) != len(outputs):
            raise _argument_error("outputs", f"outputs {list(outputs)} name the same output "
                                  "twice")
    return b.finish(out, inputs=program.declared)


def _argument_error(argument: str, message: str) -> ParseError:
    e = ParseError(message)
    e.argument = argument
    return e
