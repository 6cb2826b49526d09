"""Whole-layer packing and dump parsing (cosim/bulk.py) against the per-run code it replaces.

Oracle: the per-run writer (``accel._write_run``) and per-tile dump reader (``accel._read_dump``),
which the RTL tests validate; the bulk files must be byte for byte the same, on linear, conv,
grouped and depthwise convs, K-split layers, odd shapes, several tile grids and arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from t2c_sim.config import HwConfig
from t2c_sim.cosim import accel as runmod
from t2c_sim.cosim import bulk
from t2c_sim.errors import NumericsError
from t2c_sim.export import iface
from t2c_sim.export.hexfile import pack_limbs, write_memh_limbs
from t2c_sim.workloads.gen import random_conv_record, random_linear_record

HWS = {
    "4x4": HwConfig(rows=4, cols=4, n=2, m=4),
    "4x4-small": HwConfig(rows=4, cols=4, n=2, m=4, act_depth=64, w_depth=64, out_depth=32,
                          ch_depth=16),
    "2x8-dense": HwConfig(rows=2, cols=8, n=4, m=4, act_depth=48, w_depth=96, out_depth=24),
    "3x5-odd": HwConfig(rows=3, cols=5, n=2, m=4, act_depth=30, w_depth=40, out_depth=12,
                        ch_depth=10),
}


def _lin(rng, **k):
    return random_linear_record(rng, **k)


def _conv(rng, **k):
    return random_conv_record(rng, **k)


CASES = [  # (id, maker, params, hw)
    ("linear", _lin, dict(c_in=40, c_out=12, rows=11, n=2, m=4), "4x4"),
    ("linear-ksplit", _lin, dict(c_in=200, c_out=9, rows=13, n=2, m=4), "4x4-small"),
    ("linear-dense", _lin, dict(c_in=30, c_out=17, rows=7, n=4, m=4), "2x8-dense"),
    ("conv", _conv, dict(c_in=8, c_out=12, h=6, w=5, n=2, m=4, batch=2), "4x4-small"),
    ("conv-grouped", _conv, dict(c_in=8, c_out=12, h=5, w=5, groups=2, n=2, m=4), "4x4-small"),
    ("conv-depthwise", _conv, dict(c_in=6, c_out=6, h=5, w=4, groups=6, n=2, m=4), "3x5-odd"),
    ("conv-odd", _conv, dict(c_in=7, c_out=11, h=7, w=3, stride=2, n=2, m=4, batch=3), "3x5-odd"),
    ("conv-ksplit", _conv, dict(c_in=16, c_out=10, h=4, w=4, n=2, m=4), "3x5-odd"),
]


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.glob("t*.hex"))}


@pytest.mark.parametrize("cid,maker,params,hwk", CASES, ids=[c[0] for c in CASES])
def test_bulk_files_equal_the_per_run_writer(tmp_path: Path, cid, maker, params, hwk) -> None:
    hw = HWS[hwk]
    rec = maker(np.random.default_rng(len(cid)), name=cid, **params)
    gm = runmod.to_gemm(rec, hw)
    assert bulk.aligned(gm, gm.plan.tiles)
    ref, got = tmp_path / "ref", tmp_path / "bulk"
    ref.mkdir()
    got.mkdir()
    text = bulk.layer_text(gm)
    for t in gm.plan.tiles:
        for ci in range(len(gm.plan.chunks)):
            gi = 7 + runmod.run_index(gm.plan, t.index, ci)  # a layer that is not the first
            words = runmod._write_run(gm, t, ci, ref, gi)
            bulk.write_run(text, gm, t, ci, got, gi)
            assert runmod.plan_words_of(gm, t, ci) == words
    a, b = _files(ref), _files(got)
    assert a == b and len(a) >= 2 * gm.plan.runs
    if cid.endswith("ksplit"):
        assert len(gm.plan.chunks) > 1


def _dumps(gm, d: Path, truth_y: np.ndarray, truth_acc: np.ndarray, base: int) -> list[int]:
    """Write the dumps the harness would write for every tile (rows x column blocks)."""
    hw = gm.hw
    lasts = []
    for t in gm.plan.tiles:
        gi = base + runmod.run_index(gm.plan, t.index, len(gm.plan.chunks) - 1)
        cb = -(-t.cols // hw.cols)
        for name, arr, bits in (("y", truth_y, iface.Y_BITS), ("acc", truth_acc, hw.acc_bits)):
            blk = np.zeros((t.rows, cb * hw.cols), dtype=np.int64)
            blk[:, :t.cols] = arr[t.p0:t.p0 + t.rows, t.c0:t.c0 + t.cols]
            blk = blk.reshape(t.rows * cb, hw.cols)
            write_memh_limbs(d / f"t{gi}_{name}.hex", pack_limbs(blk, [bits] * hw.cols),
                             bits * hw.cols)
        lasts.append(gi)
    return lasts


@pytest.mark.parametrize("cid,maker,params,hwk", CASES[:5], ids=[c[0] for c in CASES[:5]])
def test_bulk_dump_parsing_equals_the_per_tile_reader(tmp_path: Path, cid, maker, params,
                                                      hwk) -> None:
    hw = HWS[hwk]
    rec = maker(np.random.default_rng(3), name=cid, **params)
    gm = runmod.to_gemm(rec, hw)
    rng = np.random.default_rng(9)
    ty = rng.integers(-2 ** 15, 2 ** 15, size=(gm.plan.p, rec.c_out))
    ta = rng.integers(-2 ** 31, 2 ** 31, size=(gm.plan.p, rec.c_out))
    lasts = _dumps(gm, tmp_path, ty, ta, base=3)
    tiles = list(gm.plan.tiles)
    y = bulk.read_dumps(gm, tmp_path, tiles, lasts, "y", iface.Y_BITS)
    acc = bulk.read_dumps(gm, tmp_path, tiles, lasts, "acc", hw.acc_bits)
    assert np.array_equal(y, ty) and np.array_equal(acc, ta)
    for t, gi in zip(tiles, lasts):  # the per-tile reader agrees
        cb = -(-t.cols // hw.cols)
        lanes = runmod._read_dump(tmp_path / f"t{gi}_y.hex", hw.cols, iface.Y_BITS, "out",
                                  rec.name, t, cb, t.cols)
        assert np.array_equal(lanes.reshape(t.rows, -1)[:, :t.cols],
                              ty[t.p0:t.p0 + t.rows, t.c0:t.c0 + t.cols])


@pytest.mark.parametrize("damage", ["xz", "missing", "short"])
def test_a_bad_dump_falls_back_to_the_reader_that_names_it(tmp_path: Path, damage: str) -> None:
    hw = HWS["4x4"]
    rec = random_linear_record(np.random.default_rng(1), c_in=16, c_out=8, rows=9, n=2, m=4)
    gm = runmod.to_gemm(rec, hw)
    z = np.zeros((gm.plan.p, rec.c_out), dtype=np.int64)
    lasts = _dumps(gm, tmp_path, z, z, base=0)
    p = tmp_path / f"t{lasts[-1]}_y.hex"
    if damage == "xz":
        p.write_text(p.read_text().replace("0", "x", 1))
    elif damage == "missing":
        p.unlink()
    else:
        p.write_text(p.read_text()[:-5])
    assert bulk.read_dumps(gm, tmp_path, list(gm.plan.tiles), lasts, "y", iface.Y_BITS) is None


def test_unaligned_tiles_are_detected() -> None:
    """An output scratchpad shallower than the array's rows: tiles start inside a row block,
    so the per-run writer is used."""
    hw = HwConfig(rows=4, cols=4, n=2, m=4, out_depth=2)
    rec = random_linear_record(np.random.default_rng(2), c_in=16, c_out=4, rows=9, n=2, m=4)
    gm = runmod.to_gemm(rec, hw)
    assert not bulk.aligned(gm, gm.plan.tiles)


def test_out_of_range_operands_are_named_once(tmp_path: Path) -> None:
    hw = HWS["4x4"]
    rec = random_linear_record(np.random.default_rng(2), c_in=16, c_out=4, rows=5, n=2, m=4)
    gm = runmod.to_gemm(rec, hw)
    gm.cols[0, 3, 5] = 1000
    with pytest.raises(NumericsError, match="activations"):
        bulk.layer_text(gm)
