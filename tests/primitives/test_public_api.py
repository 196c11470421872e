"""The public functions ``cg.*`` are the table's records: each one is a record applied (its name,
its arguments, its params), or a composition listed in ``circuitgrad.ops.COMPOSITIONS``."""

import inspect

import numpy as np
import pytest

import circuitgrad as cg
from circuitgrad import ops
from circuitgrad.primitives import FUNCTIONS, PRIMITIVES


def test_ops_exports_exactly_its_functions_and_the_package_reexports_them():
    defined = {n for n, v in vars(ops).items() if inspect.isfunction(v)
               and v.__module__ == ops.__name__ and not n.startswith("_")}
    assert set(ops.__all__) == defined
    assert set(ops.__all__) <= set(cg.__all__)
    for name in ops.__all__:
        assert getattr(cg, name) is getattr(ops, name), name


@pytest.mark.parametrize("name", ops.__all__)
def test_every_public_function_is_a_record_or_a_listed_composition(name):
    f = getattr(ops, name)
    if name in ops.COMPOSITIONS:
        built = set(ops.COMPOSITIONS[name])
        assert built <= set(PRIMITIVES), built - set(PRIMITIVES)
        return
    prim = PRIMITIVES.get(name)
    assert prim is not None and name in FUNCTIONS, f"cg.{name} is neither a record nor listed"
    signature = inspect.signature(f).parameters.values()
    positional = [p for p in signature if p.default is inspect.Parameter.empty]
    keywords = [p.name for p in signature if p.default is not inspect.Parameter.empty]
    assert len(positional) == prim.arity, (name, len(positional), prim.arity)
    assert set(keywords) <= set(prim.params), (name, keywords, prim.params)
    # applied to circuit values it builds exactly one node, of its own record
    fn = {1: lambda x0: f(x0), 2: lambda x0, x1: f(x0, x1),
          3: lambda x0, x1, x2: f(x0, x1, x2)}[prim.arity]
    shapes = prim.cases[0] if prim.cases else ((3,),) * prim.arity  # matrices for linalg
    c = cg.trace(fn, shapes={f"x{k}": s for k, s in enumerate(shapes)})
    ops_built = [c.op(i) for i in range(len(c)) if c.op(i) not in ("input", "const")]
    assert ops_built == [name], (name, ops_built)
    # and on numbers it computes with the record's own code
    values = [np.linspace(0.2, 0.8, int(np.prod(s))).reshape(s) + (np.eye(*s) if len(s) == 2
              else 0.0) for s in shapes]
    with np.errstate(all="ignore"):
        want = cg.to_numpy(c)(*values)
        got = f(*values)
    np.testing.assert_array_equal(got, want)


def test_a_composition_would_have_to_be_listed():
    # scipy.linalg's Cholesky pair (two triangular solves); every other cg.* is one record
    assert set(ops.COMPOSITIONS) == {"cho_factor", "cho_solve"}
