"""Shared test helpers: where the shared benchmark collection is, and its reference values."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from pe_bench.objective import Objective
from pe_bench.problems.petab_io import load_petab

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "benchmark-models"


def reference() -> pd.DataFrame:
    """REFERENCE.tsv: published llh at the nominal parameters, by problem id."""
    return pd.read_csv(SHARED / "REFERENCE.tsv", sep="\t", index_col=0)


def reference_ids() -> list[str]:
    return list(reference().index)


def yaml_of(problem_id: str) -> Path:
    return SHARED / problem_id / f"{problem_id}.yaml"


@cache
def shared_objective(problem_id: str) -> Objective:
    """One Objective per shared problem for the whole session (compiled once)."""
    return Objective(load_petab(yaml_of(problem_id)))


def nllh_central_differences(objective: Objective, x: np.ndarray, h: float) -> np.ndarray:
    """Central differences of the nllh: the 2n perturbed points in one ``Objective.batch``
    (threads over the cores; its values equal single calls,
    test_objective.py::test_batch_equals_single_calls)."""
    steps = h * np.eye(len(x))
    values, status = objective.batch(np.concatenate([x + steps, x - steps]))
    assert (status == 0).all(), status
    return (values[: len(x)] - values[len(x) :]) / (2 * h)
