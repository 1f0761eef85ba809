"""Solver settings and status codes: plain Python, importable without JAX or diffrax."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

#: Status codes carried with every objective value.
STATUS_OK = 0
STATUS_INTEGRATION_FAILED = 1
STATUS_NONFINITE = 2
#: A noise parameter (sigma, or laplace's scale) <= 0 at some measurement: no likelihood.
STATUS_BAD_SIGMA = 3
STATUS_NAMES = {
    STATUS_OK: "ok",
    STATUS_INTEGRATION_FAILED: "integration_failed",
    STATUS_NONFINITE: "nonfinite",
    STATUS_BAD_SIGMA: "nonpositive_sigma",
}

#: "auto" sensitivities use forward mode up to this many estimated parameters. Measured
#: (benchmarks/bench_objective.py, llh + gradient): forward mode was faster than reverse on
#: every shared problem, up to Zheng_PNAS2012's 46 parameters.
FORWARD_MAX_PAR = 64

#: The integrators: pe_bench's Rosenbrock solver and diffrax's ESDIRK (see SolverOptions).
SOLVERS = ("auto", "rodas5", "kvaerno5")
#: Rodas5's per-step linear solvers (pe_bench.solvers.linalg).
LINEAR_SOLVERS = ("auto", "inverse", "lu", "banded")


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
        preequilibration_rtol, preequilibration_atol: step-size tolerances of Rodas5
            while it simulates to the steady state. Only the end point is used and the
            steady-state test above decides its accuracy, so the path need not be
            followed at ``rtol``: on Weber_BMC2015 (256 perturbed vectors) 1e-6 took a
            median 54 steps instead of 557 (max 91 instead of 1980), end points equal to
            1e-8 relative. (Kvaerno5 with its Newton root finder already takes few steps.)
        pcoeff, icoeff: PID controller coefficients.
        sensitivity: how gradients are computed: "forward" (forward-mode, one tangent per
            parameter propagated through the solver), "reverse" (reverse mode through
            diffrax's checkpointed steps), or "auto": forward up to ``FORWARD_MAX_PAR``
            estimated parameters, reverse above.
        solver: "rodas5" (pe_bench's own Rosenbrock solver, ``pe_bench.solvers``: one
            Jacobian and one LU per step; forward mode only), "kvaerno5" (diffrax's
            ESDIRK with a Newton root finder; both modes), or "auto": rodas5 with
            forward sensitivities, kvaerno5 with reverse.
        linear_solver: Rodas5's per-step linear solve: "inverse" (unrolled Gauss-Jordan),
            "lu" (dense LU), "banded" (banded LU after reverse Cuthill-McKee renumbering)
            or "auto": by size and sparsity (``pe_bench.solvers.linalg.choose``).
        event_tol: event times are located to ``event_tol * max(1, |t|)``.
        event_queue_size: how many event executions may be pending at once (at least
            twice the number of events; more is a failed integration).
    """

    rtol: float = 1e-10
    atol: float = 1e-10
    max_steps: int = 10_000
    blowup_threshold: float = 1e30
    steady_state_rtol: float = 1e-10
    steady_state_atol: float = 1e-12
    preequilibration_rtol: float = 1e-6
    preequilibration_atol: float = 1e-6
    pcoeff: float = 0.3
    icoeff: float = 0.3
    sensitivity: str = "auto"
    solver: str = "auto"
    linear_solver: str = "auto"
    event_tol: float = 1e-12
    event_queue_size: int = 64

    def __post_init__(self):
        if self.sensitivity not in ("auto", "forward", "reverse"):
            raise ValueError(f"sensitivity must be auto, forward or reverse, got {self.sensitivity!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {self.solver!r}")
        if self.linear_solver not in LINEAR_SOLVERS:
            raise ValueError(
                f"linear_solver must be one of {', '.join(LINEAR_SOLVERS)}, got {self.linear_solver!r}"
            )
        if self.solver == "rodas5" and self.sensitivity == "reverse":
            raise ValueError(
                "solver rodas5 supports forward sensitivities only; use kvaerno5 for reverse mode"
            )

    def resolved(self, n_par: int, rodas5_only: bool = False) -> SolverOptions:
        """These options with "auto" sensitivity and solver decided for ``n_par`` parameters.

        Models with events and problems with steady-state measurements
        (``rodas5_only``) stay on Rodas5 (forward mode): that machinery lives in
        pe_bench's own integration loop.
        """
        mode = self.sensitivity
        if mode == "auto":
            reverse = n_par > FORWARD_MAX_PAR and self.solver != "rodas5" and not rodas5_only
            mode = "reverse" if reverse else "forward"
        solver = self.solver
        if solver == "auto":
            solver = "rodas5" if mode == "forward" else "kvaerno5"
        return dataclasses.replace(self, sensitivity=mode, solver=solver)

    def as_dict(self) -> dict:
        """The settings as a plain dict (for metadata)."""
        return dict(self.__dict__)
