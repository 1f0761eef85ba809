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

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..objective import Objective
from .base import Budget, Callbacks, Method, StartResult, StartTracker, latin_hypercube
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
    """Fit a cVAE to unit-box parameters ``u`` (n, n_par) with labels in [0, 1] (full batch)."""
    k_init, k_train = jax.random.split(key)
    model = _CVAE(u.shape[1], latent, width, depth, k_init)
    opt = optax.adam(learning_rate)
    state = opt.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit
    def epoch(model, state, key):
        loss, grads = eqx.filter_value_and_grad(_loss)(model, u, labels, key, beta)
        updates, state = opt.update(grads, state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), state, loss

    for k in jax.random.split(k_train, epochs):
        model, state, _ = epoch(model, state, k)
    return model


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
        per_round = math.ceil(budget.n_starts / self.rounds)
        plan = [min(per_round, budget.n_starts - r * per_round) for r in range(self.rounds)]
        plan = [n for n in plan if n > 0]
        archive: list[tuple[np.ndarray, np.ndarray]] = []
        key = jax.random.PRNGKey(seed)
        span = upper - lower
        self.round_stats.clear()
        start = 0
        for r, n in enumerate(plan):
            label = None
            t_round = time.perf_counter()
            if r == 0:
                candidates = latin_hypercube(n, lower, upper, seed)
                screen_values = np.asarray(objective.batch(candidates)[0])
                chosen = candidates
                stats = {
                    "round": 0,
                    "kind": "lhs",
                    "n_vectors": n,
                    "n_failed": int((~np.isfinite(screen_values)).sum()),
                }
                screen_share = np.zeros(n, dtype=int)  # LHS points are evaluated again as starts
                fail_share = np.zeros(n, dtype=int)
            else:
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
                label = self.label
                z = jax.random.normal(k_sample, (self.samples, self.latent))
                labels = jnp.full((self.samples,), label)
                generated = np.asarray(jax.vmap(model.decode)(z, labels)) * span + lower
                screen_values = np.asarray(objective.batch(generated)[0])
                screen_values = np.where(np.isfinite(screen_values), screen_values, np.inf)
                archive.append((generated, screen_values))
                order = np.argsort(screen_values, kind="stable")
                chosen = generated[order[:n]]
                stats = {
                    "round": r,
                    "kind": "cvae",
                    "n_vectors": self.samples,
                    "n_failed": int((~np.isfinite(screen_values)).sum()),
                    "n_train": int(len(vs)),
                    "best_screened": float(screen_values[order[0]]),
                }
                # The screening batch is part of the budget: shared out over the round's starts.
                screen_share = np.full(n, self.samples // n)
                screen_share[: self.samples % n] += 1
                n_bad = stats["n_failed"]
                fail_share = np.full(n, n_bad // n)
                fail_share[: n_bad % n] += 1
            # Training and screening time is charged to the round's starts, like the evaluations.
            overhead = time.perf_counter() - t_round
            stats["overhead_seconds"] = overhead
            self.round_stats.append(stats)
            for j, x0 in enumerate(chosen):
                i = start + j
                # A resumed run redoes skipped starts without reporting them: their
                # evaluations are training data, so later rounds come out the same.
                tracker = StartTracker(objective, budget, callbacks, i, archive=archive)
                tracker.n_fevals += int(screen_share[j])
                tracker.n_failed += int(fail_share[j])
                tracker.t0 -= overhead / n
                status, message, first = local_search(
                    tracker, x0, lower, upper, self.local, self.tol, self.resample, resample_rng(seed, i)
                )
                if i in skip:
                    continue
                yield tracker.result(first.x, first.value, status, message, {"round": r, "label": label})
            start += n
