"""Read the ``.nnet`` text format (Julian et al., Stanford 2016) used for ACAS Xu.

File layout, after any number of ``//`` comment lines (every row is comma separated, a
trailing comma allowed):

1. ``L, n_in, n_out, max_size`` -- number of affine layers, input and output sizes;
2. ``L + 1`` layer sizes ``n_0 = n_in, n_1, ..., n_L = n_out``;
3. a flag (``symmetric``, unused);
4. ``n_in`` input minima ``x_min``;
5. ``n_in`` input maxima ``x_max``;
6. ``n_in + 1`` means: ``mu_x`` for the inputs, then the output mean ``mu_y``;
7. ``n_in + 1`` ranges: ``r_x`` for the inputs, then the output range ``r_y``;
8. for each layer ``k``: ``n_{k+1}`` rows of ``W_k`` (``n_k`` values each), then
   ``n_{k+1}`` rows holding one bias each.

The file's network ``f`` acts on *normalised* inputs and produces *normalised* outputs. The
reference evaluation of a raw, physical input ``x`` is

    u = (clip(x, x_min, x_max) - mu_x) / r_x,      y = f(u) * r_y + mu_y.

How :func:`load_nnet` folds this into a :class:`~relucid.network.ReluNetwork`:

* ``normalize_inputs=True`` (default): the map ``u = (x - mu_x) * (1 / r_x)`` is folded into
  the first layer, ``W_1' = W_1 diag(1 / r_x)``, ``b_1' = b_1 - W_1 (mu_x / r_x)``
  (:meth:`ReluNetwork.with_input_transform`), so the network takes raw ``x``. The clip is
  *not* folded (it is not affine): it becomes the domain ``Box(x_min, x_max)``. Inside the
  domain the loaded network equals the reference; an input outside it is off the domain
  rather than silently clipped, and relucid's analyses respect the domain.
* ``normalize_inputs=False``: the network takes ``u`` directly, as the VNN-COMP ONNX files
  in ``acasxu/`` do; the domain is the normalised box
  ``((x_min - mu_x) / r_x, (x_max - mu_x) / r_x)``.
* ``denormalize_outputs=True`` folds ``y = f * r_y + mu_y`` into the last layer
  (:meth:`ReluNetwork.with_output_transform`). ``r_y > 0`` so the arg-min/arg-max of the
  logits is unchanged; the default ``False`` keeps the normalised outputs of the ONNX files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from relucid.domain import Box
from relucid.errors import ModelFormatError
from relucid.network import ReluNetwork

ACAS_INPUT_NAMES = ("rho", "theta", "psi", "v_own", "v_int")
ACAS_OUTPUT_NAMES = ("COC", "WL", "WR", "SL", "SR")


def acas_names(
    stem: str, n_in: int, n_out: int
) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """ACAS Xu feature and advisory names for a file named ``*ACASXU*`` with 5 in / 5 out."""
    if "ACASXU" in stem.upper() and n_in == 5 and n_out == 5:
        return ACAS_INPUT_NAMES, ACAS_OUTPUT_NAMES
    return None, None


class _Rows:
    """The non-comment, non-blank lines of a ``.nnet`` file, read one row at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            text = path.read_text()
        except UnicodeDecodeError as exc:
            raise ModelFormatError(f"{path}: not a text .nnet file ({exc})") from exc
        self._lines = [
            (no, line.strip())
            for no, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.lstrip().startswith("//")
        ]
        self._pos = 0

    def next(self, count: int, what: str) -> NDArray[np.float64]:
        """The next row as exactly ``count`` floats; ``what`` names it in errors."""
        if self._pos >= len(self._lines):
            last = self._lines[-1][0] if self._lines else 0
            raise ModelFormatError(
                f"{self.path}: file ends after line {last} while reading {what} (truncated?)"
            )
        no, line = self._lines[self._pos]
        self._pos += 1
        fields = [f.strip() for f in line.split(",")]
        if fields and fields[-1] == "":
            fields.pop()
        try:
            values = np.array([float(f) for f in fields], dtype=np.float64)
        except ValueError as exc:
            raise ModelFormatError(f"{self.path}, line {no}: cannot read {what}: {exc}") from exc
        if values.size != count:
            raise ModelFormatError(
                f"{self.path}, line {no}: {what} has {values.size} values, expected {count}"
            )
        if not np.isfinite(values).all():
            raise ModelFormatError(f"{self.path}, line {no}: {what} holds a non-finite value")
        return values

    def check_end(self) -> None:
        if self._pos < len(self._lines):
            no = self._lines[self._pos][0]
            raise ModelFormatError(
                f"{self.path}, line {no}: unexpected data after the last layer's biases"
            )


def load_nnet(
    path: str | Path,
    *,
    normalize_inputs: bool = True,
    denormalize_outputs: bool = False,
) -> ReluNetwork:
    """Load a ``.nnet`` file as a :class:`ReluNetwork`.

    Parameters
    ----------
    path : the ``.nnet`` file
    normalize_inputs : fold the input normalisation into the first layer, so that the
        network takes raw inputs and its domain is ``Box(x_min, x_max)`` (see the module
        docstring); ``False`` keeps normalised inputs, like the ACAS Xu ONNX files.
    denormalize_outputs : fold the output de-normalisation ``y * r_y + mu_y`` into the
        last layer.

    Returns
    -------
    ReluNetwork
        Named after the file stem; ACAS Xu files get their feature and advisory names.

    Raises
    ------
    ModelFormatError
        If the file is missing, truncated or malformed (the message gives the line).
    """
    p = Path(path)
    if not p.is_file():
        raise ModelFormatError(f"no such .nnet file: {p}")
    rows = _Rows(p)
    head = rows.next(4, "the header 'layers, inputs, outputs, max size'")
    if not np.all(head == np.round(head)) or head.min() < 1:
        raise ModelFormatError(f"{p}: header sizes must be positive integers, got {head}")
    n_layers, n_in, n_out = (int(v) for v in head[:3])
    sizes = rows.next(n_layers + 1, "the layer sizes").astype(int)
    if sizes[0] != n_in or sizes[-1] != n_out or sizes.min() < 1:
        raise ModelFormatError(
            f"{p}: layer sizes {sizes.tolist()} disagree with {n_in} inputs, {n_out} outputs"
        )
    rows.next(1, "the symmetric flag")
    x_min = rows.next(n_in, "the input minima")
    x_max = rows.next(n_in, "the input maxima")
    means = rows.next(n_in + 1, "the means (inputs, then output)")
    ranges = rows.next(n_in + 1, "the ranges (inputs, then output)")
    if np.any(ranges == 0):
        raise ModelFormatError(f"{p}: a normalisation range is zero")
    weights: list[NDArray[np.float64]] = []
    biases: list[NDArray[np.float64]] = []
    for k in range(n_layers):
        rows_in, rows_out = int(sizes[k]), int(sizes[k + 1])
        w = np.stack([rows.next(rows_in, f"layer {k} weight row {i}") for i in range(rows_out)])
        b = np.concatenate([rows.next(1, f"layer {k} bias {i}") for i in range(rows_out)])
        weights.append(w)
        biases.append(b)
    rows.check_end()

    in_names, out_names = acas_names(p.stem, n_in, n_out)
    net = ReluNetwork(weights, biases, input_names=in_names, output_names=out_names, name=p.stem)
    mu_x, r_x = means[:n_in], ranges[:n_in]
    if normalize_inputs:
        net = net.with_input_transform(scale=1.0 / r_x, shift=mu_x)
        domain = Box(x_min, x_max)
    else:
        ends = ((x_min - mu_x) / r_x, (x_max - mu_x) / r_x)
        domain = Box(np.minimum(*ends), np.maximum(*ends))
    if denormalize_outputs:
        net = net.with_output_transform(
            scale=np.full(n_out, ranges[n_in]), shift=np.full(n_out, means[n_in])
        )
    return net.replace(domain=domain)
