"""From text to the first gradient value: circuitgrad's build against CasADi's (issue 18).

Held-out seeded random programs (:func:`benchmarks.programs.random_program`, seed 1; the
adjoint rules were tuned on seed 0) of N = 10³, 10⁴, 10⁵ ops (and 10⁶ in full mode), each
tool and size in its own bounded child process, measured side by side in one run:

* circuitgrad: ``parse`` → ``grad`` → ``to_numpy`` → the first call, each stage timed in CPU
  seconds (``time.process_time``) and the whole in wall seconds; where ``cg.to_tape`` exists
  (issue 16), ``to_tape`` → its first call too, as a second column.
* CasADi: the same program built through Python operators on ``SX`` symbols →
  ``gradient`` → ``Function`` → the first call (its build includes making the expression,
  which circuitgrad's parse stands for).

Also reported: the gradient's size over the function's, circuitgrad nodes against CasADi
instructions (all of them, and its operations alone, without the instructions that load
inputs, constants and outputs, which circuitgrad does not count); what each adjoint rule
costs on the mix; and memory per node of the adjoint circuit (``tracemalloc`` peak while
building, in a separate child because tracing slows the build).

    python -m benchmarks --only build
"""

from __future__ import annotations

import collections
import gc
import time
from typing import Any, Callable

from .harness import fmt_n, fmt_ratio, fmt_time, measurement_timeout, run_bounded, table

SEED = 1  # held out: the rules were looked at on seed 0
ROUNDS = 15  # of the fused/unfused one-point timing


def _program(n: int):
    from .programs import random_program
    return random_program(n, seed=SEED)


def measure_circuitgrad(emit: Callable[[str, Any], None], n: int) -> None:
    """Child: parse, grad, to_numpy, first call (and to_tape where it exists)."""
    import circuitgrad as cg

    p = _program(n)
    text, inputs, point = p.text(), list(p.inputs), p.point()
    gc.collect()
    wall = time.perf_counter()

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        t0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        emit(name, time.process_time() - t0)
        emit(f"{name}_wall", time.perf_counter() - w0)
        return out

    c = stage("parse", lambda: cg.parse(text, inputs=inputs))
    g = stage("grad", lambda: cg.grad(c))
    f = stage("to_numpy", lambda: cg.to_numpy(g))
    values = stage("first_call", lambda: f(*point))
    emit("total", time.perf_counter() - wall)
    emit("c_size", c.size)
    emit("g_size", g.size)
    emit("g_operations", operations(g))
    emit("g_nodes", len(g))
    emit("first_value", float(values[0]))
    to_tape = getattr(cg, "to_tape", None)
    if to_tape is not None:
        tape = stage("to_tape", lambda: to_tape(g))
        stage("tape_first_call", lambda: tape(*point))


def operations(c) -> int:
    """The circuit's size in scalar operations (:attr:`Circuit.operations`)."""
    return c.operations


def measure_fused(emit: Callable[[str, Any], None], n: int) -> None:
    """Child: the gradient with fused adjoint nodes (grad's default) and without
    (``fused=False``), side by side: sizes, and the time of one call at one point through
    to_tape and to_numpy, the two forms' calls interleaved; the values must be identical."""
    import numpy as np

    import circuitgrad as cg

    p = _program(n)
    c = cg.parse(p.text(), inputs=list(p.inputs))
    point = p.point()
    forms = {"fused": cg.grad(c), "unfused": cg.grad(c, fused=False)}
    calls = {}
    for form, g in forms.items():
        emit(f"{form}_size", g.size)
        emit(f"{form}_operations", operations(g))
        calls[form, "to_tape"] = cg.to_tape(g)
        calls[form, "to_numpy"] = cg.to_numpy(g)
    results = {key: fn(*point) for key, fn in calls.items()}
    same = all(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
               for lowering in ("to_tape", "to_numpy")
               for a, b in zip(results["fused", lowering], results["unfused", lowering]))
    emit("same_values", same)
    best = {key: float("inf") for key in calls}
    for _ in range(ROUNDS):  # the four interleaved: the noise hits both forms alike
        for key, fn in calls.items():
            reps = 200 if key[1] == "to_tape" else 20
            t0 = time.perf_counter()
            for _ in range(reps):
                fn(*point)
            best[key] = min(best[key], (time.perf_counter() - t0) / reps)
    for (form, lowering), t in best.items():
        emit(f"{form}_{lowering}", t)


def measure_casadi(emit: Callable[[str, Any], None], n: int) -> None:
    """Child: the program through CasADi's operators, gradient, Function, first call."""
    import casadi as ca

    from .programs import namespace

    p = _program(n)
    fn = p.function(namespace("casadi"))
    point = p.point()
    gc.collect()
    wall = time.perf_counter()
    t0 = time.process_time()
    xs = [ca.SX.sym(name) for name in p.inputs]
    J = fn(*xs)
    emit("expression", time.process_time() - t0)
    t0 = time.process_time()
    G = ca.gradient(J, ca.vertcat(*xs))
    emit("gradient", time.process_time() - t0)
    t0 = time.process_time()
    g = ca.Function("g", xs, [J, G])
    emit("function", time.process_time() - t0)
    t0 = time.process_time()
    values = g(*point)
    emit("first_call", time.process_time() - t0)
    emit("total", time.perf_counter() - wall)
    emit("first_value", float(values[0]))
    f = ca.Function("f", xs, [J])
    leaves = {ca.OP_INPUT, ca.OP_OUTPUT, ca.OP_CONST}
    for name, fun in (("f", f), ("g", g)):
        k = fun.n_instructions()
        emit(f"{name}_instructions", k)
        emit(f"{name}_operations", sum(1 for j in range(k) if fun.instruction_id(j) not in leaves))


def measure_memory(emit: Callable[[str, Any], None], n: int) -> None:
    """Child: tracemalloc's peak while text becomes the adjoint circuit, and what stays."""
    import tracemalloc

    import circuitgrad as cg

    p = _program(n)
    text, inputs = p.text(), list(p.inputs)
    gc.collect()
    tracemalloc.start()
    c = cg.parse(text, inputs=inputs)
    g = cg.grad(c)
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    emit("nodes", len(g))
    emit("peak_bytes", peak)
    emit("kept_bytes", kept)
    del c, g


def measure_rules(emit: Callable[[str, Any], None], n: int) -> None:
    """Child: how many nodes of each op the mix has, and what each op's rule emits for one
    node with every argument active (a fresh input ``bar`` as its adjoint)."""
    import circuitgrad as cg
    from circuitgrad.circuit import LEAVES
    from circuitgrad.builder import Builder
    from circuitgrad.transforms.grad import active_nodes, adjoint_sweep, rule_size, sample_node

    p = _program(n)
    c = cg.parse(p.text(), inputs=list(p.inputs))
    g = cg.grad(c)
    counts = collections.Counter(c.op(i) for i in range(len(c)) if c.op(i) not in LEAVES)
    rules = {}
    for op, count in counts.items():
        _, args, out = sample_node(op, _arity_shapes(c, op))
        one = out.builder.finish([("f", out)])
        b = Builder(one)
        bar = b.input("bar").id
        adjoint, _ = adjoint_sweep(b, one, {one.output_ids[0]: bar},
                                   active_nodes(one, one.inputs))
        made = b.finish([("f", one.output_ids[0])] + [
            (f"d_{name}", adjoint[i]) for name, i in zip(one.inputs, one.input_ids)
            if i in adjoint])
        # A sign left at an input is carried into the sums in a program: no node there.
        signs = sum(1 for i in made.output_ids[1:] if made.op(i) == "neg")
        rules[op] = [count, made.size - one.size - signs, rule_size(op),
                     rule_size(op, fused=False)]
    emit("rules", rules)
    emit("c_size", c.size)
    emit("g_size", g.size)
    adjoint_ops = collections.Counter(g.op(i) for i in range(g.meta["forward_count"], len(g)))
    emit("sums", adjoint_ops["add"] + adjoint_ops["sub"])
    emit("accumulations", sum(adjoint_ops[op] for op in ("add_mul", "sub_mul", "mul_sub")))


def _arity_shapes(c, op: str) -> tuple:
    """Scalar shapes for the arguments of ``op`` as the program uses it."""
    first = next(i for i in range(len(c)) if c.op(i) == op)
    return ((),) * len(c.args(first))


def run(quick: bool = False) -> str:
    """The report (markdown)."""
    timeout = measurement_timeout(quick)
    sizes = [10**3, 10**4, 10**5] + ([] if quick else [10**6])
    res: dict[str, dict[int, Any]] = {"circuitgrad": {}, "casadi": {}, "memory": {}}
    for n in sizes:
        bound = max(timeout, 1200.0 if n >= 10**6 else 300.0 if n >= 10**5 else 0.0)
        for tool in res:
            res[tool][n] = run_bounded(f"benchmarks.build:measure_{tool}", {"n": n}, bound)
    rules = run_bounded("benchmarks.build:measure_rules", {"n": 10**4}, max(timeout, 120.0))
    fused = run_bounded("benchmarks.build:measure_fused", {"n": 10**3}, max(timeout, 120.0))
    tape = any("to_tape" in r.values for r in res["circuitgrad"].values())

    def status(r) -> str:
        return "timeout" if r.timed_out else f"error: {r.error}" if r.error else "–"

    out = ["## Build: text → first gradient value, against CasADi (issue 18)", "",
           f"Held-out random programs (`benchmarks/programs.py`, seed {SEED}; the adjoint rules "
           "were looked at on seed 0), each tool and size in its own child process, all in one "
           "run. circuitgrad: `parse` → `grad` (simplified, the default) → `to_numpy` → first "
           "call" + (", and `to_tape` → first call" if tape else "") + ". CasADi: the program "
           "through Python operators on `SX` symbols → `gradient` → `Function` → first call. "
           "Stages in CPU seconds, totals in wall seconds; × is circuitgrad's total over "
           "CasADi's (goal ≤ 1.0)."]
    if quick:
        out.append("\nQuick mode: 10⁶ ops not run.")
    rows = []
    for n in sizes:
        r, k = res["circuitgrad"][n], res["casadi"][n]
        v, w = r.values, k.values
        if "total" not in v:
            rows.append([fmt_n(n), status(r)] + [""] * (9 if tape else 7))
            continue
        ca_total = w.get("total")
        agree = (abs(v["first_value"] - w["first_value"]) <= 1e-9 * max(1.0, abs(w[
            "first_value"])) if "first_value" in w else None)
        row = [fmt_n(n), fmt_time(v["parse"] / n), fmt_time(v["grad"] / n),
               fmt_time(v["to_numpy"] / n), fmt_time(v["first_call"] / n),
               fmt_time(v["total"]), fmt_time(v["total"] / n)]
        if tape:
            tt = v.get("to_tape")
            cpu = (v["parse"] + v["grad"] + tt + v["tape_first_call"]) if tt is not None else None
            ca_cpu = (sum(w[k] for k in ("expression", "gradient", "function", "first_call"))
                      if "first_call" in w else None)
            row.append((fmt_time(cpu / n) + (f" (×{fmt_ratio(cpu / ca_cpu)} CasADi's CPU)"
                                              if ca_cpu else "")) if cpu else "–")
        row += [fmt_time(ca_total) if ca_total else status(k),
                f"**{fmt_ratio(v['total'] / ca_total)}**" if ca_total else "–",
                "yes" if agree else "no" if agree is not None else "–"]
        rows.append(row)
    headers = ["N ops", "parse / op", "grad / op", "to_numpy / op", "first call / op",
               "circuitgrad total", "total / op"]
    if tape:
        headers.append("with to_tape, / op")
    headers += ["CasADi total", "× CasADi", "same J"]
    out += ["", "### Time", "", table(headers, rows)]
    rows = []
    for n in sizes:
        w = res["casadi"][n].values
        if "total" in w:
            rows.append([fmt_n(n), fmt_time(w["expression"]), fmt_time(w["gradient"]),
                         fmt_time(w["function"]), fmt_time(w["first_call"])])
    out += ["", "CasADi's stages (CPU):", "",
            table(["N ops", "expression", "gradient", "Function", "first call"], rows)]
    # sizes
    rows, ours, ours_ops, theirs, theirs_ops = [], [], [], [], []
    for n in sizes:
        v, w = res["circuitgrad"][n].values, res["casadi"][n].values
        if "g_size" not in v or "g_instructions" not in w:
            continue
        a = v["g_size"] / v["c_size"]
        b = w["g_instructions"] / w["f_instructions"]
        c = w["g_operations"] / w["f_operations"]
        ours.append(a)
        theirs.append(b)
        theirs_ops.append(c)
        flops = v.get("g_operations")
        ours_ops.append(flops / v["c_size"] if flops else None)
        rows.append([fmt_n(n), f"{v['c_size']:,} → {v['g_size']:,}", f"**{a:.3f}**",
                     f"{flops:,} ({flops / v['c_size']:.3f})" if flops else "–",
                     f"{w['f_instructions']:,} → {w['g_instructions']:,}", f"{b:.3f}",
                     f"{w['f_operations']:,} → {w['g_operations']:,}", f"{c:.3f}"])
    out += ["", "### Size of the gradient over the function's", "",
            "circuitgrad counts operation nodes (inputs and constants are not nodes of the "
            "size); CasADi's `n_instructions` also counts the instructions that load inputs "
            "and constants and store outputs, so its operations alone are shown too. "
            "CasADi has no `sigmoid`, `relu` or `square` instruction: its f is bigger for the "
            "same program, which lowers its ratio. circuitgrad's adjoint has fused nodes "
            "(`tanh_vjp(bar, y)` is `bar * (1 - y²)` in one node: fewer dispatches, not fewer "
            "flops), so its size in scalar operations is shown too, a fused node counted as "
            "the operations it performs (and over c's size).", "",
            table(["N ops", "circuitgrad c → g", "ratio", "g in operations (ratio)",
                   "CasADi f → g (instructions)", "ratio", "CasADi f → g (operations)",
                   "ratio"], rows)]
    if ours:
        known = [x for x in ours_ops if x is not None]
        in_ops = (f" (in operations {sum(known) / len(known):.3f})" if known else "")
        out.append(f"\nMean ratio: circuitgrad **{sum(ours) / len(ours):.3f}** (goal ≤ 2.5)"
                   f"{in_ops}, CasADi {sum(theirs) / len(theirs):.3f} by instructions, "
                   f"{sum(theirs_ops) / len(theirs_ops):.3f} by operations.")
    fv = fused.values
    if "fused_to_tape" in fv:
        rows = []
        for form, label in (("unfused", "`grad(c, fused=False)`"), ("fused", "`grad(c)`")):
            rows.append([label, f"{fv[f'{form}_size']:,}", f"{fv[f'{form}_operations']:,}",
                         fmt_time(fv[f"{form}_to_tape"]), fmt_time(fv[f"{form}_to_numpy"])])
        rows.append(["fused / unfused", f"{fv['fused_size'] / fv['unfused_size']:.3f}",
                     f"{fv['fused_operations'] / fv['unfused_operations']:.3f}",
                     f"{fv['fused_to_tape'] / fv['unfused_to_tape']:.3f}",
                     f"{fv['fused_to_numpy'] / fv['unfused_to_numpy']:.3f}"])
        out += ["", "### Fused adjoint nodes: one call at one point (N = 10³)", "",
                "The gradient of the 10³-op program with grad's fused adjoint nodes and in the "
                "textbook form (`fused=False`), in one child: its size in nodes and in "
                f"operations, and the best time of one call at one point over {ROUNDS} "
                "interleaved rounds (the machine is shared: each is the best it saw). Values "
                "identical: " + ("yes" if fv.get("same_values") else "NO") + ".",
                "", table(["gradient", "nodes", "operations", "to_tape call",
                           "to_numpy call"], rows)]
    elif fused.error or fused.timed_out:
        out.append(f"\nFused against unfused: {status(fused)}.")
    # rules
    rv = rules.values.get("rules")
    if rv:
        total = rules.values["g_size"] - rules.values["c_size"]
        rows = []
        spent = 0
        for op, (count, live, bound, *unfused) in sorted(rv.items(),
                                                          key=lambda kv: -kv[1][0] * kv[1][1]):
            spent += count * live
            rows.append([op, f"{count:,}", live, bound, unfused[0] if unfused else "–",
                         f"{count * live:,}", f"{100 * count * live / total:.1f} %"])
        rows.append(["sums of fan-out, less what sharing saved", "", "", "", "",
                     f"{total - spent:,}", f"{100 * (total - spent) / total:.1f} %"])
        sums, acc = rules.values.get("sums"), rules.values.get("accumulations")
        out += ["", "### What each adjoint rule costs on the mix (N = 10⁴)", "",
                "Nodes a rule emits for one node with every argument active and its adjoint "
                "not a constant (the sweep on that one node; a sign is carried into the sums, "
                "so `a - b` and `cos′ = -sin` build no `neg`), times the nodes of that op in "
                "the program; the rest of the adjoint's nodes are the adds and subtractions "
                "that sum fan-out, less what hash-consing shared (a `cos(x)` the program "
                "already has) and what constant operands saved (`2.0*x` has one active "
                f"argument). Adjoint nodes in all: {total:,} for {rules.values['c_size']:,} "
                "forward nodes. The rule bound R is what `rule_size` measures from the table "
                "(the proven bound is K = max(R + S) + 2, S the sign cost, over both forms of "
                "the rules), for grad's fused rules and for the textbook ones (`fused=False`). "
                "pow's R is for a variable exponent; the programs raise to constant powers "
                "(x**2 is square, x**3 costs 3 nodes)."
                + (f" The adjoint's sums: {sums:,} `add`/`sub` nodes and {acc:,} accumulations "
                   "(`add_mul`, `sub_mul`, `mul_sub`: a fresh product summed into an adjoint "
                   "in one node, so each also takes back the product its rule's column counts)."
                   if sums is not None else ""), "",
                table(["op", "nodes in f", "rule nodes", "rule bound (R)", "R unfused",
                       "in the mix", "share of the adjoint"], rows)]
    elif rules.error or rules.timed_out:
        out.append(f"\nRule costs: {status(rules)}.")
    # memory
    rows = []
    for n in sizes:
        m = res["memory"][n]
        if "nodes" in m.values:
            rows.append([fmt_n(n), f"{m.values['nodes']:,}",
                         f"{m.values['peak_bytes'] / m.values['nodes']:.0f}",
                         f"{m.values['kept_bytes'] / m.values['nodes']:.0f}"])
        else:
            rows.append([fmt_n(n), status(m), "", ""])
    out += ["", "### Memory per node", "",
            "`tracemalloc` while `parse` and `grad` run (Python allocations; NumPy's arrays are "
            "traced too): the peak, and what stays allocated with the function and the "
            "adjoint circuit alive, over the adjoint circuit's nodes (leaves included). Flat = "
            "linear memory.", "",
            table(["N ops", "adjoint nodes", "peak bytes / node", "kept bytes / node"], rows)]
    return "\n".join(out)


if __name__ == "__main__":
    print(run(quick=True))
