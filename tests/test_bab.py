"""Branch and bound on hidden neurons (:mod:`relucid.verify.bab`) is sound and closes gaps.

Oracle, independent of the bounds: the exact minimum of a term's row over the patterns a NAP
allows (one scipy LP per pattern, ``brute_force_max``). A term set just below that minimum
is impossible; one set just above it is possible, and branch and bound must never call it
impossible.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_crown import random_nap
from test_milp import brute_force_max, tiny_net

from relucid.verify import MilpVerifier, NapQuery, Status, symbolic_bounds
from relucid.verify.bab import bab_terms
from relucid.verify.crown import CrownBounds, CrownConfig
from relucid.verify.tightening import crown_terms

CASES = (
    st.integers(0, 10_000),
    st.integers(2, 4),
    st.lists(st.integers(3, 6), min_size=2, max_size=2),
    st.integers(0, 2**31 - 1),
)


@settings(max_examples=25, deadline=None)
@given(*CASES)
def test_bab_settles_only_impossible_terms(
    seed: int, n_in: int, hidden: list[int], nap_seed: int
) -> None:
    net = tiny_net(seed, n_in, tuple(hidden), 3)
    box = net.domain
    assert box is not None
    rng = np.random.default_rng(nap_seed)
    nap = random_nap(net, box, rng)
    bounds = symbolic_bounds(net, box, nap)
    row = np.array([1.0, -1.0, 0.0])
    exact = -brute_force_max(net, box, -row, nap)  # min of y_0 - y_1 over the region
    crown = CrownBounds(net, box, config=CrownConfig(output_iterations=50))
    gap = 0.05 * (1.0 + abs(exact))
    cs = [row[None, :], row[None, :]]
    ds = [np.array([exact - gap]), np.array([exact + gap])]  # impossible, possible
    out = bab_terms(crown, nap, bounds, cs, ds, [0, 1], None, max_domains=300, iterations=30)
    assert 1 in out.open_terms, "a possible term was called impossible"
    assert out.status != "verified"


def test_bab_falsifies_through_the_replay() -> None:
    net = tiny_net(7, 3, (5, 5), 3)
    box = net.domain
    assert box is not None
    nap = np.full(net.num_hidden, -1, np.int8)
    bounds = symbolic_bounds(net, box, nap)
    X = np.random.default_rng(0).uniform(box.lo, box.hi, (4000, 3))
    y = net.forward(X)
    row = np.array([1.0, -1.0, 0.0])
    low = float((y @ row).min())  # some input reaches it: the term y0 - y1 <= low + 0.1
    crown = CrownBounds(net, box, config=CrownConfig(output_iterations=50))
    calls: list[np.ndarray] = []

    def replay(x: np.ndarray, t: int) -> bool:
        calls.append(x)
        return bool(net.forward(x[None, :])[0] @ row <= low + 0.1)

    out = bab_terms(
        crown, nap, bounds, [row[None, :]], [np.array([low + 0.1])], [0], None, replay=replay
    )
    assert out.status == "falsified" and out.x is not None and out.term == 0
    assert net.forward(out.x[None, :])[0] @ row <= low + 0.1
    assert box.contains(out.x[None, :]).all()


def test_bab_closes_terms_the_root_bound_leaves_open() -> None:
    """On small networks the optimised bound of the whole region often fails where the
    pieces' bounds succeed; every term branch and bound settles is one the MILP verifies."""
    settled = 0
    for seed in range(40):
        net = tiny_net(seed, 4, (8, 8), 3)
        box = net.domain
        assert box is not None
        rng = np.random.default_rng(seed)
        nap = random_nap(net, box, rng)
        x = rng.uniform(box.lo, box.hi)
        label = int(net.forward(x[None, :])[0].argmax())
        bounds = symbolic_bounds(net, box, nap)
        q = NapQuery(nap, label, box)
        terms = q.terms(net.output_dim)
        cs = [row[None, :] for _, row, _ in terms]
        ds = [np.array([d]) for _, _, d in terms]
        crown = CrownBounds(net, box)
        left = crown_terms(crown, nap, bounds, cs, ds, list(range(len(cs))), None)
        if not left:
            continue
        out = bab_terms(crown, nap, bounds, cs, ds, left, None, max_domains=500)
        if out.status == "verified":
            settled += 1
            res = MilpVerifier(crown=False).verify_nap(net, q, 30)
            assert res.status in (Status.VERIFIED, Status.EMPTY), (seed, res)
    assert settled >= 1  # 2 of the 40 seeds at the time of writing
