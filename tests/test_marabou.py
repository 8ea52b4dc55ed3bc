"""The Marabou backend against exact ground truth on tiny networks.

Ground truth is independent of relucid's geometry: on a network with a handful of hidden
neurons, every activation pattern extending a NAP is enumerated; on each pattern's closed
region the network is affine (composed here with plain numpy), so the least
``y_c - y_j`` over the region is one ``scipy.optimize.linprog``. The minimum over patterns
and classes ``j`` is the exact worst margin ``g*`` of the NAP (None when every region is
empty). A query with margin ``g* - 0.05`` must be VERIFIED, one with ``g* + 0.05`` FALSIFIED
with an input that a float64 forward pass confirms.

Marabou 2.0.0 itself is not always right about UNSAT (one regression case below); the
backend's cross-check must turn such a miss into a replayed counterexample.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.optimize import linprog

from relucid import Box, ReluNetwork
from relucid.errors import InputError, SolverError
from relucid.verify import marabou as marabou_module
from relucid.verify import parse_vnnlib
from relucid.verify.marabou import MarabouVerifier, marabou_available
from relucid.verify.query import NapQuery, Status

needs_marabou = pytest.mark.skipif(
    not marabou_available(),
    reason="maraboupy is not installed (pip install 'relucid[marabou]'; CPython <= 3.11, x86-64)",
)

FloatArray = NDArray[np.float64]
GAP = 0.05


# -- fixtures and ground truth -------------------------------------------------------------------
@pytest.fixture(scope="module")
def verifier() -> Iterator[MarabouVerifier]:
    if not marabou_available():
        pytest.skip("maraboupy is not installed")
    with MarabouVerifier() as v:
        yield v


def random_net(seed: int, sizes: tuple[int, ...] = (3, 4, 4, 3)) -> ReluNetwork:
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(m, n)) for n, m in itertools.pairwise(sizes)]
    biases = [0.5 * rng.normal(size=m) for m in sizes[1:]]
    return ReluNetwork(weights, biases, name=f"random-{seed}")


def pieces(net: ReluNetwork, pattern: NDArray[np.bool_]) -> tuple[FloatArray, ...]:
    """``z = M x + c`` (all hidden neurons) and ``y = L x + e`` where ``x`` has ``pattern``."""
    g_mat, g_vec = np.eye(net.input_dim), np.zeros(net.input_dim)
    ms, cs, start = [], [], 0
    for w, b in zip(net.weights[:-1], net.biases[:-1], strict=True):
        m_k, c_k = w @ g_mat, w @ g_vec + b
        ms.append(m_k)
        cs.append(c_k)
        mask = pattern[start : start + w.shape[0]]
        start += w.shape[0]
        g_mat, g_vec = m_k * mask[:, None], c_k * mask
    return (
        np.vstack(ms),
        np.concatenate(cs),
        net.weights[-1] @ g_mat,
        net.weights[-1] @ g_vec + net.biases[-1],
    )


def exact_min(
    net: ReluNetwork,
    box: Box,
    nap: NDArray[np.int64],
    rows: list[FloatArray],
    A: FloatArray | None = None,
    b: FloatArray | None = None,
) -> tuple[float, FloatArray] | None:
    """``min over x`` of ``min_r r . f(x)`` over the box, ``A x <= b`` and the closed NAP
    region, by enumerating patterns; None if no input obeys the NAP."""
    free = np.flatnonzero(nap < 0)
    best: tuple[float, FloatArray] | None = None
    a_in = np.zeros((0, net.input_dim)) if A is None else A
    b_in = np.zeros(0) if b is None else b
    for bits in itertools.product((False, True), repeat=free.size):
        pattern = nap == 1
        pattern[free] = bits
        m_all, c_all, l_mat, e_vec = pieces(net, pattern)
        sign = np.where(pattern, -1.0, 1.0)  # active: -z <= 0; inactive: z <= 0
        a_ub = np.vstack([sign[:, None] * m_all, a_in])
        b_ub = np.concatenate([-sign * c_all, b_in])
        for r in rows:
            res = linprog(
                r @ l_mat,
                A_ub=a_ub,
                b_ub=b_ub,
                bounds=np.column_stack([box.lo, box.hi]),
                method="highs",
            )
            if res.status == 2:
                break  # this pattern's region is empty
            assert res.status == 0, res.message
            value = float(res.fun + r @ e_vec)
            if best is None or value < best[0]:
                best = (value, res.x)
    return best


def class_rows(label: int, m: int) -> list[FloatArray]:
    return [np.eye(m)[label] - np.eye(m)[j] for j in range(m) if j != label]


def nap_of(net: ReluNetwork, x: FloatArray) -> NDArray[np.int64]:
    return (np.concatenate(net.pre_activations(x), axis=-1)[0] > 0).astype(np.int64)


# -- NAP queries -----------------------------------------------------------------------------
@needs_marabou
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["full", "partial", "free", "halfspace"])
def test_nap_verdicts_match_exact_margin(verifier: MarabouVerifier, seed: int, kind: str) -> None:
    net = random_net(seed)
    rng = np.random.default_rng(100 + seed)
    box = Box(-np.ones(3), np.ones(3))
    x0 = rng.uniform(-1, 1, size=3)
    nap = nap_of(net, x0)
    if kind == "partial":
        nap[rng.permutation(nap.size)[: nap.size // 2]] = -1
    elif kind == "free":
        nap[:] = -1
    A = b = None
    if kind == "halfspace":  # a slab through x0
        A = rng.normal(size=(2, 3))
        A = np.vstack([A[:1], -A[:1]])
        b = np.array([A[0] @ x0 + 0.3, -A[0] @ x0 + 0.3])
    label = int(np.argmax(net.forward(x0)))
    truth = exact_min(net, box, nap, class_rows(label, 3), A, b)
    assert truth is not None  # x0 obeys its own NAP
    worst = truth[0]
    safe = verifier.verify_nap(net, NapQuery(nap, label, box, A, b, margin=worst - GAP), 30)
    assert safe.status is Status.VERIFIED, safe
    assert safe.backend == "marabou" and safe.stats["solves"] == 3  # two classes, emptiness
    unsafe_query = NapQuery(nap, label, box, A, b, margin=worst + GAP)
    unsafe = verifier.verify_nap(net, unsafe_query, 30)
    assert unsafe.status is Status.FALSIFIED, unsafe
    assert unsafe.counterexample is not None
    assert unsafe_query.violated_by(net, unsafe.counterexample)
    gap = net.forward(unsafe.counterexample) @ (np.eye(3)[label] - np.eye(3)[unsafe.violated])
    assert gap <= worst + GAP


@needs_marabou
@pytest.mark.parametrize("seed", range(3))
def test_sampled_violations_are_found(verifier: MarabouVerifier, seed: int) -> None:
    """Partial NAPs at the sampled median margin: sampling sees a violation, Marabou must."""
    net = random_net(10 + seed, (2, 6, 5, 3))
    rng = np.random.default_rng(seed)
    box = Box(-np.ones(2), np.ones(2))
    xs = rng.uniform(-1, 1, size=(20000, 2))
    x0 = xs[0]
    nap = nap_of(net, x0)
    nap[rng.permutation(nap.size)[:7]] = -1
    label = int(np.argmax(net.forward(x0)))
    probe = NapQuery(nap, label, box)
    inside = xs[probe.obeys(net, xs)]
    y = net.forward(inside)
    gaps = np.delete(y[:, label : label + 1] - y, label, axis=1).min(axis=1)
    query = NapQuery(nap, label, box, margin=float(np.median(gaps)))
    assert query.misclassified(y).any()
    result = verifier.verify_nap(net, query, 30)
    assert result.status is Status.FALSIFIED, result
    assert result.counterexample is not None and query.violated_by(net, result.counterexample)
    assert result.to_dict()["result"] == "violated"


@needs_marabou
def test_cross_check_catches_a_wrong_unsat(verifier: MarabouVerifier) -> None:
    """Marabou 2.0.0 answers UNSAT for both classes here although the output is constant on
    most of the NAP region and violates the margin there; the cross-check must not let that
    become VERIFIED. (Found by comparing 400 random queries with :func:`exact_min`.)"""
    net = random_net(1158)
    rng = np.random.default_rng(158)
    box = Box(-np.ones(3), np.ones(3))
    nap = nap_of(net, rng.uniform(-1, 1, 3))
    nap[rng.random(nap.size) < 0.5] = -1
    label = int(rng.integers(3))
    truth = exact_min(net, box, nap, class_rows(label, 3))
    assert truth is not None
    query = NapQuery(nap, label, box, margin=truth[0] + 3e-3)
    xs = rng.uniform(-1, 1, size=(4000, 3))
    inside = xs[query.obeys(net, xs)]
    assert query.misclassified(net.forward(inside)).mean() > 0.5
    result = verifier.verify_nap(net, query, 30)
    assert result.status is Status.FALSIFIED, result
    assert result.counterexample is not None
    assert query.violated_by(net, result.counterexample)


def _empty_net() -> ReluNetwork:
    """Inputs in [-1, 1]^2. Hidden neuron 0: ``0.1 x0 + 0.1 x1 - 1 <= -0.8`` on the box, never
    active. Neurons 1 and 2: ``x0`` and ``-x0 - 0.5``, each active somewhere, never both."""
    w1 = np.array([[0.1, 0.1], [1.0, 0.0], [-1.0, 0.0], [0.5, -0.5]])
    b1 = np.array([-1.0, 0.0, -0.5, 0.1])
    w2 = np.array([[1.0, -1.0, 0.5, 0.2], [-0.5, 1.0, 1.0, -0.3]])
    return ReluNetwork([w1, w2], [b1, np.zeros(2)])


@needs_marabou
@pytest.mark.parametrize(
    ("nap", "empty"),
    [
        ([1, -1, -1, -1], True),  # neuron 0 active: impossible on the box
        ([-1, 1, 1, -1], True),  # x0 >= 0 and x0 <= -0.5
        ([0, -1, -1, -1], False),
        ([-1, 1, 0, -1], False),
    ],
)
def test_empty_naps(verifier: MarabouVerifier, nap: list[int], empty: bool) -> None:
    net = _empty_net()
    box = Box(-np.ones(2), np.ones(2))
    truth = exact_min(net, box, np.array(nap), class_rows(0, 2))
    assert (truth is None) == empty
    # A margin below the exact worst case: nothing can be falsified.
    margin = -100.0 if truth is None else truth[0] - GAP
    result = verifier.verify_nap(net, NapQuery(nap, 0, box, margin=margin), 30)
    assert result.status is (Status.EMPTY if empty else Status.VERIFIED), result
    assert result.to_dict()["result"] == "holds"


# -- VNN-LIB properties -----------------------------------------------------------------------
def _property(threshold: float, regions: list[list[str]]) -> str:
    """Unsafe iff ``Y_0 - Y_1 >= threshold`` or ``Y_2 - Y_1 >= threshold``."""
    head = "\n".join(
        [f"(declare-const X_{i} Real)" for i in range(3)]
        + [f"(declare-const Y_{j} Real)" for j in range(3)]
    )
    if len(regions) == 1:
        inputs = "\n".join(f"(assert {a})" for a in regions[0])
    else:
        inputs = "(assert (or " + " ".join(f"(and {' '.join(r)})" for r in regions) + "))"
    t = repr(float(threshold))
    unsafe = f"(assert (or (and (>= Y_0 (+ Y_1 {t}))) (and (>= (- Y_2 Y_1) {t}))))"
    return f"{head}\n{inputs}\n{unsafe}\n"


def _box_atoms(lo: float, hi: float) -> list[str]:
    return [f"(>= X_{i} {float(lo)!r})" for i in range(3)] + [
        f"(<= X_{i} {float(hi)!r})" for i in range(3)
    ]


@needs_marabou
@pytest.mark.parametrize("seed", range(3))
def test_property_holds_and_is_violated_at_the_exact_threshold(
    verifier: MarabouVerifier, seed: int
) -> None:
    net = random_net(20 + seed)
    regions = [(-1.0, 0.0), (0.25, 1.0)]
    worst = np.inf
    for lo, hi in regions:
        box = Box(np.full(3, lo), np.full(3, hi))
        free = np.full(net.num_hidden, -1)
        # max of Y_0 - Y_1 and Y_2 - Y_1 = -(min of their negations)
        rows = [np.array([-1.0, 1.0, 0.0]), np.array([0.0, 1.0, -1.0])]
        truth = exact_min(net, box, free, rows)
        assert truth is not None
        worst = min(worst, truth[0])
    top = -worst  # the exact largest Y_0 - Y_1 or Y_2 - Y_1 over the input set
    atoms = [_box_atoms(lo, hi) for lo, hi in regions]
    holds = verifier.verify_property(net, parse_vnnlib(_property(top + GAP, atoms)), 30)
    assert holds.status is Status.VERIFIED, holds
    assert holds.stats["solves"] == 4  # two regions times two terms
    prop = parse_vnnlib(_property(top - GAP, atoms))
    violated = verifier.verify_property(net, prop, 30)
    assert violated.status is Status.FALSIFIED, violated
    assert violated.counterexample is not None
    assert prop.check_counterexample(net, violated.counterexample)
    assert violated.violated in (0, 1)


@needs_marabou
def test_property_region_bounded_by_half_spaces(verifier: MarabouVerifier) -> None:
    """``X_i >= -1`` and ``X_0 + X_1 + X_2 <= 1``: no upper bounds in the box, still bounded."""
    net = random_net(30)
    atoms = [f"(>= X_{i} -1.0)" for i in range(3)] + ["(<= (+ X_0 X_1 X_2) 1.0)"]
    prop_text = _property(0.0, [atoms])
    prop = parse_vnnlib(prop_text)
    (region,) = prop.inputs
    assert not np.isfinite(region.box.hi).any() and region.b.size == 1
    big = Box(np.full(3, -1.0), np.full(3, 3.0))  # contains the simplex
    truth = [
        exact_min(net, big, np.full(net.num_hidden, -1), [r], region.A, region.b)
        for r in (np.array([-1.0, 1.0, 0.0]), np.array([0.0, 1.0, -1.0]))
    ]
    top = -min(t[0] for t in truth if t is not None)
    for threshold, status in ((top + GAP, Status.VERIFIED), (top - GAP, Status.FALSIFIED)):
        prop = parse_vnnlib(_property(threshold, [atoms]))
        result = verifier.verify_property(net, prop, 30)
        assert result.status is status, result
        if status is Status.FALSIFIED:
            assert result.counterexample is not None
            assert prop.check_counterexample(net, result.counterexample)


@needs_marabou
def test_property_edge_cases(verifier: MarabouVerifier) -> None:
    net = random_net(31)
    # Only X_0 <= 1 and no lower side: Marabou cannot take it.
    unbounded = parse_vnnlib(_property(0.0, [["(<= X_0 1.0)", "(>= X_1 0.0)", "(<= X_1 0.0)"]]))
    result = verifier.verify_property(net, unbounded, 30)
    assert result.status is Status.UNKNOWN and "bounded" in result.reason
    # An input set that is empty (written as an impossible assertion): EMPTY, "holds".
    empty = parse_vnnlib(_property(0.0, [["false"]]))
    assert not empty.inputs
    result = verifier.verify_property(net, empty, 30)
    assert result.status is Status.EMPTY and result.status.vnn_word == "holds"
    wrong = ReluNetwork([np.ones((3, 2)), np.ones((3, 3))], [np.zeros(3), np.zeros(3)])
    with pytest.raises(InputError):
        verifier.verify_property(wrong, unbounded, 30)


# -- trust, time, errors ------------------------------------------------------------------------
@needs_marabou
def test_failed_replay_is_unknown(
    verifier: MarabouVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SAT answer whose input the forward pass rejects never becomes FALSIFIED."""
    net = random_net(0)
    box = Box(-np.ones(3), np.ones(3))
    query = NapQuery(np.full(net.num_hidden, -1), 0, box, margin=100.0)  # violated everywhere
    monkeypatch.setattr(NapQuery, "violated_by", lambda self, net, x: False)
    result = verifier.verify_nap(net, query, 30)
    assert result.status is Status.UNKNOWN and "replay" in result.reason
    assert result.counterexample is None


@needs_marabou
def test_timeout_is_honoured(verifier: MarabouVerifier) -> None:
    """A near-tight margin on a 8-50-50-50-2 network takes Marabou minutes; the call stops on
    time, and the next call (with a fresh worker) still answers."""
    rng = np.random.default_rng(1)
    sizes = (8, 50, 50, 50, 2)
    weights = [rng.normal(size=(m, n)) / np.sqrt(n) for n, m in itertools.pairwise(sizes)]
    biases = [0.1 * rng.normal(size=m) for m in sizes[1:]]
    net = ReluNetwork(weights, biases)
    box = Box(-np.ones(8), np.ones(8))
    xs = rng.uniform(-1, 1, size=(20000, 8))
    y = net.forward(xs)
    query = NapQuery(
        np.full(net.num_hidden, -1), 0, box, margin=float((y[:, 0] - y[:, 1]).min()) - 0.05
    )
    start = time.perf_counter()
    result = verifier.verify_nap(net, query, timeout=0.5)
    elapsed = time.perf_counter() - start
    assert result.status is Status.UNKNOWN and result.reason == "timeout", result
    assert elapsed < 0.5 + 2.0 and result.seconds < 0.5 + 2.0
    assert verifier.verify_nap(net, query, timeout=0.0).reason == "timeout"
    small = random_net(0)
    quick = NapQuery(np.full(small.num_hidden, -1), 0, Box(-np.ones(3), np.ones(3)), margin=100.0)
    assert verifier.verify_nap(small, quick, timeout=30).status is Status.FALSIFIED


@needs_marabou
def test_bad_arguments(verifier: MarabouVerifier) -> None:
    net = random_net(0)
    box = Box(-np.ones(3), np.ones(3))
    with pytest.raises(InputError):
        verifier.verify_nap(net, NapQuery(np.full(net.num_hidden, -1), 0, box), timeout=-1.0)
    with pytest.raises(InputError):
        verifier.verify_nap(net, NapQuery(np.full(3, -1), 0, box))


def test_missing_maraboupy_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(marabou_module, "marabou_available", lambda: False)
    with pytest.raises(SolverError, match=r"pip install 'relucid\[marabou\]'"):
        MarabouVerifier()


def test_empty_answer_contradicted_by_a_hint_is_unknown() -> None:
    # The WBC network's refined NAP of class 1 (delta 0.9): Marabou 2.0.0 calls it empty
    # although training inputs obey it. With those inputs as hints the answer is UNKNOWN.
    from relucid.datasets import wbc_network
    from relucid.spec import refined_nap

    net, split = wbc_network(random_state=0)
    pred = net.forward(split.X_train).argmax(1)
    spec = refined_nap(net, split.X_train, pred, 1, 0.9)
    members = split.X_train[pred == 1]
    q = NapQuery(spec.nap, 1, spec.domain, hints=members[spec.contains(net, members)][:4])
    assert q.obeys(net, q.hints).all()
    res = MarabouVerifier().verify_nap(net, q, 60)
    assert res.status is not Status.EMPTY
