"""Documentation that cannot rot: generated blocks current, runnable examples run, plots readable.

The site itself is built with ``mkdocs build --strict`` by ``make docs`` (in CI).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RUNNABLE_PAGES = ("README.md", "docs/getting-started.md")


def runnable_blocks(path: Path) -> list[str]:
    """The ```sh blocks of a page that follow a ``<!-- runnable -->`` line."""
    text = path.read_text()
    return re.findall(r"<!-- runnable -->\s*\n```sh\n(.*?)```", text, flags=re.S)


def test_generated_blocks_are_current():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gen_docs
    finally:
        sys.path.pop(0)
    assert gen_docs.main(["--check"]) == 0, "run .venv/bin/python tools/gen_docs.py"


def test_readme_is_short_and_has_runnable_examples():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= 300, f"README.md has {lines} lines (at most about 300: the rest belongs in docs/)"
    for page in RUNNABLE_PAGES:
        assert runnable_blocks(ROOT / page), f"{page} has no runnable example"


def test_every_docs_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md"))
    assert pages and all(p in nav for p in pages), [p for p in pages if p not in nav]


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "benchmark-models").is_dir(), reason="../shared/benchmark-models missing")
def test_runnable_examples_run(tmp_path):
    """Every command of the marked shell blocks runs as written (exit 0), in a scratch project
    with ../shared beside it; a command that appears on both pages runs once."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "benchmarks").symlink_to(ROOT / "benchmarks")
    (tmp_path / "shared").symlink_to(SHARED)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done: set[str] = set()
    for page in RUNNABLE_PAGES:
        for block in runnable_blocks(ROOT / page):
            for command in block.strip().splitlines():
                if command in done or not command.strip() or command.lstrip().startswith("#"):
                    continue
                done.add(command)
                proc = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", command],
                    cwd=project,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=900,
                )
                assert proc.returncode == 0, (
                    f"{page}: {command}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
                )
    assert list((project / "results").rglob("*.starts.parquet")), "the examples wrote no results"


def _synthetic_runs(methods=("multistart", "cmaes"), seeds=(0, 1, 2), starts=4):
    """Starts and history tables of fake runs (decreasing best-so-far), in the result schema."""
    rng = np.random.default_rng(0)
    srows, hrows = [], []
    for m in methods:
        for seed in seeds:
            cpu = 0.0
            for start in range(starts):
                final = 10.0 + rng.exponential(2.0)
                n = 20
                for k in range(1, n + 1):
                    cpu += 0.01
                    hrows.append(
                        dict(
                            problem="P",
                            method=m,
                            seed=seed,
                            start=start,
                            n_fevals=k,
                            seconds=0.01 * k,
                            best_nllh=final + 100.0 / k,
                            cpu_seconds=0.01 * k,
                            run_cpu_seconds=cpu,
                        )
                    )
                srows.append(
                    dict(
                        problem="P",
                        method=m,
                        seed=seed,
                        start=start,
                        nllh_final=final,
                        n_fevals=n,
                        wall_time_s=0.2,
                        cpu_time_s=0.2,
                        shared_fevals=0,
                        shared_wall_s=0.0,
                        shared_cpu_s=0.0,
                    )
                )
    return pd.DataFrame(srows), pd.DataFrame(hrows)


def test_plots_draw_one_line_per_method_and_panel(tmp_path):
    """Convergence panels: the median over seeds (one line per method, with a band), one colour
    per method in every panel, the threshold line labelled, the legend outside the axes."""
    import matplotlib.pyplot as plt

    from pe_bench import plots

    starts, history = _synthetic_runs()
    colors = plots.method_colors(["multistart", "cmaes"])
    assert colors["cmaes"] != colors["multistart"]
    # the same colour whatever else is in the figure
    assert (
        plots.method_colors(["cmaes"])["cmaes"]
        == plots.method_colors(["multistart", "cmaes", "pso"])["cmaes"]
    )
    for x in ("n_fevals", "run_cpu_seconds"):
        fig, ax = plt.subplots()
        plots.convergence(starts, history, x, ax=ax, best=10.0)
        lines = [ln for ln in ax.get_lines() if not ln.get_label().startswith("threshold")]
        assert len(lines) == 2, [ln.get_label() for ln in lines]  # one per method, not per seed
        assert {ln.get_color() for ln in lines} == {colors["multistart"], colors["cmaes"]}
        assert any(ln.get_label().startswith("threshold") for ln in ax.get_lines())
        assert len(ax.collections) == 2  # one interquartile band per method
        plt.close(fig)
    # the median of the three seeds' best-so-far, checked against numpy at one grid point
    traces = plots.run_traces(starts, history)
    grid = np.array([30.0])
    q = plots.method_bands(traces, "n_fevals", grid)["multistart"]
    per_seed = [
        t[t["n_fevals"] <= 30]["best_nllh"].min()
        for _, t in traces[traces.method == "multistart"].groupby("seed")
    ]
    assert q[1, 0] == pytest.approx(np.median(per_seed))
    out = plots.comparison_figure(starts, history, tmp_path / "p.png", stated={"P": 10.0})
    assert out.stat().st_size > 10_000
    both = pd.concat([starts, starts.assign(problem="Q")]), pd.concat([history, history.assign(problem="Q")])
    overview = plots.overview_figure(
        *both, tmp_path / "overview.png", stated={"P": 10.0, "Q": 10.0}, thresholds=5.0
    )
    assert overview.stat().st_size > 10_000


def test_hitting_budgets_against_hand_count():
    """The overview's profile counts a run as solved from its first history row within the bar."""
    from pe_bench import plots

    starts, history = _synthetic_runs(methods=("multistart",), seeds=(0,), starts=1)
    final = float(starts.nllh_final.iloc[0])
    hits = plots.hitting_budgets(starts, history, {"P": final}, {"P": 10.0})
    # best_nllh = final + 100 / k <= final + 10  <=>  k >= 10
    assert hits.n_fevals.iloc[0] == 10
