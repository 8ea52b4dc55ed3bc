"""Grow learned MNIST specs' coverage, and prove which inputs no specification can add (NAP issue).

For each spec given (written by ``benchmarks/nap.py --specs DIR``), every training input of
its class that the spec leaves out is asked about in turn (:func:`relucid.spec.grow_coverage`):
the finest NAP covering it together with the inputs covered so far is verified. VERIFIED: the
input joins; FALSIFIED: a replayed counterexample lies in *every* NAP that covers that set, so
no specification covers the input with the rest (a proof that the spec's coverage cannot reach
it without giving up inputs it covers); UNKNOWN: undecided at the limit. The grown spec (the
finest NAP of the grown set, or the spec's own NAP with the disagreeing neurons freed when that
verifies too) is re-verified by a fresh verifier (``verify_spec``, 4x the limit).

With ``--coarsen-timeout T`` the grown spec is then coarsened by COARSEN (``NapLearner(start=
grown)``, agreement order, ``--coarsen-focus-timeout`` for neurons some class input disagrees
with, checkpointed under ``--checkpoints``): a minimal spec that keeps every input the grown
one covers. ``--limit N`` asks about the N left-out inputs that disagree with the fewest
fixed neurons only (0: none). With ``--augment shift`` that COARSEN (of the grown spec,
or of the spec itself when no input joined) has, besides the class's inputs, every training
image of the class moved by one pixel up, down, left and right
(:func:`relucid.spec.data.shifted_images`; those the network classifies as the class), so
the neurons a shifted image disagrees with get the focus time too: inputs near the mining
data, which a spec that generalises should cover.

    python benchmarks/nap_cover.py SPEC.json [SPEC.json ...] [--timeout 15] [--specs DIR]
        [--coarsen-timeout 1 --coarsen-focus-timeout 15 --checkpoints DIR]
        [--augment shift] [--limit N]

Prints a table and writes ``benchmarks/results/nap_cover.json`` (one row per spec, time
limit and augmentation; a row already there for the same three is replaced, others kept).
The specs' own rows (how they were learned) are in ``benchmarks/results/nap.json``.
``at_most``: how many of the class's inputs a specification that covers the ``kept`` ones
(covered before, or joined) can cover, every input proved impossible to add being out.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from nap_files import write_rows  # benchmarks/ is on the path as the script's folder
from rich.console import Console
from rich.table import Table

from relucid import ReluNetwork
from relucid.io import data_dir, load_onnx
from relucid.spec import NapLearner, NapSpec, grow_coverage, verify_spec
from relucid.spec.coarsen import MILP_DEFAULTS
from relucid.spec.data import nap_data, shifted_images
from relucid.threads import limit_threads
from relucid.verify import MilpVerifier

RESULTS = Path(__file__).parent / "results" / "nap_cover.json"


def focus_reach(
    net: ReluNetwork, spec: NapSpec, X: np.ndarray, Xs: np.ndarray, Xt: np.ndarray
) -> dict[str, int]:
    """Which fixed neurons keep the test inputs the network classifies as the class out, and
    how many of them a training input (``X``), or also a shifted one (``Xs``), disagrees with:
    the neurons COARSEN's focus calls reach, and the test inputs all of whose blockers they
    reach (no verifier call; test data only measured, never learned from)."""
    fixed, active = spec.nap >= 0, spec.nap == 1

    def disagree(A: np.ndarray) -> np.ndarray:
        return ((np.concatenate(net.pre_activations(A), axis=1) > 0) != active) & fixed

    T = Xt[net.predict(Xt) == spec.label]
    dt = disagree(T)
    left = dt.any(axis=1)
    by_train = disagree(X).any(axis=0)
    by_both = by_train | (disagree(Xs).any(axis=0) if len(Xs) else False)
    return {
        "test_classified_left_out": int(left.sum()),
        "test_blocking_neurons": int(dt.any(axis=0).sum()),
        "blocking_focus_train": int((dt.any(axis=0) & by_train).sum()),
        "blocking_focus_with_augmented": int((dt.any(axis=0) & by_both).sum()),
        "left_out_all_focus_train": int((left & ~(dt & ~by_train).any(axis=1)).sum()),
        "left_out_all_focus_with_augmented": int((left & ~(dt & ~by_both).any(axis=1)).sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("spec", type=Path, nargs="+", help="Learned mnist-256x4 specs.")
    ap.add_argument("--timeout", type=float, default=15.0, help="Seconds per question.")
    ap.add_argument(
        "--limit", type=int, default=None, help="Questions at most per spec (0: grow none)."
    )
    ap.add_argument("--specs", type=Path, default=None, help="Write the grown specs here.")
    ap.add_argument("--coarsen-timeout", type=float, default=None, help="Then COARSEN.")
    ap.add_argument("--coarsen-focus-timeout", type=float, default=None)
    ap.add_argument("--checkpoints", type=Path, default=None, help="COARSEN checkpoints.")
    ap.add_argument(
        "--augment",
        choices=["shift"],
        default=None,
        help="COARSEN's class inputs also include the training images shifted by one pixel.",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.augment is not None and args.coarsen_timeout is None:
        ap.error("--augment shapes the COARSEN after growing: give --coarsen-timeout too")
    limit_threads(1)  # torch and BLAS: it runs beside other benchmarks
    net = load_onnx(data_dir() / "mnistfc" / "mnist-net_256x4.onnx")
    d = nap_data("mnist")
    console = Console(width=160)
    rows = []
    for path in args.spec:
        spec = NapSpec.load(path)
        spec.check(net)
        X = d.X_train[d.y_train == spec.label]
        Xt = d.X_test[d.y_test == spec.label]

        def progress(step: object, covered: int, name: str = path.stem) -> None:
            console.print(f"{name}: {step} -> covered {covered}", markup=False)

        t = time.perf_counter()
        rep = grow_coverage(
            net,
            spec,
            X,
            MilpVerifier(**MILP_DEFAULTS),
            args.timeout,
            limit=args.limit,
            on_step=progress,
        )
        wall = time.perf_counter() - t
        grown = rep.spec or spec
        check_s = 4 * args.timeout
        t = time.perf_counter()
        check = verify_spec(net, grown, MilpVerifier(**MILP_DEFAULTS), check_s, X)
        check_wall = time.perf_counter() - t
        if args.specs is not None and rep.spec is not None:
            args.specs.mkdir(parents=True, exist_ok=True)
            rep.spec.save(args.specs / f"{path.stem}+grow.json")
        summary = rep.to_dict()
        after: dict[str, object] = {}

        def report(calls: int, size: int, status: object) -> None:
            if calls % 50 == 0:
                console.print(f"coarsen: {calls} calls, |P| {size}", markup=False)

        if args.coarsen_timeout is not None and (rep.spec is not None or args.augment):
            Xc, yc, Xs = d.X_train, d.y_train, X[:0]
            if args.augment == "shift":
                Xs = shifted_images(X, 28)
                Xs = Xs[net.predict(Xs) == spec.label]
                Xc = np.vstack([Xc, Xs])
                yc = np.concatenate([yc, np.full(len(Xs), spec.label)])
            tail = ("" if rep.spec is None else "+grow") + "+coarsen"
            tail += "" if args.augment is None else f"+{args.augment}"
            learner = NapLearner(
                "coarsen",
                timeout=args.coarsen_timeout,
                start_timeout=4 * args.timeout,  # the grown NAP was proved within timeout
                focus_timeout=args.coarsen_focus_timeout,
                focus_agreement=1.0,
                checkpoint=None
                if args.checkpoints is None
                else args.checkpoints / f"{path.stem}{tail}.json",
                on_call=report,
            ).fit(net, Xc, yc, spec.label, start=grown)
            final = learner.spec_
            if args.specs is not None:
                final.save(args.specs / f"{path.stem}{tail}.json")
            t = time.perf_counter()
            recheck = verify_spec(net, final, MilpVerifier(**MILP_DEFAULTS), 60.0, X)
            after = {
                "coarsened_size": final.size,
                "coarsened_train_pct": round(100 * final.coverage(net, X), 2),
                "coarsened_test_pct": round(100 * final.coverage(net, Xt), 2),
                "coarsen_timeout_s": args.coarsen_timeout,
                "coarsen_focus_timeout_s": args.coarsen_focus_timeout,
                "augment": args.augment,
                "augmented_inputs": len(Xs),
                "coarsened_augmented_pct": round(100 * final.coverage(net, Xs), 2)
                if len(Xs)
                else None,
                "grown_augmented_pct": round(100 * grown.coverage(net, Xs), 2) if len(Xs) else None,
                **(focus_reach(net, grown, X, Xs, Xt) if len(Xs) else {}),
                "coarsen_calls": learner.calls_,
                "coarsen_verdicts": learner.counts_,
                "coarsen_wall_s": round(learner.seconds_, 1),
                "coarsened_reverified": recheck.status.value,
                "coarsened_reverify_s": round(time.perf_counter() - t, 1),
                "lp_resume": True,  # rows from before 14d784c say False
            }
            console.print(f"coarsened: {final} {after}", markup=False)
        rows.append(
            {
                "spec": path.name,
                "label": spec.label,
                "method": spec.method,
                "size_before": spec.size,
                "train_before_pct": round(100 * spec.coverage(net, X), 2),
                "test_before_pct": round(100 * spec.coverage(net, Xt), 2),
                "left_out": len(rep.steps),
                "joined": summary["joined"],
                "cannot_join": summary["cannot_join"],
                "undecided": summary["undecided"],
                "inputs": rep.total,
                "kept": rep.kept,
                "at_most": rep.at_most,
                "at_most_pct": round(100 * rep.at_most / rep.total, 2),
                "method_after": grown.method,
                "size_after": grown.size,
                "train_after_pct": round(100 * grown.coverage(net, X), 2),
                "test_after_pct": round(100 * grown.coverage(net, Xt), 2),
                "coarse": rep.coarse,
                "timeout_s": args.timeout,
                "wall_s": round(wall, 1),
                "reverified": check.status.value,
                "reverify_limit_s": check_s,
                "reverify_s": round(check_wall, 1),
                **after,
                "steps": summary["steps"],
            }
        )
        console.print(f"{path.name}: {rep}", markup=False)
    table = Table(title=f"Growing mnist-256x4 specs' coverage ({args.timeout:g} s a question)")
    cols = (
        "label",
        "method",
        "|P| before",
        "train / test % before",
        "left out",
        "joined",
        "cannot join",
        "undecided",
        "at most %",
        "|P| after",
        "train / test % after",
        "wall s",
        "re-check",
    )
    for col in cols:
        table.add_column(col, justify="left" if col in ("method", "re-check") else "right")
    for r in rows:
        table.add_row(
            str(r["label"]),
            r["method"],
            str(r["size_before"]),
            f"{r['train_before_pct']:.2f} / {r['test_before_pct']:.2f}",
            str(r["left_out"]),
            str(r["joined"]),
            str(r["cannot_join"]),
            str(r["undecided"]),
            f"{r['at_most_pct']:.2f}",
            str(r["size_after"]),
            f"{r['train_after_pct']:.2f} / {r['test_after_pct']:.2f}",
            f"{r['wall_s']:.0f}",
            f"{r['reverified']} {r['reverify_s']:.1f} s",
        )
    console.print(table)
    command = (
        "python benchmarks/nap_cover.py "
        + " ".join(str(p) for p in args.spec)
        + f" --timeout {args.timeout:g}"
        + ("" if args.limit is None else f" --limit {args.limit}")
        + (
            ""
            if args.coarsen_timeout is None
            else f" --coarsen-timeout {args.coarsen_timeout:g}"
            f" --coarsen-focus-timeout {args.coarsen_focus_timeout}"
        )
        + ("" if args.augment is None else f" --augment {args.augment}")
    )
    write_rows(
        args.out,
        rows,
        command,
        key=lambda r: (
            r["spec"],
            r["timeout_s"],
            r.get("augment"),
            r.get("coarsen_focus_timeout_s"),
            r.get("lp_resume", True),
        ),
    )


if __name__ == "__main__":
    main()
