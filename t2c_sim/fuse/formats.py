"""Integer formats of quantized tensors as the fuse step reads them off fake-quant quantizers,
and the record parameters that follow from them.

A :class:`QFormat` is ``(scale, zero_point, spec)`` with ``spec`` a
:class:`~t2c_sim.config.QuantSpec` (bits, signed; the one owner of ``qmin``/``qmax``), taken
once from a quantizer module (``scale``, ``zero_point`` buffers, ``qmin``/``qmax``
properties). Token-wise quantizers give one scale per row (``scale.reshape(-1)``, ``P`` rows);
their zero point must be one integer for every row (symmetric), because a record holds a single
``z``. From formats: the common record fields (:func:`record_formats`), the clamp bounds with a
fused ReLU/ReLU6 (:func:`clamp_bounds`) and the integer multipliers (:func:`multipliers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from t2c_sim.config import FuseOptions, QuantSpec
from t2c_sim.errors import ConfigError, FuseError, NumericsError
from t2c_sim.numerics import quantize_multiplier, relu_bounds, round_half_even_float
from t2c_sim.quant.transformer_params import quantize_multiplier_vec

__all__ = ["QFormat", "TensorVal", "qformat", "same_format", "spec_of", "record_formats",
           "clamp_bounds", "multipliers"]


def spec_of(q: nn.Module, name: str) -> QuantSpec:
    """The :class:`QuantSpec` of quantizer ``q`` from its ``[qmin, qmax]`` (a full b-bit range)."""
    try:
        return QuantSpec.from_range(int(q.qmin), int(q.qmax))
    except ConfigError as e:
        raise FuseError(f"quantizer '{name}': {e.detail}") from None


@dataclass(frozen=True)
class QFormat:
    """Integer format of one tensor: real value ``scale * (q - zero_point)``.

    ``scale`` is float64 ``[]`` (per tensor) or ``[P]`` (token-wise, one per row), ``source``
    the qualified name of the quantizer it was read from.
    """

    scale: np.ndarray
    zero_point: int
    spec: QuantSpec
    source: str

    @property
    def tokenwise(self) -> bool:
        return self.scale.ndim == 1

    @property
    def bits(self) -> int:
        return self.spec.bits

    @property
    def signed(self) -> bool:
        return self.spec.signed

    @property
    def qmin(self) -> int:
        return self.spec.qmin

    @property
    def qmax(self) -> int:
        return self.spec.qmax

    @property
    def max_abs(self) -> int:
        """``max |q|`` over the integer range (worst-case input magnitude)."""
        return self.spec.max_abs

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
    spec = spec_of(q, name)
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
    return QFormat(scale, int(zp[0]), spec, name)


def same_format(a: QFormat, b: QFormat) -> bool:
    """Whether two formats describe the same integers (bitwise-equal scales)."""
    return (a.spec, a.zero_point) == (b.spec, b.zero_point) and (
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


# ---- record parameters from formats --------------------------------------------------------
def record_formats(x: QFormat, y: QFormat, opts: FuseOptions) -> dict[str, Any]:
    """The record fields every integer layer takes from its input/output formats and options."""
    return dict(a_bits=x.bits, a_signed=x.signed, y_bits=y.bits, y_signed=y.signed,
                acc_bits=opts.acc_bits, mult_bits=opts.mult_bits, z_x=x.zero_point,
                z_y=y.zero_point, mode=opts.mode, wrap_ok=opts.wrap_ok)


def clamp_bounds(y: QFormat, act: str | None, layer: str) -> tuple[int, int]:
    """``(lo, hi)`` of the output clamp: the output range, raised/lowered by a fused activation.

    ReLU6's upper bound is ``z_y + round_half_even(6 / s_y)`` (:func:`numerics.relu_bounds`).
    """
    six_q = None
    if act == "relu6":
        if y.tokenwise:
            raise FuseError("relu6 with a token-wise output scale is not supported", layer=layer)
        six_q = int(round_half_even_float(6.0 / float(y.scale)))
    return relu_bounds(y.bits, y.signed, y.zero_point, act, six_q)


def multipliers(m: np.ndarray, opts: FuseOptions, layer: str) -> tuple[np.ndarray, np.ndarray]:
    """``(M0, sh)`` of the real multipliers ``m`` (:func:`numerics.quantize_multiplier`; many of
    them, e.g. one per row and channel of a token-wise layer, by its vectorized twin
    :func:`~t2c_sim.quant.transformer_params.quantize_multiplier_vec`: the same integers)."""
    try:
        a = np.asarray(m, dtype=np.float64)
        if a.size > 64:
            m0, sh = quantize_multiplier_vec(a.reshape(-1), opts.mult_bits, opts.shift_max)
            return m0.reshape(a.shape), sh.reshape(a.shape)
        return quantize_multiplier(m, opts.mult_bits, opts.shift_max)
    except NumericsError as e:
        raise e.recast(FuseError, layer=layer) from None
