"""Read an SBML model with python-libsbml into a symbolic ODE model with events (sympy).

libsbml's own converters flatten hierarchical (comp) models, expand function definitions
and promote local parameters. Initial assignments are *not* expanded numerically (that
would freeze them at the file's values): they stay symbolic, so initial states and
compartment sizes are functions of the parameters, evaluated for every parameter vector.

States (as in AMICI):

- a species with ``hasOnlySubstanceUnits=false`` in a compartment of constant size is
  simulated as a concentration, one with ``hasOnlySubstanceUnits=true`` as an amount;
- a species in concentration whose compartment changes size (rate rule, assignment rule,
  event assignment) is simulated as its *amount*, so that reactions change the amount and
  the concentration follows the compartment (the species' symbol then means
  ``amount / size``);
- a rate rule's target is a state in its own units (a species' concentration or amount,
  a parameter, a compartment size, a species reference's stoichiometry);
- a parameter, compartment or stoichiometry that only events change is a state with
  ``d/dt = 0``.

Assignment rules, solved algebraic rules, reaction rates (an SBML reaction id in math
means its rate), species concentrations of amount states and parameters fixed by initial
assignments are *derived*: closed-form expressions of the states, the parameters and time.
Everything the simulator needs is then an expression of ``(TIME, states, parameters)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import libsbml
import sympy as sp

from ..errors import ModelImportError, UnsupportedFeatureError
from .mathml import TIME, RateOf, as_bool, as_number, ast_to_sympy


@dataclass(frozen=True)
class Event:
    """One SBML event, its math in terms of states, parameters and ``TIME``.

    Attributes:
        id: the event id (or ``#i`` for an event without one).
        trigger: boolean expression; the event fires when it turns from false to true.
        initial_value: the trigger's value just before the start (``initialValue``): if
            false and the trigger holds at the start, the event fires at the start.
        persistent: a delayed execution survives its trigger turning false again.
        use_values_from_trigger_time: assignments of a delayed event are computed at the
            trigger time (True) or at the execution time (False).
        delay: delay expression (evaluated at trigger time), or None.
        priority: priority expression (evaluated when events are simultaneous), or None.
        targets: indices of the states the event assigns.
        values: the value each target is assigned, in the units of the target's SBML
            symbol (concentration for a species in concentration).
        scales: multiplies each value, evaluated with the state *after* the assignments:
            ``1 / size`` for a species in concentration (a state of its own) whose
            compartment the event resizes, else 1.
    """

    id: str
    trigger: sp.Basic
    initial_value: bool
    persistent: bool
    use_values_from_trigger_time: bool
    delay: sp.Expr | None
    priority: sp.Expr | None
    targets: tuple[int, ...]
    values: tuple[sp.Expr, ...]
    scales: tuple[sp.Expr, ...]


@dataclass(frozen=True)
class ReactionForm:
    """The right-hand side as ``base + N v``: reaction rates and the terms that move species.

    ``rhs[i] = base[i] + sum(coefficient * rates[r] for (i, r, coefficient) in terms)``,
    the same expressions as :attr:`SymbolicModel.rhs` before they are summed, so that a
    large network can be generated as a vector of rates (grouped by shape, a few array
    operations) and a sparse sum instead of one large expression per state.

    Attributes:
        rates: the reaction rates, in terms of states, parameters and ``TIME``.
        terms: ``(state index, rate index, coefficient)``: the coefficient (sign x
            stoichiometry x conversion factor / compartment size where the state is a
            concentration) multiplies the rate in that state's derivative.
        base: per state, what its derivative has besides reaction fluxes (a rate rule; 0).
    """

    rates: list[sp.Expr]
    terms: list[tuple[int, int, sp.Expr]]
    base: list[sp.Expr]


@dataclass(frozen=True)
class SymbolicModel:
    """An SBML model as sympy expressions.

    Attributes:
        source: path of the SBML file (for messages).
        model_id: the SBML model id.
        state_ids: SBML ids of the ODE states (species, rate-rule and event targets).
        state_symbols: the sympy symbol of each state (the id's own symbol, or
            ``__amount_<id>`` for a species in concentration simulated as an amount).
        parameter_ids: ids of the model parameters ``p`` (constant parameters,
            compartment sizes and stoichiometries) in the order the generated functions
            take them.
        parameter_values: the file's value of each model parameter (nan if unset).
        rhs: d(state)/dt, in terms of states, parameters and ``TIME``.
        x0: initial state, in terms of parameters only.
        derived: assignment-rule targets, reaction rates, concentrations of amount
            states and parameters fixed by initial assignments, as expressions of
            states, parameters and ``TIME``.
        species_ids: ids of species that are states (condition tables may override them).
        amount_states: ids of species in concentration simulated as amounts.
        n_reactions: number of reactions.
        events: the events, in document order.
        expressions: every SBML id (species, compartment, parameter, species reference,
            reaction) as an expression of states, parameters and ``TIME``; a species'
            expression is in its own units (concentration unless hasOnlySubstanceUnits).
        species_compartment: the compartment of each species.
        species_amount_units: ``hasOnlySubstanceUnits`` of each species.
        reaction_form: the right-hand side as rates and flux terms (None where a term
            needs rateOf, which only the summed form resolves).
    """

    source: str
    model_id: str
    state_ids: list[str]
    state_symbols: list[sp.Symbol]
    parameter_ids: list[str]
    parameter_values: dict[str, float]
    rhs: list[sp.Expr]
    x0: list[sp.Expr]
    derived: dict[str, sp.Expr]
    species_ids: list[str]
    amount_states: frozenset[str]
    n_reactions: int
    events: list[Event]
    expressions: dict[str, sp.Expr]
    species_compartment: dict[str, str]
    species_amount_units: dict[str, bool]
    symbols: dict[str, sp.Symbol] = field(repr=False)
    reaction_form: ReactionForm | None = field(default=None, repr=False)

    def symbol(self, sid: str) -> sp.Symbol:
        """The sympy symbol of an SBML id (created on first use)."""
        if sid not in self.symbols:
            self.symbols[sid] = sp.Symbol(sid, real=True)
        return self.symbols[sid]

    def quantity(self, sid: str, units: str | None = None) -> sp.Expr:
        """An SBML id as an expression of states, parameters and time.

        Args:
            sid: the id.
            units: for a species, "amount" or "concentration" (default: the species'
                own units); ignored for other ids.

        Raises:
            KeyError: ``sid`` is not an id of the model.
        """
        expr = self.expressions[sid]
        if units is None or sid not in self.species_compartment:
            return expr
        size = self.expressions[self.species_compartment[sid]]
        own_amount = self.species_amount_units[sid]
        if units == "amount" and not own_amount:
            return expr * size
        if units == "concentration" and own_amount:
            return expr / size
        return expr


#: SBML Level 3 packages that change what a model computes (others, such as layout,
#: render, groups or fbc's flux bounds, leave the ODE semantics alone; comp is flattened).
_MATH_PACKAGES = ("qual", "multi", "arrays", "spatial", "distrib", "dyn", "req")


def read_sbml_document(path: str | os.PathLike) -> libsbml.SBMLDocument:
    """Read and validate an SBML file, flattening comp models and expanding functions.

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


def _first_error(doc: libsbml.SBMLDocument, skip: frozenset[int] = frozenset()) -> libsbml.SBMLError | None:
    for i in range(doc.getNumErrors()):
        err = doc.getError(i)
        if err.getSeverity() >= libsbml.LIBSBML_SEV_ERROR and err.getErrorId() not in skip:
            return err
    return None


def _uses_package(doc: libsbml.SBMLDocument, name: str) -> bool:
    return any(doc.getPlugin(i).getPackageName() == name for i in range(doc.getNumPlugins()))


def _checked_document(doc: libsbml.SBMLDocument, where: str) -> libsbml.SBMLDocument:
    err = _first_error(doc)
    if err is not None:
        msg = " ".join(err.getMessage().split())
        raise ModelImportError(f"{where}: malformed SBML (line {err.getLine()}): {msg}")
    if doc.getModel() is None:
        raise ModelImportError(f"{where}: SBML document has no <model>")
    if os.path.exists(where):  # comp's external model definitions are found beside the file
        doc.setLocationURI("file:" + os.path.abspath(where))
    _check_consistency(doc, where)
    if _uses_package(doc, "comp"):
        # Hierarchical model composition: libsbml's flattening converter turns submodels,
        # replacements and deletions into one plain model.
        props = libsbml.ConversionProperties()
        props.addOption("flatten comp", True)
        props.addOption("leave_ports", False)
        if doc.convert(props) != libsbml.LIBSBML_OPERATION_SUCCESS:
            err = _first_error(doc)
            msg = " ".join(err.getMessage().split()) if err is not None else "unknown reason"
            raise ModelImportError(f"{where}: could not flatten the comp model: {msg}")
    for option in ("expandFunctionDefinitions", "promoteLocalParameters"):
        props = libsbml.ConversionProperties()
        props.addOption(option, True)
        if doc.convert(props) != libsbml.LIBSBML_OPERATION_SUCCESS:
            raise ModelImportError(f"{where}: libsbml converter '{option}' failed")
    for i in range(doc.getNumPlugins()):
        name = doc.getPlugin(i).getPackageName()
        if name in _MATH_PACKAGES:
            raise UnsupportedFeatureError(f"not supported yet: SBML package '{name}' in {where}")
    return doc


#: libsbml's consistency checks left off: units (most published models leave units
#: incomplete, and pe_bench simulates in the model's own numbers), modelling practice
#: and SBO terms (advice and annotation, not semantics).
_UNCHECKED = (
    libsbml.LIBSBML_CAT_UNITS_CONSISTENCY,
    libsbml.LIBSBML_CAT_MODELING_PRACTICE,
    libsbml.LIBSBML_CAT_SBO_CONSISTENCY,
)
#: Errors about unit identifiers, which the general checks include although units do not
#: enter the simulation (10311-10313: a units attribute naming no unit definition).
_UNIT_ERRORS = frozenset({10311, 10312, 10313})


def _check_consistency(doc: libsbml.SBMLDocument, where: str) -> None:
    """Libsbml's validation (identifiers, MathML, structure, overdetermination): errors refuse.

    A species reference, kinetic law, rule, event or initial assignment that names an id
    the model does not declare is an error here; warnings pass.

    Raises:
        ModelImportError: the first error, with its line and libsbml's message.
    """
    for category in _UNCHECKED:
        doc.setConsistencyChecks(category, False)
    doc.checkConsistency()
    err = _first_error(doc, skip=_UNIT_ERRORS)
    if err is not None:
        msg = " ".join(err.getMessage().split())
        raise ModelImportError(
            f"{where}: invalid SBML (line {err.getLine()}, libsbml {err.getErrorId()}): {msg}"
        )


def _check_supported(model: libsbml.Model, where: str) -> None:
    for i in range(model.getNumReactions()):
        rx = model.getReaction(i)
        if rx.isSetFast() and rx.getFast():
            raise UnsupportedFeatureError(f"not supported yet: fast reaction '{rx.getId()}' in {where}")


def _substitute_to_fixpoint(
    exprs: dict[str, sp.Basic], symbols: dict[str, sp.Symbol], where: str
) -> dict[str, sp.Basic]:
    """Resolve definitions that refer to each other (assignment rules) into closed forms.

    Each definition is resolved once, after the ones it uses (depth first), so a chain
    of n rules costs n substitutions, not n passes over all of them.

    Raises:
        ModelImportError: definitions that refer to each other in a cycle.
    """
    keys = {symbols[k]: k for k in exprs}
    deps = {k: sorted({keys[s] for s in v.free_symbols if s in keys}) for k, v in exprs.items()}
    resolved: dict[str, sp.Basic] = {}
    for root in exprs:
        if root in resolved:
            continue
        # Iterative depth-first walk (models with thousands of rules exceed Python's recursion).
        stack, on_path = [(root, iter(deps[root]))], {root}
        while stack:
            k, it = stack[-1]
            d = next(it, None)
            if d is None:
                subs = {symbols[x]: resolved[x] for x in deps[k]}
                resolved[k] = exprs[k].xreplace(subs) if subs else exprs[k]
                on_path.discard(k)
                stack.pop()
            elif d in on_path:
                cycle = [x for x, _ in stack[[x for x, _ in stack].index(d) :]]
                raise ModelImportError(f"{where}: cyclic definitions involving {', '.join(cycle)}")
            elif d not in resolved:
                on_path.add(d)
                stack.append((d, iter(deps[d])))
    return resolved


def load_sbml(path: str | os.PathLike, keep_parameters: frozenset[str] = frozenset()) -> SymbolicModel:
    """Build a :class:`SymbolicModel` from an SBML file.

    Args:
        path: the SBML file.
        keep_parameters: parameter ids that must stay free model parameters even if the
            SBML gives them an initial assignment (PEtab tables override them).

    Raises:
        ModelImportError: missing or malformed file.
        UnsupportedFeatureError: delays, fast reactions, algebraic rules that cannot be
            made explicit and the like.
    """
    doc = read_sbml_document(path)
    return symbolic_model(doc, os.fspath(path), keep_parameters)


def symbolic_model(
    doc: libsbml.SBMLDocument, where: str, keep_parameters: frozenset[str] = frozenset()
) -> SymbolicModel:
    """Build a :class:`SymbolicModel` from an already read SBML document."""
    model = doc.getModel()
    _check_supported(model, where)
    return _Builder(model, where, keep_parameters).build()


def _element_name(el: libsbml.SBase, fallback: str) -> str:
    return el.getIdAttribute() or el.getMetaId() or fallback


class _Builder:
    """One SBML model -> :class:`SymbolicModel` (see the module docstring for the rules)."""

    def __init__(self, model: libsbml.Model, where: str, keep: frozenset[str]):
        self.model = model
        self.where = where
        self.keep = keep
        self.symbols: dict[str, sp.Symbol] = {}

    # -- helpers ----------------------------------------------------------------------
    def sym(self, sid: str) -> sp.Symbol:
        if sid not in self.symbols:
            self.symbols[sid] = sp.Symbol(sid, real=True)
        return self.symbols[sid]

    def math(self, el: libsbml.SBase, element: str, boolean: bool = False) -> sp.Basic | None:
        """The math of an element, or None where the element has none (SBML L3v2 allows it)."""
        if el is None or not el.isSetMath():
            return None
        expr = ast_to_sympy(el.getMath(), self.symbols, f"'{element}' in {self.where}")
        return as_bool(expr) if boolean else as_number(expr)

    def unsupported(self, what: str) -> UnsupportedFeatureError:
        return UnsupportedFeatureError(f"not supported yet: {what} in {self.where}")

    # -- the build --------------------------------------------------------------------
    def build(self) -> SymbolicModel:
        m = self.model
        self._collect()
        self._solve_algebraic_rules()
        variable_compartments = {
            cid
            for cid in self.compartments
            if cid in self.assignment or cid in self.rate or cid in self.event_targets
        }

        self.state_ids: list[str] = []
        self.state_syms: list[sp.Symbol] = []
        self.x0_raw: dict[str, sp.Basic] = {}  # by state symbol name
        self.rhs: dict[str, sp.Basic] = {}  # by state symbol name
        self.parameter_ids: list[str] = []
        self.parameter_values: dict[str, float] = {}
        self.rules: dict[str, sp.Basic] = dict(self.assignment)  # dynamic derived definitions
        self.fixed: dict[str, sp.Basic] = {}  # constant, set by initial assignments
        for cid, c in self.compartments.items():
            size = c.getSize() if c.isSetSize() else (1.0 if c.getSpatialDimensions() == 0 else float("nan"))
            self._value_entity(cid, size)
        for pid, par in self.parameters.items():
            self._value_entity(pid, par.getValue() if par.isSetValue() else float("nan"))
        for rid, ref in self.species_refs.items():
            value = ref.getStoichiometry() if ref.isSetStoichiometry() else 1.0
            self._value_entity(rid, value)

        species_ids: list[str] = []
        amount_states: set[str] = set()
        flux_scale: dict[str, sp.Basic] = {}  # species -> its state symbol name and divisor
        self.species_state: dict[str, str] = {}
        for sid, s in self.species.items():
            self.sym(sid)
            comp = s.getCompartment()
            size = self.sym(comp)
            amount_units = s.getHasOnlySubstanceUnits()
            if sid in self.assignment:
                continue
            x0 = self._species_initial(sid, s, size, amount_units)
            species_ids.append(sid)
            held = s.getBoundaryCondition() or s.getConstant()
            # (A constant species keeps its amount when its compartment changes, as a boundary
            # species does: SBML Test Suite cases 1117 and 1118.)
            if sid in self.rate or amount_units or comp not in variable_compartments:
                name = sid
                self._add_state(sid, self.sym(sid), x0, self.rate.get(sid, sp.Integer(0)))
                divisor = sp.Integer(1) if amount_units else size
            else:  # concentration in a compartment that changes: simulate the amount
                name = f"__amount_{sid}"
                amount = self.sym(name)
                self._add_state(sid, amount, x0 * size, sp.Integer(0))
                self.rules[sid] = amount / size
                amount_states.add(sid)
                divisor = sp.Integer(1)
            self.species_state[sid] = name
            if not held and sid not in self.rate:
                flux_scale[sid] = divisor

        # Reactions: rates are derived quantities; fluxes move species.
        base = dict(self.rhs)  # what each derivative has besides fluxes (rate rules)
        terms: list[tuple[str, str, sp.Basic]] = []
        for rx in self.reactions:
            rid = rx.getId()
            flux = self.math(rx.getKineticLaw(), rid) if rx.isSetKineticLaw() else None
            if flux is None:
                raise self.unsupported(f"reaction '{rid}' without a kinetic law")
            self.sym(rid)
            self.rules[rid] = flux
            for refs, sign in ((rx.getListOfReactants(), -1), (rx.getListOfProducts(), 1)):
                for ref in refs:
                    sid = ref.getSpecies()
                    if sid not in flux_scale:
                        continue
                    coefficient = (
                        sign * self._stoichiometry(ref, rid) * self._conversion(sid) / flux_scale[sid]
                    )
                    name = self.species_state[sid]
                    self.rhs[name] = self.rhs[name] + coefficient * self.sym(rid)
                    terms.append((name, rid, coefficient))

        self._resolve()
        reaction_form = self._reaction_form(base, terms)
        events = self._events()
        expressions = {}
        for sid in [*self.compartments, *self.parameters, *self.species_refs, *self.species]:
            expressions[sid] = self.dyn_subs.get(self.sym(sid), self.sym(sid))
        for rx in self.reactions:
            expressions[rx.getId()] = self.dynamic[rx.getId()]
        return SymbolicModel(
            source=self.where,
            model_id=m.getId(),
            state_ids=self.state_ids,
            state_symbols=self.state_syms,
            parameter_ids=self.parameter_ids,
            parameter_values=self.parameter_values,
            rhs=[self.rhs_resolved[s.name] for s in self.state_syms],
            x0=[self.x0_resolved[s.name] for s in self.state_syms],
            derived=self.dynamic,
            species_ids=species_ids,
            amount_states=frozenset(amount_states),
            n_reactions=m.getNumReactions(),
            events=events,
            expressions=expressions,
            species_compartment={sid: s.getCompartment() for sid, s in self.species.items()},
            species_amount_units={sid: s.getHasOnlySubstanceUnits() for sid, s in self.species.items()},
            symbols=self.symbols,
            reaction_form=reaction_form,
        )

    def _collect(self) -> None:
        m = self.model
        self.compartments = {
            m.getCompartment(i).getId(): m.getCompartment(i) for i in range(m.getNumCompartments())
        }
        self.parameters = {m.getParameter(i).getId(): m.getParameter(i) for i in range(m.getNumParameters())}
        self.species = {m.getSpecies(i).getId(): m.getSpecies(i) for i in range(m.getNumSpecies())}
        self.reactions = [m.getReaction(i) for i in range(m.getNumReactions())]
        self.species_refs: dict[str, libsbml.SpeciesReference] = {}
        for rx in self.reactions:
            for j in range(rx.getNumReactants() + rx.getNumProducts()):
                ref = (
                    rx.getReactant(j) if j < rx.getNumReactants() else rx.getProduct(j - rx.getNumReactants())
                )
                if ref.isSetId():
                    self.species_refs[ref.getId()] = ref
        self.assignment: dict[str, sp.Basic] = {}
        self.rate: dict[str, sp.Basic] = {}
        self.algebraic: list[tuple[str, sp.Basic]] = []
        known = {*self.compartments, *self.parameters, *self.species, *self.species_refs}
        for i in range(m.getNumRules()):
            rule = m.getRule(i)
            if rule.isAlgebraic():
                name = _element_name(rule, f"algebraic rule #{i}")
                expr = self.math(rule, name)
                if expr is not None:
                    self.algebraic.append((name, expr))
                continue
            var = rule.getVariable()
            if var not in known:
                raise ModelImportError(f"{self.where}: rule for unknown variable '{var}'")
            expr = self.math(rule, var)
            if expr is None:
                continue
            (self.assignment if rule.isAssignment() else self.rate)[var] = expr
        self.initial: dict[str, sp.Basic] = {}
        for i in range(m.getNumInitialAssignments()):
            ia = m.getInitialAssignment(i)
            expr = self.math(ia, ia.getSymbol())
            if expr is not None:
                self.initial[ia.getSymbol()] = expr
        self.event_targets: set[str] = set()
        for i in range(m.getNumEvents()):
            ev = m.getEvent(i)
            for j in range(ev.getNumEventAssignments()):
                ea = ev.getEventAssignment(j)
                if ea.isSetMath():
                    self.event_targets.add(ea.getVariable())

    def _solve_algebraic_rules(self) -> None:
        """Turn each algebraic rule into an assignment rule for the one variable it determines."""
        if not self.algebraic:
            return
        changed_by_reactions = set()
        for rx in self.reactions:
            for j in range(rx.getNumReactants() + rx.getNumProducts()):
                ref = (
                    rx.getReactant(j) if j < rx.getNumReactants() else rx.getProduct(j - rx.getNumReactants())
                )
                s = self.species.get(ref.getSpecies())
                if s is not None and not s.getBoundaryCondition():
                    changed_by_reactions.add(ref.getSpecies())
        candidates = set()
        for eid, el in [*self.compartments.items(), *self.parameters.items(), *self.species.items(),
                        *self.species_refs.items()]:  # fmt: skip
            if el.getConstant() or eid in self.assignment or eid in self.rate or eid in changed_by_reactions:
                continue
            candidates.add(eid)
        pending = list(self.algebraic)
        while pending:
            progress = False
            for name, expr in list(pending):
                free = sorted(s.name for s in expr.free_symbols if s.name in candidates)
                if len(free) != 1:
                    continue
                var = free[0]
                try:
                    solutions = sp.solve(expr, self.sym(var), dict=False)
                except (NotImplementedError, ValueError) as exc:
                    raise self.unsupported(f"algebraic rule '{name}' (sympy cannot solve it: {exc})") from exc
                if len(solutions) != 1:
                    raise self.unsupported(
                        f"algebraic rule '{name}' ({len(solutions)} solutions for '{var}', need exactly one)"
                    )
                self.assignment[var] = solutions[0]
                self.initial.pop(var, None)
                candidates.discard(var)
                pending.remove((name, expr))
                progress = True
            if not progress:
                name, expr = pending[0]
                free = sorted(s.name for s in expr.free_symbols if s.name in candidates)
                what = f"it could determine {', '.join(free)}" if free else "it determines no free variable"
                raise self.unsupported(f"algebraic rule '{name}' that cannot be made explicit ({what})")

    def _reaction_form(self, base: dict[str, sp.Basic], terms: list[tuple[str, str, sp.Basic]]):
        """The resolved right-hand side as rates and flux terms (:class:`ReactionForm`)."""
        index = {s.name: i for i, s in enumerate(self.state_syms)}
        rids = [rx.getId() for rx in self.reactions]
        rate_index = {rid: r for r, rid in enumerate(rids)}
        parts = [self._dyn(base[s.name]) for s in self.state_syms]
        coefficients = [self._dyn(c) for _, _, c in terms]
        rates = [self.dynamic[rid] for rid in rids]
        if any(e.has(RateOf) for e in (*parts, *coefficients, *rates)):
            return None
        return ReactionForm(
            rates=rates,
            terms=[(index[n], rate_index[r], c) for (n, r, _), c in zip(terms, coefficients, strict=True)],
            base=parts,
        )

    def _add_state(self, sid: str, symbol: sp.Symbol, x0: sp.Basic, rhs: sp.Basic) -> None:
        self.symbols[symbol.name] = symbol
        self.state_ids.append(sid)
        self.state_syms.append(symbol)
        self.x0_raw[symbol.name] = x0
        self.rhs[symbol.name] = rhs

    def _value_entity(self, eid: str, value: float) -> None:
        """A compartment, parameter or stoichiometry: derived, state or model parameter."""
        self.sym(eid)
        if eid in self.assignment:
            return
        if eid in self.rate or eid in self.event_targets:
            x0 = self.initial.get(eid, sp.Float(value, 17))
            self._add_state(eid, self.sym(eid), x0, self.rate.get(eid, sp.Integer(0)))
        elif eid in self.initial and eid not in self.keep:
            self.fixed[eid] = self.initial[eid]
        else:
            self.parameter_ids.append(eid)
            self.parameter_values[eid] = float(value)

    def _species_initial(self, sid: str, s: libsbml.Species, size: sp.Symbol, amount_units: bool) -> sp.Basic:
        """The initial value of a species in the units of its symbol."""
        if sid in self.initial:
            return self.initial[sid]
        if s.isSetInitialConcentration():
            conc = sp.Float(s.getInitialConcentration(), 17)
            return conc * size if amount_units else conc
        if s.isSetInitialAmount():
            amount = sp.Float(s.getInitialAmount(), 17)
            return amount if amount_units else amount / size
        if sid in self.rate or sid in self.event_targets:
            return sp.nan
        raise ModelImportError(f"{self.where}: species '{sid}' has no initial value")

    def _stoichiometry(self, ref: libsbml.SpeciesReference, rid: str) -> sp.Basic:
        if ref.isSetStoichiometryMath():
            expr = self.math(ref.getStoichiometryMath(), f"stoichiometry of '{ref.getSpecies()}' in '{rid}'")
            if expr is not None:
                return expr
        if ref.isSetId():
            return self.sym(ref.getId())
        return sp.Float(ref.getStoichiometry(), 17) if ref.isSetStoichiometry() else sp.Integer(1)

    def _conversion(self, sid: str) -> sp.Basic:
        s = self.species[sid]
        if s.isSetConversionFactor():
            return self.sym(s.getConversionFactor())
        if self.model.isSetConversionFactor():
            return self.sym(self.model.getConversionFactor())
        return sp.Integer(1)

    def _resolve(self) -> None:
        """Closed forms: derived quantities, the right-hand side, rateOf, initial values."""
        where = self.where
        # 1. Initial values (t = 0): everything that is constant after the start.
        self.rate_of: dict[sp.Symbol, sp.Basic] = {}
        initial_defs = {
            **{k: self._hide_rate_of(v) for k, v in self.x0_raw.items()},
            **{k: self._hide_rate_of(v) for k, v in self.rules.items()},
            **{k: self._hide_rate_of(v) for k, v in self.fixed.items()},
        }
        at_start = _substitute_to_fixpoint(initial_defs, self.symbols, where)
        fixed_values, late = {}, set()
        for k in self.fixed:
            v = at_start[k].xreplace({TIME: sp.Integer(0)})
            if v.free_symbols & set(self.rate_of):
                late.add(k)  # needs the right-hand side first (step 4)
            else:
                fixed_values[k] = v
        # 2. Dynamic definitions: rules, reaction rates, concentrations of amounts, constants.
        dyn_defs = {**self.rules, **fixed_values}
        self.dynamic = _substitute_to_fixpoint(dyn_defs, self.symbols, where)
        self.dyn_subs = {self.symbols[k]: v for k, v in self.dynamic.items()}
        rhs = {k: v.xreplace(self.dyn_subs) for k, v in self.rhs.items()}
        late_symbols = {self.symbols[k] for k in late}
        for k, v in rhs.items():
            used = sorted(str(u) for u in v.free_symbols & late_symbols)
            if used:
                raise self.unsupported(
                    f"rateOf in the initial assignment of '{used[0]}', which the rate of '{k}' uses"
                )
        rhs_by_symbol = {self.symbols[k]: v for k, v in rhs.items()}
        # 3. rateOf(x) = d/dt of x's closed form: its partial derivative in time plus the
        #    chain rule through the states (whose derivatives may use rateOf themselves).
        for _ in range(len(rhs) + 2):
            if not any(e.has(RateOf) for e in rhs.values()):
                break
            rhs = {k: self._expand_rate_of(v, rhs_by_symbol) for k, v in rhs.items()}
            rhs_by_symbol = {self.symbols[k]: v for k, v in rhs.items()}
        else:
            raise self.unsupported("rateOf that refers to itself through the right-hand side")
        self.rhs_resolved = rhs
        self.rhs_by_symbol = rhs_by_symbol
        self.dynamic = {k: self._expand_rate_of(v, rhs_by_symbol) for k, v in self.dynamic.items()}
        self.dyn_subs = {self.symbols[k]: v for k, v in self.dynamic.items()}
        # 4. Initial state, with rateOf placeholders now known (evaluated at the start).
        hidden = {s: self._expand_rate_of(RateOf(arg).xreplace(self.dyn_subs), rhs_by_symbol)
                  for s, arg in self.rate_of.items()}  # fmt: skip
        start_defs = {**initial_defs, **{k: v for k, v in fixed_values.items()}}
        start_defs.update({s.name: v for s, v in hidden.items()})
        for s in hidden:
            self.symbols[s.name] = s
        at_start = _substitute_to_fixpoint(start_defs, self.symbols, where)
        self.x0_resolved = {k: at_start[k].xreplace({TIME: sp.Integer(0)}) for k in self.x0_raw}
        if late:
            late_values = {self.symbols[k]: at_start[k].xreplace({TIME: sp.Integer(0)}) for k in late}
            self.dynamic = {k: v.xreplace(late_values) for k, v in self.dynamic.items()}
            self.dynamic.update({s.name: v for s, v in late_values.items()})
            self.dyn_subs = {self.symbols[k]: v for k, v in self.dynamic.items()}
        for k, v in self.x0_resolved.items():
            bad = {s.name for s in v.free_symbols} - set(self.parameter_ids)
            if bad:
                raise ModelImportError(
                    f"{where}: the initial value of '{k}' depends on {', '.join(sorted(bad))}, "
                    "which has no value"
                )

    def _hide_rate_of(self, expr: sp.Basic) -> sp.Basic:
        """Replace rateOf(...) by placeholder symbols (kept in ``self.rate_of``)."""
        if not expr.has(RateOf):
            return expr
        subs = {}
        for node in expr.atoms(RateOf):
            s = sp.Symbol(f"__rateof_{len(self.rate_of)}", real=True)
            self.rate_of[s] = node.args[0]
            subs[node] = s
        return expr.xreplace(subs)

    def _expand_rate_of(self, expr: sp.Basic, rhs_by_symbol: dict[sp.Symbol, sp.Basic]) -> sp.Basic:
        if not expr.has(RateOf):
            return expr
        subs = {}
        for node in expr.atoms(RateOf):
            arg = node.args[0].xreplace(self.dyn_subs)
            d = sp.diff(arg, TIME)
            for s in arg.free_symbols:
                if s in rhs_by_symbol:
                    d = d + sp.diff(arg, s) * rhs_by_symbol[s]
            subs[node] = d
        return expr.xreplace(subs)

    def _dyn(self, expr: sp.Basic) -> sp.Basic:
        return self._expand_rate_of(expr.xreplace(self.dyn_subs), self.rhs_by_symbol)

    def _events(self) -> list[Event]:
        m = self.model
        state_index = {s.name: i for i, s in enumerate(self.state_syms)}
        events = []
        for i in range(m.getNumEvents()):
            ev = m.getEvent(i)
            name = ev.getId() or f"#{i}"
            trig = ev.getTrigger() if ev.isSetTrigger() else None
            trigger = self.math(trig, f"trigger of event {name}", boolean=True)
            if trigger is None:
                continue  # no trigger math: the event never fires
            delay = self.math(ev.getDelay(), f"delay of event {name}") if ev.isSetDelay() else None
            priority = (
                self.math(ev.getPriority(), f"priority of event {name}") if ev.isSetPriority() else None
            )
            assigned: dict[str, sp.Basic] = {}
            for j in range(ev.getNumEventAssignments()):
                ea = ev.getEventAssignment(j)
                value = self.math(ea, f"assignment to '{ea.getVariable()}' in event {name}")
                if value is not None:
                    assigned[ea.getVariable()] = value
            targets, values, scales = self._event_assignments(name, assigned, state_index)
            initial_value = trig.getInitialValue() if trig.isSetInitialValue() else True
            persistent = trig.getPersistent() if trig.isSetPersistent() else True
            events.append(
                Event(
                    id=name,
                    trigger=self._dyn(trigger),
                    initial_value=bool(initial_value),
                    persistent=bool(persistent),
                    use_values_from_trigger_time=bool(ev.getUseValuesFromTriggerTime()),
                    delay=None if delay is None else self._dyn(delay),
                    priority=None if priority is None else self._dyn(priority),
                    targets=tuple(targets),
                    values=tuple(values),
                    scales=tuple(scales),
                )
            )
        return events

    def _event_assignments(
        self, name: str, assigned: dict[str, sp.Basic], state_index: dict[str, int]
    ) -> tuple[list[int], list[sp.Basic], list[sp.Basic]]:
        """Targets, values and scales of one event's assignments.

        Targets are state indices, values come from the state before the event, scales
        from the state after it.

        What is real is a species' amount (SBML Test Suite cases 1505, 1506 and 1779):

        - a species in concentration simulated as an amount gets ``value * size`` with the
          compartment's size *before* the event, even when the same event resizes it;
        - when an event resizes a compartment, species in concentration that are states of
          their own (rate rules) keep their amount: ``c * size_before / size_after``.
        """
        targets, values, scales = [], [], []
        resized = [v for v in assigned if v in self.compartments]
        extra = {
            sid: self.sym(sid)
            for sid, s in self.species.items()
            if s.getCompartment() in resized
            and self.species_state.get(sid) == sid
            and not s.getHasOnlySubstanceUnits()
            and sid not in assigned
        }
        for var, value in [*assigned.items(), *extra.items()]:
            scale: sp.Basic = sp.Integer(1)
            if var in self.species:
                sname = self.species_state.get(var)
                if sname is None:
                    raise ModelImportError(f"{self.where}: event {name} assigns '{var}', set by a rule")
                comp = self.sym(self.species[var].getCompartment())
                if sname != var:  # simulated as an amount
                    value = value * comp
                elif (
                    self.species[var].getCompartment() in resized
                    and not self.species[var].getHasOnlySubstanceUnits()
                ):
                    value, scale = value * comp, 1 / comp
            else:
                sname = var
            if sname not in state_index:
                raise ModelImportError(f"{self.where}: event {name} assigns '{var}', which is not variable")
            targets.append(state_index[sname])
            values.append(self._dyn(value))
            scales.append(self._dyn(scale))
        return targets, values, scales
