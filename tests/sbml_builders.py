"""Build small SBML files with libsbml's own API and formula parser (not with pe_bench)."""

from __future__ import annotations

from pathlib import Path

import libsbml


def new_model(level: int = 3, version: int = 2):
    doc = libsbml.SBMLDocument(level, version)
    model = doc.createModel()
    model.setId("m")
    return doc, model


def math(formula: str):
    ast = libsbml.parseL3Formula(formula)
    assert ast is not None, libsbml.getLastParseL3Error()
    return ast


def compartment(model, cid, size):
    c = model.createCompartment()
    c.setId(cid)
    c.setSize(size)
    c.setConstant(True)
    c.setSpatialDimensions(3)


def species(model, sid, comp, *, conc=None, amount=None, only_substance=False):
    s = model.createSpecies()
    s.setId(sid)
    s.setCompartment(comp)
    if conc is not None:
        s.setInitialConcentration(conc)
    if amount is not None:
        s.setInitialAmount(amount)
    s.setHasOnlySubstanceUnits(only_substance)
    s.setBoundaryCondition(False)
    s.setConstant(False)


def parameter(model, pid, value, constant=True):
    p = model.createParameter()
    p.setId(pid)
    p.setValue(value)
    p.setConstant(constant)


def reaction(model, rid, reactants, products, law, local=None):
    r = model.createReaction()
    r.setId(rid)
    r.setReversible(False)
    for sid in reactants:
        ref = r.createReactant()
        ref.setSpecies(sid)
        ref.setStoichiometry(1)
        ref.setConstant(True)
    for sid in products:
        ref = r.createProduct()
        ref.setSpecies(sid)
        ref.setStoichiometry(1)
        ref.setConstant(True)
    kl = r.createKineticLaw()
    for k, v in (local or {}).items():
        lp = kl.createLocalParameter()
        lp.setId(k)
        lp.setValue(v)
    kl.setMath(math(law))
    return r


def function(model, fid, args, body):
    fd = model.createFunctionDefinition()
    fd.setId(fid)
    fd.setMath(math(f"lambda({', '.join(args)}, {body})"))


def event(
    model,
    eid,
    trigger,
    variable=None,
    value=None,
    *,
    assignments=None,
    delay=None,
    priority=None,
    persistent=True,
    initial_value=False,
    use_trigger_values=True,
):
    ev = model.createEvent()
    ev.setId(eid)
    ev.setUseValuesFromTriggerTime(use_trigger_values)
    trig = ev.createTrigger()
    trig.setMath(math(trigger))
    trig.setPersistent(persistent)
    trig.setInitialValue(initial_value)
    if delay is not None:
        ev.createDelay().setMath(math(delay))
    if priority is not None:
        ev.createPriority().setMath(math(priority))
    for var, val in (({variable: value} if variable is not None else {}) | (assignments or {})).items():
        ea = ev.createEventAssignment()
        ea.setVariable(var)
        ea.setMath(math(val))
    return ev


def rule(model, kind, variable, formula):
    r = model.createAssignmentRule() if kind == "assignment" else model.createRateRule()
    r.setVariable(variable)
    r.setMath(math(formula))
    return r


def write(doc, path: Path) -> Path:
    assert libsbml.writeSBMLToFile(doc, str(path)) == 1
    return path


def petab_problem(folder: Path, doc, parameters, observables, measurements, noise="0.1") -> Path:
    """Write a PEtab v1 problem around an SBML document; returns the YAML path.

    Args:
        parameters: {id: (nominal, lower, upper, scale)}, all estimated.
        observables: {id: formula}.
        measurements: [(observable id, time, value)].
        noise: the noise formula of every observable.
    """
    folder.mkdir(parents=True, exist_ok=True)
    write(doc, folder / "model.xml")
    (folder / "conditions.tsv").write_text("conditionId\tconditionName\nc0\tc0\n")
    rows = ["observableId\tobservableFormula\tnoiseFormula"]
    rows += [f"{o}\t{f}\t{noise}" for o, f in observables.items()]
    (folder / "observables.tsv").write_text("\n".join(rows) + "\n")
    rows = ["observableId\tsimulationConditionId\tmeasurement\ttime"]
    rows += [f"{o}\tc0\t{v!r}\t{t!r}" for o, t, v in measurements]
    (folder / "measurements.tsv").write_text("\n".join(rows) + "\n")
    rows = ["parameterId\tparameterScale\tlowerBound\tupperBound\tnominalValue\testimate"]
    rows += [f"{p}\t{sc}\t{lo!r}\t{hi!r}\t{v!r}\t1" for p, (v, lo, hi, sc) in parameters.items()]
    (folder / "parameters.tsv").write_text("\n".join(rows) + "\n")
    return petab_yaml(folder)


def petab_yaml(folder: Path) -> Path:
    """The PEtab v1 YAML of a folder holding model.xml and the four standard tables."""
    (folder / "problem.yaml").write_text(
        "format_version: 1\nparameter_file: parameters.tsv\nproblems:\n"
        "  - condition_files: [conditions.tsv]\n    measurement_files: [measurements.tsv]\n"
        "    observable_files: [observables.tsv]\n    sbml_files: [model.xml]\n"
    )
    return folder / "problem.yaml"
