"""A synthetic large kinetic model whose solution is known exactly: a linear reaction network.

``n`` species in one compartment of size 1: a chain S0 <-> S1 <-> ... (first order,
forward and backward), degradation of every tenth species, constant production of S0,
and ``links`` long-range first-order conversions S_i -> S_j. Every rate constant is one of
four parameters (kf, kb, kd, kp) times a fixed factor of the reaction, so the model is
``x' = A(theta) x + b(theta)``: its exact solution is a matrix exponential, computed
here with scipy, independently of pe_bench. Built with libsbml's API, written as a
PEtab v1 problem (observables: S0, the middle and last species, and the sum of all).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sbml_builders as sb
import scipy.linalg

PARAMETERS = {"kf": 2.0, "kb": 0.5, "kd": 0.3, "kp": 1.0}
TIMES = np.array([0.5, 1.0, 2.0, 4.0, 7.0, 10.0])
NOISE = 0.05


def reactions(n: int, links: int = 0, seed: int = 0) -> list[tuple[int | None, int | None, str, float]]:
    """(reactant index or None, product index or None, parameter, factor) per reaction."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n - 1):
        out.append((i, i + 1, "kf", 1.0 + 0.5 * np.sin(i)))
        out.append((i + 1, i, "kb", 1.0 + 0.3 * np.cos(i)))
    for i in range(0, n, 10):
        out.append((i, None, "kd", 1.0 + 0.1 * (i % 7)))
    out.append((None, 0, "kp", 1.0))
    for _ in range(links):
        i, j = rng.choice(n, 2, replace=False)
        out.append((int(i), int(j), "kf", 0.05))
    return out


def observables(n: int) -> dict[str, str]:
    """The PEtab observables: first, middle and last species and the total."""
    return {
        "first": "S0",
        "middle": f"S{n // 2}",
        "last": f"S{n - 1}",
        "total": " + ".join(f"S{i}" for i in range(n)),
    }


def exact(n: int, theta: dict[str, float], times, links: int = 0, seed: int = 0) -> np.ndarray:
    """States at ``times`` (n_t, n) from x(0) = 0, by the matrix exponential of the
    augmented system [[A, b], [0, 0]]."""
    a = np.zeros((n + 1, n + 1))
    for src, dst, par, factor in reactions(n, links, seed):
        k = theta[par] * factor
        if src is None:
            a[dst, n] += k
            continue
        a[src, src] -= k
        if dst is not None:
            a[dst, src] += k
    z0 = np.zeros(n + 1)
    z0[n] = 1.0
    return np.stack([(scipy.linalg.expm(a * t) @ z0)[:n] for t in times])


def write_problem(folder: Path, n: int, links: int = 0, seed: int = 0) -> Path:
    """Write the PEtab problem (data: the exact solution plus seeded noise); returns the YAML."""
    doc, m = sb.new_model()
    sb.compartment(m, "C", 1.0)
    for i in range(n):
        sb.species(m, f"S{i}", "C", conc=0.0)
    for pid, value in PARAMETERS.items():
        sb.parameter(m, pid, value)
    for r, (src, dst, par, factor) in enumerate(reactions(n, links, seed)):
        law = f"{float(factor)!r} * {par}" + (f" * S{src}" if src is not None else "")
        sb.reaction(
            m, f"R{r}", [f"S{src}"] if src is not None else [], [f"S{dst}"] if dst is not None else [], law
        )
    states = exact(n, PARAMETERS, TIMES, links, seed)
    obs = observables(n)
    values = {
        "first": states[:, 0],
        "middle": states[:, n // 2],
        "last": states[:, n - 1],
        "total": states.sum(axis=1),
    }
    rng = np.random.default_rng(seed + 1)
    meas = [
        (o, float(t), float(values[o][k] + NOISE * rng.normal())) for o in obs for k, t in enumerate(TIMES)
    ]
    params = {pid: (v, v / 10, v * 10, "log10") for pid, v in PARAMETERS.items()}
    return sb.petab_problem(Path(folder), doc, params, obs, meas, noise=str(NOISE))
