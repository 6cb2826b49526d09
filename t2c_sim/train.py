"""Training loops (CPU, seconds): float training, masked and gradual N:M fine-tuning, QAT.

Every loop is :func:`fit`, one deterministic mini-batch cross-entropy loop with hooks before
and after each optimizer step. N:M masks are computed in the integer model's reduction order
(input channels fastest; a linear after a flatten groups its columns in ``(h, w, c)`` order),
by :func:`nm_masks` (one shot) or by :func:`finetune_gradual` (an
:class:`~t2c_sim.sparse.pruners.NMPruner` schedule over training iterations), so that fuse
accepts the final masks. Calibration of the quantizers is :func:`t2c_sim.quant.calibrate.calibrate`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn

from t2c_sim.errors import ConfigError
from t2c_sim.quant.graph import flatten_inputs
from t2c_sim.quant.modules import QConv2d, QLinear, quantizers, set_observing
from t2c_sim.sparse.pruners import NMPruner, grouped_nm_mask, nm_keep_mask

__all__ = ["fit", "train", "predict", "accuracy", "qat", "nm_masks", "apply_masks", "finetune_masked",
           "finetune_gradual"]

log = logging.getLogger(__name__)


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer, *,
        epochs: int, batch: int, seed: int,
        before_step: Callable[[int], None] | None = None,
        after_step: Callable[[int], None] | None = None, label: str = "train") -> nn.Module:
    """The mini-batch cross-entropy loop shared by float training, masked fine-tuning and QAT.

    One ``torch.Generator().manual_seed(seed)`` draws a permutation per epoch; iteration ``t``
    (counted from 0 across epochs) runs ``before_step(t)``, zero_grad, forward on the next
    ``batch`` rows, backward, ``opt.step()``, ``after_step(t)``. Deterministic for a fixed seed on
    CPU. Leaves the model in eval mode.
    """
    g = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    t = 0
    for ep in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        total = 0.0
        for i in range(0, len(y), batch):
            if before_step is not None:
                before_step(t)
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step(t)
            total += float(loss.detach()) * len(idx)
            t += 1
        log.debug("%s epoch %d: loss %.4f", label, ep, total / max(len(y), 1))
    model.eval()
    return model


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 20,
          lr: float = 1e-2, batch: int = 64, seed: int = 0, weight_decay: float = 0.0,
          ) -> nn.Module:
    """Float training: Adam on cross-entropy through :func:`fit` (deterministic for a seed)."""
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


def qat(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 2,
        lr: float = 1e-3, batch: int = 64, seed: int = 0) -> nn.Module:
    """Quantization-aware fine-tuning (Adam, cross-entropy) with frozen observers, in place.

    Gradients reach the weights through the straight-through fake-quant and the learnable
    quantizer parameters (LSQ steps ``s``, token-wise clip ratios). Pruning masks stay applied
    because every forward multiplies by ``mask`` (a pruned weight gets zero gradient, so Adam
    never moves it). Adam moves every parameter by about ``lr`` per iteration whatever its size,
    which would drive a step ``s ~ 1e-3`` negative; so each quantizer parameter ``p`` gets its
    own group with ``lr_p = lr * mean|p|`` (a relative step) and, after every iteration, is
    clamped to ``p >= p_0 / 100`` (``p_0`` = its value when QAT starts; scales stay > 0).
    """
    set_observing(model, False)
    qparams = {id(p): p for q in quantizers(model).values() for p in q.parameters(recurse=False)}
    floors = {k: p.detach().abs() / 100.0 for k, p in qparams.items()}
    groups: list[dict] = [{"params": [p for p in model.parameters() if id(p) not in qparams],
                           "lr": lr}]
    groups += [{"params": [p], "lr": lr * max(float(p.detach().abs().mean()), 1e-12)}
               for p in qparams.values()]
    opt = torch.optim.Adam(groups, lr=lr)

    def floor_scales(_t: int) -> None:
        with torch.no_grad():
            for k, p in qparams.items():
                p.copy_(torch.maximum(p, floors[k]))

    return fit(model, x, y, opt, epochs=epochs, batch=batch, seed=seed, after_step=floor_scales,
               label="QAT")


def nm_masks(model: nn.Module, n: int, m: int, example_input: torch.Tensor,
             skip: Iterable[str] = ()) -> dict[str, torch.Tensor]:
    """N:M keep-masks (torch layout) for every Conv2d/Linear not in ``skip``, by module name.

    Groups follow the integer reduction order, including the ``(h, w, c)`` column order of a
    linear after a flatten (:func:`~t2c_sim.sparse.pruners.nm_keep_mask` with ``chw``).
    """
    skip = set(skip)
    chw = flatten_inputs(model, example_input)
    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)) and name not in skip:
            out[name] = nm_keep_mask(mod.weight, n, m, chw.get(name)).to(torch.float32)
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

    def remask(_t: int) -> None:
        with torch.no_grad():
            for name, mask in masks.items():
                mods[name].weight.mul_(mask)

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return fit(model, x, y, opt, epochs=epochs, batch=batch, seed=seed, after_step=remask,
               label="masked fine-tune")


def finetune_gradual(model: nn.Module, pruner: NMPruner, x: torch.Tensor, y: torch.Tensor, *,
                     epochs: int, example_input: torch.Tensor, skip: Iterable[str] = (),
                     lr: float = 3e-3, batch: int = 64, seed: int = 0,
                     on_update: Callable[[int, dict[str, torch.Tensor]], None] | None = None,
                     ) -> dict[str, torch.Tensor]:
    """Float fine-tuning with gradual N:M pruning (Adam, cross-entropy), in place.

    Training iteration ``t = 0, 1, ...`` (one mini-batch each; ``ceil(len(y) / batch)`` per
    epoch): if ``pruner.schedule.is_update(t)`` every Conv2d/Linear not in ``skip`` gets the mask
    :func:`~t2c_sim.sparse.pruners.grouped_nm_mask` at progress
    ``p_k = 1 - (1 - k/repetition)^3`` (``k`` updates done)
    BEFORE the forward of ``t``; masked weights are zeroed after every optimizer step. The last
    update (``t = end = start + interval*repetition``) gives the ``N:M`` mask, so ``end`` must be
    a training iteration: ``end < epochs * ceil(len(y) / batch)`` (else :class:`ConfigError`,
    key ``sparsity.repetition``). ``on_update(t, masks)`` sees each new mask set.
    Returns the final masks (float 0/1, torch layout) by module name.
    """
    steps = epochs * math.ceil(len(y) / batch)
    end = pruner.schedule.end
    if end >= steps:
        raise ConfigError(f"the gradual schedule ends at iteration {end} but fine-tuning has only "
                          f"{steps} ({epochs} epochs x {math.ceil(len(y) / batch)})",
                          key="sparsity.repetition")
    skip = set(skip)
    chw = flatten_inputs(model, example_input)
    mods = dict(model.named_modules())
    names = [n for n, m in mods.items() if isinstance(m, (nn.Conv2d, nn.Linear)) and n not in skip]
    masks = {n: torch.ones_like(mods[n].weight, dtype=torch.float32) for n in names}
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def update_and_remask(t: int) -> None:
        if pruner.schedule.is_update(t):
            p = pruner.schedule.progress(t)
            for n in names:
                masks[n] = grouped_nm_mask(pruner, mods[n].weight, p, masks[n], chw.get(n))
            log.info("iteration %d: N:M progress %.3f, density %.3f", t, p,
                     sum(float(m.sum()) for m in masks.values())
                     / sum(m.numel() for m in masks.values()))
            if on_update is not None:
                on_update(t, {n: m.clone() for n, m in masks.items()})
        remask(t)

    def remask(_t: int) -> None:
        with torch.no_grad():
            for n in names:
                mods[n].weight.mul_(masks[n])

    fit(model, x, y, opt, epochs=epochs, batch=batch, seed=seed, before_step=update_and_remask,
        after_step=remask, label="gradual N:M")
    return masks
