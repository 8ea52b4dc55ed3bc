"""The implied pass: freeing a neuron whose state the rest of the NAP implies keeps the region.

Oracles independent of :mod:`relucid.spec.implied`: dense sampling of the domain (the
coarser NAP admits exactly the inputs the finer one does), a network built by hand whose
implied neurons are known, and a fresh verifier on the learned NAP itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from test_milp import TINY_CASES, tiny_net
from test_spec import _UnknownFirst, data

from relucid import ReluNetwork
from relucid.domain import Box
from relucid.errors import InputError
from relucid.spec import NapLearner, NapSpec
from relucid.spec.implied import check_implied, drop_implied, restore_base, verify_spec
from relucid.spec.plot import nap_cells, plot_nap
from relucid.verify import MilpVerifier, NapQuery, Status


def hand_net() -> ReluNetwork:
    """x in [0, 1]. Layer 1: a = x + 1 (always on), b = x - 0.5. Layer 2: c = -relu(b) - 0.1
    (always off), d = 0.2 - relu(b) (on whenever b is off, either way otherwise)."""
    w1, b1 = np.array([[1.0], [1.0]]), np.array([1.0, -0.5])
    w2, b2 = np.array([[0.0, -1.0], [0.0, -1.0]]), np.array([-0.1, 0.2])
    w3, b3 = np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros(2)
    return ReluNetwork([w1, w2, w3], [b1, b2, b3], domain=Box(np.zeros(1), np.ones(1)))


def test_the_known_implied_neurons_go_and_the_others_stay() -> None:
    net = hand_net()
    box = net.domain
    assert box is not None
    # a on, b on, c off, d on: a and c are implied by the box alone; d is not (b on
    # leaves relu(b) in [0, 0.5]), b is not (x <= 0.5 is in the box)
    out = drop_implied(net, box, np.array([1, 1, 0, 1], np.int8))
    assert out.nap.tolist() == [-1, 1, -1, 1]
    assert out.steps == ((0, 1), (2, 0)) and out.checked == 4
    assert out.base().tolist() == [1, 1, 0, 1]
    # with b fixed off, d's state follows (0.2 - 0 > 0): implied given the rest
    out = drop_implied(net, box, np.array([-1, 0, -1, 1], np.int8))
    assert out.nap.tolist() == [-1, 0, -1, -1] and out.steps == ((3, 1),)
    # but once b is freed first, d is no longer implied
    out = drop_implied(net, box, np.array([-1, 0, -1, 1], np.int8), order=[1, 3])
    assert out.nap.tolist() == [-1, 0, -1, -1]  # b is not implied (x > 0.5 exists)


@settings(max_examples=30, deadline=None)
@given(*TINY_CASES)
def test_the_coarser_nap_admits_exactly_the_same_inputs(
    seed: int, n_in: int, hidden: list[int], n_out: int, nap_seed: int
) -> None:
    net = tiny_net(seed, n_in, (*hidden, 4), n_out)
    box = net.domain
    assert box is not None
    rng = np.random.default_rng(nap_seed)
    x = rng.uniform(box.lo, box.hi)
    nap = net.patterns(x[None, :])[0].astype(np.int8)  # every neuron fixed
    out = drop_implied(net, box, nap)
    X = rng.uniform(box.lo, box.hi, (20000, n_in))
    P = net.patterns(X)

    def members(p: np.ndarray) -> np.ndarray:
        return ((P == (p == 1)) | (p == -1)).all(axis=1)

    assert np.array_equal(members(out.nap), members(nap))
    assert check_implied(net, box, out.nap, out.steps) is None
    assert np.array_equal(restore_base(out.nap, out.steps), nap)


def test_a_forged_step_is_refused() -> None:
    net = hand_net()
    box = net.domain
    assert box is not None
    nap = np.array([-1, -1, 0, 1], np.int8)  # b freed, though it is not implied
    assert check_implied(net, box, nap, [(1, 1)]) is not None
    # c (always off) freed from the same NAP with b on: a true certificate replays
    assert check_implied(net, box, np.array([-1, 1, -1, 1], np.int8), [(2, 0)]) is None
    with pytest.raises(InputError):
        restore_base(nap, [(2, 1)])  # c is fixed in the NAP: not a freed neuron
    with pytest.raises(InputError):
        drop_implied(net, box, np.array([1, 1, 0], np.int8))


def test_a_falsified_base_falsifies_the_coarser_spec() -> None:
    """The hand net's class 0 loses to class 1 (relu(d) > 0 = relu(c)) for x in [0.5, 0.7):
    the base NAP (b on, c off, d on) is falsified, and its counterexample obeys the coarser
    spec (c freed as implied), so verify_spec reports FALSIFIED with that witness."""
    net = hand_net()
    box = net.domain
    assert box is not None
    coarse = np.array([-1, 1, -1, 1], np.int8)
    assert check_implied(net, box, coarse, [(2, 0)]) is None  # the certificate replays
    spec = NapSpec(coarse, 0, net.fingerprint(), box, "coarsen", info={"implied_steps": [[2, 0]]})
    res = verify_spec(net, spec, MilpVerifier(seed=1), 30)
    assert res.status is Status.FALSIFIED and "base NAP, |P| 3" in res.reason
    x = np.asarray(res.counterexample, dtype=float).reshape(1, -1)
    # independent check by a forward pass: the witness obeys the coarser spec (closed sides:
    # the attack may land on a hyperplane, x = 0.5 here) and is not class 0
    pre = np.concatenate([z[0] for z in net.pre_activations(x)])
    fixed = coarse != -1
    assert np.all(np.where(coarse[fixed] == 1, pre[fixed] >= -1e-9, pre[fixed] <= 1e-9))
    logits = net.forward(x)[0]
    assert logits[1] > logits[0]


def test_learned_specs_end_with_the_pass_and_are_verified_both_ways(tmp_path: Path) -> None:
    """Every call after the refined NAP's times out, so COARSEN keeps the refined NAP (four of
    whose neurons the rest implies, on this network); the pass frees them."""
    net, X, y = data(1)
    plain = NapLearner("coarsen", verifier=_UnknownFirst(10**6), implied=False).fit(net, X, y, 0)
    learner = NapLearner("coarsen", verifier=_UnknownFirst(10**6)).fit(net, X, y, 0)
    spec = learner.spec_
    info = spec.info
    assert plain.spec_.size == plain.refined_.size  # the method itself freed nothing
    # the method's own run is the same; the pass only frees neurons after it
    assert info["size_before_implied"] == plain.spec_.size
    assert info["implied_freed"] == 4 and spec.size == plain.spec_.size - 4
    assert spec <= plain.spec_ and not plain.spec_ <= spec
    assert learner.calls_ == plain.calls_  # the pass asks the verifier nothing
    base = restore_base(spec.nap, info["implied_steps"])
    assert np.array_equal(base, plain.spec_.nap)
    assert spec.verdicts[-1]["status"] == "verified"
    assert spec.verdicts[-1]["nap_key"] == plain.spec_.verdicts[-1]["nap_key"]
    # the same inputs obey both (same region)
    lo, hi = net.domain.lo, net.domain.hi  # type: ignore[union-attr]
    sample = np.random.default_rng(0).uniform(lo, hi, (20000, lo.size))
    assert np.array_equal(spec.contains(net, sample), plain.spec_.contains(net, sample))
    assert np.array_equal(spec.contains(net, X), plain.spec_.contains(net, X))
    # independent: a fresh verifier on the coarser NAP itself, and the certificate
    direct = MilpVerifier(seed=5).verify_nap(net, NapQuery(spec.nap, 0, net.domain), 30)
    assert direct.status is Status.VERIFIED
    res = verify_spec(net, spec, MilpVerifier(seed=6), 30, X[y == 0])
    assert res.status is Status.VERIFIED and "4 implied neurons" in res.reason
    # the picture marks them apart from the neurons the method freed (none here)
    cells = nap_cells(spec, net.hidden_sizes)
    assert int(np.sum(cells == 4)) == 4 and int(np.sum(cells == 2)) == 0
    plot_nap(spec, tmp_path / "nap.png")
    assert (tmp_path / "nap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a spec whose steps do not replay is verified as it stands
    forged = spec.with_nap(spec.nap, info={**info, "implied_steps": [[0, 1], [0, 1]]})
    res = verify_spec(net, forged, MilpVerifier(seed=6), 30, X[y == 0])
    assert res.status is Status.VERIFIED and "implied" not in res.reason


def test_cli_checks_a_spec_by_its_certificate_and_learns_without_the_pass(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from relucid.cli import app
    from relucid.io import save_torch
    from relucid.spec import NapSpec

    net, X, y = data(1)
    model = tmp_path / "blobs.pt"
    save_torch(net, model)
    npz = tmp_path / "blobs.npz"
    np.savez(npz, x=X[:500], y=y[:500], x_test=X[500:], y_test=y[500:])
    learned = NapLearner("coarsen", verifier=_UnknownFirst(10**6)).fit(net, X[:500], y[:500], 0)
    assert learned.spec_.info["implied_freed"] > 0
    path = tmp_path / "spec.json"
    learned.spec_.save(path)
    runner = CliRunner()
    chk = runner.invoke(
        app, ["nap", "check", "--model", str(model), "--spec", str(path), "--data", str(npz)]
    )
    assert chk.exit_code == 0, chk.output
    assert "VERIFIED" in chk.output and "implied neurons" in chk.output
    table = runner.invoke(app, ["nap", "table", str(path), "--json"])
    assert table.exit_code == 0, table.output
    assert json.loads(table.output)[0]["implied_freed"] == learned.spec_.info["implied_freed"]
    assert "implied" in runner.invoke(app, ["nap", "table", str(path)]).output
    out = tmp_path / "plain.json"
    args = ["nap", "learn", "--model", str(model), "--data", str(npz), "--label", "0"]
    args += ["--timeout", "30", "--out", str(out), "--no-implied"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "implied_freed" not in NapSpec.load(out).info
