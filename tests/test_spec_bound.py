"""The bound on what any specification covers, and the search for the one that covers most
(relucid.spec.bound), checked against every NAP of networks small enough to list them all."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from relucid import ReluNetwork
from relucid.domain import Box
from relucid.errors import InputError
from relucid.spec import NapSpec, coverage_bound, max_coverage, misclassified, refined_nap
from relucid.training import TrainConfig, train_relu_classifier
from relucid.verify import MilpVerifier, NapQuery, Status, VerifyResult


def tiny(seed: int) -> tuple[ReluNetwork, np.ndarray, np.ndarray]:
    """Three overlapping 2-D blobs and a 2x3 ReLU network: 3^6 = 729 NAPs, few enough to
    verify each one."""
    X, y = make_blobs(240, n_features=2, centers=3, cluster_std=1.6, random_state=seed)
    net = train_relu_classifier(X, y, TrainConfig(hidden=(3, 3), epochs=150, random_state=seed))
    return net.replace(domain=Box(X.min(0), X.max(0))), X, y


def specs_by_listing(net: ReluNetwork, template: NapSpec, rows: np.ndarray) -> dict[int, NapSpec]:
    """For each number of inputs some specification covers, one such specification: every NAP
    is tried (each verdict from the complete verifier, no time limit)."""
    z = np.concatenate(net.pre_activations(rows), axis=1) > 0
    verifier = MilpVerifier()
    found: dict[int, NapSpec] = {}
    for states in itertools.product((-1, 0, 1), repeat=z.shape[1]):
        nap = np.array(states, dtype=np.int8)
        covered = int(np.all((z == (nap == 1)) | (nap < 0), axis=1).sum())
        if covered == 0 or covered in found:
            continue
        spec = template.with_nap(nap)
        res = verifier.verify_nap(net, spec.query(net, rows), None)
        assert res.status is not Status.UNKNOWN
        if res.status is Status.VERIFIED:
            found[covered] = spec
    return found


# (seed, label) where specifications of several coverages exist (0 of them for some
# labels of these overlapping blobs, one coverage only for others)
CASES = [(0, 1), (2, 2), (4, 2), (7, 0), (7, 1)]


@pytest.mark.parametrize(("seed", "label"), CASES)
def test_the_bound_holds_for_every_nap_and_the_search_reaches_the_best(
    seed: int, label: int
) -> None:
    net, X, y = tiny(seed)
    rows = X[y == label]
    template = refined_nap(net, X, y, label, delta=1.0)
    found = specs_by_listing(net, template, rows)
    truth = max(found)
    start = found[min(found)]  # the search starts from the spec that covers the fewest
    assert min(found) < truth
    rep = max_coverage(net, start, rows, MilpVerifier(), None, rounds=50)
    # the bound is an upper bound on every specification, and the search ends on the best
    assert rep.bound.upper >= truth
    assert rep.optimal and rep.covered == truth == rep.bound.upper
    # every point the bound rests on is a counterexample (an independent forward pass)
    free = start.with_nap(np.full(start.nap.shape, -1, dtype=np.int8)).query(net)
    assert all(free.violated_by(net, z) for z in rep.counterexamples)
    if rep.spec is not None:
        # the spec found is one, by a fresh verifier, and covers what the report says
        again = MilpVerifier(seed=5).verify_nap(net, rep.spec.query(net, rows), None)
        assert again.status is Status.VERIFIED
        assert int(rep.spec.contains(net, rows).sum()) == rep.covered
        assert rep.spec.method.endswith("+maxcover")
    # the misclassified inputs alone bound it by the share classified right
    plain = coverage_bound(net, template, rows)
    wrong = int((net.forward(rows).argmax(1) != label).sum())
    assert plain.misclassified == wrong and plain.upper <= rows.shape[0] - wrong
    assert int(misclassified(net, template, rows).sum()) == wrong


def test_an_undecided_nap_ends_the_search_with_the_bound_so_far() -> None:
    net, X, y = tiny(7)
    rows = X[y == 1]
    found = specs_by_listing(net, refined_nap(net, X, y, 1, delta=1.0), rows)

    class Undecided(MilpVerifier):
        def verify_nap(
            self, net: ReluNetwork, query: NapQuery, timeout: float | None = None
        ) -> VerifyResult:
            return VerifyResult(Status.UNKNOWN, "stub", 0.0, "timeout")

    rep = max_coverage(net, found[min(found)], rows, Undecided(), None, rounds=50)
    assert [r.status for r in rep.rounds] == [Status.UNKNOWN]
    assert rep.spec is None and rep.covered == min(found) and not rep.optimal
    assert rep.bound.upper >= max(found)


def test_a_point_classified_as_the_label_is_refused_as_a_counterexample() -> None:
    net, X, y = tiny(0)
    rows = X[y == 1]
    spec = refined_nap(net, X, y, 1, delta=1.0)  # the finest NAP of class 1: no specification
    right = rows[net.forward(rows).argmax(1) == 1][:1]
    with pytest.raises(InputError, match="no counterexample"):
        coverage_bound(net, spec, rows, right)
    other = X[(y == 0) & (net.forward(X).argmax(1) == 0)][:1]  # a point of another class
    with pytest.raises(InputError, match="counterexample 2 is no counterexample"):
        coverage_bound(net, spec, rows, np.vstack([other, other, right]))  # row as given
    assert coverage_bound(net, spec, rows, np.vstack([other, other])).points == 1
    with pytest.raises(InputError, match="outside the spec's domain"):
        coverage_bound(net, spec, rows, np.full((1, 2), 1e6))
    with pytest.raises(InputError, match="counterexamples must be"):
        coverage_bound(net, spec, rows, np.zeros((1, 5)))
    with pytest.raises(InputError, match="rounds"):
        max_coverage(net, spec, rows, MilpVerifier(), None, rounds=0)
    # the search starts from a specification: one that a misclassified input obeys is none
    with pytest.raises(InputError, match="is no specification"):
        max_coverage(net, spec, rows, MilpVerifier(), None)


def test_cli_bound(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from relucid.cli import app
    from relucid.io import save_torch

    net, X, y = tiny(7)
    rows = X[y == 1]
    found = specs_by_listing(net, refined_nap(net, X, y, 1, delta=1.0), rows)
    found[min(found)].save(tmp_path / "s.json")
    np.savez(tmp_path / "d.npz", x=X, y=y)
    np.savez(tmp_path / "y.npz", y=y)
    save_torch(net, tmp_path / "m.pt")
    args = ["nap", "bound", "--model", str(tmp_path / "m.pt"), "--spec", str(tmp_path / "s.json")]
    args += ["--data", str(tmp_path / "d.npz"), "--timeout", "30"]
    runner = CliRunner()
    out, cex = tmp_path / "best.json", tmp_path / "cex.npz"
    res = runner.invoke(app, [*args, "--out", str(out), "--counterexamples", str(cex), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output)
    assert payload["optimal"] and payload["covered"] == payload["upper"] == max(found)
    best = NapSpec.load(out)
    assert int(best.contains(net, rows).sum()) == payload["covered"]
    again = MilpVerifier(seed=3).verify_nap(net, best.query(net, rows), None)
    assert again.status is Status.VERIFIED
    # the saved points are counterexamples, the misclassified inputs among them
    saved = np.load(cex)
    free = best.with_nap(np.full(best.nap.shape, -1, dtype=np.int8)).query(net)
    assert len(saved["x"]) == payload["misclassified"] + payload["points"]
    assert payload["counterexamples"] <= len(saved["x"])  # one constraint per pattern
    assert all(free.violated_by(net, z) for z in saved["x"])
    # the bound alone, from those points: no verifier call, the same bound
    text = runner.invoke(app, [*args, "--rounds", "0", "--given", str(cex)])
    assert text.exit_code == 0, text.output
    said = " ".join(text.output.split())
    assert f"no specification covers more than {max(found)} of these {len(rows)}" in said
    shown = runner.invoke(app, [*args, "--out", str(out)])
    assert shown.exit_code == 0 and "round 1:" in shown.output
    assert f"nap learn --start {out}" in " ".join(shown.output.split())
    for bad, message in (
        (["--given", str(tmp_path / "cex.txt")], "must name a .npz file"),
        (["--rounds", "-1"], "0 or more"),
        (["--given", str(tmp_path / "d.npz")], "is no counterexample"),  # x: the inputs
        (["--given", str(tmp_path / "y.npz")], "no array x"),
    ):
        wrong = runner.invoke(app, [*args, *bad])
        assert wrong.exit_code != 0 and message in wrong.output, wrong.output


@pytest.mark.data
def test_committed_mnist_bounds_replay_from_their_points(shared_data: Path) -> None:
    """The ``--whole-class`` rows of ``benchmarks/results/nap_bound.json``, checked without
    a verifier: each committed point is a counterexample of its class (forward pass), and the
    bound's MILP over all the class's MNIST test images, from those points alone, gives the
    row's bound. For labels 0 and 4 it lies below the paper's test coverage."""
    from relucid.io import load_onnx
    from relucid.spec.data import nap_data

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from nap_bound import PAPER_TEST_PCT  # the paper's Table 2 test column, one copy

    results = Path(__file__).parents[1] / "benchmarks" / "results"
    rows = json.loads((results / "nap_bound.json").read_text())["rows"]
    whole = {r["label"]: r for r in rows if r.get("inputs_from") == "both splits"}
    assert sorted(whole) == [0, 1, 4]
    net = load_onnx(shared_data / "mnistfc" / "mnist-net_256x4.onnx")
    d = nap_data("mnist")
    for label, row in sorted(whole.items()):
        stem = row["spec"].removesuffix("-whole.json")
        spec = NapSpec.load(results / "specs" / f"{stem}.json")
        points = np.load(results / "nap_bound_points" / f"{stem}-whole.npz")["x"]
        assert misclassified(net, spec, points).all()
        X = np.vstack([d.X_train[d.y_train == label], d.X_test[d.y_test == label]])
        assert len(X) == row["inputs"]
        bound = coverage_bound(net, spec, X, points, time_limit=None)
        assert bound.exact and bound.upper == row["upper"], (label, bound)
        paper = round(PAPER_TEST_PCT[label] * len(X) / 100)  # the paper's count of images
        assert row["paper_test_pct"] == PAPER_TEST_PCT[label]
        assert row["paper_above_upper"] == (paper > bound.upper)
        if label != 1:  # label 1's bound is the paper's count (1,119 of 1,135), not below
            assert bound.upper < paper  # no specification reaches the paper's figure
