"""A run-time monitor: flag inputs that lie outside every class's NAP specification.

Paper: minimal-neural-specifications, "NAPs as a defense". A verified NAP of class ``c``
guarantees class ``c`` on its region; an input whose pattern matches no class's NAP is
outside everything proved, and an input whose predicted class's NAP does not match it is
predicted without a guarantee. The monitor reports both, in batch (numpy) or as a torch
forward hook on the classifier the specs were learned for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.errors import InputError
from relucid.network import ReluNetwork
from relucid.spec.nap import NapSpec

BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class MonitorReport:
    """Per input: which specs match (B, k), the prediction, and the two flags."""

    matches: BoolArray
    predicted: IntArray
    outside_all: BoolArray
    unguaranteed: BoolArray

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": int(self.predicted.size),
            "outside_all": int(self.outside_all.sum()),
            "unguaranteed": int(self.unguaranteed.sum()),
        }


class NapMonitor:
    """Check inputs against the NAP specs of one network (at most one spec per class)."""

    def __init__(self, net: ReluNetwork, specs: Sequence[NapSpec]) -> None:
        if not specs:
            raise InputError("a monitor needs at least one spec")
        for s in specs:
            s.check(net)
        self.net = net
        self.specs = tuple(specs)
        self.labels = np.array([s.label for s in specs], dtype=np.int64)
        self.last: MonitorReport | None = None

    def check(self, X: ArrayLike) -> MonitorReport:
        xa = np.atleast_2d(np.asarray(X, dtype=np.float64))
        matches = np.stack([s.contains(self.net, xa) for s in self.specs], axis=1)
        predicted = np.asarray(self.net.forward(xa).argmax(axis=1), dtype=np.int64)
        own = matches & (self.labels[None, :] == predicted[:, None])
        outside = np.asarray(~matches.any(axis=1))
        report = MonitorReport(matches, predicted, outside, np.asarray(~own.any(axis=1)))
        self.last = report
        return report

    def hook(self) -> Any:
        """A torch forward hook (``model.register_forward_hook(monitor.hook())``) that checks
        each batch the model sees; the report lands in :attr:`last`."""

        def _hook(module: Any, inputs: tuple[Any, ...], output: Any) -> None:
            x = inputs[0].detach().reshape(inputs[0].shape[0], -1).cpu().double().numpy()
            self.check(x)

        return _hook
