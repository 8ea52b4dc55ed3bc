"""Specify: neural activation pattern (NAP) specifications and how to learn minimal ones.

Paper: minimal-neural-specifications, sections 2-4.

* :mod:`~relucid.spec.nap`: :class:`NapSpec` (the NAP, its class, network fingerprint, domain
  and provenance; JSON; batched membership; ``|P|``; subsumption) and :func:`refined_nap`;
* :mod:`~relucid.spec.coarsen`: COARSEN, group COARSEN and STOCHCOARSEN behind
  :class:`NapLearner`, with a verdict cache that makes runs resumable from a checkpoint file.
"""

from relucid.spec.coarsen import (
    METHODS,
    NapLearner,
    NotASpecificationError,
    VerdictCache,
    coarsen,
    group_coarsen,
    nap_key,
    opt_adv_prune,
    stoch_coarsen,
)
from relucid.spec.nap import NapSpec, refined_nap

__all__ = [
    "METHODS",
    "NapLearner",
    "NapSpec",
    "NotASpecificationError",
    "VerdictCache",
    "coarsen",
    "group_coarsen",
    "nap_key",
    "opt_adv_prune",
    "refined_nap",
    "stoch_coarsen",
]
