"""cocotb testbench of ``rtl/t2c_axil_regs.v`` on its own, through cocotbext-axi's AxiLiteMaster.

The DMA side (``busy_i``, ``fin_i``, ``err_i``, counters) is driven from Python. Checked against
the register map of docs/rtl.md (``payload["regs"]``, from ``t2c_sim.cosim.axi_frontdoor``):

* ID, VERSION and every build-parameter register read their documented values;
* every RW register (job registers, DESC_ADDR, DESC_COUNT, IRQ_EN) reads back what was written,
  ``job_o`` / ``desc_*_o`` carry it, a one-byte write (WSTRB) changes that byte only, RO
  registers ignore writes, addresses past the map answer SLVERR (read and write), START reads 0;
* START pulses ``start_o`` for exactly one cycle, not while ``busy_i``, not for a 0 in bit 0;
* a completion (``fin_i``) sets STATUS done / error and IRQ_STATUS; ``irq_o`` is
  ``IRQ_EN & IRQ_STATUS``; writing 1s clears IRQ_STATUS bits (W1C) and 0s do not; START clears
  the STATUS done bits; the DMA's counters and error flags appear in their registers.

Payload: ``params``, ``regs``, ``seed``.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from t2c_sim.cosim.sim import load_payload
from t2c_sim.errors import MismatchError

ID_VALUE = 0x54324341
HW_ORDER = ("ROWS", "COLS", "N", "M", "A_BITS", "W_BITS", "ACC_BITS", "MULT_BITS", "SHIFT_MAX",
            "ACT_DEPTH", "W_DEPTH", "OUT_DEPTH", "CH_DEPTH", "Y_BITS", "DATA_W", "BURST_LEN",
            "OUTSTANDING")


def _expect(cond: bool, what: str) -> None:
    if not cond:
        raise MismatchError(f"t2c_axil_regs: {what}")


async def _rd(lite: AxiLiteMaster, addr: int) -> tuple[int, int]:
    r = await lite.read(addr, 4)
    return int.from_bytes(r.data, "little"), int(r.resp)


async def _wr(lite: AxiLiteMaster, addr: int, value: int) -> int:
    r = await lite.write(addr, (value & 0xFFFFFFFF).to_bytes(4, "little"))
    return int(r.resp)


async def _setup(dut) -> AxiLiteMaster:
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    for s in ("busy_i", "fin_i", "err_i", "jobs_i", "cycles_i", "core_cycles_i",
              "s_axil_awvalid", "s_axil_wvalid", "s_axil_arvalid", "s_axil_bready",
              "s_axil_rready"):
        getattr(dut, s).value = 0
    dut.rst_ni.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk_i)
    dut.rst_ni.value = 1
    await RisingEdge(dut.clk_i)
    lite = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk_i)
    await RisingEdge(dut.clk_i)
    return lite


@cocotb.test()
async def register_map(dut) -> None:
    pl = load_payload()
    p, regs = pl["params"], pl["regs"]
    rng = random.Random(pl["seed"])
    lite = await _setup(dut)
    _expect(await _rd(lite, regs["ID"]) == (ID_VALUE, 0), "ID")
    _expect(await _rd(lite, regs["VERSION"]) == (1, 0), "VERSION")
    for name in HW_ORDER:
        got = await _rd(lite, regs[f"HW_{name}"])
        _expect(got == (p[name], 0), f"HW_{name} reads {got}, expected {p[name]}")
    _expect(await _rd(lite, regs["HW_DESC_BYTES"]) == (128, 0), "HW_DESC_BYTES")
    # RW registers: random patterns, read back, and on the ports
    rw = [k for k in regs if k.startswith("JOB_")] + ["DESC_ADDR", "DESC_COUNT"]
    vals = {k: rng.getrandbits(32) for k in rw}
    for k, v in vals.items():
        _expect(await _wr(lite, regs[k], v) == 0, f"write {k}: SLVERR")
    for k, v in vals.items():
        _expect(await _rd(lite, regs[k]) == (v, 0), f"{k} does not read back {v:#x}")
    job = int(dut.job_o.value)
    for i, k in enumerate(x for x in regs if x.startswith("JOB_")):
        _expect(job >> (32 * i) & 0xFFFFFFFF == vals[k], f"job_o field {i} ({k})")
    _expect(int(dut.desc_addr_o.value) == vals["DESC_ADDR"], "desc_addr_o")
    _expect(int(dut.desc_count_o.value) == vals["DESC_COUNT"], "desc_count_o")
    # one byte (WSTRB = 0b0100): only byte 2 changes
    await lite.write(regs["DESC_ADDR"] + 2, bytes([0x5A]))
    want = (vals["DESC_ADDR"] & ~0x00FF0000) | 0x005A0000
    _expect(await _rd(lite, regs["DESC_ADDR"]) == (want, 0), "byte write (WSTRB)")
    # IRQ_EN keeps 2 bits; RO registers ignore writes; past the map: SLVERR
    await _wr(lite, regs["IRQ_EN"], 0xFFFFFFFF)
    _expect(await _rd(lite, regs["IRQ_EN"]) == (3, 0), "IRQ_EN holds bits 1:0")
    await _wr(lite, regs["ID"], 0)
    await _wr(lite, regs["HW_ROWS"], 0)
    _expect((await _rd(lite, regs["ID"]))[0] == ID_VALUE, "ID changed by a write")
    _expect((await _rd(lite, regs["HW_ROWS"]))[0] == p["ROWS"], "HW_ROWS changed by a write")
    _expect(await _rd(lite, 0xE0) == (0, 2), "read past the map: expected 0 with SLVERR")
    _expect(await _wr(lite, 0xFC, 1) == 2, "write past the map: expected SLVERR")
    _expect(await _rd(lite, regs["START"]) == (0, 0), "START reads 0")


async def _start_pulses(dut, lite: AxiLiteMaster, regs: dict, value: int) -> int:
    """Write START; count the cycles start_o is high during the next 6 cycles."""
    n = 0
    task = cocotb.start_soon(lite.write(regs["START"], value.to_bytes(4, "little")))
    for _ in range(8):
        await RisingEdge(dut.clk_i)
        await ReadOnly()
        n += int(dut.start_o.value)
    await task
    return n


@cocotb.test()
async def start_status_irq(dut) -> None:
    pl = load_payload()
    regs = pl["regs"]
    lite = await _setup(dut)
    _expect(await _start_pulses(dut, lite, regs, 1) == 1, "START=1: start_o not one cycle")
    _expect(await _start_pulses(dut, lite, regs, 2) == 0, "START=2 (bit 0 clear) started")
    await RisingEdge(dut.clk_i)
    dut.busy_i.value = 1
    _expect(await _start_pulses(dut, lite, regs, 1) == 0, "START while busy started")
    _expect((await _rd(lite, regs["STATUS"]))[0] == 1, "STATUS[0] does not follow busy_i")
    # a completion without error, then one with
    await RisingEdge(dut.clk_i)
    dut.busy_i.value = 0
    dut.jobs_i.value = 7
    dut.cycles_i.value = 1234
    dut.core_cycles_i.value = 567
    for err, st, irq_bit in ((0, 2, 1), (0x105, 4, 2)):
        await _wr(lite, regs["IRQ_EN"], 0)
        await RisingEdge(dut.clk_i)
        dut.err_i.value = err
        dut.fin_i.value = 1
        await RisingEdge(dut.clk_i)
        dut.fin_i.value = 0
        await RisingEdge(dut.clk_i)
        await ReadOnly()
        _expect(int(dut.irq_o.value) == 0, "irq_o high with IRQ_EN = 0")
        await RisingEdge(dut.clk_i)
        got = {k: (await _rd(lite, regs[k]))[0] for k in ("STATUS", "IRQ_STATUS", "ERR",
                                                          "JOBS_DONE", "CYCLES", "CORE_CYCLES")}
        _expect(got == {"STATUS": st, "IRQ_STATUS": irq_bit, "ERR": err, "JOBS_DONE": 7,
                        "CYCLES": 1234, "CORE_CYCLES": 567}, f"after fin (err {err:#x}): {got}")
        other = 3 ^ irq_bit
        await _wr(lite, regs["IRQ_EN"], other)
        await ReadOnly()
        _expect(int(dut.irq_o.value) == 0, "irq_o high for a disabled status bit")
        await RisingEdge(dut.clk_i)
        await _wr(lite, regs["IRQ_EN"], 3)
        await ReadOnly()
        _expect(int(dut.irq_o.value) == 1, "irq_o low with IRQ_EN & IRQ_STATUS != 0")
        await RisingEdge(dut.clk_i)
        await _wr(lite, regs["IRQ_STATUS"], other)   # W1C of the other bit: no effect
        _expect((await _rd(lite, regs["IRQ_STATUS"]))[0] == irq_bit, "W1C cleared a 0 bit")
        await _wr(lite, regs["IRQ_STATUS"], irq_bit)
        await ReadOnly()
        _expect(int(dut.irq_o.value) == 0, "irq_o still high after W1C")
        await RisingEdge(dut.clk_i)
        _expect((await _rd(lite, regs["IRQ_STATUS"]))[0] == 0, "IRQ_STATUS not cleared")
    _expect(await _start_pulses(dut, lite, regs, 1) == 1, "START after completion")
    _expect((await _rd(lite, regs["STATUS"]))[0] == 0, "START does not clear STATUS done bits")
