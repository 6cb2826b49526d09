"""cocotb test of ``t2c_accel_top``'s requantizer-latency self-check (``err_o[7]``), by fault
injection.

Written for mutation closure: the top checks in every drain cycle that the requantizers'
output valids ``rq_v`` equal the bit its own delay line ``dlv_q`` (``RQ_LAT`` long) predicts,
and raises ``err_o[7]`` on a skew. Correct RTL never has one, so no layer can show whether the
check works. Here a run goes through with zeroed memories (``err_o[7]`` must stay 0), then the
same run again with one fault: right after its start, while nothing drains (``dlv_q`` and
``rq_v`` are 0), ``dlv_q`` gets a valid that no requantizer will produce (bit ``RQ_LAT - 2``:
it reaches the compared bit ``RQ_LAT - 1`` after one edge), and ``err_o[7]`` must be set when
the run is done. Only bit 7 is checked (bit 6, the shift check, reads the channel words).

Payload (:func:`t2c_sim.cosim.sim.load_payload`): ``params`` (unused).
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from t2c_sim.closure.tb_reset_idle import reset
from t2c_sim.errors import MismatchError, SimulationError

RQ_LAT = 3  # t2c_accel_top's localparam (t2c_requant's LATENCY)
ERR_SKEW = 1 << 7


def _value(v, what: str) -> int:
    if not v.is_resolvable:
        raise MismatchError(f"{what} = {v} (not 0 or 1)")
    return int(v)


async def _run(dut, inject: bool, limit: int = 500) -> int:
    """One 1x1x1 run (one row, one group, one column); return ``err_o`` when done."""
    dut.start_i.value = 1
    await RisingEdge(dut.clk_i)
    dut.start_i.value = 0
    await RisingEdge(dut.clk_i)
    if inject:
        await ReadOnly()
        state = {n: _value(getattr(dut, n).value, n) for n in ("busy_o", "dlv_q", "rq_v")}
        if state != {"busy_o": 1, "dlv_q": 0, "rq_v": 0}:
            raise SimulationError(f"self-check bench: not idle in the drain after the start: "
                                  f"{state}")
        await RisingEdge(dut.clk_i)
        dut.dlv_q.value = 1 << (RQ_LAT - 2)
    for _ in range(limit):
        await ReadOnly()
        if _value(dut.done_o.value, "done_o"):
            err = dut.err_o.value  # bit 7 (the MSB), even if bit 6 is unresolved
            return _value(err, "err_o") if not inject else int(str(err)[0] == "1")
        await RisingEdge(dut.clk_i)
    raise SimulationError(f"self-check bench: done_o not seen within {limit} cycles")


@cocotb.test()
async def latency_skew(dut) -> None:
    """A clean run leaves ``err_o[7]`` at 0; an injected valid skew sets it."""
    await reset(dut)
    dut.cfg_first_i.value = 1
    dut.cfg_last_i.value = 1
    for sel in (0, 1, 2):  # zero the words the run reads (act, wgt, ch at address 0..3)
        for addr in range(4):
            dut.hw_en_i.value, dut.hw_sel_i.value, dut.hw_addr_i.value = 1, sel, addr
            await RisingEdge(dut.clk_i)
    dut.hw_en_i.value = 0
    dut.cfg_rows_i.value, dut.cfg_groups_i.value, dut.cfg_cols_i.value = 1, 1, 1
    dut.cfg_a_signed_i.value = 1
    dut.cfg_hi_i.value = 127
    dut.cfg_lo_i.value = (-128) & ((1 << len(dut.cfg_lo_i)) - 1)
    await RisingEdge(dut.clk_i)
    err = await _run(dut, inject=False)
    if err & ERR_SKEW:
        raise MismatchError(f"a run without a fault raised err_o[7] (err_o = {err:#x})")
    await RisingEdge(dut.clk_i)
    if not await _run(dut, inject=True):
        raise MismatchError("an injected requantizer valid skew (a dlv_q bit no requantizer "
                            "matches) did not raise err_o[7]")
