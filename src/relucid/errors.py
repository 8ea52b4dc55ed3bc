"""The exceptions relucid raises.

Every failure a user can cause (a model we cannot read, an input of the wrong shape, a
solver that gives up) raises a subclass of :class:`RelucidError` with a message that names
what went wrong; relucid never turns such a failure into a result.
"""

from __future__ import annotations


class RelucidError(Exception):
    """Base class of every error relucid raises on purpose."""


class UnsupportedModelError(RelucidError):
    """The model contains a layer or graph node that is not affine-then-ReLU.

    The message names the offending node or layer and its type.
    """


class ModelFormatError(RelucidError):
    """A model file is malformed (truncated ``.nnet``, inconsistent shapes, unknown suffix)."""


class InputError(RelucidError, ValueError):
    """An input has the wrong shape, or holds NaN or infinite values, or lies off the domain."""


class SolverError(RelucidError):
    """HiGHS reported trouble (numerical failure, unexpected status, time limit).

    Raised instead of returning a result that we cannot trust.
    """


class EmptyPolytopeError(RelucidError):
    """An operation that needs a non-empty polytope was given an empty one."""


class _Located(RelucidError):
    """An error at a known place of a text: the message reads ``source:line:column: ...``."""

    def __init__(self, message: str, line: int, column: int, source: str = "<text>") -> None:
        super().__init__(f"{source}:{line}:{column}: {message}")
        self.line = line
        self.column = column
        self.source = source


class ConstraintError(RelucidError, ValueError):
    """A safe-ordering constraint is invalid for its use.

    Raised for class or feature indices out of range, names that are not declared, and
    postconditions whose disjunctive normal form grows past the configured bound (the
    message gives the size reached and the bound).
    """


class ConstraintSyntaxError(_Located, ConstraintError):
    """A constraint text is malformed; ``line`` and ``column`` (1-based) say where.

    Attributes
    ----------
    line, column : position of the offending token in the text.
    source : the file name, or ``"<text>"``.
    """


class VnnlibError(ModelFormatError):
    """A VNN-LIB property cannot be used: it leaves the supported 1.0 subset, its disjunctive
    normal form grows past the configured bound, or an instances file is malformed."""


class VnnlibSyntaxError(_Located, VnnlibError):
    """A VNN-LIB text is malformed or unsupported at a known place.

    Attributes
    ----------
    line, column : position (1-based) of the offending token in the text.
    source : the file name, or ``"<text>"``.
    """
