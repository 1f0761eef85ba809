"""Result files: one Parquet schema for every method, written as starts finish; tables.

Layout under an output folder: ``<problem>/<method>/seed<S>.starts.parquet`` (one row
per start) and ``seed<S>.history.parquet`` (best-so-far traces). Both are rewritten
atomically (temporary file + rename) after every finished start, so the files on disk
are always complete and readable, and an interrupted run keeps every finished start.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import ProblemSpecError
from .methods.base import StartResult

# Column names, defined once.
PROBLEM, METHOD, SEED, START = "problem", "method", "seed", "start"
X_START, X_FINAL, NLLH_START, NLLH_FINAL = "x_start", "x_final", "nllh_start", "nllh_final"
N_FEVALS, N_GEVALS, WALL_TIME_S, STATUS, MESSAGE = "n_fevals", "n_gevals", "wall_time_s", "status", "message"
ROUND, LABEL, N_FAILED = "round", "label", "n_failed"
SECONDS, BEST_NLLH = "seconds", "best_nllh"
METADATA_KEY = b"pe_bench"

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
    ]
)
#: Columns added after the first release: files without them still read (as nulls).
_OPTIONAL = {N_FAILED}
HISTORY_SCHEMA = pa.schema(
    [
        (PROBLEM, pa.string()),
        (METHOD, pa.string()),
        (SEED, pa.int64()),
        (START, pa.int64()),
        (N_FEVALS, pa.int64()),
        (SECONDS, pa.float64()),
        (BEST_NLLH, pa.float64()),
    ]
)


def run_paths(out: Path, problem: str, method: str, seed: int) -> tuple[Path, Path]:
    """The (starts, history) files of one run."""
    folder = Path(out) / problem / method
    return folder / f"seed{seed}.starts.parquet", folder / f"seed{seed}.history.parquet"


def _write_atomic(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    os.close(fd)
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
            old = pq.read_table(self.starts_path)
            names = [n for n in STARTS_SCHEMA.names if n in old.column_names]
            self.rows = old.select(names).to_pylist()
            if self.history_path.exists():
                self.history = pq.read_table(self.history_path).select(HISTORY_SCHEMA.names).to_pylist()

    @property
    def done(self) -> frozenset[int]:
        """Starts already in the file."""
        return frozenset(int(r[START]) for r in self.rows)

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
            }
        )
        self.history.extend(key | {N_FEVALS: n, SECONDS: s, BEST_NLLH: b} for n, s, b in res.history)
        if extra_metadata:
            self.metadata = self.metadata | extra_metadata
        self.flush()

    def flush(self) -> None:
        """Write both tables (sorted by start) atomically, metadata in the schema."""
        meta = {METADATA_KEY: json.dumps(self.metadata, default=str).encode()}
        rows = sorted(self.rows, key=lambda r: r[START])
        starts = pa.Table.from_pylist(rows, schema=STARTS_SCHEMA.with_metadata(meta))
        history = pa.Table.from_pylist(self.history, schema=HISTORY_SCHEMA.with_metadata(meta))
        _write_atomic(starts, self.starts_path)
        _write_atomic(history, self.history_path)


def read_starts(path: Path) -> pd.DataFrame:
    """One starts table, validated against the schema."""
    table = pq.read_table(path)
    missing = [f.name for f in STARTS_SCHEMA if f.name not in table.column_names]
    if set(missing) - _OPTIONAL:
        raise ProblemSpecError(f"{path}: not a pe_bench starts table (missing {', '.join(missing)})")
    for name in missing:
        column = STARTS_SCHEMA.field(name)
        table = table.append_column(column, pa.nulls(len(table), column.type))
    return table.select(STARTS_SCHEMA.names).to_pandas()


def read_metadata(path: Path) -> dict:
    """The run metadata stored in a result file's schema."""
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(METADATA_KEY, b"{}"))


def load_results(folder: Path, problem: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every starts and history table under ``folder`` (optionally one problem)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ProblemSpecError(f"{folder}: results folder not found")
    starts = [read_starts(p) for p in sorted(folder.rglob("*.starts.parquet"))]
    if not starts:
        raise ProblemSpecError(f"{folder}: no result files (*.starts.parquet) found")
    hist = [pq.read_table(p).to_pandas() for p in sorted(folder.rglob("*.history.parquet"))]
    df = pd.concat(starts, ignore_index=True)
    hf = pd.concat(hist, ignore_index=True) if hist else pd.DataFrame(columns=HISTORY_SCHEMA.names)
    if problem is not None:
        df, hf = df[df[PROBLEM] == problem], hf[hf[PROBLEM] == problem]
        if df.empty:
            raise ProblemSpecError(f"{folder}: no results for problem '{problem}'")
    return df, hf
