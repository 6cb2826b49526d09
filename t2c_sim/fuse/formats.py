"""Integer formats of quantized tensors as the fuse step reads them off fake-quant quantizers.

A :class:`QFormat` is ``(scale, zero_point, bits, signed)`` in float64/int, taken once from a
quantizer module (``scale``, ``zero_point`` buffers, ``qmin``/``qmax`` properties). Token-wise
quantizers give one scale per row (``scale.reshape(-1)``, ``P`` rows); their zero point must be
one integer for every row (symmetric), because a record holds a single ``z``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from t2c_sim.errors import FuseError

__all__ = ["QFormat", "TensorVal", "qformat", "same_format", "bits_of"]


def bits_of(qmin: int, qmax: int, what: str) -> tuple[int, bool]:
    """``(bits, signed)`` of the integer range ``[qmin, qmax]`` (must be a full 2^b range)."""
    n = qmax - qmin + 1
    bits = int(round(math.log2(n))) if n > 0 else 0
    if n <= 1 or (1 << bits) != n or qmin not in (0, -(1 << (bits - 1))):
        raise FuseError(f"{what}: integer range [{qmin}, {qmax}] is not a signed or unsigned "
                        "b-bit range")
    return bits, qmin < 0


@dataclass(frozen=True)
class QFormat:
    """Integer format of one tensor: real value ``scale * (q - zero_point)``.

    ``scale`` is float64 ``[]`` (per tensor) or ``[P]`` (token-wise, one per row), ``source``
    the qualified name of the quantizer it was read from.
    """

    scale: np.ndarray
    zero_point: int
    bits: int
    signed: bool
    source: str

    @property
    def tokenwise(self) -> bool:
        return self.scale.ndim == 1

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def max_abs(self) -> int:
        """``max |q|`` over the integer range (worst-case input magnitude)."""
        return max(abs(self.qmin), abs(self.qmax))

    def scale_json(self) -> float | list[float]:
        return self.scale.tolist()


def _scale_array(q: nn.Module, name: str) -> np.ndarray:
    s = getattr(q, "scale", None)
    if s is None:
        raise FuseError(f"quantizer '{name}': has no scale")
    a = torch.as_tensor(s).detach().to(torch.float64).cpu().numpy()
    if a.size == 0:
        raise FuseError(f"quantizer '{name}': empty scale")
    if not np.all(np.isfinite(a)) or not np.all(a > 0):
        bad = a.ravel()[~(np.isfinite(a.ravel()) & (a.ravel() > 0))][0]
        raise FuseError(f"quantizer '{name}': scale {bad!r} is not finite and > 0 (NaN/inf/zero "
                        "scale; calibrate first?)")
    return a


def qformat(q: nn.Module | None, name: str, *, allow_channel: bool = False) -> QFormat:
    """Read the format of quantizer ``q`` (named ``name`` in errors).

    Per-tensor scales give ``scale[]``; token-wise give ``scale[P]``; channel-wise scales are
    allowed only for weights (``allow_channel``) and come back as ``[C]``.
    """
    if q is None:
        raise FuseError(f"quantizer '{name}': missing")
    if not bool(getattr(q, "calibrated", torch.tensor(True))):
        raise FuseError(f"quantizer '{name}': not calibrated")
    gran = getattr(q, "granularity", "tensor")
    s = _scale_array(q, name)
    zp = torch.as_tensor(q.zero_point).detach().cpu().numpy().astype(np.int64).reshape(-1)
    if np.any(zp != zp[0]):
        raise FuseError(f"quantizer '{name}': zero points differ across rows/channels; a record "
                        "holds one zero point (use a symmetric quantizer)")
    bits, signed = bits_of(int(q.qmin), int(q.qmax), f"quantizer '{name}'")
    if gran == "channel" and not allow_channel:
        raise FuseError(f"quantizer '{name}': channel-wise activation quantization is not "
                        "supported (activations are per tensor or token-wise)")
    if gran == "token":
        scale = s.reshape(-1)
    elif gran == "channel":
        scale = s.reshape(-1)
    else:
        if s.size != 1:
            raise FuseError(f"quantizer '{name}': per-tensor scale has {s.size} elements")
        scale = s.reshape(())
    return QFormat(scale, int(zp[0]), bits, signed, name)


def same_format(a: QFormat, b: QFormat) -> bool:
    """Whether two formats describe the same integers (bitwise-equal scales)."""
    return (a.bits, a.signed, a.zero_point) == (b.bits, b.signed, b.zero_point) and (
        a.scale.shape == b.scale.shape and np.array_equal(a.scale, b.scale))


@dataclass(frozen=True)
class TensorVal:
    """An integer tensor of the fused network: producing record, format source and layout.

    ``layout``: ``"nhwc"`` (a torch ``[B, C, H, W]`` tensor held channel-last), ``"flat_chw"``
    (flattened from such a tensor in ``(h, w, c)`` order; ``chw`` gives ``(C, H, W)``) or
    ``"plain"`` (``[..., C]``, same order as torch).
    """

    record: str
    fmt_node: fx.Node
    layout: str
    chw: tuple[int, int, int] | None = None
