"""cocotb testbench of ``rtl/t2c_accel_top.v`` through its own ports (no harness backdoor).

* ``shape_errors``: every start-time error flag (zero size, act/wgt/ch/out depth, lo > hi, a
  run mode the build lacks or a reserved one: rounding code 7, reserved bits, zero-point bits
  above the operand width, and per build parameter a profile code, ROWPAR or zero points)
  refuses the run: ``done_o`` rises, ``busy_o`` never does, ``cycles_o`` = 0; then a legal run
  clears the flags.
* ``gemm_via_ports``: random tiles written word by word through the host write port
  (``hw_*``), computed, read back through the host read port (``hr_*``) and compared with an
  independent oracle (dense ``numpy`` dot products on the decompressed weights, then
  ``t2c_sim.numerics.requantize``); ``cycles_o`` must equal the cycle model; a ``start_i``
  pulse while busy is ignored; a channel with ``sh > SHIFT_MAX`` raises ``err_o[6]``. Some
  trials are K-split: the dot products run as 2-3 runs over K-chunks (``cfg_first_i`` /
  ``cfg_last_i``), the partial sums read back between runs through ``hr_acc_o`` must equal the
  oracle's partial sums (bias once) and only the last run writes ``y``. Builds with the
  features add trials with per-row parameters (the rp memory, ``hw_sel_i = 3``; with a K-split:
  the bias enters once at the first run's drain), operand zero points (unsigned weight operand
  too) and the rounding profiles (oracle: ``rounding_profiles.requantize_profile``), alone and
  combined.
* ``directed_requant``: the directed cases of :mod:`t2c_sim.workloads.requant_cases` (ties of
  every rounding step of every section-2 mode and of every profile the build has, their sticky
  neighbours, the extremes of ``acc``, ``M0``, ``sh``, ``z_y``, ``lo``, ``hi``), one case per
  output: with per-row parameters (rp words: every output its own ``bias_eff``/``M0``/``sh``)
  and per channel (one-row runs: every channel its own case). ``bias_eff = acc - x . w`` for
  random ``x, w``, so each accumulator is the case's; oracle: the golden requantizers on the
  cases themselves; cycles equal the cycle model.

Words are packed by :mod:`t2c_sim.export.iface` (the one owner of the word layouts, the same
packer the co-simulation uses) and written through the port; the oracle is independent of it
(dense dot products on the decompressed weights, the golden requantizers on the cases), so a
layout the RTL does not read the same way fails the comparison. ``Y_BITS``/``SH_BITS`` come from
the parameters (``iface`` passes them).

Payload: ``params`` (toplevel parameters, :func:`t2c_sim.export.iface.top_parameters`), ``seed``,
``n_directed`` (cases per mode or profile, default 96).
"""

from __future__ import annotations

import logging
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from t2c_sim.config import HwConfig, RoundMode, RoundProfile
from t2c_sim.cosim.sim import load_payload
from t2c_sim.errors import MismatchError, SimulationError
from t2c_sim.estimate import Tile, tile_cycles
from t2c_sim.export import iface
from t2c_sim.export.hexfile import limbs_to_ints, pack_limbs, unpack_words
from t2c_sim.numerics import requantize, wrap
from t2c_sim.rounding_profiles import requantize_profile
from t2c_sim.sparse.nm import compress, nm_mask
from t2c_sim.workloads.requant_cases import (
    BY_CODE,
    ort_directed,
    profiles_fitting,
    section2_directed,
    tflite_directed,
)

log = logging.getLogger("cocotb.tb.accel_top")


def _hw(p: dict) -> HwConfig:
    return HwConfig(rows=p["ROWS"], cols=p["COLS"], n=p["N"], m=p["M"], a_bits=p["A_BITS"],
                    w_bits=p["W_BITS"], acc_bits=p["ACC_BITS"], mult_bits=p["MULT_BITS"],
                    shift_max=p["SHIFT_MAX"], act_depth=p["ACT_DEPTH"], w_depth=p["W_DEPTH"],
                    out_depth=p["OUT_DEPTH"], ch_depth=p["CH_DEPTH"],
                    **{f: int(p.get(k, 1)) for k, f in iface.FEATURE_PARAMS.items()})


def _mode_word(code: int, rowpar: bool = False, w_unsigned: bool = False, za: int = 0,
               zw: int = 0, hw: HwConfig | None = None) -> int:
    """cfg_mode_i as docs/rtl.md defines it (written here independently of cosim.features)."""
    ab, wb = (hw.a_bits, hw.w_bits) if hw is not None else (12, 12)
    return (code | int(rowpar) << 3 | int(w_unsigned) << 4 | (za & ((1 << ab) - 1)) << 8
            | (zw & ((1 << wb) - 1)) << 20)


def _fail(msg: str) -> bool:
    raise SimulationError(f"test_accel_top: {msg}")


async def _reset(dut) -> None:
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    for s in ("start_i", "hw_en_i", "hw_sel_i", "hw_addr_i", "hw_data_i",
              "hr_addr_i", "cfg_rows_i", "cfg_groups_i", "cfg_cols_i", "cfg_a_signed_i",
              "cfg_zy_i", "cfg_lo_i", "cfg_hi_i", "cfg_mode_i"):
        getattr(dut, s).value = 0
    dut.cfg_first_i.value = 1
    dut.cfg_last_i.value = 1
    dut.rst_ni.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk_i)
    dut.rst_ni.value = 1
    await RisingEdge(dut.clk_i)


def _cfg(dut, rows, groups, cols, a_signed=1, zy=0, lo=-128, hi=127, mode=0, first=1,
         last=1) -> None:
    """Program the control registers (``mode``: the whole run-mode word)."""
    dut.cfg_first_i.value = first
    dut.cfg_last_i.value = last
    dut.cfg_rows_i.value = rows
    dut.cfg_groups_i.value = groups
    dut.cfg_cols_i.value = cols
    dut.cfg_a_signed_i.value = a_signed
    ymask = (1 << len(dut.cfg_zy_i)) - 1  # Y_BITS wide
    dut.cfg_zy_i.value = zy & ymask
    dut.cfg_lo_i.value = lo & ymask
    dut.cfg_hi_i.value = hi & ymask
    dut.cfg_mode_i.value = mode


async def _start_and_wait(dut, limit: int, extra_start_at: int | None = None) -> tuple[int, int]:
    """Pulse start, wait for done (at most ``limit`` cycles); return (err, cycles)."""
    dut.start_i.value = 1
    await RisingEdge(dut.clk_i)
    dut.start_i.value = 0
    await RisingEdge(dut.clk_i)  # done_o of the previous run is cleared at the start edge
    for i in range(limit):
        await ReadOnly()
        if int(dut.done_o.value):
            return int(dut.err_o.value), int(dut.cycles_o.value)
        await RisingEdge(dut.clk_i)
        if extra_start_at is not None and i == extra_start_at:
            dut.start_i.value = 1
            await RisingEdge(dut.clk_i)
            dut.start_i.value = 0
    raise SimulationError(f"t2c_accel_top: done_o not seen within {limit} cycles")


@cocotb.test()
async def shape_errors(dut) -> None:
    p = load_payload()["params"]
    hw = _hw(p)
    await _reset(dut)
    ab, wb, cb = hw.act_depth // hw.rows, hw.w_depth // hw.cols, hw.ch_depth // hw.cols

    def flags(rows, groups, cols, lo=-128, hi=127, mode=0):
        """err_o[5:0] as docs/rtl.md defines them."""
        qr, qc = -(-rows // hw.rows), -(-cols // hw.cols)
        za, zw = mode >> 8 & 0xFFF, mode >> 20 & 0xFFF
        mode_bad = ((mode & 7) == 7 or mode >> 5 & 7 != 0 or za >> hw.a_bits != 0
                    or zw >> hw.w_bits != 0 or (not hw.profiles and mode & 4 != 0)
                    or (not hw.row_params and mode & 8 != 0)
                    or (not hw.zero_points and (mode & 16 != 0 or za != 0 or zw != 0)))
        return ((rows == 0 or groups == 0 or cols == 0) | (qr * groups > ab) << 1
                | (qc * groups > wb) << 2 | (qc > cb) << 3 | (rows * qc > hw.out_depth) << 4
                | (lo > hi or mode_bad) << 5)

    cases = [  # (name, cfg, the bit the case is about)
        ("rows=0", dict(rows=0, groups=1, cols=1), 0x01),
        ("groups=0", dict(rows=1, groups=0, cols=1), 0x01),
        ("cols=0", dict(rows=1, groups=1, cols=0), 0x01),
        ("act depth", dict(rows=hw.rows, groups=ab + 1, cols=1), 0x02),
        ("wgt depth", dict(rows=1, groups=wb + 1, cols=1), 0x04),
        ("ch depth", dict(rows=1, groups=1, cols=hw.cols * (cb + 1)), 0x08),
        ("out depth", dict(rows=hw.out_depth + 1, groups=1, cols=1), 0x10),
        ("lo>hi", dict(rows=1, groups=1, cols=1, lo=5, hi=4), 0x20),
        ("mode code 7", dict(rows=1, groups=1, cols=1, mode=7), 0x20),
        ("mode reserved bit 5", dict(rows=1, groups=1, cols=1, mode=1 << 5), 0x20),
        ("z_a above A_BITS", dict(rows=1, groups=1, cols=1, mode=1 << (8 + hw.a_bits)), 0x20),
        ("z_w above W_BITS", dict(rows=1, groups=1, cols=1, mode=1 << (20 + hw.w_bits)), 0x20),
    ]
    # a mode field the build lacks (this build's parameters decide whether it is refused)
    feature_cases = [
        ("profile ort_fp32", dict(rows=1, groups=1, cols=1, mode=RoundProfile.ORT_FP32.code),
         not hw.profiles),
        ("ROWPAR", dict(rows=1, groups=1, cols=1, mode=8), not hw.row_params),
        ("z_a", dict(rows=1, groups=1, cols=1, mode=_mode_word(0, za=1, hw=hw)),
         not hw.zero_points),
        ("unsigned weights", dict(rows=1, groups=1, cols=1, mode=16), not hw.zero_points),
    ]
    cases += [(n, c, 0x20) for n, c, refused in feature_cases if refused]
    cases = [(n, c, flags(**c)) for n, c, bit in cases if flags(**c) & bit or
             _fail(f"case {n} does not exercise bit {bit:#x}")]
    for name, cfg, want in cases:
        _cfg(dut, **cfg)
        dut.start_i.value = 1
        await RisingEdge(dut.clk_i)
        dut.start_i.value = 0
        await ReadOnly()
        if int(dut.busy_o.value):
            raise MismatchError(f"{name}: busy_o rose for an illegal shape")
        err, cyc, done = int(dut.err_o.value), int(dut.cycles_o.value), int(dut.done_o.value)
        if (err, cyc, done) != (want, 0, 1):
            raise MismatchError(f"{name}: err_o={err:#04x} cycles_o={cyc} done_o={done}, "
                                f"expected err {want:#04x}, 0 cycles, done")
        await RisingEdge(dut.clk_i)
    # a legal run clears the flags (channel parameters written first: an unwritten word is
    # X on Icarus and random on Verilator, whose shift could exceed SHIFT_MAX)
    await _write(dut, iface.SEL_CH, [0])
    if hw.row_params:
        # row 0's parameters legal; the rows past a one-row tile carry the largest shift
        # (> SHIFT_MAX), which must not flag err_o[6] (only rows and channels of the tile count)
        z = np.zeros((hw.rows, 1), dtype=np.int64)
        big = np.full((hw.rows, 1), (1 << int(p["SH_BITS"])) - 1, dtype=np.int64)
        await _write(dut, iface.SEL_RP, [0] + _words(iface.rp_fields(z, z, big, hw)))
    _cfg(dut, rows=1, groups=1, cols=1)
    err, cyc = await _start_and_wait(dut, 100)
    if err:
        raise MismatchError(f"legal run after errors: err_o={err:#04x}")
    # the modes the build has run (no flag): each feature once
    for name, cfg, refused in feature_cases:
        if not refused:
            await RisingEdge(dut.clk_i)   # leave the read-only phase of the previous wait
            _cfg(dut, **cfg)
            err, cyc = await _start_and_wait(dut, 100)
            if err:
                raise MismatchError(f"{name}: err_o={err:#04x} on a build that has it")


async def _write(dut, sel: int, words: list[int]) -> None:
    dut.hw_en_i.value = 1
    dut.hw_sel_i.value = sel
    for a, w in enumerate(words):
        dut.hw_addr_i.value = a
        dut.hw_data_i.value = w
        await RisingEdge(dut.clk_i)
    dut.hw_en_i.value = 0


def _words(fw: tuple[np.ndarray, np.ndarray]) -> list[int]:
    """Python-int words of ``iface`` ``(fields, widths)`` (for the wide ``hw_data_i`` port)."""
    return limbs_to_ints(pack_limbs(*fw))


async def _read(dut, rows: int, qc: int, hw: HwConfig, y_bits: int, with_y: bool = True,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Read ``y`` (unless ``with_y`` is false: not written yet) and the accumulator memory."""
    got_y = np.zeros((rows, qc * hw.cols), dtype=np.int64)
    got_acc = np.zeros_like(got_y)
    for pr in range(rows):
        for cb in range(qc):
            await RisingEdge(dut.clk_i)
            dut.hr_addr_i.value = pr * qc + cb
            await RisingEdge(dut.clk_i)
            await ReadOnly()
            sl = slice(cb * hw.cols, (cb + 1) * hw.cols)
            for name in ("hr_y_o", "hr_acc_o") if with_y else ("hr_acc_o",):
                if not getattr(dut, name).value.is_resolvable:
                    raise SimulationError(f"{name} is X/Z at row {pr}, column block {cb}: "
                                          f"{getattr(dut, name).value}")
            if with_y:
                got_y[pr, sl] = unpack_words([int(dut.hr_y_o.value)], hw.cols, y_bits, True)[0]
            got_acc[pr, sl] = unpack_words([int(dut.hr_acc_o.value)], hw.cols,
                                           hw.acc_bits, True)[0]
    await RisingEdge(dut.clk_i)  # leave the read-only phase
    return got_y, got_acc


@cocotb.test()
async def gemm_via_ports(dut) -> None:
    pl = load_payload()
    p, seed = pl["params"], int(pl.get("seed", 1))
    hw = _hw(p)
    rng = np.random.default_rng(seed)
    log.info("seed=%d", seed)
    await _reset(dut)
    y_bits = int(p["Y_BITS"])
    m, n = hw.m, hw.n
    ab_depth, wb_depth = hw.act_depth // hw.rows, hw.w_depth // hw.cols
    modes = [RoundMode(m) for m in ("half_even", "half_up", "half_away", "floor")]
    # (trial kind, rounding, per-row parameters, zero points, K-split); trials 0-4 need no
    # feature; the others run where the build has theirs
    plan = [(t, modes[t % 4], False, False, t >= 3) for t in range(5)]
    if hw.row_params:
        plan.append((5, RoundMode.HALF_UP, True, False, True))
    if hw.zero_points:
        plan.append((6, RoundMode.HALF_AWAY, False, True, False))
    if hw.profiles:
        plan.append((7, RoundProfile.ORT_FP32, False, False, False))
        if hw.row_params:
            plan.append((8, RoundProfile.TFLITE_DOUBLE, True, False, True))
        if hw.zero_points:
            plan.append((9, RoundProfile.TFLITE_SINGLE, False, True, False))
    for trial, mode, rowpar, zp, split in plan:
        rows = int(rng.integers(1, 2 * hw.rows + 1))
        cols = int(rng.integers(1, 2 * hw.cols + 1))
        qr, qc = -(-rows // hw.rows), -(-cols // hw.cols)
        gmax = max(1, min(ab_depth // qr, wb_depth // qc, 3))  # one chunk fits the banks
        nk = int(rng.integers(2, 4)) if split else 1
        sizes = [int(rng.integers(1, gmax + 1)) for _ in range(nk)]
        g = sum(sizes)
        a_signed = bool(rng.integers(2))
        w_unsigned = zp and trial == 6
        alo, ahi = (-(1 << (hw.a_bits - 1)), (1 << (hw.a_bits - 1)) - 1) if a_signed \
            else (0, (1 << hw.a_bits) - 1)
        wlo, whi = (0, (1 << hw.w_bits) - 1) if w_unsigned \
            else (-(1 << (hw.w_bits - 1)), (1 << (hw.w_bits - 1)) - 1)
        x = rng.integers(alo, ahi + 1, size=(rows, g * m))
        za = int(rng.integers(alo, ahi + 1)) if zp else 0
        zw = int(rng.integers(wlo, whi + 1)) if zp else 0
        if zp:   # an activation operand: every one of the N values per group is data
            vals = rng.integers(wlo, whi + 1, size=(cols, g * n))
            idx = np.stack([np.sort(rng.permutation(m)[:n]) for _ in range(cols * g)])
            idx = idx.reshape(cols, g * n)
        else:
            w = rng.integers(-(1 << (hw.w_bits - 1)), 1 << (hw.w_bits - 1), size=(cols, g * m))
            w = np.where(nm_mask(w, n, m), w, 0)
            vals, idx = compress(w, n, m)
        pshape = (rows, cols) if rowpar else (cols,)
        bias = rng.integers(-5000, 5000, size=pshape)
        if isinstance(mode, RoundProfile):
            ort = mode is RoundProfile.ORT_FP32
            m0 = rng.integers(1 << 23, 1 << 24, size=pshape) if ort else \
                rng.integers(1 << 30, 1 << 31, size=pshape)
            sh = rng.integers(30, 39, size=pshape) if ort else rng.integers(36, 41, size=pshape)
        else:
            m0 = rng.integers(1 << 20, 1 << 24, size=pshape)
            sh = rng.integers(20, 30, size=pshape)
        if trial == 2:
            sh[cols - 1] = hw.shift_max + 1  # must raise err_o[6] (still computed)
        zy, lo, hi = int(rng.integers(-20, 20)), -100, 100
        # parameters once: per row (row p, column block q at address p*qc + q, the rp memory)
        # or per channel (column block q at address q), then per chunk the activations (word
        # q*gs + g) and the weights, all packed by iface
        if rowpar:
            await _write(dut, iface.SEL_RP, _words(iface.rp_fields(bias, m0, sh, hw)))
        else:
            await _write(dut, iface.SEL_CH, _words(iface.ch_fields(bias, m0, sh, hw)))
        word = _mode_word(mode.code, rowpar, w_unsigned, za, zw, hw)
        g0 = 0
        for ci, gs in enumerate(sizes):
            first, last = ci == 0, ci == nk - 1
            act = x[:, g0 * m:(g0 + gs) * m].reshape(rows, gs, m)
            await _write(dut, iface.SEL_ACT, _words(iface.act_fields(act, hw)))
            v3 = vals.reshape(cols, g, n)[:, g0:g0 + gs]
            i3 = idx.reshape(cols, g, n)[:, g0:g0 + gs]
            await _write(dut, iface.SEL_WGT, _words(iface.wgt_fields(v3, i3, hw)))
            _cfg(dut, rows, gs, cols, int(a_signed), zy, lo, hi, word, int(first), int(last))
            pred = tile_cycles(Tile(0, 0, 0, rows, 0, cols), gs, hw, last=last)
            err, cyc = await _start_and_wait(dut, 2 * pred + 100,
                                             extra_start_at=2 if ci == 0 else None)
            want_err = 0x40 if trial == 2 else 0
            if err != want_err:
                raise MismatchError(f"trial {trial} run {ci}: err_o={err:#04x}, expected "
                                    f"{want_err:#04x}")
            if cyc != pred:
                raise MismatchError(f"trial {trial} run {ci}: cycles_o={cyc}, cycle model {pred}")
            g0 += gs
            # independent oracle over the groups so far, bias once: dense dot products on the
            # decompressed weights, or (zero points) the kept values against the activations
            # their indices select, both after their zero points
            if zp:
                xs = x[:, :g0 * m].reshape(rows, g0, m)
                dot = np.stack([((vals[c, :g0 * n].reshape(g0, n) - zw)[None]
                                 * (np.take_along_axis(xs, idx[c, :g0 * n].reshape(1, g0, n)
                                                       .repeat(rows, 0), axis=2) - za))
                                .sum(axis=(1, 2)) for c in range(cols)], axis=1)
            else:
                dot = x[:, :g0 * m] @ w[:, :g0 * m].T
            acc = wrap((bias if rowpar else bias[None, :]) + dot, hw.acc_bits)
            got_y, got_acc = await _read(dut, rows, qc, hw, y_bits, with_y=last)
            if not np.array_equal(got_acc[:, :cols], acc):
                raise MismatchError(f"trial {trial} run {ci} (first={first}, last={last}): "
                                    f"accumulators differ: {got_acc[:, :cols]} vs {acc}")
        m0b, shb = np.broadcast_to(m0, acc.shape), np.broadcast_to(np.minimum(sh, 63), acc.shape)
        if isinstance(mode, RoundProfile):
            y = requantize_profile(acc, m0b, shb, zy, lo, hi, mode)
        else:
            y = requantize(acc, m0b, shb, zy, lo, hi, mode)
        ok_cols = cols - 1 if trial == 2 else cols
        if not np.array_equal(got_y[:, :ok_cols], y[:, :ok_cols]):
            raise MismatchError(f"trial {trial} ({mode.value}, rowpar={rowpar}, zp={zp}): "
                                f"outputs differ: {got_y[:, :cols]} vs {y}")
        log.info("trial %d: %dx%d G=%d in %d run(s) %s rowpar=%s zp=%s ok", trial, rows, cols, g,
                 nk, mode.value, rowpar, zp)
        await RisingEdge(dut.clk_i)


def _oracle(cells: list[tuple[int, int, int]], zy: int, lo: int, hi: int, code: int) -> np.ndarray:
    """The golden requantizer of mode/profile ``code`` on ``(acc, M0, sh)`` cells."""
    acc, m0, sh = (np.array([c[i] for c in cells], dtype=np.int64) for i in range(3))
    mode = BY_CODE[code]
    if isinstance(mode, RoundProfile):
        return requantize_profile(acc, m0, sh, zy, lo, hi, mode)
    return requantize(acc, m0, sh, zy, lo, hi, mode)


async def _directed_run(dut, hw: HwConfig, y_bits: int, rng: np.random.Generator, cases: list,
                        rowpar: bool) -> None:
    """One run whose outputs are ``cases`` (sharing z_y, lo, hi and the mode code): per row
    (case i at output (i // COLS, i % COLS), rp words) or per channel (one row, channel i)."""
    n, m = hw.n, hw.m
    zy, lo, hi, code = cases[0][3:]
    k = len(cases)
    cols = min(k, hw.cols) if rowpar else k
    rows = -(-k // cols) if rowpar else 1
    qc = -(-cols // hw.cols)
    cells = [c[:3] for c in cases] + [(0, cases[0][1], cases[0][2])] * (rows * cols - k)
    acc = np.array([c[0] for c in cells], dtype=np.int64).reshape(rows, cols)
    m0 = np.array([c[1] for c in cells], dtype=np.int64).reshape(rows, cols)
    sh = np.array([c[2] for c in cells], dtype=np.int64).reshape(rows, cols)
    x = rng.integers(-(1 << (hw.a_bits - 1)), 1 << (hw.a_bits - 1), size=(rows, m))
    w = rng.integers(-(1 << (hw.w_bits - 1)), 1 << (hw.w_bits - 1), size=(cols, m))
    w = np.where(nm_mask(w, n, m), w, 0)
    vals, idx = compress(w, n, m)
    bias = wrap(acc - x @ w.T, hw.acc_bits)
    if rowpar:
        await _write(dut, iface.SEL_RP, _words(iface.rp_fields(bias, m0, sh, hw)))
    else:
        await _write(dut, iface.SEL_CH, _words(iface.ch_fields(bias[0], m0[0], sh[0], hw)))
    await _write(dut, iface.SEL_ACT, _words(iface.act_fields(x.reshape(rows, 1, m), hw)))
    await _write(dut, iface.SEL_WGT, _words(iface.wgt_fields(vals.reshape(cols, 1, n),
                                                             idx.reshape(cols, 1, n), hw)))
    await RisingEdge(dut.clk_i)
    _cfg(dut, rows, 1, cols, 1, zy, lo, hi, _mode_word(code, rowpar, hw=hw))
    pred = tile_cycles(Tile(0, 0, 0, rows, 0, cols), 1, hw, last=True)
    err, cyc = await _start_and_wait(dut, 2 * pred + 100)
    what = f"{BY_CODE[code].value} z_y={zy} lo={lo} hi={hi} ({'per row' if rowpar else 'per channel'})"
    if err or cyc != pred:
        raise MismatchError(f"{what}: err_o={err:#04x}, cycles_o={cyc} (cycle model {pred})")
    got_y, got_acc = await _read(dut, rows, qc, hw, y_bits)
    if not np.array_equal(got_acc[:, :cols], acc):
        raise MismatchError(f"{what}: accumulators differ from the cases")
    want = _oracle(cells, zy, lo, hi, code).reshape(rows, cols)
    bad = np.argwhere(got_y[:, :cols] != want)
    if bad.size:
        r, c = (int(v) for v in bad[0])
        a, mm, s = cells[r * cols + c]
        raise MismatchError(f"{what}: {len(bad)} outputs differ; first: acc={a} M0={mm} sh={s}: "
                            f"rtl={int(got_y[r, c])} golden={int(want[r, c])}")


@cocotb.test()
async def directed_requant(dut) -> None:
    """Directed requantizer cases of every mode and profile the build has, one per output."""
    pl = load_payload()
    p, seed = pl["params"], int(pl.get("seed", 1))
    per_code = int(pl.get("n_directed", 96))
    hw = _hw(p)
    await _reset(dut)
    y_bits = int(p["Y_BITS"])
    rq = {"ACC_BITS": hw.acc_bits, "MULT_BITS": hw.mult_bits, "SHIFT_BITS": int(p["SH_BITS"]),
          "Y_BITS": y_bits, "PROFILES": hw.profiles}
    rnd = random.Random(seed)
    cases = section2_directed(rq, rnd)
    for prof in profiles_fitting(rq):
        cases += ort_directed(rq, rnd) if prof is RoundProfile.ORT_FP32 else \
            tflite_directed(rq, rnd, prof)
    # a case that needs more than the accumulator or SHIFT_MAX is not this build's
    lim = 1 << (min(hw.acc_bits, 32) - 1)
    cases = [c for c in cases if c[2] <= hw.shift_max and -lim <= c[0] < lim]
    by_code: dict[int, list] = {}
    for c in cases:
        by_code.setdefault(c[6], []).append(c)
    picked = [c for code in sorted(by_code)
              for c in rnd.sample(by_code[code], min(per_code, len(by_code[code])))]
    groups: dict[tuple, list] = {}
    for c in picked:
        groups.setdefault(c[3:], []).append(c)
    rng = np.random.default_rng(seed)
    ch_cap = hw.cols * min(hw.ch_depth // hw.cols, hw.out_depth)
    done = 0
    for rowpar in ([True, False] if hw.row_params else [False]):
        cap = hw.out_depth * hw.cols if rowpar else ch_cap
        for key in sorted(groups):
            vs = groups[key]
            for i in range(0, len(vs), cap):
                await _directed_run(dut, hw, y_bits, rng, vs[i:i + cap], rowpar)
                done += len(vs[i:i + cap])
    counts: dict[int, int] = {}
    for c in picked:
        counts[c[6]] = counts.get(c[6], 0) + 1
    log.info("directed: %d outputs (%s cases, per row and per channel) match the golden "
             "requantizers", done, ", ".join(f"{BY_CODE[c].value} {v}" for c, v in counts.items()))
