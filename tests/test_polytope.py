"""Polytope operations state their mathematics, checked against an independent solver.

Independent checks use ``scipy.optimize.linprog`` on the *unnormalised* rows, and
``scipy.spatial.ConvexHull`` for vertices.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from scipy.spatial import ConvexHull

from relucid import (
    EmptyPolytopeError,
    InputError,
    LinearProgram,
    LPStatus,
    bounding_box,
    chebyshev_ball,
    contains,
    from_vertices,
    irredundant_rows,
    is_empty,
    is_redundant,
    sample,
    vertices,
)

TOL = 1e-7


def lp_max(c: np.ndarray, A: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray | None]:
    """max c x s.t. A x <= b by scipy (inf when unbounded)."""
    res = linprog(-c, A_ub=A, b_ub=b, bounds=[(None, None)] * A.shape[1], method="highs")
    if res.status == 3:
        return np.inf, None
    assert res.status == 0, res.message
    return -res.fun, res.x


def assert_reduction_exact(A: np.ndarray, b: np.ndarray, keep: np.ndarray) -> None:
    """Removed rows are implied by the kept ones; each kept row has a witness point."""
    keep_set = set(keep.tolist())
    norms = np.linalg.norm(A, axis=1)
    for i in range(A.shape[0]):
        if norms[i] == 0:
            continue
        scale = norms[i]
        if i not in keep_set:
            val, _ = lp_max(A[i], A[keep], b[keep])
            assert val <= b[i] + 10 * TOL * scale * (1 + abs(b[i] / scale)), f"row {i} not implied"
        else:
            others = [k for k in keep if k != i]
            # Bound the LP by the relaxed row so it cannot be unbounded.
            rows = np.vstack([A[others], A[i]])
            rhs = np.concatenate([b[others], [b[i] + scale]])
            val, x = lp_max(A[i], rows, rhs)
            assert x is not None and val > b[i], f"kept row {i} is redundant"
            # The witness: satisfies every other kept row and violates row i.
            assert np.all(A[others] @ x <= b[others] + 1e-7 * (1 + np.abs(b[others])))
            assert A[i] @ x > b[i]


def square(lo: float = 0.0, hi: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    A = np.array([[1.0, 0], [0, 1], [-1, 0], [0, -1]])
    return A, np.array([hi, hi, -lo, -lo])


def test_lp_layer_reuses_model_and_reports_statuses() -> None:
    A, b = square()
    lp = LinearProgram(A, b)
    assert lp.maximize([1.0, 1.0]).objective == pytest.approx(2.0)
    assert lp.minimize([1.0, 1.0]).objective == pytest.approx(0.0)
    lp.set_row_bounds(0, -np.inf, np.inf)
    assert lp.maximize([1.0, 0.0]).status is LPStatus.UNBOUNDED
    lp.set_row_bounds(0, -np.inf, -1.0)  # x0 <= -1 and x0 >= 0: empty
    assert lp.maximize([1.0, 0.0]).status is LPStatus.INFEASIBLE
    assert lp.solves == 4


def test_lp_time_limit_is_an_error_not_a_result() -> None:
    from relucid import SolverError

    rng = np.random.default_rng(0)
    n = 40
    A = rng.normal(size=(200, n))
    lp = LinearProgram(
        A, rng.uniform(1, 2, 200), integer=range(n), col_lo=-5, col_hi=5, time_limit=1e-6
    )
    with pytest.raises(SolverError):
        lp.maximize(rng.normal(size=n))


def test_square_with_redundant_rows() -> None:
    A, b = square()
    A2 = np.vstack([A, [[1, 1], [1, 0], [2, 0], [0.5, 0.5]]])
    b2 = np.concatenate(
        [b, [3.0, 1.0, 2.0, 1.0]]
    )  # x0+x1<=3, duplicate, scaled duplicate, weakly redundant
    keep, stats, (lo, hi), ball = irredundant_rows(A2, b2)
    assert len(keep) == 4
    assert_reduction_exact(A2, b2, keep)
    np.testing.assert_allclose(lo, [0, 0], atol=1e-9)
    np.testing.assert_allclose(hi, [1, 1], atol=1e-9)
    assert ball.radius == pytest.approx(0.5)
    np.testing.assert_allclose(ball.centre, [0.5, 0.5], atol=1e-9)
    assert stats.rows == 8


def test_empty_and_zero_rows() -> None:
    A, b = square()
    A2 = np.vstack([A, [[1.0, 1.0]]])
    b2 = np.concatenate([b, [-0.5]])  # x0 + x1 <= -0.5 with x >= 0: empty
    assert is_empty(A2, b2)
    with pytest.raises(EmptyPolytopeError):
        irredundant_rows(A2, b2)
    with pytest.raises(EmptyPolytopeError):
        chebyshev_ball(A2, b2)
    with pytest.raises(EmptyPolytopeError):
        irredundant_rows(np.vstack([A, [[0.0, 0.0]]]), np.concatenate([b, [-1.0]]))
    keep, stats, _, _ = irredundant_rows(np.vstack([A, [[0.0, 0.0]]]), np.concatenate([b, [1.0]]))
    assert sorted(keep) == [0, 1, 2, 3] and stats.zero == 1


def test_unbounded_polytope() -> None:
    A = np.array([[-1.0, 0.0], [0.0, -1.0], [-1.0, -1.0]])  # quadrant x >= 0 with x0+x1 >= -1
    b = np.array([0.0, 0.0, 1.0])
    lo, hi = bounding_box(A, b)
    np.testing.assert_allclose(lo, [0, 0], atol=1e-9)
    assert np.isinf(hi).all()
    assert np.isinf(chebyshev_ball(A, b).radius)
    keep, *_ = irredundant_rows(A, b)
    assert sorted(keep) == [0, 1]
    with pytest.raises(InputError, match="unbounded"):
        vertices(A, b)


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(InputError):
        contains(np.ones((2, 2)), np.ones(3), np.zeros(2))
    with pytest.raises(InputError):
        vertices(np.ones((3, 8)), np.ones(3))


def test_is_redundant_single_row() -> None:
    A, b = square()
    A2 = np.vstack([A, [[1.0, 1.0]]])
    assert is_redundant(A2, np.concatenate([b, [2.0]]), 4)
    assert not is_redundant(A2, np.concatenate([b, [1.5]]), 4)


@st.composite
def random_polytope(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(2, 3))
    m = draw(st.integers(n + 1, 25))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, n)) * rng.uniform(0.1, 10, size=(m, 1))
    centre = rng.normal(size=n)
    # b_i >= a_i centre: the centre is inside; some rows far away (redundant), some tight.
    b = A @ centre + np.abs(A).sum(axis=1) * rng.uniform(0.05, 3.0, size=m)
    box_A = np.vstack([np.eye(n), -np.eye(n)])
    box_b = np.concatenate([centre + 5, -(centre - 5)])
    return np.vstack([A, box_A]), np.concatenate([b, box_b])


@settings(max_examples=40, deadline=None)
@given(random_polytope())
def test_reduction_is_exact_on_random_polytopes(poly: tuple[np.ndarray, np.ndarray]) -> None:
    A, b = poly
    keep, _stats, (lo, hi), ball = irredundant_rows(A, b)
    assert_reduction_exact(A, b, keep)
    # Bounding box agrees with scipy and with the vertices.
    for j in range(A.shape[1]):
        e = np.eye(A.shape[1])[j]
        assert hi[j] == pytest.approx(lp_max(e, A, b)[0], abs=1e-7)
        assert lo[j] == pytest.approx(-lp_max(-e, A, b)[0], abs=1e-7)
    V = vertices(A[keep], b[keep])
    np.testing.assert_allclose(V.min(axis=0), lo, atol=1e-7)
    np.testing.assert_allclose(V.max(axis=0), hi, atol=1e-7)
    # Chebyshev ball: inside, and its radius matches scipy's LP.
    norms = np.linalg.norm(A, axis=1)
    assert np.all(A @ ball.centre + norms * ball.radius <= b + 1e-7 * (1 + np.abs(b)))
    res = linprog(
        np.r_[np.zeros(A.shape[1]), -1.0],
        A_ub=np.hstack([A, norms[:, None]]),
        b_ub=b,
        bounds=[(None, None)] * A.shape[1] + [(0, None)],
        method="highs",
    )
    assert ball.radius == pytest.approx(-res.fun, abs=1e-7)
    # Every irredundant row is a facet: some vertex set of dimension n-1 lies on it.
    for i in keep:
        on = np.abs(V @ A[i] - b[i]) <= 1e-6 * (1 + abs(b[i]))
        assert on.sum() >= A.shape[1]


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 3), st.integers(0, 2**31 - 1))
def test_h_v_h_round_trip(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(12, n))
    hull = ConvexHull(pts)
    A, b = from_vertices(pts)
    V = vertices(A, b)
    expected = pts[hull.vertices]
    assert len(V) == len(expected)
    for v in expected:
        assert np.min(np.linalg.norm(V - v, axis=1)) < 1e-8
    # And back to H: the same half-spaces up to scaling.
    A2, b2 = from_vertices(V)
    keep1, *_ = irredundant_rows(A, b)
    keep2, *_ = irredundant_rows(A2, b2)
    assert len(keep1) == len(keep2) == len(hull.equations)
    h1 = np.hstack([A[keep1], b[keep1, None]]) / np.linalg.norm(A[keep1], axis=1)[:, None]
    h2 = np.hstack([A2[keep2], b2[keep2, None]]) / np.linalg.norm(A2[keep2], axis=1)[:, None]
    for row in h1:
        assert np.min(np.abs(h2 - row).max(axis=1)) < 1e-8


def test_sample_stays_inside_and_contains_agrees() -> None:
    A, b = square()
    A2 = np.vstack([A, [[1.0, 1.0]]])
    b2 = np.concatenate([b, [1.2]])
    pts = sample(A2, b2, 500, start=[0.2, 0.2], random_state=1)
    assert contains(A2, b2, pts).all()
    assert (pts.sum(axis=1) <= 1.2 + 1e-12).all()
    assert not contains(A2, b2, np.array([[0.9, 0.9]]))[0]
