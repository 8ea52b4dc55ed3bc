"""Smoke test: ``relucid demo`` runs end to end (the README's first command)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_runs_end_to_end() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "relucid.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "test accuracy" in out
    assert out.count("Why '") == 3
    assert "lies in it and is classified" in out and ": NO" not in out
    assert "why not" in out and "the target pattern: yes" in out
    assert "picture of the slice" in out
    assert "re-verified by a fresh verifier: yes" in out
