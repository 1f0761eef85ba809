"""The one clock every method is measured by: wall and CPU seconds, compilation excluded.

Tracing and compiling a JAX function is paid once per objective (and per input shape),
not by the start that happens to call it first. Every compilation pe_bench triggers goes
through :class:`AotFunction` (``jitted.lower(...).compile()``, timed inside
:func:`compiling`), and the process keeps a running total of the wall and CPU seconds
spent there. A :class:`Clock` subtracts what was excluded since it started, so a start's
seconds never hold a compilation, whichever start triggers it.

CPU seconds are the process's CPU time (``time.process_time``: all threads, user and
system), the unit of the field's time budgets (Grein et al. 2026 give each run a CPU
budget of cores x wall seconds). A :class:`RunClock` adds up the CPU seconds of a whole
run (every start and the method's shared work) for ``--cpu-budget``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import jax
import numpy as np


@dataclass(frozen=True)
class Stamp:
    """A moment (or a duration): wall-clock seconds and process CPU seconds."""

    wall: float
    cpu: float

    def __sub__(self, other: Stamp) -> Stamp:
        return Stamp(self.wall - other.wall, self.cpu - other.cpu)

    def __add__(self, other: Stamp) -> Stamp:
        return Stamp(self.wall + other.wall, self.cpu + other.cpu)


ZERO = Stamp(0.0, 0.0)


def now() -> Stamp:
    """The current wall (``perf_counter``) and process CPU (``process_time``) times."""
    return Stamp(time.perf_counter(), time.process_time())


class _Tally:
    """Process-wide seconds spent compiling, and all seconds excluded from method clocks."""

    def __init__(self):
        self.lock = threading.RLock()
        self.compile = ZERO
        self.excluded = ZERO
        self.local = threading.local()


_TALLY = _Tally()


def compile_totals() -> Stamp:
    """Wall and CPU seconds this process has spent tracing and compiling so far."""
    with _TALLY.lock:
        return _TALLY.compile


def excluded_totals() -> Stamp:
    """Seconds excluded from every method clock so far (compilation and :func:`excluded`)."""
    with _TALLY.lock:
        return _TALLY.excluded


@contextlib.contextmanager
def _exclude(compile_: bool) -> Iterator[None]:
    depth = getattr(_TALLY.local, "depth", 0)
    _TALLY.local.depth = depth + 1
    t0 = now()
    try:
        yield
    finally:
        _TALLY.local.depth = depth
        if depth == 0:  # nested exclusions are counted once, by the outermost
            spent = now() - t0
            with _TALLY.lock:
                _TALLY.excluded = _TALLY.excluded + spent
                if compile_:
                    _TALLY.compile = _TALLY.compile + spent


def compiling() -> contextlib.AbstractContextManager[None]:
    """Time a compilation: excluded from every clock and added to :func:`compile_totals`."""
    return _exclude(compile_=True)


def excluded() -> contextlib.AbstractContextManager[None]:
    """Time work no method is charged for (writing result files, replaying resumed starts)."""
    return _exclude(compile_=False)


#: Compilations are serialised: two overlapping ones would be subtracted twice.
_COMPILE_LOCK = threading.Lock()


def _leaf_signature(a) -> tuple:
    dtype = a.dtype if hasattr(a, "dtype") else np.result_type(a)
    return (np.shape(a), np.dtype(dtype).str, bool(getattr(a, "weak_type", False)))


def _signature(args) -> tuple:
    leaves, tree = jax.tree_util.tree_flatten(args)
    return (tree, tuple(_leaf_signature(a) for a in leaves))


class AotFunction:
    """A jitted function compiled ahead of time once per input signature, the compile timed.

    Calling it with arguments of a new shape or dtype lowers and compiles
    (``jitted.lower(*args).compile()``) inside :func:`compiling`; later calls with the same
    signature run the stored executable. ``static_argnums`` are passed to ``lower`` and
    left out of the executable's call, as JAX's AOT interface wants.
    """

    def __init__(self, jitted: Callable, static_argnums: tuple[int, ...] = ()):
        self.jitted = jitted
        self.static_argnums = tuple(static_argnums)
        self._compiled: dict = {}

    def _split(self, args):
        static = tuple(args[i] for i in self.static_argnums)
        dynamic = tuple(a for i, a in enumerate(args) if i not in self.static_argnums)
        return static, dynamic

    def compiled(self, *args):
        """The executable for ``args``' signature (compiled now if new)."""
        static, dynamic = self._split(args)
        key = (static, _signature(dynamic))
        fn = self._compiled.get(key)
        if fn is None:
            with _COMPILE_LOCK:
                fn = self._compiled.get(key)
                if fn is None:
                    with compiling():
                        fn = self.jitted.lower(*args).compile()
                    self._compiled[key] = fn
        return fn

    @property
    def n_compiled(self) -> int:
        """How many signatures have been compiled."""
        return len(self._compiled)

    def __call__(self, *args):
        """Run the executable for ``args``' signature (compiling it first if new)."""
        _, dynamic = self._split(args)
        return self.compiled(*args)(*dynamic)


class Clock:
    """Seconds since it started, less everything excluded meanwhile (compilations, I/O)."""

    def __init__(self):
        self.t0 = now()
        self.x0 = excluded_totals()

    def elapsed(self, at: Stamp | None = None) -> Stamp:
        """Wall and CPU seconds charged since the start (until ``at``, a :func:`now` stamp)."""
        t = now() if at is None else at
        return (t - self.t0) - (excluded_totals() - self.x0)


class RunClock:
    """The CPU seconds of a whole run: every start and the method's shared work.

    Args:
        cpu_budget: the run's CPU-second budget (None: no limit).
        spent: CPU seconds already spent before this process took the run over
            (``--resume``).
    """

    def __init__(self, cpu_budget: float | None = None, spent: float = 0.0):
        self.cpu_budget = cpu_budget
        self.spent_before = float(spent)
        self.clock = Clock()

    def cpu(self, at: Stamp | None = None) -> float:
        """CPU seconds the run has spent (until ``at``)."""
        return self.spent_before + self.clock.elapsed(at).cpu

    def exhausted(self) -> bool:
        """True once the CPU budget is spent."""
        return self.cpu_budget is not None and self.cpu() >= self.cpu_budget
