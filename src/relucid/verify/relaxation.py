"""The LP relaxation of a :class:`~relucid.verify.milp.NetworkMILP`, and bounds it proves.

:meth:`NetworkMILP.relaxation` builds it once and keeps it in step with the MILP (NAP, big-M
bounds, input rows), so its simplex basis stays warm from query to query. What it adds is
:meth:`NetworkLP.lower_bound`: a lower bound on a linear objective that does not trust
HiGHS's tolerances, recomputed by weak duality from the LP's row duals
(:meth:`~relucid.verify.dual.LpSnapshot.dual_bound`), or ``+inf`` when HiGHS's dual ray
proves the relaxation infeasible (:meth:`~relucid.verify.dual.LpSnapshot.farkas_proof`).
The verifier's terms (:func:`~relucid.verify.tightening.relaxed_margin`) and bound
tightening (:func:`~relucid.verify.tightening.warm_tighten`) use these bounds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.domain import Box
from relucid.errors import SolverError
from relucid.lp import LPStatus, SolverTimeout
from relucid.network import ReluNetwork
from relucid.verify.dual import LpSnapshot
from relucid.verify.milp import NetworkMILP

FloatArray = NDArray[np.float64]


class NetworkLP(NetworkMILP):
    """The network over ``box`` as the LP relaxation of its MILP (every binary continuous
    in [0, 1]), with proved lower bounds. Parameters as :class:`NetworkMILP`'s."""

    def __init__(
        self,
        net: ReluNetwork,
        box: Box,
        bounds: Sequence[tuple[ArrayLike, ArrayLike]],
        *,
        time_limit: float | None = None,
        unit_inputs: bool = False,
    ) -> None:
        super().__init__(
            net, box, bounds, time_limit=time_limit, relaxed=True, unit_inputs=unit_inputs
        )

    def lower_bound(self, c_y: ArrayLike, time_limit: float | None) -> float | None:
        """A proved lower bound on ``c_y . y`` over the relaxation.

        The bound does not trust HiGHS's tolerances: it is recomputed by weak duality from
        the LP's row duals (any multipliers give a valid bound; see
        :meth:`LpSnapshot.dual_bound`). ``+inf`` when the relaxation is infeasible and
        HiGHS's dual ray proves it (checked the same way, :meth:`LpSnapshot.farkas_proof`);
        None when the LP stops without an optimum or an unproved infeasibility (the caller
        falls back to the MILP); :class:`TimeoutError` past ``time_limit``.
        """
        cost = np.zeros(self.lp.num_cols)
        cost[self.y_cols] = np.asarray(c_y, dtype=np.float64)
        return self.lower_bound_of(cost, time_limit)

    def lower_bound_of(self, cost: FloatArray, time_limit: float | None) -> float | None:
        """:meth:`lower_bound` of ``cost . v`` over every column ``v`` of the relaxation."""
        self.lp.set_objective(cost, "min")
        self.lp.set_time_limit(None if time_limit is None else max(time_limit, 1e-3))
        self._deadline = (
            float("inf") if time_limit is None else time.perf_counter() + max(time_limit, 1e-3)
        )
        # After a change of bounds or NAP the old basis stays dual feasible: the dual
        # simplex. After a change of objective only (the next output term) it stays primal
        # feasible: the primal simplex takes a few pivots where the dual took up to 6,000
        # (mnist-256x4), while after a change of bounds the primal took seconds.
        # The first, cold solve runs without presolve, as every solve does. On 15 mnist-256x4
        # NAP queries, HiGHS's dual simplex on the presolved LP took 30-34 s on 3 (2 never
        # finished in 30 s) and 12.5 s on one more; without presolve each took 1.0-2.9 s
        # (benchmarks/lp_cold.py).
        self.lp.set_option("simplex_strategy", 1 if self._snapshot is None else 4)
        try:
            res = self.lp.solve(want_x=False)
        except SolverTimeout as exc:
            raise TimeoutError("the relaxation ran out of time") from exc
        except SolverError as exc:  # interrupted at the deadline, or numerical trouble
            if time.perf_counter() > self._deadline:
                raise TimeoutError("the relaxation ran out of time") from exc
            return None
        finally:
            self._deadline = float("inf")
        h = self.lp.highs
        if res.status is LPStatus.INFEASIBLE:
            if self._snapshot is None:
                self._snapshot = LpSnapshot.of(h)
            return np.inf if self._snapshot.farkas_proof(h) else None
        if res.status is not LPStatus.OPTIMAL:
            return None
        if self._snapshot is None:  # one copy of the model per query, not per term
            self._snapshot = LpSnapshot.of(h)
        duals = np.asarray(h.getSolution().row_dual, dtype=np.float64)
        return self._snapshot.dual_bound(cost, duals)
