"""Range observers: running min/max statistics turned into ``(scale, zero_point)``.

An observer only collects statistics; :func:`qparams_from_range` turns a range into
quantization parameters. Three granularities:

- ``"tensor"``: one ``(min, max)`` for the whole tensor, shape ``[]``.
- ``"channel"``: one per index of ``ch_axis``, shape ``[C]`` (weights: the output channel).
- ``"token"``: one per row of ``[..., tokens, features]`` (reduction over the last dim only),
  shape ``x.shape[:-1] + (1,)``. Token statistics are per call (dynamic): every ``(batch,
  token)`` row has its own range and batch and token entries are never mixed, so there is
  nothing to accumulate across calls.

Running statistics (tensor and channel): with ``momentum=None`` the range is the running
extreme ``min_t = min(min_{t-1}, min(x_t))`` (like ``torch.ao`` ``MinMaxObserver``); with
``momentum=c`` in ``(0, 1]`` it is the exponential moving average
``min_t = min_{t-1} + c * (min(x_t) - min_{t-1})`` (``MovingAverageMinMaxObserver``). The first
observation initializes the range in both cases.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from t2c_sim.errors import QuantError

__all__ = ["GRANULARITIES", "MinMaxObserver", "qparams_from_range",
           "reduce_range"]

GRANULARITIES = ("tensor", "channel", "token")


def reduce_range(x: Tensor, granularity: str, ch_axis: int = 0) -> tuple[Tensor, Tensor]:
    """Per-granularity ``(min, max)`` of ``x`` (no running state).

    Shapes: tensor ``[]``; channel ``[C]`` with ``C = x.shape[ch_axis]``; token
    ``x.shape[:-1] + (1,)`` (min/max over the last dimension only).

    >>> reduce_range(torch.tensor([[1., -2.], [3., 4.]]), "channel")
    (tensor([-2.,  3.]), tensor([1., 4.]))
    """
    x = x.detach().float()
    if x.numel() == 0:
        raise QuantError(f"cannot observe an empty tensor of shape {tuple(x.shape)}")
    if granularity == "tensor":
        return x.amin(), x.amax()
    if granularity == "channel":
        if x.dim() == 0:
            raise QuantError("channel-wise observation needs at least a 1-D tensor")
        axis = ch_axis % x.dim()
        xc = x.movedim(axis, 0).reshape(x.shape[axis], -1)
        return xc.amin(dim=1), xc.amax(dim=1)
    if granularity == "token":
        if x.dim() < 2:
            raise QuantError(f"token-wise observation needs [..., tokens, features], got shape "
                             f"{tuple(x.shape)}")
        return x.amin(dim=-1, keepdim=True), x.amax(dim=-1, keepdim=True)
    raise QuantError(f"unknown granularity {granularity!r} (expected one of {GRANULARITIES})")


def qparams_from_range(min_val: Tensor, max_val: Tensor, qmin: int, qmax: int,
                       symmetric: bool) -> tuple[Tensor, Tensor]:
    """Turn a real range into ``(scale float32, zero_point int64)`` (same shapes as the range).

    Symmetric: ``scale = max(|min|, |max|) / qmax``, ``z = 0`` (signed: ``+-amax`` map to
    ``+-qmax``; unsigned: ``[0, amax]`` maps to ``[0, qmax]``, negatives clamp to 0).
    Asymmetric (the range is first widened to contain 0, so that real 0 is exact):
    ``scale = (max' - min') / (qmax - qmin)``, ``z = clamp(qmin - round_half_even(min' / scale),
    qmin, qmax)``. A zero range gives ``scale = eps`` (float32 machine epsilon, as ``torch.ao``),
    so an all-zero tensor still quantizes to 0. A NaN/inf range gives a NaN/inf scale, which the
    quantizer rejects with an error naming itself.

    >>> qparams_from_range(torch.tensor(-1.0), torch.tensor(2.54), -128, 127, True)
    (tensor(0.0200), tensor(0))
    >>> qparams_from_range(torch.tensor(-1.0), torch.tensor(3.0), 0, 255, False)[1]
    tensor(64)
    """
    eps = torch.finfo(torch.float32).eps
    min_val = min_val.float()
    max_val = max_val.float()
    if symmetric:
        amax = torch.maximum(min_val.abs(), max_val.abs())
        scale = amax / float(qmax)
        scale = torch.where(scale == 0, torch.full_like(scale, eps), scale)
        return scale, torch.zeros_like(scale, dtype=torch.int64)
    lo = torch.clamp(min_val, max=0.0)
    hi = torch.clamp(max_val, min=0.0)
    scale = (hi - lo) / float(qmax - qmin)
    scale = torch.where(scale == 0, torch.full_like(scale, eps), scale)
    zp = qmin - torch.round(lo / scale)
    zp = torch.nan_to_num(zp, nan=0.0, posinf=qmax, neginf=qmin)
    zp = torch.clamp(zp, qmin, qmax).to(torch.int64)
    return scale, zp


class MinMaxObserver(nn.Module):
    """Running min/max range observer (tensor-, channel- or token-wise).

    ``forward(x)`` records the range of ``x`` and returns ``x`` unchanged. Running update
    (tensor/channel): ``min_t = min(min_{t-1}, min(x_t))`` without momentum, or
    ``min_t = min_{t-1} + momentum * (min(x_t) - min_{t-1})`` with it (same for max). Token-wise
    ranges are per call (see the module docstring). ``calculate_qparams`` applies
    :func:`qparams_from_range`.

    Args:
        granularity: ``"tensor"``, ``"channel"`` or ``"token"``.
        ch_axis: channel axis for ``"channel"``.
        momentum: ``None`` (running extremes) or EMA constant in ``(0, 1]``; not for tokens.
    """

    def __init__(self, granularity: str = "tensor", ch_axis: int = 0,
                 momentum: float | None = None) -> None:
        super().__init__()
        if granularity not in GRANULARITIES:
            raise QuantError(f"MinMaxObserver: unknown granularity {granularity!r} "
                             f"(expected one of {GRANULARITIES})")
        if momentum is not None and not 0.0 < float(momentum) <= 1.0:
            raise QuantError(f"MinMaxObserver: momentum must be in (0, 1], got {momentum!r}")
        if momentum is not None and granularity == "token":
            raise QuantError("MinMaxObserver: token-wise ranges are per call; momentum does not "
                             "apply")
        self.granularity = granularity
        self.ch_axis = int(ch_axis)
        self.momentum = None if momentum is None else float(momentum)
        self.register_buffer("min_val", torch.tensor(float("inf")))
        self.register_buffer("max_val", torch.tensor(float("-inf")))
        self.register_buffer("num_obs", torch.tensor(0, dtype=torch.int64))

    @property
    def initialized(self) -> bool:
        """True after at least one observation."""
        return int(self.num_obs) > 0

    def reset(self) -> None:
        """Forget every statistic."""
        self.min_val = torch.tensor(float("inf"), device=self.min_val.device)
        self.max_val = torch.tensor(float("-inf"), device=self.max_val.device)
        self.num_obs.zero_()

    def forward(self, x: Tensor) -> Tensor:
        lo, hi = reduce_range(x, self.granularity, self.ch_axis)
        if (self.granularity == "channel" and self.initialized
                and self.min_val.shape != lo.shape):
            raise QuantError(f"MinMaxObserver: channel count changed from "
                             f"{tuple(self.min_val.shape)} to {tuple(lo.shape)}")
        if self.granularity == "token" or not self.initialized:
            self.min_val, self.max_val = lo.clone(), hi.clone()
        elif self.momentum is None:
            self.min_val = torch.minimum(self.min_val, lo)
            self.max_val = torch.maximum(self.max_val, hi)
        else:
            c = self.momentum
            self.min_val = self.min_val + c * (lo - self.min_val)
            self.max_val = self.max_val + c * (hi - self.max_val)
        self.num_obs += 1
        return x

    def calculate_qparams(self, qmin: int, qmax: int, symmetric: bool) -> tuple[Tensor, Tensor]:
        """``(scale, zero_point)`` of the recorded range (see :func:`qparams_from_range`)."""
        if not self.initialized:
            raise QuantError("MinMaxObserver: no statistics yet (observe a tensor first)")
        return qparams_from_range(self.min_val, self.max_val, qmin, qmax, symmetric)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        # Ranges are created lazily with the data's shape; adopt the saved shapes.
        for name in ("min_val", "max_val"):
            key = prefix + name
            if key in state_dict:
                setattr(self, name, torch.empty_like(state_dict[key]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        m = "" if self.momentum is None else f", momentum={self.momentum}"
        return f"granularity={self.granularity}, ch_axis={self.ch_axis}{m}"
