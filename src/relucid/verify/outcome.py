"""The outcome of one region's search, before it becomes a :class:`VerifyResult`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from relucid.verify.query import Status


@dataclass
class SearchOutcome:
    """What a search found for one region: the verdict, why, and a replayed point."""

    status: Status
    reason: str = ""
    x: NDArray[np.float64] | None = None
    term: int | None = None
    stats: dict[str, float] = field(default_factory=dict)


def how_verified(stats: dict[str, float]) -> str:
    """How a VERIFIED verdict was reached (its reason), from the search's statistics."""
    if stats.get("pieces"):
        return "split"
    if stats.get("milp_solves"):
        return "milp"
    return "branch and bound" if stats.get("terms_by_bab") else "bounds"
