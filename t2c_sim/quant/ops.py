"""Which torch ops the integer model supports: ONE table, asked by ``quantize_model`` and ``fuse``.

Every node of a traced model is classified by :func:`classify` into a :class:`Role`. The
table lists, per module type, function and tensor method, the role and what the op must look
like (constant kernel sizes, ``start_dim = 1``, ...):

========  =====================================================================================
role      module / function / method forms (a functional form is turned into the module by
          :func:`t2c_sim.quant.quantize.quantize_model`, which inserts it: ``+`` becomes
          :class:`~t2c_sim.quant.modules.Add`, ``torch.cat`` :class:`~t2c_sim.quant.modules.Cat`)
========  =====================================================================================
MAC       ``nn.Conv2d`` (zero padding), ``nn.Linear`` (on ``[B, C]`` or ``[B, T, C]``)
ADD       ``a + b``, ``a += b``, ``torch.add(a, b)``, ``a.add(b)``, ``Add()`` (two tensors)
CONCAT    ``torch.cat`` / ``torch.concat`` of tensors along a non-batch dim
AVGPOOL   ``nn.AvgPool2d``, ``F.avg_pool2d`` (no ceil_mode, count_include_pad, no divisor)
GAVGPOOL  ``nn.AdaptiveAvgPool2d``, ``F.adaptive_avg_pool2d``, ``x.mean((2, 3))``
MAXPOOL   ``nn.MaxPool2d``, ``F.max_pool2d`` (no ceil_mode, no indices)
FLATTEN   ``nn.Flatten``, ``torch.flatten(x, 1)``, ``x.flatten(1)``, ``x.view(x.size(0), -1)``,
          ``x.reshape(b, -1)``, ``x.view(-1, n)``, ``x.squeeze()`` (to ``[B, features]``)
ACT       ReLU / ReLU6 / ``hardtanh(0, 6)`` / ``clamp(0[, 6])``, module, function or method:
          fused into the producer's clamp (SPEC section 2)
BN        ``nn.BatchNorm2d`` after a conv, ``nn.BatchNorm1d`` after a linear (folded)
ALIAS     ``nn.Dropout``, ``F.dropout``, ``nn.Identity``, ``x.contiguous()``: same integers
SHAPE     ``x.size(0)``, ``x.shape[0]``, ``x.dim()`` and arithmetic on them: no tensor data
SMOOTH    :class:`~t2c_sim.quant.modules.InputSmooth` on the network input (host side)
MATMUL    ``a @ b``, ``torch.matmul``, ``torch.bmm``, ``a.matmul(b)`` of two tensors
          (SPEC section 7): :class:`~t2c_sim.quant.modules.MatMul`
SCALE     ``x * c``, ``c * x``, ``x / c``, ``torch.mul``, ``x.mul(c)``, ``x.div(c)`` with a Python
          number ``c``: folded into the ``alpha`` of the matmul it is next to (the attention
          scale ``d ** -0.5``)
SOFTMAX   ``nn.Softmax``, ``F.softmax``, ``torch.softmax``, ``x.softmax`` over the last axis
LAYERNORM ``nn.LayerNorm`` over the last axis (one normalized dim)
GELU      ``nn.GELU``, ``F.gelu`` (``approximate`` "none" or "tanh")
MOVE      data movement: ``permute``, ``transpose``, ``x.mT``, ``unbind``, ``chunk``, ``split``,
          ``unsqueeze``, ``unflatten``, ``flatten(start_dim > 1)``, indexing ``x[:, 0]``,
          ``qkv[0]`` (ints and slices); a ``view``/``reshape`` is FLATTEN and the fuse step
          decides from the shapes (heads split and merged, q/k/v picked out of one qkv tensor)
CONST     a parameter or buffer (``self.pos_embed``, ``self.cls_token``), possibly through
          ``expand``/``repeat``/``unsqueeze``/``view``: an operand of an add (position
          embedding) or the leading inputs of a concat (class token)
========  =====================================================================================

Anything else raises :class:`~t2c_sim.errors.ModelError` naming the fx node, the op, the line
of the user's source (fx records the stack trace when :func:`t2c_sim.quant.graph.trace`
traces) and what to do instead (:func:`unsupported`).
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from t2c_sim.errors import ModelError
from t2c_sim.quant.modules import (
    Add,
    Cat,
    InputSmooth,
    MatMul,
    QAdaptiveAvgPool2d,
    QAdd,
    QAvgPool2d,
    QCat,
    QConv2d,
    QLinear,
)
from t2c_sim.quant.nodes import ACT_HINT, describe, is_shape, source_of, unsupported, where
from t2c_sim.quant.nonlinear import QGELU, QLayerNorm, QMatMul, QSoftmax

__all__ = ["Role", "Op", "classify", "where", "source_of", "unsupported", "is_shape", "describe",
           "is_const", "CHAIN_ROLES", "FUSING_ROLES", "Q_MODULES"]

class Role(str, Enum):
    """What an op is in the integer model."""

    MAC = "mac"
    ADD = "add"
    CONCAT = "concat"
    AVGPOOL = "avgpool"
    GAVGPOOL = "gavgpool"
    MAXPOOL = "maxpool"
    FLATTEN = "flatten"
    ACT = "act"
    BN = "bn"
    ALIAS = "alias"
    SHAPE = "shape"
    SMOOTH = "smooth"
    MATMUL = "matmul"
    SCALE = "scale"
    SOFTMAX = "softmax"
    LAYERNORM = "layernorm"
    GELU = "gelu"
    MOVE = "move"
    CONST = "const"


#: Roles through which a tensor keeps its integer format (a fused activation moves across them).
CHAIN_ROLES = (Role.ACT, Role.ALIAS, Role.MAXPOOL, Role.FLATTEN, Role.BN, Role.MOVE)
#: Roles whose record clamps its output (a ReLU/ReLU6 after them is fused there).
FUSING_ROLES = (Role.MAC, Role.ADD, Role.CONCAT, Role.AVGPOOL, Role.GAVGPOOL, Role.MATMUL)
#: The fake-quant wrapper each role needs in a quantized model.
Q_MODULES: dict[Role, tuple[type, ...]] = {
    Role.MAC: (QConv2d, QLinear), Role.ADD: (QAdd,), Role.CONCAT: (QCat,),
    Role.AVGPOOL: (QAvgPool2d,), Role.GAVGPOOL: (QAdaptiveAvgPool2d,), Role.MATMUL: (QMatMul,),
    Role.SOFTMAX: (QSoftmax,), Role.LAYERNORM: (QLayerNorm,), Role.GELU: (QGELU,)}


@dataclass(frozen=True)
class Op:
    """A classified node.

    Attributes:
        role: what it is in the integer model.
        act: ``"relu"`` / ``"relu6"`` for :attr:`Role.ACT`.
        inputs: the tensor inputs it reads (nodes), in order.
        make: for a functional form, builds the module ``quantize_model`` puts in its place.
        base: name stem of that inserted module (``"add"``, ``"cat"``, ``"maxpool"``, ...).
        flatten_after: ``x.mean((2, 3))`` without keepdim: a global pool, then a flatten.
        inplace: an in-place activation (``relu_``, ``inplace=True``).
        factor: the constant of :attr:`Role.SCALE` (``x / c`` gives ``1 / c``).
    """

    role: Role
    act: str | None = None
    inputs: tuple[fx.Node, ...] = ()
    make: Callable[[], nn.Module] | None = field(default=None, compare=False)
    base: str = ""
    flatten_after: bool = False
    inplace: bool = False
    factor: float = 1.0


# ---- argument binding ------------------------------------------------------------------------
def _sig(fn: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(fn)


def _bind(node: fx.Node, sig: inspect.Signature, mods: Mapping[str, nn.Module] | None,
          skip_self: bool = False) -> dict[str, Any]:
    args = node.args[1:] if skip_self else node.args
    try:
        b = sig.bind(*args, **node.kwargs)
    except TypeError as e:
        raise unsupported(node, mods, f"unexpected arguments ({e})") from None
    b.apply_defaults()
    return dict(b.arguments)


def _const(node: fx.Node, mods: Mapping[str, nn.Module] | None, value: Any, what: str) -> Any:
    """``value`` must not depend on tensors (a kernel size, a dim)."""
    if isinstance(value, fx.Node) or (isinstance(value, (list, tuple))
                                      and any(isinstance(v, fx.Node) for v in value)):
        raise unsupported(node, mods, f"{what} must be a constant, not computed in the graph")
    return value


def _tensor(node: fx.Node, mods: Mapping[str, nn.Module] | None, v: Any, what: str,
            allow_const: bool = False) -> fx.Node:
    if not isinstance(v, fx.Node) or is_shape(v) or (is_const(v) and not allow_const):
        raise unsupported(node, mods, f"{what} is not a tensor computed by the network "
                          "(a constant or parameter operand has no integer op)")
    return v


#: Ops that keep a parameter a constant (``self.cls_token.expand(B, -1, -1)``).
_CONST_METHODS = ("expand", "repeat", "unsqueeze", "view", "reshape", "squeeze", "contiguous",
                  "flatten", "permute", "transpose")
_CONST_FUNCTIONS = (torch.broadcast_to, torch.unsqueeze, torch.reshape, torch.squeeze,
                    torch.flatten, torch.permute, torch.transpose, operator.getitem)


def is_const(node: Any) -> bool:
    """Whether ``node`` is a parameter/buffer (``get_attr``) or one of :data:`_CONST_METHODS` /
    :data:`_CONST_FUNCTIONS` applied to one (with shape arguments only): a constant tensor."""
    if not isinstance(node, fx.Node):
        return False
    if node.op == "get_attr":
        return True
    if not node.args or not isinstance(node.args[0], fx.Node):
        return False
    if (node.op == "call_method" and node.target in _CONST_METHODS) or \
            (node.op == "call_function" and node.target in _CONST_FUNCTIONS):
        rest = [a for a in list(node.args[1:]) + list(node.kwargs.values())
                for a in (a if isinstance(a, (list, tuple)) else [a])]
        return is_const(node.args[0]) and not any(
            isinstance(a, fx.Node) and not is_shape(a) for a in rest)
    return False


# ---- modules ---------------------------------------------------------------------------------
def _pair(v: Any) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _is_relu6(lo: Any, hi: Any) -> bool:
    return float(lo) == 0.0 and float(hi) == 6.0


def _module(node: fx.Node, mod: nn.Module, mods: Mapping[str, nn.Module]) -> Op:
    ins = tuple(a for a in node.args if isinstance(a, fx.Node))
    if isinstance(mod, (nn.Conv2d, QConv2d)):
        if mod.padding_mode != "zeros" or isinstance(mod.padding, str):
            raise unsupported(node, mods, f"padding_mode={mod.padding_mode!r}, padding="
                              f"{mod.padding!r}", "use numeric zero padding (padding=k//2)")
        return Op(Role.MAC, inputs=ins[:1])
    if isinstance(mod, (nn.Linear, QLinear)):
        return Op(Role.MAC, inputs=ins[:1])
    if isinstance(mod, (Add, QAdd)):
        ins = tuple(_tensor(node, mods, a, f"operand {i}", allow_const=True)
                    for i, a in enumerate(node.args[:2]))
        if all(is_const(a) for a in ins):
            raise unsupported(node, mods, "an add of two constants")
        return Op(Role.ADD, inputs=ins)
    if isinstance(mod, (Cat, QCat)):
        return Op(Role.CONCAT, inputs=_cat_inputs(node, mods, node.args))
    if isinstance(mod, (MatMul, QMatMul)):
        return Op(Role.MATMUL, inputs=tuple(_tensor(node, mods, a, f"operand {i}")
                                            for i, a in enumerate(node.args[:2])))
    if isinstance(mod, (nn.Softmax, QSoftmax)):
        if mod.dim is None:
            raise unsupported(node, mods, "softmax without dim", "write nn.Softmax(dim=-1)")
        return Op(Role.SOFTMAX, inputs=ins[:1])
    if isinstance(mod, nn.LayerNorm):
        if len(mod.normalized_shape) != 1 or not mod.elementwise_affine:
            raise unsupported(node, mods, f"normalized_shape={tuple(mod.normalized_shape)}, "
                              f"elementwise_affine={mod.elementwise_affine}",
                              "normalize over the last axis only, with affine parameters "
                              "(nn.LayerNorm(dim))")
        return Op(Role.LAYERNORM, inputs=ins[:1])
    if isinstance(mod, QLayerNorm):
        return Op(Role.LAYERNORM, inputs=ins[:1])
    if isinstance(mod, (nn.GELU, QGELU)):
        if mod.approximate not in ("none", "tanh"):
            raise unsupported(node, mods, f"approximate={mod.approximate!r}")
        return Op(Role.GELU, inputs=ins[:1])
    if isinstance(mod, nn.Flatten):
        return Op(Role.FLATTEN if (mod.start_dim, mod.end_dim) == (1, -1) else Role.MOVE,
                  inputs=ins[:1])
    if isinstance(mod, nn.Unflatten):
        return Op(Role.MOVE, inputs=ins[:1])
    if isinstance(mod, nn.AvgPool2d):
        if mod.ceil_mode or not mod.count_include_pad or mod.divisor_override is not None:
            raise unsupported(node, mods, "ceil_mode, count_include_pad=False or divisor_override",
                              "use the defaults (ceil_mode=False, count_include_pad=True)")
        return Op(Role.AVGPOOL, inputs=ins[:1])
    if isinstance(mod, nn.AdaptiveAvgPool2d):
        return Op(Role.GAVGPOOL, inputs=ins[:1])
    if isinstance(mod, nn.MaxPool2d):
        if mod.ceil_mode or mod.return_indices:
            raise unsupported(node, mods, "ceil_mode or return_indices", "use ceil_mode=False")
        return Op(Role.MAXPOOL, inputs=ins[:1])
    if isinstance(mod, nn.ReLU):
        return Op(Role.ACT, "relu", ins[:1], inplace=mod.inplace)
    if isinstance(mod, nn.Hardtanh):
        if not _is_relu6(mod.min_val, mod.max_val):
            raise unsupported(node, mods, f"hardtanh({mod.min_val}, {mod.max_val})", ACT_HINT)
        return Op(Role.ACT, "relu6", ins[:1], inplace=mod.inplace)
    if isinstance(mod, (nn.BatchNorm2d, nn.BatchNorm1d)):
        return Op(Role.BN, inputs=ins[:1])
    if isinstance(mod, (nn.Dropout, nn.Dropout2d, nn.Identity)):
        return Op(Role.ALIAS, inputs=ins[:1])
    if isinstance(mod, InputSmooth):
        return Op(Role.SMOOTH, inputs=ins[:1])
    raise unsupported(node, mods)


# ---- functions and methods -------------------------------------------------------------------
def _add(node: fx.Node, mods: Mapping[str, nn.Module] | None, method: bool = False) -> Op:
    args = list(node.args[:2])
    alpha = node.kwargs.get("alpha", node.args[2] if len(node.args) > 2 else 1)
    if alpha != 1:
        raise unsupported(node, mods, f"alpha={alpha}", "write a + b (alpha = 1)")
    if len(args) < 2 and "other" in node.kwargs:
        args.append(node.kwargs["other"])
    if len(args) != 2:
        raise unsupported(node, mods, "an add needs two tensors")
    ins = tuple(_tensor(node, mods, a, f"operand {i}", allow_const=True)
                for i, a in enumerate(args))
    if all(is_const(a) for a in ins):
        raise unsupported(node, mods, "an add of two constants")
    return Op(Role.ADD, inputs=ins, make=Add, base="add")


def _cat_inputs(node: fx.Node, mods: Mapping[str, nn.Module] | None,
                ts: Any) -> tuple[fx.Node, ...]:
    """The inputs of a concat: tensors, after optional leading constants (class tokens)."""
    ins = tuple(_tensor(node, mods, t, f"input {i}", allow_const=True) for i, t in enumerate(ts))
    consts = [is_const(t) for t in ins]
    if all(consts) or any(c and not p for p, c in zip([True] + consts, consts)):
        raise unsupported(node, mods, "constant inputs (parameters, e.g. a class token) must come "
                          "first and be followed by at least one tensor of the network",
                          "write torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)")
    return ins


def _cat(node: fx.Node, mods: Mapping[str, nn.Module] | None) -> Op:
    b = _bind(node, _sig(lambda tensors, dim=0: None), mods)
    ts = b["tensors"]
    if not isinstance(ts, (list, tuple)) or not ts:
        raise unsupported(node, mods, "the tensors must be a list written in the code",
                          "call torch.cat([a, b, ...], dim=1)")
    ins = _cat_inputs(node, mods, ts)
    dim = _const(node, mods, b["dim"], "dim")
    if not isinstance(dim, int) or dim == 0:
        raise unsupported(node, mods, f"dim={dim!r}: the batch dim",
                          "concatenate along a non-batch dim (channels: dim=1)")
    return Op(Role.CONCAT, inputs=ins, make=lambda: Cat(dim), base="cat")


def _maxpool(node: fx.Node, mods: Mapping[str, nn.Module] | None) -> Op:
    b = _bind(node, _sig(lambda input, kernel_size, stride=None, padding=0, dilation=1,
                         ceil_mode=False, return_indices=False: None), mods)
    for k in ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"):
        _const(node, mods, b[k], k)
    if b["ceil_mode"] or b["return_indices"]:
        raise unsupported(node, mods, "ceil_mode or return_indices", "use ceil_mode=False")
    stride = b["stride"] if b["stride"] not in (None, [], ()) else b["kernel_size"]
    return Op(Role.MAXPOOL, inputs=(_tensor(node, mods, b["input"], "input"),),
              make=lambda: nn.MaxPool2d(b["kernel_size"], stride, b["padding"], b["dilation"]),
              base="maxpool")


def _avgpool(node: fx.Node, mods: Mapping[str, nn.Module] | None) -> Op:
    b = _bind(node, _sig(lambda input, kernel_size, stride=None, padding=0, ceil_mode=False,
                         count_include_pad=True, divisor_override=None: None), mods)
    for k in ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
              "divisor_override"):
        _const(node, mods, b[k], k)
    if b["ceil_mode"] or not b["count_include_pad"] or b["divisor_override"] is not None:
        raise unsupported(node, mods, "ceil_mode, count_include_pad=False or divisor_override",
                          "use the defaults (ceil_mode=False, count_include_pad=True)")
    stride = b["stride"] if b["stride"] not in (None, [], ()) else b["kernel_size"]
    return Op(Role.AVGPOOL, inputs=(_tensor(node, mods, b["input"], "input"),),
              make=lambda: nn.AvgPool2d(b["kernel_size"], stride, b["padding"]), base="avgpool")


def _adaptive(node: fx.Node, mods: Mapping[str, nn.Module] | None) -> Op:
    b = _bind(node, _sig(lambda input, output_size: None), mods)
    size = _const(node, mods, b["output_size"], "output_size")
    return Op(Role.GAVGPOOL, inputs=(_tensor(node, mods, b["input"], "input"),),
              make=lambda: nn.AdaptiveAvgPool2d(size), base="gap")


def _mean(node: fx.Node, mods: Mapping[str, nn.Module] | None, method: bool) -> Op:
    b = _bind(node, _sig(lambda input, dim=None, keepdim=False, dtype=None: None), mods)
    dim = _const(node, mods, b["dim"], "dim")
    dims = set(dim) if isinstance(dim, (list, tuple)) else {dim}
    if dims not in ({2, 3}, {-1, -2}) or b["dtype"] is not None:
        raise unsupported(node, mods, f"mean over dim={dim!r}",
                          "only the global average pool x.mean((2, 3)) of [B, C, H, W] is an "
                          "integer op")
    keep = bool(_const(node, mods, b["keepdim"], "keepdim"))
    return Op(Role.GAVGPOOL, inputs=(_tensor(node, mods, b["input"], "input"),),
              make=lambda: nn.AdaptiveAvgPool2d(1), base="gap", flatten_after=not keep)


def _flatten(node: fx.Node, mods: Mapping[str, nn.Module] | None, method: bool) -> Op:
    """``flatten(1)`` to ``[B, features]`` is FLATTEN; any other range is data movement (e.g.
    ``x.flatten(2)`` of a patch-embedding conv's ``[B, D, h, w]``)."""
    b = _bind(node, _sig(lambda input, start_dim=0, end_dim=-1: None), mods)
    start = _const(node, mods, b["start_dim"], "start_dim")
    end = _const(node, mods, b["end_dim"], "end_dim")
    role = Role.FLATTEN if (start, end) == (1, -1) else Role.MOVE
    return Op(role, inputs=(_tensor(node, mods, b["input"], "input"),))


def _reshape(node: fx.Node, mods: Mapping[str, nn.Module] | None, method: bool) -> Op:
    """``view``/``reshape``/``squeeze``: a flatten to ``[B, features]`` (fuse checks the shapes)."""
    src = node.args[0] if node.args else node.kwargs.get("input")
    for a in list(node.args[1:]) + list(node.kwargs.values()):
        items = a if isinstance(a, (list, tuple)) else [a]
        for v in items:
            if isinstance(v, fx.Node) and not is_shape(v):
                raise unsupported(node, mods, "the new shape depends on tensor values")
    return Op(Role.FLATTEN, inputs=(_tensor(node, mods, src, "input"),))


def _relu(kind: str, inplace: bool = False) -> Callable[..., Op]:
    def h(node: fx.Node, mods: Mapping[str, nn.Module] | None, method: bool = False) -> Op:
        inp = inplace or bool(node.kwargs.get("inplace", node.args[1] if len(node.args) > 1
                                              and isinstance(node.args[1], bool) else False))
        return Op(Role.ACT, kind, (_tensor(node, mods, node.args[0], "input"),), inplace=inp)
    return h


def _hardtanh(inplace: bool) -> Callable[..., Op]:
    def h(node: fx.Node, mods: Mapping[str, nn.Module] | None, method: bool = False) -> Op:
        b = _bind(node, _sig(lambda input, min_val=-1.0, max_val=1.0, inplace=False: None), mods)
        lo, hi = (_const(node, mods, b[k], k) for k in ("min_val", "max_val"))
        if not _is_relu6(lo, hi):
            raise unsupported(node, mods, f"hardtanh({lo}, {hi})", ACT_HINT)
        return Op(Role.ACT, "relu6", (_tensor(node, mods, b["input"], "input"),),
                  inplace=inplace or bool(b["inplace"]))
    return h


def _clamp(inplace: bool) -> Callable[..., Op]:
    def h(node: fx.Node, mods: Mapping[str, nn.Module] | None, method: bool = False) -> Op:
        b = _bind(node, _sig(lambda input, min=None, max=None: None), mods)
        lo, hi = (_const(node, mods, b[k], k) for k in ("min", "max"))
        if isinstance(lo, (int, float)) and float(lo) == 0.0 and hi is None:
            kind = "relu"
        elif isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and _is_relu6(lo, hi):
            kind = "relu6"
        else:
            raise unsupported(node, mods, f"clamp({lo}, {hi})",
                              "only clamp(min=0) (ReLU) and clamp(0, 6) (ReLU6) are integer ops")
        return Op(Role.ACT, kind, (_tensor(node, mods, b["input"], "input"),), inplace=inplace)
    return h


def _dropout(node: fx.Node, mods: Mapping[str, nn.Module] | None, method: bool = False) -> Op:
    b = _bind(node, _sig(lambda input, p=0.5, training=True, inplace=False: None), mods)
    p = _const(node, mods, b["p"], "p")
    return Op(Role.ALIAS, inputs=(_tensor(node, mods, b["input"], "input"),),
              make=lambda: nn.Dropout(p), base="dropout")


def _alias(node: fx.Node, mods: Mapping[str, nn.Module] | None, method: bool = False) -> Op:
    return Op(Role.ALIAS, inputs=(_tensor(node, mods, node.args[0], "input"),))


# ---- transformer ops -------------------------------------------------------------------------
def _matmul(node: fx.Node, mods: Mapping[str, nn.Module] | None, method: bool = False) -> Op:
    args = list(node.args[:2])
    if len(args) < 2 and "other" in node.kwargs:
        args.append(node.kwargs["other"])
    if len(args) != 2 or set(node.kwargs) - {"other", "input"}:
        raise unsupported(node, mods, "a matmul needs two tensors (and no out=)")
    ins = tuple(_tensor(node, mods, a, f"operand {i}") for i, a in enumerate(args))
    return Op(Role.MATMUL, inputs=ins, make=MatMul, base="matmul")


_NUMBER = (int, float)


def _scale(node: fx.Node, mods: Mapping[str, nn.Module] | None, method: bool = False) -> Op:
    """``x * c``, ``c * x``, ``x / c`` with a Python number ``c`` (folded into a matmul)."""
    args = list(node.args[:2])
    if len(args) < 2 and "other" in node.kwargs:
        args.append(node.kwargs["other"])
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    div = name.strip("_") in ("truediv", "div", "itruediv", "true_divide")

    def number(v: Any) -> bool:
        return isinstance(v, _NUMBER) and not isinstance(v, bool)

    if len(args) == 2 and isinstance(args[0], fx.Node) and number(args[1]):
        x, c = args[0], float(args[1])
    elif len(args) == 2 and not div and number(args[0]) and isinstance(args[1], fx.Node):
        x, c = args[1], float(args[0])
    elif len(args) == 2 and any(is_shape(a) for a in args):
        raise unsupported(node, mods, "a factor computed from tensor shapes",
                          "compute it as a Python number in __init__ "
                          "(self.scale = head_dim ** -0.5) and multiply by self.scale")
    else:
        raise unsupported(node, mods)
    if node.kwargs.get("rounding_mode") is not None or c == 0:
        raise unsupported(node, mods, "a rounding division or a factor of 0")
    return Op(Role.SCALE, inputs=(_tensor(node, mods, x, "input"),),
              factor=1.0 / c if div else c)


def _softmax(node: fx.Node, mods: Mapping[str, nn.Module] | None, method: bool = False) -> Op:
    b = _bind(node, _sig(lambda input, dim=None, _stacklevel=3, dtype=None: None), mods)
    dim = _const(node, mods, b["dim"], "dim")
    if not isinstance(dim, int) or b["dtype"] is not None:
        raise unsupported(node, mods, f"softmax with dim={dim!r}, dtype={b['dtype']!r}",
                          "write F.softmax(x, dim=-1) (the last axis, no dtype)")
    return Op(Role.SOFTMAX, inputs=(_tensor(node, mods, b["input"], "input"),),
              make=lambda: nn.Softmax(dim), base="softmax")


def _gelu(node: fx.Node, mods: Mapping[str, nn.Module] | None, method: bool = False) -> Op:
    b = _bind(node, _sig(lambda input, approximate="none": None), mods)
    ap = _const(node, mods, b["approximate"], "approximate")
    if ap not in ("none", "tanh"):
        raise unsupported(node, mods, f"approximate={ap!r}")
    return Op(Role.GELU, inputs=(_tensor(node, mods, b["input"], "input"),),
              make=lambda: nn.GELU(ap), base="gelu")


def _move(node: fx.Node, mods: Mapping[str, nn.Module] | None, method: bool = False) -> Op:
    """Data movement: every argument but the tensor is a constant or a shape value; the fuse
    step works out what moves where (it keeps the batch axis in place)."""
    src = node.args[0] if node.args else node.kwargs.get("input")
    for a in list(node.args[1:]) + list(node.kwargs.values()):
        for v in (a if isinstance(a, (list, tuple)) else [a]):
            if isinstance(v, fx.Node) and not is_shape(v):
                raise unsupported(node, mods, "the data movement depends on tensor values")
    return Op(Role.MOVE, inputs=(_tensor(node, mods, src, "input"),))


def _index_ok(idx: Any) -> bool:
    """Basic indexing only: ints, slices with int/None/shape bounds, None, Ellipsis."""
    items = idx if isinstance(idx, tuple) else (idx,)
    for v in items:
        if v is None or v is Ellipsis or (isinstance(v, int) and not isinstance(v, bool)):
            continue
        if isinstance(v, fx.Node) and is_shape(v):
            continue
        if isinstance(v, slice) and all(b is None or isinstance(b, int) or
                                        (isinstance(b, fx.Node) and is_shape(b))
                                        for b in (v.start, v.stop, v.step)):
            continue
        return False
    return True


def _getitem(node: fx.Node, mods: Mapping[str, nn.Module] | None) -> Op:
    src, idx = node.args[0], node.args[1]
    if isinstance(src, fx.Node) and src.op in ("call_method", "call_function") and \
            _is_split(src):
        return Op(Role.MOVE, inputs=(src,))           # one part of unbind / chunk / split
    if not _index_ok(idx):
        raise unsupported(node, mods, "advanced indexing (a list or tensor index) or a mask",
                          "index with ints and slices (x[:, 0], qkv[0], x[..., :d])")
    return Op(Role.MOVE, inputs=(_tensor(node, mods, src, "input"),))


_SPLITS = ("unbind", "chunk", "split", "tensor_split")


def _is_split(node: fx.Node) -> bool:
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    return name in _SPLITS


def _layer_norm_fn(node: fx.Node, mods: Mapping[str, nn.Module] | None) -> Op:
    raise unsupported(node, mods, "functional layer norm (its weights are parameters outside a "
                      "layer)", "use the module nn.LayerNorm(dim)")


def _attr(node: fx.Node, mods: Mapping[str, nn.Module] | None) -> Op:
    """``x.mT`` / ``x.T`` (a transpose) through ``getattr``."""
    if node.args[1] in ("mT", "T"):
        return Op(Role.MOVE, inputs=(_tensor(node, mods, node.args[0], "input"),))
    raise unsupported(node, mods, f"attribute {node.args[1]!r} of a tensor")


_FUNCTIONS: dict[Any, Callable[..., Op]] = {
    operator.matmul: _matmul, torch.matmul: _matmul, torch.bmm: _matmul,
    operator.mul: _scale, operator.truediv: _scale, operator.imul: _scale,
    operator.itruediv: _scale, torch.mul: _scale, torch.div: _scale, torch.true_divide: _scale,
    F.softmax: _softmax, torch.softmax: _softmax,
    F.gelu: _gelu, F.layer_norm: _layer_norm_fn,
    torch.permute: _move, torch.transpose: _move, torch.swapaxes: _move, torch.movedim: _move,
    torch.unbind: _move, torch.chunk: _move, torch.split: _move, torch.tensor_split: _move,
    torch.unsqueeze: _move, torch.unflatten: _move,
    operator.getitem: _getitem, getattr: _attr,
    operator.add: _add, operator.iadd: _add, torch.add: _add,
    torch.cat: _cat, torch.concat: _cat, torch.concatenate: _cat,
    F.max_pool2d: _maxpool, torch.max_pool2d: _maxpool,
    F.avg_pool2d: _avgpool,
    F.adaptive_avg_pool2d: _adaptive,
    torch.flatten: lambda n, m: _flatten(n, m, False),
    torch.reshape: lambda n, m: _reshape(n, m, False),
    torch.squeeze: lambda n, m: _reshape(n, m, False),
    torch.mean: lambda n, m: _mean(n, m, False),
    F.relu: _relu("relu"), torch.relu: _relu("relu"), F.relu_: _relu("relu", True),
    torch.relu_: _relu("relu", True), F.relu6: _relu("relu6"),
    F.hardtanh: _hardtanh(False), F.hardtanh_: _hardtanh(True),
    torch.clamp: _clamp(False), torch.clip: _clamp(False), torch.clamp_: _clamp(True),
    F.dropout: _dropout, F.dropout2d: _dropout,
}
_METHODS: dict[str, Callable[..., Op]] = {
    "add": lambda n, m: _add(n, m, True), "add_": lambda n, m: _add(n, m, True),
    "__iadd__": lambda n, m: _add(n, m, True),
    "view": lambda n, m: _reshape(n, m, True), "reshape": lambda n, m: _reshape(n, m, True),
    "squeeze": lambda n, m: _reshape(n, m, True),
    "flatten": lambda n, m: _flatten(n, m, True),
    "mean": lambda n, m: _mean(n, m, True),
    "relu": _relu("relu"), "relu_": _relu("relu", True),
    "clamp": _clamp(False), "clamp_": _clamp(True), "clip": _clamp(False),
    "contiguous": _alias,
    "matmul": _matmul, "bmm": _matmul, "__matmul__": _matmul,
    "mul": _scale, "mul_": _scale, "div": _scale, "div_": _scale, "__mul__": _scale,
    "__rmul__": _scale, "__truediv__": _scale, "true_divide": _scale,
    "softmax": _softmax,
    "permute": _move, "transpose": _move, "swapaxes": _move, "movedim": _move,
    "unbind": _move, "chunk": _move, "split": _move, "tensor_split": _move,
    "unsqueeze": _move, "unflatten": _move,
}


def classify(node: fx.Node, mods: Mapping[str, nn.Module]) -> Op:
    """The :class:`Op` of ``node``; :func:`unsupported` (a :class:`ModelError`) for anything else.

    ``placeholder`` and ``output`` nodes are not ops (a :class:`ModelError` if asked).
    """
    if node.op == "call_module":
        mod = mods.get(node.target)
        if mod is None:
            raise ModelError(f"no module '{node.target}' in the model", **where(node))
        return _module(node, mod, mods)
    if is_shape(node):
        return Op(Role.SHAPE)
    if is_const(node):
        return Op(Role.CONST)
    if node.op == "call_function":
        h = _FUNCTIONS.get(node.target)
        if h is not None:
            return h(node, mods)
    elif node.op == "call_method":
        h = _METHODS.get(node.target)
        if h is not None:
            return h(node, mods)
    elif node.op in ("placeholder", "output"):
        raise ModelError(f"{node.op} is not an op", **where(node))
    raise unsupported(node, mods)
