"""The RTL interface of the t2c accelerator (``rtl/t2c_accel_top.v``): its one owner.

Every width, word layout and plan format that the host side and the RTL must agree on is
defined here and nowhere else. The RTL keeps Verilog parameter *defaults* (it knows nothing of
Python); the values below reach it as Verilog parameters (:func:`top_parameters`,
:func:`harness_parameters`), and the co-simulation packer (:mod:`t2c_sim.cosim.accel`) and the
port-level testbench (``testbenches/test_accel_top.py``) pack words with the functions below.

Scratchpad words (field 0 in the least significant bits, :func:`t2c_sim.export.hexfile.pack_limbs`):

* **act** (``M * ROWS`` fields of ``A_BITS``, lane-major): activation ``(row q*ROWS + r,
  k = g*M + i)`` of row block ``q`` and group ``g`` is field ``i*ROWS + r`` of word ``q*Gc + g``;
* **wgt** (``COLS`` fields of ``N*W_BITS + N*IDX_BITS``): channel ``q*COLS + c`` is field block
  ``c`` of word ``q*Gc + g``: its ``N`` values (signed), then its ``N`` indices;
* **ch** (``COLS`` biases of ``ACC_BITS``, then ``COLS`` ``M0`` of ``MULT_BITS``, then ``COLS``
  shifts of :data:`SH_BITS`): column block ``q`` at word ``q``;
* **out** (``COLS`` outputs of :data:`Y_BITS`, signed) and **acc** (``COLS`` accumulators of
  ``ACC_BITS``): row ``p``, column block ``cb`` at word ``p*CB + cb``;
* **rp** (``ROW_PARAMS = 1``; written with ``hw_sel_i =`` :data:`SEL_RP`): a ch word per output
  row: the parameters of (row ``p``, channel ``cb*COLS + c``) at word ``p*CB + cb``
  (:func:`rp_fields`).

The run-mode register ``cfg_mode_i`` (32 bits, the plan's ``mode`` word; :func:`run_mode`):
bits ``[2:0]`` the rounding code (``RoundMode.code`` 0..3, ``RoundProfile.code`` 4..6),
:data:`ROWPAR` (bit 3: parameters from the rp memory), :data:`W_UNSIGNED` (bit 4: the weight
operand is unsigned), bits ``[7:5]`` reserved (0), the activation zero point ``z_a`` in
``[19:8]`` and the weight-operand zero point ``z_w`` in ``[31:20]`` (:data:`ZA_SHIFT`,
:data:`ZW_SHIFT`; ``A_BITS`` / ``W_BITS``-bit two's complement in the low bits of each
:data:`ZP_BITS`-bit field). The build features that give these fields a meaning are the
parameters ``PROFILES``, ``ROW_PARAMS``, ``ZERO_POINTS`` (``HwConfig.profiles``,
``row_params``, ``zero_points``); a build without one refuses a run that uses it (``err_o[5]``).

The plan (``plan.hex`` of the simulation harness): word 0 is the number of runs, then
:data:`PLAN_WORDS` 32-bit words per run, in the order of :data:`PLAN_FIELDS`; the harness reads
field ``f`` at offset :func:`plan_offsets` ``[f]`` (passed as its ``PL_*`` parameters).

Example: a 2x2 array (``ROWS = COLS = 2``), 2:4, 8-bit operands: an act word holds
``M * ROWS = 8`` activations (64 bits), a wgt word ``2 * (2*8 + 2*2) = 40`` bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from t2c_sim.config import HwConfig, RoundMode, RoundProfile
from t2c_sim.numerics import check_range

__all__ = ["Y_BITS", "SH_BITS", "PLAN_FIELDS", "PLAN_WORDS", "MAX_RUNS", "SEL_ACT", "SEL_WGT",
           "SEL_CH", "SEL_RP", "ROWPAR", "W_UNSIGNED", "ZA_SHIFT", "ZW_SHIFT", "ZP_BITS",
           "FEATURE_PARAMS", "Widths", "widths", "top_parameters", "harness_parameters",
           "plan_offsets", "run_mode", "act_fields", "wgt_fields", "ch_fields", "rp_fields",
           "plan_words", "FLAG_FIRST", "FLAG_LAST"]

#: Output, zero-point and clamp width of the accelerator build (signed).
Y_BITS = 16
#: Width of a shift in the channel-parameter word (``sh`` in 0 .. 2^SH_BITS - 1).
SH_BITS = 6
#: The plan fields of one run, in word order (``n_*``: words to load, ``n_out``: output words to
#: dump after the run, 0 for a partial-sum run; ``flags``: :data:`FLAG_FIRST` | :data:`FLAG_LAST`).
PLAN_FIELDS = ("rows", "groups", "cols", "a_signed", "z_y", "lo", "hi", "mode", "n_act", "n_wgt",
               "n_ch", "n_out", "flags")
PLAN_WORDS = len(PLAN_FIELDS)
FLAG_FIRST, FLAG_LAST = 1, 2
#: Runs one harness plan holds (the harness's ``MAX_TILES``; a bound on memory and time).
MAX_RUNS = 16384
#: Host write port ``hw_sel_i`` codes (:data:`SEL_RP`: the per-row parameter memory).
SEL_ACT, SEL_WGT, SEL_CH, SEL_RP = 0, 1, 2, 3
#: Run-mode register bits: per-row parameters (rp memory), unsigned weight operand.
ROWPAR, W_UNSIGNED = 1 << 3, 1 << 4
#: Positions and width of the zero-point fields ``z_a`` and ``z_w`` in the run-mode register.
ZA_SHIFT, ZW_SHIFT, ZP_BITS = 8, 20, 12
#: Build features: Verilog parameter -> ``HwConfig`` field (each 0 or 1).
FEATURE_PARAMS = {"PROFILES": "profiles", "ROW_PARAMS": "row_params",
                  "ZERO_POINTS": "zero_points"}


@dataclass(frozen=True)
class Widths:
    """Word widths of the scratchpads for one array (bits)."""

    act: int
    wgt: int
    ch: int
    out: int
    acc: int


def widths(hw: HwConfig) -> Widths:
    """Scratchpad word widths of ``hw`` (see the module docstring)."""
    return Widths(act=hw.m * hw.rows * hw.a_bits,
                  wgt=hw.cols * (hw.n * hw.w_bits + hw.n * hw.idx_bits),
                  ch=hw.cols * (hw.acc_bits + hw.mult_bits + SH_BITS),
                  out=hw.cols * Y_BITS, acc=hw.cols * hw.acc_bits)


def top_parameters(hw: HwConfig, packed: bool = False) -> dict[str, int]:
    """Verilog parameters of ``t2c_accel_top`` for ``hw`` (``PACKED``: the PE array implementation)."""
    return {"ROWS": hw.rows, "COLS": hw.cols, "N": hw.n, "M": hw.m, "A_BITS": hw.a_bits,
            "W_BITS": hw.w_bits, "ACC_BITS": hw.acc_bits, "MULT_BITS": hw.mult_bits,
            "SHIFT_MAX": hw.shift_max, "ACT_DEPTH": hw.act_depth, "W_DEPTH": hw.w_depth,
            "OUT_DEPTH": hw.out_depth, "CH_DEPTH": hw.ch_depth, "Y_BITS": Y_BITS,
            "SH_BITS": SH_BITS, "PACKED": int(packed),
            **{p: int(getattr(hw, f)) for p, f in FEATURE_PARAMS.items()}}


def plan_offsets() -> dict[str, int]:
    """``{field: word offset within a run}`` (:data:`PLAN_FIELDS` order)."""
    return {f: i for i, f in enumerate(PLAN_FIELDS)}


def harness_parameters(params: dict[str, int]) -> dict[str, int]:
    """Parameters of the simulation harness ``t2c_harness``: the top's plus the plan format.

    ``params`` are :func:`top_parameters` (or the same names from a DUT file); the harness gets
    ``PLAN_WORDS``, ``MAX_TILES`` and the offset of every plan field as ``PL_<FIELD>``.
    """
    out = dict(params)
    out["PLAN_WORDS"] = PLAN_WORDS
    out["MAX_TILES"] = MAX_RUNS
    out.update({f"PL_{f.upper()}": i for f, i in plan_offsets().items()})
    return out


def run_mode(hw: HwConfig, mode: RoundMode | RoundProfile, *, rowpar: bool = False,
             w_unsigned: bool = False, z_a: int = 0, z_w: int = 0) -> int:
    """The run-mode register: ``code | ROWPAR | W_UNSIGNED | z_a << 8 | z_w << 20``.

    The zero points are stored as ``hw.a_bits`` / ``hw.w_bits``-bit two's complement patterns
    (the array sign- or zero-extends them like its operands).

    >>> hex(run_mode(HwConfig(), RoundMode.HALF_UP, rowpar=True, z_a=-1, z_w=3))
    '0x30ff09'
    """
    word = mode.code | (ROWPAR if rowpar else 0) | (W_UNSIGNED if w_unsigned else 0)
    return (word | (int(z_a) & ((1 << hw.a_bits) - 1)) << ZA_SHIFT
            | (int(z_w) & ((1 << hw.w_bits) - 1)) << ZW_SHIFT)


def act_fields(act: np.ndarray, hw: HwConfig) -> tuple[np.ndarray, np.ndarray]:
    """Act words of one run: ``act[rows, gs, M]`` (a tile's rows, the chunk's groups) ->
    ``(fields[qr * gs, M * ROWS], widths)``, word ``q*gs + g``, field ``i*ROWS + r``."""
    rows, gs, m = act.shape
    qr = -(-rows // hw.rows)
    blk = np.zeros((qr * hw.rows, gs, m), dtype=np.int64)
    blk[:rows] = act
    f = blk.reshape(qr, hw.rows, gs, m).transpose(0, 2, 3, 1).reshape(qr * gs, m * hw.rows)
    return f, np.full(m * hw.rows, hw.a_bits, dtype=np.int64)


def wgt_fields(vals: np.ndarray, idx: np.ndarray, hw: HwConfig) -> tuple[np.ndarray, np.ndarray]:
    """Wgt words of one run: ``vals/idx[cols, gs, N]`` -> ``(fields[qc * gs, COLS * 2N], widths)``,
    word ``q*gs + g``, channel ``q*COLS + c`` in field block ``c`` (values, then indices)."""
    cols, gs, n = vals.shape
    qc = -(-cols // hw.cols)
    blk = np.zeros((qc * hw.cols, gs, 2 * n), dtype=np.int64)
    blk[:cols, :, :n] = vals
    blk[:cols, :, n:] = idx
    f = blk.reshape(qc, hw.cols, gs, 2 * n).transpose(0, 2, 1, 3).reshape(qc * gs, hw.cols * 2 * n)
    w = np.tile([hw.w_bits] * n + [hw.idx_bits] * n, hw.cols).astype(np.int64)
    return f, w


def ch_fields(bias: np.ndarray, m0: np.ndarray, sh: np.ndarray, hw: HwConfig, name: str = "layer",
              ) -> tuple[np.ndarray, np.ndarray]:
    """Channel-parameter words of a tile's ``cols`` channels -> ``(fields[qc, 3*COLS], widths)``:
    word ``q`` holds the COLS biases, then the COLS ``M0``, then the COLS shifts.

    Raises:
        NumericsError: A value does not fit its field (names ``name`` and the parameter).
    """
    check_range(bias, hw.acc_bits, True, f"{name} bias_eff")
    check_range(m0, hw.mult_bits, False, f"{name} M0")
    check_range(sh, SH_BITS, False, f"{name} sh")
    cols = len(bias)
    qc = -(-cols // hw.cols)
    blk = np.zeros((qc * hw.cols, 3), dtype=np.int64)
    blk[:cols] = np.stack([bias, m0, sh], axis=1)
    f = blk.reshape(qc, hw.cols, 3).transpose(0, 2, 1).reshape(qc, 3 * hw.cols)
    w = np.repeat([hw.acc_bits, hw.mult_bits, SH_BITS], hw.cols).astype(np.int64)
    return f, w


def rp_fields(bias: np.ndarray, m0: np.ndarray, sh: np.ndarray, hw: HwConfig,
              name: str = "layer") -> tuple[np.ndarray, np.ndarray]:
    """Per-row parameter words of a tile: ``bias/m0/sh[rows, cols]`` ->
    ``(fields[rows * qc, 3*COLS], widths)``: word ``p*qc + q`` holds row ``p``'s parameters of
    column block ``q`` in the ch word layout (the output's address).

    Raises:
        NumericsError: A value does not fit its field (names ``name`` and the parameter).
    """
    check_range(bias, hw.acc_bits, True, f"{name} bias_eff")
    check_range(m0, hw.mult_bits, False, f"{name} M0")
    check_range(sh, SH_BITS, False, f"{name} sh")
    rows, cols = bias.shape
    qc = -(-cols // hw.cols)
    blk = np.zeros((rows, qc * hw.cols, 3), dtype=np.int64)
    blk[:, :cols] = np.stack([bias, m0, sh], axis=2)
    f = blk.reshape(rows, qc, hw.cols, 3).transpose(0, 1, 3, 2).reshape(rows * qc, 3 * hw.cols)
    w = np.repeat([hw.acc_bits, hw.mult_bits, SH_BITS], hw.cols).astype(np.int64)
    return f, w


def plan_words(**fields: int) -> list[int]:
    """One run's plan words from :data:`PLAN_FIELDS` values (signed ones as 32-bit two's complement)."""
    missing = [f for f in PLAN_FIELDS if f not in fields]
    if missing or len(fields) != PLAN_WORDS:
        raise ValueError(f"plan_words needs exactly {PLAN_FIELDS}, missing {missing}")
    return [int(fields[f]) & 0xFFFFFFFF for f in PLAN_FIELDS]
