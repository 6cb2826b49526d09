"""The ONNX node handlers of the import walk (:class:`~t2c_sim.importers.onnx_walk.Walk`).

QDQ float ops (``Conv``, ``Gemm``, ``MatMul``, ``Add``, pools, ``Flatten``/``Reshape``) on
dequantized inputs become :class:`~t2c_sim.importers.onnx_walk.Pending` values, finished into a
record by the ``_fin_*`` function of their kind at their QuantizeLinear; ``Relu``/``Clip`` in
between tighten the clamp (on integers, QOperator, they tighten the producing record's clamp).
QOperator nodes make their record directly. :data:`HANDLERS` maps ``(domain, op_type)`` to a
handler; :func:`walk` runs them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from t2c_sim.config import OpKind
from t2c_sim.importers.onnx_model import Graph, Node
from t2c_sim.importers.onnx_records import (
    QFmt,
    Rounding,
    add_record,
    clamp_bounds,
    flatten_record,
    maxpool_record,
    pool_record,
)
from t2c_sim.importers.onnx_walk import Const, DQConst, Pending, QVal, Walk, pair

__all__ = ["HANDLERS", "FINISH", "walk"]

_MS = "com.microsoft"


def walk(graph: Graph, rounding: Rounding, m: int) -> Walk:
    """Run every node of ``graph`` through :data:`HANDLERS`; the finished :class:`Walk`."""
    wk = Walk(graph, rounding, m)
    wk.run(HANDLERS, FINISH)
    return wk


# ---- QDQ float ops: pending until their QuantizeLinear ------------------------------------------
def _h_conv(wk: Walk, node: Node) -> None:
    x = wk.act(node, 0)
    wc = wk.val(node, 1)
    if not isinstance(wc, DQConst):
        raise wk.err(node, "the weight must be a DequantizeLinear of an int8 initializer")
    attrs, shape = wk.conv_attrs(node, x.q.shape, wc.q.shape)
    w, s_w = wk.weights(node, wc.q, wc.scale, wc.zp, wc.axis, 0)
    bias = wk.bias(node, wk.opt(node, 2), w.shape[0])
    wk.vals[node.outputs[0]] = Pending(node, "conv", dict(x=x, w=w, s_w=s_w, bias=bias,
                                                          attrs=attrs), wk.check_size(node, shape))


def _h_gemm(wk: Walk, node: Node) -> None:
    x = wk.act(node, 0, "input A")
    if float(node.attr("alpha", 1.0)) != 1.0 or int(node.attr("transA", 0)) != 0:
        raise wk.err(node, "only alpha = 1 and transA = 0 are supported")
    if len(x.q.shape) != 2:
        raise wk.err(node, f"input A must be 2-D, got {list(x.q.shape)}")
    wc = wk.val(node, 1)
    if not isinstance(wc, DQConst):
        raise wk.err(node, "the weight B must be a DequantizeLinear of an int8 initializer")
    w, s_w = wk.linear_weight(node, x.q, wc, bool(node.attr("transB", 0)))
    c = wk.opt(node, 2)
    if c is not None and float(node.attr("beta", 1.0)) != 1.0:
        raise wk.err(node, "only beta = 1 is supported with a bias C")
    bias = wk.bias(node, c, w.shape[0])
    shape = (x.q.shape[0], w.shape[0])
    wk.vals[node.outputs[0]] = Pending(node, "linear", dict(x=x, w=w, s_w=s_w, bias=bias),
                                       wk.check_size(node, shape))


def _h_matmul(wk: Walk, node: Node) -> None:
    x = wk.act(node, 0, "input A")
    wc = wk.val(node, 1)
    if not isinstance(wc, DQConst):
        raise wk.err(node, "input B must be a DequantizeLinear of an int8 initializer (activation "
                           "x activation MatMul is not supported)")
    w, s_w = wk.linear_weight(node, x.q, wc, False)
    shape = (*x.q.shape[:-1], w.shape[0])
    wk.vals[node.outputs[0]] = Pending(node, "linear", dict(x=x, w=w, s_w=s_w, bias=None),
                                       wk.check_size(node, shape))


def _h_add(wk: Walk, node: Node) -> None:
    vals = [wk.val(node, i) for i in (0, 1)]
    if any(isinstance(v, (Const, DQConst)) for v in vals):
        raise wk.err(node, "an Add with a constant operand is not supported (only the residual "
                           "add of two quantized tensors)")
    a, b = wk.act(node, 0, "input A"), wk.act(node, 1, "input B")
    if a.q.shape != b.q.shape or a.q.layout != b.q.layout:
        raise wk.err(node, f"inputs differ in shape ({list(a.q.shape)} vs {list(b.q.shape)}); "
                           "broadcasting adds are not supported")
    wk.vals[node.outputs[0]] = Pending(node, "add", dict(a=a, b=b), a.q.shape)


def _pool_attrs(wk: Walk, node: Node, x_shape: tuple[int, ...], avg: bool) -> dict[str, Any]:
    if len(x_shape) != 4:
        raise wk.err(node, f"only 2-D pooling of [B, C, H, W] inputs is supported, got {list(x_shape)}")
    if node.attr("auto_pad", "NOTSET") not in ("NOTSET", "") or int(node.attr("ceil_mode", 0)):
        raise wk.err(node, "auto_pad and ceil_mode are not supported")
    if int(node.attr("storage_order", 0)) or (len(node.outputs) > 1 and node.outputs[1]):
        raise wk.err(node, "the indices output and storage_order are not supported")
    k = pair(node.attr("kernel_shape"), 1)
    pads = [int(p) for p in node.attr("pads", [0, 0, 0, 0])]
    if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
        raise wk.err(node, f"pads {pads} are not symmetric")
    pad = (pads[0], pads[1])
    if avg and any(pad) and not int(node.attr("count_include_pad", 0)):
        raise wk.err(node, "an average pool with padding needs count_include_pad = 1 (padding "
                           "counts as zeros)")
    st, dil = pair(node.attr("strides"), 1), pair(node.attr("dilations"), 1)
    if min(st + dil + k) < 1 or min(pad) < 0:
        raise wk.err(node, f"kernel {k}, strides {st} and dilations {dil} must be >= 1, pads >= 0")
    if avg and dil != (1, 1):
        raise wk.err(node, "dilated average pooling is not supported")
    wk.check_work(node, x_shape, pad, 0)
    oh = (x_shape[2] + 2 * pad[0] - dil[0] * (k[0] - 1) - 1) // st[0] + 1
    ow = (x_shape[3] + 2 * pad[1] - dil[1] * (k[1] - 1) - 1) // st[1] + 1
    if oh < 1 or ow < 1 or max(pad) >= max(k):
        raise wk.err(node, f"kernel {k}, pads {pad} do not fit the input {list(x_shape)}")
    return dict(kernel=k, stride=st, padding=pad, dilation=dil,
                shape=(x_shape[0], x_shape[1], oh, ow))


def _h_pool(kind: str):
    def handler(wk: Walk, node: Node) -> None:
        x = wk.act(node, 0)
        if kind == "gavgpool":
            if len(x.q.shape) != 4:
                raise wk.err(node, f"needs a [B, C, H, W] input, got {list(x.q.shape)}")
            b, c, h, w = x.q.shape
            attrs = dict(kernel=(h, w), stride=(1, 1), padding=(0, 0), shape=(b, c, 1, 1))
        else:
            attrs = _pool_attrs(wk, node, x.q.shape, kind == "avgpool")
        wk.vals[node.outputs[0]] = Pending(node, kind, dict(x=x, **attrs), attrs["shape"])
    return handler


def _flat_shape(wk: Walk, node: Node, shape: tuple[int, ...]) -> tuple[int, ...]:
    if node.op == "Flatten":
        axis = int(node.attr("axis", 1))
        axis = axis + len(shape) if axis < 0 else axis
        if axis != 1:
            raise wk.err(node, f"only Flatten with axis = 1 is supported, got {axis}")
        return (shape[0], int(np.prod(shape[1:], dtype=np.int64)))
    target = [int(t) for t in np.asarray(wk.const(node, 1, "the target shape")).reshape(-1)]
    if int(node.attr("allowzero", 0)) and 0 in target:
        raise wk.err(node, "allowzero with a 0 in the shape is not supported")
    out = [shape[i] if t == 0 and i < len(shape) else t for i, t in enumerate(target)]
    total = int(np.prod(shape, dtype=np.int64))
    if out.count(-1) == 1:
        rest = int(np.prod([t for t in out if t != -1], dtype=np.int64))
        out = [total // rest if t == -1 else t for t in out] if rest and total % rest == 0 else out
    if len(out) != 2 or out[0] != shape[0] or out[0] * out[1] != total:
        raise wk.err(node, f"Reshape {list(shape)} -> {target} is not supported (only flattening to "
                           "[batch, features])")
    return tuple(out)


def _h_flatten(wk: Walk, node: Node) -> None:
    v = wk.val(node, 0)
    if isinstance(v, QVal):                          # QOperator: on the integers
        shape = _flat_shape(wk, node, v.shape)
        _flatten_q(wk, node, v, v.fmt, shape, node.outputs[0])
        return
    x = wk.act(node, 0)
    shape = _flat_shape(wk, node, x.q.shape)
    wk.vals[node.outputs[0]] = Pending(node, "flatten", dict(x=x), shape)


def _flatten_q(wk: Walk, node: Node, q: QVal, fmt: QFmt, shape: tuple[int, ...], out: str) -> None:
    if len(q.shape) == 2 or q.layout != "nhwc":
        if len(q.shape) != 2:
            raise wk.err(node, f"cannot flatten a {q.layout} tensor {list(q.shape)}")
        wk.vals[out] = replace(q, tensor=out)        # [B, F] -> [B, F]: nothing to do
        return
    name = wk.name_for(node)
    rec = wk.build(node, flatten_record, name, x=fmt, shape=q.shape, inputs=(q.record,),
                   meta=wk.meta((q.record,)))
    wk.emit(node, rec, out, shape, "flat_chw", fmt, tuple(q.shape[1:4]))


def _h_act(wk: Walk, node: Node) -> None:
    v = wk.val(node, 0)
    if node.op == "Relu":
        lo, hi = 0.0, None
    else:
        lo, hi = (_clip_bound(wk, node, i, key) for i, key in ((1, "min"), (2, "max")))
    if isinstance(v, Pending) and not v.done and v.kind in ("conv", "linear", "add", "avgpool",
                                                            "gavgpool"):
        if len(wk.graph.consumers.get(node.inputs[0], [])) != 1:
            raise wk.err(node, f"the result of {v.node.op} '{v.node.label}' is used both before and "
                               "after this activation")
        v = replace(v, lo_f=lo if v.lo_f is None or (lo is not None and lo > v.lo_f) else v.lo_f,
                    hi_f=hi if v.hi_f is None or (hi is not None and hi < v.hi_f) else v.hi_f)
        wk.vals[node.outputs[0]] = v
        return
    if isinstance(v, QVal) and v.record != "input":
        _fold_int_act(wk, node, v, lo, hi)
        return
    raise wk.err(node, "can only be folded into the clamp of a conv, linear, add or average pool "
                       "that it directly follows")


def _clip_bound(wk: Walk, node: Node, i: int, key: str) -> float | None:
    """Clip's ``min``/``max``: input ``i`` (opset >= 11) or attribute ``key`` (older opsets)."""
    v = wk.opt(node, i)
    if v is None:
        a = node.attr(key)
        return None if a is None else float(a)
    if not isinstance(v, Const) or np.size(v.value) != 1:
        raise wk.err(node, f"Clip {key} must be a constant scalar")
    return float(np.asarray(v.value).reshape(-1)[0])


def _fold_int_act(wk: Walk, node: Node, v: QVal, lo: float | None, hi: float | None) -> None:
    """Relu/Clip on integers (QOperator): tighten the producing record's clamp."""
    rec = next(r for r in wk.records if r.name == v.record)
    if rec.op not in (OpKind.LINEAR, OpKind.CONV2D, OpKind.ADD, OpKind.AVGPOOL, OpKind.GAVGPOOL) \
            or len(wk.graph.consumers.get(node.inputs[0], [])) != 1:
        raise wk.err(node, f"can only be folded into a conv, linear, add or average pool whose "
                           f"only consumer it is (it follows {rec.op.value} '{rec.name}')")
    if node.op == "Relu":
        rec.lo = max(rec.lo, v.fmt.zp)
    else:                                            # Clip on integers: bounds are integers
        rec.lo = max(rec.lo, int(lo)) if lo is not None else rec.lo
        rec.hi = min(rec.hi, int(hi)) if hi is not None else rec.hi
    wk.vals[node.outputs[0]] = replace(v, tensor=node.outputs[0])
    wk.tensors[rec.name] = node.outputs[0]
    rec.meta["onnx_tensor"] = node.outputs[0]


def _h_identity(wk: Walk, node: Node) -> None:
    wk.vals[node.outputs[0]] = wk.val(node, 0)


# ---- finishing a pending float op at its QuantizeLinear ----------------------------------------
def _fin_mac(wk: Walk, p: Pending, fy: QFmt, qnode: Node) -> None:
    a = p.args
    bounds = clamp_bounds(fy, p.lo_f, p.hi_f)
    conv = p.kind == "conv"
    wk.mac(p.node, conv=conv, x=a["x"].q, fx=a["x"].fmt, w=a["w"], s_w=a["s_w"], bias=a["bias"],
           fy=fy, bounds=bounds, attrs=a.get("attrs", {}), out_shape=p.shape, out=qnode.outputs[0])


def _fin_add(wk: Walk, p: Pending, fy: QFmt, qnode: Node) -> None:
    a, b = p.args["a"], p.args["b"]
    name = wk.name_for(p.node)
    ins = (a.q.record, b.q.record)
    rec = wk.build(p.node, add_record, name, a=a.fmt, b=b.fmt, y=fy, shape=a.q.shape,
                   layout=a.q.layout, bounds=clamp_bounds(fy, p.lo_f, p.hi_f),
                   rounding=wk.rounding, inputs=ins, meta=wk.meta(ins))
    wk.emit(p.node, rec, qnode.outputs[0], p.shape, a.q.layout, fy, a.q.chw)


def _fin_pool(wk: Walk, p: Pending, fy: QFmt, qnode: Node) -> None:
    x, a = p.args["x"], p.args
    if p.kind == "maxpool":
        if not x.fmt.same(fy) or p.lo_f is not None or p.hi_f is not None:
            raise wk.err(p.node, "a max pool must keep its input's scale and zero point (and have "
                                 "no activation after it)")
        rec = wk.build(p.node, maxpool_record, wk.name_for(p.node), x=x.fmt, shape=x.q.shape,
                       kernel=a["kernel"], stride=a["stride"], padding=a["padding"],
                       dilation=a["dilation"], inputs=(x.q.record,), meta=wk.meta((x.q.record,)))
    else:
        op = OpKind.GAVGPOOL if p.kind == "gavgpool" else OpKind.AVGPOOL
        rec = wk.build(p.node, pool_record, wk.name_for(p.node), op=op, x=x.fmt, y=fy,
                       shape=x.q.shape, kernel=a["kernel"], stride=a["stride"],
                       padding=a["padding"], bounds=clamp_bounds(fy, p.lo_f, p.hi_f),
                       rounding=wk.rounding, inputs=(x.q.record,), meta=wk.meta((x.q.record,)))
    wk.emit(p.node, rec, qnode.outputs[0], p.shape, "nhwc", fy)


def _fin_flatten(wk: Walk, p: Pending, fy: QFmt, qnode: Node) -> None:
    x = p.args["x"]
    if not x.fmt.same(fy) or p.lo_f is not None or p.hi_f is not None:
        raise wk.err(p.node, "a flatten/reshape must keep its input's scale and zero point")
    _flatten_q(wk, p.node, x.q, x.fmt, p.shape, qnode.outputs[0])


FINISH = {"conv": _fin_mac, "linear": _fin_mac, "add": _fin_add, "maxpool": _fin_pool,
           "avgpool": _fin_pool, "gavgpool": _fin_pool, "flatten": _fin_flatten}


# ---- QOperator nodes: integer in, integer out --------------------------------------------------
def _h_qlinearconv(wk: Walk, node: Node) -> None:
    fx = wk.fmt(node, 1, 2, "input")
    x = wk.qin(node, 0, fx)
    w, s_w = wk.weights(node, wk.const(node, 3, "the weight"), wk.const(node, 4, "weight scale"),
                        wk.const(node, 5, "weight zero point"), 0, 0)
    fy = wk.fmt(node, 6, 7, "output")
    attrs, shape = wk.conv_attrs(node, x.shape, w.shape)
    bias = wk.bias(node, wk.opt(node, 8), w.shape[0])
    wk.mac(node, conv=True, x=x, fx=fx, w=w, s_w=s_w, bias=bias, fy=fy, bounds=(fy.qmin, fy.qmax),
           attrs=attrs, out_shape=wk.check_size(node, shape), out=node.outputs[0])


def _h_qlinearmatmul(wk: Walk, node: Node) -> None:
    fx = wk.fmt(node, 1, 2, "input A")
    x = wk.qin(node, 0, fx, "input A")
    w, s_w = wk.linear_weight(node, x, wk.const(node, 3, "input B (the weight)"), False,
                              wk.const(node, 4, "B scale"), wk.const(node, 5, "B zero point"))
    fy = wk.fmt(node, 6, 7, "output")
    wk.mac(node, conv=False, x=x, fx=fx, w=w, s_w=s_w, bias=None, fy=fy, bounds=(fy.qmin, fy.qmax),
           attrs={}, out_shape=wk.check_size(node, (*x.shape[:-1], w.shape[0])), out=node.outputs[0])


def _h_qgemm(wk: Walk, node: Node) -> None:
    fx = wk.fmt(node, 1, 2, "input A")
    x = wk.qin(node, 0, fx, "input A")
    if float(node.attr("alpha", 1.0)) != 1.0 or int(node.attr("transA", 0)) != 0:
        raise wk.err(node, "only alpha = 1 and transA = 0 are supported")
    if len(node.inputs) < 9 or not node.inputs[7]:
        raise wk.err(node, "a QGemm with a float output (no y_scale) is not supported")
    if len(x.shape) != 2:
        raise wk.err(node, f"input A must be 2-D, got {list(x.shape)}")
    w, s_w = wk.linear_weight(node, x, wk.const(node, 3, "input B (the weight)"),
                              bool(node.attr("transB", 0)), wk.const(node, 4, "B scale"),
                              wk.const(node, 5, "B zero point"))
    bias = wk.bias(node, wk.opt(node, 6), w.shape[0])
    fy = wk.fmt(node, 7, 8, "output")
    wk.mac(node, conv=False, x=x, fx=fx, w=w, s_w=s_w, bias=bias, fy=fy, bounds=(fy.qmin, fy.qmax),
           attrs={}, out_shape=wk.check_size(node, (x.shape[0], w.shape[0])), out=node.outputs[0])


def _h_qlinearadd(wk: Walk, node: Node) -> None:
    fa, fb, fy = wk.fmt(node, 1, 2, "input A"), wk.fmt(node, 4, 5, "input B"), wk.fmt(node, 6, 7, "output")
    a, b = wk.qin(node, 0, fa, "input A"), wk.qin(node, 3, fb, "input B")
    if a.shape != b.shape or a.layout != b.layout:
        raise wk.err(node, f"inputs differ in shape ({list(a.shape)} vs {list(b.shape)}); "
                           "broadcasting adds are not supported")
    ins = (a.record, b.record)
    rec = wk.build(node, add_record, wk.name_for(node), a=fa, b=fb, y=fy, shape=a.shape,
                   layout=a.layout, bounds=(fy.qmin, fy.qmax), rounding=wk.rounding, inputs=ins,
                   meta=wk.meta(ins))
    wk.emit(node, rec, node.outputs[0], a.shape, a.layout, fy, a.chw)


def _h_qlinearpool(kind: str):
    def handler(wk: Walk, node: Node) -> None:
        fx, fy = wk.fmt(node, 1, 2, "input"), wk.fmt(node, 3, 4, "output")
        x = wk.qin(node, 0, fx)
        if int(node.attr("channels_last", 0)):
            raise wk.err(node, "channels_last = 1 is not supported")
        if kind == "gavgpool":
            if len(x.shape) != 4:
                raise wk.err(node, f"needs a [B, C, H, W] input, got {list(x.shape)}")
            attrs = dict(kernel=tuple(x.shape[2:4]), stride=(1, 1), padding=(0, 0),
                         shape=(x.shape[0], x.shape[1], 1, 1))
        else:
            attrs = _pool_attrs(wk, node, x.shape, True)
        op = OpKind.GAVGPOOL if kind == "gavgpool" else OpKind.AVGPOOL
        rec = wk.build(node, pool_record, wk.name_for(node), op=op, x=fx, y=fy, shape=x.shape,
                       kernel=attrs["kernel"], stride=attrs["stride"], padding=attrs["padding"],
                       bounds=(fy.qmin, fy.qmax), rounding=wk.rounding, inputs=(x.record,),
                       meta=wk.meta((x.record,)))
        wk.emit(node, rec, node.outputs[0], attrs["shape"], "nhwc", fy)
    return handler


def _h_maxpool(wk: Walk, node: Node) -> None:
    v = wk.val(node, 0)
    if not isinstance(v, QVal):
        _h_pool("maxpool")(wk, node)
        return
    a = _pool_attrs(wk, node, v.shape, False)
    rec = wk.build(node, maxpool_record, wk.name_for(node), x=v.fmt, shape=v.shape,
                   kernel=a["kernel"], stride=a["stride"], padding=a["padding"],
                   dilation=a["dilation"], inputs=(v.record,), meta=wk.meta((v.record,)))
    wk.emit(node, rec, node.outputs[0], a["shape"], "nhwc", v.fmt)


HANDLERS = {
    ("", "QuantizeLinear"): Walk.quantize, ("", "DequantizeLinear"): Walk.dequantize,
    ("", "Conv"): _h_conv, ("", "Gemm"): _h_gemm, ("", "MatMul"): _h_matmul, ("", "Add"): _h_add,
    ("", "MaxPool"): _h_maxpool, ("", "AveragePool"): _h_pool("avgpool"),
    ("", "GlobalAveragePool"): _h_pool("gavgpool"), ("", "Flatten"): _h_flatten,
    ("", "Reshape"): _h_flatten, ("", "Relu"): _h_act, ("", "Clip"): _h_act,
    ("", "Identity"): _h_identity,
    ("", "QLinearConv"): _h_qlinearconv, ("", "QLinearMatMul"): _h_qlinearmatmul,
    (_MS, "QGemm"): _h_qgemm, (_MS, "QLinearAdd"): _h_qlinearadd,
    (_MS, "QLinearGlobalAveragePool"): _h_qlinearpool("gavgpool"),
    (_MS, "QLinearAveragePool"): _h_qlinearpool("avgpool"),
}
