"""The answer to "why not class t?": the flipped neurons and the explanation object.

:class:`WhyNotExplanation` is what :meth:`relucid.explain.whynot.WhyNotExplainer.why_not`
returns (JSON via ``to_dict``, readable text via ``to_text``); :class:`FlippedNeuron` is one
neuron whose state differs between ``x``'s region and the target region, as a hyperplane
over the named input features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from relucid.region import RowOrigin

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class FlippedNeuron:
    """A neuron whose state differs between ``x``'s region and the target region.

    ``a . x <= b`` is the neuron's row on ``x``'s side, in ``x``'s region (its local map);
    the target region lies where the neuron has the other state (its own local map).
    """

    flat: int
    layer: int
    neuron: int
    active_at_x: bool
    a: FloatArray
    b: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "flat": self.flat,
            "layer": self.layer,
            "neuron": self.neuron,
            "active_at_x": self.active_at_x,
            "a": self.a.tolist(),
            "b": float(self.b),
        }


@dataclass(frozen=True, eq=False)
class WhyNotExplanation:
    """Why the network did not choose ``target`` at ``x``.

    Attributes
    ----------
    outcome : ``"found"``, ``"impossible"`` or ``"budget"``.
    strategy : which strategy answered (``"same-region"`` when x's own region holds one).
    target, predicted : the class asked about and the class of ``x``.
    pattern : ``x``'s pattern; ``target_pattern``: the answer's (None unless found).
    hamming : number of flipped neurons; ``flipped``: them, as hyperplanes.
    counterfactual : an input of class ``target`` with ``target_pattern`` (forward pass
        confirmed), or None; ``distance_linf`` / ``distance_l1`` to ``x``.
    same_region_rows : when the answer is in x's region, its irredundant rows ``A x <= b``
        with their origins; ``separating`` marks the rows that separate it from "c wins".
    x_box, target_box : bounding boxes of both regions (within the domain).
    target_vertices : vertices of the target region in low dimension, else None.
    cost : LPs, MILP nodes, seconds; ``reason``: why the outcome is what it is.
    objective : the sense of "nearest" (``"hamming"``, ``"l1"`` or ``"linf"``).
    proved_nearest : whether no region nearer in that sense lets ``target`` win (the same
        region and ``hamming`` by construction, ``milp`` when the MILP closed its gap;
        ``facet`` never proves it).
    lower_bound : a proved lower bound on that distance for any region where ``target``
        wins (the MILP's dual bound, or the Hamming distance ``hamming`` finished), or None;
        it equals the answer's distance when ``proved_nearest``.
    """

    x: FloatArray
    target: int
    predicted: int
    outcome: Literal["found", "impossible", "budget"]
    strategy: str
    pattern: BoolArray
    target_pattern: BoolArray | None
    flipped: tuple[FlippedNeuron, ...]
    counterfactual: FloatArray | None
    distance_linf: float | None
    distance_l1: float | None
    x_box: tuple[FloatArray, FloatArray] | None
    target_box: tuple[FloatArray, FloatArray] | None
    target_vertices: FloatArray | None
    cost: dict[str, float]
    reason: str
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    same_region_rows: tuple[FloatArray, FloatArray, tuple[RowOrigin, ...]] | None = None
    separating: NDArray[np.bool_] | None = field(default=None)
    objective: str = "hamming"
    proved_nearest: bool = False
    lower_bound: float | None = None

    @property
    def hamming(self) -> int | None:
        return None if self.target_pattern is None else len(self.flipped)

    def to_dict(self) -> dict[str, Any]:
        def arr(a: FloatArray | None) -> list[float] | None:
            return None if a is None else [float(v) for v in np.ravel(a)]

        out: dict[str, Any] = {
            "input": arr(self.x),
            "predicted": self.predicted,
            "predicted_name": self.class_names[self.predicted],
            "target": self.target,
            "target_name": self.class_names[self.target],
            "outcome": self.outcome,
            "strategy": self.strategy,
            "reason": self.reason,
            "pattern": "".join("1" if v else "0" for v in self.pattern),
            "target_pattern": None
            if self.target_pattern is None
            else "".join("1" if v else "0" for v in self.target_pattern),
            "hamming": self.hamming,
            "flipped": [f.to_dict() for f in self.flipped],
            "counterfactual": arr(self.counterfactual),
            "distance_linf": self.distance_linf,
            "distance_l1": self.distance_l1,
            "x_box": None if self.x_box is None else [arr(self.x_box[0]), arr(self.x_box[1])],
            "target_box": None
            if self.target_box is None
            else [arr(self.target_box[0]), arr(self.target_box[1])],
            "target_vertices": None
            if self.target_vertices is None
            else self.target_vertices.tolist(),
            "objective": self.objective,
            "proved_nearest": self.proved_nearest,
            "lower_bound": self.lower_bound,
            "cost": self.cost,
            "feature_names": list(self.feature_names),
            "class_names": list(self.class_names),
        }
        if self.same_region_rows is not None and self.separating is not None:
            A, b, origins = self.same_region_rows
            out["same_region_rows"] = [
                {
                    "a": A[i].tolist(),
                    "b": float(b[i]),
                    "origin": origins[i].to_dict(),
                    "separating": bool(self.separating[i]),
                }
                for i in range(b.size)
            ]
        return out

    def hyperplane_text(self, f: FlippedNeuron, max_terms: int = 6, digits: int = 4) -> str:
        order = np.argsort(-np.abs(f.a))[:max_terms]
        terms = " ".join(
            f"{'-' if f.a[j] < 0 else '+'} {abs(f.a[j]):.{digits}g}*{self.feature_names[j]}"
            for j in order
            if f.a[j] != 0
        )
        more = " ..." if np.count_nonzero(f.a) > max_terms else ""
        state = "active" if f.active_at_x else "inactive"
        other = "inactive" if f.active_at_x else "active"
        return (
            f"layer {f.layer + 1} neuron {f.neuron}: {state} at x, {other} in the target "
            f"region; x's side: {terms.lstrip('+ ')}{more} <= {f.b:.{digits}g}"
        )

    def to_text(self, max_flipped: int = 20) -> str:
        c, t = self.class_names[self.predicted], self.class_names[self.target]
        head = f"why not {t!r} (x is {c!r}): {self.outcome} by {self.strategy}"
        lines = [head, f"  {self.reason}"]
        if self.outcome == "found":
            assert self.counterfactual is not None
            lines.append(
                f"  target region at Hamming distance {self.hamming}; counterfactual at "
                f"L-inf {self.distance_linf:.4g}, L1 {self.distance_l1:.4g} from x"
            )
            cf = ", ".join(
                f"{n}={v:.4g}" for n, v in zip(self.feature_names, self.counterfactual, strict=True)
            )
            lines.append(f"  counterfactual: {cf}")
            for fl in self.flipped[:max_flipped]:
                lines.append("  " + self.hyperplane_text(fl))
            if len(self.flipped) > max_flipped:
                lines.append(f"  ... and {len(self.flipped) - max_flipped} more flipped neurons")
            if self.same_region_rows is not None and self.separating is not None:
                lines.append(
                    f"  the sub-region of x's region where {t!r} wins has "
                    f"{self.separating.size} irredundant rows, {int(self.separating.sum())} "
                    f"of them separating it from {c!r}"
                )
        if self.outcome == "found":
            lines.append(
                f"  proved nearest by {self.objective}"
                if self.proved_nearest
                else f"  not proved nearest by {self.objective}"
                + (
                    ""
                    if self.lower_bound is None
                    else f" (proved lower bound {self.lower_bound:.4g})"
                )
            )
        elif self.outcome == "budget" and self.lower_bound is not None:
            lines.append(f"  proved: any answer is at {self.objective} >= {self.lower_bound:.4g}")
        cost = ", ".join(f"{k} {v:.4g}" for k, v in self.cost.items())
        lines.append(f"  cost: {cost}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()
