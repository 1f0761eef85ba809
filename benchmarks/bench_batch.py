"""Batched evaluation on whatever device JAX finds: throughput, lockstep, Adam's overhead.

Per problem, on this device:

- ``evals/s`` of ``Objective.batch`` at each batch size (vectors nominal + N(0, 0.1) on
  the estimation scale, clipped to the bounds; a warm-up round, then the median of
  ``--repeats`` rounds, each of new vectors, so that the lane-cost model only predicts
  vectors it has not seen; every round evaluates as many vectors as the largest batch
  size, in consecutive batches of the size timed, so that every size is timed on the
  same sustained work), in three ways: the whole chunk of a core in one vmapped call,
  vmapped calls of at most ``--lanes`` vectors in the given order, and those calls with the
  vectors grouped by predicted cost (pe_bench's default);
- the spread of solver steps over the lanes of the batch (min / median / max: a vmapped
  adaptive solve costs as many steps as its slowest lane) and the lockstep efficiency
  ``sum of the lanes' steps / sum over calls of (max steps x lanes)`` of one call per core,
  of calls of ``--lanes`` in the given order and grouped;
- vmapped value-and-gradient of 256 vectors per second;
- Adam with ``--adam-starts`` starts (on ``--adam-problems``): seconds per iteration of
  the method against the bare vmapped value-and-gradient of the same starts split the
  same way, timed at the start points and at the points the starts reached (ratio: Adam
  over the mean of the two; the median of ``--adam-repeats`` measurements, with their range).

    .venv/bin/python benchmarks/bench_batch.py [--problems Boehm_JProteomeRes2014,...]
        [--sizes 256,4096] [--lanes 64] [--repeats 3] [--adam-problems ...]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pe_bench.methods import Budget, Callbacks  # noqa: E402
from pe_bench.methods.adam import Adam  # noqa: E402
from pe_bench.methods.base import latin_hypercube  # noqa: E402
from pe_bench.objective import Objective  # noqa: E402
from pe_bench.problems.registry import resolve  # noqa: E402
from pe_bench.runtime import configure_jax, device_info  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmark-models"
DEFAULT = "Boehm_JProteomeRes2014,Fujita_SciSignal2010,Weber_BMC2015"


def vectors(pb, n: int, seed: int = 0) -> np.ndarray:
    lower, upper = pb.bounds
    rng = np.random.default_rng(seed)
    return np.clip(pb.x_nominal + rng.normal(0, 0.1, (n, len(pb.x_ids))), lower, upper)


def throughput(objective: Objective, sets: list[np.ndarray], batch: int) -> float:
    """Vectors per second in batches of ``batch``: warm up (compile, train the lane-cost
    model) on ``sets[0]``, then the median over the other sets.

    Every set holds the same number of vectors (the largest batch size), evaluated as
    consecutive batches of ``batch``: each batch size is timed on the same sustained work,
    so that a short batch is not favoured by running in a burst (this machine's clock and
    neighbours make a 1 s burst several per cent faster than 15 s of sustained load).
    """
    objective.batch(sets[0][: min(len(sets[0]), 8)])  # compile
    for i in range(0, len(sets[0]), batch):
        objective.batch(sets[0][i : i + batch])
    rates = []
    for xs in sets[1:]:
        t0 = time.perf_counter()
        for i in range(0, len(xs), batch):
            objective.batch(xs[i : i + batch])
        rates.append(len(xs) / (time.perf_counter() - t0))
    return float(np.median(rates))


def efficiency(steps: np.ndarray, lanes: int, order: np.ndarray | None = None) -> float:
    """Sum of the lanes' steps over what the calls cost in lockstep (max steps x lanes)."""
    steps = np.asarray(steps if order is None else steps[order], dtype=float)
    chunks = [steps[i : i + lanes] for i in range(0, len(steps), lanes)]
    return float(steps.sum() / sum(c.max() * len(c) for c in chunks))


def adam_overhead(pb, objective: Objective, starts: int, iterations: int) -> tuple[float, float, float]:
    """(Adam seconds per iteration, bare vmapped value-and-gradient seconds per call at
    Adam's start points, and at the points its starts reached).

    Adam's time per iteration is the difference of two runs, ``block`` and
    ``block + iterations`` iterations long (a multiple of the block), divided by
    ``iterations``: what tracing and compiling each run costs cancels out. A solve's cost
    depends on where its lanes are, so the bare step is timed at both ends of the timed
    iterations: at the start points and at each start's best point after the long run.
    """
    lower, upper = pb.bounds
    method = Adam(patience=10**6)
    iterations = max(method.block, iterations // method.block * method.block)

    def timed(n_iter):
        t0 = time.perf_counter()
        budget = Budget(n_starts=starts, max_evals=n_iter)
        out = list(method.run(objective, lower, upper, budget, 0, Callbacks()))
        return time.perf_counter() - t0, out

    timed(method.block)  # compile
    long, results = timed(method.block + iterations)
    short, _ = timed(method.block)
    per_iter = (long - short) / iterations
    # The bare step: the same starts, split into the same chunks, one vmapped value and
    # gradient per chunk on its own thread, padded as Adam pads its chunks.
    k = method._n_chunks(starts)
    size = -(-starts // k)
    vg = jax.jit(jax.vmap(lambda x: objective.value_and_grad_fn(x)[:2]))
    from concurrent.futures import ThreadPoolExecutor

    def bare(xs):
        xs = np.concatenate([xs, np.repeat(xs[:1], size * k - starts, axis=0)])
        chunks = [jnp.asarray(xs[i * size : (i + 1) * size]) for i in range(k)]
        with ThreadPoolExecutor(k) as pool:
            list(pool.map(lambda c: jax.block_until_ready(vg(c)), chunks))
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                list(pool.map(lambda c: jax.block_until_ready(vg(c)), chunks))
                times.append(time.perf_counter() - t0)
        return float(np.median(times))

    reached = np.array([r.x_final for r in sorted(results, key=lambda r: r.start)])
    return per_iter, bare(latin_hypercube(starts, lower, upper, 0)), bare(reached)


def measure(
    name: str,
    sizes: list[int],
    lanes: int,
    repeats: int,
    adam: bool,
    adam_starts: int,
    adam_iters: int,
    adam_repeats: int = 3,
) -> list[dict]:
    pb = resolve(str(SHARED / name) if (SHARED / name).is_dir() else name)
    rows = []
    whole = Objective(pb, batch_lanes=0)
    given = Objective(pb, batch_lanes=lanes, group_lanes=False)
    grouped = Objective(pb, batch_lanes=lanes)
    work = max(sizes)
    for n in sizes:
        sets = [vectors(pb, work, seed) for seed in range(1, repeats + 2)]
        ways = {"whole": whole, "given": given, "grouped": grouped}
        rates = {way: throughput(obj, sets, n) for way, obj in ways.items()}
        xs = vectors(pb, n, 0)
        order = grouped.lane_order(xs)
        _, _, steps = whole.batch(xs, steps=True)
        _, per_call = whole._chunks(n)
        _, call_lanes = grouped._chunks(n)
        rows.append(
            {
                "problem": name,
                "batch": n,
                "evals_per_s_one_call": rates["whole"],
                f"evals_per_s_lanes{lanes}": rates["given"],
                f"evals_per_s_lanes{lanes}_grouped": rates["grouped"],
                "steps_min": int(np.min(steps)),
                "steps_median": float(np.median(steps)),
                "steps_max": int(np.max(steps)),
                "lockstep_eff_one_call": efficiency(steps, per_call),
                f"lockstep_eff_lanes{lanes}": efficiency(steps, call_lanes),
                f"lockstep_eff_lanes{lanes}_grouped": efficiency(steps, call_lanes, order),
            }
        )
        print(pd.DataFrame(rows[-1:]).to_string(index=False), flush=True)
    xs = jnp.asarray(vectors(pb, 256))
    vg = jax.jit(jax.vmap(lambda x: whole.value_and_grad_fn(x)[:2]))
    jax.block_until_ready(vg(xs))
    t0 = time.perf_counter()
    jax.block_until_ready(vg(xs))
    vg_rate = 256 / (time.perf_counter() - t0)
    for r in rows:
        r["llh_grad_per_s_256"] = vg_rate
    if adam:
        # Each measurement is a difference of two runs: repeat it, report the median ratio
        # (and its run's figures) and the range of the ratios.
        runs = [adam_overhead(pb, whole, adam_starts, adam_iters) for _ in range(adam_repeats)]
        ratios = [a / (0.5 * (s + e)) for a, s, e in runs]
        mid = int(np.argsort(ratios)[len(ratios) // 2])
        adam_s, bare_start, bare_end = runs[mid]
        for r in rows:
            r |= {
                "adam_s_per_iter": adam_s,
                "bare_vg_s_at_starts": bare_start,
                "bare_vg_s_at_reached": bare_end,
                "adam_ratio": ratios[mid],
                "adam_ratio_range": f"{min(ratios):.2f}-{max(ratios):.2f}",
            }
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", default=DEFAULT)
    ap.add_argument("--sizes", default="256,4096")
    ap.add_argument("--lanes", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--adam-problems",
        default="Boehm_JProteomeRes2014",
        help="problems to time Adam on (its Latin-hypercube starts cost far more than nominal points)",
    )
    ap.add_argument("--adam-starts", type=int, default=64)
    ap.add_argument("--adam-iters", type=int, default=50)
    ap.add_argument("--adam-repeats", type=int, default=3, help="Adam measurements (median ratio reported)")
    args = ap.parse_args()
    configure_jax()
    print(device_info())
    rows = []
    for name in args.problems.split(","):
        adam = name in args.adam_problems.split(",")
        rows += measure(name, [int(v) for v in args.sizes.split(",")], args.lanes, args.repeats, adam,
                        args.adam_starts, args.adam_iters, args.adam_repeats)  # fmt: skip
    print()
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4g"))


if __name__ == "__main__":
    main()
