"""cocotb test of ``t2c_accel_top`` after reset: every control register is defined and idle.

Written for mutation closure: the layer and port-level testbenches start a run a few cycles
after reset, which hides a control register left out of the reset (it is overwritten before
anything reads it). Here, right after two reset cycles and then for ``idle`` cycles with
``start_i`` low, every control register listed in ``CONTROL`` must read its reset value
(X on Icarus, which starts registers at X, means "not reset"), and the status outputs must be
idle: ``busy_o = 0``, ``done_o = 0``, ``err_o = 0``, ``cycles_o = 0``. (STYLE.md, Verilog 4:
reset control state, not datapath.)

Payload (:func:`t2c_sim.cosim.sim.load_payload`): ``params`` (unused), ``idle`` (cycles).
"""

from __future__ import annotations

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from t2c_sim.cosim.sim import load_payload
from t2c_sim.errors import MismatchError

# control registers and their reset values (first_q / last_q reset to 1: an unsplit run)
CONTROL = {"busy_q": 0, "done_q": 0, "err_q": 0, "cycles_q": 0, "iss_q": 0, "vld1_q": 0,
           "clr1_q": 0, "last1_q": 0, "cap_q": 0, "dr_q": 0, "drow_q": 0, "dlv_q": 0,
           "dlwe_q": 0, "dllast_q": 0, "first_q": 1, "last_q": 1}
IDLE_OUTPUTS = ("busy_o", "done_o", "err_o", "cycles_o")
INPUTS = ("start_i", "hw_en_i", "hw_sel_i", "hw_addr_i", "hw_data_i", "hr_addr_i", "cfg_rows_i",
          "cfg_groups_i", "cfg_cols_i", "cfg_a_signed_i", "cfg_first_i", "cfg_last_i",
          "cfg_zy_i", "cfg_lo_i", "cfg_hi_i", "cfg_mode_i")


async def reset(dut, edges: int = 2) -> None:
    """Start the clock, set every input to 0, hold ``rst_ni`` low for ``edges`` rising edges
    and release it (the closure's benches of ``t2c_accel_top``)."""
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    for name in INPUTS:
        getattr(dut, name).value = 0
    dut.rst_ni.value = 0
    for _ in range(edges):
        await RisingEdge(dut.clk_i)
    dut.rst_ni.value = 1


@cocotb.test()
async def reset_idle(dut) -> None:
    """After reset and while idle, control state is defined and the status outputs are 0."""
    idle = int(load_payload().get("idle", 8))
    await reset(dut)
    for cycle in range(idle):
        await ReadOnly()
        for name, want in CONTROL.items():
            v = getattr(dut, name).value
            if not v.is_resolvable or int(v) != want:
                raise MismatchError(f"cycle {cycle} after reset: control register {name} = "
                                    f"{v}, expected its reset value {want}")
        for name in IDLE_OUTPUTS:
            v = getattr(dut, name).value
            if not v.is_resolvable or int(v) != 0:
                raise MismatchError(f"cycle {cycle} after reset: {name} = {v}, expected 0 "
                                    "while idle")
        await RisingEdge(dut.clk_i)
