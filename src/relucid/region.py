"""The region of an activation pattern as a labelled polytope ``A x <= b``.

For a pattern ``p`` with local maps ``z = M x + c`` (see :mod:`relucid.pattern`), the inputs
with that pattern (closed form) satisfy

    active neuron i:    -M_i x <= c_i        (z_i >= 0)
    inactive neuron i:   M_i x <= -c_i       (z_i <= 0)

intersected with the input domain (box sides as rows). Optional "class c beats class j" rows
``(L_j - L_c) x <= d_c - d_j`` restrict it to where c is (weakly) the arg-max. Each row carries
its origin so that explanations can say where a constraint comes from.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from relucid.domain import Box
from relucid.network import ReluNetwork
from relucid.pattern import LocalAffine, local_affine

FloatArray = NDArray[np.float64]


class RowKind(enum.IntEnum):
    NEURON = 0  # a hidden neuron's activation state
    CLASS = 1  # class c beats class j
    DOMAIN = 2  # a side of the input box


@dataclass(frozen=True)
class RowOrigin:
    """Where a constraint row comes from.

    ``kind`` NEURON: ``layer``/``neuron`` (hidden layer and index, from 0), ``flat`` index,
    ``active`` state. CLASS: ``winner`` beats ``other``. DOMAIN: ``feature`` and ``side``
    ("lower"/"upper").
    """

    kind: RowKind
    layer: int = -1
    neuron: int = -1
    flat: int = -1
    active: bool = False
    winner: int = -1
    other: int = -1
    feature: int = -1
    side: str = ""

    def describe(
        self,
        feature_names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
    ) -> str:
        """Where the row comes from, in words (hidden layers counted from 1 here)."""
        if self.kind is RowKind.NEURON:
            state = "active" if self.active else "inactive"
            return f"hidden layer {self.layer + 1}, neuron {self.neuron} stays {state}"
        if self.kind is RowKind.CLASS:
            w = class_names[self.winner] if class_names else str(self.winner)
            o = class_names[self.other] if class_names else str(self.other)
            return f"class comparison: {w!r} beats {o!r}"
        f = feature_names[self.feature] if feature_names else f"x{self.feature}"
        return f"domain {self.side} bound of {f}"

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {"kind": self.kind.name.lower()}
        if self.kind is RowKind.NEURON:
            d.update(layer=self.layer, neuron=self.neuron, flat=self.flat, active=self.active)
        elif self.kind is RowKind.CLASS:
            d.update(winner=self.winner, other=self.other)
        else:
            d.update(feature=self.feature, side=self.side)
        return d


@dataclass(frozen=True, eq=False)
class LabelledPolytope:
    """``A x <= b`` with one :class:`RowOrigin` code per row.

    Origins are kept as compact integer columns (``kind``, ``a``, ``b``) and turned into
    :class:`RowOrigin` objects only on demand: a region of the 256x4 MNIST network has over
    a thousand rows and most are dropped as redundant.
    """

    A: FloatArray
    b: FloatArray
    kind: NDArray[np.int8]
    ref1: NDArray[np.int64]
    ref2: NDArray[np.int64]

    def origin(self, i: int, net: ReluNetwork) -> RowOrigin:
        kind = RowKind(int(self.kind[i]))
        r1, r2 = int(self.ref1[i]), int(self.ref2[i])
        if kind is RowKind.NEURON:
            layer, neuron = net.neuron(r1)
            return RowOrigin(kind, layer=layer, neuron=neuron, flat=r1, active=bool(r2))
        if kind is RowKind.CLASS:
            return RowOrigin(kind, winner=r1, other=r2)
        return RowOrigin(kind, feature=r1, side="upper" if r2 else "lower")

    def subset(self, idx: NDArray[np.int64]) -> LabelledPolytope:
        return LabelledPolytope(
            self.A[idx], self.b[idx], self.kind[idx], self.ref1[idx], self.ref2[idx]
        )


def domain_rows(box: Box | None, n: int) -> LabelledPolytope:
    """The finite sides of ``box`` as labelled rows (none for ``box=None``)."""
    if box is None:
        e = np.zeros(0, dtype=np.int64)
        return LabelledPolytope(np.zeros((0, n)), np.zeros(0), e.astype(np.int8), e, e)
    a, b, sides = box.halfspaces()
    feats = np.array([s[0] for s in sides], dtype=np.int64)
    upper = np.array([s[1] == "upper" for s in sides], dtype=np.int64)
    return LabelledPolytope(a, b, np.full(len(sides), RowKind.DOMAIN, np.int8), feats, upper)


def pattern_rows(aff: LocalAffine) -> LabelledPolytope:
    """The neuron rows of a pattern's region (no domain)."""
    sign = np.where(aff.pattern, -1.0, 1.0)
    a = aff.M * sign[:, None]
    b = aff.c * -sign
    n_h = aff.pattern.size
    return LabelledPolytope(
        a,
        b,
        np.full(n_h, RowKind.NEURON, np.int8),
        np.arange(n_h, dtype=np.int64),
        aff.pattern.astype(np.int64),
    )


def class_rows(aff: LocalAffine, winner: int) -> LabelledPolytope:
    """Rows ``(L_j - L_c) x <= d_c - d_j`` for every class j other than c = ``winner``."""
    m = aff.L.shape[0]
    others = np.array([j for j in range(m) if j != winner], dtype=np.int64)
    a = aff.L[others] - aff.L[winner]
    b = aff.d[winner] - aff.d[others]
    return LabelledPolytope(
        a, b, np.full(others.size, RowKind.CLASS, np.int8), np.full_like(others, winner), others
    )


def stack(*parts: LabelledPolytope) -> LabelledPolytope:
    return LabelledPolytope(
        np.concatenate([p.A for p in parts], axis=0),
        np.concatenate([p.b for p in parts]),
        np.concatenate([p.kind for p in parts]),
        np.concatenate([p.ref1 for p in parts]),
        np.concatenate([p.ref2 for p in parts]),
    )


def region(
    net: ReluNetwork, pattern: NDArray[np.bool_], domain: Box | None, winner: int | None = None
) -> tuple[LabelledPolytope, LocalAffine]:
    """The region of ``pattern`` inside ``domain``, restricted to class ``winner`` if given.

    Row order: neurons (flat order), then class rows, then domain sides.
    """
    aff = local_affine(net, pattern)
    parts = [pattern_rows(aff)]
    if winner is not None:
        parts.append(class_rows(aff, winner))
    parts.append(domain_rows(domain, net.input_dim))
    return stack(*parts), aff
