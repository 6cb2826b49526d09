"""Datasets for the example models: sklearn ``load_digits`` (8x8 images, 10 classes).

Deterministic split: a seeded permutation puts ``test_frac`` of the 1797 samples in the test
set and ``calib`` of the training samples aside for calibration. Pixels (0..16) are scaled
to ``[0, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from t2c_sim.errors import ConfigError

__all__ = ["Split", "load_dataset", "DATASETS"]

DATASETS = ("digits", "digits_tokens")


@dataclass(frozen=True)
class Split:
    """Train / calibration / test tensors (float inputs, int64 labels)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_calib: torch.Tensor
    y_calib: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_dataset(name: str = "digits", seed: int = 0, test_frac: float = 0.2,
                 calib: int = 256) -> Split:
    """Split ``load_digits`` deterministically.

    ``"digits"`` gives images ``[N, 1, 8, 8]``; ``"digits_tokens"`` gives 8 tokens of 8 features
    ``[N, 8, 8]`` (one token per image row) for the transformer MLP block.
    """
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r} (expected one of {', '.join(DATASETS)})",
                          key="dataset")
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target, dtype=torch.int64)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    x, y = x[perm], y[perm]
    x = x.unsqueeze(1) if name == "digits" else x
    n_test = int(round(len(y) * test_frac))
    xt, yt, xtr, ytr = x[:n_test], y[:n_test], x[n_test:], y[n_test:]
    return Split(xtr, ytr, xtr[:calib], ytr[:calib], xt, yt)
