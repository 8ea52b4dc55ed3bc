"""``relucid explain``: why, why-not and region pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from relucid.cli.common import (
    ModelOpt,
    console,
    err_console,
    fail,
    load_model,
    parse_domain,
    parse_floats,
    report_out,
)
from relucid.errors import RelucidError
from relucid.explain import Explainer, ExplainerConfig
from relucid.network import ReluNetwork

explain_app = typer.Typer(help="Exact explanations of a network's decisions.", no_args_is_help=True)


@explain_app.command("why")
def explain_why(
    model: ModelOpt,
    input: Annotated[
        str,
        typer.Option(
            "--input", help="The input: 'v1,v2,...', or @FILE (.npy, or numbers in text)."
        ),
    ],
    domain: Annotated[
        str,
        typer.Option(
            help="Input box: 'model' (ranges stated by the file), 'none', 'lo:hi' for every "
            "feature, or 'lo1:hi1,lo2:hi2,...'."
        ),
    ] = "model",
    feature_names: Annotated[
        str | None, typer.Option(help="Comma-separated names of the input features.")
    ] = None,
    class_names: Annotated[
        str | None, typer.Option(help="Comma-separated names of the classes.")
    ] = None,
    argmin: Annotated[
        bool, typer.Option(help="The smallest output is the decision (ACAS Xu convention).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
    max_terms: Annotated[int, typer.Option(help="Terms shown per constraint in text.")] = 6,
) -> None:
    """Why does the network give INPUT its class? Prints the exact region of that decision."""
    try:
        net = load_model(model, feature_names, class_names)
        x = parse_floats(input, "input")
        cfg = ExplainerConfig(decision="argmin" if argmin else "argmax")
        explainer = Explainer(net, domain=parse_domain(domain, net), config=cfg)  # type: ignore[arg-type]
        with err_console.status(f"explaining: region of {net!r} and its irredundant rows..."):
            expl = explainer.why(x)
    except RelucidError as exc:
        raise fail(str(exc)) from exc
    report_out(expl.to_dict(), expl.to_text(max_terms=max_terms), as_json)


def _why_not_setup(
    model: Path, domain: str, argmin: bool, feature_names: str | None, class_names: str | None
) -> tuple[ReluNetwork, object]:
    from relucid.explain.whynot import WhyNotExplainer

    net = load_model(model, feature_names, class_names)
    dom = parse_domain(domain, net)
    if dom is None:
        raise fail("why-not needs a bounded domain: give --domain")
    return net, WhyNotExplainer(net, dom, decision="argmin" if argmin else "argmax")  # type: ignore[arg-type]


@explain_app.command("why-not")
def explain_why_not(
    model: ModelOpt,
    input: Annotated[str, typer.Option("--input", help="The input: 'v1,v2,...' or @FILE.")],
    target: Annotated[int, typer.Option(help="The class c' to ask about: why not c'?")],
    strategy: Annotated[
        str, typer.Option(help="milp (nearest region, default), hamming (the paper's) or facet.")
    ] = "milp",
    objective: Annotated[
        str, typer.Option(help="The milp strategy's distance: hamming, l1 or linf.")
    ] = "hamming",
    timeout: Annotated[float, typer.Option(help="Seconds for the whole search.")] = 10.0,
    domain: Annotated[
        str, typer.Option(help="Input box: 'model', 'lo:hi' or 'lo1:hi1,lo2:hi2,...'.")
    ] = "model",
    feature_names: Annotated[str | None, typer.Option(help="Comma-separated names.")] = None,
    class_names: Annotated[str | None, typer.Option(help="Comma-separated names.")] = None,
    argmin: Annotated[
        bool, typer.Option(help="The smallest output is the decision (ACAS Xu convention).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Why is INPUT not of class TARGET? The nearest region where it would be, and why."""
    try:
        _, ex = _why_not_setup(model, domain, argmin, feature_names, class_names)
        x = parse_floats(input, "input")
        with err_console.status(f"why not class {target}? ({strategy})"):
            res = ex.why_not(x, target, strategy, objective=objective, timeout=timeout)  # type: ignore[attr-defined]
    except RelucidError as exc:
        raise fail(str(exc)) from exc
    report_out(res.to_dict(), res.to_text(), as_json)


@explain_app.command("plot")
def explain_plot(
    model: ModelOpt,
    input: Annotated[str, typer.Option("--input", help="The input: 'v1,v2,...' or @FILE.")],
    out: Annotated[Path, typer.Option(help="The PNG to write.")],
    target: Annotated[
        int | None, typer.Option(help="Also draw the why-not answer for this class.")
    ] = None,
    features: Annotated[
        str, typer.Option(help="The two features spanning the slice through x: 'i,j'.")
    ] = "0,1",
    strategy: Annotated[str, typer.Option(help="Why-not strategy (with --target).")] = "milp",
    timeout: Annotated[float, typer.Option(help="Seconds for the why-not search.")] = 10.0,
    domain: Annotated[
        str, typer.Option(help="Input box: 'model', 'lo:hi' or 'lo1:hi1,lo2:hi2,...'.")
    ] = "model",
    argmin: Annotated[
        bool, typer.Option(help="The smallest output is the decision (ACAS Xu convention).")
    ] = False,
) -> None:
    """Draw linear regions, decisions, x and (with --target) the why-not answer to a PNG."""
    from relucid.explain.plot import plot_regions

    try:
        net, ex = _why_not_setup(model, domain, argmin, None, None)
        x = parse_floats(input, "input")
        try:
            fi, fj = (int(v) for v in features.split(","))
        except ValueError as exc:
            raise fail(f"--features takes two indices 'i,j', got {features!r}") from exc
        expl = None
        if target is not None:
            expl = ex.why_not(x, target, strategy, timeout=timeout)  # type: ignore[attr-defined]
        path = plot_regions(
            net,
            x,
            ex.domain,  # type: ignore[attr-defined]
            out,
            features=(fi, fj),
            explanation=expl,
            decision="argmin" if argmin else "argmax",
        )
    except RelucidError as exc:
        raise fail(str(exc)) from exc
    console.print(f"wrote {path}" + (f" ({expl.outcome})" if expl is not None else ""))
