"""Exact cycle model of the sws_top systolic-array accelerator (no back-pressure).

Plug-in signature: ``cycles(layer, params) -> int``. This file is self-contained (standard library
only): it is the accelerator vendor's model, not the verification framework's.

*Cycles of a layer* = the number of rising clock edges from the edge that accepts the layer's
first input beat (descriptor word 0) to the edge that accepts its last output beat, both
included (so a layer whose first input and last output were accepted on the same edge would
take 1 cycle). The RTL counts the same quantity in ``cycles_o``.

*No back-pressure* means the input stream offers a beat on every cycle from its first beat on
(``s_axis_tvalid`` stays high while the layer's beats last) and the output stream is always
ready. The only stalls are then the accelerator's own (README.md, "Timing"):

* the first weight beat of a K block waits until ``COLS`` cycles after the last activation beat
  of the block two blocks earlier (the one that used the same weight bank) was accepted;
* the first parameter beat of a tile waits until the cycle after the drain issued the last row
  of the tile two tiles earlier (the same accumulator bank);
* a tile's rows drain one per cycle, starting the cycle after its last row was accumulated
  (``ROWS + COLS`` edges after its last activation beat) and after the previous tile's drain;
  a drained row is accepted on the output ``RQ_LATENCY + 1 = 4`` edges after it was issued.

The model replays the loop nest (row tiles, channel tiles, K blocks) once, so it costs
O(row tiles x channel tiles x K blocks) Python steps.
"""

from __future__ import annotations

__all__ = ["cycles", "schedule", "DEFAULTS", "DESC_BEATS", "RQ_LATENCY"]

# Verilog parameter defaults of sws_top (a parameter missing from ``params`` takes these).
DEFAULTS = {"ROWS": 4, "COLS": 4, "LANES": 4, "A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32,
            "MULT_BITS": 32, "Y_BITS": 8, "ACC_DEPTH": 16}
DESC_BEATS = 7   # descriptor words: P, K, C_out, z_y, lo, hi, flags
PARAM_BEATS = 3  # per channel: bias_eff, M0, sh
RQ_LATENCY = 3   # drain issue -> output register (stages B, C, D)
_NEVER = -(1 << 62)


def _dims(layer: dict, params: dict) -> tuple[int, int, int, int, int, int]:
    p = {**DEFAULTS, **{k.upper(): v for k, v in params.items()}}
    rows, k, c_out = int(layer["rows"]), int(layer["K"]), int(layer["C_out"])
    if rows < 1 or k < 1 or c_out < 1:
        raise ValueError(f"rows={rows}, K={k}, C_out={c_out} must all be >= 1 (the accelerator "
                         "refuses such a descriptor)")
    r, c, depth = int(p["ROWS"]), int(p["COLS"]), int(p["ACC_DEPTH"])
    if r < 1 or c < 1 or depth < 1:
        raise ValueError(f"ROWS={r}, COLS={c}, ACC_DEPTH={depth} must all be >= 1")
    return rows, k, c_out, r, c, depth


def schedule(layer: dict, params: dict) -> dict:
    """The no-back-pressure timeline of one layer, edge 0 = the first input beat accepted.

    Args:
        layer: ``rows`` (P), ``K``, ``C_out`` (plain ints; ``N``, ``M``, ``bits`` are accepted
            and ignored: the array is dense and its lanes are 8 bits).
        params: Verilog parameters of ``sws_top`` (``ROWS``, ``COLS``, ``ACC_DEPTH`` matter).

    Returns:
        ``{"cycles", "in_beats", "out_beats", "in_stall", "tiles", "blocks", "last_in",
        "last_out"}``: ``in_stall`` is the number of cycles between the first and the last input
        beat on which the accelerator refused a beat (tready low), ``last_in``/``last_out`` the
        edges of the last input / output beat.
    """
    rows, k, c_out, R, C, D = _dims(layer, params)
    t = DESC_BEATS - 1                  # edge of the last descriptor beat
    in_beats = DESC_BEATS
    last_act = [_NEVER, _NEVER]         # per weight bank: edge of its block's last activation
    bank_free = [_NEVER, _NEVER]        # per accumulator bank: edge its tile's last row drained
    prev_issue = _NEVER                 # edge of the previous tile's last drained row
    block = tile = 0
    for p0 in range(0, rows, D):
        pr = min(D, rows - p0)
        for c0 in range(0, c_out, C):
            cc = min(C, c_out - c0)
            tb = tile % 2
            t = max(t + 1, bank_free[tb] + 1) + PARAM_BEATS * cc - 1
            in_beats += PARAM_BEATS * cc
            for k0 in range(0, k, R):
                kr = min(R, k - k0)
                wb = block % 2
                t = max(t + 1, last_act[wb] + C) + kr - 1 + pr
                in_beats += kr + pr
                last_act[wb] = t
                block += 1
            done = t + R + C                         # last row accumulated
            start = max(done, prev_issue) + 1        # first row issued to the requantizer
            prev_issue = start + pr - 1
            bank_free[tb] = prev_issue
            tile += 1
    last_out = prev_issue + RQ_LATENCY + 1
    return {"cycles": last_out + 1, "in_beats": in_beats, "out_beats": rows * (-(-c_out // C)),
            "in_stall": t + 1 - in_beats, "tiles": tile, "blocks": block, "last_in": t,
            "last_out": last_out}


def cycles(layer: dict, params: dict) -> int:
    """Cycles of one layer without back-pressure (see the module docstring), exactly.

    Example: P = 1, K = 1, C_out = 1 on ROWS = COLS = 1 (ACC_DEPTH any): beats at edges 0..6
    (descriptor), 7..9 (bias, M0, sh), 10 (weight), 11 (activation); accumulated at edge
    11 + 2 = 13, issued at 14, output register at 17, accepted at 18 -> 19 cycles.
    """
    return schedule(layer, params)["cycles"]
