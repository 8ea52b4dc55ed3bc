"""The guard step of ``relucid demo``: two clinical rules enforced on the WBC network.

Built-in data only (scikit-learn's Wisconsin breast cancer set). The rules agree with every
labelled sample; the network is checked on the test split and on inputs drawn uniformly from
each rule's box within the range of the data (off-distribution inputs, where networks break
rules).
"""

from __future__ import annotations

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from relucid.datasets import Split
from relucid.enforce.constraints import ConstraintSet, InputBox
from relucid.enforce.guard import GuardReport, evaluate_guard, guard
from relucid.enforce.parse import parse_constraints
from relucid.network import ReluNetwork

WBC_RULES = """
constraint large_tumour:
    if box("worst radius": [23.0, inf])
    then is_max(malignant)

constraint small_and_smooth:
    if box("worst radius": [-inf, 12.0], "worst concave points": [-inf, 0.08])
    then is_max(benign)
"""


def wbc_constraints(feature_names: tuple[str, ...]) -> ConstraintSet:
    """The two WBC rules, parsed from the text format with the data's feature names."""
    quoted = ", ".join('"' + n + '"' for n in feature_names)
    header = f"features: {quoted}\nclasses: malignant, benign\n"
    return parse_constraints(header + WBC_RULES, "<wbc rules>")


def _box_samples(cs: ConstraintSet, lo: np.ndarray, hi: np.ndarray, per: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    out = []
    for c in cs:
        assert isinstance(c.pre, InputBox)
        a, b = lo.copy(), hi.copy()
        for f, u, v in c.pre.bounds:
            a[f], b[f] = max(a[f], u), min(b[f], v)
        out.append(a + (b - a) * rng.random((per, lo.size)))
    return np.concatenate(out)


def run_guard_demo(console: Console, net: ReluNetwork, split: Split) -> list[GuardReport]:
    """Guard ``net`` with the WBC rules; print the rules and the effect; return the reports."""
    cs = wbc_constraints(split.feature_names)
    console.print("[bold]Safe-ordering rules[/] (relucid's constraint format):")
    console.print(
        "\n".join(
            line for line in cs.to_text().splitlines() if not line.startswith("features")
        ).replace("[", r"\["),
    )
    guarded = guard(net, cs)
    dom = split.domain()
    X_box = _box_samples(cs, np.asarray(dom.lo), np.asarray(dom.hi), 500)
    reports = [
        evaluate_guard(guarded, torch.tensor(split.X_test, dtype=torch.float32), split.y_test),
        evaluate_guard(guarded, torch.tensor(X_box, dtype=torch.float32)),
    ]
    table = Table(title="Guarded WBC network: rule violations before -> after")
    for col in ("inputs", "rows", "in a rule's box", "violating", "bottom", "accuracy"):
        table.add_column(col, justify="right")
    for name, r in zip(("test split", "sampled in the rule boxes"), reports, strict=True):
        acc = (
            "-"
            if r.accuracy_before is None
            else f"{r.accuracy_before:.3f} -> {r.accuracy_after:.3f}"
        )
        table.add_row(
            name,
            str(r.rows),
            str(r.active_rows),
            f"{r.violating_before} -> {r.violating_after}",
            str(r.bottoms),
            acc,
        )
    console.print(table)
    return reports
