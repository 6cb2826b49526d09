"""fx node helpers for the op table (:mod:`t2c_sim.quant.ops`): the user's source line of a
node, a readable name of its op, the one error for an unsupported op (with what to do
instead), and shape queries (``x.size(0)``), which carry no tensor data.
"""

from __future__ import annotations

import math
import operator
import os
import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from t2c_sim.errors import ModelError

__all__ = ["source_of", "where", "describe", "unsupported", "is_shape", "ACT_HINT"]

_TORCH_DIR = os.path.dirname(torch.__file__)
_HERE = os.path.dirname(os.path.abspath(__file__))


# ---- where a node comes from -----------------------------------------------------------------
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)\n(?P<code>[^\n]*)')


def source_of(node: fx.Node) -> tuple[str, int, str] | None:
    """``(file, line, code)`` of the user's source line that created ``node``, if fx recorded it.

    The innermost frame of the recorded stack trace outside torch and this package's tracer.
    """
    st = node.stack_trace or node.meta.get("stack_trace")
    if not st:
        return None
    best = None
    for m in _FRAME.finditer(st):
        f = m.group("file")
        if f.startswith(_TORCH_DIR) or f.startswith(_HERE) or f.startswith("<"):
            continue
        best = (f, int(m.group("line")), m.group("code").strip())
    return best


def where(node: fx.Node) -> dict[str, Any]:
    """Context fields naming ``node``: ``node``, plus ``file`` and ``line`` of its source."""
    src = source_of(node)
    ctx: dict[str, Any] = {"node": node.name}
    if src is not None:
        ctx.update(file=src[0], line=src[1])
    return ctx


def describe(node: fx.Node, mods: Mapping[str, nn.Module] | None = None) -> str:
    """A readable name of the op: ``F.max_pool2d``, ``nn.Sigmoid 'act'``, ``tensor.view``."""
    if node.op == "call_module":
        mod = (mods or {}).get(node.target)
        return f"{type(mod).__name__ if mod is not None else 'module'} '{node.target}'"
    if node.op == "call_method":
        return f"tensor.{node.target}"
    if node.op == "get_attr":
        return f"attribute '{node.target}'"
    t = node.target
    for prefix, modl in (("F.", F), ("torch.", torch), ("operator.", operator)):
        for name in dir(modl):
            if not name.startswith("_") and getattr(modl, name, None) is t:
                return prefix + name
    return getattr(t, "__qualname__", None) or getattr(t, "__name__", None) or repr(t)


def unsupported(node: fx.Node, mods: Mapping[str, nn.Module] | None, why: str = "",
                hint: str | None = None) -> ModelError:
    """The one error for an op the integer model does not have (``raise unsupported(...)``)."""
    what = describe(node, mods)
    src = source_of(node)
    code = f" (`{src[2]}`)" if src and src[2] else ""
    reason = f": {why}" if why else " is not an integer op (SPEC sections 2-3 and 7-10)"
    return ModelError(f"{what}{code}{reason}; {hint or _hint(node, mods)}", **where(node))


ACT_HINT = ("only ReLU and ReLU6 (hardtanh(0, 6)) exist in the integer model, fused into the "
             "producer's clamp: use nn.ReLU / nn.ReLU6")
#: What to do instead, by op name (function, method or module class).
_HINT_GROUPS: tuple[tuple[str, str], ...] = (
    ("sigmoid tanh silu hardswish hardsigmoid mish leaky_relu elu selu celu softplus prelu "
     "logsigmoid Sigmoid Tanh SiLU Hardswish Hardsigmoid Mish LeakyReLU ELU SELU CELU "
     "Softplus PReLU", ACT_HINT + " (GELU has an integer table: nn.GELU / F.gelu)"),
    ("log_softmax LogSoftmax", "return the logits: log_softmax belongs to the loss "
     "(F.cross_entropy applies it) and does not change the argmax"),
    ("mul sub truediv div floordiv neg rsub", "no elementwise integer multiply/subtract/divide "
     "here: fold constant factors into the neighbouring conv or linear (weights and bias), or "
     "next to a matmul (the attention scale q @ k.transpose(-2, -1) * d ** -0.5)"),
    ("interpolate upsample Upsample UpsamplingNearest2d UpsamplingBilinear2d pixel_shuffle",
     "no integer resampling op: resize the input on the host"),
    ("GroupNorm InstanceNorm2d group_norm batch_norm instance_norm",
     "only BatchNorm directly after a conv (BatchNorm2d) or linear (BatchNorm1d) folds into it, "
     "and nn.LayerNorm over the last axis is an integer op"),
    ("Conv1d Conv3d ConvTranspose1d ConvTranspose2d conv1d conv2d conv_transpose2d linear "
     "Bilinear Embedding embedding", "only nn.Conv2d and nn.Linear modules are MAC layers"),
    ("mm einsum baddbmm addmm", "write the product as a @ b (torch.matmul) of two tensors"),
    ("scaled_dot_product_attention MultiheadAttention", "write the attention out: "
     "(q @ k.transpose(-2, -1)) * scale, softmax(dim=-1), then @ v (docs/python.md, Transformers)"),
    ("gather index_select masked_select take take_along_axis", "index with ints and slices only "
     "(x[:, 0], qkv[0])"),
)
_HINTS = {k: h for names, h in _HINT_GROUPS for k in names.split()}
_DEFAULT_HINT = ("express it with the supported ops (docs/python.md, 'Supported ops') or move it "
                 "outside the model (host side)")


def _hint(node: fx.Node, mods: Mapping[str, nn.Module] | None) -> str:
    if node.op == "get_attr":
        return ("a parameter or buffer used outside a layer (e.g. x * self.scale): fold it into a "
                "conv or linear")
    if node.op == "call_module":
        key = type((mods or {}).get(node.target)).__name__
    else:
        key = getattr(node.target, "__name__", str(node.target))
    return _HINTS.get(key, _HINTS.get(key.rstrip("_"), _DEFAULT_HINT))


# ---- shape queries ---------------------------------------------------------------------------
_SHAPE_METHODS = ("size", "dim", "numel")
_ARITH = (operator.add, operator.sub, operator.mul, operator.floordiv, operator.truediv,
          operator.neg, operator.pow, math.prod)


def is_shape(node: Any, _seen: dict[fx.Node, bool] | None = None) -> bool:
    """Whether ``node`` computes a shape value (``x.size(0)``, ``x.shape[1] * 2``), not a tensor."""
    if not isinstance(node, fx.Node):
        return False
    seen = {} if _seen is None else _seen
    if node in seen:
        return seen[node]
    seen[node] = False
    res = False
    if node.op == "call_method" and node.target in _SHAPE_METHODS:
        res = True
    elif node.op == "call_function" and node.target is getattr:
        res = len(node.args) > 1 and node.args[1] in ("shape", "ndim")
    elif node.op == "call_function" and node.target is operator.getitem:
        res = is_shape(node.args[0], seen)
    elif node.op == "call_function" and node.target in _ARITH:
        ns = [a for a in node.args if isinstance(a, fx.Node)]
        res = bool(ns) and all(is_shape(a, seen) for a in ns)
    seen[node] = res
    return res
