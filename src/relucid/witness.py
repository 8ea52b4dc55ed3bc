"""Cheap certificates that rows of ``P = {x : A x <= b}`` are irredundant, and points of ``P``.

A row ``k`` is irredundant when some point satisfies every other row and violates row ``k``
(a *witness*): dropping the row then enlarges the set. Each function here builds witnesses
from points already known to lie in ``P`` and checks every one explicitly against all rows,
so a certificate never rests on the construction being right. They decide most rows of a
region before any redundancy LP runs (see :mod:`relucid.redundancy`). Rows are unit-norm.

Regions carry many axis-aligned rows (the domain box: 1,568 of 2,601 rows on MNIST), so
:class:`Rows` records them once and products between rows skip their zeros.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

#: A witness must violate its row by this many redundancy tolerances (times ``1 + |b_k|``).
EXCESS = 10.0
#: Rows within this slack (times ``1 + |b_k|``) of a vertex count as tight there.
TIGHT = 1e-9
#: Fraction of the way from a vertex towards the interior point at which witnesses start.
PULL = 1e-4


class Rows:
    """Unit rows ``a`` (m, n) with their axis-aligned ones marked.

    ``axis[i]`` says row ``i`` has a single non-zero, in column ``col[i]`` with sign
    ``sign[i]`` (so ``a_i = sign_i e_{col_i}``).
    """

    def __init__(self, a: FloatArray) -> None:
        self.a = a
        nnz = np.count_nonzero(a, axis=1)
        self.axis = nnz == 1
        self.col = np.argmax(np.abs(a), axis=1)
        self.sign = np.sign(a[np.arange(a.shape[0]), self.col])

    def gram(self, rows: IntArray, cols: IntArray) -> FloatArray:
        """``a[rows] @ a[cols].T``, with dense products only between general rows."""
        a = self.a
        out = np.empty((rows.size, cols.size))
        ri, ci = self.axis[rows], self.axis[cols]
        rg, cg = np.flatnonzero(~ri), np.flatnonzero(~ci)
        ra, ca = np.flatnonzero(ri), np.flatnonzero(ci)
        out[np.ix_(rg, cg)] = a[rows[rg]] @ a[cols[cg]].T
        # general x axis: a_r[col_c] * sign_c
        out[np.ix_(rg, ca)] = a[rows[rg]][:, self.col[cols[ca]]] * self.sign[cols[ca]][None, :]
        # axis x anything: sign_r * a_c[col_r]
        out[ra, :] = (a[cols][:, self.col[rows[ra]]] * self.sign[rows[ra]][None, :]).T
        return out


def ray_certify(
    rows: Rows,
    b: FloatArray,
    origins: FloatArray,
    dirs: IntArray,
    tol: float,
    extra: FloatArray | None = None,
) -> BoolArray:
    """Rows proven irredundant by rays from points of ``P`` along the normals of rows
    ``dirs`` (and along the unit vectors ``extra``, if given).

    Along ``o + t a_d`` row ``j`` is crossed at ``t_j = slack_j / (a_j a_d)``. When the
    smallest crossing ``t1`` belongs to one row only, the point halfway to the next crossing
    ``t2`` violates that row and satisfies every other one: a witness (checked explicitly).
    Returns a mask over all rows.
    """
    a = rows.a
    m = a.shape[0]
    certified = np.zeros(m, dtype=bool)
    vec = a[dirs]
    speed = rows.gram(dirs, np.arange(m))  # (k, m), shared by every origin
    if extra is not None and extra.size:
        vec = np.vstack([vec, extra])
        speed = np.vstack([speed, extra @ a.T])
    if vec.shape[0] == 0 or m == 0:
        return certified
    moving = speed > 1e-12
    ks = np.arange(vec.shape[0])
    for origin in np.atleast_2d(origins):
        slack = np.maximum(b - a @ origin, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(moving, slack[None, :] / speed, np.inf)
        if m > 1:
            order = np.argpartition(t, 1, axis=1)[:, :2]
            ta, tb = t[ks, order[:, 0]], t[ks, order[:, 1]]
            first = np.where(tb < ta, order[:, 1], order[:, 0])
            t1, t2 = np.minimum(ta, tb), np.maximum(ta, tb)
        else:
            first, t1 = np.zeros(ks.size, dtype=np.int64), t[:, 0]
            t2 = np.full_like(t1, np.inf)
        t_mid = np.where(np.isfinite(t2), 0.5 * (t1 + t2), t1 + 1.0)
        excess = speed[ks, first] * (t_mid - t1)
        ok = np.isfinite(t1) & (excess > EXCESS * tol * (1 + np.abs(b[first])))
        ok &= ~certified[first]
        if not ok.any():
            continue
        p = origin[None, :] + t_mid[ok, None] * vec[ok]
        viol = p @ a.T - b[None, :]
        viol[np.arange(p.shape[0]), first[ok]] = -np.inf
        good = (viol <= 0).all(axis=1)
        certified[first[ok][good]] = True
    return certified


def axis_reach(a: FloatArray, b: FloatArray, origins: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Coordinates attained by points of ``P``: rays from each origin along ``+e_j`` and
    ``-e_j`` stop at ``P``'s boundary, so ``(lo, hi)`` returned here satisfy
    ``min_P x_j <= lo_j`` and ``hi_j <= max_P x_j``.

    When such a ray stops on an axis-aligned domain row, that side of the bounding box is
    found without an LP (:func:`relucid.polytope._bounding_box` takes these as ``seen``).
    """
    n = a.shape[1]
    hi = np.full(n, -np.inf)
    lo = np.full(n, np.inf)
    for o in np.atleast_2d(origins):
        slack = np.maximum(b - a @ o, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.where(a > 1e-12, slack[:, None] / a, np.inf).min(axis=0, initial=np.inf)
            down = np.where(a < -1e-12, slack[:, None] / -a, np.inf).min(axis=0, initial=np.inf)
        hi = np.maximum(hi, o + up)
        lo = np.minimum(lo, o - down)
    return lo, hi


class VertexCertifier:
    """Rows tight at a vertex proven irredundant by moving off them one at a time.

    At a vertex ``v`` of ``{A x <= b_eff}``, ``n`` tight rows ``B`` are linearly independent;
    the direction ``d_k`` with ``a_k d_k = 1`` and ``a_j d_k = 0`` for the other rows of
    ``B`` leaves only row ``k``. The witness ``(1 - s) v + s c + e_k d_k`` first pulls the
    vertex a little towards the interior point ``c`` (so that every row, including one
    raised above ``b``, holds strictly) and then steps past row ``k`` alone. Axis-aligned
    tight rows pin their coordinate, so the linear algebra is only over the others. Every
    witness is checked against all rows and the true offsets ``b``.
    """

    def __init__(self, rows: Rows, b: FloatArray, interior: FloatArray, tol: float) -> None:
        self.rows, self.b, self.tol = rows, b, tol
        self.a_c = rows.a @ interior
        self.s_c = b - self.a_c
        self.ok = bool((self.s_c > 0).all())

    def certify(
        self,
        vertex: FloatArray,
        targets: BoolArray,
        *,
        b_eff: FloatArray | None = None,
        a_v: FloatArray | None = None,
    ) -> IntArray:
        """The ``targets`` rows certified at ``vertex`` (``b_eff``: the offsets of which it is
        a vertex, default ``b``; ``a_v``: ``A @ vertex`` if already known)."""
        none = np.zeros(0, dtype=np.int64)
        if not self.ok:
            return none
        rows, b = self.rows, self.b
        a = rows.a
        n = a.shape[1]
        av = a @ vertex if a_v is None else a_v
        off = b if b_eff is None else b_eff
        slack = off - av
        tight = np.flatnonzero(np.abs(slack) <= TIGHT * (1 + np.abs(off)))
        if tight.size < n or not targets[tight].any():
            return none
        is_axis = rows.axis[tight]
        axis_rows = tight[is_axis]
        axis_col, first = np.unique(rows.col[axis_rows], return_index=True)
        axis_rows = axis_rows[first]  # one row per pinned coordinate
        general = tight[~is_axis]
        free = np.setdiff1d(np.arange(n), axis_col)
        if general.size < free.size:
            return none
        inv = np.zeros((0, 0))
        if free.size:
            sub = a[np.ix_(general, free)]
            if general.size > free.size:  # degenerate vertex: pick independent rows
                from scipy.linalg import qr

                _, r, piv = qr(sub.T, pivoting=True, mode="economic")
                if abs(r[free.size - 1, free.size - 1]) <= 1e-9 * abs(r[0, 0]):
                    return none
                general = general[np.sort(piv[: free.size])]
                sub = a[np.ix_(general, free)]
            try:
                inv = np.linalg.inv(sub)
            except np.linalg.LinAlgError:
                return none
            if not np.isfinite(inv).all() or np.abs(inv).max() > 1e8:
                return none
        basis = np.concatenate([axis_rows, general])
        chosen = basis[targets[basis]]
        if not chosen.size:
            return none
        # Directions: a_k d = 1 on the chosen row, 0 on the rest of the basis. Each has
        # support on the free coordinates plus at most one pinned one.
        pinned = np.isin(chosen, axis_rows)
        d_free = np.zeros((free.size, chosen.size))
        pin_col = np.zeros(chosen.size, dtype=np.int64)
        pin_val = np.zeros(chosen.size)
        gen_pos = {int(r): i for i, r in enumerate(general)}
        for c, k in enumerate(int(v) for v in chosen):
            if pinned[c]:
                j = int(rows.col[k])
                pin_col[c], pin_val[c] = j, 1.0 / a[k, j]
                if free.size:
                    d_free[:, c] = inv @ (-a[general, j] * pin_val[c])
            else:
                d_free[:, c] = inv[:, gen_pos[k]]
        ad = a[:, free] @ d_free
        ad[:, pinned] += a[:, pin_col[pinned]] * pin_val[pinned][None, :]
        # Pull far enough that a raised row (slack < 0 at the vertex) holds strictly again.
        over = np.maximum(av - b, 0.0)
        pull = max(PULL, float((2 * over / (over + self.s_c)).max(initial=0.0)))
        if pull >= 0.5:
            return none
        step = 2 * pull * self.s_c[chosen]  # row k ends violated by about pull * s_c[k]
        viol = ((1 - pull) * av + pull * self.a_c - b)[:, None] + ad * step[None, :]
        cols = np.arange(chosen.size)
        excess = viol[chosen, cols].copy()
        viol[chosen, cols] = -np.inf
        good = (viol.max(axis=0) <= 0) & (excess > EXCESS * self.tol * (1 + np.abs(b[chosen])))
        return chosen[good].astype(np.int64)
