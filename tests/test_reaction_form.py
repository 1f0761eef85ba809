"""The right-hand side generated from the reaction form (rates + flux terms, a segment sum)
against the summed form (one sympy expression per state) on the shared problems' models:
the same derivatives at random states and parameters."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import SHARED, yaml_of

from pe_bench.model.codegen import jax_function, reaction_rhs
from pe_bench.model.mathml import TIME
from pe_bench.problems.petab_io import load_petab

PROBLEMS = [
    "Boehm_JProteomeRes2014",  # compartments of different sizes (concentrations divided by them)
    "Brannmark_JBC2010",
    "Fiedler_BMCSystBiol2016",
    "Bruno_JExpBot2016",
    "Zheng_PNAS2012",
    "Weber_BMC2015",
    "Borghans_BiophysChem1997",
    "Sneyd_PNAS2002",
    "Blasi_CellSystems2016",
]


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/benchmark-models missing")
@pytest.mark.parametrize("problem_id", PROBLEMS)
def test_reaction_form_equals_summed_rhs(problem_id):
    m = load_petab(yaml_of(problem_id)).model
    assert m.reaction_form is not None and len(m.reaction_form.rates) == m.n_reactions
    xs, ps = list(m.state_symbols), [m.symbol(p) for p in m.parameter_ids]
    summed = jax_function([TIME, xs, ps], m.rhs)
    split = reaction_rhs([TIME, xs, ps], len(xs), m.reaction_form)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.uniform(0.1, 2.0, len(xs))
        p = rng.uniform(0.1, 2.0, len(ps))
        want, got = np.asarray(summed(0.5, x, p)), np.asarray(split(0.5, x, p))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(want).max()))
