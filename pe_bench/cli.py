"""The ``pebench`` command line: parse, call the library, print. No logic lives here."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # XLA's C++ log lines are noise to users

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from .errors import PeBenchError  # noqa: E402

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Benchmark parameter estimation on SBML/PEtab models."
)
console = Console(soft_wrap=True)
_state: dict = {"debug": False, "device": None}

Problem_ = Annotated[
    str, typer.Argument(help="built-in name, PEtab YAML or folder, SBML file, or fetched BioModels id")
]
Priors_ = Annotated[
    bool,
    typer.Option("--priors", help="add the parameter table's objective priors (negative log-posterior)"),
]
Hierarchical_ = Annotated[
    bool,
    typer.Option(
        "--hierarchical",
        help="solve observable scalings, offsets and sigmas in closed form; methods see the rest",
    ),
]
Params = Annotated[
    str, typer.Option("--params", help="nominal | true | FILE.tsv (parameterId, value on linear scale)")
]


def _setup() -> None:
    """float64, the compilation cache and the device (``--device``): JAX's start-up."""
    from .runtime import configure_jax

    configure_jax(_state["device"])


BestKnown_ = Annotated[
    float | None,
    typer.Option("--best-known", help="the best known nllh: the bar that 'converged' counts against"),
]
Wide_ = Annotated[bool, typer.Option("--wide", help="every summary column (default: a compact table)")]


def _user_errors(fn=None, *, setup: bool = True):
    """Turn a PeBenchError into one line on stderr and exit code 2 (traceback with --debug).

    With ``setup`` JAX is configured before the command runs; commands that check their
    arguments first (``run``) pass ``setup=False`` and call :func:`_setup` after.
    """
    if fn is None:
        return functools.partial(_user_errors, setup=setup)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            if setup:
                _setup()
            return fn(*args, **kwargs)
        except PeBenchError as exc:
            if _state["debug"]:
                raise
            print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)  # always one line
            raise typer.Exit(2) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"pebench {version('pe_bench')}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks for user errors")] = False,
    device: Annotated[
        str | None, typer.Option("--device", help="cpu | gpu (default: what JAX finds; recorded in results)")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Benchmark parameter-estimation strategies on kinetic models."""
    _state["debug"] = debug
    _state["device"] = device


@app.command("list")
@_user_errors
def list_() -> None:
    """List the built-in problems."""
    from .problems.biopredyn import BUILTIN
    from .problems.registry import builtin_names

    for name in builtin_names():
        console.print(name)
    for name, which in BUILTIN.items():
        console.print(f"{name}  (BioPreDyn-Bench {which}, imported from ../shared/biopredyn on first use)")


@app.command()
@_user_errors
def info(problem: Problem_, json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Sizes, noise models and unsupported features of a problem."""
    from .problems.registry import resolve
    from .report import summary

    data = summary(resolve(problem))
    for line in data["notes"]:
        if line.startswith("warning:"):
            print(line, file=sys.stderr)
    if json_:
        print(json.dumps(data))
        return
    table = Table(show_header=False)
    for k, v in data.items():
        table.add_row(k, ", ".join(v) if isinstance(v, list) else str(v))
    console.print(table)


@app.command()
@_user_errors
def evaluate(
    problem: Problem_,
    params: Params = "nominal",
    grad: Annotated[bool, typer.Option("--grad", help="also compute the gradient")] = False,
    json_: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    priors: Priors_ = False,
) -> None:
    """Evaluate the negative log-likelihood (and gradient) at one parameter vector."""
    from .report import evaluate_source

    with Console(stderr=True).status("loading and compiling (stored for the next call) ..."):
        result = evaluate_source(problem, params, grad=grad, priors=priors)
    for line in result["warnings"]:
        print(line, file=sys.stderr)
    if json_:
        print(json.dumps(result))
        return
    console.print(
        f"{result['problem']}: llh = {result['llh']:.6f}  nllh = {result['nllh']:.6f}  "
        + (
            f"negative log-prior = {result['negative_log_prior']:.6f}  "
            f"objective = {result['objective']:.6f}  "
            if result["priors"]
            else ""
        )
        + f"status = {result['status']}  ({result['wall_time_s'] * 1e3:.1f} ms, "
        f"compile {result['compile_time_s']:.1f} s{', stored objective' if result['cached'] else ''})"
    )
    if result["grad"] is not None:
        # x is on the estimation scale: the gradient is with respect to log10(K), not K
        console.print("  gradient on the estimation scale:")
        ids, scales = result["parameter_ids"], result["parameter_scale"]
        for pid, scale, g in zip(ids, scales, result["grad"], strict=True):
            var = pid if scale == "lin" else f"{scale}({pid})"
            console.print(f"  d {'objective' if result['priors'] else 'nllh'} / d {var} = {g:.6g}")


@app.command()
@_user_errors
def simulate(
    problem: Problem_,
    out: Annotated[Path, typer.Option("--out", help="FILE.parquet or FILE.csv")],
    params: Params = "nominal",
) -> None:
    """Simulate observables and states at the measurement times of every condition."""
    from .arguments import check_writable_file
    from .problems.registry import resolve
    from .report import parameters_from_spec, simulation_table, write_table

    check_writable_file(out)
    pb = resolve(problem)
    path = write_table(simulation_table(pb, parameters_from_spec(pb, params)), out)
    console.print(f"wrote {path}")


@app.command("import")
@_user_errors
def import_(
    kind: Annotated[str, typer.Argument(help="the source format: biopredyn")],
    which: Annotated[str, typer.Argument(help="the problem: B2 or B4")],
    from_: Annotated[Path, typer.Option("--from", help="folder of the raw files (holding B2/, B4/)")],
    out: Annotated[Path, typer.Option("--out", help="new or empty folder for the PEtab problem")],
) -> None:
    """Write a BioPreDyn-Bench problem (raw SBML + AMIGO2 files) as a PEtab v1 problem."""
    from .errors import ProblemSpecError
    from .problems.biopredyn import write_petab

    if kind != "biopredyn":
        raise ProblemSpecError(f"unknown import format '{kind}' (supported: biopredyn)")
    console.print(f"wrote {write_petab(from_, which, out)}")


@app.command()
@_user_errors
def fetch(
    model_id: Annotated[str, typer.Argument(help="BioModels id, e.g. BIOMD0000000916")],
    base_url: Annotated[str | None, typer.Option("--base-url", help="BioModels REST base URL")] = None,
    force: Annotated[bool, typer.Option("--force", help="download even if cached")] = False,
) -> None:
    """Download a curated SBML model from BioModels into the cache."""
    from .problems.biomodels import fetch as run

    console.print(f"cached {run(model_id, base=base_url, force=force)}")


@app.command()
@_user_errors(setup=False)
def run(
    problem: Problem_,
    method: Annotated[
        str, typer.Option("--method", "-m", help="multistart | pso | adam | cvae | cmaes | sacess")
    ],
    starts: Annotated[
        int | None,
        typer.Option("--starts", help="number of starts [20; with --cpu-budget: until it is spent]"),
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    max_evals: Annotated[int | None, typer.Option("--max-evals", help="evaluations per start")] = None,
    max_seconds: Annotated[float | None, typer.Option("--max-seconds", help="seconds per start")] = None,
    cpu_budget: Annotated[
        float | None,
        typer.Option("--cpu-budget", help="CPU seconds for the whole run: starts until it is spent"),
    ] = None,
    target: Annotated[float | None, typer.Option("--target", help="stop a start at this nllh")] = None,
    best_known: BestKnown_ = None,
    out: Annotated[Path, typer.Option("--out", help="results folder")] = Path("results/runs"),
    resume: Annotated[bool, typer.Option("--resume", help="continue an interrupted run")] = False,
    local: Annotated[
        str | None,
        typer.Option("--local", help="local optimiser of multistart and cvae: fides or a scipy method"),
    ] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="method option key=value")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
    wide: Wide_ = False,
    priors: Priors_ = False,
    hierarchical: Hierarchical_ = False,
) -> None:
    """Run one estimation method; one Parquet row per start, written as starts finish."""
    from .arguments import check_budget_values, check_method, check_writable_folder

    n_starts = starts if starts is not None else (None if cpu_budget is not None else 20)
    check_method(method)
    check_budget_values(n_starts, max_evals, max_seconds, cpu_budget)
    check_writable_folder(out)
    _setup()

    from .methods import Budget
    from .metrics import best_table
    from .problems.registry import resolve
    from .progress import RunProgress
    from .results import load_compilation, load_results
    from .runner import make_method, parse_options, run_method

    opts = parse_options(option or []) | ({"local": local} if local else {})
    meth = make_method(method, opts)
    budget = Budget(n_starts=n_starts, max_evals=max_evals, max_seconds=max_seconds, cpu_budget=cpu_budget)
    pb = resolve(problem)
    if hierarchical:
        from .hierarchical import find_inner

        found = find_inner(pb, with_priors=priors)
        console.print(
            f"hierarchical: {found.summary()}" + ("" if found.n else "; the full problem is fitted")
        )
    try:
        with RunProgress(n_starts, f"{pb.name}/{method}", quiet=quiet, console=console) as bar:
            path = run_method(
                pb,
                meth,
                budget,
                seed,
                out,
                target=target,
                resume=resume,
                on_start_done=bar.on_start_done,
                on_eval=bar.on_eval,
                on_resume=bar.on_resume,
                priors=priors,
                hierarchical=hierarchical,
            )
    except KeyboardInterrupt:
        _interrupted(out, pb.name, method, seed)
    console.print(f"wrote {path}")
    bar = best_known if best_known is not None else target
    table = best_table(
        *load_results(path.parent),
        compilation=load_compilation(path.parent),
        stated=None if bar is None else {pb.name: bar},
    )
    console.print(_format_summary(table, wide).to_string(index=False))
    note = _no_bar_note(table)
    if note:
        console.print(note)


Suite_ = Annotated[
    Path | None, typer.Option("--suite", help="suite TOML: use its best known values and thresholds")
]


def _suite_reference(suite: Path | None, folder: Path) -> tuple[dict | None, dict | None, dict | None]:
    """A suite's bars and thresholds, and the re-checked bars kept in the results folder."""
    if suite is None:
        return None, None, None
    from .bench import confirmed_values, load_suite, read_bars

    s = load_suite(suite)
    return s.best_known, s.thresholds, confirmed_values(read_bars(folder), s.best_known)


@app.command()
@_user_errors
def table(
    folder: Annotated[Path, typer.Argument(help="results folder (as given to run/bench --out)")],
    problem: Annotated[str | None, typer.Option("--problem")] = None,
    top: Annotated[int, typer.Option("--top", help="sorted final objectives shown per method")] = 5,
    suite: Suite_ = None,
    best_known: BestKnown_ = None,
    json_: Annotated[bool, typer.Option("--json")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="a Markdown table (every column)")] = False,
    wide: Wide_ = False,
) -> None:
    """Per problem and method: best nllh, converged starts, cost per converged start, CPU to the bar."""
    from .metrics import best_table
    from .results import load_compilation, load_results

    stated, thresholds, confirmed = _suite_reference(suite, folder)
    starts, history = load_results(folder, problem)
    if best_known is not None:
        names = sorted(set(starts["problem"]))
        if len(names) > 1:
            raise PeBenchError(f"--best-known is for one problem; {folder} holds {len(names)}: add --problem")
        stated = (stated or {}) | {names[0]: best_known}
    df = best_table(
        starts,
        history,
        top=top,
        stated=stated,
        thresholds=thresholds,
        compilation=load_compilation(folder),
        confirmed=confirmed,
    )
    if json_:
        print(df.to_json(orient="records"))
    elif markdown:
        print(_format_summary(df).to_markdown(index=False))
    else:
        print(_format_summary(df, wide).to_string(index=False))
        note = _no_bar_note(df)
        if note:
            print(note)
        width = max(len("problem"), *(len(p) for p in df["problem"]))
        print(f"\nbest {top} final nllh per method:")
        print(f"{'problem':<{width}}  {'method':<10}  top{top}")
        for p_, m_, vals in zip(df["problem"], df["method"], df[f"top{top}"], strict=True):
            print(f"{p_:<{width}}  {m_:<10}  " + " ".join(f"{v:.7g}" for v in vals))


@app.command()
@_user_errors
def plot(
    folder: Annotated[Path, typer.Argument(help="results folder")],
    out: Annotated[Path, typer.Option("--out", help="FILE.png, or a folder for one PNG per problem")],
    problem: Annotated[str | None, typer.Option("--problem")] = None,
    suite: Suite_ = None,
) -> None:
    """Waterfall and convergence plots of every method in a results folder.

    A folder ``--out`` gets one PNG per problem and, for two problems or more,
    ``overview.png``: a performance profile across the problems and a problem x method
    heat map of converged starts.
    """
    from .plots import comparison_figure, overview_figure
    from .results import PROBLEM, load_results

    stated, thresholds, confirmed = _suite_reference(suite, folder)
    starts, history = load_results(folder, problem)
    if out.suffix.lower() == ".png":
        console.print(f"wrote {comparison_figure(starts, history, out, stated, thresholds, confirmed)}")
        return
    names = sorted(starts[PROBLEM].unique())
    for name in names:
        s, h = starts[starts[PROBLEM] == name], history[history[PROBLEM] == name]
        console.print(f"wrote {comparison_figure(s, h, out / f'{name}.png', stated, thresholds, confirmed)}")
    if len(names) > 1:
        console.print(
            f"wrote {overview_figure(starts, history, out / 'overview.png', stated, thresholds, confirmed)}"
        )


def _format_summary(df, wide: bool = True):
    """The summary columns a reader compares methods by, rounded (``wide=False``: the compact set).

    ``converged``, ``evals / conv.``, ``s / conv.`` and the CPU-seconds to the bar are
    claims about reaching an optimum: shown only where the bar is a known value
    (``bar_known``), "-" where it is merely the best the runs found.

    ``CPU s to bar``: median over the runs (seeds) that reached the bar of the run's CPU
    seconds when they did, with how many runs did; ``+1.921``: the same at the field's
    statistical threshold.
    """
    from .metrics import STAT_THRESHOLDS, stat_label

    stat = stat_label(STAT_THRESHOLDS[0])

    def runs_and_time(hit, runs, time):
        # Files written before CPU-seconds were recorded have no time axis: "n/a".
        cells = []
        for h, n, t, cpu in zip(hit, runs, time, df["total_cpu_seconds"], strict=True):
            cells.append(f"{t:.1f} ({h}/{n})" if h else (f"- (0/{n})" if cpu == cpu else "n/a"))
        return cells

    import numpy as np

    known = df["bar_known"].astype(bool).to_numpy() if "bar_known" in df else np.ones(len(df), bool)

    def claim(cells):
        # Without a known value the runs' own best is no optimum: no convergence claim.
        return [c if k else "-" for c, k in zip(cells, known, strict=True)]

    out = df.assign(
        best_known=[f"{v:.3f}" if k else "none" for v, k in zip(df["best_known"], known, strict=True)],
        converged=claim([f"{c}/{n}" for c, n in zip(df["converged"], df["starts"], strict=True)]),
        conv_stat=claim([f"{c}/{n}" for c, n in zip(df[f"converged_{stat}"], df["starts"], strict=True)]),
        cpu_to_bar=claim(runs_and_time(df["runs_hit"], df["runs"], df["median_cpu_to_threshold"])),
        cpu_to_stat=claim(runs_and_time(df[f"runs_hit_{stat}"], df["runs"], df[f"median_cpu_to_{stat}"])),
        fevals_per_converged=claim(df["fevals_per_converged"].round(0).tolist()),
        seconds_per_converged=claim(df["seconds_per_converged"].round(2).tolist()),
    )
    cols = {
        "problem": "problem",
        "method": "method",
        "best_nllh": "best nllh",
        "best_known": "bar",
        "converged": "converged",
        "conv_stat": f"within +{stat}",
        "fevals_per_converged": "evals / conv.",
        "seconds_per_converged": "s / conv.",
        "cpu_to_bar": "CPU s to bar (runs)",
        "cpu_to_stat": f"CPU s to +{stat}",
        "failed_integrations": "failed integr.",
        "total_cpu_seconds": "CPU s",
    }
    if "compile_seconds" in out.columns:
        cols["compile_seconds"] = "compile s"
    if not wide:
        cols = {k: v for k, v in cols.items() if k in COMPACT_COLUMNS}
        cols.update(
            converged="conv.",
            fevals_per_converged="evals/conv.",
            seconds_per_converged="s/conv.",
            failed_integrations="failed",
        )
        out["failed_integrations"] = [
            "n/a" if v != v else str(int(v))
            for v in out["failed_integrations"]  # NaN: older files
        ]
    out = out[list(cols)].rename(columns=cols)
    return out.round({"best nllh": 3, "CPU s": 1, "compile s": 1})


#: The columns ``pebench run``, ``table`` and ``bench`` print without ``--wide`` (fit 100 columns).
COMPACT_COLUMNS = (
    "problem",
    "method",
    "best_nllh",
    "best_known",
    "converged",
    "fevals_per_converged",
    "seconds_per_converged",
    "failed_integrations",
)


def _interrupted(out: Path, problem: str, method: str, seed: int):
    """Ctrl-C during a run: say what was kept and how to go on; exit 130 (SIGINT's code)."""
    import shlex

    from .results import read_starts, run_paths

    starts_path, _ = run_paths(out, problem, method, seed)
    kept = len(read_starts(starts_path)) if starts_path.exists() else 0
    argv = ["pebench", *sys.argv[1:]]
    if "--resume" not in argv:
        argv.append("--resume")
    where = f" in {starts_path}" if kept else ""
    print(
        f"interrupted: {kept} finished start(s) kept{where}; carry on with: {shlex.join(argv)}",
        file=sys.stderr,
    )
    raise typer.Exit(130)


def _no_bar_note(df) -> str | None:
    """One line for the problems whose summary makes no convergence claim."""
    if "bar_known" not in df or df["bar_known"].astype(bool).all():
        return None
    names = ", ".join(sorted(set(df.loc[~df["bar_known"].astype(bool), "problem"])))
    import textwrap

    text = (
        f"no known best value for {names}: convergence columns left empty "
        "(give --best-known VALUE, --target VALUE or --suite FILE)"
    )
    return "\n".join(textwrap.wrap(text, 100, break_on_hyphens=False))


@app.command()
@_user_errors
def bench(
    suite: Annotated[Path, typer.Argument(help="suite TOML file (benchmarks/*.toml)")],
    out: Annotated[Path | None, typer.Option("--out", help="results folder [results/bench/<suite>]")] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="start a local Dask cluster with N worker processes")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="address of a running Dask scheduler")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="keep finished starts, run the rest")] = False,
    check: Annotated[
        Path | None, typer.Option("--check", help="baseline JSON: exit 1 if any problem/method regressed")
    ] = None,
    update_baseline: Annotated[
        bool, typer.Option("--update-baseline", help="rewrite the --check file from this run")
    ] = False,
    problems: Annotated[
        str | None,
        typer.Option("--problems", help="run only these problems of the suite (names, comma-separated)"),
    ] = None,
    methods: Annotated[
        str | None,
        typer.Option("--methods", help="run only these methods of the suite (names, comma-separated)"),
    ] = None,
    wide: Wide_ = False,
) -> None:
    """Run a benchmark suite (problems x methods x seeds), print its summary, check a baseline."""
    from .arguments import check_writable_folder
    from .bench import (
        baseline_from,
        check_baseline,
        load_suite,
        read_baseline,
        run_suite,
        select_methods,
        select_problems,
        write_baseline,
    )

    if update_baseline and check is None:
        raise PeBenchError("--update-baseline needs --check FILE (the baseline to write)")
    if (problems is not None or methods is not None) and check is not None:
        raise PeBenchError("--problems / --methods run part of a suite; a baseline --check needs all of it")
    s = load_suite(suite)
    if problems is not None:
        s = select_problems(s, [p.strip() for p in problems.split(",") if p.strip()])
    if methods is not None:
        s = select_methods(s, [m.strip() for m in methods.split(",") if m.strip()])
    baseline = read_baseline(check) if check is not None and not update_baseline else None
    out = out or Path("results/bench") / s.name
    check_writable_folder(out)

    def on_task_done(task, output, error):
        if error is not None:
            console.print(f"[red]{task.key}: failed: {error}[/red]")
            return
        best = min((r.nllh_final for r in output.results), default=float("nan"))
        console.print(f"{task.key}: best {best:.4f}  ({output.seconds:.1f} s)")

    result = run_suite(s, out, workers=workers, scheduler=scheduler, resume=resume, on_task_done=on_task_done)
    console.print(_format_summary(result.summary, wide).to_string(index=False))
    note = _no_bar_note(result.summary)
    if note:
        console.print(note)
    console.print(f"suite '{s.name}': {result.n_tasks} tasks, {result.wall_seconds:.1f} s; results in {out}")
    if result.failed_tasks:
        raise PeBenchError(
            f"{len(result.failed_tasks)} task(s) failed: "
            + "; ".join(result.failed_tasks)
            + " (finished starts are kept; rerun with --resume)"
        )
    if update_baseline:
        old = read_baseline(check) if check.exists() else None
        console.print(f"wrote {write_baseline(check, baseline_from(result.summary, old))}")
    elif baseline is not None:
        regressions = check_baseline(result.summary, baseline)
        if regressions:
            print(f"REGRESSION against {check}:", file=sys.stderr)
            for line in regressions:
                print(f"  {line}", file=sys.stderr)
            raise typer.Exit(1)
        console.print(f"no regression against {check} ({len(baseline)} entries)")


@app.command("sbml-suite")
@_user_errors
def sbml_suite(
    folder: Annotated[Path, typer.Argument(help="the suite's semantic/ folder (one NNNNN/ folder per case)")],
    cases: Annotated[
        str | None, typer.Option("--cases", help="case numbers and ranges, e.g. 1-200,1500 [all]")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="write the report CSV here")] = None,
    keep: Annotated[
        Path | None, typer.Option("--keep", help="write each simulated case as DIR/NNNNN-results.csv")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="worker processes (0: in this process) [cores]")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds per case (worker processes)")] = 300.0,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
) -> None:
    """Run the SBML Test Suite's semantic cases; summary by status and tag; exit 1 on any 'fail'."""
    from .progress import CaseProgress
    from .sbml_suite import parse_cases, run_cases, summary, write_report

    if not folder.is_dir():
        raise PeBenchError(f"{folder}: not a folder (the SBML Test Suite's semantic cases)")
    ids = parse_cases(cases, folder)
    n_workers = (os.cpu_count() or 1) if workers is None else workers
    with CaseProgress(len(ids), "sbml-suite", quiet=quiet, console=console) as bar:
        report = run_cases(
            folder, ids, workers=n_workers, keep=keep, timeout=timeout, on_result=bar.on_result
        )
    by_status, by_tag = summary(report)
    console.print(by_tag.to_string())
    console.print(by_status.T.to_string(index=False))
    if out is not None:
        console.print(f"wrote {write_report(report, out)}")
    fails = report[report["status"] == "fail"]
    if len(fails):
        print(f"{len(fails)} case(s) simulated wrong: {', '.join(fails['case'])}", file=sys.stderr)
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
