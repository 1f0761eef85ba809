"""Built-in cortisol problem against scipy, the analytic solution and its noise level."""

import numpy as np
from scipy.integrate import solve_ivp

from pe_bench.objective import Objective
from pe_bench.problems.registry import resolve
from pe_bench.simulate import Simulator, SolverOptions, model_functions

TRUE = {"K1": 3.6, "K2": 1.2, "K3": 26.6, "K4": 1.2, "K5": 1.2}


def _rhs(t, x, K1, K2, K3, K4, K5):
    X1, X2, X3, X4, X5 = x
    r1, r2, r3, r4 = K3 * X1, K4 * X4 - K5 * X5, K2 * X5, K1 * X4
    return [-r1, r4, r3, r1 - r2 - r4, r2 - r3]


def _lsoda(params, ts):
    """States (n_t, 5) in the order X1..X5 from scipy's LSODA at tight tolerances."""
    ref = solve_ivp(
        _rhs,
        (0, ts[-1]),
        [1, 0, 0, 0, 0],
        method="LSODA",
        t_eval=ts,
        args=tuple(params.values()),
        rtol=1e-12,
        atol=1e-14,
    )
    assert ref.success
    return ref.y.T


def _states(problem, x, options=None):
    out = Simulator(problem, model_functions(problem), options or SolverOptions())(x)
    assert bool(out["ok"])
    ts = problem.sim_ts[0]
    return ts, np.asarray(out["states"][0])


def test_problem_shape_and_true_parameters():
    pb = resolve("cortisol")
    assert pb.x_ids == ["K1", "K2", "K3", "K4", "K5"]
    assert pb.x_scale == ["log10"] * 5
    np.testing.assert_allclose(pb.bounds[0], -2.0)
    np.testing.assert_allclose(pb.bounds[1], 3.0)
    assert pb.true_parameters == TRUE
    assert len(pb.meas_y) == 100
    ts = np.unique(pb.meas_t)
    assert len(ts) == 20 and ts.min() == 0.01 and np.isclose(ts.max(), 10.0)


def test_simulation_matches_lsoda_and_analytic_x1():
    pb = resolve("cortisol")
    ts, states = _states(pb, pb.x_true)
    # State order in the model: X1..X5 as declared.
    order = [pb.model.state_ids.index(s) for s in ["X1", "X2", "X3", "X4", "X5"]]
    np.testing.assert_allclose(states[:, order], _lsoda(TRUE, ts), rtol=1e-6, atol=1e-8)
    # At tight tolerances, X1 follows its closed form exp(-K3 t) down to 1e-11.
    _, tight = _states(pb, pb.x_true, SolverOptions(rtol=1e-12, atol=1e-14))
    np.testing.assert_allclose(tight[:, order[0]], np.exp(-TRUE["K3"] * ts), rtol=1e-8, atol=1e-11)


def test_simulation_at_other_parameters_matches_lsoda():
    pb = resolve("cortisol")
    params = {"K1": 0.5, "K2": 7.0, "K3": 2.0, "K4": 0.3, "K5": 40.0}
    x = np.log10(list(params.values()))
    ts, states = _states(pb, x)
    order = [pb.model.state_ids.index(s) for s in ["X1", "X2", "X3", "X4", "X5"]]
    np.testing.assert_allclose(states[:, order], _lsoda(params, ts), rtol=1e-6, atol=1e-8)


def test_nllh_at_true_parameters_is_consistent_with_noise_level():
    pb = resolve("cortisol")
    nllh, status = Objective(pb).value(pb.x_true)
    assert status == 0 and np.isfinite(nllh)
    # With n residuals ~ N(0, sigma^2): E[nllh] = n/2 log(2 pi sigma^2) + n/2, sd = sqrt(n/2).
    n, sigma = len(pb.meas_y), 0.02
    expected = 0.5 * n * np.log(2 * np.pi * sigma**2) + 0.5 * n
    assert abs(nllh - expected) < 4 * np.sqrt(n / 2)
