"""Seeded training of small ReLU classifiers (for the demo and the paper's benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from relucid.io.torch_io import from_sequential
from relucid.network import ReluNetwork


@dataclass(frozen=True)
class TrainConfig:
    """Full-batch Adam on cross-entropy; ``random_state`` fixes initialisation and order."""

    hidden: tuple[int, ...] = (32, 32, 32, 32)
    epochs: int = 300
    learning_rate: float = 1e-2
    weight_decay: float = 1e-4
    random_state: int = 0


def train_relu_classifier(X: ArrayLike, y: ArrayLike, config: TrainConfig) -> ReluNetwork:
    """Train ``Linear-ReLU-...-Linear`` on ``(X, y)`` deterministically (CPU, float32)."""
    import torch

    Xa = np.asarray(X, dtype=np.float32)
    ya = np.asarray(y, dtype=np.int64)
    n_classes = int(ya.max()) + 1
    gen = torch.Generator().manual_seed(config.random_state)
    sizes = [Xa.shape[1], *config.hidden, n_classes]
    layers: list[torch.nn.Module] = []
    for k in range(len(sizes) - 1):
        lin = torch.nn.Linear(sizes[k], sizes[k + 1])
        bound = 1.0 / np.sqrt(sizes[k])
        with torch.no_grad():
            lin.weight.uniform_(-bound, bound, generator=gen)
            lin.bias.uniform_(-bound, bound, generator=gen)
        layers.append(lin)
        if k < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    xt = torch.from_numpy(Xa)
    yt = torch.from_numpy(ya)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(config.epochs):
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
    model.eval()
    return from_sequential(model)
