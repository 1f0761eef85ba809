"""Resolve a problem name (built-in, PEtab YAML or folder, SBML file, BioModels id)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from ..errors import ProblemNotFoundError, ProblemSpecError
from . import biomodels
from .base import Problem
from .petab_io import load_petab
from .sbml_only import load_sbml_problem

_BUILTIN_ROOT = resources.files("pe_bench.problems") / "builtin"
_SBML_SUFFIXES = (".xml", ".sbml")


def builtin_names() -> list[str]:
    """Names of the problems shipped with pe_bench."""
    return sorted(p.name for p in _BUILTIN_ROOT.iterdir() if p.is_dir() and (p / f"{p.name}.yaml").is_file())


def _load_builtin(name: str) -> Problem:
    folder = Path(str(_BUILTIN_ROOT / name))
    problem = load_petab(folder / f"{name}.yaml", name=name)
    true_file = folder / "true_parameters.tsv"
    if true_file.is_file():
        true = pd.read_csv(true_file, sep="\t", index_col=0)["value"].astype(float).to_dict()
        problem = problem.__class__(**{**problem.__dict__, "true_parameters": true})
    return problem


def _yaml_in(folder: Path) -> Path:
    yamls = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    if len(yamls) != 1:
        raise ProblemSpecError(
            f"{folder}: a problem folder must hold exactly one PEtab YAML, found {len(yamls)}"
        )
    return yamls[0]


def resolve(name: str) -> Problem:
    """Load the problem that ``name`` designates.

    Order: built-in name, existing path (YAML, folder with one YAML, SBML file),
    BioModels id already fetched into the cache.

    Raises:
        ProblemNotFoundError: nothing matches; the message lists what would.
        ProblemSpecError, ModelImportError, UnsupportedFeatureError: from loading.
    """
    if name in builtin_names():
        return _load_builtin(name)
    path = Path(name)
    if path.is_dir():
        return load_petab(_yaml_in(path))
    if path.suffix in (".yaml", ".yml"):
        return load_petab(path)
    if path.suffix in _SBML_SUFFIXES:
        if not path.exists():
            from ..errors import ModelImportError

            raise ModelImportError(f"{path}: SBML file not found")
        return load_sbml_problem(path)
    if biomodels.BIOMODELS_ID.match(name):
        cached = biomodels.cached_path(name)
        if cached.is_file():
            return load_sbml_problem(cached, name=name)
        raise ProblemNotFoundError(
            f"BioModels entry '{name}' is not in the cache ({cached.parent}); "
            f"run 'pebench fetch {name}' first"
        )
    raise ProblemNotFoundError(
        f"unknown problem '{name}': not a built-in ({', '.join(builtin_names())}), "
        "not an existing PEtab YAML, folder or SBML file, not a BioModels id"
    )
