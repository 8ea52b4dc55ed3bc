"""How much can any specification cover? Bounds on mnist-256x4, with proof (NAP issue).

For each spec given (written by ``benchmarks/nap.py --specs DIR``): first the counterexamples
of ``relucid nap cover`` (:func:`relucid.spec.grow_coverage` at ``--cover-timeout`` seconds a
question; the points behind its proofs), then the search of ``relucid nap bound``
(:func:`relucid.spec.max_coverage`, ``--rounds`` verifier calls at ``--timeout`` seconds)
from those points and the inputs the network misclassifies. ``upper`` is a bound on the
training inputs of the class that *any* NAP specification covers, whichever neurons it fixes;
every point it rests on is replayed here by a forward pass (in the domain, not classified as
the class). ``classified``: the inputs the network classifies as the class (a bound too, from
the misclassified inputs alone).

The paper's train coverage (Table 2, COARSEN: 98.68 / 98.90 / 98.51% for labels 0 / 1 / 4)
is on the 60,000 MNIST training images; ours are the 7,000-image split of the test set that
the specs were mined from. The rows say which is above the bound.

``--whole-class`` bounds instead all the class's images of both splits: the whole MNIST test
set, on which the paper's *test* column (98.78 / 98.59 / 97.45%) was measured, with the same
network (``mnist_fc_256x4``), so that column can be held against the bound directly.
``--points DIR`` writes the points each bound rests on (``x``, shape (k, 784)) to
``DIR/<row>.npz``, for ``relucid nap bound --given`` to replay.

    python benchmarks/nap_bound.py SPEC.json [SPEC.json ...] [--cover-timeout 15]
        [--cover-limit N] [--timeout 30] [--rounds 40] [--whole-class] [--points DIR]
        [--given POINTS.npz] [--wbc]

``--wbc`` adds the seeded WBC 4x32 network (seed 0, as in ``benchmarks/nap.py``): a group
COARSEN spec is learned here for each label (30 s a call), then bounded the same way.

Prints a table and writes ``benchmarks/results/nap_bound.json`` (one row per spec and search
time limit; a row already there for the same spec and limit is replaced, others kept).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from nap_files import write_rows  # benchmarks/ is on the path as the script's folder
from rich.console import Console
from rich.table import Table

from relucid import ReluNetwork
from relucid.datasets import wbc_network
from relucid.io import data_dir, load_onnx
from relucid.spec import NapLearner, NapSpec, grow_coverage, max_coverage
from relucid.spec.bound import coverage_bound, misclassified
from relucid.spec.coarsen import MILP_DEFAULTS
from relucid.spec.data import nap_data
from relucid.threads import limit_threads
from relucid.verify import MilpVerifier

RESULTS = Path(__file__).parent / "results" / "nap_bound.json"
#: Table 2 of the paper, COARSEN's train coverage (%), on the MNIST training set.
PAPER_TRAIN_PCT = {0: 98.68, 1: 98.90, 4: 98.51}
#: Table 2 of the paper, COARSEN's test coverage (%), on the MNIST test set (both our splits).
PAPER_TEST_PCT = {0: 98.78, 1: 98.59, 4: 97.45}


def bound_row(
    net: ReluNetwork,
    spec: NapSpec,
    X: np.ndarray,
    name: str,
    args: argparse.Namespace,
    console: Console,
    paper: dict[int, float],
) -> dict[str, Any]:
    """One spec's row: ``nap cover``'s counterexamples, then the search from them."""
    c = spec.label
    t = time.perf_counter()
    cover = grow_coverage(
        net, spec, X, MilpVerifier(**MILP_DEFAULTS), args.cover_timeout, limit=args.cover_limit
    )
    cover_s = time.perf_counter() - t
    found = [x for x, _ in cover.blockers()]
    given = found + ([] if args.given is None else list(np.load(args.given)["x"]))
    console.print(f"{name}: {cover}", markup=False)

    def show(r: object) -> None:
        console.print(f"{name}: {r}", markup=False)

    t = time.perf_counter()
    rep = max_coverage(
        net,
        spec,
        X,
        MilpVerifier(**MILP_DEFAULTS),
        args.timeout,
        counterexamples=np.array(given) if given else None,
        rounds=args.rounds,
        on_round=show,
    )
    search_s = time.perf_counter() - t
    console.print(f"{name}: {rep}", markup=False)
    # the certificate, replayed independently of the search: each point is a
    # counterexample of the class on the domain
    replayed = bool(misclassified(net, spec, rep.counterexamples).all())
    assert replayed, "a point the bound rests on is no counterexample"
    # and the bound itself, solved again from those points alone (no verifier)
    again = coverage_bound(net, spec, X, rep.counterexamples, time_limit=600.0)
    assert again.upper <= rep.bound.upper, "the points alone give a weaker bound"
    classified = int((net.forward(X).argmax(1) == c).sum())
    b = rep.bound
    if args.points is not None:
        args.points.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.points / f"{Path(name).stem}.npz", x=rep.counterexamples)
    return {
        "spec": name,
        "label": c,
        "spec_size": spec.size,
        "inputs": len(X),
        "classified": classified,
        "classified_pct": round(100 * classified / len(X), 2),
        "covered": rep.covered,
        "covered_pct": round(100 * rep.covered / len(X), 2),
        "cover_at_most": cover.at_most,
        "upper": b.upper,
        "upper_pct": round(100 * b.upper / len(X), 2),
        "gap": b.upper - rep.covered,
        "optimal": rep.optimal,
        "found_size": None if rep.spec is None else rep.spec.size,
        "inputs_from": "both splits" if args.whole_class else "mining split",
        f"paper_{'test' if args.whole_class else 'train'}_pct": paper.get(c),
        "paper_above_upper": None if c not in paper else paper[c] > 100 * b.upper / len(X),
        "counterexamples": b.counterexamples,
        "misclassified": b.misclassified,
        "from_cover": len(found),
        "given": None if args.given is None else str(args.given),
        "rounds": len(rep.rounds),
        "last_round": None if not rep.rounds else rep.rounds[-1].status.value,
        "milp_exact": b.exact,
        "cover_timeout_s": args.cover_timeout,
        "cover_limit": args.cover_limit,
        "timeout_s": args.timeout,
        "cover_s": round(cover_s, 1),
        "search_s": round(search_s, 1),
        "replayed": replayed,
        "rechecked_upper": again.upper,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("spec", type=Path, nargs="*", help="Learned mnist-256x4 specs.")
    ap.add_argument("--cover-timeout", type=float, default=15.0, help="Seconds per question.")
    ap.add_argument("--timeout", type=float, default=30.0, help="Seconds per search call.")
    ap.add_argument("--rounds", type=int, default=40, help="Search calls at most.")
    ap.add_argument("--cover-limit", type=int, default=None, help="Cover questions at most.")
    ap.add_argument(
        "--whole-class",
        action="store_true",
        help="Bound the class's images of both splits (the whole MNIST test set, where the "
        "paper's test column was measured), not only the mining split.",
    )
    ap.add_argument("--points", type=Path, default=None, help="Write each row's points here.")
    ap.add_argument(
        "--given", type=Path, default=None, help="Also start from these points (.npz with x)."
    )
    ap.add_argument(
        "--wbc",
        action="store_true",
        help="Also the seeded WBC 4x32 network: group COARSEN specs for labels 0 and 1, "
        "learned here (30 s a call).",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if not args.spec and not args.wbc:
        ap.error("give mnist-256x4 specs, or --wbc")
    limit_threads(1)  # torch and BLAS: it runs beside other benchmarks
    console = Console(width=160)
    rows = []
    if args.wbc:
        wbc, _ = wbc_network(random_state=0)
        w = nap_data("wbc", random_state=0)
        for c in (0, 1):
            learner = NapLearner("group", timeout=30.0).fit(wbc, w.X_train, w.y_train, c)
            name = f"wbc-4x32-label{c}-group"
            X = w.X_train[w.y_train == c]
            rows.append(bound_row(wbc, learner.spec_, X, name, args, console, {}))
    if args.spec:
        net = load_onnx(data_dir() / "mnistfc" / "mnist-net_256x4.onnx")
        d = nap_data("mnist")
    for path in args.spec:
        spec = NapSpec.load(path)
        spec.check(net)
        X = d.X_train[d.y_train == spec.label]
        paper, name = PAPER_TRAIN_PCT, path.name
        if args.whole_class:
            X = np.vstack([X, d.X_test[d.y_test == spec.label]])
            paper, name = PAPER_TEST_PCT, f"{path.stem}-whole.json"
        rows.append(bound_row(net, spec, X, name, args, console, paper))
    table = Table(title="Inputs of the class any specification can cover")
    cols = (
        "label",
        "inputs",
        "classified",
        "covered",
        "cover_at_most",
        "upper",
        "upper_pct",
        "paper_pct",
        "counterexamples",
        "rounds",
        "last_round",
        "search_s",
    )
    for col in cols:
        table.add_column(col.replace("_", " "), justify="right")
    for r in rows:
        paper = r.get("paper_test_pct", r.get("paper_train_pct"))
        table.add_row(*(str(paper if col == "paper_pct" else r[col]) for col in cols))
    console.print(table)
    command = " ".join(
        [
            "python benchmarks/nap_bound.py",
            *(str(p) for p in args.spec),
            *(["--wbc"] if args.wbc else []),
            f"--cover-timeout {args.cover_timeout:g} --timeout {args.timeout:g}",
            f"--rounds {args.rounds}",
            *([] if args.cover_limit is None else [f"--cover-limit {args.cover_limit}"]),
            *(["--whole-class"] if args.whole_class else []),
            *([] if args.points is None else [f"--points {args.points}"]),
            *([] if args.given is None else [f"--given {args.given}"]),
        ]
    )
    write_rows(args.out, rows, command, key=lambda r: (r["spec"], r["timeout_s"]))


if __name__ == "__main__":
    main()
