"""cocotb test of ``t2c_accel_top`` after reset: every control register is defined and idle.

Written for mutation closure: the layer and port-level testbenches start a run a few cycles
after reset, which hides a control register left out of the reset (it is overwritten before
anything reads it). Here, right after two reset cycles and then for ``idle`` cycles with
``start_i`` low, every control register listed in ``CONTROL`` must read 0, its reset value
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

CONTROL = ("busy_q", "done_q", "err_q", "cycles_q", "iss_q", "vld1_q", "clr1_q", "last1_q",
           "cap_q", "dr_q", "drow_q", "dlv_q", "dlwe_q", "dllast_q")
IDLE_OUTPUTS = ("busy_o", "done_o", "err_o", "cycles_o")


@cocotb.test()
async def reset_idle(dut) -> None:
    """After reset and while idle, control state is defined and the status outputs are 0."""
    idle = int(load_payload().get("idle", 8))
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    for name in ("start_i", "hw_en_i", "hw_sel_i", "hw_bank_i", "hw_addr_i", "hw_data_i",
                 "hr_addr_i", "cfg_rows_i", "cfg_groups_i", "cfg_cols_i", "cfg_a_signed_i",
                 "cfg_zy_i", "cfg_lo_i", "cfg_hi_i", "cfg_mode_i"):
        getattr(dut, name).value = 0
    dut.rst_ni.value = 0
    for _ in range(2):
        await RisingEdge(dut.clk_i)
    dut.rst_ni.value = 1
    for cycle in range(idle):
        await ReadOnly()
        for name in CONTROL:
            v = getattr(dut, name).value
            if not v.is_resolvable or int(v) != 0:
                raise MismatchError(f"cycle {cycle} after reset: control register {name} = "
                                    f"{v}, expected its reset value 0")
        for name in IDLE_OUTPUTS:
            v = getattr(dut, name).value
            if not v.is_resolvable or int(v) != 0:
                raise MismatchError(f"cycle {cycle} after reset: {name} = {v}, expected 0 "
                                    "while idle")
        await RisingEdge(dut.clk_i)
