"""Fuse of the MAC layers (QConv2d, QLinear): integer weights, bias, multipliers, overflow check.

Formulas (SPEC section 2; see :mod:`t2c_sim.fuse.graph` for the BN folding order):

- ``W_q = wq.quantize(W * mask)`` (int, signed, ``z_w = 0``), masked again so pruned weights
  are exactly 0, laid out ``[C_out, K]`` in reduction order (:func:`t2c_sim.layout.reduction_order`;
  a linear after a flatten of ``[B, C, H, W]`` gets its columns in ``(h, w, c)`` order,
  :func:`t2c_sim.layout.hwc_perm`);
- ``bias_eff = round_half_even(b / (s_x * s_w)) - z_x * sum_k W_q``;
- ``m = s_x * s_w / s_y`` (float64) -> ``(M0, sh)`` by ``numerics.quantize_multiplier``;
- worst-case ``|acc| = |bias_eff| + sum_k |W_q| * max|x_q|`` vs ``2^(ACC_BITS-1) - 1``.

:func:`mac_record` is a function of the module and the formats the graph walk found for it;
it knows nothing of the walk itself.

Example (linear, one weight): ``s_x = 0.5``, ``s_w = 0.25``, ``s_y = 1``, ``W_q = [[3]]``,
``b = [1.0]``, ``z_x = 2`` -> ``bias_eff = round(1 / 0.125) - 2*3 = 2`` and ``m = 0.125``
-> ``(M0, sh) = (2^31, 34)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from t2c_sim.config import FuseOptions, OpKind
from t2c_sim.errors import FuseError, OverflowRiskError, SparsityError, T2CError
from t2c_sim.fuse.formats import QFormat, TensorVal, clamp_bounds, multipliers, qformat, record_formats
from t2c_sim.layout import hwc_perm, reduction_order
from t2c_sim.numerics import round_half_even_float
from t2c_sim.quant.modules import QConv2d, QLinear
from t2c_sim.record import LayerRecord
from t2c_sim.sparse.nm import check_nm, compress

__all__ = ["mac_record", "integer_weight", "worst_case_acc"]


def integer_weight(mod: QConv2d | QLinear, name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """``(W_q in torch layout (int64), s_w float64 [C_out], w_bits)`` from ``mod.wq``."""
    if mod.wq is None:
        raise FuseError("no weight quantizer", layer=name)
    fmt = qformat(mod.wq, f"{name}.wq", allow_channel=True)
    if fmt.zero_point != 0 or not fmt.signed:
        raise FuseError(f"weights must be signed symmetric (z_w = 0), got z_w={fmt.zero_point}, "
                        f"signed={fmt.signed}", layer=name)
    gran = getattr(mod.wq, "granularity", "tensor")
    if gran == "token" or (gran == "channel" and getattr(mod.wq, "ch_axis", 0) != 0):
        raise FuseError("weight scales must be per tensor or per output channel", layer=name)
    c_out = mod.weight.shape[0]
    s_w = np.broadcast_to(fmt.scale, (c_out,)).astype(np.float64).copy()
    with torch.no_grad():
        try:
            w = mod.wq.quantize(mod.masked_weight())
        except T2CError as e:
            raise e.recast(FuseError, layer=name) from None
        w = (w * (mod.mask != 0).to(w.dtype)).cpu().numpy().astype(np.int64)
    return w, s_w, fmt.bits


def worst_case_acc(bias_eff: np.ndarray, w_q: np.ndarray, x_max: int) -> int:
    """``max (|bias_eff[.., c]| + sum_k |W_q[c, k]| * x_max)`` as an exact Python int.

    ``bias_eff`` is ``[C_out]`` or token-wise ``[P, C_out]``.
    """
    wabs = np.abs(w_q).sum(axis=1).astype(object) * x_max
    b = np.abs(bias_eff).astype(object)
    return int(np.max(b + wabs)) if b.size else 0


def _fold_bn_after_quant(bn: nn.BatchNorm2d, w: np.ndarray, s_w: np.ndarray, b: np.ndarray,
                         name: str, wmin: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = (bn.weight.detach().double() if bn.affine else torch.ones_like(bn.running_var).double())
    g = (g / torch.sqrt(bn.running_var.double() + bn.eps)).cpu().numpy()
    beta = bn.bias.detach().double().cpu().numpy() if bn.affine else np.zeros_like(g)
    mean = bn.running_mean.double().cpu().numpy()
    if np.any(g == 0) or not np.all(np.isfinite(g)):
        raise FuseError("batch norm scale is zero or not finite", layer=name)
    neg = g < 0
    if np.any(w[neg] == wmin):
        raise FuseError(f"negative BN scale flips a weight equal to {wmin}, which does not fit; "
                        "fold BN before quantization (fold_bn: true)", layer=name)
    sign = np.where(neg, -1, 1).astype(np.int64)
    w = w * sign.reshape((-1,) + (1,) * (w.ndim - 1))
    return w, s_w * np.abs(g), (b - mean) * g + beta


def mac_record(name: str, mod: QConv2d | QLinear, val: TensorVal, fmt_x: QFormat,
               x_shape: tuple[int, ...], fmt_y: QFormat, y_shape: tuple[int, ...],
               act: str | None, bn: tuple[str, nn.BatchNorm2d] | None,
               opts: FuseOptions) -> LayerRecord:
    """The conv/linear record of module ``name``.

    Args:
        name: qualified module name (the record's name).
        mod: the wrapper.
        val: the integer tensor it reads (producing record, layout, ``(C, H, W)`` if flattened).
        fmt_x, x_shape: input format and torch shape.
        fmt_y, y_shape: output format and torch shape (after a folded BN).
        act: activation fused into the clamp (``None``, ``"relu"``, ``"relu6"``).
        bn: ``(name, module)`` of a BatchNorm2d right after a conv, folded after quantization.
        opts: accumulator/multiplier widths, rounding, wrap.
    """
    is_conv = isinstance(mod, QConv2d)
    if is_conv and (fmt_x.tokenwise or fmt_y.tokenwise):
        raise FuseError("token-wise activation quantization into a conv is not supported "
                        "(linear layers only)", layer=name)
    if is_conv and val.layout != "nhwc":
        raise FuseError("conv input must be a [B, C, H, W] tensor", layer=name)
    if not is_conv and val.layout == "nhwc":
        raise FuseError("linear on a 4-D activation is not supported (flatten first)", layer=name)
    n, m = getattr(mod, "nm", (1, 1))
    w, s_w, w_bits = integer_weight(mod, name)
    b = (mod.bias.detach().double().cpu().numpy() if mod.bias is not None
         else np.zeros(w.shape[0]))
    if bn is not None:
        w, s_w, b = _fold_bn_after_quant(bn[1], w, s_w, b, name, -(1 << (w_bits - 1)))
    if not is_conv and val.layout == "flat_chw":
        w = w[:, hwc_perm(*val.chw)]                 # torch (c, h, w) -> integer (h, w, c)
    w_q = reduction_order(w, m)
    try:
        check_nm(w_q, n, m, name=f"layer '{name}' weights")
        values, indices = compress(w_q, n, m, name=f"layer '{name}' weights")
    except SparsityError as e:
        raise e.recast(FuseError) from None

    # float -> integer, once: bias, multipliers
    p_rows = int(np.prod(x_shape[:-1])) if not is_conv else 0
    s_x, s_y = fmt_x.scale, fmt_y.scale
    for f, role in ((fmt_x, "input"), (fmt_y, "output")):
        if f.tokenwise and f.scale.size != p_rows:
            raise FuseError(f"token-wise {role} scale has {f.scale.size} rows, the input has "
                            f"{p_rows}", layer=name)
    tok = fmt_x.tokenwise or fmt_y.tokenwise
    sx = s_x.reshape(-1, 1) if fmt_x.tokenwise else s_x
    sy = s_y.reshape(-1, 1) if fmt_y.tokenwise else s_y
    try:
        bias_int = round_half_even_float(b / (sx * s_w))
    except T2CError as e:
        raise FuseError(f"bias: {e}", layer=name) from None
    bias_eff = bias_int - fmt_x.zero_point * w_q.sum(axis=1)
    mult = sx * s_w / sy
    if tok:
        bias_eff = np.broadcast_to(bias_eff, (p_rows, w_q.shape[0])).copy()
        mult = np.broadcast_to(mult, (p_rows, w_q.shape[0])).copy()
    M0, sh = multipliers(mult, opts, name)
    worst = worst_case_acc(bias_eff, w_q, fmt_x.max_abs)
    limit = (1 << (opts.acc_bits - 1)) - 1
    if worst > limit and not opts.wrap_ok:
        raise OverflowRiskError(f"worst-case |acc| = {worst} exceeds the {opts.acc_bits}-bit "
                                f"accumulator limit {limit} (pass wrap_ok=True to accept wrap "
                                "semantics)", layer=name)
    lo, hi = clamp_bounds(fmt_y, act, name)
    kw: dict[str, Any] = dict(c_in=mod.in_channels if is_conv else mod.in_features,
                              c_out=w_q.shape[0])
    if is_conv:
        kw.update(kh=mod.kernel_size[0], kw=mod.kernel_size[1], stride=mod.stride,
                  padding=mod.padding, dilation=mod.dilation, groups=mod.groups,
                  h=x_shape[2], w=x_shape[3])
    return LayerRecord(
        name=name, op=OpKind.CONV2D if is_conv else OpKind.LINEAR, inputs=(val.record,),
        **record_formats(fmt_x, fmt_y, opts), w_bits=w_bits, n=n, m=m, lo=lo, hi=hi, w_q=w_q,
        values=values, indices=indices, bias_eff=bias_eff, M0=M0, sh=sh, **kw,
        meta=dict(module=name, act=act, bn=bn[0] if bn is not None else None,
                  s_x=fmt_x.scale_json(), s_w=s_w.tolist(), s_y=fmt_y.scale_json(),
                  x_quant=fmt_x.source, y_quant=fmt_y.source, layout=val.layout,
                  chw=list(val.chw) if val.chw else None, torch_in_shape=list(x_shape),
                  torch_out_shape=list(y_shape), input_specific=bool(tok), worst_acc=worst))
