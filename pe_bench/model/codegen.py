"""Turn sympy expressions into plain Python functions over ``jax.numpy``.

sympy's own ``lambdify`` with its JAX printer does the printing; common subexpressions
are shared (``cse=True``) so large rate laws are evaluated once per call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
import sympy as sp

# Functions sympy's JAX printer leaves to Python's math module (which cannot take tracers).
_EXTRA = {"gamma": jsp.gamma, "loggamma": jsp.gammaln}


def jax_function(args: Sequence, exprs: Sequence[sp.Expr], vectorize: bool = False) -> Callable:
    """Compile ``exprs`` into ``f(*args) -> jnp.ndarray`` stacked along a new first axis.

    Args:
        args: lambdify arguments; each is a symbol or a list of symbols (the matching
            call argument is then an array unpacked along its first axis).
        exprs: the expressions; the result has shape ``(len(exprs), *broadcast_shape)``.
        vectorize: group expressions of the same shape (see :func:`_vectorized`) and
            evaluate each group as array operations; only for one-dimensional list
            arguments (a right-hand side). Large models: their compile time grows with
            the number of operations XLA sees, not with the flops.

    Returns:
        A pure function, traceable by JAX (jit/vmap/grad).
    """
    exprs = list(exprs)
    if not exprs:

        def empty(*values):
            return jnp.zeros((0,))

        return empty
    if vectorize and len(exprs) > VECTORIZE_MIN:
        return _vectorized(list(args), exprs)
    raw = _lambdify(list(args), exprs, cse=True)

    def stacked(*values):
        out = raw(*values)
        out = [jnp.asarray(o, dtype=jnp.float64) for o in out]
        shape = jnp.broadcast_shapes(*(o.shape for o in out))
        return jnp.stack([jnp.broadcast_to(o, shape) for o in out])

    return stacked


def reaction_rhs(args: Sequence, n: int, form) -> Callable:
    """``f(t, x, p) -> dx/dt`` from a :class:`~pe_bench.model.sbml.ReactionForm`.

    The rates are one vector (vectorised by shape, :func:`_vectorized`: a mass-action
    network has a few shapes whatever its size), each flux term multiplies its rate by its
    coefficient (constants folded into an array), and a sorted segment sum adds the terms
    into their states. Code size and tracing time then grow with the number of distinct
    rate shapes, not with the number of reactions.
    """
    rates = jax_function(args, form.rates, vectorize=True)
    states = np.array([t[0] for t in form.terms], dtype=np.int32)
    which = np.array([t[1] for t in form.terms], dtype=np.int32)
    order = np.argsort(states, kind="stable")
    states, which = states[order], which[order]
    coefficients = [form.terms[k][2] for k in order]
    if all(c.is_number for c in coefficients):
        constant = np.array([float(c) for c in coefficients], dtype=np.float64)
        coefficient_fn = None
    else:
        constant, coefficient_fn = None, jax_function(args, coefficients, vectorize=True)
    base_idx = np.array([i for i, b in enumerate(form.base) if b != 0], dtype=np.int32)
    base_fn = jax_function(args, [form.base[i] for i in base_idx], vectorize=True) if len(base_idx) else None

    def rhs(*values):
        v = rates(*values)
        c = jnp.asarray(constant) if coefficient_fn is None else coefficient_fn(*values)
        flux = c * v[which]
        out = jax.ops.segment_sum(flux, states, num_segments=n, indices_are_sorted=True)
        if base_fn is not None:
            out = out.at[base_idx].add(base_fn(*values))
        return out

    return rhs


def _lambdify(args: list, exprs, cse: bool = False) -> Callable:
    """Lambdify (sympy, JAX printer) with every argument symbol renamed first.

    SBML ids such as pi, inf or nan must not shadow the constants of that name. lambdify's
    own ``dummify=True`` ensures it by one substitution pass over all expressions per
    argument symbol: quadratic for a model with hundreds of states. One ``xreplace`` with
    the whole mapping to plain symbols ``_pe_arg<k>_`` (valid identifiers that no other
    name uses) does the same in a single pass.
    """
    mapping: dict[sp.Basic, sp.Symbol] = {}

    def rename(a):
        if isinstance(a, list | tuple):
            return [rename(b) for b in a]
        mapping[a] = sp.Symbol(f"_pe_arg{len(mapping)}_", real=True)
        return mapping[a]

    new_args = [rename(a) for a in args]
    if isinstance(exprs, list | tuple):
        new_exprs = [sp.sympify(e).xreplace(mapping) for e in exprs]
    else:
        new_exprs = sp.sympify(exprs).xreplace(mapping)
    return sp.lambdify(new_args, new_exprs, modules=[_EXTRA, "jax"], cse=cse, docstring_limit=0)


#: Right-hand sides with more expressions than this are vectorised (jax_function).
VECTORIZE_MIN = 64
#: A shape shared by at least this many expressions becomes one vectorised group.
GROUP_MIN = 4


def _skeleton(expr: sp.Basic, position: dict[sp.Symbol, tuple[int, int]]):
    """``expr`` with list-argument elements and floats replaced by placeholders.

    In order of appearance, every element of a list argument and every float becomes
    ``__v0, __v1, ...``; also returned is what each placeholder stands for
    (``("arg", list argument, index)`` or ``("num", value)``).
    """
    leaves: list[tuple] = []

    def walk(e: sp.Basic) -> sp.Basic:
        if isinstance(e, sp.Symbol) and e in position:
            leaves.append(("arg", *position[e]))
            return sp.Symbol(f"__v{len(leaves) - 1}", real=True)
        if isinstance(e, sp.Float):
            leaves.append(("num", float(e)))
            return sp.Symbol(f"__v{len(leaves) - 1}", real=True)
        if not e.args:
            return e
        new = [walk(a) for a in e.args]
        try:
            return e.func(*new, evaluate=False)
        except TypeError:
            return e.func(*new)

    return walk(expr), leaves


def _vectorized(args: list, exprs: list[sp.Basic]) -> Callable:
    """Expressions grouped by shape, each group evaluated as array operations.

    Two rate laws ``1.2 * kf * S3`` and ``0.7 * kf * S8`` have the same shape
    ``__v0 * __v1 * __v2``; for the group, ``__v0`` is the constant vector (1.2, 0.7),
    ``__v1`` the parameters ``p[(i_kf, i_kf)]`` and ``__v2`` the states ``x[(3, 8)]``: three
    operations whatever the number of members. Shapes shared by fewer than ``GROUP_MIN``
    expressions are printed one by one as usual (common subexpressions shared).
    """
    position = {}
    for a, arg in enumerate(args):
        if isinstance(arg, list | tuple):
            for i, sym in enumerate(arg):
                position[sym] = (a, i)
    scalars = [arg for arg in args if not isinstance(arg, list | tuple)]
    groups: dict[tuple, list[tuple[int, list]]] = {}
    for k, e in enumerate(exprs):
        skel, leaves = _skeleton(sp.sympify(e), position)
        key = (sp.srepr(skel), tuple(leaf[0] if leaf[0] == "num" else leaf[:2] for leaf in leaves))
        groups.setdefault(key, []).append((k, leaves, skel))
    order: list[int] = []
    rest = [members for members in groups.values() if len(members) < GROUP_MIN]
    rest_idx = [k for members in rest for k, _, _ in members]
    plain = jax_function(args, [exprs[k] for k in rest_idx]) if rest_idx else None
    order.extend(rest_idx)
    compiled = []
    for members in groups.values():
        if len(members) < GROUP_MIN:
            continue
        skel, leaves0 = members[0][2], members[0][1]
        placeholders = [sp.Symbol(f"__v{j}", real=True) for j in range(len(leaves0))]
        fn = _lambdify([*scalars, *placeholders], skel)
        feeds = []
        for j, leaf in enumerate(leaves0):
            if leaf[0] == "num":
                feeds.append(("num", np.array([m[1][j][1] for m in members])))
            else:
                feeds.append(("arg", leaf[1], np.array([m[1][j][2] for m in members])))
        compiled.append((fn, feeds, len(members)))
        order.extend(k for k, _, _ in members)
    inverse = np.argsort(np.asarray(order))
    scalar_pos = [a for a, arg in enumerate(args) if not isinstance(arg, list | tuple)]

    def evaluate(*values):
        parts = [plain(*values)] if plain is not None else []
        sc = [values[a] for a in scalar_pos]
        for fn, feeds, size in compiled:
            inputs = [jnp.asarray(f[1]) if f[0] == "num" else jnp.asarray(values[f[1]])[f[2]] for f in feeds]
            out = jnp.asarray(fn(*sc, *inputs), dtype=jnp.float64)
            parts.append(jnp.broadcast_to(out, (size,)))
        return jnp.concatenate(parts)[inverse]

    return evaluate


def root_expression(condition: sp.Basic) -> sp.Expr:
    """A continuous function that is positive where the boolean ``condition`` holds.

    Event times are located on it (``pe_bench.solvers.integrate``): a relation
    ``a > b`` (or ``>=``) becomes ``a - b``, ``a < b`` becomes ``b - a``, ``and`` the
    minimum of its parts, ``or`` the maximum, ``not`` the negation. ``a == b`` becomes
    ``-|a - b|`` (zero only where it holds) and ``a != b`` ``|a - b|``. Anything else (a
    boolean-valued piecewise, ``xor`` of more than two parts) falls back to +1 / -1 from
    the condition itself, which the locator treats by bisection.
    """
    if condition is sp.true:
        return sp.Integer(1)
    if condition is sp.false:
        return sp.Integer(-1)
    if isinstance(condition, sp.StrictGreaterThan | sp.GreaterThan):
        return condition.lhs - condition.rhs
    if isinstance(condition, sp.StrictLessThan | sp.LessThan):
        return condition.rhs - condition.lhs
    if isinstance(condition, sp.Eq):
        return -sp.Abs(condition.lhs - condition.rhs)
    if isinstance(condition, sp.Ne):
        return sp.Abs(condition.lhs - condition.rhs)
    if isinstance(condition, sp.And):
        return sp.Min(*[root_expression(a) for a in condition.args], evaluate=False)
    if isinstance(condition, sp.Or):
        return sp.Max(*[root_expression(a) for a in condition.args], evaluate=False)
    if isinstance(condition, sp.Not):
        return -root_expression(condition.args[0])
    if isinstance(condition, sp.Xor) and len(condition.args) == 2:
        a, b = (root_expression(x) for x in condition.args)
        return -a * b
    return sp.Piecewise((sp.Integer(1), condition), (sp.Integer(-1), True))


#: Kinds of discontinuity a right-hand side can switch on.
SWITCH_KINDS = ("condition", "floor", "ceiling")


def extract_switches(
    exprs: Sequence[sp.Expr], moving: set[sp.Symbol]
) -> tuple[list[sp.Expr], list[tuple[str, sp.Basic]], list[sp.Symbol]]:
    """Replace the discontinuities of ``exprs`` by switch symbols.

    A relation inside a piecewise condition (``S > 4``), ``floor(a)`` and ``ceiling(a)``
    make a right-hand side jump where they change. Where they involve time or a state
    (``moving``), each distinct one becomes a symbol ``__sw_k`` whose value the solver
    holds fixed within a step and flips where the relation changes (located like an
    event), so that no step straddles a jump and sensitivities jump correctly.

    Args:
        exprs: the expressions (the right-hand side).
        moving: the symbols that change during a simulation (time, states).

    Returns:
        ``(new_exprs, switches, symbols)``: the expressions with switch symbols, each
        switch as ``(kind, expr)`` (kind in ``SWITCH_KINDS``; the relation, or the
        argument of floor / ceiling), and the switch symbols. A condition's switch
        value is 1 (true) or 0; a floor's or ceiling's is its value.
    """
    switches: list[tuple[str, sp.Basic]] = []
    symbols: list[sp.Symbol] = []
    found: dict[tuple[str, sp.Basic], sp.Symbol] = {}

    def switch(kind: str, e: sp.Basic) -> sp.Symbol:
        key = (kind, e)
        if key not in found:
            s = sp.Symbol(f"__sw_{len(symbols)}", real=True)
            found[key] = s
            switches.append(key)
            symbols.append(s)
        return found[key]

    def moves(e: sp.Basic) -> bool:
        return bool(e.free_symbols & moving)

    def cond(c: sp.Basic) -> sp.Basic:
        if isinstance(c, sp.And | sp.Or | sp.Not | sp.Xor):
            return c.func(*[cond(a) for a in c.args])
        if isinstance(c, sp.StrictGreaterThan | sp.GreaterThan | sp.StrictLessThan | sp.LessThan) and moves(
            c
        ):
            return sp.StrictGreaterThan(switch("condition", c), sp.Rational(1, 2))
        return c

    def walk(e: sp.Basic) -> sp.Basic:
        if isinstance(e, sp.Piecewise):
            return sp.Piecewise(*[(walk(v), cond(c)) for v, c in e.args])
        if isinstance(e, sp.floor) and moves(e):
            return switch("floor", e.args[0])
        if isinstance(e, sp.ceiling) and moves(e):
            return switch("ceiling", e.args[0])
        if not e.args or isinstance(e, sp.Symbol):
            return e
        new = [walk(a) for a in e.args]
        return e.func(*new) if any(n is not o for n, o in zip(new, e.args, strict=True)) else e

    return [walk(e) for e in exprs], switches, symbols


def condition_atoms(condition: sp.Basic, moving: set[sp.Symbol]) -> list[sp.Basic]:
    """The inequalities of a boolean expression that involve time or a state.

    The solver watches each of them (a sign change of its root function inside a step),
    so that a trigger true only briefly, such as ``S > 0.18 && S < 0.19`` crossed within
    one step, is not stepped over (SBML Test Suite case 1511).
    """
    out: list[sp.Basic] = []

    def visit(c: sp.Basic) -> None:
        if isinstance(c, sp.StrictGreaterThan | sp.GreaterThan | sp.StrictLessThan | sp.LessThan):
            if c.free_symbols & moving and c not in out:
                out.append(c)
        elif isinstance(c, sp.And | sp.Or | sp.Not | sp.Xor):
            for a in c.args:
                visit(a)

    visit(condition)
    return out
