"""Does a local search from near a problem's published optimum return to it?

Where no scoreboard start converged, this tells an objective that misses the published
optimum (fides from the nominal parameters would leave it) from starts that rarely land
in its basin. For each sigma, fides (the suite's solver settings, multistart's tolerance,
--max-evals evaluations) starts from the nominal parameters plus N(0, sigma^2) noise in
parameter scale (log10 units for log10 parameters), clipped to the bounds; sigma = 0 is
the nominal point itself. Prints one row per start. The noise is seeded (numpy's
default_rng(seed), drawn in the order of --sigmas), so a rerun gives the same points.

    .venv/bin/python benchmarks/basin.py --problems Brannmark_JBC2010 --sigmas 0,0.3,1 --n 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from pe_bench.bench import _objective, load_suite
from pe_bench.methods.base import Budget, Callbacks, StartTracker
from pe_bench.methods.multistart import MultiStart, local_search
from pe_bench.runtime import configure_jax
from pe_bench.simulate import SolverOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=Path("benchmarks/full.toml"))
    parser.add_argument("--problems", required=True, help="comma-separated problem names")
    parser.add_argument("--sigmas", default="0,0.3,1", help="comma-separated noise scales")
    parser.add_argument("--n", type=int, default=3, help="starts per sigma > 0")
    parser.add_argument("--max-evals", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    configure_jax()
    suite = load_suite(args.suite)
    sigmas = [float(s) for s in args.sigmas.split(",")]
    print("| problem | sigma | start | nllh at start | fides stops at | evals | status | s |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for name in args.problems.split(","):
        entry = next(p for p in suite.problems if p.name == name)
        problem, objective = _objective(entry.source, entry.options(SolverOptions()), entry.priors)
        lower, upper = problem.bounds
        nominal = np.asarray(problem.x_nominal, dtype=float)
        rng = np.random.default_rng(args.seed)
        for sigma in sigmas:
            for i in range(args.n if sigma > 0 else 1):
                x = np.clip(nominal + sigma * rng.standard_normal(nominal.size), lower, upper)
                budget = Budget(n_starts=1, max_evals=args.max_evals)
                tracker = StartTracker(objective, budget, Callbacks(), 0)
                t0 = time.perf_counter()
                status, _, _ = local_search(tracker, x, lower, upper, "fides", MultiStart.tol)
                print(
                    f"| {name} | {sigma:g} | {i} | {tracker.first_value:.3f} | {tracker.best:.3f} "
                    f"| {tracker.n_fevals} | {status} | {time.perf_counter() - t0:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
