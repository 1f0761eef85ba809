"""Generate the synthetic measurements of the built-in ``cortisol`` problem.

Run from the project root: ``python -m pe_bench.problems.builtin.cortisol.make_data``.
It rewrites ``measurements_cortisol.tsv`` beside this file, deterministically.

The model is linear, dx/dt = A x, so the noise-free observations are computed exactly
with the matrix exponential (scipy), independently of pe_bench's simulator. Noise is
normal with the known sigma of the observable table, drawn from a seeded generator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.linalg import expm

HERE = Path(__file__).parent
SEED = 20261123
SIGMA = 0.02
N_TIMES = 20
T_MIN, T_MAX = 0.01, 10.0
SPECIES = ["X1", "X2", "X3", "X4", "X5"]


def system_matrix(K1: float, K2: float, K3: float, K4: float, K5: float) -> np.ndarray:
    """A with dx/dt = A x for x = (X1, X2, X3, X4, X5) (Kraan et al. 1997)."""
    return np.array(
        [
            [-K3, 0, 0, 0, 0],
            [0, 0, 0, K1, 0],
            [0, 0, 0, 0, K2],
            [K3, 0, 0, -(K1 + K4), K5],
            [0, 0, 0, K4, -(K2 + K5)],
        ],
        dtype=float,
    )


def exact_states(times: np.ndarray, params: dict[str, float]) -> np.ndarray:
    """States at ``times`` from x(0) = (1, 0, 0, 0, 0): x(t) = expm(A t) x(0)."""
    A = system_matrix(**params)
    x0 = np.array([1.0, 0, 0, 0, 0])
    return np.stack([expm(A * t) @ x0 for t in times])


def main() -> None:
    """Write measurements_cortisol.tsv from the true parameters and a fixed seed."""
    true = pd.read_csv(HERE / "true_parameters.tsv", sep="\t", index_col=0)["value"].to_dict()
    times = np.geomspace(T_MIN, T_MAX, N_TIMES)
    states = exact_states(times, true)
    rng = np.random.default_rng(SEED)
    rows = []
    for j, sid in enumerate(SPECIES):
        noisy = states[:, j] + SIGMA * rng.standard_normal(N_TIMES)
        for t, y in zip(times, noisy, strict=True):
            rows.append(
                {
                    "observableId": f"obs_{sid}",
                    "simulationConditionId": "baseline",
                    "measurement": repr(float(y)),
                    "time": repr(float(t)),
                    "observableParameters": "",
                    "noiseParameters": "",
                }
            )
    pd.DataFrame(rows).to_csv(HERE / "measurements_cortisol.tsv", sep="\t", index=False)


if __name__ == "__main__":
    main()
