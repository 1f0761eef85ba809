"""Rodas5, a Rosenbrock method, in pure JAX: the tableau and one step.

Why: diffrax's implicit Runge-Kutta (Kvaerno5 + Newton) pays, per step, several Newton
iterations on six implicit stages, each with a fresh Jacobian and a full linear solve. A
Rosenbrock method needs one Jacobian and one LU factorisation per step and then only
back-substitutions: on the small, stiff ODEs of systems biology (tens of states) that
per-step overhead is what the time goes into (see benchmarks/bench_objective.py and the
README's measured figures).

The method is Rodas5 (Di Marzo 1993; Hairer & Wanner, *Solving ODEs II*, VI.4): order 5,
stiffly accurate, L-stable, eight stages, the last stage's increment is the local error
estimate of an embedded order-4 solution. Steps are clipped to land exactly on every
output time (no dense output is needed); the step size follows the standard controller
``h_new = h * clip(0.9 * err^(-1/5), 0.2, 6)`` on the RMS norm of the error scaled by
``atol + rtol * max(|x_old|, |x_new|)``.

The integration loop around the step (step-size control, output times, events,
steady state) is :mod:`pe_bench.solvers.integrate`; the per-step linear algebra
(unrolled inverse, LU or banded LU by size) is :mod:`pe_bench.solvers.linalg`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import linalg

# Rodas5 in the W-transformed form (the ``a``, ``C``, ``d`` coefficients of Hairer's RODAS
# code family): stage i solves (I / (h gamma) - J) k_i = f(t + c_i h, u_i) + d_i h f_t
# + sum_j C_ij / h k_j, with u_i = x + sum_j a_ij k_j; stages 7 and 8 update u in place.
GAMMA = 0.19
_A = (
    (),
    (2.0,),
    (3.040894194418781, 1.041747909077569),
    (2.576417536461461, 1.622083060776640, -0.9089668560264532),
    (2.760842080225597, 1.446624659844071, -0.3036980084553738, 0.2877498600325443),
    (-14.09640773051259, 6.925207756232704, -41.47510893210728, 2.343771018586405, 24.13215229196062),
)
_C = (
    (),
    (-10.31323885133993,),
    (-21.04823117650003, -7.234992135176716),
    (32.22751541853323, -4.943732386540191, 19.44922031041879),
    (-20.69865579590063, -8.816374604402768, 1.260436877740897, -0.7495647613787146),
    (-46.22004352711257, -17.49534862857472, -289.6389582892057, 93.60855400400906, 318.3822534212147),
    (34.20013733472935, -14.15535402717690, 57.82335640988400, 25.83362985412365, 1.408950972071624,
     -6.551835421242162),
    (42.57076742291101, -13.80770672017997, 93.98938432427124, 18.77919633714503, -31.58359187223370,
     -6.685968952921985, -5.810979938412932),
)  # fmt: skip
_CT = (0.0, 0.38, 0.3878509998321533, 0.4839718937873840, 0.4570477008819580, 1.0, 1.0, 1.0)
_D = (
    GAMMA,
    -0.1823079225333714636,
    -0.319231832186874912,
    0.3449828624725343,
    -0.377417564392089818,
    0.0,
    0.0,
    0.0,
)
ORDER = 5

# Step-size controller (Hairer & Wanner's defaults for RODAS).
SAFETY = 0.9
FAC_MIN = 0.2
FAC_MAX = 6.0


def step(rhs: Callable, t, x, p, h, f0, structure: linalg.Structure):
    """One Rodas5 step of size ``h`` from ``(t, x)`` with ``f0 = rhs(t, x, p)``.

    Args:
        rhs: the vector field ``rhs(t, x, p)``.
        t: time.
        x: state.
        p: parameters.
        h: step size.
        f0: ``rhs(t, x, p)``.
        structure: how the step's linear systems are solved (:mod:`.linalg`).

    Returns:
        ``(x_new, err)`` where ``err`` is the local error estimate (unscaled).
    """
    f_t, jac_x = linalg.jacobian(structure, lambda tt, xx: rhs(tt, xx, p), t, x)
    w = linalg.shifted(structure, jac_x, 1.0 / (h * GAMMA))
    fac = linalg.factor(structure, jax.lax.stop_gradient(w))
    if structure.stage_loop:
        return _looped_stages(rhs, t, x, p, h, f0, f_t, w, fac, structure)
    ks = []
    u = x
    for i in range(8):
        if 1 <= i <= 5:
            u = x + sum(a * k for a, k in zip(_A[i], ks, strict=True))
        elif i >= 6:
            u = u + ks[-1]
        fi = f0 if i == 0 else rhs(t + _CT[i] * h, u, p)
        r = fi + sum(c / h * k for c, k in zip(_C[i], ks, strict=True)) if i else fi
        if _D[i]:
            r = r + (_D[i] * h) * f_t
        ks.append(linalg.solve(structure, w, fac, r))
    return u + ks[-1], ks[-1]


def _stage_coefficients() -> tuple[np.ndarray, np.ndarray]:
    """The stage coefficient rows ``alpha`` and ``C`` (8 x 8) and the new state's row.

    ``u_i = x + alpha_i . k``, ``r_i = f_i + C_i . k / h``, ``x_new = x + alpha_out . k``.
    """
    alpha = np.zeros((9, 8))
    for i in range(1, 6):
        alpha[i, : len(_A[i])] = _A[i]
    for i in (6, 7, 8):  # stages 7 and 8 and the result update u in place
        alpha[i] = alpha[i - 1]
        alpha[i, i - 1] += 1.0
    c = np.zeros((8, 8))
    for i in range(1, 8):
        c[i, : len(_C[i])] = _C[i]
    return alpha, c


_ALPHA, _CMAT = _stage_coefficients()


def _looped_stages(rhs, t, x, p, h, f0, f_t, w, fac, structure):
    """The eight stages as one ``fori_loop``: the right-hand side traced once, not eight times.

    For large models, where XLA's compile time grows with the traced program.
    """
    alpha, cmat = jnp.asarray(_ALPHA, x.dtype), jnp.asarray(_CMAT, x.dtype)
    ct, d = jnp.asarray(_CT, x.dtype), jnp.asarray(_D, x.dtype)

    def stage(i, ks):
        u = x + alpha[i] @ ks
        fi = jnp.where(i == 0, f0, rhs(t + ct[i] * h, u, p))
        r = fi + (cmat[i] @ ks) / h + (d[i] * h) * f_t
        return ks.at[i].set(linalg.solve(structure, w, fac, r))

    ks = jax.lax.fori_loop(0, 8, stage, jnp.zeros((8,) + x.shape, x.dtype))
    return x + alpha[8] @ ks, ks[7]
