"""SmoothQuant (Xiao et al., ICML 2023): migrate activation outliers into the weights.

For a linear layer ``Y = X W^T`` (``X[..., C_in]``, ``W[C_out, C_in]``) and per input channel
``j``: ``s_j = max|X_j|^alpha / max|W_{:, j}|^(1 - alpha)`` (both maxima clamped to ``>= eps``).
Then ``Y = (X diag(s)^-1) (W diag(s))^T`` exactly in real arithmetic: activations are divided by
``s`` and weight columns multiplied by it. With ``alpha = 0.5`` the smoothed maxima agree:
``max|X_j / s_j| = max|W_j * s_j| = sqrt(max|X_j| * max|W_j|)``.

:class:`SmoothQuantizer` is the layer's input quantizer: it records ``max|X_j|`` while observing
(over every dimension but the last), divides by ``smooth`` (ones until :func:`smooth_linear`
installs ``s``) and fake-quantizes ``X / s`` with a MinMax quantizer of the chosen granularity
(tensor, channel = per input feature, token = per ``(batch, token)`` row). Its integers and
:meth:`~SmoothQuantizer.dequantize` live in the smoothed domain ``X / s``. (Folding ``1/s`` into
the producer of ``X`` -- a LayerNorm or the previous layer's requantizer -- is the fuse step's
job; a per-tensor input scale cannot absorb it.)
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from t2c_sim.quant.base import QuantError
from t2c_sim.quant.minmax import MinMaxQuantizer

__all__ = ["smooth_scales", "SmoothQuantizer", "smooth_linear"]

log = logging.getLogger(__name__)


def smooth_scales(act_absmax: Tensor, weight: Tensor, alpha: float = 0.5,
                  eps: float = 1e-5) -> Tensor:
    """``s_j = max|X_j|^alpha / max_i|W_ij|^(1 - alpha)`` (maxima clamped to ``>= eps``).

    >>> smooth_scales(torch.tensor([4.0, 1.0]), torch.tensor([[1.0, 4.0], [-0.5, 2.0]]))
    tensor([2.0000, 0.5000])
    """
    if isinstance(alpha, bool) or not 0.0 <= float(alpha) <= 1.0:
        raise QuantError(f"smooth_scales: alpha must be in [0, 1], got {alpha!r}")
    if weight.dim() != 2 or act_absmax.shape != (weight.shape[1],):
        raise QuantError(f"smooth_scales: need act_absmax [C_in] and weight [C_out, C_in], got "
                         f"{tuple(act_absmax.shape)} and {tuple(weight.shape)}")
    a = act_absmax.detach().float().clamp(min=eps)
    w = weight.detach().abs().float().amax(dim=0).clamp(min=eps)
    s = a.pow(float(alpha)) / w.pow(1.0 - float(alpha))
    if not bool(torch.all(torch.isfinite(s) & (s > 0))):
        raise QuantError("smooth_scales: non-finite smoothing factor (NaN/inf statistics?)")
    return s


class SmoothQuantizer(MinMaxQuantizer):
    """Input quantizer of a smoothed linear: ``x_out = fq(x / smooth)``, ``fq`` = MinMax.

    ``fq(u) = (clamp(round_half_even(u / s) + z, qmin, qmax) - z) * s`` on ``u = x / smooth``
    (STE gradient). While observing, ``act_absmax[j] = max(act_absmax[j], max |x[..., j]|)``.
    Default: unsigned = False, tensor-wise, symmetric.
    """

    def __init__(self, nbit: int = 8, unsigned: bool = False, granularity: str = "tensor",
                 ch_axis: int = -1, symmetric: bool | None = None, observer=None,
                 momentum: float | None = None) -> None:
        super().__init__(nbit, unsigned, granularity, ch_axis, symmetric, observer, momentum)
        self.register_buffer("smooth", torch.ones(0))
        self.register_buffer("act_absmax", torch.zeros(0))

    def _record(self, x: Tensor) -> None:
        with torch.no_grad():
            m = x.detach().abs().float().reshape(-1, x.shape[-1]).amax(dim=0)
            if self.act_absmax.numel() == 0:
                self.act_absmax = m.clone()
            elif self.act_absmax.shape != m.shape:
                raise QuantError(f"{self.label}: feature count changed from "
                                 f"{self.act_absmax.numel()} to {m.numel()}")
            else:
                self.act_absmax = torch.maximum(self.act_absmax, m)

    def smoothed(self, x: Tensor) -> Tensor:
        """``x / smooth`` (identity before :func:`smooth_linear`)."""
        if self.smooth.numel() == 0:
            return x
        if x.shape[-1] != self.smooth.numel():
            raise QuantError(f"{self.label}: {self.smooth.numel()} smoothing factors for "
                             f"{x.shape[-1]} features")
        return x / self.smooth

    def forward(self, x: Tensor) -> Tensor:
        if self.observing:
            self._record(x)
        return super().forward(self.smoothed(x))

    def quantize(self, x: Tensor) -> Tensor:
        """Integers of ``x / smooth`` (the smoothed domain)."""
        return super().quantize(self.smoothed(x))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        for name in ("smooth", "act_absmax"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def smooth_linear(linear: nn.Module, aq: SmoothQuantizer, alpha: float = 0.5) -> Tensor:
    """Smooth ``linear`` (anything with a ``[C_out, C_in]`` ``weight``) using ``aq``'s statistics.

    Computes ``s`` from ``aq.act_absmax`` and the *unsmoothed* weight (``W / s_old`` if smoothing
    was applied before), sets ``W <- W_unsmoothed * s`` in place and ``aq.smooth <- s``, and
    resets ``aq``'s range (the smoothed activations must be re-observed). If the layer has a
    weight quantizer ``wq`` with ``reset``/``observe``, it is recalibrated on ``W * mask``.
    Returns ``s``.
    """
    w = getattr(linear, "weight", None)
    if not isinstance(w, Tensor) or w.dim() != 2:
        raise QuantError(f"smooth_linear: {type(linear).__name__} has no [C_out, C_in] weight")
    if aq.act_absmax.numel() == 0:
        raise QuantError(f"smooth_linear: {aq.label} has no activation statistics (run "
                         f"calibration data through it with observing=True first)")
    with torch.no_grad():
        old = aq.smooth if aq.smooth.numel() else torch.ones(w.shape[1], device=w.device)
        w_orig = w / old.to(w.dtype)
        s = smooth_scales(aq.act_absmax, w_orig, alpha)
        w.copy_(w_orig * s.to(w.dtype))
    aq.smooth = s.clone()
    aq.reset()
    wq = getattr(linear, "wq", None)
    if wq is not None and hasattr(wq, "reset") and hasattr(wq, "observe"):
        mask = getattr(linear, "mask", None)
        wq.reset()
        wq.observe(w.detach() if mask is None else w.detach() * mask)
    log.debug("smoothed %s: alpha=%s, s in [%.3g, %.3g]", type(linear).__name__, alpha,
              float(s.min()), float(s.max()))
    return s
