"""The ``milp`` backend: bounds, a quick attack, tightening, then a MILP built once and re-used.

Both kinds of question reduce to one search: is there an ``x`` in a region (a box, optionally
cut by half-spaces ``A x <= b``) that obeys a NAP and whose output satisfies ``C_t y <= d_t``
for some term ``t`` of a disjunction? For a NAP query the terms are ``y_c - y_j <= margin``,
one per ``j != c``; for a VNN-LIB property they are the property's unsafe output terms, the
NAP is all free, and each input region is searched in turn.

:meth:`MilpVerifier.search` settles each term in this order, stopping as soon as it can:

1. **Bounds** (:func:`~relucid.verify.symbolic_bounds` under the NAP): an empty region ends
   the search (EMPTY); a term whose lower bound of ``C_t y`` exceeds ``d_t`` (by
   :func:`~relucid.verify.output_bounds`) is impossible. Neurons whose bounds fix their state
   are stable and lose their binary. In more than ``split_max_dim`` inputs, **optimised
   bounds** follow (:class:`~relucid.verify.crown.CrownBounds`: the NAP's fixed neurons as
   Lagrange multipliers, alpha/beta-CROWN; :func:`~relucid.verify.tightening.crown_terms`),
   which settle most mnist-256x4 refined-NAP queries in 0.1-0.4 s.
2. **Attack** (:func:`~relucid.verify.pgd_attack`): a candidate counts only when the replay (a
   plain float64 forward pass) confirms it.
3. **Input splitting**, for inputs of at most ``split_max_dim`` dimensions (ACAS Xu): the
   box is halved along its most influential input until the bounds settle each piece, the
   MILP taking only pieces with few unstable neurons (:func:`~relucid.verify.split.split_search`).
4. **Tightening** (:mod:`~relucid.verify.tightening`): optimised bounds for the hidden layers
   with few unstable neurons; a query with many (``warm_lp_unstable``) then tightens those
   layers by the warm LP relaxation, checks every term by the relaxation's proved minimum,
   attacks the terms left from *every* hint, and tightens each remaining term's bounds with
   its unsafe set as a constraint (an infeasible relaxation settles it).
   Where optimised bounds are used and ``bab_share`` > 0 (off by default), the terms they
   leave open after the tightening first get **branch and bound** on hidden neurons for
   that share of the time left, before the warm LP and the MILP
   (:func:`~relucid.verify.bab.bab_terms`: each split fixes one more neuron of the NAP,
   bounded by the same optimisation, batched).
5. **MILP** (:class:`~relucid.verify.NetworkMILP`): one model per network and box, kept
   across queries; each query changes only bounds (the NAP's binaries, the big-M constants
   from this query's bounds, the output rows). HiGHS stops at the first feasible point.
   The deadline is strict: an interrupt callback, and a solve abandoned shortly after the
   deadline where HiGHS calls none.

Soundness. The MILP searches the *enlarged* unsafe set ``C_t y <= d_t + delta`` with
``delta = safety * (1 + |d_t|)``, so HiGHS's feasibility tolerances (1e-7 primal, 1e-6
integrality) cannot hide a true counterexample behind a claim of infeasibility. A point it
returns must pass the replay; when it fails by rounding, an LP over the point's complete
activation pattern (:func:`_repair`) looks for a point strictly inside both the pattern's
region and the unsafe set, which is replayed again. A candidate that still fails makes the
verdict UNKNOWN, with the reason, never FALSIFIED or VERIFIED. A VERIFIED verdict for a NAP
query also needs a point that obeys the NAP (a hint, an attack point or a MILP point, each
replayed); when the MILP finds none the verdict is EMPTY. The MILP works on the unit box
(inputs rescaled) and leaves weights below 1e-7 out of its rows, which then hold the range
they can add: raw WBC features up to 4,254 and hidden weights of 1e-9 made HiGHS call a
feasible MILP infeasible (a wrong EMPTY, which ``test_wbc_query_that_highs_called_empty``
keeps out). Optimised bounds are float64 with
a rounding pad, like the symbolic ones; every LP bound is recomputed by weak duality from
HiGHS's duals, and an infeasible relaxation counts only with a Farkas ray that passes the
same check.
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.domain import Box
from relucid.errors import InputError, SolverError
from relucid.network import ReluNetwork
from relucid.verify.attack import pgd_attack
from relucid.verify.bab import bab_terms
from relucid.verify.bounds import Bounds, lp_tighten, output_bounds, symbolic_bounds
from relucid.verify.confirm import (
    SearchTimeout,
    effective_nap,
    time_left,
)
from relucid.verify.crown import CrownBounds, CrownConfig
from relucid.verify.milp import NetworkMILP
from relucid.verify.outcome import SearchOutcome, how_verified
from relucid.verify.query import NapQuery, Status, VerifyResult
from relucid.verify.split import split_portfolio, split_search
from relucid.verify.terms import SearchContext, settle_terms
from relucid.verify.tightening import crown_terms, crown_tighten
from relucid.verify.vnnlib import VnnProperty

FloatArray = NDArray[np.float64]
Int8Array = NDArray[np.int8]
BoolArray = NDArray[np.bool_]

#: Models kept per verifier (one per network and box).
_CACHE_SIZE = 8


class MilpVerifier:
    """The default complete verifier (see the module notes).

    Parameters
    ----------
    attack : run the PGD falsifier before the MILP.
    attack_restarts, attack_steps : its budget.
    attack_max_starts : of the hint inputs, the attack descends from this many (start, term)
        pairs, the closest to a violation (None: all).
    safety : relative enlargement of the unsafe set searched by the MILP.
    seed : the attack's random starts.
    split_max_dim : queries over at most this many inputs are decided by splitting the input
        box (:func:`~relucid.verify.split.split_search`); larger ones by one MILP over the
        whole box.
    split_leaf_unstable, split_max_depth : a piece goes to the MILP when it has at most
        this many unstable neurons, or after this many splits.
    split_input_depth : after this many splits, split neurons (a finer NAP per phase)
        instead of the box.
    split_lookahead : try this many of the most influential inputs per split and keep the
        one whose halves' bounds come closest to settling the property (0 or 1: none;
        ACAS Xu 1_1 prop_2: 5,269 pieces in 5.9 s without, 299 in 1.8 s with 5).
    split_order : ``"depth"`` (last piece in, first out) or ``"best"`` (the piece whose
        parent left the most room for a violation first).
    tighten : before a MILP over the whole box, tighten the unstable neurons' bounds by LP
        (:func:`~relucid.verify.lp_tighten`): fewer unstable neurons and smaller big-M
        constants, for two LPs per unstable neuron.
    crown : in more than ``split_max_dim`` inputs, settle terms by optimised bounds
        (:class:`~relucid.verify.crown.CrownBounds`: the NAP's fixed neurons as
        multipliers) before the attack, and tighten the bounds the MILP is built on.
    crown_config : their optimisation settings.
    crown_min_unstable : only for queries with at least this many unstable free neurons
        after the symbolic bounds; below that the MILP (and a warm relaxation) is cheaper
        than the optimisation (WBC 4x32 COARSEN queries, 64-78 unstable: 0.07 s per query
        without it, 2-4 s with it).
    crown_min_width : in a sequence of queries (a model already built for the network and
        box), only networks with at least this many inputs plus hidden neurons use them
        (mnist-256x4, 1,808: its COARSEN queries went from 6 to 58 of 60 decided at 5 s
        each; WBC 4x32, 158: its warm relaxation is faster).
    crown_tighten_max : before the MILP, tighten the hidden layers with at most this many
        unstable free neurons (each costs two specifications in one batched pass; None:
        every layer). The tightened bounds then get another try at the open terms: on
        mnist-net_256x4 COARSEN queries of label 4 with 240-500 unstable neurons this moves
        the worst margin from -30 to about 0 in about 3 s, and often past it (the MILP
        after it settles almost none of these queries in a few seconds).
    warm_lp_unstable, warm_lp_max : a query with at least ``warm_lp_unstable`` unstable
        free neurons left for the MILP first tightens, by the warm LP relaxation, every
        hidden layer after the first with at most ``warm_lp_max`` of them (two LPs each;
        mnist-256x4, label 4, delta 0.99: 26 neurons in about 6 s, after which the LP
        settles 7 of the 9 output terms).
    term_rounds : for such a query, each output term left for the MILP first gets up to
        this many rounds of the same tightening with its unsafe set as a constraint
        (bounds valid only where the term is violated): an infeasible LP settles the term,
        otherwise its MILP runs on the tighter bounds.
    crown_patience, crown_probe : in a sequence of queries, once optimised bounds have left
        terms open on ``crown_patience`` queries in a row, the next ones go straight to the
        warm LP relaxation, except every ``crown_probe``-th, which tries the bounds again (a
        success brings them back). On the hard mnist-256x4 COARSEN queries (about 290
        unstable neurons) they settled nothing in 5-9 s of a 15 s limit, and the LP then
        ran out of time: 28 queries of label 0's focus run at 15 s went from 13 verified to
        25 without them, in less time.
    bab_share, bab_batch, bab_max_domains : where optimised bounds are used, the terms they
        leave open first get this share of the time left for branch and bound on hidden
        neurons (:func:`~relucid.verify.bab.bab_terms`: ``bab_batch`` domains per batched
        optimisation, at most ``bab_max_domains``). Off by default (0): on mnist-256x4
        COARSEN queries it settled none of those the MILP leaves open (worst margins near
        -1 with about 300 unstable neurons: 447 domains in 30 s closed no term), and at
        0.5 it took the time in which the MILP verified 2 of 10 sampled queries at 5 s.
    crown_share : the share of a query's time limit that optimised bounds may take (steps
        1 and 4 together; they stop early with valid bounds), so that the warm LP and the
        MILP keep the rest. Default 1 (no cap). On the mnist-256x4 focus queries that limit
        COARSEN's coverage (about 410 unstable neurons, 15 s) they took 6-10 s and settled
        no term, while the warm LP alone proved 9 of 16 in 7-10 s. But on label 0's they
        are what proves most queries (in 2-15 s): a cap of 0.3 there verified 194 of the
        first 245 focus calls against 226 of 240 without it.
    crown_fail_share : in a sequence, the share for a query that follows one whose
        optimised bounds left terms open (at most ``crown_share``); default 1 (no cap). The
        bounds keep their time while they prove queries and give it to the LP once they fail.
    """

    name = "milp"

    def __init__(
        self,
        *,
        attack: bool = True,
        attack_restarts: int = 8,
        attack_steps: int = 40,
        attack_max_starts: int | None = 64,
        safety: float = 1e-6,
        seed: int = 0,
        split_max_dim: int = 16,
        split_leaf_unstable: int = 6,
        split_max_depth: int = 40,
        split_input_depth: int = 40,
        split_lookahead: int = 5,
        split_order: str = "best",
        tighten: bool = False,
        crown: bool = True,
        crown_config: CrownConfig | None = None,
        crown_tighten_max: int | None = None,
        crown_min_unstable: int = 100,
        crown_min_width: int = 1000,
        warm_lp_unstable: int = 200,
        warm_lp_max: int = 32,
        term_rounds: int = 3,
        crown_patience: int = 2,
        crown_probe: int = 8,
        bab_share: float = 0.0,
        bab_batch: int = 32,
        bab_max_domains: int = 20000,
        crown_share: float = 1.0,
        crown_fail_share: float = 1.0,
    ) -> None:
        if safety < 0:
            raise InputError("safety must be >= 0")
        self.attack = attack
        self.attack_restarts = attack_restarts
        self.attack_steps = attack_steps
        self.attack_max_starts = attack_max_starts
        self.safety = safety
        self.seed = seed
        self.split_max_dim = split_max_dim
        self.split_leaf_unstable = split_leaf_unstable
        self.split_max_depth = split_max_depth
        self.split_input_depth = split_input_depth
        self.split_lookahead = split_lookahead
        self.split_order = split_order
        self.tighten = tighten
        self.crown = crown
        self.crown_config = crown_config or CrownConfig()
        self.crown_tighten_max = crown_tighten_max
        self.crown_min_unstable = crown_min_unstable
        self.crown_min_width = crown_min_width
        self.warm_lp_unstable = warm_lp_unstable
        self.warm_lp_max = warm_lp_max
        self.term_rounds = term_rounds
        if crown_patience < 1 or crown_probe < 1:
            raise InputError("crown_patience and crown_probe must be >= 1")
        self.crown_patience = crown_patience
        self.crown_probe = crown_probe
        if not 0.0 <= bab_share <= 1.0:
            raise InputError(f"bab_share must lie in [0, 1], got {bab_share}")
        self.bab_share = bab_share
        self.bab_batch = bab_batch
        self.bab_max_domains = bab_max_domains
        if not 0.0 < crown_share <= 1.0:
            raise InputError(f"crown_share must lie in (0, 1], got {crown_share}")
        self.crown_share = crown_share
        if not 0.0 < crown_fail_share <= 1.0:
            raise InputError(f"crown_fail_share must lie in (0, 1], got {crown_fail_share}")
        self.crown_fail_share = crown_fail_share
        self._crowns: OrderedDict[tuple[int, bytes], CrownBounds] = OrderedDict()
        self._models: OrderedDict[tuple[int, bytes], NetworkMILP] = OrderedDict()
        # per model (network and box): [queries in a row that optimised bounds left open,
        # queries since they last ran]
        self._crown_record: dict[tuple[int, bytes], list[int]] = {}

    # -- public API --------------------------------------------------------------------------
    def verify_nap(
        self, net: ReluNetwork, query: NapQuery, timeout: float | None = None
    ) -> VerifyResult:
        """Decide a NAP query (see :mod:`relucid.verify.query`)."""
        t0 = time.perf_counter()
        query.check(net)
        terms = query.terms(net.output_dim)
        # With ties allowed the unsafe set y_c - y_j < margin is open; the MILP searches
        # a closed set, so it is shrunk by twice the safety enlargement. Such a VERIFIED
        # holds up to that tolerance, and says so.
        shrink = 2 * self.safety * (1.0 + abs(query.margin)) if query.allow_ties else 0.0
        out = self.search(
            net,
            query.box,
            [(row[None, :], np.array([d - shrink])) for _, row, d in terms],
            nap=query.nap,
            A=query.A,
            b=query.b,
            replay=lambda x, t: query.violated_by(net, x),
            obeys=lambda X: query.obeys(net, X),
            hints=query.hints,
            need_member=True,
            deadline=None if timeout is None else t0 + timeout,
        )
        j = None if out.term is None else terms[out.term][0]
        if shrink and out.status is Status.VERIFIED:
            out.reason += f" (ties allowed: up to {shrink / 2:.0e})"
        return VerifyResult(
            out.status, self.name, time.perf_counter() - t0, out.reason, out.x, j, out.stats
        )

    def verify_property(
        self, net: ReluNetwork, prop: VnnProperty, timeout: float | None = None
    ) -> VerifyResult:
        """Decide a VNN-LIB property, one input region after another."""
        t0 = time.perf_counter()
        if net.input_dim != prop.num_inputs or net.output_dim != prop.num_outputs:
            raise InputError(
                f"{net!r} does not fit {prop.source}: {prop.num_inputs} inputs and "
                f"{prop.num_outputs} outputs declared"
            )
        deadline = None if timeout is None else t0 + timeout
        stats: dict[str, float] = {}
        unknown: str | None = None
        if not prop.inputs or not prop.output:
            why = "the input set is empty" if not prop.inputs else "no output is unsafe"
            status = Status.EMPTY if not prop.inputs else Status.VERIFIED
            return VerifyResult(status, self.name, time.perf_counter() - t0, why)
        for region in prop.inputs:
            box = region.box
            if not (np.isfinite(box.lo).all() and np.isfinite(box.hi).all()):
                raise InputError(f"{prop.source}: every input needs finite bounds")
            out = self.search(
                net,
                box,
                list(prop.output),
                A=region.A,
                b=region.b,
                replay=lambda x, t: prop.check_counterexample(net, x),
                obeys=lambda X, r=region: r.contains(X),  # type: ignore[misc]
                need_member=False,
                deadline=deadline,
            )
            for key, value in out.stats.items():
                stats[key] = stats.get(key, 0) + value
            if out.status is Status.FALSIFIED:
                return VerifyResult(
                    out.status,
                    self.name,
                    time.perf_counter() - t0,
                    out.reason,
                    out.x,
                    out.term,
                    stats,
                )
            if out.status is Status.UNKNOWN:
                unknown = unknown or out.reason
        seconds = time.perf_counter() - t0
        if unknown is not None:
            return VerifyResult(Status.UNKNOWN, self.name, seconds, unknown, stats=stats)
        return VerifyResult(Status.VERIFIED, self.name, seconds, "every region", stats=stats)

    # -- the search --------------------------------------------------------------------------
    def search(
        self,
        net: ReluNetwork,
        box: Box,
        terms: Sequence[tuple[ArrayLike, ArrayLike]],
        *,
        nap: ArrayLike | None = None,
        A: ArrayLike | None = None,
        b: ArrayLike | None = None,
        replay: Callable[[FloatArray, int], bool],
        obeys: Callable[[FloatArray], BoolArray],
        hints: ArrayLike | None = None,
        need_member: bool = True,
        deadline: float | None = None,
    ) -> SearchOutcome:
        """Look for ``x`` in the region, obeying ``nap``, with ``C_t f(x) <= d_t`` for some t.

        ``replay(x, t)`` is the independent check of a candidate for term ``t``;
        ``obeys(X)`` says which inputs lie in the region and obey the NAP. With
        ``need_member`` an all-impossible search still has to show a point obeying the NAP
        before it says VERIFIED (EMPTY otherwise).
        """
        stats: dict[str, float] = {}
        try:
            return self._search(
                net, box, terms, nap, A, b, replay, obeys, hints, need_member, deadline, stats
            )
        except SearchTimeout:
            return SearchOutcome(Status.UNKNOWN, "timeout", stats=stats)
        except SolverError as exc:
            return SearchOutcome(Status.UNKNOWN, f"solver trouble: {exc}", stats=stats)

    def _search(
        self,
        net: ReluNetwork,
        box: Box,
        terms: Sequence[tuple[ArrayLike, ArrayLike]],
        nap_in: ArrayLike | None,
        A: ArrayLike | None,
        b: ArrayLike | None,
        replay: Callable[[FloatArray, int], bool],
        obeys: Callable[[FloatArray], BoolArray],
        hints: ArrayLike | None,
        need_member: bool,
        deadline: float | None,
        stats: dict[str, float],
    ) -> SearchOutcome:
        nap = (
            np.full(net.num_hidden, -1, np.int8)
            if nap_in is None
            else np.asarray(nap_in, np.int8).reshape(-1)
        )
        a_mat = np.zeros((0, net.input_dim)) if A is None else np.atleast_2d(np.asarray(A, float))
        b_vec = np.zeros(0) if b is None else np.asarray(b, float).reshape(-1)
        cs = [np.atleast_2d(np.asarray(c, np.float64)) for c, _ in terms]
        ds = [np.asarray(d, np.float64).reshape(-1) for _, d in terms]
        begun = time.perf_counter()  # the optimised bounds' share counts from here
        member = False
        if hints is not None and np.size(hints):
            member = bool(obeys(np.atleast_2d(np.asarray(hints, np.float64))).any())

        # 1. Bounds.
        t = time.perf_counter()
        bounds = symbolic_bounds(net, box, nap)
        stats["bounds_seconds"] = time.perf_counter() - t
        if bounds.empty:
            where = "" if bounds.empty_neuron is None else f" (neuron {bounds.empty_neuron})"
            return SearchOutcome(Status.EMPTY, f"bounds prove no input obeys the NAP{where}")
        stats["unstable"] = int((bounds.unstable & (nap == -1)).sum())
        open_terms = []
        for i, (c, d) in enumerate(zip(cs, ds, strict=True)):
            if c.shape[0] == 0:
                open_terms.append(i)
                continue
            lower, _ = output_bounds(net, box, c, bounds, nap)
            if not np.any(lower > d):
                open_terms.append(i)
        stats["terms_by_bounds"] = len(cs) - len(open_terms)
        time_left(deadline)
        # In a sequence of queries on a small network the warm LP relaxation (exact for its
        # relaxation, a few ms a term) beats the optimisation; on a wide one its re-solves
        # take seconds and the optimised bounds, warm-started too, come first.
        model_key = (id(net), box.lo.tobytes() + box.hi.tobytes())
        warm = self._models.get(model_key)
        in_sequence = warm is not None and warm.uses >= 1
        use_crown = (
            self.crown
            and net.input_dim > self.split_max_dim
            and stats["unstable"] >= self.crown_min_unstable
            and not (in_sequence and net.input_dim + net.num_hidden < self.crown_min_width)
        )
        # In a sequence, optimised bounds that kept failing are left out (the warm LP is
        # then the cheaper proof), except for a probe every crown_probe queries.
        record = self._crown_record.setdefault(model_key, [0, 0]) if in_sequence else None
        if use_crown and record is not None and record[0] >= self.crown_patience:
            record[1] += 1
            if record[1] % self.crown_probe:
                use_crown = False
                stats["crown_skipped"] = 1
        # optimised bounds stop early at their own deadline (bounds so far stay valid)
        share = self.crown_share
        if record is not None and record[0] >= 1:
            share = min(share, self.crown_fail_share)
        crown_by = deadline
        if deadline is not None and share < 1.0:
            crown_by = begun + share * (deadline - begun)
        if use_crown and open_terms:
            t = time.perf_counter()
            crown = self._crown(net, box, a_mat, b_vec)
            before = len(open_terms)
            open_terms = crown_terms(crown, nap, bounds, cs, ds, open_terms, crown_by)
            stats["crown_seconds"] = time.perf_counter() - t
            stats["terms_by_crown"] = before - len(open_terms)
            time_left(deadline)

        # 2. Attack. When the bounds settled every term, a NAP query still needs an input
        #    that obeys the NAP (VERIFIED, not EMPTY): the attack's points, which it pulls
        #    into the NAP's region, are the cheapest place to find one.
        attack_terms = open_terms or ([] if member or not need_member else list(range(len(cs))))
        if self.attack and attack_terms:
            t = time.perf_counter()
            res = pgd_attack(
                net,
                box,
                [(cs[i], ds[i]) for i in attack_terms],
                nap=nap,
                A=a_mat if b_vec.size else None,
                b=b_vec if b_vec.size else None,
                starts=hints,
                restarts=self.attack_restarts,
                steps=self.attack_steps,
                seed=self.seed,
                max_starts=self.attack_max_starts,
                deadline=deadline,  # it stops there with its best points so far
            )
            stats["attack_steps"] = res.steps
            stats["attack_seconds"] = time.perf_counter() - t
            for x, loss, ti in zip(res.points, res.losses, res.terms, strict=True):
                if loss > 0:
                    break
                if replay(x, attack_terms[int(ti)]):
                    return SearchOutcome(
                        Status.FALSIFIED, "attack", x.copy(), attack_terms[int(ti)], stats
                    )
            if need_member and not member:
                member = bool(obeys(res.points).any())
            time_left(deadline)

        # 3. In low input dimension, split the box (bounds tighten fast as it shrinks) and
        #    leave the MILP to the pieces whose bounds stay loose.
        if open_terms and net.input_dim <= self.split_max_dim:
            search = functools.partial(
                split_search,
                net,
                box,
                cs,
                ds,
                open_terms,
                nap,
                a_mat,
                b_vec,
                replay,
                obeys if need_member and not member else None,
                stats=stats,
                safety=self.safety,
                split_leaf_unstable=self.split_leaf_unstable,
                split_max_depth=self.split_max_depth,
                split_input_depth=self.split_input_depth,
                split_order=self.split_order,
            )
            out, seen = split_portfolio(search, nap, self.split_lookahead, deadline, stats)
            if out.status is not Status.VERIFIED:
                return out
            member = member or seen
            open_terms = []

        # 4. MILP, one term at a time, on bounds tightened where it is cheap.
        if use_crown and open_terms:
            crown = self._crown(net, box, a_mat, b_vec)
            bounds, open_terms = crown_tighten(
                crown, nap, bounds, cs, ds, open_terms, self.crown_tighten_max, crown_by, stats
            )
            if bounds.empty:
                return SearchOutcome(Status.EMPTY, "optimised bounds prove no input obeys the NAP")
            time_left(deadline)
        # 4b. Branch and bound on hidden neurons with the same bounds, for a share of the
        #     time left; the MILP gets the rest (and the terms it leaves open).
        if use_crown and open_terms and self.bab_share > 0:
            t = time.perf_counter()
            left = time_left(deadline)
            until = None if left is None else time.perf_counter() + self.bab_share * left
            crown = self._crown(net, box, a_mat, b_vec)
            bab = bab_terms(
                crown,
                nap,
                bounds,
                cs,
                ds,
                open_terms,
                until,
                replay=replay,
                batch=self.bab_batch,
                max_domains=self.bab_max_domains,
            )
            stats["bab_seconds"] = time.perf_counter() - t
            stats["bab_domains"] = bab.domains
            if bab.status == "falsified" and bab.x is not None and bab.term is not None:
                return SearchOutcome(Status.FALSIFIED, "branch and bound", bab.x, bab.term, stats)
            stats["terms_by_bab"] = len(open_terms) - len(bab.open_terms)
            open_terms = bab.open_terms
            time_left(deadline)
        if use_crown and record is not None:
            record[:] = [record[0] + 1, 0] if open_terms else [0, 0]
        if not open_terms and not (need_member and not member):
            return SearchOutcome(Status.VERIFIED, how_verified(stats), stats=stats)
        if self.tighten and open_terms:
            t = time.perf_counter()
            bounds = lp_tighten(net, box, nap, bounds, time_limit=time_left(deadline))
            stats["tighten_seconds"] = time.perf_counter() - t
            if bounds.empty:
                return SearchOutcome(Status.EMPTY, "LP bounds prove no input obeys the NAP")
            stats["unstable_after_lp"] = int((bounds.unstable & (nap == -1)).sum())
            time_left(deadline)
        model = self._model(net, box, bounds, nap)
        ctx = SearchContext(
            net, box, cs, ds, nap, a_mat, b_vec, replay, obeys, hints, need_member, deadline, stats
        )
        return settle_terms(self, ctx, model, bounds, open_terms, member)

    # -- helpers -----------------------------------------------------------------------------
    def _crown(
        self, net: ReluNetwork, box: Box, a_mat: FloatArray, b_vec: FloatArray
    ) -> CrownBounds:
        key = (id(net), box.lo.tobytes() + box.hi.tobytes() + a_mat.tobytes() + b_vec.tobytes())
        crown = self._crowns.get(key)
        if crown is None or crown.net is not net:
            rows = (a_mat, b_vec) if b_vec.size else (None, None)
            crown = CrownBounds(net, box, rows[0], rows[1], self.crown_config)
            self._crowns[key] = crown
            while len(self._crowns) > _CACHE_SIZE:
                self._crowns.popitem(last=False)
        else:
            self._crowns.move_to_end(key)
        return crown

    def _model(self, net: ReluNetwork, box: Box, bounds: Bounds, nap: Int8Array) -> NetworkMILP:
        key = (id(net), box.lo.tobytes() + box.hi.tobytes())
        model = self._models.get(key)
        pairs = list(zip(bounds.lower[:-1], bounds.upper[:-1], strict=True))
        if model is None or model.net is not net or model.abandoned:
            model = NetworkMILP(net, box, pairs, unit_inputs=True)
            self._models[key] = model
            self._crown_record.pop(key, None)
            while len(self._models) > _CACHE_SIZE:
                self._crown_record.pop(self._models.popitem(last=False)[0], None)
        else:
            model.set_bounds(pairs)
            self._models.move_to_end(key)
        model.set_nap(effective_nap(nap, bounds))
        model.uses += 1
        return model
