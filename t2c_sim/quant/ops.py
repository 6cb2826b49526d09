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
    QAdaptiveAvgPool2d,
    QAdd,
    QAvgPool2d,
    QCat,
    QConv2d,
    QLinear,
)
from t2c_sim.quant.nodes import ACT_HINT, describe, is_shape, source_of, unsupported, where

__all__ = ["Role", "Op", "classify", "where", "source_of", "unsupported", "is_shape", "describe",
           "CHAIN_ROLES", "FUSING_ROLES", "Q_MODULES"]

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


#: Roles through which a tensor keeps its integer format (a fused activation moves across them).
CHAIN_ROLES = (Role.ACT, Role.ALIAS, Role.MAXPOOL, Role.FLATTEN, Role.BN)
#: Roles whose record clamps its output (a ReLU/ReLU6 after them is fused there).
FUSING_ROLES = (Role.MAC, Role.ADD, Role.CONCAT, Role.AVGPOOL, Role.GAVGPOOL)
#: The fake-quant wrapper each role needs in a quantized model.
Q_MODULES: dict[Role, tuple[type, ...]] = {
    Role.MAC: (QConv2d, QLinear), Role.ADD: (QAdd,), Role.CONCAT: (QCat,),
    Role.AVGPOOL: (QAvgPool2d,), Role.GAVGPOOL: (QAdaptiveAvgPool2d,)}


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
    """

    role: Role
    act: str | None = None
    inputs: tuple[fx.Node, ...] = ()
    make: Callable[[], nn.Module] | None = field(default=None, compare=False)
    base: str = ""
    flatten_after: bool = False
    inplace: bool = False


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


def _tensor(node: fx.Node, mods: Mapping[str, nn.Module] | None, v: Any, what: str) -> fx.Node:
    if not isinstance(v, fx.Node) or is_shape(v) or v.op == "get_attr":
        raise unsupported(node, mods, f"{what} is not a tensor computed by the network "
                          "(a constant or parameter operand has no integer op)")
    return v


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
        return Op(Role.ADD, inputs=tuple(_tensor(node, mods, a, f"operand {i}")
                                         for i, a in enumerate(node.args[:2])))
    if isinstance(mod, (Cat, QCat)):
        return Op(Role.CONCAT, inputs=tuple(_tensor(node, mods, a, f"input {i}")
                                            for i, a in enumerate(node.args)))
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
    if isinstance(mod, nn.Flatten):
        if mod.start_dim != 1 or mod.end_dim != -1:
            raise unsupported(node, mods, f"start_dim={mod.start_dim}, end_dim={mod.end_dim}",
                              "flatten to [B, features] (start_dim=1, end_dim=-1)")
        return Op(Role.FLATTEN, inputs=ins[:1])
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
    ins = tuple(_tensor(node, mods, a, f"operand {i}") for i, a in enumerate(args))
    return Op(Role.ADD, inputs=ins, make=Add, base="add")


def _cat(node: fx.Node, mods: Mapping[str, nn.Module] | None) -> Op:
    b = _bind(node, _sig(lambda tensors, dim=0: None), mods)
    ts = b["tensors"]
    if not isinstance(ts, (list, tuple)) or not ts:
        raise unsupported(node, mods, "the tensors must be a list written in the code",
                          "call torch.cat([a, b, ...], dim=1)")
    ins = tuple(_tensor(node, mods, t, f"input {i}") for i, t in enumerate(ts))
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
    b = _bind(node, _sig(lambda input, start_dim=0, end_dim=-1: None), mods)
    if _const(node, mods, b["start_dim"], "start_dim") != 1 or \
            _const(node, mods, b["end_dim"], "end_dim") != -1:
        raise unsupported(node, mods, f"start_dim={b['start_dim']}, end_dim={b['end_dim']}",
                          "flatten to [B, features]: torch.flatten(x, 1)")
    return Op(Role.FLATTEN, inputs=(_tensor(node, mods, b["input"], "input"),))


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


_FUNCTIONS: dict[Any, Callable[..., Op]] = {
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
