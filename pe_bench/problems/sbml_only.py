"""An SBML model without data: a :class:`Problem` that can be simulated, not fitted."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import sympy as sp

from ..errors import ProblemSpecError
from ..model.sbml import load_sbml
from .base import Observable, Problem

#: Output times used when simulating a bare SBML model.
DEFAULT_TIMES = np.linspace(0.0, 100.0, 101)


def load_sbml_problem(
    path: str | os.PathLike,
    name: str | None = None,
    times=None,
    outputs: list[tuple[str, str | None]] | None = None,
) -> Problem:
    """Wrap an SBML file as a data-free problem with one condition (the file's values).

    Args:
        path: the SBML file.
        name: short name (default: file stem).
        times: output times (default ``DEFAULT_TIMES``).
        outputs: quantities to report at every output time, each ``(sbml_id, units)``
            with units "amount", "concentration" (for species) or None (the id's own):
            they become observables (``simulate`` gives them as ``y``, time-major:
            row ``i * len(outputs) + j`` is output ``j`` at time ``i``), with no
            measured values.

    Raises:
        ProblemSpecError: an output id that is not in the model.
    """
    model = load_sbml(path)
    ts = np.asarray(DEFAULT_TIMES if times is None else times, dtype=float)
    n_p, n_x = len(model.parameter_ids), len(model.state_ids)
    empty_i = np.zeros((0, 1), dtype=np.int32)
    observables = []
    for sid, units in outputs or []:
        if sid not in model.expressions:
            raise ProblemSpecError(f"{path}: '{sid}' is not a species, compartment, parameter or reaction")
        formula = model.quantity(sid, units)
        observables.append(Observable(sid, formula, sp.Integer(1), "lin", "normal", [], []))
    n_o, n_t = len(observables), len(ts)
    n_m = n_o * n_t
    return Problem(
        name=name or Path(path).stem,
        source=os.fspath(path),
        model=model,
        theta_ids=[],
        theta_scale=[],
        theta_lower=np.zeros(0),
        theta_upper=np.zeros(0),
        theta_nominal=np.zeros(0),
        theta_estimated=np.zeros(0, dtype=bool),
        true_parameters=None,
        condition_ids=["default"],
        cond_p_index=np.full((1, n_p), -1, dtype=np.int32),
        cond_p_const=np.array([[model.parameter_values[p] for p in model.parameter_ids]]).reshape(1, n_p),
        cond_x_mask=np.zeros((1, n_x), dtype=bool),
        cond_x_index=np.full((1, n_x), -1, dtype=np.int32),
        cond_x_const=np.zeros((1, n_x)),
        sim_preeq=np.array([-1], dtype=np.int32),
        sim_cond=np.array([0], dtype=np.int32),
        sim_ts=ts[None, :],
        observables=observables,
        q_symbols=[],
        meas_sim=np.zeros(n_m, dtype=np.int32),
        meas_tidx=np.repeat(np.arange(n_t, dtype=np.int32), n_o),
        meas_obs=np.tile(np.arange(n_o, dtype=np.int32), n_t),
        meas_y=np.full(n_m, np.nan),
        meas_t=np.repeat(ts, n_o),
        meas_op_index=np.full((n_m, 1), -1, dtype=np.int32) if n_m else empty_i,
        meas_op_const=np.zeros((n_m, 1)),
        meas_np_index=np.full((n_m, 1), -1, dtype=np.int32) if n_m else empty_i,
        meas_np_const=np.zeros((n_m, 1)),
        measurement_df=pd.DataFrame(),
        notes=["SBML model without data: simulate only (no objective)"],
    )
