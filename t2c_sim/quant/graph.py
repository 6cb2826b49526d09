"""``torch.fx`` queries on (fake-quant) models: tracing, formats through pass-through ops, the
activation fused into a producer, flattened inputs.

- :func:`trace`: the graph, with the Q wrappers, :class:`~t2c_sim.quant.modules.Add` and
  :class:`~t2c_sim.quant.modules.InputSmooth` as leaves.
- :func:`consumer_quantizers`: which quantizers read a node's value (looking through ReLU,
  max pool, flatten, dropout, ...): the integer format of that tensor comes from ONE of them.
- :func:`fused_activation`: the ReLU/ReLU6 every path after a node passes, which the integer
  producer applies in its clamp.
- :func:`flatten_inputs`: linear layers fed by a flatten of a 4-D tensor (their ``(C, H, W)``).

Structural problems raise :class:`~t2c_sim.errors.ModelError` naming the module or node.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from t2c_sim.errors import ModelError
from t2c_sim.quant.modules import (
    LEAVES,
    InputSmooth,
    QAdaptiveAvgPool2d,
    QAdd,
    QAvgPool2d,
    QConv2d,
    QLinear,
    set_observing,
)

__all__ = ["trace", "is_pass", "consumer_quantizers", "fused_activation", "flatten_inputs",
           "PASS_MODULES", "PASS_FUNCS", "PASS_METHODS", "FLATTEN_FUNCS", "ALIAS_MODULES",
           "relu_kind"]

FLATTEN_FUNCS = (torch.flatten,)
#: Modules that pass their input through unchanged (in eval mode).
ALIAS_MODULES = (nn.Dropout, nn.Identity)
_RELU = {nn.ReLU: "relu", nn.ReLU6: "relu6", torch.relu: "relu", F.relu: "relu",
         F.relu6: "relu6"}


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, LEAVES) or super().is_leaf_module(m, qualname)


def trace(model: nn.Module) -> fx.GraphModule:
    """``torch.fx`` graph of ``model`` with the Q wrappers (and :class:`Add`) as leaf modules.

    A bare wrapper is not a graph: put it in a container (e.g. ``nn.Sequential``) first.
    """
    if isinstance(model, LEAVES):
        raise ModelError(f"model {type(model).__name__}: a single wrapper layer cannot be traced; "
                        "put it in a container such as nn.Sequential")
    try:
        graph = _Tracer().trace(model)
    except Exception as e:  # fx raises many types for untraceable code
        raise ModelError(f"model {type(model).__name__}: cannot be traced by torch.fx ({e})") from e
    return fx.GraphModule(model, graph)


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
    quantizer, or any other op, raises :class:`ModelError` naming it.
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
                raise ModelError(f"smoothing '{user.target}': 1/s can only be folded into the "
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
        raise ModelError(f"node '{user.name}' ({user.op} {user.target}) reads a quantized tensor "
                        "but is not a supported integer op")
    return found, outs


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


# ---- the activation fused into a producer's clamp ----------------------------------------------
def relu_kind(node: fx.Node, mods: Mapping[str, nn.Module]) -> str | None:
    """``"relu"``/``"relu6"`` if ``node`` applies that activation, else ``None``."""
    if node.op == "call_module":
        return _RELU.get(type(mods[node.target]))
    if node.op == "call_function":
        return _RELU.get(node.target)
    if node.op == "call_method" and node.target == "relu":
        return "relu"
    return None


def _is_chain(node: fx.Node, mods: Mapping[str, nn.Module]) -> bool:
    """Ops a fused activation may be moved across (they commute with ReLU and quantization)."""
    if node.op == "call_module":
        return isinstance(mods[node.target], (nn.MaxPool2d, nn.Flatten, nn.BatchNorm2d)
                          + ALIAS_MODULES)
    if node.op == "call_function":
        return node.target in FLATTEN_FUNCS
    return node.op == "call_method" and node.target in ("flatten", "view", "reshape", "contiguous")


def fused_activation(node: fx.Node, mods: Mapping[str, nn.Module], layer: str) -> str | None:
    """The activation every path from ``node`` to its consumers passes (``relu6`` > ``relu``).

    Looks through max pool, flatten, dropout, identity and a batch norm directly after the
    node. Raises :class:`ModelError` (naming ``layer``) when only some paths apply it, or a
    batch norm sits after an activation.
    """
    paths: list[frozenset[str]] = []

    def walk(n: fx.Node, acc: frozenset[str], bn_ok: bool) -> None:
        for u in n.users:
            kind = relu_kind(u, mods)
            if kind is not None:
                walk(u, acc | {kind}, False)
            elif _is_chain(u, mods):
                if u.op == "call_module" and isinstance(mods[u.target], nn.BatchNorm2d):
                    if acc or not bn_ok:
                        raise ModelError(f"batch norm '{u.target}' is not directly after the "
                                         "conv; cannot fold it", layer=layer)
                walk(u, acc, False)
            else:
                paths.append(acc)

    walk(node, frozenset(), True)
    if not paths:
        return None
    if any(p != paths[0] for p in paths):
        raise ModelError("an activation is applied on some but not all paths after it (cannot "
                         "fuse it into the clamp)", layer=layer)
    return "relu6" if "relu6" in paths[0] else ("relu" if "relu" in paths[0] else None)
