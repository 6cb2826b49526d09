"""Base fake-quantizer: uniform affine quantization with half-to-even rounding (SPEC section 1).

Every quantizer in :mod:`t2c_sim.quant` derives from :class:`Quantizer` and shares:

- ``q = clamp(round_half_even(x / scale) + z, qmin, qmax)``   (:meth:`Quantizer.quantize`, int64)
- ``x_hat = scale * (q - z)``                                  (:meth:`Quantizer.dequantize`)
- ``forward(x) = x_hat`` with the method's gradient (here: straight-through for the rounding,
  zero outside the clamp range).

``qmin, qmax`` are ``[-2^(b-1), 2^(b-1)-1]`` (signed) or ``[0, 2^b-1]`` (unsigned). Weights are
signed and symmetric (``z = 0``), so a pruned weight is 0 both as an integer and a real number.

Granularity: ``"tensor"`` (``scale`` shape ``[]``), ``"channel"`` (``[C]``, broadcast along
``ch_axis``), ``"token"`` (dynamic: computed from each input per ``(batch, token)`` row of
``[..., tokens, features]``; the last one is kept in the buffers, shape ``x.shape[:-1] + (1,)``).

Calibration: while ``observing`` is True, :meth:`forward` and :meth:`quantize` first feed the
input to the range observer and recompute ``scale``/``zero_point``; with ``observing = False``
the parameters are frozen. Using an uncalibrated (never observed) tensor/channel quantizer is an
error naming the quantizer (its ``label``; the layer wrappers set e.g. ``"conv1.wq"``).
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from t2c_sim.config import qrange
from t2c_sim.errors import QuantError
from t2c_sim.quant.observers import (
    GRANULARITIES,
    MinMaxObserver,
    qparams_from_range,
    reduce_range,
)

__all__ = ["Quantizer", "round_ste", "fake_quantize", "check_quant_args"]

log = logging.getLogger(__name__)


def round_ste(x: Tensor) -> Tensor:
    """``round_half_even(x)`` in the forward pass, identity gradient (straight-through)."""
    return x + (torch.round(x) - x).detach()


def fake_quantize(x: Tensor, scale: Tensor, zero_point: Tensor, qmin: int, qmax: int) -> Tensor:
    """``x_out = (clamp(round_half_even(x / scale) + z, qmin, qmax) - z) * scale`` with STE.

    Gradient w.r.t. ``x``: 1 where ``qmin <= round(x/s) + z <= qmax``, else 0. Gradient w.r.t.
    ``scale`` (if it requires grad): ``round(x/s) - x/s`` where ``round(x/s) + z`` is inside the
    range, ``qmin - z`` or ``qmax - z`` where it is clamped (LSQ itself clips before rounding,
    see :func:`t2c_sim.quant.lsq.lsq_fake_quantize`).

    >>> fake_quantize(torch.tensor([0.3, 2.5, 9.0]), torch.tensor(1.0), torch.tensor(0), -4, 3)
    tensor([0., 2., 3.])
    """
    q = torch.clamp(round_ste(x / scale) + zero_point, qmin, qmax)
    return (q - zero_point) * scale


def check_quant_args(who: str, nbit: int, granularity: str) -> None:
    """Raise :class:`QuantError` naming ``who`` for a bad ``nbit`` or ``granularity``."""
    if not isinstance(nbit, int) or isinstance(nbit, bool) or not 2 <= nbit <= 16:
        raise QuantError(f"{who}: nbit must be an int in 2..16, got {nbit!r}")
    if granularity not in GRANULARITIES:
        raise QuantError(f"{who}: unknown granularity {granularity!r} "
                         f"(expected one of {', '.join(GRANULARITIES)})")


class Quantizer(nn.Module):
    """Uniform fake-quantizer: ``x_out = (clamp(round_half_even(x/s) + z, qmin, qmax) - z) * s``.

    Ranges come from ``observer`` (default :class:`~t2c_sim.quant.observers.MinMaxObserver` of
    the same granularity). Symmetric: ``s = max|x| / qmax``, ``z = 0``; asymmetric:
    ``s = (max - min) / (qmax - qmin)``, ``z = qmin - round_half_even(min / s)`` (range widened
    to contain 0). Gradient: straight-through for the rounding, 0 outside the clamp range.

    Args:
        nbit: bit width, 2..16.
        unsigned: integer range ``[0, 2^b-1]`` instead of ``[-2^(b-1), 2^(b-1)-1]``.
        granularity: ``"tensor"``, ``"channel"`` or ``"token"``.
        ch_axis: channel axis for ``"channel"`` (0 = output channel of a weight).
        symmetric: ``z = 0``; default ``not unsigned`` (signed -> symmetric).
        observer: a range observer with ``forward(x)`` and ``calculate_qparams(qmin, qmax,
            symmetric)``; default a :class:`MinMaxObserver`.

    Example:
        >>> q = Quantizer(nbit=4)
        >>> q(torch.tensor([-1.0, 0.1, 0.7]))            # s = 1/7
        tensor([-1.0000,  0.1429,  0.7143])
        >>> q.quantize(torch.tensor([-1.0, 0.1, 0.7])).tolist()
        [-7, 1, 5]
    """

    def __init__(self, nbit: int = 8, unsigned: bool = False, granularity: str = "tensor",
                 ch_axis: int = 0, symmetric: bool | None = None,
                 observer: nn.Module | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        check_quant_args(name, nbit, granularity)
        self.nbit = nbit
        self.unsigned = bool(unsigned)
        self.granularity = granularity
        self.ch_axis = int(ch_axis)
        self.symmetric = (not self.unsigned) if symmetric is None else bool(symmetric)
        if observer is None:
            observer = MinMaxObserver(granularity, ch_axis)
        obs_gran = getattr(observer, "granularity", granularity)
        if obs_gran != granularity:
            raise QuantError(f"{name}: observer granularity {obs_gran!r} differs from the "
                             f"quantizer's {granularity!r}")
        self.observer = observer
        self.observing = True
        self.label = name
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("zero_point", torch.tensor(0, dtype=torch.int64))
        self.register_buffer("calibrated", torch.tensor(False))

    # ------------------------------------------------------------------ ranges
    @property
    def qmin(self) -> int:
        """Smallest integer: ``-2^(b-1)`` signed, ``0`` unsigned."""
        return qrange(self.nbit, not self.unsigned)[0]

    @property
    def qmax(self) -> int:
        """Largest integer: ``2^(b-1)-1`` signed, ``2^b-1`` unsigned."""
        return qrange(self.nbit, not self.unsigned)[1]

    # ------------------------------------------------------------ parameters
    def set_qparams(self, scale: Tensor, zero_point: Tensor) -> None:
        """Install ``scale`` (float32) and ``zero_point`` (int64) after checking them."""
        scale = torch.as_tensor(scale, dtype=torch.float32, device=self.scale.device).detach()
        zero_point = torch.as_tensor(zero_point, device=self.scale.device).to(torch.int64)
        self._check_scale(scale)
        if isinstance(self.scale, nn.Parameter):
            self.scale.data = scale.clone()
        else:
            self.scale = scale.clone()
        self.zero_point = zero_point.clone()
        self.calibrated.fill_(True)

    def observe(self, x: Tensor) -> None:
        """Feed ``x`` to the observer and recompute ``scale``/``zero_point`` from its range."""
        with torch.no_grad():
            self.observer(x.detach())
            s, z = self.observer.calculate_qparams(self.qmin, self.qmax, self.symmetric)
        self.set_qparams(s, z)

    def reset(self) -> None:
        """Forget statistics and parameters (the quantizer must be calibrated again)."""
        if hasattr(self.observer, "reset"):
            self.observer.reset()
        self.calibrated.fill_(False)

    def _check_scale(self, scale: Tensor) -> None:
        if scale.numel() and not bool(torch.all(torch.isfinite(scale) & (scale > 0))):
            bad = scale[~(torch.isfinite(scale) & (scale > 0))].flatten()[0].item()
            raise QuantError(f"{self.label}: invalid scale {bad!r} (scales must be finite and "
                             f"> 0; is the input NaN/inf?)")

    def _token_qparams(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() < 2:
            raise QuantError(f"{self.label}: token-wise quantization needs [..., tokens, "
                             f"features], got shape {tuple(x.shape)}")
        with torch.no_grad():
            lo, hi = reduce_range(x, "token")   # per (batch, token) row, never across rows
            s, z = qparams_from_range(lo, hi, self.qmin, self.qmax, self.symmetric)
        self.set_qparams(s, z)
        return self.scale, self.zero_point

    def _expand(self, t: Tensor, x: Tensor) -> Tensor:
        """Reshape a per-tensor/per-channel parameter so that it broadcasts against ``x``."""
        if self.granularity != "channel" or t.dim() == 0:
            return t
        axis = self.ch_axis % x.dim()
        if t.numel() != x.shape[axis]:
            raise QuantError(f"{self.label}: {t.numel()} channel scales for an input with "
                             f"{x.shape[axis]} channels on axis {axis}")
        shape = [1] * x.dim()
        shape[axis] = -1
        return t.reshape(shape)

    def qparams_for(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(scale, zero_point)`` broadcastable against ``x``, observing ``x`` if ``observing``.

        Token-wise parameters are always computed from ``x`` itself (dynamic).
        """
        if self.granularity == "token":
            return self._token_qparams(x)
        if self.observing:
            self.observe(x)
        if not bool(self.calibrated):
            raise QuantError(f"{self.label}: not calibrated (run forward with observing=True "
                             f"first)")
        self._check_scale(self.scale.detach())
        return self._expand(self.scale, x), self._expand(self.zero_point, x)

    # ------------------------------------------------------------------ paths
    def forward(self, x: Tensor) -> Tensor:
        """Fake-quantize: ``(clamp(round_half_even(x/s) + z, qmin, qmax) - z) * s`` (STE)."""
        s, z = self.qparams_for(x)
        return fake_quantize(x, s, z, self.qmin, self.qmax)

    def quantize(self, x: Tensor) -> Tensor:
        """Integer path: ``clamp(round_half_even(x/s) + z, qmin, qmax)`` as int64."""
        with torch.no_grad():
            s, z = self.qparams_for(x.detach())
            q = torch.clamp(torch.round(x.detach() / s.detach()) + z, self.qmin, self.qmax)
        return q.to(torch.int64)

    def dequantize(self, q: Tensor) -> Tensor:
        """``scale * (q - z)`` (float32) with the current parameters."""
        q = torch.as_tensor(q)
        s = self._expand(self.scale.detach(), q)
        z = self._expand(self.zero_point, q)
        return s * (q - z).to(torch.float32)

    # ------------------------------------------------------------- plumbing
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        # Channel- and token-wise parameters get their shape from the data: adopt the saved one.
        for name in ("scale", "zero_point"):
            key = prefix + name
            cur = getattr(self, name, None)
            if key in state_dict and cur is not None and cur.shape != state_dict[key].shape:
                if isinstance(cur, nn.Parameter):
                    cur.data = torch.empty_like(state_dict[key], dtype=cur.dtype)
                else:
                    setattr(self, name, torch.empty_like(state_dict[key], dtype=cur.dtype))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        sym = "symmetric" if self.symmetric else "asymmetric"
        return (f"nbit={self.nbit}, {'unsigned' if self.unsigned else 'signed'}, {sym}, "
                f"granularity={self.granularity}, observing={self.observing}")
