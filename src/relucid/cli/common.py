"""What every ``relucid`` command shares: consoles, errors, parsing of numbers, models and
domains, and the verdict printer."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console

from relucid.domain import Box
from relucid.network import ReluNetwork

console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    # one line, never wrapped: "file:line:col" locations must stay whole for editors and tests
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code=2)


def parse_floats(text: str, what: str) -> np.ndarray:
    """Comma-separated numbers, or ``@FILE``: a ``.npy`` array or text of numbers separated by
    commas, spaces or newlines (e.g. the 784 pixels of an MNIST image)."""
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise fail(f"{what} file {path} not found")
        if path.suffix == ".npy":
            return np.asarray(np.load(path, allow_pickle=False), dtype=np.float64).reshape(-1)
        text = path.read_text().replace("\n", ",").replace(" ", ",")
    try:
        return np.array([float(v) for v in text.replace(" ", "").split(",") if v != ""])
    except ValueError as exc:
        raise fail(f"cannot read {what} {text[:80]!r}: {exc}") from exc


def load_model(model: Path, feature_names: str | None, class_names: str | None) -> ReluNetwork:
    from relucid.io import load_network

    net = load_network(model)
    changes: dict[str, object] = {}
    if feature_names:
        changes["input_names"] = [s.strip() for s in feature_names.split(",")]
    if class_names:
        changes["output_names"] = [s.strip() for s in class_names.split(",")]
    return net.replace(**changes) if changes else net


def parse_domain(text: str, net: ReluNetwork) -> Box | str | None:
    if text == "model":
        return "model"
    if text == "none":
        return None
    return Box.parse(text, net.input_dim)


BackendOpt = Annotated[
    str, typer.Option(help="Verifier backend: milp (default) or marabou (optional extra).")
]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds per query; UNKNOWN after that.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        help="CPU threads for torch and BLAS in this process (default: theirs). Give 1 when "
        "other jobs share the cores: waiting threads spin and slow every call."
    ),
]


ModelOpt = Annotated[
    Path, typer.Option(help="Network file: .onnx, .nnet, or a torch state dict (.pt).")
]


def report_out(payload: object, text: str, as_json: bool) -> None:
    """The result as JSON on stdout (``--json``) or as readable text."""
    if as_json:
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        console.print(text, markup=False, highlight=False)


def verdict_out(payload: dict[str, object], text: str, as_json: bool, ok: bool) -> None:
    """:func:`report_out`, then exit code 1 unless ``ok``."""
    report_out(payload, text, as_json)
    if not ok:
        raise typer.Exit(code=1)
