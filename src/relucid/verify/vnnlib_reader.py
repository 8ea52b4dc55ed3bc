"""The VNN-LIB 1.0 reader: tokenizer, s-expressions, and normalisation to a :class:`VnnProperty`.

The supported syntax and the meaning of a property are described in
:mod:`relucid.verify.vnnlib`. Every error names its line and column.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from relucid.domain import Box
from relucid.errors import VnnlibError, VnnlibSyntaxError
from relucid.verify.vnnlib import MAX_DISJUNCTS, BoolArray, FloatArray, InputRegion, VnnProperty

_TOKEN = re.compile(r";[^\n]*|\(|\)|[^\s();]+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_VARIABLE = re.compile(r"([XY])_(0|[1-9]\d*)")
_IGNORED = frozenset({"check-sat", "get-model", "set-logic", "set-info", "set-option", "exit"})
_COMPARISONS = frozenset({"<=", ">=", "<", ">", "="})
_MAX_DEPTH = 200


class _Atom(NamedTuple):
    text: str
    pos: int


class _List(NamedTuple):
    items: list[_Atom | _List]
    pos: int


_Node = _Atom | _List


class _Reader:
    """Reads one text: s-expressions, then declarations and assertions, then the DNFs."""

    def __init__(self, text: str, source: str, max_disjuncts: int) -> None:
        self.text = text
        self.source = source
        self.limit = max_disjuncts
        self.vars: dict[str, tuple[str, int]] = {}
        # Atoms: (indices, coefficients, rhs, strict) meaning sum coef * v[idx] <= rhs.
        self.atoms: list[tuple[NDArray[np.int64], FloatArray, float, bool]] = []

    def error(self, message: str, pos: int) -> VnnlibSyntaxError:
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return VnnlibSyntaxError(message, line, col, self.source)

    def forms(self) -> Iterator[_List]:
        stack: list[_List] = []
        for m in _TOKEN.finditer(self.text):
            tok = m.group()
            if tok == "(":
                stack.append(_List([], m.start()))
            elif tok == ")":
                if not stack:
                    raise self.error("unbalanced ')'", m.start())
                node = stack.pop()
                if stack:
                    stack[-1].items.append(node)
                else:
                    yield node
            elif tok[0] == ";":
                continue
            elif stack:
                stack[-1].items.append(_Atom(tok, m.start()))
            else:
                raise self.error(f"expected '(' at top level, found {tok!r}", m.start())
        if stack:
            raise self.error("unclosed '(' (the file ends inside it)", stack[-1].pos)

    # -- commands ------------------------------------------------------------------------
    def read(self) -> VnnProperty:
        groups: dict[str, list[list[list[int]]]] = {"X": [], "Y": []}
        group_pos: dict[str, int] = {"X": 0, "Y": 0}
        for form in self.forms():
            head = form.items[0] if form.items else None
            if not isinstance(head, _Atom):
                raise self.error("expected a command such as 'assert'", form.pos)
            if head.text == "declare-const":
                self.declare(form)
            elif head.text == "assert":
                if len(form.items) != 2:
                    raise self.error("'assert' takes exactly one formula", form.pos)
                kinds: set[str] = set()
                dnf = self.formula(form.items[1], kinds, 0)
                if len(kinds) > 1:
                    raise self.error(
                        "an assertion mixes inputs X_i and outputs Y_j (unsupported)", form.pos
                    )
                kind = kinds.pop() if kinds else "X"
                groups[kind].append(dnf)
                group_pos[kind] = form.pos
            elif head.text not in _IGNORED:
                raise self.error(f"unsupported command {head.text!r}", head.pos)
        n, m = self.count("X"), self.count("Y")
        if m == 0 or n == 0:
            raise VnnlibError(f"{self.source}: declares {n} inputs X_i and {m} outputs Y_j")
        ins = self.conjoin(groups["X"], group_pos["X"])
        outs = self.conjoin(groups["Y"], group_pos["Y"])
        regions = [r for r in (self.region(t, n) for t in ins) if r is not None]
        out_terms = [o for o in (self.out_term(t, m) for t in outs) if o is not None]
        return VnnProperty(
            n,
            m,
            regions,
            [(c, d) for c, d, _ in out_terms],
            [s for _, _, s in out_terms],
            source=self.source,
        )

    def declare(self, form: _List) -> None:
        items = form.items
        ok = len(items) == 3 and all(isinstance(i, _Atom) for i in items[1:])
        if not ok or not isinstance(items[1], _Atom) or not isinstance(items[2], _Atom):
            raise self.error("expected (declare-const NAME Real)", form.pos)
        name, sort = items[1], items[2]
        if sort.text != "Real":
            raise self.error(f"only Real variables are supported, not {sort.text!r}", sort.pos)
        match = _VARIABLE.fullmatch(name.text)
        if match is None:
            raise self.error(f"variable {name.text!r} is not named X_i or Y_j", name.pos)
        if name.text in self.vars:
            raise self.error(f"{name.text} is declared twice", name.pos)
        self.vars[name.text] = (match.group(1), int(match.group(2)))

    def count(self, kind: str) -> int:
        idx = sorted(i for k, i in self.vars.values() if k == kind)
        if idx != list(range(len(idx))):
            missing = min(set(range(len(idx) + 1)) - set(idx))
            raise VnnlibError(f"{self.source}: {kind}_{missing} is not declared but later ones are")
        return len(idx)

    # -- formulas ------------------------------------------------------------------------
    def conjoin(self, dnfs: list[list[list[int]]], pos: int) -> list[list[int]]:
        """The DNF of a conjunction: one term per choice of a term from each conjunct."""
        result: list[list[int]] = [[]]
        for dnf in dnfs:
            if len(dnf) == 1:
                for term in result:
                    term.extend(dnf[0])
                continue
            if len(result) * len(dnf) > self.limit:
                raise self.error(
                    f"the DNF reaches {len(result) * len(dnf)} terms, over the bound of "
                    f"{self.limit} (max_disjuncts)",
                    pos,
                )
            result = [t + u for t in result for u in dnf]
        return result

    def formula(self, node: _Node, kinds: set[str], depth: int) -> list[list[int]]:
        if depth > _MAX_DEPTH:
            raise self.error(f"formula nested deeper than {_MAX_DEPTH}", node.pos)
        if isinstance(node, _Atom):
            if node.text in ("true", "false"):
                return [[]] if node.text == "true" else []
            raise self.error(f"expected a formula, found {node.text!r}", node.pos)
        head = node.items[0] if node.items else None
        if not isinstance(head, _Atom):
            raise self.error("expected a formula such as (<= a b), (and ...), (or ...)", node.pos)
        args = node.items[1:]
        if head.text == "and":
            return self.conjoin([self.formula(a, kinds, depth + 1) for a in args], node.pos)
        if head.text == "or":
            terms = [t for a in args for t in self.formula(a, kinds, depth + 1)]
            if len(terms) > self.limit:
                raise self.error(
                    f"the DNF reaches {len(terms)} terms, over the bound of {self.limit} "
                    "(max_disjuncts)",
                    node.pos,
                )
            return terms
        if head.text in _COMPARISONS:
            if len(args) < 2:
                raise self.error(f"{head.text!r} needs two or more terms", node.pos)
            exprs = [self.linear(a, kinds) for a in args]
            term: list[int] = []
            for left, right in itertools.pairwise(exprs):
                if head.text in ("<=", "<", "="):
                    term.append(self.atom(left, right, head.text == "<"))
                if head.text in (">=", ">", "="):
                    term.append(self.atom(right, left, head.text == ">"))
            return [term]
        if head.text == "not":
            raise self.error("'not' is outside the supported VNN-LIB subset", head.pos)
        raise self.error(f"unknown operator {head.text!r} in a formula", head.pos)

    def atom(
        self,
        left: tuple[dict[str, float], float],
        right: tuple[dict[str, float], float],
        strict: bool,
    ) -> int:
        """Record ``left <= right`` as ``sum c_i v_i <= d`` and return its index."""
        coef = dict(left[0])
        for name, c in right[0].items():
            coef[name] = coef.get(name, 0.0) - c
        names = [k for k, c in coef.items() if c != 0.0]
        idx = np.array([self.vars[k][1] for k in names], dtype=np.int64)
        vals = np.array([coef[k] for k in names], dtype=np.float64)
        self.atoms.append((idx, vals, right[1] - left[1], strict))
        return len(self.atoms) - 1

    def linear(self, node: _Node, kinds: set[str]) -> tuple[dict[str, float], float]:
        """A linear term as (coefficients by variable name, constant)."""
        if isinstance(node, _Atom):
            if node.text in self.vars:
                kinds.add(self.vars[node.text][0])
                return {node.text: 1.0}, 0.0
            if _NUMBER.fullmatch(node.text):
                return {}, float(node.text)
            if _VARIABLE.fullmatch(node.text):
                raise self.error(f"{node.text} is used before it is declared", node.pos)
            raise self.error(f"expected a number or a variable, found {node.text!r}", node.pos)
        head = node.items[0] if node.items else None
        if not isinstance(head, _Atom) or len(node.items) < 2:
            raise self.error("expected a term such as (+ a b) or (* 2.0 X_0)", node.pos)
        parts = [self.linear(a, kinds) for a in node.items[1:]]
        if head.text in ("+", "-"):
            if head.text == "-" and len(parts) == 1:
                return {k: -c for k, c in parts[0][0].items()}, -parts[0][1]
            coef = dict(parts[0][0])
            const = parts[0][1]
            sign = -1.0 if head.text == "-" else 1.0
            for terms, c0 in parts[1:]:
                for k, c in terms.items():
                    coef[k] = coef.get(k, 0.0) + sign * c
                const += sign * c0
            return coef, const
        if head.text == "*":
            factor = 1.0
            var_part: tuple[dict[str, float], float] | None = None
            for p in parts:
                if p[0]:
                    if var_part is not None:
                        raise self.error("a product of variables is not linear", node.pos)
                    var_part = p
                else:
                    factor *= p[1]
            if var_part is None:
                return {}, factor
            return {k: factor * c for k, c in var_part[0].items()}, factor * var_part[1]
        if head.text == "/":
            if len(parts) != 2 or parts[1][0] or parts[1][1] == 0.0:
                raise self.error("'/' divides by one non-zero constant only", node.pos)
            q = parts[1][1]
            return {k: c / q for k, c in parts[0][0].items()}, parts[0][1] / q
        raise self.error(f"unknown operator {head.text!r} in a term", head.pos)

    # -- normal forms --------------------------------------------------------------------
    def region(self, term: list[int], n: int) -> InputRegion | None:
        """The polytope of one conjunction over the inputs, or None when it is empty."""
        lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
        s_lo, s_hi = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        rows: list[FloatArray] = []
        rhs: list[float] = []
        s_rows: list[bool] = []
        for a in term:
            idx, vals, d, strict = self.atoms[a]
            if idx.size == 0:
                if d < 0.0:
                    return None
            elif idx.size == 1:
                i, v = int(idx[0]), d / float(vals[0])
                if vals[0] > 0:
                    if v < hi[i] or (v == hi[i] and strict):
                        hi[i], s_hi[i] = v, strict
                elif v > lo[i] or (v == lo[i] and strict):
                    lo[i], s_lo[i] = v, strict
            else:
                row = np.zeros(n)
                row[idx] = vals
                rows.append(row)
                rhs.append(d)
                s_rows.append(strict)
        if (lo > hi).any():
            return None
        A = np.array(rows).reshape(len(rows), n)
        return InputRegion(Box(lo, hi), A, rhs, s_lo, s_hi, s_rows)

    def out_term(self, term: list[int], m: int) -> tuple[FloatArray, FloatArray, BoolArray] | None:
        rows: list[FloatArray] = []
        rhs: list[float] = []
        strict: list[bool] = []
        for a in term:
            idx, vals, d, s = self.atoms[a]
            if idx.size == 0:
                if d < 0.0:
                    return None
                continue
            row = np.zeros(m)
            row[idx] = vals
            rows.append(row)
            rhs.append(d)
            strict.append(s)
        return np.array(rows).reshape(len(rows), m), np.array(rhs), np.array(strict, dtype=bool)


# -- front door -----------------------------------------------------------------------------
def parse_vnnlib(
    text: str, source: str = "<text>", *, max_disjuncts: int = MAX_DISJUNCTS
) -> VnnProperty:
    """Read a VNN-LIB 1.0 property from ``text``.

    Parameters
    ----------
    text : the VNN-LIB source.
    source : a name for messages (the file path).
    max_disjuncts : bound on the DNF terms of the input part and of the output part;
        a formula whose normal form grows past it raises :class:`VnnlibSyntaxError`.

    Raises
    ------
    VnnlibSyntaxError
        Malformed or unsupported text, with the line and column.
    VnnlibError
        Missing declarations (no inputs or outputs, gaps in the numbering).
    """
    if max_disjuncts < 1:
        raise ValueError("max_disjuncts must be at least 1")
    return _Reader(text, source, max_disjuncts).read()


def load_vnnlib(path: str | Path, *, max_disjuncts: int = MAX_DISJUNCTS) -> VnnProperty:
    """Read a ``.vnnlib`` file (see :func:`parse_vnnlib`)."""
    p = Path(path)
    return parse_vnnlib(p.read_text(), str(p), max_disjuncts=max_disjuncts)
