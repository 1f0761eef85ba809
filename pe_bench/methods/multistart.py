"""Multi-start local optimisation from Latin-hypercube start points.

Start points: ``scipy.stats.qmc.LatinHypercube`` (seeded) within the bounds. Each is
refined by a local optimiser with exact JAX derivatives:

* ``local="fides"`` (default): fides' interior trust-region reflective method (Fröhlich & Sorger
  2022, the optimiser pyPESTO recommends for ODE models) with the Fisher information
  matrix from forward sensitivities as Hessian, switching to BFGS updates when the FIM
  stalls (fides' ``HybridFixed``, pyPESTO's default with a FIM), within the bounds;
* any ``scipy.optimize.minimize`` method (L-BFGS-B, ...): the optimiser's own
  bounds (L-BFGS-B, TNC, SLSQP, trust-constr, Powell, Nelder-Mead accept them); for an
  optimiser that does not, iterates are projected (clipped) onto the box before every
  evaluation.

A start point whose first evaluation fails (the integration fails, or the value or its
derivatives are not finite) is replaced by a uniform random point in the box, up to
``resample`` times, as pyPESTO's start-point check does (``check_fval``): a local search
cannot start from such a point. The replacements are drawn from a generator seeded by
(seed, start), so start ``i`` is the same whatever other starts run; every evaluation
they cost counts against the start's budget (and in ``n_failed``), and the start's
``x_start`` / ``nllh_start`` are the point the search began from.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import fides
import numpy as np
from scipy.optimize import minimize

from ..objective import Objective
from .base import (
    ABNORMAL,
    FAILED,
    MAX_EVALS,
    Budget,
    Callbacks,
    Method,
    StartPoints,
    StartResult,
    StartTracker,
    StopStart,
    start_indices,
    tolerance_status,
)

_WITH_BOUNDS = {"L-BFGS-B", "TNC", "SLSQP", "trust-constr", "Powell", "Nelder-Mead", "COBYLA", "COBYQA"}
_GRADIENT_FREE = {"Powell", "Nelder-Mead", "COBYLA", "COBYQA"}

#: Evaluations per start when the budget sets none.
DEFAULT_MAX_EVALS = 1000
#: Replacement points tried when a start point's first evaluation fails.
DEFAULT_RESAMPLE = 10


@dataclass
class StartPoint:
    """Where a local search began: the point, its nllh and how many points it replaced."""

    x: np.ndarray
    value: float
    resampled: int = 0


def resample_rng(seed: int, start: int) -> np.random.Generator:
    """The generator of start ``start``'s replacement points (independent of other starts)."""
    return np.random.default_rng((seed, start, 0x5EED))


def _first_point(evaluate, x0, lower, upper, resample: int, rng, start: StartPoint):
    """Evaluate ``x0``; while that fails, evaluate uniform replacements (up to ``resample``).

    ``start`` follows the point being tried; returns the evaluation's output there.
    ``evaluate`` returns a tuple whose first item is the value and whose other items are
    arrays (gradient, FIM) that must be finite too.
    """
    x = np.asarray(x0, dtype=float)
    for attempt in range(resample + 1):
        start.x, start.resampled = x, attempt
        out = evaluate(x)
        start.value = float(out[0])
        if all(np.all(np.isfinite(a)) for a in out if a is not None) or rng is None:
            break
        if attempt < resample:
            x = rng.uniform(lower, upper)
    return out


class _FirstCall:
    """Wraps an evaluation so that its first call at the start point reuses a known output."""

    def __init__(self, fn, x, out):
        self.fn, self.x, self.out = fn, np.asarray(x, dtype=float), out

    def __call__(self, x):
        if self.out is not None and np.array_equal(np.asarray(x, dtype=float), self.x):
            out, self.out = self.out, None
            return out
        self.out = None
        return self.fn(x)


def local_search(
    tracker: StartTracker,
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    local: str,
    tol: float,
    resample: int = 0,
    rng: np.random.Generator | None = None,
) -> tuple[str, str, StartPoint]:
    """Minimise from ``x0`` through ``tracker``; returns (status, message, start point).

    If the evaluation at ``x0`` fails, up to ``resample`` uniform points drawn from
    ``rng`` replace it (see the module's docstring). The tracker holds the best point
    found, whatever stopped the search.
    """
    start = StartPoint(np.asarray(x0, dtype=float), math.inf)
    try:
        if local == "fides":
            status, message = _fides_search(tracker, x0, lower, upper, tol, resample, rng, start)
        else:
            status, message = _scipy_search(tracker, x0, lower, upper, local, tol, resample, rng, start)
    except StopStart as stop:  # target, budget or stop reached at a start point
        status, message = stop.status, stop.message
        start.value = tracker.last_value
    if start.resampled:
        message = f"{message} (start point replaced {start.resampled}x: its first evaluation failed)"
    return status, message, start


def _scipy_search(tracker, x0, lower, upper, local, tol, resample, rng, start: StartPoint) -> tuple[str, str]:
    bounded = local in _WITH_BOUNDS
    max_evals = tracker.budget.max_evals or DEFAULT_MAX_EVALS

    def project(x):
        return x if bounded else np.clip(x, lower, upper)

    if local in _GRADIENT_FREE:

        def evaluate(x):
            return (tracker.value(project(x)),)

        def unpack(out):
            return out[0]

        jac = None
    else:

        def evaluate(x):
            v, g = tracker.value_and_grad(project(x))
            return (v, g) if np.isfinite(v) else (v, np.full_like(g, np.nan))

        def unpack(out):  # scipy's line searches take a failed point as +inf with a zero gradient
            v, g = out
            return (v, g) if np.isfinite(v) else (v, np.zeros_like(g))

        jac = True
    out = _first_point(evaluate, x0, lower, upper, resample, rng, start)
    cached = _FirstCall(evaluate, start.x, out)

    def fun(x):
        return unpack(cached(x))

    try:
        res = minimize(
            fun,
            start.x,
            jac=jac,
            method=local,
            bounds=list(zip(lower, upper, strict=True)) if bounded else None,
            tol=tol,
            # TNC counts function evaluations only (maxfun; it rejects maxiter with a warning)
            options=({} if local == "TNC" else {"maxiter": max_evals})
            | ({"maxfun": max_evals} if local in ("L-BFGS-B", "TNC") else {}),
        )
    except StopStart as stop:
        return stop.status, stop.message
    message = str(res.message)
    if res.success:
        return tolerance_status(message), message
    if tracker.n_fevals >= max_evals or "LIMIT" in message.upper() or "MAX" in message.upper():
        return MAX_EVALS, message
    return ABNORMAL if np.isfinite(tracker.best) else FAILED, message


def _fides_search(tracker, x0, lower, upper, tol, resample, rng, start: StartPoint) -> tuple[str, str]:
    forward = tracker.objective.options.sensitivity == "forward"

    def evaluate(x):
        # A failed point gives fides +inf with a NaN gradient (and FIM), as pyPESTO does:
        # fides rejects the step. It also tests convergence at the rejected trial point, so
        # a zero gradient there would stop the search as converged (GTOL) by mistake.
        if forward:
            return tracker.value_grad_fim(x)
        v, g = tracker.value_and_grad(x)
        return (v, g) if np.isfinite(v) else (v, np.full_like(g, np.nan))

    # fides wants a start strictly inside the box.
    span = np.asarray(upper) - np.asarray(lower)
    lo, hi = lower + 1e-9 * span, upper - 1e-9 * span
    out = _first_point(evaluate, np.clip(x0, lo, hi), lo, hi, resample, rng, start)
    max_evals = tracker.budget.max_evals or DEFAULT_MAX_EVALS
    optimizer = fides.Optimizer(
        _FirstCall(evaluate, start.x, out),
        ub=np.asarray(upper, dtype=float),
        lb=np.asarray(lower, dtype=float),
        verbose=logging.ERROR,
        options={fides.Options.MAXITER: max_evals, fides.Options.FATOL: tol, fides.Options.FRTOL: tol},
        hessian_update=fides.HybridFixed() if forward else fides.BFGS(),
    )
    try:
        optimizer.minimize(start.x)
    except StopStart as stop:
        return stop.status, stop.message
    except RuntimeError as exc:  # non-finite value, gradient or FIM at an accepted point
        return (ABNORMAL if np.isfinite(tracker.best) else FAILED), f"fides: {exc}"
    flag = optimizer.exitflag
    message = f"fides: {flag.name}"
    if flag.value > 0:  # FTOL, XTOL, GTOL
        return tolerance_status(flag.name), message
    if tracker.n_fevals >= max_evals or flag == fides.ExitFlag.MAXITER:
        return MAX_EVALS, message
    return ABNORMAL if np.isfinite(tracker.best) else FAILED, message


@dataclass(frozen=True)
class MultiStart(Method):
    """Latin-hypercube multi-start local gradient search (scipy), exact JAX gradients.

    Attributes:
        local: "fides" (default) or a ``scipy.optimize.minimize`` method (L-BFGS-B, ...).
        tol: its ``tol`` (fides: absolute and relative objective tolerance).
        resample: uniform replacement points tried when a start point's first evaluation
            fails (0: none; the start then fails).
    """

    name = "multistart"
    independent_starts = True
    local: str = "fides"
    tol: float = 1e-8
    resample: int = DEFAULT_RESAMPLE

    def run(
        self,
        objective: Objective,
        lower: np.ndarray,
        upper: np.ndarray,
        budget: Budget,
        seed: int,
        callbacks: Callbacks,
        skip: frozenset[int] = frozenset(),
    ) -> Iterator[StartResult]:
        """Yield one local search per Latin-hypercube start point."""
        starts = StartPoints(budget, lower, upper, seed)
        for i in start_indices(budget):
            if i in skip:
                continue
            if not callbacks.more_starts():
                return
            x0 = starts[i]
            tracker = StartTracker(objective, budget, callbacks, i)
            status, message, first = local_search(
                tracker, x0, lower, upper, self.local, self.tol, self.resample, resample_rng(seed, i)
            )
            yield tracker.result(first.x, first.value, status, message)
