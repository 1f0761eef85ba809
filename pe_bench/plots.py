"""Comparison plots from result tables: waterfall and convergence (matplotlib).

Plot functions take DataFrames (as read by ``results.load_results``) and an optional
``ax``, return the Axes, and never run optimisations.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .metrics import THRESHOLD, best_known, numeric_column, run_cpu_axis  # noqa: E402
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


def waterfall(starts: pd.DataFrame, ax=None, best: float | None = None, threshold: float = THRESHOLD):
    """Sorted final nllh against start rank, one line per method, offset from the best.

    The y axis is ``nllh - best + 1e-4`` on a log scale (best = the best known value,
    by default the best over all methods); the dashed line is the convergence threshold;
    failed starts (+inf) are left out and counted in the legend.
    """
    ax = ax or plt.gca()
    best = starts[NLLH_FINAL][np.isfinite(starts[NLLH_FINAL])].min() if best is None else best
    for method, mdf in starts.groupby(METHOD):
        values = np.sort(mdf[NLLH_FINAL].to_numpy())
        finite = values[np.isfinite(values)]
        n_failed = len(values) - len(finite)
        label = f"{method} ({len(finite)} starts" + (f", {n_failed} failed)" if n_failed else ")")
        ax.plot(np.arange(1, len(finite) + 1), finite - best + _OFFSET_FLOOR, marker="o", ms=3, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("start (sorted by final nllh)")
    ax.set_ylabel(f"nllh - best + {_OFFSET_FLOOR:g}   (best = {best:.4f})")
    ax.axhline(threshold, color="grey", lw=0.8, ls="--")
    ax.legend(fontsize=8)
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


def convergence(
    starts: pd.DataFrame,
    history: pd.DataFrame,
    x: str = N_FEVALS,
    ax=None,
    best: float | None = None,
    threshold: float = THRESHOLD,
):
    """Best-so-far nllh (offset from the best) against evaluations, seconds or run CPU seconds."""
    ax = ax or plt.gca()
    best = starts[NLLH_FINAL][np.isfinite(starts[NLLH_FINAL])].min() if best is None else best
    traces = run_traces(starts, history)
    labels = {N_FEVALS: "function evaluations", SECONDS: "seconds", RUN_CPU_SECONDS: "run CPU seconds"}
    if not (traces[x] > 0).any():  # files written before CPU-seconds were recorded
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
    for (method, seed), t in traces.groupby([METHOD, SEED]):
        ax.step(t[x], t[BEST_NLLH] - best + _OFFSET_FLOOR, where="post", label=f"{method} (seed {seed})")
    ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_xlabel(labels[x] + " (compilation excluded)" if x != N_FEVALS else labels[x])
    ax.set_ylabel("best nllh so far - best")
    ax.axhline(threshold, color="grey", lw=0.8, ls="--")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


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
    problems = sorted(starts[PROBLEM].unique())
    reference = best_known(starts, stated, confirmed)
    thr = thresholds if isinstance(thresholds, Mapping) else dict.fromkeys(problems, thresholds or THRESHOLD)
    fig, axes = plt.subplots(len(problems), 3, figsize=(16, 4.2 * len(problems)), squeeze=False)
    for row, problem in zip(axes, problems, strict=True):
        s = starts[starts[PROBLEM] == problem]
        h = history[history[PROBLEM] == problem]
        best, t = reference[problem], thr.get(problem, THRESHOLD)
        waterfall(s, ax=row[0], best=best, threshold=t).set_title(f"{problem}: waterfall")
        convergence(s, h, N_FEVALS, ax=row[1], best=best, threshold=t).set_title(f"{problem}: convergence")
        convergence(s, h, RUN_CPU_SECONDS, ax=row[2], best=best, threshold=t).set_title(
            f"{problem}: convergence (CPU time)"
        )
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
