"""What the safety layer returns and how it is configured: statuses, output, settings.

Split from :mod:`relucid.enforce.layer` (the algorithm) so that callers reading results need
not look at the search. Also the statuses as plain ints, for the tensor code of the layer,
its search (:mod:`~relucid.enforce.search`) and its table (:mod:`~relucid.enforce.table`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal, NamedTuple

from torch import Tensor


class SafetyStatus(IntEnum):
    """What the layer did with a row. ``bottom`` is ``status >= UNSATISFIABLE``."""

    UNCHANGED = 0
    """The active constraints already held (or none was active): logits returned as they are."""
    CORRECTED = 1
    """Logits permuted to satisfy the active constraints; top class kept whenever possible."""
    CORRECTED_LIMIT = 2
    """Permuted and safe, but the search for a choice keeping the top class hit the bound: the
    top class may have been given up although some safe output keeps it."""
    UNSATISFIABLE = 3
    """Bottom: the active constraints contradict each other (no safe output exists)."""
    SEARCH_LIMIT = 4
    """Bottom: the search hit the bound before finding a consistent choice (unknown)."""
    TIED = 5
    """Bottom: the chosen order needs strictly separated values that tied logits cannot give."""
    INVALID = 6
    """Bottom: NaN in the input or the logits."""


# plain ints of the statuses, for tensor code
_UNCHANGED, _CORRECTED, _CORRECTED_LIMIT, _UNSAT, _LIMIT, _TIED, _INVALID = (
    int(s) for s in SafetyStatus
)


class SafeOutput(NamedTuple):
    """The layer's result (a named tuple, so that it exports to ONNX as three outputs).

    Attributes
    ----------
    logits : (B, m), same dtype as the input logits: corrected rows permuted, other rows
        bit-identical to the input (bottom rows too).
    bottom : bool (B,): no safe output was produced for the row.
    status : int8 (B,): a :class:`SafetyStatus` per row.
    """

    logits: Tensor
    bottom: Tensor
    status: Tensor


@dataclass(frozen=True)
class SafetyConfig:
    """Settings of :class:`SafetyLayer`.

    Attributes
    ----------
    max_terms : bound on the DNF size of one postcondition (and precondition); past it the
        constructor raises :class:`~relucid.errors.ConstraintError`.
    beam_width : partial choices kept per row group at each level of the search.
    execution : ``"dynamic"`` groups rows and stops loops early (data-dependent shapes);
        ``"static"`` runs the same algorithm with fixed shapes and loop counts on every row
        (what :func:`torch.onnx.export` traces); ``"table"`` looks every row's choice up in a
        table of the (active set, top class) groups seen so far, with fixed shapes and one
        host synchronisation per batch, and runs the dynamic search only for groups not seen
        before (fastest on GPUs, where each synchronisation and kernel launch costs more than
        the arithmetic); ``"auto"`` is static while exporting or tracing, table on CUDA and
        dynamic elsewhere. All give identical results.
    chunk_elements : upper bound on the float32 elements of the partial unions handled at
        once by the dynamic search (row groups are processed in chunks; memory).
    cuda_graphs : on CUDA, replay the table execution's fixed-shape pass from a captured
        CUDA graph (one per input shape, up to 8 kept) when no gradient is needed: one
        launch instead of about a hundred small kernels.
    """

    max_terms: int = 1024
    beam_width: int = 32
    execution: Literal["auto", "dynamic", "static", "table"] = "auto"
    chunk_elements: int = 1 << 23
    cuda_graphs: bool = True
