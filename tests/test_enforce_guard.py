"""Guarded models, ONNX export, the CLI-level functions, and the benchmark constraints/data."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from relucid import ReluNetwork, load_onnx
from relucid.enforce import (
    ACAS_CLASSES,
    Constraint,
    In,
    InputBox,
    Out,
    SafetyLayer,
    SafetyStatus,
    acas_constraints,
    acas_network_path,
    collision_constraints,
    evaluate_guard,
    guard,
    guard_check,
    guard_export,
    load_acas_art,
    load_collision,
    load_collision_model,
    parse_constraints,
    save_constraints,
    synthetic_constraints,
    synthetic_data,
    to_dnf,
)
from relucid.enforce.constraints import ConstraintSet
from relucid.enforce.dnf import has_cycle
from relucid.errors import InputError
from relucid.io import save_torch


def _small_net(seed: int = 0) -> ReluNetwork:
    rng = np.random.default_rng(seed)
    return ReluNetwork(
        [rng.normal(size=(8, 3)), rng.normal(size=(3, 8))],
        [rng.normal(size=8), rng.normal(size=3)],
        input_names=["a", "b", "c"],
        output_names=["p", "q", "r"],
    )


SMALL = ConstraintSet(
    [
        Constraint(InputBox({0: -0.5}, {0: 1.0}), Out(0).is_max() | (Out(1) > Out(2)), "first"),
        Constraint((In(1) + In(2) <= 0.5) | InputBox({2: 1.5}, None), Out(2) < Out(1), "second"),
    ],
    ["a", "b", "c"],
    ["p", "q", "r"],
)


def test_guard_check_and_export_from_files(tmp_path: Path) -> None:
    """The CLI's two operations end to end; the ONNX graph agrees with torch on 1,000 inputs."""
    net = _small_net()
    save_torch(net, tmp_path / "net.pt")
    save_constraints(SMALL, tmp_path / "small.constraints")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1000, 3))
    y = net.predict(x)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    report = guard_check(tmp_path / "net.pt", tmp_path / "small.constraints", tmp_path / "data.npz")
    assert report.rows == 1000 and report.violating_before > 0
    assert report.violating_after == 0
    assert report.status["CORRECTED"] == report.violating_before - report.bottoms
    assert report.accuracy_before == 1.0 and report.accuracy_after is not None
    assert "violating rows" in report.to_text() and report.to_dict()["rows"] == 1000
    import onnxscript  # noqa: F401  (torch's exporter needs it; a test dependency, never skipped)

    check = guard_export(
        tmp_path / "net.pt",
        tmp_path / "small.constraints",
        tmp_path / "g.onnx",
        data_path=tmp_path / "data.npz",
    )
    assert check.inputs == 1000 and check.corrected > 0
    assert check.ok and check.bottom_equal and check.status_equal, check.to_text()
    assert check.max_abs_diff <= 1e-5


def test_guarded_model_argmin_convention() -> None:
    """With decision='argmin' the layer sees -f(x) and the output keeps f's convention."""
    net = _small_net(3)
    cs = [Constraint(None, Out(0).is_max())]  # in the max convention: class 0 must win
    g = guard(net, cs, decision="argmin")
    x = torch.randn(50, 3)
    out = g(x)
    assert torch.all(out.logits.argmin(dim=1) == 0)
    raw = net.to_torch(torch.float32)(x)
    kept = out.status == SafetyStatus.UNCHANGED
    assert torch.equal(out.logits[kept], raw[kept])
    with pytest.raises(InputError):
        guard(torch.nn.Linear(3, 3), cs)  # num_classes unknown


def test_evaluate_guard_counts_per_constraint() -> None:
    g = guard(_small_net(), SMALL)
    x = torch.randn(300, 3)
    rep = evaluate_guard(g, x)
    assert [c["name"] for c in rep.per_constraint] == ["first", "second"]
    assert all(c["violated_after"] == 0 for c in rep.per_constraint)
    assert sum(rep.status.values()) == 300


# -- synthetic D(alpha, beta, m) ----------------------------------------------------------------
def test_synthetic_constraints_follow_appendix_c() -> None:
    cs = synthetic_constraints(6, 3, 5, random_state=7)
    assert cs == synthetic_constraints(6, 3, 5, random_state=7)
    assert len(cs) == 6
    for c in cs:
        (lo_hi) = [(b - a) for _, a, b in c.pre.bounds]  # type: ignore[attr-defined]
        assert len(lo_hi) == 10 and np.allclose(lo_hi, 0.4)
        terms = to_dnf(c.post, 5).terms
        assert 1 <= len(terms) <= 3 and all(len(t) >= 1 and not has_cycle(t) for t in terms)
    assert parse_constraints(cs.to_text()) == cs


def test_synthetic_data_labels_are_consistent_with_the_constraints() -> None:
    d = synthetic_data(4, 2, 4, N=200, random_state=3)
    assert d.x.shape[1] == 10 and d.x.dtype == np.float32
    assert 0.4 < d.covered.mean() <= 0.55
    layer = SafetyLayer(d.constraints, 4)
    act = layer.active(torch.from_numpy(d.x)).numpy()
    assert np.array_equal(act.any(axis=1), d.covered)
    perms = np.array(list(itertools.permutations(range(4))), dtype=float)
    for i in np.flatnonzero(d.covered)[:60]:
        safe = np.ones(len(perms), dtype=bool)
        for k in np.flatnonzero(act[i]):
            safe &= d.constraints[k].post.holds(perms)
        assert (safe & (perms.argmax(axis=1) == d.y[i])).any()  # the label can be safe


# -- real data (../shared/data) --------------------------------------------------------------
def _in_boxes(cs: ConstraintSet, per: int, seed: int) -> np.ndarray:
    """Uniform samples of each constraint's box, clipped to the ACAS Xu input domain."""
    lo = np.array([-0.3284, -0.5, -0.5, -0.5, -0.5])
    hi = np.array([0.6799, 0.5, 0.5, 0.5, 0.5])
    rng = np.random.default_rng(seed)
    xs = []
    for c in cs:
        boxes = c.pre.parts if hasattr(c.pre, "parts") else (c.pre,)
        for box in boxes:
            a, b = lo.copy(), hi.copy()
            for f, u, v in box.bounds:
                a[f], b[f] = max(a[f], u), min(b[f], v)
            xs.append(a + (b - a) * rng.random((per, 5)))
    return np.concatenate(xs)


@pytest.mark.data
@pytest.mark.parametrize("net_id", [(2, 9), (1, 1), (1, 9)])
def test_acas_guard_removes_violations(shared_data: Path, net_id: tuple[int, int]) -> None:
    cs = acas_constraints(net_id)
    assert cs.class_names == ACAS_CLASSES
    net = load_onnx(acas_network_path(*net_id, root=shared_data))
    g = guard(net, cs, decision="argmin")
    x = torch.tensor(_in_boxes(cs, 400, 0), dtype=torch.float32)
    rep = evaluate_guard(g, x)
    assert rep.violating_after == 0
    xt, yt = load_acas_art(*net_id, root=shared_data)
    rep = evaluate_guard(g, torch.from_numpy(xt), yt)
    assert rep.violating_after == 0
    assert rep.accuracy_after >= rep.accuracy_before - rep.violating_before / rep.rows


@pytest.mark.data
def test_acas_phi2_violations_on_network_2_9_are_corrected(shared_data: Path) -> None:
    net = load_onnx(acas_network_path(2, 9, root=shared_data))
    g = guard(net, acas_constraints((2, 9)), decision="argmin")
    x = torch.tensor(_in_boxes(acas_constraints((2, 9)), 2000, 1), dtype=torch.float32)
    rep = evaluate_guard(g, x)
    phi2 = next(c for c in rep.per_constraint if c["name"] == "phi2")
    assert phi2["violated_before"] > 0 and phi2["violated_after"] == 0
    assert rep.bottoms == 0


@pytest.mark.data
def test_collision_labels_agree_with_the_box_orders(shared_data: Path) -> None:
    """The README asks to confirm the direction of the orders on the data before relying on it."""
    cs = collision_constraints(shared_data)
    x, y = load_collision(shared_data)
    layer = SafetyLayer(cs, 2)
    act = layer.active(torch.from_numpy(x)).numpy()
    for k in np.flatnonzero(act.any(axis=0)):
        hi = cs[k].post.hi  # type: ignore[attr-defined]
        assert np.all(y[act[:, k]] == hi)
    pytest.importorskip("h5py")
    g = guard(load_collision_model(shared_data), cs, 2)
    rep = evaluate_guard(g, torch.from_numpy(x).float(), y)
    assert rep.violating_after == 0 and rep.accuracy_before > 0.99


def test_guard_demo_on_wbc_rules() -> None:
    """The demo's rules parse with the 30 WBC feature names and agree with every label."""
    from rich.console import Console

    from relucid.datasets import load_wbc
    from relucid.enforce.demo import run_guard_demo, wbc_constraints

    split = load_wbc()
    cs = wbc_constraints(split.feature_names)
    assert parse_constraints(cs.to_text()) == cs
    X = np.vstack([split.X_train, split.X_test])
    y = np.r_[split.y_train, split.y_test]
    for c in cs:
        inside = c.pre.holds(X)
        assert inside.any() and c.post.holds(np.eye(2)[y[inside]]).all()
    rng = np.random.default_rng(0)
    net = ReluNetwork(
        [rng.normal(size=(8, 30)) / 30, rng.normal(size=(2, 8))], [np.zeros(8), np.zeros(2)]
    )
    reports = run_guard_demo(Console(file=io.StringIO()), net, split)
    assert all(r.violating_after == 0 for r in reports)
    assert reports[1].violating_before > 0
