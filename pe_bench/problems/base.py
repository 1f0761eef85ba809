"""The :class:`Problem`: plain data built once from a problem source."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sympy as sp

from ..model.sbml import SymbolicModel
from ..priors import Priors
from ..scales import to_scale as to_scale

#: Parameter scales as PEtab names them.
SCALES = ("lin", "log", "log10")
#: Observable transformations, encoded as integers in the measurement arrays.
TRANSFORMATIONS = ("lin", "log", "log10")
#: Noise distributions, encoded as integers in the measurement arrays.
NOISE_DISTRIBUTIONS = ("normal", "laplace")


@dataclass(frozen=True)
class Observable:
    """One PEtab observable, its formulas resolved to model symbols.

    ``formula`` and ``noise_formula`` are sympy expressions over the model's states,
    model parameters, ``TIME``, the problem-level parameter symbols ``q`` and the
    placeholder symbols ``observable_placeholders`` / ``noise_placeholders``.
    """

    id: str
    formula: sp.Expr
    noise_formula: sp.Expr
    transformation: str
    noise_distribution: str
    observable_placeholders: list[sp.Symbol]
    noise_placeholders: list[sp.Symbol]


@dataclass(frozen=True)
class Problem:
    """A parameter-estimation problem: model, conditions, data and parameter table.

    Arrays are indexed by: ``n_theta`` (every row of the parameter table), ``n_cond``
    (every condition used), ``n_sim`` (simulations = (pre-equilibration, simulation)
    condition pairs), ``n_m`` (measurements).

    Attributes:
        name: short name (built-in name or PEtab YAML stem).
        source: where it came from (path).
        model: the symbolic SBML model.
        theta_ids: ids of the parameter table rows, in table order.
        theta_scale: PEtab ``parameterScale`` per row.
        theta_lower, theta_upper, theta_nominal: bounds and nominal values (linear scale).
        theta_estimated: which rows are estimated.
        true_parameters: known true values (linear scale) by id, for synthetic problems.
        condition_ids: ids of the conditions used, in order.
        cond_p_index, cond_p_const: model parameter ``j`` in condition ``c`` is
            ``theta[cond_p_index[c, j]]`` if that index is >= 0 else ``cond_p_const[c, j]``.
        cond_x_mask, cond_x_index, cond_x_const: species initial-value overrides from
            the condition table, same encoding; the mask says where an override exists.
        sim_preeq, sim_cond: per simulation, the pre-equilibration condition index (-1
            if none) and the simulation condition index.
        sim_ts: (n_sim, n_t) finite output times, padded with the last time.
        sim_steady: (n_sim,) which simulations have steady-state measurements
            (``time = inf``): they go on after their last output time to steady state,
            and measurements there use time index ``n_t`` (None: none has).
        observables: the observables, in table order.
        meas_*: per measurement, simulation index, time index, observable index,
            measured value, time, and the observable/noise placeholder overrides
            (index into theta or -1 with a constant).
        measurement_df: the PEtab measurement table (for output).
        has_priors: the parameter table defines objective priors.
        priors: those priors, on the estimated parameters (see :mod:`pe_bench.priors`);
            the objective adds them only when asked (``Objective(priors=True)``).
        notes: remarks shown by ``pebench info``.
    """

    name: str
    source: str
    model: SymbolicModel
    theta_ids: list[str]
    theta_scale: list[str]
    theta_lower: np.ndarray
    theta_upper: np.ndarray
    theta_nominal: np.ndarray
    theta_estimated: np.ndarray
    true_parameters: dict[str, float] | None
    condition_ids: list[str]
    cond_p_index: np.ndarray
    cond_p_const: np.ndarray
    cond_x_mask: np.ndarray
    cond_x_index: np.ndarray
    cond_x_const: np.ndarray
    sim_preeq: np.ndarray
    sim_cond: np.ndarray
    sim_ts: np.ndarray
    observables: list[Observable]
    q_symbols: list[sp.Symbol]
    meas_sim: np.ndarray
    meas_tidx: np.ndarray
    meas_obs: np.ndarray
    meas_y: np.ndarray
    meas_t: np.ndarray
    meas_op_index: np.ndarray
    meas_op_const: np.ndarray
    meas_np_index: np.ndarray
    meas_np_const: np.ndarray
    measurement_df: pd.DataFrame = field(repr=False)
    has_priors: bool = False
    notes: list[str] = field(default_factory=list)
    sim_steady: np.ndarray | None = None
    priors: Priors | None = None

    @property
    def x_ids(self) -> list[str]:
        """Ids of the estimated parameters, in the order of the vector ``x``."""
        return [i for i, e in zip(self.theta_ids, self.theta_estimated, strict=True) if e]

    @property
    def x_scale(self) -> list[str]:
        """Scale of each estimated parameter."""
        return [s for s, e in zip(self.theta_scale, self.theta_estimated, strict=True) if e]

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of ``x`` on the estimation scale."""
        est = self.theta_estimated
        scales = self.x_scale
        return (
            to_scale(self.theta_lower[est], scales),
            to_scale(self.theta_upper[est], scales),
        )

    @property
    def x_nominal(self) -> np.ndarray:
        """The nominal values of the estimated parameters on the estimation scale."""
        return to_scale(self.theta_nominal[self.theta_estimated], self.x_scale)

    @property
    def x_true(self) -> np.ndarray | None:
        """True parameters on the estimation scale, if the problem knows them."""
        if self.true_parameters is None:
            return None
        vals = np.array([self.true_parameters[i] for i in self.x_ids], dtype=float)
        return to_scale(vals, self.x_scale)

    @property
    def has_outputs(self) -> bool:
        """Whether there are observables to compute (measurement rows, measured or not)."""
        return len(self.meas_y) > 0

    @property
    def has_data(self) -> bool:
        """Whether there are measured values to fit (an SBML-only problem has none)."""
        return len(self.meas_y) > 0 and bool(np.all(np.isfinite(self.meas_y)))

    @property
    def rodas5_only(self) -> bool:
        """Events or steady-state measurements: simulated only by pe_bench's own loop."""
        return bool(self.model.events) or self.sim_steady is not None
