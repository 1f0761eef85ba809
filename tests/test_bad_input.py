"""Every broken input of the corpus (tests/bad_inputs.py) is refused the same way.

Exit code 2, one line on stderr that names the file or option, no traceback, and nothing
new, changed or half-written on disk (the per-test cache folder aside).
"""

import shutil
from pathlib import Path

import pytest
from bad_inputs import CORRUPTIONS
from typer.testing import CliRunner

from pe_bench.cli import app

BUILTIN = Path(__file__).resolve().parents[1] / "pe_bench" / "problems" / "builtin" / "cortisol"
runner = CliRunner()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A results folder with one finished cortisol run (made once for the module)."""
    out = tmp_path_factory.mktemp("finished") / "runs"
    args = ["run", "cortisol", "--method", "pso", "--starts", "2", "--max-evals", "40", "--out", str(out)]
    result = runner.invoke(app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` (but the cache) with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and "cache" not in p.relative_to(root).parts
    }


def test_the_corpus_is_large_and_named_uniquely():
    names = [c.name for c in CORRUPTIONS]
    assert len(names) >= 30 and len(set(names)) == len(names)


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=lambda c: c.name)
def test_refused_with_one_line(corruption, tmp_path, finished_run):
    problem, results, scratch = tmp_path / "problem", tmp_path / "results", tmp_path / "scratch"
    shutil.copytree(BUILTIN, problem)
    shutil.copytree(finished_run, results)
    scratch.mkdir()
    args = corruption.apply(problem, results, scratch)
    before = snapshot(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in corruption.fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert snapshot(tmp_path) == before, "files written or changed by a refused command"


def _evaluate(problem: Path) -> dict:
    import json

    result = runner.invoke(app, ["evaluate", str(problem), "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def test_valid_but_different_model_changes_the_number(tmp_path):
    # A corruption that leaves a valid model (R1 now makes two X4 per X1) is not refused,
    # and it must not give the original number.
    from bad_inputs import MODEL

    problem = tmp_path / "problem"
    shutil.copytree(BUILTIN, problem)
    original = _evaluate(problem)["nllh"]
    model = problem / MODEL
    old = '<speciesReference species="X4" stoichiometry="1"'
    assert old in model.read_text()
    model.write_text(model.read_text().replace(old, '<speciesReference species="X4" stoichiometry="2"', 1))
    changed = _evaluate(problem)
    assert changed["status"] == "ok" and abs(changed["nllh"] - original) > 1.0


def test_sigma_that_turns_negative_at_run_time_is_a_failed_evaluation(tmp_path):
    # noiseFormula 0.1 - X1: positive or negative depending on the simulation, so only the
    # evaluation can tell. |sigma|'s likelihood would be a plausible number: it must not be.
    from bad_inputs import OBS, edit_table

    problem = tmp_path / "problem"
    shutil.copytree(BUILTIN, problem)

    def edit(df):
        df.loc[0, "noiseFormula"] = "0.1 - X1"
        return df

    edit_table(problem / OBS, edit)
    out = _evaluate(problem)
    assert out["status"] == "nonpositive_sigma" and out["nllh"] == float("inf")
