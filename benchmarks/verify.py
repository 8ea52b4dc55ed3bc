"""Benchmark of the complete verifier (verifier issue): ours (``milp``) against Marabou.

Parts, each run by both backends on the same queries with the same time limit:

(a) NAP queries on the seeded WBC 4x32 network: the refined NAP at delta in {0.9, 0.95, 0.99}
    for both classes (mined from the training split, labels = the model's predictions), plus
    the queries a COARSEN run issues from the delta = 0.95 NAP (neurons tried in index order;
    the sequence follows our verdicts and is then replayed to Marabou as a fixed list);
(b) NAP queries on mnist-net_256x4 for labels 0, 1, 4: refined NAPs at the same deltas, mined
    from a seeded 7,000-image split of the MNIST test set (the training set is not available
    here), domain [0, 1]^784;
(c) the ACAS Xu instances of properties 1-4 (``acasxu_instances.csv``), ours on all of them;
    Marabou on the first ``--acas-marabou`` of them (it needs hours for all).

Targets: zero disagreements where both decide; ours decides every query Marabou decides;
total time (timeouts counted at the limit) at most 1/10 of Marabou's on (a) and (b).

Writes ``benchmarks/results/verify.json``: ``rows`` are the per-part summaries, ``queries``
every query with both verdicts and times.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from relucid import Box, ReluNetwork, data_dir, load_onnx
from relucid.datasets import wbc_network
from relucid.spec import refined_nap
from relucid.spec.data import nap_data
from relucid.verify import (
    NapQuery,
    Status,
    Verifier,
    VerifyResult,
    get_verifier,
    load_vnnlib,
    marabou_available,
    read_instances,
)

RESULTS = Path(__file__).parent / "results" / "verify.json"
DELTAS = (0.9, 0.95, 0.99)


def mined(
    net: ReluNetwork, X: np.ndarray, pred: np.ndarray, c: int, delta: float, box: Box
) -> np.ndarray:
    """The most refined NAP (labels = the model's predictions), from the library."""
    return refined_nap(net, X, pred, c, delta, domain=box, label_source="model").nap


def members(net: ReluNetwork, X: np.ndarray, nap: np.ndarray) -> np.ndarray:
    """The inputs of ``X`` that obey ``nap``: the hints a NAP learner passes (its data), the
    attack's best starting points. Marabou takes no hints; the query is the same."""
    inside = ((net.patterns(X) == (nap == 1)) | (nap == -1)).all(axis=1)
    return X[inside] if inside.any() else X[:8]


def wbc_queries(ours: Verifier, timeout: float, quick: bool) -> Iterator[tuple[str, NapQuery]]:
    net, split = WBC
    X = split.X_train
    pred = net.forward(X).argmax(1)
    assert net.domain is not None
    for c in (0, 1):
        for delta in DELTAS:
            nap = mined(net, X, pred, c, delta, net.domain)
            yield (
                f"refined c={c} delta={delta}",
                NapQuery(nap, c, net.domain, hints=members(net, X[pred == c], nap)),
            )
        nap = mined(net, X, pred, c, 0.95, net.domain)
        order = np.flatnonzero(nap >= 0)
        if quick:
            order = order[:10]
        for step, i in enumerate(order):
            trial = nap.copy()
            trial[i] = -1
            q = NapQuery(trial, c, net.domain, hints=members(net, X[pred == c], trial))
            # The sequence follows our verdicts; the result is cached for the run below.
            res = ours.verify_nap(net, q, timeout)
            CACHE[id(q)] = res
            if res.status is Status.VERIFIED:
                nap = trial
            yield f"coarsen c={c} step={step} free={i}", q


def mnist_queries(quick: bool) -> Iterator[tuple[str, NapQuery]]:
    net = MNIST
    Xtr = nap_data("mnist").X_train  # the seeded 7,000-image split
    pred = net.forward(Xtr).argmax(1)
    box = Box(np.zeros(net.input_dim), np.ones(net.input_dim))
    for c in (0, 1, 4):
        for delta in DELTAS[:1] if quick else DELTAS:
            nap = mined(net, Xtr, pred, c, delta, box)
            hints = members(net, Xtr[pred == c], nap)
            yield f"refined c={c} delta={delta}", NapQuery(nap, c, box, hints=hints)


CACHE: dict[int, VerifyResult] = {}
WBC: tuple[ReluNetwork, Any]
MNIST: ReluNetwork


def cell(res: VerifyResult | None) -> str:
    if res is None:
        return "-"
    return f"{res.status.value} {res.seconds:.2f}s"


def run_nap_part(
    part: str,
    net: ReluNetwork,
    queries: Iterator[tuple[str, NapQuery]],
    backends: dict[str, Verifier],
    timeout: float,
    console: Console,
    records: list[dict[str, Any]],
) -> dict[str, Any]:
    rows = []
    for name, q in queries:
        rec: dict[str, Any] = {"part": part, "query": name, "fixed": q.num_fixed}
        for bname, verifier in backends.items():
            res = CACHE.pop(id(q), None) if bname == "milp" else None
            if res is None:
                res = verifier.verify_nap(net, q, timeout)
            rec[f"{bname}_status"] = res.status.value
            rec[f"{bname}_seconds"] = round(res.seconds, 4)
            rec[f"{bname}_reason"] = res.reason
            if res.status is Status.FALSIFIED:
                assert res.counterexample is not None
                assert q.violated_by(net, res.counterexample), (bname, name)
        statuses = {rec[f"{b}_status"] for b in backends}
        if "empty" in statuses and "verified" in statuses:
            # The ground truth is a forward pass: an input of the query that obeys the NAP
            # refutes EMPTY (the hints are such inputs, from the data).
            hints = q.hints if q.hints is not None else np.zeros((0, net.input_dim))
            inside = hints[q.obeys(net, hints)] if hints.size else hints
            if inside.shape[0]:
                z = np.concatenate(net.pre_activations(inside[:1]), axis=1)[0]
                fixed = q.nap >= 0
                rec["empty_refuted"] = True
                rec["empty_refuted_min_margin"] = float(np.abs(z[fixed]).min())
        console.print(
            f"  {part} {name:<32} |P|={q.num_fixed:<4} "
            + "  ".join(f"{b}: {rec[f'{b}_status']} {rec[f'{b}_seconds']:.2f}s" for b in backends)
            + ("  (EMPTY refuted by an input obeying the NAP)" if rec.get("empty_refuted") else "")
        )
        rows.append(rec)
        records.append(rec)
    return summarise(part, rows, list(backends), timeout)


def summarise(part: str, rows: list[dict[str, Any]], names: list[str], timeout: float) -> dict:
    out: dict[str, Any] = {"part": part, "queries": len(rows), "timeout_s": timeout}
    for b in names:
        decided = [r for r in rows if r[f"{b}_status"] != "unknown"]
        out[f"{b}_decided"] = len(decided)
        out[f"{b}_total_s"] = round(
            sum(r[f"{b}_seconds"] if r[f"{b}_status"] != "unknown" else timeout for r in rows), 3
        )
        for s in ("verified", "falsified", "empty", "unknown"):
            out[f"{b}_{s}"] = sum(r[f"{b}_status"] == s for r in rows)
    if len(names) == 2:
        a, m = names
        both = [r for r in rows if r[f"{a}_status"] != "unknown" and r[f"{m}_status"] != "unknown"]
        differ = [r for r in both if r[f"{a}_status"] != r[f"{m}_status"]]
        # A disagreement one side's claim is refuted in (by a replayed input) is that side's
        # error, counted apart; "disagreements" are the ones no forward pass settles.
        refuted = [r for r in differ if r.get("empty_refuted")]
        out["disagreements"] = len(differ) - len(refuted)
        out["disagreements_refuted"] = len(refuted)
        out["refuted_claims"] = sorted(
            f"{b}: empty" for r in refuted for b in (a, m) if r[f"{b}_status"] == "empty"
        )
        out["marabou_decided_ours_not"] = sum(
            r[f"{m}_status"] != "unknown" and r[f"{a}_status"] == "unknown" for r in rows
        )
        out["time_ratio_ours_over_marabou"] = round(
            out[f"{a}_total_s"] / max(out[f"{m}_total_s"], 1e-9), 4
        )
    return out


def run_acas(
    backends: dict[str, Verifier],
    timeout: float,
    n_marabou: int,
    console: Console,
    records: list[dict[str, Any]],
    quick: bool,
) -> dict[str, Any]:
    folder = data_dir() / "acasxu"
    inst = [i for i in read_instances(folder / "acasxu_instances.csv")]
    inst = [i for i in inst if i.property.stem in ("prop_1", "prop_2", "prop_3", "prop_4")]
    if quick:
        inst = inst[::15]
    rows = []
    nets: dict[Path, ReluNetwork] = {}
    for k, ins in enumerate(inst):
        net = nets.get(ins.network) or load_onnx(ins.network)
        nets[ins.network] = net
        prop = load_vnnlib(ins.property)
        limit = min(timeout, ins.timeout)
        rec: dict[str, Any] = {
            "part": "c",
            "query": f"{ins.network.stem.replace('ACASXU_run2a_', '')} {ins.property.stem}",
        }
        for bname, verifier in backends.items():
            if bname != "milp" and k >= n_marabou:
                rec[f"{bname}_status"] = "not run"
                rec[f"{bname}_seconds"] = None
                continue
            res = verifier.verify_property(net, prop, limit)
            rec[f"{bname}_status"] = res.status.vnn_word
            rec[f"{bname}_seconds"] = round(res.seconds, 3)
            if res.status is Status.FALSIFIED:
                assert res.counterexample is not None
                assert prop.check_counterexample(net, res.counterexample)
        console.print(
            f"  c {rec['query']:<24} "
            + "  ".join(f"{b}: {rec[f'{b}_status']} {rec[f'{b}_seconds']}" for b in backends)
        )
        rows.append(rec)
        records.append(rec)
    out: dict[str, Any] = {"part": "c", "queries": len(rows), "timeout_s": timeout}
    for b in backends:
        ran = [r for r in rows if r[f"{b}_status"] != "not run"]
        out[f"{b}_run"] = len(ran)
        for word in ("holds", "violated", "unknown"):
            out[f"{b}_{word}"] = sum(r[f"{b}_status"] == word for r in ran)
        out[f"{b}_total_s"] = round(
            sum(r[f"{b}_seconds"] if r[f"{b}_status"] != "unknown" else timeout for r in ran), 2
        )
    if len(backends) == 2:
        a, m = list(backends)
        both = [
            r
            for r in rows
            if r[f"{m}_status"] in ("holds", "violated") and r[f"{a}_status"] != "unknown"
        ]
        differ = [r for r in both if r[f"{a}_status"] != r[f"{m}_status"]]
        # A disagreement one side's claim is refuted in (by a replayed input) is that side's
        # error, counted apart; "disagreements" are the ones no forward pass settles.
        refuted = [r for r in differ if r.get("empty_refuted")]
        out["disagreements"] = len(differ) - len(refuted)
        out["disagreements_refuted"] = len(refuted)
        out["refuted_claims"] = sorted(
            f"{b}: empty" for r in refuted for b in (a, m) if r[f"{b}_status"] == "empty"
        )
        ran = rows[:n_marabou]
        out["ours_total_s_on_marabou_subset"] = round(
            sum(r[f"{a}_seconds"] if r[f"{a}_status"] != "unknown" else timeout for r in ran), 2
        )
    return out


def marabou_on_gaps(timeout: float) -> None:
    """Marabou on the instances of part (c) where ours said unknown (results updated)."""
    console = Console(width=170)
    old = json.loads(RESULTS.read_text())
    folder = data_dir() / "acasxu"
    marabou = get_verifier("marabou")
    ran = decided = 0
    for rec in old["queries"]:
        if rec["part"] != "c" or rec["milp_status"] != "unknown":
            continue
        if rec.get("marabou_status") not in (None, "not run"):
            continue
        net_id, prop = rec["query"].split()
        net = load_onnx(folder / f"ACASXU_run2a_{net_id}.onnx")
        spec = load_vnnlib(next(folder.rglob(f"{prop}.vnnlib")))
        res = marabou.verify_property(net, spec, timeout)
        rec["marabou_status"] = res.status.vnn_word
        rec["marabou_seconds"] = round(res.seconds, 3)
        ran += 1
        decided += res.status.vnn_word != "unknown"
        console.print(f"  c {rec['query']:<24} marabou: {rec['marabou_status']} {res.seconds:.2f}")
    for row in old["rows"]:
        if row["part"] == "c":
            row["marabou_on_our_unknowns_run"] = ran
            row["marabou_on_our_unknowns_decided"] = decided
    old["runs"] = [
        *old.get("runs", []),
        f"python benchmarks/verify.py --acas-marabou-gaps --acas-timeout {timeout}",
    ]
    RESULTS.write_text(json.dumps(old, indent=1) + "\n")
    console.print(f"Marabou decided {decided} of the {ran} instances ours left unknown")


def main() -> None:
    global WBC, MNIST
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="A few queries per part.")
    ap.add_argument("--parts", default="abc", help="Which parts to run (default abc).")
    ap.add_argument("--timeout", type=float, default=10.0, help="Seconds per NAP query.")
    ap.add_argument("--acas-timeout", type=float, default=60.0, help="Seconds per property.")
    ap.add_argument("--acas-marabou", type=int, default=10, help="ACAS instances for Marabou.")
    ap.add_argument("--no-marabou", action="store_true")
    ap.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help="Results file (default benchmarks/results/verify.json); a partial run merges into it.",
    )
    ap.add_argument(
        "--acas-marabou-gaps",
        action="store_true",
        help="Only run Marabou on the ACAS Xu instances that ours left unknown in the saved "
        "results, and record its verdicts there.",
    )
    args = ap.parse_args()
    if args.acas_marabou_gaps:
        marabou_on_gaps(args.acas_timeout)
        return
    console = Console(width=170)
    backends: dict[str, Verifier] = {"milp": get_verifier("milp")}
    if not args.no_marabou:
        if not marabou_available():
            console.print("[yellow]maraboupy is not installed: running ours only[/]")
        else:
            backends["marabou"] = get_verifier("marabou")
    summary: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    if "a" in args.parts:
        WBC = wbc_network(random_state=0)
        console.print("[bold](a) WBC 4x32 NAP queries[/]")
        qs = wbc_queries(backends["milp"], args.timeout, args.quick)
        summary.append(run_nap_part("a", WBC[0], qs, backends, args.timeout, console, records))
    if "b" in args.parts:
        MNIST = load_onnx(data_dir() / "mnistfc" / "mnist-net_256x4.onnx")
        console.print("[bold](b) mnist-net_256x4 NAP queries[/]")
        qs = mnist_queries(args.quick)
        summary.append(run_nap_part("b", MNIST, qs, backends, args.timeout, console, records))
    if "c" in args.parts:
        console.print("[bold](c) ACAS Xu properties 1-4[/]")
        summary.append(
            run_acas(backends, args.acas_timeout, args.acas_marabou, console, records, args.quick)
        )
    table = Table(title="verifier benchmark (timeouts counted at the limit)")
    table.add_column("figure")
    for row in summary:
        table.add_column(f"part {row['part']}", justify="right")
    keys = sorted({k for row in summary for k in row if k != "part"})
    for k in keys:
        table.add_row(k.replace("_", " "), *(str(row.get(k, "")) for row in summary))
    console.print(table)
    out = {
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()}), "
        f"{platform.python_version()}",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/verify.py "
        + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v not in (False, None)
        ),
        "wall_s": round(time.perf_counter() - t0, 1),
        "rows": summary,
        "queries": records,
    }
    if not args.quick:
        results: Path = args.out
        results.parent.mkdir(exist_ok=True)
        if results.exists() and set(args.parts) != set("abc"):
            # A partial run replaces only its own parts of the last full results.
            old = json.loads(results.read_text())
            keep = [r for r in old.get("rows", []) if r["part"] not in args.parts]
            keep_q = [r for r in old.get("queries", []) if r["part"] not in args.parts]
            out["rows"] = sorted(keep + summary, key=lambda r: r["part"])
            out["queries"] = keep_q + records
            out["runs"] = [*old.get("runs", [old.get("command")]), out["command"]]
        results.write_text(json.dumps(out, indent=1) + "\n")
        console.print(f"wrote {results}")


if __name__ == "__main__":
    main()
