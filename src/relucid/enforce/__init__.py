"""Enforce: safe-ordering constraints and the self-correcting layer.

Paper: self-correcting-networks (Leino et al. 2022); ``DESIGN.md``, section "Enforce".

* the constraint language (:mod:`~relucid.enforce.constraints`): ``Out(i) < Out(j)``,
  ``Out(k).is_max()``, ``InputBox``, ``In(f) <= b``, ``&``, ``|``, ``Constraint``;
* its text format (:mod:`~relucid.enforce.parse`);
* :class:`SafetyLayer`, a ``torch.nn.Module`` that corrects logits to satisfy the active
  constraints, and :func:`guard`, which appends it to a classifier (exportable to ONNX);
* benchmark constraints and data (:mod:`~relucid.enforce.data`): synthetic D(alpha, beta, m),
  ACAS Xu phi_2-phi_10, collision avoidance.
"""

from relucid.enforce.constraints import (
    AllOf,
    AllPre,
    Always,
    AnyOf,
    AnyPre,
    Constraint,
    ConstraintSet,
    HalfSpace,
    In,
    InputBox,
    IsMax,
    IsMin,
    Less,
    Linear,
    Out,
    Post,
    Pre,
)
from relucid.enforce.data import (
    ACAS_CLASSES,
    ACAS_FEATURES,
    CollisionNet,
    SyntheticData,
    acas_constraints,
    acas_network_path,
    acas_properties,
    collision_constraints,
    load_acas_art,
    load_collision,
    load_collision_model,
    synthetic_constraints,
    synthetic_data,
)
from relucid.enforce.dnf import DNF, has_cycle, to_dnf
from relucid.enforce.graph import ancestors, longest_paths, peel, permute_logits
from relucid.enforce.guard import (
    GuardedModel,
    GuardReport,
    OnnxCheck,
    check_onnx,
    evaluate_guard,
    export_onnx,
    guard,
    guard_check,
    guard_export,
    load_data,
)
from relucid.enforce.layer import SafeOutput, SafetyConfig, SafetyLayer, SafetyStatus
from relucid.enforce.parse import (
    format_constraints,
    load_constraints,
    parse_constraints,
    save_constraints,
)

__all__ = [
    "ACAS_CLASSES",
    "ACAS_FEATURES",
    "DNF",
    "AllOf",
    "AllPre",
    "Always",
    "AnyOf",
    "AnyPre",
    "CollisionNet",
    "Constraint",
    "ConstraintSet",
    "GuardReport",
    "GuardedModel",
    "HalfSpace",
    "In",
    "InputBox",
    "IsMax",
    "IsMin",
    "Less",
    "Linear",
    "OnnxCheck",
    "Out",
    "Post",
    "Pre",
    "SafeOutput",
    "SafetyConfig",
    "SafetyLayer",
    "SafetyStatus",
    "SyntheticData",
    "acas_constraints",
    "acas_network_path",
    "acas_properties",
    "ancestors",
    "check_onnx",
    "collision_constraints",
    "evaluate_guard",
    "export_onnx",
    "format_constraints",
    "guard",
    "guard_check",
    "guard_export",
    "has_cycle",
    "load_acas_art",
    "load_collision",
    "load_collision_model",
    "load_constraints",
    "load_data",
    "longest_paths",
    "parse_constraints",
    "peel",
    "permute_logits",
    "save_constraints",
    "synthetic_constraints",
    "synthetic_data",
    "to_dnf",
]
