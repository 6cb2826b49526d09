"""QDrop (Wei et al., ICLR 2022): LSQ fake-quant with random per-element quantization dropping.

Training: ``x_out = where(u < p, x, lsq(x))`` with ``u ~ U[0, 1)`` drawn per element on every
forward, i.e. each element keeps its float value with probability ``p`` and is fake-quantized
otherwise. Evaluation (``model.eval()``): plain ``lsq(x)`` (no drop). ``p = 0`` is exactly
:class:`~t2c_sim.quant.lsq.LSQQuantizer`; ``p = 1`` is the identity in training. The integer
path (:meth:`quantize`) never drops. Tensor- and token-wise variants as LSQ.
"""

from __future__ import annotations

import torch
from torch import Tensor

from t2c_sim.errors import QuantError
from t2c_sim.quant.lsq import LSQQuantizer

__all__ = ["QDropQuantizer", "QDropTokenQuantizer"]


class QDropQuantizer(LSQQuantizer):
    """LSQ with drop probability ``p``: training ``x_out = where(U[0,1) < p, x, lsq(x))``.

    Args:
        p: drop probability in ``[0, 1]`` (QDrop's default 0.5).
        generator: optional ``torch.Generator`` for the drop pattern (reproducible tests);
            otherwise the global RNG is used.
        Other arguments: as :class:`~t2c_sim.quant.lsq.LSQQuantizer`.
    """

    def __init__(self, nbit: int = 8, unsigned: bool = False, granularity: str = "tensor",
                 ch_axis: int = 0, symmetric: bool | None = None, observer=None,
                 p: float = 0.5, grid: int = 100, grid_step: float = 0.01,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(nbit, unsigned, granularity, ch_axis, symmetric, observer, grid,
                         grid_step)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
            raise QuantError(f"{self.label}: drop probability p must be in [0, 1], got {p!r}")
        self.p = float(p)
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        y = super().forward(x)
        if not self.training or self.p == 0.0:
            return y
        u = torch.rand(x.shape, generator=self.generator, device=x.device)
        return torch.where(u < self.p, x, y)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", p={self.p}"


class QDropTokenQuantizer(QDropQuantizer):
    """Token-wise QDrop (token-wise LSQ step ``alpha * s_minmax[b, t]`` plus random drop)."""

    def __init__(self, nbit: int = 8, unsigned: bool = False, granularity: str = "token",
                 ch_axis: int = 0, symmetric: bool | None = None, observer=None,
                 p: float = 0.5, grid: int = 100, grid_step: float = 0.01,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(nbit, unsigned, granularity, ch_axis, symmetric, observer, p, grid,
                         grid_step, generator)
