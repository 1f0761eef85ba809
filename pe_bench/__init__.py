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
from .objective import Objective as Objective  # noqa: E402
from .problems.base import Problem as Problem  # noqa: E402
from .problems.registry import resolve as resolve  # noqa: E402
from .simulate import SolverOptions as SolverOptions  # noqa: E402

__version__ = "0.1.0"
