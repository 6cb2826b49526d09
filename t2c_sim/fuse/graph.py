"""Fuse a fake-quant model into integer layer records (SPEC sections 2-5).

The float -> integer boundary lives here and only here: every scale becomes integers once
(``bias_eff``, ``M0``, ``sh``, ``lo``, ``hi``), after which no float is used.

Graph: the model is traced with ``torch.fx`` (Q wrappers are leaves). Each integer tensor gets
its format from ONE quantizer (:func:`t2c_sim.quant.graph.consumer_quantizers`): the
producer's ``oq`` or the input quantizer of every consumer, which must agree bitwise.
ReLU/ReLU6 on every path after a producer (through max pool / flatten / dropout) go into the
producer's clamp (:func:`t2c_sim.quant.graph.fused_activation`, ``numerics.relu_bounds``);
max pool and flatten become their own records. MAC layers are :func:`t2c_sim.fuse.mac.mac_record`.

MAC layers (conv, linear), with input format ``(s_x, z_x)``, weight scale ``s_w[c]`` and output
format ``(s_y, z_y)``:

- ``W_q = wq.quantize(W * mask)`` (signed, ``z_w = 0``), laid out ``[C_out, K]`` in the SPEC
  reduction order ``k = (kh*KW + kw)*C_gp + c`` (C_in per group padded to a multiple of M with
  zero weights); a linear after a flatten of ``[B, C, H, W]`` gets its columns permuted from
  torch's ``(c, h, w)`` order to the golden model's ``(h, w, c)`` order;
- ``bias_eff[c] = round_half_even(b[c] / (s_x * s_w[c])) - z_x * sum_k W_q[c, k]``;
- ``(M0[c], sh[c]) = numerics.quantize_multiplier(s_x * s_w[c] / s_y)`` (float64);
- worst case ``|acc| = |bias_eff| + sum_k |W_q[c, k]| * max|x_q|`` (``max|x_q|`` of the input
  format) must be ``<= 2^(ACC_BITS-1) - 1`` unless ``wrap_ok`` (:class:`OverflowRiskError`).

BatchNorm: :func:`t2c_sim.quant.quantize.quantize_model` folds BN into the conv in float BEFORE
weight quantization by default (``W' = W*g``, ``b' = (b - mean)*g + beta``, ``g = gamma /
sqrt(var + eps)``), so the weight quantizer sees the folded weights. A BN still present here
(``fold_bn: False``, e.g. QAT with BN) follows the fake-quant model exactly: ``W_q`` stays the
quantized unfolded weights (sign flipped where ``g < 0``) and ``|g[c]|`` joins the multiplier,
``s_w'[c] = s_w[c] * |g[c]|``, with the folded float bias ``b'``.

SmoothQuant (:func:`t2c_sim.quant.smoothquant.smooth_model`): inner factors are already folded
into the float weights; an :class:`~t2c_sim.quant.modules.InputSmooth` (``x / s``) on the network
input becomes host-side input quantization, ``x_q = aq.quantize(x / s)`` (:func:`quantize_input`),
and the records reading ``"input"`` carry ``meta["input_smooth"] = s``. A ``1/s`` that would have
to live inside the integer network (an ``InputSmooth`` elsewhere, a smoothed
:class:`~t2c_sim.quant.smoothquant.SmoothQuantizer` as an inner input quantizer) is a
:class:`FuseError` naming the module, never silently dropped.

Token-wise activations (linear only, a golden-model feature): scales are per row ``p`` of the
example input, so ``bias_eff/M0/sh`` are ``[P, C_out]`` and the records are SPECIFIC TO THAT
INPUT (``meta["input_specific"] = True``).
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from t2c_sim.config import FuseOptions, OpKind, RoundMode
from t2c_sim.errors import FuseError, ModelError, NumericsError, T2CError
from t2c_sim.fuse.formats import (
    QFormat,
    TensorVal,
    clamp_bounds,
    multipliers,
    qformat,
    record_formats,
    same_format,
)
from t2c_sim.fuse.mac import mac_record
from t2c_sim.numerics import quantize_multipliers_shared
from t2c_sim.quant.graph import (
    ALIAS_MODULES,
    FLATTEN_FUNCS,
    consumer_quantizers,
    fused_activation,
    relu_kind,
    trace,
)
from t2c_sim.quant.modules import (
    InputSmooth,
    QAdaptiveAvgPool2d,
    QAdd,
    QAvgPool2d,
    QConv2d,
    QLinear,
    frozen,
)
from t2c_sim.quant.smoothquant import input_smooth
from t2c_sim.record import LayerRecord

__all__ = ["FuseOptions", "fuse", "input_quantizer", "quantize_input", "run_fake_quant"]

log = logging.getLogger(__name__)


def run_fake_quant(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Fake-quant forward in eval mode with observers off (frozen ranges)."""
    with frozen(model):
        try:
            return model(x)
        except T2CError as e:
            raise FuseError(f"fake-quant forward failed: {e}") from None


def _run_graph(gm: fx.GraphModule, model: nn.Module, x: torch.Tensor) -> dict[fx.Node, Any]:
    with frozen(model):
        interp = fx.Interpreter(gm, garbage_collect_values=False)
        try:
            interp.run(x)
        except T2CError as e:
            raise FuseError(f"fake-quant forward failed: {e}") from None
    return interp.env


def _layer_of(node: fx.Node) -> dict[str, str]:
    """Context fields naming ``node``: the network input or the layer (module) it calls."""
    return {"node": "input"} if node.op == "placeholder" else {"layer": str(node.target)}


class _Fuser:
    """One walk over the traced graph: a record per integer layer, in execution order."""

    def __init__(self, model: nn.Module, x: torch.Tensor, opts: FuseOptions) -> None:
        self.model, self.opts = model, opts
        self.gm = trace(model)
        self.mods = dict(model.named_modules())
        self.env = _run_graph(self.gm, model, x)
        self.vals: dict[fx.Node, TensorVal] = {}
        self.fmts: dict[fx.Node, QFormat] = {}
        self.records: list[LayerRecord] = []

    # ---- formats --------------------------------------------------------------------------
    def out_format(self, node: fx.Node) -> QFormat:
        if node in self.fmts:
            return self.fmts[node]
        where = _layer_of(node)
        mod = self.mods.get(node.target) if node.op == "call_module" else None
        cands: list[QFormat] = []
        if mod is not None and getattr(mod, "oq", None) is not None:
            cands.append(qformat(mod.oq, f"{node.target}.oq"))
        found, _ = consumer_quantizers(node, self.mods)
        for qname, q in found:
            if q is None:
                raise FuseError(f"consumer '{qname.rsplit('.', 1)[0]}' has no input quantizer",
                                **where)
            cands.append(qformat(q, qname))
        if not cands:
            raise FuseError("no quantizer gives its output format (add an output quantizer oq)",
                            **where)
        if node.op != "placeholder":
            for qname, q in found:
                if getattr(q, "smooth", torch.ones(0)).numel():
                    raise FuseError(f"consumer '{qname.rsplit('.', 1)[0]}' divides its input by "
                                    "SmoothQuant factors that cannot be folded into an integer "
                                    "producer (use quant.smoothquant / smooth_model)", **where)
        for c in cands[1:]:
            if not same_format(c, cands[0]):
                raise FuseError(f"output read by quantizers '{cands[0].source}' and '{c.source}' "
                                "with different formats (tie them)", **where)
        self.fmts[node] = cands[0]
        return cands[0]

    def shape(self, node: fx.Node) -> tuple[int, ...]:
        v = self.env[node]
        if not isinstance(v, torch.Tensor):
            raise FuseError(f"expected a tensor, got {type(v).__name__}", node=node.name)
        return tuple(v.shape)

    def add(self, rec: LayerRecord, node: fx.Node, val: TensorVal) -> None:
        if any(r.name == rec.name for r in self.records):
            raise FuseError("module used twice (records need unique names)", layer=rec.name)
        try:
            rec.validate()
        except T2CError as e:
            raise e.recast(FuseError, layer=rec.name) from None
        self.records.append(rec)
        self.vals[node] = val
        log.debug("fused %s (%s)", rec.name, rec.op.value)

    def _in(self, node: fx.Node, i: int = 0) -> tuple[TensorVal, QFormat, tuple[int, ...]]:
        arg = node.args[i]
        if not isinstance(arg, fx.Node) or arg not in self.vals:
            raise FuseError(f"input {i} is not an integer tensor", node=node.name)
        val = self.vals[arg]
        return val, self.out_format(val.fmt_node), self.shape(arg)

    # ---- node handlers --------------------------------------------------------------------
    def run(self) -> list[LayerRecord]:
        out_node = None
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                if any(v.record == "input" for v in self.vals.values()):
                    raise FuseError("model has more than one input")
                nd = len(self.shape(node))
                self.vals[node] = TensorVal("input", node, "nhwc" if nd == 4 else "plain")
            elif node.op == "output":
                out_node = node
            elif node.op == "get_attr":
                raise FuseError("parameters used outside a layer", node=node.name)
            elif node.op == "call_method" and node.target == "size":
                continue
            else:
                self.dispatch(node)
        if out_node is not None:
            arg = out_node.args[0]
            if not isinstance(arg, fx.Node) or arg not in self.vals:
                raise FuseError("model output must be one tensor produced by a fused layer")
            last = self.vals[arg].record
            if not self.records or self.records[-1].name != last:
                raise FuseError(f"the model output comes from '{last}', not the last record")
        s_in = input_smooth(self.model)
        if s_in is not None:
            for rec in self.records:
                if "input" in rec.inputs:
                    rec.meta["input_smooth"] = s_in.double().tolist()
        return self.records

    def dispatch(self, node: fx.Node) -> None:
        mod = self.mods.get(node.target) if node.op == "call_module" else None
        src = node.args[0] if node.args else None
        if isinstance(mod, (QConv2d, QLinear)):
            self.mac(node, mod)
        elif isinstance(mod, QAdd):
            self.add_record(node, mod)
        elif isinstance(mod, (QAvgPool2d, QAdaptiveAvgPool2d)):
            self.avgpool_record(node, mod)
        elif isinstance(mod, nn.MaxPool2d):
            self.maxpool_record(node, mod)
        elif isinstance(mod, nn.Flatten) or (node.op == "call_function"
                                              and node.target in FLATTEN_FUNCS) or (
                node.op == "call_method" and node.target in ("flatten", "view", "reshape")):
            self.flatten_record(node, mod)
        elif isinstance(mod, InputSmooth):
            if src is None or src.op != "placeholder":
                raise FuseError(f"smoothing '{node.target}': 1/s can only be folded into the "
                                "host-side input quantization (it must read the network input)")
            self.vals[node] = self.vals[src]          # host side: quantize_input divides by s
        elif relu_kind(node, self.mods) is not None or isinstance(mod, ALIAS_MODULES) or (
                node.op == "call_method" and node.target == "contiguous"):
            self.vals[node] = self.vals[src]
        elif isinstance(mod, nn.BatchNorm2d):
            if src.op != "call_module" or not isinstance(self.mods[src.target], QConv2d):
                raise FuseError(f"batch norm '{node.target}' does not follow a QConv2d")
            self.vals[node] = self.vals[src]   # folded by mac_record
        elif node.op == "call_function" and node.target in (operator.add, torch.add):
            raise FuseError("use t2c_sim.quant.modules.Add for residual adds (a functional add "
                            "has no quantizers)", node=node.name)
        else:
            what = node.target if node.op == "call_module" else f"{node.op} {node.target}"
            raise FuseError(f"({what}) unsupported module or op for integer fuse",
                            node=node.name)

    def mac(self, node: fx.Node, mod: QConv2d | QLinear) -> None:
        """Conv/linear: find a BN to fold and the fused activation, then :func:`mac_record`."""
        name = node.target
        val, fmt_x, shp = self._in(node)
        bn_node = next(iter(node.users)) if len(node.users) == 1 else None
        bn = self.mods.get(bn_node.target) if bn_node is not None and bn_node.op == "call_module" \
            else None
        if not isinstance(bn, nn.BatchNorm2d):
            bn, bn_node = None, None
        fmt_node = bn_node if bn_node is not None else node
        act = fused_activation(fmt_node, self.mods, name) or mod.act
        fmt_y = self.out_format(node)
        rec = mac_record(name, mod, val, fmt_x, shp, fmt_y, self.shape(fmt_node), act,
                         (bn_node.target, bn) if bn is not None else None, self.opts)
        is_conv = isinstance(mod, QConv2d)
        self.add(rec, node, TensorVal(name, node, "nhwc" if is_conv else "plain"))

    def add_record(self, node: fx.Node, mod: QAdd) -> None:
        name = node.target
        (va, fa, sa), (vb, fb, sb) = self._in(node, 0), self._in(node, 1)
        fy = self.out_format(node)
        if fa.tokenwise or fb.tokenwise or fy.tokenwise:
            raise FuseError("token-wise scales on a residual add", layer=name)
        if (fa.bits, fa.signed) != (fb.bits, fb.signed) or sa != sb or va.layout != vb.layout:
            raise FuseError("add inputs differ in format or shape", layer=name)
        act = fused_activation(node, self.mods, name) or mod.act
        try:
            ms, sh = quantize_multipliers_shared(
                [float(fa.scale) / float(fy.scale), float(fb.scale) / float(fy.scale)],
                self.opts.mult_bits, self.opts.shift_max)
        except NumericsError as e:
            raise e.recast(FuseError, layer=name) from None
        lo, hi = clamp_bounds(fy, act, name)
        c = sa[1] if va.layout == "nhwc" else sa[-1]
        hw = sa[2:] if va.layout == "nhwc" else (0, 0)
        rec = LayerRecord(name=name, op=OpKind.ADD, inputs=(va.record, vb.record),
                          **record_formats(fa, fy, self.opts), z_b=fb.zero_point, c_in=c,
                          c_out=c, h=hw[0], w=hw[1], lo=lo, hi=hi, M0=np.array(ms),
                          sh=np.array([sh]),
                          meta=dict(module=name, act=act, s_x=fa.scale_json(),
                                    s_b=fb.scale_json(), s_y=fy.scale_json(), y_quant=fy.source,
                                    layout=va.layout, torch_in_shape=list(sa),
                                    torch_out_shape=list(self.shape(node))))
        self.add(rec, node, TensorVal(name, node, va.layout, va.chw))

    def avgpool_record(self, node: fx.Node, mod: nn.Module) -> None:
        name = node.target
        val, fx_, shp = self._in(node)
        fy = self.out_format(node)
        if val.layout != "nhwc" or fx_.tokenwise or fy.tokenwise:
            raise FuseError("average pool needs a per-tensor [B, C, H, W] input", layer=name)
        act = fused_activation(node, self.mods, name)
        if isinstance(mod, QAdaptiveAvgPool2d):
            op, (kh, kw), stride, pad = OpKind.GAVGPOOL, shp[2:], (1, 1), (0, 0)
        else:
            op = OpKind.AVGPOOL
            kh, kw = _pair(mod.kernel_size)
            stride, pad = _pair(mod.stride or mod.kernel_size), _pair(mod.padding)
        m = float(fx_.scale) / (float(fy.scale) * kh * kw)
        M0, sh = multipliers(np.array([m]), self.opts, name)
        lo, hi = clamp_bounds(fy, act, name)
        rec = LayerRecord(name=name, op=op, inputs=(val.record,),
                          **record_formats(fx_, fy, self.opts), c_in=shp[1], c_out=shp[1],
                          kh=kh, kw=kw, stride=stride, padding=pad, h=shp[2], w=shp[3], lo=lo,
                          hi=hi, M0=M0, sh=sh,
                          meta=dict(module=name, act=act, s_x=fx_.scale_json(),
                                    s_y=fy.scale_json(), y_quant=fy.source, layout="nhwc",
                                    torch_in_shape=list(shp),
                                    torch_out_shape=list(self.shape(node))))
        self.add(rec, node, TensorVal(name, node, "nhwc"))

    def maxpool_record(self, node: fx.Node, mod: nn.MaxPool2d) -> None:
        name = node.target
        val, f, shp = self._in(node)
        if val.layout != "nhwc":
            raise FuseError("max pool needs a [B, C, H, W] input", layer=name)
        if mod.ceil_mode or mod.return_indices:
            raise FuseError("ceil_mode and return_indices are not supported", layer=name)
        rec = LayerRecord(name=name, op=OpKind.MAXPOOL, inputs=(val.record,),
                          **record_formats(f, f, self.opts), c_in=shp[1], c_out=shp[1],
                          kh=_pair(mod.kernel_size)[0], kw=_pair(mod.kernel_size)[1],
                          stride=_pair(mod.stride or mod.kernel_size), padding=_pair(mod.padding),
                          dilation=_pair(mod.dilation), h=shp[2], w=shp[3], lo=f.qmin, hi=f.qmax,
                          meta=dict(module=name, layout="nhwc", torch_in_shape=list(shp),
                                    torch_out_shape=list(self.shape(node))))
        self.add(rec, node, TensorVal(name, val.fmt_node, "nhwc"))

    def flatten_record(self, node: fx.Node, mod: nn.Module | None) -> None:
        val, f, shp = self._in(node)
        out = self.shape(node)
        name = node.target if node.op == "call_module" else node.name
        if len(out) != 2 or out[0] != shp[0]:
            raise FuseError(f"only flattening to [B, features] is supported, got {shp} -> {out}",
                            node=node.name)
        if len(shp) == 2:
            self.vals[node] = val
            return
        if val.layout == "nhwc":
            c, h, w = shp[1], shp[2], shp[3]
            layout, chw = "flat_chw", (c, h, w)
        elif val.layout == "plain" and len(shp) == 3:
            c, h, w = shp[2], 1, shp[1]  # tokens [B, T, C]: already in torch's order
            layout, chw = "plain", None
        else:
            raise FuseError(f"cannot flatten a {val.layout} tensor {shp}", node=node.name)
        if f.tokenwise:
            raise FuseError("flatten of token-wise quantized tokens", node=node.name)
        rec = LayerRecord(name=name, op=OpKind.FLATTEN, inputs=(val.record,),
                          **record_formats(f, f, self.opts), c_in=c, c_out=c, h=h, w=w,
                          lo=f.qmin, hi=f.qmax,
                          meta=dict(module=name, layout=layout, torch_in_shape=list(shp),
                                    torch_out_shape=list(out)))
        self.add(rec, node, TensorVal(name, val.fmt_node, layout, chw))


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def fuse(model: nn.Module, example_input: torch.Tensor, *, acc_bits: int = 32,
         mult_bits: int = 32, shift_max: int = 63, mode: RoundMode | str = RoundMode.HALF_EVEN,
         wrap_ok: bool = False) -> list[LayerRecord]:
    """Turn a calibrated fake-quant model into integer :class:`LayerRecord` s (SPEC 2-5).

    ``example_input`` (a float batch) gives the shapes and, for token-wise quantizers, the
    per-row scales (records are then specific to it). Records come in execution order with
    ``inputs`` wiring (``"input"`` = the network input, see :func:`quantize_input`); the last
    record produces the model output. Raises :class:`FuseError` naming the module for anything
    that cannot be made integer (including the model-structure errors of
    :mod:`t2c_sim.quant.graph`), :class:`OverflowRiskError` for accumulator overflow risk
    (unless ``wrap_ok``).
    """
    opts = FuseOptions(acc_bits, mult_bits, shift_max, RoundMode.parse(mode), bool(wrap_ok))
    try:
        return _Fuser(model, example_input, opts).run()
    except ModelError as e:
        if isinstance(e, FuseError):
            raise
        raise e.recast(FuseError) from None


def _input_node(model: nn.Module) -> tuple[fx.Node, Mapping[str, nn.Module]]:
    gm = trace(model)
    return next(n for n in gm.graph.nodes if n.op == "placeholder"), dict(model.named_modules())


def input_quantizer(model: nn.Module) -> nn.Module:
    """The quantizer that defines the integer network input (the first layer's ``aq``)."""
    ph, mods = _input_node(model)
    found, _ = consumer_quantizers(ph, mods)
    if not found or found[0][1] is None:
        raise FuseError("no input quantizer", node="input")
    return found[0][1]


def quantize_input(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Integer network input: ``aq.quantize(x / s)``, channel-last for images (``[B, H, W, C]``).

    ``s`` are the SmoothQuant factors of an :class:`~t2c_sim.quant.modules.InputSmooth` on the
    network input (absent: ``x`` as is); a :class:`~t2c_sim.quant.smoothquant.SmoothQuantizer`
    as ``aq`` divides by its own factors inside ``quantize``.
    """
    q = input_quantizer(model)
    ph, mods = _input_node(model)
    for u in ph.users:
        if u.op == "call_module" and isinstance(mods.get(u.target), InputSmooth):
            x = mods[u.target](x)
    with frozen(model):
        xq = q.quantize(x)
    if xq.dim() == 4:
        xq = xq.permute(0, 2, 3, 1)
    return xq.contiguous().cpu().numpy().astype(np.int64)
