"""PyTorch fake-quantizers, range observers and quantizer presets.

Every quantizer is a :class:`~t2c_sim.quant.base.Quantizer`: ``forward`` fake-quantizes with the
method's gradient, ``quantize`` returns the int64 integers the fuse step uses, ``dequantize``
maps them back (``scale * (q - zero_point)``).
"""

from __future__ import annotations

from t2c_sim.quant.base import QuantError, Quantizer, fake_quantize, round_ste
from t2c_sim.quant.minmax import MinMaxChannelQuantizer, MinMaxQuantizer, MinMaxTokenQuantizer
from t2c_sim.quant.observers import MinMaxObserver, qparams_from_range

__all__ = [
    "Quantizer", "QuantError", "fake_quantize", "round_ste", "MinMaxQuantizer",
    "MinMaxChannelQuantizer", "MinMaxTokenQuantizer", "MinMaxObserver", "qparams_from_range",
]
