"""The model swap: :func:`quantize_model` turns a float model into a fake-quant copy.

It traces the model (:func:`t2c_sim.quant.graph.trace`), asks the op table
(:func:`t2c_sim.quant.ops.classify`) about every node, and rewrites the graph so that every
integer op is a module that can hold quantizers: ``a + b`` / ``a += b`` / ``torch.add`` become
an :class:`~t2c_sim.quant.modules.Add`, ``torch.cat`` a :class:`~t2c_sim.quant.modules.Cat`,
``F.max_pool2d`` / ``F.avg_pool2d`` / ``F.adaptive_avg_pool2d`` / ``x.mean((2, 3))`` /
``F.dropout`` their modules (named after the module whose ``forward`` holds them:
``layer1.0.add``), and a parameter-free module called more than once gets one copy per call.
Float BatchNorm folding (:func:`fold_bn`) happens next, before weight quantization; then the
wrappers are swapped in, and the consumer quantizers of a forked tensor are tied to one module so
that every integer tensor has ONE format (:func:`t2c_sim.quant.graph.consumer_quantizers`).
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from t2c_sim.errors import ConfigError, ModelError
from t2c_sim.quant.graph import consumer_quantizers, scope_of, tensor_users, trace
from t2c_sim.quant.modules import (
    QLAYERS,
    Add,
    Cat,
    MatMul,
    QAdaptiveAvgPool2d,
    QAdd,
    QAvgPool2d,
    QCat,
    QConv2d,
    QLinear,
    quantizers,
)
from t2c_sim.quant.nodes import _HINTS
from t2c_sim.quant.nonlinear import QGELU, QLayerNorm, QMatMul, QSoftmax
from t2c_sim.quant.ops import Op, Role, classify, is_const, unsupported, where
from t2c_sim.quant.qconfig import make_quantizer

__all__ = ["quantize_model", "fold_bn", "normalize"]

log = logging.getLogger(__name__)

QuantFactory = Callable[..., nn.Module]


def _set_module(root: nn.Module, qualname: str, new: nn.Module) -> None:
    parent, _, leaf = qualname.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


def fold_bn(layer: nn.Conv2d | nn.Linear, bn: nn.BatchNorm2d | nn.BatchNorm1d,
            ) -> nn.Conv2d | nn.Linear:
    """Float BN folding (eval statistics): a new conv (linear) equal to ``bn(layer(x))``.

    ``g = gamma / sqrt(var + eps)``; ``W' = W * g[c]`` (per output channel); ``b' = (b - mean) *
    g + beta``. BatchNorm2d follows a conv, BatchNorm1d a linear on ``[B, C]``.
    """
    if not bn.track_running_stats or bn.running_var is None:
        raise ModelError(f"batch norm {bn}: needs running statistics to fold")
    g = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(
        bn.running_var + bn.eps)
    beta = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    new = copy.deepcopy(layer)
    with torch.no_grad():
        new.weight.copy_(layer.weight * g.reshape((-1,) + (1,) * (layer.weight.dim() - 1)))
        b = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
        folded = (b - bn.running_mean) * g + beta
        if new.bias is None:
            new.bias = nn.Parameter(folded.detach().clone())
        else:
            new.bias.copy_(folded)
    return new


# ---- graph rewrite ---------------------------------------------------------------------------
def _fresh(gm: fx.GraphModule, scope: str, base: str) -> str:
    """An unused attribute name ``base``, ``base_1``, ... in module ``scope`` (qualified)."""
    parent = gm.get_submodule(scope) if scope else gm
    i = 0
    while True:
        leaf = base if i == 0 else f"{base}_{i}"
        if not hasattr(parent, leaf):
            return f"{scope}.{leaf}" if scope else leaf
        i += 1


def _insert(gm: fx.GraphModule, node: fx.Node, op: Op) -> str:
    """Replace functional ``node`` by a call of the module ``op.make()`` (same inputs)."""
    g = gm.graph
    name = _fresh(gm, scope_of(node, gm), op.base)
    gm.add_submodule(name, op.make())
    with g.inserting_before(node):
        new = g.call_module(name, tuple(op.inputs))
    new.meta.update(node.meta)
    last = new
    if op.flatten_after:
        with g.inserting_after(new):
            last = g.call_function(torch.flatten, (new, 1))
        last.meta.update(node.meta)
    node.replace_all_uses_with(last)
    g.erase_node(node)
    log.debug("inserted %s for %s", name, node.name)
    return name


def _check_inplace(node: fx.Node, op: Op, mods: Mapping[str, nn.Module]) -> None:
    if not node.users:
        raise unsupported(node, mods, "an in-place activation whose result is not used",
                          "assign the result (x = F.relu(x)); in-place updates are not followed")
    if len(tensor_users(op.inputs[0], mods)) > 1:
        raise unsupported(node, mods, "an in-place activation on a tensor that other ops also "
                          "read", "use inplace=False (or the out-of-place form)")


def normalize(gm: fx.GraphModule) -> None:
    """Rewrite ``gm`` in place so that every integer op is a module (module docstring).

    Raises :class:`ModelError` naming the node and the user's source line for an op the
    integer model does not have, a conv/linear/batch norm called more than once (shared
    weights) and an in-place activation that the graph cannot follow.
    """
    g = gm.graph
    mods = dict(gm.named_modules())
    calls = Counter(n.target for n in g.nodes if n.op == "call_module")
    seen: Counter = Counter()
    for node in list(g.nodes):
        if node.op in ("placeholder", "output"):
            continue
        op = classify(node, mods)
        if op.role is Role.CONST:
            _check_const(node, mods)
            continue
        if op.role in (Role.SHAPE, Role.SCALE):
            continue
        if op.inplace:
            _check_inplace(node, op, mods)
        if node.op == "call_module":
            seen[node.target] += 1
            if seen[node.target] == 1 or op.role in (Role.ACT, Role.ALIAS):
                continue
            if op.role in (Role.MAC, Role.BN, Role.LAYERNORM):
                raise ModelError(f"module '{node.target}' is called {calls[node.target]} times "
                                 "(shared weights); an integer layer is one call: use one module "
                                 "per call", **where(node))
            name = _fresh(gm, *(node.target.rpartition(".")[::2]))
            gm.add_submodule(name, copy.deepcopy(mods[node.target]))
            mods[name] = gm.get_submodule(name)
            node.target = name
            continue
        if op.make is not None:
            name = _insert(gm, node, op)
            mods[name] = gm.get_submodule(name)
    _fold_scales(gm)
    g.eliminate_dead_code()
    gm.recompile()


def _check_const(node: fx.Node, mods: Mapping[str, nn.Module]) -> None:
    """A parameter/buffer must be an operand of an add or lead a concat (through ``expand`` &c.)."""
    for u in node.users:
        try:
            role = classify(u, mods).role if u.op != "output" else None
        except ModelError:
            role = None
        if role not in (Role.CONST, Role.ADD, Role.CONCAT):
            raise unsupported(node, mods)


_LINEAR_MOVES = (Role.MOVE, Role.ALIAS, Role.FLATTEN)


def _matmul_module(n: fx.Node, mods: Mapping[str, nn.Module]) -> MatMul | None:
    m = mods.get(n.target) if n.op == "call_module" else None
    return m if isinstance(m, MatMul) else None


def _scale_target(node: fx.Node, src: fx.Node, mods: Mapping[str, nn.Module]) -> MatMul | None:
    """The matmul a constant factor folds into: the producer of its input, or the consumer of
    its output, with only data movement in between and no other reader on the way (scaling
    commutes with data movement and a matmul is linear in each operand)."""
    n = src
    while n.op in ("call_module", "call_function", "call_method") and \
            len(tensor_users(n, mods)) == 1:
        mm = _matmul_module(n, mods)
        if mm is not None:
            return mm
        op = classify(n, mods)
        if op.role not in _LINEAR_MOVES or not op.inputs:
            break
        n = op.inputs[0]
    n = node
    while True:
        users = tensor_users(n, mods)
        if len(users) != 1 or users[0].op == "output":
            return None
        u = users[0]
        mm = _matmul_module(u, mods)
        if mm is not None:
            return mm
        if classify(u, mods).role not in _LINEAR_MOVES:
            return None
        n = u


def _fold_scales(gm: fx.GraphModule) -> None:
    """Fold every constant factor (:attr:`Role.SCALE`) into the ``alpha`` of its matmul."""
    g = gm.graph
    mods = dict(gm.named_modules())
    for node in list(g.nodes):
        if node.op not in ("call_function", "call_method"):
            continue
        op = classify(node, mods)
        if op.role is not Role.SCALE:
            continue
        mm = _scale_target(node, op.inputs[0], mods)
        if mm is None:
            raise unsupported(node, mods, "a constant factor that is not next to a matmul",
                              _HINTS["mul"])
        mm.alpha *= op.factor
        node.replace_all_uses_with(op.inputs[0])
        g.erase_node(node)
        log.debug("folded %s (x %g) into a matmul", node.name, op.factor)


def _fold_all_bn(gm: fx.GraphModule) -> None:
    mods = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        bn = mods.get(node.target) if node.op == "call_module" else None
        if not isinstance(bn, (nn.BatchNorm2d, nn.BatchNorm1d)):
            continue
        want = nn.Conv2d if isinstance(bn, nn.BatchNorm2d) else nn.Linear
        src = node.args[0]
        layer = mods.get(src.target) if isinstance(src, fx.Node) and src.op == "call_module" \
            else None
        if not isinstance(layer, want) or len(tensor_users(src, mods)) != 1:
            raise ModelError(f"batch norm '{node.target}' does not directly follow an "
                             f"nn.{want.__name__} whose output only it reads; cannot fold it "
                             "(the integer model has no standalone batch norm): place it right "
                             f"after a {want.__name__} or remove it", **where(node))
        _set_module(gm, src.target, fold_bn(layer, bn))
        _set_module(gm, node.target, nn.Identity())
        mods = dict(gm.named_modules())
        node.replace_all_uses_with(src)
        gm.graph.erase_node(node)
        log.debug("folded %s into %s", node.target, src.target)
    gm.recompile()


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
                   make: QuantFactory | None = None) -> fx.GraphModule:
    """Return a fake-quant copy of ``model`` as a ``torch.fx.GraphModule`` (a
    :class:`~t2c_sim.quant.graph.Traced` that keeps the model's own submodules: ``q.fc`` is the
    swapped ``fc``).

    Steps: (1) trace and :func:`normalize` (every node asked of the op table; ``+``,
    ``torch.cat``, functional pools become modules); (2) with ``spec["fold_bn"]`` (default
    True) every BatchNorm2d after a conv and BatchNorm1d after a linear is folded into it in
    float **before** weight quantization, so the weight quantizer sees (and the integer weights
    are) the folded weights; with ``fold_bn: False`` BN stays and fuse folds it after
    quantization into the per-channel multiplier; (3) Conv2d/Linear/AvgPool2d/
    AdaptiveAvgPool2d/:class:`Add`/:class:`Cat` become Q wrappers, each quantizer built by
    ``make(name, **kw)`` from, first match wins, per-module ``spec["overrides"][qualname][kind]``,
    per-layer-type ``spec["types"]["conv"|"linear"][kind]``, the defaults ``spec["weight"]``,
    ``spec["act"]`` (inputs); (4) layers whose output reaches the model output
    without a consumer quantizer get an output quantizer from ``spec["output"]`` (or
    ``spec["act"]``); (5) the consumer quantizers of a forked tensor are tied to one module.

    ``spec`` kinds map to ``{"quantizer": preset, **kwargs}`` (e.g. ``{"quantizer":
    "minmax_channel", "nbit": 8}``); ``make`` defaults to ``qconfig.make_quantizer``.
    """
    make = make or make_quantizer
    gm = trace(copy.deepcopy(model))
    normalize(gm)
    if spec.get("fold_bn", True):
        _fold_all_bn(gm)
    _swap(gm, spec, make)
    _finish_graph(gm, spec, make)
    for qname, q in quantizers(gm).items():
        if hasattr(q, "label"):
            q.label = qname
    return gm


def _swap(gm: fx.GraphModule, spec: Mapping[str, Any], make: QuantFactory) -> None:
    """Every called Conv2d/Linear/AvgPool2d/AdaptiveAvgPool2d/Add/Cat becomes its Q wrapper."""
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        name = node.target
        mod = gm.get_submodule(name)
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
        elif isinstance(mod, Cat):
            new = QCat([nn.Identity() if is_const(a) else _factory(spec, make, name, "act")
                        for a in node.args], mod.dim)
        elif isinstance(mod, MatMul):
            new = QMatMul(aq=_factory(spec, make, name, "act"), bq=_factory(spec, make, name, "act"),
                          alpha=mod.alpha)
        elif isinstance(mod, nn.Softmax):
            bits = int((_spec_get(spec, name, "act") or {}).get("nbit", 8))
            new = QSoftmax(aq=_factory(spec, make, name, "act"), y_bits=bits,
                           dim=-1 if mod.dim is None else mod.dim)
            new.where = where(node)
        elif isinstance(mod, nn.LayerNorm):
            new = QLayerNorm.from_float(mod, aq=_factory(spec, make, name, "act"))
        elif isinstance(mod, nn.GELU):
            new = QGELU(aq=_factory(spec, make, name, "act"), approximate=mod.approximate)
        elif isinstance(mod, nn.AvgPool2d):
            new = QAvgPool2d.from_float(mod, aq=_factory(spec, make, name, "act"))
        elif isinstance(mod, nn.AdaptiveAvgPool2d):
            new = QAdaptiveAvgPool2d(mod.output_size, aq=_factory(spec, make, name, "act"))
        else:
            continue
        if isinstance(new, (QConv2d, QLinear)):
            new.quant_bias = bool(spec.get("quant_bias", False))
        dev = next(iter(mod.parameters()), next(iter(mod.buffers()), torch.zeros(0))).device
        _set_module(gm, name, new.to(dev))


def _finish_graph(model: fx.GraphModule, spec: Mapping[str, Any], make: QuantFactory) -> None:
    gm = model
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
