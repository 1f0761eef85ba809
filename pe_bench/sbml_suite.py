"""The SBML Test Suite's semantic cases against pe_bench's simulator.

Each case folder (``NNNNN/``) holds the model (``NNNNN-sbml-lXvY.xml``, the highest
level/version given), the settings (start, duration, steps, the variables to report,
which are amounts and which concentrations, absolute and relative tolerance), the
expected results (``NNNNN-results.csv``) and a description with its tags
(``NNNNN-model.m``). A case is simulated through the same path as ``pebench simulate``
(:func:`pe_bench.problems.sbml_only.load_sbml_problem` with the settings' variables as
outputs, :func:`pe_bench.simulate.make_simulator`) and compared point by point:
``|sim - expected| <= absolute + relative * |expected|`` (NaN matches NaN, infinities
match by sign).

Status of a case:

- ``pass``: simulated and within tolerance everywhere;
- ``fail``: simulated, numbers wrong somewhere;
- ``unsupported``: pe_bench refused the model with its one-line "not supported yet" error
  (or the case is not a time course: flux balance analysis);
- ``error``: anything else (an integration failure, an exception, a timeout).

``max_error`` is the largest ``|sim - expected| / (absolute + relative * |expected|)``:
a case passes when it is at most 1.
"""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.connection
import os
import re
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import PeBenchError, ProblemSpecError, UnsupportedFeatureError

#: Columns of the report, in order.
COLUMNS = ["case", "status", "max_error", "tags", "seconds", "message"]
#: The statuses, in the order summaries list them.
STATUSES = ("pass", "fail", "unsupported", "error")
#: Worker processes are replaced after this many cases (compiled programs accumulate).
CASES_PER_WORKER = 150


def _suite_options():
    from .options import SolverOptions

    # The default tolerances; a larger step budget, because several cases fire an event
    # every 0.01 time units (case 966: over 1000 time units), each located by a few trial
    # steps. The budget only matters where it runs out.
    return SolverOptions(max_steps=1_000_000)


SUITE_OPTIONS = _suite_options()


@dataclass(frozen=True)
class Settings:
    """A case's ``NNNNN-settings.txt``."""

    start: float
    duration: float
    steps: int
    variables: list[str]
    absolute: float
    relative: float
    amount: list[str] = field(default_factory=list)
    concentration: list[str] = field(default_factory=list)

    @property
    def times(self) -> np.ndarray:
        """The output times."""
        return np.linspace(self.start, self.start + self.duration, self.steps + 1)

    def units(self, sid: str) -> str | None:
        """The units a variable is reported in: amount, concentration or None (its own)."""
        if sid in self.amount:
            return "amount"
        if sid in self.concentration:
            return "concentration"
        return None


def _ids(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def read_settings(path: Path) -> Settings:
    """Parse a settings file.

    Raises:
        ProblemSpecError: a missing or malformed entry.
    """
    raw: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            raw[key.strip().lower()] = value.strip()
    try:
        return Settings(
            start=float(raw["start"]),
            duration=float(raw["duration"]),
            steps=int(float(raw["steps"])),
            variables=_ids(raw["variables"]),
            absolute=float(raw["absolute"]),
            relative=float(raw["relative"]),
            amount=_ids(raw.get("amount", "")),
            concentration=_ids(raw.get("concentration", "")),
        )
    except (KeyError, ValueError) as exc:
        raise ProblemSpecError(f"{path}: malformed settings ({exc})") from exc


def read_description(path: Path) -> tuple[str, list[str]]:
    """The test type and the component and test tags of a case's ``NNNNN-model.m``."""
    text = Path(path).read_text(errors="replace")

    def field_of(name: str) -> str:
        m = re.search(rf"^{name}:\s*(.*)$", text, flags=re.MULTILINE)
        return m.group(1).strip() if m else ""

    tags = _ids(field_of("componentTags")) + _ids(field_of("testTags"))
    return field_of("testType") or "TimeCourse", [t for t in tags if ":" not in t or t.count(":") == 1]


def model_file(folder: Path, case: str) -> Path:
    """The case's SBML file: the highest level and version in the folder."""
    files = sorted(folder.glob(f"{case}-sbml-l*v*.xml"))
    if not files:
        raise ProblemSpecError(f"{folder}: no {case}-sbml-lXvY.xml")

    def level_version(p: Path) -> tuple[int, int]:
        m = re.search(r"-l(\d+)v(\d+)\.xml$", p.name)
        return (int(m.group(1)), int(m.group(2))) if m else (0, 0)

    return max(files, key=level_version)


def parse_cases(spec: str | None, root: Path) -> list[str]:
    """Case ids from ``"1-200,1500"`` (None: every case folder under ``root``).

    Raises:
        ProblemSpecError: a malformed spec or a case that is not there.
    """
    available = sorted(p.name for p in Path(root).iterdir() if p.is_dir() and re.fullmatch(r"\d{5}", p.name))
    if not spec:
        return available
    wanted: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not m:
            raise ProblemSpecError(f"--cases: '{part}' is not a case number or a range like 1-200")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo:
            raise ProblemSpecError(f"--cases: range '{part}' runs backwards")
        wanted.extend(range(lo, hi + 1))
    have = set(available)
    cases = [f"{c:05d}" for c in dict.fromkeys(wanted)]
    missing = [c for c in cases if c not in have]
    if missing:
        raise ProblemSpecError(
            f"{root}: no case folder {missing[0]}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    return cases


def read_expected(path: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The expected results: times, the variables' names and their values (n_t, n_var).

    The first column is time whatever its header says ("time", "Time"; case 1820 has
    parameters named time, Time and TIME besides it), so the file is split by hand
    rather than by pandas, which would rename repeated headers.
    """
    lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
    header = [h.strip() for h in lines[0].split(",")]

    def number(v: str) -> float:
        return float(v.strip().lower().replace("infinity", "inf"))

    rows = np.array([[number(v) for v in line.split(",")] for line in lines[1:]], dtype=float)
    rows = rows.reshape(len(lines) - 1, len(header))
    return rows[:, 0], header[1:], rows[:, 1:]


def simulate_case(folder: Path, case: str, settings: Settings, options=None) -> np.ndarray:
    """Simulate one case as its settings say: (n_t, n_variables) values.

    Raises:
        PeBenchError: the model is refused (unsupported, malformed) or fails to integrate.
    """
    import jax
    import jax.numpy as jnp

    from .problems.sbml_only import load_sbml_problem
    from .simulate import make_simulator

    outputs = [(v, settings.units(v)) for v in settings.variables]
    problem = load_sbml_problem(model_file(folder, case), name=case, times=settings.times, outputs=outputs)
    simulator = make_simulator(problem, options or SUITE_OPTIONS)
    out = jax.jit(simulator)(jnp.zeros((0,)))
    if not bool(out["ok"]):
        raise PeBenchError(f"case {case}: integration failed")
    return np.asarray(out["y"]).reshape(len(settings.times), len(settings.variables))


def compare(sim: np.ndarray, expected: np.ndarray, absolute: float, relative: float) -> float:
    """Largest ``|sim - expected| / (absolute + relative |expected|)``.

    Infinite where a NaN or an infinity is not matched.
    """
    both_nan = np.isnan(sim) & np.isnan(expected)
    same_inf = np.isinf(sim) & np.isinf(expected) & (np.sign(sim) == np.sign(expected))
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(sim - expected) / (absolute + relative * np.abs(expected))
    err = np.where(both_nan | same_inf, 0.0, err)
    err = np.where(np.isnan(err), np.inf, err)
    return float(np.max(err, initial=0.0))


def write_results(path: Path, times: np.ndarray, variables: list[str], values: np.ndarray) -> Path:
    """Write simulated values in the suite's own layout (``time`` then the variables)."""
    lines = [",".join(["time", *variables])]
    lines += [",".join(repr(float(v)) for v in (t, *row)) for t, row in zip(times, values, strict=True)]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


def run_case(root: Path, case: str, keep: Path | None = None, options=None) -> dict:
    """Run one case; returns a report row (see ``COLUMNS``)."""
    folder = Path(root) / case
    t0 = time.perf_counter()
    row = {"case": case, "status": "error", "max_error": math.nan, "tags": "", "message": ""}
    try:
        test_type, tags = read_description(folder / f"{case}-model.m")
        row["tags"] = " ".join(tags)
        if test_type != "TimeCourse":
            raise UnsupportedFeatureError(f"not supported yet: {test_type} tests (only time courses)")
        settings = read_settings(folder / f"{case}-settings.txt")
        values = simulate_case(folder, case, settings, options)
        times, columns, table = read_expected(folder / f"{case}-results.csv")
        missing = [v for v in settings.variables if v not in columns]
        if missing:
            raise ProblemSpecError(f"{case}-results.csv has no column '{missing[0]}'")
        if len(times) != len(settings.times) or not np.allclose(times, settings.times, rtol=1e-9):
            raise ProblemSpecError(f"{case}-results.csv: its times are not the settings' times")
        if keep is not None:
            write_results(Path(keep) / f"{case}-results.csv", settings.times, settings.variables, values)
        expected = table[:, [columns.index(v) for v in settings.variables]]
        err = compare(values, expected, settings.absolute, settings.relative)
        row["max_error"] = err
        row["status"] = "pass" if err <= 1.0 else "fail"
        if err > 1.0:
            row["message"] = _first_miss(values, expected, settings)
    except UnsupportedFeatureError as exc:
        row["status"], row["message"] = "unsupported", str(exc)
    except PeBenchError as exc:
        row["message"] = str(exc)
    except Exception as exc:  # a bug or an upstream failure: recorded, the run goes on
        last = traceback.extract_tb(exc.__traceback__)[-1]
        row["message"] = f"{type(exc).__name__}: {exc} ({Path(last.filename).name}:{last.lineno})"
    row["message"] = " ".join(str(row["message"]).split())[:400]
    row["seconds"] = time.perf_counter() - t0
    return row


def _first_miss(values: np.ndarray, exp: np.ndarray, settings: Settings) -> str:
    for i in range(exp.shape[0]):
        for j, var in enumerate(settings.variables):
            if compare(values[i : i + 1, j], exp[i : i + 1, j], settings.absolute, settings.relative) > 1:
                return f"{var} at t={settings.times[i]:g}: {values[i, j]:.10g} expected {exp[i, j]:.10g}"
    return ""


# -- running many cases ----------------------------------------------------------------
def _worker_main(conn, root: str, keep: str | None, options) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from .runtime import configure_jax

    configure_jax()
    while True:
        case = conn.recv()
        if case is None:
            return
        conn.send(run_case(Path(root), case, Path(keep) if keep else None, options))


class _Worker:
    def __init__(self, ctx, root: Path, keep: Path | None, options):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_worker_main, args=(child, str(root), str(keep) if keep else None, options), daemon=True
        )
        self.proc.start()
        child.close()
        self.case: str | None = None
        self.started = 0.0
        self.done = 0

    def give(self, case: str) -> None:
        self.case, self.started = case, time.perf_counter()
        self.conn.send(case)

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join()


def run_cases(
    root: Path,
    cases: Iterable[str],
    *,
    workers: int = 1,
    keep: Path | None = None,
    timeout: float = 300.0,
    options=None,
    on_result: Callable[[dict], None] | None = None,
) -> pd.DataFrame:
    """Run cases, in worker processes (``workers`` >= 1) or in this process (0).

    A case that runs longer than ``timeout`` seconds (worker processes only) is an
    ``error``; its worker is replaced. Every finished row goes to ``on_result``.

    Returns:
        The report, one row per case in case order (``COLUMNS``).
    """
    cases = list(cases)
    rows: list[dict] = []

    def record(row: dict) -> None:
        rows.append(row)
        if on_result is not None:
            on_result(row)

    if keep is not None:
        Path(keep).mkdir(parents=True, exist_ok=True)
    if workers <= 0:
        for case in cases:
            record(run_case(Path(root), case, keep, options))
    else:
        _run_in_workers(Path(root), cases, workers, keep, timeout, options, record)
    df = pd.DataFrame(rows, columns=COLUMNS)
    return df.sort_values("case", ignore_index=True)


def _run_in_workers(root, cases, workers, keep, timeout, options, record) -> None:
    ctx = multiprocessing.get_context("spawn")
    todo = list(reversed(cases))
    pool: list[_Worker] = []
    env_cache = os.environ.get("PE_BENCH_JAX_CACHE")
    os.environ["PE_BENCH_JAX_CACHE"] = ""  # thousands of one-off programs: not worth a disk cache
    try:
        pool = [_Worker(ctx, root, keep, options) for _ in range(min(workers, max(len(cases), 1)))]
        for w in pool:
            if todo:
                w.give(todo.pop())
        while any(w.case is not None for w in pool):
            ready = multiprocessing.connection.wait([w.conn for w in pool if w.case is not None], timeout=1.0)
            now = time.perf_counter()
            for i, w in enumerate(pool):
                if w.case is None:
                    continue
                if w.conn in ready:
                    try:
                        row = w.conn.recv()
                    except (EOFError, OSError):
                        row = _crashed(w.case, now - w.started, "worker process died")
                        w.kill()
                        w = pool[i] = _Worker(ctx, root, keep, options)
                    record(row)
                    w.case = None
                    w.done += 1
                elif now - w.started > timeout:
                    record(_crashed(w.case, now - w.started, f"timeout after {timeout:g} s"))
                    w.kill()
                    w = pool[i] = _Worker(ctx, root, keep, options)
                elif not w.proc.is_alive():
                    record(_crashed(w.case, now - w.started, "worker process died"))
                    w = pool[i] = _Worker(ctx, root, keep, options)
                else:
                    continue
                if w.done >= CASES_PER_WORKER:
                    w.stop()
                    w = pool[i] = _Worker(ctx, root, keep, options)
                if todo:
                    w.give(todo.pop())
    finally:
        for w in pool:
            w.stop()
        if env_cache is None:
            os.environ.pop("PE_BENCH_JAX_CACHE", None)
        else:
            os.environ["PE_BENCH_JAX_CACHE"] = env_cache


def _crashed(case: str, seconds: float, message: str) -> dict:
    return {"case": case, "status": "error", "max_error": math.nan, "tags": "", "seconds": seconds,
            "message": message}  # fmt: skip


def summary(report: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts by status, and by tag (cases carrying the tag, by status)."""
    by_status = report["status"].value_counts().reindex(STATUSES, fill_value=0).rename("cases").to_frame()
    rows = []
    for _, r in report.iterrows():
        for tag in str(r["tags"]).split():
            rows.append((tag, r["status"]))
    tags = pd.DataFrame(rows, columns=["tag", "status"])
    by_tag = pd.crosstab(tags["tag"], tags["status"]).reindex(columns=list(STATUSES), fill_value=0)
    by_tag["cases"] = by_tag.sum(axis=1)
    return by_status, by_tag.sort_values("cases", ascending=False)


def write_report(report: pd.DataFrame, path: Path) -> Path:
    """Write the report CSV atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    report[COLUMNS].to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, path)
    return path
