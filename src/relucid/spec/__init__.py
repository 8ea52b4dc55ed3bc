"""Specify: neural activation pattern (NAP) specifications and how to learn minimal ones.

Paper: minimal-neural-specifications, sections 2-4.

* :mod:`~relucid.spec.nap`: :class:`NapSpec` (the NAP, its class, network fingerprint, domain
  and provenance; JSON; batched membership; ``|P|``; subsumption) and :func:`refined_nap`;
* :mod:`~relucid.spec.coarsen`: COARSEN, group COARSEN and STOCHCOARSEN behind
  :class:`NapLearner`, with a verdict cache that makes runs resumable from a checkpoint file;
* :mod:`~relucid.spec.cover`: :func:`grow_coverage`, which asks for each input a spec leaves
  out whether any specification covers it with the rest (FALSIFIED is a proof that none does)
  and grows the spec where one does; :func:`finest_nap`;
* :mod:`~relucid.spec.bound`: :func:`coverage_bound`, an upper bound on the inputs *any*
  specification of the class covers, certified by counterexamples (a small MILP), and
  :func:`max_coverage`, the counterexample-guided search for the spec that covers most;
* :mod:`~relucid.spec.implied`: the implied pass (:func:`drop_implied`): free the neurons
  whose state the rest of a NAP implies (same region), and :func:`verify_spec`, which
  re-verifies a learned spec by that certificate;
* :mod:`~relucid.spec.executor`: where independent verifier calls run (serial, a process
  pool, Ray actors);
* :mod:`~relucid.spec.measure`: the appendix C volume estimate (:func:`estimate_volume`);
* :mod:`~relucid.spec.monitor`: :class:`NapMonitor`, inputs outside every spec, in batch or
  as a torch forward hook;
* :mod:`~relucid.spec.plot`: :func:`plot_nap`, the NAP by layer and its run's verdicts;
  :func:`plot_blockers`, the counterexamples behind ``nap cover``'s proofs as images.
"""

from relucid.spec.bound import (
    BoundRound,
    CoverBound,
    MaxCoverReport,
    coverage_bound,
    max_coverage,
    misclassified,
)
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
from relucid.spec.cover import CoverReport, CoverStep, finest_nap, grow_coverage
from relucid.spec.executor import (
    EXECUTORS,
    Executor,
    ProcessExecutor,
    RayExecutor,
    SerialExecutor,
    make_executor,
)
from relucid.spec.implied import ImpliedPass, drop_implied, verify_spec
from relucid.spec.measure import (
    VolumeEstimate,
    estimate_volume,
    largest_verified_ball,
    pseudo_centre,
)
from relucid.spec.monitor import MonitorReport, NapMonitor
from relucid.spec.nap import NapSpec, refined_nap
from relucid.spec.plot import plot_blockers, plot_nap

__all__ = [
    "EXECUTORS",
    "METHODS",
    "BoundRound",
    "CoverBound",
    "CoverReport",
    "CoverStep",
    "Executor",
    "ImpliedPass",
    "MaxCoverReport",
    "MonitorReport",
    "NapLearner",
    "NapMonitor",
    "NapSpec",
    "NotASpecificationError",
    "ProcessExecutor",
    "RayExecutor",
    "SerialExecutor",
    "VerdictCache",
    "VolumeEstimate",
    "coarsen",
    "coverage_bound",
    "drop_implied",
    "estimate_volume",
    "finest_nap",
    "group_coarsen",
    "grow_coverage",
    "largest_verified_ball",
    "make_executor",
    "max_coverage",
    "misclassified",
    "nap_key",
    "opt_adv_prune",
    "plot_blockers",
    "plot_nap",
    "pseudo_centre",
    "refined_nap",
    "stoch_coarsen",
    "verify_spec",
]
