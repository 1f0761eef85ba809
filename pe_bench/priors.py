"""PEtab v1 objective priors: the negative log-prior of the estimated parameters.

The parameter table's ``objectivePriorType`` and ``objectivePriorParameters`` (``a;b``)
define, per estimated parameter with value ``theta`` (linear scale) and ``x`` (its
``parameterScale`` value):

======================  =================================  ==========================================
type                    density of                         negative log-prior
======================  =================================  ==========================================
uniform (a, b)          theta                              ``log(b - a)`` inside [a, b], +inf outside
normal (mu, s)          theta                              ``0.5 log(2 pi s^2) + (theta - mu)^2 / (2 s^2)``
laplace (mu, s)         theta                              ``log(2 s) + |theta - mu| / s``
logNormal (mu, s)       theta, ``log theta ~ N(mu, s)``    ``log(theta) + normal(log theta)``
logLaplace (mu, s)      theta, ``log theta ~ L(mu, s)``    ``log(theta) + laplace(log theta)``
parameterScaleUniform   x                                  uniform on x
parameterScaleNormal    x                                  normal on x
parameterScaleLaplace   x                                  laplace on x
======================  =================================  ==========================================

Each density is evaluated at the value of the variable it is defined on, without a
change-of-variables factor for the estimation scale (pyPESTO's reading of PEtab v1;
the ``petab`` library's ``Prior.neglogprior`` evaluates every type as a density of
``theta`` and truncates it at the bounds, which differs from this by terms in ``x``
for the ``parameterScale*`` types on log scales and by constants). A row without a
type has no prior term. Priors of parameters that are not estimated are constants and
left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

PRIOR_TYPES = (
    "uniform",
    "normal",
    "laplace",
    "logNormal",
    "logLaplace",
    "parameterScaleUniform",
    "parameterScaleNormal",
    "parameterScaleLaplace",
)
_UNIFORM, _NORMAL, _LAPLACE = 0, 1, 2
# type code -> (shape: uniform/normal/laplace, variable: 0 theta, 1 log theta, 2 x)
_SHAPE = np.array([_UNIFORM, _NORMAL, _LAPLACE, _NORMAL, _LAPLACE, _UNIFORM, _NORMAL, _LAPLACE])
_VARIABLE = np.array([0, 0, 0, 1, 1, 2, 2, 2])


@dataclass(frozen=True, eq=False)
class Priors:
    """The objective priors of a problem's estimated parameters.

    Attributes:
        index: positions in ``x`` of the parameters that have a prior.
        kind: their type codes (indices into :data:`PRIOR_TYPES`).
        a, b: the two prior parameters (lower/upper, or location/scale).
    """

    index: np.ndarray
    kind: np.ndarray
    a: np.ndarray
    b: np.ndarray

    @property
    def n(self) -> int:
        """Number of parameters with a prior."""
        return len(self.index)

    def _variable(self, x, theta):
        var = _VARIABLE[self.kind]
        xi, ti = x[self.index], theta[self.index]
        safe = jnp.where(var == 1, ti, 1.0)
        return jnp.where(var == 0, ti, jnp.where(var == 1, jnp.log(safe), xi)), jnp.where(
            var == 1, jnp.log(safe), 0.0
        )

    def negative_log_prior(self, x, theta):
        """Sum of the negative log-priors (pure JAX).

        Args:
            x: (n_par,) estimated parameters on their estimation scale.
            theta: (n_par,) the same on linear scale.
        """
        if not self.n:
            return jnp.zeros((), x.dtype)
        v, log_jac = self._variable(x, theta)
        shape = _SHAPE[self.kind]
        a, b = jnp.asarray(self.a), jnp.asarray(self.b)
        inside = (v >= a) & (v <= b)
        uniform = jnp.where(inside, jnp.log(jnp.where(shape == _UNIFORM, b - a, 1.0)), jnp.inf)
        normal = 0.5 * jnp.log(2 * jnp.pi * b**2) + 0.5 * ((v - a) / b) ** 2
        laplace = jnp.log(2 * b) + jnp.abs(v - a) / b
        terms = jnp.where(shape == _UNIFORM, uniform, jnp.where(shape == _NORMAL, normal, laplace))
        return jnp.sum(terms + log_jac)

    def fim_features(self, x, theta):
        """Features whose Jacobian adds a normal prior's exact Hessian to ``J^T J``.

        ``(v - mu) / s`` for the normal types on x and theta (the log-normal's extra
        ``log theta`` term is left out); nothing for uniform and laplace priors.
        """
        normal = np.flatnonzero(_SHAPE[self.kind] == _NORMAL)
        if not len(normal):
            return jnp.zeros((0,), x.dtype)
        v, _ = self._variable(x, theta)
        return (v[normal] - self.a[normal]) / self.b[normal]


def parse_priors(
    parameter_df, ids: list[str], estimated: np.ndarray, scales: list[str], file: str
) -> Priors | None:
    """Read ``objectivePriorType`` / ``objectivePriorParameters`` of a parameter table.

    Args:
        parameter_df: the PEtab parameter table (indexed by parameterId).
        ids: all rows' ids.
        estimated: all rows' estimate flags.
        scales: all rows' parameterScale.
        file: the table's path, for messages.

    Returns:
        The priors of the estimated parameters, or None when the table has none.

    Raises:
        ProblemSpecError: an unknown type, or parameters that are missing, not two
            numbers, or invalid (scale <= 0, lower >= upper, a log-type's support).
    """
    from .errors import ProblemSpecError

    if "objectivePriorType" not in parameter_df.columns:
        return None
    index, kind, a, b = [], [], [], []
    pos = 0
    for pid, est in zip(ids, estimated, strict=True):
        if not est:
            continue
        row = parameter_df.loc[pid]
        ptype = row.get("objectivePriorType")
        if not isinstance(ptype, str) or not ptype.strip():
            pos += 1
            continue
        ptype = ptype.strip()
        where = f"{file}: parameter '{pid}'"
        if ptype not in PRIOR_TYPES:
            raise ProblemSpecError(
                f"{where}: unknown objectivePriorType '{ptype}' (one of {', '.join(PRIOR_TYPES)})"
            )
        raw = row.get("objectivePriorParameters")
        if ptype == "parameterScaleUniform" and (not isinstance(raw, str) or not raw.strip()):
            lo, hi = (float(parameter_df.loc[pid, c]) for c in ("lowerBound", "upperBound"))
            scale = scales[ids.index(pid)]
            conv = {"lin": lambda v: v, "log": math.log, "log10": math.log10}[scale]
            pa, pb = conv(lo), conv(hi)
        else:
            try:
                pa, pb = (float(v) for v in str(raw).split(";"))
            except ValueError:
                raise ProblemSpecError(
                    f"{where}: objectivePriorParameters '{raw}' is not two numbers 'a;b' for {ptype}"
                ) from None
        if not (math.isfinite(pa) and math.isfinite(pb)):
            raise ProblemSpecError(f"{where}: objectivePriorParameters '{raw}' are not finite")
        code = PRIOR_TYPES.index(ptype)
        if _SHAPE[code] == _UNIFORM and not pa < pb:
            raise ProblemSpecError(f"{where}: {ptype} prior needs lower < upper, got {pa:g};{pb:g}")
        if _SHAPE[code] != _UNIFORM and not pb > 0:
            raise ProblemSpecError(f"{where}: {ptype} prior needs a scale > 0, got {pb:g}")
        index.append(pos)
        kind.append(code)
        a.append(pa)
        b.append(pb)
        pos += 1
    if not index:
        return None
    return Priors(np.array(index), np.array(kind), np.array(a, float), np.array(b, float))
