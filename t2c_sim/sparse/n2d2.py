"""N2D2-style weight pruning (``PruneCell``): modes Identity | Static | Gradual, fillers
Random | IterNonStruct.

Our reading of N2D2's documentation (``n2d2.quantizer.PruneCell`` and the INI ``QWeight=Prune``
options), with the choices the documentation leaves open:

- ``threshold`` is the target fraction of pruned weights (0.2 = 20 %).
- ``Identity``: the mask stays all ones.
- ``Static``: at initialization (the first training forward) the weights are pruned to
  ``threshold``; the mask then stays fixed.
- ``Gradual``: at initialization the weights are pruned to ``start``; at every update the
  current threshold grows by ``gamma``, capped at ``threshold``, and the mask is refilled. An
  update happens every ``stepsize`` training steps when ``stepsize > 0`` (steps, not epochs, as
  N2D2 warns), otherwise when :meth:`N2D2Pruner.epoch_end` is called (N2D2's default: each
  epoch). Masks are monotone: a pruned weight is never revived.
- ``Random`` filler: prunes uniformly random weights among the not-yet-pruned ones until exactly
  ``round(t * numel)`` weights are pruned (N2D2 does not say whether the count is exact; ours
  is, and reproducible with ``seed``).
- ``IterNonStruct`` filler: with ``k = 1, 2, ...`` prunes every weight with
  ``|w| < k * delta`` until at least ``round(t * numel)`` weights are pruned ("all weights below
  ``delta`` are pruned; if this is not enough, all below ``2 delta``, and so on"). Because
  whole magnitude bands are pruned at once the result can exceed the target (by design).

Step counting is the package's: training forwards only (see :mod:`t2c_sim.sparse.schedules`).
"""

from __future__ import annotations

import logging
import math

import torch
from torch import Tensor, nn

from t2c_sim.errors import ConfigError
from t2c_sim.sparse.attach import attach_pruner

__all__ = ["N2D2Pruner", "fill_random", "fill_iter_nonstruct", "attach_n2d2", "MODES",
           "FILLERS"]

log = logging.getLogger(__name__)

MODES = ("Identity", "Static", "Gradual")
FILLERS = ("Random", "IterNonStruct")


def _target(numel: int, fraction: float) -> int:
    return int(round(fraction * numel))


def fill_random(mask: Tensor, fraction: float, generator: torch.Generator | None = None,
                ) -> Tensor:
    """Prune random kept entries of ``mask`` until ``round(fraction * numel)`` are pruned."""
    keep = mask.detach().bool().flatten().clone()
    need = _target(keep.numel(), fraction) - int((~keep).sum())
    if need > 0:
        alive = keep.nonzero().flatten()
        pick = alive[torch.randperm(alive.numel(), generator=generator)[:need]]
        keep[pick] = False
    return keep.reshape(mask.shape)


def fill_iter_nonstruct(w: Tensor, mask: Tensor, fraction: float, delta: float) -> Tensor:
    """Prune ``|w| < k * delta`` for the smallest ``k = 1, 2, ...`` that reaches the target.

    Already-pruned entries count as pruned; ``w`` is the raw weight.
    """
    keep = mask.detach().bool().flatten().clone()
    a = w.detach().abs().flatten().float()
    target = _target(keep.numel(), fraction)
    if int((~keep).sum()) >= target:
        return keep.reshape(mask.shape)
    k_max = int(math.floor(float(a.max()) / delta)) + 1
    for k in range(1, k_max + 1):
        cand = keep & (a < k * delta)
        if int((~keep).sum()) + int(cand.sum()) >= target:
            keep &= ~cand
            break
    return keep.reshape(mask.shape)


class N2D2Pruner:
    """Mask policy of N2D2's ``PruneCell`` (see the module docstring for every rule).

    Args:
        prune_mode: ``"Identity"``, ``"Static"`` or ``"Gradual"``.
        prune_filler: ``"Random"`` or ``"IterNonStruct"``.
        threshold: target pruned fraction in [0, 1] (N2D2 default 0.2).
        delta: IterNonStruct band width (> 0, default 0.001).
        start: Gradual initial fraction in [0, threshold] (default 0.1).
        gamma: Gradual increment per update (> 0, default 0.05).
        stepsize: Gradual update period in training steps; 0 = at ``epoch_end()``.
        seed: Random filler seed.
    """

    def __init__(self, prune_mode: str = "Identity", prune_filler: str = "Random",
                 threshold: float = 0.2, delta: float = 0.001, start: float = 0.1,
                 gamma: float = 0.05, stepsize: int = 0, seed: int = 0) -> None:
        if prune_mode not in MODES:
            raise ConfigError(f"unknown pruning mode {prune_mode!r} (expected one of "
                              f"{', '.join(MODES)})", key="prune_mode")
        if prune_filler not in FILLERS:
            raise ConfigError(f"unknown pruning filler {prune_filler!r} (expected one of "
                              f"{', '.join(FILLERS)})", key="prune_filler")
        for key, v in (("threshold", threshold), ("start", start)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise ConfigError(f"must be a fraction in [0, 1], got {v!r}", key=key)
        if prune_mode == "Gradual" and start > threshold:
            raise ConfigError(f"start {start} exceeds threshold {threshold}", key="start")
        if not delta > 0:
            raise ConfigError(f"must be > 0, got {delta!r}", key="delta")
        if not gamma > 0:
            raise ConfigError(f"must be > 0, got {gamma!r}", key="gamma")
        if not isinstance(stepsize, int) or isinstance(stepsize, bool) or stepsize < 0:
            raise ConfigError(f"must be an int >= 0, got {stepsize!r}", key="stepsize")
        self.mode, self.filler = prune_mode, prune_filler
        self.threshold, self.delta, self.start = float(threshold), float(delta), float(start)
        self.gamma, self.stepsize = float(gamma), stepsize
        self.generator = torch.Generator().manual_seed(seed)
        self.regrows = False
        self.current = 0.0
        self.initialized = False
        self._pending_epoch = False

    def _fill(self, w: Tensor, mask: Tensor, fraction: float) -> Tensor:
        if self.filler == "Random":
            return fill_random(mask, fraction, self.generator)
        return fill_iter_nonstruct(w, mask, fraction, self.delta)

    def epoch_end(self) -> None:
        """Request a Gradual threshold update at the next training step (``stepsize == 0``)."""
        self._pending_epoch = True

    def mask_at(self, w: Tensor, step: int, old_mask: Tensor) -> Tensor | None:
        """New keep-mask at training step ``step`` or ``None`` if unchanged."""
        if self.mode == "Identity":
            self.initialized = True
            return None
        if not self.initialized:
            self.initialized = True
            self.current = self.threshold if self.mode == "Static" else self.start
            return self._fill(w, old_mask, self.current)
        if self.mode == "Static":
            return None
        due = (self.stepsize > 0 and step > 0 and step % self.stepsize == 0) or (
            self.stepsize == 0 and self._pending_epoch)
        self._pending_epoch = False
        if not due or self.current >= self.threshold:
            return None
        self.current = min(self.threshold, self.current + self.gamma)
        return self._fill(w, old_mask, self.current)


def attach_n2d2(module: nn.Module, pruner: N2D2Pruner) -> nn.Module:
    """Drive ``module.mask`` with ``pruner`` on every training forward; returns ``module``.

    The controller (``module.n2d2_ctl``) is the package's one mask lifecycle,
    :func:`t2c_sim.sparse.attach.attach_pruner`.
    """
    return attach_pruner(module, pruner, "n2d2_ctl")
