"""Objective timings on the shared benchmark problems (a benchmark, not a test).

For each problem: compile times (value, value-and-gradient, batched), median time of one
objective evaluation and of one value-and-gradient evaluation, and the throughput of the
batched objective on 256 parameter vectors (nominal + N(0, 0.1) on the estimation scale,
clipped to the bounds). Prints a Markdown table.

    .venv/bin/python benchmarks/bench_objective.py [--problems A,B] [--repeats 11] [--batch 256]
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


def bench(problem_id: str, repeats: int, batch: int, seed: int = 0) -> dict:
    t0 = time.perf_counter()
    problem = load_petab(SHARED / problem_id / f"{problem_id}.yaml")
    load_s = time.perf_counter() - t0
    objective = Objective(problem)
    x = jnp.asarray(problem.x_nominal)
    lo, hi = problem.bounds
    rng = np.random.default_rng(seed)
    xs = jnp.asarray(np.clip(problem.x_nominal + rng.normal(0, 0.1, (batch, len(x))), lo, hi))
    value, c_value = _compile(objective._value, x)
    vgrad, c_grad = _compile(objective._value_and_grad, x)
    batched, c_batch = _compile(objective._batch, xs)
    t_value = _median_time(value, x, repeats)
    t_grad = _median_time(vgrad, x, repeats)
    t_batch = _median_time(batched, xs, max(1, repeats // 4))
    _, status = batched(xs)
    return {
        "problem": problem_id,
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
    parser.add_argument("--out", default="", help="also write the table as CSV here")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    ids = (
        args.problems.split(",") if args.problems else sorted(p.parent.name for p in SHARED.glob("*/*.yaml"))
    )
    rows = []
    for pid in ids:
        rows.append(bench(pid, args.repeats, args.batch))
        print(f"# done {pid}", flush=True)
    df = pd.DataFrame(rows)
    print(
        f"\n{platform.processor() or platform.machine()}, {jax.devices()[0].platform}, jax {jax.__version__}"
    )
    print(df.to_markdown(index=False, floatfmt=".3g"))
    if args.out:
        df.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
