"""Cycle model and tile plan (no simulator): formula, an independent schedule oracle, tiling,
K-splitting (chunks, their cycles, realistic layers that need them, the remaining refusals)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from t2c_sim import estimate
from t2c_sim.config import HwConfig, OpKind
from t2c_sim.errors import RecordError, UnsupportedLayerError
from t2c_sim.record import LayerRecord
from t2c_sim.workloads.gen import random_conv_record, random_linear_record, random_pool_record


def shape_rec(op: str = "linear", *, c_in: int, c_out: int, rows: int = 1, n: int = 2,
              m: int = 4, **kw) -> LayerRecord:
    """A record with shapes only (cycle model needs no weights except for MAC counts)."""
    if op == "linear":
        x = np.zeros((rows, c_in), dtype=np.int64)
        k = -(-c_in // m) * m
        return LayerRecord(name="fc", op=OpKind.LINEAR, c_in=c_in, c_out=c_out, n=n, m=m,
                           x_q=x, w_q=np.zeros((c_out, k), dtype=np.int64))
    return LayerRecord(name="conv", op=OpKind.CONV2D, c_in=c_in, c_out=c_out, n=n, m=m, **kw)


def schedule_oracle(rows: int, cols: int, g: int, hw: HwConfig, last: bool = True) -> int:
    """Cycle-by-cycle replay of the RTL's schedule rules (independent of the closed form).

    Issue slot s of block b happens at cycle 1 + b*T + s (T = max(G, ROWS)); data reaches the
    PEs one cycle later; the block is captured the cycle after its last group; drain row r
    is read (and its partial sums written) at capture + 1 + r and, in the last K-chunk, leaves
    the requantizer RQ_LATENCY cycles later; the counter stops after the last write. A capture
    must not overwrite the drain buffer before the previous drain read its last row.
    """
    nb = math.ceil(rows / hw.rows) * math.ceil(cols / hw.cols)
    t_per = max(g, hw.rows)
    cycle = 0
    busy_until = 0
    prev_drain_end = -1
    slot = {}  # cycle -> what the issue stage does (a replay, not a formula)
    for b in range(nb):
        for s in range(t_per):
            slot[1 + b * t_per + s] = (b, s)
    captures = []
    while slot:
        cycle += 1
        b, s = slot.pop(cycle)
        if s == g - 1:  # last group issued: data next cycle, capture the cycle after
            captures.append(cycle + 2)
    for cap in captures:
        assert cap >= prev_drain_end, "drain buffer overwritten"
        drain_rows = [cap + 1 + r for r in range(hw.rows)]
        prev_drain_end = drain_rows[-1]
        busy_until = drain_rows[-1] + (estimate.RQ_LATENCY if last else 0)
    return busy_until


def plan_oracle(plan: estimate.TilePlan, tile: estimate.Tile, hw: HwConfig) -> list[int]:
    """Replay one tile's K-chunks: each chunk is a run of its groups; only the last requantizes."""
    return [schedule_oracle(tile.rows, tile.cols, gs, hw, last=(g0 + gs == plan.g))
            for g0, gs in plan.chunks]


HW = HwConfig(rows=4, cols=4, n=2, m=4)


@pytest.mark.parametrize("rows,cols,g,expect", [
    (1, 1, 1, 1 + 4 + 3 + 2),                   # one block, G < ROWS
    (4, 4, 16, 16 + 4 + 5),                     # one full block
    (8, 8, 16, 3 * 16 + 16 + 4 + 5),            # 4 blocks, G >= ROWS: no stalls
    (8, 8, 2, 3 * 4 + 2 + 4 + 5),               # G < ROWS: blocks padded to ROWS slots
    (5, 3, 7, 1 * 7 + 7 + 4 + 5),               # partial blocks cost a full block
])
def test_tile_cycles_table(rows, cols, g, expect):
    t = estimate.Tile(0, 0, 0, rows, 0, cols)
    assert estimate.tile_cycles(t, g, HW) == expect
    assert schedule_oracle(rows, cols, g, HW) == expect


@pytest.mark.parametrize("rows,cols,g,expect", [
    (1, 1, 1, 1 + 4 + 2),                       # a partial-sum run skips the requantizer
    (4, 4, 16, 16 + 4 + 2),
    (8, 8, 2, 3 * 4 + 2 + 4 + 2),
])
def test_non_last_chunk_cycles_table(rows, cols, g, expect):
    t = estimate.Tile(0, 0, 0, rows, 0, cols)
    assert estimate.tile_cycles(t, g, HW, last=False) == expect
    assert schedule_oracle(rows, cols, g, HW, last=False) == expect


@settings(max_examples=200, deadline=None)
@given(rows=st.integers(1, 40), cols=st.integers(1, 40), g=st.integers(1, 40),
       hr=st.integers(1, 8), hc=st.integers(1, 8), last=st.booleans())
def test_closed_form_matches_schedule(rows, cols, g, hr, hc, last):
    hw = HwConfig(rows=hr, cols=hc, n=1, m=1)
    t = estimate.Tile(0, 0, 0, rows, 0, cols)
    assert estimate.tile_cycles(t, g, hw, last=last) == schedule_oracle(rows, cols, g, hw, last)


@settings(max_examples=150, deadline=None)
@given(p=st.integers(1, 300), c_in=st.integers(1, 200), c_out=st.integers(1, 70),
       hr=st.integers(1, 6), hc=st.integers(1, 6), depth=st.sampled_from([3, 8, 64, 256, 1024]),
       wdepth=st.sampled_from([5, 64, 1024]), out_depth=st.sampled_from([16, 128, 4096]),
       ch=st.sampled_from([8, 64]))
def test_tile_plan_covers_once_within_capacity(p, c_in, c_out, hr, hc, depth, wdepth, out_depth,
                                               ch):
    hw = HwConfig(rows=hr, cols=hc, n=2, m=4, act_depth=depth * hr, w_depth=wdepth * hc,
                  out_depth=out_depth, ch_depth=ch * hc)
    rec = shape_rec(c_in=c_in, c_out=c_out, rows=p)
    plan = estimate.tile_plan(rec, hw)
    g = plan_g(c_in, 4)
    # K-chunks: contiguous, cover [0, G) once, fit both banks, fewest possible, balanced
    cap = min(depth, wdepth)
    assert plan.g == g and plan.chunks[0][0] == 0
    assert all(a[0] + a[1] == b[0] for a, b in zip(plan.chunks, plan.chunks[1:]))
    assert plan.chunks[-1][0] + plan.chunks[-1][1] == g
    sizes = [gs for _, gs in plan.chunks]
    assert max(sizes) <= cap and max(sizes) - min(sizes) <= 1
    assert plan.split == (g > cap)
    if plan.split:  # chunk length cap // d for some d in 1..SPLIT_CANDIDATES
        assert -(-g // cap) <= len(sizes) <= -(-g // max(1, cap // estimate.model.SPLIT_CANDIDATES))
        d1 = estimate.split_k(g, cap)  # the fewest chunks: never cheaper than the plan's choice
        assert estimate.model._grid_cycles(p, c_out, *estimate.model._tile_dims(
            p, c_out, d1[0][1], hw, depth, wdepth, ch), d1, hw) >= estimate.cycles(rec, hw)
    gc = max(sizes)
    cover = np.zeros((p, c_out), dtype=np.int64)
    for i, t in enumerate(plan.tiles):
        assert t.index == i and t.rows >= 1 and t.cols >= 1
        cover[t.p0:t.p0 + t.rows, t.c0:t.c0 + t.cols] += 1
        qr, qc = -(-t.rows // hr), -(-t.cols // hc)
        assert qr * gc <= hw.act_depth // hr  # the RTL's shape checks (err_o[1..4]) pass
        assert qc * gc <= hw.w_depth // hc
        assert qc <= hw.ch_depth // hc
        assert t.rows * qc <= hw.out_depth
    assert (cover == 1).all()
    replay = sum(sum(plan_oracle(plan, t, hw)) for t in plan.tiles)
    assert estimate.cycles(rec, hw) == replay
    assert all(list(estimate.chunk_cycles(plan, t, hw)) == plan_oracle(plan, t, hw)
               for t in plan.tiles[:3])


def plan_g(c_in: int, m: int) -> int:
    return -(-c_in // m)


def test_split_k_table():
    assert estimate.split_k(16, 6) == ((0, 6), (6, 5), (11, 5))
    assert estimate.split_k(16, 16) == ((0, 16),)
    assert estimate.split_k(5, 1) == tuple((i, 1) for i in range(5))
    assert estimate.split_k(7, 3) == ((0, 3), (3, 2), (5, 2))
    with pytest.raises(ValueError):
        estimate.split_k(0, 3)


def test_k_split_cycles_example():
    """The cycle model's docstring example: chunks of at most 6 groups would need four 4x4
    tiles of 3 runs (148 cycles); chunks of at most 3 fit the layer in one 8x8 tile (127)."""
    rec = shape_rec(c_in=64, c_out=8, rows=8)
    hw = HwConfig(rows=4, cols=4, n=2, m=4, act_depth=24, w_depth=24)
    plan = estimate.tile_plan(rec, hw)
    assert plan.chunks == ((0, 3), (3, 3), (6, 3), (9, 3), (12, 2), (14, 2))
    assert len(plan.tiles) == 1 and (plan.tiles[0].rows, plan.tiles[0].cols) == (8, 8)
    assert estimate.chunk_cycles(plan, plan.tiles[0], hw) == (21, 21, 21, 21, 20, 23)
    assert estimate.cycles(rec, hw) == 127 == sum(plan_oracle(plan, plan.tiles[0], hw))
    # the alternative the plan rejected (d = 1), replayed: 4 tiles x (12 + 11 + 14)
    alt = estimate.TilePlan("fc", 8, 64, 16, 1, 8, tuple(
        estimate.Tile(i, 0, p0, 4, c0, 4) for i, (c0, p0) in enumerate(
            [(0, 0), (0, 4), (4, 0), (4, 4)])), estimate.split_k(16, 6))
    assert sum(sum(plan_oracle(alt, t, hw)) for t in alt.tiles) == 148
    assert estimate.cycles(rec, HwConfig(rows=4, cols=4)) == 73  # unsplit: one run


def _default_hw() -> HwConfig:
    root = Path(__file__).resolve().parents[1]
    return HwConfig.from_dict(yaml.safe_load((root / "hw" / "default.yaml").read_text()))


def _conv_shape(name, c_in, c_out, hw_, k=3, stride=1, batch=1):
    return LayerRecord(name=name, op=OpKind.CONV2D, c_in=c_in, c_out=c_out, n=2, m=4, kh=k,
                       kw=k, h=hw_, w=hw_, stride=stride, padding=(k // 2, k // 2),
                       y=np.zeros((batch, (hw_ + 2 * (k // 2) - k) // stride + 1,
                                   (hw_ + 2 * (k // 2) - k) // stride + 1, c_out),
                                  dtype=np.int64))


@pytest.mark.parametrize("arr", ["default", "8x8"])
def test_real_layers_are_split_not_refused(arr):
    """MNIST fc1 (K = 9216) and ResNet-18 layer3/layer4 3x3 convs (K = 2304 / 4608) plan and
    count cycles on the default hardware file and on an 8x8 2:4 array; every run fits the RTL's
    bank checks and one layer fits one simulator process (cosim.run.MAX_TILES)."""
    from t2c_sim.cosim.run import MAX_TILES

    hw = _default_hw()
    if arr == "8x8":
        hw = HwConfig(**{**hw.to_dict(), "rows": 8, "cols": 8})
    layers = [shape_rec(c_in=9216, c_out=128, rows=64).replace(name="mnist_fc1"),
              _conv_shape("r18_layer3", 256, 256, 14),
              _conv_shape("r18_layer4", 512, 512, 7),
              _conv_shape("r18_layer4_s2", 256, 512, 14, stride=2)]
    a_bank, w_bank = hw.act_depth // hw.rows, hw.w_depth // hw.cols
    for rec in layers:
        plan = estimate.tile_plan(rec, hw)
        assert plan.g == rec.k // 4
        assert plan.split == (plan.g > min(a_bank, w_bank)), rec.name
        assert max(gs for _, gs in plan.chunks) <= min(a_bank, w_bank)
        assert plan.runs <= MAX_TILES, (rec.name, plan.runs)
        cyc = estimate.cycles(rec, hw)
        # never faster than the issue slots the MACs need
        assert cyc >= estimate.macs(rec, hw)["issued"] // (hw.rows * hw.cols * hw.n)
    fc1 = estimate.tile_plan(layers[0], hw)
    assert fc1.split and len(fc1.chunks) >= -(-2304 // min(a_bank, w_bank))
    assert estimate.tile_plan(layers[2], hw).split


def test_k_padding_to_hw_m_and_groups():
    rec = shape_rec(c_in=10, c_out=3, rows=2, n=1, m=4)  # rec.k = 12
    hw8 = HwConfig(rows=2, cols=2, n=2, m=8)
    assert estimate.gemm_k(rec, hw8) == 16 and estimate.tile_plan(rec, hw8).g == 2
    conv = random_conv_record(np.random.default_rng(0), c_in=4, c_out=6, h=5, w=4, groups=2,
                              n=1, m=4, batch=2, stride=2)
    plan = estimate.tile_plan(conv, HW)
    oh, ow = conv.out_hw
    assert plan.p == 2 * oh * ow and plan.groups == 2 and plan.c_per_group == 3
    assert [t.c0 for t in plan.tiles] == [0, 3] and {t.group for t in plan.tiles} == {0, 1}


def test_rows_multiple_of_array_rows_except_last():
    hw = HwConfig(rows=3, cols=2, n=2, m=4, act_depth=3 * 20, w_depth=64, out_depth=4096)
    rec = shape_rec(c_in=16, c_out=2, rows=50)  # G = 4 -> 5 row groups per bank -> 15 rows
    tiles = estimate.tile_plan(rec, hw).tiles
    assert [t.rows for t in tiles] == [15, 15, 15, 5]


def test_errors_name_the_layer(monkeypatch):
    # a bank of 0 words cannot hold even one group: refused, naming the layer and the banks
    with pytest.raises(UnsupportedLayerError, match=r"layer fc: .*bank holds no word "
                                                    r"\(act_depth/rows=0"):
        estimate.tile_plan(shape_rec(c_in=16, c_out=2, rows=1),
                           HwConfig(rows=4, cols=2, act_depth=2, w_depth=64))
    # a plan bigger than MAX_PLAN_RUNS runs (memory and time) is refused, naming the limit
    monkeypatch.setattr(estimate.model, "MAX_PLAN_RUNS", 5)
    with pytest.raises(UnsupportedLayerError, match=r"layer fc: .* 6 runs .*6 K-chunks.* "
                                                    r"plan limit of 5 runs"):
        estimate.tile_plan(shape_rec(c_in=64, c_out=8, rows=8),
                           HwConfig(rows=4, cols=4, act_depth=24, w_depth=24))
    assert issubclass(UnsupportedLayerError, RecordError)
    pool = random_pool_record(np.random.default_rng(1), "maxpool", c=4, h=4, w=4)
    with pytest.raises(RecordError, match="no GEMM"):
        estimate.tile_plan(pool, HW)
    assert estimate.per_layer([pool], HW) == {pool.name: 0}


def test_macs_and_utilization_bounds():
    rng = np.random.default_rng(3)
    rec = random_linear_record(rng, c_in=64, c_out=16, rows=64, n=2, m=4)
    m = estimate.macs(rec, HW)
    assert m["dense"] == 64 * 16 * 64
    assert m["issued"] == 64 * 16 * 16 * 2
    assert m["nonzero"] == 64 * int(np.count_nonzero(rec.w_q)) <= m["issued"]
    assert m["useful"] == m["nonzero"]
    u = estimate.utilization(rec, HW)
    # 64 blocks of G = 16 = 1024 slots + 4 + 5 tail cycles; useful share of the 2-wide PEs:
    assert u == pytest.approx(1024 / 1033 * m["nonzero"] / m["issued"]) and 0 < u < 1
    tiny = random_linear_record(rng, c_in=4, c_out=1, rows=1, n=2, m=4)
    ut = estimate.utilization(tiny, HW)
    assert 0 < ut < 0.01  # one multiplier pair of 16 busy for 1 of 10 cycles
    assert estimate.per_layer([rec, tiny], HW) == {rec.name: estimate.cycles(rec, HW),
                                                   tiny.name: estimate.cycles(tiny, HW)}


def test_utilization_counts_padding_and_zero_weights_as_idle():
    rng = np.random.default_rng(5)
    # C_in = 1 padded to 4 on a 2:4 array: 2 products issued per group, at most 1 useful.
    conv = random_conv_record(rng, c_in=1, c_out=4, h=8, w=8, n=2, m=4)
    m = estimate.macs(conv, HW)
    assert m["useful"] == m["nonzero"] <= m["issued"] // 2
    assert estimate.utilization(conv, HW) <= 0.5
    # The same layer with every weight zeroed does no useful work at all.
    zero = conv.replace(w_q=np.zeros_like(conv.w_q), values=None, indices=None)
    assert estimate.utilization(zero, HW) == 0.0
    # Shape-only records (topology files) use the structural maximum: min(N, real) per group.
    shape = conv.replace(w_q=None, values=None, indices=None)
    assert estimate.macs(shape, HW)["useful"] == estimate.gemm_rows(conv) * 4 * 9 * 1
    lin = shape_rec(c_in=10, c_out=3, rows=2).replace(w_q=None)  # K = 10: groups with 4, 4, 2 real
    assert estimate.macs(lin, HW)["useful"] == 2 * 3 * (2 + 2 + 2)


def test_no_torch_or_cocotb_import():
    import subprocess
    import sys
    code = ("import sys; sys.modules['torch'] = None; sys.modules['cocotb'] = None; "
            "import t2c_sim.estimate as e; print(e.RQ_LATENCY)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
