"""The integration loop of pe_bench's Rodas5 solver: output times, steady state, events.

One ``lax.while_loop`` takes Rodas5 steps (:mod:`.rodas5`), lands exactly on every output
time (no dense output is needed), controls the step size on the RMS of the scaled error
estimate, and, when the model has events (:mod:`.events`):

- after every accepted step checks whether a trigger turned true inside it; if so, the
  crossing is located by re-stepping from the step's start with trial sizes chosen by the
  Illinois method (a bracketed secant) on the triggers' root functions, until the bracket
  is below ``event_tol`` (relative to time) or the root function is exactly zero there (a
  trigger on time alone, ``t >= tau``, is found exactly: its root function is linear in
  the step size, and the first secant lands on it);
- fires the events there (:func:`.events.execute`), and lands exactly on queued delayed
  executions as on output times;
- records outputs at an event time after the events.

Derivatives (forward mode) are those of the discrete solution with the accepted step
sizes held fixed, plus the jump of the sensitivities at an event whose time depends on
the parameters: with ``tau`` defined by ``g(tau, x(tau), p) = 0``,
``dtau = -(g_x dx + g_p dp) / (g_t + g_x f)``; the state before the event moves by
``f(tau-) dtau`` and the state after it by ``-f(tau+) dtau`` (the classical jump
conditions, e.g. Hairer & Wanner or AMICI's event sensitivities). Both enter as terms whose
value is zero and whose tangent is exactly that correction, so the forward pass is
unchanged.

Failures (step budget, step-size underflow, a state beyond the blow-up threshold or not
finite, an event queue overflow or an endless event cascade) are a flag, never raised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import events as ev
from . import linalg, rodas5


class Solution(NamedTuple):
    """What :func:`integrate` returns."""

    ys: jax.Array  #: states at the output times (n_t, n_x)
    x: jax.Array  #: final state
    t: jax.Array  #: final time
    n_steps: jax.Array  #: attempted steps (accepted, rejected and event-location trials)
    n_rejected: jax.Array  #: rejected steps
    ok: jax.Array  #: success flag
    n_events: jax.Array  #: event executions


class _Events(NamedTuple):
    trig: jax.Array  # trigger values at the current point
    root: jax.Array  # crossing functions at the current point: event roots, switch leaves
    sw: jax.Array  # switch values held for the steps from the current point
    locating: jax.Array  # a crossing is being located in the step from the current point
    crossed: jax.Array  # which events rose / switches changed in that step (n_ev + n_sw)
    a: jax.Array  # bracket: step sizes below (a) and at or after (b) the crossing
    b: jax.Array
    tb: jax.Array  # the time of b
    ga: jax.Array  # crossing function at a and b (Illinois: halved when one end is kept twice)
    gb: jax.Array
    side: jax.Array  # which end moved last (+1 b, -1 a)
    x_b: jax.Array  # the state at b
    queue: ev.Queue
    key: jax.Array
    n_events: jax.Array


class _State(NamedTuple):
    t: jax.Array
    x: jax.Array
    f: jax.Array
    h: jax.Array
    ys: jax.Array
    n_steps: jax.Array
    n_rejected: jax.Array
    done: jax.Array
    failed: jax.Array
    ev: _Events | None


def _rms(v):
    return jnp.sqrt(jnp.mean(v * v)) if v.shape[-1] else jnp.asarray(0.0, v.dtype)


def _select(c, a, b):
    """``where(c, a, b)`` over pytrees."""
    return jax.tree_util.tree_map(lambda u, v: jnp.where(c, u, v), a, b)


def integrate(
    rhs: Callable,
    x0,
    p,
    ts,
    t_end,
    *,
    rtol: float,
    atol: float,
    max_steps: int,
    blowup_threshold: float = jnp.inf,
    steady_state: tuple[float, float] | None = None,
    events: ev.EventSystem | None = None,
    structure: linalg.Structure | None = None,
    event_tol: float = 1e-12,
    seed: int = 0,
) -> Solution:
    """Integrate ``dx/dt = rhs(t, x, p)`` from ``t = 0``.

    Args:
        rhs: the vector field ``rhs(t, x, p)`` (with switches, ``events.switched_rhs``
            is integrated instead).
        x0: initial state (n_x,).
        p: parameters passed to ``rhs`` and the event functions.
        ts: sorted output times (n_t,) within ``[0, t_end]``; may be empty.
        t_end: end time (``jnp.inf`` with ``steady_state`` to run until steady).
        rtol: relative error tolerance of the step-size controller.
        atol: absolute error tolerance of the step-size controller.
        max_steps: budget of attempted steps (accepted, rejected, event location).
        blowup_threshold: a state whose magnitude exceeds this fails the integration.
        steady_state: ``(rtol, atol)``: stop, successfully, once
            ``rms(dx/dt) < atol + rtol * rms(x)`` (diffrax's ``steady_state_event``) at
            or after the last output time; ``Solution.x`` is then the steady state.
        events: the model's events and switches, or None.
        structure: the per-step linear solver (default: chosen by size, dense pattern).
        event_tol: crossings are located to ``event_tol * max(1, |t|)``.
        seed: seed of the random order of simultaneous events of equal priority.

    Returns:
        A :class:`Solution`.
    """
    x0 = jnp.asarray(x0)
    n = x0.shape[0]
    structure = structure or linalg.choose(n)
    ts = jnp.asarray(ts, dtype=x0.dtype)
    t_end = jnp.asarray(t_end, dtype=x0.dtype)
    t0 = jnp.zeros((), x0.dtype)
    es = events if events is not None and (events.n or events.n_switch) else None

    def rhs_at(t, x, sw):
        if es is not None and es.switched_rhs is not None:
            return es.switched_rhs(t, x, p, sw)
        return rhs(t, x, p)

    failed0 = jnp.asarray(False)
    ev0 = None
    sw0 = jnp.zeros((0,), x0.dtype)
    if es is not None:
        queue = ev.empty_queue(es, x0.dtype)
        key = jax.random.PRNGKey(seed)
        n_fired = jnp.zeros((), jnp.int32)
        trig = es.triggered(t0, x0, p)
        if es.n:
            # Events at the start: those whose trigger holds there but whose initialValue is false.
            x0, trig, queue, key, n_fired, failed0 = ev.execute(
                es, t0, x0, p, jnp.asarray(es.initial_value), queue, key
            )
        x0_p = jax.lax.stop_gradient(x0)
        if es.n_switch:
            sw0 = es.switch_value(t0, x0_p, p)
        zero = jnp.zeros((), x0.dtype)
        ev0 = _Events(
            trig=trig,
            root=jax.lax.stop_gradient(_crossing(es, t0, x0_p, p, sw0)),
            sw=sw0,
            locating=jnp.asarray(False),
            crossed=jnp.zeros((es.n + es.n_switch,), bool),
            a=zero,
            b=zero,
            tb=zero,
            ga=zero,
            gb=zero,
            side=jnp.zeros((), jnp.int32),
            x_b=x0,
            queue=queue,
            key=key,
            n_events=n_fired,
        )
    f0 = rhs_at(t0, x0, sw0)
    ys = jnp.where((ts <= t0)[:, None], x0, jnp.zeros((ts.shape[0],) + x0.shape, x0.dtype))

    # Initial step (Hairer & Wanner I, II.4, first estimate).
    scale = atol + rtol * jnp.abs(x0)
    d0, d1 = _rms(x0 / scale), _rms(f0 / scale)
    h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / jnp.maximum(d1, 1e-300))
    h0 = jax.lax.stop_gradient(jnp.minimum(h0, jnp.where(jnp.isfinite(t_end), t_end, h0)))

    # With outputs, the steady-state test starts after the last output time.
    t_last = ts[-1] if ts.shape[0] else t0

    def steady(x, f, t):
        if steady_state is None:
            return jnp.asarray(False)
        ss_rtol, ss_atol = steady_state
        return (_rms(f) < ss_atol + ss_rtol * _rms(x)) & (t >= t_last)

    def cond(s: _State):
        return ~(s.done | s.failed)

    def body(s: _State):
        t_out = jnp.min(jnp.where(ts > s.t, ts, jnp.inf), initial=jnp.inf)
        target = jnp.minimum(t_out, t_end)
        if es is not None:
            q_times = jax.lax.stop_gradient(s.ev.queue.time)
            t_q = jnp.min(jnp.where(s.ev.queue.active & (q_times > s.t), q_times, jnp.inf))
            target = jnp.minimum(target, t_q)
        land = s.h >= target - s.t
        h = jnp.where(land, target - s.t, s.h)
        t_new = jnp.where(land, target, s.t + h)
        sw = s.ev.sw if es is not None else sw0
        if es is not None:
            e = s.ev
            width = e.b - e.a
            denom = e.gb - e.ga
            secant = e.b - e.gb * width / jnp.where(denom > 0, denom, 1.0)
            use_secant = (denom > 0) & (secant > e.a) & (secant < e.b)
            # The trial sizes carry no tangent (as the controller's step sizes).
            h_loc = jax.lax.stop_gradient(jnp.where(use_secant, secant, e.a + 0.5 * width))
            h = jnp.where(e.locating, h_loc, h)
            t_new = jnp.where(e.locating, s.t + h_loc, t_new)
        x_new, err_vec = rodas5.step(lambda tt, xx, _: rhs_at(tt, xx, sw), s.t, s.x, p, h, s.f, structure)
        x_new_p = jax.lax.stop_gradient(x_new)
        x_p = jax.lax.stop_gradient(s.x)
        sc = atol + rtol * jnp.maximum(jnp.abs(x_p), jnp.abs(x_new_p))
        err = _rms(jax.lax.stop_gradient(err_vec) / sc)
        err = jnp.where(jnp.isfinite(err) & jnp.all(jnp.isfinite(x_new_p)), err, jnp.inf)
        accept = err <= 1.0
        fac = jnp.clip(
            rodas5.SAFETY * jnp.power(jnp.maximum(err, 1e-300), -1.0 / rodas5.ORDER),
            rodas5.FAC_MIN,
            rodas5.FAC_MAX,
        )
        fac = jnp.where(accept, fac, jnp.minimum(fac, 1.0))
        h_next = jnp.where(accept & land, jnp.maximum(h * fac, s.h), h * fac)
        f_new = rhs_at(t_new, x_new, sw)
        n_steps = s.n_steps + 1

        if es is None:
            x = jnp.where(accept, x_new, s.x)
            f = jnp.where(accept, f_new, s.f)
            t = jnp.where(accept, t_new, s.t)
            hit = accept & (ts > s.t) & (ts <= t_new)
            ys_new = jnp.where(hit[:, None], x_new, s.ys)
            n_rejected = s.n_rejected + jnp.where(accept, 0, 1)
            blown = accept & jnp.any(~(jnp.abs(x_new_p) <= blowup_threshold))
            done = accept & ((t_new >= t_end) | steady(x_new_p, jax.lax.stop_gradient(f_new), t_new))
            underflow = h_next <= 1e-14 * jnp.maximum(jnp.abs(t), 1.0)
            failed = blown | (~done & ((n_steps >= max_steps) | underflow))
            return _State(
                t,
                x,
                f,
                jax.lax.stop_gradient(h_next),
                ys_new,
                n_steps,
                n_rejected,
                done & ~blown,
                failed,
                None,
            )
        return _event_body(s, h, t_new, x_new, x_new_p, f_new, accept, h_next, n_steps)

    def _event_body(s, h, t_new, x_new, x_new_p, f_new, accept, h_next, n_steps):
        e = s.ev
        trig_try = es.triggered(t_new, x_new_p, p)
        sw_try = es.switch_value(t_new, x_new_p, p) if es.n_switch else e.sw
        crossed_try = jnp.concatenate([trig_try & ~e.trig, sw_try != e.sw])
        g_try = jax.lax.stop_gradient(_crossing(es, t_new, x_new_p, p, e.sw))
        normal_ok = ~e.locating & accept
        start = normal_ok & jnp.any(crossed_try)
        plain = normal_ok & ~jnp.any(crossed_try)

        # The bracket: started by this step, or narrowed by this trial.
        hit = jnp.any(crossed_try & e.crossed)
        g = jnp.max(jnp.where(e.crossed, g_try, -jnp.inf), initial=-jnp.inf)
        a = jnp.where(start, 0.0, jnp.where(hit, e.a, h))
        b = jnp.where(start | hit, h, e.b)
        tb = jnp.where(start | hit, t_new, e.tb)
        ga_start = jnp.minimum(jnp.max(jnp.where(crossed_try, e.root, -jnp.inf), initial=-jnp.inf), 0.0)
        gb_start = jnp.maximum(jnp.max(jnp.where(crossed_try, g_try, -jnp.inf), initial=-jnp.inf), 0.0)
        ga_hit = jnp.where(e.side == 1, 0.5 * e.ga, e.ga)
        gb_miss = jnp.where(e.side == -1, 0.5 * e.gb, e.gb)
        ga = jnp.where(start, ga_start, jnp.where(hit, ga_hit, jnp.minimum(g, 0.0)))
        gb = jnp.where(start, gb_start, jnp.where(hit, jnp.maximum(g, 0.0), gb_miss))
        side = jnp.where(start, 0, jnp.where(hit, 1, -1)).astype(jnp.int32)
        crossed = jnp.where(start, crossed_try, e.crossed)
        x_b = jnp.where(start | hit, x_new, e.x_b)
        bracketing = start | e.locating
        converged = (b - a <= event_tol * jnp.maximum(1.0, jnp.abs(tb))) | (gb <= 0.0)
        fire_loc = bracketing & converged
        fire_queue = plain & jnp.any(ev.due(e.queue, t_new))
        fire = fire_loc | fire_queue

        # The crossing time with its tangent (implicit function theorem on the located
        # crossing function, or the queued execution time), and the state there.
        t_star = jnp.where(fire_loc, tb, t_new)
        x_star = jnp.where(fire_loc, x_b, x_new)
        f_star = rhs_at(t_star, x_star, e.sw)  # the dynamics before the crossing
        x_star_p = jax.lax.stop_gradient(x_star)
        i_cross = jnp.argmax(jnp.where(crossed, _crossing(es, t_star, x_star_p, p, e.sw), -jnp.inf))

        def crossing_i(tt, xx):
            return _crossing(es, tt, xx, p, e.sw)[i_cross]

        g_val = crossing_i(t_star, x_star)
        _, g_dot = jax.jvp(
            crossing_i, (t_star, x_star_p), (jnp.ones_like(t_star), jax.lax.stop_gradient(f_star))
        )
        g_dot = jax.lax.stop_gradient(g_dot)
        usable = jnp.abs(g_dot) > 1e-300
        dt_loc = -(g_val - jax.lax.stop_gradient(g_val)) / jnp.where(usable, g_dot, 1.0)
        t_e = jnp.where(fire_loc, t_star + jnp.where(usable, dt_loc, 0.0), t_star)
        if es.n:
            first_due = jnp.argmax(ev.due(e.queue, t_star))
            t_e = jnp.where(fire_queue & ~fire_loc, e.queue.time[first_due], t_e)
        delta = t_e - jax.lax.stop_gradient(t_e)  # zero, with the crossing time's tangent
        x_e = x_star + f_star * delta
        if es.n:
            x_post, trig_post, queue_post, key, n_fired, cascade_failed = ev.execute(
                es, t_e, x_e, p, e.trig, e.queue, e.key, active=fire
            )
            cascade_failed = fire & cascade_failed
        else:
            x_post, trig_post, queue_post, key = x_e, trig_try, e.queue, e.key
            n_fired, cascade_failed = jnp.zeros((), jnp.int32), jnp.asarray(False)
        x_post_p = jax.lax.stop_gradient(x_post)
        sw_post = es.switch_value(t_star, x_post_p, p) if es.n_switch else e.sw
        x_post = x_post - rhs_at(t_star, x_post, sw_post) * delta
        f_post = rhs_at(t_star, x_post, sw_post)  # with the corrected state's tangent

        advance = fire | plain
        t = jnp.where(fire, t_star, jnp.where(plain, t_new, s.t))
        x = jnp.where(fire, x_post, jnp.where(plain, x_new, s.x))
        f = jnp.where(fire, f_post, jnp.where(plain, f_new, s.f))
        sw_next = jnp.where(fire, sw_post, e.sw)
        x_p = jax.lax.stop_gradient(x)
        hit_out = advance & (ts > s.t) & (ts <= t)
        ys_new = jnp.where(hit_out[:, None], x, s.ys)
        trig = jnp.where(fire, trig_post, jnp.where(plain, trig_try, e.trig))
        queue = _select(fire, queue_post, _select(plain, ev.cancel(es, e.queue, trig_try), e.queue))
        root_post = jax.lax.stop_gradient(_crossing(es, t_star, x_post_p, p, sw_post))
        new_ev = _Events(
            trig=trig,
            root=jnp.where(fire, root_post, jnp.where(plain, g_try, e.root)),
            sw=sw_next,
            locating=bracketing & ~converged,
            crossed=crossed,
            a=a,
            b=b,
            tb=tb,
            ga=ga,
            gb=gb,
            side=side,
            x_b=x_b,
            queue=queue,
            key=jnp.where(fire, key, e.key),
            n_events=e.n_events + jnp.where(fire, n_fired, 0),
        )
        # Step size: the controller's after a normal step; while locating, and after the
        # located crossing, the size the crossing step was taken with.
        h_keep = jnp.where(~e.locating & ~start, h_next, s.h)
        n_rejected = s.n_rejected + jnp.where(~e.locating & ~accept, 1, 0)
        blown = advance & jnp.any(~(jnp.abs(x_p) <= blowup_threshold))
        done = advance & ((t >= t_end) | steady(x_p, jax.lax.stop_gradient(f), t))
        underflow = ~e.locating & ~accept & (h_next <= 1e-14 * jnp.maximum(jnp.abs(s.t), 1.0))
        failed = blown | cascade_failed | (~done & ((n_steps >= max_steps) | underflow))
        return _State(
            t, x, f, jax.lax.stop_gradient(h_keep), ys_new, n_steps, n_rejected, done & ~blown, failed, new_ev
        )

    init = _State(
        t=t0,
        x=x0,
        f=f0,
        h=h0,
        ys=ys,
        n_steps=jnp.zeros((), jnp.int32),
        n_rejected=jnp.zeros((), jnp.int32),
        done=((t_end <= t0) | steady(x0, f0, t0)) & ~failed0,
        failed=failed0,
        ev=ev0,
    )
    s = jax.lax.while_loop(cond, body, init)
    n_events = s.ev.n_events if s.ev is not None else jnp.zeros((), jnp.int32)
    return Solution(s.ys, s.x, s.t, s.n_steps, s.n_rejected, s.done & ~s.failed, n_events)


def _crossing(es: ev.EventSystem, t, x, p, sw):
    """The crossing functions at ``(t, x)``: event roots, then switch leave functions.

    Positive means "crossed": an event's trigger holds, a switch's value differs from
    the held ``sw``.
    """
    parts = [es.root(t, x, p)] if es.n else []
    if es.n_switch:
        parts.append(es.leave(es.switch_root(t, x, p), sw))
    return jnp.concatenate(parts) if parts else jnp.zeros((0,))
