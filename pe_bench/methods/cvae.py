"""Conditional-VAE recommender of start points.

Round 0 is a Latin-hypercube multi-start local search; every parameter vector it
evaluates (start points and iterates) becomes training data, labelled with its
objective value. A conditional variational autoencoder (Kingma & Welling 2014; Sohn et
al. 2015) is trained on it, encoder q(z | u, l) and decoder p(u | z, l) both conditioned
on the normalised label l (the rank quantile of the nllh, 0 = best), with u the
parameters scaled to [0, 1] by the bounds. Sampling z ~ N(0, I) at a low label
(``label``) generates new vectors; they are evaluated in one batch, local searches start
from the best of them, everything evaluated joins the training data, and the next round
retrains. Bounds: the decoder's sigmoid output maps into the box; local searches use their
optimiser's bounds (fides by default, see multistart).

Per start it records the round, the label it was generated for and the objective it
reached; per round, how many generated vectors failed to integrate, beside the same
figure for the round-0 Latin-hypercube points (``round_stats``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..clock import Clock, compiling, excluded
from ..objective import Objective
from .base import Budget, Callbacks, Method, SharedCost, StartResult, StartTracker, latin_hypercube
from .multistart import DEFAULT_RESAMPLE, local_search, resample_rng


class _CVAE(eqx.Module):
    encoder: eqx.nn.MLP
    decoder: eqx.nn.MLP
    latent: int = eqx.field(static=True)

    def __init__(self, n_par: int, latent: int, width: int, depth: int, key):
        k1, k2 = jax.random.split(key)
        self.latent = latent
        self.encoder = eqx.nn.MLP(n_par + 1, 2 * latent, width, depth, activation=jax.nn.gelu, key=k1)
        self.decoder = eqx.nn.MLP(latent + 1, n_par, width, depth, activation=jax.nn.gelu, key=k2)

    def encode(self, u, label):
        out = self.encoder(jnp.concatenate([u, label[None]]))
        return out[: self.latent], out[self.latent :]

    def decode(self, z, label):
        return jax.nn.sigmoid(self.decoder(jnp.concatenate([z, label[None]])))


def _loss(model: _CVAE, u, labels, key, beta):
    keys = jax.random.split(key, u.shape[0])

    def one(u_i, l_i, k):
        mu, logvar = model.encode(u_i, l_i)
        z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(k, mu.shape)
        recon = model.decode(z, l_i)
        kl = 0.5 * jnp.sum(jnp.exp(logvar) + mu**2 - 1.0 - logvar)
        return jnp.sum((recon - u_i) ** 2) + beta * kl

    return jnp.mean(jax.vmap(one)(u, labels, keys))


def train_cvae(u, labels, *, latent, width, depth, epochs, learning_rate, beta, key) -> _CVAE:
    """Fit a cVAE to unit-box parameters ``u`` (n, n_par) with labels in [0, 1] (full batch).

    All epochs run as one compiled ``lax.scan`` of full-batch Adam steps; its compilation
    (once per data size) and the eager model initialisation are timed as compilation.
    """
    k_init, k_train = jax.random.split(key)
    with compiling():
        model = _CVAE(u.shape[1], latent, width, depth, k_init)
    params, static = eqx.partition(model, eqx.is_array)
    opt = optax.adam(learning_rate)

    def step(carry, k):
        params, state = carry
        loss, grads = jax.value_and_grad(lambda p: _loss(eqx.combine(p, static), u, labels, k, beta))(params)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), loss

    def fit(params, keys):
        (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), keys)
        return params

    keys = jax.random.split(k_train, epochs)
    with compiling():
        fitted = jax.jit(fit).lower(params, keys).compile()
    return eqx.combine(fitted(params, keys), static)


def decode_batch(model: _CVAE, z, labels) -> np.ndarray:
    """Decode latent vectors ``z`` (n, latent) at ``labels`` (n,) in one compiled call (unit box)."""
    params, static = eqx.partition(model, eqx.is_array)

    def decode(params, z, labels):
        return jax.vmap(eqx.combine(params, static).decode)(z, labels)

    with compiling():
        compiled = jax.jit(decode).lower(params, z, labels).compile()
    return np.asarray(compiled(params, z, labels))


def rank_labels(values: np.ndarray) -> np.ndarray:
    """Normalised objective labels: rank quantile in [0, 1], 0 = best."""
    order = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return order / max(1, len(values) - 1)


@dataclass(frozen=True)
class ConditionalVAE(Method):
    """cVAE recommender: LHS multistart, then rounds of cVAE-proposed start points.

    Attributes:
        rounds: rounds including round 0 (LHS); starts are split evenly across them.
        samples: vectors generated (and screened in one batch) per round.
        label: the label generated vectors are conditioned on (0 = best seen).
        latent, width, depth: cVAE latent size, hidden width and number of hidden layers.
        epochs, learning_rate, beta: training (full-batch Adam) and KL weight.
        max_train: most recent evaluated vectors kept for training (the best are kept first).
        local, tol, resample: local optimiser of every start and replacements of start
            points whose first evaluation fails (as multistart's).
        round_starts: starts per round under a CPU budget without a number of starts
            (rounds then follow each other until the budget is spent).
    """

    name = "cvae"
    rounds: int = 3
    samples: int = 256
    label: float = 0.0
    latent: int = 4
    width: int = 64
    depth: int = 2
    epochs: int = 400
    learning_rate: float = 3e-3
    beta: float = 0.5
    max_train: int = 4000
    local: str = "fides"
    tol: float = 1e-8
    resample: int = DEFAULT_RESAMPLE
    round_starts: int = 5
    round_stats: list = field(default_factory=list, compare=False, hash=False, repr=False)

    def run(
        self,
        objective: Objective,
        lower: np.ndarray,
        upper: np.ndarray,
        budget: Budget,
        seed: int,
        callbacks: Callbacks,
        skip: frozenset[int] = frozenset(),
    ) -> Iterator[StartResult]:
        """Yield the starts of every round; ``round_stats`` is filled as rounds end."""
        if budget.n_starts is not None:
            per_round = math.ceil(budget.n_starts / self.rounds)
            plan = [min(per_round, budget.n_starts - r * per_round) for r in range(self.rounds)]
            plan = [n for n in plan if n > 0]
        else:  # a CPU budget: rounds of round_starts starts until it is spent
            if self.round_starts < 1:
                raise ValueError(f"round_starts must be >= 1, got {self.round_starts}")
            plan = itertools.repeat(self.round_starts)
        archive: list[tuple[np.ndarray, np.ndarray]] = []
        key = jax.random.PRNGKey(seed)
        span = upper - lower
        self.round_stats.clear()
        # Resumed starts are redone (their evaluations are training data, so that later
        # rounds come out the same) off every clock and without the run's budget.
        replay = dataclasses.replace(callbacks, run_clock=None, on_eval=None)
        start = 0
        for r, n in enumerate(plan):
            indices = range(start, start + n)
            start += n
            if all(i in skip for i in indices):
                resumed = True
            elif not callbacks.more_starts():
                return
            else:
                resumed = False
            shared = np.zeros(4)  # screening evaluations, failed, wall and CPU seconds
            if r == 0:
                chosen = latin_hypercube(n, lower, upper, seed)
                label = None
                stats = {"round": 0, "kind": "lhs", "n_vectors": n}
            else:
                clock = Clock()
                with contextlib.ExitStack() as stack:
                    if resumed:
                        stack.enter_context(excluded())
                    key, k_train, k_sample = jax.random.split(key, 3)
                    xs = np.concatenate([a for a, _ in archive])
                    vs = np.concatenate([v for _, v in archive])
                    finite = np.isfinite(vs)
                    xs, vs = xs[finite], vs[finite]
                    if len(vs) > self.max_train:
                        keep = np.argsort(vs)[: self.max_train]
                        xs, vs = xs[keep], vs[keep]
                    u = jnp.asarray(np.clip((xs - lower) / span, 0.0, 1.0))
                    model = train_cvae(
                        u,
                        jnp.asarray(rank_labels(vs)),
                        latent=self.latent,
                        width=self.width,
                        depth=self.depth,
                        epochs=self.epochs,
                        learning_rate=self.learning_rate,
                        beta=self.beta,
                        key=k_train,
                    )
                    trained = clock.elapsed()
                    label = self.label
                    z = jax.random.normal(k_sample, (self.samples, self.latent))
                    labels = jnp.full((self.samples,), label)
                    generated = decode_batch(model, z, labels) * span + lower
                    screen_values = np.asarray(objective.batch(generated)[0])
                    screen_values = np.where(np.isfinite(screen_values), screen_values, np.inf)
                    spent = clock.elapsed()
                archive.append((generated, screen_values))
                order = np.argsort(screen_values, kind="stable")
                chosen = generated[order[:n]]
                n_bad = int((~np.isfinite(screen_values)).sum())
                stats = {
                    "round": r,
                    "kind": "cvae",
                    "n_vectors": self.samples,
                    "n_failed": n_bad,
                    "n_train": int(len(vs)),
                    "best_screened": float(screen_values[order[0]]),
                    "train_seconds": trained.wall,
                    "train_cpu_seconds": trained.cpu,
                    "screen_seconds": spent.wall - trained.wall,
                    "screen_cpu_seconds": spent.cpu - trained.cpu,
                }
                # The screening batch and the training are the method's own cost, shared
                # out over the round's starts beside (never inside) their budgets.
                shared = np.array([self.samples, n_bad, spent.wall, spent.cpu], dtype=float)
            self.round_stats.append(stats)
            first_failed = 0
            for j, x0 in enumerate(chosen):
                i = indices[j]
                redo = i in skip
                tracker = StartTracker(objective, budget, replay if redo else callbacks, i, archive=archive)
                tracker.shared = _share(shared, j, n)
                with excluded() if redo else contextlib.nullcontext():
                    status, message, first = local_search(
                        tracker, x0, lower, upper, self.local, self.tol, self.resample, resample_rng(seed, i)
                    )
                first_failed += int(first.resampled > 0 or not math.isfinite(first.value))
                if redo:
                    continue
                yield tracker.result(first.x, first.value, status, message, {"round": r, "label": label})
                if not callbacks.more_starts():
                    break
            if r == 0:
                # Round 0's vectors are its Latin-hypercube start points: failed if their
                # first evaluation did (and a replacement point was drawn).
                stats["n_failed"] = first_failed


def _share(total: np.ndarray, j: int, n: int) -> SharedCost:
    """Start ``j``'s equal share (of ``n``) of a round's shared cost; counts split as integers."""

    def part(count: int) -> int:
        return count // n + (j < count % n)

    return SharedCost(part(int(total[0])), part(int(total[1])), total[2] / n, total[3] / n)
