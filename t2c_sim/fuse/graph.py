"""Fuse a fake-quant model into integer layer records (SPEC sections 2-5).

The float -> integer boundary lives here and only here: every scale becomes integers once
(``bias_eff``, ``M0``, ``sh``, ``lo``, ``hi``), after which no float is used.

Graph: the model is traced with ``torch.fx`` (Q wrappers are leaves); what every node is comes
from the one op table, :func:`t2c_sim.quant.ops.classify` (the same table
:func:`~t2c_sim.quant.quantize.quantize_model` asks, so the two never disagree), and an error
about a node names it and the user's source line. Each integer tensor gets its format from ONE
quantizer (:func:`t2c_sim.quant.graph.consumer_quantizers`): the producer's ``oq`` or the input
quantizer of every consumer, which must agree bitwise. ReLU/ReLU6 on every path after a
producer (through max pool / flatten / dropout) go into the producer's clamp
(:func:`t2c_sim.quant.graph.fused_activation`, ``numerics.relu_bounds``); max pool and flatten
become their own records. MAC layers are :func:`t2c_sim.fuse.mac.mac_record`; add, concat and
pools :mod:`t2c_sim.fuse.ops`.

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

BatchNorm: :func:`t2c_sim.quant.quantize.quantize_model` folds BN into the conv (BatchNorm1d into
the linear) in float BEFORE
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
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from t2c_sim.config import FuseOptions, RoundMode
from t2c_sim.errors import FuseError, ModelError, T2CError
from t2c_sim.fuse.formats import QFormat, TensorVal, qformat, same_format
from t2c_sim.fuse.mac import mac_record
from t2c_sim.fuse.movement import View, base_index, cost, emit, int_shape, plan, producer_row_scales, replay
from t2c_sim.fuse.ops import (
    add_record,
    avgpool_record,
    concat_record,
    flatten_record,
    maxpool_record,
)
from t2c_sim.fuse.transformer import gelu_record, layernorm_record, matmul_record, softmax_record
from t2c_sim.quant.graph import consumer_quantizers, fused_activation, scope_of, trace
from t2c_sim.quant.modules import InputSmooth, QConv2d, QLinear, frozen
from t2c_sim.quant.ops import CHAIN_ROLES, FUSING_ROLES, Q_MODULES, Op, Role, classify, describe, where
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
        self.mods = dict(self.gm.named_modules())
        self.env = _run_graph(self.gm, model, x)
        self.vals: dict[fx.Node, TensorVal] = {}
        self.views: dict[fx.Node, View] = {}     # moved tensors, materialized when read
        self.fmts: dict[fx.Node, QFormat] = {}
        self.records: list[LayerRecord] = []

    # ---- formats --------------------------------------------------------------------------
    def out_format(self, node: fx.Node) -> QFormat:
        if node in self.fmts:
            return self.fmts[node]
        ctx = _layer_of(node)
        mod = self.mods.get(node.target) if node.op == "call_module" else None
        cands: list[QFormat] = []
        if mod is not None and getattr(mod, "oq", None) is not None:
            cands.append(qformat(mod.oq, f"{node.target}.oq"))
        found, _ = consumer_quantizers(node, self.mods)
        for qname, q in found:
            if q is None:
                raise FuseError(f"consumer '{qname.rsplit('.', 1)[0]}' has no input quantizer",
                                **ctx)
            cands.append(qformat(q, qname))
        if not cands:
            raise FuseError("no quantizer gives its output format (add an output quantizer oq)",
                            **ctx)
        if node.op != "placeholder":
            for qname, q in found:
                if getattr(q, "smooth", torch.ones(0)).numel():
                    raise FuseError(f"consumer '{qname.rsplit('.', 1)[0]}' divides its input by "
                                    "SmoothQuant factors that cannot be folded into an integer "
                                    "producer (use quant.smoothquant / smooth_model)", **ctx)
        for c in cands[1:]:
            if not same_format(c, cands[0]):
                raise FuseError(f"output read by quantizers '{cands[0].source}' and '{c.source}' "
                                "with different formats (tie them)", **ctx)
        self.fmts[node] = cands[0]
        return cands[0]

    def shape(self, node: fx.Node) -> tuple[int, ...]:
        v = self.env[node]
        if not isinstance(v, torch.Tensor):
            raise FuseError(f"expected a tensor, got {type(v).__name__}", **where(node))
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

    def operand(self, node: fx.Node, i: int = 0) -> tuple[TensorVal, QFormat, tuple[int, ...]]:
        """Integer input ``i`` of ``node``: its value, format and torch shape (a moved tensor is
        materialized: :meth:`materialize`)."""
        arg = node.args[i]
        if isinstance(arg, fx.Node) and arg in self.views and arg not in self.vals:
            self.vals[arg] = self.materialize(arg, nhwc=self._image_op(node))
        if not isinstance(arg, fx.Node) or arg not in self.vals:
            raise FuseError(f"input {i} is not an integer tensor", **where(node))
        val = self.vals[arg]
        return val, self.out_format(val.fmt_node), self.shape(arg)

    # ---- data movement (t2c_sim.fuse.movement) ----------------------------------------------
    def view_of(self, node: fx.Node) -> View:
        """``node`` (an integer tensor or a moved one) as a :class:`View`."""
        if node in self.views:
            return self.views[node]
        if node not in self.vals:
            raise FuseError("input is not an integer tensor", **where(node))
        val = self.vals[node]
        shp = self.shape(node)
        return View(val, base_index(val, shp), int_shape(val, shp))

    def move(self, node: fx.Node, src: fx.Node) -> None:
        """A data-movement node: follow its index map (records are made when it is read)."""
        v = self.view_of(src)
        self.views[node] = View(v.src, replay(node, self.env, self.mods, {src: v.idx}), v.shape)

    def _image_op(self, node: fx.Node) -> bool:
        """Whether ``node`` reads a feature map held channel-last (conv, pools)."""
        mod = self.mods.get(node.target) if node.op == "call_module" else None
        return isinstance(mod, QConv2d) or classify(node, self.mods).role in (
            Role.AVGPOOL, Role.GAVGPOOL, Role.MAXPOOL)

    def _plan(self, node: fx.Node, transpose: bool, nhwc: bool = False) -> tuple[Any, Any]:
        v = self.views[node]
        if not isinstance(v.idx, torch.Tensor):
            raise FuseError("a tuple of tensors (unbind/chunk/split) is read whole; index it",
                            **where(node))
        idx = v.idx.transpose(-1, -2) if transpose else v.idx
        if nhwc:
            if idx.dim() != 4:
                raise FuseError(f"a conv or pool reads a moved tensor of shape {list(idx.shape)}",
                                **where(node))
            idx = idx.permute(0, 2, 3, 1)
        return idx, plan(v.shape[1:], idx)

    def materialize(self, node: fx.Node, transpose: bool = False,
                    nhwc: bool = False) -> TensorVal:
        """The records (SLICE, RESHAPE) that make the moved tensor ``node`` (its last two axes
        swapped when ``transpose``; channel-last for a conv or pool: ``nhwc``), named after the
        node in its module's scope."""
        idx, steps = self._plan(node, transpose, nhwc)
        if steps is None:
            raise FuseError(f"data movement to {list(idx.shape)} that no slice and reshape of the "
                            f"integer tensor {list(self.views[node].shape)} gives (a broadcast, "
                            "a repeated element or data crossing the batch axis)", **where(node))
        v = self.views[node]
        scope = scope_of(node, self.gm)
        name = (f"{scope}.{node.name}" if scope else node.name) + (".T" if transpose else "")
        fmt = self.out_format(v.src.fmt_node)
        return emit(self, name, node, v.src, fmt, steps, tuple(idx.shape),
                    "nhwc" if nhwc else "plain")

    def operand_b(self, node: fx.Node) -> tuple[TensorVal, QFormat, tuple[int, ...], bool]:
        """Operand ``b`` of a matmul and whether it is stored transposed (``trans_b``): the
        form that moves less data (``k.transpose(-2, -1)`` gives the key tensor as it comes)."""
        arg = node.args[1]
        if not isinstance(arg, fx.Node) or (arg not in self.vals and arg not in self.views):
            raise FuseError("input 1 is not an integer tensor", **where(node))
        if arg not in self.views:
            self.views[arg] = self.view_of(arg)
        costs = {t: cost(self._plan(arg, t)[1]) for t in (False, True)}
        trans = costs[True] < costs[False]
        if trans:
            val = self.materialize(arg, transpose=True)
        else:
            if arg not in self.vals:
                self.vals[arg] = self.materialize(arg)
            val = self.vals[arg]
        return val, self.out_format(val.fmt_node), self.shape(arg), trans

    def row_format(self, node: fx.Node, layer: str) -> QFormat:
        """The output format of producer ``node``; a token-wise one as one scale per row of the
        producer's own output (:func:`t2c_sim.fuse.movement.producer_row_scales`)."""
        fmt = self.out_format(node)
        if not fmt.tokenwise:
            return fmt
        shp = self.shape(node)
        val = TensorVal(layer, node, "plain")
        return producer_row_scales(self, node, shp, base_index(val, shp), fmt, layer)

    # ---- node handlers --------------------------------------------------------------------
    def run(self) -> list[LayerRecord]:
        out_node = None
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                if any(v.record == "input" for v in self.vals.values()):
                    raise FuseError("model has more than one input", **where(node))
                nd = len(self.shape(node))
                self.vals[node] = TensorVal("input", node, "nhwc" if nd == 4 else "plain")
            elif node.op == "output":
                out_node = node
            else:
                self.dispatch(node, classify(node, self.mods))
        if out_node is not None:
            arg = out_node.args[0]
            if isinstance(arg, fx.Node) and arg in self.views and arg not in self.vals:
                self.vals[arg] = self.materialize(arg)
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

    def _wrapped(self, node: fx.Node, op: Op) -> nn.Module:
        mod = self.mods.get(node.target) if node.op == "call_module" else None
        if not isinstance(mod, Q_MODULES[op.role]):
            raise FuseError(f"{describe(node, self.mods)} is not a fake-quant layer (build the "
                            "model with quantize_model: it swaps conv/linear/pools for wrappers "
                            "and inserts the integer add for `+` and concat for torch.cat)",
                            **where(node))
        return mod

    def dispatch(self, node: fx.Node, op: Op) -> None:
        """One node, by its role in the op table."""
        role = op.role
        src = op.inputs[0] if op.inputs else None
        if role in (Role.SHAPE, Role.CONST):
            return                                     # constants are read by their add/concat
        if role is Role.SCALE:
            raise FuseError(f"{describe(node, self.mods)}: a constant factor left in the graph "
                            "(quantize_model folds it into the matmul next to it)", **where(node))
        if role is Role.MAC:
            self.mac(node, self._wrapped(node, op))
        elif role is Role.ADD:
            add_record(self, node, self._wrapped(node, op))
        elif role is Role.CONCAT:
            concat_record(self, node, self._wrapped(node, op))
        elif role in (Role.AVGPOOL, Role.GAVGPOOL):
            avgpool_record(self, node, self._wrapped(node, op))
        elif role is Role.MAXPOOL:
            mod = self.mods[node.target] if node.op == "call_module" else op.make()
            maxpool_record(self, node, mod, self._name(node))
        elif role is Role.MATMUL:
            matmul_record(self, node, self._wrapped(node, op))
        elif role is Role.SOFTMAX:
            softmax_record(self, node, self._wrapped(node, op))
        elif role is Role.LAYERNORM:
            layernorm_record(self, node, self._wrapped(node, op))
        elif role is Role.GELU:
            gelu_record(self, node, self._wrapped(node, op))
        elif role is Role.FLATTEN and src in self.vals and self._classic_flatten(node, src):
            flatten_record(self, node, self._name(node))
        elif role in (Role.FLATTEN, Role.MOVE):
            self.move(node, src)
        elif role is Role.SMOOTH:
            if src is None or src.op != "placeholder":
                raise FuseError(f"smoothing '{node.target}': 1/s can only be folded into the "
                                "host-side input quantization (it must read the network input)",
                                **where(node))
            self.vals[node] = self.vals[src]          # host side: quantize_input divides by s
        elif role is Role.ACT:
            self._check_fused(node, op)
            self._same(node, src)
        elif role is Role.BN:
            prev = self.mods.get(src.target) if src.op == "call_module" else None
            want = QConv2d if isinstance(self.mods[node.target], nn.BatchNorm2d) else QLinear
            if not isinstance(prev, want):
                raise FuseError(f"batch norm '{node.target}' does not follow a {want.__name__}",
                                **where(node))
            self.vals[node] = self._val(node, src)   # folded by mac_record
        else:   # Role.ALIAS
            self._same(node, src)

    def _classic_flatten(self, node: fx.Node, src: fx.Node) -> bool:
        """A flatten to ``[B, features]`` of a feature map or of tokens: the FLATTEN record (a
        linear after it reads the golden model's ``(h, w, c)`` order)."""
        out, shp = self.shape(node), self.shape(src)
        return len(out) == 2 and out[0] == shp[0] and len(shp) in (2, 3, 4) and \
            (len(shp) != 4 or self.vals[src].layout == "nhwc")

    def _same(self, node: fx.Node, src: fx.Node | None) -> None:
        """``node`` holds the same integers as ``src`` (a moved tensor stays moved)."""
        if src is not None and src in self.views and src not in self.vals:
            self.views[node] = self.views[src]
        else:
            self.vals[node] = self._val(node, src)

    def _val(self, node: fx.Node, src: fx.Node | None) -> TensorVal:
        if src is None or src not in self.vals:
            raise FuseError("input is not an integer tensor", **where(node))
        return self.vals[src]

    @staticmethod
    def _name(node: fx.Node) -> str:
        return node.target if node.op == "call_module" else node.name

    def _check_fused(self, node: fx.Node, op: Op) -> None:
        """An activation must sit after a record that clamps (it is fused there), not on the
        network input."""
        n = op.inputs[0]
        while n.op != "placeholder":
            o = classify(n, self.mods)
            if o.role in FUSING_ROLES:
                return
            if o.role not in CHAIN_ROLES:
                break
            n = o.inputs[0]
        raise FuseError(f"{describe(node, self.mods)} is not after a conv, linear, add, concat or "
                        "average pool whose clamp could apply it (e.g. on the network input): "
                        "apply it on the host or after a layer", **where(node))

    def mac(self, node: fx.Node, mod: QConv2d | QLinear) -> None:
        """Conv/linear: find a BN to fold and the fused activation, then :func:`mac_record`."""
        name = node.target
        val, fmt_x, shp = self.operand(node)
        users = [u for u in node.users if u.op != "output"
                 and classify(u, self.mods).role is not Role.SHAPE]
        bn_node = users[0] if len(users) == 1 and len(node.users) == 1 else None
        bn = self.mods.get(bn_node.target) if bn_node is not None and bn_node.op == "call_module" \
            else None
        if not isinstance(bn, nn.BatchNorm2d if isinstance(mod, QConv2d) else nn.BatchNorm1d):
            bn, bn_node = None, None
        fmt_node = bn_node if bn_node is not None else node
        act = fused_activation(fmt_node, self.mods, name) or mod.act
        fmt_y = self.row_format(node, name)
        rec = mac_record(name, mod, val, fmt_x, shp, fmt_y, self.shape(fmt_node), act,
                         (bn_node.target, bn) if bn is not None else None, self.opts)
        is_conv = isinstance(mod, QConv2d)
        self.add(rec, node, TensorVal(name, node, "nhwc" if is_conv else "plain"))


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
