"""``relucid guard``: check and export safe-ordering constraints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from relucid.cli.common import (
    ModelOpt,
    console,
    err_console,
    fail,
    report_out,
)
from relucid.errors import RelucidError

guard_app = typer.Typer(
    help="Enforce safe-ordering constraints on a classifier's outputs.", no_args_is_help=True
)

ConstraintsOpt = Annotated[
    Path, typer.Option(help="Safe-ordering constraints in relucid's text format.")
]
ArgminOpt = Annotated[
    bool,
    typer.Option(
        help="The smallest output is the decision (ACAS Xu); constraints then speak of the "
        "negated outputs, as in the paper."
    ),
]


@guard_app.command("check")
def guard_check_cmd(
    model: ModelOpt,
    constraints: ConstraintsOpt,
    data: Annotated[
        Path, typer.Option(help="Inputs: .npz with 'x' (and labels 'y'), or .npy of inputs.")
    ],
    argmin: ArgminOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Violations, bottoms and accuracy of MODEL on DATA, before and after the safety layer."""
    from relucid.enforce import guard_check

    try:
        with err_console.status("running the model with and without its safety layer..."):
            report = guard_check(
                model, constraints, data, decision="argmin" if argmin else "argmax"
            )
    except RelucidError as exc:
        raise fail(str(exc)) from exc
    report_out(report.to_dict(), report.to_text(), as_json)


@guard_app.command("export")
def guard_export_cmd(
    model: ModelOpt,
    constraints: ConstraintsOpt,
    out: Annotated[Path, typer.Option(help="Where to write the guarded model (.onnx).")],
    argmin: ArgminOpt = False,
    data: Annotated[
        Path | None, typer.Option(help="Inputs to check the export on (default: sampled).")
    ] = None,
    check_inputs: Annotated[
        int, typer.Option(help="How many inputs the ONNX graph is checked on against torch.")
    ] = 1000,
) -> None:
    """Write MODEL followed by its safety layer as ONNX, checked against torch."""
    from relucid.enforce import guard_export

    try:
        with err_console.status("exporting to ONNX and checking it against torch..."):
            check = guard_export(
                model,
                constraints,
                out,
                decision="argmin" if argmin else "argmax",
                data_path=data,
                check_inputs=check_inputs,
            )
    except RelucidError as exc:
        raise fail(str(exc)) from exc
    console.print(check.to_text(), markup=False, highlight=False)
    if not check.ok:
        raise typer.Exit(code=1)
