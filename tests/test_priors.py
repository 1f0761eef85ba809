"""Objective priors (PEtab objectivePriorType): off by default, hand-computed sums when on."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from pe_bench.cli import app
from pe_bench.errors import ProblemSpecError
from pe_bench.objective import Objective
from pe_bench.problems.petab_io import load_petab
from pe_bench.results import read_metadata

CORTISOL = Path(__file__).resolve().parents[1] / "pe_bench" / "problems" / "builtin" / "cortisol"


def _with_priors(tmp_path: Path, priors: dict[str, tuple[str, str]]) -> Path:
    """The cortisol problem with objectivePriorType/Parameters set per parameter id."""
    folder = tmp_path / "cortisol_priors"
    shutil.copytree(CORTISOL, folder)
    table_path = folder / "parameters_cortisol.tsv"
    table = pd.read_csv(table_path, sep="\t")
    table["objectivePriorType"] = [priors.get(p, ("", ""))[0] for p in table["parameterId"]]
    table["objectivePriorParameters"] = [priors.get(p, ("", ""))[1] for p in table["parameterId"]]
    table.to_csv(table_path, sep="\t", index=False)
    return folder / "cortisol.yaml"


def _laplace(v, mu, b):
    return np.log(2 * b) + abs(v - mu) / b


def test_priors_added_only_when_asked_and_equal_hand_computed_sum(tmp_path):
    yaml = _with_priors(
        tmp_path,
        {
            "K1": ("normal", "3;1"),
            "K2": ("laplace", "1;0.5"),
            "K3": ("logNormal", "3;0.5"),
            "K4": ("logLaplace", "0;0.3"),
            "K5": ("parameterScaleNormal", "0;1"),
        },
    )
    pb = load_petab(yaml)
    assert pb.priors is not None and pb.priors.n == 5
    assert any("objective priors" in n for n in pb.notes)
    x = pb.x_nominal + 0.1
    th = 10.0**x
    plain, with_priors = Objective(pb), Objective(pb, priors=True)
    nllh = plain(x)
    # The plain objective is the likelihood alone: equal to the problem without priors.
    assert nllh == pytest.approx(Objective(load_petab(CORTISOL / "cortisol.yaml"))(x), rel=1e-12)
    hand = (
        -stats.norm.logpdf(th[0], 3, 1)
        + _laplace(th[1], 1, 0.5)
        - stats.lognorm.logpdf(th[2], s=0.5, scale=np.exp(3))
        + np.log(th[3]) + _laplace(np.log(th[3]), 0, 0.3)
        - stats.norm.logpdf(x[4], 0, 1)
    )  # fmt: skip
    assert with_priors(x) - nllh == pytest.approx(hand, rel=1e-10)

    # The petab library's untruncated densities of theta agree for the linear-space types;
    # for parameterScaleNormal it evaluates a density of theta, ours is the one of x
    # (pyPESTO's reading): they differ by the change of variables log(theta ln 10).
    from petab.v1.priors import Prior

    lo, hi = 0.01, 1000.0
    kinds = [("normal", (3, 1)), ("laplace", (1, 0.5)), ("logNormal", (3, 0.5)), ("logLaplace", (0, 0.3))]
    for k, (kind, pars) in enumerate(kinds):
        ref = Prior(kind, pars, bounds=(lo, hi), transformation="log10", _bounds_truncate=False)
        one = {0: -stats.norm.logpdf(th[0], 3, 1), 1: _laplace(th[1], 1, 0.5)}
        one[2] = -stats.lognorm.logpdf(th[2], s=0.5, scale=np.exp(3))
        one[3] = np.log(th[3]) + _laplace(np.log(th[3]), 0, 0.3)
        assert ref.neglogprior(x[k], x_scaled=True) == pytest.approx(one[k], rel=1e-10)
    ref = Prior(
        "parameterScaleNormal", (0, 1), bounds=(lo, hi), transformation="log10", _bounds_truncate=False
    )
    assert ref.neglogprior(x[4], x_scaled=True) == pytest.approx(
        -stats.norm.logpdf(x[4], 0, 1) + np.log(th[4] * np.log(10)), rel=1e-10
    )

    # Gradient of the posterior against central differences.
    value, grad, status = with_priors.value_and_grad(x)
    assert status == 0
    h = 1e-5
    fd = np.array([(with_priors(x + h * e) - with_priors(x - h * e)) / (2 * h) for e in np.eye(len(x))])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)
    # The Fisher information gains the normal priors' exact curvature on their variable.
    _, _, fim0, _ = plain.value_grad_fim(x)
    _, _, fim1, _ = with_priors.value_grad_fim(x)
    d = np.diag(fim1 - fim0)
    ln10 = np.log(10)
    assert d[0] == pytest.approx((th[0] * ln10) ** 2, rel=1e-10)  # d theta / dx = theta ln 10
    assert d[2] == pytest.approx((ln10 / 0.5) ** 2, rel=1e-10)  # log theta = x ln 10
    assert d[4] == pytest.approx(1.0, rel=1e-10)
    assert d[1] == 0 and d[3] == 0  # laplace: no smooth curvature


def test_uniform_priors_and_bounds(tmp_path):
    yaml = _with_priors(
        tmp_path,
        {
            "K1": ("uniform", "1;10"),
            "K2": ("parameterScaleUniform", ""),
            "K3": ("parameterScaleLaplace", "1;0.2"),
        },
    )
    pb = load_petab(yaml)
    x = pb.x_nominal.copy()  # K1 = 3.6 inside [1, 10]
    diff = Objective(pb, priors=True)(x) - Objective(pb)(x)
    assert diff == pytest.approx(np.log(9.0) + np.log(3 - (-2)) + _laplace(x[2], 1, 0.2), rel=1e-12)
    x[0] = np.log10(20.0)  # outside the uniform prior's support
    value, status = Objective(pb, priors=True).value(x)
    assert value == np.inf and status != 0


@pytest.mark.parametrize(
    "prior, message",
    [
        (("gamma", "1;2"), "unknown objectivePriorType 'gamma'"),
        (("normal", "1"), "is not two numbers"),
        (("normal", "1;0"), "needs a scale > 0"),
        (("uniform", "5;1"), "needs lower < upper"),
    ],
)
def test_bad_priors_are_reported(tmp_path, prior, message):
    yaml = _with_priors(tmp_path, {"K2": prior})
    with pytest.raises(ProblemSpecError, match=message) as err:
        load_petab(yaml)
    assert "parameters_cortisol.tsv: parameter 'K2'" in str(err.value)
    result = CliRunner().invoke(app, ["evaluate", str(yaml)])
    assert result.exit_code == 2 and message.split("'")[0] in result.stderr


def test_cli_priors_flag_and_metadata(tmp_path):
    yaml = _with_priors(tmp_path, {"K1": ("normal", "3;1")})
    runner = CliRunner()
    plain = json.loads(runner.invoke(app, ["evaluate", str(yaml), "--json"]).stdout)
    post = json.loads(runner.invoke(app, ["evaluate", str(yaml), "--json", "--priors"]).stdout)
    assert plain["priors"] is False and post["priors"] is True
    assert post["llh"] == pytest.approx(plain["llh"], rel=1e-12)
    assert post["negative_log_prior"] == pytest.approx(-stats.norm.logpdf(3.6, 3, 1), rel=1e-10)
    assert post["objective"] == pytest.approx(post["nllh"] + post["negative_log_prior"], rel=1e-12)
    out = tmp_path / "runs"
    for flag in ([], ["--priors"]):
        result = runner.invoke(
            app,
            ["run", str(yaml), "--method", "multistart", "--starts", "1", "--max-evals", "3", "--quiet",
             "--out", str(out / (flag[0][2:] if flag else "plain"))] + flag,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    meta_plain = read_metadata(next((out / "plain").rglob("*.parquet")))
    meta_post = read_metadata(next((out / "priors").rglob("*.parquet")))
    assert meta_plain["priors"] is False and meta_plain["objective"] == "nllh"
    assert meta_post["priors"] is True and meta_post["objective"] == "nllh + negative log-prior"
