"""Large models: load, code generation, compilation and per-call time by model size.

Writes the synthetic linear reaction network of ``tests/large_network.py`` (n species,
about 2.1 n reactions, four estimated rate parameters; its exact solution is a matrix
exponential) as a PEtab problem, then measures separately:

- ``load_s``: libsbml + PEtab tables -> the symbolic model (sympy);
- ``codegen_s``: sympy -> JAX functions (lambdify with common subexpressions), the
  Jacobian's sparsity and the linear solver's structure;
- ``compile_value_s`` / ``compile_grad_s``: XLA compilation of the nllh and of the nllh
  with its gradient (forward sensitivities);
- ``value_s`` / ``grad_s``: one compiled call (median of ``--repeats``);
- ``llh`` against ``llh_exact``, the likelihood of the matrix-exponential solution.

    .venv/bin/python benchmarks/bench_large.py [--sizes 100,250,500] [--links 0] [--solvers auto]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import large_network  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pe_bench.objective import Objective  # noqa: E402
from pe_bench.problems.petab_io import load_petab  # noqa: E402
from pe_bench.runtime import configure_jax  # noqa: E402
from pe_bench.simulate import SolverOptions  # noqa: E402


def exact_llh(problem, n: int, links: int) -> float:
    states = large_network.exact(n, large_network.PARAMETERS, large_network.TIMES, links)
    sums = {
        "first": states[:, 0],
        "middle": states[:, n // 2],
        "last": states[:, n - 1],
        "total": states.sum(1),
    }
    df = problem.measurement_df
    sim = np.array(
        [
            sums[o][list(large_network.TIMES).index(t)]
            for o, t in zip(df["observableId"], df["time"], strict=True)
        ]
    )
    r = (df["measurement"].to_numpy() - sim) / large_network.NOISE
    return float(-np.sum(0.5 * np.log(2 * np.pi * large_network.NOISE**2) + 0.5 * r**2))


def measure(n: int, links: int, solver: str, repeats: int, folder: Path) -> dict:
    yaml = large_network.write_problem(folder / f"net{n}_{links}", n, links)
    t0 = time.perf_counter()
    problem = load_petab(yaml)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    objective = Objective(problem, SolverOptions(linear_solver=solver))
    structure = objective.simulator.functions.structure
    codegen_s = time.perf_counter() - t0
    x = jnp.asarray(problem.x_nominal)
    t0 = time.perf_counter()
    value = objective._value.lower(x).compile()
    compile_value_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    grad = objective._value_and_grad.lower(x).compile()
    compile_grad_s = time.perf_counter() - t0
    nllh = float(value(x)[0])
    tv, tg = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(value(x))
        tv.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        jax.block_until_ready(grad(x))
        tg.append(time.perf_counter() - t0)
    return {
        "n_species": n,
        "reactions": problem.model.n_reactions,
        "solver": structure.kind,
        "bandwidth": max(structure.lower, structure.upper) if structure.kind == "banded" else None,
        "jac_products": structure.n_colors,
        "load_s": load_s,
        "codegen_s": codegen_s,
        "compile_value_s": compile_value_s,
        "value_s": float(np.median(tv)),
        "compile_grad_s": compile_grad_s,
        "grad_s": float(np.median(tg)),
        "llh": -nllh,
        "llh_exact": exact_llh(problem, n, links),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,250,500")
    ap.add_argument("--links", type=int, default=0, help="random long-range reactions (widen the band)")
    ap.add_argument("--solvers", default="auto")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    configure_jax()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(v) for v in args.sizes.split(",")]:
            for solver in args.solvers.split(","):
                rows.append(measure(n, args.links, solver, args.repeats, Path(tmp)))
                print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    print()
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4g"))


if __name__ == "__main__":
    main()
