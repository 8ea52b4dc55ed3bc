"""Built-in data sets (offline, from scikit-learn) and the paper's WBC network.

The minimal-NAP and geometric-explanation papers use the Wisconsin breast cancer data (WBC:
569 samples, 30 features, label 0 malignant / 1 benign) with a 4 x 32 ReLU network. Our split
is stratified, 80 % train / 20 % test, ``random_state`` fixed; features are standardised for
training and the standardisation is folded into the first layer, so the returned network
reads raw features and explanations speak in the data's own units.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from relucid.domain import Box
from relucid.network import ReluNetwork
from relucid.training import TrainConfig, train_relu_classifier

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Split:
    """A train/test split with names."""

    X_train: FloatArray
    y_train: IntArray
    X_test: FloatArray
    y_test: IntArray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]

    def domain(self) -> Box:
        """The box spanned by all samples (train and test) of the split."""
        X = np.vstack([self.X_train, self.X_test])
        return Box(X.min(axis=0), X.max(axis=0))


def load_wbc(random_state: int = 0, test_size: float = 0.2) -> Split:
    """Wisconsin breast cancer data, stratified split (scikit-learn's ``load_breast_cancer``)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    X = np.asarray(data.data, dtype=np.float64)
    y = np.asarray(data.target, dtype=np.int64)
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=test_size, random_state=random_state, stratify=y
    )
    return Split(
        Xtr,
        ytr,
        Xte,
        yte,
        tuple(str(s) for s in data.feature_names),
        tuple(str(s) for s in data.target_names),
    )


def wbc_network(
    random_state: int = 0, config: TrainConfig | None = None
) -> tuple[ReluNetwork, Split]:
    """Train the paper's WBC network (30-32-32-32-32-2) with a fixed seed.

    Returns the network (reading raw features, domain = the data's range) and the split.
    """
    split = load_wbc(random_state=random_state)
    cfg = config or TrainConfig(hidden=(32, 32, 32, 32), epochs=300, random_state=random_state)
    mean = split.X_train.mean(axis=0)
    std = split.X_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    net = train_relu_classifier((split.X_train - mean) / std, split.y_train, cfg)
    net = net.with_input_transform(scale=1.0 / std, shift=mean).replace(
        input_names=split.feature_names,
        output_names=split.class_names,
        domain=split.domain(),
        name="wbc-4x32",
    )
    return net, split


def load_mnist_test(data: Path | None = None) -> tuple[FloatArray, IntArray]:
    """The official MNIST test set from the shared data folder: pixels in [0, 1], labels.

    Reads ``mnist/t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` (IDX format)
    under ``data`` (default :func:`relucid.io.data_dir`). Returns ``(X, y)`` with ``X`` of
    shape (10000, 784) float64 and ``y`` of shape (10000,).
    """
    import gzip

    from relucid.io import data_dir

    root = (data or data_dir()) / "mnist"
    img_path = root / "t10k-images-idx3-ubyte.gz"
    lab_path = root / "t10k-labels-idx1-ubyte.gz"
    for p in (img_path, lab_path):
        if not p.exists():
            raise FileNotFoundError(f"MNIST file {p} not found (set RELUCID_DATA)")
    with gzip.open(img_path, "rb") as f:
        raw = f.read()
    magic, count, rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in range(0, 16, 4))
    if magic != 2051:
        raise ValueError(f"{img_path}: not an IDX image file (magic {magic})")
    X = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, rows * cols) / 255.0
    with gzip.open(lab_path, "rb") as f:
        raw = f.read()
    if int.from_bytes(raw[:4], "big") != 2049:
        raise ValueError(f"{lab_path}: not an IDX label file")
    y = np.frombuffer(raw, dtype=np.uint8, offset=8).astype(np.int64)
    return X.astype(np.float64), y
