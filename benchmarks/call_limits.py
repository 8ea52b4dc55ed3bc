"""Does a NAP query come back at its time limit? Per-call wall time against the limit (NAP issue).

COARSEN on mnist-256x4 asks hundreds of questions at a short limit (1 s) and a few at a long
one (15 s). A call that overruns its limit costs the run time and answers nothing more. Two
causes were found (2026-12-05): the verifier's attack ran all its steps whatever the limit,
and numpy's BLAS ran two threads per process, which spin while they wait for a busy core when
two benchmark processes share this 2-core machine.

The same queries are asked twice, by a fresh verifier each time:

* ``before``: the attack without the query's deadline (its old call, emulated here by
  dropping the argument) and BLAS at its default thread count;
* ``after``: the code as it is (attack stops at the deadline; ``limit_threads(1)``).

The queries: the start NAP (a spec file, or the most refined NAP of ``--label`` at
``--delta``) with one fixed neuron freed, the neurons in COARSEN's order (least agreed
first); the first ``--long`` at ``--long-limit``, the next ``--short`` at ``--limit``. Each
query frees its neuron from the start NAP, so both modes ask exactly the same questions.

    python benchmarks/call_limits.py [--spec SPEC.json | --label 4 --delta 0.95]
        [--limit 1 --short 60 --long 3 --long-limit 15]

With ``--competitor`` a process doing numpy matrix products runs beside both modes (another
numeric job on the same cores). Prints a table and writes ``benchmarks/results/call_limits.json``
(rows: mode, limit and competitor; wall time per call, its overrun past the limit, verdicts;
rows of the other ``--competitor`` setting are kept).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import platform
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

import relucid.verify.engine as engine
from relucid.domain import Box
from relucid.io import data_dir, load_onnx
from relucid.spec import NapSpec, refined_nap
from relucid.spec.coarsen import MILP_DEFAULTS, agreement
from relucid.spec.data import nap_data
from relucid.threads import limit_threads
from relucid.verify import MilpVerifier

RESULTS = Path(__file__).parent / "results" / "call_limits.json"
#: ``--competitor``: another numeric job on the same cores (BLAS at its default threads).
COMPETITOR = """
import numpy as np
a = np.random.default_rng(0).random((160, 784))
w = np.random.default_rng(1).random((784, 256))
while True:
    for _ in range(200):
        a @ w
"""


def ask(
    net: Any, spec: NapSpec, X: Any, neurons: list[int], limits: list[float]
) -> list[tuple[float, float, str]]:
    """(limit, wall, verdict) per query, by one fresh verifier (as one COARSEN run has)."""
    verifier = MilpVerifier(**MILP_DEFAULTS)
    out = []
    for i, limit in zip(neurons, limits, strict=True):
        nap = spec.nap.copy()
        nap[i] = -1
        query = spec.with_nap(nap).query(net, X)
        t = time.perf_counter()
        res = verifier.verify_nap(net, query, limit)
        out.append((limit, time.perf_counter() - t, res.status.value))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", type=Path, default=None, help="Start NAP (default: refined).")
    ap.add_argument("--label", type=int, default=4)
    ap.add_argument("--delta", type=float, default=0.95)
    ap.add_argument("--limit", type=float, default=1.0, help="Seconds per short call.")
    ap.add_argument("--short", type=int, default=60, help="Short calls per mode.")
    ap.add_argument("--long", type=int, default=3, help="Long calls first, per mode.")
    ap.add_argument("--long-limit", type=float, default=15.0)
    ap.add_argument(
        "--competitor",
        action="store_true",
        help="Run a process doing numpy matrix products (BLAS at its default threads) "
        "beside both modes, as another numeric job on the same cores.",
    )
    ap.add_argument("--caveat", default="", help="What else ran on the machine.")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    net = load_onnx(data_dir() / "mnistfc" / "mnist-net_256x4.onnx")
    d = nap_data("mnist")
    if args.spec is not None:
        spec = NapSpec.load(args.spec)
        spec.check(net)
    else:
        spec = refined_nap(
            net,
            d.X_train,
            d.y_train,
            args.label,
            args.delta,
            domain=Box(np.zeros(784), np.ones(784)),
        )
    X = d.X_train[d.y_train == spec.label]
    share = agreement(net, spec.nap, X)
    fixed = np.flatnonzero(spec.nap >= 0)
    order = [int(i) for i in fixed[np.argsort(share[fixed], kind="stable")]]
    neurons = order[: args.long + args.short]
    limits = [args.long_limit] * args.long + [args.limit] * args.short
    console = Console(width=150)
    real_attack = engine.pgd_attack

    @functools.wraps(real_attack)
    def attack_without_deadline(*a: Any, **k: Any) -> Any:
        k.pop("deadline", None)
        return real_attack(*a, **k)

    import torch

    torch.set_num_threads(1)  # torch on one thread in both modes (as the benchmarks had it)
    results: dict[str, list[tuple[float, float, str]]] = {}

    def run_mode(mode: str) -> None:
        t = time.perf_counter()
        with threadpool_limits(limits=None):  # BLAS back to its default afterwards
            if mode == "before":
                engine.pgd_attack = attack_without_deadline
                try:
                    results[mode] = ask(net, spec, X, neurons, limits)
                finally:
                    engine.pgd_attack = real_attack
            else:
                limit_threads(1)
                results[mode] = ask(net, spec, X, neurons, limits)
        console.print(f"{mode}: {time.perf_counter() - t:.0f} s", markup=False)

    competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR]) if args.competitor else None
    try:
        for mode in ("before", "after"):
            run_mode(mode)
    finally:
        if competitor is not None:
            competitor.kill()
    rows = []
    for mode, calls in results.items():
        for limit in sorted({lim for lim, _, _ in calls}):
            walls = np.array([w for lim, w, _ in calls if lim == limit])
            verdicts = Counter(v for lim, _, v in calls if lim == limit)
            over = walls - limit
            rows.append(
                {
                    "mode": mode,
                    "competitor": args.competitor,
                    "limit_s": limit,
                    "calls": int(walls.size),
                    "wall_total_s": round(float(walls.sum()), 2),
                    "wall_mean_s": round(float(walls.mean()), 3),
                    "wall_p50_s": round(float(np.percentile(walls, 50)), 3),
                    "wall_p90_s": round(float(np.percentile(walls, 90)), 3),
                    "wall_max_s": round(float(walls.max()), 3),
                    "overrun_mean_s": round(float(np.maximum(over, 0).mean()), 3),
                    "calls_over_limit_plus_half_s": int((over > 0.5).sum()),
                    **{f"verdict_{k}": n for k, n in sorted(verdicts.items())},
                }
            )
    table = Table(title=f"mnist-256x4 label {spec.label}: wall time per call against its limit")
    cols = ["mode", "limit s", "calls", "total s", "mean", "p50", "p90", "max", "> limit+0.5"]
    for col in [*cols, "verdicts"]:
        table.add_column(col, justify="left" if col in ("mode", "verdicts") else "right")
    for r in rows:
        table.add_row(
            r["mode"],
            f"{r['limit_s']:g}",
            str(r["calls"]),
            f"{r['wall_total_s']:.1f}",
            f"{r['wall_mean_s']:.2f}",
            f"{r['wall_p50_s']:.2f}",
            f"{r['wall_p90_s']:.2f}",
            f"{r['wall_max_s']:.2f}",
            str(r["calls_over_limit_plus_half_s"]),
            ", ".join(f"{k[8:]} {v}" for k, v in r.items() if k.startswith("verdict_")),
        )
    console.print(table)
    start = (
        str(args.spec)
        if args.spec is not None
        else f"refined NAP of label {args.label} at delta {args.delta}"
    )
    given = "--competitor " if args.competitor else ""
    given += f"--label {args.label} --delta {args.delta}" if args.spec is None else "--spec ..."
    command = "python benchmarks/call_limits.py " + given.replace("...", str(args.spec))
    command += f" --limit {args.limit:g} --short {args.short} --long {args.long}"
    command += f" --long-limit {args.long_limit:g}"
    date = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    for r in rows:
        r |= {"start_nap": start, "start_size": spec.size, "command": command, "date": date}
        r["caveat"] = args.caveat
    if args.out.is_file():  # rows of a run with the other --competitor setting are kept
        kept = json.loads(args.out.read_text())["rows"]
        rows = [r for r in kept if r["competitor"] != args.competitor] + rows
    args.out.write_text(
        json.dumps(
            {
                "machine": f"{platform.node()} ({platform.processor() or platform.machine()}), "
                f"{platform.python_version()}",
                "date": date,
                "rows": rows,
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
