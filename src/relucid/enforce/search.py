"""The search of the self-correcting layer: one DNF term per active constraint, acyclic union.

Paper: self-correcting-networks (Leino et al. 2022), Algorithm 3.1 and appendix B, as
described in ``DESIGN.md``, section "Enforce"; step 2 of :mod:`~relucid.enforce.layer`.

The search is vectorised as a beam over the active constraints: at each level every kept
partial choice is extended by every term of the next constraint, cyclic unions are pruned
(parallel peeling on a batch of graphs), and the first ``beam_width`` survivors in
lexicographic order are kept. A lexicographically first complete choice is never lost to the
truncation (if one survives, the first one does), so the result is exact unless the beam is
truncated *and* no choice is found; such rows are reported.

Pure functions over the layer's term tables (:class:`TermTables`), which
:class:`~relucid.enforce.layer.SafetyLayer` passes in from its buffers on every call.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from relucid.enforce.graph import peel
from relucid.enforce.output import _CORRECTED, _CORRECTED_LIMIT, _LIMIT, _UNSAT


class TermTables(NamedTuple):
    """The DNF terms of the postconditions as the search reads them (``T`` terms, ``K``
    constraints, ``m`` classes).

    Attributes
    ----------
    con_terms : int64 (K, beta), the term indices of each constraint, padded with -1.
    adj : bool (T + 1, m, m), the ordering graph of each term (edge ``j -> i`` for
        ``y_i < y_j``); the last term is empty (a skipped level).
    root : bool (T + 1, m), the classes without incoming edge in each term.
    empty : ``T``, the index of the empty term.
    num_classes : ``m``.
    """

    con_terms: Tensor
    adj: Tensor
    root: Tensor
    empty: int
    num_classes: int


def _union_acyclic(F: Tensor, T: Tensor, static: bool) -> Tensor:
    """Whether each union ``F[g, w] or T[g, b]`` is acyclic: bool (G, w, beta).

    Parallel peeling (see :func:`~relucid.enforce.graph.peel`) of all ``w x beta`` unions
    without building them: the live parents of node ``j`` in the union are counted as
    ``alive @ F + alive @ T``, two batched matrix products per round.

    Parameters
    ----------
    F : float (G, w, m, m) 0/1 adjacency of the partial unions; T : float (G, beta, m, m).
    static : fixed shapes and loop counts (export); otherwise stop once nothing changes.
    """
    G, w, m, _ = F.shape
    beta = T.shape[1]
    # small (or fixed-shape, where no branch may depend on the batch size): build the unions
    # and peel them, one product per round
    if static or G * w * beta * m * m <= 1 << 18:
        U = torch.maximum(F.unsqueeze(2), T.unsqueeze(1)).reshape(G * w * beta, m, m)
        return peel(U, early_exit=not static)[1].view(G, w, beta)
    alive = torch.ones((G, w, beta, m), dtype=F.dtype, device=F.device)
    Ff, Tf = F.reshape(G * w, m, m), T.reshape(G * beta, m, m)
    for _ in range(m):
        via_f = (alive.reshape(G * w, beta, m) @ Ff).view(G, w, beta, m)
        at = alive.transpose(1, 2).reshape(G * beta, w, m)
        via_t = (at @ Tf).view(G, beta, w, m).transpose(1, 2)
        has_parent = (via_f + via_t) > 0
        removed = (alive > 0) & ~has_parent
        alive = alive * has_parent.to(alive.dtype)
        if not bool(removed.any()):
            break
    return alive.amax(dim=-1) == 0


def search(
    tables: TermTables,
    act: Tensor,
    top: Tensor,
    static: bool,
    beam_width: int,
    chunk_elements: int,
) -> tuple[Tensor, Tensor]:
    """First acyclic choice per group (phase 1: top class a root; phase 2: any).

    Parameters
    ----------
    tables : the term tables.
    act : bool (G, K), the active constraints of each group; top : int64 (G,), its top class.
    static : fixed shapes and loop counts (export); otherwise data-dependent (dynamic).
    beam_width, chunk_elements : as in :class:`~relucid.enforce.output.SafetyConfig`.

    Returns the union adjacency of the choice (G, m, m) (empty where none) and a status
    per group (int64): CORRECTED, CORRECTED_LIMIT, UNSATISFIABLE or SEARCH_LIMIT.
    """
    G, K = act.shape
    if static:
        lvl_con = torch.arange(K, device=act.device).expand(G, K)
        lvl_ok = act
    else:
        order = torch.argsort((~act).to(torch.uint8), dim=1, stable=True)
        n = act.sum(dim=1)
        L = int(n.max()) if G else 0
        lvl_con = order[:, :L]
        lvl_ok = torch.arange(L, device=act.device) < n.unsqueeze(1)
    found1, adj1, trunc1 = _beam(
        tables, lvl_con, lvl_ok, top, True, static, beam_width, chunk_elements
    )
    if static:
        found2, adj2, trunc2 = _beam(
            tables, lvl_con, lvl_ok, top, False, static, beam_width, chunk_elements
        )
    else:
        found2 = torch.zeros_like(found1)
        adj2 = torch.zeros_like(adj1)
        trunc2 = torch.zeros_like(trunc1)
        rest = (~found1).nonzero().squeeze(1)
        if rest.numel():
            f, ad, tr = _beam(
                tables,
                lvl_con[rest],
                lvl_ok[rest],
                top[rest],
                False,
                static,
                beam_width,
                chunk_elements,
            )
            found2[rest], adj2[rest], trunc2[rest] = f, ad, tr
    f1 = found1.view(-1, 1, 1)
    adj = (f1 & adj1) | (~f1 & adj2)  # boolean select (onnxruntime has no bool Where)
    status = torch.where(
        found1,
        _CORRECTED,
        torch.where(
            found2,
            torch.where(trunc1, _CORRECTED_LIMIT, _CORRECTED),
            torch.where(trunc2, _LIMIT, _UNSAT),
        ),
    )
    return adj, status


def _beam(
    tables: TermTables,
    lvl_con: Tensor,
    lvl_ok: Tensor,
    top: Tensor,
    keep_top: bool,
    static: bool,
    beam_width: int,
    chunk_elements: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Level-wise beam search; see the module docstring. Chunked over groups if dynamic."""
    G = lvl_con.shape[0]
    m = tables.num_classes
    beta = tables.con_terms.shape[1]
    W = beam_width
    per_group = W * (beta + 1) * m * m
    step = G if static else max(1, chunk_elements // max(per_group, 1))
    if step >= G:
        return _beam_chunk(tables, lvl_con, lvl_ok, top, keep_top, static, W)
    parts = [
        _beam_chunk(
            tables,
            lvl_con[s : s + step],
            lvl_ok[s : s + step],
            top[s : s + step],
            keep_top,
            static,
            W,
        )
        for s in range(0, G, step)
    ]
    return tuple(torch.cat(p, dim=0) for p in zip(*parts, strict=True))  # type: ignore[return-value]


def _beam_chunk(
    tables: TermTables,
    lvl_con: Tensor,
    lvl_ok: Tensor,
    top: Tensor,
    keep_top: bool,
    static: bool,
    beam_width: int,
) -> tuple[Tensor, Tensor, Tensor]:
    G, L = lvl_con.shape
    m = tables.num_classes
    dev = lvl_con.device
    W = beam_width
    # partial unions as 0/1 float adjacency: every graph step below is a matrix product
    frontier = torch.zeros((G, 1, m, m), dtype=torch.float32, device=dev)
    valid = torch.ones((G, 1), dtype=torch.bool, device=dev)
    trunc = torch.zeros((G,), dtype=torch.bool, device=dev)
    empty = tables.empty
    for lvl in range(L):
        terms = tables.con_terms.index_select(0, lvl_con[:, lvl])  # (G, beta), -1 padded
        beta = terms.shape[1]
        allowed = terms >= 0
        if keep_top:
            allowed = allowed & tables.root[terms.clamp(min=0), top.unsqueeze(1)]
        skip = ~lvl_ok[:, lvl].unsqueeze(1)  # an inactive level: only the empty term
        first = torch.arange(beta, device=dev) == 0
        terms = torch.where(skip, torch.where(first, empty, -1), terms)
        allowed = (skip & first) | (~skip & allowed)
        tadj = tables.adj.index_select(0, terms.clamp(min=0).reshape(-1))
        tadj = tadj.view(G, beta, m, m).to(torch.float32)
        w = frontier.shape[1]
        cvalid = valid.unsqueeze(2) & allowed.unsqueeze(1)  # (G, w, beta)
        if lvl == 0:  # the frontier is empty and every term is acyclic
            acyclic = torch.ones((G, w, beta), dtype=torch.bool, device=dev)
        else:
            acyclic = _union_acyclic(frontier, tadj, static)
        ok = (cvalid & acyclic).reshape(G, w * beta)  # lexicographic order
        trunc = trunc | (ok.sum(dim=1) > W)
        keep = ok & (ok.cumsum(dim=1) <= W)
        w2 = min(W, w * beta)
        if static:
            # slot s receives the s-th kept candidate: 0/1 selection matrices, no sort
            slot = ok.cumsum(dim=1) - 1
            sel = keep.unsqueeze(2) & (slot.unsqueeze(2) == torch.arange(w2, device=dev))
            valid = sel.any(dim=1)
            sel = sel.to(torch.float32).view(G, w, beta, w2)
            pick_f = sel.sum(dim=2).transpose(1, 2)  # (G, w2, w)
            pick_t = sel.sum(dim=1).transpose(1, 2)  # (G, w2, beta)
            frontier = torch.maximum(
                (pick_f @ frontier.reshape(G, w, m * m)).view(G, w2, m, m),
                (pick_t @ tadj.reshape(G, beta, m * m)).view(G, w2, m, m),
            )
        else:
            src = torch.sort((~keep).to(torch.uint8), dim=1, stable=True).indices[:, :w2]
            valid = keep.gather(1, src)
            base = torch.arange(G, device=dev).unsqueeze(1)
            fi = (base * w + torch.div(src, beta, rounding_mode="floor")).reshape(-1)
            ti = (base * beta + src % beta).reshape(-1)
            frontier = torch.maximum(
                frontier.reshape(G * w, m, m).index_select(0, fi),
                tadj.reshape(G * beta, m, m).index_select(0, ti),
            ).view(G, w2, m, m)
            if not bool(valid.any()):
                break
    return valid[:, 0], frontier[:, 0] > 0.5, trunc
