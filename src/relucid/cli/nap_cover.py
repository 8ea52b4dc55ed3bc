"""``relucid nap cover`` and ``relucid nap bound``: which inputs a specification can cover,
with proofs (:mod:`relucid.spec.cover`, :mod:`relucid.spec.bound`). They join the ``nap``
group of :mod:`relucid.cli.nap`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from numpy.typing import ArrayLike

from relucid.cli.common import (
    BackendOpt,
    JsonOpt,
    ThreadsOpt,
    TimeoutOpt,
    console,
    err_console,
    fail,
    report_out,
)
from relucid.cli.nap import ClassDataOpt, SpecFileOpt, SpecModelOpt, nap_app, nap_model
from relucid.errors import RelucidError
from relucid.network import ReluNetwork
from relucid.threads import limit_threads
from relucid.verify.query import Verifier


@nap_app.command("cover")
def nap_cover_cmd(
    model: SpecModelOpt,
    spec: SpecFileOpt,
    data: ClassDataOpt,
    timeout: TimeoutOpt = 60.0,
    limit: Annotated[
        int | None, typer.Option(help="Ask about at most this many left-out inputs.")
    ] = None,
    coarse: Annotated[
        bool,
        typer.Option(
            help="Also try the spec's own NAP with the disagreeing neurons freed (one call)."
        ),
    ] = True,
    out: Annotated[
        Path | None, typer.Option(help="Write the grown spec here (when an input joins).")
    ] = None,
    counterexamples: Annotated[
        Path | None,
        typer.Option(
            help="Write the counterexamples behind the proofs to this .npz: x (one row each), "
            "predicted (its class), and per proof its input and blocker (row of x)."
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Draw the counterexamples behind the proofs, each beside the inputs it keeps "
            "out, to this PNG (square image inputs, e.g. MNIST)."
        ),
    ] = None,
    backend: BackendOpt = "milp",
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """For each training input of the spec's class that it leaves out: can any specification
    cover it together with the inputs covered so far? Its finest covering NAP is verified:
    VERIFIED, it joins (the spec grows); FALSIFIED, a counterexample lies in every NAP that
    covers them (a proof that none does); UNKNOWN, undecided."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from relucid.spec import NapSpec, grow_coverage
    from relucid.spec.data import nap_data

    try:
        if counterexamples is not None and counterexamples.suffix != ".npz":
            raise fail(f"--counterexamples must name a .npz file, not {counterexamples}")
        if threads is not None:
            limit_threads(threads)
        net = nap_model(model)
        if plot is not None:  # before the run, not after it
            from relucid.spec.plot import plot_blockers, square_shape

            square_shape(net.input_dim)
        s = NapSpec.load(spec)
        s.check(net)
        ds = nap_data(data)
        X = ds.X_train[ds.y_train == s.label]
        left = int((~s.contains(net, X)).sum())
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} asked, covered {task.fields[covered]}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=as_json,
        ) as bar:
            task = bar.add_task(
                f"class {s.label}",
                total=left if limit is None else min(left, limit),
                covered=len(X) - left,
            )
            rep = grow_coverage(
                net,
                s,
                X,
                _verifier(backend),
                timeout,
                limit=limit,
                coarse=coarse,
                on_step=lambda _step, covered: bar.update(task, advance=1, covered=covered),
            )
        if out is not None and rep.spec is not None:
            rep.spec.save(out)
        if counterexamples is not None:
            _save_blockers(counterexamples, rep.blockers(), net)
        if plot is not None:
            plot_blockers(rep, X, net, plot)
    except RelucidError as exc:
        raise fail(str(exc)) from exc
    # "size" is the grown spec's (None when none grew); the spec asked about is "spec_size"
    payload: dict[str, object] = {"spec": str(spec), "spec_size": s.size, **rep.to_dict()}
    if out is not None:
        payload["out"] = str(out) if rep.spec is not None else None
    if as_json:
        report_out(payload, "", as_json)
        return
    table = Table(title=f"{s}: inputs left out")
    for col in ("input", "disagrees", "|P| asked", "verdict", "how", "seconds"):
        table.add_column(col, justify="left" if col in ("verdict", "how") else "right")
    words = {"verified": "joined", "falsified": "cannot join (proof)", "unknown": "undecided"}
    for step in rep.steps:
        table.add_row(
            str(step.index),
            str(step.disagrees),
            str(step.size),
            words.get(step.status.value, step.status.value),
            step.reason,
            f"{step.seconds:.1f}",
        )
    console.print(table)
    tail = "" if out is None or rep.spec is None else f"; grown spec written to {out}"
    console.print(f"{rep}{tail}", markup=False, highlight=False)


@nap_app.command("bound")
def nap_bound_cmd(
    model: SpecModelOpt,
    spec: SpecFileOpt,
    data: ClassDataOpt,
    timeout: TimeoutOpt = 60.0,
    rounds: Annotated[
        int,
        typer.Option(
            help="Verifier calls of the search (each may add a counterexample); 0: only the "
            "bound from the inputs and --given."
        ),
    ] = 20,
    given: Annotated[
        Path | None,
        typer.Option(
            help="Counterexamples to start from: a .npz with x (one row each), e.g. from "
            "`relucid nap cover --counterexamples`."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the spec found here (when one covers more).")
    ] = None,
    counterexamples: Annotated[
        Path | None,
        typer.Option(help="Write every counterexample the bound rests on to this .npz."),
    ] = None,
    backend: BackendOpt = "milp",
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """How many of the class's training inputs can *any* specification cover? A bound
    certified by counterexamples (no NAP that covers more excludes them all), and a search
    for the spec that reaches it: each round, the largest set the counterexamples allow has
    its finest NAP verified; FALSIFIED adds a counterexample, VERIFIED is a spec covering
    that set (optimal when it meets the bound)."""
    import numpy as np
    from rich.table import Table

    from relucid.spec import BoundRound, NapSpec, coverage_bound, max_coverage, misclassified
    from relucid.spec.data import nap_data

    try:
        for path, name in ((given, "--given"), (counterexamples, "--counterexamples")):
            if path is not None and path.suffix != ".npz":
                raise fail(f"{name} must name a .npz file, not {path}")
        if rounds < 0:
            raise fail(f"--rounds must be 0 or more, not {rounds}")
        if threads is not None:
            limit_threads(threads)
        net = nap_model(model)
        s = NapSpec.load(spec)
        s.check(net)
        ds = nap_data(data)
        X = ds.X_train[ds.y_train == s.label]
        Z = None
        if given is not None:
            try:
                Z = np.load(given)["x"]
            except (OSError, KeyError, ValueError) as exc:
                raise fail(f"--given {given}: no array x of counterexamples ({exc})") from exc
        asked = [0]

        def show(r: BoundRound) -> None:
            asked[0] += 1
            if as_json:  # stdout carries the JSON alone; the rounds are in it
                return
            err_console.print(
                f"round {asked[0]}: bound {r.upper}, asked a set of {r.best} "
                f"-> {r.status.value} ({r.seconds:.1f} s)",
                highlight=False,
            )

        with err_console.status("solving the coverage MILP and asking the verifier..."):
            if rounds == 0:
                bound = coverage_bound(net, s, X, Z)
                payload: dict[str, object] = {"spec": str(spec), **bound.to_dict()}
                text = f"{s}: {bound}; the spec covers {int(s.contains(net, X).sum())}"
                found, points = None, Z
            else:
                rep = max_coverage(
                    net,
                    s,
                    X,
                    _verifier(backend),
                    timeout,
                    counterexamples=Z,
                    rounds=rounds,
                    on_round=show,
                )
                payload = {"spec": str(spec), **rep.to_dict()}
                text = f"{s}: {rep}"
                found, points = rep.spec, rep.counterexamples
        if out is not None and found is not None:
            found.save(out)
            text += (
                f"; spec written to {out} (the finest NAP of its inputs, not minimal: "
                f"`relucid nap learn --start {out}` coarsens it and keeps them)"
            )
        if counterexamples is not None:
            pts = np.zeros((0, net.input_dim)) if points is None else np.asarray(points)
            wrong = X[misclassified(net, s, X)]  # the bound's own test
            allx = np.unique(np.concatenate([wrong, pts.reshape(-1, net.input_dim)]), axis=0)
            _save_points(counterexamples, allx, net)
    except RelucidError as exc:
        raise fail(str(exc)) from exc
    if out is not None:
        payload["out"] = str(out) if found is not None else None
    if as_json:
        report_out(payload, "", as_json)
        return
    if rounds:
        table = Table(title=f"{s}: the search")
        for col in ("round", "bound", "set asked", "|P| asked", "verdict", "seconds"):
            table.add_column(col, justify="left" if col == "verdict" else "right")
        for k, r in enumerate(rep.rounds, 1):
            table.add_row(
                str(k), str(r.upper), str(r.best), str(r.size), r.status.value, f"{r.seconds:.1f}"
            )
        console.print(table)
    console.print(text, markup=False, highlight=False)


def _save_blockers(
    path: Path, blockers: Sequence[tuple[object, list[int]]], net: ReluNetwork
) -> None:
    """``nap cover --counterexamples``: the points behind the proofs, and whom each blocks."""
    import numpy as np

    x = np.array([b[0] for b in blockers]).reshape(len(blockers), net.input_dim)
    pairs = [(i, k) for k, (_, inputs) in enumerate(blockers) for i in inputs]
    _save_points(
        path,
        x,
        net,
        input=np.array([i for i, _ in pairs], dtype=int),
        blocker=np.array([k for _, k in pairs], dtype=int),
    )


def _save_points(path: Path, x: ArrayLike, net: ReluNetwork, **extra: ArrayLike) -> None:
    """Points as ``nap cover`` and ``nap bound`` write them: ``x`` (one row each), the class
    the network gives each (``predicted``), and ``extra`` arrays."""
    import numpy as np

    xa = np.asarray(x, dtype=np.float64).reshape(-1, net.input_dim)
    predicted = net.forward(xa).argmax(axis=1) if len(xa) else np.zeros(0, int)
    # numpy's stub types **kwds against its allow_pickle keyword as well
    np.savez(path, x=xa, predicted=predicted, **extra)  # type: ignore[arg-type]


def _verifier(backend: str) -> Verifier:
    """The backend's verifier with NAP learning's options (:data:`MILP_DEFAULTS` for milp)."""
    from relucid.spec.coarsen import MILP_DEFAULTS
    from relucid.verify import get_verifier

    return get_verifier(backend, **(MILP_DEFAULTS if backend == "milp" else {}))
