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
* ``readback``: optional list of register checks (see :func:`readback`).

Per command it arms the harness's cycle counter, writes the registers, waits for ``irq`` (or
the watchdog), reads ``STATUS``, ``ERR``, ``JOBS_DONE``, ``CYCLES``, ``CORE_CYCLES``, clears
``IRQ_STATUS`` (W1C) and checks that ``irq`` falls; everything goes to ``results.json`` in the
run directory. A hang raises :class:`SimulationError` naming the command.
"""

from __future__ import annotations

import json
from pathlib import Path

import cocotb
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer
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
    await lite.write(regs["IRQ_EN"], _words([pl.get("irq_en", 3)]))
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
        vals = {}
        for r in ("STATUS", "ERR", "IRQ_STATUS", "JOBS_DONE", "CYCLES", "CORE_CYCLES"):
            vals[r] = int.from_bytes((await lite.read(regs[r], 4)).data, "little")
        await lite.write(regs["IRQ_STATUS"], _words([vals["IRQ_STATUS"]]))
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
            "wr_beats": int(dut.wr_beats.value), **{k.lower(): v for k, v in vals.items()}})
    Path("results.json").write_text(json.dumps(results, indent=1))
    if results["readback"]:
        raise MismatchError("register read-back: " + "; ".join(results["readback"][:8]))
