"""The ``relucid`` command line: a thin layer over the public API (no algorithm lives here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console

from relucid.domain import Box
from relucid.errors import RelucidError
from relucid.explain import Explainer, ExplainerConfig
from relucid.network import ReluNetwork

app = typer.Typer(
    help="relucid: explain, specify and enforce ReLU classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
explain_app = typer.Typer(help="Exact explanations of a network's decisions.", no_args_is_help=True)
app.add_typer(explain_app, name="explain")
guard_app = typer.Typer(
    help="Enforce safe-ordering constraints on a classifier's outputs.", no_args_is_help=True
)
app.add_typer(guard_app, name="guard")
verify_app = typer.Typer(
    help="Prove or refute properties: VNN-LIB files (`relucid verify --model M --property P`) "
    "and NAP specifications (`relucid verify nap ...`).",
)
app.add_typer(verify_app, name="verify")
nap_app = typer.Typer(
    help="Learn and check neural activation pattern (NAP) specifications.", no_args_is_help=True
)
app.add_typer(nap_app, name="nap")

console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    # one line, never wrapped: "file:line:col" locations must stay whole for editors and tests
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code=2)


def _parse_floats(text: str, what: str) -> np.ndarray:
    """Comma-separated numbers, or ``@FILE``: a ``.npy`` array or text of numbers separated by
    commas, spaces or newlines (e.g. the 784 pixels of an MNIST image)."""
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise _fail(f"{what} file {path} not found")
        if path.suffix == ".npy":
            return np.asarray(np.load(path, allow_pickle=False), dtype=np.float64).reshape(-1)
        text = path.read_text().replace("\n", ",").replace(" ", ",")
    try:
        return np.array([float(v) for v in text.replace(" ", "").split(",") if v != ""])
    except ValueError as exc:
        raise _fail(f"cannot read {what} {text[:80]!r}: {exc}") from exc


def _load(model: Path, feature_names: str | None, class_names: str | None) -> ReluNetwork:
    from relucid.io import load_network

    net = load_network(model)
    changes: dict[str, object] = {}
    if feature_names:
        changes["input_names"] = [s.strip() for s in feature_names.split(",")]
    if class_names:
        changes["output_names"] = [s.strip() for s in class_names.split(",")]
    return net.replace(**changes) if changes else net


def _domain(text: str, net: ReluNetwork) -> Box | str | None:
    if text == "model":
        return "model"
    if text == "none":
        return None
    return Box.parse(text, net.input_dim)


@explain_app.command("why")
def explain_why(
    model: Annotated[
        Path, typer.Option(help="Network file: .onnx, .nnet, or a torch state dict (.pt).")
    ],
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
        net = _load(model, feature_names, class_names)
        x = _parse_floats(input, "input")
        cfg = ExplainerConfig(decision="argmin" if argmin else "argmax")
        explainer = Explainer(net, domain=_domain(domain, net), config=cfg)  # type: ignore[arg-type]
        with err_console.status(f"explaining: region of {net!r} and its irredundant rows..."):
            expl = explainer.why(x)
    except RelucidError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        sys.stdout.write(json.dumps(expl.to_dict(), indent=2) + "\n")
    else:
        console.print(expl.to_text(max_terms=max_terms), highlight=False, markup=False)


def _why_not_setup(
    model: Path, domain: str, argmin: bool, feature_names: str | None, class_names: str | None
) -> tuple[ReluNetwork, object]:
    from relucid.explain.whynot import WhyNotExplainer

    net = _load(model, feature_names, class_names)
    dom = _domain(domain, net)
    if dom is None:
        raise _fail("why-not needs a bounded domain: give --domain")
    return net, WhyNotExplainer(net, dom, decision="argmin" if argmin else "argmax")  # type: ignore[arg-type]


@explain_app.command("why-not")
def explain_why_not(
    model: Annotated[
        Path, typer.Option(help="Network file: .onnx, .nnet, or a torch state dict (.pt).")
    ],
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
        x = _parse_floats(input, "input")
        with err_console.status(f"why not class {target}? ({strategy})"):
            res = ex.why_not(x, target, strategy, objective=objective, timeout=timeout)  # type: ignore[attr-defined]
    except RelucidError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        sys.stdout.write(json.dumps(res.to_dict(), indent=2) + "\n")
    else:
        console.print(res.to_text(), highlight=False, markup=False)


@explain_app.command("plot")
def explain_plot(
    model: Annotated[
        Path, typer.Option(help="Network file: .onnx, .nnet, or a torch state dict (.pt).")
    ],
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
        x = _parse_floats(input, "input")
        try:
            fi, fj = (int(v) for v in features.split(","))
        except ValueError as exc:
            raise _fail(f"--features takes two indices 'i,j', got {features!r}") from exc
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
        raise _fail(str(exc)) from exc
    console.print(f"wrote {path}" + (f" ({expl.outcome})" if expl is not None else ""))


ModelOpt = Annotated[
    Path, typer.Option(help="Network file: .onnx, .nnet, or a torch state dict (.pt).")
]
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
        raise _fail(str(exc)) from exc
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        console.print(report.to_text(), markup=False, highlight=False)


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
        raise _fail(str(exc)) from exc
    console.print(check.to_text(), markup=False, highlight=False)
    if not check.ok:
        raise typer.Exit(code=1)


# -- verify ----------------------------------------------------------------------------------
BackendOpt = Annotated[
    str, typer.Option(help="Verifier backend: milp (default) or marabou (optional extra).")
]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds per query; UNKNOWN after that.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")]


def _verdict_out(payload: dict[str, object], text: str, as_json: bool, ok: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        console.print(text, markup=False, highlight=False)
    if not ok:
        raise typer.Exit(code=1)


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
        raise _fail("give --model and --property (or a subcommand, e.g. `verify nap`)")
    from relucid.io import load_network
    from relucid.verify import get_verifier, load_vnnlib

    try:
        net = load_network(model)
        vnn = load_vnnlib(prop)
        verifier = get_verifier(backend)
        with err_console.status(f"verifying {prop.name} on {model.name} ({backend})..."):
            res = verifier.verify_property(net, vnn, timeout)
    except RelucidError as exc:
        raise _fail(str(exc)) from exc
    payload = {"model": str(model), "property": str(prop), **res.to_dict()}
    text = f"{res.status.vnn_word}\n{res}"
    _verdict_out(payload, text, as_json, res.status.vnn_word == "holds")


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
            raise _fail(f"cannot read the NAP file {nap}: {exc}") from exc
        if isinstance(spec, list):
            spec = {"nap": spec}
        if not isinstance(spec, dict) or "nap" not in spec:
            raise _fail(f"{nap}: expected a list or an object with a 'nap' entry")
        c = label if label is not None else spec.get("label")
        if c is None:
            raise _fail("give --class (the NAP file names no 'label')")
        if domain is not None and domain != "model":
            box = Box.parse(domain, net.input_dim)
        elif domain is None and "box" in spec:
            box = Box(spec["box"]["lo"], spec["box"]["hi"])
        elif net.domain is not None:
            box = net.domain
        else:
            raise _fail("the model stores no input domain: give --domain")
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
        raise _fail(str(exc)) from exc
    payload = {"model": str(model), "nap_file": str(nap), "label": query.label, **res.to_dict()}
    text = f"|P| = {query.num_fixed} of {net.num_hidden} neurons, class {query.label}\n{res}"
    _verdict_out(payload, text, as_json, res.status.value == "verified")


# -- nap -------------------------------------------------------------------------------------
def _nap_model(model: str) -> ReluNetwork:
    if model == "wbc":
        from relucid.datasets import wbc_network

        with err_console.status("training the seeded WBC 4x32 network..."):
            return wbc_network(random_state=0)[0]
    from relucid.io import load_network

    return load_network(Path(model))


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

    from relucid.spec import NapLearner
    from relucid.spec.data import nap_data

    try:
        net = _nap_model(model)
        ds = nap_data(data)
        if labels not in ("dataset", "model"):
            raise _fail("--labels is dataset or model")
        if order not in ("agreement", "index", "random"):
            raise _fail("--order is agreement, index or random")
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
                if calls == 1 and method == "coarsen":
                    # COARSEN asks once per fixed neuron after the start: a known total,
                    # hence an ETA (the other methods' call counts are not known ahead)
                    bar.update(task, total=size + 1)
                bar.update(task, completed=calls, size=size, rate=f"{calls / t:.1f} calls/s")

            learner = NapLearner(
                method,  # type: ignore[arg-type]
                delta=delta,
                timeout=timeout,
                backend=backend,
                order=order,  # type: ignore[arg-type]
                checkpoint=checkpoint,
                on_call=on_call,
                executor=executor,
                workers=workers,
                ray_address=ray_address,
            ).fit(net, ds.X_train, y, label, label_source=labels)
    except RelucidError as exc:
        raise _fail(str(exc)) from exc
    spec = learner.spec_
    cov = {
        "train_coverage": spec.coverage(net, ds.X_train[y == label]),
        "test_coverage": spec.coverage(net, ds.X_test[ds.y_test == label]),
    }
    spec = spec.with_nap(spec.nap, info={**spec.info, **cov, "data": ds.description})
    spec.save(out)
    if as_json:
        sys.stdout.write(json.dumps(spec.to_dict(), indent=2) + "\n")
        return
    console.print(str(spec), markup=False)
    console.print(
        f"refined |P| = {learner.refined_.size} -> {spec.size}; verifier calls "
        f"{spec.info['verifier_calls']} {spec.info['verdicts']}; train coverage "
        f"{cov['train_coverage']:.2%}, test coverage {cov['test_coverage']:.2%}; "
        f"{learner.seconds_:.1f} s; written to {out}",
        markup=False,
    )


@nap_app.command("check")
def nap_check_cmd(
    model: Annotated[str, typer.Option(help="Network file, or 'wbc'.")],
    spec: Annotated[Path, typer.Option(help="A spec written by `relucid nap learn`.")],
    data: Annotated[
        str | None, typer.Option(help="wbc, mnist or .npz: also report coverage.")
    ] = None,
    timeout: TimeoutOpt = 300.0,
    backend: BackendOpt = "milp",
    as_json: JsonOpt = False,
) -> None:
    """Re-verify a saved spec against its network (exit 0 only when VERIFIED)."""
    from relucid.spec import NapSpec
    from relucid.spec.data import nap_data
    from relucid.verify import NapQuery, get_verifier

    try:
        net = _nap_model(model)
        s = NapSpec.load(spec)
        s.check(net)
        res = get_verifier(backend).verify_nap(net, NapQuery(s.nap, s.label, s.domain), timeout)
        payload: dict[str, object] = {"spec": str(spec), "size": s.size, **res.to_dict()}
        if data is not None:
            ds = nap_data(data)
            payload["train_coverage"] = s.coverage(net, ds.X_train[ds.y_train == s.label])
            payload["test_coverage"] = s.coverage(net, ds.X_test[ds.y_test == s.label])
    except RelucidError as exc:
        raise _fail(str(exc)) from exc
    text = f"{s}\n{res}"
    if data is not None:
        text += (
            f"\ntrain coverage {payload['train_coverage']:.2%}, "
            f"test coverage {payload['test_coverage']:.2%}"
        )
    _verdict_out(payload, text, as_json, res.status.value == "verified")


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
                    "verifier_calls": info.get("verifier_calls"),
                    "train_coverage": info.get("train_coverage"),
                    "test_coverage": info.get("test_coverage"),
                    "seconds": info.get("seconds"),
                }
            )
    except RelucidError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title="NAP specifications")
    for col in ("file", "label", "method", "|P|", "calls", "train %", "test %", "time (s)"):
        table.add_column(col, justify="right")

    def pct(v: object) -> str:
        return "-" if not isinstance(v, int | float) else f"{100 * v:.2f}"

    for r in sorted(rows, key=lambda r: (r["label"], str(r["method"]))):
        table.add_row(
            str(r["file"]),
            str(r["label"]),
            str(r["method"]),
            f"{r['size']} (from {r['start_size']})",
            str(r["verifier_calls"]),
            pct(r["train_coverage"]),
            pct(r["test_coverage"]),
            str(r["seconds"]),
        )
    console.print(table)


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


if __name__ == "__main__":  # pragma: no cover
    main()
