"""The network model every pillar reads: affine layers with ReLU between them.

A :class:`ReluNetwork` computes, for an input ``x`` of shape (n,),

    z_1 = W_1 x + b_1,   h_k = relu(z_k),   z_{k+1} = W_{k+1} h_k + b_{k+1},

with no ReLU after the last layer, whose ``z`` are the logits. Everything is float64 numpy so
that the geometry built on it (regions, LPs) is exact to double precision; :meth:`to_torch`
gives an equivalent ``torch.nn.Sequential`` for attacks and training.

Hidden neurons are numbered layer by layer ("flat" index), which is the order of every
activation pattern (a boolean array) and every NAP (an int8 array) in relucid.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.domain import Box
from relucid.errors import InputError, ModelFormatError

if TYPE_CHECKING:
    import torch

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class ReluNetwork:
    """A feed-forward ReLU classifier held as float64 arrays.

    Parameters
    ----------
    weights : sequence of arrays, ``weights[k]`` of shape (n_{k+1}, n_k)
    biases : sequence of arrays, ``biases[k]`` of shape (n_{k+1},)
    input_names : optional names of the n_0 input features
    output_names : optional names of the classes
    domain : the input ranges stated by the model file, if any
    name : a label for printing
    """

    weights: tuple[FloatArray, ...]
    biases: tuple[FloatArray, ...]
    input_names: tuple[str, ...] | None = None
    output_names: tuple[str, ...] | None = None
    domain: Box | None = None
    name: str = "network"
    _offsets: tuple[int, ...] = field(init=False, repr=False)

    def __init__(
        self,
        weights: Sequence[ArrayLike],
        biases: Sequence[ArrayLike],
        *,
        input_names: Sequence[str] | None = None,
        output_names: Sequence[str] | None = None,
        domain: Box | None = None,
        name: str = "network",
    ) -> None:
        ws = tuple(np.array(w, dtype=np.float64, copy=True) for w in weights)
        bs = tuple(np.array(b, dtype=np.float64, copy=True).reshape(-1) for b in biases)
        if not ws:
            raise ModelFormatError("a network needs at least one affine layer")
        if len(ws) != len(bs):
            raise ModelFormatError(f"{len(ws)} weight matrices but {len(bs)} bias vectors")
        for k, (w, b) in enumerate(zip(ws, bs, strict=True)):
            if w.ndim != 2:
                raise ModelFormatError(f"layer {k}: weight has shape {w.shape}, expected 2-D")
            if b.shape != (w.shape[0],):
                raise ModelFormatError(
                    f"layer {k}: bias has {b.size} entries, weight has {w.shape[0]} rows"
                )
            if k and w.shape[1] != ws[k - 1].shape[0]:
                raise ModelFormatError(
                    f"layer {k}: takes {w.shape[1]} inputs, "
                    f"layer {k - 1} gives {ws[k - 1].shape[0]}"
                )
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                raise ModelFormatError(f"layer {k}: weights or biases are not finite")
            w.setflags(write=False)
            b.setflags(write=False)
        n_in = ws[0].shape[1]
        if input_names is not None and len(input_names) != n_in:
            raise ModelFormatError(f"{len(input_names)} input names for {n_in} inputs")
        if output_names is not None and len(output_names) != ws[-1].shape[0]:
            raise ModelFormatError(
                f"{len(output_names)} output names for {ws[-1].shape[0]} outputs"
            )
        if domain is not None and domain.dim != n_in:
            raise ModelFormatError(f"domain has {domain.dim} features, the network {n_in} inputs")
        object.__setattr__(self, "weights", ws)
        object.__setattr__(self, "biases", bs)
        object.__setattr__(self, "input_names", tuple(input_names) if input_names else None)
        object.__setattr__(self, "output_names", tuple(output_names) if output_names else None)
        object.__setattr__(self, "domain", domain)
        object.__setattr__(self, "name", name)
        sizes = [w.shape[0] for w in ws[:-1]]
        object.__setattr__(self, "_offsets", tuple(int(v) for v in np.cumsum([0, *sizes])))

    # -- shape -------------------------------------------------------------------------------
    @property
    def input_dim(self) -> int:
        return int(self.weights[0].shape[1])

    @property
    def output_dim(self) -> int:
        return int(self.weights[-1].shape[0])

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        """Neurons per hidden layer (every layer but the last)."""
        return tuple(int(w.shape[0]) for w in self.weights[:-1])

    @property
    def num_hidden(self) -> int:
        return self._offsets[-1]

    @property
    def layer_offsets(self) -> tuple[int, ...]:
        """Flat index of the first neuron of each hidden layer, plus the total at the end."""
        return self._offsets

    def neuron(self, flat: int) -> tuple[int, int]:
        """(hidden layer, neuron within it) of a flat hidden-neuron index, both from 0."""
        if not 0 <= flat < self.num_hidden:
            raise IndexError(f"hidden neuron {flat} out of range 0..{self.num_hidden - 1}")
        layer = int(np.searchsorted(self._offsets, flat, side="right") - 1)
        return layer, flat - self._offsets[layer]

    def feature_name(self, i: int) -> str:
        return self.input_names[i] if self.input_names else f"x{i}"

    def class_name(self, j: int) -> str:
        return self.output_names[j] if self.output_names else str(j)

    def fingerprint(self) -> str:
        """SHA-256 of the layer shapes and float64 parameters."""
        h = hashlib.sha256()
        for w, b in zip(self.weights, self.biases, strict=True):
            h.update(np.asarray(w.shape, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(w).tobytes())
            h.update(np.ascontiguousarray(b).tobytes())
        return h.hexdigest()

    # -- evaluation ------------------------------------------------------------------------
    def check_input(self, x: ArrayLike) -> FloatArray:
        """Return ``x`` as a float64 array of shape (B, n), or raise :class:`InputError`.

        Accepts one input of shape (n,) or a batch of shape (B, n).
        """
        try:
            xa = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(f"input is not numeric: {exc}") from exc
        if xa.ndim == 1:
            xa = xa[None, :]
        if xa.ndim != 2 or xa.shape[1] != self.input_dim:
            raise InputError(
                f"input has shape {np.shape(x)}; {self.name} expects ({self.input_dim},) "
                f"or (batch, {self.input_dim})"
            )
        finite = np.isfinite(xa)
        if not finite.all():
            row, col = (int(v) for v in np.argwhere(~finite)[0])
            raise InputError(
                f"input row {row} has a non-finite value {xa[row, col]} in feature "
                f"{self.feature_name(col)!r}"
            )
        return xa

    def pre_activations(self, x: ArrayLike) -> list[FloatArray]:
        """Hidden pre-activations ``z_k`` per layer, each of shape (B, n_k)."""
        h = self.check_input(x)
        out: list[FloatArray] = []
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            z = h @ w.T + b
            out.append(z)
            h = np.maximum(z, 0.0)
        return out

    def forward(self, x: ArrayLike) -> FloatArray:
        """Logits: shape (B, m) for a batch, (m,) for a single input of shape (n,)."""
        single = np.ndim(x) == 1
        h = self.check_input(x)
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w.T + b
            if k < last:
                h = np.maximum(h, 0.0)
        return h[0] if single else h

    __call__ = forward

    def predict(self, x: ArrayLike) -> NDArray[np.int64]:
        """Arg-max class (first index on ties), shape (B,) or () for one input."""
        return np.argmax(self.forward(x), axis=-1)

    def patterns(self, x: ArrayLike) -> BoolArray:
        """Activation patterns: ``z > 0`` per hidden neuron, shape (B, num_hidden)."""
        zs = self.pre_activations(x)
        if not zs:
            return np.zeros((self.check_input(x).shape[0], 0), dtype=bool)
        return np.concatenate([z > 0 for z in zs], axis=1)

    # -- conversion ------------------------------------------------------------------------
    def to_torch(self, dtype: torch.dtype | None = None) -> torch.nn.Sequential:
        """An equivalent ``nn.Sequential`` of Linear and ReLU layers (float64 by default)."""
        import torch

        dt = dtype or torch.float64
        mods: list[torch.nn.Module] = []
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            lin = torch.nn.Linear(w.shape[1], w.shape[0], dtype=dt)
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(w, dtype=dt))
                lin.bias.copy_(torch.tensor(b, dtype=dt))
            mods.append(lin)
            if k < last:
                mods.append(torch.nn.ReLU())
        return torch.nn.Sequential(*mods)

    def with_input_transform(self, scale: ArrayLike, shift: ArrayLike) -> ReluNetwork:
        """Fold ``u = (x - shift) * scale`` into the first layer.

        The returned network takes raw ``x`` and equals ``self`` applied to ``u``:
        ``W_1 u + b_1 = (W_1 diag(scale)) x + (b_1 - W_1 (scale * shift))``.
        """
        s = np.asarray(scale, dtype=np.float64).reshape(-1)
        t = np.asarray(shift, dtype=np.float64).reshape(-1)
        w0 = self.weights[0] * s[None, :]
        b0 = self.biases[0] - self.weights[0] @ (s * t)
        return ReluNetwork(
            (w0, *self.weights[1:]),
            (b0, *self.biases[1:]),
            input_names=self.input_names,
            output_names=self.output_names,
            name=self.name,
        )

    def with_output_transform(self, scale: ArrayLike, shift: ArrayLike) -> ReluNetwork:
        """Fold ``y' = y * scale + shift`` into the last layer (scale > 0 keeps the arg-max)."""
        s = np.asarray(scale, dtype=np.float64).reshape(-1)
        t = np.asarray(shift, dtype=np.float64).reshape(-1)
        w = self.weights[-1] * s[:, None]
        b = self.biases[-1] * s + t
        return ReluNetwork(
            (*self.weights[:-1], w),
            (*self.biases[:-1], b),
            input_names=self.input_names,
            output_names=self.output_names,
            domain=self.domain,
            name=self.name,
        )

    def replace(self, **changes: object) -> ReluNetwork:
        """A copy with some of ``input_names``, ``output_names``, ``domain``, ``name`` changed."""
        kw: dict[str, object] = {
            "input_names": self.input_names,
            "output_names": self.output_names,
            "domain": self.domain,
            "name": self.name,
        }
        kw.update(changes)
        return ReluNetwork(self.weights, self.biases, **kw)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        dims = [self.input_dim, *self.hidden_sizes, self.output_dim]
        return f"ReluNetwork({self.name!r}, {'-'.join(map(str, dims))})"
