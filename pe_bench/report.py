"""Library side of the CLI's problem commands: pick parameters, evaluate, simulate, summarise.

Everything here returns plain data (dicts, DataFrames); the CLI only prints it.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import PeBenchError, ProblemSpecError
from .files import temp_file
from .options import STATUS_NAMES, SolverOptions
from .scales import from_scale, to_scale

if TYPE_CHECKING:  # the heavy imports (jax, diffrax, petab, pandas) happen where needed
    import pandas as pd

    from .problems.base import Problem


def parameters_from_spec(problem: Problem, spec: str) -> np.ndarray:
    """The estimated-parameter vector ``x`` (estimation scale) that ``spec`` names.

    Args:
        problem: the problem.
        spec: ``nominal`` (the parameter table's nominalValue), ``true`` (the problem's
            known true parameters) or a TSV file with columns ``parameterId`` and
            ``value`` (linear scale, like nominalValue); parameters it does not list
            keep their nominal values.

    Raises:
        ProblemSpecError: unknown spec, missing file, bad columns, unknown ids, NaN.
    """
    if spec == "nominal":
        return problem.x_nominal
    if spec == "true":
        if problem.x_true is None:
            raise ProblemSpecError(f"problem '{problem.name}' has no true parameters; use nominal or a file")
        return problem.x_true
    path = Path(spec)
    if not path.is_file():
        raise ProblemSpecError(f"{spec}: not 'nominal', 'true' or an existing parameter TSV file")
    import pandas as pd

    try:
        df = pd.read_csv(path, sep="\t", dtype={"parameterId": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ProblemSpecError(f"{path}: not a readable TSV file: {' '.join(str(exc).split())}") from None
    for col in ("parameterId", "value"):
        if col not in df.columns:
            raise ProblemSpecError(f"{path}: required column '{col}' is missing")
    values = dict(zip(problem.x_ids, from_scale(problem.x_nominal, problem.x_scale), strict=True))
    scale_of = dict(zip(problem.x_ids, problem.x_scale, strict=True))
    numbers = pd.to_numeric(df["value"], errors="coerce")
    for row, (pid, raw, v) in enumerate(zip(df["parameterId"], df["value"], numbers, strict=True)):
        if pid not in values:
            raise ProblemSpecError(f"{path}: parameter '{pid}' is not estimated in problem '{problem.name}'")
        if not math.isfinite(float(v)):
            raise ProblemSpecError(f"{path}: row {row + 1}: value '{raw}' of '{pid}' is not a number")
        if scale_of[pid] != "lin" and v <= 0:
            raise ProblemSpecError(
                f"{path}: row {row + 1}: parameter '{pid}' is estimated on {scale_of[pid]} scale; "
                f"its value {v:g} must be > 0 (values are given on linear scale)"
            )
        values[pid] = float(v)
    return to_scale(np.array([values[i] for i in problem.x_ids]), problem.x_scale)


def _problem_warnings(problem) -> list[str]:
    from .aot import problem_warnings

    return problem_warnings(problem)


def _run(problem, fn, x, grad: bool) -> dict:
    """Compile ``fn`` at ``x`` (timed apart), call it once (timed) and report.

    Returns:
        A dict with ``problem``, ``parameter_ids``, ``x``, ``llh``, ``nllh``, ``grad``
        (of nllh w.r.t. x, or None), ``status``, ``wall_time_s``, ``compile_time_s``.
    """
    import jax
    import jax.numpy as jnp

    xj = jnp.asarray(x, dtype=jnp.float64)
    t0 = time.perf_counter()
    compiled = fn.lower(xj).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(xj))
    wall = time.perf_counter() - t0
    value, g, status = out if grad else (out[0], None, out[1])
    value = float(value)
    return {
        "problem": problem.name,
        "parameter_ids": problem.x_ids,
        "parameter_scale": list(problem.x_scale),
        "x": [float(v) for v in x],
        "llh": -value,
        "nllh": value,
        "grad": None if g is None else [float(v) for v in np.asarray(g)],
        "status": STATUS_NAMES[int(status)],
        "wall_time_s": wall,
        "compile_time_s": compile_s,
        "priors": False,
        "negative_log_prior": None,
        "warnings": list(getattr(problem, "warnings", ())) or _problem_warnings(problem),
    }


def evaluate_source(source: str, spec: str = "nominal", grad: bool = False, priors: bool = False) -> dict:
    """Evaluate the objective once at ``spec`` for a problem named as on the command line.

    Compile time is measured apart from the evaluation (see :func:`_run` for the dict).

    The first call loads the problem, traces and compiles the objective, and stores it
    (:mod:`pe_bench.aot`); later processes with the same problem files, pe_bench sources
    and library versions load the stored objective instead, without loading the problem
    or tracing it again. ``result["cached"]`` says which happened.

    With ``priors`` (and a parameter table that has them) the objective is the negative
    log-posterior: ``result["nllh"]`` and ``"llh"`` stay the likelihood's, ``"objective"``
    and ``"grad"`` are the posterior's, ``"negative_log_prior"`` the difference.

    Raises:
        PeBenchError: as :func:`~pe_bench.problems.registry.resolve` and
            :func:`parameters_from_spec`; a problem without measurements.
    """
    from . import aot

    options = SolverOptions()
    # With priors the problem itself is needed (the stored objective holds no prior table).
    key = None if priors else aot.cache_key(source, options, "value_and_grad" if grad else "value")
    hit = aot.load(key)
    if hit is not None:
        import jax

        header, exported = hit
        result = _run(header, jax.jit(exported.call), parameters_from_spec(header, spec), grad)
        return result | {"cached": True, "objective": result["nllh"]}
    from .objective import Objective
    from .problems.registry import resolve

    problem = resolve(source)
    if not problem.has_data:
        raise PeBenchError(f"problem '{source}' has no measurements: use 'pebench simulate'")
    x = parameters_from_spec(problem, spec)
    with_priors = priors and problem.priors is not None
    objective = Objective(problem, options, priors=with_priors)
    fn = objective._value_and_grad if grad else objective._value
    # Run the exported form itself, so that the XLA executable the persistent compilation
    # cache keeps is the one a later process will ask for.
    exported = aot.export(fn, x) if key is not None else None
    if exported is not None:
        import jax

        fn = jax.jit(exported.call)
    result = _run(problem, fn, x, grad)
    aot.store(key, problem, exported)
    result |= {"cached": False, "objective": result["nllh"]}
    if with_priors:
        import jax.numpy as jnp

        xj = jnp.asarray(x, dtype=jnp.float64)
        nlp = float(problem.priors.negative_log_prior(xj, objective.simulator.x_linear(xj)))
        result |= {"priors": True, "negative_log_prior": nlp, "nllh": result["nllh"] - nlp}
        result["llh"] = -result["nllh"]
    return result


def simulation_table(problem: Problem, x: np.ndarray, options: SolverOptions | None = None) -> pd.DataFrame:
    """Observables (at the measurements) and states (at the output times), long format.

    Columns: ``kind`` (observable/state), ``id``, ``preequilibrationConditionId``,
    ``simulationConditionId``, ``time``, ``simulation``, ``measurement`` and ``sigma``
    (observables only; NaN for states).

    Raises:
        PeBenchError: the integration failed.
    """
    import jax
    import jax.numpy as jnp
    import pandas as pd

    from .simulate import make_simulator

    simulator = make_simulator(problem, options)
    out = jax.jit(simulator)(jnp.asarray(x, dtype=jnp.float64))
    if not bool(out["ok"]):
        raise PeBenchError(f"problem '{problem.name}': integration failed at these parameters")
    cond = problem.condition_ids
    pre_ids = ["" if p < 0 else cond[p] for p in problem.sim_preeq]
    sim_ids = [cond[c] for c in problem.sim_cond]
    frames = []
    if problem.has_outputs:
        frames.append(
            pd.DataFrame(
                {
                    "kind": "observable",
                    "id": [problem.observables[k].id for k in problem.meas_obs],
                    "preequilibrationConditionId": [pre_ids[s] for s in problem.meas_sim],
                    "simulationConditionId": [sim_ids[s] for s in problem.meas_sim],
                    "time": problem.meas_t,
                    "simulation": np.asarray(out["y"]),
                    "measurement": problem.meas_y,
                    "sigma": np.asarray(out["sigma"]),
                }
            )
        )
    states = np.asarray(out["states"])
    for s in range(len(sim_ids)):
        ts, n_t = problem.sim_ts[s], len(np.unique(problem.sim_ts[s]))
        rows = np.arange(n_t)
        if problem.sim_steady is not None and problem.sim_steady[s]:
            # The steady state (time = inf) sits in the slot after the padded times.
            ts, rows = np.append(ts[:n_t], np.inf), np.append(rows, problem.sim_ts.shape[1])
            n_t += 1
        for j, sid in enumerate(problem.model.state_ids):
            frames.append(
                pd.DataFrame(
                    {
                        "kind": "state",
                        "id": sid,
                        "preequilibrationConditionId": pre_ids[s],
                        "simulationConditionId": sim_ids[s],
                        "time": ts[:n_t],
                        "simulation": states[s, rows, j],
                        "measurement": np.nan,
                        "sigma": np.nan,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` as Parquet or CSV (by suffix), atomically: a temp file renamed into place.

    Raises:
        ProblemSpecError: unknown suffix, missing folder, or the path is a directory.
    """
    path = Path(path)
    if path.suffix not in (".parquet", ".csv"):
        raise ProblemSpecError(f"{path}: output must end in .parquet or .csv")
    if path.is_dir():
        raise ProblemSpecError(f"{path}: is a directory")
    if not path.parent.is_dir():
        raise ProblemSpecError(f"{path}: folder {path.parent} does not exist")
    tmp = temp_file(path.parent, suffix=path.suffix + ".part")
    try:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def summary(problem: Problem) -> dict:
    """Sizes, noise models and caveats of a problem (for ``pebench info``)."""
    m = problem.model
    from .hierarchical import find_inner

    noise = sorted({f"{o.noise_distribution}/{o.transformation}" for o in problem.observables})
    inner = find_inner(problem)
    return {
        "problem": problem.name,
        "source": problem.source,
        "model_id": m.model_id,
        "species": len(m.species_ids),
        "states": len(m.state_ids),
        "reactions": m.n_reactions,
        "model_parameters": len(m.parameter_ids),
        "parameters_estimated": len(problem.x_ids),
        "parameters_in_table": len(problem.theta_ids),
        "conditions": len(problem.condition_ids),
        "simulations": len(problem.sim_cond),
        "preequilibration": bool((problem.sim_preeq >= 0).any()),
        "steady_state_measurements": int(np.isinf(problem.meas_t).sum()),
        "priors": problem.priors.n if problem.priors is not None else 0,
        "events": len(m.events),
        "discontinuities": _n_switches(m),
        "observables": len(problem.observables),
        "measurements": len(problem.meas_y),
        "noise_models": noise,
        "true_parameters": problem.true_parameters is not None,
        "hierarchical": inner.summary(),
        "notes": problem.notes + [f"--hierarchical: {n}" for n in inner.notes],
    }


def _n_switches(model) -> int:
    """Discontinuities of the right-hand side the solver locates (piecewise, floor, ...)."""
    from .model.codegen import extract_switches
    from .model.mathml import TIME

    return len(extract_switches(model.rhs, {TIME, *model.state_symbols})[1])
