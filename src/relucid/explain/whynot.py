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
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import highspy
import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.domain import Box, as_box
from relucid.errors import InputError, SolverError
from relucid.lp import LinearProgram, LPStatus
from relucid.network import ReluNetwork
from relucid.pattern import local_affine
from relucid.polytope import bounding_box, vertices
from relucid.redundancy import irredundant_rows
from relucid.region import RowKind, RowOrigin, region

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Strategy = Literal["milp", "hamming", "facet"]
STRATEGIES: tuple[Strategy, ...] = ("milp", "hamming", "facet")
Objective = Literal["hamming", "l1", "linf"]

#: Margin (relative to each row's norm and offset) that pushes a counterfactual strictly
#: inside its region and strictly into the target class.
_MARGIN = 1e-7


@dataclass(frozen=True)
class FlippedNeuron:
    """A neuron whose state differs between ``x``'s region and the target region.

    ``a . x <= b`` is the neuron's row on ``x``'s side, in ``x``'s region (its local map);
    the target region lies where the neuron has the other state (its own local map).
    """

    flat: int
    layer: int
    neuron: int
    active_at_x: bool
    a: FloatArray
    b: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "flat": self.flat,
            "layer": self.layer,
            "neuron": self.neuron,
            "active_at_x": self.active_at_x,
            "a": self.a.tolist(),
            "b": float(self.b),
        }


@dataclass(frozen=True, eq=False)
class WhyNotExplanation:
    """Why the network did not choose ``target`` at ``x``.

    Attributes
    ----------
    outcome : ``"found"``, ``"impossible"`` or ``"budget"``.
    strategy : which strategy answered (``"same-region"`` when x's own region holds one).
    target, predicted : the class asked about and the class of ``x``.
    pattern : ``x``'s pattern; ``target_pattern``: the answer's (None unless found).
    hamming : number of flipped neurons; ``flipped``: them, as hyperplanes.
    counterfactual : an input of class ``target`` with ``target_pattern`` (forward pass
        confirmed), or None; ``distance_linf`` / ``distance_l1`` to ``x``.
    same_region_rows : when the answer is in x's region, its irredundant rows ``A x <= b``
        with their origins; ``separating`` marks the rows that separate it from "c wins".
    x_box, target_box : bounding boxes of both regions (within the domain).
    target_vertices : vertices of the target region in low dimension, else None.
    cost : LPs, MILP nodes, seconds; ``reason``: why the outcome is what it is.
    objective : the sense of "nearest" (``"hamming"``, ``"l1"`` or ``"linf"``).
    proved_nearest : whether no region nearer in that sense lets ``target`` win (the same
        region and ``hamming`` by construction, ``milp`` when the MILP closed its gap;
        ``facet`` never proves it).
    lower_bound : a proved lower bound on that distance for any region where ``target``
        wins (the MILP's dual bound, or the Hamming distance ``hamming`` finished), or None;
        it equals the answer's distance when ``proved_nearest``.
    """

    x: FloatArray
    target: int
    predicted: int
    outcome: Literal["found", "impossible", "budget"]
    strategy: str
    pattern: BoolArray
    target_pattern: BoolArray | None
    flipped: tuple[FlippedNeuron, ...]
    counterfactual: FloatArray | None
    distance_linf: float | None
    distance_l1: float | None
    x_box: tuple[FloatArray, FloatArray] | None
    target_box: tuple[FloatArray, FloatArray] | None
    target_vertices: FloatArray | None
    cost: dict[str, float]
    reason: str
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    same_region_rows: tuple[FloatArray, FloatArray, tuple[RowOrigin, ...]] | None = None
    separating: NDArray[np.bool_] | None = field(default=None)
    objective: str = "hamming"
    proved_nearest: bool = False
    lower_bound: float | None = None

    @property
    def hamming(self) -> int | None:
        return None if self.target_pattern is None else len(self.flipped)

    def to_dict(self) -> dict[str, Any]:
        def arr(a: FloatArray | None) -> list[float] | None:
            return None if a is None else [float(v) for v in np.ravel(a)]

        out: dict[str, Any] = {
            "input": arr(self.x),
            "predicted": self.predicted,
            "predicted_name": self.class_names[self.predicted],
            "target": self.target,
            "target_name": self.class_names[self.target],
            "outcome": self.outcome,
            "strategy": self.strategy,
            "reason": self.reason,
            "pattern": "".join("1" if v else "0" for v in self.pattern),
            "target_pattern": None
            if self.target_pattern is None
            else "".join("1" if v else "0" for v in self.target_pattern),
            "hamming": self.hamming,
            "flipped": [f.to_dict() for f in self.flipped],
            "counterfactual": arr(self.counterfactual),
            "distance_linf": self.distance_linf,
            "distance_l1": self.distance_l1,
            "x_box": None if self.x_box is None else [arr(self.x_box[0]), arr(self.x_box[1])],
            "target_box": None
            if self.target_box is None
            else [arr(self.target_box[0]), arr(self.target_box[1])],
            "target_vertices": None
            if self.target_vertices is None
            else self.target_vertices.tolist(),
            "objective": self.objective,
            "proved_nearest": self.proved_nearest,
            "lower_bound": self.lower_bound,
            "cost": self.cost,
            "feature_names": list(self.feature_names),
            "class_names": list(self.class_names),
        }
        if self.same_region_rows is not None and self.separating is not None:
            A, b, origins = self.same_region_rows
            out["same_region_rows"] = [
                {
                    "a": A[i].tolist(),
                    "b": float(b[i]),
                    "origin": origins[i].to_dict(),
                    "separating": bool(self.separating[i]),
                }
                for i in range(b.size)
            ]
        return out

    def hyperplane_text(self, f: FlippedNeuron, max_terms: int = 6, digits: int = 4) -> str:
        order = np.argsort(-np.abs(f.a))[:max_terms]
        terms = " ".join(
            f"{'-' if f.a[j] < 0 else '+'} {abs(f.a[j]):.{digits}g}*{self.feature_names[j]}"
            for j in order
            if f.a[j] != 0
        )
        more = " ..." if np.count_nonzero(f.a) > max_terms else ""
        state = "active" if f.active_at_x else "inactive"
        other = "inactive" if f.active_at_x else "active"
        return (
            f"layer {f.layer + 1} neuron {f.neuron}: {state} at x, {other} in the target "
            f"region; x's side: {terms.lstrip('+ ')}{more} <= {f.b:.{digits}g}"
        )

    def to_text(self, max_flipped: int = 20) -> str:
        c, t = self.class_names[self.predicted], self.class_names[self.target]
        head = f"why not {t!r} (x is {c!r}): {self.outcome} by {self.strategy}"
        lines = [head, f"  {self.reason}"]
        if self.outcome == "found":
            assert self.counterfactual is not None
            lines.append(
                f"  target region at Hamming distance {self.hamming}; counterfactual at "
                f"L-inf {self.distance_linf:.4g}, L1 {self.distance_l1:.4g} from x"
            )
            cf = ", ".join(
                f"{n}={v:.4g}" for n, v in zip(self.feature_names, self.counterfactual, strict=True)
            )
            lines.append(f"  counterfactual: {cf}")
            for fl in self.flipped[:max_flipped]:
                lines.append("  " + self.hyperplane_text(fl))
            if len(self.flipped) > max_flipped:
                lines.append(f"  ... and {len(self.flipped) - max_flipped} more flipped neurons")
            if self.same_region_rows is not None and self.separating is not None:
                lines.append(
                    f"  the sub-region of x's region where {t!r} wins has "
                    f"{self.separating.size} irredundant rows, {int(self.separating.sum())} "
                    f"of them separating it from {c!r}"
                )
        if self.outcome == "found":
            lines.append(
                f"  proved nearest by {self.objective}"
                if self.proved_nearest
                else f"  not proved nearest by {self.objective}"
                + (
                    ""
                    if self.lower_bound is None
                    else f" (proved lower bound {self.lower_bound:.4g})"
                )
            )
        elif self.outcome == "budget" and self.lower_bound is not None:
            lines.append(f"  proved: any answer is at {self.objective} >= {self.lower_bound:.4g}")
        cost = ", ".join(f"{k} {v:.4g}" for k, v in self.cost.items())
        lines.append(f"  cost: {cost}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


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
        self._milp: Any = None

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

    def _feasible(self, pattern: BoolArray, target: int, stats: dict) -> bool:
        (poly, b), _ = self._rows(pattern, target, 0.0)
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
        # 1. the same region
        found: BoolArray | None = None
        how: str = strategy
        cf: FloatArray | None = None
        if self._feasible(p, target, stats):
            cf = self._counterfactual(p, target, x1, stats)
            if cf is not None:
                found, how = p, "same-region"
                if strategy != "milp" or objective == "hamming":
                    stats["bound"], stats["proved"] = 0.0, 1.0
        elif strategy != "milp" or objective == "hamming":
            stats["bound"] = 1.0  # x's own region is out: at least one neuron flips
        outcome: Literal["found", "impossible", "budget"] = "budget"
        reason = ""
        if found is None:
            if strategy == "milp":
                found, outcome, reason = self._milp_search(
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
            objective if strategy == "milp" else "hamming",
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

    def _milp_search(
        self,
        x: FloatArray,
        p: BoolArray,
        target: int,
        objective: Objective,
        deadline: float,
        stats: dict,
    ) -> tuple[BoolArray | None, Literal["found", "impossible", "budget"], str]:
        from relucid.verify.bounds import symbolic_bounds
        from relucid.verify.milp import NetworkMILP

        net = self._net
        if self._milp is None:
            # built once per explainer (LP-tightened bounds were tried: 6.6 s on ACAS Xu
            # 1_1, and no query they let the MILP prove)
            bounds = symbolic_bounds(net, self.domain)
            pairs = list(zip(bounds.lower[:-1], bounds.upper[:-1], strict=True))
            model = NetworkMILP(net, self.domain, pairs)
            n = net.input_dim
            lp = model.lp
            # distance columns: s (L-inf) and t_i (L1), with rows filled in per query
            base = lp.num_cols
            lp.highs.addVars(n + 1, np.zeros(n + 1), np.full(n + 1, np.inf))
            lp.num_cols += n + 1
            self._milp = (model, base)
        model, base = self._milp
        lp = model.lp
        n, m = net.input_dim, net.output_dim
        others = [j for j in range(m) if j != target]
        C = np.zeros((len(others), m))
        C[np.arange(len(others)), others] = 1.0
        C[:, target] = -1.0
        model.set_extra_rows(y_rows=(C, np.zeros(len(others))))
        cost = np.zeros(lp.num_cols)
        if objective == "hamming":
            d = np.concatenate(model.d_cols)
            cost[d] = np.where(p, -1.0, 1.0)
        else:
            self._distance_rows(model, base, x)
            if objective == "linf":
                cost[base] = 1.0
            else:
                cost[base + 1 : base + 1 + n] = 1.0
        lp.set_objective(cost, "min")
        h = lp.highs
        h.setOptionValue("mip_max_improving_sols", 2**31 - 1)
        # An optimisation, unlike a verification query: primal heuristics help, and a
        # sampled input where the target wins gives a first incumbent.
        h.setOptionValue("mip_heuristic_effort", 0.05)
        start = self._incumbent(x, p, target, objective)
        if start is not None:
            full = self._columns(model, base, start, x)
            sol = highspy.HighsSolution()
            sol.col_value = list(full)
            sol.value_valid = True
            h.setSolution(sol)
            stats["incumbent"] = 1.0
        left = deadline - time.perf_counter()
        if left <= 0:
            return None, "budget", "no time left for the MILP"
        h.setOptionValue("time_limit", h.getRunTime() + left)
        model._deadline = time.perf_counter() + left
        h.run()
        ms = highspy.HighsModelStatus
        status = h.getModelStatus()
        stats["milp_nodes"] = float(h.getInfo().mip_node_count)
        has_point = h.getInfo().primal_solution_status == 2
        if status == ms.kInfeasible:
            return (
                None,
                "impossible",
                (
                    f"proved by MILP: {self.class_names[target]!r} is never the arg-max in the "
                    "domain"
                ),
            )
        if status != ms.kOptimal and not (status in (ms.kTimeLimit, ms.kInterrupt) and has_point):
            words = h.modelStatusToString(status)
            return None, "budget", f"the MILP ended without an answer ({words}, {left:.3g} s)"
        proved = status == ms.kOptimal
        info = h.getInfo()
        bound = float(info.mip_dual_bound)
        if objective == "hamming":
            # the objective is (Hamming distance) - (neurons active at x), an integer
            bound = float(max(math.ceil(bound + p.sum() - 1e-6), stats.get("bound", 0.0)))
        if np.isfinite(bound):
            stats["bound"] = max(bound, 0.0)
        stats["proved"] = 1.0 if proved else 0.0
        values = np.asarray(h.getSolution().col_value, dtype=np.float64)
        d = np.concatenate(model.d_cols)
        q = values[d] > 0.5
        xs = np.clip(values[model.x_cols], self.domain.lo, self.domain.hi)
        real = net.patterns(xs)[0]
        if not self._feasible(q, target, stats) and self._feasible(real, target, stats):
            q = real
        value = float(h.getInfo().objective_function_value)
        if objective == "hamming":
            value += float(p.sum())  # back to the Hamming distance
            if proved and int(np.sum(q != p)) != round(value):
                proved = False  # the pattern kept is not the MILP's optimum
                stats["proved"] = 0.0
        if proved:
            return (
                q,
                "found",
                (
                    f"nearest region by {objective} (MILP optimum {value:.6g}, "
                    f"{int(stats['milp_nodes'])} nodes)"
                ),
            )
        lower = stats.get("bound")
        gap = "" if lower is None else f", proved lower bound {lower:.6g}"
        return (
            q,
            "found",
            (
                f"best region the MILP found by {objective} in {left:.3g} s ({value:.6g}{gap}; "
                "not proved nearest: time limit)"
            ),
        )

    def _incumbent(
        self, x: FloatArray, p: BoolArray, target: int, objective: Objective
    ) -> FloatArray | None:
        """A sampled input where ``target`` wins, near ``x`` in the objective's sense: random
        points of the domain, each pulled towards ``x`` along its segment by bisection
        while the target still wins."""
        rng = np.random.default_rng(0)
        lo, hi = self.domain.lo, self.domain.hi
        pts = lo + (hi - lo) * rng.random((2048, lo.size))
        win = self.classify(pts) == target
        if not win.any():
            return None
        far = pts[win][:64]
        a = np.zeros(len(far))  # fraction of the way from x towards each point: 1 wins
        b = np.ones(len(far))
        for _ in range(20):
            mid = (a + b) / 2
            cand = x + mid[:, None] * (far - x)
            ok = self.classify(cand) == target
            b = np.where(ok, mid, b)
            a = np.where(ok, a, mid)
        cand = x + b[:, None] * (far - x)
        if objective == "hamming":
            score = (self._net.patterns(cand) != p).sum(axis=1).astype(float)
        elif objective == "linf":
            score = np.max(np.abs(cand - x) / self._width, axis=1)
        else:
            score = np.sum(np.abs(cand - x) / self._width, axis=1)
        return np.asarray(cand[int(np.argmin(score))])

    def _columns(self, model: Any, base: int, point: FloatArray, x: FloatArray) -> FloatArray:
        """Every MILP column's value at ``point`` (a feasible solution to start from)."""
        net = self._net
        full = np.zeros(model.lp.num_cols)
        full[model.x_cols] = point
        zs = net.pre_activations(point[None, :])
        for k, z in enumerate(zs[: len(model.z_cols)]):
            full[model.z_cols[k]] = z[0]
            full[model.h_cols[k]] = np.maximum(z[0], 0.0)
            full[model.d_cols[k]] = (z[0] > 0).astype(float)
        full[model.y_cols] = net.forward(point)
        gap = np.abs(point - x) / self._width
        full[base] = gap.max()
        full[base + 1 : base + 1 + x.size] = gap
        return full

    def _distance_rows(self, model: Any, base: int, x: FloatArray) -> None:
        """Rows ``|x_i - x0_i| <= s w_i`` and ``|x_i - x0_i| <= t_i w_i`` for this ``x0``."""
        lp = model.lp
        n = x.size
        w = self._width
        rows = getattr(model, "_dist_rows", None)
        if rows is None:
            A = np.zeros((4 * n, lp.num_cols))
            for i in range(n):
                for r, sign in ((4 * i, 1.0), (4 * i + 1, -1.0)):
                    A[r, model.x_cols[i]] = sign
                    A[r, base] = -w[i]
                for r, sign in ((4 * i + 2, 1.0), (4 * i + 3, -1.0)):
                    A[r, model.x_cols[i]] = sign
                    A[r, base + 1 + i] = -w[i]
            start = lp.num_rows
            lp.add_rows(A, np.zeros(4 * n))
            rows = np.arange(start, start + 4 * n)
            model._dist_rows = rows
        rhs = np.empty(4 * n)
        rhs[0::4], rhs[1::4], rhs[2::4], rhs[3::4] = x, -x, x, -x
        lp.set_rows_bounds(rows, np.full(4 * n, -np.inf), rhs)

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
