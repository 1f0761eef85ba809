"""The figures optimisers are compared by, computed once for tables, checks and plots.

As in the literature that benchmarks parameter estimation (Raue et al. 2013; Hass et al.
2019; Villaverde et al. 2019), a start *converged* when its final nllh is within a
threshold (default 0.1) of the best known value of the problem. The best known value is
the smaller of the value a suite states for the problem and the best any method found.
From that:

- ``frac_converged``: converged starts / starts;
- ``fevals_per_converged`` and ``seconds_per_converged``: everything the method spent
  (all starts, converged or not) divided by the number of converged starts, the cost of
  one good fit (infinite when no start converged);
- ``median_fevals_to_threshold`` / ``median_seconds_to_threshold``: over converged starts,
  the evaluations and seconds at which the start's best-so-far first came within the
  threshold (from the history table).

Per run (one problem, method and seed: all its starts in order, as a field benchmark's
run of a multi-start optimiser), the *time to the bar*: the run's CPU seconds (shared
work included, compilation excluded) at which its best-so-far first came within the
threshold, the field's first-hitting time (Grein et al. 2026). It is reported at the
suite's threshold and at the field's statistical thresholds :data:`STAT_THRESHOLDS`
(bar + chi2(1) quantile / 2 at 0.05, 0.01, 0.001: +1.921, +3.317, +5.414):

- ``runs``, ``runs_hit`` / ``runs_hit_<t>``: runs, and runs whose best reached bar + threshold;
- ``median_cpu_to_threshold`` / ``median_cpu_to_<t>``: over those runs, the median time to it.

Work a method shares between starts (``shared_*`` columns) is part of its totals: the
cost per converged start, the total seconds and the failed integrations include it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .results import (
    BEST_NLLH,
    CPU_SECONDS,
    CPU_TIME_S,
    METHOD,
    N_FAILED,
    N_FEVALS,
    NLLH_FINAL,
    PROBLEM,
    RUN_CPU_SECONDS,
    SECONDS,
    SEED,
    SHARED_CPU_S,
    SHARED_FAILED,
    SHARED_FEVALS,
    SHARED_WALL_S,
    START,
    STATUS,
    WALL_TIME_S,
)

#: Default convergence threshold (nllh units above the best known value).
THRESHOLD = 0.1

#: The field's statistical thresholds above the best value (Grein et al. 2026; as in
#: Villaverde et al. 2019): half the chi-square(1) quantile at 0.05, 0.01 and 0.001.
STAT_THRESHOLDS = (1.920729410347062, 3.3174483005106072, 5.413783085331366)


def stat_label(offset: float) -> str:
    """The column suffix of a statistical threshold: ``1.921``, ``3.317``, ``5.414``."""
    return f"{offset:.3f}"


#: Summary columns, in order.
SUMMARY_COLUMNS = [
    PROBLEM,
    METHOD,
    "starts",
    "best_nllh",
    "best_known",
    "threshold",
    "bar_known",
    "converged",
    "frac_converged",
    "median_fevals_to_threshold",
    "median_seconds_to_threshold",
    "fevals_per_converged",
    "seconds_per_converged",
    "failed_starts",
    "failed_integrations",
    "total_seconds",
    "total_cpu_seconds",
    f"converged_{stat_label(STAT_THRESHOLDS[0])}",
    "runs",
    "runs_hit",
    "median_cpu_to_threshold",
    *(f"{k}_{stat_label(t)}" for t in STAT_THRESHOLDS for k in ("runs_hit", "median_cpu_to")),
]


def numeric_column(df: pd.DataFrame, name: str, default: float = 0.0) -> pd.Series:
    """``df[name]`` with nulls as ``default`` (a Series of ``default`` if it is missing)."""
    if name not in df.columns:
        return pd.Series(default, index=df.index, dtype=float)
    return df[name].astype(float).fillna(default)


def best_known(
    starts: pd.DataFrame,
    stated: Mapping[str, float] | None = None,
    confirmed: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Per problem, the bar: min(stated best known value, best final nllh of any start).

    ``confirmed``: per problem, the best start's nllh re-evaluated at tighter tolerances
    (:func:`pe_bench.bench.confirm_bars`); where given, it replaces the best final nllh,
    so that a start only sets the bar below the stated value with a value that holds.
    """
    stated, confirmed = dict(stated or {}), dict(confirmed or {})
    out = {}
    for problem, pdf in starts.groupby(PROBLEM):
        finite = pdf[NLLH_FINAL][np.isfinite(pdf[NLLH_FINAL])]
        found = float(finite.min()) if len(finite) else np.inf
        found = float(confirmed.get(problem, found))
        out[problem] = min(found, float(stated.get(problem, np.inf)))
    for problem, value in stated.items():
        out.setdefault(problem, float(value))
    return out


def _thresholds(problems, thresholds: Mapping[str, float] | float | None) -> dict[str, float]:
    if thresholds is None or isinstance(thresholds, int | float):
        value = THRESHOLD if thresholds is None else float(thresholds)
        return dict.fromkeys(problems, value)
    return {p: float(thresholds.get(p, THRESHOLD)) for p in problems}


def converged(
    starts: pd.DataFrame,
    reference: Mapping[str, float],
    thresholds: Mapping[str, float] | float | None = None,
) -> pd.Series:
    """Boolean per start row: final nllh <= best known + threshold of its problem."""
    thr = _thresholds(starts[PROBLEM].unique(), thresholds)
    limit = starts[PROBLEM].map(lambda p: reference[p] + thr[p])
    return (starts[NLLH_FINAL] <= limit) & np.isfinite(starts[NLLH_FINAL])


def time_to_threshold(
    starts: pd.DataFrame,
    history: pd.DataFrame,
    reference: Mapping[str, float],
    thresholds: Mapping[str, float] | float | None = None,
) -> pd.DataFrame:
    """Per start: evaluations and seconds at which its best-so-far first met the threshold.

    Returns the key columns (problem, method, seed, start) with ``fevals_to_threshold`` and
    ``seconds_to_threshold`` (NaN for starts that never met it).
    """
    keys = [PROBLEM, METHOD, SEED, START]
    thr = _thresholds(starts[PROBLEM].unique(), thresholds)
    h = history[history[PROBLEM].isin(list(thr))]
    limit = h[PROBLEM].map(lambda p: reference[p] + thr[p]).astype(float)
    hit = h[h[BEST_NLLH] <= limit].sort_values(N_FEVALS).groupby(keys, as_index=False).first()
    hit = hit.rename(columns={N_FEVALS: "fevals_to_threshold", SECONDS: "seconds_to_threshold"})
    out = starts[keys].merge(hit[[*keys, "fevals_to_threshold", "seconds_to_threshold"]], on=keys, how="left")
    return out


def run_cpu_axis(starts: pd.DataFrame, history: pd.DataFrame) -> pd.Series:
    """Per history row: the run's CPU seconds at that improvement.

    The recorded ``run_cpu_seconds`` where every row of the run has it (a run done as one
    task); otherwise, for a run split into tasks, the starts taken in index order: the
    CPU seconds (own and shared) of the run's earlier starts plus the start's own shared
    work plus its ``cpu_seconds`` at the row. NaN for files without CPU seconds.
    """
    keys = [PROBLEM, METHOD, SEED]
    out = pd.Series(np.nan, index=history.index, dtype=float)
    if history.empty:
        return out
    recorded = numeric_column(history, RUN_CPU_SECONDS, np.nan)
    own = numeric_column(history, CPU_SECONDS, np.nan)
    cost = starts[[*keys, START]].assign(
        _cost=numeric_column(starts, CPU_TIME_S, np.nan) + numeric_column(starts, SHARED_CPU_S),
        _shared=numeric_column(starts, SHARED_CPU_S),
    )
    for key, rows in history.groupby(keys).groups.items():
        if recorded[rows].notna().all():
            out[rows] = recorded[rows]
            continue
        run = cost[(cost[PROBLEM] == key[0]) & (cost[METHOD] == key[1]) & (cost[SEED] == key[2])]
        run = run.sort_values(START)
        before = run["_cost"].cumsum() - run["_cost"] + run["_shared"]
        offset = dict(zip(run[START], before, strict=True))
        out[rows] = history.loc[rows, START].map(offset).astype(float) + own[rows]
    return out


def run_hitting_times(
    starts: pd.DataFrame,
    history: pd.DataFrame,
    reference: Mapping[str, float],
    offsets: Mapping[str, float],
) -> pd.DataFrame:
    """Per run (problem, method, seed): run CPU seconds at which it first reached each bar.

    Args:
        starts: the starts table of the runs.
        history: their history table.
        reference: the bar per problem.
        offsets: column name -> threshold above the bar (e.g. ``{"cpu_to_0.1": 0.1}``).

    Returns:
        One row per run (also those that never reached a bar: NaN) with the columns of
        ``offsets``.
    """
    keys = [PROBLEM, METHOD, SEED]
    runs = starts[keys].drop_duplicates().reset_index(drop=True)
    if history.empty:
        return runs.assign(**dict.fromkeys(offsets, np.nan))
    h = history.assign(_t=run_cpu_axis(starts, history).to_numpy())
    bar = h[PROBLEM].map(lambda p: reference.get(p, np.nan)).astype(float)
    for name, offset in offsets.items():
        hit = h[h[BEST_NLLH] <= bar + offset].groupby(keys)["_t"].min().rename(name)
        runs = runs.merge(hit.reset_index(), on=keys, how="left")
    return runs


def summarise(
    starts: pd.DataFrame,
    history: pd.DataFrame,
    stated: Mapping[str, float] | None = None,
    thresholds: Mapping[str, float] | float | None = None,
    confirmed: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """One row per (problem, method) with the figures of the module docstring.

    Args:
        starts: the starts table (``results.load_results``).
        history: the matching history table.
        stated: best known nllh per problem (a suite's ``best_known``); the best found
            by any method is used where it is lower or nothing is stated.
        thresholds: convergence threshold, one value or per problem (default 0.1).
        confirmed: per problem, the best found nllh re-evaluated at tighter tolerances
            (see :func:`best_known`).
    """
    if starts.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    reference = best_known(starts, stated, confirmed)
    thr = _thresholds(starts[PROBLEM].unique(), thresholds)
    ok = converged(starts, reference, thr)
    stat = STAT_THRESHOLDS[0]
    ok_stat = converged(starts, reference, stat)
    reach = time_to_threshold(starts, history, reference, thr)
    frame = starts.assign(
        _ok=ok.to_numpy(),
        _ok_stat=ok_stat.to_numpy(),
        _evals=(numeric_column(starts, N_FEVALS) + numeric_column(starts, SHARED_FEVALS)).to_numpy(),
        _wall=(numeric_column(starts, WALL_TIME_S) + numeric_column(starts, SHARED_WALL_S)).to_numpy(),
        _cpu=(numeric_column(starts, CPU_TIME_S, np.nan) + numeric_column(starts, SHARED_CPU_S)).to_numpy(),
        _failed=(numeric_column(starts, N_FAILED, np.nan) + numeric_column(starts, SHARED_FAILED)).to_numpy(),
    )
    frame = frame.merge(reach, on=[PROBLEM, METHOD, SEED, START], how="left")
    offsets = {"_t_thr": None} | {f"_t_{stat_label(t)}": t for t in STAT_THRESHOLDS}
    hits = []
    for problem, pstarts in starts.groupby(PROBLEM):
        ph = history[history[PROBLEM] == problem]
        offs = {k: (thr[problem] if v is None else v) for k, v in offsets.items()}
        hits.append(run_hitting_times(pstarts, ph, reference, offs))
    hits = pd.concat(hits, ignore_index=True)
    rows = []
    for (problem, method), m in frame.groupby([PROBLEM, METHOD], sort=True):
        n, n_ok = len(m), int(m["_ok"].sum())
        finite = m[NLLH_FINAL][np.isfinite(m[NLLH_FINAL])]
        good = m[m["_ok"]]
        failed_integrations = m["_failed"].dropna()
        runs = hits[(hits[PROBLEM] == problem) & (hits[METHOD] == method)]
        per_run = {}
        for name, label in [("_t_thr", "threshold")] + [
            (f"_t_{stat_label(t)}", stat_label(t)) for t in STAT_THRESHOLDS
        ]:
            times = runs[name].dropna()
            per_run[f"runs_hit_{label}" if label != "threshold" else "runs_hit"] = len(times)
            per_run[f"median_cpu_to_{label}"] = float(times.median()) if len(times) else np.nan
        rows.append(
            {
                PROBLEM: problem,
                METHOD: method,
                "starts": n,
                "best_nllh": float(finite.min()) if len(finite) else np.inf,
                "best_known": reference[problem],
                # the bar is a known value (stated, e.g. a suite's best_known or --target),
                # not merely the best these runs found: only then is "converged" a claim
                "bar_known": problem in (stated or {}),
                "threshold": thr[problem],
                "converged": n_ok,
                "frac_converged": n_ok / n,
                "median_fevals_to_threshold": float(good["fevals_to_threshold"].median()) if n_ok else np.nan,
                "median_seconds_to_threshold": float(good["seconds_to_threshold"].median())
                if n_ok
                else np.nan,
                "fevals_per_converged": float(m["_evals"].sum()) / n_ok if n_ok else np.inf,
                "seconds_per_converged": float(m["_wall"].sum()) / n_ok if n_ok else np.inf,
                "failed_starts": int((m[STATUS] == "failed").sum()),
                "failed_integrations": float(failed_integrations.sum())
                if len(failed_integrations)
                else np.nan,
                "total_seconds": float(m["_wall"].sum()),
                "total_cpu_seconds": float(m["_cpu"].sum()) if m["_cpu"].notna().all() else np.nan,
                f"converged_{stat_label(stat)}": int(m["_ok_stat"].sum()),
                "runs": int(m[SEED].nunique()),
                **per_run,
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def best_table(
    starts: pd.DataFrame,
    history: pd.DataFrame,
    top: int = 5,
    stated: Mapping[str, float] | None = None,
    thresholds: Mapping[str, float] | float | None = None,
    compilation: pd.DataFrame | None = None,
    confirmed: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """The summary plus the ``top`` sorted final objectives per method, sorted by best.

    ``compilation`` (``results.load_compilation``) adds ``compile_seconds``: the seconds
    the method's runs spent compiling, outside every start.
    """
    table = summarise(starts, history, stated, thresholds, confirmed)
    if compilation is not None and not compilation.empty:
        paid = compilation.groupby([PROBLEM, METHOD])["compile_s"].sum().rename("compile_seconds")
        table = table.merge(paid.reset_index(), on=[PROBLEM, METHOD], how="left")
    tops = {
        key: [round(float(v), 4) for v in np.sort(m[NLLH_FINAL].to_numpy())[:top]]
        for key, m in starts.groupby([PROBLEM, METHOD])
    }
    table[f"top{top}"] = [tops[(p, m)] for p, m in zip(table[PROBLEM], table[METHOD], strict=True)]
    return table.sort_values([PROBLEM, "best_nllh"], ignore_index=True)
