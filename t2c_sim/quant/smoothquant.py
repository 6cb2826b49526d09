"""SmoothQuant (Xiao et al., ICML 2023): migrate activation outliers into the weights.

For a linear layer ``Y = X W^T`` (``X[..., C_in]``, ``W[C_out, C_in]``) and per input channel
``j``: ``s_j = max|X_j|^alpha / max|W_{:, j}|^(1 - alpha)`` (both maxima clamped to ``>= eps``).
Then ``Y = (X diag(s)^-1) (W diag(s))^T`` exactly in real arithmetic: activations are divided by
``s`` and weight columns multiplied by it. With ``alpha = 0.5`` the smoothed maxima agree:
``max|X_j / s_j| = max|W_j * s_j| = sqrt(max|X_j| * max|W_j|)``.

:class:`SmoothQuantizer` is the layer's input quantizer: it records ``max|X_j|`` while observing
(over every dimension but the last), divides by ``smooth`` (ones until :func:`smooth_linear`
installs ``s``) and fake-quantizes ``X / s`` with a MinMax quantizer of the chosen granularity
(tensor, channel = per input feature, token = per ``(batch, token)`` row). Its integers and
:meth:`~SmoothQuantizer.dequantize` live in the smoothed domain ``X / s``. A per-tensor input
scale cannot absorb ``1/s``, so fuse accepts a smoothed :class:`SmoothQuantizer` only as the
network input quantizer (host side) and raises :class:`~t2c_sim.errors.FuseError` elsewhere.

Folding through fuse (:func:`smooth_model`, the recipe's ``quant.smoothquant``): before
quantization, on the float model, ``W[:, j] <- W[:, j] * s_j`` and ``1/s_j`` goes into what
produces ``X_j``: a previous linear (possibly through ReLU, Dropout, Identity: ReLU commutes with
positive per-channel scaling) gets ``W_p[j, :] <- W_p[j, :] / s_j`` and ``b_p[j] <- b_p[j] / s_j``;
the network input gets an :class:`~t2c_sim.quant.modules.InputSmooth` (``x / s``) that fuse turns
into host-side input quantization ``x_q = quantize(x / s)``. The float function is unchanged
(up to float rounding) and every integer layer is an ordinary fused linear. Anything else
between the producer and the linear (ReLU6, flatten, conv, add, a forked tensor) cannot carry
``1/s`` and raises :class:`~t2c_sim.errors.ModelError` naming the module.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import Tensor, nn

from t2c_sim.errors import ModelError, QuantError
from t2c_sim.quant.graph import consumer_quantizers, trace
from t2c_sim.quant.minmax import MinMaxQuantizer
from t2c_sim.quant.modules import InputSmooth

__all__ = ["smooth_scales", "SmoothQuantizer", "smooth_linear", "act_absmax", "smooth_model",
           "input_smooth"]

log = logging.getLogger(__name__)


def smooth_scales(act_absmax: Tensor, weight: Tensor, alpha: float = 0.5,
                  eps: float = 1e-5) -> Tensor:
    """``s_j = max|X_j|^alpha / max_i|W_ij|^(1 - alpha)`` (maxima clamped to ``>= eps``).

    >>> smooth_scales(torch.tensor([4.0, 1.0]), torch.tensor([[1.0, 4.0], [-0.5, 2.0]]))
    tensor([2.0000, 0.5000])
    """
    if isinstance(alpha, bool) or not 0.0 <= float(alpha) <= 1.0:
        raise QuantError(f"smooth_scales: alpha must be in [0, 1], got {alpha!r}")
    if weight.dim() != 2 or act_absmax.shape != (weight.shape[1],):
        raise QuantError(f"smooth_scales: need act_absmax [C_in] and weight [C_out, C_in], got "
                         f"{tuple(act_absmax.shape)} and {tuple(weight.shape)}")
    a = act_absmax.detach().float().clamp(min=eps)
    w = weight.detach().abs().float().amax(dim=0).clamp(min=eps)
    s = a.pow(float(alpha)) / w.pow(1.0 - float(alpha))
    if not bool(torch.all(torch.isfinite(s) & (s > 0))):
        raise QuantError("smooth_scales: non-finite smoothing factor (NaN/inf statistics?)")
    return s


class SmoothQuantizer(MinMaxQuantizer):
    """Input quantizer of a smoothed linear: ``x_out = fq(x / smooth)``, ``fq`` = MinMax.

    ``fq(u) = (clamp(round_half_even(u / s) + z, qmin, qmax) - z) * s`` on ``u = x / smooth``
    (STE gradient). While observing, ``act_absmax[j] = max(act_absmax[j], max |x[..., j]|)``.
    Default: unsigned = False, tensor-wise, symmetric.
    """

    def __init__(self, nbit: int = 8, unsigned: bool = False, granularity: str = "tensor",
                 ch_axis: int = -1, symmetric: bool | None = None, observer=None,
                 momentum: float | None = None) -> None:
        super().__init__(nbit, unsigned, granularity, ch_axis, symmetric, observer, momentum)
        self.register_buffer("smooth", torch.ones(0))
        self.register_buffer("act_absmax", torch.zeros(0))

    def _record(self, x: Tensor) -> None:
        with torch.no_grad():
            m = x.detach().abs().float().reshape(-1, x.shape[-1]).amax(dim=0)
            if self.act_absmax.numel() == 0:
                self.act_absmax = m.clone()
            elif self.act_absmax.shape != m.shape:
                raise QuantError(f"{self.label}: feature count changed from "
                                 f"{self.act_absmax.numel()} to {m.numel()}")
            else:
                self.act_absmax = torch.maximum(self.act_absmax, m)

    def smoothed(self, x: Tensor) -> Tensor:
        """``x / smooth`` (identity before :func:`smooth_linear`)."""
        if self.smooth.numel() == 0:
            return x
        if x.shape[-1] != self.smooth.numel():
            raise QuantError(f"{self.label}: {self.smooth.numel()} smoothing factors for "
                             f"{x.shape[-1]} features")
        return x / self.smooth

    def forward(self, x: Tensor) -> Tensor:
        if self.observing:
            self._record(x)
        return super().forward(self.smoothed(x))

    def quantize(self, x: Tensor) -> Tensor:
        """Integers of ``x / smooth`` (the smoothed domain)."""
        return super().quantize(self.smoothed(x))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        for name in ("smooth", "act_absmax"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def smooth_linear(linear: nn.Module, aq: SmoothQuantizer, alpha: float = 0.5) -> Tensor:
    """Smooth ``linear`` (anything with a ``[C_out, C_in]`` ``weight``) using ``aq``'s statistics.

    Computes ``s`` from ``aq.act_absmax`` and the *unsmoothed* weight (``W / s_old`` if smoothing
    was applied before), sets ``W <- W_unsmoothed * s`` in place and ``aq.smooth <- s``, and
    resets ``aq``'s range (the smoothed activations must be re-observed). If the layer has a
    weight quantizer ``wq`` with ``reset``/``observe``, it is recalibrated on ``W * mask``.
    Returns ``s``.
    """
    w = getattr(linear, "weight", None)
    if not isinstance(w, Tensor) or w.dim() != 2:
        raise QuantError(f"smooth_linear: {type(linear).__name__} has no [C_out, C_in] weight")
    if aq.act_absmax.numel() == 0:
        raise QuantError(f"smooth_linear: {aq.label} has no activation statistics (run "
                         f"calibration data through it with observing=True first)")
    with torch.no_grad():
        old = aq.smooth if aq.smooth.numel() else torch.ones(w.shape[1], device=w.device)
        w_orig = w / old.to(w.dtype)
        s = smooth_scales(aq.act_absmax, w_orig, alpha)
        w.copy_(w_orig * s.to(w.dtype))
    aq.smooth = s.clone()
    aq.reset()
    wq = getattr(linear, "wq", None)
    if wq is not None and hasattr(wq, "reset") and hasattr(wq, "observe"):
        mask = getattr(linear, "mask", None)
        wq.reset()
        wq.observe(w.detach() if mask is None else w.detach() * mask)
    log.debug("smoothed %s: alpha=%s, s in [%.3g, %.3g]", type(linear).__name__, alpha,
              float(s.min()), float(s.max()))
    return s


# ---- folding into the float model (recipe ``quant.smoothquant``) ----------------------------
_COMMUTES = (nn.ReLU, nn.Dropout, nn.Identity)          # f(x * s) = f(x) * s for s > 0
_COMMUTES_F = (F.relu, torch.relu)


def act_absmax(model: nn.Module, x: Tensor, names: Sequence[str], batch: int = 256,
               ) -> dict[str, Tensor]:
    """``max |X_j|`` over every row of the input of each linear in ``names`` (float forward)."""
    mods = dict(model.named_modules())
    out: dict[str, Tensor] = {}
    hooks = []
    for n in names:
        if not isinstance(mods.get(n), nn.Linear):
            raise ModelError(f"smoothquant layer '{n}': not a Linear module of the model")

        def pre(mod: nn.Module, args: tuple[Tensor, ...], n: str = n) -> None:
            m = args[0].detach().abs().float().reshape(-1, args[0].shape[-1]).amax(dim=0)
            out[n] = m if n not in out else torch.maximum(out[n], m)
        hooks.append(mods[n].register_forward_pre_hook(pre))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch):
                model(x[i:i + batch])
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return out


def _producer(gm: fx.GraphModule, mods: dict[str, nn.Module], name: str) -> fx.Node:
    """The node whose output rows carry ``1/s`` for linear ``name``: a Linear or the input."""
    calls = [n for n in gm.graph.nodes if n.op == "call_module" and n.target == name]
    if len(calls) != 1:
        raise ModelError(f"smoothquant layer '{name}': called {len(calls)} times in the graph "
                        "(need exactly once)")
    src = calls[0].args[0]
    while True:
        if not isinstance(src, fx.Node):
            raise ModelError(f"smoothquant layer '{name}': input is not a tensor node")
        if len(src.users) != 1:
            raise ModelError(f"smoothquant layer '{name}': cannot fold 1/s into '{src.name}', "
                            "its output has other consumers")
        mod = mods.get(src.target) if src.op == "call_module" else None
        if src.op == "placeholder" or isinstance(mod, nn.Linear):
            return src
        if isinstance(mod, _COMMUTES) or (src.op == "call_function"
                                          and src.target in _COMMUTES_F) or (
                src.op == "call_method" and src.target == "relu"):
            src = src.args[0]
            continue
        what = type(mod).__name__ if mod is not None else f"{src.op} {src.target}"
        raise ModelError(f"smoothquant layer '{name}': cannot fold 1/s through '{src.name}' "
                        f"({what}; only Linear producers via ReLU/Dropout/Identity or the input)")


def smooth_model(model: nn.Module, x_calib: Tensor, layers: Sequence[str], alpha: float = 0.5,
                 ) -> tuple[nn.Module, dict[str, Tensor]]:
    """SmoothQuant folded into a copy of a float model; returns ``(model, {layer: s})``.

    For each linear ``l`` in ``layers``: ``s = smooth_scales(max|X|, W_l, alpha)`` with ``max|X|``
    from :func:`act_absmax` on ``x_calib`` and the ORIGINAL weights (every ``s`` is computed
    before any weight changes, so the order of ``layers`` does not matter). Then
    ``W_l[:, j] *= s_j`` and ``1/s_j`` is folded into the producer (module docstring). The
    returned model computes the same function; it is a ``torch.fx.GraphModule`` with an
    ``input_smooth`` (:class:`~t2c_sim.quant.modules.InputSmooth`) when the first layer is
    smoothed. Unfoldable cases raise :class:`ModelError` naming the module.

    Example: ``Y = relu(x W1^T + b1) W2^T`` with ``s`` for ``W2``:
    ``relu(x (W1/s)^T + b1/s) (W2 s)^T = (relu(x W1^T + b1) / s) (W2 s)^T = Y``.
    """
    if len(set(layers)) != len(layers):
        raise ModelError(f"smoothquant layers {list(layers)}: a module is listed twice")
    model = copy.deepcopy(model)
    stats = act_absmax(model, x_calib, layers)
    gm = trace(model)
    mods = dict(gm.named_modules())
    prods = {n: _producer(gm, mods, n) for n in layers}
    scales = {n: smooth_scales(stats[n], mods[n].weight, alpha) for n in layers}
    insert = None
    with torch.no_grad():
        for n in layers:
            s = scales[n]
            lin = mods[n]
            lin.weight.mul_(s.to(lin.weight.dtype))
            p = prods[n]
            if p.op == "placeholder":
                insert = s
                continue
            prod = mods[p.target]
            prod.weight.div_(s.to(prod.weight.dtype).reshape(-1, 1))
            if prod.bias is not None:
                prod.bias.div_(s.to(prod.bias.dtype))
            log.debug("smoothquant %s: 1/s folded into %s", n, p.target)
    if insert is None:
        return model, scales
    ph = next(n for n in gm.graph.nodes if n.op == "placeholder")
    gm.add_submodule("input_smooth", InputSmooth(insert))
    with gm.graph.inserting_after(ph):
        node = gm.graph.call_module("input_smooth", (ph,))
    ph.replace_all_uses_with(node, delete_user_cb=lambda u: u is not node)
    gm.recompile()
    log.debug("smoothquant: 1/s of the network input goes to host-side input quantization")
    return gm, scales


def input_smooth(model: nn.Module) -> Tensor | None:
    """Factors ``s`` the network input is divided by before quantization, or ``None``.

    ``x_q = quantize(x / s)``: from an :class:`~t2c_sim.quant.modules.InputSmooth` on the input
    and/or a smoothed :class:`SmoothQuantizer` as the input quantizer (their product).
    """
    gm = trace(model)
    mods = dict(model.named_modules())
    ph = next(n for n in gm.graph.nodes if n.op == "placeholder")
    s = None
    for u in ph.users:
        if u.op == "call_module" and isinstance(mods.get(u.target), InputSmooth):
            s = mods[u.target].s.detach().clone()
    found, _ = consumer_quantizers(ph, mods)
    q = found[0][1] if found else None
    if isinstance(q, SmoothQuantizer) and q.smooth.numel():
        s = q.smooth.detach().clone() if s is None else s * q.smooth.detach()
    return s
