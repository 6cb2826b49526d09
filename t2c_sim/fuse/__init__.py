"""Fuse a calibrated fake-quant model into integer layer records (SPEC sections 2-5).

The float -> integer boundary lives here and only here. :func:`fuse` walks the model's
``torch.fx`` graph (:mod:`t2c_sim.fuse.graph`), MAC layers become records in
:mod:`t2c_sim.fuse.mac`, and tensor formats are read off the quantizers by
:mod:`t2c_sim.fuse.formats`.
"""

from __future__ import annotations

from t2c_sim.config import FuseOptions
from t2c_sim.fuse.graph import fuse, input_quantizer, quantize_input, run_fake_quant

__all__ = ["FuseOptions", "fuse", "input_quantizer", "quantize_input", "run_fake_quant"]
