"""The self-correcting layer: ``SafetyLayer(constraints, m)(x, logits)``.

Paper: self-correcting-networks (Leino et al. 2022), Algorithm 3.1 and appendix B, as
described in ``DESIGN.md``, section "Enforce". For each row:

1. the *active* constraints are those whose precondition holds at ``x``; if their
   postconditions already hold at ``y``, ``y`` is returned bit-identical;
2. otherwise one DNF term is chosen per active constraint so that the union of the chosen
   ordering graphs is acyclic. Choices are tried in a fixed order: first those in which the
   original top class ``argmax y`` is a root of every chosen term (hence of the union), then
   all others; within each phase in lexicographic order of the term indices, active
   constraints taken in index order. The first acyclic choice is taken, so the result is a
   function of (active set, top class) only. If there is none, ``Phi`` is unsatisfiable at
   ``x`` and the row is *bottom*;
3. the logits are permuted by the stable topological sort of the chosen graph
   (:func:`~relucid.enforce.graph.permute_logits`).

Guarantees (section 3, Theorems 5 and 6), for rows whose logits are pairwise distinct: the
output satisfies every active constraint unless ``bottom``; ``bottom`` holds exactly when the
active constraints are unsatisfiable, except rows whose search hit the bound
(:attr:`SafetyStatus.SEARCH_LIMIT`); the top class is kept whenever some safe output keeps
it, except rows flagged :attr:`SafetyStatus.CORRECTED_LIMIT`. Every corrected row is
re-checked against the active constraints; a row that fails the check (possible only with tied
logit values) is flagged :attr:`SafetyStatus.TIED` rather than returned wrong.

The search (step 2) is a beam over the active constraints (:mod:`~relucid.enforce.search`),
exact unless the beam is truncated *and* no choice is found; such rows are reported.

Efficiency: rows with exactly one active constraint need no search (a table indexed by
constraint and top class, built once); ancestry and depth of every DNF term are precomputed;
rows with several active constraints are grouped by (active set, top class) and the search,
ancestry and depth are computed once per group. Per row, only ``O(m^2)`` work remains. With
``execution="table"`` the groups' choices are memoised across calls
(:mod:`~relucid.enforce.table`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from relucid.enforce.constraints import (
    Constraint,
    ConstraintSet,
    HalfSpace,
    as_constraint_list,
)
from relucid.enforce.dnf import DNF, Interval, pre_dnf, to_dnf
from relucid.enforce.graph import ancestors, peel, permute_logits
from relucid.enforce.output import (
    _CORRECTED,
    _CORRECTED_LIMIT,
    _INVALID,
    _TIED,
    _UNCHANGED,
    _UNSAT,
    SafeOutput,
    SafetyConfig,
    SafetyStatus,
)
from relucid.enforce.output import _LIMIT as _LIMIT  # re-export, as before the split
from relucid.enforce.search import TermTables, search
from relucid.enforce.search import _union_acyclic as _union_acyclic  # re-export, as before
from relucid.enforce.table import TableExecution, _exporting
from relucid.errors import InputError

__all__ = ["SafeOutput", "SafetyConfig", "SafetyLayer", "SafetyStatus"]


def _round32(v: np.ndarray, up: bool) -> np.ndarray:
    """The float32 nearest to each float64 ``v`` on the side ``up`` (``>= v``) or down."""
    f = v.astype(np.float32)
    if up:
        return np.where(f.astype(np.float64) < v, np.nextafter(f, np.float32(np.inf)), f)
    return np.where(f.astype(np.float64) > v, np.nextafter(f, np.float32(-np.inf)), f)


class SafetyLayer(TableExecution):
    """Self-correcting layer for a set of safe-ordering constraints over ``m`` classes.

    Parameters
    ----------
    constraints : :class:`~relucid.enforce.Constraint` objects or a ``ConstraintSet``.
    num_classes : ``m``, the number of logits.
    config : :class:`SafetyConfig`.

    Call ``layer(x, logits)`` with ``x`` of shape (B, ...) (flattened to (B, n)) and ``logits``
    (B, m) on the layer's device; returns a :class:`SafeOutput`. Move the layer with ``.to``.
    The table execution (and :attr:`table_size`) comes from
    :class:`~relucid.enforce.table.TableExecution`.

    Attributes
    ----------
    constraints : tuple of the constraints.
    dnf : tuple of :class:`~relucid.enforce.constraints.DNF`, the normal form of each
        postcondition with its size report.
    """

    # buffers (moved by .to); see _build_pre and _build_post
    _iv_feat: Tensor
    _iv_lo: Tensor
    _iv_hi: Tensor
    _iv_lo32: Tensor
    _iv_hi32: Tensor
    _hs_A: Tensor
    _hs_b: Tensor
    _pre_idx: Tensor
    _con_pre: Tensor
    _lit_lo: Tensor
    _lit_hi: Tensor
    _post_inc: Tensor
    _term_con: Tensor
    _term_adj: Tensor
    _term_anc: Tensor
    _term_depth: Tensor
    _term_root: Tensor
    _con_terms: Tensor
    _single: Tensor

    def __init__(
        self,
        constraints: ConstraintSet | Sequence[Constraint],
        num_classes: int,
        config: SafetyConfig | None = None,
    ) -> None:
        super().__init__()
        self.config = config or SafetyConfig()
        self.constraints = tuple(as_constraint_list(constraints))
        self.num_classes = m = int(num_classes)
        if m < 1:
            raise InputError(f"num_classes must be positive, got {num_classes}")
        cfg = self.config
        self.dnf: tuple[DNF, ...] = tuple(
            to_dnf(c.post, m, cfg.max_terms, c.name or f"#{k}")
            for k, c in enumerate(self.constraints)
        )
        self._build_pre()
        self._build_post()

    # -- construction --------------------------------------------------------------------
    def _build_pre(self) -> None:
        cfg = self.config
        intervals: dict[Interval, int] = {}
        halves: dict[HalfSpace, int] = {}
        term_atoms: list[list[tuple[bool, int]]] = []  # (is interval, index)
        term_con: list[int] = []
        for k, c in enumerate(self.constraints):
            for term in pre_dnf(c.pre, cfg.max_terms, c.name or f"#{k}"):
                ids = []
                for atom in term:
                    if isinstance(atom, Interval):
                        ids.append((True, intervals.setdefault(atom, len(intervals))))
                    else:
                        ids.append((False, halves.setdefault(atom, len(halves))))
                term_atoms.append(ids)
                term_con.append(k)
        if any(not ids for ids in term_atoms) or not term_atoms:
            # an always-true atom for terms without atoms (Always): -inf <= x_0 <= inf
            always = intervals.setdefault(Interval(0, -math.inf, math.inf), len(intervals))
            term_atoms = [ids or [(True, always)] for ids in term_atoms]
        ni, nh, K = len(intervals), len(halves), len(self.constraints)
        feats = [a.feature for a in intervals] + [f for h in halves for f, _ in h.coef]
        self.num_features_used = 1 + max(feats, default=-1)
        # atom vector: [intervals (ni) | half-spaces (nh)]; a precondition term is a row of
        # atom indices (all must hold), a constraint a row of term indices (one must hold);
        # rows are padded by repeating their first entry, which changes neither all nor any
        width = max((len(ids) for ids in term_atoms), default=1)
        pre_idx = np.zeros((len(term_atoms), width), dtype=np.int64)
        for t, ids in enumerate(term_atoms):
            cols = [i if is_interval else ni + i for is_interval, i in ids]
            pre_idx[t] = cols + [cols[0]] * (width - len(cols))
        per_con: list[list[int]] = [[] for _ in range(K)]
        for t, k in enumerate(term_con):
            per_con[k].append(t)
        per = max((len(v) for v in per_con), default=1)
        con_pre = np.zeros((K, per), dtype=np.int64)
        for k, ts in enumerate(per_con):
            con_pre[k] = ts + [ts[0]] * (per - len(ts))
        ivs = sorted(intervals, key=intervals.__getitem__)
        lo = np.array([a.lo for a in ivs], dtype=np.float64)
        hi = np.array([a.hi for a in ivs], dtype=np.float64)
        A = np.zeros((nh, max(self.num_features_used, 1)))
        for h, i in halves.items():
            for f, v in h.coef:
                A[i, f] = v
        hb = [h.bound for h in sorted(halves, key=halves.__getitem__)]
        self._ni, self._nh = ni, nh
        self.register_buffer("_iv_feat", torch.tensor([a.feature for a in ivs], dtype=torch.int64))
        self.register_buffer("_iv_lo", torch.from_numpy(lo))
        self.register_buffer("_iv_hi", torch.from_numpy(hi))
        # for inputs of at most float32 precision, x >= lo iff x >= (smallest float32 >= lo)
        # and x <= hi iff x <= (largest float32 <= hi), exactly: half the memory traffic
        self.register_buffer("_iv_lo32", torch.from_numpy(_round32(lo, up=True)))
        self.register_buffer("_iv_hi32", torch.from_numpy(_round32(hi, up=False)))
        self.register_buffer("_hs_A", torch.tensor(A, dtype=torch.float64))
        self.register_buffer("_hs_b", torch.tensor(hb, dtype=torch.float64))
        self.register_buffer("_pre_idx", torch.from_numpy(pre_idx.reshape(-1)))
        self.register_buffer("_con_pre", torch.from_numpy(con_pre.astype(np.int64).reshape(-1)))
        self._pre_shape = (len(term_atoms), pre_idx.shape[1], K, con_pre.shape[1])

    def _build_post(self) -> None:
        m, K = self.num_classes, len(self.constraints)
        lits: dict[tuple[int, int], int] = {}
        terms = [t for d in self.dnf for t in d.terms]
        owner = [k for k, d in enumerate(self.dnf) for _ in d.terms]
        for term in terms:
            for lit in term:
                lits.setdefault(lit, len(lits))
        T = len(terms)
        inc = np.zeros((len(lits), T), dtype=np.float32)
        adj = np.zeros((T + 1, m, m), dtype=bool)  # the last term is empty (a skipped level)
        for t, term in enumerate(terms):
            for i, j in term:
                inc[lits[(i, j)], t] = 1.0
                adj[t, j, i] = True  # y_i < y_j: edge j -> i
        con = np.zeros((T, K), dtype=np.float32)
        con[np.arange(T), owner] = 1.0
        beta = max((len(d.terms) for d in self.dnf), default=0)
        con_terms = np.full((K, max(beta, 1)), -1, dtype=np.int64)
        start = 0
        for k, d in enumerate(self.dnf):
            con_terms[k, : len(d.terms)] = np.arange(start, start + len(d.terms))
            start += len(d.terms)
        adj_t = torch.from_numpy(adj)
        root = ~adj_t.any(dim=-2)  # (T+1, m): no incoming edge
        # single active constraint: first term with the top class as a root, else first term
        single = np.full((K, m), -1, dtype=np.int64)
        root_np = root.numpy()
        for k in range(K):
            ts = con_terms[k][con_terms[k] >= 0]
            for top in range(m):
                good = [t for t in ts if root_np[t, top]]
                single[k, top] = good[0] if good else (ts[0] if ts.size else -1)
        depth, acyclic = peel(adj_t)
        assert bool(acyclic.all()), "DNF terms are acyclic by construction"
        lit_list = sorted(lits, key=lits.__getitem__)
        self.register_buffer("_lit_lo", torch.tensor([a for a, _ in lit_list], dtype=torch.int64))
        self.register_buffer("_lit_hi", torch.tensor([b for _, b in lit_list], dtype=torch.int64))
        self.register_buffer("_post_inc", torch.from_numpy(inc))
        self.register_buffer("_term_con", torch.from_numpy(con))
        self.register_buffer("_term_adj", adj_t)
        self.register_buffer("_term_anc", ancestors(adj_t))
        self.register_buffer("_term_depth", depth)
        self.register_buffer("_term_root", root)
        self.register_buffer("_con_terms", torch.from_numpy(con_terms))
        self.register_buffer("_single", torch.from_numpy(single))
        self._empty_term = T
        self._build_table()

    # -- evaluation ------------------------------------------------------------------------
    def active(self, x: Tensor) -> Tensor:
        """Which constraints are active: bool (B, K), from ``x`` of shape (B, ...).

        Box sides are compared feature by feature, exactly: float64 inputs against the float64
        bounds, lower-precision inputs in float32 against each bound rounded outwards to a
        float32 (which decides ``lo <= x <= hi`` identically). Half-spaces are one float64
        matrix product. A precondition in DNF holds when all atoms of some term hold; terms
        and constraints are gathered through padded index tables (float 0/1 values, which
        ``index_select`` moves fastest), so the cost is linear in the number of atoms.
        """
        B = x.shape[0]
        x2 = x.reshape(B, -1)
        parts = []
        if self._ni:
            if x2.dtype == torch.float64 or not torch.is_floating_point(x2):
                xi = x2.to(torch.float64).index_select(1, self._iv_feat)
                ok = (xi >= self._iv_lo) & (xi <= self._iv_hi)
            else:
                xi = x2.to(torch.float32).index_select(1, self._iv_feat)
                ok = (xi >= self._iv_lo32) & (xi <= self._iv_hi32)
            parts.append(ok.to(torch.float32))
        if self._nh:
            n = self._hs_A.shape[1]
            xd = x2[:, :n].to(torch.float64)
            parts.append((xd @ self._hs_A.T <= self._hs_b).to(torch.float32))
        atoms = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        nt, width, K, per = self._pre_shape
        terms = atoms.index_select(1, self._pre_idx).view(B, nt, width).amin(dim=-1)
        return terms.index_select(1, self._con_pre).view(B, K, per).amax(dim=-1) > 0.5

    def satisfied(self, logits: Tensor) -> Tensor:
        """Which postconditions hold: bool (B, K), from logits (B, m)."""
        lit = logits.index_select(1, self._lit_lo) < logits.index_select(1, self._lit_hi)
        false_lits = (~lit).to(torch.float32) @ self._post_inc
        return ((false_lits == 0).to(torch.float32) @ self._term_con) > 0

    def violations(self, x: Tensor, logits: Tensor) -> Tensor:
        """Active constraints whose postcondition fails: bool (B, K)."""
        return self.active(x) & ~self.satisfied(logits)

    def _check(self, x: Tensor, logits: Tensor) -> tuple[Tensor, Tensor]:
        m = self.num_classes
        if logits.dim() != 2 or logits.shape[1] != m:
            raise InputError(f"logits must have shape (B, {m}), got {tuple(logits.shape)}")
        if not torch.is_floating_point(logits):
            raise InputError(f"logits must be floating point, got {logits.dtype}")
        if x.shape[0] != logits.shape[0]:
            raise InputError(f"x has {x.shape[0]} rows but logits have {logits.shape[0]}")
        x2 = x.reshape(x.shape[0], -1)
        if x2.shape[1] < self.num_features_used:
            raise InputError(
                f"the constraints use feature {self.num_features_used - 1} but x has "
                f"{x2.shape[1]} features"
            )
        return x2, logits

    # -- forward ---------------------------------------------------------------------------
    def forward(self, x: Tensor, logits: Tensor) -> SafeOutput:
        """Correct ``logits`` (B, m) for inputs ``x`` (B, ...); see :class:`SafeOutput`."""
        x2, y = self._check(x, logits)
        mode = self.config.execution
        if mode == "auto":
            mode = "static" if _exporting() else "table" if y.is_cuda else "dynamic"
        if mode == "table":
            return self._forward_table(x2, y)
        active = self.active(x2)
        need = (active & ~self.satisfied(y)).any(dim=1)
        invalid = torch.isnan(y).any(dim=1) | torch.isnan(x2).any(dim=1)
        need = need & ~invalid
        if mode == "static":
            return self._forward_static(y, active, need, invalid)
        return self._forward_dynamic(y, active, need, invalid)

    def _forward_static(
        self, y: Tensor, active: Tensor, need: Tensor, invalid: Tensor
    ) -> SafeOutput:
        top = y.argmax(dim=1)
        adj, kstatus = self._search(active, top, static=True)
        depth, _ = peel(adj, early_exit=False)
        out = permute_logits(y, ancestors(adj), depth, pairwise=True)
        found = kstatus < _UNSAT
        tied = found & (active & ~self.satisfied(out)).any(dim=1)
        status = torch.where(tied, _TIED, kstatus)
        status = torch.where(need, status, _UNCHANGED)
        status = torch.where(invalid, _INVALID, status).to(torch.int8)
        fixed = (status == _CORRECTED) | (status == _CORRECTED_LIMIT)
        out = torch.where(fixed.unsqueeze(1), out, y)
        return SafeOutput(out, status >= _UNSAT, status)

    def _forward_dynamic(
        self, y: Tensor, active: Tensor, need: Tensor, invalid: Tensor
    ) -> SafeOutput:
        status = torch.where(invalid, _INVALID, _UNCHANGED).to(torch.int8)
        if not bool(need.any()):
            return SafeOutput(y, status >= _UNSAT, status)
        m = self.num_classes
        rows = need.nonzero().squeeze(1)
        a, yr = active[rows], y[rows]
        top = yr.argmax(dim=1)
        R = rows.shape[0]
        st = torch.full((R,), _CORRECTED, dtype=torch.int64, device=y.device)
        anc = torch.empty((R, m, m), dtype=torch.bool, device=y.device)
        depth = torch.empty((R, m), dtype=torch.int64, device=y.device)
        single = a.sum(dim=1) == 1
        s_idx = single.nonzero().squeeze(1)
        if s_idx.numel():
            con = a[s_idx].to(torch.uint8).argmax(dim=1)
            term = self._single[con, top[s_idx]]
            st[s_idx] = torch.where(term < 0, _UNSAT, _CORRECTED)
            term = term.clamp(min=0)
            anc[s_idx] = self._term_anc[term]
            depth[s_idx] = self._term_depth[term]
        m_idx = (~single).nonzero().squeeze(1)
        if m_idx.numel():
            keys = torch.cat([a[m_idx].to(torch.int64), top[m_idx, None]], dim=1)
            ukeys, inv = torch.unique(keys, dim=0, return_inverse=True)
            kadj, kst = self._search(ukeys[:, :-1].bool(), ukeys[:, -1], static=False)
            kdepth, _ = peel(kadj)
            st[m_idx] = kst[inv]
            anc[m_idx] = ancestors(kadj)[inv]
            depth[m_idx] = kdepth[inv]
        ok = st < _UNSAT
        fixed = yr.clone()
        if bool(ok.any()):
            o_idx = ok.nonzero().squeeze(1)
            perm = permute_logits(yr[o_idx], anc[o_idx], depth[o_idx])
            tied = (a[o_idx] & ~self.satisfied(perm)).any(dim=1)
            st[o_idx] = torch.where(tied, _TIED, st[o_idx])
            fixed[o_idx] = torch.where(tied.unsqueeze(1), yr[o_idx], perm)
        out = y.clone()
        out[rows] = fixed
        status[rows] = st.to(torch.int8)
        return SafeOutput(out, status >= _UNSAT, status)

    # -- search ----------------------------------------------------------------------------
    def _search(self, act: Tensor, top: Tensor, static: bool) -> tuple[Tensor, Tensor]:
        """First acyclic choice per group (phase 1: top class a root; phase 2: any).

        Returns the union adjacency of the choice (G, m, m) (empty where none) and a status
        per group (int64): CORRECTED, CORRECTED_LIMIT, UNSATISFIABLE or SEARCH_LIMIT. See
        :func:`~relucid.enforce.search.search`, here over this layer's term tables.
        """
        tables = TermTables(
            self._con_terms, self._term_adj, self._term_root, self._empty_term, self.num_classes
        )
        cfg = self.config
        return search(tables, act, top, static, cfg.beam_width, cfg.chunk_elements)

    # -- reporting -------------------------------------------------------------------------
    def report(self) -> list[dict[str, Any]]:
        """Per constraint: name and DNF sizes (terms, literals in and out, dropped terms)."""
        return [
            {"name": c.name, **d.to_dict()} for c, d in zip(self.constraints, self.dnf, strict=True)
        ]

    def extra_repr(self) -> str:
        terms = sum(len(d.terms) for d in self.dnf)
        return f"constraints={len(self.constraints)}, classes={self.num_classes}, terms={terms}"
