"""Cycle model and tile plan (no simulator): formula, an independent schedule oracle, tiling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from t2c_sim import estimate
from t2c_sim.config import HwConfig, OpKind
from t2c_sim.errors import RecordError
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


def schedule_oracle(rows: int, cols: int, g: int, hw: HwConfig) -> int:
    """Cycle-by-cycle replay of the RTL's schedule rules (independent of the closed form).

    Issue slot s of block b happens at cycle 1 + b*T + s (T = max(G, ROWS)); data reaches the
    PEs one cycle later; the block is captured the cycle after its last group; drain row r
    enters the requantizer at capture + 1 + r and leaves RQ_LATENCY cycles later; the counter
    stops after the last row of the last block is written. A capture must not overwrite the
    drain buffer before the previous drain read its last row.
    """
    nb = math.ceil(rows / hw.rows) * math.ceil(cols / hw.cols)
    t_per = max(g, hw.rows)
    last_write = 0
    prev_drain_end = -1
    for b in range(nb):
        last_valid = 1 + b * t_per + (g - 1) + 1
        capture = last_valid + 1
        assert capture >= prev_drain_end, "drain buffer overwritten"
        drain_rows = [capture + 1 + r for r in range(hw.rows)]
        prev_drain_end = drain_rows[-1]
        last_write = drain_rows[-1] + estimate.RQ_LATENCY
    return last_write


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


@settings(max_examples=200, deadline=None)
@given(rows=st.integers(1, 40), cols=st.integers(1, 40), g=st.integers(1, 40),
       hr=st.integers(1, 8), hc=st.integers(1, 8))
def test_closed_form_matches_schedule(rows, cols, g, hr, hc):
    hw = HwConfig(rows=hr, cols=hc, n=1, m=1)
    t = estimate.Tile(0, 0, 0, rows, 0, cols)
    assert estimate.tile_cycles(t, g, hw) == schedule_oracle(rows, cols, g, hw)


@settings(max_examples=150, deadline=None)
@given(p=st.integers(1, 300), c_in=st.integers(1, 200), c_out=st.integers(1, 70),
       hr=st.integers(1, 6), hc=st.integers(1, 6), depth=st.sampled_from([64, 256, 1024]),
       out_depth=st.sampled_from([16, 128, 4096]), ch=st.sampled_from([8, 64]))
def test_tile_plan_covers_once_within_capacity(p, c_in, c_out, hr, hc, depth, out_depth, ch):
    hw = HwConfig(rows=hr, cols=hc, n=2, m=4, act_depth=depth * hr, w_depth=depth * hc,
                  out_depth=out_depth, ch_depth=ch * hc)
    rec = shape_rec(c_in=c_in, c_out=c_out, rows=p)
    try:
        plan = estimate.tile_plan(rec, hw)
    except RecordError as e:
        assert "K-splitting" in str(e)
        assert plan_g(c_in, 4) > depth
        return
    cover = np.zeros((p, c_out), dtype=np.int64)
    for i, t in enumerate(plan.tiles):
        assert t.index == i and t.rows >= 1 and t.cols >= 1
        cover[t.p0:t.p0 + t.rows, t.c0:t.c0 + t.cols] += 1
        qr, qc = -(-t.rows // hr), -(-t.cols // hc)
        assert qr * plan.g <= hw.act_depth // hr
        assert qc * plan.g <= hw.w_depth // hc
        assert qc <= hw.ch_depth // hc
        assert t.rows * qc <= hw.out_depth
    assert (cover == 1).all()
    assert estimate.cycles(rec, hw) == sum(estimate.tile_cycles(t, plan.g, hw)
                                           for t in plan.tiles)


def plan_g(c_in: int, m: int) -> int:
    return -(-c_in // m)


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


def test_errors_name_the_layer():
    with pytest.raises(RecordError, match="layer fc: .*K-splitting"):
        estimate.tile_plan(shape_rec(c_in=4096, c_out=2, rows=1),
                           HwConfig(rows=2, cols=2, act_depth=64, w_depth=64))
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
