"""A corpus of broken inputs: each takes a copy of a real problem and breaks one thing.

Every :class:`Corruption` edits files in a folder holding a copy of the built-in
``cortisol`` PEtab problem (and, where it needs one, a results folder of a finished
run), and returns the ``pebench`` arguments that should refuse it with exit code 2 and
one line naming the file and the element. ``tests/test_bad_input.py`` runs them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

YAML = "cortisol.yaml"
MODEL = "model_cortisol.xml"
PARAMS = "parameters_cortisol.tsv"
MEAS = "measurements_cortisol.tsv"
OBS = "observables_cortisol.tsv"
COND = "conditions_cortisol.tsv"


@dataclass(frozen=True)
class Corruption:
    """One broken input: ``apply(problem, results, scratch)`` edits and returns the arguments."""

    name: str
    apply: Callable[[Path, Path, Path], list[str]]
    fragments: tuple[str, ...]


def edit_table(path: Path, fn) -> None:
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    df = fn(df)
    df.to_csv(path, sep="\t", index=False)


def _table(file: str, fn, command: str = "evaluate"):
    def apply(problem: Path, results: Path, scratch: Path) -> list[str]:
        edit_table(problem / file, fn)
        return [command, str(problem)]

    return apply


def _text(file: str, old: str, new: str, count: int = 1, command: str = "evaluate"):
    def apply(problem: Path, results: Path, scratch: Path) -> list[str]:
        path = problem / file
        text = path.read_text()
        assert old in text, (file, old)
        path.write_text(text.replace(old, new, count))
        return [command, str(problem)]

    return apply


def _set(row: int, **values):
    def fn(df):
        for col, v in values.items():
            df.loc[row, col] = v
        return df

    return fn


def _drop(col: str):
    return lambda df: df.drop(columns=[col])


def _sigma_placeholder(value: str):
    """obs_X1's noise becomes a placeholder set by the data rows, to ``value``."""

    def apply(problem: Path, results: Path, scratch: Path) -> list[str]:
        edit_table(problem / OBS, _set(0, noiseFormula="noiseParameter1_obs_X1"))

        def meas(df):
            df.loc[df["observableId"] == "obs_X1", "noiseParameters"] = value
            return df

        edit_table(problem / MEAS, meas)
        return ["evaluate", str(problem)]

    return apply


def _sigma_parameter(estimate: str, lower: str, nominal: str, scale: str = "lin"):
    """obs_X1's noise becomes a parameter-table entry ``sd_X1``."""

    def apply(problem: Path, results: Path, scratch: Path) -> list[str]:
        edit_table(problem / OBS, _set(0, noiseFormula="sd_X1"))

        def params(df):
            row = {"parameterId": "sd_X1", "parameterName": "sd_X1", "parameterScale": scale}
            row |= {"lowerBound": lower, "upperBound": "1", "nominalValue": nominal, "estimate": estimate}
            return pd.concat([df, pd.DataFrame([row])], ignore_index=True)

        edit_table(problem / PARAMS, params)
        return ["evaluate", str(problem)]

    return apply


def _params_file(text: str, *extra: str):
    def apply(problem: Path, results: Path, scratch: Path) -> list[str]:
        file = scratch / "p.tsv"
        file.write_text(text)
        return ["evaluate", str(problem), "--params", str(file), *extra]

    return apply


def _run_args(*args: str):
    def apply(problem: Path, results: Path, scratch: Path) -> list[str]:
        return ["run", str(problem), *args, "--out", str(scratch / "runs"), "--quiet"]

    return apply


def _truncated(command: str):
    """Cut the results folder's starts file in half, then read it with ``command``."""

    def apply(problem: Path, results: Path, scratch: Path) -> list[str]:
        (path,) = results.rglob("*.starts.parquet")
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        if command == "table":
            return ["table", str(results)]
        if command == "plot":
            return ["plot", str(results), "--out", str(scratch / "plot.png")]
        return [
            "run",
            "cortisol",
            "--method",
            "pso",
            "--starts",
            "3",
            "--out",
            str(results),
            "--resume",
            "--quiet",
        ]

    return apply


def _yaml(text: str):
    def apply(problem: Path, results: Path, scratch: Path) -> list[str]:
        (problem / YAML).write_text(text)
        return ["evaluate", str(problem / YAML)]

    return apply


def _missing(file: str):
    def apply(problem: Path, results: Path, scratch: Path) -> list[str]:
        (problem / file).unlink()
        return ["evaluate", str(problem)]

    return apply


GOOD_YAML_TAIL = (
    "problems:\n- condition_files: [conditions_cortisol.tsv]\n"
    "  measurement_files: [measurements_cortisol.tsv]\n"
    "  observable_files: [observables_cortisol.tsv]\n  sbml_files: [model_cortisol.xml]\n"
)

CORRUPTIONS = [
    # SBML
    Corruption("sbml-malformed", _text(MODEL, "</listOfSpecies>", ""), (MODEL, "malformed SBML")),
    Corruption(
        "sbml-reaction-names-undeclared-species",
        _text(MODEL, 'speciesReference species="X4"', 'speciesReference species="ghost"'),
        (MODEL, "invalid SBML", "'ghost'"),
    ),
    Corruption(
        "sbml-kinetic-law-names-undeclared-id",
        _text(MODEL, "<ci>K3</ci>", "<ci>K99</ci>"),
        (MODEL, "invalid SBML", "K99"),
    ),
    Corruption("sbml-file-missing", _missing(MODEL), (MODEL, "not found")),
    Corruption("sbml-not-xml", _text(MODEL, "<?xml", "this is not xml <?xml"), (MODEL, "SBML")),
    Corruption(
        "sbml-unsupported-package",
        _text(
            MODEL,
            'level="3" version="2">',
            'xmlns:qual="http://www.sbml.org/sbml/level3/version1/qual/version1" qual:required="true" '
            'level="3" version="2">',
        ),
        (MODEL, "qual"),
    ),
    # YAML
    Corruption(
        "yaml-missing", lambda p, r, s: ["evaluate", str(p / "nope.yaml")], ("nope.yaml", "not found")
    ),
    Corruption("yaml-unreadable", _yaml("format_version: [1\n  : :"), (YAML, "not readable as YAML")),
    Corruption(
        "yaml-without-parameter-file", _yaml("format_version: 1\n" + GOOD_YAML_TAIL), (YAML, "parameter_file")
    ),
    Corruption(
        "yaml-format-version-2",
        _yaml("format_version: 2\nparameter_file: parameters_cortisol.tsv\n" + GOOD_YAML_TAIL),
        (YAML, "format_version 2"),
    ),
    Corruption("table-file-missing", _missing(MEAS), (MEAS, "not found")),
    # parameter table
    Corruption("params-column-missing", _table(PARAMS, _drop("parameterScale")), (PARAMS, "parameterScale")),
    Corruption(
        "params-inverted-bounds",
        _table(PARAMS, _set(0, lowerBound="1000", upperBound="0.01")),
        (PARAMS, "'K1'", "lowerBound 1000 > upperBound 0.01"),
    ),
    Corruption(
        "params-log-scale-zero-bound",
        _table(PARAMS, _set(0, lowerBound="0")),
        (PARAMS, "'K1'", "must be > 0"),
    ),
    Corruption(
        "params-unknown-scale", _table(PARAMS, _set(0, parameterScale="ln")), (PARAMS, "'K1'", "'ln'")
    ),
    Corruption("params-estimate-2", _table(PARAMS, _set(0, estimate="2")), (PARAMS, "'K1'", "estimate")),
    Corruption(
        "params-fixed-without-value",
        _table(PARAMS, _set(0, estimate="0", nominalValue="")),
        (PARAMS, "'K1'", "nominalValue"),
    ),
    Corruption(
        "sigma-parameter-fixed-negative",
        _sigma_parameter(estimate="0", lower="0.001", nominal="-0.1"),
        (PARAMS, "'sd_X1'", "nominalValue -0.1 must be > 0"),
    ),
    Corruption(
        "sigma-parameter-lin-bounds-allow-zero",
        _sigma_parameter(estimate="1", lower="0", nominal="0.1"),
        (PARAMS, "'sd_X1'", "allows sigma <= 0"),
    ),
    # measurement table
    Corruption("meas-nan", _table(MEAS, _set(2, measurement="NaN")), (MEAS, "data row 3", "NaN")),
    Corruption("meas-negative-time", _table(MEAS, _set(0, time="-1")), (MEAS, "negative measurement time")),
    Corruption("meas-unknown-observable", _table(MEAS, _set(0, observableId="obs_X9")), (MEAS, "'obs_X9'")),
    Corruption(
        "meas-unknown-condition", _table(MEAS, _set(0, simulationConditionId="nowhere")), (MEAS, "nowhere")
    ),
    Corruption("meas-no-rows", _table(MEAS, lambda df: df.iloc[:0]), (MEAS, "no measurements")),
    Corruption("meas-column-missing", _table(MEAS, _drop("time")), (MEAS, "'time'")),
    Corruption(
        "meas-negative-noise-parameter", _sigma_placeholder("-1.5"), (MEAS, "noiseParameters", "sigma -1.5")
    ),
    Corruption("meas-zero-noise-parameter", _sigma_placeholder("0"), (MEAS, "noiseParameters", "sigma 0")),
    # observable table
    Corruption(
        "obs-unknown-symbol", _table(OBS, _set(0, observableFormula="X1 + Y9")), (OBS, "'obs_X1'", "'Y9'")
    ),
    Corruption(
        "obs-unknown-noise-distribution",
        _table(OBS, _set(0, noiseDistribution="cauchy")),
        (OBS, "'obs_X1'", "'cauchy'"),
    ),
    Corruption(
        "obs-unknown-transformation",
        _table(OBS, _set(0, observableTransformation="sqrt")),
        (OBS, "'obs_X1'", "'sqrt'"),
    ),
    Corruption(
        "obs-negative-noise-constant", _table(OBS, _set(0, noiseFormula="-0.02")), (OBS, "'obs_X1'", "sigma")
    ),
    Corruption("obs-column-missing", _table(OBS, _drop("noiseFormula")), (OBS, "'noiseFormula'")),
    # condition table
    Corruption(
        "cond-sets-unknown-id",
        _table(COND, lambda df: df.assign(nowhere_id="1.0")),
        (COND, "nowhere_id"),
    ),
    # command-line arguments
    Corruption("run-unknown-method", _run_args("--method", "nosuch"), ("unknown method 'nosuch'",)),
    Corruption("run-zero-starts", _run_args("--method", "pso", "--starts", "0"), ("--starts",)),
    Corruption("run-zero-evals", _run_args("--method", "pso", "--max-evals", "0"), ("--max-evals",)),
    Corruption(
        "run-negative-seconds", _run_args("--method", "pso", "--max-seconds", "-1"), ("--max-seconds",)
    ),
    Corruption("run-zero-cpu-budget", _run_args("--method", "pso", "--cpu-budget", "0"), ("--cpu-budget",)),
    Corruption("run-unknown-option", _run_args("--method", "pso", "--option", "nonsense=1"), ("'nonsense'",)),
    Corruption(
        "run-out-is-a-file",
        lambda p, r, s: ["run", str(p), "--method", "pso", "--out", str(p / YAML), "--quiet"],
        (YAML, "not a folder"),
    ),
    Corruption(
        "params-file-not-numeric", _params_file("parameterId\tvalue\nK1\tfast\n"), ("p.tsv", "'K1'", "'fast'")
    ),
    Corruption(
        "params-file-negative-on-log-scale",
        _params_file("parameterId\tvalue\nK1\t-2\n"),
        ("p.tsv", "'K1'", "log10 scale"),
    ),
    Corruption("params-file-unknown-id", _params_file("parameterId\tvalue\nK9\t1\n"), ("p.tsv", "'K9'")),
    Corruption(
        "params-file-no-value-column", _params_file("parameterId\tval\nK1\t1\n"), ("p.tsv", "'value'")
    ),
    Corruption(
        "simulate-out-bad-suffix",
        lambda p, r, s: ["simulate", str(p), "--out", str(s / "sim.txt")],
        ("sim.txt", ".parquet or .csv"),
    ),
    Corruption(
        "simulate-out-folder-missing",
        lambda p, r, s: ["simulate", str(p), "--out", str(s / "nowhere" / "sim.csv")],
        ("nowhere", "does not exist"),
    ),
    Corruption("unknown-problem", lambda p, r, s: ["info", "no_such_problem"], ("'no_such_problem'",)),
    # result files
    Corruption("results-truncated-table", _truncated("table"), ("starts.parquet", "not a readable Parquet")),
    Corruption("results-truncated-plot", _truncated("plot"), ("starts.parquet", "not a readable Parquet")),
    Corruption(
        "results-truncated-resume", _truncated("resume"), ("starts.parquet", "not a readable Parquet")
    ),
    Corruption(
        "results-exist-without-resume",
        lambda p, r, s: ["run", "cortisol", "--method", "pso", "--starts", "2", "--out", str(r), "--quiet"],
        ("starts.parquet", "--resume"),
    ),
    Corruption("results-folder-missing", lambda p, r, s: ["table", str(s / "none")], ("none", "not found")),
]
