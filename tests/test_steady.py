"""Steady-state sensitivities by the implicit function theorem against an analytic solution."""

import jax
import jax.numpy as jnp
import numpy as np

from pe_bench.solvers.steady import implicit_tangent


def rhs(t, x, p):
    # x1 <-> x2 (k1, k2) conserves x1 + x2; x3 is made at rate v and decays at rate k3.
    k1, k2, k3, v, _ = p
    return jnp.array([-k1 * x[0] + k2 * x[1], k1 * x[0] - k2 * x[1], v - k3 * x[2]])


def x_start(p):
    return jnp.array([p[4], 0.0, 0.0])  # p[4]: the conserved total


def exact_steady_state(p):
    k1, k2, k3, v, total = p
    return jnp.array([total * k2 / (k1 + k2), total * k1 / (k1 + k2), v / k3])


def simulated_end_point(p):
    """The exact steady state's value with the tangent of an unconverged simulation: that of
    the start, right along the conserved total and wrong in every other direction."""
    return exact_steady_state(jax.lax.stop_gradient(p)) + x_start(p) - jax.lax.stop_gradient(x_start(p))


def through_implicit_tangent(p):
    return implicit_tangent(rhs, 0.0, simulated_end_point(p), p)


P = jnp.array([0.7, 1.9, 0.4, 2.5, 3.0])


def test_value_is_untouched():
    np.testing.assert_array_equal(through_implicit_tangent(P), exact_steady_state(P))


def test_forward_and_reverse_tangents_match_the_analytic_jacobian():
    want = jax.jacfwd(exact_steady_state)(P)
    assert not np.allclose(jax.jacfwd(simulated_end_point)(P), want)  # the case being fixed
    np.testing.assert_allclose(jax.jacfwd(through_implicit_tangent)(P), want, atol=1e-12)
    np.testing.assert_allclose(jax.jacrev(through_implicit_tangent)(P), want, atol=1e-12)


def test_batched_parameters():
    ps = P * jnp.array([[1.0], [1.5], [0.5]])
    got = jax.vmap(jax.jacfwd(through_implicit_tangent))(ps)
    want = jax.vmap(jax.jacfwd(exact_steady_state))(ps)
    np.testing.assert_allclose(got, want, atol=1e-12)
