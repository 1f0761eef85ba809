"""Benchmark suites: problems x methods x seeds under one budget, in-process or on Dask.

A suite is a TOML file (see ``benchmarks/ci.toml``)::

    name = "ci"            # optional, default: the file name
    seeds = [0, 1]
    starts = 10            # starts per (problem, method, seed)
    max_evals = 500        # evaluations per start (optional)
    max_seconds = 30       # seconds per start (optional)
    threshold = 0.1        # convergence threshold (nllh above the best known value)
    chunk = 5              # starts per task for methods whose starts are independent
    priors = false         # add the parameter tables' objective priors (per problem too)

    [[problems]]
    source = "../../shared/benchmark-models/Boehm_JProteomeRes2014"  # relative to this file
    best_known = 138.22199693517703    # optional; per-problem threshold also allowed
    starts = 30                        # optional: this problem's budget, for every method
    max_evals = 1000                   #   (overrides the suite's and the methods' values)
    seeds = [0, 1, 2, 3]               # optional: this problem's seeds (more replicates
                                       #   where one seed's starts rarely converge)

    [[methods]]
    name = "multistart"
    options = { local = "L-BFGS-B" }   # as --option key=value; starts/max_evals/... override

Work is cut into tasks: one (problem, method, seed) run, or for methods whose starts are
independent (multistart, pso) chunks of ``chunk`` starts of it. Every task's results are
written by the caller as they arrive, with the same files and schema as ``pebench run``.
Workers keep one compiled objective per problem and reuse it for every task.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import PeBenchError, ProblemSpecError
from .methods import REGISTRY, Budget, Callbacks, StartResult
from .metrics import THRESHOLD, summarise
from .problems.registry import builtin_names, resolve
from .results import METHOD, PROBLEM, RunWriter, load_results, run_paths
from .runner import make_method, method_extra_metadata, run_metadata
from .runtime import THREADS_ENV, configure_jax
from .simulate import SolverOptions

_SUITE_KEYS = {
    "name",
    "seeds",
    "starts",
    "max_evals",
    "max_seconds",
    "threshold",
    "chunk",
    "priors",
    "problems",
    "methods",
}
_PROBLEM_KEYS = {
    "source",
    "best_known",
    "threshold",
    "priors",
    "starts",
    "max_evals",
    "max_seconds",
    "solver",
    "seeds",
}
_METHOD_KEYS = {"name", "options", "starts", "max_evals", "max_seconds"}


@dataclass(frozen=True)
class ProblemEntry:
    """One problem of a suite: ``source`` as resolve() takes it, ``name`` as results use it."""

    source: str
    name: str
    best_known: float | None = None
    threshold: float = THRESHOLD
    priors: bool = False
    #: Budget overrides for this problem (every method): ((field of Budget, value), ...).
    budget: tuple[tuple[str, float], ...] = ()
    #: Solver settings for this problem: ((field of SolverOptions, value), ...), applied
    #: over the run's options (a step budget or tolerances that suit this model).
    solver: tuple[tuple[str, object], ...] = ()
    #: This problem's seeds, where they differ from the suite's (None: the suite's).
    seeds: tuple[int, ...] | None = None

    def options(self, base: SolverOptions | None = None) -> SolverOptions:
        """The solver settings this problem runs with: ``base`` with its own overrides."""
        base = base or SolverOptions()
        return dataclasses.replace(base, **dict(self.solver)) if self.solver else base


@dataclass(frozen=True)
class MethodEntry:
    """One method of a suite with its options (strings, as ``--option``) and budget."""

    name: str
    options: tuple[tuple[str, str], ...]
    budget: Budget


@dataclass(frozen=True)
class Suite:
    """A parsed suite file."""

    name: str
    path: Path
    problems: tuple[ProblemEntry, ...]
    methods: tuple[MethodEntry, ...]
    seeds: tuple[int, ...]
    chunk: int

    @property
    def best_known(self) -> dict[str, float]:
        """Stated best known nllh per problem name."""
        return {p.name: p.best_known for p in self.problems if p.best_known is not None}

    @property
    def thresholds(self) -> dict[str, float]:
        """Convergence threshold per problem name."""
        return {p.name: p.threshold for p in self.problems}

    def seeds_for(self, problem: ProblemEntry) -> tuple[int, ...]:
        """The seeds ``problem`` runs with: its own list, else the suite's."""
        return self.seeds if problem.seeds is None else problem.seeds


def _number(value, where: str, kind=float, minimum=None):
    wrong_kind = kind is int and not isinstance(value, int)
    if isinstance(value, bool) or not isinstance(value, int | float) or wrong_kind:
        expected = "an integer" if kind is int else "a number"
        raise ProblemSpecError(f"{where}: expected {expected}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ProblemSpecError(f"{where}: must be >= {minimum}, got {value!r}")
    return kind(value)


def _unknown(table: dict, allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise ProblemSpecError(
            f"{where}: unknown key(s) {', '.join(extra)} (allowed: {', '.join(sorted(allowed))})"
        )


def _entries(data: dict, key: str, path: Path, allowed: set[str]) -> Iterator[tuple[str, dict]]:
    """The [[key]] tables of a suite with their location, unknown keys rejected."""
    raw = data.get(key)
    if not isinstance(raw, list) or not raw:
        raise ProblemSpecError(f"{path}: no [[{key}]] entries")
    for i, entry in enumerate(raw):
        where = f"{path}: {key}[{i}]"
        _unknown(entry, allowed, where)
        yield where, entry


def _problem_source(raw: str, folder: Path, where: str) -> str:
    if raw in builtin_names():
        return raw
    path = Path(raw)
    if not path.is_absolute():
        path = (folder / path).resolve()
    if path.exists():
        return str(path)
    if "/" in raw or path.suffix:
        raise ProblemSpecError(f"{where}: '{raw}' not found (paths are relative to the suite file)")
    return raw  # a BioModels id or similar: resolve() says what is wrong


def _parse_file(path: Path, missing: str, kind: str, parse, error) -> dict:
    """Read and parse a text file; one-line ProblemSpecErrors for a missing or bad file."""
    if not path.is_file():
        raise ProblemSpecError(f"{path}: {missing}")
    try:
        return parse(path.read_text())
    except error as exc:
        raise ProblemSpecError(f"{path}: not valid {kind}: {exc}") from None


def load_suite(path: Path) -> Suite:
    """Parse and validate a suite file; problems are loaded to check them and learn names.

    Raises:
        ProblemSpecError: missing file, TOML syntax, unknown keys, bad values, unknown
            methods or method options; loading errors of the problems themselves.
    """
    path = Path(path)
    data = _parse_file(path, "suite file not found", "TOML", tomllib.loads, tomllib.TOMLDecodeError)
    _unknown(data, _SUITE_KEYS, str(path))
    seeds = _seeds(data.get("seeds", [0]), str(path))
    default_starts = _number(data.get("starts", 20), f"{path}: starts", int, 1)
    default_evals = data.get("max_evals")
    default_secs = data.get("max_seconds")
    threshold = _number(data.get("threshold", THRESHOLD), f"{path}: threshold", float, 0)
    chunk = _number(data.get("chunk", 5), f"{path}: chunk", int, 1)
    priors = data.get("priors", False)
    if not isinstance(priors, bool):
        raise ProblemSpecError(f"{path}: 'priors' must be true or false")

    problems, names = [], set()
    for where, entry in _entries(data, "problems", path, _PROBLEM_KEYS):
        if not isinstance(entry.get("source"), str):
            raise ProblemSpecError(f"{where}: 'source' (problem name or path) is required")
        source = _problem_source(entry["source"], path.parent, where)
        try:
            problem = _problem(source)
        except PeBenchError as exc:
            raise type(exc)(f"{where}: {exc}") from None
        if not problem.has_data:
            raise ProblemSpecError(f"{where}: problem '{problem.name}' has no measurements: nothing to fit")
        if problem.name in names:
            raise ProblemSpecError(f"{where}: problem '{problem.name}' listed twice")
        names.add(problem.name)
        best = entry.get("best_known")
        use_priors = entry.get("priors", priors)
        if not isinstance(use_priors, bool):
            raise ProblemSpecError(f"{where}.priors: must be true or false")
        problems.append(
            ProblemEntry(
                source=source,
                name=problem.name,
                best_known=None if best is None else _number(best, f"{where}.best_known"),
                threshold=_number(entry.get("threshold", threshold), f"{where}.threshold", float, 0),
                priors=use_priors,
                budget=_problem_budget(entry, where),
                solver=_problem_solver(entry, where),
                seeds=_seeds(entry["seeds"], where) if "seeds" in entry else None,
            )
        )

    methods, seen = [], set()
    for where, entry in _entries(data, "methods", path, _METHOD_KEYS):
        name = entry.get("name")
        if name not in REGISTRY:
            raise ProblemSpecError(f"{where}: unknown method {name!r} (choose from {', '.join(REGISTRY)})")
        if name in seen:
            raise ProblemSpecError(f"{where}: method '{name}' listed twice")
        seen.add(name)
        options = entry.get("options", {})
        if not isinstance(options, dict):
            raise ProblemSpecError(f"{where}.options: expected a table of key = value")
        options = tuple(
            sorted((str(k), str(v).lower() if isinstance(v, bool) else str(v)) for k, v in options.items())
        )
        try:
            make_method(name, dict(options))
        except ProblemSpecError as exc:
            raise ProblemSpecError(f"{where}: {exc}") from None
        evals = entry.get("max_evals", default_evals)
        secs = entry.get("max_seconds", default_secs)
        budget = Budget(
            n_starts=_number(entry.get("starts", default_starts), f"{where}.starts", int, 1),
            max_evals=None if evals is None else _number(evals, f"{where}.max_evals", int, 1),
            max_seconds=None if secs is None else _number(secs, f"{where}.max_seconds", float, 0),
        )
        methods.append(MethodEntry(name=name, options=options, budget=budget))
    return Suite(
        name=str(data.get("name", path.stem)),
        path=path.resolve(),
        problems=tuple(problems),
        methods=tuple(methods),
        seeds=seeds,
        chunk=chunk,
    )


def _seeds(raw, where: str) -> tuple[int, ...]:
    if not isinstance(raw, list) or not raw:
        raise ProblemSpecError(f"{where}: 'seeds' must be a non-empty list of integers")
    seeds = tuple(_number(s, f"{where}: seeds", int, 0) for s in raw)
    if len(set(seeds)) != len(seeds):
        raise ProblemSpecError(f"{where}: 'seeds' lists a seed twice")
    return seeds


def _problem_budget(entry: dict, where: str) -> tuple[tuple[str, float], ...]:
    out = []
    for key, field_name, kind, low in (
        ("starts", "n_starts", int, 1),
        ("max_evals", "max_evals", int, 1),
        ("max_seconds", "max_seconds", float, 0),
    ):
        if key in entry:
            out.append((field_name, _number(entry[key], f"{where}.{key}", kind, low)))
    return tuple(out)


def _select(suite: Suite, kind: str, names: list[str]) -> Suite:
    """The suite with only the named entries of ``kind`` ("problems" or "methods")."""
    entries = getattr(suite, kind)
    known = [e.name for e in entries]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ProblemSpecError(
            f"{suite.path}: --{kind}: not in the suite: {', '.join(unknown) or '(none given)'} "
            f"(its {kind}: {', '.join(known)})"
        )
    return dataclasses.replace(suite, **{kind: tuple(e for e in entries if e.name in names)})


def select_problems(suite: Suite, names: list[str]) -> Suite:
    """The suite restricted to the named problems (same methods, seeds and budgets).

    Raises:
        ProblemSpecError: a name that is not one of the suite's problems, or no name.
    """
    return _select(suite, "problems", names)


def select_methods(suite: Suite, names: list[str]) -> Suite:
    """The suite restricted to the named methods (same problems, seeds and budgets).

    Raises:
        ProblemSpecError: a name that is not one of the suite's methods, or no name.
    """
    return _select(suite, "methods", names)


def _problem_solver(entry: dict, where: str) -> tuple[tuple[str, object], ...]:
    """A problem's ``solver = { key = value, ... }`` table, checked against SolverOptions."""
    table = entry.get("solver", {})
    if not isinstance(table, dict):
        raise ProblemSpecError(f"{where}.solver: expected a table of SolverOptions settings")
    fields = {f.name: f for f in dataclasses.fields(SolverOptions)}
    _unknown(table, set(fields), f"{where}.solver")
    out = []
    for key, value in sorted(table.items()):
        default = getattr(SolverOptions(), key)
        if isinstance(default, str):
            if not isinstance(value, str):
                raise ProblemSpecError(f"{where}.solver.{key}: expected a string, got {value!r}")
        else:
            kind = int if isinstance(default, int) else float
            value = _number(value, f"{where}.solver.{key}", kind, 1 if kind is int else 0)
        out.append((key, value))
    try:
        SolverOptions(**dict(out))
    except ValueError as exc:
        raise ProblemSpecError(f"{where}.solver: {exc}") from None
    return tuple(out)


def method_for(problem: ProblemEntry, method: MethodEntry) -> MethodEntry:
    """The method entry with the problem's budget overrides applied."""
    if not problem.budget:
        return method
    return dataclasses.replace(method, budget=dataclasses.replace(method.budget, **dict(problem.budget)))


@dataclass(frozen=True)
class Task:
    """A unit of work: some starts of one (problem, method, seed) run."""

    problem: ProblemEntry
    method: MethodEntry
    seed: int
    starts: tuple[int, ...]

    @property
    def key(self) -> str:
        """A readable unique id (also the Dask key)."""
        first, last = self.starts[0], self.starts[-1]
        return f"{self.problem.name}/{self.method.name}/seed{self.seed}/starts{first}-{last}"


@dataclass
class TaskOutput:
    """What a task sends back: its finished starts and the method's extra metadata."""

    results: list[StartResult]
    extra_metadata: dict | None = None
    seconds: float = 0.0


def plan(suite: Suite, out: Path, resume: bool) -> list[Task]:
    """The tasks still to run (starts already in result files are left out with ``resume``).

    Raises:
        ProblemSpecError: result files exist and ``resume`` is not set.
    """
    tasks = []
    for problem in suite.problems:
        for method in (method_for(problem, m) for m in suite.methods):
            for seed in suite.seeds_for(problem):
                starts_path, _ = run_paths(out, problem.name, method.name, seed)
                done: set[int] = set()
                if starts_path.exists():
                    if not resume:
                        raise ProblemSpecError(f"{starts_path}: results exist; use --resume or another --out")
                    done = set(pd.read_parquet(starts_path, columns=["start"])["start"].astype(int))
                todo = [i for i in range(method.budget.n_starts) if i not in done]
                if not todo:
                    continue
                step = suite.chunk if REGISTRY[method.name].independent_starts else len(todo)
                for k in range(0, len(todo), step):
                    tasks.append(Task(problem, method, seed, tuple(todo[k : k + step])))
    return tasks


def planned_starts(suite: Suite) -> dict[tuple[str, str], int]:
    """Per (problem, method): the starts the suite plans over all its seeds."""
    return {
        (problem.name, method.name): method_for(problem, method).budget.n_starts
        * len(suite.seeds_for(problem))
        for problem in suite.problems
        for method in suite.methods
    }


def missing_starts(suite: Suite, out: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """The starts the suite plans that are not under ``out`` yet.

    Returns:
        Per (problem, method) that lacks some: (starts missing, starts planned), over all
        seeds; empty when the run is complete.
    """
    missing: dict[tuple[str, str], int] = {}
    for task in plan(suite, out, resume=True):
        key = (task.problem.name, task.method.name)
        missing[key] = missing.get(key, 0) + len(task.starts)
    return {key: (missing[key], n) for key, n in planned_starts(suite).items() if key in missing}


@functools.cache
def _problem(source: str):
    """Each problem is loaded once per process (suite check, result metadata, objective)."""
    return resolve(source)


@functools.cache
def _objective(source: str, options: SolverOptions, priors: bool = False):
    """One compiled objective per problem and process, reused by every task and method."""
    from .objective import Objective

    problem = _problem(source)
    return problem, Objective(problem, options, priors=priors)


def iter_task(task: Task, options: SolverOptions | None = None) -> Iterator[tuple[StartResult, dict | None]]:
    """Run a task here, yielding (result, extra metadata) as each start finishes."""
    configure_jax()
    problem, objective = _objective(task.problem.source, task.problem.options(options), task.problem.priors)
    method = make_method(task.method.name, dict(task.method.options))
    lower, upper = problem.bounds
    skip = frozenset(range(task.method.budget.n_starts)) - set(task.starts)
    for res in method.run(objective, lower, upper, task.method.budget, task.seed, Callbacks(), skip=skip):
        yield res, method_extra_metadata(method)


def run_task(task: Task, options: SolverOptions | None = None) -> TaskOutput:
    """Run a task to the end (what a Dask worker executes)."""
    t0 = time.perf_counter()
    results, extra = [], None
    for res, meta in iter_task(task, options):
        results.append(res)
        extra = meta
    return TaskOutput(results, extra, time.perf_counter() - t0)


@dataclass
class BenchRun:
    """The outcome of :func:`run_suite`."""

    summary: pd.DataFrame
    wall_seconds: float
    n_tasks: int
    failed_tasks: list[str] = field(default_factory=list)


class _Writers:
    """One RunWriter per (problem, method, seed), created on first use."""

    def __init__(self, suite: Suite, out: Path, options: SolverOptions):
        self.suite, self.out, self.options = suite, out, options
        self.writers: dict[tuple[str, str, int], RunWriter] = {}

    def add(self, task: Task, res: StartResult, extra: dict | None) -> None:
        key = (task.problem.name, task.method.name, task.seed)
        if key not in self.writers:
            problem = _problem(task.problem.source)
            method = make_method(task.method.name, dict(task.method.options))
            options = task.problem.options(self.options)
            meta = run_metadata(problem, method, task.method.budget, options, priors=task.problem.priors)
            meta["suite"] = {"name": self.suite.name, "file": str(self.suite.path)}
            self.writers[key] = RunWriter(self.out, *key, meta, resume=True)
        self.writers[key].add(res, extra)


def run_suite(
    suite: Suite,
    out: Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    options: SolverOptions | None = None,
    on_task_done: Callable[[Task, TaskOutput | None, str | None], None] | None = None,
) -> BenchRun:
    """Run every task of ``suite`` and write the results under ``out``.

    In-process unless ``workers`` (a LocalCluster of that many single-threaded worker
    processes on 127.0.0.1) or ``scheduler`` (the address of a running Dask scheduler;
    the problem files must be readable at the same paths on the workers) is given.
    With Dask, results are written here as tasks finish; a task whose worker dies is
    rescheduled by Dask (up to ``distributed.scheduler.allowed-failures`` times).

    Returns:
        The summary over every result of the suite's problems and methods under ``out``.

    Raises:
        ProblemSpecError: results exist without ``resume``; both workers and scheduler.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ProblemSpecError(f"{out}: output path exists and is not a folder")
    if workers is not None and scheduler is not None:
        raise ProblemSpecError("give --workers or --scheduler, not both")
    if workers is not None and workers < 1:
        raise ProblemSpecError(f"--workers must be >= 1, got {workers}")
    options = options or SolverOptions()
    tasks = plan(suite, out, resume)
    writers = _Writers(suite, out, options)
    failed: list[str] = []
    t0 = time.perf_counter()
    if workers is None and scheduler is None:
        for task in tasks:
            t_task = time.perf_counter()
            results = []
            for res, extra in iter_task(task, options):
                writers.add(task, res, extra)
                results.append(res)
            if on_task_done is not None:
                on_task_done(task, TaskOutput(results, None, time.perf_counter() - t_task), None)
    else:
        failed = _run_dask(tasks, writers, options, workers, scheduler, on_task_done)
    wall = time.perf_counter() - t0
    return BenchRun(summarise_suite(suite, out), wall, len(tasks), failed)


#: How often a task whose result the client lost (not the task's own error) is resubmitted.
MAX_RESUBMITS = 2


def _run_dask(tasks, writers, options, workers, scheduler, on_task_done) -> list[str]:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if workers is not None:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",  # a free port: never collides with another cluster's 8787
            env={
                "JAX_PLATFORMS": "cpu",
                "OMP_NUM_THREADS": "1",
                # The workers share the cores: each runs its batches on cores / workers
                # threads (one on this 2-core machine with 2 workers) instead of each
                # taking every core (runtime.compute_threads).
                THREADS_ENV: str(max(1, (os.cpu_count() or 1) // workers)),
            },
        )
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=30)
        except OSError as exc:
            raise ProblemSpecError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
    failed = []
    resubmitted: dict[str, int] = {}
    try:
        futures = {client.submit(run_task, t, options, key=t.key, pure=False, retries=2): t for t in tasks}
        pending = as_completed(futures)
        for fut in pending:
            task = futures.pop(fut)
            try:
                output = fut.result()
            except Exception as exc:
                if fut.status != "error" and resubmitted.get(task.key, 0) < MAX_RESUBMITS:
                    # Not the task's own error: the client lost the result (a worker died
                    # between finishing and the gather). Run it again under a new key.
                    n = resubmitted[task.key] = resubmitted.get(task.key, 0) + 1
                    again = client.submit(
                        run_task, task, options, key=f"{task.key}#{n}", pure=False, retries=2
                    )
                    futures[again] = task
                    pending.add(again)
                    continue
                failed.append(f"{task.key}: {type(exc).__name__}: {exc}")
                if on_task_done is not None:
                    on_task_done(task, None, str(exc))
                continue
            for res in output.results:
                writers.add(task, res, output.extra_metadata)
            if on_task_done is not None:
                on_task_done(task, output, None)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return failed


def summarise_suite(suite: Suite, out: Path) -> pd.DataFrame:
    """The metrics summary of the suite's problems and methods found under ``out``."""
    starts, history = load_results(out)
    names = {p.name for p in suite.problems}
    methods = {m.name for m in suite.methods}
    keep = starts[PROBLEM].isin(names) & starts[METHOD].isin(methods)
    hkeep = history[PROBLEM].isin(names) & history[METHOD].isin(methods)
    return summarise(starts[keep], history[hkeep], suite.best_known, suite.thresholds)


# ----------------------------------------------------------------------------- baselines

#: Default tolerances written by ``--update-baseline``: best nllh may be worse by 0.1 where
#: some start converged, by max(0.1, 1 % of |best|) where none did; the converged fraction
#: may drop by 0.25.
TOL_NLLH_ABS, TOL_NLLH_REL, TOL_FRAC = 0.1, 0.01, 0.25


def read_baseline(path: Path) -> dict[str, dict]:
    """A baseline file: ``{"<problem>/<method>": {best_nllh, frac_converged, tol_nllh, tol_frac}}``.

    Raises:
        ProblemSpecError: missing file, bad JSON, or an entry without the four numbers.
    """
    path = Path(path)
    missing = "baseline file not found (create it with --update-baseline)"
    data = _parse_file(path, missing, "JSON", json.loads, json.JSONDecodeError)
    if not isinstance(data, dict):
        raise ProblemSpecError(f"{path}: expected an object keyed by '<problem>/<method>'")
    for key, entry in data.items():
        needed = ("best_nllh", "frac_converged", "tol_nllh", "tol_frac")
        if not isinstance(entry, dict) or any(not isinstance(entry.get(k), int | float) for k in needed):
            raise ProblemSpecError(f"{path}: entry '{key}' needs numbers {', '.join(needed)}")
    return data


def check_baseline(summary: pd.DataFrame, baseline: dict[str, dict]) -> list[str]:
    """Readable lines for every (problem, method) that regressed against ``baseline``.

    A regression: best nllh worse than the baseline's by more than ``tol_nllh``, converged
    fraction lower by more than ``tol_frac``, or an entry of the baseline without results.
    """
    rows = {f"{r[PROBLEM]}/{r[METHOD]}": r for _, r in summary.iterrows()}
    problems = []
    for key, base in sorted(baseline.items()):
        if key not in rows:
            problems.append(f"{key}: no results (the baseline has it)")
            continue
        row = rows[key]
        best, frac = float(row["best_nllh"]), float(row["frac_converged"])
        if not best <= base["best_nllh"] + base["tol_nllh"]:
            problems.append(
                f"{key}: best nllh {best:.4f} is worse than the baseline {base['best_nllh']:.4f} "
                f"by {best - base['best_nllh']:.4g} (tolerance {base['tol_nllh']:g})"
            )
        if frac < base["frac_converged"] - base["tol_frac"] - 1e-12:
            problems.append(
                f"{key}: fraction converged {frac:.2f} dropped from {base['frac_converged']:.2f} "
                f"(tolerance {base['tol_frac']:g})"
            )
    return problems


def baseline_from(summary: pd.DataFrame, old: dict[str, dict] | None = None) -> dict[str, dict]:
    """A baseline from a summary; tolerances of entries already in ``old`` are kept."""
    old = old or {}
    out = {}
    for _, r in summary.iterrows():
        key = f"{r[PROBLEM]}/{r[METHOD]}"
        best = float(r["best_nllh"])
        entry = {"best_nllh": best, "frac_converged": float(r["frac_converged"])}
        if key in old:
            entry |= {"tol_nllh": old[key]["tol_nllh"], "tol_frac": old[key]["tol_frac"]}
        else:
            # Converged: the best is the best known value; hold it to the threshold. Otherwise the
            # best is wherever the budget ran out, which moves with rounding on another CPU.
            converged = float(r["frac_converged"]) > 0 or not math.isfinite(best)
            tol = TOL_NLLH_ABS if converged else max(TOL_NLLH_ABS, TOL_NLLH_REL * abs(best))
            entry |= {"tol_nllh": round(tol, 4), "tol_frac": TOL_FRAC}
        out[key] = entry
    return out


def write_baseline(path: Path, baseline: dict[str, dict]) -> Path:
    """Write a baseline file atomically (sorted keys, one entry per line block)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(json.dumps(baseline, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path
