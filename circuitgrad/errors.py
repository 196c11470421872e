"""The exceptions circuitgrad raises for bad input.

Every error a user can cause derives from :class:`CircuitError`, so one ``except`` clause
catches them all::

    >>> import circuitgrad as cg
    >>> try:
    ...     cg.parse("sin(x")
    ... except cg.CircuitError as e:
    ...     print(type(e).__name__)
    ParseError
"""

from __future__ import annotations


class CircuitError(ValueError):
    """Base class of every error caused by bad input to circuitgrad.

        >>> import circuitgrad as cg
        >>> cg.grad(cg.parse("x*y"), wrt=["z"])
        Traceback (most recent call last):
        ...
        circuitgrad.errors.CircuitError: wrt names 'z', which is not an input; inputs are ['x', 'y']

    ``argument`` names the parameter at fault (``"wrt"`` above), or is ``None``. Such a
    message starts with that name, so a caller that spells the parameter differently (the
    command line's ``--wrt``) can say it the user's way; see :func:`in_words_of`.
    """

    argument: str | None = None

    def __init__(self, message: str = "", argument: str | None = None):
        super().__init__(message)
        if argument is not None:
            self.argument = argument


def in_words_of(error: CircuitError, spelling: dict[str, str]) -> str:
    """The message of ``error`` with its parameter spelled as ``spelling`` says.

    >>> in_words_of(CircuitError("wrt names 'z'", argument="wrt"), {"wrt": "--wrt"})
    "--wrt names 'z'"
    """
    text = str(error)
    name = error.argument
    if name in spelling and text.startswith(name):
        return spelling[name] + text[len(name):]
    return text


class ParseError(CircuitError):
    """Text that is not a valid circuitgrad program.

    ``line`` and ``column`` (both 1-based, ``None`` when unknown) say where the problem is.

        >>> import circuitgrad as cg
        >>> try:
        ...     cg.parse("y = 2*x\\nJ = foo(y)")
        ... except cg.ParseError as e:
        ...     print(e.line, e.column, e.reason.split(" (")[0])
        2 5 unknown function 'foo'
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        self.reason = message
        self.line = line
        self.column = column
        if line is not None:
            where = f"line {line}" + (f", column {column}" if column is not None else "")
            message = f"{where}: {message}"
        super().__init__(message)


class ShapeError(CircuitError):
    """Operands whose shapes do not fit the operation.

        >>> import circuitgrad as cg
        >>> try:
        ...     cg.parse("W @ x", shapes={"W": (3, 4), "x": (3,)})
        ... except cg.ShapeError as e:
        ...     print(str(e).split(" do not fit")[0])
        line 1, column 1: matmul: shapes (3, 4) and (3,)
    """


class LocatedShapeError(ShapeError, ParseError):
    """Operands in program text whose shapes do not fit: a :class:`ShapeError`, and a
    :class:`ParseError` with the line and column (so ``parse`` raises nothing else)."""


def located(error: CircuitError, line: int | None, column: int | None) -> CircuitError:
    """``error`` as one that names a position in program text (unchanged if it already does
    or ``line`` is None): a shape error stays a :class:`ShapeError`, anything else becomes a
    :class:`ParseError`."""
    if line is None or getattr(error, "line", None) is not None:
        return error
    if isinstance(error, ShapeError):
        return LocatedShapeError(str(error), line, column)
    return ParseError(str(error), line, column)


class InputError(CircuitError, TypeError):
    """A call's input that is not a real number or an array of real numbers (None, a string,
    a complex or object array): refused, never cast.

        >>> import circuitgrad as cg
        >>> f = cg.to_numpy(cg.parse("J = 2*x"))
        >>> try:
        ...     f(x=None)
        ... except cg.InputError as e:
        ...     print(type(e).__name__)
        InputError
    """


class InputRangeError(InputError, OverflowError):
    """A call's input that is a number beyond float64's range (an integer such as 10**400),
    or an integer that float64 would round (2**53 + 1)."""


class CacheError(CircuitError):
    """The compiled-code cache is not private, or a library in it is not the one recorded."""
