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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse

from relucid.domain import Box
from relucid.errors import InputError
from relucid.lp import LinearProgram, LPStatus
from relucid.network import ReluNetwork

FloatArray = NDArray[np.float64]
Int8Array = NDArray[np.int8]


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
    """

    def __init__(
        self,
        net: ReluNetwork,
        box: Box,
        bounds: Sequence[tuple[ArrayLike, ArrayLike]],
        *,
        time_limit: float | None = None,
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
        col_lo[self.x_cols], col_hi[self.x_cols] = lo, hi
        for k in range(len(sizes)):
            col_lo[self.z_cols[k]], col_hi[self.z_cols[k]] = ls[k], us[k]
            col_lo[self.h_cols[k]], col_hi[self.h_cols[k]] = 0.0, np.maximum(us[k], 0.0)
            col_lo[self.d_cols[k]], col_hi[self.d_cols[k]] = 0.0, 1.0
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
        for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
            out = self.z_cols[k] if k < len(sizes) else self.y_cols
            s_out = w.shape[0]
            r = nrows + np.arange(s_out)
            # out - W prev = b
            block(r, out, np.ones(s_out))
            wi, wj = np.nonzero(w)
            block(r[wi], prev[wj], -w[wi, wj])
            row_lo.append(b.astype(np.float64))
            row_hi.append(b.astype(np.float64))
            nrows += s_out
            if k == len(sizes):
                break
            z, h, d = self.z_cols[k], self.h_cols[k], self.d_cols[k]
            lk, uk = np.minimum(ls[k], 0.0), np.maximum(us[k], 0.0)
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
            integer=integer,
            time_limit=time_limit,
        )
        self.lp.set_option("mip_rel_gap", 0.0)
        self.lp.set_option("mip_abs_gap", 1e-9)
        self._d_all = integer
        self.nap: Int8Array = np.full(net.num_hidden, -1, dtype=np.int8)

    def set_nap(self, nap: ArrayLike | None) -> None:
        """Fix neurons: 1 active (``d = 1``), 0 inactive (``d = 0``), -1 free (``d`` binary).

        Only the binaries' bounds change; the built model is kept (freeing a neuron loosens
        its binary's bounds).
        """
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

    def maximize(self, c_y: ArrayLike, c_x: ArrayLike | None = None) -> MILPResult:
        """``max c_y . y + c_x . x`` over inputs in the box that obey the current NAP.

        INFEASIBLE means no input of the box obeys the NAP. The maximiser is returned so
        the caller can replay it through a plain forward pass.
        """
        cost = np.zeros(self.lp.num_cols)
        cost[self.y_cols] = np.asarray(c_y, dtype=np.float64)
        if c_x is not None:
            cost[self.x_cols] = np.asarray(c_x, dtype=np.float64)
        self.lp.set_objective(cost, "max")
        res = self.lp.solve()
        if res.status is not LPStatus.OPTIMAL or res.x is None:
            return MILPResult(res.status, None, None)
        x = np.clip(res.x[self.x_cols], self.box.lo, self.box.hi)
        return MILPResult(LPStatus.OPTIMAL, res.objective, x)
