"""``relucid nap``: learn, check and tabulate NAP specifications."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from relucid.cli.common import (
    BackendOpt,
    JsonOpt,
    ThreadsOpt,
    TimeoutOpt,
    console,
    err_console,
    fail,
    verdict_out,
)
from relucid.domain import Box
from relucid.errors import InputError, RelucidError
from relucid.network import ReluNetwork
from relucid.spec.coarsen import BLOCK_PATIENCE
from relucid.threads import limit_threads

nap_app = typer.Typer(
    help="Learn and check neural activation pattern (NAP) specifications.", no_args_is_help=True
)


def nap_model(model: str) -> ReluNetwork:
    """The network a ``relucid nap`` command names: a file, or 'wbc' (trained, seeded)."""
    if model == "wbc":
        from relucid.datasets import wbc_network

        with err_console.status("training the seeded WBC 4x32 network..."):
            return wbc_network(random_state=0)[0]
    from relucid.io import load_network

    return load_network(Path(model))


def learn_domain(net: ReluNetwork, text: str | None, data: str, has_start: bool) -> Box | None:
    """The box ``nap learn`` proves its spec on: ``--domain``, else the model's stored one,
    else [0, 1] per pixel for ``--data mnist``; None with ``--start`` (the start's domain)."""
    if has_start:
        if text is not None:
            raise InputError("--domain is not used with --start: the spec keeps its start's domain")
        return None
    if text is not None:
        return Box.parse(text, net.input_dim)
    if net.domain is not None:
        return net.domain
    if data == "mnist":
        return Box(np.zeros(net.input_dim), np.ones(net.input_dim))
    raise InputError(
        "the model stores no input domain: give --domain lo:hi (e.g. 0:1 for inputs in [0, 1])"
    )


#: Options of the commands that read a saved spec (check, cover, bound).
SpecModelOpt = Annotated[str, typer.Option("--model", help="Network file, or 'wbc'.")]
SpecFileOpt = Annotated[Path, typer.Option("--spec", help="A spec written by `relucid nap learn`.")]
ClassDataOpt = Annotated[
    str, typer.Option("--data", help="wbc, mnist or .npz: the class's training inputs.")
]


@nap_app.command("learn")
def nap_learn_cmd(
    model: Annotated[
        str, typer.Option(help="Network file, or 'wbc' for the seeded WBC 4x32 network.")
    ],
    data: Annotated[str, typer.Option(help="wbc, mnist, or a .npz with x, y (x_test, y_test).")],
    label: Annotated[int, typer.Option(help="The class c to specify.")],
    out: Annotated[Path, typer.Option(help="Where to write the learned spec (JSON).")],
    method: Annotated[
        str, typer.Option(help="coarsen (Algorithm 2), group, stochastic or optadvprune.")
    ] = "coarsen",
    delta: Annotated[float, typer.Option(help="Refined-NAP threshold.")] = 0.95,
    timeout: Annotated[float, typer.Option(help="Seconds per verifier call.")] = 300.0,
    start_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds for the first call, the refined NAP's (default: --timeout)."),
    ] = None,
    focus_timeout: Annotated[
        float | None,
        typer.Option(
            help="coarsen and group: seconds per call for freeing a neuron that fewer than "
            "--focus-agreement of the class's inputs agree with (keeping one costs coverage)."
        ),
    ] = None,
    focus_agreement: Annotated[
        float, typer.Option(help="Agreement below which --focus-timeout applies.")
    ] = 0.99,
    retry_timeout: Annotated[
        float | None,
        typer.Option(
            help="coarsen and group: afterwards, ask once more with this many seconds to free "
            "each neuron still fixed (only the --focus-timeout ones when given), the one that "
            "would cover the most inputs first."
        ),
    ] = None,
    block_timeout: Annotated[
        float | None,
        typer.Option(
            help="group only: seconds per call for a block of two or more neurons (default: "
            "--timeout). A failed block only splits, so a short limit keeps the minimality."
        ),
    ] = None,
    block_patience: Annotated[
        int,
        typer.Option(
            help="group only: after this many UNKNOWN blocks in a row, an UNKNOWN block goes "
            "straight to its singletons instead of halving (0: from the first; -1: always "
            "halve). The minimality is the same."
        ),
    ] = BLOCK_PATIENCE,
    crown_share: Annotated[
        float | None,
        typer.Option(
            help="milp backend: the most of each call's limit its optimised bounds may take "
            "(0-1; the warm LP and the MILP keep the rest). Default: no cap."
        ),
    ] = None,
    crown_fail_share: Annotated[
        float | None,
        typer.Option(
            help="milp backend: the same share for a call that follows one whose optimised "
            "bounds left terms open (default 0.3; 1: no cap)."
        ),
    ] = None,
    implied: Annotated[
        bool,
        typer.Option(
            help="Afterwards free every neuron whose state the rest of the NAP implies (its "
            "flipped region empty by bounds): same region, smaller |P|."
        ),
    ] = True,
    labels: Annotated[
        str, typer.Option(help="Mine from the dataset's labels or the model's predictions.")
    ] = "dataset",
    order: Annotated[
        str,
        typer.Option(
            help="Neurons tried: agreement (the ones the data agrees with least first, so the "
            "NAP keeps the best-covering ones), index (the paper's), or random."
        ),
    ] = "agreement",
    backend: BackendOpt = "milp",
    checkpoint: Annotated[
        Path | None, typer.Option(help="Resumable run: verdicts saved after every call.")
    ] = None,
    start: Annotated[
        Path | None,
        typer.Option(
            help="Coarsen this spec (e.g. one grown by `relucid nap cover --out`) instead of "
            "the refined NAP; --delta is then unused."
        ),
    ] = None,
    domain: Annotated[
        str | None,
        typer.Option(
            help="Input box the spec is proved on: lo:hi for every input, or lo1:hi1,lo2:hi2,... "
            "(default: the model's stored domain; with --data mnist, 0:1, the pixel range)."
        ),
    ] = None,
    executor: Annotated[
        str,
        typer.Option(help="Where independent verifier calls run together: serial, process or ray."),
    ] = "serial",
    workers: Annotated[
        int | None, typer.Option(help="Processes or Ray actors (default: the CPU count).")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="A running Ray cluster (default: a local instance).")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="Also draw the NAP by layer and the run's verdicts to this PNG."),
    ] = None,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mine the refined NAP of class c, then coarsen it to a minimal specification."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from relucid.spec import NapLearner, NapSpec
    from relucid.spec.coarsen import given_options
    from relucid.spec.data import nap_data

    try:
        if threads is not None:
            limit_threads(threads)
        net = nap_model(model)
        ds = nap_data(data)
        box = learn_domain(net, domain, data, start is not None)
        if labels not in ("dataset", "model"):
            raise fail("--labels is dataset or model")
        if order not in ("agreement", "index", "random"):
            raise fail("--order is agreement, index or random")
        y = ds.y_train if labels == "dataset" else net.forward(ds.X_train).argmax(1)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed} calls, |P| = {task.fields[size]}, {task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=as_json,
        ) as bar:
            task = bar.add_task(f"{method} class {label}", total=None, size="?", rate="")

            def on_call(calls: int, size: int, status: object) -> None:
                t = bar.tasks[task].elapsed or 1e-9
                if calls == 1 and method == "coarsen" and retry_timeout is None:
                    # COARSEN asks once per fixed neuron after the start: a known total,
                    # hence an ETA (the other methods' call counts are not known ahead)
                    bar.update(task, total=size + 1)
                bar.update(task, completed=calls, size=size, rate=f"{calls / t:.1f} calls/s")

            learner = NapLearner(
                method,  # type: ignore[arg-type]
                delta=delta,
                timeout=timeout,
                start_timeout=timeout if start_timeout is None else start_timeout,
                focus_timeout=focus_timeout,
                focus_agreement=focus_agreement,
                retry_timeout=retry_timeout,
                implied=implied,
                block_timeout="same" if block_timeout is None else block_timeout,
                block_patience=None if block_patience < 0 else block_patience,
                backend=backend,
                verifier_options=given_options(
                    crown_share=crown_share, crown_fail_share=crown_fail_share
                ),
                order=order,  # type: ignore[arg-type]
                checkpoint=checkpoint,
                on_call=on_call,
                executor=executor,
                workers=workers,
                ray_address=ray_address,
            ).fit(
                net,
                ds.X_train,
                y,
                label,
                domain=box,
                label_source=labels,
                start=None if start is None else NapSpec.load(start),
            )
    except RelucidError as exc:
        raise fail(str(exc)) from exc
    spec = learner.spec_
    cov = {
        "train_coverage": spec.coverage(net, ds.X_train[y == label]),
        "test_coverage": spec.coverage(net, ds.X_test[ds.y_test == label]),
    }
    spec = spec.with_nap(spec.nap, info={**spec.info, **cov, "data": ds.description})
    spec.save(out)
    if plot is not None:
        from relucid.spec import plot_nap

        plot_nap(spec, plot)
    if as_json:
        sys.stdout.write(json.dumps(spec.to_dict(), indent=2) + "\n")
        return
    console.print(str(spec), markup=False)
    console.print(
        f"refined |P| = {learner.refined_.size} -> {spec.size}"
        + (
            f" ({spec.info['implied_freed']} of them implied by the rest)"
            if spec.info.get("implied_freed")
            else ""
        )
        + f"; verifier calls "
        f"{spec.info['verifier_calls']} {spec.info['verdicts']}; train coverage "
        f"{cov['train_coverage']:.2%}, test coverage {cov['test_coverage']:.2%}; "
        f"{learner.seconds_:.1f} s; written to {out}" + (f" (picture: {plot})" if plot else ""),
        markup=False,
    )


@nap_app.command("check")
def nap_check_cmd(
    model: SpecModelOpt,
    spec: SpecFileOpt,
    data: Annotated[
        str | None, typer.Option(help="wbc, mnist or .npz: also report coverage.")
    ] = None,
    timeout: TimeoutOpt = 300.0,
    backend: BackendOpt = "milp",
    as_json: JsonOpt = False,
) -> None:
    """Re-verify a saved spec against its network (exit 0 only when VERIFIED). A spec whose
    run freed implied neurons is checked by its certificate: those steps replayed with fresh
    bounds, then the NAP the run's verifier proved verified again."""
    from relucid.spec import NapSpec
    from relucid.spec.data import nap_data
    from relucid.spec.implied import verify_spec
    from relucid.verify import get_verifier

    try:
        net = nap_model(model)
        s = NapSpec.load(spec)
        s.check(net)
        ds = nap_data(data) if data is not None else None
        # the data's class inputs that obey the NAP witness that it is not empty
        members = None if ds is None else ds.X_train[ds.y_train == s.label]
        res = verify_spec(net, s, get_verifier(backend), timeout, members)
        payload: dict[str, object] = {"spec": str(spec), "size": s.size, **res.to_dict()}
        if ds is not None:
            payload["train_coverage"] = s.coverage(net, ds.X_train[ds.y_train == s.label])
            payload["test_coverage"] = s.coverage(net, ds.X_test[ds.y_test == s.label])
    except RelucidError as exc:
        raise fail(str(exc)) from exc
    text = f"{s}\n{res}"
    if data is not None:
        text += (
            f"\ntrain coverage {payload['train_coverage']:.2%}, "
            f"test coverage {payload['test_coverage']:.2%}"
        )
    verdict_out(payload, text, as_json, res.status.value == "verified")


@nap_app.command("plot")
def nap_plot_cmd(
    spec: Annotated[Path, typer.Argument(help="A spec written by `relucid nap learn`.")],
    out: Annotated[Path, typer.Option(help="The PNG to write.")],
    model: Annotated[
        str | None,
        typer.Option(help="The spec's network, to lay the neurons out by layer (older specs)."),
    ] = None,
) -> None:
    """Draw a spec: its NAP by layer (freed neurons marked) and, when it keeps one, its
    run's verdicts (|P| asked, status, time limit, verifier time)."""
    from relucid.spec import NapSpec, plot_nap

    try:
        s = NapSpec.load(spec)
        sizes = None
        if model is not None:
            net = nap_model(model)
            s.check(net)
            sizes = net.hidden_sizes
        path = plot_nap(s, out, hidden_sizes=sizes)
    except RelucidError as exc:
        raise fail(str(exc)) from exc
    console.print(f"{s}; picture written to {path}", markup=False)


def _limits(info: Mapping[str, object]) -> str:
    """A learned spec's time limits per verifier call (``1; focus 15; retry 60``), "-" for
    a refined NAP."""
    parts = [] if info.get("timeout") is None else [f"{info['timeout']:g}"]
    for name in ("focus", "block", "retry"):
        if isinstance(limit := info.get(f"{name}_timeout"), int | float):
            parts.append(f"{name} {limit:g}")
    return "; ".join(parts) or "-"


@nap_app.command("table")
def nap_table_cmd(
    specs: Annotated[list[Path], typer.Argument(help="Spec files written by `nap learn`.")],
    as_json: JsonOpt = False,
) -> None:
    """The paper's table layout (|P|, calls, train / test coverage, time) from saved specs."""
    from rich.table import Table

    from relucid.spec import NapSpec

    rows = []
    try:
        for path in specs:
            s = NapSpec.load(path)
            info = s.info
            rows.append(
                {
                    "file": path.name,
                    "label": s.label,
                    "method": s.method,
                    "size": s.size,
                    "start_size": info.get("start_size"),
                    "implied_freed": info.get("implied_freed"),
                    "verifier_calls": info.get("verifier_calls"),
                    "train_coverage": info.get("train_coverage"),
                    "test_coverage": info.get("test_coverage"),
                    "seconds": info.get("seconds"),
                    "limits": _limits(info),
                }
            )
    except RelucidError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title="NAP specifications")
    table.add_column("file", overflow="fold")
    for col in ("label", "method", "limits (s)", "|P|", "calls", "train %", "test %", "time (s)"):
        # a narrow terminal wraps the cells at spaces; |P|'s "(from N; M implied)" stays whole
        table.add_column(col, justify="right", min_width=9 if col == "|P|" else None)

    def pct(v: object) -> str:
        return "-" if not isinstance(v, int | float) else f"{100 * v:.2f}"

    for r in sorted(rows, key=lambda r: (r["label"], str(r["method"]))):
        size = str(r["size"])
        if r["start_size"] is not None:
            implied = f"; {r['implied_freed']} implied" if r["implied_freed"] else ""
            size += f" (from {r['start_size']}{implied})"
        table.add_row(
            str(r["file"]),
            str(r["label"]),
            str(r["method"]),
            str(r["limits"]),
            size,
            "-" if r["verifier_calls"] is None else str(r["verifier_calls"]),
            pct(r["train_coverage"]),
            pct(r["test_coverage"]),
            "-" if r["seconds"] is None else f"{r['seconds']:.1f}",
        )
    console.print(table)
