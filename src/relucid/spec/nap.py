"""The NAP specification object and the most refined NAP of a class.

Paper: minimal-neural-specifications, sections 2-3. A neural activation pattern (NAP) is an
int8 array over the hidden neurons in flat layer order: 1 active, 0 inactive, -1 free. An
input's pattern *matches* it when every fixed-active neuron has pre-activation ``z > 0`` and
every fixed-inactive one ``z <= 0`` (the definition the data are mined with). A NAP is a
specification for class ``c`` when a complete verifier proves that every domain input
obeying it (the closed sides ``z >= 0`` / ``z <= 0``, a superset of the matching inputs) is
classified ``c``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.domain import Box
from relucid.errors import InputError
from relucid.network import ReluNetwork
from relucid.verify.query import NapQuery, as_nap

Int8Array = NDArray[np.int8]
BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class NapSpec:
    """A NAP for one class of one network, with how it was obtained.

    Attributes
    ----------
    nap : int8 array (num_hidden,): 1 active, 0 inactive, -1 free.
    label : the class ``c``.
    fingerprint : the network's weight hash (:meth:`ReluNetwork.fingerprint`); a spec is
        only meaningful for that network.
    domain : the input box the verdicts speak about.
    method : how it was learned (``"refined"``, ``"coarsen"``, ``"group"``, ...).
    info : free-form provenance (delta, label source, verifier, timings, counts).
    verdicts : every verifier verdict behind it (``VerifyResult.to_dict()`` records, with
        the NAP they were about as ``nap``).
    """

    nap: Int8Array
    label: int
    fingerprint: str
    domain: Box
    method: str = "refined"
    info: Mapping[str, Any] = field(default_factory=dict)
    verdicts: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        arr = np.array(self.nap, dtype=np.int64).reshape(-1)
        object.__setattr__(self, "nap", as_nap(arr, arr.size))

    # -- views -------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """``|P|``: how many neurons are fixed."""
        return int((self.nap >= 0).sum())

    def __len__(self) -> int:
        return self.size

    def check(self, net: ReluNetwork) -> None:
        """Raise :class:`InputError` unless this spec belongs to ``net``."""
        if self.nap.size != net.num_hidden:
            raise InputError(f"the NAP has {self.nap.size} neurons, {net!r} has {net.num_hidden}")
        if self.fingerprint and self.fingerprint != net.fingerprint():
            raise InputError(
                f"the spec was learned on network {self.fingerprint[:12]}..., "
                f"not on {net!r} ({net.fingerprint()[:12]}...)"
            )

    def contains(self, net: ReluNetwork, X: ArrayLike) -> BoolArray:
        """Whether each input's activation pattern matches the NAP (batched, shape (B,))."""
        xa = np.atleast_2d(np.asarray(X, dtype=np.float64))
        z = np.concatenate(net.pre_activations(xa), axis=1)
        ok = np.all(np.where(self.nap == 1, z > 0, True), axis=1)
        ok &= np.all(np.where(self.nap == 0, z <= 0, True), axis=1)
        return np.asarray(ok)

    def coverage(self, net: ReluNetwork, X: ArrayLike) -> float:
        """Share of the rows of ``X`` that match (NaN for no rows)."""
        xa = np.atleast_2d(np.asarray(X, dtype=np.float64))
        return float(self.contains(net, xa).mean()) if xa.shape[0] else math.nan

    def query(self, net: ReluNetwork, X: ArrayLike | None = None, max_hints: int = 16) -> NapQuery:
        """The verifier query "every input of the domain that obeys the NAP is classified
        as the label", with up to ``max_hints`` rows of ``X`` that obey the NAP as hints.

        A VERIFIED verdict also needs one input that obeys the NAP (else the NAP is EMPTY);
        a hint is that witness at once, where the verifier would otherwise search for one
        (on mnist-256x4 a lone COARSEN result's membership MILP ran past 300 s, and the
        same query with hints verifies in about 2 s). Hints never decide the other terms.
        """
        hints = None
        if X is not None:
            xa = np.atleast_2d(np.asarray(X, dtype=np.float64))
            if xa.shape[0]:
                hints = xa[self.contains(net, xa)][:max_hints]
        return NapQuery(
            self.nap,
            self.label,
            self.domain,
            hints=hints if hints is not None and hints.size else None,
        )

    def __le__(self, other: NapSpec) -> bool:
        """``self <= other``: self is coarser (each neuron self fixes, other fixes the same)."""
        mine = self.nap >= 0
        return bool(np.all(other.nap[mine] == self.nap[mine]))

    def with_nap(self, nap: ArrayLike, **changes: Any) -> NapSpec:
        return replace(self, nap=np.asarray(nap, dtype=np.int8), **changes)

    # -- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "relucid-nap/1",
            "nap": self.nap.tolist(),
            "size": self.size,
            "label": self.label,
            "fingerprint": self.fingerprint,
            "box": {"lo": self.domain.lo.tolist(), "hi": self.domain.hi.tolist()},
            "method": self.method,
            "info": dict(self.info),
            "verdicts": [dict(v) for v in self.verdicts],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NapSpec:
        try:
            return cls(
                np.asarray(data["nap"], dtype=np.int8),
                int(data["label"]),
                str(data.get("fingerprint", "")),
                Box(data["box"]["lo"], data["box"]["hi"]),
                str(data.get("method", "refined")),
                dict(data.get("info", {})),
                tuple(data.get("verdicts", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a NAP spec: missing or malformed {exc}") from exc

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> NapSpec:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read the NAP spec {path}: {exc}") from exc
        return cls.from_dict(data)

    def __str__(self) -> str:
        return (
            f"NAP for class {self.label}: |P| = {self.size} of {self.nap.size} neurons "
            f"({int((self.nap == 1).sum())} active, {int((self.nap == 0).sum())} inactive), "
            f"method {self.method}"
        )


def refined_nap(
    net: ReluNetwork,
    X: ArrayLike,
    labels: ArrayLike,
    label: int,
    delta: float = 0.95,
    *,
    domain: Box | None = None,
    label_source: str = "dataset",
) -> NapSpec:
    """The most refined NAP of class ``label`` mined from the inputs labelled ``label``.

    With ``k`` such inputs and ``a_i`` of them having ``z_i > 0``: neuron ``i`` is fixed
    active when ``a_i >= delta k``, inactive when ``a_i <= (1 - delta) k``, free otherwise
    (minimal-NAP paper, section 3). The cut-offs are exact integers (``delta`` read as the
    decimal fraction it is written as), so ``delta = 0.95`` with ``k = 20`` needs 19 inputs.
    """
    xa = np.atleast_2d(np.asarray(X, dtype=np.float64))
    ya = np.asarray(labels).reshape(-1)
    if ya.shape[0] != xa.shape[0]:
        raise InputError(f"{xa.shape[0]} inputs but {ya.shape[0]} labels")
    if not 0.5 < delta <= 1.0:
        raise InputError(f"delta must lie in (0.5, 1], got {delta}")
    rows = xa[ya == label]
    k = rows.shape[0]
    if k == 0:
        raise InputError(f"no input has label {label}")
    z = np.concatenate(net.pre_activations(rows), axis=1)
    count = (z > 0).sum(axis=0)
    frac = Fraction(str(delta))
    need_active = math.ceil(frac * k)
    max_inactive = math.floor((1 - frac) * k)
    nap = np.full(net.num_hidden, -1, dtype=np.int8)
    nap[count >= need_active] = 1
    nap[count <= max_inactive] = 0
    if domain is None:
        if net.domain is None:
            raise InputError("give a domain: the network stores none")
        domain = net.domain
    return NapSpec(
        nap,
        int(label),
        net.fingerprint(),
        domain,
        "refined",
        {
            "delta": delta,
            "inputs": k,
            "labels": label_source,
            "hidden_sizes": list(net.hidden_sizes),
        },
    )
