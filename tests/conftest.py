"""Shared fixtures, and hypothesis profiles.

Property tests run a fixed, repeatable set of examples by default, so that CI judges the
same cases every run (HiGHS can stumble on rare random regions; each such find becomes a
regression test and a fix, not a red build by chance). ``HYPOTHESIS_PROFILE=explore`` draws
fresh random examples for hunting.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from relucid.io import data_dir

settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder (``$RELUCID_DATA`` or ``../shared/data``); skip when absent."""
    path = data_dir()
    if not (path / "acasxu").is_dir():
        pytest.skip(f"shared data not found at {path}; set RELUCID_DATA")
    return path
