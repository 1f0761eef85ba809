"""Which Fisher information should fides get? pe_bench's expected FIM against AMICI's.

    .venv/bin/python benchmarks/fim_choice.py [--problems Boehm_JProteomeRes2014:100,...] [--seeds 0,1]

pe_bench's ``Objective.value_grad_fim`` returns the expected Fisher information: ``J^T J``
of ``h(y) / sigma`` (sigma held fixed) and ``sqrt(2) log(sigma)`` (normal noise).
pyPESTO's FIM from AMICI is ``J^T J`` of the residuals ``(h(m) - h(y)) / sigma``: the same
for parameters that leave sigma alone, different in the noise-parameter block. This
script builds the second as a subclass (normal noise only, which is what the problems
named here use), runs ``multistart`` (fides) with each on the same Latin-hypercube starts
and prints, per problem and FIM: starts within 0.1 of the best value found by either or
the published one, evaluations, wall seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

import pe_bench  # noqa: F401  (sets EQX_ON_ERROR before equinox loads)
from pe_bench.methods import Budget
from pe_bench.objective import Objective, _transform
from pe_bench.problems.petab_io import load_petab
from pe_bench.results import load_results
from pe_bench.runner import make_method, run_method
from pe_bench.runtime import configure_jax

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "benchmark-models"


class AmiciFimObjective(Objective):
    """The same likelihood; ``value_grad_fim`` returns AMICI's (pyPESTO's) FIM."""

    def _fim_features(self, sim):
        meas = jnp.asarray(self.problem.meas_y)
        return (_transform(meas, self._trans) - _transform(sim["y"], self._trans)) / sim["sigma"]


def main() -> None:
    configure_jax()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--problems",
        default="Boehm_JProteomeRes2014:100,Fiedler_BMCSystBiol2016:40,Bruno_JExpBot2016:40",
        help="comma-separated problem:starts",
    )
    ap.add_argument("--seeds", default="0,1")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    ref = pd.read_csv(SHARED / "REFERENCE.tsv", sep="\t", index_col=0)["llh_at_nominal"]
    rows = []
    for item in args.problems.split(","):
        name, n_starts = item.split(":")
        pb = load_petab(SHARED / name / f"{name}.yaml")
        finals: dict[str, list[np.ndarray]] = {}
        for label, cls in (("expected (pe_bench)", Objective), ("AMICI residuals", AmiciFimObjective)):
            objective = cls(pb)
            objective.value_grad_fim(pb.x_nominal)  # compile outside the clock
            evals, wall, finals[label] = 0, 0.0, []
            for seed in seeds:
                with tempfile.TemporaryDirectory() as out:
                    t0 = time.perf_counter()
                    run_method(
                        pb,
                        make_method("multistart", {}),
                        Budget(n_starts=int(n_starts)),
                        seed,
                        Path(out),
                        objective=objective,
                    )
                    wall += time.perf_counter() - t0
                    starts = load_results(Path(out))[0]
                evals += int(starts["n_fevals"].sum())
                finals[label].append(starts["nllh_final"].to_numpy(dtype=float))
            rows.append(
                {
                    "problem": name,
                    "fim": label,
                    "starts": int(n_starts) * len(seeds),
                    "evaluations": evals,
                    "wall_s": wall,
                }
            )
            jax.clear_caches()
        best = min([-float(ref.get(name, -np.inf))] + [np.nanmin(np.concatenate(f)) for f in finals.values()])
        for row in rows[-2:]:
            f = np.concatenate(finals[row["fim"]])
            row["converged"] = int(np.sum(f <= best + 0.1))
            row["best_nllh"] = float(np.nanmin(f))
            print(
                f"{name} {row['fim']}: {row['converged']}/{row['starts']} within 0.1 of {best:.4f}, "
                f"{row['evaluations']} evaluations, {row['wall_s']:.1f} s",
                flush=True,
            )
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4f"))


if __name__ == "__main__":
    main()
