"""The constraint language: Python objects, DNF normalisation, the text format."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relucid.enforce import (
    AllOf,
    AnyOf,
    Constraint,
    ConstraintSet,
    HalfSpace,
    In,
    InputBox,
    IsMax,
    IsMin,
    Less,
    Out,
    load_constraints,
    parse_constraints,
    to_dnf,
)
from relucid.errors import ConstraintError, ConstraintSyntaxError


# -- Python front door ---------------------------------------------------------------------
def test_out_comparisons_build_literals() -> None:
    assert (Out(3) < Out(0)) == Less(3, 0)
    assert (Out(3) > Out(0)) == Less(0, 3)
    assert Out(2).is_max() == IsMax(2) and Out(2).is_min() == IsMin(2)
    a, b, c = Out(0) < Out(1), Out(1) < Out(2), Out(2) < Out(0)
    assert (a & b & c) == AllOf((a, b, c))
    assert (a | b | c) == AnyOf((a, b, c))
    assert ((a & b) | c) == AnyOf((AllOf((a, b)), c))


def test_python_pitfalls_raise_clear_errors() -> None:
    with pytest.raises(TypeError, match="parenthesise"):
        Out(0) < Out(1) | Out(2)  # noqa: B015  (| binds tighter than <)
    with pytest.raises(TypeError, match="no truth value"):
        Out(0) < Out(1) < Out(2)  # noqa: B015  (a chained comparison calls bool())
    with pytest.raises(TypeError, match="strict"):
        Out(0) <= Out(1)  # noqa: B015
    with pytest.raises(ConstraintError):
        Out(-1)


def test_input_box_partial_and_infinite_ends() -> None:
    box = InputBox([0.5, None, -math.inf], [None, 2.0, math.inf])
    assert box.bounds == ((0, 0.5, math.inf), (1, -math.inf, 2.0))
    assert box == InputBox({0: 0.5}, {1: 2.0})
    x = np.array([[0.6, 1.0, 7.0], [0.4, 1.0, 7.0], [0.6, 3.0, 0.0]])
    assert box.holds(x).tolist() == [True, False, False]
    with pytest.raises(ConstraintError, match="empty box"):
        InputBox([1.0], [0.0])
    with pytest.raises(ConstraintError, match="NaN"):
        InputBox([math.nan], [1.0])


def test_linear_features_give_half_spaces() -> None:
    h = 2 * In(0) - In(1) <= 1
    assert h == HalfSpace({0: 2.0, 1: -1.0}, 1.0)
    assert (In(0) >= 0.6) == HalfSpace({0: -1.0}, -0.6)
    assert (0.6 <= In(0)) == HalfSpace({0: -1.0}, -0.6)
    assert h.holds(np.array([[1.0, 1.0], [1.0, 0.5]])).tolist() == [True, False]
    pre = (In(0) >= 0.5) & InputBox({1: 0.0}, {1: 1.0}) | (In(2) <= -1)
    assert pre.holds(np.array([[0.7, 0.5, 0.0], [0.2, 0.5, -2.0], [0.2, 0.5, 0.0]])).tolist() == [
        True,
        True,
        False,
    ]


# -- DNF -----------------------------------------------------------------------------------
def test_dnf_of_all_total_orders_of_three() -> None:
    either = [(Out(i) < Out(j)) | (Out(j) < Out(i)) for i, j in ((0, 1), (1, 2), (0, 2))]
    d = to_dnf(either[0] & either[1] & either[2], 3)
    assert len(d.terms) == 6  # the 3! strict orders; the 2 cyclic combinations are dropped
    assert d.dropped_cyclic == 2


def test_dnf_expands_is_max_and_drops_subsumed_terms() -> None:
    d = to_dnf(Out(1).is_max() | (Out(0) < Out(1)), 3)
    assert d.terms == (((0, 1),),)  # is_max(1) contains the literal y0 < y1: subsumed
    assert d.dropped_subsumed == 1
    d = to_dnf(Out(2).is_min(), 3)
    assert d.terms == (((2, 0), (2, 1)),)


def test_dnf_bound_is_enforced_with_a_clear_message() -> None:
    post = AllOf(tuple((Out(i) < Out(i + 1)) | (Out(i + 1) < Out(i)) for i in range(12)))
    with pytest.raises(ConstraintError, match="bound of 64"):
        to_dnf(post, 13, max_terms=64, name="wide")
    assert len(to_dnf(post, 13, max_terms=4096).terms) == 2**12


def test_dnf_rejects_out_of_range_classes() -> None:
    with pytest.raises(ConstraintError, match="class index 5 out of range"):
        to_dnf(Out(0) < Out(5), 3, name="c")


def _post(m: int) -> st.SearchStrategy:
    lit = st.builds(Less, st.integers(0, m - 1), st.integers(0, m - 1))
    atom = st.one_of(
        lit, lit, st.builds(IsMax, st.integers(0, m - 1)), st.builds(IsMin, st.integers(0, m - 1))
    )
    conj = st.lists(atom, min_size=1, max_size=3).map(
        lambda a: a[0] if len(a) == 1 else AllOf(tuple(a))
    )
    disj = st.lists(conj, min_size=1, max_size=3).map(
        lambda a: a[0] if len(a) == 1 else AnyOf(tuple(a))
    )
    return st.lists(disj, min_size=1, max_size=2).map(
        lambda a: a[0] if len(a) == 1 else AllOf(tuple(a))
    )


@settings(max_examples=80, deadline=None)
@given(data=st.data(), m=st.integers(2, 4))
def test_dnf_is_equivalent_to_the_formula(data: st.DataObject, m: int) -> None:
    """On every strict order of m values (and on ties), the DNF and the formula agree."""
    post = data.draw(_post(m))
    d = to_dnf(post, m)
    ys = [np.array(p, dtype=float) for p in itertools.permutations(range(m))]
    ys.append(np.zeros(m))
    Y = np.array(ys)
    by_dnf = np.array([any(all(y[i] < y[j] for i, j in t) for t in d.terms) for y in Y])
    assert np.array_equal(post.holds(Y), by_dnf)


# -- text format -----------------------------------------------------------------------------
ACAS_TEXT = """
# ACAS Xu, maximal-logit convention
features: rho, theta, psi, v_own, v_int
classes: COC, WL, WR, SL, SR

constraint phi2:   # COC is not the advisory... in the negated convention
    if box(rho: [0.6, inf], v_own: [0.45, inf], v_int: [-inf, -0.45])
    then SL < COC | WL < COC | y[2] < y[0] | SR < COC

constraint "phi 8":
    if box(theta: [-0.5, -0.375]) & 2*rho - v_own <= 0.1 | true
    then is_max(WL) | (is_max(COC) & WR > SR)
"""


def test_parse_example_file() -> None:
    cs = parse_constraints(ACAS_TEXT)
    assert [c.name for c in cs] == ["phi2", "phi 8"]
    assert cs.class_names == ("COC", "WL", "WR", "SL", "SR")
    assert cs[0].pre == InputBox({0: 0.6, 3: 0.45}, {4: -0.45})
    assert cs[0].post == AnyOf((Less(3, 0), Less(1, 0), Less(2, 0), Less(4, 0)))
    assert cs[1].post == AnyOf((IsMax(1), AllOf((IsMax(0), Less(4, 2)))))
    assert cs[1].pre.holds(np.zeros((1, 5))).tolist() == [True]
    assert parse_constraints(cs.to_text()) == cs


def _pre(n: int) -> st.SearchStrategy:
    num = st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 3))
    box = st.dictionaries(st.integers(0, n - 1), st.tuples(num, num), min_size=1, max_size=n).map(
        lambda d: InputBox(
            {k: min(a, b) for k, (a, b) in d.items()},
            {k: max(a, b) if k % 2 else math.inf for k, (a, b) in d.items()},
        )
    )
    half = st.builds(HalfSpace, st.dictionaries(st.integers(0, n - 1), num, max_size=n), num)
    atom = st.one_of(box, half)
    conj = st.lists(atom, min_size=1, max_size=2).map(
        lambda a: a[0] if len(a) == 1 else a[0] & a[1]
    )
    return st.lists(conj, min_size=1, max_size=2).map(
        lambda a: a[0] if len(a) == 1 else a[0] | a[1]
    )


@settings(max_examples=60, deadline=None)
@given(data=st.data(), named=st.booleans())
def test_text_round_trip(data: st.DataObject, named: bool) -> None:
    m, n = 4, 3
    k = data.draw(st.integers(0, 4))
    names = data.draw(
        st.lists(
            st.sampled_from(["a", "phi 2", "if", "x", "ok_1", 'q"uote', ""]),
            min_size=k,
            max_size=k,
            unique=True,
        )
    )
    pres = data.draw(st.lists(st.one_of(st.none(), _pre(n)), min_size=k, max_size=k))
    posts = data.draw(st.lists(_post(m), min_size=k, max_size=k))
    cs = ConstraintSet(
        [Constraint(p, q, nm) for p, q, nm in zip(pres, posts, names, strict=True)],
        ["rho", "mean radius", "y"] if named else None,
        ["COC", "WL", "box", "c3"] if named else None,
    )
    text = cs.to_text()
    back = parse_constraints(text)
    assert back == cs
    assert back.to_text() == text


@pytest.mark.parametrize(
    ("text", "line", "col", "fragment"),
    [
        ("constraint a:\n  then y[0] < ", 2, 15, "expected a class, found end of file"),
        ("constraint a:\n  then y[0] <= y[1]", 2, 13, "strict"),
        ("classes: A, B\nconstraint:\n  then A < C", 3, 12, "unknown class 'C'"),
        ("features: a\nconstraint:\n  if box(a: [1, 0]) then y[0] < y[1]", 3, 10, "empty interval"),
        ("constraint:\n  if q <= 1 then y[0] < y[1]", 2, 6, "unknown feature 'q'"),
        ("constraint:\n\n  then y[0] < y[1] $", 3, 20, "unexpected character"),
        ("constraint a: then y[0] < y[1]\nconstraint a: then y[1] < y[0]", 2, 1, "duplicate"),
        ("constraint: if x[0] then y[0] < y[1]", 1, 21, "'<=' or '>='"),
        ("constraint: then y[0] < y[1]\nfeatures: a", 2, 1, "before the first constraint"),
        ("classes: a, b\nconstraint: then y[2] < a", 2, 20, "out of range"),
        ("features: if", 1, 11, "reserved"),
        ("constraint then y[0] < y[1]", 1, 12, "expected ':'"),
        ("constraint: if box(x[0]: [0, 1] then y[0] < y[1]", 1, 33, "expected ',' or ')'"),
    ],
)
def test_malformed_text_gives_line_and_column(
    text: str, line: int, col: int, fragment: str
) -> None:
    with pytest.raises(ConstraintSyntaxError) as err:
        parse_constraints(text)
    assert (err.value.line, err.value.column) == (line, col), str(err.value)
    assert fragment in str(err.value)
    assert str(err.value).startswith(f"<text>:{line}:{col}:")


def test_load_constraints_names_the_file(tmp_path: Path) -> None:
    good = tmp_path / "ok.constraints"
    good.write_text(ACAS_TEXT)
    assert len(load_constraints(good)) == 2
    bad = tmp_path / "bad.constraints"
    bad.write_text("constraint:\n  then COC < WL\n")
    with pytest.raises(ConstraintSyntaxError, match=r"bad\.constraints:2:8"):
        load_constraints(bad)
    with pytest.raises(ConstraintError, match="no such constraint file"):
        load_constraints(tmp_path / "missing")
