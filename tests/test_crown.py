"""Optimised bounds under a NAP (alpha/beta-CROWN) are sound and no stronger than the LP.

Oracles, independent of :mod:`relucid.verify.crown`: the exact minimum of a linear function of
the logits over the patterns a NAP allows (one scipy LP per pattern, ``brute_force_max``),
dense sampling of the NAP's region, and the triangle relaxation solved by HiGHS (the optimum
the multipliers approach; crossing it would mean a bound that does not come from the
relaxation).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from test_milp import TINY_CASES, brute_force_max, tiny_net

from relucid import Box, ReluNetwork, load_onnx
from relucid.errors import InputError
from relucid.spec import refined_nap
from relucid.spec.data import nap_data
from relucid.verify import MilpVerifier, Status, output_bounds, symbolic_bounds
from relucid.verify.crown import CrownBounds, CrownConfig
from relucid.verify.milp import NetworkMILP
from relucid.verify.tightening import warm_tighten

#: More steps than the defaults: the tests compare against the LP optimum.
STRONG = CrownConfig(iterations=200, output_iterations=300)


def random_nap(net: ReluNetwork, box: Box, rng: np.random.Generator) -> np.ndarray:
    """A NAP that some input of the box obeys: a sampled pattern with neurons freed."""
    x = rng.uniform(box.lo, box.hi)
    nap = net.patterns(x[None, :])[0].astype(np.int8)
    nap[rng.random(nap.size) < 0.5] = -1
    return nap


def obeying(net: ReluNetwork, box: Box, nap: np.ndarray, n: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).uniform(box.lo, box.hi, (n, box.dim))
    P = net.patterns(X)
    return X[((P == (nap == 1)) | (nap == -1)).all(axis=1)]


@settings(max_examples=30, deadline=None)
@given(*TINY_CASES)
def test_output_bound_is_below_the_exact_minimum_and_the_lp(
    seed: int, n_in: int, hidden: list[int], n_out: int, nap_seed: int
) -> None:
    net = tiny_net(seed, n_in, tuple(hidden), n_out)
    box = net.domain
    assert box is not None
    rng = np.random.default_rng(nap_seed)
    nap = random_nap(net, box, rng)
    bounds = symbolic_bounds(net, box, nap)
    assert not bounds.empty  # some input obeys it
    C = rng.normal(size=(3, n_out))
    crown = CrownBounds(net, box, config=STRONG)
    low = crown.output_lower(nap, bounds, C)
    milp = NetworkMILP(net, box, list(zip(bounds.lower[:-1], bounds.upper[:-1], strict=True)))
    milp.set_nap(nap)
    relax = milp.relaxation()
    for row, value in zip(C, low, strict=True):
        exact = -brute_force_max(net, box, -row, nap)
        assert value <= exact + 1e-9
        lp = relax.lower_bound(row, 30)
        assert lp is not None and value <= lp + 1e-7


@settings(max_examples=30, deadline=None)
@given(*TINY_CASES)
def test_tightened_bounds_hold_for_every_input_obeying_the_nap(
    seed: int, n_in: int, hidden: list[int], n_out: int, nap_seed: int
) -> None:
    net = tiny_net(seed, n_in, (*hidden, 3), n_out)  # at least two hidden layers
    box = net.domain
    assert box is not None
    nap = random_nap(net, box, np.random.default_rng(nap_seed))
    start = symbolic_bounds(net, box, nap)
    tight = CrownBounds(net, box, config=STRONG).tighten(nap, start)
    assert not tight.empty
    X = obeying(net, box, nap, 4000, nap_seed)
    zs = net.pre_activations(X)
    for k, z in enumerate(zs[:-1]):
        assert (tight.lower[k] >= start.lower[k] - 1e-12).all()
        assert (tight.upper[k] <= start.upper[k] + 1e-12).all()
        if X.shape[0]:
            assert (z >= tight.lower[k] - 1e-9).all() and (z <= tight.upper[k] + 1e-9).all()


def test_multipliers_use_the_naps_rows() -> None:
    # z0 = x0 - x1 fixed active (the region x0 >= x1 of [-1, 1]^2) and z1 = x1 - x0 free, so
    # on the region z1 = -z0 <= 0 and y = -relu(z1) is exactly 0. Back-substitution uses the
    # NAP only to clip z0's own interval, so z1 keeps [-2, 2] and y's bound is -2; the
    # multiplier of z0 >= 0 proves z1 <= 0 (stable), and with it y >= 0.
    net = ReluNetwork(
        [np.array([[1.0, -1.0], [-1.0, 1.0]]), np.array([[0.0, -1.0]])],
        [np.zeros(2), np.zeros(1)],
    )
    box = Box(-np.ones(2), np.ones(2))
    nap = np.array([1, -1], dtype=np.int8)
    plain = symbolic_bounds(net, box, nap)
    assert plain.upper[0][1] == pytest.approx(2.0)
    assert output_bounds(net, box, np.array([[1.0]]), plain, nap)[0][0] <= -1.0
    crown = CrownBounds(net, box, config=STRONG)
    tight = crown.tighten(nap, plain)
    # First-order steps reach the multiplier 1 up to a few 1e-9 (the LP would give 0).
    assert tight.upper[0][1] <= 1e-6
    assert crown.output_lower(nap, tight, np.array([[1.0]]))[0] >= -1e-6


def test_input_rows_are_respected() -> None:
    # y = x0 + x1 over [-1, 1]^2 (hidden neurons x_i + 2, active on the whole box, no NAP)
    # cut by x0 + x1 >= 0.5 (as -x0 - x1 <= -0.5): the minimum is 0.5, and without the row's
    # multiplier the bound would be -2.
    net = ReluNetwork([np.eye(2), np.array([[1.0, 1.0]])], [np.full(2, 2.0), np.array([-4.0])])
    box = Box(-np.ones(2), np.ones(2))
    nap = np.full(2, -1, dtype=np.int8)
    crown = CrownBounds(net, box, A=[[-1.0, -1.0]], b=[-0.5], config=STRONG)
    low = crown.output_lower(nap, symbolic_bounds(net, box, nap), np.array([[1.0]]))
    assert 0.4 <= low[0] <= 0.5 + 1e-9


def test_empty_nap_bounds_never_claim_an_input() -> None:
    # Neuron 0 is x0 and neuron 1 is -x0: fixing both active leaves only x0 = 0, fixing
    # both active with a strict offset leaves nothing. Bounds may call such a NAP empty;
    # when they do, no input of the box obeys it.
    net = ReluNetwork(
        [np.array([[1.0], [-1.0]]), np.array([[1.0, 1.0]])],
        [np.array([0.0, -0.5]), np.zeros(1)],
    )
    box = Box(-np.ones(1), np.ones(1))
    nap = np.array([1, 1], dtype=np.int8)  # x0 >= 0 and -x0 - 0.5 >= 0: empty
    start = symbolic_bounds(net, box, nap)
    if not start.empty:
        low = CrownBounds(net, box, config=STRONG).output_lower(nap, start, np.array([[1.0]]))
        assert low[0] > 1.0  # vacuous: the multipliers push the bound up without limit
    X = np.linspace(-1, 1, 2001)[:, None]
    assert not ((net.patterns(X) == (nap == 1)).all(axis=1)).any()


@pytest.mark.parametrize("seed", range(4))
def test_warm_lp_tightening_holds_for_every_input_obeying_the_nap(seed: int) -> None:
    net = tiny_net(seed, 3, (5, 5, 4), 3)
    box = net.domain
    assert box is not None
    nap = random_nap(net, box, np.random.default_rng(seed))
    start = symbolic_bounds(net, box, nap)
    milp = NetworkMILP(net, box, list(zip(start.lower[:-1], start.upper[:-1], strict=True)))
    milp.set_nap(nap)
    tight = warm_tighten(milp, milp.relaxation(), start, nap, 32, None)
    assert not tight.empty
    X = obeying(net, box, nap, 20000, seed)
    assert X.shape[0] > 0
    for k, z in enumerate(net.pre_activations(X)[:-1]):
        assert (z >= tight.lower[k] - 1e-7).all() and (z <= tight.upper[k] + 1e-7).all()
        assert (tight.lower[k] >= start.lower[k] - 1e-12).all()


#: The neurons COARSEN had freed from the refined NAP of label 4 on mnist-net_256x4 (delta
#: 0.95, mined from ``nap_data("mnist")``) when it asked to free neuron 814 too (5 s per
#: call, 2026-12-03; that call timed out).
MNIST_LABEL4_FREED = [
    *(9, 10, 13, 14, 16, 21, 35, 52, 54, 96, 99, 109, 121, 122, 127, 132, 136, 145, 160),
    *(161, 162, 168, 170, 194, 232, 269, 285, 300, 309, 324, 325, 332, 336, 383, 386, 392),
    *(393, 395, 404, 416, 425, 428, 441, 447, 464, 482, 492, 504, 814),
]


@pytest.mark.data
def test_output_optimisation_runs_long_enough_on_wide_nap_queries(shared_data: Path) -> None:
    """A COARSEN query whose margins climb slowly but far: the former stopping rule (at most
    100 steps, stalled at < 1e-3 gain per 10) quit at a worst margin of about -5.7; the
    default run proves all nine (worst about +0.34). The exact LP relaxation proves them too,
    in 2.7 s on a fresh model (169 s when its first solve ran with presolve)."""
    net = load_onnx(shared_data / "mnistfc" / "mnist-net_256x4.onnx")
    box = Box(np.zeros(784), np.ones(784))
    net = net.replace(domain=box)
    ds = nap_data("mnist")
    spec = refined_nap(net, ds.X_train, ds.y_train, 4, domain=box)
    assert spec.size == 835  # the NAP the run started from
    nap = spec.nap.copy()
    nap[MNIST_LABEL4_FREED] = -1
    rows = np.zeros((9, 10))
    for r, j in enumerate(j for j in range(10) if j != 4):
        rows[r, 4], rows[r, j] = 1.0, -1.0
    bounds = symbolic_bounds(net, box, nap)
    old = CrownConfig(output_iterations=100, stall_window=10, stall_tol=1e-3)
    assert CrownBounds(net, box, config=old).output_lower(nap, bounds, rows).min() < -1.0
    assert CrownBounds(net, box).output_lower(nap, bounds, rows).min() > 0.0
    # The verifier then settles the query by bounds alone, with an input of class 4 that
    # obeys the NAP as its witness.
    members = ds.X_train[ds.y_train == 4]
    res = MilpVerifier(seed=0).verify_nap(net, spec.with_nap(nap).query(net, members), 60)
    assert res.status is Status.VERIFIED and res.reason == "bounds"
    inside = members[spec.with_nap(nap).contains(net, members)]
    assert inside.size and (net.predict(inside) == 4).all()


#: The defaults' steps, searched in float32 (the final bound is still float64 with its pad).
FAST = CrownConfig(iterations=200, output_iterations=300, search_dtype="float32")


@settings(max_examples=25, deadline=None)
@given(*TINY_CASES)
def test_a_float32_search_still_gives_sound_float64_bounds(
    seed: int, n_in: int, hidden: list[int], n_out: int, nap_seed: int
) -> None:
    """Any slopes in [0, 1] and multipliers >= 0 give a valid bound: parameters found in
    float32 and evaluated in float64 stay below the exact minimum, and the tightened hidden
    bounds hold for every sampled input that obeys the NAP."""
    net = tiny_net(seed, n_in, (*hidden, 3), n_out)
    box = net.domain
    assert box is not None
    rng = np.random.default_rng(nap_seed)
    nap = random_nap(net, box, rng)
    start = symbolic_bounds(net, box, nap)
    crown = CrownBounds(net, box, config=FAST)
    C = rng.normal(size=(3, n_out))
    low = crown.output_lower(nap, start, C)
    assert low.dtype == np.float64
    for row, value in zip(C, low, strict=True):
        assert value <= -brute_force_max(net, box, -row, nap) + 1e-9
    tight = crown.tighten(nap, start)
    X = obeying(net, box, nap, 4000, nap_seed)
    if X.shape[0]:
        for k, z in enumerate(net.pre_activations(X)[:-1]):
            assert (z >= tight.lower[k] - 1e-9).all() and (z <= tight.upper[k] + 1e-9).all()


def test_search_settings_are_checked() -> None:
    with pytest.raises(InputError, match="search_dtype"):
        CrownConfig(search_dtype="float16")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="unknown device"):
        CrownConfig(device="abacus")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA device"):
            CrownConfig(device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_a_gpu_search_gives_cpu_float64_results() -> None:
    net = tiny_net(3, 4, (8, 8, 3), 3)
    box = net.domain
    assert box is not None
    nap = random_nap(net, box, np.random.default_rng(0))
    start = symbolic_bounds(net, box, nap)
    C = np.eye(3)
    gpu = CrownBounds(net, box, config=CrownConfig(device="cuda", search_dtype="float32"))
    low = gpu.output_lower(nap, start, C)
    assert low.dtype == np.float64
    for row, value in zip(C, low, strict=True):
        assert value <= -brute_force_max(net, box, -row, nap) + 1e-9
