"""Events and discontinuities: values against closed forms, sensitivities against closed-form
derivatives and central finite differences, jit / vmap of simulations with events."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sbml_builders as sb

from pe_bench.objective import Objective
from pe_bench.problems.petab_io import load_petab
from pe_bench.problems.sbml_only import load_sbml_problem
from pe_bench.simulate import make_simulator

TIMES = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0]


def _decay_model(initial=1.0):
    doc, m = sb.new_model()
    sb.compartment(m, "C", 1.0)
    sb.species(m, "x", "C", conc=initial)
    sb.parameter(m, "k", 0.8)
    sb.reaction(m, "decay", ["x"], [], "k * x")
    return doc, m


def _problem(tmp_path, doc, parameters, truth):
    meas = [("obs_x", t, float(truth(t)) + 0.01) for t in TIMES]
    yaml = sb.petab_problem(tmp_path / "p", doc, parameters, {"obs_x": "x"}, meas)
    return Objective(load_petab(yaml))


def _sensitivities(objective, x):
    """d y / d x at the measurements (forward mode through the solver)."""
    return np.asarray(jax.jacfwd(lambda v: objective.simulator(v)["y"])(jnp.asarray(x)))


def _central_differences(objective, x, h=1e-5):
    grads = []
    for i in range(len(x)):
        e = np.zeros(len(x))
        e[i] = h
        plus = np.asarray(objective.simulate(x + e)["y"])
        minus = np.asarray(objective.simulate(x - e)["y"])
        grads.append((plus - minus) / (2 * h))
    return np.stack(grads, axis=1)


def _nllh_central_differences(objective, x, h=1e-5):
    g = np.zeros(len(x))
    for i in range(len(x)):
        e = np.zeros(len(x))
        e[i] = h
        g[i] = (objective(x + e) - objective(x - e)) / (2 * h)
    return g


def test_time_triggered_bolus_at_a_parameter_time(tmp_path):
    # x' = -k x, x(0) = 1; at t = tau, x += d. The event time is a parameter: the
    # sensitivity to tau comes only from the jump conditions.
    k, tau, d = 0.8, 1.3, 0.7
    doc, m = _decay_model()
    sb.parameter(m, "tau", tau)
    sb.parameter(m, "d", d)
    sb.event(m, "bolus", "time >= tau", "x", "x + d")

    def truth(t, k=k, tau=tau, d=d):
        return np.exp(-k * t) + (d * np.exp(-k * (t - tau)) if t >= tau else 0.0)

    params = {"k": (k, 0.1, 5, "lin"), "tau": (tau, 0.1, 4, "lin"), "d": (d, 0, 5, "lin")}
    obj = _problem(tmp_path, doc, params, truth)
    x = obj.problem.x_nominal
    y = obj.simulate(x)["y"]
    ts = np.array(TIMES)
    np.testing.assert_allclose(y, [truth(t) for t in ts], rtol=1e-8)
    # Closed-form derivatives: d/dk, d/dtau = d k e^{-k(t - tau)} after tau, d/dd.
    after = ts >= tau
    dk = -ts * np.exp(-k * ts) - np.where(after, d * (ts - tau) * np.exp(-k * (ts - tau)), 0)
    dtau = np.where(after, d * k * np.exp(-k * (ts - tau)), 0)
    dd = np.where(after, np.exp(-k * (ts - tau)), 0)
    sens = _sensitivities(obj, x)
    np.testing.assert_allclose(sens, np.stack([dk, dtau, dd], axis=1), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(sens, _central_differences(obj, x), rtol=1e-4, atol=1e-7)


def test_state_triggered_event_fires_repeatedly_with_exact_sensitivities(tmp_path):
    # x' = -k x from 1; whenever x falls below c, x += d. Crossing times
    # tau_1 = ln(1/c) / k, then every ln((c + d) / c) / k: they move with k, c and d.
    k, c, d = 0.9, 0.4, 0.3
    doc, m = _decay_model()
    sb.parameter(m, "c", c)
    sb.parameter(m, "d", d)
    sb.event(m, "refill", "x < c", "x", "x + d", initial_value=True)

    def truth(t, k=k, c=c, d=d):
        tau = np.log(1 / c) / k
        if t < tau:
            return np.exp(-k * t)
        period = np.log((c + d) / c) / k
        s = (t - tau) % period
        return (c + d) * np.exp(-k * s)

    params = {"k": (k, 0.1, 5, "lin"), "c": (c, 0.01, 0.9, "lin"), "d": (d, 0, 5, "lin")}
    obj = _problem(tmp_path, doc, params, truth)
    x = obj.problem.x_nominal
    y = obj.simulate(x)["y"]
    np.testing.assert_allclose(y, [truth(t) for t in TIMES], rtol=1e-7)
    fd = np.stack(
        [
            [(truth(t, **{n: v + 1e-6}) - truth(t, **{n: v - 1e-6})) / 2e-6 for t in TIMES]
            for n, v in (("k", k), ("c", c), ("d", d))
        ],
        axis=1,
    )
    sens = _sensitivities(obj, x)
    np.testing.assert_allclose(sens, fd, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(sens, _central_differences(obj, x), rtol=1e-4, atol=1e-7)
    value, grad, status = obj.value_and_grad(x)
    assert status == 0
    np.testing.assert_allclose(grad, _nllh_central_differences(obj, x), rtol=1e-4, atol=1e-6)


def test_delayed_event_with_a_parameter_delay(tmp_path):
    # At t = 1 the event triggers; D later x is multiplied by r (values at execution time).
    k, delay, r = 0.8, 0.9, 2.5
    doc, m = _decay_model()
    sb.parameter(m, "D", delay)
    sb.parameter(m, "r", r)
    sb.event(m, "late", "time >= 1", "x", "r * x", delay="D", use_trigger_values=False)

    def truth(t, k=k, delay=delay, r=r):
        return np.exp(-k * t) * (r if t >= 1 + delay else 1.0)

    params = {"k": (k, 0.1, 5, "lin"), "D": (delay, 0.1, 3, "lin"), "r": (r, 0.1, 5, "lin")}
    obj = _problem(tmp_path, doc, params, truth)
    x = obj.problem.x_nominal
    np.testing.assert_allclose(obj.simulate(x)["y"], [truth(t) for t in TIMES], rtol=1e-8)
    sens = _sensitivities(obj, x)
    np.testing.assert_allclose(sens, _central_differences(obj, x), rtol=1e-4, atol=1e-7)
    # d/dD after the execution: the jump (r - 1) e^{-k tau} moves with tau = 1 + D:
    # x(t) = r e^{-kt} there, independent of D, while before it it is e^{-kt}: zero.
    assert np.allclose(sens[:, 1], 0.0, atol=1e-8)


def test_discontinuous_rate_is_switched_exactly_with_sensitivities(tmp_path):
    # x' = -a while x > c, then -b: the switch time (x0 - c) / a moves with a and c.
    a, b, c = 0.5, 0.1, 0.6
    doc, m = sb.new_model()
    sb.compartment(m, "C", 1.0)
    sb.species(m, "x", "C", conc=1.5)
    for pid, v in (("a", a), ("b", b), ("c", c)):
        sb.parameter(m, pid, v)
    sb.reaction(m, "out", ["x"], [], "piecewise(a, x > c, b)")

    def truth(t, a=a, b=b, c=c):
        t1 = (1.5 - c) / a
        return 1.5 - a * t if t < t1 else c - b * (t - t1)

    params = {"a": (a, 0.1, 2, "lin"), "b": (b, 0.01, 1, "lin"), "c": (c, 0.1, 1, "lin")}
    obj = _problem(tmp_path, doc, params, truth)
    x = obj.problem.x_nominal
    np.testing.assert_allclose(obj.simulate(x)["y"], [truth(t) for t in TIMES], rtol=1e-9, atol=1e-12)
    ts = np.array(TIMES)
    t1 = (1.5 - c) / a
    after = ts >= t1
    # After the switch x = c - b (t - (1.5 - c) / a): d/da = -b (1.5 - c) / a^2, d/db = -(t - t1),
    # d/dc = 1 - b / a; before it x = 1.5 - a t.
    exact = np.stack(
        [
            np.where(after, -b * (1.5 - c) / a**2, -ts),
            np.where(after, -(ts - t1), 0.0),
            np.where(after, 1 - b / a, 0.0),
        ],
        axis=1,
    )
    np.testing.assert_allclose(_sensitivities(obj, x), exact, rtol=1e-7, atol=1e-10)


def test_priorities_order_simultaneous_events(tmp_path):
    # Both fire at t = 1: y = 1 then y = 3 y with E1 first; y = 0 * 3 then 1 the other way.
    # (E2 computes its value when it executes; with trigger-time values it would be 0.)
    def simulate(p1, p2):
        doc, m = sb.new_model()
        sb.compartment(m, "C", 1.0)
        sb.parameter(m, "y", 0.0, constant=False)
        sb.event(m, "E1", "time >= 1", "y", "1", priority=str(p1))
        sb.event(m, "E2", "time >= 1", "y", "3 * y", priority=str(p2), use_trigger_values=False)
        path = sb.write(doc, tmp_path / f"prio{p1}{p2}.xml")
        pb = load_sbml_problem(path, times=[0.0, 0.5, 1.5], outputs=[("y", None)])
        return np.asarray(jax.jit(make_simulator(pb))(jnp.zeros(0))["y"])

    np.testing.assert_allclose(simulate(2, 1), [0, 0, 3])
    np.testing.assert_allclose(simulate(1, 2), [0, 0, 1])


def test_event_at_start_and_trigger_time_values(tmp_path):
    # initialValue false and a trigger true at t = 0: fires at 0. The delayed event uses
    # the values of its trigger time (y = x at t = 1, executed at t = 2).
    doc, m = _decay_model()
    sb.parameter(m, "y", -1.0, constant=False)
    sb.event(m, "start", "time >= 0", "x", "2")
    sb.event(m, "snap", "time >= 1", "y", "x", delay="1", use_trigger_values=True)
    path = sb.write(doc, tmp_path / "start.xml")
    pb = load_sbml_problem(path, times=[0.0, 1.5, 2.5], outputs=[("x", None), ("y", None)])
    y = np.asarray(jax.jit(make_simulator(pb))(jnp.zeros(0))["y"]).reshape(3, 2)
    np.testing.assert_allclose(y[:, 0], 2 * np.exp(-0.8 * np.array([0.0, 1.5, 2.5])), rtol=1e-9)
    np.testing.assert_allclose(y[:, 1], [-1.0, -1.0, 2 * np.exp(-0.8)], rtol=1e-9)


@pytest.mark.parametrize("n_lanes", [1, 4])
def test_vmapped_simulations_with_events_equal_single_ones(tmp_path, n_lanes):
    doc, m = _decay_model()
    sb.parameter(m, "c", 0.4)
    sb.parameter(m, "d", 0.3)
    sb.event(m, "refill", "x < c", "x", "x + d", initial_value=True)
    params = {"k": (0.9, 0.1, 5, "lin"), "c": (0.4, 0.01, 0.9, "lin"), "d": (0.3, 0, 5, "lin")}
    obj = _problem(tmp_path, doc, params, lambda t: 0.0)
    rng = np.random.default_rng(1)
    xs = obj.problem.x_nominal * np.exp(rng.normal(0, 0.2, (n_lanes, 3)))
    values, statuses = obj.batch(xs)
    assert (statuses == 0).all()
    np.testing.assert_allclose(values, [obj(x) for x in xs], rtol=1e-12)
