"""The per-step linear algebra of the Rosenbrock solver, chosen by size in one place.

Every Rodas5 step solves eight systems ``W k = r`` with the same ``W = I / (h gamma) - J``.
How best to do that depends on ``n`` (measured by ``benchmarks/bench_linsolve.py``; the
README has the table):

- ``"inverse"``: an explicit inverse by Gauss-Jordan with partial pivoting, unrolled
  into whole-row operations that XLA fuses, then eight matrix-vector products. Best for
  the small systems of most kinetic models: ``jnp.linalg.inv`` and ``lu_factor`` make
  one LAPACK call per matrix whose overhead dominates below a few dozen states. The
  traced program grows with ``n`` (one block of row operations per column).
- ``"lu"``: ``jax.scipy.linalg.lu_factor`` once per step, ``lu_solve`` per stage:
  O(n^3 / 3) then O(n^2) per solve, a traced program of constant size.
- ``"banded"``: the states renumbered (reverse Cuthill-McKee on the Jacobian's sparsity
  pattern) so that ``W`` is banded, then a banded LU with partial pivoting, O(n b^2)
  for half bandwidth ``b``, as LAPACK's ``gbtrf``: for large, sparse reaction networks
  (chains, cascades) whose renumbered bandwidth is small.

Tangents (forward-mode sensitivities) reuse the step's factorisation:
``W dk = dr - dW k``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

#: Up to this many states the unrolled inverse is used, above it LU (measured crossover,
#: benchmarks/bench_linsolve.py).
INVERSE_MAX_N = 24
#: The banded solve is used when the renumbered half bandwidth is at most this fraction
#: of n (and n is above INVERSE_MAX_N). Measured (benchmarks/bench_large.py, 500 species):
#: half bandwidth 1, banded 0.31 s per llh; half bandwidth 54 (0.11 n), banded 1.55 s
#: against LU 0.45 s; the banded LU's column loop costs ~ n b^2 at a far lower rate than
#: LAPACK's blocked dense LU, so the crossover is near b = 0.05 n.
BANDED_MAX_FRACTION = 0.05


#: Above this many states Rodas5's stages run as a loop (measured, benchmarks/bench_large.py).
STAGE_LOOP_MIN_N = INVERSE_MAX_N
#: The Jacobian is computed from compressed columns (one forward-mode product per group
#: of structurally orthogonal columns) when that takes at most this fraction of n products.
COLORED_MAX_FRACTION = 0.5


@dataclass(frozen=True, eq=False)
class Structure:
    """How the Jacobian of ``n`` states is formed and its systems solved.

    Static: part of the traced program (hashed by identity).

    Attributes:
        kind: "inverse", "lu" or "banded".
        n: number of states.
        perm: for "banded", the renumbering (new position i holds old state perm[i]).
        lower, upper: for "banded", the lower and upper half bandwidths of the
            renumbered Jacobian.
        pattern: (n, n) structural sparsity of the Jacobian, or None (dense).
        colors: for a compressed Jacobian, the group of each column (columns of a group
            share no row, so one Jacobian-vector product gives them all), or None.
        stage_loop: run Rodas5's eight stages as a loop (the right-hand side traced once
            instead of eight times: compile time of large models; see :mod:`.rodas5`).
    """

    kind: str
    n: int
    perm: np.ndarray | None = None
    lower: int = 0
    upper: int = 0
    pattern: np.ndarray | None = field(default=None, repr=False)
    colors: np.ndarray | None = None
    stage_loop: bool = False

    @property
    def n_colors(self) -> int:
        """Jacobian-vector products per Jacobian (n without compression)."""
        return int(self.colors.max()) + 1 if self.colors is not None else self.n


def choose(n: int, pattern: np.ndarray | None = None, kind: str = "auto") -> Structure:
    """Pick the Jacobian's form and the linear solver for ``n`` states.

    Args:
        n: number of states.
        pattern: (n, n) boolean structural sparsity of the Jacobian (None: dense).
        kind: "auto" (by size and sparsity), "inverse", "lu" or "banded".
    """
    colors = None
    if pattern is not None and n > INVERSE_MAX_N:
        colors = color_columns(pattern)
        if int(colors.max(initial=-1)) + 1 > COLORED_MAX_FRACTION * n:
            colors = None
    extra = {
        "pattern": pattern if colors is not None else None,
        "colors": colors,
        "stage_loop": n > STAGE_LOOP_MIN_N,
    }
    if kind == "inverse" or (kind == "auto" and n <= INVERSE_MAX_N):
        return Structure("inverse", n, **extra)
    if kind in ("auto", "banded") and pattern is not None and n > 1:
        perm, lower, upper = _banded_order(pattern)
        if kind == "banded" or max(lower, upper) <= BANDED_MAX_FRACTION * n:
            return Structure("banded", n, perm, lower, upper, **extra)
    return Structure("lu", n, **extra)


def color_columns(pattern: np.ndarray) -> np.ndarray:
    """Greedy grouping of structurally orthogonal columns (Curtis, Powell and Reid 1974).

    Two columns can share a group when no row has a nonzero in both; the Jacobian then
    takes one Jacobian-vector product per group instead of one per column.
    """
    n = pattern.shape[1]
    rows_of = [np.flatnonzero(pattern[:, j]) for j in range(n)]
    cols_of = [np.flatnonzero(pattern[i]) for i in range(pattern.shape[0])]
    colors = np.full(n, -1, dtype=np.int64)
    for j in range(n):
        taken = {int(colors[k]) for i in rows_of[j] for k in cols_of[i] if colors[k] >= 0}
        c = 0
        while c in taken:
            c += 1
        colors[j] = c
    return colors


def jacobian(structure: Structure, fun, t, x):
    """``(df/dt, df/dx)`` of ``fun(t, x)``, the Jacobian in the structure's storage.

    Dense forward mode (one product per column), or compressed columns (one product per
    group of structurally orthogonal columns); for "banded", straight into the band
    storage of the renumbered matrix (no n x n array is formed).
    """
    if structure.colors is None:
        jac = jax.jacfwd(lambda z: fun(z[0], z[1:]))(jnp.concatenate([jnp.reshape(t, (1,)), x]))
        return jac[:, 0], store(structure, jac[:, 1:])
    colors = structure.colors
    seeds = jnp.asarray(np.arange(structure.n_colors)[:, None] == colors[None, :], dtype=x.dtype)
    compressed = jax.vmap(lambda s: jax.jvp(lambda xx: fun(t, xx), (x,), (s,))[1])(seeds)  # (n_colors, n)
    f_t = jax.jvp(lambda tt: fun(tt, x), (t,), (jnp.ones_like(t),))[1]
    if structure.kind == "banded":
        rows, cols, valid = _band_index(structure)
        valid = valid & structure.pattern[rows, cols]
        return f_t, jnp.where(valid, compressed[colors[cols], rows], 0.0)
    return f_t, jnp.where(jnp.asarray(structure.pattern), compressed.T[:, colors], 0.0)


def _band_index(structure: Structure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Band storage of the renumbered matrix: where each stored entry comes from.

    The original row and column of each stored entry, and whether it lies in the matrix
    and its band.
    """
    n, lo, up = structure.n, structure.lower, structure.upper
    width = 2 * lo + up + 1
    i = np.arange(n)[:, None]
    c = i + np.arange(width)[None, :] - lo
    valid = (c >= 0) & (c < n) & (c - i <= up)
    perm = structure.perm
    return np.broadcast_to(perm[i], c.shape), perm[np.clip(c, 0, n - 1)], valid


def store(structure: Structure, dense):
    """A dense (n, n) matrix in the structure's storage (band storage for "banded")."""
    if structure.kind != "banded":
        return dense
    rows, cols, valid = _band_index(structure)
    return jnp.where(valid, dense[rows, cols], 0.0)


def shifted(structure: Structure, jac, s):
    """``s I - jac`` in the structure's storage."""
    if structure.kind != "banded":
        return s * jnp.eye(structure.n, dtype=jac.dtype) - jac
    return (-jac).at[:, structure.lower].add(s)


def matvec(structure: Structure, a, v):
    """``a @ v`` for a matrix in the structure's storage (original state order)."""
    if structure.kind != "banded":
        return a @ v
    n, lo = structure.n, structure.lower
    perm = structure.perm
    vp = v[perm]
    cols = np.arange(n)[:, None] + np.arange(a.shape[1])[None, :] - lo
    vals = jnp.where((cols >= 0) & (cols < n), vp[np.clip(cols, 0, n - 1)], 0.0)
    out = jnp.sum(a * vals, axis=1)
    return jnp.zeros_like(out).at[perm].set(out)


def _banded_order(pattern: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Reverse Cuthill-McKee numbering of the (symmetrised) pattern and its bandwidths."""
    import scipy.sparse as sps
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    n = pattern.shape[0]
    sym = sps.csr_matrix(pattern | pattern.T | np.eye(n, dtype=bool))
    perm = np.asarray(reverse_cuthill_mckee(sym, symmetric_mode=True))
    p = pattern[np.ix_(perm, perm)] | np.eye(n, dtype=bool)
    rows, cols = np.nonzero(p)
    return perm, int(np.max(rows - cols, initial=0)), int(np.max(cols - rows, initial=0))


# -- the unrolled Gauss-Jordan inverse --------------------------------------------------
def inverse(a):
    """Inverse of a small square matrix: Gauss-Jordan with partial pivoting, unrolled.

    Whole-row operations on the (n, 2n) augmented matrix, so that under ``vmap`` they
    are elementwise over the batch; XLA fuses them, where ``jnp.linalg.inv`` makes one
    LAPACK call per matrix, whose overhead dominates at the sizes of kinetic models.
    """
    n = a.shape[-1]
    m = jnp.concatenate([a, jnp.eye(n, dtype=a.dtype)], axis=1)
    idx = jnp.arange(n)
    for k in range(n):
        p = jnp.argmax(jnp.where(idx >= k, jnp.abs(m[:, k]), -1.0))
        row_p, row_k = m[p], m[k]
        m = jnp.where((idx == k)[:, None], row_p, jnp.where((idx == p)[:, None], row_k, m))
        row = row_p / row_p[k]
        m = m - jnp.outer(jnp.where(idx == k, 0.0, m[:, k]), row)
        m = m.at[k].set(row)
    return m[:, n:]


# -- banded LU with partial pivoting ----------------------------------------------------
def to_band(a, lower: int, upper: int):
    """Dense (n, n) -> LAPACK-style band storage (n, lower + upper + 1 + lower) by rows.

    Row i holds a[i, i - lower : i + upper + lower + 1] (zeros outside the matrix); the
    extra ``lower`` columns on the right take the fill-in of row interchanges.
    """
    n = a.shape[0]
    width = 2 * lower + upper + 1
    cols = jnp.arange(n)[:, None] + jnp.arange(width)[None, :] - lower
    valid = (cols >= 0) & (cols < n)
    return jnp.where(valid, jnp.take_along_axis(a, jnp.clip(cols, 0, n - 1), axis=1), 0.0)


def band_lu(band, lower: int, upper: int):
    """Banded LU with partial pivoting (row storage of :func:`to_band`), as LAPACK's gbtrf.

    Step k brings the rows k .. k + lower into a window aligned on column k, swaps the
    pivot row to the top, eliminates below it and stores the rows back.

    Returns:
        ``(u, low, piv)``: row k of U aligned on column k (n, width), the multipliers of
        step k (n, lower) and the row swapped with row k.
    """
    n, w = band.shape
    kl = lower

    def step(work, k):
        rows = k + jnp.arange(kl + 1)
        live = rows < n
        win = work[jnp.clip(rows, 0, n - 1)]
        shift = k - rows + kl  # row r stores column j at offset j - r + kl
        idx = jnp.arange(w)[None, :] + shift[:, None]
        aligned = jnp.where(idx < w, jnp.take_along_axis(win, jnp.clip(idx, 0, w - 1), axis=1), 0.0)
        aligned = jnp.where(live[:, None], aligned, 0.0)
        p = jnp.argmax(jnp.where(live, jnp.abs(aligned[:, 0]), -1.0))
        prow = aligned[p]
        aligned = aligned.at[p].set(aligned[0])
        mult = jnp.where(jnp.arange(kl + 1) > 0, aligned[:, 0] / prow[0], 0.0)
        aligned = aligned - mult[:, None] * prow[None, :]
        back = jnp.arange(w)[None, :] - shift[:, None]
        restored = jnp.where(back >= 0, jnp.take_along_axis(aligned, jnp.clip(back, 0, w - 1), axis=1), 0.0)
        work = work.at[rows].set(restored, mode="drop")
        return work, (prow, mult[1:], k + p)

    _, (u, low, piv) = jax.lax.scan(step, band, jnp.arange(n))
    return u, low, piv


def band_solve(u, low, piv, r, lower: int):
    """Solve with the factors of :func:`band_lu`: forward elimination, back substitution."""
    n, w = u.shape
    kl = lower

    def fwd(b, k):
        p = piv[k]
        bk, bp = b[k], b[p]
        b = b.at[p].set(bk).at[k].set(bp)
        b = b.at[k + 1 + jnp.arange(kl)].add(-low[k] * bp, mode="drop")
        return b, None

    y, _ = jax.lax.scan(fwd, r, jnp.arange(n))

    def back(x, k):
        cols = k + jnp.arange(1, w)
        xs = jnp.where(cols < n, x[jnp.clip(cols, 0, n - 1)], 0.0)
        x = x.at[k].set((y[k] - jnp.sum(u[k, 1:] * xs)) / u[k, 0])
        return x, None

    x, _ = jax.lax.scan(back, jnp.zeros_like(r), jnp.arange(n)[::-1])
    return x


# -- one interface ----------------------------------------------------------------------
def factor(structure: Structure, w):
    """Factorise ``w`` (in the structure's storage, see :func:`shifted`) for :func:`solve`."""
    if structure.kind == "inverse":
        return inverse(w)
    if structure.kind == "lu":
        return jsl.lu_factor(w)
    return band_lu(w, structure.lower, structure.upper)


def _apply(structure: Structure, fac, r):
    if structure.kind == "inverse":
        return fac @ r
    if structure.kind == "lu":
        return jsl.lu_solve(fac, r)
    perm = structure.perm
    u, low, piv = fac
    k = band_solve(u, low, piv, r[perm], structure.lower)
    return jnp.zeros_like(k).at[perm].set(k)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def solve(structure: Structure, w, fac, r):
    """``w^-1 r`` given ``fac = factor(structure, w)``; tangents reuse the factorisation."""
    return _apply(structure, fac, r)


@solve.defjvp
def _solve_jvp(structure, primals, tangents):
    w, fac, r = primals
    dw, _, dr = tangents
    k = _apply(structure, fac, r)
    # w k = r  =>  w dk = dr - dw k
    return k, _apply(structure, fac, dr - matvec(structure, dw, k))
