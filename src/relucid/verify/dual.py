"""Weak-duality bounds of an LP as HiGHS holds it: proofs that do not rest on the solver's
tolerances (:meth:`LpSnapshot.dual_bound`), used by the relaxation of
:class:`~relucid.verify.NetworkMILP` for its lower bounds and Farkas checks."""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from relucid.errors import InputError

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class LpSnapshot:
    """An LP as HiGHS holds it (``min c.x``, ``row_lo <= A x <= row_hi``,
    ``col_lo <= x <= col_hi``), copied once so bounds can be proved for many objectives."""

    a: sparse.csr_array
    row_lo: FloatArray
    row_hi: FloatArray
    col_lo: FloatArray
    col_hi: FloatArray
    offset: float

    @classmethod
    def of(cls, h: highspy.Highs) -> LpSnapshot:
        lp = h.getLp()
        if lp.sense_ == highspy.ObjSense.kMaximize:
            raise InputError("a dual bound bounds a minimisation")
        mat = lp.a_matrix_
        shape = (lp.num_row_, lp.num_col_)
        parts = (
            np.asarray(mat.value_, dtype=np.float64),
            np.asarray(mat.index_, dtype=np.int64),
            np.asarray(mat.start_, dtype=np.int64),
        )
        rowwise = mat.format_ == highspy.MatrixFormat.kRowwise
        a = (
            sparse.csr_array(parts, shape=shape)
            if rowwise
            else sparse.csc_array(parts, shape=shape).tocsr()
        )
        return cls(
            a,
            np.asarray(lp.row_lower_, dtype=np.float64),
            np.asarray(lp.row_upper_, dtype=np.float64),
            np.asarray(lp.col_lower_, dtype=np.float64),
            np.asarray(lp.col_upper_, dtype=np.float64),
            float(lp.offset_),
        )

    def dual_bound(self, c: FloatArray, r: FloatArray) -> float:
        """A lower bound on ``min c.x`` over this LP, proved by weak duality from row
        multipliers ``r`` (HiGHS's row duals).

        For any ``r`` and ``g = c - A^T r``, every feasible ``x`` has ``c.x = g.x + r.(A x)
        >= sum_j min(g_j l_j, g_j u_j) + sum_i min(r_i L_i, r_i U_i)``. With the LP's optimal
        duals this is its optimum up to rounding; with any other ``r`` it is weaker but still
        valid, so the bound never rests on the solver's feasibility tolerances. Multipliers
        of rows whose needed side is infinite are dropped (set to 0); the sum is lowered by
        a relative 1e-12 of its terms' magnitudes for floating-point rounding.
        """
        # The side each multiplier meets: lower for r > 0, upper for r < 0; a multiplier
        # whose side is infinite is dropped (its row could not bound anything).
        r_side = np.where(r > 0, self.row_lo, self.row_hi)
        r = np.where(np.isfinite(r_side), r, 0.0)
        row_terms = r * np.where(r != 0, r_side, 0.0)
        g = c - self.a.T @ r
        g_side = np.where(g > 0, self.col_lo, self.col_hi)
        if np.any((g != 0) & ~np.isfinite(g_side)):
            return float("-inf")
        col_terms = g * np.where(g != 0, g_side, 0.0)
        total = float(row_terms.sum() + col_terms.sum()) + self.offset
        slack = 1e-12 * float(np.abs(row_terms).sum() + np.abs(col_terms).sum() + 1.0)
        return total - slack

    def farkas_proof(self, h: highspy.Highs) -> bool:
        """Whether HiGHS's dual ray, after an infeasible solve of this LP, proves it
        infeasible.

        A ray ``r`` proves it when the weak-duality bound of ``min 0`` with multipliers
        ``r`` (either sign: HiGHS's convention is not documented) is positive, since a
        feasible LP would have that minimum 0 (:meth:`dual_bound`). The check is ours; a
        ray that fails it proves nothing.
        """
        try:
            _, has_ray, ray = h.getDualRay()  # type: ignore[attr-defined]
        except (RuntimeError, ValueError):
            return False
        if not has_ray:
            return False
        r = np.asarray(ray, dtype=np.float64)
        if r.shape != (self.a.shape[0],) or not np.isfinite(r).all():
            return False
        zero = np.zeros(self.a.shape[1])
        return max(self.dual_bound(zero, r), self.dual_bound(zero, -r)) > 0
