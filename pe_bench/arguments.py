"""Checks of command-line arguments that need no problem and no JAX: they run first.

A wrong ``--method``, budget or output folder is refused before anything is loaded or
compiled (importing the methods alone takes seconds), and before any work is done
that could not be written.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from .errors import ProblemSpecError

#: The registered methods' keys (``pe_bench.methods.REGISTRY``; a test keeps them equal).
METHODS = ("multistart", "pso", "adam", "cvae", "cmaes", "sacess")


def check_method(name: str) -> None:
    """Refuse a method name that is not registered."""
    if name not in METHODS:
        raise ProblemSpecError(f"unknown method '{name}' (choose from {', '.join(METHODS)})")


def check_budget_values(
    n_starts: int | None, max_evals: int | None, max_seconds: float | None, cpu_budget: float | None
) -> None:
    """Refuse a budget no method can run under (one line naming the option)."""
    if n_starts is not None and n_starts < 1:
        raise ProblemSpecError(f"--starts must be >= 1, got {n_starts}")
    if max_evals is not None and max_evals < 1:
        raise ProblemSpecError(f"--max-evals must be >= 1, got {max_evals}")
    for option, value in (("--max-seconds", max_seconds), ("--cpu-budget", cpu_budget)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise ProblemSpecError(f"{option} must be a positive number of seconds, got {value}")


def check_writable_folder(path: Path, option: str = "--out") -> None:
    """``path`` is a folder that exists and can be written, or can be created.

    Raises:
        ProblemSpecError: ``path`` is a file, or it (or the nearest existing folder above
            it, where it would be created) cannot be written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ProblemSpecError(f"{option} {path}: is a file, not a folder")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ProblemSpecError(f"{option} {path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ProblemSpecError(f"{option} {path}: {probe} is not writable")


def check_writable_file(path: Path, option: str = "--out") -> None:
    """``path`` is not a folder, and its folder exists and can be written."""
    path = Path(path)
    if path.is_dir():
        raise ProblemSpecError(f"{option} {path}: is a folder, not a file")
    if not path.parent.is_dir():
        raise ProblemSpecError(f"{option} {path}: folder {path.parent} does not exist")
    check_writable_folder(path.parent, option)
