"""Pre-activation bounds under a NAP: soundness by sampling, tightness order, emptiness.

The claim checked throughout: for every input ``x`` of the box that obeys the NAP's fixed
neurons (``z_i(x) >= 0`` where ``P_i = 1``, ``z_i(x) <= 0`` where ``P_i = 0``), every
pre-activation and output lies within the reported bounds; and the methods nest,
``lp ⊆ symbolic ⊆ interval``.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relucid import Box, ReluNetwork, load_onnx
from relucid.errors import InputError
from relucid.verify import (
    Bounds,
    interval_bounds,
    load_vnnlib,
    lp_tighten,
    output_bounds,
    symbolic_bounds,
)


# -- helpers -------------------------------------------------------------------------------------
def random_net(rng: np.random.Generator, sizes: list[int]) -> ReluNetwork:
    ws = [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in itertools.pairwise(sizes)]
    bs = [rng.normal(scale=0.5, size=o) for o in sizes[1:]]
    return ReluNetwork(ws, bs)


def nap_of(net: ReluNetwork, x: np.ndarray, free: np.ndarray) -> np.ndarray:
    """The NAP of ``x``'s activation pattern with the neurons in ``free`` set to -1."""
    nap = net.patterns(x)[0].astype(np.int8)
    nap[free] = -1
    return nap


def obeying(net: ReluNetwork, xs: np.ndarray, nap: np.ndarray | None) -> np.ndarray:
    """The rows of ``xs`` that obey the NAP's fixed neurons (closed sides)."""
    if nap is None:
        return xs
    z = np.concatenate(net.pre_activations(xs), axis=1)
    ok = np.all((z >= 0) | (nap != 1), axis=1) & np.all((z <= 0) | (nap != 0), axis=1)
    return xs[ok]


def assert_contains(net: ReluNetwork, b: Bounds, xs: np.ndarray) -> None:
    """Every layer's values at ``xs`` lie within ``b`` (up to float64 forward-pass rounding)."""
    assert not b.empty
    layers = [*net.pre_activations(xs), net.forward(xs)]
    for k, z in enumerate(layers):
        tol = 1e-9 * (1.0 + np.abs(z))
        assert np.all(z >= b.lower[k] - tol), f"{b.method} lower bound fails in layer {k}"
        assert np.all(z <= b.upper[k] + tol), f"{b.method} upper bound fails in layer {k}"


def assert_nested(inner: Bounds, outer: Bounds) -> None:
    for lo_i, hi_i, lo_o, hi_o in zip(
        inner.lower, inner.upper, outer.lower, outer.upper, strict=True
    ):
        assert np.all(lo_i >= lo_o) and np.all(hi_i <= hi_o)
    assert np.all(inner.stable_active >= outer.stable_active)
    assert np.all(inner.stable_inactive >= outer.stable_inactive)


def samples(rng: np.random.Generator, box: Box, count: int) -> np.ndarray:
    xs = rng.uniform(box.lo, box.hi, size=(count, box.dim))
    if box.dim <= 4:  # the corners too: bounds are often attained there
        corners = np.array(np.meshgrid(*zip(box.lo, box.hi, strict=True))).reshape(box.dim, -1)
        xs = np.vstack([xs, corners.T])
    return xs


@st.composite
def cases(draw: st.DrawFn) -> tuple[ReluNetwork, Box, np.ndarray | None, np.ndarray]:
    """A random net, box, NAP from a random input of the box (some neurons freed), samples."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 4))
    hidden = draw(st.lists(st.integers(1, 8), min_size=1, max_size=3))
    net = random_net(rng, [n, *hidden, draw(st.integers(1, 3))])
    centre = rng.uniform(-1, 1, n)
    radius = rng.uniform(0.0, 1.0, n) * (rng.random(n) > 0.1)  # some flat sides
    box = Box(centre - radius, centre + radius)
    free_share = draw(st.sampled_from([0.0, 0.3, 0.7, 1.0, None]))
    xs = samples(rng, box, 3000)
    if free_share is None:
        return net, box, None, xs
    x0 = rng.uniform(box.lo, box.hi)
    nap = nap_of(net, x0, rng.random(net.num_hidden) < free_share)
    return net, box, nap, np.vstack([x0, xs])


# -- soundness and order on random networks ----------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(cases())
def test_interval_and_symbolic_bounds_are_sound_and_nested(
    case: tuple[ReluNetwork, Box, np.ndarray | None, np.ndarray],
) -> None:
    net, box, nap, xs = case
    kept = obeying(net, xs, nap)
    assert len(kept) >= 1  # x0 obeys its own NAP, so R_P is not empty
    ib = interval_bounds(net, box, nap)
    sb = symbolic_bounds(net, box, nap)
    assert_contains(net, ib, kept)
    assert_contains(net, sb, kept)
    assert_nested(sb, ib)
    if nap is not None:  # fixed neurons are stable on their side
        assert np.all(sb.stable_active[nap == 1]) and np.all(ib.stable_inactive[nap == 0])


@settings(max_examples=15, deadline=None)
@given(cases())
def test_lp_tightening_is_sound_and_tighter(
    case: tuple[ReluNetwork, Box, np.ndarray | None, np.ndarray],
) -> None:
    net, box, nap, xs = case
    kept = obeying(net, xs, nap)
    sb = symbolic_bounds(net, box, nap)
    lb = lp_tighten(net, box, nap, sb)
    assert lb.method == "lp"
    assert_contains(net, lb, kept)
    assert_nested(lb, sb)


@settings(max_examples=30, deadline=None)
@given(cases(), st.integers(0, 2**32 - 1))
def test_output_bounds_of_margins(
    case: tuple[ReluNetwork, Box, np.ndarray | None, np.ndarray], seed: int
) -> None:
    """Bounds of C y hold on R_P and beat the output intervals combined by interval rules."""
    net, box, nap, xs = case
    kept = obeying(net, xs, nap)
    sb = symbolic_bounds(net, box, nap)
    c = np.random.default_rng(seed).normal(size=(3, net.output_dim))
    lo, hi = output_bounds(net, box, c, sb, nap)
    v = net.forward(kept) @ c.T
    tol = 1e-9 * (1.0 + np.abs(v))
    assert np.all(v >= lo - tol) and np.all(v <= hi + tol)
    cp, cn = np.maximum(c, 0), np.minimum(c, 0)
    assert np.all(lo >= cp @ sb.output_lower + cn @ sb.output_upper)
    assert np.all(hi <= cp @ sb.output_upper + cn @ sb.output_lower)


# -- hand-checked cases --------------------------------------------------------------------------
def test_interval_bounds_by_hand() -> None:
    """x in [-1, 1] x [0, 2]; z0 = x0 + x1 in [-1, 3], z1 = x0 - x1 + 0.5 in [-2.5, 1.5];
    y = h0 + h1. Free: y in [0, 4.5]. NAP (1, 0): z0 in [0, 3], h1 = 0, so y in [0, 3]."""
    net = ReluNetwork([[[1.0, 1.0], [1.0, -1.0]], [[1.0, 1.0]]], [[0.0, 0.5], [0.0]])
    box = Box([-1.0, 0.0], [1.0, 2.0])
    free = interval_bounds(net, box)
    assert free.lower[0] == pytest.approx([-1.0, -2.5], abs=1e-12)
    assert free.upper[0] == pytest.approx([3.0, 1.5], abs=1e-12)
    assert free.output_lower == pytest.approx([0.0], abs=1e-12)
    assert free.output_upper == pytest.approx([4.5], abs=1e-12)
    assert free.unstable.tolist() == [True, True]
    fixed = interval_bounds(net, box, np.array([1, 0], dtype=np.int8))
    assert fixed.lower[0] == pytest.approx([0.0, -2.5], abs=1e-12)
    assert fixed.upper[0] == pytest.approx([3.0, 0.0], abs=1e-12)
    assert fixed.output_upper == pytest.approx([3.0], abs=1e-12)
    assert fixed.stable_active.tolist() == [True, False]
    assert fixed.stable_inactive.tolist() == [False, True]
    assert fixed.num_stable == 2
    d = json.loads(json.dumps(fixed.to_dict()))
    assert d["num_stable"] == 2 and d["method"] == "interval" and not d["empty"]
    assert "2/2 hidden neurons stable" in str(fixed)


def test_nap_that_interval_arithmetic_already_refutes() -> None:
    """z1 = x - 2 <= -1 on [0, 1]: fixing it active leaves no input."""
    net = ReluNetwork([[[1.0], [1.0]], [[1.0, 1.0]]], [[0.0, -2.0], [0.0]])
    box = Box([0.0], [1.0])
    nap = np.array([-1, 1], dtype=np.int8)
    for fn in (interval_bounds, symbolic_bounds, lp_tighten):
        b = fn(net, box, nap)
        assert b.empty and b.empty_neuron == 1, fn.__name__
        assert np.all(b.output_lower == np.inf) and np.all(b.output_upper == -np.inf)
    assert "EMPTY" in str(interval_bounds(net, box, nap))


def test_nap_that_only_symbolic_bounds_refute() -> None:
    """h_a = h_b = x on [0, 1], so z = h_a - h_b - 0.5 = -0.5 for every input. Intervals
    see h_a, h_b in [0, 1] and z in [-1.5, 0.5], so "z active" survives them; the symbolic
    bound z = x - x - 0.5 refutes it. Sampling confirms that no input obeys the NAP."""
    net = ReluNetwork(
        [[[1.0], [1.0]], [[1.0, -1.0]], [[1.0]]], [[0.0, 0.0], [-0.5], [0.0]], name="twins"
    )
    box = Box([0.0], [1.0])
    nap = np.array([-1, -1, 1], dtype=np.int8)
    ib = interval_bounds(net, box, nap)
    assert not ib.empty and ib.lower[1] == [0.0] and ib.upper[1] == pytest.approx([0.5])
    sb = symbolic_bounds(net, box, nap)
    assert sb.empty and sb.empty_neuron == 2
    assert lp_tighten(net, box, nap).empty
    assert len(obeying(net, np.linspace(0, 1, 1001)[:, None], nap)) == 0
    free = symbolic_bounds(net, box)
    assert free.lower[1] == pytest.approx([-0.5]) and free.upper[1] == pytest.approx([-0.5])


def test_symbolic_bounds_capture_cancellation_in_deep_layers() -> None:
    """Without a NAP, on [0.5, 1]: h_a = h_b = x, z = h_a - h_b - 0.25 = -0.25. Intervals give
    z in [-0.75, 0.25] (unstable); the symbolic bound is exact up to rounding (stable)."""
    net = ReluNetwork([[[1.0], [1.0]], [[1.0, -1.0]], [[1.0]]], [[0.0, 0.0], [-0.25], [0.0]])
    box = Box([0.5], [1.0])
    ib, sb = interval_bounds(net, box), symbolic_bounds(net, box)
    assert ib.unstable.tolist() == [False, False, True]
    assert ib.lower[1] == pytest.approx([-0.75]) and ib.upper[1] == pytest.approx([0.25])
    assert sb.unstable.tolist() == [False, False, False]
    assert sb.lower[1] == pytest.approx([-0.25]) and sb.upper[1] == pytest.approx([-0.25])
    assert sb.stable_inactive.tolist() == [False, False, True]


def test_bounds_are_widened_for_rounding() -> None:
    """z = x on [0, 1] has lower bound 0 exactly; the reported bound sits a few ulps below
    (a bound on the rounding of the sums), so a neuron that is 0 at a corner of the box
    counts as unstable rather than risk a wrong stability claim."""
    net = ReluNetwork([[[1.0]], [[1.0]]], [[0.0], [0.0]])
    b = interval_bounds(net, Box([0.0], [1.0]))
    assert -1e-14 < b.lower[0][0] < 0.0 and 1.0 < b.upper[0][0] < 1.0 + 1e-14
    assert b.unstable.tolist() == [True]


def test_input_errors() -> None:
    net = ReluNetwork([np.ones((2, 2)), np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    box = Box([0, 0], [1, 1])
    with pytest.raises(InputError, match="NAP has shape"):
        interval_bounds(net, box, np.zeros(3, dtype=np.int8))
    with pytest.raises(InputError, match=r"only 1 \(active\), 0 \(inactive\) and -1"):
        symbolic_bounds(net, box, np.array([2, 0]))
    with pytest.raises(InputError, match="bounded box"):
        interval_bounds(net, Box([0, -np.inf], [1, 1]))
    with pytest.raises(InputError, match="box has 3 features"):
        symbolic_bounds(net, Box([0, 0, 0], [1, 1, 1]))
    with pytest.raises(InputError, match="hidden layer indices"):
        lp_tighten(net, box, layers=[1])
    with pytest.raises(InputError, match="C has 2 columns"):
        output_bounds(net, box, np.ones((1, 2)), symbolic_bounds(net, box))


# -- real networks --------------------------------------------------------------------------------
@pytest.mark.data
def test_acas_xu_1_1_over_property_1(shared_data: Path) -> None:
    net = load_onnx(shared_data / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    box = load_vnnlib(shared_data / "acasxu" / "prop_1.vnnlib").box
    ib, sb = interval_bounds(net, box), symbolic_bounds(net, box)
    xs = samples(np.random.default_rng(0), box, 3000)
    assert_contains(net, ib, xs)
    assert_contains(net, sb, xs)
    assert_nested(sb, ib)
    assert sb.num_stable > ib.num_stable  # measured: 53 vs 44 of 300
    assert np.all(sb.output_upper - sb.output_lower < ib.output_upper - ib.output_lower)


@pytest.mark.data
def test_acas_xu_with_a_nap_and_lp(shared_data: Path) -> None:
    """Property 3's small box, the NAP of its centre with half the neurons freed; LP on the
    first two layers tightens further and stays sound."""
    net = load_onnx(shared_data / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    box = load_vnnlib(shared_data / "acasxu" / "prop_3.vnnlib").box
    rng = np.random.default_rng(1)
    centre = (box.lo + box.hi) / 2
    nap = nap_of(net, centre, rng.random(net.num_hidden) < 0.5)
    kept = obeying(net, np.vstack([centre, samples(rng, box, 3000)]), nap)
    ib, sb = interval_bounds(net, box, nap), symbolic_bounds(net, box, nap)
    lb = lp_tighten(net, box, nap, sb, layers=[0, 1])
    for b in (ib, sb, lb):
        assert_contains(net, b, kept)
    assert_nested(sb, ib)
    assert_nested(lb, sb)
    assert sb.num_stable >= ib.num_stable and lb.num_stable >= sb.num_stable


@pytest.mark.data
def test_mnist_256x2_over_property_0(shared_data: Path) -> None:
    net = load_onnx(shared_data / "mnistfc" / "mnist-net_256x2.onnx")
    box = load_vnnlib(shared_data / "mnistfc" / "prop_0_0.03.vnnlib").box
    ib, sb = interval_bounds(net, box), symbolic_bounds(net, box)
    rng = np.random.default_rng(0)
    xs = np.vstack(
        [
            rng.uniform(box.lo, box.hi, (1000, 784)),
            np.where(rng.random((1000, 784)) < 0.5, box.lo, box.hi),
        ]
    )
    assert_contains(net, ib, xs)
    assert_contains(net, sb, xs)
    assert_nested(sb, ib)
    assert sb.num_stable >= ib.num_stable  # measured: 417 vs 413 of 512
    assert np.all(sb.output_upper - sb.output_lower < ib.output_upper - ib.output_lower)
