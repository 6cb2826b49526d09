"""Cycle model of axi_mac (rtl/axi_mac.v) under t2c-sim's axi profile: exact, closed form.

Derived from the RTL's schedule (its header) and the profile's documented timing (docs/dut.md):
every register write takes 3 cycles (issue, AW/W handshake, B handshake); a read of ``b`` beats
issued at edge ``a`` ends at ``a + L + 1 + b`` (``L`` the memory's read latency); a single
write issued at ``a`` ends at ``a + Lw + 3``; the requantizer adds 4 edges from the last w beat
to the write issue. Per row: the x burst (``L + 1 + nxw``), then per channel three single
reads, the w burst, the requantizer and the write: ``4L + nxw + Lw + 14``. The job starts one
edge after the CTRL write and the interrupt is sampled one edge after the last B handshake:

    cycles = 3 * register_writes + P * (L + 1 + nxw + C_out * (4L + nxw + Lw + 14)),
    nxw = ceil(K / 4)

Standard library only (the vendor's model).
"""

from __future__ import annotations


def cycles(layer: dict, params: dict) -> int:
    """Cycles from the first register write to the interrupt of one GEMM."""
    p, k, c = int(layer["rows"]), int(layer["K"]), int(layer["C_out"])
    lat, wlat = int(params["mem_read_latency"]), int(params["mem_write_latency"])
    nxw = -(-k // 4)
    per_row = lat + 1 + nxw + c * (4 * lat + nxw + wlat + 14)
    return 3 * int(params["register_writes"]) + p * per_row
