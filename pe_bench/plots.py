"""Comparison plots from result tables: waterfall, convergence and a suite overview (matplotlib).

Plot functions take DataFrames (as read by ``results.load_results``) and an optional
``ax``, return the Axes, and never run optimisations. Every method has one colour, the
same in every panel and every figure (:func:`method_colors`); convergence is the median
over a method's runs (seeds) with the interquartile range as a band, one line per method.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .metrics import THRESHOLD, best_known, converged, numeric_column, run_cpu_axis  # noqa: E402
from .results import (  # noqa: E402
    BEST_NLLH,
    METHOD,
    N_FEVALS,
    NLLH_FINAL,
    PROBLEM,
    RUN_CPU_SECONDS,
    SECONDS,
    SEED,
    SHARED_FEVALS,
    SHARED_WALL_S,
    START,
    WALL_TIME_S,
)

_OFFSET_FLOOR = 1e-4  # a start exactly at the best is drawn here on the log axis
_GRID = 200  # points of the common x grid on which runs are summarised

#: Methods in this order take the first colours of matplotlib's tab10 cycle, always the same.
_METHOD_ORDER = ("multistart", "pso", "adam", "cvae", "cmaes", "sacess")


def method_colors(methods) -> dict[str, str]:
    """One colour per method: the registered methods always the same, others after them."""
    palette = [f"C{i}" for i in range(10)]
    out = {m: palette[i] for i, m in enumerate(_METHOD_ORDER)}
    extra = sorted(m for m in set(methods) if m not in out)
    for i, m in enumerate(extra):
        out[m] = palette[(len(_METHOD_ORDER) + i) % len(palette)]
    return {m: out[m] for m in methods}


def _colors(starts: pd.DataFrame, colors: Mapping[str, str] | None) -> Mapping[str, str]:
    return colors if colors is not None else method_colors(sorted(starts[METHOD].unique()))


def _threshold_line(ax, threshold: float) -> None:
    ax.axhline(threshold, color="grey", lw=0.9, ls="--", label=f"threshold (best + {threshold:g})")


def waterfall(
    starts: pd.DataFrame,
    ax=None,
    best: float | None = None,
    threshold: float = THRESHOLD,
    colors: Mapping[str, str] | None = None,
):
    """Sorted final nllh against start rank, one line per method (its seeds pooled).

    The y axis is ``nllh - best + 1e-4`` on a log scale (best = the best known value,
    by default the best over all methods); the dashed line is the convergence threshold;
    failed starts (+inf) are left out and counted in the legend label. The x axis is the
    start's rank (whole numbers).
    """
    from matplotlib.ticker import MaxNLocator

    ax = ax or plt.gca()
    colors = _colors(starts, colors)
    best = starts[NLLH_FINAL][np.isfinite(starts[NLLH_FINAL])].min() if best is None else best
    for method, mdf in starts.groupby(METHOD):
        values = np.sort(mdf[NLLH_FINAL].to_numpy())
        finite = values[np.isfinite(values)]
        n_failed = len(values) - len(finite)
        n_seeds = mdf[SEED].nunique()
        label = f"{method} ({len(finite)} starts, {n_seeds} seed{'s' if n_seeds > 1 else ''}"
        label += f", {n_failed} failed)" if n_failed else ")"
        ranks = np.arange(1, len(finite) + 1)
        ax.plot(ranks, finite - best + _OFFSET_FLOOR, marker="o", ms=3, color=colors[method], label=label)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("start rank (sorted by final nllh)")
    ax.set_ylabel(f"nllh - best + {_OFFSET_FLOOR:g}   (best = {best:.4f})")
    _threshold_line(ax, threshold)
    ax.grid(alpha=0.3)
    return ax


def run_traces(starts: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Best-so-far of each (method, seed) run against cumulative evaluations and seconds.

    Starts are taken in start order; each start's own trace is shifted by the evaluations
    and seconds (shared work included) of the starts before it and by its own shared
    work. ``run_cpu_seconds``: the run's CPU seconds (:func:`metrics.run_cpu_axis`).
    """
    rows = []
    history = history.assign(**{RUN_CPU_SECONDS: run_cpu_axis(starts, history).to_numpy()})
    starts = starts.assign(
        _evals=numeric_column(starts, SHARED_FEVALS).to_numpy(),
        _wall=numeric_column(starts, SHARED_WALL_S).to_numpy(),
    )
    for (method, seed), sdf in starts.groupby([METHOD, SEED]):
        sdf = sdf.sort_values(START)
        hdf = history[(history[METHOD] == method) & (history[SEED] == seed)]
        evals0, secs0, best = 0, 0.0, np.inf
        for _, s in sdf.iterrows():
            evals0 += int(s["_evals"])
            secs0 += float(s["_wall"])
            h = hdf[hdf[START] == s[START]].sort_values(N_FEVALS)
            for _, r in h.iterrows():
                best = min(best, r[BEST_NLLH])
                rows.append(
                    {
                        METHOD: method,
                        SEED: seed,
                        N_FEVALS: evals0 + r[N_FEVALS],
                        SECONDS: secs0 + r[SECONDS],
                        RUN_CPU_SECONDS: r[RUN_CPU_SECONDS],
                        BEST_NLLH: best,
                    }
                )
            evals0 += int(s[N_FEVALS])
            secs0 += float(s[WALL_TIME_S])
    return pd.DataFrame(rows, columns=[METHOD, SEED, N_FEVALS, SECONDS, RUN_CPU_SECONDS, BEST_NLLH])


def _on_grid(trace: pd.DataFrame, x: str, grid: np.ndarray) -> np.ndarray:
    """A run's best-so-far at each grid point (NaN before its first value, then carried on)."""
    t = trace.sort_values(x)
    xs, ys = t[x].to_numpy(float), np.minimum.accumulate(t[BEST_NLLH].to_numpy(float))
    idx = np.searchsorted(xs, grid, side="right") - 1
    out = np.where(idx >= 0, ys[np.clip(idx, 0, None)], np.nan)
    return np.where(np.isfinite(out), out, np.nan)


def method_bands(traces: pd.DataFrame, x: str, grid: np.ndarray) -> dict[str, np.ndarray]:
    """Per method, the 25th, 50th and 75th percentile over its runs of best-so-far on ``grid``.

    Returns ``{method: array (3, len(grid))}``; a grid point where fewer than half of the
    method's runs have a value yet has no median (NaN).
    """
    out = {}
    for method, mdf in traces.groupby(METHOD):
        runs = np.array([_on_grid(t, x, grid) for _, t in mdf.groupby(SEED)])
        have = np.isfinite(runs).sum(axis=0)
        filled = np.where(np.isfinite(runs), runs, np.inf)  # a run without a value yet: worst
        with np.errstate(invalid="ignore"):
            q = np.percentile(filled, [25, 50, 75], axis=0, method="nearest")
        q = np.where(np.isfinite(q), q, np.nan)
        q[:, have < max(1, (len(runs) + 1) // 2)] = np.nan
        out[method] = q
    return out


def _grid(values: np.ndarray) -> np.ndarray:
    v = values[np.isfinite(values) & (values > 0)]
    if not len(v):
        return np.array([])
    lo, hi = v.min(), v.max()
    return np.geomspace(lo, hi if hi > lo else lo * 10, _GRID)


def convergence(
    starts: pd.DataFrame,
    history: pd.DataFrame,
    x: str = N_FEVALS,
    ax=None,
    best: float | None = None,
    threshold: float = THRESHOLD,
    colors: Mapping[str, str] | None = None,
):
    """Best-so-far nllh (offset from the best) against evaluations, seconds or run CPU seconds.

    One line per method: the median over its runs (seeds) of the run's best-so-far, with the
    interquartile range as a band (a single run: its own trace, no band).
    """
    ax = ax or plt.gca()
    colors = _colors(starts, colors)
    best = starts[NLLH_FINAL][np.isfinite(starts[NLLH_FINAL])].min() if best is None else best
    traces = run_traces(starts, history)
    labels = {N_FEVALS: "function evaluations", SECONDS: "seconds", RUN_CPU_SECONDS: "run CPU seconds"}
    grid = _grid(traces[x].to_numpy(float))
    if not len(grid):  # files written before CPU-seconds were recorded
        ax.text(
            0.5,
            0.5,
            f"no {labels[x]} in these result files",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_xlabel(labels[x])
        return ax
    for method, q in method_bands(traces, x, grid).items():
        n_runs = traces[traces[METHOD] == method][SEED].nunique()
        low, mid, high = (q - best + _OFFSET_FLOOR).clip(min=_OFFSET_FLOOR)
        label = f"{method} (median of {n_runs} runs, IQR)" if n_runs > 1 else f"{method} (1 run)"
        ax.plot(grid, mid, color=colors[method], lw=1.6, label=label)
        if n_runs > 1:
            ax.fill_between(grid, low, high, color=colors[method], alpha=0.18, lw=0)
    ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_xlabel(labels[x] + " (compilation excluded)" if x != N_FEVALS else labels[x])
    ax.set_ylabel("best nllh so far - best + 1e-4")
    _threshold_line(ax, threshold)
    ax.grid(alpha=0.3)
    return ax


def _legend_outside(fig, axes_row) -> None:
    """One legend for a row of panels, outside the axes on the right (methods, threshold)."""
    handles, labels = {}, {}
    for ax in axes_row:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            key = lab.split(" (")[0]
            if key not in handles:
                handles[key], labels[key] = h, lab
    axes_row[-1].legend(
        list(handles.values()),
        list(labels.values()),
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=8,
        frameon=False,
    )


def _bars(starts, stated, thresholds, confirmed) -> tuple[list[str], dict[str, float], dict[str, float]]:
    """The problems, their bars (:func:`metrics.best_known`) and their thresholds."""
    problems = sorted(starts[PROBLEM].unique())
    reference = best_known(starts, stated, confirmed)
    thr = thresholds if isinstance(thresholds, Mapping) else dict.fromkeys(problems, thresholds or THRESHOLD)
    return problems, reference, {p: float(thr.get(p, THRESHOLD)) for p in problems}


def comparison_figure(
    starts: pd.DataFrame,
    history: pd.DataFrame,
    out: Path,
    stated: Mapping[str, float] | None = None,
    thresholds: Mapping[str, float] | float | None = None,
    confirmed: Mapping[str, float] | None = None,
) -> Path:
    """One row per problem: waterfall, convergence vs evaluations, convergence vs run CPU seconds.

    ``stated`` / ``thresholds`` / ``confirmed``: best known values, convergence thresholds
    and re-checked bars per problem (as in a suite), see :mod:`pe_bench.metrics`.
    """
    problems, reference, thr = _bars(starts, stated, thresholds, confirmed)
    colors = method_colors(sorted(starts[METHOD].unique()))
    fig, axes = plt.subplots(len(problems), 3, figsize=(18, 4.2 * len(problems)), squeeze=False)
    for row, problem in zip(axes, problems, strict=True):
        s = starts[starts[PROBLEM] == problem]
        h = history[history[PROBLEM] == problem]
        best, t = reference[problem], thr[problem]
        waterfall(s, ax=row[0], best=best, threshold=t, colors=colors).set_title(f"{problem}: waterfall")
        convergence(s, h, N_FEVALS, ax=row[1], best=best, threshold=t, colors=colors).set_title(
            f"{problem}: best so far"
        )
        convergence(s, h, RUN_CPU_SECONDS, ax=row[2], best=best, threshold=t, colors=colors).set_title(
            f"{problem}: best so far (CPU time)"
        )
        _legend_outside(fig, row)
    fig.tight_layout()
    return _save(fig, out)


def _save(fig, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def hitting_budgets(
    starts: pd.DataFrame,
    history: pd.DataFrame,
    reference: Mapping[str, float],
    thresholds: Mapping[str, float],
) -> pd.DataFrame:
    """Per run (problem, method, seed): evaluations and run CPU seconds to the bar + threshold.

    Cumulative over the run's starts (as :func:`run_traces`), at the first history row whose
    best-so-far reached it; NaN where the run never did.
    """
    rows = []
    for problem, s in starts.groupby(PROBLEM):
        traces = run_traces(s, history[history[PROBLEM] == problem])
        limit = reference[problem] + thresholds.get(problem, THRESHOLD)
        for (method, seed), _ in s.groupby([METHOD, SEED]):
            t = traces[(traces[METHOD] == method) & (traces[SEED] == seed)]
            hit = t[t[BEST_NLLH] <= limit]
            first = hit.sort_values(N_FEVALS).iloc[0] if len(hit) else None
            rows.append(
                {
                    PROBLEM: problem,
                    METHOD: method,
                    SEED: seed,
                    N_FEVALS: np.nan if first is None else float(first[N_FEVALS]),
                    RUN_CPU_SECONDS: np.nan if first is None else float(first[RUN_CPU_SECONDS]),
                }
            )
    return pd.DataFrame(rows, columns=[PROBLEM, METHOD, SEED, N_FEVALS, RUN_CPU_SECONDS])


def overview_figure(
    starts: pd.DataFrame,
    history: pd.DataFrame,
    out: Path,
    stated: Mapping[str, float] | None = None,
    thresholds: Mapping[str, float] | float | None = None,
    confirmed: Mapping[str, float] | None = None,
) -> Path:
    """Across a suite's problems: which method reaches the bar, at what budget, how often.

    Left and middle: a performance (data) profile in the form the field's benchmarks use
    (Dolan and More 2002; Moré and Wild 2009): per method, the fraction of problems solved
    against the budget spent, in evaluations and in run CPU-seconds (compilation
    excluded). A problem counts by the fraction of the method's runs (seeds) whose
    best-so-far had reached the bar + threshold within that budget, so each problem
    weighs the same. Right: a problem x method heat map of the fraction of converged
    starts (final nllh within the threshold of the bar).
    """
    problems, reference, thr = _bars(starts, stated, thresholds, confirmed)
    methods = [m for m in _METHOD_ORDER if m in set(starts[METHOD])]
    methods += sorted(set(starts[METHOD]) - set(methods))
    colors = method_colors(methods)
    hits = hitting_budgets(starts, history, reference, thr)
    runs = starts.groupby([PROBLEM, METHOD])[SEED].nunique()
    fig, axes = plt.subplots(
        1, 3, figsize=(19, max(4.5, 0.32 * len(problems) + 1.5)), gridspec_kw={"width_ratios": [1, 1, 1.15]}
    )
    for ax, x, label in (
        (axes[0], N_FEVALS, "function evaluations per run"),
        (axes[1], RUN_CPU_SECONDS, "run CPU seconds (compilation excluded)"),
    ):
        grid = _grid(hits[x].to_numpy(float))
        ax.set_xlabel(label)
        if not len(grid):  # no run reached a bar, or files without CPU seconds
            ax.text(
                0.5,
                0.5,
                "no run reached a bar\n(or no CPU seconds in these files)",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
            continue
        for method in methods:
            h = hits[hits[METHOD] == method]
            frac = np.zeros_like(grid)
            for problem in problems:
                n = runs.get((problem, method), 0)
                if n:
                    v = h[h[PROBLEM] == problem][x].to_numpy(float)
                    frac += (v[None, :] <= grid[:, None]).sum(axis=1) / n
            ax.step(grid, frac / len(problems), where="post", color=colors[method], lw=1.6, label=method)
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(f"fraction of the {len(problems)} problems solved")
        ax.grid(alpha=0.3)
    axes[0].set_title("performance profile: evaluations")
    axes[1].set_title("performance profile: CPU time")
    handles, labels = max((ax.get_legend_handles_labels() for ax in axes[:2]), key=lambda hl: len(hl[0]))
    if handles:
        axes[1].legend(
            handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False
        )
    ok = converged(starts, reference, thr)
    frac = starts.assign(_ok=ok.to_numpy()).groupby([PROBLEM, METHOD])["_ok"].mean()
    matrix = np.full((len(problems), len(methods)), np.nan)
    for i, p in enumerate(problems):
        for j, m in enumerate(methods):
            if (p, m) in frac.index:
                matrix[i, j] = frac[(p, m)]
    im = axes[2].imshow(matrix, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for i in range(len(problems)):
        for j in range(len(methods)):
            if np.isfinite(matrix[i, j]):
                axes[2].text(
                    j,
                    i,
                    f"{matrix[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if matrix[i, j] < 0.6 else "black",
                )
    axes[2].set_xticks(range(len(methods)), methods, rotation=30, ha="right")
    axes[2].set_yticks(range(len(problems)), problems, fontsize=8)
    axes[2].set_title("fraction of converged starts")
    fig.colorbar(im, ax=axes[2], fraction=0.04)
    fig.suptitle(
        "solved / converged: best-so-far or final nllh within the threshold of the bar "
        "(the best known value, or a start's re-checked lower one)",
        fontsize=9,
    )
    fig.tight_layout()
    return _save(fig, out)
