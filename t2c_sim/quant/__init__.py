"""PyTorch fake-quantizers, range observers and quantizer presets.

Every quantizer is a :class:`~t2c_sim.quant.base.Quantizer`: ``forward`` fake-quantizes with the
method's gradient, ``quantize`` returns the int64 integers the fuse step uses, ``dequantize``
maps them back (``scale * (q - zero_point)``). Presets by name: :func:`make_quantizer`.
"""

from __future__ import annotations

from t2c_sim.errors import QuantError
from t2c_sim.quant.adaround import AdaRoundQuantizer, LinearTempDecay
from t2c_sim.quant.base import Quantizer, fake_quantize, round_ste
from t2c_sim.quant.lsq import LSQQuantizer, LSQTokenQuantizer
from t2c_sim.quant.minmax import MinMaxChannelQuantizer, MinMaxQuantizer, MinMaxTokenQuantizer
from t2c_sim.quant.observers import MinMaxObserver, qparams_from_range
from t2c_sim.quant.pot import PowerOfTwoQuantizer
from t2c_sim.quant.qconfig import QUANTIZERS, make_quantizer
from t2c_sim.quant.qdrop import QDropQuantizer, QDropTokenQuantizer
from t2c_sim.quant.smoothquant import SmoothQuantizer, smooth_linear, smooth_scales

__all__ = [
    "Quantizer", "QuantError", "fake_quantize", "round_ste", "MinMaxObserver",
    "qparams_from_range", "MinMaxQuantizer", "MinMaxChannelQuantizer", "MinMaxTokenQuantizer",
    "LSQQuantizer", "LSQTokenQuantizer", "QDropQuantizer", "QDropTokenQuantizer",
    "AdaRoundQuantizer", "LinearTempDecay", "SmoothQuantizer", "smooth_scales", "smooth_linear",
    "PowerOfTwoQuantizer", "QUANTIZERS", "make_quantizer",
]
