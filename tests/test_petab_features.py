"""PEtab features together: pre-equilibration with events, several observable placeholders,
a noise formula of states; the llh against a closed-form solution, the gradient against
central differences."""

from pathlib import Path

import numpy as np
import pytest
import sbml_builders as sb

from pe_bench.objective import Objective
from pe_bench.problems.petab_io import load_petab

#: Nominal values of the estimated parameters.
P = {"d": 0.7, "b": 1.5, "k_pre": 2.0, "k_sim": 0.5, "scale_p": 1.3, "offset_p": 0.2, "sigma_p": 0.1}
#: Measurements: (time, observableParameters, value).
ROWS = [
    (0.5, "scale_p;offset_p", 3.1),
    (1.0, "scale_p;offset_p", 2.6),
    (3.0, "2.0;0.1", 4.0),
    (5.0, "scale_p;0.3", 1.9),
    (8.0, "1.5;offset_p", 1.2),
]


def write_problem(folder: Path) -> Path:
    """dx/dt = k - d x, x(0) = 0; an event at t >= 2 adds b to x. Pre-equilibrated with
    k = k_pre, simulated with k = k_sim; y = s x + o with (s, o) per measurement,
    sigma = sigma_p x + 0.05."""
    doc, model = sb.new_model()
    sb.compartment(model, "c", 1.0)
    sb.species(model, "x", "c", conc=0.0)
    for pid in ("k", "d", "b"):
        sb.parameter(model, pid, 1.0)
    sb.reaction(model, "production", [], ["x"], "k")
    sb.reaction(model, "degradation", ["x"], [], "d * x")
    sb.event(model, "bolus", "time >= 2", "x", "x + b")
    folder.mkdir(parents=True, exist_ok=True)
    sb.write(doc, folder / "model.xml")
    (folder / "conditions.tsv").write_text("conditionId\tk\npre\tk_pre\nsim\tk_sim\n")
    (folder / "observables.tsv").write_text(
        "observableId\tobservableFormula\tnoiseFormula\n"
        "obs\tobservableParameter1_obs * x + observableParameter2_obs\tnoiseParameter1_obs * x + 0.05\n"
    )
    lines = ["observableId\tpreequilibrationConditionId\tsimulationConditionId\tmeasurement\ttime"
             "\tobservableParameters\tnoiseParameters"]  # fmt: skip
    lines += [f"obs\tpre\tsim\t{v!r}\t{t!r}\t{op}\tsigma_p" for t, op, v in ROWS]
    (folder / "measurements.tsv").write_text("\n".join(lines) + "\n")
    lines = ["parameterId\tparameterScale\tlowerBound\tupperBound\tnominalValue\testimate"]
    lines += [f"{p}\tlog10\t0.001\t100\t{v!r}\t1" for p, v in P.items()]
    (folder / "parameters.tsv").write_text("\n".join(lines) + "\n")
    return sb.petab_yaml(folder)


def closed_form_nllh(p: dict[str, float]) -> float:
    x0 = p["k_pre"] / p["d"]  # the bolus during pre-equilibration has decayed by steady state
    total = 0.0
    for t, op, m in ROWS:
        x = p["k_sim"] / p["d"] + (x0 - p["k_sim"] / p["d"]) * np.exp(-p["d"] * t)
        if t >= 2:
            x += p["b"] * np.exp(-p["d"] * (t - 2))
        s, o = (p[v] if v in p else float(v) for v in op.split(";"))
        y, sigma = s * x + o, p["sigma_p"] * x + 0.05
        total += 0.5 * np.log(2 * np.pi * sigma**2) + 0.5 * ((m - y) / sigma) ** 2
    return total


def test_preequilibration_events_placeholders_and_state_noise(tmp_path):
    pb = load_petab(write_problem(tmp_path / "p"))
    assert pb.model.events and (pb.sim_preeq >= 0).all()
    assert [len(o.observable_placeholders) for o in pb.observables] == [2]
    objective = Objective(pb)
    assert objective.options.solver == "rodas5"
    x = pb.x_nominal
    nllh, status = objective.value(x)
    assert status == 0
    assert nllh == pytest.approx(closed_form_nllh(P), rel=1e-7)
    # Elsewhere too (the event's time does not move; the steady state and the jump do).
    x2 = x + np.linspace(-0.1, 0.1, len(x))
    p2 = dict(zip(pb.x_ids, 10.0**x2, strict=True))
    assert objective.value(x2)[0] == pytest.approx(closed_form_nllh(p2), rel=1e-7)
    _, grad, status = objective.value_and_grad(x2)
    assert status == 0
    h = 1e-5
    fd = np.array([(closed_form_nllh(dict(zip(pb.x_ids, 10.0 ** (x2 + h * e), strict=True)))
                    - closed_form_nllh(dict(zip(pb.x_ids, 10.0 ** (x2 - h * e), strict=True)))) / (2 * h)
                   for e in np.eye(len(x2))])  # fmt: skip
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)
