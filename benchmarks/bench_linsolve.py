"""Rodas5's per-step linear algebra by size: unrolled inverse, dense LU, banded LU.

Integrates a linear chain with nonlinear coupling (x_i' = k (x_{i-1} - x_i) - x_i^2 / 10,
a tridiagonal Jacobian) of n states over [0, 10] at rtol = atol = 1e-10 with each solver,
and prints per n and solver: compile seconds, one call (ms, median), a vmapped batch of
64 parameter vectors on one core (ms, median), steps taken. The crossover decides
``pe_bench.solvers.linalg.INVERSE_MAX_N`` (README: "Large models").

    .venv/bin/python benchmarks/bench_linsolve.py [--sizes 5,10,...] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pe_bench.runtime import configure_jax  # noqa: E402
from pe_bench.solvers import integrate, linalg  # noqa: E402


def chain(t, x, p):
    inflow = jnp.concatenate([p[1:2], x[:-1]])
    return p[0] * (inflow - x) - 0.1 * x**2


def measure(n: int, kind: str, repeats: int, batch: int = 64) -> dict:
    pattern = np.eye(n, dtype=bool) | np.eye(n, k=-1, dtype=bool)
    structure = linalg.choose(n, pattern, kind)
    ts = jnp.linspace(0.0, 10.0, 11)

    def solve(p):
        sol = integrate(chain, jnp.zeros(n), p, ts, 10.0, rtol=1e-10, atol=1e-10, max_steps=100_000,
                        structure=structure)  # fmt: skip
        return sol.ys, sol.n_steps

    p0 = jnp.array([3.0, 1.0])
    t0 = time.perf_counter()
    single = jax.jit(solve).lower(p0).compile()
    compile_s = time.perf_counter() - t0
    ps = jnp.asarray(p0 * np.exp(np.random.default_rng(0).normal(0, 0.1, (batch, 2))))
    batched = jax.jit(jax.vmap(solve)).lower(ps).compile()
    steps = int(single(p0)[1])
    times_1, times_b = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(single(p0))
        times_1.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        jax.block_until_ready(batched(ps))
        times_b.append(time.perf_counter() - t0)
    return {
        "n": n,
        "solver": structure.kind,
        "jacobian_products": structure.n_colors,
        "compile_s": compile_s,
        "call_ms": 1e3 * float(np.median(times_1)),
        f"batch{batch}_ms": 1e3 * float(np.median(times_b)),
        "steps": steps,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5,10,15,20,25,30,40,60,100,200,500")
    ap.add_argument("--solvers", default="inverse,lu,banded")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--inverse-max", type=int, default=100, help="skip the unrolled inverse above this n")
    args = ap.parse_args()
    configure_jax()
    rows = []
    for n in [int(v) for v in args.sizes.split(",")]:
        for kind in args.solvers.split(","):
            if kind == "inverse" and n > args.inverse_max:
                continue
            rows.append(measure(n, kind, args.repeats))
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    print()
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3g"))


if __name__ == "__main__":
    main()
