"""The bit-exact NumPy golden model (SPEC sections 2 and 3). Never imports torch.

- :func:`run_layer` executes one :class:`~t2c_sim.record.LayerRecord`;
- :func:`run_network` executes a list of records and keeps every intermediate
  (:class:`NetworkTrace`); :func:`attach_results` copies the results into the records;
- :func:`im2col` and :func:`int_matmul` are the exact building blocks (the RTL host side
  uses ``im2col`` to lay out conv activations);
- 8-bit linear and conv layers run on a compiled AVX-512 VNNI kernel by default
  (:mod:`t2c_sim.golden.int8mac`, built on first use by :mod:`t2c_sim.golden.native`), with
  the NumPy path as the exact fallback; ``native.status()`` says which one this machine uses;
- :mod:`t2c_sim.workloads.gen` builds random valid records and networks for tests.
"""

from __future__ import annotations

from t2c_sim.golden.gemm import int_matmul
from t2c_sim.golden.im2col import im2col
from t2c_sim.golden.layers import LayerOutput, run_layer
from t2c_sim.golden.network import NetworkTrace, attach_results, run_network

__all__ = ["run_layer", "run_network", "attach_results", "im2col", "int_matmul", "LayerOutput",
           "NetworkTrace"]
