"""pe_bench against pyPESTO + AMICI (+ fides), side by side, in one process and one run.

Needs the optional extra: ``pip install -e '.[peers]'`` (amici compiles from source, about
two minutes). ``make peers`` installs it and runs this script.

Per shared problem both tools support, at the same tolerances (pe_bench's defaults:
rtol = atol = 1e-10, steady state 1e-10 / 1e-12), repetitions interleaved (pe_bench call,
AMICI call, pe_bench call, ...):

- llh: median seconds per call; llh + gradient: pe_bench (reverse or forward mode, as
  configured) against AMICI forward and adjoint sensitivities;
- batched throughput over 256 vectors (nominal + N(0, 0.1) on the estimation scale):
  pe_bench's vmapped batch against AMICI called in a loop;
- compile time: pe_bench's first llh + gradient call (trace + XLA compile) against AMICI's
  model import + C++ compile (pyPESTO's importer, a fresh output folder);
- optionally (--multistart P1,P2) 20 Latin-hypercube starts: pyPESTO + fides against
  each pe_bench method (--methods, default multistart, cvae, pso, adam; 20 starts or
  swarms each, one shared objective): wall time, best nllh, starts within 0.1 of the best
  value any tool found (or the published one), seconds per converged start.

Prints a table of ratios (pe_bench / peer; < 1 means pe_bench is faster) and writes
``results/peers.parquet``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "benchmark-models"


def _peers():
    try:
        import amici.sim.sundials as asd
        import petab.v1 as petab
        import pypesto
        import pypesto.optimize
        from pypesto.petab import PetabImporter
    except ImportError as exc:
        sys.exit(f"the peer comparison needs amici, pypesto and fides: pip install -e '.[peers]' ({exc})")
    return asd, petab, pypesto, PetabImporter


def reference_llh() -> dict[str, float]:
    ref = pd.read_csv(SHARED / "REFERENCE.tsv", sep="\t")
    return dict(zip(ref["problem_id"], ref["llh_at_nominal"], strict=True))


# pyPESTO problems already imported in this process: AMICI cannot import a model module
# twice from the same folder, so the multi-start comparison reuses them.
_IMPORTED: dict = {}


def amici_objective(name: str, yaml: Path, workdir: Path, options):
    """(pyPESTO problem, seconds for import + compile); tolerances as pe_bench's."""
    if name in _IMPORTED:
        return _IMPORTED[name], 0.0
    asd, petab, pypesto, PetabImporter = _peers()
    pp = petab.Problem.from_yaml(yaml)
    if petab.lint.measurement_table_has_timepoint_specific_mappings(pp.measurement_df):
        # AMICI needs one observable per override pattern; petab flattens it (same llh).
        petab.flatten_timepoint_specific_output_overrides(pp)
    out = workdir / name
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    importer = PetabImporter(pp, output_folder=str(out), model_name=f"{name}_pebench_peer")
    problem = importer.create_problem(verbose=False)
    compile_s = time.perf_counter() - t0
    solver = problem.objective.amici_solver
    solver.set_relative_tolerance(options.rtol)
    solver.set_absolute_tolerance(options.atol)
    solver.set_relative_tolerance_steady_state(options.steady_state_rtol)
    solver.set_absolute_tolerance_steady_state(options.steady_state_atol)
    solver.set_max_steps(100_000)
    _IMPORTED[name] = problem
    return problem, compile_s


def set_sensi(problem, method: str) -> None:
    asd = _peers()[0]
    s = problem.objective.amici_solver
    kind = asd.SensitivityMethod.forward if method == "forward" else asd.SensitivityMethod.adjoint
    s.set_sensitivity_method(kind)


def seconds(fn) -> float:
    """Wall seconds of one call."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def compare_problem(name: str, reps: int, n_batch: int, workdir: Path, rows: list[dict]) -> None:
    import jax

    from pe_bench import Objective, resolve
    from pe_bench.simulate import SolverOptions

    options = SolverOptions()
    folder = SHARED / name
    yaml = next(folder.glob("*.yaml"))
    pb = resolve(str(folder))
    obj = Objective(pb, options)
    x = np.asarray(pb.x_nominal, dtype=float)

    t0 = time.perf_counter()
    v, g, _ = obj.value_and_grad(x)
    pe_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    obj.value(x)
    pe_compile += time.perf_counter() - t0

    problem, amici_compile = amici_objective(name, yaml, workdir, options)
    if list(problem.x_names[i] for i in problem.x_free_indices) != list(pb.x_ids):
        raise SystemExit(f"{name}: parameter order differs between pe_bench and pyPESTO")
    xa = np.asarray(x)
    fa = problem.objective(xa, sensi_orders=(0,))
    set_sensi(problem, "forward")
    fa1, ga = problem.objective(xa, sensi_orders=(0, 1))
    agree = abs(fa - v) <= 1e-3 * max(1.0, abs(v))
    ref = -reference_llh().get(name, np.nan)
    print(
        f"{name}: nllh pe_bench {v:.6f}  amici {fa:.6f}  (reference {ref:.6f}); "
        f"max |grad diff| {np.max(np.abs(ga - g)):.3g}",
        flush=True,
    )

    # interleaved repetitions
    t = {k: [] for k in ("pe_llh", "am_llh", "pe_grad", "am_fwd", "am_adj")}
    for _ in range(reps):
        t["pe_llh"].append(seconds(lambda: obj.value(x)))
        t["am_llh"].append(seconds(lambda: problem.objective(xa, sensi_orders=(0,))))
        t["pe_grad"].append(seconds(lambda: obj.value_and_grad(x)))
        set_sensi(problem, "forward")
        t["am_fwd"].append(seconds(lambda: problem.objective(xa, sensi_orders=(0, 1))))
        set_sensi(problem, "adjoint")
        t["am_adj"].append(seconds(lambda: problem.objective(xa, sensi_orders=(0, 1))))
    med = {k: statistics.median(v) for k, v in t.items()}

    rng = np.random.default_rng(0)
    lo, hi = pb.bounds
    xs = np.clip(x + rng.normal(0, 0.1, (n_batch, len(x))), lo, hi)
    obj.batch(xs)  # compile
    t_pe_batch, t_am_loop = [], []
    for _ in range(max(1, reps // 5)):
        t0 = time.perf_counter()
        obj.batch(xs)
        t_pe_batch.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for row in xs:
            problem.objective(row, sensi_orders=(0,))
        t_am_loop.append(time.perf_counter() - t0)
    pe_tp = n_batch / statistics.median(t_pe_batch)
    am_tp = n_batch / statistics.median(t_am_loop)

    def add(metric, pe, peer, unit, peer_name="amici"):
        rows.append(
            {
                "problem": name,
                "metric": metric,
                "pe_bench": pe,
                "peer": peer,
                "peer_name": peer_name,
                "ratio": pe / peer if peer else np.nan,
                "unit": unit,
                "llh_agree": bool(agree),
            }
        )

    add("llh_ms", med["pe_llh"] * 1e3, med["am_llh"] * 1e3, "ms")
    add("llh_grad_ms_vs_forward", med["pe_grad"] * 1e3, med["am_fwd"] * 1e3, "ms", "amici forward")
    add("llh_grad_ms_vs_adjoint", med["pe_grad"] * 1e3, med["am_adj"] * 1e3, "ms", "amici adjoint")
    add("batch256_evals_per_s", pe_tp, am_tp, "1/s", "amici loop")
    add("compile_s", pe_compile, amici_compile, "s")
    jax.clear_caches()


def multistart(
    name: str,
    n_starts: int,
    rows: list[dict],
    workdir: Path,
    local: str = "fides",
    methods: tuple[str, ...] = ("multistart",),
) -> None:
    """pyPESTO + fides against each pe_bench method, n_starts starts each, one objective.

    Every pe_bench method gets the same number of starts (swarms for pso) with its own
    default evaluation budget; multistart and cvae refine with ``local``. Rows are named
    ``<method>_wall_s``, ``<method>_best_nllh``, ``<method>_converged``,
    ``<method>_s_per_converged`` (pe_bench column: that method; peer column: pyPESTO).
    """
    asd, petab, pypesto, PetabImporter = _peers()
    import pypesto.optimize as optimize
    import pypesto.startpoint as startpoint

    from pe_bench import resolve
    from pe_bench.methods import Budget
    from pe_bench.objective import Objective
    from pe_bench.results import load_results
    from pe_bench.runner import make_method, run_method
    from pe_bench.simulate import SolverOptions

    options = SolverOptions()
    folder = SHARED / name
    problem, _ = amici_objective(name, next(folder.glob("*.yaml")), workdir, options)
    set_sensi(problem, "forward")
    problem.startpoint_method = startpoint.LatinHypercubeStartpoints()
    t0 = time.perf_counter()
    res = optimize.minimize(
        problem,
        optimizer=optimize.FidesOptimizer(verbose=0),
        n_starts=n_starts,
        progress_bar=False,
        history_options=None,
    )
    peer_wall = time.perf_counter() - t0
    peer_f = np.array([r.fval for r in res.optimize_result.list], dtype=float)

    # Both sides start compiled: AMICI's model was imported and built above, pe_bench's
    # objective is compiled here once and shared by every method (the seconds are reported
    # as multistart_compile_s; batched and vmapped entry points compile on first use, inside
    # the method's wall time).
    pb = resolve(str(folder))
    objective = Objective(pb, options)
    t0 = time.perf_counter()
    if local == "fides" and objective.options.sensitivity == "forward":
        objective.value_grad_fim(pb.x_nominal)
    else:
        objective.value_and_grad(pb.x_nominal)
    pe_compile = time.perf_counter() - t0
    pe: dict[str, tuple[np.ndarray, float]] = {}
    for method in methods:
        opts = {"local": local} if method in ("multistart", "cvae") else {}
        out = Path(tempfile.mkdtemp(prefix=f"peers_{method}_"))
        t0 = time.perf_counter()
        run_method(pb, make_method(method, opts), Budget(n_starts=n_starts), 0, out, objective=objective)
        wall = time.perf_counter() - t0
        pe[method] = (load_results(out)[0]["nllh_final"].to_numpy(dtype=float), wall)
        shutil.rmtree(out, ignore_errors=True)

    found = [np.nanmin(f) for f, _ in pe.values()]
    best = min(np.nanmin(peer_f), *found, -reference_llh().get(name, np.inf))
    runs = {m: (f, wall) for m, (f, wall) in pe.items()} | {"pypesto+fides": (peer_f, peer_wall)}
    converged = {tool: int(np.sum(f <= best + 0.1)) for tool, (f, _) in runs.items()}
    for tool, (f, wall) in runs.items():
        how = f" ({local})" if tool in ("multistart", "cvae") else ""
        print(
            f"{name} {tool}{how}: {wall:.1f} s, best {np.nanmin(f):.4f}, "
            f"{converged[tool]}/{len(f)} within 0.1 of {best:.4f}",
            flush=True,
        )
    peer_conv = converged["pypesto+fides"]
    peer_spc = peer_wall / peer_conv if peer_conv else np.inf
    metrics = []
    for method, (f, wall) in pe.items():
        conv = converged[method]
        metrics += [
            (f"{method}_wall_s", wall, peer_wall, "s"),
            (f"{method}_best_nllh", float(np.nanmin(f)), float(np.nanmin(peer_f)), "nllh"),
            (f"{method}_converged", conv, peer_conv, "starts"),
            (f"{method}_s_per_converged", wall / conv if conv else np.inf, peer_spc, "s"),
        ]
    metrics.append(("multistart_compile_s", pe_compile, np.nan, "s"))
    for metric, pe_value, peer, unit in metrics:
        rows.append(
            {
                "problem": name,
                "metric": metric,
                "pe_bench": float(pe_value),
                "peer": float(peer),
                "peer_name": "pypesto+fides",
                "ratio": float(pe_value) / float(peer) if peer and np.isfinite(peer) else np.nan,
                "unit": unit,
                "llh_agree": True,
            }
        )


def main() -> None:
    import logging

    from pe_bench.runtime import configure_jax

    # AMICI logs a warning per failed integration (thousands in a batch of perturbed
    # vectors); the comparison counts results, not log lines.
    for name in ("amici", "pypesto", "fides"):
        logging.getLogger(name).setLevel(logging.ERROR)

    os.environ.setdefault("PE_BENCH_JAX_CACHE", "")  # compile times are part of the comparison
    # AMICI's model build calls the swig and cmake that pip put beside this interpreter.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    configure_jax()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--problems", default="", help="comma-separated (default: every shared problem; 'none': skip)"
    )
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--multistart", default="Boehm_JProteomeRes2014", help="comma-separated, '' for none")
    ap.add_argument("--starts", type=int, default=20)
    ap.add_argument(
        "--methods",
        default="multistart,cvae,pso,adam",
        help="pe_bench methods in the multi-start comparison (comma-separated)",
    )
    ap.add_argument(
        "--local", default="fides", help="pe_bench multistart's local optimiser (fides, L-BFGS-B, ...)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "peers.parquet")
    args = ap.parse_args()
    names = [p for p in args.problems.split(",") if p] or sorted(
        p.name for p in SHARED.iterdir() if p.is_dir() and any(p.glob("*.yaml"))
    )
    names = [] if names == ["none"] else names
    workdir = Path(tempfile.mkdtemp(prefix="amici_models_"))
    rows: list[dict] = []
    for name in names:
        try:
            compare_problem(name, args.reps, args.batch, workdir, rows)
        except Exception as exc:  # a peer that cannot import a problem is reported, not fatal
            print(f"{name}: skipped: {type(exc).__name__}: {exc}", flush=True)
    methods = tuple(m for m in args.methods.split(",") if m)
    for name in [p for p in args.multistart.split(",") if p]:
        try:
            multistart(name, args.starts, rows, workdir, args.local, methods)
        except Exception as exc:
            print(f"{name} multistart: skipped: {type(exc).__name__}: {exc}", flush=True)
    if not rows:
        sys.exit("nothing was compared")
    df = pd.DataFrame(rows)
    df["date"] = time.strftime("%Y-%m-%d")
    df["machine"] = f"{os.cpu_count()} cores {platform.machine()}"
    if args.out.exists():  # keep the rows of earlier runs that this one did not measure again
        old = pd.read_parquet(args.out)
        fresh = set(zip(df["problem"], df["metric"], strict=True))
        keep = [(p, m) not in fresh for p, m in zip(old["problem"], old["metric"], strict=True)]
        df = pd.concat([old[keep], df], ignore_index=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".part")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, args.out)
    wide = df.pivot_table(index="problem", columns="metric", values="ratio")
    print("\nratios pe_bench / peer (time: < 1 = pe_bench faster; throughput: > 1 = pe_bench faster)")
    print(wide.to_markdown(floatfmt=".3g"))
    print("\nabsolute figures")
    cols = ["problem", "metric", "pe_bench", "peer", "peer_name", "unit"]
    print(df[cols].to_markdown(index=False, floatfmt=".4g"))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
