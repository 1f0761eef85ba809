"""Write the scoreboard page (docs/scoreboard.md) from the results of a `make bench` run.

Usage: python benchmarks/scoreboard.py --results results/bench/full --suite benchmarks/full.toml
       [--plots docs/img/scoreboard] [--readme docs/scoreboard.md]   (without --readme: printed)

The section lies between the markers ``<!-- scoreboard:start -->`` and
``<!-- scoreboard:end -->``; everything in it is generated from the result files.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import numpy as np

from pe_bench.bench import (
    confirm_bars,
    confirmed_values,
    load_suite,
    method_for,
    missing_starts,
    planned_starts,
)
from pe_bench.metrics import converged, summarise
from pe_bench.results import load_results, read_metadata

START, END = "<!-- scoreboard:start -->", "<!-- scoreboard:end -->"
#: A best start counts as below the stated value only beyond the reference-llh tolerance.
BELOW = 1e-3


def fmt(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if isinstance(value, float) and np.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def budget_text(suite, m) -> str:
    """The suite's default budget; problems that set their own are in the per-problem table."""
    secs = f" and at most {m.max_seconds:g} s" if m.max_seconds is not None else ""
    text = f"{m.n_starts} starts per method and problem, {m.max_evals} evaluations{secs} per start"
    if any(p.budget for p in suite.problems):
        text += " by default, each problem's own in the per-problem table below"
    return text


def seeds_converged(starts, table) -> dict[tuple[str, str], str]:
    """Per (problem, method): 'k/n', seeds with at least one converged start out of seeds run."""
    reference = dict(zip(table["problem"], table["best_known"], strict=False))
    thresholds = dict(zip(table["problem"], table["threshold"], strict=False))
    frame = starts.assign(_ok=converged(starts, reference, thresholds).to_numpy())
    return {
        key: f"{m[m['_ok']]['seed'].nunique()}/{m['seed'].nunique()}"
        for key, m in frame.groupby(["problem", "method"])
    }


def missing_line(suite, results: Path) -> str:
    """What an unfinished run lacks: the suite's starts not in the result files yet."""
    missing = missing_starts(suite, results)
    if not missing:
        return "Complete: every start the suite plans is in the result files."
    parts = [f"{p}/{m} ({n} of {planned} starts)" for (p, m), (n, planned) in missing.items()]
    total = sum(planned_starts(suite).values())
    return (
        f"**Not complete**: {sum(n for n, _ in missing.values())} of {total} planned "
        "starts are not in the result files yet (resume with `make bench`): "
        + ", ".join(parts)
        + ". The rows above hold what was run; a problem or method missing from them was not run."
    )


def clock_line(starts) -> str:
    """Which rows predate the fair clock (files without CPU-seconds)."""
    old = starts[starts["cpu_time_s"].isna()]
    if old.empty:
        return "Every row was measured with the fair clock (compilation outside the starts, CPU-seconds)."
    runs = old.groupby(["problem", "method", "seed"]).ngroups
    methods = ", ".join(sorted(old["method"].unique()))
    return (
        f"**{len(old)} of {len(starts)} starts ({runs} runs: {methods}) predate the fair clock** (written "
        "before pe_bench.clock): their seconds include compilation (in the first start of each task), they "
        "record no CPU-seconds, and their cVAE starts were charged their round's screening batch (so on "
        "B2 and B4 the round-1 cVAE start had no local search). Their nllh and evaluation counts stand; "
        "`make bench` after deleting those files re-runs them."
    )


def problem_lines(suite, starts, table, bars) -> list[str]:
    """Per problem: its budget, what it cost over all methods and seeds, where its best known
    value comes from, and how far the best start got where nothing converged."""
    stated = suite.best_known
    sources = suite.best_known_sources
    lines = [
        "| problem | budget per method and seed | evaluations | seconds | best known from | best start "
        "| vs stated |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    none = []
    for problem in sorted(table["problem"].unique()):
        rows = table[table["problem"] == problem]
        entry = next(p for p in suite.problems if p.name == problem)
        b = method_for(entry, suite.methods[0]).budget
        secs = f", <= {b.max_seconds:g} s" if b.max_seconds is not None else ""
        text = f"{b.n_starts} starts x {b.max_evals:g} evals{secs}"
        if entry.seeds is not None:
            text += f"; seeds {list(entry.seeds)}"
        if entry.solver:
            text += "; solver " + ", ".join(f"{k} = {v:g}" if not isinstance(v, str) else f"{k} = {v}"
                                            for k, v in entry.solver)  # fmt: skip
        m = starts[starts["problem"] == problem]
        best = float(rows["best_nllh"].min())
        published = stated.get(problem)
        source = sources.get(problem, "stated")
        if published is None:
            origin, gap = "this run (none stated)", "-"
        elif problem in bars:
            tight = bars[problem]["nllh_tight"]
            origin = f"this run, re-checked at rtol 1e-12: {tight:.3f} (below {source})"
            gap = f"{best - published:+.3f}"
        else:
            origin, gap = source, f"{best - published:+.3f}"
        evals = m["n_fevals"].sum() + m["shared_fevals"].fillna(0).sum()
        secs = m["wall_time_s"].sum() + m["shared_wall_s"].fillna(0).sum()
        lines.append(f"| {problem} | {text} | {int(evals)} | {secs:.0f} | {origin} | {best:.3f} | {gap} |")
        if int(rows["converged"].sum()) == 0:
            gap = best - rows["best_known"].iloc[0]
            none.append(f"{problem} (best start {best:.3f}, {gap:+.3f} from the best known)")
    lines += [
        "",
        "No method converged on: "
        + (", ".join(none) if none else "none (every problem has a converged start)")
        + ".",
    ]
    return lines


def section(results: Path, suite_path: Path, readme_dir: Path, plots: Path | None = None) -> str:
    suite = load_suite(suite_path)
    starts, history = load_results(results)
    names = {p.name for p in suite.problems}
    starts, history = starts[starts["problem"].isin(names)], history[history["problem"].isin(names)]
    bars = confirm_bars(suite, results)
    confirmed = confirmed_values(bars, suite.best_known)
    table = summarise(starts, history, suite.best_known, suite.thresholds, confirmed)
    files = sorted(results.rglob("*.starts.parquet"))
    created = sorted(read_metadata(f).get("created", "") for f in files)
    m = suite.methods[0].budget
    own_seeds = (
        " or the problem's own in the per-problem table"
        if any(p.seeds is not None for p in suite.problems)
        else ""
    )
    lines = [
        START,
        "",
        f"Generated by `make scoreboard` from `{results}` ({len(files)} result files). Run: "
        f"`make bench` (= `pebench bench {suite_path} --out {results} --resume --workers 2`), "
        f"{created[0][:10]} to {created[-1][:10]}, on {os.cpu_count()} cores, {platform.machine()}, "
        f"no GPU. Budget: {budget_text(suite, m)}, seed(s) {list(suite.seeds)}{own_seeds} (PSO: per swarm). "
        f"Converged: final nllh within {suite.problems[0].threshold:g} of the best known value: "
        "the field's best (Grein et al. 2026, `../shared/field-benchmark/BEST_KNOWN.tsv`) on the problems "
        "it covers, the published nominal nllh on the others, or a start of this run that went lower "
        "once re-evaluated at rtol = atol = 1e-12 (the per-problem table says which).",
        "",
        "| problem | method | best nllh | best known | converged | seeds conv. | evals / conv. | s / conv. "
        "| med. evals to thr. | failed integr. | total s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    seeds_ok = seeds_converged(starts, table)
    for _, r in table.iterrows():
        lines.append(
            f"| {r['problem']} | {r['method']} | {fmt(r['best_nllh'], 3)} | {fmt(r['best_known'], 3)} "
            f"| {r['converged']}/{r['starts']} | {seeds_ok[r['problem'], r['method']]} "
            f"| {fmt(r['fevals_per_converged'], 0)} "
            f"| {fmt(r['seconds_per_converged'], 1)} | {fmt(r['median_fevals_to_threshold'], 0)} "
            f"| {fmt(r['failed_integrations'], 0)} | {fmt(r['total_seconds'], 1)} |"
        )
    lines += ["", missing_line(suite, results), "", clock_line(starts)]
    wins = table[table["converged"] > 0].sort_values("seconds_per_converged").groupby("problem").head(1)
    lines += [
        "",
        "Fastest method per problem by seconds per converged start: "
        + (", ".join(f"{r['problem']}: {r['method']}" for _, r in wins.iterrows()) or "none converged")
        + ".",
        "",
        *problem_lines(suite, starts, table, bars),
        "",
    ]
    plots = plots or results / "plots"
    overview = plots / "overview.png"
    if overview.exists():
        lines += [f"![overview: every problem and method]({os.path.relpath(overview, readme_dir)})", ""]
    for name in sorted(names):
        png = plots / f"{name}.png"
        if png.exists():
            lines.append(f"![{name}]({os.path.relpath(png, readme_dir)})")
    lines += ["", END]
    return "\n".join(lines)


def main() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--suite", type=Path, required=True)
    ap.add_argument("--plots", type=Path, help="the folder of `pebench plot` [RESULTS/plots]")
    ap.add_argument("--readme", type=Path, help="the page whose scoreboard block to replace")
    args = ap.parse_args()
    readme_dir = args.readme.parent if args.readme else Path(".")
    text = section(args.results, args.suite, readme_dir, args.plots)
    if args.readme is None:
        print(text)
        return
    readme = args.readme.read_text()
    if START in readme and END in readme:
        head, rest = readme.split(START, 1)
        tail = rest.split(END, 1)[1]
        readme = head + text + tail
    else:
        readme = readme.rstrip() + "\n\n## Scoreboard\n\n" + text + "\n"
    args.readme.write_text(readme)
    print(f"updated {args.readme}")


if __name__ == "__main__":
    main()
