"""relucid: make ReLU classifiers transparent and safe.

The public API lives here; modules not re-exported may change without notice.

Representations used throughout: a polytope is ``(A, b)`` meaning ``A @ x <= b``; an
activation pattern is a boolean array over hidden neurons in layer order (True = active); a
NAP is an int8 array over the same neurons (1 active, 0 inactive, -1 free).
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
from relucid.spec import NapLearner, NapSpec, NotASpecificationError, refined_nap
from relucid.verify import (
    MilpVerifier,
    NapQuery,
    Status,
    Verifier,
    VerifyResult,
    get_verifier,
    load_vnnlib,
    verify_many,
)

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
    "MilpVerifier",
    "ModelFormatError",
    "NapLearner",
    "NapQuery",
    "NapSpec",
    "NotASpecificationError",
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
    "Status",
    "UnsupportedModelError",
    "Verifier",
    "VerifyResult",
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
    "get_verifier",
    "guard",
    "irredundant_rows",
    "is_empty",
    "is_redundant",
    "load_constraints",
    "load_network",
    "load_nnet",
    "load_onnx",
    "load_torch",
    "load_vnnlib",
    "local_affine",
    "parse_constraints",
    "refined_nap",
    "region",
    "sample",
    "save_constraints",
    "verify_many",
    "vertices",
]
