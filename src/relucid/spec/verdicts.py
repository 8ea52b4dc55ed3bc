"""Verifier calls for NAP learning: cached by NAP, checkpointed, counterexamples reused.

**Resumable.** Every verdict is cached by its NAP and written to the checkpoint file (atomic
replace) after each call. The algorithms are deterministic given the verdicts, so a killed run
restarted with the same checkpoint replays the cached verdicts without calling the verifier
and continues where it stopped, to the same result.

A NAP may be asked again with more time (an UNKNOWN retried at a longer limit), so it can
have several verdicts; the checkpoint keeps them all, in order (``earlier``), and a resumed
run is served each in its turn: the NAP's first ask gets the first verdict, as the killed run
did, even when a later, longer call of the same NAP verified it. Served the latest instead,
a resumed COARSEN would free a neuron at the ask where the killed run kept it, and go
another way.

**Counterexamples are reused.** A NAP coarser than a falsified one is falsified by the same
input; before calling the verifier, the cache replays every counterexample it holds against
the new NAP (a forward pass) and answers FALSIFIED, without a call, when one obeys it.

**Parallel calls.** Where the algorithm has independent queries (the samples of one
STOCHCOARSEN round, the two halves of a failed block), they go to an executor
(:mod:`relucid.spec.executor`: a process pool or Ray) together; the verdicts are cached like
any other, so the result does not depend on where they ran.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.domain import Box
from relucid.errors import InputError
from relucid.network import ReluNetwork
from relucid.verify.query import NapQuery, Status, Verifier, VerifyResult

if TYPE_CHECKING:
    from relucid.spec.executor import Executor

Int8Array = NDArray[np.int8]
FloatArray = NDArray[np.float64]

#: on_call(calls, size, status): after every verifier call (progress bars).
OnCall = Callable[[int, int, Status], None]


def nap_key(nap: Int8Array) -> str:
    """A readable key of a NAP: ``+`` active, ``0`` inactive, ``.`` free, per neuron."""
    return "".join("+" if v == 1 else "0" if v == 0 else "." for v in nap.tolist())


def nap_from_key(key: str) -> Int8Array:
    """The NAP of a :func:`nap_key` (its inverse)."""
    return np.array([1 if ch == "+" else 0 if ch == "0" else -1 for ch in key], np.int8)


class VerdictCache:
    """Verifier calls for one (network, class, domain), cached and checkpointed.

    Parameters
    ----------
    net, label, domain : what every query is about.
    verifier, timeout : the backend and its seconds per query.
    hints : inputs known to obey the starting NAP (they obey every coarser one), passed
        to the verifier as attack starts and non-emptiness witnesses.
    checkpoint : JSON file rewritten after every call, read back when it exists.
    tag : what the checkpoint must have been written for (method, start NAP); a file
        written for something else is refused rather than mixed in.
    """

    def __init__(
        self,
        net: ReluNetwork,
        label: int,
        domain: Box,
        verifier: Verifier,
        timeout: float | None,
        *,
        hints: ArrayLike | None = None,
        checkpoint: str | Path | None = None,
        tag: dict[str, Any] | None = None,
        on_call: OnCall | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.net, self.label, self.domain = net, int(label), domain
        self.executor = executor
        self.verifier, self.timeout = verifier, timeout
        self.hints = None if hints is None else np.atleast_2d(np.asarray(hints, np.float64))
        self.path = None if checkpoint is None else Path(checkpoint)
        self.tag = {"fingerprint": net.fingerprint(), "label": self.label, **(tag or {})}
        self.on_call = on_call
        self.verdicts: dict[str, dict[str, Any]] = {}  # each NAP's latest verdict
        # every verdict of each NAP in order (the latest last), and how many of them this
        # run has been served or made (the rest are the killed run's, still to replay)
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._live: dict[str, int] = {}
        self.calls = 0  # verifier calls made by this run
        self.replayed = 0  # verdicts answered from the cache (checkpoint or this run)
        self.reused = 0  # FALSIFIED by an earlier query's counterexample, without a call
        self.seconds = 0.0
        # every verdict in the order the run got it, resumed ones included: (|P| of the NAP
        # asked, status, seconds, time limit); one entry per verdict counted by ``asked``
        self.trace: list[tuple[int, str, float, float | None]] = []
        self._cex: list[FloatArray] = []
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read the checkpoint {self.path}: {exc}") from exc
        if data.get("tag") != json.loads(json.dumps(self.tag)):
            raise InputError(
                f"the checkpoint {self.path} was written for another run "
                f"({data.get('tag')}); remove it or name another file"
            )
        for key, v in dict(data.get("verdicts", {})).items():
            latest = dict(v)
            earlier = latest.pop("earlier", [])
            self._history[key] = [*earlier, latest]
            self.verdicts[key] = latest
        self._cex = [
            np.asarray(v["counterexample"], np.float64)
            for h in self._history.values()
            for v in h
            if v.get("counterexample") is not None
        ]

    def _save(self) -> None:
        if self.path is None:
            return
        verdicts = {
            key: {**h[-1], "earlier": h[:-1]} if len(h) > 1 else h[-1]
            for key, h in self._history.items()
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"tag": self.tag, "verdicts": verdicts}))
        os.replace(tmp, self.path)

    @property
    def asked(self) -> int:
        """Verdicts over the whole run, resumed parts included (a NAP asked again with more
        time counts each time; a replayed counterexample counts too)."""
        return sum(len(h) for h in self._history.values())

    def _served(self, key: str, limit: float | None) -> dict[str, Any] | None:
        """The cached verdict that answers ``key`` at ``limit``, or None when the verifier
        must be asked. The latest verdict served so far answers unless it is an UNKNOWN
        given less time; otherwise the next verdict of the checkpoint is served (the one
        the killed run got at this ask)."""
        hist = self._history.get(key, [])
        seen = self._live.get(key, 0)
        if seen:
            last = hist[seen - 1]
            before = self._limit(last)
            if not (last["status"] == Status.UNKNOWN.value and _longer(limit, before)):
                return last
        if seen < len(hist):
            self._live[key] = seen + 1
            self._trace(key, hist[seen])
            return hist[seen]
        return None

    def _limit(self, verdict: dict[str, Any]) -> Any:
        """The time limit a verdict was given (one recorded without it, from an older
        checkpoint, counts as given the run's own)."""
        return verdict["timeout"] if "timeout" in verdict else self.timeout

    def _trace(self, key: str, verdict: dict[str, Any]) -> None:
        size = len(key) - key.count(".")
        entry = (size, verdict["status"], float(verdict["seconds"]), self._limit(verdict))
        self.trace.append(entry)

    def trace_columns(self) -> dict[str, list[Any]]:
        """:attr:`trace` as columns (``size``, ``status``, ``seconds``, ``timeout``), the
        form a spec keeps it in (``info["trace"]``, drawn by :func:`~relucid.spec.plot_nap`)."""
        cols: tuple[list[Any], ...] = ([], [], [], [])
        for entry in self.trace:
            for col, v in zip(cols, entry, strict=True):
                col.append(v)
        return dict(zip(("size", "status", "seconds", "timeout"), cols, strict=True))

    def __call__(self, nap: Int8Array) -> Status:
        return self.result(nap)[0]

    def _query(self, nap: Int8Array) -> NapQuery:
        return NapQuery(nap, self.label, self.domain, hints=self.hints)

    def _known_counterexample(self, nap: Int8Array) -> FloatArray | None:
        """A counterexample of an earlier query that this NAP's query admits too (the
        replay: it obeys this NAP and is misclassified), or None. Freeing neurons only
        enlarges the set of inputs that obey a NAP, so every NAP coarser than a falsified
        one is answered here without a verifier call."""
        if not self._cex:
            return None
        X = np.vstack(self._cex)
        q = self._query(nap)
        bad = q.obeys(self.net, X) & q.misclassified(self.net.forward(X))
        hit = np.flatnonzero(bad)
        return X[hit[0]] if hit.size else None

    def _record(self, nap: Int8Array, res: VerifyResult, timeout: float | None) -> None:
        key = nap_key(nap)
        self.verdicts[key] = {
            "status": res.status.value,
            "seconds": round(res.seconds, 4),
            "timeout": timeout,
            "reason": res.reason,
            "size": int((nap >= 0).sum()),
            "backend": res.backend,
            "counterexample": None if res.counterexample is None else res.counterexample.tolist(),
            # which stages settled it (e.g. terms_by_crown, lp_terms, milp_solves): a verdict
            # that a fresh check cannot repeat can be traced to the stage that gave it
            "stats": {k: round(float(v), 4) for k, v in res.stats.items()},
        }
        hist = self._history.setdefault(key, [])
        hist.append(self.verdicts[key])
        self._live[key] = len(hist)
        self._trace(key, self.verdicts[key])
        if res.counterexample is not None:
            self._cex.append(np.asarray(res.counterexample, np.float64))
        self._save()
        if self.on_call is not None:
            self.on_call(len(self.verdicts), int((nap >= 0).sum()), res.status)

    def _reuse(self, nap: Int8Array) -> bool:
        cex = self._known_counterexample(nap)
        if cex is None:
            return False
        self.reused += 1
        reason = "a counterexample found for an earlier query obeys this NAP (replayed)"
        self._record(nap, VerifyResult(Status.FALSIFIED, "replay", 0.0, reason, cex), None)
        return True

    def result(
        self, nap: Int8Array, timeout: float | Literal["same"] | None = "same"
    ) -> tuple[Status, FloatArray | None]:
        """The verdict of ``nap`` and, when FALSIFIED, its (replayed) counterexample;
        ``timeout`` overrides the run's limit for this call. A cached UNKNOWN is asked
        again when this call allows more time than the one that gave it (None: no limit)."""
        key = nap_key(nap)
        limit = self.timeout if timeout == "same" else timeout
        hit = self._served(key, limit)
        if hit is not None:
            self.replayed += 1
        elif self._reuse(nap):
            hit = self.verdicts[key]
        if hit is not None:
            cex = hit.get("counterexample")
            return Status(hit["status"]), None if cex is None else np.asarray(cex, np.float64)
        res = self.verifier.verify_nap(self.net, self._query(nap), limit)
        self.calls += 1
        self.seconds += res.seconds
        self._record(nap, res, limit)
        return res.status, res.counterexample

    def prefetch(
        self, naps: Sequence[Int8Array], timeout: float | Literal["same"] | None = "same"
    ) -> None:
        """Decide these NAPs' queries at once through the executor (when it has several
        workers), so that later :meth:`result` calls with the same ``timeout`` find them
        cached. A cached UNKNOWN is asked again when ``timeout`` allows more time."""
        if self.executor is None or self.executor.workers <= 1:
            return
        limit = self.timeout if timeout == "same" else timeout
        todo: dict[str, Int8Array] = {}
        for nap in naps:
            key = nap_key(nap)
            if key in todo:
                continue
            if self._served(key, limit) is None and not self._reuse(nap):
                todo[key] = nap
        if len(todo) < 2:
            return
        results = self.executor.map(self.net, [self._query(n) for n in todo.values()], limit)
        for nap, res in zip(todo.values(), results, strict=True):
            self.calls += 1
            self.seconds += res.seconds
            self._record(nap, res, limit)

    def record(self, nap: Int8Array) -> dict[str, Any]:
        """The cached verdict of ``nap`` with the NAP itself (for a spec's provenance)."""
        rec = {"nap_key": nap_key(nap), **self.verdicts[nap_key(nap)]}
        rec.pop("counterexample", None)
        rec.pop("stats", None)
        return rec

    def counts(self) -> dict[str, int]:
        """Verdicts by status over the whole run (a NAP asked again counts each time)."""
        out = {s.value: 0 for s in Status}
        for h in self._history.values():
            for v in h:
                out[v["status"]] += 1
        return out


def _longer(limit: float | None, before: Any) -> bool:
    """Whether ``limit`` allows more time than ``before`` (None: no limit)."""
    if before is None:
        return False
    return limit is None or float(limit) > float(before)
