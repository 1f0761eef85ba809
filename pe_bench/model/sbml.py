"""Read an SBML model with python-libsbml into a symbolic ODE model (sympy).

libsbml's own converters expand function definitions and promote local parameters.
Initial assignments are *not* expanded numerically (that would freeze them at the
file's values): they stay symbolic, so initial states and compartment sizes are
functions of the parameters, evaluated for every parameter vector.

State convention (as in AMICI): a species with ``hasOnlySubstanceUnits=false`` is
simulated as a concentration (its symbol in math means concentration), one with
``hasOnlySubstanceUnits=true`` as an amount. Compartments must be constant.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import libsbml
import sympy as sp

from ..errors import ModelImportError, UnsupportedFeatureError
from .mathml import TIME, ast_to_sympy


@dataclass(frozen=True)
class SymbolicModel:
    """An SBML model as sympy expressions.

    Attributes:
        source: path of the SBML file (for messages).
        model_id: the SBML model id.
        state_ids: ids of the ODE states (species and rate-rule targets).
        parameter_ids: ids of the model parameters ``p`` (constant parameters and
            compartment sizes) in the order the generated functions take them.
        parameter_values: the file's value of each model parameter (nan if unset).
        rhs: d(state)/dt, in terms of states, parameters and ``TIME``.
        x0: initial state, in terms of parameters only.
        derived: assignment-rule targets and parameters fixed by initial assignments,
            as expressions of states, parameters and ``TIME``.
        species_ids: ids of species that are states (condition tables may override them).
        n_reactions: number of reactions.
    """

    source: str
    model_id: str
    state_ids: list[str]
    parameter_ids: list[str]
    parameter_values: dict[str, float]
    rhs: list[sp.Expr]
    x0: list[sp.Expr]
    derived: dict[str, sp.Expr]
    species_ids: list[str]
    n_reactions: int
    symbols: dict[str, sp.Symbol] = field(repr=False)

    def symbol(self, sid: str) -> sp.Symbol:
        """The sympy symbol of an SBML id (created on first use)."""
        if sid not in self.symbols:
            self.symbols[sid] = sp.Symbol(sid, real=True)
        return self.symbols[sid]


def read_sbml_document(path: str | os.PathLike) -> libsbml.SBMLDocument:
    """Read and validate an SBML file, expanding function definitions and local parameters.

    Raises:
        ModelImportError: the file is missing or is not valid SBML.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelImportError(f"{path}: SBML file not found")
    doc = libsbml.readSBMLFromFile(path)
    return _checked_document(doc, path)


def read_sbml_string(text: str, where: str) -> libsbml.SBMLDocument:
    """Like :func:`read_sbml_document` for an SBML string (``where`` names it in messages)."""
    return _checked_document(libsbml.readSBMLFromString(text), where)


def _checked_document(doc: libsbml.SBMLDocument, where: str) -> libsbml.SBMLDocument:
    for i in range(doc.getNumErrors()):
        err = doc.getError(i)
        if err.getSeverity() >= libsbml.LIBSBML_SEV_ERROR:
            msg = " ".join(err.getMessage().split())
            raise ModelImportError(f"{where}: malformed SBML (line {err.getLine()}): {msg}")
    if doc.getModel() is None:
        raise ModelImportError(f"{where}: SBML document has no <model>")
    for option in ("expandFunctionDefinitions", "promoteLocalParameters"):
        props = libsbml.ConversionProperties()
        props.addOption(option, True)
        if doc.convert(props) != libsbml.LIBSBML_OPERATION_SUCCESS:
            raise ModelImportError(f"{where}: libsbml converter '{option}' failed")
    return doc


def _check_supported(model: libsbml.Model, where: str) -> None:
    if model.getNumEvents():
        ev = model.getEvent(0)
        raise UnsupportedFeatureError(
            f"not supported yet: event '{ev.getId() or ev.getMetaId() or 0}' in {where}"
        )
    for i in range(model.getNumRules()):
        rule = model.getRule(i)
        if rule.isAlgebraic():
            name = rule.getMetaId() or rule.getIdAttribute() or f"rule #{i}"
            raise UnsupportedFeatureError(f"not supported yet: algebraic rule '{name}' in {where}")
    for i in range(model.getNumReactions()):
        rx = model.getReaction(i)
        if rx.isSetFast() and rx.getFast():
            raise UnsupportedFeatureError(f"not supported yet: fast reaction '{rx.getId()}' in {where}")
        for j in range(rx.getNumReactants() + rx.getNumProducts()):
            ref = rx.getReactant(j) if j < rx.getNumReactants() else rx.getProduct(j - rx.getNumReactants())
            if ref.isSetStoichiometryMath() or (ref.isSetId() and not ref.getConstant()):
                raise UnsupportedFeatureError(
                    f"not supported yet: variable stoichiometry of '{ref.getSpecies()}' in "
                    f"reaction '{rx.getId()}' in {where}"
                )
    for i in range(model.getNumSpecies()):
        s = model.getSpecies(i)
        if s.isSetConversionFactor():
            raise UnsupportedFeatureError(
                f"not supported yet: conversionFactor of species '{s.getId()}' in {where}"
            )
    if model.isSetConversionFactor():
        raise UnsupportedFeatureError(f"not supported yet: model conversionFactor in {where}")
    for i in range(model.getNumCompartments()):
        c = model.getCompartment(i)
        if not c.getConstant() or model.getRule(c.getId()) is not None:
            raise UnsupportedFeatureError(
                f"not supported yet: non-constant compartment '{c.getId()}' in {where}"
            )


def _substitute_to_fixpoint(
    exprs: dict[str, sp.Expr], symbols: dict[str, sp.Symbol], where: str
) -> dict[str, sp.Expr]:
    """Resolve definitions that refer to each other (assignment rules) into closed forms."""
    resolved = dict(exprs)
    for _ in range(len(exprs) + 1):
        subs = {symbols[k]: v for k, v in resolved.items()}
        changed = False
        for k, v in resolved.items():
            if v.free_symbols & subs.keys():
                resolved[k] = v.xreplace(subs)
                changed = True
        if not changed:
            return resolved
    cyclic = sorted(k for k, v in resolved.items() if v.free_symbols & subs.keys())
    raise ModelImportError(f"{where}: cyclic assignment rules involving {', '.join(cyclic)}")


def load_sbml(path: str | os.PathLike, keep_parameters: frozenset[str] = frozenset()) -> SymbolicModel:
    """Build a :class:`SymbolicModel` from an SBML file.

    Args:
        path: the SBML file.
        keep_parameters: parameter ids that must stay free model parameters even if the
            SBML gives them an initial assignment (PEtab tables override them).

    Raises:
        ModelImportError: missing or malformed file.
        UnsupportedFeatureError: events, delays, algebraic rules and the like.
    """
    doc = read_sbml_document(path)
    return symbolic_model(doc, os.fspath(path), keep_parameters)


def symbolic_model(
    doc: libsbml.SBMLDocument, where: str, keep_parameters: frozenset[str] = frozenset()
) -> SymbolicModel:
    """Build a :class:`SymbolicModel` from an already read SBML document."""
    model = doc.getModel()
    _check_supported(model, where)
    symbols: dict[str, sp.Symbol] = {}

    def sym(sid: str) -> sp.Symbol:
        if sid not in symbols:
            symbols[sid] = sp.Symbol(sid, real=True)
        return symbols[sid]

    def math(ast: libsbml.ASTNode, element: str) -> sp.Expr:
        return ast_to_sympy(ast, symbols, f"'{element}' in {where}")

    assignment: dict[str, sp.Expr] = {}
    rate: dict[str, sp.Expr] = {}
    for i in range(model.getNumRules()):
        rule = model.getRule(i)
        var = rule.getVariable()
        if rule.isAssignment():
            assignment[var] = math(rule.getMath(), var)
        elif rule.isRate():
            rate[var] = math(rule.getMath(), var)
    initial: dict[str, sp.Expr] = {}
    for i in range(model.getNumInitialAssignments()):
        ia = model.getInitialAssignment(i)
        initial[ia.getSymbol()] = math(ia.getMath(), ia.getSymbol())

    # Model parameters: compartments and constant-valued parameters.
    parameter_ids: list[str] = []
    parameter_values: dict[str, float] = {}
    fixed_by_initial: dict[str, sp.Expr] = {}
    state_ids: list[str] = []
    x0_raw: dict[str, sp.Expr] = {}
    for i in range(model.getNumCompartments()):
        c = model.getCompartment(i)
        cid = c.getId()
        sym(cid)
        if cid in initial and cid not in keep_parameters:
            fixed_by_initial[cid] = initial[cid]
            continue
        parameter_ids.append(cid)
        size = c.getSize() if c.isSetSize() else (1.0 if c.getSpatialDimensions() == 0 else float("nan"))
        parameter_values[cid] = float(size)
    for i in range(model.getNumParameters()):
        par = model.getParameter(i)
        pid = par.getId()
        sym(pid)
        if pid in assignment:
            continue
        value = par.getValue() if par.isSetValue() else float("nan")
        if pid in rate:
            state_ids.append(pid)
            x0_raw[pid] = initial.get(pid, sp.Float(value, 17))
            continue
        if pid in initial and pid not in keep_parameters:
            fixed_by_initial[pid] = initial[pid]
            continue
        parameter_ids.append(pid)
        parameter_values[pid] = float(value)

    # Species.
    species_ids: list[str] = []
    species_scale: dict[str, sp.Expr] = {}  # divide reaction flux by this (compartment or 1)
    held: set[str] = set()
    for i in range(model.getNumSpecies()):
        s = model.getSpecies(i)
        sid = s.getId()
        sym(sid)
        if sid in assignment:
            continue
        comp = sym(s.getCompartment())
        amount_units = s.getHasOnlySubstanceUnits()
        if sid in initial:
            x0 = initial[sid]
        elif s.isSetInitialConcentration():
            conc = sp.Float(s.getInitialConcentration(), 17)
            x0 = conc * comp if amount_units else conc
        elif s.isSetInitialAmount():
            amount = sp.Float(s.getInitialAmount(), 17)
            x0 = amount if amount_units else amount / comp
        else:
            raise ModelImportError(f"{where}: species '{sid}' has no initial value")
        state_ids.append(sid)
        species_ids.append(sid)
        x0_raw[sid] = x0
        species_scale[sid] = sp.Integer(1) if amount_units else comp
        if s.getBoundaryCondition() or s.getConstant():
            held.add(sid)

    # Resolve assignment rules and parameters fixed by initial assignments.
    derived = _substitute_to_fixpoint({**fixed_by_initial, **assignment}, symbols, where)
    derived_subs = {symbols[k]: v for k, v in derived.items()}

    # Right-hand side.
    dxdt: dict[str, sp.Expr] = {sid: sp.Integer(0) for sid in state_ids}
    for i in range(model.getNumReactions()):
        rx = model.getReaction(i)
        if not rx.isSetKineticLaw() or not rx.getKineticLaw().isSetMath():
            raise ModelImportError(f"{where}: reaction '{rx.getId()}' has no kinetic law")
        flux = math(rx.getKineticLaw().getMath(), rx.getId()).xreplace(derived_subs)
        for refs, sign in ((rx.getListOfReactants(), -1), (rx.getListOfProducts(), 1)):
            for ref in refs:
                sid = ref.getSpecies()
                if sid in held or sid not in dxdt:
                    continue
                stoich = ref.getStoichiometry() if ref.isSetStoichiometry() else 1.0
                dxdt[sid] += sign * sp.Float(stoich, 17) * flux / species_scale[sid]
    for var, expr in rate.items():
        if var not in dxdt:
            raise UnsupportedFeatureError(f"not supported yet: rate rule on '{var}' in {where}")
        dxdt[var] = expr.xreplace(derived_subs)

    # Initial state: closed form in parameters (initial values may refer to each other and
    # to assignment rules evaluated at t = 0).
    x0_resolved = _substitute_to_fixpoint({**x0_raw, **{k: v for k, v in derived.items()}}, symbols, where)
    x0 = [x0_resolved[sid].xreplace({TIME: sp.Integer(0)}) for sid in state_ids]
    return SymbolicModel(
        source=where,
        model_id=model.getId(),
        state_ids=state_ids,
        parameter_ids=parameter_ids,
        parameter_values=parameter_values,
        rhs=[dxdt[sid] for sid in state_ids],
        x0=x0,
        derived=derived,
        species_ids=species_ids,
        n_reactions=model.getNumReactions(),
        symbols=symbols,
    )
