"""A quick falsifier: projected gradient descent inside the domain, penalising NAP violations.

The verifier runs it before any MILP (verifier issue, engine item 2): most false claims have
counterexamples that a few dozen gradient steps find, for far less than a MILP costs. It
proves nothing by itself. A candidate counts only after the caller replays it through a plain
forward pass (:meth:`~relucid.verify.NapQuery.violated_by`,
:meth:`~relucid.verify.VnnProperty.check_counterexample`).

The loss of one start aimed at the output term ``C y <= d`` is

    max_i (C y - d)_i + penalty * sum_i relu(-s_i z_i) + penalty * sum_r relu(A_r x - b_r),

where ``s_i = +1`` for fixed-active and ``-1`` for fixed-inactive neurons. It is zero or less
exactly at a counterexample. Each step moves every coordinate by ``step * (hi - lo)`` against
the sign of the gradient (the L-inf steepest descent step) and clips to the box; the step
shrinks geometrically. Gradients are written out by hand in numpy: for the small networks of
the NAP queries this beats a framework's per-call overhead by far.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.domain import Box
from relucid.network import ReluNetwork

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class AttackResult:
    """The starts' best points, in order of loss (lowest first), and the work done."""

    points: FloatArray
    losses: FloatArray
    terms: NDArray[np.int64]
    steps: int


def _forward(net: ReluNetwork, x: FloatArray) -> tuple[list[FloatArray], FloatArray]:
    """The hidden pre-activations (kept for the backward pass) and the outputs of a batch."""
    zs: list[FloatArray] = []
    h = x
    for k, (w, bias) in enumerate(zip(net.weights, net.biases, strict=True)):
        z = h @ w.T + bias
        if k < len(net.weights) - 1:
            zs.append(z)
            h = np.maximum(z, 0.0)
        else:
            h = z
    return zs, h


def _backward(
    net: ReluNetwork, zs: list[FloatArray], g_y: FloatArray, g_zs: list[FloatArray] | None = None
) -> FloatArray:
    """The gradient in x of a loss with gradient ``g_y`` in the outputs and ``g_zs`` in the
    hidden pre-activations (added where given)."""
    g = g_y
    for k in range(len(net.weights) - 1, -1, -1):
        g_h = g @ net.weights[k]
        if k == 0:
            return np.asarray(g_h)
        g = g_h * (zs[k - 1] > 0) + (g_zs[k - 1] if g_zs is not None else 0.0)
    raise AssertionError("unreachable")


def pgd_attack(
    net: ReluNetwork,
    box: Box,
    terms: Sequence[tuple[ArrayLike, ArrayLike]],
    *,
    nap: ArrayLike | None = None,
    A: ArrayLike | None = None,
    b: ArrayLike | None = None,
    starts: ArrayLike | None = None,
    restarts: int = 8,
    steps: int = 40,
    step: float = 0.1,
    decay: float = 0.93,
    penalty: float = 10.0,
    seed: int = 0,
    max_starts: int | None = 64,
    deadline: float | None = None,
) -> AttackResult:
    """Search for ``x`` in the domain, obeying ``nap``, with ``C_t f(x) <= d_t`` for some term.

    Parameters
    ----------
    net, box : the network and the input box (finite).
    terms : the unsafe output set as a disjunction of ``(C_t, d_t)``; every start attacks
        every term.
    nap : int8 per hidden neuron (1 active, 0 inactive, -1 free), or None.
    A, b : extra domain half-spaces ``A x <= b``.
    starts : extra start points (B, n), e.g. inputs known to obey the NAP; the box centre
        and ``restarts`` uniform random points are always used.
    restarts, steps, step, decay, penalty, seed : the search's budget and schedule.
    max_starts : keep only this many (start, term) pairs of ``starts``, the ones with the
        lowest loss at the first step (None: all). A NAP query passes every training input
        that obeys the NAP (hundreds on MNIST, times nine terms); descending from all of them
        cost 60% of a mnist-256x4 query, and the closest ones are where a counterexample is.
    deadline : ``time.perf_counter()`` value after which no further step is taken (the
        best points so far are returned).

    Returns
    -------
    AttackResult
        Every start's best point (lowest loss seen), sorted by loss; losses ``<= 0`` are
        candidates for the replay.
    """
    lo, hi = box.lo.astype(np.float64), box.hi.astype(np.float64)
    n = net.input_dim
    rng = np.random.default_rng(seed)
    base = [0.5 * (lo + hi)[None, :], lo + (hi - lo) * rng.random((restarts, n))]
    if starts is not None:
        base.append(np.clip(np.atleast_2d(np.asarray(starts, np.float64)), lo, hi))
    x0 = np.concatenate(base)
    cs = [np.atleast_2d(np.asarray(c, np.float64)) for c, _ in terms]
    ds = [np.asarray(d, np.float64).reshape(-1) for _, d in terms]
    t_idx = np.repeat(np.arange(len(terms)), x0.shape[0])
    x = np.tile(x0, (len(terms), 1))
    from_starts = np.tile(np.arange(x0.shape[0]) > restarts, len(terms))
    fixed = None if nap is None else np.asarray(nap).reshape(-1)
    sign = None if fixed is None else np.where(fixed == 1, 1.0, np.where(fixed == 0, -1.0, 0.0))
    a_mat = None if A is None else np.atleast_2d(np.asarray(A, np.float64))
    b_vec = None if b is None else np.asarray(b, np.float64).reshape(-1)
    offs = net.layer_offsets
    width = hi - lo
    best_x = x.copy()
    best = np.full(x.shape[0], np.inf)
    alpha = step
    done = 0
    for it in range(steps + 1):
        zs, y = _forward(net, x)
        # Output loss per row and its gradient in y.
        loss = np.empty(x.shape[0])
        g_y = np.zeros_like(y)
        for t, (c, d) in enumerate(zip(cs, ds, strict=True)):
            rows = t_idx == t
            if c.shape[0] == 0:
                loss[rows] = -np.inf
                continue
            r = y[rows] @ c.T - d
            arg = r.argmax(axis=1)
            loss[rows] = r[np.arange(r.shape[0]), arg]
            g_y[rows] = c[arg]
        # Penalties and their gradients in z.
        g_zs = [np.zeros_like(z) for z in zs]
        if sign is not None:
            for k, z in enumerate(zs):
                s = sign[offs[k] : offs[k + 1]]
                viol = np.maximum(-s * z, 0.0)
                loss += penalty * viol.sum(axis=1)
                g_zs[k] = penalty * np.where(viol > 0, -s, 0.0)
        g_x = np.zeros_like(x)
        if a_mat is not None and b_vec is not None and b_vec.size:
            over = x @ a_mat.T - b_vec
            loss += penalty * np.maximum(over, 0.0).sum(axis=1)
            g_x += penalty * (over > 0) @ a_mat
        if it == 0 and max_starts is not None and from_starts.sum() > max_starts:
            ranked = np.flatnonzero(from_starts)[np.argsort(loss[from_starts], kind="stable")]
            keep = np.sort(np.concatenate([np.flatnonzero(~from_starts), ranked[:max_starts]]))
            x, y, loss, g_y, g_x, t_idx = (
                x[keep],
                y[keep],
                loss[keep],
                g_y[keep],
                g_x[keep],
                t_idx[keep],
            )
            zs = [z[keep] for z in zs]
            g_zs = [g[keep] for g in g_zs]
            best, best_x = best[keep], best_x[keep]
        improved = loss < best
        best[improved] = loss[improved]
        best_x[improved] = x[improved]
        if it == steps or (deadline is not None and time.perf_counter() > deadline):
            break
        g_x += _backward(net, zs, g_y, g_zs)
        x = np.clip(x - alpha * width * np.sign(g_x), lo, hi)
        alpha *= decay
        done += 1
    order = np.argsort(best, kind="stable")
    return AttackResult(best_x[order], best[order], t_idx[order], done)


def cw_attack(
    net: ReluNetwork,
    box: Box,
    label: int,
    starts: ArrayLike,
    *,
    steps: int = 100,
    lr: float = 0.05,
    c_values: Sequence[float] = (0.1, 1.0, 10.0),
    kappa: float = 0.0,
) -> FloatArray:
    """Carlini-Wagner L2 attack: misclassified inputs of the box close to ``starts``.

    Each start ``x0`` (class ``label``) is attacked in the change of variables
    ``x = lo + (hi - lo) (tanh w + 1) / 2`` (so ``x`` never leaves the box), minimising

        || (x - x0) / (hi - lo) ||^2 + c * max(y_label - max_{j != label} y_j + kappa, 0)

    with Adam, for each ``c`` of ``c_values`` in turn (the paper's binary search on ``c``
    made coarse); a start keeps its closest misclassified point over all ``c``. Gradients
    are written out by hand, as in :func:`pgd_attack`. Returns the misclassified points found
    (forward pass ``argmax != label``), one per successful start.
    """
    lo, hi = box.lo.astype(np.float64), box.hi.astype(np.float64)
    width = np.maximum(hi - lo, 1e-12)
    x0 = np.clip(np.atleast_2d(np.asarray(starts, np.float64)), lo, hi)
    if x0.size == 0:
        return np.zeros((0, net.input_dim))
    u0 = np.clip(2.0 * (x0 - lo) / width - 1.0, -1 + 1e-6, 1 - 1e-6)
    best = np.full(x0.shape[0], np.inf)
    best_x = np.full_like(x0, np.nan)
    others = np.arange(net.output_dim) != label
    for c in c_values:
        w = np.arctanh(u0)
        m = np.zeros_like(w)
        v = np.zeros_like(w)
        for it in range(1, steps + 1):
            t = np.tanh(w)
            x = lo + width * (t + 1.0) / 2.0
            zs, y = _forward(net, x)
            rival = np.where(others, y, -np.inf).argmax(axis=1)
            margin = y[:, label] - y[np.arange(len(y)), rival]
            dist = (((x - x0) / width) ** 2).sum(axis=1)
            adv = margin < 0
            closer = adv & (dist < best)
            best[closer] = dist[closer]
            best_x[closer] = x[closer]
            active = margin + kappa > 0
            g_y = np.zeros_like(y)
            g_y[active, label] = c
            g_y[np.flatnonzero(active), rival[active]] = -c
            g_x = 2.0 * (x - x0) / width**2 + _backward(net, zs, g_y)
            g_w = g_x * width / 2.0 * (1.0 - t**2)
            m = 0.9 * m + 0.1 * g_w
            v = 0.999 * v + 0.001 * g_w**2
            w = w - lr * (m / (1 - 0.9**it)) / (np.sqrt(v / (1 - 0.999**it)) + 1e-8)
    found = np.isfinite(best)
    pts = best_x[found]
    if pts.size:
        pts = pts[net.forward(pts).argmax(axis=1) != label]
    return np.asarray(pts)
