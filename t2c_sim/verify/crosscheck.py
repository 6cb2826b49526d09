"""Cross-check the fake-quant model against the integer records, layer by layer and end to end.

Layer-local check (``layer_diffs``): for every layer with arithmetic (conv, linear, average
pools, residual add, concat) the SAME integer input ``x_q`` (the golden model's input to that layer) is
fed to both paths:

- integer: the golden layer (``t2c_sim.golden.run_network``) -> ``y_int``;
- fake-quant: ``x = s_x * (x_q - z_x)`` (float32) in torch layout -> the wrapper module (its
  own quantizers, plus a not-yet-folded BN and the fused activation; a token-wise input
  quantizer is bypassed, ``x`` already being its integers at the record's row scales) -> quantize
  with the output format: ``y_fq = clamp(round_half_even(y / s_y) + z_y, qmin, qmax)``.

The difference ``y_fq - y_int`` is reported in LSBs: ``{"max": .., "nonzero_rate": ..,
"hist": {diff: count}, "n": ..}`` per layer name. Legitimate 1-LSB sources are described in
``docs/crosscheck.md``; with power-of-two scales and quantized biases the two paths agree
exactly. End to end (``end_to_end``): top-1 accuracy of the float, fake-quant and integer
models and top-1 agreement of fake-quant vs integer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from t2c_sim.config import OpKind
from t2c_sim.errors import FuseError
from t2c_sim.fuse import quantize_input, run_fake_quant
from t2c_sim.golden import run_network
from t2c_sim.layout import hwc_to_chw
from t2c_sim.quant.modules import frozen
from t2c_sim.record import LayerRecord
from t2c_sim.verify.torch_int import run_network_torch

__all__ = ["layer_diffs", "end_to_end", "lsb_stats", "integer_forward", "CHECKED_OPS"]

log = logging.getLogger(__name__)

CHECKED_OPS = (OpKind.CONV2D, OpKind.LINEAR, OpKind.AVGPOOL, OpKind.GAVGPOOL, OpKind.ADD,
               OpKind.CONCAT, OpKind.MATMUL, OpKind.SOFTMAX, OpKind.LAYERNORM, OpKind.GELU)


def lsb_stats(diff: np.ndarray) -> dict[str, Any]:
    """``{"max": max|d|, "nonzero_rate": mean(d != 0), "hist": {d: count}, "n": size}``."""
    d = np.asarray(diff, dtype=np.int64).ravel()
    vals, counts = np.unique(d, return_counts=True)
    return {"max": int(np.abs(d).max()) if d.size else 0,
            "nonzero_rate": float(np.mean(d != 0)) if d.size else 0.0,
            "hist": {int(v): int(c) for v, c in zip(vals, counts)}, "n": int(d.size)}


def _to_torch_layout(rec: LayerRecord, x: np.ndarray) -> torch.Tensor:
    where = rec.meta.get("layout", "plain")
    if where == "flat_chw":
        x = hwc_to_chw(x, *rec.meta["chw"])          # integer (h, w, c) -> torch (c, h, w)
    t = torch.from_numpy(np.ascontiguousarray(x))
    return t.permute(0, 3, 1, 2) if where == "nhwc" else t


def _scale(s: Any, like: torch.Tensor) -> torch.Tensor:
    """Scale (float32) broadcastable to ``like``: scalar, or one per row of ``like[..., C]``."""
    st = torch.as_tensor(s, dtype=torch.float32)
    if st.dim() == 0:
        return st
    return st.reshape(tuple(like.shape[:-1]) + (1,))


def _dequant(rec: LayerRecord, x: np.ndarray, s: Any, z: int) -> torch.Tensor:
    t = _to_torch_layout(rec, x)
    st = _scale(s, torch.from_numpy(np.ascontiguousarray(x)))
    if st.dim() and rec.meta.get("layout") == "plain":
        st = st.reshape(tuple(t.shape[:-1]) + (1,))
    return st * (t - z).to(torch.float32)


def _act(y: torch.Tensor, act: str | None) -> torch.Tensor:
    return F.relu(y) if act == "relu" else F.relu6(y) if act == "relu6" else y


class _given_token_scales:  # noqa: N801 - a context used like a function
    """Token-wise input quantizers of ``mod`` are set aside while it runs on inputs that are
    already integers of the record's scales: a dynamic quantizer would re-derive its scales from
    the dequantized row (LSQ's clip ratio ``alpha < 1`` gives ``alpha * s`` the second time)."""

    def __init__(self, mod: nn.Module) -> None:
        self.mod = mod
        self.saved = {k: getattr(mod, k) for k in ("aq", "bq", "qa", "qb")
                      if getattr(getattr(mod, k, None), "granularity", None) == "token"}

    def __enter__(self) -> None:
        for k in self.saved:
            setattr(self.mod, k, None)

    def __exit__(self, *exc: Any) -> None:
        for k, q in self.saved.items():
            setattr(self.mod, k, q)


def _fake_layer(model: nn.Module, rec: LayerRecord, inputs: Sequence[np.ndarray]) -> np.ndarray:
    meta = rec.meta
    try:
        mod = model.get_submodule(meta["module"])
    except (AttributeError, KeyError) as e:
        raise FuseError(f"no module for it in the model ({e})", layer=rec.name) from None
    if rec.op is OpKind.ADD:
        a = _dequant(rec, inputs[0], meta["s_x"], rec.z_x)
        if rec.const_q is not None:      # x + c: the constant as its integers, dequantized
            b = _dequant(rec, np.broadcast_to(rec.const_q, inputs[0].shape), meta["s_b"], rec.z_b)
            xs = [b, a] if meta.get("const_operand") == 0 else [a, b]
        else:
            xs = [a, _dequant(rec, inputs[1], meta["s_b"], rec.z_b)]
    elif rec.op is OpKind.CONCAT:
        xs = [_dequant(rec, x, s, z) for x, s, z in zip(inputs, meta["s_in"], rec.params["z_in"])]
        if rec.const_q is not None:      # class tokens: the output format's integers
            lead = inputs[0].shape[:-2]
            c = _dequant(rec, np.broadcast_to(rec.const_q, (*lead, *rec.const_q.shape)),
                         meta["s_y"], rec.z_y)
            xs = list(torch.split(c, meta.get("const_tokens") or [c.shape[-2]], dim=-2)) + xs
    elif rec.op is OpKind.MATMUL:
        b = _dequant(rec, inputs[1], meta["s_b"], rec.z_b)
        if rec.trans_b != getattr(mod, "trans_b", False):
            b = b.transpose(-1, -2)      # stored [..., C, K]; the module multiplies as written
        xs = [_dequant(rec, inputs[0], meta["s_x"], rec.z_x), b]
    else:
        xs = [_dequant(rec, inputs[0], meta["s_x"], rec.z_x)]
    with _given_token_scales(mod):
        y = mod(*xs)
    if meta.get("bn"):
        y = model.get_submodule(meta["bn"])(y)
    y = _act(y, meta.get("act"))
    if y.dim() == 4 and (rec.op is OpKind.CONV2D or meta.get("layout") == "nhwc"):
        y = y.permute(0, 2, 3, 1)
    lo, hi = rec.y_range
    q = torch.round(y / _scale(meta["s_y"], y)) + rec.z_y
    return torch.clamp(q, lo, hi).to(torch.int64).numpy()


def layer_diffs(model: nn.Module, records: Sequence[LayerRecord], x_q: np.ndarray,
                ) -> dict[str, dict[str, Any]]:
    """Layer-local LSB differences fake-quant minus integer, keyed by layer name (see module).

    A concat without input scales in its meta (a transformer class-token concat built by hand,
    not by fuse) is skipped.
    """
    trace = run_network(records, x_q)
    out: dict[str, dict[str, Any]] = {}
    with frozen(model):
        for rec in records:
            if rec.op not in CHECKED_OPS or (rec.op is OpKind.CONCAT and "s_in" not in rec.meta):
                continue
            y_fq = _fake_layer(model, rec, trace.inputs[rec.name])
            y_int = trace.outputs[rec.name].y
            if y_fq.shape != y_int.shape:
                raise FuseError(f"fake-quant output {y_fq.shape} vs integer {y_int.shape}",
                                layer=rec.name)
            out[rec.name] = lsb_stats(y_fq - y_int)
            log.debug("crosscheck %s: %s", rec.name, out[rec.name])
    return out


def integer_forward(records: Sequence[LayerRecord], x_q: np.ndarray) -> np.ndarray:
    """Network output of the golden model on the integer input (last record's ``y``)."""
    return run_network(records, x_q).output


def end_to_end(float_model: nn.Module | None, qmodel: nn.Module, records: Sequence[LayerRecord],
               x: torch.Tensor, y: torch.Tensor | None) -> dict[str, Any]:
    """Top-1 accuracies (percent) of float, fake-quant and integer models and their agreement.

    Top-1 is the argmax over the last axis: of the logits ``[B, classes]``, or of every token of a
    ``[B, T, D]`` output (a transformer block: the agreements then count tokens).

    ``records`` must be valid for ``x`` (token-wise records are input-specific: fuse on ``x``).
    Also reports whether the NumPy and PyTorch integer paths give identical outputs. Without
    labels (``y = None``: synthetic inputs) there are no accuracies; ``float_agreement`` is the
    top-1 agreement of the integer model with the float model instead.
    """
    labels = None if y is None else y.numpy()
    res: dict[str, Any] = {"n": int(len(x))}
    ft = None
    if float_model is not None:
        with torch.no_grad():
            was = float_model.training
            float_model.eval()
            ft = float_model(x).argmax(-1).numpy()
            float_model.train(was)
    fq = run_fake_quant(qmodel, x).argmax(-1).numpy()
    xq = quantize_input(qmodel, x)
    out_np = integer_forward(records, xq)
    out_t = run_network_torch(records, xq)[records[-1].name][1].numpy()
    it = out_np.argmax(-1)     # top-1 over the last axis: per sample, or per token of [B, T, D]
    if ft is not None:
        ft = ft.reshape(it.shape)
    if labels is not None:
        if ft is not None:
            res["float_acc"] = 100.0 * float(np.mean(ft == labels))
        res.update(fake_quant_acc=100.0 * float(np.mean(fq == labels)),
                   integer_acc=100.0 * float(np.mean(it == labels)))
    elif ft is not None:
        res["float_agreement"] = 100.0 * float(np.mean(ft == it))
    res.update(top1_agreement=100.0 * float(np.mean(fq == it)),
               numpy_torch_identical=bool(np.array_equal(out_np, out_t)))
    return res
