"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from relucid.io import data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder (``$RELUCID_DATA`` or ``../shared/data``); skip when absent."""
    path = data_dir()
    if not (path / "acasxu").is_dir():
        pytest.skip(f"shared data not found at {path}; set RELUCID_DATA")
    return path
