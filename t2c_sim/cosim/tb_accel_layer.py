"""cocotb test module driven by :func:`t2c_sim.cosim.run.run_layer` (runs inside the simulator).

The harness (``hdl/t2c_harness.v``) does the per-cycle work in HDL; this module only starts
each accelerator run (a tile, or one K-chunk of a split tile) and waits for its
``tile_done_o`` under a watchdog derived from the cycle model. Payload (JSON,
:func:`t2c_sim.cosim.sim.load_payload`): ``tiles`` (global run numbers to run, in order),
``names`` ("layer tile i [chunk c/n]" per run, for messages), ``limits`` (watchdog cycles per
run), ``predicted`` (cycle model per run).
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

from t2c_sim.cosim.sim import load_payload
from t2c_sim.errors import SimulationError

CLOCK_NS = 10  # the harness clock period
ERR_NAMES = ("zero-size", "act-depth", "wgt-depth", "ch-depth", "out-depth", "lo>hi|run-mode",
             "shift>SHIFT_MAX", "requant-skew")


@cocotb.test()
async def run_tiles(dut) -> None:
    """Run every requested run; fail with :class:`SimulationError` on a hang or error flag."""
    pl = load_payload()
    while not int(dut.rst_n.value):
        await RisingEdge(dut.clk)
    for t, name, limit, pred in zip(pl["tiles"], pl["names"], pl["limits"], pl["predicted"]):
        dut.tile_i.value = int(t)
        dut.go_i.value = 1
        await RisingEdge(dut.clk)
        dut.go_i.value = 0
        timer = Timer(int(limit) * CLOCK_NS, unit="ns")
        fired = await First(RisingEdge(dut.tile_done_o), timer)
        if fired is timer:
            raise SimulationError(
                f"layer {name}: no done within {limit} cycles (cycle model predicts "
                f"{pred}); watchdog stopped the run (busy={dut.busy.value})")
        await ReadOnly()
        err = int(dut.tile_err_o.value)
        if err:
            names = ",".join(n for i, n in enumerate(ERR_NAMES) if err >> i & 1)
            raise SimulationError(f"layer {name}: accelerator error flags "
                                  f"{err:#04x} ({names})")
        await RisingEdge(dut.clk)
