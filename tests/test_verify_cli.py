"""`relucid verify`: VNN-LIB properties and NAP queries from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_verify_engine import PROP_HOLDS
from typer.testing import CliRunner

from relucid import ReluNetwork
from relucid.cli import app
from relucid.io import save_torch

runner = CliRunner()


@pytest.fixture
def sign_model(tmp_path: Path) -> Path:
    # y0 - y1 = x0: class 0 wins exactly where x0 > 0.
    net = ReluNetwork([[[1.0, 0.0], [-1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]], [[0, 0], [0, 0]])
    path = tmp_path / "sign.pt"
    save_torch(net, path)
    return path


def test_property_holds_and_violated(sign_model: Path, tmp_path: Path) -> None:
    holds = tmp_path / "holds.vnnlib"
    holds.write_text(PROP_HOLDS)
    res = runner.invoke(app, ["verify", "--model", str(sign_model), "--property", str(holds)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("holds")
    bad = tmp_path / "bad.vnnlib"
    bad.write_text(PROP_HOLDS.replace("(>= X_0 0.2)", "(>= X_0 -0.2)"))
    args = ["verify", "--model", str(sign_model), "--property", str(bad), "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 1, res.output
    out = json.loads(res.output)
    assert out["result"] == "violated" and out["counterexample"][0] <= 0.0


def test_nap_query(sign_model: Path, tmp_path: Path) -> None:
    spec = tmp_path / "nap.json"
    # Neuron 0 (z = x0) fixed active: x0 >= 0, where class 0 wins except at the tie x0 = 0.
    spec.write_text(json.dumps({"nap": [1, -1], "label": 0}))
    base = ["verify", "nap", "--model", str(sign_model), "--nap", str(spec), "--domain", "-1:1"]
    res = runner.invoke(app, [*base, "--json"])
    assert res.exit_code == 1, res.output
    assert json.loads(res.output)["status"] == "falsified"  # the tie at x0 = 0
    res = runner.invoke(app, [*base, "--allow-ties"])
    assert res.exit_code == 0, res.output
    assert "VERIFIED" in res.output
    spec.write_text(json.dumps([0, 1]))  # x0 <= 0 and -x0 >= 0: class 1 region
    res = runner.invoke(app, [*base, "--class", "1", "--allow-ties"])
    assert res.exit_code == 0, res.output


def test_bad_input_is_reported(sign_model: Path, tmp_path: Path) -> None:
    spec = tmp_path / "nap.json"
    spec.write_text(json.dumps({"nap": [1, 2]}))
    res = runner.invoke(
        app, ["verify", "nap", "--model", str(sign_model), "--nap", str(spec), "--class", "0"]
    )
    assert res.exit_code == 2
    assert "error" in res.output
    res = runner.invoke(app, ["verify", "--model", str(sign_model)])
    assert res.exit_code == 2
