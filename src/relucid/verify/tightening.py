"""Bound-tightening stages of the ``milp`` backend, between the quick bounds and the MILP.

* :func:`crown_terms`: optimised bounds (:class:`~relucid.verify.crown.CrownBounds`) settle
  output terms, all rows in one batched pass;
* :func:`crown_tighten`: the same bounds for the narrow hidden layers before the MILP,
  then another try at the open terms;
* :func:`relaxed_margin`: the warm LP relaxation's proved minimum of a term's rows;
* :func:`warm_tighten`: the unstable neurons of narrow layers tightened by the warm LP
  relaxation (two LPs each, bounds proved by weak duality), fed back into the MILP;
* :func:`term_tighten`: the same with one term's unsafe set as a constraint (optimisation-
  based bound tightening under the objective cut): bounds that hold only where the term is
  violated, which either empty that set (the term is settled) or shrink its MILP;
* :func:`fresh_relaxation` and :func:`class_margins`: the warm-LP stage of a lone NAP query
  on its own, outside the engine, for re-checks and diagnostics.

On mnist-net_256x4 under the delta = 0.99 NAP of label 1 (274 unstable neurons), the first
three settle all nine output terms in about 16 s, where the MILP alone took 59 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import numpy as np
from numpy.typing import NDArray

from relucid.domain import Box
from relucid.errors import EmptyPolytopeError
from relucid.network import ReluNetwork
from relucid.verify.bounds import Bounds, symbolic_bounds
from relucid.verify.confirm import effective_nap, time_left
from relucid.verify.crown import CrownBounds
from relucid.verify.milp import NetworkMILP
from relucid.verify.relaxation import NetworkLP

FloatArray = NDArray[np.float64]
Int8Array = NDArray[np.int8]
Rows = tuple[FloatArray, FloatArray] | None


def crown_terms(
    crown: CrownBounds,
    nap: Int8Array,
    bounds: Bounds,
    cs: Sequence[FloatArray],
    ds: Sequence[FloatArray],
    open_terms: list[int],
    deadline: float | None,
) -> list[int]:
    """The terms that optimised bounds leave open: a term ``C_t y <= d_t`` is impossible
    once some row's proved minimum exceeds its ``d``. All rows go in one batched pass."""
    with_rows = [i for i in open_terms if cs[i].shape[0]]
    if not with_rows:
        return open_terms
    rows = np.vstack([cs[i] for i in with_rows])
    d_all = np.concatenate([ds[i] for i in with_rows])
    low = crown.output_lower(nap, bounds, rows, deadline=deadline, stop_above=d_all)
    settled: set[int] = set()
    start = 0
    for i in with_rows:
        r = cs[i].shape[0]
        if np.any(low[start : start + r] > ds[i]):
            settled.add(i)
        start += r
    return [i for i in open_terms if i not in settled]


def crown_tighten(
    crown: CrownBounds,
    nap: Int8Array,
    bounds: Bounds,
    cs: Sequence[FloatArray],
    ds: Sequence[FloatArray],
    open_terms: list[int],
    cap: int | None,
    deadline: float | None,
    stats: dict[str, float],
) -> tuple[Bounds, list[int]]:
    """Before the MILP: optimised bounds for the hidden layers with at most ``cap`` unstable
    free neurons (None: every layer with one), then another try at the open terms on them.

    Returns the tightened bounds (``empty`` when they prove that no input obeys the NAP;
    the terms are then returned untouched) and the terms still open. Adds to ``stats``
    (``crown_seconds``, ``terms_by_crown``, ``unstable_after_crown``).
    """
    t = time.perf_counter()
    net = crown.net
    uns = bounds.unstable & (nap == -1)
    offs = net.layer_offsets
    limit = net.num_hidden if cap is None else cap
    layers = [
        k for k in range(len(net.hidden_sizes)) if 0 < uns[offs[k] : offs[k + 1]].sum() <= limit
    ]
    if layers:
        bounds = crown.tighten(nap, bounds, layers=layers, deadline=deadline)
        if bounds.empty:
            return bounds, open_terms
        before = len(open_terms)
        open_terms = crown_terms(crown, nap, bounds, cs, ds, open_terms, deadline)
        stats["terms_by_crown"] = stats.get("terms_by_crown", 0) + before - len(open_terms)
    stats["crown_seconds"] = stats.get("crown_seconds", 0.0) + time.perf_counter() - t
    stats["unstable_after_crown"] = int((bounds.unstable & (nap == -1)).sum())
    return bounds, open_terms


def relaxed_margin(relax: NetworkLP, c: FloatArray, d: FloatArray, deadline: float | None) -> float:
    """``max_r (min C_r y - d_r)`` over the LP relaxation, each minimum proved by weak
    duality (``+inf`` for a proved-infeasible relaxation); positive means the term
    ``C y <= d`` is impossible. Stops at the first positive row.

    Each LP gets half the time left; one that runs out resumes, where its simplex stopped,
    with all the time then left (:class:`TimeoutError` when that runs out too). The first
    solve after a change of bounds is the costly one (seconds on mnist-256x4, then
    milliseconds a term), and the MILP that would get the time instead starts from this same
    LP, cold. mnist-256x4, label 1's spec coarsened again at 1 s / 15 s with shifted images
    (``benchmarks/results/nap_cover.json``, ``lp_resume``): 4 of 79 focus calls verified when
    a cut-short LP was dropped for the MILP, 45 with the resume.
    """
    best = -np.inf
    for row, d_r in zip(c, d, strict=True):
        left = time_left(deadline)
        try:
            low = relax.lower_bound(row, None if left is None else 0.5 * left)
        except TimeoutError:
            low = relax.lower_bound(row, time_left(deadline))
        if low is not None:
            best = max(best, low - float(d_r))
            if best > 0:
                break
    return best


def warm_tighten(
    model: NetworkMILP,
    relax: NetworkLP,
    bounds: Bounds,
    nap: Int8Array,
    max_per_layer: int,
    deadline: float | None,
) -> Bounds:
    """Tighten the unstable free neurons of the hidden layers after the first that have
    at most ``max_per_layer`` of them, by the warm LP relaxation (``min`` and ``max`` of
    each, proved by weak duality), layer by layer, each layer's bounds put into the model
    (and so its relaxation) before the next.

    Returns bounds with ``empty`` set when some neuron's bounds cross (whatever rows the
    relaxation holds are then infeasible). Raises :class:`TimeoutError` when an LP runs out
    of time and :class:`~relucid.verify.confirm.SearchTimeout` at the deadline; the model
    then holds the bounds found so far.
    """
    net = model.net
    offs = net.layer_offsets
    lowers = [a.copy() for a in bounds.lower]
    uppers = [a.copy() for a in bounds.upper]
    cost = np.zeros(relax.lp.num_cols)
    for k in range(1, len(net.hidden_sizes)):
        p = nap[offs[k] : offs[k + 1]]
        idx = np.flatnonzero((p == -1) & (lowers[k] < 0.0) & (uppers[k] > 0.0))
        if idx.size == 0 or idx.size > max_per_layer:
            continue
        for i in idx:
            col = relax.z_cols[k][i]
            for sign in (1.0, -1.0):
                cost[col] = sign
                v = relax.lower_bound_of(cost, time_left(deadline))
                cost[col] = 0.0
                if v is None:
                    continue
                if sign > 0:
                    lowers[k][i] = max(lowers[k][i], v)
                else:
                    uppers[k][i] = min(uppers[k][i], -v)
            if lowers[k][i] > uppers[k][i]:
                return Bounds(
                    tuple(np.full(a.size, np.inf) for a in lowers),
                    tuple(np.full(a.size, -np.inf) for a in uppers),
                    "lp",
                    empty=True,
                    empty_neuron=offs[k] + int(i),
                )
        bounds = Bounds(tuple(lowers), tuple(uppers), "lp")
        model.set_bounds(list(zip(bounds.lower[:-1], bounds.upper[:-1], strict=True)))
        model.set_nap(effective_nap(nap, bounds))
    return bounds


def term_tighten(
    model: NetworkMILP,
    relax: NetworkLP,
    bounds: Bounds,
    nap: Int8Array,
    x_rows: Rows,
    c: FloatArray,
    d: FloatArray,
    max_per_layer: int,
    rounds: int,
    deadline: float | None,
) -> Bounds:
    """Bounds valid where ``C y <= d`` holds: :func:`warm_tighten` with that term as a row
    of the relaxation, repeated while it stabilises neurons (at most ``rounds`` times).

    Returns bounds with ``empty`` set when the term is impossible (crossed bounds, or the
    relaxation proves ``C y <= d`` out of reach); otherwise the model holds the returned
    term-only bounds, and the caller puts the query's bounds back (:func:`restore`) after
    the term's MILP. The relaxation is left with ``x_rows`` only.
    """
    relax.set_extra_rows(x_rows=x_rows, y_rows=(c, d))
    try:
        cur = bounds
        margin = -np.inf
        for _ in range(max(rounds, 1)):
            before = int(cur.num_stable)
            cur = warm_tighten(model, relax, cur, nap, max_per_layer, deadline)
            last, margin = margin, relaxed_margin(relax, c, d, deadline) if not cur.empty else 1.0
            if cur.empty or margin > 0:
                return _settled(cur)
            # Another round pays while neurons stabilise or the gap still closes fast.
            if cur.num_stable == before and margin < last + 0.25 * abs(last):
                break
        return cur
    finally:
        relax.set_extra_rows(x_rows=x_rows)


def restore(model: NetworkMILP, bounds: Bounds, nap: Int8Array) -> None:
    """Put the query's bounds (and the NAP they stabilise) back into the model."""
    model.set_bounds(list(zip(bounds.lower[:-1], bounds.upper[:-1], strict=True)))
    model.set_nap(effective_nap(nap, bounds))


def _settled(b: Bounds) -> Bounds:
    if b.empty:
        return b
    return Bounds(
        tuple(np.full(a.size, np.inf) for a in b.lower),
        tuple(np.full(a.size, -np.inf) for a in b.upper),
        "lp",
        empty=True,
    )


def fresh_relaxation(
    net: ReluNetwork, domain: Box, nap: Int8Array
) -> tuple[NetworkMILP, NetworkLP, Bounds]:
    """A new model of ``net`` over ``domain`` under ``nap``, on the NAP's symbolic bounds,
    and its LP relaxation, nothing solved yet: where a lone query's warm-LP stage starts
    (the engine builds its model the same way). :class:`EmptyPolytopeError` when the
    bounds prove that no input obeys ``nap``."""
    bounds = symbolic_bounds(net, domain, nap)
    if bounds.empty:
        raise EmptyPolytopeError("bounds prove that no input obeys the NAP")
    pairs = list(zip(bounds.lower[:-1], bounds.upper[:-1], strict=True))
    model = NetworkMILP(net, domain, pairs, unit_inputs=True)
    model.set_nap(effective_nap(nap, bounds))
    return model, model.relaxation(), bounds


def class_margins(
    model: NetworkMILP,
    relax: NetworkLP,
    bounds: Bounds,
    nap: Int8Array,
    label: int,
    deadline: float | None,
    *,
    max_per_layer: int,
    safety: float,
    tighten: bool = True,
) -> Iterator[float]:
    """Per other class ``j``, in order, the relaxation's proved margin against the term
    ``y_label - y_j <= safety`` (ties count as misclassified, as in the engine); positive
    means no input of the region has ``j`` at least level with ``label``. With ``tighten``,
    the narrow layers first (:func:`warm_tighten`); an empty region yields ``+inf``
    throughout. :class:`TimeoutError` past ``deadline``."""
    if tighten:
        bounds = warm_tighten(model, relax, bounds, nap, max_per_layer, deadline)
    out_dim = model.net.output_dim
    for j in range(out_dim):
        if j == label:
            continue
        if bounds.empty:
            yield np.inf
            continue
        c = np.zeros((1, out_dim))
        c[0, label], c[0, j] = 1.0, -1.0
        yield relaxed_margin(relax, c, np.full(1, safety), deadline)
