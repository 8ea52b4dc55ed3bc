"""The HiGHS time limit rule that relucid relies on (``relucid.lp.set_time_limit``)."""

from __future__ import annotations

import time

import highspy
import numpy as np

from relucid.lp import set_time_limit


def market_split(h: highspy.Highs, seed: int) -> None:
    """A market split instance (Cornuejols-Dawande): 4 equality rows over 30 binaries,
    hard for branch and bound, so a short run always ends at its time limit."""
    rng = np.random.default_rng(seed)
    m, n = 4, 30
    a = rng.integers(0, 100, (m, n)).astype(float)
    h.addVars(n, np.zeros(n), np.ones(n))
    h.changeColsIntegrality(n, np.arange(n), np.full(n, highspy.HighsVarType.kInteger))
    for i in range(m):
        rhs = float(np.floor(a[i].sum() / 2))
        h.addRow(rhs, rhs, n, np.arange(n), a[i])


def test_each_run_gets_its_own_time_limit() -> None:
    """Every run of a re-used model gets the limit it is given: neither cut short by the
    time of earlier runs (the old summed rule) nor let run for their sum (what setting
    ``getRunTime() + limit`` does under the per-run rule)."""
    h = highspy.Highs()
    h.silent()
    h.setOptionValue("threads", 1)
    market_split(h, 0)
    walls = []
    for k in range(3):
        h.changeColCost(k, 1.0)  # a new objective: a fresh solve each time
        set_time_limit(h, 0.3)
        t = time.perf_counter()
        h.run()
        walls.append(time.perf_counter() - t)
        assert h.getModelStatus() == highspy.HighsModelStatus.kTimeLimit, k
    assert h.getRunTime() > 0.8  # the runs' sum, as getRunTime reports it
    for w in walls:
        assert 0.2 < w < 0.5, walls
