"""Input domains: an axis-aligned box ``lo <= x <= hi`` (ends may be infinite)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.errors import InputError

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Box:
    """The box ``{x : lo <= x <= hi}`` over the input features.

    Parameters
    ----------
    lo, hi : array of shape (n,)
        Lower and upper ends; ``-inf`` / ``+inf`` leave a side open.
    """

    lo: FloatArray
    hi: FloatArray

    def __init__(self, lo: ArrayLike, hi: ArrayLike) -> None:
        lo_a = np.array(lo, dtype=np.float64).reshape(-1)
        hi_a = np.array(hi, dtype=np.float64).reshape(-1)
        if lo_a.shape != hi_a.shape:
            raise InputError(f"box ends differ in length: {lo_a.size} lower, {hi_a.size} upper")
        if np.isnan(lo_a).any() or np.isnan(hi_a).any():
            raise InputError("box ends must not be NaN")
        bad = np.flatnonzero(lo_a > hi_a)
        if bad.size:
            i = int(bad[0])
            raise InputError(f"box is empty in feature {i}: lower {lo_a[i]} > upper {hi_a[i]}")
        lo_a.setflags(write=False)
        hi_a.setflags(write=False)
        object.__setattr__(self, "lo", lo_a)
        object.__setattr__(self, "hi", hi_a)

    @classmethod
    def unbounded(cls, dim: int) -> Box:
        """The whole space R^dim."""
        return cls(np.full(dim, -np.inf), np.full(dim, np.inf))

    @classmethod
    def parse(cls, text: str, dim: int) -> Box:
        """Read a box from text.

        Accepted forms: ``"lo:hi"`` (the same interval in every feature) or
        ``"lo1:hi1,lo2:hi2,..."`` (one interval per feature). ``inf`` and ``-inf`` work.
        """
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            pairs = [tuple(float(v) for v in p.split(":")) for p in parts]
        except ValueError as exc:
            raise InputError(f"cannot read domain {text!r}: {exc}") from exc
        if any(len(p) != 2 for p in pairs):
            raise InputError(f"domain {text!r}: every interval must be written lo:hi")
        if len(pairs) == 1:
            pairs = pairs * dim
        if len(pairs) != dim:
            raise InputError(
                f"domain {text!r} has {len(pairs)} intervals, the model has {dim} inputs"
            )
        return cls([p[0] for p in pairs], [p[1] for p in pairs])

    @property
    def dim(self) -> int:
        return int(self.lo.size)

    @property
    def is_bounded(self) -> bool:
        return bool(np.isfinite(self.lo).all() and np.isfinite(self.hi).all())

    def contains(self, x: ArrayLike, tol: float = 1e-9) -> NDArray[np.bool_]:
        """Membership of each row of ``x`` (shape (n,) or (B, n))."""
        xa = np.asarray(x, dtype=np.float64)
        return np.all((xa >= self.lo - tol) & (xa <= self.hi + tol), axis=-1)

    def halfspaces(self) -> tuple[FloatArray, FloatArray, list[tuple[int, str]]]:
        """The finite sides as rows of ``A x <= b``.

        Returns ``(A, b, sides)`` where ``sides[k] = (feature, "lower" | "upper")``.
        """
        n = self.dim
        eye = np.eye(n)
        rows: list[FloatArray] = []
        rhs: list[float] = []
        sides: list[tuple[int, str]] = []
        for i in range(n):
            if np.isfinite(self.lo[i]):
                rows.append(-eye[i])
                rhs.append(-float(self.lo[i]))
                sides.append((i, "lower"))
            if np.isfinite(self.hi[i]):
                rows.append(eye[i])
                rhs.append(float(self.hi[i]))
                sides.append((i, "upper"))
        a = np.array(rows, dtype=np.float64).reshape(len(rows), n)
        return a, np.array(rhs, dtype=np.float64), sides

    def to_dict(self) -> dict[str, list[float]]:
        return {"lo": [float(v) for v in self.lo], "hi": [float(v) for v in self.hi]}

    def __repr__(self) -> str:
        return f"Box(lo={self.lo.tolist()}, hi={self.hi.tolist()})"


def as_box(domain: Box | Sequence[Sequence[float]] | None, dim: int) -> Box | None:
    """Normalise a user's domain argument: a Box, a pair ``(lo, hi)``, or None."""
    if domain is None or isinstance(domain, Box):
        box = domain
    else:
        lo, hi = domain
        box = Box(lo, hi)
    if box is not None and box.dim != dim:
        raise InputError(f"domain has {box.dim} features, the model has {dim} inputs")
    return box
