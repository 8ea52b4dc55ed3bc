"""Verify: VNN-LIB properties and NAP-aware bounds, the groundwork of the complete verifier.

Paper: minimal-neural-specifications, section 2 (NAPs and the queries a verifier answers).

* :mod:`~relucid.verify.vnnlib`: a reader and writer for the VNN-LIB 1.0 subset of the
  ACAS Xu and mnistfc benchmarks (:class:`VnnProperty`, :func:`load_vnnlib`,
  :func:`read_instances`);
* :mod:`~relucid.verify.bounds`: pre-activation bounds over a box under a NAP
  (:func:`interval_bounds`, :func:`symbolic_bounds`, :func:`lp_tighten`,
  :func:`output_bounds`), all returning :class:`Bounds`;
* :mod:`~relucid.verify.milp`: the network as a MILP built once, NAPs imposed by the
  binaries' bounds (:class:`NetworkMILP`).
"""

from relucid.verify.bounds import (
    Bounds,
    interval_bounds,
    lp_tighten,
    output_bounds,
    symbolic_bounds,
)
from relucid.verify.milp import MILPResult, NetworkMILP
from relucid.verify.vnnlib import (
    MAX_DISJUNCTS,
    InputRegion,
    VnnInstance,
    VnnProperty,
    read_instances,
)
from relucid.verify.vnnlib_reader import load_vnnlib, parse_vnnlib

__all__ = [
    "MAX_DISJUNCTS",
    "Bounds",
    "InputRegion",
    "MILPResult",
    "NetworkMILP",
    "VnnInstance",
    "VnnProperty",
    "interval_bounds",
    "load_vnnlib",
    "lp_tighten",
    "output_bounds",
    "parse_vnnlib",
    "read_instances",
    "symbolic_bounds",
]
