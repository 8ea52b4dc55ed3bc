"""Disjunctive normal form of postconditions and preconditions.

Paper: self-correcting-networks, section 3 (the layer works on the DNF of the active
postconditions: one conjunction of literals ``y_i < y_j``, i.e. one ordering graph, per term)
and appendix B.2 (a term whose graph has a cycle can never hold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Union

from relucid.enforce.constraints import (
    AllOf,
    AllPre,
    Always,
    AnyOf,
    AnyPre,
    HalfSpace,
    InputBox,
    IsMax,
    IsMin,
    Less,
    Post,
    Pre,
)
from relucid.errors import ConstraintError

#: A DNF term: sorted literals ``(i, j)``, each meaning ``y_i < y_j``.
Term = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class DNF:
    """A postcondition in disjunctive normal form, with the size of the normalisation.

    Attributes
    ----------
    terms : tuple of :data:`Term`; the postcondition holds iff some term's literals all hold.
        Every term's graph is acyclic; no term contains another.
    literals : literal occurrences in the formula as written (``is_max`` counts ``m - 1``).
    naive_terms : terms that plain distribution of ``&`` over ``|`` would give (no
        simplification): the blow-up that the simplification avoids.
    dropped_cyclic : terms dropped because their ordering graph has a cycle.
    dropped_subsumed : terms dropped because another term is a subset of them.
    """

    terms: tuple[Term, ...]
    literals: int
    naive_terms: int
    dropped_cyclic: int
    dropped_subsumed: int
    bound: int

    @property
    def blowup(self) -> float:
        """Literals in the DNF divided by literals in the formula as written."""
        return sum(len(t) for t in self.terms) / max(self.literals, 1)

    def to_dict(self) -> dict[str, object]:
        return {
            "terms": len(self.terms),
            "literals_in": self.literals,
            "literals_out": sum(len(t) for t in self.terms),
            "naive_terms": self.naive_terms,
            "dropped_cyclic": self.dropped_cyclic,
            "dropped_subsumed": self.dropped_subsumed,
            "bound": self.bound,
        }


def has_cycle(term: Term | frozenset[tuple[int, int]]) -> bool:
    """Whether the literals ``y_i < y_j`` of ``term`` are contradictory (their graph, with an
    edge ``j -> i`` per literal, has a cycle). Depth-first search; ``term`` is small."""
    succ: dict[int, list[int]] = {}
    for i, j in term:
        succ.setdefault(j, []).append(i)
    state: dict[int, int] = {}  # 1 on the stack, 2 done
    for start in list(succ):
        if state.get(start):
            continue
        stack = [(start, iter(succ.get(start, ())))]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return True
            elif not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(succ.get(nxt, ()))))
    return False


@dataclass
class _Count:
    literals: int = 0
    cyclic: int = 0
    subsumed: int = 0
    bound: int = 0
    name: str = ""


def _simplify(
    terms: list[frozenset[tuple[int, int]]], cnt: _Count
) -> list[frozenset[tuple[int, int]]]:
    seen: set[frozenset[tuple[int, int]]] = set()
    kept: list[frozenset[tuple[int, int]]] = []
    for t in terms:
        if t in seen:
            continue
        seen.add(t)
        if has_cycle(t):
            cnt.cyclic += 1
            continue
        kept.append(t)
    by_size = sorted(kept, key=len)
    out = []
    for t in kept:
        if any(len(s) < len(t) and s < t for s in by_size if len(s) < len(t)):
            cnt.subsumed += 1
        else:
            out.append(t)
    if len(out) > cnt.bound:
        label = f"constraint {cnt.name!r}: " if cnt.name else ""
        raise ConstraintError(
            f"{label}the postcondition's disjunctive normal form has {len(out)} terms after "
            f"simplification, over the bound of {cnt.bound}; split the constraint or raise "
            "max_terms"
        )
    return out


def _dnf(p: Post, m: int, cnt: _Count) -> list[frozenset[tuple[int, int]]]:
    if isinstance(p, Less):
        cnt.literals += 1
        return [frozenset(((p.lo, p.hi),))]
    if isinstance(p, IsMax):
        cnt.literals += m - 1
        return [frozenset((j, p.k) for j in range(m) if j != p.k)]
    if isinstance(p, IsMin):
        cnt.literals += m - 1
        return [frozenset((p.k, j) for j in range(m) if j != p.k)]
    if isinstance(p, AnyOf):
        return _simplify([t for q in p.parts for t in _dnf(q, m, cnt)], cnt)
    if isinstance(p, AllOf):
        acc: list[frozenset[tuple[int, int]]] = [frozenset()]
        for q in p.parts:
            sub = _dnf(q, m, cnt)
            if len(acc) * len(sub) > 64 * cnt.bound:
                raise ConstraintError(
                    f"constraint {cnt.name!r}: distributing & over | would give "
                    f"{len(acc) * len(sub)} terms (bound {cnt.bound})"
                )
            prod = [a | b for a in acc for b in sub]
            acc = _simplify(prod, cnt)
        return acc
    raise ConstraintError(f"unknown postcondition {p!r}")


def _naive_terms(p: Post) -> int:
    if isinstance(p, AnyOf):
        return sum(_naive_terms(q) for q in p.parts)
    if isinstance(p, AllOf):
        return math.prod(_naive_terms(q) for q in p.parts)
    return 1


def to_dnf(post: Post, num_classes: int, max_terms: int = 1024, name: str = "") -> DNF:
    """Normalise a postcondition to disjunctive normal form over literals ``y_i < y_j``.

    ``&`` is distributed over ``|`` one operand at a time; after each step duplicate terms,
    contradictory terms (cyclic ordering graphs, section 3 / appendix B.2) and terms that
    contain another term are dropped, so the intermediate sizes stay small in practice.

    Parameters
    ----------
    post : the postcondition.
    num_classes : ``m``; needed to expand ``is_max``/``is_min`` and to check indices.
    max_terms : the bound on the number of terms; going past it raises.
    name : the constraint's name, for messages.

    Raises
    ------
    ConstraintError
        If a class index is ``>= num_classes`` or the normal form exceeds ``max_terms``.
    """
    bad = [k for k in post.classes() if k >= num_classes]
    if bad:
        label = f"constraint {name!r}: " if name else ""
        raise ConstraintError(
            f"{label}class index {max(bad)} out of range for {num_classes} classes"
        )
    cnt = _Count(bound=max_terms, name=name)
    terms = _simplify(_dnf(post, num_classes, cnt), cnt)  # also catches a lone y_i < y_i
    return DNF(
        tuple(tuple(sorted(t)) for t in terms),
        cnt.literals,
        _naive_terms(post),
        cnt.cyclic,
        cnt.subsumed,
        max_terms,
    )


class Interval(NamedTuple):
    """A precondition atom ``lo <= x_feature <= hi`` (one side may be infinite)."""

    feature: int
    lo: float
    hi: float


#: A precondition atom: an :class:`Interval` or a :class:`HalfSpace`.
Atom = Union[Interval, "HalfSpace"]


def pre_dnf(pre: Pre, max_terms: int = 1024, name: str = "") -> list[tuple[Atom, ...]]:
    """A precondition as a disjunction of conjunctions of atoms.

    A box becomes one :class:`Interval` per bounded feature (evaluated exactly, feature by
    feature, without a matrix product); half-spaces stay whole; :class:`Always` is the empty
    conjunction.
    """

    def rec(p: Pre) -> list[tuple[Atom, ...]]:
        if isinstance(p, Always):
            return [()]
        if isinstance(p, InputBox):
            return [tuple(Interval(f, a, b) for f, a, b in p.bounds)]
        if isinstance(p, HalfSpace):
            return [(p,)]
        if isinstance(p, AnyPre):
            out = [t for q in p.parts for t in rec(q)]
        elif isinstance(p, AllPre):
            out = [()]
            for q in p.parts:
                out = [a + b for a in out for b in rec(q)]
                if len(out) > max_terms:
                    break
        else:
            raise ConstraintError(f"unknown precondition {p!r}")
        if len(out) > max_terms:
            raise ConstraintError(
                f"constraint {name!r}: the precondition's disjunctive normal form has more "
                f"than {max_terms} terms"
            )
        return out

    return rec(pre)
