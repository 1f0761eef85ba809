"""Benchmark suites: parsing, the comparison figures, baselines, the CLI, and Dask."""

from __future__ import annotations

import json
import math
import os
import signal
import textwrap
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import SHARED
from typer.testing import CliRunner

from pe_bench.bench import (
    Task,
    baseline_from,
    check_baseline,
    load_suite,
    missing_starts,
    plan,
    planned_starts,
    run_suite,
)
from pe_bench.cli import app
from pe_bench.metrics import summarise
from pe_bench.results import load_results

runner = CliRunner()


def write_suite(tmp_path: Path, body: str, name: str = "suite.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


SMALL = """
    name = "small"
    seeds = [3]
    starts = 4
    max_evals = 40
    chunk = 1

    [[problems]]
    source = "cortisol"

    [[methods]]
    name = "multistart"

    [[methods]]
    name = "pso"
    options = { particles = 8 }
    max_evals = 48
"""


# ----------------------------------------------------------------------------- metrics


def test_summary_figures_match_hand_computed_values():
    starts = pd.DataFrame(
        {
            "problem": ["P"] * 6,
            "method": ["A"] * 4 + ["B"] * 2,
            "seed": [0] * 6,
            "start": [0, 1, 2, 3, 0, 1],
            "nllh_final": [10.0, 10.04, 10.2, math.inf, 9.95, 12.0],
            "n_fevals": [100, 200, 300, 50, 80, 80],
            "wall_time_s": [1.0, 2.0, 3.0, 0.5, 1.0, 1.0],
            "status": ["converged", "converged", "max_evals", "failed", "converged", "converged"],
            "n_failed": [0, 1, 2, 50, 0, 0],
        }
    )
    history = pd.DataFrame(
        [
            ("P", "A", 0, 0, 10, 0.1, 50.0),
            ("P", "A", 0, 0, 60, 0.6, 10.03),
            ("P", "A", 0, 0, 100, 1.0, 10.0),
            ("P", "A", 0, 1, 150, 1.5, 10.04),
            ("P", "A", 0, 2, 300, 3.0, 10.2),
            ("P", "B", 0, 0, 70, 0.9, 9.95),
            ("P", "B", 0, 1, 80, 1.0, 12.0),
        ],
        columns=["problem", "method", "seed", "start", "n_fevals", "seconds", "best_nllh"],
    )
    table = summarise(starts, history, stated={"P": 10.0}, thresholds=0.1).set_index("method")
    a, b = table.loc["A"], table.loc["B"]
    # best known = min(stated 10.0, found 9.95); converged: nllh <= 10.05
    assert a["best_known"] == 9.95 and b["best_known"] == 9.95
    assert (a["converged"], a["frac_converged"]) == (2, 0.5)
    assert (b["converged"], b["frac_converged"]) == (1, 0.5)
    assert a["fevals_per_converged"] == 650 / 2 and a["seconds_per_converged"] == 6.5 / 2
    assert a["median_fevals_to_threshold"] == (60 + 150) / 2
    assert a["median_seconds_to_threshold"] == pytest.approx((0.6 + 1.5) / 2)
    assert b["median_fevals_to_threshold"] == 70
    assert (a["failed_starts"], a["failed_integrations"]) == (1, 53)
    assert a["best_nllh"] == 10.0 and a["total_seconds"] == 6.5
    # no converged start: cost per converged start is infinite
    worse = summarise(starts, history, stated={"P": 5.0}).set_index("method")
    assert worse.loc["A", "converged"] == 0 and math.isinf(worse.loc["A", "fevals_per_converged"])


def test_summary_of_a_problem_whose_starts_all_failed_at_their_first_point():
    # BioPreDyn B4 from Latin-hypercube starts: every start fails before any history row
    # is written; the summary must say so instead of crashing on the empty history.
    starts = pd.DataFrame(
        {
            "problem": ["P", "P"],
            "method": ["A", "A"],
            "seed": [0, 0],
            "start": [0, 1],
            "nllh_final": [math.inf, math.inf],
            "n_fevals": [1, 1],
            "wall_time_s": [2.0, 3.0],
            "status": ["failed", "failed"],
            "n_failed": [1, 1],
        }
    )
    history = pd.DataFrame(
        {
            "problem": pd.Series([], dtype="str"),
            "method": pd.Series([], dtype="str"),
            "seed": pd.Series([], dtype="int64"),
            "start": pd.Series([], dtype="int64"),
            "n_fevals": pd.Series([], dtype="int64"),
            "seconds": pd.Series([], dtype="float64"),
            "best_nllh": pd.Series([], dtype="float64"),
        }
    )
    row = summarise(starts, history, stated={"P": 1.0}).iloc[0]
    assert (row["converged"], row["failed_starts"], row["total_seconds"]) == (0, 2, 5.0)
    assert math.isinf(row["best_nllh"]) and math.isnan(row["median_fevals_to_threshold"])


def test_baseline_check_lists_each_regression():
    summary = pd.DataFrame(
        {
            "problem": ["P", "P", "Q"],
            "method": ["A", "B", "A"],
            "best_nllh": [10.5, 3.0, 1.0],
            "frac_converged": [0.5, 0.2, 1.0],
        }
    )
    baseline = {
        "P/A": {"best_nllh": 10.0, "frac_converged": 0.5, "tol_nllh": 0.1, "tol_frac": 0.25},
        "P/B": {"best_nllh": 3.0, "frac_converged": 0.6, "tol_nllh": 0.1, "tol_frac": 0.25},
        "Q/A": {"best_nllh": 1.05, "frac_converged": 1.0, "tol_nllh": 0.1, "tol_frac": 0.25},
        "R/A": {"best_nllh": 0.0, "frac_converged": 1.0, "tol_nllh": 0.1, "tol_frac": 0.25},
    }
    lines = check_baseline(summary, baseline)
    assert len(lines) == 3
    assert lines[0].startswith("P/A: best nllh 10.5000 is worse than the baseline 10.0000")
    assert lines[1].startswith("P/B: fraction converged 0.20 dropped from 0.60")
    assert lines[2] == "R/A: no results (the baseline has it)"
    # a baseline written from the summary passes its own check
    assert check_baseline(summary, baseline_from(summary)) == []
    new = baseline_from(summary, baseline)
    assert new["P/A"]["tol_nllh"] == 0.1 and new["P/A"]["best_nllh"] == 10.5


# ----------------------------------------------------------------------------- suite files


def test_suite_paths_are_relative_to_the_suite_file(tmp_path):
    rel = os.path.relpath(SHARED / "Boehm_JProteomeRes2014", tmp_path)
    suite = load_suite(
        write_suite(
            tmp_path,
            f"""
            starts = 3
            [[problems]]
            source = "{rel}"
            best_known = 138.22
            threshold = 0.5
            [[methods]]
            name = "multistart"
            options = {{ tol = 1e-6 }}
            [[methods]]
            name = "adam"
            starts = 2
            """,
        )
    )
    assert suite.name == "suite" and suite.seeds == (0,)
    assert suite.best_known == {"Boehm_JProteomeRes2014": 138.22}
    assert suite.thresholds == {"Boehm_JProteomeRes2014": 0.5}
    assert [m.budget.n_starts for m in suite.methods] == [3, 2]
    assert dict(suite.methods[0].options) == {"tol": "1e-06"}
    tasks = plan(suite, tmp_path / "out", resume=False)
    # multistart starts are independent: chunks of 5 (one here); adam is one task
    assert [(t.method.name, t.starts) for t in tasks] == [("multistart", (0, 1, 2)), ("adam", (0, 1))]


def test_a_problem_can_run_more_seeds_than_the_suite(tmp_path):
    rel = os.path.relpath(SHARED / "Boehm_JProteomeRes2014", tmp_path)
    suite = load_suite(
        write_suite(
            tmp_path,
            f"""
            seeds = [3]
            starts = 2
            [[problems]]
            source = "cortisol"
            seeds = [3, 4, 5]
            [[problems]]
            source = "{rel}"
            [[methods]]
            name = "multistart"
            [[methods]]
            name = "cvae"
            """,
        )
    )
    tasks = plan(suite, tmp_path / "out", resume=False)
    assert sorted({(t.problem.name, t.seed) for t in tasks}) == [
        ("Boehm_JProteomeRes2014", 3),
        ("cortisol", 3),
        ("cortisol", 4),
        ("cortisol", 5),
    ]
    assert planned_starts(suite) == {
        ("cortisol", "multistart"): 6,
        ("cortisol", "cvae"): 6,
        ("Boehm_JProteomeRes2014", "multistart"): 2,
        ("Boehm_JProteomeRes2014", "cvae"): 2,
    }


def test_seed_order_runs_every_problems_first_seed_before_any_second(tmp_path):
    rel = os.path.relpath(SHARED / "Boehm_JProteomeRes2014", tmp_path)
    body = f"""
        seeds = [0, 1]
        starts = 2
        order = "seed"
        [[problems]]
        source = "cortisol"
        seeds = [7, 8, 9]
        [[problems]]
        source = "{rel}"
        [[methods]]
        name = "multistart"
        [[methods]]
        name = "cmaes"
        """
    suite = load_suite(write_suite(tmp_path, body))
    tasks = plan(suite, tmp_path / "out", resume=False)
    rank = [suite.seeds_for(t.problem).index(t.seed) for t in tasks]
    assert rank == sorted(rank) and rank.count(0) == 4 and rank.count(2) == 2
    # within one seed rank the suite's order stays: problem by problem, method by method
    assert [(t.problem.seeds, t.method.name) for t in tasks[:4]] == [
        ((7, 8, 9), "multistart"),
        ((7, 8, 9), "cmaes"),
        (None, "multistart"),
        (None, "cmaes"),
    ]
    default = load_suite(write_suite(tmp_path, body.replace('order = "seed"', ""), "default.toml"))
    assert [t.seed for t in plan(default, tmp_path / "o2", resume=False)][:3] == [7, 8, 9]
    bad = write_suite(tmp_path, body.replace('"seed"', '"random"'), "bad.toml")
    result = runner.invoke(app, ["bench", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "order: expected one of problem, seed, got 'random'" in result.stderr


@pytest.mark.parametrize(
    "body, message",
    [
        ("seeds = [0]\n[[methods]]\nname='pso'\n", "no [[problems]] entries"),
        (
            "[[problems]]\nsource='cortisol'\nseeds=[1, 1]\n[[methods]]\nname='pso'\n",
            "problems[0]: 'seeds' lists a seed twice",
        ),
        (
            "seeds = 2\n[[problems]]\nsource='cortisol'\n[[methods]]\nname='pso'\n",
            "'seeds' must be a non-empty",
        ),
        ("[[problems]]\nsource='cortisol'\n", "no [[methods]] entries"),
        ("starts = 0\n[[problems]]\nsource='cortisol'\n[[methods]]\nname='pso'\n", "starts: must be >= 1"),
        ("budget = 3\n[[problems]]\nsource='cortisol'\n[[methods]]\nname='pso'\n", "unknown key(s) budget"),
        ("[[problems]]\nsource='cortisol'\n[[methods]]\nname='bfgs'\n", "methods[0]: unknown method 'bfgs'"),
        (
            "[[problems]]\nsource='cortisol'\n[[methods]]\nname='pso'\noptions={speed=1}\n",
            "methods[0]: method 'pso' has no option 'speed'",
        ),
        (
            "[[problems]]\nsource='nowhere/model.yaml'\n[[methods]]\nname='pso'\n",
            "problems[0]: 'nowhere/model.yaml'",
        ),
        ("[[problems]\nsource='cortisol'\n", "not valid TOML"),
    ],
)
def test_bad_suite_is_one_line_exit_2(tmp_path, body, message):
    path = write_suite(tmp_path, body)
    result = runner.invoke(app, ["bench", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and str(path) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_missing_suite_file(tmp_path):
    result = runner.invoke(app, ["bench", str(tmp_path / "none.toml")])
    assert result.exit_code == 2 and "suite file not found" in result.stderr


# ----------------------------------------------------------------------------- CLI end to end


def test_bench_cli_check_and_update_baseline(tmp_path):
    suite = write_suite(tmp_path, SMALL)
    out, baseline = tmp_path / "out", tmp_path / "baseline.json"
    first = runner.invoke(
        app, ["bench", str(suite), "--out", str(out), "--check", str(baseline), "--update-baseline"]
    )
    assert first.exit_code == 0, first.output
    assert "cortisol" in first.stdout and "multistart" in first.stdout
    data = json.loads(baseline.read_text())
    assert set(data) == {"cortisol/multistart", "cortisol/pso"}
    # the result folder is readable by table and plot like a `pebench run` folder
    starts, _ = load_results(out)
    assert len(starts) == 8 and set(starts["seed"]) == {3}
    # the same results pass their own baseline (resume: nothing left to run)
    again = runner.invoke(app, ["bench", str(suite), "--out", str(out), "--resume", "--check", str(baseline)])
    assert again.exit_code == 0, again.output
    assert "no regression" in again.stdout and "0 tasks" in again.stdout
    # a baseline that the results cannot meet: exit 1 with the list
    data["cortisol/multistart"]["best_nllh"] -= 5.0
    data["cortisol/pso"]["frac_converged"] = 1.0
    data["cortisol/pso"]["tol_frac"] = 0.0
    baseline.write_text(json.dumps(data))
    bad = runner.invoke(app, ["bench", str(suite), "--out", str(out), "--resume", "--check", str(baseline)])
    assert bad.exit_code == 1, bad.output
    assert "REGRESSION" in bad.stderr
    assert "cortisol/multistart: best nllh" in bad.stderr
    # without --resume existing results are an error, before anything runs
    clash = runner.invoke(app, ["bench", str(suite), "--out", str(out)])
    assert clash.exit_code == 2 and "results exist" in clash.stderr
    table = runner.invoke(app, ["table", str(out), "--suite", str(suite), "--markdown"])
    assert table.exit_code == 0 and "| cortisol" in table.stdout
    plots = runner.invoke(app, ["plot", str(out), "--out", str(tmp_path / "plots")])
    assert plots.exit_code == 0 and (tmp_path / "plots" / "cortisol.png").stat().st_size > 10_000


# ----------------------------------------------------------------------------- Dask


def _deterministic(summary: pd.DataFrame) -> pd.DataFrame:
    cols = ["problem", "method", "starts", "best_nllh", "converged", "median_fevals_to_threshold"]
    return summary[cols].reset_index(drop=True)


def _final(out: Path) -> pd.DataFrame:
    starts, _ = load_results(out)
    return starts.sort_values(["method", "start"])[["method", "start", "nllh_final", "n_fevals"]].reset_index(
        drop=True
    )


#: SMALL with the field's winning methods too (cmaes, sacess), to run them on Dask.
WITH_GLOBAL = (
    SMALL
    + """
    [[methods]]
    name = "cmaes"
    max_evals = 60

    [[methods]]
    name = "sacess"
    options = { workers = 2 }
    starts = 1
    max_evals = 200
"""
)


@pytest.mark.slow
def test_local_cluster_matches_in_process_and_survives_a_killed_worker(tmp_path):
    from distributed import Client, LocalCluster

    suite = load_suite(write_suite(tmp_path, WITH_GLOBAL))
    here = run_suite(suite, tmp_path / "here")

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
        ) as cluster,
        Client(cluster) as spy,
    ):
        killed: list[int] = []
        written_at_kill: list[int] = []
        lock = threading.Lock()

        def kill_a_busy_worker(task: Task, output, error):
            with lock:
                if killed:
                    return
                busy = [addr for addr, keys in spy.processing().items() if keys]
                if not busy:
                    return
                pid = spy.run(os.getpid, workers=[busy[0]])[busy[0]]
                written_at_kill.append(len(load_results(tmp_path / "dask")[0]))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        there = run_suite(
            suite, tmp_path / "dask", scheduler=cluster.scheduler_address, on_task_done=kill_a_busy_worker
        )
    assert killed, "no worker was busy when the first task finished"
    assert written_at_kill[0] >= 1
    assert there.failed_tasks == []
    pd.testing.assert_frame_equal(_deterministic(here.summary), _deterministic(there.summary))
    a, b = _final(tmp_path / "here"), _final(tmp_path / "dask")
    assert len(b) == 13 and set(b["method"]) == {"multistart", "pso", "cmaes", "sacess"}
    np.testing.assert_array_equal(a["nllh_final"], b["nllh_final"])
    np.testing.assert_array_equal(a["n_fevals"], b["n_fevals"])


def test_per_problem_budget_overrides_every_method(tmp_path):
    path = write_suite(
        tmp_path,
        SMALL.replace(
            'source = "cortisol"',
            'source = "cortisol"\n    starts = 2\n    max_evals = 30\n    priors = true',
        ),
    )
    suite = load_suite(path)
    assert suite.problems[0].priors is True
    tasks = plan(suite, tmp_path / "out", resume=False)
    budgets = {(t.method.name, t.method.budget.n_starts, t.method.budget.max_evals) for t in tasks}
    assert budgets == {("multistart", 2, 30), ("pso", 2, 30)}
    assert sorted(s for t in tasks if t.method.name == "multistart" for s in t.starts) == [0, 1]
    bad = write_suite(
        tmp_path, SMALL.replace('source = "cortisol"', 'source = "cortisol"\n    starts = 0'), "bad.toml"
    )
    result = runner.invoke(app, ["bench", str(bad), "--out", str(tmp_path / "o2")])
    assert result.exit_code == 2 and "starts" in result.stderr


def test_per_problem_solver_settings_reach_the_objective_and_the_metadata(tmp_path):
    # cortisol's solve takes tens of Rodas5 steps: a budget of 3 steps fails every evaluation,
    # which only happens if the suite's setting reaches the objective the task runs.
    body = SMALL.replace('source = "cortisol"', 'source = "cortisol"\n    solver = { max_steps = 3 }')
    body = body.replace("starts = 4", "starts = 1").replace("max_evals = 40", "max_evals = 3")
    suite = load_suite(write_suite(tmp_path, body))
    assert suite.problems[0].solver == (("max_steps", 3),)
    assert suite.problems[0].options().max_steps == 3
    run_suite(suite, tmp_path / "out")
    starts, _ = load_results(tmp_path / "out")
    assert (starts["status"] == "failed").all() and np.isinf(starts["nllh_final"]).all()
    import pyarrow.parquet as pq

    meta = json.loads(
        pq.read_schema(tmp_path / "out/cortisol/multistart/seed3.starts.parquet").metadata[b"pe_bench"]
    )
    assert meta["solver"]["max_steps"] == 3 and meta["solver"]["rtol"] == 1e-10


@pytest.mark.parametrize(
    "table, message",
    [
        ("{ steps = 3 }", "solver: unknown key(s) steps"),
        ("{ max_steps = 0 }", "solver.max_steps: must be >= 1"),
        ("{ rtol = 'tight' }", "solver.rtol: expected a number"),
        ("{ solver = 'euler' }", "solver: solver must be one of"),
        ("3", "solver: expected a table"),
    ],
)
def test_bad_per_problem_solver_settings(tmp_path, table, message):
    body = SMALL.replace('source = "cortisol"', f'source = "cortisol"\n    solver = {table}')
    path = write_suite(tmp_path, body)
    result = runner.invoke(app, ["bench", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_problems_option_runs_part_of_a_suite(tmp_path):
    from pe_bench.bench import select_methods, select_problems

    body = SMALL + '\n    [[problems]]\n    source = "../../shared/benchmark-models/Boehm_JProteomeRes2014"\n'
    body = body.replace("../../shared", str(SHARED.parent))
    suite = load_suite(write_suite(tmp_path, body))
    part = select_problems(suite, ["cortisol"])
    assert [p.name for p in part.problems] == ["cortisol"] and part.methods == suite.methods
    assert {t.problem.name for t in plan(part, tmp_path / "out", resume=False)} == {"cortisol"}
    args = ["bench", str(suite.path), "--problems", "Fujita", "--out", str(tmp_path / "o")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "not in the suite: Fujita" in result.stderr
    assert not (tmp_path / "o").exists()
    some = select_methods(part, [suite.methods[-1].name])
    assert [m.name for m in some.methods] == [suite.methods[-1].name]
    assert {t.method.name for t in plan(some, tmp_path / "out", resume=False)} == {suite.methods[-1].name}
    args = ["bench", str(suite.path), "--methods", "simplex", "--out", str(tmp_path / "o")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "--methods: not in the suite: simplex" in result.stderr
    assert not (tmp_path / "o").exists()


def test_missing_starts_of_an_unfinished_run(tmp_path):
    from pe_bench.bench import select_methods

    suite = load_suite(write_suite(tmp_path, SMALL))
    out = tmp_path / "out"
    assert missing_starts(suite, out) == {("cortisol", "multistart"): (4, 4), ("cortisol", "pso"): (4, 4)}
    run_suite(select_methods(suite, ["multistart"]), out)
    assert missing_starts(suite, out) == {("cortisol", "pso"): (4, 4)}
    assert missing_starts(select_methods(suite, ["multistart"]), out) == {}


# ----------------------------------------------------------------------------- CPU budgets, bars


CPU_SUITE = """
    name = "cpu"
    seeds = [0]
    cpu_budget = 1.5
    threshold = 0.1

    [[problems]]
    source = "cortisol"

    [[methods]]
    name = "multistart"

    [[methods]]
    name = "cmaes"

    [[methods]]
    name = "sacess"
    options = { workers = 2 }
    pooled = true
"""


def test_cpu_budgeted_suite_runs_each_run_as_one_task_and_resumes_to_nothing(tmp_path):
    suite = load_suite(write_suite(tmp_path, CPU_SUITE))
    assert all(m.budget.cpu_budget == 1.5 and m.budget.n_starts is None for m in suite.methods)
    tasks = plan(suite, tmp_path / "out", resume=False)
    assert [t.starts for t in tasks] == [None, None, None] and all(t.spent == 0 for t in tasks)
    assert planned_starts(suite) == {("cortisol", m): 1 for m in ("multistart", "cmaes", "sacess")}
    result = run_suite(suite, tmp_path / "out")
    assert result.failed_tasks == []
    starts, _ = load_results(tmp_path / "out")
    for method, m in starts.groupby("method"):
        assert 1.5 <= m["run_cpu_s"].max() <= 2.5, (method, m["run_cpu_s"].max())
    assert plan(suite, tmp_path / "out", resume=True) == []
    assert missing_starts(suite, tmp_path / "out") == {}
    row = result.summary.set_index("method").loc["multistart"]
    assert row["runs"] == 1 and row["runs_hit"] == 1 and row["median_cpu_to_threshold"] <= 1.5


def test_pooled_method_gets_the_budget_of_all_starts_in_one(tmp_path):
    body = CPU_SUITE.replace("cpu_budget = 1.5", "starts = 4\n    max_evals = 100\n    max_seconds = 10")
    suite = load_suite(write_suite(tmp_path, body))
    budgets = {t.method.name: t.method.budget for t in plan(suite, tmp_path / "out", resume=False)}
    assert (budgets["sacess"].n_starts, budgets["sacess"].max_evals, budgets["sacess"].max_seconds) == (
        1,
        400,
        40,
    )
    assert (budgets["cmaes"].n_starts, budgets["cmaes"].max_evals) == (4, 100)


def test_bars_from_a_best_known_file_and_problem_method_lists(tmp_path):
    table = tmp_path / "BEST.tsv"
    table.write_text("# a comment\nproblem_id\tbest_nllh\tfound_by\ncortisol\t-250.5\tcmaes\n")
    body = CPU_SUITE.replace('name = "cpu"', 'name = "cpu"\n    best_known_file = "BEST.tsv"')
    body = body.replace('source = "cortisol"', 'source = "cortisol"\n    methods = ["cmaes"]')
    suite = load_suite(write_suite(tmp_path, body))
    assert suite.best_known == {"cortisol": -250.5}
    assert suite.best_known_sources == {"cortisol": "BEST.tsv (cmaes)"}
    assert [m.name for m in suite.methods_for(suite.problems[0])] == ["cmaes"]
    bad = write_suite(tmp_path, body.replace('["cmaes"]', '["simplex"]'), "bad.toml")
    result = runner.invoke(app, ["bench", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "methods simplex are not in the suite" in result.stderr
    table.write_text("problem\tnllh\ncortisol\t1\n")
    result = runner.invoke(app, ["bench", str(suite.path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "required column 'problem_id'" in result.stderr


def test_a_start_below_the_stated_value_is_rechecked_before_it_sets_the_bar(tmp_path):
    from pe_bench.bench import confirm_bars, read_bars, summarise_suite

    body = SMALL.replace('source = "cortisol"', 'source = "cortisol"\n    best_known = -200.0')
    suite = load_suite(write_suite(tmp_path, body))
    out = tmp_path / "out"
    run_suite(suite, out)
    bars = confirm_bars(suite, out)
    bar = bars["cortisol"]
    assert bar["nllh"] < -200 and bar["rtol"] == 1e-12
    assert bar["nllh_tight"] == pytest.approx(bar["nllh"], abs=1e-4)  # holds at tighter tolerances
    assert read_bars(out) == bars
    row = summarise_suite(suite, out).iloc[0]
    assert row["best_known"] == pytest.approx(bar["nllh_tight"])
    # the re-evaluated value, not the run's, is the bar
    (out / "bars.json").write_text(json.dumps({"cortisol": bar | {"nllh_tight": -210.0}}))
    assert summarise_suite(suite, out).iloc[0]["best_known"] == -210.0
