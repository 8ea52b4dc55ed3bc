"""Pictures of linear regions, decisions and a why-not explanation, on a 2-D slice.

For a 2-input network the slice is the whole domain; otherwise it passes through ``x`` along
two chosen features (the others fixed at ``x``'s values). On a grid over the slice: each
activation pattern's region gets a light colour of its own, the decision regions are drawn
as their boundaries and a tint per class, ``x`` and the counterfactual are marked, and each
flipped neuron's hyperplane (its pre-activation's zero level on the slice) is drawn dashed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from relucid.domain import Box
from relucid.errors import InputError
from relucid.explain.answer import WhyNotExplanation
from relucid.network import ReluNetwork


def plot_regions(
    net: ReluNetwork,
    x: ArrayLike,
    domain: Box,
    out: str | Path,
    *,
    features: tuple[int, int] = (0, 1),
    explanation: WhyNotExplanation | None = None,
    decision: str = "argmax",
    resolution: int = 300,
) -> Path:
    """Draw the slice to a PNG at ``out``; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    xa = np.asarray(x, dtype=np.float64).reshape(-1)
    i, j = features
    n = net.input_dim
    if not (0 <= i < n and 0 <= j < n and i != j):
        raise InputError(f"features must be two different inputs in 0..{n - 1}, got {features}")
    if not domain.is_bounded:
        raise InputError("plotting needs a bounded domain")
    gi = np.linspace(domain.lo[i], domain.hi[i], resolution)
    gj = np.linspace(domain.lo[j], domain.hi[j], resolution)
    U, V = np.meshgrid(gi, gj)
    pts = np.tile(xa, (U.size, 1))
    pts[:, i], pts[:, j] = U.ravel(), V.ravel()
    pats = net.patterns(pts)
    _, region_id = np.unique(pats, axis=0, return_inverse=True)
    y = net.forward(pts)
    cls = (y.argmin(axis=1) if decision == "argmin" else y.argmax(axis=1)).reshape(U.shape)
    rng = np.random.default_rng(0)
    n_regions = int(region_id.max()) + 1
    colours = 0.75 + 0.25 * rng.random((n_regions, 3))
    fig, ax = plt.subplots(figsize=(7, 6), dpi=110)
    ax.imshow(
        colours[region_id.reshape(U.shape)],
        origin="lower",
        extent=(gi[0], gi[-1], gj[0], gj[-1]),
        aspect="auto",
        interpolation="nearest",
    )
    m = net.output_dim
    tint = ListedColormap([plt.get_cmap("tab10")(k % 10) for k in range(m)])
    ax.imshow(
        cls,
        origin="lower",
        extent=(gi[0], gi[-1], gj[0], gj[-1]),
        aspect="auto",
        cmap=tint,
        vmin=-0.5,
        vmax=m - 0.5,
        alpha=0.25,
        interpolation="nearest",
    )
    ax.contour(U, V, cls, levels=np.arange(m) + 0.5, colors="k", linewidths=1.2)
    names = [net.feature_name(k) for k in range(n)]
    ax.plot(xa[i], xa[j], "k*", markersize=14, label="x")
    title = f"{n_regions} linear regions on the slice; decision boundaries in black"
    if explanation is not None:
        z = np.concatenate(net.pre_activations(pts), axis=1)
        for k, f in enumerate(explanation.flipped[:12]):
            ax.contour(
                U,
                V,
                z[:, f.flat].reshape(U.shape),
                levels=[0.0],
                colors="crimson",
                linestyles="dashed",
                linewidths=1.0,
            )
            if k == 0:
                ax.plot([], [], "--", color="crimson", label="flipped neurons")
        cf = explanation.counterfactual
        if cf is not None:
            ax.plot(
                cf[i],
                cf[j],
                "X",
                color="crimson",
                markersize=11,
                label="counterfactual" if n == 2 else "counterfactual (projected)",
            )
            ax.plot([xa[i], cf[i]], [xa[j], cf[j]], ":", color="crimson")
        t = explanation.class_names[explanation.target]
        title += f"\nwhy not {t!r}: {explanation.outcome} ({explanation.strategy})"
    for c in range(m):
        ax.plot([], [], "s", color=tint(c), alpha=0.5, label=net.class_name(c))
    ax.set_xlabel(names[i])
    ax.set_ylabel(names[j])
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
    path = Path(out)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
