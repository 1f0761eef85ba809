"""The interface every estimation method implements, and the accounting they all share.

A method gets an :class:`~pe_bench.objective.Objective`, bounds on the estimation scale,
a :class:`Budget`, a seed and :class:`Callbacks`, and yields one :class:`StartResult` per
start. Counting evaluations, timing, budgets, the target and best-so-far histories live
here, once, in :class:`StartTracker`, so that every method is measured the same way.
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..objective import Objective

#: Final status of a start.
CONVERGED, MAX_EVALS, FAILED, STOPPED = "converged", "max_evals", "failed", "stopped"


@dataclass(frozen=True)
class Budget:
    """How much each method may spend.

    Attributes:
        n_starts: number of starts (independent local searches, swarms, ...).
        max_evals: objective evaluations per start (a value-and-gradient call counts as one
            function and one gradient evaluation); None for the method's own limit.
        max_seconds: wall-clock seconds per start; None for no limit.
    """

    n_starts: int = 20
    max_evals: int | None = None
    max_seconds: float | None = None


@dataclass
class Callbacks:
    """Hooks a run offers to methods.

    Attributes:
        target: stop a start as soon as its best nllh is <= target (``--target``).
        on_start_done: called with each finished StartResult (progress bars).
        on_eval: called with (n_evaluations, best_so_far) after each recorded evaluation.
        should_stop: polled between evaluations; True stops the run (Ctrl-C, time limit).
    """

    target: float | None = None
    on_start_done: Callable[[StartResult], None] | None = None
    on_eval: Callable[[int, float], None] | None = None
    should_stop: Callable[[], bool] | None = None


class StopStart(Exception):
    """Raised inside a method's objective calls to end the current start early."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class StartResult:
    """The outcome of one start.

    ``history`` rows are (n_fevals, seconds, best_nllh), one per improvement; ``n_failed``
    counts evaluations whose integration failed or gave a non-finite value.
    """

    start: int
    x_start: np.ndarray
    nllh_start: float
    x_final: np.ndarray
    nllh_final: float
    n_fevals: int
    n_gevals: int
    wall_time_s: float
    status: str
    message: str
    history: list[tuple[int, float, float]] = field(default_factory=list)
    n_failed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class StartTracker:
    """Counts and times the evaluations of one start and enforces budget, target and stop.

    Methods call :meth:`value`, :meth:`value_and_grad` or :meth:`batch` instead of the
    objective (or :meth:`record` when they evaluate in bulk themselves); those raise
    :class:`StopStart` once the start must end. Non-finite values count as evaluations
    and never become the best.
    """

    def __init__(
        self,
        objective: Objective,
        budget: Budget,
        callbacks: Callbacks,
        start: int,
        archive: list[tuple[np.ndarray, np.ndarray]] | None = None,
    ):
        self.objective = objective
        self.archive = archive  # if given, every evaluated (xs, values) is appended
        self.budget = budget
        self.callbacks = callbacks
        self.start = start
        self.t0 = time.perf_counter()
        self.n_fevals = 0
        self.n_gevals = 0
        self.n_failed = 0
        self.best = math.inf
        self.best_x: np.ndarray | None = None
        self.first_value: float | None = None  # nllh of the first evaluation (the start point)
        self.last_value = math.inf  # nllh of the latest evaluation
        self.history: list[tuple[int, float, float]] = []
        #: Fraction of the wall clock charged to this start (starts sharing one batch,
        #: like Adam's, are each charged an equal share, so the seconds budget is fair).
        self.clock_share = 1.0

    def elapsed(self, at: float | None = None) -> float:
        """Seconds charged to this start since it began (until ``at``, a perf_counter time)."""
        return ((time.perf_counter() if at is None else at) - self.t0) * self.clock_share

    def record(self, xs: np.ndarray, values: np.ndarray, n_grad: int = 0, at: float | None = None) -> None:
        """Account for evaluations done elsewhere: ``xs`` (n, n_par) with ``values`` (n,).

        ``at``: when they were done (a ``time.perf_counter`` value; default now), for
        evaluations replayed after a block computed on the device.
        """
        values = np.atleast_1d(np.asarray(values, dtype=float))
        xs = np.atleast_2d(np.asarray(xs, dtype=float))
        if self.archive is not None:
            self.archive.append((xs.copy(), values.copy()))
        if self.first_value is None and len(values):
            self.first_value = float(values[0])
        if len(values):
            self.last_value = float(values[-1])
        self.n_fevals += len(values)
        self.n_gevals += n_grad
        finite = np.isfinite(values)
        self.n_failed += int((~finite).sum())
        if finite.any():
            i = int(np.argmin(np.where(finite, values, np.inf)))
            if values[i] < self.best:
                self.best = float(values[i])
                self.best_x = xs[i].copy()
                self.history.append((self.n_fevals, self.elapsed(at), self.best))
        if self.callbacks.on_eval is not None:
            self.callbacks.on_eval(len(values), self.best)
        self.check(at)

    def check(self, at: float | None = None) -> None:
        """Raise StopStart if the target is met, the budget spent or a stop requested."""
        cb, budget = self.callbacks, self.budget
        if cb.target is not None and self.best <= cb.target:
            raise StopStart(STOPPED, f"target {cb.target:g} reached")
        if cb.should_stop is not None and cb.should_stop():
            raise StopStart(STOPPED, "stop requested")
        if budget.max_evals is not None and self.n_fevals >= budget.max_evals:
            raise StopStart(MAX_EVALS, f"{self.n_fevals} evaluations (budget {budget.max_evals})")
        if budget.max_seconds is not None and self.elapsed(at) >= budget.max_seconds:
            raise StopStart(MAX_EVALS, f"{self.elapsed(at):.1f} s (budget {budget.max_seconds:g} s)")

    def value(self, x: np.ndarray) -> float:
        """Nllh at ``x`` (+inf on failure), counted."""
        v, _ = self.objective.value(x)
        self.record(x, np.array([v]))
        return v

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Nllh and gradient at ``x``, counted; on failure (+inf, zeros)."""
        v, g, _ = self.objective.value_and_grad(x)
        if not np.isfinite(v) or not np.all(np.isfinite(g)):
            v, g = math.inf, np.zeros_like(np.asarray(x, dtype=float))
        self.record(x, np.array([v]), n_grad=1)
        return v, g

    def value_grad_fim(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Nllh, gradient and Fisher information at ``x``, counted; on failure (+inf, NaN, NaN)."""
        v, g, h, _ = self.objective.value_grad_fim(x)
        if not (np.isfinite(v) and np.all(np.isfinite(g)) and np.all(np.isfinite(h))):
            v, g, h = math.inf, np.full_like(g, np.nan), np.full_like(h, np.nan)
        self.record(x, np.array([v]), n_grad=1)
        return v, g, h

    def batch(self, xs: np.ndarray) -> np.ndarray:
        """Nllh of every row of ``xs``, counted (non-finite as +inf)."""
        values, _ = self.objective.batch(xs)
        values = np.where(np.isfinite(values), values, np.inf)
        self.record(xs, values)
        return values

    def result(self, x_start, nllh_start, status: str, message: str, extra=None) -> StartResult:
        """The StartResult of this start, from what was recorded."""
        x_final = self.best_x if self.best_x is not None else np.asarray(x_start, dtype=float)
        if not math.isfinite(self.best):
            status = FAILED
        return StartResult(
            start=self.start,
            x_start=np.asarray(x_start, dtype=float),
            nllh_start=math.inf if nllh_start is None else float(nllh_start),
            x_final=np.asarray(x_final, dtype=float),
            nllh_final=self.best,
            n_fevals=self.n_fevals,
            n_gevals=self.n_gevals,
            wall_time_s=self.elapsed(),
            status=status,
            message=message,
            history=list(self.history),
            extra=dict(extra or {}),
            n_failed=self.n_failed,
        )


class Method(abc.ABC):
    """An estimation method: one entry point, :meth:`run`, yielding one result per start.

    Subclasses are final dataclasses whose fields are the method's options (they are
    written to the result metadata); ``name`` is the stable key used on the CLI and in
    result files.
    """

    name: ClassVar[str]
    #: True when start ``i`` does not depend on the other starts, so that a benchmark may
    #: split the starts of one run over several tasks (with ``skip``).
    independent_starts: ClassVar[bool] = False

    @abc.abstractmethod
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
        """Run every start not in ``skip`` (already done, for ``--resume``), in order.

        Start ``i`` must be the same for the same seed whatever ``skip`` is.
        """


def latin_hypercube(n: int, lower: np.ndarray, upper: np.ndarray, seed: int) -> np.ndarray:
    """``n`` Latin-hypercube points within the bounds (scipy.stats.qmc, seeded)."""
    from scipy.stats import qmc

    if n == 0:
        return np.zeros((0, len(lower)))
    unit = qmc.LatinHypercube(d=len(lower), rng=np.random.default_rng(seed)).random(n)
    return qmc.scale(unit, lower, upper)
