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

The search (step 2) is vectorised as a beam over the active constraints: at each level every
kept partial choice is extended by every term of the next constraint, cyclic unions are pruned
(parallel peeling on a batch of graphs), and the first ``beam_width`` survivors in
lexicographic order are kept. A lexicographically first complete choice is never lost to the
truncation (if one survives, the first one does), so the result is exact unless the beam is
truncated *and* no choice is found; such rows are reported.

Efficiency: rows with exactly one active constraint need no search (a table indexed by
constraint and top class, built once); ancestry and depth of every DNF term are precomputed;
rows with several active constraints are grouped by (active set, top class) and the search,
ancestry and depth are computed once per group. Per row, only ``O(m^2)`` work remains.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from relucid.enforce.constraints import (
    Constraint,
    ConstraintSet,
    HalfSpace,
    as_constraint_list,
)
from relucid.enforce.dnf import DNF, Interval, pre_dnf, to_dnf
from relucid.enforce.graph import ancestors, peel, permute_logits
from relucid.enforce.output import SafeOutput, SafetyConfig, SafetyStatus
from relucid.errors import InputError

# plain ints of the statuses, for tensor code
_UNCHANGED, _CORRECTED, _CORRECTED_LIMIT, _UNSAT, _LIMIT, _TIED, _INVALID = (
    int(s) for s in SafetyStatus
)


def _round32(v: np.ndarray, up: bool) -> np.ndarray:
    """The float32 nearest to each float64 ``v`` on the side ``up`` (``>= v``) or down."""
    f = v.astype(np.float32)
    if up:
        return np.where(f.astype(np.float64) < v, np.nextafter(f, np.float32(np.inf)), f)
    return np.where(f.astype(np.float64) > v, np.nextafter(f, np.float32(-np.inf)), f)


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


def _exporting() -> bool:
    return bool(
        torch.compiler.is_exporting()
        or torch.onnx.is_in_onnx_export()
        or torch.jit.is_tracing()
        or torch.jit.is_scripting()
    )


class SafetyLayer(nn.Module):
    """Self-correcting layer for a set of safe-ordering constraints over ``m`` classes.

    Parameters
    ----------
    constraints : :class:`~relucid.enforce.Constraint` objects or a ``ConstraintSet``.
    num_classes : ``m``, the number of logits.
    config : :class:`SafetyConfig`.

    Call ``layer(x, logits)`` with ``x`` of shape (B, ...) (flattened to (B, n)) and ``logits``
    (B, m) on the layer's device; returns a :class:`SafeOutput`. Move the layer with ``.to``.

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
    _hash_con: Tensor
    _hash_top: Tensor
    _tab_keys: Tensor
    _tab_slot: Tensor
    _tab_act: Tensor
    _tab_top: Tensor
    _tab_status: Tensor
    _store_anc: Tensor
    _store_depth: Tensor

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

    def _build_table(self) -> None:
        """The memo of ``execution="table"``: an empty table and the store of graphs.

        Each (active set, top class) group with several active constraints gets a 64-bit key
        (a sum of random 62-bit numbers, one per active constraint, plus one for the top
        class, wrapping) kept sorted on the device for ``searchsorted``. A lookup is accepted
        only if the entry's stored active set and top class equal the row's, so a key
        collision costs a miss, never a wrong answer. The store holds the ancestry and depth
        of every DNF term (rows with one active constraint use those directly) followed by
        those of each table entry's chosen union.
        """
        K, m = len(self.constraints), self.num_classes
        rng = np.random.default_rng(0x5AFE)
        self.register_buffer(
            "_hash_con", torch.from_numpy(rng.integers(-(2**62), 2**62, K)), persistent=False
        )
        self.register_buffer(
            "_hash_top", torch.from_numpy(rng.integers(-(2**62), 2**62, m)), persistent=False
        )
        self._tab_index: dict[tuple[bytes, int], int] = {}  # exact key -> entry
        self._tab_hash: list[int] = []
        self._tab_rows: list[tuple[np.ndarray, int, int]] = []  # active, top, status
        self._allocate_table(64)

    def _allocate_table(self, cap: int) -> None:
        K, m = len(self.constraints), self.num_classes
        dev = self._term_anc.device
        T1 = self._term_anc.shape[0]
        anc = torch.zeros((T1 + cap, m, m), dtype=torch.bool, device=dev)
        depth = torch.zeros((T1 + cap, m), dtype=torch.int64, device=dev)
        anc[:T1] = self._term_anc
        depth[:T1] = self._term_depth
        old = getattr(self, "_store_anc", None)
        if old is not None:  # growing: keep the entries computed so far
            n = len(self._tab_rows)
            anc[T1 : T1 + n] = old[T1 : T1 + n].to(dev)
            depth[T1 : T1 + n] = self._store_depth[T1 : T1 + n].to(dev)
        self.register_buffer("_store_anc", anc, persistent=False)
        self.register_buffer("_store_depth", depth, persistent=False)
        for name, t in (
            ("_tab_keys", torch.full((cap,), torch.iinfo(torch.int64).max, dtype=torch.int64)),
            ("_tab_slot", torch.zeros((cap,), dtype=torch.int64)),
            ("_tab_act", torch.zeros((cap, max(K, 1)), dtype=torch.bool)),
            ("_tab_top", torch.full((cap,), -1, dtype=torch.int64)),
            ("_tab_status", torch.full((cap,), _UNSAT, dtype=torch.int64)),
        ):
            self.register_buffer(name, t.to(dev), persistent=False)
        self._tab_cap = cap
        self._graphs: dict[Any, Any] = {}  # reallocated buffers: captured graphs are stale
        self._publish_table()

    def _publish_table(self) -> None:
        """Write the host's entries, sorted by key, into the device table."""
        n = len(self._tab_rows)
        seen: set[int] = set()
        order = []
        for e in sorted(range(n), key=self._tab_hash.__getitem__):
            if self._tab_hash[e] not in seen:  # a colliding later entry stays a miss
                seen.add(self._tab_hash[e])
                order.append(e)
        cap, K = self._tab_cap, self._tab_act.shape[1]
        keys = np.full(cap, np.iinfo(np.int64).max, dtype=np.int64)
        slot = np.zeros(cap, dtype=np.int64)
        act = np.zeros((cap, K), dtype=bool)
        top = np.full(cap, -1, dtype=np.int64)
        status = np.full(cap, _UNSAT, dtype=np.int64)
        T1 = self._term_anc.shape[0]
        for i, e in enumerate(order):
            keys[i] = self._tab_hash[e]
            slot[i] = T1 + e
            act[i], top[i], status[i] = self._tab_rows[e]
        for buf, val in (
            (self._tab_keys, keys),
            (self._tab_slot, slot),
            (self._tab_act, act),
            (self._tab_top, top),
            (self._tab_status, status),
        ):
            buf.copy_(torch.from_numpy(val))

    def _table_key(self, active: Tensor, top: Tensor) -> Tensor:
        return (active.to(torch.int64) * self._hash_con).sum(dim=1) + self._hash_top[top]

    def _table_insert(self, active: Tensor, top: Tensor) -> None:
        """Search the groups of these rows that the table lacks, and add them."""
        keys = torch.cat([active.to(torch.int64), top.unsqueeze(1)], dim=1)
        ukeys = torch.unique(keys, dim=0)
        host = ukeys.cpu().numpy()
        new = [
            r
            for r in range(len(host))
            if (host[r, :-1].astype(bool).tobytes(), int(host[r, -1])) not in self._tab_index
        ]
        if not new:
            return
        uk = ukeys[new]
        act, top_u = uk[:, :-1].bool(), uk[:, -1]
        adj, status = self._search(act, top_u, static=False)
        depth, _ = peel(adj)
        anc = ancestors(adj)
        hashes = self._table_key(act, top_u).cpu().tolist()
        codes = status.cpu().tolist()
        n0 = len(self._tab_rows)
        if n0 + len(new) > self._tab_cap:
            cap = self._tab_cap
            while n0 + len(new) > cap:
                cap *= 2
            self._allocate_table(cap)
        T1 = self._term_anc.shape[0]
        self._store_anc[T1 + n0 : T1 + n0 + len(new)] = anc
        self._store_depth[T1 + n0 : T1 + n0 + len(new)] = depth
        for i, r in enumerate(new):
            a_np = host[r, :-1].astype(bool)
            t = int(host[r, -1])
            self._tab_index[(a_np.tobytes(), t)] = n0 + i
            self._tab_hash.append(int(hashes[i]))
            self._tab_rows.append((a_np, t, int(codes[i])))
        self._publish_table()

    @property
    def table_size(self) -> int:
        """Number of (active set, top class) groups memoised by ``execution="table"``."""
        return len(self._tab_rows)

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

    def _forward_table(self, x2: Tensor, y: Tensor) -> SafeOutput:
        """Every row through fixed shapes (:meth:`_table_pass`); one synchronisation asks
        whether some row's group is missing from the table, and only then is the search
        run, the table grown and the pass repeated. A group whose key collides with another
        entry's can never be found: such a batch takes the dynamic path. On CUDA the pass
        is replayed from a captured CUDA graph when gradients are not needed."""
        graphed = (
            self.config.cuda_graphs
            and y.is_cuda
            and not (torch.is_grad_enabled() and (y.requires_grad or x2.requires_grad))
            and not _exporting()
        )
        run = self._graph_for(x2, y) if graphed else self._table_pass
        out, status, miss = run(x2, y)
        if bool(miss.any()):
            active = self.active(x2)[miss]
            self._table_insert(active, y[miss].argmax(dim=1))
            out, status, miss = self._table_pass(x2, y)
            if bool(miss.any()):
                active = self.active(x2)
                need = (active & ~self.satisfied(y)).any(dim=1)
                invalid = torch.isnan(y).any(dim=1) | torch.isnan(x2).any(dim=1)
                return self._forward_dynamic(y, active, need & ~invalid, invalid)
        return SafeOutput(out, status >= _UNSAT, status)

    def _table_pass(self, x2: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The whole layer for rows whose group is in the table, with fixed shapes and no
        synchronisation: (logits, int8 status, bool miss) where ``miss`` marks the rows that
        need a correction but whose group the table lacks (their outputs are not valid)."""
        active = self.active(x2)
        invalid = torch.isnan(y).any(dim=1) | torch.isnan(x2).any(dim=1)
        need = (active & ~self.satisfied(y)).any(dim=1) & ~invalid
        top = y.argmax(dim=1)
        multi = active.sum(dim=1) > 1
        key = self._table_key(active, top)
        pos = torch.searchsorted(self._tab_keys, key).clamp(max=self._tab_cap - 1)
        hit = (
            (self._tab_keys[pos] == key)
            & (self._tab_top[pos] == top)
            & (self._tab_act[pos] == active).all(dim=1)
        )
        miss = need & multi & ~hit
        sterm = self._single[active.to(torch.uint8).argmax(dim=1), top]
        slot = torch.where(multi, self._tab_slot[pos], sterm.clamp(min=0))
        st = torch.where(multi, self._tab_status[pos], torch.where(sterm < 0, _UNSAT, _CORRECTED))
        perm = permute_logits(y, self._store_anc[slot], self._store_depth[slot])
        tied = (st < _UNSAT) & (active & ~self.satisfied(perm)).any(dim=1)
        st = torch.where(tied, _TIED, st)
        st = torch.where(need, st, _UNCHANGED)
        status = torch.where(invalid, _INVALID, st).to(torch.int8)
        fixed = (status == _CORRECTED) | (status == _CORRECTED_LIMIT)
        out = torch.where(fixed.unsqueeze(1), perm, y)
        return out, status, miss

    def _graph_for(self, x2: Tensor, y: Tensor) -> Any:
        """:meth:`_table_pass` captured as a CUDA graph for this shape and dtype (cached;
        the table's buffers are updated in place, and the cache is dropped when they are
        reallocated or the layer moves)."""
        key = (tuple(x2.shape), x2.dtype, tuple(y.shape), y.dtype, y.device)
        hit = self._graphs.pop(key, None)
        if hit is None:
            sx, sy = x2.clone(), y.clone()
            side = torch.cuda.Stream(device=y.device)
            side.wait_stream(torch.cuda.current_stream(y.device))
            with torch.cuda.stream(side):
                for _ in range(2):
                    self._table_pass(sx, sy)
            torch.cuda.current_stream(y.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                outs = self._table_pass(sx, sy)
            hit = (graph, sx, sy, outs)
            while len(self._graphs) >= 8:
                self._graphs.pop(next(iter(self._graphs)))
        self._graphs[key] = hit  # most recently used last
        graph, sx, sy, outs = hit

        def replay(x2: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            sx.copy_(x2)
            sy.copy_(y)
            graph.replay()
            return outs[0].clone(), outs[1].clone(), outs[2]

        return replay

    def _apply(self, fn: Any, recurse: bool = True) -> Any:
        self._graphs.clear()  # captured graphs point at the old buffers
        return super()._apply(fn, recurse)

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
        found1, adj1, trunc1 = self._beam(lvl_con, lvl_ok, top, True, static)
        if static:
            found2, adj2, trunc2 = self._beam(lvl_con, lvl_ok, top, False, static)
        else:
            found2 = torch.zeros_like(found1)
            adj2 = torch.zeros_like(adj1)
            trunc2 = torch.zeros_like(trunc1)
            rest = (~found1).nonzero().squeeze(1)
            if rest.numel():
                f, ad, tr = self._beam(lvl_con[rest], lvl_ok[rest], top[rest], False, static)
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
        self, lvl_con: Tensor, lvl_ok: Tensor, top: Tensor, keep_top: bool, static: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Level-wise beam search; see the module docstring. Chunked over groups if dynamic."""
        G = lvl_con.shape[0]
        m = self.num_classes
        beta = self._con_terms.shape[1]
        W = self.config.beam_width
        per_group = W * (beta + 1) * m * m
        step = G if static else max(1, self.config.chunk_elements // max(per_group, 1))
        if step >= G:
            return self._beam_chunk(lvl_con, lvl_ok, top, keep_top, static)
        parts = [
            self._beam_chunk(
                lvl_con[s : s + step], lvl_ok[s : s + step], top[s : s + step], keep_top, static
            )
            for s in range(0, G, step)
        ]
        return tuple(torch.cat(p, dim=0) for p in zip(*parts, strict=True))  # type: ignore[return-value]

    def _beam_chunk(
        self, lvl_con: Tensor, lvl_ok: Tensor, top: Tensor, keep_top: bool, static: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        G, L = lvl_con.shape
        m = self.num_classes
        dev = lvl_con.device
        W = self.config.beam_width
        # partial unions as 0/1 float adjacency: every graph step below is a matrix product
        frontier = torch.zeros((G, 1, m, m), dtype=torch.float32, device=dev)
        valid = torch.ones((G, 1), dtype=torch.bool, device=dev)
        trunc = torch.zeros((G,), dtype=torch.bool, device=dev)
        empty = self._empty_term
        for lvl in range(L):
            terms = self._con_terms.index_select(0, lvl_con[:, lvl])  # (G, beta), -1 padded
            beta = terms.shape[1]
            allowed = terms >= 0
            if keep_top:
                allowed = allowed & self._term_root[terms.clamp(min=0), top.unsqueeze(1)]
            skip = ~lvl_ok[:, lvl].unsqueeze(1)  # an inactive level: only the empty term
            first = torch.arange(beta, device=dev) == 0
            terms = torch.where(skip, torch.where(first, empty, -1), terms)
            allowed = (skip & first) | (~skip & allowed)
            tadj = self._term_adj.index_select(0, terms.clamp(min=0).reshape(-1))
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

    # -- reporting -------------------------------------------------------------------------
    def report(self) -> list[dict[str, Any]]:
        """Per constraint: name and DNF sizes (terms, literals in and out, dropped terms)."""
        return [
            {"name": c.name, **d.to_dict()} for c, d in zip(self.constraints, self.dnf, strict=True)
        ]

    def extra_repr(self) -> str:
        terms = sum(len(d.terms) for d in self.dnf)
        return f"constraints={len(self.constraints)}, classes={self.num_classes}, terms={terms}"
