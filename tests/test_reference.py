"""The objective against the benchmark collection's published values (independent references)."""

import numpy as np
import pandas as pd
import pytest
from helpers import SHARED, nllh_central_differences, reference, reference_ids, shared_objective, yaml_of

from pe_bench.objective import Objective
from pe_bench.problems.petab_io import load_petab
from pe_bench.simulate import SolverOptions

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("problem_id", reference_ids())
def test_nominal_llh_matches_reference(problem_id):
    ref = float(reference().loc[problem_id, "llh_at_nominal"])
    objective = shared_objective(problem_id)
    nllh, status = objective.value(objective.problem.x_nominal)
    assert status == 0
    assert abs(-nllh - ref) <= max(1e-3, 1e-4 * abs(ref)), (-nllh, ref)


def _grouped(obs_ids, times, values) -> dict[tuple[str, float], np.ndarray]:
    """Values per (observable, time), sorted: a permutation-invariant view of a table."""
    t = [float(f"{v:.6g}") for v in np.asarray(times, float)]  # tables round times differently
    df = pd.DataFrame({"o": list(obs_ids), "t": t, "v": np.asarray(values, float)})
    return {k: np.sort(g["v"].to_numpy()) for k, g in df.groupby(["o", "t"])}


#: simulatedData tables that disagree with the collection's own REFERENCE.tsv: their
#: values, put into the likelihood, give an llh far from the reference, which our
#: simulation reproduces to 1e-5 (see test_stale_simulated_data_contradicts_reference).
STALE_SIMULATED_DATA = {
    "Fujita_SciSignal2010": "llh(simulatedData) = 52.84 vs reference 53.08",
    "Zheng_PNAS2012": "llh(simulatedData) = 308.33 vs reference 278.33",
}


@pytest.mark.parametrize(
    "problem_id",
    [
        pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=STALE_SIMULATED_DATA[p]))
        if p in STALE_SIMULATED_DATA
        else p
        for p in reference_ids()
    ],
)
def test_simulated_observables_match_collection(problem_id):
    # The collection's simulatedData tables name conditions and noise parameters as an
    # older version of the problem did, so rows are matched per (observable, time),
    # comparing the sorted values of each group.
    objective = shared_objective(problem_id)
    pb = objective.problem
    sim = objective.simulate(pb.x_nominal)
    expected = pd.read_csv(SHARED / problem_id / f"simulatedData_{problem_id}.tsv", sep="\t")
    assert len(expected) == len(pb.meas_y)
    want = _grouped(expected["observableId"], expected["time"], expected["simulation"])
    got = _grouped([pb.observables[k].id for k in pb.meas_obs], pb.meas_t, sim["y"])
    assert want.keys() == got.keys()
    scale = np.max(np.abs(expected["simulation"]))
    for key, values in want.items():
        np.testing.assert_allclose(got[key], values, rtol=1e-4, atol=1e-6 * scale, err_msg=str(key))


def test_problem_with_events_matches_its_simulated_data():
    # Liu_IFACPapersOnLine2025 has an SBML event (U < 1e-8 sets U = 0) and a noise formula
    # of states, which petab's llh calculator cannot evaluate: the check is the collection's
    # simulated observables themselves, per condition, observable and time (rel. 1e-4).
    problem_id = "Liu_IFACPapersOnLine2025"
    objective = Objective(load_petab(yaml_of(problem_id)))
    pb = objective.problem
    assert pb.model.events
    sim = objective.simulate(pb.x_nominal)
    expected = pd.read_csv(SHARED / problem_id / f"simulatedData_{problem_id}.tsv", sep="\t")
    ours = pb.measurement_df.reset_index(drop=True).assign(simulation=np.asarray(sim["y"]))
    keys = ["simulationConditionId", "observableId", "time"]
    want = expected.groupby(keys)["simulation"].agg(["min", "max"])
    got = ours.groupby(keys)["simulation"].agg(["min", "max"])
    assert want.index.equals(got.index)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-4)
    value, grad, status = objective.value_and_grad(pb.x_nominal)
    assert status == 0 and np.isfinite(value) and np.all(np.isfinite(grad))


#: petab's llh of Blasi_CellSystems2016's simulatedData table (measured with the petab
#: library from the collection's files; the issue that asked for steady states quotes it).
BLASI_SIMULATED_LLH = 642.8268936157374


def test_steady_state_measurements_match_simulated_data():
    # Blasi_CellSystems2016 measures every observable at time = inf: the steady state of
    # its one condition. The collection's simulatedData table holds one value per
    # observable (more rows than the measurement table); put on the measurement rows by
    # observable, petab's own likelihood code scores it; pe_bench's llh must match.
    import petab.v1 as petab

    problem_id = "Blasi_CellSystems2016"
    pb = load_petab(yaml_of(problem_id))
    assert pb.sim_steady is not None and pb.sim_steady.all() and np.isinf(pb.meas_t).all()
    objective = Objective(pb)
    nllh, status = objective.value(pb.x_nominal)
    assert status == 0
    problem = petab.Problem.from_yaml(str(yaml_of(problem_id)))
    table = pd.read_csv(SHARED / problem_id / f"simulatedData_{problem_id}.tsv", sep="\t")
    sim_df = problem.measurement_df.rename(columns={"measurement": "simulation"})
    assert (table.groupby("observableId")["simulation"].nunique() == 1).all()
    per_observable = table.groupby("observableId")["simulation"].first()
    sim_df["simulation"] = per_observable.loc[problem.measurement_df["observableId"]].to_numpy()
    ref = petab.calculate_llh(problem.measurement_df, sim_df, problem.observable_df, problem.parameter_df)
    assert abs(ref - BLASI_SIMULATED_LLH) < 1e-9
    assert abs(-nllh - ref) <= max(1e-3, 1e-4 * abs(ref)), (-nllh, ref)
    ours = objective.simulate(pb.x_nominal)["y"]
    np.testing.assert_allclose(ours, sim_df["simulation"].to_numpy(), rtol=1e-4)


def test_steady_state_gradient_matches_central_differences():
    pb = load_petab(yaml_of("Blasi_CellSystems2016"))
    objective = Objective(
        pb, SolverOptions(rtol=1e-12, atol=1e-14, steady_state_rtol=1e-13, steady_state_atol=1e-15)
    )
    lower, upper = pb.bounds
    x = np.clip(pb.x_nominal + 0.1, lower, upper - 1e-3)
    nllh, grad, status = objective.value_and_grad(x)
    assert status == 0
    fd = nllh_central_differences(objective, x, h=1e-4)
    np.testing.assert_allclose(grad, fd, rtol=1e-3, atol=1e-4 * max(1.0, np.max(np.abs(fd))))


@pytest.mark.parametrize("problem_id", sorted(STALE_SIMULATED_DATA))
def test_stale_simulated_data_contradicts_reference(problem_id):
    # Rows of these tables follow the measurement table, so the simulated values can be put
    # straight into PEtab's likelihood (computed by the petab library, not by pe_bench).
    import petab.v1 as petab

    pb = load_petab(yaml_of(problem_id))
    stale = pd.read_csv(SHARED / problem_id / f"simulatedData_{problem_id}.tsv", sep="\t")
    ours = shared_objective(problem_id).simulate(pb.x_nominal)
    problem = petab.Problem.from_yaml(str(yaml_of(problem_id)))
    ref = float(reference().loc[problem_id, "llh_at_nominal"])

    def llh(values):
        sim_df = problem.measurement_df.copy()
        sim_df = sim_df.rename(columns={"measurement": "simulation"})
        sim_df["simulation"] = values
        return petab.calculate_llh(
            problem.measurement_df, sim_df, problem.observable_df, problem.parameter_df
        )

    assert abs(llh(ours["y"]) - ref) <= max(1e-3, 1e-4 * abs(ref))
    assert abs(llh(stale["simulation"].to_numpy()) - ref) > 0.1


def test_perelson_imports_and_evaluates():
    pb = load_petab(SHARED / "Perelson_Science1996" / "Perelson_Science1996.yaml")
    assert len(pb.x_ids) == 3
    nllh, status = Objective(pb).value(pb.x_nominal)
    assert status == 0
    assert np.isfinite(nllh)


@pytest.mark.parametrize(
    "problem_id, sensitivity, solver",
    [
        ("Boehm_JProteomeRes2014", "forward", "rodas5"),
        ("Boehm_JProteomeRes2014", "forward", "kvaerno5"),
        ("Boehm_JProteomeRes2014", "reverse", "kvaerno5"),
        ("Bruno_JExpBot2016", "auto", "auto"),
        ("Fiedler_BMCSystBiol2016", "auto", "auto"),
        ("Brannmark_JBC2010", "forward", "rodas5"),  # pre-equilibration
        ("Brannmark_JBC2010", "reverse", "kvaerno5"),
    ],
)
def test_gradient_matches_central_differences(problem_id, sensitivity, solver):
    # Away from the optimum (gradients well above solver noise) and at tight tolerances,
    # so that central differences are accurate to ~1e-6 relative.
    pb = load_petab(yaml_of(problem_id))
    objective = Objective(pb, SolverOptions(rtol=1e-12, atol=1e-14, sensitivity=sensitivity, solver=solver))
    assert objective.options.sensitivity in ("forward", "reverse")
    assert objective.options.solver in ("rodas5", "kvaerno5")
    lower, upper = pb.bounds
    x = np.clip(pb.x_nominal + 0.1, lower, upper - 1e-3)
    nllh, grad, status = objective.value_and_grad(x)
    assert status == 0
    fd = nllh_central_differences(objective, x, h=1e-4)
    np.testing.assert_allclose(grad, fd, rtol=1e-3, atol=1e-4 * max(1.0, np.max(np.abs(fd))))


#: AMICI's forward and adjoint sensitivities of Weber_BMC2015's nllh at its nominal point
#: (they agree with each other and with central differences; quoted in the issue that
#: found pe_bench's gradient there 40 % off, from a steady state whose sensitivities had
#: not converged with its state).
WEBER_AMICI_GRADIENT = {"s12": -0.0216, "s31": 0.00246, "a31": 0.01125, "a11": 0.0187}


def test_preequilibrated_gradient_at_nominal_matches_amici():
    # Weber's pre-equilibration meets its ||dx/dt|| criterion while a slow mode of the
    # sensitivities is still far from its limit: the steady state's tangent must come from
    # the implicit function theorem (solvers/steady.py), not from the simulated path.
    pb = load_petab(yaml_of("Weber_BMC2015"))
    objective = Objective(pb, SolverOptions(rtol=1e-12, atol=1e-14))
    nllh, grad, status = objective.value_and_grad(pb.x_nominal)
    assert status == 0 and abs(nllh - 296.20180) < 1e-4
    got = {k: grad[pb.x_ids.index(k)] for k in WEBER_AMICI_GRADIENT}
    for key, want in WEBER_AMICI_GRADIENT.items():
        # AMICI's figures are given to 3-4 digits; the wrong gradient was off by 0.003-0.009.
        assert abs(got[key] - want) <= 1e-4, (key, got[key], want)


def test_load_is_repeatable_and_from_yaml_path_only():
    # The objective depends on the files only: loading twice gives the same value.
    pb1 = load_petab(yaml_of("Boehm_JProteomeRes2014"))
    pb2 = load_petab(yaml_of("Boehm_JProteomeRes2014"))
    assert pb1.x_ids == pb2.x_ids
    np.testing.assert_array_equal(pb1.meas_y, pb2.meas_y)


def test_fisher_information_matches_finite_differences():
    # FIM = sum over measurements of (d h(y) / sigma)(...)^T + w (d log sigma)(...)^T,
    # w = 2 for normal noise, built here from central differences of the simulation.
    pb = load_petab(yaml_of("Boehm_JProteomeRes2014"))  # noise parameters are estimated
    objective = Objective(pb, SolverOptions(rtol=1e-12, atol=1e-14))
    lower, upper = pb.bounds
    x = np.clip(pb.x_nominal + 0.1, lower, upper - 1e-3)
    nllh, grad, fim, status = objective.value_grad_fim(x)
    assert status == 0
    v2, g2, _ = objective.value_and_grad(x)
    np.testing.assert_allclose([nllh, *grad], [v2, *g2], rtol=1e-12)
    trans = np.array([pb.observables[k].transformation for k in pb.meas_obs])

    def features(x):
        sim = objective.simulate(x)
        y, sigma = sim["y"], sim["sigma"]
        safe = np.where(trans == "lin", 1.0, y)
        hy = np.where(trans == "log10", np.log10(safe), np.where(trans == "log", np.log(safe), y))
        return hy, sigma

    h = 1e-5
    jy, js = [], []
    for i in range(len(x)):
        e = np.zeros_like(x)
        e[i] = h
        (yp, sp), (ym, sm) = features(x + e), features(x - e)
        jy.append((yp - ym) / (2 * h))
        js.append((np.log(sp) - np.log(sm)) / (2 * h))
    jy, js = np.array(jy), np.array(js)
    sigma = features(x)[1]
    expected = (jy / sigma) @ (jy / sigma).T + 2 * js @ js.T
    np.testing.assert_allclose(fim, expected, rtol=1e-5, atol=1e-6 * np.max(np.abs(expected)))
