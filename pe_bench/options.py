"""Solver settings and status codes: plain Python, importable without JAX or diffrax."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

#: Status codes carried with every objective value.
STATUS_OK = 0
STATUS_INTEGRATION_FAILED = 1
STATUS_NONFINITE = 2
STATUS_NAMES = {
    STATUS_OK: "ok",
    STATUS_INTEGRATION_FAILED: "integration_failed",
    STATUS_NONFINITE: "nonfinite",
}

#: "auto" sensitivities use forward mode up to this many estimated parameters. Measured
#: (benchmarks/bench_objective.py, llh + gradient): forward mode was faster than reverse on
#: every shared problem, up to Zheng_PNAS2012's 46 parameters.
FORWARD_MAX_PAR = 64


@dataclass(frozen=True)
class SolverOptions:
    """Integration settings shared by every simulation of a problem.

    Attributes:
        rtol, atol: relative and absolute tolerances of the PID step-size controller
            (and of the Newton root finder inside the implicit solver).
        max_steps: step budget per simulation; exceeding it is a failed integration.
        blowup_threshold: a state whose magnitude exceeds this (or is not finite) stops
            the integration as failed at once, instead of spending ``max_steps`` steps on a
            solution that explodes in finite time (perturbed Crauste_CellSystems2017 reaches
            1e154 by t = 8).
        steady_state_rtol, steady_state_atol: pre-equilibration stops once
            ``||dx/dt|| < atol + rtol * ||x||``.
        pcoeff, icoeff: PID controller coefficients.
        sensitivity: how gradients are computed: "forward" (forward-mode, one tangent per
            parameter propagated through the solver, diffrax ``ForwardMode``), "reverse"
            (reverse mode through the solver's checkpointed steps), or "auto": forward
            up to ``FORWARD_MAX_PAR`` estimated parameters, reverse above.
    """

    rtol: float = 1e-10
    atol: float = 1e-10
    max_steps: int = 10_000
    blowup_threshold: float = 1e30
    steady_state_rtol: float = 1e-10
    steady_state_atol: float = 1e-12
    pcoeff: float = 0.3
    icoeff: float = 0.3
    sensitivity: str = "auto"

    def __post_init__(self):
        if self.sensitivity not in ("auto", "forward", "reverse"):
            raise ValueError(f"sensitivity must be auto, forward or reverse, got {self.sensitivity!r}")

    def resolved(self, n_par: int) -> SolverOptions:
        """These options with ``sensitivity`` "auto" decided for ``n_par`` parameters."""
        if self.sensitivity != "auto":
            return self
        mode = "forward" if n_par <= FORWARD_MAX_PAR else "reverse"
        return dataclasses.replace(self, sensitivity=mode)

    def as_dict(self) -> dict:
        """The settings as a plain dict (for metadata)."""
        return dict(self.__dict__)
