"""Sensitivities of a steady state by the implicit function theorem.

A steady state reached by simulation (pre-equilibration, PEtab ``time = inf``) is
accepted once ``||dx/dt||`` is below the steady-state tolerance. The forward tangent of
that end point is the tangent of the simulated trajectory at the stopping time, and the
sensitivities converge more slowly than the state whenever the start lies near the
steady state but the parameter direction excites a slow mode: on Weber_BMC2015 at its
nominal parameters the state met the criterion while its sensitivities were still 40 %
away from their limit (gradient components of -0.0306 instead of the -0.0215 that
central differences and AMICI give).

At a steady state ``f(x_ss, p) = 0``, so ``J dx_ss = -f_p dp`` (``J = df/dx``). With
conservation laws ``J`` is singular: its left null vectors ``w`` (``w^T J = 0``) span
quantities ``w^T x`` that the dynamics keep constant, so their tangents are those the
simulation carried (from the initial state, and through any event that reset them),
which a Rosenbrock or ESDIRK step preserves exactly. The tangent is the solution of::

    [ J ]          [ -f_p dp    ]
    [ C ] dx_ss =  [ C dx_sim   ]

(``C``: the left singular vectors of ``J`` with singular values below ``RCOND`` times
the largest), solved in the least-squares sense with the pseudo-inverse. AMICI does the
same with its Newton solver's steady-state sensitivities (``dx/dp = -J^{-1} f_p``), and
falls back to simulated sensitivities where ``J`` is singular; here the conserved
directions keep the simulated tangent and the others are solved for.

The value is untouched (the custom rule returns ``x_ss`` itself), so this changes
derivatives only; it is linear in the tangents, so it also transposes for reverse mode.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp

#: Singular values of ``J`` below ``RCOND`` times the largest are conservation laws.
#: Those of moiety conservation are at rounding level (1e-16 relative); the slowest
#: genuine modes of the shared problems' pre-equilibrations are above 1e-8 relative.
RCOND = 1e-10


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def implicit_tangent(rhs: Callable, t, x_ss, p):
    """``x_ss`` unchanged, with the steady state's tangent of the implicit function theorem.

    Args:
        rhs: the vector field ``rhs(t, x, p)``.
        t: the time the steady state was reached (no tangent is taken).
        x_ss: the simulated steady state (n_x,), with its simulated tangent.
        p: the parameters (n_p,).

    Returns:
        ``x_ss``.
    """
    return x_ss


@implicit_tangent.defjvp
def _implicit_tangent_jvp(rhs, primals, tangents):
    t, x_ss, p = primals
    _, x_dot, p_dot = tangents
    t = jax.lax.stop_gradient(t)
    x_ss_p = jax.lax.stop_gradient(x_ss)
    p_p = jax.lax.stop_gradient(p)
    n = x_ss.shape[0]
    if n == 0:
        return x_ss, x_dot
    jac = jax.jacfwd(lambda x: rhs(t, x, p_p))(x_ss_p)
    _, fp_dot = jax.jvp(lambda pp: rhs(t, x_ss_p, pp), (p_p,), (p_dot,))
    u, s, _ = jnp.linalg.svd(jac)
    conserved = s <= RCOND * jnp.maximum(s[0], 1e-300)
    c = jnp.where(conserved[:, None], u.T, 0.0)
    a = jnp.concatenate([jac, c], axis=0)
    a_pinv = jnp.linalg.pinv(a)
    rhs_vec = jnp.concatenate([-fp_dot, c @ x_dot])
    return x_ss, a_pinv @ rhs_vec
