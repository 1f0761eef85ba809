"""The interface every estimation method implements, and the accounting they all share.

A method gets an :class:`~pe_bench.objective.Objective`, bounds on the estimation scale,
a :class:`Budget`, a seed and :class:`Callbacks`, and yields one :class:`StartResult` per
start. Counting evaluations, timing, budgets, the target and best-so-far histories live
here, once, in :class:`StartTracker`, so that every method is measured the same way.

The clock is :mod:`pe_bench.clock`'s: wall and CPU seconds with compilation excluded.
Work a method shares between starts (cVAE's screening batches and training) is its own
cost item, :class:`SharedCost`: recorded beside the starts it served, in the method's
totals and in the run's CPU seconds, never in a start's own evaluations or budget.
"""

from __future__ import annotations

import abc
import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..clock import Clock, RunClock, Stamp
from ..objective import Objective

#: Final status of a start: what stopped it. A start's local search ends at a tolerance
#: of its own (``ftol``: the objective's change, ``gtol``: the gradient's norm, ``xtol``:
#: the step; ``tolerance`` where the optimiser does not say which; CMA-ES's own stop
#: names such as ``tolfun``), with ``stalled`` (Adam: no improvement over its patience),
#: ``abnormal`` (the optimiser gave up, e.g. a failed line search), ``max_evals`` (its
#: budget), ``failed`` (nothing finite), or ``stopped`` (the target or the run's budget).
#: None of these says the start reached the optimum: "converged" is a property of the
#: final value against a known best value (:mod:`pe_bench.metrics`), not a status.
FTOL, GTOL, XTOL, TOLERANCE = "ftol", "gtol", "xtol", "tolerance"
STALLED, ABNORMAL = "stalled", "abnormal"
MAX_EVALS, FAILED, STOPPED = "max_evals", "failed", "stopped"


def tolerance_status(message: str) -> str:
    """The tolerance a local optimiser's success message names (scipy's, fides')."""
    text = message.upper()
    if "GRAD" in text or "GTOL" in text:
        return GTOL
    if "REL_REDUCTION" in text or "FTOL" in text or "FATOL" in text or "FRTOL" in text:
        return FTOL
    if "XTOL" in text or "STEP" in text:
        return XTOL
    return TOLERANCE


#: Rows per objective call of :meth:`StartTracker.batch` (the objective's lanes per
#: vmapped call on CPU): larger batches are cut into such pieces, the budgets checked
#: between them, so a CPU budget is overrun by one such call at most.
BATCH_PIECE = 64


@dataclass(frozen=True)
class Budget:
    """How much each method may spend.

    Attributes:
        n_starts: number of starts (independent local searches, swarms, CMA-ES runs, ...);
            None: as many as ``cpu_budget`` allows.
        max_evals: objective evaluations per start (a value-and-gradient call counts as one
            function and one gradient evaluation); None for the method's own limit.
        max_seconds: wall-clock seconds per start; None for no limit.
        cpu_budget: CPU seconds for the whole run (every start and the method's shared
            work, compilation excluded): starts run until it is spent, and the start
            running then stops after its current evaluation. None: no limit.
    """

    n_starts: int | None = 20
    max_evals: int | None = None
    max_seconds: float | None = None
    cpu_budget: float | None = None

    def __post_init__(self):
        if self.n_starts is None and self.cpu_budget is None:
            raise ValueError("a budget without a number of starts needs a CPU budget (cpu_budget)")


@dataclass
class Callbacks:
    """Hooks a run offers to methods.

    Attributes:
        target: stop a start as soon as its best nllh is <= target (``--target``).
        on_start_done: called with each finished StartResult (progress bars).
        on_eval: called with (n_evaluations, best_so_far) after each recorded evaluation.
        should_stop: polled between evaluations; True stops the run (Ctrl-C, time limit).
        run_clock: the run's CPU clock and budget (``Budget.cpu_budget``); None: the
            trackers record no run-level CPU seconds.
    """

    target: float | None = None
    on_start_done: Callable[[StartResult], None] | None = None
    on_eval: Callable[[int, float], None] | None = None
    should_stop: Callable[[], bool] | None = None
    run_clock: RunClock | None = None

    def more_starts(self) -> bool:
        """False once the run must not begin another start (CPU budget spent, stop requested)."""
        if self.run_clock is not None and self.run_clock.exhausted():
            return False
        return not (self.should_stop is not None and self.should_stop())


class StopStart(Exception):
    """Raised inside a method's objective calls to end the current start early."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class SharedCost:
    """A start's share of work its method did for several starts (cVAE's screening, training).

    Counted in the method's totals and the run's CPU seconds, never against the start's
    own evaluation or seconds budget.
    """

    n_fevals: int = 0
    n_failed: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0


@dataclass
class StartResult:
    """The outcome of one start.

    ``history`` rows are (n_fevals, seconds, best_nllh, cpu_seconds, run_cpu_seconds), one
    per improvement (run_cpu_seconds: the run's CPU seconds then, NaN without a run
    clock); ``n_failed`` counts evaluations whose integration failed or gave a non-finite
    value. ``wall_time_s`` and ``cpu_time_s`` exclude compilation; ``run_cpu_s`` is the
    run's CPU seconds when the start ended.
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
    history: list[tuple[int, float, float, float, float]] = field(default_factory=list)
    n_failed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    cpu_time_s: float = 0.0
    run_cpu_s: float = math.nan
    shared: SharedCost = field(default_factory=SharedCost)


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
        self.clock = Clock()
        self.n_fevals = 0
        self.n_gevals = 0
        self.n_failed = 0
        self.best = math.inf
        self.best_x: np.ndarray | None = None
        self.first_value: float | None = None  # nllh of the first evaluation (the start point)
        self.last_value = math.inf  # nllh of the latest evaluation
        self.history: list[tuple[int, float, float, float, float]] = []
        #: Fraction of the clock charged to this start (starts sharing one batch, like
        #: Adam's, are each charged an equal share, so the seconds budget is fair).
        self.clock_share = 1.0
        #: This start's share of its method's shared work (never against its budget).
        self.shared = SharedCost()

    def charged(self, at: Stamp | None = None) -> Stamp:
        """Wall and CPU seconds charged to this start since it began (until ``at``)."""
        spent = self.clock.elapsed(at)
        return Stamp(spent.wall * self.clock_share, spent.cpu * self.clock_share)

    def elapsed(self, at: Stamp | None = None) -> float:
        """Wall seconds charged to this start since it began (compilation excluded)."""
        return self.charged(at).wall

    def run_cpu(self, at: Stamp | None = None) -> float:
        """The run's CPU seconds (NaN without a run clock)."""
        clock = self.callbacks.run_clock
        return math.nan if clock is None else clock.cpu(at)

    def record(self, xs: np.ndarray, values: np.ndarray, n_grad: int = 0, at: Stamp | None = None) -> None:
        """Account for evaluations done elsewhere: ``xs`` (n, n_par) with ``values`` (n,).

        ``at``: when they were done (a :func:`pe_bench.clock.now` stamp; default now), for
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
                spent = self.charged(at)
                self.history.append((self.n_fevals, spent.wall, self.best, spent.cpu, self.run_cpu(at)))
        if self.callbacks.on_eval is not None:
            self.callbacks.on_eval(len(values), self.best)
        self.check(at)

    def check(self, at: Stamp | None = None) -> None:
        """Raise StopStart if the target is met, a budget spent or a stop requested."""
        cb, budget = self.callbacks, self.budget
        if cb.target is not None and self.best <= cb.target:
            raise StopStart(STOPPED, f"target {cb.target:g} reached")
        if cb.should_stop is not None and cb.should_stop():
            raise StopStart(STOPPED, "stop requested")
        if budget.max_evals is not None and self.n_fevals >= budget.max_evals:
            raise StopStart(MAX_EVALS, f"{self.n_fevals} evaluations (budget {budget.max_evals})")
        if budget.max_seconds is not None and self.elapsed(at) >= budget.max_seconds:
            raise StopStart(MAX_EVALS, f"{self.elapsed(at):.1f} s (budget {budget.max_seconds:g} s)")
        clock = cb.run_clock
        if clock is not None and clock.cpu_budget is not None and clock.cpu(at) >= clock.cpu_budget:
            raise StopStart(MAX_EVALS, f"run CPU budget {clock.cpu_budget:g} s spent")

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
        """Nllh of every row of ``xs``, counted (non-finite as +inf).

        A batch larger than what is left of the evaluation budget is cut to it: the rows
        that fit are evaluated and recorded, then :class:`StopStart` is raised. A batch of
        more than :data:`BATCH_PIECE` rows is evaluated in pieces of that many, the
        budgets checked after each, so that a time budget is overrun by one piece at most.
        """
        xs = np.atleast_2d(np.asarray(xs, dtype=float))
        if self.budget.max_evals is not None:
            xs = xs[: max(0, self.budget.max_evals - self.n_fevals)]
            if not len(xs):
                self.check()
        out = []
        for k in range(0, len(xs), BATCH_PIECE):
            piece = xs[k : k + BATCH_PIECE]
            values, _ = self.objective.batch(piece)
            values = np.where(np.isfinite(values), values, np.inf)
            out.append(values)
            self.record(piece, values)
        return np.concatenate(out) if out else np.zeros(0)

    def result(self, x_start, nllh_start, status: str, message: str, extra=None) -> StartResult:
        """The StartResult of this start, from what was recorded."""
        x_final = self.best_x if self.best_x is not None else np.asarray(x_start, dtype=float)
        if not math.isfinite(self.best):
            status = FAILED
        spent = self.charged()
        return StartResult(
            start=self.start,
            x_start=np.asarray(x_start, dtype=float),
            nllh_start=math.inf if nllh_start is None else float(nllh_start),
            x_final=np.asarray(x_final, dtype=float),
            nllh_final=self.best,
            n_fevals=self.n_fevals,
            n_gevals=self.n_gevals,
            wall_time_s=spent.wall,
            status=status,
            message=message,
            history=list(self.history),
            extra=dict(extra or {}),
            n_failed=self.n_failed,
            cpu_time_s=spent.cpu,
            run_cpu_s=self.run_cpu(),
            shared=self.shared,
        )


class Method(abc.ABC):
    """An estimation method: one entry point, :meth:`run`, yielding one result per start.

    Subclasses are final dataclasses whose fields are the method's options (they are
    written to the result metadata); ``name`` is the stable key used on the CLI and in
    result files. Under a CPU budget (``budget.n_starts`` may then be None) a method
    asks ``callbacks.more_starts()`` before it begins a start; the trackers stop the
    start that is running when the budget is spent.
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


def latin_hypercube(n: int, lower: np.ndarray, upper: np.ndarray, seed) -> np.ndarray:
    """``n`` Latin-hypercube points within the bounds (scipy.stats.qmc, seeded)."""
    from scipy.stats import qmc

    if n == 0:
        return np.zeros((0, len(lower)))
    unit = qmc.LatinHypercube(d=len(lower), rng=np.random.default_rng(seed)).random(n)
    return qmc.scale(unit, lower, upper)


def start_indices(budget: Budget) -> Iterable[int]:
    """The start indices a run may use: ``range(n_starts)``, or unbounded under a CPU budget."""
    return itertools.count() if budget.n_starts is None else range(budget.n_starts)


#: Latin-hypercube points drawn at a time when a CPU budget leaves the number of starts open.
LHS_WAVE = 64


class StartPoints:
    """Latin-hypercube start points by start index, the same whatever else runs.

    With a number of starts, one Latin hypercube of that many points (seeded by ``seed``);
    without (a CPU-budgeted run), hypercubes of :data:`LHS_WAVE` points, wave ``w`` seeded
    by ``(seed, w)``, drawn as the run reaches them.
    """

    def __init__(self, budget: Budget, lower: np.ndarray, upper: np.ndarray, seed: int):
        self.lower, self.upper, self.seed = np.asarray(lower), np.asarray(upper), seed
        self.n = budget.n_starts
        self._waves: dict[int, np.ndarray] = {}

    def __getitem__(self, i: int) -> np.ndarray:
        if self.n is not None:
            wave, j, size, seed = 0, i, self.n, self.seed
        else:
            wave, j = divmod(i, LHS_WAVE)
            size, seed = LHS_WAVE, (self.seed, wave)
        if wave not in self._waves:
            self._waves[wave] = latin_hypercube(size, self.lower, self.upper, seed)
        return self._waves[wave][j]
