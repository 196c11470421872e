"""Python containers at a traced function's edges (JAX's pytrees): tuples, lists, dicts and
named tuples of arrays, flattened into named leaves and rebuilt from them.

A leaf's name joins the keys on its path with dots: ``params.W1``, ``x.0``, ``out.loss``. A
dict's leaves come in its keys' order (as the dict iterates, like Python's own order; JAX
sorts them: here the order a user wrote is kept), a tuple's and a list's in theirs, a named
tuple's by field (its names are the fields). :func:`flatten` and :func:`unflatten` recurse on
the containers' nesting (not on any circuit's depth): a nesting deeper than Python's recursion
limit, or a container holding itself, is refused with a CircuitError.

    >>> leaves, tree = flatten({"W": 1.0, "b": (2.0, 3.0)}, "params")
    >>> leaves
    [('params.W', 1.0), ('params.b.0', 2.0), ('params.b.1', 3.0)]
    >>> unflatten(tree, [10.0, 20.0, 30.0])
    {'W': 10.0, 'b': (20.0, 30.0)}
"""

from __future__ import annotations

from typing import Any, Callable

Tree = tuple  # ("leaf",) | (kind, type, keys, children)

LEAF: Tree = ("leaf",)


def is_container(x: Any) -> bool:
    """A dict, list, tuple or named tuple (of anything)."""
    return isinstance(x, (dict, list, tuple))


def flatten(obj: Any, prefix: str, is_leaf: Callable[[Any], bool] | None = None
            ) -> tuple[list[tuple[str, Any]], Tree]:
    """The ``(name, leaf)`` pairs of ``obj`` in order, and its structure for :func:`unflatten`.
    ``is_leaf``: what counts as a leaf although it is a container (a shape ``(3, 4)``)."""
    leaves: list[tuple[str, Any]] = []

    def walk(x: Any, name: str) -> Tree:
        if not is_container(x) or (is_leaf is not None and is_leaf(x)):
            leaves.append((name, x))
            return LEAF
        if isinstance(x, dict):
            keys = list(x)
            return ("dict", type(x), tuple(keys),
                    tuple(walk(x[k], f"{name}.{k}") for k in keys))
        fields = getattr(type(x), "_fields", None)
        if isinstance(x, tuple) and fields is not None:
            return ("namedtuple", type(x), tuple(fields),
                    tuple(walk(v, f"{name}.{f}") for f, v in zip(fields, x)))
        kind = "tuple" if isinstance(x, tuple) else "list"
        return (kind, type(x), len(x), tuple(walk(v, f"{name}.{k}") for k, v in enumerate(x)))

    try:
        return leaves, walk(obj, prefix)
    except RecursionError:
        from ..errors import CircuitError

        raise CircuitError(f"{prefix or 'an argument'}: containers nested too deep to "
                           "flatten (or a container holding itself)") from None


def unflatten(tree: Tree, leaves: Any) -> Any:
    """The structure ``tree`` with its leaves taken from ``leaves``, in order."""
    it = iter(leaves)

    def build(t: Tree) -> Any:
        if t[0] == "leaf":
            return next(it)
        kind, cls, keys, children = t
        parts = [build(c) for c in children]
        if kind == "dict":
            return dict(zip(keys, parts)) if cls is dict else cls(zip(keys, parts))
        if kind == "namedtuple":
            return cls(*parts)
        return tuple(parts) if kind == "tuple" else list(parts)

    return build(tree)


def is_shape(spec: Any) -> bool:
    """A ``shapes=`` entry that is one shape (an integer, a tuple or list of integers), not a
    structure of shapes."""
    import numpy as np

    ints = (int, np.integer)
    return isinstance(spec, ints) or isinstance(spec, (tuple, list)) and not hasattr(
        type(spec), "_fields") and all(isinstance(n, ints) and not isinstance(n, bool)
                                       for n in spec)
