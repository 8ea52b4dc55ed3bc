"""A learned spec's run trace (every verdict, in order) and its picture."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from test_spec import Killer, data

from relucid.errors import InputError
from relucid.spec import NapLearner, NapSpec, plot_nap, refined_nap
from relucid.spec.plot import nap_cells, start_nap
from relucid.spec.verdicts import nap_from_key, nap_key
from relucid.verify import MilpVerifier, NapQuery, Status

PNG = b"\x89PNG\r\n\x1a\n"


def _label() -> int:
    net, X, y = data()
    return next(
        c
        for c in range(3)
        if MilpVerifier()
        .verify_nap(net, NapQuery(refined_nap(net, X, y, c).nap, c, net.domain))
        .status
        is Status.VERIFIED
    )


def _trace_rows(spec: NapSpec) -> list[tuple[int, str, float, float | None]]:
    t = spec.info["trace"]
    return list(zip(t["size"], t["status"], t["seconds"], t["timeout"], strict=True))


@pytest.mark.parametrize("method", ["coarsen", "group"])
def test_trace_holds_every_verdict_in_order(method: str) -> None:
    net, X, y = data()
    label = _label()
    learner = NapLearner(method, timeout=30).fit(net, X, y, label)
    spec, refined = learner.spec_, learner.refined_
    rows = _trace_rows(spec)
    # one entry per verdict the run counts (calls, and counterexample replays without one),
    # and the same counts by status
    assert len(rows) == spec.info["verifier_calls"] == learner.calls_ + learner.reused_
    counts = Counter(status for _, status, _, _ in rows)
    assert counts == Counter({k: v for k, v in learner.counts_.items() if v})
    # the first verdict is the refined NAP's; every NAP asked is coarser than it
    assert rows[0][0] == refined.size and rows[0][1] == "verified"
    assert all(size < refined.size for size, *_ in rows[1:])
    # the result is the smallest NAP verified on the way
    assert min(size for size, status, _, _ in rows if status == "verified") == spec.size
    # a verifier call ran at the run's limit; a counterexample replay has none and no time
    for _, status, seconds, limit in rows:
        assert limit == 30 or (limit is None and status == "falsified" and seconds == 0)
    assert spec.info["hidden_sizes"] == list(net.hidden_sizes)


def test_resumed_run_keeps_the_killed_runs_trace(tmp_path: Path) -> None:
    net, X, y = data()
    label = _label()
    whole = NapLearner("coarsen", timeout=30).fit(net, X, y, label)
    ck = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        NapLearner("coarsen", timeout=30, verifier=Killer(3), checkpoint=ck).fit(net, X, y, label)
    resumed = NapLearner("coarsen", timeout=30, checkpoint=ck).fit(net, X, y, label)
    a, b = _trace_rows(whole.spec_), _trace_rows(resumed.spec_)
    assert [(s, st, lim) for s, st, _, lim in a] == [(s, st, lim) for s, st, _, lim in b]
    # and a second resume, served every verdict, still has one entry per verdict
    again = NapLearner("coarsen", timeout=30, checkpoint=ck).fit(net, X, y, label)
    assert again.calls_ == 0 and len(_trace_rows(again.spec_)) == len(b)


def test_nap_cells_mark_the_freed_neurons(tmp_path: Path) -> None:
    net, X, y = data()
    label = _label()
    spec = NapLearner("coarsen", timeout=30).fit(net, X, y, label).spec_
    start = start_nap(spec)
    assert start is not None and np.array_equal(start, refined_nap(net, X, y, label).nap)
    assert np.array_equal(nap_from_key(nap_key(spec.nap)), spec.nap)
    grid = nap_cells(spec, net.hidden_sizes)
    assert grid.shape == (len(net.hidden_sizes), max(net.hidden_sizes))
    cells = grid[~np.isnan(grid)]
    assert int((cells == 1).sum()) == int((spec.nap == 1).sum())
    assert int((cells == 0).sum()) == int((spec.nap == 0).sum())
    assert int((cells == 2).sum()) == int((start >= 0).sum()) - spec.size
    assert int((cells == 3).sum()) == int((start < 0).sum())
    # cell by cell, in flat layer order
    flat = np.concatenate([grid[k, :w] for k, w in enumerate(net.hidden_sizes)])
    expect = np.where(spec.nap >= 0, spec.nap, np.where(start >= 0, 2, 3))
    assert np.array_equal(flat, expect)
    with pytest.raises(InputError, match="do not add up"):
        nap_cells(spec, [3, 3])
    out = plot_nap(spec, tmp_path / "nap.png")
    assert out.read_bytes()[:8] == PNG
    # a spec with no trace and no start verdict (the refined NAP itself): the map alone
    bare = plot_nap(refined_nap(net, X, y, label), tmp_path / "bare.png", hidden_sizes=[8, 8])
    assert bare.read_bytes()[:8] == PNG


def test_cli_plot(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from relucid.cli import app
    from relucid.io import save_torch

    net, X, y = data()
    label = _label()
    model = tmp_path / "blobs.pt"
    save_torch(net, model)
    npz = tmp_path / "blobs.npz"
    np.savez(npz, x=X[:500], y=y[:500], x_test=X[500:], y_test=y[500:])
    spec, pic = tmp_path / "spec.json", tmp_path / "learn.png"
    runner = CliRunner()
    args = ["nap", "learn", "--model", str(model), "--data", str(npz), "--label", str(label)]
    args += ["--method", "group", "--timeout", "30", "--out", str(spec), "--plot", str(pic)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert pic.read_bytes()[:8] == PNG and "picture" in res.output
    again = tmp_path / "again.png"
    res = runner.invoke(app, ["nap", "plot", str(spec), "--out", str(again), "--model", str(model)])
    assert res.exit_code == 0, res.output
    assert again.read_bytes()[:8] == PNG
    missing = runner.invoke(app, ["nap", "plot", str(tmp_path / "none.json"), "--out", str(again)])
    assert missing.exit_code == 2 and "cannot read" in missing.output
