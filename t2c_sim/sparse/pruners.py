"""Weight pruners (torch): N:M structured masks, magnitude masks, prune-and-regrow, ERK.

Every pruner produces a boolean keep-mask with the weight's shape. Masks are written into a
``mask`` buffer that the layer wrappers multiply into the weight in every path (training
forward, fake-quant, fuse), so a pruned weight is exactly 0 (SPEC section 1).

N:M layout (SPEC section 4): the weight is viewed in reduction order ``[C_out, K]``:

- linear ``[C_out, C_in]``: ``K = C_in_p``;
- conv ``[C_out, C_in, KH, KW]`` -> permute to ``[C_out, KH, KW, C_in]`` -> pad ``C_in`` to
  ``C_in_p`` -> ``[C_out, KH * KW * C_in_p]``, i.e. ``k = (kh * KW + kw) * C_in_p + c_in``.

``C_in_p`` is ``C_in`` rounded up to a multiple of ``M``; the padding entries are zeros that
exist only conceptually (they are not weights and are cut off again), so a last group with
``r < M`` real channels keeps its ``min(N, r)`` largest real weights (a zero pad never beats a
real weight: ties go to the lower index, and pads sit at the highest indices). Each group
keeps its ``N`` largest ``|w|``, ties to the lower index: exactly
:func:`t2c_sim.sparse.nm.nm_mask` on the padded reduction-order matrix.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from t2c_sim import layout
from t2c_sim.config import nm_params
from t2c_sim.errors import ConfigError
from t2c_sim.sparse.schedules import ONESHOT, PruneSchedule

__all__ = [
    "to_reduction_matrix", "from_reduction_matrix", "nm_keep_mask", "grouped_nm_mask",
    "magnitude_mask", "prune_and_regrow", "erk_sparsities", "NMPruner", "MagnitudePruner",
]

log = logging.getLogger(__name__)


# ---- torch adapters over t2c_sim.layout (the NumPy owner of the layout rules) ----------------
def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def to_reduction_matrix(w: Tensor, m: int) -> Tensor:
    """View a linear ``[C_out, C_in]`` or conv ``[C_out, C_in, KH, KW]`` weight as ``[C_out, K]``.

    :func:`t2c_sim.layout.reduction_order` on a tensor: ``k = (kh * KW + kw) * C_in_p + c_in``,
    ``C_in`` zero-padded to a multiple of ``m`` (SPEC section 2).

    >>> to_reduction_matrix(torch.arange(6.).reshape(1, 3, 1, 2), 4)
    tensor([[0., 2., 4., 0., 1., 3., 5., 0.]])
    """
    return torch.from_numpy(np.ascontiguousarray(layout.reduction_order(_np(w), m))).to(w.device)


def from_reduction_matrix(mat: Tensor, shape: Sequence[int], m: int) -> Tensor:
    """Inverse of :func:`to_reduction_matrix` (drops the padding channels)."""
    out = layout.from_reduction_order(_np(mat), shape, m)
    return torch.from_numpy(np.ascontiguousarray(out)).to(mat.device)


def _hwc(t: Tensor, chw: tuple[int, int, int] | None) -> tuple[Tensor, np.ndarray | None]:
    """Columns of a linear weight in the integer model's ``(h, w, c)`` order (``chw`` given)."""
    if chw is None:
        return t, None
    if t.dim() != 2 or t.shape[1] != chw[0] * chw[1] * chw[2]:
        raise ConfigError(f"chw={tuple(chw)} does not match a weight of shape {tuple(t.shape)}",
                          key="chw")
    perm = layout.hwc_perm(*chw)
    return t[:, torch.from_numpy(perm)], perm


def _unhwc(t: Tensor, perm: np.ndarray | None) -> Tensor:
    if perm is None:
        return t
    out = torch.empty_like(t)
    out[:, torch.from_numpy(perm)] = t
    return out


def nm_keep_mask(w: Tensor, n: int, m: int, chw: tuple[int, int, int] | None = None) -> Tensor:
    """Boolean N:M keep-mask of a linear or conv weight (same shape as ``w``).

    In every group of ``m`` consecutive entries along the reduction order (``m`` input channels
    at fixed ``(c_out, kh, kw)``), keeps the ``n`` largest ``|w|``, ties to the lower channel:
    :func:`t2c_sim.sparse.nm.nm_mask` (:func:`t2c_sim.layout.topn_mask`) on the padded
    reduction-order matrix; a pad (0, highest index) never beats a real weight. For a linear
    after a flatten of ``[B, C, H, W]`` pass ``chw``: the integer model orders the columns
    ``(h, w, c)``, and the groups follow that order.

    >>> nm_keep_mask(torch.tensor([[1., -4., 4., 2.]]), 2, 4).int()
    tensor([[0, 1, 1, 0]], dtype=torch.int32)
    """
    n, m = nm_params(n, m)
    wp, perm = _hwc(w.detach(), chw)
    a = np.abs(_np(wp.float()))
    keep = layout.topn_mask(layout.reduction_order(a, m), n, m)
    out = torch.from_numpy(np.ascontiguousarray(layout.from_reduction_order(keep, wp.shape, m)))
    return _unhwc(out, perm).to(w.device)


def grouped_nm_mask(pruner: NMPruner, weight: Tensor, progress: float,
                    old_mask: Tensor | None = None,
                    chw: tuple[int, int, int] | None = None) -> Tensor:
    """``pruner.compute`` with groups in the integer reduction order, AND ``old_mask``.

    Conv: groups of M input channels at fixed ``(kh, kw)``. Linear after a flatten of
    ``[B, C, H, W]`` (``chw`` given): columns are taken in the integer model's ``(h, w, c)``
    order, pruned, and put back. The result is ANDed with ``old_mask`` so masks only shrink.
    Returns a float 0/1 mask (torch layout).
    """
    w, perm = _hwc(weight.detach(), chw)
    old = None
    if old_mask is not None:
        old, _ = _hwc(old_mask.detach().bool(), chw)
    keep = pruner.compute(w, progress, old).bool()
    if old is not None:
        keep = keep & old
    return _unhwc(keep, perm).to(torch.float32)


def magnitude_mask(w: Tensor, sparsity: float) -> Tensor:
    """Keep the ``numel - round(sparsity * numel)`` largest ``|w|`` (ties to the lower flat index).

    >>> magnitude_mask(torch.tensor([3., -1., 1., 2.]), 0.5)
    tensor([ True, False, False,  True])
    """
    if not 0.0 <= float(sparsity) <= 1.0:
        raise ConfigError(f"sparsity must be in [0, 1], got {sparsity!r}", key="sparsity")
    flat = _np(w.abs().flatten().float())
    n_keep = flat.size - int(round(float(sparsity) * flat.size))
    keep = layout.topn_mask(flat, n_keep, flat.size)      # one group: the whole tensor
    return torch.from_numpy(keep).reshape(w.shape).to(w.device)


def prune_and_regrow(w: Tensor, mask: Tensor, fraction: float, grad: Tensor | None = None,
                     mode: str = "gradient", generator: torch.Generator | None = None) -> Tensor:
    """One drop-and-grow step at constant sparsity (SET / RigL).

    ``k = round(fraction * nnz(mask))`` active weights with the smallest ``|w|`` are dropped
    (ties: the higher flat index drops first) and ``k`` weights that were inactive before the
    step are regrown: the largest ``|grad|`` (``mode="gradient"``, RigL; ties to the lower index)
    or uniformly at random (``mode="random"``, SET). Just-dropped weights are not regrown in the
    same step; if fewer than ``k`` inactive weights exist, ``k`` shrinks to that count. Regrown
    weights should start at 0 (the caller zeroes them; the mask does not change values).
    """
    if not 0.0 <= float(fraction) <= 1.0:
        raise ConfigError(f"regrow fraction must be in [0, 1], got {fraction!r}", key="fraction")
    if mode not in ("gradient", "random"):
        raise ConfigError(f"regrow mode must be 'gradient' or 'random', got {mode!r}", key="mode")
    mask = mask.detach().bool().flatten()
    if mask.shape[0] != w.numel():
        raise ConfigError(f"mask has {mask.shape[0]} entries for a weight of shape "
                          f"{tuple(w.shape)}", key="mask")
    inactive = (~mask).nonzero().flatten()
    k = min(int(round(float(fraction) * int(mask.sum()))), inactive.numel())
    if k == 0:
        return mask.reshape(w.shape).clone()
    active = mask.nonzero().flatten()
    mag = _np(w.abs().flatten().float()[active])
    stay = layout.topn_mask(mag, mag.size - k, mag.size)   # ties: the lower index stays
    drop = active[torch.from_numpy(~stay)]
    if mode == "gradient":
        if grad is None:
            raise ConfigError("gradient regrowth needs the weight's gradient", key="grad")
        gscore = _np(grad.abs().flatten().float()[inactive])
        grow = inactive[torch.from_numpy(layout.topn_mask(gscore, k, gscore.size))]
    else:
        grow = inactive[torch.randperm(inactive.numel(), generator=generator)[:k]]
    new = mask.clone()
    new[drop] = False
    new[grow] = True
    return new.reshape(w.shape)


def erk_sparsities(shapes: Mapping[str, Sequence[int]], sparsity: float,
                   power: float = 1.0) -> dict[str, float]:
    """Erdos-Renyi-Kernel per-layer sparsities whose weighted mean is ``sparsity``.

    Layer ``l`` with shape ``(d_1..d_r)`` gets density ``eps * (sum d_i / prod d_i)^power``;
    ``eps`` is chosen so that ``sum_l density_l * numel_l = (1 - sparsity) * sum_l numel_l``.
    A layer whose density would exceed 1 is made dense and ``eps`` re-solved over the others
    (RigL, Evci et al. 2020). Returns ``{name: 1 - density}``.
    """
    if not 0.0 <= float(sparsity) < 1.0:
        raise ConfigError(f"ERK sparsity must be in [0, 1), got {sparsity!r}", key="sparsity")
    if not shapes:
        raise ConfigError("ERK needs at least one layer", key="shapes")
    density = 1.0 - float(sparsity)
    numel = {k: math.prod(int(d) for d in s) for k, s in shapes.items()}
    raw = {k: (sum(int(d) for d in s) / numel[k]) ** power for k, s in shapes.items()}
    dense: set[str] = set()
    while True:
        rhs = sum(density * numel[k] for k in shapes if k not in dense)
        rhs -= sum((1.0 - density) * numel[k] for k in dense)
        divisor = sum(raw[k] * numel[k] for k in shapes if k not in dense)
        if divisor == 0.0:
            break
        eps = rhs / divisor
        over = [k for k in shapes if k not in dense and eps * raw[k] > 1.0]
        if not over:
            break
        dense.update(over)
    return {k: 0.0 if k in dense else 1.0 - eps * raw[k] for k in shapes}


class NMPruner:
    """N:M pruning of a weight with a gradual schedule.

    At every scheduled update ``t`` (see :class:`~t2c_sim.sparse.schedules.PruneSchedule`) the
    mask is recomputed from ``|w * old_mask|`` (so masks only shrink) with progress
    ``p = 1 - (1 - k/repetition)^3`` after ``k`` updates:

    - ``mode="step_n"``: every group keeps ``N_t = M - round((M - N) * p)`` weights (``M:M`` ->
      ... -> ``N:M``); every intermediate mask is a legal ``N_t:M`` pattern.
    - ``mode="groups"``: a fraction ``p`` of the groups (those that lose the least ``sum |w|``
      when pruned to N:M, ties to the lower group) are pruned to ``N:M``, the rest stay dense.

    After the last update (``step >= schedule.end``) the mask equals :func:`nm_keep_mask`
    (``N:M``) of the masked weight. ``ONESHOT`` prunes fully at the first training forward.
    """

    def __init__(self, n: int, m: int, schedule: PruneSchedule = ONESHOT,
                 mode: str = "step_n") -> None:
        n, m = nm_params(n, m)
        if mode not in ("step_n", "groups"):
            raise ConfigError(f"N:M schedule mode must be 'step_n' or 'groups', got {mode!r}",
                              key="mode")
        self.n, self.m, self.schedule, self.mode = n, m, schedule, mode
        self.regrows = False

    def mask_at(self, w: Tensor, step: int, old_mask: Tensor | None = None) -> Tensor | None:
        """The new keep-mask if ``step`` is an update step, else ``None``."""
        if not self.schedule.is_update(step):
            return None
        return self.compute(w, self.schedule.progress(step), old_mask)

    def compute(self, w: Tensor, progress: float = 1.0, old_mask: Tensor | None = None) -> Tensor:
        """Keep-mask at ``progress`` in [0, 1] (1 = the final N:M mask)."""
        wm = w.detach() if old_mask is None else w.detach() * old_mask.detach().to(w.dtype)
        if self.mode == "step_n":
            n_t = self.m - int(round((self.m - self.n) * float(progress)))
            return nm_keep_mask(wm, max(self.n, n_t), self.m)
        full = nm_keep_mask(wm, self.n, self.m)
        if progress >= 1.0:
            return full
        a = to_reduction_matrix(wm.abs().float(), self.m)
        keep = to_reduction_matrix(full.float(), self.m)
        lost = (a * (1.0 - keep)).reshape(-1, self.m).sum(-1)          # cost per group
        n_groups = lost.numel()
        n_prune = int(round(float(progress) * n_groups))
        # the n_prune cheapest groups (ties to the lower group)
        chosen = torch.from_numpy(layout.topn_mask(-_np(lost), n_prune, n_groups))
        gk = torch.where(chosen[:, None], keep.reshape(-1, self.m) > 0,
                         torch.ones(n_groups, self.m, dtype=torch.bool))
        mask = from_reduction_matrix(gk.reshape(keep.shape), w.shape, self.m)
        return mask if old_mask is None else mask & old_mask.bool()


class MagnitudePruner:
    """Element-wise magnitude pruning with a cubic schedule and optional prune-and-regrow.

    At update ``k`` the sparsity is ``sparsity * (1 - (1 - k/repetition)^3)`` and the mask keeps
    the largest ``|w * old_mask|`` (:func:`magnitude_mask`). After the schedule ends, if
    ``regrow`` is ``"gradient"`` or ``"random"``, every ``regrow_interval`` steps a fraction
    ``regrow_fraction`` of the kept weights is dropped and regrown (:func:`prune_and_regrow`),
    keeping the sparsity constant.
    """

    def __init__(self, sparsity: float, schedule: PruneSchedule = ONESHOT,
                 regrow: str | None = None, regrow_fraction: float = 0.3,
                 regrow_interval: int = 100, seed: int = 0) -> None:
        if not 0.0 <= float(sparsity) <= 1.0:
            raise ConfigError(f"sparsity must be in [0, 1], got {sparsity!r}", key="sparsity")
        if regrow not in (None, "gradient", "random"):
            raise ConfigError(f"regrow must be None, 'gradient' or 'random', got {regrow!r}",
                              key="regrow")
        if regrow_interval < 1:
            raise ConfigError(f"must be >= 1, got {regrow_interval}", key="regrow_interval")
        self.sparsity = float(sparsity)
        self.schedule = schedule
        self.regrow = regrow
        self.regrow_fraction = float(regrow_fraction)
        self.regrow_interval = int(regrow_interval)
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def regrows(self) -> bool:
        """Whether masks can revive weights (their values then restart at 0)."""
        return self.regrow is not None

    def mask_at(self, w: Tensor, step: int, old_mask: Tensor | None = None,
                grad: Tensor | None = None) -> Tensor | None:
        """The new keep-mask at ``step`` (``None`` when nothing is scheduled)."""
        if self.schedule.is_update(step):
            wm = w.detach() if old_mask is None else w.detach() * old_mask.to(w.dtype)
            return magnitude_mask(wm, self.sparsity * self.schedule.progress(step))
        after = step - self.schedule.end
        if (self.regrow is not None and old_mask is not None and after > 0
                and after % self.regrow_interval == 0):
            return prune_and_regrow(w, old_mask, self.regrow_fraction, grad, self.regrow,
                                    self.generator)
        return None
