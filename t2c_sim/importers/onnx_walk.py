"""The walk over an ONNX graph that turns QDQ and QOperator patterns into layer records.

Every tensor name gets a symbolic value as the nodes are visited in file (topological) order:

- :class:`FloatIn`: the network's float input, before its QuantizeLinear;
- :class:`QVal`: integers of the integer network (``record`` produced them; ``"input"`` is the
  host-quantized network input), with their format, ONNX shape and the layout the records hold
  them in (``nhwc``: a ``[B, C, H, W]`` tensor kept channel-last; ``flat_chw``: flattened from
  one, ``(h, w, c)`` order; ``plain``);
- :class:`DQVal`: a DequantizeLinear of a :class:`QVal` (the real value ``s * (q - z)``; ``s, z``
  are the DequantizeLinear's, which define the consumer's input format);
- :class:`Const` / :class:`DQConst`: initializers, and dequantized ones (weights, int32 bias);
- :class:`Pending`: a float op on dequantized inputs (QDQ ``Conv``, ``Gemm``, ``Add``, pools,
  ``Flatten``...) waiting for the QuantizeLinear that gives its output format; ``Relu`` and
  ``Clip`` in between tighten its clamp.

A QuantizeLinear of a :class:`Pending` makes the record; QOperator nodes (``QLinearConv``,
``QLinearMatMul``, ``QGemm``, ``QLinearAdd``, ``QLinearGlobalAveragePool``, ``QLinearAveragePool``,
and ``MaxPool``/``Flatten``/``Reshape`` on integers) make it directly. Anything else is one
:class:`~t2c_sim.errors.OnnxError` naming the node (name, op type, index) and what is supported.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from t2c_sim.errors import OnnxError, T2CError
from t2c_sim.importers import onnx_model
from t2c_sim.importers.onnx_model import Graph, Node
from t2c_sim.importers.onnx_records import QFmt, Rounding, mac_record
from t2c_sim.record import LayerRecord

__all__ = ["SUPPORTED", "FloatIn", "QVal", "DQVal", "Const", "DQConst", "Pending", "Walk", "pair"]

#: What the importer accepts, as the error messages list it.
SUPPORTED = ("QuantizeLinear, DequantizeLinear, Conv, Gemm, MatMul, Add, MaxPool, AveragePool, "
             "GlobalAveragePool, Relu, Clip, Flatten, Reshape, Identity (QDQ); QLinearConv, "
             "QLinearMatMul, QGemm, QLinearAdd, QLinearGlobalAveragePool, QLinearAveragePool "
             "(QOperator)")
_INT8, _UINT8 = np.dtype(np.int8), np.dtype(np.uint8)


@dataclass(frozen=True)
class FloatIn:
    shape: tuple[int, ...]


@dataclass(frozen=True)
class QVal:
    record: str
    fmt: QFmt
    shape: tuple[int, ...]
    layout: str
    tensor: str
    chw: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class DQVal:
    q: QVal
    fmt: QFmt


@dataclass(frozen=True)
class Const:
    value: np.ndarray


@dataclass(frozen=True)
class DQConst:
    q: np.ndarray
    scale: np.ndarray
    zp: np.ndarray
    axis: int | None


@dataclass
class Pending:
    node: Node
    kind: str
    args: dict[str, Any]
    shape: tuple[int, ...]
    lo_f: float | None = None
    hi_f: float | None = None
    done: bool = False


def pair(v: Any, default: int) -> tuple[int, int]:
    if v is None:
        return default, default
    v = [int(t) for t in v]
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


@dataclass
class Walk:
    """One walk over ``graph``: records in execution order, the host-side input format."""

    graph: Graph
    rounding: Rounding
    m: int
    vals: dict[str, Any] = field(default_factory=dict)
    records: list[LayerRecord] = field(default_factory=list)
    input_fmt: QFmt | None = None
    input_tensor: str = ""
    tensors: dict[str, str] = field(default_factory=dict)   # record -> ONNX tensor of its output
    output: QVal | None = None
    finishers: dict[str, Any] = field(default_factory=dict)

    # ---- helpers ------------------------------------------------------------------------
    def err(self, node: Node, detail: str) -> OnnxError:
        return node.error(detail, file=self.graph.path)     # printable: names come from the file

    def val(self, node: Node, i: int) -> Any:
        if i >= len(node.inputs) or not node.inputs[i]:
            raise self.err(node, f"input {i} is missing")
        name = node.inputs[i]
        if name not in self.vals:
            raise self.err(node, f"input '{name}' is not produced by an earlier node")
        return self.vals[name]

    def opt(self, node: Node, i: int) -> Any:
        return self.val(node, i) if i < len(node.inputs) and node.inputs[i] else None

    def const(self, node: Node, i: int, what: str) -> np.ndarray:
        v = self.val(node, i)
        if not isinstance(v, Const):
            raise self.err(node, f"{what} (input {i}) must be a constant initializer")
        return v.value

    def fmt(self, node: Node, si: int, zi: int, what: str) -> QFmt:
        """The per-tensor 8-bit format of inputs ``si`` (scale) and ``zi`` (zero point)."""
        s = np.asarray(self.const(node, si, f"{what} scale"))
        if s.size != 1:
            raise self.err(node, f"{what}: per-channel activation quantization ({s.size} scales) is "
                                 "not supported (activations are per tensor)")
        s32 = np.float32(s.reshape(-1)[0])
        if not np.isfinite(s32) or s32 <= 0:
            raise self.err(node, f"{what}: scale {float(s32)!r} is not finite and > 0")
        if node.attr("block_size"):
            raise self.err(node, f"{what}: blocked quantization (block_size) is not supported")
        if zi < len(node.inputs) and node.inputs[zi]:
            z = np.asarray(self.const(node, zi, f"{what} zero point"))
        else:                                   # no zero point: 0 of output_dtype (uint8 default)
            z = np.zeros((), dtype={3: np.int8, 2: np.uint8}.get(node.attr("output_dtype", 2),
                                                                  np.float32))
        if z.size != 1 or z.dtype not in (_INT8, _UINT8):
            raise self.err(node, f"{what}: zero point of type {z.dtype} and size {z.size} (only "
                                 "8-bit int8/uint8 per-tensor quantization is supported)")
        return QFmt(float(s32), int(z.reshape(-1)[0]), z.dtype == _INT8)

    def act(self, node: Node, i: int, what: str = "input") -> DQVal:
        v = self.val(node, i)
        if isinstance(v, DQVal):
            return v
        if isinstance(v, Pending):
            raise self.err(node, f"{what} '{node.inputs[i]}' is the float result of "
                                 f"{v.node.op} '{v.node.label}' (node #{v.node.index}), which is "
                                 "not quantized (no QuantizeLinear after it)")
        raise self.err(node, f"{what} '{node.inputs[i]}' must be a dequantized activation "
                             "(DequantizeLinear of a quantized tensor)")

    def qin(self, node: Node, i: int, fmt: QFmt, what: str = "input") -> QVal:
        v = self.val(node, i)
        if not isinstance(v, QVal):
            raise self.err(node, f"{what} '{node.inputs[i]}' must be a quantized (int8/uint8) "
                                 "tensor")
        if v.fmt.signed != fmt.signed:
            raise self.err(node, f"{what} is {'int8' if v.fmt.signed else 'uint8'} but its zero "
                                 f"point is {'int8' if fmt.signed else 'uint8'}")
        return v

    def name_for(self, node: Node) -> str:
        base = node.label
        name, k = base, 1
        while name == "input" or name in self.tensors:
            k += 1
            name = f"{base}_{k}"
        return name

    def check_size(self, node: Node, shape: tuple[int, ...]) -> tuple[int, ...]:
        n = int(np.prod(shape, dtype=object)) if shape else 1
        limit = onnx_model.MAX_TENSOR_ELEMS
        if n > limit:
            raise self.err(node, f"output of {n} elements, more than the limit {limit}")
        if n <= 0:
            raise self.err(node, f"output shape {list(shape)} is empty")
        return shape

    def build(self, node: Node, fn: Any, *args: Any, **kw: Any) -> LayerRecord:
        """``fn(*args, **kw)`` (a record builder); its errors come back naming ``node``."""
        try:
            return fn(*args, **kw)
        except OnnxError as e:
            raise self.err(node, e.detail) from None

    def emit(self, node: Node, rec: LayerRecord, out: str, shape: tuple[int, ...], layout: str,
             fmt: QFmt, chw: tuple[int, int, int] | None = None) -> None:
        rec.meta.update(onnx_node=node.label, onnx_op=node.op, onnx_index=node.index,
                        onnx_tensor=out, out_layout=layout, out_chw=list(chw) if chw else None)
        try:
            rec.validate()
        except Exception as e:  # noqa: BLE001 - a record the graph cannot make is a model error
            raise self.err(node, f"cannot make an integer layer: {e}") from None
        self.records.append(rec)
        self.tensors[rec.name] = out
        self.vals[out] = QVal(rec.name, fmt, self.check_size(node, shape), layout, out, chw)

    def meta(self, inputs: tuple[str, ...]) -> dict[str, Any]:
        if "input" in inputs and self.input_fmt is not None:
            return {"input_quant": self.input_fmt.json()}
        return {}

    # ---- the walk ------------------------------------------------------------------------
    def run(self, handlers: dict[tuple[str, str], Any], finishers: dict[str, Any]) -> None:
        """Visit every node with ``handlers[(domain, op)]`` (a QuantizeLinear finishes a pending
        op with ``finishers[kind]``); then find the network output."""
        self.finishers = finishers
        g = self.graph
        for name, arr in g.inits.items():
            self.vals[name] = Const(arr)
        self.vals[g.input_name] = FloatIn(g.input_shape)
        for node in g.nodes:
            handler = handlers.get((node.domain if node.domain != "ai.onnx" else "", node.op))
            if handler is None:
                dom = f" (domain {node.domain})" if node.domain else ""
                raise self.err(node, f"op {node.op}{dom} is not supported; supported: {SUPPORTED}")
            try:
                handler(self, node)
            except T2CError:
                raise
            except (ValueError, TypeError, IndexError, KeyError, OverflowError,
                    ZeroDivisionError) as e:   # malformed attributes or initializers
                msg = " ".join(str(e).split())[:200]
                raise self.err(node, f"malformed attributes or inputs ({type(e).__name__}: "
                                     f"{msg})") from None
        if len(g.outputs) != 1:
            raise g.error(f"the graph has {len(g.outputs)} outputs; the importer takes networks "
                          "with exactly one output")
        out = self.vals.get(g.outputs[0])
        if isinstance(out, DQVal):
            out = out.q
        if isinstance(out, Pending):
            raise self.err(out.node, "its float output is the network output, not quantized (the "
                                     "importer needs a QuantizeLinear after the last layer)")
        if not isinstance(out, QVal) or out.record == "input" or not self.records:
            raise g.error(f"the network output '{g.outputs[0]}' is not produced by an integer layer")
        self.output = out

    # ---- QuantizeLinear / DequantizeLinear -------------------------------------------------
    def quantize(self, node: Node) -> None:
        fmt = self.fmt(node, 1, 2, "QuantizeLinear")
        src, out = self.val(node, 0), node.outputs[0]
        if isinstance(src, FloatIn):
            if self.input_fmt is not None:
                raise self.err(node, "the network input is quantized twice")
            self.input_fmt, self.input_tensor = fmt, out
            layout = "nhwc" if len(src.shape) == 4 else "plain"
            self.vals[out] = QVal("input", fmt, src.shape, layout, out)
            self.tensors["input"] = out
        elif isinstance(src, Pending):
            if src.done:
                raise self.err(node, f"the float result of {src.node.op} '{src.node.label}' is "
                                     "quantized twice")
            src.done = True
            self.finishers[src.kind](self, src, fmt, node)
        elif isinstance(src, DQVal):
            if not src.fmt.same(fmt):
                raise self.err(node, "requantizes a tensor to another scale/zero point "
                                     f"({src.fmt.json()} -> {fmt.json()}), which is not supported")
            self.vals[out] = replace(src.q, tensor=out, fmt=fmt)   # Q(DQ(q)) = q, read as fmt
        else:
            raise self.err(node, f"cannot quantize input '{node.inputs[0]}' (not the network input "
                                 "nor the result of a supported op)")

    def dequantize(self, node: Node) -> None:
        src = self.val(node, 0)
        out = node.outputs[0]
        if isinstance(src, Const):
            q = np.asarray(src.value)
            s = np.asarray(self.const(node, 1, "scale"), dtype=np.float32)
            z = (np.asarray(self.const(node, 2, "zero point")) if len(node.inputs) > 2
                 and node.inputs[2] else np.zeros(s.shape, q.dtype))
            axis = node.attr("axis", 1) if s.size > 1 else None
            if axis is not None and axis < 0:
                axis += q.ndim
            self.vals[out] = DQConst(q, s, z, axis)
        elif isinstance(src, QVal):
            fmt = self.fmt(node, 1, 2, "DequantizeLinear")
            self.qin(node, 0, fmt)
            self.vals[out] = DQVal(src, fmt)
        else:
            raise self.err(node, f"input '{node.inputs[0]}' is neither a quantized tensor nor a "
                                 "constant")

    # ---- weights and bias ------------------------------------------------------------------
    def weights(self, node: Node, w: np.ndarray, s: np.ndarray, z: np.ndarray, axis: int | None,
                c_axis: int) -> tuple[np.ndarray, np.ndarray]:
        """``(W int64, s_w float32 [C_out])``: int8, zero point 0, per tensor or along ``c_axis``."""
        if w.dtype != _INT8:
            raise self.err(node, f"weights are {w.dtype}; only int8 weights (symmetric, zero point "
                                 "0) are supported")
        z = np.asarray(z)
        if z.size and np.any(z != 0):
            raise self.err(node, "weights have a nonzero zero point (per-tensor or per-channel "
                                 "asymmetric weights); only symmetric weights (zero point 0) are "
                                 "supported")
        c_out = w.shape[c_axis]
        s = np.asarray(s, dtype=np.float32).reshape(-1)
        if s.size == 1:
            s = np.full(c_out, s[0], dtype=np.float32)
        elif s.size != c_out or (axis is not None and axis != c_axis):
            raise self.err(node, f"weight scales ({s.size} along axis {axis}) must be per tensor or "
                                 f"per output channel (axis {c_axis}, {c_out} scales)")
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise self.err(node, "weight scales must be finite and > 0")
        return w.astype(np.int64), s

    def bias(self, node: Node, b: Any, c_out: int) -> np.ndarray | None:
        if b is None:
            return None
        if isinstance(b, DQConst):
            q, zp = b.q, b.zp
        elif isinstance(b, Const):
            q, zp = b.value, np.zeros(1)
        else:
            raise self.err(node, "the bias must be a constant int32 tensor")
        if q.dtype != np.int32:
            raise self.err(node, f"the bias is {q.dtype}; only an int32 bias (quantized with "
                                 "scale s_x * s_w, zero point 0) is supported")
        if np.any(np.asarray(zp) != 0):
            raise self.err(node, "the int32 bias has a nonzero zero point")
        q = q.reshape(-1)
        if q.size == 1 and c_out > 1:
            q = np.full(c_out, q[0], dtype=np.int32)
        if q.size != c_out:
            raise self.err(node, f"the bias has {q.size} values for {c_out} output channels")
        return q.astype(np.int64)

    # ---- MAC layers --------------------------------------------------------------------------
    def conv_attrs(self, node: Node, x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                   ) -> tuple[dict[str, Any], tuple[int, ...]]:
        if len(x_shape) != 4 or len(w_shape) != 4:
            raise self.err(node, f"only 2-D convolutions of [B, C, H, W] inputs are supported (input "
                                 f"{list(x_shape)}, weight {list(w_shape)})")
        if node.attr("auto_pad", "NOTSET") not in ("NOTSET", ""):
            raise self.err(node, f"auto_pad={node.attr('auto_pad')} is not supported (export with "
                                 "explicit pads)")
        pads = [int(p) for p in node.attr("pads", [0, 0, 0, 0])]
        if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
            raise self.err(node, f"pads {pads} are not symmetric (top = bottom, left = right)")
        ks = node.attr("kernel_shape")
        if ks is not None and tuple(int(k) for k in ks) != tuple(w_shape[2:]):
            raise self.err(node, f"kernel_shape {list(ks)} does not match the weight {list(w_shape)}")
        groups = int(node.attr("group", 1))
        if groups < 1 or x_shape[1] != w_shape[1] * groups or w_shape[0] % groups:
            raise self.err(node, f"group={groups} does not fit input channels {x_shape[1]} and "
                                 f"weight {list(w_shape)}")
        st, dil = pair(node.attr("strides"), 1), pair(node.attr("dilations"), 1)
        pad = (pads[0], pads[1])
        if min(st + dil) < 1 or min(pad) < 0:
            raise self.err(node, f"strides {st} and dilations {dil} must be >= 1, pads >= 0")
        oh = (x_shape[2] + 2 * pad[0] - dil[0] * (w_shape[2] - 1) - 1) // st[0] + 1
        ow = (x_shape[3] + 2 * pad[1] - dil[1] * (w_shape[3] - 1) - 1) // st[1] + 1
        if oh < 1 or ow < 1:
            raise self.err(node, f"strides {st}, dilations {dil} or the kernel do not fit the input "
                                 f"{list(x_shape)}")
        self.check_work(node, x_shape, pad, x_shape[0] * oh * ow * w_shape[1] * w_shape[2] * w_shape[3])
        return (dict(stride=st, padding=pad, dilation=dil, groups=groups),
                (x_shape[0], w_shape[0], oh, ow))

    def check_work(self, node: Node, x_shape: tuple[int, ...], pad: tuple[int, int],
                   cols: int) -> None:
        """Bound what the golden model allocates: the padded input and the im2col matrix."""
        limit = onnx_model.MAX_TENSOR_ELEMS
        padded = x_shape[0] * x_shape[1] * (x_shape[2] + 2 * pad[0]) * (x_shape[3] + 2 * pad[1])
        if padded > limit or cols > limit:
            raise self.err(node, f"the padded input ({padded} elements) or its im2col matrix "
                                 f"({cols} elements) is more than the limit {limit}")

    def mac(self, node: Node, *, conv: bool, x: QVal, fx: QFmt, w: np.ndarray, s_w: np.ndarray,
            bias: np.ndarray | None, fy: QFmt, bounds: tuple[int, int], attrs: dict[str, Any],
            out_shape: tuple[int, ...], out: str) -> None:
        if conv and x.layout != "nhwc":
            raise self.err(node, "a convolution needs a [B, C, H, W] input")
        if not conv and x.layout == "nhwc":
            raise self.err(node, "a linear layer on a 4-D [B, C, H, W] tensor is not supported "
                                 "(flatten it first)")
        name = self.name_for(node)
        rec = self.build(node, mac_record, name, conv=conv, x=fx, x_shape=x.shape, layout=x.layout,
                         chw=x.chw, w=w, s_w=s_w, bias=bias, y=fy, bounds=bounds, m=self.m,
                         rounding=self.rounding, inputs=(x.record,), attrs=attrs,
                         meta=self.meta((x.record,)))
        self.emit(node, rec, out, out_shape, "nhwc" if conv else "plain", fy)

    def linear_weight(self, node: Node, x: QVal, wc: DQConst | np.ndarray, trans_b: bool,
                      s: Any = None, z: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """``(W [N, K], s_w [N])`` of a Gemm/MatMul weight ``B`` (``[K, N]``, or ``[N, K]`` if
        ``trans_b``), per tensor or per output column."""
        if isinstance(wc, DQConst):
            w, s, z, axis = wc.q, wc.scale, wc.zp, wc.axis
        else:
            w, axis = np.asarray(wc), (None if np.size(s) == 1 else (0 if trans_b else 1))
        if w.ndim != 2:
            raise self.err(node, f"the weight must be a 2-D constant, got shape {list(w.shape)}")
        if x.shape[-1] != w.shape[1 if trans_b else 0]:
            raise self.err(node, f"input {list(x.shape)} does not match the weight {list(w.shape)}")
        w, s_w = self.weights(node, w, s, z, axis, 0 if trans_b else 1)
        return (w if trans_b else w.T.copy()), s_w
