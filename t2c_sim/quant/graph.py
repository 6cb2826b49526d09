"""``torch.fx`` queries on (fake-quant) models: tracing, formats through pass-through ops, the
activation fused into a producer, flattened inputs.

- :func:`trace`: the graph (a :class:`Traced` module that keeps the user's module hierarchy),
  with the Q wrappers, :class:`~t2c_sim.quant.modules.Add`, :class:`~t2c_sim.quant.modules.Cat`
  and :class:`~t2c_sim.quant.modules.InputSmooth` as leaves and the user's source line of every
  node recorded; a model that already is a ``GraphModule`` is its own graph.
- :func:`consumer_quantizers`: which quantizers read a node's value (looking through ReLU,
  max pool, flatten, dropout, ...): the integer format of that tensor comes from ONE of them.
- :func:`fused_activation`: the ReLU/ReLU6 every path after a node passes, which the integer
  producer applies in its clamp.
- :func:`flatten_inputs`: linear layers fed by a flatten of a 4-D tensor (their ``(C, H, W)``).

What each node is comes from the one op table, :func:`t2c_sim.quant.ops.classify`. Structural
problems raise :class:`~t2c_sim.errors.ModelError` naming the node and its source line.
"""

from __future__ import annotations

import copy
import linecache
import os
import sys
import traceback
from collections.abc import Mapping
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from t2c_sim.errors import ModelError
from t2c_sim.quant.modules import LEAVES, QAdd, QCat, QMatMul, set_observing
from t2c_sim.quant.ops import CHAIN_ROLES, Q_MODULES, Role, classify, describe, source_of, where

__all__ = ["Traced", "trace", "consumer_quantizers", "fused_activation", "flatten_inputs",
           "tensor_users", "scope_of"]


_TORCH_DIR = os.path.dirname(torch.__file__)
_HERE = os.path.dirname(os.path.abspath(__file__))


class _Tracer(fx.Tracer):
    """Leaves: the Q wrappers, Add, Cat, InputSmooth. Every node records the user's source line
    (``node.meta["stack_trace"]``, fx's format): the innermost frame outside torch and this
    package's quant code, found by walking the frames (fx's own ``record_stack_traces``
    symbolizes a full traceback per node, seconds on first use)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, LEAVES) or super().is_leaf_module(m, qualname)

    def create_proxy(self, *args: Any, **kwargs: Any) -> fx.Proxy:
        proxy = super().create_proxy(*args, **kwargs)
        if not proxy.node.meta.get("stack_trace"):
            f = sys._getframe(1)
            while f is not None and (f.f_code.co_filename.startswith(_TORCH_DIR)
                                     or f.f_code.co_filename.startswith(_HERE)):
                f = f.f_back
            if f is not None:
                fn, ln = f.f_code.co_filename, f.f_lineno
                code = linecache.getline(fn, ln).strip()
                proxy.node.meta["stack_trace"] = (f'File "{fn}", line {ln}, in '
                                                  f"{f.f_code.co_name}\n    {code}\n")
        return proxy


class Traced(fx.GraphModule):
    """A traced model that keeps the user's module hierarchy.

    A plain ``fx.GraphModule`` rebuilds the submodules it calls as bare ``nn.Module`` s; this
    one keeps the model's own children (``gm.layer1[0]`` is the user's block, ``gm.body[3]``
    indexes the user's ``nn.Sequential``), also across ``copy.deepcopy``. A root
    ``nn.Sequential`` / ``nn.ModuleList`` stays indexable (``gm[3]``, ``len(gm)``).
    """

    @classmethod
    def wrap(cls, root: nn.Module, graph: fx.Graph) -> Traced:
        gm = cls(root, graph, class_name=type(root).__name__)
        for name, child in root.named_children():
            gm._modules[name] = child
        gm.indexable = isinstance(root, (nn.Sequential, nn.ModuleList))
        return gm

    def __getitem__(self, idx: int) -> nn.Module:
        if not getattr(self, "indexable", False):
            raise TypeError(f"'{type(self).__name__}' object is not subscriptable")
        return list(self._modules.values())[idx]

    def __bool__(self) -> bool:
        return True  # a module is truthy; without this, ``if gm:`` would call ``__len__``

    def __len__(self) -> int:
        if not getattr(self, "indexable", False):
            raise TypeError(f"object of type '{type(self).__name__}' has no len()")
        return len(self._modules)

    def __deepcopy__(self, memo: dict[int, Any]) -> Traced:
        kids = copy.deepcopy(dict(self._modules), memo)
        res = super().__deepcopy__(memo)
        res._modules.update(kids)
        res.indexable = getattr(self, "indexable", False)
        return res


def _user_frame(e: BaseException) -> dict[str, Any]:
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if not f.filename.startswith(_TORCH_DIR) and not f.filename.startswith(_HERE)]
    return {"file": frames[-1].filename, "line": frames[-1].lineno} if frames else {}


def trace(model: nn.Module) -> fx.GraphModule:
    """``torch.fx`` graph of ``model`` (a :class:`Traced`), Q wrappers and :class:`Add` as leaves.

    A model that is already a ``GraphModule`` (e.g. returned by
    :func:`~t2c_sim.quant.quantize.quantize_model`) is returned as is. A bare wrapper is not a
    graph: put it in a container (e.g. ``nn.Sequential``) first.
    """
    if isinstance(model, fx.GraphModule):
        return model
    if isinstance(model, LEAVES):
        raise ModelError(f"model {type(model).__name__}: a single wrapper layer cannot be traced; "
                         "put it in a container such as nn.Sequential")
    try:
        graph = _Tracer().trace(model)
    except Exception as e:  # fx raises many types for untraceable code
        msg = " ".join(str(e).split())
        raise ModelError(f"model {type(model).__name__}: cannot be traced by torch.fx ({msg}); "
                         "write forward without data-dependent control flow", **_user_frame(e)
                         ) from e
    return Traced.wrap(model, graph)


_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def scope_of(node: fx.Node, gm: fx.GraphModule) -> str:
    """Qualified name of the (non-container) module whose ``forward`` created ``node``."""
    stack = node.meta.get("nn_module_stack") or {}
    for key, val in reversed(list(stack.items())):
        q = val[0] if isinstance(val, tuple) else key
        try:
            m = gm.get_submodule(q)
        except AttributeError:
            continue
        if not isinstance(m, _CONTAINERS):
            return q
    return ""


def tensor_users(node: fx.Node, mods: Mapping[str, nn.Module]) -> list[fx.Node]:
    """Users of ``node`` that read its values (not ``x.size(0)``-style shape queries)."""
    return [u for u in node.users if u.op == "output" or classify(u, mods).role is not Role.SHAPE]


def _wrapper(user: fx.Node, mods: Mapping[str, nn.Module], role: Role) -> nn.Module:
    """The fake-quant module a consumer of this role must be (else an error naming it)."""
    mod = mods.get(user.target) if user.op == "call_module" else None
    if not isinstance(mod, Q_MODULES.get(role, ())):
        src = source_of(user)
        code = f" (`{src[2]}`)" if src else ""
        raise ModelError(f"{describe(user, mods)}{code} reads a quantized tensor but is not a "
                         "fake-quant layer: build the model with quantize_model (it swaps "
                         "conv/linear/pools for wrappers and inserts the integer add for `+` and "
                         "the integer concat for torch.cat)", **where(user))
    return mod


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
        op = classify(user, mods)
        if op.role is Role.SHAPE:
            continue
        if op.role in CHAIN_ROLES or op.role is Role.SMOOTH:
            if op.role is Role.SMOOTH and node.op != "placeholder":
                raise ModelError(f"smoothing '{user.target}': 1/s can only be folded into the "
                                 "host-side input quantization (it must read the network input)",
                                 **where(user))
            f, o = consumer_quantizers(user, mods)
            found += f
            outs += o
            continue
        mod = _wrapper(user, mods, op.role)
        if isinstance(mod, QAdd):
            for i, arg in enumerate(user.args[:2]):
                if arg is node:
                    qn = "qa" if i == 0 else "qb"
                    found.append((f"{user.target}.{qn}", getattr(mod, qn)))
        elif isinstance(mod, QCat):
            for i, arg in enumerate(user.args):
                if arg is node:
                    found.append((f"{user.target}.qs.{i}", mod.qs[i]))
        elif isinstance(mod, QMatMul):
            for i, arg in enumerate(user.args[:2]):
                if arg is node:
                    qn = "aq" if i == 0 else "bq"
                    found.append((f"{user.target}.{qn}", getattr(mod, qn)))
        else:
            found.append((f"{user.target}.aq", mod.aq))
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
    mods = dict(gm.named_modules())
    interp = fx.Interpreter(gm, garbage_collect_values=False)
    with torch.no_grad():
        interp.run(example_input)
    out: dict[str, tuple[int, int, int]] = {}
    for node in gm.graph.nodes:
        if node.op != "call_module" or not isinstance(mods[node.target], nn.Linear):
            continue
        src = node.args[0]
        while isinstance(src, fx.Node) and src.op not in ("placeholder", "get_attr") and \
                classify(src, mods).role in CHAIN_ROLES and \
                classify(src, mods).role is not Role.MOVE:
            shp = tuple(interp.env[src.args[0]].shape) if src.args else ()
            if len(shp) == 4 and len(interp.env[src].shape) == 2:
                out[node.target] = (shp[1], shp[2], shp[3])
                break
            src = src.args[0]
    return out


# ---- the activation fused into a producer's clamp ----------------------------------------------
def fused_activation(node: fx.Node, mods: Mapping[str, nn.Module], layer: str) -> str | None:
    """The activation every path from ``node`` to its consumers passes (``relu6`` > ``relu``).

    Looks through max pool, flatten, dropout, identity and a batch norm directly after the
    node. Raises :class:`ModelError` (naming ``layer``) when only some paths apply it, or a
    batch norm sits after an activation.
    """
    paths: list[frozenset[str]] = []

    def walk(n: fx.Node, acc: frozenset[str], bn_ok: bool) -> None:
        for u in n.users:
            op = classify(u, mods) if u.op != "output" else None
            if op is not None and op.role is Role.SHAPE:
                continue
            if op is not None and op.role is Role.ACT:
                walk(u, acc | {op.act}, False)
            elif op is not None and op.role in CHAIN_ROLES:
                if op.role is Role.BN and (acc or not bn_ok):
                    raise ModelError(f"batch norm '{u.target}' is not directly after the conv or "
                                     "linear; cannot fold it", layer=layer)
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

