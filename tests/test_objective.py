"""Likelihood formula, batching, failures as data, jit hygiene."""

import itertools

import jax.numpy as jnp
import numpy as np
import petab.v1 as petab
import pytest

from pe_bench.objective import Objective, negative_log_likelihood
from pe_bench.problems.registry import resolve
from pe_bench.simulate import STATUS_INTEGRATION_FAILED, SolverOptions


@pytest.mark.parametrize(
    ("transformation", "distribution"),
    list(itertools.product(["lin", "log", "log10"], ["normal", "laplace"])),
)
def test_likelihood_terms_match_petab(transformation, distribution):
    # petab's reference implementation returns the log-density of the untransformed
    # measurement (Jacobian of log/log10 included), as PEtab v1 defines the likelihood.
    rng = np.random.default_rng(0)
    meas = rng.uniform(0.5, 3.0, 7)
    sim = rng.uniform(0.5, 3.0, 7)
    sigma = rng.uniform(0.1, 1.0, 7)
    t = np.full(7, ["lin", "log", "log10"].index(transformation))
    d = np.full(7, ["normal", "laplace"].index(distribution))
    ours = float(negative_log_likelihood(meas, sim, sigma, t, d))
    expected = -sum(
        petab.calculate_single_llh(m, s, transformation, distribution, sd)
        for m, s, sd in zip(meas, sim, sigma, strict=True)
    )
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


def test_log10_normal_closed_form():
    # One measurement, log10-normal: -log p(m) with p the density of m itself.
    m, y, sd = 2.0, 1.5, 0.3
    r = np.log10(m) - np.log10(y)
    expected = 0.5 * np.log(2 * np.pi * sd**2) + 0.5 * (r / sd) ** 2 + np.log(m * np.log(10))
    got = float(
        negative_log_likelihood(np.array([m]), np.array([y]), np.array([sd]), np.array([2]), np.array([0]))
    )
    np.testing.assert_allclose(got, expected, rtol=1e-14)


@pytest.fixture(scope="module")
def cortisol():
    return Objective(resolve("cortisol"))


def test_batch_equals_single_calls(cortisol):
    rng = np.random.default_rng(1)
    lo, hi = cortisol.problem.bounds
    xs = cortisol.problem.x_true + rng.normal(0, 0.05, (4, cortisol.n_par))
    values, status = cortisol.batch(np.clip(xs, lo, hi))
    single = [cortisol(np.clip(x, lo, hi)) for x in xs]
    np.testing.assert_allclose(values, single, rtol=1e-10)
    assert (status == 0).all()


def test_failed_integration_is_inf_with_status_inside_a_batch():
    objective = Objective(resolve("cortisol"), SolverOptions(max_steps=3))
    xs = np.tile(objective.problem.x_true, (3, 1))
    values, status = objective.batch(xs)  # must not raise
    assert np.isinf(values).all()
    assert (status == STATUS_INTEGRATION_FAILED).all()
    value, grad, s = objective.value_and_grad(xs[0])  # nor here
    assert np.isinf(value) and s == STATUS_INTEGRATION_FAILED


def test_new_parameter_values_do_not_recompile(cortisol):
    x = cortisol.problem.x_true
    cortisol.value(x)
    cortisol.value(x + 0.01)
    cortisol.value(jnp.asarray(x - 0.01))
    assert cortisol.n_compiled["value"] == 1
    cortisol.batch(np.stack([x, x + 0.1]))
    compiled = cortisol.n_compiled["batch"]
    cortisol.batch(np.stack([x, x - 0.1]))
    assert cortisol.n_compiled["batch"] == compiled  # same batch shape: no new compilation


def test_bounded_lanes_and_steps_equal_one_call(cortisol):
    from pe_bench.objective import Objective

    rng = np.random.default_rng(2)
    lo, hi = cortisol.problem.bounds
    xs = np.clip(cortisol.problem.x_true + rng.normal(0, 0.3, (11, cortisol.n_par)), lo, hi)
    values, status, steps = cortisol.batch(xs, steps=True)
    bounded = Objective(cortisol.problem, batch_lanes=3, batch_threads=2)
    assert bounded._chunks(11) == (2, 3)
    v2, s2, steps2 = bounded.batch(xs, steps=True)
    np.testing.assert_allclose(v2, values, rtol=1e-12)
    np.testing.assert_array_equal(s2, status)
    np.testing.assert_array_equal(steps2, steps)
    assert steps.dtype.kind == "i" and (steps > 10).all()
    assert len(set(steps.tolist())) > 1  # different vectors, different step counts


def test_batch_threads_follow_pe_bench_threads(cortisol, monkeypatch):
    """`pebench bench --workers N` gives each worker cores / N batch threads."""
    import jax

    from pe_bench.objective import Objective
    from pe_bench.runtime import THREADS_ENV, compute_threads

    monkeypatch.setenv(THREADS_ENV, "1")
    assert compute_threads() == 1
    if jax.default_backend() == "cpu":
        # one chunk; 10 vectors padded to the lane bucket 12 (objective.LANE_BUCKETS)
        assert Objective(cortisol.problem, batch_lanes=0)._chunks(10) == (1, 12)
    monkeypatch.setenv(THREADS_ENV, "3")
    assert compute_threads() == 3
    monkeypatch.setenv(THREADS_ENV, "not a number")
    monkeypatch.setattr("os.cpu_count", lambda: 5)
    assert compute_threads() == 5


def test_lane_buckets_bound_the_padding():
    from pe_bench.objective import lane_bucket

    sizes = {lane_bucket(n) for n in range(1, 200)}
    assert len(sizes) <= 16  # a few compiled shapes, not one per batch size
    for n in range(1, 200):
        assert n <= lane_bucket(n) <= max(2, 1.5 * n)


def test_lanes_grouped_by_predicted_cost_give_the_same_results(cortisol):
    from pe_bench.objective import Objective

    rng = np.random.default_rng(4)
    lo, hi = cortisol.problem.bounds
    reference = Objective(cortisol.problem, batch_lanes=0, batch_threads=1)  # one call, given order
    grouped = Objective(cortisol.problem, batch_lanes=4, batch_threads=2)
    for _ in range(3):  # the first batches train the cost model; the later ones are reordered
        xs = np.clip(cortisol.problem.x_true + rng.normal(0, 0.3, (13, cortisol.n_par)), lo, hi)
        v, s, steps = grouped.batch(xs, steps=True)
        v_ref, s_ref, steps_ref = reference.batch(xs, steps=True)
        np.testing.assert_allclose(v, v_ref, rtol=1e-12)
        np.testing.assert_array_equal(s, s_ref)
        np.testing.assert_array_equal(steps, steps_ref)
    order = grouped.lane_order(xs)
    assert order is not None and sorted(order.tolist()) == list(range(13))
    predicted = grouped.lane_costs.predict(xs[order])
    assert np.all(np.diff(predicted) <= 0)  # most expensive first
    assert reference.lane_order(xs) is None  # one call: nothing to group


def test_lane_cost_model_recovers_a_log_linear_cost():
    from pe_bench.objective import LaneCostModel

    rng = np.random.default_rng(0)
    model = LaneCostModel(3)
    assert not model.ready
    for _ in range(3):
        xs = rng.uniform(-2, 2, (40, 3))
        model.update(xs, np.exp(5.0 + 0.7 * xs[:, 0] - 0.2 * xs[:, 2]))
    assert model.ready
    xs = rng.uniform(-2, 2, (10, 3))
    np.testing.assert_allclose(model.predict(xs), 5.0 + 0.7 * xs[:, 0] - 0.2 * xs[:, 2], atol=1e-6)
