"""The SBML Test Suite runner: a fixed sample of cases in CI against the committed full run.

The sample (one passing case drawn per test tag: events with delays, priorities,
persistence, t = 0 firing and trigger-time values; assignment, rate and algebraic rules;
non-constant and multiple compartments; conversion factors; rateOf; variable
stoichiometry; comp; L3v2 math; avogadro; and one refused case each for delay(), fast
reactions, flux balance and an algebraic rule with several solutions) must not
regress: no case may fail, a case that passed in the committed run
(results/sbml-suite.csv) and now does not fails the test, and every case the sample
simulates is compared again, independently of pe_bench's own comparison, from the files
written by --keep.
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
    "00003", "00080", "00164", "00431", "00531", "00637", "00699", "00965", "00991", "01049",
    "01112", "01220", "01266", "01347", "01390", "01410", "01495", "01498", "01514", "01544",
    "01589", "01612", "01645", "01657", "01663", "01684", "01687", "01689", "01806",
]  # fmt: skip

pytestmark = pytest.mark.slow


def _settings(case: str) -> dict[str, str]:
    text = (SUITE / case / f"{case}-settings.txt").read_text()
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if _}


def _read_results(path: Path) -> tuple[list[str], np.ndarray]:
    """Header names (stripped) and values of a results CSV, read without pandas' renaming."""
    lines = path.read_text().splitlines()
    names = [c.strip() for c in lines[0].split(",")]
    rows = [[float(v) for v in line.split(",")] for line in lines[1:] if line.strip()]
    return names, np.array(rows, dtype=float).reshape(len(rows), len(names))


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
        ours_names, ours_values = _read_results(keep / f"{case}-results.csv")
        names, values = _read_results(SUITE / case / f"{case}-results.csv")
        variables = [v.strip() for v in settings["variables"].split(",")]
        assert ours_names == ["time", *variables]
        # The first column of the expected file is time, whatever its header says.
        np.testing.assert_allclose(ours_values[:, 0], values[:, 0], rtol=1e-6)  # files round times
        a, r = float(settings["absolute"]), float(settings["relative"])
        sim = ours_values[:, 1:]
        exp = values[:, [names[1:].index(v) + 1 for v in variables]]
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
