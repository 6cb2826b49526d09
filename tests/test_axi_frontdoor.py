"""The front door (``rtl/t2c_axi_accel.v``): AXI4-Lite registers, AXI4 DMA, exact cycle model.

Layers run through the DUT contract (the ``axi`` profile, ``--dut t2c_axi_accel``;
:func:`run_layers_frontdoor` binds it for an array and bus settings). Oracles: the golden model
(``rec.y``, ``rec.acc``), the back door (:func:`run_layers` on the same records: the same
outputs and accumulators), :func:`t2c_sim.estimate.frontdoor.frontdoor_cycles` of the record
for the cycles from the first register write to the interrupt (and the ``CYCLES`` register,
2 less than the command), and the memory model's beat counters against the model's beats.
Faults the checks must catch: RTL mutants of the DMA (burst length off by one, a lost last
word, WLAST early, wrong address steps, one burst less in flight), SLVERR responses injected
by the memory model, invalid descriptors and illegal shapes (the register-level bench,
:func:`run_commands`, cocotbext-axi from Python).

Fast tier: Icarus on K-split and unsplit layers with several latency / burst / width settings,
direct mode, errors, mutants, the unit testbenches; one Verilator case. Slow tier: every
setting on both simulators.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from t2c_sim import estimate
from t2c_sim.config import HwConfig
from t2c_sim.cosim import sim
from t2c_sim.cosim.axi_frontdoor import (
    AXI_RTL_MODULES,
    HARNESS,
    MEM_MODEL,
    REGS,
    frontdoor_dut,
    run_commands,
    run_layers_frontdoor,
)
from t2c_sim.cosim.compare import compare, cycle_mismatch
from t2c_sim.cosim.gemm import gemm_ops
from t2c_sim.cosim.run import RTL_MODULES, run_layers
from t2c_sim.errors import ConfigError, MismatchError, SimulationError
from t2c_sim.estimate.frontdoor import (
    WRITE_EDGES,
    AxiConfig,
    Segment,
    bursts,
    command_cycles,
    frontdoor_cycles,
    layout,
    program_cycles,
    word_bits,
)
from t2c_sim.export.hexfile import read_memh_bytes
from t2c_sim.workloads.gen import random_conv_record, random_linear_record

BUILD = sim.default_build_root()
# banks of one word: every group is a chunk (K-split everywhere), multi-tile
HW_K1 = HwConfig(rows=2, cols=3, n=2, m=4, a_bits=8, w_bits=8, act_depth=2, w_depth=3,
                 out_depth=64, ch_depth=6)
# dense 4:4, 3 rows, banks of 5 words: a few chunks
HW_KD = HwConfig(rows=3, cols=2, n=4, m=4, a_bits=8, w_bits=8, act_depth=15, w_depth=10,
                 out_depth=48, ch_depth=8)
# room for the whole layer: one chunk
HW_S = HwConfig(rows=2, cols=2, n=2, m=4, act_depth=64, w_depth=64, out_depth=64, ch_depth=8)
# tests/test_cosim.py's HW_A (its back-door Verilator build is shared with the fast tier)
HW_A = HwConfig(rows=2, cols=2, n=2, m=4, a_bits=8, w_bits=8, act_depth=64, w_depth=64,
                out_depth=32, ch_depth=8)

AXI = {
    "default": AxiConfig(),
    "lat1_b1_o1": AxiConfig(rd_latency=1, wr_latency=1, burst_len=1, outstanding=1),
    "w32_b4_o2": AxiConfig(data_w=32, burst_len=4, outstanding=2, rd_latency=7, wr_latency=3),
    "w128_b2_lat20": AxiConfig(data_w=128, burst_len=2, outstanding=3, rd_latency=20,
                               wr_latency=11),
    "w256_b16_o1": AxiConfig(data_w=256, burst_len=16, outstanding=1, rd_latency=2,
                             wr_latency=9),
    "b64_o8": AxiConfig(burst_len=64, outstanding=8, rd_latency=3, wr_latency=1),
}


def _layers(seed: int, c_in: int = 24) -> list:
    rng = np.random.default_rng
    return [random_linear_record(rng(seed), c_in=c_in, c_out=5, rows=7, n=2, m=4,
                                 name=f"fc_s{seed}"),
            random_conv_record(rng(seed + 1), c_in=4, c_out=3, h=4, w=3, kh=3, kw=3,
                               padding=(1, 1), n=1, m=4, mode="half_away", name=f"cv_s{seed}")]


HWS = {"k1": HW_K1, "kd": HW_KD, "s": HW_S, "a": HW_A}
C_IN = {"a": 200}  # K-split on HW_A (banks of 32 words): 2 chunks
# (simulator, hw, axi); the fast tier runs the first group
FAST = [("icarus", "k1", "default"), ("icarus", "kd", "w32_b4_o2"), ("icarus", "s", "lat1_b1_o1"),
        ("verilator", "a", "b64_o8")]
# slow: every hw x setting on Icarus (cheap builds), one setting per hw on Verilator
SLOW = [("icarus", h, a) for h in HWS for a in AXI if ("icarus", h, a) not in FAST]
SLOW += [("verilator", "k1", "w128_b2_lat20"), ("verilator", "kd", "w256_b16_o1"),
         ("verilator", "s", "lat1_b1_o1"), ("verilator", "a", "default")]


# ------------------------------------------------------------------------------ the model
@pytest.mark.parametrize("addr,beats,axi,want", [
    (0x00, 7, AxiConfig(burst_len=4), [4, 3]),
    (0x10, 7, AxiConfig(burst_len=4), [2, 4, 1]),          # starts at beat 2 of a window
    (0x00, 1, AxiConfig(), [1]),
    (0x40, 16, AxiConfig(burst_len=1), [1] * 16),
    (0xF80, 64, AxiConfig(data_w=256, burst_len=16), [4, 16, 16, 16, 12]),
    (0x0, 600, AxiConfig(burst_len=256, data_w=64), [256, 256, 88]),
])
def test_bursts_table(addr: int, beats: int, axi: AxiConfig, want: list[int]) -> None:
    assert bursts(addr, beats, axi) == want


def test_bursts_never_cross_a_window() -> None:
    rng = np.random.default_rng(7)
    for _ in range(500):
        axi = AxiConfig(data_w=int(rng.choice([32, 64, 128])), burst_len=int(rng.choice([1, 2, 8,
                                                                                         16])))
        addr = int(rng.integers(0, 1 << 16)) * axi.bytes
        beats = int(rng.integers(1, 300))
        got = bursts(addr, beats, axi)
        assert sum(got) == beats and max(got) <= axi.burst_len, (addr, beats, axi)
        a = addr
        for n in got:  # a burst stays in one window of burst_len beats (so within 4 KB)
            assert a // axi.align == (a + n * axi.bytes - 1) // axi.align, (addr, beats, axi)
            a += n * axi.bytes


@pytest.mark.parametrize("key,value", [("data_w", 48), ("data_w", 2048), ("burst_len", 3),
                                       ("burst_len", 512), ("outstanding", 0),
                                       ("rd_latency", 0), ("wr_latency", 0), ("qdepth", 2),
                                       ("max_burst", 0)])
def test_axi_config_rejects_bad_values(key: str, value: int) -> None:
    kw = {key: value, **({"outstanding": 4} if key == "qdepth" else {})}
    with pytest.raises(ConfigError) as ei:
        AxiConfig(**kw)
    assert ei.value.key == key


def test_burst_window_is_at_most_4k() -> None:
    with pytest.raises(ConfigError, match="4096"):
        AxiConfig(data_w=1024, burst_len=64)


def test_layout_shares_operands_and_aligns() -> None:
    """Act segments are shared by channel tiles, wgt segments by row tiles; all aligned."""
    hw = HwConfig(rows=2, cols=2, n=2, m=4, act_depth=8, w_depth=8, out_depth=16, ch_depth=2)
    rec = random_linear_record(np.random.default_rng(1), c_in=32, c_out=6, rows=9, n=2, m=4)
    plan = estimate.tile_plan(rec, hw)
    axi = AxiConfig(burst_len=8)
    lay = layout(plan, hw, axi)
    assert len(plan.tiles) > 2 and len(plan.chunks) > 1
    assert len(lay.jobs) == plan.runs
    by_rows, by_cols = {}, {}
    for j in lay.jobs:
        t = plan.tiles[j.tile]
        by_rows.setdefault((t.p0, j.chunk), set()).add(j.act.addr)
        by_cols.setdefault((t.c0, j.chunk), set()).add(j.wgt.addr)
        for seg in (j.act, j.wgt, j.ch, j.out, j.acc):
            assert seg.addr % axi.align == 0
        qr, qc = -(-t.rows // hw.rows), -(-t.cols // hw.cols)
        gs = plan.chunks[j.chunk][1]
        assert (j.act.words, j.wgt.words) == (qr * gs, qc * gs)
        assert j.ch.words == (qc if j.chunk == 0 else 0)
        last = j.chunk == len(plan.chunks) - 1
        assert j.out.words == j.acc.words == (t.rows * qc if last else 0)
        assert j.core_cycles == estimate.tile_cycles(t, gs, hw, last=last)
    assert all(len(v) == 1 for v in by_rows.values()) and all(len(v) == 1 for v in by_cols.values())
    outs = sorted((j.out.addr, j.out.words) for j in lay.jobs if j.out.words)
    k = axi.beats(word_bits(hw)["out"])
    assert all(a + n * k * axi.bytes <= b for (a, n), (b, _) in zip(outs, outs[1:]))
    assert outs[0][0] >= lay.out_base and lay.end % axi.align == 0


def test_command_cycles_hand_example() -> None:
    """One job in direct mode, every segment one beat, derived by hand from docs/rtl.md.

    Load accepted at 3; three one-beat bursts presented at 4, 5, 6, taken at 5, 6, 7, their
    beats at 6+L, 7+L, 8+L; core start at 10+L, done (store accepted) at 11+L+W; AW at
    12+L+W, taken 13+L+W; the beat at 14+L+W; B at 15+L+W+WL; interrupt 2 edges later.
    """
    hw = HwConfig(rows=1, cols=1, n=2, m=4, act_depth=4, w_depth=4, out_depth=4, ch_depth=1)
    for lat, wl in ((1, 1), (4, 2), (13, 7)):
        axi = AxiConfig(data_w=128, rd_latency=lat, wr_latency=wl)
        assert all(axi.beats(b) == 1 for b in word_bits(hw).values() if b <= 128)
        job = estimate.frontdoor.Job(run=0, tile=0, chunk=0, core_cycles=17,
                                     act=Segment(0x100, 1), wgt=Segment(0x200, 1),
                                     ch=Segment(0x300, 1), out=Segment(0x400, 1),
                                     acc=Segment())
        assert command_cycles([job], hw, axi, list_mode=False) == 17 + lat + wl + 17


def test_program_cycles_hand_example() -> None:
    """Four register writes, one every 3 edges (fetch, AW+W, B): the START write is taken 9
    edges after the first; the interrupt is sampled ``command + 1`` edges after START; both
    ends counted."""
    assert WRITE_EDGES == 3
    assert program_cycles(100, 4) == 9 + 100 + 2
    assert program_cycles(100, 1) == 102
    with pytest.raises(ConfigError):
        program_cycles(100, 0)


def test_model_grows_with_latency_and_shrinks_with_bursts() -> None:
    rec = _layers(3)[0]
    base = frontdoor_cycles(rec, HW_K1, AxiConfig()).total
    assert frontdoor_cycles(rec, HW_K1, AxiConfig(rd_latency=20)).total > base
    assert frontdoor_cycles(rec, HW_K1, AxiConfig(wr_latency=20)).total > base
    assert frontdoor_cycles(rec, HW_K1, AxiConfig(outstanding=1, rd_latency=10)).total > \
        frontdoor_cycles(rec, HW_K1, AxiConfig(outstanding=4, rd_latency=10)).total
    fd = frontdoor_cycles(rec, HW_K1, AxiConfig())
    assert fd.core == estimate.cycles(rec, HW_K1) and fd.total == fd.lite + fd.command


# ------------------------------------------------------------------------------ co-simulation
def _check_layers(simulator: str, hw_id: str, axi_id: str) -> None:
    hw, axi = HWS[hw_id], AXI[axi_id]
    seed = 10 * list(AXI).index(axi_id) + list(HWS).index(hw_id)
    print(f"seed={seed}")
    recs = _layers(seed, C_IN.get(hw_id, 24))
    assert hw_id != "a" or len(estimate.tile_plan(recs[0], hw).chunks) > 1
    res = run_layers_frontdoor(recs, hw, simulator, axi, build_root=BUILD)
    ref = run_layers(recs, hw, simulator, build_root=BUILD)
    for rec, r, b in zip(recs, res, ref):
        what = f"{simulator} {hw_id} {axi_id} {rec.name}"
        assert np.array_equal(r.y, rec.y) and np.array_equal(r.acc, rec.acc), what
        assert np.array_equal(r.y, b.y) and np.array_equal(r.acc, b.acc), what
        fd = frontdoor_cycles(rec, hw, axi)   # the record's model, independent of the adapter
        (unit,) = r.tiles
        assert (unit.cycles_measured, unit.cycles_predicted) == (fd.total, fd.total), what
        assert r.extra["dut_cycles_0"] == fd.register, what         # the CYCLES register
        assert r.extra["mem_beats_0"] == fd.beats_read + fd.beats_written, what
        assert cycle_mismatch(r) is None and b.cycles == fd.core, what
    print(f"{simulator} {hw_id} {axi_id}: front door {[r.cycles for r in res]} cycles "
          f"(core {[b.cycles for b in ref]})")


@pytest.mark.sim
@pytest.mark.parametrize("simulator,hw_id,axi_id", FAST, ids=["-".join(c) for c in FAST])
def test_frontdoor_layers(simulator: str, hw_id: str, axi_id: str) -> None:
    _check_layers(simulator, hw_id, axi_id)


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("simulator,hw_id,axi_id", SLOW, ids=["-".join(c) for c in SLOW])
def test_frontdoor_layers_more(simulator: str, hw_id: str, axi_id: str) -> None:
    _check_layers(simulator, hw_id, axi_id)


@pytest.mark.sim
def test_grouped_conv_is_one_command_per_group() -> None:
    """A grouped conv: one job per group, each exact against the model of its GEMM."""
    rec = random_conv_record(np.random.default_rng(5), c_in=8, c_out=6, h=4, w=4, groups=2, n=2,
                             m=4, name="gconv")
    dut = frontdoor_dut(HW_K1, AXI["default"], build_root=BUILD)
    (r,) = run_layers_frontdoor([rec], HW_K1, "icarus", AXI["default"], build_root=BUILD)
    assert np.array_equal(r.y, rec.y) and np.array_equal(r.acc, rec.acc)
    assert [t.c0 for t in r.tiles] == [0, 3] and cycle_mismatch(r) is None
    assert sum(t.cycles_measured for t in r.tiles) == dut.adapter.layer_cycles(rec)


# ------------------------------------------------------------------------------ errors
ERR_RD, ERR_WR, ERR_DESC = 0x100, 0x200, 0x400


def _image(rec, hw: HwConfig, axi: AxiConfig):
    """The front door's memory image of a one-GEMM layer (the adapter's) and its layout."""
    dut = frontdoor_dut(hw, axi, build_root=BUILD)
    op = gemm_ops(rec)[0][0]
    img, regions = dut.adapter.axi_layout(op)
    lay = layout(estimate.tile_plan(rec, hw), hw, axi)
    assert regions["desc"][0] == lay.desc_addr and regions["y"][0] == lay.out_base
    return dut, op, img, lay


@pytest.mark.sim
@pytest.mark.parametrize("where,err", [("wgt", ERR_RD), ("acc", ERR_WR),
                                       pytest.param("desc", ERR_RD, marks=pytest.mark.slow)])
def test_slverr_raises_error_flag_and_interrupt(where: str, err: int) -> None:
    """An SLVERR from memory stops the command with ERR set, STATUS error and the interrupt."""
    rec = _layers(3)[0]
    axi = AXI["default"]
    _, _, img, lay = _image(rec, HW_K1, axi)
    job = next(j for j in lay.jobs if j.acc.words and j.run >= 5)
    addr = {"wgt": lay.jobs[3].wgt.addr, "desc": lay.desc_addr + 128 * 4,
            "acc": job.acc.addr}[where]
    out = run_commands(HW_K1, axi, "icarus", [{
        "name": where, "writes": [[REGS["DESC_ADDR"], [lay.desc_addr, len(lay.jobs), 1]]],
        "limit": 100000, "err_window": [addr, addr + 8]}], image=img.tobytes(), build_root=BUILD)
    (c,) = out["commands"]
    assert (c["status"], c["err"], c["irq_status"], c["irq_after_clear"]) == (4, err, 2, 0), c
    assert c["jobs_done"] < len(lay.jobs) or where == "acc"
    assert c["prot_err"] == 0


@pytest.mark.sim
def test_direct_mode_through_the_job_registers() -> None:
    """Descriptor 0 written to the job registers (DESC_COUNT 0): the same outputs as golden."""
    hw = HwConfig(rows=4, cols=4, n=2, m=4, act_depth=64, w_depth=64, out_depth=64, ch_depth=8)
    rec = random_linear_record(np.random.default_rng(8), c_in=16, c_out=4, rows=3, n=2, m=4,
                               name="fc_direct")
    axi = AxiConfig(burst_len=4, rd_latency=3, wr_latency=2)
    dut, op, img, lay = _image(rec, hw, axi)
    assert len(lay.jobs) == 1
    desc = np.frombuffer(img[lay.desc_addr:lay.desc_addr + 80].tobytes(), "<u4").tolist()
    beats = (lay.out_base // axi.bytes, lay.end // axi.bytes - 1, 0)
    out = run_commands(hw, axi, "icarus", [{
        "name": "direct", "writes": [[REGS["JOB_ROWS"], [*desc, 0, 0, 1]]], "limit": 20000,
        "dump": list(beats)}], image=img.tobytes(), build_root=BUILD)
    (c,) = out["commands"]
    assert (c["status"], c["err"], c["jobs_done"]) == (2, 0, 1), c
    raw = read_memh_bytes(Path(out["run_dir"]) / "out0.hex", axi.data_w,
                          beats[1] - beats[0] + 1).reshape(-1)
    y, acc = dut.adapter.axi_unpack(op, raw)
    assert np.array_equal(y, rec.y) and np.array_equal(acc, rec.acc)
    assert c["cycles"] == command_cycles(lay.jobs, hw, axi, list_mode=False) - 2


def _job_words(**kw: int) -> list[int]:
    f = dict(rows=2, groups=1, cols=2, a_signed=1, z_y=0, lo=-128 & 0xFFFFFFFF, hi=127, mode=0,
             first=1, last=1, act_addr=0, act_words=1, wgt_addr=0x40, wgt_words=1,
             ch_addr=0x80, ch_words=1, out_addr=0x100, out_words=2, acc_addr=0x140,
             acc_words=2)
    f.update(kw)
    return [f[n] for n in estimate.frontdoor.DESC_FIELDS]


@pytest.mark.sim
def test_register_map_and_command_errors() -> None:
    """Through the harness: the register map reads back, and bad commands raise their flags."""
    hw, axi = HW_S, AXI["default"]
    params = {"ROWS": hw.rows, "COLS": hw.cols, "ACT_DEPTH": hw.act_depth, "DATA_W": axi.data_w}
    checks = [{"op": "read", "addr": REGS["ID"], "want": 0x54324341, "what": "ID"}]
    checks += [{"op": "read", "addr": REGS[f"HW_{k}"], "want": v, "what": k}
               for k, v in params.items()]
    for i, k in enumerate(["JOB_ROWS", "JOB_ACC_WORDS", "DESC_ADDR", "DESC_COUNT"]):
        v = 0x9E3779B9 * (i + 1) & 0xFFFFFFFF
        checks += [{"op": "write", "addr": REGS[k], "data": v},
                   {"op": "read", "addr": REGS[k], "want": v, "what": k}]
    checks += [{"op": "read", "addr": 0xE0, "want": 0, "resp": 2, "what": "past the map"},
               {"op": "write_resp", "addr": 0xE4, "data": 1, "resp": 2, "what": "past the map"}]
    bank = hw.act_depth // hw.rows
    cmds = [
        ("act words beyond the bank", [[REGS["JOB_ROWS"], [*_job_words(act_words=bank + 1),
                                                           0, 0, 1]]], ERR_DESC, 0),
        ("unaligned out address", [[REGS["JOB_ROWS"], [*_job_words(out_addr=0x104), 0, 0, 1]]],
         ERR_DESC, 0),
        ("unaligned descriptor list", [[REGS["DESC_ADDR"], [0x4, 1, 1]]], ERR_DESC, 0),
        ("zero rows (core refuses)", [[REGS["JOB_ROWS"], [*_job_words(rows=0), 0, 0, 1]]],
         0x001, 0),
        ("lo > hi (core refuses)", [[REGS["JOB_ROWS"], [*_job_words(lo=5, hi=4), 0, 0, 1]]],
         0x020, 0),
    ]
    image = bytes(0x200)
    ch = np.zeros(32, dtype=np.uint8)  # channel words: shifts 0 (legal)
    image = image[:0x80] + ch.tobytes() + image[0xA0:]
    out = run_commands(hw, axi, "icarus", [{"name": n, "writes": w, "limit": 2000}
                                           for n, w, _, _ in cmds],
                       image=image, readback=checks, build_root=BUILD)
    assert out["readback"] == []
    for (name, _, err, jobs), c in zip(cmds, out["commands"]):
        assert (c["err"], c["status"], c["irq_status"], c["jobs_done"], c["irq_after_clear"]) \
            == (err, 4, 2, jobs, 0), (name, c)


@pytest.mark.sim
def test_register_map_check_can_fail() -> None:
    """A wrong expected value in the read-back fails the testbench (the checker is live)."""
    with pytest.raises(MismatchError, match="register read-back: check 0"):
        run_commands(HW_S, AXI["default"], "icarus", [],
                     readback=[{"op": "read", "addr": REGS["ID"], "want": 0x1234}],
                     build_root=BUILD)


# ------------------------------------------------------------------------------ mutants
def _mutant(tmp: Path, module: str, old: str, new: str) -> Path:
    d = tmp / "rtl"
    d.mkdir()
    for m in (*RTL_MODULES, *AXI_RTL_MODULES):
        shutil.copy(sim.RTL_DIR / f"{m}.v", d)
    src = (d / f"{module}.v").read_text()
    if old not in src:
        raise AssertionError(f"mutation anchor {old!r} not found in {module}.v")
    (d / f"{module}.v").write_text(src.replace(old, new, 1))
    return d


# (module, original, mutant, axi, what catches it: exception class and message, "y" (outputs
# differ from golden) or "cycles" (the layer's cycles differ from the model))
MUTANTS = {
    # one beat more per burst: the data shifts (and a descriptor split over bursts turns invalid)
    "arlen_plus_one": ("t2c_axi_rd", "arlen_q  <= blen[7:0] - 8'd1;", "arlen_q  <= blen[7:0];",
                       "default", "y"),
    "arlen_plus_one_short_bursts": ("t2c_axi_rd", "arlen_q  <= blen[7:0] - 8'd1;",
                                    "arlen_q  <= blen[7:0];", "b4",
                                    (SimulationError, r"error register reads 0x400 \(descriptor\)")),
    "w_drops_last_word": (
        "t2c_axi_wr", "(ww_q == sw_q[ws_idx*32 +: 32] - 32'd1);",
        "(ww_q == sw_q[ws_idx*32 +: 32] - 32'd2);", "default",
        (SimulationError, r"no end within \d+ cycles \(watchdog\)")),
    "wlast_early": ("t2c_axi_wr", "assign wlast_o   = (wbl_q == 9'd1);",
                    "assign wlast_o   = (wbl_q == 9'd2) || (wbl_q == 9'd1 && wl_q == 32'd1);",
                    "default", (SimulationError, r"AXI4 burst at address 0x[0-9a-f]+ broke the "
                                                 r"memory model's rules")),
    "wr_address_step_short": (
        "t2c_axi_wr", "awa_q <= awa_q + {{(ADDR_W-9){1'b0}}, aw_blen} * BYTES[ADDR_W-1:0];",
        "awa_q <= awa_q + {{(ADDR_W-9){1'b0}}, aw_blen} * BYTES[ADDR_W-1:0] "
        "- BYTES[ADDR_W-1:0];", "slowrd",
        (SimulationError, r"\(write-response\)|AXI4 burst at address 0x[0-9a-f]+ broke")),
    "rd_next_segment_address": (
        "t2c_axi_rd", "ara_q <= sa_q[ar_next*ADDR_W +: ADDR_W];",
        "ara_q <= sa_q[ar_next*ADDR_W +: ADDR_W] + BYTES[ADDR_W-1:0];", "slowrd", "y"),
    "rd_one_less_in_flight": (
        "t2c_axi_rd", "&& ({{(32-OW){1'b0}}, out_now} < OUTSTANDING);",
        "&& ({{(32-OW){1'b0}}, out_now} + 32'd1 < OUTSTANDING);", "slowrd", "cycles"),
}
MUT_AXI = {"default": AxiConfig(), "b4": AxiConfig(burst_len=4, rd_latency=3, wr_latency=2),
           "slowrd": AxiConfig(burst_len=4, outstanding=2, rd_latency=8, wr_latency=2)}
MUT_HW = HwConfig(rows=2, cols=3, n=2, m=4, act_depth=16, w_depth=24, out_depth=64, ch_depth=6)


MUT_SLOW = ("arlen_plus_one_short_bursts", "wr_address_step_short", "rd_next_segment_address")


def _mut_rec():
    return random_linear_record(np.random.default_rng(3), c_in=48, c_out=5, rows=7, n=2, m=4,
                                name="fc_mut")


@pytest.mark.sim
@pytest.mark.parametrize("mutant", [pytest.param(m, marks=pytest.mark.slow) if m in MUT_SLOW
                                    else m for m in MUTANTS])
def test_mutant_is_caught(mutant: str, tmp_path: Path) -> None:
    """Through the DUT contract: the framework's checks (outputs, the ERR register, the
    watchdog, the cycle model) catch every mutant of the DMA."""
    module, old, new, axi_id, catcher = MUTANTS[mutant]
    rec = _mut_rec()
    rtl = _mutant(tmp_path, module, old, new)
    kw = dict(build_root=tmp_path / "b", rtl_dir=rtl, timeout_s=300)
    if catcher in ("y", "cycles"):
        (r,) = run_layers_frontdoor([rec], MUT_HW, "icarus", MUT_AXI[axi_id], **kw)
        if catcher == "y":  # data corrupted: the outputs differ from the golden model
            assert compare(rec, rec.y, r.y) is not None, f"{mutant}: outputs still equal"
        else:
            cm = cycle_mismatch(r)
            assert cm is not None and cm.measured != cm.predicted, f"{mutant}: cycles equal"
            assert re.fullmatch(r"layer fc_mut: cycles differ at tile 0: \d+ measured, the DUT's "
                                r"cycle model predicts \d+", str(cm)), str(cm)
        return
    exc, pattern = catcher
    with pytest.raises(exc) as ei:
        run_layers_frontdoor([rec], MUT_HW, "icarus", MUT_AXI[axi_id], **kw)
    assert re.search(pattern, str(ei.value)), str(ei.value)


@pytest.mark.sim
@pytest.mark.parametrize("axi_id", list(MUT_AXI))
def test_mutant_settings_pass_on_the_real_rtl(axi_id: str) -> None:
    """The mutants' layer and settings pass unmutated: what fails above is the mutation."""
    rec = _mut_rec()
    (r,) = run_layers_frontdoor([rec], MUT_HW, "icarus", MUT_AXI[axi_id], build_root=BUILD)
    assert np.array_equal(r.y, rec.y) and np.array_equal(r.acc, rec.acc)
    assert r.cycles == r.cycles_predicted == frontdoor_cycles(rec, MUT_HW, MUT_AXI[axi_id]).total


# ------------------------------------------------------------------------------ unit benches
MEM_SETS = {"lat1": {"RD_LAT": 1, "WR_LAT": 1}, "lat5_3": {"RD_LAT": 5, "WR_LAT": 3}}


@pytest.mark.sim
@pytest.mark.parametrize("simulator,pset", [
    pytest.param(s, p, marks=[pytest.mark.slow] if (s, p) == ("verilator", "lat1") else [])
    for s in sim.SIMULATORS for p in MEM_SETS])
def test_memory_model_timing(simulator: str, pset: str) -> None:
    params = {"ADDR_W": 32, "DATA_W": 64, "MEM_WORDS": 1024, "MAX_BURST": 8, "QDEPTH": 4,
              **MEM_SETS[pset]}
    args = ["--timing"] if simulator == "verilator" else []
    info = sim.build(simulator, "t2c_axi_mem", [MEM_MODEL], params, BUILD, build_args=args)
    sim.run(info, sim.TB_DIR / "test_axi_mem.py", payload={"params": params}, timeout_s=300)


@pytest.mark.sim
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_register_block(simulator: str) -> None:
    params = {"ROWS": 3, "COLS": 5, "N": 1, "M": 8, "A_BITS": 6, "W_BITS": 7, "ACC_BITS": 28,
              "MULT_BITS": 24, "SHIFT_MAX": 40, "ACT_DEPTH": 96, "W_DEPTH": 80, "OUT_DEPTH": 64,
              "CH_DEPTH": 10, "Y_BITS": 16, "DATA_W": 128, "BURST_LEN": 8, "OUTSTANDING": 3}
    info = sim.build(simulator, "t2c_axil_regs", sim.rtl_sources("t2c_axil_regs"), params, BUILD)
    sim.run(info, sim.TB_DIR / "test_axi_regs.py",
            payload={"params": params, "regs": REGS, "seed": 11}, timeout_s=300)


# ------------------------------------------------------------------------------ lint
# scripts/lint_rtl.py lints t2c_axi_accel with its default parameters; these reach the corners
# (32- and 1024-bit buses, single-beat bursts, one burst in flight, a 16-bit address, 1x1 1:1).
AXI_LINT = ["-GDATA_W=32 -GBURST_LEN=1 -GOUTSTANDING=1",
            "-GDATA_W=1024 -GBURST_LEN=4 -GOUTSTANDING=15",
            "-GROWS=1 -GCOLS=1 -GN=1 -GM=1 -GADDR_W=16",
            "-GROWS=8 -GCOLS=8 -GDATA_W=128 -GBURST_LEN=32 -GPACKED=1"]


def _lint(top: str, gen: list[str], files: list[Path], timing: bool = False) -> None:
    import subprocess

    env = sim.find_tools()["env"]
    v = subprocess.run(["verilator", "--lint-only", "-Wall", *(["--timing"] if timing else []),
                        "-y", str(sim.RTL_DIR), "--top-module", top, *gen, *map(str, files)],
                       env=env, capture_output=True, text=True)
    assert v.returncode == 0 and "%Warning" not in v.stderr, v.stderr[-3000:]
    ip = [f"-P{top}.{a[2:]}" for a in gen]
    i = subprocess.run(["iverilog", "-Wall", "-g2005", "-o", "/dev/null", "-s", top, *ip,
                        *sorted(str(p) for p in sim.RTL_DIR.glob("*.v")),
                        *[str(f) for f in files if f.parent != sim.RTL_DIR]],
                       env=env, capture_output=True, text=True)
    assert i.returncode == 0 and not i.stdout.strip() and not i.stderr.strip(), i.stderr[-3000:]


@pytest.mark.sim
@pytest.mark.parametrize("params", AXI_LINT)
def test_front_door_is_lint_clean(params: str) -> None:
    _lint("t2c_axi_accel", params.split(), [sim.RTL_DIR / "t2c_axi_accel.v"])


@pytest.mark.sim
def test_simulation_hdl_is_lint_clean() -> None:
    """The memory model and the harness are simulation-only but lint clean too."""
    _lint("t2c_axi_harness", [], [MEM_MODEL, HARNESS], timing=True)
