"""Parameter scales (PEtab ``parameterScale``): lin, log, log10; numpy only."""

from __future__ import annotations

import numpy as np

_TO = {"log": np.log, "log10": np.log10}
_FROM = {"log": np.exp, "log10": lambda v: np.power(10.0, v)}


def _apply(values: np.ndarray, scales: list[str], table: dict) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    out = values.copy()
    for i, s in enumerate(scales):
        if s in table:
            out[i] = table[s](values[i])
    return out


def to_scale(values: np.ndarray, scales: list[str]) -> np.ndarray:
    """Linear values -> estimation scale (numpy; for set-up and output)."""
    return _apply(values, scales, _TO)


def from_scale(values: np.ndarray, scales: list[str]) -> np.ndarray:
    """Estimation scale -> linear values (numpy; the inverse of :func:`to_scale`)."""
    return _apply(values, scales, _FROM)
