"""The self-correcting layer: safety, transparency and bottom, checked by brute force.

For m <= 5 classes every strict order of a row's (distinct) values is one of its m!
permutations, so "the active constraints are satisfiable" and "some safe output keeps the top
class" are decided exactly by trying all of them, independently of the layer's search.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from relucid.enforce import (
    AllOf,
    AnyOf,
    Constraint,
    InputBox,
    IsMax,
    IsMin,
    Less,
    Out,
    SafetyConfig,
    SafetyLayer,
    SafetyStatus,
    ancestors,
    longest_paths,
    peel,
    permute_logits,
)
from relucid.errors import ConstraintError, InputError

S = SafetyStatus


# -- graph primitives (appendix B) -----------------------------------------------------------
def _brute_longest(adj: np.ndarray) -> np.ndarray:
    m = len(adj)
    P = np.full((m, m), -np.inf)
    for i in range(m):
        P[i, i] = 0
        # longest simple paths by exhaustive DFS (acyclic graphs only)
        stack = [(i, 0)]
        while stack:
            u, d = stack.pop()
            for v in np.flatnonzero(adj[u]):
                if d + 1 > P[i, v]:
                    P[i, v] = d + 1
                    stack.append((v, d + 1))
    return P


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 7), seed=st.integers(0, 2**31 - 1), p=st.floats(0.05, 0.6))
def test_graph_primitives_agree_with_max_plus_longest_paths(m: int, seed: int, p: float) -> None:
    rng = np.random.default_rng(seed)
    adj = (rng.random((m, m)) < p) & ~np.eye(m, dtype=bool)
    dag = np.triu(adj, 1)[np.ix_(perm := rng.permutation(m), perm)]
    for g in (adj, dag):
        t = torch.from_numpy(g)
        P = longest_paths(t)
        depth, acyclic = peel(t)
        cyclic = bool((P.diagonal() > 0).any())
        assert bool(acyclic) == (not cyclic)
        assert torch.equal(ancestors(t), P >= 0)
        if not cyclic:
            assert np.array_equal(P.numpy(), _brute_longest(g))
            assert torch.equal(depth, P.amax(dim=0).to(torch.int64))
        assert torch.equal(peel(t, early_exit=False)[0], depth)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(2, 8), seed=st.integers(0, 2**31 - 1), pairwise=st.booleans())
def test_stable_topological_sort_respects_edges_and_keeps_roots(
    m: int, seed: int, pairwise: bool
) -> None:
    rng = np.random.default_rng(seed)
    perm = rng.permutation(m)
    adj = np.triu(rng.random((m, m)) < 0.3, 1)[np.ix_(perm, perm)]
    y = torch.from_numpy(rng.permutation(m).astype(np.float64) + rng.random(m) * 0.1)[None]
    t = torch.from_numpy(adj)[None]
    depth, _ = peel(t)
    out = permute_logits(y, ancestors(t), depth, pairwise=pairwise)
    assert torch.equal(out.sort().values, y.sort().values)
    for i, j in zip(*np.nonzero(adj), strict=True):
        assert out[0, j] < out[0, i]
    top = int(y.argmax())
    if not adj[:, top].any():
        assert int(out.argmax()) == top
    assert torch.equal(out, permute_logits(y, ancestors(t), depth, pairwise=not pairwise))


# -- random constraint sets -------------------------------------------------------------------
def _posts(m: int) -> st.SearchStrategy:
    cls = st.integers(0, m - 1)
    lit = st.builds(Less, cls, cls)
    atom = st.one_of(lit, lit, lit, st.builds(IsMax, cls), st.builds(IsMin, cls))
    conj = st.lists(atom, min_size=1, max_size=3).map(
        lambda a: a[0] if len(a) == 1 else AllOf(tuple(a))
    )
    disj = st.lists(conj, min_size=1, max_size=3).map(
        lambda a: a[0] if len(a) == 1 else AnyOf(tuple(a))
    )
    return st.lists(disj, min_size=1, max_size=2).map(
        lambda a: a[0] if len(a) == 1 else AllOf(tuple(a))
    )


@st.composite
def problems(
    draw: st.DrawFn, max_m: int = 5
) -> tuple[list[Constraint], int, np.ndarray, np.ndarray]:
    """Constraints over m classes with box preconditions on one feature, and rows."""
    m = draw(st.integers(2, max_m))
    k = draw(st.integers(1, 4))
    cs = []
    for i in range(k):
        a, b = sorted(draw(st.tuples(st.floats(0, 1), st.floats(0, 1))))
        pre = None if draw(st.integers(0, 3)) == 0 else InputBox([a], [b])
        cs.append(Constraint(pre, draw(_posts(m)), f"c{i}"))
    rows = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    x = rng.random((rows, 1))
    # distinct values: a random order of m well-separated numbers, with small noise
    y = np.array([rng.permutation(m) + 0.3 * rng.random(m) for _ in range(rows)]) - m / 2
    return cs, m, x, y


def _oracle(cs: list[Constraint], m: int, x: np.ndarray, y: np.ndarray) -> tuple[bool, bool, bool]:
    """(already safe, satisfiable, a safe output keeps the top class) for one row."""
    act = [c for c in cs if bool(c.pre.holds(x)[0])]
    Y = np.array([y[list(p)] for p in itertools.permutations(range(m))])
    safe = np.ones(len(Y), dtype=bool)
    for c in act:
        safe &= c.post.holds(Y)
    already = all(bool(c.post.holds(y)[0]) for c in act)
    top = int(np.argmax(y))
    return already, bool(safe.any()), bool((safe & (Y.argmax(axis=1) == top)).any())


@settings(max_examples=120, deadline=None)
@given(problem=problems(), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_safety_transparency_and_bottom_by_brute_force(problem, dtype) -> None:  # type: ignore[no-untyped-def]
    cs, m, x, y = problem
    layer = SafetyLayer(cs, m)
    yt = torch.tensor(y, dtype=dtype)
    out = layer(torch.from_numpy(x), yt)
    assert out.logits.dtype == dtype and out.status.dtype == torch.int8
    assert torch.equal(out.bottom, out.status >= SafetyStatus.UNSATISFIABLE)
    for r in range(len(x)):
        already, sat, keep = _oracle(cs, m, x[r], yt[r].double().numpy())
        st_r = SafetyStatus(int(out.status[r]))
        row = out.logits[r]
        if already:
            assert st_r is SafetyStatus.UNCHANGED
        if st_r in (SafetyStatus.UNCHANGED,) or out.bottom[r]:
            assert torch.equal(row, yt[r])  # bit-identical
        assert st_r not in (S.SEARCH_LIMIT, S.CORRECTED_LIMIT, S.TIED)
        if sat:
            assert not out.bottom[r]
            assert torch.equal(row.sort().values, yt[r].sort().values)  # a permutation
            for c in cs:
                if bool(c.pre.holds(x[r])[0]):
                    assert bool(c.post.holds(row.double().numpy())[0]), c
            if keep:
                assert int(row.argmax()) == int(yt[r].argmax())
        else:
            assert st_r is SafetyStatus.UNSATISFIABLE


@settings(max_examples=60, deadline=None)
@given(problem=problems(), width=st.sampled_from([1, 2, 32]))
def test_narrow_beam_is_flagged_never_wrong(problem, width: int) -> None:  # type: ignore[no-untyped-def]
    """With a tiny search bound, every row is still safe, or flagged."""
    cs, m, x, y = problem
    out = SafetyLayer(cs, m, SafetyConfig(beam_width=width))(
        torch.from_numpy(x), torch.from_numpy(y)
    )
    for r in range(len(x)):
        _, sat, keep = _oracle(cs, m, x[r], y[r])
        st_r = SafetyStatus(int(out.status[r]))
        if out.bottom[r]:
            assert st_r in (SafetyStatus.SEARCH_LIMIT, SafetyStatus.UNSATISFIABLE)
            assert st_r is SafetyStatus.SEARCH_LIMIT or not sat
            continue
        for c in cs:
            if bool(c.pre.holds(x[r])[0]):
                assert bool(c.post.holds(out.logits[r].numpy())[0])
        if keep and st_r is not SafetyStatus.CORRECTED_LIMIT:
            assert int(out.logits[r].argmax()) == int(np.argmax(y[r]))


@settings(max_examples=40, deadline=None)
@given(problem=problems(), width=st.sampled_from([1, 32]))
def test_batch_equals_row_by_row_and_static_equals_dynamic(problem, width: int) -> None:  # type: ignore[no-untyped-def]
    cs, m, x, y = problem
    layer = SafetyLayer(cs, m, SafetyConfig(beam_width=width))
    static = SafetyLayer(cs, m, SafetyConfig(execution="static", beam_width=width))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    out = layer(xt, yt)
    st_out = static(xt, yt)
    assert torch.equal(out.logits, st_out.logits) and torch.equal(out.status, st_out.status)
    for r in range(len(x)):
        one = layer(xt[r : r + 1], yt[r : r + 1])
        assert torch.equal(one.logits[0], out.logits[r])
        assert int(one.status[0]) == int(out.status[r])


def test_safe_rows_pass_through_as_the_same_tensor() -> None:
    layer = SafetyLayer([Constraint(InputBox([0.0], [1.0]), Out(0) < Out(1))], 2)
    y = torch.tensor([[0.0, 1.0], [-3.0, 2.5]])
    out = layer(torch.full((2, 1), 0.5), y)
    assert out.logits is y and not out.bottom.any()
    mixed = layer(torch.full((3, 1), 0.5), torch.tensor([[0.0, 1.0], [1.0, 0.0], [-1.0, 5.0]]))
    assert mixed.logits.tolist() == [[0.0, 1.0], [0.0, 1.0], [-1.0, 5.0]]
    assert mixed.status.tolist() == [S.UNCHANGED, S.CORRECTED, S.UNCHANGED]


def test_contradictory_constraints_give_bottom_and_unchanged_logits() -> None:
    cs = [
        Constraint(None, Out(0) < Out(1), "a"),
        Constraint(InputBox([0.5], None), Out(1) < Out(0)),
    ]
    layer = SafetyLayer(cs, 3)
    y = torch.tensor([[2.0, 1.0, 0.0], [2.0, 1.0, 0.0]])
    out = layer(torch.tensor([[0.0], [1.0]]), y)
    assert out.status.tolist() == [SafetyStatus.CORRECTED, SafetyStatus.UNSATISFIABLE]
    assert out.bottom.tolist() == [False, True]
    assert torch.equal(out.logits[1], y[1])
    assert out.logits[0].tolist() == [1.0, 2.0, 0.0]


def _bound_case() -> list[Constraint]:
    """With beam width 1 the lexicographically first partial choice is a dead end."""
    c1 = AnyOf((Out(0) < Out(3), AllOf((Out(1) < Out(0), Out(2) < Out(1))), Out(3) < Out(0)))
    c2 = Out(1) < Out(2)  # contradicts the second term of c1 (y2 < y1 < y0)
    return [Constraint(None, c1, "c1"), Constraint(None, c2, "c2")]


def test_search_bound_is_reported_never_silent() -> None:
    y = torch.tensor([[3.0, 2.0, 1.0, 0.0]])  # top class 0; violates c2
    x = torch.zeros((1, 1))
    narrow = SafetyLayer(_bound_case(), 4, SafetyConfig(beam_width=1))(x, y)
    wide = SafetyLayer(_bound_case(), 4, SafetyConfig(beam_width=2))(x, y)
    # wide search: keeps the top class (c1 by y3 < y0, c2 by y1 < y2)
    assert int(wide.status[0]) == SafetyStatus.CORRECTED and int(wide.logits.argmax()) == 0
    # narrow: phase 1 truncated and failed, phase 2 found a safe choice that drops the top
    assert int(narrow.status[0]) == SafetyStatus.CORRECTED_LIMIT and not narrow.bottom[0]
    row = narrow.logits[0].numpy()
    assert all(bool(c.post.holds(row)[0]) for c in _bound_case())
    # only phase 1 terms exist: the failure is SEARCH_LIMIT, a bottom, not a wrong output
    c1 = AnyOf((AllOf((Out(1) < Out(0), Out(2) < Out(1))), Out(3) < Out(0)))
    cs = [Constraint(None, c1), Constraint(None, Out(1) < Out(2))]
    out = SafetyLayer(cs, 4, SafetyConfig(beam_width=1))(x, y)
    assert int(out.status[0]) == SafetyStatus.SEARCH_LIMIT and out.bottom[0]
    assert torch.equal(out.logits, y)


def test_ties_and_nan_are_flagged() -> None:
    layer = SafetyLayer([Constraint(None, (Out(2) < Out(1)) & (Out(1) < Out(0)))], 3)
    out = layer(
        torch.zeros((3, 1)),
        torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 2.0], [0.0, 1.0, float("nan")]]),
    )
    assert out.status.tolist() == [SafetyStatus.TIED, SafetyStatus.CORRECTED, SafetyStatus.INVALID]
    assert out.bottom.tolist() == [True, False, True]
    assert out.logits[0].tolist() == [1.0, 1.0, 0.0]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_any_float_dtype(dtype: torch.dtype) -> None:
    layer = SafetyLayer([Constraint(None, Out(2).is_max())], 3)
    out = layer(torch.zeros((2, 4), dtype=dtype), torch.tensor([[3, 2, 1], [1, 2, 3]], dtype=dtype))
    assert out.logits.dtype == dtype
    assert out.logits.tolist() == [[2.0, 1.0, 3.0], [1.0, 2.0, 3.0]]


def test_no_constraints_and_input_errors() -> None:
    empty = SafetyLayer([], 3)
    y = torch.randn(4, 3)
    assert empty(torch.zeros(4, 2), y).logits is y
    layer = SafetyLayer([Constraint(InputBox({2: 0.0}, None), Out(0) < Out(1))], 3)
    with pytest.raises(InputError, match="shape"):
        layer(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(InputError, match="floating"):
        layer(torch.zeros(4, 3), torch.zeros(4, 3, dtype=torch.int64))
    with pytest.raises(InputError, match="feature 2"):
        layer(torch.zeros(4, 2), torch.zeros(4, 3))
    with pytest.raises(InputError, match="rows"):
        layer(torch.zeros(3, 3), torch.zeros(4, 3))
    with pytest.raises(ConstraintError, match="out of range"):
        SafetyLayer([Constraint(None, Out(0) < Out(3), "big")], 3)


def test_dnf_report_and_device_move() -> None:
    post = ((Out(0) < Out(1)) | (Out(1) < Out(0))) & ((Out(1) < Out(2)) | (Out(2) < Out(1)))
    layer = SafetyLayer([Constraint(None, post, "p")], 3)
    assert layer.report() == [
        {
            "name": "p",
            "terms": 4,
            "literals_in": 4,
            "literals_out": 8,
            "naive_terms": 4,
            "dropped_cyclic": 0,
            "dropped_subsumed": 0,
            "bound": 1024,
        }
    ]
    moved = layer.to(torch.device("cpu"), dtype=None)
    assert moved._term_adj.device.type == "cpu"


def test_box_ends_are_exact_for_float32_inputs() -> None:
    """0.6 is not a float32: the float32 neighbours of 0.6 fall on the right sides."""
    below = np.nextafter(np.float32(0.6), np.float32(0))
    above = np.nextafter(below, np.float32(1))
    assert float(below) < 0.6 < float(above)
    cs = [
        Constraint(InputBox(None, [0.6]), Out(0) < Out(1)),
        Constraint(InputBox([0.6]), Out(1) < Out(0)),
    ]
    layer = SafetyLayer(cs, 2)
    x32 = torch.tensor([[below], [above]], dtype=torch.float32)
    want = np.array([[c.pre.holds(np.array([[float(v)]]))[0] for c in cs] for v in (below, above)])
    assert np.array_equal(layer.active(x32).numpy(), want)
    assert np.array_equal(layer.active(x32.double()).numpy(), want)
    assert want.tolist() == [[True, False], [False, True]]


# -- any device: CUDA gives the CPU's answers --------------------------------------------------
needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device on this machine (run on a GPU machine to check device parity)",
)


@needs_cuda
@settings(max_examples=60, deadline=None)
@given(problem=problems(), static=st.booleans())
def test_cuda_equals_cpu_on_random_problems(problem, static: bool) -> None:  # type: ignore[no-untyped-def]
    cs, m, x, y = problem
    cfg = SafetyConfig(execution="static" if static else "dynamic")
    layer = SafetyLayer(cs, m, cfg)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).float()
    cpu = layer(xt, yt)
    gpu = layer.to("cuda")(xt.cuda(), yt.cuda())
    assert gpu.logits.device.type == "cuda"
    assert torch.equal(gpu.logits.cpu(), cpu.logits)
    assert torch.equal(gpu.status.cpu(), cpu.status)


@needs_cuda
@pytest.mark.parametrize("m", [5, 10, 100])
def test_cuda_equals_cpu_on_the_synthetic_family(m: int) -> None:
    from relucid.enforce import synthetic_data

    data = synthetic_data(10, 3, m, random_state=m)
    layer = SafetyLayer(data.constraints, m)
    x = torch.from_numpy(data.x[:1000])
    # logits that violate often: random values, distinct per row
    y = torch.from_numpy(np.random.default_rng(m).standard_normal((len(x), m))).float()
    cpu = layer(x, y)
    assert int((cpu.status == S.CORRECTED).sum()) > 0
    gpu = layer.to("cuda")(x.cuda(), y.cuda())
    assert torch.equal(gpu.logits.cpu(), cpu.logits)
    assert torch.equal(gpu.status.cpu(), cpu.status)


@settings(max_examples=60, deadline=None)
@given(problem=problems(), width=st.sampled_from([1, 32]))
def test_table_execution_equals_dynamic(problem, width: int) -> None:  # type: ignore[no-untyped-def]
    """The memoised lookup gives the search's answers, on a cold table and on a warm one
    (second call), also when the rows arrive one at a time."""
    cs, m, x, y = problem
    dyn = SafetyLayer(cs, m, SafetyConfig(beam_width=width, execution="dynamic"))
    tab = SafetyLayer(cs, m, SafetyConfig(beam_width=width, execution="table"))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    want = dyn(xt, yt)
    for _ in range(2):
        got = tab(xt, yt)
        assert torch.equal(got.logits, want.logits) and torch.equal(got.status, want.status)
        assert torch.equal(got.bottom, want.bottom)
    fresh = SafetyLayer(cs, m, SafetyConfig(beam_width=width, execution="table"))
    for r in range(len(x)):
        one = fresh(xt[r : r + 1], yt[r : r + 1])
        assert torch.equal(one.logits[0], want.logits[r])
        assert int(one.status[0]) == int(want.status[r])


def test_table_grows_and_survives_key_collisions() -> None:
    from relucid.enforce import synthetic_data

    data = synthetic_data(100, 2, 5, random_state=3)
    cfg = SafetyConfig(execution="table")
    dyn = SafetyLayer(data.constraints, 5, SafetyConfig(execution="dynamic"))
    x = torch.from_numpy(data.x)
    y = torch.from_numpy(np.random.default_rng(0).standard_normal((len(x), 5)))
    want = dyn(x, y)
    tab = SafetyLayer(data.constraints, 5, cfg)
    got = tab(x, y)
    assert tab.table_size > 64  # past the first capacity
    assert torch.equal(got.logits, want.logits) and torch.equal(got.status, want.status)
    # every key the same: all groups but one collide, and the answers stay right
    bad = SafetyLayer(data.constraints, 5, cfg)
    bad._hash_con.zero_()
    bad._hash_top.zero_()
    for _ in range(2):
        got = bad(x, y)
        assert torch.equal(got.logits, want.logits) and torch.equal(got.status, want.status)


@needs_cuda
@pytest.mark.parametrize("graphs", [True, False])
def test_cuda_table_and_graph_replay_follow_new_inputs(graphs: bool) -> None:
    """Captured graphs are replayed on new batches of the same shape, the table grows
    between calls, and moving the layer away and back drops the stale graphs."""
    from relucid.enforce import synthetic_data

    data = synthetic_data(100, 2, 10, random_state=1)
    cpu = SafetyLayer(data.constraints, 10, SafetyConfig(execution="dynamic"))
    gpu = SafetyLayer(data.constraints, 10, SafetyConfig(cuda_graphs=graphs)).to("cuda")
    rng = np.random.default_rng(2)
    x = torch.from_numpy(data.x)
    for rep in range(6):
        rows = torch.from_numpy(rng.choice(len(x), 500, replace=False))
        xb = x[rows]
        yb = torch.from_numpy(rng.standard_normal((500, 10))).float()
        want = cpu(xb, yb)
        got = gpu(xb.cuda(), yb.cuda())
        assert torch.equal(got.logits.cpu(), want.logits)
        assert torch.equal(got.status.cpu(), want.status)
        if rep == 2:
            gpu = gpu.to("cpu").to("cuda")
    assert gpu.table_size > 64
