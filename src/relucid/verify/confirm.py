"""Turning a solver's answer into a checked one: replay, repair, retry; deadlines.

Shared by the whole-box MILP search (:mod:`relucid.verify.engine`) and the input-splitting
search (:mod:`relucid.verify.split`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from relucid.domain import Box
from relucid.errors import SolverError
from relucid.lp import LinearProgram, LPStatus
from relucid.network import ReluNetwork
from relucid.pattern import local_affine
from relucid.verify.bounds import Bounds
from relucid.verify.milp import NetworkMILP

FloatArray = NDArray[np.float64]
Int8Array = NDArray[np.int8]
BoolArray = NDArray[np.bool_]


class SearchTimeout(Exception):
    """The query's deadline passed (the verifier answers UNKNOWN, "timeout")."""


def time_left(deadline: float | None) -> float | None:
    """Seconds to the deadline (None: no deadline); :class:`SearchTimeout` once past it."""
    if deadline is None:
        return None
    left = deadline - time.perf_counter()
    if left <= 0:
        raise SearchTimeout
    return left


def effective_nap(nap: Int8Array, bounds: Bounds) -> Int8Array:
    """``nap`` with the free neurons that ``bounds`` prove stable fixed to their state. A
    neuron with ``l = u = 0`` is fixed inactive: ``z > 0`` holds nowhere on the region (the
    MILP's closed sides treat both states alike there; a strict one does not)."""
    eff = nap.copy()
    eff[(nap == -1) & bounds.stable_inactive] = 0
    eff[(nap == -1) & bounds.stable_active & ~bounds.stable_inactive] = 1
    return eff


def confirm_milp(
    model: NetworkMILP,
    c_y: FloatArray | None,
    check: Callable[[FloatArray], bool],
    repair: Callable[[BoolArray], FloatArray | None],
    deadline: float | None,
    stats: dict[str, float],
    passes: tuple[bool, ...] = (False, True),
) -> tuple[str, FloatArray | None]:
    """One MILP search: ``("infeasible", None)``, ``("confirmed", x)`` or
    ``("unconfirmed", None)``. ``passes`` says which solves may run, in order: the default
    integrality tolerance (False) and the 1000x tighter one (True).

    HiGHS's tolerances only ever enlarge the set it searches (a binary within 1e-6 of
    an integer lets ``h`` leave ``relu(z)`` by 1e-6 times the big-M constant), so
    "infeasible" is trusted, but a point it returns may lie just outside the true set.
    Such a point is replayed (``check``), then repaired (an LP on its activation
    pattern), then searched again once with a 1000x tighter integrality tolerance.
    """
    h = model.lp.highs
    for tight in passes:
        if tight:
            h.setOptionValue("mip_feasibility_tolerance", 1e-9)
        try:
            found = model.find(c_y, time_left(deadline))
        finally:
            if tight and not model.abandoned:
                h.setOptionValue("mip_feasibility_tolerance", 1e-6)
        stats["milp_nodes"] = stats.get("milp_nodes", 0) + found.nodes
        stats["milp_solves"] = stats.get("milp_solves", 0) + 1
        if found.status == "timeout":
            raise SearchTimeout
        if found.status == "error":
            raise SolverError(f"HiGHS stopped with {found.detail}")
        if found.status == "infeasible":
            return "infeasible", None
        assert found.solution is not None
        x, pattern = model.point(found.solution)
        if check(x):
            return "confirmed", x
        stats["repairs"] = stats.get("repairs", 0) + 1
        fixed = repair(pattern)
        if fixed is not None and check(fixed):
            return "confirmed", fixed
    return "unconfirmed", None


def repair_point(
    net: ReluNetwork,
    box: Box,
    a_mat: FloatArray,
    b_vec: FloatArray,
    pattern: BoolArray,
    c: FloatArray,
    d: FloatArray,
) -> FloatArray | None:
    """A point strictly inside ``pattern``'s region and ``C y <= d``, if the LP finds one.

    Maximises a common slack ``s <= 1`` of every pattern side (``z_i >= s`` for active,
    ``z_i <= -s`` for inactive neurons), every unsafe row (``C y <= d - s``) and every
    half-space, over the box. On the pattern's region the network is the affine map of
    :func:`~relucid.pattern.local_affine`, so this is one LP.
    """
    aff = local_affine(net, pattern)
    sgn = np.where(pattern, 1.0, -1.0)
    n = net.input_dim
    # Rows over (x, s): -sgn*(M x + c) + s <= 0 ; C (L x + d0) + s <= d ; A x + s|A| <= b.
    rows = [np.hstack([-sgn[:, None] * aff.M, np.ones((aff.M.shape[0], 1))])]
    rhs = [sgn * aff.c]
    if c.shape[0]:
        rows.append(np.hstack([c @ aff.L, np.ones((c.shape[0], 1))]))
        rhs.append(d - c @ aff.d)
    if b_vec.size:
        norms = np.linalg.norm(a_mat, axis=1, keepdims=True)
        rows.append(np.hstack([a_mat, norms]))
        rhs.append(b_vec)
    lp = LinearProgram(
        np.vstack(rows),
        np.concatenate(rhs),
        col_lo=np.append(box.lo, -np.inf),
        col_hi=np.append(box.hi, 1.0),
    )
    cost = np.zeros(n + 1)
    cost[-1] = 1.0
    try:
        res = lp.maximize(cost)
    except SolverError:
        return None
    if res.status is not LPStatus.OPTIMAL or res.x is None or res.x[-1] < 0:
        return None
    return np.clip(res.x[:n], box.lo, box.hi)
