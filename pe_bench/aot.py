"""Compiled objectives kept on disk, so a second process skips loading and tracing.

The first ``pebench evaluate`` of a problem loads it (petab, libsbml, sympy), traces the
JAX objective (diffrax) and compiles it; that is seconds of work even when JAX's
persistent compilation cache already holds the XLA executable, because loading and
tracing happen before the cache is consulted. Here the traced objective is stored with
``jax.export`` (serialised StableHLO) next to a small header (ids, scales, nominal and
true values); a later process with the same key deserialises it and lets the persistent
compilation cache supply the executable, without importing petab, sympy or diffrax.

The key is a SHA-256 of every file of the problem (its folder for PEtab, the file for
SBML), the pe_bench sources, the versions of the libraries that shape the objective, the
solver options and the entry point: any change to any of them is a miss, never a stale
hit.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .files import temp_file
from .runtime import jax_cache_dir

FORMAT = 1
_LIBRARIES = (
    "jax",
    "jaxlib",
    "diffrax",
    "equinox",
    "optimistix",
    "lineax",
    "sympy",
    "petab",
    "python-libsbml",
)
_BIOMODELS_ID = re.compile(r"^(BIOMD|MODEL)\d{10}$")


@dataclass(frozen=True)
class Header:
    """What the CLI needs of a problem to pick parameters and report, without loading it."""

    name: str
    x_ids: list[str]
    x_scale: list[str]
    x_nominal: np.ndarray
    x_true: np.ndarray | None
    warnings: tuple[str, ...] = ()


def _problem_files(source: str) -> list[Path] | None:
    builtin = Path(str(resources.files("pe_bench.problems") / "builtin" / source))
    if (builtin / f"{source}.yaml").is_file():
        folder = builtin
    else:
        path = Path(source)
        if path.is_dir():
            folder = path
        elif path.is_file() and path.suffix in (".yaml", ".yml"):
            folder = path.parent
        elif path.is_file():
            return [path]
        elif _BIOMODELS_ID.match(source):
            from .problems.biomodels import cached_path

            return [cached_path(source)] if cached_path(source).is_file() else None
        else:
            return None
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def _package_digest() -> str:
    h = hashlib.sha256()
    root = Path(__file__).parent
    for p in sorted(root.rglob("*.py")):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def cache_key(source: str, options, kind: str) -> str | None:
    """The key of ``source``'s ``kind`` entry point ("value" or "value_and_grad"), or None."""
    files = _problem_files(source)
    if files is None:
        return None
    h = hashlib.sha256(f"{FORMAT}|{kind}|{options!r}|{_package_digest()}".encode())
    for lib in _LIBRARIES:
        try:
            h.update(f"{lib}={importlib.metadata.version(lib)}".encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(f"{lib}=missing".encode())
    base = files[0].parent if len(files) == 1 else Path(os.path.commonpath(files))
    for f in files:
        h.update(str(f.relative_to(base)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:32]


def _folder() -> Path | None:
    root = jax_cache_dir()
    return None if root is None else root.parent / "exported"


def load(key: str | None):
    """``(Header, jax.export.Exported)`` stored under ``key``, or None."""
    folder = _folder()
    if key is None or folder is None:
        return None
    head, blob = folder / f"{key}.json", folder / f"{key}.bin"
    if not (head.is_file() and blob.is_file()):
        return None
    from jax import export

    try:
        meta = json.loads(head.read_text())
        exported = export.deserialize(bytearray(blob.read_bytes()))
    except Exception:  # a damaged entry is a miss
        return None
    header = Header(
        name=meta["name"],
        x_ids=meta["x_ids"],
        x_scale=meta["x_scale"],
        x_nominal=np.asarray(meta["x_nominal"], dtype=float),
        x_true=None if meta["x_true"] is None else np.asarray(meta["x_true"], dtype=float),
        warnings=tuple(meta.get("warnings", ())),
    )
    return header, exported


def problem_warnings(problem) -> list[str]:
    """The problem's notes that are warnings (``pebench info`` / ``evaluate`` print them)."""
    return [n for n in getattr(problem, "notes", []) if n.startswith("warning:")]


def export(jitted, x):
    """``jitted`` traced at ``x``'s shape as a ``jax.export.Exported``, or None if it cannot be."""
    import jax
    from jax import export as jax_export

    try:
        exported = jax_export.export(jitted)(jax.ShapeDtypeStruct(np.shape(x), np.float64))
        exported.serialize()  # fails early for what cannot be stored
    except Exception:  # an objective that cannot be exported is simply not stored
        return None
    return exported


def store(key: str | None, problem, exported) -> None:
    """Store ``exported`` (from :func:`export`) and the problem header under ``key``."""
    folder = _folder()
    if key is None or folder is None or exported is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    x_true = problem.x_true
    meta = {
        "name": problem.name,
        "x_ids": list(problem.x_ids),
        "x_scale": list(problem.x_scale),
        "x_nominal": [float(v) for v in problem.x_nominal],
        "x_true": None if x_true is None else [float(v) for v in x_true],
        "warnings": problem_warnings(problem),
    }
    for suffix, data in ((".bin", bytes(exported.serialize())), (".json", json.dumps(meta).encode())):
        tmp = temp_file(folder)
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, folder / f"{key}{suffix}")
