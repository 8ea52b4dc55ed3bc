"""Benchmark constraints and data: synthetic D(alpha, beta, m), ACAS Xu phi_2-phi_10, collision.

Paper: self-correcting-networks, appendix C (synthetic data) and section 5 (ACAS Xu, collision
avoidance). Everything random takes a ``random_state``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from relucid.enforce.constraints import (
    AllOf,
    AnyOf,
    Constraint,
    ConstraintSet,
    InputBox,
    Less,
    Out,
    Post,
)
from relucid.enforce.dnf import has_cycle, to_dnf
from relucid.errors import InputError, ModelFormatError
from relucid.io import data_dir

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


# --------------------------------------------------------------------------------------------
# Synthetic D(alpha, beta, m), appendix C
# --------------------------------------------------------------------------------------------
def _random_dag(m: int, gamma: float, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Edges ``(i, j)`` (``y_j < y_i``) of a random acyclic graph with at least one edge.

    Every ordered pair ``i != j`` is equally likely; the number of edges is
    ``1 + Binomial(m (m - 1), (gamma - 1) / (m (m - 1)))`` (mean ``gamma``), capped at
    ``m (m - 1) / 2``; graphs with a cycle are drawn again.
    """
    pairs = [(i, j) for i in range(m) for j in range(m) if i != j]
    p = min(max(gamma - 1.0, 0.0) / len(pairs), 1.0)
    while True:
        k = min(1 + int(rng.binomial(len(pairs), p)), m * (m - 1) // 2)
        chosen = [pairs[t] for t in rng.choice(len(pairs), size=k, replace=False)]
        if not has_cycle(tuple((j, i) for i, j in chosen)):
            return sorted(chosen)


def synthetic_constraints(
    alpha: int,
    beta: int,
    m: int,
    *,
    n: int = 10,
    eps: float = 0.4,
    gamma: float = 3.0,
    random_state: int = 0,
) -> ConstraintSet:
    """The ``alpha`` random constraints of D(alpha, beta, m), appendix C (i).

    Preconditions are boxes ``b_l <= x <= b_l + eps`` with ``b_l ~ U[0, 1 - eps]^n``;
    postconditions are disjunctions of ``beta`` random acyclic ordering graphs on ``m``
    classes with ``gamma`` edges expected (at least one).
    """
    if m < 2 or alpha < 1 or beta < 1:
        raise InputError("D(alpha, beta, m) needs alpha >= 1, beta >= 1, m >= 2")
    rng = np.random.default_rng(random_state)
    out = []
    for k in range(alpha):
        lo = rng.uniform(0.0, 1.0 - eps, size=n)
        terms: list[Post] = []
        for _ in range(beta):
            lits: list[Post] = [Less(j, i) for i, j in _random_dag(m, gamma, rng)]
            terms.append(lits[0] if len(lits) == 1 else AllOf(tuple(lits)))
        post = terms[0] if beta == 1 else AnyOf(tuple(terms))
        out.append(Constraint(InputBox(lo, lo + eps), post, f"s{k}"))
    return ConstraintSet(out, [f"x{i}" for i in range(n)], None)


@dataclass(frozen=True, eq=False)
class SyntheticData:
    """A sample of D(alpha, beta, m) with its constraints.

    Attributes
    ----------
    x : float32 (2N, n) inputs; y : int64 (2N,) labels consistent with the constraints.
    covered : bool (2N,): the input satisfies some precondition (half of the points).
    constraints : the ``alpha`` constraints.
    """

    x: NDArray[np.float32]
    y: IntArray
    covered: NDArray[np.bool_]
    constraints: ConstraintSet
    alpha: int
    beta: int
    num_classes: int


def synthetic_data(
    alpha: int,
    beta: int,
    m: int,
    *,
    n: int = 10,
    N: int = 2000,
    eps: float = 0.4,
    gamma: float = 3.0,
    effort: int = 5,
    random_state: int = 0,
) -> SyntheticData:
    """Draw D(alpha, beta, m) following appendix C.

    (ii) ``N / alpha`` points uniform in each precondition box; each is labelled with a root of
    the union of one randomly chosen disjunct per active constraint (up to ``effort`` random
    choices are tried until one is acyclic; points with none are dropped, as in the reference
    code). (iii) ``N`` points uniform in ``[0, 1]^n`` outside every precondition, labelled by
    the nearest labelled point of (ii) (the paper trains a network for this; a 1-nearest
    neighbour classifier is deterministic and fast, and the labels only need to be plausible).
    """
    cs = synthetic_constraints(alpha, beta, m, n=n, eps=eps, gamma=gamma, random_state=random_state)
    rng = np.random.default_rng(random_state + 1)
    dnfs = [to_dnf(c.post, m).terms for c in cs]
    boxes = [np.array([[a, b] for _, a, b in c.pre.bounds]) for c in cs]  # type: ignore[attr-defined]
    lo = np.array([b[:, 0] for b in boxes])  # (alpha, n)
    hi = np.array([b[:, 1] for b in boxes])

    def active(X: FloatArray) -> NDArray[np.bool_]:
        return np.all((X[:, None, :] >= lo) & (X[:, None, :] <= hi), axis=2)

    per = max(1, N // alpha)
    xs, ys = [], []
    for box in boxes:
        pts = box[:, 0] + (box[:, 1] - box[:, 0]) * rng.random((per, n))
        for x, row in zip(pts, active(pts), strict=True):
            act = np.flatnonzero(row)
            for _ in range(effort):
                union = frozenset(lit for k in act for lit in dnfs[k][rng.integers(len(dnfs[k]))])
                if not has_cycle(union):
                    below = {i for i, _ in union}
                    roots = [c for c in range(m) if c not in below]
                    xs.append(x)
                    ys.append(int(rng.choice(roots)))
                    break
    X_in, y_in = np.array(xs), np.array(ys, dtype=np.int64)
    outside: list[FloatArray] = []
    total = 0
    while total < N:
        cand = rng.random((4 * N, n))
        hit = active(cand).any(axis=1)
        outside.append(cand[~hit])
        total += int((~hit).sum())
    X_out = np.concatenate(outside)[:N]
    d = torch.cdist(torch.from_numpy(X_out), torch.from_numpy(X_in))
    y_out = y_in[d.argmin(dim=1).numpy()]
    X = np.concatenate([X_in, X_out])
    y = np.concatenate([y_in, y_out])
    covered = np.concatenate([np.ones(len(X_in), bool), np.zeros(len(X_out), bool)])
    order = rng.permutation(len(X))
    return SyntheticData(X[order].astype(np.float32), y[order], covered[order], cs, alpha, beta, m)


# --------------------------------------------------------------------------------------------
# ACAS Xu phi_2 .. phi_10 (max-logit convention: the networks' outputs negated)
# --------------------------------------------------------------------------------------------
ACAS_FEATURES = ("rho", "theta", "psi", "v_own", "v_int")
ACAS_CLASSES = ("COC", "WL", "WR", "SL", "SR")
#: Input normalisation of the ACAS Xu networks: ``(raw - mean) / range``.
ACAS_MEANS = (19791.091, 0.0, 0.0, 650.0, 600.0)
ACAS_RANGES = (60261.0, 6.28318530718, 6.28318530718, 1100.0, 1200.0)


def _acas_box(lo: list[float], hi: list[float]) -> InputBox:
    def norm(v: list[float]) -> list[float]:
        return [
            x if math.isinf(x) else (x - mu) / r
            for x, mu, r in zip(v, ACAS_MEANS, ACAS_RANGES, strict=True)
        ]

    return InputBox(norm(lo), norm(hi))


def acas_properties() -> dict[str, tuple[Constraint, list[tuple[int, int]]]]:
    """phi_2 .. phi_10 (Katz et al. 2017) as safe-ordering constraints, with their networks.

    In the maximal-logit convention (outputs negated), following the self-correcting-networks
    experiments; input bounds in physical units as in Katz et al. (infinite where the
    property leaves a side open), normalised with the networks' means and ranges.
    Networks are ``(i, j)`` of ``ACASXU_run2a_i_j``, 1-based.
    """
    inf = math.inf
    pi = math.pi
    COC, WL, WR, SL, SR = (Out(k) for k in range(5))
    all_nets = [(i, j) for i in range(1, 6) for j in range(1, 10)]
    not_1789 = [n for n in all_nets if n not in ((1, 7), (1, 8), (1, 9))]
    not_min_coc = (COC < SL) | (COC < WL) | (COC < WR) | (COC < SR)
    props = {
        "phi2": (
            Constraint(
                _acas_box([55947.691, -inf, -inf, 1145, -inf], [inf, inf, inf, inf, 60]),
                (COC > SL) | (COC > WL) | (COC > WR) | (COC > SR),
                "phi2",
            ),
            [n for n in all_nets if n[0] >= 2],
        ),
        "phi3": (
            Constraint(
                _acas_box([1500, -0.06, 3.10, 980, 960], [1800, 0.06, inf, inf, inf]),
                not_min_coc,
                "phi3",
            ),
            not_1789,
        ),
        "phi4": (
            Constraint(
                _acas_box([1500, -0.06, 0, 1000, 700], [1800, 0.06, 0, inf, 800]),
                not_min_coc,
                "phi4",
            ),
            not_1789,
        ),
        "phi5": (
            Constraint(
                _acas_box([250, 0.2, -pi, 100, 0], [400, 0.4, -pi + 0.005, 400, 400]),
                SR.is_max(),
                "phi5",
            ),
            [(1, 1)],
        ),
        "phi6": (
            Constraint(
                _acas_box([12000, 0.7, -pi, 100, 0], [62000, pi, -pi + 0.005, 1200, 1200])
                | _acas_box([12000, -pi, -pi, 100, 0], [62000, -0.7, -pi + 0.005, 1200, 1200]),
                COC.is_max(),
                "phi6",
            ),
            [(1, 1)],
        ),
        "phi7": (
            Constraint(
                _acas_box([0, -pi, -pi, 100, 0], [60760, pi, pi, 1200, 1200]),
                ((SL < WL) | (SL < COC) | (SL < WR) | (SL < SR))
                & ((SR < SL) | (SR < WL) | (SR < COC) | (SR < WR)),
                "phi7",
            ),
            [(1, 9)],
        ),
        "phi8": (
            Constraint(
                _acas_box([0, -pi, -0.1, 600, 600], [60760, -0.75 * pi, 0.1, 1200, 1200]),
                WL.is_max() | COC.is_max(),
                "phi8",
            ),
            [(2, 9)],
        ),
        "phi9": (
            Constraint(
                _acas_box([2000, -0.4, -pi, 100, 0], [7000, -0.14, -pi + 0.01, 150, 150]),
                SL.is_max(),
                "phi9",
            ),
            [(3, 3)],
        ),
        "phi10": (
            Constraint(
                _acas_box([36000, 0.7, -pi, 900, 600], [60760, pi, -pi + 0.01, 1200, 1200]),
                COC.is_max(),
                "phi10",
            ),
            [(4, 5)],
        ),
    }
    return props


def acas_constraints(network: tuple[int, int] | None = None) -> ConstraintSet:
    """The ACAS Xu constraints that apply to network ``(i, j)`` (all nine if ``None``)."""
    props = acas_properties()
    chosen = [c for c, nets in props.values() if network is None or tuple(network) in nets]
    return ConstraintSet(chosen, ACAS_FEATURES, ACAS_CLASSES)


def acas_network_path(i: int, j: int, root: Path | None = None) -> Path:
    """``acasxu/ACASXU_run2a_i_j_batch_2000.onnx`` under the shared data folder."""
    return (root or data_dir()) / "acasxu" / f"ACASXU_run2a_{i}_{j}_batch_2000.onnx"


def load_acas_art(
    i: int, j: int, split: str = "test", root: Path | None = None
) -> tuple[NDArray[np.float32], IntArray]:
    """``scnet/acas_art/acas_art.i.j.{train,test}.npz``: inputs (normalised) and labels
    (the advisory in the maximal-logit convention)."""
    p = (root or data_dir()) / "scnet" / "acas_art" / f"acas_art.{i}.{j}.{split}.npz"
    if not p.is_file():
        raise InputError(f"no such data file: {p}")
    with np.load(p) as d:
        return np.asarray(d["x"], dtype=np.float32), np.asarray(d["y"], dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Collision avoidance (scnet/collision)
# --------------------------------------------------------------------------------------------
def collision_constraints(root: Path | None = None) -> ConstraintSet:
    """The 500 box-to-order constraints: in box ``k``, class ``orders[k, 1]`` scores above
    class ``orders[k, 0]``."""
    p = (root or data_dir()) / "scnet" / "collision" / "properties.npz"
    if not p.is_file():
        raise InputError(f"no such data file: {p}")
    with np.load(p) as d:
        lbs, ubs, orders = d["lbs"], d["ubs"], d["orders"]
    cs = [
        Constraint(InputBox(lo, hi), Out(int(o[0])) < Out(int(o[1])), f"box{k}")
        for k, (lo, hi, o) in enumerate(zip(lbs, ubs, orders, strict=True))
    ]
    return ConstraintSet(cs, [f"x{i}" for i in range(lbs.shape[1])], ("c0", "c1"))


def load_collision(root: Path | None = None) -> tuple[NDArray[np.float64], IntArray]:
    """``scnet/collision/test.npz``: 3,000 inputs (6 features) and labels 0/1."""
    p = (root or data_dir()) / "scnet" / "collision" / "test.npz"
    if not p.is_file():
        raise InputError(f"no such data file: {p}")
    with np.load(p) as d:
        return np.asarray(d["x"], dtype=np.float64), np.asarray(d["y"], dtype=np.int64)


class CollisionNet(nn.Module):
    """The collision classifier of the paper: Dense(6, 40) ReLU, max-pool 4 / stride 2 over the
    40 units, Dense(19, 19) ReLU, Dense(19, 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 40)
        self.pool = nn.MaxPool1d(4, stride=2)
        self.fc2 = nn.Linear(19, 19)
        self.fc3 = nn.Linear(19, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        h = self.pool(h.unsqueeze(1)).squeeze(1)
        return self.fc3(torch.relu(self.fc2(h)))


def load_collision_model(root: Path | None = None) -> CollisionNet:
    """Read ``scnet/collision/original.h5`` (Keras weights; needs ``h5py``)."""
    p = (root or data_dir()) / "scnet" / "collision" / "original.h5"
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ModelFormatError("reading the Keras collision model needs h5py") from exc
    if not p.is_file():
        raise ModelFormatError(f"no such model file: {p}")
    net = CollisionNet()
    with h5py.File(p, "r") as f, torch.no_grad():
        g = f["model_weights"]
        for lin, name in ((net.fc1, "dense_4"), (net.fc2, "dense_5"), (net.fc3, "dense_6")):
            kernel = np.asarray(g[name][name]["kernel:0"])
            bias = np.asarray(g[name][name]["bias:0"])
            if kernel.shape != (lin.in_features, lin.out_features):
                raise ModelFormatError(f"{p}: {name} has shape {kernel.shape}")
            lin.weight.copy_(torch.from_numpy(kernel.T.copy()))
            lin.bias.copy_(torch.from_numpy(bias))
    return net.eval()
