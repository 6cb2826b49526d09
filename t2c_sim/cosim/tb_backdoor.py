"""cocotb test module of the back-door profile (:mod:`t2c_sim.cosim.profiles.backdoor`).

Runs inside the simulator. The DUT's harness does the per-cycle work in HDL; this module only
starts each run (for our accelerator a tile, or one K-chunk of a split tile) and waits for its
``tile_done_o`` under a watchdog derived from the cycle model. The harness protocol: registers
``rst_n`` (released by the harness), ``go_i`` and ``tile_i`` (driven here: run ``tile_i``
starts when ``go_i`` is high at a rising edge of ``clk``), ``tile_done_o`` (rises when the run
ended), ``tile_err_o`` (the DUT's error flags of that run) and ``busy``. Payload (JSON,
:func:`t2c_sim.cosim.sim.load_payload`): ``tiles`` (global run numbers to run, in order),
``names`` ("layer tile i [chunk c/n]" per run, for messages), ``limits`` (watchdog cycles per
run), ``predicted`` (cycle model per run), ``err_names`` (optional: the name of each error
flag bit, for messages).
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

from t2c_sim.cosim.sim import load_payload
from t2c_sim.errors import SimulationError

CLOCK_NS = 10  # the harness clock period


@cocotb.test()
async def run_tiles(dut) -> None:
    """Run every requested run; fail with :class:`SimulationError` on a hang or error flag."""
    pl = load_payload()
    err_names = list(pl.get("err_names") or [])
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
            names = ",".join(n for i, n in enumerate(err_names) if err >> i & 1)
            raise SimulationError(f"layer {name}: accelerator error flags "
                                  f"{err:#04x}" + (f" ({names})" if names else ""))
        await RisingEdge(dut.clk)
