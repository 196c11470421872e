"""circuitgrad against the tools users would pick instead (issue 8).

Every tool computes the very same program (:mod:`benchmarks.programs`: the random
straight-line programs and the extended Rosenbrock function), each written in the tool's own
ops by one translator. For each tool and size, in a child process bounded by ``--timeout``:

* **build**: from the program to a callable gradient (value and ∇f), first call included.
  circuitgrad starts from the text (``parse → grad → to_numpy``); "circuitgrad (trace)" and
  the symbolic tools (sympy, symengine, CasADi) from the Python function, which they run on
  their symbols; the tracing tools (JAX, PyTorch, PyTensor, autograd) from the same Python
  function, traced on the first call. Compiling the Python function itself is not counted.
* **evaluation** of f and of (f, ∇f) at one point and at a batch of 4096 points (medians);
  PyTensor and symengine take their batch as vectors / a matrix (their one point: a vector of
  length 1 / one row), JAX as ``jit(vmap(value_and_grad))``, CasADi as ``Function.map``, torch
  and autograd as one backward pass of the vector of values with a seed of ones.
* the **size** of the gradient program against the function's, where the tool exposes one
  (circuitgrad ``g.size / c.size``, jaxpr equations, CasADi instructions, sympy ops after
  cse, PyTensor apply nodes before rewrites);
* **agreement**: max |∇f_tool − ∇f_circuitgrad| / ‖∇f_circuitgrad‖∞ at a random point.

A tool that times out (in its build or first call) is not run at larger sizes; a tool that is
not installed shows "missing". Ratios are to circuitgrad in the same run.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Callable

from .harness import (fmt_n, fmt_ratio, fmt_time, measurement_timeout, median_time,
                      plot_loglog, run_bounded, table, timed)
from .programs import Program, namespace, random_program, rosenbrock, rosenbrock_numpy

POINTS = 4096

# tool -> the package it needs
TOOLS = {
    "circuitgrad": "circuitgrad", "circuitgrad (trace)": "circuitgrad", "casadi": "casadi",
    "symengine": "symengine", "symengine-llvm": "symengine", "sympy": "sympy", "jax": "jax",
    "torch": "torch", "pytensor": "pytensor", "autograd": "autograd", "numpy (hand)": "numpy",
}


def program(workload: str, n: int) -> Program:
    if workload == "random":
        return random_program(n, seed=0)
    if workload == "rosenbrock":
        return rosenbrock(n)
    raise ValueError(workload)


def _floats(values: Any) -> list[float]:
    """Flatten a tool's (J, gradients) at one point into a list of floats."""
    import numpy as np
    out: list[float] = []
    for v in values:
        out.extend(float(x) for x in np.asarray(v, dtype=float).ravel())
    return out


# -- one adapter per tool -------------------------------------------------------------------
# build_grad() builds the gradient callable and calls it once at the point (returns the
# values); grad1/f1 evaluate at the point, gradB/fB at the batch; sizes() -> (f, g) or None.

class Adapter:
    def __init__(self, prog: Program, point: list[float], batch: list[Any]):
        self.prog, self.point, self.batch = prog, point, batch
        self.fn = None

    def sizes(self) -> tuple[int, int] | None:
        return None

    def build_batch(self) -> None:
        pass


class Circuitgrad(Adapter):
    trace = False

    def prepare(self):
        import circuitgrad
        self.cg = circuitgrad
        self.text = self.prog.text()
        if self.trace:
            self.fn = self.prog.function(namespace("circuitgrad"))

    def build_grad(self):
        cg = self.cg
        if self.trace:
            self.c = cg.trace(self.fn)
        else:
            self.c = cg.parse(self.text, inputs=list(self.prog.inputs))
        self.g = cg.grad(self.c)
        self.gf = cg.to_numpy(self.g)
        return self.gf(*self.point)

    def build_f(self):
        self.f = self.cg.to_numpy(self.c)

    def grad1(self): return self.gf(*self.point)
    def f1(self): return self.f(*self.point)
    def gradB(self): return self.gf(*self.batch)
    def fB(self): return self.f(*self.batch)
    def sizes(self): return self.c.size, self.g.size


class CircuitgradTrace(Circuitgrad):
    trace = True


class Sympy(Adapter):
    def prepare(self):
        import sympy as sp
        self.sp = sp
        self.fn = self.prog.function(namespace("sympy"))

    def build_grad(self):
        sp = self.sp
        self.syms = sp.symbols(list(self.prog.inputs), real=True)
        self.J = self.fn(*self.syms)
        self.grads = [sp.diff(self.J, s) for s in self.syms]
        self.g = sp.lambdify(self.syms, [self.J, *self.grads], modules="numpy", cse=True)
        return self.g(*self.point)

    def build_f(self):
        self.f = self.sp.lambdify(self.syms, self.J, modules="numpy", cse=True)

    def grad1(self): return self.g(*self.point)
    def f1(self): return self.f(*self.point)
    def gradB(self): return self.g(*self.batch)
    def fB(self): return self.f(*self.batch)

    def sizes(self):
        sp = self.sp

        def ops(exprs):
            repl, reduced = sp.cse(exprs)
            return (sum(sp.count_ops(e) for _, e in repl)
                    + sum(sp.count_ops(e) for e in reduced))
        return ops([self.J]), ops([self.J, *self.grads])


class Symengine(Adapter):
    backend = "lambda"

    def prepare(self):
        import numpy as np
        import symengine as se
        self.se = se
        self.fn = self.prog.function(namespace("symengine"))
        self.row = np.array(self.point, dtype=float)
        self.matrix = np.column_stack(self.batch)

    def build_grad(self):
        se = self.se
        self.syms = se.symbols(list(self.prog.inputs))
        if len(self.prog.inputs) == 1:
            self.syms = [self.syms]
        self.J = self.fn(*self.syms)
        grads = [self.J.diff(s) for s in self.syms]
        self.g = se.Lambdify(self.syms, [self.J, *grads], cse=True, backend=self.backend)
        return self.g(self.row)

    def build_f(self):
        self.f = self.se.Lambdify(self.syms, [self.J], cse=True, backend=self.backend)

    def grad1(self): return self.g(self.row)
    def f1(self): return self.f(self.row)
    def gradB(self): return self.g(self.matrix)
    def fB(self): return self.f(self.matrix)


class SymengineLLVM(Symengine):
    backend = "llvm"


class Jax(Adapter):
    def prepare(self):
        import jax
        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_platforms", "cpu")
        import jax.numpy as jnp
        self.jax = jax
        self.fn = self.prog.function(namespace("jax"))
        self.p = [jnp.asarray(v, dtype=jnp.float64) for v in self.point]
        self.b = [jnp.asarray(v) for v in self.batch]
        self.vg = jax.value_and_grad(self.fn, argnums=tuple(range(len(self.prog.inputs))))

    def build_grad(self):
        self.g = self.jax.jit(self.vg)
        J, grads = self.jax.block_until_ready(self.g(*self.p))
        return [J, *grads]

    def build_f(self):
        self.f = self.jax.jit(self.fn)
        self.jax.block_until_ready(self.f(*self.p))

    def build_batch(self):
        jax = self.jax
        self.gb = jax.jit(jax.vmap(self.vg))
        self.fb = jax.jit(jax.vmap(self.fn))
        jax.block_until_ready(self.gb(*self.b))
        jax.block_until_ready(self.fb(*self.b))

    def grad1(self): return self.jax.block_until_ready(self.g(*self.p))
    def f1(self): return self.jax.block_until_ready(self.f(*self.p))
    def gradB(self): return self.jax.block_until_ready(self.gb(*self.b))
    def fB(self): return self.jax.block_until_ready(self.fb(*self.b))

    def sizes(self):
        f = len(self.jax.make_jaxpr(self.fn)(*self.p).eqns)
        g = len(self.jax.make_jaxpr(self.vg)(*self.p).eqns)
        return f, g


class Torch(Adapter):
    def prepare(self):
        import torch
        torch.set_num_threads(1)
        self.torch = torch
        self.fn = self.prog.function(namespace("torch"))
        self.p = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in self.point]
        self.b = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in self.batch]
        self.p0 = [x.detach() for x in self.p]
        self.b0 = [x.detach() for x in self.b]

    def _vg(self, xs):
        J = self.fn(*xs)
        grads = self.torch.autograd.grad(J, xs, grad_outputs=self.torch.ones_like(J),
                                         allow_unused=True)
        return J, grads

    def build_grad(self):
        J, grads = self._vg(self.p)
        return [J.detach().numpy(), *[g.numpy() if g is not None else 0.0 for g in grads]]

    def build_f(self):
        pass

    def grad1(self): return self._vg(self.p)
    def gradB(self): return self._vg(self.b)

    def f1(self):
        with self.torch.no_grad():
            return self.fn(*self.p0)

    def fB(self):
        with self.torch.no_grad():
            return self.fn(*self.b0)


class Autograd(Adapter):
    def prepare(self):
        import autograd
        import numpy as np
        self.np = np
        self.make_vjp = autograd.make_vjp
        fn = self.fn = self.prog.function(namespace("autograd"))
        self.fvec = lambda xs: fn(*xs)
        self.p = tuple(np.float64(v) for v in self.point)
        self.b = tuple(self.batch)

    def _vg(self, xs):
        vjp, J = self.make_vjp(self.fvec)(xs)
        return J, vjp(self.np.ones_like(J))

    def build_grad(self):
        J, grads = self._vg(self.p)
        return [J, *grads]

    def build_f(self):
        pass

    def grad1(self): return self._vg(self.p)
    def gradB(self): return self._vg(self.b)
    def f1(self): return self.fn(*self.p)
    def fB(self): return self.fn(*self.b)


class Pytensor(Adapter):
    def prepare(self):
        import numpy as np
        import pytensor
        import pytensor.tensor as pt
        self.pytensor, self.pt = pytensor, pt
        self.fn = self.prog.function(namespace("pytensor"))
        self.p = [np.array([v]) for v in self.point]
        self.b = list(self.batch)

    def build_grad(self):
        pt = self.pt
        self.xs = [pt.dvector(name) for name in self.prog.inputs]
        self.J = self.fn(*self.xs)
        self.grads = self.pytensor.grad(self.J.sum(), self.xs)
        self.g = self.pytensor.function(self.xs, [self.J, *self.grads])
        return self.g(*self.p)

    def build_f(self):
        self.f = self.pytensor.function(self.xs, self.J)

    def grad1(self): return self.g(*self.p)
    def f1(self): return self.f(*self.p)
    def gradB(self): return self.g(*self.b)
    def fB(self): return self.f(*self.b)

    def sizes(self):
        from pytensor.graph.basic import applys_between
        f = sum(1 for _ in applys_between(self.xs, [self.J]))
        g = sum(1 for _ in applys_between(self.xs, [self.J, *self.grads]))
        return f, g


class Casadi(Adapter):
    def prepare(self):
        import casadi as ca
        self.ca = ca
        self.fn = self.prog.function(namespace("casadi"))
        self.rows = [v.reshape(1, -1) for v in self.batch]

    def build_grad(self):
        ca = self.ca
        self.xs = [ca.SX.sym(name) for name in self.prog.inputs]
        self.J = self.fn(*self.xs)
        G = ca.gradient(self.J, ca.vertcat(*self.xs))
        self.g = ca.Function("g", self.xs, [self.J, G])
        return self.g(*self.point)

    def build_f(self):
        self.f = self.ca.Function("f", self.xs, [self.J])

    def build_batch(self):
        self.gm = self.g.map(POINTS)
        self.fm = self.f.map(POINTS)

    def grad1(self): return self.g(*self.point)
    def f1(self): return self.f(*self.point)
    def gradB(self): return self.gm(*self.rows)
    def fB(self): return self.fm(*self.rows)
    def sizes(self): return self.f.n_instructions(), self.g.n_instructions()


class HandNumpy(Adapter):
    def prepare(self):
        import numpy as np
        if not self.prog.name.startswith("rosenbrock"):
            raise NotImplementedError("hand-written NumPy only for Rosenbrock")
        self.f, self.vg = rosenbrock_numpy()
        self.x = np.array(self.point)
        self.X = np.stack(self.batch)

    def build_grad(self):
        J, g = self.vg(self.x)
        return [J, g]

    def build_f(self):
        pass

    def grad1(self): return self.vg(self.x)
    def f1(self): return self.f(self.x)
    def gradB(self): return self.vg(self.X)
    def fB(self): return self.f(self.X)


ADAPTERS: dict[str, type[Adapter]] = {
    "circuitgrad": Circuitgrad, "circuitgrad (trace)": CircuitgradTrace, "sympy": Sympy,
    "symengine": Symengine, "symengine-llvm": SymengineLLVM, "jax": Jax, "torch": Torch,
    "autograd": Autograd, "pytensor": Pytensor, "casadi": Casadi, "numpy (hand)": HandNumpy,
}


def measure(emit: Callable[[str, Any], None], tool: str, workload: str, n: int,
            batch: bool = True) -> None:
    """Child: measure one tool on one program (see the module docstring)."""
    import warnings
    warnings.filterwarnings("ignore")
    prog = program(workload, n)
    adapter = ADAPTERS[tool](prog, prog.point(), prog.batch(POINTS))
    adapter.prepare()
    seconds, values = timed(adapter.build_grad)
    emit("build", seconds)
    emit("grad", _floats(values))
    emit("g1", median_time(adapter.grad1))
    seconds, _ = timed(lambda: (adapter.build_f(), adapter.f1()))
    emit("f_build", seconds)
    emit("f1", median_time(adapter.f1))
    sizes = adapter.sizes()
    if sizes:
        emit("size", list(sizes))
    if batch:
        seconds, _ = timed(lambda: (adapter.build_batch(), adapter.gradB(), adapter.fB()))
        emit("batch_build", seconds)
        emit("gB", median_time(adapter.gradB, budget=0.5))
        emit("fB", median_time(adapter.fB, budget=0.5))


# -- the report -----------------------------------------------------------------------------

WORKLOADS = {
    # workload: (full sizes, quick sizes, largest size with a batch evaluation, what n is)
    "random": ([10**2, 10**3, 10**4, 10**5], [10**2, 10**3], 10**4, "ops"),
    "rosenbrock": ([10, 10**2, 10**3, 10**4], [10, 10**2], 10**3, "variables"),
}


def _cell(r: dict[str, Any], key: str) -> str | None:
    """The status text of a missing measurement, or None if it is there."""
    if key in r:
        return None
    return r.get("status", "–")


def _with_ratio(value: float | None, ref: float | None, status: str | None) -> str:
    if value is None:
        return status or "–"
    text = fmt_time(value)
    if ref:
        text += f" (×{fmt_ratio(value / ref)})"
    return text


def _agreement(values: list[float] | None, ref: list[float] | None) -> str:
    if values is None or ref is None:
        return "–"
    if len(values) != len(ref):
        return f"shape differs ({len(values)} vs {len(ref)})"
    # The value relative to |f|, the gradient relative to its largest component.
    scale = max((abs(x) for x in ref[1:]), default=0.0) or 1.0
    err = max([abs(values[0] - ref[0]) / (abs(ref[0]) or 1.0)] +
              [abs(a - b) / scale for a, b in zip(values[1:], ref[1:])])
    return "0" if err == 0 else f"{err:.1e}"


def run_workload(workload: str, quick: bool, timeout: float) -> dict[str, dict[int, dict]]:
    """Measure every tool on ``workload``; results[tool][n] = values (+ "status")."""
    full, small, batch_max, _ = WORKLOADS[workload]
    sizes = small if quick else full
    results: dict[str, dict[int, dict]] = {}
    for tool, package in TOOLS.items():
        results[tool] = {}
        if tool == "numpy (hand)" and workload != "rosenbrock":
            continue
        missing = importlib.util.find_spec(package) is None
        stopped: str | None = None
        for n in sizes:
            if missing:
                results[tool][n] = {"status": "missing"}
                continue
            if stopped:
                results[tool][n] = {"status": f"not run ({stopped})"}
                continue
            r = run_bounded("benchmarks.peers:measure",
                            {"tool": tool, "workload": workload, "n": n,
                             "batch": n <= batch_max}, timeout)
            v = dict(r.values)
            if r.timed_out:
                v["status"] = "timeout"
                if "g1" not in v:
                    stopped = f"timeout at {fmt_n(n)}"
            elif r.error:
                err = r.error.replace("|", "/")
                v["status"] = ("missing (no LLVM backend)"
                               if tool == "symengine-llvm" and "llvm" in err.lower()
                               else f"error: {err[:80]}")
                if "build" not in v:
                    stopped = f"error at {fmt_n(n)}"
            elif n > batch_max:
                v["status"] = f"not run (batch capped at {fmt_n(batch_max)})"
            v["seconds"] = r.seconds
            results[tool][n] = v
            print(f"[peers] {workload} {tool} {n}: "
                  f"{v.get('status', 'ok')} ({r.seconds:.1f} s)", flush=True)
    return results


def _tables(workload: str, results: dict[str, dict[int, dict]], quick: bool,
            timeout: float) -> list[str]:
    full, small, batch_max, unit = WORKLOADS[workload]
    sizes = small if quick else full
    cg = results["circuitgrad"]
    tools = [t for t in TOOLS if results.get(t)]
    heads = ["tool"] + [f"N = {fmt_n(n)}" for n in sizes]
    out = []

    def rows(fn: Callable[[str, int, dict], str]) -> list[list[str]]:
        return [[f"**{t}**" if t == "circuitgrad" else t] +
                [fn(t, n, results[t].get(n, {"status": "–"})) for n in sizes] for t in tools]

    out += ["", "#### Build: program → callable gradient, first call included "
            "(× = time / circuitgrad's)", "",
            table(heads, rows(lambda t, n, r: _with_ratio(
                r.get("build"), cg.get(n, {}).get("build"), _cell(r, "build"))))]
    img = plot_loglog(f"bench_peers_{workload}_build",
                      f"{workload}: build time (program → callable ∇f)", f"N {unit}",
                      "seconds",
                      {t: ([n for n in sizes if "build" in results[t].get(n, {})],
                           [results[t][n]["build"] for n in sizes
                            if "build" in results[t].get(n, {})]) for t in tools},
                      note=f"timeout {timeout:.0f} s")
    if img:
        out += ["", f"![build time]({img})"]
    for key, what in (("g1", "∇f at one point"), ("gB", f"∇f at {POINTS} points")):
        out += ["", f"#### Evaluation of f and ∇f ({what}; × = time / circuitgrad's)", "",
                table(heads, rows(lambda t, n, r, key=key: _with_ratio(
                    r.get(key), cg.get(n, {}).get(key), _cell(r, key))))]
    img = plot_loglog(f"bench_peers_{workload}_eval",
                      f"{workload}: ∇f at {POINTS} points", f"N {unit}", "seconds",
                      {t: ([n for n in sizes if "gB" in results[t].get(n, {})],
                           [results[t][n]["gB"] for n in sizes
                            if "gB" in results[t].get(n, {})]) for t in tools})
    if img:
        out += ["", f"![batched gradient]({img})"]

    def ratio_cell(t: str, n: int, r: dict) -> str:
        parts = []
        for g, f in (("g1", "f1"), ("gB", "fB")):
            parts.append(fmt_ratio(r[g] / r[f]) if g in r and f in r and r[f] > 0 else "–")
        return " / ".join(parts) if any(p != "–" for p in parts) else (r.get("status") or "–")
    out += ["", "#### Cost of the gradient: time(f, ∇f) / time(f), one point / batch", "",
            table(heads, rows(ratio_cell))]

    def size_cell(t: str, n: int, r: dict) -> str:
        if "size" in r:
            f, g = r["size"]
            return f"{fmt_ratio(g / f)} ({g:,} / {f:,})" if f else "–"
        return "n/a" if "build" in r else (r.get("status") or "–")
    out += ["", "#### Size of the gradient program / the function's "
            "(circuitgrad nodes, jaxpr equations, CasADi instructions, sympy ops after cse, "
            "PyTensor apply nodes before rewrites)", "", table(heads, rows(size_cell))]
    out += ["", "#### Agreement at a random point: max of |f − f(circuitgrad)| / |f(circuitgrad)| "
            "and |∇f − ∇f(circuitgrad)| / ‖∇f(circuitgrad)‖∞", "",
            table(heads, rows(lambda t, n, r: _agreement(
                r.get("grad"), cg.get(n, {}).get("grad")) if "grad" in r else
                (r.get("status") or "–")))]
    return out


def _goals(res: dict[str, dict[str, dict[int, dict]]], quick: bool) -> list[str]:
    """Where circuitgrad stands against issue 8's goals (random programs)."""
    rnd = res["random"]
    sizes = WORKLOADS["random"][1 if quick else 0]
    cg = rnd["circuitgrad"]
    lines = ["", "### Against the goals of issue 8 (random programs)", ""]
    rows = []
    for n in sizes:
        if n < 10**3 or "build" not in cg.get(n, {}):
            continue
        mine = cg[n]["build"]
        verdicts = []
        for t in ("sympy", "symengine", "symengine-llvm", "pytensor", "jax"):
            r = rnd[t].get(n, {})
            if "build" in r:
                verdicts.append(f"{t} {'beaten' if mine < r['build'] else 'NOT beaten'} "
                                f"(×{fmt_ratio(r['build'] / mine)})")
            else:
                verdicts.append(f"{t}: {r.get('status', '–')}")
        ca = rnd["casadi"].get(n, {}).get("build")
        rows.append([f"build, N = {fmt_n(n)}", fmt_time(mine), "; ".join(verdicts),
                     f"CasADi {fmt_time(ca)} (circuitgrad ×{fmt_ratio(mine / ca)})" if ca
                     else "CasADi –"])
    for n in sizes:
        if "gB" not in cg.get(n, {}):
            continue
        peers = {t: rnd[t][n]["gB"] for t in rnd if t not in ("circuitgrad",
                 "circuitgrad (trace)") and "gB" in rnd[t].get(n, {})}
        if peers:
            best = min(peers, key=peers.get)
            ratio = cg[n]["gB"] / peers[best]
            verdict = "met" if ratio <= 1.5 else "not met"
            rows.append([f"batched ∇f, N = {fmt_n(n)}", fmt_time(cg[n]["gB"]),
                         f"fastest peer {best} {fmt_time(peers[best])}: circuitgrad "
                         f"×{fmt_ratio(ratio)} (goal ≤ 1.5: {verdict})", ""])
    for n in sizes:
        if "g1" not in cg.get(n, {}):
            continue
        verdicts = []
        for t in ("sympy", "torch", "autograd"):
            r = rnd[t].get(n, {})
            if "g1" in r:
                verdicts.append(f"{t} {'behind' if cg[n]['g1'] < r['g1'] else 'AHEAD'} "
                                f"(×{fmt_ratio(r['g1'] / cg[n]['g1'])})")
        rows.append([f"∇f at one point, N = {fmt_n(n)}", fmt_time(cg[n]["g1"]),
                     "; ".join(verdicts), ""])
    lines.append(table(["goal", "circuitgrad", "peers (× = peer / circuitgrad)", ""], rows))
    return lines


def run(quick: bool = False) -> str:
    """The peer comparison (markdown)."""
    timeout = measurement_timeout(quick)
    res = {w: run_workload(w, quick, timeout) for w in WORKLOADS}
    out = ["## circuitgrad and its peers (issue 8)", "",
           "Every tool computes the same program, translated op for op from the program text "
           "(`benchmarks/programs.py`): seeded random straight-line programs of N ops over 8 "
           "inputs, and the extended Rosenbrock function in N variables (one scalar input "
           "per variable; `numpy (hand)` is the vectorized hand-written f and ∇f). "
           f"Each tool and size runs in a child process bounded by {timeout:.0f} s; "
           "\"timeout\" there stops the tool for larger sizes. Times are medians; "
           "× is the ratio to circuitgrad's time in the same run (> 1: circuitgrad faster). "
           "Build = program → callable gradient including its first call (JIT compiles, "
           "symbolic differentiation, code generation); the batch versions of JAX and CasADi "
           "are built separately and not counted. Every tool runs on one CPU: each child "
           "process is pinned to one (XLA's flags alone still let JAX use a second), with "
           "`OMP_NUM_THREADS=1`, `torch.set_num_threads(1)`, XLA without its Eigen pool.", ""]
    if quick:
        out.append("Quick mode: small sizes only.")
    missing = sorted({t for w in res.values() for t, rs in w.items()
                      for r in rs.values() if str(r.get("status", "")).startswith("missing")})
    if missing:
        out.append(f"Missing peers: {', '.join(missing)} (install with `pip install -e .[bench]`).")
    out += _goals(res, quick)
    for workload in WORKLOADS:
        title = ("Random straight-line programs (N ops)" if workload == "random"
                 else "Extended Rosenbrock (N variables)")
        out += ["", f"### {title}"]
        out += _tables(workload, res[workload], quick, timeout)
    return "\n".join(out)
