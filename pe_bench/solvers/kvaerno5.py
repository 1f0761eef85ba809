"""diffrax's Kvaerno5 (ESDIRK, order 5) with a Newton root finder: the reverse-mode path.

pe_bench's Rodas5 loop (:mod:`.integrate`) is a ``lax.while_loop`` that can only be
differentiated forward; diffrax's checkpointed solve can be differentiated backwards,
which pays above a few dozen parameters. Models with events are not simulated here
(the event machinery lives in the Rodas5 loop); ``SolverOptions.resolved`` keeps them on
Rodas5.
"""

from __future__ import annotations

from collections.abc import Callable

import diffrax
import jax.numpy as jnp
import optimistix as optx

from ..options import SolverOptions


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


def solve_at(rhs: Callable, x_start, p, ts, t1, options: SolverOptions):
    """Integrate from t = 0 to ``t1``; returns the states at ``ts``, a success flag and the steps."""
    solver, controller = _solver(options)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, args: rhs(t, y, args)),
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
    return sol.ys, ok, sol.stats["num_steps"]


def steady_state(rhs: Callable, x_start, p, options: SolverOptions):
    """Simulate until ``dx/dt`` vanishes; returns ``(x_ss, t_ss, ok, steps)``."""
    solver, controller = _solver(options)
    event = diffrax.Event(
        (
            diffrax.steady_state_event(rtol=options.steady_state_rtol, atol=options.steady_state_atol),
            _blowup(options.blowup_threshold),
        )
    )
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, args: rhs(t, y, args)),
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
    return sol.ys[-1], sol.ts[-1], ok, sol.stats["num_steps"]
