"""The t2c-sim adapter of sws_top (stream profile): one GEMM <-> one stream frame.

The framework hands over one GEMM of a layer at a time (``op``: ``x[P, K]``, dense
``w[C_out, K]``, per-channel ``bias/m0/sh``, ``z_y, lo, hi, mode, a_signed, y_signed``); this
adapter packs it with the vendor's own packer (``sws_stream.py``) and reads the output beats
back, checking the output framing (``tlast`` on the last row of every tile, README.md
"Output stream"). Everything else (records, golden model, comparison, cycle check, reports) is
t2c-sim's.
"""

from __future__ import annotations

import numpy as np
from sws_stream import pack_layer, tiles, unpack_output

from t2c_sim.errors import MismatchError


class SwsAdapter:
    """frame / out_beats / unpack of the stream profile for sws_top."""

    def __init__(self, dut) -> None:
        self.params = dict(dut.params)

    def frame(self, op) -> np.ndarray:
        return pack_layer(op.x, op.w, op.bias, op.m0, op.sh, z_y=op.z_y, lo=op.lo, hi=op.hi,
                          mode=op.mode.value, a_signed=op.a_signed, params=self.params)

    def out_beats(self, op) -> int:
        return op.rows * -(-op.cols // int(self.params["COLS"]))

    def unpack(self, op, data: np.ndarray, tlast: np.ndarray) -> np.ndarray:
        want = np.zeros(len(tlast), dtype=bool)
        b = 0
        for _p0, pr, _c0, _cc in tiles(op.rows, op.cols, self.params):
            b += pr
            want[b - 1] = True
        if not np.array_equal(tlast, want):
            bad = int(np.argwhere(tlast != want)[0][0])
            raise MismatchError(f"layer {op.layer}: output tlast framing differs at beat {bad} "
                                f"(expected {bool(want[bad])}): tlast marks a tile's last row")
        return unpack_output(data.tobytes(), op.rows, op.cols, self.params, op.y_signed)
