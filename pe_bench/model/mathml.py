"""Translate libsbml ASTs (SBML MathML) into sympy expressions.

Function definitions and local parameters are expanded by libsbml's own converters
before this runs (see ``sbml.py``); what arrives here is plain math over ids.

SBML mixes booleans and numbers freely (``true + 1``, ``piecewise(x, 1)`` as a
condition); sympy does not, so numbers used as booleans mean "is non-zero" and booleans
used as numbers mean 1 or 0. ``rateOf(x)`` becomes :class:`RateOf`, resolved into the
time derivative once the right-hand side is known (``sbml.py``).
"""

from __future__ import annotations

import libsbml
import sympy as sp

from ..errors import UnsupportedFeatureError

#: The symbol that stands for simulation time in every expression pe_bench builds.
TIME = sp.Symbol("__time__", real=True)

#: Avogadro's number as SBML Level 3 defines its csymbol (libSBML uses the same value).
AVOGADRO = 6.02214179e23


class RateOf(sp.Function):
    """``rateOf(x)``: the time derivative of ``x``, kept symbolic until the ODE is known."""

    nargs = 1


_UNARY = {
    libsbml.AST_FUNCTION_EXP: sp.exp,
    libsbml.AST_FUNCTION_LN: sp.log,
    libsbml.AST_FUNCTION_ABS: sp.Abs,
    libsbml.AST_FUNCTION_FLOOR: sp.floor,
    libsbml.AST_FUNCTION_CEILING: sp.ceiling,
    libsbml.AST_FUNCTION_SIN: sp.sin,
    libsbml.AST_FUNCTION_COS: sp.cos,
    libsbml.AST_FUNCTION_TAN: sp.tan,
    libsbml.AST_FUNCTION_ARCSIN: sp.asin,
    libsbml.AST_FUNCTION_ARCCOS: sp.acos,
    libsbml.AST_FUNCTION_ARCTAN: sp.atan,
    libsbml.AST_FUNCTION_SINH: sp.sinh,
    libsbml.AST_FUNCTION_COSH: sp.cosh,
    libsbml.AST_FUNCTION_TANH: sp.tanh,
    libsbml.AST_FUNCTION_ARCSINH: sp.asinh,
    libsbml.AST_FUNCTION_ARCCOSH: sp.acosh,
    libsbml.AST_FUNCTION_ARCTANH: sp.atanh,
    # The reciprocal functions, written with the basic ones (JAX has no sec, acot, ...);
    # the inverse ones as libSBML's own evaluator defines them (e.g. arccot(x) = atan(1/x)).
    libsbml.AST_FUNCTION_SEC: lambda a: 1 / sp.cos(a),
    libsbml.AST_FUNCTION_CSC: lambda a: 1 / sp.sin(a),
    libsbml.AST_FUNCTION_COT: lambda a: sp.cos(a) / sp.sin(a),
    libsbml.AST_FUNCTION_SECH: lambda a: 1 / sp.cosh(a),
    libsbml.AST_FUNCTION_CSCH: lambda a: 1 / sp.sinh(a),
    libsbml.AST_FUNCTION_COTH: lambda a: sp.cosh(a) / sp.sinh(a),
    libsbml.AST_FUNCTION_ARCSEC: lambda a: sp.acos(1 / a),
    libsbml.AST_FUNCTION_ARCCSC: lambda a: sp.asin(1 / a),
    libsbml.AST_FUNCTION_ARCCOT: lambda a: sp.atan(1 / a),
    libsbml.AST_FUNCTION_ARCSECH: lambda a: sp.acosh(1 / a),
    libsbml.AST_FUNCTION_ARCCSCH: lambda a: sp.asinh(1 / a),
    libsbml.AST_FUNCTION_ARCCOTH: lambda a: sp.atanh(1 / a),
    libsbml.AST_FUNCTION_FACTORIAL: lambda a: sp.gamma(a + 1),
}

_RELATIONAL = {
    libsbml.AST_RELATIONAL_EQ: sp.Eq,
    libsbml.AST_RELATIONAL_NEQ: sp.Ne,
    libsbml.AST_RELATIONAL_LT: sp.StrictLessThan,
    libsbml.AST_RELATIONAL_LEQ: sp.LessThan,
    libsbml.AST_RELATIONAL_GT: sp.StrictGreaterThan,
    libsbml.AST_RELATIONAL_GEQ: sp.GreaterThan,
}


def is_boolean(expr: sp.Basic) -> bool:
    """Whether ``expr`` is a sympy boolean (relational, logic operator, true/false).

    (A sympy Symbol is a Boolean too, so that it can stand in logic; here it is a number.)
    """
    return isinstance(expr, sp.logic.boolalg.Boolean) and not isinstance(expr, sp.Expr)


def as_bool(expr: sp.Basic) -> sp.Basic:
    """A number used where SBML expects a boolean means 'is non-zero'."""
    if is_boolean(expr):
        return expr
    return sp.Ne(expr, 0)


def as_number(expr: sp.Basic) -> sp.Expr:
    """A boolean used where SBML expects a number means 1 (true) or 0 (false)."""
    if expr is sp.true:
        return sp.Integer(1)
    if expr is sp.false:
        return sp.Integer(0)
    if is_boolean(expr):
        return sp.Piecewise((sp.Integer(1), expr), (sp.Integer(0), True))
    return expr


def _relational(op, a: sp.Basic, b: sp.Basic) -> sp.Basic:
    if is_boolean(a) or is_boolean(b):
        if op in (sp.Eq, sp.Ne) and is_boolean(a) and is_boolean(b):
            same = sp.Equivalent(a, b)
            return same if op is sp.Eq else sp.Not(same)
        a, b = as_number(a), as_number(b)
    return op(a, b)


def _piecewise(pieces: list[tuple[sp.Basic, sp.Basic]], otherwise: sp.Basic | None) -> sp.Basic:
    values = [v for v, _ in pieces] + ([otherwise] if otherwise is not None else [])
    if values and all(is_boolean(v) for v in values):
        # A boolean-valued piecewise (used as a trigger or condition): the first piece whose
        # condition holds decides.
        terms, earlier = [], []
        for value, cond in pieces:
            terms.append(sp.And(*[sp.Not(c) for c in earlier], cond, value))
            earlier.append(cond)
        if otherwise is not None:
            terms.append(sp.And(*[sp.Not(c) for c in earlier], otherwise))
        return sp.Or(*terms)
    args = [(as_number(v), c) for v, c in pieces]
    args.append((as_number(otherwise) if otherwise is not None else sp.nan, True))
    return sp.Piecewise(*args)


def _quotient(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    # MathML quotient: the integer part of a / b, rounded toward zero (libSBML's evaluator).
    q = a / b
    return sp.Piecewise((sp.floor(q), q >= 0), (sp.ceiling(q), True))


def ast_to_sympy(ast: libsbml.ASTNode, symbols: dict[str, sp.Symbol], where: str) -> sp.Basic:
    """Convert one libsbml AST into a sympy expression.

    Args:
        ast: the math of an SBML element.
        symbols: id -> sympy Symbol; unknown ids get a fresh real Symbol and are added.
        where: "<element id> in <file>", used in error messages.

    Returns:
        The sympy expression (a boolean for relational and logical math).

    Raises:
        UnsupportedFeatureError: ``delay()``, user functions left unexpanded, MathML
            outside SBML's subset.
    """
    if ast is None:
        raise UnsupportedFeatureError(f"not supported yet: missing math in {where}")
    t = ast.getType()
    kids = [ast.getChild(i) for i in range(ast.getNumChildren())]

    def rec(node: libsbml.ASTNode) -> sp.Basic:
        return ast_to_sympy(node, symbols, where)

    def num(node: libsbml.ASTNode) -> sp.Expr:
        return as_number(rec(node))

    if t == libsbml.AST_INTEGER:
        return sp.Integer(ast.getInteger())
    if t in (libsbml.AST_REAL, libsbml.AST_REAL_E):
        return sp.Float(ast.getReal(), 17)
    if t == libsbml.AST_RATIONAL:
        return sp.Rational(ast.getNumerator(), ast.getDenominator())
    if t == libsbml.AST_NAME:
        name = ast.getName()
        if name not in symbols:
            symbols[name] = sp.Symbol(name, real=True)
        return symbols[name]
    if t == libsbml.AST_NAME_TIME:
        return TIME
    if t == libsbml.AST_NAME_AVOGADRO:
        return sp.Float(AVOGADRO, 17)
    if t == libsbml.AST_CONSTANT_E:
        return sp.E
    if t == libsbml.AST_CONSTANT_PI:
        return sp.pi
    if t == libsbml.AST_CONSTANT_TRUE:
        return sp.true
    if t == libsbml.AST_CONSTANT_FALSE:
        return sp.false
    if t == libsbml.AST_PLUS:
        return sp.Add(*[num(k) for k in kids]) if kids else sp.Integer(0)
    if t == libsbml.AST_MINUS:
        if len(kids) == 1:
            return -num(kids[0])
        return num(kids[0]) - num(kids[1])
    if t == libsbml.AST_TIMES:
        return sp.Mul(*[num(k) for k in kids]) if kids else sp.Integer(1)
    if t == libsbml.AST_DIVIDE:
        return num(kids[0]) / num(kids[1])
    if t in (libsbml.AST_POWER, libsbml.AST_FUNCTION_POWER):
        return num(kids[0]) ** num(kids[1])
    if t == libsbml.AST_FUNCTION_ROOT:
        if len(kids) == 1:
            return sp.sqrt(num(kids[0]))
        return num(kids[1]) ** (1 / num(kids[0]))
    if t == libsbml.AST_FUNCTION_LOG:
        if len(kids) == 1:
            return sp.log(num(kids[0]), 10)
        return sp.log(num(kids[1]), num(kids[0]))
    if t in _UNARY:
        return _UNARY[t](num(kids[0]))
    if t in _RELATIONAL:
        args = [rec(k) for k in kids]
        return sp.And(*[_relational(_RELATIONAL[t], a, b) for a, b in zip(args[:-1], args[1:], strict=True)])
    if t == libsbml.AST_LOGICAL_AND:
        return sp.And(*[as_bool(rec(k)) for k in kids])
    if t == libsbml.AST_LOGICAL_OR:
        return sp.Or(*[as_bool(rec(k)) for k in kids])
    if t == libsbml.AST_LOGICAL_XOR:
        return sp.Xor(*[as_bool(rec(k)) for k in kids])
    if t == libsbml.AST_LOGICAL_NOT:
        return sp.Not(as_bool(rec(kids[0])))
    if t == libsbml.AST_LOGICAL_IMPLIES:
        return sp.Or(sp.Not(as_bool(rec(kids[0]))), as_bool(rec(kids[1])))
    if t == libsbml.AST_FUNCTION_PIECEWISE:
        pieces = [(rec(kids[i]), as_bool(rec(kids[i + 1]))) for i in range(0, len(kids) - 1, 2)]
        return _piecewise(pieces, rec(kids[-1]) if len(kids) % 2 == 1 else None)
    if t == libsbml.AST_FUNCTION_MAX:
        return sp.Max(*[num(k) for k in kids])
    if t == libsbml.AST_FUNCTION_MIN:
        return sp.Min(*[num(k) for k in kids])
    if t == libsbml.AST_FUNCTION_QUOTIENT:
        return _quotient(num(kids[0]), num(kids[1]))
    if t == libsbml.AST_FUNCTION_REM:
        a, b = num(kids[0]), num(kids[1])
        return a - b * _quotient(a, b)
    if t == libsbml.AST_FUNCTION_RATE_OF:
        return RateOf(num(kids[0]))
    if t == libsbml.AST_FUNCTION_DELAY:
        raise UnsupportedFeatureError(f"not supported yet: delay() in {where}")
    if t == libsbml.AST_FUNCTION:
        raise UnsupportedFeatureError(
            f"not supported yet: function '{ast.getName()}' could not be expanded in {where}"
        )
    raise UnsupportedFeatureError(f"not supported yet: MathML element '{ast.getName() or t}' in {where}")
