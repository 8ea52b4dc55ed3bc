"""The data NAPs are mined from and measured on: WBC, MNIST, or a file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.errors import InputError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class NapData:
    """A train split (to mine NAPs from) and a test split (to measure coverage on)."""

    X_train: FloatArray
    y_train: IntArray
    X_test: FloatArray
    y_test: IntArray
    description: str


def nap_data(name: str, *, random_state: int = 0) -> NapData:
    """``"wbc"`` (scikit-learn's breast cancer data, stratified 80/20 split, raw features),
    ``"mnist"`` (the shared MNIST test set split 7,000 / 3,000 with a seeded permutation,
    since the training set is not available), or a ``.npz`` file with ``x``, ``y`` and
    optionally ``x_test``, ``y_test``."""
    if name == "wbc":
        from relucid.datasets import load_wbc

        s = load_wbc(random_state=random_state)
        return NapData(
            s.X_train,
            s.y_train,
            s.X_test,
            s.y_test,
            f"WBC, stratified 80/20 split (random_state={random_state})",
        )
    if name == "mnist":
        from relucid.datasets import load_mnist_test

        X, y = load_mnist_test()
        perm = np.random.default_rng(random_state).permutation(len(X))
        tr, te = perm[:7000], perm[7000:]
        return NapData(
            X[tr],
            y[tr],
            X[te],
            y[te],
            f"MNIST test set split 7,000 / 3,000 (seed {random_state}; no training set here)",
        )
    path = Path(name)
    if path.suffix != ".npz" or not path.is_file():
        raise InputError(f"--data takes wbc, mnist or an existing .npz file, got {name!r}")
    with np.load(path, allow_pickle=False) as f:
        if "x" not in f or "y" not in f:
            raise InputError(f"{path} needs arrays 'x' and 'y' (and optionally x_test, y_test)")
        X = np.asarray(f["x"], np.float64)
        y = np.asarray(f["y"]).astype(np.int64)
        Xte = np.asarray(f["x_test"], np.float64) if "x_test" in f else X[:0]
        yte = np.asarray(f["y_test"]).astype(np.int64) if "y_test" in f else y[:0]
    return NapData(X, y, Xte, yte, str(path))


def shifted_images(X: ArrayLike, side: int, pixels: int = 1) -> FloatArray:
    """Each row of ``X`` (a ``side`` x ``side`` image, flattened row by row) moved by
    ``pixels`` up, down, left and right, the edge it uncovers filled with 0: four images per
    row, all the up-shifts first, then down, left and right.

    Nearby inputs that the mining data lacks: on mnist-256x4 a NAP mined from 700 images of
    a class misses some of its unseen test images at neurons that no mining image disagrees
    on, and most such neurons are ones a shifted mining image disagrees on too.
    """
    xa = np.atleast_2d(np.asarray(X, dtype=np.float64))
    if xa.shape[1] != side * side:
        raise InputError(f"rows of {xa.shape[1]} values are no {side} x {side} images")
    if not 0 < pixels < side:
        raise InputError(f"pixels must lie in 1..{side - 1}, got {pixels}")
    imgs = xa.reshape(-1, side, side)
    out = np.zeros((4, *imgs.shape))
    out[0, :, :-pixels, :] = imgs[:, pixels:, :]  # up
    out[1, :, pixels:, :] = imgs[:, :-pixels, :]  # down
    out[2, :, :, :-pixels] = imgs[:, :, pixels:]  # left
    out[3, :, :, pixels:] = imgs[:, :, :-pixels]  # right
    return out.reshape(-1, side * side)
