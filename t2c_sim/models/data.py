"""Datasets for the models: sklearn ``load_digits`` (8x8 images, 10 classes) and its 28x28
form, a user's ``.npz`` (``x`` and optional ``y``), or synthetic inputs.

- ``digits``: ``[N, 1, 8, 8]``, pixels (0..16) scaled to ``[0, 1]``;
- ``digits_tokens``: 8 tokens of 8 features ``[N, 8, 8]`` (one token per image row);
- ``digits28``: the digits at MNIST's geometry ``[N, 1, 28, 28]``. MNIST digits are size-normalized
  to 20x20 and centred in a 28x28 frame; here each 8x8 digit is resized bilinearly to 20x20 and
  padded by 4 pixels on every side, so MNIST-shaped models (the QSPARSE tutorial net, LeNet-5
  with ``padding=2``) train on real digits without a download.

Deterministic split (:func:`split`): a seeded permutation puts ``test_frac`` of the samples in
the test set and the first ``calib`` training samples aside for calibration. Synthetic inputs
(:func:`synthetic`) are ``N(0, 1)`` per element, seeded, without labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from t2c_sim.errors import ConfigError

__all__ = ["Split", "load_dataset", "split", "synthetic", "DATASETS"]

DATASETS = ("digits", "digits_tokens", "digits28")


@dataclass(frozen=True)
class Split:
    """Train / calibration / test tensors (float inputs, int64 labels or ``None`` without labels)."""

    x_train: torch.Tensor
    y_train: torch.Tensor | None
    x_calib: torch.Tensor
    y_calib: torch.Tensor | None
    x_test: torch.Tensor
    y_test: torch.Tensor | None

    @property
    def labelled(self) -> bool:
        return self.y_test is not None


def split(x: torch.Tensor, y: torch.Tensor | None, seed: int = 0, test_frac: float = 0.2,
          calib: int = 256) -> Split:
    """Seeded permutation; ``round(N * test_frac)`` test samples (at least 1), the rest train;
    the first ``calib`` training samples also calibrate."""
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(x)))
    x = x[perm]
    y = None if y is None else y[perm]
    n_test = min(len(x) - 1, max(1, int(round(len(x) * test_frac))))
    xt, xtr = x[:n_test], x[n_test:]
    yt, ytr = (None, None) if y is None else (y[:n_test], y[n_test:])
    return Split(xtr, ytr, xtr[:calib], None if ytr is None else ytr[:calib], xt, yt)


def load_dataset(name: str = "digits", seed: int = 0, test_frac: float = 0.2,
                 calib: int = 256) -> Split:
    """Split a built-in dataset (``DATASETS``, module docstring) deterministically."""
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r} (expected one of {', '.join(DATASETS)})",
                          key="dataset")
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target, dtype=torch.int64)
    if name == "digits":
        x = x.unsqueeze(1)
    elif name == "digits28":
        x = F.interpolate(x.unsqueeze(1), size=(20, 20), mode="bilinear", align_corners=False)
        x = F.pad(x.clamp(0.0, 1.0), (4, 4, 4, 4))
    return split(x, y, seed, test_frac, calib)


def synthetic(shape: tuple[int, ...], samples: int, test: int, seed: int = 0,
              calib: int = 256) -> Split:
    """``samples`` inputs of ``shape``, ``N(0, 1)`` (seeded); the last ``test`` are the test set,
    the others train and calibrate. No labels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((samples, *shape), generator=g)
    xtr, xt = x[:samples - test], x[samples - test:]
    return Split(xtr, None, xtr[:calib], None, xt, None)
