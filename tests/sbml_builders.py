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


def event(model, eid, trigger, variable, value):
    ev = model.createEvent()
    ev.setId(eid)
    ev.setUseValuesFromTriggerTime(True)
    trig = ev.createTrigger()
    trig.setMath(math(trigger))
    trig.setPersistent(True)
    trig.setInitialValue(False)
    ea = ev.createEventAssignment()
    ea.setVariable(variable)
    ea.setMath(math(value))


def write(doc, path: Path) -> Path:
    assert libsbml.writeSBMLToFile(doc, str(path)) == 1
    return path
