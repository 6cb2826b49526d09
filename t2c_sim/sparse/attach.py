"""Attach a pruner to a module: the one mask lifecycle every weight pruner shares.

A pruner (:class:`~t2c_sim.sparse.pruners.NMPruner`, :class:`~t2c_sim.sparse.pruners.
MagnitudePruner`, :class:`~t2c_sim.sparse.n2d2.N2D2Pruner`) only decides masks:
``mask_at(w, step, old_mask)`` returns the new keep-mask or ``None``. The lifecycle is here:

1. :func:`ensure_mask` gives the module a ``mask`` buffer. The :mod:`t2c_sim.quant.modules`
   wrappers own one already (they multiply it into the weight in every path); a plain
   ``nn.Linear``/``nn.Conv2d`` gets one and its weight is re-parametrized as
   ``weight = original * mask`` (``torch.nn.utils.parametrize``), so the mask holds in every
   forward and after every optimizer step.
2. A :class:`PruneController` (a submodule, so its step counter is in the state dict) runs as a
   forward pre-hook: on each *training* forward it asks the pruner for the mask of step
   ``n_updates`` (the number of training forwards completed before this one; evaluation
   forwards do not count), copies it into ``mask``, zeroes regrown weights when the pruner
   regrows (they start at 0), and counts the step.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from t2c_sim.errors import ConfigError

__all__ = ["MaskPolicy", "PruneController", "attach_pruner", "ensure_mask", "raw_weight",
           "CONTROLLER_ATTRS"]

log = logging.getLogger(__name__)

#: Attribute names a controller may be attached under (QSPARSE-style ``prune``, N2D2).
CONTROLLER_ATTRS = ("prune_ctl", "n2d2_ctl")


class MaskPolicy(Protocol):
    """What a controller needs from a pruner."""

    regrows: bool

    def mask_at(self, w: Tensor, step: int, old_mask: Tensor) -> Tensor | None: ...


class _MaskParam(nn.Module):
    """Parametrization ``weight = original * mask`` (``mask`` lives on the owning module)."""

    def __init__(self, owner: nn.Module) -> None:
        super().__init__()
        # keep a plain reference, not a submodule (the owner holds the parametrization)
        object.__setattr__(self, "_owner", owner)

    def forward(self, w: Tensor) -> Tensor:
        return w * self._owner.mask.to(w.dtype)


def raw_weight(module: nn.Module) -> Tensor:
    """The trainable weight tensor (the parametrization's ``original`` if there is one)."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    w = getattr(module, "weight", None)
    if not isinstance(w, Tensor):
        raise ConfigError(f"{type(module).__name__} has no weight to prune or quantize",
                          key="module")
    return w


def ensure_mask(module: nn.Module) -> Tensor:
    """Return the module's ``mask`` buffer, creating it (and ``weight = original * mask``)."""
    mask = getattr(module, "mask", None)
    if isinstance(mask, Tensor):
        return mask
    w = raw_weight(module)
    if w.dim() not in (2, 4):
        raise ConfigError(f"{type(module).__name__}: weight shape {tuple(w.shape)} is neither "
                          f"linear [C_out, C_in] nor conv [C_out, C_in, KH, KW]", key="module")
    module.register_buffer("mask", torch.ones_like(w, dtype=torch.float32))
    parametrize.register_parametrization(module, "weight", _MaskParam(module), unsafe=True)
    return module.mask


class PruneController(nn.Module):
    """Counts a module's training forwards and updates its ``mask`` on the pruner's schedule."""

    def __init__(self, pruner: MaskPolicy) -> None:
        super().__init__()
        self.pruner = pruner
        self.register_buffer("n_updates", torch.tensor(0, dtype=torch.int64))

    def pre_forward(self, module: nn.Module, _args: Any) -> None:
        if not module.training:
            return
        step = int(self.n_updates)
        w = raw_weight(module)
        mask = module.mask
        new = self.pruner.mask_at(w, step, mask.bool())
        if new is not None:
            with torch.no_grad():
                mask.copy_(new.to(mask.dtype))
                if self.pruner.regrows:
                    w.mul_(mask.to(w.dtype))          # regrown weights start at 0
            log.debug("%s on %s at step %d: density %.3f", type(self.pruner).__name__,
                      type(module).__name__, step, float(mask.float().mean()))
        self.n_updates += 1


def attach_pruner(module: nn.Module, pruner: MaskPolicy, attr: str = "prune_ctl") -> nn.Module:
    """Drive ``module.mask`` with ``pruner`` on every training forward; returns ``module``.

    The controller is the submodule ``module.<attr>`` (one of :data:`CONTROLLER_ATTRS`); a
    module takes one pruner only.
    """
    if attr not in CONTROLLER_ATTRS:
        raise ConfigError(f"controller attribute must be one of {CONTROLLER_ATTRS}, got {attr!r}",
                          key="attr")
    if not isinstance(module, nn.Module):
        raise ConfigError(f"a pruner attaches to an nn.Module, got {type(module).__name__}",
                          key="module")
    if any(hasattr(module, a) for a in CONTROLLER_ATTRS):
        raise ConfigError(f"{type(module).__name__} already has a pruner", key="module")
    ensure_mask(module)
    ctl = PruneController(pruner)
    setattr(module, attr, ctl)
    module.register_forward_pre_hook(ctl.pre_forward)
    return module
