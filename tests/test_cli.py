"""The CLI: commands, JSON output, and one clear line with exit code 2 for every bad input."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import sbml_builders as sb
from helpers import SHARED, reference
from typer.testing import CliRunner

from pe_bench.cli import app

BUILTIN = Path(__file__).resolve().parents[1] / "pe_bench" / "problems" / "builtin" / "cortisol"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, *fragments):
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.fixture
def cortisol_copy(tmp_path):
    folder = tmp_path / "cortisol"
    shutil.copytree(BUILTIN, folder)
    return folder


def _edit_table(path: Path, fn):
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    fn(df)
    df.to_csv(path, sep="\t", index=False)


def test_list_and_info():
    result = run("list")
    assert result.exit_code == 0 and "cortisol" in result.stdout
    result = run("info", "cortisol", "--json")
    assert result.exit_code == 0
    info = json.loads(result.stdout)
    assert info["species"] == 5 and info["reactions"] == 4 and info["parameters_estimated"] == 5
    assert info["measurements"] == 100 and info["noise_models"] == ["normal/lin"]


def test_evaluate_json_schema_and_reference_value():
    problem = SHARED / "Boehm_JProteomeRes2014"
    result = run("evaluate", problem, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) >= {"problem", "parameter_ids", "x", "llh", "nllh", "grad", "status", "wall_time_s"}
    assert out["grad"] is None and out["status"] == "ok"
    ref = reference().loc["Boehm_JProteomeRes2014", "llh_at_nominal"]
    assert abs(out["llh"] - ref) < 1e-3
    assert out["nllh"] == -out["llh"]
    assert len(out["x"]) == len(out["parameter_ids"]) == 9


def test_second_evaluate_uses_the_stored_objective(cortisol_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("PE_BENCH_JAX_CACHE", str(tmp_path / "jax"))

    def evaluate(*args):
        result = run("evaluate", cortisol_copy, "--grad", "--json", *args)
        assert result.exit_code == 0, (result.output, result.exception)
        return json.loads(result.stdout)

    first, second = evaluate(), evaluate()
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["nllh"] == first["nllh"] and second["grad"] == first["grad"]
    params = tmp_path / "params.tsv"
    params.write_text("parameterId\tvalue\nK1\t2.0\n")
    true = evaluate("--params", params)
    assert true["cached"] and true["nllh"] != first["nllh"]
    # any change to a problem file is a miss, never a stale hit
    meas = cortisol_copy / "measurements_cortisol.tsv"
    df = pd.read_csv(meas, sep="\t")
    df.loc[0, "measurement"] += 0.5
    df.to_csv(meas, sep="\t", index=False)
    edited = evaluate()
    assert not edited["cached"] and edited["nllh"] != first["nllh"]


def test_evaluate_params_true_file_and_grad(tmp_path):
    true = run("evaluate", "cortisol", "--params", "true", "--grad", "--json")
    assert true.exit_code == 0, true.output
    by_true = json.loads(true.stdout)
    assert len(by_true["grad"]) == 5
    file = tmp_path / "p.tsv"
    file.write_text("parameterId\tvalue\nK1\t3.6\nK2\t1.2\nK3\t26.6\nK4\t1.2\nK5\t1.2\n")
    by_file = json.loads(run("evaluate", "cortisol", "--params", file, "--json").stdout)
    assert by_file["nllh"] == pytest.approx(by_true["nllh"], rel=1e-12)


def test_simulate_writes_parquet_and_csv(tmp_path):
    for name in ("sim.parquet", "sim.csv"):
        out = tmp_path / name
        result = run("simulate", "cortisol", "--params", "true", "--out", out)
        assert result.exit_code == 0, result.output
        df = pd.read_parquet(out) if name.endswith("parquet") else pd.read_csv(out)
        assert set(df["kind"]) == {"observable", "state"}
        assert (df["kind"] == "observable").sum() == 100
        assert set(df.loc[df["kind"] == "state", "id"]) == {"X1", "X2", "X3", "X4", "X5"}
    assert not list(tmp_path.glob("*.part"))


# ----------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    assert_user_error(run("evaluate", tmp_path / "nope.yaml"), "nope.yaml", "not found")


def test_unknown_problem_name():
    assert_user_error(run("evaluate", "no_such_problem"), "unknown problem 'no_such_problem'")


def test_malformed_sbml(cortisol_copy):
    model = cortisol_copy / "model_cortisol.xml"
    model.write_text(model.read_text().replace("</listOfSpecies>", ""))
    assert_user_error(run("evaluate", cortisol_copy), "model_cortisol.xml", "malformed SBML")


def test_table_without_required_column(cortisol_copy):
    _edit_table(
        cortisol_copy / "observables_cortisol.tsv", lambda df: df.drop(columns=["noiseFormula"], inplace=True)
    )
    assert_user_error(
        run("evaluate", cortisol_copy),
        "observables_cortisol.tsv",
        "required column 'noiseFormula' is missing",
    )


def test_unknown_symbol_in_formula(cortisol_copy):
    def edit(df):
        df.loc[0, "observableFormula"] = "X1 + Y9"

    _edit_table(cortisol_copy / "observables_cortisol.tsv", edit)
    assert_user_error(
        run("evaluate", cortisol_copy), "observables_cortisol.tsv", "'obs_X1'", "unknown symbol 'Y9'"
    )


def test_inverted_bounds(cortisol_copy):
    def edit(df):
        df.loc[0, "lowerBound"], df.loc[0, "upperBound"] = "1000", "0.01"

    _edit_table(cortisol_copy / "parameters_cortisol.tsv", edit)
    assert_user_error(
        run("evaluate", cortisol_copy),
        "parameters_cortisol.tsv",
        "parameter 'K1'",
        "lowerBound 1000 > upperBound 0.01",
    )


def test_nan_data(cortisol_copy, tmp_path):
    def edit(df):
        df.loc[2, "measurement"] = "NaN"

    _edit_table(cortisol_copy / "measurements_cortisol.tsv", edit)
    out = tmp_path / "out.parquet"
    result = run("simulate", cortisol_copy, "--out", out)
    assert_user_error(result, "measurements_cortisol.tsv", "data row 3", "measurement is NaN")
    assert not out.exists()


def test_unsupported_sbml(tmp_path):
    doc, m = sb.new_model()
    sb.compartment(m, "C", 1.0)
    sb.species(m, "A", "C", conc=1.0)
    sb.parameter(m, "k", 1.0)
    sb.reaction(m, "lagged", ["A"], [], "k * delay(A, 1)")
    path = sb.write(doc, tmp_path / "delays.xml")
    out = tmp_path / "sim.csv"
    assert_user_error(
        run("simulate", path, "--out", out), "not supported yet: delay() in 'lagged'", "delays.xml"
    )
    assert not out.exists()


def test_bad_params_file(tmp_path):
    file = tmp_path / "p.tsv"
    file.write_text("parameterId\tvalue\nK9\t1.0\n")
    assert_user_error(run("evaluate", "cortisol", "--params", file), "p.tsv", "'K9'")


def test_debug_shows_the_traceback(tmp_path):
    result = runner.invoke(app, ["--debug", "evaluate", str(tmp_path / "nope.yaml")])
    assert result.exit_code != 0
    assert result.exception is not None and "not found" in str(result.exception)


# ----------------------------------------------------------------------------- run / table / plot


def test_run_table_plot(tmp_path):
    out = tmp_path / "runs"
    for method in ("multistart", "pso"):
        result = run(
            "run", "cortisol", "--method", method, "--starts", 2, "--max-evals", 40, "--out", out, "--quiet"
        )
        assert result.exit_code == 0, result.output
    table = run("table", out, "--json")
    assert table.exit_code == 0, table.output
    rows = json.loads(table.stdout)
    assert {r["method"] for r in rows} == {"multistart", "pso"} and all(r["starts"] == 2 for r in rows)
    png = tmp_path / "cmp.png"
    result = run("plot", out, "--out", png)
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--method", "nope"], "unknown method 'nope'"),
        (["--method", "multistart", "--starts", "-1"], "--starts must be >= 1"),
        (["--method", "multistart", "--max-evals", "0"], "--max-evals must be >= 1"),
        (["--method", "pso", "--option", "nonsense=1"], "has no option 'nonsense'"),
    ],
)
def test_run_bad_options(args, fragment, tmp_path):
    assert_user_error(run("run", "cortisol", *args, "--out", tmp_path / "r", "--quiet"), fragment)


def test_run_output_path_is_a_file(tmp_path):
    file = tmp_path / "file.txt"
    file.write_text("x")
    assert_user_error(
        run("run", "cortisol", "--method", "multistart", "--out", file, "--quiet"), "file.txt", "not a folder"
    )


def test_folder_with_several_yaml_files(tmp_path):
    # A folder named like one of its YAML files loads that one; otherwise the error lists them.
    folder = tmp_path / "cortisol"
    shutil.copytree(BUILTIN, folder)
    shutil.copy(folder / "cortisol.yaml", folder / "variant.yaml")
    result = run("info", folder, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["source"] == str(folder / "cortisol.yaml")
    other = tmp_path / "other"
    folder.rename(other)
    assert_user_error(
        run("info", other), str(other), "2 YAML files", "cortisol.yaml, variant.yaml", "other.yaml"
    )
    for f in other.glob("*.yaml"):
        f.unlink()
    assert_user_error(run("info", other), "no PEtab YAML")


def test_device_option(monkeypatch):
    monkeypatch.setenv("PE_BENCH_DEVICE", "")  # restored (unset) after the test
    assert_user_error(run("--device", "tpu", "list"), "unknown device 'tpu'")
    result = run("--device", "cpu", "list")
    assert result.exit_code == 0 and "cortisol" in result.stdout
    import jax

    if not any(d.platform == "gpu" for d in jax.devices()):
        assert_user_error(run("--device", "gpu", "list"), "JAX finds no GPU")


# ----------------------------------------------------------------------------- issue 26's run-time behaviour


def test_nominal_outside_bounds_warns_and_goes_on(cortisol_copy):
    _edit_table(
        cortisol_copy / "parameters_cortisol.tsv",
        lambda df: df.__setitem__("nominalValue", ["5000"] * len(df)),
    )
    result = run("info", cortisol_copy)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 5 and "parameters_cortisol.tsv" in warnings[0]
    assert "'K1': nominalValue 5000 is outside its bounds [0.01, 1000]" in warnings[0]


def test_run_summary_claims_convergence_only_against_a_known_value(tmp_path):
    out = tmp_path / "runs"
    result = run(
        "run", "cortisol", "--method", "pso", "--starts", 2, "--max-evals", 40, "--out", out, "--quiet"
    )
    assert result.exit_code == 0, result.output
    assert "no known best value for cortisol" in result.stdout
    row = [line for line in result.stdout.splitlines() if line.strip().startswith("cortisol")][0]
    assert " none " in row and "/2" not in row  # no "converged k/2" claim
    known = run("table", out, "--best-known", -244.0)
    assert known.exit_code == 0 and "0/2" in known.stdout and "no known best value" not in known.stdout
    # the default table fits 100 columns; --wide adds the time-to-bar columns
    assert max(len(line) for line in known.stdout.splitlines()) <= 100, known.stdout
    assert "CPU s to bar" not in known.stdout
    wide = run("table", out, "--best-known", -244.0, "--wide")
    assert wide.exit_code == 0 and "CPU s to bar" in wide.stdout and "0/2" in wide.stdout


def test_result_files_get_the_umask_mode(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        out = tmp_path / "runs"
        result = run(
            "run", "cortisol", "--method", "pso", "--starts", 1, "--max-evals", 20, "--out", out, "--quiet"
        )
        assert result.exit_code == 0, result.output
        sim = tmp_path / "sim.csv"
        assert run("simulate", "cortisol", "--out", sim).exit_code == 0
    finally:
        os.umask(old)
    files = [*out.rglob("*.parquet"), sim]
    assert len(files) == 3 and all((f.stat().st_mode & 0o777) == 0o644 for f in files)


def test_ctrl_c_keeps_the_finished_starts_and_says_how_to_go_on(tmp_path, monkeypatch):
    import pe_bench.runner as runner_module

    real = runner_module.run_method

    def interrupted_after_two(*args, on_start_done=None, **kwargs):
        done = []

        def count(res):
            on_start_done(res)
            done.append(res)
            if len(done) == 2:
                raise KeyboardInterrupt

        return real(*args, on_start_done=count, **kwargs)

    monkeypatch.setattr(runner_module, "run_method", interrupted_after_two)
    out = tmp_path / "runs"
    args = ["run", "cortisol", "--method", "pso", "--starts", 5, "--max-evals", 20, "--out", out, "--quiet"]
    result = run(*args)
    assert result.exit_code == 130
    line = result.stderr.strip().splitlines()[-1]
    # the command to go on is the process's own argv (pytest's here) with --resume added
    assert line.startswith("interrupted: 2 finished start(s) kept") and line.endswith("--resume")
    monkeypatch.setattr(runner_module, "run_method", real)
    resumed = run(*args, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert len(pd.read_parquet(next(out.rglob("*.starts.parquet")))) == 5


def test_version():
    from importlib.metadata import version

    result = run("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"pebench {version('pe_bench')}"
