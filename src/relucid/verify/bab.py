r"""Branch and bound on hidden neurons with optimised bounds (beta-CROWN style).

A query's terms that the optimised bounds leave open
(:func:`~relucid.verify.tightening.crown_terms`) are split on an unstable free neuron: one
child fixes it active (``z >= 0``), the other inactive (``z <= 0``). The children's regions
cover the parent's, and each child is itself a NAP query: the fixed neuron enters
:class:`~relucid.verify.crown.CrownBounds` as one more multiplier (beta-CROWN, Wang et al.
2021). A term is impossible once it is impossible in every leaf.

* **Batched.** Up to ``batch`` domains are bounded in one optimisation (tensors
  ``(D, S, n)``), warm-started from the query's own optimum (any slopes in ``[0, 1]`` and
  multipliers ``>= 0`` give valid bounds).
* **Branching.** The free unstable neuron whose chord costs the open rows the most (the
  BaBSR intercept score: ``sum_s max(-mu_s, 0) * u l / (u - l)`` with ``mu`` the bound's
  coefficient on the neuron's output).
* **Counterexamples.** Each bound comes with the box corner that minimises its linear
  function; the corners of the rows left open go to ``replay`` (the caller's independent
  check: the query's NAP and a violated term), so a leaf can also falsify.
* **Sound bookkeeping.** A domain is dropped only when every open term has a row whose
  proved lower bound exceeds its ``d`` there. Intermediate bounds stay the query's, which
  remain valid on every sub-region (tighter per-domain ones are left for later).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from relucid.verify.bounds import Bounds
from relucid.verify.crown import CrownBounds, Relax

FloatArray = NDArray[np.float64]
Int8Array = NDArray[np.int8]


@dataclass
class BabOutcome:
    """``status``: ``"verified"`` (every open term impossible), ``"falsified"`` (``x``
    violates term ``term``, checked by ``replay``) or ``"open"`` (out of time or domains;
    ``open_terms`` are the terms some leaf still leaves open)."""

    status: str
    open_terms: list[int]
    domains: int
    x: FloatArray | None = None
    term: int | None = None


def bab_terms(
    crown: CrownBounds,
    nap: Int8Array,
    bounds: Bounds,
    cs: Sequence[FloatArray],
    ds: Sequence[FloatArray],
    open_terms: list[int],
    deadline: float | None,
    *,
    replay: Callable[[FloatArray, int], bool] | None = None,
    batch: int = 32,
    max_domains: int = 20000,
    iterations: int = 100,
) -> BabOutcome:
    """Settle ``open_terms`` (each ``C_t y <= d_t`` over the region of ``nap``) by branching
    on hidden neurons (see the module notes). ``replay(x, t)`` is the caller's check that
    ``x`` obeys the query (its NAP and input rows) and violates term ``t``; without it no
    counterexample is looked for. Stops at ``deadline`` or after ``max_domains`` bounded
    domains with status ``"open"``."""
    terms = [t for t in open_terms if cs[t].shape[0]]
    if len(terms) < len(open_terms) or not terms:
        return BabOutcome("open", list(open_terms), 0)
    rows = np.vstack([cs[t] for t in terms])
    d_all = np.concatenate([ds[t] for t in terms])
    owner = np.concatenate([np.full(cs[t].shape[0], k) for k, t in enumerate(terms)])
    spec1 = torch.tensor(rows)[None]
    stop1 = torch.tensor(d_all)[None]
    lowers = [torch.tensor(a) for a in bounds.lower[:-1]]
    uppers = [torch.tensor(a) for a in bounds.upper[:-1]]
    offs = crown.net.layer_offsets
    n_layers = crown.num_hidden_layers
    lo_flat = np.concatenate(bounds.lower[:-1])
    hi_flat = np.concatenate(bounds.upper[:-1])
    # the chord's intercept per unstable neuron: u (-l) / (u - l)
    icpt = np.where(bounds.unstable, hi_flat * -lo_flat / np.maximum(hi_flat - lo_flat, 1e-12), 0.0)
    warm = None  # the root's optimum: the start of every later batch

    # each domain: its NAP and which terms are still open in it
    queue: list[tuple[Int8Array, NDArray[np.bool_]]] = [(nap.copy(), np.ones(len(terms), bool))]
    open_any = np.zeros(len(terms), bool)
    done = 0
    while queue:
        if deadline is not None and time.perf_counter() > deadline:
            break
        if done >= max_domains:
            break
        take, queue = queue[:batch], queue[batch:]
        naps = np.stack([p for p, _ in take])
        D = naps.shape[0]
        nap_t = torch.as_tensor(naps.astype(np.int64))
        relax = [
            Relax.of(
                lowers[k][None].expand(D, -1),
                uppers[k][None].expand(D, -1),
                nap_t[:, offs[k] : offs[k + 1]],
            )
            for k in range(n_layers)
        ]
        spec = spec1.expand(D, -1, -1).contiguous()

        def grow(t: torch.Tensor | None, D: int = D) -> torch.Tensor | None:
            return None if t is None else t.expand(D, -1, -1).contiguous()

        res = crown.optimise(
            n_layers,
            spec,
            relax,
            iterations,
            alpha=None if warm is None else [grow(a) for a in warm.alpha],
            beta=None if warm is None else [grow(b) for b in warm.beta],
            gamma=None if warm is None else grow(warm.gamma),
            deadline=deadline,
            want_mu=True,
            stop_above=stop1.expand(D, -1),
        )
        done += D
        if warm is None:
            warm = res
        low = res.lower.numpy()  # (D, S)
        proved = low > d_all[None, :]
        for i, (p, still) in enumerate(take):
            open_now = still.copy()
            for k in np.flatnonzero(still):
                if proved[i, owner == k].any():
                    open_now[k] = False
            if not open_now.any():
                continue
            failing = ~proved[i] & open_now[owner]
            if replay is not None and res.x is not None:
                for s in np.flatnonzero(failing):
                    x = res.x[i, s].numpy().astype(np.float64)
                    t = terms[int(owner[s])]
                    if replay(x, t):
                        return BabOutcome("falsified", [t], done, x, t)
            # branch: the free unstable neuron whose chord costs the open rows most;
            # res.mu[k] is the bound's coefficient on hidden layer k's outputs (D, S, n_k)
            score = np.zeros(p.size)
            for layer in range(n_layers):
                mu = res.mu[layer][i][torch.as_tensor(failing)].numpy()
                score[offs[layer] : offs[layer + 1]] = np.maximum(-mu, 0.0).sum(axis=0)
            score = score * icpt * (p == -1)
            j = int(np.argmax(score))
            if score[j] <= 0:
                open_any |= open_now  # nothing left to split on
                continue
            for state in (1, 0):
                child = p.copy()
                child[j] = state
                queue.append((child, open_now))
    if queue or open_any.any():
        left = open_any.copy()
        for _, still in queue:
            left |= still
        return BabOutcome("open", [terms[k] for k in np.flatnonzero(left)], done)
    return BabOutcome("verified", [], done)
