"""Branch and bound over the input box, for properties of low-dimensional networks.

ReluVal / Neurify style: bounds tighten fast as the box shrinks, so halving it along its most
influential input settles most pieces without a solver; the MILP takes only pieces with few
unstable neurons. Soundness rests on the same replayed, repaired MILP search as the
whole-box path (:func:`~relucid.verify.confirm.confirm_milp`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from relucid.domain import Box
from relucid.network import ReluNetwork
from relucid.pattern import local_affine
from relucid.verify.bounds import Bounds, output_bounds, symbolic_bounds
from relucid.verify.confirm import confirm_milp, effective_nap, repair_point, time_left
from relucid.verify.milp import NetworkMILP
from relucid.verify.outcome import SearchOutcome
from relucid.verify.query import Status

FloatArray = NDArray[np.float64]
Int8Array = NDArray[np.int8]
BoolArray = NDArray[np.bool_]


def split_search(
    net: ReluNetwork,
    box: Box,
    cs: list[FloatArray],
    ds: list[FloatArray],
    terms: list[int],
    nap: Int8Array,
    a_mat: FloatArray,
    b_vec: FloatArray,
    replay: Callable[[FloatArray, int], bool],
    obeys: Callable[[FloatArray], BoolArray] | None,
    deadline: float | None,
    stats: dict[str, float],
    *,
    safety: float,
    split_leaf_unstable: int,
    split_max_depth: int,
    split_input_depth: int,
) -> tuple[SearchOutcome, bool]:
    """Branch and bound over the input box (ReluVal / Neurify style), MILP at the leaves.

    A piece is done when its bounds rule out every term (or show that no input of it
    obeys the NAP); its centre is replayed as a cheap counterexample probe; a piece
    with at most ``split_leaf_unstable`` unstable free neurons (or at the depth limit)
    is decided by the MILP over that piece; any other piece is halved along the input
    with the largest influence ``|d(C y)/dx_i| * width_i`` at its centre.

    Returns the outcome (VERIFIED meaning every term is impossible) and whether some
    piece's centre was seen to obey the NAP (checked with ``obeys`` when given).
    """
    # Each piece carries its parent's bounds: they hold on the piece too (a sub-box, or a
    # finer NAP), so they seed the piece's bounds (no interval pass) and can only tighten
    # them.
    stack: list[tuple[Box, int, list[int], Int8Array, Bounds | None]] = [(box, 0, terms, nap, None)]
    x_rows = (a_mat, b_vec) if b_vec.size else None
    pieces = leaves = 0
    member = False
    while stack:
        time_left(deadline)
        piece, depth, open_terms, pnap, parent = stack.pop()
        pieces += 1
        stats["pieces"] = pieces
        stats["max_depth"] = max(stats.get("max_depth", 0), depth)
        bounds = symbolic_bounds(net, piece, pnap, start=parent)
        if bounds.empty:
            continue
        still = []
        for i in open_terms:
            lower, _ = output_bounds(net, piece, cs[i], bounds, pnap)
            if not np.any(lower > ds[i]):
                still.append(i)
        if not still:
            continue
        mid = 0.5 * (piece.lo + piece.hi)
        for i in still:
            if replay(mid, i):
                stats["pieces"] = pieces
                return SearchOutcome(Status.FALSIFIED, "split (centre)", mid, i, stats), True
        if obeys is not None and not member:
            member = bool(obeys(mid[None, :]).any())
        free_unstable = bounds.unstable & (pnap == -1)
        unstable = int(free_unstable.sum())
        if unstable <= split_leaf_unstable or depth >= split_max_depth:
            leaves += 1
            pairs = list(zip(bounds.lower[:-1], bounds.upper[:-1], strict=True))
            model = NetworkMILP(net, piece, pairs)
            model.set_nap(effective_nap(pnap, bounds))
            for i in still:
                c, d = cs[i], ds[i]
                delta = safety * (1.0 + np.abs(d))
                model.set_extra_rows(x_rows=x_rows, y_rows=(c, d + delta))
                verdict, x = confirm_milp(
                    model,
                    c.sum(axis=0),
                    lambda p, i=i: replay(p, i),  # type: ignore[misc]
                    lambda pattern, c=c, d=d, pc=piece: repair_point(  # type: ignore[misc]
                        net, pc, a_mat, b_vec, pattern, c, d
                    ),
                    deadline,
                    stats,
                )
                if verdict == "confirmed":
                    stats.update(pieces=pieces, leaves=leaves)
                    return SearchOutcome(Status.FALSIFIED, "split + milp", x, i, stats), True
                if verdict == "unconfirmed":
                    stats.update(pieces=pieces, leaves=leaves)
                    return SearchOutcome(
                        Status.UNKNOWN,
                        "the MILP found a point at the unsafe set's boundary that the "
                        "forward pass does not confirm",
                        stats=stats,
                    ), member
            continue
        if depth >= split_input_depth:
            # Deep in a tight corner, halving the box helps little: split a neuron
            # instead (both phases as finer NAPs), the one whose triangle relaxation is
            # loosest, -l u / (u - l).
            lo_n, hi_n = bounds.hidden_lower, bounds.hidden_upper
            gap = np.where(free_unstable, -lo_n * hi_n / np.maximum(hi_n - lo_n, 1e-12), -1)
            j = int(np.argmax(gap))
            for phase in (0, 1):
                child = pnap.copy()
                child[j] = phase
                stack.append((piece, depth + 1, still, child, bounds))
            continue
        pattern = np.concatenate(net.pre_activations(mid[None, :]), axis=1)[0] > 0
        aff = local_affine(net, pattern)
        grad = np.abs(np.vstack([cs[i] for i in still]) @ aff.L).sum(axis=0)
        width = piece.hi - piece.lo
        score = (grad + 1e-12) * width
        k = int(np.argmax(score))
        lo_hi = piece.hi.copy()
        lo_hi[k] = mid[k]
        hi_lo = piece.lo.copy()
        hi_lo[k] = mid[k]
        stack.append((Box(hi_lo, piece.hi), depth + 1, still, pnap, bounds))
        stack.append((Box(piece.lo, lo_hi), depth + 1, still, pnap, bounds))
    stats.update(pieces=pieces, leaves=leaves)
    return SearchOutcome(Status.VERIFIED, "split", stats=stats), member
