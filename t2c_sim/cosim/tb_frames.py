"""cocotb test module of the stream and AXI profiles (runs inside the simulator).

The generated harness (:mod:`t2c_sim.cosim.profiles.harness`) plays every frame (a stream frame
or an AXI job) by itself in HDL; this module only watches: for each frame it waits for the
harness's ``frame_done_o`` pulse under a watchdog of ``limits[i]`` cycles, then for
``finished_o``. A frame that does not end in time stops the run with a
:class:`~t2c_sim.errors.SimulationError` naming the layer and frame and how far it got
(``progress_in``/``progress_out``: the harness's counters of input and output beats, or of
register and memory transactions). Payload: ``names``, ``limits`` (cycles per frame),
``period_ns``, ``expect_in``, ``expect_out`` (per frame, for the message).
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import First, RisingEdge, Timer

from t2c_sim.cosim.sim import load_payload
from t2c_sim.errors import SimulationError


@cocotb.test()
async def run_frames(dut) -> None:
    """Watch every frame of the payload; fail on a frame that does not end in time."""
    pl = load_payload()
    period = int(pl["period_ns"])
    for i, (name, limit) in enumerate(zip(pl["names"], pl["limits"])):
        timer = Timer(int(limit) * period, unit="ns")
        fired = await First(RisingEdge(dut.frame_done_o), timer)
        if fired is timer:
            raise SimulationError(
                f"{name}: no end within {limit} cycles (watchdog); {int(dut.progress_in.value)} "
                f"of {pl['expect_in'][i]} {pl.get('in_what', 'input beats')} and "
                f"{int(dut.progress_out.value)} of {pl['expect_out'][i]} "
                f"{pl.get('out_what', 'output beats')} so far")
    timer = Timer(1000 * period, unit="ns")
    if not int(dut.finished_o.value):
        fired = await First(RisingEdge(dut.finished_o), timer)
        if fired is timer:
            raise SimulationError("the harness did not finish after the last frame")
