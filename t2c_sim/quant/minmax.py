"""MinMax fake-quantizers (tensor-, channel- and token-wise) with a straight-through gradient.

``x_out = (clamp(round_half_even(x / s) + z, qmin, qmax) - z) * s`` where ``(s, z)`` come from
the observed range (:func:`t2c_sim.quant.observers.qparams_from_range`):

- symmetric: ``s = max(|min|, |max|) / qmax``, ``z = 0``
- asymmetric: ``s = (max - min) / (qmax - qmin)``, ``z = qmin - round_half_even(min / s)``

Tensor-wise ranges are running min/max (or an EMA with ``momentum``); channel-wise ranges are
per index of ``ch_axis`` (weights: output channels); token-wise ranges are computed from every
input per ``(batch, token)`` row (dynamic, no running state).
"""

from __future__ import annotations

from t2c_sim.quant.base import Quantizer, check_quant_args
from t2c_sim.quant.observers import MinMaxObserver

__all__ = ["MinMaxQuantizer", "MinMaxChannelQuantizer", "MinMaxTokenQuantizer"]


class MinMaxQuantizer(Quantizer):
    """MinMax range fake-quantizer: ``x_out = (clamp(round(x/s) + z, qmin, qmax) - z) * s``.

    Rounding is half-to-even; the gradient w.r.t. ``x`` is straight-through inside the clamp
    range and 0 outside; ``s`` and ``z`` are buffers (no gradient).

    Args:
        nbit, unsigned, granularity, ch_axis, symmetric: as :class:`Quantizer`.
        momentum: ``None`` for running extremes, or an EMA constant in ``(0, 1]``
            (``min_t = min_{t-1} + momentum * (min(x_t) - min_{t-1})``).

    Example:
        >>> q = MinMaxQuantizer(nbit=8, unsigned=True)          # asymmetric, z from the range
        >>> _ = q(torch.tensor([-1.0, 3.0]))
        >>> float(q.scale), int(q.zero_point)                  # 4/255, 0 - round(-1/s) = 64
        (0.01568627543747425, 64)
    """

    def __init__(self, nbit: int = 8, unsigned: bool = False, granularity: str = "tensor",
                 ch_axis: int = 0, symmetric: bool | None = None, observer=None,
                 momentum: float | None = None) -> None:
        check_quant_args(type(self).__name__, nbit, granularity)
        if observer is None:
            observer = MinMaxObserver(granularity, ch_axis,
                                      None if granularity == "token" else momentum)
        super().__init__(nbit, unsigned, granularity, ch_axis, symmetric, observer)


class MinMaxChannelQuantizer(MinMaxQuantizer):
    """Channel-wise MinMax (default: signed symmetric, ``ch_axis = 0``: weight output channels).

    ``s[c] = max|W[c, ...]| / qmax``, ``z[c] = 0``; ``x_out = clamp(round(W/s[c]), qmin, qmax) * s[c]``.
    """

    def __init__(self, nbit: int = 8, unsigned: bool = False, granularity: str = "channel",
                 ch_axis: int = 0, symmetric: bool | None = None, observer=None,
                 momentum: float | None = None) -> None:
        super().__init__(nbit, unsigned, granularity, ch_axis, symmetric, observer, momentum)


class MinMaxTokenQuantizer(MinMaxQuantizer):
    """Token-wise MinMax: one ``(s, z)`` per ``(batch, token)`` row of ``[..., tokens, features]``.

    ``s[b, t] = (max_f x[b, t, f] - min_f x[b, t, f]) / (qmax - qmin)`` (asymmetric) or
    ``max_f |x[b, t, f]| / qmax`` (symmetric), computed from every input (dynamic).
    """

    def __init__(self, nbit: int = 8, unsigned: bool = False, granularity: str = "token",
                 ch_axis: int = 0, symmetric: bool | None = None, observer=None,
                 momentum: float | None = None) -> None:
        super().__init__(nbit, unsigned, granularity, ch_axis, symmetric, observer, momentum)
