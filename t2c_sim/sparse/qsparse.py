"""QSPARSE-style ``prune(...)`` on a module or on activations.

- ``prune(module, ...)`` attaches a pruner to the module's weight and returns the same module
  (the mask lifecycle is :mod:`t2c_sim.sparse.attach`, shared with the N2D2 pruner).
- ``prune(None, ...)`` returns a new module that prunes the activations flowing through it (put
  it in an ``nn.Sequential``).

QSPARSE's power-of-two ``quantize(...)`` is a quantizer and lives with the quantizers
(:func:`t2c_sim.quant.pot.quantize`).

Step counting (as QSPARSE): ``step`` = number of *training* forwards of the module completed
before the current one; evaluation forwards do not count. A mask update scheduled at step ``t``
(:class:`~t2c_sim.sparse.schedules.PruneSchedule`: ``start + interval * k``, ``k = 1..repetition``,
cubic ramp) is computed at the start of forward ``t`` and used by it.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor, nn

from t2c_sim.config import SparsitySpec
from t2c_sim.errors import ConfigError
from t2c_sim.sparse.attach import attach_pruner
from t2c_sim.sparse.pruners import MagnitudePruner, NMPruner, magnitude_mask
from t2c_sim.sparse.schedules import PruneSchedule

__all__ = ["prune", "ActivationPrune", "parse_nm"]

log = logging.getLogger(__name__)


def parse_nm(nm: Any) -> tuple[int, int] | None:
    """``None``, ``"2:4"``, ``(2, 4)`` or a :class:`SparsitySpec` -> ``(n, m)`` or ``None``."""
    if nm is None:
        return None
    if isinstance(nm, SparsitySpec):
        return nm.n, nm.m
    if isinstance(nm, str):
        spec = SparsitySpec.parse(nm)
        return spec.n, spec.m
    try:
        n, m = nm
    except (TypeError, ValueError):
        raise ConfigError(f"N:M must be 'N:M' or (N, M), got {nm!r}", key="nm") from None
    spec = SparsitySpec(n, m)
    return spec.n, spec.m


class ActivationPrune(nn.Module):
    """Unstructured activation pruning (QSPARSE ``prune(None)``): ``y = x * mask``.

    ``mask`` has the shape of one sample (``x.shape[1:]``); at scheduled step ``t`` it keeps the
    largest ``mean_batch |x|`` entries, pruning the fraction ``sparsity * progress(t)``
    (:func:`~t2c_sim.sparse.pruners.magnitude_mask`); before the first update it is all ones.
    Evaluation forwards apply the mask without counting.
    """

    def __init__(self, sparsity: float, schedule: PruneSchedule) -> None:
        super().__init__()
        if not 0.0 <= float(sparsity) <= 1.0:
            raise ConfigError(f"sparsity must be in [0, 1], got {sparsity!r}", key="sparsity")
        self.sparsity, self.schedule = float(sparsity), schedule
        self.register_buffer("mask", torch.ones(0))
        self.register_buffer("n_updates", torch.tensor(0, dtype=torch.int64))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2:
            raise ConfigError(f"activation pruning needs [batch, ...], got {tuple(x.shape)}",
                              key="input")
        if self.mask.numel() == 0:
            self.mask = torch.ones(x.shape[1:], device=x.device)
        if self.training:
            step = int(self.n_updates)
            if self.schedule.is_update(step):
                sal = x.detach().abs().mean(dim=0)
                keep = magnitude_mask(sal, self.sparsity * self.schedule.progress(step))
                self.mask = keep.to(x.dtype) * self.mask
            self.n_updates += 1
        return x * self.mask.to(x.dtype)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        if prefix + "mask" in state_dict:
            self.mask = torch.empty_like(state_dict[prefix + "mask"])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def prune(module_or_none: nn.Module | None = None, sparsity: float = 0.5, start: int = 1000,
          interval: int = 1000, repetition: int = 4, nm: Any = None,
          nm_mode: str = "step_n") -> nn.Module:
    """Prune a module's weight on a schedule, or return an activation-pruning module.

    Args:
        module_or_none: the module to prune (returned, with a ``prune_ctl`` submodule and a
            forward pre-hook), or ``None`` for :class:`ActivationPrune`.
        sparsity: target fraction of zeros (element-wise pruning; ignored with ``nm``).
        start, interval, repetition: :class:`PruneSchedule` (updates at
            ``start + interval * k``, cubic ramp, target at ``start + interval * repetition``).
        nm: ``"2:4"``/``(2, 4)``: N:M pruning of the weight instead (weights only).
        nm_mode: gradual N:M mode, ``"step_n"`` or ``"groups"`` (:class:`NMPruner`).
    """
    schedule = PruneSchedule(int(start), int(interval), int(repetition))
    nmt = parse_nm(nm)
    if module_or_none is None:
        if nmt is not None:
            raise ConfigError("N:M pruning applies to weights; pass the module", key="nm")
        return ActivationPrune(sparsity, schedule)
    if not isinstance(module_or_none, nn.Module):
        raise ConfigError(f"prune() takes an nn.Module or None, got "
                          f"{type(module_or_none).__name__}", key="module")
    pruner: NMPruner | MagnitudePruner
    if nmt is not None:
        pruner = NMPruner(nmt[0], nmt[1], schedule, nm_mode)
    else:
        pruner = MagnitudePruner(sparsity, schedule)
    return attach_pruner(module_or_none, pruner, "prune_ctl")
