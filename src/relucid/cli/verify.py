"""``relucid verify``: VNN-LIB properties and NAP queries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from relucid.cli.common import (
    BackendOpt,
    JsonOpt,
    TimeoutOpt,
    console,
    err_console,
    fail,
    verdict_out,
)
from relucid.domain import Box
from relucid.errors import RelucidError

verify_app = typer.Typer(
    help="Prove or refute properties: VNN-LIB files (`relucid verify --model M --property P`) "
    "and NAP specifications (`relucid verify nap ...`).",
)


@verify_app.callback(invoke_without_command=True)
def verify_property_cmd(
    ctx: typer.Context,
    model: Annotated[
        Path | None, typer.Option(help="Network file: .onnx, .nnet, or a torch state dict.")
    ] = None,
    prop: Annotated[
        Path | None, typer.Option("--property", help="A VNN-LIB 1.0 property file.")
    ] = None,
    timeout: TimeoutOpt = 300.0,
    backend: BackendOpt = "milp",
    as_json: JsonOpt = False,
) -> None:
    """Decide a VNN-LIB property: prints holds / violated (with a checked counterexample) /
    unknown. Exit code 0 when it holds, 1 otherwise, 2 on bad input."""
    if ctx.invoked_subcommand is not None:
        return
    if model is None or prop is None:
        console.print(ctx.get_help())
        raise fail("give --model and --property (or a subcommand, e.g. `verify nap`)")
    from relucid.io import load_network
    from relucid.verify import get_verifier, load_vnnlib

    try:
        net = load_network(model)
        vnn = load_vnnlib(prop)
        verifier = get_verifier(backend)
        with err_console.status(f"verifying {prop.name} on {model.name} ({backend})..."):
            res = verifier.verify_property(net, vnn, timeout)
    except RelucidError as exc:
        raise fail(str(exc)) from exc
    payload = {"model": str(model), "property": str(prop), **res.to_dict()}
    text = f"{res.status.vnn_word}\n{res}"
    verdict_out(payload, text, as_json, res.status.vnn_word == "holds")


@verify_app.command("nap")
def verify_nap_cmd(
    model: Annotated[Path, typer.Option(help="Network file: .onnx, .nnet, or a torch state dict.")],
    nap: Annotated[
        Path,
        typer.Option(
            help="JSON: a list of 1/0/-1 per hidden neuron, or an object with 'nap' (and "
            "optionally 'label', 'box', 'A', 'b', 'margin')."
        ),
    ],
    label: Annotated[
        int | None, typer.Option("--class", help="The class c (default: the file's 'label').")
    ] = None,
    domain: Annotated[
        str | None,
        typer.Option(
            help="Input box: 'model' (the model's stored domain), or lo,hi per feature "
            "('0:1,0:1' or a single 'lo:hi' for all). Default: the file's box, else 'model'."
        ),
    ] = None,
    margin: Annotated[float, typer.Option(help="y_c must beat every other logit by this.")] = 0.0,
    allow_ties: Annotated[bool, typer.Option(help="A tie at the margin is no violation.")] = False,
    timeout: TimeoutOpt = 300.0,
    backend: BackendOpt = "milp",
    as_json: JsonOpt = False,
) -> None:
    """Is every input of the domain that obeys the NAP classified c? Prints VERIFIED /
    FALSIFIED (with a checked counterexample) / EMPTY / UNKNOWN. Exit code 0 only when
    VERIFIED."""
    from relucid.io import load_network
    from relucid.verify import NapQuery, get_verifier

    try:
        net = load_network(model)
        try:
            spec = json.loads(nap.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise fail(f"cannot read the NAP file {nap}: {exc}") from exc
        if isinstance(spec, list):
            spec = {"nap": spec}
        if not isinstance(spec, dict) or "nap" not in spec:
            raise fail(f"{nap}: expected a list or an object with a 'nap' entry")
        c = label if label is not None else spec.get("label")
        if c is None:
            raise fail("give --class (the NAP file names no 'label')")
        if domain is not None and domain != "model":
            box = Box.parse(domain, net.input_dim)
        elif domain is None and "box" in spec:
            box = Box(spec["box"]["lo"], spec["box"]["hi"])
        elif net.domain is not None:
            box = net.domain
        else:
            raise fail("the model stores no input domain: give --domain")
        query = NapQuery(
            spec["nap"],
            int(c),
            box,
            spec.get("A") or None,
            spec.get("b") or None,
            margin=margin if margin else float(spec.get("margin", 0.0)),
            allow_ties=allow_ties,
        )
        verifier = get_verifier(backend)
        with err_console.status(f"verifying a NAP with |P| = {query.num_fixed} ({backend})..."):
            res = verifier.verify_nap(net, query, timeout)
    except RelucidError as exc:
        raise fail(str(exc)) from exc
    payload = {"model": str(model), "nap_file": str(nap), "label": query.label, **res.to_dict()}
    text = f"|P| = {query.num_fixed} of {net.num_hidden} neurons, class {query.label}\n{res}"
    verdict_out(payload, text, as_json, res.status.value == "verified")
