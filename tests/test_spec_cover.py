"""Growing a spec's coverage, and the proofs that an input cannot join (relucid.spec.cover)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_spec import data

from relucid import ReluNetwork
from relucid.errors import InputError
from relucid.spec import (
    NapLearner,
    NapSpec,
    finest_nap,
    grow_coverage,
    nap_key,
    plot_blockers,
    refined_nap,
)
from relucid.verify import MilpVerifier, NapQuery, Status, VerifyResult


def obeys_closed(net: ReluNetwork, nap: np.ndarray, x: np.ndarray, tol: float = 1e-9) -> bool:
    """The region's closed sides (what a specification speaks about): z >= 0 / z <= 0."""
    z = np.concatenate(net.pre_activations(x[None, :]), axis=1)[0]
    return bool(np.all(z[nap == 1] >= -tol) and np.all(z[nap == 0] <= tol))


def test_finest_nap_is_refined_at_delta_one_and_every_covering_nap_coarsens_it() -> None:
    net, X, y = data()
    rows = X[y == 1]
    finest = finest_nap(net, rows)
    assert np.array_equal(finest, refined_nap(net, X, y, 1, delta=1.0).nap)
    spec = refined_nap(net, X, y, 1, delta=0.9)
    inside = rows[spec.contains(net, rows)]
    sub = spec.with_nap(finest_nap(net, inside))
    assert sub.contains(net, inside).all()
    assert spec <= sub  # the spec covers these inputs, so it coarsens their finest NAP
    with pytest.raises(InputError):
        finest_nap(net, np.zeros((0, X.shape[1])))


def test_grown_spec_is_a_specification_covering_more_and_each_refusal_is_a_proof() -> None:
    net, X, y = data()
    rows = X[y == 1]
    spec = refined_nap(net, X, y, 1, delta=0.9)
    before = spec.contains(net, rows)
    assert not before.all()  # inputs left out: the case under test
    asked: list[NapQuery] = []

    class Counting(MilpVerifier):
        def verify_nap(
            self, net: ReluNetwork, query: NapQuery, timeout: float | None = None
        ) -> VerifyResult:
            asked.append(query)
            return super().verify_nap(net, query, timeout)

    rep = grow_coverage(net, spec, rows, Counting(), 30)
    assert len(rep.steps) == int((~before).sum())
    assert rep.start == int(before.sum())
    # a question answered by an earlier counterexample, or by the grown NAP, costs no call;
    # the others (and the final coarse try) one each, with every input of the set as a hint
    free = [s for s in rep.steps if s.reason.endswith("(no call)")]
    reused = [s for s in free if s.status is Status.FALSIFIED]
    assert reused and len(asked) == len(rep.steps) - len(free) + (rep.coarse != "not tried")
    assert max(len(q.hints) for q in asked if q.hints is not None) > 16
    joined = rep.count(Status.VERIFIED)
    assert joined > 0 and rep.count(Status.FALSIFIED) > 0
    grown = rep.spec
    assert grown is not None and grown.method.startswith("refined+grow")
    after = grown.contains(net, rows)
    # it covers every input covered before, and each one that joined
    assert after[before].all()
    assert after[[s.index for s in rep.steps if s.status is Status.VERIFIED]].all()
    assert rep.covered == int(after.sum()) >= rep.start + joined
    # the proofs speak about the inputs kept (covered before, or joined): a specification
    # covering them leaves out at least every input proved impossible to add
    assert rep.kept == rep.start + joined <= rep.covered <= rep.at_most
    assert rep.at_most == len(rows) - rep.count(Status.FALSIFIED) < len(rows)
    # its certificate, and an independent re-verification
    assert grown.verdicts[-1]["status"] == "verified"
    checker = MilpVerifier(seed=11)
    assert checker.verify_nap(net, NapQuery(grown.nap, 1, net.domain), 30).status is (
        Status.VERIFIED
    )
    if rep.coarse == "verified":
        assert grown <= spec  # the spec's own NAP, coarsened: as minimal as the spec
    # A refusal is a proof: its counterexample lies in the finest NAP of the final covered
    # set with that input (so in every NAP covering them) and is not classified 1.
    for step in rep.steps:
        if step.status is not Status.FALSIFIED:
            continue
        x = step.counterexample
        assert x is not None
        both = after.copy()
        both[step.index] = True
        assert obeys_closed(net, finest_nap(net, rows[both]), x)
        out = net.forward(x[None, :])[0]
        assert np.max(np.delete(out, 1)) >= out[1]  # a tie counts against class 1
    # JSON round trip of the grown spec and the report
    back = NapSpec.from_dict(json.loads(json.dumps(grown.to_dict())))
    assert np.array_equal(back.nap, grown.nap)
    summary = json.loads(json.dumps(rep.to_dict()))
    assert summary["joined"] == joined and len(summary["steps"]) == len(rep.steps)
    assert summary["at_most"] == rep.at_most and summary["kept"] == rep.kept
    # the distinct counterexamples, each with the inputs whose question it settled
    blockers = rep.blockers()
    assert summary["counterexamples"] == len(blockers) <= rep.count(Status.FALSIFIED)
    assert sorted(i for _, inputs in blockers for i in inputs) == sorted(
        st.index for st in rep.steps if st.status is Status.FALSIFIED
    )
    assert any(len(inputs) > 1 for _, inputs in blockers)  # one point, several proofs
    for x, inputs in blockers:
        for i in inputs:
            step = next(st for st in rep.steps if st.index == i)
            assert step.counterexample is not None and np.array_equal(step.counterexample, x)
    assert f"covers at most {rep.at_most} of the {len(rows)}" in str(rep)


def test_nothing_to_grow_from_is_an_error_and_limit_bounds_the_questions() -> None:
    net, X, y = data()
    rows = X[y == 1]
    spec = refined_nap(net, X, y, 1, delta=0.9)
    outside = rows[~spec.contains(net, rows)]
    with pytest.raises(InputError, match="covers none"):
        grow_coverage(net, spec, outside, MilpVerifier(), 30)
    rep = grow_coverage(net, spec, rows, MilpVerifier(), 30, limit=1, coarse=False)
    assert len(rep.steps) == 1 and rep.coarse == "not tried"
    # the fewest-disagreeing input is asked first
    z = np.concatenate(net.pre_activations(rows), axis=1) > 0
    wrong = ((z != (spec.nap == 1)) & (spec.nap >= 0)).sum(1)
    assert rep.steps[0].disagrees == int(wrong[~spec.contains(net, rows)].min())


def test_cli_cover(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from relucid.cli import app

    net, X, y = data()
    rows = X[y == 1]
    spec = refined_nap(net, X, y, 1, delta=0.9)
    spec.save(tmp_path / "s.json")
    np.savez(tmp_path / "d.npz", x=X, y=y)
    model = tmp_path / "blobs.pt"
    from relucid.io import save_torch

    save_torch(net, model)
    runner = CliRunner()
    out = tmp_path / "grown.json"
    args = ["nap", "cover", "--model", str(model), "--spec", str(tmp_path / "s.json")]
    args += ["--data", str(tmp_path / "d.npz"), "--timeout", "30", "--out", str(out), "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output)
    assert payload["covered"] > payload["start_covered"] == int(spec.contains(net, rows).sum())
    assert payload["spec_size"] == spec.size and payload["size"] == NapSpec.load(out).size
    grown = NapSpec.load(out)
    assert grown.contains(net, rows).sum() == payload["covered"]
    text = runner.invoke(app, args[:-1])
    assert text.exit_code == 0 and "proved impossible" in text.output
    assert f"covers at most {payload['at_most']} of the {len(rows)}" in text.output
    bad = runner.invoke(app, [*args, "--threads", "0"])
    assert bad.exit_code != 0 and "threads must be at least 1" in bad.output
    # the counterexamples behind the proofs: misclassified points, and whom each blocks
    cex = tmp_path / "cex.npz"
    res = runner.invoke(app, [*args, "--counterexamples", str(cex)])
    assert res.exit_code == 0, res.output
    saved = np.load(cex)
    again = json.loads(res.output)
    assert saved["x"].shape == (again["counterexamples"], X.shape[1])
    assert len(saved["input"]) == again["cannot_join"] == len(saved["blocker"])
    out = net.forward(saved["x"])
    assert (np.delete(out, 1, axis=1).max(axis=1) >= out[:, 1]).all()  # not class 1 (ties count)
    assert (net.forward(saved["x"]).argmax(axis=1) == saved["predicted"]).all()
    wrong = runner.invoke(app, [*args, "--counterexamples", str(tmp_path / "cex.txt")])
    assert wrong.exit_code != 0 and "must name a .npz file" in wrong.output
    # these inputs are not square images: the picture needs a shape (the API takes one)
    pic = runner.invoke(app, [*args, "--plot", str(tmp_path / "cex.png")])
    assert pic.exit_code != 0 and "not square images" in pic.output
    rep = grow_coverage(net, spec, rows, MilpVerifier(), 30)
    png = plot_blockers(rep, rows, net, tmp_path / "cex.png", image_shape=(1, X.shape[1]))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError, match="does not hold"):
        plot_blockers(rep, rows, net, tmp_path / "x.png", image_shape=(2, X.shape[1]))
    none = grow_coverage(net, spec, rows, MilpVerifier(), 30, limit=0)
    with pytest.raises(InputError, match="no counterexample to draw"):
        plot_blockers(none, rows, net, tmp_path / "y.png", image_shape=(1, X.shape[1]))


def test_cli_threads_caps_torch_and_blas(tmp_path: Path) -> None:
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits
    from typer.testing import CliRunner

    from relucid.cli import app
    from relucid.io import save_torch

    net, X, y = data()
    spec = refined_nap(net, X, y, 1, delta=0.9)
    spec.save(tmp_path / "s.json")
    np.savez(tmp_path / "d.npz", x=X, y=y)
    save_torch(net, tmp_path / "blobs.pt")
    args = ["nap", "cover", "--model", str(tmp_path / "blobs.pt"), "--spec"]
    args += [str(tmp_path / "s.json"), "--data", str(tmp_path / "d.npz"), "--limit", "1"]
    before = torch.get_num_threads()
    with threadpool_limits(limits=None):  # puts the BLAS pools back afterwards
        try:
            res = CliRunner().invoke(app, [*args, "--threads", "1", "--json"])
            assert res.exit_code == 0, res.output
            assert torch.get_num_threads() == 1
            blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
            assert blas and set(blas) == {1}
        finally:
            torch.set_num_threads(before)


def test_coarsening_a_grown_spec_keeps_its_inputs_and_is_minimal() -> None:
    net, X, y = data()
    rows = X[y == 1]
    spec = refined_nap(net, X, y, 1, delta=0.9)
    grown = grow_coverage(net, spec, rows, MilpVerifier(), 30, coarse=False).spec
    assert grown is not None
    learner = NapLearner("coarsen", timeout=30).fit(net, X, y, 1, start=grown)
    final = learner.spec_
    assert final <= grown and learner.refined_.method == "start"
    assert final.info["start_method"] == grown.method and "implied_steps" not in grown.info
    assert final.contains(net, rows)[grown.contains(net, rows)].all()
    assert final.verdicts[0]["nap_key"] == nap_key(grown.nap)  # it started from the grown NAP
    checker = MilpVerifier(seed=5)
    assert checker.verify_nap(net, NapQuery(final.nap, 1, net.domain), 30).status is (
        Status.VERIFIED
    )
    if learner.counts_["unknown"] == 0:
        for i in np.flatnonzero(final.nap >= 0):
            trial = final.nap.copy()
            trial[i] = -1
            res = checker.verify_nap(net, NapQuery(trial, 1, net.domain), 30)
            assert res.status is Status.FALSIFIED, (i, res)
    with pytest.raises(InputError, match="class 1, not 0"):
        NapLearner("coarsen", timeout=30).fit(net, X, y, 0, start=grown)
    with pytest.raises(InputError, match="its own domain"):
        NapLearner("coarsen", timeout=30).fit(net, X, y, 1, start=grown, domain=grown.domain)


def test_cli_learn_from_a_grown_spec(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from relucid.cli import app
    from relucid.io import save_torch

    net, X, y = data()
    rows = X[y == 1]
    grown = grow_coverage(net, refined_nap(net, X, y, 1, delta=0.9), rows, MilpVerifier(), 30)
    assert grown.spec is not None
    grown.spec.save(tmp_path / "grown.json")
    save_torch(net, tmp_path / "blobs.pt")
    np.savez(tmp_path / "d.npz", x=X, y=y)
    out = tmp_path / "final.json"
    args = ["nap", "learn", "--model", str(tmp_path / "blobs.pt")]
    args += ["--data", str(tmp_path / "d.npz"), "--label", "1", "--method", "coarsen"]
    args += ["--timeout", "30", "--out", str(out)]
    res = CliRunner().invoke(app, [*args, "--start", str(tmp_path / "grown.json"), "--json"])
    assert res.exit_code == 0, res.output
    final = NapSpec.load(out)
    assert final <= grown.spec and final.info["start_method"] == grown.spec.method
    assert final.contains(net, rows)[grown.spec.contains(net, rows)].all()
    bad = CliRunner().invoke(app, [*args, "--start", str(tmp_path / "missing.json")])
    assert bad.exit_code != 0 and "cannot read the NAP spec" in bad.output
