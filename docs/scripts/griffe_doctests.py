"""A griffe extension for the API reference: show docstring examples as Python code.

circuitgrad's docstrings carry doctests (``>>>`` lines, run by ``pytest --doctest-modules``)
outside any "Examples:" section. Markdown would render them as block quotes; this extension
wraps each doctest block in a ```` ```pycon ```` fence before the docstring is parsed. A block
starts at a ``>>>`` line and runs to the next blank line (the doctest rule for where the
expected output ends). Sphinx roles such as ``:func:`grad``` become inline code. The source
docstrings themselves are not changed.

Loaded by ``mkdocs.yml`` (``extensions: [docs/scripts/griffe_doctests.py]``).
"""

from __future__ import annotations

from typing import Any

import re

import griffe

# Sphinx roles (:func:`~circuitgrad.parse`) shown as code: `parse`.
_ROLE = re.compile(r":(?:func|class|meth|data|attr|mod|exc|obj):`(~?)([^`]+)`")


def plain_roles(text: str) -> str:
    """Show Sphinx cross-reference roles as inline code, as Markdown has no roles.

        >>> plain_roles("See :func:`~circuitgrad.parse` and :class:`Circuit`.")
        'See `parse` and `Circuit`.'
    """
    return _ROLE.sub(lambda m: f"`{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}`",
                     text)


def fence_doctests(text: str) -> str:
    r"""Wrap every doctest block of ``text`` in a ``pycon`` code fence.

        >>> fence_doctests("Sum.\n\n    >>> 1 + 1\n    2\n\nMore.").splitlines()
        ['Sum.', '', '```pycon', '>>> 1 + 1', '2', '```', '', 'More.']
    """
    out: list[str] = []
    lines = text.splitlines()
    k, fenced = 0, False
    while k < len(lines):
        line = lines[k]
        stripped = line.lstrip()
        if stripped.startswith("```"):
            fenced = not fenced
        if fenced or not stripped.startswith(">>>"):
            out.append(line)
            k += 1
            continue
        indent = len(line) - len(stripped)
        block = []
        while k < len(lines) and lines[k].strip():
            block.append(lines[k][indent:] if lines[k][:indent].isspace() else lines[k].lstrip())
            k += 1
        out.extend(["```pycon", *block, "```"])
    return "\n".join(out)


class FenceDoctests(griffe.Extension):
    """Fence the doctests (and plain the Sphinx roles) of every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(fence_doctests(obj.docstring.value))
