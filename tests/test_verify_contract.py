"""One contract for every installed verifier backend (milp always; marabou with its extra).

Each backend must agree with exact region enumeration on small random networks (UNKNOWN is
allowed only as an honest timeout), replay every counterexample, and tell EMPTY from
VERIFIED. Where two backends are installed they must agree with each other wherever both
decide, on 200+ random NAP queries.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_verify_engine import balanced_net, exact_verdict, random_queries

from relucid.domain import Box
from relucid.verify import NapQuery, Status, available_backends, get_verifier, verify_many

BACKENDS = available_backends()
BOX3 = Box(-np.ones(3), np.ones(3))


def test_milp_is_always_available() -> None:
    assert BACKENDS[0] == "milp"


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_matches_exhaustive_enumeration(backend: str) -> None:
    verifier = get_verifier(backend)
    net = balanced_net([3, 4, 4, 3], start=7)
    for q in random_queries(net, BOX3, 30, 5):
        res = verifier.verify_nap(net, q, timeout=30)
        assert res.backend == backend
        if res.status is Status.UNKNOWN:
            continue
        assert res.status is exact_verdict(net, q), (q.to_dict(), res)
        if res.status is Status.FALSIFIED:
            assert res.counterexample is not None and q.violated_by(net, res.counterexample)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_reports_empty(backend: str) -> None:
    from relucid import ReluNetwork

    net = ReluNetwork(
        [[[1.0, 1.0, 0.0], [-1.0, -1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]],
        [[0.0, -0.5], [0.0, 0.0]],
    )
    res = get_verifier(backend).verify_nap(net, NapQuery([1, 1], 0, BOX3), timeout=30)
    assert res.status is Status.EMPTY


@pytest.mark.skipif(len(BACKENDS) < 2, reason="only one verifier backend is installed")
def test_backends_agree_on_random_nap_queries() -> None:
    verdicts: dict[str, list[Status]] = {}
    queries = []
    nets = [balanced_net([3, 5, 5, 3], start=100 + 40 * k) for k in range(8)]
    for k, net in enumerate(nets):
        queries += [(net, q) for q in random_queries(net, BOX3, 26, 50 + k)]
    assert len(queries) >= 200
    for name in BACKENDS:
        v = get_verifier(name)
        verdicts[name] = [v.verify_nap(net, q, timeout=30).status for net, q in queries]
    a, b = (verdicts[name] for name in BACKENDS[:2])
    both = [(x, y) for x, y in zip(a, b, strict=True) if x.decided and y.decided]
    assert len(both) >= 180
    assert all(x is y for x, y in both), [(x, y) for x, y in both if x is not y]


def test_process_pool_gives_the_same_verdicts() -> None:
    net = balanced_net([3, 4, 4, 3], start=7)
    queries = random_queries(net, BOX3, 12, 5)
    seen: list[int] = []
    pooled = verify_many(net, queries, timeout=30, workers=2, on_result=lambda i, r: seen.append(i))
    serial = verify_many(net, queries, timeout=30, workers=1)
    assert [r.status for r in pooled] == [r.status for r in serial]
    assert sorted(seen) == list(range(len(queries)))
