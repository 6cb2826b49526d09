"""Fake-quant layer wrappers and the model swap ``quantize_model``.

Every wrapper computes in float with fake-quantized operands, so that the integer layer the
fuse step produces (:mod:`t2c_sim.fuse`) computes the same function up to the legitimate
1-LSB sources described in ``docs/crosscheck.md``:

- :class:`QConv2d` / :class:`QLinear`:
  ``y = oq(act(conv(aq(x), wq(W * mask) * mask) + b))`` where ``aq`` is the input activation
  quantizer, ``wq`` the signed symmetric weight quantizer (per tensor or per output channel),
  ``mask`` the pruning mask (a buffer, applied in every path, so a pruned weight is exactly 0),
  ``act`` an optional fused ``relu``/``relu6`` and ``oq`` an optional output quantizer (only
  where no following layer supplies the output scale, e.g. the logits).
- :class:`QAdd`: ``y = oq(act(qa(a) + qb(b)))`` (residual add, SPEC section 3).
- :class:`QAvgPool2d` / :class:`QAdaptiveAvgPool2d`: ``y = oq(avgpool(aq(x)))``.
- Max pool, flatten, ReLU need no wrapper: they commute with a monotone quantizer, so the
  integer model runs them on integers (ReLU moves into the producer's clamp in fuse).

The format of each integer tensor is given by ONE quantizer: the producer's ``oq`` or the
input quantizer of every consumer. :func:`quantize_model` ties consumer quantizers of a
forked tensor (e.g. the residual skip and the next conv) to one shared module.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from t2c_sim.errors import ConfigError, FuseError

__all__ = ["ACTS", "QConv2d", "QLinear", "QAdd", "Add", "InputSmooth", "QAvgPool2d", "QAdaptiveAvgPool2d",
           "QLAYERS", "trace", "fold_bn", "flatten_inputs",
           "quantize_model", "quantizers", "set_observing"]

log = logging.getLogger(__name__)

ACTS = (None, "relu", "relu6")
QuantFactory = Callable[..., nn.Module]


def _apply_act(y: torch.Tensor, act: str | None) -> torch.Tensor:
    if act is None:
        return y
    if act == "relu":
        return F.relu(y)
    if act == "relu6":
        return F.relu6(y)
    raise ConfigError(f"unknown fused activation {act!r} (expected relu or relu6)", key="act")


def _q(quant: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    return x if quant is None else quant(x)


class _QMac:
    """Mixin shared by :class:`QConv2d` and :class:`QLinear` (weight quantizer + mask)."""

    weight: nn.Parameter
    mask: torch.Tensor
    wq: nn.Module | None
    aq: nn.Module | None
    oq: nn.Module | None
    act: str | None
    nm: tuple[int, int]

    def _init_q(self, wq: nn.Module | None, aq: nn.Module | None, oq: nn.Module | None,
                act: str | None) -> None:
        if act not in ACTS:
            raise ConfigError(f"unknown fused activation {act!r} (expected relu or relu6)",
                              key="act")
        self.register_buffer("mask", torch.ones_like(self.weight, dtype=torch.float32))
        self.wq, self.aq, self.oq, self.act = wq, aq, oq, act
        self.nm = (1, 1)
        self.quant_bias = False

    def qbias(self) -> torch.Tensor | None:
        """Bias; with ``quant_bias`` snapped to the accumulator grid like the integer layer:
        ``round_half_even(b / (s_x * s_w[c])) * s_x * s_w[c]`` (straight-through gradient).

        Call after ``aq`` and ``wq`` have run in this forward (their scales are current).
        """
        b = self.bias
        if b is None or not self.quant_bias or self.aq is None or self.wq is None:
            return b
        sx = self.aq.scale.detach()
        if sx.numel() != 1:
            return b                     # token-wise input scales: bias stays float
        s = (sx.reshape(()) * self.wq.scale.detach()).reshape(-1)
        r = b / s
        return (r + (torch.round(r) - r).detach()) * s

    def masked_weight(self) -> torch.Tensor:
        """``W * mask`` (float): what the weight quantizer sees."""
        return self.weight * self.mask

    def qweight(self) -> torch.Tensor:
        """Fake-quantized weight ``wq(W * mask) * mask`` (pruned weights are exactly 0)."""
        w = self.masked_weight()
        return w if self.wq is None else self.wq(w) * self.mask


class QConv2d(nn.Conv2d, _QMac):
    """Fake-quant conv: ``y = oq(act(conv2d(aq(x), wq(W*mask)*mask, b)))``."""

    def __init__(self, *args: Any, wq: nn.Module | None = None, aq: nn.Module | None = None,
                 oq: nn.Module | None = None, act: str | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._init_q(wq, aq, oq, act)

    @classmethod
    def from_float(cls, conv: nn.Conv2d, **q: Any) -> QConv2d:
        """Copy a float ``nn.Conv2d`` (weights, bias, geometry) and attach quantizers ``q``."""
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise FuseError(f"conv {conv}: only numeric zero padding is supported")
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                  padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                  bias=conv.bias is not None, **q)
        new.weight.data.copy_(conv.weight.data)
        if conv.bias is not None:
            new.bias.data.copy_(conv.bias.data)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, w = _q(self.aq, x), self.qweight()
        y = self._conv_forward(x, w, self.qbias())
        return _q(self.oq, _apply_act(y, self.act))


class QLinear(nn.Linear, _QMac):
    """Fake-quant linear: ``y = oq(act(aq(x) @ (wq(W*mask)*mask)^T + b))``."""

    def __init__(self, *args: Any, wq: nn.Module | None = None, aq: nn.Module | None = None,
                 oq: nn.Module | None = None, act: str | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._init_q(wq, aq, oq, act)

    @classmethod
    def from_float(cls, lin: nn.Linear, **q: Any) -> QLinear:
        """Copy a float ``nn.Linear`` and attach quantizers ``q``."""
        new = cls(lin.in_features, lin.out_features, bias=lin.bias is not None, **q)
        new.weight.data.copy_(lin.weight.data)
        if lin.bias is not None:
            new.bias.data.copy_(lin.bias.data)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, w = _q(self.aq, x), self.qweight()
        y = F.linear(x, w, self.qbias())
        return _q(self.oq, _apply_act(y, self.act))


class Add(nn.Module):
    """Float residual add ``a + b`` as a module, so that :func:`quantize_model` can swap it."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class QAdd(nn.Module):
    """Fake-quant residual add: ``y = oq(act(qa(a) + qb(b)))`` (one rounding in the integer add)."""

    def __init__(self, qa: nn.Module | None = None, qb: nn.Module | None = None,
                 oq: nn.Module | None = None, act: str | None = None) -> None:
        super().__init__()
        if act not in ACTS:
            raise ConfigError(f"unknown fused activation {act!r}", key="act")
        self.qa, self.qb, self.oq, self.act = qa, qb, oq, act

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _q(self.oq, _apply_act(_q(self.qa, a) + _q(self.qb, b), self.act))


class QAvgPool2d(nn.AvgPool2d):
    """Fake-quant average pool ``y = oq(avg_pool2d(aq(x)))`` (count_include_pad, no ceil_mode)."""

    def __init__(self, *args: Any, aq: nn.Module | None = None, oq: nn.Module | None = None,
                 **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.aq, self.oq = aq, oq

    @classmethod
    def from_float(cls, pool: nn.AvgPool2d, **q: Any) -> QAvgPool2d:
        if pool.ceil_mode or not pool.count_include_pad or pool.divisor_override is not None:
            raise FuseError(f"avg pool {pool}: only ceil_mode=False, count_include_pad=True and "
                            "no divisor_override are supported")
        return cls(pool.kernel_size, pool.stride, pool.padding, **q)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _q(self.oq, super().forward(_q(self.aq, x)))


class QAdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """Fake-quant global average pool (output size 1): ``y = oq(mean_hw(aq(x)))``."""

    def __init__(self, output_size: Any = 1, aq: nn.Module | None = None,
                 oq: nn.Module | None = None) -> None:
        super().__init__(output_size)
        if output_size not in (1, (1, 1)):
            raise FuseError(f"adaptive avg pool: only output size 1 is supported, got "
                            f"{output_size}")
        self.aq, self.oq = aq, oq

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _q(self.oq, super().forward(_q(self.aq, x)))


class InputSmooth(nn.Module):
    """``y = x / s`` over the last dim (SmoothQuant factors of the network's first linear).

    Only valid directly on the network input: the fuse step moves it to the host-side input
    quantization (``x_q = quantize(x / s)``, :func:`t2c_sim.fuse.quantize_input`); anywhere else
    it is a :class:`FuseError`.
    """

    def __init__(self, s: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("s", s.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.s


QLAYERS = (QConv2d, QLinear, QAdd, QAvgPool2d, QAdaptiveAvgPool2d)
_LEAVES = QLAYERS + (Add, InputSmooth)


# ---- graph -----------------------------------------------------------------------------------
class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, _LEAVES) or super().is_leaf_module(m, qualname)


def trace(model: nn.Module) -> fx.GraphModule:
    """``torch.fx`` graph of ``model`` with the Q wrappers (and :class:`Add`) as leaf modules.

    A bare wrapper is not a graph: put it in a container (e.g. ``nn.Sequential``) first.
    """
    if isinstance(model, _LEAVES):
        raise FuseError(f"model {type(model).__name__}: a single wrapper layer cannot be traced; "
                        "put it in a container such as nn.Sequential")
    try:
        graph = _Tracer().trace(model)
    except Exception as e:  # fx raises many types for untraceable code
        raise FuseError(f"model {type(model).__name__}: cannot be traced by torch.fx ({e})") from e
    return fx.GraphModule(model, graph)


def _set_module(root: nn.Module, qualname: str, new: nn.Module) -> None:
    parent, _, leaf = qualname.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Float BN folding (eval statistics): a new conv equal to ``bn(conv(x))``.

    ``g = gamma / sqrt(var + eps)``; ``W' = W * g[c]``; ``b' = (b - mean) * g + beta``.
    """
    if not bn.track_running_stats or bn.running_var is None:
        raise FuseError(f"batch norm {bn}: needs running statistics to fold")
    g = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(
        bn.running_var + bn.eps)
    beta = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    new = copy.deepcopy(conv)
    with torch.no_grad():
        new.weight.copy_(conv.weight * g.reshape(-1, 1, 1, 1))
        b = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        folded = (b - bn.running_mean) * g + beta
        if new.bias is None:
            new.bias = nn.Parameter(folded.detach().clone())
        else:
            new.bias.copy_(folded)
    return new


def _fold_all_bn(model: nn.Module) -> None:
    gm = trace(model)
    mods = dict(model.named_modules())
    for node in gm.graph.nodes:
        if node.op != "call_module" or not isinstance(mods.get(node.target), nn.BatchNorm2d):
            continue
        src = node.args[0]
        conv = mods.get(src.target) if src.op == "call_module" else None
        if not isinstance(conv, nn.Conv2d) or len(src.users) != 1:
            raise FuseError(f"batch norm '{node.target}' does not directly follow a conv with a "
                            "single user; cannot fold it")
        _set_module(model, src.target, fold_bn(conv, mods[node.target]))
        _set_module(model, node.target, nn.Identity())
        log.debug("folded %s into %s", node.target, src.target)


# ---- shapes ---------------------------------------------------------------------------------
def flatten_inputs(model: nn.Module, example_input: torch.Tensor,
                   ) -> dict[str, tuple[int, int, int]]:
    """Linear layers fed by a flatten of a 4-D tensor: ``{qualname: (C, H, W)}``.

    Works on float and fake-quant models (runs a copy, so quantizer state is untouched).
    """
    model = copy.deepcopy(model)   # shapes only: observing on the copy has no side effects
    model.eval()
    set_observing(model, True)
    gm = trace(model)
    mods = dict(model.named_modules())
    interp = fx.Interpreter(gm, garbage_collect_values=False)
    with torch.no_grad():
        interp.run(example_input)
    out: dict[str, tuple[int, int, int]] = {}
    for node in gm.graph.nodes:
        if node.op != "call_module" or not isinstance(mods[node.target], nn.Linear):
            continue
        src = node.args[0]
        while isinstance(src, fx.Node) and is_pass(src, mods):
            shp = tuple(interp.env[src.args[0]].shape) if src.args else ()
            if len(shp) == 4 and len(interp.env[src].shape) == 2:
                out[node.target] = (shp[1], shp[2], shp[3])
                break
            src = src.args[0]
    return out


# ---- model swap ------------------------------------------------------------------------------
def quantizers(model: nn.Module) -> dict[str, nn.Module]:
    """Every quantizer module in ``model`` (anything with ``quantize`` and a ``scale``), by name."""
    return {n: m for n, m in model.named_modules()
            if callable(getattr(m, "quantize", None)) and hasattr(m, "scale")}


def set_observing(model: nn.Module, on: bool) -> None:
    """Turn calibration (range observation) on or off in every quantizer."""
    for q in quantizers(model).values():
        q.observing = on


def _layer_type(mod: nn.Module | None) -> str | None:
    """Key of ``spec["types"]`` for a module: ``"conv"``, ``"linear"`` or ``None``."""
    if isinstance(mod, nn.Conv2d):
        return "conv"
    if isinstance(mod, nn.Linear):
        return "linear"
    return None


def _spec_get(spec: Mapping[str, Any], name: str, kind: str, typ: str | None = None,
              ) -> Mapping[str, Any] | None:
    """Quantizer spec of ``kind`` for module ``name``: ``overrides[name]`` > ``types[typ]`` >
    the default ``spec[kind]``."""
    over = (spec.get("overrides") or {}).get(name, {})
    if kind in over:
        return over[kind]
    per_type = ((spec.get("types") or {}).get(typ) or {}) if typ else {}
    if kind in per_type:
        return per_type[kind]
    return spec.get(kind)


def _factory(spec: Mapping[str, Any], make: QuantFactory, name: str, kind: str,
             typ: str | None = None) -> nn.Module | None:
    qs = _spec_get(spec, name, kind, typ)
    if qs is None:
        return None
    qs = dict(qs)
    qname = qs.pop("quantizer", "minmax")
    try:
        return make(qname, **qs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"cannot make quantizer '{qname}' for {name}.{kind}: {e}",
                          key=f"{name}.{kind}") from None


def _default_make(name: str, **kw: Any) -> nn.Module:
    from t2c_sim.quant.qconfig import make_quantizer
    return make_quantizer(name, **kw)


def quantize_model(model: nn.Module, spec: Mapping[str, Any], *,
                   make: QuantFactory | None = None) -> nn.Module:
    """Return a fake-quant copy of ``model``.

    Steps: (1) with ``spec["fold_bn"]`` (default True) every BatchNorm2d after a conv is folded
    into it in float **before** weight quantization, so the weight quantizer sees (and the
    integer weights are) the folded weights; with ``fold_bn: False`` BN stays and fuse folds it
    after quantization into the per-channel multiplier; (2) Conv2d/Linear/AvgPool2d/
    AdaptiveAvgPool2d(1)/:class:`Add` become Q wrappers, each quantizer built by
    ``make(name, **kw)`` from, first match wins, per-module ``spec["overrides"][qualname][kind]``,
    per-layer-type ``spec["types"]["conv"|"linear"][kind]``, the defaults ``spec["weight"]``,
    ``spec["act"]`` (inputs); (3) layers whose output reaches the model output
    without a consumer quantizer get an output quantizer from ``spec["output"]`` (or
    ``spec["act"]``); (4) the consumer quantizers of a forked tensor are tied to one module.

    ``spec`` kinds map to ``{"quantizer": preset, **kwargs}`` (e.g. ``{"quantizer":
    "minmax_channel", "nbit": 8}``); ``make`` defaults to ``qconfig.make_quantizer``.
    """
    make = make or _default_make
    model = copy.deepcopy(model)
    if spec.get("fold_bn", True):
        _fold_all_bn(model)
    for name, mod in list(model.named_modules()):
        if not name:
            continue
        if isinstance(mod, QLAYERS):
            continue
        if isinstance(mod, nn.Conv2d):
            new: nn.Module = QConv2d.from_float(
                mod, wq=_factory(spec, make, name, "weight", "conv"),
                aq=_factory(spec, make, name, "act", "conv"))
        elif isinstance(mod, nn.Linear):
            new = QLinear.from_float(mod, wq=_factory(spec, make, name, "weight", "linear"),
                                     aq=_factory(spec, make, name, "act", "linear"))
        elif isinstance(mod, Add):
            new = QAdd(qa=_factory(spec, make, name, "act"), qb=_factory(spec, make, name, "act"))
        elif isinstance(mod, nn.AvgPool2d):
            new = QAvgPool2d.from_float(mod, aq=_factory(spec, make, name, "act"))
        elif isinstance(mod, nn.AdaptiveAvgPool2d):
            new = QAdaptiveAvgPool2d(mod.output_size, aq=_factory(spec, make, name, "act"))
        else:
            continue
        if isinstance(new, (QConv2d, QLinear)):
            new.quant_bias = bool(spec.get("quant_bias", False))
        _set_module(model, name, new.to(next(iter(mod.parameters()), torch.zeros(0)).device))
    _finish_graph(model, spec, make)
    for qname, q in quantizers(model).items():
        if hasattr(q, "label"):
            q.label = qname
    return model


# Ops through which an integer tensor keeps its format (no arithmetic on the scale).
PASS_MODULES = (nn.ReLU, nn.ReLU6, nn.MaxPool2d, nn.Flatten, nn.Dropout, nn.Identity)
PASS_FUNCS = (torch.flatten, F.relu, F.relu6, torch.relu, F.max_pool2d, F.dropout)
PASS_METHODS = ("flatten", "relu", "view", "reshape", "contiguous")


def is_pass(node: fx.Node, mods: Mapping[str, nn.Module]) -> bool:
    """Whether ``node`` keeps the integer format of its input (relu, max pool, flatten, ...)."""
    if node.op == "call_module":
        return isinstance(mods[node.target], PASS_MODULES)
    if node.op == "call_function":
        return node.target in PASS_FUNCS
    return node.op == "call_method" and node.target in PASS_METHODS


def consumer_quantizers(node: fx.Node, mods: Mapping[str, nn.Module],
                        ) -> tuple[list[tuple[str, nn.Module]], list[fx.Node]]:
    """Quantizers that read ``node``'s value, looking through pass-through ops.

    Returns ``([(qualname, quantizer)], [output nodes reached])``. A consumer without an input
    quantizer, or any other op, raises :class:`FuseError` naming it.
    """
    found: list[tuple[str, nn.Module]] = []
    outs: list[fx.Node] = []
    for user in node.users:
        if user.op == "output":
            outs.append(user)
            continue
        if is_pass(user, mods):
            f, o = consumer_quantizers(user, mods)
            found += f
            outs += o
            continue
        mod = mods.get(user.target) if user.op == "call_module" else None
        if isinstance(mod, InputSmooth):
            if node.op != "placeholder":
                raise FuseError(f"smoothing '{user.target}': 1/s can only be folded into the "
                                "host-side input quantization (it must read the network input)")
            f, o = consumer_quantizers(user, mods)
            found += f
            outs += o
            continue
        if isinstance(mod, QAdd):
            for i, arg in enumerate(user.args[:2]):
                if arg is node:
                    qn = "qa" if i == 0 else "qb"
                    found.append((f"{user.target}.{qn}", getattr(mod, qn)))
            continue
        if isinstance(mod, (QConv2d, QLinear, QAvgPool2d, QAdaptiveAvgPool2d)):
            found.append((f"{user.target}.aq", mod.aq))
            continue
        if isinstance(mod, nn.BatchNorm2d):
            f, o = consumer_quantizers(user, mods)
            found += f
            outs += o
            continue
        raise FuseError(f"node '{user.name}' ({user.op} {user.target}) reads a quantized tensor "
                        "but is not a supported integer op")
    return found, outs


def _finish_graph(model: nn.Module, spec: Mapping[str, Any], make: QuantFactory) -> None:
    gm = trace(model)
    mods = dict(model.named_modules())
    for node in gm.graph.nodes:
        mod = mods.get(node.target) if node.op == "call_module" else None
        is_producer = node.op == "placeholder" or isinstance(mod, QLAYERS)
        if not is_producer:
            continue
        if isinstance(mod, nn.BatchNorm2d):
            continue
        found, outs = consumer_quantizers(node, mods)
        found = [(n, q) for n, q in found if q is not None]
        if outs and mod is not None and getattr(mod, "oq", None) is None:
            typ = _layer_type(mod)
            kind = "output" if _spec_get(spec, node.target, "output", typ) is not None else "act"
            mod.oq = _factory(spec, make, node.target, kind, typ)
            log.debug("output quantizer for %s", node.target)
        first = getattr(mod, "oq", None) if mod is not None else None
        for qname, q in found:
            if first is None:
                first = q
            elif q is not first:
                _set_module(model, qname, first)
                log.debug("tied %s to the producer format of %s", qname, node.name)
