"""The why-not step of ``relucid demo``: why not the other class, and a picture."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from relucid.explain.plot import plot_regions
from relucid.explain.whynot import WhyNotExplainer
from relucid.network import ReluNetwork


def run_why_not_demo(console: Console, net: ReluNetwork, split: Any, out_dir: Path | None) -> None:
    """Ask why test input 0 is not of the other class; draw the slice through it."""
    console.rule("Why not? the nearest region of the other class (test input 0)")
    ex = WhyNotExplainer(net)
    x = split.X_test[0]
    c = int(ex.classify(x)[0])
    res = ex.why_not(x, 1 - c, timeout=5.0)
    console.print(res.to_text(max_flipped=4), highlight=False, markup=False)
    if res.counterfactual is None or res.target_pattern is None:
        return
    cf = res.counterfactual
    ok = int(ex.classify(cf)[0]) == 1 - c and np.array_equal(
        net.patterns(cf)[0], res.target_pattern
    )
    console.print(
        f"check: a forward pass gives the counterfactual class {net.class_name(1 - c)!r} and "
        f"the target pattern: {'yes' if ok else 'NO'}",
        soft_wrap=True,
    )
    # the slice along the two features the counterfactual moves most (in domain units)
    moved = np.abs(cf - x) / np.maximum(ex.domain.hi - ex.domain.lo, 1e-12)
    i, j = (int(k) for k in np.argsort(-moved)[:2])
    folder = out_dir or Path(tempfile.gettempdir()) / "relucid-demo"
    folder.mkdir(parents=True, exist_ok=True)
    path = plot_regions(net, x, ex.domain, folder / "why_not.png", features=(i, j), explanation=res)
    console.print(
        f"picture of the slice through x along features {i} and {j}: {path}", soft_wrap=True
    )
