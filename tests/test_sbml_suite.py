"""The SBML Test Suite runner: a fixed sample of cases in CI against the committed full run.

The sample covers events (priorities, delays, persistence, t = 0 firing), rules
(assignment, rate, algebraic), non-constant compartments, conversion factors, rateOf,
variable stoichiometry, comp models and discontinuous rates. A case that passed in the
committed run (results/sbml-suite.csv) and now does not fails the test; every case the
sample simulates is compared again, independently of pe_bench's own comparison, from the
files written by --keep.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pe_bench.cli import app

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT.parent / "shared" / "sbml-test-suite" / "semantic"
COMMITTED = ROOT / "results" / "sbml-suite.csv"
SAMPLE = [
    "00001", "00028", "00191", "00349", "00400", "00408", "00457", "00561", "00702", "00760",
    "00870", "00928", "00952", "00977", "01000", "01060", "01100", "01124", "01198", "01247",
    "01289", "01311", "01336", "01400", "01467", "01500", "01560", "01600", "01659", "01700",
    "01742", "01780",
]  # fmt: skip

pytestmark = pytest.mark.slow


def _settings(case: str) -> dict[str, str]:
    text = (SUITE / case / f"{case}-settings.txt").read_text()
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if _}


def test_sample_does_not_regress(tmp_path):
    committed = pd.read_csv(COMMITTED, dtype={"case": str}).set_index("case")
    keep, out = tmp_path / "keep", tmp_path / "report.csv"
    result = CliRunner().invoke(
        app, ["sbml-suite", str(SUITE), "--cases", ",".join(SAMPLE), "--workers", "0", "--keep", str(keep),
              "--out", str(out), "--quiet"],
    )  # fmt: skip
    report = pd.read_csv(out, dtype={"case": str}).set_index("case")
    assert list(report.index) == SAMPLE
    assert (report["status"] != "fail").all(), report[report["status"] == "fail"]
    assert result.exit_code == 0, result.output
    regressed = [
        c for c in SAMPLE if committed.loc[c, "status"] == "pass" and report.loc[c, "status"] != "pass"
    ]
    assert not regressed, report.loc[regressed]
    passed = [c for c in SAMPLE if report.loc[c, "status"] == "pass"]
    assert len(passed) >= 0.8 * len(SAMPLE)
    for case in passed:
        # The suite's own rule on the written files: |sim - expected| <= abs + rel |expected|.
        settings = _settings(case)
        ours = pd.read_csv(keep / f"{case}-results.csv")
        expected = pd.read_csv(SUITE / case / f"{case}-results.csv")
        expected.columns = [c.strip() for c in expected.columns]
        variables = [v.strip() for v in settings["variables"].split(",")]
        assert list(ours.columns) == ["time", *variables]
        np.testing.assert_allclose(ours["time"], expected["time"], rtol=1e-12)
        a, r = float(settings["absolute"]), float(settings["relative"])
        sim, exp = ours[variables].to_numpy(float), expected[variables].to_numpy(float)
        ok = (np.abs(sim - exp) <= a + r * np.abs(exp)) | (np.isnan(sim) & np.isnan(exp)) | (sim == exp)
        assert ok.all(), case


def test_bad_suite_arguments(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["sbml-suite", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "not a folder" in result.stderr
    result = runner.invoke(app, ["sbml-suite", str(SUITE), "--cases", "12-3"])
    assert result.exit_code == 2 and "runs backwards" in result.stderr
    result = runner.invoke(app, ["sbml-suite", str(SUITE), "--cases", "99999"])
    assert result.exit_code == 2 and "no case folder 99999" in result.stderr
