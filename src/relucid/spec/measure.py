"""How much a NAP specification covers: data coverage and the appendix C volume estimate.

Paper: minimal-neural-specifications, appendix C. The region ``R_P`` of a NAP (inputs of the
domain whose pattern matches it) is not convex in general and its exact volume is NP-hard,
so the paper estimates it by an orthotope around a pseudo-centre:

1. **pseudo-centre**: among the covered data points, the one whose L-inf ball covering all the
   others is smallest, ``argmin_x max_x' ||x - x'||_inf`` (exact for up to ``max_points``
   points, on a seeded sample beyond);
2. **orthotope**: along each input dimension, grow the upper and lower extent from the centre
   until it leaves ``R_P`` (or the domain): a walk on a grid finds the first grid point
   outside, then binary search refines between it and the last point inside (a plain
   binary search could jump over a gap, since ``R_P`` need not be convex);
3. report ``log10`` of its volume, and, ours, a Monte Carlo check of how much of the
   orthotope really lies in ``R_P`` (the binary search only looks along the axes).

Ours, beside it: the **joint orthotope**, the per-axis one shrunk about the pseudo-centre by the
largest common factor ``s`` (bisection) at which at least ``joint_target`` (0.99) of Monte
Carlo points lie in ``R_P``. The per-axis growth moves one input at a time, so on MNIST it
reaches the full ``[0, 1]`` in every pixel (a single pixel rarely flips a neuron) while almost
no point of that box obeys the NAP; the joint orthotope is a box that (by the sample) mostly
lies in the region. It is not the paper's measure and is reported under its own name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.errors import InputError
from relucid.network import ReluNetwork
from relucid.spec.nap import NapSpec

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class VolumeEstimate:
    """The appendix C orthotope of a NAP region.

    Attributes
    ----------
    centre : the pseudo-centre (n,).
    lower, upper : the orthotope's corners (n,).
    log10_volume : ``sum_i log10(upper_i - lower_i)``; ``-inf`` when a side has no width.
    inside_share : Monte Carlo share of the orthotope's points that lie in ``R_P``.
    samples : how many points that share is based on.
    joint_scale : the joint orthotope's factor ``s`` in [0, 1] (see the module notes; NaN
        when not computed).
    joint_log10_volume : its ``log10`` volume, ``log10_volume + n log10(s)``.
    joint_inside_share : the Monte Carlo share measured at ``s`` (at least the target).
    """

    centre: FloatArray
    lower: FloatArray
    upper: FloatArray
    log10_volume: float
    inside_share: float
    samples: int
    joint_scale: float = math.nan
    joint_log10_volume: float = math.nan
    joint_inside_share: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "log10_volume": self.log10_volume,
            "inside_share": self.inside_share,
            "samples": self.samples,
            "joint_scale": self.joint_scale,
            "joint_log10_volume": self.joint_log10_volume,
            "joint_inside_share": self.joint_inside_share,
            "centre": self.centre.tolist(),
            "lower": self.lower.tolist(),
            "upper": self.upper.tolist(),
        }


def pseudo_centre(X: ArrayLike, *, max_points: int = 2000, random_state: int = 0) -> FloatArray:
    """``argmin_{x in X} max_{x' in X} ||x - x'||_inf`` (on a seeded sample when large)."""
    pts = np.atleast_2d(np.asarray(X, dtype=np.float64))
    if pts.shape[0] == 0:
        raise InputError("no covered points to take a pseudo-centre from")
    if pts.shape[0] > max_points:
        pick = np.random.default_rng(random_state).choice(pts.shape[0], max_points, False)
        pts = pts[pick]
    best, best_val = 0, math.inf
    for start in range(0, pts.shape[0], 256):
        block = pts[start : start + 256]
        radius = np.abs(block[:, None, :] - pts[None, :, :]).max(axis=2).max(axis=1)
        k = int(np.argmin(radius))
        if radius[k] < best_val:
            best, best_val = start + k, float(radius[k])
    return np.asarray(pts[best].copy())


def estimate_volume(
    spec: NapSpec,
    net: ReluNetwork,
    X: ArrayLike,
    *,
    steps: int = 30,
    walk: int = 32,
    samples: int = 2000,
    random_state: int = 0,
    joint_target: float | None = 0.99,
    joint_steps: int = 30,
) -> VolumeEstimate:
    """The orthotope estimate of ``R_P`` (see the module notes); ``X`` are data inputs, of
    which those the spec covers give the pseudo-centre. With ``joint_target`` (and
    ``samples`` > 0), also the joint orthotope (None: not computed)."""
    if joint_target is not None and not 0.0 < joint_target <= 1.0:
        raise InputError(f"joint_target must lie in (0, 1], got {joint_target}")
    xa = np.atleast_2d(np.asarray(X, dtype=np.float64))
    covered = xa[spec.contains(net, xa)]
    centre = pseudo_centre(covered, random_state=random_state)
    lo_dom, hi_dom = spec.domain.lo, spec.domain.hi
    n = centre.size
    lower, upper = centre.copy(), centre.copy()
    # Per dimension and direction: walk out on a grid of ``walk`` points to the first one
    # outside R_P ("until it extends beyond"), then binary search between the last point
    # inside and it. All 2n searches are batched.
    far = np.concatenate([hi_dom - centre, centre - lo_dom])  # how far each search may go
    sign = np.concatenate([np.ones(n), -np.ones(n)])
    dims = np.concatenate([np.arange(n), np.arange(n)])
    rows = np.arange(2 * n)
    ts = far[:, None] * (np.arange(1, walk + 1) / walk)[None, :]  # (2n, walk)
    pts = np.repeat(centre[None, :], 2 * n * walk, axis=0).reshape(2 * n, walk, n)
    pts[rows, :, dims] += sign[:, None] * ts
    inside = spec.contains(net, pts.reshape(-1, n)).reshape(2 * n, walk)
    first_out = np.where(~inside.all(axis=1), np.argmin(inside, axis=1), walk)
    good = np.where(first_out > 0, ts[rows, np.maximum(first_out - 1, 0)], 0.0)
    good[first_out == walk] = far[first_out == walk]
    bad = np.where(first_out < walk, ts[rows, np.minimum(first_out, walk - 1)], far)
    for _ in range(steps):
        todo = (first_out < walk) & (bad - good > 1e-12 * (1.0 + far))
        if not todo.any():
            break
        mid = 0.5 * (good + bad)
        probe = np.tile(centre, (2 * n, 1))
        probe[rows, dims] += sign * mid
        ok = spec.contains(net, probe)
        good = np.where(todo & ok, mid, good)
        bad = np.where(todo & ~ok, mid, bad)
    upper += good[:n]
    lower -= good[n:]
    widths = upper - lower
    log_vol = float(np.sum(np.log10(widths))) if np.all(widths > 0) else -math.inf
    share = math.nan
    joint = (math.nan, math.nan, math.nan)
    if samples > 0 and np.all(widths > 0):
        rng = np.random.default_rng(random_state)
        pts = lower + widths * rng.random((samples, n))
        share = float(spec.contains(net, pts).mean())
        if joint_target is not None:
            joint = _joint(spec, net, centre, pts, share, log_vol, joint_target, joint_steps)
    return VolumeEstimate(centre, lower, upper, log_vol, share, samples, *joint)


def _joint(
    spec: NapSpec,
    net: ReluNetwork,
    centre: FloatArray,
    pts: FloatArray,
    share: float,
    log_vol: float,
    target: float,
    steps: int,
) -> tuple[float, float, float]:
    """(s, log10 volume, share at s) of the joint orthotope: the same sample points, pulled
    towards the centre by ``s`` (common random numbers, so the shares at different ``s``
    are comparable); the largest ``s`` found by bisection whose share reaches ``target``.
    ``s = 0`` is the centre alone, which the spec covers (share 1)."""
    if share >= target:
        return 1.0, log_vol, share
    good, good_share, bad = 0.0, 1.0, 1.0
    for _ in range(steps):
        mid = 0.5 * (good + bad)
        got = float(spec.contains(net, centre + mid * (pts - centre)).mean())
        if got >= target:
            good, good_share = mid, got
        else:
            bad = mid
    vol = log_vol + centre.size * math.log10(good) if good > 0 else -math.inf
    return good, vol, good_share


def largest_verified_ball(
    net: ReluNetwork,
    label: int,
    centre: ArrayLike,
    domain_lo: ArrayLike,
    domain_hi: ArrayLike,
    verifier: Any,
    *,
    timeout: float | None = 60.0,
    steps: int = 12,
) -> float:
    """The largest ``eps`` in [0, 1] (to ``2^-steps``) for which the verifier proves class
    ``label`` on the box ``centre +- eps * (domain_hi - domain_lo)``, clipped to the domain:
    the local-robustness specification a NAP is compared with. The radius is relative to
    each feature's range (features on different scales, like WBC's, would make a plain
    L-inf ball meaningless); for inputs all in [0, 1] (MNIST) it is the plain L-inf ball.
    Only VERIFIED counts; 0 when even the smallest ball fails."""
    from relucid.domain import Box
    from relucid.verify.query import NapQuery, Status

    c = np.asarray(centre, dtype=np.float64)
    lo_d, hi_d = np.asarray(domain_lo, np.float64), np.asarray(domain_hi, np.float64)
    free = np.full(net.num_hidden, -1, dtype=np.int8)
    width = hi_d - lo_d
    good, bad = 0.0, 1.0
    for _ in range(steps):
        eps = 0.5 * (good + bad)
        box = Box(np.maximum(lo_d, c - eps * width), np.minimum(hi_d, c + eps * width))
        res = verifier.verify_nap(net, NapQuery(free, label, box), timeout)
        if res.status is Status.VERIFIED:
            good = eps
        else:
            bad = eps
    return good
