"""PEtab's negative log-likelihood as one pure JAX function of the estimated parameters.

The likelihood follows the PEtab v1 specification, normalisation constants included:
for a measurement ``m`` with simulation ``y`` and noise ``sigma`` on the transformed
scale ``h`` (identity, ``log`` or ``log10``),

* normal:  ``0.5 * log(2 pi sigma^2) + 0.5 * ((h(m) - h(y)) / sigma)^2``
* laplace: ``log(2 sigma) + |h(m) - h(y)| / sigma``

plus the Jacobian of the transformation, ``log(m)`` for log and ``log(m * ln 10)``
for log10, so that every value is a density of the untransformed measurement.
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from .clock import AotFunction, compile_totals, compiling
from .hierarchical import InnerSolver, find_inner, outer_problem
from .problems.base import NOISE_DISTRIBUTIONS, SCALES, TRANSFORMATIONS, Problem
from .runtime import compute_threads, sync_cpu_dispatch
from .simulate import (
    STATUS_BAD_SIGMA,
    STATUS_INTEGRATION_FAILED,
    STATUS_NONFINITE,
    STATUS_OK,
    Simulator,
    SolverOptions,
    model_functions,
)


def _transform(v, codes):
    # Double-where: the log branch of a lin observable must not see v <= 0, or its
    # (unused) derivative 1/v turns the gradient into NaN.
    safe = jnp.where(codes == 0, 1.0, v)
    return jnp.where(codes == 1, jnp.log(safe), jnp.where(codes == 2, jnp.log10(safe), v))


def negative_log_likelihood(y_meas, y_sim, sigma, transformation, distribution):
    """Sum of PEtab v1 negative log-likelihood terms.

    Args:
        y_meas: (n_m,) measured values.
        y_sim: (n_m,) simulated values.
        sigma: (n_m,) noise parameters (standard deviation, or scale for laplace).
        transformation: (n_m,) codes 0 lin, 1 log, 2 log10.
        distribution: (n_m,) codes 0 normal, 1 laplace.

    Returns:
        The scalar nllh.
    """
    r = _transform(y_meas, transformation) - _transform(y_sim, transformation)
    normal = 0.5 * jnp.log(2 * jnp.pi * sigma**2) + 0.5 * (r / sigma) ** 2
    laplace = jnp.log(2 * sigma) + jnp.abs(r) / sigma
    jac = jnp.where(
        transformation == 1,
        jnp.log(y_meas),
        jnp.where(transformation == 2, jnp.log(y_meas * jnp.log(10.0)), 0.0),
    )
    return jnp.sum(jnp.where(distribution == 1, laplace, normal) + jac)


#: Vectors per vmapped call on CPU (benchmarks/bench_batch.py, 2026-11-25: Fujita at 4096
#: vectors 184 evaluations/s in one call per core, 354/s in calls of 64, as at 256 vectors;
#: Boehm 5240/s against 6330/s).
CPU_BATCH_LANES = 64


#: Vectors per vmapped call are rounded up to one of these sizes (then doubled on), so that
#: methods whose batch sizes vary (saCeSS, go-beyond chains, replacements) compile a few
#: shapes, not one per size; padding costs at most 1.5x the lanes of the batch.
LANE_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


def lane_bucket(n: int) -> int:
    """The padded number of lanes for ``n`` vectors (:data:`LANE_BUCKETS`, then 1.5x / 2x steps)."""
    for size in LANE_BUCKETS:
        if n <= size:
            return size
    size = LANE_BUCKETS[-1]
    while size < n:
        size = size * 3 // 2 if size * 3 // 2 >= n else size * 2
    return size


@functools.cache
def _executor(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="pe_bench_batch")


class LaneCostModel:
    """Predicts a vector's solver steps from earlier batches, to group lanes of like cost.

    A vmapped adaptive solve takes as many steps as its slowest lane; vectors of like cost
    in one call waste less. The model is a ridge regression of log(steps) on ``[1, x]``
    (estimation scale) over the lanes of earlier batches, older batches down-weighted by
    ``decay`` per batch, so that it follows an optimiser into new regions. Measured
    (2026-11-25, 1024 vectors nominal + N(0, 0.1), fit on 512, tested on the other 512):
    correlation of predicted and actual log steps 0.97 on Fujita_SciSignal2010, 0.94 on
    Weber_BMC2015; calls of 64 sorted by the prediction cost 1.03x / 1.10x the sum of
    their lanes' steps, against 1.07x / 1.25x in the given order.
    """

    def __init__(self, n_par: int, decay: float = 0.5):
        self.decay = decay
        self.gram = np.zeros((n_par + 1, n_par + 1))
        self.moment = np.zeros(n_par + 1)
        self.weight = 0.0  # effective number of lanes seen
        self.n_par = n_par
        self._coef: np.ndarray | None = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        """True once it has seen (down-weighted) twice as many lanes as coefficients."""
        return self.weight >= 2 * (self.n_par + 1)

    def update(self, xs: np.ndarray, steps: np.ndarray) -> None:
        """Add a batch: vectors (n, n_par) and their solver steps (n,)."""
        a = np.column_stack([np.ones(len(xs)), xs])
        y = np.log(np.maximum(np.asarray(steps, dtype=float), 1.0))
        with self._lock:
            self.gram = self.decay * self.gram + a.T @ a
            self.moment = self.decay * self.moment + a.T @ y
            self.weight = self.decay * self.weight + len(xs)
            self._coef = None

    def predict(self, xs: np.ndarray) -> np.ndarray:
        """Predicted log steps of each vector."""
        with self._lock:
            if self._coef is None:
                ridge = 1e-8 * np.trace(self.gram) / len(self.gram) + 1e-12
                self._coef = np.linalg.solve(self.gram + ridge * np.eye(len(self.gram)), self.moment)
            coef = self._coef
        return np.column_stack([np.ones(len(xs)), xs]) @ coef


@dataclass
class Objective:
    """The objective of a problem: nllh of the estimated parameters ``x`` (estimation scale).

    One instance compiles each of its entry points once (on first use) and reuses them
    for every call; new parameter values never retrigger compilation.

    * ``value(x) -> (nllh, status)``
    * ``value_and_grad(x) -> (nllh, grad, status)`` (JAX autodiff, forward or reverse mode
      as ``options.sensitivity`` says; ``"auto"`` is decided here from the parameter count)
    * ``batch(X) -> (nllh[n], status[n])`` (vmap over parameter vectors; the rows are
      split into ``batch_threads`` equal chunks run on that many threads at once, 0 =
      ``runtime.compute_threads()`` on CPU (every core, or ``$PE_BENCH_THREADS``), where
      XLA runs one vmapped solve on one core, and one on an accelerator; each chunk in
      vmapped calls of at most ``batch_lanes`` vectors, 0 = no limit, None =
      :data:`CPU_BATCH_LANES` on CPU and no limit on an accelerator)

    A failed integration or a non-finite likelihood gives ``nllh = +inf`` and a non-zero
    status (see ``simulate.STATUS_NAMES``); nothing raises inside a batch.

    With ``priors=True`` the objective is the negative log-posterior: the nllh plus the
    parameter table's negative log-priors (:mod:`pe_bench.priors`); off by default so
    that values stay comparable with published likelihoods.

    With ``hierarchical=True`` the scalings, offsets and sigmas that have a closed-form
    optimum (:mod:`pe_bench.hierarchical`) are solved at every evaluation: ``problem`` is
    then the outer problem (``x`` holds only the other parameters; ``full_problem`` is the
    given one), ``inner`` says which, and :meth:`full_x` gives the full vector. The value is
    the full problem's nllh at that vector.
    """

    problem: Problem
    options: SolverOptions = field(default_factory=SolverOptions)
    batch_threads: int = 0
    priors: bool = False
    batch_lanes: int | None = None
    group_lanes: bool = True
    hierarchical: bool = False

    def __post_init__(self):
        sync_cpu_dispatch()  # concurrent batch calls deadlock under asynchronous dispatch
        if not self.problem.has_data:
            raise ValueError("problem has no measurements; it can be simulated, not fitted")
        # Hierarchical: ``problem`` becomes the outer problem (what methods see);
        # ``full_problem`` keeps every parameter (what result rows record).
        self.full_problem = self.problem
        self.inner = None
        if self.hierarchical:
            inner = find_inner(self.problem, with_priors=self.priors)
            self.inner_notes = inner.notes
            if inner.n:
                self.inner = inner
                self.problem = outer_problem(self.problem, inner)
        self.options = self.options.resolved(len(self.problem.x_ids), self.problem.rodas5_only)
        self.simulator = Simulator(self.problem, model_functions(self.problem, self.options), self.options)
        pb = self.problem
        self._trans = np.array(
            [TRANSFORMATIONS.index(pb.observables[k].transformation) for k in pb.meas_obs], dtype=np.int32
        )
        self._dist = np.array(
            [NOISE_DISTRIBUTIONS.index(pb.observables[k].noise_distribution) for k in pb.meas_obs],
            dtype=np.int32,
        )
        self._value = jax.jit(self._nllh_status)
        self._value_and_grad = jax.jit(self.value_and_grad_fn)
        self._value_grad_fim = jax.jit(self.value_grad_fim_fn)
        # Fisher information weight of log(sigma): 2 for normal noise, 1 for laplace.
        self._log_sigma_weight = np.where(self._dist == 1, 1.0, np.sqrt(2.0))
        self._priors = pb.priors if self.priors else None
        self._batch_steps = jax.jit(jax.vmap(self._nllh_status_steps))
        self.lane_costs = LaneCostModel(self.n_par)
        self._inner_solver = (
            InnerSolver(self.full_problem, self.inner, self.simulator.observe, self._measurement_nllh)
            if self.inner is not None
            else None
        )
        self._simulate = jax.jit(self._simulation)
        self._full_x = jax.jit(self.full_x_fn)
        # What the public entry points call: compiled ahead of time once per input shape,
        # the compilation timed apart (pe_bench.clock), so that no start is charged for it.
        self._aot = {
            "value": AotFunction(self._value),
            "value_and_grad": AotFunction(self._value_and_grad),
            "value_grad_fim": AotFunction(self._value_grad_fim),
            "batch": AotFunction(self._batch_steps),
            "simulate": AotFunction(self._simulate),
            "full_x": AotFunction(self._full_x),
        }
        self._warm: set[str] = set()

    def warm_up(self, entry_points: tuple[str, ...] | None = None) -> float:
        """Trace, compile and run once the entry points; returns the wall seconds it took.

        The first run of an executable pays one-time costs too (buffers, thread pools);
        it is timed as compilation, at the nominal parameters.

        Args:
            entry_points: names among ``value``, ``value_and_grad``, ``value_grad_fim``
                (default: ``value``, ``value_and_grad`` and, with forward sensitivities,
                ``value_grad_fim``). Batched shapes compile on first use (timed the same way).
        """
        if entry_points is None:
            entry_points = ("value", "value_and_grad")
            if self.options.sensitivity == "forward":
                entry_points += ("value_grad_fim",)
            if self.inner is not None:
                entry_points += ("full_x",)
        t0 = compile_totals()
        x = jnp.asarray(self.problem.x_nominal, dtype=jnp.float64)
        for name in entry_points:
            if name in self._warm:  # once per objective
                continue
            with compiling():
                jax.block_until_ready(self._aot[name](x))
            self._warm.add(name)
        return (compile_totals() - t0).wall

    @property
    def n_compiled(self) -> dict[str, int]:
        """Per entry point: how many input signatures have been compiled."""
        return {name: fn.n_compiled for name, fn in self._aot.items()}

    @property
    def n_par(self) -> int:
        """Number of estimated parameters."""
        return len(self.problem.x_ids)

    def _nllh_status(self, x):
        value, status, _ = self._nllh_status_features(x)
        return value, status

    def _nllh_status_steps(self, x):
        value, status, _, steps = self._nllh_status_features(x, with_steps=True)
        return value, status, steps

    def _measurement_nllh(self, y, sigma):
        return negative_log_likelihood(jnp.asarray(self.problem.meas_y), y, sigma, self._trans, self._dist)

    def _simulation(self, x):
        """The simulator's output at ``x``; hierarchical: observables at the inner optimum."""
        sim = self.simulator(x)
        if self._inner_solver is not None:
            p_sim = sim["P"][self.problem.sim_cond]
            theta = self._inner_solver(sim["states"], p_sim, sim["theta"])
            sim["y"], sim["sigma"] = self.simulator.observe(sim["states"], p_sim, theta)
            sim["theta"] = theta
        return sim

    def full_x_fn(self, x):
        """Pure: the full problem's estimated vector (inner parameters at their optimum)."""
        if self.inner is None:
            return x
        inner, full = self.inner, self.full_problem
        theta = self._simulation(x)["theta"]
        vals = theta[inner.theta_pos]
        scales = [full.theta_scale[t] for t in inner.theta_pos]
        codes = np.array([SCALES.index(s) for s in scales])
        scaled = jnp.where(codes == 1, jnp.log(vals), jnp.where(codes == 2, jnp.log10(vals), vals))
        out = jnp.zeros(len(full.x_ids), x.dtype)
        return out.at[inner.outer_pos].set(x).at[inner.x_pos].set(scaled)

    def full_x(self, x) -> np.ndarray:
        """The full problem's estimated vector at outer ``x`` (``x`` itself unless hierarchical)."""
        if self.inner is None:
            return np.asarray(x, dtype=np.float64)
        return np.asarray(self._aot["full_x"](jnp.asarray(x, dtype=jnp.float64)))

    def _nllh_status_features(self, x, with_steps: bool = False):
        sim = self._simulation(x)
        value = self._measurement_nllh(sim["y"], sim["sigma"])
        features = self._fim_features(sim)
        if self._priors is not None:
            theta = self.simulator.x_linear(x)
            value = value + self._priors.negative_log_prior(x, theta)
            features = jnp.concatenate([features, self._priors.fim_features(x, theta)])
        status = jnp.where(
            ~sim["ok"], STATUS_INTEGRATION_FAILED, jnp.where(jnp.isfinite(value), STATUS_OK, STATUS_NONFINITE)
        )
        # sigma enters as sigma^2 and |r| / sigma: a sigma <= 0 would give |sigma|'s value.
        status = jnp.where((status == STATUS_OK) & jnp.any(sim["sigma"] <= 0), STATUS_BAD_SIGMA, status)
        value = jnp.where(status == STATUS_OK, value, jnp.inf)
        if with_steps:
            return value, status, features, sim["n_steps"]
        return value, status, features

    def _fim_features(self, sim):
        """Measurement features whose Jacobian J gives the Fisher information J^T J.

        The transformed simulation over sigma (sigma held fixed) and log(sigma), weighted
        (see value_grad_fim_fn).
        """
        sigma = sim["sigma"]
        return jnp.concatenate(
            [
                _transform(sim["y"], self._trans) / jax.lax.stop_gradient(sigma),
                self._log_sigma_weight * jnp.log(sigma),
            ]
        )

    def value_and_grad_fn(self, x):
        """Pure (jit/vmap-able) ``x -> (nllh, grad, status)`` in the configured mode."""
        if self.options.sensitivity == "forward":
            # One tangent per parameter, all in one vmapped forward pass.
            def tangent(t):
                return jax.jvp(self._nllh_status, (x,), (t,), has_aux=True)

            value, grad, status = jax.vmap(tangent, out_axes=(None, 0, None))(
                jnp.eye(x.shape[-1], dtype=x.dtype)
            )
            return value, grad, status
        (value, status), grad = jax.value_and_grad(self._nllh_status, has_aux=True)(x)
        return value, grad, status

    def value_grad_fim_fn(self, x):
        """Pure ``x -> (nllh, grad, fim, status)``: the Fisher information matrix as well.

        For PEtab's normal and laplace likelihoods, the expected Hessian of the nllh is
        ``J^T J`` with J the Jacobian of ``h(y) / sigma`` (location) and ``w log(sigma)``
        (scale, ``w = sqrt(2)`` normal, 1 laplace): the Gauss-Newton matrix a trust-region
        optimiser (fides) uses. All of it comes out of one forward-mode pass (one tangent
        per parameter).

        pyPESTO's FIM from AMICI is ``J^T J`` of the residuals ``(h(m) - h(y)) / sigma``
        instead: the same for parameters that do not move sigma, but its noise-parameter
        block is ``sum(r^2)`` (half the exact Hessian at the optimum, tracking the misfit
        elsewhere) where this one is the expected ``2 n``, with no cross terms. Measured
        with pe_bench's fides multistart (benchmarks/fim_choice.py): Boehm 12/200
        starts converged with this matrix against 4/200 with AMICI's, Fiedler 9/80
        against 0/80, at 1.3x and 0.8x the evaluations.
        """

        def fn(x):
            value, status, features = self._nllh_status_features(x)
            return (value, features), status

        def tangent(t):
            return jax.jvp(fn, (x,), (t,), has_aux=True)

        (value, _), (grad, jac), status = jax.vmap(tangent, out_axes=(None, 0, None))(
            jnp.eye(x.shape[-1], dtype=x.dtype)
        )
        return value, grad, jac @ jac.T, status

    def value_grad_fim(self, x) -> tuple[float, np.ndarray, np.ndarray, int]:
        """Nllh, gradient, Fisher information matrix (n_par, n_par) and status at ``x``.

        Forward mode only (the Jacobian of every measurement is needed).
        """
        if self.options.sensitivity != "forward":
            raise ValueError(
                "the Fisher information needs forward sensitivities (SolverOptions(sensitivity='forward'))"
            )
        v, g, h, s = self._aot["value_grad_fim"](jnp.asarray(x, dtype=jnp.float64))
        return float(v), np.asarray(g), np.asarray(h), int(s)

    def value(self, x) -> tuple[float, int]:
        """Nllh and status at ``x``."""
        v, s = self._aot["value"](jnp.asarray(x, dtype=jnp.float64))
        return float(v), int(s)

    def __call__(self, x) -> float:
        """Nllh at ``x`` (+inf on failure)."""
        return self.value(x)[0]

    def value_and_grad(self, x) -> tuple[float, np.ndarray, int]:
        """nllh, its gradient with respect to ``x`` and the status."""
        v, g, s = self._aot["value_and_grad"](jnp.asarray(x, dtype=jnp.float64))
        return float(v), np.asarray(g), int(s)

    def _chunks(self, n: int) -> tuple[int, int]:
        """(parallel chunks, vectors per vmapped call) for a batch of ``n`` vectors."""
        if self.batch_threads:
            k = self.batch_threads
        elif jax.default_backend() == "cpu":
            k = compute_threads()  # XLA runs one vmapped solve on one core
        else:
            k = 1  # an accelerator runs the whole batch at once
        k = max(1, min(k, n))
        per_chunk = -(-n // k)
        cap = self.batch_lanes
        if cap is None:
            cap = CPU_BATCH_LANES if jax.default_backend() == "cpu" else 0
        lanes = lane_bucket(per_chunk)
        return k, min(lanes, cap) if cap else lanes

    def lane_order(self, xs) -> np.ndarray | None:
        """The order :meth:`batch` evaluates ``xs`` in: most expensive predicted first.

        None (the given order) when the batch fits one call, grouping is off or the cost
        model has not seen enough lanes yet.
        """
        xs = np.asarray(xs, dtype=np.float64)
        _, lanes = self._chunks(len(xs))
        if not self.group_lanes or len(xs) <= lanes or not self.lane_costs.ready:
            return None
        return np.argsort(-self.lane_costs.predict(xs), kind="stable")

    def batch(self, xs, steps: bool = False):
        """Nllh and status (and with ``steps`` the solver steps) for each row of ``xs`` (n, n_par).

        The rows are split into one chunk per core on CPU (run on threads at once: XLA
        runs one vmapped solve on one core) or one chunk on an accelerator, and each
        chunk into vmapped calls of at most ``batch_lanes`` vectors, all padded to one
        size with copies of the last row (one compilation serves them all). Bounding the
        lanes bounds what the lockstep of a vmapped adaptive solve costs: a call takes
        as many steps as its slowest lane. When the batch takes several calls, the rows
        are sorted by their predicted cost (:meth:`lane_order`) so that each call holds
        lanes of like cost, and the most expensive calls are started first; every batch's
        step counts train the prediction.
        """
        xs = np.asarray(xs, dtype=np.float64)
        n = xs.shape[0]
        k, lanes = self._chunks(n)
        order = self.lane_order(xs)
        work = xs if order is None else xs[order]
        calls = -(-n // lanes)
        padded = np.concatenate([work, np.repeat(work[-1:], calls * lanes - n, axis=0)])
        pieces = [jnp.asarray(padded[i * lanes : (i + 1) * lanes]) for i in range(calls)]
        fn = self._aot["batch"]
        if k == 1:
            parts = [jax.block_until_ready(fn(c)) for c in pieces]
        else:
            # The k threads take the calls in turn as they come free: a thread whose calls
            # happen to be cheap does not wait for the other's.
            parts = list(_executor(k).map(lambda c: jax.block_until_ready(fn(c)), pieces))
        outs = [np.concatenate([np.asarray(p[j]) for p in parts])[:n] for j in range(3)]
        if order is not None:
            for j, out in enumerate(outs):
                outs[j] = np.empty_like(out)
                outs[j][order] = out
        self.lane_costs.update(xs, outs[2])
        return tuple(outs) if steps else tuple(outs[:2])

    def simulate(self, x) -> dict:
        """States at the output times, observables and sigmas at the measurements (numpy)."""
        out = self._aot["simulate"](jnp.asarray(x, dtype=jnp.float64))
        return {k: np.asarray(v) for k, v in out.items()}
