"""Particle swarm optimisation with pyswarms' ``GlobalBestPSO``.

Kennedy & Eberhart (1995); global-best topology, update rule
``v <- w v + c1 r1 (pbest - x) + c2 r2 (gbest - x)``, ``x <- x + v``. The whole swarm is
evaluated as one batched (vmapped) objective call per iteration. Bounds: pyswarms' own
boundary handling (``bh_strategy``, default "periodic" as in pyswarms) keeps particles
in the box. One start = one independent swarm with its own seed.

pyswarms draws from NumPy's global random state; it is seeded per swarm
(``seed * 1000 + start``) so that results are reproducible.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..objective import Objective
from .base import MAX_EVALS, Budget, Callbacks, Method, StartResult, StartTracker, StopStart, start_indices

# pyswarms' Reporter otherwise installs an INFO root handler on the current stderr and
# writes report.log into the working directory.
_LOGGING_CONFIG = Path(__file__).with_name("pyswarms_logging.yaml")


@contextlib.contextmanager
def _quiet_pyswarms():
    """Point pyswarms' Reporters (created at import and in constructors) at our config."""
    old = os.environ.get("LOG_CFG")
    os.environ["LOG_CFG"] = str(_LOGGING_CONFIG)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("LOG_CFG", None)
        else:
            os.environ["LOG_CFG"] = old


#: Evaluations per swarm when the budget sets none.
DEFAULT_MAX_EVALS = 3000


#: What pyswarms sees for a particle whose evaluation failed: finite, above any real nllh,
#: and small enough that pyswarms' sums over a swarm do not overflow.
FAILED_COST = 1e300


@dataclass(frozen=True)
class ParticleSwarm(Method):
    """Global-best particle swarm (pyswarms), whole swarm evaluated in one batch.

    Attributes:
        particles: swarm size.
        iterations: iterations per swarm (the evaluation budget may end it sooner).
        c1, c2, w: cognitive, social and inertia coefficients.
        bh_strategy: pyswarms boundary strategy.
    """

    name = "pso"
    independent_starts = True
    particles: int = 30
    iterations: int | None = None
    c1: float = 0.5
    c2: float = 0.3
    w: float = 0.9
    bh_strategy: str = "periodic"

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
        """Yield one swarm per start."""
        with _quiet_pyswarms():
            from pyswarms.single import GlobalBestPSO

        logging.getLogger("pyswarms").setLevel(logging.WARNING)
        max_evals = budget.max_evals or DEFAULT_MAX_EVALS
        iterations = self.iterations or max(1, max_evals // self.particles)
        for i in start_indices(budget):
            if i in skip:
                continue
            if not callbacks.more_starts():
                return
            rng_state = np.random.get_state()
            np.random.seed((seed * 1000 + i) % 2**32)
            try:
                tracker = StartTracker(objective, budget, callbacks, i)
                with _quiet_pyswarms():
                    swarm = GlobalBestPSO(
                        n_particles=self.particles,
                        dimensions=len(lower),
                        options={"c1": self.c1, "c2": self.c2, "w": self.w},
                        bounds=(np.asarray(lower), np.asarray(upper)),
                        bh_strategy=self.bh_strategy,
                    )
                first: list = []  # (best initial particle, its nllh)

                def evaluate(xs, tracker=tracker, first=first):
                    values = tracker.batch(xs)
                    if not first:
                        first.append((np.array(xs[np.argmin(values)]), float(np.min(values))))
                    # pyswarms keeps a best position only for a cost below +inf: a swarm
                    # whose particles all failed would have none and crash. A failed
                    # particle costs FAILED_COST instead (recorded as +inf above).
                    return np.where(np.isfinite(values), values, FAILED_COST)

                status, message = MAX_EVALS, f"{iterations} iterations"
                try:
                    swarm.optimize(evaluate, iters=iterations, verbose=False)
                except StopStart as stop:
                    status, message = stop.status, stop.message
            finally:
                np.random.set_state(rng_state)
            x0, nllh0 = first[0] if first else (np.asarray(lower), np.inf)
            yield tracker.result(x0, nllh0, status, message, {"particles": self.particles})
