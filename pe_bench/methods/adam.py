"""Adam on JAX rollouts: all starts optimised at once with optax.

Kingma & Ba (2015): ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``,
``x <- x - lr * m_hat / (sqrt(v_hat) + eps)``. Every iteration is one jitted, vmapped
step over the whole batch of starts (value, gradient and update together). Bounds:
projection (clipping) onto the box after every update. Each start stops on its own:
when its best nllh has improved by less than ``rel_tol`` (relative) over the last
``patience`` iterations, when it fails (non-finite nllh: recorded as failed, its updates
frozen, the batch goes on), or when its evaluation budget is spent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..objective import Objective
from .base import (
    CONVERGED,
    FAILED,
    MAX_EVALS,
    STOPPED,
    Budget,
    Callbacks,
    Method,
    StartResult,
    StartTracker,
    StopStart,
    latin_hypercube,
)

#: Iterations per start when the budget sets none.
DEFAULT_MAX_EVALS = 1000


@dataclass(frozen=True)
class Adam(Method):
    """optax Adam over all starts at once (one vmapped step), projected onto the bounds.

    Attributes:
        learning_rate: peak learning rate (on the estimation scale).
        schedule: "constant", "cosine" (cosine decay to 1 % over the budget) or
            "exponential" (x0.1 over the budget).
        rel_tol, patience: per-start stopping rule (see module docstring).
    """

    name = "adam"
    learning_rate: float = 0.05
    schedule: str = "cosine"
    rel_tol: float = 1e-6
    patience: int = 50

    def _schedule(self, steps: int):
        if self.schedule == "constant":
            return self.learning_rate
        if self.schedule == "cosine":
            return optax.cosine_decay_schedule(self.learning_rate, steps, alpha=0.01)
        if self.schedule == "exponential":
            return optax.exponential_decay(self.learning_rate, steps, 0.1)
        raise ValueError(f"unknown schedule '{self.schedule}' (constant, cosine, exponential)")

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
        """Optimise every start in one batch; yield results as starts finish."""
        starts = latin_hypercube(budget.n_starts, lower, upper, seed)
        todo = [i for i in range(budget.n_starts) if i not in skip]
        if not todo:
            return
        max_iter = budget.max_evals or DEFAULT_MAX_EVALS
        opt = optax.adam(self._schedule(max_iter))
        lo, hi = jnp.asarray(lower), jnp.asarray(upper)
        vg = jax.vmap(lambda x: objective.value_and_grad_fn(x)[:2])

        @jax.jit
        def step(x, state, active):
            values, grads = vg(x)
            ok = jnp.isfinite(values) & jnp.all(jnp.isfinite(grads), axis=1)
            grads = jnp.where((ok & active)[:, None], grads, 0.0)
            updates, new_state = opt.update(grads, state, x)
            new_x = jnp.clip(optax.apply_updates(x, updates), lo, hi)
            new_x = jnp.where((ok & active)[:, None], new_x, x)
            return values, new_x, new_state

        x = jnp.asarray(starts[todo])
        state = opt.init(x)
        trackers = {i: StartTracker(objective, budget, callbacks, i) for i in todo}
        for tr in trackers.values():
            # The starts share one batch: each is charged an equal share of its clock, so
            # that summed over starts the seconds are the batch's real time, and a seconds
            # budget per start means the same as for methods that run starts one by one.
            tr.clock_share = 1.0 / len(todo)
        active = np.ones(len(todo), dtype=bool)
        window = {i: [] for i in todo}
        for it in range(max_iter):
            xs_before = np.asarray(x)
            values, x, state = step(x, state, jnp.asarray(active))
            values = np.asarray(values)
            for k, i in enumerate(todo):
                if not active[k]:
                    continue
                tr = trackers[i]
                status = None
                try:
                    tr.record(xs_before[k], values[k : k + 1], n_grad=1)
                except StopStart as stop:
                    status, message = stop.status, stop.message
                if status is None and not np.isfinite(values[k]):
                    status, message = FAILED, f"non-finite nllh at iteration {it}"
                if status is None:
                    hist = window[i]
                    hist.append(tr.best)
                    if len(hist) > self.patience:
                        old = hist.pop(0)
                        if old - tr.best <= self.rel_tol * max(1.0, abs(tr.best)):
                            status, message = (
                                CONVERGED,
                                f"improvement < {self.rel_tol:g} over {self.patience} iterations",
                            )
                if status is None and it == max_iter - 1:
                    status, message = MAX_EVALS, f"{max_iter} iterations"
                if status is not None:
                    active[k] = False
                    yield tr.result(starts[i], tr.first_value, status, message)
                    if status == STOPPED and "stop requested" in message:
                        return
            if not active.any():
                return
