"""VNN-LIB 1.0 reader and writer: the benchmark files, semantics, round trips, errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relucid import Box, ReluNetwork
from relucid.errors import VnnlibError, VnnlibSyntaxError
from relucid.verify import (
    InputRegion,
    VnnProperty,
    load_vnnlib,
    parse_vnnlib,
    read_instances,
)

#: Output terms per ACAS Xu property (prop_k.vnnlib): disjuncts of the unsafe set.
ACAS_TERMS = {1: 1, 2: 1, 3: 1, 4: 1, 5: 4, 6: 4, 7: 2, 8: 3, 9: 4, 10: 4}


def _header(n: int, m: int) -> str:
    decls = [f"(declare-const X_{i} Real)" for i in range(n)]
    decls += [f"(declare-const Y_{j} Real)" for j in range(m)]
    return "\n".join(decls) + "\n"


# -- the benchmark files -------------------------------------------------------------------------
@pytest.mark.data
@pytest.mark.parametrize("k", range(1, 11))
def test_every_acas_property_parses(shared_data: Path, k: int) -> None:
    prop = load_vnnlib(shared_data / "acasxu" / f"prop_{k}.vnnlib")
    assert (prop.num_inputs, prop.num_outputs) == (5, 5)
    assert len(prop.inputs) == (2 if k == 6 else 1)
    assert all(r.box.is_bounded and r.b.size == 0 for r in prop.inputs)
    assert len(prop.output) == ACAS_TERMS[k]
    assert not prop.has_strict
    assert parse_vnnlib(prop.to_vnnlib()) == prop


@pytest.mark.data
def test_acas_prop_1_contents(shared_data: Path) -> None:
    """phi_1: the box of section 5 of Katz et al., unsafe iff COC >= 1500 (scaled 3.9911)."""
    prop = load_vnnlib(shared_data / "acasxu" / "prop_1.vnnlib")
    box = prop.box
    assert box.lo.tolist() == [0.6, -0.5, -0.5, 0.45, -0.5]
    assert box.hi.tolist() == [0.679857769, 0.5, 0.5, 0.5, -0.45]
    ((c, d),) = prop.output
    assert c.tolist() == [[-1.0, 0.0, 0.0, 0.0, 0.0]] and d.tolist() == [-3.991125645861615]
    y = np.zeros((3, 5))
    y[:, 0] = [3.99, 3.991125645861615, 4.5]
    assert prop.unsafe(y).tolist() == [False, True, True]


@pytest.mark.data
def test_acas_prop_2_and_6_structure(shared_data: Path) -> None:
    """phi_2: unsafe iff COC is maximal; phi_6: two input boxes, unsafe iff COC not minimal."""
    p2 = load_vnnlib(shared_data / "acasxu" / "prop_2.vnnlib")
    ((c, d),) = p2.output
    expected = np.zeros((4, 5))
    expected[:, 0] = -1.0
    expected[np.arange(4), np.arange(1, 5)] = 1.0
    assert np.array_equal(c, expected) and np.array_equal(d, np.zeros(4))
    assert p2.unsafe([[5.0, 1, 2, 3, 4], [1.0, 5, 2, 3, 4], [1.0, 1, 1, 1, 1]]).tolist() == [
        True,
        False,
        True,  # a tie is a counterexample: the assertions are non-strict
    ]
    p6 = load_vnnlib(shared_data / "acasxu" / "prop_6.vnnlib")
    b1, b2 = p6.boxes
    assert b1.lo[1] == 0.11140846 and b2.hi[1] == -0.11140846
    x = np.stack([(b1.lo + b1.hi) / 2, (b2.lo + b2.hi) / 2, np.zeros(5)])
    assert p6.contains_input(x).tolist() == [True, True, False]
    with pytest.raises(VnnlibError, match="not one box"):
        _ = p6.box


@pytest.fixture(scope="module")
def mnist_test(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    from relucid.datasets import load_mnist_test

    return load_mnist_test(shared_data)


@pytest.mark.data
@pytest.mark.parametrize("k", range(5))
def test_mnistfc_property_is_an_image_ball(
    shared_data: Path, mnist_test: tuple[np.ndarray, np.ndarray], k: int
) -> None:
    """prop_k = the L-inf ball of radius 0.03 around a test image, clipped to [0, 1] (float32
    arithmetic), unsafe iff some other logit is >= the label's: 9 one-row terms."""
    path = shared_data / "mnistfc" / f"prop_{k}_0.03.vnnlib"
    # A guard against a super-linear parser, not a benchmark: the best of three parses in this
    # process's CPU time (about 30 ms), so that a machine busy with other work cannot fail it.
    cpu = []
    for _ in range(3):
        t0 = time.process_time()
        prop = load_vnnlib(path)
        cpu.append(time.process_time() - t0)
    assert min(cpu) < 0.5, f"parsing took {min(cpu):.3f} s of CPU time"
    images, labels = mnist_test
    box = prop.box
    err = np.maximum(
        np.abs(np.clip(images - 0.03, 0, 1) - box.lo).max(axis=1),
        np.abs(np.clip(images + 0.03, 0, 1) - box.hi).max(axis=1),
    )
    idx = int(err.argmin())
    x32, eps = images[idx].astype(np.float32), np.float32(0.03)
    assert np.array_equal(np.clip(x32 - eps, 0, 1).astype(np.float64), box.lo)
    assert np.array_equal(np.clip(x32 + eps, 0, 1).astype(np.float64), box.hi)
    label = int(path.read_text().splitlines()[0].split("label:")[1].strip(" ."))
    assert labels[idx] == label
    assert len(prop.output) == 9
    others = sorted(set(range(10)) - {label})
    for (c, d), j in zip(prop.output, others, strict=True):
        row = np.zeros(10)
        row[label], row[j] = 1.0, -1.0  # y_label - y_j <= 0
        assert np.array_equal(c, row[None, :]) and np.array_equal(d, [0.0])
    y = np.eye(10)[[label, others[0]]]
    assert prop.unsafe(y).tolist() == [False, True]
    assert parse_vnnlib(prop.to_vnnlib()) == prop


@pytest.mark.data
def test_instances_csv(shared_data: Path) -> None:
    rows = read_instances(shared_data / "acasxu" / "acasxu_instances.csv")
    assert len(rows) == 186
    assert all(r.network.is_file() and r.property.is_file() for r in rows)
    assert rows[0].network.name == "ACASXU_run2a_1_1_batch_2000.onnx"
    assert rows[0].timeout == 116.0
    assert json.loads(json.dumps(rows[0].to_dict()))["property"].endswith("prop_1.vnnlib")


def test_instances_csv_relative_paths_and_errors(tmp_path: Path) -> None:
    sub = tmp_path / "bench"
    sub.mkdir()
    (sub / "ok.csv").write_text("nets/a.onnx, props/p.vnnlib ,60\n\n")
    (row,) = read_instances(sub / "ok.csv")
    assert row.network == sub / "nets" / "a.onnx" and row.property == sub / "props" / "p.vnnlib"
    (sub / "bad.csv").write_text("a.onnx,p.vnnlib,60\na.onnx,p.vnnlib\n")
    with pytest.raises(VnnlibError, match=r"bad\.csv:2: 2 fields"):
        read_instances(sub / "bad.csv")
    (sub / "neg.csv").write_text("a.onnx,p.vnnlib,-1\n")
    with pytest.raises(VnnlibError, match="not a positive number"):
        read_instances(sub / "neg.csv")


# -- semantics -----------------------------------------------------------------------------------
TWO_BY_TWO = (
    _header(2, 2)
    + """
; unsafe: the second output reaches the first, or the sum is large
(assert (and (>= X_0 0.0) (<= X_0 1) (>= X_1 -1) (<= X_1 (- 1 0.5))))
(assert (<= (+ X_0 X_1) 1.25))      ; a half-space over two inputs
(assert (or (>= Y_1 Y_0) (and (> (+ Y_0 Y_1) 3) (<= Y_0 (* 2 Y_1)))))
"""
)


def test_linear_terms_and_dnf() -> None:
    prop = parse_vnnlib(TWO_BY_TWO)
    (region,) = prop.inputs
    assert region.box.lo.tolist() == [0.0, -1.0] and region.box.hi.tolist() == [1.0, 0.5]
    assert region.A.tolist() == [[1.0, 1.0]] and region.b.tolist() == [1.25]
    (c1, d1), (c2, d2) = prop.output
    assert c1.tolist() == [[1.0, -1.0]] and d1.tolist() == [0.0]
    assert c2.tolist() == [[-1.0, -1.0], [1.0, -2.0]] and d2.tolist() == [-3.0, 0.0]
    assert [s.tolist() for s in prop.output_strict] == [[False], [True, False]]
    assert prop.has_strict
    assert prop.contains_input([[1.0, 0.25], [1.0, 0.5], [0.5, 0.5]]).tolist() == [
        True,
        False,  # x0 + x1 = 1.5 > 1.25
        True,
    ]
    y = [[1.0, 2.0], [2.0, 1.5], [3.0, 1.0]]
    assert prop.unsafe(y).tolist() == [True, True, False]
    assert prop.unsafe(y[2], tol=0.0).shape == ()
    assert parse_vnnlib(prop.to_vnnlib()) == prop
    json.dumps(prop.to_dict())


def test_conjunctions_of_disjunctions_multiply_out() -> None:
    text = _header(1, 3) + (
        "(assert (or (<= X_0 0) (>= X_0 1)))\n"
        "(assert (or (<= Y_0 Y_1) (<= Y_0 Y_2)))\n"
        "(assert (or (<= Y_1 0) (<= Y_2 0) (<= Y_0 0)))\n"
        "(assert (<= -1 X_0 2))\n"  # a chain: -1 <= X_0 <= 2
    )
    prop = parse_vnnlib(text)
    assert [(b.lo[0], b.hi[0]) for b in prop.boxes] == [(-1.0, 0.0), (1.0, 2.0)]
    assert len(prop.output) == 6
    with pytest.raises(VnnlibSyntaxError, match="DNF reaches 6 terms, over the bound of 5") as e:
        parse_vnnlib(text, max_disjuncts=5)
    assert e.value.line == _header(1, 3).count("\n") + 3


def test_contradictions_and_tautologies() -> None:
    text = _header(1, 2) + (
        "(assert (or (and (<= X_0 0) (>= X_0 1)) (and (<= X_0 5) (>= X_0 4))))\n"
        "(assert (or (and (<= Y_0 Y_0) (<= 1 0)) (<= (- Y_0 Y_0) 0) ))\n"
    )
    prop = parse_vnnlib(text)
    assert [(b.lo[0], b.hi[0]) for b in prop.boxes] == [(4.0, 5.0)]
    ((c, _),) = prop.output  # the first term is false, the second true: every output
    assert c.shape == (0, 2) and prop.unsafe([[0.0, 1.0]]).tolist() == [True]
    for side in ("X", "Y"):
        never = parse_vnnlib(_header(1, 2) + f"(assert (<= (* 0 {side}_0) -1))\n")
        assert parse_vnnlib(never.to_vnnlib()) == never
    assert not parse_vnnlib(_header(1, 2) + "(assert false)").inputs
    assert not parse_vnnlib(_header(1, 2) + "(assert (or (<= (* 0 Y_0) -1)))").output


def _tiny_net() -> ReluNetwork:
    """y = (relu(x0) , relu(x1)): on x >= 0 the identity."""
    return ReluNetwork([np.eye(2), np.eye(2)], [np.zeros(2), np.zeros(2)])


def test_check_counterexample_replays_the_forward_pass() -> None:
    prop = parse_vnnlib(
        _header(2, 2)
        + "(assert (<= 0 X_0 1))\n(assert (<= 0 X_1 1))\n(assert (>= Y_0 (+ Y_1 0.5)))\n"
    )
    net = _tiny_net()
    assert prop.check_counterexample(net, [1.0, 0.25])
    assert prop.check_counterexample(net, [0.5, 0.0])  # the boundary counts (non-strict)
    assert not prop.check_counterexample(net, [0.5, 0.25])  # output safe
    assert not prop.check_counterexample(net, [2.0, 0.0])  # unsafe output, input outside
    assert prop.check_counterexample(net, [1.0 + 1e-9, 0.0], tol=1e-8)
    with pytest.raises(ValueError, match="shape"):
        prop.check_counterexample(net, [[1.0, 0.0]])
    wide = ReluNetwork([np.ones((3, 2)), np.ones((2, 3))], [np.zeros(3), np.zeros(2)])
    assert not prop.check_counterexample(wide, [1.0, 0.0])
    with pytest.raises(ValueError, match="does not fit"):
        prop.check_counterexample(ReluNetwork([np.ones((1, 3))], [np.zeros(1)]), [1.0, 0, 0])


# -- round trips ---------------------------------------------------------------------------------
_coef = st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)


@st.composite
def properties(draw: st.DrawFn) -> VnnProperty:
    n, m = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    regions = []
    for _ in range(draw(st.integers(0, 3))):
        lo = np.array(draw(st.lists(_coef, min_size=n, max_size=n)))
        hi = lo + np.array(draw(st.lists(st.floats(0, 10), min_size=n, max_size=n)))
        lo[np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))] = -np.inf
        hi[np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))] = np.inf
        k = draw(st.integers(0, 2)) if n >= 2 else 0
        rows = np.array(draw(st.lists(_coef, min_size=k * n, max_size=k * n))).reshape(k, n)
        rows[:, :2] += np.where(rows[:, :2] == 0, 1.0, 0.0)  # two non-zeros: not a bound
        regions.append(
            InputRegion(
                Box(lo, hi),
                rows,
                draw(st.lists(_coef, min_size=k, max_size=k)),
                np.isfinite(lo) & np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))),
                np.isfinite(hi) & np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))),
                draw(st.lists(st.booleans(), min_size=k, max_size=k)),
            )
        )
    terms, strict = [], []
    for _ in range(draw(st.integers(0, 3))):
        k = draw(st.integers(0, 3))
        c = np.array(draw(st.lists(_coef, min_size=k * m, max_size=k * m))).reshape(k, m)
        c[:, 0] += np.where(~c.any(axis=1), 1.0, 0.0)  # a row needs a variable
        terms.append((c, draw(st.lists(_coef, min_size=k, max_size=k))))
        strict.append(draw(st.lists(st.booleans(), min_size=k, max_size=k)))
    return VnnProperty(n, m, regions, terms, strict)


@settings(max_examples=60, deadline=None)
@given(properties())
def test_round_trip(prop: VnnProperty) -> None:
    text = prop.to_vnnlib()
    back = parse_vnnlib(text)
    assert back == prop
    assert back.to_vnnlib().split("\n")[1:] == text.split("\n")[1:]


# -- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "line", "col", "message"),
    [
        ("(assert (<= X_0 1)))", 3, 20, "unbalanced"),
        ("(assert (<= X_0 1)", 3, 1, "unclosed"),
        ("assert", 3, 1, "expected '\\(' at top level"),
        ("(push 1)", 3, 2, "unsupported command 'push'"),
        ("(assert (<= X_3 1))", 3, 13, "X_3 is used before it is declared"),
        ("(assert (<= Z 1))", 3, 13, "expected a number or a variable, found 'Z'"),
        ("(assert (<= (* X_0 X_0) 1))", 3, 13, "product of variables"),
        ("(assert (<= (/ X_0 0) 1))", 3, 13, "divides by one non-zero constant"),
        ("(assert (<= X_0 Y_0))", 3, 1, "mixes inputs"),
        ("\n  (assert (not (<= X_0 1)))", 4, 12, "'not' is outside"),
        ("(assert (<= X_0))", 3, 9, "needs two or more terms"),
        ("(assert (=> X_0 1))", 3, 10, "unknown operator '=>'"),
        ("(assert (<= (sin X_0) 1))", 3, 14, "unknown operator 'sin'"),
        ("(assert X_0)", 3, 9, "expected a formula"),
        ("(assert (<= X_0 1) (<= X_0 2))", 3, 1, "exactly one formula"),
        ("(declare-const X_1 Int)", 3, 20, "only Real"),
        ("(declare-const x1 Real)", 3, 16, "not named X_i or Y_j"),
        ("(declare-const X_0 Real)", 3, 16, "declared twice"),
        ("(declare-const X_01 Real)", 3, 16, "not named X_i or Y_j"),
        ("(declare-const)", 3, 1, "expected \\(declare-const NAME Real\\)"),
        ("(assert (<= X_0 1e))", 3, 17, "found '1e'"),
        ("(assert (<= X_0 nan))", 3, 17, "found 'nan'"),
        ("((assert))", 3, 1, "expected a command"),
    ],
)
def test_syntax_errors_say_where(body: str, line: int, col: int, message: str) -> None:
    text = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n" + body + "\n"
    with pytest.raises(VnnlibSyntaxError, match=message) as e:
        parse_vnnlib(text, source="t.vnnlib")
    assert (e.value.line, e.value.column) == (line, col), str(e.value)
    assert str(e.value).startswith(f"t.vnnlib:{line}:{col}: ")


def test_declaration_errors_and_ignored_commands() -> None:
    with pytest.raises(VnnlibError, match="declares 1 inputs X_i and 0 outputs"):
        parse_vnnlib("(declare-const X_0 Real)")
    with pytest.raises(VnnlibError, match="X_1 is not declared but later ones are"):
        parse_vnnlib("(declare-const X_0 Real)(declare-const X_2 Real)(declare-const Y_0 Real)")
    prop = parse_vnnlib(
        "(set-logic QF_LRA)\n" + _header(1, 1) + "(assert (<= X_0 1))\n(check-sat)\n(get-model)"
    )
    assert prop.box.hi.tolist() == [1.0]
    with pytest.raises(ValueError, match="max_disjuncts"):
        parse_vnnlib(_header(1, 1), max_disjuncts=0)
    deep = _header(1, 1) + "(assert " + "(and " * 300 + "true" + ")" * 301
    with pytest.raises(VnnlibSyntaxError, match="nested deeper"):
        parse_vnnlib(deep)
