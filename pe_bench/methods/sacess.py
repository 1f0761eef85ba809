"""Self-adaptive cooperative enhanced scatter search (saCeSS) with fides local searches.

Enhanced scatter search (eSS; Egea, Martí & Banga 2010) keeps a small reference set of
``b`` good and diverse points. Each iteration, with the set sorted by nllh, every member
``x_i`` is combined with every other ``x_j``: with ``d = (x_j - x_i) / 2``,
``alpha = +1`` if ``i < j`` else ``-1`` and ``beta = (|j - i| - 1) / (b - 2)``, a child
is drawn uniformly in the box between ``x_i - d (1 + alpha beta)`` and
``x_i + d (1 - alpha beta)`` (clipped to the bounds); the best child of each member
replaces it if better ("go-beyond" first extrapolates from an improving child away
from its parent, doubling the step every second success); a member that has not
improved for ``n_change`` iterations, or that lies within ``proximity`` (Chebyshev
distance, box-normalised) of a better one, is replaced by a random point; and, on a
schedule (``local_n1``, ``local_n2``), a local search (fides) starts from the child that
ranks best by ``(1 - balance) * quality rank + balance * distance rank`` (distance to
earlier local optima). saCeSS (Penas, González, Egea, Doallo & Banga 2017) runs several
such eSS workers with different settings (``b``, ``balance``, ``local_n1/2``; the table
of the reference implementation) that cooperate through a manager: a worker sends its
best when it improved by more than 1e-4 (relative), the manager accepts it if it
improves on the global best by more than a threshold (1e-3, halved after as many
rejections as workers, down to ``manager_min_threshold``), workers put the manager's best
into one slot of their reference set, and a worker that keeps receiving without sending
(``n_recv > 10 n_sent + 20``) copies the settings of the worker with the most accepted
solutions.

This follows pyPESTO's ``ESSOptimizer`` / ``SacessOptimizer`` (0.7.0; their successor is
the ``pyscat`` package), written here rather than wrapped because they evaluate through
their own objective and process pool: here every combination step of all workers is
one batched ``Objective.batch`` call, go-beyond chains advance in lockstep batches, the
workers run in one process (in turn, one iteration each per round), and every
evaluation goes through the start's tracker (budgets, target, history). Where pyPESTO
0.7.0 departs from the description in its own docstrings, this follows the
description: the manager's threshold stops at its minimum instead of halving forever,
a reconfigured worker's counters restart, and the new settings take effect.

One start = one saCeSS run; it ends when its budget (evaluations, or the run's CPU
seconds) is spent: status ``max_evals``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..objective import Objective
from .base import MAX_EVALS, Budget, Callbacks, Method, StartResult, StartTracker, StopStart, start_indices
from .multistart import local_search

#: Evaluations per start (one saCeSS run) when the budget sets none.
DEFAULT_MAX_EVALS = 5000

#: saCeSS worker settings (Penas et al. 2017's reference implementation, as pyPESTO's
#: ``get_default_ess_options``): (x of dim_refset(x), balance, local_n1 = local_n2).
WORKER_SETTINGS = (
    (1, 0.0, 1),
    (3, 0.0, 1000),
    (5, 0.25, 10),
    (10, 0.5, 20),
    (15, 0.25, 100),
    (12, 0.25, 1000),
    (7.5, 0.25, 15),
    (5, 0.25, 7),
    (2, 0.0, 1000),
    (0.5, 0.0, 1),
    (1.5, 1.0, 1),
    (3.5, 1.0, 4),
    (5.5, 0.1, 10),
    (10.5, 0.3, 20),
    (15.5, 0.2, 1000),
    (12.5, 0.2, 10),
    (8, 0.75, 15),
    (5.5, 0.75, 1000),
    (2.2, 1.0, 2),
    (1, 1.0, 1),
)


def dim_refset(x: float, n_par: int) -> int:
    """Reference-set size of a worker setting: ``max(5, ceil((1 + sqrt(4 n_par x)) / 2))``."""
    return max(5, math.ceil((1 + math.sqrt(4 * n_par * x)) / 2))


@dataclass
class _Worker:
    """One eSS worker: its reference set, settings and cooperation counters."""

    b: int
    balance: float
    local_n1: int
    local_n2: int
    x: np.ndarray = field(default=None)  # (b, n_par), sorted by f
    f: np.ndarray = field(default=None)
    n_stuck: np.ndarray = field(default=None)
    coop: np.ndarray = field(default=None)  # marks the slot that holds the manager's best
    n_iter: int = 0
    last_local: int = 0
    local_x: list = field(default_factory=list)
    best_x: np.ndarray | None = None
    best_f: float = math.inf
    best_known: float = math.inf
    n_sent: int = 0
    n_recv: int = 0
    evals_since_sent: int = 0

    def sort(self) -> None:
        order = np.argsort(self.f, kind="stable")
        self.x, self.f, self.n_stuck, self.coop = (
            self.x[order],
            self.f[order],
            self.n_stuck[order],
            self.coop[order],
        )

    def note(self, xs: np.ndarray, fs: np.ndarray) -> None:
        """Keep the worker's best of evaluated points."""
        if len(fs) and np.isfinite(fs).any():
            k = int(np.nanargmin(np.where(np.isfinite(fs), fs, np.inf)))
            if fs[k] < self.best_f:
                self.best_f, self.best_x = float(fs[k]), np.array(xs[k])
        self.evals_since_sent += len(fs)


class _Manager:
    """saCeSS's manager: the global best, the acceptance threshold and the workers' scores."""

    def __init__(self, n_workers: int, threshold: float, min_threshold: float):
        self.best_x: np.ndarray | None = None
        self.best_f = math.inf
        self.threshold, self.min_threshold = threshold, min_threshold
        self.rejections = 0
        self.n_workers = n_workers
        self.accepted = np.zeros(n_workers, dtype=int)
        self.scores = np.arange(n_workers, dtype=float)  # as the reference: last worker leads first

    def submit(self, w: int, x: np.ndarray, f: float, elapsed: float) -> None:
        change = f - self.best_f
        accept = (
            (math.isfinite(f) and not math.isfinite(self.best_f))
            or (self.best_f == 0 and f < 0)
            or (f < self.best_f and abs(change / self.best_f) > self.threshold)
        )
        if accept:
            self.best_x, self.best_f = np.array(x), f
            self.accepted[w] += 1
            self.scores[w] = self.accepted[w] * elapsed
        else:
            self.rejections += 1
            if self.rejections >= self.n_workers:
                self.threshold = max(self.threshold / 2, self.min_threshold)
                self.rejections = 0


def _improves(f: float, known: float, threshold: float) -> bool:
    """SaCeSS's test for a solution worth sending / accepting (relative improvement)."""
    if math.isfinite(f) and not math.isfinite(known):
        return True
    if known == 0:
        return f < 0
    return f < known and abs((known - f) / known) > threshold


@dataclass(frozen=True)
class Sacess(Method):
    """saCeSS: cooperating eSS workers, combinations in batches, fides local searches.

    Attributes:
        workers: eSS workers (their settings cycle through the reference table).
        local: local optimiser of the local searches: fides (default), a
            ``scipy.optimize.minimize`` method, or "none".
        local_max_evals: evaluations (fides: iterations) per local search (pyPESTO's fides
            default: 1000).
        tol: the local optimiser's tolerance (as multistart's).
        n_diverse: size of each worker's initial uniform sample (0: 10 * n_par, at
            least its reference set).
        n_change: iterations without improvement after which a member is replaced.
        proximity: box-normalised Chebyshev distance under which the worse of two
            members is replaced.
        resample: rounds of new random points for initial points whose evaluation fails.
        worker_threshold: relative improvement a worker needs to send its best (1e-4).
        manager_threshold, manager_min_threshold: the manager's acceptance threshold,
            halved after as many rejections as workers down to the minimum (1e-3, 1e-3).
        adaptation_sent_coeff, adaptation_sent_offset: a worker that received more than
            ``coeff * sent + offset`` solutions since it last sent one is reconfigured.
        adaptation_min_evals: ... or that evaluated more than this many points per
            parameter since.
    """

    name = "sacess"
    independent_starts = True
    workers: int = 4
    local: str = "fides"
    local_max_evals: int = 1000
    tol: float = 1e-8
    n_diverse: int = 0
    n_change: int = 20
    proximity: float = 1e-3
    resample: int = 10
    worker_threshold: float = 1e-4
    manager_threshold: float = 1e-3
    manager_min_threshold: float = 1e-3
    adaptation_sent_coeff: int = 10
    adaptation_sent_offset: int = 20
    adaptation_min_evals: int = 5000

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
        """Yield one saCeSS run per start."""
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if budget.max_evals is None and budget.cpu_budget is None:
            budget = Budget(budget.n_starts, DEFAULT_MAX_EVALS, budget.max_seconds, None)
        lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
        for i in start_indices(budget):
            if i in skip:
                continue
            if not callbacks.more_starts():
                return
            tracker = StartTracker(objective, budget, callbacks, i)
            run = _Run(self, tracker, lower, upper, np.random.default_rng((seed, i, 0x5ACE55)))
            try:
                run.go()
                status, message = MAX_EVALS, "no budget left"  # go() returns only by StopStart
            except StopStart as stop:
                status, message = stop.status, stop.message
            x0 = run.x_start if run.x_start is not None else (lower + upper) / 2
            message = f"{message} (saCeSS: {run.rounds} rounds, {run.n_local} local searches)"
            extra = {"workers": self.workers}
            yield tracker.result(x0, run.f_start, status, message, extra)


class _LocalTracker:
    """A local search's view of the start's tracker: counts its own evaluations and best."""

    def __init__(self, parent: StartTracker, max_evals: int):
        self.parent = parent
        self.objective = parent.objective
        self.budget = Budget(n_starts=1, max_evals=max_evals)
        self.best, self.best_x, self.n_fevals, self.last_value = math.inf, None, 0, math.inf

    def _note(self, x, v):
        self.n_fevals += 1
        self.last_value = float(v)
        if v < self.best:
            self.best, self.best_x = float(v), np.array(x, dtype=float)
        if self.n_fevals >= self.budget.max_evals:
            raise StopStart(MAX_EVALS, f"{self.n_fevals} evaluations (local search)")

    def value(self, x):
        v = self.parent.value(x)
        self._note(x, v)
        return v

    def value_and_grad(self, x):
        v, g = self.parent.value_and_grad(x)
        self._note(x, v)
        return v, g

    def value_grad_fim(self, x):
        v, g, h = self.parent.value_grad_fim(x)
        self._note(x, v)
        return v, g, h


class _Run:
    """One saCeSS run on one start's tracker (raises StopStart when the budget is spent)."""

    def __init__(self, method: Sacess, tracker: StartTracker, lower, upper, rng: np.random.Generator):
        self.m, self.tracker, self.lower, self.upper, self.rng = method, tracker, lower, upper, rng
        self.span = np.where(upper > lower, upper - lower, 1.0)
        self.n_par = len(lower)
        settings = [WORKER_SETTINGS[k % len(WORKER_SETTINGS)] for k in range(method.workers)]
        self.workers = [_Worker(dim_refset(x, self.n_par), bal, n, n) for x, bal, n in settings]
        self.manager = _Manager(method.workers, method.manager_threshold, method.manager_min_threshold)
        self.rounds = 0
        self.n_local = 0
        self.x_start, self.f_start = None, None

    # -- evaluation helpers --------------------------------------------------------------

    def evaluate(self, xs: np.ndarray) -> np.ndarray:
        """One batched, counted evaluation (non-finite as +inf)."""
        if len(xs) == 0:
            return np.zeros(0)
        return self.tracker.batch(np.asarray(xs, dtype=float))

    def between(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Uniform draws between ``a`` and ``b`` coordinate-wise (either may be the larger)."""
        return a + (b - a) * self.rng.random(np.shape(a))

    def random_points(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` uniform points of the box and their nllh, failed ones redrawn up to ``resample`` times."""
        xs = self.rng.uniform(self.lower, self.upper, (n, self.n_par))
        fs = self.evaluate(xs)
        for _ in range(self.m.resample):
            bad = ~np.isfinite(fs)
            if not bad.any():
                break
            xs[bad] = self.rng.uniform(self.lower, self.upper, (int(bad.sum()), self.n_par))
            fs[bad] = self.evaluate(xs[bad])
        return xs, fs

    # -- the run ---------------------------------------------------------------------------

    def go(self) -> None:
        self.initialise()
        while True:
            self.iterate()
            self.cooperate()
            self.rounds += 1

    def initialise(self) -> None:
        """Each worker's reference set from its diverse sample: the best b/2 and random others."""
        sizes = [max(self.m.n_diverse or 10 * self.n_par, w.b) for w in self.workers]
        xs, fs = self.random_points(sum(sizes))
        k = int(np.argmin(fs))
        self.x_start, self.f_start = xs[k].copy(), float(fs[k])
        at = 0
        for w, size in zip(self.workers, sizes, strict=True):
            x, f = xs[at : at + size], fs[at : at + size]
            at += size
            order = np.argsort(f, kind="stable")
            n_best = w.b // 2
            rest = self.rng.choice(order[n_best:], size=w.b - n_best, replace=False)
            chosen = np.concatenate([order[:n_best], rest])
            w.x, w.f = x[chosen].copy(), f[chosen].copy()
            w.n_stuck, w.coop = np.zeros(w.b, dtype=int), np.zeros(w.b, dtype=bool)
            w.note(w.x, w.f)
            w.sort()

    def iterate(self) -> None:
        """One eSS iteration of every worker, their evaluations batched together."""
        self.prune()
        children, child_f = self.combine()
        self.go_beyond(children, child_f)
        for w, y, fy in zip(self.workers, children, child_f, strict=True):
            self.local_search(w, y, fy)
        stuck = []
        for k, (w, y, fy) in enumerate(zip(self.workers, children, child_f, strict=True)):
            better = fy < w.f
            w.x[better], w.f[better] = y[better], fy[better]
            w.n_stuck[better] = 0
            w.n_stuck[~better] += 1
            stuck += [(k, int(i)) for i in np.flatnonzero(w.n_stuck > self.m.n_change)]
            w.n_iter += 1
        self.replace(stuck)

    def replace(self, slots: list[tuple[int, int]]) -> None:
        """Replace reference-set members (worker, index) by random points, in one batch."""
        if not slots:
            return
        xs, fs = self.random_points(len(slots))
        for (k, i), x, f in zip(slots, xs, fs, strict=True):
            w = self.workers[k]
            w.x[i], w.f[i], w.n_stuck[i] = x, f, 0
        for k in {k for k, _ in slots}:
            self.workers[k].note(xs, fs)
            self.workers[k].sort()

    def prune(self) -> None:
        """Replace members within ``proximity`` of a better one (box-normalised, Chebyshev)."""
        slots = []
        for k, w in enumerate(self.workers):
            w.sort()
            u = (w.x - self.lower) / self.span
            dist = np.max(np.abs(u[:, None, :] - u[None, :, :]), axis=2)
            close = np.triu(dist <= self.m.proximity, k=1).any(axis=0)  # j close to a better i
            slots += [(k, int(j)) for j in np.flatnonzero(close)]
        self.replace(slots)

    def combine(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Every worker's best child per member, all children evaluated in one batch."""
        parts, shapes = [], []
        for w in self.workers:
            b = w.b
            i, j = np.nonzero(~np.eye(b, dtype=bool))  # all pairs i != j, row-major
            xi, xj = w.x[i], w.x[j]
            d = (xj - xi) / 2
            alpha = np.where(i < j, 1.0, -1.0)[:, None]
            beta = ((np.abs(j - i) - 1) / (b - 2))[:, None]
            c1 = np.clip(xi - d * (1 + alpha * beta), self.lower, self.upper)
            c2 = np.clip(xi + d * (1 - alpha * beta), self.lower, self.upper)
            parts.append(self.between(c1, c2))
            shapes.append(b)
        values = self.evaluate(np.concatenate(parts))
        children, child_f, at = [], [], 0
        for w, kids, b in zip(self.workers, parts, shapes, strict=True):
            f = values[at : at + len(kids)].reshape(b, b - 1)
            kids = kids.reshape(b, b - 1, self.n_par)
            at += len(kids.reshape(-1, self.n_par))
            best = np.argmin(f, axis=1)
            children.append(kids[np.arange(b), best].copy())
            child_f.append(f[np.arange(b), best].copy())
            w.note(kids.reshape(-1, self.n_par), f.reshape(-1))
        return children, child_f

    def go_beyond(self, children, child_f, max_steps: int = 50) -> None:
        """Extrapolate improving children away from their parents, all chains in lockstep."""
        chains = []  # [worker index, member, x_parent, f_parent, x_child, f_child, factor, count]
        for k, (w, y, fy) in enumerate(zip(self.workers, children, child_f, strict=True)):
            for i in np.flatnonzero(fy < w.f):
                chains.append([k, int(i), w.x[i].copy(), float(w.f[i]), y[i].copy(), float(fy[i]), 1.0, 1])
        for _ in range(max_steps):
            if not chains:
                return
            new = []
            for k, i, x_par, _, x_ch, f_ch, factor, _ in chains:
                children[k][i], child_f[k][i] = x_ch, f_ch  # accept the improving child
                low = np.clip(x_ch - (x_par - x_ch) * factor, self.lower, self.upper)
                high = np.clip(x_ch, self.lower, self.upper)
                new.append(self.between(low, high))
            values = self.evaluate(np.stack(new))
            alive = []
            for chain, x_new, f_new in zip(chains, new, values, strict=True):
                self.workers[chain[0]].note(x_new[None], np.array([f_new]))
                chain[2], chain[3] = chain[4], chain[5]
                chain[4], chain[5] = x_new, float(f_new)
                chain[7] += 1
                if chain[7] == 2:
                    chain[6] *= 2
                    chain[7] = 0
                if chain[5] < chain[3]:
                    alive.append(chain)
            chains = alive

    def local_search(self, w: _Worker, y: np.ndarray, fy: np.ndarray) -> None:
        """A local search from the worker's best or its top-priority child, on schedule."""
        if self.m.local == "none":
            return
        if w.n_iter == w.local_n1:
            candidates = [w.best_x] if w.best_x is not None else []
        elif w.n_iter >= w.local_n1 and w.n_iter - w.last_local >= w.local_n2:
            q_rank = np.argsort(np.argsort(fy, kind="stable"), kind="stable")
            if w.local_x:
                known = np.stack(w.local_x)
                dmin = np.min(np.linalg.norm(y[:, None, :] - known[None, :, :], axis=2), axis=1)
            else:
                dmin = np.zeros(len(y))
            d_rank = np.argsort(np.argsort(dmin, kind="stable")[::-1], kind="stable")
            priority = (1 - w.balance) * q_rank + w.balance * d_rank
            candidates = [y[k] for k in np.argsort(priority, kind="stable") if np.isfinite(fy[k])][:3]
        else:
            return
        for x0 in candidates:
            local = _LocalTracker(self.tracker, self.m.local_max_evals)
            local_search(local, x0, self.lower, self.upper, self.m.local, self.m.tol)
            self.tracker.check()  # the start's own budget, target or stop ends the run
            self.n_local += 1
            if math.isfinite(local.best):
                w.local_x.append(local.best_x)
                w.note(local.best_x[None], np.array([local.best]))
                w.last_local = w.n_iter
                return

    def cooperate(self) -> None:
        """Workers send improved bests to the manager, take its best, and adapt."""
        elapsed = self.tracker.charged().cpu
        for k, w in enumerate(self.workers):
            if w.best_x is not None and _improves(w.best_f, w.best_known, self.m.worker_threshold):
                w.n_sent += 1
                w.best_known = w.best_f
                w.n_recv = 0
                w.evals_since_sent = 0
                self.manager.submit(k, w.best_x, w.best_f, elapsed)
            else:
                w.best_known = min(w.best_known, w.best_f)
        grow = []
        for k, w in enumerate(self.workers):
            if self.manager.best_x is not None and self.manager.best_f < w.best_known:
                w.best_known = self.manager.best_f
                w.n_recv += 1
                if not w.coop.any():
                    w.coop[int(np.argmax(w.f))] = True
                i = int(np.flatnonzero(w.coop)[0])
                w.x[i], w.f[i], w.n_stuck[i] = self.manager.best_x, self.manager.best_f, 0
                w.sort()
            sent = self.m.adaptation_sent_coeff * w.n_sent + self.m.adaptation_sent_offset
            if w.n_recv > sent or w.evals_since_sent > self.n_par * self.m.adaptation_min_evals:
                grow += self.reconfigure(k, w)
        self.add_members(grow)

    def reconfigure(self, k: int, w: _Worker) -> list[int]:
        """Take the settings of the top-scoring worker; returns k once per member to add."""
        top = self.workers[int(np.argmax(self.manager.scores))]
        w.local_n2, w.balance = top.local_n2, top.balance
        w.n_recv, w.n_sent, w.evals_since_sent = 0, 0, 0
        if top.b < w.b:  # drop the worst members
            w.sort()
            keep = slice(0, top.b)
            w.x, w.f, w.n_stuck, w.coop = w.x[keep], w.f[keep], w.n_stuck[keep], w.coop[keep]
            w.b = top.b
            return []
        return [k] * (top.b - w.b)

    def add_members(self, workers: list[int]) -> None:
        """Grow reference sets by random members (one batch for every worker that grows)."""
        if not workers:
            return
        xs, fs = self.random_points(len(workers))
        for k, x, f in zip(workers, xs, fs, strict=True):
            w = self.workers[k]
            w.x, w.f = np.vstack([w.x, x]), np.append(w.f, f)
            w.n_stuck, w.coop = np.append(w.n_stuck, 0), np.append(w.coop, False)
            w.b += 1
            w.note(x[None], np.array([f]))
        for k in set(workers):
            self.workers[k].sort()
