"""The pieces of the optimised bounds (:mod:`relucid.verify.crown`): how hard they optimise
(:class:`CrownConfig`), one hidden layer's relaxation for a batch of sub-problems
(:class:`Relax`), the network as tensors of one dtype on one device, and what a bound
returns (:class:`BoundResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from relucid.errors import InputError

Tensor = torch.Tensor


@dataclass(frozen=True)
class CrownConfig:
    """How hard :class:`CrownBounds` optimises.

    Parameters
    ----------
    iterations : Adam steps for an intermediate layer's bounds.
    output_iterations : Adam steps for output terms.
    schedules : ``(lr_alpha, lr_beta, decay)`` triples: the step sizes of the slopes (in
        [0, 1]) and of the multipliers, multiplied by ``decay`` after every step. Every
        specification is optimised once per schedule, all in one batched pass, and keeps
        the best bound. No one schedule wins: on the mnist-256x4 NAP queries a small
        multiplier step (0.01) was best for some (label 4, delta 0.99: -6.3 against
        -11.4) and a large, fast-decaying one for others (label 0, delta 0.95: 0.29,
        verified, against -0.26), and a small step cannot reach multipliers of size 1 in a
        few hundred steps at all.
    chunk : at most this many specifications per batched pass (memory ~ chunk x width x 8 B
        per layer, times the number of schedules).
    stall_window, stall_tol : stop once no bound gained more than ``stall_tol`` (relative to
        ``1 + |bound|``) over ``stall_window`` steps. The output bounds of wide NAP queries
        climb slowly but far: on mnist-net_256x4 COARSEN queries of label 4 (|P| 786, 238
        unstable neurons) the former rule (1e-3 over 10 steps, at most 100) stopped at a
        worst margin of -5.7 in 0.1 s; 500 steps under this one prove all nine margins
        (worst +0.34) in 1.0 s, where the exact LP relaxation took HiGHS 169 s. A query
        whose bounds all pass ``stop_above`` stops at once, so the longer run costs only
        the queries that bounds do not settle.
    """

    iterations: int = 50
    output_iterations: int = 500
    schedules: tuple[tuple[float, float, float], ...] = ((0.3, 0.01, 0.99), (0.1, 0.1, 0.95))
    chunk: int = 1024
    stall_window: int = 25
    stall_tol: float = 1e-4
    search_dtype: Literal["float32", "float64"] = "float64"
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.search_dtype not in ("float32", "float64"):
            raise InputError(f"search_dtype must be float32 or float64, not {self.search_dtype!r}")
        try:
            dev = torch.device(self.device)
        except RuntimeError as exc:
            raise InputError(f"unknown device {self.device!r}: {exc}") from exc
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise InputError(f"device {self.device!r}: no CUDA device on this machine")


@dataclass(frozen=True)
class NetTensors:
    """The network and box as tensors of one dtype on one device (what a back-substitution
    reads)."""

    W: list[Tensor]
    b: list[Tensor]
    lo: Tensor
    hi: Tensor
    A: Tensor | None
    rhs: Tensor | None

    def to(self, dtype: torch.dtype, device: torch.device) -> NetTensors:
        def cv(t: Tensor) -> Tensor:
            return t.to(dtype=dtype, device=device)

        return NetTensors(
            [cv(w) for w in self.W],
            [cv(v) for v in self.b],
            cv(self.lo),
            cv(self.hi),
            None if self.A is None else cv(self.A),
            None if self.rhs is None else cv(self.rhs),
        )


@dataclass
class Relax:
    """The fixed parts of one hidden layer's relaxation for a batch of ``D`` sub-problems.

    ``act``: identity (fixed active, or free with ``l >= 0``); ``uns``: free with
    ``l < 0 < u`` (between ``alpha z`` and the chord ``slope z + icpt``); everything else
    outputs 0. ``sign``: +1 fixed active, -1 fixed inactive, 0 free (the multipliers'
    constraint ``sign * z >= 0``). All (D, n) float64.
    """

    act: Tensor
    uns: Tensor
    slope: Tensor
    icpt: Tensor
    sign: Tensor
    lower: Tensor
    upper: Tensor

    @classmethod
    def of(cls, lower: Tensor, upper: Tensor, nap: Tensor) -> Relax:
        act = (nap == 1) | ((nap == -1) & (lower >= 0))
        ina = ~act & ((nap == 0) | (upper <= 0))
        uns = ~(act | ina)
        width = torch.where(uns, upper - lower, torch.ones_like(lower))
        slope = torch.where(uns, upper / width, torch.zeros_like(lower))
        icpt = torch.where(uns, -slope * lower, torch.zeros_like(lower))
        sign = (nap == 1).to(lower.dtype) - (nap == 0).to(lower.dtype)
        return cls(act.to(lower.dtype), uns.to(lower.dtype), slope, icpt, sign, lower, upper)

    def to(self, dtype: torch.dtype, device: torch.device) -> Relax:
        """The same relaxation as tensors of ``dtype`` on ``device``."""

        def cv(t: Tensor) -> Tensor:
            return t.to(dtype=dtype, device=device)

        return Relax(
            cv(self.act),
            cv(self.uns),
            cv(self.slope),
            cv(self.icpt),
            cv(self.sign),
            cv(self.lower),
            cv(self.upper),
        )

    def initial_alpha(self, specs: int) -> Tensor:
        """CROWN's choice: slope 1 where ``u >= -l``, else 0; shape (D, S, n)."""
        a = (self.upper >= -self.lower).to(self.lower.dtype) * self.uns
        return a[:, None, :].expand(-1, specs, -1).clone()


@dataclass
class BoundResult:
    """Lower bounds of ``spec @ z_K`` for a batch, with what produced them.

    ``lower`` (D, S); ``alpha`` / ``beta`` the best parameters per (D, S) (lists over
    layers, entries None where unused); ``mu`` the coefficients on each hidden layer's
    outputs at those parameters (for branching scores), ``x`` the box corner that minimises
    the final linear function (a candidate input), shape (D, S, n_0).
    """

    lower: Tensor
    alpha: list[Tensor | None]
    beta: list[Tensor | None]
    gamma: Tensor | None
    mu: list[Tensor] = field(default_factory=list)
    x: Tensor | None = None
