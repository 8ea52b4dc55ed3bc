"""The last stage of the ``milp`` backend: the terms no bound settled, one at a time.

:func:`settle_terms` runs on the model built for the query (:class:`NetworkMILP`, kept
across queries) with the query's bounds. Its steps, each only where it pays:

1. the warm LP relaxation (a model that serves a sequence of queries keeps it; a lone query
   with ``warm_lp_unstable`` or more unstable neurons pays for its cold solve): narrow layers
   tightened (:func:`~relucid.verify.tightening.warm_tighten`), then every term checked by
   its proved minimum;
2. for such hard queries, the attack from every hint on the terms left (:func:`deep_attack`);
3. per term, closest to settled first: bounds tightened with the term's unsafe set as a
   constraint (:func:`~relucid.verify.tightening.term_tighten`), then the MILP on them;
4. for a NAP query whose region no point has been seen in, a point: by one LP when the NAP
   and the bounds decide every neuron's state, else by a MILP (EMPTY if none).

Soundness is as in :mod:`relucid.verify.engine`: proofs come from weak-duality bounds or
HiGHS's infeasibility of an enlarged unsafe set; points count only after the replay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.domain import Box
from relucid.network import ReluNetwork
from relucid.verify.attack import pgd_attack
from relucid.verify.bounds import Bounds
from relucid.verify.confirm import confirm_milp, effective_nap, repair_point, time_left
from relucid.verify.milp import NetworkMILP
from relucid.verify.outcome import SearchOutcome, how_verified
from relucid.verify.query import Status
from relucid.verify.tightening import relaxed_margin, restore, term_tighten, warm_tighten

if TYPE_CHECKING:
    from relucid.verify.engine import MilpVerifier

FloatArray = NDArray[np.float64]
Int8Array = NDArray[np.int8]
BoolArray = NDArray[np.bool_]


@dataclass
class SearchContext:
    """One search of :meth:`MilpVerifier.search`: the region, the NAP, the unsafe terms
    ``C_t y <= d_t``, the independent checks, the deadline, and the statistics it fills."""

    net: ReluNetwork
    box: Box
    cs: list[FloatArray]
    ds: list[FloatArray]
    nap: Int8Array
    a_mat: FloatArray
    b_vec: FloatArray
    replay: Callable[[FloatArray, int], bool]
    obeys: Callable[[FloatArray], BoolArray]
    hints: ArrayLike | None
    need_member: bool
    deadline: float | None
    stats: dict[str, float]


def determined_pattern(nap: Int8Array, bounds: Bounds) -> BoolArray | None:
    """Every hidden neuron's state on the NAP's region (True: ``z > 0``) when the NAP and the
    bounds decide them all (:func:`effective_nap` fixes no neuron left free), else None. A
    point strictly inside that pattern's region obeys the NAP."""
    eff = effective_nap(nap, bounds)
    return None if (eff == -1).any() else eff == 1


def deep_attack(
    v: MilpVerifier, ctx: SearchContext, terms: list[int], deadline: float | None
) -> tuple[FloatArray, int] | None:
    """The attack from every hint (not only the closest) on ``terms``; a replayed
    counterexample ``(x, term)`` or None."""
    b_vec = ctx.b_vec
    res = pgd_attack(
        ctx.net,
        ctx.box,
        [(ctx.cs[i], ctx.ds[i]) for i in terms],
        nap=ctx.nap,
        A=ctx.a_mat if b_vec.size else None,
        b=b_vec if b_vec.size else None,
        starts=ctx.hints,
        restarts=v.attack_restarts,
        steps=v.attack_steps,
        seed=v.seed + 1,
        max_starts=None,
        deadline=deadline,
    )
    for x, loss, ti in zip(res.points, res.losses, res.terms, strict=True):
        if loss > 0:
            break
        if ctx.replay(x, terms[int(ti)]):
            return x.copy(), terms[int(ti)]
    return None


def settle_terms(
    v: MilpVerifier,
    ctx: SearchContext,
    model: NetworkMILP,
    bounds: Bounds,
    open_terms: list[int],
    member: bool,
) -> SearchOutcome:
    """Settle ``open_terms`` (and, for a NAP query, find a member) on ``model``."""
    net, box, cs, ds, nap = ctx.net, ctx.box, ctx.cs, ctx.ds, ctx.nap
    a_mat, b_vec, replay, obeys = ctx.a_mat, ctx.b_vec, ctx.replay, ctx.obeys
    hints, need_member, deadline, stats = ctx.hints, ctx.need_member, ctx.deadline, ctx.stats
    x_rows = (a_mat, b_vec) if b_vec.size else None
    # A model serving a sequence of queries (COARSEN's) keeps its LP relaxation warm:
    # a term whose relaxed minimum (proved by weak duality) clears the unsafe set needs
    # no MILP. A lone query skips it, since the relaxation's first solve is cold, unless
    # it has many unstable neurons: then its MILP costs far more, and the warm
    # relaxation first tightens the deep layers' bounds.
    hard = stats.get("unstable", 0) >= v.warm_lp_unstable
    relax = model.relaxation() if open_terms and (model.uses > 1 or hard) else None
    if relax is not None and hard:
        t = time.perf_counter()
        model.set_extra_rows(x_rows=x_rows)
        try:
            bounds = warm_tighten(model, relax, bounds, nap, v.warm_lp_max, deadline)
        except TimeoutError:  # the bounds so far are in the model; the MILP goes on
            pass
        stats["warm_lp_seconds"] = time.perf_counter() - t
        if bounds.empty:
            return SearchOutcome(Status.EMPTY, "LP bounds prove no input obeys the NAP")
        stats["unstable_after_lp"] = int((bounds.unstable & (nap == -1)).sum())
    # Every term's relaxed bound first; the MILP then takes the rest, the ones closest
    # to settled first.
    deltas = {i: v.safety * (1.0 + np.abs(ds[i])) for i in open_terms}
    left_for_milp: list[tuple[float, int]] = []
    for i in open_terms:
        c, d = cs[i], ds[i] + deltas[i]
        low = -np.inf
        if relax is not None and c.shape[0]:
            model.set_extra_rows(x_rows=x_rows)
            try:
                low = relaxed_margin(relax, c, d, deadline)
            except TimeoutError:  # still cold: the MILP gets the rest of the time
                relax = None
            if low > 0:
                stats["lp_terms"] = stats.get("lp_terms", 0) + 1
                continue
        left_for_milp.append((-low, i))
    left_for_milp.sort()
    if hard and v.attack and left_for_milp and hints is not None and np.size(hints):
        # Before the expensive stages, attack the terms the LP left open from every hint
        # (not only the closest ones): on mnist-256x4, label 4, delta 0.99, the only
        # counterexample found descends from one of the 520 inputs that obey the NAP,
        # not from any of the 64 closest to a violation. It may take a third of the
        # time left.
        left = time_left(deadline)
        until = None if left is None else time.perf_counter() + left / 3
        found = deep_attack(v, ctx, [i for _, i in left_for_milp], until)
        stats["deep_attack_terms"] = len(left_for_milp)
        if found is not None:
            return SearchOutcome(Status.FALSIFIED, "attack", found[0], found[1], stats)
        time_left(deadline)
    for _, i in left_for_milp:
        c, d, delta = cs[i], ds[i], deltas[i]
        term_bounds = None
        if relax is not None and hard and c.shape[0]:
            # Bounds valid where this term's unsafe set is met (OBBT under the
            # objective cut): they settle it by LP, or leave its MILP smaller.
            t = time.perf_counter()
            try:
                term_bounds = term_tighten(
                    model,
                    relax,
                    bounds,
                    nap,
                    x_rows,
                    c,
                    d + delta,
                    v.warm_lp_max,
                    v.term_rounds,
                    deadline,
                )
            except TimeoutError:
                term_bounds = None
            stats["term_lp_seconds"] = stats.get("term_lp_seconds", 0.0) + (time.perf_counter() - t)
            if term_bounds is not None and term_bounds.empty:
                stats["lp_terms"] = stats.get("lp_terms", 0) + 1
                restore(model, bounds, nap)
                continue
        model.set_extra_rows(x_rows=x_rows, y_rows=(c, d + delta) if c.shape[0] else None)
        verdict, x = confirm_milp(
            model,
            c.sum(axis=0) if c.shape[0] else None,
            lambda p, i=i: replay(p, i),  # type: ignore[misc]
            lambda pattern, c=c, d=d: repair_point(net, box, a_mat, b_vec, pattern, c, d),  # type: ignore[misc]
            deadline,
            stats,
        )
        if term_bounds is not None:
            restore(model, bounds, nap)
        if verdict == "infeasible":
            continue
        if verdict == "confirmed":
            return SearchOutcome(Status.FALSIFIED, "milp", x, i, stats)
        return SearchOutcome(
            Status.UNKNOWN,
            f"the MILP found a point within {float(delta.max()):.1e} of the unsafe set "
            "that the forward pass does not confirm, and none strictly inside",
            stats=stats,
        )
    no_rows = np.zeros((0, net.output_dim))
    if need_member and not member:
        pattern = determined_pattern(nap, bounds)
        if pattern is not None:
            # Every neuron's state is known: the region is one polytope, and the LP of the
            # largest common slack finds a point strictly inside it. The MILP (the same
            # question with the whole network as variables) did not, in 120 s, on the
            # region of one MNIST zero whose smallest |pre-activation| is 0.0055.
            t = time.perf_counter()
            inside = repair_point(net, box, a_mat, b_vec, pattern, no_rows, np.zeros(0))
            stats["member_lp_seconds"] = time.perf_counter() - t
            member = inside is not None and bool(obeys(inside[None, :]).any())
    if need_member and not member:
        model.set_extra_rows(x_rows=x_rows)

        def member_search(passes: tuple[bool, ...]) -> tuple[str, FloatArray | None]:
            return confirm_milp(
                model,
                None,
                lambda p: bool(obeys(p[None, :]).any()),
                lambda pattern: repair_point(net, box, a_mat, b_vec, pattern, no_rows, np.zeros(0)),
                deadline,
                stats,
                passes=passes,
            )

        verdict, _ = member_search((False, True))
        if verdict == "infeasible":
            # A second opinion before EMPTY (which no certificate backs): the same model at
            # the 1000x tighter integrality tolerance, where HiGHS found the point it had
            # missed on the one WBC query it wrongly called infeasible.
            stats["empty_rechecks"] = stats.get("empty_rechecks", 0) + 1
            verdict, _ = member_search((True,))
        if verdict == "infeasible":
            return SearchOutcome(Status.EMPTY, "the MILP proves no input obeys the NAP")
        if verdict == "unconfirmed":
            return SearchOutcome(
                Status.UNKNOWN,
                "the NAP's region is empty or thinner than the solver's tolerance",
                stats=stats,
            )
    return SearchOutcome(Status.VERIFIED, how_verified(stats), stats=stats)
