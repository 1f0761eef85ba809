"""Estimation methods: known minima, the built-in problem, determinism, result files."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from pe_bench.methods import REGISTRY, Budget, Callbacks
from pe_bench.methods.base import latin_hypercube
from pe_bench.objective import Objective
from pe_bench.problems.registry import resolve
from pe_bench.results import load_results, read_metadata
from pe_bench.runner import make_method, run_method
from pe_bench.simulate import SolverOptions

CENTER = np.array([0.3, -1.2, 0.7])


class FunctionObjective:
    """A plain JAX function behind the Objective interface the methods use."""

    def __init__(self, fn):
        self.fn = fn
        self.options = SolverOptions()
        self._vg = jax.jit(jax.value_and_grad(fn))
        self._batch = jax.jit(jax.vmap(fn))

    def value_and_grad_fn(self, x):
        v, g = jax.value_and_grad(self.fn)(x)
        return v, g, jnp.asarray(0)

    def value(self, x):
        return float(self.fn(jnp.asarray(x))), 0

    def value_and_grad(self, x):
        v, g = self._vg(jnp.asarray(x))
        return float(v), np.asarray(g), 0

    def batch(self, xs):
        v = np.asarray(self._batch(jnp.asarray(xs)))
        return v, np.zeros(len(v), dtype=int)


def sphere(x):
    return jnp.sum((x - CENTER) ** 2)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_method_finds_a_known_minimum(name):
    method = make_method(name, {"epochs": "100", "samples": "64"} if name == "cvae" else None)
    lower, upper = np.full(3, -2.0), np.full(3, 2.0)
    results = list(method.run(FunctionObjective(sphere), lower, upper, Budget(n_starts=3), 0, Callbacks()))
    assert [r.start for r in results] == [0, 1, 2] or sorted(r.start for r in results) == [0, 1, 2]
    best = min(results, key=lambda r: r.nllh_final)
    assert best.nllh_final < 1e-4, (name, best.nllh_final)
    np.testing.assert_allclose(best.x_final, CENTER, atol=1e-2)
    for r in results:  # bounds hold and the accounting is there
        assert np.all(r.x_final >= lower) and np.all(r.x_final <= upper)
        assert r.n_fevals > 0 and r.wall_time_s > 0 and r.history


def test_multistart_matches_scipy_on_rosenbrock():
    from scipy.optimize import minimize, rosen

    def rosenbrock(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    lower, upper = np.full(2, -2.0), np.full(2, 2.0)
    ours = next(
        make_method("multistart").run(FunctionObjective(rosenbrock), lower, upper, Budget(1), 0, Callbacks())
    )
    ref = minimize(rosen, ours.x_start, method="L-BFGS-B", bounds=[(-2, 2)] * 2, tol=1e-8)
    np.testing.assert_allclose(ours.x_final, ref.x, atol=1e-5)
    np.testing.assert_allclose(ours.x_final, [1, 1], atol=1e-4)


def test_multistart_fides_finds_rosenbrock_minimum_inside_bounds():
    # Without a Fisher information (a plain function), fides runs on BFGS updates.
    def rosenbrock(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    lower, upper = np.full(3, -2.0), np.full(3, 2.0)
    method = make_method("multistart", {"local": "fides"})
    results = list(method.run(FunctionObjective(rosenbrock), lower, upper, Budget(3), 0, Callbacks()))
    best = min(results, key=lambda r: r.nllh_final)
    np.testing.assert_allclose(best.x_final, [1, 1, 1], atol=1e-4)
    assert all(r.status in ("ftol", "gtol", "xtol") and np.all(np.abs(r.x_final) <= 2) for r in results)
    # A box that excludes the minimum: the optimum sits on the bound x0 = 0.5.
    upper = np.array([0.5, 2.0, 2.0])
    res = next(method.run(FunctionObjective(rosenbrock), lower, upper, Budget(1), 0, Callbacks()))
    assert res.x_final[0] <= 0.5 + 1e-12 and res.x_final[0] > 0.49


class FailsOnCall(FunctionObjective):
    """The sphere whose value-and-gradient fails (NaN) on the given calls only."""

    def __init__(self, fn, fail_on):
        super().__init__(fn)
        self.fail_on, self.calls = set(fail_on), 0

    def value_and_grad(self, x):
        self.calls += 1
        if self.calls in self.fail_on:
            return math.nan, np.full(len(x), np.nan), 1
        return super().value_and_grad(x)


def test_a_failed_trial_point_does_not_end_a_fides_start():
    # The first trial step fails. fides tests convergence at rejected trial points too: a
    # zero gradient handed to it there stopped starts as "converged" (GTOL) at the start
    # value (Crauste, Elowitz in the first full scoreboard run).
    objective = FailsOnCall(sphere, fail_on={2})
    res = next(
        make_method("multistart").run(objective, np.full(3, -2.0), np.full(3, 2.0), Budget(1), 0, Callbacks())
    )
    assert res.n_failed == 1 and objective.calls > 3
    assert res.status in ("ftol", "gtol", "xtol") and res.nllh_final < 1e-8, (res.nllh_final, res.message)
    np.testing.assert_allclose(res.x_final, CENTER, atol=1e-4)


def half_failing_sphere(x):
    return jnp.where(x[0] < -0.5, jnp.nan, sphere(x))


@pytest.mark.parametrize("name", ["multistart", "cvae"])
def test_start_points_whose_first_evaluation_fails_are_replaced(name):
    lower, upper = np.full(3, -2.0), np.full(3, 2.0)
    options = {"epochs": "20", "samples": "16", "rounds": "1"} if name == "cvae" else {}
    lhs = latin_hypercube(8, lower, upper, 5)
    bad = lhs[:, 0] < -0.5
    assert 2 <= bad.sum() <= 6  # the Latin-hypercube points straddle the failing half

    def run(resample, skip=frozenset()):
        method = make_method(name, options | {"resample": str(resample)})
        objective = FunctionObjective(half_failing_sphere)
        out = method.run(objective, lower, upper, Budget(8), 5, Callbacks(), skip)
        return {r.start: r for r in out}

    plain, replaced = run(0), run(10)
    for i in range(8):
        if bad[i]:  # without replacement the start fails at its Latin-hypercube point
            assert plain[i].status == "failed" and plain[i].n_fevals == 1
            r = replaced[i]
            assert r.x_start[0] >= -0.5 and np.all(r.x_start >= lower) and np.all(r.x_start <= upper)
            assert math.isfinite(r.nllh_start) and r.n_failed >= 1
            assert f"replaced {r.n_failed}x" in r.message
            assert r.nllh_final < 1e-6
        else:  # a point that evaluates is kept as it is
            np.testing.assert_array_equal(replaced[i].x_start, np.clip(lhs[i], lower, upper))
            assert replaced[i].n_failed == 0 and "replaced" not in replaced[i].message
    # Start i's replacements do not depend on which other starts run (resume, Dask chunks).
    i = int(np.flatnonzero(bad)[-1])
    alone = run(10, skip=frozenset(range(8)) - {i})
    np.testing.assert_array_equal(alone[i].x_start, replaced[i].x_start)


def test_target_stops_a_start():
    res = next(
        make_method("multistart").run(
            FunctionObjective(sphere), np.full(3, -2.0), np.full(3, 2.0), Budget(1), 0, Callbacks(target=0.5)
        )
    )
    assert res.status == "stopped" and res.nllh_final <= 0.5
    assert [h[2] for h in res.history if h[2] <= 0.5] == [res.nllh_final]  # stopped at the first hit


def test_max_evals_is_respected():
    res = next(
        make_method("multistart").run(
            FunctionObjective(sphere),
            np.full(3, -2.0),
            np.full(3, 2.0),
            Budget(1, max_evals=3),
            0,
            Callbacks(),
        )
    )
    assert res.status == "max_evals" and res.n_fevals == 3


def test_cmaes_ipop_restarts_grow_the_population_within_one_start():
    from pe_bench.methods.cmaes import default_popsize

    lower, upper = np.full(3, -2.0), np.full(3, 2.0)
    plain = next(make_method("cmaes").run(FunctionObjective(sphere), lower, upper, Budget(1), 0, Callbacks()))
    assert plain.status.startswith("tol") and plain.extra["restarts"] == 0 and plain.status in plain.message
    assert plain.nllh_final < 1e-9
    ipop = make_method("cmaes", {"ipop": "true", "max_restarts": "2"})
    res = next(ipop.run(FunctionObjective(sphere), lower, upper, Budget(1), 0, Callbacks()))
    assert res.extra["restarts"] == 2 and res.extra["popsize"] == 4 * default_popsize(3)
    assert res.n_fevals > plain.n_fevals and "2 IPOP restart(s)" in res.message
    # the start point is evaluated with the first generation
    np.testing.assert_array_equal(res.x_start, latin_hypercube(1, lower, upper, 0)[0])
    assert res.nllh_start == pytest.approx(float(sphere(jnp.asarray(res.x_start))))


class BatchLog(FunctionObjective):
    """Records the size of every batched call."""

    def __init__(self, fn):
        super().__init__(fn)
        self.sizes = []

    def batch(self, xs):
        self.sizes.append(len(xs))
        return super().batch(xs)


def rastrigin(x):
    return 10 * x.shape[0] + jnp.sum(x**2 - 10 * jnp.cos(2 * jnp.pi * x))


def test_sacess_finds_the_rastrigin_minimum_with_combinations_in_batches():
    from pe_bench.methods.sacess import dim_refset

    lower, upper = np.full(3, -5.12), np.full(3, 5.12)
    objective = BatchLog(rastrigin)
    method = make_method("sacess", {"workers": "3"})
    res = next(method.run(objective, lower, upper, Budget(1, max_evals=6000), 0, Callbacks()))
    assert res.nllh_final < 1e-8 and np.all(np.abs(res.x_final) < 1e-4), (res.nllh_final, res.x_final)
    assert res.status == "max_evals" and "local searches" in res.message
    # one batch per combination step holds every worker's b (b - 1) children
    b = [dim_refset(x, 3) for x in (1, 3, 5)]
    assert max(objective.sizes) >= sum(k * (k - 1) for k in b)
    assert res.n_fevals == 6000 and sum(objective.sizes) <= 6000


@pytest.fixture(scope="module")
def cortisol():
    pb = resolve("cortisol")
    return pb, Objective(pb)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_method_fits_cortisol(name, cortisol, tmp_path):
    # Default method options; 6 starts instead of 20 to keep CI short.
    pb, objective = cortisol
    nllh_true, _ = objective.value(pb.x_true)
    path = run_method(pb, make_method(name), Budget(n_starts=6), 0, tmp_path, objective=objective)
    df = pd.read_parquet(path)
    assert len(df) == 6
    assert df["nllh_final"].min() <= nllh_true + 0.5
    lower, upper = pb.bounds
    for x in df["x_final"]:
        assert np.all(np.asarray(x) >= lower - 1e-12) and np.all(np.asarray(x) <= upper + 1e-12)


@pytest.mark.slow
def test_cvae_is_deterministic_and_records_rounds(cortisol, tmp_path):
    pb, objective = cortisol
    options = {"rounds": "2", "samples": "64", "epochs": "150"}
    frames = []
    for k in range(2):
        path = run_method(
            pb, make_method("cvae", options), Budget(4), 7, tmp_path / str(k), objective=objective
        )
        frames.append(pd.read_parquet(path))
    a, b = frames
    np.testing.assert_array_equal(np.stack(a["x_final"]), np.stack(b["x_final"]))
    np.testing.assert_array_equal(a["nllh_final"], b["nllh_final"])
    assert list(a["round"]) == [0, 0, 1, 1]
    assert a["label"].isna().sum() == 2 and (a.loc[a["round"] == 1, "label"] == 0.0).all()
    stats = read_metadata(path)["round_stats"]
    assert [s["kind"] for s in stats] == ["lhs", "cvae"]
    assert all("n_failed" in s for s in stats)


def test_results_schema_metadata_and_resume(cortisol, tmp_path):
    pb, objective = cortisol
    method, budget = make_method("multistart"), Budget(4, max_evals=20)

    def interrupt(res):
        if res.start == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_method(pb, method, budget, 3, tmp_path, objective=objective, on_start_done=interrupt)
    path = tmp_path / "cortisol/multistart/seed3.starts.parquet"
    first = pd.read_parquet(path)
    assert list(first["start"]) == [0, 1]
    assert list(first.columns[:13]) == [
        "problem",
        "method",
        "seed",
        "start",
        "x_start",
        "x_final",
        "nllh_start",
        "nllh_final",
        "n_fevals",
        "n_gevals",
        "wall_time_s",
        "status",
        "message",
    ]
    assert {"command", "versions", "solver", "method_options", "budget"} <= set(read_metadata(path))
    with pytest.raises(Exception, match="use --resume"):
        run_method(pb, method, budget, 3, tmp_path, objective=objective)
    run_method(pb, method, budget, 3, tmp_path, objective=objective, resume=True)
    resumed = pd.read_parquet(path)
    assert list(resumed["start"]) == [0, 1, 2, 3]
    # Same problem, method, options and seed in a fresh folder: the same numbers.
    fresh = pd.read_parquet(run_method(pb, method, budget, 3, tmp_path / "b", objective=objective))
    np.testing.assert_array_equal(fresh["nllh_final"], resumed["nllh_final"])
    np.testing.assert_array_equal(np.stack(fresh["x_final"]), np.stack(resumed["x_final"]))


def test_interrupt_keeps_finished_starts(cortisol, tmp_path):
    pb, objective = cortisol

    def interrupt(res):
        if res.start == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_method(
            pb,
            make_method("multistart"),
            Budget(5, max_evals=15),
            0,
            tmp_path,
            objective=objective,
            on_start_done=interrupt,
        )
    df, hist = load_results(tmp_path)
    assert list(df["start"]) == [0, 1] and math.isfinite(df["nllh_final"].min())
    assert not list(tmp_path.rglob("*.part"))


@pytest.mark.slow
@pytest.mark.parametrize("local", ["fides", "L-BFGS-B"])
def test_boehm_multistart_reaches_best_known(local, tmp_path):
    # Acceptance: 20 Latin-hypercube starts reach the best known nllh 138.222.
    from helpers import yaml_of

    from pe_bench.problems.petab_io import load_petab

    pb = load_petab(yaml_of("Boehm_JProteomeRes2014"))
    path = run_method(pb, make_method("multistart", {"local": local}), Budget(20), 0, tmp_path)
    df = pd.read_parquet(path)
    assert len(df) == 20
    assert df["nllh_final"].min() <= 138.222 + 0.1
