"""The ``relucid`` command line: a thin layer over the public API (no algorithm lives here).

One module per command group: :mod:`~relucid.cli.explain`, :mod:`~relucid.cli.guard`,
:mod:`~relucid.cli.verify` and :mod:`~relucid.cli.nap` (with :mod:`~relucid.cli.nap_cover`
for ``nap cover`` and ``nap bound``); :mod:`~relucid.cli.common` holds what they share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from relucid.cli.common import console
from relucid.cli.explain import explain_app
from relucid.cli.guard import guard_app
from relucid.cli.nap import nap_app
from relucid.cli.nap_cover import nap_bound_cmd, nap_cover_cmd  # they join nap_app
from relucid.cli.verify import verify_app

__all__ = ["app", "main", "nap_bound_cmd", "nap_cover_cmd"]

app = typer.Typer(
    help="relucid: explain, specify and enforce ReLU classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(explain_app, name="explain")
app.add_typer(guard_app, name="guard")
app.add_typer(verify_app, name="verify")
app.add_typer(nap_app, name="nap")


@app.command("demo")
def demo(
    n_explain: Annotated[int, typer.Option(help="How many test predictions to explain.")] = 3,
    out: Annotated[
        Path | None, typer.Option(help="Also write the explanations as JSON here.")
    ] = None,
) -> None:
    """Train the paper's WBC network (fixed seed) and explain some test predictions."""
    from relucid.demo import run_demo

    run_demo(console, n_explain=n_explain, out=out)


def main() -> None:  # pragma: no cover - entry point
    app()
