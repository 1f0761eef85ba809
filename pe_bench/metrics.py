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
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .results import (
    BEST_NLLH,
    METHOD,
    N_FAILED,
    N_FEVALS,
    NLLH_FINAL,
    PROBLEM,
    SECONDS,
    SEED,
    START,
    STATUS,
    WALL_TIME_S,
)

#: Default convergence threshold (nllh units above the best known value).
THRESHOLD = 0.1

#: Summary columns, in order.
SUMMARY_COLUMNS = [
    PROBLEM,
    METHOD,
    "starts",
    "best_nllh",
    "best_known",
    "threshold",
    "converged",
    "frac_converged",
    "median_fevals_to_threshold",
    "median_seconds_to_threshold",
    "fevals_per_converged",
    "seconds_per_converged",
    "failed_starts",
    "failed_integrations",
    "total_seconds",
]


def best_known(starts: pd.DataFrame, stated: Mapping[str, float] | None = None) -> dict[str, float]:
    """Per problem: min(stated best known value, best final nllh of any start)."""
    stated = dict(stated or {})
    out = {}
    for problem, pdf in starts.groupby(PROBLEM):
        finite = pdf[NLLH_FINAL][np.isfinite(pdf[NLLH_FINAL])]
        found = float(finite.min()) if len(finite) else np.inf
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


def summarise(
    starts: pd.DataFrame,
    history: pd.DataFrame,
    stated: Mapping[str, float] | None = None,
    thresholds: Mapping[str, float] | float | None = None,
) -> pd.DataFrame:
    """One row per (problem, method) with the figures of the module docstring.

    Args:
        starts: the starts table (``results.load_results``).
        history: the matching history table.
        stated: best known nllh per problem (a suite's ``best_known``); the best found
            by any method is used where it is lower or nothing is stated.
        thresholds: convergence threshold, one value or per problem (default 0.1).
    """
    if starts.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    reference = best_known(starts, stated)
    thr = _thresholds(starts[PROBLEM].unique(), thresholds)
    ok = converged(starts, reference, thr)
    reach = time_to_threshold(starts, history, reference, thr)
    frame = starts.assign(_ok=ok.to_numpy())
    frame = frame.merge(reach, on=[PROBLEM, METHOD, SEED, START], how="left")
    rows = []
    for (problem, method), m in frame.groupby([PROBLEM, METHOD], sort=True):
        n, n_ok = len(m), int(m["_ok"].sum())
        finite = m[NLLH_FINAL][np.isfinite(m[NLLH_FINAL])]
        good = m[m["_ok"]]
        failed_integrations = m[N_FAILED].dropna()
        rows.append(
            {
                PROBLEM: problem,
                METHOD: method,
                "starts": n,
                "best_nllh": float(finite.min()) if len(finite) else np.inf,
                "best_known": reference[problem],
                "threshold": thr[problem],
                "converged": n_ok,
                "frac_converged": n_ok / n,
                "median_fevals_to_threshold": float(good["fevals_to_threshold"].median()) if n_ok else np.nan,
                "median_seconds_to_threshold": float(good["seconds_to_threshold"].median())
                if n_ok
                else np.nan,
                "fevals_per_converged": float(m[N_FEVALS].sum()) / n_ok if n_ok else np.inf,
                "seconds_per_converged": float(m[WALL_TIME_S].sum()) / n_ok if n_ok else np.inf,
                "failed_starts": int((m[STATUS] == "failed").sum()),
                "failed_integrations": float(failed_integrations.sum())
                if len(failed_integrations)
                else np.nan,
                "total_seconds": float(m[WALL_TIME_S].sum()),
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def best_table(
    starts: pd.DataFrame,
    history: pd.DataFrame,
    top: int = 5,
    stated: Mapping[str, float] | None = None,
    thresholds: Mapping[str, float] | float | None = None,
) -> pd.DataFrame:
    """The summary plus the ``top`` sorted final objectives per method, sorted by best."""
    table = summarise(starts, history, stated, thresholds)
    tops = {
        key: [round(float(v), 4) for v in np.sort(m[NLLH_FINAL].to_numpy())[:top]]
        for key, m in starts.groupby([PROBLEM, METHOD])
    }
    table[f"top{top}"] = [tops[(p, m)] for p, m in zip(table[PROBLEM], table[METHOD], strict=True)]
    return table.sort_values([PROBLEM, "best_nllh"], ignore_index=True)
