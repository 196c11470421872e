"""The record is the only per-op table: every record has every lowering's entry or a stated
refusal, and docs/design.md's recipe for a new primitive works as written."""

import re

import numpy as np
import pytest

import circuitgrad as cg
from circuitgrad.circuit import LEAVES
from circuitgrad.errors import CircuitError
from circuitgrad.lower import cforms, isa
from circuitgrad.primitives import PRIMITIVES, elementwise
from circuitgrad.transforms import sparsity
from paths import ROOT

OPS = [name for name in PRIMITIVES if name not in LEAVES]
DESIGN = ROOT / "docs" / "design.md"


@pytest.mark.parametrize("op", OPS)
def test_every_record_has_every_lowerings_entry_or_a_stated_refusal(op):
    prim = PRIMITIVES[op]
    elementwise_op = prim.shape is None
    assert prim.template and prim.label, op  # to_numpy, to_dot
    assert prim.partials or prim.vjp, op  # grad (and jvp: partials, or its own jvp)
    assert prim.partials or prim.jvp, op
    # scalarize: elementwise entry by entry, else the record's expansion
    assert elementwise_op or prim.scalar is not None, f"{op}: no scalar expansion"
    if prim.sparsity is not None:
        assert prim.sparsity in sparsity.KINDS, (op, prim.sparsity)
    else:
        assert elementwise_op, f"{op}: a tensor op without a sparsity kind"
    if prim.fold is not None:
        assert PRIMITIVES[prim.fold].arity == 2 and PRIMITIVES[prim.fold].shape is None
    # the C lowerings: a C form, or (a tensor op) scalarized first and refused by name
    if prim.c is None:
        # an elementwise op without a C form states why (SciPy's gammaln, digamma, erfinv)
        assert not elementwise_op or prim.c_refusal, f"{op}: an elementwise op without a C form"
        with pytest.raises(CircuitError, match=f"{op}: this primitive has no C form"):
            cforms.c_expression(op, ["a"] * max(prim.arity, 1))
        assert op not in cforms.c_ops()
        return
    assert op in cforms.c_ops() and f"/* {op} */" in cforms.tape_ops_header()
    # to_c's vector form: arithmetic as it is, else from the record (or lane by lane)
    form = cforms.vector_form(op)
    if cforms.is_arithmetic(op):
        return
    if prim.c_vector is not None and form is None:
        pytest.fail(f"{op}: its c_vector is not used (a libmvec function it calls is too far)")
    for width in (8, 4, 2):  # the record's figure at each width (one, or a dict by width)
        ulps = cforms.libmvec_ulps(op, width)
        if ulps is not None and prim.c == f"{op}({{0}})" and ulps <= 2:
            form = cforms.vector_form(op, width)
            assert form is not None and form.startswith((isa.LIBMVEC_PREFIX[width], "cg_v")), \
                (op, width, form)


def test_the_side_tables_are_views_of_the_records():
    for width, prefix in isa.LIBMVEC_PREFIX.items():
        ulps = {op: p.libmvec.get(width) if isinstance(p.libmvec, dict) else p.libmvec
                for op, p in PRIMITIVES.items()}
        assert cforms.libmvec_table(width) == {
            op: (f"{prefix}{'v' * p.arity}_{op}", p.arity, ulps[op])
            for op, p in PRIMITIVES.items() if ulps[op] is not None}
    assert cforms.LIBMVEC == cforms.libmvec_table(4)
    # one figure per record where every width measured the same, else one for each width
    assert all(set(p.libmvec) == set(isa.LIBMVEC_PREFIX) and len(set(p.libmvec.values())) > 1
               for p in PRIMITIVES.values() if isinstance(p.libmvec, dict))
    assert set(cforms.VECTOR_FORMS) | set(cforms.VECTOR_MATH) == {
        op for op, p in PRIMITIVES.items() if p.c_vector is not None}
    assert sparsity.RULES == {op: sparsity.KINDS[p.sparsity] for op, p in PRIMITIVES.items()
                              if p.sparsity not in (None, "dense")}


def _recipe_record():
    """The record of docs/design.md's recipe, evaluated as the page writes it."""
    text = DESIGN.read_text(encoding="utf-8")
    section = text.split("## How to add a primitive")[1]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    code = "\n".join(line for line in block.splitlines() if not line.strip().startswith("#"))
    return eval(code.strip().rstrip(","), vars(elementwise))  # our own docs


def test_the_design_recipe_adds_an_op_that_every_consumer_reads(monkeypatch):
    prim = _recipe_record()
    name = prim.name
    assert name not in PRIMITIVES
    monkeypatch.setitem(PRIMITIVES, name, prim)
    c = cg.parse(f"J = sum({name}(x) * x)", shapes={"x": (3,)})
    x = np.array([-1.3, 0.2, 2.5])
    want = np.sum(x * x / (1 + np.exp(-x)))
    assert cg.to_numpy(c)(x=x) == pytest.approx(want, rel=1e-14)
    assert cg.check_grad(c, {"x": x}) < 1e-7
    s = cg.scalarize(c)
    assert sum(s.op(i) == name for i in range(len(s))) == 3
    assert float(cg.to_numpy(s)(*x)) == pytest.approx(want, rel=1e-14)
    assert cg.jacobian_sparsity(cg.parse(f"f = {name}(x)", shapes={"x": (3,)})).toarray(
        ).tolist() == np.eye(3, dtype=bool).tolist()
    # the C lowerings read the record's c form: the header scripts/gen_tape.py would write
    assert f"/* {name} */ r[o] = r[a0] * cg_sigmoid(r[a0]);" in \
        cforms.tape_ops_header()
    assert cforms.vector_form(name) is None  # not libm's own call: lane by lane in to_c
    f = cg.to_c(cg.parse(f"J = {name}(x)"))
    assert float(f(x=0.7)) == pytest.approx(0.7 / (1 + np.exp(-0.7)), rel=1e-15)
