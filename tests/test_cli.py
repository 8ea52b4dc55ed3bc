"""The CLI is a thin layer: it loads, calls the API and prints text or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from relucid.cli import app
from relucid.io import save_torch

from test_why import hand_net

runner = CliRunner()


@pytest.fixture
def hand_model(tmp_path: Path) -> Path:
    path = tmp_path / "hand.pt"
    save_torch(hand_net(), path)
    return path


def test_why_text(hand_model: Path) -> None:
    res = runner.invoke(app, ["explain", "why", "--model", str(hand_model), "--input", "0.5,0.5"])
    assert res.exit_code == 0, res.output
    assert "Why 'yes'?" in res.output and "Vertices (V-representation): 5" in res.output


def test_why_json_with_names_and_domain(hand_model: Path) -> None:
    res = runner.invoke(
        app,
        [
            "explain",
            "why",
            "--model",
            str(hand_model),
            "--input",
            "0.1,0.1",
            "--domain",
            "0:1",
            "--feature-names",
            "left,right",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["predicted_name"] == "no" and d["feature_names"] == ["left", "right"]
    assert d["domain"] == {"lo": [0.0, 0.0], "hi": [1.0, 1.0]}
    assert len(d["constraints"]) == 3


def test_plain_state_dict_loads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    path = tmp_path / "plain.pt"
    torch.save(model.state_dict(), path)
    res = runner.invoke(
        app, ["explain", "why", "--model", str(path), "--input", "0.1,0.2,0.3", "--domain", "-1:1"]
    )
    assert res.exit_code == 0, res.output
    assert "irredundant constraints" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "0.5"], "shape"),
        (["--input", "0.5,nan"], "non-finite"),
        (["--input", "0.5,abc"], "cannot read input"),
        (["--input", "5,0"], "outside the domain"),
        (["--input", "0.5,0.5", "--domain", "0:1,0:1,0:1"], "intervals"),
    ],
)
def test_errors_are_clear(hand_model: Path, args: list[str], message: str) -> None:
    res = runner.invoke(app, ["explain", "why", "--model", str(hand_model), *args])
    assert res.exit_code == 2
    assert message in res.output


def test_missing_model_file(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["explain", "why", "--model", str(tmp_path / "nope.onnx"), "--input", "1"]
    )
    assert res.exit_code == 2 and "error" in res.output


def test_nnet_and_onnx_argmin(shared_data: Path) -> None:
    nnet = shared_data / "acasxu-nnet" / "ACASXU_experimental_v2a_1_1.nnet"
    raw = "2000,0.5,-1.5,300,250"  # rho (ft), theta, psi (rad), v_own, v_int (ft/s)
    res = runner.invoke(
        app, ["explain", "why", "--model", str(nnet), "--input", raw, "--argmin", "--json"]
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["feature_names"][0] == "rho" and d["class_names"][0] == "COC"
    logits = np.array(d["logits"])
    assert d["predicted"] == int(np.argmin(logits))
    onnx = shared_data / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx"
    res = runner.invoke(
        app,
        [
            "explain",
            "why",
            "--model",
            str(onnx),
            "--input",
            "0.1,0.1,0.1,0.1,0.1",
            "--domain",
            "-0.5:0.5",
        ],
    )
    assert res.exit_code == 0, res.output


def test_input_from_files(hand_model: Path, tmp_path: Path) -> None:
    txt = tmp_path / "x.txt"
    txt.write_text("0.5\n0.5\n")
    npy = tmp_path / "x.npy"
    np.save(npy, np.array([0.5, 0.5]))
    for arg in (f"@{txt}", f"@{npy}"):
        res = runner.invoke(app, ["explain", "why", "--model", str(hand_model), "--input", arg])
        assert res.exit_code == 0, res.output
        assert "Why 'yes'?" in res.output
    res = runner.invoke(
        app, ["explain", "why", "--model", str(hand_model), "--input", f"@{tmp_path / 'no.txt'}"]
    )
    assert res.exit_code == 2 and "not found" in res.output


def test_guard_check_and_export_commands(tmp_path: Path) -> None:
    from relucid import save_constraints

    from test_enforce_guard import SMALL, _small_net

    net = _small_net()
    save_torch(net, tmp_path / "net.pt")
    save_constraints(SMALL, tmp_path / "small.constraints")
    x = np.random.default_rng(1).normal(size=(300, 3))
    np.savez(tmp_path / "data.npz", x=x, y=net.predict(x))
    files = [
        "--model",
        str(tmp_path / "net.pt"),
        "--constraints",
        str(tmp_path / "small.constraints"),
    ]
    res = runner.invoke(
        app, ["guard", "check", *files, "--data", str(tmp_path / "data.npz"), "--json"]
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["rows"] == 300 and report["violating_before"] > 0
    assert report["violating_after"] == 0
    res = runner.invoke(app, ["guard", "check", *files, "--data", str(tmp_path / "data.npz")])
    assert res.exit_code == 0 and "violating rows" in res.output
    out = tmp_path / "guarded.onnx"
    res = runner.invoke(
        app, ["guard", "export", *files, "--out", str(out), "--check-inputs", "200"]
    )
    assert res.exit_code == 0, res.output
    assert out.is_file()
    # Bad input gives a clear error, not a traceback.
    (tmp_path / "bad.constraints").write_text("constraint broken: if box(a: [0, 1]) then\n")
    res = runner.invoke(
        app,
        [
            "guard",
            "check",
            "--model",
            str(tmp_path / "net.pt"),
            "--constraints",
            str(tmp_path / "bad.constraints"),
            "--data",
            str(tmp_path / "data.npz"),
        ],
    )
    assert res.exit_code == 2
    assert "bad.constraints:1:" in res.output
