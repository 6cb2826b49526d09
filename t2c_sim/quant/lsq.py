"""Learned Step Size Quantization (LSQ, Esser et al., ICLR 2020) with a shrink-search initializer.

Forward (half-to-even rounding, straight-through), written as the paper clips before rounding:
``x_out = round(clamp(x / s, qmin - z, qmax - z)) * s``, which equals
``(clamp(round(x / s) + z, qmin, qmax) - z) * s`` because the bounds are integers.

Gradient w.r.t. the step ``s`` (the paper's eq. 3, with ``z`` fixed at initialization):
``d x_out / d s = round(x/s) - x/s`` for ``qmin - z < x/s < qmax - z``, else ``qmin - z`` /
``qmax - z``,
multiplied by the gradient scale ``g = 1 / sqrt(N * qmax)`` where ``N`` is the number of
elements sharing one step (``x.numel()`` tensor-wise, ``x.numel() / C`` channel-wise). The
gradient w.r.t. ``x`` is 1 inside the clamp range, 0 outside.

Initializer (shrink search, as Torch2Chip's LSQ observer but with MSE): from the observed range
``[min, max]``, try clip ratios ``r_i = 1 - i * step`` for ``i = 0..grid-1``, quantize ``x`` with
the MinMax parameters of ``[r_i * min, r_i * max]`` and keep the ``r`` with the smallest mean
squared error (the first, i.e. largest ``r``, on ties). Channel-wise the search is per channel.
It runs on every forward while ``observing`` (running range, current batch); with
``observing = False`` the step is a learned ``nn.Parameter``.

Token-wise (interpretation): a learnable step per ``(batch, token)`` row cannot exist (the batch
changes), and a step per token position would mix the batch. So token-wise LSQ learns one clip
ratio ``alpha`` (a scalar ``nn.Parameter``, initialized by the same shrink search over the
per-row ranges) and uses ``s[b, t] = alpha * s_minmax[b, t]`` with ``z[b, t]`` from the row's
MinMax range (scaling a range by ``alpha`` leaves ``z`` unchanged). The LSQ gradient reaches
``alpha`` through ``s`` (``d x_out/d alpha = s_minmax * d x_out/d s``), scaled by ``g``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from t2c_sim.quant.base import (
    QuantError,
    Quantizer,
    check_quant_args,
    fake_quantize,
    round_ste,
)
from t2c_sim.quant.observers import MinMaxObserver, qparams_from_range

__all__ = ["LSQQuantizer", "LSQTokenQuantizer", "grad_scale", "shrink_search", "lsq_fake_quantize"]


def grad_scale(t: Tensor, g: float) -> Tensor:
    """Identity in the forward pass, gradient multiplied by ``g`` in the backward pass."""
    return (t - t * g).detach() + t * g


def lsq_fake_quantize(x: Tensor, scale: Tensor, zero_point: Tensor, qmin: int,
                      qmax: int) -> Tensor:
    """``x_out = round_ste(clamp(x / s, qmin - z, qmax - z)) * s`` (LSQ's clip-then-round form).

    Same values as :func:`~t2c_sim.quant.base.fake_quantize`; the gradient w.r.t. ``s`` is the
    paper's: ``qmin - z`` / ``qmax - z`` once ``x/s`` reaches a bound (round-then-clamp would
    give ``round(x/s) - x/s`` in the last half step before the bound).
    """
    v = torch.clamp(x / scale, qmin - zero_point, qmax - zero_point)
    return round_ste(v) * scale


def shrink_search(x: Tensor, lo: Tensor, hi: Tensor, qmin: int, qmax: int, symmetric: bool,
                  reduce_dims: tuple[int, ...] | None, grid: int = 100, step: float = 0.01,
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """MSE-optimal clip ratio of a range: returns ``(ratio, scale, zero_point)``.

    For ``r_i = 1 - i * step`` (``i = 0..grid-1``): ``(s_i, z_i) = qparams(r_i * lo, r_i * hi)``
    and ``e_i = mean((fake_quant(x; s_i, z_i) - x)^2)`` over ``reduce_dims`` (all dims if
    ``None``); the smallest ``e_i`` wins per parameter group, the earliest ``i`` on ties.
    ``lo``/``hi`` must broadcast against ``x`` (channel ranges are reshaped by the caller).
    """
    x = x.detach().float()
    best_err = best_r = best_s = best_z = None
    for i in range(grid):
        r = 1.0 - i * step
        if r <= 0:
            break
        s, z = qparams_from_range(lo * r, hi * r, qmin, qmax, symmetric)
        err = (fake_quantize(x, s, z, qmin, qmax) - x).pow(2)
        err = err.mean() if reduce_dims is None else err.mean(dim=reduce_dims, keepdim=True)
        if best_err is None:
            best_err, best_s, best_z = err, s, z
            best_r = torch.full_like(err, r)
            continue
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_r = torch.where(better, torch.full_like(err, r), best_r)
        best_s = torch.where(better, s, best_s)
        best_z = torch.where(better, z, best_z)
    return best_r, best_s, best_z


class LSQQuantizer(Quantizer):
    """LSQ fake-quantizer: ``x_out = (clamp(round(x/s) + z, qmin, qmax) - z) * s``, learned ``s``.

    ``scale`` is an ``nn.Parameter`` (tensor- or channel-wise; its channel shape is set by the
    first observation, so calibrate before building the optimizer). See the module docstring for
    the gradient, the shrink-search initializer and the token-wise variant.

    Args:
        nbit, unsigned, granularity, ch_axis, symmetric, observer: as :class:`Quantizer`.
        grid: number of clip ratios tried by the initializer (``r = 1 - i * grid_step``).
        grid_step: ratio decrement.
    """

    def __init__(self, nbit: int = 8, unsigned: bool = False, granularity: str = "tensor",
                 ch_axis: int = 0, symmetric: bool | None = None, observer=None,
                 grid: int = 100, grid_step: float = 0.01) -> None:
        check_quant_args(type(self).__name__, nbit, granularity)
        if observer is None:
            observer = MinMaxObserver(granularity, ch_axis)
        super().__init__(nbit, unsigned, granularity, ch_axis, symmetric, observer)
        if not isinstance(grid, int) or grid < 1 or not 0.0 < float(grid_step) < 1.0:
            raise QuantError(f"{self.label}: need grid >= 1 and 0 < grid_step < 1, got "
                             f"grid={grid!r} grid_step={grid_step!r}")
        self.grid, self.grid_step = grid, float(grid_step)
        self.register_buffer("clip_ratio", torch.tensor(1.0))
        if granularity == "token":
            self.alpha = nn.Parameter(torch.tensor(1.0))
        else:
            del self._buffers["scale"]
            self.scale = nn.Parameter(torch.tensor(1.0))

    def grad_factor(self, x: Tensor) -> float:
        """``g = 1 / sqrt(N * qmax)``, ``N`` = elements per step (see the module docstring)."""
        n = x.numel()
        if self.granularity == "channel":
            n = max(1, n // x.shape[self.ch_axis % x.dim()])
        return 1.0 / math.sqrt(n * self.qmax)

    def observe(self, x: Tensor) -> None:
        """Update the running range, then pick the MSE-optimal clip ratio (shrink search)."""
        with torch.no_grad():
            self.observer(x.detach())
            lo, hi = self.observer.min_val, self.observer.max_val
            dims = None
            if self.granularity == "channel":
                axis = self.ch_axis % x.dim()
                dims = tuple(d for d in range(x.dim()) if d != axis)
                shape = [1] * x.dim()
                shape[axis] = -1
                lo, hi = lo.reshape(shape), hi.reshape(shape)
            r, s, z = shrink_search(x, lo, hi, self.qmin, self.qmax, self.symmetric, dims,
                                    self.grid, self.grid_step)
        if self.granularity == "channel":
            r, s, z = r.flatten(), s.flatten(), z.flatten()
        self.clip_ratio = r.detach().clone()
        self.set_qparams(s, z)

    def _token_base(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Per-row MinMax ``(s0, z)``; while observing, re-initialize ``alpha`` by shrink search."""
        s0, z = self._token_qparams(x)
        s0 = s0.detach().clone()
        if self.observing:
            with torch.no_grad():
                xd = x.detach().float()
                r, _, _ = shrink_search(xd, xd.amin(-1, keepdim=True), xd.amax(-1, keepdim=True),
                                        self.qmin, self.qmax, self.symmetric, None, self.grid,
                                        self.grid_step)
                self.alpha.data = r.reshape(()).to(self.alpha.device).clone()
                self.clip_ratio = r.reshape(()).clone()
        a = float(self.alpha.detach())
        if not math.isfinite(a) or a <= 0:
            raise QuantError(f"{self.label}: invalid clip ratio alpha={a!r} (must be finite, > 0)")
        self.scale = (s0 * self.alpha.detach()).clone()
        return s0, z

    def qparams_for(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.granularity != "token":
            return super().qparams_for(x)
        s0, z = self._token_base(x)
        return s0 * self.alpha, z

    def forward(self, x: Tensor) -> Tensor:
        """LSQ fake-quant with gradient-scaled step (see the module docstring)."""
        g = self.grad_factor(x)
        if self.granularity == "token":
            s0, z = self._token_base(x)
            s = s0 * grad_scale(self.alpha, g)
        else:
            s, z = self.qparams_for(x)
            s = grad_scale(s, g)
        return lsq_fake_quantize(x, s, z, self.qmin, self.qmax)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", grid={self.grid}x{self.grid_step}"


class LSQTokenQuantizer(LSQQuantizer):
    """Token-wise LSQ: ``s[b, t] = alpha * s_minmax[b, t]`` with a learned clip ratio ``alpha``."""

    def __init__(self, nbit: int = 8, unsigned: bool = False, granularity: str = "token",
                 ch_axis: int = 0, symmetric: bool | None = None, observer=None,
                 grid: int = 100, grid_step: float = 0.01) -> None:
        super().__init__(nbit, unsigned, granularity, ch_axis, symmetric, observer, grid,
                         grid_step)
