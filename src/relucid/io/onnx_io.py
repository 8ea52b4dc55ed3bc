"""Read a chain of affine ops and ReLUs from an ONNX graph, with the ``onnx`` package only.

The graph is read as the function of *one* example: the batch dimension of the input (first
axis, symbolic or 1) is fixed to 1 and every tensor is tracked by its concrete shape ``S``
and its row-major flat vector. Between two ``Relu`` nodes the ops compose into one affine
map of the flat vectors, ``v = P u + p`` (``u`` the segment's input), which becomes one layer
``(W, b) = (P, p)`` of the :class:`~relucid.network.ReluNetwork`:

* ``Gemm`` (``transA = 0``): ``Y = alpha A B' + beta C`` with ``B' = B^T`` if ``transB``;
* ``MatMul`` with a constant right operand, ``Add`` / ``Sub`` / ``Mul`` / ``Div`` with one
  constant operand (biases, and input normalisation ``(x - mean) / std`` before the first
  layer);
* ``Flatten``, ``Reshape``, ``Identity``, ``Dropout`` (inference: identity), ``Cast`` to a
  float type: the flat vector is unchanged.

Nodes whose inputs are all constants (``Constant``, ``Shape`` of the tracked tensor, the
index arithmetic that feeds a ``Reshape``) are evaluated with ``onnx.reference``. Anything
else on the chain (``Conv``, ``Sigmoid``, ``BatchNormalization``, a residual ``Add`` of two
computed tensors, a branch) raises :class:`UnsupportedModelError` naming the node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from relucid.errors import ModelFormatError, UnsupportedModelError
from relucid.io.nnet import acas_names
from relucid.network import ReluNetwork

FloatArray = NDArray[np.float64]

SUPPORTED_OPS = (
    "Gemm, MatMul, Add, Sub, Mul, Div, Relu, Flatten, Reshape, Identity, Dropout, Cast, "
    "Constant (and constant-only subgraphs)"
)
_PASS_THROUGH = {"Identity", "Dropout", "Cast"}
_FLOAT_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


@dataclass
class _Chain:
    """The layers read so far and the pending affine map ``v = P u + p`` of this segment."""

    head: str
    shape: tuple[int, ...]
    P: FloatArray | None = None  # None is the identity
    p: FloatArray = field(default_factory=lambda: np.zeros(0))
    has_affine: bool = False
    weights: list[FloatArray] = field(default_factory=list)
    biases: list[FloatArray] = field(default_factory=list)
    last_relu: str = ""

    def apply(self, lin: FloatArray | None, off: FloatArray, shape: tuple[int, ...]) -> None:
        """Compose ``v <- lin v + off`` (``lin=None``: identity); the head takes ``shape``."""
        if lin is not None:
            self.P = lin if self.P is None else lin @ self.P
            self.p = lin @ self.p
        self.p = self.p + off
        self.shape = shape
        self.has_affine = True

    def relu(self, label: str) -> None:
        if not self.has_affine:
            if not self.weights:
                raise UnsupportedModelError(
                    f"{label} (Relu) acts on the input before any affine layer; relucid "
                    "needs every ReLU to follow an affine layer"
                )
            return  # relu(relu(z)) = relu(z)
        n = int(np.prod(self.shape))
        self.weights.append(np.eye(n) if self.P is None else self.P)
        self.biases.append(self.p)
        self.P, self.p, self.has_affine = None, np.zeros(n), False
        self.last_relu = label


def _label(node: Any, index: int) -> str:
    if node.name:
        return f"node {node.name!r}"
    outs = ", ".join(repr(o) for o in node.output)
    return f"node #{index} (output {outs})"


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _fold(
    node: Any, label: str, consts: dict[str, np.ndarray], opsets: dict[str, int]
) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    feeds = {i: consts[i] for i in node.input if i}
    try:
        return list(ReferenceEvaluator(node, opsets=opsets).run(None, feeds))
    except Exception as exc:  # the reference runtime raises many kinds
        raise UnsupportedModelError(
            f"{label} ({node.op_type}) on constants could not be evaluated: {exc}"
        ) from exc


def _broadcast(
    c: np.ndarray, shape: tuple[int, ...], label: str, op: str
) -> tuple[FloatArray, tuple[int, ...]]:
    """``c`` broadcast against ``shape``, flattened, and the result's shape.

    Refused if it would repeat the tracked tensor (more elements than ``shape``).
    """
    try:
        out = np.broadcast_shapes(shape, c.shape)
    except ValueError as exc:
        raise ModelFormatError(f"{label} ({op}): {exc}") from exc
    if int(np.prod(out)) != int(np.prod(shape)):
        raise UnsupportedModelError(
            f"{label} ({op}): a constant of shape {c.shape} broadcasts the tensor of shape "
            f"{shape} to {out}; relucid needs element-wise constants"
        )
    return np.broadcast_to(c.astype(np.float64), out).reshape(-1), tuple(int(d) for d in out)


def _reshape(shape: tuple[int, ...], target: np.ndarray, allowzero: int) -> tuple[int, ...]:
    dims = [int(v) for v in target.reshape(-1)]
    if not allowzero:
        dims = [shape[i] if d == 0 and i < len(shape) else d for i, d in enumerate(dims)]
    total = int(np.prod(shape))
    if dims.count(-1) == 1:
        known = int(np.prod([d for d in dims if d != -1]))
        dims[dims.index(-1)] = total // known if known else 0
    if int(np.prod(dims)) != total or min(dims, default=1) < 0:
        raise ModelFormatError(f"cannot reshape a tensor of shape {shape} to {target.tolist()}")
    return tuple(dims)


def _step(chain: _Chain, node: Any, label: str, const: list[np.ndarray | None]) -> None:
    """Apply one node whose dynamic input is ``chain.head``; ``const`` holds the other inputs."""
    op, at, s = node.op_type, _attrs(node), chain.shape
    if op == "Relu":
        chain.relu(label)
    elif op in _PASS_THROUGH:
        if op == "Cast" and at.get("to") not in _FLOAT_TYPES:
            raise UnsupportedModelError(f"{label} (Cast) casts to a non-float type")
    elif op == "Flatten":
        axis = int(at.get("axis", 1))
        axis = axis + len(s) if axis < 0 else axis
        chain.shape = (int(np.prod(s[:axis])), int(np.prod(s[axis:])))
    elif op == "Reshape":
        if len(const) < 2 or const[1] is None:
            raise UnsupportedModelError(f"{label} (Reshape): the target shape is not constant")
        chain.shape = _reshape(s, const[1], int(at.get("allowzero", 0)))
    elif op in ("Gemm", "MatMul"):
        if const[0] is not None or len(const) < 2 or const[1] is None:
            raise UnsupportedModelError(
                f"{label} ({op}) must multiply the computed tensor (left) by a constant (right)"
            )
        if op == "Gemm" and at.get("transA", 0):
            raise UnsupportedModelError(f"{label} (Gemm) with transA=1 is not supported")
        w = const[1].astype(np.float64)
        if op == "Gemm" and at.get("transB", 0):
            w = w.T
        if w.ndim != 2 or not s or s[-1] != w.shape[0]:
            raise ModelFormatError(f"{label} ({op}): cannot multiply shape {s} by {w.shape}")
        if op == "Gemm" and len(s) != 2:
            raise ModelFormatError(f"{label} (Gemm): input of shape {s} is not 2-D")
        rows, new = int(np.prod(s[:-1])), (*s[:-1], w.shape[1])
        block = w.T if rows == 1 else np.kron(np.eye(rows), w.T)  # one w.T per row of s
        lin = np.asarray(float(at.get("alpha", 1.0)) * block, dtype=np.float64)
        off = np.zeros(int(np.prod(new)))
        if op == "Gemm" and len(const) > 2 and const[2] is not None:
            off = float(at.get("beta", 1.0)) * _broadcast(const[2], new, label, op)[0]
        chain.apply(lin, off, new)
    elif op in ("Add", "Sub", "Mul", "Div"):
        left = const[0] is None
        c = const[1] if left else const[0]
        if c is None:
            raise ModelFormatError(f"{label} ({op}) lacks a second operand")
        cf, s = _broadcast(c, s, label, op)
        if op in ("Add", "Sub"):
            sign = -1.0 if (op == "Sub" and left) else 1.0
            if op == "Sub" and not left:  # c - v
                chain.apply(-np.eye(cf.size), cf, s)
            else:
                chain.apply(None, sign * cf, s)
        elif op == "Div" and not left:
            raise UnsupportedModelError(f"{label} (Div) divides a constant by the tensor")
        else:
            if op == "Div" and np.any(cf == 0):
                raise ModelFormatError(f"{label} (Div) divides by zero")
            scale = 1.0 / cf if op == "Div" else cf
            chain.apply(np.diag(scale), np.zeros(cf.size), s)
    else:
        raise UnsupportedModelError(
            f"{label} ({op}) is not supported: relucid reads {SUPPORTED_OPS}"
        )


def load_onnx(
    path: str | Path,
    *,
    input_names: list[str] | tuple[str, ...] | None = None,
    output_names: list[str] | tuple[str, ...] | None = None,
) -> ReluNetwork:
    """Load an ONNX feed-forward ReLU network.

    Parameters
    ----------
    path : the ``.onnx`` file
    input_names, output_names : names of the flat input features and of the outputs
        (ACAS Xu files, named ``*ACASXU*``, get the standard names by default)

    Returns
    -------
    ReluNetwork
        Taking the flattened input (row-major, batch axis dropped), named after the file
        stem, with ``domain=None`` (ONNX states no input ranges).

    Raises
    ------
    UnsupportedModelError
        For an op outside the supported set, a branch or residual connection, a ReLU before
        the first or after the last affine layer; the message names the node.
    ModelFormatError
        If the file cannot be read or its shapes do not fit.
    """
    import onnx
    from onnx import numpy_helper

    p = Path(path)
    if not p.is_file():
        raise ModelFormatError(f"no such ONNX file: {p}")
    try:
        model = onnx.load(str(p))
    except Exception as exc:  # protobuf raises its own DecodeError
        raise ModelFormatError(f"{p}: not a readable ONNX model ({exc})") from exc
    g = model.graph
    opsets = {o.domain: o.version for o in model.opset_import}
    consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    real = [i for i in g.input if i.name not in consts]
    if len(real) != 1:
        raise UnsupportedModelError(
            f"{p}: the graph has {len(real)} inputs {[i.name for i in real]}; relucid reads one"
        )
    # a symbolic or unset dimension reads as 0; the batch axis (first of >= 2) becomes 1
    dims = [int(d.dim_value) for d in real[0].type.tensor_type.shape.dim]
    if len(dims) >= 2 and dims[0] == 0:
        dims[0] = 1
    if not dims or min(dims) < 1 or (len(dims) >= 2 and dims[0] != 1):
        raise ModelFormatError(
            f"{p}: input {real[0].name!r} has shape {dims} (0 = symbolic); relucid needs "
            "(batch, features...) with batch 1 or symbolic, and fixed feature sizes"
        )
    shape = tuple(dims)
    n_in = int(np.prod(shape))
    chain = _Chain(head=real[0].name, shape=shape, p=np.zeros(n_in))
    computed = {chain.head: chain.shape}  # every tensor on the chain, with its shape
    produced = {o for node in g.node for o in node.output}
    for idx, node in enumerate(g.node):
        label = _label(node, idx)
        dynamic = [i for i in node.input if i and i not in consts]
        if node.op_type == "Constant" or not dynamic:
            outs = _fold(node, label, consts, opsets)
            consts.update(zip(node.output, outs, strict=False))
            continue
        for name in dynamic:
            if name not in computed:
                raise (UnsupportedModelError if name in produced else ModelFormatError)(
                    f"{label} ({node.op_type}) reads {name!r}, which is not on the chain from "
                    f"the input {real[0].name!r}"
                )
        if node.op_type == "Shape":  # shapes are known: Shape is a constant
            outs = _fold(node, label, {dynamic[0]: np.zeros(computed[dynamic[0]])}, opsets)
            consts.update(zip(node.output, outs, strict=False))
            continue
        if len(set(dynamic)) > 1:
            raise UnsupportedModelError(
                f"{label} ({node.op_type}) combines computed tensors {dynamic} (a residual or "
                "skip connection); relucid reads a single chain of affine layers and ReLUs"
            )
        if len(dynamic) > 1:
            raise UnsupportedModelError(
                f"{label} ({node.op_type}) uses the computed tensor {dynamic[0]!r} twice, "
                "which is not affine"
            )
        if dynamic[0] != chain.head:
            raise UnsupportedModelError(
                f"{label} ({node.op_type}) reads {dynamic[0]!r} after another node did: the "
                "graph branches; relucid reads a single chain of affine layers and ReLUs"
            )
        _step(chain, node, label, [consts.get(i) if i else None for i in node.input])
        chain.head = node.output[0]
        computed[chain.head] = chain.shape
    outputs = [o.name for o in g.output]
    if outputs != [chain.head]:
        raise UnsupportedModelError(
            f"{p}: graph outputs {outputs} are not the end {chain.head!r} of the single chain"
        )
    if not chain.has_affine:
        if chain.weights:
            raise UnsupportedModelError(
                f"{p}: the graph ends with {chain.last_relu} (Relu); relucid needs affine "
                "logits after the last ReLU"
            )
        raise ModelFormatError(f"{p}: the graph has no affine layer")
    chain.relu("the output")
    weights, biases = chain.weights, chain.biases
    dflt_in, dflt_out = acas_names(p.stem, weights[0].shape[1], weights[-1].shape[0])
    return ReluNetwork(
        weights,
        biases,
        input_names=input_names if input_names is not None else dflt_in,
        output_names=output_names if output_names is not None else dflt_out,
        name=p.stem,
    )
