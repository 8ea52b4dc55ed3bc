"""Cold solves of the verifier's LP relaxation on mnist-net_256x4, with and without presolve.

A fresh :class:`~relucid.verify.relaxation.NetworkLP` (a lone query, a re-check, the first
query of a sequence) starts its simplex from scratch. This benchmark times that first
stage as the verifier runs it on a hard NAP query: layer tightening (``warm_tighten``),
then each output term's relaxed minimum (``relaxed_margin``), under one deadline, once
with HiGHS's presolve on for the first solve (the relaxation's setting until 2026-12-05)
and once without (every solve, now).

Queries, for labels 0, 1 and 4 of the seeded MNIST split (``nap_data("mnist")``): the
refined NAP (delta 0.95, domain [0, 1]^784), then the same with the lowest-agreement 10%,
20% and 30% of its fixed neurons freed (the neurons COARSEN frees first), plus the base
NAP of every spec given with ``--spec``.

    python benchmarks/lp_cold.py [--limit 60] [--spec SPEC.json ...]

Prints a table and writes ``benchmarks/results/lp_cold.json`` (rows: one per query and
setting: ``first_lp_s``, ``stage_s``, ``finished``, ``terms_settled``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from relucid.domain import Box
from relucid.io import data_dir, load_onnx
from relucid.network import ReluNetwork
from relucid.spec import NapSpec, refined_nap
from relucid.spec.coarsen import agreement
from relucid.spec.data import nap_data
from relucid.spec.implied import restore_base
from relucid.verify import MilpVerifier
from relucid.verify.relaxation import NetworkLP
from relucid.verify.tightening import class_margins, fresh_relaxation

RESULTS = Path(__file__).parent / "results" / "lp_cold.json"


def stage(net: ReluNetwork, spec: NapSpec, presolve: bool, limit: float) -> dict[str, Any]:
    """The warm-LP stage of one query on a fresh model; presolve on for its first solve."""
    nap = spec.nap
    v = MilpVerifier()
    model, relax, bounds = fresh_relaxation(net, spec.domain, nap)
    unstable = int((bounds.unstable & (nap == -1)).sum())
    first: list[float] = []
    solve = NetworkLP.lower_bound_of

    def timed(cost: Any, time_limit: float | None) -> float | None:
        relax.lp.set_option("presolve", "on" if presolve and not first else "off")
        t = time.perf_counter()
        try:
            return solve(relax, cost, time_limit)
        finally:
            if not first:
                first.append(time.perf_counter() - t)

    relax.lower_bound_of = timed  # type: ignore[method-assign]
    t0 = time.perf_counter()
    deadline = t0 + limit
    settled, finished = 0, True
    margins = class_margins(
        model,
        relax,
        bounds,
        nap,
        spec.label,
        deadline,
        max_per_layer=v.warm_lp_max,
        safety=v.safety,
        tighten=unstable >= v.warm_lp_unstable,  # as the engine's lone query does
    )
    try:
        for m in margins:  # the terms proved before a timeout still count
            settled += m > 0
    except TimeoutError:
        finished = False
    return {
        "presolve": "first solve" if presolve else "off",
        "unstable": unstable,
        "first_lp_s": round(first[0], 3) if first else None,
        "stage_s": round(time.perf_counter() - t0, 3),
        "finished": finished,
        "terms_settled": settled,
    }


def queries(net: ReluNetwork, specs: list[Path]) -> list[tuple[str, NapSpec]]:
    d = nap_data("mnist")
    box = Box(np.zeros(net.input_dim), np.ones(net.input_dim))
    out = []
    for label in (0, 1, 4):
        X = d.X_train[d.y_train == label]
        spec = refined_nap(net, d.X_train, d.y_train, label, 0.95, domain=box)
        agree = agreement(net, spec.nap, X)
        fixed = np.flatnonzero(spec.nap >= 0)
        order = fixed[np.argsort(agree[fixed], kind="stable")]
        for share in (0.0, 0.1, 0.2, 0.3):
            nap = spec.nap.copy()
            nap[order[: int(share * fixed.size)]] = -1
            out.append((f"label {label} refined, {share:.0%} freed", spec.with_nap(nap)))
    for path in specs:
        spec = NapSpec.load(path)
        base = restore_base(spec.nap, spec.info.get("implied_steps") or [])
        out.append((f"{path.name} (base NAP)", spec.with_nap(base)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=float, default=60.0, help="Seconds per stage.")
    ap.add_argument("--spec", type=Path, nargs="*", default=[], help="Learned specs to add.")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    net = load_onnx(data_dir() / "mnistfc" / "mnist-net_256x4.onnx")
    console = Console(width=150)
    table = Table(title=f"Cold LP stage, mnist-net_256x4 (limit {args.limit:g} s)")
    for col in ("query", "|P|", "unstable", "presolve", "first LP s", "stage s", "settled"):
        table.add_column(col, justify="left" if col in ("query", "presolve") else "right")
    rows = []
    for name, spec in queries(net, args.spec):
        for presolve in (True, False):
            row = {"query": name, "size": spec.size, **stage(net, spec, presolve, args.limit)}
            rows.append(row)
            table.add_row(
                name,
                str(row["size"]),
                str(row["unstable"]),
                row["presolve"],
                "-" if row["first_lp_s"] is None else f"{row['first_lp_s']:.2f}",
                f"{row['stage_s']:.2f}" + ("" if row["finished"] else " (timeout)"),
                f"{row['terms_settled']}/9",
            )
            console.print(f"{name}: presolve {row['presolve']}: {row['stage_s']:.1f} s")
    console.print(table)
    args.out.write_text(
        json.dumps(
            {
                "machine": f"{platform.node()} ({platform.processor() or platform.machine()}), "
                f"{platform.python_version()}",
                "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "command": "python benchmarks/lp_cold.py "
                + " ".join(f"--spec {p}" for p in args.spec)
                + f" --limit {args.limit:g}",
                "rows": rows,
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
