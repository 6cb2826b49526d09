"""Co-simulation of MAC layers on the accelerator RTL through ``run_layer``/``run_layers``.

Every case is compared with the golden ``y`` (and ``acc``) by ``np.array_equal`` and its
measured cycles with ``t2c_sim.estimate.cycles`` exactly, per tile and per K-chunk. Builds
dominate the run time, so each (simulator, hw) pair runs ALL its cases in one simulator run
(module-scoped fixture) and the per-case tests only check results. Seeds are in the case ids.
K-split layers (dot products longer than a bank: several runs per tile) are cases like any other
(into 2 and into many chunks, 2:4 / 1:4 / dense, odd shapes) plus faults the checks must catch:
RTL mutants that add the bias on every chunk or drop the partial sums, plan flags that restart
or requantize every chunk. Bigger split layers are in tests/test_cosim_ksplit.py (slow).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from t2c_sim import estimate
from t2c_sim.config import HwConfig
from t2c_sim.cosim.compare import compare
from t2c_sim.cosim.run import UnsupportedLayerError, run_layer, run_layers, to_gemm
from t2c_sim.errors import SimulationError
from t2c_sim.golden import run_layer as golden_layer
from t2c_sim.workloads.gen import random_conv_record, random_linear_record

pytestmark = pytest.mark.sim

# Small scratchpads so that modest layers need several tiles.
HW_A = HwConfig(rows=2, cols=2, n=2, m=4, a_bits=8, w_bits=8, act_depth=64, w_depth=64,
                out_depth=32, ch_depth=8)
HW_B = HwConfig(rows=4, cols=4, n=2, m=8, a_bits=4, w_bits=4, act_depth=256, w_depth=128,
                out_depth=64, ch_depth=16)
HW_C = HwConfig(rows=3, cols=2, n=4, m=4, a_bits=8, w_bits=8, act_depth=96, w_depth=64,
                out_depth=48, ch_depth=8)


def _lin(seed: int, **kw):
    return random_linear_record(np.random.default_rng(seed), name=f"fc_s{seed}", **kw)


def _conv(seed: int, **kw):
    return random_conv_record(np.random.default_rng(seed), name=f"conv_s{seed}", **kw)


def cases_a():
    """(id, record) on HW_A (2x2, 2:4, 8-bit)."""
    c = [
        ("p1_2of4", _lin(1, c_in=8, c_out=2, rows=1, n=2, m=4)),
        ("cout_lt_cols_1of4", _lin(2, c_in=12, c_out=1, rows=3, n=1, m=4)),
        ("k_not_mult_m", _lin(3, c_in=10, c_out=3, rows=5, n=2, m=4)),
        ("unsigned_half_up_relu", _lin(4, c_in=16, c_out=4, rows=4, n=2, m=4, a_signed=False,
                                       mode="half_up", relu=True)),
        ("a4w4_half_away_uy", _lin(5, c_in=9, c_out=3, rows=3, n=1, m=4, a_bits=4, w_bits=4,
                                   y_signed=False, mode="half_away")),
        ("ua4_floor", _lin(6, c_in=20, c_out=2, rows=2, n=2, m=4, a_bits=4, a_signed=False,
                           mode="floor")),
        ("multitile", _lin(7, c_in=24, c_out=7, rows=40, n=2, m=4)),
        ("lead_dims", random_linear_record(np.random.default_rng(8), name="fc_lead", c_in=8,
                                           c_out=3, rows=1, n=2, m=4,
                                           x_q=np.random.default_rng(9).integers(
                                               -128, 128, size=(2, 3, 8)))),
        ("conv3x3", _conv(10, c_in=3, c_out=4, h=5, w=5, n=2, m=4)),
        ("conv_grouped_s2", _conv(11, c_in=4, c_out=4, h=6, w=5, kh=3, kw=3, stride=2,
                                  groups=2, n=1, m=4, mode="floor", batch=2)),
        # K-split on HW_A (banks of 32 words): G = 50 -> 2 chunks of 25 (one 2x2 block)
        ("ksplit2_2of4", _lin(15, c_in=200, c_out=2, rows=2, n=2, m=4)),
        # G = 318 (K = 1270 padded to 1272) -> 10 chunks; P = 1, C_out < COLS, 1:4
        ("ksplit10_1of4_p1", _lin(16, c_in=1270, c_out=1, rows=1, n=1, m=4, mode="half_up")),
        # conv, C_in 30 -> 32, K = 288, G = 72 -> 12 chunks of 6 (shorter chunks, bigger tiles:
        # fewer cycles than 3 chunks of 24 in 2x2 tiles); two tiles
        ("ksplit12_conv", _conv(17, c_in=30, c_out=5, h=4, w=5, kh=3, kw=3, padding=(1, 1),
                                n=2, m=4, a_signed=False, relu=True)),
    ]
    return c


# expected K-chunks of the split cases on HW_A (a plan the tests check before trusting it)
KSPLIT_A = {"ksplit2_2of4": 2, "ksplit10_1of4_p1": 10, "ksplit12_conv": 12}


def corrupted(seed: int = 21):
    """A layer whose weight changed after the golden run: (record, channel, k)."""
    rec = _lin(seed, c_in=16, c_out=4, rows=6, n=2, m=4)
    w = rec.w_q.copy()
    c, k = (int(v) for v in np.argwhere(w != 0)[len(np.argwhere(w != 0)) // 2])
    w[c, k] = w[c, k] + 1 if w[c, k] < 100 else w[c, k] - 1
    return rec.replace(w_q=w, values=None, indices=None, name="fc_corrupt"), c, k


_CACHE: dict = {}


def _run_all(sim: str, hw: HwConfig, cases, build_root):
    """All cases plus the corrupted layer in ONE simulator run (cached per (sim, hw))."""
    key = (sim, hw)
    if key not in _CACHE:
        recs = [r for _, r in cases]
        bad, _, _ = corrupted()
        res = run_layers([*recs, bad], hw, sim, build_root=build_root)
        _CACHE[key] = dict(zip([i for i, _ in cases] + ["corrupt"], res))
    return _CACHE[key]


@pytest.fixture(scope="module")
def build_root():
    from t2c_sim.cosim.sim import default_build_root
    return default_build_root()


@pytest.fixture(scope="module", params=["icarus", "verilator"])
def results_a(request, build_root):
    return request.param, _run_all(request.param, HW_A, cases_a(), build_root)


@pytest.mark.parametrize("case", [i for i, _ in cases_a()])
def test_layer_bit_exact_and_cycles(results_a, case):
    sim, res = results_a
    rec = dict(cases_a())[case]
    r = res[case]
    mm = compare(rec, rec.y, r.y, tiles=r.tiles, acc_expected=rec.acc, acc_actual=r.acc)
    assert mm is None, f"{sim} {case}: {mm}"
    assert np.array_equal(r.acc, rec.acc), f"{sim} {case}: accumulators differ"
    assert r.cycles == estimate.cycles(rec, HW_A), f"{sim} {case}: {r.tiles}"
    assert all(t.cycles_measured == t.cycles_predicted for t in r.tiles)
    assert len(r.tiles) == len(estimate.tile_plan(rec, HW_A).tiles)


def test_multitile_really_tiles(results_a):
    _, res = results_a
    assert len(res["multitile"].tiles) >= 4
    assert len(res["conv3x3"].tiles) >= 3
    assert {t.group for t in res["conv_grouped_s2"].tiles} == {0, 1}
    assert len(res["ksplit12_conv"].tiles) >= 2


@pytest.mark.parametrize("case", list(KSPLIT_A))
def test_ksplit_runs_every_chunk(results_a, case):
    """The split cases really ran as several runs per tile, each with the model's cycles."""
    sim, res = results_a
    rec = dict(cases_a())[case]
    plan = estimate.tile_plan(rec, HW_A)
    assert len(plan.chunks) == KSPLIT_A[case]
    for t in res[case].tiles:
        assert len(t.chunks_measured) == KSPLIT_A[case], f"{sim} {case}: {t}"
        assert t.chunks_measured == estimate.chunk_cycles(plan, plan.tiles[t.index], HW_A)
    # the partial-sum runs skip the requantizer: the first chunk of a full tile costs
    # RQ_LATENCY cycles less than the last chunk of the same length would
    t0 = plan.tiles[0]
    g0 = plan.chunks[0][1]
    assert (estimate.tile_cycles(t0, g0, HW_A, last=True)
            - estimate.tile_cycles(t0, g0, HW_A, last=False)) == estimate.RQ_LATENCY


def test_corrupted_weight_is_localized(results_a):
    sim, res = results_a
    bad, c, _ = corrupted()
    r = res["corrupt"]
    # independent oracle: golden model of the corrupted record
    y_bad = golden_layer(bad, bad.x_q).y
    assert np.array_equal(r.y, y_bad)
    diff = np.argwhere(y_bad.reshape(-1, bad.c_out) != bad.y.reshape(-1, bad.c_out))
    assert diff.size, "corruption did not change any output (test would be vacuous)"
    mm = compare(bad, bad.y, r.y, tiles=r.tiles, acc_expected=bad.acc, acc_actual=r.acc)
    assert mm is not None
    assert (mm.row, mm.channel) == tuple(int(v) for v in diff[0])
    assert mm.channel == c and mm.count == len(diff) and mm.tile == 0
    assert mm.acc_actual != mm.acc_expected
    assert f"channel {c}" in str(mm) and "fc_corrupt" in str(mm)


def test_simulators_agree(build_root):
    """Icarus and Verilator give identical outputs and cycle counts (fixtures cached)."""
    cases = cases_a()
    a = _run_all("icarus", HW_A, cases, build_root)
    b = _run_all("verilator", HW_A, cases, build_root)
    for k in a:
        assert np.array_equal(a[k].y, b[k].y), k
        assert np.array_equal(a[k].acc, b[k].acc), k
        assert [t.cycles_measured for t in a[k].tiles] == [t.cycles_measured for t in b[k].tiles]


def test_unloaded_word_reports_x_on_icarus(build_root):
    """A bank word the host did not load is X on Icarus; the error names memory and index."""
    rec = _lin(31, c_in=8, c_out=2, rows=4, n=2, m=4)

    def drop_last_line(run_dir):
        p = run_dir / "t0_act.hex"
        lines = p.read_text().splitlines()
        p.write_text("\n".join(lines[:-1]) + "\n")

    with pytest.raises(SimulationError, match=r"fc_s31 tile 0: u_top\.u_out\.mem_q\[\d+\] "
                                              r"lane \d is X/Z \(row \d+, channel \d\)"):
        run_layers([rec], HW_A, "icarus", build_root=build_root, mutate=drop_last_line)


def test_watchdog_names_layer_and_tile(build_root):
    """A tile that runs far longer than the cycle model predicts is stopped by the watchdog."""
    rec = _lin(32, c_in=8, c_out=2, rows=1, n=2, m=4)  # predicted 2 + 2 + 5 = 9 cycles

    def longer_tile(run_dir):  # the harness now runs 16 rows (8 blocks): 23 > 2 * 9 cycles
        words = (run_dir / "plan.hex").read_text().split()
        words[1] = f"{16:08x}"
        (run_dir / "plan.hex").write_text("\n".join(words) + "\n")

    with pytest.raises(SimulationError, match=r"layer fc_s32 tile 0: no done within 18 cycles "
                                              r"\(cycle model predicts 9\)"):
        run_layers([rec], HW_A, "icarus", build_root=build_root, mutate=longer_tile,
                   watchdog_margin=0)


def test_refusals_name_layer_and_reason():
    """Refusals come from the DUT file's accepts: the layer, the DUT, the reason and the key."""
    dense = _lin(41, c_in=8, c_out=2, rows=2, n=4, m=4)
    with pytest.raises(UnsupportedLayerError, match=r"layer 'fc_s41': cannot run on DUT t2c_accel: "
                                                    r"4:4 weights do not fit the DUT's 2:4 .*"
                                                    r"channel 0, group 0.*\[accepts\.nm\]"):
        to_gemm(dense, HW_A)
    tw = random_linear_record(np.random.default_rng(42), name="fc_tw", c_in=8, c_out=2, rows=3,
                              n=2, m=4, token_wise=True)
    with pytest.raises(UnsupportedLayerError, match=r"layer 'fc_tw': .*token-wise.*"
                                                    r"row_params: 0"):
        to_gemm(tw, dataclasses.replace(HW_A, row_params=0))   # a build without rp memory
    to_gemm(tw, HW_A)                                          # one with it (test_cosim_rq.py)
    wide = _lin(43, c_in=8, c_out=2, rows=2, n=2, m=8)
    with pytest.raises(UnsupportedLayerError, match=r"layer 'fc_s43': .*a_bits=8 exceeds the DUT's "
                                                    r"maximum 4 .*\[accepts\.a_bits\]"):
        to_gemm(wide, HW_B)
    acc16 = _lin(44, c_in=4, c_out=2, rows=2, n=2, m=4).replace(acc_bits=24, wrap_ok=True)
    with pytest.raises(UnsupportedLayerError, match=r"acc_bits=24 but the DUT needs 32 \(the "
                                                    r"accumulators wrap"):
        to_gemm(acc16, HW_A)


def test_hw_b_icarus_2of8_4bit(build_root):
    """4x4 array, 2:8, 4-bit operands (Icarus here; Verilator in the slow suite)."""
    _check_hw("icarus", HW_B, cases_b(), build_root)


def cases_b():
    return [
        ("2of8", _lin(51, c_in=20, c_out=5, rows=7, n=2, m=8, a_bits=4, w_bits=4)),
        ("1of8_unsigned", _lin(52, c_in=16, c_out=9, rows=9, n=1, m=8, a_bits=4, w_bits=3,
                               a_signed=False, mode="half_up")),
        ("1of4_on_2of8", _lin(53, c_in=12, c_out=4, rows=3, n=1, m=4, a_bits=4, w_bits=4)),
        ("conv_2of8", _conv(54, c_in=8, c_out=6, h=4, w=4, n=2, m=8, a_bits=4, w_bits=4,
                            mode="half_away")),
    ]


def cases_c():
    return [
        ("dense4", _lin(61, c_in=13, c_out=5, rows=7, n=4, m=4)),
        ("dense4_conv", _conv(62, c_in=5, c_out=3, h=4, w=5, kh=2, kw=3, padding=(1, 0),
                              n=4, m=4, a_signed=False, mode="floor")),
        ("2of4_on_dense", _lin(63, c_in=16, c_out=4, rows=4, n=2, m=4, mode="half_up")),
    ]


def _check_hw(sim, hw, cases, build_root):
    res = run_layers([r for _, r in cases], hw, sim, build_root=build_root)
    for (cid, rec), r in zip(cases, res):
        mm = compare(rec, rec.y, r.y, tiles=r.tiles, acc_expected=rec.acc, acc_actual=r.acc)
        assert mm is None, f"{sim} {cid}: {mm}"
        assert r.cycles == estimate.cycles(rec, hw), f"{sim} {cid}: {r.tiles}"
    return res


@pytest.mark.slow
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_hw_c_dense_3x2(sim, build_root):
    """Dense 4:4 array with 3 rows (non-power-of-two banks)."""
    _check_hw(sim, HW_C, cases_c(), build_root)


@pytest.mark.slow
def test_hw_b_verilator_matches_icarus(build_root):
    a = _check_hw("icarus", HW_B, cases_b(), build_root)
    b = _check_hw("verilator", HW_B, cases_b(), build_root)
    for ra, rb in zip(a, b):
        assert np.array_equal(ra.y, rb.y) and ra.cycles == rb.cycles


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_random_layers_verilator(seed, build_root):
    """Randomized shapes, modes and formats on HW_A (seed in the id)."""
    rng = np.random.default_rng(1000 + seed)
    recs = []
    for i in range(6):
        n = int(rng.integers(1, 3))
        recs.append(random_linear_record(
            rng, name=f"rnd{seed}_{i}", c_in=int(rng.integers(1, 30)),
            c_out=int(rng.integers(1, 9)), rows=int(rng.integers(1, 30)), n=n, m=4,
            a_bits=int(rng.integers(2, 9)), w_bits=int(rng.integers(2, 9)),
            a_signed=bool(rng.integers(2)), y_signed=bool(rng.integers(2)),
            mode=["half_even", "half_up", "half_away", "floor"][int(rng.integers(4))],
            relu=bool(rng.integers(2))))
    res = run_layers(recs, HW_A, "verilator", build_root=build_root)
    for rec, r in zip(recs, res):
        assert np.array_equal(r.y, rec.y), compare(rec, rec.y, r.y, tiles=r.tiles)
        assert r.cycles == estimate.cycles(rec, HW_A)


@pytest.mark.slow
def test_waves_single_tile_verilator(build_root):
    rec = _lin(71, c_in=24, c_out=7, rows=40, n=2, m=4)
    r = run_layer(rec, HW_A, "verilator", build_root=build_root, waves=True, wave_tile=1)
    assert r.wave_file is not None and r.wave_file.stat().st_size > 0
    t = r.tiles[0]
    assert t.index == 1
    sl = (slice(t.p0, t.p0 + t.rows), slice(t.c0, t.c0 + t.cols))
    assert np.array_equal(r.y[sl], rec.y[sl])
