"""NAP learning passes and the verdict cache's time limits: speculation, focus and retry
limits, group COARSEN's block limit, and a resumed cache's verdicts in turn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_spec import _TwoAtATime, data

from relucid.errors import InputError
from relucid.spec import NapLearner, refined_nap
from relucid.spec.coarsen import agreement, retry_coarsen
from relucid.spec.verdicts import VerdictCache, nap_key
from relucid.verify import MilpVerifier, NapQuery, Status, VerifyResult


def _speculation_case(rng: np.random.Generator, ahead: int) -> None:
    """One random monotone oracle: a NAP fails once it frees two of the ``pair`` neurons,
    or any ``fatal`` neuron."""
    from relucid.spec.coarsen import coarsen

    n = 30
    nap = rng.integers(0, 2, n).astype(np.int8)
    nap[rng.random(n) < 0.2] = -1
    fatal = rng.random(n) < 0.15
    pair = rng.random(n) < 0.3
    order = [int(i) for i in rng.permutation(n)]

    def verdict(p: np.ndarray) -> Status:
        free = (p == -1) & (nap >= 0)
        bad = free[fatal].any() or free[pair].sum() >= 2
        return Status.FALSIFIED if bad else Status.VERIFIED

    serial_asked: list[bytes] = []

    def serial(p: np.ndarray) -> Status:
        serial_asked.append(p.tobytes())
        return verdict(p)

    want = coarsen(serial, nap, order)
    cache: dict[bytes, Status] = {}
    batches: list[int] = []
    late: list[bytes] = []

    def prefetch(naps: object) -> None:
        batch = list(naps)  # type: ignore[call-overload]
        batches.append(len(batch))
        for p in batch:
            cache[p.tobytes()] = verdict(p)

    def oracle(p: np.ndarray) -> Status:
        if p.tobytes() not in cache:
            late.append(p.tobytes())
            cache[p.tobytes()] = verdict(p)
        return cache[p.tobytes()]

    got = coarsen(oracle, nap, order, prefetch=prefetch, ahead=ahead)
    assert np.array_equal(got, want)
    assert set(serial_asked) <= set(cache)
    assert batches and max(batches) <= ahead
    # every serial step but at most the last was decided ahead, in a batch
    assert len(late) <= 1


@pytest.mark.parametrize("ahead", [2, 3, 5])
def test_speculative_coarsen_asks_the_serial_path(ahead: int) -> None:
    """Speculative COARSEN decides the serial algorithm's NAPs (and some wasted ones) and
    returns its result."""
    rng = np.random.default_rng(ahead)
    for _ in range(20):
        _speculation_case(rng, ahead)


def test_query_carries_the_inputs_that_obey_the_nap_as_hints() -> None:
    net, X, y = data()
    spec = refined_nap(net, X, y, 1, 0.95)
    inside = spec.contains(net, X)
    assert inside.any() and not inside.all()
    q = spec.query(net, X, max_hints=5)
    assert q.hints is not None and len(q.hints) == min(5, int(inside.sum()))
    assert spec.contains(net, q.hints).all() and q.obeys(net, q.hints).all()
    assert np.array_equal(q.nap, spec.nap) and q.label == 1
    assert spec.query(net, X[~inside]).hints is None and spec.query(net).hints is None
    res = MilpVerifier(seed=0).verify_nap(net, spec.query(net, X), 30)
    assert res.status is Status.VERIFIED


class Slow:
    """A verifier that needs ``need`` seconds for every NAP query but the start's: with less
    it answers UNKNOWN (a query too hard for the limit), with enough the MILP's verdict."""

    name = "milp"

    def __init__(self, need: float, start: np.ndarray) -> None:
        self.inner = MilpVerifier()
        self.need, self.start = need, start
        self.limits: list[float | None] = []

    def verify_nap(self, net, query, timeout=None):  # type: ignore[no-untyped-def]
        self.limits.append(timeout)
        easy = np.array_equal(query.nap, self.start)
        if not easy and timeout is not None and timeout < self.need:
            return VerifyResult(Status.UNKNOWN, self.name, float(timeout), "timeout")
        return self.inner.verify_nap(net, query, 30)

    def verify_property(self, net, prop, timeout=None):  # type: ignore[no-untyped-def]
        raise NotImplementedError


def test_cache_asks_an_unknown_again_only_with_more_time() -> None:
    net, X, y = data()
    label = 1
    start = refined_nap(net, X, y, label).nap
    trial = start.copy()
    trial[np.flatnonzero(start >= 0)[0]] = -1
    slow = Slow(5.0, start)
    cache = VerdictCache(net, label, net.domain, slow, 1.0)
    assert cache.result(trial)[0] is Status.UNKNOWN
    assert cache.result(trial)[0] is Status.UNKNOWN  # cached: the same limit
    assert cache.result(trial, 0.5)[0] is Status.UNKNOWN  # cached: less time
    assert slow.limits == [1.0]
    again = cache.result(trial, 10.0)[0]
    assert again is not Status.UNKNOWN and slow.limits == [1.0, 10.0]
    assert cache.verdicts[nap_key(trial)]["timeout"] == 10.0
    assert cache.result(trial, 100.0)[0] is again and len(slow.limits) == 2  # decided


def test_resumed_cache_serves_a_retried_naps_verdicts_in_turn(tmp_path: Path) -> None:
    """A NAP asked at 1 s (UNKNOWN), then at 10 s (decided): a run resumed from the
    checkpoint gets UNKNOWN at its first ask, as the killed run did, and the decided verdict
    at the second, without a call."""
    net, X, y = data()
    label = 1
    start = refined_nap(net, X, y, label).nap
    trial = start.copy()
    trial[np.flatnonzero(start >= 0)[0]] = -1
    ckpt = tmp_path / "ck.json"
    first = VerdictCache(net, label, net.domain, Slow(5.0, start), 1.0, checkpoint=ckpt)
    assert first.result(trial)[0] is Status.UNKNOWN
    decided = first.result(trial, 10.0)[0]
    assert decided is not Status.UNKNOWN and first.asked == 2 and first.calls == 2
    slow = Slow(5.0, start)
    again = VerdictCache(net, label, net.domain, slow, 1.0, checkpoint=ckpt)
    assert again.asked == 2
    assert again.result(trial)[0] is Status.UNKNOWN
    assert again.result(trial, 10.0)[0] is decided
    assert again.result(trial)[0] is decided  # served the latest from now on
    assert slow.limits == [] and again.calls == 0 and again.replayed == 3
    # one more ask at a longer limit than any verdict: decided, so no call
    assert again.result(trial, 50.0)[0] is decided and slow.limits == []


def test_focus_timeout_gives_low_agreement_neurons_the_time() -> None:
    net, X, y = data()
    label = 1
    start = refined_nap(net, X, y, label).nap
    plain = NapLearner("coarsen", timeout=1.0, verifier=Slow(5.0, start)).fit(net, X, y, label)
    assert plain.spec_.size == plain.refined_.size  # every call timed out
    slow = Slow(5.0, start)
    focused = NapLearner(
        "coarsen", timeout=1.0, focus_timeout=10.0, focus_agreement=1.0, verifier=slow
    ).fit(net, X, y, label)
    spec = focused.spec_
    share = agreement(net, focused.refined_.nap, X[y == label])
    low = {int(i) for i in np.flatnonzero((focused.refined_.nap >= 0) & (share < 1.0))}
    assert spec.info["focus_neurons"] == len(low) > 0
    # Only the calls that free a low-agreement neuron got the longer limit.
    assert slow.limits.count(10.0) == len(low)
    assert spec.size < plain.spec_.size
    assert spec.coverage(net, X[y == label]) > plain.spec_.coverage(net, X[y == label])
    assert (spec.nap[sorted(low)] == -1).any()
    fresh = MilpVerifier(seed=3).verify_nap(net, NapQuery(spec.nap, label, net.domain), 30)
    assert fresh.status is Status.VERIFIED
    # Group COARSEN gives the focus limit to those neurons' singleton blocks: with blocks
    # too short to decide anything, it asks COARSEN's singletons and finds the same NAP.
    group = NapLearner(
        "group",
        timeout=1.0,
        block_timeout=1.0,
        focus_timeout=10.0,
        focus_agreement=1.0,
        verifier=Slow(5.0, start),
    ).fit(net, X, y, label)
    assert np.array_equal(group.spec_.nap, spec.nap)
    assert group.spec_.info["focus_neurons"] == len(low)
    with pytest.raises(InputError):
        NapLearner("stochastic", focus_timeout=10.0)
    with pytest.raises(InputError):
        NapLearner("coarsen", block_timeout=1.0)


def test_retry_coarsen_asks_where_coverage_is_first() -> None:
    """Five fixed neurons, four inputs. Input 0 is kept out by neuron 3 alone, inputs 1
    and 2 by neuron 1 alone, input 3 by neurons 0 and 4 together. The oracle verifies any
    NAP that keeps neuron 2 fixed: the pass asks 1 (covers two), then 3 (one), then 0 and 4
    (each disagrees with one input; 0 first), and 2 (no input disagrees) last, and fails."""
    nap = np.array([1, 0, 1, 1, 0], dtype=np.int8)
    active = np.array(
        [
            [1, 0, 1, 0, 0],
            [1, 1, 1, 1, 0],
            [1, 1, 1, 1, 0],
            [0, 0, 1, 1, 1],
        ],
        dtype=bool,
    )
    asked: list[int] = []
    cur = [nap]

    def oracle(trial: np.ndarray) -> Status:
        (freed,) = np.flatnonzero((trial < 0) & (cur[0] >= 0))
        asked.append(int(freed))
        ok = trial[2] >= 0
        if ok:
            cur[0] = trial
        return Status.VERIFIED if ok else Status.FALSIFIED

    out = retry_coarsen(oracle, nap, [0, 1, 2, 3, 4], active)
    assert asked == [1, 3, 0, 4, 2]
    assert out.tolist() == [-1, -1, 1, -1, -1]
    # Neurons already free, or not candidates, are not asked.
    asked.clear()
    cur[0] = nap
    assert retry_coarsen(oracle, nap, [2, 3], active).tolist() == [1, 0, 1, -1, 0]
    assert asked == [3, 2]


def test_retry_timeout_frees_neurons_kept_after_a_timeout(tmp_path: Path) -> None:
    """Every query but the start's needs 5 s. The pass (1 s, 2 s for focus neurons) frees
    nothing; the retry at 10 s asks each focus neuron once more and frees some, to a NAP
    that a fresh verifier proves, with more coverage, and from which freeing any one more
    focus neuron fails. A rerun from the checkpoint calls nothing and ends the same."""
    net, X, y = data()
    label = 1
    start = refined_nap(net, X, y, label).nap
    kw: dict = dict(timeout=1.0, focus_timeout=2.0, focus_agreement=1.0)
    first = NapLearner("coarsen", **kw, verifier=Slow(5.0, start)).fit(net, X, y, label)
    assert first.spec_.size == first.refined_.size
    slow = Slow(5.0, start)
    ckpt = tmp_path / "retry.json"
    learner = NapLearner("coarsen", **kw, retry_timeout=10.0, verifier=slow, checkpoint=ckpt)
    spec = learner.fit(net, X, y, label).spec_
    share = agreement(net, learner.refined_.nap, X[y == label])
    low = [int(i) for i in np.flatnonzero((learner.refined_.nap >= 0) & (share < 1.0))]
    assert spec.info["retried"] == len(low) > 0
    assert spec.info["retry_freed"] == first.spec_.size - spec.size > 0
    # one 10 s call per focus neuron at most (a failed one may be answered by replay)
    assert 0 < slow.limits.count(10.0) <= len(low)
    assert set(slow.limits) <= {1.0, 2.0, 10.0}
    mine = X[y == label]
    assert spec.coverage(net, mine) > first.spec_.coverage(net, mine)
    checker = MilpVerifier(seed=5)
    assert checker.verify_nap(net, NapQuery(spec.nap, label, net.domain), 30).status is (
        Status.VERIFIED
    )
    for i in low:
        if spec.nap[i] >= 0:
            more = spec.nap.copy()
            more[i] = -1
            res = checker.verify_nap(net, NapQuery(more, label, net.domain), 30)
            assert res.status is not Status.VERIFIED, i
    again = NapLearner(
        "coarsen", **kw, retry_timeout=10.0, verifier=Slow(5.0, start), checkpoint=ckpt
    ).fit(net, X, y, label)
    assert again.calls_ == 0 and np.array_equal(again.spec_.nap, spec.nap)
    with pytest.raises(InputError):
        NapLearner("coarsen", timeout=5.0, focus_timeout=10.0, retry_timeout=10.0)
    with pytest.raises(InputError):
        NapLearner("stochastic", timeout=5.0, retry_timeout=10.0)
    with pytest.raises(InputError):
        NapLearner("coarsen", timeout=None, retry_timeout=10.0)


def test_group_block_timeout_keeps_coarsen_minimality() -> None:
    """Blocks get 1 s, too little for any query but the start's, so every block fails and
    only splits; singletons get 10 s. The neurons are then decided one at a time in COARSEN's
    order from the same NAPs: the result is COARSEN's at 10 s, and each kept neuron failed
    as a singleton at the full limit."""
    net, X, y = data()
    label = 1
    start = refined_nap(net, X, y, label).nap
    slow = Slow(5.0, start)
    group = NapLearner("group", timeout=10.0, block_timeout=1.0, verifier=slow)
    spec = group.fit(net, X, y, label).spec_
    assert spec.info["block_timeout"] == 1.0
    plain = NapLearner("coarsen", timeout=10.0, verifier=Slow(5.0, start)).fit(net, X, y, label)
    assert np.array_equal(spec.nap, plain.spec_.nap) and spec.size < group.refined_.size
    # No counterexample was replayed here, so each fixed neuron was asked once as a
    # singleton, at 10 s, besides the start (10 s too); every other call was a 1 s block.
    assert group.reused_ == 0
    assert slow.limits.count(10.0) == group.refined_.size + 1
    assert slow.limits.count(1.0) == len(slow.limits) - slow.limits.count(10.0) > 0
    fresh = MilpVerifier(seed=5)
    assert (
        fresh.verify_nap(net, NapQuery(spec.nap, label, net.domain), 30).status is Status.VERIFIED
    )
    for i in np.flatnonzero(spec.nap >= 0):
        coarser = spec.nap.copy()
        coarser[i] = -1
        res = fresh.verify_nap(net, NapQuery(coarser, label, net.domain), 30)
        assert res.status is Status.FALSIFIED, (i, res.status)


def test_group_prefetches_blocks_at_the_block_limit() -> None:
    """Through an executor, the two halves of a failed block are asked together at the
    block limit (a singleton half waits for its own limit), and the NAP is the serial one."""
    net, X, y = data()
    label = 1
    start = refined_nap(net, X, y, label).nap
    serial = NapLearner("group", timeout=10.0, block_timeout=1.0, verifier=Slow(5.0, start))
    serial.fit(net, X, y, label)
    here = _TwoAtATime()
    here.verifier = Slow(5.0, start)  # type: ignore[assignment]
    limits: list[float | None] = []
    real_map = here.map

    def map_(net_, queries, timeout):  # type: ignore[no-untyped-def]
        limits.append(timeout)
        return real_map(net_, queries, timeout)

    here.map = map_  # type: ignore[method-assign]
    pooled = NapLearner(
        "group", timeout=10.0, block_timeout=1.0, verifier=Slow(5.0, start), executor=here
    )
    pooled.fit(net, X, y, label)
    assert limits and set(limits) == {1.0} and max(here.batches) == 2
    assert np.array_equal(pooled.spec_.nap, serial.spec_.nap)


def _undecided_blocks_case(rng: np.random.Generator) -> None:
    """Blocks of two or more neurons are UNKNOWN (too hard for the limit); a singleton
    fails when it is ``fatal`` or a second ``pair`` neuron (a monotone verdict)."""
    from relucid.spec.passes import coarsen, group_coarsen

    n = int(rng.integers(2, 40))
    nap = rng.integers(0, 2, n).astype(np.int8)
    fatal = rng.random(n) < 0.3
    pair = rng.random(n) < 0.3
    order = [int(i) for i in rng.permutation(n)]
    asked: list[int] = []

    def oracle(p: np.ndarray) -> Status:
        free = p == -1
        asked.append(int(free.sum()))
        if int(free.sum() - (nap == -1).sum()) > 1:
            return Status.UNKNOWN
        bad = free[fatal].any() or free[pair].sum() >= 2
        return Status.FALSIFIED if bad else Status.VERIFIED

    want = coarsen(oracle, nap, order)
    for patience in (0, 3, None):
        asked.clear()
        got = group_coarsen(oracle, nap, order, patience=patience)
        assert np.array_equal(got, want), patience
        if patience == 0:  # the whole order's block, then each neuron once
            assert len(asked) == n + 1
        if patience is None:  # every block halves: a full binary tree over the order
            assert len(asked) == 2 * n - 1


def test_group_sends_undecided_blocks_to_their_singletons() -> None:
    """Once blocks keep timing out, an UNKNOWN block is decided one neuron at a time: the
    result is COARSEN's either way, and with patience 0 it costs one call per neuron (plus
    the first block) instead of the halving tree's 2n - 1."""
    rng = np.random.default_rng(3)
    for _ in range(30):
        _undecided_blocks_case(rng)


def test_group_still_halves_falsified_blocks() -> None:
    """A FALSIFIED block says which half to look in; the patience never applies to it."""
    from relucid.spec.passes import group_coarsen

    n = 16
    nap = np.zeros(n, dtype=np.int8)
    asked: list[int] = []

    def oracle(p: np.ndarray) -> Status:  # only neuron 5 must stay fixed
        asked.append(int((p == -1).sum()))
        return Status.FALSIFIED if p[5] == -1 else Status.VERIFIED

    got = [group_coarsen(oracle, nap, list(range(n)), patience=k) for k in (0, None)]
    assert np.array_equal(got[0], got[1]) and np.flatnonzero(got[0] >= 0).tolist() == [5]
    calls = len(asked) // 2
    assert asked[:calls] == asked[calls:] and calls < n


def test_verifier_options_reach_every_verifier_of_a_run() -> None:
    from relucid.spec.executor import make_executor

    net, X, y = data()
    learner = NapLearner("coarsen", timeout=30, verifier_options={"crown_share": 0.5})
    spec = learner.fit(net, X, y, 1).spec_
    # NapLearner's defaults for the milp backend, under the options given
    assert spec.info["verifier_options"] == {"crown_share": 0.5, "crown_fail_share": 0.3}
    assert NapLearner(verifier_options={"crown_fail_share": 1.0}).verifier_options == {
        "crown_fail_share": 1.0
    }
    assert NapLearner(verifier=MilpVerifier()).verifier_options == {}
    checker = MilpVerifier(seed=5)
    assert checker.verify_nap(net, NapQuery(spec.nap, 1, net.domain), 30).status is (
        Status.VERIFIED
    )
    serial = make_executor("serial", options={"crown_share": 0.5})
    assert serial.verifier.crown_share == 0.5  # type: ignore[attr-defined]
    pool = make_executor("process", workers=1, options={"crown_share": 0.5})
    assert pool.options == {"crown_share": 0.5}  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="not with verifier"):
        NapLearner(verifier=MilpVerifier(), verifier_options={"crown_share": 0.5})
    with pytest.raises(InputError, match="crown_share must lie"):
        NapLearner(verifier_options={"crown_share": 2.0}).fit(net, X, y, 1)
    with pytest.raises(InputError, match="does not take"):
        NapLearner(verifier_options={"crown_shar": 0.5}).fit(net, X, y, 1)
    with pytest.raises(InputError, match="block_patience"):
        NapLearner("group", block_patience=-1)
