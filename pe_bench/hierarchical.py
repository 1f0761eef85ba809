"""Hierarchical observable parameters: scalings, offsets and sigmas solved in closed form.

Many estimated parameters only scale or shift an observable (``s * h(x) + b``) or are its
noise standard deviation. For fixed dynamic parameters the likelihood's optimum over them
has a closed form (Loos et al. 2018, Bioinformatics 34:i705; Schmiester et al. 2020), so
the optimiser need not search for them: :func:`split` finds them, :class:`InnerSolver`
computes their optimal values from one simulation, and the objective
(``Objective(hierarchical=True)``) evaluates the likelihood there. The outer methods then
see only the other parameters.

Which parameters are inner (decided from the formulas and the tables, nothing to mark):

* an **offset or scaling** is an estimated parameter that enters no simulation (no model
  parameter, no initial value, no condition override) and only observable formulas of
  observables with ``lin`` transformation and ``normal`` noise, each of them affine in it
  (and jointly affine in all inner ones: ``s * h + b`` but not ``s1 * s2 * h``), and no
  noise formula. For fixed sigmas the nllh is then quadratic in these parameters (on
  linear scale): one Newton step from any point is their exact joint optimum.
* a **sigma** is an estimated parameter that enters no simulation and no observable
  formula, and is the whole noise formula (``noiseFormula = noiseParameter1_obs`` with the
  data rows pointing to it, or the parameter itself) of every measurement that uses it,
  all of one noise distribution. Its optimum is ``sqrt(mean r^2)`` (normal) or
  ``mean |r|`` (laplace) over those measurements' residuals ``r`` on the observable's
  transformed scale.

Scalings and offsets are solved first with the current sigmas, then the sigmas from the
residuals, :data:`PASSES` times; where every scaling's measurements share one sigma (the
collection's problems) the first pass is already exact. Inner values are clipped to
their bounds (linear scale). With priors on, parameters with a prior stay outer.

The gradient with respect to the outer parameters is the partial derivative at the inner
optimum (envelope theorem: the inner optimum's own derivative is multiplied by a zero
gradient, or is zero where a bound holds it), so the inner solve runs on
``stop_gradient`` inputs and adds nothing to a gradient's cost.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .problems.base import NOISE_DISTRIBUTIONS, TRANSFORMATIONS, Problem

#: Alternations of (scalings and offsets, sigmas) when a problem has both kinds.
PASSES = 3

KINDS = ("scaling", "offset", "sigma")


@dataclass(frozen=True)
class InnerParameters:
    """The inner parameters of a problem.

    Attributes:
        ids: their parameter-table ids.
        kinds: "scaling" or "offset" (affine in the observable; "scaling" where the
            formula has a term proportional to it with a state-dependent factor) or "sigma".
        theta_pos: their rows in the parameter table.
        x_pos: their positions in the full problem's estimated vector ``x``.
        outer_pos: positions in the full ``x`` of the outer parameters, in order.
        notes: one line per candidate that stays outer, and why.
    """

    ids: list[str]
    kinds: list[str]
    theta_pos: np.ndarray
    x_pos: np.ndarray
    outer_pos: np.ndarray
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def n(self) -> int:
        """Number of inner parameters."""
        return len(self.ids)

    @property
    def linear(self) -> np.ndarray:
        """Indices (into :attr:`ids`) of the scalings and offsets."""
        return np.array([i for i, k in enumerate(self.kinds) if k != "sigma"], dtype=np.int64)

    @property
    def sigma(self) -> np.ndarray:
        """Indices (into :attr:`ids`) of the sigmas."""
        return np.array([i for i, k in enumerate(self.kinds) if k == "sigma"], dtype=np.int64)

    def summary(self) -> str:
        """``3 inner parameters (2 scaling, 1 sigma): a, b, c``."""
        counts = ", ".join(f"{self.kinds.count(k)} {k}" for k in KINDS if k in self.kinds)
        return (
            f"{self.n} inner parameters ({counts}): {', '.join(self.ids)}"
            if self.n
            else "no inner parameters"
        )


def _uses(pb: Problem, j: int) -> tuple[list[tuple[int, np.ndarray, sp.Symbol]], list]:
    """Where theta row ``j`` enters the observable and noise formulas.

    Returns two lists of ``(observable index, measurement rows, symbol)``: the symbol by
    which it enters that observable's formula (``noise`` list: its noise formula) in those
    rows (its problem-level symbol, or a placeholder the rows point to it).
    """
    obs_uses, noise_uses = [], []
    q = pb.q_symbols[j]
    for k, o in enumerate(pb.observables):
        rows = np.flatnonzero(pb.meas_obs == k)
        if not len(rows):
            continue
        if q in o.formula.free_symbols:
            obs_uses.append((k, rows, q))
        if q in o.noise_formula.free_symbols:
            noise_uses.append((k, rows, q))
        for i, sym in enumerate(o.observable_placeholders):
            hit = rows[pb.meas_op_index[rows, i] == j]
            if len(hit) and sym in o.formula.free_symbols:
                obs_uses.append((k, hit, sym))
        for i, sym in enumerate(o.noise_placeholders):
            hit = rows[pb.meas_np_index[rows, i] == j]
            if len(hit) and sym in o.noise_formula.free_symbols:
                noise_uses.append((k, hit, sym))
    return obs_uses, noise_uses


def find_inner(pb: Problem, with_priors: bool = False) -> InnerParameters:
    """Decide which estimated parameters are inner (see the module's docstring)."""
    est = np.flatnonzero(pb.theta_estimated)
    x_of_theta = {int(t): i for i, t in enumerate(est)}
    in_model = set(pb.cond_p_index[pb.cond_p_index >= 0].tolist()) | set(
        pb.cond_x_index[pb.cond_x_index >= 0].tolist()
    )
    prior_x = set(pb.priors.index.tolist()) if (with_priors and pb.priors is not None) else set()
    notes: list[str] = []
    kinds: dict[int, str] = {}
    symbol_uses: dict[int, list] = {}
    for t in est:
        t = int(t)
        pid = pb.theta_ids[t]
        if t in in_model:
            continue
        obs_uses, noise_uses = _uses(pb, t)
        if not obs_uses and not noise_uses:
            continue
        if x_of_theta[t] in prior_x:
            notes.append(f"{pid} stays outer: it has a prior")
            continue
        if obs_uses and noise_uses:
            notes.append(f"{pid} stays outer: it enters both an observable and a noise formula")
            continue
        if noise_uses:
            dists = {pb.observables[k].noise_distribution for k, _, _ in noise_uses}
            whole = all(pb.observables[k].noise_formula == sym for k, _, sym in noise_uses)
            if not whole:
                notes.append(f"{pid} stays outer: a noise formula it enters is not the parameter alone")
            elif len(dists) > 1:
                notes.append(f"{pid} stays outer: its measurements mix noise distributions")
            else:
                kinds[t] = "sigma"
            continue
        reason = None
        for k, _, sym in obs_uses:
            o = pb.observables[k]
            if o.transformation != "lin" or o.noise_distribution != "normal":
                reason = f"observable {o.id} is not lin-scale with normal noise"
            elif sym in o.noise_formula.free_symbols:
                reason = f"the noise formula of {o.id} depends on it"
            elif sp.simplify(sp.diff(o.formula, sym, 2)) != 0:
                reason = f"observable {o.id} is not affine in it"
            if reason:
                break
        if reason:
            notes.append(f"{pid} stays outer: {reason}")
            continue
        scaling = any(
            sp.diff(pb.observables[k].formula, sym).free_symbols & set(pb.model.state_symbols)
            for k, _, sym in obs_uses
        )
        kinds[t] = "scaling" if scaling else "offset"
        symbol_uses[t] = obs_uses
    _demote_products(pb, kinds, symbol_uses, notes)
    inner = sorted(kinds)
    inner_x = {x_of_theta[t] for t in inner}
    return InnerParameters(
        ids=[pb.theta_ids[t] for t in inner],
        kinds=[kinds[t] for t in inner],
        theta_pos=np.array(inner, dtype=np.int64),
        x_pos=np.array([x_of_theta[t] for t in inner], dtype=np.int64),
        outer_pos=np.array([i for i in range(len(est)) if i not in inner_x], dtype=np.int64),
        notes=notes,
    )


def _demote_products(pb: Problem, kinds: dict, symbol_uses: dict, notes: list[str]) -> None:
    """Keep outer the later of two inner scalings/offsets that multiply each other in a row."""
    changed = True
    while changed:
        changed = False
        linear = [t for t, k in kinds.items() if k != "sigma"]
        for a, b in itertools.combinations(linear, 2):
            for (ka, ra, sa), (kb, rb, sb) in itertools.product(symbol_uses[a], symbol_uses[b]):
                if ka != kb or not np.intersect1d(ra, rb).size:
                    continue
                if sp.simplify(sp.diff(pb.observables[ka].formula, sa, sb)) != 0:
                    del kinds[b]
                    obs = pb.observables[ka].id
                    notes.append(f"{pb.theta_ids[b]} stays outer: it multiplies {pb.theta_ids[a]} in {obs}")
                    changed = True
                    break
            if changed:
                break


def outer_problem(pb: Problem, inner: InnerParameters) -> Problem:
    """The problem the outer methods see: the inner parameters no longer estimated.

    Its simulation is the full problem's (inner parameters enter no simulation); its
    priors are those of the outer parameters, re-indexed.
    """
    estimated = pb.theta_estimated.copy()
    estimated[inner.theta_pos] = False
    priors = pb.priors
    if priors is not None:
        new_pos = {int(old): i for i, old in enumerate(inner.outer_pos)}
        keep = np.array([int(i) in new_pos for i in priors.index], dtype=bool)
        priors = (
            dataclasses.replace(
                priors,
                index=np.array([new_pos[int(i)] for i in priors.index[keep]], dtype=priors.index.dtype),
                kind=priors.kind[keep],
                a=priors.a[keep],
                b=priors.b[keep],
            )
            if keep.any()
            else None
        )
    return dataclasses.replace(pb, theta_estimated=estimated, priors=priors)


class InnerSolver:
    """The inner parameters' optimum for given simulated states (pure JAX).

    Args:
        problem: the full problem.
        inner: its inner parameters.
        observe: ``(states, p_sim, theta) -> (y, sigma)`` (``Simulator.observe``).
        nllh: ``(y, sigma) -> nllh`` over every measurement.
    """

    def __init__(self, problem: Problem, inner: InnerParameters, observe, nllh):
        self.problem, self.inner = problem, inner
        self.observe, self.nllh = observe, nllh
        self.lin_theta = inner.theta_pos[inner.linear]
        self.sig_theta = inner.theta_pos[inner.sigma]
        self.lower = problem.theta_lower[inner.theta_pos]
        self.upper = problem.theta_upper[inner.theta_pos]
        pb = problem
        # Measurement -> sigma group (index into inner.sigma), -1 for none.
        group = np.full(len(pb.meas_y), -1, dtype=np.int64)
        for g, t in enumerate(self.sig_theta):
            for _, rows, _ in _uses(pb, int(t))[1]:
                group[rows] = g
        self.group = group
        self.trans = np.array([TRANSFORMATIONS.index(pb.observables[k].transformation) for k in pb.meas_obs])
        dist = [NOISE_DISTRIBUTIONS.index(pb.observables[k].noise_distribution) for k in pb.meas_obs]
        self.dist = np.array(dist, dtype=np.int64)
        self.group_laplace = np.array(
            [bool(np.any(self.dist[group == g] == 1)) for g in range(len(self.sig_theta))], dtype=bool
        )
        self.n_group = np.array([max(1, int(np.sum(group == g))) for g in range(len(self.sig_theta))])

    def __call__(self, states, p_sim, theta):
        """``theta`` (linear scale) with the inner rows at their optimum.

        No gradient flows into the inner values (envelope theorem); the other rows keep
        their tangents.
        """
        from .objective import _transform

        given = theta
        states, p_sim, theta = (jax.lax.stop_gradient(v) for v in (states, p_sim, theta))
        inner = self.inner
        lo, hi = jnp.asarray(self.lower), jnp.asarray(self.upper)
        lin, sig = inner.linear, inner.sigma
        meas = _transform(jnp.asarray(self.problem.meas_y), self.trans)
        if len(sig):
            theta = theta.at[self.sig_theta].set(jnp.clip(1.0, lo[sig], hi[sig]))
        passes = PASSES if (len(lin) and len(sig)) else 1
        for _ in range(passes):
            if len(lin):
                theta = self._solve_linear(states, p_sim, theta, lo[lin], hi[lin])
            if len(sig):
                y, _ = self.observe(states, p_sim, theta)
                r = meas - _transform(y, self.trans)
                mask = self.group >= 0
                seg = np.where(mask, self.group, 0)
                sq = jax.ops.segment_sum(jnp.where(mask, r**2, 0.0), seg, len(sig))
                ab = jax.ops.segment_sum(jnp.where(mask, jnp.abs(r), 0.0), seg, len(sig))
                value = jnp.where(self.group_laplace, ab / self.n_group, jnp.sqrt(sq / self.n_group))
                theta = theta.at[self.sig_theta].set(jnp.clip(value, lo[sig], hi[sig]))
        pos = self.inner.theta_pos
        return given.at[pos].set(theta[pos])

    def _solve_linear(self, states, p_sim, theta, lo, hi):
        """One Newton step on the (quadratic) nllh in the scalings and offsets."""

        def f(psi):
            y, sigma = self.observe(states, p_sim, theta.at[self.lin_theta].set(psi))
            return self.nllh(y, sigma)

        psi0 = jnp.clip(theta[self.lin_theta], lo, hi)
        g = jax.grad(f)(psi0)
        h = jax.hessian(f)(psi0)
        step = jnp.linalg.pinv(h, rtol=1e-12, hermitian=True) @ g
        return theta.at[self.lin_theta].set(jnp.clip(psi0 - step, lo, hi))
