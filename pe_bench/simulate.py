"""diffrax simulation of a :class:`Problem`: every condition, pre-equilibration, outputs.

Everything here is a pure function of arrays (jit/vmap/grad-able). Conditions are
solved in one ``vmap`` so that a problem compiles once whatever its number of
conditions. Solver failures are data (``throw=False``), never exceptions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from . import stiff
from .model.codegen import jax_function
from .model.mathml import TIME
from .options import (  # noqa: F401  (re-exported: simulate is where users look for them)
    FORWARD_MAX_PAR,
    STATUS_INTEGRATION_FAILED,
    STATUS_NAMES,
    STATUS_NONFINITE,
    STATUS_OK,
    SolverOptions,
)
from .problems.base import Problem


@dataclass(frozen=True)
class ModelFunctions:
    """The JAX functions of a problem's model and observables."""

    rhs: Callable  # (t, x, p) -> dx/dt
    x0: Callable  # (p,) -> x0
    observables: list[Callable]  # (t, x, p, q, op, np) -> y   (vectorised over columns)
    noise: list[Callable]  # same signature -> sigma


def model_functions(problem: Problem) -> ModelFunctions:
    """Generate the JAX functions of a problem from its sympy expressions."""
    m = problem.model
    xs = [m.symbol(s) for s in m.state_ids]
    ps = [m.symbol(p) for p in m.parameter_ids]
    rhs = jax_function([TIME, xs, ps], m.rhs)
    x0 = jax_function([ps], m.x0)
    obs, noise = [], []
    for o in problem.observables:
        args = [TIME, xs, ps, problem.q_symbols, o.observable_placeholders or [], o.noise_placeholders or []]
        obs.append(jax_function(args, [o.formula]))
        noise.append(jax_function(args, [o.noise_formula]))
    return ModelFunctions(rhs, x0, obs, noise)


def _solver(options: SolverOptions):
    # Newton (fresh Jacobian every iteration) stopped by the convergence-rate test of
    # implicit solvers (Hairer & Wanner IV.8) with kappa = 0.1, CVODE's nonlinear
    # convergence coefficient, instead of optimistix's default Cauchy test on step and
    # residual. Measured on Weber_BMC2015 (rtol 1e-10, atol 1e-12): the Cauchy test never
    # met atol on components coupled to states of 1e7 (12858 steps, 4252 rejected, for
    # the time course); kappa = 1e-2 sat below rounding noise near steady state (45928
    # steps for pre-equilibration); kappa = 0.1 took 1099 and 9 steps, same solution.
    root_finder = diffrax.with_stepsize_controller_tols(optx.Newton)(cauchy_termination=False, kappa=0.1)
    solver = diffrax.Kvaerno5(root_finder=root_finder)
    controller = diffrax.PIDController(
        rtol=options.rtol, atol=options.atol, pcoeff=options.pcoeff, icoeff=options.icoeff
    )
    return solver, controller


def _adjoint(options: SolverOptions):
    # ForwardMode makes the solve forward-differentiable (jvp / jacfwd) and cheaper than
    # checkpointed reverse mode, but cannot be reverse-differentiated.
    return diffrax.ForwardMode() if options.sensitivity == "forward" else diffrax.RecursiveCheckpointAdjoint()


def _blowup(threshold: float) -> Callable:
    def cond_fn(t, y, args, **kwargs):
        return jnp.any(~(jnp.abs(y) <= threshold))  # also true for NaN

    return cond_fn


def solve_at(rhs: Callable, x_start, p, ts, options: SolverOptions):
    """Integrate from t = 0 and return the states at ``ts`` and a success flag.

    Args:
        rhs: ``rhs(t, x, p)``.
        x_start: initial state (n_x,).
        p: model parameters (n_p,).
        ts: sorted output times (n_t,), ``ts[-1]`` is the end time.
        options: solver settings.

    Returns:
        ``(ys, ok)`` with ys of shape (n_t, n_x).
    """
    if options.solver == "rodas5":
        t1 = jnp.maximum(ts[-1], 1e-12)
        sol = stiff.integrate(rhs, x_start, p, ts, t1, **_rodas5_kwargs(options))
        return sol.ys, sol.ok
    solver, controller = _solver(options)
    term = diffrax.ODETerm(lambda t, y, args: rhs(t, y, args))
    t1 = jnp.maximum(ts[-1], 1e-12)
    sol = diffrax.diffeqsolve(
        term,
        solver,
        t0=0.0,
        t1=t1,
        dt0=None,
        y0=x_start,
        args=p,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=controller,
        event=diffrax.Event(_blowup(options.blowup_threshold)),
        max_steps=options.max_steps,
        adjoint=_adjoint(options),
        throw=False,
    )
    ok = sol.result == diffrax.RESULTS.successful  # a blow-up ends as event_occurred
    return sol.ys, ok


def _rodas5_kwargs(options: SolverOptions) -> dict:
    return dict(
        rtol=options.rtol,
        atol=options.atol,
        max_steps=options.max_steps,
        blowup_threshold=options.blowup_threshold,
    )


def steady_state(rhs: Callable, x_start, p, options: SolverOptions):
    """Simulate until ``dx/dt`` vanishes (pre-equilibration); returns ``(x_ss, ok)``."""
    if options.solver == "rodas5":
        sol = stiff.integrate(
            rhs,
            x_start,
            p,
            jnp.zeros((0,), jnp.asarray(x_start).dtype),
            jnp.inf,
            steady_state=(options.steady_state_rtol, options.steady_state_atol),
            **(
                _rodas5_kwargs(options)
                | {"rtol": options.preequilibration_rtol, "atol": options.preequilibration_atol}
            ),
        )
        return sol.x, sol.ok
    solver, controller = _solver(options)
    term = diffrax.ODETerm(lambda t, y, args: rhs(t, y, args))
    event = diffrax.Event(
        (
            diffrax.steady_state_event(rtol=options.steady_state_rtol, atol=options.steady_state_atol),
            _blowup(options.blowup_threshold),
        )
    )
    sol = diffrax.diffeqsolve(
        term,
        solver,
        t0=0.0,
        t1=jnp.inf,
        dt0=None,
        y0=x_start,
        args=p,
        saveat=diffrax.SaveAt(t1=True),
        stepsize_controller=controller,
        event=event,
        max_steps=options.max_steps,
        adjoint=_adjoint(options),
        throw=False,
    )
    reached, exploded = sol.event_mask
    ok = (sol.result == diffrax.RESULTS.event_occurred) & reached & ~exploded
    return sol.ys[-1], ok


def unscale(x, scales: np.ndarray):
    """Estimation scale -> linear (codes: 0 lin, 1 log, 2 log10)."""
    return jnp.where(scales == 1, jnp.exp(x), jnp.where(scales == 2, jnp.power(10.0, x), x))


@dataclass(frozen=True, eq=False)
class Simulator:
    """Pure simulation of every condition and observable of a problem.

    Call it with ``x`` (estimated parameters on their estimation scale); it returns a
    dict of arrays: ``states`` (n_sim, n_t, n_x), ``y`` and ``sigma`` (n_m,) and ``ok``.
    """

    problem: Problem
    functions: ModelFunctions
    options: SolverOptions

    def theta(self, x):
        """All parameter-table values on linear scale, estimated ones taken from ``x``.

        One extra trailing 0 is appended, so that the index -1 used for "constant" in
        the mapping arrays stays in range even for a problem with no parameter table.
        """
        pb = self.problem
        scale_codes = np.array([("lin", "log", "log10").index(s) for s in pb.x_scale], dtype=np.int32)
        est_pos = np.flatnonzero(pb.theta_estimated)
        theta = jnp.asarray(np.append(pb.theta_nominal, 0.0))
        return theta.at[est_pos].set(unscale(x, scale_codes))

    def __call__(self, x) -> dict:
        """Simulate at estimated parameters ``x``."""
        pb, fn, opts = self.problem, self.functions, self.options
        theta = self.theta(x)
        P = jnp.where(pb.cond_p_index >= 0, theta[pb.cond_p_index], pb.cond_p_const)
        X0 = jax.vmap(fn.x0)(P) if pb.model.state_ids else jnp.zeros((len(pb.condition_ids), 0))
        X0 = jnp.where(
            pb.cond_x_mask,
            jnp.where(pb.cond_x_index >= 0, theta[pb.cond_x_index], pb.cond_x_const),
            X0,
        )
        x_start = X0[pb.sim_cond]
        ok = jnp.asarray(True)
        preeq = np.unique(pb.sim_preeq[pb.sim_preeq >= 0])
        if len(preeq):
            xss, ok_pre = jax.vmap(lambda x0, p: steady_state(fn.rhs, x0, p, opts))(X0[preeq], P[preeq])
            ok = ok & jnp.all(ok_pre)
            slot = np.searchsorted(preeq, np.maximum(pb.sim_preeq, 0))
            use_ss = (pb.sim_preeq >= 0)[:, None] & ~pb.cond_x_mask[pb.sim_cond]
            x_start = jnp.where(use_ss, xss[slot], x_start)
        p_sim = P[pb.sim_cond]
        states, ok_sim = jax.vmap(lambda x0, p, ts: solve_at(fn.rhs, x0, p, ts, opts))(
            x_start, p_sim, jnp.asarray(pb.sim_ts)
        )
        ok = ok & jnp.all(ok_sim)
        out = {"states": states, "ok": ok, "theta": theta, "P": P}
        if pb.has_data:
            out["y"], out["sigma"] = self.observe(states, p_sim, theta)
        return out

    def observe(self, states, p_sim, theta):
        """Observables and noise standard deviations at every measurement."""
        pb, fn = self.problem, self.functions
        n_m = len(pb.meas_y)
        y = jnp.zeros(n_m)
        sigma = jnp.zeros(n_m)
        op_all = jnp.where(pb.meas_op_index >= 0, theta[pb.meas_op_index], pb.meas_op_const)
        np_all = jnp.where(pb.meas_np_index >= 0, theta[pb.meas_np_index], pb.meas_np_const)
        for k, obs in enumerate(pb.observables):
            rows = np.flatnonzero(pb.meas_obs == k)
            if len(rows) == 0:
                continue
            t = jnp.asarray(pb.meas_t[rows])
            xm = states[pb.meas_sim[rows], pb.meas_tidx[rows]].T  # (n_x, n_rows)
            pm = p_sim[pb.meas_sim[rows]].T
            q = theta[:-1, None]  # without the padding slot
            opm = op_all[rows, : len(obs.observable_placeholders)].T
            npm = np_all[rows, : len(obs.noise_placeholders)].T
            yk = jnp.broadcast_to(fn.observables[k](t, xm, pm, q, opm, npm)[0], (len(rows),))
            sk = jnp.broadcast_to(fn.noise[k](t, xm, pm, q, opm, npm)[0], (len(rows),))
            y = y.at[rows].set(yk)
            sigma = sigma.at[rows].set(sk)
        return y, sigma
