"""Benchmark of the self-correcting layer (issue 6: "Enforce").

1. Overhead on the synthetic family D(alpha, beta, m) of appendix C: time of the layer alone
   (on precomputed logits), of the network alone and of network + layer, per batch of 1 and of
   1,000 inputs drawn from D (half of them inside some precondition), over
   m in {5, 10, 100} x alpha in {1, 10, 100} x beta in {1, 2, 5} plus the target cells
   (beta = 3). The network is the paper's 10-100-100-100-m ReLU MLP, seeded and *untrained*:
   its outputs violate the active constraints far more often than a trained one's, which is
   the expensive case for the layer. Peak memory: live tensor bytes during one batch-1,000 call
   of the layer, at operator granularity (torch profiler), next to B x m^3 float32 bytes (what
   a per-row max-plus product holds).
2. ACAS Xu phi_2-phi_10 on the 45 networks (minimal-logit convention: outputs negated):
   violations before and after on inputs sampled in each property's box (clipped to the input
   domain) and on the ``scnet/acas_art`` test data, with accuracy before and after; and the
   collision-avoidance network with its 500 box constraints (needs ``h5py``).

Run: ``python benchmarks/guard.py [--quick] [--device cuda]``; writes
``benchmarks/results/guard.json`` on the CPU and ``guard_<device>.json`` on another device
(``--out`` names another file; its ``command`` says whether it was ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor
from torch.profiler import ProfilerActivity, profile

from relucid import data_dir, load_onnx
from relucid.enforce import (
    SafetyConfig,
    SafetyLayer,
    acas_constraints,
    acas_network_path,
    collision_constraints,
    evaluate_guard,
    guard,
    load_acas_art,
    load_collision,
    load_collision_model,
    synthetic_data,
)

RESULTS = Path(__file__).parent / "results"
ACAS_LO = np.array([-0.328422877, -0.5, -0.5, -0.5, -0.5])
ACAS_HI = np.array([0.679857769, 0.5, 0.5, 0.5, 0.5])


def timed(fn: Callable[[], Any], reps: int, device: torch.device) -> float:
    """Median wall time of ``fn`` in milliseconds, after at least ten warm-up calls and half
    a second of them (measured: the first cells of a run otherwise read 2.8-3.2 ms where a
    warm process takes 1.9 ms, as allocator and caches settle)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    start = time.perf_counter()
    calls = 0
    while calls < 10 or time.perf_counter() - start < 0.5:
        fn()
        calls += 1
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak of live CPU tensor memory during ``fn``, replayed from the profiler's events."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    evs = [e for e in prof.events() if e.cpu_parent is None and e.cpu_memory_usage != 0]
    evs.sort(key=lambda e: e.time_range.start)
    live = peak = 0
    for e in evs:
        live += e.cpu_memory_usage
        peak = max(peak, live)
    return peak


def mlp(m: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(10, 100),
        torch.nn.ReLU(),
        torch.nn.Linear(100, 100),
        torch.nn.ReLU(),
        torch.nn.Linear(100, 100),
        torch.nn.ReLU(),
        torch.nn.Linear(100, m),
    ).eval()


def overhead_cell(m: int, alpha: int, beta: int, device: torch.device, quick: bool) -> dict:
    data = synthetic_data(alpha, beta, m, random_state=alpha * 1000 + beta * 10 + m)
    net = mlp(m, 0).to(device)
    layer = SafetyLayer(data.constraints, m).to(device)
    guarded = guard(net, data.constraints, m).to(device)
    X = torch.from_numpy(data.x).to(device)
    # four different batches of 1,000, used in turn: no call sees the inputs of the last one
    batches = [X[s : s + 1000] for s in range(0, len(X) - 999, 1000)][:4]
    x = batches[0]
    row: dict[str, Any] = {
        "m": m,
        "alpha": alpha,
        "beta": beta,
        "terms": sum(len(d.terms) for d in layer.dnf),
    }
    with torch.no_grad():
        ys = [net(b) for b in batches]
        y = ys[0]
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        sync()
        t0 = time.perf_counter()
        out = layer(x, y)  # a fresh layer: searches, and on CUDA captures its graph
        sync()
        row["layer_b1000_first_call_ms"] = (time.perf_counter() - t0) * 1e3
        row["corrected_rows"] = int((out.status == 1).sum())
        row["bottom_rows"] = int(out.bottom.sum())
        row["multi_active_rows"] = int((layer.active(x).sum(dim=1) > 1).sum())
        reps = 5 if quick else 50
        turn = iter(range(10**9))

        def rotate(fn: Callable[[Tensor, Tensor], Any]) -> Callable[[], Any]:
            def call() -> Any:
                k = next(turn) % len(batches)
                return fn(batches[k], ys[k])

            return call

        row["layer_b1000_ms"] = timed(rotate(layer), reps, device)
        row["table_groups"] = layer.table_size
        row["net_b1000_ms"] = timed(rotate(lambda xb, _: net(xb)), reps, device)
        row["guarded_b1000_ms"] = timed(rotate(lambda xb, _: guarded(xb)), reps, device)
        if device.type == "cuda":  # the other execution modes, for comparison
            for name, cfg in (
                ("eager", SafetyConfig(cuda_graphs=False)),
                ("dynamic", SafetyConfig(execution="dynamic")),
            ):
                other = SafetyLayer(data.constraints, m, cfg).to(device)
                row[f"layer_b1000_{name}_ms"] = timed(rotate(other), reps, device)
        # batch of one: cycle through rows inside preconditions (the ones with work to do)
        idx = np.flatnonzero(data.covered[:1000])[:50]
        singles = [(x[i : i + 1], y[i : i + 1]) for i in idx]
        it = iter(range(10**9))

        def one_layer() -> Any:
            xs, ys = singles[next(it) % len(singles)]
            return layer(xs, ys)

        def one_guarded() -> Any:
            return guarded(singles[next(it) % len(singles)][0])

        def one_net() -> Any:
            return net(singles[next(it) % len(singles)][0])

        r1 = 20 if quick else 100
        row["layer_b1_ms"] = timed(one_layer, r1, device)
        row["net_b1_ms"] = timed(one_net, r1, device)
        row["guarded_b1_ms"] = timed(one_guarded, r1, device)
        if device.type == "cpu":
            row["layer_peak_mb"] = peak_bytes(lambda: layer(x, y)) / 2**20
        else:
            # the peak of one call without a graph (a replay allocates nothing: its memory is
            # the pool reserved at capture), and what a fresh layer keeps allocated after its
            # first call (buffers, table, captured graph's pool)
            eager = SafetyLayer(data.constraints, m, SafetyConfig(cuda_graphs=False)).to(device)
            eager(x, y)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            eager(x, y)
            torch.cuda.synchronize()
            row["layer_peak_mb"] = (torch.cuda.max_memory_allocated(device) - base) / 2**20
            before = torch.cuda.memory_allocated(device)
            fresh = SafetyLayer(data.constraints, m).to(device)
            fresh(x, y)
            torch.cuda.synchronize()
            row["layer_resident_mb"] = (torch.cuda.memory_allocated(device) - before) / 2**20
    row["bm3_float32_mb"] = 1000 * m**3 * 4 / 2**20
    return row


def acas_rows(root: Path, quick: bool) -> list[dict]:
    rows = []
    nets = [(i, j) for i in range(1, 6) for j in range(1, 10)]
    if quick:
        nets = [(1, 1), (1, 9), (2, 9), (3, 3), (4, 5)]
    rng = np.random.default_rng(0)
    for i, j in nets:
        cs = acas_constraints((i, j))
        net = load_onnx(acas_network_path(i, j, root))
        g = guard(net, cs, decision="argmin")
        xs = []
        for c in cs:
            for box in getattr(c.pre, "parts", (c.pre,)):
                lo, hi = ACAS_LO.copy(), ACAS_HI.copy()
                for f, a, b in box.bounds:
                    lo[f], hi[f] = max(lo[f], a), min(hi[f], b)
                xs.append(lo + (hi - lo) * rng.random((200 if quick else 2000, 5)))
        if not xs:  # networks 1_7 and 1_8: none of phi_2-phi_10 applies
            xs.append(np.zeros((0, 5)))
        boxed = evaluate_guard(g, torch.tensor(np.concatenate(xs), dtype=torch.float32))
        xt, yt = load_acas_art(i, j, root=root)
        test = evaluate_guard(g, torch.from_numpy(xt), yt)
        rows.append(
            {
                "network": f"{i}_{j}",
                "properties": [c.name for c in cs],
                "box_samples": boxed.rows,
                "box_violating_before": boxed.violating_before,
                "box_violating_after": boxed.violating_after,
                "box_bottoms": boxed.bottoms,
                "per_property": {
                    c["name"]: [c["violated_before"], c["violated_after"]]
                    for c in boxed.per_constraint
                },
                "test_rows": test.rows,
                "test_violating_before": test.violating_before,
                "test_violating_after": test.violating_after,
                "test_bottoms": test.bottoms,
                "accuracy_before": test.accuracy_before,
                "accuracy_after": test.accuracy_after,
            }
        )
    return rows


def collision_row(root: Path) -> dict | None:
    try:
        model = load_collision_model(root)
    except Exception as exc:  # h5py missing or file absent
        return {"skipped": str(exc)}
    cs = collision_constraints(root)
    x, y = load_collision(root)
    rep = evaluate_guard(guard(model, cs, 2), torch.from_numpy(x).float(), y)
    return {
        "rows": rep.rows,
        "active_rows": rep.active_rows,
        "violating_before": rep.violating_before,
        "violating_after": rep.violating_after,
        "bottoms": rep.bottoms,
        "accuracy_before": rep.accuracy_before,
        "accuracy_after": rep.accuracy_after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="target cells only, 5 ACAS nets")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-acas", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="results file")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (default 1: on a shared machine, more threads that wait for "
        "busy cores make small operations 100x slower)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    console = Console()
    if not console.is_terminal:
        console = Console(width=170)  # the tables are wide; do not truncate them in logs
    targets = [(5, 10, 3), (100, 10, 3)]
    grid = [(m, a, b) for m in (5, 10, 100) for a in (1, 10, 100) for b in (1, 2, 5)]
    cells = targets if args.quick else targets + grid
    over = []
    with console.status("timing the layer on D(alpha, beta, m)...") as status:
        for m, a, b in cells:
            status.update(f"timing m={m} alpha={a} beta={b}...")
            over.append(overhead_cell(m, a, b, device, args.quick))
    table = Table(title=f"SafetyLayer overhead on D(alpha, beta, m), {device.type}, median ms")
    cols = {
        "m": "m",
        "alpha": "α",
        "beta": "β",
        "terms": "terms",
        "corrected_rows": "fixed",
        "multi_active_rows": "multi",
        "layer_b1000_ms": "layer B=1000",
        "layer_b1000_first_call_ms": "first call",
        "net_b1000_ms": "net B=1000",
        "guarded_b1000_ms": "net+layer B=1000",
        "layer_b1_ms": "layer B=1",
        "net_b1_ms": "net B=1",
        "guarded_b1_ms": "net+layer B=1",
        "layer_peak_mb": "peak MiB",
        "bm3_float32_mb": "B·m³ MiB",
    }
    if device.type == "cuda":
        cols["layer_b1000_eager_ms"] = "no graph"
        cols["layer_b1000_dynamic_ms"] = "dynamic"
        cols["layer_resident_mb"] = "kept MiB"
    for head in cols.values():
        table.add_column(head, justify="right")
    for r in over:
        table.add_row(*(f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    console.print(
        "fixed: rows corrected in the batch of 1,000; multi: rows with several active constraints"
    )
    console.print(table)
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    out: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {platform.processor()} "
        f"python {platform.python_version()} torch {torch.__version__} "
        f"threads {torch.get_num_threads()} device {device}{gpu}",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]),
        "targets": {
            "m5_alpha10_beta3_b1000_ms": over[0]["layer_b1000_ms"],
            "m5_limit_ms": 3.0,
            "m100_alpha10_beta3_b1000_ms": over[1]["layer_b1000_ms"],
            "m100_limit_ms": 300.0,
        },
        "rows": over,
    }
    if device.type != "cpu":
        small = [r for r in over if r["m"] <= 100 and r["alpha"] <= 10]
        worst = max(small, key=lambda r: r["layer_b1000_ms"])
        out["targets"]["gpu_worst_m_le100_alpha_le10_b1000_ms"] = worst["layer_b1000_ms"]
        out["targets"]["gpu_worst_cell"] = (
            f"m={worst['m']} alpha={worst['alpha']} beta={worst['beta']}"
        )
        out["targets"]["gpu_limit_ms"] = 1.0
    root = data_dir()
    if not args.skip_acas and (root / "acasxu").is_dir():
        with console.status("ACAS Xu phi_2-phi_10 on the networks..."):
            acas = acas_rows(root, args.quick)
        t = Table(title="ACAS Xu: violating rows before -> after (bottom), accuracy on test data")
        for c in ("network", "properties", "box samples", "in boxes", "test data", "accuracy"):
            t.add_column(c, justify="right")
        for r in acas:
            t.add_row(
                r["network"],
                ",".join(r["properties"]),
                str(r["box_samples"]),
                f"{r['box_violating_before']} -> {r['box_violating_after']} ({r['box_bottoms']})",
                f"{r['test_violating_before']} -> {r['test_violating_after']} "
                f"({r['test_bottoms']})",
                f"{r['accuracy_before']:.4f} -> {r['accuracy_after']:.4f}",
            )
        console.print(t)
        out["acasxu"] = acas
        col = collision_row(root)
        out["collision"] = col
        console.print(f"collision avoidance: {col}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "guard.json" if device.type == "cpu" else f"guard_{device.type}.json"
    path = args.out or RESULTS / name
    path.write_text(json.dumps(out, indent=2) + "\n")
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
