"""Records of the integer ops without weights (SPEC section 3, docs/numerics.md sections 3 and 10):
residual add (also of a constant: a position embedding), concat (also after constant tokens: a
class token), average and global average pool, max pool, flatten.

Each builder takes the fuser (the graph walk of :mod:`t2c_sim.fuse.graph`: formats, shapes, the
values computed so far) and one fx node, and adds the record. Formats come from the quantizers
(:mod:`t2c_sim.fuse.formats`); every float scale becomes integers here, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from t2c_sim.config import FuseOptions, OpKind
from t2c_sim.errors import FuseError, NumericsError, T2CError
from t2c_sim.fuse.formats import (
    QFormat,
    TensorVal,
    clamp_bounds,
    multipliers,
    qformat,
    record_formats,
)
from t2c_sim.numerics import quantize_multipliers_shared
from t2c_sim.quant.graph import fused_activation
from t2c_sim.quant.modules import QAdaptiveAvgPool2d, QAdd, QCat
from t2c_sim.quant.ops import is_const, where
from t2c_sim.record import LayerRecord


class _Fuser(Protocol):
    """What a record builder uses of the graph walk (:class:`t2c_sim.fuse.graph._Fuser`)."""

    mods: Mapping[str, nn.Module]
    opts: FuseOptions
    vals: dict[fx.Node, TensorVal]
    env: dict[fx.Node, Any]

    def operand(self, node: fx.Node, i: int = 0) -> tuple[TensorVal, QFormat, tuple[int, ...]]: ...
    def out_format(self, node: fx.Node) -> QFormat: ...
    def shape(self, node: fx.Node) -> tuple[int, ...]: ...
    def add(self, rec: LayerRecord, node: fx.Node, val: TensorVal) -> None: ...

__all__ = ["add_record", "add_const_record", "concat_record", "avgpool_record", "maxpool_record",
           "flatten_record", "integer_axis"]


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _const_value(fz: _Fuser, node: fx.Node, arg: fx.Node, shape: tuple[int, ...],
                 name: str) -> torch.Tensor:
    """The constant operand ``arg`` (a parameter through ``expand`` &c.) as the per-sample tensor
    it is for an input of ``shape``: every batch element must see the same values."""
    v = fz.env[arg]
    if not isinstance(v, torch.Tensor):
        raise FuseError(f"constant '{arg.name}' is not a tensor", layer=name, **where(node))
    try:
        full = torch.broadcast_to(v.detach(), shape)
    except RuntimeError:
        raise FuseError(f"constant '{arg.name}' of shape {list(v.shape)} does not broadcast to "
                        f"the input {list(shape)}", layer=name) from None
    if not bool((full == full[:1]).all()):
        raise FuseError(f"constant '{arg.name}' differs across the batch", layer=name)
    return full[0]


def _quantize_const(q: nn.Module, c: torch.Tensor, name: str, what: str) -> np.ndarray:
    """``q.quantize(c)``: the integers the fake-quant model uses for the constant."""
    with torch.no_grad():
        try:
            return q.quantize(c).cpu().numpy().astype(np.int64)
        except T2CError as e:
            raise e.recast(FuseError, layer=name) from None


def add_const_record(fz: _Fuser, node: fx.Node, mod: QAdd, ci: int) -> None:
    """``x + c`` with a constant ``c`` (a position embedding): one input, ``const_q = qc(c)`` in the
    add's input format with its own scale and zero point (docs/numerics.md section 10)."""
    name = node.target
    va, fa, sa = fz.operand(node, 1 - ci)
    qc = mod.qb if ci == 1 else mod.qa
    fb = qformat(qc, f"{name}.{'qb' if ci == 1 else 'qa'}")
    fy = fz.out_format(node)
    if fa.tokenwise or fb.tokenwise or fy.tokenwise:
        raise FuseError("token-wise scales on a residual add", layer=name)
    if (fa.bits, fa.signed) != (fb.bits, fb.signed):
        raise FuseError(f"the constant is quantized to {fb.bits} bits, the input to {fa.bits}: "
                        "give both the same format", layer=name)
    if va.layout != "plain":
        raise FuseError("an add of a constant takes tokens [B, ..., C], not a feature map",
                        layer=name)
    const_q = _quantize_const(qc, _const_value(fz, node, node.args[ci], sa, name), name, "constant")
    act = fused_activation(node, fz.mods, name) or mod.act
    try:
        ms, sh = quantize_multipliers_shared(
            [float(fa.scale) / float(fy.scale), float(fb.scale) / float(fy.scale)],
            fz.opts.mult_bits, fz.opts.shift_max)
    except NumericsError as e:
        raise e.recast(FuseError, layer=name) from None
    lo, hi = clamp_bounds(fy, act, name)
    rec = LayerRecord(name=name, op=OpKind.ADD, inputs=(va.record,),
                      **record_formats(fa, fy, fz.opts), z_b=fb.zero_point, c_in=sa[-1],
                      c_out=sa[-1], lo=lo, hi=hi, M0=np.array(ms), sh=np.array([sh]),
                      const_q=const_q,
                      meta=dict(module=name, act=act, s_x=fa.scale_json(), s_b=fb.scale_json(),
                                s_y=fy.scale_json(), y_quant=fy.source, layout="plain",
                                const=node.args[ci].name, const_operand=ci,
                                torch_in_shape=list(sa), torch_out_shape=list(fz.shape(node))))
    fz.add(rec, node, TensorVal(name, node, "plain"))


def add_record(fz: _Fuser, node: fx.Node, mod: QAdd) -> None:
    """Residual add with one rounding: ``(Ma, Mb, sh)`` from ``s_a / s_y``, ``s_b / s_y``."""
    name = node.target
    consts = [i for i, a in enumerate(node.args[:2]) if is_const(a)]
    if consts:
        add_const_record(fz, node, mod, consts[0])
        return
    (va, fa, sa), (vb, fb, sb) = fz.operand(node, 0), fz.operand(node, 1)
    fy = fz.out_format(node)
    if fa.tokenwise or fb.tokenwise or fy.tokenwise:
        raise FuseError("token-wise scales on a residual add", layer=name)
    if (fa.bits, fa.signed) != (fb.bits, fb.signed) or sa != sb or va.layout != vb.layout:
        raise FuseError(f"add inputs differ in format or shape ({sa} vs {sb})", layer=name)
    act = fused_activation(node, fz.mods, name) or mod.act
    try:
        ms, sh = quantize_multipliers_shared(
            [float(fa.scale) / float(fy.scale), float(fb.scale) / float(fy.scale)],
            fz.opts.mult_bits, fz.opts.shift_max)
    except NumericsError as e:
        raise e.recast(FuseError, layer=name) from None
    lo, hi = clamp_bounds(fy, act, name)
    c = sa[1] if va.layout == "nhwc" else sa[-1]
    hw = sa[2:] if va.layout == "nhwc" else (0, 0)
    rec = LayerRecord(name=name, op=OpKind.ADD, inputs=(va.record, vb.record),
                      **record_formats(fa, fy, fz.opts), z_b=fb.zero_point, c_in=c,
                      c_out=c, h=hw[0], w=hw[1], lo=lo, hi=hi, M0=np.array(ms),
                      sh=np.array([sh]),
                      meta=dict(module=name, act=act, s_x=fa.scale_json(),
                                s_b=fb.scale_json(), s_y=fy.scale_json(), y_quant=fy.source,
                                layout=va.layout, chw=list(va.chw) if va.chw else None,
                                torch_in_shape=list(sa), torch_out_shape=list(fz.shape(node))))
    fz.add(rec, node, TensorVal(name, node, va.layout, va.chw))


def integer_axis(dim: int, ndim: int, layout: str) -> int:
    """The integer layout's axis (negative) of torch dim ``dim`` of an ``ndim``-D tensor.

    ``nhwc`` (a torch ``[B, C, H, W]`` held channel-last): C -> -1, H -> -3, W -> -2; ``plain``:
    the same axis, counted from the end.
    """
    d = dim + ndim if dim < 0 else dim
    if layout == "nhwc":
        return {1: -1, 2: -3, 3: -2}[d]
    return d - ndim


def concat_record(fz: _Fuser, node: fx.Node, mod: QCat) -> None:
    """Concat: input ``i`` requantized to the output format with one rounding (``M0[i], sh[i]``
    from ``s_i / s_y``), the parts side by side along the axis (docs/numerics.md section 3)."""
    name = node.target
    n_const = sum(is_const(a) for a in node.args)
    ins = [fz.operand(node, i) for i in range(n_const, len(node.args))]
    fy = fz.out_format(node)
    vals, fmts, shapes = zip(*ins)
    lay = {v.layout for v in vals}
    if len(lay) != 1 or "flat_chw" in lay:
        raise FuseError(f"concat of {'/'.join(sorted(lay))} tensors: concatenate [B, C, H, W] "
                        "feature maps or [..., C] features, before a flatten", layer=name)
    layout = lay.pop()
    if fy.tokenwise or any(f.tokenwise for f in fmts):
        raise FuseError("token-wise scales on a concat", layer=name)
    nd = len(shapes[0])
    dim = mod.dim + nd if mod.dim < 0 else mod.dim
    if not 1 <= dim < nd or any(len(s) != nd or s[:dim] + s[dim + 1:] != shapes[0][:dim]
                                + shapes[0][dim + 1:] for s in shapes):
        raise FuseError(f"concat along dim {mod.dim} of shapes {list(shapes)}", layer=name)
    axis = integer_axis(dim, nd, layout)
    act = fused_activation(node, fz.mods, name) or mod.act
    M0, sh = multipliers(np.array([float(f.scale) / float(fy.scale) for f in fmts]), fz.opts,
                         name)
    lo, hi = clamp_bounds(fy, act, name)
    out = fz.shape(node)
    c = out[1] if layout == "nhwc" else out[-1]
    hw = out[2:] if layout == "nhwc" else (0, 0)
    f1 = fmts[1] if len(fmts) > 1 else fmts[0]
    const_q, tokens = None, []
    if n_const:                                   # class token(s): in the output format, first
        if layout != "plain" or len(out) != 3 or dim != 1 or act is not None:
            raise FuseError("constant inputs (class tokens) concatenate along the tokens of "
                            "[B, T, D] (dim=1), without an activation after the concat",
                            layer=name)
        q_y = fz.mods.get(fy.source)
        if q_y is None:
            raise FuseError(f"output quantizer '{fy.source}' is not a module of the model",
                            layer=name)
        parts = [_const_value(fz, node, a, (out[0], fz.env[a].shape[-2], out[2]), name)
                 for a in node.args[:n_const]]
        const_q = _quantize_const(q_y, torch.cat(parts, 0), name, "class token")
        tokens = [int(p.shape[0]) for p in parts]
    rec = LayerRecord(name=name, op=OpKind.CONCAT, inputs=tuple(v.record for v in vals),
                      **record_formats(fmts[0], fy, fz.opts), b_bits=f1.bits, b_signed=f1.signed,
                      z_b=f1.zero_point if len(fmts) > 1 else 0, c_in=c, c_out=c, h=hw[0],
                      w=hw[1], lo=lo, hi=hi, M0=M0, sh=sh, const_q=const_q,
                      params=dict(axis=axis, z_in=[f.zero_point for f in fmts],
                                  bits_in=[f.bits for f in fmts],
                                  signed_in=[int(f.signed) for f in fmts]),
                      meta=dict(module=name, act=act, s_in=[f.scale_json() for f in fmts],
                                s_y=fy.scale_json(), y_quant=fy.source, layout=layout,
                                n_const=n_const, const_tokens=tokens,
                                torch_dim=dim, torch_in_shapes=[list(s) for s in shapes],
                                torch_out_shape=list(out)))
    fz.add(rec, node, TensorVal(name, node, layout))


def avgpool_record(fz: _Fuser, node: fx.Node, mod: nn.Module) -> None:
    """Average pool / adaptive average pool: ``m = s_x / (s_y * window)``."""
    name = node.target
    val, fx_, shp = fz.operand(node)
    fy = fz.out_format(node)
    if val.layout != "nhwc" or fx_.tokenwise or fy.tokenwise:
        raise FuseError("average pool needs a per-tensor [B, C, H, W] input", layer=name)
    act = fused_activation(node, fz.mods, name)
    out = fz.shape(node)
    if isinstance(mod, QAdaptiveAvgPool2d):
        (h, w), (oh, ow) = shp[2:], out[2:]
        if h % oh or w % ow:
            raise FuseError(f"adaptive average pool from {h}x{w} to {oh}x{ow}: the windows differ "
                            "in size (no integer op); use an output size that divides the input",
                            layer=name)
        kh, kw = h // oh, w // ow
        op, stride, pad = (OpKind.GAVGPOOL if (oh, ow) == (1, 1) else OpKind.AVGPOOL), (kh, kw), \
            (0, 0)
    else:
        op = OpKind.AVGPOOL
        kh, kw = _pair(mod.kernel_size)
        stride, pad = _pair(mod.stride or mod.kernel_size), _pair(mod.padding)
    m = float(fx_.scale) / (float(fy.scale) * kh * kw)
    M0, sh = multipliers(np.array([m]), fz.opts, name)
    lo, hi = clamp_bounds(fy, act, name)
    rec = LayerRecord(name=name, op=op, inputs=(val.record,),
                      **record_formats(fx_, fy, fz.opts), c_in=shp[1], c_out=shp[1],
                      kh=kh, kw=kw, stride=stride, padding=pad, h=shp[2], w=shp[3], lo=lo,
                      hi=hi, M0=M0, sh=sh,
                      meta=dict(module=name, act=act, s_x=fx_.scale_json(),
                                s_y=fy.scale_json(), y_quant=fy.source, layout="nhwc",
                                torch_in_shape=list(shp), torch_out_shape=list(out)))
    fz.add(rec, node, TensorVal(name, node, "nhwc"))


def maxpool_record(fz: _Fuser, node: fx.Node, mod: nn.MaxPool2d, name: str) -> None:
    """Max pool on integers (input and output share the format; padding holds ``qmin``)."""
    val, f, shp = fz.operand(node)
    if val.layout != "nhwc":
        raise FuseError("max pool needs a [B, C, H, W] input", layer=name, **where(node))
    rec = LayerRecord(name=name, op=OpKind.MAXPOOL, inputs=(val.record,),
                      **record_formats(f, f, fz.opts), c_in=shp[1], c_out=shp[1],
                      kh=_pair(mod.kernel_size)[0], kw=_pair(mod.kernel_size)[1],
                      stride=_pair(mod.stride or mod.kernel_size), padding=_pair(mod.padding),
                      dilation=_pair(mod.dilation), h=shp[2], w=shp[3], lo=f.qmin, hi=f.qmax,
                      meta=dict(module=name, layout="nhwc", torch_in_shape=list(shp),
                                torch_out_shape=list(fz.shape(node))))
    fz.add(rec, node, TensorVal(name, val.fmt_node, "nhwc"))


def flatten_record(fz: _Fuser, node: fx.Node, name: str) -> None:
    """``[B, C, H, W] -> [B, H*W*C]`` (``(h, w, c)`` order) or ``[B, T, C] -> [B, T*C]``; a flatten
    of an already flat ``[B, F]`` is no record."""
    val, f, shp = fz.operand(node)
    out = fz.shape(node)
    if len(out) != 2 or out[0] != shp[0] or int(np.prod(out)) != int(np.prod(shp)):
        raise FuseError(f"only a flatten to [B, features] moves data in the integer model, got "
                        f"{list(shp)} -> {list(out)}", **where(node))
    if len(shp) == 2:
        fz.vals[node] = val
        return
    if val.layout == "nhwc":
        c, h, w = shp[1], shp[2], shp[3]
        layout, chw = "flat_chw", (c, h, w)
    elif val.layout == "plain" and len(shp) == 3:
        c, h, w = shp[2], 1, shp[1]  # tokens [B, T, C]: already in torch's order
        layout, chw = "plain", None
    else:
        raise FuseError(f"cannot flatten a {val.layout} tensor {list(shp)}", **where(node))
    if f.tokenwise:
        raise FuseError("flatten of token-wise quantized tokens", **where(node))
    rec = LayerRecord(name=name, op=OpKind.FLATTEN, inputs=(val.record,),
                      **record_formats(f, f, fz.opts), c_in=c, c_out=c, h=h, w=w,
                      lo=f.qmin, hi=f.qmax,
                      meta=dict(module=name, layout=layout, torch_in_shape=list(shp),
                                torch_out_shape=list(out)))
    fz.add(rec, node, TensorVal(name, val.fmt_node, layout, chw))
