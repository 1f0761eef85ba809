"""Translate libsbml ASTs (SBML MathML) into sympy expressions.

Function definitions and local parameters are expanded by libsbml's own converters
before this runs (see ``sbml.py``); what arrives here is plain math over ids.
"""

from __future__ import annotations

import libsbml
import sympy as sp

from ..errors import UnsupportedFeatureError

#: The symbol that stands for simulation time in every expression pe_bench builds.
TIME = sp.Symbol("__time__", real=True)

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
    libsbml.AST_FUNCTION_SEC: sp.sec,
    libsbml.AST_FUNCTION_CSC: sp.csc,
    libsbml.AST_FUNCTION_COT: sp.cot,
    libsbml.AST_FUNCTION_FACTORIAL: sp.factorial,
}

_RELATIONAL = {
    libsbml.AST_RELATIONAL_EQ: sp.Eq,
    libsbml.AST_RELATIONAL_NEQ: sp.Ne,
    libsbml.AST_RELATIONAL_LT: sp.StrictLessThan,
    libsbml.AST_RELATIONAL_LEQ: sp.LessThan,
    libsbml.AST_RELATIONAL_GT: sp.StrictGreaterThan,
    libsbml.AST_RELATIONAL_GEQ: sp.GreaterThan,
}


def _as_bool(expr: sp.Basic) -> sp.Basic:
    """A number used where SBML expects a boolean means 'is non-zero'."""
    if isinstance(expr, sp.logic.boolalg.Boolean):
        return expr
    return sp.Ne(expr, 0)


def ast_to_sympy(ast: libsbml.ASTNode, symbols: dict[str, sp.Symbol], where: str) -> sp.Expr:
    """Convert one libsbml AST into a sympy expression.

    Args:
        ast: the math of an SBML element.
        symbols: id -> sympy Symbol; unknown ids get a fresh real Symbol and are added.
        where: "<element id> in <file>", used in error messages.

    Returns:
        The sympy expression.

    Raises:
        UnsupportedFeatureError: delays, rateOf, user functions left unexpanded, and
            other constructs pe_bench cannot simulate faithfully.
    """
    if ast is None:
        raise UnsupportedFeatureError(f"not supported yet: missing math in {where}")
    t = ast.getType()
    kids = [ast.getChild(i) for i in range(ast.getNumChildren())]

    def rec(node: libsbml.ASTNode) -> sp.Expr:
        return ast_to_sympy(node, symbols, where)

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
        return sp.Float(6.02214076e23, 17)
    if t == libsbml.AST_CONSTANT_E:
        return sp.E
    if t == libsbml.AST_CONSTANT_PI:
        return sp.pi
    if t == libsbml.AST_CONSTANT_TRUE:
        return sp.true
    if t == libsbml.AST_CONSTANT_FALSE:
        return sp.false
    if t == libsbml.AST_PLUS:
        return sp.Add(*[rec(k) for k in kids]) if kids else sp.Integer(0)
    if t == libsbml.AST_MINUS:
        if len(kids) == 1:
            return -rec(kids[0])
        return rec(kids[0]) - rec(kids[1])
    if t == libsbml.AST_TIMES:
        return sp.Mul(*[rec(k) for k in kids]) if kids else sp.Integer(1)
    if t == libsbml.AST_DIVIDE:
        return rec(kids[0]) / rec(kids[1])
    if t in (libsbml.AST_POWER, libsbml.AST_FUNCTION_POWER):
        return rec(kids[0]) ** rec(kids[1])
    if t == libsbml.AST_FUNCTION_ROOT:
        if len(kids) == 1:
            return sp.sqrt(rec(kids[0]))
        return rec(kids[1]) ** (1 / rec(kids[0]))
    if t == libsbml.AST_FUNCTION_LOG:
        if len(kids) == 1:
            return sp.log(rec(kids[0]), 10)
        return sp.log(rec(kids[1]), rec(kids[0]))
    if t in _UNARY:
        return _UNARY[t](rec(kids[0]))
    if t in _RELATIONAL:
        args = [rec(k) for k in kids]
        return sp.And(*[_RELATIONAL[t](a, b) for a, b in zip(args[:-1], args[1:], strict=True)])
    if t == libsbml.AST_LOGICAL_AND:
        return sp.And(*[_as_bool(rec(k)) for k in kids])
    if t == libsbml.AST_LOGICAL_OR:
        return sp.Or(*[_as_bool(rec(k)) for k in kids])
    if t == libsbml.AST_LOGICAL_XOR:
        return sp.Xor(*[_as_bool(rec(k)) for k in kids])
    if t == libsbml.AST_LOGICAL_NOT:
        return sp.Not(_as_bool(rec(kids[0])))
    if t == libsbml.AST_FUNCTION_PIECEWISE:
        pieces = []
        for i in range(0, len(kids) - 1, 2):
            pieces.append((rec(kids[i]), _as_bool(rec(kids[i + 1]))))
        if len(kids) % 2 == 1:
            pieces.append((rec(kids[-1]), sp.true))
        else:
            pieces.append((sp.nan, sp.true))
        return sp.Piecewise(*pieces)
    if t == getattr(libsbml, "AST_FUNCTION_MAX", -1):
        return sp.Max(*[rec(k) for k in kids])
    if t == getattr(libsbml, "AST_FUNCTION_MIN", -1):
        return sp.Min(*[rec(k) for k in kids])
    if t == libsbml.AST_FUNCTION_DELAY:
        raise UnsupportedFeatureError(f"not supported yet: delay() in {where}")
    if t == getattr(libsbml, "AST_FUNCTION_RATE_OF", -1):
        raise UnsupportedFeatureError(f"not supported yet: rateOf() in {where}")
    if t == libsbml.AST_FUNCTION:
        raise UnsupportedFeatureError(
            f"not supported yet: function '{ast.getName()}' could not be expanded in {where}"
        )
    raise UnsupportedFeatureError(f"not supported yet: MathML element '{ast.getName() or t}' in {where}")
