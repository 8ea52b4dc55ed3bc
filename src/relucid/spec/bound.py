"""How many of a class's inputs can *any* specification cover? An upper bound, with proof.

:mod:`relucid.spec.cover` proves inputs out of reach of the specs that keep a given set of
inputs. This module drops that condition: it bounds the coverage of every NAP specification
of the class on the domain, whichever neurons it fixes.

**The certificate** is a list of counterexamples ``Z``: points of the domain that the network
does not classify as the class (each replayed by a plain forward pass). A NAP ``P`` covers an
input ``x`` when ``x``'s activation states match every neuron ``P`` fixes. If ``P`` is a
specification, no ``z`` in ``Z`` obeys it, so for each ``z`` some neuron ``n`` fixed by ``P``
has a state that ``z`` does not share. Every input ``P`` covers shares that state, and so
none of them agrees with ``z`` on ``n``. Hence the inputs ``S`` covered by any specification
satisfy

    for every z in Z there is a neuron n such that no x in S agrees with z on n.

(A state is whether the neuron's pre-activation is positive. A counterexample whose
pre-activation is exactly 0 at a neuron obeys both fixed states there, so the model may let
that neuron keep it out although it cannot: the model is then looser, and still a bound.)
An input the network misclassifies is its own counterexample.
:func:`coverage_bound` finds the largest ``S`` with that property as a small MILP (HiGHS):

    maximise sum_i s_i
    s.t.     sum_n y_zn >= 1                   for each z in Z
             s_i + y_zn <= 1                   for each z, n and each input i that agrees
                                               with z on n
             s, y binary.

``y_zn = 1`` picks the neuron that keeps ``z`` out. The MILP's dual bound is the **upper
bound**, whether or not it is solved to optimality. A picked neuron excludes every input that
agrees with ``z`` on it. So with a known feasible set of ``L`` inputs (the spec's own covered
set, which is feasible when every ``z`` is a real counterexample), a neuron that excludes more
than ``N - L`` inputs cannot serve a set larger than ``L``. Such neurons are left out of the
model, which is what keeps it small (tens of options per counterexample on MNIST).

**The search** (:func:`max_coverage`, counterexample-guided): solve the MILP, and ask the
verifier about the finest NAP of its best set ``S*`` (:func:`~relucid.spec.cover.finest_nap`,
the NAP with the smallest region that covers ``S*``).

* FALSIFIED: the counterexample obeys it, so ``S*`` violates the new constraint. It joins
  ``Z``, and the bound can only go down.
* VERIFIED: that NAP is a specification covering ``S*``. When ``|S*|`` equals the bound, it
  covers as many of the inputs as any specification can: optimal, with proof.
* UNKNOWN: the search stops, with the bound so far.

The bound speaks about the inputs given (e.g. the training inputs of the class) and the
domain of the spec; it says nothing about inputs not given.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse

from relucid.errors import InputError
from relucid.lp import LinearProgram, SolverTimeout
from relucid.network import ReluNetwork
from relucid.spec.cover import _finest, _record
from relucid.spec.nap import NapSpec
from relucid.verify.query import NapQuery, Status, Verifier

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class CoverBound:
    """What :func:`coverage_bound` proved.

    ``upper``: no specification of the class on the domain covers more than this many of the
    ``total`` inputs. ``best``: a set of that size allowed by the counterexamples (the MILP's
    best solution; ``None`` when the solver stopped without one), which a specification may or
    may not cover. ``lower``: the feasible set size the model was pruned with. ``exact``: the
    MILP was solved to optimality (else ``upper`` is its dual bound). ``counterexamples``: the
    distinct activation patterns the bound rests on (one constraint each), from the
    ``misclassified`` inputs and ``points`` other counterexamples.
    """

    upper: int
    total: int
    best: BoolArray | None = field(repr=False, compare=False)
    lower: int
    exact: bool
    counterexamples: int
    misclassified: int
    points: int
    options: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "upper": self.upper,
            "inputs": self.total,
            "upper_pct": round(100 * self.upper / self.total, 2) if self.total else None,
            "best_size": None if self.best is None else int(self.best.sum()),
            "lower": self.lower,
            "exact": self.exact,
            "counterexamples": self.counterexamples,
            "misclassified": self.misclassified,
            "points": self.points,
            "options": self.options,
            "seconds": round(self.seconds, 3),
        }

    def __str__(self) -> str:
        return (
            f"no specification covers more than {self.upper} of these {self.total} inputs "
            f"({self.upper / self.total:.2%}); certified by {self.counterexamples} "
            f"counterexample patterns (from {self.misclassified} misclassified inputs and "
            f"{self.points} other points)"
        )


def _states(net: ReluNetwork, X: FloatArray) -> BoolArray:
    return np.concatenate(net.pre_activations(X), axis=1) > 0


def misclassified(net: ReluNetwork, spec: NapSpec, X: ArrayLike) -> BoolArray:
    """Which rows of ``X`` are counterexamples of ``spec``'s class on its domain, by the
    verifier's replay (ties count as misclassified): the inputs no specification covers."""
    query = _free_query(net, spec)
    xa = np.atleast_2d(np.asarray(X, dtype=np.float64))
    return np.array([query.violated_by(net, x) for x in xa], dtype=bool)


def _free_query(net: ReluNetwork, spec: NapSpec) -> NapQuery:
    """The query of the NAP with every neuron free: every point of the domain obeys it, so
    it replays any counterexample of the class."""
    return spec.with_nap(np.full(spec.nap.shape, -1, dtype=np.int8)).query(net)


def _feasible(on: BoolArray, states: list[BoolArray], S: BoolArray) -> bool:
    """Whether every counterexample has a neuron that no input of ``S`` agrees with it on."""
    return all(not (on[S] == q[None, :]).any(axis=0).all() for q in states)


def _greedy_set(on: BoolArray, states: list[BoolArray]) -> BoolArray:
    """A feasible set: for each counterexample in turn, drop the fewest inputs that keep it
    out (a lower bound to prune the model with)."""
    S = np.ones(on.shape[0], dtype=bool)
    for q in states:
        agree = (on == q[None, :]) & S[:, None]
        counts = agree.sum(axis=0)
        n = int(np.argmin(counts))
        S &= ~agree[:, n]
    return S


def _as_points(net: ReluNetwork, counterexamples: ArrayLike | None) -> FloatArray:
    Z = (
        np.zeros((0, net.input_dim))
        if counterexamples is None
        else np.atleast_2d(np.asarray(counterexamples, dtype=np.float64))
    )
    if Z.size and Z.shape[1] != net.input_dim:
        raise InputError(f"counterexamples must be (k, {net.input_dim}), got {Z.shape}")
    return Z


def _patterns(
    net: ReluNetwork, spec: NapSpec, xa: FloatArray, Z: FloatArray
) -> tuple[BoolArray, list[BoolArray], int]:
    """The inputs' activation states, the distinct states of the counterexamples (the
    misclassified inputs first; each point checked), and how many inputs are misclassified."""
    wrong = misclassified(net, spec, xa)
    on = _states(net, xa)
    states: list[BoolArray] = []
    for q in [*(on[i] for i in np.flatnonzero(wrong)), *(_states(net, Z) if len(Z) else [])]:
        if not any(np.array_equal(q, r) for r in states):  # one constraint per pattern
            states.append(q)
    return on, states, int(wrong.sum())


def _largest_set(
    on: BoolArray,
    states: list[BoolArray],
    lower: int,
    time_limit: float | None,
) -> tuple[int, BoolArray | None, bool, int]:
    """The MILP of the module notes, pruned by a feasible set of ``lower`` inputs: its bound
    (the optimum, or the dual bound when the solver stops first), its best set, whether it
    was solved to optimality, and the number of neuron options."""
    N = on.shape[0]
    if not states:
        return N, np.ones(N, dtype=bool), True, 0  # nothing to keep out
    # options: (counterexample, the inputs its neuron n excludes), at most N - lower of them
    opts: list[tuple[int, NDArray[np.intp]]] = []
    for k, q in enumerate(states):
        agree = on == q[None, :]
        counts = agree.sum(axis=0)
        seen: set[bytes] = set()
        for n in np.flatnonzero(counts <= N - lower):
            rows = np.flatnonzero(agree[:, n])
            key = rows.tobytes()
            if key not in seen:  # neurons that exclude the same inputs are one option
                seen.add(key)
                opts.append((k, rows))
    n_cols = N + len(opts)
    data: list[float] = []
    ri: list[int] = []
    ci: list[int] = []
    lo: list[float] = []
    hi: list[float] = []
    for k in range(len(states)):  # each counterexample is kept out by some neuron
        for j, (kk, _) in enumerate(opts):
            if kk == k:
                ri.append(len(lo))
                ci.append(N + j)
                data.append(1.0)
        lo.append(1.0)
        hi.append(math.inf)
    for j, (_, rows) in enumerate(opts):  # which excludes every input agreeing with it there
        for i in rows:
            ri += [len(lo), len(lo)]
            ci += [int(i), N + j]
            data += [1.0, 1.0]
            lo.append(-math.inf)
            hi.append(1.0)
    A = sparse.csr_array((data, (ri, ci)), shape=(len(lo), n_cols))
    lp = LinearProgram(
        A,
        hi,
        lo,
        col_lo=np.zeros(n_cols),
        col_hi=np.ones(n_cols),
        integer=np.arange(n_cols),
        time_limit=time_limit,
        presolve=True,
    )
    lp.set_option("mip_rel_gap", 0.0)
    c = np.zeros(n_cols)
    c[:N] = 1.0
    try:
        res = lp.maximize(c)
    except SolverTimeout:
        upper = min(N, math.floor(float(lp.highs.getInfo().mip_dual_bound) + 1e-6))
        sol = np.asarray(lp.highs.getSolution().col_value, dtype=np.float64)
        incumbent = sol[:N] > 0.5
        ok = sol.size == n_cols and _feasible(on, states, incumbent)
        return upper, incumbent if ok else None, False, len(opts)
    if res.x is None:  # a set of ``lower`` inputs is allowed: pruned with a wrong one
        raise AssertionError("the coverage MILP lost its feasible set")
    return round(res.objective or 0.0), res.x[:N] > 0.5, True, len(opts)


def coverage_bound(
    net: ReluNetwork,
    spec: NapSpec,
    X: ArrayLike,
    counterexamples: ArrayLike | None = None,
    *,
    time_limit: float | None = 60.0,
) -> CoverBound:
    """The largest number of the inputs ``X`` (the class's) that any specification of
    ``spec.label`` on ``spec.domain`` can cover, bounded by ``counterexamples`` (shape
    (k, input_dim); each is checked, and an :class:`InputError` names one that the network
    classifies as the label or that lies outside the domain) and by the inputs that the
    network misclassifies. The spec's own covered set prunes the model when it is allowed
    (see the module notes); ``time_limit``: seconds for the MILP (its dual bound then)."""
    t0 = time.perf_counter()
    xa, Z = _inputs(net, spec, X, counterexamples)
    on, states, wrong = _patterns(net, spec, xa, Z)
    lower = _lower(on, states, spec.contains(net, xa))
    solved = _largest_set(on, states, lower, time_limit)
    return _bound(solved, len(xa), lower, states, wrong, len(Z), t0)


def _bound(
    solved: tuple[int, BoolArray | None, bool, int],
    total: int,
    lower: int,
    states: list[BoolArray],
    wrong: int,
    points: int,
    t0: float,
) -> CoverBound:
    """The report of one solve of :func:`_largest_set` (``t0``: when the work began)."""
    upper, best, exact, options = solved
    return CoverBound(
        upper,
        total,
        best,
        lower,
        exact,
        len(states),
        wrong,
        points,
        options,
        time.perf_counter() - t0,
    )


def _inputs(
    net: ReluNetwork, spec: NapSpec, X: ArrayLike, counterexamples: ArrayLike | None
) -> tuple[FloatArray, FloatArray]:
    """The class's inputs and the distinct counterexamples, their shapes checked and each
    point replayed (the error names the first that is none, by its row as given)."""
    spec.check(net)
    xa = np.atleast_2d(np.asarray(X, dtype=np.float64))
    if xa.shape[0] == 0 or xa.shape[1] != net.input_dim:
        raise InputError(f"give the class's inputs as (N, {net.input_dim}), got {xa.shape}")
    Z = _as_points(net, counterexamples)
    query = _free_query(net, spec)
    for k, z in enumerate(Z):
        if not query.violated_by(net, z):
            raise InputError(
                f"counterexample {k} is no counterexample: it lies outside the spec's domain, "
                f"or the network classifies it as {spec.label}"
            )
    _, first = np.unique(Z, axis=0, return_index=True) if len(Z) else (None, np.zeros(0, int))
    return xa, Z[np.sort(first)]


def _lower(on: BoolArray, states: list[BoolArray], own: BoolArray) -> int:
    """The size of a set the counterexamples allow: the spec's own covered set, or a greedy
    one when that is larger or the spec's is not allowed."""
    greedy = int(_greedy_set(on, states).sum())
    return max(int(own.sum()) if _feasible(on, states, own) else 0, greedy)


@dataclass(frozen=True)
class BoundRound:
    """One round of :func:`max_coverage`: the bound, the size of the MILP's best set, its
    finest NAP's |P| and verdict."""

    upper: int
    best: int
    size: int
    status: Status
    seconds: float
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "upper": self.upper,
            "best": self.best,
            "size": self.size,
            "status": self.status.value,
            "seconds": round(self.seconds, 3),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class MaxCoverReport:
    """What :func:`max_coverage` found: the last ``bound``; ``spec``, a VERIFIED
    specification covering ``bound.best`` (``None`` when none was found); ``covered``, how
    many inputs the best specification known covers (``spec`` or the one given);
    ``counterexamples``, the points the bound rests on (shape (k, input_dim), the given ones
    first); ``rounds``."""

    bound: CoverBound
    spec: NapSpec | None
    covered: int
    counterexamples: FloatArray = field(repr=False, compare=False)
    rounds: list[BoundRound] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def optimal(self) -> bool:
        """A specification is known that covers as many inputs as any can."""
        return self.covered == self.bound.upper

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.bound.to_dict(),
            "covered": self.covered,
            "optimal": self.optimal,
            "size": None if self.spec is None else self.spec.size,
            "seconds": round(self.seconds, 3),
            "rounds": [r.to_dict() for r in self.rounds],
        }

    def __str__(self) -> str:
        found = (
            f"a specification covering {self.covered} was found (|P| = {self.spec.size})"
            if self.spec is not None
            else f"the best specification known covers {self.covered}"
        )
        verdict = "optimal" if self.optimal else f"gap {self.bound.upper - self.covered}"
        return f"{self.bound}; {found} ({verdict}); {len(self.rounds)} rounds, {self.seconds:.1f} s"


def max_coverage(
    net: ReluNetwork,
    spec: NapSpec,
    X: ArrayLike,
    verifier: Verifier,
    timeout: float | None,
    *,
    counterexamples: ArrayLike | None = None,
    rounds: int = 20,
    milp_time_limit: float | None = 60.0,
    on_round: Callable[[BoundRound], None] | None = None,
) -> MaxCoverReport:
    """Search for the specification of ``spec.label`` that covers the most inputs of ``X``,
    and bound what any can cover (counterexample-guided; see the module notes).

    ``spec`` is a specification (e.g. a learned one): the inputs it covers are the start, and
    one that an input or a given counterexample shows to be none is refused.

    Starts from ``counterexamples`` (e.g. those of ``relucid nap cover``) and the inputs the
    network misclassifies. Each round solves the bound's MILP and asks ``verifier`` (with
    ``timeout`` seconds) about the finest NAP of the largest set allowed, with every input of
    that set as a hint. Stops when that NAP is VERIFIED or UNKNOWN (give more time to go on),
    when no set larger than the best spec's is left, or after ``rounds`` rounds.
    """
    t0 = time.perf_counter()
    if rounds < 1:
        raise InputError(f"rounds must be at least 1, got {rounds}")
    xa, Z = _inputs(net, spec, X, counterexamples)
    on, states, wrong = _patterns(net, spec, xa, Z)
    query = spec.query(net)
    if any(query.violated_by(net, z) for z in (*xa, *Z)):
        raise InputError(
            "the spec given is no specification: a point it contains (an input, or a "
            "counterexample given) is not classified as its label"
        )
    own = spec.contains(net, xa)
    covered = int(own.sum())
    lower = _lower(on, states, own)
    solved = _largest_set(on, states, lower, milp_time_limit)
    found: NapSpec | None = None
    log: list[BoundRound] = []
    for _ in range(rounds):
        upper, ask = solved[0], solved[1]
        if ask is None or int(ask.sum()) <= covered:
            break  # no set larger than the best spec's is left to ask about
        nap = _finest(on[ask])
        query = spec.with_nap(nap).query(net, xa[ask], max_hints=int(ask.sum()))
        t = time.perf_counter()
        res = verifier.verify_nap(net, query, timeout)
        step = BoundRound(
            upper,
            int(ask.sum()),
            int((nap >= 0).sum()),
            res.status,
            time.perf_counter() - t,
            res.reason,
        )
        log.append(step)
        if on_round is not None:
            on_round(step)
        if res.status is Status.VERIFIED:
            found = spec.with_nap(
                nap,
                method=f"{spec.method}+maxcover",
                info={
                    **{k: v for k, v in spec.info.items() if k not in ("implied_steps", "trace")},
                    "maxcover": {"covered": int(ask.sum()), "upper": upper},
                },
                verdicts=(*spec.verdicts, _record(nap, res)),
            )
            covered = int(ask.sum())
            break
        if res.status is Status.FALSIFIED and res.counterexample is not None:
            if not query.violated_by(net, res.counterexample):
                raise AssertionError("the verifier's counterexample does not replay")
            Z = np.vstack([Z, res.counterexample[None, :]])
            states.append(_states(net, res.counterexample[None, :])[0])
            lower = _lower(on, states, own)  # a set the new point allows, to prune with
            solved = _largest_set(on, states, lower, milp_time_limit)
        else:
            # UNKNOWN: stop. Asking another set instead would mean excluding every set whose
            # finest NAP is this one (thousands of them on a small network), not this set.
            break
    bound = _bound(solved, len(xa), lower, states, wrong, len(Z), t0)
    return MaxCoverReport(bound, found, covered, Z, log, time.perf_counter() - t0)
