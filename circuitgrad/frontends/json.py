"""The JSON front-end: a saved circuit (schema version 1, docs/json.md) read as untrusted text.

Nothing in the text is evaluated or trusted. Every field is type-checked; every node is
rebuilt through the :class:`~circuitgrad.circuit.Builder`, which re-infers each shape (and
checks it against a recorded one) and applies the same hash-consing and exact rewrites as
every other front-end. Each problem raises :class:`~circuitgrad.errors.CircuitError` naming
where it is (``node 7: ...``); a shape mismatch raises its subclass ``ShapeError``. Costs
are bounded by the size of the text: JSON nested deeper than Python's recursion limit, huge
numbers, shapes of more than ``MAX_ELEMENTS`` elements and constant folding of more than
``FOLD_LIMIT`` elements are refused.

    >>> import circuitgrad as cg
    >>> c = from_json('''{"format": "circuitgrad.circuit", "version": 1,
    ...   "inputs": ["x"], "outputs": [["f", 1]],
    ...   "nodes": [{"op": "input", "input": "x"}, {"op": "sin", "args": [0]}]}''')
    >>> c.inputs, c.outputs, c.size
    (('x',), ('f',), 1)
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from ..circuit import Circuit, no_gc
from ..builder import Builder
from ..errors import CircuitError, ShapeError
from ..primitives import PRIMITIVES, shape_of

FORMAT = "circuitgrad.circuit"
VERSIONS = (1,)
"""The schema versions this reader understands."""

MAX_NDIM = 32
MAX_DIM = 2**40
MAX_ELEMENTS = 2**48
"""The most elements a node's shape may have (no value is ever allocated from a shape)."""

FOLD_LIMIT = 10**7
"""The most elements (times the inner length, for matmul) that folding an operation on
constants may compute while reading; beyond that the text is refused."""

_TOP = {"format", "version", "inputs", "outputs", "nodes", "meta", "bodies"}
_BODY = {"carries", "xs", "inputs", "outputs", "nodes"}
_FIELDS = {
    "input": {"op", "input", "shape", "name"},
    "const": {"op", "value", "shape", "name"},
}
_OP_FIELDS = {"op", "args", "params", "shape", "name"}
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _fail(where: str, message: str) -> CircuitError:
    return CircuitError(f"{where}: {message}" if where else message)


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise CircuitError(f"a JSON object has the key {_short(key)} twice")
            seen.add(key)
    return obj


def _reject_constant(token: str) -> Any:
    raise CircuitError(f"{token} is not JSON: write non-finite constants as \"nan\", \"inf\" "
                       "or \"-inf\"")


def _float_literal(token: str) -> float:
    value = float(token)
    if math.isinf(value):
        raise CircuitError(f"number {token[:40]} is too large for a float64 (write \"inf\")")
    return value


def _read_if_path(source: Any) -> Any:
    """The text of the file ``source`` names, if it names one (see :func:`from_json`)."""
    if isinstance(source, str) and source.lstrip().startswith("{"):
        return source
    if not isinstance(source, (str, os.PathLike)):
        return source
    path = os.fspath(source)
    try:
        with open(path, "rb") as f:
            return f.read()
    except (OSError, ValueError) as e:  # ValueError: a NUL or a lone surrogate in the name
        hint = (" (a str is JSON text only when it starts with '{'; otherwise it is a file "
                "path)") if isinstance(source, str) else ""
        reason = getattr(e, "strerror", None) or e
        raise CircuitError(f"from_json: cannot read {path!r}: {reason}{hint}") from None


def _load(text: Any) -> Any:
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise CircuitError(f"the JSON text is not UTF-8: {e}") from None
    if not isinstance(text, str):
        raise CircuitError(f"from_json needs JSON text (str), got {type(text).__name__}")
    try:
        return json.loads(text, object_pairs_hook=_object_pairs, parse_constant=_reject_constant,
                          parse_float=_float_literal)
    except json.JSONDecodeError as e:
        raise CircuitError(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") \
            from None
    except RecursionError:
        raise CircuitError("the JSON text is nested too deeply") from None
    except (ValueError, OverflowError, MemoryError) as e:  # e.g. an integer of 10⁵ digits
        if isinstance(e, CircuitError):
            raise
        raise CircuitError(f"unreadable JSON: {str(e)[:200]}") from None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _shape(where: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise _fail(where, f"shape must be a list of lengths, got {_short(value)}")
    if len(value) > MAX_NDIM:
        raise _fail(where, f"shape has {len(value)} dimensions (at most {MAX_NDIM})")
    if any(not _is_int(n) or not 0 <= n <= MAX_DIM for n in value):
        raise _fail(where, f"shape must be a list of lengths 0..{MAX_DIM}, got {_short(value)}")
    if math.prod(value) > MAX_ELEMENTS:
        raise _fail(where, f"shape {tuple(value)} has more than {MAX_ELEMENTS} elements")
    return tuple(value)


# Params that are nested lists of integers and nulls (indices, permutations); the primitive's
# shape rule checks what they mean when the builder applies it.
_NESTED_PARAMS = frozenset({"index", "indices", "axes", "subscripts"})


def _nested(where: str, value: Any) -> tuple:
    count = 0

    def read(v: Any, depth: int) -> Any:
        nonlocal count
        count += 1
        if count > MAX_ELEMENTS:
            raise _fail(where, f"has more than {MAX_ELEMENTS} entries")
        if v is None:
            return None
        if _is_int(v):
            if abs(v) > MAX_DIM:
                raise _fail(where, f"entry {v} is out of range")
            return v
        if isinstance(v, list) and depth < 4:
            return tuple(read(e, depth + 1) for e in v)
        raise _fail(where, f"must be nested lists of integers and nulls, got {_short(v)}")

    return read(value, 0)


def _einsum_products(subscripts: tuple, shapes: list[tuple[int, ...]]) -> int:
    # the product of the lengths of every label (the shape rule checked them)
    sizes = {k: n for labels, shape in zip(subscripts, shapes) for k, n in zip(labels, shape)}
    return math.prod(sizes.values())


def _loop_elements(params: dict[str, Any]) -> int:
    # the elements a scan's steps compute (its packed result can be far smaller)
    steps = params.get("length")
    bodies = [params.get(k) for k in ("body", "recompute") if params.get(k) is not None]
    per_step = sum(math.prod(shape) for body in bodies
                   for *_, shape in body.circuit.records())
    return steps * per_step if _is_int(steps) and steps > 0 else 0


def _number(where: str, value: Any) -> float:
    if isinstance(value, str):
        if value in _NON_FINITE:
            return _NON_FINITE[value]
        raise _fail(where, f"constant {_short(value)} is not a number (nor \"nan\", \"inf\", "
                           "\"-inf\")")
    if isinstance(value, float) or _is_int(value):
        try:
            result = float(value)
        except OverflowError:
            raise _fail(where, "constant too large for a float64") from None
        return result
    raise _fail(where, f"constant {_short(value)} is not a number")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _name(where: str, field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(where, f"{field} must be a string, got {_short(value)}")
    return value


class _Reader:
    """The state of one read: the builder, and the builder id of every JSON node."""

    def __init__(self, bodies: list[Any] | None = None) -> None:
        self.b = Builder()
        self.ids: list[int] = []
        self.bodies = bodies or []  # the loops' bodies read so far (a scan names one by index)

    def node(self, k: int, record: Any) -> None:
        where = f"node {k}"
        if not isinstance(record, dict):
            raise _fail(where, f"a node must be an object, got {_short(record)}")
        op = record.get("op")
        if not isinstance(op, str):
            raise _fail(where, f"'op' must be a primitive's name, got {_short(op)}")
        prim = PRIMITIVES.get(op)
        if prim is None:
            raise _fail(where, f"unknown op {_short(op)}")
        allowed = _FIELDS.get(op, _OP_FIELDS)
        extra = sorted(set(record) - allowed)
        if extra:
            raise _fail(where, f"unknown field {extra[0]!r} for op {op!r} "
                               f"(fields: {', '.join(sorted(allowed))})")
        shape = _shape(where, record["shape"]) if "shape" in record else None
        b = self.b
        if op == "input":
            name = _name(where, "'input'", record.get("input"))
            if name in b.inputs:
                raise _fail(where, f"duplicate input name {name!r}")
            i = b.input(name, shape or ()).id
        elif op == "const":
            i = self.const(where, record, shape)
        else:
            i = self.apply(where, op, prim.arity, record, shape)
        if "name" in record:
            b.name(i, _name(where, "'name'", record["name"]))
        self.ids.append(i)

    def const(self, where: str, record: dict, shape: tuple[int, ...] | None) -> int:
        if "value" not in record:
            raise _fail(where, "a constant needs a 'value'")
        value = record["value"]
        if not shape:
            if isinstance(value, list):
                raise _fail(where, "an array constant needs its 'shape'")
            return self.b.const_id(_number(where, value))
        if not isinstance(value, list):
            raise _fail(where, f"a constant of shape {shape} needs a list of its elements")
        if len(value) != math.prod(shape):
            raise _fail(where, f"a constant of shape {shape} needs {math.prod(shape)} "
                               f"elements, got {len(value)}")
        array = np.array([_number(where, v) for v in value], dtype=np.float64).reshape(shape)
        return self.b.const_id(array)

    def apply(self, where: str, op: str, arity: int, record: dict,
              shape: tuple[int, ...] | None) -> int:
        args = record.get("args")
        if not isinstance(args, list):
            raise _fail(where, f"'args' must be a list of node indices, got {_short(args)}")
        if len(args) != arity and not (PRIMITIVES[op].variadic and len(args) > arity):
            raise _fail(where, f"{op} takes {arity} argument(s), got {len(args)}")
        k = len(self.ids)
        for a in args:
            if not _is_int(a):
                raise _fail(where, f"argument {_short(a)} is not a node index")
            if not 0 <= a < k:
                what = "itself" if a == k else ("a later node (a cycle or a forward "
                                                "reference)" if a > k else "no node")
                raise _fail(where, f"argument {a} names {what}: arguments must be earlier "
                                   "nodes")
        ids = tuple(self.ids[a] for a in args)
        b = self.b
        params = self.params(where, op, record.get("params", {}), b.shapes[ids[0]])
        if b.folds(op, ids):
            self.check_fold(where, op, ids, params)
        try:
            i = b.apply_id(op, ids, params)
        except ShapeError as e:
            raise ShapeError(f"{where}: {e}") from None
        except CircuitError as e:
            raise _fail(where, str(e)) from None
        except (TypeError, ValueError, OverflowError, IndexError, KeyError) as e:
            raise _fail(where, f"{op} cannot take these arguments or params: "
                               f"{str(e)[:200]}") from None
        if shape is not None and b.shapes[i] != shape:
            raise ShapeError(f"{where}: recorded shape {shape} is not the inferred shape "
                             f"{b.shapes[i]}")
        return i

    def params(self, where: str, op: str, value: Any, first: tuple[int, ...]) -> dict[str, Any]:
        """Type-check params; ``first`` is the first argument's shape."""
        if not isinstance(value, dict):
            raise _fail(where, f"'params' must be an object, got {_short(value)}")
        allowed = PRIMITIVES[op].params
        params: dict[str, Any] = {}
        for key, v in value.items():
            if key not in allowed:
                takes = f"takes params {', '.join(allowed)}" if allowed else "takes no params"
                raise _fail(where, f"unknown param {_short(key)}: {op} {takes}")
            if op == "scan" and key in ("body", "recompute"):  # an index into 'bodies'
                if not _is_int(v) or not 0 <= v < len(self.bodies):
                    raise _fail(where, f"param {key}={_short(v)} must be the index of an "
                                       f"earlier body (there are {len(self.bodies)})")
                params[key] = self.bodies[v]
                continue
            if op == "scan" and key in ("reverse", "save"):
                if v not in (0, 1) or not _is_int(v):
                    raise _fail(where, f"param {key}={_short(v)} must be 0 or 1")
                params[key] = bool(v)
                continue
            if isinstance(v, list) and key in _NESTED_PARAMS:
                params[key] = _nested(f"{where} param {key}", v)
                continue
            if isinstance(v, list):
                params[key] = _shape(f"{where} param {key}", v)
                continue
            if not _is_int(v) or abs(v) > MAX_DIM:
                raise _fail(where, f"param {key}={_short(v)} must be an integer or a list of "
                                   "lengths")
            # Params the builder does not check itself (they reach the generated code).
            if key == "ndim" and v != len(first):
                raise _fail(where, f"param ndim={v} is not the argument's ndim {len(first)}")
            if key == "axis" and allowed != ("axis",) and not 0 <= v <= len(first):
                raise _fail(where, f"param axis={v} is out of range 0..{len(first)}")
            params[key] = v
        return params

    def check_fold(self, where: str, op: str, ids: tuple[int, ...],
                   params: dict[str, Any]) -> None:
        # The builder folds an operation on constants: bound its cost before it runs.
        shapes = [self.b.shapes[a] for a in ids]
        try:
            out = shape_of(op, tuple(shapes), params)
        except Exception:  # noqa: BLE001 - apply_id reports the error itself
            return
        cost = max([math.prod(out)] + [math.prod(s) for s in shapes])
        if op == "matmul" and shapes[0]:
            cost *= shapes[0][-1]
        if op == "einsum":  # every combination of the letters' values is a product
            cost = max(cost, _einsum_products(params["subscripts"], shapes))
        if op == "scan":  # a loop computes its body's elements at each step
            cost = max(cost, _loop_elements(params))
        if cost > FOLD_LIMIT:
            raise _fail(where, f"folding {op} on constants would compute {cost} elements "
                               f"(at most {FOLD_LIMIT})")


def _outputs(value: Any, count: int, ids: list[int]) -> list[tuple[str, int]]:
    if not isinstance(value, list):
        raise CircuitError(f"'outputs' must be a list of [name, node] pairs, got "
                           f"{_short(value)}")
    outputs, seen = [], set()
    for k, pair in enumerate(value):
        where = f"output {k}"
        if not (isinstance(pair, list) and len(pair) == 2):
            raise _fail(where, f"must be a [name, node] pair, got {_short(pair)}")
        name, node = pair
        name = _name(where, "the output name", name)
        if name in seen:
            raise _fail(where, f"duplicate output name {name!r}")
        seen.add(name)
        if not _is_int(node) or not 0 <= node < count:
            raise _fail(where, f"{_short(node)} is not a node index (0..{count - 1})")
        outputs.append((name, ids[node]))
    return outputs


def _meta(value: Any, forward_id: dict[int, int], ids: list[int]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CircuitError(f"'meta' must be an object, got {_short(value)}")
    meta: dict[str, Any] = {}
    n = len(ids)
    for key, v in value.items():
        where = f"meta {key!r}"
        if key in ("forward_count", "tangent_count"):
            if not _is_int(v) or not 0 <= v <= n:
                raise _fail(where, f"must be a node count 0..{n}, got {_short(v)}")
            meta[key] = forward_id[v]
        elif key == "adjoint_of":
            if not isinstance(v, list):
                raise _fail(where, "must be a list of [adjoint node, node] pairs")
            pairs = {}
            for pair in v:
                if not (isinstance(pair, list) and len(pair) == 2
                        and all(_is_int(p) and 0 <= p < n for p in pair)):
                    raise _fail(where, f"{_short(pair)} is not a pair of node indices")
                pairs[ids[pair[0]]] = ids[pair[1]]
            meta[key] = pairs
        elif key == "csr_outputs":
            meta[key] = _csr_layouts(v, where)
        elif isinstance(v, list):
            if not all(isinstance(x, (str, int, float, bool, type(None))) for x in v):
                raise _fail(where, "a list in meta may only hold numbers, strings, booleans")
            meta[key] = tuple(v)
        elif isinstance(v, (str, int, float, bool, type(None))):
            meta[key] = v
        else:
            raise _fail(where, f"unsupported value {_short(v)}")
    return meta


def _csr_layouts(value: Any, where: str) -> dict[str, Any]:
    # A wrong pattern would put the right numbers in the wrong places: check it is CSR.
    if not isinstance(value, dict):
        raise _fail(where, "must be an object: output name -> {shape, indptr, indices}")
    layouts = {}
    for name, layout in value.items():
        at = f"{where}[{name!r}]"
        if not (isinstance(layout, dict) and set(layout) == {"shape", "indptr", "indices"}
                and all(isinstance(layout[k], list) and all(_is_int(x) and x >= 0
                                                            for x in layout[k])
                        for k in layout)):
            raise _fail(at, "must be {shape, indptr, indices}, lists of integers >= 0")
        shape, indptr, indices = layout["shape"], layout["indptr"], layout["indices"]
        if len(shape) != 2 or len(indptr) != shape[0] + 1 or indptr[0] != 0 \
                or indptr[-1] != len(indices) or any(a > b for a, b in zip(indptr, indptr[1:])):
            raise _fail(at, f"indptr is not the row starts of a {shape} CSR matrix with "
                            f"{len(indices)} nonzeros")
        for row in range(shape[0]):
            cols = indices[indptr[row]:indptr[row + 1]]
            if any(c >= shape[1] for c in cols) or any(a >= b for a, b in zip(cols, cols[1:])):
                raise _fail(at, f"row {row}: column indices must be increasing and < {shape[1]}")
        layouts[name] = {"shape": tuple(shape), "indptr": tuple(indptr),
                         "indices": tuple(indices)}
    return layouts


def _bodies(value: Any) -> list[Any]:
    """The loops' bodies, in order: each a circuit (read as the document's own nodes, its
    scans naming earlier bodies only, so no recursion) and its carry and x counts."""
    from ..primitives.loops import Body

    if not isinstance(value, list):
        raise CircuitError(f"'bodies' must be a list, got {_short(value)}")
    bodies: list[Any] = []
    for k, body in enumerate(value):
        where = f"body {k}"
        if not isinstance(body, dict):
            raise _fail(where, f"a body must be an object, got {_short(body)}")
        extra = sorted(set(body) - _BODY) or sorted(_BODY - set(body))
        if extra:
            raise _fail(where, f"a body has the fields {', '.join(sorted(_BODY))}; "
                               f"{extra[0]!r} is {'not one' if extra[0] in body else 'missing'}")
        nodes, inputs = body["nodes"], body["inputs"]
        if not isinstance(nodes, list) or not isinstance(inputs, list) or \
                not all(isinstance(s, str) for s in inputs):
            raise _fail(where, "'nodes' and 'inputs' must be lists (of records, of names)")
        reader = _Reader(bodies)
        for j, record in enumerate(nodes):
            try:
                reader.node(j, record)
            except CircuitError as e:
                raise type(e)(f"{where}: {e}") from None
        outputs = _outputs(body["outputs"], len(nodes), reader.ids)
        for field in ("carries", "xs"):
            if not _is_int(body[field]) or body[field] < 0:
                raise _fail(where, f"{field!r} must be a count, got {_short(body[field])}")
        try:
            circuit = reader.b.finish(outputs, inputs=inputs)
            bodies.append(Body(circuit, body["carries"], body["xs"]))
        except CircuitError as e:
            raise type(e)(f"{where}: {e}") from None
    return bodies


def from_json(text: str | bytes | os.PathLike) -> Circuit:
    """Read a circuit saved by :func:`~circuitgrad.to_json`, treating the text as untrusted.

    Args:
        text: the JSON document, or the file holding it. A ``str`` whose first character
            after white space is ``{`` is the document (every saved circuit starts so), any
            other ``str`` and every ``os.PathLike`` (``pathlib.Path``) is a file path; bytes
            are the document in UTF-8.

    Returns:
        The circuit, rebuilt node by node through the builder: same inputs, outputs, names
        and values as the saved one.

    Raises:
        CircuitError: invalid JSON, a wrong format or version, an unknown op or field, a wrong
            arity, an argument that is not an earlier node (a cycle, a dangling reference),
            duplicate input or output names, non-numeric constants, a wrong type anywhere
            ... naming the node. ShapeError (a CircuitError) for shapes that do not fit.

    >>> import circuitgrad as cg
    >>> c = cg.parse("J = sin(x) * y")
    >>> f = cg.to_numpy(from_json(cg.to_json(c)))
    >>> float(f(x=0.5, y=2.0)) == float(cg.to_numpy(c)(x=0.5, y=2.0))
    True
    """
    doc = _load(_read_if_path(text))
    if not isinstance(doc, dict):
        raise CircuitError(f"a saved circuit is a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise CircuitError(f"'format' must be {FORMAT!r}, got {_short(doc.get('format'))}")
    version = doc.get("version")
    if not _is_int(version) or version not in VERSIONS:
        raise CircuitError(f"unsupported version {_short(version)}: this circuitgrad reads "
                           f"version {', '.join(map(str, VERSIONS))}")
    extra = sorted(set(doc) - _TOP)
    if extra:
        raise CircuitError(f"unknown field {extra[0]!r} (fields: {', '.join(sorted(_TOP))})")
    for field in ("inputs", "outputs", "nodes"):
        if field not in doc:
            raise CircuitError(f"missing field {field!r}")
    nodes = doc["nodes"]
    if not isinstance(nodes, list):
        raise CircuitError(f"'nodes' must be a list, got {_short(nodes)}")
    inputs = doc["inputs"]
    if not isinstance(inputs, list) or not all(isinstance(s, str) for s in inputs):
        raise CircuitError(f"'inputs' must be a list of input names, got {_short(inputs)}")
    with no_gc(), np.errstate(all="ignore"):
        reader = _Reader(_bodies(doc.get("bodies", [])))
        forward_id = {0: 0}
        for k, record in enumerate(nodes):
            reader.node(k, record)
            forward_id[k + 1] = len(reader.b.ops)
        b = reader.b
        declared = [i for i in range(len(b.ops)) if b.ops[i] == "input"]
        if sorted(inputs) != sorted(b.params[i] for i in declared) or \
                len(set(inputs)) != len(inputs):
            raise CircuitError(f"'inputs' {_short(inputs)} must list each input node's name "
                               f"once; the input nodes are {[b.params[i] for i in declared]}")
        outputs = _outputs(doc["outputs"], len(nodes), reader.ids)
        meta = _meta(doc.get("meta", {}), forward_id, reader.ids)
        return b.finish(outputs, inputs=inputs, meta=meta)

