"""Float references and fake-quant modules of the transformer ops (docs/numerics.md 7-9).

Float references (any float dtype; float64 for error measurements): :func:`softmax_ref`,
:func:`layernorm_ref`, :func:`gelu_ref`, :func:`matmul_ref`.

Fake-quant modules. Their forward value IS the integer definition, dequantized: the input is
fake-quantized by ``aq`` (its integers recovered exactly), the integer constants come from the
fuse-time functions of :mod:`t2c_sim.quant.transformer_params` on the current scales, the
integers go through the kernels of :mod:`t2c_sim.quant.intops` (the same ones the PyTorch
integer path runs), and the result is ``s_y * (y_q - z_y)``. The gradient is the float op's
(straight-through: ``y_f + (y - y_f).detach()`` with ``y_f`` the float op on the fake-quantized
input). So the fake-quant vs integer cross-check of these ops measures only upstream
quantization, never a second definition.

- :class:`QMatMul` ``y = oq(alpha * aq(a) @ bq(b)[^T])``; integer: exact
  ``sum (a - z_a)(b - z_b)``, requantized with ``(M0, sh)`` of ``alpha s_a s_b / s_y``;
- :class:`QSoftmax`: fixed output format (unsigned ``y_bits``, ``s_y = 2^-y_bits``, ``z = 0``,
  like PyTorch's quantized softmax); :class:`QLayerNorm`; :class:`QGELU`.

While an output quantizer is still observing (calibration), the modules return
``oq(float op)`` so that the observer sees the float output; afterwards the integer definition.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from t2c_sim.config import RoundMode, qrange
from t2c_sim.errors import ModelError
from t2c_sim.quant.base import Quantizer
from t2c_sim.quant.intops import layernorm_int_t, lookup_t, requant_t, softmax_int_t
from t2c_sim.quant.observers import QuantError
from t2c_sim.quant.transformer_params import (
    SOFTMAX_FRAC_BITS,
    gelu_params,
    layernorm_params,
    quantize_multiplier_vec,
    softmax_params,
)

__all__ = ["softmax_ref", "layernorm_ref", "gelu_ref", "matmul_ref", "int_of", "FixedQuantizer",
           "QMatMul", "QSoftmax", "QLayerNorm", "QGELU", "QNONLINEAR"]

I64 = torch.int64


# ---- float references --------------------------------------------------------------------------
def softmax_ref(x: Tensor) -> Tensor:
    """``exp(x_i) / sum_j exp(x_j)`` over the last axis."""
    return torch.softmax(x, dim=-1)


def layernorm_ref(x: Tensor, gamma: Tensor, beta: Tensor, eps: float) -> Tensor:
    """``gamma * (x - mean) / sqrt(var + eps) + beta`` over the last axis (biased variance)."""
    return F.layer_norm(x, (x.shape[-1],), gamma.to(x.dtype), beta.to(x.dtype), eps)


def gelu_ref(x: Tensor, approximate: str = "none") -> Tensor:
    """``x * Phi(x)`` (``approximate="tanh"``: torch's tanh form)."""
    return F.gelu(x, approximate=approximate)


def matmul_ref(a: Tensor, b: Tensor, alpha: float = 1.0, trans_b: bool = False) -> Tensor:
    """``alpha * a @ b`` (``b^T`` when ``trans_b``)."""
    return alpha * (a @ (b.transpose(-1, -2) if trans_b else b))


# ---- helpers -------------------------------------------------------------------------------------
def _fmt(q: nn.Module) -> tuple[int, bool]:
    return int(q.nbit), not bool(q.unsigned)


def _per_tensor(q: nn.Module, what: str) -> tuple[float, int]:
    """``(scale, zero_point)`` of a per-tensor quantizer as Python numbers."""
    s, z = q.scale.detach(), q.zero_point.detach()
    if s.numel() != 1 or z.numel() != 1:
        raise QuantError(f"{getattr(q, 'label', what)}: {what} needs a per-tensor scale (the "
                         f"integer op's constants depend on it), got {tuple(s.shape)}")
    return float(s.reshape(())), int(z.reshape(()))


def int_of(q: nn.Module, xh: Tensor) -> Tensor:
    """The integers behind ``xh = q(x)``: ``round(xh / s) + z`` (float64, exact for <= 16 bits)."""
    s = q.scale.detach().to(torch.float64)
    z = q.zero_point.detach()
    return (torch.round(xh.detach().to(torch.float64) / s) + z).to(I64)


def _observing(*qs: nn.Module | None) -> bool:
    return any(q is not None and (bool(getattr(q, "observing", False)) or not bool(q.calibrated))
               for q in qs)


def _ste(y_f: Tensor, y: Tensor) -> Tensor:
    """Forward value ``y`` (the integer definition), gradient of ``y_f`` (the float op)."""
    return y_f + (y.to(y_f.dtype) - y_f).detach()


# ---- modules -------------------------------------------------------------------------------------
class FixedQuantizer(Quantizer):
    """A quantizer whose format is fixed by definition, never observed: softmax's output
    ``(s = 2^-bits, z = 0, unsigned)``. Calibration leaves it unchanged.

    >>> q = FixedQuantizer(2.0 ** -8, 0, nbit=8, unsigned=True)
    >>> q.quantize(torch.tensor([0.5, 1.0])).tolist()
    [128, 255]
    """

    def __init__(self, scale: float, zero_point: int = 0, nbit: int = 8,
                 unsigned: bool = True) -> None:
        super().__init__(nbit=nbit, unsigned=unsigned, symmetric=False)
        self.set_qparams(torch.tensor(float(scale)), torch.tensor(int(zero_point)))

    def observe(self, x: Tensor) -> None:
        """Nothing to observe: the format is fixed."""

    def reset(self) -> None:
        """Nothing to forget: the format is fixed."""


class QMatMul(nn.Module):
    """Fake-quant activation x activation matmul ``y = oq(alpha * aq(a) @ bq(b))`` (``b^T`` if
    ``trans_b``).

    Integer forward (``oq`` calibrated): ``acc = sum_k (a_q - z_a)(b_q - z_b)`` exactly, then
    ``y_q = clamp(z_y + round_shift(acc * M0, sh), qmin, qmax)`` with ``(M0, sh)`` from
    :func:`~t2c_sim.quant.transformer_params.matmul_params` (``alpha s_a s_b / s_y``; token-wise
    ``aq`` gives per-row, token-wise ``bq`` with ``trans_b`` per-column multipliers). No wrap:
    the fuse step refuses accumulators that can overflow.
    """

    def __init__(self, aq: nn.Module | None = None, bq: nn.Module | None = None,
                 oq: nn.Module | None = None, alpha: float = 1.0, trans_b: bool = False,
                 mode: RoundMode | str = RoundMode.HALF_EVEN) -> None:
        super().__init__()
        self.aq, self.bq, self.oq = aq, bq, oq
        self.alpha, self.trans_b, self.mode = float(alpha), bool(trans_b), RoundMode.parse(mode)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        ah = a if self.aq is None else self.aq(a)
        bh = b if self.bq is None else self.bq(b)
        y_f = matmul_ref(ah, bh, self.alpha, self.trans_b)
        if self.oq is None:
            return y_f
        if self.aq is None or self.bq is None or _observing(self.oq, self.aq, self.bq):
            return self.oq(y_f)
        return _ste(y_f, self._integer(ah, bh, y_f))

    def _integer(self, ah: Tensor, bh: Tensor, y_f: Tensor) -> Tensor:
        da = int_of(self.aq, ah) - self.aq.zero_point.detach()
        db = int_of(self.bq, bh) - self.bq.zero_point.detach()
        sa = self.aq.scale.detach().to(torch.float64)
        sb = self.bq.scale.detach().to(torch.float64)
        if self.trans_b:
            db, sb = db.transpose(-1, -2), sb.transpose(-1, -2) if sb.dim() else sb
        elif sb.numel() > 1:
            raise QuantError(f"{getattr(self.bq, 'label', 'bq')}: per-token scales of b run along "
                             "the reduction axis of a @ b; only trans_b (Q @ K^T) allows them")
        k = da.shape[-1]
        if k * int(da.abs().max()) * int(db.abs().max()) < 1 << 53:
            acc = torch.matmul(da.to(torch.float64), db.to(torch.float64)).to(I64)  # exact
        else:
            acc = torch.matmul(da.cpu(), db.cpu()).to(da.device)
        s_y, z_y = _per_tensor(self.oq, "matmul output")
        # m = alpha * s_a * s_b / s_y in float64, left to right, exactly as matmul_params
        m = (self.alpha * sa * sb / s_y).cpu().numpy()
        m0, sh = quantize_multiplier_vec(m.reshape(-1) if m.ndim else m.reshape(1))
        m0, sh = m0.reshape(m.shape), sh.reshape(m.shape)
        qlo, qhi = qrange(*_fmt(self.oq))
        y_q = requant_t(acc, torch.as_tensor(m0, device=acc.device),
                        torch.as_tensor(sh, device=acc.device), z_y, qlo, qhi, self.mode)
        return s_y * (y_q - z_y).to(y_f.dtype)


class QSoftmax(nn.Module):
    """Fake-quant integer softmax over the last axis: input ``aq`` (per tensor), output unsigned
    ``y_bits`` with ``s_y = y_scale`` (default ``2^-y_bits``) and ``z_y = 0``.

    Forward: ``s_y * softmax_int(x_q)`` with the table and multiplier of
    :func:`~t2c_sim.quant.transformer_params.softmax_params` (``frac_bits``), rounding ``mode``.
    Without ``aq`` it is the float softmax.
    """

    def __init__(self, aq: nn.Module | None = None, y_bits: int = 8, y_scale: float | None = None,
                 frac_bits: int = SOFTMAX_FRAC_BITS, mode: RoundMode | str = RoundMode.HALF_EVEN,
                 dim: int = -1) -> None:
        super().__init__()
        self.aq = aq
        self.y_bits, self.frac_bits, self.mode = int(y_bits), int(frac_bits), RoundMode.parse(mode)
        self.y_scale = float(2.0 ** -self.y_bits if y_scale is None else y_scale)
        self.dim = int(dim)
        #: where the user wrote it (``file``, ``line``, ``node``), for errors
        self.where: dict[str, Any] = {}
        #: the output format (fixed: unsigned y_bits, s_y, z = 0); its consumers are tied to it
        self.oq = FixedQuantizer(self.y_scale, 0, self.y_bits, unsigned=True)
        self._cache: tuple[Any, dict[str, Any]] | None = None

    def constants(self, s_x: float, a_bits: int) -> dict[str, Any]:
        """The record constants for input scale ``s_x`` (cached while the scale stays)."""
        key = (s_x, a_bits)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, softmax_params(s_x, self.y_scale, a_bits=a_bits,
                                               frac_bits=self.frac_bits))
        return self._cache[1]

    def forward(self, x: Tensor) -> Tensor:
        if self.dim not in (-1, x.dim() - 1):
            raise ModelError(f"softmax over dim {self.dim} of a {x.dim()}-D tensor; the integer "
                             f"softmax runs over the last axis (dim=-1)", **self.where)
        if self.aq is None:
            return softmax_ref(x)
        xh = self.aq(x)
        y_f = softmax_ref(xh)
        s_x, _ = _per_tensor(self.aq, "softmax input")
        c = self.constants(s_x, _fmt(self.aq)[0])
        table = torch.as_tensor(c["table"], device=x.device)
        y_q = softmax_int_t(int_of(self.aq, xh), table, self.frac_bits, int(c["M0"][0]),
                            int(c["sh"][0]), 0, 0, (1 << self.y_bits) - 1, self.mode)
        return _ste(y_f, self.y_scale * y_q.to(y_f.dtype))


class QLayerNorm(nn.Module):
    """Fake-quant integer LayerNorm over the last ``c`` channels: ``aq`` and ``oq`` per tensor,
    learnable ``weight`` (gamma) and ``bias`` (beta) as in ``nn.LayerNorm``.

    Forward (``oq`` calibrated): ``s_y (layernorm_int(x_q) - z_y)`` with the constants of
    :func:`~t2c_sim.quant.transformer_params.layernorm_params` on the current gamma, beta and
    scales; gradient of the float LayerNorm.
    """

    def __init__(self, c: int, eps: float = 1e-5, aq: nn.Module | None = None,
                 oq: nn.Module | None = None, mode: RoundMode | str = RoundMode.HALF_EVEN) -> None:
        super().__init__()
        self.c, self.eps, self.aq, self.oq = int(c), float(eps), aq, oq
        self.mode = RoundMode.parse(mode)
        self.weight = nn.Parameter(torch.ones(self.c))
        self.bias = nn.Parameter(torch.zeros(self.c))

    @classmethod
    def from_float(cls, ln: nn.LayerNorm, **q: Any) -> QLayerNorm:
        """Copy an ``nn.LayerNorm`` over one trailing axis (with affine parameters)."""
        if len(ln.normalized_shape) != 1 or not ln.elementwise_affine:
            raise QuantError(f"layer norm {ln}: only one normalized axis with affine parameters")
        new = cls(ln.normalized_shape[0], ln.eps, **q)
        new.weight.data.copy_(ln.weight.data)
        if ln.bias is not None:
            new.bias.data.copy_(ln.bias.data)
        return new

    def constants(self) -> dict[str, Any]:
        """The record constants for the current gamma, beta and scales."""
        s_x, _ = _per_tensor(self.aq, "layernorm input")
        s_y, _ = _per_tensor(self.oq, "layernorm output")
        a_bits, a_signed = _fmt(self.aq)
        return layernorm_params(s_x, self.weight.detach().double().cpu().numpy(),
                                self.bias.detach().double().cpu().numpy(), self.eps, s_y,
                                a_bits=a_bits, a_signed=a_signed)

    def forward(self, x: Tensor) -> Tensor:
        xh = x if self.aq is None else self.aq(x)
        y_f = layernorm_ref(xh, self.weight, self.bias, self.eps)
        if self.oq is None or self.aq is None or _observing(self.oq, self.aq):
            return y_f if self.oq is None else self.oq(y_f)
        c = self.constants()
        p = c["params"]
        _, z_y = _per_tensor(self.oq, "layernorm output")
        dev = x.device
        y_q = layernorm_int_t(int_of(self.aq, xh), torch.as_tensor(c["gamma_q"], device=dev),
                              torch.as_tensor(c["beta_q"], device=dev), p["eps_q"],
                              p["sqrt_shift"], p["g_shift"], z_y, *qrange(*_fmt(self.oq)), self.mode)
        return _ste(y_f, float(self.oq.scale) * (y_q - z_y).to(y_f.dtype))


class QGELU(nn.Module):
    """Fake-quant GELU by table: ``y = s_y (table[x_q - qmin_x] - z_y)`` with the table of
    :func:`~t2c_sim.quant.transformer_params.gelu_params` (``aq``, ``oq`` per tensor)."""

    def __init__(self, aq: nn.Module | None = None, oq: nn.Module | None = None,
                 approximate: str = "none") -> None:
        super().__init__()
        self.aq, self.oq, self.approximate = aq, oq, approximate
        self._cache: tuple[Any, np.ndarray] | None = None

    def table(self) -> np.ndarray:
        """The record's table for the current scales (cached while they stay)."""
        s_x, z_x = _per_tensor(self.aq, "gelu input")
        s_y, z_y = _per_tensor(self.oq, "gelu output")
        a_bits, a_signed = _fmt(self.aq)
        y_bits, y_signed = _fmt(self.oq)
        key = (s_x, z_x, s_y, z_y, a_bits, a_signed, y_bits, y_signed)
        if self._cache is None or self._cache[0] != key:
            t = gelu_params(s_x, z_x, s_y, z_y, a_bits=a_bits, a_signed=a_signed, y_bits=y_bits,
                            y_signed=y_signed, approximate=self.approximate)["table"]
            self._cache = (key, t)
        return self._cache[1]

    def forward(self, x: Tensor) -> Tensor:
        xh = x if self.aq is None else self.aq(x)
        y_f = gelu_ref(xh, self.approximate)
        if self.oq is None or self.aq is None or _observing(self.oq, self.aq):
            return y_f if self.oq is None else self.oq(y_f)
        table = torch.as_tensor(self.table(), device=x.device)
        y_q = lookup_t(int_of(self.aq, xh), table, qrange(*_fmt(self.aq))[0])
        s_y, z_y = _per_tensor(self.oq, "gelu output")
        return _ste(y_f, s_y * (y_q - z_y).to(y_f.dtype))


#: The fake-quant modules of the transformer ops (producers of integer tensors in a graph).
QNONLINEAR = (QMatMul, QSoftmax, QLayerNorm, QGELU)
