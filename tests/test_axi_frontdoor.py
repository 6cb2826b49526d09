"""The front door (``rtl/t2c_axi_accel.v``): AXI4-Lite registers, AXI4 DMA, exact cycle model.

Oracles: the golden model (``rec.y``, ``rec.acc``), the back door (:func:`run_layers` on the same
records: the same outputs, accumulators and per-run core cycles), the measured cycles (harness
counter from the first register write to the interrupt, the ``CYCLES`` register) against
:mod:`t2c_sim.estimate.frontdoor`, and the memory model's beat counters against the model's
beats. Faults the checks must catch: RTL mutants of the DMA (burst length off by one, a lost
last word, WLAST early, wrong address steps, one burst less in flight), SLVERR responses
injected by the memory model, invalid descriptors and illegal shapes.

Fast tier: Icarus on K-split and unsplit layers with several latency / burst / width settings,
register mode, errors, mutants, the unit testbenches; one Verilator case. Slow tier: every
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
    run_commands,
    run_layers_frontdoor,
)
from t2c_sim.cosim.run import RTL_MODULES, run_layers
from t2c_sim.errors import ConfigError, MismatchError, SimulationError
from t2c_sim.estimate.frontdoor import (
    AxiConfig,
    Segment,
    bursts,
    command_cycles,
    frontdoor_cycles,
    layout,
    word_bits,
)
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
# (simulator, hw, axi, mode); the fast tier runs the first group
FAST = [("icarus", "k1", "default", "list"), ("icarus", "kd", "w32_b4_o2", "list"),
        ("icarus", "s", "lat1_b1_o1", "regs"), ("verilator", "a", "b64_o8", "list")]
# slow: every hw x setting on Icarus (cheap builds), one setting per hw on Verilator
SLOW = [("icarus", h, a, m) for h in HWS for a in AXI
        for m in (("list", "regs") if a == "default" else ("list",))
        if ("icarus", h, a, m) not in FAST]
SLOW += [("verilator", "k1", "w128_b2_lat20", "list"), ("verilator", "kd", "w256_b16_o1", "list"),
         ("verilator", "s", "lat1_b1_o1", "regs"), ("verilator", "a", "default", "list")]


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
def _check_layers(simulator: str, hw_id: str, axi_id: str, mode: str) -> None:
    hw, axi = HWS[hw_id], AXI[axi_id]
    seed = 10 * list(AXI).index(axi_id) + list(HWS).index(hw_id)
    print(f"seed={seed}")
    recs = _layers(seed, C_IN.get(hw_id, 24))
    assert hw_id != "a" or len(estimate.tile_plan(recs[0], hw).chunks) > 1
    res = run_layers_frontdoor(recs, hw, simulator, axi, build_root=BUILD, mode=mode)
    ref = run_layers(recs, hw, simulator, build_root=BUILD)
    rd = wr = 0
    for rec, r, b in zip(recs, res, ref):
        what = f"{simulator} {hw_id} {axi_id} {mode} {rec.name}"
        plan = estimate.tile_plan(rec, hw)
        assert np.array_equal(r.y, rec.y) and np.array_equal(r.acc, rec.acc), what
        assert np.array_equal(r.y, b.y) and np.array_equal(r.acc, b.acc), what
        assert [t.chunks_measured for t in r.tiles] == [t.chunks_measured for t in b.tiles] \
            == [estimate.chunk_cycles(plan, t, hw) for t in plan.tiles], what
        assert r.cycles == b.cycles == estimate.cycles(rec, hw), what
        assert r.frontdoor == r.predicted, what
        for c in r.commands:
            assert (c["status"], c["err"], c["irq_status"], c["irq_after_clear"],
                    c["prot_err"]) == (2, 0, 1, 0, 0), (what, c)
        if mode == "list":
            fd = frontdoor_cycles(rec, hw, axi)
            (c,) = r.commands
            assert (r.frontdoor, c["cycles"], c["core_cycles"], c["jobs_done"]) == \
                (fd.total, fd.register, fd.core, plan.runs), what
            rd, wr = rd + fd.beats_read, wr + fd.beats_written
            assert (c["rd_beats"], c["wr_beats"]) == (rd, wr), what
        else:
            assert len(r.commands) == plan.runs and sum(c["core_cycles"] for c in r.commands) \
                == estimate.cycles(rec, hw), what
    print(f"{simulator} {hw_id} {axi_id} {mode}: front door "
          f"{[r.frontdoor for r in res]} cycles (core {[r.cycles for r in res]})")


@pytest.mark.sim
@pytest.mark.parametrize("simulator,hw_id,axi_id,mode", FAST,
                         ids=["-".join(c) for c in FAST])
def test_frontdoor_layers(simulator: str, hw_id: str, axi_id: str, mode: str) -> None:
    _check_layers(simulator, hw_id, axi_id, mode)


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("simulator,hw_id,axi_id,mode", SLOW,
                         ids=["-".join(c) for c in SLOW])
def test_frontdoor_layers_more(simulator: str, hw_id: str, axi_id: str, mode: str) -> None:
    _check_layers(simulator, hw_id, axi_id, mode)


# ------------------------------------------------------------------------------ errors
ERR_RD, ERR_WR, ERR_DESC = 0x100, 0x200, 0x400


@pytest.mark.sim
@pytest.mark.parametrize("where,err", [("wgt", ERR_RD), ("acc", ERR_WR),
                                       pytest.param("desc", ERR_RD, marks=pytest.mark.slow)])
def test_slverr_raises_error_flag_and_interrupt(where: str, err: int) -> None:
    """An SLVERR from memory stops the command with ERR set, STATUS error and the interrupt."""
    rec = _layers(3)[0]
    axi = AXI["default"]
    lay = layout(estimate.tile_plan(rec, HW_K1), HW_K1, axi)
    job = next(j for j in lay.jobs if j.acc.words and j.run >= 5)
    addr = {"wgt": lay.jobs[3].wgt.addr, "desc": lay.desc_addr + 128 * 4,
            "acc": job.acc.addr}[where]
    (r,) = run_layers_frontdoor([rec], HW_K1, "icarus", axi, build_root=BUILD,
                                err_window=(addr, addr + 8), check=False)
    (c,) = r.commands
    assert (c["status"], c["err"], c["irq_status"], c["irq_after_clear"]) == (4, err, 2, 0), c
    assert c["jobs_done"] < len(lay.jobs) or where == "acc"
    assert c["prot_err"] == 0
    if where == "wgt":  # checked: the flags fail the layer, naming them
        with pytest.raises(SimulationError, match=r"ERR=0x100 \(read-response\)"):
            run_layers_frontdoor([rec], HW_K1, "icarus", axi, build_root=BUILD,
                                 err_window=(addr, addr + 8))


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


# (module, original, mutant, axi, what catches it: exception class and message, or "y")
MUTANTS = {
    # one beat more per burst: the data shifts (and a descriptor split over bursts turns invalid)
    "arlen_plus_one": ("t2c_axi_rd", "arlen_q  <= blen[7:0] - 8'd1;", "arlen_q  <= blen[7:0];",
                       "default", "y"),
    "arlen_plus_one_short_bursts": ("t2c_axi_rd", "arlen_q  <= blen[7:0] - 8'd1;",
                                    "arlen_q  <= blen[7:0];", "b4",
                                    (SimulationError, r"ERR=0x400 \(descriptor\)")),
    "w_drops_last_word": (
        "t2c_axi_wr", "(ww_q == sw_q[ws_idx*32 +: 32] - 32'd1);",
        "(ww_q == sw_q[ws_idx*32 +: 32] - 32'd2);", "default",
        (SimulationError, r"no interrupt within \d+ cycles")),
    "wlast_early": ("t2c_axi_wr", "assign wlast_o   = (wbl_q == 9'd1);",
                    "assign wlast_o   = (wbl_q == 9'd2) || (wbl_q == 9'd1 && wl_q == 32'd1);",
                    "default", (SimulationError, r"write-response")),
    "wr_address_step_short": (
        "t2c_axi_wr", "awa_q <= awa_q + {{(ADDR_W-9){1'b0}}, aw_blen} * BYTES[ADDR_W-1:0];",
        "awa_q <= awa_q + {{(ADDR_W-9){1'b0}}, aw_blen} * BYTES[ADDR_W-1:0] "
        "- BYTES[ADDR_W-1:0];", "slowrd", (SimulationError, r"write-response")),
    "rd_next_segment_address": (
        "t2c_axi_rd", "ara_q <= sa_q[ar_next*ADDR_W +: ADDR_W];",
        "ara_q <= sa_q[ar_next*ADDR_W +: ADDR_W] + BYTES[ADDR_W-1:0];", "slowrd", "y"),
    "rd_one_less_in_flight": (
        "t2c_axi_rd", "&& ({{(32-OW){1'b0}}, out_now} < OUTSTANDING);",
        "&& ({{(32-OW){1'b0}}, out_now} + 32'd1 < OUTSTANDING);", "slowrd",
        (MismatchError, r"front-door cycles measured \d+ .*the model predicts \d+")),
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
    module, old, new, axi_id, catcher = MUTANTS[mutant]
    rec = _mut_rec()
    rtl = _mutant(tmp_path, module, old, new)
    kw = dict(build_root=tmp_path / "b", rtl_dir=rtl, timeout_s=300)
    if catcher == "y":  # data corrupted: the outputs differ from the golden model
        (r,) = run_layers_frontdoor([rec], MUT_HW, "icarus", MUT_AXI[axi_id], check=False, **kw)
        assert not np.array_equal(r.y, rec.y), f"{mutant}: outputs still equal"
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
    assert r.frontdoor == r.predicted == frontdoor_cycles(rec, MUT_HW, MUT_AXI[axi_id]).total


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
