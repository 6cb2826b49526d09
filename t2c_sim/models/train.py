"""Small deterministic CPU training loop and accuracy helper for the example models."""

from __future__ import annotations

import logging

import torch
from torch import nn

__all__ = ["train", "accuracy", "predict"]

log = logging.getLogger(__name__)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 20,
          lr: float = 1e-2, batch: int = 64, seed: int = 0, weight_decay: float = 0.0,
          ) -> nn.Module:
    """Adam on cross-entropy, shuffling with ``torch.Generator().manual_seed(seed)``.

    Deterministic for a fixed seed on CPU (single-threaded math order aside).
    """
    from t2c_sim.train import fit

    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    return fit(model, x, y, opt, epochs=epochs, batch=batch, seed=seed, label="float")


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """Top-1 class indices in eval mode."""
    was = model.training
    model.eval()
    out = torch.cat([model(x[i:i + batch]).argmax(-1) for i in range(0, len(x), batch)])
    model.train(was)
    return out


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in percent."""
    return 100.0 * float((predict(model, x) == y).float().mean())
