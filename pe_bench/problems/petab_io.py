"""PEtab v1 problems, read with the ``petab`` library, into a :class:`Problem`."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import petab.v1 as petab
import sympy as sp
from petab.v1.math import sympify_petab

from ..errors import ProblemSpecError, UnsupportedFeatureError
from ..model.mathml import TIME
from ..model.sbml import SymbolicModel, load_sbml
from ..priors import parse_priors
from .base import NOISE_DISTRIBUTIONS, SCALES, TRANSFORMATIONS, Observable, Problem

_TABLES = {
    "condition_files": (petab.get_condition_df, [petab.CONDITION_ID]),
    "measurement_files": (petab.get_measurement_df, petab.MEASUREMENT_DF_REQUIRED_COLS),
    "observable_files": (
        petab.get_observable_df,
        [petab.OBSERVABLE_ID, petab.OBSERVABLE_FORMULA, petab.NOISE_FORMULA],
    ),
}
_PARAMETER_REQUIRED = [
    petab.PARAMETER_ID,
    petab.PARAMETER_SCALE,
    petab.LOWER_BOUND,
    petab.UPPER_BOUND,
    petab.NOMINAL_VALUE,
    petab.ESTIMATE,
]


def _require_columns(df: pd.DataFrame, required: list[str], file: str) -> None:
    present = set(df.columns) | ({df.index.name} if df.index.name else set())
    for col in required:
        if col not in present:
            raise ProblemSpecError(f"{file}: required column '{col}' is missing")


def _read_table(reader, files: list[str], base: Path, required: list[str]) -> pd.DataFrame:
    paths = [base / f for f in files]
    for p in paths:
        if not p.is_file():
            raise ProblemSpecError(f"{p}: PEtab table not found")
    frames = []
    for p in paths:
        raw = pd.read_csv(p, sep="\t", nrows=0)
        _require_columns(raw, required, str(p))
        try:
            frames.append(reader(str(p)))
        except (KeyError, ValueError, AssertionError) as exc:
            raise ProblemSpecError(f"{p}: not a valid PEtab table: {exc}") from exc
    return pd.concat(frames) if len(frames) > 1 else frames[0]


def _is_number(value) -> bool:
    if isinstance(value, int | float | np.integer | np.floating):
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def load_petab(yaml_path: str | os.PathLike, name: str | None = None) -> Problem:
    """Load a PEtab v1 problem from its YAML file.

    Args:
        yaml_path: path to the PEtab YAML.
        name: the problem's short name (default: the YAML file's stem).

    Raises:
        ProblemSpecError: missing files or columns, inconsistent tables, bad bounds,
            NaN data, unknown symbols in formulas.
        ModelImportError: the SBML file is missing or malformed.
        UnsupportedFeatureError: composite problems, several models, SBML features
            pe_bench does not simulate.
    """
    yaml_path = Path(yaml_path)
    if not yaml_path.is_file():
        raise ProblemSpecError(f"{yaml_path}: PEtab YAML not found")
    try:
        spec = petab.yaml.load_yaml(str(yaml_path))
    except Exception as exc:  # yaml.YAMLError and friends: all mean "not readable YAML"
        raise ProblemSpecError(f"{yaml_path}: not readable as YAML: {exc}") from exc
    if not isinstance(spec, dict) or "problems" not in spec or "parameter_file" not in spec:
        raise ProblemSpecError(f"{yaml_path}: not a PEtab v1 YAML (needs 'parameter_file' and 'problems')")
    if str(spec.get("format_version", "1")).split(".")[0] != "1":
        raise UnsupportedFeatureError(
            f"not supported yet: PEtab format_version {spec.get('format_version')} in {yaml_path}"
        )
    if len(spec["problems"]) != 1:
        raise UnsupportedFeatureError(f"not supported yet: composite PEtab problem in {yaml_path}")
    sub = spec["problems"][0]
    base = yaml_path.parent
    sbml_files = sub.get("sbml_files", [])
    if len(sbml_files) != 1:
        raise UnsupportedFeatureError(
            f"not supported yet: {len(sbml_files)} SBML files in {yaml_path} (need exactly one)"
        )
    tables = {}
    for key, (reader, required) in _TABLES.items():
        files = sub.get(key) or []
        if not files:
            raise ProblemSpecError(f"{yaml_path}: '{key}' lists no file")
        tables[key] = _read_table(reader, files, base, list(required))
    param_files = spec["parameter_file"]
    param_files = [param_files] if isinstance(param_files, str) else list(param_files)
    parameter_df = _read_table(petab.get_parameter_df, param_files, base, _PARAMETER_REQUIRED)
    files = {k: ", ".join(str(base / f) for f in sub.get(k, [])) for k in _TABLES}
    files["parameter_file"] = ", ".join(str(base / f) for f in param_files)

    condition_df = tables["condition_files"]
    measurement_df = tables["measurement_files"]
    observable_df = tables["observable_files"]
    keep = frozenset(parameter_df.index) | frozenset(condition_df.columns)
    model = load_sbml(base / sbml_files[0], keep_parameters=keep)
    return build_problem(
        name or yaml_path.stem,
        str(yaml_path),
        model,
        condition_df,
        measurement_df,
        observable_df,
        parameter_df,
        files,
    )


def _parameter_arrays(parameter_df: pd.DataFrame, file: str):
    ids = [str(i) for i in parameter_df.index]
    scales, lower, upper, nominal, estimated = [], [], [], [], []
    for pid, row in parameter_df.iterrows():
        scale = row[petab.PARAMETER_SCALE]
        if scale not in SCALES:
            raise ProblemSpecError(
                f"{file}: parameter '{pid}': parameterScale '{scale}' is not lin, log or log10"
            )
        est = row[petab.ESTIMATE]
        if est not in (0, 1) and str(est) not in ("0", "1"):
            raise ProblemSpecError(f"{file}: parameter '{pid}': estimate must be 0 or 1, not '{est}'")
        est = bool(int(est))
        lo, hi, nom = (float(row[c]) for c in (petab.LOWER_BOUND, petab.UPPER_BOUND, petab.NOMINAL_VALUE))
        if est:
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ProblemSpecError(f"{file}: parameter '{pid}': estimated parameters need finite bounds")
            if lo > hi:
                raise ProblemSpecError(f"{file}: parameter '{pid}': lowerBound {lo:g} > upperBound {hi:g}")
            if scale != "lin" and lo <= 0:
                raise ProblemSpecError(
                    f"{file}: parameter '{pid}': lowerBound {lo:g} must be > 0 on {scale} scale"
                )
        elif not math.isfinite(nom):
            raise ProblemSpecError(f"{file}: parameter '{pid}': fixed parameter needs a nominalValue")
        scales.append(scale)
        lower.append(lo)
        upper.append(hi)
        nominal.append(nom)
        estimated.append(est)
    return ids, scales, np.array(lower), np.array(upper), np.array(nominal), np.array(estimated, dtype=bool)


def _resolve_formula(
    text: str,
    where: str,
    model: SymbolicModel,
    q_syms: dict[str, sp.Symbol],
    placeholders: dict[str, sp.Symbol],
) -> sp.Expr:
    """Parse a PEtab math string and map every symbol to a model or problem symbol."""
    # petab's parser recurses once per operand: a sum over hundreds of species needs more
    # than Python's default recursion limit.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20 * len(text) + 1000))
    try:
        expr = sympify_petab(text)
    except Exception as exc:  # petab raises plain ValueError / antlr errors
        raise ProblemSpecError(f"{where}: cannot parse '{text[:200]}': {exc}") from exc
    finally:
        sys.setrecursionlimit(limit)
    if isinstance(expr, bool | int | float):
        expr = sp.Float(expr)
    subs = {}
    for s in expr.free_symbols:
        n = s.name
        if n in placeholders:
            subs[s] = placeholders[n]
        elif n in model.expressions:
            subs[s] = model.expressions[n]
        elif n in q_syms:
            subs[s] = q_syms[n]
        elif n in ("time", "t"):
            subs[s] = TIME
        else:
            raise ProblemSpecError(f"{where}: unknown symbol '{n}' in '{text}'")
    return sp.sympify(expr).xreplace(subs)


def _overrides(value, n_expected: int, theta_pos: dict[str, int], where: str):
    """Split an observableParameters/noiseParameters cell into (index, const) lists."""
    if n_expected == 0:
        return [], []
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        raise ProblemSpecError(f"{where}: {n_expected} override(s) needed, none given")
    parts = petab.split_parameter_replacement_list(value)
    if len(parts) != n_expected:
        raise ProblemSpecError(f"{where}: {n_expected} override(s) needed, {len(parts)} given")
    idx, const = [], []
    for p in parts:
        if _is_number(p):
            idx.append(-1)
            const.append(float(p))
        elif p in theta_pos:
            idx.append(theta_pos[p])
            const.append(0.0)
        else:
            raise ProblemSpecError(f"{where}: override '{p}' is not in the parameter table")
    return idx, const


def _check_sigma_override(obs, idx: list[int], const: list[float], where: str, sigma_params: dict) -> None:
    """A data row whose noise placeholder is the whole noiseFormula sets sigma itself."""
    for k, sym in enumerate(obs.noise_placeholders):
        if obs.noise_formula != sym:
            continue
        if idx[k] < 0 and not const[k] > 0:
            raise ProblemSpecError(f"{where} noiseParameters: sigma {const[k]:g} must be > 0")
        if idx[k] >= 0:
            sigma_params.setdefault(idx[k], obs.id)


def _check_sigma_parameter(pid, oid, scale, lo, hi, nominal, estimated, pfile) -> None:
    """A parameter that is a sigma must be > 0: its value if fixed, its bounds on lin scale."""
    what = f"{pfile}: parameter '{pid}' (the sigma of observable '{oid}')"
    if not estimated and not nominal > 0:
        raise ProblemSpecError(f"{what}: nominalValue {nominal:g} must be > 0")
    if estimated and scale == "lin" and not lo > 0:
        raise ProblemSpecError(f"{what}: lowerBound {lo:g} on lin scale allows sigma <= 0; make it > 0")


def _nominal_outside_bounds(ids, lower, upper, nominal, estimated, pfile) -> list[str]:
    """Warnings for estimated parameters whose nominalValue lies outside their bounds."""
    out = []
    for pid, lo, hi, nom, est in zip(ids, lower, upper, nominal, estimated, strict=True):
        if est and math.isfinite(nom) and not lo <= nom <= hi:
            where = f"warning: {pfile}: parameter '{pid}'"
            out.append(f"{where}: nominalValue {nom:g} is outside its bounds [{lo:g}, {hi:g}]")
    return out


def build_problem(
    name: str,
    source: str,
    model: SymbolicModel,
    condition_df: pd.DataFrame,
    measurement_df: pd.DataFrame,
    observable_df: pd.DataFrame,
    parameter_df: pd.DataFrame,
    files: dict[str, str],
    true_parameters: dict[str, float] | None = None,
) -> Problem:
    """Combine a symbolic model and PEtab tables into a :class:`Problem`."""
    pfile, cfile, mfile, ofile = (
        files["parameter_file"],
        files["condition_files"],
        files["measurement_files"],
        files["observable_files"],
    )
    ids, scales, lower, upper, nominal, estimated = _parameter_arrays(parameter_df, pfile)
    theta_pos = {pid: i for i, pid in enumerate(ids)}
    has_priors = bool(
        petab.OBJECTIVE_PRIOR_TYPE in parameter_df.columns
        and parameter_df[petab.OBJECTIVE_PRIOR_TYPE].notna().any()
    )
    notes = []
    priors = parse_priors(parameter_df, ids, estimated, scales, pfile)
    if priors is not None:
        notes.append(
            f"{priors.n} objective priors in the parameter table: added to the objective with --priors "
            "(off by default, so that llh values stay comparable with published ones)"
        )

    # Measurements: checks first.
    if len(measurement_df) == 0:
        raise ProblemSpecError(f"{mfile}: no measurements (a PEtab problem needs at least one data row)")
    for col in (petab.MEASUREMENT, petab.TIME):
        vals = pd.to_numeric(measurement_df[col], errors="coerce")
        bad = np.flatnonzero(~np.isfinite(vals.to_numpy(dtype=float)) & ~np.isinf(vals.to_numpy(dtype=float)))
        if len(bad):
            raise ProblemSpecError(f"{mfile}: data row {bad[0] + 1}: {col} is NaN or not a number")
    times = measurement_df[petab.TIME].astype(float)
    if (np.isinf(times) & (times < 0)).any():
        raise ProblemSpecError(f"{mfile}: measurement time -inf (steady states are time = inf)")
    if (times < 0).any():
        raise ProblemSpecError(f"{mfile}: negative measurement time")
    obs_ids = list(observable_df.index)
    unknown = sorted(set(measurement_df[petab.OBSERVABLE_ID]) - set(obs_ids))
    if unknown:
        raise ProblemSpecError(
            f"observable '{unknown[0]}' in {mfile} is not defined in {ofile}; add it or drop those rows"
        )
    cond_ids_known = set(condition_df.index)

    # Conditions and simulations.
    preeq_col = petab.PREEQUILIBRATION_CONDITION_ID

    def _preeq(row) -> str:
        v = row.get(preeq_col, "") if preeq_col in measurement_df.columns else ""
        return "" if (v is None or (isinstance(v, float) and math.isnan(v))) else str(v)

    sims: list[tuple[str, str]] = []
    sim_of_row = []
    for _, row in measurement_df.iterrows():
        key = (_preeq(row), str(row[petab.SIMULATION_CONDITION_ID]))
        for cid in key:
            if cid and cid not in cond_ids_known:
                raise ProblemSpecError(f"condition '{cid}' in {mfile} is not defined in {cfile}")
        if key not in sims:
            sims.append(key)
        sim_of_row.append(sims.index(key))
    condition_ids = []
    for pre, cur in sims:
        for cid in (pre, cur):
            if cid and cid not in condition_ids:
                condition_ids.append(cid)

    # Condition -> model parameters and species overrides.
    p_ids = model.parameter_ids
    p_pos = {pid: j for j, pid in enumerate(p_ids)}
    species = model.state_ids
    x_pos = {sid: j for j, sid in enumerate(species)}
    override_cols = [c for c in condition_df.columns if c != petab.CONDITION_NAME]
    for col in override_cols:
        if col not in p_pos and col not in x_pos:
            raise ProblemSpecError(
                f"{cfile}: column '{col}' is not a parameter, species or compartment of the model"
            )
    n_cond = len(condition_ids)
    cond_p_index = np.full((n_cond, len(p_ids)), -1, dtype=np.int32)
    cond_p_const = np.zeros((n_cond, len(p_ids)))
    cond_x_mask = np.zeros((n_cond, len(species)), dtype=bool)
    cond_x_index = np.full((n_cond, len(species)), -1, dtype=np.int32)
    cond_x_const = np.zeros((n_cond, len(species)))
    for j, pid in enumerate(p_ids):
        if pid in theta_pos:
            cond_p_index[:, j] = theta_pos[pid]
        else:
            cond_p_const[:, j] = model.parameter_values[pid]
    for c, cid in enumerate(condition_ids):
        row = condition_df.loc[cid]
        for col in override_cols:
            v = row[col]
            if isinstance(v, float) and math.isnan(v):
                continue
            if _is_number(v):
                idx, const = -1, float(v)
            elif str(v) in theta_pos:
                idx, const = theta_pos[str(v)], 0.0
            else:
                raise ProblemSpecError(
                    f"{cfile}: condition '{cid}', column '{col}': '{v}' is neither a number "
                    f"nor a parameter of {pfile}"
                )
            if col in p_pos:
                cond_p_index[c, p_pos[col]] = idx
                cond_p_const[c, p_pos[col]] = const
            elif col in model.amount_states:
                raise UnsupportedFeatureError(
                    f"not supported yet: {cfile} sets species '{col}', whose compartment changes size "
                    f"(simulated as an amount), in {model.source}"
                )
            else:
                cond_x_mask[c, x_pos[col]] = True
                cond_x_index[c, x_pos[col]] = idx
                cond_x_const[c, x_pos[col]] = const
    for j, pid in enumerate(p_ids):
        unset = (cond_p_index[:, j] < 0) & ~np.isfinite(cond_p_const[:, j])
        if unset.any():
            raise ProblemSpecError(
                f"{model.source}: parameter '{pid}' has no value and is set neither in {cfile} nor in {pfile}"
            )

    # Observables.
    q_syms = {pid: sp.Symbol(f"__q_{pid}", real=True) for pid in ids}
    observables = []
    n_op, n_np = {}, {}
    for oid, row in observable_df.iterrows():
        trans = row.get(petab.OBSERVABLE_TRANSFORMATION, "lin")
        trans = "lin" if (not isinstance(trans, str) or trans == "") else trans
        dist = row.get(petab.NOISE_DISTRIBUTION, "normal")
        dist = "normal" if (not isinstance(dist, str) or dist == "") else dist
        if trans not in TRANSFORMATIONS:
            raise ProblemSpecError(f"{ofile}: observable '{oid}': unknown observableTransformation '{trans}'")
        if dist not in NOISE_DISTRIBUTIONS:
            raise ProblemSpecError(f"{ofile}: observable '{oid}': unknown noiseDistribution '{dist}'")
        ph_obs = petab.get_formula_placeholders(str(row[petab.OBSERVABLE_FORMULA]), oid, "observable")
        ph_noise = petab.get_formula_placeholders(str(row[petab.NOISE_FORMULA]), oid, "noise")
        op_syms = [sp.Symbol(f"__op{k}", real=True) for k in range(len(ph_obs))]
        np_syms = [sp.Symbol(f"__np{k}", real=True) for k in range(len(ph_noise))]
        placeholders = dict(zip(ph_obs, op_syms, strict=True)) | dict(zip(ph_noise, np_syms, strict=True))
        formula = _resolve_formula(
            str(row[petab.OBSERVABLE_FORMULA]), f"{ofile}: observable '{oid}'", model, q_syms, placeholders
        )
        noise = _resolve_formula(
            str(row[petab.NOISE_FORMULA]), f"{ofile}: noiseFormula of '{oid}'", model, q_syms, placeholders
        )
        observables.append(Observable(oid, formula, noise, trans, dist, op_syms, np_syms))
        n_op[oid], n_np[oid] = len(op_syms), len(np_syms)

    # Parameters that are a sigma outright (noiseFormula = the parameter, or a placeholder
    # the data rows set to it): checked once their values and bounds are known.
    sigma_params: dict[int, str] = {}
    q_pos = {q_syms[pid]: j for j, pid in enumerate(ids)}
    for obs in observables:
        if obs.noise_formula in q_pos:
            sigma_params.setdefault(q_pos[obs.noise_formula], obs.id)
        elif obs.noise_formula.is_number and not float(obs.noise_formula) > 0:
            raise ProblemSpecError(
                f"{ofile}: noiseFormula of '{obs.id}': sigma {float(obs.noise_formula):g} must be > 0"
            )

    # Measurement arrays.
    n_m = len(measurement_df)
    k_op = max([*n_op.values(), 1])
    k_np = max([*n_np.values(), 1])
    meas_op_index = np.full((n_m, k_op), -1, dtype=np.int32)
    meas_op_const = np.zeros((n_m, k_op))
    meas_np_index = np.full((n_m, k_np), -1, dtype=np.int32)
    meas_np_const = np.zeros((n_m, k_np))
    obs_pos = {o: k for k, o in enumerate(obs_ids)}
    meas_obs = np.array([obs_pos[o] for o in measurement_df[petab.OBSERVABLE_ID]], dtype=np.int32)
    meas_y = measurement_df[petab.MEASUREMENT].astype(float).to_numpy()
    meas_t = measurement_df[petab.TIME].astype(float).to_numpy()
    meas_sim = np.array(sim_of_row, dtype=np.int32)
    for m, (_, row) in enumerate(measurement_df.iterrows()):
        oid = row[petab.OBSERVABLE_ID]
        where = f"{mfile}: data row {m + 1} ({oid})"
        idx, const = _overrides(
            row.get(petab.OBSERVABLE_PARAMETERS), n_op[oid], theta_pos, where + " observableParameters"
        )
        meas_op_index[m, : len(idx)] = idx
        meas_op_const[m, : len(idx)] = const
        idx, const = _overrides(
            row.get(petab.NOISE_PARAMETERS), n_np[oid], theta_pos, where + " noiseParameters"
        )
        meas_np_index[m, : len(idx)] = idx
        meas_np_const[m, : len(idx)] = const
        _check_sigma_override(observables[meas_obs[m]], idx, const, where, sigma_params)
        if observables[meas_obs[m]].transformation != "lin" and meas_y[m] <= 0:
            raise ProblemSpecError(
                f"{where}: measurement {meas_y[m]:g} must be > 0 for a "
                f"{observables[meas_obs[m]].transformation}-transformed observable"
            )

    for j, oid in sigma_params.items():
        _check_sigma_parameter(ids[j], oid, scales[j], lower[j], upper[j], nominal[j], estimated[j], pfile)
    notes += _nominal_outside_bounds(ids, lower, upper, nominal, estimated, pfile)

    # Finite output times per simulation, padded with the last time (a simulation with
    # only steady-state measurements gets the output time 0). Steady-state measurements
    # (time = inf) read the extra time slot n_t.
    finite = np.isfinite(meas_t)
    per_sim = [np.unique(meas_t[(meas_sim == s) & finite]) for s in range(len(sims))]
    per_sim = [t if len(t) else np.zeros(1) for t in per_sim]
    n_t = max(len(t) for t in per_sim)
    sim_ts = np.stack([np.pad(t, (0, n_t - len(t)), mode="edge") for t in per_sim])
    meas_tidx = np.array(
        [
            np.searchsorted(per_sim[s], t) if np.isfinite(t) else n_t
            for s, t in zip(meas_sim, meas_t, strict=True)
        ],
        dtype=np.int32,
    )
    sim_steady = np.array([bool(np.any(~finite[meas_sim == s])) for s in range(len(sims))])
    cpos = {cid: c for c, cid in enumerate(condition_ids)}
    return Problem(
        name=name,
        source=source,
        model=model,
        theta_ids=ids,
        theta_scale=scales,
        theta_lower=lower,
        theta_upper=upper,
        theta_nominal=nominal,
        theta_estimated=estimated,
        true_parameters=true_parameters,
        condition_ids=condition_ids,
        cond_p_index=cond_p_index,
        cond_p_const=cond_p_const,
        cond_x_mask=cond_x_mask,
        cond_x_index=cond_x_index,
        cond_x_const=cond_x_const,
        sim_preeq=np.array([cpos[p] if p else -1 for p, _ in sims], dtype=np.int32),
        sim_cond=np.array([cpos[c] for _, c in sims], dtype=np.int32),
        sim_ts=sim_ts,
        observables=observables,
        q_symbols=[q_syms[i] for i in ids],
        meas_sim=meas_sim,
        meas_tidx=meas_tidx,
        meas_obs=meas_obs,
        meas_y=meas_y,
        meas_t=meas_t,
        meas_op_index=meas_op_index,
        meas_op_const=meas_op_const,
        meas_np_index=meas_np_index,
        meas_np_const=meas_np_const,
        measurement_df=measurement_df,
        has_priors=has_priors,
        notes=notes,
        priors=priors,
        sim_steady=sim_steady if sim_steady.any() else None,
    )
