"""A lean stiff solver of our own: Rodas5, a Rosenbrock method, in pure JAX.

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

Everything is a pure function of arrays: ``jit``, ``vmap`` and forward-mode ``jvp`` /
``jacfwd`` go through it (the loop is a ``lax.while_loop``; reverse mode cannot, use
diffrax for that). Derivatives are those of the discrete solution with the accepted step
sequence held fixed (the step sizes carry no tangent), and each linear solve reuses the
step's LU factorisation for its tangents. Failures (step budget exhausted, step size
underflow, a state beyond the blow-up threshold or not finite) are returned as a flag,
never raised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

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


@jax.custom_jvp
def _solve(w, w_inv, r):
    """``w^-1 r`` given ``w_inv = w^-1``; tangents reuse the inverse."""
    return w_inv @ r


@_solve.defjvp
def _solve_jvp(primals, tangents):
    w, w_inv, r = primals
    dw, _, dr = tangents
    k = w_inv @ r
    # w k = r  =>  w dk = dr - dw k
    return k, w_inv @ (dr - dw @ k)


def _inverse(a):
    """Inverse of a small square matrix: Gauss-Jordan with partial pivoting, unrolled.

    Whole-row operations on the (n, 2n) augmented matrix, so that under ``vmap`` they
    are elementwise over the batch; XLA fuses them, where ``jnp.linalg.inv`` makes one
    LAPACK call per matrix, whose overhead dominates at the sizes of kinetic models.
    """
    n = a.shape[-1]
    m = jnp.concatenate([a, jnp.eye(n, dtype=a.dtype)], axis=1)
    idx = jnp.arange(n)
    for k in range(n):
        p = jnp.argmax(jnp.where(idx >= k, jnp.abs(m[:, k]), -1.0))
        row_p, row_k = m[p], m[k]
        m = jnp.where((idx == k)[:, None], row_p, jnp.where((idx == p)[:, None], row_k, m))
        row = row_p / row_p[k]
        m = m - jnp.outer(jnp.where(idx == k, 0.0, m[:, k]), row)
        m = m.at[k].set(row)
    return m[:, n:]


def _rms(v):
    return jnp.sqrt(jnp.mean(v * v)) if v.shape[-1] else jnp.asarray(0.0, v.dtype)


def rodas5_step(rhs: Callable, t, x, p, h, f0):
    """One Rodas5 step of size ``h`` from ``(t, x)`` with ``f0 = rhs(t, x, p)``.

    Returns ``(x_new, err)`` where ``err`` is the local error estimate (unscaled).
    """
    n = x.shape[0]

    def f_tx(z):
        return rhs(z[0], z[1:], p)

    jac = jax.jacfwd(f_tx)(jnp.concatenate([jnp.reshape(t, (1,)), x]))
    f_t, jac_x = jac[:, 0], jac[:, 1:]
    w = jnp.eye(n, dtype=x.dtype) / (h * GAMMA) - jac_x
    w_inv = _inverse(jax.lax.stop_gradient(w))
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
        ks.append(_solve(w, w_inv, r))
    return u + ks[-1], ks[-1]


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


class Solution(NamedTuple):
    """What :func:`integrate` returns."""

    ys: jax.Array  #: states at the output times (n_t, n_x)
    x: jax.Array  #: final state
    t: jax.Array  #: final time
    n_steps: jax.Array  #: attempted steps (accepted + rejected)
    n_rejected: jax.Array  #: rejected steps
    ok: jax.Array  #: success flag


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
):
    """Integrate ``dx/dt = rhs(t, x, p)`` from ``t = 0``.

    Args:
        rhs: the vector field ``rhs(t, x, p)``.
        x0: initial state (n_x,).
        p: parameters passed to ``rhs``.
        ts: sorted output times (n_t,) within ``[0, t_end]``; may be empty.
        t_end: end time (``jnp.inf`` with ``steady_state`` to run until steady).
        rtol: relative error tolerance of the step-size controller.
        atol: absolute error tolerance of the step-size controller.
        max_steps: budget of attempted steps (accepted and rejected).
        blowup_threshold: a state whose magnitude exceeds this fails the integration.
        steady_state: ``(rtol, atol)``: stop, successfully, once
            ``rms(dx/dt) < atol + rtol * rms(x)`` (diffrax's ``steady_state_event``).

    Returns:
        A :class:`Solution`.
    """
    x0 = jnp.asarray(x0)
    ts = jnp.asarray(ts, dtype=x0.dtype)
    t_end = jnp.asarray(t_end, dtype=x0.dtype)
    t0 = jnp.zeros((), x0.dtype)
    f0 = rhs(t0, x0, p)
    ys = jnp.where((ts <= t0)[:, None], x0, jnp.zeros((ts.shape[0],) + x0.shape, x0.dtype))

    # Initial step (Hairer & Wanner I, II.4, first estimate).
    scale = atol + rtol * jnp.abs(x0)
    d0, d1 = _rms(x0 / scale), _rms(f0 / scale)
    h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / jnp.maximum(d1, 1e-300))
    h0 = jax.lax.stop_gradient(jnp.minimum(h0, jnp.where(jnp.isfinite(t_end), t_end, h0)))

    def steady(x, f):
        if steady_state is None:
            return jnp.asarray(False)
        ss_rtol, ss_atol = steady_state
        return _rms(f) < ss_atol + ss_rtol * _rms(x)

    def cond(s: _State):
        return ~(s.done | s.failed)

    def body(s: _State):
        t_out = jnp.min(jnp.where(ts > s.t, ts, jnp.inf), initial=jnp.inf)
        target = jnp.minimum(t_out, t_end)
        land = s.h >= target - s.t
        h = jnp.where(land, target - s.t, s.h)
        x_new, err_vec = rodas5_step(rhs, s.t, s.x, p, h, s.f)
        x_new_p = jax.lax.stop_gradient(x_new)
        x_p = jax.lax.stop_gradient(s.x)
        sc = atol + rtol * jnp.maximum(jnp.abs(x_p), jnp.abs(x_new_p))
        err = _rms(jax.lax.stop_gradient(err_vec) / sc)
        err = jnp.where(jnp.isfinite(err) & jnp.all(jnp.isfinite(x_new_p)), err, jnp.inf)
        accept = err <= 1.0
        fac = jnp.clip(SAFETY * jnp.power(jnp.maximum(err, 1e-300), -1.0 / ORDER), FAC_MIN, FAC_MAX)
        fac = jnp.where(accept, fac, jnp.minimum(fac, 1.0))
        h_next = jnp.where(accept & land, jnp.maximum(h * fac, s.h), h * fac)
        t_new = jnp.where(land, target, s.t + h)

        f_new = rhs(t_new, x_new, p)
        x = jnp.where(accept, x_new, s.x)
        f = jnp.where(accept, f_new, s.f)
        t = jnp.where(accept, t_new, s.t)
        hit = accept & (ts > s.t) & (ts <= t_new)
        ys_new = jnp.where(hit[:, None], x_new, s.ys)
        n_steps = s.n_steps + 1
        n_rejected = s.n_rejected + jnp.where(accept, 0, 1)

        blown = accept & jnp.any(~(jnp.abs(x_new_p) <= blowup_threshold))
        done = accept & ((t_new >= t_end) | steady(x_new_p, jax.lax.stop_gradient(f_new)))
        underflow = h_next <= 1e-14 * jnp.maximum(jnp.abs(t), 1.0)
        failed = blown | (~done & ((n_steps >= max_steps) | underflow))
        return _State(
            t, x, f, jax.lax.stop_gradient(h_next), ys_new, n_steps, n_rejected, done & ~blown, failed
        )

    init = _State(
        t=t0,
        x=x0,
        f=f0,
        h=h0,
        ys=ys,
        n_steps=jnp.zeros((), jnp.int32),
        n_rejected=jnp.zeros((), jnp.int32),
        done=(t_end <= t0) | steady(x0, f0),
        failed=jnp.asarray(False),
    )
    s = jax.lax.while_loop(cond, body, init)
    return Solution(s.ys, s.x, s.t, s.n_steps, s.n_rejected, s.done & ~s.failed)
