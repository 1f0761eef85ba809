"""SBML import: features against a hand-written right-hand side solved by scipy; unsupported ones."""

import numpy as np
import pytest
import sbml_builders as sb
from scipy.integrate import solve_ivp

from pe_bench.errors import ModelImportError, UnsupportedFeatureError
from pe_bench.model.sbml import load_sbml
from pe_bench.problems.sbml_only import load_sbml_problem
from pe_bench.simulate import make_simulator

V, K1, K2, KL = 2.5, 0.7, 0.3, 0.9


def feature_model(tmp_path):
    """Non-unit compartment, amount and concentration species, function definition,
    local parameter, initial assignment, time-dependent piecewise assignment rule, rate rule
    with relational and boolean operators, and the usual math functions."""
    doc, m = sb.new_model()
    sb.compartment(m, "C", V)
    sb.species(m, "A", "C", conc=1.0)
    sb.species(m, "B", "C", amount=0.5, only_substance=True)
    sb.species(m, "S", "C", conc=0.0)
    sb.parameter(m, "k1", K1)
    sb.parameter(m, "k2", K2)
    sb.parameter(m, "s", 0.0, constant=False)
    sb.parameter(m, "r", 0.0, constant=False)
    sb.function(m, "f", ["a", "b"], "a * b / (1 + b)")
    ia = m.createInitialAssignment()
    ia.setSymbol("S")
    ia.setMath(sb.math("2 * k1"))
    rule = m.createAssignmentRule()
    rule.setVariable("s")
    rule.setMath(sb.math("piecewise(1, time < 2, 0.2)"))
    rate = m.createRateRule()
    rate.setVariable("r")
    rate.setMath(sb.math("-0.5 * r + piecewise(1, (A > 0.5) && (time < 5), 0)"))
    sb.reaction(m, "R1", ["A"], ["B"], "C * f(k1, A) * s")
    sb.reaction(m, "R2", ["B"], ["S"], "kl * B", local={"kl": KL})
    sb.reaction(m, "R3", ["S"], [], "C * k2 * pow(S, 2) / (1 + abs(ln(1 + S))) * exp(0) * sqrt(4) / 2")
    return sb.write(doc, tmp_path / "features.xml")


def reference_rhs(t, x):
    A, B, S, r = x
    s = 1.0 if t < 2 else 0.2
    R1 = V * (K1 * A / (1 + A)) * s
    R2 = KL * B
    R3 = V * K2 * S**2 / (1 + abs(np.log(1 + S)))
    return [-R1 / V, R1 - R2, R2 / V - R3 / V, -0.5 * r + (1.0 if (A > 0.5 and t < 5) else 0.0)]


def test_feature_model_matches_scipy(tmp_path):
    ts = np.linspace(0, 8, 33)
    pb = load_sbml_problem(feature_model(tmp_path), times=ts)
    out = make_simulator(pb)(np.zeros(0))
    assert bool(out["ok"])
    states = np.asarray(out["states"][0])
    order = [pb.model.state_ids.index(s) for s in ["A", "B", "S", "r"]]
    x0 = [1.0, 0.5, 2 * K1, 0.0]
    ref = solve_ivp(
        reference_rhs, (0, 8), x0, method="LSODA", t_eval=ts, rtol=1e-12, atol=1e-12, max_step=1e-3
    )
    assert ref.success
    np.testing.assert_allclose(states[:, order], ref.y.T, rtol=1e-5, atol=1e-7)


def test_initial_state_follows_parameters(tmp_path):
    model = load_sbml(feature_model(tmp_path))
    s_index = model.state_ids.index("S")
    assert str(model.x0[s_index]) == "2*k1"  # not frozen at the file's value


def _with(tmp_path, edit, version=2):
    doc, m = sb.new_model(3, version)
    sb.compartment(m, "C", 1.0)
    sb.species(m, "A", "C", conc=1.0)
    sb.parameter(m, "k", 1.0)
    sb.reaction(m, "R1", ["A"], [], "k * A")
    edit(m)
    return sb.write(doc, tmp_path / "bad.xml")


def test_delay_is_reported_unsupported(tmp_path):
    path = _with(tmp_path, lambda m: sb.reaction(m, "R2", ["A"], [], "k * delay(A, 1)"))
    with pytest.raises(UnsupportedFeatureError, match=r"delay\(\) in 'R2' in .*bad.xml"):
        load_sbml(path)


def test_fast_reaction_is_reported_unsupported(tmp_path):
    # 'fast' exists up to SBML L3v1 (L3v2 dropped it).
    def fast(m):
        m.getReaction("R1").setFast(False)
        sb.reaction(m, "R2", ["A"], [], "k * A").setFast(True)

    path = _with(tmp_path, fast, version=1)
    with pytest.raises(UnsupportedFeatureError, match=r"not supported yet: fast reaction 'R2' in .*bad.xml"):
        load_sbml(path)


def test_algebraic_rule_that_cannot_be_made_explicit_is_reported(tmp_path):
    def add_rule(m):
        sb.parameter(m, "z", 1.0, constant=False)
        rule = m.createAlgebraicRule()
        rule.setMetaId("alg1")
        rule.setMath(sb.math("z^2 - A"))  # two solutions for z

    with pytest.raises(
        UnsupportedFeatureError, match=r"algebraic rule 'alg1' \(2 solutions for 'z'.* in .*bad.xml"
    ):
        load_sbml(_with(tmp_path, add_rule))


V0, GROWTH, K2, CF = 1.5, 0.1, 0.4, 2.0


def semantics_model(tmp_path):
    """A growing compartment (rate rule) with a species in concentration, a conversion
    factor, rateOf, an algebraic rule, and a stoichiometry set by an assignment rule."""
    doc, m = sb.new_model()
    sb.compartment(m, "V", V0)
    m.getCompartment("V").setConstant(False)
    sb.compartment(m, "W", 1.0)
    sb.species(m, "A", "V", conc=2.0)
    sb.species(m, "B", "W", conc=0.0)
    sb.species(m, "C", "W", conc=0.0)
    m.getSpecies("B").setConversionFactor("cf")
    sb.parameter(m, "k1", K1)
    sb.parameter(m, "k2", K2)
    sb.parameter(m, "cf", CF)
    for pid in ("r", "z"):  # s1 is the speciesReference's own id (a parameter too would clash)
        sb.parameter(m, pid, 0.0, constant=False)
    sb.rule(m, "rate", "V", str(GROWTH))
    sb.rule(m, "rate", "r", "rateOf(A)")
    sb.rule(m, "assignment", "s1", "1 + time / 10")
    alg = m.createAlgebraicRule()
    alg.setMath(sb.math("z - 2 * B"))
    sb.reaction(m, "R1", ["A"], ["B"], "k1 * A * V")
    r2 = sb.reaction(m, "R2", ["B"], [], "k2 * B * W")
    ref = r2.createProduct()
    ref.setSpecies("C")
    ref.setId("s1")
    ref.setConstant(False)
    return sb.write(doc, tmp_path / "semantics.xml")


def semantics_rhs(t, y):
    a_amount, b, c, r = y  # A as an amount (its compartment grows), B, C and r as values
    vol = V0 + GROWTH * t
    r1 = K1 * (a_amount / vol) * vol
    r2 = K2 * b
    d_a = -r1
    return [d_a, CF * (r1 - r2), (1 + t / 10) * r2, d_a / vol - a_amount * GROWTH / vol**2]


def test_variable_compartment_conversion_factor_rate_of_algebraic_and_stoichiometry(tmp_path):
    ts = np.linspace(0, 6, 13)
    outputs = [("A", "concentration"), ("A", "amount"), ("B", None), ("C", None), ("r", None), ("z", None),
               ("V", None), ("s1", None)]  # fmt: skip
    pb = load_sbml_problem(semantics_model(tmp_path), times=ts, outputs=outputs)
    out = make_simulator(pb)(np.zeros(0))
    assert bool(out["ok"])
    got = np.asarray(out["y"]).reshape(len(ts), len(outputs))
    ref = solve_ivp(
        semantics_rhs, (0, 6), [2.0 * V0, 0, 0, 0], method="LSODA", t_eval=ts, rtol=1e-12, atol=1e-12
    )
    assert ref.success
    a_amount, b, c, r = ref.y
    vol = V0 + GROWTH * ts
    expected = np.stack([a_amount / vol, a_amount, b, c, r, 2 * b, vol, 1 + ts / 10], axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


def test_malformed_and_missing_files(tmp_path):
    bad = tmp_path / "broken.xml"
    bad.write_text("<sbml><model id='x'><listOfSpecies><species id='A'/></model>")
    with pytest.raises(ModelImportError, match=r"broken.xml: malformed SBML"):
        load_sbml(bad)
    with pytest.raises(ModelImportError, match=r"nothere.xml: SBML file not found"):
        load_sbml(tmp_path / "nothere.xml")
