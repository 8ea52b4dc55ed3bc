"""The network MILP is exact: checked against enumerating every activation pattern.

For a network with a handful of hidden neurons, the maximum of a linear function of the logits
over the box is the largest of one LP per activation pattern (the pattern's region, where the
network is affine). The MILP must reach that maximum, restricted to the patterns a NAP allows,
and report INFEASIBLE exactly when no pattern of the box obeys the NAP.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from relucid import Box, EmptyPolytopeError, InputError, LPStatus, ReluNetwork, local_affine, region
from relucid.io import load_onnx
from relucid.lp import LinearProgram
from relucid.spec import refined_nap
from relucid.spec.data import nap_data
from relucid.verify import MilpVerifier
from relucid.verify.dual import LpSnapshot
from relucid.verify.milp import MILPResult, NetworkMILP
from relucid.verify.tightening import class_margins, fresh_relaxation, relaxed_margin


def tiny_net(seed: int, n_in: int, hidden: tuple[int, ...], n_out: int) -> ReluNetwork:
    rng = np.random.default_rng(seed)
    sizes = [n_in, *hidden, n_out]
    ws = [rng.normal(size=(sizes[k + 1], sizes[k])) for k in range(len(sizes) - 1)]
    bs = [rng.normal(size=sizes[k + 1]) * 0.5 for k in range(len(sizes) - 1)]
    return ReluNetwork(ws, bs, domain=Box(-np.ones(n_in), np.ones(n_in)))


def interval_bounds(net: ReluNetwork, box: Box) -> list[tuple[np.ndarray, np.ndarray]]:
    lo, hi = box.lo, box.hi
    out = []
    for w, b in zip(net.weights[:-1], net.biases[:-1], strict=True):
        wp, wn = np.maximum(w, 0), np.minimum(w, 0)
        zl, zu = wp @ lo + wn @ hi + b, wp @ hi + wn @ lo + b
        out.append((zl, zu))
        lo, hi = np.maximum(zl, 0), np.maximum(zu, 0)
    return out


#: (network seed, inputs, hidden widths, outputs, NAP seed) for :func:`tiny_net` cases.
TINY_CASES = (
    st.integers(0, 10_000),
    st.integers(1, 3),
    st.lists(st.integers(1, 4), min_size=1, max_size=2),
    st.integers(2, 3),
    st.integers(0, 2**31 - 1),
)


def brute_force_max(net: ReluNetwork, box: Box, c_y: np.ndarray, nap: np.ndarray) -> float:
    """max c_y . f(x) over the box and the patterns the NAP allows (-inf if none)."""
    best = -np.inf
    for bits in itertools.product([False, True], repeat=net.num_hidden):
        pattern = np.array(bits)
        if ((nap == 1) & ~pattern).any() or ((nap == 0) & pattern).any():
            continue
        poly, _ = region(net, pattern, box)
        aff = local_affine(net, pattern)
        # Closed regions: z >= 0 for active, z <= 0 for inactive (as the MILP's d allows).
        res = linprog(
            -(c_y @ aff.L),
            A_ub=poly.A,
            b_ub=poly.b + 1e-12,
            bounds=list(zip(box.lo, box.hi, strict=True)),
            method="highs",
        )
        if res.status == 0:
            best = max(best, -res.fun + c_y @ aff.d)
    return best


def milp_max_matches_enumeration(
    milp: NetworkMILP, net: ReluNetwork, box: Box, c_y: np.ndarray, nap: np.ndarray, tol: float
) -> MILPResult | None:
    """Under ``nap``, the MILP's maximum of ``c_y . y`` equals pattern enumeration (INFEASIBLE
    when no pattern is allowed: then None)."""
    milp.set_nap(nap)
    res = milp.maximize(c_y)
    expect = brute_force_max(net, box, c_y, nap)
    if not np.isfinite(expect):
        assert res.status is LPStatus.INFEASIBLE
        return None
    assert res.status is LPStatus.OPTIMAL and res.value is not None
    assert res.value == pytest.approx(expect, abs=tol)
    return res


@settings(max_examples=25, deadline=None)
@given(*TINY_CASES)
def test_milp_maximum_equals_pattern_enumeration(
    seed: int, n_in: int, hidden: list[int], n_out: int, nap_seed: int
) -> None:
    net = tiny_net(seed, n_in, tuple(hidden), n_out)
    box = net.domain
    assert box is not None
    rng = np.random.default_rng(nap_seed)
    nap = rng.choice(np.array([-1, -1, 0, 1], dtype=np.int8), size=net.num_hidden)
    c_y = rng.normal(size=n_out)
    res = milp_max_matches_enumeration(
        NetworkMILP(net, box, interval_bounds(net, box)), net, box, c_y, nap, 1e-6
    )
    if res is None:
        return
    assert res.x is not None and res.value is not None
    # The maximiser replays through a plain forward pass, with a pattern the NAP allows
    # (neurons within 1e-7 of zero may round either way).
    y = net.forward(res.x)
    assert c_y @ y == pytest.approx(res.value, abs=1e-6)
    z = np.concatenate([v[0] for v in net.pre_activations(res.x[None, :])])
    assert (z[nap == 1] >= -1e-7).all() and (z[nap == 0] <= 1e-7).all()


@settings(max_examples=25, deadline=None)
@given(*TINY_CASES, st.integers(0, 2**31 - 1))
def test_unit_inputs_and_tiny_weights_keep_the_milp_exact(
    seed: int, n_in: int, hidden: list[int], n_out: int, nap_seed: int, scale_seed: int
) -> None:
    """Inputs on scales from 0.01 to 1000 (the MILP works on the unit box) and hidden
    weights of 1e-9 to 1e-7 (left out of the rows, whose bounds then hold their range):
    the maximum still equals pattern enumeration, and the maximiser replays."""
    rng = np.random.default_rng(scale_seed)
    base = tiny_net(seed, n_in, tuple(hidden), n_out)
    s = 10.0 ** rng.uniform(-2, 3, size=n_in)
    ws = [w.copy() for w in base.weights]
    for w in ws[1:]:
        tiny = rng.random(w.shape) < 0.3
        w[tiny] = rng.choice([-1.0, 1.0], size=tiny.sum()) * 10.0 ** rng.uniform(-9, -7, tiny.sum())
    net = ReluNetwork(ws, base.biases).with_input_transform(1.0 / s, np.zeros(n_in))
    box = Box(-s, s)
    nap = rng.choice(np.array([-1, -1, 0, 1], dtype=np.int8), size=net.num_hidden)
    c_y = rng.normal(size=n_out)
    milp = NetworkMILP(net, box, interval_bounds(net, box), unit_inputs=True)
    res = milp_max_matches_enumeration(milp, net, box, c_y, nap, 1e-5)
    if res is None:
        return
    assert res.x is not None and res.value is not None
    assert np.all(res.x >= box.lo) and np.all(res.x <= box.hi)
    assert c_y @ net.forward(res.x) == pytest.approx(res.value, abs=1e-5)


def test_every_true_point_satisfies_the_rows_with_tiny_weights() -> None:
    """Soundness of leaving tiny weights out: a network's own points (input, pre- and
    post-activations, pattern, logits) satisfy every row and column bound of the model to
    1e-10, also after new bounds; without the rows' ranges they miss by about 1e-8."""
    rng = np.random.default_rng(5)
    base = tiny_net(3, 4, (6, 5), 3)
    ws = [w.copy() for w in base.weights]
    for w in ws[1:]:
        w[rng.random(w.shape) < 0.4] = 3e-8
    net = ReluNetwork(ws, base.biases)
    box = Box(-np.array([1.0, 10.0, 100.0, 1000.0]), np.array([1.0, 10.0, 100.0, 1000.0]))
    milp = NetworkMILP(net, box, interval_bounds(net, box), unit_inputs=True)
    assert milp._tiny, "the case must leave weights out"
    X = box.lo + rng.random((200, 4)) * (box.hi - box.lo)
    for bounds in (
        interval_bounds(net, box),
        [(lo - 1.0, hi + 2.0) for lo, hi in interval_bounds(net, box)],
    ):
        milp.set_bounds(bounds)
        snap = LpSnapshot.of(milp.lp.highs)
        mat, cl, cu, rl, ru = snap.a, snap.col_lo, snap.col_hi, snap.row_lo, snap.row_hi
        for x in X:
            v = np.zeros(milp.lp.num_cols)
            v[milp.x_cols] = (x - milp.x_lo) / milp.x_w
            h = x
            for k, (w, b) in enumerate(zip(net.weights[:-1], net.biases[:-1], strict=True)):
                z = w @ h + b
                h = np.maximum(z, 0.0)
                v[milp.z_cols[k]], v[milp.h_cols[k]], v[milp.d_cols[k]] = z, h, z > 0
            v[milp.y_cols] = net.weights[-1] @ h + net.biases[-1]
            act = mat @ v
            assert np.all(v >= cl - 1e-10) and np.all(v <= cu + 1e-10)
            assert np.all(act >= rl - 1e-10) and np.all(act <= ru + 1e-10)


@settings(max_examples=25, deadline=None)
@given(*TINY_CASES)
def test_relaxation_lower_bound_is_below_the_true_minimum(
    seed: int, n_in: int, hidden: list[int], n_out: int, nap_seed: int
) -> None:
    # The warm LP relaxation kept beside a MILP (verifier sequences) proves lower bounds:
    # never above the exact minimum over the patterns the NAP allows, and after NAP and
    # bound changes on the parent model it still bounds the new query.
    net = tiny_net(seed, n_in, tuple(hidden), n_out)
    box = net.domain
    assert box is not None
    rng = np.random.default_rng(nap_seed)
    milp = NetworkMILP(net, box, interval_bounds(net, box))
    relax = milp.relaxation()
    for _ in range(3):
        nap = rng.choice(np.array([-1, -1, 0, 1], dtype=np.int8), size=net.num_hidden)
        milp.set_nap(nap)
        milp.set_bounds(interval_bounds(net, box))
        for _ in range(2):
            c_y = rng.normal(size=n_out)
            low = relax.lower_bound(c_y, 30)
            exact_min = -brute_force_max(net, box, -c_y, nap)
            if low is None:  # the relaxation stopped without an optimum (infeasible)
                continue
            assert low <= exact_min + 1e-9
            if np.isinf(low):  # infeasible, by a Farkas ray our weak-duality check accepted
                assert np.isinf(exact_min)  # no input obeys the NAP
                continue
            # The LP optimum and the dual bound agree up to rounding.
            assert low == pytest.approx(relax.lp.highs.getInfo().objective_function_value, abs=1e-7)


@settings(max_examples=25, deadline=None)
@given(*TINY_CASES)
def test_class_margins_bound_every_input_of_the_nap_region(
    seed: int, n_in: int, hidden: list[int], n_out: int, nap_seed: int
) -> None:
    """The lone-query warm-LP stage (``fresh_relaxation``, ``class_margins`` with layer
    tightening) yields, per other class j, a margin m with y_0 - y_j >= m + safety on every
    input obeying the NAP, checked against pattern enumeration; +inf only when none does."""
    net = tiny_net(seed, n_in, (*hidden, 3), n_out)
    box = net.domain
    assert box is not None
    rng = np.random.default_rng(nap_seed)
    nap = rng.choice(np.array([-1, -1, 0, 1], dtype=np.int8), size=net.num_hidden)
    try:
        model, relax, bounds = fresh_relaxation(net, box, nap)
    except EmptyPolytopeError:  # the bounds prove the region empty: so must enumeration
        assert brute_force_max(net, box, np.ones(n_out), nap) == -np.inf
        return
    safety = 1e-3
    margins = class_margins(model, relax, bounds, nap, 0, None, max_per_layer=32, safety=safety)
    for j, margin in zip(range(1, n_out), margins, strict=True):
        c_y = np.zeros(n_out)
        c_y[0], c_y[j] = 1.0, -1.0
        exact_min = -brute_force_max(net, box, -c_y, nap)
        assert margin + safety <= exact_min + 1e-7
        if np.isinf(margin):
            assert np.isinf(exact_min)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 2.0))
def test_dual_bound_is_valid_for_any_multipliers(seed: int, noise: float) -> None:
    # Weak duality holds for every multiplier vector: a perturbed dual still gives a bound
    # at or below the optimum (scipy's, solved independently), and the exact one is tight.
    rng = np.random.default_rng(seed)
    m, n = 6, 4
    a = rng.normal(size=(m, n))
    x0 = rng.uniform(-1, 1, n)
    row_hi = a @ x0 + rng.uniform(0.1, 1.0, m)
    row_lo = np.where(rng.random(m) < 0.5, a @ x0 - rng.uniform(0.1, 1.0, m), -np.inf)
    c = rng.normal(size=n)
    lp = LinearProgram(a, row_hi, row_lo, col_lo=-2 * np.ones(n), col_hi=2 * np.ones(n))
    res = lp.minimize(c)
    ref = linprog(
        c,
        A_ub=np.vstack([a, -a[np.isfinite(row_lo)]]),
        b_ub=np.concatenate([row_hi, -row_lo[np.isfinite(row_lo)]]),
        bounds=[(-2, 2)] * n,
        method="highs",
    )
    assert res.objective is not None and ref.status == 0
    snap = LpSnapshot.of(lp.highs)
    duals = lp.row_duals()
    assert snap.dual_bound(c, duals) == pytest.approx(ref.fun, abs=1e-8)
    perturbed = duals + noise * rng.normal(size=m)
    assert snap.dual_bound(c, perturbed) <= ref.fun + 1e-9


def test_freeing_neurons_only_loosens_bounds_on_one_model() -> None:
    net = tiny_net(3, 2, (4, 3), 3)
    box = net.domain
    assert box is not None
    milp = NetworkMILP(net, box, interval_bounds(net, box))
    c_y = np.array([1.0, -1.0, 0.0])
    x0 = np.array([0.3, -0.2])
    pattern = net.patterns(x0)[0]
    fixed = pattern.astype(np.int8)
    values = []
    for free in range(net.num_hidden + 1):
        nap = fixed.copy()
        nap[:free] = -1
        milp.set_nap(nap)
        res = milp.maximize(c_y)
        assert res.status is LPStatus.OPTIMAL and res.value is not None
        assert res.value == pytest.approx(brute_force_max(net, box, c_y, nap), abs=1e-6)
        values.append(res.value)
    # A coarser NAP has the larger maximum (up to the MIP tolerances, about 1e-6).
    assert all(a <= b + 1e-5 for a, b in itertools.pairwise(values))
    assert values[0] >= c_y @ net.forward(x0) - 1e-9


def test_bad_arguments_are_refused() -> None:
    net = tiny_net(0, 2, (3,), 2)
    box = net.domain
    assert box is not None
    b = interval_bounds(net, box)
    with pytest.raises(InputError):
        NetworkMILP(net, box, b + b)
    with pytest.raises(InputError):
        NetworkMILP(net, Box(np.full(2, -np.inf), np.ones(2)), b)
    milp = NetworkMILP(net, box, b)
    with pytest.raises(InputError):
        milp.set_nap(np.array([2, 0, 1]))
    with pytest.raises(InputError):
        milp.set_nap(np.zeros(5))


@pytest.mark.data
def test_a_cold_relaxation_finishes_on_an_mnist_nap_query(shared_data: Path) -> None:
    """A fresh relaxation's first solves, as a lone query's warm-LP stage runs them: on the
    refined NAP of label 0 on mnist-net_256x4, HiGHS's dual simplex on the presolved LP
    (the relaxation's first solve until 2026-12-05) stalled past 30 s; without presolve the
    stage takes about 2 s and its weak-duality margins prove every term."""
    net = load_onnx(shared_data / "mnistfc" / "mnist-net_256x4.onnx")
    box = Box(np.zeros(784), np.ones(784))
    ds = nap_data("mnist")
    spec = refined_nap(net, ds.X_train, ds.y_train, 0, domain=box)
    assert spec.size == 857
    milp, relax, bounds = fresh_relaxation(net, box, spec.nap)
    v = MilpVerifier()
    deadline = time.perf_counter() + 20.0
    margins = class_margins(
        milp,
        relax,
        bounds,
        spec.nap,
        0,
        deadline,
        max_per_layer=v.warm_lp_max,
        safety=v.safety,
    )
    for margin in margins:
        assert margin > 0
    # The proof says every input obeying the NAP is classified 0: so are the ones we have.
    inside = ds.X_train[spec.contains(net, ds.X_train)]
    assert inside.shape[0] > 100 and (net.predict(inside) == 0).all()


class _CutShort:
    """A relaxation whose first solve of each row runs out of its time (a stub)."""

    def __init__(self) -> None:
        self.limits: list[float | None] = []

    def lower_bound(self, c_y: np.ndarray, time_limit: float | None) -> float:
        self.limits.append(time_limit)
        if len(self.limits) % 2:
            raise TimeoutError("cut short")
        return float(np.sum(c_y))


def test_relaxed_margin_resumes_an_lp_cut_short_by_its_share() -> None:
    """Each term LP gets half the time left; one that runs out resumes with all the time
    then left, instead of leaving the term (and every later one) to the MILP."""
    stub = _CutShort()
    deadline = time.perf_counter() + 30.0
    c = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    margin = relaxed_margin(stub, c, np.array([5.0, 1.0, 0.0]), deadline)  # type: ignore[arg-type]
    assert margin == 1.0  # row 0: 0 - 5; row 1: 2 - 1 > 0, so row 2 is not asked
    assert len(stub.limits) == 4
    first, resumed = stub.limits[0], stub.limits[1]
    assert first is not None and resumed is not None
    assert 14.0 < first <= 15.0 and 2 * first - 0.1 < resumed <= 2 * first

    # a resume that runs out too is a timeout
    class NeverDone(_CutShort):
        def lower_bound(self, c_y: np.ndarray, time_limit: float | None) -> float:
            raise TimeoutError("cut short")

    with pytest.raises(TimeoutError):
        relaxed_margin(NeverDone(), c, np.zeros(3), deadline)  # type: ignore[arg-type]


@pytest.mark.data
def test_an_interrupted_relaxation_resumes_to_the_same_proved_bound(shared_data: Path) -> None:
    """HiGHS's simplex, stopped by its time limit, goes on at the next solve: the resumed LP
    proves the same bound as an uninterrupted solve of a fresh model (mnist-net_256x4,
    label 1's refined NAP, one output term)."""
    net = load_onnx(shared_data / "mnistfc" / "mnist-net_256x4.onnx")
    box = Box(np.zeros(784), np.ones(784))
    ds = nap_data("mnist")
    spec = refined_nap(net, ds.X_train, ds.y_train, 1, domain=box)
    c_y = np.zeros(10)
    c_y[1], c_y[7] = 1.0, -1.0
    _, relax, _ = fresh_relaxation(net, box, spec.nap)
    with pytest.raises(TimeoutError):
        relax.lower_bound(c_y, 1e-3)
    resumed = relax.lower_bound(c_y, 120.0)
    _, fresh, _ = fresh_relaxation(net, box, spec.nap)
    whole = fresh.lower_bound(c_y, 120.0)
    assert resumed is not None and whole is not None and np.isfinite(whole)
    assert resumed == pytest.approx(whole, rel=1e-6, abs=1e-6)
