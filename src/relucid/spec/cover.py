"""Which of a class's inputs can a specification cover? Grow a spec's covered set, with proofs.

A learned NAP leaves some of its class's inputs out: each one disagrees with a fixed neuron.
Could *any* specification cover such an input, together with every input the NAP covers?

The inputs a NAP covers all match it, so every neuron it fixes has the same state on all of
them. Hence the NAPs that cover a set ``S`` of inputs are exactly the coarsenings of one NAP,
the **finest NAP of S** (:func:`finest_nap`: each neuron fixed where all of ``S`` agree, free
elsewhere; the most refined NAP of ``S`` at delta 1). Coarsening only enlarges the region. So:

* **FALSIFIED**: the finest NAP of ``S + {x}`` has a counterexample, which obeys every NAP
  that covers ``S + {x}``. No specification covers ``x`` together with ``S``: a proof, not a
  timeout (the counterexample is replayed by the verifier).
* **VERIFIED**: that finest NAP is a specification covering ``S + {x}``; ``x`` joins ``S``.
* **UNKNOWN**: undecided within the time limit.

:func:`grow_coverage` starts from the inputs a spec covers and asks about each left-out input,
those that disagree with the fewest fixed neurons first; an input that joins makes the set
larger, and the later questions harder (the finest NAP coarser). A FALSIFIED verdict stays a
proof for the final set too: its finest NAP is coarser still. Each counterexample found is
replayed on the later questions' NAPs first (one that obeys a NAP answers its question
without a call), and the verifier gets every input of the set as an attack start.

The result is the finest NAP of the grown set, a VERIFIED specification with its certificate,
covering more of the class; it is *not* minimal (it fixes every neuron the set agrees on).
Where the spec's own NAP with the disagreeing neurons freed (coarser than the spec, so as
minimal) also verifies, that is returned instead.

On mnist-256x4 label 4 (the COARSEN+focus+retry spec, 660 of 698 training 4s covered, 15 s a
call, ``benchmarks/nap_cover.py``): 7 inputs joined, 15 were proved impossible to add and 16
were UNKNOWN; the grown NAP covers 669 (95.85%). Coarsened again
(:class:`~relucid.spec.NapLearner` ``fit(start=...)``), it is |P| 420 at 95.99% / 94.37%
train / test coverage, against 416 at 94.56% / 93.66% before. With counterexamples replayed
and every input of the set as a hint, 26 of that spec's 28 left-out inputs are proved
impossible to add at 15 s a question (19 of 28 at 60 s without them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.errors import InputError
from relucid.network import ReluNetwork
from relucid.spec.nap import NapSpec
from relucid.spec.verdicts import nap_key
from relucid.verify.query import Status, Verifier, VerifyResult

Int8Array = NDArray[np.int8]
BoolArray = NDArray[np.bool_]


def finest_nap(net: ReluNetwork, X: ArrayLike) -> Int8Array:
    """The finest NAP that every row of ``X`` matches: a neuron is fixed active where all rows
    have ``z > 0``, inactive where all have ``z <= 0``, free elsewhere. Every NAP that all
    rows match is a coarsening of it."""
    xa = np.atleast_2d(np.asarray(X, dtype=np.float64))
    if xa.shape[0] == 0:
        raise InputError("the finest NAP of no inputs fixes nothing meaningful; give one or more")
    return _finest(np.concatenate(net.pre_activations(xa), axis=1) > 0)


def _finest(on: BoolArray) -> Int8Array:
    """:func:`finest_nap` from the rows' activation states (inputs x neurons, ``z > 0``)."""
    nap = np.full(on.shape[1], -1, dtype=np.int8)
    nap[on.all(axis=0)] = 1
    nap[(~on).all(axis=0)] = 0
    return nap


def _record(nap: Int8Array, res: VerifyResult) -> dict[str, Any]:
    """A verdict as a spec keeps it (as :meth:`VerdictCache.record` does)."""
    rec = {"nap_key": nap_key(nap), **res.to_dict()}
    rec.pop("counterexample", None)
    rec.pop("stats", None)
    return rec


@dataclass(frozen=True)
class CoverStep:
    """One left-out input's question: does a specification cover it with the set so far?

    ``index``: its row in the class's inputs; ``disagrees``: how many of the spec's fixed
    neurons it disagrees with; ``size``: |P| of the finest NAP asked; ``status``: that NAP's
    verdict (VERIFIED: the input joined; FALSIFIED: no specification covers it with the set;
    UNKNOWN: undecided); ``seconds``: the call's wall time; ``counterexample``: for
    FALSIFIED, the replayed input that every NAP covering the set with this input contains
    (not written to JSON).
    """

    index: int
    disagrees: int
    size: int
    status: Status
    seconds: float
    reason: str = ""
    counterexample: NDArray[np.float64] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "disagrees": self.disagrees,
            "size": self.size,
            "status": self.status.value,
            "seconds": round(self.seconds, 3),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class CoverReport:
    """What :func:`grow_coverage` found.

    ``spec``: the grown specification (VERIFIED, with its certificate in ``verdicts``), or
    ``None`` when no input joined. ``start`` / ``covered`` / ``total``: the class's inputs
    covered before, after (by the grown spec: the inputs that joined, and any undecided one
    that it matches anyway), and in all. ``steps``: one per left-out input, in the order asked.
    :attr:`kept`: the set the proofs speak about (the inputs covered before, and those that
    joined).
    """

    spec: NapSpec | None
    start: int
    covered: int
    total: int
    steps: list[CoverStep] = field(default_factory=list)
    seconds: float = 0.0
    coarse: str = "not tried"

    def count(self, status: Status) -> int:
        return sum(s.status is status for s in self.steps)

    def blockers(self) -> list[tuple[NDArray[np.float64], list[int]]]:
        """The distinct counterexamples behind the FALSIFIED steps, in the order found, each
        with the inputs (their ``index``) whose question it settled: one point in the input
        space often keeps many inputs out (on mnist-256x4 label 4, two of six settled 21 of the
        26 proofs)."""
        out: list[tuple[NDArray[np.float64], list[int]]] = []
        for step in self.steps:
            x = step.counterexample
            if step.status is not Status.FALSIFIED or x is None:
                continue
            for y, inputs in out:
                if np.array_equal(x, y):
                    inputs.append(step.index)
                    break
            else:
                out.append((x, [step.index]))
        return out

    @property
    def kept(self) -> int:
        """The inputs covered before, and those that joined (each VERIFIED step joins)."""
        return self.start + self.count(Status.VERIFIED)

    @property
    def at_most(self) -> int:
        """How many of the inputs a specification that covers the ``kept`` ones can cover:
        each FALSIFIED question proves one input out of reach of every such NAP."""
        return self.total - self.count(Status.FALSIFIED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_covered": self.start,
            "covered": self.covered,
            "inputs": self.total,
            "joined": self.count(Status.VERIFIED),
            "cannot_join": self.count(Status.FALSIFIED),
            "undecided": self.count(Status.UNKNOWN),
            "other": len(self.steps)
            - sum(self.count(s) for s in (Status.VERIFIED, Status.FALSIFIED, Status.UNKNOWN)),
            "kept": self.kept,
            "at_most": self.at_most,
            "counterexamples": len(self.blockers()),
            "size": None if self.spec is None else self.spec.size,
            "method": None if self.spec is None else self.spec.method,
            "coarse": self.coarse,
            "seconds": round(self.seconds, 3),
            "steps": [s.to_dict() for s in self.steps],
        }

    def __str__(self) -> str:
        pct = lambda k: f"{k / self.total:.2%}" if self.total else "n/a"  # noqa: E731
        grown = (
            "no input joined; the spec is unchanged"
            if self.spec is None
            else f"grown spec |P| = {self.spec.size} ({self.spec.method})"
        )
        return (
            f"covered {self.start} -> {self.covered} of {self.total} inputs "
            f"({pct(self.start)} -> {pct(self.covered)}); of {len(self.steps)} left out: "
            f"{self.count(Status.VERIFIED)} joined, {self.count(Status.FALSIFIED)} proved "
            f"impossible to cover with the rest (by {len(self.blockers())} counterexamples), "
            f"{self.count(Status.UNKNOWN)} undecided; "
            f"{grown}; {self.seconds:.1f} s. A specification that covers these {self.kept} "
            f"inputs covers at most {self.at_most} of the {self.total} ({pct(self.at_most)})"
        )


def grow_coverage(
    net: ReluNetwork,
    spec: NapSpec,
    X: ArrayLike,
    verifier: Verifier,
    timeout: float | None,
    *,
    limit: int | None = None,
    coarse: bool = True,
    on_step: Callable[[CoverStep, int], None] | None = None,
) -> CoverReport:
    """Ask, for each input of ``X`` (the class's inputs) that ``spec`` leaves out, whether a
    specification covers it together with the inputs covered so far (see the module notes).

    ``limit``: ask about at most this many left-out inputs (the fewest-disagreeing first).
    ``coarse``: at the end, also try the spec's own NAP with every neuron the grown set
    disagrees with freed (one more call); it is coarser than ``spec`` and returned when
    VERIFIED. ``on_step(step, covered)`` is called after each question.
    """
    spec.check(net)
    xa = np.atleast_2d(np.asarray(X, dtype=np.float64))
    t0 = time.perf_counter()
    inside = spec.contains(net, xa)
    if not inside.any():
        raise InputError(
            f"the spec covers none of the {xa.shape[0]} inputs given: nothing to grow from"
        )
    on = np.concatenate(net.pre_activations(xa), axis=1) > 0
    fixed = spec.nap >= 0
    disagrees = ((on != (spec.nap == 1)[None, :]) & fixed[None, :]).sum(axis=1)
    left = [int(i) for i in np.argsort(disagrees, kind="stable") if not inside[i]]
    if limit is not None:
        left = left[:limit]
    members = inside.copy()
    steps: list[CoverStep] = []
    best: tuple[Int8Array, VerifyResult] | None = None
    found: list[NDArray[np.float64]] = []  # the counterexamples so far, replayed on each NAP
    for i in left:
        trial = members.copy()
        trial[i] = True
        nap = _finest(on[trial])  # the states are computed once, not per question
        size = int((nap >= 0).sum())
        if best is not None and np.array_equal(nap, best[0]):
            # the grown NAP already matches this input: it joins under the same proof
            step = CoverStep(
                i, int(disagrees[i]), size, Status.VERIFIED, 0.0, "matches the grown NAP (no call)"
            )
        else:
            # Every input of the set is a hint: the verifier's attack starts from the ones
            # closest to a violation (on mnist-256x4 label 0 a counterexample that 16 hints
            # missed at 60 s came from the set's other inputs in 4.5 s).
            query = spec.with_nap(nap).query(net, xa[trial], max_hints=int(trial.sum()))
            t = time.perf_counter()
            old = next((x for x in found if query.violated_by(net, x)), None)
            if old is not None:
                step = CoverStep(
                    i,
                    int(disagrees[i]),
                    size,
                    Status.FALSIFIED,
                    time.perf_counter() - t,
                    "earlier counterexample (no call)",
                    old,
                )
            else:
                res = verifier.verify_nap(net, query, timeout)
                step = CoverStep(
                    i,
                    int(disagrees[i]),
                    size,
                    res.status,
                    time.perf_counter() - t,
                    res.reason,
                    res.counterexample,
                )
                if res.status is Status.VERIFIED:
                    best = (nap, res)
                elif res.status is Status.FALSIFIED and res.counterexample is not None:
                    found.append(res.counterexample)
        steps.append(step)
        if step.status is Status.VERIFIED:
            members = trial
        if on_step is not None:
            on_step(step, int(members.sum()))
    outcome = "not tried"
    grown: NapSpec | None = None
    if best is not None:
        nap, res = best
        method = f"{spec.method}+grow"
        if coarse:
            loose = spec.nap.copy()
            loose[(loose >= 0) & (loose != nap)] = -1
            tried = verifier.verify_nap(net, spec.with_nap(loose).query(net, xa[members]), timeout)
            outcome = tried.status.value
            if tried.status is Status.VERIFIED:
                nap, res, method = loose, tried, f"{spec.method}+grow+coarse"
        info = {
            key: value
            for key, value in spec.info.items()
            if key not in ("implied_steps", "trace")  # the certificate is the new verdict
        }
        info["grow"] = {
            "from_method": spec.method,
            "from_size": spec.size,
            "start_covered": int(inside.sum()),
            "covered": int(members.sum()),
            "inputs": int(xa.shape[0]),
            "timeout": timeout,
            "coarse": outcome,
        }
        grown = spec.with_nap(
            nap,
            method=method,
            info=info,
            verdicts=(*spec.verdicts, _record(nap, res)),
        )
    # an input asked early (UNKNOWN) may match the final NAP anyway: it is covered
    covered = int(members.sum() if grown is None else grown.contains(net, xa).sum())
    return CoverReport(
        grown,
        int(inside.sum()),
        covered,
        int(xa.shape[0]),
        steps,
        time.perf_counter() - t0,
        outcome,
    )
