"""Fake-quant layer wrappers (the modules the fuse step turns into integer layers).

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
- :class:`QCat`: ``y = oq(act(cat([q_0(x_0), q_1(x_1), ...], dim)))`` (concat: every input is
  requantized to the output format, the next layer's input quantizer or ``oq``; a constant input,
  e.g. a class token, has ``q_i = nn.Identity()`` and is quantized by the output format).
- :class:`MatMul`: float ``alpha * (a @ b)`` (its fake-quant form and those of softmax, LayerNorm
  and GELU are in :mod:`t2c_sim.quant.nonlinear`).
- :class:`QAvgPool2d` / :class:`QAdaptiveAvgPool2d`: ``y = oq(avgpool(aq(x)))``.
- Max pool, flatten, ReLU need no wrapper: they commute with a monotone quantizer, so the
  integer model runs them on integers (ReLU moves into the producer's clamp in fuse).

The model swap is :func:`t2c_sim.quant.quantize.quantize_model`; the ``torch.fx`` queries
(tracing, which quantizer gives a tensor its format) are :mod:`t2c_sim.quant.graph`.
:func:`quantizers`, :func:`set_observing` and :func:`frozen` manage the quantizer state.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from t2c_sim.errors import ConfigError, ModelError
from t2c_sim.quant.nonlinear import QNONLINEAR, QMatMul

__all__ = ["ACTS", "QConv2d", "QLinear", "QAdd", "Add", "Cat", "QCat", "MatMul", "QMatMul",
           "InputSmooth",
           "QAvgPool2d", "QAdaptiveAvgPool2d", "QLAYERS", "LEAVES", "quantizers", "set_observing",
           "frozen"]

log = logging.getLogger(__name__)

ACTS = (None, "relu", "relu6")


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
            raise ModelError(f"conv {conv}: only numeric zero padding is supported")
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


class MatMul(nn.Module):
    """Float ``alpha * (a @ b)`` as a module (what :func:`quantize_model` puts in place of ``a @ b``,
    ``torch.matmul``, ``torch.bmm``; a constant factor next to it, e.g. the attention scale
    ``* d ** -0.5``, is folded into ``alpha``). Its fake-quant form is
    :class:`~t2c_sim.quant.nonlinear.QMatMul`."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        y = torch.matmul(a, b)
        return y if self.alpha == 1.0 else self.alpha * y

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}"


class Cat(nn.Module):
    """Float ``torch.cat(xs, dim)`` as a module (what :func:`quantize_model` puts in place of a
    ``torch.cat`` call, so that it can get quantizers)."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = int(dim)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class QCat(nn.Module):
    """Fake-quant concat: ``y = oq(act(cat([q_i(x_i)], dim)))``.

    ``q_i`` is input ``i``'s quantizer (its producer's format); the output format comes from the
    consumers of ``y`` (or ``oq``), so every input is requantized to it with one rounding, as the
    integer concat does (docs/numerics.md section 3).
    """

    def __init__(self, qs: list[nn.Module], dim: int = 1, oq: nn.Module | None = None,
                 act: str | None = None) -> None:
        super().__init__()
        if act not in ACTS:
            raise ConfigError(f"unknown fused activation {act!r}", key="act")
        if not qs or any(q is None for q in qs):
            raise ConfigError("a concat needs an input quantizer per input (quant.act; a constant "
                              "input such as a class token passes nn.Identity())", key="act")
        self.qs = nn.ModuleList(qs)
        self.dim, self.oq, self.act = int(dim), oq, act

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if len(xs) != len(self.qs):
            raise ModelError(f"concat built for {len(self.qs)} inputs got {len(xs)}")
        y = torch.cat([q(x) for q, x in zip(self.qs, xs)], self.dim)
        return _q(self.oq, _apply_act(y, self.act))


class QAvgPool2d(nn.AvgPool2d):
    """Fake-quant average pool ``y = oq(avg_pool2d(aq(x)))`` (count_include_pad, no ceil_mode)."""

    def __init__(self, *args: Any, aq: nn.Module | None = None, oq: nn.Module | None = None,
                 **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.aq, self.oq = aq, oq

    @classmethod
    def from_float(cls, pool: nn.AvgPool2d, **q: Any) -> QAvgPool2d:
        if pool.ceil_mode or not pool.count_include_pad or pool.divisor_override is not None:
            raise ModelError(f"avg pool {pool}: only ceil_mode=False, count_include_pad=True and "
                            "no divisor_override are supported")
        return cls(pool.kernel_size, pool.stride, pool.padding, **q)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _q(self.oq, super().forward(_q(self.aq, x)))


class QAdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """Fake-quant adaptive average pool: ``y = oq(adaptive_avg_pool2d(aq(x)))``.

    Output size 1 is the global average pool; another size is an integer op only where it
    divides the input size (equal windows; the fuse step checks that on the real shapes).
    """

    def __init__(self, output_size: Any = 1, aq: nn.Module | None = None,
                 oq: nn.Module | None = None) -> None:
        super().__init__(output_size)
        self.aq, self.oq = aq, oq

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _q(self.oq, super().forward(_q(self.aq, x)))


class InputSmooth(nn.Module):
    """``y = x / s`` over the last dim (SmoothQuant factors of the network's first linear).

    Only valid directly on the network input: the fuse step moves it to the host-side input
    quantization (``x_q = quantize(x / s)``, :func:`t2c_sim.fuse.quantize_input`); anywhere else
    it is a :class:`ModelError`.
    """

    def __init__(self, s: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("s", s.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.s


QLAYERS = (QConv2d, QLinear, QAdd, QCat, QAvgPool2d, QAdaptiveAvgPool2d) + QNONLINEAR
#: Modules torch.fx treats as leaves (never traced into).
LEAVES = QLAYERS + (Add, Cat, MatMul, InputSmooth)


# ---- quantizer state -------------------------------------------------------------------------
def quantizers(model: nn.Module) -> dict[str, nn.Module]:
    """Every quantizer module in ``model`` (anything with ``quantize`` and a ``scale``), by name."""
    return {n: m for n, m in model.named_modules()
            if callable(getattr(m, "quantize", None)) and hasattr(m, "scale")}


def set_observing(model: nn.Module, on: bool) -> None:
    """Turn calibration (range observation) on or off in every quantizer."""
    for q in quantizers(model).values():
        q.observing = on


class frozen:  # noqa: N801 - used like a function: ``with frozen(model): ...``
    """Context: eval mode, observers off, no grad; restores the previous state on exit.

    How the fuse step and the cross-check run a calibrated fake-quant model (frozen ranges).
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> nn.Module:
        self.training = self.model.training
        self.qs = quantizers(self.model)
        self.obs = {n: getattr(q, "observing", False) for n, q in self.qs.items()}
        self.model.eval()
        for q in self.qs.values():
            q.observing = False
        self.grad = torch.is_grad_enabled()
        torch.set_grad_enabled(False)
        return self.model

    def __exit__(self, *exc: Any) -> None:
        torch.set_grad_enabled(self.grad)
        for n, q in self.qs.items():
            q.observing = self.obs[n]
        self.model.train(self.training)
