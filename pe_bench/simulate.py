"""Simulation of a :class:`Problem`: every condition, pre-equilibration, outputs.

This module says *what* is solved (which conditions, from which initial state, to which
times, which observables); :mod:`pe_bench.solvers` says *how*. Everything here is a pure
function of arrays (jit/vmap/grad-able). Conditions are solved in one ``vmap`` so that a
problem compiles once whatever its number of conditions. Solver failures are data,
never exceptions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from . import solvers
from .errors import UnsupportedFeatureError
from .model.codegen import (
    SWITCH_KINDS,
    condition_atoms,
    extract_switches,
    jax_function,
    reaction_rhs,
    root_expression,
)
from .model.mathml import TIME
from .model.sbml import ReactionForm
from .options import (  # noqa: F401  (re-exported: simulate is where users look for them)
    FORWARD_MAX_PAR,
    STATUS_BAD_SIGMA,
    STATUS_INTEGRATION_FAILED,
    STATUS_NAMES,
    STATUS_NONFINITE,
    STATUS_OK,
    SolverOptions,
)
from .problems.base import Problem
from .solvers import kvaerno5, linalg
from .solvers.steady import implicit_tangent


@dataclass(frozen=True, eq=False)
class ModelFunctions:
    """The JAX functions of a problem's model and observables."""

    rhs: Callable  # (t, x, p) -> dx/dt
    x0: Callable  # (p,) -> x0
    observables: list[Callable]  # (t, x, p, q, op, np) -> y   (vectorised over columns)
    noise: list[Callable]  # same signature -> sigma
    events: solvers.EventSystem | None  # the model's events, None without
    structure: linalg.Structure  # how Rodas5 solves its per-step linear systems


def jacobian_pattern(model) -> np.ndarray:
    """Structural sparsity of d(rhs)/d(state): entry (i, j) if rhs_i involves state j.

    From the reaction form where the right-hand side is generated from it (each rate's
    symbols once, instead of those of every summed derivative).
    """
    pos = {s: j for j, s in enumerate(model.state_symbols)}
    n = len(pos)
    pattern = np.zeros((n, n), dtype=bool)
    form = model.reaction_form if uses_reaction_form(model) else None
    if form is None:
        for i, expr in enumerate(model.rhs):
            for s in expr.free_symbols:
                if s in pos:
                    pattern[i, pos[s]] = True
        return pattern
    rate_states = [[pos[s] for s in r.free_symbols if s in pos] for r in form.rates]
    for i, r, c in form.terms:
        pattern[i, rate_states[r]] = True
        pattern[i, [pos[s] for s in c.free_symbols if s in pos]] = True
    for i, b in enumerate(form.base):
        pattern[i, [pos[s] for s in b.free_symbols if s in pos]] = True
    return pattern


#: Models with more states than this generate their right-hand side from the reaction
#: form (codegen.reaction_rhs); smaller ones as one expression per state, as before.
REACTION_FORM_MIN_STATES = 64


def uses_reaction_form(model) -> bool:
    """Whether the right-hand side is generated from the model's reaction form."""
    return model.reaction_form is not None and len(model.state_symbols) > REACTION_FORM_MIN_STATES


def event_system(model, options: SolverOptions) -> solvers.EventSystem | None:
    """The model's events and the discontinuities of its right-hand side, as JAX functions.

    Returns None for a model with neither (the solver's plain loop).
    """
    args = [TIME, list(model.state_symbols), [model.symbol(p) for p in model.parameter_ids]]
    moving = {TIME, *model.state_symbols}
    form = model.reaction_form if uses_reaction_form(model) else None
    if form is not None:  # the switches of the rates and coefficients, generated as the form
        n_r, n_t = len(form.rates), len(form.terms)
        exprs, switches, sw_symbols = extract_switches(
            [*form.rates, *(c for _, _, c in form.terms), *form.base], moving
        )
        form = ReactionForm(
            rates=exprs[:n_r],
            terms=[(i, r, c) for (i, r, _), c in zip(form.terms, exprs[n_r : n_r + n_t], strict=True)],
            base=exprs[n_r + n_t :],
        )
    else:
        exprs, switches, sw_symbols = extract_switches(model.rhs, moving)
    events = model.events
    # The inequalities of the triggers are watched like the right-hand side's switches
    # (they do not enter the right-hand side).
    for e in events:
        for atom in condition_atoms(e.trigger, moving):
            if ("condition", atom) not in switches:
                switches.append(("condition", atom))
                sw_symbols.append(sp.Symbol(f"__sw_{len(sw_symbols)}", real=True))
    if not events and not switches:
        return None
    n_ev = len(events)
    k = max([len(e.targets) for e in events] + [1])
    n_x = len(model.state_ids)
    target = np.full((n_ev, k), n_x, dtype=np.int32)
    index = np.full((n_ev, k), -1, dtype=np.int32)  # into the flat list of values (-1: padding)
    values, scales = [], []
    for i, e in enumerate(events):
        for j, (tgt, v, sc) in enumerate(zip(e.targets, e.values, e.scales, strict=True)):
            target[i, j] = tgt
            index[i, j] = len(values)
            values.append(v)
            scales.append(sc)
    flat_values = jax_function(args, values)
    flat_scales = jax_function(args, scales)
    has_priority = np.array([e.priority is not None for e in events], dtype=bool)
    prio = jax_function(args, [e.priority if e.priority is not None else sp.Integer(0) for e in events])

    def padded(flat, fill):
        def fn(t, x, p):
            v = jnp.concatenate([flat(t, x, p), jnp.full((1,), fill, dtype=jnp.float64)])
            return v[index]

        return fn

    def priority(t, x, p):
        return jnp.where(has_priority, prio(t, x, p), -jnp.inf)

    kinds = np.array([SWITCH_KINDS.index(kind) for kind, _ in switches], dtype=np.int32)
    sw_value = [
        sp.Piecewise((sp.Integer(1), e), (sp.Integer(0), True))
        if kind == "condition"
        else getattr(sp, kind)(e)
        for kind, e in switches
    ]
    sw_root = [root_expression(e) if kind == "condition" else e for kind, e in switches]
    switched = None  # without a switch in the right-hand side (only triggers' inequalities)
    if switches and any(e.free_symbols & set(sw_symbols) for e in exprs):
        sw_args = [TIME, args[1], args[2], sw_symbols]
        if form is not None:
            switched = reaction_rhs(sw_args, n_x, form)
        else:
            switched = jax_function(sw_args, exprs, vectorize=True)
    has_delay = np.array([e.delay is not None for e in events], dtype=bool)
    return solvers.EventSystem(
        trigger=jax_function(args, [e.trigger for e in events]),
        root=jax_function(args, [root_expression(e.trigger) for e in events]),
        assign=padded(flat_values, 0.0),
        scale=padded(flat_scales, 1.0),
        target=target,
        delay=jax_function(args, [e.delay if e.delay is not None else sp.Integer(0) for e in events]),
        priority=priority,
        has_delay=has_delay,
        initial_value=np.array([e.initial_value for e in events], dtype=bool),
        persistent=np.array([e.persistent for e in events], dtype=bool),
        use_trigger_values=np.array([e.use_values_from_trigger_time for e in events], dtype=bool),
        # Room for every event triggering at one instant, and for delayed executions.
        queue_size=max(options.event_queue_size, 2 * n_ev) if events else 1,
        switched_rhs=switched,
        switch_value=jax_function(args, sw_value) if switches else None,
        switch_root=jax_function(args, sw_root) if switches else None,
        switch_kind=kinds,
    )


def model_functions(problem: Problem, options: SolverOptions | None = None) -> ModelFunctions:
    """Generate the JAX functions of a problem from its sympy expressions.

    Raises:
        UnsupportedFeatureError: events with the diffrax solver (reverse mode).
    """
    options = options or SolverOptions()
    m = problem.model
    xs = list(m.state_symbols)
    ps = [m.symbol(p) for p in m.parameter_ids]
    if uses_reaction_form(m):
        rhs = reaction_rhs([TIME, xs, ps], len(xs), m.reaction_form)
    else:
        rhs = jax_function([TIME, xs, ps], m.rhs, vectorize=True)
    x0 = jax_function([ps], m.x0)
    obs, noise = [], []
    for o in problem.observables:
        args = [TIME, xs, ps, problem.q_symbols, o.observable_placeholders or [], o.noise_placeholders or []]
        obs.append(jax_function(args, [o.formula]))
        noise.append(jax_function(args, [o.noise_formula]))
    if m.events and options.solver == "kvaerno5":
        raise UnsupportedFeatureError(
            f"not supported yet: events with the kvaerno5 solver (reverse-mode sensitivities) in {m.source}; "
            "use solver rodas5 (forward sensitivities)"
        )
    n = len(xs)
    pattern = jacobian_pattern(m) if n > linalg.INVERSE_MAX_N else None
    structure = linalg.choose(n, pattern, options.linear_solver)
    return ModelFunctions(rhs, x0, obs, noise, event_system(m, options), structure)


def _rodas5_kwargs(fn: ModelFunctions, options: SolverOptions) -> dict:
    return dict(
        rtol=options.rtol,
        atol=options.atol,
        max_steps=options.max_steps,
        blowup_threshold=options.blowup_threshold,
        events=fn.events,
        structure=fn.structure,
        event_tol=options.event_tol,
    )


def solve_at(fn: ModelFunctions, x_start, p, ts, options: SolverOptions):
    """Integrate from t = 0 and return the states at ``ts`` and a success flag.

    Args:
        fn: the model's functions.
        x_start: initial state (n_x,).
        p: model parameters (n_p,).
        ts: sorted output times (n_t,), ``ts[-1]`` is the end time.
        options: solver settings.

    Returns:
        ``(ys, ok, n_steps)`` with ys of shape (n_t, n_x).
    """
    t1 = jnp.maximum(ts[-1], 1e-12)
    if options.solver == "rodas5":
        sol = solvers.integrate(fn.rhs, x_start, p, ts, t1, **_rodas5_kwargs(fn, options))
        return sol.ys, sol.ok, sol.n_steps
    return kvaerno5.solve_at(fn.rhs, x_start, p, ts, t1, options)


def solve_to_steady_state(fn: ModelFunctions, x_start, p, ts, options: SolverOptions):
    """Integrate through the output times ``ts`` and on until ``dx/dt`` vanishes.

    For steady-state measurements (PEtab ``time = inf``): the same criterion as
    pre-equilibration, at the simulation's tolerances. Returns ``(ys, x_ss, ok, n_steps)``;
    the tangent of ``x_ss`` is the implicit function theorem's (:mod:`.solvers.steady`),
    not the simulated trajectory's, whose sensitivities converge more slowly than the state.
    """
    if options.solver != "rodas5":
        raise UnsupportedFeatureError(
            "not supported yet: steady-state measurements (time = inf) with solver kvaerno5 "
            "(use the default rodas5 with forward sensitivities)"
        )
    sol = solvers.integrate(
        fn.rhs,
        x_start,
        p,
        ts,
        jnp.inf,
        steady_state=(options.steady_state_rtol, options.steady_state_atol),
        **_rodas5_kwargs(fn, options),
    )
    return sol.ys, implicit_tangent(fn.rhs, sol.t, sol.x, p), sol.ok, sol.n_steps


def steady_state(fn: ModelFunctions, x_start, p, options: SolverOptions):
    """Simulate until ``dx/dt`` vanishes (pre-equilibration); returns ``(x_ss, ok, n_steps)``.

    With Rodas5 the path is followed at the pre-equilibration tolerances: only the end
    point is used, and the steady-state criterion sets its accuracy. Its tangent is the
    implicit function theorem's (:mod:`.solvers.steady`) with either solver.
    """
    if options.solver == "rodas5":
        loose = dataclasses.replace(
            options, rtol=options.preequilibration_rtol, atol=options.preequilibration_atol
        )
        no_outputs = jnp.zeros((0,), jnp.asarray(x_start).dtype)
        _, x_ss, ok, n_steps = solve_to_steady_state(fn, x_start, p, no_outputs, loose)
        return x_ss, ok, n_steps
    x_ss, t_ss, ok, n_steps = kvaerno5.steady_state(fn.rhs, x_start, p, options)
    return implicit_tangent(fn.rhs, t_ss, x_ss, p), ok, n_steps


def unscale(x, scales: np.ndarray):
    """Estimation scale -> linear (codes: 0 lin, 1 log, 2 log10)."""
    return jnp.where(scales == 1, jnp.exp(x), jnp.where(scales == 2, jnp.power(10.0, x), x))


@dataclass(frozen=True, eq=False)
class Simulator:
    """Pure simulation of every condition and observable of a problem.

    Call it with ``x`` (estimated parameters on their estimation scale); it returns a
    dict of arrays: ``states`` (n_sim, n_t, n_x), ``y`` and ``sigma`` (n_m,), ``ok`` and
    ``n_steps`` (solver steps over all simulations, pre-equilibration included).
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
        est_pos = np.flatnonzero(pb.theta_estimated)
        theta = jnp.asarray(np.append(pb.theta_nominal, 0.0))
        return theta.at[est_pos].set(self.x_linear(x))

    def x_linear(self, x):
        """The estimated parameters ``x`` on linear scale."""
        codes = np.array([("lin", "log", "log10").index(s) for s in self.problem.x_scale], dtype=np.int32)
        return unscale(x, codes)

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
        n_steps = jnp.zeros((), jnp.int32)
        preeq = np.unique(pb.sim_preeq[pb.sim_preeq >= 0])
        if len(preeq):
            xss, ok_pre, steps_pre = jax.vmap(lambda x0, p: steady_state(fn, x0, p, opts))(
                X0[preeq], P[preeq]
            )
            ok = ok & jnp.all(ok_pre)
            n_steps = n_steps + jnp.sum(steps_pre)
            slot = np.searchsorted(preeq, np.maximum(pb.sim_preeq, 0))
            use_ss = (pb.sim_preeq >= 0)[:, None] & ~pb.cond_x_mask[pb.sim_cond]
            x_start = jnp.where(use_ss, xss[slot], x_start)
        p_sim = P[pb.sim_cond]
        sim_ts = jnp.asarray(pb.sim_ts)
        if pb.sim_steady is None:
            states, ok_sim, steps = jax.vmap(lambda x0, p, ts: solve_at(fn, x0, p, ts, opts))(
                x_start, p_sim, sim_ts
            )
            ok = ok & jnp.all(ok_sim)
            n_steps = n_steps + jnp.sum(steps)
        else:
            # Steady-state measurements read time slot n_t: the steady state where a
            # simulation has them, the last output's state elsewhere.
            plain, steady = np.flatnonzero(~pb.sim_steady), np.flatnonzero(pb.sim_steady)
            n_sim, n_t = pb.sim_ts.shape
            states = jnp.zeros((n_sim, n_t + 1, x_start.shape[1]), x_start.dtype)
            if len(plain):
                ys, ok_a, steps = jax.vmap(lambda x0, p, ts: solve_at(fn, x0, p, ts, opts))(
                    x_start[plain], p_sim[plain], sim_ts[plain]
                )
                states = states.at[plain, :n_t].set(ys).at[plain, n_t].set(ys[:, -1])
                ok = ok & jnp.all(ok_a)
                n_steps = n_steps + jnp.sum(steps)
            ys, xss, ok_b, steps = jax.vmap(lambda x0, p, ts: solve_to_steady_state(fn, x0, p, ts, opts))(
                x_start[steady], p_sim[steady], sim_ts[steady]
            )
            states = states.at[steady, :n_t].set(ys).at[steady, n_t].set(xss)
            ok = ok & jnp.all(ok_b)
            n_steps = n_steps + jnp.sum(steps)
        out = {"states": states, "ok": ok, "theta": theta, "P": P, "n_steps": n_steps}
        if pb.has_outputs:
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


def make_simulator(problem: Problem, options: SolverOptions | None = None) -> Simulator:
    """A :class:`Simulator` with the options' "auto" choices resolved for the problem."""
    options = (options or SolverOptions()).resolved(len(problem.x_ids), problem.rodas5_only)
    return Simulator(problem, model_functions(problem, options), options)
