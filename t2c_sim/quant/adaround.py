"""AdaRound (Nagel et al., ICML 2020): learned up/down rounding of weights.

With ``s, z`` from a MinMax range (frozen after calibration) and one learnable ``V`` per weight:

- rectified sigmoid ``h(V) = clip(sigmoid(V) * (zeta - gamma) + gamma, 0, 1)``, ``zeta = 1.1``,
  ``gamma = -0.1``;
- soft (training, not frozen): ``x_out = (clamp(floor(x/s) + h(V) + z, qmin, qmax) - z) * s``;
- hard (after :meth:`AdaRoundQuantizer.freeze`, or in ``eval()``):
  ``q = clamp(floor(x/s) + [h(V) >= 0.5] + z, qmin, qmax)`` and ``x_out = (q - z) * s``;
- regularizer ``f_reg = sum(1 - |2 h(V) - 1|^beta)`` with ``beta`` annealed from ``beta_start``
  (20) to ``beta_end`` (2) by :class:`LinearTempDecay`.

``V`` is initialized so that ``h(V) = x/s - floor(x/s)`` (soft rounding starts at the float
value): ``V = -log((zeta - gamma) / (frac - gamma) - 1)``. Exact grid points (``x/s`` an
integer, in particular pruned zero weights) are never moved: their rounding offset is forced to
0, so a pruned weight stays exactly 0 as SPEC section 1 requires. The gradient reaches ``V``
only; ``floor(x/s)`` is treated as a constant (AdaRound optimizes rounding, not weights).

Flow: one forward with ``observing = True`` computes ``s, z`` and initializes ``V`` (every
observing forward re-initializes them); then set ``observing = False``, optimize
``reconstruction_loss + lambda * regularizer(beta)``, and call ``freeze()``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from t2c_sim.errors import QuantError
from t2c_sim.quant.base import Quantizer, check_quant_args
from t2c_sim.quant.observers import MinMaxObserver

__all__ = ["AdaRoundQuantizer", "LinearTempDecay", "rectified_sigmoid", "ZETA", "GAMMA"]

ZETA = 1.1
GAMMA = -0.1


def rectified_sigmoid(v: Tensor, zeta: float = ZETA, gamma: float = GAMMA) -> Tensor:
    """``h(V) = clip(sigmoid(V) * (zeta - gamma) + gamma, 0, 1)``."""
    return torch.clamp(torch.sigmoid(v) * (zeta - gamma) + gamma, 0.0, 1.0)


class LinearTempDecay:
    """Annealed ``beta``: ``beta_start`` during the first ``warmup * t_max`` steps, then linear
    ``beta_end + (beta_start - beta_end) * max(0, 1 - (t - t0) / (t_max - t0))``, ``t0 =
    warmup * t_max`` (AdaRound's schedule; during warm-up the regularizer is usually off).
    """

    def __init__(self, t_max: int, warmup: float = 0.2, beta_start: float = 20.0,
                 beta_end: float = 2.0) -> None:
        if t_max < 1 or not 0.0 <= warmup < 1.0 or beta_end <= 0 or beta_start < beta_end:
            raise QuantError(f"LinearTempDecay: need t_max >= 1, 0 <= warmup < 1, "
                             f"beta_start >= beta_end > 0; got t_max={t_max}, warmup={warmup}, "
                             f"beta=({beta_start}, {beta_end})")
        self.t_max, self.warmup = int(t_max), float(warmup)
        self.beta_start, self.beta_end = float(beta_start), float(beta_end)

    def __call__(self, t: int) -> float:
        t0 = self.warmup * self.t_max
        if t < t0:
            return self.beta_start
        rel = (t - t0) / (self.t_max - t0)
        return self.beta_end + (self.beta_start - self.beta_end) * max(0.0, 1.0 - rel)


class AdaRoundQuantizer(Quantizer):
    """AdaRound weight fake-quantizer (see the module docstring for every formula).

    Args:
        nbit, unsigned, granularity, ch_axis, symmetric, observer: as :class:`Quantizer`
            (default channel-wise, signed symmetric: a weight quantizer).
        zeta, gamma: rectified-sigmoid stretch (1.1, -0.1).
    """

    def __init__(self, nbit: int = 8, unsigned: bool = False, granularity: str = "channel",
                 ch_axis: int = 0, symmetric: bool | None = None, observer=None,
                 zeta: float = ZETA, gamma: float = GAMMA) -> None:
        check_quant_args(type(self).__name__, nbit, granularity)
        if granularity == "token":
            raise QuantError(f"{type(self).__name__}: AdaRound rounds a fixed weight tensor; "
                             f"token-wise granularity is not supported")
        if observer is None:
            observer = MinMaxObserver(granularity, ch_axis)
        super().__init__(nbit, unsigned, granularity, ch_axis, symmetric, observer)
        if not (zeta > 1.0 and gamma < 0.0):
            raise QuantError(f"{self.label}: need zeta > 1 and gamma < 0, got {zeta}, {gamma}")
        self.zeta, self.gamma = float(zeta), float(gamma)
        self.v = nn.Parameter(torch.zeros(0))
        self.register_buffer("hard", torch.tensor(False))

    # ------------------------------------------------------------------ state
    def observe(self, x: Tensor) -> None:
        """MinMax ``s, z`` from ``x``, then ``V`` such that ``h(V) = frac(x/s)``."""
        super().observe(x)
        with torch.no_grad():
            s = self._expand(self.scale, x)
            frac = (x.detach() / s - torch.floor(x.detach() / s)).float()
            frac = frac.clamp(1e-6, 1.0 - 1e-6)     # keep V finite at the ends
            v = -torch.log((self.zeta - self.gamma) / (frac - self.gamma) - 1.0)
        self.v.data = v.clone()
        self.hard.fill_(False)

    def freeze(self) -> None:
        """Switch to hard rounding ``floor(x/s) + [h(V) >= 0.5]`` for good."""
        self.hard.fill_(True)

    def h(self) -> Tensor:
        """Rectified sigmoid ``h(V)``."""
        return rectified_sigmoid(self.v, self.zeta, self.gamma)

    def regularizer(self, beta: float) -> Tensor:
        """``sum(1 - |2 h(V) - 1|^beta)`` (0 when every ``h`` is 0 or 1)."""
        if not beta > 0 or not math.isfinite(beta):
            raise QuantError(f"{self.label}: beta must be finite and > 0, got {beta!r}")
        return (1.0 - (2.0 * self.h() - 1.0).abs().pow(beta)).sum()

    # ------------------------------------------------------------------ paths
    def _parts(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        s, z = self.qparams_for(x)
        if self.v.shape != x.shape:
            raise QuantError(f"{self.label}: V has shape {tuple(self.v.shape)} but the weight "
                             f"has {tuple(x.shape)} (calibrate with observing=True first)")
        xs = x.detach() / s.detach()
        base = torch.floor(xs)
        movable = xs != base                        # exact grid points never move
        return s, z, base, movable

    def forward(self, x: Tensor) -> Tensor:
        """Soft rounding in training (not frozen), hard rounding otherwise."""
        s, z, base, movable = self._parts(x)
        if self.training and not bool(self.hard):
            off = self.h() * movable
        else:
            off = (self.h() >= 0.5).to(x.dtype) * movable
        q = torch.clamp(base + off + z, self.qmin, self.qmax)
        return (q - z) * s.detach()

    def quantize(self, x: Tensor) -> Tensor:
        """Hard rounding: ``clamp(floor(x/s) + [h(V) >= 0.5] + z, qmin, qmax)`` as int64."""
        with torch.no_grad():
            _, z, base, movable = self._parts(x.detach())
            off = ((self.h() >= 0.5) & movable).to(base.dtype)
            q = torch.clamp(base + off + z, self.qmin, self.qmax)
        return q.to(torch.int64)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", hard={bool(self.hard)}"

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        key = prefix + "v"
        if key in state_dict and state_dict[key].shape != self.v.shape:
            self.v.data = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
