"""Exact redundancy removal for H-polytopes ``P = {x : A x <= b}``.

Paper: geometric-causal-explanations-relu, section II-A (after Liu et al.): row ``i`` is
redundant when ``max { a_i x : a_k x <= b_k, k != i } <= b_i``. :func:`irredundant_rows`
proves this for every row, but first decides rows with cheap certificates:

1. zero rows (``0 <= b_i``);
2. rows that cannot bind inside the polytope's bounding box (``max_{box} a_i x < b_i``;
   removing all of them at once is safe: a point leaving ``P`` through the reduced system
   would have to cross one of them inside ``P``, which lies in the box);
3. parallel duplicates (the smaller offset implies the larger);
4. rows certified *irredundant* by ray shooting from the Chebyshev centre: when a ray's first
   crossing is a single row ``j``, a point just beyond it satisfies every other row and
   violates ``j``, a witness that dropping ``j`` enlarges the set (checked explicitly);

and settles the rest with one support LP each (dual form, warm-started), removing redundant
rows as it finds them, so of exact duplicates one survives. Tolerances are absolute on rows
scaled to unit norm.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.errors import EmptyPolytopeError
from relucid.polytope import (
    REDUNDANCY_TOL,
    Ball,
    SupportLP,
    _bounding_box,
    chebyshev_ball,
    normalize,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: The row under test is relaxed only to b_i + CAP * tol: enough to tell redundant from not,
#: and the simplex stops after a short move instead of travelling far beyond the facet.
CAP = 100.0
#: Below this many LP tests, threads cost more than they save.
PARALLEL_MIN_ROWS = 256
#: Random ray directions (32 n of them) only up to this dimension.
RANDOM_RAYS_MAX_DIM = 16


def _box_max(a: FloatArray, lo: FloatArray, hi: FloatArray) -> FloatArray:
    """``max_{lo <= x <= hi} a_i x`` per row (inf where the box is open along a_i)."""
    with np.errstate(invalid="ignore"):
        up = np.where(a > 0, a * hi, np.where(a < 0, a * lo, 0.0))
    return up.sum(axis=1)


@dataclass(frozen=True)
class ReductionStats:
    """How each row's fate was decided by :func:`irredundant_rows`."""

    rows: int
    zero: int
    box_filtered: int
    duplicates: int
    ray_certified: int
    lps: int
    lp_redundant: int
    workers: int = 1

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _ray_certify(
    a: FloatArray, b: FloatArray, centre: FloatArray, dirs: FloatArray, tol: float
) -> NDArray[np.bool_]:
    """Rows proven irredundant by a ray from ``centre`` whose first crossing is unique."""
    slack = b - a @ centre  # > 0 for an interior centre
    speed = dirs @ a.T  # (k, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(speed > 1e-12, slack[None, :] / speed, np.inf)
    order = (
        np.argpartition(t, 1, axis=1)[:, :2] if t.shape[1] > 1 else np.zeros((t.shape[0], 1), int)
    )
    rows_k = np.arange(t.shape[0])
    t1 = t[rows_k, order[:, 0]]
    if t.shape[1] > 1:
        t2 = t[rows_k, order[:, 1]]
        swap = t2 < t1
        first = np.where(swap, order[:, 1], order[:, 0])
        t1, t2 = np.minimum(t1, t2), np.maximum(t1, t2)
    else:
        first, t2 = order[:, 0], np.full_like(t1, np.inf)
    certified = np.zeros(a.shape[0], dtype=bool)
    ok = np.isfinite(t1)
    # Witness p = centre + t_mid * dir: violates row `first` by speed * (t_mid - t1) and
    # satisfies every other row (all crossings after t2 > t_mid).
    t_mid = np.where(np.isfinite(t2), 0.5 * (t1 + t2), t1 + 1.0)
    excess = speed[rows_k, first] * (t_mid - t1)
    ok &= excess > 10 * tol * (1 + np.abs(b[first]))
    if not ok.any():
        return certified
    p = centre[None, :] + t_mid[ok, None] * dirs[ok]
    viol = p @ a.T - b[None, :]
    viol[np.arange(p.shape[0]), first[ok]] = -np.inf
    good = (viol <= 0).all(axis=1)
    certified[first[ok][good]] = True
    return certified


def _chain_order(a: FloatArray, rows: IntArray) -> IntArray:
    """Order rows so that consecutive normals are close (greedy nearest neighbour).

    Consecutive support LPs then differ little in their right-hand side, and the dual simplex
    needs fewer pivots from the previous basis.
    """
    if rows.size <= 2:
        return rows
    g = a[rows] @ a[rows].T
    used = np.zeros(rows.size, dtype=bool)
    order = [0]
    used[0] = True
    for _ in range(rows.size - 1):
        nxt = int(np.argmax(np.where(used, -np.inf, g[order[-1]])))
        order.append(nxt)
        used[nxt] = True
    return rows[np.array(order)]


def _settle_rows(model: SupportLP, rows: IntArray, tol: float) -> IntArray:
    """Exact LP test of ``rows`` against the model's other rows; returns the redundant ones.

    Row ``k``'s offset is raised to ``b_k + CAP * tol`` and ``h(a_k)`` computed: an optimum
    within ``tol`` of ``b_k`` means redundant (the row is then dropped from the model, so that
    of two equal rows in one chunk only one goes). Rows of other chunks stay in this model,
    which is harmless: redundant rows do not change the polytope, and exact duplicates were
    merged before.
    """
    a, b = model.a, model.b
    redundant: list[int] = []
    for k in (int(v) for v in _chain_order(a, rows)):
        bk = b[k]
        model.set_offset(k, bk + CAP * tol * (1 + abs(bk)))
        value = model.support(a[k])
        model.set_offset(k, bk)
        if value <= bk + tol * (1 + abs(bk)):
            redundant.append(k)
            model.drop(k)
    return np.array(redundant, dtype=np.int64)


def irredundant_rows(
    A: ArrayLike,
    b: ArrayLike,
    *,
    tol: float = REDUNDANCY_TOL,
    random_state: int = 0,
    workers: int | None = None,
) -> tuple[IntArray, ReductionStats, tuple[FloatArray, FloatArray], Ball]:
    """Indices of an irredundant subset of rows describing the same polytope.

    Returns ``(keep, stats, (lo, hi), ball)``: the kept row indices in increasing order,
    counts of how rows were decided, the bounding box and the Chebyshev ball of ``P``
    (both computed on the way). Raises :class:`EmptyPolytopeError` if ``P`` is empty.
    ``workers`` threads share the LP tests (default: up to 4 cores when at least
    ``PARALLEL_MIN_ROWS`` rows need an LP, else 1).
    """
    a, bb, norms = normalize(A, b)
    m, n = a.shape
    zero = norms == 0
    if (bb[zero] < -tol).any():
        raise EmptyPolytopeError("polytope is empty (a zero row has a negative offset)")
    live = np.flatnonzero(~zero)
    ball = chebyshev_ball(a[live], bb[live])  # raises EmptyPolytopeError
    # One support-LP model serves the bounding box and then the row tests: its basis stays
    # warm. Model row r is live[r].
    model = SupportLP(a[live], bb[live])
    lo, hi, bbox_lps = _bounding_box(a[live], bb[live], check_empty=False, model=model)

    # 2. rows that cannot bind inside the bounding box.
    bmax = _box_max(a[live], lo, hi)
    margin = 10 * tol * (1 + np.abs(bb[live]))
    box_red = bmax < bb[live] - margin
    cand = live[~box_red]

    # 3. parallel duplicates: same normalised row, keep the smallest offset (first index).
    key = np.round(a[cand], 12)
    order = np.lexsort((cand, bb[cand], *key.T[::-1]))
    sk = key[order]
    same_as_prev = np.zeros(cand.size, dtype=bool)
    if cand.size > 1:
        same_as_prev[1:] = (sk[1:] == sk[:-1]).all(axis=1)
    dup_mask = np.zeros(cand.size, dtype=bool)
    dup_mask[order[same_as_prev]] = True
    cand = cand[~dup_mask]

    # 4. ray shooting from the Chebyshev centre (of P: the filtered rows changed nothing),
    # along the candidates' normals, plus random directions in low dimension (measured: in
    # 30 dimensions 1,024 random rays certified no facet that the normals missed).
    certified = np.zeros(cand.size, dtype=bool)
    if np.isfinite(ball.radius) and ball.radius > 10 * tol:
        rng = np.random.default_rng(random_state)
        n_random = 32 * n if n <= RANDOM_RAYS_MAX_DIM else 0
        dirs = np.vstack([a[cand], rng.standard_normal((n_random, n))])
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        certified = _ray_certify(a[cand], bb[cand], ball.centre, dirs, tol)

    # 5. one LP per undecided row. Reuse the warm box model (with the filtered rows dropped)
    # while most rows stay; when the filters removed most, a fresh model of the candidates
    # alone is smaller and faster. Large batches split across threads (HiGHS releases the
    # GIL while it solves), each thread with its own model.
    reuse = 2 * cand.size >= live.size
    if reuse:
        base = live
        pos = np.full(m, -1, dtype=np.int64)
        pos[live] = np.arange(live.size)
        gone = pos[np.setdiff1d(live, cand)]
        undecided = pos[cand[~certified]]
    else:
        base = cand
        gone = np.zeros(0, dtype=np.int64)
        undecided = np.flatnonzero(~certified)
    if workers is None:
        workers = min(os.cpu_count() or 1, 4) if undecided.size >= PARALLEL_MIN_ROWS else 1
    chunks = [c for c in np.array_split(undecided, max(1, workers)) if c.size]

    def settle(k: int) -> IntArray:
        mdl = model if (k == 0 and reuse) else SupportLP(a[base], bb[base])
        mdl.drop_many(gone)
        return _settle_rows(mdl, chunks[k], tol)

    if len(chunks) > 1:
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            found = list(pool.map(settle, range(len(chunks))))
    else:
        found = [settle(k) for k in range(len(chunks))]
    redundant = base[np.concatenate([np.zeros(0, np.int64), *found])]
    keep = np.setdiff1d(cand, redundant).astype(np.int64)
    lps = int(undecided.size)
    stats = ReductionStats(
        rows=m,
        zero=int(zero.sum()),
        box_filtered=int(box_red.sum()),
        duplicates=int(dup_mask.sum()),
        ray_certified=int(certified.sum()),
        lps=lps + bbox_lps + 1,
        lp_redundant=int(redundant.size),
        workers=len(chunks),
    )
    return keep, stats, (lo, hi), ball
