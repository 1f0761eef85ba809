"""pe_bench's Rodas5 solver against analytic solutions, scipy's Radau, diffrax and finite differences;
its per-step linear solvers against numpy and scipy."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from scipy.integrate import solve_ivp

from pe_bench.solvers import integrate, linalg


def robertson(t, x, p):
    k1, k2, k3 = p[0], p[1], p[2]
    return jnp.stack(
        [
            -k1 * x[0] + k3 * x[1] * x[2],
            k1 * x[0] - k3 * x[1] * x[2] - k2 * x[1] ** 2,
            k2 * x[1] ** 2,
        ]
    )


ROB_P = np.array([0.04, 3e7, 1e4])
ROB_X0 = np.array([1.0, 0.0, 0.0])
ROB_TS = np.array([0.0, 0.4, 4.0, 40.0, 400.0, 4e3, 4e4, 4e5])


def _rodas(rhs, x0, p, ts, tol=1e-10, **kw):
    return integrate(rhs, jnp.asarray(x0), jnp.asarray(p), jnp.asarray(ts), ts[-1], rtol=tol, atol=tol,
                           max_steps=100_000, **kw)  # fmt: skip


def test_linear_system_matches_matrix_exponential_and_converges():
    # Stiff linear system (eigenvalues -1 and -1000), exact solution expm(A t) x0.
    a = np.array([[-1.0, 1000.0], [0.0, -1000.0]])
    x0 = np.array([1.0, 1.0])
    ts = np.array([0.0, 0.01, 0.5, 2.0])
    exact = np.stack([scipy.linalg.expm(a * t) @ x0 for t in ts])
    errors = []
    for tol in (1e-6, 1e-8, 1e-10):
        sol = _rodas(lambda t, x, p: jnp.asarray(a) @ x, x0, np.zeros(1), ts, tol=tol)
        ys = sol.ys
        assert bool(sol.ok) and float(sol.t) == ts[-1]
        errors.append(np.max(np.abs(np.asarray(ys) - exact)))
    assert errors[-1] < 1e-9
    assert errors[0] > errors[1] > errors[2]  # tolerance proportionality


def test_time_dependent_forcing_matches_closed_form():
    # dx/dt = -50 (x - cos t): the f_t term of the Rosenbrock stages matters here.
    def rhs(t, x, p):
        return -p[0] * (x - jnp.cos(t))

    ts = np.linspace(0.0, 3.0, 7)
    lam = 50.0
    exact = (lam**2 * np.cos(ts) + lam * np.sin(ts)) / (lam**2 + 1) + (1 - lam**2 / (lam**2 + 1)) * np.exp(
        -lam * ts
    )
    sol = _rodas(rhs, np.array([1.0]), np.array([lam]), ts)
    ys = sol.ys
    assert bool(sol.ok)
    np.testing.assert_allclose(np.asarray(ys)[:, 0], exact, rtol=1e-8, atol=1e-10)


def test_robertson_matches_scipy_radau_and_diffrax():
    sol = jax.jit(lambda p: _rodas(robertson, ROB_X0, p, ROB_TS))(jnp.asarray(ROB_P))
    ys, n_steps = sol.ys, sol.n_steps
    assert bool(sol.ok)
    ref = solve_ivp(
        lambda t, x: np.asarray(robertson(t, x, ROB_P)),
        (0.0, ROB_TS[-1]),
        ROB_X0,
        method="Radau",
        t_eval=ROB_TS,
        rtol=1e-12,
        atol=1e-14,
    )
    np.testing.assert_allclose(np.asarray(ys), ref.y.T, rtol=1e-7, atol=1e-11)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, args: robertson(t, y, args)),
        diffrax.Kvaerno5(),
        t0=0.0,
        t1=ROB_TS[-1],
        dt0=None,
        y0=jnp.asarray(ROB_X0),
        args=jnp.asarray(ROB_P),
        saveat=diffrax.SaveAt(ts=jnp.asarray(ROB_TS)),
        stepsize_controller=diffrax.PIDController(rtol=1e-10, atol=1e-10),
        max_steps=100_000,
    )
    # diffrax's own global error at these tolerances is a few 1e-7 (checked against Radau).
    np.testing.assert_allclose(np.asarray(ys), np.asarray(sol.ys), rtol=1e-6, atol=1e-11)
    assert int(n_steps) < int(sol.stats["num_steps"])


def test_forward_sensitivities_match_central_differences():
    def states(log_p):
        return _rodas(robertson, ROB_X0, jnp.exp(log_p), ROB_TS)[0]

    log_p = jnp.log(jnp.asarray(ROB_P))
    jac = np.asarray(jax.jacfwd(states)(log_p))  # (n_t, n_x, n_p)
    h = 1e-5
    for i in range(3):
        e = jnp.zeros(3).at[i].set(h)
        plus = _rodas(robertson, ROB_X0, jnp.exp(log_p + e), ROB_TS, tol=1e-13)[0]
        minus = _rodas(robertson, ROB_X0, jnp.exp(log_p - e), ROB_TS, tol=1e-13)[0]
        fd = np.asarray((plus - minus) / (2 * h))
        np.testing.assert_allclose(jac[..., i], fd, rtol=1e-5, atol=1e-10)


def test_steady_state_of_linear_production_and_decay():
    # dx/dt = b - k x reaches x = b / k; the stop rule is rms(f) < atol + rtol rms(x).
    b, k = np.array([2.0, 3.0]), np.array([0.5, 4.0])
    sol = integrate(
        lambda t, x, p: p[0] - p[1] * x,
        jnp.zeros(2),
        (jnp.asarray(b), jnp.asarray(k)),
        jnp.zeros((0,)),
        jnp.inf,
        rtol=1e-10,
        atol=1e-10,
        max_steps=10_000,
        steady_state=(1e-10, 1e-12),
    )
    assert bool(sol.ok) and np.isfinite(float(sol.t))
    np.testing.assert_allclose(np.asarray(sol.x), b / k, rtol=1e-9)


def test_failures_are_flags():
    # dx/dt = x^2 from 1 blows up at t = 1; a tiny step budget runs out.
    blow = _rodas(
        lambda t, x, p: x**2, np.array([1.0]), np.zeros(1), np.array([0.5, 2.0]), blowup_threshold=1e30
    )
    assert not bool(blow.ok)
    x0, p, ts = jnp.asarray(ROB_X0), jnp.asarray(ROB_P), jnp.asarray(ROB_TS)
    short = integrate(robertson, x0, p, ts, ROB_TS[-1], rtol=1e-10, atol=1e-10, max_steps=10)
    assert not bool(short.ok) and int(short.n_steps) == 10


@pytest.mark.parametrize("n_lanes", [1, 5])
def test_vmap_over_parameters_equals_single_solves(n_lanes):
    rng = np.random.default_rng(0)
    ps = ROB_P * np.exp(rng.normal(0, 0.3, (n_lanes, 3)))
    batched = jax.vmap(lambda p: _rodas(robertson, ROB_X0, p, ROB_TS)[0])(jnp.asarray(ps))
    for i in range(n_lanes):
        single = _rodas(robertson, ROB_X0, ps[i], ROB_TS)[0]
        np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(single), rtol=1e-12, atol=1e-15)


def test_inverse_matches_numpy_and_pivots():
    """The unrolled Gauss-Jordan inverse against numpy's LAPACK one, batched and on a
    matrix with a zero leading pivot (only partial pivoting gets it right)."""
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 15):
        a = rng.normal(size=(16, n, n)) + 0.1 * np.eye(n)
        got = np.asarray(jax.vmap(linalg.inverse)(jnp.asarray(a)))
        np.testing.assert_allclose(got, np.linalg.inv(a), rtol=1e-8, atol=1e-10)
    perm = np.array([[0.0, 2.0, 1.0], [3.0, 0.0, 0.5], [1.0, 1.0, 0.0]])
    np.testing.assert_allclose(np.asarray(linalg.inverse(jnp.asarray(perm))), np.linalg.inv(perm), rtol=1e-12)


@pytest.mark.parametrize("kind", ["lu", "banded"])
def test_factorised_solvers_match_numpy_with_tangents(kind):
    """LU and the banded LU (with reverse Cuthill-McKee renumbering) against numpy's solve,
    and the tangent rule w dk = dr - dw k against jax's own derivative of numpy-style solve."""
    rng = np.random.default_rng(5)
    n = 40
    # A scrambled banded matrix: bandwidth 3 once renumbered, zero leading pivots included.
    band = np.zeros((n, n))
    for i in range(n):
        for j in range(max(0, i - 2), min(n, i + 2)):
            band[i, j] = rng.normal()
    band[0, 0] = 0.0
    perm = rng.permutation(n)
    a = band[np.ix_(perm, perm)]
    structure = linalg.choose(n, a != 0, kind)
    assert structure.kind == kind
    if kind == "banded":
        assert max(structure.lower, structure.upper) <= 4
    r = rng.normal(size=n)
    stored = linalg.store(structure, jnp.asarray(a))
    got = linalg.solve(structure, stored, linalg.factor(structure, stored), jnp.asarray(r))
    np.testing.assert_allclose(np.asarray(got), np.linalg.solve(a, r), rtol=1e-9, atol=1e-11)
    da, dr = rng.normal(size=(n, n)) * (a != 0), rng.normal(size=n)

    def ours(s):
        w = linalg.store(structure, jnp.asarray(a) + s * jnp.asarray(da))
        return linalg.solve(structure, w, linalg.factor(structure, jax.lax.stop_gradient(w)), r + s * dr)

    tangent = jax.jvp(ours, (0.0,), (1.0,))[1]
    exact = jax.jvp(lambda s: jnp.linalg.solve(jnp.asarray(a) + s * da, r + s * dr), (0.0,), (1.0,))[1]
    np.testing.assert_allclose(np.asarray(tangent), np.asarray(exact), rtol=1e-8, atol=1e-10)


def test_choice_by_size_and_sparsity():
    assert linalg.choose(5).kind == "inverse"
    assert linalg.choose(200).kind == "lu"
    chain = np.eye(200, dtype=bool) | np.eye(200, k=1, dtype=bool) | np.eye(200, k=-1, dtype=bool)
    assert linalg.choose(200, chain).kind == "banded"
    assert linalg.choose(200, np.ones((200, 200), bool)).kind == "lu"


def test_compressed_jacobian_equals_dense():
    # A nonlinear, time-dependent chain with a few long-range couplings: 5 column groups
    # instead of 60 columns.
    n = 60
    rng = np.random.default_rng(2)
    links = rng.choice(n, (4, 2), replace=False)

    def fun(t, x):
        out = -(x**2) + jnp.roll(x, 1) * jnp.cos(t) + 0.5 * jnp.roll(x, -1)
        return out.at[links[:, 0]].add(jnp.sin(x[links[:, 1]]))

    pattern = (
        np.eye(n, dtype=bool)
        | np.roll(np.eye(n, dtype=bool), 1, axis=1)
        | np.roll(np.eye(n, dtype=bool), -1, axis=1)
    )
    pattern[links[:, 0], links[:, 1]] = True
    structure = linalg.choose(n, pattern, "lu")
    assert structure.colors is not None and structure.n_colors <= 8
    x, t = jnp.asarray(rng.normal(size=n)), jnp.asarray(0.7)
    f_t, jac = linalg.jacobian(structure, fun, t, x)
    assert structure.kind == "lu"  # dense storage: comparable entry by entry
    np.testing.assert_allclose(np.asarray(jac), np.asarray(jax.jacfwd(lambda xx: fun(t, xx))(x)), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(f_t), np.asarray(jax.jacfwd(lambda tt: fun(tt, x))(t)), rtol=1e-14)
