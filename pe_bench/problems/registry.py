"""Resolve a problem name (built-in, PEtab YAML or folder, SBML file, BioModels id)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from ..errors import ProblemNotFoundError, ProblemSpecError
from . import biomodels, biopredyn
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
    """The PEtab YAML of a problem folder: the only one, else the one named like the folder."""
    yamls = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if len(yamls) == 1:
        return yamls[0]
    if not yamls:
        raise ProblemSpecError(f"{folder}: no PEtab YAML in this folder")
    named = [p for p in yamls if p.stem == folder.resolve().name]
    if len(named) == 1:
        return named[0]
    raise ProblemSpecError(
        f"{folder}: {len(yamls)} YAML files ({', '.join(p.name for p in yamls)}) and none named "
        f"'{folder.resolve().name}.yaml'; name one, e.g. {folder / yamls[0].name}"
    )


def resolve(name: str) -> Problem:
    """Load the problem that ``name`` designates.

    Order: built-in name, existing path (YAML; folder with one YAML or with several, one
    of which is named like the folder; SBML file),
    BioModels id already fetched into the cache.

    Raises:
        ProblemNotFoundError: nothing matches; the message lists what would.
        ProblemSpecError, ModelImportError, UnsupportedFeatureError: from loading.
    """
    if name in builtin_names():
        return _load_builtin(name)
    if name in biopredyn.BUILTIN:
        return load_petab(biopredyn.builtin_yaml(name), name=name)
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
        f"unknown problem '{name}': not a built-in ({', '.join(builtin_names() + list(biopredyn.BUILTIN))}), "
        "not an existing PEtab YAML, folder or SBML file, not a BioModels id"
    )
