"""Why-not explanations, checked against brute force on tiny networks.

The oracle enumerates every activation pattern of a 2-input network with 8 hidden neurons
and decides, with one scipy LP each (its own local maps, not relucid's), whether the target
class can win in the pattern's region; the minimum Hamming distance to x's pattern over the
feasible patterns is what ``milp`` must find and ``hamming`` must agree with.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linprog
from test_verify_engine import balanced_net, random_net

from relucid import ReluNetwork
from relucid.domain import Box
from relucid.errors import InputError
from relucid.explain.whynot import WhyNotExplainer
from relucid.region import RowKind

BOX = Box(-np.ones(2), np.ones(2))


def maps(
    net: ReluNetwork, pattern: np.ndarray
) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    """Per hidden layer (M, c) of the pre-activations, and (L, d) of the outputs, for a
    fixed pattern: plain matrix products."""
    n = net.input_dim
    P, q = np.eye(n), np.zeros(n)  # h = P x + q
    out, k = [], 0
    for w, b in zip(net.weights[:-1], net.biases[:-1], strict=True):
        M, c = w @ P, w @ q + b
        out.append((M, c))
        on = pattern[k : k + w.shape[0]].astype(float)
        P, q = on[:, None] * M, on * c
        k += w.shape[0]
    return out, (net.weights[-1] @ P, net.weights[-1] @ q + net.biases[-1])


def can_win(net: ReluNetwork, pattern: np.ndarray, t: int) -> bool:
    layers, (L, d) = maps(net, pattern)
    M = np.vstack([m for m, _ in layers])
    c = np.concatenate([v for _, v in layers])
    s = np.where(pattern, -1.0, 1.0)  # active: -z <= 0, inactive: z <= 0
    rows = [s[:, None] * M]
    rhs = [-s * c]
    others = [j for j in range(L.shape[0]) if j != t]
    rows.append(L[others] - L[t])  # y_j - y_t <= 0
    rhs.append(d[t] - d[others])
    res = linprog(np.zeros(2), A_ub=np.vstack(rows), b_ub=np.concatenate(rhs), bounds=[(-1, 1)] * 2)
    return bool(res.status == 0)


def min_hamming(net: ReluNetwork, p: np.ndarray, t: int) -> int | None:
    best = None
    for bits in itertools.product((False, True), repeat=p.size):
        q = np.array(bits)
        h = int((q != p).sum())
        if (best is None or h < best) and can_win(net, q, t):
            best = h
    return best


def nets() -> list[ReluNetwork]:
    return [balanced_net([2, 4, 4, 3], start=s) for s in (0, 40, 80)]


@pytest.mark.parametrize("which", [0, 1, 2])
def test_milp_finds_the_minimum_hamming_distance_and_hamming_agrees(which: int) -> None:
    net = nets()[which]
    ex = WhyNotExplainer(net, BOX)
    rng = np.random.default_rng(which)
    checked = 0
    for x in rng.uniform(-1, 1, (6, 2)):
        c = int(ex.classify(x)[0])
        p = net.patterns(x)[0]
        for t in range(3):
            if t == c:
                continue
            want = min_hamming(net, p, t)
            for strategy in ("milp", "hamming"):
                r = ex.why_not(x, t, strategy, timeout=30)  # type: ignore[arg-type]
                if want is None:
                    assert r.outcome == "impossible", (strategy, r.reason)
                    continue
                assert r.outcome == "found", (strategy, r.reason)
                assert "not proved" not in r.reason
                assert r.hamming == want, (strategy, r.hamming, want)
                assert r.proved_nearest and r.lower_bound == want, (strategy, r.lower_bound)
                # a budget cut short: its lower bound is still a true lower bound
                for short in (
                    ex.why_not(x, t, "hamming", max_lps=3),
                    ex.why_not(x, t, "milp", timeout=1e-3),
                ):
                    if short.lower_bound is not None:
                        assert short.lower_bound <= want, (short.strategy, short.lower_bound)
                    if short.outcome == "budget":
                        assert not short.proved_nearest
                # the counterfactual: a plain forward pass gives the target and its pattern
                cf = r.counterfactual
                assert cf is not None and BOX.contains(cf)
                assert int(np.argmax(net.forward(cf))) == t
                assert r.target_pattern is not None
                assert np.array_equal(net.patterns(cf)[0], r.target_pattern)
                assert r.distance_linf == pytest.approx(np.max(np.abs(cf - x)))
                checked += 1
    assert checked >= 10


def test_local_search_keeps_a_feasible_region_and_stops_at_a_local_minimum() -> None:
    from relucid.explain.nearest import NearestRegionMILP

    net = balanced_net([2, 6, 6, 3], start=120)
    ex = WhyNotExplainer(net, BOX)
    search = NearestRegionMILP(ex)
    rng = np.random.default_rng(5)
    checked = 0
    for x, far in zip(rng.uniform(-1, 1, (8, 2)), rng.uniform(-1, 1, (8, 2)), strict=True):
        t = int(ex.classify(far)[0])
        if t == int(ex.classify(x)[0]):
            continue
        p, q0 = net.patterns(x)[0], net.patterns(far)[0]
        q = search.descend(q0, p, t, {"lps": 0}, time.perf_counter() + 30)
        # checked with scipy's LP on plain matrix products, not the explainer's own rows
        assert can_win(net, q, t)
        assert np.all((q == q0) | (q == p)) and np.sum(q != p) <= np.sum(q0 != p)
        for j in np.flatnonzero(q != p):
            back = q.copy()
            back[j] = p[j]
            assert not can_win(net, back, t), j
        checked += 1
    assert checked >= 3


def test_flipped_hyperplanes_separate_the_two_regions() -> None:
    net = nets()[0]
    ex = WhyNotExplainer(net, BOX)
    rng = np.random.default_rng(5)
    seen = 0
    for x in rng.uniform(-1, 1, (8, 2)):
        c = int(ex.classify(x)[0])
        p = net.patterns(x)[0]
        for t in (j for j in range(3) if j != c):
            r = ex.why_not(x, t)
            if r.outcome != "found" or not r.flipped:
                continue
            q = r.target_pattern
            assert q is not None
            (lx, _), (lt, _) = maps(net, p), maps(net, q)
            mx = np.vstack([m for m, _ in lx])
            cx = np.concatenate([v for _, v in lx])
            mt = np.vstack([m for m, _ in lt])
            ct = np.concatenate([v for _, v in lt])

            def region_rows(M: np.ndarray, cc: np.ndarray, pat: np.ndarray) -> tuple:
                s = np.where(pat, -1.0, 1.0)
                return s[:, None] * M, -s * cc

            ax, bx = region_rows(mx, cx, p)
            at, bt = region_rows(mt, ct, q)
            for f in r.flipped:
                # the row is x's side of the neuron in x's region, and x satisfies it
                assert f.a @ x <= f.b + 1e-9
                assert f.active_at_x == bool(p[f.flat])
                # over x's region the neuron keeps x's state; over the target region it has
                # the other one (each region's own map): LPs
                sx = 1.0 if p[f.flat] else -1.0
                lo_x = linprog(sx * mx[f.flat], A_ub=ax, b_ub=bx, bounds=[(-1, 1)] * 2)
                lo_t = linprog(-sx * mt[f.flat], A_ub=at, b_ub=bt, bounds=[(-1, 1)] * 2)
                assert lo_x.status == 0 and lo_t.status == 0
                assert lo_x.fun + sx * cx[f.flat] >= -1e-7  # sx * z >= 0 on x's region
                assert lo_t.fun - sx * ct[f.flat] >= -1e-7  # -sx * z >= 0 on the target's
                if f.layer == 0:  # a first-layer neuron's hyperplane is one and the same
                    assert np.allclose(f.a, -sx * net.weights[0][f.neuron])
                seen += 1
    assert seen > 0


def test_same_region_rows_have_the_right_sign() -> None:
    """The published code flips the offset of the same-region inequality; here the rows of
    the sub-region where the target wins hold at the counterfactual, fail at x on a
    separating row, and describe exactly the inputs of x's region classified as the target.
    """
    found = 0
    for which, net in enumerate(nets()):
        ex = WhyNotExplainer(net, BOX)
        rng = np.random.default_rng(which)
        for x in rng.uniform(-1, 1, (40, 2)):
            c = int(ex.classify(x)[0])
            p = net.patterns(x)[0]
            for t in (j for j in range(3) if j != c):
                r = ex.why_not(x, t)
                if r.strategy != "same-region":
                    continue
                assert r.same_region_rows is not None and r.separating is not None
                A, b, origins = r.same_region_rows
                cf = r.counterfactual
                assert cf is not None
                assert np.all(A @ cf <= b + 1e-9)
                sep = r.separating
                assert sep.any() and np.any(A[sep] @ x > b[sep])
                marked = [o for o, s in zip(origins, sep, strict=True) if s]
                assert all(o.kind is RowKind.CLASS and o.winner == t for o in marked)
                # sampled points of x's region: inside the rows iff classified t
                pts = rng.uniform(-1, 1, (4000, 2))
                pts = pts[(net.patterns(pts) == p).all(axis=1)]
                inside = np.all(pts @ A.T <= b + 1e-9, axis=1)
                y = net.forward(pts)
                wins = y.argmax(axis=1) == t
                margin = np.sort(y, axis=1)[:, -1] - np.sort(y, axis=1)[:, -2]
                clear = margin > 1e-6
                assert np.array_equal(inside[clear], wins[clear])
                found += 1
    assert found > 0


def test_impossible_target_is_proved_impossible() -> None:
    base = random_net(3, [2, 4, 4, 3])
    b = [v.copy() for v in base.biases]
    b[-1][2] = -1e3  # class 2 never wins in [-1, 1]^2
    net = ReluNetwork(base.weights, b)
    ex = WhyNotExplainer(net, BOX)
    x = np.array([0.2, -0.3])
    for strategy in ("milp", "hamming"):
        r = ex.why_not(x, 2, strategy)  # type: ignore[arg-type]
        assert r.outcome == "impossible", (strategy, r.reason)
        assert r.counterfactual is None and r.target_pattern is None
    assert min_hamming(net, net.patterns(x)[0], 2) is None


def test_facet_walk_and_budget_are_explicit() -> None:
    net = nets()[1]
    ex = WhyNotExplainer(net, BOX)
    x = np.array([0.5, 0.5])
    c = int(ex.classify(x)[0])
    for t in (j for j in range(3) if j != c):
        r = ex.why_not(x, t, "facet")
        assert r.outcome in ("found", "budget")
        if r.outcome == "found":
            assert r.counterfactual is not None
            assert int(np.argmax(net.forward(r.counterfactual))) == t
        tiny = ex.why_not(x, t, "hamming", max_lps=1)
        assert tiny.outcome in ("budget", "found")
        if tiny.outcome == "budget":
            assert "budget" in tiny.reason
    with pytest.raises(InputError):
        ex.why_not(x, c)
    with pytest.raises(InputError):
        ex.why_not(x, 7)
    with pytest.raises(InputError):
        ex.why_not(np.array([3.0, 0.0]), (c + 1) % 3)


def test_cli_why_not_and_plot(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from relucid.cli import app
    from relucid.io import save_torch

    net = nets()[0].replace(domain=BOX)
    model = tmp_path / "tiny.pt"
    save_torch(net, model)
    x = np.array([0.3, -0.4])
    c = int(np.argmax(net.forward(x)))
    t = (c + 1) % 3
    runner = CliRunner()
    args = ["explain", "why-not", "--model", str(model), "--input", "0.3,-0.4"]
    res = runner.invoke(app, [*args, "--target", str(t), "--json"])
    assert res.exit_code == 0, res.output
    import json

    out = json.loads(res.output)
    assert out["target"] == t and out["outcome"] in ("found", "impossible")
    txt = runner.invoke(app, [*args, "--target", str(t)])
    assert txt.exit_code == 0 and "why not" in txt.output
    bad = runner.invoke(app, [*args, "--target", str(c)])
    assert bad.exit_code == 2
    png = tmp_path / "regions.png"
    pic = runner.invoke(
        app,
        [
            "explain",
            "plot",
            "--model",
            str(model),
            "--input",
            "0.3,-0.4",
            "--target",
            str(t),
            "--out",
            str(png),
        ],
    )
    assert pic.exit_code == 0, pic.output
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def min_distance(net: ReluNetwork, x: np.ndarray, t: int, norm: str) -> float | None:
    """The smallest L-inf or L1 distance from x to an input where t wins (>=), over every
    pattern's region: scipy LPs in (x', s) or (x', u)."""
    best = None
    n = x.size
    for bits in itertools.product((False, True), repeat=net.num_hidden):
        q = np.array(bits)
        layers, (L, d) = maps(net, q)
        M = np.vstack([m for m, _ in layers])
        c = np.concatenate([v for _, v in layers])
        s = np.where(q, -1.0, 1.0)
        others = [j for j in range(L.shape[0]) if j != t]
        A = np.vstack([s[:, None] * M, L[others] - L[t]])
        b = np.concatenate([-s * c, d[t] - d[others]])
        k = 1 if norm == "linf" else n
        # |x' - x| <= s (linf: one s; l1: one u_i per coordinate)
        E = np.eye(n)
        S = -np.ones((n, 1)) if norm == "linf" else -np.eye(n)
        a_ub = np.vstack(
            [np.hstack([A, np.zeros((A.shape[0], k))]), np.hstack([E, S]), np.hstack([-E, S])]
        )
        b_ub = np.concatenate([b, x, -x])
        cost = np.concatenate([np.zeros(n), np.ones(k)])
        res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=[(-1, 1)] * n + [(0, None)] * k)
        if res.status == 0 and (best is None or res.fun < best):
            best = float(res.fun)
    return best


@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_milp_distance_objectives_match_brute_force(norm: str) -> None:
    net = nets()[2]
    ex = WhyNotExplainer(net, BOX)
    rng = np.random.default_rng(9)
    checked = 0
    for x in rng.uniform(-1, 1, (4, 2)):
        c = int(ex.classify(x)[0])
        for t in (j for j in range(3) if j != c):
            want = min_distance(net, x, t, norm)
            r = ex.why_not(x, t, objective=norm, timeout=30)  # type: ignore[arg-type]
            if want is None:
                assert r.outcome == "impossible"
                continue
            assert r.outcome == "found" and r.counterfactual is not None
            got = r.distance_linf if norm == "linf" else r.distance_l1
            assert got is not None
            # the answer's region holds the nearest point (up to the LP margins), and its
            # counterfactual is the closest point of that region in L-inf
            assert got >= want - 1e-6
            if r.strategy == "milp":
                assert "not proved" not in r.reason
                if norm == "linf":
                    assert got <= want + 1e-4
            checked += 1
    assert checked >= 4


def test_milp_answers_on_the_wbc_network_are_confirmed() -> None:
    """Local search must not land on a flat region (no input to confirm): the seeded WBC
    network's queries that once came back without a counterfactual."""
    from relucid.datasets import wbc_network

    net, split = wbc_network(random_state=0)
    ex = WhyNotExplainer(net)
    for i in (3, 5, 7):
        x = split.X_test[i]
        t = 1 - int(ex.classify(x)[0])
        r = ex.why_not(x, t, timeout=3, details=False)
        assert r.outcome == "found", r.reason
        assert r.counterfactual is not None and int(ex.classify(r.counterfactual)[0]) == t
        assert np.array_equal(net.patterns(r.counterfactual)[0], r.target_pattern)
        assert r.lower_bound is not None and r.lower_bound <= (r.hamming or 0)


@pytest.mark.parametrize("scale", [0.01, 1000.0])
def test_milp_is_exact_on_raw_feature_scales_with_tiny_weights(scale: float) -> None:
    """The why-not MILP works on the unit box with tiny weights as ranges (the verifier's
    model): a network over features on scale ``scale``, shifted off zero, with hidden
    weights of 1e-9, must give the same minimum Hamming distance as brute force on its
    [-1, 1] twin, and the L-inf distance scaled by ``scale``."""
    base = nets()[1]
    tiny = [w.copy() for w in base.weights]
    tiny[1][np.abs(tiny[1]) < np.median(np.abs(tiny[1]))] = 1e-9
    twin = ReluNetwork(tiny, base.biases).replace(domain=BOX)
    shift = np.array([3.0, -7.0]) * scale
    # x' = shift + scale * x, so the first layer reads (x' - shift) / scale
    w0 = twin.weights[0] / scale
    b0 = twin.biases[0] - w0 @ shift
    raw = ReluNetwork([w0, *twin.weights[1:]], [b0, *twin.biases[1:]])
    box = Box(shift - scale, shift + scale)
    ex = WhyNotExplainer(raw, box)
    rng = np.random.default_rng(4)
    checked = milp = 0
    for x in rng.uniform(-1, 1, (4, 2)):
        xr = shift + scale * x
        c = int(ex.classify(xr)[0])
        p = twin.patterns(x)[0]
        assert np.array_equal(raw.patterns(xr)[0], p)
        for t in (j for j in range(3) if j != c):
            want = min_hamming(twin, p, t)
            r = ex.why_not(xr, t, timeout=30)
            if want is None:
                assert r.outcome == "impossible", r.reason
                continue
            assert r.outcome == "found" and r.proved_nearest, r.reason
            assert r.hamming == want
            cf = r.counterfactual
            assert cf is not None and box.contains(cf)
            assert int(np.argmax(raw.forward(cf))) == t
            far = min_distance(twin, x, t, "linf")
            assert far is not None
            d = ex.why_not(xr, t, objective="linf", timeout=30)
            assert d.outcome == "found" and d.distance_linf is not None
            # a same-region answer need not be the nearest input; the MILP's must be
            assert d.distance_linf >= scale * (far - 1e-6)
            if d.strategy == "milp":
                assert "not proved" not in d.reason
                assert d.distance_linf == pytest.approx(scale * far, rel=1e-3, abs=1e-4 * scale)
                milp += 1
            checked += 1
    assert checked >= 3 and milp >= 2
