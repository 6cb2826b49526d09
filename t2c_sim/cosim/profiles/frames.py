"""Stream frames a DUT file declares (no adapter): pack a GEMM into input beats, read outputs.

The declaration (``interface.input`` / ``interface.output`` of a stream DUT file,
:mod:`t2c_sim.cosim.ifspec`) lists the items of one input frame, in order:

* ``words: [e0, e1, ...]``: one beat per expression (over the GEMM's fields and the Verilog
  parameters), its value in the low ``word_bits`` bits (two's complement), the rest 0;
* ``channels: [bias, m0, sh]``: for each output channel in turn, one beat per listed parameter
  (its value in the low ``word_bits`` bits);
* ``matrix: x`` (``x[P, K]``) or ``matrix: w`` (``w[C_out, K]``): each row in turn, split into
  beats of ``data_bits // lane_bits`` lanes (lane ``i`` = bits ``[i*lane_bits +: lane_bits]``,
  element ``j`` of the row in lane ``j mod lanes`` of beat ``j div lanes``; unused lanes 0).

The output is ``y[P, C_out]``, each row split into beats of ``out.data_bits // lane_bits``
lanes the same way, read signed or unsigned as the layer's output is. ``tlast`` is on the last
beat of the input frame; the output's ``tlast`` is not checked.

Example: ``words: [rows, k]`` then ``matrix: x`` with 8-bit lanes on a 32-bit stream, for a
GEMM of 2 rows and ``K = 5``: beats ``[2], [5], [x00..x03], [x04], [x10..x13], [x14]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from t2c_sim.cosim.gemm import GemmOp
from t2c_sim.errors import ConfigError
from t2c_sim.export.hexfile import pack_beats, unpack_beats

__all__ = ["DeclaredStream"]


class DeclaredStream:
    """The packer of a DUT file's declared frames (the stream profile's default adapter)."""

    def __init__(self, dut: Any, in_bits: int, out_bits: int) -> None:
        self.dut = dut
        self.cfg = dut.spec.interface
        self.in_bits, self.out_bits = in_bits, out_bits
        self.in_bytes, self.out_bytes = -(-in_bits // 8), -(-out_bits // 8)
        params = dict(dut.params)
        self.out_lane_bits = self.cfg.out_lane_bits.eval(params)
        for what, lane, bits in (("input.lane_bits", self.cfg.lane_bits, in_bits),
                                 ("output.lane_bits", self.out_lane_bits, out_bits),
                                 ("input.word_bits", self.cfg.word_bits, in_bits)):
            if not 1 <= lane <= min(bits, 63):
                raise ConfigError(f"{lane} bits do not fit a {bits}-bit beat",
                                  file=str(dut.spec.file), key=f"interface.{what}")

    def _matrix(self, a: np.ndarray) -> np.ndarray:
        lanes = self.in_bits // self.cfg.lane_bits
        r, k = a.shape
        bpr = -(-k // lanes)
        f = np.zeros((r, bpr * lanes), dtype=np.int64)
        f[:, :k] = a
        return pack_beats(f.reshape(r * bpr, lanes), [self.cfg.lane_bits] * lanes, self.in_bytes)

    def _words(self, vals: list[int]) -> np.ndarray:
        return pack_beats(np.asarray(vals, dtype=np.int64)[:, None], [self.cfg.word_bits],
                          self.in_bytes)

    def frame(self, op: GemmOp) -> np.ndarray:
        """The input frame of ``op`` as ``uint8[beats, in_bytes]``."""
        ns = {**self.dut.params, **op.fields(), "layer": op.record or {}}
        parts = []
        for it in self.cfg.items:
            if it.kind == "words":
                parts.append(self._words([e.eval(ns) for e in it.words]))
            elif it.kind == "channels":
                src = {"bias": op.bias, "m0": op.m0, "sh": op.sh}
                vals = np.stack([np.asarray(src[f], dtype=np.int64) for f in it.fields], axis=1)
                parts.append(self._words(vals.reshape(-1).tolist()))
            else:
                parts.append(self._matrix(op.x if it.operand == "x" else op.w))
        return np.concatenate(parts) if parts else np.zeros((0, self.in_bytes), np.uint8)

    def out_beats(self, op: GemmOp) -> int:
        lanes = self.out_bits // self.out_lane_bits
        return op.rows * -(-op.cols // lanes)

    def unpack(self, op: GemmOp, data: np.ndarray, tlast: np.ndarray) -> np.ndarray:
        """``y[rows, cols]`` from the op's output beats ``uint8[beats, out_bytes]``."""
        lanes = self.out_bits // self.out_lane_bits
        bpr = -(-op.cols // lanes)
        f = unpack_beats(data, [self.out_lane_bits] * lanes, op.y_signed)
        return f.reshape(op.rows, bpr * lanes)[:, :op.cols]
