"""Hierarchical observable parameters against the plain objective, same budget and bars.

Usage:
    python benchmarks/hierarchical_compare.py [--plain results/bench/field]
        [--hierarchical results/bench/hierarchical] [--suite benchmarks/hierarchical.toml]
        [--markdown]

For every (problem, method) of the suite it prints, for the plain runs (field.toml's, in
``--plain``) and the hierarchical ones (``--hierarchical``): the best final nllh above the
field's best value (the suite's bars), how many seeds' runs reached it within 0.1 and
within 1.921 and the median run CPU-seconds when they first did, the fraction of starts
within 1.921, the starts and the evaluations per run. Both folders hold runs of 130
CPU-seconds with the same methods, options and seeds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pe_bench.bench import load_suite  # noqa: E402
from pe_bench.metrics import converged, summarise  # noqa: E402
from pe_bench.results import load_results  # noqa: E402


def side(folder: Path, problems: set[str], methods: set[str], bars: dict[str, float]) -> pd.DataFrame:
    """Per (problem, method) of one folder: the figures the comparison prints."""
    starts, history = load_results(folder)
    keep = starts["problem"].isin(problems) & starts["method"].isin(methods)
    starts = starts[keep]
    history = history[history["problem"].isin(problems) & history["method"].isin(methods)]
    table = summarise(starts, history, bars).set_index(["problem", "method"])
    within = converged(starts, bars, 1.921)
    frac = starts.assign(_ok=within.to_numpy()).groupby(["problem", "method"])["_ok"].mean()
    evals = starts.assign(_n=starts["n_fevals"] + starts.get("shared_fevals", 0).fillna(0))
    per_run = evals.groupby(["problem", "method", "seed"])["_n"].sum().groupby(["problem", "method"]).median()
    n_starts = starts.groupby(["problem", "method", "seed"]).size().groupby(["problem", "method"]).median()
    out = pd.DataFrame(
        {
            "gap": table["best_nllh"] - pd.Series(bars).reindex(table.index.get_level_values(0)).to_numpy(),
            "hit_0.1": [f"{h}/{n}" for h, n in zip(table["runs_hit"], table["runs"], strict=True)],
            "cpu_0.1": table["median_cpu_to_threshold"],
            "hit_1.921": [f"{h}/{n}" for h, n in zip(table["runs_hit_1.921"], table["runs"], strict=True)],
            "cpu_1.921": table["median_cpu_to_1.921"],
            "starts_1.921": frac,
            "starts/run": n_starts,
            "evals/run": per_run,
        }
    )
    return out


def main(argv=None) -> int:
    """Print the comparison table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plain", type=Path, default=ROOT / "results/bench/field")
    ap.add_argument("--hierarchical", type=Path, default=ROOT / "results/bench/hierarchical")
    ap.add_argument("--suite", type=Path, default=ROOT / "benchmarks/hierarchical.toml")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    suite = load_suite(args.suite)
    problems = {p.name for p in suite.problems}
    methods = {m.name for m in suite.methods}
    bars = suite.best_known
    plain = side(args.plain, problems, methods, bars)
    hier = side(args.hierarchical, problems, methods, bars)
    rows = []
    for key in sorted(set(plain.index) | set(hier.index)):
        for label, df in (("plain", plain), ("hierarchical", hier)):
            if key in df.index:
                r = df.loc[key]
                rows.append(
                    {
                        "problem": key[0],
                        "method": key[1],
                        "objective": label,
                        "best - field": f"{r['gap']:+.3f}",
                        "runs 0.1": r["hit_0.1"],
                        "CPU s to 0.1": "-" if not np.isfinite(r["cpu_0.1"]) else f"{r['cpu_0.1']:.0f}",
                        "runs 1.921": r["hit_1.921"],
                        "CPU s to 1.921": "-" if not np.isfinite(r["cpu_1.921"]) else f"{r['cpu_1.921']:.0f}",
                        "starts within 1.921": f"{r['starts_1.921']:.2f}",
                        "starts / run": f"{r['starts/run']:.0f}",
                        "evals / run": f"{r['evals/run']:.0f}",
                    }
                )
    out = pd.DataFrame(rows)
    print(out.to_markdown(index=False) if args.markdown else out.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
