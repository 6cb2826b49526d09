"""K-splitting on the accelerator RTL: split dot products bit-exact, with the model's cycles.

A dot product longer than a scratchpad bank runs as several accelerator runs per tile (SPEC
section 6: bias once, the sum wraps as before, one requantization after the last chunk). The
oracle is the golden model of the UNSPLIT layer (``rec.y``, ``rec.acc``); cycles are compared
with :mod:`t2c_sim.estimate` per tile and per chunk. Faults the checks must catch: RTL mutants
(bias added on every chunk, partial sums dropped so every chunk is requantized on its own) and
plan faults (every run restarts from the bias; every run requantizes).

Fast tier: Icarus (cheap builds) on two small-bank arrays; the Verilator K-split cases run in
``tests/test_cosim.py`` on HW_A. Slow tier: the same arrays on Verilator, both PE array
implementations on both simulators, and bigger layers (an MNIST-fc1-like linear, a
ResNet-18-layer4-like conv) on the default hardware file and an 8x8 array.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from t2c_sim import estimate
from t2c_sim.config import HwConfig
from t2c_sim.cosim.compare import compare
from t2c_sim.cosim.run import PLAN_WORDS, RTL_MODULES, run_layers
from t2c_sim.cosim.sim import RTL_DIR
from t2c_sim.workloads.gen import random_conv_record, random_linear_record

pytestmark = pytest.mark.sim

ROOT = Path(__file__).resolve().parents[1]
# Banks of ONE word: every group is its own chunk, and a chunk (1 group) is shorter than the
# array's rows, so every run also stalls.
HW_K1 = HwConfig(rows=2, cols=3, n=2, m=4, a_bits=8, w_bits=8, act_depth=2, w_depth=3,
                 out_depth=64, ch_depth=6)
# Dense 4:4 array, 3 rows (non-power-of-two), banks of 5 words.
HW_KD = HwConfig(rows=3, cols=2, n=4, m=4, a_bits=8, w_bits=8, act_depth=15, w_depth=10,
                 out_depth=48, ch_depth=8)


def _lin(seed: int, **kw):
    return random_linear_record(np.random.default_rng(seed), name=f"fc_s{seed}", **kw)


def _conv(seed: int, **kw):
    return random_conv_record(np.random.default_rng(seed), name=f"conv_s{seed}", **kw)


def cases_k1():
    """(id, record, expected chunks) on HW_K1."""
    return [
        ("g6_many", _lin(201, c_in=24, c_out=4, rows=5, n=2, m=4), 6),
        ("conv_1of4_many", _conv(202, c_in=4, c_out=3, h=3, w=3, kh=3, kw=3, padding=(1, 1),
                                 n=1, m=4, mode="half_away"), 9),
        ("p1_k_odd", _lin(203, c_in=7, c_out=2, rows=1, n=2, m=4, a_signed=False), 2),
    ]


def cases_kd():
    """(id, record, expected chunks) on HW_KD."""
    return [
        ("dense_2chunks", _lin(211, c_in=37, c_out=2, rows=3, n=4, m=4), 2),
        ("dense_many_multitile", _lin(212, c_in=97, c_out=5, rows=4, n=4, m=4, mode="floor"), 5),
        ("2of4_on_dense_conv", _conv(213, c_in=6, c_out=4, h=4, w=3, kh=3, kw=3,
                                     padding=(1, 1), n=2, m=4, relu=True), 9),
    ]


def check_exact(cases, res, hw, sim):
    """Every case: y and acc equal the unsplit golden results; cycles equal the model per chunk."""
    for (cid, rec, nk), r in zip(cases, res):
        plan = estimate.tile_plan(rec, hw)
        assert len(plan.chunks) == nk, f"{cid}: the case does not split as intended"
        mm = compare(rec, rec.y, r.y, tiles=r.tiles, acc_expected=rec.acc, acc_actual=r.acc)
        assert mm is None, f"{sim} {cid}: {mm}"
        assert np.array_equal(r.acc, rec.acc), f"{sim} {cid}: accumulators differ"
        assert r.cycles == estimate.cycles(rec, hw), f"{sim} {cid}"
        for t in r.tiles:
            assert len(t.chunks_measured) == nk
            assert t.chunks_measured == estimate.chunk_cycles(plan, plan.tiles[t.index], hw), \
                f"{sim} {cid} tile {t.index}"


def _run(cases, hw, sim, build_root, **kw):
    return run_layers([r for _, r, _ in cases], hw, sim, build_root=build_root, **kw)


@pytest.fixture(scope="module")
def build_root():
    from t2c_sim.cosim.sim import default_build_root
    return default_build_root()


@pytest.mark.parametrize("hw,cases", [(HW_K1, cases_k1), (HW_KD, cases_kd)], ids=["k1", "kd"])
def test_ksplit_icarus(hw, cases, build_root):
    cs = cases()
    check_exact(cs, _run(cs, hw, "icarus", build_root), hw, "icarus")


@pytest.mark.slow
@pytest.mark.parametrize("hw,cases", [(HW_K1, cases_k1), (HW_KD, cases_kd)], ids=["k1", "kd"])
def test_ksplit_verilator(hw, cases, build_root):
    cs = cases()
    check_exact(cs, _run(cs, hw, "verilator", build_root), hw, "verilator")


@pytest.mark.slow
@pytest.mark.parametrize("sim,packed", [("icarus", False), ("verilator", True)])
def test_ksplit_other_array_implementation(sim, packed, build_root):
    """Each simulator also runs the PE array implementation the other one uses by default."""
    cs = cases_k1() + cases_kd()[:1]
    check_exact(cs[:3], _run(cs[:3], HW_K1, sim, build_root, packed=packed), HW_K1, sim)
    check_exact(cs[3:], _run(cs[3:], HW_KD, sim, build_root, packed=packed), HW_KD, sim)


# ------------------------------------------------------------------------------ faults
def _mutant_rtl(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of rtl/ with one replacement in t2c_accel_top.v (the anchor must exist)."""
    d = tmp_path / "rtl"
    d.mkdir()
    for m in RTL_MODULES:
        (d / f"{m}.v").write_text((RTL_DIR / f"{m}.v").read_text())
    top = d / "t2c_accel_top.v"
    src = top.read_text()
    assert old in src, f"mutation anchor {old!r} not in t2c_accel_top.v"
    top.write_text(src.replace(old, new, 1))
    return d


MUTANTS = {
    # every run starts its accumulators from bias_eff (not only the first chunk)
    "bias_every_chunk": ("(first_q && !rowpar_q) ? ~({BIAS_W{1'b1}} << (ncv * ACC_BITS))",
                         "(!rowpar_q) ? ~({BIAS_W{1'b1}} << (ncv * ACC_BITS))"),
    # the drain never adds the partial sums: each chunk is accumulated and requantized alone
    "psum_dropped": ("if (!drmask_q[drow_q] || (first_q && !rowpar_q)) begin", "if (1'b1) begin"),
}


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_rtl_mutant_is_caught(mutant, tmp_path):
    """The K-split check fails on a mutant; the same mutant still passes an unsplit layer."""
    split = ("split", _lin(221, c_in=24, c_out=3, rows=3, n=2, m=4), 6)
    plain = ("plain", _lin(222, c_in=4, c_out=3, rows=3, n=2, m=4), 1)
    rtl = _mutant_rtl(tmp_path, *MUTANTS[mutant])
    res = _run([split, plain], HW_K1, "icarus", tmp_path / "b", rtl_dir=rtl)
    check_exact([plain], res[1:], HW_K1, "icarus")  # the mutant only breaks K-splitting
    rec, r = split[1], res[0]
    mm = compare(rec, rec.y, r.y, tiles=r.tiles, acc_expected=rec.acc, acc_actual=r.acc)
    assert not np.array_equal(r.acc, rec.acc), f"{mutant}: accumulators unchanged"
    assert mm is not None and mm.acc_actual != mm.acc_expected, f"{mutant} not caught"
    with pytest.raises(AssertionError):
        check_exact([split], res[:1], HW_K1, "icarus")


def _set_flags(flags_of):
    """A ``mutate`` hook that rewrites every run's flags word in plan.hex."""
    def mutate(run_dir: Path) -> None:
        words = (run_dir / "plan.hex").read_text().split()
        for r in range(int(words[0], 16)):
            i = 1 + PLAN_WORDS * r + PLAN_WORDS - 1
            words[i] = f"{flags_of(int(words[i], 16)):08x}"
        (run_dir / "plan.hex").write_text("\n".join(words) + "\n")
    return mutate


def test_plan_fault_restart_every_chunk_is_caught(build_root):
    """Every run flagged 'first' (bias again, partial sums ignored): y and acc differ."""
    case = ("split", _lin(223, c_in=24, c_out=3, rows=3, n=2, m=4), 6)
    r = _run([case], HW_K1, "icarus", build_root, mutate=_set_flags(lambda f: f | 1))[0]
    rec = case[1]
    assert not np.array_equal(r.acc, rec.acc)
    assert compare(rec, rec.y, r.y, tiles=r.tiles, acc_expected=rec.acc,
                   acc_actual=r.acc) is not None


def test_plan_fault_requantize_every_chunk_is_caught(build_root):
    """Every run flagged 'last' (each chunk requantizes and writes y): the results happen to be
    right, but every partial-sum run takes RQ_LATENCY cycles more than the model: caught."""
    case = ("split", _lin(224, c_in=24, c_out=3, rows=3, n=2, m=4), 6)
    r = _run([case], HW_K1, "icarus", build_root, mutate=_set_flags(lambda f: f | 2))[0]
    rec = case[1]
    assert np.array_equal(r.y, rec.y)
    for t in r.tiles:
        diff = np.array(t.chunks_measured) - np.array(t.chunks_predicted)
        assert diff[:-1].tolist() == [estimate.RQ_LATENCY] * 5 and diff[-1] == 0
    with pytest.raises(AssertionError):
        check_exact([case], [r], HW_K1, "icarus")


def test_too_many_runs_is_refused_before_building(monkeypatch, tmp_path):
    """The one size bound co-simulation adds (runs per simulator process) names the layer and
    the limit, and is checked before any build or simulator start."""
    from t2c_sim.cosim import run as runmod
    from t2c_sim.cosim.profiles import backdoor
    from t2c_sim.errors import UnsupportedLayerError

    monkeypatch.setattr(runmod, "MAX_TILES", 5)
    monkeypatch.setattr(backdoor.simmod, "build", lambda *a, **k: pytest.fail("built anyway"))
    rec = _lin(225, c_in=24, c_out=3, rows=3, n=2, m=4)  # 2 tiles x 6 chunks on HW_K1
    assert estimate.tile_plan(rec, HW_K1).runs == 12
    with pytest.raises(UnsupportedLayerError, match=r"layer fc_s225: 12 accelerator runs "
                                                    r"exceed the limit of 5 runs"):
        runmod.run_layers([rec], HW_K1, "icarus", build_root=tmp_path)


# ------------------------------------------------------------------------------ big layers
def _default_hw() -> HwConfig:
    return HwConfig.from_dict(yaml.safe_load((ROOT / "hw" / "default.yaml").read_text()))


@pytest.mark.slow
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
@pytest.mark.parametrize("arr", ["default", "8x8"])
def test_real_size_layers(sim, arr, build_root):
    """An MNIST-fc1-like linear (K = 9216) and a ResNet-18-layer4-like 3x3 conv (C_in = 512,
    K = 4608) on the default hardware file and on an 8x8 2:4 array: split, exact, exact cycles."""
    hw = _default_hw()
    if arr == "8x8":
        hw = HwConfig(**{**hw.to_dict(), "rows": 8, "cols": 8})
    cases = [("fc1", _lin(231, c_in=9216, c_out=16, rows=3, n=2, m=4), None),
             ("l4conv", _conv(232, c_in=512, c_out=12, h=3, w=3, kh=3, kw=3, padding=(1, 1),
                              n=2, m=4), None)]
    cases = [(c, r, len(estimate.tile_plan(r, hw).chunks)) for c, r, _ in cases]
    assert all(nk > 1 for _, _, nk in cases)
    check_exact(cases, _run(cases, hw, sim, build_root, optimize=True), hw, sim)
