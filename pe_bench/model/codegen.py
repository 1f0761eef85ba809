"""Turn sympy expressions into plain Python functions over ``jax.numpy``.

sympy's own ``lambdify`` with its JAX printer does the printing; common subexpressions
are shared (``cse=True``) so large rate laws are evaluated once per call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax.numpy as jnp
import sympy as sp


def jax_function(args: Sequence, exprs: Sequence[sp.Expr]) -> Callable:
    """Compile ``exprs`` into ``f(*args) -> jnp.ndarray`` stacked along a new first axis.

    Args:
        args: lambdify arguments; each is a symbol or a list of symbols (the matching
            call argument is then an array unpacked along its first axis).
        exprs: the expressions; the result has shape ``(len(exprs), *broadcast_shape)``.

    Returns:
        A pure function, traceable by JAX (jit/vmap/grad).
    """
    exprs = list(exprs)
    if not exprs:

        def empty(*values):
            return jnp.zeros((0,))

        return empty
    raw = sp.lambdify(list(args), exprs, modules="jax", cse=True, docstring_limit=0)

    def stacked(*values):
        out = raw(*values)
        out = [jnp.asarray(o, dtype=jnp.float64) for o in out]
        shape = jnp.broadcast_shapes(*(o.shape for o in out))
        return jnp.stack([jnp.broadcast_to(o, shape) for o in out])

    return stacked
