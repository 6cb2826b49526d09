"""Records of the transformer ops (docs/numerics.md sections 7-9): activation x activation
matmul, softmax, LayerNorm, GELU.

Each builder takes the fuser (:mod:`t2c_sim.fuse.graph`) and one fx node whose module is the
fake-quant wrapper of :mod:`t2c_sim.quant.nonlinear`; the integer constants come from the
fuse-time functions of :mod:`t2c_sim.quant.transformer_params` on the formats the graph gives
(input: the op's own input quantizer; output: its consumers' quantizer), the only place where
their floats become integers:

- matmul: ``m = alpha * s_a * s_b / s_y`` -> ``(M0, sh)``, per tensor or per row (token-wise
  ``a`` or output); operand ``b`` is stored as ``[..., C, K]`` (``trans_b``) when that moves
  less data (``k.transpose(-2, -1)`` as written: the key tensor as it comes); the worst-case
  ``|acc| = K max|a - z_a| max|b - z_b|`` must fit ``ACC_BITS`` (else :class:`OverflowRiskError`);
- softmax: the exp table and ``(Mo, sho)`` of its fixed output format (``s_y = 2^-y_bits``);
- LayerNorm: ``G, B, eps_q, sqrt_shift, g_shift`` from gamma, beta, eps (per-row ``G, B`` for a
  token-wise output);
- GELU: the output integer of every input integer (one table per row for a token-wise output).

Token-wise outputs are specific to the fused input (``meta["input_specific"]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import torch.fx as fx
from torch import nn

from t2c_sim.config import FuseOptions, OpKind
from t2c_sim.errors import FuseError, NumericsError, OverflowRiskError
from t2c_sim.fuse.formats import QFormat, TensorVal, clamp_bounds, record_formats
from t2c_sim.quant.graph import fused_activation
from t2c_sim.quant.nonlinear import QGELU, QLayerNorm, QMatMul, QSoftmax
from t2c_sim.quant.transformer_params import (
    gelu_params,
    layernorm_params,
    matmul_params,
    softmax_params,
)
from t2c_sim.record import LayerRecord

__all__ = ["matmul_record", "softmax_record", "layernorm_record", "gelu_record"]


class _Fuser(Protocol):
    mods: Mapping[str, nn.Module]
    opts: FuseOptions

    def operand(self, node: fx.Node, i: int = 0) -> tuple[TensorVal, QFormat, tuple[int, ...]]: ...
    def operand_b(self, node: fx.Node) -> tuple[TensorVal, QFormat, tuple[int, ...], bool]: ...
    def row_format(self, node: fx.Node, layer: str) -> QFormat: ...
    def out_format(self, node: fx.Node) -> QFormat: ...
    def shape(self, node: fx.Node) -> tuple[int, ...]: ...
    def add(self, rec: LayerRecord, node: fx.Node, val: TensorVal) -> None: ...


def _fused(fn: Any, name: str, *args: Any, **kw: Any) -> dict[str, Any]:
    try:
        return fn(*args, **kw)
    except NumericsError as e:
        raise e.recast(FuseError, layer=name) from None


def _per_tensor_input(f: QFormat, name: str, what: str) -> float:
    if f.tokenwise:
        raise FuseError(f"token-wise scales on the input of a {what} (its constants need one input "
                        "scale): use a per-tensor quantizer for it", layer=name)
    return float(f.scale)


def _meta(name: str, fx_: QFormat, fy: QFormat, shp: tuple[int, ...], out: tuple[int, ...],
          **kw: Any) -> dict[str, Any]:
    return dict(module=name, s_x=fx_.scale_json(), s_y=fy.scale_json(), x_quant=fx_.source,
                y_quant=fy.source, layout="plain", torch_in_shape=list(shp),
                torch_out_shape=list(out), input_specific=bool(fy.tokenwise or fx_.tokenwise), **kw)


def _span(f: QFormat) -> int:
    """``max |q - z|`` over the format's integer range."""
    return max(f.qmax - f.zero_point, f.zero_point - f.qmin)


def matmul_record(fz: _Fuser, node: fx.Node, mod: QMatMul) -> None:
    """``a @ b`` (``alpha`` folded): SPEC sections 7-8."""
    name = node.target
    va, fa, sa = fz.operand(node, 0)
    vb, fb, sb, trans_b = fz.operand_b(node)
    out = fz.shape(node)
    if len(sa) < 2 or len(out) != len(sa):
        raise FuseError(f"matmul of shapes {list(sa)} and {list(sb)}: both operands need the same "
                        "leading (batch, head) dims and at least 2 dims", layer=name)
    if fb.tokenwise:
        raise FuseError("token-wise scales on operand b of a matmul (they run along the reduction "
                        "axis of attn @ v, or would need one multiplier per key): use a per-tensor "
                        "quantizer for it", layer=name)
    rows = int(np.prod(out[:-1]))
    k, c = sa[-1], out[-1]
    if fa.tokenwise and fa.scale.size != rows:
        raise FuseError(f"token-wise scales of operand a have {fa.scale.size} rows, the output "
                        f"{rows}", layer=name)
    fy = fz.row_format(node, name)
    worst = k * _span(fa) * _span(fb)
    limit = (1 << (fz.opts.acc_bits - 1)) - 1
    if worst > limit and not fz.opts.wrap_ok:
        raise OverflowRiskError(f"worst-case |acc| = K x max|a - z_a| x max|b - z_b| = {worst} "
                                f"exceeds the {fz.opts.acc_bits}-bit accumulator limit {limit}",
                                layer=name)
    p = _fused(matmul_params, name, fa.scale, fb.scale, fy.scale, alpha=mod.alpha,
               mult_bits=fz.opts.mult_bits, shift_max=fz.opts.shift_max)
    act = fused_activation(node, fz.mods, name)
    lo, hi = clamp_bounds(fy, act, name)
    rec = LayerRecord(name=name, op=OpKind.MATMUL, inputs=(va.record, vb.record),
                      **record_formats(fa, fy, fz.opts), b_bits=fb.bits, b_signed=fb.signed,
                      z_b=fb.zero_point, trans_b=trans_b, c_in=k, c_out=c, lo=lo, hi=hi, **p,
                      meta=_meta(name, fa, fy, sa, out, act=act, alpha=mod.alpha,
                                 s_b=fb.scale_json(), b_quant=fb.source, torch_b_shape=list(sb),
                                 worst_acc=worst))
    fz.add(rec, node, TensorVal(name, node, "plain"))


def softmax_record(fz: _Fuser, node: fx.Node, mod: QSoftmax) -> None:
    """Integer softmax over the last axis into its fixed output format."""
    name = node.target
    val, fx_, shp = fz.operand(node)
    if mod.dim not in (-1, len(shp) - 1):
        raise FuseError(f"softmax over dim {mod.dim} of a {len(shp)}-D tensor; the integer softmax "
                        "runs over the last axis (dim=-1)", layer=name)
    fy = fz.out_format(node)
    if fy.tokenwise or (fy.bits, fy.signed, fy.zero_point) != (mod.y_bits, False, 0) or \
            float(fy.scale) != mod.y_scale:
        raise FuseError(f"softmax output read as {fy.bits}-bit, scale {fy.scale_json()}, zero point "
                        f"{fy.zero_point} ('{fy.source}'); its format is fixed: unsigned "
                        f"{mod.y_bits}-bit, scale {mod.y_scale:g}, zero point 0 (tie the consumer "
                        "to the softmax's oq)", layer=name)
    p = _fused(softmax_params, name, _per_tensor_input(fx_, name, "softmax"), mod.y_scale,
               a_bits=fx_.bits, frac_bits=mod.frac_bits, mult_bits=fz.opts.mult_bits,
               shift_max=fz.opts.shift_max)
    lo, hi = clamp_bounds(fy, None, name)
    rec = LayerRecord(name=name, op=OpKind.SOFTMAX, inputs=(val.record,),
                      **record_formats(fx_, fy, fz.opts), c_in=shp[-1], c_out=shp[-1], lo=lo,
                      hi=hi, **p, meta=_meta(name, fx_, fy, shp, fz.shape(node)))
    fz.add(rec, node, TensorVal(name, node, "plain"))


def layernorm_record(fz: _Fuser, node: fx.Node, mod: QLayerNorm) -> None:
    """Integer LayerNorm over the last axis (exact statistics, isqrt, one rounding)."""
    name = node.target
    val, fx_, shp = fz.operand(node)
    if shp[-1] != mod.c:
        raise FuseError(f"layer norm over {mod.c} channels of an input {list(shp)}", layer=name)
    fy = fz.row_format(node, name)
    p = _fused(layernorm_params, name, _per_tensor_input(fx_, name, "layer norm"),
               mod.weight.detach().double().cpu().numpy(), mod.bias.detach().double().cpu().numpy(),
               mod.eps, fy.scale, a_bits=fx_.bits, a_signed=fx_.signed)
    lo, hi = clamp_bounds(fy, None, name)
    rec = LayerRecord(name=name, op=OpKind.LAYERNORM, inputs=(val.record,),
                      **record_formats(fx_, fy, fz.opts), c_in=mod.c, c_out=mod.c, lo=lo, hi=hi,
                      **p, meta=_meta(name, fx_, fy, shp, fz.shape(node), eps=mod.eps))
    fz.add(rec, node, TensorVal(name, node, "plain"))


def gelu_record(fz: _Fuser, node: fx.Node, mod: QGELU) -> None:
    """GELU as a table of the output integer of every input integer."""
    name = node.target
    val, fx_, shp = fz.operand(node)
    fy = fz.row_format(node, name)
    lo, hi = clamp_bounds(fy, None, name)
    p = _fused(gelu_params, name, _per_tensor_input(fx_, name, "GELU"), fx_.zero_point, fy.scale,
               fy.zero_point, a_bits=fx_.bits, a_signed=fx_.signed, y_bits=fy.bits,
               y_signed=fy.signed, lo=lo, hi=hi, approximate=mod.approximate)
    rec = LayerRecord(name=name, op=OpKind.GELU, inputs=(val.record,),
                      **record_formats(fx_, fy, fz.opts), c_in=shp[-1], c_out=shp[-1], lo=lo,
                      hi=hi, **p, meta=_meta(name, fx_, fy, shp, fz.shape(node),
                                              approximate=mod.approximate))
    fz.add(rec, node, TensorVal(name, node, "plain"))
