"""The table execution of the self-correcting layer (``SafetyConfig(execution="table")``).

A memo of the search's choice for every (active set, top class) group seen so far, kept on
the device; a pass with fixed shapes and no host synchronisation that looks every row up in
it (:meth:`TableExecution._table_pass`); and that pass captured and replayed as a CUDA graph.
Only groups missing from the table are searched (:func:`~relucid.enforce.search.search`),
after which the table grows.

:class:`TableExecution` is a base class of :class:`~relucid.enforce.layer.SafetyLayer`, not
used alone: the table lives in the layer's buffers, so that it moves with ``.to``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from relucid.enforce.constraints import Constraint
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
)


def _exporting() -> bool:
    """Whether torch.export, ONNX export or TorchScript is tracing or scripting this call."""
    return bool(
        torch.compiler.is_exporting()
        or torch.onnx.is_in_onnx_export()
        or torch.jit.is_tracing()
        or torch.jit.is_scripting()
    )


class TableExecution(nn.Module):
    """The memo table of :class:`~relucid.enforce.layer.SafetyLayer` and the execution that
    reads it; see the module docstring. :meth:`_build_table` is called by the layer's
    constructor once the term tables exist."""

    # buffers (moved by .to); see _build_table and _allocate_table
    _hash_con: Tensor
    _hash_top: Tensor
    _tab_keys: Tensor
    _tab_slot: Tensor
    _tab_act: Tensor
    _tab_top: Tensor
    _tab_status: Tensor
    _store_anc: Tensor
    _store_depth: Tensor

    if TYPE_CHECKING:  # provided by SafetyLayer
        config: SafetyConfig
        constraints: tuple[Constraint, ...]
        num_classes: int
        _term_anc: Tensor
        _term_depth: Tensor
        _single: Tensor

        def active(self, x: Tensor) -> Tensor: ...
        def satisfied(self, logits: Tensor) -> Tensor: ...
        def _search(self, act: Tensor, top: Tensor, static: bool) -> tuple[Tensor, Tensor]: ...
        def _forward_dynamic(
            self, y: Tensor, active: Tensor, need: Tensor, invalid: Tensor
        ) -> SafeOutput: ...

    # -- construction --------------------------------------------------------------------
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

    # -- execution -------------------------------------------------------------------------
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
