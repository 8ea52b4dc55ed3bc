"""Benchmark of "why not" explanations (issue: why-not): milp, hamming and facet strategies.

Queries: ACAS Xu network 1_1, random inputs in its domain x the 4 other advisories (arg-min
convention), and the seeded WBC 4x32 network, test inputs x the other class. For each
strategy: the share answered (found or proved impossible) within the limit per query, the
share where the milp strategy *proved* its region the nearest, median and p95 time, LPs or
MILP nodes, and the mean Hamming distance found.

Targets (issue): milp answers >= 99% of queries within 10 s with median <= 1 s; hamming and
facet recorded beside it.

Run: ``python benchmarks/why_not.py [--acas-inputs 100] [--wbc-inputs 50] [--timeout 10]
[--strategies milp,hamming,facet] [--out FILE] [--shard K/N]``; writes
``benchmarks/results/why_not.json``; ``--merge A.json B.json`` joins the shards of one run.
``--timeout 0.9 --strategies milp --out benchmarks/results/why_not_fast.json`` measures the
answers a user gets within a second (the milp strategy returns its best confirmed region at
the budget; the MILP rarely proves it nearest in either budget).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from relucid import data_dir, load_onnx
from relucid.datasets import wbc_network
from relucid.explain.whynot import WhyNotExplainer

RESULTS = Path(__file__).parent / "results" / "why_not.json"
ACAS_LO = np.array([-0.328422877, -0.5, -0.5, -0.5, -0.5])
ACAS_HI = np.array([0.679857769, 0.5, 0.5, 0.5, 0.5])


def queries(n_acas: int, n_wbc: int) -> list[tuple[str, WhyNotExplainer, np.ndarray, int, int]]:
    """(network, explainer, input, target, index of the input within its network)."""
    out = []
    acas = load_onnx(data_dir() / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    ex = WhyNotExplainer(acas, (ACAS_LO, ACAS_HI), decision="argmin")
    rng = np.random.default_rng(0)
    for i in range(n_acas):
        x = ACAS_LO + (ACAS_HI - ACAS_LO) * rng.random(5)
        c = int(ex.classify(x)[0])
        out += [("acasxu-1_1", ex, x, t, i) for t in range(5) if t != c]
    net, split = wbc_network(random_state=0)
    wex = WhyNotExplainer(net)
    for i, x in enumerate(split.X_test[:n_wbc]):
        c = int(wex.classify(x)[0])
        out.append(("wbc-4x32", wex, x, 1 - c, i))
    return out


def summarise(records: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The table's rows, one per network and strategy, from the per-query records."""
    rows = []
    for net_name in dict.fromkeys(r["network"] for r in records):
        for strategy in args.strategies.split(","):
            sel = [r for r in records if r["network"] == net_name and r["strategy"] == strategy]
            if not sel:
                continue
            secs = sorted(r["seconds"] for r in sel)
            ham = [r["hamming"] for r in sel if r["hamming"] is not None]
            low = [r["lower_bound"] for r in sel if r["hamming"] is not None]
            low = [v for v in low if v is not None]
            limit = args.timeout + 0.5
            answered = [
                r for r in sel if r["outcome"] in ("found", "impossible") and r["seconds"] <= limit
            ]
            rows.append(
                {
                    "network": net_name,
                    "strategy": strategy,
                    "budget_s": args.timeout,
                    "queries": len(sel),
                    "answered_pct": round(100 * len(answered) / len(sel), 1),
                    "proved_nearest_or_impossible_pct": round(
                        100
                        * sum(r["proved_nearest"] or r["outcome"] == "impossible" for r in sel)
                        / len(sel),
                        1,
                    ),
                    "impossible": sum(r["outcome"] == "impossible" for r in sel),
                    "same_region": sum(r["answered_by"] == "same-region" for r in sel),
                    "median_s": round(statistics.median(secs), 3),
                    "p95_s": round(secs[min(len(secs) - 1, int(0.95 * len(secs)))], 3),
                    "mean_lps": round(statistics.mean(r["lps"] for r in sel), 1),
                    "mean_milp_nodes": round(statistics.mean(r["milp_nodes"] for r in sel), 1),
                    "mean_hamming": round(statistics.mean(ham), 2) if ham else None,
                    # the proved lower bound on the Hamming distance of any answer, over the
                    # queries answered: how far "best found" is from "proved nearest"
                    "mean_lower_bound": round(statistics.mean(low), 2) if low else None,
                }
            )
    return rows


def save(
    records: list[dict[str, Any]], args: argparse.Namespace, command: str | None = None
) -> list[dict[str, Any]]:
    """Write the results file (after every query, so a killed run keeps what it measured)."""
    rows = summarise(records, args)
    out = {
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()}), "
        f"python {platform.python_version()}",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command or " ".join(["python", *sys.argv]),
        "timeout_s": args.timeout,
        "others_inputs": args.others_inputs,
        "targets": {"milp_answered_pct_min": 99.0, "milp_median_s_max": 1.0},
        "rows": rows,
        "queries": records,
    }
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--acas-inputs", type=int, default=100)
    ap.add_argument("--wbc-inputs", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--strategies", default="milp,hamming,facet")
    ap.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help="The results file (e.g. results/why_not_fast.json for a short-budget run).",
    )
    ap.add_argument(
        "--others-inputs",
        type=int,
        default=None,
        help="Run hamming and facet only on the first N inputs of each network (they spend "
        "the whole limit on most queries; milp runs on all).",
    )
    ap.add_argument(
        "--shard",
        default=None,
        help="K/N: only the inputs whose index is K modulo N (run N shards side by side, "
        "then --merge their files).",
    )
    ap.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        help="Merge the per-query records of these results files (shards of one run) into "
        "--out, instead of running queries.",
    )
    args = ap.parse_args()
    console = Console(width=160)
    if args.merge:
        parts = [json.loads(f.read_text()) for f in args.merge]
        merged = [r for part in parts for r in part["queries"]]
        if len({part["timeout_s"] for part in parts}) > 1:
            raise SystemExit("--merge: the files were run with different --timeout")
        shared = {part["others_inputs"] for part in parts}
        # None (every input) when the parts differ: the note in the file says which ran what
        args.others_inputs = shared.pop() if len(shared) == 1 else None
        args.timeout = parts[0]["timeout_s"]
        args.strategies = ",".join(dict.fromkeys(r["strategy"] for r in merged))
        commands = [part["command"] for part in parts]
        rows = save(merged, args, command=" && ".join(commands))
        show(rows, args, console)
        return
    shard, shards = (0, 1) if args.shard is None else map(int, args.shard.split("/"))
    # input by input across both networks, so a run cut short still covers both
    qs = sorted(queries(args.acas_inputs, args.wbc_inputs), key=lambda q: q[4])
    records: list[dict[str, Any]] = []
    for net_name, ex, x, t, i in qs:
        if i % shards != shard:
            continue
        for strategy in args.strategies.split(","):
            if strategy != "milp" and args.others_inputs is not None and i >= args.others_inputs:
                continue
            t0 = time.perf_counter()
            r = ex.why_not(x, t, strategy, timeout=args.timeout, details=False)
            wall = time.perf_counter() - t0
            if r.counterfactual is not None:  # the forward-pass check, once more
                assert int(ex.classify(r.counterfactual)[0]) == t
            rec = {
                "network": net_name,
                "strategy": strategy,
                "input": i,
                "target": t,
                "outcome": r.outcome,
                "answered_by": r.strategy,
                "proved_nearest": r.proved_nearest,
                "hamming": r.hamming,
                "lower_bound": r.lower_bound,
                "seconds": round(wall, 3),
                "lps": int(r.cost.get("lps", 0)),
                "milp_nodes": int(r.cost.get("milp_nodes", 0)),
            }
            records.append(rec)
            console.print(rec)
            save(records, args)
    show(save(records, args), args, console)


def show(rows: list[dict[str, Any]], args: argparse.Namespace, console: Console) -> None:
    """Print the table of ``rows``."""
    table = Table(title=f"why-not, {args.timeout:g} s per query")
    for col in rows[0]:
        table.add_column(col.replace("_", " "), justify="right")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
