"""Model readers: each loaded network computes what its file or module computes.

Every real network is checked against two independent references on 1,000 random inputs:
a small float64 numpy interpreter of the ONNX graph (to 1e-6 absolute; in practice the
results are identical), and onnxruntime, which computes in float32. For onnxruntime the
tolerance is the standard running rounding bound of a float32 forward pass (Higham,
*Accuracy and Stability of Numerical Algorithms*, 2nd ed., section 3.5): with
``gamma_k = k u / (1 - k u)``, ``u = 2^-24``, a layer of fan-in ``n`` computes
``z = W h + b`` with error ``e_z <= |W| e_h + gamma_{n+2} (|W| (|h| + e_h) + |b|)``, and
``relu`` passes at most ``e_z`` on (nothing where ``z + e_z <= 0``). On these networks the
observed error is below 2% of that bound.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from relucid.errors import InputError, ModelFormatError, UnsupportedModelError
from relucid.io import (
    from_sequential,
    load_network,
    load_nnet,
    load_onnx,
    load_torch,
    save_torch,
)
from relucid.network import ReluNetwork

ACAS_IDS = [f"{i}_{j}" for i in range(1, 6) for j in range(1, 10)]
# the normalised ACAS Xu input box (the .nnet clip ranges mapped by (x - mean) / range)
ACAS_LO = np.array([-0.3284, -0.5, -0.5, -0.5, -0.5])
ACAS_HI = np.array([0.6799, 0.5, 0.5, 0.5, 0.5])
MNIST = ["mnist-net_256x2", "mnist-net_256x4", "mnist-net_256x6"]
N_SAMPLES = 1000


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread() -> Iterator[None]:
    """One BLAS thread: these products are small, and on a busy machine threads only contend
    (this module took 20 s instead of 4 s on a loaded 2-core machine)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # comes with scikit-learn; without it, just run slower
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# -- independent references --------------------------------------------------------------------
def eval_graph(path: Path, x: np.ndarray) -> np.ndarray:
    """Evaluate the ONNX graph in float64 for a batch ``x`` of shape (B, *input dims[1:])."""
    model = onnx.load(str(path))
    env = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    env = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in env.items()}
    (real,) = [i for i in model.graph.input if i.name not in env]
    env[real.name] = x
    for node in model.graph.node:
        a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
        v = [env[i] for i in node.input]
        op = node.op_type
        if op == "Gemm":
            w = v[1].T if a.get("transB", 0) else v[1]
            out = a.get("alpha", 1.0) * (v[0] @ w) + a.get("beta", 1.0) * v[2]
        elif op in ("Add", "Sub", "MatMul"):
            out = {"Add": np.add, "Sub": np.subtract, "MatMul": np.matmul}[op](v[0], v[1])
        elif op == "Relu":
            out = np.maximum(v[0], 0.0)
        elif op == "Flatten":
            assert a.get("axis", 1) == 1
            out = v[0].reshape(v[0].shape[0], -1)
        else:
            raise AssertionError(f"test interpreter lacks {op}")
        env[node.output[0]] = out
    return env[model.graph.output[0].name]


def ort_run(path: Path, x32: np.ndarray) -> np.ndarray:
    """onnxruntime outputs (float32), one example per run (the graphs fix batch = 1)."""
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inits = {t.name for t in onnx.load(str(path)).graph.initializer}
    (inp,) = [i for i in sess.get_inputs() if i.name not in inits]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    return np.concatenate([sess.run(None, {inp.name: row.reshape(shape)})[0] for row in x32])


def float32_bound(net: ReluNetwork, x: np.ndarray) -> np.ndarray:
    """Running a-priori bound on the error of a float32 forward pass (module docstring)."""
    u = 2.0**-24
    h, e = x, np.zeros_like(x)
    last = len(net.weights) - 1
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        n = w.shape[1] + 2
        aw = np.abs(w)
        z = h @ w.T + b
        e = e @ aw.T + n * u / (1 - n * u) * ((np.abs(h) + e) @ aw.T + np.abs(b))
        if k < last:
            e = np.where(z + e > 0, e, 0.0)  # relu is 1-Lipschitz and 0 if both sides <= 0
            h = np.maximum(z, 0.0)
    return e


def check_against_references(path: Path, net: ReluNetwork, x: np.ndarray, dims: list[int]):
    x32 = x.astype(np.float32)
    x = x32.astype(np.float64)  # both references see the same inputs
    ours = net.forward(x)
    exact = eval_graph(path, x.reshape(len(x), *dims[1:]))
    assert np.abs(ours - exact).max() <= 1e-6
    ort_out = ort_run(path, x32)
    err = np.abs(ours - ort_out)
    assert (err <= float32_bound(net, x)).all(), err.max()


def onnx_dims(path: Path) -> list[int]:
    model = onnx.load(str(path))
    inits = {t.name for t in model.graph.initializer}
    (real,) = [i for i in model.graph.input if i.name not in inits]
    return [d.dim_value or 1 for d in real.type.tensor_type.shape.dim]


def nnet_header(path: Path) -> tuple[np.ndarray, ...]:
    """Input minima, maxima, means and ranges (with the output entry last) of a .nnet file."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("//")]
    rows = [np.array([float(v) for v in ln.split(",") if v.strip()]) for ln in lines[3:7]]
    return tuple(rows)


# -- real networks ---------------------------------------------------------------------------------
@pytest.mark.data
@pytest.mark.parametrize("ij", ACAS_IDS)
def test_acas_onnx_matches_references(shared_data: Path, ij: str) -> None:
    path = shared_data / "acasxu" / f"ACASXU_run2a_{ij}_batch_2000.onnx"
    net = load_onnx(path)
    assert (net.input_dim, net.hidden_sizes, net.output_dim) == (5, (50,) * 6, 5)
    assert net.name == path.stem and net.domain is None
    assert net.input_names == ("rho", "theta", "psi", "v_own", "v_int")
    assert net.output_names == ("COC", "WL", "WR", "SL", "SR")
    x = np.random.default_rng(0).uniform(ACAS_LO, ACAS_HI, (N_SAMPLES, 5))
    check_against_references(path, net, x, onnx_dims(path))


@pytest.mark.data
@pytest.mark.parametrize("stem", MNIST)
def test_mnist_onnx_matches_references(shared_data: Path, stem: str) -> None:
    path = shared_data / "mnistfc" / f"{stem}.onnx"
    net = load_onnx(path)
    depth = int(stem[-1])
    assert (net.input_dim, net.hidden_sizes, net.output_dim) == (784, (256,) * depth, 10)
    x = np.random.default_rng(1).uniform(0.0, 1.0, (N_SAMPLES, 784))
    check_against_references(path, net, x, onnx_dims(path))


@pytest.mark.data
@pytest.mark.parametrize("ij", ACAS_IDS)
def test_nnet_matches_onnx(shared_data: Path, ij: str) -> None:
    nnet_path = shared_data / "acasxu-nnet" / f"ACASXU_experimental_v2a_{ij}.nnet"
    onnx_net = load_onnx(shared_data / "acasxu" / f"ACASXU_run2a_{ij}_batch_2000.onnx")
    lo, hi, means, ranges = nnet_header(nnet_path)
    mu, r = means[:5], ranges[:5]
    norm = load_nnet(nnet_path, normalize_inputs=False)
    # the ONNX file holds the .nnet weights rounded to float32, nothing else
    for a, b in zip(
        (*norm.weights, *norm.biases), (*onnx_net.weights, *onnx_net.biases), strict=True
    ):
        np.testing.assert_array_equal(a.astype(np.float32), b)
    np.testing.assert_allclose(norm.domain.lo, (lo - mu) / r)
    np.testing.assert_allclose(norm.domain.hi, (hi - mu) / r)

    raw = load_nnet(nnet_path)
    assert raw.domain is not None
    np.testing.assert_array_equal(raw.domain.lo, lo)
    np.testing.assert_array_equal(raw.domain.hi, hi)
    assert raw.input_names == ("rho", "theta", "psi", "v_own", "v_int")
    x = np.random.default_rng(2).uniform(lo, hi, (N_SAMPLES, 5))
    u = (x - mu) / r
    y = norm.forward(u)
    scale = np.abs(y).max()
    np.testing.assert_allclose(raw.forward(x), y, rtol=1e-9, atol=1e-9 * scale)
    # float32 weights against float64 text weights: a ~1e-7 relative difference
    np.testing.assert_allclose(onnx_net.forward(u), y, atol=1e-5 * max(scale, 1.0))

    denorm = load_nnet(nnet_path, denormalize_outputs=True)
    np.testing.assert_allclose(
        denorm.forward(x), y * ranges[5] + means[5], rtol=1e-9, atol=1e-9 * ranges[5] * scale
    )


@pytest.mark.data
def test_load_network_dispatches(shared_data: Path, tmp_path: Path) -> None:
    onnx_net = load_network(shared_data / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    nnet = load_network(
        shared_data / "acasxu-nnet" / "ACASXU_experimental_v2a_1_1.nnet", normalize_inputs=False
    )
    assert nnet.fingerprint() != onnx_net.fingerprint()  # float64 text vs float32 weights
    save_torch(nnet, tmp_path / "acas.pt")
    back = load_network(tmp_path / "acas.pt")
    assert back.fingerprint() == nnet.fingerprint()
    assert back.input_names == nnet.input_names and back.name == nnet.name


@pytest.mark.data
def test_truncated_nnet(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "acasxu-nnet" / "ACASXU_experimental_v2a_1_1.nnet"
    bad = tmp_path / "trunc.nnet"
    bad.write_text("\n".join(src.read_text().splitlines()[:20]) + "\n")
    with pytest.raises(ModelFormatError, match=r"line 20 .*truncated"):
        load_nnet(bad)
    lines = src.read_text().splitlines()
    lines[12] = "1.0,oops,2.0,"
    bad.write_text("\n".join(lines))
    with pytest.raises(ModelFormatError, match="line 13"):
        load_nnet(bad)


# -- torch -----------------------------------------------------------------------------------------
def _mlp(*sizes: int, seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    mods: list[torch.nn.Module] = []
    for k in range(len(sizes) - 1):
        mods.append(torch.nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def _torch_forward(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    module = module.eval().double()
    with torch.no_grad():
        return module(torch.as_tensor(x, dtype=torch.float64)).numpy()


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=5),
    extras=st.lists(st.sampled_from(["id", "drop", "linear", "relu"]), max_size=4),
    seed=st.integers(0, 2**16),
)
def test_from_sequential_matches_torch(sizes: list[int], extras: list[str], seed: int) -> None:
    """Extra Identity / Dropout / back-to-back Linear / doubled ReLU layers change nothing."""
    torch.manual_seed(seed)
    mods: list[torch.nn.Module] = [torch.nn.Flatten()]
    for k in range(len(sizes) - 1):
        mods.append(torch.nn.Linear(sizes[k], sizes[k + 1], bias=bool(k % 2 == 0)))
        if k < len(extras) and extras[k] == "linear":
            mods.append(torch.nn.Linear(sizes[k + 1], sizes[k + 1]))
        if k < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
            if k < len(extras) and extras[k] == "relu":
                mods.append(torch.nn.ReLU())
        if k < len(extras) and extras[k] in ("id", "drop"):
            mods.append(torch.nn.Identity() if extras[k] == "id" else torch.nn.Dropout(0.5))
    model = torch.nn.Sequential(mods[0], torch.nn.Sequential(*mods[1:]))  # nested
    net = from_sequential(model)
    assert net.num_hidden == sum(sizes[1:-1])
    x = np.random.default_rng(seed).normal(size=(50, sizes[0]))
    np.testing.assert_allclose(net.forward(x), _torch_forward(model, x), rtol=1e-12, atol=1e-12)


def test_torch_state_dict_round_trip(tmp_path: Path) -> None:
    from relucid.domain import Box

    net = from_sequential(
        _mlp(3, 8, 8, 2),
        input_names=["a", "b", "c"],
        output_names=["no", "yes"],
        domain=Box([0, 0, -1], [1, 1, np.inf]),
        name="toy",
    )
    save_torch(net, tmp_path / "toy.pt")
    back = load_torch(tmp_path / "toy.pt")
    assert back.fingerprint() == net.fingerprint()
    assert back.input_names == ("a", "b", "c") and back.output_names == ("no", "yes")
    assert back.name == "toy"
    assert back.domain is not None and net.domain is not None
    assert back.domain.to_dict() == net.domain.to_dict()


@pytest.mark.parametrize("prefix", ["", "net.", "model.layers."])
def test_plain_state_dict_loads(tmp_path: Path, prefix: str) -> None:
    model = _mlp(4, 12, 12, 12, 12, 12, 3)  # indices 0..10: "10" must sort after "8"
    state = {f"{prefix}{k}": v for k, v in model.state_dict().items()}
    torch.save(state, tmp_path / "plain.pth")
    net = load_torch(tmp_path / "plain.pth")
    assert net.hidden_sizes == (12,) * 5 and net.name == "plain"
    x = np.random.default_rng(3).normal(size=(20, 4))
    np.testing.assert_allclose(net.forward(x), _torch_forward(model, x), rtol=1e-6, atol=1e-6)


class _Payload:
    def __init__(self) -> None:
        self.value = 1


@pytest.mark.parametrize("obj", [_Payload(), _mlp(2, 3, 1)], ids=["object", "module"])
def test_pickled_objects_refused(tmp_path: Path, obj: object) -> None:
    torch.save(obj, tmp_path / "obj.pt")
    with pytest.raises(ModelFormatError, match="pickled Python objects"):
        load_torch(tmp_path / "obj.pt")


def test_torch_file_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelFormatError, match="not a readable torch file"):
        load_torch(tmp_path / "junk.pt")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(ModelFormatError, match="holds a list, not a state dict"):
        load_torch(tmp_path / "list.pt")
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))
    torch.save(conv.state_dict(), tmp_path / "conv.pt")
    with pytest.raises(UnsupportedModelError, match=r"'0' has a 4-D weight"):
        load_torch(tmp_path / "conv.pt")
    bn = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    torch.save(bn.state_dict(), tmp_path / "bn.pt")
    with pytest.raises(UnsupportedModelError, match="running_mean"):
        load_torch(tmp_path / "bn.pt")


@pytest.mark.parametrize(
    ("layer", "kind"), [(torch.nn.Conv2d(1, 1, 1), "Conv2d"), (torch.nn.Sigmoid(), "Sigmoid")]
)
def test_unsupported_torch_layers(layer: torch.nn.Module, kind: str) -> None:
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Sequential(torch.nn.Linear(4, 4), layer)
    )
    with pytest.raises(UnsupportedModelError, match=rf"layer '2\.1' \({kind}\) is not supported"):
        from_sequential(model)


def test_relu_placement_refused() -> None:
    with pytest.raises(UnsupportedModelError, match=r"'3' \(ReLU\) is the last layer"):
        from_sequential(torch.nn.Sequential(*_mlp(2, 3, 1), torch.nn.ReLU()))
    with pytest.raises(UnsupportedModelError, match=r"'0' \(ReLU\) comes before any Linear"):
        from_sequential(torch.nn.Sequential(torch.nn.ReLU(), *_mlp(2, 3, 1)))
    with pytest.raises(UnsupportedModelError, match="start_dim=0"):
        from_sequential(torch.nn.Sequential(torch.nn.Flatten(0), *_mlp(2, 3, 1)))


# -- ONNX graphs built by hand -------------------------------------------------------------------
def _init(name: str, a: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def _save(tmp_path: Path, nodes: list, inits: list, in_shape: list, out_shape: list) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    path = tmp_path / "g.onnx"
    onnx.save(model, str(path))
    return path


def test_hand_built_onnx_loads(tmp_path: Path) -> None:
    """Normalisation, Reshape via a Constant, MatMul + Add, Gemm with alpha/beta, Dropout."""
    rng = np.random.default_rng(4)
    w1, b1 = rng.normal(size=(6, 4)), rng.normal(size=6)
    w2, b2 = rng.normal(size=(3, 6)), rng.normal(size=3)
    mean, std = rng.normal(size=(1, 1, 2, 2)), rng.uniform(0.5, 2.0, size=(1, 1, 2, 2))
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["s"], name="norm_sub"),
        helper.make_node("Div", ["s", "std"], ["d"], name="norm_div"),
        helper.make_node(
            "Constant", [], ["shape"], value=numpy_helper.from_array(np.array([-1, 4]))
        ),
        helper.make_node("Reshape", ["d", "shape"], ["r"], name="reshape"),
        helper.make_node("MatMul", ["r", "w1t"], ["m"], name="fc1"),
        helper.make_node("Add", ["b1", "m"], ["a"], name="fc1_bias"),
        helper.make_node("Relu", ["a"], ["h"], name="relu1"),
        helper.make_node("Dropout", ["h"], ["hd"], name="drop"),
        helper.make_node("Gemm", ["hd", "w2", "b2"], ["g"], alpha=2.0, beta=0.5, transB=1),
        helper.make_node("Identity", ["g"], ["y"], name="out"),
    ]
    inits = [
        _init("mean", mean), _init("std", std), _init("w1t", w1.T), _init("b1", b1),
        _init("w2", w2), _init("b2", b2),
    ]  # fmt: skip
    net = load_onnx(_save(tmp_path, nodes, inits, [1, 1, 2, 2], [1, 3]), output_names=list("abc"))
    assert net.hidden_sizes == (6,) and net.output_names == ("a", "b", "c")
    x = rng.normal(size=(30, 4))
    f32 = [np.asarray(v, dtype=np.float32).astype(np.float64) for v in (w1, b1, w2, b2)]
    u = (x - mean.astype(np.float32).reshape(4)) / std.astype(np.float32).reshape(4)
    expect = 2.0 * np.maximum(u @ f32[0].T + f32[1], 0) @ f32[2].T + 0.5 * f32[3]
    np.testing.assert_allclose(net.forward(x), expect, rtol=1e-12, atol=1e-12)


class _Custom(torch.nn.Module):
    """Exports to Sub, Div, Shape/Gather/Unsqueeze/Concat feeding a Reshape, two Relus, c - x."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Linear(6, 5), torch.nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x - 0.25) / 2.0).view(x.size(0), -1)
        return 1.5 - self.b(torch.relu(torch.relu(self.a(x))))


@pytest.mark.parametrize("kind", ["sequential", "custom"])
def test_torch_exported_onnx_loads(tmp_path: Path, kind: str) -> None:
    torch.manual_seed(6)
    model = (
        torch.nn.Sequential(torch.nn.Flatten(), *_mlp(6, 5, 4, 3))
        if kind == "sequential"
        else _Custom()
    )
    path = tmp_path / "export.onnx"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model.eval(),
                (torch.zeros(1, 2, 3),),
                str(path),
                dynamo=False,
                input_names=["x"],
                dynamic_axes={"x": {0: "batch"}},
            )
    except Exception as exc:  # the exporter's optional dependencies vary between versions
        pytest.skip(f"torch.onnx.export unavailable: {exc}")
    net = load_onnx(path)
    x = np.random.default_rng(5).normal(size=(40, 6))
    expect = _torch_forward(model, x.reshape(40, 2, 3))
    np.testing.assert_allclose(net.forward(x), expect, rtol=1e-6, atol=1e-6)


def _graph_with(tmp_path: Path, middle: list, extra: list | None = None) -> Path:
    """x (1, 4) -> Gemm 'fc1' -> Relu 'r1' -> [middle, ending in 'mid'] -> Gemm 'fc_out' -> y."""
    eye = np.eye(4)
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["z1"], name="fc1"),
        helper.make_node("Relu", ["z1"], ["h1"], name="r1"),
        *middle,
        helper.make_node("Gemm", ["mid", "w", "b"], ["y"], name="fc_out"),
    ]
    inits = [_init("w", eye), _init("b", np.zeros(4)), *(extra or [])]
    return _save(tmp_path, nodes, inits, [1, 4], [1, 4])


@pytest.mark.parametrize(
    ("middle", "node", "op"),
    [
        ([helper.make_node("Sigmoid", ["h1"], ["mid"], name="sig")], "sig", "Sigmoid"),
        (
            [
                helper.make_node("Gemm", ["h1", "w", "b"], ["z2"], name="fc2"),
                helper.make_node("Add", ["z2", "h1"], ["mid"], name="skip"),
            ],
            "skip",
            "Add",
        ),
        ([helper.make_node("Mul", ["h1", "h1"], ["mid"], name="square")], "square", "Mul"),
        (
            [
                helper.make_node("Gemm", ["h1", "w", "b"], ["z2"], name="fc2"),
                helper.make_node("Gemm", ["h1", "w", "b"], ["mid"], name="branch"),
            ],
            "branch",
            "Gemm",
        ),
    ],
    ids=["sigmoid", "residual", "square", "branch"],
)
def test_onnx_refusals_name_the_node(tmp_path: Path, middle: list, node: str, op: str) -> None:
    with pytest.raises(UnsupportedModelError, match=rf"node '{node}' \({op}\)"):
        load_onnx(_graph_with(tmp_path, middle))


def test_onnx_conv_and_trailing_relu_refused(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "k"], ["c"], name="conv1"),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("Gemm", ["f", "w", "b"], ["y"], transB=1),
    ]
    inits = [_init("k", np.ones((1, 1, 3, 3))), _init("w", np.ones((2, 4))), _init("b", [0, 0])]
    with pytest.raises(UnsupportedModelError, match=r"node 'conv1' \(Conv\) is not supported"):
        load_onnx(_save(tmp_path, nodes, inits, [1, 1, 4, 4], [1, 2]))
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["z"], transB=1),
        helper.make_node("Relu", ["z"], ["y"], name="final_relu"),
    ]
    with pytest.raises(UnsupportedModelError, match=r"ends with node 'final_relu' \(Relu\)"):
        load_onnx(_save(tmp_path, nodes, inits[1:], [1, 4], [1, 2]))
    nodes = [
        helper.make_node("Relu", ["x"], ["h"], name="first_relu"),
        helper.make_node("Gemm", ["h", "w", "b"], ["y"], transB=1),
    ]
    with pytest.raises(UnsupportedModelError, match=r"'first_relu' \(Relu\) acts on the input"):
        load_onnx(_save(tmp_path, nodes, inits[1:], [1, 4], [1, 2]))


# -- errors --------------------------------------------------------------------------------------
def test_load_network_errors(tmp_path: Path) -> None:
    (tmp_path / "model.h5").write_text("")
    with pytest.raises(ModelFormatError, match=r"unknown model suffix '\.h5'"):
        load_network(tmp_path / "model.h5")
    with pytest.raises(ModelFormatError, match="no such model file"):
        load_network(tmp_path / "missing.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(ModelFormatError, match="not a readable ONNX model"):
        load_network(tmp_path / "bad.onnx")


def test_nnet_format_errors(tmp_path: Path) -> None:
    path = tmp_path / "tiny.nnet"
    good = [
        "// tiny",
        "1,2,1,2,",
        "2,1,",
        "0,",
        "0,0,",
        "1,1,",
        "0,0,0,",
        "1,1,1,",
        "1,-1,",
        "0.5,",
    ]
    path.write_text("\n".join(good))
    net = load_nnet(path)
    np.testing.assert_allclose(net.forward([0.75, 0.25]), [1.0])
    assert net.domain is not None and net.domain.to_dict() == {"lo": [0, 0], "hi": [1, 1]}
    path.write_text("\n".join([*good, "7,"]))
    with pytest.raises(ModelFormatError, match="line 11: unexpected data"):
        load_nnet(path)
    path.write_text("\n".join([*good[:2], "3,1,", *good[3:]]))
    with pytest.raises(ModelFormatError, match="layer sizes"):
        load_nnet(path)


def test_forward_input_errors() -> None:
    net = from_sequential(_mlp(3, 4, 2), input_names=["a", "b", "c"])
    with pytest.raises(InputError, match=r"expects \(3,\) or \(batch, 3\)"):
        net.forward(np.zeros(4))
    with pytest.raises(InputError, match=r"expects \(3,\)"):
        net.forward(np.zeros((2, 2, 3)))
    with pytest.raises(InputError, match="non-finite value nan in feature 'b'"):
        net.forward([0.0, np.nan, 1.0])
    with pytest.raises(InputError, match="row 1 has a non-finite value inf in feature 'c'"):
        net.forward([[0.0, 0.0, 0.0], [0.0, 0.0, np.inf]])
