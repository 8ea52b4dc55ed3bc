"""Verify: VNN-LIB properties and NAP-aware bounds, the groundwork of the complete verifier.

Paper: minimal-neural-specifications, section 2 (NAPs and the queries a verifier answers).

* :mod:`~relucid.verify.vnnlib`: a reader and writer for the VNN-LIB 1.0 subset of the
  ACAS Xu and mnistfc benchmarks (:class:`VnnProperty`, :func:`load_vnnlib`,
  :func:`read_instances`);
* :mod:`~relucid.verify.bounds`: pre-activation bounds over a box under a NAP
  (:func:`interval_bounds`, :func:`symbolic_bounds`, :func:`lp_tighten`,
  :func:`output_bounds`), all returning :class:`Bounds`;
* :mod:`~relucid.verify.milp`: the network as a MILP built once, NAPs imposed by the
  binaries' bounds (:class:`NetworkMILP`), and :mod:`~relucid.verify.relaxation`: its LP
  relaxation, kept warm, with lower bounds proved by weak duality (:class:`NetworkLP`);
* :mod:`~relucid.verify.query`: the questions and verdicts (:class:`NapQuery`,
  :class:`Status`, :class:`VerifyResult`, the :class:`Verifier` protocol);
* :mod:`~relucid.verify.engine`: the default backend (:class:`MilpVerifier`: bounds, a PGD
  attack, then the MILP), :mod:`~relucid.verify.attack` (:func:`pgd_attack`);
* :mod:`~relucid.verify.backends`: :func:`get_verifier`, :func:`available_backends`,
  :func:`verify_many` (a process pool);
* :mod:`~relucid.verify.marabou`: the papers' verifier as an optional backend
  (:class:`MarabouVerifier`), each solve in a worker process killed at the time limit.
"""

from relucid.verify.attack import AttackResult, pgd_attack
from relucid.verify.backends import available_backends, get_verifier, verify_many
from relucid.verify.bounds import (
    Bounds,
    interval_bounds,
    lp_tighten,
    output_bounds,
    symbolic_bounds,
)
from relucid.verify.engine import MilpVerifier
from relucid.verify.marabou import MarabouVerifier, marabou_available
from relucid.verify.milp import MILPResult, NetworkMILP
from relucid.verify.query import NapQuery, Status, Verifier, VerifyResult, as_nap
from relucid.verify.relaxation import NetworkLP
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
    "AttackResult",
    "Bounds",
    "InputRegion",
    "MILPResult",
    "MarabouVerifier",
    "MilpVerifier",
    "NapQuery",
    "NetworkLP",
    "NetworkMILP",
    "Status",
    "Verifier",
    "VerifyResult",
    "VnnInstance",
    "VnnProperty",
    "as_nap",
    "available_backends",
    "get_verifier",
    "interval_bounds",
    "load_vnnlib",
    "lp_tighten",
    "marabou_available",
    "output_bounds",
    "parse_vnnlib",
    "pgd_attack",
    "read_instances",
    "symbolic_bounds",
    "verify_many",
]
