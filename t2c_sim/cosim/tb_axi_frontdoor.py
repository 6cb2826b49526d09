"""cocotb module of the front-door harness (``hdl/t2c_axi_harness.v``); runs inside the simulator.

The register-level bench, driven by :func:`t2c_sim.cosim.axi_frontdoor.run_commands` (layers
go through the ``axi`` profile instead). The memory image is already
loaded by the harness (``$readmemh``); Python only touches the AXI4-Lite port, through
cocotbext-axi's :class:`AxiLiteMaster`, and a few harness signals. Payload (JSON):

* ``regs``: register name -> byte address; ``irq_en``: value written to ``IRQ_EN`` first;
* ``commands``: per command ``name``, ``writes`` (``[address, [words]]`` blocks, each one
  ``AxiLiteMaster.write`` of consecutive words; the last word written is ``START``),
  ``run_base`` (global run number of its first job, for ``tiles.txt``), ``limit`` (watchdog
  cycles), ``err_window`` (``[lo, hi)`` bytes answering SLVERR, or null), ``dump``
  (``[first beat, last beat, id]`` to ``$writememh`` to ``out<id>.hex`` after it, or null);
* ``readback``: optional list of register checks (see :func:`readback`);
* per command, optional ``reset``: ``"load"``: pull the reset low (two cycles) at the first
  falling edge where the DMA writes the core (a load in the middle of the command) instead of
  waiting for the interrupt; ``"end"``: pull it low after the command completed. Either way
  the command's record gets ``after_reset`` (the status registers read after the reset, then
  ``IRQ_EN`` is written again) and, per reset edge, how many times the DMA's read engine
  strobed a word (``rd_we_in_reset``) and the core was written (``load_in_reset``).

Per command it arms the harness's cycle counter, writes the registers, waits for ``irq`` (or
the watchdog), reads ``STATUS``, ``ERR``, ``JOBS_DONE``, ``CYCLES``, ``CORE_CYCLES``, clears
``IRQ_STATUS`` (W1C) and checks that ``irq`` falls; everything goes to ``results.json`` in the
run directory. A hang raises :class:`SimulationError` naming the command.
"""

from __future__ import annotations

import json
from pathlib import Path

import cocotb
from cocotb.triggers import FallingEdge, First, ReadOnly, RisingEdge, Timer
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from t2c_sim.cosim.sim import load_payload
from t2c_sim.errors import MismatchError, SimulationError

CLOCK_NS = 10


def _words(ws: list[int]) -> bytes:
    return b"".join(int(w & 0xFFFFFFFF).to_bytes(4, "little") for w in ws)


async def _edges(dut, n: int) -> None:
    for _ in range(n):
        await RisingEdge(dut.clk)


async def readback(dut, lite: AxiLiteMaster, checks: list[dict]) -> list[str]:
    """Run register checks; return the failures (empty: all passed).

    Each check: ``{"op": "read", "addr", "want", "resp"}`` (``want`` null: any value),
    ``{"op": "write", "addr", "data", "strb_bytes"}`` (``strb_bytes``: byte offset and count
    of a partial write, or null), ``{"op": "write_resp", "addr", "data", "resp"}``.
    """
    bad = []
    for i, c in enumerate(checks):
        if c["op"] == "read":
            r = await lite.read(c["addr"], 4)
            got = int.from_bytes(r.data, "little")
            if c.get("want") is not None and got != c["want"]:
                bad.append(f"check {i}: read {c['addr']:#04x} = {got:#010x}, expected "
                           f"{c['want']:#010x} ({c.get('what', '')})")
            if int(r.resp) != c.get("resp", 0):
                bad.append(f"check {i}: read {c['addr']:#04x} answered resp {int(r.resp)}, "
                           f"expected {c.get('resp', 0)} ({c.get('what', '')})")
        elif c["op"] == "write":
            data = _words([c["data"]])
            if c.get("strb_bytes"):
                off, n = c["strb_bytes"]
                await lite.write(c["addr"] + off, data[off:off + n])
            else:
                await lite.write(c["addr"], data)
        elif c["op"] == "write_resp":
            r = await lite.write(c["addr"], _words([c["data"]]))
            if int(r.resp) != c["resp"]:
                bad.append(f"check {i}: write {c['addr']:#04x} answered resp {int(r.resp)}, "
                           f"expected {c['resp']} ({c.get('what', '')})")
    return bad


STATUS_REGS = ("STATUS", "ERR", "IRQ_STATUS", "JOBS_DONE", "CYCLES", "CORE_CYCLES")


async def _status(lite: AxiLiteMaster, regs: dict) -> dict:
    return {r.lower(): int.from_bytes((await lite.read(regs[r], 4)).data, "little")
            for r in STATUS_REGS}


def _high(v) -> int:
    """1 for a signal at 1 or unresolved (X/Z: not known to be 0), else 0."""
    return 1 if not v.is_resolvable or int(v) else 0


async def _reset(dut, lite: AxiLiteMaster, regs: dict, irq_en: int, edges: int = 2) -> dict:
    """Reset the DUT and the memory now (call after a falling edge) for ``edges`` rising edges;
    count, after each, the read engine's word strobes and the core writes; then read the
    status registers and enable the interrupts again."""
    dut.rst_n.value = 0
    n_we = n_load = 0
    for _ in range(edges):
        await RisingEdge(dut.clk)
        await ReadOnly()
        n_we += _high(dut.rd_we.value)
        n_load += _high(dut.load_we.value)
    await FallingEdge(dut.clk)
    dut.rst_n.value = 1
    await _edges(dut, 2)
    after = await _status(lite, regs)
    await lite.write(regs["IRQ_EN"], _words([irq_en]))
    return {"after_reset": after, "rd_we_in_reset": n_we, "load_in_reset": n_load}


@cocotb.test()
async def run_commands(dut) -> None:
    """Run every command of the payload; write ``results.json``."""
    pl = load_payload()
    regs = pl["regs"]
    while not int(dut.rst_n.value):
        await RisingEdge(dut.clk)
    await _edges(dut, 2)
    # created after the synchronous reset: before it the slave's valids are X
    lite = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk)
    await _edges(dut, 1)
    results: dict = {"commands": [], "readback": []}
    if pl.get("readback"):
        results["readback"] = await readback(dut, lite, pl["readback"])
    irq_en = pl.get("irq_en", 3)
    await lite.write(regs["IRQ_EN"], _words([irq_en]))
    for cmd in pl.get("commands", []):
        name = cmd["name"]
        lo, hi = cmd.get("err_window") or (0, 0)
        dut.err_lo.value = lo
        dut.err_hi.value = hi
        dut.run_base.value = cmd["run_base"]
        dut.meas_arm.value = 1
        await RisingEdge(dut.clk)
        for addr, ws in cmd["writes"]:
            await lite.write(addr, _words(ws))
        dut.meas_arm.value = 0
        if cmd.get("reset") == "load":
            for _ in range(int(cmd["limit"])):
                await FallingEdge(dut.clk)
                if _high(dut.load_we.value):
                    break
            else:
                raise SimulationError(f"{name}: the DMA wrote no word to the core within "
                                      f"{cmd['limit']} cycles of the register writes")
            rec = await _reset(dut, lite, regs, irq_en)
            results["commands"].append({"name": name, "reset": "load", **rec})
            continue
        if not int(dut.irq.value):
            timer = Timer(int(cmd["limit"]) * CLOCK_NS, unit="ns")
            fired = await First(RisingEdge(dut.irq), timer)
            if fired is timer:
                raise SimulationError(
                    f"{name}: no interrupt within {cmd['limit']} cycles of the register writes "
                    f"(model predicts {cmd.get('predicted')}); watchdog stopped the run")
        await RisingEdge(dut.clk)  # the counter stops at this edge (irq seen high)
        await ReadOnly()
        meas, meas_on = int(dut.meas_cyc.value), int(dut.meas_on.value)
        await RisingEdge(dut.clk)
        vals = await _status(lite, regs)
        await lite.write(regs["IRQ_STATUS"], _words([vals["irq_status"]]))
        await RisingEdge(dut.clk)
        await ReadOnly()
        irq_after = int(dut.irq.value)
        await RisingEdge(dut.clk)
        dut.err_lo.value = 0
        dut.err_hi.value = 0
        if cmd.get("dump"):
            first, last, did = cmd["dump"]
            dut.dump_lo.value = first
            dut.dump_hi.value = last
            dut.dump_id.value = did
            await RisingEdge(dut.clk)
            dut.dump_go.value = 1
            await _edges(dut, 2)
            dut.dump_go.value = 0
            await RisingEdge(dut.clk)
        results["commands"].append({
            "name": name, "measured": meas, "meas_stopped": not meas_on, "irq_after_clear": irq_after,
            "prot_err": int(dut.prot_err.value), "rd_beats": int(dut.rd_beats.value),
            "wr_beats": int(dut.wr_beats.value), **vals})
        if cmd.get("reset") == "end":
            await FallingEdge(dut.clk)
            results["commands"][-1].update(await _reset(dut, lite, regs, irq_en))
    Path("results.json").write_text(json.dumps(results, indent=1))
    if results["readback"]:
        raise MismatchError("register read-back: " + "; ".join(results["readback"][:8]))
