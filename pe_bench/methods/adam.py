"""Adam on JAX rollouts: all starts optimised at once with optax, on the device.

Kingma & Ba (2015): ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``,
``x <- x - lr * m_hat / (sqrt(v_hat) + eps)``. Bounds: projection (clipping) onto the
box after every update. Each start stops on its own: when its best nllh has improved by
less than ``rel_tol`` (relative) over the last ``patience`` iterations, when it fails
(non-finite nllh: recorded as failed, its updates frozen, the batch goes on), or when its
evaluation budget is spent.

The iterations run in compiled blocks (``lax.scan`` of ``block`` iterations of the
vmapped value, gradient and update): the host sees each block's values and points once,
replays them into the starts' trackers (budgets, target, the stopping rule, histories;
each iteration's time interpolated within the block) and yields the starts that ended.
A start that ended inside a block, or failed, is evaluated for the rest of the run at the
point of a start still running, so that a frozen lane never makes the lockstep batch pay
for an expensive (failing) point; its own results are never touched again. On a CPU of
several cores the starts are split into one chunk per core, each a vmapped block run on
its own thread (XLA runs one vmapped computation on one core).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..clock import AotFunction, Stamp, now
from ..objective import Objective
from ..runtime import compute_threads
from .base import (
    FAILED,
    MAX_EVALS,
    STALLED,
    STOPPED,
    Budget,
    Callbacks,
    Method,
    StartPoints,
    StartResult,
    StartTracker,
    StopStart,
)

#: Iterations per start when the budget sets none.
DEFAULT_MAX_EVALS = 1000


@dataclass(frozen=True)
class Adam(Method):
    """optax Adam over all starts at once (vmapped blocks of iterations), projected onto the bounds.

    Attributes:
        learning_rate: peak learning rate (on the estimation scale).
        schedule: "constant", "cosine" (cosine decay to 1 % over the budget) or
            "exponential" (x0.1 over the budget).
        rel_tol, patience: a start stops when its best nllh improved by less than
            ``rel_tol`` (relative) over its last ``patience`` iterations.
        block: iterations per compiled block (the host sees results once per block).
        chunks: parallel chunks of starts (0: one per core on CPU, one on an accelerator).
        wave: starts per batch under a CPU budget without a number of starts (batches
            follow each other until the budget is spent).
    """

    name = "adam"
    learning_rate: float = 0.05
    schedule: str = "cosine"
    rel_tol: float = 1e-6
    patience: int = 50
    block: int = 25
    chunks: int = 0
    wave: int = 8

    def _schedule(self, steps: int):
        if self.schedule == "constant":
            return self.learning_rate
        if self.schedule == "cosine":
            return optax.cosine_decay_schedule(self.learning_rate, steps, alpha=0.01)
        if self.schedule == "exponential":
            return optax.exponential_decay(self.learning_rate, steps, 0.1)
        raise ValueError(f"unknown schedule '{self.schedule}' (constant, cosine, exponential)")

    def _n_chunks(self, n: int) -> int:
        if self.chunks:
            return max(1, min(self.chunks, n))
        if jax.default_backend() != "cpu":
            return 1
        return max(1, min(compute_threads(), n))

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
        """Optimise every start in one batch; yield results as starts finish.

        Under a CPU budget without a number of starts, batches of ``wave`` starts follow
        each other until the budget is spent.
        """
        if self.block < 1:
            raise ValueError(f"block must be >= 1, got {self.block}")
        if self.wave < 1:
            raise ValueError(f"wave must be >= 1, got {self.wave}")
        starts = StartPoints(budget, lower, upper, seed)
        compiled = self._block(objective, lower, upper, budget.max_evals or DEFAULT_MAX_EVALS)
        if budget.n_starts is not None:
            waves = [range(budget.n_starts)]
        else:
            waves = (range(w * self.wave, (w + 1) * self.wave) for w in itertools.count())
        for wave in waves:
            todo = [i for i in wave if i not in skip]
            if not todo:
                continue
            if not callbacks.more_starts():
                return
            stopped = yield from self._run_wave(
                objective, lower, upper, budget, callbacks, starts, todo, compiled
            )
            if stopped:
                return

    def _block(self, objective, lower, upper, max_iter):
        """The optimiser and the compiled block of iterations (one per run, every wave)."""
        opt = optax.adam(self._schedule(max_iter))
        lo, hi = jnp.asarray(lower), jnp.asarray(upper)
        vg = jax.vmap(lambda x: objective.value_and_grad_fn(x)[:2])

        def one_iteration(carry, _):
            x, state, active = carry
            # Lanes that ended are evaluated at a running lane's point (their own point
            # may be expensive or failing); their values are never read.
            donor = x[jnp.argmax(active)]
            x_eval = jnp.where(active[:, None], x, donor)
            values, grads = vg(x_eval)
            ok = jnp.isfinite(values) & jnp.all(jnp.isfinite(grads), axis=1)
            grads = jnp.where((ok & active)[:, None], grads, 0.0)
            updates, new_state = opt.update(grads, state, x)
            new_x = jnp.clip(optax.apply_updates(x, updates), lo, hi)
            new_x = jnp.where((ok & active)[:, None], new_x, x)
            return (new_x, new_state, active & ok), (values, x)

        @functools.partial(jax.jit, static_argnums=3)
        def block(x, state, active, length):
            (x, state, active), (values, xs) = jax.lax.scan(
                one_iteration, (x, state, active), None, length=length
            )
            return x, state, values, xs

        # Compiled ahead of each block's timing, once per block length (pe_bench.clock).
        return opt, AotFunction(block, static_argnums=(3,))

    def _run_wave(self, objective, lower, upper, budget, callbacks, starts, todo, compiled):
        """Optimise the starts ``todo`` in one batch; returns True if a stop was requested."""
        max_iter = budget.max_evals or DEFAULT_MAX_EVALS
        opt, run_block = compiled
        n, d = len(todo), len(lower)
        k = self._n_chunks(n)
        size = -(-n // k)
        x0 = np.stack([starts[i] for i in todo])
        x_all = np.concatenate([x0, np.repeat(x0[:1], size * k - n, axis=0)])
        lanes = [np.arange(c * size, (c + 1) * size) for c in range(k)]
        xs_dev = [jnp.asarray(x_all[ln]) for ln in lanes]
        states = [opt.init(x) for x in xs_dev]
        trackers = {i: StartTracker(objective, budget, callbacks, i) for i in todo}
        for tr in trackers.values():
            # The starts share one batch: each is charged an equal share of its clock, so
            # that summed over starts the seconds are the batch's real time, and a seconds
            # budget per start means the same as for methods that run starts one by one.
            tr.clock_share = 1.0 / n
        active = np.concatenate([np.ones(n, dtype=bool), np.zeros(size * k - n, dtype=bool)])
        window = {i: [] for i in todo}
        pool = ThreadPoolExecutor(k) if k > 1 else None
        it0 = 0
        per_iteration = None  # CPU seconds of one iteration of the batch, once measured
        clock = callbacks.run_clock
        try:
            while it0 < max_iter:
                length = min(self.block, max_iter - it0)
                if clock is not None and clock.cpu_budget is not None and per_iteration is None:
                    length = 1  # measure an iteration before sizing blocks to the budget
                elif clock is not None and clock.cpu_budget is not None:
                    # Near the end of a CPU budget, shorter blocks: the budget is checked as
                    # the host replays a block, after all of it was computed.
                    # Powers of two, so that at most a few more block lengths compile.
                    fits = int((clock.cpu_budget - clock.cpu()) / per_iteration) + 1
                    if fits < length:
                        length = 1 << max(0, fits.bit_length() - 1)
                for c in range(k):
                    run_block.compiled(xs_dev[c], states[c], jnp.asarray(active[lanes[c]]), length)
                t_block = now()

                def go(c, length=length, xs_dev=xs_dev, states=states):
                    if not active[lanes[c]].any():  # a chunk whose starts all ended: skip it
                        return (
                            xs_dev[c],
                            states[c],
                            np.full((length, size), np.nan),
                            np.zeros((length, size, d)),
                        )
                    return jax.block_until_ready(
                        run_block(xs_dev[c], states[c], jnp.asarray(active[lanes[c]]), length)
                    )

                outs = list(pool.map(go, range(k))) if pool else [go(0)]
                t_end = now()
                per_iteration = max(1e-9, (t_end.cpu - t_block.cpu) / length)
                xs_dev = [o[0] for o in outs]
                states = [o[1] for o in outs]
                values = np.concatenate([np.asarray(o[2]) for o in outs], axis=1)  # (length, lanes)
                points = np.concatenate([np.asarray(o[3]) for o in outs], axis=1)  # (length, lanes, d)
                for j in range(length):
                    it = it0 + j
                    f = (j + 1) / length
                    at = Stamp(
                        t_block.wall + (t_end.wall - t_block.wall) * f,
                        t_block.cpu + (t_end.cpu - t_block.cpu) * f,
                    )
                    for lane, i in enumerate(todo):
                        if not active[lane]:
                            continue
                        result = self._replay(
                            trackers[i], window[i], points[j, lane], values[j, lane], it, max_iter, at
                        )
                        if result is None:
                            continue
                        status, message = result
                        active[lane] = False
                        yield trackers[i].result(starts[i], trackers[i].first_value, status, message)
                        if status == STOPPED and "stop requested" in message:
                            return True
                    if not active[:n].any():
                        return False
                it0 += length
        finally:
            if pool is not None:
                pool.shutdown(wait=False)
        return False

    def _replay(self, tr, hist, x, value, it, max_iter, at):
        """One iteration of one start on the host: (status, message) if it ends here."""
        try:
            tr.record(x, np.array([value]), n_grad=1, at=at)
        except StopStart as stop:
            return stop.status, stop.message
        if not np.isfinite(value):
            return FAILED, f"non-finite nllh at iteration {it}"
        hist.append(tr.best)
        if len(hist) > self.patience:
            old = hist.pop(0)
            if old - tr.best <= self.rel_tol * max(1.0, abs(tr.best)):
                return STALLED, f"improvement < {self.rel_tol:g} over {self.patience} iterations"
        if it == max_iter - 1:
            return MAX_EVALS, f"{max_iter} iterations"
        return None
