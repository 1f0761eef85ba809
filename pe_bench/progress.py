"""Rich progress bar for a run: starts done, best so far, evaluations per second."""

from __future__ import annotations

import math
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .methods.base import StartResult


class RunProgress:
    """Context manager giving ``on_start_done`` / ``on_eval`` callbacks; silent if ``quiet``."""

    def __init__(self, total: int | None, label: str, quiet: bool = False, console: Console | None = None):
        self.quiet = quiet
        self.best = math.inf
        self.evals = 0
        self.t0 = time.perf_counter()
        self._last = 0.0
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("best {task.fields[best]}"),
            TextColumn("{task.fields[rate]} evals/s"),
            TimeElapsedColumn(),
            console=console,
            disable=quiet,
        )
        self.task = self.progress.add_task(label, total=total, best="-", rate="-")

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def on_eval(self, n: int, best: float) -> None:
        """Count evaluations; refresh the bar at most 4 times a second."""
        self.evals += n
        self.best = min(self.best, best)
        now = time.perf_counter()
        if now - self._last > 0.25:
            self._last = now
            self._refresh(0)

    def on_resume(self, n_done: int) -> None:
        """Starts an earlier sitting finished: the bar starts there and ends at N/N."""
        self.progress.update(self.task, advance=n_done)

    def on_start_done(self, res: StartResult) -> None:
        """Advance the bar by one start."""
        self.best = min(self.best, res.nllh_final)
        self._refresh(1)

    def _refresh(self, advance: int) -> None:
        rate = self.evals / max(1e-9, time.perf_counter() - self.t0)
        best = f"{self.best:.4f}" if math.isfinite(self.best) else "-"
        self.progress.update(self.task, advance=advance, best=best, rate=f"{rate:.0f}")


class CaseProgress:
    """Progress of a conformance run: cases done and the count of each status so far."""

    def __init__(self, total: int | None, label: str, quiet: bool = False, console: Console | None = None):
        self.counts: dict[str, int] = {}
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=console,
            disable=quiet,
        )
        self.task = self.progress.add_task(label, total=total, counts="")

    def __enter__(self) -> CaseProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def on_result(self, row: dict) -> None:
        """Advance by one case and count its status."""
        self.counts[row["status"]] = self.counts.get(row["status"], 0) + 1
        counts = "  ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        self.progress.update(self.task, advance=1, counts=counts)
