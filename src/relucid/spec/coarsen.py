"""Coarsening a NAP to a minimal specification: the learner, resumable.

Paper: minimal-neural-specifications. :class:`NapLearner` starts from the most refined NAP,
proves it, and coarsens it with a pass of :mod:`relucid.spec.passes` (COARSEN, group
COARSEN, the retry pass, STOCHCOARSEN; their minimality is argued there) or with
OPTADVPRUNE (Algorithm 1, here). The verifier calls go through
:class:`~relucid.spec.verdicts.VerdictCache` (cached, checkpointed so a killed run resumes,
counterexamples reused, independent calls run together).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.domain import Box
from relucid.errors import InputError, RelucidError
from relucid.network import ReluNetwork
from relucid.spec.implied import drop_implied
from relucid.spec.nap import NapSpec, refined_nap
from relucid.spec.passes import coarsen, group_coarsen, retry_coarsen, stoch_coarsen
from relucid.spec.verdicts import OnCall, VerdictCache, nap_key
from relucid.verify.backends import get_verifier
from relucid.verify.query import NapQuery, Status, Verifier

if TYPE_CHECKING:
    from relucid.spec.executor import Executor

Int8Array = NDArray[np.int8]
FloatArray = NDArray[np.float64]

__all__ = [
    "METHODS",
    "NapLearner",
    "NotASpecificationError",
    "OnCall",
    "VerdictCache",
    "coarsen",
    "group_coarsen",
    "nap_key",
    "opt_adv_prune",
    "retry_coarsen",
    "stoch_coarsen",
]

Method = Literal["coarsen", "group", "stochastic", "optadvprune"]
METHODS: tuple[Method, ...] = ("coarsen", "group", "stochastic", "optadvprune")


class NotASpecificationError(RelucidError):
    """The NAP to start from is not proved to be a specification (the verdict says why)."""


def opt_adv_prune(
    oracle: VerdictCache,
    net: ReluNetwork,
    nap: Int8Array,
    X: ArrayLike,
    *,
    random_state: int = 0,
    max_rounds: int = 100,
    max_samplings: int = 8,
    noise: float = 0.1,
) -> tuple[Int8Array, int]:
    """OPTADVPRUNE (Algorithm 1), closed by counterexample-guided verification.

    An adversarial example ``x'`` (misclassified, in the domain) lies in no specification, so
    every fixed neuron of the refined NAP on which ``x'``'s pattern disagrees is (an upper
    bound of) essential: freeing all of them would take ``x'`` in. As in Algorithm 1, every
    input ``x_j`` of ``X`` is attacked: PGD started at it (the margin loss of
    :func:`~relucid.verify.pgd_attack`, each other class a target) and the Carlini-Wagner L2
    attack (:func:`~relucid.verify.attack.cw_attack`); the NAP keeps only the essential
    neurons. Then, as the paper's interactive variant ("sampling additional adversarial
    examples until verification is achieved"), we verify:

    * FALSIFIED: the counterexample is one more adversarial example; its disagreements are
      added;
    * UNKNOWN (a timeout): more adversarial examples are sampled, PGD from the inputs moved
      by uniform noise of up to ``noise`` of each feature's range (a new draw each time, at
      most ``max_samplings`` draws), until a draw adds a neuron.

    Until VERIFIED, every round fixes at least one more neuron and the refined NAP itself
    verifies, so this ends; when the samplings stop adding neurons before that, the refined
    NAP is returned. Returns the NAP and the number of adversarial examples used.
    """
    from relucid.verify.attack import cw_attack, pgd_attack

    ref = nap.copy()
    fixed = ref >= 0
    label, domain = oracle.label, oracle.domain
    query = NapQuery(ref, label, domain)
    terms = [(row[None, :], np.array([d])) for _, row, d in query.terms(net.output_dim)]
    xs = np.atleast_2d(np.asarray(X, np.float64))
    rng = np.random.default_rng(random_state)
    width = domain.hi - domain.lo

    def adversarial(starts: FloatArray, seed: int) -> FloatArray:
        att = pgd_attack(
            net, domain, terms, starts=starts, restarts=0, step=0.05, seed=seed, max_starts=None
        )
        cand = att.points[att.losses <= 0]
        if not cand.size:
            return np.zeros((0, net.input_dim))
        return np.asarray(cand[net.forward(cand).argmax(axis=1) != label])

    def disagree(points: FloatArray) -> NDArray[np.bool_]:
        if not points.size:
            return np.zeros(ref.size, dtype=bool)
        z = np.concatenate(net.pre_activations(np.atleast_2d(points)), axis=1) > 0
        return np.any(fixed & (z != (ref == 1)), axis=0)

    # Carlini-Wagner examples: the closest misclassified inputs to the class's inputs,
    # which cross the fewest neurons (the paper uses both attacks)
    cw = cw_attack(net, domain, label, xs)
    adv = np.concatenate([adversarial(xs, random_state), cw.reshape(-1, net.input_dim)])
    n_adv = int(adv.shape[0])
    essent = disagree(adv)
    samplings = 0
    for _ in range(max_rounds):
        cur = np.where(essent, ref, -1).astype(np.int8)
        status, cex = oracle.result(cur)
        if status is Status.VERIFIED:
            return cur, n_adv
        if status is Status.FALSIFIED and cex is not None:
            new = disagree(np.asarray(cex)) & ~essent
        else:  # no verdict: sample more adversarial examples until one adds a neuron
            new = np.zeros(ref.size, dtype=bool)
            while not new.any() and samplings < max_samplings:
                samplings += 1
                moved = xs + noise * width * rng.uniform(-1.0, 1.0, xs.shape)
                more = adversarial(np.clip(moved, domain.lo, domain.hi), random_state + samplings)
                n_adv += int(more.shape[0])
                new = disagree(more) & ~essent
        if not new.any():
            break
        essent |= new
    return ref, n_adv


def agreement(net: ReluNetwork, nap: Int8Array, X: FloatArray) -> FloatArray:
    """Per hidden neuron, the share of ``X`` whose state equals ``nap``'s (1 for a free one)."""
    z = np.concatenate(net.pre_activations(np.atleast_2d(X)), axis=1)
    same = (z > 0) == (nap == 1)
    return np.where(nap >= 0, same.mean(axis=0), 1.0)


#: The ``milp`` backend's options for NAP learning, unless ``verifier_options`` say otherwise.
#: ``crown_fail_share``: after a query its optimised bounds left open, they get at most 30%
#: of the next one's limit. On mnist-256x4 COARSEN with 15 s focus calls this verified 240 of
#: label 4's 273 focus calls against 227 without (coverage 85.8% -> 92.1%), 249 of label 0's
#: 276 against 246, where those bounds prove most queries, and 202 of label 1's 229 against
#: 186 (95.4% -> 97.2%).
MILP_DEFAULTS: dict[str, Any] = {"crown_fail_share": 0.3}

#: Group COARSEN's default ``block_patience`` (see :class:`NapLearner`).
BLOCK_PATIENCE = 8


def given_options(**options: Any) -> dict[str, Any]:
    """The options that were given (not None): a command line's ``verifier_options``."""
    return {k: v for k, v in options.items() if v is not None}


class NapLearner:
    """Learn a minimal NAP specification of one class (scikit-learn style).

    Parameters
    ----------
    method : ``"coarsen"`` (Algorithm 2), ``"group"`` (block-wise, same minimality) or
        ``"stochastic"`` (STOCHCOARSEN, Algorithm 3 with the adaptive theta: a verified NAP,
        usually not minimal, in few calls) or ``"optadvprune"`` (Algorithm 1: essential
        neurons from adversarial examples, then counterexample-guided verification).
    delta : the refined NAP's threshold (section 3).
    timeout : seconds per verifier call; UNKNOWN keeps a neuron fixed.
    focus_timeout, focus_agreement : COARSEN and group: seconds per call for freeing a
        neuron that fewer than ``focus_agreement`` of the class's inputs agree with. Keeping such a
        neuron costs coverage (each one excludes over 1 - focus_agreement of the inputs);
        keeping one they all agree with costs none. So the time goes where coverage is
        (mnist-256x4: COARSEN queries that time out at 5 s verify in 5-15 s). UNKNOWN still
        keeps the neuron; the result is minimal in the same sense. Group COARSEN gives it
        to such a neuron's singleton block.
    retry_timeout : COARSEN and group: after the pass, ask once more, with this many
        seconds, to free each neuron still fixed (only the ``focus_timeout`` neurons when
        that is given), the one that would cover the most still-uncovered inputs first
        (:func:`retry_coarsen`). A neuron kept after a timeout may go with more time; one
        that failed is answered from its counterexample without a call. Must exceed the
        limits of the pass.
    implied : after the method (and the retry pass), free every neuron whose state the
        rest of the NAP implies: its flipped region is empty by symbolic bounds, so the
        region, coverage and certificate are the same (:mod:`relucid.spec.implied`; the
        steps are kept in ``info["implied_steps"]`` and replayed by
        :func:`~relucid.spec.implied.verify_spec`).
    block_timeout : group only: seconds per call for a block of two or more neurons
        (default: ``timeout``). A failed block only splits, and a neuron stays fixed only
        when its singleton block fails at ``timeout`` (or ``focus_timeout``), so a short
        limit here keeps the minimality and saves the time of blocks that would time out.
    block_patience : group only: after this many UNKNOWN blocks in a row, an UNKNOWN block
        goes straight to its singletons instead of halving (default 8; ``None``: always
        halve). Its halves would mostly time out too; the singletons keep the minimality.
        On mnist-256x4 label 4 (group+focus, 1 s / 15 s, two runs side by side) patience 8
        took 848 calls against 1,514 halving, at 91.98% train coverage against 87.97%.
    start_timeout : seconds for the first call, the refined NAP's (default: ``timeout``).
        Without its VERIFIED there is nothing to coarsen, and on a large network it costs
        more than the calls after it (the verifier's model is built then).
    backend : verifier backend name (:func:`~relucid.verify.get_verifier`), or pass
        ``verifier`` directly.
    verifier_options : options for the ``backend``'s verifier, here and in every pooled
        worker, e.g. ``{"crown_share": 0.3}`` (:class:`~relucid.verify.MilpVerifier`), over
        :data:`MILP_DEFAULTS` for the ``milp`` backend. Not with ``verifier``, which is
        built already.
    order : neurons tried in flat index order (``"index"``), shuffled with ``random_state``
        (``"random"``), or by how often the class's inputs agree with the fixed state, least
        first (``"agreement"``): the neurons the data agrees with most are tried last, so a
        minimal NAP keeps them and covers more of the class (ties in index order).
    checkpoint : file that makes the run resumable (see the module notes).
    on_call : progress callback after every verifier call.
    executor : where independent verifier calls run together: ``"serial"`` (none run
        together), ``"process"`` (a pool of ``workers`` processes), ``"ray"`` (Ray actors;
        the optional extra; ``ray_address`` names a running cluster), or an
        :class:`~relucid.spec.executor.Executor`. STOCHCOARSEN then draws ``workers``
        samples per round.

    Attributes (after :meth:`fit`)
    ----------
    refined_ : the starting NAP (:class:`NapSpec`).
    spec_ : the learned NAP, with its VERIFIED certificate in ``verdicts`` (the verdict of
        the NAP before the implied pass, which has the same region).
    calls_ : verifier calls of this run; ``replayed_``: verdicts answered from the cache
        instead (from the checkpoint, or asked before in this run); ``reused_``: NAPs
        falsified by an earlier counterexample without a call.
    counts_ : verdicts by status over the whole run.
    seconds_ : wall time of :meth:`fit`.
    """

    def __init__(
        self,
        method: Method = "coarsen",
        *,
        delta: float = 0.95,
        timeout: float | None = 300.0,
        start_timeout: float | Literal["same"] | None = "same",
        focus_timeout: float | None = None,
        focus_agreement: float = 0.99,
        retry_timeout: float | None = None,
        implied: bool = True,
        block_timeout: float | Literal["same"] | None = "same",
        block_patience: int | None = BLOCK_PATIENCE,
        backend: str = "milp",
        verifier: Verifier | None = None,
        verifier_options: dict[str, Any] | None = None,
        order: Literal["index", "random", "agreement"] = "agreement",
        random_state: int = 0,
        checkpoint: str | Path | None = None,
        on_call: OnCall | None = None,
        executor: str | Executor = "serial",
        workers: int | None = None,
        ray_address: str | None = None,
    ) -> None:
        if method not in METHODS:
            raise InputError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        if order not in ("index", "random", "agreement"):
            raise InputError(f"unknown order {order!r}; choose from agreement, index, random")
        if isinstance(executor, str) and executor not in ("serial", "process", "ray"):
            raise InputError(f"unknown executor {executor!r}; choose from serial, process, ray")
        if focus_timeout is not None and method not in ("coarsen", "group"):
            raise InputError("focus_timeout applies to methods coarsen and group only")
        if retry_timeout is not None:
            if method not in ("coarsen", "group"):
                raise InputError("retry_timeout applies to methods coarsen and group only")
            longest = max(float("inf") if timeout is None else timeout, focus_timeout or 0.0)
            if not retry_timeout > longest:
                raise InputError(
                    f"retry_timeout ({retry_timeout} s) must exceed the pass's longest limit "
                    f"({longest} s): a retry with no more time would only repeat its verdicts"
                )
        if block_timeout != "same" and method != "group":
            raise InputError("block_timeout applies to method group only")
        if verifier is not None and verifier_options:
            raise InputError("verifier_options build the backend's verifier; not with verifier")
        if block_patience is not None and block_patience < 0:
            raise InputError(f"block_patience must be at least 0, got {block_patience}")
        if not 0.0 < focus_agreement <= 1.0:
            raise InputError(f"focus_agreement must lie in (0, 1], got {focus_agreement}")
        self.method = method
        self.delta = delta
        self.timeout = timeout
        self.focus_timeout = focus_timeout
        self.focus_agreement = focus_agreement
        self.retry_timeout = retry_timeout
        self.implied = implied
        self.block_timeout = block_timeout
        self.block_patience = block_patience
        self.start_timeout = start_timeout
        self.backend = backend
        self.verifier = verifier
        self.verifier_options = (
            {**MILP_DEFAULTS, **(verifier_options or {})}
            if backend == "milp" and verifier is None
            else dict(verifier_options or {})
        )
        self.order = order
        self.random_state = random_state
        self.checkpoint = checkpoint
        self.on_call = on_call
        self.executor = executor
        self.workers = workers
        self.ray_address = ray_address

    def fit(
        self,
        net: ReluNetwork,
        X: ArrayLike,
        y: ArrayLike,
        label: int,
        *,
        domain: Box | None = None,
        label_source: str = "dataset",
        start: NapSpec | None = None,
    ) -> NapLearner:
        """Learn class ``label``'s spec from the inputs ``X`` with labels ``y``.

        ``start``: coarsen this NAP of the class instead of the refined one, e.g. a spec
        grown by :func:`~relucid.spec.cover.grow_coverage` (finer than needed, covering more
        inputs): the result keeps every input it covers and is minimal in the same sense.
        The domain is then the start's (``domain`` and ``delta`` are not used).
        """
        t0 = time.perf_counter()
        if start is None:
            refined = refined_nap(
                net, X, y, label, self.delta, domain=domain, label_source=label_source
            )
        else:
            start.check(net)
            if domain is not None:
                raise InputError("a start NAP brings its own domain; give no domain with it")
            if start.label != label:
                raise InputError(f"the start NAP is of class {start.label}, not {label}")
            kept = ("delta", "inputs", "labels", "hidden_sizes")
            refined = start.with_nap(
                start.nap,
                method="start",
                info={
                    **{k: v for k, v in start.info.items() if k in kept},
                    "start_method": start.method,
                },
                verdicts=(),
            )
        self.refined_ = refined
        xa = np.atleast_2d(np.asarray(X, dtype=np.float64))
        ya = np.asarray(y).reshape(-1)
        verifier = self.verifier or get_verifier(self.backend, **self.verifier_options)
        from relucid.spec.executor import make_executor

        own = isinstance(self.executor, str)
        executor = (
            make_executor(
                self.executor,  # type: ignore[arg-type]
                verifier=verifier,
                backend=self.backend,
                workers=self.workers,
                address=self.ray_address,
                options=self.verifier_options,
            )
            if own
            else self.executor
        )
        try:
            return self._fit(net, xa, ya, label, refined, verifier, executor, t0)  # type: ignore[arg-type]
        finally:
            if own:
                executor.close()  # type: ignore[union-attr]

    def _focus_oracle(self, oracle: VerdictCache) -> Callable[[Int8Array], Status] | None:
        focus_timeout = self.focus_timeout
        if focus_timeout is None:
            return None
        return lambda p: oracle.result(p, focus_timeout)[0]

    def _fit(
        self,
        net: ReluNetwork,
        xa: FloatArray,
        ya: NDArray[Any],
        label: int,
        refined: NapSpec,
        verifier: Verifier,
        executor: Executor,
        t0: float,
    ) -> NapLearner:
        members = refined.query(net, xa[ya == label]).hints  # witnesses for every query
        oracle = VerdictCache(
            net,
            label,
            refined.domain,
            verifier,
            self.timeout,
            hints=members,
            checkpoint=self.checkpoint,
            tag={"method": self.method, "start": nap_key(refined.nap)},
            on_call=self.on_call,
            executor=executor,
        )
        start, _ = oracle.result(refined.nap, self.start_timeout)
        if start is not Status.VERIFIED:
            hint = " (give its call more time: start_timeout)" if start is Status.UNKNOWN else ""
            raise NotASpecificationError(
                f"the {'refined' if refined.method == 'refined' else 'start'} NAP of class "
                f"{label} (delta {self.delta}, |P| = {refined.size}) "
                f"is {start.value}, not verified: no specification to coarsen{hint}"
            )
        fixed = np.flatnonzero(refined.nap >= 0)
        share = agreement(net, refined.nap, xa[ya == label])
        if self.order == "random":
            fixed = np.random.default_rng(self.random_state).permutation(fixed)
        elif self.order == "agreement":
            fixed = fixed[np.argsort(share[fixed], kind="stable")]
        order = [int(i) for i in fixed]
        extra: dict[str, Any] = {}
        if self.verifier_options:
            extra["verifier_options"] = self.verifier_options
        focus: set[int] = set()
        if self.focus_timeout is not None:
            focus = {i for i in order if share[i] < self.focus_agreement}
            extra |= {
                "focus_timeout": self.focus_timeout,
                "focus_agreement": self.focus_agreement,
                "focus_neurons": len(focus),
            }
        if self.method == "optadvprune":
            final, n_adv = opt_adv_prune(
                oracle, net, refined.nap, xa[ya == label], random_state=self.random_state
            )
            extra["adversarial_examples"] = n_adv
        elif self.method == "stochastic":
            final = stoch_coarsen(
                oracle,
                refined.nap,
                order,
                random_state=self.random_state,
                batch=executor.workers,
                prefetch=oracle.prefetch,
            )
        elif self.method == "group":
            block_timeout = self.block_timeout
            if block_timeout != "same":
                extra["block_timeout"] = block_timeout
            extra["block_patience"] = self.block_patience
            final = group_coarsen(
                oracle,
                refined.nap,
                order,
                prefetch=lambda naps: oracle.prefetch(naps, block_timeout),
                block_oracle=None
                if block_timeout == "same"
                else (lambda p: oracle.result(p, block_timeout)[0]),
                focus=focus,
                focus_oracle=self._focus_oracle(oracle),
                patience=self.block_patience,
            )
        else:
            final = coarsen(
                oracle,
                refined.nap,
                order,
                prefetch=oracle.prefetch,
                ahead=executor.workers,
                focus=focus,
                focus_oracle=self._focus_oracle(oracle),
            )
        retry_timeout = self.retry_timeout
        if retry_timeout is not None:  # validated: coarsen or group
            candidates = [i for i in order if final[i] >= 0 and (not focus or i in focus)]
            before = int((final >= 0).sum())
            z = np.concatenate(net.pre_activations(xa[ya == label]), axis=1)
            final = retry_coarsen(
                lambda p: oracle.result(p, retry_timeout)[0], final, candidates, z > 0
            )
            extra |= {
                "retry_timeout": retry_timeout,
                "retried": len(candidates),
                "retry_freed": before - int((final >= 0).sum()),
            }
        base = final
        if self.implied:
            dropped = drop_implied(net, refined.domain, final)
            final = dropped.nap
            extra |= {
                "size_before_implied": int((base >= 0).sum()),
                "implied_freed": len(dropped.steps),
                "implied_seconds": round(dropped.seconds, 3),
                "implied_steps": [list(step) for step in dropped.steps],
            }
        self.calls_ = oracle.calls
        self.replayed_ = oracle.replayed
        self.reused_ = oracle.reused
        self.counts_ = oracle.counts()
        self.seconds_ = time.perf_counter() - t0
        self.spec_ = refined.with_nap(
            final,
            method=self.method,
            info={
                **refined.info,
                "start_size": refined.size,
                "verifier_calls": oracle.asked,
                "verdicts": self.counts_,
                "timeout": self.timeout,
                "backend": verifier.name,
                "executor": executor.name,
                "workers": executor.workers,
                "reused_counterexamples": oracle.reused,
                "order": self.order,
                "seconds": round(self.seconds_, 3),
                **extra,
                "trace": oracle.trace_columns(),
            },
            verdicts=(oracle.record(refined.nap), oracle.record(base)),
        )
        return self
