"""BioPreDyn-Bench problems B2 and B4 (Villaverde et al. 2015) written as PEtab v1.

The authors distribute each problem as an SBML model (dynamics and initial conditions
only) plus the AMIGO2 C implementation's problem file ``fullC_data.mat``: per
experiment the sampling times, the data, the observables (``y = state``), the initial
state and the weights ``Q``; and the estimated parameters with their bounds (and
``nominalpars.h`` with the nominal values). Their objective is the weighted least
squares of ``b*_fullC_template.c``::

    J(theta) = sum over experiments, observables, times of ((y_sim - y_data) * Q)^2

over the entries whose data and Q are finite and Q != 0. ``Q = 1 / error_data``
(checked when importing): the standard deviations of the measurements. So the PEtab
problem written here has normal noise with ``sigma = 1 / Q`` per measurement, and its
negative log-likelihood is ``J / 2 + sum log(sqrt(2 pi) sigma)``: the same minimisers,
and ``J = 2 (nllh - constant)``.

The C implementation names states ``x1..xn`` and parameters ``par1..parn`` where B4's
SBML has ``c_01..`` and ``p_001..``; they are matched by number (B2 uses the SBML ids
throughout). Estimated parameters are written on log10 scale (all bounds are positive).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ProblemNotFoundError, ProblemSpecError
from ..files import temp_folder

PROBLEMS = ("B2", "B4")
#: Built-in names that import the raw files on first use.
BUILTIN = {"biopredyn-b2": "B2", "biopredyn-b4": "B4"}


@dataclass
class RawProblem:
    """What the raw files say, in SBML ids."""

    name: str
    sbml: Path
    parameter_ids: list[str]
    nominal: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    measurements: pd.DataFrame  # observableId, experiment, time, measurement, sigma, Q
    observables: dict[str, str]  # observable id -> state id
    initial_states: list[dict[str, float]]  # per experiment: state id -> value


def _mat(path: Path):
    import scipy.io

    if not path.is_file():
        raise ProblemSpecError(f"{path}: BioPreDyn file not found")
    try:
        return scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except Exception as exc:  # scipy raises several kinds for a bad file
        raise ProblemSpecError(f"{path}: not a readable MATLAB file: {exc}") from None


def _nominal(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ProblemSpecError(f"{path}: BioPreDyn file not found")
    body = path.read_text().split("{", 1)[-1].split("}", 1)[0]
    return np.array([float(v) for v in body.replace("\n", "").split(",") if v.strip()])


def _per_experiment(value, n_exp: int) -> list:
    """A struct field that holds one entry per experiment (squeezed away when n_exp = 1)."""
    return [value] if n_exp == 1 else list(np.atleast_1d(value))


def read_raw(folder: Path, which: str) -> RawProblem:
    """Read problem ``which`` ("B2" or "B4") from ``folder/which``.

    Raises:
        ProblemSpecError: a missing or unreadable file, inconsistent sizes, weights that
            are not the inverse standard deviations, names the SBML does not define.
    """
    from ..model.sbml import load_sbml

    if which not in PROBLEMS:
        raise ProblemSpecError(f"unknown BioPreDyn problem '{which}' (one of {', '.join(PROBLEMS)})")
    base = Path(folder) / which
    if not base.is_dir():
        raise ProblemNotFoundError(f"{base}: no such folder (BioPreDyn raw files of {which})")
    sbml = base / f"{which.lower()}.xml"
    model = load_sbml(sbml, keep_parameters=frozenset())
    mat_path = base / "fullC_data.mat"
    mat = _mat(mat_path)
    priv, pe, mdl = mat["privstruct"], mat["inputs"].PEsol, mat["inputs"].model
    n_exp = int(priv.n_exp)
    state_names = [str(s).strip() for s in np.atleast_1d(mdl.st_names)]
    known = set(model.state_ids) | set(model.parameter_ids)

    def sbml_id(name: str, kind: str) -> str:
        if name in known:
            return name
        m = re.fullmatch(r"(x|par)(\d+)", name)
        if m:
            width, prefix = (2, "c_") if m.group(1) == "x" else (3, "p_")
            cand = f"{prefix}{int(m.group(2)):0{width}d}"
            if cand in known:
                return cand
        raise ProblemSpecError(f"{mat_path}: {kind} '{name}' is not defined in {sbml}")

    states = [sbml_id(s, "state") for s in state_names]
    par_ids = [sbml_id(str(s).strip(), "parameter") for s in np.atleast_1d(pe.id_global_theta)]
    lower = np.atleast_1d(pe.global_theta_min).astype(float)
    upper = np.atleast_1d(pe.global_theta_max).astype(float)
    nominal = _nominal(base / "nominalpars.h")
    if not (len(par_ids) == len(lower) == len(upper) == len(nominal)):
        raise ProblemSpecError(
            f"{mat_path}: {len(par_ids)} parameters but {len(nominal)} nominal values in nominalpars.h"
        )

    rows, observables, initial = [], {}, []
    n_s = _per_experiment(priv.n_s, n_exp)
    n_obs = _per_experiment(priv.n_obs, n_exp)
    fields = {
        k: _per_experiment(getattr(priv, k), n_exp)
        for k in ("t_s", "exp_data", "error_data", "Q", "obs", "exp_y0")
    }
    for e in range(n_exp):
        ns, no = int(n_s[e]), int(n_obs[e])
        times = np.atleast_1d(fields["t_s"][e]).astype(float)
        data = np.reshape(np.asarray(fields["exp_data"][e], float), (ns, no))
        sd = np.reshape(np.asarray(fields["error_data"][e], float), (ns, no))
        q = np.reshape(np.asarray(fields["Q"][e], float), (ns, no))
        use = np.isfinite(data) & np.isfinite(q) & (q != 0)
        if not np.allclose(q[use] * sd[use], 1.0, rtol=1e-9):
            raise ProblemSpecError(f"{mat_path}: experiment {e + 1}: weights Q are not 1 / error_data")
        for j, text in enumerate(np.atleast_1d(fields["obs"][e])):
            name, _, expr = str(text).partition("=")
            name, expr = name.strip(), expr.strip()
            state = sbml_id(expr, "observed state")
            observables.setdefault(name, state)
            if observables[name] != state:
                raise ProblemSpecError(f"{mat_path}: observable '{name}' observes two states")
            for k in np.flatnonzero(use[:, j]):
                rows.append((name, e, times[k], data[k, j], 1.0 / q[k, j], q[k, j]))
        y0 = np.atleast_1d(fields["exp_y0"][e]).astype(float)
        if len(y0) != len(states):
            raise ProblemSpecError(
                f"{mat_path}: experiment {e + 1}: {len(y0)} initial values for {len(states)} states"
            )
        initial.append(dict(zip(states, y0, strict=True)))
    measurements = pd.DataFrame(
        rows, columns=["observableId", "experiment", "time", "measurement", "sigma", "Q"]
    )
    return RawProblem(which, sbml, par_ids, nominal, lower, upper, measurements, observables, initial)


def weighted_least_squares(raw: RawProblem, simulated: np.ndarray) -> float:
    """The authors' objective J for simulated values on the rows of ``raw.measurements``."""
    r = (np.asarray(simulated) - raw.measurements["measurement"].to_numpy()) * raw.measurements[
        "Q"
    ].to_numpy()
    return float(np.sum(r**2))


def write_petab(folder: Path, which: str, out: Path) -> Path:
    """Write BioPreDyn problem ``which`` as a PEtab v1 problem in ``out``; returns its YAML.

    Files are written to a temporary folder beside ``out`` and moved into place at the
    end, so that an error leaves nothing half-written.
    """
    raw = read_raw(folder, which)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ProblemSpecError(f"{out}: exists and is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_folder(out.parent, prefix=f".{out.name}.")
    try:
        stem = f"biopredyn_{which}"
        shutil.copyfile(raw.sbml, tmp / f"model_{stem}.xml")
        # One condition per distinct initial state.
        distinct: list[dict[str, float]] = []
        cond_of = []
        for y0 in raw.initial_states:
            if y0 not in distinct:
                distinct.append(y0)
            cond_of.append(f"c{distinct.index(y0) + 1}")
        conditions = pd.DataFrame([{"conditionId": f"c{i + 1}", **y0} for i, y0 in enumerate(distinct)])
        conditions.to_csv(tmp / f"conditions_{stem}.tsv", sep="\t", index=False)
        obs = pd.DataFrame(
            {
                "observableId": list(raw.observables),
                "observableFormula": list(raw.observables.values()),
                "noiseFormula": [f"noiseParameter1_{o}" for o in raw.observables],
                "noiseDistribution": "normal",
                "observableTransformation": "lin",
            }
        )
        obs.to_csv(tmp / f"observables_{stem}.tsv", sep="\t", index=False)
        m = raw.measurements
        meas = pd.DataFrame(
            {
                "observableId": m["observableId"],
                "simulationConditionId": [cond_of[e] for e in m["experiment"]],
                "time": m["time"],
                "measurement": m["measurement"],
                "noiseParameters": [repr(float(s)) for s in m["sigma"]],
                "datasetId": [f"experiment{e + 1}" for e in m["experiment"]],
            }
        )
        meas.to_csv(tmp / f"measurements_{stem}.tsv", sep="\t", index=False)
        params = pd.DataFrame(
            {
                "parameterId": raw.parameter_ids,
                "parameterScale": "log10",
                "lowerBound": raw.lower,
                "upperBound": raw.upper,
                "nominalValue": raw.nominal,
                "estimate": 1,
            }
        )
        params.to_csv(tmp / f"parameters_{stem}.tsv", sep="\t", index=False, float_format="%.17g")
        (tmp / f"{stem}.yaml").write_text(
            "format_version: 1\n"
            f"parameter_file: parameters_{stem}.tsv\n"
            "problems:\n"
            f"- condition_files: [conditions_{stem}.tsv]\n"
            f"  measurement_files: [measurements_{stem}.tsv]\n"
            f"  observable_files: [observables_{stem}.tsv]\n"
            f"  sbml_files: [model_{stem}.xml]\n"
        )
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / f"{stem}.yaml"


def raw_folder() -> Path:
    """Where the raw BioPreDyn files are.

    ``$PE_BENCH_BIOPREDYN``, else ``../shared/biopredyn`` from the working directory or
    from the project checkout.
    """
    env = os.environ.get("PE_BENCH_BIOPREDYN")
    candidates = [Path(env)] if env else []
    candidates += [
        Path.cwd().parent / "shared" / "biopredyn",
        Path(__file__).resolve().parents[3] / "shared" / "biopredyn",
    ]
    for c in candidates:
        if c.is_dir():
            return c
    raise ProblemNotFoundError(
        "BioPreDyn raw files not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); set PE_BENCH_BIOPREDYN or use 'pebench import biopredyn B2 --from DIR --out OUT'"
    )


def builtin_yaml(name: str) -> Path:
    """The PEtab YAML of built-in ``biopredyn-b2``/``-b4``, imported into the cache on first use.

    The cache key is a hash of the raw files, so a change to them is a new import.
    """
    import hashlib

    which = BUILTIN[name]
    folder = raw_folder()
    h = hashlib.sha256()
    for f in sorted((folder / which).iterdir()):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    cache = Path(os.environ.get("PE_BENCH_CACHE", Path.home() / ".cache" / "pe_bench")) / "biopredyn"
    out = cache / f"{which}-{h.hexdigest()[:16]}"
    yaml = out / f"biopredyn_{which}.yaml"
    if not yaml.is_file():
        try:
            write_petab(folder, which, out)
        except ProblemSpecError:
            if not yaml.is_file():  # not another process importing the same files at once
                raise
    return yaml
