"""Importers of models quantized elsewhere, placed in the flow at the fuse level.

- :func:`import_onnx`: an ONNX model quantized to QDQ or QOperator form (ONNX Runtime's
  ``quantize_static``) -> integer layer records plus the host-side input quantization
  (:mod:`t2c_sim.importers.onnx_import`; the ``onnx`` package is imported lazily, it is the
  optional extra ``onnx``).
"""

from t2c_sim.importers.onnx_import import (
    InputQuant,
    OnnxImport,
    import_onnx,
    load_input,
    parse_import_rounding,
)
from t2c_sim.importers.onnx_walk import SUPPORTED

__all__ = ["InputQuant", "OnnxImport", "import_onnx", "load_input", "parse_import_rounding",
           "SUPPORTED"]
