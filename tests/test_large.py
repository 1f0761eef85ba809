"""A large reaction network (tests/large_network.py) against its matrix-exponential solution.

Exercises what only large models use: the Jacobian from compressed columns, the banded LU
after renumbering (a chain) and the dense LU (random long-range reactions widen the band).
The figures for 500 species are benchmarks (benchmarks/bench_large.py, README).
"""

import jax.numpy as jnp
import large_network
import numpy as np
import pytest

from pe_bench.objective import Objective
from pe_bench.problems.petab_io import load_petab
from pe_bench.simulate import SolverOptions

pytestmark = pytest.mark.slow
N = 120


@pytest.mark.parametrize(("links", "solver"), [(0, "banded"), (60, "lu")])
def test_network_matches_matrix_exponential(tmp_path, links, solver):
    problem = load_petab(large_network.write_problem(tmp_path, N, links))
    objective = Objective(problem)
    structure = objective.simulator.functions.structure
    assert structure.kind == solver
    assert structure.n_colors < N // 4  # compressed Jacobian columns
    x = problem.x_nominal
    y = objective.simulate(x)["y"]
    states = large_network.exact(N, large_network.PARAMETERS, large_network.TIMES, links)
    sums = {"first": states[:, 0], "middle": states[:, N // 2], "last": states[:, -1], "total": states.sum(1)}
    df = problem.measurement_df
    times = list(large_network.TIMES)
    want = [sums[o][times.index(t)] for o, t in zip(df["observableId"], df["time"], strict=True)]
    np.testing.assert_allclose(y, want, rtol=1e-7, atol=1e-12)
    # Forward sensitivities of the whole network against central differences.
    _, grad, status = objective.value_and_grad(x)
    assert status == 0
    h = 1e-5
    fd = [(objective(x + h * e) - objective(x - h * e)) / (2 * h) for e in np.eye(len(x))]
    np.testing.assert_allclose(grad, fd, rtol=1e-4, atol=1e-4)


def test_linear_solvers_agree_on_the_network(tmp_path):
    problem = load_petab(large_network.write_problem(tmp_path, 40, links=5))
    x = jnp.asarray(problem.x_nominal)
    values = {
        kind: Objective(problem, SolverOptions(linear_solver=kind)).value(x)[0]
        for kind in ("inverse", "lu", "banded")
    }
    assert values["inverse"] == pytest.approx(values["lu"], rel=1e-9)
    assert values["banded"] == pytest.approx(values["lu"], rel=1e-9)
