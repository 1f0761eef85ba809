"""Result files: one Parquet schema for every method, written as starts finish; tables.

Layout under an output folder: ``<problem>/<method>/seed<S>.starts.parquet`` (one row
per start) and ``seed<S>.history.parquet`` (best-so-far traces). Both are rewritten
atomically (temporary file + rename) after every finished start, so the files on disk
are always complete and readable, and an interrupted run keeps every finished start.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import ProblemSpecError
from .files import temp_file
from .methods.base import StartResult

# Column names, defined once.
PROBLEM, METHOD, SEED, START = "problem", "method", "seed", "start"
X_START, X_FINAL, NLLH_START, NLLH_FINAL = "x_start", "x_final", "nllh_start", "nllh_final"
N_FEVALS, N_GEVALS, WALL_TIME_S, STATUS, MESSAGE = "n_fevals", "n_gevals", "wall_time_s", "status", "message"
ROUND, LABEL, N_FAILED = "round", "label", "n_failed"
CPU_TIME_S, RUN_CPU_S = "cpu_time_s", "run_cpu_s"
SHARED_FEVALS, SHARED_FAILED, SHARED_WALL_S, SHARED_CPU_S = (
    "shared_fevals",
    "shared_failed",
    "shared_wall_s",
    "shared_cpu_s",
)
SECONDS, BEST_NLLH, CPU_SECONDS, RUN_CPU_SECONDS = "seconds", "best_nllh", "cpu_seconds", "run_cpu_seconds"
METADATA_KEY = b"pe_bench"
#: Metadata keys: the seconds spent compiling per task of a run, and the budget a run
#: finished under (a CPU-budgeted run that finished is complete).
COMPILATION, FINISHED = "compilation", "finished"

STARTS_SCHEMA = pa.schema(
    [
        (PROBLEM, pa.string()),
        (METHOD, pa.string()),
        (SEED, pa.int64()),
        (START, pa.int64()),
        (X_START, pa.list_(pa.float64())),
        (X_FINAL, pa.list_(pa.float64())),
        (NLLH_START, pa.float64()),
        (NLLH_FINAL, pa.float64()),
        (N_FEVALS, pa.int64()),
        (N_GEVALS, pa.int64()),
        (WALL_TIME_S, pa.float64()),
        (STATUS, pa.string()),
        (MESSAGE, pa.string()),
        (ROUND, pa.int64()),
        (LABEL, pa.float64()),
        (N_FAILED, pa.int64()),
        (CPU_TIME_S, pa.float64()),
        (RUN_CPU_S, pa.float64()),
        (SHARED_FEVALS, pa.int64()),
        (SHARED_FAILED, pa.int64()),
        (SHARED_WALL_S, pa.float64()),
        (SHARED_CPU_S, pa.float64()),
    ]
)
#: Columns added after the first release: files without them still read (as nulls).
_OPTIONAL = {N_FAILED, CPU_TIME_S, RUN_CPU_S, SHARED_FEVALS, SHARED_FAILED, SHARED_WALL_S, SHARED_CPU_S}
HISTORY_SCHEMA = pa.schema(
    [
        (PROBLEM, pa.string()),
        (METHOD, pa.string()),
        (SEED, pa.int64()),
        (START, pa.int64()),
        (N_FEVALS, pa.int64()),
        (SECONDS, pa.float64()),
        (BEST_NLLH, pa.float64()),
        (CPU_SECONDS, pa.float64()),
        (RUN_CPU_SECONDS, pa.float64()),
    ]
)
_HISTORY_OPTIONAL = {CPU_SECONDS, RUN_CPU_SECONDS}


def run_paths(out: Path, problem: str, method: str, seed: int) -> tuple[Path, Path]:
    """The (starts, history) files of one run."""
    folder = Path(out) / problem / method
    return folder / f"seed{seed}.starts.parquet", folder / f"seed{seed}.history.parquet"


def _write_atomic(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_file(path.parent)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class RunWriter:
    """Collects the starts of one (problem, method, seed) run and keeps its files current."""

    def __init__(self, out: Path, problem: str, method: str, seed: int, metadata: dict, resume: bool):
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise ProblemSpecError(f"{out}: output path exists and is not a folder")
        self.problem, self.method, self.seed = problem, method, seed
        self.metadata = metadata
        self.starts_path, self.history_path = run_paths(out, problem, method, seed)
        self.rows: list[dict] = []
        self.history: list[dict] = []
        if self.starts_path.exists():
            if not resume:
                raise ProblemSpecError(
                    f"{self.starts_path}: results exist; use --resume to continue or another --out"
                )
            read_starts(self.starts_path)  # validates
            # pyarrow's own rows keep nulls as None (pandas would turn them into NaN).
            self.rows = _complete(_read(self.starts_path), STARTS_SCHEMA).to_pylist()
            if self.history_path.exists():
                self.history = _complete(_read(self.history_path), HISTORY_SCHEMA).to_pylist()
            old = read_metadata(self.starts_path)
            was, now = bool(old.get("hierarchical")), bool(metadata.get("hierarchical"))
            if was != now:
                raise ProblemSpecError(
                    f"{self.starts_path}: these results were written {'with' if was else 'without'} "
                    f"--hierarchical; resume them {'with' if was else 'without'} it, or use another --out"
                )
            self._finished = old.pop(FINISHED, None)
            self.metadata = old | metadata | {COMPILATION: old.get(COMPILATION, {})}
        else:
            self._finished = None

    @property
    def done(self) -> frozenset[int]:
        """Starts already in the file."""
        return frozenset(int(r[START]) for r in self.rows)

    @property
    def finished(self) -> bool:
        """True if the file holds a CPU-budgeted run that ended under this same budget."""
        budget = self.metadata.get("budget") or {}
        return budget.get("cpu_budget") is not None and self._finished == budget

    def finish(self) -> None:
        """Mark the run as ended (its budget spent or its starts done) and rewrite the files."""
        self._finished = self.metadata.get("budget")
        self.flush()

    def add(self, res: StartResult, extra_metadata: dict | None = None) -> None:
        """Append one finished start and rewrite both files."""
        key = {PROBLEM: self.problem, METHOD: self.method, SEED: self.seed, START: res.start}
        self.rows.append(
            key
            | {
                X_START: [float(v) for v in res.x_start],
                X_FINAL: [float(v) for v in res.x_final],
                NLLH_START: float(res.nllh_start),
                NLLH_FINAL: float(res.nllh_final),
                N_FEVALS: int(res.n_fevals),
                N_GEVALS: int(res.n_gevals),
                WALL_TIME_S: float(res.wall_time_s),
                STATUS: res.status,
                MESSAGE: res.message,
                ROUND: res.extra.get("round"),
                LABEL: res.extra.get("label"),
                N_FAILED: int(res.n_failed),
                CPU_TIME_S: float(res.cpu_time_s),
                RUN_CPU_S: float(res.run_cpu_s),
                SHARED_FEVALS: int(res.shared.n_fevals),
                SHARED_FAILED: int(res.shared.n_failed),
                SHARED_WALL_S: float(res.shared.wall_s),
                SHARED_CPU_S: float(res.shared.cpu_s),
            }
        )
        self.history.extend(
            key | {N_FEVALS: n, SECONDS: s, BEST_NLLH: b, CPU_SECONDS: c, RUN_CPU_SECONDS: r}
            for n, s, b, c, r in res.history
        )
        if extra_metadata:
            extra = dict(extra_metadata)
            compilation = self.metadata.get(COMPILATION, {}) | extra.pop(COMPILATION, {})
            self.metadata = self.metadata | extra | {COMPILATION: compilation}
        self.flush()

    def flush(self) -> None:
        """Write both tables (sorted by start) atomically, metadata in the schema."""
        metadata = self.metadata | ({FINISHED: self._finished} if self._finished is not None else {})
        meta = {METADATA_KEY: json.dumps(metadata, default=str).encode()}
        rows = sorted(self.rows, key=lambda r: r[START])
        starts = pa.Table.from_pylist(rows, schema=STARTS_SCHEMA.with_metadata(meta))
        history = pa.Table.from_pylist(self.history, schema=HISTORY_SCHEMA.with_metadata(meta))
        _write_atomic(starts, self.starts_path)
        _write_atomic(history, self.history_path)


def _complete(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with the schema's columns in order, those it lacks added as nulls."""
    for column in schema:
        if column.name not in table.column_names:
            table = table.append_column(column, pa.nulls(len(table), column.type))
    return table.select(schema.names)


def _unreadable(path: Path, exc: Exception) -> ProblemSpecError:
    """A truncated or foreign result file as one line naming it."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ProblemSpecError(
        f"{path}: not a readable Parquet file ({first}); a run interrupted while writing? "
        "delete it (and its run's other file) to start that run over"
    )


def _read(path: Path, columns: list[str] | None = None) -> pa.Table:
    """``pq.read_table``, with an unreadable file as :func:`_unreadable`'s error."""
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowInvalid, OSError) as exc:
        raise _unreadable(path, exc) from None


def read_starts(path: Path) -> pd.DataFrame:
    """One starts table, validated against the schema (newer columns null in older files)."""
    table = _read(path)
    missing = [f.name for f in STARTS_SCHEMA if f.name not in table.column_names]
    if set(missing) - _OPTIONAL:
        raise ProblemSpecError(f"{path}: not a pe_bench starts table (missing {', '.join(missing)})")
    return _complete(table, STARTS_SCHEMA).to_pandas()


def read_history(path: Path) -> pd.DataFrame:
    """One history table, validated against the schema (newer columns null in older files)."""
    table = _read(path)
    missing = [f.name for f in HISTORY_SCHEMA if f.name not in table.column_names]
    if set(missing) - _HISTORY_OPTIONAL:
        raise ProblemSpecError(f"{path}: not a pe_bench history table (missing {', '.join(missing)})")
    return _complete(table, HISTORY_SCHEMA).to_pandas()


def read_metadata(path: Path) -> dict:
    """The run metadata stored in a result file's schema."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError) as exc:
        raise _unreadable(path, exc) from None
    return json.loads(meta.get(METADATA_KEY, b"{}"))


def load_results(folder: Path, problem: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every starts and history table under ``folder`` (optionally one problem)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ProblemSpecError(f"{folder}: results folder not found")
    starts = [read_starts(p) for p in sorted(folder.rglob("*.starts.parquet"))]
    if not starts:
        raise ProblemSpecError(f"{folder}: no result files (*.starts.parquet) found")
    hist = [read_history(p) for p in sorted(folder.rglob("*.history.parquet"))]
    df = pd.concat(starts, ignore_index=True)
    hf = pd.concat(hist, ignore_index=True) if hist else pd.DataFrame(columns=HISTORY_SCHEMA.names)
    if problem is not None:
        df, hf = df[df[PROBLEM] == problem], hf[hf[PROBLEM] == problem]
        if df.empty:
            raise ProblemSpecError(f"{folder}: no results for problem '{problem}'")
    return df, hf


def load_compilation(folder: Path) -> pd.DataFrame:
    """Per run file under ``folder``: seconds spent compiling outside its starts.

    Columns: problem, method, seed, ``compile_s`` and ``compile_cpu_s`` (summed over the
    run's tasks; 0 where a task reused an objective compiled for an earlier one), and
    ``finished`` (the run's CPU budget was spent or its starts done).
    """
    rows = []
    for path in sorted(Path(folder).rglob("*.starts.parquet")):
        meta = read_metadata(path)
        tasks = meta.get(COMPILATION, {}).values()
        key = _read(path, columns=[PROBLEM, METHOD, SEED]).slice(0, 1).to_pylist()
        if not key:
            continue
        rows.append(
            key[0]
            | {
                "compile_s": float(sum(t.get("wall_s", 0.0) for t in tasks)),
                "compile_cpu_s": float(sum(t.get("cpu_s", 0.0) for t in tasks)),
                "finished": meta.get(FINISHED) is not None,
            }
        )
    return pd.DataFrame(rows, columns=[PROBLEM, METHOD, SEED, "compile_s", "compile_cpu_s", "finished"])
