"""Objective timings on the shared benchmark problems (a benchmark, not a test).

For each problem: compile times (value, value-and-gradient; batched: the first
`Objective.batch` call, compile included), median time of one objective evaluation and
of one value-and-gradient evaluation, and the throughput of the batched objective
(`Objective.batch`: one chunk per core) on 256 parameter vectors (nominal + N(0, 0.1)
on the estimation scale, clipped to the bounds). Prints a Markdown table.

    .venv/bin/python benchmarks/bench_objective.py [--problems A,B] [--repeats 11] [--batch 256]
        [--solvers rodas5,kvaerno5]

With several solvers, each problem is measured with each of them in turn (same machine,
same run), forward-mode sensitivities throughout, and the table gains a ratio column.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

import pe_bench  # noqa: F401  (sets EQX_ON_ERROR before equinox loads)
from pe_bench.objective import Objective
from pe_bench.options import SolverOptions
from pe_bench.problems.petab_io import load_petab

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "benchmark-models"


def _compile(fn, x):
    t0 = time.perf_counter()
    compiled = fn.lower(x).compile()
    return compiled, time.perf_counter() - t0


def _median_time(fn, x, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(x))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(problem_id: str, repeats: int, batch: int, solver: str = "auto", seed: int = 0) -> dict:
    t0 = time.perf_counter()
    problem = load_petab(SHARED / problem_id / f"{problem_id}.yaml")
    load_s = time.perf_counter() - t0
    objective = Objective(problem, SolverOptions(solver=solver))
    x = jnp.asarray(problem.x_nominal)
    lo, hi = problem.bounds
    rng = np.random.default_rng(seed)
    xs = jnp.asarray(np.clip(problem.x_nominal + rng.normal(0, 0.1, (batch, len(x))), lo, hi))
    value, c_value = _compile(objective._value, x)
    vgrad, c_grad = _compile(objective._value_and_grad, x)
    t0 = time.perf_counter()
    objective.batch(xs)  # compiles (the chunk shape) and runs once
    c_batch = time.perf_counter() - t0
    t_value = _median_time(value, x, repeats)
    t_grad = _median_time(vgrad, x, repeats)
    t_batch = _median_time(objective.batch, xs, max(1, repeats // 4))
    _, status = objective.batch(xs)
    return {
        "problem": problem_id,
        "solver": objective.options.solver,
        "n_par": len(x),
        "load_s": load_s,
        "compile_value_s": c_value,
        "compile_grad_s": c_grad,
        "compile_batch_s": c_batch,
        "value_ms": 1e3 * t_value,
        "value_grad_ms": 1e3 * t_grad,
        "batch_evals_per_s": batch / t_batch,
        "batch_vs_sequential": (batch / t_batch) * t_value,
        "batch_failed": int((np.asarray(status) != 0).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="", help="comma-separated ids (default: every shared problem)")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--solvers", default="auto", help="comma-separated: auto, rodas5, kvaerno5")
    parser.add_argument("--out", default="", help="also write the table as CSV here")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    ids = (
        args.problems.split(",") if args.problems else sorted(p.parent.name for p in SHARED.glob("*/*.yaml"))
    )
    rows = []
    for pid in ids:
        for solver in args.solvers.split(","):
            rows.append(bench(pid, args.repeats, args.batch, solver))
        print(f"# done {pid}", flush=True)
    df = pd.DataFrame(rows)
    solvers = df["solver"].unique()
    if len(solvers) > 1:
        first = df.groupby("problem")["value_grad_ms"].transform(lambda v: v.iloc[0])
        df[f"value_grad_vs_{solvers[0]}"] = df["value_grad_ms"] / first
    print(
        f"\n{platform.processor() or platform.machine()}, {jax.devices()[0].platform}, jax {jax.__version__}"
    )
    print(df.to_markdown(index=False, floatfmt=".3g"))
    if args.out:
        df.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
