"""Post-training calibration of every quantizer in a model (one pass per batch, then frozen).

Calibration is layer-wise in one pass per batch: with every quantizer observing, the model
runs forward in eval mode, so each quantizer sees its input AFTER all upstream layers are
already fake-quantized (the ranges account for upstream quantization error). Quantizers that
choose parameters only in training forwards (power-of-two ``pot``) are calibrated by a forward
pre-hook calling their ``calibrate_now(x)`` on the same input. Then every quantizer is frozen
(``observing = False``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch
from torch import nn

from t2c_sim.quant.modules import quantizers, set_observing

__all__ = ["calibrate"]

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
