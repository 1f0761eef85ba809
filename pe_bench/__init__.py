"""pe_bench: benchmark parameter-estimation strategies on kinetic models (SBML/PEtab) in JAX."""

import os as _os

# Solver failures are data, never exceptions: equinox/lineax runtime checks (a NaN reaching
# a linear solve inside the implicit ODE solver, say) give NaN instead of raising, so one
# bad parameter vector cannot abort a batch. Set before equinox is first imported.
_os.environ.setdefault("EQX_ON_ERROR", "nan")
# XLA's C++ log lines ("algebraic simplifier ...") are noise to users.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from .errors import (  # noqa: E402
    ModelImportError as ModelImportError,
)
from .errors import (
    PeBenchError as PeBenchError,
)
from .errors import (
    ProblemSpecError as ProblemSpecError,
)
from .errors import (
    UnsupportedFeatureError as UnsupportedFeatureError,
)
from .options import SolverOptions as SolverOptions  # noqa: E402

# The rest of the public API is imported on first use (PEP 562), so that commands that do
# not need JAX, diffrax or petab (or find a stored objective, see aot.py) start quickly.
_LAZY = {
    "Objective": ("pe_bench.objective", "Objective"),
    "Problem": ("pe_bench.problems.base", "Problem"),
    "resolve": ("pe_bench.problems.registry", "resolve"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pe_bench' has no attribute {name!r}")


__all__ = [
    "ModelImportError",
    "Objective",
    "PeBenchError",
    "Problem",
    "ProblemSpecError",
    "SolverOptions",
    "UnsupportedFeatureError",
    "resolve",
]

__version__ = "0.1.0"
