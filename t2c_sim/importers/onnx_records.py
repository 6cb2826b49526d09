"""Integer layer records from the formats and integers an ONNX graph holds.

The float -> integer step of an imported model (the ``fuse`` of a runtime-quantized graph): the
weights, the int32 bias and the zero points are already integers in the file; only the float32
scales become ``(M0, sh)``, once, here. ``rounding`` decides how:

- ``ort_fp32`` (the default; docs/interop.md): what ONNX Runtime's integer kernels compute. MAC
  layers (QLinearConv, QLinearMatMul, QGemm): ``profile_params("ort_fp32", s_x, s_w, s_y)``;
  average pools: :func:`~t2c_sim.rounding_profiles.ort_pool_params`; the residual add:
  :func:`~t2c_sim.rounding_profiles.ort_add_params` (QLinearAdd);
- a section-2 mode (``half_even``, ...): what the fuse step would make of the same scales
  (``quantize_multiplier`` of the float64 ratio; the add's shared shift,
  ``quantize_multipliers_shared``), which the RTL requantizer runs.

MAC layers (SPEC section 2), with ``W`` the int8 weights in ONNX layout and ``B`` the int32 bias:
``W_q = reduction_order(W, M)`` (a linear after a flatten of ``[B, C, H, W]`` gets its columns in
``(h, w, c)`` order), ``bias_eff = B - z_x * sum_k W_q`` (ONNX Runtime adds ``B`` to
``sum (x - z_x) * W`` in int32, which is the same modulo 2^32).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from t2c_sim.config import OpKind, RoundMode, RoundProfile, qrange
from t2c_sim.errors import NumericsError, OnnxError
from t2c_sim.layout import hwc_perm, reduction_order
from t2c_sim.numerics import quantize_multiplier, quantize_multipliers_shared
from t2c_sim.record import LayerRecord
from t2c_sim.rounding_profiles import ort_add_params, ort_pool_params, profile_params

__all__ = ["QFmt", "Rounding", "clamp_bounds", "mac_record", "add_record", "pool_record",
           "maxpool_record", "flatten_record", "worst_case_acc"]

log = logging.getLogger(__name__)

Rounding = RoundMode | RoundProfile
ACC_BITS = 32  # ONNX Runtime accumulates in int32


@dataclass(frozen=True)
class QFmt:
    """An 8-bit quantized tensor format: real value ``scale * (q - zp)``, ``scale`` a float32."""

    scale: float
    zp: int
    signed: bool

    @property
    def bits(self) -> int:
        return 8

    @property
    def qmin(self) -> int:
        return qrange(8, self.signed)[0]

    @property
    def qmax(self) -> int:
        return qrange(8, self.signed)[1]

    def same(self, other: QFmt) -> bool:
        """The same integers mean the same reals (bitwise-equal float32 scale, same zp/type)."""
        return (np.float32(self.scale) == np.float32(other.scale) and self.zp == other.zp
                and self.signed == other.signed)

    def quantize_f32(self, v: float) -> int:
        """ONNX Runtime's QuantizeLinear of one float: ``clamp(rint_even(f32(v) / f32(s)) + zp)``."""
        q = np.rint(np.float32(v) / np.float32(self.scale))
        return int(min(max(float(q) + self.zp, self.qmin), self.qmax))

    def json(self) -> dict[str, Any]:
        return {"scale": float(self.scale), "zero_point": self.zp, "signed": self.signed}


def clamp_bounds(y: QFmt, lo_f: float | None, hi_f: float | None) -> tuple[int, int]:
    """``(lo, hi)``: the output range tightened by a folded Relu/Clip with float bounds.

    ``Q(clip(v, a, b)) = clamp(Q(v), Q(a), Q(b))`` because QuantizeLinear is monotonic, so a
    ReLU (``a = 0``) gives ``lo = max(qmin, z_y)`` and a Clip gives ``Q(a)``, ``Q(b)``.
    """
    lo, hi = y.qmin, y.qmax
    if lo_f is not None:
        lo = max(lo, y.quantize_f32(lo_f))
    if hi_f is not None:
        hi = min(hi, y.quantize_f32(hi_f))
    return lo, hi


def worst_case_acc(bias_eff: np.ndarray, w_q: np.ndarray, x_max: int) -> int:
    """``max_c (|bias_eff[c]| + sum_k |W_q[c, k]| * x_max)`` as an exact Python int."""
    wabs = np.abs(w_q).sum(axis=1).astype(object) * x_max
    return int(np.max(np.abs(bias_eff).astype(object) + wabs)) if w_q.size else 0


def _multipliers(rounding: Rounding, what: str, s_x: float, s_w: np.ndarray, s_y: float,
                 layer: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        if rounding is RoundProfile.ORT_FP32:
            return profile_params(rounding, s_x, s_w, s_y)
        m = np.float64(np.float32(s_x)) * s_w.astype(np.float32).astype(np.float64) \
            / np.float64(np.float32(s_y))
        return quantize_multiplier(m)
    except NumericsError as e:
        raise OnnxError(f"{what}: {e.detail}", layer=layer) from None


def _formats(x: QFmt, y: QFmt, rounding: Rounding) -> dict[str, Any]:
    return dict(a_bits=8, a_signed=x.signed, y_bits=8, y_signed=y.signed, acc_bits=ACC_BITS,
                mult_bits=32, z_x=x.zp, z_y=y.zp, mode=rounding)


def mac_record(name: str, *, conv: bool, x: QFmt, x_shape: tuple[int, ...], layout: str,
               chw: tuple[int, int, int] | None, w: np.ndarray, s_w: np.ndarray,
               bias: np.ndarray | None, y: QFmt, bounds: tuple[int, int], m: int,
               rounding: Rounding, inputs: tuple[str, ...], attrs: dict[str, Any],
               meta: dict[str, Any]) -> LayerRecord:
    """A linear or conv2d record (dense ``n = m``; the N:M step sets ``n`` later).

    ``w``: conv ``[C_out, C_in/groups, KH, KW]``, linear ``[C_out, C_in]`` (int8, zp 0);
    ``s_w``: float32 ``[C_out]``; ``bias``: int32 ``[C_out]`` or ``None``; ``attrs``: conv
    ``stride``, ``padding``, ``dilation``, ``groups``.
    """
    w = np.asarray(w, dtype=np.int64)
    if not conv and layout == "flat_chw":
        w = w[:, hwc_perm(*chw)]                    # ONNX (c, h, w) -> integer (h, w, c) order
    w_q = reduction_order(w, m)
    b = np.zeros(w.shape[0], dtype=np.int64) if bias is None else np.asarray(bias, np.int64)
    bias_eff = b - x.zp * w_q.sum(axis=1)
    M0, sh = _multipliers(rounding, "requantizer", x.scale, s_w, y.scale, name)
    worst = worst_case_acc(bias_eff, w_q, max(-x.qmin, x.qmax, abs(x.zp)))
    wrap_ok = worst > (1 << (ACC_BITS - 1)) - 1
    if wrap_ok:
        log.warning("layer %s: worst-case |acc| = %d exceeds int32; the int32 accumulator wraps "
                    "(as ONNX Runtime's does)", name, worst)
    kw: dict[str, Any] = dict(c_in=int(w.shape[1]) * attrs.get("groups", 1) if conv else int(w.shape[1]),
                              c_out=int(w.shape[0]))
    if conv:
        kw.update(kh=int(w.shape[2]), kw=int(w.shape[3]), stride=attrs["stride"],
                  padding=attrs["padding"], dilation=attrs["dilation"], groups=attrs["groups"],
                  h=int(x_shape[2]), w=int(x_shape[3]))
    return LayerRecord(name=name, op=OpKind.CONV2D if conv else OpKind.LINEAR, inputs=inputs,
                       **_formats(x, y, rounding), w_bits=8, n=m, m=m, lo=bounds[0], hi=bounds[1],
                       w_q=w_q, bias_eff=bias_eff, M0=M0, sh=sh, wrap_ok=wrap_ok, **kw,
                       meta={**meta, "s_x": float(x.scale), "s_w": s_w.astype(np.float64).tolist(),
                             "s_y": float(y.scale), "layout": layout,
                             "chw": list(chw) if chw else None, "worst_acc": worst})


def add_record(name: str, *, a: QFmt, b: QFmt, y: QFmt, shape: tuple[int, ...], layout: str,
               bounds: tuple[int, int], rounding: Rounding, inputs: tuple[str, str],
               meta: dict[str, Any]) -> LayerRecord:
    """A residual add of two quantized tensors of one shape and integer type."""
    if a.signed != b.signed:
        raise OnnxError("the two inputs of an add must both be int8 or both uint8", layer=name)
    try:
        if rounding is RoundProfile.ORT_FP32:
            M0, sh = ort_add_params(a.scale, b.scale, y.scale)
        else:
            ms, s = quantize_multipliers_shared([float(np.float32(a.scale)) / float(np.float32(y.scale)),
                                                 float(np.float32(b.scale)) / float(np.float32(y.scale))])
            M0, sh = np.array(ms, dtype=np.int64), np.array([s], dtype=np.int64)
    except NumericsError as e:
        raise OnnxError(f"add multipliers: {e.detail}", layer=name) from None
    c = shape[1] if layout == "nhwc" else shape[-1]
    hw = shape[2:4] if layout == "nhwc" else (0, 0)
    return LayerRecord(name=name, op=OpKind.ADD, inputs=inputs, **_formats(a, y, rounding),
                       z_b=b.zp, c_in=c, c_out=c, h=hw[0], w=hw[1], lo=bounds[0], hi=bounds[1],
                       M0=M0, sh=sh, meta={**meta, "s_x": float(a.scale), "s_b": float(b.scale),
                                           "s_y": float(y.scale), "layout": layout})


def pool_record(name: str, *, op: OpKind, x: QFmt, y: QFmt, shape: tuple[int, ...],
                kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                bounds: tuple[int, int], rounding: Rounding, inputs: tuple[str, ...],
                meta: dict[str, Any]) -> LayerRecord:
    """An average pool (``count_include_pad``) or global average pool record."""
    window = kernel[0] * kernel[1]
    try:
        if rounding is RoundProfile.ORT_FP32:
            M0, sh = ort_pool_params(x.scale, y.scale, window)
        else:
            M0, sh = quantize_multiplier(np.array([float(np.float32(x.scale)) / (
                float(np.float32(y.scale)) * window)]))
    except NumericsError as e:
        raise OnnxError(f"pool multiplier: {e.detail}", layer=name) from None
    return LayerRecord(name=name, op=op, inputs=inputs, **_formats(x, y, rounding), c_in=shape[1],
                       c_out=shape[1], kh=kernel[0], kw=kernel[1], stride=stride, padding=padding,
                       h=shape[2], w=shape[3], lo=bounds[0], hi=bounds[1], M0=M0, sh=sh,
                       meta={**meta, "s_x": float(x.scale), "s_y": float(y.scale), "layout": "nhwc"})


def maxpool_record(name: str, *, x: QFmt, shape: tuple[int, ...], kernel: tuple[int, int],
                   stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int],
                   inputs: tuple[str, ...], meta: dict[str, Any]) -> LayerRecord:
    """A max pool record (input and output share the format)."""
    return LayerRecord(name=name, op=OpKind.MAXPOOL, inputs=inputs, a_bits=8, a_signed=x.signed,
                       y_bits=8, y_signed=x.signed, z_x=x.zp, z_y=x.zp, c_in=shape[1],
                       c_out=shape[1], kh=kernel[0], kw=kernel[1], stride=stride, padding=padding,
                       dilation=dilation, h=shape[2], w=shape[3], lo=x.qmin, hi=x.qmax,
                       meta={**meta, "s_x": float(x.scale), "s_y": float(x.scale), "layout": "nhwc"})


def flatten_record(name: str, *, x: QFmt, shape: tuple[int, ...], inputs: tuple[str, ...],
                   meta: dict[str, Any]) -> LayerRecord:
    """A flatten of a channel-last ``[B, H, W, C]`` tensor to ``[B, H*W*C]`` in ``(h, w, c)`` order."""
    c, h, w = shape[1], shape[2], shape[3]
    return LayerRecord(name=name, op=OpKind.FLATTEN, inputs=inputs, a_bits=8, a_signed=x.signed,
                       y_bits=8, y_signed=x.signed, z_x=x.zp, z_y=x.zp, c_in=c, c_out=c, h=h, w=w,
                       lo=x.qmin, hi=x.qmax,
                       meta={**meta, "s_x": float(x.scale), "s_y": float(x.scale),
                             "layout": "flat_chw", "chw": [c, h, w]})
