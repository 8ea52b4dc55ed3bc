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


def test_each_milp_run_gets_its_own_time_limit() -> None:
    """Every MILP run of a re-used model gets the limit it is given: neither cut short by
    the time of earlier runs nor let run for their sum (what ``getRunTime() + limit`` does
    under the MIP solver's per-run rule)."""
    h = highspy.Highs()
    h.silent()
    market_split(h, 0)
    walls = []
    for k in range(3):
        h.changeColCost(k, 1.0)  # a new objective: a fresh solve each time
        set_time_limit(h, 0.3, mip=True)
        t = time.perf_counter()
        h.run()
        walls.append(time.perf_counter() - t)
        assert h.getModelStatus() == highspy.HighsModelStatus.kTimeLimit, k
    assert h.getRunTime() > 0.8  # the runs' sum, as getRunTime reports it
    for w in walls:
        assert 0.2 < w < 0.58, walls  # the summed rule: 0.6 s, then 0.9 s


def test_lp_runs_are_not_cut_short_by_earlier_runs() -> None:
    """The simplex compares its limit with the run time summed over runs: many quick LP
    solves of one model, each with a small allowance, must not end in a time limit."""
    rng = np.random.default_rng(0)
    h = highspy.Highs()
    h.silent()
    n = 10
    a = rng.normal(size=(30, n))
    h.addVars(n, np.full(n, -5.0), np.full(n, 5.0))
    for row in a:
        h.addRow(-np.inf, 1.0, n, np.arange(n), row)
    while h.getRunTime() < 0.2:
        h.changeColsCost(n, np.arange(n), rng.normal(size=n))
        set_time_limit(h, 0.02, mip=False)
        h.run()
        assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal, h.getRunTime()


def test_highs_banner_stays_off_stdout() -> None:
    # The first highspy.Highs() of a process prints HiGHS's banner to stdout, which broke
    # `relucid nap cover --json` on MNIST; new_highs() sends it to stderr.
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from relucid.lp import LinearProgram\n"
        "lp = LinearProgram(np.eye(2), np.ones(2))\n"
        "print('done')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "done\n"
