"""pe_bench's llh at the nominal parameters against the published values (REFERENCE.tsv).

    .venv/bin/python benchmarks/reference_llh.py

Prints a Markdown table: reference llh, ours, difference, the acceptance tolerance
max(1e-3, 1e-4 |ref|), status.
"""

from __future__ import annotations

from pathlib import Path

import jax
import pandas as pd

import pe_bench  # noqa: F401  (sets EQX_ON_ERROR before equinox loads)
from pe_bench.objective import Objective
from pe_bench.problems.petab_io import load_petab

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "benchmark-models"


def main() -> None:
    jax.config.update("jax_enable_x64", True)
    ref = pd.read_csv(SHARED / "REFERENCE.tsv", sep="\t", index_col=0)
    rows = []
    for pid, r in ref.iterrows():
        problem = load_petab(SHARED / pid / f"{pid}.yaml")
        nllh, status = Objective(problem).value(problem.x_nominal)
        want = float(r["llh_at_nominal"])
        tol = max(1e-3, 1e-4 * abs(want))
        rows.append(
            {
                "problem": pid,
                "reference llh": want,
                "pe_bench llh": -nllh,
                "difference": -nllh - want,
                "tolerance": tol,
                "ok": "yes" if abs(-nllh - want) <= tol and status == 0 else "NO",
            }
        )
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=("", ".6f", ".6f", ".2e", ".2e", "")))


if __name__ == "__main__":
    main()
