"""Benchmark suites: problems x methods x seeds under one budget, in-process or on Dask.

A suite is a TOML file (see ``benchmarks/ci.toml``)::

    name = "ci"            # optional, default: the file name
    best_known_file = "../../shared/field-benchmark/BEST_KNOWN.tsv"   # optional: bars
                           #   (best_nllh by problem_id) for the problems it lists
    seeds = [0, 1]
    starts = 10            # starts per (problem, method, seed)
    max_evals = 500        # evaluations per start (optional)
    max_seconds = 30       # seconds per start (optional)
    cpu_budget = 130       # CPU seconds per (problem, method, seed) run (optional): starts
                           #   run until it is spent (``starts``, if given, caps them)
    threshold = 0.1        # convergence threshold (nllh above the best known value)
    chunk = 5              # starts per task for methods whose starts are independent
    order = "problem"      # task order: "problem" (each problem's runs together) or "seed"
                           #   (every problem's first seed before any second one: a partial
                           #   sitting gives every problem its first replicates)
    priors = false         # add the parameter tables' objective priors (per problem too)
    hierarchical = false   # scalings, offsets, sigmas solved in closed form (per problem too;
                           #   pe_bench.hierarchical)

    [[problems]]
    source = "../../shared/benchmark-models/Boehm_JProteomeRes2014"  # relative to this file
    best_known = 138.22199693517703    # optional; per-problem threshold also allowed
    best_known_source = "published nominal llh"   # optional: where best_known comes from
    starts = 30                        # optional: this problem's budget, for every method
    max_evals = 1000                   #   (overrides the suite's and the methods' values)
    seeds = [0, 1, 2, 3]               # optional: this problem's seeds (more replicates
                                       #   where one seed's starts rarely converge)

    [[methods]]
    name = "multistart"
    options = { local = "L-BFGS-B" }   # as --option key=value; starts/max_evals/... override

    [[methods]]
    name = "sacess"
    pooled = true   # one start per run with the budget of all the run's starts
                    #   (starts x max_evals evaluations): a global method's natural unit

Work is cut into tasks: one (problem, method, seed) run, or for methods whose starts are
independent (multistart, pso, cmaes) chunks of ``chunk`` starts of it; a CPU-budgeted run
is always one task (its starts share the budget). Every task's results are written by the
caller as they arrive, with the same files and schema as ``pebench run``. Workers keep one
compiled objective per problem and reuse it for every task; compilation is timed apart
from the starts (:mod:`pe_bench.clock`).
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

from .clock import excluded
from .errors import PeBenchError, ProblemSpecError
from .methods import REGISTRY, Budget, Callbacks, StartResult
from .metrics import THRESHOLD, summarise
from .problems.registry import builtin_names, resolve
from .results import (
    FINISHED,
    METHOD,
    PROBLEM,
    RUN_CPU_S,
    START,
    RunWriter,
    load_results,
    read_metadata,
    read_starts,
    run_paths,
)
from .runner import iter_starts, make_method, run_metadata, spent_cpu
from .runtime import THREADS_ENV, configure_jax
from .simulate import SolverOptions

ORDERS = ("problem", "seed")
_SUITE_KEYS = {
    "name",
    "best_known_file",
    "seeds",
    "starts",
    "max_evals",
    "max_seconds",
    "cpu_budget",
    "threshold",
    "chunk",
    "order",
    "priors",
    "hierarchical",
    "problems",
    "methods",
}
_PROBLEM_KEYS = {
    "source",
    "best_known",
    "best_known_source",
    "threshold",
    "priors",
    "hierarchical",
    "starts",
    "max_evals",
    "max_seconds",
    "cpu_budget",
    "solver",
    "seeds",
    "methods",
}
_METHOD_KEYS = {"name", "options", "starts", "max_evals", "max_seconds", "cpu_budget", "pooled"}
#: Starts per run when neither the suite nor a CPU budget says otherwise.
DEFAULT_STARTS = 20


@dataclass(frozen=True)
class ProblemEntry:
    """One problem of a suite: ``source`` as resolve() takes it, ``name`` as results use it."""

    source: str
    name: str
    best_known: float | None = None
    #: Where ``best_known`` comes from (shown by the scoreboard); None: not said.
    best_known_source: str | None = None
    threshold: float = THRESHOLD
    priors: bool = False
    #: Inner scalings, offsets and sigmas solved in closed form (pe_bench.hierarchical).
    hierarchical: bool = False
    #: Budget overrides for this problem (every method): ((field of Budget, value), ...).
    budget: tuple[tuple[str, float], ...] = ()
    #: Solver settings for this problem: ((field of SolverOptions, value), ...), applied
    #: over the run's options (a step budget or tolerances that suit this model).
    solver: tuple[tuple[str, object], ...] = ()
    #: This problem's seeds, where they differ from the suite's (None: the suite's).
    seeds: tuple[int, ...] | None = None
    #: The suite's methods this problem runs (None: all of them).
    methods: tuple[str, ...] | None = None

    def options(self, base: SolverOptions | None = None) -> SolverOptions:
        """The solver settings this problem runs with: ``base`` with its own overrides."""
        base = base or SolverOptions()
        return dataclasses.replace(base, **dict(self.solver)) if self.solver else base


@dataclass(frozen=True)
class MethodEntry:
    """One method of a suite with its options (strings, as ``--option``) and budget.

    ``starts_given``: the suite or the method set ``starts`` (otherwise a CPU budget
    leaves the number of starts open). ``pooled``: the method runs one start per run
    with the evaluations (and seconds) of all the run's starts.
    """

    name: str
    options: tuple[tuple[str, str], ...]
    budget: Budget
    starts_given: bool = True
    pooled: bool = False


@dataclass(frozen=True)
class Suite:
    """A parsed suite file."""

    name: str
    path: Path
    problems: tuple[ProblemEntry, ...]
    methods: tuple[MethodEntry, ...]
    seeds: tuple[int, ...]
    chunk: int
    order: str = "problem"

    @property
    def best_known(self) -> dict[str, float]:
        """Stated best known nllh per problem name."""
        return {p.name: p.best_known for p in self.problems if p.best_known is not None}

    @property
    def best_known_sources(self) -> dict[str, str]:
        """Where each stated best known value comes from (problems that say)."""
        return {p.name: p.best_known_source for p in self.problems if p.best_known_source}

    @property
    def thresholds(self) -> dict[str, float]:
        """Convergence threshold per problem name."""
        return {p.name: p.threshold for p in self.problems}

    def seeds_for(self, problem: ProblemEntry) -> tuple[int, ...]:
        """The seeds ``problem`` runs with: its own list, else the suite's."""
        return self.seeds if problem.seeds is None else problem.seeds

    def methods_for(self, problem: ProblemEntry) -> tuple[MethodEntry, ...]:
        """The methods ``problem`` runs, with its budget overrides applied."""
        chosen = [m for m in self.methods if problem.methods is None or m.name in problem.methods]
        return tuple(method_for(problem, m) for m in chosen)


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
    default_starts = data.get("starts")
    if default_starts is not None:
        default_starts = _number(default_starts, f"{path}: starts", int, 1)
    default_evals = data.get("max_evals")
    default_secs = data.get("max_seconds")
    default_cpu = data.get("cpu_budget")
    if default_cpu is not None:
        _number(default_cpu, f"{path}: cpu_budget", float, 0)
    threshold = _number(data.get("threshold", THRESHOLD), f"{path}: threshold", float, 0)
    chunk = _number(data.get("chunk", 5), f"{path}: chunk", int, 1)
    order = data.get("order", "problem")
    if order not in ORDERS:
        raise ProblemSpecError(f"{path}: order: expected one of {', '.join(ORDERS)}, got {order!r}")
    priors = data.get("priors", False)
    if not isinstance(priors, bool):
        raise ProblemSpecError(f"{path}: 'priors' must be true or false")
    hierarchical = data.get("hierarchical", False)
    if not isinstance(hierarchical, bool):
        raise ProblemSpecError(f"{path}: 'hierarchical' must be true or false")

    field_bars = {}
    if "best_known_file" in data:
        raw = data["best_known_file"]
        if not isinstance(raw, str):
            raise ProblemSpecError(f"{path}: best_known_file: expected a path")
        field_bars = read_best_known_file(path.parent / raw)

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
        source_text = entry.get("best_known_source")
        if source_text is not None and not isinstance(source_text, str):
            raise ProblemSpecError(f"{where}.best_known_source: expected a string")
        if best is None and problem.name in field_bars:
            best, found_text = field_bars[problem.name]
            source_text = source_text or found_text
        use_priors = entry.get("priors", priors)
        if not isinstance(use_priors, bool):
            raise ProblemSpecError(f"{where}.priors: must be true or false")
        use_hier = entry.get("hierarchical", hierarchical)
        if not isinstance(use_hier, bool):
            raise ProblemSpecError(f"{where}.hierarchical: must be true or false")
        problems.append(
            ProblemEntry(
                source=source,
                name=problem.name,
                best_known=None if best is None else _number(best, f"{where}.best_known"),
                best_known_source=source_text,
                threshold=_number(entry.get("threshold", threshold), f"{where}.threshold", float, 0),
                priors=use_priors,
                hierarchical=use_hier,
                budget=_problem_budget(entry, where),
                solver=_problem_solver(entry, where),
                seeds=_seeds(entry["seeds"], where) if "seeds" in entry else None,
                methods=_method_names(entry["methods"], where) if "methods" in entry else None,
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
        cpu = entry.get("cpu_budget", default_cpu)
        starts = entry.get("starts", default_starts)
        budget = Budget(
            n_starts=(
                _number(starts, f"{where}.starts", int, 1)
                if starts is not None
                else (None if cpu is not None else DEFAULT_STARTS)
            ),
            max_evals=None if evals is None else _number(evals, f"{where}.max_evals", int, 1),
            max_seconds=None if secs is None else _number(secs, f"{where}.max_seconds", float, 0),
            cpu_budget=None if cpu is None else _positive(cpu, f"{where}.cpu_budget"),
        )
        pooled = entry.get("pooled", False)
        if not isinstance(pooled, bool):
            raise ProblemSpecError(f"{where}.pooled: must be true or false")
        methods.append(
            MethodEntry(
                name=name, options=options, budget=budget, starts_given=starts is not None, pooled=pooled
            )
        )
    for problem in problems:
        unknown = sorted(set(problem.methods or ()) - seen)
        if unknown:
            raise ProblemSpecError(
                f"{path}: problem '{problem.name}': methods {', '.join(unknown)} "
                "are not in the suite's [[methods]]"
            )
    return Suite(
        name=str(data.get("name", path.stem)),
        path=path.resolve(),
        problems=tuple(problems),
        methods=tuple(methods),
        seeds=seeds,
        chunk=chunk,
        order=order,
    )


def read_best_known_file(path: Path) -> dict[str, tuple[float, str]]:
    """Best known values from a TSV (``problem_id``, ``best_nllh``, optional ``found_by``).

    The format of ``../shared/field-benchmark/BEST_KNOWN.tsv`` (Grein et al. 2026);
    ``#`` lines are comments. Returns per problem id (value, where it comes from).

    Raises:
        ProblemSpecError: missing file, missing columns, or a value that is not a number.
    """
    path = Path(path)
    if not path.is_file():
        raise ProblemSpecError(f"{path}: best_known_file not found")
    table = pd.read_csv(path, sep="\t", comment="#")
    for column in ("problem_id", "best_nllh"):
        if column not in table.columns:
            raise ProblemSpecError(f"{path}: required column '{column}' is missing")
    out = {}
    for _, row in table.iterrows():
        value = pd.to_numeric(row["best_nllh"], errors="coerce")
        if not math.isfinite(value):
            raise ProblemSpecError(f"{path}: problem '{row['problem_id']}': best_nllh {row['best_nllh']!r}")
        found = f" ({row['found_by']})" if "found_by" in table.columns else ""
        out[str(row["problem_id"])] = (float(value), f"{path.name}{found}")
    return out


def _method_names(raw, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(m, str) for m in raw):
        raise ProblemSpecError(f"{where}: 'methods' must be a non-empty list of method names")
    return tuple(raw)


def _positive(value, where: str) -> float:
    value = _number(value, where, float, 0)
    if not value > 0:
        raise ProblemSpecError(f"{where}: must be > 0, got {value!r}")
    return value


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
        ("cpu_budget", "cpu_budget", float, 0),
    ):
        if key in entry:
            value = _number(entry[key], f"{where}.{key}", kind, low)
            if key == "cpu_budget":
                value = _positive(value, f"{where}.{key}")
            out.append((field_name, value))
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
    """The method entry with the problem's budget overrides applied.

    A CPU budget set by the problem leaves the number of starts open unless the problem,
    the method or the suite set ``starts``. A pooled method then gets one start with the
    evaluations and seconds of all of them.
    """
    changes = dict(problem.budget)
    if "cpu_budget" in changes and "n_starts" not in changes and not method.starts_given:
        changes["n_starts"] = None
    budget = dataclasses.replace(method.budget, **changes)
    if method.pooled and budget.n_starts is not None:
        n = budget.n_starts
        budget = dataclasses.replace(
            budget,
            n_starts=1,
            max_evals=None if budget.max_evals is None else budget.max_evals * n,
            max_seconds=None if budget.max_seconds is None else budget.max_seconds * n,
        )
    if budget == method.budget:
        return method
    return dataclasses.replace(method, budget=budget)


@dataclass(frozen=True)
class Task:
    """A unit of work: some starts of one (problem, method, seed) run.

    ``starts``: the start indices to run, or None for a CPU-budgeted run (every start
    not in ``done``, as many as the budget allows). ``spent``: CPU seconds the run had
    spent in the starts before these (resumed runs), or None where those starts run in
    another task: the task then records no run-level CPU seconds.
    """

    problem: ProblemEntry
    method: MethodEntry
    seed: int
    starts: tuple[int, ...] | None
    done: tuple[int, ...] = ()
    spent: float | None = 0.0

    @property
    def key(self) -> str:
        """A readable unique id (also the Dask key)."""
        run = f"{self.problem.name}/{self.method.name}/seed{self.seed}"
        if self.starts is None:
            return f"{run}/cpu{self.method.budget.cpu_budget:g}s"
        return f"{run}/starts{self.starts[0]}-{self.starts[-1]}"

    @property
    def skip(self) -> frozenset[int]:
        """The starts the method must not report (done, or another task's)."""
        if self.starts is None:
            return frozenset(self.done)
        return frozenset(range(self.method.budget.n_starts)) - set(self.starts)


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
        for method in suite.methods_for(problem):
            budget = method.budget
            for seed in suite.seeds_for(problem):
                starts_path, _ = run_paths(out, problem.name, method.name, seed)
                rows: list[dict] = []
                if starts_path.exists():
                    if not resume:
                        raise ProblemSpecError(f"{starts_path}: results exist; use --resume or another --out")
                    rows = read_starts(starts_path)[[START, RUN_CPU_S]].to_dict("records")
                done = {int(r[START]) for r in rows}
                if budget.cpu_budget is not None:
                    if not run_finished(starts_path, budget):
                        tasks.append(Task(problem, method, seed, None, tuple(sorted(done)), spent_cpu(rows)))
                    continue
                todo = [i for i in range(budget.n_starts) if i not in done]
                if not todo:
                    continue
                step = suite.chunk if REGISTRY[method.name].independent_starts else len(todo)
                for k in range(0, len(todo), step):
                    chunk = tuple(todo[k : k + step])
                    # The run's CPU clock goes on from the starts before this chunk when
                    # they are all done (a resumed run), from 0 for the first chunk.
                    before = all(i in done for i in range(chunk[0]))
                    spent = spent_cpu([r for r in rows if r[START] < chunk[0]]) if before else None
                    tasks.append(Task(problem, method, seed, chunk, spent=spent))
    if suite.order == "seed":
        tasks.sort(key=lambda t: suite.seeds_for(t.problem).index(t.seed))  # stable
    return tasks


def run_finished(starts_path: Path, budget: Budget) -> bool:
    """True if ``starts_path`` holds a CPU-budgeted run that ended under ``budget``."""
    if not starts_path.exists():
        return False
    return read_metadata(starts_path).get(FINISHED) == dataclasses.asdict(budget)


def planned_starts(suite: Suite) -> dict[tuple[str, str], int]:
    """Per (problem, method): the starts the suite plans over all its seeds.

    A CPU-budgeted run, whose number of starts its budget decides, counts as one.
    """
    out = {}
    for problem in suite.problems:
        for method in suite.methods_for(problem):
            budget = method.budget
            per_seed = 1 if budget.cpu_budget is not None else budget.n_starts
            out[(problem.name, method.name)] = per_seed * len(suite.seeds_for(problem))
    return out


def missing_starts(suite: Suite, out: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """The starts the suite plans that are not under ``out`` yet.

    Returns:
        Per (problem, method) that lacks some: (starts missing, starts planned), over all
        seeds (a CPU-budgeted run not finished yet counts as one start missing of one);
        empty when the run is complete.
    """
    missing: dict[tuple[str, str], int] = {}
    for task in plan(suite, out, resume=True):
        key = (task.problem.name, task.method.name)
        missing[key] = missing.get(key, 0) + (1 if task.starts is None else len(task.starts))
    return {key: (missing[key], n) for key, n in planned_starts(suite).items() if key in missing}


@functools.cache
def _problem(source: str):
    """Each problem is loaded once per process (suite check, result metadata, objective)."""
    return resolve(source)


#: Compiled objectives a process keeps (most recently used first): each holds a few
#: dozen XLA executables, and every executable maps memory regions. A worker that kept
#: every problem of a suite died at Linux's limit of 65530 maps (vm.max_map_count:
#: "LLVM ERROR: Unable to allocate section memory", benchmarks/field.toml, 2026-12-02).
OBJECTIVE_CACHE = 2
#: Past this many memory maps a process drops its other objectives and JAX's caches.
MAPS_LIMIT = 30_000
_OBJECTIVES: dict[tuple, tuple] = {}


def _memory_maps() -> int:
    """How many memory regions this process maps (0 where /proc is missing)."""
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def _objective(source: str, options: SolverOptions, priors: bool = False, hierarchical: bool = False):
    """One compiled objective per problem and process, reused by every task and method.

    At most :data:`OBJECTIVE_CACHE` are kept; when the process maps more than
    :data:`MAPS_LIMIT` regions, only the one asked for is kept and JAX's caches are
    cleared (the persistent compilation cache makes a recompilation cheap).
    """
    from .objective import Objective

    key = (source, options, priors, hierarchical)
    hit = _OBJECTIVES.pop(key, None)
    if hit is None:
        problem = _problem(source)
        hit = (problem, Objective(problem, options, priors=priors, hierarchical=hierarchical))
    if _memory_maps() > MAPS_LIMIT:
        _OBJECTIVES.clear()
        import gc

        import jax

        jax.clear_caches()
        gc.collect()
    _OBJECTIVES[key] = hit
    while len(_OBJECTIVES) > OBJECTIVE_CACHE:
        del _OBJECTIVES[next(iter(_OBJECTIVES))]
    return hit


def iter_task(task: Task, options: SolverOptions | None = None) -> Iterator[tuple[StartResult, dict | None]]:
    """Run a task here, yielding (result, extra metadata) as each start finishes."""
    configure_jax()
    problem, objective = _objective(
        task.problem.source, task.problem.options(options), task.problem.priors, task.problem.hierarchical
    )
    method = make_method(task.method.name, dict(task.method.options))
    lower, upper = objective.problem.bounds  # the outer parameters' when hierarchical
    label = task.key.rsplit("/", 1)[1]
    budget = task.method.budget
    yield from iter_starts(
        method, objective, lower, upper, budget, task.seed, Callbacks(), task.skip, task.spent, label
    )


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
        self.writer(task).add(res, extra)

    def finish(self, task: Task) -> None:
        """Mark a CPU-budgeted run as ended (its one task returned)."""
        if task.starts is None:
            self.writer(task).finish()

    def writer(self, task: Task) -> RunWriter:
        key = (task.problem.name, task.method.name, task.seed)
        if key not in self.writers:
            problem = _problem(task.problem.source)
            method = make_method(task.method.name, dict(task.method.options))
            options = task.problem.options(self.options)
            inner = None
            if task.problem.hierarchical:
                from .hierarchical import find_inner

                found = find_inner(problem, with_priors=task.problem.priors)
                inner = found if found.n else None
            meta = run_metadata(
                problem, method, task.method.budget, options, priors=task.problem.priors, inner=inner
            )
            meta["suite"] = {"name": self.suite.name, "file": str(self.suite.path)}
            self.writers[key] = RunWriter(self.out, *key, meta, resume=True)
        return self.writers[key]


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
                with excluded():  # writing result files is no method's cost
                    writers.add(task, res, extra)
                results.append(res)
            writers.finish(task)
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
        # Earlier tasks first (the suite's order): a worker then meets one problem after the
        # other and keeps few compiled objectives at a time.
        futures = {
            client.submit(run_task, t, options, key=t.key, pure=False, retries=2, priority=len(tasks) - i): t
            for i, t in enumerate(tasks)
        }
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
            writers.finish(task)
            if on_task_done is not None:
                on_task_done(task, output, None)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return failed


def summarise_suite(suite: Suite, out: Path, confirm: bool = False) -> pd.DataFrame:
    """The metrics summary of the suite's problems and methods found under ``out``.

    The bars: the suite's best known values, or a start below them once re-evaluated at
    tighter tolerances (:func:`confirm_bars`; with ``confirm`` the re-evaluations are
    done now, otherwise those kept under ``out`` are used and other starts below a
    stated value are taken as found).
    """
    starts, history = load_results(out)
    names = {p.name for p in suite.problems}
    methods = {m.name for m in suite.methods}
    keep = starts[PROBLEM].isin(names) & starts[METHOD].isin(methods)
    hkeep = history[PROBLEM].isin(names) & history[METHOD].isin(methods)
    bars = confirm_bars(suite, out) if confirm else read_bars(out)
    confirmed = {k: v for k, v in confirmed_values(bars, suite.best_known).items() if k in names}
    return summarise(starts[keep], history[hkeep], suite.best_known, suite.thresholds, confirmed)


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


# ----------------------------------------------------------------------------- bars

#: Tolerances a start below a problem's stated best value is re-evaluated at before it
#: becomes the bar (SolverOptions' defaults are 1e-10).
CONFIRM_RTOL, CONFIRM_ATOL, CONFIRM_MAX_STEPS = 1e-12, 1e-12, 200_000
#: A found value counts as below the stated one only beyond this (reference-llh tolerance).
BELOW_STATED = 1e-3
#: The file under a results folder that keeps the re-evaluations.
BARS_FILE = "bars.json"


def confirm_bars(suite: Suite, out: Path, options: SolverOptions | None = None) -> dict[str, dict]:
    """Re-evaluate, at tighter tolerances, each problem's best start that beats its stated value.

    A start below the suite's ``best_known`` (by more than :data:`BELOW_STATED`), or any
    best start where nothing is stated, only becomes the problem's bar once its end
    point has been evaluated again at rtol = atol = 1e-12 (and a larger step budget):
    the bar is then that value. Results are kept in ``out/bars.json`` and reused while
    the best start stays the same point.

    Returns:
        Per such problem: ``x`` (estimation scale), ``nllh`` (as the run found it),
        ``nllh_tight`` (re-evaluated; inf if that integration failed), ``method``,
        ``seed``, ``start``, the tolerances.
    """
    out = Path(out)
    starts, _ = load_results(out)
    path = out / BARS_FILE
    cache = json.loads(path.read_text()) if path.is_file() else {}
    bars = {}
    for problem in suite.problems:
        m = starts[(starts[PROBLEM] == problem.name) & starts[METHOD].isin([e.name for e in suite.methods])]
        m = m[m["nllh_final"].map(math.isfinite)]
        if m.empty:
            continue
        best = m.loc[m["nllh_final"].idxmin()]
        stated = problem.best_known
        if stated is not None and not best["nllh_final"] < stated - BELOW_STATED:
            continue
        x = [float(v) for v in best["x_final"]]
        old = cache.get(problem.name)
        if old is not None and old["x"] == x:
            bars[problem.name] = old
            continue
        tight = dataclasses.replace(
            problem.options(options), rtol=CONFIRM_RTOL, atol=CONFIRM_ATOL, max_steps=CONFIRM_MAX_STEPS
        )
        from .objective import Objective

        value, _ = Objective(_problem(problem.source), tight, priors=problem.priors).value(x)
        bars[problem.name] = {
            "x": x,
            "nllh": float(best["nllh_final"]),
            "nllh_tight": float(value),
            "method": str(best[METHOD]),
            "seed": int(best["seed"]),
            "start": int(best["start"]),
            "rtol": CONFIRM_RTOL,
            "atol": CONFIRM_ATOL,
        }
    path.write_text(json.dumps(bars, indent=1, sort_keys=True) + "\n")
    return bars


def read_bars(out: Path) -> dict[str, dict]:
    """The re-evaluations :func:`confirm_bars` kept under ``out`` (empty if none)."""
    path = Path(out) / BARS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def confirmed_values(bars: dict[str, dict], stated: dict[str, float] | None = None) -> dict[str, float]:
    """Per problem, the value a re-checked best start sets the bar to.

    Where its re-evaluation failed, the stated value (or, with none, the value found).
    """
    stated = stated or {}
    out = {}
    for name, bar in bars.items():
        tight = float(bar["nllh_tight"])
        out[name] = tight if math.isfinite(tight) else float(stated.get(name, bar["nllh"]))
    return out
