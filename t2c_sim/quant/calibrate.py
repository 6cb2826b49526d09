"""Post-training calibration, N:M pruning with masks and a small QAT loop (CPU, seconds).

Calibration (:func:`calibrate`) is layer-wise in one pass per batch: with every quantizer
observing, the model runs forward in eval mode, so each quantizer sees its input AFTER all
upstream layers are already fake-quantized (the ranges account for upstream quantization
error). Quantizers that choose parameters only in training forwards (power-of-two ``pot``)
are calibrated by a forward pre-hook calling their ``calibrate_now(x)`` on the same input.
Then every quantizer is frozen (``observing = False``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from t2c_sim.quant.layers import (
    QConv2d,
    QLinear,
    flatten_inputs,
    nm_mask_torch,
    quantizers,
    set_observing,
)

__all__ = ["calibrate", "qat", "nm_masks", "apply_masks", "finetune_masked"]

log = logging.getLogger(__name__)


def calibrate(model: nn.Module, loader: Iterable[torch.Tensor] | torch.Tensor) -> nn.Module:
    """Observe ranges on ``loader`` (batches of inputs, or one tensor), then freeze (in place)."""
    batches = [loader] if isinstance(loader, torch.Tensor) else list(loader)
    was = model.training
    model.eval()
    hooks = []
    for q in quantizers(model).values():
        if callable(getattr(q, "calibrate_now", None)):
            def pre(mod: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
                mod.calibrate_now(args[0])
            hooks.append(q.register_forward_pre_hook(pre))
    set_observing(model, True)
    try:
        with torch.no_grad():
            for xb in batches:
                model(xb)
    finally:
        for h in hooks:
            h.remove()
        set_observing(model, False)
        model.train(was)
    log.info("calibrated %d quantizers on %d batch(es)", len(quantizers(model)), len(batches))
    return model


def qat(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 2,
        lr: float = 1e-3, batch: int = 64, seed: int = 0) -> nn.Module:
    """Quantization-aware fine-tuning (Adam, cross-entropy) with frozen observers, in place.

    Gradients reach the weights through the straight-through fake-quant (and learnable scales
    such as LSQ's); pruning masks stay applied because every forward multiplies by ``mask``.
    """
    from t2c_sim.models.train import train

    set_observing(model, False)
    train(model, x, y, epochs=epochs, lr=lr, batch=batch, seed=seed)
    model.eval()
    return model


def nm_masks(model: nn.Module, n: int, m: int, example_input: torch.Tensor,
             skip: Iterable[str] = ()) -> dict[str, torch.Tensor]:
    """N:M keep-masks (torch layout) for every Conv2d/Linear not in ``skip``, by module name.

    Groups follow the integer reduction order, including the ``(h, w, c)`` column order of a
    linear after a flatten (:func:`~t2c_sim.quant.layers.nm_mask_torch`).
    """
    skip = set(skip)
    chw = flatten_inputs(model, example_input)
    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)) and name not in skip:
            out[name] = nm_mask_torch(mod.weight, n, m, chw.get(name))
    return out


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor], n: int, m: int) -> None:
    """Zero the masked weights; on Q layers also set the ``mask`` buffer and ``nm = (n, m)``."""
    mods = dict(model.named_modules())
    with torch.no_grad():
        for name, mask in masks.items():
            mod = mods[name]
            mod.weight.mul_(mask)
            if isinstance(mod, (QConv2d, QLinear)):
                mod.mask.copy_(mask)
                mod.nm = (n, m)


def finetune_masked(model: nn.Module, masks: Mapping[str, torch.Tensor], x: torch.Tensor,
                    y: torch.Tensor, *, epochs: int, lr: float = 3e-3, batch: int = 64,
                    seed: int = 0) -> nn.Module:
    """Float fine-tuning that keeps pruned weights at 0 (re-applies masks after every step)."""
    mods = dict(model.named_modules())
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
            with torch.no_grad():
                for name, mask in masks.items():
                    mods[name].weight.mul_(mask)
    model.eval()
    return model
