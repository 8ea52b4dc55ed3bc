"""A picture of a learned NAP and of the run that learned it.

Top: the NAP, one row per hidden layer, one cell per neuron: fixed active, fixed inactive,
freed by the learning (fixed in the most refined NAP it started from), freed by the implied
pass (its state implied by the rest: :mod:`relucid.spec.implied`), free from the start.
Bottom, when the spec keeps its run's trace (``info["trace"]``, written by
:class:`~relucid.spec.NapLearner`): every verdict in the order the run got it, as the ``|P|``
of the NAP asked against the verdict's number, coloured by status, one marker per time limit,
with the smallest VERIFIED ``|P|`` so far as a step line and the verifier time spent on a
second axis. On a COARSEN run with a focus pass and a retry pass the three show as bands of
markers (the focus neurons at their limit, the rest, the retries).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.errors import InputError
from relucid.network import ReluNetwork
from relucid.spec.cover import CoverReport
from relucid.spec.nap import NapSpec
from relucid.spec.verdicts import nap_from_key
from relucid.verify.query import Status

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: cell codes of the NAP map, with their colours and legend entries
_STATES = (
    (1, "#d95f02", "fixed active"),
    (0, "#1b6ca8", "fixed inactive"),
    (2, "#f2d16b", "freed by learning"),
    (3, "#e3e3e3", "free from the start"),
    (4, "#9ecae1", "implied by the rest"),
)
_STATUS_COLOURS = {
    "verified": "#1a9850",
    "falsified": "#d73027",
    "unknown": "#8c8c8c",
    "empty": "#7b3294",
}
_MARKERS = ("o", "s", "^", "D", "v", "P")


def start_nap(spec: NapSpec) -> NDArray[np.int8] | None:
    """The NAP the spec was learned from (its first verdict's, the most refined NAP), or
    None when the spec keeps no such verdict."""
    if not spec.verdicts:
        return None
    key = spec.verdicts[0].get("nap_key")
    if not isinstance(key, str) or len(key) != spec.nap.size:
        return None
    return nap_from_key(key)


def nap_cells(spec: NapSpec, hidden_sizes: Sequence[int]) -> NDArray[np.float64]:
    """The NAP map as an array (layers, widest layer) of the cell codes of ``_STATES``;
    NaN pads the narrower layers."""
    sizes = [int(s) for s in hidden_sizes]
    if sum(sizes) != spec.nap.size or min(sizes, default=0) < 1:
        raise InputError(
            f"hidden layer sizes {sizes} do not add up to the NAP's {spec.nap.size} neurons"
        )
    start = start_nap(spec)
    codes = np.where(spec.nap >= 0, spec.nap, 3).astype(np.float64)
    if start is not None:
        codes[(spec.nap < 0) & (start >= 0)] = 2
    for i, _ in spec.info.get("implied_steps") or ():
        if 0 <= int(i) < codes.size and spec.nap[int(i)] < 0:
            codes[int(i)] = 4
    grid = np.full((len(sizes), max(sizes)), np.nan)
    offset = 0
    for k, width in enumerate(sizes):
        grid[k, :width] = codes[offset : offset + width]
        offset += width
    return grid


def plot_nap(spec: NapSpec, out: str | Path, *, hidden_sizes: Sequence[int] | None = None) -> Path:
    """Draw the spec (and its run's trace when it keeps one) to a PNG at ``out``.

    ``hidden_sizes`` lays the neurons out by layer; by default the spec's own record
    (``info["hidden_sizes"]``), else one row of all neurons.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    sizes = hidden_sizes or spec.info.get("hidden_sizes") or [spec.nap.size]
    grid = nap_cells(spec, sizes)
    trace = spec.info.get("trace")
    has_trace = isinstance(trace, dict) and len(trace.get("size", [])) > 0
    rows = 2 if has_trace else 1
    fig, axes = plt.subplots(
        rows,
        1,
        figsize=(10, 2.2 + 0.35 * grid.shape[0] + (4 if has_trace else 0)),
        dpi=110,
        gridspec_kw={"height_ratios": [max(1.0, 0.35 * grid.shape[0]), 4][:rows]},
        squeeze=False,
    )
    ax = axes[0, 0]
    cmap = ListedColormap([c for _, c, _ in sorted(_STATES)]).with_extremes(bad="white")
    ax.imshow(
        np.ma.masked_invalid(grid),
        cmap=cmap,
        vmin=-0.5,
        vmax=4.5,
        aspect="auto",
        interpolation="nearest",
    )
    ax.set_yticks(range(grid.shape[0]), [f"layer {k + 1}" for k in range(grid.shape[0])])
    ax.set_xlabel("neuron")
    counts = {code: int(np.sum(grid == code)) for code, _, _ in _STATES}
    ax.legend(
        handles=[Patch(color=c, label=f"{name} ({counts[code]})") for code, c, name in _STATES],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.35 if grid.shape[0] > 2 else -0.6),
        ncol=5,
        fontsize=8,
        frameon=False,
    )
    title = (
        f"NAP for class {spec.label}: |P| = {spec.size} of {spec.nap.size} neurons ({spec.method})"
    )
    cov = [
        f"{name} coverage {spec.info[key]:.2%}"
        for key, name in (("train_coverage", "train"), ("test_coverage", "test"))
        if isinstance(spec.info.get(key), int | float)
    ]
    ax.set_title(title + ("\n" + ", ".join(cov) if cov else ""), fontsize=10)

    if has_trace:
        assert isinstance(trace, dict)
        _plot_trace(axes[1, 0], trace)
    fig.tight_layout()
    path = Path(out)
    fig.savefig(path)
    plt.close(fig)
    return path


def _plot_trace(ax: Axes, trace: Mapping[str, Any]) -> None:
    from matplotlib.lines import Line2D

    size = np.asarray(trace["size"], dtype=np.float64)
    status = [str(s) for s in trace["status"]]
    seconds = np.asarray(trace.get("seconds", np.zeros(size.size)), dtype=np.float64)
    limits = [None if t is None else float(t) for t in trace.get("timeout", [None] * size.size)]
    if not (len(status) == size.size == seconds.size == len(limits)):
        raise InputError("the spec's trace columns differ in length")
    calls = np.arange(1, size.size + 1)
    distinct = sorted({t for t in limits if t is not None}) + ([None] if None in limits else [])
    handles = []
    for m, limit in enumerate(distinct):
        mark = _MARKERS[m % len(_MARKERS)]
        on = np.array([t == limit for t in limits])
        colours = [_STATUS_COLOURS.get(s, "black") for s, o in zip(status, on, strict=True) if o]
        ax.scatter(calls[on], size[on], s=12, marker=mark, c=colours, linewidths=0)
        label = "no limit / replayed" if limit is None else f"limit {limit:g} s"
        handles.append(Line2D([], [], ls="", marker=mark, color="black", label=label))
    ok = np.array([s == "verified" for s in status])
    best = np.minimum.accumulate(np.where(ok, size, np.inf))
    shown = np.isfinite(best)
    ax.step(calls[shown], best[shown], where="post", color="black", lw=1.2)
    handles.append(Line2D([], [], color="black", lw=1.2, label="smallest VERIFIED |P|"))
    handles += [
        Line2D([], [], ls="", marker="o", color=c, label=s)
        for s, c in _STATUS_COLOURS.items()
        if s in status
    ]
    ax.set_xlabel("verdict (in the order the run got them)")
    ax.set_ylabel("|P| of the NAP asked")
    twin = ax.twinx()
    spent = np.cumsum(seconds)
    hours = spent[-1] >= 7200
    twin.plot(calls, spent / 3600 if hours else spent, color="#4d4d4d", lw=0.8, ls="--")
    twin.set_ylabel(f"verifier time spent ({'h' if hours else 's'}), dashed")
    ax.legend(handles=handles, fontsize=8, loc="best", ncol=2)
    counts = {s: status.count(s) for s in _STATUS_COLOURS if s in status}
    ax.set_title(
        f"{size.size} verdicts: "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + f"; {spent[-1]:.3g} s of verifier time",
        fontsize=10,
    )


def square_shape(n: int) -> tuple[int, int]:
    """How an input of size ``n`` is drawn as an image: a square, when ``n`` is one."""
    side = math.isqrt(n)
    if side * side != n:
        raise InputError(f"inputs of size {n} are not square images: give image_shape")
    return side, side


def plot_blockers(
    report: CoverReport,
    X: ArrayLike,
    net: ReluNetwork,
    out: str | Path,
    *,
    image_shape: tuple[int, int] | None = None,
    per_row: int = 8,
    max_rows: int = 12,
) -> Path:
    """Draw the counterexamples behind a :func:`~relucid.spec.grow_coverage` report's proofs,
    each beside the inputs it keeps out, as images (a PNG at ``out``).

    One row per distinct counterexample (:meth:`CoverReport.blockers`, at most ``max_rows``,
    those that block the most first): the point, titled with the class the network gives
    it, then up to ``per_row`` of the inputs of ``X`` (the class's inputs the report was
    computed on) whose question it settled. ``image_shape``: how one input is drawn
    (default: a square, when the input size is one).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xa = np.atleast_2d(np.asarray(X, dtype=np.float64))
    found = report.blockers()
    blockers = sorted(found, key=lambda b: -len(b[1]))[:max_rows]
    if not blockers:
        raise InputError("no input was proved impossible to add: no counterexample to draw")
    n = xa.shape[1]
    image_shape = image_shape or square_shape(n)
    if image_shape[0] * image_shape[1] != n:
        raise InputError(f"image_shape {image_shape} does not hold inputs of size {n}")
    cols = 1 + min(per_row, max(len(inputs) for _, inputs in blockers))
    fig, axes = plt.subplots(
        len(blockers),
        cols,
        figsize=(1.3 * cols, 1.5 * len(blockers) + 0.6),
        dpi=110,
        squeeze=False,
    )
    lo, hi = float(xa.min()), float(xa.max())
    for r, (x, inputs) in enumerate(blockers):
        pred = int(np.argmax(net.forward(x[None, :])[0]))
        cells = [(x, f"class {pred}", "#d73027")] + [
            (xa[i], f"input {i}", "black") for i in inputs[: cols - 1]
        ]
        for c in range(cols):
            ax = axes[r, c]
            ax.set_axis_off()
            if c < len(cells):
                img, label, colour = cells[c]
                ax.imshow(img.reshape(image_shape), cmap="gray", vmin=lo, vmax=hi)
                ax.set_title(label, fontsize=7, color=colour)
        more = len(inputs) - (cols - 1)
        if more > 0:
            axes[r, -1].text(1.05, 0.5, f"+{more}", transform=axes[r, -1].transAxes, fontsize=8)
    proved = report.count(Status.FALSIFIED)
    fig.suptitle(
        f"{proved} inputs proved impossible to add, by {len(found)} "
        "counterexamples (red: the point, classified as shown; black: the inputs it keeps out)",
        fontsize=8,
    )
    fig.tight_layout()
    path = Path(out)
    fig.savefig(path)
    plt.close(fig)
    return path
