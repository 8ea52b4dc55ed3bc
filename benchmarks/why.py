"""Benchmark of ``why(x)`` against the naive redundancy pass (issue: core and "why").

For each network, time the full ``Explainer.why`` (pattern, region, reduction, bounding box,
vertices where n <= 6) and, on a subset, the naive baseline: one
``scipy.optimize.linprog`` redundancy LP per row of the same system, removing redundant
rows as found (the paper's sequential pass). Checks that both keep the same rows.

Run: ``python benchmarks/why.py [--quick]``; writes ``benchmarks/results/why.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.optimize import linprog

from relucid import Box, Explainer, ReluNetwork, data_dir, load_nnet, load_onnx, region
from relucid.datasets import load_mnist_test, wbc_network
from relucid.polytope import REDUNDANCY_TOL, normalize
from relucid.redundancy import irredundant_rows

RESULTS = Path(__file__).parent / "results" / "why.json"


def naive_row_redundant(a: np.ndarray, bb: np.ndarray, others: np.ndarray, i: int) -> bool:
    """One ``scipy.optimize.linprog`` test: is unit row ``i`` implied by rows ``others``?"""
    res = linprog(
        -a[i],
        A_ub=np.vstack([a[others], a[i]]),
        b_ub=np.r_[bb[others], bb[i] + 1.0],
        bounds=[(None, None)] * a.shape[1],
        method="highs",
    )
    return bool(res.status == 0 and -res.fun <= bb[i] + REDUNDANCY_TOL * (1 + abs(bb[i])))


def naive_irredundant(A: np.ndarray, b: np.ndarray, console: Console | None = None) -> np.ndarray:
    """The paper's pass: for each row in order, one LP over the rows still kept."""
    a, bb, norms = normalize(A, b)
    keep = norms > 0
    t0 = time.perf_counter()
    for i in range(a.shape[0]):
        if console is not None and i and i % 250 == 0:
            console.log(f"  naive pass: row {i}/{a.shape[0]}, {time.perf_counter() - t0:.0f} s")
        if keep[i]:
            others = keep.copy()
            others[i] = False
            keep[i] = not naive_row_redundant(a, bb, others, i)
    return np.flatnonzero(keep)


def naive_sampled(
    A: np.ndarray, b: np.ndarray, keep: np.ndarray, n_rows: int, seed: int = 0
) -> tuple[float, int, int]:
    """Estimate the naive pass on a large system from ``n_rows`` sampled rows.

    Each sampled row gets the naive LP against all other rows (the order-independent form of
    the test; exact duplicates aside, it decides the same). Returns the estimated time of the
    whole pass (mean per-row time x rows) and how many sampled rows agree with ``keep``.
    """
    a, bb, _ = normalize(A, b)
    rng = np.random.default_rng(seed)
    # Rows with an exact duplicate are not sampled: which copy survives is a matter of order.
    _, inverse, counts = np.unique(
        np.round(np.c_[a, bb], 12), axis=0, return_inverse=True, return_counts=True
    )
    single = np.flatnonzero(counts[inverse.reshape(-1)] == 1)
    rows = rng.choice(single, size=min(n_rows, single.size), replace=False)
    kept = set(keep.tolist())
    agree, t0 = 0, time.perf_counter()
    for i in rows:
        others = np.ones(a.shape[0], dtype=bool)
        others[i] = False
        redundant = naive_row_redundant(a, bb, others, int(i))
        agree += int(redundant == (int(i) not in kept))
    per_row = (time.perf_counter() - t0) / len(rows)
    return per_row * a.shape[0], agree, len(rows)


def same_rows(A: np.ndarray, b: np.ndarray, k1: np.ndarray, k2: np.ndarray) -> bool:
    """Equal index sets, or equal as half-spaces (exact duplicates may swap)."""
    if np.array_equal(np.sort(k1), np.sort(k2)):
        return True
    a, bb, _ = normalize(A, b)
    h1 = {tuple(np.round(np.r_[a[i], bb[i]], 9)) for i in k1}
    h2 = {tuple(np.round(np.r_[a[i], bb[i]], 9)) for i in k2}
    return h1 == h2


def run_case(
    name: str,
    net: ReluNetwork,
    domain: Box,
    X: np.ndarray,
    n_naive: int,
    console: Console,
    sample_rows: int = 0,
) -> dict[str, Any]:
    """Time ``why`` on every input, then the naive pass on the first ``n_naive`` of them.

    All ``why`` timings come first, so that a long naive phase cannot disturb them.
    ``sample_rows > 0`` estimates the naive pass from that many sampled rows instead.
    """
    ex = Explainer(net, domain=domain)
    times, naive_times, agree, rows, kept, lps, expls = [], [], [], [], [], [], []
    ex.why(X[0])  # warm-up (imports, BLAS)
    for k, x in enumerate(X):
        t0 = time.perf_counter()
        expl = ex.why(x)
        times.append(time.perf_counter() - t0)
        rows.append(expl.rows_before)
        kept.append(expl.num_rows)
        lps.append(expl.stats.lps)
        expls.append(expl)
        if len(X) <= 20:
            console.log(f"{name} #{k}: why {times[-1]:.2f} s, {expl.num_rows} rows kept")
    for k, expl in enumerate(expls[:n_naive]):
        poly, _ = region(net, expl.pattern, domain, winner=expl.predicted)
        keep_ours, *_ = irredundant_rows(poly.A, poly.b)
        if sample_rows:
            est, ok, total = naive_sampled(poly.A, poly.b, keep_ours, sample_rows, seed=k)
            naive_times.append(est)
            agree.append(ok == total)
            console.log(
                f"{name} #{k}: naive estimated {est:.0f} s from {total} sampled rows, "
                f"{ok}/{total} sampled rows decided alike"
            )
            continue
        t0 = time.perf_counter()
        keep_naive = naive_irredundant(poly.A, poly.b, console if poly.b.size > 1000 else None)
        naive_times.append(time.perf_counter() - t0)
        agree.append(same_rows(poly.A, poly.b, keep_ours, keep_naive))
        msg = (
            f"{name} #{k}: why {times[k] * 1e3:.1f} ms, naive {naive_times[-1] * 1e3:.0f} ms, "
            f"rows {len(keep_ours)}/{len(keep_naive)} same={agree[-1]}"
        )
        if poly.b.size > 1000 or not agree[-1]:
            console.log(msg)
    t = np.array(times)
    row: dict[str, Any] = {
        "network": name,
        "inputs": len(X),
        "why_median_ms": float(np.median(t) * 1e3),
        "why_p95_ms": float(np.percentile(t, 95) * 1e3),
        "why_max_ms": float(t.max() * 1e3),
        "rows_median": float(np.median(rows)),
        "irredundant_median": float(np.median(kept)),
        "lps_median": float(np.median(lps)),
        "naive_inputs": len(naive_times),
    }
    if naive_times:
        nt = np.array(naive_times)
        paired = t[: len(nt)]
        row.update(
            naive_median_ms=float(np.median(nt) * 1e3),
            speedup_median=float(np.median(nt / paired)),
            speedup_total=float(nt.sum() / paired.sum()),
            same_rows_as_naive=int(sum(agree)),
            same_rows_all=bool(all(agree)),
        )
    if sample_rows:
        row["naive_estimated_from_sampled_rows"] = sample_rows
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer inputs (smoke run)")
    parser.add_argument("--skip-mnist", action="store_true")
    parser.add_argument(
        "--mnist-naive",
        choices=["full", "sampled"],
        default="full",
        help="full naive pass on 2 MNIST images (about 30 min each) or an estimate from 40 "
        "sampled rows",
    )
    args = parser.parse_args()
    console = Console()
    rng = np.random.default_rng(0)
    rows = []

    net, split = wbc_network(random_state=0)
    n = 10 if args.quick else 50
    rows.append(run_case("wbc-4x32", net, net.domain, split.X_test[:n], n, console))

    root = data_dir()
    acas = load_onnx(root / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    dom = load_nnet(
        root / "acasxu-nnet" / "ACASXU_experimental_v2a_1_1.nnet", normalize_inputs=False
    ).domain
    assert dom is not None
    n = 20 if args.quick else 100
    Xa = rng.uniform(dom.lo, dom.hi, size=(n, 5))
    rows.append(run_case("acasxu-1_1", acas, dom, Xa, n, console))

    if not args.skip_mnist:
        mnist = load_onnx(root / "mnistfc" / "mnist-net_256x4.onnx")
        Xm, _ = load_mnist_test()
        n = 3 if args.quick else 20
        box = Box(np.zeros(784), np.ones(784))
        sampled = 40 if args.quick or args.mnist_naive == "sampled" else 0
        rows.append(
            run_case(
                "mnist-256x4",
                mnist,
                box,
                Xm[:n],
                1 if args.quick else 2,
                console,
                sample_rows=sampled,
            )
        )

    table = Table(title="why(x): full explanation vs naive redundancy pass")
    table.add_column("figure")
    for r in rows:
        table.add_column(str(r["network"]), justify="right")
    keys = [k for k in rows[0] if k != "network"] + [k for r in rows for k in r if k not in rows[0]]
    for k in dict.fromkeys(keys):
        cells = [r.get(k, "") for r in rows]
        table.add_row(k, *(f"{v:.4g}" if isinstance(v, float) else str(v) for v in cells))
    console.print(table)
    out = {
        "machine": f"{platform.node()} {platform.machine()} {platform.processor()} "
        f"python {platform.python_version()}",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python benchmarks/why.py", *sys.argv[1:]]),
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
