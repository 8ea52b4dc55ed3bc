"""One thin layer over HiGHS (``highspy``) for every LP and MILP relucid solves.

A :class:`LinearProgram` is built once from dense rows

    minimise / maximise  c^T x   subject to  row_lo <= A x <= row_hi,  col_lo <= x <= col_hi,

(optionally with integer columns) and then re-solved many times with new objectives, row or
column bounds. HiGHS keeps its basis between solves, so the re-solves are warm-started: this
reuse is where redundancy removal, bounding boxes and marching get their speed.

Any outcome other than optimal, infeasible or unbounded (time limit, numerical trouble, an
unexpected status) raises :class:`~relucid.errors.SolverError`; time limits raise its subclass
:class:`SolverTimeout`. A result is never made up from a solver that gave up.
"""

from __future__ import annotations

import enum
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import highspy
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse

from relucid.errors import SolverError

FloatArray = NDArray[np.float64]
INF = highspy.kHighsInf


_BANNER_LOCK = threading.Lock()
_BANNER_DONE = False


def new_highs() -> highspy.Highs:
    """A HiGHS instance with its output off.

    The first ``highspy.Highs()`` of a process prints HiGHS's banner to stdout from C++
    while it is built (highspy 1.16 sets its callbacks before any option can be), which
    broke ``relucid ... --json`` output on MNIST. That one construction runs with the stdout
    file descriptor pointed at stderr, so the banner still shows, on stderr.
    """
    global _BANNER_DONE
    with _BANNER_LOCK:
        if _BANNER_DONE:
            h = highspy.Highs()
        else:
            try:
                sys.stdout.flush()
                saved = os.dup(1)
            except (OSError, ValueError):  # no usable stdout: nothing to protect
                saved = -1
            try:
                if saved >= 0:
                    os.dup2(2, 1)
                h = highspy.Highs()
            finally:
                if saved >= 0:
                    os.dup2(saved, 1)
                    os.close(saved)
            _BANNER_DONE = True
    h.setOptionValue("output_flag", False)
    return h


_VERDICTS = (
    highspy.HighsModelStatus.kOptimal,
    highspy.HighsModelStatus.kInfeasible,
    highspy.HighsModelStatus.kUnbounded,
)


class SolverTimeout(SolverError):
    """HiGHS stopped at its time limit before proving anything."""


class LPStatus(enum.Enum):
    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"


@dataclass(frozen=True)
class LPResult:
    """Outcome of one solve: ``x`` and ``objective`` are set only when OPTIMAL."""

    status: LPStatus
    x: FloatArray | None
    objective: float | None

    @property
    def optimal(self) -> bool:
        return self.status is LPStatus.OPTIMAL


def set_time_limit(h: highspy.Highs, seconds: float, *, mip: bool) -> None:
    """Give the next ``h.run()`` ``seconds`` of its own.

    highspy 1.16 keeps two rules. The simplex compares ``time_limit`` with the run time
    summed over every run of the model (``getRunTime()``), so an LP run gets that sum plus
    its allowance. The MIP solver measures the limit from the start of its own run, so a
    MILP run gets the allowance alone: the sum there let every later solve of a re-used
    model run longer (why-not MILPs at a 0.9 s budget took 1.3-2.1 s). ``tests/test_lp.py``
    checks both rules on the installed version.
    """
    base = 0.0 if mip else h.getRunTime()
    h.setOptionValue("time_limit", base + float(seconds))


def _finite_or_inf(v: ArrayLike | None, n: int, default: float) -> FloatArray:
    a = np.full(n, default, dtype=np.float64) if v is None else np.asarray(v, dtype=np.float64)
    a = np.broadcast_to(a, (n,)).astype(np.float64)
    return np.clip(a, -INF, INF)


class LinearProgram:
    """An LP/MILP over HiGHS, built once and re-solved.

    Parameters
    ----------
    A : array (m, n) or scipy sparse matrix
        Constraint rows (HiGHS receives only the non-zeros).
    row_hi, row_lo : arrays (m,)
        ``row_lo <= A x <= row_hi``; ``row_lo`` defaults to ``-inf``.
    col_lo, col_hi : arrays (n,)
        Variable bounds, default free.
    integer : indices of integer columns (a MILP), default none.
    time_limit : seconds per solve, or None for no limit.
    presolve : HiGHS presolve; off by default, since small re-solved LPs lose more to it
        than they gain and a warm basis survives only without it.
    cold_start_ipm : solve the first LP with the interior-point method (plus crossover, so a
        basis remains for the warm simplex re-solves after it). Worth it for large cold
        LPs: a 784-input MNIST region's Chebyshev LP took 20 s by simplex, 1 s by IPM.
    stall_iterations : a warm re-solve that needs more simplex iterations than this starts
        again from scratch (without the cap). Warm dual simplex runs can stall: one MNIST
        redundancy LP ran for minutes from its warm basis and took 0.5 s cold.
    """

    def __init__(
        self,
        A: ArrayLike,
        row_hi: ArrayLike,
        row_lo: ArrayLike | None = None,
        *,
        col_lo: ArrayLike | None = None,
        col_hi: ArrayLike | None = None,
        integer: Sequence[int] | NDArray[np.integer] = (),
        time_limit: float | None = None,
        presolve: bool = False,
        cold_start_ipm: bool = False,
        stall_iterations: int | None = None,
    ) -> None:
        if sparse.issparse(A):
            csr = sparse.csr_array(A, dtype=np.float64)
            csr.eliminate_zeros()
        else:
            a = np.asarray(A, dtype=np.float64)
            if a.ndim != 2:
                raise ValueError(f"A must be 2-D, got shape {a.shape}")
            csr = sparse.csr_array(a)
        m, n = csr.shape
        self.num_rows, self.num_cols = m, n
        self._h = new_highs()
        h = self._h
        h.setOptionValue("presolve", "on" if presolve else "off")
        if time_limit is not None and time_limit <= 0:
            raise ValueError("time_limit must be positive")
        self._time_limit = time_limit
        self._stall = stall_iterations
        self._capped = False
        lp = highspy.HighsLp()
        lp.num_col_ = n
        lp.num_row_ = m
        lp.col_cost_ = np.zeros(n)
        lp.col_lower_ = _finite_or_inf(col_lo, n, -INF)
        lp.col_upper_ = _finite_or_inf(col_hi, n, INF)
        lp.row_lower_ = _finite_or_inf(row_lo, m, -INF)
        lp.row_upper_ = _finite_or_inf(row_hi, m, INF)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.num_col_ = n
        lp.a_matrix_.num_row_ = m
        lp.a_matrix_.start_ = csr.indptr.astype(np.int32)
        lp.a_matrix_.index_ = csr.indices.astype(np.int32)
        lp.a_matrix_.value_ = csr.data
        integer_idx = np.asarray(integer, dtype=np.int32).reshape(-1)
        if integer_idx.size:
            kinds = [highspy.HighsVarType.kContinuous] * n
            for j in integer_idx:
                kinds[int(j)] = highspy.HighsVarType.kInteger
            lp.integrality_ = kinds
        self.is_mip = bool(integer_idx.size)
        status = h.passModel(lp)
        if status == highspy.HighsStatus.kError:
            raise SolverError("HiGHS refused the model (passModel returned an error)")
        self._sense: Literal["min", "max"] = "min"
        self._strategy = 1  # HiGHS's default simplex strategy (dual)
        self._cold_ipm = cold_start_ipm and not self.is_mip
        self.solves = 0
        self.retries = 0
        self.solve_seconds = 0.0

    @property
    def highs(self) -> highspy.Highs:
        """The underlying HiGHS object, for MILP-specific calls (status, info, options)."""
        return self._h

    # -- changes -------------------------------------------------------------------------
    def set_objective(self, c: ArrayLike, sense: Literal["min", "max"] = "min") -> None:
        """Replace the objective by ``c^T x`` to be minimised or maximised."""
        cost = np.asarray(c, dtype=np.float64).reshape(-1)
        if cost.size != self.num_cols:
            raise ValueError(f"objective has {cost.size} entries for {self.num_cols} columns")
        self._h.changeColsCost(self.num_cols, np.arange(self.num_cols, dtype=np.int32), cost)
        if sense != self._sense:
            self._h.changeObjectiveSense(
                highspy.ObjSense.kMaximize if sense == "max" else highspy.ObjSense.kMinimize
            )
            self._sense = sense

    def set_row_bounds(self, i: int, lo: float, hi: float) -> None:
        self._h.changeRowBounds(int(i), max(float(lo), -INF), min(float(hi), INF))

    def set_rows_bounds(self, idx: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> None:
        """Change the bounds of rows ``idx`` (scalars broadcast; hot loops pass ready arrays,
        which are handed to HiGHS without copies)."""
        ii = np.asarray(idx, dtype=np.int32).reshape(-1)
        lo_a = np.ascontiguousarray(np.broadcast_to(np.asarray(lo, np.float64), ii.shape))
        hi_a = np.ascontiguousarray(np.broadcast_to(np.asarray(hi, np.float64), ii.shape))
        self._h.changeRowsBounds(ii.size, ii, lo_a, hi_a)  # type: ignore[attr-defined]

    def set_col_cost(self, j: int, value: float) -> None:
        """Change one objective coefficient."""
        self._h.changeColCost(int(j), float(value))

    def set_col_bounds(self, j: int, lo: float, hi: float) -> None:
        self._h.changeColBounds(int(j), max(float(lo), -INF), min(float(hi), INF))

    def set_cols_bounds(self, idx: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> None:
        jj = np.asarray(idx, dtype=np.int32).reshape(-1)
        lo_a = np.clip(np.broadcast_to(np.asarray(lo, np.float64), jj.shape), -INF, INF)
        hi_a = np.clip(np.broadcast_to(np.asarray(hi, np.float64), jj.shape), -INF, INF)
        self._h.changeColsBounds(jj.size, jj, lo_a.copy(), hi_a.copy())

    def add_rows(self, A: ArrayLike, row_hi: ArrayLike, row_lo: ArrayLike | None = None) -> None:
        """Append rows ``row_lo <= A x <= row_hi`` (they get the next row indices)."""
        a = np.atleast_2d(np.asarray(A, dtype=np.float64))
        k = a.shape[0]
        nz = a != 0.0
        starts = np.concatenate([[0], np.cumsum(nz.sum(axis=1))[:-1]]).astype(np.int32)
        self._h.addRows(
            k,
            _finite_or_inf(row_lo, k, -INF),
            _finite_or_inf(row_hi, k, INF),
            int(nz.sum()),
            starts,
            np.nonzero(nz)[1].astype(np.int32),
            a[nz],
        )
        self.num_rows += k

    def delete_cols(self, idx: ArrayLike) -> None:
        """Remove columns ``idx``; the later columns move down to fill the gaps.

        HiGHS keeps the current basis when the removed columns are nonbasic, and repairs it
        otherwise, so warm re-solves continue. Every re-solve pays for each stored
        non-zero, which is why a model sheds the columns it no longer needs.
        """
        jj = np.unique(np.asarray(idx, dtype=np.int32).reshape(-1))
        if jj.size:
            self._h.deleteCols(jj.size, jj)
            self.num_cols -= jj.size

    def get_basis(self) -> highspy.HighsBasis:
        """The current simplex basis (to warm-start a copy of this model)."""
        return self._h.getBasis()

    def set_basis(self, basis: highspy.HighsBasis) -> None:
        """Start the next solve from ``basis`` (taken from a model with the same shape)."""
        if self._h.setBasis(basis) == highspy.HighsStatus.kError:
            raise SolverError("HiGHS refused the basis")

    def set_option(self, name: str, value: float | int | str | bool) -> None:
        """Set a HiGHS option by name (see the HiGHS option list)."""
        status = self._h.setOptionValue(name, value)
        if status == highspy.HighsStatus.kError:
            raise ValueError(f"HiGHS rejected option {name}={value!r}")
        if name == "simplex_strategy":
            self._strategy = int(value)

    def set_time_limit(self, seconds: float | None) -> None:
        """Limit each later solve to ``seconds`` (None: no limit)."""
        if seconds is not None and seconds <= 0:
            raise ValueError("time_limit must be positive")
        self._time_limit = seconds

    # -- solving -------------------------------------------------------------------------
    def solve(self, want_x: bool = True) -> LPResult:
        """Solve from the current basis; raise :class:`SolverError` on anything but a verdict.

        ``want_x=False`` skips copying the solution out (hot loops that need only the value).
        """
        t0 = time.perf_counter()
        if self._cold_ipm and self.solves == 0:
            self._h.setOptionValue("solver", "ipm")
            run_status = self._run()
            self._h.setOptionValue("solver", "simplex")
        else:
            run_status = self._run(warm=self.solves > 0)
        self.solves += 1
        status = self._h.getModelStatus()
        ms = highspy.HighsModelStatus
        if status == ms.kUnboundedOrInfeasible:
            # Only presolve or the dual simplex can leave this ambiguous; settle it once with
            # the primal simplex from scratch.
            self._h.setOptionValue("presolve", "off")
            self._h.setOptionValue("simplex_strategy", 4)
            self._h.clearSolver()
            self._run()
            self._h.setOptionValue("simplex_strategy", self._strategy)
            status = self._h.getModelStatus()
        if status not in _VERDICTS and status != ms.kTimeLimit:
            # A warm basis can leave HiGHS stuck (status Unknown, a numerical failure, or a
            # stalled run that hit the warm iteration cap). Retry once from scratch before
            # reporting trouble.
            self.retries += 1
            self._h.clearSolver()
            run_status = self._run()
            status = self._h.getModelStatus()
            if status not in _VERDICTS and status != ms.kTimeLimit:
                # The dual simplex can fail from scratch too (seen on a Chebyshev LP with a
                # huge radius cap, which scipy's HiGHS and our primal simplex both solve).
                self._h.setOptionValue("simplex_strategy", 4)
                self._h.clearSolver()
                run_status = self._run()
                self._h.setOptionValue("simplex_strategy", self._strategy)
                status = self._h.getModelStatus()
        self.solve_seconds += time.perf_counter() - t0
        if status == ms.kOptimal:
            x = np.array(self._h.getSolution().col_value, dtype=np.float64) if want_x else None
            obj = float(self._h.getObjectiveValue())
            return LPResult(LPStatus.OPTIMAL, x, obj)
        if status == ms.kInfeasible:
            return LPResult(LPStatus.INFEASIBLE, None, None)
        if status == ms.kUnbounded:
            return LPResult(LPStatus.UNBOUNDED, None, None)
        name = self._h.modelStatusToString(status)
        if status == ms.kTimeLimit:
            raise SolverTimeout(f"HiGHS hit its time limit ({name})")
        raise SolverError(f"HiGHS could not solve the model: {name} (run status {run_status})")

    def _run(self, warm: bool = False) -> highspy.HighsStatus:
        cap = warm and self._stall is not None
        if cap or self._capped:
            limit = self._stall if cap and self._stall is not None else 2**31 - 1
            self._h.setOptionValue("simplex_iteration_limit", limit)
            self._capped = cap
        if self._time_limit is not None:
            set_time_limit(self._h, self._time_limit, mip=self.is_mip)
        return self._h.run()

    def row_duals(self) -> FloatArray:
        """Dual values of the rows at the last solve."""
        return np.array(self._h.getSolution().row_dual, dtype=np.float64)

    def maximize(self, c: ArrayLike) -> LPResult:
        self.set_objective(c, "max")
        return self.solve()

    def minimize(self, c: ArrayLike) -> LPResult:
        self.set_objective(c, "min")
        return self.solve()

    def feasible(self) -> bool:
        """Whether the current constraints admit a point (zero objective)."""
        self.set_objective(np.zeros(self.num_cols))
        return self.solve().status is not LPStatus.INFEASIBLE
