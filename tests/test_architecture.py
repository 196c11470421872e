"""The package's import graph: no circle among circuitgrad's modules, and dependencies point one
way (primitives ← circuit ← transforms; a transform never imports a lowering or a front-end).

Every ``import`` statement counts, at module level or inside a function (a deferred import is
still a dependency), but those under ``if TYPE_CHECKING:`` (annotations only). A module's
implicit import of its parent package is not an edge.
"""

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "circuitgrad"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``): imports only a type checker runs."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_graph() -> nx.DiGraph:
    """Module → the circuitgrad modules it imports (``from .pkg import sub`` names ``sub``)."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    # Compiled extensions (lower/_tape) are modules too, with no imports of circuitgrad's.
    extensions = {module_name(p.with_name(p.name.split(".")[0] + ".py"))
                  for p in PACKAGE.rglob("*.so")}
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    known = set(files) | extensions
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(), str(path))
        typing_only = {id(n) for block in ast.walk(tree) if _is_type_checking(block)
                       for stmt in block.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue  # (under `if TYPE_CHECKING:`: for annotations, never run)
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                           for alias in node.names]
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]  # (import a.b.c: the module a.b)
                if target and target != name:
                    graph.add_edge(name, target)
    return graph


def test_the_graph_sees_the_package():
    graph = import_graph()
    assert ("circuitgrad.transforms.grad", "circuitgrad.transforms.simplify") in graph.edges
    assert ("circuitgrad.transforms.bounds", "circuitgrad.transforms.sweeps") in graph.edges
    assert len(graph) > 40


def test_no_import_circle():
    circles = list(nx.simple_cycles(import_graph()))
    assert circles == [], circles


def test_dependencies_point_one_way():
    """primitives import nothing above them; circuit.py only primitives and errors; transforms
    no front-end, lowering or cli."""
    graph = import_graph()
    above = {
        "circuitgrad.primitives": ("circuitgrad.circuit", "circuitgrad.transforms",
                                   "circuitgrad.lower", "circuitgrad.frontends",
                                   "circuitgrad.ops", "circuitgrad.cli"),
        "circuitgrad.circuit": ("circuitgrad.transforms", "circuitgrad.lower",
                                "circuitgrad.frontends", "circuitgrad.ops", "circuitgrad.cli"),
        "circuitgrad.transforms": ("circuitgrad.lower", "circuitgrad.frontends",
                                   "circuitgrad.cli", "circuitgrad.check"),
    }
    wrong = []
    for source, target in graph.edges:
        for floor, forbidden in above.items():
            if (source == floor or source.startswith(floor + ".")) and any(
                    target == f or target.startswith(f + ".") for f in forbidden):
                wrong.append((source, target))
    assert wrong == []


def test_the_shared_helpers_sit_below_the_passes():
    """common, sweeps and bounds import no pass module (grad, jvp, jacobian, sparsity)."""
    graph = import_graph()
    passes = {f"circuitgrad.transforms.{m}" for m in ("grad", "jvp", "jacobian", "sparsity")}
    for helper in ("common", "sweeps", "bounds"):
        assert not passes & set(graph.successors(f"circuitgrad.transforms.{helper}")), helper


def test_the_sign_identities_know_the_fused_contributions():
    """primitives/signs.py imports nothing, so it knows the fused contributions (linear in
    their first argument: a carried sign passes) by name: exactly FUSED_VJPS."""
    from circuitgrad.primitives import PRIMITIVES
    from circuitgrad.primitives.fused import FUSED_VJPS
    from circuitgrad.primitives.signs import is_fused_vjp

    assert {op for op in PRIMITIVES if is_fused_vjp(op)} == FUSED_VJPS
    assert not (set(import_graph().successors("circuitgrad.primitives.signs")))


def test_the_size_bounds_are_computed_on_first_use():
    """``import circuitgrad`` differentiates no sample nodes: transforms/bounds.py is loaded
    when a bound is first read (``from circuitgrad.transforms.grad import SIZE_FACTOR``)."""
    import subprocess
    import sys

    code = ("import sys, circuitgrad\n"
            "assert 'circuitgrad.transforms.bounds' not in sys.modules\n"
            "from circuitgrad.transforms.grad import SIZE_FACTOR\n"
            "from circuitgrad.transforms.jvp import HVP_SIZE_FACTOR\n"
            "print(SIZE_FACTOR, HVP_SIZE_FACTOR)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    from circuitgrad.transforms import bounds

    assert done.stdout.split() == [str(bounds.SIZE_FACTOR), str(bounds.HVP_SIZE_FACTOR)]
