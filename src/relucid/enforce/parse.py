"""The constraint text format: a parser with line/column errors, and its printer.

A file holds optional headers naming the input features and the classes, then one block per
constraint. Newlines are not significant (a block runs to the next ``constraint``); ``#``
starts a comment that runs to the end of the line::

    # ACAS Xu phi_8, max-logit convention
    features: rho, theta, psi, v_own, v_int
    classes: COC, WL, WR, SL, SR

    constraint phi8:
        if box(theta: [-0.5, -0.375], psi: [-0.0159, 0.0159], v_own: [-0.0455, inf])
        then is_max(WL) | is_max(COC)

    constraint "no strong turn near the ground":
        if 2*rho - v_own <= 0.1 & box(psi: [-inf, 0.2]) | true
        then SL < COC & SR < COC

Grammar (``&`` binds tighter than ``|``; parentheses group)::

    file       := header* constraint*        (headers may come anywhere before their use)
    header     := ("features" | "classes") ":" NAME ("," NAME)*
    constraint := "constraint" [NAME | STRING] ":" ["if" pre] "then" post
    pre        := pre_and ("|" pre_and)*      pre_and := pre_atom ("&" pre_atom)*
    pre_atom   := "(" pre ")" | "true" | box | linear ("<=" | ">=") linear
    box        := "box" "(" [feature ":" "[" number "," number "]" ("," ...)*] ")"
    linear     := ["+" | "-"] term (("+" | "-") term)*    term := number ["*" feature] | feature
    post       := post_and ("|" post_and)*    post_and := post_atom ("&" post_atom)*
    post_atom  := "(" post ")" | ("is_max" | "is_min") "(" class ")" | class ("<" | ">") class
    feature    := NAME | "x" "[" INT "]"      class := NAME | "y" "[" INT "]"
    number     := ["+" | "-"] (NUMBER | "inf")

Names are the declared feature and class names; ``x[i]`` and ``y[j]`` always work. Printing
uses the declared names where there are some and ``repr`` of floats, so that parsing the
printed text gives back equal objects (:func:`format_constraints` then
:func:`parse_constraints` is the identity on :class:`ConstraintSet`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from relucid.enforce.constraints import (
    AllOf,
    AllPre,
    Always,
    AnyOf,
    AnyPre,
    Constraint,
    ConstraintSet,
    HalfSpace,
    InputBox,
    IsMax,
    IsMin,
    Less,
    Post,
    Pre,
)
from relucid.errors import ConstraintError, ConstraintSyntaxError

KEYWORDS = frozenset(
    {"constraint", "if", "then", "box", "true", "is_max", "is_min", "features", "classes", "inf"}
)
_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\f\v]+) | (?P<nl>\n) | (?P<comment>\#[^\n]*)
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<name>[^\W\d]\w*)
    | (?P<string>"(?:[^"\\\n]|\\.)*")
    | (?P<op><=|>=|[()\[\],:<>&|+\-*])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Tok:
    kind: str  # name, number, string, op, eof
    text: str
    line: int
    col: int


def _tokenize(text: str, source: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos, line, line_start = 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ConstraintSyntaxError(
                f"unexpected character {text[pos]!r}", line, pos - line_start + 1, source
            )
        kind = m.lastgroup or ""
        if kind == "nl":
            line, line_start = line + 1, m.end()
        elif kind not in ("ws", "comment"):
            toks.append(_Tok(kind, m.group(), line, m.start() - line_start + 1))
        pos = m.end()
    toks.append(_Tok("eof", "", line, pos - line_start + 1))
    return toks


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.toks = _tokenize(text, source)
        self.i = 0
        self.source = source
        self.features: tuple[str, ...] | None = None
        self.classes: tuple[str, ...] | None = None

    # -- helpers -----------------------------------------------------------------------------
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def error(self, message: str, tok: _Tok | None = None) -> ConstraintSyntaxError:
        t = tok or self.tok
        return ConstraintSyntaxError(message, t.line, t.col, self.source)

    def found(self) -> str:
        return "end of file" if self.tok.kind == "eof" else repr(self.tok.text)

    def at(self, text: str) -> bool:
        return self.tok.kind in ("op", "name") and self.tok.text == text

    def take(self, text: str) -> _Tok:
        if not self.at(text):
            raise self.error(f"expected {text!r}, found {self.found()}")
        t = self.tok
        self.i += 1
        return t

    def peek(self, k: int = 1) -> _Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    # -- file --------------------------------------------------------------------------------
    def file(self) -> ConstraintSet:
        constraints: list[Constraint] = []
        names: dict[str, _Tok] = {}
        while self.tok.kind != "eof":
            if self.at("features") or self.at("classes"):
                self.header(bool(constraints))
            elif self.at("constraint"):
                start = self.tok
                c = self.constraint()
                if c.name and c.name in names:
                    first = names[c.name]
                    raise self.error(
                        f"duplicate constraint name {c.name!r} (first at line {first.line})",
                        start,
                    )
                names[c.name] = start
                constraints.append(c)
            else:
                raise self.error(
                    f"expected 'constraint', 'features' or 'classes', found {self.found()}"
                )
        try:
            return ConstraintSet(constraints, self.features, self.classes)
        except ConstraintError as exc:
            raise self.error(str(exc), self.toks[0]) from exc

    def header(self, after_constraints: bool) -> None:
        kw = self.tok
        self.i += 1
        if after_constraints:
            raise self.error(f"'{kw.text}' must come before the first constraint", kw)
        if getattr(self, kw.text) is not None:
            raise self.error(f"'{kw.text}' declared twice", kw)
        self.take(":")
        names: list[str] = []
        while True:
            t = self.tok
            if t.kind == "string":
                name = _unquote(t.text)
            elif t.kind == "name":
                if t.text in KEYWORDS or t.text in ("x", "y"):
                    raise self.error(
                        f"{t.text!r} is reserved: quote it to use it as a {kw.text[:-1]} name"
                    )
                name = t.text
            else:
                raise self.error(f"expected a name, found {self.found()}")
            if name in names:
                raise self.error(f"duplicate name {name!r}")
            names.append(name)
            self.i += 1
            if not self.at(","):
                break
            self.i += 1
        setattr(self, kw.text, tuple(names))

    def constraint(self) -> Constraint:
        self.take("constraint")
        name = ""
        if self.tok.kind == "string":
            name = _unquote(self.tok.text)
            self.i += 1
        elif self.tok.kind == "name" and not self.at("if") and not self.at("then"):
            if self.tok.text in KEYWORDS:
                raise self.error(f"{self.tok.text!r} is a keyword; quote the name")
            name = self.tok.text
            self.i += 1
        self.take(":")
        pre: Pre = Always()
        if self.at("if"):
            self.i += 1
            pre = self.pre()
        self.take("then")
        return Constraint(pre, self.post(), name)

    # -- preconditions -----------------------------------------------------------------------
    def pre(self) -> Pre:
        parts = [self.pre_and()]
        while self.at("|"):
            self.i += 1
            parts.append(self.pre_and())
        return parts[0] if len(parts) == 1 else AnyPre(tuple(parts))

    def pre_and(self) -> Pre:
        parts = [self.pre_atom()]
        while self.at("&"):
            self.i += 1
            parts.append(self.pre_atom())
        return parts[0] if len(parts) == 1 else AllPre(tuple(parts))

    def pre_atom(self) -> Pre:
        if self.at("("):
            self.i += 1
            p = self.pre()
            self.take(")")
            return p
        if self.at("true"):
            self.i += 1
            return Always()
        if self.at("box"):
            return self.box()
        start = self.tok
        lhs = self.linear()
        if not (self.at("<=") or self.at(">=")):
            raise self.error(
                f"expected '<=' or '>=' after a linear expression, found {self.found()}"
            )
        op = self.tok.text
        self.i += 1
        rhs = self.linear()
        coef = dict(lhs[0])
        for f, v in rhs[0].items():
            coef[f] = coef.get(f, 0.0) - v
        const = lhs[1] - rhs[1]
        if op == ">=":
            coef = {f: -v for f, v in coef.items()}
            const = -const
        try:
            return HalfSpace(coef, -const)
        except ConstraintError as exc:
            raise self.error(str(exc), start) from exc

    def box(self) -> InputBox:
        start = self.take("box")
        self.take("(")
        bounds: list[tuple[int, float, float]] = []
        seen: set[int] = set()
        while not self.at(")"):
            if bounds:
                if not self.at(","):
                    raise self.error(f"expected ',' or ')' in box(...), found {self.found()}")
                self.i += 1
            ft = self.tok
            f = self.feature()
            if f in seen:
                raise self.error(f"feature {ft.text!r} bounded twice in one box", ft)
            seen.add(f)
            self.take(":")
            self.take("[")
            lo = self.number()
            self.take(",")
            hi = self.number()
            self.take("]")
            if lo > hi or lo == math.inf or hi == -math.inf:
                raise self.error(f"empty interval [{lo}, {hi}]", ft)
            bounds.append((f, lo, hi))
        self.take(")")
        try:
            return InputBox.from_bounds(bounds)
        except ConstraintError as exc:
            raise self.error(str(exc), start) from exc

    def number(self) -> float:
        sign = 1.0
        if self.at("-") or self.at("+"):
            sign = -1.0 if self.tok.text == "-" else 1.0
            self.i += 1
        if self.at("inf"):
            self.i += 1
            return sign * math.inf
        if self.tok.kind != "number":
            raise self.error(f"expected a number, found {self.found()}")
        v = float(self.tok.text)
        self.i += 1
        return sign * v

    def linear(self) -> tuple[dict[int, float], float]:
        coef: dict[int, float] = {}
        const = 0.0
        sign = 1.0
        if self.at("-") or self.at("+"):
            sign = -1.0 if self.tok.text == "-" else 1.0
            self.i += 1
        while True:
            if self.tok.kind == "number":
                v = float(self.tok.text)
                self.i += 1
                if self.at("*"):
                    self.i += 1
                    f = self.feature()
                    coef[f] = coef.get(f, 0.0) + sign * v
                else:
                    const += sign * v
            elif self.tok.kind in ("name", "string") and not self.at("inf"):
                f = self.feature()
                coef[f] = coef.get(f, 0.0) + sign
            else:
                raise self.error(f"expected a number or a feature, found {self.found()}")
            if not (self.at("+") or self.at("-")):
                return coef, const
            sign = -1.0 if self.tok.text == "-" else 1.0
            self.i += 1

    def feature(self) -> int:
        return self._ref("x", self.features, "feature")

    def cls(self) -> int:
        return self._ref("y", self.classes, "class")

    def _ref(self, letter: str, names: tuple[str, ...] | None, what: str) -> int:
        t = self.tok
        if t.kind == "string":
            name = _unquote(t.text)
            if names is None or name not in names:
                raise self.error(f"unknown {what} {name!r}")
            self.i += 1
            return names.index(name)
        if t.kind != "name":
            raise self.error(f"expected a {what}, found {self.found()}")
        if t.text == letter and self.peek().text == "[":
            self.i += 2
            it = self.tok
            if it.kind != "number" or not it.text.isdigit():
                raise self.error(f"expected a {what} index, found {self.found()}")
            k = int(it.text)
            self.i += 1
            self.take("]")
            if names is not None and k >= len(names):
                raise self.error(
                    f"{what} index {k} out of range: {len(names)} {what} names are declared", it
                )
            return k
        if names is None or t.text not in names:
            known = f"declared: {', '.join(names)}" if names else f"no {what} names declared"
            raise self.error(f"unknown {what} {t.text!r} ({known}; or write {letter}[i])")
        self.i += 1
        return names.index(t.text)

    # -- postconditions ----------------------------------------------------------------------
    def post(self) -> Post:
        parts = [self.post_and()]
        while self.at("|"):
            self.i += 1
            parts.append(self.post_and())
        return parts[0] if len(parts) == 1 else AnyOf(tuple(parts))

    def post_and(self) -> Post:
        parts = [self.post_atom()]
        while self.at("&"):
            self.i += 1
            parts.append(self.post_atom())
        return parts[0] if len(parts) == 1 else AllOf(tuple(parts))

    def post_atom(self) -> Post:
        if self.at("("):
            self.i += 1
            p = self.post()
            self.take(")")
            return p
        if self.at("is_max") or self.at("is_min"):
            kind = self.tok.text
            self.i += 1
            self.take("(")
            k = self.cls()
            self.take(")")
            return IsMax(k) if kind == "is_max" else IsMin(k)
        a = self.cls()
        if self.at("<=") or self.at(">="):
            raise self.error("orderings are strict: use '<' or '>'")
        if not (self.at("<") or self.at(">")):
            raise self.error(f"expected '<' or '>' after a class, found {self.found()}")
        op = self.tok.text
        self.i += 1
        b = self.cls()
        return Less(a, b) if op == "<" else Less(b, a)


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s[1:-1])


def parse_constraints(text: str, source: str = "<text>") -> ConstraintSet:
    """Parse the text format (module docstring) into a :class:`ConstraintSet`.

    Raises
    ------
    ConstraintSyntaxError
        With the 1-based line and column of the offending token.
    """
    return _Parser(text, source).file()


def load_constraints(path: str | Path) -> ConstraintSet:
    """Read a constraint file (errors name the file, line and column)."""
    p = Path(path)
    if not p.is_file():
        raise ConstraintError(f"no such constraint file: {p}")
    return parse_constraints(p.read_text(encoding="utf-8"), str(p))


def save_constraints(constraints: ConstraintSet, path: str | Path) -> Path:
    """Write ``constraints`` in the text format; returns the path."""
    p = Path(path)
    p.write_text(format_constraints(constraints), encoding="utf-8")
    return p


# --------------------------------------------------------------------------------------------
# Printing
# --------------------------------------------------------------------------------------------
def _num(v: float) -> str:
    return "inf" if v == math.inf else "-inf" if v == -math.inf else repr(float(v))


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _plain(name: str) -> bool:
    return bool(re.fullmatch(r"[^\W\d]\w*", name)) and name not in KEYWORDS


def _name(k: int, names: Sequence[str] | None, letter: str) -> str:
    if names is None or k >= len(names):
        return f"{letter}[{k}]"
    n = names[k]
    return n if _plain(n) and n not in ("x", "y") else _quote(n)


def format_pre(p: Pre, features: Sequence[str] | None = None) -> str:
    """A precondition in the text format."""
    if isinstance(p, Always):
        return "true"
    if isinstance(p, InputBox):
        inner = ", ".join(
            f"{_name(f, features, 'x')}: [{_num(a)}, {_num(b)}]" for f, a, b in p.bounds
        )
        return f"box({inner})"
    if isinstance(p, HalfSpace):
        terms = []
        for f, v in p.coef:
            mag = abs(v)
            body = (
                _name(f, features, "x") if mag == 1.0 else f"{_num(mag)}*{_name(f, features, 'x')}"
            )
            sign = "-" if v < 0 else "+"
            terms.append((sign, body))
        if not terms:
            lhs = "0"
        else:
            first_sign, first = terms[0]
            lhs = ("-" if first_sign == "-" else "") + first
            lhs += "".join(f" {s} {b}" for s, b in terms[1:])
        return f"{lhs} <= {_num(p.bound)}"
    if isinstance(p, AllPre | AnyPre):
        op = " & " if isinstance(p, AllPre) else " | "
        return op.join(
            f"({format_pre(q, features)})"
            if isinstance(q, AllPre | AnyPre)
            else format_pre(q, features)
            for q in p.parts
        )
    raise ConstraintError(f"cannot print precondition {p!r}")


def format_post(p: Post, classes: Sequence[str] | None = None) -> str:
    """A postcondition in the text format."""
    if isinstance(p, Less):
        return f"{_name(p.lo, classes, 'y')} < {_name(p.hi, classes, 'y')}"
    if isinstance(p, IsMax):
        return f"is_max({_name(p.k, classes, 'y')})"
    if isinstance(p, IsMin):
        return f"is_min({_name(p.k, classes, 'y')})"
    if isinstance(p, AllOf | AnyOf):
        op = " & " if isinstance(p, AllOf) else " | "
        return op.join(
            f"({format_post(q, classes)})"
            if isinstance(q, AllOf | AnyOf)
            else format_post(q, classes)
            for q in p.parts
        )
    raise ConstraintError(f"cannot print postcondition {p!r}")


def _cname(name: str) -> str:
    if not name:
        return ""
    return " " + (name if _plain(name) else _quote(name))


def format_constraint(
    c: Constraint,
    features: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
) -> str:
    """One constraint block in the text format."""
    lines = [f"constraint{_cname(c.name)}:"]
    if not isinstance(c.pre, Always):
        lines.append(f"    if {format_pre(c.pre, features)}")
    lines.append(f"    then {format_post(c.post, classes)}")
    return "\n".join(lines)


def format_constraints(cs: ConstraintSet) -> str:
    """A whole constraint file: headers, then one block per constraint."""
    out = []
    for kw, names in (("features", cs.feature_names), ("classes", cs.class_names)):
        if names:
            out.append(f"{kw}: " + ", ".join(_name(k, names, "") for k in range(len(names))))
    blocks = [format_constraint(c, cs.feature_names, cs.class_names) for c in cs]
    text = "\n".join(out)
    if blocks:
        text += ("\n\n" if text else "") + "\n\n".join(blocks)
    return text + "\n"
