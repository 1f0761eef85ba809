"""Is a scoreboard's best start a local optimum, or did its budget stop it?

Takes each named problem's best multistart start from a result folder and runs fides again
from its end point (a fresh local search, with the suite's solver settings and fides'
tolerance), then prints where it stops. If fides stops on its own tolerance within a few
evaluations at the same value, the start had reached a local optimum and more evaluations
per start would not have helped; if it goes on descending, the budget stopped it.

    .venv/bin/python benchmarks/continue_best.py --problems Brannmark_JBC2010,Weber_BMC2015
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from pe_bench.bench import _objective, load_suite
from pe_bench.methods.base import Budget, Callbacks, StartTracker
from pe_bench.methods.multistart import MultiStart, local_search
from pe_bench.results import load_results
from pe_bench.runtime import configure_jax
from pe_bench.simulate import SolverOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results/bench/full"))
    parser.add_argument("--suite", type=Path, default=Path("benchmarks/full.toml"))
    parser.add_argument("--problems", required=True, help="comma-separated problem names")
    parser.add_argument("--max-evals", type=int, default=300)
    args = parser.parse_args()
    configure_jax()
    suite = load_suite(args.suite)
    starts, _ = load_results(args.results)
    print(
        "| problem | best start (seed/start) | its nllh | its evals, status "
        "| continued: nllh | evals | status | s |"
    )
    print("|---|---|---:|---|---:|---:|---|---:|")
    for name in args.problems.split(","):
        entry = next(p for p in suite.problems if p.name == name)
        rows = starts[(starts["problem"] == name) & (starts["method"] == "multistart")]
        row = rows.sort_values("nllh_final").iloc[0]
        problem, objective = _objective(entry.source, entry.options(SolverOptions()), entry.priors)
        lower, upper = problem.bounds
        tracker = StartTracker(objective, Budget(n_starts=1, max_evals=args.max_evals), Callbacks(), 0)
        t0 = time.perf_counter()
        status, message, _ = local_search(
            tracker, np.asarray(row["x_final"], dtype=float), lower, upper, "fides", MultiStart.tol
        )
        print(
            f"| {name} | {row['seed']}/{row['start']} | {row['nllh_final']:.3f} | {row['n_fevals']}, "
            f"{row['status']} | {tracker.best:.3f} | {tracker.n_fevals} | {status} ({message}) "
            f"| {time.perf_counter() - t0:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
