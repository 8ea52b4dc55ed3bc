"""Pre-activation bounds of a ReLU network over an input box, under a NAP.

Network (as in :class:`~relucid.ReluNetwork`, layers numbered from 0)::

    z_0 = W_0 x + b_0,   h_k = relu(z_k),   z_{k+1} = W_{k+1} h_k + b_{k+1},   y = z_{L-1}.

A NAP ``P`` (int8 over the hidden neurons in flat order; 1 active, 0 inactive, -1 free;
minimal-NAP paper, section 2.1) restricts the box ``X`` to the region

    R_P = {x in X : z_i(x) >= 0 for P_i = 1,  z_i(x) <= 0 for P_i = 0},

the closure of "x's activation pattern subsumes P". On ``R_P`` a fixed-active neuron outputs
``h_i = z_i`` and a fixed-inactive one ``h_i = 0``: the network *is* linear there, and the
bounds below are bounds of the true pre-activations over ``R_P``. Each bound function returns
:class:`Bounds`, per layer ``lower[k] <= z_k(x) <= upper[k]`` for every ``x`` in ``R_P``.
If a fixed neuron's bounds leave nothing of its side (``u < 0`` for an active one, ``l > 0``
for an inactive one, or more generally ``l > u`` after intersecting), ``R_P`` is empty and the
result says so (``empty``, and which neuron proved it).

* :func:`interval_bounds`: interval arithmetic (IBP), one layer at a time;
* :func:`symbolic_bounds`: linear bounds back-substituted to the input (CROWN, Zhang et al.
  2018; DeepPoly, Singh et al. 2019), intersected with the interval bounds;
* :func:`lp_tighten`: per-neuron LPs over the triangle relaxation (Ehlers 2017).

Floating point: every interval is widened by a bound on the rounding of the sums that made it
(``(n + 2) eps`` times the magnitude of the summed terms, per layer; Higham, *Accuracy and
Stability*, section 3.1), so the interval bounds hold for the exact real-valued network.
Symbolic bounds get a similar widening from the magnitude of their final sums; it covers the
rounding in practice but is not a proof, and LP bounds are widened by the solver tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse

from relucid.domain import Box
from relucid.errors import InputError, SolverError
from relucid.lp import LinearProgram, LPStatus
from relucid.network import ReluNetwork

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Int8Array = NDArray[np.int8]

Method = Literal["interval", "symbolic", "lp"]

_EPS = float(np.finfo(np.float64).eps)
#: Relative widening of LP optima: HiGHS's default primal/dual feasibility tolerance is 1e-7.
_LP_TOL = 1e-6
_SENSES: tuple[Literal["min", "max"], ...] = ("min", "max")


@dataclass(frozen=True, eq=False)
class Bounds:
    """Per-layer bounds ``lower[k] <= z_k(x) <= upper[k]`` over ``R_P`` (see module docs).

    Attributes
    ----------
    lower, upper : tuple of arrays, one per layer: the hidden layers, then the output
        (shape (n_k,) each). When ``empty``, every entry is ``+inf`` / ``-inf`` (the bounds
        of the empty set).
    method : which function computed them.
    empty : True iff the bounds prove that no input of the box obeys the NAP.
    empty_neuron : flat hidden index of the neuron whose bounds crossed, when ``empty``
        (None when no single neuron did: crossed output bounds, an infeasible LP).
    stable_active, stable_inactive : bool arrays over the hidden neurons: ``lower >= 0``
        (relu is the identity on ``R_P``) and ``upper <= 0`` (relu is zero). Fixed NAP
        neurons are always stable on their side; a neuron with ``l = u = 0`` is both.
    """

    lower: tuple[FloatArray, ...]
    upper: tuple[FloatArray, ...]
    method: Method
    empty: bool = False
    empty_neuron: int | None = None

    def __post_init__(self) -> None:
        for name in ("lower", "upper"):
            parts = tuple(np.array(a, dtype=np.float64) for a in getattr(self, name))
            for a in parts:
                a.setflags(write=False)
            object.__setattr__(self, name, parts)

    @property
    def hidden_lower(self) -> FloatArray:
        """Lower bounds of every hidden neuron, flat order, shape (num_hidden,)."""
        return _flat(self.lower[:-1])

    @property
    def hidden_upper(self) -> FloatArray:
        return _flat(self.upper[:-1])

    @property
    def output_lower(self) -> FloatArray:
        return self.lower[-1]

    @property
    def output_upper(self) -> FloatArray:
        return self.upper[-1]

    @property
    def stable_active(self) -> BoolArray:
        return np.asarray(self.hidden_lower >= 0.0)

    @property
    def stable_inactive(self) -> BoolArray:
        return np.asarray(self.hidden_upper <= 0.0)

    @property
    def unstable(self) -> BoolArray:
        """Hidden neurons whose state the bounds leave open (``l < 0 < u``)."""
        return ~(self.stable_active | self.stable_inactive)

    @property
    def num_stable(self) -> int:
        return int(self.unstable.size - self.unstable.sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "empty": self.empty,
            "empty_neuron": self.empty_neuron,
            "num_hidden": int(self.unstable.size),
            "num_stable": self.num_stable,
            "num_stable_active": int(self.stable_active.sum()),
            "num_stable_inactive": int(self.stable_inactive.sum()),
            "lower": [a.tolist() for a in self.lower],
            "upper": [a.tolist() for a in self.upper],
        }

    def __str__(self) -> str:
        if self.empty:
            return f"{self.method} bounds: EMPTY (hidden neuron {self.empty_neuron})"
        return (
            f"{self.method} bounds: {self.num_stable}/{self.unstable.size} hidden neurons "
            f"stable, outputs in [{self.output_lower.min():.4g}, {self.output_upper.max():.4g}]"
        )


def _flat(parts: Sequence[FloatArray]) -> FloatArray:
    return np.concatenate(parts) if parts else np.zeros(0)


# -- inputs ---------------------------------------------------------------------------------
def _check(net: ReluNetwork, box: Box, nap: ArrayLike | None) -> list[Int8Array]:
    """The NAP split per hidden layer (all -1 when ``nap`` is None); validates the box."""
    if box.dim != net.input_dim:
        raise InputError(f"box has {box.dim} features, {net!r} has {net.input_dim} inputs")
    if not box.is_bounded:
        raise InputError("bounds need a bounded box (every side finite)")
    if nap is None:
        flat = np.full(net.num_hidden, -1, dtype=np.int8)
    else:
        raw = np.asarray(nap)
        if raw.shape != (net.num_hidden,):
            raise InputError(f"NAP has shape {raw.shape}; {net!r} has {net.num_hidden} hidden")
        if not np.isin(raw, (-1, 0, 1)).all():
            raise InputError("a NAP holds only 1 (active), 0 (inactive) and -1 (free)")
        flat = raw.astype(np.int8)
    offs = net.layer_offsets
    return [flat[offs[k] : offs[k + 1]] for k in range(len(offs) - 1)]


def _empty_result(net: ReluNetwork, method: Method, neuron: int | None) -> Bounds:
    sizes = [*net.hidden_sizes, net.output_dim]
    return Bounds(
        tuple(np.full(s, np.inf) for s in sizes),
        tuple(np.full(s, -np.inf) for s in sizes),
        method,
        empty=True,
        empty_neuron=neuron,
    )


def _clip(lo: FloatArray, hi: FloatArray, p: Int8Array | None) -> int | None:
    """Apply the NAP's sides in place (``l >= 0`` active, ``u <= 0`` inactive).

    Returns the index within the layer of the first neuron with ``l > u`` (then ``R_P`` is
    empty), or None.
    """
    if p is not None:
        np.maximum(lo, 0.0, out=lo, where=p == 1)
        np.minimum(hi, 0.0, out=hi, where=p == 0)
    crossed = np.flatnonzero(lo > hi)
    return int(crossed[0]) if crossed.size else None


def _post(lo: FloatArray, hi: FloatArray, p: Int8Array) -> tuple[FloatArray, FloatArray]:
    """Bounds of ``h = relu(z)`` on ``R_P``: ``z`` for fixed active, 0 for fixed inactive."""
    h_lo = np.where(p == 1, lo, np.maximum(lo, 0.0))
    h_hi = np.where(p == 1, hi, np.maximum(hi, 0.0))
    h_lo[p == 0] = 0.0
    h_hi[p == 0] = 0.0
    return h_lo, h_hi


def interval_step(
    w: FloatArray, b: FloatArray, lo: FloatArray, hi: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """``W [lo, hi] + b`` in interval arithmetic, widened by its rounding error bound."""
    mid, rad = (hi + lo) / 2.0, (hi - lo) / 2.0
    centre = w @ mid + b
    spread = np.abs(w) @ rad
    # |fl(s) - s| <= gamma_{n+2} * sum |terms|; the centre/radius split adds two roundings.
    mag = np.abs(w) @ np.maximum(np.abs(lo), np.abs(hi)) + np.abs(b)
    pad = 2.0 * (w.shape[1] + 4) * _EPS * mag
    return centre - spread - pad, centre + spread + pad


# -- interval bounds ----------------------------------------------------------------------------
def interval_bounds(net: ReluNetwork, box: Box, nap: ArrayLike | None = None) -> Bounds:
    r"""Interval bound propagation (IBP) under a NAP.

    For each layer, with ``[l_h, u_h]`` the bounds of the previous layer's outputs,

    .. math:: z \in [W^+ l_h + W^- u_h + b,\; W^+ u_h + W^- l_h + b],

    then the NAP clips ``l = max(l, 0)`` for fixed-active and ``u = min(u, 0)`` for
    fixed-inactive neurons, and ``h`` gets ``[l, u]`` (fixed active), ``[0, 0]`` (fixed
    inactive) or ``[relu(l), relu(u)]`` (free).

    Parameters
    ----------
    net : the network.
    box : bounded input box, dimension ``net.input_dim``.
    nap : int8 array (num_hidden,), or None for no NAP (all free).

    Returns
    -------
    Bounds
        ``method="interval"``; ``empty`` when some neuron's clipped interval is empty.
    """
    naps = _check(net, box, nap)
    lo, hi = box.lo.astype(np.float64), box.hi.astype(np.float64)
    lowers: list[FloatArray] = []
    uppers: list[FloatArray] = []
    offs = net.layer_offsets
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        z_lo, z_hi = interval_step(w, b, lo, hi)
        if k < len(naps):
            bad = _clip(z_lo, z_hi, naps[k])
            if bad is not None:
                return _empty_result(net, "interval", offs[k] + bad)
            lo, hi = _post(z_lo, z_hi, naps[k])
        lowers.append(z_lo)
        uppers.append(z_hi)
    return Bounds(tuple(lowers), tuple(uppers), "interval")


# -- symbolic bounds ----------------------------------------------------------------------------
def _relaxation(
    lo: FloatArray, hi: FloatArray, p: Int8Array
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Linear bounds ``a_l z <= h <= a_u z + c_u`` of ``h`` on ``R_P``, per neuron.

    Exact (``a_l = a_u``, ``c_u = 0``) for fixed and stable neurons; for a free unstable one
    (``l < 0 < u``) the upper chord ``h <= u (z - l) / (u - l)`` and the lower line
    ``h >= a z`` with ``a = 1`` if ``u >= -l`` else ``0`` (the smaller-area choice, CROWN).
    """
    active = (p == 1) | ((p == -1) & (lo >= 0.0))
    inactive = ~active & ((p == 0) | (hi <= 0.0))
    unstable = ~(active | inactive)
    a_u = active.astype(np.float64)
    c_u = np.zeros_like(lo)
    a_l = a_u.copy()
    if unstable.any():
        lu, hu = lo[unstable], hi[unstable]
        slope = hu / (hu - lu)
        a_u[unstable] = slope
        c_u[unstable] = -slope * lu
        a_l[unstable] = (hu >= -lu).astype(np.float64)
    return a_u, c_u, a_l


def _backsub_upper(
    net: ReluNetwork,
    k: int,
    rows: FloatArray | None,
    relax: Sequence[tuple[FloatArray, FloatArray, FloatArray]],
    box: Box,
) -> FloatArray:
    r"""Upper bounds of ``rows @ z_k`` over the relaxation, back-substituted to the input.

    ``rows=None`` stands for ``[I; -I]`` (upper bounds of ``z_k``, then of ``-z_k``).

    With ``Lambda`` the coefficients on ``h_j``, each step uses the upper relaxation where
    ``Lambda >= 0`` and the lower one where ``Lambda < 0``:

    .. math:: \Lambda h_j \le (\Lambda^+ \mathrm{diag}(a_u) + \Lambda^- \mathrm{diag}(a_l)) z_j
              + \Lambda^+ c_u,

    then ``z_j = W_j h_{j-1} + b_j``; at the input the box gives
    ``max Lambda x = Lambda centre + |Lambda| radius``.
    """
    w, b = net.weights[k], net.biases[k]
    if rows is None:  # [I; -I]: upper and lower bounds of z_k itself
        lam, const = np.vstack([w, -w]), np.concatenate([b, -b])
    else:
        lam, const = rows @ w, rows @ b
    mag_const = np.abs(const)
    for j in range(k - 1, -1, -1):
        a_u, c_u, a_l = relax[j]
        pos = np.maximum(lam, 0.0)
        lam_z = pos * a_u + np.minimum(lam, 0.0) * a_l
        const = const + pos @ c_u + lam_z @ net.biases[j]
        mag_const = mag_const + pos @ np.abs(c_u) + np.abs(lam_z) @ np.abs(net.biases[j])
        lam = lam_z @ net.weights[j]
    centre, radius = (box.hi + box.lo) / 2.0, (box.hi - box.lo) / 2.0
    upper = lam @ centre + np.abs(lam) @ radius + const
    # Widening for rounding: the depth-weighted width of the sums times their magnitude.
    terms = net.input_dim + sum(w.shape[0] for w in net.weights[:k]) + 4 * (k + 1)
    mag = np.abs(lam) @ np.maximum(np.abs(box.lo), np.abs(box.hi)) + mag_const
    return np.asarray(upper + 4.0 * terms * _EPS * mag)


def symbolic_bounds(
    net: ReluNetwork, box: Box, nap: ArrayLike | None = None, *, start: Bounds | None = None
) -> Bounds:
    r"""Linear (CROWN / DeepPoly) bounds back-substituted to the input box, under a NAP.

    Layer by layer, the bounds of ``z_k = W_k h_{k-1} + b_k`` come from replacing each earlier
    ``h_j`` by its linear relaxation (:func:`_relaxation`: fixed-active neurons ``h = z``,
    fixed-inactive ``h = 0``, stable ones exact, unstable free ones between ``a_l z`` and
    the chord) and maximising / minimising the resulting affine function of ``x`` over the
    box. Each layer's bounds are then intersected with one interval step from the previous
    layer's final bounds and with the interval bounds, and clipped by the NAP, so they are
    never looser than :func:`interval_bounds`. Cost: one pass of matrix products per layer
    back to the input, ``O(sum_k n_k * sum_{j<k} n_j n_{j-1})``.

    Parameters
    ----------
    net, box, nap : as in :func:`interval_bounds`.
    start : bounds to intersect with (e.g. from :func:`lp_tighten`); interval bounds by
        default.

    Returns
    -------
    Bounds
        ``method="symbolic"``.
    """
    naps = _check(net, box, nap)
    base = start if start is not None else interval_bounds(net, box, nap)
    if base.empty:
        return _empty_result(net, "symbolic", base.empty_neuron)
    offs = net.layer_offsets
    lowers: list[FloatArray] = []
    uppers: list[FloatArray] = []
    relax: list[tuple[FloatArray, FloatArray, FloatArray]] = []
    h_lo, h_hi = box.lo.astype(np.float64), box.hi.astype(np.float64)
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        i_lo, i_hi = interval_step(w, b, h_lo, h_hi)
        lo = np.maximum(i_lo, base.lower[k])
        hi = np.minimum(i_hi, base.upper[k])
        if k > 0:
            both = _backsub_upper(net, k, None, relax, box)
            n_k = w.shape[0]
            lo = np.maximum(lo, -both[n_k:])
            hi = np.minimum(hi, both[:n_k])
        if k < len(naps):
            bad = _clip(lo, hi, naps[k])
            if bad is not None:
                return _empty_result(net, "symbolic", offs[k] + bad)
            relax.append(_relaxation(lo, hi, naps[k]))
            h_lo, h_hi = _post(lo, hi, naps[k])
        elif (lo > hi).any():
            # Crossed output bounds are possible only when R_P is empty; no neuron to blame.
            return _empty_result(net, "symbolic", None)
        lowers.append(lo)
        uppers.append(hi)
    return Bounds(tuple(lowers), tuple(uppers), "symbolic")


def output_bounds(
    net: ReluNetwork, box: Box, C: ArrayLike, bounds: Bounds, nap: ArrayLike | None = None
) -> tuple[FloatArray, FloatArray]:
    """Bounds of ``C y`` over ``R_P`` by back-substitution from the outputs.

    Tighter than combining the output intervals, since ``C W_{L-1}`` is substituted before
    relaxing: the usual way to bound a margin ``y_c - y_j``. ``bounds`` supplies the hidden
    layers' bounds (any method, same box and NAP); returns ``(lower, upper)`` of shape (r,).
    """
    naps = _check(net, box, nap)
    c = np.atleast_2d(np.asarray(C, dtype=np.float64))
    if c.shape[1] != net.output_dim:
        raise InputError(f"C has {c.shape[1]} columns, {net!r} has {net.output_dim} outputs")
    if bounds.empty:
        return np.full(c.shape[0], np.inf), np.full(c.shape[0], -np.inf)
    relax = [
        _relaxation(lo.copy(), hi.copy(), p)
        for lo, hi, p in zip(bounds.lower[:-1], bounds.upper[:-1], naps, strict=True)
    ]
    both = _backsub_upper(net, len(net.weights) - 1, np.vstack([c, -c]), relax, box)
    # The output intervals give a second, cruder bound; keep the better one.
    ol, ou = bounds.output_lower, bounds.output_upper
    cp, cn = np.maximum(c, 0.0), np.minimum(c, 0.0)
    r = c.shape[0]
    return np.maximum(-both[r:], cp @ ol + cn @ ou), np.minimum(both[:r], cp @ ou + cn @ ol)


# -- LP tightening ------------------------------------------------------------------------------
def _layer_lp(
    net: ReluNetwork,
    box: Box,
    naps: Sequence[Int8Array],
    lowers: Sequence[FloatArray],
    uppers: Sequence[FloatArray],
    k: int,
    time_limit: float | None,
) -> tuple[LinearProgram, int]:
    r"""The triangle relaxation of layers ``0..k`` as one LP; returns it and ``z_k``'s column.

    Columns ``[x, z_0, h_0, ..., z_{k-1}, h_{k-1}, z_k]`` with ``x`` in the box and
    ``l_j <= z_j <= u_j`` (the NAP's sides are already in these bounds). Rows:
    ``z_j - W_j h_{j-1} = b_j``; ``h = z`` for neurons known active, ``h = 0`` (a column
    bound) for neurons known inactive, and for unstable ones ``h >= 0``, ``h >= z`` and the
    chord ``h - s z <= -s l`` with ``s = u / (u - l)``.
    """
    n = net.input_dim
    sizes = net.hidden_sizes
    z_col: list[int] = []
    h_col: list[int] = []
    col = n
    for j in range(k + 1):
        z_col.append(col)
        col += sizes[j]
        if j < k:
            h_col.append(col)
            col += sizes[j]
    num = col
    lo_parts: list[FloatArray] = [box.lo]
    hi_parts: list[FloatArray] = [box.hi]
    rows: list[sparse.coo_array] = []
    row_lo: list[FloatArray] = []
    row_hi: list[FloatArray] = []

    def block(r: ArrayLike, c: ArrayLike, v: ArrayLike, m: int) -> sparse.coo_array:
        return sparse.coo_array((np.asarray(v, np.float64), (r, c)), shape=(m, num))

    for j in range(k + 1):
        m = sizes[j]
        w = net.weights[j]
        src = 0 if j == 0 else h_col[j - 1]
        wr, wc = np.nonzero(w)
        eye = np.arange(m)
        rows.append(
            block(np.r_[eye, wr], np.r_[z_col[j] + eye, src + wc], np.r_[np.ones(m), -w[wr, wc]], m)
        )
        row_lo.append(net.biases[j])
        row_hi.append(net.biases[j])
        lo_parts.append(lowers[j])
        hi_parts.append(uppers[j])
        if j == k:
            break
        l_j, u_j, p = lowers[j], uppers[j], naps[j]
        active = (p == 1) | ((p == -1) & (l_j >= 0.0))
        inactive = ~active & ((p == 0) | (u_j <= 0.0))
        unstable = ~(active | inactive)
        lo_parts.append(np.zeros(m))
        hi_parts.append(np.where(inactive, 0.0, np.inf))
        rows.append(
            block(
                np.r_[eye, eye],
                np.r_[h_col[j] + eye, z_col[j] + eye],
                np.r_[np.ones(m), -np.ones(m)],
                m,
            )
        )
        row_lo.append(np.where(inactive, -np.inf, 0.0))
        row_hi.append(np.where(active, 0.0, np.inf))
        idx = np.flatnonzero(unstable)
        if idx.size:
            slope = u_j[idx] / (u_j[idx] - l_j[idx])
            r = np.arange(idx.size)
            rows.append(
                block(
                    np.r_[r, r],
                    np.r_[h_col[j] + idx, z_col[j] + idx],
                    np.r_[np.ones(idx.size), -slope],
                    idx.size,
                )
            )
            row_lo.append(np.full(idx.size, -np.inf))
            row_hi.append(-slope * l_j[idx])
    lp = LinearProgram(
        sparse.vstack(rows, format="csr"),
        np.concatenate(row_hi),
        np.concatenate(row_lo),
        col_lo=np.concatenate(lo_parts),
        col_hi=np.concatenate(hi_parts),
        time_limit=time_limit,
    )
    # Only the objective changes between solves, so the basis stays primal feasible: the
    # primal simplex re-solves warm in a third to a half of the dual's iterations (ACAS Xu).
    lp.set_option("simplex_strategy", 4)
    return lp, z_col[k]


def lp_tighten(
    net: ReluNetwork,
    box: Box,
    nap: ArrayLike | None = None,
    bounds: Bounds | None = None,
    *,
    layers: Sequence[int] | None = None,
    time_limit: float | None = None,
) -> Bounds:
    r"""Tighten the unstable free neurons of some hidden layers by LP (triangle relaxation).

    For each hidden layer ``k`` in ``layers`` (in increasing order) one LP over the triangle
    relaxation of layers ``0..k`` (:func:`_layer_lp`) is built from the current bounds and
    re-solved, warm, for ``min z_i`` and ``max z_i`` of every free neuron with
    ``l_i < 0 < u_i``; each optimum is widened by ``1e-6 (1 + |v|)`` for the solver's
    tolerances. Afterwards the deeper layers are recomputed by :func:`symbolic_bounds`
    starting from the tightened ones. If an LP is infeasible, ``R_P`` is empty.

    Parameters
    ----------
    net, box, nap : as in :func:`interval_bounds`.
    bounds : the bounds to start from (default :func:`symbolic_bounds`).
    layers : hidden layer indices to tighten (default all).
    time_limit : seconds per LP solve; a neuron whose LP fails keeps its previous bounds.

    Returns
    -------
    Bounds
        ``method="lp"``, contained in ``bounds``.
    """
    naps = _check(net, box, nap)
    cur = bounds if bounds is not None else symbolic_bounds(net, box, nap)
    if cur.empty:
        return _empty_result(net, "lp", cur.empty_neuron)
    targets = sorted(set(range(len(naps)) if layers is None else layers))
    if any(not 0 <= k < len(naps) for k in targets):
        raise InputError(f"layers must be hidden layer indices 0..{len(naps) - 1}")
    offs = net.layer_offsets
    lowers = [a.copy() for a in cur.lower]
    uppers = [a.copy() for a in cur.upper]
    for k in targets:
        idx = np.flatnonzero((naps[k] == -1) & (lowers[k] < 0.0) & (uppers[k] > 0.0))
        if idx.size == 0 or (k == 0 and np.all(naps[0] == -1)):
            continue  # the first layer's bounds over a box are exact unless a NAP cuts it
        lp, z0 = _layer_lp(net, box, naps, lowers, uppers, k, time_limit)
        try:
            if not lp.feasible():
                return _empty_result(net, "lp", None)
        except SolverError:
            continue
        cost = np.zeros(lp.num_cols)
        for i in idx:
            cost[z0 + i] = 1.0
            for sense in _SENSES:
                lp.set_objective(cost, sense)
                try:
                    res = lp.solve(want_x=False)
                except SolverError:
                    continue
                if res.status is not LPStatus.OPTIMAL or res.objective is None:
                    continue
                v = res.objective
                pad = _LP_TOL * (1.0 + abs(v))
                if sense == "min":
                    lowers[k][i] = max(lowers[k][i], v - pad)
                else:
                    uppers[k][i] = min(uppers[k][i], v + pad)
            cost[z0 + i] = 0.0
        bad = _clip(lowers[k], uppers[k], naps[k])
        if bad is not None:
            return _empty_result(net, "lp", offs[k] + bad)
        start = Bounds(tuple(lowers), tuple(uppers), "lp")
        cur = symbolic_bounds(net, box, nap, start=start)
        if cur.empty:
            return _empty_result(net, "lp", cur.empty_neuron)
        lowers = [a.copy() for a in cur.lower]
        uppers = [a.copy() for a in cur.upper]
    return Bounds(tuple(lowers), tuple(uppers), "lp")
