"""What a verifier is asked and what it answers: NAP queries, verdicts, the backend interface.

A **NAP query** (minimal-NAP paper, section 2) asks whether every input of a domain that
obeys a neural activation pattern is classified ``c`` by a margin. The domain is a box,
optionally cut by half-spaces ``A x <= b``. The NAP is an int8 per hidden neuron (flat order,
as :meth:`~relucid.ReluNetwork.pre_activations` concatenates them): 1 active, 0 inactive,
-1 free. An input *obeys* the NAP when every fixed-active neuron has pre-activation
``z >= 0`` and every fixed-inactive one ``z <= 0``: the closed region, which contains every
input whose activation pattern (``z > 0`` active) matches the NAP, so a VERIFIED verdict
covers all of those and the boundary too.

Verdicts (:class:`Status`):

* ``VERIFIED``: every domain input obeying the NAP has ``y_c - y_j > margin`` for every
  ``j != c`` (``>=`` when the caller allows ties);
* ``FALSIFIED``: with an input that a plain float64 forward pass confirms obeys the NAP and
  violates that (:meth:`NapQuery.violated_by`);
* ``EMPTY``: no domain input obeys the NAP; the claim is vacuous and never reported as
  verified;
* ``UNKNOWN``: timeout or numerical trouble, with the reason.

A VNN-LIB property (:class:`~relucid.verify.VnnProperty`) gets the same four verdicts,
printed in VNN-COMP words by :attr:`Status.vnn_word` (``holds`` / ``violated`` /
``unknown``; an empty input set ``holds`` vacuously).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.domain import Box
from relucid.errors import InputError

if TYPE_CHECKING:
    from relucid.network import ReluNetwork
    from relucid.verify.vnnlib import VnnProperty

FloatArray = NDArray[np.float64]
Int8Array = NDArray[np.int8]
BoolArray = NDArray[np.bool_]


class Status(enum.Enum):
    """A verifier's verdict (see the module notes)."""

    VERIFIED = "verified"
    FALSIFIED = "falsified"
    EMPTY = "empty"
    UNKNOWN = "unknown"

    @property
    def vnn_word(self) -> str:
        """The VNN-COMP result word: ``holds``, ``violated`` or ``unknown``."""
        return {
            Status.VERIFIED: "holds",
            Status.EMPTY: "holds",
            Status.FALSIFIED: "violated",
            Status.UNKNOWN: "unknown",
        }[self]

    @property
    def decided(self) -> bool:
        return self is not Status.UNKNOWN


def as_nap(nap: ArrayLike, num_hidden: int) -> Int8Array:
    """Check and freeze a NAP: int8 of shape (num_hidden,) with values in {-1, 0, 1}."""
    arr = np.array(nap, dtype=np.int64).reshape(-1)
    if arr.shape != (num_hidden,):
        raise InputError(f"a NAP needs {num_hidden} entries (one per neuron), got {arr.size}")
    if not np.isin(arr, (-1, 0, 1)).all():
        bad = sorted(set(arr[~np.isin(arr, (-1, 0, 1))].tolist()))[:5]
        raise InputError(f"NAP entries must be 1 (active), 0 (inactive) or -1 (free), got {bad}")
    out = arr.astype(np.int8)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class NapQuery:
    """Is every input of ``box`` (and ``A x <= b``) obeying ``nap`` classified ``label``?

    Parameters
    ----------
    nap : array of int8 (num_hidden,): 1 active, 0 inactive, -1 free.
    label : the class ``c``.
    box : the input domain (finite).
    A, b : optional extra half-spaces ``A x <= b`` of the domain.
    margin : ``y_c - y_j`` must exceed it (default 0).
    allow_ties : accept ``y_c - y_j == margin`` (default: a tie is a violation).
    hints : optional inputs (B, n) believed to obey the NAP (e.g. the data it was mined
        from). Not part of the question: a backend may use them as attack starts and, once
        a forward pass confirms one obeys, as proof that the NAP is not empty.
    """

    nap: Int8Array
    label: int
    box: Box
    A: FloatArray
    b: FloatArray
    margin: float = 0.0
    allow_ties: bool = False
    hints: FloatArray | None = None

    def __init__(
        self,
        nap: ArrayLike,
        label: int,
        box: Box,
        A: ArrayLike | None = None,
        b: ArrayLike | None = None,
        *,
        margin: float = 0.0,
        allow_ties: bool = False,
        hints: ArrayLike | None = None,
    ) -> None:
        arr = np.array(nap, dtype=np.int64).reshape(-1)
        nap8 = as_nap(arr, arr.size)
        n = box.dim
        if not (np.isfinite(box.lo).all() and np.isfinite(box.hi).all()):
            raise InputError("a NAP query needs a finite input box")
        a_arr = np.zeros((0, n)) if A is None else np.array(A, dtype=np.float64, ndmin=2)
        b_arr = np.zeros(0) if b is None else np.array(b, dtype=np.float64).reshape(-1)
        if a_arr.shape != (b_arr.size, n):
            raise InputError(f"half-spaces: A has shape {a_arr.shape}, b has {b_arr.size} rows")
        if not (np.isfinite(a_arr).all() and np.isfinite(b_arr).all()):
            raise InputError("half-spaces must be finite")
        if not math.isfinite(margin):
            raise InputError(f"the margin must be finite, got {margin}")
        a_arr.setflags(write=False)
        b_arr.setflags(write=False)
        object.__setattr__(self, "nap", nap8)
        object.__setattr__(self, "label", int(label))
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "A", a_arr)
        object.__setattr__(self, "b", b_arr)
        object.__setattr__(self, "margin", float(margin))
        object.__setattr__(self, "allow_ties", bool(allow_ties))
        if hints is not None:
            h_arr = np.array(hints, dtype=np.float64, ndmin=2)
            if h_arr.shape[1:] != (n,):
                raise InputError(f"hints have shape {h_arr.shape}, expected (B, {n})")
            h_arr.setflags(write=False)
            object.__setattr__(self, "hints", h_arr)

    # -- checks ----------------------------------------------------------------------------
    def check(self, net: ReluNetwork) -> None:
        """Raise :class:`InputError` unless the query fits ``net``."""
        if self.nap.size != net.num_hidden:
            raise InputError(f"the NAP has {self.nap.size} entries, {net!r} has {net.num_hidden}")
        if self.box.dim != net.input_dim:
            raise InputError(f"the box has {self.box.dim} features, {net!r} has {net.input_dim}")
        if not 0 <= self.label < net.output_dim:
            raise InputError(f"class {self.label} is out of range for {net.output_dim} outputs")

    @property
    def num_fixed(self) -> int:
        """``|P|``: how many neurons the NAP fixes."""
        return int((self.nap >= 0).sum())

    def with_nap(self, nap: ArrayLike) -> NapQuery:
        """The same query under another NAP."""
        return NapQuery(
            nap,
            self.label,
            self.box,
            self.A,
            self.b,
            margin=self.margin,
            allow_ties=self.allow_ties,
            hints=self.hints,
        )

    def with_hints(self, hints: ArrayLike | None) -> NapQuery:
        """The same query with other hints (inputs believed to obey the NAP)."""
        h = None if hints is None or np.size(hints) == 0 else hints
        return NapQuery(
            self.nap,
            self.label,
            self.box,
            self.A,
            self.b,
            margin=self.margin,
            allow_ties=self.allow_ties,
            hints=h,
        )

    def terms(self, num_outputs: int) -> list[tuple[int, FloatArray, float]]:
        """The violation as a disjunction: ``(j, C, d)``, ``C y <= d`` iff ``y_c - y_j <= m``."""
        out = []
        for j in range(num_outputs):
            if j != self.label:
                row = np.zeros(num_outputs)
                row[self.label], row[j] = 1.0, -1.0
                out.append((j, row, self.margin))
        return out

    # -- semantics (the independent replay) -------------------------------------------------
    def in_domain(self, X: ArrayLike, tol: float = 0.0) -> BoolArray:
        """Whether each row of ``X`` lies in the box and the half-spaces."""
        xa = np.asarray(X, dtype=np.float64)
        inside = np.all((xa >= self.box.lo - tol) & (xa <= self.box.hi + tol), axis=-1)
        if self.b.size:
            inside &= np.all(xa @ self.A.T <= self.b + tol, axis=-1)
        return np.asarray(inside)

    def obeys(self, net: ReluNetwork, X: ArrayLike) -> BoolArray:
        """Whether each row of ``X`` obeys the NAP (closed sides) and lies in the domain."""
        xa = np.asarray(X, dtype=np.float64)
        z = np.concatenate(net.pre_activations(xa), axis=-1)
        ok = np.all(np.where(self.nap == 1, z >= 0, True), axis=-1)
        ok &= np.all(np.where(self.nap == 0, z <= 0, True), axis=-1)
        return np.asarray(ok & self.in_domain(xa))

    def misclassified(self, y: ArrayLike) -> BoolArray:
        """Whether each output row violates ``y_c - y_j > margin`` for some ``j``."""
        ya = np.asarray(y, dtype=np.float64)
        gap = ya[..., self.label : self.label + 1] - ya
        gap[..., self.label] = np.inf
        worst = gap.min(axis=-1)
        bad = worst < self.margin if self.allow_ties else worst <= self.margin
        return np.asarray(bad)

    def violated_by(self, net: ReluNetwork, x: ArrayLike) -> bool:
        """The replay of a counterexample: a plain float64 forward pass of one input."""
        xa = np.asarray(x, dtype=np.float64).reshape(-1)
        if xa.shape != (net.input_dim,) or not np.isfinite(xa).all():
            return False
        return bool(self.obeys(net, xa)) and bool(self.misclassified(net.forward(xa)))

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "nap": self.nap.tolist(),
            "label": self.label,
            "box": {"lo": self.box.lo.tolist(), "hi": self.box.hi.tolist()},
            "A": self.A.tolist(),
            "b": self.b.tolist(),
            "margin": self.margin,
            "allow_ties": self.allow_ties,
            "hints": None if self.hints is None else self.hints.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NapQuery:
        try:
            box = Box(data["box"]["lo"], data["box"]["hi"])
            return cls(
                data["nap"],
                int(data["label"]),
                box,
                data.get("A") or None,
                data.get("b") or None,
                margin=float(data.get("margin", 0.0)),
                allow_ties=bool(data.get("allow_ties", False)),
                hints=data.get("hints"),
            )
        except (KeyError, TypeError) as exc:
            raise InputError(f"not a NAP query: missing or malformed {exc}") from exc


@dataclass(frozen=True, eq=False)
class VerifyResult:
    """One verdict with its evidence.

    Attributes
    ----------
    status : the verdict.
    backend : which verifier gave it (``"milp"``, ``"marabou"``).
    seconds : wall time of the call.
    reason : for UNKNOWN why; otherwise how it was decided (``"bounds"``, ``"attack"``,
        ``"milp"``, ...).
    counterexample : the replayed input (FALSIFIED only).
    violated : for a NAP query the class ``j`` that beat ``c``; for a property the index of
        the unsafe output term (FALSIFIED only).
    stats : counters (bound-stable neurons, MILP nodes, LP solves, attack steps, ...).
    """

    status: Status
    backend: str
    seconds: float
    reason: str = ""
    counterexample: FloatArray | None = None
    violated: int | None = None
    stats: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "result": self.status.vnn_word,
            "backend": self.backend,
            "seconds": self.seconds,
            "reason": self.reason,
            "counterexample": None if self.counterexample is None else self.counterexample.tolist(),
            "violated": self.violated,
            "stats": dict(self.stats),
        }

    def __str__(self) -> str:
        head = f"{self.status.value.upper()} ({self.backend}, {self.seconds * 1e3:.1f} ms)"
        if self.reason:
            head += f": {self.reason}"
        if self.counterexample is not None:
            xs = ", ".join(f"{v:.6g}" for v in self.counterexample[:8])
            more = ", ..." if self.counterexample.size > 8 else ""
            head += f"\n  counterexample x = [{xs}{more}]"
            if self.violated is not None:
                head += f" (violates via {self.violated})"
        return head


class Verifier(Protocol):
    """A complete verifier backend; every verdict it returns must survive the replay above."""

    name: str

    def verify_nap(
        self, net: ReluNetwork, query: NapQuery, timeout: float | None = None
    ) -> VerifyResult:
        """Decide a NAP query within ``timeout`` seconds (UNKNOWN after it)."""
        ...

    def verify_property(
        self, net: ReluNetwork, prop: VnnProperty, timeout: float | None = None
    ) -> VerifyResult:
        """Decide a VNN-LIB property: VERIFIED = holds, FALSIFIED = violated."""
        ...
