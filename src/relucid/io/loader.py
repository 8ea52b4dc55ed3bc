"""One entry point for model files, and where the shared data lives."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from relucid.errors import ModelFormatError
from relucid.io.nnet import load_nnet
from relucid.io.onnx_io import load_onnx
from relucid.io.torch_io import load_torch
from relucid.network import ReluNetwork

_LOADERS = {".onnx": load_onnx, ".nnet": load_nnet, ".pt": load_torch, ".pth": load_torch}


def load_network(path: str | Path, **kwargs: Any) -> ReluNetwork:
    """Load a model file, choosing the reader by its suffix.

    ``.onnx`` -> :func:`~relucid.io.load_onnx`, ``.nnet`` -> :func:`~relucid.io.load_nnet`,
    ``.pt`` / ``.pth`` -> :func:`~relucid.io.load_torch`; ``kwargs`` go to that reader.

    Raises
    ------
    ModelFormatError
        If the file does not exist or its suffix is none of the above.
    """
    p = Path(path)
    loader = _LOADERS.get(p.suffix.lower())
    if loader is None:
        raise ModelFormatError(
            f"{p}: unknown model suffix {p.suffix!r}; relucid reads {', '.join(_LOADERS)}"
        )
    if not p.is_file():
        raise ModelFormatError(f"no such model file: {p}")
    return loader(p, **kwargs)  # type: ignore[operator]


def data_dir() -> Path:
    """The shared data folder (networks, properties, data sets).

    ``$RELUCID_DATA`` if set; otherwise ``<repository root>/../shared/data`` found from this
    source file, then ``<current directory>/../shared/data``. The path is returned even if it
    does not exist: callers check ``.exists()``.
    """
    env = os.environ.get("RELUCID_DATA")
    if env:
        return Path(env).expanduser()
    candidates = [
        (Path(__file__).resolve().parents[3] / ".." / "shared" / "data").resolve(),
        (Path.cwd() / ".." / "shared" / "data").resolve(),
    ]
    return next((c for c in candidates if c.exists()), candidates[0])
