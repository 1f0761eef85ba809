"""Adam's on-device blocks reproduce the per-iteration implementation they replaced."""

import json
from pathlib import Path

import numpy as np
import pytest

from pe_bench import Objective, resolve
from pe_bench.methods import Budget, Callbacks
from pe_bench.methods.adam import Adam

#: Results of Adam as it was at commit 7480dba (one jitted step per iteration, host
#: bookkeeping after each), on cortisol: 8 starts, 120 evaluations, seed 3, patience 20.
REFERENCE = Path(__file__).parent / "data" / "adam_cortisol_seed3.json"


@pytest.mark.parametrize("block, chunks", [(1, 1), (25, 1), (25, 2), (7, 3)])
def test_blocks_and_chunks_give_the_results_of_the_per_iteration_loop(block, chunks):
    ref = json.loads(REFERENCE.read_text())
    pb = resolve(ref["problem"])
    lower, upper = pb.bounds
    method = Adam(patience=ref["options"]["patience"], block=block, chunks=chunks)
    budget = Budget(n_starts=ref["n_starts"], max_evals=ref["max_evals"])
    got = method.run(Objective(pb), lower, upper, budget, ref["seed"], Callbacks())
    got = sorted(got, key=lambda r: r.start)
    assert [r.start for r in got] == [r["start"] for r in ref["starts"]]
    for res, want in zip(got, ref["starts"], strict=True):
        assert res.status == want["status"] and res.message == want["message"]
        assert res.n_fevals == want["n_fevals"]
        assert [h[0] for h in res.history] == want["improvements"]
        assert res.nllh_final == pytest.approx(want["nllh_final"], rel=1e-9, abs=1e-9)
        np.testing.assert_allclose(res.x_final, want["x_final"], rtol=1e-8, atol=1e-10)


def test_skipped_starts_and_a_target_stop_early():
    pb = resolve("cortisol")
    lower, upper = pb.bounds
    results = list(
        Adam(block=10).run(Objective(pb), lower, upper, Budget(n_starts=4, max_evals=50), 0,
                           Callbacks(target=1e9), skip=frozenset({1, 2}))
    )  # fmt: skip
    assert sorted(r.start for r in results) == [0, 3]
    assert all(r.status == "stopped" and r.n_fevals == 1 for r in results)
