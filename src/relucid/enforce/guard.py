"""Guarded models: a classifier followed by its safety layer, ONNX export, and the two
file-level operations the CLI runs (``guard check`` and ``guard export``).

Paper: self-correcting-networks, section 4 (an SC-Net is ``SC^Phi(f)``: the layer composed
with any classifier ``f``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from relucid.enforce.constraints import Constraint, ConstraintSet
from relucid.enforce.layer import SafeOutput, SafetyConfig, SafetyLayer, SafetyStatus
from relucid.enforce.parse import load_constraints
from relucid.errors import InputError, ModelFormatError
from relucid.network import ReluNetwork

Decision = Literal["argmax", "argmin"]


class GuardedModel(nn.Module):
    """``x -> layer(x, f(x))``: a classifier whose outputs always satisfy the constraints.

    Parameters
    ----------
    model : the classifier, ``(B, ...) -> (B, m)``.
    layer : the :class:`SafetyLayer`.
    decision : ``"argmin"`` for networks whose smallest output is the decision (ACAS Xu): the
        layer then sees ``-f(x)`` (the constraints are written for the maximal-logit
        convention) and the corrected scores are negated back, so the guarded model keeps the
        model's own convention.

    ``forward`` returns a :class:`SafeOutput` (logits, bottom, status).
    """

    def __init__(self, model: nn.Module, layer: SafetyLayer, decision: Decision = "argmax"):
        super().__init__()
        if decision not in ("argmax", "argmin"):
            raise InputError(f"decision must be 'argmax' or 'argmin', got {decision!r}")
        self.model = model
        self.layer = layer
        self.decision = decision

    def forward(self, x: Tensor) -> SafeOutput:
        y = self.model(x)
        if self.decision == "argmin":
            out = self.layer(x, -y)
            return SafeOutput(-out.logits, out.bottom, out.status)
        return self.layer(x, y)


def _as_module(model: nn.Module | ReluNetwork, dtype: torch.dtype) -> tuple[nn.Module, int | None]:
    if isinstance(model, ReluNetwork):
        return model.to_torch(dtype).eval(), model.output_dim
    if isinstance(model, nn.Module):
        return model, None
    raise InputError(f"cannot guard a {type(model).__name__}: pass an nn.Module or ReluNetwork")


def guard(
    model: nn.Module | ReluNetwork,
    constraints: ConstraintSet | Sequence[Constraint],
    num_classes: int | None = None,
    *,
    decision: Decision = "argmax",
    config: SafetyConfig | None = None,
    dtype: torch.dtype = torch.float32,
) -> GuardedModel:
    """Append a :class:`SafetyLayer` to ``model``.

    Parameters
    ----------
    model : a ``torch.nn.Module`` or a :class:`~relucid.ReluNetwork` (converted to a torch
        module of ``dtype``).
    constraints : the constraints, in the maximal-logit convention.
    num_classes : ``m``; taken from a ``ReluNetwork`` or from the constraint set's class names
        when omitted.
    decision : see :class:`GuardedModel`.
    """
    module, m = _as_module(model, dtype)
    if num_classes is None:
        num_classes = m
    if num_classes is None and isinstance(constraints, ConstraintSet) and constraints.class_names:
        num_classes = len(constraints.class_names)
    if num_classes is None:
        raise InputError("num_classes is needed to guard a torch module")
    return GuardedModel(module, SafetyLayer(constraints, num_classes, config), decision)


# --------------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OnnxCheck:
    """Agreement of an exported guarded model with torch on the same inputs."""

    path: str
    inputs: int
    max_abs_diff: float
    logits_equal: bool
    bottom_equal: bool
    status_equal: bool
    corrected: int
    bottoms: int

    @property
    def ok(self) -> bool:
        return self.bottom_equal and self.status_equal and self.max_abs_diff <= 1e-5

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ok": self.ok}

    def to_text(self) -> str:
        verdict = "agrees with" if self.ok else "DISAGREES with"
        return (
            f"{self.path}: ONNX {verdict} torch on {self.inputs} inputs "
            f"(max |logit diff| {self.max_abs_diff:.3g}, bottom equal: {self.bottom_equal}, "
            f"status equal: {self.status_equal}; {self.corrected} corrected, "
            f"{self.bottoms} bottom)"
        )


def export_onnx(guarded: GuardedModel, path: str | Path, example: Tensor) -> Path:
    """Export ``guarded`` to ONNX with a dynamic batch dimension.

    The layer runs its fixed-shape form while exporting (``SafetyConfig.execution``), which
    gives the same results as the eager one. Needs the ``onnxscript`` package (torch's
    exporter).
    """
    p = Path(path)
    guarded = guarded.eval()
    batch = torch.export.Dim("batch", min=1)
    try:
        torch.onnx.export(
            guarded,
            (example,),
            str(p),
            input_names=["x"],
            output_names=["logits", "bottom", "status"],
            dynamic_shapes=({0: batch},),
            dynamo=True,
            verbose=False,
        )
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ModelFormatError(f"ONNX export needs onnxscript: {exc}") from exc
    return p


def check_onnx(path: str | Path, guarded: GuardedModel, x: Tensor) -> OnnxCheck:
    """Run the exported model with onnxruntime and compare it with ``guarded(x)``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.detach().cpu().numpy()})
    with torch.no_grad():
        ref = guarded.eval()(x)
    logits, bottom, status = (np.asarray(g) for g in got)
    rl = ref.logits.cpu().numpy()
    return OnnxCheck(
        str(path),
        int(x.shape[0]),
        float(np.max(np.abs(logits - rl))) if logits.size else 0.0,
        bool(np.array_equal(logits, rl)),
        bool(np.array_equal(bottom.astype(bool), ref.bottom.cpu().numpy())),
        bool(np.array_equal(status.astype(np.int64), ref.status.cpu().numpy().astype(np.int64))),
        int((ref.status.cpu().numpy() == SafetyStatus.CORRECTED).sum()),
        int(ref.bottom.sum()),
    )


# --------------------------------------------------------------------------------------------
# File-level operations (the CLI's `guard check` and `guard export`)
# --------------------------------------------------------------------------------------------
def load_data(path: str | Path) -> tuple[NDArray[np.float64], NDArray[np.int64] | None]:
    """Inputs and optional labels: ``.npz`` with ``x`` (and ``y``), or ``.npy`` inputs."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such data file: {p}")
    if p.suffix == ".npy":
        return np.asarray(np.load(p, allow_pickle=False), dtype=np.float64), None
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as d:
            if "x" not in d:
                raise InputError(f"{p}: expected an array named 'x' (found {sorted(d)})")
            y = np.asarray(d["y"], dtype=np.int64).reshape(-1) if "y" in d else None
            return np.asarray(d["x"], dtype=np.float64), y
    raise InputError(f"{p}: data must be .npz (x, optional y) or .npy")


@dataclass(frozen=True)
class GuardReport:
    """Effect of the safety layer on a model and a data set (``relucid guard check``).

    Attributes
    ----------
    rows : inputs checked; ``active_rows`` with at least one active constraint.
    violating_before : rows whose model output violates an active constraint.
    violating_after : rows whose guarded output violates one *without* being bottom (0 by
        construction; reported so that any failure would show).
    bottoms, changed_top : rows flagged bottom; rows whose top class changed.
    status : count per :class:`SafetyStatus` name.
    accuracy_before, accuracy_after : when labels are given (bottom rows count as wrong
        after).
    per_constraint : name, active rows, violations before and after, per constraint.
    """

    model: str
    constraints: str
    rows: int
    active_rows: int
    violating_before: int
    violating_after: int
    bottoms: int
    changed_top: int
    status: dict[str, int]
    accuracy_before: float | None
    accuracy_after: float | None
    per_constraint: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def to_text(self) -> str:
        lines = [
            f"model {self.model}, constraints {self.constraints}: {self.rows} inputs, "
            f"{self.active_rows} with an active constraint",
            f"violating rows: {self.violating_before} before, {self.violating_after} after "
            f"(bottom: {self.bottoms}); top class changed on {self.changed_top}",
        ]
        if self.accuracy_before is not None:
            lines.append(
                f"accuracy: {self.accuracy_before:.4f} before, {self.accuracy_after:.4f} after"
            )
        lines.append("status: " + ", ".join(f"{k} {v}" for k, v in self.status.items() if v))
        for c in self.per_constraint:
            lines.append(
                f"  {c['name'] or '#'}: active {c['active']}, violated {c['violated_before']} "
                f"-> {c['violated_after']}"
            )
        lines.append(f"{self.seconds:.2f} s")
        return "\n".join(lines)


def evaluate_guard(
    guarded: GuardedModel,
    x: Tensor,
    y: NDArray[np.int64] | None = None,
    *,
    model_name: str = "model",
    constraints_name: str = "constraints",
    batch_size: int = 4096,
) -> GuardReport:
    """Violations, bottoms and accuracy of ``guarded`` against its bare model on ``x``."""
    t0 = time.perf_counter()
    layer = guarded.layer
    sign = -1.0 if guarded.decision == "argmin" else 1.0
    K = len(layer.constraints)
    act_n = np.zeros(K, dtype=np.int64)
    vb_n = np.zeros(K, dtype=np.int64)
    va_n = np.zeros(K, dtype=np.int64)
    counts = dict.fromkeys((s.name for s in SafetyStatus), 0)
    rows = active_rows = before = after = bottoms = changed = 0
    pred_b, pred_a = [], []
    guarded = guarded.eval()
    with torch.no_grad():
        for s in range(0, x.shape[0], batch_size):
            xb = x[s : s + batch_size]
            raw = sign * guarded.model(xb)
            out = guarded(xb)
            fixed = sign * out.logits
            act = layer.active(xb)
            vb = act & ~layer.satisfied(raw)
            va = act & ~layer.satisfied(fixed) & ~out.bottom.unsqueeze(1)
            rows += xb.shape[0]
            active_rows += int(act.any(dim=1).sum())
            before += int(vb.any(dim=1).sum())
            after += int(va.any(dim=1).sum())
            bottoms += int(out.bottom.sum())
            act_n += act.sum(dim=0).cpu().numpy()
            vb_n += vb.sum(dim=0).cpu().numpy()
            va_n += va.sum(dim=0).cpu().numpy()
            pb, pa = raw.argmax(dim=1), fixed.argmax(dim=1)
            changed += int((pb != pa).sum())
            pred_b.append(pb.cpu().numpy())
            pred_a.append(np.where(out.bottom.cpu().numpy(), -1, pa.cpu().numpy()))
            for st, c in zip(*torch.unique(out.status, return_counts=True), strict=True):
                counts[SafetyStatus(int(st)).name] += int(c)
    acc_b = acc_a = None
    if y is not None:
        if len(y) != rows:
            raise InputError(f"{len(y)} labels for {rows} inputs")
        acc_b = float((np.concatenate(pred_b) == y).mean()) if rows else 0.0
        acc_a = float((np.concatenate(pred_a) == y).mean()) if rows else 0.0
    per = [
        {"name": c.name, "active": int(a), "violated_before": int(b), "violated_after": int(v)}
        for c, a, b, v in zip(layer.constraints, act_n, vb_n, va_n, strict=True)
    ]
    return GuardReport(
        model_name,
        constraints_name,
        rows,
        active_rows,
        before,
        after,
        bottoms,
        changed,
        counts,
        acc_b,
        acc_a,
        per,
        time.perf_counter() - t0,
    )


def _load_guarded(
    model_path: str | Path,
    constraints_path: str | Path,
    decision: Decision,
    config: SafetyConfig | None,
) -> tuple[GuardedModel, ReluNetwork]:
    from relucid.io import load_network

    net = load_network(model_path)
    cs = load_constraints(constraints_path)
    return guard(net, cs, decision=decision, config=config), net


def guard_check(
    model_path: str | Path,
    constraints_path: str | Path,
    data_path: str | Path,
    *,
    decision: Decision = "argmax",
    config: SafetyConfig | None = None,
) -> GuardReport:
    """``relucid guard check``: load a model, a constraint file and data (``.npz`` with ``x``
    and optional labels ``y``, or ``.npy``); report violations before and after, bottoms and
    accuracy before and after."""
    guarded, net = _load_guarded(model_path, constraints_path, decision, config)
    X, y = load_data(data_path)
    if X.reshape(X.shape[0], -1).shape[1] != net.input_dim:
        raise InputError(f"data has {X.shape[1:]} features, the model takes {net.input_dim}")
    x = torch.as_tensor(X.reshape(X.shape[0], -1), dtype=torch.float32)
    return evaluate_guard(
        guarded, x, y, model_name=str(model_path), constraints_name=str(constraints_path)
    )


def guard_export(
    model_path: str | Path,
    constraints_path: str | Path,
    out_path: str | Path,
    *,
    decision: Decision = "argmax",
    data_path: str | Path | None = None,
    check_inputs: int = 1000,
    config: SafetyConfig | None = None,
    random_state: int = 0,
) -> OnnxCheck:
    """``relucid guard export``: write the guarded model as ONNX, then check it against torch
    on ``check_inputs`` inputs: the first rows of ``data_path`` if given, otherwise uniform
    samples of the model's stated input domain (or standard normal without one)."""
    guarded, net = _load_guarded(model_path, constraints_path, decision, config)
    n = net.input_dim
    if data_path is not None:
        X, _ = load_data(data_path)
        X = X.reshape(X.shape[0], -1)[:check_inputs]
    else:
        rng = np.random.default_rng(random_state)
        if net.domain is not None:
            lo, hi = np.asarray(net.domain.lo), np.asarray(net.domain.hi)
            X = lo + (hi - lo) * rng.random((check_inputs, n))
        else:
            X = rng.standard_normal((check_inputs, n))
    x = torch.as_tensor(X, dtype=torch.float32)
    path = export_onnx(guarded, out_path, x[: min(2, len(x))])
    return check_onnx(path, guarded, x)
