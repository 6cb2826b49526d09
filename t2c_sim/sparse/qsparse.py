"""QSPARSE-style wrappers: ``prune(...)`` and ``quantize(...)`` on a module or on activations.

- ``prune(module, ...)`` / ``quantize(module, ...)`` attach to the module's weight and return
  the same module.
- ``prune(None, ...)`` / ``quantize(None, ...)`` return a new module that acts on the
  activations flowing through it (put it in an ``nn.Sequential``).

Step counting (as QSPARSE): ``step`` = number of *training* forwards of the module completed
before the current one; evaluation forwards do not count. A mask update scheduled at step ``t``
(:class:`~t2c_sim.sparse.schedules.PruneSchedule`: ``start + interval * k``, ``k = 1..repetition``,
cubic ramp) is computed at the start of forward ``t`` and used by it.

Weight masks: modules that already own a ``mask`` buffer (the :mod:`t2c_sim.quant.modules`
wrappers, which multiply it into the weight in every path) just get that buffer updated. For a
plain ``nn.Linear``/``nn.Conv2d`` a ``mask`` buffer is registered and the weight is
re-parametrized as ``weight = original * mask`` (``torch.nn.utils.parametrize``), so the mask
holds in every forward and after every optimizer step. Power-of-two weight quantization of a
plain module is a parametrization too (``weight = pot(original * mask)``); on a wrapper with a
``wq`` attribute it replaces ``wq``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from t2c_sim.config import SparsitySpec
from t2c_sim.errors import ConfigError
from t2c_sim.quant.pot import PowerOfTwoQuantizer
from t2c_sim.sparse.pruners import MagnitudePruner, NMPruner, magnitude_mask
from t2c_sim.sparse.schedules import PruneSchedule

__all__ = ["prune", "quantize", "ActivationPrune", "PruneController", "ensure_mask",
           "raw_weight", "parse_nm"]

log = logging.getLogger(__name__)


class _MaskParam(nn.Module):
    """Parametrization ``weight = original * mask`` (``mask`` lives on the owning module)."""

    def __init__(self, owner: nn.Module) -> None:
        super().__init__()
        # keep a plain reference, not a submodule (the owner holds the parametrization)
        object.__setattr__(self, "_owner", owner)

    def forward(self, w: Tensor) -> Tensor:
        return w * self._owner.mask.to(w.dtype)


class _POTParam(nn.Module):
    """Parametrization ``weight = pot(w)`` (pass-through until the quantizer has chosen ``d``)."""

    def __init__(self, q: PowerOfTwoQuantizer) -> None:
        super().__init__()
        self.q = q

    def forward(self, w: Tensor) -> Tensor:
        return self.q.apply_quant(w)


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


class PruneController(nn.Module):
    """Counts a module's training forwards and updates its ``mask`` on schedule."""

    def __init__(self, pruner: NMPruner | MagnitudePruner) -> None:
        super().__init__()
        self.pruner = pruner
        self.register_buffer("n_updates", torch.tensor(0, dtype=torch.int64))

    def pre_forward(self, module: nn.Module, _args: Any) -> None:
        if not module.training:
            return
        step = int(self.n_updates)
        w = raw_weight(module)
        old = module.mask
        new = self.pruner.mask_at(w, step, old.bool())
        if new is not None:
            with torch.no_grad():
                old.copy_(new.to(old.dtype))
                if isinstance(self.pruner, MagnitudePruner) and self.pruner.regrow is not None:
                    w.mul_(old.to(w.dtype))          # regrown weights start at 0
            log.debug("pruned %s at step %d: density %.3f", type(module).__name__, step,
                      float(old.float().mean()))
        self.n_updates += 1


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
    module = module_or_none
    if hasattr(module, "prune_ctl"):
        raise ConfigError(f"{type(module).__name__} is already pruned", key="module")
    pruner: NMPruner | MagnitudePruner
    if nmt is not None:
        pruner = NMPruner(nmt[0], nmt[1], schedule, nm_mode)
    else:
        pruner = MagnitudePruner(sparsity, schedule)
    ensure_mask(module)
    module.prune_ctl = PruneController(pruner)
    module.register_forward_pre_hook(module.prune_ctl.pre_forward)
    return module


def quantize(module_or_none: nn.Module | None = None, bits: int = 8, timeout: int = 1000,
             channelwise: bool = False, decimal_range: tuple[int, int] = (0, 20),
             window_size: int = 1) -> nn.Module:
    """Power-of-two quantization (:class:`PowerOfTwoQuantizer`) of a weight or of activations.

    With ``None``: returns the quantizer itself (per tensor; pass-through for the first
    ``timeout`` training forwards). With a module that has a ``wq`` attribute: installs the
    quantizer there (per output channel if ``channelwise``). With a plain module: the weight is
    re-parametrized as ``pot(weight)`` and a forward pre-hook counts training forwards.
    """
    gran = "channel" if channelwise else "tensor"
    if module_or_none is None:
        return PowerOfTwoQuantizer(nbit=bits, timeout=timeout, decimal_range=decimal_range,
                                   window_size=window_size)
    if not isinstance(module_or_none, nn.Module):
        raise ConfigError(f"quantize() takes an nn.Module or None, got "
                          f"{type(module_or_none).__name__}", key="module")
    module = module_or_none
    q = PowerOfTwoQuantizer(nbit=bits, granularity=gran, ch_axis=0, timeout=timeout,
                            decimal_range=decimal_range, window_size=window_size)
    if hasattr(module, "wq"):
        module.wq = q
        return module
    w = raw_weight(module)
    if w.dim() not in (2, 4):
        raise ConfigError(f"{type(module).__name__}: cannot quantize a weight of shape "
                          f"{tuple(w.shape)}", key="module")
    mask = getattr(module, "mask", None)
    parametrize.register_parametrization(module, "weight", _POTParam(q), unsafe=True)

    def _count(mod: nn.Module, _args: Any) -> None:
        src = raw_weight(mod)
        q.step(src.detach() if mask is None else src.detach() * mod.mask)

    module.register_forward_pre_hook(_count)
    return module
