"""``why(x)`` states its mathematics: the explained region is exactly where x's decision holds.

Checks, each independent of the code under test where it matters:
* sampled points of the region have x's pattern and class, and the network equals the
  reported affine map there (plain forward passes);
* removed rows are implied by the kept ones and kept rows have LP witnesses (scipy);
* a hand-analysable 2-input network whose regions are listed by hand.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relucid import (
    Box,
    Explainer,
    ExplainerConfig,
    InputError,
    ReluNetwork,
    RowKind,
    contains,
    irredundant_rows,
    local_affine,
    region,
    sample,
)

from test_polytope import assert_reduction_exact


def hand_net() -> ReluNetwork:
    """Two inputs, two hidden ReLUs, two classes, domain [-1, 1]^2.

    z0 = x0, z1 = x1 (hidden layer = identity), y0 = relu(x0) + relu(x1), y1 = 0.5.
    The four quadrants are the linear regions; class 0 wins where relu(x0)+relu(x1) >= 0.5:

    * quadrant ++ (pattern 11): class 0 iff x0 + x1 >= 0.5: a pentagon with vertices
      (0.5,0), (1,0), (1,1), (0,1), (0,0.5); class 1 on the triangle (0,0), (0.5,0), (0,0.5);
    * quadrant -+ (pattern 01): y0 = x1, class 0 iff x1 >= 0.5: the rectangle
      [-1,0] x [0.5,1]; the class row x1 >= 0.5 makes "x1 >= 0" redundant;
    * quadrant -- (pattern 00): y0 = 0 < 0.5, class 1 everywhere: the square [-1,0]^2, and the
      class row is the zero row 0 <= 0.5, redundant.
    """
    return ReluNetwork(
        [np.eye(2), np.array([[1.0, 1.0], [0.0, 0.0]])],
        [np.zeros(2), np.array([0.0, 0.5])],
        input_names=["a", "b"],
        output_names=["yes", "no"],
        domain=Box([-1, -1], [1, 1]),
        name="hand",
    )


def vertex_set(v: np.ndarray) -> set[tuple[float, float]]:
    return {(round(float(p[0]), 9), round(float(p[1]), 9)) for p in v}


@pytest.mark.parametrize(
    ("x", "cls", "n_rows", "verts"),
    [
        ((0.5, 0.5), 0, 5, {(0.5, 0), (1, 0), (1, 1), (0, 1), (0, 0.5)}),
        ((0.1, 0.1), 1, 3, {(0, 0), (0.5, 0), (0, 0.5)}),
        ((-0.5, 0.8), 0, 4, {(-1, 0.5), (0, 0.5), (0, 1), (-1, 1)}),
        ((-0.5, -0.5), 1, 4, {(-1, -1), (0, -1), (0, 0), (-1, 0)}),
    ],
)
def test_hand_network_regions(x, cls, n_rows, verts) -> None:
    expl = Explainer(hand_net()).why(np.array(x))
    assert expl.predicted == cls
    assert expl.num_rows == n_rows
    assert vertex_set(expl.vertices) == {(float(a), float(b)) for a, b in verts}
    v = np.array(sorted(verts))
    np.testing.assert_allclose(expl.lo, v.min(axis=0), atol=1e-9)
    np.testing.assert_allclose(expl.hi, v.max(axis=0), atol=1e-9)


def test_hand_network_row_origins_and_text() -> None:
    expl = Explainer(hand_net()).why(np.array([-0.5, 0.8]))
    kinds = sorted(o.kind.name for o in expl.origins)
    assert kinds == ["CLASS", "DOMAIN", "DOMAIN", "NEURON"]
    neuron = next(o for o in expl.origins if o.kind is RowKind.NEURON)
    assert (neuron.layer, neuron.neuron, neuron.active) == (0, 0, False)
    text = expl.to_text()
    assert "a <= 0" in text and "b >= 0.5" in text
    assert "class comparison: 'yes' beats 'no'" in text
    assert "hidden layer 1, neuron 0 stays inactive" in text
    d = json.loads(json.dumps(expl.to_dict()))
    assert d["predicted_name"] == "yes" and len(d["constraints"]) == 4
    assert len(d["vertices"]) == 4


def test_published_same_region_sign_mistake_would_be_caught() -> None:
    # The class row must read (L_j - L_c) x <= d_c - d_j. With the offset's sign flipped the
    # pentagon of x = (0.5, 0.5) would become x0 + x1 >= -0.5: its vertices would change.
    net = hand_net()
    pat = net.patterns(np.array([0.5, 0.5]))[0]
    poly, _aff = region(net, pat, net.domain, winner=0)
    cls = poly.kind == RowKind.CLASS
    a, b = poly.A[cls][0], poly.b[cls][0]
    np.testing.assert_allclose(a, [-1.0, -1.0])
    assert b == pytest.approx(-0.5)


def random_net(seed: int, n_in: int, hidden: tuple[int, ...], n_out: int) -> ReluNetwork:
    rng = np.random.default_rng(seed)
    sizes = [n_in, *hidden, n_out]
    ws = [
        rng.normal(size=(sizes[k + 1], sizes[k])) / np.sqrt(sizes[k]) for k in range(len(sizes) - 1)
    ]
    bs = [rng.normal(size=sizes[k + 1]) * 0.3 for k in range(len(sizes) - 1)]
    return ReluNetwork(ws, bs, domain=Box(-np.ones(n_in), np.ones(n_in)))


def check_explanation(net: ReluNetwork, x: np.ndarray, seed: int = 0) -> None:
    expl = Explainer(net).why(x)
    # 1. The reduction is exact w.r.t. the full region system (scipy LPs).
    poly, aff = region(net, expl.pattern, net.domain, winner=expl.predicted)
    keep, *_ = irredundant_rows(poly.A, poly.b)
    assert_reduction_exact(poly.A, poly.b, keep)
    # The explainer (which passes hints: x and the first layer's subspace) keeps those rows.
    np.testing.assert_array_equal(expl.A, poly.A[keep])
    np.testing.assert_array_equal(expl.b, poly.b[keep])
    # 2. Sampled points: x's pattern and class; network == local affine map.
    pts = sample(expl.A, expl.b, 200, start=expl.centre, random_state=seed)
    assert expl.contains(pts).all()
    # Points within 1e-9 of a neuron's hyperplane may round either way: skip only those.
    margin = np.abs(pts @ aff.M.T + aff.c).min(axis=1) > 1e-9
    pats = net.patterns(pts)
    assert (pats[margin] == expl.pattern).all()
    logits = net.forward(pts)
    np.testing.assert_allclose(logits, pts @ expl.L.T + expl.d, atol=1e-9)
    top2 = np.sort(logits, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-9
    assert (np.argmax(logits, axis=1)[clear] == expl.predicted).all()
    # 3. The original system and the reduced one agree on random points near the region.
    rng = np.random.default_rng(seed)
    probe = expl.centre + rng.normal(size=(2000, net.input_dim)) * (expl.hi - expl.lo)
    full = contains(poly.A, poly.b, probe, tol=0)
    red = contains(expl.A, expl.b, probe, tol=0)
    nz = np.linalg.norm(poly.A, axis=1) > 0
    a_n = poly.A[nz] / np.linalg.norm(poly.A[nz], axis=1)[:, None]
    b_n = poly.b[nz] / np.linalg.norm(poly.A[nz], axis=1)
    near = np.abs(probe @ a_n.T - b_n).min(axis=1) > 1e-6
    assert (full[near] == red[near]).all()


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 10_000),
    st.integers(2, 4),
    st.lists(st.integers(2, 8), min_size=1, max_size=3),
    st.integers(2, 4),
)
def test_random_networks(seed: int, n_in: int, hidden: list[int], n_out: int) -> None:
    net = random_net(seed, n_in, tuple(hidden), n_out)
    x = np.random.default_rng(seed + 1).uniform(-1, 1, n_in)
    check_explanation(net, x, seed)


def test_local_affine_matches_forward_on_region() -> None:
    net = random_net(3, 5, (16, 16), 3)
    X = np.random.default_rng(0).uniform(-1, 1, (50, 5))
    for x, p in zip(X, net.patterns(X), strict=True):
        aff = local_affine(net, p)
        np.testing.assert_allclose(aff.logits(x), net.forward(x), atol=1e-12)


def test_argmin_decision_explains_smallest_output() -> None:
    net = hand_net()
    x = np.array([0.5, 0.5])
    expl = Explainer(net, config=ExplainerConfig(decision="argmin")).why(x)
    assert expl.predicted == 1  # y1 = 0.5 < y0 = 1.0
    np.testing.assert_allclose(expl.L, local_affine(net, net.patterns(x)[0]).L)
    pts = sample(expl.A, expl.b, 100, start=expl.centre)
    assert (np.argmin(net.forward(pts), axis=1) == 1).all()


def test_errors() -> None:
    ex = Explainer(hand_net())
    with pytest.raises(InputError, match="shape"):
        ex.why(np.zeros(3))
    with pytest.raises(InputError, match="non-finite"):
        ex.why(np.array([np.nan, 0.0]))
    with pytest.raises(InputError, match="non-finite"):
        ex.why(np.array([np.inf, 0.0]))
    with pytest.raises(InputError, match="outside the domain"):
        ex.why(np.array([2.0, 0.0]))
    with pytest.raises(InputError, match="one input"):
        ex.why(np.zeros((2, 2)))
    with pytest.raises(InputError, match="domain"):
        Explainer(hand_net(), domain=Box([0, 0, 0], [1, 1, 1]))


def test_no_domain_gives_unbounded_box() -> None:
    expl = Explainer(hand_net(), domain=None).why(np.array([-0.5, -0.5]))
    assert np.isinf(expl.lo).all() and expl.vertices is None
    assert not np.isfinite(expl.radius)
    assert expl.num_rows == 2


@pytest.fixture(scope="module")
def wbc():
    from relucid.datasets import wbc_network

    return wbc_network(random_state=0)


def test_wbc_network_explanations(wbc) -> None:
    net, split = wbc
    assert (net.predict(split.X_test) == split.y_test).mean() > 0.9
    for x in split.X_test[:2]:
        check_explanation(net, x)


def test_acas_xu_explanations(shared_data) -> None:
    from relucid import load_nnet, load_onnx

    net = load_onnx(shared_data / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    dom = load_nnet(
        shared_data / "acasxu-nnet" / "ACASXU_experimental_v2a_1_1.nnet", normalize_inputs=False
    ).domain
    net = net.replace(domain=dom)
    rng = np.random.default_rng(5)
    for x in rng.uniform(dom.lo, dom.hi, size=(3, 5)):
        check_explanation(net, x)
        expl = Explainer(net).why(x)
        # V-representation: every vertex satisfies the rows, spans the bounding box.
        assert expl.vertices is not None and expl.contains(expl.vertices, tol=1e-7).all()
        np.testing.assert_allclose(expl.vertices.min(axis=0), expl.lo, atol=1e-7)
        np.testing.assert_allclose(expl.vertices.max(axis=0), expl.hi, atol=1e-7)
