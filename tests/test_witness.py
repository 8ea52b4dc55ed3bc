"""Witnesses of irredundancy, the subspace relaxation and the LP layer's guards.

Every certificate the fast paths issue is re-checked here with ``scipy.optimize.linprog``:
a row certified irredundant must be irredundant, a row removed by the subspace relaxation
must be implied by the kept rows, and the hinted reduction must equal the plain one.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from relucid import Box, LinearProgram, ReluNetwork, irredundant_rows, region
from relucid.polytope import SupportLP, _bounding_box, chebyshev_ball, normalize
from relucid.witness import Rows, VertexCertifier, axis_reach, ray_certify

from test_polytope import assert_reduction_exact, lp_max, random_polytope

TOL = 1e-7


def irredundant_by_scipy(a: np.ndarray, b: np.ndarray, i: int) -> bool:
    others = np.delete(np.arange(a.shape[0]), i)
    rows = np.vstack([a[others], a[i]])
    val, _ = lp_max(a[i], rows, np.r_[b[others], b[i] + 1.0])
    return val > b[i] + TOL * (1 + abs(b[i]))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_gram_skips_axis_rows_but_equals_the_dense_product(n: int, m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    dense = rng.normal(size=(m, n))
    axis = np.eye(n)[rng.integers(0, n, size=m)] * rng.choice([-1.0, 1.0], size=(m, 1))
    a = np.vstack([dense, axis])[rng.permutation(2 * m)]
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    rows = Rows(a)
    i = rng.permutation(2 * m)[: m + 1]
    j = rng.permutation(2 * m)[:m]
    np.testing.assert_allclose(rows.gram(i, j), a[i] @ a[j].T, atol=1e-14)


@settings(max_examples=30, deadline=None)
@given(random_polytope())
def test_ray_and_vertex_witnesses_certify_only_irredundant_rows(
    poly: tuple[np.ndarray, np.ndarray],
) -> None:
    a, b, _ = normalize(*poly)
    ball = chebyshev_ball(a, b)
    rows = Rows(a)
    certified = ray_certify(rows, b, ball.centre[None, :], np.arange(a.shape[0]), TOL)
    model = SupportLP(a, b)
    visited: list[np.ndarray] = []
    _bounding_box(a, b, model=model, visited=visited)
    cert = VertexCertifier(rows, b, ball.centre, TOL)
    by_vertex = np.zeros(a.shape[0], dtype=bool)
    for v in visited:
        by_vertex[cert.certify(v, np.ones(a.shape[0], dtype=bool))] = True
    # A raised row: the vertex of the relaxed system certifies its other tight rows.
    k = int(np.argmin(b - a @ ball.centre))
    raised = b.copy()
    raised[k] += 1e-5
    model.set_offset(k, raised[k])
    model.support(a[k])
    p = model.point()
    p = p if (a @ p - raised).max() <= (-a @ p - raised).max() else -p
    by_vertex[cert.certify(p, np.ones(a.shape[0], dtype=bool), b_eff=raised)] = True
    for i in np.flatnonzero(certified | by_vertex):
        assert irredundant_by_scipy(a, b, int(i)), f"row {i} certified but redundant"


@settings(max_examples=30, deadline=None)
@given(random_polytope())
def test_axis_reach_stays_inside_the_bounding_box(poly: tuple[np.ndarray, np.ndarray]) -> None:
    a, b, _ = normalize(*poly)
    ball = chebyshev_ball(a, b)
    lo, hi = axis_reach(a, b, ball.centre[None, :])
    for j in range(a.shape[1]):
        e = np.eye(a.shape[1])[j]
        assert hi[j] <= lp_max(e, a, b)[0] + 1e-9
        assert lo[j] >= -lp_max(-e, a, b)[0] - 1e-9
        assert lo[j] <= ball.centre[j] <= hi[j]


def narrow_net(seed: int, n_in: int, first: int, deeper: tuple[int, ...]) -> ReluNetwork:
    """A wide input and a narrow first layer: every deeper row lies in a small subspace."""
    rng = np.random.default_rng(seed)
    sizes = [n_in, first, *deeper, 3]
    ws = [
        rng.normal(size=(sizes[k + 1], sizes[k])) / np.sqrt(sizes[k]) for k in range(len(sizes) - 1)
    ]
    bs = [rng.normal(size=sizes[k + 1]) * 0.3 for k in range(len(sizes) - 1)]
    return ReluNetwork(ws, bs, domain=Box(-np.ones(n_in), np.ones(n_in)))


@settings(max_examples=20, deadline=None)
@given(
    st.integers(0, 10_000),
    st.integers(8, 24),
    st.integers(2, 4),
    st.lists(st.integers(3, 10), min_size=1, max_size=3),
)
def test_hints_change_nothing_but_speed(
    seed: int, n_in: int, first: int, deeper: list[int]
) -> None:
    net = narrow_net(seed, n_in, first, tuple(deeper))
    x = np.random.default_rng(seed + 1).uniform(-1, 1, n_in)
    pattern = net.patterns(x)[0]
    c = int(np.argmax(net.forward(x)))
    poly, _ = region(net, pattern, net.domain, winner=c)
    plain, *_ = irredundant_rows(poly.A, poly.b)
    V = net.weights[0][pattern[:first]]
    hinted, stats, *_ = irredundant_rows(
        poly.A, poly.b, points=x[None, :], subspace=V if V.size else None
    )
    np.testing.assert_array_equal(hinted, plain)
    assert_reduction_exact(poly.A, poly.b, hinted)
    assert stats.rows == poly.b.size


def test_subspace_relaxation_removes_deep_rows_in_high_dimension() -> None:
    # 40 inputs, 5 first-layer neurons: the deeper rows live in at most 5 dimensions.
    hits = 0
    for seed in range(6):
        net = narrow_net(seed, 40, 5, (12, 12))
        x = np.random.default_rng(seed).uniform(-1, 1, 40)
        pattern = net.patterns(x)[0]
        c = int(np.argmax(net.forward(x)))
        poly, _ = region(net, pattern, net.domain, winner=c)
        V = net.weights[0][pattern[:5]]
        keep, stats, *_ = irredundant_rows(poly.A, poly.b, points=x[None, :], subspace=V)
        assert_reduction_exact(poly.A, poly.b, keep)
        hits += stats.subspace_redundant
        assert stats.ray_certified + stats.vertex_certified > 0
    assert hits > 0  # the relaxation did remove rows somewhere, so it was exercised


def test_points_outside_the_polytope_are_ignored() -> None:
    A = np.array([[1.0, 0], [0, 1], [-1, 0], [0, -1], [1, 1]])
    b = np.array([1.0, 1, 0, 0, 1.5])
    keep, *_ = irredundant_rows(A, b, points=np.array([[5.0, 5.0], [0.2, 0.2]]))
    np.testing.assert_array_equal(keep, np.arange(5))


def test_support_model_drops_rows_and_copies_warm() -> None:
    rng = np.random.default_rng(3)
    a, b, _ = normalize(rng.normal(size=(60, 6)), rng.uniform(1, 2, 60))
    model = SupportLP(a, b)
    dirs = rng.normal(size=(10, 6))
    gone = np.array([3, 7, 8, 40])
    model.support(dirs[0])
    model.drop_many(gone)
    twin = model.copy()
    rest = np.setdiff1d(np.arange(60), gone)
    fresh = SupportLP(a[rest], b[rest])
    for d in dirs:
        expect = lp_max(d, a[rest], b[rest])[0]
        assert model.support(d) == pytest.approx(expect, abs=1e-8)
        assert twin.support(d) == pytest.approx(expect, abs=1e-8)
        assert fresh.support(d) == pytest.approx(expect, abs=1e-8)
    model.set_offset(10, b[10] + 0.5)  # original row indices survive the drops
    assert model.support(a[10]) == pytest.approx(
        lp_max(a[10], a[rest], np.where(rest == 10, b[10] + 0.5, b[rest]))[0], abs=1e-8
    )


def test_time_limit_applies_to_each_solve_not_their_sum() -> None:
    rng = np.random.default_rng(0)
    A = rng.normal(size=(30, 10))
    lp = LinearProgram(A, np.ones(30), col_lo=-5, col_hi=5, time_limit=0.05)
    for _ in range(3000):
        lp.maximize(rng.normal(size=10))
        if lp.solve_seconds > 0.2:
            break
    assert lp.solve_seconds > 0.2  # well past one allowance, and no SolverTimeout


def test_stalled_warm_solve_restarts_from_scratch() -> None:
    rng = np.random.default_rng(1)
    A = rng.normal(size=(80, 12))
    b = rng.uniform(1, 2, 80)
    lp = LinearProgram(A, b, stall_iterations=1)
    first = lp.maximize(np.ones(12))
    assert first.optimal
    c = rng.normal(size=12)
    res = lp.maximize(c)  # warm: capped at one iteration, then solved cold
    assert lp.retries >= 1
    expect = linprog(-c, A_ub=A, b_ub=b, bounds=[(None, None)] * 12, method="highs")
    assert res.objective == pytest.approx(-expect.fun, abs=1e-8)


def test_box_sides_behind_a_redundant_domain_row_are_computed() -> None:
    # x, y in [0, 1] and x + y <= 0.5: the rows x <= 1 and y <= 1 are redundant, so the
    # bounding box's upper sides (0.5) must come from LPs, not from the domain rows.
    A = np.array([[1.0, 0], [0, 1], [-1, 0], [0, -1], [1, 1]])
    b = np.array([1.0, 1, 0, 0, 0.5])
    keep, _, (lo, hi), _ = irredundant_rows(A, b)
    np.testing.assert_array_equal(keep, [2, 3, 4])
    np.testing.assert_allclose(lo, [0, 0], atol=1e-12)
    np.testing.assert_allclose(hi, [0.5, 0.5], atol=1e-9)


def test_lp_that_the_dual_simplex_fails_is_solved_by_the_primal() -> None:
    # Found by hypothesis: HiGHS's dual simplex returns "Unknown" on this region's Chebyshev
    # LP, warm and cold; the LP layer's last retry (primal simplex) solves it.
    net = narrow_net(7980, 22, 2, (5, 9, 7))
    x = np.random.default_rng(7981).uniform(-1, 1, 22)
    pattern = net.patterns(x)[0]
    poly, _ = region(net, pattern, net.domain, winner=int(np.argmax(net.forward(x))))
    keep, _, _, ball = irredundant_rows(poly.A, poly.b)
    assert ball.radius == pytest.approx(0.033827803248411, abs=1e-8)  # scipy's HiGHS
    assert_reduction_exact(poly.A, poly.b, keep)
