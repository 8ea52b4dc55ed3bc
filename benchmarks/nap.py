"""Benchmark of NAP learning (NAP issue): Table 1 of the minimal-NAP paper on WBC.

The seeded WBC 4x32 network (`relucid.datasets.wbc_network(seed)`, scikit-learn's breast cancer
data, stratified 80/20 split, random_state = seed, 0 unless ``--wbc-seed`` says otherwise;
the seed fixes both the split and the training); refined NAPs at delta = 0.95 mined from the
training split with the dataset's labels; rows Baseline (the refined NAP), COARSEN,
STOCHCOARSEN, OPTADVPRUNE and our group COARSEN; columns |P|, verifier calls, train and test
coverage (share of the class's inputs whose pattern matches), the appendix C volume estimate
(log10 and the ratio to the baseline, plus the Monte Carlo share of the orthotope inside
the region), and wall time. Every learned NAP is re-verified by a fresh verifier here.
Neurons are tried in NapLearner's default order (the ones the class's training inputs agree
with least first). ``test classified`` is the share of the class's test inputs that the network
classifies as the class: a specification holds no other input, so no test coverage exceeds it
(``train_classified_pct`` the same for the training inputs).

Paper targets (WBC): COARSEN |P| <= 31 / 32 with test coverage >= 95.35% / 94.37%; the whole
table under 10 minutes; group COARSEN at most half of COARSEN's calls.

The refined NAP's own call (the certificate everything starts from) gets max(timeout, 60 s).

With ``--workers 2`` (the default) COARSEN and group COARSEN send their calls through a pool of
two processes: COARSEN decides the next two NAPs of its all-verified path together (the same
NAPs and result as the serial algorithm; the ``verifier_calls`` column then counts the wasted
speculative calls too), group COARSEN both halves of a failed block. ``--workers 1`` runs
every method serially. The ``executor`` column says which.

A specification's test coverage cannot exceed the share of the class's test inputs that the
network classifies as the class. Seed 0's network classifies 39 of its 42 class-0 test inputs
as 0, a ceiling of 92.86% below the paper's 95.35%; ``--seed-sweep N`` records, for seeds
0..N-1, how many test inputs of each class each seed's network classifies correctly, and
``--wbc-seed`` runs the table on another seed's network and split (its rows are named
``wbc-4x32-seed<k>``, beside seed 0's ``wbc-4x32``). The first seed whose network reaches the
paper's shares for both classes and whose refined NAPs are specifications for both is 5
(seed 3's class-1 and seed 4's class-0 refined NAPs are falsified).

``--mnist`` adds Table 2 on mnist-net_256x4 (labels 0, 1, 4; NAPs mined from a seeded
7,000-image split of the MNIST test set) for the methods named by ``--mnist-methods``.

``--mnist-delta`` sets Table 2's refined-NAP threshold (default ``--delta``). The paper does
not state its MNIST threshold, but its baselines match 0.99, not 0.95, on these data:

========  =====================  ===========================  ==========================
label     paper |P|, train/test  delta 0.99 here              delta 0.95 here
========  =====================  ===========================  ==========================
0         751, 79.50 / 71.51     733, 79.88 / 73.47           857, 34.26 / 31.29
1         745, 75.01 / 70.11     741, 85.59 / 80.42           821, 38.72 / 37.39
4         712, 77.54 / 75.24     682, 79.51 / 75.35           835, 23.78 / 22.89
========  =====================  ===========================  ==========================

Every row records its ``delta`` (rows made before it was recorded are 0.95's), and a run at
another threshold has its own checkpoint file. ``--mnist-start-timeout`` gives the refined
NAP's own call more than the default max(``--mnist-timeout``, 60 s).

Method ``coarsen+focus`` (ours) is COARSEN with ``--mnist-focus-timeout`` seconds for each
call that frees a neuron fewer than ``--mnist-focus-agreement`` (default 99%) of the class's
training inputs agree with (keeping one excludes the rest of them); the other calls keep
``--mnist-timeout``. ``group+focus`` is group COARSEN with the same focus limit for those
neurons' singleton blocks. ``--mnist-block-timeout`` gives group COARSEN's blocks of two or
more neurons a shorter limit (a failed block only splits; singletons keep theirs).
``--mnist-block-patience N`` sends a block that times out straight to its singletons once N
blocks in a row have (rows: ``block_patience``; default 8, NapLearner's; -1: always halve).

A method named with ``+retry`` (e.g. ``coarsen+focus+retry``) ends with NapLearner's retry
pass: each neuron still fixed after a timeout (with ``+focus``: each focus neuron) is asked
once more at ``--mnist-retry-timeout`` seconds, the one that would cover the most inputs
first. Its pass before the retry asks the same NAPs as the method without ``+retry``, so a
copy of that run's checkpoint file under the ``+retry`` name resumes it with the retry
only; ``wall_s`` then counts that part and ``checkpoint_verifier_s`` the verifier's time over
all parts.

Every learned NAP ends with the implied pass (``--no-implied`` leaves it out): each neuron
whose flipped region is empty by bounds, given the rest of the NAP, is freed, the region
unchanged (:mod:`relucid.spec.implied`). ``size_before_implied`` is the method's own |P|,
``implied_freed`` how many went; the re-check (``reverified``) replays those steps with
fresh bounds and verifies the NAP the run's verifier proved.

``--mnist-crown-share S`` caps the optimised bounds of every MNIST call at that share of its
limit (``MilpVerifier(crown_share=S)``; the warm LP and the MILP keep the rest). Its rows
have ``crown_share`` and their own checkpoint files. ``--mnist-crown-fail-share S`` (default
0.3, as NapLearner's) caps them only on a call that follows one whose bounds left terms open
(``crown_fail_share``; 1 for no cap; rows made before it was a default have none).

``--merge FILE ...`` puts the rows of other runs' result files (each label or method run in
its own process, with ``--out``) into ``--out`` in place of the rows with the same network,
label and method; each merged row keeps the date and command of the run it came from.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from nap_files import checkpoint_name, merge  # benchmarks/ is on the path as the script's folder
from rich.console import Console
from rich.table import Table

from relucid import ReluNetwork, data_dir, load_onnx
from relucid.datasets import wbc_network
from relucid.domain import Box
from relucid.spec import (
    NapLearner,
    NotASpecificationError,
    estimate_volume,
    largest_verified_ball,
    plot_nap,
    refined_nap,
)
from relucid.spec.coarsen import BLOCK_PATIENCE, given_options
from relucid.spec.data import NapData, nap_data
from relucid.spec.implied import verify_spec
from relucid.threads import limit_threads
from relucid.verify import MilpVerifier, Status, VerifyResult

RESULTS = Path(__file__).parent / "results" / "nap.json"
METHODS = ("coarsen", "stochastic", "optadvprune", "group")
#: Methods whose calls go through the process pool when ``--workers`` > 1: COARSEN decides
#: the next calls of its all-verified path together (speculation: the same NAPs and result
#: as the serial algorithm), group COARSEN both halves of a failed block. STOCHCOARSEN and
#: OPTADVPRUNE stay the paper's one-call-at-a-time algorithms.
POOLED = ("coarsen", "group")


def run_table(
    name: str,
    net: ReluNetwork,
    ds: NapData,
    labels: tuple[int, ...],
    methods: tuple[str, ...],
    timeout: float,
    delta: float,
    console: Console,
    workers: int = 1,
    on_row: Callable[[list[dict[str, Any]]], None] | None = None,
    checkpoints: Path | None = None,
    focus_timeout: float | None = None,
    focus_agreement: float = 0.99,
    block_timeout: float | None = None,
    retry_timeout: float | None = None,
    specs: Path | None = None,
    block_patience: int | None = BLOCK_PATIENCE,
    implied: bool = True,
    crown_share: float | None = None,
    crown_fail_share: float | None = None,
    start_timeout: float | None = None,
) -> list[dict[str, Any]]:
    """The table's rows; ``on_row(rows)`` after each one (so a killed run keeps them).
    With ``checkpoints``, each learner run keeps its verdicts in a file there, so a killed
    run resumes where it stopped (its wall time then counts only the resumed part). With
    ``specs``, each row's NAP is saved there as a spec (JSON, with its coverage and the
    run's trace) and drawn (PNG, :func:`~relucid.spec.plot_nap`)."""
    rows: list[dict[str, Any]] = []
    checker = MilpVerifier(seed=11)
    checked: dict[tuple[int, bytes], VerifyResult] = {}
    for c in labels:
        Xtr, Xte = ds.X_train[ds.y_train == c], ds.X_test[ds.y_test == c]
        # A specification of class c only holds inputs the network classifies as c: the
        # share of the class's test inputs it does is the ceiling of any test coverage.
        ceiling = round(100 * float(np.mean(net.forward(Xte).argmax(1) == c)), 2)
        train_ceiling = round(100 * float(np.mean(net.forward(Xtr).argmax(1) == c)), 2)
        base_vol = None
        base_joint = math.nan
        for method in ("baseline", *methods):
            t0 = time.perf_counter()
            reused = 0
            try:
                if method == "baseline":
                    spec = refined_nap(net, ds.X_train, ds.y_train, c, delta)
                    calls = 1
                    seconds = time.perf_counter() - t0
                else:
                    base, *suffixes = method.split("+")
                    pooled = workers > 1 and base in POOLED
                    focus = focus_timeout if "focus" in suffixes else None
                    block = block_timeout if base == "group" else None
                    retry = retry_timeout if "retry" in suffixes else None
                    options = given_options(
                        crown_share=crown_share, crown_fail_share=crown_fail_share
                    )
                    learner = NapLearner(
                        base,  # type: ignore[arg-type]
                        delta=delta,
                        timeout=timeout,
                        start_timeout=max(timeout, 60.0)
                        if start_timeout is None
                        else start_timeout,
                        focus_timeout=focus,
                        focus_agreement=focus_agreement,
                        retry_timeout=retry,
                        implied=implied,
                        block_timeout="same" if block is None else block,
                        block_patience=block_patience,
                        verifier_options=options,
                        executor="process" if pooled else "serial",
                        workers=workers if pooled else None,
                        checkpoint=None
                        if checkpoints is None
                        else checkpoints
                        / checkpoint_name(
                            name,
                            c,
                            method,
                            timeout,
                            focus,
                            block,
                            retry,
                            crown_share,
                            crown_fail_share,
                            delta,
                        ),
                    )
                    learner.fit(net, ds.X_train, ds.y_train, c)
                    spec = learner.spec_
                    calls = learner.calls_
                    reused = learner.reused_
                    seconds = learner.seconds_
            except NotASpecificationError as exc:
                console.print(f"[yellow]{name} label {c}: {exc}[/]")
                break
            # The independent re-check; methods that end on the same NAP share one.
            key = (c, spec.nap.tobytes())
            t_check = time.perf_counter()
            if key not in checked:
                # hints: the class's training inputs that obey the NAP (its non-emptiness
                # witnesses; without them a fresh check of an MNIST NAP spent its time
                # looking for one)
                # 4 x the longest per-call limit the run had (a coarsen+focus NAP was
                # proved by a focus call)
                longest = max(
                    timeout,
                    spec.info.get("focus_timeout") or 0.0,
                    spec.info.get("retry_timeout") or 0.0,
                )
                checked[key] = verify_spec(net, spec, checker, 4 * longest, Xtr)
            check = checked[key]
            reverify_s = time.perf_counter() - t_check
            vol = estimate_volume(spec, net, ds.X_train)
            if method == "baseline":
                base_vol = vol.log10_volume
                base_joint = vol.joint_log10_volume
                eps = largest_verified_ball(
                    net, c, vol.centre, spec.domain.lo, spec.domain.hi, checker, timeout=timeout
                )
                lo_b = np.maximum(
                    spec.domain.lo, vol.centre - eps * (spec.domain.hi - spec.domain.lo)
                )
                hi_b = np.minimum(
                    spec.domain.hi, vol.centre + eps * (spec.domain.hi - spec.domain.lo)
                )
                ball_log10 = (
                    float(np.sum(np.log10(hi_b - lo_b))) if np.all(hi_b > lo_b) else -np.inf
                )
                console.print(
                    f"{name} label {c}: largest verified L-inf ball around the pseudo-centre: "
                    f"eps = {eps:.4g} of each feature's range (log10 volume {ball_log10:.2f})"
                )
                rows.append(
                    {
                        "network": name,
                        "label": c,
                        "method": "linf-ball",
                        "delta": delta,
                        "linf_eps": eps,
                        "log10_volume": round(ball_log10, 3),
                    }
                )
            assert base_vol is not None
            cov = {
                "train_coverage": spec.coverage(net, Xtr),
                "test_coverage": spec.coverage(net, Xte),
            }
            row = {
                "network": name,
                "label": c,
                "method": method,
                "delta": delta,
                "size": spec.size,
                "verifier_calls": calls,
                "reused_counterexamples": reused,
                "train_coverage_pct": round(100 * cov["train_coverage"], 2),
                "test_coverage_pct": round(100 * cov["test_coverage"], 2),
                "test_classified_pct": ceiling,
                "train_classified_pct": train_ceiling,
                "log10_volume": round(vol.log10_volume, 3),
                "log10_volume_ratio": round(vol.log10_volume - base_vol, 3),
                "orthotope_inside_pct": round(100 * vol.inside_share, 1),
                "joint_log10_volume": round(vol.joint_log10_volume, 3),
                "joint_log10_volume_ratio": round(vol.joint_log10_volume - base_joint, 3),
                "joint_scale": round(vol.joint_scale, 4),
                "wall_s": round(seconds, 2),
                "executor": "serial"
                if method == "baseline"
                else f"{spec.info['executor']} x{spec.info['workers']}",
                "timeout_s": None if method == "baseline" else spec.info.get("timeout"),
                "unknown_calls": None
                if method == "baseline"
                else spec.info.get("verdicts", {}).get("unknown"),
                "focus_timeout_s": spec.info.get("focus_timeout"),
                "focus_agreement": spec.info.get("focus_agreement"),
                "focus_neurons": spec.info.get("focus_neurons"),
                "block_timeout_s": spec.info.get("block_timeout"),
                "block_patience": spec.info.get("block_patience"),
                "retry_timeout_s": spec.info.get("retry_timeout"),
                # the options the run's verifier had (NapLearner's defaults included)
                "crown_share": spec.info.get("verifier_options", {}).get("crown_share"),
                "crown_fail_share": spec.info.get("verifier_options", {}).get("crown_fail_share"),
                "retried_neurons": spec.info.get("retried"),
                "retry_freed": spec.info.get("retry_freed"),
                "size_before_implied": spec.info.get("size_before_implied"),
                "implied_freed": spec.info.get("implied_freed"),
                "implied_s": spec.info.get("implied_seconds"),
                "reverified": check.status.value,
                "reverify_s": round(reverify_s, 2),
            }
            console.print(row)
            rows.append(row)
            if specs is not None:
                specs.mkdir(parents=True, exist_ok=True)
                stem = f"{name}-label{c}-{method}"
                saved = spec.with_nap(spec.nap, info={**spec.info, **cov})
                saved.save(specs / f"{stem}.json")
                plot_nap(saved, specs / f"{stem}.png", hidden_sizes=net.hidden_sizes)
            if on_row is not None:
                on_row(rows)
            if method == "baseline" and check.status is Status.FALSIFIED:
                # The refined NAP itself is no specification: every learner starts from it
                # and would stop (NotASpecificationError); the row says so.
                console.print(f"[yellow]{name} label {c}: the refined NAP is falsified[/]")
                break
            # A fresh verifier may time out (UNKNOWN) on a large NAP that the learner's run
            # proved; it must never find a counterexample in a learned one.
            assert check.status is not Status.FALSIFIED, row
    return rows


def seed_sweep(n: int, console: Console) -> list[dict[str, Any]]:
    """For seeds 0..n-1: how many of each class's test inputs the seed's WBC network
    classifies correctly (the ceiling of a specification's test coverage)."""
    out = []
    table = Table(title="WBC networks by seed: test inputs classified correctly")
    for col in ("seed", "class 0", "class 1"):
        table.add_column(col)
    for seed in range(n):
        net, split = wbc_network(random_state=seed)
        pred = net.forward(split.X_test).argmax(1)
        rec: dict[str, Any] = {"seed": seed}
        for c in (0, 1):
            mask = split.y_test == c
            rec[f"class{c}_correct"] = int(np.sum(pred[mask] == c))
            rec[f"class{c}_test"] = int(np.sum(mask))
        out.append(rec)
        table.add_row(
            str(seed),
            f"{rec['class0_correct']}/{rec['class0_test']}",
            f"{rec['class1_correct']}/{rec['class1_test']}",
        )
    console.print(table)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--timeout", type=float, default=60.0, help="Seconds per verifier call.")
    ap.add_argument("--delta", type=float, default=0.95)
    ap.add_argument("--mnist", action="store_true", help="Also Table 2 on mnist-net_256x4.")
    ap.add_argument("--mnist-methods", default="group,stochastic,optadvprune")
    ap.add_argument("--mnist-timeout", type=float, default=60.0)
    ap.add_argument(
        "--mnist-focus-timeout",
        type=float,
        default=None,
        help="Seconds per call of method coarsen+focus (COARSEN with NapLearner's "
        "focus_timeout: more time for freeing the neurons that cost coverage).",
    )
    ap.add_argument(
        "--mnist-focus-agreement",
        type=float,
        default=0.99,
        help="The agreement below which coarsen+focus gives a call --mnist-focus-timeout.",
    )
    ap.add_argument(
        "--mnist-retry-timeout",
        type=float,
        default=None,
        help="Seconds per call of the retry pass of methods named with +retry (e.g. "
        "coarsen+focus+retry): NapLearner's retry_timeout.",
    )
    ap.add_argument(
        "--mnist-crown-share",
        type=float,
        default=None,
        help="The share of each MNIST verifier call that optimised bounds may take "
        "(MilpVerifier's crown_share, in pooled workers too; default: no cap).",
    )
    ap.add_argument(
        "--mnist-crown-fail-share",
        type=float,
        default=0.3,
        help="The same share for a call that follows one whose optimised bounds left terms "
        "open (MilpVerifier's crown_fail_share; default 0.3, NapLearner's; 1: no cap).",
    )
    ap.add_argument(
        "--mnist-block-timeout",
        type=float,
        default=None,
        help="Seconds per group COARSEN call for a block of two or more neurons (NapLearner's "
        "block_timeout; singletons keep --mnist-timeout, so the minimality is the same).",
    )
    ap.add_argument(
        "--mnist-block-patience",
        type=int,
        default=BLOCK_PATIENCE,
        help="Group COARSEN: after this many UNKNOWN blocks in a row, a block that times out "
        "goes to its singletons instead of halving (NapLearner's block_patience, default 8; "
        "-1: always halve).",
    )
    ap.add_argument(
        "--mnist-delta",
        type=float,
        default=None,
        help="Refined-NAP threshold of Table 2 (default: --delta). The paper's Table 2 "
        "baselines match 0.99 on these data (see above).",
    )
    ap.add_argument(
        "--mnist-start-timeout",
        type=float,
        default=None,
        help="Seconds for each MNIST learner's first call, the refined NAP's "
        "(default: max(--mnist-timeout, 60)).",
    )
    ap.add_argument("--mnist-labels", default="0,1,4")
    ap.add_argument("--out", type=Path, default=RESULTS, help="The results file.")
    ap.add_argument(
        "--checkpoints",
        type=Path,
        default=None,
        help="Folder for the learners' checkpoint files: a killed run resumes (long MNIST runs).",
    )
    ap.add_argument(
        "--specs",
        type=Path,
        default=None,
        help="Folder to save each row's NAP as a spec (JSON) and its picture (PNG).",
    )
    ap.add_argument(
        "--no-implied",
        action="store_true",
        help="Leave out the implied pass (freeing neurons whose state the rest implies).",
    )
    ap.add_argument(
        "--mnist-only",
        action="store_true",
        help="Only Table 2; the saved WBC rows are kept in the results file.",
    )
    ap.add_argument(
        "--wbc-seed",
        type=int,
        default=0,
        help="Seed of the WBC network and split (rows named wbc-4x32-seed<k> unless 0).",
    )
    ap.add_argument(
        "--seed-sweep",
        type=int,
        default=0,
        help="Also record each seed's test inputs classified correctly, per class (seeds 0..N-1).",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=2,
        help="COARSEN's and group COARSEN's calls through a process pool of this many "
        "(1: every method serial).",
    )
    ap.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        help="Result files of other runs whose rows replace those of --out (see above).",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and BLAS CPU threads per process (default 1). The optimised bounds are "
        "many small operations; with two processes of two threads each on this 2-core "
        "machine, threads waiting for busy cores made identical MNIST queries 10x slower "
        "(0.03 s -> 0.3 s). BLAS (the attack) as well: relucid.threads.",
    )
    args = ap.parse_args()
    limit_threads(args.threads)
    console = Console(width=170)
    if args.merge:
        merge(args.out, args.merge, console, args.checkpoints)
        return
    t0 = time.perf_counter()
    seed = args.wbc_seed
    wbc_name = "wbc-4x32" if seed == 0 else f"wbc-4x32-seed{seed}"
    net, _ = wbc_network(random_state=seed)
    ds = nap_data("wbc", random_state=seed)
    results: Path = args.out
    if args.checkpoints is not None:
        args.checkpoints.mkdir(parents=True, exist_ok=True)
    old = json.loads(results.read_text()) if results.exists() else {}
    mnist_on = args.mnist or args.mnist_only
    old_rows: list[dict[str, Any]] = old.get("rows", [])
    # the tables not run this time keep their saved rows (and their settings)
    kept = [
        r
        for r in old_rows
        if (r["network"].startswith("mnist") and not mnist_on)
        or (r["network"].startswith("wbc") and (args.mnist_only or r["network"] != wbc_name))
    ]
    done: list[dict[str, Any]] = []
    wbc_s = 0.0
    walls = old.get("wbc_table_wall_s", {})
    walls = walls if isinstance(walls, dict) else {"wbc-4x32": walls}
    sweep = old.get("seed_sweep", [])
    if args.seed_sweep:
        sweep = seed_sweep(args.seed_sweep, console)

    def save(more: list[dict[str, Any]]) -> None:
        out = {
            "machine": f"{platform.node()} ({platform.processor() or platform.machine()}), "
            f"{platform.python_version()}",
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "split": ds.description if not args.mnist_only else old.get("split"),
            "labels_from": "dataset",
            "delta": args.delta,
            "timeout_s": args.timeout,
            "workers": args.workers,
            "torch_threads": args.threads,
            "command": " ".join(["python", *sys.argv]),
            "mnist_timeout_s": args.mnist_timeout if mnist_on else old.get("mnist_timeout_s"),
            "mnist_split": nap_data("mnist").description if mnist_on else old.get("mnist_split"),
            "mnist_command": " ".join(["python", *sys.argv])
            if mnist_on
            else old.get("mnist_command"),
            "wbc_table_wall_s": walls | ({} if args.mnist_only else {wbc_name: round(wbc_s, 1)}),
            "seed_sweep": sweep,
            "rows": done + more + kept,
        }
        results.parent.mkdir(exist_ok=True)
        results.write_text(json.dumps(out, indent=1) + "\n")

    if not args.mnist_only:
        done = run_table(
            wbc_name,
            net,
            ds,
            (0, 1),
            METHODS,
            args.timeout,
            args.delta,
            console,
            args.workers,
            on_row=save,
            specs=args.specs,
            implied=not args.no_implied,
        )
        wbc_s = time.perf_counter() - t0
        save([])
    if mnist_on:
        mnist = load_onnx(data_dir() / "mnistfc" / "mnist-net_256x4.onnx")
        mnist = mnist.replace(domain=Box(np.zeros(784), np.ones(784)))
        done += run_table(
            "mnist-256x4",
            mnist,
            nap_data("mnist"),
            tuple(int(c) for c in args.mnist_labels.split(",")),
            tuple(args.mnist_methods.split(",")),
            args.mnist_timeout,
            args.delta if args.mnist_delta is None else args.mnist_delta,
            console,
            on_row=save,
            checkpoints=args.checkpoints,
            focus_timeout=args.mnist_focus_timeout,
            focus_agreement=args.mnist_focus_agreement,
            block_timeout=args.mnist_block_timeout,
            block_patience=None if args.mnist_block_patience < 0 else args.mnist_block_patience,
            retry_timeout=args.mnist_retry_timeout,
            specs=args.specs,
            implied=not args.no_implied,
            crown_share=args.mnist_crown_share,
            crown_fail_share=args.mnist_crown_fail_share,
            start_timeout=args.mnist_start_timeout,
        )
    rows = done
    table = Table(title="NAP learning (Table 1 layout; volume ratio as log10 vs baseline)")
    cols = [
        "network",
        "label",
        "method",
        "delta",
        "timeout_s",
        "size",
        "implied_freed",
        "verifier_calls",
        "reused_counterexamples",
        "train_coverage_pct",
        "test_coverage_pct",
        "test_classified_pct",
        "log10_volume",
        "log10_volume_ratio",
        "orthotope_inside_pct",
        "linf_eps",
        "wall_s",
    ]
    for col in cols:
        table.add_column(col.replace("_", " "))
    for r in rows:
        table.add_row(*(str(r.get(c, "")) for c in cols))
    console.print(table)
    recheck = sum(r.get("reverify_s", 0.0) for r in rows if r["network"] == wbc_name)
    console.print(
        f"WBC table ({wbc_name}): {wbc_s:.1f} s, of which {recheck:.1f} s re-verify "
        "the learned NAPs with a fresh verifier"
    )
    save([])
    console.print(f"wrote {results}")


if __name__ == "__main__":
    main()
