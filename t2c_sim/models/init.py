"""Non-trivial batch-norm statistics for models that are not trained (random weights).

A freshly built network has BN running statistics ``mean = 0``, ``var = 1`` and
``gamma = 1``, ``beta = 0``: folding them changes nothing, so a flow run on it would not exercise
BN folding, and deep random networks drift out of range. :func:`set_bn_statistics` gives every
BN layer a random affine transform (``gamma ~ U(0.5, 1.5)``, ``beta ~ N(0, 0.2^2)``, seeded) and
then the running statistics of the given inputs as they flow through the network (one pass in
training mode with a cumulative average, dropout off): the statistics a trained network has on
its data, so every layer's output stays normalized.
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["set_bn_statistics"]

log = logging.getLogger(__name__)


def set_bn_statistics(model: nn.Module, x: torch.Tensor, seed: int = 0, batch: int = 32) -> int:
    """Random BN affine, then running mean/var of ``x`` (in place; the model ends in eval mode).

    Returns the number of batch-norm layers set.
    """
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    moms = [bn.momentum for bn in bns]
    with torch.no_grad():
        for bn in bns:
            if bn.affine:
                bn.weight.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
                bn.bias.copy_(torch.randn(bn.num_features, generator=g) * 0.2)
            bn.reset_running_stats()
            bn.momentum = None                          # cumulative average over the batches
        model.train()
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
        for i in range(0, len(x), batch):
            model(x[i:i + batch])
    for bn, mom in zip(bns, moms):
        bn.momentum = mom
    model.eval()
    log.info("set random BN affine and running statistics of %d inputs in %d layers", len(x),
             len(bns))
    return len(bns)
