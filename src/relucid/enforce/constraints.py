"""Safe-ordering constraints: the Python front door of the constraint language.

Paper: self-correcting-networks (Leino et al. 2022), section 2 (safe-ordering constraints) and
``DESIGN.md``, section "Enforce". A safe-ordering constraint is a pair ``(pre, post)``:

* ``pre`` is a predicate on the input ``x``, built from input boxes ``lo <= x <= hi`` (ends may
  be infinite, features may be left free) and linear half-spaces ``a . x <= b``, combined with
  ``&`` and ``|``;
* ``post`` is a predicate on the logits ``y``, built from literals ``y_i < y_j``
  (``Out(i) < Out(j)``), ``Out(k).is_max()`` (``y_j < y_k`` for all ``j != k``) and
  ``Out(k).is_min()``, combined with ``&`` and ``|``.

For input ``x``, ``Phi(x, y)`` is the conjunction of the postconditions of the constraints whose
precondition holds at ``x`` (the *active* constraints). Postconditions are normalised to
disjunctive normal form by :func:`relucid.enforce.dnf.to_dnf`: each term is a conjunction of
literals, i.e. a directed graph on the classes with an edge ``j -> i`` for the literal
``y_i < y_j``. The normalisation drops terms whose graph has a cycle (they can never hold) and
terms that contain another term (they add nothing), and refuses to grow past a bound.

Examples
--------
>>> from relucid.enforce import Constraint, InputBox, In, Out
>>> c = Constraint(InputBox([0.6, None], [None, 0.5]), Out(0).is_max() | (Out(1) > Out(2)), "c")
>>> c.post.holds([[3.0, 1.0, 2.0]])
array([ True])
>>> (2 * In(0) - In(1) <= 1).coef
((0, 2.0), (1, -1.0))
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.errors import ConstraintError

BoolArray = NDArray[np.bool_]


def _index(k: object, what: str) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or int(k) < 0:
        raise ConstraintError(f"{what} index must be a non-negative integer, got {k!r}")
    return int(k)


def _number(v: object, what: str) -> float:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ConstraintError(f"{what} must be a number, got {v!r}") from exc
    if math.isnan(f):
        raise ConstraintError(f"{what} is NaN")
    return f


def _as_2d(a: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(a, dtype=np.float64)
    return arr.reshape(1, -1) if arr.ndim == 1 else arr.reshape(arr.shape[0], -1)


# --------------------------------------------------------------------------------------------
# Postconditions
# --------------------------------------------------------------------------------------------
class Post:
    """A postcondition: a predicate on the logits ``y``, shape ``(m,)``."""

    def __and__(self, other: Post) -> AllOf:
        if not isinstance(other, Post):
            return NotImplemented
        return AllOf((*_parts(self, AllOf), *_parts(other, AllOf)))

    def __or__(self, other: Post) -> AnyOf:
        if not isinstance(other, Post):
            return NotImplemented
        return AnyOf((*_parts(self, AnyOf), *_parts(other, AnyOf)))

    def __bool__(self) -> NoReturn:
        raise TypeError(
            "a postcondition has no truth value: combine literals with & and |, "
            "not 'and'/'or' or chained comparisons such as Out(0) < Out(1) < Out(2)"
        )

    def holds(self, y: ArrayLike) -> BoolArray:
        """Whether the postcondition holds for each row of ``y`` (shape (B, m) or (m,))."""
        raise NotImplementedError

    def classes(self) -> frozenset[int]:
        """Class indices the postcondition mentions."""
        raise NotImplementedError


def _parts(p: Post, kind: type) -> tuple[Post, ...]:
    return p.parts if isinstance(p, kind) else (p,)  # type: ignore[attr-defined]


@dataclass(frozen=True, eq=True)
class Less(Post):
    """The literal ``y_lo < y_hi`` (written ``Out(lo) < Out(hi)``)."""

    lo: int
    hi: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "lo", _index(self.lo, "class"))
        object.__setattr__(self, "hi", _index(self.hi, "class"))

    def holds(self, y: ArrayLike) -> BoolArray:
        Y = _as_2d(y)
        return np.asarray(Y[:, self.lo] < Y[:, self.hi])

    def classes(self) -> frozenset[int]:
        return frozenset((self.lo, self.hi))


@dataclass(frozen=True, eq=True)
class IsMax(Post):
    """``y_k`` is strictly the largest logit: ``y_j < y_k`` for every ``j != k``."""

    k: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", _index(self.k, "class"))

    def holds(self, y: ArrayLike) -> BoolArray:
        Y = _as_2d(y)
        others = np.delete(Y, self.k, axis=1)
        return np.asarray((others < Y[:, [self.k]]).all(axis=1))

    def classes(self) -> frozenset[int]:
        return frozenset((self.k,))


@dataclass(frozen=True, eq=True)
class IsMin(Post):
    """``y_k`` is strictly the smallest logit: ``y_k < y_j`` for every ``j != k``."""

    k: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", _index(self.k, "class"))

    def holds(self, y: ArrayLike) -> BoolArray:
        Y = _as_2d(y)
        others = np.delete(Y, self.k, axis=1)
        return np.asarray((Y[:, [self.k]] < others).all(axis=1))

    def classes(self) -> frozenset[int]:
        return frozenset((self.k,))


def _fold(parts: Sequence[Post] | Sequence[Pre], arg: ArrayLike, op: np.ufunc) -> BoolArray:
    """``parts[0].holds(arg) op parts[1].holds(arg) op ...`` (the and/or combinators)."""
    out = parts[0].holds(arg)
    for p in parts[1:]:
        out = op(out, p.holds(arg))
    return np.asarray(out, dtype=bool)


@dataclass(frozen=True, eq=True)
class AllOf(Post):
    """Conjunction of postconditions (``a & b``)."""

    parts: tuple[Post, ...]

    def __post_init__(self) -> None:
        if not self.parts or not all(isinstance(p, Post) for p in self.parts):
            raise ConstraintError("AllOf needs one or more postconditions")

    def holds(self, y: ArrayLike) -> BoolArray:
        return _fold(self.parts, y, np.logical_and)

    def classes(self) -> frozenset[int]:
        return frozenset().union(*(p.classes() for p in self.parts))


@dataclass(frozen=True, eq=True)
class AnyOf(Post):
    """Disjunction of postconditions (``a | b``)."""

    parts: tuple[Post, ...]

    def __post_init__(self) -> None:
        if not self.parts or not all(isinstance(p, Post) for p in self.parts):
            raise ConstraintError("AnyOf needs one or more postconditions")

    def holds(self, y: ArrayLike) -> BoolArray:
        return _fold(self.parts, y, np.logical_or)

    def classes(self) -> frozenset[int]:
        return frozenset().union(*(p.classes() for p in self.parts))


_PRECEDENCE = (
    "& and | bind tighter than < in Python: parenthesise each comparison, "
    "e.g. (Out(0) < Out(1)) | (Out(2) < Out(1))"
)


@dataclass(frozen=True)
class Out:
    """Output (logit) ``k``; compare two of them with ``<`` or ``>`` to get a literal."""

    index: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", _index(self.index, "class"))

    def __lt__(self, other: Out) -> Less:
        if not isinstance(other, Out):
            return NotImplemented
        return Less(self.index, other.index)

    def __gt__(self, other: Out) -> Less:
        if not isinstance(other, Out):
            return NotImplemented
        return Less(other.index, self.index)

    def __le__(self, other: object) -> NoReturn:
        raise TypeError("orderings are strict: use Out(i) < Out(j)")

    def __ge__(self, other: object) -> NoReturn:
        raise TypeError("orderings are strict: use Out(i) > Out(j)")

    def __and__(self, other: object) -> NoReturn:
        raise TypeError(_PRECEDENCE)

    __or__ = __rand__ = __ror__ = __and__

    def is_max(self) -> IsMax:
        """``y_k`` above every other logit."""
        return IsMax(self.index)

    def is_min(self) -> IsMin:
        """``y_k`` below every other logit."""
        return IsMin(self.index)


# --------------------------------------------------------------------------------------------
# Preconditions
# --------------------------------------------------------------------------------------------
class Pre:
    """A precondition: a predicate on the input ``x``, shape ``(n,)``."""

    def __and__(self, other: Pre) -> AllPre:
        if not isinstance(other, Pre):
            return NotImplemented
        return AllPre((*_pparts(self, AllPre), *_pparts(other, AllPre)))

    def __or__(self, other: Pre) -> AnyPre:
        if not isinstance(other, Pre):
            return NotImplemented
        return AnyPre((*_pparts(self, AnyPre), *_pparts(other, AnyPre)))

    def __bool__(self) -> NoReturn:
        raise TypeError("a precondition has no truth value: combine with & and |")

    def holds(self, x: ArrayLike) -> BoolArray:
        """Whether the precondition holds for each row of ``x`` (shape (B, n) or (n,))."""
        raise NotImplementedError

    def features(self) -> frozenset[int]:
        """Feature indices the precondition mentions."""
        raise NotImplementedError


def _pparts(p: Pre, kind: type) -> tuple[Pre, ...]:
    return p.parts if isinstance(p, kind) else (p,)  # type: ignore[attr-defined]


@dataclass(frozen=True, eq=True)
class Always(Pre):
    """The precondition that always holds (a constraint active everywhere)."""

    def holds(self, x: ArrayLike) -> BoolArray:
        return np.ones(_as_2d(x).shape[0], dtype=bool)

    def features(self) -> frozenset[int]:
        return frozenset()


BoundsLike = Sequence[float | None] | Mapping[int, float | None] | ArrayLike


def _bounds(v: BoundsLike | None, default: float, what: str) -> dict[int, float]:
    if v is None:
        return {}
    if isinstance(v, Mapping):
        items = [(_index(k, "feature"), b) for k, b in v.items()]
    else:
        items = list(enumerate(np.asarray(v, dtype=object).reshape(-1).tolist()))
    # + 0.0 turns -0.0 into 0.0, so that printing and parsing are exact inverses
    return {k: (default if b is None else _number(b, what) + 0.0) for k, b in items}


@dataclass(frozen=True, eq=True, init=False)
class InputBox(Pre):
    """The box ``lo <= x <= hi`` (closed; infinite ends and unmentioned features are free).

    Parameters
    ----------
    lo, hi : sequences over the features (``None`` or ``+-inf`` for a free end) or mappings
        ``{feature: bound}`` that mention only the bounded features.

    Attributes
    ----------
    bounds : tuple of ``(feature, lo, hi)`` for the features with at least one finite end,
        sorted by feature.
    """

    bounds: tuple[tuple[int, float, float], ...]

    def __init__(self, lo: BoundsLike | None = None, hi: BoundsLike | None = None) -> None:
        lows = _bounds(lo, -math.inf, "box lower bound")
        highs = _bounds(hi, math.inf, "box upper bound")
        out = []
        for f in sorted(set(lows) | set(highs)):
            a, b = lows.get(f, -math.inf), highs.get(f, math.inf)
            if a > b:
                raise ConstraintError(f"empty box: feature {f} has lower bound {a} > upper {b}")
            if a == math.inf or b == -math.inf:
                raise ConstraintError(f"empty box: feature {f} bounds [{a}, {b}]")
            if a > -math.inf or b < math.inf:
                out.append((f, a, b))
        object.__setattr__(self, "bounds", tuple(out))

    @classmethod
    def from_bounds(cls, bounds: Sequence[tuple[int, float, float]]) -> InputBox:
        """A box from ``(feature, lo, hi)`` triples."""
        return cls({f: a for f, a, _ in bounds}, {f: b for f, _, b in bounds})

    def holds(self, x: ArrayLike) -> BoolArray:
        X = _as_2d(x)
        ok = np.ones(X.shape[0], dtype=bool)
        for f, a, b in self.bounds:
            ok &= (X[:, f] >= a) & (X[:, f] <= b)
        return ok

    def features(self) -> frozenset[int]:
        return frozenset(f for f, _, _ in self.bounds)


@dataclass(frozen=True, eq=True, init=False)
class HalfSpace(Pre):
    """The half-space ``sum_f coef_f x_f <= bound``.

    Parameters
    ----------
    coef : a sequence over the features, or a mapping ``{feature: coefficient}``.
    bound : the right-hand side ``b``.

    Attributes
    ----------
    coef : tuple of ``(feature, coefficient)`` with non-zero coefficients, sorted by feature.
    bound : float.
    """

    coef: tuple[tuple[int, float], ...]
    bound: float

    def __init__(self, coef: BoundsLike, bound: float) -> None:
        c = _bounds(coef, 0.0, "half-space coefficient")
        if any(math.isinf(v) for v in c.values()):
            raise ConstraintError("half-space coefficients must be finite")
        b = _number(bound, "half-space bound") + 0.0
        if math.isinf(b):
            raise ConstraintError("half-space bound must be finite")
        object.__setattr__(self, "coef", tuple((f, v) for f, v in sorted(c.items()) if v != 0))
        object.__setattr__(self, "bound", b)

    def holds(self, x: ArrayLike) -> BoolArray:
        X = _as_2d(x)
        s = np.zeros(X.shape[0])
        for f, v in self.coef:
            s = s + v * X[:, f]
        return np.asarray(s <= self.bound)

    def features(self) -> frozenset[int]:
        return frozenset(f for f, _ in self.coef)


@dataclass(frozen=True, eq=True)
class AllPre(Pre):
    """Conjunction of preconditions (``a & b``)."""

    parts: tuple[Pre, ...]

    def __post_init__(self) -> None:
        if not self.parts or not all(isinstance(p, Pre) for p in self.parts):
            raise ConstraintError("AllPre needs one or more preconditions")

    def holds(self, x: ArrayLike) -> BoolArray:
        return _fold(self.parts, x, np.logical_and)

    def features(self) -> frozenset[int]:
        return frozenset().union(*(p.features() for p in self.parts))


@dataclass(frozen=True, eq=True)
class AnyPre(Pre):
    """Disjunction of preconditions (``a | b``)."""

    parts: tuple[Pre, ...]

    def __post_init__(self) -> None:
        if not self.parts or not all(isinstance(p, Pre) for p in self.parts):
            raise ConstraintError("AnyPre needs one or more preconditions")

    def holds(self, x: ArrayLike) -> BoolArray:
        return _fold(self.parts, x, np.logical_or)

    def features(self) -> frozenset[int]:
        return frozenset().union(*(p.features() for p in self.parts))


@dataclass(frozen=True)
class Linear:
    """A linear expression ``sum_f coef_f x_f + const`` over input features (see :class:`In`).

    Compare with ``<=`` or ``>=`` to get a :class:`HalfSpace`.
    """

    coef: tuple[tuple[int, float], ...] = ()
    const: float = 0.0

    def _combine(self, other: Linear | float, sign: float) -> Linear:
        o = other if isinstance(other, Linear) else Linear((), _number(other, "constant"))
        d = dict(self.coef)
        for f, v in o.coef:
            d[f] = d.get(f, 0.0) + sign * v
        return Linear(tuple(sorted(d.items())), self.const + sign * o.const)

    def __add__(self, other: Linear | float) -> Linear:
        return self._combine(other, 1.0)

    __radd__ = __add__

    def __sub__(self, other: Linear | float) -> Linear:
        return self._combine(other, -1.0)

    def __rsub__(self, other: Linear | float) -> Linear:
        return (-self)._combine(other, 1.0)

    def __neg__(self) -> Linear:
        return Linear(tuple((f, -v) for f, v in self.coef), -self.const)

    def __mul__(self, s: float) -> Linear:
        k = _number(s, "coefficient")
        return Linear(tuple((f, k * v) for f, v in self.coef), k * self.const)

    __rmul__ = __mul__

    def __le__(self, other: Linear | float) -> HalfSpace:
        d = self - other
        return HalfSpace(dict(d.coef), -d.const)

    def __ge__(self, other: Linear | float) -> HalfSpace:
        d = other - self if isinstance(other, Linear) else Linear((), other) - self
        return HalfSpace(dict(d.coef), -d.const)


def In(k: int) -> Linear:
    """Input feature ``k`` as a linear expression: ``In(0) >= 0.6``, ``2*In(0) - In(1) <= 1``."""
    return Linear(((_index(k, "feature"), 1.0),), 0.0)


# --------------------------------------------------------------------------------------------
# Constraints
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, init=False)
class Constraint:
    """A safe-ordering constraint: whenever ``pre(x)`` holds, ``post(f(x))`` must hold.

    Parameters
    ----------
    pre : the precondition; ``None`` means :class:`Always`.
    post : the ordering postcondition.
    name : a label used in reports and in the text format.
    """

    pre: Pre
    post: Post
    name: str = ""

    def __init__(self, pre: Pre | None, post: Post, name: str = "") -> None:
        pre = Always() if pre is None else pre
        if not isinstance(pre, Pre):
            raise ConstraintError(f"precondition must be a Pre, got {type(pre).__name__}")
        if not isinstance(post, Post):
            raise ConstraintError(f"postcondition must be a Post, got {type(post).__name__}")
        object.__setattr__(self, "pre", pre)
        object.__setattr__(self, "post", post)
        object.__setattr__(self, "name", str(name))

    def __str__(self) -> str:
        from relucid.enforce.parse import format_constraint

        return format_constraint(self)


@dataclass(frozen=True, init=False)
class ConstraintSet:
    """Constraints with the names of the input features and classes (a constraint file).

    Attributes
    ----------
    constraints : the constraints, in priority order of nothing (all must hold).
    feature_names, class_names : optional names usable in the text format.
    """

    constraints: tuple[Constraint, ...]
    feature_names: tuple[str, ...] | None = None
    class_names: tuple[str, ...] | None = None

    def __init__(
        self,
        constraints: Sequence[Constraint],
        feature_names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        cs = tuple(constraints)
        if not all(isinstance(c, Constraint) for c in cs):
            raise ConstraintError("a ConstraintSet holds Constraint objects only")
        object.__setattr__(self, "constraints", cs)
        object.__setattr__(self, "feature_names", tuple(feature_names) if feature_names else None)
        object.__setattr__(self, "class_names", tuple(class_names) if class_names else None)
        for what, names in (("feature", self.feature_names), ("class", self.class_names)):
            if names and len(set(names)) != len(names):
                raise ConstraintError(f"duplicate {what} names: {names}")
        if self.class_names is not None:
            top = max((max(c.post.classes()) for c in cs), default=-1)
            if top >= len(self.class_names):
                raise ConstraintError(
                    f"a postcondition mentions class {top} but only "
                    f"{len(self.class_names)} class names are given"
                )

    def __iter__(self) -> Iterator[Constraint]:
        return iter(self.constraints)

    def __len__(self) -> int:
        return len(self.constraints)

    def __getitem__(self, i: int) -> Constraint:
        return self.constraints[i]

    def to_text(self) -> str:
        """The text format (see :mod:`relucid.enforce.parse`); parsing it gives ``self`` back."""
        from relucid.enforce.parse import format_constraints

        return format_constraints(self)


def as_constraint_list(constraints: ConstraintSet | Sequence[Constraint]) -> list[Constraint]:
    """The constraints of a :class:`ConstraintSet` or a sequence, type-checked."""
    cs = list(constraints)
    for c in cs:
        if not isinstance(c, Constraint):
            raise ConstraintError(f"expected Constraint objects, got {type(c).__name__}")
    return cs
