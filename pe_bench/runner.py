"""Run one estimation method on one problem and stream its starts into result files."""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import math
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .arguments import check_budget_values
from .clock import RunClock, compile_totals, excluded
from .errors import ProblemSpecError
from .methods import REGISTRY, Budget, Callbacks, Method, StartResult
from .objective import Objective
from .problems.base import Problem
from .results import RunWriter, run_paths
from .runtime import device_info
from .simulate import SolverOptions


def parse_options(items: list[str]) -> dict[str, str]:
    """``["key=value", ...]`` -> dict (``--option``)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ProblemSpecError(f"--option expects key=value, got '{item}'")
        out[key.strip()] = value.strip()
    return out


def option_fields(cls: type[Method]) -> dict[str, dataclasses.Field]:
    """The options of a method class: its init fields, less what it records (cVAE's ``round_stats``)."""
    return {f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "round_stats"}


def make_method(name: str, options: dict[str, str] | None = None) -> Method:
    """Instantiate a registered method from string options (``--option key=value``).

    Raises:
        ProblemSpecError: unknown method or option, or a value of the wrong type.
    """
    if name not in REGISTRY:
        raise ProblemSpecError(f"unknown method '{name}' (choose from {', '.join(REGISTRY)})")
    cls = REGISTRY[name]
    fields = option_fields(cls)
    kwargs = {}
    for key, raw in (options or {}).items():
        if key not in fields:
            raise ProblemSpecError(f"method '{name}' has no option '{key}' (options: {', '.join(fields)})")
        default = fields[key].default
        try:
            if isinstance(default, bool):
                kwargs[key] = raw.lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                kwargs[key] = int(raw)
            elif isinstance(default, float):
                kwargs[key] = float(raw)
            elif default is None:
                kwargs[key] = int(raw) if raw.lstrip("-").isdigit() else float(raw)
            else:
                kwargs[key] = raw
        except ValueError as exc:
            raise ProblemSpecError(f"option '{key}' of method '{name}': bad value '{raw}'") from exc
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ProblemSpecError(f"method '{name}': {exc}") from exc


def _git(*args: str) -> str:
    """Output of a git command in pe_bench's folder ("" if git or the repository is missing)."""
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent, check=False
        )
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("pe_bench", "jax", "diffrax", "optax", "equinox", "scipy", "pyswarms", "petab"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "missing"
    sha = _git("rev-parse", "--short", "HEAD")
    if sha:
        sha += "-dirty" if _git("status", "--porcelain", "--untracked-files=no") else ""
    out["git"] = sha or "unknown"
    return out


def run_metadata(
    problem: Problem,
    method: Method,
    budget: Budget,
    options: SolverOptions,
    target: float | None = None,
    priors: bool = False,
    inner=None,
) -> dict:
    """Provenance stored in every result file: command, versions, solver, options, budget.

    ``objective`` says what the nllh column holds: the negative log-likelihood, or with
    ``priors`` the negative log-posterior (nllh plus the parameter table's priors).
    ``hierarchical`` lists the inner parameters (:mod:`pe_bench.hierarchical`) of a
    hierarchical run (``inner``), None otherwise; rows record every parameter either way.
    """
    with_priors = priors and problem.priors is not None
    return {
        "objective": "nllh + negative log-prior" if with_priors else "nllh",
        "device": device_info(),
        "priors": with_priors,
        "command": " ".join(sys.argv),
        "versions": dict(_versions()),
        "solver": options.as_dict(),
        "method_options": {f.name: getattr(method, f.name) for f in dataclasses.fields(method) if f.repr},
        "budget": dataclasses.asdict(budget),
        "parameter_ids": problem.x_ids,
        "parameter_scale": problem.x_scale,
        "hierarchical": None if inner is None else {"inner": list(inner.ids), "kinds": list(inner.kinds)},
        "target": target,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def method_extra_metadata(method: Method) -> dict | None:
    """What a method learned while running that belongs in the metadata (cvae's rounds)."""
    stats = getattr(method, "round_stats", None)
    return {"round_stats": list(stats)} if stats is not None else None


def check_budget(budget: Budget) -> None:
    """Raise a one-line ProblemSpecError for a budget no method can run under."""
    check_budget_values(budget.n_starts, budget.max_evals, budget.max_seconds, budget.cpu_budget)


def iter_starts(
    method: Method,
    objective: Objective,
    lower,
    upper,
    budget: Budget,
    seed: int,
    callbacks: Callbacks,
    skip: frozenset[int] = frozenset(),
    spent: float | None = 0.0,
    label: str = "run",
):
    """Run ``method`` on ``objective`` with the fair clock; yield (result, extra metadata).

    The objective's entry points are compiled first (timed apart: no start is charged
    for them), the run gets a :class:`~pe_bench.clock.RunClock` (its CPU budget, and
    ``spent`` CPU seconds already spent by the part of the run that is done; None: no
    run-level clock, for a chunk of a run whose other starts run elsewhere), and every
    result comes with the method's extra metadata plus ``compilation``: the seconds this
    process spent compiling while running it, under ``label``.
    """
    t0 = compile_totals()
    warm_up = getattr(objective, "warm_up", None)
    if warm_up is not None:
        warm_up()
    if spent is not None:
        callbacks = dataclasses.replace(callbacks, run_clock=RunClock(budget.cpu_budget, spent))
    expand = getattr(objective, "inner", None) is not None
    for res in method.run(objective, lower, upper, budget, seed, callbacks, skip=skip):
        if expand:  # rows record every parameter; recovering the inner ones is bookkeeping
            with excluded():
                res = dataclasses.replace(
                    res, x_start=objective.full_x(res.x_start), x_final=objective.full_x(res.x_final)
                )
        paid = compile_totals() - t0
        extra = (method_extra_metadata(method) or {}) | {
            "compilation": {label: {"wall_s": paid.wall, "cpu_s": paid.cpu}}
        }
        yield res, extra


def spent_cpu(rows: list[dict]) -> float:
    """CPU seconds a run had spent when its last recorded start ended (0 for none)."""
    values = [r.get("run_cpu_s") for r in rows]
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return max(values, default=0.0)


def run_method(
    problem: Problem,
    method: Method,
    budget: Budget,
    seed: int,
    out: Path,
    *,
    target: float | None = None,
    resume: bool = False,
    options: SolverOptions | None = None,
    on_start_done: Callable[[StartResult], None] | None = None,
    on_eval: Callable[[int, float], None] | None = None,
    on_resume: Callable[[int], None] | None = None,
    objective: Objective | None = None,
    priors: bool = False,
    hierarchical: bool = False,
) -> Path:
    """Run ``method`` and write its results under ``out``; returns the starts file.

    Rows are written as starts finish; a KeyboardInterrupt stops the run after the files
    hold every finished start (the interrupt is then re-raised). ``on_resume`` is told
    how many starts an earlier sitting finished (``resume``). With ``hierarchical`` the
    methods see only the outer parameters (:mod:`pe_bench.hierarchical`).

    Raises:
        ProblemSpecError: bad budget, output path, or results present without ``resume``.
    """
    check_budget(budget)
    if not problem.has_data:
        raise ProblemSpecError(f"problem '{problem.name}' has no measurements: nothing to fit")
    existing = run_paths(out, problem.name, method.name, seed)[0]
    if existing.exists() and not resume:  # before compiling anything
        raise ProblemSpecError(f"{existing}: results exist; use --resume to continue or another --out")
    objective = objective or Objective(
        problem, options or SolverOptions(), priors=priors, hierarchical=hierarchical
    )
    metadata = run_metadata(
        problem, method, budget, objective.options, target, priors=objective.priors, inner=objective.inner
    )
    writer = RunWriter(out, problem.name, method.name, seed, metadata, resume)
    if on_resume is not None and writer.done:
        on_resume(len(writer.done))
    if writer.finished:
        return writer.starts_path
    callbacks = Callbacks(target=target, on_eval=on_eval)
    lower, upper = objective.problem.bounds  # the outer parameters' when hierarchical
    results = iter_starts(
        method, objective, lower, upper, budget, seed, callbacks, writer.done, spent_cpu(writer.rows)
    )
    for res, extra in results:
        with excluded():  # writing result files is no method's cost
            writer.add(res, extra)
        if on_start_done is not None:
            on_start_done(res)
    writer.finish()
    return writer.starts_path
