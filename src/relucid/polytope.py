"""Operations on H-polytopes ``P = {x : A x <= b}``.

Every function takes the pair ``(A, b)``: ``A`` of shape (m, n), ``b`` of shape (m,). LPs go
through :class:`relucid.lp.LinearProgram` (HiGHS). Tolerances are absolute on rows scaled to
unit Euclidean norm, so they read as distances in input space.

Redundancy removal lives in :mod:`relucid.redundancy`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.errors import EmptyPolytopeError, InputError
from relucid.lp import LinearProgram, LPStatus

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Rows whose removal lets ``a_i x`` exceed ``b_i`` by at most this (unit-norm rows) count as
#: redundant.
REDUNDANCY_TOL = 1e-7
#: Feasibility tolerance handed to HiGHS for geometric LPs (its default 1e-7 is too coarse
#: for redundancy decisions at REDUNDANCY_TOL).
LP_FEAS_TOL = 1e-9
#: At most this many "sum of unreached coordinates" LPs per side in :func:`bounding_box`.
BOX_BATCH_ROUNDS = 8
#: A warm support LP taking more than STALL_FACTOR * n + 100 simplex iterations (a cold one
#: takes about 3 n on MNIST regions) is restarted from scratch.
STALL_FACTOR = 4
#: Above this input dimension the first (cold) LP of a model is solved by interior point.
IPM_MIN_DIM = 64


def _check(A: ArrayLike, b: ArrayLike) -> tuple[FloatArray, FloatArray]:
    a = np.asarray(A, dtype=np.float64)
    bb = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.ndim != 2 or a.shape[0] != bb.size:
        raise InputError(
            f"polytope needs A of shape (m, n) and b of shape (m,), got {a.shape}, {bb.shape}"
        )
    if not (np.isfinite(a).all() and np.isfinite(bb).all()):
        raise InputError("polytope rows must be finite")
    return a, bb


def normalize(A: ArrayLike, b: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Scale rows to unit norm: returns ``(A / |a_i|, b / |a_i|, |a_i|)`` (zero rows kept)."""
    a, bb = _check(A, b)
    norms = np.linalg.norm(a, axis=1)
    safe = np.where(norms > 0, norms, 1.0)
    return a / safe[:, None], bb / safe, norms


def _lp(a: FloatArray, b: FloatArray) -> LinearProgram:
    """A primal geometric LP with tight tolerances (emptiness and single-row tests; the
    many-LP loops use :class:`SupportLP`)."""
    lp = LinearProgram(a, b, cold_start_ipm=a.shape[1] > IPM_MIN_DIM)
    lp.set_option("primal_feasibility_tolerance", LP_FEAS_TOL)
    lp.set_option("dual_feasibility_tolerance", LP_FEAS_TOL)
    lp.set_option("simplex_strategy", 4)
    return lp


def contains(A: ArrayLike, b: ArrayLike, X: ArrayLike, tol: float = 1e-9) -> NDArray[np.bool_]:
    """Membership ``A x <= b + tol |a_i|`` for each row of ``X`` (shape (k, n) or (n,))."""
    a, bb, _ = normalize(A, b)
    x = np.asarray(X, dtype=np.float64)
    return (
        np.all(x @ a.T <= bb + tol * (1 + np.abs(bb)), axis=-1)
        if a.size
        else np.ones(x.shape[:-1], dtype=bool)
    )


def is_empty(A: ArrayLike, b: ArrayLike) -> bool:
    """Whether no ``x`` satisfies ``A x <= b`` (one LP)."""
    a, bb, norms = normalize(A, b)
    zero = norms == 0
    if (bb[zero] < 0).any():
        return True
    return not _lp(a[~zero], bb[~zero]).feasible()


@dataclass(frozen=True)
class Ball:
    """The Chebyshev ball: the largest ball ``|x - centre| <= radius`` inside ``P``."""

    centre: FloatArray
    radius: float


def chebyshev_ball(A: ArrayLike, b: ArrayLike, max_radius: float = 1e12) -> Ball:
    """Maximise ``r`` subject to ``a_i x + |a_i| r <= b_i`` (one LP).

    An unbounded polytope gets ``radius = inf`` (the centre is then a point reached with the
    radius capped at ``max_radius``). Raises :class:`EmptyPolytopeError` if ``P`` is empty;
    a radius of 0 means ``P`` is not full-dimensional.
    """
    a, bb, norms = normalize(A, b)
    if (bb[norms == 0] < 0).any():
        raise EmptyPolytopeError("polytope is empty (a zero row has a negative offset)")
    keep = norms > 0
    n = a.shape[1]
    rows = np.hstack([a[keep], np.ones((int(keep.sum()), 1))])
    lp = LinearProgram(
        rows,
        bb[keep],
        col_lo=[*([-np.inf] * n), 0.0],
        col_hi=[*([np.inf] * n), max_radius],
        cold_start_ipm=n > IPM_MIN_DIM,
    )
    lp.set_option("primal_feasibility_tolerance", LP_FEAS_TOL)
    c = np.zeros(n + 1)
    c[-1] = 1.0
    res = lp.maximize(c)
    if res.status is LPStatus.INFEASIBLE:
        raise EmptyPolytopeError("polytope is empty")
    if res.status is LPStatus.UNBOUNDED or res.x is None:
        raise EmptyPolytopeError("Chebyshev LP unbounded despite the radius cap")
    radius = float(res.x[-1])
    return Ball(res.x[:n], np.inf if radius >= max_radius * (1 - 1e-9) else radius)


class SupportLP:
    """Support-function LPs ``h(c) = max { c x : A x <= b }`` solved in dual form.

    ``h(c) = min { b^T lam : A^T lam = c, lam >= 0 }``. Changing ``c`` changes only the
    right-hand side, so the last optimal basis stays dual feasible and the dual simplex
    re-solves in few pivots: on WBC regions (30 inputs, 189 rows) 4x fewer iterations than
    the primal form, on MNIST regions (784 inputs, 2601 rows) 70 ms per LP instead of 2.5 s.
    Raising row ``k``'s offset changes one cost. Dropping row ``k`` deletes its column: each
    re-solve costs time in proportion to the stored non-zeros (measured on MNIST: 15 ms per
    solve with 800k non-zeros, 5 ms with 400k), so a model sheds the rows it no longer needs.
    Rows keep their original indices ``k`` in every method.
    """

    def __init__(self, a: FloatArray, b: FloatArray) -> None:
        m, n = a.shape
        self.a, self.b, self.n = a, b, n
        self.lp = LinearProgram(
            a.T,
            a[0] if m else np.zeros(n),
            a[0] if m else np.zeros(n),
            col_lo=np.zeros(m),
            col_hi=np.full(m, np.inf),
            stall_iterations=STALL_FACTOR * n + 100,
        )
        self.lp.set_option("primal_feasibility_tolerance", LP_FEAS_TOL)
        self.lp.set_option("dual_feasibility_tolerance", LP_FEAS_TOL)
        self.lp.set_objective(b, "min")
        self._rows = np.arange(n, dtype=np.int32)
        #: column of row k in the HiGHS model, -1 once dropped
        self.col = np.arange(m, dtype=np.int64)

    @property
    def alive(self) -> IntArray:
        """The rows still in the model."""
        return np.flatnonzero(self.col >= 0)

    def support(self, c: FloatArray) -> float:
        """``max c x`` over the current rows (``inf`` when unbounded)."""
        self.lp.set_rows_bounds(self._rows, c, c)
        res = self.lp.solve(want_x=False)
        if res.status is LPStatus.INFEASIBLE:  # dual infeasible: the primal is unbounded
            return np.inf
        if res.status is LPStatus.UNBOUNDED or res.objective is None:
            raise EmptyPolytopeError("polytope is empty (its support LP is unbounded below)")
        return res.objective

    def point(self) -> FloatArray:
        """The primal maximiser of the last solve (the duals of ``A^T lam = c``), up to sign:
        HiGHS's sign convention for row duals is not ours to rely on, so callers keep the
        orientation that satisfies the rows."""
        return self.lp.row_duals()

    def set_offset(self, k: int, value: float) -> None:
        """Make row ``k`` read ``a_k x <= value`` (its dual variable's cost)."""
        self.lp.set_col_cost(int(self.col[k]), value)

    def drop(self, k: int) -> None:
        self.drop_many(np.array([k], dtype=np.int64))

    def drop_many(self, rows: IntArray) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        rows = rows[self.col[rows] >= 0]
        if not rows.size:
            return
        self.lp.delete_cols(self.col[rows])
        self.col[rows] = -1
        alive = self.col >= 0
        self.col[alive] = np.arange(int(alive.sum()))

    def copy(self) -> SupportLP:
        """A second model over the same rows, warm-started from this one's basis (for a
        thread of its own)."""
        rows = self.alive
        other = SupportLP(self.a[rows], self.b[rows])
        other.a, other.b = self.a, self.b
        other.col = np.full(self.col.size, -1, dtype=np.int64)
        other.col[rows] = np.arange(rows.size)
        other.lp.set_basis(self.lp.get_basis())
        return other


def bounding_box(
    A: ArrayLike, b: ArrayLike, *, check_empty: bool = True
) -> tuple[FloatArray, FloatArray]:
    """The smallest box ``[lo, hi]`` containing ``P``: up to 2n support LPs on one model.

    Sides in which ``P`` is unbounded are infinite. Raises :class:`EmptyPolytopeError`
    (unless ``check_empty=False``, for callers that already know ``P`` is not empty).
    Maximisers already seen are reused: a coordinate that an earlier maximiser puts on the
    largest value an axis-aligned row allows needs no LP of its own.
    """
    lo, hi, *_ = _bounding_box(A, b, check_empty=check_empty)
    return lo, hi


def _bounding_box(
    A: ArrayLike,
    b: ArrayLike,
    *,
    check_empty: bool = True,
    model: SupportLP | None = None,
    seen: tuple[FloatArray, FloatArray] | None = None,
    visited: list[FloatArray] | None = None,
    skip_pinned: bool = False,
) -> tuple[FloatArray, FloatArray, int, NDArray[np.bool_]]:
    """:func:`bounding_box`, plus the number of LPs it solved and the sides it assumed.

    ``model``, if given, is a :class:`SupportLP` over the same (normalised, non-zero) rows,
    kept warm for the caller's next LPs. ``seen = (lo, hi)``: coordinates already attained
    by points of ``P`` (a side they put on its axis-aligned row needs no LP). ``visited``
    collects the LP maximisers (vertices of ``P``). With ``skip_pinned``, a side pinned by
    an axis-aligned row but not yet reached is returned at the row's value without an LP
    (an outer bound) and flagged in the returned mask (shape (2, n): lo sides, hi sides);
    the caller settles it (the side is exact when that row turns out irredundant).
    """
    a, bb, norms = normalize(A, b)
    if (bb[norms == 0] < 0).any():
        raise EmptyPolytopeError("polytope is empty (a zero row has a negative offset)")
    keep = norms > 0
    a, bb = a[keep], bb[keep]
    n = a.shape[1]
    if check_empty and is_empty(a, bb):
        raise EmptyPolytopeError("polytope is empty")
    if model is None:
        model = SupportLP(a, bb)
    solves_before = model.lp.solves
    lo = np.full(n, -np.inf)
    hi = np.full(n, np.inf)
    # Sides pinned by an axis-aligned row: x_j <= u from a row e_j (or -e_j).
    axis_hi = np.full(n, np.inf)
    axis_lo = np.full(n, -np.inf)
    for i in np.flatnonzero(np.count_nonzero(a, axis=1) == 1):
        j = int(np.flatnonzero(a[i])[0])
        if a[i, j] > 0:
            axis_hi[j] = min(axis_hi[j], bb[i] / a[i, j])
        else:
            axis_lo[j] = max(axis_lo[j], bb[i] / a[i, j])
    seen_hi = np.full(n, -np.inf) if seen is None else np.asarray(seen[1], np.float64).copy()
    seen_lo = np.full(n, np.inf) if seen is None else np.asarray(seen[0], np.float64).copy()
    slack_tol = 1e-7 * (1 + np.abs(bb))

    def record(point: FloatArray) -> bool:
        """Keep ``point`` (or its negation: HiGHS's sign convention for row duals is not
        ours to rely on) if it lies in P; returns whether one did."""
        nonlocal seen_hi, seen_lo
        for cand in (point, -point):
            if (a @ cand <= bb + slack_tol).all():
                seen_hi = np.maximum(seen_hi, cand)
                seen_lo = np.minimum(seen_lo, cand)
                if visited is not None:
                    visited.append(cand)
                return True
        return False

    def reached(sign: float) -> NDArray[np.bool_]:
        pinned, seen = (axis_hi, seen_hi) if sign > 0 else (-axis_lo, -seen_lo)
        with np.errstate(invalid="ignore"):
            return np.isfinite(pinned) & (seen >= pinned - 1e-12 * (1 + np.abs(pinned)))

    # Batch phase: maximise the sum of the coordinates whose pinned side is not yet reached;
    # one LP often puts many of them on their bound at once (in a 784-input MNIST region
    # every side is a domain bound). Stops when a round reaches no new side.
    assumed = np.zeros((2, n), dtype=bool)
    for sign in (1.0, -1.0):
        pinned = axis_hi if sign > 0 else -axis_lo
        for _ in range(BOX_BATCH_ROUNDS):
            todo = np.isfinite(pinned) & ~reached(sign)
            if todo.sum() < 2:
                break
            before = int(reached(sign).sum())
            value = model.support(sign * todo.astype(np.float64))
            if not np.isfinite(value) or not record(model.point()):
                break
            if int(reached(sign).sum()) == before:
                break

    for j in range(n):
        for sign in (1.0, -1.0):
            pinned, seen = (axis_hi[j], seen_hi[j]) if sign > 0 else (-axis_lo[j], -seen_lo[j])
            if np.isfinite(pinned) and seen >= pinned - 1e-12 * (1 + abs(pinned)):
                if sign > 0:
                    hi[j] = axis_hi[j]
                else:
                    lo[j] = axis_lo[j]
                continue
            if skip_pinned and np.isfinite(pinned):
                assumed[int(sign > 0), j] = True
                if sign > 0:
                    hi[j] = axis_hi[j]
                else:
                    lo[j] = axis_lo[j]
                continue
            e = np.zeros(n)
            e[j] = sign
            value = model.support(e)
            if sign > 0:
                hi[j] = value
            else:
                lo[j] = -value
            if np.isfinite(value):
                record(model.point())
    return lo, hi, model.lp.solves - solves_before, assumed


def is_redundant(A: ArrayLike, b: ArrayLike, i: int, tol: float = REDUNDANCY_TOL) -> bool:
    """Exact single-row test: does dropping row ``i`` leave ``P`` unchanged? (one LP)"""
    a, bb, _ = normalize(A, b)
    others = np.delete(np.arange(a.shape[0]), i)
    lp = _lp(np.vstack([a[others], a[i]]), np.concatenate([bb[others], [bb[i] + 1.0]]))
    res = lp.maximize(a[i])
    if res.status is LPStatus.INFEASIBLE:
        raise EmptyPolytopeError("polytope is empty")
    return bool(
        res.optimal
        and res.objective is not None
        and res.objective <= bb[i] + tol * (1 + abs(bb[i]))
    )


def vertices(A: ArrayLike, b: ArrayLike, max_dim: int = 6) -> FloatArray:
    """Vertices of a bounded polytope by double description (pycddlib), shape (k, n).

    Refuses dimensions above ``max_dim`` (the count can grow exponentially) and unbounded
    polytopes (they have rays, not only vertices).
    """
    import cdd

    a, bb = _check(A, b)
    n = a.shape[1]
    if n > max_dim:
        raise InputError(f"vertex enumeration is limited to dimension <= {max_dim}, got {n}")
    mat = cdd.matrix_from_array(
        np.hstack([bb[:, None], -a]).tolist(), rep_type=cdd.RepType.INEQUALITY
    )
    gen = np.array(cdd.copy_generators(cdd.polyhedron_from_matrix(mat)).array, dtype=np.float64)
    if gen.size == 0:
        return np.zeros((0, n))
    if (gen[:, 0] == 0).any():
        raise InputError("polytope is unbounded: it has rays, not only vertices")
    return gen[:, 1:] / gen[:, :1]


def from_vertices(V: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """H-representation ``(A, b)`` of the convex hull of the rows of ``V`` (pycddlib)."""
    import cdd

    v = np.asarray(V, dtype=np.float64)
    mat = cdd.matrix_from_array(
        np.hstack([np.ones((v.shape[0], 1)), v]).tolist(), rep_type=cdd.RepType.GENERATOR
    )
    ineq = cdd.copy_inequalities(cdd.polyhedron_from_matrix(mat))
    h = np.array(ineq.array, dtype=np.float64).reshape(-1, v.shape[1] + 1)
    rows_a, rows_b = -h[:, 1:], h[:, 0]
    lin = sorted(ineq.lin_set)
    if lin:  # equalities come as one row each: add the opposite inequality
        rows_a = np.vstack([rows_a, -rows_a[lin]])
        rows_b = np.concatenate([rows_b, -rows_b[lin]])
    return rows_a, rows_b


def sample(
    A: ArrayLike, b: ArrayLike, k: int, start: ArrayLike, *, random_state: int = 0, burn: int = 20
) -> FloatArray:
    """``k`` points of ``P`` by hit-and-run from the interior point ``start``, shape (k, n).

    Each step draws a random direction, finds the chord of ``P`` through the current point
    and moves to a uniform point of it. ``P`` must be bounded along every chord.
    """
    a, bb, _ = normalize(A, b)
    x = np.asarray(start, dtype=np.float64).copy()
    rng = np.random.default_rng(random_state)
    out = np.empty((k, x.size))
    for step in range(burn + k):
        d = rng.standard_normal(x.size)
        d /= np.linalg.norm(d)
        speed = a @ d
        slack = np.maximum(bb - a @ x, 0.0)
        with np.errstate(divide="ignore"):
            t = slack / speed
        t_hi = np.min(t[speed > 1e-15], initial=np.inf)
        t_lo = np.max(t[speed < -1e-15], initial=-np.inf)
        if not (np.isfinite(t_hi) and np.isfinite(t_lo)):
            raise InputError("cannot sample an unbounded polytope")
        x = x + rng.uniform(t_lo, t_hi) * d
        if step >= burn:
            out[step - burn] = x
    return out
