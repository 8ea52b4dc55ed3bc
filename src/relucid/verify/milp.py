"""A mixed-integer encoding of a ReLU network, built once and re-solved under many NAPs.

Variables, in column order: the input ``x`` (in the box ``[lo, hi]``), then per hidden layer
``k`` the pre-activations ``z_k`` (in ``[l_k, u_k]``), the post-activations ``h_k`` (in
``[0, max(u_k, 0)]``) and binaries ``d_k``, then the logits ``y``. Rows:

* ``z_k = W_k h_{k-1} + b_k`` (``h_0 = x``) and ``y = W_L h_{L-1} + b_L``;
* per hidden neuron the exact big-M form of ``h = max(z, 0)`` (Tjeng et al.):
  ``h >= z``, ``h <= u d``, ``h <= z - l (1 - d)``.

With ``d = 1`` the rows force ``h = z`` (hence ``z >= 0``); with ``d = 0`` they force ``h = 0``
(hence ``z <= 0``). So a neural activation pattern (NAP: 1 active, 0 inactive, -1 free per
hidden neuron) is imposed by the *bounds* of the binaries alone, and one built model serves
every query that differs only in which neurons are fixed (the verifier issue's engine, item
3). The big-M constants ``l, u`` must be valid bounds on ``z`` over the box under the
coarsest NAP the model will see; tighter bounds make the relaxation (and HiGHS) faster.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import highspy
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse

from relucid.domain import Box
from relucid.errors import InputError, SolverError
from relucid.lp import LinearProgram, LPStatus, set_time_limit
from relucid.network import ReluNetwork
from relucid.verify.bounds import interval_step
from relucid.verify.dual import LpSnapshot

if TYPE_CHECKING:
    from relucid.verify.relaxation import NetworkLP

FloatArray = NDArray[np.float64]
Int8Array = NDArray[np.int8]

#: Weights below this in size are left out of a layer's rows, which then hold the range
#: they can add (a sound enlargement): HiGHS's MIP solver called one WBC query infeasible
#: because of weights of 1e-9 to 1e-8, though a training input satisfies every row.
_TINY_WEIGHT = 1e-7
#: The smallest nonzero big-M constant (see :func:`_big_m`).
_BIG_M_FLOOR = 1e-6
#: Seconds a solve may run past its deadline before it is abandoned.
_GRACE = 0.25
#: Abandoned solver threads; joined at exit (each stops at HiGHS's next callback, since its
#: deadline has passed), because a C++ solve still running at interpreter exit aborts it.
_ABANDONED: list[threading.Thread] = []


@atexit.register
def _join_abandoned() -> None:
    for thread in _ABANDONED:
        thread.join()


@dataclass(frozen=True)
class MILPResult:
    """One solve: ``value`` and the maximiser ``x`` are set only when a solution exists."""

    status: LPStatus
    value: float | None
    x: FloatArray | None


class NetworkMILP:
    """The network over ``box`` as a MILP (see the module notes).

    Parameters
    ----------
    net : ReluNetwork
    box : Box
        The input domain (finite).
    bounds : sequence of (l_k, u_k)
        Valid bounds on every hidden layer's pre-activations over ``box`` (for the coarsest
        NAP to be queried), e.g. from interval or symbolic bound propagation.
    time_limit : seconds per solve, or None.
    relaxed : build the LP relaxation instead (every binary continuous in [0, 1]); see
        :meth:`relaxation` and :class:`~relucid.verify.relaxation.NetworkLP`, which adds
        its proved lower bounds.
    unit_inputs : the input columns hold ``u = (x - lo) / (hi - lo)`` in ``[0, 1]`` instead of
        ``x`` (the first layer's weights scaled, its bias shifted). Raw features whose
        ranges differ by orders of magnitude (WBC: 0.05 to 4,254) make HiGHS misjudge
        feasibility: on one WBC query its dual simplex called the relaxation infeasible
        although a training input satisfies every row to 1e-9. Points come back as ``x``;
        ``A x <= b`` rows and ``c_x`` objectives are given over ``x`` as before.
    """

    def __init__(
        self,
        net: ReluNetwork,
        box: Box,
        bounds: Sequence[tuple[ArrayLike, ArrayLike]],
        *,
        time_limit: float | None = None,
        relaxed: bool = False,
        unit_inputs: bool = False,
    ) -> None:
        sizes = net.hidden_sizes
        if len(bounds) != len(sizes):
            raise InputError(f"bounds for {len(bounds)} layers; the network has {len(sizes)}")
        lo, hi = np.asarray(box.lo, np.float64), np.asarray(box.hi, np.float64)
        if lo.shape != (net.input_dim,) or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise InputError("the MILP needs a finite box over the network's inputs")
        ls = [np.asarray(b[0], np.float64) for b in bounds]
        us = [np.asarray(b[1], np.float64) for b in bounds]
        for k, (l_k, u_k) in enumerate(zip(ls, us, strict=True)):
            if l_k.shape != (sizes[k],) or u_k.shape != (sizes[k],):
                raise InputError(f"bounds of layer {k} have the wrong shape")
            if not (np.isfinite(l_k).all() and np.isfinite(u_k).all()) or (l_k > u_k).any():
                raise InputError(f"bounds of layer {k} must be finite with l <= u")
        self.net, self.box = net, box
        self.lower, self.upper = ls, us
        # x = x_lo + x_w * (input column); the identity unless unit_inputs
        self.unit_inputs = unit_inputs
        self.x_lo = lo.copy() if unit_inputs else np.zeros_like(lo)
        self.x_w = np.where(hi > lo, hi - lo, 1.0) if unit_inputs else np.ones_like(lo)
        n, m = net.input_dim, net.output_dim
        # Column layout.
        self.x_cols = np.arange(n)
        start = n
        self.z_cols, self.h_cols, self.d_cols = [], [], []
        for s in sizes:
            self.z_cols.append(np.arange(start, start + s))
            self.h_cols.append(np.arange(start + s, start + 2 * s))
            self.d_cols.append(np.arange(start + 2 * s, start + 3 * s))
            start += 3 * s
        self.y_cols = np.arange(start, start + m)
        ncols = start + m
        col_lo = np.full(ncols, -np.inf)
        col_hi = np.full(ncols, np.inf)
        col_lo[self.x_cols] = (lo - self.x_lo) / self.x_w
        col_hi[self.x_cols] = (hi - self.x_lo) / self.x_w
        if unit_inputs:
            col_lo[self.x_cols], col_hi[self.x_cols] = 0.0, np.where(hi > lo, 1.0, 0.0)
        for k in range(len(sizes)):
            col_lo[self.z_cols[k]], col_hi[self.z_cols[k]] = ls[k], us[k]
            col_lo[self.h_cols[k]], col_hi[self.h_cols[k]] = 0.0, np.maximum(us[k], 0.0)
            col_lo[self.d_cols[k]], col_hi[self.d_cols[k]] = 0.0, 1.0
        if relaxed:  # the dual bound needs finite columns; the MILP is left as it was
            col_lo[self.y_cols], col_hi[self.y_cols] = _logit_bounds(
                net, us[-1] if us else None, lo, hi
            )
        # Rows as sparse triplets, layer by layer (vectorised).
        ri: list[NDArray[np.int64]] = []
        ci: list[NDArray[np.int64]] = []
        vals: list[FloatArray] = []
        row_lo: list[FloatArray] = []
        row_hi: list[FloatArray] = []
        nrows = 0

        def block(rows: NDArray[np.int64], cols: NDArray[np.int64], v: FloatArray) -> None:
            ri.append(rows)
            ci.append(cols)
            vals.append(v)

        prev = self.x_cols
        self._r2: list[NDArray[np.int64]] = []
        self._r3: list[NDArray[np.int64]] = []
        # per layer: its affine rows, their bias, and the tiny weights left out of them
        self._r0: list[NDArray[np.int64]] = []
        self._bias: list[FloatArray] = []
        self._tiny: dict[int, tuple[NDArray[np.int64], NDArray[np.int64], FloatArray]] = {}
        for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
            if k == 0:  # over the input columns: W (x_lo + x_w u) + b
                w, b = w * self.x_w[None, :], b + w @ self.x_lo
            out = self.z_cols[k] if k < len(sizes) else self.y_cols
            s_out = w.shape[0]
            r = nrows + np.arange(s_out)
            tiny = (w != 0.0) & (np.abs(w) < _TINY_WEIGHT)
            if tiny.any():
                ti, tj = np.nonzero(tiny)
                self._tiny[k] = (ti, tj, w[ti, tj].copy())
                w = np.where(tiny, 0.0, w)
            # out - W prev = b, or within the tiny weights' range when some are left out
            block(r, out, np.ones(s_out))
            wi, wj = np.nonzero(w)
            block(r[wi], prev[wj], -w[wi, wj])
            p_lo, p_hi = col_lo[prev], col_hi[prev]
            t_lo, t_hi = self._tiny_range(k, s_out, p_lo, p_hi)
            row_lo.append(b.astype(np.float64) + t_lo)
            row_hi.append(b.astype(np.float64) + t_hi)
            self._r0.append(r)
            self._bias.append(b.astype(np.float64))
            nrows += s_out
            if k == len(sizes):
                break
            z, h, d = self.z_cols[k], self.h_cols[k], self.d_cols[k]
            lk, uk = _big_m(ls[k], us[k])
            one = np.ones(s_out)
            r1, r2, r3 = (nrows + np.arange(s_out) + t * s_out for t in range(3))
            block(r1, h, one)  # h - z >= 0
            block(r1, z, -one)
            block(r2, h, one)  # h - u d <= 0
            block(r2, d, -uk)
            block(r3, h, one)  # h - z - l d <= -l
            block(r3, z, -one)
            block(r3, d, -lk)
            row_lo += [np.zeros(s_out), np.full(s_out, -np.inf), np.full(s_out, -np.inf)]
            row_hi += [np.full(s_out, np.inf), np.zeros(s_out), -lk]
            self._r2.append(r2)
            self._r3.append(r3)
            nrows += 3 * s_out
            prev = h
        matrix = sparse.csr_array(
            (np.concatenate(vals), (np.concatenate(ri), np.concatenate(ci))),
            shape=(nrows, ncols),
        )
        integer = np.concatenate(self.d_cols) if self.d_cols else np.zeros(0, np.int64)
        self.lp = LinearProgram(
            matrix,
            np.concatenate(row_hi),
            np.concatenate(row_lo),
            col_lo=col_lo,
            col_hi=col_hi,
            integer=np.zeros(0, np.int64) if relaxed else integer,
            time_limit=time_limit,
        )
        self.relaxed = relaxed
        self._relaxation: NetworkLP | None = None
        # A relaxation's model as HiGHS holds it, for its proved bounds
        # (:class:`~relucid.verify.relaxation.NetworkLP`); dropped on any change.
        self._snapshot: LpSnapshot | None = None
        #: Queries served (set by the caller), to judge whether a warm relaxation pays.
        self.uses = 0
        self.lp.set_option("mip_rel_gap", 0.0)
        self.lp.set_option("mip_abs_gap", 1e-9)
        # Most searches end infeasible (a proof), where primal heuristics are wasted work
        # (MNIST 256x4 NAP queries: 7.0 s -> 3.8 s); the PGD attack looks for points first.
        self.lp.set_option("mip_heuristic_effort", 0.0)
        for name in ("feasibility_jump", "rins", "rens", "root_reduced_cost"):
            self.lp.set_option(f"mip_heuristic_run_{name}", False)
        # Symmetry detection costs most of the set-up on wide models and finds nothing to
        # use in a network (MNIST 256x4 NAP query: 0.8 s -> 0.25 s per output term).
        self.lp.set_option("mip_detect_symmetry", False)
        self._d_all = integer
        self.nap: Int8Array = np.full(net.num_hidden, -1, dtype=np.int8)
        # Extra rows (input half-spaces, output conditions), added on first use and switched
        # off by infinite bounds when a query does not need them.
        self._extra: dict[bytes, int] = {}
        self._active: set[int] = set()
        self._wanted: dict[int, float] = {}
        # HiGHS checks its own time_limit too rarely on large models (a 13 s allowance
        # once ran 35 s), so every solver loop also asks this callback, which interrupts
        # at the deadline. The flag is set on every call, since HiGHS keeps it sticky.
        self._deadline = float("inf")
        self.abandoned = False
        highs = self.lp.highs
        highs.cbSimplexInterrupt += self._interrupt
        highs.cbIpmInterrupt += self._interrupt
        highs.cbMipInterrupt += self._interrupt

    def _tiny_range(
        self, k: int, size: int, p_lo: FloatArray, p_hi: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """The range of layer ``k``'s left-out tiny weights times their inputs (in
        ``[p_lo, p_hi]``), per row; zeros when none were left out."""
        lo, hi = np.zeros(size), np.zeros(size)
        if k in self._tiny:
            ti, tj, tv = self._tiny[k]
            a, b = tv * p_lo[tj], tv * p_hi[tj]
            np.add.at(lo, ti, np.minimum(a, b))
            np.add.at(hi, ti, np.maximum(a, b))
            # outward by the rounding of the sums (a few ulps of the largest term)
            pad = 1e-12 * (1.0 + np.maximum(np.abs(lo), np.abs(hi)))
            lo, hi = lo - pad, hi + pad
        return lo, hi

    def set_nap(self, nap: ArrayLike | None) -> None:
        """Fix neurons: 1 active (``d = 1``), 0 inactive (``d = 0``), -1 free (``d`` binary).

        Only the binaries' bounds change; the built model is kept (freeing a neuron loosens
        its binary's bounds).
        """
        self._snapshot = None
        arr = (
            np.full(self.net.num_hidden, -1, dtype=np.int8)
            if nap is None
            else np.asarray(nap, dtype=np.int8).reshape(-1)
        )
        if arr.shape != (self.net.num_hidden,) or not np.isin(arr, (-1, 0, 1)).all():
            raise InputError(
                f"a NAP is an int8 array of {self.net.num_hidden} values in {{-1, 0, 1}}"
            )
        lo = np.where(arr == 1, 1.0, 0.0)
        hi = np.where(arr == 0, 0.0, 1.0)
        self.lp.set_cols_bounds(self._d_all, lo, hi)
        self.nap = arr
        if self._relaxation is not None:
            self._relaxation.set_nap(arr)

    def maximize(self, c_y: ArrayLike, c_x: ArrayLike | None = None) -> MILPResult:
        """``max c_y . y + c_x . x`` over inputs in the box that obey the current NAP.

        INFEASIBLE means no input of the box obeys the NAP. The maximiser is returned so
        the caller can replay it through a plain forward pass.
        """
        cost = np.zeros(self.lp.num_cols)
        cost[self.y_cols] = np.asarray(c_y, dtype=np.float64)
        offset = 0.0
        if c_x is not None:
            cx = np.asarray(c_x, dtype=np.float64)
            cost[self.x_cols] = cx * self.x_w
            offset = float(cx @ self.x_lo)
        self.lp.set_objective(cost, "max")
        res = self.lp.solve()
        if res.status is not LPStatus.OPTIMAL or res.x is None or res.objective is None:
            return MILPResult(res.status, None, None)
        return MILPResult(LPStatus.OPTIMAL, res.objective + offset, self._x_of(res.x))

    def _x_of(self, sol: FloatArray) -> FloatArray:
        """The input ``x`` of a solution vector (clipped to the box)."""
        return np.clip(self.x_lo + self.x_w * sol[self.x_cols], self.box.lo, self.box.hi)

    def input_columns(self, x: FloatArray) -> FloatArray:
        """The input columns' values at input ``x`` (the inverse of the mapping back)."""
        return (np.asarray(x, dtype=np.float64) - self.x_lo) / self.x_w

    def rows_on_inputs(self, a: FloatArray, rhs: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Rows ``a x <= rhs`` over the input as rows over the input columns:
        ``a (x_lo + x_w u) <= rhs``."""
        return a * self.x_w[None, :], rhs - a @ self.x_lo

    # -- re-use across queries -------------------------------------------------------------
    def set_bounds(self, bounds: Sequence[tuple[ArrayLike, ArrayLike]]) -> None:
        """Replace the pre-activation bounds (and with them the big-M constants).

        Valid for every later query whose NAP the bounds were computed under (or a finer
        one): tighter big-M rows make the relaxation, and so HiGHS, much faster. Only
        bounds and coefficients change; the model is kept.
        """
        self._snapshot = None
        if self._relaxation is not None:
            self._relaxation.set_bounds(bounds)
        h = self.lp.highs
        for k, (lb, ub) in enumerate(bounds):
            l_k = np.asarray(lb, dtype=np.float64)
            u_k = np.asarray(ub, dtype=np.float64)
            if l_k.shape != self.lower[k].shape or u_k.shape != self.upper[k].shape:
                raise InputError(f"bounds of layer {k} have the wrong shape")
            if not (np.isfinite(l_k).all() and np.isfinite(u_k).all()):
                raise InputError(f"bounds of layer {k} must be finite")
            l_k = np.minimum(l_k, u_k)
            self.lower[k], self.upper[k] = l_k, u_k
            lk, uk = _big_m(l_k, u_k)
            self.lp.set_cols_bounds(self.z_cols[k], l_k, u_k)
            self.lp.set_cols_bounds(self.h_cols[k], 0.0, np.maximum(u_k, 0.0))
            if k + 1 in self._tiny:  # the next layer's rows hold the tiny weights' range
                t_lo, t_hi = self._tiny_range(
                    k + 1, self._bias[k + 1].size, np.zeros_like(u_k), np.maximum(u_k, 0.0)
                )
                self.lp.set_rows_bounds(
                    self._r0[k + 1], self._bias[k + 1] + t_lo, self._bias[k + 1] + t_hi
                )
            self.lp.set_rows_bounds(self._r3[k], -np.inf, -lk)
            for r2, r3, d, a, c in zip(
                self._r2[k].tolist(),
                self._r3[k].tolist(),
                self.d_cols[k].tolist(),
                (-uk).tolist(),
                (-lk).tolist(),
                strict=True,
            ):
                h.changeCoeff(r2, d, a)
                h.changeCoeff(r3, d, c)
        if self.relaxed and self.upper:
            y_lo, y_hi = _logit_bounds(self.net, self.upper[-1], self.box.lo, self.box.hi)
            self.lp.set_cols_bounds(self.y_cols, y_lo, y_hi)

    def set_extra_rows(
        self,
        x_rows: tuple[ArrayLike, ArrayLike] | None = None,
        y_rows: tuple[ArrayLike, ArrayLike] | None = None,
    ) -> None:
        """Impose ``A x <= b`` and ``C y <= d`` for the next solves (None: none).

        Each distinct row is added once and kept; rows not named here are switched off.
        The relaxation (:meth:`relaxation`) gets the ``A x <= b`` rows only.
        """
        if self._relaxation is not None:
            self._relaxation.set_extra_rows(x_rows=x_rows)
        wanted: dict[int, float] = {}
        added = False
        for cols, rows in ((self.x_cols, x_rows), (self.y_cols, y_rows)):
            if rows is None:
                continue
            a = np.atleast_2d(np.asarray(rows[0], dtype=np.float64))
            rhs = np.asarray(rows[1], dtype=np.float64).reshape(-1)
            if a.shape != (rhs.size, cols.size):
                raise InputError(f"extra rows have shape {a.shape}, expected (k, {cols.size})")
            if cols is self.x_cols:
                a, rhs = self.rows_on_inputs(a, rhs)
            for coef, r in zip(a, rhs, strict=True):
                key = cols[:1].tobytes() + coef.tobytes()
                idx = self._extra.get(key)
                if idx is None:
                    full = np.zeros((1, self.lp.num_cols))
                    full[0, cols] = coef
                    idx = self.lp.num_rows
                    self.lp.add_rows(full, [np.inf])
                    self._extra[key] = idx
                    added = True
                wanted[idx] = min(float(r), wanted.get(idx, float(np.inf)))
        if added or wanted != self._wanted:
            self._snapshot = None
        self._wanted = wanted
        for idx in self._active - wanted.keys():
            self.lp.set_row_bounds(idx, -np.inf, np.inf)
        for idx, rhs_i in wanted.items():
            self.lp.set_row_bounds(idx, -np.inf, rhs_i)
        self._active = set(wanted)

    def find(self, c_y: ArrayLike | None, time_limit: float | None) -> MILPSearch:
        """Look for any feasible point (stopping at the first), guided by ``min c_y . y``.

        Returns the outcome without raising on a time limit: ``status`` is ``"feasible"``
        (with ``x``), ``"infeasible"``, ``"timeout"`` or ``"error"`` (HiGHS's words in
        ``detail``).
        """
        h = self.lp.highs
        cost = np.zeros(self.lp.num_cols)
        if c_y is not None:
            cost[self.y_cols] = np.asarray(c_y, dtype=np.float64)
        self.lp.set_objective(cost, "min")
        h.setOptionValue("mip_max_improving_sols", 1)
        if time_limit is not None:
            set_time_limit(h, max(time_limit, 1e-3), mip=True)
            self._deadline = time.perf_counter() + max(time_limit, 1e-3)
        else:
            h.setOptionValue("time_limit", np.inf)
            self._deadline = float("inf")
        if self.abandoned:
            raise SolverError("this model was abandoned mid-solve at a deadline; build another")
        if time_limit is None:
            h.run()
        else:
            # HiGHS calls no callback in parts of its set-up (probing, clique tables), which
            # once ran 9 s past a deadline. The solve runs in a thread (highspy releases the
            # GIL); if it is still busy a grace period after the deadline, it is abandoned:
            # the caller gets "timeout" on time and this model is not used again.
            done = threading.Event()

            def work() -> None:
                try:
                    h.run()
                finally:
                    done.set()

            thread = threading.Thread(target=work, daemon=True)
            thread.start()
            if not done.wait(max(time_limit, 1e-3) + _GRACE):
                self.abandoned = True
                _ABANDONED.append(thread)
                return MILPSearch("timeout", None, 0, "abandoned at the deadline")
        self._deadline = float("inf")
        ms = highspy.HighsModelStatus
        status = h.getModelStatus()
        info = h.getInfo()
        nodes = int(info.mip_node_count)
        has_point = info.primal_solution_status == 2  # kSolutionStatusFeasible
        if has_point and status != ms.kInfeasible:
            x = np.array(h.getSolution().col_value, dtype=np.float64)
            return MILPSearch("feasible", x, nodes, "")
        if status == ms.kInfeasible:
            return MILPSearch("infeasible", None, nodes, "")
        if status in (ms.kTimeLimit, ms.kInterrupt):
            return MILPSearch("timeout", None, nodes, "")
        return MILPSearch("error", None, nodes, h.modelStatusToString(status))

    # -- the LP relaxation, kept warm -------------------------------------------------------
    def relaxation(self) -> NetworkLP:
        """This model's LP relaxation (built on first call), kept in step with it.

        Every later :meth:`set_bounds`, :meth:`set_nap` and input-row change is applied to
        both, so the relaxation's simplex basis stays warm from query to query: on
        mnist-net_256x4 a NAP query's output term is settled by a warm LP in 15-20 ms
        against 0.2-0.3 s for the MILP (whose presolve starts from scratch each time),
        while the relaxation's first, cold solve costs about 2 s.
        """
        if self.relaxed:
            raise InputError("this model is a relaxation already")
        if self._relaxation is None:
            from relucid.verify.relaxation import NetworkLP

            pairs = list(zip(self.lower, self.upper, strict=True))
            relax = NetworkLP(self.net, self.box, pairs, unit_inputs=self.unit_inputs)
            relax.set_nap(self.nap)
            self._relaxation = relax
        return self._relaxation

    def _interrupt(self, event: Any) -> None:
        event.interrupt(time.perf_counter() > self._deadline)

    def point(self, sol: FloatArray) -> tuple[FloatArray, NDArray[np.bool_]]:
        """The input and the activation pattern (binaries rounded) of a MILP solution."""
        x = self._x_of(sol)
        return x, sol[self._d_all] > 0.5


def _big_m(lower: FloatArray, upper: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The big-M constants ``min(l, 0)`` and ``max(u, 0)``, pushed out to at least
    ``_BIG_M_FLOOR`` in size where nonzero. Looser constants stay valid; tiny ones (a
    neuron whose bound is 1e-9 from zero) are coefficients HiGHS drops below 1e-9 or
    mis-scales: on one WBC query its dual simplex called a feasible relaxation infeasible."""
    lk = np.where(lower < 0.0, np.minimum(lower, -_BIG_M_FLOOR), 0.0)
    uk = np.where(upper > 0.0, np.maximum(upper, _BIG_M_FLOOR), 0.0)
    return lk, uk


def _logit_bounds(
    net: ReluNetwork, u_last: FloatArray | None, lo: FloatArray, hi: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Interval bounds on the logits from the last hidden layer's upper bounds (or, with no
    hidden layer, from the box): finite column bounds for the logits, which the dual bound
    of :meth:`LpSnapshot.dual_bound` needs."""
    if u_last is None:
        return interval_step(net.weights[-1], net.biases[-1], lo, hi)
    return interval_step(
        net.weights[-1], net.biases[-1], np.zeros_like(u_last), np.maximum(u_last, 0.0)
    )


@dataclass(frozen=True)
class MILPSearch:
    """Outcome of :meth:`NetworkMILP.find`."""

    status: str
    solution: FloatArray | None
    nodes: int
    detail: str
