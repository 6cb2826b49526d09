"""cocotb testbench of ``sws_top``: layers through the AXI4-Stream ports (cocotbext-axi).

Payload (``t2c_sim.cosim.sim.load_payload``): ``params`` (toplevel parameters), ``layers`` (per
layer: ``name``, ``rows``, ``c_out``, ``y_signed``, ``in_beats``, ``budget`` cycles), arrays
``frame_<i>`` (``[beats, LANES]`` uint8 input frame) and ``y_<i>`` (expected ``y[P, C_out]``),
``pause_in`` / ``pause_out`` (probability that the source withholds tvalid / the sink withholds
tready on a cycle; 0 = no back-pressure), ``seed`` (of both pause generators).

Every frame is queued at once (back-to-back layers). A monitor counts clock edges, the beats of
each layer on both streams, and checks the output rule "tvalid stays high, tdata and tlast stay
stable until accepted". Outputs are compared with the expected arrays (the first mismatch is
reported with its layer, tile, row and channel); per-layer cycles (first input beat accepted to
last output beat accepted), the DUT's ``cycles_o`` and ``err_o`` go to ``sws_results.json`` in
the run directory for the test to compare with the cycle model.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import sys
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from t2c_sim.cosim.sim import load_payload

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sws_stream import tiles, unpack_output  # noqa: E402

log = logging.getLogger("cocotb.tb.sws")
RESULTS = "sws_results.json"


def _pauses(rng: random.Random, prob: float):
    while True:
        yield rng.random() < prob


class _Monitor:
    """Counts edges and per-layer beats on both streams; checks output stability."""

    def __init__(self, dut, layers: list[dict], out_beats: list[int]) -> None:
        self.dut = dut
        self.in_ends = list(itertools.accumulate(ly["in_beats"] for ly in layers))
        self.in_starts = [0, *self.in_ends[:-1]]
        self.out_ends = list(itertools.accumulate(out_beats))
        n = len(layers)
        self.first_in = [None] * n
        self.last_out = [None] * n
        self.cycles_o = [None] * n
        self.err_o = [None] * n
        self.edge = 0
        self.errors: list[str] = []

    async def run(self) -> None:
        d = self.dut
        clk = RisingEdge(d.clk_i)
        n_in = n_out = 0
        li_in = li_out = 0
        held = None
        read_at: int | None = None
        while True:
            await clk
            self.edge += 1
            if read_at is not None:
                self.cycles_o[read_at] = int(d.cycles_o.value)
                self.err_o[read_at] = int(d.err_o.value)
                read_at = None
            if d.s_axis_tvalid.value and d.s_axis_tready.value:
                while li_in < len(self.in_starts) and n_in >= self.in_ends[li_in]:
                    li_in += 1
                if li_in < len(self.in_starts) and n_in == self.in_starts[li_in]:
                    self.first_in[li_in] = self.edge
                n_in += 1
            ov = bool(d.m_axis_tvalid.value)
            if held is not None:
                now = (ov, str(d.m_axis_tdata.value), bool(d.m_axis_tlast.value))
                if now != held and len(self.errors) < 5:
                    self.errors.append(f"edge {self.edge}: output beat changed while stalled: "
                                       f"{held} -> {now}")
                held = None
            if ov:
                if d.m_axis_tready.value:
                    n_out += 1
                    if li_out < len(self.out_ends) and n_out == self.out_ends[li_out]:
                        self.last_out[li_out] = self.edge
                        read_at = li_out
                        li_out += 1
                else:
                    held = (True, str(d.m_axis_tdata.value), bool(d.m_axis_tlast.value))


def _first_mismatch(got: np.ndarray, exp: np.ndarray, params: dict) -> str:
    p, c = (int(v) for v in np.argwhere(got != exp)[0])
    n = int(np.count_nonzero(got != exp))
    tile = (p // int(params["ACC_DEPTH"]), c // int(params["COLS"]))
    return (f"{n} mismatching output(s); first at row {p}, channel {c} (row tile {tile[0]}, "
            f"channel tile {tile[1]}): got {got[p, c]}, expected {exp[p, c]}")


@cocotb.test()
async def run_layers(dut):
    """Stream every layer of the payload through the DUT and check it."""
    pl = load_payload()
    params = pl["params"]
    layers = pl["layers"]
    for name in ("cocotb.sws_top.s_axis", "cocotb.sws_top.m_axis"):
        logging.getLogger(name).setLevel(logging.WARNING)
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    dut.rst_ni.value = 0
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk_i, dut.rst_ni,
                             reset_active_level=False)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk_i, dut.rst_ni,
                         reset_active_level=False)
    for _ in range(4):
        await RisingEdge(dut.clk_i)
    dut.rst_ni.value = 1
    await RisingEdge(dut.clk_i)
    seed = int(pl.get("seed", 1))
    if pl.get("pause_in", 0) > 0:
        source.set_pause_generator(_pauses(random.Random(seed), float(pl["pause_in"])))
    if pl.get("pause_out", 0) > 0:
        sink.set_pause_generator(_pauses(random.Random(seed + 1), float(pl["pause_out"])))

    n_tiles = [len(tiles(ly["rows"], ly["c_out"], params)) for ly in layers]
    out_beats = [ly["rows"] * -(-ly["c_out"] // int(params["COLS"])) for ly in layers]
    mon = _Monitor(dut, layers, out_beats)
    cocotb.start_soon(mon.run())
    for i in range(len(layers)):
        source.send_nowait(AxiStreamFrame(pl[f"frame_{i}"].tobytes()))

    failures: list[str] = []
    for i, ly in enumerate(layers):
        data = bytearray()
        for t in range(n_tiles[i]):
            try:
                frame = await with_timeout(sink.recv(), int(ly["budget"]) * 10, "ns")
            except cocotb.triggers.SimTimeoutError:
                raise AssertionError(
                    f"layer {ly['name']}: timeout after {ly['budget']} cycles waiting for output "
                    f"tile {t} of {n_tiles[i]} (the DUT stopped producing output)") from None
            data += bytes(frame.tdata)
        try:
            got = unpack_output(data, ly["rows"], ly["c_out"], params, ly["y_signed"])
        except ValueError as e:  # wrong number of output beats: tlast misplaced
            failures.append(f"layer {ly['name']}: {e} (tlast framing of the output is wrong)")
            break
        exp = np.asarray(pl[f"y_{i}"], dtype=np.int64)
        if not np.array_equal(got, exp):
            failures.append(f"layer {ly['name']}: {_first_mismatch(got, exp, params)}")
    for _ in range(3):
        await RisingEdge(dut.clk_i)
    res = [{"name": ly["name"], "first_in": mon.first_in[i], "last_out": mon.last_out[i],
            "measured": (mon.last_out[i] - mon.first_in[i] + 1)
            if mon.first_in[i] is not None and mon.last_out[i] is not None else None,
            "cycles_o": mon.cycles_o[i], "err_o": mon.err_o[i]}
           for i, ly in enumerate(layers)]
    Path(RESULTS).write_text(json.dumps({"layers": res, "edges": mon.edge,
                                         "protocol_errors": mon.errors}, indent=1))
    if mon.errors:
        failures.append("output stream protocol: " + "; ".join(mon.errors))
    if failures:
        raise AssertionError("mismatch: " + " | ".join(failures[:4]))


@cocotb.test()
async def run_errors(dut):
    """Error flags: each payload step sends its frames and checks err_o (and the output if any).

    Step fields: ``name``, ``frames`` (array names, sent in order), ``err`` (expected err_o once
    the step's input has been consumed), ``outputs`` (expected output beats; 0 for a refused
    layer), and when ``y`` names an array, the outputs are compared with it.
    """
    pl = load_payload()
    params = pl["params"]
    for name in ("cocotb.sws_top.s_axis", "cocotb.sws_top.m_axis"):
        logging.getLogger(name).setLevel(logging.WARNING)
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    dut.rst_ni.value = 0
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk_i, dut.rst_ni,
                             reset_active_level=False)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk_i, dut.rst_ni,
                         reset_active_level=False)
    for _ in range(4):
        await RisingEdge(dut.clk_i)
    dut.rst_ni.value = 1
    await RisingEdge(dut.clk_i)
    failures = []
    for st in pl["steps"]:
        for f in st["frames"]:
            source.send_nowait(AxiStreamFrame(pl[f].tobytes()))
        data = bytearray()
        try:
            for _ in range(len(tiles(st["rows"], st["c_out"], params)) if st["outputs"] else 0):
                frame = await with_timeout(sink.recv(), 200000, "ns")
                data += bytes(frame.tdata)
            await with_timeout(source.wait(), 200000, "ns")
        except cocotb.triggers.SimTimeoutError:
            failures.append(f"step {st['name']}: timeout (the DUT stopped consuming its input or "
                            "producing output); later steps skipped")
            break
        for _ in range(40):
            await RisingEdge(dut.clk_i)
        if not sink.empty():
            failures.append(f"step {st['name']}: unexpected output beats")
            sink.clear()
        if int(dut.busy_o.value):
            failures.append(f"step {st['name']}: busy_o still high after the step")
        err = int(dut.err_o.value)
        if err != st["err"]:
            failures.append(f"step {st['name']}: err_o = {err:#05b}, expected {st['err']:#05b}")
        if st.get("y"):
            got = unpack_output(data, st["rows"], st["c_out"], params, st["y_signed"])
            if not np.array_equal(got, pl[st["y"]]):
                failures.append(f"step {st['name']}: {_first_mismatch(got, pl[st['y']], params)}")
    if failures:
        raise AssertionError("mismatch: " + " | ".join(failures))
