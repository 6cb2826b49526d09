"""The model swap: :func:`quantize_model` turns a float model into a fake-quant copy.

Float BatchNorm folding (:func:`fold_bn`) happens here, before weight quantization; the
consumer quantizers of a forked tensor are tied to one module so that every integer tensor has
ONE format (:func:`t2c_sim.quant.graph.consumer_quantizers`).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from t2c_sim.errors import ConfigError, ModelError
from t2c_sim.quant.graph import consumer_quantizers, trace
from t2c_sim.quant.modules import (
    QLAYERS,
    Add,
    QAdaptiveAvgPool2d,
    QAdd,
    QAvgPool2d,
    QConv2d,
    QLinear,
    quantizers,
)
from t2c_sim.quant.qconfig import make_quantizer

__all__ = ["quantize_model", "fold_bn"]

log = logging.getLogger(__name__)

QuantFactory = Callable[..., nn.Module]


def _set_module(root: nn.Module, qualname: str, new: nn.Module) -> None:
    parent, _, leaf = qualname.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Float BN folding (eval statistics): a new conv equal to ``bn(conv(x))``.

    ``g = gamma / sqrt(var + eps)``; ``W' = W * g[c]``; ``b' = (b - mean) * g + beta``.
    """
    if not bn.track_running_stats or bn.running_var is None:
        raise ModelError(f"batch norm {bn}: needs running statistics to fold")
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
            raise ModelError(f"batch norm '{node.target}' does not directly follow a conv with a "
                            "single user; cannot fold it")
        _set_module(model, src.target, fold_bn(conv, mods[node.target]))
        _set_module(model, node.target, nn.Identity())
        log.debug("folded %s into %s", node.target, src.target)


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
    make = make or make_quantizer
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
