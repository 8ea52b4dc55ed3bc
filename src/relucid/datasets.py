"""Built-in data sets (offline, from scikit-learn) and the paper's WBC network.

The minimal-NAP and geometric-explanation papers use the Wisconsin breast cancer data (WBC:
569 samples, 30 features, label 0 malignant / 1 benign) with a 4 x 32 ReLU network. Our split
is stratified, 80 % train / 20 % test, ``random_state`` fixed; features are standardised for
training and the standardisation is folded into the first layer, so the returned network
reads raw features and explanations speak in the data's own units.
"""

from __future__ import annotations

from dataclasses import dataclass

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
