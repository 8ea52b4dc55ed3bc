"""``why_not(x, target)``: the nearest region where another class can win, and what separates it.

Paper: geometric-causal-explanations-relu, sections I-D, II-B, II-C, III-B. The input ``x``
has activation pattern ``p`` and class ``c``; the question is why not ``t``. The answer is a
*target pattern* ``p'`` whose region contains inputs of class ``t``, the neurons on which
``p'`` differs from ``p`` (the hyperplanes that separate the two regions), and a
counterfactual input that a plain forward pass confirms has class ``t`` and pattern ``p'``.

Strategies (one API, :meth:`WhyNotExplainer.why_not`):

* **same region** (always first): if ``t`` can win inside ``x``'s own region, the answer is
  that sub-region: its irredundant rows, with the rows that separate it from "``c`` wins"
  marked (the "``t`` beats ``j``" rows), and the closest such input (L-inf, by LP).
* ``hamming``: the paper's method. Patterns in order of Hamming distance from ``p``, each
  tested by one feasibility LP (its region within the domain, with ``t`` winning), until one
  is feasible or the budget runs out. ``C(H, d)`` LPs at distance ``d``.
* ``facet``: walk only through non-empty regions. From a region, cross each of its facets
  that is a neuron's hyperplane (a point just past the facet's centre gives the neighbour's
  real pattern, deeper neurons included), best-first by the neighbour's L-inf distance to
  ``x``; stop at the first region where ``t`` can win.
* ``milp`` (default): one MILP over the network within the domain that minimises the number
  of neurons whose state differs from ``p`` (or the L1 / L-inf distance to ``x``) subject to
  ``t`` being the arg-max. It returns the provably nearest region in that sense, and when it
  is infeasible it proves that ``t`` wins nowhere in the domain.

Outcomes are explicit: ``found``, ``impossible`` (proved: ``t`` is never the arg-max in the
domain; only ``milp`` proves it, or ``hamming`` after exhausting every pattern) and
``budget`` (the strategy ran out of time or LPs without an answer). "``t`` wins" means
``y_t >= y_j`` for every ``j`` in the searches (so a proof of impossibility covers ties);
the counterfactual is then pushed strictly inside (``y_t > y_j``, every neuron strictly on
its side) and confirmed by a forward pass.

The answer object lives in :mod:`relucid.explain.answer` (re-exported here) and the ``milp``
strategy in :mod:`relucid.explain.nearest`.
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.domain import Box, as_box
from relucid.errors import InputError, SolverError
from relucid.explain.answer import FlippedNeuron, WhyNotExplanation
from relucid.explain.nearest import MARGIN as _MARGIN
from relucid.explain.nearest import NearestRegionMILP
from relucid.lp import LinearProgram, LPStatus
from relucid.network import ReluNetwork
from relucid.pattern import local_affine
from relucid.polytope import bounding_box, vertices
from relucid.redundancy import irredundant_rows
from relucid.region import RowKind, region

__all__ = ["STRATEGIES", "FlippedNeuron", "WhyNotExplainer", "WhyNotExplanation"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Strategy = Literal["milp", "hamming", "facet"]
STRATEGIES: tuple[Strategy, ...] = ("milp", "hamming", "facet")
Objective = Literal["hamming", "l1", "linf"]


class WhyNotExplainer:
    """ "Why not class t?" for one network (see the module notes).

    Parameters
    ----------
    net : the network.
    domain : a :class:`Box`, ``(lo, hi)`` or ``"model"`` (the model's stated ranges). The
        searches need a bounded domain.
    decision : ``"argmax"``, or ``"argmin"`` for networks whose smallest output decides
        (ACAS Xu).
    """

    def __init__(
        self,
        net: ReluNetwork,
        domain: Box | tuple[ArrayLike, ArrayLike] | Literal["model"] = "model",
        decision: Literal["argmax", "argmin"] = "argmax",
    ) -> None:
        self.net = net
        box = net.domain if isinstance(domain, str) else as_box(domain, net.input_dim)  # type: ignore[arg-type]
        if isinstance(domain, str) and domain != "model":
            raise InputError(f"domain must be a Box, (lo, hi) or 'model', not {domain!r}")
        if box is None or not box.is_bounded:
            raise InputError("why-not needs a bounded input domain (give --domain or a Box)")
        self.domain: Box = box
        self.sign = -1.0 if decision == "argmin" else 1.0
        self._net = (
            net
            if self.sign > 0
            else net.with_output_transform(-np.ones(net.output_dim), np.zeros(net.output_dim))
        )
        self.feature_names = tuple(net.feature_name(i) for i in range(net.input_dim))
        self.class_names = tuple(net.class_name(j) for j in range(net.output_dim))
        self._width = np.maximum(box.hi - box.lo, 1e-12)
        self._milp: NearestRegionMILP | None = None

    # -- helpers ----------------------------------------------------------------------------
    def classify(self, X: ArrayLike) -> NDArray[np.int64]:
        return np.asarray(np.argmax(self._net.forward(np.atleast_2d(X)), axis=1))

    def _rows(self, pattern: BoolArray, target: int | None, margin: float) -> tuple[Any, Any]:
        poly, aff = region(self._net, pattern, self.domain, winner=target)
        b = poly.b.copy()
        if margin:
            inner = poly.kind != RowKind.DOMAIN
            norm = np.linalg.norm(poly.A, axis=1)
            b[inner] -= margin * (norm[inner] + np.abs(b[inner]))
        return (poly, b), aff

    def _nearest(
        self, pattern: BoolArray, target: int | None, x: FloatArray, margin: float, stats: dict
    ) -> tuple[FloatArray, float] | None:
        """The input of ``pattern``'s region (where ``target`` wins, if given) closest to
        ``x`` in scaled L-inf, with that distance; None when there is none (this margin)."""
        (poly, b), _ = self._rows(pattern, target, margin)
        n = x.size
        w = self._width
        # variables [x (n), s]; min s with |x - x0| <= s w
        A = np.hstack([poly.A, np.zeros((poly.A.shape[0], 1))])
        eye = np.eye(n)
        A = np.vstack([A, np.hstack([eye, -w[:, None]]), np.hstack([-eye, -w[:, None]])])
        rhs = np.concatenate([b, x, -x])
        lp = LinearProgram(A, rhs, col_lo=[*self.domain.lo, 0.0], col_hi=[*self.domain.hi, np.inf])
        cost = np.zeros(n + 1)
        cost[-1] = 1.0
        stats["lps"] = stats.get("lps", 0) + 1
        res = lp.minimize(cost)
        if res.status is not LPStatus.OPTIMAL or res.x is None:
            return None
        return np.clip(res.x[:n], self.domain.lo, self.domain.hi), float(res.objective or 0.0)

    def _confirm(self, point: FloatArray | None, pattern: BoolArray, target: int) -> bool:
        if point is None:
            return False
        z = np.concatenate(self._net.pre_activations(point[None, :]), axis=1)[0] > 0
        return bool(np.array_equal(z, pattern)) and int(self.classify(point)[0]) == target

    def _counterfactual(
        self, pattern: BoolArray, target: int, x: FloatArray, stats: dict
    ) -> FloatArray | None:
        """A confirmed input of ``pattern`` and class ``target`` near ``x``, or None."""
        for margin in (_MARGIN, 1e-9, 1e-5):
            near = self._nearest(pattern, target, x, margin, stats)
            if near is not None and self._confirm(near[0], pattern, target):
                return near[0]
        return None

    def _feasible(self, pattern: BoolArray, target: int, stats: dict, margin: float = 0.0) -> bool:
        """Whether ``pattern``'s region holds a domain input where ``target`` wins; with a
        ``margin``, strictly inside every neuron and class row (no flat region)."""
        (poly, b), _ = self._rows(pattern, target, margin)
        lp = LinearProgram(poly.A, b, col_lo=self.domain.lo, col_hi=self.domain.hi)
        stats["lps"] = stats.get("lps", 0) + 1
        return bool(lp.feasible())

    # -- the entry point ----------------------------------------------------------------------
    def why_not(
        self,
        x: ArrayLike,
        target: int,
        strategy: Strategy = "milp",
        *,
        objective: Objective = "hamming",
        timeout: float = 10.0,
        max_lps: int = 100_000,
        details: bool = True,
    ) -> WhyNotExplanation:
        """Explain why ``x`` is not classified ``target`` (see the module notes).

        ``timeout`` bounds the whole search (seconds); ``max_lps`` the LPs of ``hamming`` and
        ``facet``; ``objective`` is the ``milp`` strategy's distance. ``details=False``
        skips the bounding boxes and vertices (for benchmarks).
        """
        t0 = time.perf_counter()
        net = self.net
        xa = net.check_input(x)
        if xa.shape[0] != 1:
            raise InputError(f"why_not() explains one input; got a batch of {xa.shape[0]}")
        x1 = xa[0]
        if not bool(self.domain.contains(x1)):
            raise InputError("the input lies outside the domain")
        m = net.output_dim
        if not 0 <= int(target) < m:
            raise InputError(f"target must be a class in 0..{m - 1}, got {target}")
        if strategy not in STRATEGIES:
            raise InputError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
        target = int(target)
        c = int(self.classify(x1)[0])
        if c == target:
            raise InputError(f"x is already classified {self.class_names[target]!r}")
        p = net.patterns(x1)[0]
        stats: dict[str, float] = {"lps": 0}
        deadline = t0 + timeout
        # the sense of "nearest": hamming and facet count flipped neurons whatever objective
        sense: Objective = objective if strategy == "milp" else "hamming"
        # 1. the same region
        found: BoolArray | None = None
        how: str = strategy
        cf: FloatArray | None = None
        if self._feasible(p, target, stats):
            cf = self._counterfactual(p, target, x1, stats)
            if cf is not None:
                found, how = p, "same-region"
                if sense == "hamming":
                    stats["bound"], stats["proved"] = 0.0, 1.0
        elif sense == "hamming":
            stats["bound"] = 1.0  # x's own region is out: at least one neuron flips
        outcome: Literal["found", "impossible", "budget"] = "budget"
        reason = ""
        if found is None:
            if strategy == "milp":
                if self._milp is None:
                    self._milp = NearestRegionMILP(self)
                found, outcome, reason = self._milp.search(
                    x1, p, target, objective, deadline, stats
                )
            elif strategy == "hamming":
                found, outcome, reason = self._hamming(p, target, deadline, max_lps, stats)
            else:
                found, outcome, reason = self._facet(x1, p, target, deadline, max_lps, stats)
            if found is not None:
                cf = self._counterfactual(found, target, x1, stats)
                if cf is None:
                    outcome = "budget"
                    reason = (
                        "a target pattern was found but no input of it could be confirmed "
                        "by a forward pass (its region is thinner than the LP margins)"
                    )
                    found = None
        if found is not None:
            outcome = "found"
            reason = reason or (
                f"{self.class_names[target]!r} can win in x's own region"
                if how == "same-region"
                else "nearest region found"
            )
        return self._answer(
            x1,
            c,
            target,
            p,
            found,
            cf,
            outcome,
            how,
            reason,
            stats,
            t0,
            details,
            sense,
        )

    # -- strategies -----------------------------------------------------------------------------
    def _hamming(
        self, p: BoolArray, target: int, deadline: float, max_lps: int, stats: dict
    ) -> tuple[BoolArray | None, Literal["found", "impossible", "budget"], str]:
        H = p.size
        for dist in range(1, H + 1):
            for combo in itertools.combinations(range(H), dist):
                if time.perf_counter() > deadline or stats["lps"] >= max_lps:
                    return (
                        None,
                        "budget",
                        (f"budget exhausted at Hamming distance {dist} ({int(stats['lps'])} LPs)"),
                    )
                q = p.copy()
                q[list(combo)] = ~q[list(combo)]
                if self._feasible(q, target, stats):
                    stats["proved"] = 1.0
                    return q, "found", f"first feasible pattern at Hamming distance {dist}"
            stats["bound"] = float(dist + 1)  # every pattern this close is out
        return None, "impossible", "every pattern was tried: the target wins nowhere"

    def _facet(
        self, x: FloatArray, p: BoolArray, target: int, deadline: float, max_lps: int, stats: dict
    ) -> tuple[BoolArray | None, Literal["found", "impossible", "budget"], str]:
        seen = {p.tobytes()}
        heap: list[tuple[float, int, bytes]] = [(0.0, 0, p.tobytes())]
        tick = 1
        net = self._net
        while heap:
            if time.perf_counter() > deadline or stats["lps"] >= max_lps:
                return None, "budget", f"budget exhausted after {len(seen)} regions"
            _, _, key = heapq.heappop(heap)
            q = np.frombuffer(key, dtype=bool).copy()
            if not np.array_equal(q, p) and self._feasible(q, target, stats):
                return q, "found", f"reached after visiting {len(seen)} regions"
            poly, _ = region(net, q, self.domain)
            try:
                keep, _, _, _ = irredundant_rows(poly.A, poly.b)
            except SolverError:
                continue
            stats["reductions"] = stats.get("reductions", 0) + 1
            for i in keep:
                if poly.kind[i] != RowKind.NEURON:
                    continue
                point = self._across(poly.A, poly.b, int(i), stats)
                if point is None:
                    continue
                nb = net.patterns(point)[0]
                k = nb.tobytes()
                if k in seen:
                    continue
                seen.add(k)
                # best first by the neighbour's distance to x (scaled L-inf), by LP
                near = self._nearest(nb, None, x, 0.0, stats)
                if near is None:
                    continue
                heapq.heappush(heap, (near[1], tick, k))
                tick += 1
        return None, "impossible", "every region reachable through facets was visited"

    def _across(self, A: FloatArray, b: FloatArray, i: int, stats: dict) -> FloatArray | None:
        """A point just past facet ``i``: the centre of the largest ball in the region that
        touches the facet, stepped across it."""
        n = A.shape[1]
        norm = np.linalg.norm(A, axis=1)
        if norm[i] == 0:
            return None
        # max r: A_k x + r |A_k| <= b_k (k != i), A_i x = b_i
        others = np.arange(A.shape[0]) != i
        M = np.hstack([A[others], norm[others, None]])
        eq = np.hstack([A[i], [0.0]])[None, :]
        lp = LinearProgram(
            np.vstack([M, eq]),
            np.concatenate([b[others], [b[i]]]),
            np.concatenate([np.full(others.sum(), -np.inf), [b[i]]]),
            col_lo=[*self.domain.lo, 0.0],
            col_hi=[*self.domain.hi, np.inf],
        )
        cost = np.zeros(n + 1)
        cost[-1] = 1.0
        stats["lps"] = stats.get("lps", 0) + 1
        try:
            res = lp.maximize(cost)
        except SolverError:
            return None
        if res.status is not LPStatus.OPTIMAL or res.x is None or res.x[-1] <= 0:
            return None
        centre, r = res.x[:n], res.x[-1]
        step = min(r, 1e-6 * float(np.max(self._width))) / norm[i]
        point = centre + step * A[i]
        inside = np.all(point >= self.domain.lo) and np.all(point <= self.domain.hi)
        return point if inside else None

    # -- the answer -----------------------------------------------------------------------------
    def _answer(
        self,
        x: FloatArray,
        c: int,
        target: int,
        p: BoolArray,
        found: BoolArray | None,
        cf: FloatArray | None,
        outcome: Literal["found", "impossible", "budget"],
        how: str,
        reason: str,
        stats: dict,
        t0: float,
        details: bool,
        objective: Objective,
    ) -> WhyNotExplanation:
        net = self._net
        flipped: list[FlippedNeuron] = []
        x_box = target_box = verts = None
        same_rows = separating = None
        if found is not None:
            aff = local_affine(net, p)
            for i in np.flatnonzero(found != p):
                layer, neuron = net.neuron(int(i))
                sign = -1.0 if p[i] else 1.0  # active: -z <= 0; inactive: z <= 0
                flipped.append(
                    FlippedNeuron(
                        int(i), layer, neuron, bool(p[i]), sign * aff.M[i], float(-sign * aff.c[i])
                    )
                )
            if details:
                px, _ = region(net, p, self.domain)
                pt, _ = region(net, found, self.domain)
                try:
                    x_box = bounding_box(px.A, px.b)
                    target_box = bounding_box(pt.A, pt.b)
                    if net.input_dim <= 6:
                        verts = vertices(pt.A, pt.b, max_dim=6)
                except (SolverError, InputError):
                    pass
                if how == "same-region" and cf is not None:
                    poly, _ = region(net, p, self.domain, winner=target)
                    keep, _, _, _ = irredundant_rows(poly.A, poly.b, points=cf[None, :])
                    red = poly.subset(keep)
                    origins = tuple(red.origin(k, self.net) for k in range(keep.size))
                    same_rows = (red.A, red.b, origins)
                    separating = np.array(
                        [o.kind is RowKind.CLASS and o.winner == target for o in origins]
                    )
        dl = d1 = None
        if cf is not None:
            dl = float(np.max(np.abs(cf - x)))
            d1 = float(np.sum(np.abs(cf - x)))
        cost = {"lps": float(stats.get("lps", 0))}
        for k in ("milp_nodes", "reductions"):
            if k in stats:
                cost[k] = float(stats[k])
        cost["seconds"] = time.perf_counter() - t0
        return WhyNotExplanation(
            x=x,
            target=target,
            predicted=c,
            outcome=outcome,
            strategy=how,
            pattern=p,
            target_pattern=found,
            flipped=tuple(flipped),
            counterfactual=cf,
            distance_linf=dl,
            distance_l1=d1,
            x_box=x_box,
            target_box=target_box,
            target_vertices=verts,
            cost=cost,
            reason=reason,
            feature_names=self.feature_names,
            class_names=self.class_names,
            same_region_rows=same_rows,
            separating=separating,
            objective=objective,
            proved_nearest=outcome == "found" and bool(stats.get("proved", 0.0)),
            lower_bound=None if outcome == "impossible" else stats.get("bound"),
        )
