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
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from ..objective import Objective
from .base import (
    CONVERGED,
    MAX_EVALS,
    Budget,
    Callbacks,
    Method,
    StartResult,
    StartTracker,
    StopStart,
    latin_hypercube,
)

_WITH_BOUNDS = {"L-BFGS-B", "TNC", "SLSQP", "trust-constr", "Powell", "Nelder-Mead", "COBYLA", "COBYQA"}
_GRADIENT_FREE = {"Powell", "Nelder-Mead", "COBYLA", "COBYQA"}

#: Evaluations per start when the budget sets none.
DEFAULT_MAX_EVALS = 1000


def local_search(
    tracker: StartTracker, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray, local: str, tol: float
) -> tuple[str, str]:
    """Minimise from ``x0`` through ``tracker``; returns (status, message).

    The tracker holds the best point found, whatever stopped the search.
    """
    if local == "fides":
        return _fides_search(tracker, x0, lower, upper, tol)
    bounded = local in _WITH_BOUNDS
    max_evals = tracker.budget.max_evals or DEFAULT_MAX_EVALS

    def project(x):
        return x if bounded else np.clip(x, lower, upper)

    if local in _GRADIENT_FREE:
        fun, jac = (lambda x: tracker.value(project(x))), None
    else:
        fun, jac = (lambda x: tracker.value_and_grad(project(x))), True
    try:
        res = minimize(
            fun,
            x0,
            jac=jac,
            method=local,
            bounds=list(zip(lower, upper, strict=True)) if bounded else None,
            tol=tol,
            options={"maxiter": max_evals} | ({"maxfun": max_evals} if local in ("L-BFGS-B", "TNC") else {}),
        )
    except StopStart as stop:
        return stop.status, stop.message
    message = str(res.message)
    if res.success:
        return CONVERGED, message
    if tracker.n_fevals >= max_evals or "LIMIT" in message.upper() or "MAX" in message.upper():
        return MAX_EVALS, message
    return CONVERGED if np.isfinite(tracker.best) and res.nit > 0 else MAX_EVALS, message


def _fides_search(
    tracker: StartTracker, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray, tol: float
) -> tuple[str, str]:
    import fides

    forward = tracker.objective.options.sensitivity == "forward"

    def fun(x):
        if forward:
            v, g, h = tracker.value_grad_fim(x)
        else:
            (v, g), h = tracker.value_and_grad(x), None
        if not np.isfinite(v):  # fides rejects the step on a non-finite value only
            g, h = np.zeros_like(x), (np.zeros((len(x), len(x))) if forward else None)
        return (v, g, h) if forward else (v, g)

    max_evals = tracker.budget.max_evals or DEFAULT_MAX_EVALS
    optimizer = fides.Optimizer(
        fun,
        ub=np.asarray(upper, dtype=float),
        lb=np.asarray(lower, dtype=float),
        verbose=logging.ERROR,
        options={fides.Options.MAXITER: max_evals, fides.Options.FATOL: tol, fides.Options.FRTOL: tol},
        hessian_update=fides.HybridFixed() if forward else fides.BFGS(),
    )
    # fides wants a start strictly inside the box.
    span = np.asarray(upper) - np.asarray(lower)
    x0 = np.clip(x0, lower + 1e-9 * span, upper - 1e-9 * span)
    try:
        optimizer.minimize(x0)
    except StopStart as stop:
        return stop.status, stop.message
    except RuntimeError as exc:  # non-finite value, gradient or FIM at an accepted point
        return (CONVERGED if np.isfinite(tracker.best) else MAX_EVALS), f"fides: {exc}"
    flag = optimizer.exitflag
    message = f"fides: {flag.name}"
    if flag.value > 0:
        return CONVERGED, message
    if tracker.n_fevals >= max_evals or flag == fides.ExitFlag.MAXITER:
        return MAX_EVALS, message
    return CONVERGED if np.isfinite(tracker.best) else MAX_EVALS, message


@dataclass(frozen=True)
class MultiStart(Method):
    """Latin-hypercube multi-start local gradient search (scipy), exact JAX gradients.

    Attributes:
        local: "fides" (default) or a ``scipy.optimize.minimize`` method (L-BFGS-B, ...).
        tol: its ``tol`` (fides: absolute and relative objective tolerance).
    """

    name = "multistart"
    independent_starts = True
    local: str = "fides"
    tol: float = 1e-8

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
        starts = latin_hypercube(budget.n_starts, lower, upper, seed)
        for i, x0 in enumerate(starts):
            if i in skip:
                continue
            tracker = StartTracker(objective, budget, callbacks, i)
            status, message = local_search(tracker, x0, lower, upper, self.local, self.tol)
            yield tracker.result(x0, tracker.first_value, status, message)
