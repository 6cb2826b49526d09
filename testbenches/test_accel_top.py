"""cocotb testbench of ``rtl/t2c_accel_top.v`` through its own ports (no harness backdoor).

* ``shape_errors``: every start-time error flag (zero size, act/wgt/ch/out depth, lo > hi)
  refuses the run: ``done_o`` rises, ``busy_o`` never does, ``cycles_o`` = 0; then a legal run
  clears the flags.
* ``gemm_via_ports``: random tiles written word by word through the host write port
  (``hw_*``), computed, read back through the host read port (``hr_*``) and compared with an
  independent oracle (dense ``numpy`` dot products on the decompressed weights, then
  ``t2c_sim.numerics.requantize``); ``cycles_o`` must equal the cycle model; a ``start_i``
  pulse while busy is ignored; a channel with ``sh > SHIFT_MAX`` raises ``err_o[6]``. Some
  trials are K-split: the dot products run as 2-3 runs over K-chunks (``cfg_first_i`` /
  ``cfg_last_i``), the partial sums read back between runs through ``hr_acc_o`` must equal the
  oracle's partial sums (bias once) and only the last run writes ``y``.

Words are packed by :mod:`t2c_sim.export.iface` (the one owner of the word layouts, the same
packer the co-simulation uses) and written through the port; the oracle is independent of it
(dense dot products on the decompressed weights), so a layout the RTL does not read the same way
fails the comparison. ``Y_BITS``/``SH_BITS`` come from the parameters (``iface`` passes them).

Payload: ``params`` (toplevel parameters, :func:`t2c_sim.export.iface.top_parameters`), ``seed``.
"""

from __future__ import annotations

import logging

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from t2c_sim.config import HwConfig, RoundMode
from t2c_sim.cosim.sim import load_payload
from t2c_sim.errors import MismatchError, SimulationError
from t2c_sim.estimate import Tile, tile_cycles
from t2c_sim.export import iface
from t2c_sim.export.hexfile import limbs_to_ints, pack_limbs, unpack_words
from t2c_sim.numerics import requantize, wrap
from t2c_sim.sparse.nm import compress, nm_mask

log = logging.getLogger("cocotb.tb.accel_top")


def _hw(p: dict) -> HwConfig:
    return HwConfig(rows=p["ROWS"], cols=p["COLS"], n=p["N"], m=p["M"], a_bits=p["A_BITS"],
                    w_bits=p["W_BITS"], acc_bits=p["ACC_BITS"], mult_bits=p["MULT_BITS"],
                    shift_max=p["SHIFT_MAX"], act_depth=p["ACT_DEPTH"], w_depth=p["W_DEPTH"],
                    out_depth=p["OUT_DEPTH"], ch_depth=p["CH_DEPTH"])


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

    def flags(rows, groups, cols, lo=-128, hi=127):
        """err_o[5:0] as docs/rtl.md defines them."""
        qr, qc = -(-rows // hw.rows), -(-cols // hw.cols)
        return ((rows == 0 or groups == 0 or cols == 0) | (qr * groups > ab) << 1
                | (qc * groups > wb) << 2 | (qc > cb) << 3 | (rows * qc > hw.out_depth) << 4
                | (lo > hi) << 5)

    cases = [  # (name, cfg, the bit the case is about)
        ("rows=0", dict(rows=0, groups=1, cols=1), 0x01),
        ("groups=0", dict(rows=1, groups=0, cols=1), 0x01),
        ("cols=0", dict(rows=1, groups=1, cols=0), 0x01),
        ("act depth", dict(rows=hw.rows, groups=ab + 1, cols=1), 0x02),
        ("wgt depth", dict(rows=1, groups=wb + 1, cols=1), 0x04),
        ("ch depth", dict(rows=1, groups=1, cols=hw.cols * (cb + 1)), 0x08),
        ("out depth", dict(rows=hw.out_depth + 1, groups=1, cols=1), 0x10),
        ("lo>hi", dict(rows=1, groups=1, cols=1, lo=5, hi=4), 0x20),
    ]
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
    _cfg(dut, rows=1, groups=1, cols=1)
    err, cyc = await _start_and_wait(dut, 100)
    if err:
        raise MismatchError(f"legal run after errors: err_o={err:#04x}")


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
    y_bits = int(p["Y_BITS"])
    rng = np.random.default_rng(seed)
    log.info("seed=%d", seed)
    await _reset(dut)
    m, n = hw.m, hw.n
    ab_depth, wb_depth = hw.act_depth // hw.rows, hw.w_depth // hw.cols
    for trial in range(5):
        split = trial >= 3               # trials 3 and 4 run K-split
        rows = int(rng.integers(1, 2 * hw.rows + 1))
        cols = int(rng.integers(1, 2 * hw.cols + 1))
        qr, qc = -(-rows // hw.rows), -(-cols // hw.cols)
        gmax = max(1, min(ab_depth // qr, wb_depth // qc, 3))  # one chunk fits the banks
        nk = int(rng.integers(2, 4)) if split else 1
        sizes = [int(rng.integers(1, gmax + 1)) for _ in range(nk)]
        g = sum(sizes)
        a_signed = bool(rng.integers(2))
        mode = RoundMode(["half_even", "half_up", "half_away", "floor"][trial % 4])
        alo, ahi = (-(1 << (hw.a_bits - 1)), (1 << (hw.a_bits - 1)) - 1) if a_signed \
            else (0, (1 << hw.a_bits) - 1)
        x = rng.integers(alo, ahi + 1, size=(rows, g * m))
        w = rng.integers(-(1 << (hw.w_bits - 1)), 1 << (hw.w_bits - 1), size=(cols, g * m))
        w = np.where(nm_mask(w, n, m), w, 0)
        vals, idx = compress(w, n, m)
        bias = rng.integers(-5000, 5000, size=cols)
        m0 = rng.integers(1 << 20, 1 << 24, size=cols)
        sh = rng.integers(20, 30, size=cols)
        if trial == 2:
            sh[cols - 1] = hw.shift_max + 1  # must raise err_o[6] (still computed)
        zy, lo, hi = int(rng.integers(-20, 20)), -100, 100
        # channel parameters once (column block q at address q), then per chunk the
        # activations (word q*gs + g) and the weights, all packed by iface
        await _write(dut, iface.SEL_CH, _words(iface.ch_fields(bias, m0, sh, hw)))
        g0 = 0
        for ci, gs in enumerate(sizes):
            first, last = ci == 0, ci == nk - 1
            act = x[:, g0 * m:(g0 + gs) * m].reshape(rows, gs, m)
            await _write(dut, iface.SEL_ACT, _words(iface.act_fields(act, hw)))
            v3 = vals.reshape(cols, g, n)[:, g0:g0 + gs]
            i3 = idx.reshape(cols, g, n)[:, g0:g0 + gs]
            await _write(dut, iface.SEL_WGT, _words(iface.wgt_fields(v3, i3, hw)))
            _cfg(dut, rows, gs, cols, int(a_signed), zy, lo, hi, mode.code, int(first), int(last))
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
            # independent oracle: dense dot products over the groups so far, bias once
            acc = wrap(bias[None, :] + x[:, :g0 * m] @ w[:, :g0 * m].T, hw.acc_bits)
            got_y, got_acc = await _read(dut, rows, qc, hw, y_bits, with_y=last)
            if not np.array_equal(got_acc[:, :cols], acc):
                raise MismatchError(f"trial {trial} run {ci} (first={first}, last={last}): "
                                    f"accumulators differ: {got_acc[:, :cols]} vs {acc}")
        sh_ok = np.minimum(sh, 63)
        y = requantize(acc, m0[None, :], sh_ok[None, :], zy, lo, hi, mode)
        ok_cols = cols - 1 if trial == 2 else cols
        if not np.array_equal(got_y[:, :ok_cols], y[:, :ok_cols]):
            raise MismatchError(f"trial {trial}: outputs differ: {got_y[:, :cols]} vs {y}")
        log.info("trial %d: %dx%d G=%d in %d run(s) %s ok", trial, rows, cols, g, nk, mode.value)
        await RisingEdge(dut.clk_i)
