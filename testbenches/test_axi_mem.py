"""cocotb testbench of ``t2c_sim/cosim/hdl/t2c_axi_mem.v``: the timing the front-door cycle model
assumes, data, fault injection and protocol checks, driven cycle by cycle from Python.

Clock edges are numbered; a transfer "at edge e" is valid and ready in the cycle before e.

* ``latency``: a write burst's response is taken at ``last W edge + WR_LAT + 1``; a read burst's
  first beat at ``AR edge + RD_LAT + 1``, then one beat per cycle, RLAST on the last; two ARs on
  consecutive edges stream back to back; the data read equals the data written (WSTRB honoured).
* ``errors``: a burst overlapping the SLVERR window answers SLVERR (a write there leaves the
  memory unchanged); bursts longer than MAX_BURST, crossing 4 KB, or with WLAST on the wrong
  beat are counted in ``prot_err_o`` and answered with SLVERR.

Payload: ``params`` (RD_LAT, WR_LAT, MAX_BURST, DATA_W, ...).
"""

from __future__ import annotations

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from t2c_sim.cosim.sim import load_payload
from t2c_sim.errors import MismatchError


class Bus:
    """Drives the slave's inputs at falling edges and counts rising edges."""

    def __init__(self, dut, p: dict) -> None:
        self.dut, self.p = dut, p
        self.edge = 0
        self.bytes = p["DATA_W"] // 8
        self.size = self.bytes.bit_length() - 1

    async def tick(self) -> None:
        await RisingEdge(self.dut.clk_i)
        self.edge += 1
        await FallingEdge(self.dut.clk_i)

    def idle(self) -> None:
        for s in ("arvalid", "awvalid", "wvalid"):
            getattr(self.dut, f"s_axi_{s}").value = 0
        self.dut.s_axi_rready.value = 1
        self.dut.s_axi_bready.value = 1

    async def write(self, addr: int, beats: list[int], strb: int | None = None,
                    last_at: int | None = None) -> tuple[int, int, int]:
        """One write burst (AW, then the beats); return (AW edge, last W edge, B edge, BRESP)."""
        d = self.dut
        d.s_axi_awaddr.value = addr
        d.s_axi_awlen.value = len(beats) - 1
        d.s_axi_awsize.value = self.size
        d.s_axi_awburst.value = 1
        d.s_axi_awvalid.value = 1
        aw_edge = await self._wait("awready")
        d.s_axi_awvalid.value = 0
        last_edge = 0
        for i, b in enumerate(beats):
            d.s_axi_wdata.value = b
            d.s_axi_wstrb.value = (1 << self.bytes) - 1 if strb is None else strb
            d.s_axi_wlast.value = int(i == (len(beats) - 1 if last_at is None else last_at))
            d.s_axi_wvalid.value = 1
            last_edge = await self._wait("wready")
        d.s_axi_wvalid.value = 0
        b_edge, resp = await self._wait_valid("bvalid", "bresp")
        return aw_edge, last_edge, b_edge, resp

    async def read(self, bursts: list[tuple[int, int]]) -> tuple[list[int], list[tuple]]:
        """ARs on consecutive edges; return (AR edges, beats as (edge, data, resp, last))."""
        d = self.dut
        ar_edges = []
        for addr, n in bursts:
            d.s_axi_araddr.value = addr
            d.s_axi_arlen.value = n - 1
            d.s_axi_arsize.value = self.size
            d.s_axi_arburst.value = 1
            d.s_axi_arvalid.value = 1
            await ReadOnly()
            ready = int(d.s_axi_arready.value)
            beats_now = self._r_sample()
            await self.tick()
            if not ready:
                raise MismatchError(f"ARREADY low at edge {self.edge}")
            ar_edges.append(self.edge)
            self._pending = getattr(self, "_pending", []) + beats_now
        d.s_axi_arvalid.value = 0
        beats = list(getattr(self, "_pending", []))
        self._pending = []
        want = sum(n for _, n in bursts)
        for _ in range(200):
            if len(beats) >= want:
                break
            await ReadOnly()
            beats += self._r_sample()
            await self.tick()
        return ar_edges, beats

    def _r_sample(self) -> list[tuple]:
        d = self.dut
        if int(d.s_axi_rvalid.value):
            v = d.s_axi_rdata.value  # never-written memory reads X on Icarus: -1
            return [(self.edge + 1, int(v) if v.is_resolvable else -1, int(d.s_axi_rresp.value),
                     int(d.s_axi_rlast.value))]
        return []

    async def _wait(self, ready: str) -> int:
        for _ in range(200):
            await ReadOnly()
            ok = int(getattr(self.dut, f"s_axi_{ready}").value)
            await self.tick()
            if ok:
                return self.edge
        raise MismatchError(f"{ready} never high")

    async def _wait_valid(self, valid: str, resp: str) -> tuple[int, int]:
        for _ in range(200):
            await ReadOnly()
            ok = int(getattr(self.dut, f"s_axi_{valid}").value)
            r = int(getattr(self.dut, f"s_axi_{resp}").value) if ok else 0
            await self.tick()
            if ok:
                return self.edge, r
        raise MismatchError(f"{valid} never high")


async def _setup(dut) -> Bus:
    p = load_payload()["params"]
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    bus = Bus(dut, p)
    bus.idle()
    dut.err_lo_i.value = 0
    dut.err_hi_i.value = 0
    dut.rst_ni.value = 0
    await FallingEdge(dut.clk_i)
    for _ in range(3):
        await bus.tick()
    dut.rst_ni.value = 1
    await bus.tick()
    return bus


def _expect(cond: bool, what: str) -> None:
    if not cond:
        raise MismatchError(f"t2c_axi_mem: {what}")


@cocotb.test()
async def latency(dut) -> None:
    bus = await _setup(dut)
    p = bus.p
    rl, wl = p["RD_LAT"], p["WR_LAT"]
    data = [0x1111_0000_0000_0001 * (i + 1) & ((1 << p["DATA_W"]) - 1) for i in range(4)]
    _, last, b_edge, resp = await bus.write(0x40, data)
    _expect(resp == 0 and b_edge == last + wl + 1,
            f"B taken at edge {b_edge}, expected {last} + WR_LAT {wl} + 1 (resp {resp})")
    # a partial write: only byte 0 of beat 1 changes
    await bus.write(0x40 + bus.bytes, [0xAB], strb=0x1)
    data[1] = (data[1] & ~0xFF) | 0xAB
    ar, beats = await bus.read([(0x40, 4)])
    _expect([b[0] for b in beats] == [ar[0] + rl + 1 + i for i in range(4)],
            f"read beats at edges {[b[0] for b in beats]}, AR at {ar[0]}, RD_LAT {rl}")
    _expect([b[1] for b in beats] == data, f"read back {[hex(b[1]) for b in beats]}, wrote "
                                           f"{[hex(v) for v in data]}")
    _expect([b[3] for b in beats] == [0, 0, 0, 1] and not any(b[2] for b in beats),
            f"RLAST/RRESP {[(b[3], b[2]) for b in beats]}")
    # two bursts on consecutive edges: the second follows the first without a gap
    ar, beats = await bus.read([(0x40, 2), (0x40 + 2 * bus.bytes, 2)])
    edges = [b[0] for b in beats]
    _expect(edges == [ar[0] + rl + 1 + i for i in range(4)],
            f"back-to-back bursts at edges {edges}, ARs at {ar}")
    _expect([b[3] for b in beats] == [0, 1, 0, 1], "RLAST of back-to-back bursts")


@cocotb.test()
async def errors(dut) -> None:
    bus = await _setup(dut)
    p = bus.p
    d = dut
    await bus.write(0x100, [5, 6])
    d.err_lo_i.value = 0x100 + bus.bytes
    d.err_hi_i.value = 0x100 + 2 * bus.bytes
    _, beats = await bus.read([(0x100, 2)])
    _expect([b[2] for b in beats] == [2, 2], f"read over the SLVERR window: RRESP "
                                             f"{[b[2] for b in beats]}")
    *_, resp = await bus.write(0x100, [7, 8])
    _expect(resp == 2, f"write over the SLVERR window: BRESP {resp}")
    d.err_lo_i.value = 0
    d.err_hi_i.value = 0
    _, beats = await bus.read([(0x100, 2)])
    _expect([b[1] for b in beats] == [5, 6] and not any(b[2] for b in beats),
            f"an SLVERR write changed the memory: {[b[1] for b in beats]}")
    _expect(int(d.prot_err_o.value) == 0, "fault injection counted as a protocol error")
    cases = [("burst longer than MAX_BURST", "read", (0x200, p["MAX_BURST"] + 1)),
             ("4 KB crossed", "read", (0x1000 - bus.bytes, 2)),
             ("WLAST early", "write", (0x300, 3))]
    for n, (what, kind, (addr, beats_n)) in enumerate(cases, 1):
        if kind == "read":
            _, beats = await bus.read([(addr, beats_n)])
            resp = beats[0][2] if beats else -1
        else:
            *_, resp = await bus.write(addr, list(range(beats_n)), last_at=beats_n - 2)
        _expect(resp == 2, f"{what}: answered {resp}, expected SLVERR")
        _expect(int(d.prot_err_o.value) >= n, f"{what}: prot_err_o = {int(d.prot_err_o.value)}")
