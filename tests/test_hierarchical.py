"""Hierarchical observable parameters (pe_bench.hierarchical): the inner optimum against
closed-form least squares on an analytic model, the envelope-theorem gradient against
central differences and against the full problem's gradient, and Boehm's sigmas."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sbml_builders as sb
from helpers import shared_objective

from pe_bench.hierarchical import find_inner
from pe_bench.objective import Objective
from pe_bench.problems.petab_io import load_petab

K, X0 = 0.4, 3.0
TIMES = np.array([0.5, 1.0, 2.0, 3.0, 5.0, 8.0])
#: obsA in two blots: scale sA1 or sA2, shared offset oA and sigma sigA.
A1 = np.array([3.9, 3.0, 1.9, 1.35, 0.8, 0.55])
A2 = np.array([6.1, 4.9, 3.2, 2.2, 1.2, 0.7])
B = np.array([2.7, 2.1, 1.5, 0.85, 0.45, 0.11])  # obsB = sB * x, sigma sigB
C = np.array([2.4, 2.1, 1.3, 0.95, 0.42, 0.12])  # obsC = x on log scale, sigma sigC


def write_problem(folder: Path) -> Path:
    """dx/dt = -k x, x(0) = x0 (both estimated), three observables with inner parameters."""
    doc, model = sb.new_model()
    sb.compartment(model, "c", 1.0)
    sb.species(model, "x", "c", conc=1.0)
    sb.parameter(model, "k", 1.0)
    sb.parameter(model, "x0", 1.0)
    ia = model.createInitialAssignment()
    ia.setSymbol("x")
    ia.setMath(sb.math("x0"))
    sb.reaction(model, "decay", ["x"], [], "k * x")
    folder.mkdir(parents=True, exist_ok=True)
    sb.write(doc, folder / "model.xml")
    (folder / "conditions.tsv").write_text("conditionId\tconditionName\nc0\tc0\n")
    (folder / "observables.tsv").write_text(
        "observableId\tobservableFormula\tnoiseFormula\tobservableTransformation\n"
        "obsA\tobservableParameter1_obsA * x + observableParameter2_obsA\tnoiseParameter1_obsA\tlin\n"
        "obsB\tsB * x\tsigB\tlin\n"
        "obsC\tx\tnoiseParameter1_obsC\tlog\n"
    )
    rows = ["observableId\tsimulationConditionId\tmeasurement\ttime\tobservableParameters\tnoiseParameters"]
    rows += [
        f"obsA\tc0\t{v!r}\t{t!r}\tsA1;oA\tsigA" for t, v in zip(TIMES.tolist(), A1.tolist(), strict=True)
    ]
    rows += [
        f"obsA\tc0\t{v!r}\t{t!r}\tsA2;oA\tsigA" for t, v in zip(TIMES.tolist(), A2.tolist(), strict=True)
    ]
    rows += [f"obsB\tc0\t{v!r}\t{t!r}\t\t" for t, v in zip(TIMES.tolist(), B.tolist(), strict=True)]
    rows += [f"obsC\tc0\t{v!r}\t{t!r}\t\tsigC" for t, v in zip(TIMES.tolist(), C.tolist(), strict=True)]
    (folder / "measurements.tsv").write_text("\n".join(rows) + "\n")
    params = {
        "k": (K, 0.01, 10, "log10"),
        "x0": (X0, 0.1, 100, "log10"),
        "sA1": (1.0, 1e-3, 1e3, "log10"),
        "sA2": (1.0, 1e-3, 1e3, "log10"),
        "oA": (0.0, -10, 10, "lin"),
        "sB": (1.0, 1e-3, 1e3, "log10"),
        "sigA": (1.0, 1e-4, 1e2, "log10"),
        "sigB": (1.0, 1e-4, 1e2, "log10"),
        "sigC": (1.0, 1e-4, 1e2, "log10"),
    }
    rows = ["parameterId\tparameterScale\tlowerBound\tupperBound\tnominalValue\testimate"]
    rows += [f"{p}\t{sc}\t{lo!r}\t{hi!r}\t{v!r}\t1" for p, (v, lo, hi, sc) in params.items()]
    (folder / "parameters.tsv").write_text("\n".join(rows) + "\n")
    return sb.petab_yaml(folder)


def normal_nllh(r, sigma):
    return float(np.sum(0.5 * np.log(2 * np.pi * sigma**2) + 0.5 * (r / sigma) ** 2))


def closed_form(k: float, x0: float) -> tuple[float, dict[str, float]]:
    """The nllh at the inner optimum, by least squares on the analytic solution."""
    x = x0 * np.exp(-k * TIMES)
    zero = np.zeros_like(x)
    design = np.block(
        [[x[:, None], zero[:, None], np.ones((6, 1))], [zero[:, None], x[:, None], np.ones((6, 1))]]
    )
    (sa1, sa2, oa), *_ = np.linalg.lstsq(design, np.concatenate([A1, A2]), rcond=None)
    ra = np.concatenate([A1, A2]) - design @ [sa1, sa2, oa]
    sb_ = float(B @ x / (x @ x))
    rb = B - sb_ * x
    rc = np.log(C) - np.log(x)
    sig = {"sigA": np.sqrt(np.mean(ra**2)), "sigB": np.sqrt(np.mean(rb**2)), "sigC": np.sqrt(np.mean(rc**2))}
    value = normal_nllh(ra, sig["sigA"]) + normal_nllh(rb, sig["sigB"])
    value += normal_nllh(rc, sig["sigC"]) + float(np.sum(np.log(C)))  # log-normal density's Jacobian
    return value, {"sA1": sa1, "sA2": sa2, "oA": oa, "sB": sb_} | sig


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    return load_petab(write_problem(tmp_path_factory.mktemp("hier") / "p"))


@pytest.fixture(scope="module")
def hier(problem):
    return Objective(problem, hierarchical=True)


@pytest.fixture(scope="module")
def full(problem):
    return Objective(problem)


def test_inner_parameters_found_from_the_formulas(problem):
    inner = find_inner(problem)
    kinds = dict(zip(inner.ids, inner.kinds, strict=True))
    assert kinds == {
        "sA1": "scaling",
        "sA2": "scaling",
        "oA": "offset",
        "sB": "scaling",
        "sigA": "sigma",
        "sigB": "sigma",
        "sigC": "sigma",
    }
    assert [problem.x_ids[i] for i in inner.outer_pos] == ["k", "x0"]


@pytest.mark.parametrize("k, x0", [(K, X0), (0.25, 4.5)])
def test_value_is_the_closed_form_optimum(problem, hier, full, k, x0):
    h = hier
    assert h.problem.x_ids == ["k", "x0"]
    x = np.log10([k, x0])
    value, status = h.value(x)
    expected, inner = closed_form(k, x0)
    assert status == 0
    assert value == pytest.approx(expected, rel=1e-9)
    full_x = dict(zip(problem.x_ids, h.full_x(x), strict=True))
    for pid, v in inner.items():
        got = full_x[pid] if pid == "oA" else 10 ** full_x[pid]
        assert got == pytest.approx(v, rel=1e-6, abs=1e-9), pid
    # The full problem at the full vector: the same value, a zero gradient in the inner
    # parameters, and the outer gradient the hierarchical one (envelope theorem).
    v_full, g_full, _ = full.value_and_grad(h.full_x(x))
    v_h, g_h, _ = h.value_and_grad(x)
    assert v_full == pytest.approx(v_h, rel=1e-12)
    inner_pos = h.inner.x_pos
    np.testing.assert_allclose(g_full[inner_pos], 0.0, atol=1e-6)
    np.testing.assert_allclose(g_h, g_full[h.inner.outer_pos], rtol=1e-7, atol=1e-9)


def test_gradient_matches_central_differences(hier):
    h = hier
    x = np.log10([0.25, 4.5])
    _, g, _ = h.value_and_grad(x)
    step = 1e-5
    fd = [(h(x + step * e) - h(x - step * e)) / (2 * step) for e in np.eye(2)]
    np.testing.assert_allclose(g, fd, rtol=1e-5)


def test_products_of_inner_candidates_and_non_affine_formulas_stay_outer(tmp_path):
    doc, model = sb.new_model()
    sb.compartment(model, "c", 1.0)
    sb.species(model, "x", "c", conc=2.0)
    sb.parameter(model, "k", 0.3)
    sb.reaction(model, "decay", ["x"], [], "k * x")
    yaml = sb.petab_problem(
        tmp_path / "p",
        doc,
        {
            "k": (0.3, 0.01, 10, "log10"),
            "s1": (1.0, 0.01, 10, "log10"),
            "s2": (1.0, 0.01, 10, "log10"),
            "e": (1.0, 0.1, 3, "lin"),
        },
        {"y1": "s1 * s2 * x", "y2": "x ^ e"},
        [("y1", 1.0, 1.5), ("y2", 1.0, 1.2), ("y1", 2.0, 1.1), ("y2", 2.0, 0.9)],
    )
    inner = find_inner(load_petab(yaml))
    assert inner.ids == ["s1"]
    assert any(n.startswith("s2 stays outer: it multiplies s1") for n in inner.notes)
    assert any(n.startswith("e stays outer: observable y2 is not affine") for n in inner.notes)


def test_boehm_sigmas_against_the_full_problem():
    """A real problem: Boehm's three sigmas at their closed form, checked on the full problem."""
    full = shared_objective("Boehm_JProteomeRes2014")
    h = Objective(full.problem, hierarchical=True)
    assert sorted(h.inner.ids) == ["sd_pSTAT5A_rel", "sd_pSTAT5B_rel", "sd_rSTAT5A_rel"]
    x = h.problem.x_nominal
    value, _ = h.value(x)
    x_full = h.full_x(x)
    v_full, g_full, status = full.value_and_grad(x_full)
    assert status == 0 and v_full == pytest.approx(value, rel=1e-12)
    # At least as good as the published nominal sigmas, and stationary in them.
    assert value <= full.value(full.problem.x_nominal)[0] + 1e-9
    np.testing.assert_allclose(g_full[h.inner.x_pos], 0.0, atol=1e-6)
    _, g_h, _ = h.value_and_grad(x)
    np.testing.assert_allclose(g_h, g_full[h.inner.outer_pos], rtol=1e-7, atol=1e-8)


def test_run_records_every_parameter_and_refuses_a_mixed_resume(problem, hier, full, tmp_path):
    from pe_bench.errors import ProblemSpecError
    from pe_bench.methods import Budget
    from pe_bench.runner import make_method, run_method

    budget = Budget(n_starts=2, max_evals=40)
    path = run_method(problem, make_method("multistart", {}), budget, 0, tmp_path, objective=hier)
    rows = pd.read_parquet(path)
    assert all(len(x) == len(problem.x_ids) for x in rows["x_final"])
    for x, v in zip(rows["x_final"], rows["nllh_final"], strict=True):
        assert full.value(np.asarray(x))[0] == pytest.approx(v, rel=1e-9)
    with pytest.raises(ProblemSpecError, match="written with --hierarchical"):
        run_method(problem, make_method("multistart", {}), budget, 0, tmp_path, resume=True, objective=full)
