"""Batched graph algorithms on ordering graphs (paper: self-correcting-networks, appendix B).

An ordering graph on ``m`` classes is a boolean adjacency tensor ``adj`` of shape
``(..., m, m)`` with ``adj[..., i, j]`` true for an edge ``i -> j``, which stands for the literal
``y_j < y_i`` (``i`` must score above ``j``). Every function here works on any leading batch
shape, on any device, without a Python loop over graphs.

* :func:`longest_paths` is the all-pairs-longest-paths matrix ``P`` of appendix B.2, computed by
  max-plus squaring exactly as the paper does: ``P`` starts as ``0`` on the diagonal, ``1`` on
  edges and ``-inf`` elsewhere, and ``ceil(log2 m)`` squarings in the ``(max, +)`` semiring
  give path lengths up to ``m``. A cycle exists iff some ``P_ii > 0``; ``i`` is an ancestor of
  ``j`` iff ``P_ij >= 0``; the depth of ``j`` is ``max_i P_ij``. Each product costs
  ``O(m^3)`` element-wise operations and cannot use a BLAS kernel.
* :func:`ancestors` and :func:`peel` compute the same three quantities faster, and are what the
  safety layer runs: the map ``P -> [P >= 0]`` sends the ``(max, +)`` semiring onto the Boolean
  ``(or, and)`` semiring, so the same squaring recurrence on ``[adj or I]`` in the Boolean
  semiring yields ``[P >= 0]`` (ancestry) with one float matrix product per step (BLAS);
  parallel peeling (repeatedly removing the nodes with no remaining parent, Dekel, Nassimi and
  Sahni's layering) removes node ``j`` in round ``max_i P_ij`` when the graph is acyclic, and
  leaves the nodes on or below a cycle unremoved. The tests check both against
  :func:`longest_paths`.
* :func:`permute_logits` is the stable topological sort of appendix B.1.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _steps(m: int) -> int:
    return max(1, math.ceil(math.log2(max(m, 2))))


def longest_paths(adj: Tensor) -> Tensor:
    """All-pairs longest paths by max-plus squaring (appendix B.2).

    Parameters
    ----------
    adj : bool tensor (..., m, m), ``adj[..., i, j]`` for an edge ``i -> j``.

    Returns
    -------
    P : float32 tensor (..., m, m). On an acyclic graph ``P_ij`` is the length of the longest
        path from ``i`` to ``j`` (``0`` on the diagonal, ``-inf`` when there is none). On a
        graph with a cycle through ``i``, ``P_ii > 0``.
    """
    m = adj.shape[-1]
    neg = torch.tensor(float("-inf"), device=adj.device)
    P = torch.where(adj, torch.ones((), device=adj.device), neg)
    eye = torch.eye(m, dtype=torch.bool, device=adj.device)
    P = torch.where(eye, P.clamp(min=0.0), P)
    for _ in range(_steps(m)):
        # (P (x) P)_ij = max_k P_ik + P_kj through a (..., m, m, m) temporary
        P = (P.unsqueeze(-1) + P.unsqueeze(-3)).amax(dim=-2)
    return P


def ancestors(adj: Tensor) -> Tensor:
    """Reflexive-transitive closure: ``anc[..., i, j]`` iff ``i == j`` or a path ``i -> j``.

    The Boolean image of :func:`longest_paths` (``anc == (P >= 0)``): ``ceil(log2 m)``
    squarings of ``adj or I``, each one float matrix product (exact: entries count at most
    ``m < 2^24`` paths).
    """
    m = adj.shape[-1]
    eye = torch.eye(m, dtype=torch.bool, device=adj.device)
    R = (adj | eye).to(torch.float32)
    for _ in range(_steps(m)):
        R = (torch.matmul(R, R) > 0).to(torch.float32)
    return R > 0


def peel(adj: Tensor, early_exit: bool = True) -> tuple[Tensor, Tensor]:
    """Parallel peeling: depth of every node and whether each graph is acyclic.

    Round ``r`` removes every remaining node that has no remaining parent and gives it depth
    ``r``; on an acyclic graph that is the length of the longest path ending at the node
    (``max_i P_ij``), reached after at most ``m`` rounds. Nodes on or below a cycle are never
    removed and get depth ``m``.

    Parameters
    ----------
    adj : bool tensor (..., m, m).
    early_exit : stop as soon as a round removes nothing (one host synchronisation per
        round); ``False`` runs exactly ``m`` rounds (fixed shapes, for export).

    Returns
    -------
    depth : int64 tensor (..., m).
    acyclic : bool tensor (...).
    """
    m = adj.shape[-1]
    a = adj.to(torch.float32)
    alive = torch.ones(adj.shape[:-1], dtype=torch.float32, device=adj.device)
    depth = torch.full(adj.shape[:-1], m, dtype=torch.int64, device=adj.device)
    for r in range(m):
        # live parents of j: sum_i alive_i adj_ij, one batched matrix-vector product
        has_parent = (alive.unsqueeze(-2) @ a).squeeze(-2) > 0
        removed = (alive > 0) & ~has_parent
        depth = torch.where(removed, r, depth)
        alive = alive * has_parent.to(torch.float32)
        if early_exit and not bool(removed.any()):
            break
    return depth, alive.amax(dim=-1) == 0


def descending_ranks(y: Tensor, pairwise: bool = False) -> Tensor:
    """Position of each logit in the descending order of its row (ties: lower index first).

    ``pairwise`` counts ``#{i : y_i > y_j or (y_i == y_j and i < j)}`` with ``O(m^2)``
    comparisons instead of sorting (same result; exports without a sort operator).
    """
    m = y.shape[-1]
    idx = torch.arange(m, device=y.device)
    if pairwise:
        yi, yj = y.unsqueeze(-1), y.unsqueeze(-2)  # [i, j]
        before = (yi > yj) | ((yi == yj) & (idx.view(-1, 1) < idx.view(1, -1)))
        return before.sum(dim=-2)
    perm = torch.sort(y, dim=-1, descending=True, stable=True).indices
    return torch.empty_like(perm).scatter_(-1, perm, idx.expand_as(perm))


def permute_logits(y: Tensor, anc: Tensor, depth: Tensor, pairwise: bool = False) -> Tensor:
    """Stable topological sort of appendix B.1: permute ``y`` to respect the ordering graph.

    Each class ``j`` is lowered to the smallest logit among its ancestors and itself,
    ``v_j = min { y_i : anc[i, j] }``; classes are ordered by ``v`` descending, ties broken by
    depth ascending (then by index), and the ``k``-th class in that order receives the
    ``k``-th largest value of ``y``. Every edge ``i -> j`` has ``v_i >= v_j`` and
    ``depth_i < depth_j``, so ``i`` comes first and ends above ``j`` whenever the values of
    ``y`` are distinct (Property 8). A root keeps ``v = y``, so when the arg-max class is a root
    it stays first (Lemma 1, transparency).

    ``v`` is handled through ranks so that the sort key is an exact integer,
    ``(rank of v_j) * m^2 + depth_j * m + j``, with no ties.

    Parameters
    ----------
    y : float tensor (N, m); anc : bool (N, m, m); depth : int64 (N, m).
    pairwise : rank by ``O(m^2)`` comparisons instead of sorting (for export).

    Returns
    -------
    Tensor (N, m), a permutation of each row of ``y``.
    """
    m = y.shape[-1]
    rank = descending_ranks(y, pairwise)
    # narrow integers halve the (N, m, m) temporary; onnxruntime's ReduceMax wants int32+
    small = torch.int16 if m < 2**15 and not pairwise else torch.int32
    # rank of v_j = largest rank (smallest value) among the ancestors of j
    vrank = torch.where(anc, rank.to(small).unsqueeze(-1), -1).amax(dim=-2).to(torch.int64)
    idx = torch.arange(m, device=y.device)
    key = (vrank * m + depth) * m + idx
    if pairwise:
        pos = (key.unsqueeze(-1) < key.unsqueeze(-2)).sum(dim=-2)  # position of class j
        vals = torch.empty_like(y).scatter(-1, rank, y)  # vals[k]: k-th largest
        return vals.gather(-1, pos)
    order = torch.argsort(key, dim=-1)
    vals = torch.sort(y, dim=-1, descending=True).values
    return torch.empty_like(y).scatter_(-1, order, vals)
