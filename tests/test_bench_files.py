"""The NAP benchmark's result files (``benchmarks/nap_files.py``): rows of one network, label
and method learned from refined NAPs at different thresholds sit side by side."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from nap_files import checkpoint_name, merge, write_rows


def _row(delta: float | None, size: int) -> dict[str, object]:
    row: dict[str, object] = {
        "network": "mnist-256x4",
        "label": 1,
        "method": "coarsen",
        "size": size,
        "timeout_s": 1.0,
    }
    if delta is not None:
        row["delta"] = delta
    return row


def test_rows_of_another_delta_sit_beside_and_the_same_delta_replaces(tmp_path: Path) -> None:
    results = tmp_path / "nap.json"
    # an old row without "delta" is a delta-0.95 row
    results.write_text(json.dumps({"rows": [_row(None, 400)]}))
    part = tmp_path / "part.json"
    part.write_text(json.dumps({"rows": [_row(0.99, 450)], "mnist_command": "x"}))
    merge(results, [part], Console(quiet=True))
    sizes = sorted(r["size"] for r in json.loads(results.read_text())["rows"])
    assert sizes == [400, 450]
    part.write_text(json.dumps({"rows": [_row(0.95, 390)], "mnist_command": "y"}))
    merge(results, [part], Console(quiet=True))
    rows = json.loads(results.read_text())["rows"]
    assert sorted(r["size"] for r in rows) == [390, 450]


def test_a_run_from_another_delta_has_its_own_checkpoint() -> None:
    default = checkpoint_name("n", 0, "coarsen", 1.0, None)
    assert checkpoint_name("n", 0, "coarsen", 1.0, None, delta=0.95) == default
    assert checkpoint_name("n", 0, "coarsen", 1.0, None, delta=0.99) != default


def test_write_rows_replaces_rows_of_the_same_key_and_keeps_the_others(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    first: list[dict[str, object]] = [{"spec": "a", "v": 1}, {"spec": "b", "v": 2}]
    write_rows(out, first, "run 1", key=lambda r: r["spec"])
    write_rows(out, [{"spec": "b", "v": 3}], "run 2", key=lambda r: r["spec"])
    saved = json.loads(out.read_text())
    assert saved["command"] == "run 2" and {"machine", "date"} <= saved.keys()
    by = {r["spec"]: r for r in saved["rows"]}
    assert by["a"]["v"] == 1 and by["a"]["command"] == "run 1"
    assert by["b"]["v"] == 3 and by["b"]["command"] == "run 2" and len(saved["rows"]) == 2
