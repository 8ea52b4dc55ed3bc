"""Read ``torch.nn.Sequential`` ReLU networks and their saved weights.

:func:`from_sequential` reads a module; :func:`load_torch` reads a file written by
``torch.save`` with ``weights_only=True`` (tensors and plain containers only, never pickled
code); :func:`save_torch` writes relucid's own format, which :func:`load_torch` reads back
exactly.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from relucid.domain import Box, as_box
from relucid.errors import ModelFormatError, UnsupportedModelError
from relucid.network import ReluNetwork

FloatArray = NDArray[np.float64]

_SUPPORTED = "Linear, ReLU, Flatten, Identity, Dropout"
_FORMAT = "relucid.ReluNetwork"


def _leaves(module: torch.nn.Module, prefix: str = "") -> Iterator[tuple[str, torch.nn.Module]]:
    """The layers of a (possibly nested) Sequential in order, with dotted names."""
    for key, child in module.named_children():
        name = f"{prefix}{key}"
        if isinstance(child, torch.nn.Sequential):
            yield from _leaves(child, f"{name}.")
        else:
            yield name, child


def _build(
    layers: Sequence[tuple[str, FloatArray, FloatArray] | tuple[str, None, None]],
) -> tuple[list[FloatArray], list[FloatArray]]:
    """Compose ``(name, W, b)`` affine steps and ``(name, None, None)`` ReLUs into layers."""
    weights: list[FloatArray] = []
    biases: list[FloatArray] = []
    w_seg: FloatArray | None = None
    b_seg: FloatArray | None = None
    last_relu = ""
    for name, w, b in layers:
        if w is None or b is None:
            if w_seg is None or b_seg is None:
                if not weights:
                    raise UnsupportedModelError(
                        f"layer {name!r} (ReLU) comes before any Linear layer; relucid needs "
                        "every ReLU to follow a Linear layer"
                    )
                continue  # relu(relu(z)) = relu(z)
            weights.append(w_seg)
            biases.append(b_seg)
            w_seg = b_seg = None
            last_relu = name
        elif w_seg is None or b_seg is None:
            w_seg, b_seg = w, b
        else:
            if w.shape[1] != w_seg.shape[0]:
                raise ModelFormatError(
                    f"layer {name!r} takes {w.shape[1]} inputs, the layer before gives "
                    f"{w_seg.shape[0]}"
                )
            w_seg, b_seg = w @ w_seg, w @ b_seg + b
    if w_seg is None or b_seg is None:
        if weights:
            raise UnsupportedModelError(
                f"layer {last_relu!r} (ReLU) is the last layer; relucid needs affine logits "
                "(drop the final ReLU)"
            )
        raise ModelFormatError("the model has no Linear layer")
    weights.append(w_seg)
    biases.append(b_seg)
    return weights, biases


def from_sequential(
    module: torch.nn.Module,
    *,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    domain: Box | Sequence[Sequence[float]] | None = None,
    name: str | None = None,
) -> ReluNetwork:
    """Read an ``nn.Sequential`` (possibly nested) of Linear, ReLU, Flatten, Identity, Dropout.

    Consecutive Linear layers (with only Flatten, Identity or Dropout between them) compose
    into one affine layer; Dropout is read in evaluation mode (identity); ``Flatten`` must
    keep the batch axis (``start_dim=1, end_dim=-1``) and the network takes the flattened
    input. A ReLU directly after a ReLU is dropped (idempotent).

    Parameters
    ----------
    module : an ``nn.Sequential``, or a single ``nn.Linear``
    input_names, output_names, domain, name : stored on the network (``name`` defaults to
        the module's class name)

    Raises
    ------
    UnsupportedModelError
        For any other layer type (the message names the layer and its type), a ReLU before
        the first Linear layer, or a ReLU after the last one.
    """
    if isinstance(module, torch.nn.Sequential):
        items = list(_leaves(module))
    else:
        items = [(type(module).__name__, module)]
    steps: list[tuple[str, FloatArray, FloatArray] | tuple[str, None, None]] = []
    for key, layer in items:
        if isinstance(layer, torch.nn.Linear):
            w = layer.weight.detach().to(torch.float64).cpu().numpy()
            b = (
                np.zeros(w.shape[0])
                if layer.bias is None
                else layer.bias.detach().to(torch.float64).cpu().numpy()
            )
            steps.append((key, w, b))
        elif isinstance(layer, torch.nn.ReLU):
            steps.append((key, None, None))
        elif isinstance(layer, torch.nn.Flatten):
            if layer.start_dim != 1 or layer.end_dim != -1:
                raise UnsupportedModelError(
                    f"layer {key!r} (Flatten) has start_dim={layer.start_dim}, "
                    f"end_dim={layer.end_dim}; relucid reads only Flatten(1, -1)"
                )
        elif not isinstance(layer, torch.nn.Identity | torch.nn.Dropout):
            raise UnsupportedModelError(
                f"layer {key!r} ({type(layer).__name__}) is not supported: relucid reads "
                f"{_SUPPORTED}"
            )
    weights, biases = _build(steps)
    return ReluNetwork(
        weights,
        biases,
        input_names=input_names,
        output_names=output_names,
        domain=as_box(domain, weights[0].shape[1]),
        name=name or type(module).__name__,
    )


def _natural(path: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(t)) if t.isdigit() else (1, t) for t in path.split("."))


def _from_state_dict(
    state: Mapping[str, Any], where: str
) -> tuple[list[FloatArray], list[FloatArray]]:
    """Weights and biases of Linear layers in a state dict, in layer order."""
    layers: dict[str, dict[str, FloatArray]] = {}
    for key, value in state.items():
        layer, _, kind = str(key).rpartition(".")
        if kind not in ("weight", "bias") or not isinstance(value, torch.Tensor):
            raise UnsupportedModelError(
                f"{where}: entry {key!r} is not a Linear weight or bias; a state dict is read "
                "as Linear layers with a ReLU between each two"
            )
        layers.setdefault(layer, {})[kind] = value.detach().to(torch.float64).cpu().numpy()
    if not layers:
        raise ModelFormatError(f"{where}: the state dict is empty")
    order = list(layers)
    if all(p.rpartition(".")[2].isdigit() for p in order):
        order.sort(key=_natural)
    weights: list[FloatArray] = []
    biases: list[FloatArray] = []
    for layer in order:
        params = layers[layer]
        if "weight" not in params:
            raise ModelFormatError(f"{where}: layer {layer!r} has a bias but no weight")
        w = params["weight"]
        if w.ndim != 2:
            raise UnsupportedModelError(
                f"{where}: layer {layer!r} has a {w.ndim}-D weight {w.shape} (not a Linear "
                f"layer; relucid reads {_SUPPORTED})"
            )
        if weights and w.shape[1] != weights[-1].shape[0]:
            raise ModelFormatError(
                f"{where}: layer {layer!r} takes {w.shape[1]} inputs, the layer before "
                f"gives {weights[-1].shape[0]}"
            )
        weights.append(w)
        biases.append(params.get("bias", np.zeros(w.shape[0])))
    return weights, biases


def load_torch(
    path: str | Path,
    *,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    domain: Box | Sequence[Sequence[float]] | None = None,
) -> ReluNetwork:
    """Load weights saved with ``torch.save``, reading tensors only (``weights_only=True``).

    Two contents are read: a state dict of an ``nn.Sequential`` of Linear layers (keys
    ``0.weight, 0.bias, 2.weight, ...``, a common prefix such as ``net.`` allowed, layers
    ordered by their numeric index), read as Linear layers with a ReLU between each two;
    or the dict written by :func:`save_torch`, ``{"state_dict": ..., "input_names": ...,
    "output_names": ..., "domain": {"lo": ..., "hi": ...}, "name": ...}``. Keyword
    arguments override the names and domain stored in the file.

    Raises
    ------
    ModelFormatError
        If the file is missing, not a torch file, or holds pickled Python objects (a whole
        module, a custom class): save ``model.state_dict()`` instead.
    UnsupportedModelError
        If the state dict holds anything other than 2-D Linear weights and biases.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelFormatError(f"no such torch file: {p}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found is None:
            why = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
            detail = why.group(1) if why else str(exc).strip().splitlines()[0]
            raise ModelFormatError(f"{p}: not a readable torch file ({detail})") from exc
        raise ModelFormatError(
            f"{p} holds pickled Python objects ({found.group(1)}) that relucid will not "
            "execute; save model.state_dict() or use relucid.io.save_torch"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ModelFormatError(f"{p}: not a readable torch file ({exc})") from exc
    meta: Mapping[str, Any] = {}
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        meta, obj = obj, obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise ModelFormatError(f"{p} holds a {type(obj).__name__}, not a state dict")
    weights, biases = _from_state_dict(obj, str(p))
    dom_meta = meta.get("domain")
    stored = Box(dom_meta["lo"], dom_meta["hi"]) if isinstance(dom_meta, Mapping) else None
    return ReluNetwork(
        weights,
        biases,
        input_names=input_names if input_names is not None else meta.get("input_names"),
        output_names=output_names if output_names is not None else meta.get("output_names"),
        domain=as_box(domain, weights[0].shape[1]) if domain is not None else stored,
        name=str(meta.get("name") or p.stem),
    )


def save_torch(net: ReluNetwork, path: str | Path) -> None:
    """Write ``net`` (float64 weights, names, domain) in the format :func:`load_torch` reads."""
    state: dict[str, torch.Tensor] = {}
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        # the keys of net.to_torch(): Linear layers at even indices, ReLUs between them
        state[f"{2 * k}.weight"] = torch.tensor(w, dtype=torch.float64)
        state[f"{2 * k}.bias"] = torch.tensor(b, dtype=torch.float64)
    payload = {
        "format": _FORMAT,
        "version": 1,
        "state_dict": state,
        "input_names": list(net.input_names) if net.input_names else None,
        "output_names": list(net.output_names) if net.output_names else None,
        "domain": net.domain.to_dict() if net.domain is not None else None,
        "name": net.name,
    }
    torch.save(payload, Path(path))
