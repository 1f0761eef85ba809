"""User-facing errors: one line that says what was found, where, and what to do.

The CLI catches :class:`PeBenchError` only, prints its message on one line and exits 2.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class PeBenchError(Exception):
    """Base class of every error caused by the user's input, not by a bug."""


class ModelImportError(PeBenchError, ValueError):
    """An SBML file is missing, unreadable or malformed."""


class ProblemSpecError(PeBenchError, ValueError):
    """A PEtab problem (YAML or one of its tables) is missing or inconsistent."""


class UnsupportedFeatureError(PeBenchError, NotImplementedError):
    """The input uses a feature that pe_bench does not support yet."""


class ProblemNotFoundError(PeBenchError, LookupError):
    """A problem name resolves to nothing: not built in, not a path, not cached."""


class FetchError(PeBenchError, OSError):
    """A download (BioModels) failed."""
