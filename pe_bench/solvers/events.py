"""SBML events inside the integration loop: what fires, in which order, with which values.

An :class:`EventSystem` holds the compiled functions of a model's events (triggers, their
root functions, assignments, delays, priorities) and the static flags (initialValue,
persistent, useValuesFromTriggerTime). :func:`execute` runs every event due at one
instant, as SBML Level 3 (section 4.12.7, "Semantics of events") says:

1. every event whose trigger just turned true is queued for ``t + delay`` (``t``
   without a delay), with its assignment values at ``t`` (used at execution if
   ``useValuesFromTriggerTime``);
2. of the executions due now, the one of highest priority runs (ties, and events
   without a priority, are broken at random: SBML leaves their order open, and the
   suite's RandomEventExecution cases check that no event is always preferred); its
   assignments are all computed from one state before any is applied;
3. triggers are evaluated again: newly true ones are queued, and pending executions of
   non-persistent events whose trigger turned false are dropped;
4. repeat until nothing is due.

Everything is a pure function of arrays (``lax.while_loop``, fixed-size queue), so a
simulation with events stays jit-, vmap- and forward-differentiable. A queue overflow or
an endless cascade is a failure flag, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

#: Events executed at one instant before the cascade counts as endless (a failure).
MAX_CASCADE = 1000


@dataclass(frozen=True, eq=False)
class EventSystem:
    """A model's events as JAX functions of ``(t, x, p)`` and static flags.

    Attributes:
        trigger: ``(t, x, p) -> (n_ev,)`` trigger values (> 0.5 is true).
        root: ``(t, x, p) -> (n_ev,)`` continuous functions that are positive where
            the trigger holds (relations ``a > b`` become ``a - b``, ``and`` the
            minimum, ``or`` the maximum): what the event time is located on.
        assign: ``(t, x, p) -> (n_ev, k)`` assignment values, padded.
        scale: ``(t, x, p) -> (n_ev, k)`` factors applied to the values, evaluated
            after the event's assignments (compartment sizes for species in
            concentration that are simulated as amounts).
        target: (n_ev, k) state index of each assignment; ``n_x`` for padding (dropped).
        delay: ``(t, x, p) -> (n_ev,)`` delays (0 where an event has none).
        priority: ``(t, x, p) -> (n_ev,)`` priorities (-inf where an event has none).
        has_delay, initial_value, persistent, use_trigger_values: (n_ev,) booleans.
        queue_size: how many delayed executions can be pending at once.
        switched_rhs: ``(t, x, p, sw) -> dx/dt`` with the right-hand side's
            discontinuities as switch values ``sw`` (see
            :func:`pe_bench.model.codegen.extract_switches`), or None when it has none.
        switch_value: ``(t, x, p) -> (n_sw,)`` each switch's actual value (a condition's
            1 or 0, a floor's or ceiling's value).
        switch_root: ``(t, x, p) -> (n_sw,)`` what a switch's crossing is located on: a
            condition's root function, the argument of a floor or ceiling.
        switch_kind: (n_sw,) 0 condition, 1 floor, 2 ceiling.
    """

    trigger: Callable
    root: Callable
    assign: Callable
    scale: Callable
    target: np.ndarray
    delay: Callable
    priority: Callable
    has_delay: np.ndarray
    initial_value: np.ndarray
    persistent: np.ndarray
    use_trigger_values: np.ndarray
    queue_size: int = 64
    switched_rhs: Callable | None = None
    switch_value: Callable | None = None
    switch_root: Callable | None = None
    switch_kind: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))

    @property
    def n(self) -> int:
        """Number of events."""
        return len(self.has_delay)

    @property
    def n_switch(self) -> int:
        """Number of switches (discontinuities of the right-hand side)."""
        return len(self.switch_kind)

    def leave(self, root, value):
        """Per switch: >= 0 where its actual value differs from ``value`` (its held one).

        A condition held true is left where its root function turns <= 0 (false: >= 0);
        a floor held at v is left outside [v, v + 1], a ceiling outside [v - 1, v].
        """
        kind = jnp.asarray(self.switch_kind)
        cond = jnp.where(value > 0.5, -root, root)
        floor = jnp.maximum(value - root, root - value - 1.0)
        ceil = jnp.maximum(value - 1.0 - root, root - value)
        return jnp.where(kind == 0, cond, jnp.where(kind == 1, floor, ceil))

    def triggered(self, t, x, p):
        """Boolean trigger values at ``(t, x)``."""
        return self.trigger(t, x, p) > 0.5


class Queue(NamedTuple):
    """Pending delayed executions (fixed size)."""

    time: jax.Array  #: (Q,) execution times (carry tangents: delays depend on parameters)
    event: jax.Array  #: (Q,) event index
    values: jax.Array  #: (Q, k) assignment values computed at trigger time
    active: jax.Array  #: (Q,) slot in use


def empty_queue(es: EventSystem, dtype) -> Queue:
    """A queue with no pending execution."""
    q, k = es.queue_size, es.target.shape[1]
    return Queue(
        time=jnp.full((q,), jnp.inf, dtype),
        event=jnp.zeros((q,), jnp.int32),
        values=jnp.zeros((q, k), dtype),
        active=jnp.zeros((q,), bool),
    )


def push(es: EventSystem, queue: Queue, which, t, x, p) -> tuple[Queue, jax.Array]:
    """Queue the events in the boolean mask ``which``, triggered at time ``t``.

    Each is queued for ``t + delay`` (``t`` without a delay), with its values at ``t``.

    Returns:
        ``(queue, overflow)``; overflow is true when a slot was missing.
    """
    delays = es.delay(t, x, p)
    values = es.assign(t, x, p)
    n_q = es.queue_size
    # The k-th event in ``which`` takes the k-th free slot (vectorised: no loop over events).
    free_slots = jnp.argsort(queue.active, stable=True)  # free slots first, in order
    rank = jnp.cumsum(which) - 1
    n_free = n_q - jnp.sum(queue.active)
    fits = which & (rank < n_free)
    slot = jnp.where(fits, free_slots[jnp.clip(rank, 0, n_q - 1)], n_q)  # n_q: dropped
    overflow = jnp.any(which & ~fits)
    queue = Queue(
        time=queue.time.at[slot].set(t + delays, mode="drop"),
        event=queue.event.at[slot].set(jnp.arange(es.n, dtype=jnp.int32), mode="drop"),
        values=queue.values.at[slot].set(values, mode="drop"),
        active=queue.active.at[slot].set(True, mode="drop"),
    )
    return queue, overflow


def cancel(es: EventSystem, queue: Queue, trig) -> Queue:
    """Drop queued executions of non-persistent events whose trigger is false."""
    if es.n == 0:
        return queue
    drop = ~jnp.asarray(es.persistent)[queue.event] & ~trig[queue.event]
    return queue._replace(active=queue.active & ~drop)


def due(queue: Queue, t) -> jax.Array:
    """Queued executions whose time has come at ``t``."""
    return queue.active & (jax.lax.stop_gradient(queue.time) <= t)


class _Cascade(NamedTuple):
    x: jax.Array
    trig: jax.Array
    queue: Queue
    key: jax.Array
    count: jax.Array
    failed: jax.Array


def execute(es: EventSystem, t, x, p, trig_before, queue: Queue, key, *, active=True):
    """Run every event due at time ``t`` (see the module docstring for the order).

    Every triggering is one queued execution, at ``t`` for an event without delay: the
    same event can be pending several times (its trigger can turn true again while it
    waits for events of higher priority), each with the values of its own trigger time
    when ``useValuesFromTriggerTime`` (SBML Test Suite cases 978 and 1330).

    Args:
        es: the events.
        t: the time (may carry a tangent: the event time's sensitivity).
        x: the state at ``t`` before any event.
        p: parameters.
        trig_before: trigger values just before ``t``; events that are true now and were
            false then fire.
        queue: pending executions (those due at ``t`` run here).
        key: PRNG key for the random order of equal priorities.
        active: if false nothing fires (under ``vmap``, lanes without an event).

    Returns:
        ``(x, trig, queue, key, n_executed, failed)``.
    """
    trig = es.triggered(t, x, p)
    rising = trig & ~trig_before & active
    queue, overflow = push(es, queue, rising, t, x, p)
    t_primal = jax.lax.stop_gradient(t)
    n_q = es.queue_size

    def cond(c: _Cascade):
        return jnp.any(due(c.queue, t_primal) & active) & ~c.failed

    def body(c: _Cascade):
        waiting = due(c.queue, t_primal) & active
        prio = es.priority(t, c.x, p)[c.queue.event]
        cand = jnp.where(waiting, prio, -jnp.inf)
        key, sub = jax.random.split(c.key)
        tie = waiting & (cand == jnp.max(cand))  # -inf == -inf: events without priority tie
        slot = jnp.argmax(jnp.where(tie, jax.random.uniform(sub, (n_q,)), -1.0))
        ev = c.queue.event[slot]
        now = es.assign(t, c.x, p)[ev]
        values = jnp.where(jnp.asarray(es.use_trigger_values)[ev], c.queue.values[slot], now)
        targets = jnp.asarray(es.target)[ev]
        x_tmp = c.x.at[targets].set(values, mode="drop")
        x_new = c.x.at[targets].set(values * es.scale(t, x_tmp, p)[ev], mode="drop")
        q = c.queue._replace(active=c.queue.active.at[slot].set(False))
        trig_new = es.triggered(t, x_new, p)
        q, overflow = push(es, q, trig_new & ~c.trig, t, x_new, p)
        q = cancel(es, q, trig_new)
        count = c.count + 1
        failed = c.failed | overflow | (count >= MAX_CASCADE)
        return _Cascade(x_new, trig_new, q, key, count, failed)

    init = _Cascade(x, trig, cancel(es, queue, trig), key, jnp.zeros((), jnp.int32), overflow)
    out = jax.lax.while_loop(cond, body, init)
    return out.x, out.trig, out.queue, out.key, out.count, out.failed
