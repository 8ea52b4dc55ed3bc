"""NAP specifications: mining, COARSEN / group COARSEN minimality, certificates, resume."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from test_verify_engine import balanced_net

from relucid import ReluNetwork
from relucid.domain import Box
from relucid.errors import InputError
from relucid.spec import NapLearner, NapSpec, NotASpecificationError, refined_nap
from relucid.training import TrainConfig, train_relu_classifier
from relucid.verify import MilpVerifier, NapQuery, Status, VerifyResult


@functools.cache
def data(seed: int = 0) -> tuple[ReluNetwork, np.ndarray, np.ndarray]:
    """A small trained network on three blobs: class 1's refined NAPs are specifications."""
    X, y = make_blobs(600, n_features=3, centers=3, cluster_std=0.6, random_state=seed)
    net = train_relu_classifier(X, y, TrainConfig(hidden=(8, 8), epochs=100, random_state=0))
    return net.replace(domain=Box(X.min(0), X.max(0))), X, y


def test_refined_nap_uses_exact_integer_cutoffs() -> None:
    net, X, y = data()
    spec = refined_nap(net, X, y, 0, delta=0.95)
    rows = X[y == 0]
    z = np.concatenate(net.pre_activations(rows), axis=1)
    count, k = (z > 0).sum(axis=0), rows.shape[0]
    for i, v in enumerate(spec.nap):
        if v == 1:
            assert count[i] * 100 >= 95 * k
        elif v == 0:
            assert count[i] * 100 <= 5 * k
        else:
            assert 5 * k < count[i] * 100 < 95 * k
    # delta = 1: exactly the neurons with a fixed state on every input.
    full = refined_nap(net, X, y, 0, delta=1.0)
    assert np.array_equal(full.nap == 1, count == k) and np.array_equal(full.nap == 0, count == 0)


def test_contains_agrees_with_forward_pass_and_subsumption() -> None:
    net, X, y = data()
    spec = refined_nap(net, X, y, 1, delta=0.9)
    z = np.concatenate(net.pre_activations(X), axis=1)
    expect = np.all((spec.nap != 1) | (z > 0), axis=1) & np.all((spec.nap != 0) | (z <= 0), axis=1)
    assert np.array_equal(spec.contains(net, X), expect)
    coarser = spec.with_nap(np.where(np.arange(spec.nap.size) % 2 == 0, -1, spec.nap))
    assert (coarser <= spec and not (spec <= coarser)) or coarser.size == spec.size
    assert coarser.coverage(net, X) >= spec.coverage(net, X)


def test_json_round_trip(tmp_path: Path) -> None:
    net, X, y = data()
    spec = refined_nap(net, X, y, 2)
    spec.save(tmp_path / "s.json")
    back = NapSpec.load(tmp_path / "s.json")
    assert back.to_dict() == spec.to_dict()
    back.check(net)
    other = balanced_net([3, 8, 8, 3], start=300)
    with pytest.raises(InputError):
        back.check(other)


@pytest.mark.parametrize("method", ["coarsen", "group"])
def test_learned_nap_is_a_minimal_specification(method: str) -> None:
    net, X, y = data()
    checker = MilpVerifier(seed=7)
    for label in range(3):
        try:
            learner = NapLearner(method, delta=0.95, timeout=30).fit(net, X, y, label)
        except NotASpecificationError:
            continue
        spec = learner.spec_
        assert spec <= learner.refined_
        # The certificate, and an independent re-verification.
        assert spec.verdicts[-1]["status"] == "verified"
        assert (
            checker.verify_nap(net, NapQuery(spec.nap, label, net.domain), 30).status
            is Status.VERIFIED
        )
        # Minimal: freeing any one more neuron fails.
        if learner.counts_["unknown"] == 0:
            for i in np.flatnonzero(spec.nap >= 0):
                trial = spec.nap.copy()
                trial[i] = -1
                res = checker.verify_nap(net, NapQuery(trial, label, net.domain), 30)
                assert res.status is Status.FALSIFIED, (label, i, res)
        return
    pytest.fail("no class had a verified refined NAP")


def test_agreement_order_tries_the_least_agreed_neurons_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    mod = sys.modules["relucid.spec.coarsen"]  # the package re-exports a function of that name
    net, X, y = data()
    seen: list[list[int]] = []
    real = mod.coarsen

    def spy(oracle, nap, order, **kw):  # type: ignore[no-untyped-def]
        seen.append(list(order))
        return real(oracle, nap, order, **kw)

    monkeypatch.setattr(mod, "coarsen", spy)
    learner = NapLearner("coarsen", timeout=30, order="agreement").fit(net, X, y, 1)
    nap = learner.refined_.nap
    z = np.concatenate(net.pre_activations(X[y == 1]), axis=1)
    share = ((z > 0) == (nap == 1)).mean(axis=0)  # a plain forward pass, not agreement()
    (order,) = seen
    assert sorted(order) == list(np.flatnonzero(nap >= 0))
    assert np.all(np.diff(share[order]) >= 0)
    assert np.allclose(mod.agreement(net, nap, X[y == 1])[order], share[order])
    with pytest.raises(InputError, match="order"):
        NapLearner("coarsen", order="best")  # type: ignore[arg-type]


def test_start_timeout_applies_to_the_refined_nap_only() -> None:
    net, X, y = data()

    class Recording(MilpVerifier):
        def __init__(self, seed: int) -> None:
            super().__init__(seed=seed)
            self.limits: list[float | None] = []

        def verify_nap(self, net, query, timeout=None):  # type: ignore[no-untyped-def]
            self.limits.append(timeout)
            return super().verify_nap(net, query, timeout)

    rec = Recording(seed=3)
    learner = NapLearner("coarsen", timeout=20, start_timeout=45, verifier=rec)
    learner.fit(net, X, y, 1)
    assert rec.limits[0] == 45 and len(rec.limits) > 1 and set(rec.limits[1:]) == {20}
    # too little time for the first call: the error says so and names the remedy
    with pytest.raises(NotASpecificationError, match="start_timeout"):
        NapLearner("coarsen", timeout=20, start_timeout=1e-9).fit(net, X, y, 1)


def test_optadvprune_result_is_a_specification() -> None:
    net, X, y = data()
    learner = NapLearner("optadvprune", timeout=30).fit(net, X, y, 1)
    spec = learner.spec_
    assert spec <= learner.refined_ and spec.verdicts[-1]["status"] == "verified"
    res = MilpVerifier(seed=9).verify_nap(net, NapQuery(spec.nap, 1, net.domain), 30)
    assert res.status is Status.VERIFIED
    # Few calls: the adversarial examples did most of the work.
    assert learner.calls_ <= learner.refined_.size


class _UnknownFirst:
    """The MILP verifier, but its first ``n`` NAP queries time out (UNKNOWN)."""

    name = "milp"

    def __init__(self, n: int) -> None:
        self.inner, self.left, self.naps = MilpVerifier(), n, []  # type: ignore[var-annotated]

    def verify_nap(self, net, query, timeout=None):  # type: ignore[no-untyped-def]
        self.naps.append(query.nap.copy())
        if self.left > 0 and len(self.naps) > 1:  # the refined NAP's own call is decided
            self.left -= 1
            return VerifyResult(Status.UNKNOWN, self.name, 0.0, "timeout")
        return self.inner.verify_nap(net, query, 30)

    def verify_property(self, net, prop, timeout=None):  # type: ignore[no-untyped-def]
        raise NotImplementedError


def test_optadvprune_samples_more_examples_after_a_timeout() -> None:
    """An UNKNOWN verdict says nothing about the candidate; the paper's interactive variant
    samples more adversarial examples. Here none of them disagrees on a neuron the first
    candidate frees (the draws stop adding), so the result is the refined NAP, verified."""
    net, X, y = data()
    plain = NapLearner("optadvprune", timeout=30).fit(net, X, y, 1)
    slow = _UnknownFirst(1)
    again = NapLearner("optadvprune", timeout=30, verifier=slow).fit(net, X, y, 1)
    spec = again.spec_
    assert spec.verdicts[-1]["status"] == "verified" and spec <= again.refined_
    # the first candidate (UNKNOWN here) is the plain run's result; then came more draws
    assert np.array_equal(slow.naps[1], plain.spec_.nap)
    assert spec.info["adversarial_examples"] > plain.spec_.info["adversarial_examples"]
    for before, after in zip(slow.naps[1:], slow.naps[2:], strict=False):
        assert ((before >= 0) <= (after >= 0)).all()  # each candidate fixes more
    res = MilpVerifier(seed=4).verify_nap(net, NapQuery(spec.nap, 1, net.domain), 30)
    assert res.status is Status.VERIFIED


def test_stochastic_result_is_a_specification() -> None:
    net, X, y = data()
    learner = NapLearner("stochastic", timeout=30, random_state=3).fit(net, X, y, 1)
    spec = learner.spec_
    assert spec <= learner.refined_ and spec.verdicts[-1]["status"] == "verified"
    res = MilpVerifier(seed=9).verify_nap(net, NapQuery(spec.nap, 1, net.domain), 30)
    assert res.status is Status.VERIFIED
    again = NapLearner("stochastic", timeout=30, random_state=3).fit(net, X, y, 1)
    assert np.array_equal(again.spec_.nap, spec.nap)  # seeded: repeatable


def test_group_needs_fewer_calls_where_most_neurons_go() -> None:
    net, X, y = data()
    for label in range(3):
        try:
            a = NapLearner("coarsen", timeout=30).fit(net, X, y, label)
        except NotASpecificationError:
            continue
        b = NapLearner("group", timeout=30).fit(net, X, y, label)
        assert a.spec_.size == b.spec_.size or b.spec_.size <= a.refined_.size
        if a.refined_.size - a.spec_.size > 0.8 * a.refined_.size:
            assert b.calls_ <= a.calls_


class Killer:
    """A verifier that dies after ``limit`` calls (a simulated kill)."""

    name = "milp"

    def __init__(self, limit: int) -> None:
        self.inner = MilpVerifier()
        self.limit = limit
        self.calls = 0

    def verify_nap(self, net, query, timeout=None):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls > self.limit:
            raise KeyboardInterrupt
        return self.inner.verify_nap(net, query, timeout)

    def verify_property(self, net, prop, timeout=None):  # type: ignore[no-untyped-def]
        raise NotImplementedError


@pytest.mark.parametrize("method", ["coarsen", "group", "stochastic", "optadvprune"])
def test_resume_after_kill_gives_the_same_result(method: str, tmp_path: Path) -> None:
    net, X, y = data()
    label = next(
        c
        for c in range(3)
        if MilpVerifier()
        .verify_nap(net, NapQuery(refined_nap(net, X, y, c).nap, c, net.domain))
        .status
        is Status.VERIFIED
    )
    whole = NapLearner(method, timeout=30).fit(net, X, y, label)
    assert whole.calls_ >= 2
    limit = min(3, whole.calls_ - 1)
    ck = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        NapLearner(method, timeout=30, verifier=Killer(limit), checkpoint=ck).fit(net, X, y, label)
    assert ck.exists()
    # each call's entry keeps the verifier's stage counters (how it was decided)
    entries = json.loads(ck.read_text())["verdicts"].values()
    milp = [e for e in entries if e["backend"] == "milp"]
    assert milp and all("bounds_seconds" in e["stats"] for e in milp)
    resumed = NapLearner(method, timeout=30, checkpoint=ck).fit(net, X, y, label)
    assert np.array_equal(resumed.spec_.nap, whole.spec_.nap)
    assert resumed.replayed_ >= limit
    assert resumed.calls_ + limit == whole.calls_
    # A checkpoint written for another run is refused.
    with pytest.raises(InputError):
        NapLearner("coarsen" if method == "group" else "group", checkpoint=ck).fit(net, X, y, label)


def test_not_a_specification_is_reported() -> None:
    net, X, y = data()
    # delta 0.55 fixes almost everything loosely: usually not a spec; either way, a clear
    # outcome.
    for label in range(3):
        try:
            NapLearner(delta=0.55, timeout=30).fit(net, X, y, label)
        except NotASpecificationError as exc:
            assert "not verified" in str(exc)


def test_cli_learn_resume_and_check(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from relucid.cli import app
    from relucid.io import save_torch

    net, X, y = data()
    model = tmp_path / "blobs.pt"
    save_torch(net, model)
    npz = tmp_path / "blobs.npz"
    np.savez(npz, x=X[:500], y=y[:500], x_test=X[500:], y_test=y[500:])
    out = tmp_path / "spec.json"
    runner = CliRunner()
    args = ["nap", "learn", "--model", str(model), "--data", str(npz), "--label", "1"]
    args += ["--method", "group", "--timeout", "30", "--out", str(out), "--json"]
    args += ["--checkpoint", str(tmp_path / "ck.json")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    spec = NapSpec.load(out)
    assert spec.method == "group" and spec.verdicts[-1]["status"] == "verified"
    assert 0.0 <= spec.info["test_coverage"] <= 1.0
    assert spec.info["block_patience"] == 8  # the default; -1 always halves
    halving = tmp_path / "halving.json"
    res = runner.invoke(app, [*args[:-5], "--out", str(halving), "--block-patience", "-1"])
    assert res.exit_code == 0, res.output
    assert NapSpec.load(halving).info["block_patience"] is None
    # no block timed out here, so the patience never applied: the same NAP
    assert np.array_equal(NapSpec.load(halving).nap, spec.nap)
    # Running again with the same checkpoint replays every verdict: same spec.
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and np.array_equal(NapSpec.load(out).nap, spec.nap)
    chk = runner.invoke(
        app, ["nap", "check", "--model", str(model), "--spec", str(out), "--data", str(npz)]
    )
    assert chk.exit_code == 0, chk.output
    assert "VERIFIED" in chk.output and "test coverage" in chk.output
    table = runner.invoke(app, ["nap", "table", str(out)])
    assert table.exit_code == 0 and "group" in table.output, table.output
    bad = runner.invoke(app, [*args[:-2], "--data", str(tmp_path / "missing.npz")])
    assert bad.exit_code == 2
    stoch = ["--method", "stochastic", *args[args.index("--timeout") :]]
    focus = runner.invoke(app, [*args[: args.index("--method")], *stoch, "--focus-timeout", "60"])
    assert focus.exit_code == 2 and "focus_timeout" in focus.output, focus.output
    coarse = ["--method", "coarsen", *args[args.index("--timeout") :]]
    block = runner.invoke(app, [*args[: args.index("--method")], *coarse, "--block-timeout", "1"])
    assert block.exit_code == 2 and "block_timeout" in block.output, block.output
    retry = runner.invoke(app, [*args[: args.index("--method")], *stoch, "--retry-timeout", "90"])
    assert retry.exit_code == 2 and "retry_timeout" in retry.output, retry.output
    share = runner.invoke(app, [*args, "--crown-share", "2"])
    assert share.exit_code == 2 and "crown_share must lie" in share.output, share.output
    # the same run through a process pool of two, its workers' bounds capped (a cap that
    # cannot bind on this small net at 30 s): the same spec
    pooled = tmp_path / "pooled.json"
    base = ["nap", "learn", "--model", str(model), "--data", str(npz), "--label", "1"]
    base += ["--method", "group", "--timeout", "30", "--out", str(pooled)]
    par = [*base, "--crown-share", "0.5", "--executor", "process", "--workers", "2"]
    res = runner.invoke(app, par)
    assert res.exit_code == 0, res.output
    assert np.array_equal(NapSpec.load(pooled).nap, spec.nap)
    assert NapSpec.load(pooled).info["executor"] == "process"
    assert NapSpec.load(pooled).info["verifier_options"] == {
        "crown_fail_share": 0.3,
        "crown_share": 0.5,
    }
    wrong = runner.invoke(app, [*par[:-4], "--executor", "gpu"])
    assert wrong.exit_code == 2 and "unknown executor" in wrong.output


def test_cli_learn_needs_a_domain_the_model_lacks(tmp_path: Path) -> None:
    """A network file without an input box (ONNX never has one) is learned on --domain;
    without it the command says so instead of failing deep inside."""
    from typer.testing import CliRunner

    from relucid.cli import app
    from relucid.io import load_network, save_torch

    net, X, y = data()
    model = tmp_path / "bare.pt"
    save_torch(net.replace(domain=None), model)
    assert load_network(model).domain is None
    npz = tmp_path / "blobs.npz"
    np.savez(npz, x=X[:500], y=y[:500], x_test=X[500:], y_test=y[500:])
    out = tmp_path / "spec.json"
    runner = CliRunner()
    args = ["nap", "learn", "--model", str(model), "--data", str(npz), "--label", "1"]
    args += ["--method", "group", "--timeout", "30", "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "give --domain" in res.output, res.output
    assert not out.exists()
    lo, hi = X.min(0), X.max(0)
    text = ",".join(f"{a}:{b}" for a, b in zip(lo, hi, strict=True))
    res = runner.invoke(app, [*args, "--domain", text])
    assert res.exit_code == 0, res.output
    spec = NapSpec.load(out)
    assert np.allclose(spec.domain.lo, lo) and np.allclose(spec.domain.hi, hi)
    assert spec.verdicts[-1]["status"] == "verified"
    # the same spec as learned on the model that stores that box
    stored = tmp_path / "stored.json"
    with_box = tmp_path / "boxed.pt"
    save_torch(net, with_box)
    res = runner.invoke(app, [*args[:2], "--model", str(with_box), *args[4:-1], str(stored)])
    assert res.exit_code == 0, res.output
    assert np.array_equal(NapSpec.load(stored).nap, spec.nap)
    # a start spec keeps its own domain: --domain with --start is refused
    res = runner.invoke(app, [*args, "--domain", "0:1", "--start", str(out)])
    assert res.exit_code == 2 and "--start" in res.output, res.output
    short = runner.invoke(app, [*args, "--domain", "0:1,0:1"])
    assert short.exit_code == 2 and "intervals" in short.output, short.output


def test_nap_table_states_each_runs_limits_and_no_missing_values(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from relucid.cli import app
    from relucid.cli.nap import _limits

    info = {"timeout": 1.0, "focus_timeout": 15.0, "retry_timeout": 60.0}
    assert _limits(info) == "1; focus 15; retry 60"
    assert _limits({"timeout": 30.0, "block_timeout": 2.5}) == "30; block 2.5"
    assert _limits({}) == "-"
    net, X, y = data()
    refined = refined_nap(net, X, y, 1)
    path = tmp_path / "refined.json"
    refined.save(path)
    out = CliRunner().invoke(app, ["nap", "table", str(path)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    row = next(line for line in out.output.splitlines() if "refined.json" in line)
    assert "None" not in row and "from" not in row and f" {refined.size} " in row, row


def test_volume_estimate_on_a_known_region() -> None:
    from relucid.spec import estimate_volume, pseudo_centre

    # z0 = x0, z1 = x1 (identity layer): NAP (active, inactive) is the box (0,1] x [-1,0].
    net = ReluNetwork([np.eye(2), np.eye(2)], [np.zeros(2), np.zeros(2)])
    dom = Box(-np.ones(2), np.ones(2))
    spec = NapSpec(np.array([1, 0], np.int8), 0, net.fingerprint(), dom)
    X = np.random.default_rng(0).uniform(-1, 1, (400, 2))
    est = estimate_volume(spec, net, X)
    assert spec.contains(net, est.centre[None, :])[0]
    assert est.lower == pytest.approx([0.0, -1.0], abs=1e-6)
    assert est.upper == pytest.approx([1.0, 0.0], abs=1e-6)
    assert est.log10_volume == pytest.approx(0.0, abs=1e-5)
    assert est.inside_share == pytest.approx(1.0, abs=0.01)
    # the orthotope lies in the region: the joint one is the same box
    assert est.joint_scale == 1.0 and est.joint_log10_volume == est.log10_volume
    # The pseudo-centre minimises the covering L-inf radius among the points.
    pts = X[spec.contains(net, X)]
    c = pseudo_centre(pts)
    radius = np.abs(pts[:, None, :] - pts[None, :, :]).max(axis=2).max(axis=1)
    assert np.abs(c - pts).max(axis=1).max() == pytest.approx(radius.min())


def test_joint_orthotope_lies_in_a_region_the_axis_growth_overshoots() -> None:
    from relucid.spec import estimate_volume

    # two neurons, both fixed active: the diagonal band 0 < x0 - x1 < 0.2 of [-1, 1]^2. Grown
    # one axis at a time, the orthotope is a 0.2 x 0.2 square of which at most 3/4 lies in
    # the band.
    w1 = np.array([[1.0, -1.0], [-1.0, 1.0]])
    net = ReluNetwork([w1, np.ones((1, 2))], [np.array([0.0, 0.2]), np.zeros(1)])
    dom = Box(-np.ones(2), np.ones(2))
    spec = NapSpec(np.array([1, 1], np.int8), 0, net.fingerprint(), dom)
    X = np.random.default_rng(1).uniform(-1, 1, (2000, 2))
    est = estimate_volume(spec, net, X, samples=4000)
    assert est.upper - est.lower == pytest.approx([0.2, 0.2], abs=1e-6)
    assert est.inside_share <= 0.8
    assert 0.0 < est.joint_scale < 1.0 and est.joint_inside_share >= 0.99
    assert est.joint_log10_volume == pytest.approx(est.log10_volume + 2 * np.log10(est.joint_scale))
    # an independent sample of the joint orthotope: (almost) all of it obeys the NAP
    c = est.centre
    lo = c - est.joint_scale * (c - est.lower)
    hi = c + est.joint_scale * (est.upper - c)
    pts = np.random.default_rng(7).uniform(lo, hi, (20000, 2))
    assert spec.contains(net, pts).mean() >= 0.97
    with pytest.raises(InputError, match="joint_target"):
        estimate_volume(spec, net, X, joint_target=1.5)
    none = estimate_volume(spec, net, X, joint_target=None)
    assert np.isnan(none.joint_scale) and none.log10_volume == est.log10_volume


def test_monitor_flags_inputs_outside_every_spec() -> None:
    import torch

    from relucid.spec import NapMonitor

    net, X, y = data()
    spec = NapLearner("group", timeout=30).fit(net, X, y, 1).spec_
    mon = NapMonitor(net, [spec])
    far = X + 50.0  # far outside the data: no NAP of class 1 covers these
    rep = mon.check(np.vstack([X, far]))
    assert np.array_equal(rep.matches[:, 0], spec.contains(net, np.vstack([X, far])))
    assert rep.outside_all[len(X) :].mean() >= rep.outside_all[: len(X)].mean()
    # Matching the class-1 spec guarantees the prediction 1 (the spec is verified).
    assert np.all(rep.predicted[rep.matches[:, 0]] == 1)
    assert np.array_equal(rep.unguaranteed, ~(rep.matches[:, 0] & (rep.predicted == 1)))
    # As a torch forward hook on the same classifier.
    model = net.to_torch(torch.float64)
    handle = model.register_forward_hook(mon.hook())
    model(torch.tensor(X))
    handle.remove()
    assert mon.last is not None
    assert np.array_equal(mon.last.matches, rep.matches[: len(X)])


def test_largest_verified_ball() -> None:
    from relucid.spec import largest_verified_ball

    # y0 - y1 = x0: class 0 wins exactly where x0 > 0.
    net = ReluNetwork([[[1.0, 0.0], [-1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]], [[0, 0], [0, 0]])
    eps = largest_verified_ball(net, 0, [0.5, 0.0], [-1, -1], [1, 1], MilpVerifier())
    assert 0.245 < eps < 0.25  # relative to the range 2: radius 0.5 in x0


# -- counterexample reuse and executors --------------------------------------------------------
def test_known_counterexample_answers_coarser_naps_without_a_call() -> None:
    from relucid.spec.coarsen import VerdictCache

    net, X, y = data()
    spec = refined_nap(net, X, y, 1, delta=0.95)
    cache = VerdictCache(net, 1, spec.domain, MilpVerifier(seed=0), 30)
    everything = np.full_like(spec.nap, -1)  # the empty NAP: surely falsified
    status, cex = cache.result(everything)
    assert status is Status.FALSIFIED and cex is not None and cache.calls == 1
    # any NAP the counterexample obeys is answered by it, replayed
    z = np.concatenate(net.pre_activations(cex[None, :]), axis=1)[0] > 0
    finer = np.where(np.arange(spec.nap.size) % 3 == 0, z.astype(np.int8), -1).astype(np.int8)
    status, cex2 = cache.result(finer)
    assert status is Status.FALSIFIED and cache.calls == 1 and cache.reused == 1
    assert cex2 is not None and NapQuery(finer, 1, spec.domain).violated_by(net, cex2)
    # a NAP it does not obey goes to the verifier
    other = finer.copy()
    other[0] = 1 - other[0]
    cache.result(other)
    assert cache.calls == 2


class _TwoAtATime:
    """A serial executor that says it has two workers: the parallel code paths, run here."""

    name = "serial"
    workers = 2

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.verifier = MilpVerifier(seed=0)

    def map(self, net, queries, timeout):  # type: ignore[no-untyped-def]
        self.batches.append(len(queries))
        return [self.verifier.verify_nap(net, q, timeout) for q in queries]

    def close(self) -> None:
        pass


@pytest.mark.parametrize("method", ["coarsen", "group", "stochastic"])
def test_process_pool_gives_the_verdict_driven_result(method: str) -> None:
    """Independent calls run together; the NAP depends on the verdicts only, so a process
    pool gives what the same batches give in this process."""
    net, X, y = data()
    here = _TwoAtATime()
    ref = NapLearner(method, timeout=30, executor=here).fit(net, X, y, 1)  # type: ignore[arg-type]
    assert here.batches and max(here.batches) == 2
    pool = NapLearner(method, timeout=30, executor="process", workers=2).fit(net, X, y, 1)
    assert np.array_equal(pool.spec_.nap, ref.spec_.nap)
    assert pool.spec_.info["executor"] == "process" and pool.spec_.info["workers"] == 2
    again = MilpVerifier(seed=3).verify_nap(net, NapQuery(pool.spec_.nap, 1, pool.spec_.domain), 30)
    assert again.status is Status.VERIFIED


def test_ray_executor_on_a_local_instance() -> None:
    pytest.importorskip("ray", reason="the optional 'ray' extra is not installed here")
    net, X, y = data()
    here = _TwoAtATime()
    ref = NapLearner("stochastic", timeout=30, executor=here).fit(net, X, y, 1)  # type: ignore[arg-type]
    got = NapLearner("stochastic", timeout=30, executor="ray", workers=2).fit(net, X, y, 1)
    assert np.array_equal(got.spec_.nap, ref.spec_.nap)
    assert got.spec_.info["executor"] == "ray"


def test_cw_attack_returns_close_misclassified_points_in_the_box() -> None:
    from relucid.verify.attack import cw_attack, pgd_attack

    net, X, y = data()
    box = net.domain
    assert box is not None
    xs = X[y == 1][:32]
    pts = cw_attack(net, box, 1, xs)
    assert pts.shape[0] > 0
    assert bool(box.contains(pts).all())
    assert np.all(net.forward(pts).argmax(axis=1) != 1)
    # nearer the class's inputs than PGD's L-inf steps land, on average (scaled L2)
    w = box.hi - box.lo
    others = [(np.eye(3)[[j]] - np.eye(3)[[1]], np.zeros(1)) for j in (0, 2)]
    att = pgd_attack(net, box, [(-c, d) for c, d in others], starts=xs, restarts=0)
    pgd = att.points[att.losses <= 0]
    if pgd.size:

        def near(P: np.ndarray) -> float:
            return float(np.mean(np.min(np.linalg.norm((P[:, None] - xs) / w, axis=2), axis=1)))

        assert near(pts) <= near(pgd) + 1e-9


def test_shifted_images_move_each_pixel_once_and_fill_the_edge_with_zero() -> None:
    from relucid.spec.data import shifted_images

    rng = np.random.default_rng(0)
    X = rng.uniform(0.1, 1.0, (3, 25))  # no zero pixels: a filled edge is visible
    out = shifted_images(X, 5, pixels=2).reshape(4, 3, 5, 5)
    imgs = X.reshape(3, 5, 5)
    # up, down, left, right: np.roll's axis and step, and the rows or columns uncovered
    moves = [
        (1, -2, np.s_[3:, :]),
        (1, 2, np.s_[:2, :]),
        (2, -2, np.s_[:, 3:]),
        (2, 2, np.s_[:, :2]),
    ]
    for k, (axis, step, uncovered) in enumerate(moves):
        edge = np.zeros((5, 5), dtype=bool)
        edge[uncovered] = True
        moved = np.roll(imgs, step, axis=axis)
        np.testing.assert_array_equal(out[k][:, ~edge], moved[:, ~edge])
        assert (out[k][:, edge] == 0).all()
    with pytest.raises(InputError, match="5 x 5"):
        shifted_images(X[:, :24], 5)
    with pytest.raises(InputError, match="pixels"):
        shifted_images(X, 5, pixels=5)
