"""``relucid demo``: the main job end to end on built-in data (no files needed)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from relucid.datasets import wbc_network
from relucid.explain import Explainer


def run_demo(console: Console, n_explain: int = 3, out: Path | None = None) -> None:
    """Train the WBC 4x32 network with a fixed seed and explain ``n_explain`` test inputs."""
    t0 = time.perf_counter()
    with console.status("Training the WBC network (30-32-32-32-32-2, seed 0)..."):
        net, split = wbc_network(random_state=0)
    acc_train = float((net.predict(split.X_train) == split.y_train).mean())
    acc_test = float((net.predict(split.X_test) == split.y_test).mean())
    console.print(
        f"[bold]{net!r}[/] trained in {time.perf_counter() - t0:.1f} s: "
        f"train accuracy {acc_train:.3f}, test accuracy {acc_test:.3f} "
        f"({len(split.y_train)} / {len(split.y_test)} samples, stratified, seed 0)"
    )
    explainer = Explainer(net)  # domain: the range of the data, stated by the network
    table = Table(title="Why? exact decision regions of test inputs")
    for col in ("test input", "label", "predicted", "rows kept / total", "LPs", "ms"):
        table.add_column(col, justify="right")
    records = []
    for i in range(min(n_explain, len(split.y_test))):
        expl = explainer.why(split.X_test[i])
        console.rule(f"test input {i}: label {split.class_names[split.y_test[i]]!r}")
        console.print(
            expl.to_text(max_terms=4, max_box_lines=8, max_rows=10), highlight=False, markup=False
        )
        centre = expl.centre[None, :]
        check = bool(expl.contains(centre)[0]) and net.predict(centre)[0] == expl.predicted
        console.print(
            f"check: the region's centre lies in it and is classified {expl.predicted_name!r}: "
            f"{'yes' if check else 'NO'}"
        )
        table.add_row(
            str(i),
            split.class_names[split.y_test[i]],
            expl.predicted_name,
            f"{expl.num_rows} / {expl.rows_before}",
            str(expl.stats.lps),
            f"{expl.seconds * 1e3:.0f}",
        )
        records.append(expl.to_dict())
    console.print(table)
    from relucid.explain.demo import run_why_not_demo

    run_why_not_demo(console, net, split, None if out is None else out.parent)
    from relucid.enforce.demo import run_guard_demo

    run_guard_demo(console, net, split)
    from relucid.spec.demo import run_nap_demo

    run_nap_demo(console, net, split)
    if out is not None:
        out.write_text(json.dumps(records, indent=2))
        console.print(f"explanations written to {out}")
    console.print(f"demo finished in {time.perf_counter() - t0:.1f} s")
