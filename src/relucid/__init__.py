"""relucid: make ReLU classifiers transparent and safe.

The public API lives here; modules not re-exported may change without notice.

Representations used throughout: a polytope is ``(A, b)`` meaning ``A @ x <= b``; an
activation pattern is a boolean array over hidden neurons in layer order (True = active).
"""

from relucid.domain import Box
from relucid.enforce import (
    Constraint,
    ConstraintSet,
    GuardedModel,
    HalfSpace,
    In,
    InputBox,
    Out,
    SafeOutput,
    SafetyConfig,
    SafetyLayer,
    SafetyStatus,
    guard,
    load_constraints,
    parse_constraints,
    save_constraints,
)
from relucid.errors import (
    ConstraintError,
    ConstraintSyntaxError,
    EmptyPolytopeError,
    InputError,
    ModelFormatError,
    RelucidError,
    SolverError,
    UnsupportedModelError,
    VnnlibError,
    VnnlibSyntaxError,
)
from relucid.explain import Explainer, ExplainerConfig, WhyExplanation
from relucid.io import data_dir, from_sequential, load_network, load_nnet, load_onnx, load_torch
from relucid.lp import LinearProgram, LPResult, LPStatus, SolverTimeout
from relucid.network import ReluNetwork
from relucid.pattern import LocalAffine, local_affine
from relucid.polytope import (
    Ball,
    bounding_box,
    chebyshev_ball,
    contains,
    from_vertices,
    is_empty,
    is_redundant,
    sample,
    vertices,
)
from relucid.redundancy import ReductionStats, irredundant_rows
from relucid.region import LabelledPolytope, RowKind, RowOrigin, region

__version__ = "0.1.0"

__all__ = [
    "Ball",
    "Box",
    "Constraint",
    "ConstraintError",
    "ConstraintSet",
    "ConstraintSyntaxError",
    "EmptyPolytopeError",
    "Explainer",
    "ExplainerConfig",
    "GuardedModel",
    "HalfSpace",
    "In",
    "InputBox",
    "InputError",
    "LPResult",
    "LPStatus",
    "LabelledPolytope",
    "LinearProgram",
    "LocalAffine",
    "ModelFormatError",
    "Out",
    "ReductionStats",
    "ReluNetwork",
    "RelucidError",
    "RowKind",
    "RowOrigin",
    "SafeOutput",
    "SafetyConfig",
    "SafetyLayer",
    "SafetyStatus",
    "SolverError",
    "SolverTimeout",
    "UnsupportedModelError",
    "VnnlibError",
    "VnnlibSyntaxError",
    "WhyExplanation",
    "__version__",
    "bounding_box",
    "chebyshev_ball",
    "contains",
    "data_dir",
    "from_sequential",
    "from_vertices",
    "guard",
    "irredundant_rows",
    "is_empty",
    "is_redundant",
    "load_constraints",
    "load_network",
    "load_nnet",
    "load_onnx",
    "load_torch",
    "local_affine",
    "parse_constraints",
    "region",
    "sample",
    "save_constraints",
    "vertices",
]
