"""pe_bench's methods beside the field's largest optimizer benchmark (Grein et al. 2026).

Usage:
    python benchmarks/field_compare.py --results results/bench/field --suite benchmarks/field.toml
        [--long-results results/bench/field-long --long-suite benchmarks/field_long.toml]
        [--write-long benchmarks/field_long.toml] [--readme docs/field.md]

Per problem it prints the field's best value and who found it; the fraction of the
field's runs of fides, CMA-ES, SACESS, particle swarm and L-BFGS-B that reached it within
0.1 (full budget: 129,600 CPU-seconds per run, 777,600 on the hard problems); per
pe_bench method, the fraction of its seeds that reached it within 0.1 and the median
CPU-seconds to get there; the CPU-seconds to the field's statistical threshold
(best + 1.921) beside the field's first-hitting times (wall seconds x cores); and the
best-so-far at the CPU-seconds of 0.1 % and 1 % of the field's budget beside the field's
own there (its ``data/fval_at_timepoints.csv``, extracted for these problems into
``benchmarks/field_data/fval_at_timepoints.tsv``). CPU-seconds on different machines
compare within a factor of about 2; this machine's CPU model is printed.

``--write-long`` writes the suite of the second stage: the best two pe_bench methods per
problem (by seeds within 0.1, then median CPU-seconds to it, then median best nllh)
with 1296 CPU-seconds (1 % of the field's easy budget), for the problems that no method
solved (within 0.1 on 2 of 3 seeds) at 130 CPU-seconds, seed by seed.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from pe_bench.bench import confirmed_values, load_suite, read_bars
from pe_bench.metrics import STAT_THRESHOLDS, best_known, run_cpu_axis
from pe_bench.results import load_results

HERE = Path(__file__).parent
FIELD = HERE.parent.parent / "shared" / "field-benchmark"
TIMEPOINTS = HERE / "field_data" / "fval_at_timepoints.tsv"
START, END = "<!-- field:start -->", "<!-- field:end -->"
#: The field's optimizers compared, as BEST_KNOWN.tsv and FIRST_HITTING_TIMES.tsv name them.
FIELD_OPTIMIZERS = {
    "fides": "fides",
    "cmaes": "cmaes",
    "sacess": "sacess",
    "pyswarm": "pyswarm",
    "L-BFGS-B": "L-BFGS-B",
}
#: The field's budget fractions pe_bench's budgets correspond to (on the easy problems).
FRACTIONS = (0.001, 0.01)
EASY_CPU, HARD_CPU = 129_600, 777_600
WITHIN = 0.1
STAT = STAT_THRESHOLDS[0]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fmt(v, digits=1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "never"
    return f"{v:.{digits}f}"


def run_table(results: Path, suite) -> pd.DataFrame:
    """Per (problem, method, seed): best nllh, run CPU seconds, and CPU-seconds to each bar."""
    starts, history = load_results(results)
    names = {p.name for p in suite.problems}
    starts, history = starts[starts["problem"].isin(names)], history[history["problem"].isin(names)]
    confirmed = confirmed_values(read_bars(results), suite.best_known)
    bars = best_known(starts, suite.best_known, confirmed)
    history = history.assign(_t=run_cpu_axis(starts, history).to_numpy())
    rows = []
    for (problem, method, seed), s in starts.groupby(["problem", "method", "seed"]):
        h = history[
            (history["problem"] == problem) & (history["method"] == method) & (history["seed"] == seed)
        ]
        h = h.sort_values("_t")
        bar = bars[problem]
        row = {
            "problem": problem,
            "method": method,
            "seed": seed,
            "bar": bar,
            "best": float(s["nllh_final"].min()),
            "cpu": float(s["run_cpu_s"].max()),
            "starts": len(s),
        }
        for label, offset in (("0.1", WITHIN), ("stat", STAT)):
            hit = h[h["best_nllh"] <= bar + offset]
            row[f"t_{label}"] = float(hit["_t"].iloc[0]) if len(hit) else math.inf
        for t in (130.0, 1296.0):
            seen = h[h["_t"] <= t]
            row[f"best_at_{t:g}"] = float(seen["best_nllh"].min()) if len(seen) else math.inf
        rows.append(row)
    return pd.DataFrame(rows)


def rank_methods(runs: pd.DataFrame) -> dict[str, list[str]]:
    """Per problem, pe_bench's methods best first (seeds within 0.1, CPU to it, median best)."""
    out = {}
    for problem, p in runs.groupby("problem"):
        score = []
        for method, m in p.groupby("method"):
            hits = np.isfinite(m["t_0.1"])
            median_t = float(np.median(m.loc[hits, "t_0.1"])) if hits.any() else math.inf
            score.append((-hits.mean(), median_t, float(np.median(m["best"])), method))
        out[problem] = [s[-1] for s in sorted(score)]
    return out


def solved(runs: pd.DataFrame, n_seeds: int) -> set[str]:
    """Problems where some method's runs reached the field's best within 0.1 on 2 of 3 seeds."""
    need = math.ceil(2 * n_seeds / 3)
    hits = runs[np.isfinite(runs["t_0.1"])].groupby(["problem", "method"]).size()
    return {problem for (problem, _), k in hits.items() if k >= need}


def write_long(
    path: Path,
    suite,
    ranking: dict[str, list[str]],
    top: int = 2,
    skip: frozenset[str] = frozenset(),
    gaps: dict[str, float] | None = None,
) -> None:
    """The second stage's suite; problems nearest the bar (smallest ``gaps``) first."""
    gaps = gaps or {}
    lines = [
        "# The second stage of benchmarks/field.toml: per problem the best two pe_bench methods",
        "# of the 130-CPU-second run (by seeds within 0.1 of the field's best, then median",
        "# CPU-seconds to it, then median best nllh), again with 1296 CPU-seconds (1 % of the",
        "# field's 129,600 per run on its easy problems), 3 seeds. Written by",
        "# `python benchmarks/field_compare.py --results results/bench/field --suite",
        "# benchmarks/field.toml --write-long benchmarks/field_long.toml`; run with make field-long.",
        "# Problems where some method already reached the field's best (within 0.1) on 2 of",
        "# 3 seeds at 130 CPU-seconds have met the goal within 0.1 % of the field's budget and",
        "# are left out: " + (", ".join(sorted(skip)) or "none") + ".",
        "# Problems nearest the field's best at 130 s come first, and tasks run seed by seed",
        '# (order = "seed"): a partial sitting gives the nearest problems their first seeds.',
        'name = "field-long"',
        'best_known_file = "../../shared/field-benchmark/BEST_KNOWN.tsv"',
        f"seeds = {list(suite.seeds)}",
        "cpu_budget = 1296",
        "threshold = 0.1",
        'order = "seed"',
        "",
    ]
    chosen = set()
    for p in sorted(suite.problems, key=lambda p: gaps.get(p.name, math.inf)):
        if p.name in skip:
            continue
        methods = ranking.get(p.name, [])[:top]
        chosen |= set(methods)
        rel = Path("../../shared/benchmark-models") / Path(p.source).name
        lines += ["[[problems]]", f'source = "{rel}"', f"methods = {methods!r}".replace("'", '"'), ""]
    for m in suite.methods:
        if m.name not in chosen:
            continue
        lines += ["[[methods]]", f'name = "{m.name}"']
        if m.options:
            opts = ", ".join(f"{k} = {v}" if _number(v) else f'{k} = "{v}"' for k, v in m.options)
            lines.append(f"options = {{ {opts} }}")
        lines.append("")
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


def _number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return v in ("true", "false")
    return True


def field_tables():
    best = pd.read_csv(FIELD / "BEST_KNOWN.tsv", sep="\t", comment="#").set_index("problem_id")
    fht = pd.read_csv(FIELD / "FIRST_HITTING_TIMES.tsv", sep="\t", comment="#")
    fht["cpu_0.05"] = fht["first_hitting_s_0.05"] * fht["n_cores"]
    points = pd.read_csv(TIMEPOINTS, sep="\t", comment="#") if TIMEPOINTS.is_file() else None
    return best, fht, points


def section(args) -> str:
    suite = load_suite(args.suite)
    runs = run_table(args.results, suite)
    long = None
    if args.long_results is not None and args.long_results.exists():
        long = run_table(args.long_results, load_suite(args.long_suite))
    best, fht, points = field_tables()
    methods = [m.name for m in suite.methods]
    n_seeds = len(suite.seeds)
    lines = [
        START,
        "",
        f"Generated by `make field-compare` from `{args.results}`"
        + (f" and `{args.long_results}`" if long is not None else "")
        + f" on {cpu_model()} ({platform.machine()}, {os.cpu_count()} cores; the field's runs: 12 or 24 "
        "cores of its clusters, CPU model not stated; CPU-seconds on different machines compare within a "
        "factor of about 2). Field values: ../shared/field-benchmark (Grein et al. 2026, CC-BY-4.0). "
        "pe_bench: "
        f"{n_seeds} seeds per method, each run {suite.methods[0].budget.cpu_budget:g} CPU-seconds "
        '(0.1 % of the field\'s 129,600 per run; 0.017 % on Fujita and Zheng, "hard" there: 777,600), '
        "compilation excluded.",
        "",
        "**Who reaches the field's best (within 0.1).** Field: runs of 10 that did (full budget). "
        f"pe_bench: seeds of {n_seeds} whose run did, and the median CPU-seconds to it.",
        "",
        "| problem | field best (by) | field fides / CMA-ES / SACESS / PSO / L-BFGS-B | "
        + " | ".join(methods)
        + (" | 1296 s (best two) |" if long is not None else " |"),
        "|---|---:|---|" + "---:|" * len(methods) + ("---|" if long is not None else ""),
    ]
    for p in suite.problems:
        name = p.name
        f = best.loc[name]
        field = " / ".join(str(f[f"{k}_runs_within_0.1"]).split("/")[0] for k in FIELD_OPTIMIZERS)
        cells = []
        r = runs[runs["problem"] == name]
        for method in methods:
            m = r[r["method"] == method]
            if m.empty:
                cells.append("-")
                continue
            hits = m.loc[np.isfinite(m["t_0.1"]), "t_0.1"]
            cells.append(f"{len(hits)}/{len(m)}" + (f" ({np.median(hits):.0f} s)" if len(hits) else ""))
        row = f"| {name} | {f['best_nllh']:.3f} ({f['found_by']}) | {field} | " + " | ".join(cells)
        if long is not None:
            lr = long[long["problem"] == name]
            parts = []
            for method, m in lr.groupby("method"):
                hits = m.loc[np.isfinite(m["t_0.1"]), "t_0.1"]
                parts.append(
                    f"{method} {len(hits)}/{len(m)}" + (f" ({np.median(hits):.0f} s)" if len(hits) else "")
                )
            row += " | " + (", ".join(parts) or "-")
        lines.append(row + " |")
    lines += [
        "",
        f"**CPU-seconds to the field's best + {STAT:.3f}** (its statistical threshold). Field: first-hitting "
        "time x cores (FIRST_HITTING_TIMES.tsv; `never`: not within its budget). pe_bench: median over the "
        "seeds that got there (k/n: seeds that did), within its budget.",
        "",
        "| problem | field fides | CMA-ES | SACESS | pySaCeSS+fides | PSO | L-BFGS-B | "
        + " | ".join(methods)
        + " |",
        "|---|" + "---:|" * (6 + len(methods)),
    ]
    for p in suite.problems:
        name = p.name
        f = fht[fht["problem_id"] == name].set_index("optimizer")["cpu_0.05"]
        field = [
            fmt(float(f.get(k, math.nan)), 0)
            for k in ("fides", "cmaes", "sacess", "pysacess_fides", "pyswarm", "L-BFGS-B")
        ]
        r = runs[runs["problem"] == name]
        cells = []
        for method in methods:
            m = r[r["method"] == method]
            hits = m.loc[np.isfinite(m["t_stat"]), "t_stat"]
            cells.append(f"{np.median(hits):.0f} ({len(hits)}/{len(m)})" if len(hits) else f"- (0/{len(m)})")
        lines.append(f"| {name} | " + " | ".join(field) + " | " + " | ".join(cells) + " |")
    if points is not None:
        lines += [
            "",
            "**Best-so-far at the same CPU-seconds**, as a gap above the field's best (median over runs). "
            "Field: at 0.1 % and 1 % of its budget (129.6 and 1296 CPU-seconds on the easy problems, 777.6 "
            "and 7776 on Fujita and Zheng), its `data/fval_at_timepoints.csv`. pe_bench: at 130 s, the best "
            "method of the 130-s run"
            + (" and at 1296 s the best of the 1296-s runs" if long is not None else "")
            + ".",
            "",
            "| problem | field fides 0.1 % / 1 % | CMA-ES | SACESS | PSO | L-BFGS-B | pe_bench 130 s (method)"
            + (" | pe_bench 1296 s (method) |" if long is not None else " |"),
            "|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if long is not None else ""),
        ]
        short = {n: n.split("_")[0] for n in (p.name for p in suite.problems)}
        for p in suite.problems:
            name, bar = p.name, float(best.loc[p.name, "best_nllh"])
            pts = points[points["problem"] == short[name]]
            cells = []
            for k in ("fides", "cmaes", "sacess", "pyswarm", "L-BFGS-B"):
                o = pts[pts["optimizer"] == k]
                vals = [o[np.isclose(o["timepoint_fraction"], fr)]["fval"].median() - bar for fr in FRACTIONS]
                cells.append(" / ".join(fmt(v, 2) for v in vals))
            r = runs[runs["problem"] == name]
            gaps = r.groupby("method")["best_at_130"].median() - bar
            row = f"| {name} | " + " | ".join(cells) + f" | {gaps.min():.2f} ({gaps.idxmin()})"
            if long is not None:
                lr = long[long["problem"] == name]
                if len(lr):
                    lg = lr.groupby("method")["best_at_1296"].median() - bar
                    row += f" | {lg.min():.2f} ({lg.idxmin()})"
                else:
                    row += " | -"
            lines.append(row + " |")
    lines += ["", END]
    return "\n".join(lines)


def main() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--suite", type=Path, required=True)
    ap.add_argument("--long-results", type=Path)
    ap.add_argument("--long-suite", type=Path, default=HERE / "field_long.toml")
    ap.add_argument("--write-long", type=Path)
    ap.add_argument("--readme", type=Path)
    args = ap.parse_args()
    if args.write_long is not None:
        suite = load_suite(args.suite)
        runs = run_table(args.results, suite)
        skip = frozenset(solved(runs, len(suite.seeds)))
        gaps = (runs["best"] - runs["bar"]).groupby(runs["problem"]).min().to_dict()
        write_long(args.write_long, suite, rank_methods(runs), skip=skip, gaps=gaps)
        return
    text = section(args)
    if args.readme is None:
        print(text)
        return
    readme = args.readme.read_text()
    if START in readme and END in readme:
        head, rest = readme.split(START, 1)
        readme = head + text + rest.split(END, 1)[1]
    else:
        readme = readme.rstrip() + "\n\n## Beside the field\n\n" + text + "\n"
    args.readme.write_text(readme)
    print(f"updated {args.readme}")


if __name__ == "__main__":
    main()
