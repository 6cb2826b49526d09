"""Power-of-two fixed-point quantizer (QSPARSE's ``decimal`` bits, Zhang et al. 2022).

``scale = 2^-d`` with ``d`` "decimal" (fractional) bits, ``z = 0``:
``x_out = clamp(round_half_even(x * 2^d), qmin, qmax) * 2^-d`` (QSPARSE truncates with
``.int()``; here rounding is half-to-even like every other path, SPEC section 1). Gradient:
straight-through inside the range, 0 outside.

Choosing ``d`` (QSPARSE ``arg_decimal_min_mse``): ``d`` in ``range(*decimal_range)`` minimizing
``sum((x - x_out(d))^2)`` over the collected tensors; ties go to the smallest ``d``.
Channel-wise: one ``d`` per channel.

Step counting (QSPARSE ``timeout``): ``n`` = training forwards completed while ``observing``
(evaluation forwards do not count). Forwards with ``n < timeout`` pass ``x`` through unchanged;
the last ``window_size`` of them (and the current one) are kept. The forward with
``n == timeout`` searches ``d`` on that window and already returns quantized values; so the first
``timeout`` training forwards are float. ``timeout = 0`` quantizes from the first training
forward. :meth:`PowerOfTwoQuantizer.calibrate_now` picks ``d`` immediately (post-training use).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from t2c_sim.errors import ConfigError, QuantError
from t2c_sim.quant.base import Quantizer, check_quant_args, fake_quantize
from t2c_sim.sparse.attach import raw_weight

__all__ = ["PowerOfTwoQuantizer", "best_decimal", "quantize"]


def best_decimal(x: Tensor, qmin: int, qmax: int, decimal_range: tuple[int, int] = (0, 20),
                 ch_axis: int | None = None) -> Tensor:
    """MSE-optimal decimal bits ``d`` (``scale = 2^-d``), int64: ``[]`` or ``[C]`` per ``ch_axis``.

    >>> int(best_decimal(torch.tensor([0.3, -0.9]), -8, 7))   # 3 bits: 7/8 and -7/8 closest
    3
    """
    x = x.detach().float()
    lo, hi = decimal_range
    if hi <= lo:
        raise QuantError(f"decimal_range must be (lo, hi) with hi > lo, got {decimal_range}")
    best_err = best_d = None
    for d in range(lo, hi):
        s = torch.tensor(2.0 ** -d)
        err = (fake_quantize(x, s, torch.tensor(0), qmin, qmax) - x).pow(2)
        if ch_axis is None:
            err = err.sum()
        else:
            axis = ch_axis % x.dim()
            err = err.movedim(axis, 0).reshape(x.shape[axis], -1).sum(dim=1)
        if best_err is None:
            best_err, best_d = err, torch.full_like(err, d, dtype=torch.int64)
            continue
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_d = torch.where(better, torch.full_like(best_d, d), best_d)
    return best_d


class PowerOfTwoQuantizer(Quantizer):
    """Power-of-two quantizer: ``x_out = clamp(round(x * 2^d), qmin, qmax) * 2^-d`` (STE).

    Args:
        nbit, unsigned, granularity (``"tensor"`` or ``"channel"``), ch_axis: as
            :class:`Quantizer`; always symmetric (``z = 0``).
        timeout: training forwards that pass through before ``d`` is chosen.
        decimal_range: searched ``d`` values, ``range(lo, hi)`` (QSPARSE default ``(0, 20)``).
        window_size: number of recent inputs (up to and including the timeout one) searched.
    """

    def __init__(self, nbit: int = 8, unsigned: bool = False, granularity: str = "tensor",
                 ch_axis: int = 0, symmetric: bool | None = None, observer=None,
                 timeout: int = 1000, decimal_range: tuple[int, int] = (0, 20),
                 window_size: int = 1) -> None:
        check_quant_args(type(self).__name__, nbit, granularity)
        if granularity == "token":
            raise QuantError(f"{type(self).__name__}: power-of-two scales are tensor- or "
                             f"channel-wise")
        if symmetric is False:
            raise QuantError(f"{type(self).__name__}: power-of-two quantization is symmetric "
                             f"(z = 0)")
        super().__init__(nbit, unsigned, granularity, ch_axis, True, observer)
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0:
            raise QuantError(f"{self.label}: timeout must be an int >= 0, got {timeout!r}")
        if not isinstance(window_size, int) or window_size < 1:
            raise QuantError(f"{self.label}: window_size must be an int >= 1, got "
                             f"{window_size!r}")
        lo, hi = decimal_range
        if not (isinstance(lo, int) and isinstance(hi, int) and hi > lo):
            raise QuantError(f"{self.label}: decimal_range must be two ints lo < hi, got "
                             f"{decimal_range!r}")
        self.timeout, self.window_size = timeout, window_size
        self.decimal_range = (lo, hi)
        self.register_buffer("decimal", torch.tensor(0, dtype=torch.int64))
        self.register_buffer("n_updates", torch.tensor(0, dtype=torch.int64))
        self._window: deque[Tensor] = deque(maxlen=window_size)

    def calibrate_now(self, x: Tensor | None = None) -> None:
        """Choose ``d`` from ``x`` (or the collected window) right away."""
        data = [x.detach()] if x is not None else list(self._window)
        if not data:
            raise QuantError(f"{self.label}: nothing observed to choose decimal bits from")
        if self.granularity == "channel":
            axis = self.ch_axis % data[0].dim()
            cat = torch.cat([t.movedim(axis, 0).reshape(t.shape[axis], -1) for t in data], dim=1)
            d = best_decimal(cat, self.qmin, self.qmax, self.decimal_range, ch_axis=0)
        else:
            cat = torch.cat([t.reshape(-1) for t in data])
            d = best_decimal(cat, self.qmin, self.qmax, self.decimal_range)
        self.decimal = d.to(self.decimal.device)
        self.set_qparams(torch.pow(2.0, -d.float()), torch.zeros_like(d))
        self._window.clear()

    def observe(self, x: Tensor) -> None:
        """Same as :meth:`calibrate_now` on ``x``."""
        self.calibrate_now(x)

    def qparams_for(self, x: Tensor) -> tuple[Tensor, Tensor]:
        # No implicit observation: d is chosen by the timeout logic in forward.
        if not bool(self.calibrated):
            raise QuantError(f"{self.label}: decimal bits not chosen yet "
                             f"({int(self.n_updates)}/{self.timeout} training steps observed)")
        self._check_scale(self.scale)
        return self._expand(self.scale, x), self._expand(self.zero_point, x)

    def step(self, x: Tensor) -> None:
        """Count one training step (while ``observing``); choose ``d`` at ``n == timeout``."""
        if not (self.training and self.observing):
            return
        if not bool(self.calibrated):
            n = int(self.n_updates)
            if n > self.timeout - self.window_size:
                self._window.append(x.detach())
            if n >= self.timeout:
                self.calibrate_now()
        self.n_updates += 1

    def apply_quant(self, x: Tensor) -> Tensor:
        """Fake-quantize with the chosen ``d`` (STE), or pass ``x`` through before that."""
        if not bool(self.calibrated):
            return x
        s, z = self.qparams_for(x)
        return fake_quantize(x, s, z, self.qmin, self.qmax)

    def forward(self, x: Tensor) -> Tensor:
        """Pass-through until ``timeout`` training steps, then power-of-two fake-quant."""
        self.step(x)
        return self.apply_quant(x)

    def reset(self) -> None:
        super().reset()
        self.n_updates.zero_()
        self._window.clear()

    def extra_repr(self) -> str:
        return super().extra_repr() + f", timeout={self.timeout}, decimal_range={self.decimal_range}"


# ---- QSPARSE's quantize(...) wrapper -------------------------------------------------------
class _POTParam(nn.Module):
    """Parametrization ``weight = pot(w)`` (pass-through until the quantizer has chosen ``d``)."""

    def __init__(self, q: PowerOfTwoQuantizer) -> None:
        super().__init__()
        self.q = q

    def forward(self, w: Tensor) -> Tensor:
        return self.q.apply_quant(w)


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
