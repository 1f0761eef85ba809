"""CMA-ES with Hansen's reference implementation (the ``cma`` package), as pyPESTO runs it.

Covariance matrix adaptation evolution strategy (Hansen & Ostermeier 2001; Hansen 2016,
"The CMA Evolution Strategy: A Tutorial"): each generation samples ``lambda`` points
``x_k = m + sigma * B D z_k``, ``z_k ~ N(0, I)``, and moves the mean to the weighted
average of the best ``mu`` of them, ``m <- sum_i w_i x_{i:lambda}``; the step size
``sigma`` follows cumulative step-size adaptation and the covariance ``C = B D^2 B^T``
the rank-one and rank-mu updates. pyPESTO's ``CmaOptimizer`` (the configuration of the
field's benchmark, Grein et al. 2026) starts each run from a start point ``x0`` with
``sigma0 = 0.25 * median(upper - lower)`` and cma's default population
``lambda = 4 + floor(3 ln n_par)``, at most 10000 generations; so does this method.

One start = one CMA-ES run from a Latin-hypercube point. Every generation's population
is evaluated as one batched objective call (``Objective.batch``); the start point is
evaluated with the first generation, so that the row's ``nllh_start`` is its value.
Bounds: cma's default ``BoundTransform``, a smooth periodic map of the internal
coordinates into the box, so every evaluated point lies in the bounds. A failed
evaluation is +inf, which cma ranks last. The run ends on cma's own termination
criteria (``tolfun``, ``tolx``, ``tolstagnation``, ...: status converged, its keys in
the message) or on the start's budget.

With ``ipop`` (IPOP-CMA-ES, Auger & Hansen 2005), a run that stops on its own criteria
restarts from a uniform random point of the box with the population multiplied by
``incpopsize``, within the same start and budget, up to ``max_restarts`` times.

cma's random numbers are seeded per start and restart from (seed, start), so start
``i`` is the same whatever other starts run.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..objective import Objective
from .base import (
    MAX_EVALS,
    TOLERANCE,
    Budget,
    Callbacks,
    Method,
    StartPoints,
    StartResult,
    StartTracker,
    StopStart,
    start_indices,
)

#: Generations per CMA-ES run (pyPESTO's CmaOptimizer default).
DEFAULT_MAX_ITER = 10_000
#: cma stop keys that mean a budget, not convergence.
_BUDGET_STOPS = {"maxiter", "maxfevals", "timeout"}


def default_popsize(n_par: int) -> int:
    """Cma's default population size, ``4 + floor(3 ln n_par)``."""
    return 4 + int(3 * math.log(n_par))


@dataclass(frozen=True)
class CMAES(Method):
    """CMA-ES (``cma``), each generation one batched evaluation; optional IPOP restarts.

    Attributes:
        sigma0: initial step size as a fraction of the median box width (pyPESTO: 0.25).
        popsize: population size (0: cma's default ``4 + floor(3 ln n_par)``).
        max_iter: generations per CMA-ES run (pyPESTO: 10000).
        ipop: restart with a larger population when a run stops on its own (IPOP).
        incpopsize: population factor per IPOP restart.
        max_restarts: IPOP restarts per start at most.
    """

    name = "cmaes"
    independent_starts = True
    sigma0: float = 0.25
    popsize: int = 0
    max_iter: int = DEFAULT_MAX_ITER
    ipop: bool = False
    incpopsize: int = 2
    max_restarts: int = 9

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
        """Yield one CMA-ES run (with its IPOP restarts) per start."""
        import cma

        if not self.sigma0 > 0:
            raise ValueError(f"sigma0 must be > 0, got {self.sigma0}")
        lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
        sigma0 = self.sigma0 * float(np.median(upper - lower))
        starts = StartPoints(budget, lower, upper, seed)
        for i in start_indices(budget):
            if i in skip:
                continue
            if not callbacks.more_starts():
                return
            x0 = starts[i]
            tracker = StartTracker(objective, budget, callbacks, i)
            rng = np.random.default_rng((seed, i, 0xC3A))
            popsize = self.popsize or default_popsize(len(lower))
            status, message, restarts, generations = MAX_EVALS, "", 0, 0
            x, first = x0, True
            try:
                while True:
                    options = {
                        "bounds": [lower, upper],
                        "popsize": popsize,
                        "maxiter": self.max_iter,
                        "seed": int(rng.integers(1, 2**31 - 1)),
                        "verbose": -9,
                    }
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        es = cma.CMAEvolutionStrategy(x, sigma0, inopts=options)
                        while not es.stop():
                            population = np.asarray(es.ask())
                            if first:  # the start point rides with the first generation
                                values = tracker.batch(np.vstack([x0, population]))[1:]
                                first = False
                            else:
                                values = tracker.batch(population)
                            es.tell(list(population), [float(v) for v in values])
                            generations += 1
                    stop = dict(es.stop())
                    message = f"cma: {', '.join(sorted(stop))} after {generations} generations"
                    if restarts:
                        message += f", {restarts} IPOP restart(s), population {popsize}"
                    # cma's own stop names (tolfun, tolx, tolstagnation, ...) say what ended it
                    own = sorted(stop)[0] if stop else TOLERANCE
                    status = MAX_EVALS if set(stop) & _BUDGET_STOPS else own
                    if not self.ipop or restarts >= self.max_restarts:
                        break
                    restarts += 1
                    popsize *= self.incpopsize
                    x = rng.uniform(lower, upper)
            except StopStart as stop:
                status, message = stop.status, f"{stop.message} (cma: {generations} generations)"
            extra = {"popsize": popsize, "restarts": restarts}
            yield tracker.result(x0, tracker.first_value, status, message, extra)
